"""The ABI's growth rules, seen through the agent: a plugin of an older minor
(shorter table, shorter structs) loads and its missing slots answer
not_supported and are absent from the capabilities; a plugin of a newer minor
(longer table and structs, enum values and statuses the agent does not know)
loads, its extra fields are ignored and unknown values map to their
documented fallbacks; the agent's own structs and host table are found by
their sizes. Under AddressSanitizer any read or write past a size the plugin
declared aborts the agent and fails these tests."""
import harness
from harness import check

FIXTURES = harness.build_path("tests", "agent")


def agent(env, plugin):
    a = harness.Agent(env, plugin, {}, instance_id="abi")
    with open(a.config) as f:
        text = f.read()
    with open(a.config, "w") as f:
        f.write(text.replace(f"plugin_dir = {harness.plugin_dir(plugin)}", f"plugin_dir = {FIXTURES}"))
    return a


def expect(r, code, what):
    check(not r.ok and r.code == code, f"{what}: expected {code}, got {r}")
    check(r.message, f"{what}: the error has no message")


def test_older_minor_loads_and_missing_slots_are_not_supported():
    with harness.Env() as env:
        a = agent(env, "shortminor")
        ping = a.must("ping").result
        caps = set(ping["capabilities"])
        check(ping["abi"] == {"major": 2, "minor": 0}, f"ping reports the plugin's ABI as {ping['abi']}")
        check({"ping", "status", "start", "user.create", "user.list", "config.schema"} <= caps,
              f"slots the short table has are not announced: {sorted(caps)}")
        for op in ("replication.credentials", "database.alter", "cluster.join", "cluster.leave",
                   "cluster.status", "log.list", "log.tail", "log.fetch", "user.delete", "backup.create"):
            check(op not in caps, f"{op} is announced though the plugin's table does not reach it")
            expect(a.call(op, {"name": "x"}), "not_supported", op)
        status = a.must("status").result
        check(status["state"] == "running" and status["role"] == "standalone", f"status: {status}")
        users = a.must("user.list").result["users"]
        check(users == [{"name": "olduser", "host": "%", "databases": []}],
              f"a short user struct was read past its size: {users}")
        params = a.must("config.schema").result["parameters"]
        check(params == [{"name": "oldparam", "type": "integer", "dynamic": False, "min": 0, "max": 0}],
              f"a short parameter struct was read past its size: {params}")
        a.must("user.create", {"name": "u", "password": "p"})   # exec with a struct lacking exit_status


def test_newer_minor_loads_and_unknown_values_fall_back():
    with harness.Env() as env:
        a = agent(env, "futureminor")
        ping = a.must("ping").result
        check(ping["abi"]["minor"] > 0 and "status" in ping["capabilities"], f"ping: {ping}")
        status = a.must("status").result
        check(status["state"] == "unknown" and status["role"] == "unknown",
              f"unknown state and role must read as unknown: {status}")
        order = a.must("replication.compare", {"a": "1", "b": "2"}).result["order"]
        check(order == "diverged", f"an unknown order must read as diverged, got {order}")
        r = a.call("user.delete", {"name": "x"})
        expect(r, "datastore_error", "an unknown status from the plugin")
        check("from the future" in r.message, f"the plugin's message was lost: {r.message!r}")
        params = a.must("config.schema").result["parameters"]
        check(params[0]["type"] == "string", f"a parameter of unknown type must read as a string: {params}")
        shown = a.must("user.show", {"name": "bob"}).result
        check(shown["user"] == {"name": "bob", "databases": []}, f"a longer user struct was misread: {shown}")
        r = a.call("database.list")
        expect(r, "invalid_argument", "a struct whose size was never set")
        check("size 0" in r.message and "sizeof(struct trove_database)" in r.message,
              f"the message must say how to fix it: {r.message!r}")


def test_newer_plugin_finds_the_agents_structs_by_their_sizes():
    with harness.Env() as env:
        a = agent(env, "futureminor")
        r = a.must("user.grant", {"name": "bob", "databases": ["d1", "d2"]}).result
        check(r["databases_seen"] == 2, f"the fields the agent knows did not arrive: {r}")
        check(r["saw_later_field"] is False, "the plugin read a field past the size of the agent's struct")
        check(r["saw_later_service"] is False, "the plugin saw a service past the size of the agent's host table")
        check(r["has_emit_member"] is True, "TROVE_HOST_HAS does not see a service the agent has")


if __name__ == "__main__":
    harness.run_tests(globals())
