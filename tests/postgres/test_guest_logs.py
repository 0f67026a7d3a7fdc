"""Guest logs of a real PostgreSQL through the agent: log.list names the
server log with its size; a slow statement (log_min_duration_statement)
and a restart show up in log.tail, which returns whole lines and no more
than asked; log.fetch copies the whole log with its checksum; an unknown log
is not_found; a server not managed here offers no log."""
import hashlib
import os
import sys

import harness
from harness import check
from postgres_server import PgServer, available


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        srv = PgServer(env).initdb().start()
        agent = harness.Agent(env, "postgres", srv.settings())

        logs = agent.must("log.list")["logs"]
        check([(x["name"], x["type"]) for x in logs] == [("server", "system")], f"one server log: {logs}")
        check(logs[0]["bytes"] == os.path.getsize(srv.log) and logs[0]["bytes"] > 0,
              f"its size is the log file's: {logs[0]} vs {os.path.getsize(srv.log)}")

        # a slow statement is logged where log.tail finds it
        agent.must("config.apply", {"values": {"log_min_duration_statement": "0"}})
        marker = "slow-statement-" + os.urandom(6).hex()
        srv.psql(f"SELECT '{marker}', pg_sleep(0.05)")
        tail = agent.must("log.tail", {"name": "server", "bytes": 400})
        check(marker in tail["data"] and "duration:" in tail["data"], f"the slow statement is in the tail: {tail.result}")
        check(tail["bytes"] <= 400 < os.path.getsize(srv.log), f"a bounded tail of a longer log: {tail.result}")

        # a tail is the end of the file, from a line start, never more than asked
        small = agent.must("log.tail", {"name": "server", "bytes": 200})
        data = small["data"].encode()
        whole = read(srv.log)
        check(0 < small["bytes"] <= 200 and len(data) == small["bytes"], f"at most 200 bytes: {small.result}")
        at = whole.rfind(data)
        check(at > 0 and whole[at - 1:at] == b"\n", f"the tail starts at a line: {data[:60]!r}")

        # a restart through the agent is in the log
        agent.must("restart")
        tail = agent.must("log.tail", {"name": "server", "bytes": 16384})["data"]
        check("database system is ready to accept connections" in tail.split("received fast shutdown request")[-1],
              "the fast shutdown and the new start are in the tail")

        # the whole log, copied on the guest with its checksum
        got = agent.must("log.fetch", {"name": "server"})
        copy = read(got["path"])
        check("sha256:" + hashlib.sha256(copy).hexdigest() == got["checksum"] and len(copy) == got["bytes"],
              f"the copy matches its checksum and size: {got.result}")
        check(read(srv.log).startswith(copy) and marker.encode() in copy and len(copy) >= len(whole),
              "the copy is the server log (which may have grown since)")
        too_small = agent.call("log.fetch", {"name": "server", "max_bytes": 100})
        check(not too_small.ok, f"a log larger than max_bytes is refused: {too_small}")

        for name in ("nope", "../server", "error"):
            r = agent.call("log.tail", {"name": name})
            check(r.code in ("not_found", "invalid_argument"), f"log {name!r} does not exist: {r}")

        # a server not managed here (no data directory, no log file setting) has no log to offer
        remote = harness.Agent(env, "postgres", srv.settings(datadir="", log_file=""), instance_id="inst-remote")
        check(remote.must("log.list").get("logs", []) == [], "no log for a server managed elsewhere")
        check(remote.call("log.tail", {"name": "server"}).code == "not_found", "and server is not_found there")
    print("postgres guest logs: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
