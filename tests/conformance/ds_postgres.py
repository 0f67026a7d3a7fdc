"""trove-plugin-check's description of PostgreSQL (plugin "postgres"),
on real PostgreSQL 15 servers.

Each server is a fresh initdb cluster in the test's Env (scram-sha-256 for
every connection), started with pg_ctl as the postgres system user on its own
free loopback port (tests/lib/postgres_server.py), so the agent can stop,
restart, restore and rewind it. All servers share one admin password: a
physical replica is a copy of its source, admin role included. Rows live in
the table `conformance_rows` of the test database. Everything here uses the
stock `psql` client, never the agent.

Access in PostgreSQL is CONNECT (+ CREATE, TEMPORARY) on a database, so
can_read logs in to the database and reads its catalog: table privileges are
not part of the API. database.alter's options (connection_limit,
allow_connections) are read back from pg_database.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from trove_check.datastore import Datastore, Server  # noqa: E402
from postgres_server import PgServer  # noqa: E402

TABLE = "conformance_rows"


def _text(s):
    """A UTF-8 string as an SQL expression that needs no quoting."""
    return f"convert_from(decode('{s.encode('utf-8').hex()}', 'hex'), 'UTF8')"


def _number(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


class PostgresDatastore(Datastore):
    plugin = "postgres"
    expect_unsupported = set()
    databases = True
    test_database = "conformance"
    live_parameter = ("work_mem", "8192")             # kB
    restart_parameter = ("max_connections", "150")
    incremental_backup = True
    database_option = ("connection_limit", "7")       # database.alter; allow_connections is the other

    def start_server(self, env, index):
        pg = PgServer(env, f"pg{index}").initdb().start()
        server = Server(pg.settings(), pg.host, pg.port)
        server.pg = pg
        return server

    def write_rows(self, server, database, rows):
        stmts = [f"CREATE TABLE IF NOT EXISTS {TABLE} (k text PRIMARY KEY, v text)"]
        for i in range(0, len(rows), 500):
            values = ",".join(f"({_text(k)}, {_text(v)})" for k, v in rows[i:i + 500])
            stmts.append(f"INSERT INTO {TABLE} (k, v) VALUES {values} ON CONFLICT (k) DO UPDATE SET v = excluded.v")
        server.pg.psql("; ".join(stmts), database)

    def read_rows(self, server, database):
        out = server.pg.psql(f"SELECT encode(convert_to(k, 'UTF8'), 'hex'), encode(convert_to(v, 'UTF8'), 'hex') "
                             f"FROM {TABLE}", database)
        rows = []
        for line in out.splitlines():
            if line:
                k, v = line.split("|")
                rows.append((bytes.fromhex(k).decode("utf-8"), bytes.fromhex(v).decode("utf-8")))
        return sorted(rows)

    def can_read(self, server, user, password, database, host=None):
        """Log in as `user` to `database` (refused without CONNECT) and read its catalog."""
        cp = server.pg.psql_run("SELECT count(*) FROM pg_catalog.pg_class", database, user, password)
        if cp.returncode == 0:
            return True
        why = cp.stderr.decode("utf-8", "replace")
        if any(r in why for r in ("password authentication failed", "permission denied for database",
                                  "no pg_hba.conf entry", "is not permitted to log in")):
            return False
        raise AssertionError(f"login as {user!r} was neither allowed nor refused: {why.strip()[:300]}")

    def read_parameter(self, server, name):
        return server.pg.psql(f"SELECT setting FROM pg_settings WHERE name = {_text(name)}").strip()

    def read_database_option(self, server, database, option):
        column = {"connection_limit": "datconnlimit::text",
                  "allow_connections": "CASE WHEN datallowconn THEN 'true' ELSE 'false' END"}[option]
        return server.pg.psql(f"SELECT {column} FROM pg_database WHERE datname = {_text(database)}").strip()

    def same_value(self, name, wanted, reported):
        """pg_settings prints booleans as on/off and numbers in the parameter's unit."""
        w, r = str(wanted).strip().lower(), str(reported).strip().lower()
        truth = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}
        if w in truth and r in ("on", "off"):
            w = truth[w]
        if _number(w) is not None and _number(r) is not None:
            return _number(w) == _number(r)
        return w == r


DATASTORE = PostgresDatastore()
