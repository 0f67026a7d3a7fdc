"""Create-to-ACTIVE of a MySQL instance through the REST API (trove-control
with the local provisioner: loop volume, key pair, detached agent, prepare
with one database and one user) against starting the same engine by hand in
the same run: mariadb-install-db, then mariadbd until it greets a client.
Both are timed until a client could connect; each is run ROUNDS times and the
median printed. Goal: create-to-ACTIVE <= 3 s. Runs as root (loop devices).
usage: mysql_create.py BUILD_DIR [ROUNDS]"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ["TROVE_BUILD"] = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3

import harness  # noqa: E402
from controlplane import keygen  # noqa: E402


def greets(port):
    """True once a MariaDB server on port sends its handshake packet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return len(s.recv(64)) > 4
    except OSError:
        return False


def by_hand(env, n):
    """mariadb-install-db, then mariadbd until it greets: the floor any create pays."""
    d = env.mkdir(f"hand-{n}")
    port = harness.free_port()
    t0 = time.monotonic()
    subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={d}/data",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    proc = env.spawn(["mariadbd", "--no-defaults", "--user=root", f"--datadir={d}/data", f"--socket={d}/sock",
                      f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={d}/pid",
                      f"--log-error={d}/err.log", "--skip-name-resolve"], f"mariadbd-{n}")
    harness.wait_for(lambda: greets(port), 60, "mariadbd to greet", interval=0.01)
    elapsed = time.monotonic() - t0
    proc.stop()
    shutil.rmtree(d, ignore_errors=True)
    return elapsed


class Service:
    def __init__(self, env):
        state = env.mkdir("state", mode=0o700)
        self.instances = env.mkdir("instances", mode=0o711)
        keygen(os.path.join(state, "server"))
        self.port = harness.free_port()
        config = harness.write_ini(env.path("control.conf"), {
            "control": {"agent_endpoint": f"tcp://127.0.0.1:{harness.free_port()}", "state_dir": state,
                        "server_key_file": os.path.join(state, "server.key"), "log_level": "warn",
                        "api_listen": f"127.0.0.1:{self.port}"},
            "provision": {"instances_dir": self.instances},
        })
        self.proc = env.spawn([harness.control_binary(), "-c", config], "trove-control")
        env.callback(self.cleanup)
        harness.wait_for(lambda: self.api("GET", "/flavors")[0] == 200, 30, "the REST API")

    def api(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1.0/bench{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None
        except OSError:
            return 0, None

    def create(self, n):
        body = {"instance": {"name": f"bench-{n}", "flavorRef": "1", "volume": {"size": 1},
                             "datastore": {"type": "mysql"}, "databases": [{"name": "shop"}],
                             "users": [{"name": "app", "password": "bench-pw-1", "databases": [{"name": "shop"}]}]}}
        t0 = time.monotonic()
        code, doc = self.api("POST", "/instances", body)
        if code != 200:
            raise RuntimeError(f"create: HTTP {code} {doc}")
        iid = doc["instance"]["id"]

        def active():
            code, doc = self.api("GET", f"/instances/{iid}")
            status = doc["instance"]["status"] if code == 200 else None
            if status in ("ERROR", "FAILED"):
                raise RuntimeError(f"create failed: {doc['instance'].get('fault')}")
            return status == "ACTIVE" and not doc["instance"].get("task") and doc["instance"]
        inst = harness.wait_for(active, 120, "ACTIVE", interval=0.02)
        elapsed = time.monotonic() - t0
        if not greets(inst["port"]):
            raise RuntimeError("ACTIVE, but the engine does not greet")
        self.api("DELETE", f"/instances/{iid}")
        harness.wait_for(lambda: self.api("GET", f"/instances/{iid}")[0] == 404, 120, "deleted", interval=0.1)
        return elapsed

    def cleanup(self):
        self.proc.stop()
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if line.split()[4].startswith(self.instances + "/"):
                    subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)


def main():
    harness.BUILD = os.environ["TROVE_BUILD"]
    with harness.Env(prefix="trove-bench-create-") as env:
        service = Service(env)
        hand, api = [], []
        for n in range(ROUNDS):   # interleaved, so both see the same machine
            hand.append(by_hand(env, n))
            api.append(service.create(n))
        h, a = statistics.median(hand), statistics.median(api)
        print(f"by hand (mariadb-install-db + mariadbd until it greets): median {h:.2f} s "
              f"({', '.join(f'{x:.2f}' for x in hand)})")
        print(f"REST create to ACTIVE (loop volume, agent, prepare with a database and a user): median {a:.2f} s "
              f"({', '.join(f'{x:.2f}' for x in api)})")
        print(f"ratio: {a / h:.2f}x the engine by hand (goal: create-to-ACTIVE <= 3 s)")
        sys.exit(0 if a <= 3.0 else 1)


if __name__ == "__main__":
    main()
