"""Ping round trip through trovectl's path (libtrove-control -> trove-control ->
trove-agent with the mysql plugin, CURVE on) against bare libzmq echoes in the
same process (bench/ping.c), and the agent's resident memory at idle with the
mysql plugin loaded and connected to a real MariaDB.
usage: agent_bench.py BUILD_DIR"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ["TROVE_BUILD"] = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")

import harness  # noqa: E402
from controlplane import ControlPlane  # noqa: E402
from mysql_server import MysqlServer  # noqa: E402


def memory_kb(pid):
    """Rss, Pss and private (not shared with any other process) memory."""
    totals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                totals[parts[0][:-1]] = int(parts[1])
    return totals["Rss"], totals["Pss"], totals["Private_Clean"] + totals["Private_Dirty"]


def main():
    harness.BUILD = os.environ["TROVE_BUILD"]
    with harness.Env(prefix="trove-bench-") as env:
        server = MysqlServer(env).start()
        control = ControlPlane(env, log_level="warn")
        agent = control.agent("mysql", server.settings(), "bench-mysql", heartbeat_ms=5000, log_level="warn")
        control.start()
        proc = agent.serve()
        control.wait_connected("bench-mysql")
        out = subprocess.run([harness.build_path("bench", "ping-bench"), control.client_endpoint, "bench-mysql",
                              os.environ.get("PING_N", "5000")], capture_output=True, text=True)
        print(out.stdout, end="")
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            sys.exit(1)
        time.sleep(6)  # let a heartbeat (a status call on the plugin) happen
        rss, pss, private = memory_kb(proc.pid)
        print(f"agent idle memory with the mysql plugin loaded: RSS {rss / 1024:.1f} MB (goal <= 5 MB), "
              f"PSS {pss / 1024:.1f} MB, private {private / 1024:.1f} MB")


if __name__ == "__main__":
    main()
