"""Users, databases, access and root on a real PostgreSQL, driven through the
agent and checked from outside with psql: a user logs in with a hostile
password and reaches exactly the databases it was granted; hostile names are
refused or stored literally and change nothing else; system objects are
protected."""
import sys

import harness
from harness import check
from postgres_server import PgServer, available

HOSTILE_ROLE = 'a"; DROP ROLE postgres; --'
HOSTILE_DB = "x'; DROP DATABASE shop; --"
HOSTILE_PASSWORD = "p'a\"s\\s w;rd$(id)`x` é"


def roles(srv):
    return sorted(r[0] for r in srv.rows("SELECT rolname FROM pg_roles"))


def databases(srv):
    return sorted(r[0] for r in srv.rows("SELECT datname FROM pg_database"))


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        srv = PgServer(env).initdb().start()
        agent = harness.Agent(env, "postgres", srv.settings())

        st = agent.must("status")
        check(st["state"] == "running", f"status: {st.result}")
        check(st["role"] == "standalone", f"a lone server is standalone: {st.result}")
        check("/" in st["position"] and st["term"] == 1, f"LSN position and timeline 1: {st.result}")

        # databases
        agent.must("database.create", {"name": "shop"})
        agent.must("database.create", {"name": "other", "character_set": "UTF8", "collation": "C"})
        listed = {d["name"]: d for d in agent.must("database.list")["databases"]}
        check(set(listed) == {"shop", "other"}, f"only user databases are listed: {sorted(listed)}")
        check(listed["other"]["character_set"] == "UTF8" and listed["other"]["collation"] == "C",
              f"encoding/locale: {listed['other']}")
        check(agent.call("database.create", {"name": "shop"}).code == "already_exists", "duplicate database")

        # a hostile database name: refused, or created literally; shop survives
        before = databases(srv)
        r = agent.call("database.create", {"name": HOSTILE_DB})
        after = databases(srv)
        if r.ok:
            check(after == sorted(before + [HOSTILE_DB]), f"hostile database created literally only: {after}")
            agent.must("database.delete", {"name": HOSTILE_DB})
        else:
            check(r.code == "invalid_argument" and after == before, f"hostile database refused cleanly: {r}")
        check("shop" in databases(srv), "shop still exists")

        # a hostile role name: refused, or created literally; postgres survives
        before = roles(srv)
        r = agent.call("user.create", {"name": HOSTILE_ROLE, "password": "x1"})
        after = roles(srv)
        check("postgres" in after, "the postgres role still exists")
        if r.ok:
            check(after == sorted(before + [HOSTILE_ROLE]), f"hostile role created literally only: {after}")
            check(srv.can_connect(HOSTILE_ROLE, "x1", "postgres"), "the hostile role logs in under its literal name")
            agent.must("user.delete", {"name": HOSTILE_ROLE})
        else:
            check(r.code == "invalid_argument" and after == before, f"hostile role refused cleanly: {r}")
        check(roles(srv) == before, "role set unchanged after cleanup")

        # a user with a hostile password reaches exactly the granted database
        agent.must("user.create", {"name": "alice", "password": HOSTILE_PASSWORD, "databases": ["shop"]})
        check(srv.can_connect("alice", HOSTILE_PASSWORD, "shop"), "alice logs in to shop with her password")
        check(not srv.can_connect("alice", HOSTILE_PASSWORD, "other"), "alice cannot reach other")
        check(not srv.can_connect("alice", "wrong", "shop"), "a wrong password is refused")
        check(agent.call("user.create", {"name": "alice", "password": "x"}).code == "already_exists", "dup user")

        users = {u["name"]: u for u in agent.must("user.list")["users"]}
        check(set(users) == {"alice"}, f"system roles are not listed: {sorted(users)}")
        check(users["alice"]["databases"] == ["shop"], f"alice's access: {users['alice']}")
        shown = agent.must("user.show", {"name": "alice"})["user"]
        check(shown["name"] == "alice" and shown["databases"] == ["shop"], f"user.show: {shown}")

        # grant and revoke
        agent.must("user.grant", {"name": "alice", "databases": ["other"]})
        check(srv.can_connect("alice", HOSTILE_PASSWORD, "other"), "alice reaches other after grant")
        agent.must("user.revoke", {"name": "alice", "databases": ["shop"]})
        check(not srv.can_connect("alice", HOSTILE_PASSWORD, "shop"), "alice is refused shop after revoke")
        access = [d["name"] for d in agent.must("user.access", {"name": "alice"})["databases"]]
        check(access == ["other"], f"user.access after revoke: {access}")
        r = agent.call("user.grant", {"name": "alice", "databases": ["nope"]})
        check(r.code == "not_found", f"grant on a missing database: {r}")
        r = agent.call("user.grant", {"name": "ghost", "databases": ["shop"]})
        check(r.code == "not_found", f"grant to a missing user: {r}")

        # password change
        agent.must("user.password", {"name": "alice", "password": "n3w 'pw'"})
        check(not srv.can_connect("alice", HOSTILE_PASSWORD, "other"), "old password refused")
        check(srv.can_connect("alice", "n3w 'pw'", "other"), "new password works")

        # alice owns something: deleting her is refused and changes nothing (her
        # objects are never handed to the admin); once she dropped them, it works
        srv.psql("CREATE SCHEMA alice_s; CREATE TABLE alice_s.t (x int)", "other", "alice", "n3w 'pw'")
        r = agent.call("user.delete", {"name": "alice"})
        check(r.code == "failed_precondition" and "other" in r.message, f"delete of an owner: {r}")
        check(srv.can_connect("alice", "n3w 'pw'", "other"), "alice keeps her login and access")
        check(srv.rows("SELECT count(*) FROM alice_s.t", "other") == [["0"]], "alice's table is untouched")
        srv.psql("DROP SCHEMA alice_s CASCADE", "other", "alice", "n3w 'pw'")
        agent.must("user.delete", {"name": "alice"})
        check("alice" not in roles(srv), "alice is gone")
        check(not srv.can_connect("alice", "n3w 'pw'", "other"), "a deleted user cannot log in")
        check(agent.call("user.delete", {"name": "alice"}).code == "not_found", "delete twice")

        # protected objects and PostgreSQL's name rules
        for op, args in [("user.delete", {"name": "postgres"}), ("user.create", {"name": "postgres", "password": "x"}),
                         ("user.password", {"name": "postgres", "password": "x"}),
                         ("user.create", {"name": "pg_evil", "password": "x"}),
                         ("user.create", {"name": "x" * 64, "password": "x"}),
                         ("user.create", {"name": "public", "password": "x"}),
                         ("user.create", {"name": "bob", "password": ""}),
                         ("database.delete", {"name": "template1"}), ("database.delete", {"name": "postgres"}),
                         ("database.create", {"name": "pg_db"}), ("database.create", {"name": "d" * 64}),
                         ("user.grant", {"name": "nobody", "databases": ["template1"]})]:
            before_r, before_d = roles(srv), databases(srv)
            r = agent.call(op, args)
            check(not r.ok and r.code in ("invalid_argument", "failed_precondition"), f"{op} {args}: {r}")
            check(roles(srv) == before_r and databases(srv) == before_d, f"{op} changed nothing")
        check(agent.call("user.create", {"name": "y" * 63, "password": "x"}).ok, "63 bytes is allowed")
        agent.must("user.delete", {"name": "y" * 63})

        # root
        check(agent.must("root.show")["enabled"] is False, "root starts disabled")
        root = agent.must("root.enable")
        check(root["name"] == "root" and len(root["password"]) >= 16, f"root.enable: {root.result.keys()}")
        check(srv.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", "postgres", "root",
                       root["password"]).strip() == "t", "root logs in as a superuser")
        check(agent.must("root.show")["enabled"] is True, "root.show after enable")
        check(agent.call("user.delete", {"name": "root"}).code == "failed_precondition", "root via user API")
        agent.must("root.disable")
        check(not srv.can_connect("root", root["password"], "postgres"), "root cannot log in after disable")
        check(agent.must("root.show")["enabled"] is False, "root.show after disable")
        agent.must("root.enable", {"password": "chosen 'root' pw"})
        check(srv.can_connect("root", "chosen 'root' pw", "postgres"), "root with a chosen password")

        # database delete, even with a session open elsewhere
        agent.must("database.delete", {"name": "other"})
        check("other" not in databases(srv), "other is gone")
        check(agent.call("database.delete", {"name": "other"}).code == "not_found", "delete twice")
    print("postgres users: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
