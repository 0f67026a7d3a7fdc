"""replication.credentials on real PostgreSQL servers through the agents:
after a switchover the old primary follows the new one with credentials
alone, no snapshot. The account is a REPLICATION LOGIN role (never a
superuser) with its own pg_hba.conf lines, handed out again unchanged on the
next call, made anew when it is gone (also on a primary set read-only for a
switchover), refused on a standby; its password reaches no statement the
server logs and no agent output but the result."""
import os
import stat
import sys

import harness
from harness import check
from postgres_server import PgServer, available


def rows(srv):
    return srv.psql("SELECT string_agg(k, ',' ORDER BY k) FROM t", "shop").strip()


def roles(srv):
    return srv.psql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles").strip()


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        backups = env.mkdir("backups")
        p = PgServer(env, "p").initdb().start()
        r = PgServer(env, "r")
        agent_p = harness.Agent(env, "postgres", p.settings(), instance_id="inst-p", backup_dir=backups)
        agent_r = harness.Agent(env, "postgres", r.settings(), instance_id="inst-r", backup_dir=backups)
        agent_p.must("database.create", {"name": "shop"})
        p.psql("CREATE TABLE t (k text PRIMARY KEY); INSERT INTO t VALUES ('seed')", "shop")
        snap = agent_p.must("replication.snapshot")
        agent_r.must("replication.attach", {"source": {"host": p.host, "port": p.port, "user": snap["user"],
                                                       "password": snap["password"]},
                                            "snapshot": snap["backup"]["id"]})

        # the standby has no credentials of its own to give
        before = roles(r)
        c = agent_r.call("replication.credentials")
        check(c.code == "failed_precondition" and "standby" in c.message and roles(r) == before,
              f"a standby refuses and creates nothing: {c}")

        # switchover: r is promoted, then hands out an account
        agent_p.must("replication.read_only", {"read_only": True})
        agent_r.must("replication.wait", {"position": agent_p.must("replication.position")["position"],
                                          "timeout_ms": 20000})
        agent_r.must("replication.promote")
        agent_r.must("config.apply", {"values": {"log_statement": "all"}})
        creds = agent_r.must("replication.credentials")
        user, password = creds["user"], creds["password"]
        check(user.startswith("trove_repl_") and user != snap["user"] and len(password) >= 16,
              f"a replication account of its own: {user}")
        flags = r.psql(f"SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = '{user}'")
        check(flags.strip() == "f|t|t", f"REPLICATION LOGIN, not superuser: {flags}")
        hba = open(os.path.join(r.datadir, "pg_hba.conf")).read()
        check(f'host replication "{user}" all scram-sha-256' in hba, "its pg_hba.conf line")
        check(r.can_connect(user, password, "postgres") and not r.can_connect(user, password, "shop"),
              "it reaches the maintenance database (pg_rewind) and no tenant's")
        check(password not in creds.stderr, "the password is in the result only")
        state = os.path.join(agent_r.dir, "state", "plugin", "replication-account")
        check(stat.S_IMODE(os.stat(state).st_mode) == 0o600, "kept in a 0600 file of the state directory")

        again = agent_r.must("replication.credentials")
        check((again["user"], again["password"]) == (user, password), "the same account the next time")
        check(roles(r).count("trove_repl_") == 2, f"no second account: {roles(r)}")

        # the old primary follows the new one with those credentials alone
        r.psql("INSERT INTO t VALUES ('on-new-primary')", "shop")
        agent_p.must("replication.demote", {"source": {"host": r.host, "port": r.port, "user": user,
                                                       "password": password}})
        check(agent_p.must("status")["role"] == "replica", "the old primary is a replica")
        r.psql("INSERT INTO t VALUES ('followed')", "shop")
        agent_p.must("replication.wait", {"position": agent_r.must("replication.position")["position"],
                                          "timeout_ms": 20000})
        check(rows(p) == rows(r) == "followed,on-new-primary,seed", f"the old primary follows: {rows(p)}")
        check(agent_r.must("replication.status")["replica_count"] == 1, "the new primary sees it")

        # gone (dropped behind the plugin's back): made anew, even on a read-only primary
        r.psql(f'DROP OWNED BY "{user}"; DROP ROLE "{user}"')
        agent_r.must("replication.read_only", {"read_only": True})
        fresh = agent_r.must("replication.credentials")
        check(fresh["user"] != user and fresh["user"].startswith("trove_repl_") and
              r.can_connect(fresh["user"], fresh["password"], "postgres"), f"a new account: {fresh.result}")
        agent_r.must("replication.read_only", {"read_only": False})

        logs = open(r.log, "rb").read()
        for secret in (password, fresh["password"]):
            check(secret.encode() not in logs, "no password in the server log, which logs every statement")
    print("postgres replication.credentials: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
