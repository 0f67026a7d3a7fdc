"""RDB backup and restore through the agent: every data type, several numbered
databases and keys with a TTL come back with the same key count and content
digest (DUMP of every key, computed here with redis-cli); writes made after
the backup are gone; the restore works with AOF on (and the AOF is rebuilt
from the restored data); a backup corrupted on disk is refused with nothing
changed; the server's disk gets no dump file from a backup."""
import os

import harness
from harness import check
from redis_server import RedisServer


def load(server):
    cmds = []
    for i in range(40):
        cmds.append(("SET", f"str:{i}", f"value {i} 'q' \"dq\" \\ é"))
    cmds += [("HSET", "hash:1", "f1", "v1", "f2", "v2"), ("RPUSH", "list:1", "a", "b", "c"),
             ("SADD", "set:1", "x", "y"), ("ZADD", "zset:1", "1", "one", "2.5", "two"),
             ("XADD", "stream:1", "1-1", "field", "value"), ("SET", "ttl:1", "soon", "EX", "3600"),
             ("PFADD", "hll:1", "a", "b", "c"), ("SETBIT", "bin:1", "7", "1"), ("SETBIT", "bin:1", "100", "1")]
    for c in cmds:
        server.cli(*c)
    server.cli("SET", "db3:key", "in db 3", db=3)
    server.cli("HSET", "db3:hash", "k", "v", db=3)


def main():
    with harness.Env(prefix="redis-backup-") as env:
        a = RedisServer(env, 0).start()
        agent = harness.Agent(env, "redis", a.settings)
        load(a)
        count, digest = a.digest()
        check(count == 50, f"loaded {count} keys")

        rec = agent.must("backup.create", {"kind": "full"})["backup"]
        meta = rec["meta"]
        check(rec["state"] == "complete" and meta.get("format") == "rdb", f"backup record: {rec}")
        check(meta.get("position", "").count(":") == 1 and len(meta.get("rdb_crc64", "")) == 16, f"meta: {meta}")
        check(not os.path.exists(os.path.join(a.dir, "dump.rdb")), "the backup left a dump file on the server's disk")
        r = agent.call("backup.create", {"kind": "incremental", "parent": rec["id"]})
        check(r.code in ("not_supported", "invalid_argument"), f"an incremental backup: {r}")

        a.cli("SET", "after:1", "must vanish")
        a.cli("DEL", "str:0")
        a.cli("FLUSHDB", db=3)
        check(a.digest() != (count, digest), "the writes after the backup did not change the digest")
        r = agent.must("backup.restore", {"backup_id": rec["id"]})
        check(a.digest() == (count, digest), "restored data differs from the backup")

        # With AOF on, the restore must win over the old AOF, and the AOF is rebuilt.
        agent.must("config.apply", {"values": {"appendonly": "on"}})
        a.cli("SET", "after:2", "must vanish too")
        agent.must("backup.restore", {"backup_id": rec["id"]})
        check(a.config_get("appendonly") == "yes", "appendonly is off after the restore")
        check(a.digest() == (count, digest), "restore with AOF on differs from the backup")
        agent.must("restart")
        check(a.digest() == (count, digest), "after a restart (loading the AOF) the data differs from the backup")

        # Into a second, fresh server through its own agent.
        b = RedisServer(env, 1).start()
        b.cli("SET", "b-only", "x")
        agent_b = harness.Agent(env, "redis", b.settings, instance_id="inst-b", backup_dir=agent.backup_dir)
        agent_b.must("backup.restore", {"backup_id": rec["id"]})
        check(b.digest() == (count, digest), "restore into a second server differs from the backup")

        # Corrupted on disk: refused, and the target is untouched and running.
        piece = [os.path.join(agent.backup_dir, f) for f in os.listdir(agent.backup_dir) if f.startswith(rec["id"])
                 and not f.endswith((".json", ".meta"))][0]
        with open(piece, "r+b") as f:
            f.seek(os.path.getsize(piece) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))
        b.cli("SET", "b-new", "kept")
        before = b.digest()
        r = agent_b.call("backup.restore", {"backup_id": rec["id"]})
        check(r.code == "checksum_mismatch", f"restoring a corrupted backup: {r}")
        check(agent_b.must("status")["state"] == "running", "the server stopped after a refused restore")
        check(b.digest() == before, "a refused restore changed the data")
    print("redis backup: passed")


if __name__ == "__main__":
    main()
