"""trove-plugin-check's description of Redis (plugin "redis").

Redis has no named databases: its numbered databases are fixed by the
"databases" parameter, so database.create/delete are not supported. What a
Redis user is granted are key patterns, so the battery's "database" is the key
pattern "conformance:*": rows are keys under the prefix "conformance:" in
database 0, and a user granted the pattern can read them. Everything here
uses redis-cli, never the agent.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from trove_check.datastore import Datastore, Server  # noqa: E402
from redis_server import RedisServer  # noqa: E402


def _prefix(database):
    if not database.endswith("*") or any(c in database[:-1] for c in "*?[]\\"):
        raise ValueError(f"the Redis description needs a key pattern ending in '*', got {database!r}")
    return database[:-1]


def _quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RedisDatastore(Datastore):
    plugin = "redis"
    expect_unsupported = {"database.create", "database.delete"}
    databases = False
    test_database = "conformance:*"
    live_parameter = ("maxmemory-policy", "allkeys-lru")
    restart_parameter = ("databases", "32")
    incremental_backup = False

    def start_server(self, env, index):
        rs = RedisServer(env, index).start()
        server = Server(rs.settings, "127.0.0.1", rs.port)
        server.redis = rs
        return server

    def _pipe(self, server, commands):
        """Send commands to redis-cli on stdin (one per line, quoted) as the admin."""
        rs = server.redis
        env = dict(os.environ, REDISCLI_AUTH=rs.password)
        text = "\n".join(" ".join(_quote(a) for a in cmd) for cmd in commands) + "\n"
        cp = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(rs.port), "--no-auth-warning"],
                            input=text.encode(), capture_output=True, env=env, timeout=60)
        out = cp.stdout.decode("utf-8", "replace")
        if cp.returncode != 0 or any(line.startswith(("ERR", "NOPERM", "WRONGPASS")) for line in out.splitlines()):
            raise AssertionError(f"redis-cli failed: {out[-500:]} {cp.stderr[-500:]!r}")
        return out

    def write_rows(self, server, database, rows):
        prefix = _prefix(database)
        self._pipe(server, [("SET", prefix + k, v) for k, v in rows])

    def read_rows(self, server, database):
        prefix = _prefix(database)
        keys = sorted(k for k in server.redis.cli("--scan", "--pattern", database).splitlines() if k)
        if not keys:
            return []
        out = server.redis.cli("MGET", *keys).splitlines()
        if len(out) != len(keys):
            raise AssertionError(f"MGET returned {len(out)} values for {len(keys)} keys")
        return [(k[len(prefix):], v) for k, v in zip(keys, out)]

    def can_read(self, server, user, password, database, host=None):
        """Log in as `user` and GET a key under the pattern: allowed is an
        answer (a value or nil), refused is NOPERM or a failed login."""
        probe = _prefix(database) + "k1"
        out = server.redis.cli("GET", probe, user=user, password=password, check=False).strip()
        if out.startswith(("NOPERM", "WRONGPASS", "NOAUTH", "AUTH failed")):
            return False
        if out.startswith(("ERR", "Could not connect", "Error:")) or "\n" in out:
            raise AssertionError(f"GET as {user!r} was neither answered nor refused: {out[:300]!r}")
        return True

    def read_parameter(self, server, name):
        return server.redis.config_get(name)

    def same_value(self, name, wanted, reported):
        bools = {"on": "yes", "true": "yes", "1": "yes", "off": "no", "false": "no", "0": "no"}
        w, r = str(wanted).lower(), str(reported).lower()
        return w == r or (bools.get(w) == r and r in ("yes", "no"))


DATASTORE = RedisDatastore()
