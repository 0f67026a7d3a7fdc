"""Lifecycle through the agent: prepare a fresh instance (install, start, admin,
root, overrides, databases, users), stop, start, restart, and a crash that the
next status reports; a prepare with bad input (an empty host, a protected name,
an empty character set) refused before anything is installed. Checked from
the outside: the server's pid, the stock client, and the server's own
variables.
"""
import os

import harness
import mysql_server
from harness import check

PASSWORD = "p'a\"s\\s w0rd"


def state(agent):
    return agent.must("status")["state"]


def test_prepare(env):
    server = mysql_server.MysqlServer(env, 0)   # nothing installed yet
    agent = mysql_server.agent_for(env, server)
    st = agent.must("status").result
    check(st["state"] == "new", f"status before prepare: {st}")
    r = agent.call("start")
    check(not r.ok and r.code == "failed_precondition", f"start before prepare: {r}")

    agent.must("prepare", {
        "databases": [{"name": "shop"}, {"name": "sales", "character_set": "utf8mb4"}],
        "users": [{"name": "alice", "password": PASSWORD, "databases": ["shop"]}],
        "overrides": {"max_connections": "217", "innodb_log_buffer_size": "33554432"},
    })
    check(server.alive(), "mariadbd is not running after prepare")
    check(state(agent) == "running", "status after prepare is not running")
    check({"shop", "sales"} <= server.databases(), f"prepare did not create the databases: {server.databases()}")
    cp = server.sql("SHOW DATABASES", user="alice", password=PASSWORD)
    check(cp.returncode == 0 and set(cp.stdout.split()) == {"information_schema", "shop"},
          f"alice after prepare: {cp.stdout} {cp.stderr}")
    check(server.scalar("SELECT @@max_connections") == "217", "the max_connections override is not in effect")
    check(server.scalar("SELECT @@innodb_log_buffer_size") == "33554432",
          "the innodb_log_buffer_size override (restart-only) is not in effect")
    for sock in (False, True):
        cp = server.sql_access("SELECT 1", "root", "", socket=sock)
        check(cp.returncode != 0, f"root logs in with an empty password after prepare (socket={sock})")
    check(agent.must("root.show")["enabled"] is False, "root.show says enabled after a prepare without root")
    return server, agent


def test_stop_start_restart(server, agent):
    pid = server.pid()
    agent.must("stop")
    check(not server.alive(), "mariadbd still runs after stop")
    st = agent.must("status").result
    check(st["state"] == "stopped", f"status after stop: {st}")
    agent.must("stop")   # stopping a stopped server is fine
    agent.must("start")
    check(server.alive() and server.pid() != pid, "start did not start a new mariadbd")
    check(state(agent) == "running", "status after start")
    check(server.scalar("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'") == "1",
          "shop is gone after stop/start")
    check(server.scalar("SELECT @@max_connections") == "217", "the override did not survive a restart")
    agent.must("start")   # starting a running server is fine
    pid = server.pid()
    agent.must("restart")
    check(server.alive() and server.pid() != pid, "restart did not replace the process")
    check(state(agent) == "running", "status after restart")


def test_crash(server, agent):
    server.crash()
    st = agent.must("status").result
    check(st["state"] == "crashed", f"status after the server was killed: {st}")
    check(st["message"], "a crashed status has no message")
    agent.must("start")
    check(state(agent) == "running", "status after starting a crashed server")
    cp = server.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'alice'")
    check(cp.stdout.strip() == "1", "alice is gone after crash recovery")


def test_prepare_refuses_bad_input(env):
    """A prepare whose users or databases are invalid changes nothing: no data directory, no server. An
    empty host in particular is refused, not turned into '%'."""
    server = mysql_server.MysqlServer(env, 2)
    agent = mysql_server.agent_for(env, server)
    bad = [({"users": [{"name": "eve", "host": "", "password": PASSWORD}]}, "host must not be empty"),
           ({"users": [{"name": "root", "password": PASSWORD}]}, "system user"),
           ({"users": [{"name": "eve", "password": PASSWORD, "databases": ["mysql"]}]}, "system database"),
           ({"databases": [{"name": "shop", "character_set": ""}]}, "must not be empty"),
           ({"databases": [{"name": "a.b"}]}, "must not contain"),
           ({"root_password": ""}, "password must not be empty")]
    for args, why in bad:
        r = agent.call("prepare", dict({"databases": [{"name": "shop"}]}, **args))
        check(not r.ok and r.code == "invalid_argument" and why in r.message, f"prepare with {args}: {r}")
        check(agent.must("status")["state"] == "new" and not server.alive(),
              f"a refused prepare ({args}) installed or started the server")
        check(not os.path.exists(server.datadir) or not os.listdir(server.datadir),
              f"a refused prepare ({args}) wrote into the data directory")


def test_empty_setting(env):
    """A [datastore] setting given an empty value is refused when the plugin opens, not read as its default."""
    server = mysql_server.MysqlServer(env, 3)
    for key in ("bind_address", "socket", "host", "replication_user"):
        agent = mysql_server.agent_for(env, server, instance_id=f"empty-{key}", **{key: ""})
        r = agent.call("status")
        check(not r.ok and r.code == "invalid_argument" and f'"{key}" is empty' in r.message,
              f"an agent with {key} = \"\": {r}")


def test_prepare_with_root(env):
    server = mysql_server.MysqlServer(env, 1)
    agent = mysql_server.agent_for(env, server)
    agent.must("prepare", {"root_password": "R00t'\" pw\\"})
    cp = server.sql("SELECT CURRENT_USER()", user="root", password="R00t'\" pw\\")
    check(cp.returncode == 0, f"root cannot log in with the prepare root_password: {cp.stderr}")
    check(agent.must("root.show")["enabled"] is True, "root.show after prepare with a root password")
    # A wrong admin password in the settings: the agent reports it, the server keeps running.
    wrong = harness.Agent(env, "mysql", server.settings(admin_password="wrong"), instance_id="wrong-admin")
    st = wrong.must("status").result
    check(st["state"] == "unknown" and "Access denied" in st["message"], f"status with a wrong admin password: {st}")


def main():
    with harness.Env(prefix="mysql-lifecycle-") as env:
        server, agent = test_prepare(env)
        test_stop_start_restart(server, agent)
        test_crash(server, agent)
        test_prepare_refuses_bad_input(env)
        test_empty_setting(env)
        test_prepare_with_root(env)
    print("mysql lifecycle: passed")


if __name__ == "__main__":
    main()
