"""Lifecycle on a real PostgreSQL through the agent: prepare initialises an
empty data directory (cluster, admin password, overrides, root, databases,
users), stop/start/restart are seen from outside, and a killed postmaster
shows as crashed in status until it is started again."""
import os
import sys
import time

import harness
from harness import check
from postgres_server import PgServer, available

BOB_PASSWORD = "b0b's \"pass\\word\""


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        srv = PgServer(env)           # no initdb: the agent does it
        agent = harness.Agent(env, "postgres", srv.settings())
        st = agent.must("status")
        check(st["state"] == "new", f"an empty data directory is new: {st.result}")

        agent.must("prepare", {
            "databases": [{"name": "shop"}],
            "users": [{"name": "bob", "password": BOB_PASSWORD, "databases": ["shop"]}],
            "root_password": "r00t 'pw'",
            "overrides": {"work_mem": "8192", "max_connections": "50"},
        })
        st = agent.must("status")
        check(st["state"] == "running" and st["role"] == "standalone", f"prepared: {st.result}")
        check(os.stat(srv.datadir).st_mode & 0o777 == 0o700, "datadir is 0700")
        check(srv.psql("SHOW work_mem").strip() == "8MB", "live override applied")
        check(srv.psql("SHOW max_connections").strip() == "50", "restart override applied by prepare")
        check(srv.psql("SHOW archive_mode").strip() == "on", "WAL archiving is on")
        check(srv.psql("SHOW wal_log_hints").strip() == "on", "wal_log_hints is on")
        check(srv.can_connect("bob", BOB_PASSWORD, "shop"), "bob logs in to shop")
        check(not srv.can_connect("bob", BOB_PASSWORD, "postgres"), "bob cannot reach the maintenance database")
        check(not srv.can_connect("bob", BOB_PASSWORD, "template1"), "bob cannot reach template1")
        check(srv.can_connect("root", "r00t 'pw'", "postgres"), "root logs in with the prepared password")
        check("r00t" not in str(agent.must("status").result), "no secret in results")

        # stop / start / restart, seen from outside
        agent.must("stop")
        check(agent.must("status")["state"] == "stopped", "stopped")
        check(not srv.can_connect("bob", BOB_PASSWORD, "shop"), "nobody can connect while stopped")
        agent.must("stop")   # idempotent
        agent.must("start")
        check(agent.must("status")["state"] == "running", "running again")
        pid = open(os.path.join(srv.datadir, "postmaster.pid")).readline().strip()
        agent.must("restart")
        pid2 = open(os.path.join(srv.datadir, "postmaster.pid")).readline().strip()
        check(pid != pid2 and srv.can_connect("bob", BOB_PASSWORD, "shop"), "restart made a new postmaster")

        # a crash shows in status
        srv.kill()
        harness.wait_for(lambda: agent.must("status")["state"] == "crashed", 10, "crashed state")
        time.sleep(1)   # orphaned backends notice the postmaster's death and exit
        harness.wait_for(lambda: agent.call("start").ok, 30, "start after a crash", interval=0.5)
        check(srv.can_connect("bob", BOB_PASSWORD, "shop"), "data survives the crash")

        # prepare refuses to initialise without the admin password
        other = PgServer(env, "pg2")
        bad = harness.Agent(env, "postgres", other.settings(password=""), instance_id="inst-b")
        r = bad.call("prepare", {})
        check(r.code == "invalid_argument" and not os.path.exists(os.path.join(other.datadir, "PG_VERSION")),
              f"prepare without a password: {r}")
    print("postgres lifecycle: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
