"""GTID replication through the agent between two real MariaDB servers:
snapshot + attach, waiting for a position, read-only replica, status fields,
positions compared as GTID sets, promote, the old source demoted to follow
the new one, detach, and bad sources refused.
"""
import harness
import mysql_server
from harness import check


def insert_rows(server, tag, start, n):
    values = ",".join(f"({i}, '{tag}-{i}')" for i in range(start, start + n))
    server.admin_sql(f"INSERT INTO items VALUES {values}", database="shop")


def rows(server):
    return server.rows("SELECT id, v FROM items ORDER BY id", database="shop")


def compare(agent, a, b):
    return agent.must("replication.compare", {"a": a, "b": b})["order"]


def test_compare(agent):
    cases = [("0-1-5", "0-1-5", "equal"), ("0-1-5", "0-1-6", "before"), ("0-1-7", "0-1-6", "after"),
             ("0-1-1", "0-1-1,1-1-1", "before"), ("0-1-5,1-2-3", "1-2-3,0-1-5", "equal"), ("0-1-5,1-2-3", "0-1-5", "after"),
             ("0-1-5,1-2-3", "0-1-6,1-2-2", "diverged"), ("0-1-5", "0-2-5", "diverged"),
             ("0-1-10", "0-2-11", "before"), (" 0-1-5 ,\n1-1-2", "0-1-5,1-1-2", "equal")]
    for a, b, want in cases:
        got = compare(agent, a, b)
        check(got == want, f"compare({a!r}, {b!r}) = {got}, expected {want}")
    for bad in ("x", "0-1", "0-1-5,", "0-1--5", "0-1-99999999999999999999999"):
        r = agent.call("replication.compare", {"a": bad, "b": "0-1-1"})
        check(not r.ok and r.code == "invalid_argument", f"compare of {bad!r}: {r}")


def main():
    with harness.Env(prefix="mysql-repl-") as env:
        backups = env.mkdir("backups", mode=0o700)
        src = mysql_server.start_server(env, 0)
        rep = mysql_server.start_server(env, 1)
        a_src = mysql_server.agent_for(env, src, backup_dir=backups)
        a_rep = mysql_server.agent_for(env, rep, backup_dir=backups)
        test_compare(a_src)

        a_src.must("database.create", {"name": "shop"})
        src.admin_sql("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(64))", database="shop")
        insert_rows(src, "seed", 0, 100)
        a_src.must("user.create", {"name": "alice", "password": "pw", "databases": ["shop"]})

        snap = a_src.must("replication.snapshot")
        check(snap["user"].startswith("os_repl_") and len(snap["password"]) >= 16, f"snapshot credentials: {snap.result}")
        check(snap["backup"]["meta"].get("gtid_position"), f"the snapshot has no GTID position: {snap['backup']}")
        source = {"host": src.host, "port": src.port, "user": snap["user"], "password": snap["password"]}
        users = {u["name"] for u in a_src.must("user.list")["users"]}
        check(snap["user"] not in users, "the replication account shows in user.list")

        bad = dict(source, password="wrong")
        r = a_rep.call("replication.attach", {"source": bad})
        check(not r.ok and r.code == "datastore_error" and "1045" in r.message, f"attach with a wrong password: {r}")
        st = a_rep.must("replication.status").result
        check(st["role"] != "replica" and rep.scalar("SELECT @@read_only") == "0",
              f"a failed attach left the server replicating or read-only: {st}")
        r = a_rep.call("replication.attach", {"source": dict(source, host="h'; DROP DATABASE shop; --")})
        check(not r.ok and r.code == "invalid_argument", f"attach to a hostile host name: {r}")

        a_rep.must("replication.attach", {"source": source, "snapshot": snap["backup"]["id"]})
        st = a_rep.must("replication.status").result
        check(st["role"] == "replica" and st["source_port"] == src.port and st["io_state"] == "Yes"
              and st["apply_state"] == "Yes", f"replica status: {st}")
        check(a_rep.must("status")["role"] == "replica", "the health of the replica does not say replica")
        check(a_src.must("status")["role"] == "primary", "the health of the source does not say primary")
        check(rep.scalar("SELECT @@read_only") == "1", "the replica is writable")
        cp = rep.sql("INSERT INTO items VALUES (99999, 'x')", user="alice", password="pw", database="shop")
        check(cp.returncode != 0 and "read-only" in cp.stderr, f"a tenant wrote on the replica: {cp.stderr}")

        before = a_src.must("replication.position")["position"]
        insert_rows(src, "live", 1000, 300)
        after = a_src.must("replication.position")["position"]
        check(compare(a_src, before, after) == "before", "positions do not advance")
        a_rep.must("replication.wait", {"position": after, "timeout_ms": 30000})
        check(rows(rep) == rows(src), "the replica lacks the source's rows after waiting for its position")
        check(compare(a_rep, a_rep.must("replication.position")["position"], after) in ("equal", "after"),
              "the replica's position is behind after the wait")
        r = a_rep.call("replication.wait", {"position": "0-1-99999999", "timeout_ms": 500})
        check(not r.ok and r.code == "timeout", f"waiting for an unreachable position: {r}")
        r = a_rep.call("replication.wait", {"position": "garbage", "timeout_ms": 500})
        check(not r.ok and r.code == "invalid_argument", f"waiting for garbage: {r}")

        # Switch over: the replica becomes the primary, the old source follows it.
        a_src.must("replication.read_only", {"read_only": True})
        check(src.scalar("SELECT @@read_only") == "1", "read_only on the source did not apply")
        final = a_src.must("replication.position")["position"]
        a_rep.must("replication.wait", {"position": final, "timeout_ms": 30000})
        a_rep.must("replication.promote")
        check(a_rep.must("replication.status")["role"] == "primary", "the promoted replica is not primary")
        check(rep.scalar("SELECT @@read_only") == "0", "the promoted replica is read-only")
        cp = rep.sql("INSERT INTO items VALUES (5000, 'promoted')", user="alice", password="pw", database="shop")
        check(cp.returncode == 0, f"cannot write to the promoted replica: {cp.stderr}")

        creds = a_rep.must("replication.snapshot")
        new_source = {"host": rep.host, "port": rep.port, "user": creds["user"], "password": creds["password"]}
        a_src.must("replication.demote", {"source": new_source})
        check(a_src.must("replication.status")["role"] == "replica", "the old source does not follow the new one")
        insert_rows(rep, "after-switch", 6000, 50)
        pos = a_rep.must("replication.position")["position"]
        a_src.must("replication.wait", {"position": pos, "timeout_ms": 30000})
        check(rows(src) == rows(rep), "the old source lacks the new primary's rows")

        a_src.must("replication.detach")
        st = a_src.must("replication.status").result
        check(st["role"] in ("standalone", "primary") and src.scalar("SELECT @@read_only") == "0",
              f"after detach: {st}")
        cp = src.sql("INSERT INTO items VALUES (7000, 'detached')", user="alice", password="pw", database="shop")
        check(cp.returncode == 0, f"cannot write to the detached server: {cp.stderr}")
        a_src.must("restart")
        check(src.scalar("SELECT @@read_only") == "0" and a_src.must("replication.status")["role"] != "replica",
              "the detached server came back read-only or replicating after a restart")
    print("mysql replication: passed")


if __name__ == "__main__":
    main()
