"""No password in PostgreSQL's own logs, on a real server that logs everything:
prepare turns on log_statement = all, log_min_duration_statement = 0 and
log_connections (and password_encryption = md5, which must not matter), then
sets the root password and creates a user; afterwards users are created,
passwords changed, root enabled with a given and a generated password, a
replication account made, and the same statements are made to fail under a
held lock so log_min_error_statement prints them. Every log file the server
wrote, and everything the agent printed, holds no password in clear nor its
md5 equivalent, while the statements themselves (with SCRAM verifiers) are
there. Every stored password is a SCRAM-SHA-256 verifier and logs in."""
import glob
import hashlib
import os
import subprocess
import sys

import harness
from harness import check
from postgres_server import PgServer, available

# Each password holds a token found nowhere else, plus characters a literal
# would have to escape.
PASSWORDS = {
    "root": "Rt0kenQ7zv'1\"\\",
    "bob": "B0btokenK9wp 'x'",
    "bob2": "B0bnewtokenM4rs\\'",
    "carol": "Carol7tokenXq2 é$(id)",
    "root2": "Rt2tokenH8ny;--",
    "dave": "Dave5tokenP3lo'",
}
LOG_SETTINGS = {"log_statement": "all", "log_min_duration_statement": "0", "log_connections": "on",
                "log_error_verbosity": "verbose", "password_encryption": "md5"}


def forms(user, password):
    """What a leak of `password` would look like in a log."""
    return {password, password.replace("'", "''"), password[:12],
            hashlib.md5((password + user).encode()).hexdigest()}


class LockHolder:
    """A psql session that holds an EXCLUSIVE lock on pg_authid, so CREATE and
    ALTER ROLE wait (and fail with the lock_timeout the test sets)."""

    def __init__(self, srv):
        argv = ["psql", "-X", "-q", "-A", "-t", "-h", srv.host, "-p", str(srv.port), "-U", "postgres", "-d",
                "postgres"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=srv.psql_env(srv.admin_password), text=True)
        self.proc.stdin.write("BEGIN; LOCK TABLE pg_catalog.pg_authid IN EXCLUSIVE MODE; SELECT 'locked';\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        check(line == "locked", f"the lock is held: {line!r}")

    def release(self):
        self.proc.communicate("ROLLBACK;\n\\q\n", timeout=30)


def server_logs(srv):
    paths = [srv.log] + glob.glob(os.path.join(srv.datadir, "log", "*")) + \
        glob.glob(os.path.join(srv.datadir, "pg_log", "*"))
    texts = {}
    for p in paths:
        if os.path.isfile(p):
            with open(p, "rb") as f:
                texts[p] = f.read().decode("utf-8", "replace")
    return texts


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        srv = PgServer(env)                         # prepare runs initdb
        agent = harness.Agent(env, "postgres", srv.settings())
        said = []                                   # everything the agent printed besides results

        def call(op, args=None, ok=True):
            r = agent.call(op, args)
            said.append(r.stderr + r.message)
            check(r.ok == ok, f"{op} {'works' if ok else 'fails'}: {r}")
            return r

        call("prepare", {"overrides": LOG_SETTINGS, "root_password": PASSWORDS["root"],
                         "databases": [{"name": "shop"}],
                         "users": [{"name": "bob", "password": PASSWORDS["bob"], "databases": ["shop"]}]})
        check(srv.psql("SHOW log_statement").strip() == "all", "every statement is logged")
        call("user.create", {"name": "carol", "password": PASSWORDS["carol"], "databases": ["shop"]})
        call("user.password", {"name": "bob", "password": PASSWORDS["bob2"]})
        call("root.enable", {"password": PASSWORDS["root2"]})
        generated = call("root.enable")["password"]
        snap = call("replication.snapshot")
        secrets = [forms(u, PASSWORDS[k]) for u, k in [("root", "root"), ("bob", "bob"), ("bob", "bob2"),
                                                       ("carol", "carol"), ("root", "root2"), ("dave", "dave"),
                                                       ("bob", "dave"), ("root", "dave")]]
        secrets += [forms("root", generated), forms(snap["user"], snap["password"]),
                    forms("postgres", srv.admin_password)]

        # the same statements, failing: log_min_error_statement prints them
        call("config.apply", {"values": {"lock_timeout": "300"}})
        lock = LockHolder(srv)
        try:
            for op, args in [("user.create", {"name": "dave", "password": PASSWORDS["dave"]}),
                             ("user.password", {"name": "bob", "password": PASSWORDS["dave"]}),
                             ("root.enable", {"password": PASSWORDS["dave"]})]:
                r = call(op, args, ok=False)
                check("lock timeout" in r.message, f"{op} failed on the lock: {r}")
        finally:
            lock.release()
        call("config.reset")

        logs = server_logs(srv)
        text = "\n".join(logs.values())
        check("CREATE ROLE" in text and "ALTER ROLE" in text, "the role statements are in the log")
        check(text.count("STATEMENT:") >= 3 and "canceling statement due to lock timeout" in text,
              "the failing statements are in the log too")
        for i, leak_forms in enumerate(secrets):
            for form in leak_forms:
                for path, body in logs.items():
                    check(form not in body, f"secret #{i} ({form[:4]}... of {len(form)} chars) is not in {path}")
                check(all(form not in s for s in said), f"secret #{i} ({form[:4]}...) is not in the agent's output")

        check("SCRAM-SHA-256$4096:" in text, "the statements carry SCRAM verifiers")
        stored = srv.rows("SELECT rolname, left(rolpassword, 14) FROM pg_authid "
                          f"WHERE rolname IN ('root', 'bob', 'carol', '{snap['user']}') ORDER BY 1")
        check(all(v == "SCRAM-SHA-256$" for _, v in stored) and len(stored) == 4,
              f"every stored password is a SCRAM verifier, md5 setting or not: {stored}")
        check(srv.can_connect("bob", PASSWORDS["bob2"], "shop"), "bob logs in with his new password")
        check(srv.can_connect("carol", PASSWORDS["carol"], "shop"), "carol logs in")
        check(srv.can_connect("root", generated, "postgres"), "root logs in with the generated password")
    print(f"postgres password logs: ok ({len(secrets)} secrets, {len(logs)} log file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
