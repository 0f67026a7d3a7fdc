"""ACL users through the agent, checked from outside with redis-cli: a user
logs in with its password, touches only keys matching its patterns, loses a
revoked pattern, keeps working across a restart (persisted), and is refused
after delete. Hostile names, patterns and rules are refused and change nothing."""
import harness
from harness import check
from redis_server import RedisServer

PW = "p'a\"s\\s w0rd-é"


def refused(out):
    return out.strip().startswith(("NOPERM", "WRONGPASS", "NOAUTH", "AUTH failed"))


def acl_users(server):
    return sorted(server.cli("ACL", "USERS").split())


def main():
    with harness.Env(prefix="redis-users-") as env:
        server = RedisServer(env).start()
        agent = harness.Agent(env, "redis", server.settings)
        check(agent.must("status")["state"] == "running", "status does not say running")

        agent.must("user.create", {"name": "app", "password": PW, "databases": ["app:*"]})
        check(server.cli("SET", "app:1", "v1", user="app", password=PW).strip() == "OK", "app cannot SET app:1")
        check(server.cli("GET", "app:1", user="app", password=PW).strip() == "v1", "app cannot GET app:1")
        check(refused(server.cli("SET", "other:1", "x", user="app", password=PW, check=False)),
              "app can write a key outside its pattern")
        check(refused(server.cli("FLUSHALL", user="app", password=PW, check=False)), "app can FLUSHALL")
        check(refused(server.cli("CONFIG", "GET", "*", user="app", password=PW, check=False)), "app can CONFIG GET")
        check(refused(server.cli("GET", "app:1", user="app", password="wrong", check=False)), "a wrong password works")

        users = {u["name"]: u for u in agent.must("user.list")["users"]}
        check(set(users) == {"app"}, f"user.list should list only app (system users hidden): {sorted(users)}")
        check(users["app"]["databases"] == ["app:*"], f"user.list databases: {users['app']}")
        check(agent.must("user.show", {"name": "app"})["user"]["databases"] == ["app:*"], "user.show patterns")
        r = agent.call("user.create", {"name": "app", "password": "x", "databases": []})
        check(r.code == "already_exists", f"creating app twice: {r}")

        agent.must("user.grant", {"name": "app", "databases": ["shared:*", "cache:?"]})
        access = [d["name"] for d in agent.must("user.access", {"name": "app"})["databases"]]
        check(access == ["app:*", "shared:*", "cache:?"], f"user.access after grant: {access}")
        check(server.cli("SET", "shared:1", "s", user="app", password=PW).strip() == "OK", "grant did not work")
        agent.must("user.revoke", {"name": "app", "databases": ["shared:*"]})
        check(refused(server.cli("SET", "shared:1", "s", user="app", password=PW, check=False)),
              "revoked pattern still works")
        check(server.cli("GET", "app:1", user="app", password=PW).strip() == "v1", "revoke removed app:* too")
        r = agent.call("user.revoke", {"name": "app", "databases": ["never:*"]})
        check(r.code == "not_found", f"revoking a pattern never granted: {r}")

        agent.must("user.password", {"name": "app", "password": "n3w pass\\'"})
        check(refused(server.cli("GET", "app:1", user="app", password=PW, check=False)), "old password still works")
        check(server.cli("GET", "app:1", user="app", password="n3w pass\\'").strip() == "v1", "new password fails")

        # Rules: only the whitelisted forms, never administrative ones.
        agent.must("user.create", {"name": "reader", "password": "rpw", "databases": ["app:*"],
                                   "options": {"rules": "-@write +@read"}})
        check(server.cli("GET", "app:1", user="reader", password="rpw").strip() == "v1", "reader cannot read")
        check(refused(server.cli("SET", "app:2", "x", user="reader", password="rpw", check=False)),
              "a -@write user can write")
        before = acl_users(server)
        for rules in ["+@admin", "+@all", "+@dangerous", "+config", "+config|set", "+acl|setuser", "+flushall",
                      ">secret", "nopass", "on", "reset", "resetkeys", "#abc", "(~x +get)", "~a b", "+get x"]:
            r = agent.call("user.create", {"name": "ruler", "password": "x", "databases": ["r:*"],
                                           "options": {"rules": rules}})
            check(r.code == "invalid_argument", f"rules {rules!r} were accepted: {r}")
        r = agent.call("user.create", {"name": "opt", "password": "x", "options": {"flags": "nopass"}})
        check(r.code == "invalid_argument", f"an unknown option was accepted: {r}")

        hostile_names = ["x'; DROP DATABASE shop; --", ">pw", "~keys", "+@all", "-x", "@x", "a b", "%R~x", "&c",
                         "tab\tname", "ünicode", "", "default", "root", "replicator", "x" * 65, "new\nline"]
        for name in hostile_names:
            r = agent.call("user.create", {"name": name, "password": "pw", "databases": ["a:*"]})
            check(r.code == "invalid_argument", f"name {name!r} was not refused: {r}")
            check(r.message, f"no message for refused name {name!r}")
        for pattern in ["a b", "~*", "%R~x", "", "x\"y", "é*", "+@all"]:
            r = agent.call("user.create", {"name": "pat", "password": "pw", "databases": [pattern]})
            check(r.code == "invalid_argument", f"pattern {pattern!r} was not refused: {r}")
        for op, args in (("user.delete", {}), ("user.password", {"password": "x"}), ("user.grant", {"databases": ["*"]})):
            r = agent.call(op, dict(args, name="default"))
            check(r.code == "invalid_argument" and "system user" in r.message, f"{op} on the default user: {r}")
        check(acl_users(server) == before, f"hostile input changed the users: {acl_users(server)}")
        check(server.cli("GET", "app:1").strip() == "v1", "hostile input changed the data")

        # Persisted: users survive a restart of the server.
        agent.must("restart")
        check(server.cli("GET", "app:1", user="app", password="n3w pass\\'").strip() == "v1",
              "the user did not survive a restart")

        # Root: a dedicated ACL user with everything.
        check(agent.must("root.show")["enabled"] is False, "root is enabled on a fresh server")
        root = agent.must("root.enable")
        check(root["name"] == "root" and len(root["password"]) >= 16, f"root.enable result: {root.result}")
        check(server.cli("CONFIG", "GET", "maxmemory", user="root", password=root["password"]).startswith("maxmemory"),
              "root cannot run administrative commands")
        check(agent.must("root.show")["enabled"] is True, "root.show after enable")
        agent.must("root.disable")
        check(refused(server.cli("PING", user="root", password=root["password"], check=False)), "root after disable")
        check(agent.must("root.show")["enabled"] is False, "root.show after disable")

        # Databases: listed with key counts, not creatable.
        dbs = {d["name"]: d for d in agent.must("database.list")["databases"]}
        check(len(dbs) == 16 and dbs["0"]["options"]["keys"] == "2", f"database.list: {dbs.get('0')}")
        r = agent.call("database.create", {"name": "x"})
        check(r.code == "not_supported", f"database.create: {r}")

        agent.must("user.delete", {"name": "app"})
        check(refused(server.cli("GET", "app:1", user="app", password="n3w pass\\'", check=False)),
              "a deleted user can still log in")
        check(agent.call("user.delete", {"name": "app"}).code == "not_found", "deleting twice")
        check(agent.call("user.show", {"name": "app"}).code == "not_found", "showing a deleted user")
    print("redis users: passed")


if __name__ == "__main__":
    main()
