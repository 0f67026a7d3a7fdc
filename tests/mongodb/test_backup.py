"""Backups of the MongoDB plugin through the agent, checked with pymongo and an
independent reader of mongodump's archive format: full (data files under an
fsync lock), incremental (the oplog since the parent), logical (a mongodump
archive) and their chains restore on another server with the same document
count and content digest, indexes and users; a backup corrupted by one byte,
or a well-checksummed but incomplete one, is refused before the target is
touched (same data, same mongod process)."""
import glob
import hashlib
import json
import os
import struct
import subprocess

import bson
import harness
from harness import check
from mongodb_server import ADMIN_PASSWORD, ADMIN_USER, MongoServer
from pymongo.errors import OperationFailure

ALICE_PW = "al'ice \"pw\" \\ 1"


def agents(env):
    backups = env.mkdir("backups", mode=0o700)
    src, dst = MongoServer(env, 0).start(), MongoServer(env, 1).start()
    a = harness.Agent(env, "mongodb", src.settings, "src", backup_dir=backups)
    b = harness.Agent(env, "mongodb", dst.settings, "dst", backup_dir=backups)
    return backups, src, dst, a, b


def indexes(server):
    c = server.admin()
    out = {}
    for db in c.list_database_names():
        if db in ("admin", "local", "config"):
            continue
        for name in c[db].list_collection_names():
            out[f"{db}.{name}"] = sorted((ix["name"], tuple(ix["key"].items()), bool(ix.get("unique")))
                                         for ix in c[db][name].list_indexes())
    c.close()
    return out


def state(server):
    return server.digest(), indexes(server)


def can_login(server, user, password):
    c = server.client(user, password)
    try:
        c.shop.items.find_one()
        return True
    except OperationFailure:
        return False
    finally:
        c.close()


def load(server, agent):
    c = server.admin()
    c.shop.items.insert_many([{"_id": i, "sku": f"sku-{i:05d}", "qty": i % 17, "tags": ["a", "b"][: i % 3],
                               "doc": {"n": i, "f": i / 7}, "bin": bson.Binary(os.urandom(16)),
                               "when": bson.datetime.datetime(2024, 1, 1 + i % 28)} for i in range(300)])
    c.shop.items.create_index([("sku", 1)], unique=True, name="sku_unique")
    c.blog.posts.insert_many([{"_id": f"p{i}", "title": "t" * (i % 50)} for i in range(50)])
    c.blog.posts.create_index([("title", -1)])
    c.close()
    agent.must("user.create", {"name": "alice", "password": ALICE_PW, "databases": ["shop"]})


def change(server, round_):
    c = server.admin()
    base = 1000 * round_
    c.shop.items.insert_many([{"_id": base + i, "sku": f"r{round_}-{i}", "qty": i} for i in range(40)])
    c.shop.items.update_many({"qty": round_ % 17}, {"$set": {"changed": round_}})
    c.shop.items.delete_many({"qty": (round_ + 5) % 17, "_id": {"$lt": 300}})
    c[f"extra{round_}"].things.insert_many([{"_id": i} for i in range(5)])
    c[f"extra{round_}"].things.create_index([("x", 1)])
    if round_ == 2:
        c.blog.posts.drop()
    c.close()


def restore(agent, server, backup_id, expected, what):
    agent.must("backup.restore", {"backup_id": backup_id})
    got = state(server)
    check(got[0] == expected[0], f"{what}: documents and digest {got[0]} differ from the backup's {expected[0]}")
    check(got[1] == expected[1], f"{what}: indexes differ: {got[1]} vs {expected[1]}")
    st = agent.must("status").result
    check(st["state"] == "running" and st["role"] == "standalone", f"{what}: status after restore: {st}")
    c = server.admin()
    c.probe.writes.insert_one({"after": what})   # a writable primary again
    c.probe.writes.drop()
    c.close()
    check(can_login(server, "alice", ALICE_PW), f"{what}: alice's account did not come back")


