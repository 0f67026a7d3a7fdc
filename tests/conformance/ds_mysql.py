"""trove-plugin-check's description of MySQL (plugin "mysql"), on real
MariaDB servers.

Each server is a fresh mariadb-install-db data directory in the test's Env with
its own free loopback port and server id (index + 1), laid out the way the
plugin runs it (tests/lib/mysql_server.py), so the agent can stop, restart and
restore it. Rows live in the table `conformance_rows` of the test database.
Everything here uses the stock `mariadb` client, never the agent.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from trove_check.datastore import Datastore, Server  # noqa: E402
from mysql_server import MysqlServer  # noqa: E402

TABLE = "conformance_rows"


def _hex(s):
    return "0x" + s.encode("utf-8").hex() if s else "''"


def _ident(name):
    return "`" + name.replace("`", "``") + "`"


def _number(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


class MysqlDatastore(Datastore):
    plugin = "mysql"
    # No cluster membership: a Galera cluster would fill those slots.
    expect_unsupported = {"cluster.join", "cluster.leave", "cluster.status"}
    databases = True
    test_database = "conformance"
    live_parameter = ("max_connections", "217")
    restart_parameter = ("innodb_log_buffer_size", "33554432")
    incremental_backup = True

    def start_server(self, env, index):
        ms = MysqlServer(env, index, server_id=index + 1).start()
        server = Server(ms.settings(), ms.host, ms.port)
        server.mysql = ms
        return server

    def write_rows(self, server, database, rows):
        ms = server.mysql
        stmts = [f"CREATE TABLE IF NOT EXISTS {TABLE} (k VARCHAR(255) PRIMARY KEY, v TEXT) "
                 "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"]
        for i in range(0, len(rows), 500):
            values = ",".join(f"({_hex(k)}, {_hex(v)})" for k, v in rows[i:i + 500])
            stmts.append(f"REPLACE INTO {TABLE} (k, v) VALUES {values}")
        ms.admin_sql(";".join(stmts), database=database)

    def read_rows(self, server, database):
        out = server.mysql.admin_sql(f"SELECT HEX(k), HEX(v) FROM {TABLE} ORDER BY k", database=database)
        rows = []
        for line in out.splitlines():
            k, v = line.split("\t")
            rows.append((bytes.fromhex(k).decode("utf-8"), bytes.fromhex(v).decode("utf-8")))
        return sorted(rows)

    def can_read(self, server, user, password, database, host=None):
        """Log in as `user` into `database` (refused without a grant on it) and list its tables."""
        cp = server.mysql.sql(f"SHOW TABLES FROM {_ident(database)}", user=user, password=password,
                              database=database)
        if cp.returncode == 0:
            return True
        # 1044: no access to the database; 1045: login refused.
        if re.match(r"ERROR 104[45] \(", cp.stderr.strip()):
            return False
        raise AssertionError(f"login as {user!r} was neither allowed nor refused: {cp.stderr.strip()[:300]}")

    def read_parameter(self, server, name):
        return server.mysql.scalar(f"SELECT @@GLOBAL.{name}")

    def same_value(self, name, wanted, reported):
        """MariaDB prints booleans as 1/0 and decimals with six places."""
        w, r = str(wanted).strip().lower(), str(reported).strip().lower()
        truth = {"on": "1", "true": "1", "yes": "1", "off": "0", "false": "0", "no": "0"}
        w, r = truth.get(w, w), truth.get(r, r)
        if _number(w) is not None and _number(r) is not None:
            return _number(w) == _number(r)
        return w == r


DATASTORE = MysqlDatastore()
