"""Roles and keyspaces through the Cassandra plugin, checked with the DataStax
Python driver: a role created with trovectl (through the control plane) and
one created through the agent log in, read the keyspace they were granted
and are refused on one they were not; grant, revoke, password change and
delete do what they say; root is a superuser role; the plugin's own roles
and the system keyspaces are out of reach. Hostile role and keyspace names
(quotes, double quotes, NUL, unicode, 1,000 characters, CQL that tries to
break out) are refused or stored literally, and nothing else changes.
Passwords never reach a log.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import harness  # noqa: E402
from harness import check  # noqa: E402
from controlplane import ControlPlane  # noqa: E402

try:
    import ds_cassandra as ds  # noqa: E402
    from cassandra import Unauthorized  # noqa: E402
    from cassandra.cluster import NoHostAvailable  # noqa: E402
except ImportError as exc:
    print(f"skipped: python3-cassandra (the DataStax driver) is not installed ({exc})")
    sys.exit(77)

PW = "s3cr'et \"pw\" \\ é"


def login(node, user, password):
    """'ok', 'refused' (bad login), or the session's error on reading each keyspace."""
    try:
        return node.session(user, password)
    except NoHostAvailable:
        return None


def reads(node, user, password, keyspace):
    s = login(node, user, password)
    if s is None:
        return "login refused"
    with s:
        try:
            s.execute(f"SELECT k FROM {ds.cql_ident(keyspace)}.t LIMIT 1")
            return "read"
        except Unauthorized:
            return "unauthorized"


def world(node):
    """Everything a hostile name could change: roles with their flags, keyspaces, grants."""
    with node.session() as s:
        roles = sorted((r.role, r.can_login, r.is_superuser) for r in
                       s.execute("SELECT role, can_login, is_superuser FROM system_auth.roles"))
        keyspaces = sorted(r.keyspace_name for r in s.execute("SELECT keyspace_name FROM system_schema.keyspaces"))
        grants = sorted((r.role, r.resource, str(sorted(r.permissions or ()))) for r in
                        s.execute("SELECT role, resource, permissions FROM system_auth.role_permissions"))
        rows = sorted(tuple(r) for r in s.execute("SELECT k, v FROM app.t"))
    return roles, keyspaces, grants, rows


def setup_keyspaces(node, agent):
    for ks in ("app", "other"):
        agent.must("database.create", {"name": ks})
    with node.session() as s:
        for ks in ("app", "other"):
            s.execute(f"CREATE TABLE {ks}.t (k int PRIMARY KEY, v text)")
            s.execute(f"INSERT INTO {ks}.t (k, v) VALUES (1, '{ks}-row')")


