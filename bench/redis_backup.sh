#!/bin/bash
# Backup throughput of the Redis plugin: the whole pipeline through the agent
# (`trove-agent call backup.create`: RDB over PSYNC, zstd, SHA-256, storage)
# against the native tool alone fetching the same RDB into a file
# (`redis-cli --rdb`), on the same ~100 MB of data in the same run. Also
# prints a plain copy of the RDB file for scale. Goal: pipeline >= 0.9x.
#
# usage: bench/redis_backup.sh BUILD_DIR [MB] [ROUNDS]
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [MB] [ROUNDS]}" && pwd)
MB=${2:-100}
ROUNDS=${3:-3}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
exec env TROVE_BUILD="$BUILD" TROVE_SOURCE="$SOURCE" PYTHONPATH="$SOURCE/tests/lib" \
  /usr/bin/python3 - "$MB" "$ROUNDS" <<'PY'
import os, shutil, subprocess, sys, time
import harness
from redis_server import RedisServer

mb, rounds = int(sys.argv[1]), int(sys.argv[2])


def load(server, megabytes):
    """Random 1 KB values (incompressible, like real payloads), sent as RESP."""
    n = megabytes * 1024
    chunks = []
    for i in range(n):
        value = os.urandom(768).hex()[:1024].encode()
        key = f"bench:{i:08d}".encode()
        chunks.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
    env = dict(os.environ, REDISCLI_AUTH=server.password)
    subprocess.run(["redis-cli", "-p", str(server.port), "--no-auth-warning", "--pipe"], input=b"".join(chunks),
                   env=env, check=True, capture_output=True)


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


with harness.Env(prefix="bench-redis-") as env:
    server = RedisServer(env).start()
    agent = harness.Agent(env, "redis", server.settings, log_level="warn")
    load(server, mb)
    rdb = env.path("native.rdb")
    cli_env = dict(os.environ, REDISCLI_AUTH=server.password)

    def native():
        subprocess.run(["redis-cli", "-p", str(server.port), "--no-auth-warning", "--rdb", rdb], env=cli_env,
                       check=True, capture_output=True)

    def pipeline():
        agent.must("backup.create", {"kind": "full"})

    native_t, pipe_t = [], []
    for _ in range(rounds):          # interleaved, so both see the same machine state
        native_t.append(timed(native))
        pipe_t.append(timed(pipeline))
    size = os.path.getsize(rdb)
    copy_t = timed(lambda: shutil.copyfile(rdb, env.path("copy.rdb")))
    stored = sum(os.path.getsize(os.path.join(agent.backup_dir, f)) for f in os.listdir(agent.backup_dir)
                 if f.endswith(".zst")) // rounds
    mbs = lambda t: size / t / 1e6
    n, p = min(native_t), min(pipe_t)
    print(f"data: {size / 1e6:.1f} MB RDB ({mb * 1024} keys of 1 KB), best of {rounds}")
    print(f"native  redis-cli --rdb into a file : {n:6.3f} s  {mbs(n):7.1f} MB/s")
    print(f"pipeline trove-agent backup.create  : {p:6.3f} s  {mbs(p):7.1f} MB/s  (stored {stored / 1e6:.1f} MB zstd)")
    print(f"plain copy of the RDB file (scale)  : {copy_t:6.3f} s  {mbs(copy_t):7.1f} MB/s")
    print(f"ratio pipeline/native: {n / p:.2f}x (goal >= 0.9x)")
PY
