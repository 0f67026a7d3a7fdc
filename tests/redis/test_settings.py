"""The [datastore] settings the agent hands the plugin: unknown keys are
refused, all named in one message, before anything runs; so are bad values
(relative paths, out-of-range integers, an unknown shutdown mode, a quote
that would end a config-file value, clashing user names), with the key
named; an
empty optional setting counts as absent; and every key the documentation
lists is accepted."""
import re

import harness
from harness import check
from redis_server import RedisServer


def doc_keys():
    """The keys of the settings table in docs/plugins/redis.md."""
    with open(harness.source_path("docs", "plugins", "redis.md")) as f:
        text = f.read()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    keys = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", section, re.M):
        keys.update(re.findall(r"`([a-z_]+)`", row))
    return keys


def refused(env, server, extra, name):
    agent = harness.Agent(env, "redis", dict(server.settings, **extra), instance_id=name)
    return agent.call("status")


def test_unknown_keys_are_refused_and_named():
    with harness.Env(prefix="redis-settings-") as env:
        server = RedisServer(env).start()
        r = refused(env, server, {"prot": "6380", "passwrd": "x", "config_fle": "/tmp/r.conf"}, "typo")
        check(r.code == "invalid_argument", f"unknown settings: {r}")
        check(all(k in r.message for k in ("prot", "passwrd", "config_fle")) and "unknown" in r.message,
              f"the message does not name every unknown key: {r.message}")
        # Nothing ran: the server still has only its own users.
        check(server.cli("ACL", "USERS").split() == ["default"], "an operation ran despite the refusal")


def test_bad_values_are_refused_with_the_key_named():
    with harness.Env(prefix="redis-settings-bad-") as env:
        server = RedisServer(env).start()
        cases = [
            ({"config_file": "redis.conf"}, "config_file"),
            ({"dir": "data"}, "dir"),
            ({"port": "0"}, "port"),
            ({"port": "6379x"}, "port"),
            ({"stop_timeout": "-5"}, "stop_timeout"),
            ({"shutdown": "later"}, "shutdown"),
            ({"dbfilename": 'dump" requirepass "x'}, "dbfilename"),
            ({"root_user": "default"}, "root_user"),
            ({"replication_user": ">pw"}, "replication_user"),
            ({"user": ""}, "user"),
        ]
        for i, (extra, key) in enumerate(cases):
            r = refused(env, server, extra, f"bad-{i}")
            check(r.code == "invalid_argument" and key in r.message, f"{extra} was not refused naming {key}: {r}")


def test_documented_keys_are_accepted_and_empty_means_absent():
    with harness.Env(prefix="redis-settings-ok-") as env:
        server = RedisServer(env).start()
        keys = doc_keys()
        check(len(keys) >= 20 and "config_file" in keys, f"the documented settings table: {sorted(keys)}")
        given = dict(server.settings)
        values = {"socket": "", "bind": "127.0.0.1", "user": "default", "redis_server": "redis-server",
                  "dbfilename": "dump.rdb", "root_user": "root", "replication_user": "replicator", "run_as": "",
                  "shutdown": "save", "connect_timeout_ms": "2000", "command_timeout_ms": "30000"}
        for key in keys - set(given):
            check(key in values, f"the test has no value for the documented setting {key}")
            given[key] = values[key]
        agent = harness.Agent(env, "redis", given)
        st = agent.must("status")
        check(st["state"] == "running", f"with every documented setting: {st.result}")
        agent.must("restart")   # socket "" is no socket: the agent still reaches the server over TCP
        check(agent.must("status")["state"] == "running", "the server is not running after a restart")


if __name__ == "__main__":
    harness.run_tests(globals())
