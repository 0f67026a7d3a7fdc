"""Configuration on a real PostgreSQL through the agent: the schema comes
from pg_settings, live parameters apply at once, restart-only ones are
reported pending until a restart, a failing set changes nothing, agent-owned
parameters are not offered, and reset removes every override."""
import sys

import harness
from harness import check
from postgres_server import PgServer, available


def overrides(srv):
    return dict(srv.rows("SELECT name, setting FROM pg_file_settings "
                         "WHERE sourcefile LIKE '%postgresql.auto.conf'"))


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        srv = PgServer(env).initdb().start()
        agent = harness.Agent(env, "postgres", srv.settings())

        params = {p["name"]: p for p in agent.must("config.schema")["parameters"]}
        check(len(params) > 200, f"the schema covers pg_settings: {len(params)}")
        wm = params["work_mem"]
        check(wm["type"] == "integer" and wm["dynamic"] is True and wm["unit"] == "kB" and wm["min"] == 64,
              f"work_mem: {wm}")
        mc = params["max_connections"]
        check(mc["type"] == "integer" and mc["dynamic"] is False, f"max_connections needs a restart: {mc}")
        check(params["wal_level"]["type"] == "enum" and "replica" in params["wal_level"]["allowed"], "wal_level enum")
        check(params["random_page_cost"]["type"] == "float", "float parameter")
        check(params["autovacuum"]["type"] == "boolean", "boolean parameter")
        for owned in ("archive_command", "archive_mode", "port", "listen_addresses", "shared_preload_libraries",
                      "ssl_cert_file", "primary_conninfo", "data_directory", "server_version"):
            check(owned not in params, f"{owned} is not offered")

        r = agent.must("config.apply", {"values": {"work_mem": "8192"}})
        check(r.get("applied") == ["work_mem"] and not r.get("pending_restart"), f"live apply: {r.result}")
        check(srv.psql("SHOW work_mem").strip() == "8MB", "work_mem is live")

        r = agent.must("config.apply", {"values": {"max_connections": "150"}})
        check(r.get("pending_restart") == ["max_connections"], f"restart parameter pending: {r.result}")
        check(srv.psql("SHOW max_connections").strip() == "100", "not applied before the restart")
        agent.must("restart")
        check(srv.psql("SHOW max_connections").strip() == "150", "applied after the restart")

        # all or nothing: the server refuses the second value, the first is rolled back
        before = overrides(srv)
        r = agent.call("config.apply", {"values": {"work_mem": "16384", "TimeZone": "Nowhere/Bogus"}})
        check(r.code == "datastore_error" and "Bogus" in r.message, f"server refusal reaches the user: {r}")
        check(overrides(srv) == before, f"nothing changed: {overrides(srv)} vs {before}")
        check(srv.psql("SHOW work_mem").strip() == "8MB", "work_mem unchanged")

        for values in ({"wal_level": "minimal"}, {"max_wal_senders": "0"}):
            r = agent.call("config.validate", {"values": values})
            check(r.code == "invalid_argument", f"validate {values}: {r}")
            r = agent.call("config.apply", {"values": values})
            check(r.code == "invalid_argument", f"apply {values}: {r}")
        r = agent.call("config.apply", {"values": {"archive_command": "rm -rf /"}})
        check(r.code == "invalid_argument", f"agent-owned parameter refused: {r}")
        check("archive_command" not in overrides(srv), "archive_command untouched")

        shown = agent.must("config.show", {"names": ["work_mem", "max_connections"]})["values"]
        check(shown == {"work_mem": "8192", "max_connections": "150"}, f"config.show: {shown}")
        allv = agent.must("config.show")["values"]
        check(len(allv) == len(params), "config.show with no names covers the schema")

        r = agent.must("config.reset")
        check(set(r.get("applied", [])) == {"work_mem"} and r.get("pending_restart") == ["max_connections"],
              f"reset reports: {r.result}")
        check(overrides(srv) == {}, f"no overrides left: {overrides(srv)}")
        check(srv.psql("SHOW work_mem").strip() == "4MB", "work_mem back to its default")
    print("postgres config: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
