"""database.alter through the agent on a real MariaDB: the character set and the
collation of a database change (both, or one of them) as information_schema
reports them, new tables take them and old tables keep theirs; a collation of
another character set, an unknown one, an option or an owner (MariaDB
databases have neither), nothing to change, a missing, protected or hostile
database are refused with a clear error and change nothing.
"""
import harness
import mysql_server
from harness import check


def schema(server, name):
    rows = server.rows("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                       f"WHERE SCHEMA_NAME = 0x{name.encode().hex()}")
    return rows[0] if rows else None


def listed(agent, name):
    for d in agent.must("database.list")["databases"]:
        if d["name"] == name:
            return d["character_set"], d["collation"]
    return None


def test_alter_changes_defaults(agent, server):
    agent.must("database.create", {"name": "shop", "character_set": "latin1", "collation": "latin1_swedish_ci"})
    server.admin_sql("CREATE TABLE old_t (v VARCHAR(10))", database="shop")
    agent.must("database.alter", {"name": "shop", "character_set": "utf8mb4", "collation": "utf8mb4_bin"})
    check(schema(server, "shop") == ("utf8mb4", "utf8mb4_bin"), f"after alter: {schema(server, 'shop')}")
    check(listed(agent, "shop") == ("utf8mb4", "utf8mb4_bin"), f"database.list after alter: {listed(agent, 'shop')}")
    server.admin_sql("CREATE TABLE new_t (v VARCHAR(10))", database="shop")
    tables = dict(server.rows("SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES "
                              "WHERE TABLE_SCHEMA = 'shop'"))
    check(tables == {"old_t": "latin1_swedish_ci", "new_t": "utf8mb4_bin"}, f"table collations: {tables}")

    agent.must("database.alter", {"name": "shop", "collation": "utf8mb4_unicode_ci"})
    check(schema(server, "shop") == ("utf8mb4", "utf8mb4_unicode_ci"), f"collation only: {schema(server, 'shop')}")
    agent.must("database.alter", {"name": "shop", "character_set": "latin1"})
    check(schema(server, "shop") == ("latin1", "latin1_swedish_ci"),
          f"character set only (its default collation): {schema(server, 'shop')}")


def test_alter_refuses(agent, server):
    agent.must("database.create", {"name": "keep", "character_set": "utf8mb4", "collation": "utf8mb4_general_ci"})
    before = schema(server, "keep")
    bad = [
        ({"name": "keep", "character_set": "latin1", "collation": "utf8mb4_bin"}, "invalid_argument", "belongs to"),
        ({"name": "keep", "character_set": "klingon"}, "invalid_argument", "not supported"),
        ({"name": "keep", "collation": "utf8mb4_nope"}, "invalid_argument", "not supported"),
        ({"name": "keep", "character_set": "utf8mb4; DROP DATABASE keep"}, "invalid_argument", "not a valid name"),
        ({"name": "keep", "character_set": ""}, "invalid_argument", "must not be empty"),
        ({"name": "keep", "options": {"comment": "x", "encryption": "Y"}}, "invalid_argument", "comment, encryption"),
        ({"name": "keep", "character_set": "latin1", "options": {"comment": "x"}}, "invalid_argument", "comment"),
        ({"name": "keep", "owner": "alice"}, "invalid_argument", "no owner"),
        ({"name": "keep"}, "invalid_argument", "something to change"),
        ({"name": "missing", "character_set": "latin1"}, "not_found", "does not exist"),
        ({"name": "mysql", "character_set": "latin1"}, "invalid_argument", "system database"),
        ({"name": "Sys", "character_set": "latin1"}, "invalid_argument", "system database"),
        ({"name": "a.b", "character_set": "latin1"}, "invalid_argument", "must not contain"),
        ({"name": "x`; DROP DATABASE keep; --", "character_set": "latin1"}, "not_found", "does not exist"),
    ]
    for args, code, why in bad:
        r = agent.call("database.alter", args)
        check(not r.ok and r.code == code and why in r.message, f"database.alter {args}: {r}")
        check(schema(server, "keep") == before, f"a refused alter ({args}) changed keep: {schema(server, 'keep')}")
    check(schema(server, "mysql") is not None and schema(server, "keep") is not None, "a database went missing")


def test_hostile_name(agent, server):
    name = "we`ird'; DROP DATABASE keep; --"
    agent.must("database.create", {"name": name})
    agent.must("database.alter", {"name": name, "character_set": "utf8mb4", "collation": "utf8mb4_bin"})
    check(schema(server, name) == ("utf8mb4", "utf8mb4_bin"), f"the hostile name's database: {schema(server, name)}")
    check(schema(server, "keep") is not None, "keep was dropped")


def test_create_refuses_options(agent, server):
    r = agent.call("database.create", {"name": "opt", "options": {"comment": "x"}})
    check(not r.ok and r.code == "invalid_argument" and "comment" in r.message, f"create with an option: {r}")
    check(schema(server, "opt") is None, "a refused create made the database")


def main():
    with harness.Env(prefix="mysql-alter-") as env:
        server = mysql_server.start_server(env, 0)
        agent = mysql_server.agent_for(env, server)
        test_alter_changes_defaults(agent, server)
        test_alter_refuses(agent, server)
        test_hostile_name(agent, server)
        test_create_refuses_options(agent, server)
    print("mysql alter: passed")


if __name__ == "__main__":
    main()