def test_full_incremental_and_logical_backups_restore_exactly():
    with harness.Env(prefix="mongodb-backup-") as env:
        backups, src, dst, a, b = agents(env)
        load(src, a)
        full = a.must("backup.create", {"kind": "full"})["backup"]
        at_full = state(src)
        meta = full["meta"]
        check(meta["format"] == "mongodb-files-1" and meta["set_name"] == "rs-0" and meta["optime"].count(":") == 2,
              f"full backup metadata: {meta}")
        c = src.admin()
        check("fsyncLock" not in c.admin.command("currentOp"), "the fsync lock outlived the backup")
        c.shop.items.insert_one({"_id": "written right after the backup"})   # writes go on
        c.close()
        change(src, 1)
        inc = a.must("backup.create", {"kind": "incremental", "parent": full["id"]})["backup"]
        at_inc = state(src)
        check(inc["meta"]["parent_optime"] == meta["optime"], f"incremental metadata: {inc['meta']}")
        change(src, 2)
        logical = a.must("backup.create", {"kind": "logical"})["backup"]
        at_logical = state(src)
        r = a.call("backup.create", {"kind": "incremental", "parent": logical["id"]})
        check(r.code == "invalid_argument", f"the agent builds incrementals on full backups only: {r}")
        change(src, 3)   # after every backup: must never come back

        check(dst.digest() != at_full[0], "the target starts with other data")
        restore(b, dst, full["id"], at_full, "full")
        restore(b, dst, inc["id"], at_inc, "full + incremental")
        restore(b, dst, logical["id"], at_logical, "logical")
        # the source restored from its own backup: a new one-member set, still its own admin
        restore(a, src, full["id"], at_full, "full, on the source itself")
        check(not glob.glob(os.path.join(os.path.dirname(dst.dbpath), "*.restore-*")), "restore left files behind")
        check_archive(os.path.join(backups, logical["id"] + ".zst"))


def test_logical_backup_is_consistent_with_writes_during_the_dump():
    """A writer adds n to cons.a, then n to cons.z, while the archive is written: the restored
    copy is one moment of that history (a holds z and at most one more), thanks to the oplog
    slice the archive carries and the restore replays."""
    import threading
    with harness.Env(prefix="mongodb-logical-") as env:
        backups, src, dst, a, b = agents(env)
        c = src.admin()
        c.cons.a.insert_one({"_id": -1})   # a is dumped first, z last, the bulk between them
        for i in range(8):
            c.cons[f"b{i}"].insert_many([{"_id": j, "pad": "x" * 1024} for j in range(1500)])
        c.cons.z.insert_one({"_id": -1})
        c.cons.a.delete_one({"_id": -1})
        c.cons.z.delete_one({"_id": -1})
        stop = threading.Event()
        written = [0]

        def writer():
            w = src.admin()
            n = 0
            while not stop.is_set():
                w.cons.a.insert_one({"_id": n})
                w.cons.z.insert_one({"_id": n})
                n += 1
                written[0] = n
            w.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            logical = a.must("backup.create", {"kind": "logical"})["backup"]
        finally:
            stop.set()
            t.join()
        slice_entries = oplog_entries(os.path.join(backups, logical["id"] + ".zst"))
        check(slice_entries > 0, "no write happened during the dump: the test proved nothing")
        b.must("backup.restore", {"backup_id": logical["id"]})
        d = dst.admin()
        ids_a = sorted(x["_id"] for x in d.cons.a.find())
        ids_z = sorted(x["_id"] for x in d.cons.z.find())
        d.close()
        check(ids_a == list(range(len(ids_a))) and ids_z == list(range(len(ids_z))) and
              0 <= len(ids_a) - len(ids_z) <= 1, f"the restored copy is not one moment: a has {len(ids_a)}, "
              f"z has {len(ids_z)} (the writer wrote {written[0]}; the slice held {slice_entries} entries)")


def oplog_entries(piece):
    data = subprocess.run(["zstd", "-d", "-c", piece], capture_output=True, check=True).stdout
    entries = [bson.decode(x) for x in _segments(data, ("", "oplog"))]
    return sum(1 for e in entries if e.get("op") != "n")


def _segments(data, wanted):
    """The raw documents of one namespace of an archive."""
    pos = 4 + struct.unpack_from("<i", data, 4)[0]
    while struct.unpack_from("<i", data, pos)[0] != -1:   # the prelude
        pos += struct.unpack_from("<i", data, pos)[0]
    pos += 4
    out = []
    while pos < len(data):
        n = struct.unpack_from("<i", data, pos)[0]
        h = bson.decode(data[pos:pos + n])
        pos += n
        while True:
            n = struct.unpack_from("<i", data, pos)[0]
            if n == -1:
                pos += 4
                break
            if (h["db"], h["collection"]) == wanted and not h["EOF"]:
                out.append(data[pos:pos + n])
            pos += n
    return out


# ---- an independent reader of mongodump's archive format -------------------

def _crc64_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xC96C5795D7870F42 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc64_table()


