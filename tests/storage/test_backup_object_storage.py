"""The agent backs up and restores a real Redis through object storage with
nothing but the signed URLs of its request: backup.create streams the RDB
to Swift (native, then S3), the control plane's side seals it, and
backup.restore brings the data back from a read-only grant carrying the
registry's record. A damaged piece is refused before Redis is touched; a
record tampered with in the store does not matter when the request carries
the registry's, and is caught by the checksum when it does not; the guest
cannot delete a stored backup, nor write one its request did not grant."""
import json
import os
import random
import subprocess

import harness
from harness import check
from redis_server import RedisServer
from storage_common import PART, Store
from swift_server import SwiftServer


def load_random(server, keys=96, size=128 * 1024):
    """About 12 MB of incompressible values, so a backup takes several parts."""
    rnd = random.Random(7)
    buf = bytearray()
    for i in range(keys):
        key, val = f"blob:{i}".encode(), rnd.randbytes(size)
        buf += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(val), val)
    env = dict(os.environ, REDISCLI_AUTH=server.password)
    cp = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(server.port), "--no-auth-warning", "--pipe"],
                        input=bytes(buf), capture_output=True, env=env, timeout=120)
    check(cp.returncode == 0 and b"errors: 0" in cp.stdout, f"loading Redis: {cp.stdout[-300:]!r}")


def digest(server):
    """Redis's own digest of the whole data set, and the key count."""
    return server.cli("DEBUG", "DIGEST").strip(), int(server.cli("DBSIZE").strip())


def record_file(env, rec, name):
    path = env.path(name)
    with open(path, "w") as f:
        json.dump(rec, f)
    return path


def backup_and_restore(env, store, redis, agent, loaded):
    bid = f"redis-{store.driver}"
    rec = agent.must("backup.create", {"backup_id": bid, "storage": store.scope(write=[bid])})["backup"]
    check(rec["state"] == "complete" and rec["stored_size"] > 2 * PART, f"{store.driver}: record {rec}")
    check(not any(f.startswith(bid) for f in os.listdir(agent.backup_dir)),
          f"{store.driver}: the backup also went to the agent's directory")
    store.must("seal", bid, rec["stored_size"])

    redis.cli("SET", "after:backup", "must vanish")
    redis.cli("DEL", "blob:0")
    registry = record_file(env, rec, f"{bid}.json")
    read = store.scope(read=[f"{bid}={registry}"])
    r = agent.must("backup.restore", {"backup_id": bid, "storage": read})
    check(r["restored"] == [bid], f"{store.driver}: restored {r.result}")
    check(digest(redis) == loaded, f"{store.driver}: the restored data differs from the backup")
    listed = agent.must("backup.list", {"storage": read})["backups"]
    check([b["id"] for b in listed] == [bid], f"{store.driver}: list through the grant: {listed}")
    r = agent.call("backup.delete", {"backup_id": bid, "storage": read})
    check(r.code == "not_supported", f"{store.driver}: the guest deleting a stored backup: {r}")
    r = agent.call("backup.create", {"backup_id": "not-granted", "storage": store.scope(write=[f"{bid}-other"])})
    check(not r.ok, f"{store.driver}: a backup outside the grant was written: {r}")
    return bid, rec, registry


def damage_refused(env, swift, stores, redis, agent, swift_bid, swift_rec, registry):
    store = stores["swift"]
    seg = f"{store.container}/{swift_bid}/piece.seg/00000002"
    _, _, data = swift.authed("GET", seg)
    swift.authed("PUT", seg, body=data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    redis.cli("SET", "written:after", "kept")
    before = digest(redis)
    r = agent.call("backup.restore", {"backup_id": swift_bid, "storage": store.scope(read=[f"{swift_bid}={registry}"])})
    check(r.code in ("checksum_mismatch", "unavailable"), f"restoring a flipped segment: {r}")
    check(agent.must("status")["state"] == "running", "Redis stopped after a refused restore")
    check(digest(redis) == before, "a refused restore changed the data")
    swift.authed("PUT", seg, body=data)

    # The record in the store is tampered with: the registry's record wins; without it the checksum refuses.
    tampered = dict(swift_rec, checksum="sha256:" + "0" * 64)
    swift.authed("PUT", f"{store.container}/{swift_bid}/record.json", body=json.dumps(tampered).encode())
    r = agent.call("backup.restore", {"backup_id": swift_bid, "storage": store.scope(read=[swift_bid])})
    check(r.code == "checksum_mismatch", f"restoring by a tampered stored record: {r}")
    check(digest(redis) == before, "a refused restore changed the data")
    agent.must("backup.restore", {"backup_id": swift_bid, "storage": store.scope(read=[f"{swift_bid}={registry}"])})
    check(digest(redis) != before, "the restore with the registry's record did not restore")


def main():
    with harness.Env(prefix="objstore-agent-") as env:
        swift = SwiftServer(env).start()
        stores = {"swift": Store(env, swift, "swift", "agent-swift"), "s3": Store(env, swift, "s3", "agent-s3")}
        for store in stores.values():
            store.must("setup")
        redis = RedisServer(env, 0, extra_config={"enable-debug-command": "local"}).start()
        agent = harness.Agent(env, "redis", redis.settings)
        load_random(redis)
        loaded = digest(redis)
        check(loaded[1] == 96, f"loaded {loaded[1]} keys")
        results = {}
        for name, store in stores.items():
            results[name] = backup_and_restore(env, store, redis, agent, loaded)
            print(f"ok   {name}: backup.create and backup.restore through signed URLs", flush=True)
        bid, rec, registry = results["swift"]
        damage_refused(env, swift, stores, redis, agent, bid, rec, registry)
        print("ok   damaged piece and tampered record refused before Redis was touched", flush=True)


if __name__ == "__main__":
    main()
