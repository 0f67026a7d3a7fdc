"""Guest logs through the agent on a real MariaDB: log.list names the error log
(system) and the slow query and general logs (user) with their sizes; after
slow_query_log and general_log are turned on with config.apply, a statement
run by a tenant shows in log.tail of both; log.tail returns at most the bytes
asked for, from a line start; log.fetch copies the
whole file with its size and checksum; a log that does not exist is refused,
and the log files' paths cannot be moved through the configuration.
"""
import hashlib
import os

import harness
import mysql_server
from harness import check

MARKER = "guest_log_marker_7f3a"


def logs_by_name(agent):
    return {log["name"]: log for log in agent.must("log.list")["logs"]}


def file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def quiet(path):
    """The file once it has not grown for a second (a restarted server finishes
    loading its buffer pool in the background, and logs that)."""
    last = [None]

    def settled():
        now = file_bytes(path)
        same = now == last[0]
        last[0] = now
        return same
    harness.wait_for(settled, 30, f"{path} to stop growing", interval=1.0)
    return last[0]


def test_list_and_error_log(env, server, agent):
    logs = logs_by_name(agent)
    check(set(logs) == {"error", "slow_query", "general"}, f"log.list: {logs}")
    check(logs["error"]["type"] == "system" and logs["slow_query"]["type"] == "user" and
          logs["general"]["type"] == "user", f"log types: {logs}")
    check(all(log["description"] for log in logs.values()), f"a log without a description: {logs}")
    agent.must("restart")   # the error log says so
    error = quiet(server.log)
    check(logs_by_name(agent)["error"]["bytes"] == len(error), "log.list's size of the error log is not the file's")
    tail = agent.must("log.tail", {"name": "error", "bytes": 4096}).result
    check(tail["bytes"] <= 4096 and len(tail["data"].encode()) == tail["bytes"], f"tail of 4096 bytes: {tail}")
    check(error.decode("utf-8", "replace").endswith(tail["data"]) and "ready for connections" in tail["data"],
          f"the error log's tail is not the end of {server.log}: {tail['data'][-300:]!r}")
    short = agent.must("log.tail", {"name": "error", "bytes": 400}).result
    check(0 < short["bytes"] <= 400, f"a tail of 400 bytes: {short}")
    check(error.endswith(short["data"].encode()) and error[-short["bytes"] - 1:-short["bytes"]] == b"\n",
          f"a short tail does not start at a line: {short['data']!r}")

    got = agent.must("log.fetch", {"name": "error"}).result
    with open(got["path"], "rb") as f:
        copy = f.read()
    check(copy == error and got["bytes"] == len(copy), f"log.fetch of the error log is not the file: {got}")
    check(got["checksum"] == "sha256:" + hashlib.sha256(copy).hexdigest(), f"log.fetch checksum: {got}")


def test_slow_and_general_logs(env, server, agent):
    before = logs_by_name(agent)
    check(before["general"]["bytes"] == 0 and before["slow_query"]["bytes"] == 0,
          f"the general and slow logs are written before they were turned on: {before}")
    empty = agent.must("log.tail", {"name": "general", "bytes": 1000}).result
    check(empty["bytes"] == 0 and empty["data"] == "", f"the tail of a log never written: {empty}")

    applied = agent.must("config.apply", {"values": {"slow_query_log": "ON", "long_query_time": "0",
                                                     "general_log": "ON"}}).result
    check(set(applied.get("applied", [])) == {"slow_query_log", "long_query_time", "general_log"},
          f"the logs were not turned on live: {applied}")
    agent.must("user.create", {"name": "lena", "password": "pw-lena", "databases": []})
    cp = server.sql(f"SELECT '{MARKER}' AS m, SLEEP(0.01)", user="lena", password="pw-lena")
    check(cp.returncode == 0, f"lena's query: {cp.stderr}")

    for name, path in (("general", os.path.join(server.run_dir, "general.log")),
                       ("slow_query", os.path.join(server.run_dir, "slow.log"))):
        tail = agent.must("log.tail", {"name": name, "bytes": 65536}).result
        check(MARKER in tail["data"], f"the {name} log's tail does not hold the tenant's statement: {tail}")
        check(file_bytes(path).decode("utf-8", "replace").endswith(tail["data"]),
              f"the {name} log's tail is not the end of {path}")
        got = agent.must("log.fetch", {"name": name}).result
        with open(got["path"], "rb") as f:
            copy = f.read()
        check(MARKER.encode() in copy and got["checksum"] == "sha256:" + hashlib.sha256(copy).hexdigest() and
              got["bytes"] == len(copy), f"log.fetch of {name}: {got}")
        check(logs_by_name(agent)[name]["bytes"] >= len(copy), f"log.list's size of {name}")
    check(b"pw-lena" not in file_bytes(os.path.join(server.run_dir, "general.log")),
          "the tenant's password is in the general log a tenant may fetch")


def test_bad_requests(env, server, agent):
    for name in ("no-such-log", "../error", "error.log"):
        r = agent.call("log.tail", {"name": name})
        check(not r.ok and r.code in ("not_found", "invalid_argument") and r.message, f"log.tail of {name!r}: {r}")
    for key in ("general_log_file", "slow_query_log_file", "log_error"):
        r = agent.call("config.apply", {"values": {key: "/etc/shadow"}})
        check(not r.ok and r.code == "invalid_argument", f"config.apply moved {key}: {r}")
    check(server.scalar("SELECT @@general_log_file") == os.path.join(server.run_dir, "general.log"),
          "the general log's file moved")


def main():
    with harness.Env(prefix="mysql-logs-") as env:
        server = mysql_server.MysqlServer(env, 0)
        agent = mysql_server.agent_for(env, server)
        agent.must("prepare", {"databases": [{"name": "shop"}]})
        test_list_and_error_log(env, server, agent)
        test_slow_and_general_logs(env, server, agent)
        test_bad_requests(env, server, agent)
    print("mysql logs: passed")


if __name__ == "__main__":
    main()
