"""Guest logs through the agent (log.list, log.tail, log.fetch) on a server the
plugin prepared: the server log is the file redis-server writes, tails are
bounded and start at a line, a fetched copy is the whole log with a matching
checksum; the slow log has one line per command, oldest first, escapes what
would break a line, and holds no password; a log that does not exist is an
error, and the server log stays readable while the server is down."""
import hashlib
import re

import harness
from harness import check
from redis_server import RedisServer

USER_PASSWORD = "pw-logs-user-5Tq8RmZ3"
LINE = re.compile(r'^(\d+) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (\d+)us (\S+) (\S+)((?: "(?:[^"\\]|\\.)*")+)$')


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fetched(agent, name):
    r = agent.must("log.fetch", {"name": name})
    data = read(r["path"])
    check(r["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest() and r["bytes"] == len(data),
          f"log.fetch of {name}: the copy does not match its checksum or size: {r.result}")
    return data.decode()


def test_server_log_is_the_file_redis_writes():
    with harness.Env(prefix="redis-logs-") as env:
        server = RedisServer(env)   # not started: the plugin prepares it
        agent = harness.Agent(env, "redis", server.settings)
        agent.must("prepare", {})
        agent.must("restart")   # something to say: a stop and a start
        logs = {x["name"]: x for x in agent.must("log.list")["logs"]}
        check(set(logs) == {"server", "slowlog"}, f"log.list: {logs}")
        check(logs["server"]["type"] == "system" and logs["slowlog"]["type"] == "user", f"log types: {logs}")
        text = read(server.log_file).decode()
        check(logs["server"]["bytes"] == len(text.encode()), f"server log size {logs['server']} vs {len(text)}")
        check("Ready to accept connections" in text and "ready to exit, bye bye" in text,
              "the log file lacks the start and the stop")

        tail = agent.must("log.tail", {"name": "server", "bytes": 300})
        check(0 < tail["bytes"] <= 300 and len(tail["data"].encode()) == tail["bytes"], f"tail: {tail.result}")
        check(text.endswith(tail["data"]) and text[:-len(tail["data"])].endswith("\n"),
              f"the tail is not the end of the log from a line start: {tail['data']!r}")

        whole = fetched(agent, "server")
        check(read(server.log_file).decode().startswith(whole) and len(whole) >= len(text),
              "log.fetch did not copy the whole server log")

        agent.must("stop")
        after_stop = read(server.log_file).decode()
        tail = agent.must("log.tail", {"name": "server", "bytes": 4096})
        check(after_stop.endswith(tail["data"]) and "bye bye" in tail["data"],
              "the server log is not readable while the server is down")
        r = agent.call("log.tail", {"name": "slowlog", "bytes": 100})
        check(r.code == "unavailable", f"the slow log of a stopped server: {r}")
        for name in ("no-such-log", "../redis.log"):
            r = agent.call("log.tail", {"name": name, "bytes": 100})
            check(r.code in ("not_found", "invalid_argument"), f"log {name!r}: {r}")


def test_slow_log_has_one_line_per_command_and_no_password():
    with harness.Env(prefix="redis-logs-slow-") as env:
        server = RedisServer(env).start()
        agent = harness.Agent(env, "redis", server.settings)
        agent.must("config.apply", {"values": {"slowlog-log-slower-than": "0", "slowlog-max-len": "1000"}})
        agent.must("user.create", {"name": "app", "password": USER_PASSWORD, "databases": ["app:*"]})
        hostile = 'app:k "quoted"\nnext line\\ \x01'
        server.cli("SET", hostile, "v")
        for i in range(40):
            server.cli("SET", f"app:n{i}", "x" * 50)

        whole = fetched(agent, "slowlog")
        lines = whole.splitlines()
        check(whole.endswith("\n") and all(LINE.match(l) for l in lines),
              f"slow log lines do not parse: {[l for l in lines if not LINE.match(l)][:3]}")
        ids = [int(LINE.match(l).group(1)) for l in lines]
        check(ids == sorted(ids) and len(ids) >= 40, f"the slow log is not oldest first, or short: {ids[:5]}...")
        check(any('"SET" "app:k \\"quoted\\"\\x0anext line\\\\ \\x01" "v"' in l for l in lines),
              "the hostile key is not escaped on one line")
        check('"ACL" "SETUSER" "(redacted)"' in whole, "the agent's own ACL SETUSER is not in the slow log")
        check(USER_PASSWORD not in whole and server.password not in whole, "a password is in the slow log")

        tail = agent.must("log.tail", {"name": "slowlog", "bytes": 400})
        check(0 < tail["bytes"] <= 400 and tail["data"].endswith("\n"), f"slow log tail: {tail.result}")
        tail_lines = tail["data"].splitlines()
        check(tail_lines and all(LINE.match(l) for l in tail_lines), "the tail does not start at a line")
        # Read again: the tail is a run of whole entries, and only the entries
        # of the calls since (their logins and SLOWLOG GETs) follow it.
        after = fetched(agent, "slowlog").splitlines()
        check(tail_lines[-1] in after, "the tail's last entry is not in the slow log")
        end = after.index(tail_lines[-1]) + 1
        check(after[end - len(tail_lines):end] == tail_lines and len(after) - end <= 4,
              f"the tail is not the end of the slow log: {len(after) - end} entries came after it")


if __name__ == "__main__":
    harness.run_tests(globals())
