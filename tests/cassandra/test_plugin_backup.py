"""Backups of the Cassandra plugin: nodetool snapshot, the snapshot
directories and the keyspaces' CQL streamed through the agent into its
storage, the snapshot cleared afterwards. A restore on another node, and on
the same node after changes, gives back every keyspace with its replication
and every table with the same row count and content digest (clustering
order, collections and blobs included), and nothing of what was there
before. The target keeps its own roles. Archives that were tampered with
before being stored (a path out of the staging directory, a link, CQL that
is not schema, something that is not a backup of this plugin) are refused
and change nothing.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import harness  # noqa: E402
from harness import check  # noqa: E402

try:
    import ds_cassandra as ds  # noqa: E402
except ImportError as exc:
    print(f"skipped: python3-cassandra (the DataStax driver) is not installed ({exc})")
    sys.exit(77)

TABLES = [("shop", "kv"), ("shop", "events"), ("audit", "log")]


def fill(node, tag, n=60):
    with node.session() as s:
        s.execute("CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'SimpleStrategy', "
                  "'replication_factor': 1}")
        s.execute("CREATE KEYSPACE IF NOT EXISTS audit WITH replication = {'class': 'NetworkTopologyStrategy', "
                  "'datacenter1': 1} AND durable_writes = false")
        s.execute("CREATE KEYSPACE IF NOT EXISTS empty_ks WITH replication = {'class': 'SimpleStrategy', "
                  "'replication_factor': 2}")
        s.execute("CREATE TABLE IF NOT EXISTS shop.kv (k int PRIMARY KEY, v text)")
        s.execute("CREATE TABLE IF NOT EXISTS shop.events (day text, ts int, payload blob, tags set<text>, "
                  "attrs map<text, int>, PRIMARY KEY (day, ts)) WITH CLUSTERING ORDER BY (ts DESC)")
        s.execute("CREATE TABLE IF NOT EXISTS audit.log (id uuid PRIMARY KEY, msg text)")
        kv = s.prepare("INSERT INTO shop.kv (k, v) VALUES (?, ?)")
        ev = s.prepare("INSERT INTO shop.events (day, ts, payload, tags, attrs) VALUES (?, ?, ?, ?, ?)")
        log = s.prepare("INSERT INTO audit.log (id, msg) VALUES (?, ?)")
        for i in range(n):
            s.execute(kv, (i, f"{tag}-value-{i} 'quoted' é"))
            s.execute(ev, (f"day{i % 3}", i, bytes([i % 256, 0, 255]) * 4, {f"t{i}", tag}, {"n": i, tag: -i}))
            s.execute(log, (uuid.uuid5(uuid.NAMESPACE_OID, f"{tag}{i}"), f"{tag} event {i}"))


def digest(node):
    """Per table: row count and SHA-256 of the rows, in the order the node returns them per partition."""
    out = {}
    with node.session() as s:
        for ks, table in TABLES:
            try:
                rows = [tuple(r) for r in s.execute(f"SELECT * FROM {ks}.{table}")]
            except Exception:   # missing keyspace or table
                rows = None
            out[f"{ks}.{table}"] = None if rows is None else (len(rows), hashlib.sha256(
                repr(sorted(rows, key=repr)).encode()).hexdigest())
        keyspaces = {r.keyspace_name: (dict(r.replication), r.durable_writes) for r in
                     s.execute("SELECT keyspace_name, replication, durable_writes FROM system_schema.keyspaces")
                     if not r.keyspace_name.startswith("system")}
        events = [r.ts for r in s.execute("SELECT ts FROM shop.events WHERE day = 'day0'")] \
            if "shop" in keyspaces else []
    return out, keyspaces, events


def archive_of(agent, backup_id):
    raw = subprocess.run(["zstd", "-dc", os.path.join(agent.backup_dir, backup_id + ".zst")], check=True,
                         capture_output=True).stdout
    return tarfile.open(fileobj=io.BytesIO(raw))


def store_forged(agent, template_id, new_id, members):
    """A backup record whose piece is the tar of `members` [(TarInfo, bytes or None)], with a good checksum:
    what someone with write access to backup storage could leave there."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    piece = os.path.join(agent.backup_dir, new_id + ".zst")
    subprocess.run(["zstd", "-q", "-f", "-o", piece], input=buf.getvalue(), check=True)
    with open(os.path.join(agent.backup_dir, template_id + ".json")) as f:
        record = json.load(f)
    record.update(id=new_id, checksum="sha256:" + hashlib.sha256(open(piece, "rb").read()).hexdigest(),
                  size=len(buf.getvalue()), stored_size=os.path.getsize(piece))
    with open(os.path.join(agent.backup_dir, new_id + ".json"), "w") as f:
        json.dump(record, f)
    return new_id