def test_roles_through_trovectl_and_the_agent():
    with harness.Env(prefix="cs-users-") as env:
        node = ds.StandinNode(env, 0)
        cp = ControlPlane(env)
        agent = cp.agent("cassandra", node.settings, "cass-1")
        cp.start()
        agent.serve()
        cp.wait_connected("cass-1")
        setup_keyspaces(node, agent)

        r = cp.ctl("user-create", "cass-1", "carol", "-", "--databases", "app", stdin=(PW + "\n").encode())
        check(r.ok, f"trovectl user-create: {r}")
        check(reads(node, "carol", PW, "app") == "read", "carol cannot read app")
        check(reads(node, "carol", PW, "other") == "unauthorized", "carol reads a keyspace never granted")
        check(reads(node, "carol", "wrong", "app") == "login refused", "a wrong password logs in")
        r = cp.ctl("user-show-access", "cass-1", "carol")
        check(r.ok and [d["name"] for d in r["databases"]] == ["app"], f"trovectl user-show-access: {r}")

        agent.must("user.create", {"name": "dave", "password": PW, "databases": ["app", "other"]})
        check(reads(node, "dave", PW, "other") == "read", "dave cannot read other")
        agent.must("user.revoke", {"name": "dave", "databases": ["other"]})
        check(reads(node, "dave", PW, "other") == "unauthorized", "revoke left dave his access")
        check(reads(node, "dave", PW, "app") == "read", "revoking other took app too")
        agent.must("user.grant", {"name": "dave", "databases": ["other"]})
        check(reads(node, "dave", PW, "other") == "read", "grant did not give access back")
        agent.must("user.password", {"name": "dave", "password": "n3w'pw"})
        check(reads(node, "dave", PW, "app") == "login refused" and reads(node, "dave", "n3w'pw", "app") == "read",
              "the password change misbehaves")
        users = {u["name"]: u for u in agent.must("user.list")["users"]}
        check(set(users) == {"carol", "dave"}, f"user.list shows {sorted(users)} (plugin roles must stay hidden)")
        check(sorted(users["dave"]["databases"]) == ["app", "other"], f"dave: {users['dave']}")
        check(agent.call("user.create", {"name": "dave", "password": "x"}).code == "already_exists", "dave twice")
        check(agent.call("user.show", {"name": "nobody"}).code == "not_found", "a missing user")
        check(agent.call("user.grant", {"name": "dave", "databases": ["nope"]}).code == "not_found",
              "a grant on a missing keyspace")
        check(agent.call("user.create", {"name": "erin", "password": "x", "databases": ["nope"]}).code ==
              "not_found" and reads(node, "erin", "x", "app") == "login refused",
              "a user created with a missing keyspace exists anyway")
        agent.must("user.delete", {"name": "dave"})
        check(reads(node, "dave", "n3w'pw", "app") == "login refused", "a deleted user still logs in")

        # root
        root = agent.must("root.enable")
        check(root["name"] == "root" and agent.must("root.show")["enabled"] is True, f"root.enable: {root.result}")
        with node.session("root", root["password"]) as s:
            check(s.execute("SELECT is_superuser FROM system_auth.roles WHERE role = 'root'").one().is_superuser,
                  "root is no superuser")
        agent.must("root.enable", {"password": "chosen 'root' pw"})
        check(reads(node, "root", "chosen 'root' pw", "other") == "read", "root.enable with a password")
        agent.must("root.disable")
        check(agent.must("root.show")["enabled"] is False and
              reads(node, "root", "chosen 'root' pw", "app") == "login refused", "root.disable")

        # the plugin's roles and Cassandra's are out of reach
        for name in ("trove_admin", "cassandra", "root", "trove_cluster", "trove_other", "TROVE_ADMIN", "Cassandra"):
            for op, args in (("user.create", {"name": name, "password": "x"}), ("user.delete", {"name": name}),
                             ("user.password", {"name": name, "password": "x"}),
                             ("user.grant", {"name": name, "databases": ["app"]})):
                r = agent.call(op, args)
                check(r.code == "invalid_argument", f"{op} on the reserved role {name!r}: {r}")
        check(can_admin(node), "the admin role was changed")

        # passwords stay out of every log
        for root_dir, _, files in os.walk(env.dir):
            for f in files:
                if f.endswith(".log"):
                    data = open(os.path.join(root_dir, f), "rb").read()
                    for secret in (PW, "n3w'pw", "chosen 'root' pw", root["password"]):
                        check(secret.encode() not in data, f"a password is in {f}")


def can_admin(node):
    with node.session() as s:
        return s.execute("SELECT role FROM system_auth.roles WHERE role = %s", (ds.ADMIN_USER,)).one() is not None


def test_hostile_names():
    with harness.Env(prefix="cs-hostile-") as env:
        node = ds.StandinNode(env, 0)
        agent = harness.Agent(env, "cassandra", node.settings)
        setup_keyspaces(node, agent)
        before = world(node)
        stored = []
        role_names = ["o'neil", 'dq"name', 'a""b"', "ünïcødé-ロール", "x'; DROP KEYSPACE app; --",
                      '"; DROP ROLE trove_admin; --', "with space", "x" * 1000, "nul\x00name", "tab\tname",
                      "new\nline", "", "trove_sneaky", "Cassandra"]
        for name in role_names:
            r = agent.call("user.create", {"name": name, "password": PW, "databases": ["app"]})
            if r.ok:
                stored.append(name)
                with node.session() as s:
                    row = s.execute("SELECT role FROM system_auth.roles WHERE role = %s", (name,)).one()
                check(row is not None and row.role == name, f"{name!r} was not stored literally")
                check(reads(node, name, PW, "app") == "read", f"{name!r} cannot log in and read")
                check(reads(node, name, PW, "other") == "unauthorized", f"{name!r} reads other")
                check(name in {u["name"] for u in agent.must("user.list")["users"]}, f"{name!r} not listed")
                agent.must("user.delete", {"name": name})
            else:
                check(r.code == "invalid_argument" and r.message, f"{name!r}: {r}")
            check(world(node) == before, f"creating role {name!r} changed something else")
        check(set(stored) >= {"o'neil", 'dq"name', 'a""b"', "ünïcødé-ロール", "x'; DROP KEYSPACE app; --",
                              '"; DROP ROLE trove_admin; --', "with space"},
              f"names that Cassandra stores literally were refused: stored {stored}")
        check("x" * 1000 not in stored and "" not in stored and "nul\x00name" not in stored, "bad names accepted")

        keyspace_names = ["app'x", 'a"b', "ünï", "x" * 1000, "x" * 49, "a b", "a;b", "a-b", "system_x", "System",
                          "systemic", "", "nul\x00ks", "ks'; DROP KEYSPACE app; --"]
        for name in keyspace_names:
            for op, args in (("database.create", {"name": name}), ("database.delete", {"name": name}),
                             ("database.alter", {"name": name, "options": {"replication_factor": "2"}}),
                             ("user.grant", {"name": "carol", "databases": [name]})):
                r = agent.call(op, args)
                check(r.code == "invalid_argument" and r.message, f"{op} {name!r}: {r}")
            check(world(node) == before, f"keyspace name {name!r} changed something")
        for name in ("system_auth", "system", "system_schema", "system_distributed", "system_traces"):
            r = agent.call("database.delete", {"name": name})
            check(r.code == "invalid_argument", f"deleting {name}: {r}")
        longest = "k" * 48
        agent.must("database.create", {"name": longest})
        agent.must("database.delete", {"name": longest})
        for options in ({"class": "NoSuchStrategy"}, {"replication_factor": "0"}, {"replication_factor": "x"},
                        {"class": "SimpleStrategy", "dc.datacenter1": "1"}, {"dc.bad dc": "1"},
                        {"durable_writes": "perhaps"}, {"replication": "{'class': 'x'}"}, {"dc.x'y": "1"}):
            r = agent.call("database.create", {"name": "opts", "options": options})
            check(r.code == "invalid_argument", f"options {options}: {r}")
            r = agent.call("database.alter", {"name": "app", "options": options})
            check(r.code == "invalid_argument", f"alter options {options}: {r}")
            check(world(node) == before, f"options {options} changed something")


