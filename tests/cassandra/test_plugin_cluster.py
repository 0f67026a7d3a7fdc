"""Ring membership through the Cassandra plugin's cluster slots: a node forms
a ring under a new name (the rename procedure, with a restart), a second node
with a wrong cluster secret is refused before anything changes, then joins
with the right one in a data center and rack of its choosing and
bootstraps; both nodes list both as up with their host ids and locations,
the driver sees both, and a row written through one node is read through the
other. A node holding keyspaces of its own may not join. The second node
leaves (decommission), is reported as such, and joins again; a dead member
is removed by the survivor (removenode). The secret reaches no file the
plugin or the node writes, and no log.
"""
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import harness  # noqa: E402
from harness import check  # noqa: E402

try:
    import ds_cassandra as ds  # noqa: E402
    from cassandra import ConsistencyLevel  # noqa: E402
    from cassandra.query import SimpleStatement  # noqa: E402
except ImportError as exc:
    print(f"skipped: python3-cassandra (the DataStax driver) is not installed ({exc})")
    sys.exit(77)

SECRET = "ring secret 'q' \"x\" 9f"
RING = "Ring One"


def members(agent):
    r = agent.must("cluster.status")
    return r["cluster_name"], {m["host"]: m for m in r["members"]}


def seed_of(node):
    return [{"host": node.address, "port": node.port}]


