"""Is the stand-in honest? An independent client, the DataStax Python driver
(python3-cassandra 3.25), and nothing of the project's own code, checks what
a real Cassandra 4 would show it: the protocol downgrade from the driver's
default version, PasswordAuthenticator login, keyspace and table DDL with
schema agreement and the driver's schema metadata, rows written and read with
simple and prepared statements (and paged), roles listed, a role without
grants refused on a keyspace until granted, Cassandra's error classes, and a
two-node ring where a row written through one node is read through the other.
The stand-in is only started here (tests/cassandra/standin_cluster.py).
"""
import logging
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import standin_cluster  # noqa: E402

try:
    import cassandra
    from cassandra import (AlreadyExists, AuthenticationFailed, ConsistencyLevel, InvalidRequest, Unauthorized,
                           Unavailable)
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
    from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy
    from cassandra.protocol import SyntaxException
    from cassandra.query import SimpleStatement
except ImportError:
    print("skipped: python3-cassandra (the DataStax driver) is not installed")
    sys.exit(77)

SUPER = ("cassandra", "cassandra")


class DowngradeWatch(logging.Handler):
    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        if "Downgrading core protocol version" in record.getMessage():
            self.seen.append(record.getMessage())


def connect(env, node, user=SUPER, only_this_node=True):
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.address]),
                               request_timeout=20)
    cluster = Cluster([node.address], port=node.native_port, auth_provider=PlainTextAuthProvider(*user),
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10,
                      control_connection_timeout=10)
    env.callback(cluster.shutdown)
    return cluster, cluster.connect()


