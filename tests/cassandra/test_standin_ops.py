"""What the Cassandra plugin will lean on in the stand-in, beyond CQL: the
launcher's refusals, durability (a clean stop, and a kill with the commit log
replayed), SSTable-like files holding the real bytes, nodetool flush,
snapshot, listsnapshots, clearsnapshot and refresh, renaming a cluster (UPDATE
system.local, flush, restart; a node refuses a name other than its saved one), a restore by placing files
while stopped, the runtime setters showing in system_views.settings, drain,
the unsupported-protocol answer, and ring membership: a joining node
bootstraps the data, decommission leaves the ring for good.
Reads and writes go through the DataStax Python driver.
"""
import glob
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import standin_cluster  # noqa: E402

try:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy
except ImportError:
    print("skipped: python3-cassandra (the DataStax driver) is not installed")
    sys.exit(77)


def session(env, node):
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.address]), request_timeout=20)
    cluster = Cluster([node.address], port=node.native_port, protocol_version=4,
                      auth_provider=PlainTextAuthProvider("cassandra", "cassandra"),
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10)
    env.callback(cluster.shutdown)
    return cluster, cluster.connect()


def digest(s, table):
    rows = sorted((r.k, r.v) for r in s.execute(f"SELECT k, v FROM {table}"))
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def fill(s, n=50, tag="v"):
    s.execute("CREATE KEYSPACE IF NOT EXISTS app WITH replication = {'class': 'SimpleStrategy', "
              "'replication_factor': 1}")
    s.execute("CREATE TABLE IF NOT EXISTS app.kv (k int PRIMARY KEY, v text)")
    put = s.prepare("INSERT INTO app.kv (k, v) VALUES (?, ?)")
    for i in range(n):
        s.execute(put, (i, f"{tag}-{i}-marker"))


