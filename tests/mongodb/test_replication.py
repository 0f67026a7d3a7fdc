"""Replica sets through the MongoDB plugin, on two mongod stand-ins: a member
seeded from a snapshot joins the primary's set (replSetReconfig) and reads
back its writes; read-only, promotion (the term grows, every write is kept)
and demotion; detach leaves a writable one-member set with all the data; a
member is promoted even when the old primary is dead (forced reconfig);
refusals change nothing. Checked with pymongo."""
import os
import signal

import harness
import pymongo
from harness import check
from mongodb_server import MongoServer

NotPrimary = getattr(pymongo.errors, "NotPrimaryError", None) or pymongo.errors.NotMasterError


def pair(env):
    backups = env.mkdir("backups", mode=0o700)
    p, m = MongoServer(env, 0).start(), MongoServer(env, 1).start()
    ap = harness.Agent(env, "mongodb", p.settings, "primary", backup_dir=backups)
    am = harness.Agent(env, "mongodb", m.settings, "member", backup_dir=backups)
    return p, m, ap, am


def source(server, creds):
    return {"host": server.host, "port": server.port, "user": creds["user"], "password": creds["password"]}


def attach(p, m, ap, am):
    snap = ap.must("replication.snapshot").result
    check(snap["user"] == "trove_replicator" and snap["password"], f"snapshot credentials: {list(snap)}")
    check("password" not in str(snap["backup"]["meta"]).lower(), "a secret in the snapshot's metadata")
    am.must("replication.attach", {"source": source(p, snap), "snapshot": snap["backup"]["id"]})


def write(server, coll, n, tag):
    c = server.admin()
    c.shop[coll].insert_many([{"_id": f"{tag}-{i}", "v": i} for i in range(n)])
    c.close()


def refuses_writes(server):
    c = server.admin()
    try:
        c.shop.items.insert_one({"probe": 1})
        return False
    except NotPrimary:
        return True
    finally:
        c.close()


def members(agent):
    return sorted((m["host"], m["port"], m["state"], m["role"]) for m in agent.must("cluster.status")["members"])


def caught_up(src_agent, dst_agent):
    dst_agent.must("replication.wait", {"position": src_agent.must("replication.position")["position"],
                                        "timeout_ms": 30000})


def test_member_follows_promotion_keeps_every_write_and_detach_leaves_a_writable_set():
    with harness.Env(prefix="mongodb-repl-") as env:
        p, m, ap, am = pair(env)
        write(p, "items", 200, "seed")
        attach(p, m, ap, am)
        check(am.must("status")["role"] == "replica" and ap.must("status")["role"] == "primary",
              f"roles: {am.must('status').result} {ap.must('status').result}")
        hello = m.admin().admin.command("hello")
        check(hello["setName"] == "rs-0" and hello["secondary"] and hello["primary"] == p.member, f"{hello}")
        both = sorted([(p.host, p.port, "up", "primary"), (m.host, m.port, "up", "replica")])
        check(members(ap) == both and members(am) == both, f"cluster.status: {members(ap)} / {members(am)}")

        before = ap.must("replication.position")["position"]
        write(p, "items", 50, "live")
        after = ap.must("replication.position")["position"]
        check(ap.must("replication.compare", {"a": before, "b": after})["order"] == "before", "compare")
        am.must("replication.wait", {"position": after, "timeout_ms": 30000})
        check(m.digest() == p.digest(), "the member does not hold the primary's writes")
        check(refuses_writes(m), "the member accepts writes")
        rs = am.must("replication.status").result
        check(rs["role"] == "replica" and rs["source_host"] == p.host and rs["source_port"] == p.port,
              f"replication.status: {rs}")

        term = am.must("status")["term"]
        ap.must("replication.read_only", {"read_only": True})
        check(refuses_writes(p), "a read-only primary accepts writes")
        caught_up(ap, am)
        am.must("replication.promote")
        st = am.must("status").result
        check(st["role"] == "primary" and st["term"] > term, f"after promote: {st} (term before {term})")
        check(m.digest() == p.digest(), "the promotion lost writes")
        write(m, "items", 20, "on-member")

        creds = am.must("replication.credentials").result
        ap.must("replication.demote", {"source": source(m, creds)})
        check(ap.must("status")["role"] == "replica" and refuses_writes(p), "the demoted primary")
        write(m, "items", 10, "after-switch")
        caught_up(am, ap)
        check(p.digest() == m.digest(), "the demoted server does not follow the new primary")

        at_detach = p.digest()
        ap.must("replication.detach")
        st = ap.must("status").result
        check(st["role"] == "standalone" and st["state"] == "running", f"after detach: {st}")
        check(p.digest() == at_detach, "detach changed the data")
        write(p, "items", 5, "standalone")
        check(members(am) == [(m.host, m.port, "up", "primary")], f"the set still lists P: {members(am)}")
        check(members(ap) == [(p.host, p.port, "up", "primary")], f"P's own set: {members(ap)}")

        # Attaching without a snapshot would replace P's databases by an initial sync: refused.
        r = ap.call("replication.attach", {"source": source(m, creds)})
        check(r.code == "failed_precondition" and "databases" in r.message, f"attach over data: {r}")
        check(ap.must("status")["role"] == "standalone" and members(am) == [(m.host, m.port, "up", "primary")],
              "the refused attach changed something")


