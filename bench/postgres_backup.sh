#!/bin/bash
# Backup throughput of the PostgreSQL plugin: the whole pipeline through the
# agent (`trove-agent call backup.create`: pg_basebackup tar, zstd, SHA-256,
# storage, backup-history lookup) against pg_basebackup alone writing the same
# single tar into a file, on the same ~100 MB cluster in the same run,
# interleaved. Goal: pipeline >= 0.9x.
#
# usage: bench/postgres_backup.sh BUILD_DIR [MB] [ROUNDS]
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [MB] [ROUNDS]}" && pwd)
MB=${2:-100}
ROUNDS=${3:-3}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
exec env TROVE_BUILD="$BUILD" TROVE_SOURCE="$SOURCE" PYTHONPATH="$SOURCE/tests/lib" \
  /usr/bin/python3 - "$MB" "$ROUNDS" <<'PY'
import os, subprocess, sys, time
import harness
from postgres_server import PG_BIN, PgServer, chown_os_user

mb, rounds = int(sys.argv[1]), int(sys.argv[2])


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


with harness.Env(prefix="bench-postgres-") as env:
    pg = PgServer(env, "pg").initdb().start()
    agent = harness.Agent(env, "postgres", pg.settings(), log_level="warn")
    # ~200 bytes a row of hex text (compresses about 2:1, like real payloads)
    rows = mb * 1024 * 1024 // 200
    pg.psql(f"CREATE TABLE bench AS SELECT g AS id, md5(random()::text) || md5(random()::text) AS a, "
            f"md5(random()::text) || md5(random()::text) AS b FROM generate_series(1, {rows}) g; CHECKPOINT")
    agent.must("backup.create", {"kind": "full"})     # warm-up: turns on WAL archiving (one restart)
    out = env.path("native.tar")
    native_env = pg.psql_env(pg.admin_password)

    def native():
        with open(out, "wb") as f:
            subprocess.run([os.path.join(PG_BIN, "pg_basebackup"), "-D", "-", "-Ft", "-X", "fetch",
                            "--no-manifest", "-c", "fast", "-h", pg.host, "-p", str(pg.port), "-U", "postgres",
                            "-w"], stdout=f, env=native_env, check=True, stderr=subprocess.PIPE)

    def pipeline():
        agent.must("backup.create", {"kind": "full"})

    native_t, pipe_t = [], []
    for _ in range(rounds):          # interleaved, so both see the same machine state
        native_t.append(timed(native))
        pipe_t.append(timed(pipeline))
    size = os.path.getsize(out)
    stored = max(os.path.getsize(os.path.join(agent.backup_dir, f)) for f in os.listdir(agent.backup_dir)
                 if f.endswith(".zst"))
    n, p = min(native_t), min(pipe_t)
    print(f"cluster: {dir_size(pg.datadir) / 1e6:.1f} MB on disk, base backup tar {size / 1e6:.1f} MB, "
          f"stored {stored / 1e6:.1f} MB (zstd)")
    print(f"pg_basebackup alone to a file: {n:.2f} s  {size / n / 1e6:.0f} MB/s  (best of {rounds})")
    print(f"agent pipeline backup.create: {p:.2f} s  {size / p / 1e6:.0f} MB/s  (best of {rounds})")
    print(f"ratio pipeline/native throughput: {n / p:.2f}x (goal >= 0.9x)")
PY
