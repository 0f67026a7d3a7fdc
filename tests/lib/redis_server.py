"""Real redis-server processes for the Redis plugin's tests and its conformance
description. A server gets a config file written the way the plugin's prepare
writes one (so the plugin can stop, restart and restore it), a free loopback
port, an admin password for the "default" user, and is stopped when the
harness.Env closes, even if the plugin restarted it as a daemon.
"""
import hashlib
import os
import signal
import subprocess
import time

import harness

ADMIN_PASSWORD = "adm'in \"pw\\ 1"


def _quote(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RedisServer:
    def __init__(self, env, index=0, password=ADMIN_PASSWORD, extra_config=None):
        self.env = env
        self.index = index
        self.dir = env.mkdir(f"redis-{index}", mode=0o700)
        self.port = harness.free_port()
        self.password = password
        self.config_file = os.path.join(self.dir, "redis.conf")
        self.pid_file = os.path.join(self.dir, "redis.pid")
        self.log_file = os.path.join(self.dir, "redis.log")
        self.extra_config = extra_config or {}
        self.proc = None
        env.callback(self.stop)

    @property
    def settings(self):
        """The agent's [datastore] section for this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "password": self.password,
            "config_file": self.config_file,
            "dir": self.dir,
            "pid_file": self.pid_file,
            "log_file": self.log_file,
            "stop_timeout": 30,
            "start_timeout": 30,
            "sync_timeout": 60,
        }

    def write_config(self):
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            f"dir {_quote(self.dir)}",
            "dbfilename dump.rdb",
            f"pidfile {_quote(self.pid_file)}",
            f"logfile {_quote(self.log_file)}",
            'save ""',
            "appendonly no",
            "repl-diskless-sync-delay 0",
            f"user default on #{digest} ~* &* +@all",
        ]
        lines += [f"{k} {v}" for k, v in self.extra_config.items()]
        with open(self.config_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.config_file, 0o600)

    def start(self):
        """Start in the foreground as our child and wait until it answers."""
        if not os.path.exists(self.config_file):
            self.write_config()
        self.proc = harness.Proc(["redis-server", self.config_file, "--daemonize", "no"],
                                 os.path.join(self.dir, "stdout.log"))
        harness.wait_for(lambda: self.ping(), 20, f"redis-server on port {self.port}")
        return self

    def ping(self):
        return self.cli("PING", check=False).strip() == "PONG"

    def _pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def stop(self):
        """Stop our child, and any daemon the plugin started since."""
        if self.proc:
            self.proc.stop()
            self.proc = None
        pid = self._pid()
        if pid > 1 and _alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 20
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def cli(self, *args, user=None, password=None, db=None, check=True, timeout=30):
        """Run redis-cli as `user` (default: the admin); the password travels in
        REDISCLI_AUTH, never on argv. Returns stdout (errors appear there too)."""
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if user:
            argv += ["--user", user]
        if db is not None:
            argv += ["-n", str(db)]
        env = dict(os.environ)
        env["REDISCLI_AUTH"] = self.password if password is None else password
        cp = subprocess.run(argv + [str(a) for a in args], capture_output=True, env=env, timeout=timeout,
                            stdin=subprocess.DEVNULL)
        out = cp.stdout.decode("utf-8", "replace") + cp.stderr.decode("utf-8", "replace")
        if check and (cp.returncode != 0 or out.startswith(("ERR", "NOPERM", "WRONGPASS", "NOAUTH"))):
            raise AssertionError(f"redis-cli {' '.join(map(str, args))} failed: {out.strip()}")
        return out

    def config_get(self, name):
        out = self.cli("CONFIG", "GET", name).splitlines()
        return out[1] if len(out) > 1 else None

    def digest(self, databases=16):
        """A content digest of every database, and the key count, computed with
        redis-cli alone: each key's type, a canonical form of its value (sets
        and hashes sorted, since their order may change on reload; DUMP for
        the other types) and whether it has a TTL."""
        h = hashlib.sha256()
        count = 0
        for db in range(databases):
            for k in sorted(self._keys(db)):
                kind = self.cli("TYPE", k, db=db).strip()
                if kind == "set":
                    value = "\n".join(sorted(self.cli("--raw", "SMEMBERS", k, db=db).splitlines()))
                elif kind == "hash":
                    lines = self.cli("--raw", "HGETALL", k, db=db).splitlines()
                    value = "\n".join(sorted(f"{a}={b}" for a, b in zip(lines[::2], lines[1::2])))
                else:
                    # --no-raw escapes binary bytes, a faithful text form of DUMP's payload
                    value = self.cli("--no-raw", "DUMP", k, db=db)
                ttl = self.cli("TTL", k, db=db).strip()
                h.update(f"{db}\0{k}\0{kind}\0{len(value)}\0{value}\0{ttl != '-1'}\0".encode())
                count += 1
        return count, h.hexdigest()

    def _keys(self, db):
        out = self.cli("--scan", db=db)
        return [line for line in out.splitlines() if line]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False