def test_promotion_when_the_primary_is_dead():
    with harness.Env(prefix="mongodb-dead-") as env:
        p, m, ap, am = pair(env)
        write(p, "items", 30, "seed")
        attach(p, m, ap, am)
        write(p, "items", 10, "more")
        caught_up(ap, am)
        expected = p.digest()
        os.kill(p.pid(), signal.SIGKILL)
        am.must("replication.promote")
        check(am.must("status")["role"] in ("primary", "standalone") and m.digest() == expected,
              "the surviving member was not promoted with every write")
        write(m, "items", 3, "after")
        check(len(am.must("cluster.status")["members"]) == 1, "the dead member is still configured")


def test_read_only_lone_member_survives_restart():
    with harness.Env(prefix="mongodb-ro-") as env:
        s = MongoServer(env, 0).start()
        a = harness.Agent(env, "mongodb", s.settings)
        a.must("replication.read_only", {"read_only": True})
        check(refuses_writes(s), "read-only did not stop writes")
        a.must("restart")
        check(refuses_writes(s), "read-only did not survive a restart")
        a.must("replication.read_only", {"read_only": False})
        harness.wait_for(lambda: not refuses_writes(s), 30, "writable again")
        st = a.must("status").result
        check(st["role"] == "standalone" and st["state"] == "running", f"{st}")


def test_joining_with_a_wrong_secret_or_bad_input_changes_nothing():
    with harness.Env(prefix="mongodb-join-") as env:
        p, m, ap, am = pair(env)
        r = am.call("cluster.join", {"cluster_secret": "not the secret",
                                     "seeds": [{"host": p.host, "port": p.port}]})
        check(r.code == "failed_precondition" and "keyFile" in r.message, f"a wrong secret: {r}")
        check(len(ap.must("cluster.status")["members"]) == 1 and am.must("status")["state"] == "running",
              "a refused join changed the set")
        for bad in ({"source": {"host": "", "port": p.port}}, {"source": {"host": p.host, "port": 0}}):
            check(am.call("replication.attach", bad).code == "invalid_argument", f"attach {bad}")
        check(ap.must("replication.compare", {"a": "2:100:1", "b": "1:200:5"})["order"] == "after",
              "positions compare term first")
        for bad in ("", "1:2", "a:b:c", "1:2:3:4", "1:-2:3", "1:99999999999:1"):
            r = ap.call("replication.compare", {"a": bad, "b": "1:1:1"})
            check(r.code == "invalid_argument", f"position {bad!r}: {r}")
        r = am.call("replication.wait", {"position": "1:1:1:1", "timeout_ms": 100})
        check(r.code == "invalid_argument", f"wait on a bad position: {r}")
        r = am.call("replication.wait", {"position": "99:4000000000:1", "timeout_ms": 300})
        check(r.code == "timeout", f"wait on a future position: {r}")


if __name__ == "__main__":
    harness.run_tests(globals())
