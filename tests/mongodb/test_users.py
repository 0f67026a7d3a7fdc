"""Users and databases of the MongoDB plugin as a user meets them: trovectl ->
trove-control -> trove-agent -> mongodb plugin -> the mongod stand-in, with
CURVE on the agent link. Outcomes are checked with pymongo alone: a user
created with trovectl logs in and reads and writes exactly the databases it
was granted, and is refused after delete; the agent's own accounts and the
system databases are out of reach; hostile names are refused or stored
literally, and change nothing else."""
import harness
import pymongo
from controlplane import ControlPlane
from harness import check
from mongodb_server import ADMIN_USER, MongoServer
from pymongo.errors import OperationFailure

PASSWORD = "it's a \"quoted\" \\ pass, é"
INSTANCE = "shop-db"


def bring_up(env):
    server = MongoServer(env).start()
    control = ControlPlane(env)
    agent = control.agent("mongodb", server.settings, INSTANCE)
    control.start()
    agent.serve()
    control.wait_connected(INSTANCE)
    server.agent = agent
    return server, control


def can(server, user, password, db, write=False):
    """True if user logs in and reads (or writes) db; False if the login or the operation is refused."""
    client = server.client(user, password)
    try:
        if write:
            client[db].things.insert_one({"by": user})
        else:
            client[db].things.find_one()
        return True
    except OperationFailure:
        return False
    finally:
        client.close()


def refused(r):
    """invalid_argument from the agent, or trovectl's own refusal of the input (a NUL in JSON)."""
    return r.code in ("invalid_argument", "usage") and bool(r.message)


def users(server):
    c = server.admin()
    try:
        return sorted((u["user"], u["db"]) for u in c.admin.command("usersInfo", {"forAllDBs": True})["users"])
    finally:
        c.close()


def databases(server):
    c = server.admin()
    try:
        return sorted(c.list_database_names())
    finally:
        c.close()


def test_user_created_with_trovectl_reads_and_writes_only_its_databases():
    with harness.Env(prefix="mongodb-users-") as env:
        server, control = bring_up(env)
        for db in ("shop", "blog", "secret"):
            r = control.ctl("database-create", INSTANCE, db)
            check(r.ok, f"database-create {db}: {r.code}: {r.message}")
        check(control.ctl("database-create", INSTANCE, "shop").code == "already_exists", "a second create")
        listed = {d["name"] for d in control.ctl("database-list", INSTANCE)["databases"]}
        check(listed == {"shop", "blog", "secret"}, f"database-list (admin, local, config hidden): {listed}")

        r = control.ctl("user-create", INSTANCE, "alice", "-", "--databases", "shop,blog", stdin=PASSWORD.encode())
        check(r.ok, f"user-create: {r.code}: {r.message}")
        for db in ("shop", "blog"):
            check(can(server, "alice", PASSWORD, db) and can(server, "alice", PASSWORD, db, write=True),
                  f"alice cannot read and write {db}")
        check(not can(server, "alice", PASSWORD, "secret") and not can(server, "alice", PASSWORD, "secret", True),
              "alice reaches a database she was never granted")
        check(not can(server, "alice", PASSWORD, "admin"), "alice reads admin")
        client = server.client("alice", PASSWORD)
        check(sorted(client.list_database_names()) == ["blog", "shop"], "alice lists other databases")
        client.close()
        info = server.admin().admin.command("usersInfo", {"user": "alice", "db": "admin"})["users"][0]
        check(info["mechanisms"] == ["SCRAM-SHA-256"] and sorted(r["role"] for r in info["roles"]) ==
              ["readWrite", "readWrite"], f"alice is a SCRAM-SHA-256 user with readWrite roles: {info}")
        check(not can(server, "alice", "wrong", "shop"), "a wrong password works")

        access = {d["name"] for d in control.ctl("user-show-access", INSTANCE, "alice")["databases"]}
        check(access == {"shop", "blog"}, f"user-show-access: {access}")
        check({u["name"] for u in control.ctl("user-list", INSTANCE)["users"]} == {"alice"},
              "user-list shows exactly alice (the agent's own accounts are hidden)")

        check(control.ctl("user-revoke-access", INSTANCE, "alice", "blog").ok, "revoke")
        check(not can(server, "alice", PASSWORD, "blog") and can(server, "alice", PASSWORD, "shop"),
              "revoke took away blog only")
        check(control.ctl("user-revoke-access", INSTANCE, "alice", "blog").code == "not_found",
              "revoking access the user does not have is not_found")
        check(control.ctl("user-grant-access", INSTANCE, "alice", "secret").ok, "grant")
        check(can(server, "alice", PASSWORD, "secret", write=True), "grant did not give secret")

        r = control.ctl("user-change-password", INSTANCE, "alice", "-", stdin=b"n3w 'pw'")
        check(r.ok and can(server, "alice", "n3w 'pw'", "shop"), f"change-password: {r.message}")
        check(not can(server, "alice", PASSWORD, "shop"), "the old password still works")

        check(control.ctl("user-delete", INSTANCE, "alice").ok, "user-delete")
        check(not can(server, "alice", "n3w 'pw'", "shop"), "a deleted user logs in")
        check(control.ctl("user-show", INSTANCE, "alice").code == "not_found", "showing a deleted user")
        check(control.ctl("user-delete", INSTANCE, "alice").code == "not_found", "deleting twice")

        r = control.ctl("root-enable", INSTANCE)
        check(r.ok and r["name"] == "root" and len(r["password"]) >= 16, f"root-enable: {r}")
        c = server.client("root", r["password"])
        check(c.admin.command("replSetGetStatus")["ok"] == 1.0, "root cannot administer the server")
        c.close()
        check(control.ctl("root-show", INSTANCE)["enabled"] is True, "root-show")
        check(control.ctl("root-disable", INSTANCE).ok and control.ctl("root-show", INSTANCE)["enabled"] is False,
              "root-disable")
        check(not can(server, "root", r["password"], "shop"), "root logs in after root-disable")

        check(control.ctl("database-delete", INSTANCE, "blog").ok and "blog" not in databases(server),
              "database-delete")
        check(control.ctl("database-delete", INSTANCE, "blog").code == "not_found", "deleting a database twice")