def test_keyspaces():
    with harness.Env(prefix="cs-keyspaces-") as env:
        node = ds.StandinNode(env, 0)
        agent = harness.Agent(env, "cassandra", node.settings)

        def replication(ks):
            with node.session() as s:
                row = s.execute("SELECT replication, durable_writes FROM system_schema.keyspaces WHERE "
                                "keyspace_name = %s", (ks,)).one()
            rep = dict(row.replication)
            rep["class"] = rep["class"].rsplit(".", 1)[-1]
            return rep, row.durable_writes

        agent.must("database.create", {"name": "plain"})
        check(replication("plain") == ({"class": "SimpleStrategy", "replication_factor": "1"}, True), "default")
        agent.must("database.create", {"name": "MixedCase", "options": {"class": "NetworkTopologyStrategy",
                                                                         "dc.datacenter1": "2",
                                                                         "durable_writes": "off"}})
        check(replication("MixedCase") == ({"class": "NetworkTopologyStrategy", "datacenter1": "2"}, False),
              f"NTS: {replication('MixedCase')}")
        r = agent.call("database.create", {"name": "unknown_dc", "options": {"dc.nowhere": "1"}})
        check(r.code == "invalid_argument" and "nowhere" in r.message, f"an unknown data center: {r}")
        check(agent.call("database.create", {"name": "plain"}).code == "already_exists", "plain twice")
        listed = {d["name"]: d for d in agent.must("database.list")["databases"]}
        check(set(listed) == {"plain", "MixedCase"}, f"database.list shows {sorted(listed)}")
        check(listed["MixedCase"]["options"] == {"class": "NetworkTopologyStrategy", "dc.datacenter1": "2",
                                                 "durable_writes": "false"}, f"{listed['MixedCase']}")

        agent.must("database.alter", {"name": "plain", "options": {"replication_factor": "3"}})
        check(replication("plain") == ({"class": "SimpleStrategy", "replication_factor": "3"}, True), "alter rf")
        agent.must("database.alter", {"name": "plain", "options": {"class": "NetworkTopologyStrategy",
                                                                    "replication_factor": "2"}})
        check(replication("plain")[0] == {"class": "NetworkTopologyStrategy", "datacenter1": "2"},
              f"to NTS: {replication('plain')}")
        agent.must("database.alter", {"name": "MixedCase", "options": {"durable_writes": "true"}})
        check(replication("MixedCase") == ({"class": "NetworkTopologyStrategy", "datacenter1": "2"}, True),
              "durable_writes alone kept the replication")
        r = agent.call("database.alter", {"name": "plain", "options": {"class": "SimpleStrategy"}})
        check(r.code == "invalid_argument" and "replication_factor" in r.message, f"Simple without a factor: {r}")
        check(agent.call("database.alter", {"name": "gone", "options": {"replication_factor": "1"}}).code ==
              "not_found", "altering a missing keyspace")
        r = agent.call("database.create", {"name": "cs", "character_set": "utf8"})
        check(r.code == "invalid_argument" and "character_set" in r.message, f"character_set: {r}")
        agent.must("database.delete", {"name": "MixedCase"})
        check(agent.call("database.delete", {"name": "MixedCase"}).code == "not_found", "deleting twice")
        check([d["name"] for d in agent.must("database.list")["databases"]] == ["plain"], "after delete")


def main():
    harness.run_tests(globals())


if __name__ == "__main__":
    main()
