"""Streaming replication between two real PostgreSQL servers, driven through
the agents: snapshot + attach makes a standby that streams from a slot with
a non-superuser replication account; a write acknowledged on the primary
before a switchover is present on the promoted standby; the old primary
follows the new one after pg_rewind; positions compare as numbers."""
import sys

import harness
from harness import check
from postgres_server import PgServer, available


def rows(srv):
    return srv.psql("SELECT string_agg(k, ',' ORDER BY k) FROM t", "shop").strip()


def refuses_writes(srv):
    """The server answers and refuses a write because it is read-only (not
    because it is down or the statement is wrong)."""
    r = srv.psql_run("INSERT INTO t VALUES ('refused')", "shop")
    return r.returncode != 0 and "read-only transaction" in r.stderr.decode("utf-8", "replace")


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        backups = env.mkdir("backups")
        p = PgServer(env, "p").initdb().start()
        r = PgServer(env, "r")           # empty: the snapshot seeds it
        agent_p = harness.Agent(env, "postgres", p.settings(), instance_id="inst-p", backup_dir=backups)
        agent_r = harness.Agent(env, "postgres", r.settings(), instance_id="inst-r", backup_dir=backups)

        agent_p.must("database.create", {"name": "shop"})
        p.psql("CREATE TABLE t (k text PRIMARY KEY); INSERT INTO t VALUES ('before-snapshot')", "shop")

        snap = agent_p.must("replication.snapshot")
        user, password = snap["user"], snap["password"]
        check(user.startswith("trove_repl_") and len(password) >= 16, f"replication account: {user}")
        flags = p.psql(f"SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = '{user}'")
        check(flags.strip() == "f|t|t", f"REPLICATION LOGIN, not superuser: {flags}")
        check(snap["meta"]["slot_name"] == user, f"slot in the snapshot meta: {snap['meta']}")
        check(p.psql(f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{user}'").strip() == "1",
              "the slot exists on the primary")
        # The account logs in (pg_rewind reads through the maintenance database), so
        # its password is right and the server is up; tenant data stays closed to it.
        check(p.can_connect(user, password, "postgres"), "the replication account logs in")
        read = p.psql_run("SELECT count(*) FROM t", "shop", user, password)
        why = read.stderr.decode("utf-8", "replace")
        check(read.returncode != 0 and ("permission denied" in why or "no pg_hba.conf entry" in why),
              f"the replication account cannot read data: rc {read.returncode}, {why.strip()!r}")
        check(user not in [u["name"] for u in agent_p.must("user.list")["users"]], "replication account hidden")
        check(agent_p.call("user.delete", {"name": user}).code == "failed_precondition", "and protected")

        source = {"host": p.host, "port": p.port, "user": user, "password": password}
        agent_r.must("replication.attach", {"source": source, "snapshot": snap["backup"]["id"]})
        st_r, st_p = agent_r.must("status"), agent_p.must("status")
        check(st_r["role"] == "replica" and st_p["role"] == "primary", f"roles: {st_r.result} {st_p.result}")
        status = agent_r.must("replication.status")
        check(status["io_state"] == "streaming" and status["source_port"] == p.port, f"status: {status.result}")
        check(agent_p.must("replication.status")["replica_count"] == 1, "the primary sees its standby")

        p.psql("INSERT INTO t VALUES ('streamed')", "shop")
        pos = agent_p.must("replication.position")["position"]
        agent_r.must("replication.wait", {"position": pos, "timeout_ms": 20000})
        check(rows(r) == "before-snapshot,streamed", f"the standby has the write: {rows(r)}")
        check(refuses_writes(r), "the standby is read-only")
        w = agent_r.call("replication.wait", {"position": "FFFFFFF/0", "timeout_ms": 300})
        check(w.code == "timeout", f"wait past the end times out: {w}")

        # positions are numbers, not strings
        for a, b, want in [("0/10", "0/9", "after"), ("1/0", "0/FFFFFFFF", "after"), ("0/A", "0/a", "equal"),
                           ("0/16B3748", "0/16B3750", "before")]:
            got = agent_p.must("replication.compare", {"a": a, "b": b})["order"]
            check(got == want, f"compare {a} {b}: {got}")
        check(agent_p.call("replication.compare", {"a": "0-1", "b": "0/1"}).code == "invalid_argument", "bad LSN")

        # switchover: an acknowledged write survives
        p.psql("INSERT INTO t VALUES ('acknowledged')", "shop")
        agent_p.must("replication.read_only", {"read_only": True})
        check(refuses_writes(p), "old primary is read-only")
        pos = agent_p.must("replication.position")["position"]
        agent_r.must("replication.wait", {"position": pos, "timeout_ms": 20000})
        agent_r.must("replication.promote")
        st_r = agent_r.must("status")
        check(st_r["role"] in ("standalone", "primary") and st_r["term"] == 2, f"promoted: {st_r.result}")
        check("acknowledged" in rows(r).split(","), f"acknowledged write on the new primary: {rows(r)}")
        r.psql("INSERT INTO t VALUES ('on-new-primary')", "shop")

        # the old primary follows the new one (pg_rewind)
        new_source = {"host": r.host, "port": r.port, "user": user, "password": password}
        agent_p.must("replication.demote", {"source": new_source})
        st_p = agent_p.must("status")
        check(st_p["role"] == "replica" and st_p["term"] == 2, f"old primary follows: {st_p.result}")
        r.psql("INSERT INTO t VALUES ('followed')", "shop")
        pos = agent_r.must("replication.position")["position"]
        agent_p.must("replication.wait", {"position": pos, "timeout_ms": 20000})
        check(rows(p) == rows(r) and "followed" in rows(p), f"old primary caught up: {rows(p)}")
        check(refuses_writes(p), "the new standby is read-only")
        slot = agent_p.must("replication.status")
        check(slot["source_port"] == r.port, f"streams from the new primary: {slot.result}")

        # detach: a standalone, writable server; its slot on the source goes away
        agent_p.must("replication.detach")
        p.psql("INSERT INTO t VALUES ('detached')", "shop")
        check(agent_p.must("status")["role"] in ("standalone", "primary"), "detached")
        harness.wait_for(lambda: r.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE "
                                        "'trove_standby_%'").strip() == "0", 10, "slot dropped on the source")
        check(agent_r.call("replication.attach", {"source": {"host": "127.0.0.1"}}).code == "invalid_argument",
              "attach without a port")
    print("postgres replication: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
