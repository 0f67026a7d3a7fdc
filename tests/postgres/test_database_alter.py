"""database.alter (and database.create's options) on a real PostgreSQL
through the agent: the owner, the connection limit and whether connections
are allowed change as PostgreSQL itself reports them, and a tenant sees the
effect when logging in; database.list shows the options. What PostgreSQL
cannot change (encoding, locale), unknown or malformed options, a missing or
reserved owner or database are refused with a clear error and change
nothing, also when mixed with a valid change."""
import sys

import harness
from harness import check
from postgres_server import PgServer, available

STATE_SQL = """SELECT string_agg(format('%s owner=%s limit=%s allow=%s acl=%s', datname, datdba::regrole,
                                      datconnlimit, datallowconn, datacl), E'\\n' ORDER BY datname)
               FROM pg_database"""
HOSTILE_DB = 'x"; DROP DATABASE shop; --'


def db_row(srv, name):
    rows = srv.rows("SELECT datdba::regrole, datconnlimit, datallowconn FROM pg_database "
                    f"WHERE datname = convert_from(decode('{name.encode().hex()}', 'hex'), 'UTF8')")
    return tuple(rows[0]) if rows else None


def refused(agent, srv, args, code, *words):
    """The call fails with `code`, its message names every word, and nothing changed."""
    before = srv.psql(STATE_SQL)
    r = agent.call("database.alter", args)
    check(not r.ok and r.code == code and all(w in r.message for w in words),
          f"database.alter {args} is refused with {code} naming {words}: {r}")
    check(srv.psql(STATE_SQL) == before, f"database.alter {args} changed nothing")


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        srv = PgServer(env).initdb().start()
        agent = harness.Agent(env, "postgres", srv.settings())
        agent.must("database.create", {"name": "shop"})
        agent.must("user.create", {"name": "alice", "password": "Alice-pw1", "databases": ["shop"]})
        agent.must("user.create", {"name": "bob", "password": "Bob-pw1"})
        check(db_row(srv, "shop") == ("postgres", "-1", "t"), f"a new database: {db_row(srv, 'shop')}")

        # the owner changes; the new owner reaches the database, alice keeps her grant
        agent.must("database.alter", {"name": "shop", "owner": "bob"})
        check(db_row(srv, "shop")[0] == "bob", f"owner is bob: {db_row(srv, 'shop')}")
        check(srv.can_connect("bob", "Bob-pw1", "shop") and srv.can_connect("alice", "Alice-pw1", "shop"),
              "the new owner and the granted user log in")
        check("shop" in [d["name"] for d in agent.must("user.access", {"name": "bob"})["databases"]],
              "user.access shows the owner's database")

        # connections closed and opened again, as the tenant sees it
        agent.must("database.alter", {"name": "shop", "options": {"allow_connections": "false"}})
        check(db_row(srv, "shop")[2] == "f", "datallowconn off")
        check(not srv.can_connect("alice", "Alice-pw1", "shop"), "nobody logs in while connections are off")
        check("not currently accepting connections" in srv.connect_error("alice", "Alice-pw1", "shop"),
              "PostgreSQL says why")
        agent.must("database.alter", {"name": "shop", "options": {"allow_connections": "yes",
                                                                  "connection_limit": "3"}})
        check(db_row(srv, "shop") == ("bob", "3", "t"), f"both options at once: {db_row(srv, 'shop')}")
        check(srv.can_connect("alice", "Alice-pw1", "shop"), "alice logs in again")
        agent.must("database.alter", {"name": "shop", "options": {"connection_limit": "0"}})
        check("too many connections" in srv.connect_error("alice", "Alice-pw1", "shop"),
              "a limit of 0 keeps a non-superuser out")
        agent.must("database.alter", {"name": "shop", "options": {"connection_limit": "-1"}})
        check(srv.can_connect("alice", "Alice-pw1", "shop"), "-1 is no limit")

        listed = {d["name"]: d for d in agent.must("database.list")["databases"]}
        check(listed["shop"]["owner"] == "bob" and
              listed["shop"].get("options") == {"connection_limit": "-1", "allow_connections": "true"},
              f"database.list shows the options: {listed['shop']}")

        # options on create
        agent.must("database.create", {"name": "quiet", "options": {"connection_limit": "5",
                                                                    "allow_connections": "off"}})
        check(db_row(srv, "quiet") == ("postgres", "5", "f"), f"created with options: {db_row(srv, 'quiet')}")
        before = srv.psql(STATE_SQL)
        r = agent.call("database.create", {"name": "noisy", "options": {"connection_limit": "2", "colour": "red"}})
        check(r.code == "invalid_argument" and "colour" in r.message and srv.psql(STATE_SQL) == before,
              f"create with an unknown option is refused, nothing created: {r}")

        # refusals, each changing nothing
        agent.must("database.alter", {"name": "shop", "options": {"connection_limit": "4"}})
        refused(agent, srv, {"name": "shop", "options": {"no_such_option": "1", "other_one": "2"}},
                "invalid_argument", "no_such_option", "other_one")
        refused(agent, srv, {"name": "shop", "options": {"connection_limit": "9", "bogus": "1"}},
                "invalid_argument", "bogus")
        for bad in ("abc", "-2", "1e3", " 7", "99999999999"):
            refused(agent, srv, {"name": "shop", "options": {"connection_limit": bad}}, "invalid_argument",
                    "connection_limit")
        refused(agent, srv, {"name": "shop", "options": {"allow_connections": "maybe"}}, "invalid_argument",
                "allow_connections")
        refused(agent, srv, {"name": "shop", "character_set": "LATIN1"}, "invalid_argument", "encoding")
        refused(agent, srv, {"name": "shop", "collation": "C", "options": {"connection_limit": "9"}},
                "invalid_argument", "locale")
        refused(agent, srv, {"name": "shop", "owner": "nobody_here"}, "not_found", "nobody_here")
        refused(agent, srv, {"name": "shop", "owner": "nobody_here", "options": {"connection_limit": "9"}},
                "not_found", "nobody_here")
        for owner, code in (("postgres", "failed_precondition"), ("trove_repl_0123456789ab", "failed_precondition"),
                            ("pg_monitor", "invalid_argument")):
            refused(agent, srv, {"name": "shop", "owner": owner}, code, owner)
        refused(agent, srv, {"name": "missing_db", "options": {"connection_limit": "1"}}, "not_found", "missing_db")
        for name, code in (("postgres", "failed_precondition"), ("template1", "failed_precondition"),
                           ("template0", "failed_precondition"), ("pg_x", "invalid_argument")):
            refused(agent, srv, {"name": name, "options": {"allow_connections": "false"}}, code, name)
        refused(agent, srv, {"name": "shop"}, "invalid_argument")
        check(db_row(srv, "shop") == ("bob", "4", "t"), f"shop as it was: {db_row(srv, 'shop')}")

        # a hostile name is altered literally, and only it
        agent.must("database.create", {"name": HOSTILE_DB})
        agent.must("database.alter", {"name": HOSTILE_DB, "options": {"connection_limit": "1"}, "owner": "alice"})
        check(db_row(srv, HOSTILE_DB) == ("alice", "1", "t") and db_row(srv, "shop") == ("bob", "4", "t"),
              "the hostile database changed literally, shop did not")
    print("postgres database.alter: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
