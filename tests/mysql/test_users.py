"""Users, databases and access through the agent on a real MariaDB, checked from
the outside with the stock `mariadb` client: a user created with a hostile
password logs in and sees exactly its databases; revoke, grant, password
change and delete take effect; hostile and unicode names are stored literally
or refused and change nothing else; system objects are protected.
"""
import harness
import mysql_server
from harness import check

HOSTILE_PASSWORD = "p'a\"s\\s w0rd"
HOSTILE_NAME = "x'; DROP DATABASE shop; --"


def hexlit(s):
    return "0x" + s.encode("utf-8").hex()


def visible_databases(server, user, password, host=None):
    """SHOW DATABASES as `user`, minus information_schema; None if login fails."""
    cp = server.sql("SHOW DATABASES", user=user, password=password)
    if cp.returncode != 0:
        return None
    return {line for line in cp.stdout.splitlines() if line and line != "information_schema"}


def can_use(server, user, password, database):
    cp = server.sql("SELECT COUNT(*) FROM t", user=user, password=password, database=database)
    return cp.returncode == 0


def expect_error(r, codes, what):
    check(not r.ok, f"{what}: expected an error, got {r.result}")
    check(r.code in codes, f"{what}: expected {codes}, got {r.code}: {r.message}")
    check(r.message, f"{what}: the error has no message")
    return r


