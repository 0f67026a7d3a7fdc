"""Users, databases and access through the agent on a real MariaDB, checked from
the outside with the stock `mariadb` client: a user created with a hostile
password logs in and sees exactly its databases; revoke, grant, password
change and delete take effect; hostile and unicode names are stored literally
or refused and change nothing else; an empty host or character set is refused,
never turned into the default; a deleted database takes its grants with it,
whatever its name; the protected names are exactly those the plugin's
documentation lists (docs/plugins/mysql.md, "Protected names").
"""
import re

import harness
import mysql_server
from harness import check

HOSTILE_PASSWORD = "p'a\"s\\s w0rd"
HOSTILE_NAME = "x'; DROP DATABASE shop; --"


def hexlit(s):
    return "0x" + s.encode("utf-8").hex()


def visible_databases(server, user, password, host=None):
    """SHOW DATABASES as `user`, minus information_schema; None if the server
    refuses the login (any other failure raises)."""
    cp = server.sql_access("SHOW DATABASES", user, password)
    if cp.returncode != 0:
        return None
    return {line for line in cp.stdout.splitlines() if line and line != "information_schema"}


def can_use(server, user, password, database):
    cp = server.sql_access("SELECT COUNT(*) FROM t", user, password, database=database)
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
    for key in ("character_set", "collation"):
        r = expect_error(agent.call("database.create", {"name": "x4", key: ""}), {"invalid_argument"},
                         f"an empty {key}")
        check("must not be empty" in r.message, f"an empty {key} is refused without saying why: {r.message}")
    check(not ({"x1", "x2", "x3", "x4"} & server.databases()), "a refused database.create created something")


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


DOC = harness.source_path("docs", "plugins", "mysql.md")
NAMES_C = harness.source_path("plugins", "mysql", "names.c")
MATCH = {"exactly": "EXACT", "in any case": "ANY_CASE"}


