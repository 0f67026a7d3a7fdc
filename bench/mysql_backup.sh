#!/bin/bash
# Backup throughput of the MySQL plugin: the whole pipeline through the agent
# (`trove-agent call backup.create`: mariadb-backup --stream, zstd, SHA-256,
# storage) against `mariadb-backup --backup --stream=xbstream` alone into a
# file, on the same ~100 MB of InnoDB data in the same run. Goal: >= 0.9x.
#
# usage: bench/mysql_backup.sh BUILD_DIR [MB] [ROUNDS]
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [MB] [ROUNDS]}" && pwd)
MB=${2:-100}
ROUNDS=${3:-3}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
exec env TROVE_BUILD="$BUILD" TROVE_SOURCE="$SOURCE" PYTHONPATH="$SOURCE/tests/lib" \
  /usr/bin/python3 - "$MB" "$ROUNDS" <<'PY'
import os, shutil, subprocess, sys, time
import harness
import mysql_server

mb, rounds = int(sys.argv[1]), int(sys.argv[2])


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


with harness.Env(prefix="bench-mysql-") as env:
    server = mysql_server.start_server(env, 0)
    agent = mysql_server.agent_for(env, server)
    # Incompressible 1 KB rows, like real payloads; the Sequence engine makes them server-side.
    server.admin_sql("CREATE DATABASE bench")
    server.admin_sql("CREATE TABLE t (id INT PRIMARY KEY, payload VARBINARY(1024)) ENGINE=InnoDB", database="bench")
    rows = mb * 1024
    for start in range(0, rows, 20000):
        end = min(rows, start + 20000)
        server.admin_sql(f"INSERT INTO t SELECT seq, RANDOM_BYTES(1024) FROM seq_{start + 1}_to_{end}",
                         database="bench", timeout=600)
    datadir_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(server.datadir) for f in fs) / 1e6
    creds = harness.secret_file(env.path("bench-client.cnf"),
                                f'[client]\nuser={server.admin_user}\nsocket={server.socket}\n'
                                f'password="{mysql_server._escape_option(server.admin_password)}"\n')
    out = env.path("native.xb")
    tmp = env.mkdir("native-tmp")

    def native():
        with open(out, "wb") as f:
            subprocess.run(["mariadb-backup", "--defaults-file=" + creds, "--backup", "--stream=xbstream",
                            "--target-dir=" + tmp], stdout=f, stderr=subprocess.DEVNULL, check=True)

    def native_zstd():
        """The same stream through the zstd CLI at the agent's level (1): what
        compression alone costs on this machine, for scale."""
        with open(out + ".zst", "wb") as f:
            backup = subprocess.Popen(["mariadb-backup", "--defaults-file=" + creds, "--backup", "--stream=xbstream",
                                       "--target-dir=" + tmp], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            subprocess.run(["zstd", "-1", "-q", "-c"], stdin=backup.stdout, stdout=f, check=True)
            backup.stdout.close()
            if backup.wait() != 0:
                raise RuntimeError("mariadb-backup failed")

    def pipeline():
        agent.must("backup.create", {"kind": "full"})

    native_t, pipe_t, zstd_t = [], [], []
    for _ in range(rounds):          # interleaved, so all see the same machine state
        native_t.append(timed(native))
        pipe_t.append(timed(pipeline))
        zstd_t.append(timed(native_zstd))
    size = os.path.getsize(out)
    stored = sum(os.path.getsize(os.path.join(agent.backup_dir, f)) for f in os.listdir(agent.backup_dir)
                 if f.endswith(".zst")) // rounds
    mbs = lambda t: size / t / 1e6
    n, p = min(native_t), min(pipe_t)
    print(f"data: {rows} rows of 1 KB, datadir {datadir_mb:.0f} MB, stream {size / 1e6:.1f} MB, best of {rounds}")
    print(f"native   mariadb-backup --stream > file : {n:6.3f} s  {mbs(n):7.1f} MB/s")
    print(f"pipeline trove-agent backup.create      : {p:6.3f} s  {mbs(p):7.1f} MB/s  (stored {stored / 1e6:.1f} MB zstd)")
    z = min(zstd_t)
    print(f"scale    mariadb-backup --stream | zstd -1 : {z:6.3f} s  {mbs(z):7.1f} MB/s")
    print(f"ratio pipeline/native: {n / p:.2f}x (goal >= 0.9x); pipeline/(native | zstd -1): {z / p:.2f}x")
PY