def table_dir(node, ks, table):
    dirs = glob.glob(os.path.join(node.data_dir, ks, table + "-*"))
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_launcher_refusals(env):
    node, = standin_cluster.ring(env, 1)
    node.write_config()
    argv = [a for a in node.argv() if a != "-R"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if os.geteuid() == 0:
        assert r.returncode == 1 and "use -R command line option" in r.stderr, r.stderr
    with open(node.config_file, "a") as f:
        f.write("not_a_setting: 1\n")
    r = subprocess.run(node.argv(), capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Please remove properties [not_a_setting]" in r.stderr, r.stderr
    r = subprocess.run([standin_cluster.LAUNCHER, "-v"], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "4.0.11"


def test_durability_and_files(env):
    node, = standin_cluster.ring(env, 1)
    node.start()
    assert "protocol-level stand-in" in open(node.proc.log_path).read()
    cluster, s = session(env, node)
    fill(s)
    before = digest(s, "app.kv")
    cluster.shutdown()
    node.stop()                                      # SIGTERM drains
    node.start()
    cluster, s = session(env, node)
    assert digest(s, "app.kv") == before
    data = glob.glob(os.path.join(table_dir(node, "app", "kv"), "nb-*-big-Data.db"))
    assert data and b"v-7-marker" in open(data[0], "rb").read(), data

    s.execute("INSERT INTO app.kv (k, v) VALUES (1000, 'unflushed-marker')")
    cluster.shutdown()
    node.proc.kill()                                 # no flush: the commit log must bring it back
    node.start()
    cluster, s = session(env, node)
    assert s.execute("SELECT v FROM app.kv WHERE k = 1000").one().v == "unflushed-marker"


def test_snapshot_and_restore(env):
    node, = standin_cluster.ring(env, 1)
    node.start()
    cluster, s = session(env, node)
    fill(s)
    before = digest(s, "app.kv")
    out = node.nodetool("snapshot", "-t", "b1", "app").stdout
    assert "snapshot name [b1]" in out, out
    snap = os.path.join(table_dir(node, "app", "kv"), "snapshots", "b1")
    files = sorted(os.listdir(snap))
    assert "manifest.json" in files and "schema.cql" in files and any(f.endswith("-Data.db") for f in files), files
    manifest = json.load(open(os.path.join(snap, "manifest.json")))
    assert manifest["files"] and all(f in files for f in manifest["files"])
    assert "CREATE TABLE IF NOT EXISTS \"app\".\"kv\"" in open(os.path.join(snap, "schema.cql")).read()
    assert "b1" in node.nodetool("listsnapshots").stdout
    r = node.nodetool("snapshot", "-t", "b1", "app", check=False)
    assert r.returncode == 2 and "already exists" in r.stderr, r.stderr

    s.execute("TRUNCATE app.kv")
    fill(s, 5, tag="after")
    cluster.shutdown()
    node.stop()
    live = table_dir(node, "app", "kv")
    for f in glob.glob(os.path.join(live, "nb-*")):
        os.unlink(f)
    for f in os.listdir(snap):
        if f.startswith("nb-"):
            shutil.copy2(os.path.join(snap, f), live)
    node.start()
    cluster, s = session(env, node)
    assert digest(s, "app.kv") == before

    r = node.nodetool("clearsnapshot", check=False)
    assert r.returncode == 2 and "Specify snapshot name or --all" in r.stderr
    node.nodetool("clearsnapshot", "-t", "b1")
    assert not os.path.exists(snap)
    assert "There are no snapshots" in node.nodetool("listsnapshots").stdout

    # files placed while running are picked up by refresh
    node.nodetool("snapshot", "-t", "b2", "app")
    s.execute("TRUNCATE app.kv")
    node.nodetool("flush")
    for f in glob.glob(os.path.join(live, "snapshots", "b2", "nb-*")):
        shutil.copy2(f, os.path.join(live, "nb-900-big-" + f.rsplit("-big-", 1)[1]))
    node.nodetool("refresh", "app", "kv")
    assert digest(s, "app.kv") == before


def test_settings_and_drain(env):
    node, = standin_cluster.ring(env, 1)
    node.start()
    cluster, s = session(env, node)

    def setting(name):
        return s.execute("SELECT value FROM system_views.settings WHERE name = %s", (name,)).one().value

    assert setting("compaction_throughput_mb_per_sec") == "64"
    assert setting("data_file_directories") == f"[{node.data_dir}]"
    node.nodetool("setcompactionthroughput", "16")
    assert node.nodetool("getcompactionthroughput").stdout.strip() == "Current compaction throughput: 16 MB/s"
    assert setting("compaction_throughput_mb_per_sec") == "16"
    node.nodetool("setstreamthroughput", "50")
    assert setting("stream_throughput_outbound_megabits_per_sec") == "50"
    node.nodetool("settimeout", "read", "7000")
    assert "7000 ms" in node.nodetool("gettimeout", "read").stdout
    assert setting("read_request_timeout_in_ms") == "7000"
    node.nodetool("setconcurrentcompactors", "3")
    assert setting("concurrent_compactors") == "3"
    r = node.nodetool("settimeout", "sideways", "1", check=False)
    assert r.returncode == 2 and "Timeout type requires one of" in r.stderr
    assert "UN  " + node.address in node.nodetool("status").stdout
    assert "ReleaseVersion: 4.0.11" in node.nodetool("version").stdout

    with socket.create_connection((node.address, node.native_port), timeout=5) as c:
        c.sendall(struct.pack(">BBhBi", 0x05, 0, 1, 0x05, 0))
        head = c.recv(9)
        body = c.recv(4096)
    assert head[0] == 0x84 and head[4] == 0x00, head
    assert b"Invalid or unsupported protocol version (5)" in body, body

    cluster.shutdown()
    node.nodetool("drain")
    assert not harness.tcp_open(node.address, node.native_port)
    assert "Mode: DRAINED" in node.nodetool("netstats").stdout
    assert node.proc.stop() == 0


def test_cluster_rename(env):
    node, = standin_cluster.ring(env, 1)
    node.start()
    cluster, s = session(env, node)
    fill(s, 5)
    s.execute("UPDATE system.local SET cluster_name = %s WHERE key = 'local'", ("Renamed Ring",))
    assert s.execute("SELECT cluster_name FROM system.local WHERE key = 'local'").one().cluster_name == "Renamed Ring"
    for bad in ("INSERT INTO system.local (key, cluster_name) VALUES ('x', 'y')",
                "UPDATE system.local SET rack = 'r9' WHERE key = 'local'", "DELETE FROM system.peers WHERE peer = "
                "'127.0.0.9'"):
        try:
            s.execute(bad)
            raise AssertionError(f"{bad} was accepted")
        except Exception as exc:   # refused by the server, whatever the class
            assert "was accepted" not in str(exc), exc
    node.nodetool("flush", "system")
    cluster.shutdown()
    node.stop()
    node.start(wait=False)                           # still 'Test Cluster' in cassandra.yaml: refused
    node.proc.proc.wait(timeout=30)
    assert "Saved cluster name Renamed Ring != configured name Test Cluster" in node.proc.log_tail(), \
        node.proc.log_tail()
    node.cluster_name = "Renamed Ring"
    node.write_config()
    node.start()
    cluster, s = session(env, node)
    assert s.execute("SELECT cluster_name FROM system.local WHERE key = 'local'").one().cluster_name == "Renamed Ring"
    assert digest(s, "app.kv")[0] == 5
    assert "Name: Renamed Ring" in node.nodetool("describecluster").stdout


def test_ring_membership(env):
    n1, n2 = standin_cluster.ring(env, 2)
    n1.start()
    c1, s1 = session(env, n1)
    fill(s1, 20)
    before = digest(s1, "app.kv")
    n2.start()                                       # joins through the seed and bootstraps the rows
    c2, s2 = session(env, n2)
    assert digest(s2, "app.kv") == before
    status = n1.nodetool("status").stdout
    assert "UN  127.0.0.1" in status and "UN  127.0.0.2" in status, status
    assert "127.0.0.1, 127.0.0.2" in n1.nodetool("describecluster").stdout
    c2.shutdown()

    n2.nodetool("decommission")
    assert "Mode: DECOMMISSIONED" in n2.nodetool("netstats").stdout
    assert list(s1.execute("SELECT peer FROM system.peers")) == []
    assert "127.0.0.2" not in n1.nodetool("status").stdout
    n2.stop()
    r = subprocess.run(n2.argv(), capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "decommissioned and will not rejoin" in r.stderr, r.stderr

    r = n1.nodetool("decommission", check=False)
    assert r.returncode == 2 and "pointless" in r.stderr


def main():
    for test in (test_launcher_refusals, test_durability_and_files, test_snapshot_and_restore,
                 test_settings_and_drain, test_cluster_rename, test_ring_membership):
        with harness.Env() as env:
            test(env)
            print(f"ok {test.__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
