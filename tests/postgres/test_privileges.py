"""No right of the plugin's own reaches a tenant on a real PostgreSQL, through
the agent and checked from outside with psql:

- the replication account of replication.snapshot holds CONNECT on the
  maintenance database and EXECUTE on pg_rewind's file functions itself, and
  no other non-superuser role does: a role named like a replication group
  (claimed through user.create where that is possible, else made directly)
  gets nothing and cannot read global/1260 (pg_authid); the account's
  pg_hba.conf lines name it alone; a failed snapshot leaves no role, slot or
  pg_hba.conf line behind;
- root.enable / root.disable refuse a root_user role that is an ordinary
  login role instead of turning it into a superuser (or locking it out);
- user.delete refuses a user that still owns objects, so its SECURITY
  DEFINER function and view never come to run as the admin superuser."""
import sys

import harness
from harness import check
from postgres_server import PgServer, available

REWIND_FUNCTIONS = ["pg_catalog.pg_ls_dir(text, boolean, boolean)", "pg_catalog.pg_stat_file(text, boolean)",
                    "pg_catalog.pg_read_binary_file(text)",
                    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)"]
CLAIM_PASSWORD = "Claim-pw-1"


def holders(srv, privilege_sql):
    """Non-superuser roles for which privilege_sql (with r.oid) is true."""
    out = srv.psql(f"SELECT coalesce(string_agg(rolname, ',' ORDER BY rolname), '') FROM pg_roles r "
                   f"WHERE NOT rolsuper AND {privilege_sql}")
    return [n for n in out.strip().split(",") if n]


def replication_roles(srv):
    return [r[0] for r in srv.rows("SELECT rolname FROM pg_roles WHERE rolname LIKE 'trove\\_repl\\_%'")]


def hba_lines(srv):
    with open(f"{srv.datadir}/pg_hba.conf", encoding="utf-8") as f:
        return f.read()


def check_failed_snapshot_cleans_up(srv, agent):
    """A snapshot that fails after its account exists (no replication slots
    allowed) leaves no role, slot or pg_hba.conf line."""
    hba_before, roles_before = hba_lines(srv), replication_roles(srv)
    agent.must("config.apply", {"values": {"max_replication_slots": "0"}})
    agent.must("restart")
    r = agent.call("replication.snapshot")
    check(not r.ok and "replication slots" in r.message, f"a snapshot without replication slots fails: {r}")
    check(replication_roles(srv) == roles_before, f"the failed snapshot's role is gone: {replication_roles(srv)}")
    check(hba_lines(srv) == hba_before, "the failed snapshot's pg_hba.conf lines are gone")
    agent.must("config.reset")
    agent.must("restart")


def check_replication_account(srv, agent):
    # A role named like a replication group: through the API if the plugin
    # lets it through, else made directly (a role that existed before).
    claim = agent.call("user.create", {"name": "trove_replicators", "password": CLAIM_PASSWORD,
                                       "databases": ["shop"]})
    if not claim.ok:
        srv.psql(f"CREATE ROLE trove_replicators LOGIN PASSWORD '{CLAIM_PASSWORD}'")
    snap = agent.must("replication.snapshot")
    account, password = snap["user"], snap["password"]

    stolen = srv.psql_run("SELECT length(pg_read_binary_file('global/1260'))", "postgres", "trove_replicators",
                          CLAIM_PASSWORD)
    check(stolen.returncode != 0, "a role named trove_replicators cannot read pg_authid's file: "
                                  f"{stolen.stdout.decode().strip()} {stolen.stderr.decode().strip()}")
    check(not srv.can_connect("trove_replicators", CLAIM_PASSWORD, "postgres"),
          "nor connect to the maintenance database")
    check(claim.code == "failed_precondition", f"user.create trove_replicators is refused: {claim}")

    for fn in REWIND_FUNCTIONS:
        who = holders(srv, f"has_function_privilege(r.oid, '{fn}', 'EXECUTE')")
        check(who == [account], f"EXECUTE on {fn} is the replication account's alone: {who}")
    who = holders(srv, "has_database_privilege(r.oid, 'postgres', 'CONNECT')")
    check(who == [account], f"CONNECT on the maintenance database is the account's alone: {who}")
    flags = srv.psql(f"SELECT rolsuper, rolreplication, rolcanlogin, "
                     f"(SELECT count(*) FROM pg_auth_members WHERE member = r.oid) "
                     f"FROM pg_roles r WHERE rolname = '{account}'").strip()
    check(flags == "f|t|t|0", f"the account: REPLICATION LOGIN, no superuser, in no group: {flags}")
    files = srv.psql("SELECT count(*) > 0, (pg_stat_file('PG_VERSION', false)).size > 0 "
                     "FROM pg_ls_dir('.', false, false)", "postgres", account, password).strip()
    check(files == "t|t", f"the account reads the data directory as pg_rewind does: {files}")

    rules = srv.rows(f"SELECT array_to_string(database, ','), coalesce(error, '') FROM pg_hba_file_rules "
                     f"WHERE user_name = ARRAY['{account}'] ORDER BY line_number")
    check(rules == [["replication", ""], ["postgres", ""]], f"two pg_hba.conf lines name the account: {rules}")
    groups = srv.rows("SELECT line_number FROM pg_hba_file_rules WHERE array_to_string(user_name, ',') LIKE '%+%'")
    check(groups == [], f"no pg_hba.conf line names a group: {groups}")

    check(agent.call("user.password", {"name": account, "password": "x-1"}).code == "failed_precondition",
          "the account's password cannot be changed through the API")
    check(srv.can_connect(account, password, "postgres"), "and stays what the snapshot returned")


