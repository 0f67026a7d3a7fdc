"""Configuration through the agent: the schema has real types and ranges, a
live change shows in CONFIG GET and in the config file (CONFIG REWRITE), a
restart-only change is pending and applies at restart (and survives an
unrelated CONFIG REWRITE meanwhile), bad sets change nothing, reset restores
the defaults."""
import harness
from harness import check
from redis_server import RedisServer


def file_has(server, line):
    with open(server.config_file) as f:
        return any(l.strip() == line for l in f)


def main():
    with harness.Env(prefix="redis-config-") as env:
        server = RedisServer(env).start()
        agent = harness.Agent(env, "redis", server.settings)
        params = {p["name"]: p for p in agent.must("config.schema")["parameters"]}
        check(len(params) >= 20, f"only {len(params)} parameters in the schema")
        check(params["maxmemory"]["type"] == "integer" and params["maxmemory"]["unit"] == "bytes", "maxmemory type")
        check(params["maxmemory-policy"]["type"] == "enum" and "allkeys-lru" in params["maxmemory-policy"]["allowed"],
              "maxmemory-policy enum")
        check(params["appendonly"]["type"] == "boolean" and params["appendonly"]["dynamic"], "appendonly")
        check(params["databases"]["dynamic"] is False, "databases must need a restart")
        check(params["hz"]["min"] == 1 and params["hz"]["max"] == 500, "hz range")

        r = agent.must("config.apply", {"values": {"maxmemory": "67108864", "maxmemory-policy": "allkeys-lru",
                                                   "appendonly": "on", "save": "900 1 300 10",
                                                   "notify-keyspace-events": "Ex"}})
        check(sorted(r["applied"]) == sorted(["maxmemory", "maxmemory-policy", "appendonly", "save",
                                              "notify-keyspace-events"]), f"applied: {r.result}")
        check(server.config_get("maxmemory") == "67108864", "maxmemory not live")
        check(server.config_get("maxmemory-policy") == "allkeys-lru", "policy not live")
        check(server.config_get("appendonly") == "yes", "appendonly not live")
        check(server.config_get("save") == "900 1 300 10", "save not live")
        check(file_has(server, "maxmemory 64mb") or file_has(server, "maxmemory 67108864"),
              "maxmemory not persisted by CONFIG REWRITE")
        shown = agent.must("config.show", {"names": ["maxmemory", "appendonly"]})["values"]
        check(shown == {"maxmemory": "67108864", "appendonly": "yes"}, f"config.show: {shown}")

        before = {n: server.config_get(n) for n in ("maxmemory", "hz", "save", "timeout")}
        bad_sets = [
            {"hz": "1000"}, {"maxmemory": "-1"}, {"maxmemory": "12mb"}, {"save": "abc"}, {"save": "900"},
            {"notify-keyspace-events": "Q"}, {"maxmemory-policy": "lru"}, {"appendonly": "maybe"},
            {"timeout": "10", "no-such-parameter": "1"}, {"dir": "/tmp"}, {"requirepass": "x"},
            {"active-defrag-cycle-min": "50", "active-defrag-cycle-max": "10"},
            {"timeout": "10", "save": "1 2 3"},
        ]
        for values in bad_sets:
            r = agent.call("config.apply", {"values": values})
            check(r.code == "invalid_argument", f"{values} was not refused: {r}")
            check(r.message, f"no message for {values}")
        # Accepted by the schema, refused by Redis itself (a save point needs at
        # least one second, whatever the machine): the datastore's error, and the
        # value set beside it is neither live nor written to the config file.
        r = agent.call("config.apply", {"values": {"timeout": "10", "save": "0 10"}})
        check(r.code == "datastore_error", f"a value Redis refuses: {r}")
        check("save" in r.message, f"the refusal names the parameter: {r.message}")
        check(server.config_get("timeout") == before["timeout"], "a refused set changed timeout")
        check(not file_has(server, "timeout 10"), "a refused set wrote timeout to the config file")
        after = {n: server.config_get(n) for n in ("maxmemory", "hz", "save", "timeout")}
        check(after == before, f"refused sets changed the server: {before} -> {after}")

        r = agent.must("config.apply", {"values": {"databases": "32", "hz": "20"}})
        check(r["pending_restart"] == ["databases"] and r["applied"] == ["hz"], f"restart-only: {r.result}")
        check(server.config_get("databases") == "16", "databases changed without a restart")
        agent.must("user.create", {"name": "u1", "password": "pw", "databases": ["u:*"]})   # another CONFIG REWRITE
        check(file_has(server, "databases 32"), "a CONFIG REWRITE lost the pending databases value")
        agent.must("restart")
        check(server.config_get("databases") == "32", "databases not applied at restart")
        check(server.config_get("hz") == "20", "hz lost across restart")
        check(server.config_get("maxmemory-policy") == "allkeys-lru", "policy lost across restart")

        r = agent.must("config.reset")
        check("databases" in r["pending_restart"] and "maxmemory" in r["applied"], f"reset: {r.result}")
        check(server.config_get("maxmemory") == "0" and server.config_get("maxmemory-policy") == "noeviction",
              "reset did not restore the defaults")
        agent.must("restart")
        check(server.config_get("databases") == "16", "reset of databases not applied at restart")
    print("redis config: passed")


if __name__ == "__main__":
    main()
