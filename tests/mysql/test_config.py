"""Configuration through the agent: the schema, validation naming every
violation, apply (live ones with SET GLOBAL, all persisted, restart-only ones
pending), all-or-nothing when the server refuses one value, show, reset, and
the overrides surviving a restart. Values are read back from the server.
"""
import os

import harness
import mysql_server
from harness import check


def server_value(server, name):
    return server.scalar(f"SELECT @@GLOBAL.{name}")


def test_schema(agent):
    params = {p["name"]: p for p in agent.must("config.schema")["parameters"]}
    check(len(params) >= 40, f"the schema has only {len(params)} parameters")
    mc = params["max_connections"]
    check(mc["type"] in ("integer", 1) and mc["dynamic"] is True and mc["min"] == 10 and mc["max"] == 100000,
          f"max_connections in the schema: {mc}")
    check(params["innodb_log_buffer_size"]["dynamic"] is False, "innodb_log_buffer_size is not restart-only")
    for name in ("innodb_buffer_pool_size", "wait_timeout", "long_query_time", "binlog_format"):
        check(name in params, f"{name} is missing from the schema")
    return params


def test_validate(agent, server):
    r = agent.call("config.validate", {"values": {"max_connections": "5", "no_such_param": "1"}})
    check(not r.ok and r.code == "invalid_argument", f"validate of bad values: {r}")
    check("max_connections" in r.message and "no_such_param" in r.message, f"not every violation named: {r.message}")
    r = agent.call("config.validate", {"values": {"innodb_io_capacity": "5000", "innodb_io_capacity_max": "1000"}})
    check(not r.ok and "innodb_io_capacity" in r.message and "must not exceed" in r.message,
          f"a cross-parameter rule: {r}")
    agent.must("config.validate", {"values": {"max_connections": "300", "wait_timeout": "60"}})
    r = agent.call("config.apply", {"values": {"max_connections": "300", "innodb_io_capacity": "5000",
                                               "innodb_io_capacity_max": "1000"}})
    check(not r.ok and r.code == "invalid_argument", f"apply of an invalid set: {r}")
    check(server_value(server, "max_connections") == "151", "an invalid set changed max_connections")


def overrides_text(server):
    with open(os.path.join(server.run_dir, "overrides.cnf")) as f:
        return f.read()


def test_apply(agent, server):
    r = agent.must("config.apply", {"values": {"max_connections": "217", "wait_timeout": "100",
                                               "long_query_time": "2.5", "slow_query_log": "on",
                                               "innodb_log_buffer_size": "33554432"}})
    check(sorted(r["applied"]) == ["long_query_time", "max_connections", "slow_query_log", "wait_timeout"],
          f"applied: {r.result}")
    check(r["pending_restart"] == ["innodb_log_buffer_size"], f"pending: {r.result}")
    check(server_value(server, "max_connections") == "217", "max_connections not live")
    check(server_value(server, "wait_timeout") == "100", "wait_timeout not live")
    check(float(server_value(server, "long_query_time")) == 2.5, "long_query_time not live")
    check(server_value(server, "slow_query_log") == "1", "slow_query_log not live")
    check(server_value(server, "innodb_log_buffer_size") == "16777216", "a restart-only value changed live")
    text = overrides_text(server)
    for name in ("max_connections", "wait_timeout", "innodb_log_buffer_size"):
        check(name in text, f"{name} is not persisted in the overrides file")

    shown = agent.must("config.show", {"names": ["max_connections", "wait_timeout"]})["values"]
    check(shown == {"max_connections": "217", "wait_timeout": "100"}, f"config.show: {shown}")
    everything = agent.must("config.show")["values"]
    check(len(everything) >= 40 and everything["innodb_log_buffer_size"] == "16777216",
          f"config.show of every parameter: {len(everything)} values")
    r = agent.call("config.show", {"names": ["datadir"]})
    check(not r.ok and r.code == "invalid_argument", "config.show of a parameter outside the schema")


def test_all_or_nothing(agent, server):
    before = overrides_text(server)
    r = agent.call("config.apply", {"values": {"max_connections": "300", "wait_timeout": "200",
                                               "collation_server": "klingon_ci"}})
    check(not r.ok and r.code == "datastore_error" and "klingon_ci" in r.message,
          f"a value the server refuses: {r}")
    check(server_value(server, "max_connections") == "217", "max_connections was not rolled back")
    check(server_value(server, "wait_timeout") == "100", "wait_timeout was not rolled back")
    check(overrides_text(server) == before, "the overrides file changed after a failed apply")


def test_restart_and_reset(agent, server):
    agent.must("restart")
    check(server_value(server, "innodb_log_buffer_size") == "33554432", "the pending value is not in effect after restart")
    check(server_value(server, "max_connections") == "217", "max_connections did not survive the restart")
    r = agent.must("config.reset")
    check(sorted(r["applied"]) == ["long_query_time", "max_connections", "slow_query_log", "wait_timeout"],
          f"reset applied: {r.result}")
    check(r["pending_restart"] == ["innodb_log_buffer_size"], f"reset pending: {r.result}")
    check(server_value(server, "max_connections") == "151", "max_connections not back to its default")
    check(server_value(server, "wait_timeout") == "28800", "wait_timeout not back to its default")
    check("max_connections" not in overrides_text(server), "the overrides file still holds values after reset")
    agent.must("restart")
    check(server_value(server, "innodb_log_buffer_size") == "16777216", "the restart-only value is not reset")


def test_server_down(agent, server):
    agent.must("stop")
    r = agent.must("config.apply", {"values": {"max_connections": "250"}})
    check(r["pending_restart"] == ["max_connections"] and not r.get("applied"),
          f"apply on a stopped server: {r.result}")
    agent.must("start")
    check(server_value(server, "max_connections") == "250", "a value applied while stopped is not in effect at start")


def main():
    with harness.Env(prefix="mysql-config-") as env:
        server = mysql_server.start_server(env, 0)
        agent = mysql_server.agent_for(env, server)
        test_schema(agent)
        test_validate(agent, server)
        test_apply(agent, server)
        test_all_or_nothing(agent, server)
        test_restart_and_reset(agent, server)
        test_server_down(agent, server)
    print("mysql config: passed")


if __name__ == "__main__":
    main()
