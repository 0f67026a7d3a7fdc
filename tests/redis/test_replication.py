"""REPLICAOF replication through the agent between two real servers: snapshot
credentials are limited to replication, attach makes a read-only replica that
reaches the primary's position, positions compare across a promotion, a
read-only primary refuses writes, promote and demote swap the roles, and bad
sources are refused or time out with a message."""
import harness
from harness import check
from redis_server import RedisServer


def main():
    with harness.Env(prefix="redis-replication-") as env:
        p = RedisServer(env, 0).start()
        r = RedisServer(env, 1).start()
        ap = harness.Agent(env, "redis", p.settings, instance_id="primary")
        ar = harness.Agent(env, "redis", r.settings, instance_id="replica", backup_dir=ap.backup_dir)
        p.cli("SET", "seed", "1")

        snap = ap.must("replication.snapshot")
        user, password = snap["user"], snap["password"]
        check(user == "replicator" and len(password) >= 16, f"snapshot credentials: {snap.result}")
        check(snap["backup"]["meta"].get("position"), f"snapshot meta: {snap['backup']}")
        out = p.cli("GET", "seed", user=user, password=password, check=False)
        check(out.startswith("NOPERM"), f"the replication user can read data: {out!r}")

        for bad in [{"host": "x; rm -rf /", "port": p.port}, {"host": "127.0.0.1", "port": 0},
                    {"host": "127.0.0.1", "port": p.port, "user": ">pw"}]:
            res = ar.call("replication.attach", {"source": bad})
            check(res.code == "invalid_argument", f"source {bad} was not refused: {res}")
        check(r.cli("INFO", "replication").count("role:master") == 1, "a refused attach changed the role")

        source = {"host": "127.0.0.1", "port": p.port, "user": user, "password": password}
        ar.must("replication.attach", {"source": source, "snapshot": snap["backup"]["id"]})
        st = ar.must("replication.status")
        check(st["role"] == "replica" and st["source_port"] == p.port and st["io_state"] == "up", f"status: {st.result}")
        check(ap.must("replication.status")["role"] == "primary", "the primary does not say primary")
        check(ar.must("status")["role"] == "replica", "heartbeat status role")
        check(r.cli("SET", "x", "1", check=False).startswith("READONLY"), "the replica accepts writes")

        before = ap.must("replication.position")["position"]
        for i in range(50):
            p.cli("SET", f"k{i}", f"v{i}")
        after = ap.must("replication.position")["position"]
        check(ap.must("replication.compare", {"a": before, "b": after})["order"] == "before", "compare before/after")
        check(ap.must("replication.compare", {"a": after, "b": after})["order"] == "equal", "compare equal")
        check(ap.call("replication.compare", {"a": "nonsense", "b": after}).code == "invalid_argument", "bad position")
        foreign = "f" * 40 + ":5"
        check(ap.must("replication.compare", {"a": foreign, "b": after})["order"] == "diverged",
              "positions of unrelated histories do not compare as diverged")
        # Each names the other's id as its past: no single history holds both, either way round.
        x, y = "a" * 40, "b" * 40
        for a, b in [(f"{x}:10,{y}:5", f"{y}:10,{x}:25"), (f"{y}:10,{x}:25", f"{x}:10,{y}:5")]:
            order = ap.must("replication.compare", {"a": a, "b": b})["order"]
            check(order == "diverged", f"crossed histories {a} vs {b}: {order}")
        ar.must("replication.wait", {"position": after, "timeout_ms": 20000})
        check(r.cli("GET", "k49").strip() == "v49", "the replica lacks the primary's write")
        replid, offset = after.split(",")[0].split(":")
        far = f"{replid}:{int(offset) + 10**9}"
        res = ar.call("replication.wait", {"position": far, "timeout_ms": 300})
        check(res.code == "timeout", f"waiting for an unreachable position: {res}")

        # Read-only primary: writes are refused until lifted, the operator's value comes back.
        ap.must("replication.read_only", {"read_only": True})
        check(p.cli("SET", "ro", "1", check=False).startswith("NOREPLICAS"), "a read-only primary accepts writes")
        ap.must("replication.read_only", {"read_only": False})
        check(p.cli("SET", "ro", "1").strip() == "OK", "writes still refused after lifting read-only")
        check(p.config_get("min-replicas-to-write") == "0", "min-replicas-to-write not restored")

        # Switch over: promote the replica, the old primary follows it.
        ap.must("replication.read_only", {"read_only": True})
        final = ap.must("replication.position")["position"]
        ar.must("replication.wait", {"position": final, "timeout_ms": 20000})
        ar.must("replication.promote")
        check(ar.must("replication.status")["role"] in ("standalone", "primary"), "promoted role")
        r.cli("SET", "promoted", "yes")
        new_pos = ar.must("replication.position")["position"]
        check(ar.must("replication.compare", {"a": final, "b": new_pos})["order"] == "before",
              f"the old primary's last position {final} is not behind the promoted one {new_pos}")
        creds = ar.must("replication.snapshot")
        ap.must("replication.demote", {"source": {"host": "127.0.0.1", "port": r.port, "user": creds["user"],
                                                  "password": creds["password"]}})
        check(ap.must("replication.status")["role"] == "replica", "the old primary does not follow")
        r.cli("SET", "after-switch", "yes")
        ap.must("replication.wait", {"position": ar.must("replication.position")["position"], "timeout_ms": 20000})
        check(p.cli("GET", "after-switch").strip() == "yes" and p.cli("GET", "promoted").strip() == "yes",
              "the old primary lacks the new primary's writes")
        check(p.config_get("min-replicas-to-write") == "0", "demote left the primary read-only setting")

        # Wrong credentials: attach times out with a message, quickly.
        c = RedisServer(env, 2).start()
        settings = dict(c.settings, sync_timeout=3)
        ac = harness.Agent(env, "redis", settings, instance_id="third")
        res = ac.call("replication.attach", {"source": dict(source, port=r.port, password="wrong")})
        check(res.code == "timeout" and "credentials" in res.message, f"attach with a wrong password: {res}")
        ac.must("replication.detach")
        check(ac.must("replication.status")["role"] == "standalone", "detach did not make it standalone")
        check(c.cli("SET", "w", "1").strip() == "OK", "a detached server is not writable")
    print("redis replication: passed")


if __name__ == "__main__":
    main()
