#!/bin/bash
# Backup storage throughput: the agent's backup stream (zstd level 1 on its
# worker thread, SHA-256) of ~100 MB written through the Swift driver (TempURL
# segments uploaded in parallel, then sealed) and through the S3 driver
# (presigned multipart upload), against the same stream into the local
# directory driver, in the same run against a real Swift on loopback started
# here. Prints each median and the ratio to the local file (goal: >= 0.9x),
# and Swift's own ceiling on this machine: the same stored bytes PUT as plain
# segments by as many client threads, with no compression and no hashing.
# Swift's servers share the machine's cores with the pipeline here.
#
# usage: bench/swift_backup.sh BUILD_DIR [MB] [ROUNDS]
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [MB] [ROUNDS]}" && pwd)
MB=${2:-100}
ROUNDS=${3:-3}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
exec env TROVE_BUILD="$BUILD" TROVE_SOURCE="$SOURCE" PYTHONPATH="$SOURCE/tests/lib:$SOURCE/tests/storage" \
  /usr/bin/python3 - "$MB" "$ROUNDS" <<'PY'
import concurrent.futures, json, os, shutil, statistics, subprocess, sys, time
import harness
from storage_common import Store
from swift_server import SwiftServer

mb, rounds = int(sys.argv[1]), int(sys.argv[2])
bench = harness.build_path("bench", "backup-storage-bench")


def run(args, stdin=None):
    cp = subprocess.run([bench] + [str(a) for a in args], input=stdin, capture_output=True, timeout=900)
    if cp.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))}: {cp.stderr.decode()[-2000:]}")
    return json.loads(cp.stdout)


def raw_put(swift, container, path, part=16 << 20, threads=4):
    """The stored file PUT as segments by plain client threads: Swift's ceiling."""
    storage_url, token = swift.token()
    size = os.path.getsize(path)

    def one(i):
        with open(path, "rb") as f:
            f.seek(i * part)
            data = f.read(part)
        status, _, _ = swift.request("PUT", f"{storage_url}/{container}/raw/{i:08d}", body=data, token=token)
        if status != 201:
            sys.exit(f"raw PUT: {status}")

    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range((size + part - 1) // part)))
    return time.monotonic() - t


with harness.Env(prefix="bench-swift-") as env:
    swift = SwiftServer(env, workers=2).start()
    # the control plane's defaults: 16 MiB parts, 4 upload threads
    stores = {d: Store(env, swift, d, f"bench-{d}", part_size=16 << 20, upload_threads=4) for d in ("swift", "s3")}
    for s in stores.values():
        s.must("setup")
    times = {"file": [], "swift": [], "s3": [], "swift-raw": []}
    stored = 0
    for i in range(rounds):              # interleaved, so each sees the same machine state
        local = env.mkdir(f"local-{i}")
        r = run(["file", local, f"b{i}", mb])
        times["file"].append(r["seconds"])
        stored = r["stored_size"]
        times["swift-raw"].append(raw_put(swift, "bench-swift", os.path.join(local, f"b{i}.zst")))
        shutil.rmtree(local)
        for d, store in stores.items():
            scope = store.scope(write=[f"b{i}"])
            r = run(["scope", f"b{i}", mb], json.dumps(scope).encode())
            store.must("seal", f"b{i}", r["stored_size"])
            times[d].append(r["seconds"])
            store.must("remove", f"b{i}")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"stream: {mb} MB raw -> {stored / 1e6:.1f} MB stored per backup, median of {rounds}")
    for k in ("file", "swift", "s3"):
        print(f"  {k:9s}: {med[k]:6.2f} s  {mb / med[k]:7.1f} MB/s raw")
    print(f"  swift-raw: {med['swift-raw']:6.2f} s  {stored / 1e6 / med['swift-raw']:7.1f} MB/s of stored bytes "
          "(plain PUTs, 4 threads: Swift's ceiling here)")
    for k in ("swift", "s3"):
        print(f"ratio {k} / local file: {med['file'] / med[k]:.2f}x (goal >= 0.9x)")
    print(f"ratio swift pipeline / Swift's ceiling: {med['swift-raw'] / med['swift']:.2f}x")
PY