def crc64(data, crc=0):
    """CRC-64 with the ECMA-182 polynomial as Go's hash/crc64 computes it (CRC-64/XZ)."""
    crc ^= 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def check_archive(piece):
    """Parse the stored logical backup by mongo-tools' common/archive/spec.md."""
    check(crc64(b"123456789") == 0x995DC9BBDF1939FA, "the test's CRC-64 is not CRC-64/XZ")
    data = subprocess.run(["zstd", "-d", "-c", piece], capture_output=True, check=True).stdout
    check(struct.unpack_from("<I", data, 0)[0] == 0x8199E26D, "the archive's magic number")
    pos = 4

    def block():
        nonlocal pos
        n = struct.unpack_from("<i", data, pos)[0]
        if n == -1:
            pos += 4
            return None
        raw = data[pos:pos + n]
        pos += n
        return raw

    header = bson.decode(block())
    check(header["version"] == "0.1" and header["concurrent_collections"] >= 1 and header["server_version"],
          f"archive header: {header}")
    prelude = []
    while True:
        raw = block()
        if raw is None:
            break
        prelude.append(bson.decode(raw))
    names = {(m["db"], m["collection"]) for m in prelude}
    check(("shop", "items") in names and ("admin", "system.users") in names and ("", "oplog") in names,
          f"the prelude lists collections, users and the oplog: {sorted(names)}")
    items = next(m for m in prelude if (m["db"], m["collection"]) == ("shop", "items"))
    meta = json.loads(items["metadata"])
    check({ix["name"] for ix in meta["indexes"]} == {"_id_", "sku_unique"} and meta["collectionName"] == "items",
          f"metadata.json of shop.items: {meta}")
    crcs, counts, ended = {}, {}, set()
    while pos < len(data):
        h = bson.decode(block())
        ns = (h["db"], h["collection"])
        check(ns in names and ns not in ended, f"a segment of an unknown or finished namespace {ns}")
        if h["EOF"]:
            check(h["CRC"] & 0xFFFFFFFFFFFFFFFF == crcs.get(ns, 0), f"CRC of {ns}")
            check(block() is None, f"the end of {ns} is terminated")
            ended.add(ns)
            continue
        while True:
            raw = block()
            if raw is None:
                break
            bson.decode(raw)
            crcs[ns] = crc64(raw, crcs.get(ns, 0))
            counts[ns] = counts.get(ns, 0) + 1
    check(ended == names, f"namespaces without an end: {names - ended}")
    check(counts.get(("admin", "system.users"), 0) >= 2, f"users in the archive: {counts}")


# ---- refusals --------------------------------------------------------------

def mongod_pid(server):
    return server.pid()


def test_corrupted_or_incomplete_backup_is_refused_before_anything_is_touched():
    with harness.Env(prefix="mongodb-corrupt-") as env:
        backups, src, dst, a, b = agents(env)
        load(src, a)
        full = a.must("backup.create", {"kind": "full"})["backup"]
        logical = a.must("backup.create", {"kind": "logical"})["backup"]
        c = dst.admin()
        c.mine.things.insert_many([{"_id": i} for i in range(25)])
        c.close()
        before, pid = state(dst), mongod_pid(dst)

        piece = os.path.join(backups, full["id"] + ".zst")
        with open(piece, "r+b") as f:   # one byte flipped in storage
            f.seek(os.path.getsize(piece) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0x01]))
        r = b.call("backup.restore", {"backup_id": full["id"]})
        check(r.code == "checksum_mismatch" and r.message, f"a corrupted backup: {r.code} {r.message}")
        check(state(dst) == before and mongod_pid(dst) == pid, "the target changed or restarted")

        # A well-checksummed archive cut short: the host's check passes, the plugin's reader refuses it.
        piece = os.path.join(backups, logical["id"] + ".zst")
        raw = subprocess.run(["zstd", "-d", "-c", piece], capture_output=True, check=True).stdout
        cut = subprocess.run(["zstd", "-q", "-c"], input=raw[: len(raw) * 2 // 3], capture_output=True,
                             check=True).stdout
        with open(piece, "wb") as f:
            f.write(cut)
        record_path = os.path.join(backups, logical["id"] + ".json")
        with open(record_path) as f:
            record = json.load(f)
        record["checksum"] = "sha256:" + hashlib.sha256(cut).hexdigest()
        record["stored_size"] = len(cut)
        with open(record_path, "w") as f:
            json.dump(record, f)
        r = b.call("backup.restore", {"backup_id": logical["id"]})
        check(r.code == "invalid_argument" and logical["id"] in r.message, f"an incomplete archive: {r.code} {r.message}")
        check(state(dst) == before and mongod_pid(dst) == pid, "the target changed or restarted")
        check(b.must("status")["state"] == "running", "the target is not running")
        check(not glob.glob(os.path.join(os.path.dirname(dst.dbpath), "*.restore-*")), "restore left files behind")
        c = dst.client(ADMIN_USER, ADMIN_PASSWORD)
        check(c.mine.things.count_documents({}) == 25, "the target's data changed")
        c.close()


if __name__ == "__main__":
    harness.run_tests(globals())