def expect(exc_type, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc_type as exc:
        return exc
    raise AssertionError(f"expected {exc_type.__name__}")


def test_single_node(env):
    node, = standin_cluster.ring(env, 1)
    node.start()
    watch = DowngradeWatch()
    logger = logging.getLogger("cassandra.cluster")
    logger.addHandler(watch)
    logger.setLevel(logging.WARNING)
    cluster, s = connect(env, node)
    logger.removeHandler(watch)
    logger.setLevel(logging.ERROR)
    assert cluster.protocol_version == 4, cluster.protocol_version
    assert watch.seen and "from 5 to 4" in watch.seen[-1], watch.seen

    local = s.execute("SELECT cluster_name, release_version, data_center, host_id, tokens FROM system.local "
                      "WHERE key = 'local'").one()
    assert local.cluster_name == "Test Cluster" and local.release_version.startswith("4.")
    assert local.data_center == "datacenter1" and isinstance(local.host_id, uuid.UUID) and local.tokens
    err = expect(InvalidRequest, s.execute, "SELECT * FROM system.peers_v2")
    assert "unconfigured table peers_v2" in str(err), err

    s.execute("CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    err = expect(AlreadyExists, s.execute,
                 "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert err.keyspace == "shop" and not err.table
    s.execute("CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'SimpleStrategy', "
              "'replication_factor': 1}")
    s.execute("CREATE TABLE shop.items (id int, seq int, name text, tags set<text>, attrs map<text, text>, "
              "price bigint, PRIMARY KEY (id, seq))")
    assert cluster.control_connection.wait_for_schema_agreement(wait_time=5)
    table = cluster.metadata.keyspaces["shop"].tables["items"]
    assert [c.name for c in table.partition_key] == ["id"] and [c.name for c in table.clustering_key] == ["seq"]
    assert table.columns["tags"].cql_type == "set<text>", table.columns["tags"].cql_type
    assert cluster.metadata.keyspaces["shop"].replication_strategy.replication_factor == 1

    s.execute("INSERT INTO shop.items (id, seq, name, tags, attrs, price) VALUES (1, 1, 'it''s', {'a', 'b'}, "
              "{'k': 'v'}, 10)")
    s.execute("INSERT INTO shop.items (id, seq, name, price) VALUES (%s, %s, %s, %s)", (1, 2, "bound \"x\"", 20))
    insert = s.prepare("INSERT INTO shop.items (id, seq, name, tags) VALUES (?, ?, ?, ?)")
    for i in range(3, 13):
        s.execute(insert, (2, i, f"n{i}", {f"t{i}"}))
    rows = list(s.execute("SELECT * FROM shop.items WHERE id = 1"))
    assert [(r.seq, r.name) for r in rows] == [(1, "it's"), (2, 'bound "x"')], rows
    assert rows[0].tags == {"a", "b"} and dict(rows[0].attrs) == {"k": "v"} and rows[0].price == 10
    select = s.prepare("SELECT name FROM shop.items WHERE id = ? AND seq = ?")
    assert s.execute(select, (2, 7)).one().name == "n7"
    paged = list(s.execute(SimpleStatement("SELECT seq FROM shop.items WHERE id = 2", fetch_size=3)))
    assert [r.seq for r in paged] == list(range(3, 13)), paged
    assert s.execute("SELECT count(*) FROM shop.items").one().count == 12

    expect(SyntaxException, s.execute, "SELEC * FROM shop.items")
    err = expect(InvalidRequest, s.execute, "SELECT * FROM shop.items WHERE name = 'x'")
    assert "ALLOW FILTERING" in str(err)
    s.execute("CREATE KEYSPACE wide WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE wide.t (k int PRIMARY KEY)")
    err = expect(Unavailable, s.execute, SimpleStatement("SELECT * FROM wide.t", retry_policy=FallthroughRetryPolicy(),
                                                         consistency_level=ConsistencyLevel.QUORUM))
    assert err.required_replicas == 2 and err.alive_replicas == 1, err
    s.execute(SimpleStatement("INSERT INTO wide.t (k) VALUES (1)", consistency_level=ConsistencyLevel.ONE))

    # Roles: listed, logged in with, refused until granted.
    s.execute("CREATE ROLE alice WITH PASSWORD = 'al''ice pw' AND LOGIN = true")
    err = expect(InvalidRequest, s.execute, "CREATE ROLE alice WITH PASSWORD = 'x' AND LOGIN = true")
    assert "alice already exists" in str(err)
    s.execute("CREATE ROLE IF NOT EXISTS alice WITH PASSWORD = 'x' AND LOGIN = true")
    roles = {r.role: (r.super, r.login) for r in s.execute("LIST ROLES")}
    assert roles == {"cassandra": (True, True), "alice": (False, True)}, roles
    _, alice = connect(env, node, ("alice", "al'ice pw"))
    err = expect(Unauthorized, alice.execute, "SELECT * FROM shop.items WHERE id = 1")
    assert "User alice has no SELECT permission on <table shop.items> or any of its parents" in str(err), err
    expect(Unauthorized, alice.execute, "CREATE KEYSPACE mine WITH replication = {'class': 'SimpleStrategy', "
                                        "'replication_factor': 1}")
    s.execute("GRANT ALL PERMISSIONS ON KEYSPACE shop TO alice")
    assert len(list(alice.execute("SELECT * FROM shop.items WHERE id = 1"))) == 2
    alice.execute("INSERT INTO shop.items (id, seq, name) VALUES (3, 1, 'by alice')")
    perms = {(r.role, r.resource, r.permission) for r in s.execute("LIST ALL PERMISSIONS OF alice")}
    assert ("alice", "<keyspace shop>", "SELECT") in perms and ("alice", "<keyspace shop>", "MODIFY") in perms, perms
    expect(Unauthorized, alice.execute, "SELECT * FROM wide.t")
    expect(Unauthorized, alice.execute, "CREATE ROLE mallory WITH LOGIN = true")
    s.execute("REVOKE ALL PERMISSIONS ON KEYSPACE shop FROM alice")
    expect(Unauthorized, alice.execute, "SELECT * FROM shop.items WHERE id = 1")
    alice.execute("SELECT * FROM system_schema.keyspaces")   # readable by every role, as in Cassandra

    # A role with a hostile name is stored literally.
    hostile = 'x"; DROP KEYSPACE shop; --\'é'
    s.execute("CREATE ROLE %s WITH PASSWORD = 'p' AND LOGIN = true" % ('"' + hostile.replace('"', '""') + '"'))
    assert hostile in {r.role for r in s.execute("LIST ROLES")}
    _, odd = connect(env, node, (hostile, "p"))
    assert odd.execute("SELECT release_version FROM system.local").one()
    assert "shop" in cluster.metadata.keyspaces

    expect(NoHostAvailable, connect, env, node, ("alice", "wrong"))
    try:
        connect(env, node, ("alice", "wrong"))
    except NoHostAvailable as exc:
        assert any(isinstance(e, AuthenticationFailed) for e in exc.errors.values()), exc.errors
    s.execute("DROP ROLE alice")
    expect(NoHostAvailable, connect, env, node, ("alice", "al'ice pw"))
    settings = {r.name: r.value for r in s.execute("SELECT * FROM system_views.settings")}
    assert settings["authenticator"] == "PasswordAuthenticator" and settings["native_transport_port"] == \
        str(node.native_port), settings.get("authenticator")
    s.execute("DROP KEYSPACE shop")
    assert cluster.control_connection.wait_for_schema_agreement(wait_time=5)
    assert "shop" not in cluster.metadata.keyspaces


def test_two_node_ring(env):
    n1, n2 = standin_cluster.ring(env, 2)
    n1.start()
    n2.start()
    c1, s1 = connect(env, n1)
    c2, s2 = connect(env, n2)
    assert {h.address for h in c1.metadata.all_hosts()} == {n1.address, n2.address}
    assert [r.peer for r in s1.execute("SELECT peer FROM system.peers")] == [n2.address]
    assert [r.peer for r in s2.execute("SELECT peer FROM system.peers")] == [n1.address]
    s1.execute("CREATE KEYSPACE ring WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    s1.execute("CREATE TABLE ring.kv (k text PRIMARY KEY, v text)")
    assert c1.control_connection.wait_for_schema_agreement(wait_time=10)
    s1.execute("INSERT INTO ring.kv (k, v) VALUES ('from-1', 'one')")
    assert s2.execute("SELECT v FROM ring.kv WHERE k = 'from-1'").one().v == "one"
    put = s2.prepare("INSERT INTO ring.kv (k, v) VALUES (?, ?)")
    s2.execute(put, ("from-2", "two"))
    get = s1.prepare("SELECT v FROM ring.kv WHERE k = ?")
    assert s1.execute(get, ("from-2",)).one().v == "two"
    quorum = SimpleStatement("SELECT count(*) FROM ring.kv", consistency_level=ConsistencyLevel.QUORUM)
    assert s2.execute(quorum).one().count == 2
    s1.execute("CREATE ROLE bob WITH PASSWORD = 'b' AND LOGIN = true")
    _, bob = connect(env, n2, ("bob", "b"))
    expect(Unauthorized, bob.execute, "SELECT * FROM ring.kv")
    s1.execute("GRANT SELECT ON KEYSPACE ring TO bob")
    assert len(list(bob.execute("SELECT * FROM ring.kv"))) == 2


def main():
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    print(f"driver {cassandra.__version__}")
    for test in (test_single_node, test_two_node_ring):
        with harness.Env() as env:
            test(env)
            print(f"ok {test.__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
