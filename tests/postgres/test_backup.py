"""Backups of a real PostgreSQL through the agent: a full base backup, two
incremental backups of archived WAL, and a logical dump, each restored into
another server (and in place) with the data checked from outside at each
point. A restored server keeps its own admin password and its users log in."""
import sys

import harness
from harness import check
from postgres_server import PgServer, available

CAROL_PW = "c'a\"r\\ol pw"


def write_batch(srv, batch, n=500):
    srv.psql("CREATE TABLE IF NOT EXISTS t (k text PRIMARY KEY, v text); "
             f"INSERT INTO t SELECT '{batch}-' || lpad(g::text, 5, '0'), md5(g::text || '{batch}') "
             f"FROM generate_series(1, {n}) g", "shop")


def content(srv):
    return srv.psql("SELECT count(*) || ':' || coalesce(md5(string_agg(k || '=' || v, ',' ORDER BY k)), '') FROM t",
                    "shop").strip()


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        backups = env.mkdir("backups")
        a = PgServer(env, "a").initdb().start()
        b = PgServer(env, "b")
        b.admin_password = "b's own admin pw"
        b.initdb().start()
        agent_a = harness.Agent(env, "postgres", a.settings(), instance_id="inst-a", backup_dir=backups)
        agent_b = harness.Agent(env, "postgres", b.settings(), instance_id="inst-b", backup_dir=backups)

        agent_a.must("database.create", {"name": "shop"})
        agent_a.must("user.create", {"name": "carol", "password": CAROL_PW, "databases": ["shop"]})
        write_batch(a, "b1")
        c1 = content(a)
        full = agent_a.must("backup.create", {"kind": "full"})["backup"]
        meta = full["meta"]
        check(full["state"] == "complete" and full["kind"] == "full", f"full backup: {full}")
        for key in ("start_lsn", "end_lsn", "timeline", "system_identifier", "server_version", "format"):
            check(key in meta, f"full backup meta has {key}: {meta}")
        check(meta["end_lsn_exact"] == "true" and meta["timeline"] == "1", f"exact end LSN: {meta}")
        r = agent_a.must("replication.compare", {"a": meta["start_lsn"], "b": meta["end_lsn"]})
        check(r["order"] in ("before", "equal"), f"start <= end: {r.result}")

        write_batch(a, "b2")
        c2 = content(a)
        inc1 = agent_a.must("backup.create", {"kind": "incremental", "parent": full["id"]})["backup"]
        check(inc1["parent"] == full["id"] and inc1["meta"]["start_lsn"] == meta["end_lsn"], f"inc1: {inc1}")
        write_batch(a, "b3")
        c3 = content(a)
        inc2 = agent_a.must("backup.create", {"kind": "incremental", "parent": inc1["id"]})["backup"]
        check(c1 != c2 != c3, "three distinct states")

        # the whole chain into another server, which keeps its own admin password
        agent_b.must("backup.restore", {"backup_id": inc2["id"]})
        check(content(b) == c3, f"full + 2 incrementals restored: {content(b)} vs {c3}")
        check(b.can_connect("carol", CAROL_PW, "shop"), "carol logs in to the restored server")
        st = agent_b.must("status")
        check(st["state"] == "running" and st["role"] == "standalone" and st["term"] >= 2,
              f"restored server promoted to a new timeline: {st.result}")
        b.psql("INSERT INTO t VALUES ('after-restore', 'x')", "shop")   # writable

        # the full backup alone, over the existing data
        agent_b.must("backup.restore", {"backup_id": full["id"]})
        check(content(b) == c1, "full backup restored alone")
        # the first incremental in place on the source itself
        agent_a.must("backup.restore", {"backup_id": inc1["id"]})
        check(content(a) == c2, "full + 1 incremental restored in place")
        check(a.psql("SHOW archive_command").find(a.archive) >= 0, "archiving still points at a's archive")
        # a new timeline: incrementals need a new full backup first
        r = agent_a.call("backup.create", {"kind": "incremental", "parent": inc2["id"]})
        check(r.code == "failed_precondition", f"incremental across a timeline change refused: {r}")
        full2 = agent_a.must("backup.create", {"kind": "full"})["backup"]
        write_batch(a, "b4")
        c4 = content(a)
        inc3 = agent_a.must("backup.create", {"kind": "incremental", "parent": full2["id"]})["backup"]
        agent_b.must("backup.restore", {"backup_id": inc3["id"]})
        check(content(b) == c4, "a chain taken after an in-place restore restores too")

        # logical
        write_batch(a, "b5")
        c5 = content(a)
        logical = agent_a.must("backup.create", {"kind": "logical"})["backup"]
        check(logical["meta"]["format"] == "pg_dumpall-sql", f"logical meta: {logical['meta']}")
        agent_b.must("backup.restore", {"backup_id": logical["id"]})
        check(content(b) == c5, "logical dump restored")
        check(b.can_connect("carol", CAROL_PW, "shop"), "carol logs in after a logical restore")
        check(b.psql("SELECT 1", password=b.admin_password).strip() == "1", "b keeps its admin password")
        r = agent_a.call("backup.create", {"kind": "incremental", "parent": logical["id"]})
        check(not r.ok, f"no incremental on a logical parent: {r}")
    print("postgres backup: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
