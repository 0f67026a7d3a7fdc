"""Reserved role and database names on a real PostgreSQL, through the agent:
the list in docs/plugins/postgres.md is the list the plugin enforces (the
RESERVED table of plugins/postgres/names.c), and every name on it is refused
by every operation that takes a role or database name, with the documented
error, changing nothing on the server. Names next to a reserved one stay
usable. The instance runs with settings that differ from every fixed name
(admin "dbadmin", root "superroot", maintenance database "maint"), so a
setting entry is told apart from a name entry."""
import os
import re
import sys

import harness
from harness import check
from postgres_server import PgServer, available

ADMIN, ADMIN_PASSWORD = "dbadmin", "adm1n 'pw'"
SETTINGS = {"user": ADMIN, "root_user": "superroot", "database": "maint"}
CODES = {"TROVE_EINVAL": "invalid_argument", "TROVE_ECONFLICT": "failed_precondition"}
KINDS = {"PG_ROLE": "role", "PG_DATABASE": "database"}
# Names the plugin gives its own roles, checked beside the generic sample.
PLUGIN_ROLES = ["trove_repl_0123456789ab", "trove_replicators"]


def doc_entries():
    """(kind, match, name, code) rows between the reserved-names markers."""
    with open(harness.source_path("docs", "plugins", "postgres.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- reserved-names:begin -->(.*?)<!-- reserved-names:end -->", text, re.S)
    check(m is not None, "docs/plugins/postgres.md has a marked list of reserved names")
    rows = set()
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("kind", "") or set(cells[0]) <= set("-"):
            continue
        name = re.fullmatch(r"`([^`]+)`", cells[2])
        code = re.fullmatch(r"`([^`]+)`", cells[3])
        check(name is not None and code is not None, f"doc row is well formed: {line}")
        rows.add((cells[0], cells[1], name.group(1), code.group(1)))
    return rows


def code_entries():
    """The same rows read from the RESERVED table of names.c."""
    with open(harness.source_path("plugins", "postgres", "names.c"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"static const struct reserved RESERVED\[\] = \{(.*?)\n\};", text, re.S)
    check(m is not None, "names.c has the RESERVED table")
    rows = set()
    for match, kind, name, status in re.findall(
            r"RESERVE_(NAME|PREFIX|SETTING)\(\s*(PG_ROLE|PG_DATABASE)\s*,\s*\"?(\w+)\"?\s*,\s*(TROVE_E\w+)\s*,",
            m.group(1)):
        rows.add((KINDS[kind], match.lower(), name, CODES[status]))
    check(len(rows) == m.group(1).count("RESERVE_"), f"every RESERVED entry was read: {sorted(rows)}")
    return rows


def samples(kind, match, name):
    if match == "name":
        return [name]
    if match == "setting":
        return [SETTINGS[name]]
    return [name + "x1"] + (PLUGIN_ROLES if (kind, name) == ("role", "trove_") else [])


def role_doors(r):
    return [("user.create", {"name": r, "password": "Pw-1"}), ("user.delete", {"name": r}),
            ("user.password", {"name": r, "password": "Pw-2"}),
            ("user.grant", {"name": r, "databases": ["shop"]}), ("user.revoke", {"name": r, "databases": ["shop"]}),
            ("user.show", {"name": r}), ("user.access", {"name": r}),
            ("database.create", {"name": "fresh_db", "owner": r}),
            ("prepare", {"users": [{"name": r, "password": "Pw-3"}]})]


def database_doors(d):
    return [("database.create", {"name": d}), ("database.delete", {"name": d}),
            ("user.create", {"name": "newbie", "password": "Pw-4", "databases": [d]}),
            ("user.grant", {"name": "alice", "databases": [d]}), ("user.revoke", {"name": "alice", "databases": [d]}),
            ("prepare", {"databases": [{"name": d}]}),
            ("prepare", {"users": [{"name": "newbie", "password": "Pw-5", "databases": [d]}]})]


STATE_SQL = """SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
  SELECT format('role %s super=%s login=%s repl=%s pw=%s', rolname, rolsuper, rolcanlogin, rolreplication,
                md5(coalesce(rolpassword, ''))) FROM pg_authid
  UNION ALL SELECT format('db %s owner=%s acl=%s', datname, datdba::regrole, datacl) FROM pg_database
  UNION ALL SELECT format('member %s in %s', member::regrole, roleid::regrole) FROM pg_auth_members) t(x)"""


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    doc, code = doc_entries(), code_entries()
    check(doc == code, f"the documented reserved names are the enforced ones:\n  only in the doc: {sorted(doc - code)}"
                       f"\n  only in names.c: {sorted(code - doc)}")
    check({(k, m) for k, m, _, _ in doc} >= {("role", "prefix"), ("role", "setting"), ("database", "name")},
          "the list covers prefixes, settings and names")
    with harness.Env() as env:
        srv = PgServer(env).initdb().start()
        srv.psql(f"CREATE ROLE {ADMIN} SUPERUSER LOGIN PASSWORD '{ADMIN_PASSWORD.replace(chr(39), chr(39) * 2)}'")
        srv.psql("CREATE DATABASE maint")
        agent = harness.Agent(env, "postgres", srv.settings(password=ADMIN_PASSWORD, **SETTINGS))
        agent.must("prepare", {"databases": [{"name": "shop"}],
                               "users": [{"name": "alice", "password": "Alice-1", "databases": ["shop"]}]})
        state = srv.psql(STATE_SQL)

        refused = 0
        for kind, match, name, want in sorted(doc):
            for sample in samples(kind, match, name):
                for op, args in (role_doors if kind == "role" else database_doors)(sample):
                    r = agent.call(op, args)
                    check(not r.ok and r.code == want and sample in r.message,
                          f"{op} {args} is refused with {want} ({kind} {match} {name!r}): {r}")
                    after = srv.psql(STATE_SQL)
                    check(after == state, f"{op} {args} changed nothing on the server")
                    refused += 1

        listed = sorted(u["name"] for u in agent.must("user.list")["users"])
        check(listed == ["alice"], f"user.list shows no reserved role: {listed}")
        dbs = sorted(d["name"] for d in agent.must("database.list")["databases"])
        check(dbs == ["shop"], f"database.list shows no reserved database: {dbs}")

        # names beside the reserved ones are ordinary
        for role in ["trove", "pg", "Postgres", "troveX_repl", "superroot2", "PUBLIC"]:
            agent.must("user.create", {"name": role, "password": "Pw-6", "databases": ["shop"]})
            check(srv.can_connect(role, "Pw-6", "shop"), f"{role!r} is an ordinary user")
            agent.must("user.delete", {"name": role})
        for db in ["trove_shop", "maint2", "Template1", "pgdata"]:
            agent.must("database.create", {"name": db})
            agent.must("database.delete", {"name": db})
        check(srv.psql(STATE_SQL) == state, "and leave nothing behind")
    print(f"postgres reserved names: ok ({len(doc)} entries, {refused} refusals)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