def test_form_join_leave():
    with harness.Env(prefix="cs-cluster-") as env:
        a, b = ds.StandinNode(env, 0), ds.StandinNode(env, 1)
        aa = harness.Agent(env, "cassandra", a.settings, instance_id="a")
        ab = harness.Agent(env, "cassandra", b.settings, instance_id="b")

        aa.must("cluster.join", {"cluster_name": RING, "cluster_secret": SECRET})
        name, ms = members(aa)
        check(name == RING and list(ms) == [a.address] and ms[a.address]["self"] and
              ms[a.address]["state"] == "up", f"after forming: {name} {ms}")
        with a.session() as s:
            check(s.execute("SELECT cluster_name FROM system.local WHERE key = 'local'").one().cluster_name == RING,
                  "the node was not renamed")
        aa.must("restart")   # the saved name and the generated yaml agree
        check(members(aa)[0] == RING, "the name did not survive a restart")

        # b holds a keyspace of its own: it may not join until it is gone
        ab.must("database.create", {"name": "mine"})
        r = ab.call("cluster.join", {"cluster_secret": SECRET, "seeds": seed_of(a)})
        check(r.code == "failed_precondition" and "mine" in r.message, f"a node with data joined: {r}")
        ab.must("database.delete", {"name": "mine"})

        r = ab.call("cluster.join", {"cluster_secret": "not the secret", "seeds": seed_of(a)})
        check(r.code == "invalid_argument" and "secret" in r.message, f"a wrong secret: {r}")
        check(ab.must("status")["state"] == "running" and list(members(ab)[1]) == [b.address] and
              list(members(aa)[1]) == [a.address], "the refused join changed something")
        r = ab.call("cluster.join", {"cluster_name": "Other Ring", "cluster_secret": SECRET, "seeds": seed_of(a)})
        check(r.code == "invalid_argument" and RING in r.message, f"a wrong ring name: {r}")
        r = ab.call("cluster.join", {"cluster_secret": SECRET, "seeds": seed_of(a), "options": {"dc": "dc2"}})
        check(r.code == "invalid_argument", f"dc without rack: {r}")

        ab.must("cluster.join", {"cluster_name": RING, "cluster_secret": SECRET, "seeds": seed_of(a),
                                 "options": {"dc": "dc2", "rack": "r7", "auto_bootstrap": "true"}})
        for agent, me in ((aa, a), (ab, b)):
            name, ms = members(agent)
            check(name == RING and set(ms) == {a.address, b.address}, f"{me.address} lists {ms}")
            check(all(m["state"] == "up" and m["port"] == a.port and m["id"] for m in ms.values()), f"{ms}")
            check([h for h, m in ms.items() if m["self"]] == [me.address], f"self flags: {ms}")
            check(ms[b.address]["location"] == "dc2/r7" and ms[a.address]["location"] == "datacenter1/rack1",
                  f"locations: {ms}")
        check(ds.DATASTORE.cluster_members(b) == {f"{a.address}:{a.port}", f"{b.address}:{b.port}"},
              "the driver does not see both nodes")
        yaml = open(os.path.join(b.conf_dir, "cassandra.yaml")).read()
        check("GossipingPropertyFileSnitch" in yaml and a.address in yaml and RING in yaml, f"b's yaml:\n{yaml}")

        # a row written through one node is read through the other
        aa.must("database.create", {"name": "ringks", "options": {"class": "NetworkTopologyStrategy",
                                                                  "dc.datacenter1": "1", "dc.dc2": "1"}})
        with a.session() as s:
            s.execute("CREATE TABLE ringks.t (k text PRIMARY KEY, v text)")
            s.execute(SimpleStatement("INSERT INTO ringks.t (k, v) VALUES ('written', 'through a')",
                                      consistency_level=ConsistencyLevel.ALL))
        with b.session() as s:
            row = s.execute(SimpleStatement("SELECT v FROM ringks.t WHERE k = 'written'",
                                            consistency_level=ConsistencyLevel.ONE)).one()
            check(row and row.v == "through a", "b does not read the row written through a")
            s.execute("INSERT INTO ringks.t (k, v) VALUES ('back', 'through b')")
        with a.session() as s:
            check(s.execute("SELECT v FROM ringks.t WHERE k = 'back'").one().v == "through b", "and back")
        check(ab.must("user.list") is not None, "b's agent cannot use the ring's roles")
        # a join repeated (a retry) finds b in the ring already: nothing is emptied
        ab.must("cluster.join", {"cluster_secret": SECRET, "seeds": seed_of(a)})
        with b.session() as s:
            check(s.execute("SELECT v FROM ringks.t WHERE k = 'back'").one().v == "through b",
                  "a repeated join emptied the node")

        ab.must("cluster.leave")
        check(list(members(aa)[1]) == [a.address], f"a still lists b: {members(aa)}")
        st = ab.must("status")
        check(st["state"] == "stopped" and "decommissioned" in st["message"], f"b after leaving: {st.result}")
        check(ab.call("start").code == "failed_precondition", "a decommissioned node started")
        r = ab.call("cluster.join", {"cluster_secret": "wrong again", "seeds": seed_of(a)})
        check(r.code == "invalid_argument" and list(members(aa)[1]) == [a.address], f"wrong secret after leave: {r}")
        ab.must("cluster.join", {"cluster_secret": SECRET, "seeds": seed_of(a)})
        check(set(members(aa)[1]) == {a.address, b.address}, "b did not join again")
        with b.session() as s:
            check(s.execute("SELECT v FROM ringks.t WHERE k = 'written'").one().v == "through a",
                  "b did not bootstrap the data again")

        # a dead member is removed by the survivor
        os.kill(b.pid(), signal.SIGKILL)
        harness.wait_for(lambda: members(aa)[1][b.address]["state"] == "down", 30, "b reported down")
        r = aa.call("cluster.leave", {"member": {"host": a.address, "port": a.port}})
        check(r.code == "invalid_argument", f"removing itself as a member: {r}")
        aa.must("cluster.leave", {"member": {"host": b.address, "port": b.port}})
        check(list(members(aa)[1]) == [a.address], f"b was not removed: {members(aa)}")
        r = aa.call("cluster.leave")
        check(not r.ok and r.message, f"the last node decommissioned itself: {r}")

        for root, _, files in os.walk(env.dir):
            for f in files:
                path = os.path.join(root, f)
                if os.path.isfile(path) and not os.path.islink(path):
                    check(SECRET.encode() not in open(path, "rb").read(), f"the cluster secret is in {path}")


def main():
    harness.run_tests(globals())


if __name__ == "__main__":
    main()