def file_member(name, data, **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def test_backup_and_restore():
    with harness.Env(prefix="cs-backup-") as env:
        backups = env.mkdir("backups", mode=0o700)
        src, dst = ds.StandinNode(env, 0), ds.StandinNode(env, 1)
        a = harness.Agent(env, "cassandra", src.settings, instance_id="src", backup_dir=backups)
        b = harness.Agent(env, "cassandra", dst.settings, instance_id="dst", backup_dir=backups)
        fill(src, "first")
        want = digest(src)
        check(all(want[0][t] and want[0][t][0] == 60 for t in want[0]), f"source rows: {want[0]}")

        r = a.must("backup.create", {"kind": "full"})
        backup = r["backup"]
        check(backup["meta"]["format"] == "cassandra-snapshot-1" and backup["meta"]["keyspaces"] == "3" and
              backup["meta"]["tables"] == "3", f"backup metadata: {backup['meta']}")
        check("There are no snapshots" in src.nodetool("listsnapshots").stdout, "the snapshot was not cleared")
        names = archive_of(a, backup["id"]).getnames()
        check(names[0] == "trove-cassandra-backup.txt", f"first member: {names[:3]}")
        check({"schema/shop.cql", "schema/audit.cql", "schema/empty_ks.cql"} <= set(names), f"schema: {names}")
        for ks, table in TABLES:
            files = [n for n in names if n.startswith(f"data/{ks}/{table}-")]
            check(any(n.endswith("-Data.db") for n in files) and any(n.endswith("/schema.cql") for n in files),
                  f"{ks}.{table} in the archive: {files}")
        check(not any(n.startswith("data/system") for n in names), "system keyspaces in the backup")
        check(a.call("backup.create", {"kind": "incremental", "parent": backup["id"]}).code == "not_supported",
              "incremental backups are not supported")

        with dst.session() as s:   # the target's own data goes; its roles stay
            s.execute("CREATE KEYSPACE junk WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
            s.execute("CREATE TABLE junk.t (k int PRIMARY KEY)")
            s.execute("INSERT INTO junk.t (k) VALUES (1)")
        b.must("user.create", {"name": "dst_user", "password": "dst pw"})
        b.must("backup.restore", {"backup_id": backup["id"]})
        check(b.must("status")["state"] == "running", "the target is not running after the restore")
        got = digest(dst)
        check(got == want, f"the restored node differs:\n{got}\n{want}")
        check(got[2] == sorted(got[2], reverse=True) and got[2], f"clustering order: {got[2]}")
        check("junk" not in got[1], "the target's own keyspace survived the restore")
        check("dst_user" in {u["name"] for u in b.must("user.list")["users"]}, "the target lost its roles")
        with dst.session("dst_user", "dst pw"):
            pass
        leftovers = [n for n in os.listdir(dst.data_dir) if n.startswith(".trove-restore-")]
        check(not leftovers, f"staging left in the data directory: {leftovers}")

        # the same node, changed after the backup, goes back to it
        with src.session() as s:
            s.execute("DELETE FROM shop.kv WHERE k = 3")
            s.execute("DROP TABLE audit.log")
            s.execute("CREATE KEYSPACE later WITH replication = {'class': 'SimpleStrategy', "
                      "'replication_factor': 1}")
        fill(src, "after", 10)
        check(digest(src) != want, "the changes did not change the digest")
        a.must("backup.restore", {"backup_id": backup["id"]})
        check(digest(src) == want, "restoring onto the source did not bring back the backup's data")

        # tampered archives change nothing
        before = digest(dst)
        marker = file_member("trove-cassandra-backup.txt", b"trove cassandra backup 1\nformat cassandra-snapshot-1\n")
        ks_cql = b"CREATE KEYSPACE \"evil\" WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'};\n"
        tdir = "data/evil/t-" + "0" * 32
        cases = {
            "traversal": [marker, file_member("schema/evil.cql", ks_cql),
                          file_member("data/evil/../../../escaped.txt", b"x")],
            "symlink": [marker, file_member("schema/evil.cql", ks_cql),
                        file_member(tdir + "/nb-1-big-Data.db", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
            "not ours": [file_member("base/1/PG_VERSION", b"15\n")],
            "not schema": [marker, file_member("schema/evil.cql", ks_cql),
                           file_member(tdir + "/schema.cql", b"CREATE TABLE evil.t (k int PRIMARY KEY);\n"
                                                             b"DROP KEYSPACE shop;\n"),
                           file_member(tdir + "/nb-1-big-Data.db", b"x")],
            "keyspace file": [marker, file_member("schema/evil.cql", b"DROP KEYSPACE shop;\n")],
            "system keyspace": [marker, file_member("schema/system_auth.cql", ks_cql)],
            "no keyspace": [marker, file_member(tdir + "/schema.cql", b"CREATE TABLE evil.t (k int PRIMARY KEY);")],
        }
        for i, (what, members) in enumerate(cases.items()):
            forged = store_forged(b, backup["id"], f"forged{i}", members)
            r = b.call("backup.restore", {"backup_id": forged})
            check(r.code == "invalid_argument" and r.message, f"{what}: {r}")
            check(digest(dst) == before, f"the {what} archive changed the node")
            check(not os.path.exists(os.path.join(env.dir, "escaped.txt")) and
                  not any(n.startswith(".trove-restore-") for n in os.listdir(dst.data_dir)),
                  f"the {what} archive left files behind")
        check(b.must("status")["state"] == "running", "the target stopped")


def main():
    harness.run_tests(globals())


if __name__ == "__main__":
    main()