def test_databases(agent, server):
    agent.must("database.create", {"name": "shop"})
    agent.must("database.create", {"name": "sales", "character_set": "utf8mb4", "collation": "utf8mb4_unicode_ci"})
    agent.must("database.create", {"name": "other"})
    listed = {d["name"]: d for d in agent.must("database.list")["databases"]}
    check(set(listed) == {"shop", "sales", "other"}, f"database.list: {sorted(listed)}")
    check(listed["sales"]["character_set"] == "utf8mb4" and listed["sales"]["collation"] == "utf8mb4_unicode_ci",
          f"sales was created with {listed['sales']}")
    row = server.rows("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                      "WHERE SCHEMA_NAME = 'sales'")
    check(row == [("utf8mb4", "utf8mb4_unicode_ci")], f"the server says sales is {row}")
    for db in ("shop", "sales", "other"):
        server.admin_sql("CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t VALUES (1)", database=db)

    expect_error(agent.call("database.create", {"name": "shop"}), {"already_exists"}, "creating shop twice")
    expect_error(agent.call("database.create", {"name": "x1", "character_set": "klingon"}), {"invalid_argument"},
                 "an unknown character set")
    expect_error(agent.call("database.create", {"name": "x2", "character_set": "latin1",
                                                "collation": "utf8mb4_bin"}),
                 {"invalid_argument"}, "a collation of another character set")
    expect_error(agent.call("database.create", {"name": "x3", "collation": "utf8mb4_bin; DROP DATABASE shop"}),
                 {"invalid_argument"}, "a hostile collation")
    expect_error(agent.call("database.delete", {"name": "nope"}), {"not_found"}, "deleting a missing database")
    check(not ({"x1", "x2", "x3"} & server.databases()), "a refused database.create created something")


def test_user_access(agent, server):
    agent.must("user.create", {"name": "alice", "password": HOSTILE_PASSWORD, "databases": ["shop", "sales"]})
    seen = visible_databases(server, "alice", HOSTILE_PASSWORD)
    check(seen == {"shop", "sales"}, f"alice sees {seen}, expected exactly shop and sales")
    check(can_use(server, "alice", HOSTILE_PASSWORD, "shop"), "alice cannot read shop")
    check(not can_use(server, "alice", HOSTILE_PASSWORD, "other"), "alice can read a database never granted")
    check(visible_databases(server, "alice", "wrong") is None, "a wrong password was accepted")

    users = {(u["name"], u["host"]): u for u in agent.must("user.list")["users"]}
    check(set(users) == {("alice", "%")}, f"user.list: {sorted(users)}")
    check(sorted(users[("alice", "%")]["databases"]) == ["sales", "shop"], f"user.list access: {users}")
    shown = agent.must("user.show", {"name": "alice", "host": "%"})["user"]
    check(shown["name"] == "alice" and shown["host"] == "%", f"user.show: {shown}")
    access = sorted(d["name"] for d in agent.must("user.access", {"name": "alice"})["databases"])
    check(access == ["sales", "shop"], f"user.access: {access}")

    agent.must("user.revoke", {"name": "alice", "databases": ["shop"]})
    check(not can_use(server, "alice", HOSTILE_PASSWORD, "shop"), "alice can still use shop after revoke")
    check(visible_databases(server, "alice", HOSTILE_PASSWORD) == {"sales"}, "revoke changed the wrong grant")
    expect_error(agent.call("user.revoke", {"name": "alice", "databases": ["shop"]}), {"not_found"},
                 "revoking access that is not there")
    agent.must("user.grant", {"name": "alice", "databases": ["other"]})
    check(can_use(server, "alice", HOSTILE_PASSWORD, "other"), "grant did not give access to other")
    expect_error(agent.call("user.grant", {"name": "alice", "databases": ["missing_db"]}), {"not_found"},
                 "granting a missing database")
    expect_error(agent.call("user.grant", {"name": "alice", "databases": ["mysql"]}), {"invalid_argument"},
                 "granting the mysql system database")

    new_pw = "N3w\\pass'word \"x\""
    agent.must("user.password", {"name": "alice", "password": new_pw})
    check(visible_databases(server, "alice", new_pw) == {"sales", "other"}, "the new password does not work")
    check(visible_databases(server, "alice", HOSTILE_PASSWORD) is None, "the old password still works")

    # A user bound to one host is a different account.
    agent.must("user.create", {"name": "alice", "host": "127.0.0.1", "password": "local-pw", "databases": ["shop"]})
    cp = server.sql("SELECT CURRENT_USER()", user="alice", password="local-pw")
    check(cp.returncode == 0 and cp.stdout.strip() == "alice@127.0.0.1",
          f"alice@127.0.0.1 (the more specific account) is not the one used from 127.0.0.1: {cp.stdout} {cp.stderr}")
    expect_error(agent.call("user.create", {"name": "alice", "host": "127.0.0.1", "password": "x"}),
                 {"already_exists"}, "creating alice@127.0.0.1 twice")
    agent.must("user.delete", {"name": "alice", "host": "127.0.0.1"})
    expect_error(agent.call("user.create", {"name": "bob", "host": "%' OR '1'='1", "password": "x"}),
                 {"invalid_argument"}, "a hostile host")
    expect_error(agent.call("user.create", {"name": "bob", "password": "x", "databases": ["nope"]}),
                 {"not_found"}, "a user granted a missing database")
    check(server.scalar("SELECT COUNT(*) FROM mysql.user WHERE User = 'bob'") == "0",
          "a refused user.create left an account behind")
    expect_error(agent.call("user.show", {"name": "nobody"}), {"not_found"}, "showing a missing user")

    agent.must("user.delete", {"name": "alice"})
    check(visible_databases(server, "alice", new_pw) is None, "a deleted user can still log in")
    expect_error(agent.call("user.delete", {"name": "alice"}), {"not_found"}, "deleting alice twice")


def test_hostile_names(agent, server):
    r = agent.call("user.create", {"name": HOSTILE_NAME, "password": HOSTILE_PASSWORD, "databases": ["shop"]})
    check("shop" in server.databases(), "database shop is gone after a hostile user name")
    if r.ok:
        n = server.scalar(f"SELECT COUNT(*) FROM mysql.user WHERE User = {hexlit(HOSTILE_NAME)}")
        check(n == "1", "the hostile user name was not stored literally")
        check(visible_databases(server, HOSTILE_NAME, HOSTILE_PASSWORD) == {"shop"},
              "the user with the hostile name cannot log in and see shop")
        names = {u["name"] for u in agent.must("user.list")["users"]}
        check(HOSTILE_NAME in names, f"user.list does not show the literal name: {names}")
        agent.must("user.delete", {"name": HOSTILE_NAME})
    else:
        expect_error(r, {"invalid_argument"}, "a hostile user name")

    r = agent.call("database.create", {"name": HOSTILE_NAME})
    check("shop" in server.databases(), "database shop is gone after a hostile database name")
    if r.ok:
        check(HOSTILE_NAME in server.databases(), "the hostile database name was not stored literally")
        agent.must("user.create", {"name": "carol", "password": "pw", "databases": [HOSTILE_NAME]})
        check(visible_databases(server, "carol", "pw") == {HOSTILE_NAME}, "a grant on the hostile name failed")
        agent.must("database.delete", {"name": HOSTILE_NAME})
        check(HOSTILE_NAME not in server.databases(), "the hostile database was not deleted")
        check(visible_databases(server, "carol", "pw") == set(), "the deleted database's grant remains")
        agent.must("user.delete", {"name": "carol"})
    else:
        expect_error(r, {"invalid_argument"}, "a hostile database name")

    # Backticks and grant wildcards are literal: a grant on `a_b` is not a grant on `axb`.
    agent.must("database.create", {"name": "a_b"})
    agent.must("database.create", {"name": "axb"})
    agent.must("database.create", {"name": "tick`db"})
    agent.must("user.create", {"name": "dave", "password": "pw", "databases": ["a_b", "tick`db"]})
    check(visible_databases(server, "dave", "pw") == {"a_b", "tick`db"},
          f"the _ in a grant acted as a wildcard, or the backtick was mangled: {visible_databases(server, 'dave', 'pw')}")
    access = sorted(d["name"] for d in agent.must("user.access", {"name": "dave"})["databases"])
    check(access == ["a_b", "tick`db"], f"user.access shows escaped names: {access}")
    agent.must("user.delete", {"name": "dave"})
    for db in ("a_b", "axb", "tick`db"):
        agent.must("database.delete", {"name": db})

    for bad, why in [("nul\u0000byte", "a NUL byte"), ("trailing ", "a trailing space"), ("", "an empty name"),
                     ("u" * 81, "81 characters"), ("emoji\U0001F600", "a character outside the BMP"),
                     ("tab\there", "a control character")]:
        expect_error(agent.call("user.create", {"name": bad, "password": "pw"}), {"invalid_argument"},
                     f"a user name with {why}")
    for bad, why in [("d" * 65, "65 characters"), ("a/b", "a slash"), ("a.b", "a dot"), ("trail ", "a trailing space"),
                     ("nul\u0000db", "a NUL byte"), ("#mysql50#x", "the #mysql50# prefix")]:
        expect_error(agent.call("database.create", {"name": bad}), {"invalid_argument"}, f"a database name with {why}")
    agent.must("user.create", {"name": "u" * 80, "password": "pw"})
    agent.must("user.delete", {"name": "u" * 80})
    agent.must("database.create", {"name": "d" * 64})
    agent.must("database.delete", {"name": "d" * 64})
    check("shop" in server.databases() and server.scalar("SELECT COUNT(*) FROM t", database="shop") == "1",
          "shop changed after hostile input")


def test_unicode(agent, server):
    user, db, pw = "usuário_ü_名前", "données_é_数据", "pässwörd ünï"
    agent.must("database.create", {"name": db, "character_set": "utf8mb4"})
    agent.must("user.create", {"name": user, "password": pw, "databases": [db]})
    check(db in server.databases(), f"{db} not on the server: {server.databases()}")
    check(visible_databases(server, user, pw) == {db}, f"the unicode user sees {visible_databases(server, user, pw)}")
    check(user in {u["name"] for u in agent.must("user.list")["users"]}, "user.list lacks the unicode user")
    check(db in {d["name"] for d in agent.must("database.list")["databases"]}, "database.list lacks the unicode db")
    agent.must("user.delete", {"name": user})
    agent.must("database.delete", {"name": db})


def test_system_objects(agent, server):
    for name in ("root", "mariadb.sys", "mysql", "PUBLIC", mysql_server.ADMIN_USER, "os_repl_abc"):
        expect_error(agent.call("user.create", {"name": name, "password": "pw"}), {"invalid_argument"},
                     f"creating system user {name}")
        expect_error(agent.call("user.delete", {"name": name, "host": "localhost"}), {"invalid_argument"},
                     f"deleting system user {name}")
        expect_error(agent.call("user.password", {"name": name, "host": "localhost", "password": "x"}),
                     {"invalid_argument"}, f"changing the password of system user {name}")
    for name in ("mysql", "information_schema", "performance_schema", "sys", "MySQL"):
        expect_error(agent.call("database.create", {"name": name}), {"invalid_argument"}, f"creating {name}")
        expect_error(agent.call("database.delete", {"name": name}), {"invalid_argument"}, f"deleting {name}")
    listed_users = {u["name"] for u in agent.must("user.list")["users"]}
    check(not ({"root", "mariadb.sys", "mysql", mysql_server.ADMIN_USER} & listed_users),
          f"user.list shows system users: {listed_users}")
    listed_dbs = {d["name"] for d in agent.must("database.list")["databases"]}
    check(not ({"mysql", "information_schema", "performance_schema", "sys"} & listed_dbs),
          f"database.list shows system databases: {listed_dbs}")
    check("mysql" in server.databases(), "the mysql database is gone")
    check(server.sql("SELECT 1").returncode == 0, "the admin account no longer works")


def root_login(server, password):
    cp = server.sql("SELECT CURRENT_USER()", user="root", password=password)
    return cp.stdout.strip() if cp.returncode == 0 else None


def test_root(agent, server):
    r = agent.must("root.enable")
    check(r["name"] == "root" and len(r["password"]) >= 16, f"root.enable returned {r.result}")
    check(root_login(server, r["password"]) is not None, "root cannot log in with the generated password")
    check(agent.must("root.show")["enabled"] is True, "root.show says disabled after enable")
    agent.must("root.disable")
    check(root_login(server, r["password"]) is None, "root can still log in after root.disable")
    check(root_login(server, "") is None, "root can log in with an empty password after root.disable")
    check(agent.must("root.show")["enabled"] is False, "root.show says enabled after disable")
    chosen = "r00t'\"\\ pw"
    r = agent.must("root.enable", {"password": chosen})
    check(r["password"] == chosen, "root.enable did not use the given password")
    check(root_login(server, chosen) is not None, "root cannot log in with the chosen password")
    agent.must("root.disable")
    check(root_login(server, chosen) is None, "root can still log in after the second root.disable")
    check(server.sql("SELECT 1").returncode == 0, "root.disable locked out the admin account")


def test_errors_and_dead_server(agent, server):
    st = agent.must("status").result
    check(st["state"] == "running" and st["role"] == "standalone", f"status of a healthy server: {st}")
    check(st["position"], "status gives no GTID position")
    server.crash()
    st = agent.must("status").result
    check(st["state"] == "crashed", f"status after SIGKILL says {st}")
    r = expect_error(agent.call("database.list"), {"unavailable"}, "listing databases of a dead server")
    check("connect" in r.message, f"the error does not say why: {r.message}")


def main():
    with harness.Env(prefix="mysql-users-") as env:
        server = mysql_server.start_server(env, 0)
        agent = mysql_server.agent_for(env, server)
        test_databases(agent, server)
        test_user_access(agent, server)
        test_hostile_names(agent, server)
        test_unicode(agent, server)
        test_system_objects(agent, server)
        test_root(agent, server)
        test_errors_and_dead_server(agent, server)
    print("mysql users: passed")


if __name__ == "__main__":
    main()
