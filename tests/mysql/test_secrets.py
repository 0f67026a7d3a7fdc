"""Passwords stay out of the server's logs. A primary prepared by the agent
(with a root password and a user) and a replica attached to it both write a
binary log, a general log and a slow log of every statement (long_query_time
= 0); the replica also keeps its relay logs. Users are created and get new
passwords, root is enabled (with a chosen and a generated password) and
disabled, a replication account is made and used, an attach with a wrong
password fails, before and after the replica follows, and a logical backup
is restored (which puts the admin account back). Then every binary log
and relay log (decoded with mariadb-binlog and as raw bytes), general log, slow
log and error log of both servers is read: no password appears in any of
them, nor any statement that carries a password in clear. The logs are checked
to hold the account statements (as hashes), so the search is not vacuous.
"""
import glob
import os
import re
import subprocess

import harness
import mysql_server
from harness import check

# Distinctive cores (searched for), some wrapped in characters that escaping would change.
PASSWORDS = {
    "prepare root": "Sq7-prepare-root-core",
    "prepare user": "Sq7-prepare-user-core",
    "created user": "Sq7-created-user-core'\"\\",
    "host user": "Sq7-host-user-core",
    "changed password": "Sq7-changed-pw-core ü",
    "chosen root": "Sq7-chosen-root-core\\'",
    "wrong replication": "Sq7-wrong-repl-core",
    "after attach user": "Sq7-after-attach-core",
    "after attach change": "Sq7-after-change-core",
    "after attach root": "Sq7-after-root-core",
}
# Statements that carry a password in clear, where a statement starts: at the start of a line of the slow
# log or of mariadb-binlog's output, after " Query<TAB>" in the general log. (A logical restore loads
# mysql.help_topic, whose examples quote such statements inside string values, escaped in the text logs:
# those start no line. Raw binary logs hold row images with real line breaks, so only the passwords
# themselves are searched there.) The hash form is IDENTIFIED BY PASSWORD '*...'.
STATEMENT_START = rb"^(?:[^\n]*? Query\t)?[ \t]*"
CLEAR_STATEMENTS = [re.compile(STATEMENT_START + rx, re.I | re.M) for rx in (
    rb"(?:(?:CREATE|ALTER)\s+USER|GRANT)\b[^\n]*?IDENTIFIED\s+BY\s+'",
    rb"(?:(?:CREATE|ALTER)\s+USER|GRANT|SET\s+PASSWORD)\b[^\n]*?PASSWORD\s*\(",
    rb"CHANGE\s+MASTER\b[^\n]*?MASTER_PASSWORD",
)]


def core(password):
    return re.match(r"[A-Za-z0-9-]+", password).group(0)


def log_options(logs, name):
    return {
        "general_log": "ON", "general_log_file": os.path.join(logs, name + "-general.log"),
        "slow_query_log": "ON", "slow_query_log_file": os.path.join(logs, name + "-slow.log"),
        "long_query_time": "0", "log_slow_admin_statements": "ON", "log_slow_slave_statements": "ON",
        "relay_log_purge": "OFF",
    }


def server_logs(server, logs, name):
    """{path: bytes to search} for every log the server wrote; binary and relay logs decoded and raw."""
    out = {}
    for path in sorted(glob.glob(os.path.join(logs, name + "-*.log"))) + [server.log]:
        with open(path, "rb") as f:
            out[path] = f.read()
    binlogs = [p for p in glob.glob(os.path.join(server.datadir, "*-bin.[0-9]*"))]
    for path in sorted(binlogs):
        with open(path, "rb") as f:
            out[path + " (raw)"] = f.read()
        cp = subprocess.run(["mariadb-binlog", "--no-defaults", "-vv", path], capture_output=True,
                            stdin=subprocess.DEVNULL)
        check(cp.returncode == 0, f"mariadb-binlog cannot decode {path}: {cp.stderr[-500:]}")
        out[path + " (decoded)"] = cp.stdout
    return out


def find_secrets(found_in, secrets):
    leaks = []
    for path, data in found_in.items():
        for what, secret in secrets.items():
            if secret.encode("utf-8") in data:
                leaks.append(f"{what} password in {path}")
        for rx in CLEAR_STATEMENTS if not path.endswith("(raw)") else []:
            for m in rx.finditer(data):
                text = data[m.start():m.end() + 40].decode("utf-8", "replace").replace("\n", " ")
                leaks.append(f"a statement with a password in clear in {path}: {text}...")
    return leaks