def check_root_is_not_taken_over(srv, agent):
    state_sql = "SELECT rolsuper, rolcanlogin, rolpassword FROM pg_authid WHERE rolname = 'root'"
    srv.psql("CREATE ROLE root LOGIN PASSWORD 'Rooty-1'")
    before = srv.psql(state_sql)
    r = agent.call("root.enable")
    check(srv.psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'root'").strip() == "f", "root is no superuser")
    check(r.code == "failed_precondition" and "root" in r.message, f"root.enable over a login role: {r}")
    r = agent.call("root.disable")
    check(r.code == "failed_precondition", f"root.disable over a login role: {r}")
    check(srv.psql(state_sql) == before, "the login role named root keeps its attributes and password")
    check(agent.must("root.show")["enabled"] is False, "root.show: not enabled")

    srv.psql("DROP ROLE root")
    root = agent.must("root.enable")
    check(srv.can_connect("root", root["password"], "postgres"), "root.enable works once the name is free")
    agent.must("root.disable")
    again = agent.must("root.enable")           # its own disabled role: re-enabled
    check(srv.can_connect("root", again["password"], "postgres"), "root.enable re-enables a disabled root")
    agent.must("root.disable")


def check_delete_hands_nothing_to_the_admin(srv, agent):
    srv.psql("CREATE SCHEMA a; GRANT USAGE ON SCHEMA a TO bob; "
             "CREATE FUNCTION a.whoami() RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT current_user::text'; "
             "GRANT EXECUTE ON FUNCTION a.whoami() TO bob; "
             "CREATE VIEW a.verifiers AS SELECT rolname, rolpassword FROM pg_catalog.pg_authid; "
             "GRANT SELECT ON a.verifiers TO bob", "shop", "alice", "Alice-1")
    r = agent.call("user.delete", {"name": "alice"})
    who = srv.psql("SELECT a.whoami()", "shop", "bob", "Bob-1").strip()
    check(who == "alice", f"alice's SECURITY DEFINER function still runs as alice, not {who!r}")
    leak = srv.psql_run("SELECT count(*) FROM a.verifiers WHERE rolpassword IS NOT NULL", "shop", "bob", "Bob-1")
    check(leak.returncode != 0, f"alice's view does not read pg_authid for bob: {leak.stdout.decode().strip()}")
    check(r.code == "failed_precondition" and "shop" in r.message, f"deleting an owner is refused: {r}")
    check(srv.can_connect("alice", "Alice-1", "shop"), "alice is untouched")

    srv.psql("DROP SCHEMA a CASCADE", "shop", "alice", "Alice-1")
    agent.must("user.delete", {"name": "alice"})
    check(not srv.can_connect("alice", "Alice-1", "shop"), "alice is deleted once she owns nothing")


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        srv = PgServer(env).initdb().start()
        agent = harness.Agent(env, "postgres", srv.settings())
        agent.must("prepare", {"databases": [{"name": "shop"}],
                               "users": [{"name": "alice", "password": "Alice-1", "databases": ["shop"]},
                                         {"name": "bob", "password": "Bob-1", "databases": ["shop"]}]})
        check_failed_snapshot_cleans_up(srv, agent)   # first: a slot would stop a server without slots
        check_replication_account(srv, agent)
        check_root_is_not_taken_over(srv, agent)
        check_delete_hands_nothing_to_the_admin(srv, agent)
    print("postgres privileges: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