def test_the_agents_accounts_and_the_system_databases_are_protected():
    with harness.Env(prefix="mongodb-protected-") as env:
        server, control = bring_up(env)
        control.ctl("database-create", INSTANCE, "shop")
        before_users, before_dbs = users(server), databases(server)
        refused = [
            ("user-delete", ADMIN_USER), ("user-delete", "trove_replicator"), ("user-delete", "__system"),
            ("user-delete", "root"), ("user-show", ADMIN_USER), ("user-grant-access", ADMIN_USER, "shop"),
            ("user-revoke-access", ADMIN_USER, "shop"), ("database-delete", "admin"), ("database-delete", "local"),
            ("database-delete", "config"), ("database-delete", "Admin"), ("database-create", "CONFIG"),
            ("user-grant-access", "nobody", "admin"),
        ]
        for args in refused:
            r = control.ctl(args[0], INSTANCE, *args[1:])
            check(r.code == "invalid_argument" and r.message, f"{args} was not refused: {r.code} {r.message}")
        for name in (ADMIN_USER, "trove_replicator", "root"):
            r = control.ctl("user-create", INSTANCE, name, "-", stdin=b"pw")
            check(r.code == "invalid_argument", f"creating {name}: {r}")
            r = control.ctl("user-change-password", INSTANCE, name, "-", stdin=b"pw")
            check(r.code == "invalid_argument", f"changing {name}'s password: {r}")
        r = control.ctl("user-create", INSTANCE, "eve", "-", "--databases", "admin", stdin=b"pw")
        check(r.code == "invalid_argument", f"a user granted admin: {r}")
        check(users(server) == before_users and databases(server) == before_dbs,
              "refused requests changed users or databases")
        c = server.admin()
        check(c.admin.command("ping")["ok"] == 1.0, "the agent's admin account no longer works")
        c.close()


HOSTILE_USERS = ["$", ".", "a$b", "a.b", "$where", "x'; db.dropDatabase(); '", '{"$ne": 1}', "a@b",
                 "x" * 1000, "tab\tname", "new\nline", "a\u0000b", "", " "]
HOSTILE_DATABASES = ["$", ".", "a$b", "a.b", "x" * 1000, "a/b", "a b", "a\\b", 'a"b', "a\u0000b", "a*b", "",
                     "x" * 64]


def test_hostile_names_are_refused_or_stored_literally_and_change_nothing():
    with harness.Env(prefix="mongodb-hostile-") as env:
        server, control = bring_up(env)
        control.ctl("database-create", INSTANCE, "shop")
        c = server.admin()
        c.shop.things.insert_many([{"_id": i, "v": f"row {i}"} for i in range(10)])
        digest = server.digest()
        base_users, base_dbs = users(server), databases(server)
        literal = []
        for name in HOSTILE_USERS:
            r = control.op(INSTANCE, "user.create", {"name": name, "password": "pw", "databases": ["shop"]})
            if r.ok:
                stored = control.op(INSTANCE, "user.show", {"name": name})
                check(stored.ok and stored["user"]["name"] == name, f"{name!r} was not stored literally: {stored}")
                check(users(server) == sorted(base_users + [(name, "admin")]),
                      f"creating {name!r} changed other users: {users(server)}")
                check(can(server, name, "pw", "shop") and not can(server, name, "pw", "admin"),
                      f"the literal user {name!r} has other rights than readWrite on shop")
                literal.append(name)
                check(control.op(INSTANCE, "user.delete", {"name": name}).ok, f"deleting {name!r}")
            else:
                check(refused(r), f"{name!r}: {r.code} {r.message}")
            check(users(server) == base_users, f"{name!r} left users behind: {users(server)}")
        r = server.agent.call("user.create", {"name": "a\u0000b", "password": "pw"})   # the agent's own door
        check(r.code == "invalid_argument" and "NUL" in r.message, f"a NUL through trove-agent call: {r}")
        check({"$", ".", "a$b", "a.b"} <= set(literal), f"names MongoDB takes as they are were refused: {literal}")
        check("x" * 1000 not in literal and "a\u0000b" not in literal, "an over-long or NUL name was stored")
        for name in HOSTILE_DATABASES:
            for op in ("database.create", "database.delete"):
                r = control.op(INSTANCE, op, {"name": name})
                check(refused(r), f"{op} {name!r}: {r.code} {r.message}")
            r = control.op(INSTANCE, "user.create", {"name": "bob", "password": "pw", "databases": [name]})
            check(refused(r), f"a grant on {name!r}: {r.code} {r.message}")
        check(databases(server) == base_dbs and users(server) == base_users and server.digest() == digest,
              "hostile names changed users, databases or data")


if __name__ == "__main__":
    harness.run_tests(globals())