def contains(found_in, pattern, kind):
    return any(re.search(pattern, data) for path, data in found_in.items() if kind in path)


def main():
    with harness.Env(prefix="mysql-secrets-") as env:
        logs = env.mkdir("logs")
        backups = env.mkdir("backups", mode=0o700)
        secrets = {what: core(pw) for what, pw in PASSWORDS.items()}
        secrets["admin"] = core(mysql_server.ADMIN_PASSWORD)

        primary = mysql_server.MysqlServer(env, 0, options=log_options(logs, "primary"))
        a_pri = mysql_server.agent_for(env, primary, backup_dir=backups)
        a_pri.must("prepare", {"databases": [{"name": "shop"}], "root_password": PASSWORDS["prepare root"],
                               "users": [{"name": "pam", "password": PASSWORDS["prepare user"],
                                          "databases": ["shop"]}]})
        a_pri.must("user.create", {"name": "uma", "password": PASSWORDS["created user"], "databases": ["shop"]})
        a_pri.must("user.create", {"name": "hal", "host": "127.0.0.1", "password": PASSWORDS["host user"]})
        a_pri.must("user.password", {"name": "uma", "password": PASSWORDS["changed password"]})
        a_pri.must("root.enable", {"password": PASSWORDS["chosen root"]})
        secrets["generated root"] = a_pri.must("root.enable")["password"]
        a_pri.must("root.disable")
        check(primary.sql("SELECT 1", user="uma", password=PASSWORDS["changed password"]).returncode == 0,
              "uma cannot log in with the password it was given")

        replica = mysql_server.MysqlServer(env, 1, options=log_options(logs, "replica")).start()
        a_rep = mysql_server.agent_for(env, replica, backup_dir=backups)
        snap = a_pri.must("replication.snapshot")
        secrets["replication"] = snap["password"]
        source = {"host": primary.host, "port": primary.port, "user": snap["user"], "password": snap["password"]}
        r = a_rep.call("replication.attach", {"source": dict(source, password=PASSWORDS["wrong replication"])})
        check(not r.ok and "1045" in r.message, f"attach with a wrong password: {r}")
        a_rep.must("replication.attach", {"source": source, "snapshot": snap["backup"]["id"]})

        a_pri.must("user.create", {"name": "vic", "password": PASSWORDS["after attach user"], "databases": ["shop"]})
        a_pri.must("user.password", {"name": "pam", "password": PASSWORDS["after attach change"]})
        a_pri.must("root.enable", {"password": PASSWORDS["after attach root"]})
        a_pri.must("root.disable")
        pos = a_pri.must("replication.position")["position"]
        a_rep.must("replication.wait", {"position": pos, "timeout_ms": 30000})
        check(replica.sql("SELECT 1", user="vic", password=PASSWORDS["after attach user"]).returncode == 0,
              "vic, created on the primary, cannot log in on the replica")
        a_rep.must("stop")
        # A logical restore puts the admin account back (the dump replaced the grant tables).
        logical = a_pri.must("backup.create", {"kind": "logical"})["backup"]
        a_pri.must("backup.restore", {"backup_id": logical["id"]})
        check(primary.sql("SELECT 1", user="vic", password=PASSWORDS["after attach user"]).returncode == 0,
              "vic cannot log in after the logical restore")
        a_pri.must("stop")

        found = {}
        found.update(server_logs(primary, logs, "primary"))
        found.update(server_logs(replica, logs, "replica"))
        check(any("relay-bin" in p for p in found), f"the replica wrote no relay log: {sorted(found)}")
        leaks = find_secrets(found, secrets)
        check(not leaks, "passwords in the server's logs:\n  " + "\n  ".join(leaks))
        for kind, what in [("primary-general", rb"CREATE USER 'vic'@'%'"), ("primary-slow", rb"ALTER USER 'uma'@'%'"),
                           ("mariadb-bin.0", rb"CREATE USER 'pam'@'%'"), ("relay-bin", rb"CREATE USER 'vic'@'%'"),
                           ("replica-slow", rb"ALTER USER 'pam'@'%'"), ("replica-general", rb"START SLAVE")]:
            check(contains(found, what, kind), f"no log named *{kind}* holds {what!r}: the search would be vacuous")
    print("mysql secrets: passed")


if __name__ == "__main__":
    main()