def doc_table(marker):
    """The rows of the table between <!-- MARKER: begin --> and <!-- MARKER: end --> in the plugin's doc,
    as (first cell, MATCH value) pairs."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(rf"<!-- {marker}: begin -->(.*?)<!-- {marker}: end -->", text, re.S)
    check(m, f"docs/plugins/mysql.md has no {marker} table")
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[1] not in MATCH:
            continue   # header, separator, blank lines
        rows.append((cells[0], MATCH[cells[1]]))
    check(rows, f"the {marker} table of docs/plugins/mysql.md is empty")
    return rows


def code_table(array):
    """The entries of a protected-name table in names.c: {name: EXACT | ANY_CASE}."""
    with open(NAMES_C, encoding="utf-8") as f:
        text = f.read()
    m = re.search(rf"{array}\[\] = \{{(.*?)\}};", text, re.S)
    check(m, f"names.c has no {array}")
    entries = re.findall(r'\{"([^"\\]*)", MATCH_(EXACT|ANY_CASE)\}', m.group(1))
    check(entries, f"no entries parsed from {array}")
    return dict(entries)


def literal_rows(rows):
    out = {}
    for cell, match in rows:
        m = re.fullmatch(r"`([^`]+)`", cell)
        if m:
            out[m.group(1)] = match
    return out


def case_variants(name):
    return {v for v in (name, name.lower(), name.upper(), name.swapcase(), name.capitalize())}


def other_case(name):
    """A spelling of name in another case (for names with letters)."""
    return name.upper() if name.upper() != name else name.lower()


def refused_user(agent, name, why):
    for op, args in [("user.create", {"name": name, "password": "pw"}),
                     ("user.delete", {"name": name, "host": "localhost"}),
                     ("user.password", {"name": name, "host": "localhost", "password": "x"}),
                     ("user.show", {"name": name, "host": "localhost"}),
                     ("user.grant", {"name": name, "databases": ["shop"]}),
                     ("user.revoke", {"name": name, "databases": ["shop"]}),
                     ("user.access", {"name": name, "host": "localhost"})]:
        r = expect_error(agent.call(op, args), {"invalid_argument"}, f"{op} on protected user {name!r} ({why})")
        check("system user" in r.message, f"{op} on {name!r} refused without saying it is protected: {r.message}")


def accepted_user(agent, server, name, why):
    agent.must("user.create", {"name": name, "password": "pw"})
    check(server.scalar(f"SELECT COUNT(*) FROM mysql.user WHERE User = {hexlit(name)}") == "1",
          f"{name!r} ({why}) was not created")
    agent.must("user.delete", {"name": name})


def test_protected_names(agent, server):
    """docs/plugins/mysql.md lists the protected names and how each is compared; that list is the code's
    table, and every name on it (in every spelling the doc says is covered) is refused by every operation,
    while the spellings it does not cover are ordinary names."""
    users, dbs = doc_table("protected-users"), doc_table("protected-databases")
    check(literal_rows(users) == code_table("PROTECTED_USERS"),
          f"protected users: the doc lists {literal_rows(users)}, names.c has {code_table('PROTECTED_USERS')}")
    check(literal_rows(dbs) == code_table("PROTECTED_DATABASES") and len(literal_rows(dbs)) == len(dbs),
          f"protected databases: the doc lists {dbs}, names.c has {code_table('PROTECTED_DATABASES')}")
    settings = [cell for cell, _ in users if not re.fullmatch(r"`[^`]+`", cell)]
    check(len(settings) == 2 and any("`admin_user`" in c for c in settings)
          and any("`replication_user`" in c and "followed by `_`" in c for c in settings),
          f"the doc's protected users from settings are {settings}")

    for name, match in literal_rows(users).items():
        for v in case_variants(name) if match == "ANY_CASE" else {name}:
            refused_user(agent, v, f"listed {match}")
        if match == "EXACT" and other_case(name) != name:
            accepted_user(agent, server, other_case(name), f"another case of the exactly-matched {name}")
    admin, repl = mysql_server.ADMIN_USER, "os_repl"
    for name in (admin, repl, repl + "_x", repl + "_" + "x" * 20):
        refused_user(agent, name, "from the settings")
    for name in (other_case(admin), repl + "x", "x" + repl + "_1", other_case(repl) + "_1"):
        accepted_user(agent, server, name, "not the admin_user nor replication_user followed by _")

    for name in literal_rows(dbs):
        for v in case_variants(name):
            for op in ("database.create", "database.delete"):
                r = expect_error(agent.call(op, {"name": v}), {"invalid_argument"}, f"{op} of protected {v!r}")
                check("system database" in r.message, f"{op} of {v!r} refused without saying why: {r.message}")
            expect_error(agent.call("user.create", {"name": "pat", "password": "pw", "databases": [v]}),
                         {"invalid_argument"}, f"a user granted protected database {v!r}")
    check(server.scalar("SELECT COUNT(*) FROM mysql.user WHERE User = 'pat'") == "0",
          "a user granted a protected database was created")
    agent.must("user.create", {"name": "pat", "password": "pw"})
    for name in literal_rows(dbs):
        for v in case_variants(name):
            r = expect_error(agent.call("user.grant", {"name": "pat", "databases": [v]}), {"invalid_argument"},
                             f"a grant on protected database {v!r}")
            check("system database" in r.message, f"a grant on {v!r} refused without saying why: {r.message}")
    check(visible_databases(server, "pat", "pw") == set(), "pat was granted a protected database")
    agent.must("user.delete", {"name": "pat"})

    listed_users = {u["name"] for u in agent.must("user.list")["users"]}
    check(not ({"root", "mariadb.sys", "mysql", mysql_server.ADMIN_USER} & listed_users),
          f"user.list shows system users: {listed_users}")
    listed_dbs = {d["name"] for d in agent.must("database.list")["databases"]}
    check(not ({"mysql", "information_schema", "performance_schema", "sys"} & listed_dbs),
          f"database.list shows system databases: {listed_dbs}")
    check("mysql" in server.databases(), "the mysql database is gone")
    check(server.sql("SELECT 1").returncode == 0, "the admin account no longer works")


def test_empty_host(agent, server):
    """An empty host is refused by every operation that takes one, with the message that says so; it never
    stands for the default '%'. A host left out does."""
    agent.must("user.create", {"name": "erin", "password": "erin-pw", "databases": ["shop"]})
    check(server.rows("SELECT Host FROM mysql.user WHERE User = 'erin'") == [("%",)],
          "a user created without a host is not erin@'%'")
    ops = [("user.create", {"name": "eve", "password": "pw"}),
           ("user.create", {"name": "erin", "password": "pw2", "databases": ["sales"]}),
           ("user.delete", {"name": "erin"}),
           ("user.show", {"name": "erin"}),
           ("user.grant", {"name": "erin", "databases": ["sales"]}),
           ("user.revoke", {"name": "erin", "databases": ["shop"]}),
           ("user.access", {"name": "erin"}),
           ("user.password", {"name": "erin", "password": "stolen"})]
    for op, args in ops:
        r = expect_error(agent.call(op, dict(args, host="")), {"invalid_argument"}, f"{op} with host \"\"")
        check("host must not be empty" in r.message, f"{op} with an empty host: {r.message}")
    check(server.scalar("SELECT COUNT(*) FROM mysql.user WHERE User = 'eve'") == "0",
          "user.create with an empty host created an account")
    check(visible_databases(server, "erin", "erin-pw") == {"shop"},
          "an operation with an empty host changed erin@'%' (login or grants)")
    shown = agent.must("user.show", {"name": "erin"})["user"]
    check(shown["host"] == "%", f"user.show without a host: {shown}")
    agent.must("user.delete", {"name": "erin"})


def test_deleted_database_takes_its_grants(agent, server):
    """A database deleted and created again under the same name is not readable by the users granted access
    to the old one, whatever characters the name holds (backticks, grant wildcards, quotes)."""
    for name in ("a`b", "`", "t`_%x", "q'`\"_z", "plain_name"):
        agent.must("database.create", {"name": name})
        server.admin_sql("CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t VALUES (1)", database=name)
        agent.must("user.create", {"name": "gus", "password": "gus-pw", "databases": [name]})
        check(can_use(server, "gus", "gus-pw", name), f"gus cannot read {name!r} after the grant")
        agent.must("database.delete", {"name": name})
        rows = server.rows("SELECT Db FROM mysql.db WHERE User = 'gus'")
        check(rows == [], f"deleting {name!r} left gus's grant behind: {rows}")
        agent.must("database.create", {"name": name})
        server.admin_sql("CREATE TABLE t (k INT PRIMARY KEY); INSERT INTO t VALUES (2)", database=name)
        check(not can_use(server, "gus", "gus-pw", name),
              f"gus reads the new database {name!r}, created after the one gus was granted was deleted")
        check(visible_databases(server, "gus", "gus-pw") == set(), f"gus still sees {name!r}")
        access = agent.must("user.access", {"name": "gus"})["databases"]
        check(access == [], f"user.access of gus after deleting {name!r}: {access}")
        agent.must("user.delete", {"name": "gus"})
        agent.must("database.delete", {"name": name})


def root_login(server, password):
    cp = server.sql_access("SELECT CURRENT_USER()", "root", password)
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
        test_protected_names(agent, server)
        test_empty_host(agent, server)
        test_deleted_database_takes_its_grants(agent, server)
        test_root(agent, server)
        test_errors_and_dead_server(agent, server)
    print("mysql users: passed")


if __name__ == "__main__":
    main()
