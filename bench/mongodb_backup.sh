#!/bin/bash
# Backup throughput of the MongoDB plugin, against streaming the same data
# directory through tar alone into a file made durable (fsync), on the same
# data in the same run:
#   plugin    the plugin's full backup alone (the fsync lock, the data files
#             as a tar stream, unlock) through a minimal host that writes the
#             bytes to a file and fsyncs it (bench/mongodb_stream.c);
#   pipeline  the same through the agent (`trove-agent call backup.create`:
#             zstd, SHA-256, storage, fsync);
# plus zstd alone over the same tar, the floor of the agent's compression on
# this machine. Goal: >= 0.9x.
#
# The server is the mongod stand-in (tests/mongodb/standin: no MongoDB server
# exists for Debian 12), or a real mongod named by MONGOD. Its data files are
# what the tar streams; the stand-in's speed at loading them does not count.
#
# Data (4 KiB documents): hex (default: random hex text, about 2:1 with zstd,
# as the other engines' benchmarks use), documents (fields, words, numbers:
# about 4:1, and slow for zstd) or binary (random bytes, incompressible).
#
# usage: bench/mongodb_backup.sh BUILD_DIR [MB] [ROUNDS] [hex|documents|binary]
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [MB] [ROUNDS] [hex|documents|binary]}" && pwd)
MB=${2:-100}
ROUNDS=${3:-3}
DATA=${4:-hex}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -e "$BUILD/plugins/mongodb/mongodb.so" ] || [ ! -e "$BUILD/bench/mongodb-stream-bench" ]; then
  echo "skipped: the mongodb plugin is not built in $BUILD"
  exit 0
fi
exec env TROVE_BUILD="$BUILD" TROVE_SOURCE="$SOURCE" PYTHONPATH="$SOURCE/tests/lib" \
  /usr/bin/python3 - "$MB" "$ROUNDS" "$DATA" <<'PY'
import os, subprocess, sys, time
import bson
import harness
from mongodb_server import MongoServer

mb, rounds, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu order invoice customer shipped "
         "pending paid refund berlin paris lisbon oslo madrid vienna").split()


def document(rng, n):
    """About 4 KiB of what applications keep in MongoDB: named fields, words, numbers, dates."""
    words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))
    return {"_id": n, "customer": {"name": words(2), "email": f"{rng.choice(WORDS)}{n}@example.com",
                                   "city": rng.choice(WORDS)},
            "status": rng.choice(WORDS), "total": rng.randint(1, 10 ** 6) / 100,
            "created": bson.datetime.datetime(2024, 1 + n % 12, 1 + n % 28, n % 24),
            "lines": [{"sku": f"SKU-{rng.randint(0, 99999):05d}", "qty": rng.randint(1, 9), "note": words(8)}
                      for _ in range(24)],
            "comment": words(120)}


def load(server, megabytes, kind):
    """4 KiB documents, in batches: `documents` (fields, words and numbers: what applications store,
    about 4:1 with zstd), `hex` (random hex text, about 2:1) or `binary` (random bytes,
    incompressible: the worst case for a pipeline that compresses)."""
    import random
    rng = random.Random(7)
    c = server.admin()
    per_batch = 256
    for b in range(megabytes * 1024 // 4 // per_batch):
        docs = []
        for i in range(per_batch):
            n = b * per_batch + i
            if kind == "binary":
                docs.append({"_id": n, "data": bson.Binary(os.urandom(4096))})
            elif kind == "hex":
                docs.append({"_id": n, "data": os.urandom(2048).hex()})
            else:
                docs.append(document(rng, n))
        c.bench[f"c{b % 4}"].insert_many(docs)
    c.close()


def dir_size(path):
    total = 0
    for base, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "diagnostic.data"]
        total += sum(os.path.getsize(os.path.join(base, f)) for f in files if f != "mongod.lock")
    return total


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


with harness.Env(prefix="bench-mongodb-") as env:
    server = MongoServer(env).start()
    agent = harness.Agent(env, "mongodb", server.settings, log_level="warn")
    if kind not in ("documents", "hex", "binary"):
        sys.exit(f"unknown data kind {kind}: documents, hex or binary")
    load(server, mb, kind)
    size = dir_size(server.dbpath)
    tar_argv = ["tar", "-C", server.dbpath, "--exclude=./mongod.lock", "--exclude=./diagnostic.data", "-cf", "-", "."]
    out = env.path("native.tar")
    stream = harness.build_path("bench", "mongodb-stream-bench")
    settings = {k: v for k, v in server.settings.items() if k != "admin_password"}
    stream_argv = [stream, harness.build_path("plugins", "mongodb", "mongodb.so"), env.mkdir("stream-state", mode=0o700),
                   env.path("plugin.tar")] + [f"{k}={v}" for k, v in settings.items()]
    stream_env = dict(os.environ, MONGODB_ADMIN_PASSWORD=server.settings["admin_password"])

    def native():
        with open(out, "wb") as f:
            subprocess.run(tar_argv, stdout=f, check=True)
            os.fsync(f.fileno())

    def plugin():
        got = subprocess.run(stream_argv, env=stream_env, capture_output=True, check=True).stdout.split()
        return float(got[1])

    native_t, plugin_t, pipe_t = [], [], []
    for _ in range(rounds):          # interleaved, so all see the same machine state
        native_t.append(timed(native))
        plugin_t.append(plugin())
        pipe_t.append(timed(lambda: agent.must("backup.create", {"kind": "full"})))
    zstd_t = min(timed(lambda: subprocess.run(["zstd", "-1", "-q", "-c", "--single-thread", out],
                                              stdout=subprocess.DEVNULL, check=True)) for _ in range(rounds))
    stored = sum(os.path.getsize(os.path.join(agent.backup_dir, f)) for f in os.listdir(agent.backup_dir)
                 if f.endswith(".zst")) // rounds
    mbs = lambda t: size / t / 1e6
    n, q, p = min(native_t), min(plugin_t), min(pipe_t)
    what = {"documents": "application-like documents", "hex": "documents of random hex",
            "binary": "documents of random bytes"}[kind]
    print(f"data: {size / 1e6:.1f} MB of data files ({mb} MB of 4 KiB {what}), best of {rounds}, "
          f"{os.cpu_count()} cores")
    print(f"native   tar into a file, fsync               : {n:6.3f} s  {mbs(n):7.1f} MB/s")
    print(f"plugin   full backup into a file, fsync       : {q:6.3f} s  {mbs(q):7.1f} MB/s  "
          f"(lock, tar stream, unlock)")
    print(f"pipeline trove-agent backup.create            : {p:6.3f} s  {mbs(p):7.1f} MB/s  "
          f"(zstd level 1, SHA-256, stored {stored / 1e6:.1f} MB)")
    print(f"zstd -1 alone, one thread, over the same tar  : {zstd_t:6.3f} s  {mbs(zstd_t):7.1f} MB/s  "
          f"(the floor of the agent's compression here)")
    print(f"ratio plugin/native: {n / q:.2f}x, pipeline/native: {n / p:.2f}x (goal >= 0.9x)")
PY
