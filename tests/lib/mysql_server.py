"""Real MariaDB servers for the mysql plugin's tests and its conformance description.

A server lives in <env>/mysql<index>/ with the same layout the plugin uses
(data/, run/my.cnf, run/mysqld.sock, run/mysqld.pid, run/error.log), so the
agent can stop, restart and restore it. It is started detached (like the
plugin starts it) and always stopped through its pid file when the Env closes.

Standard library only. Checks from the outside use the stock `mariadb` client.
Like the plugin, the harness gives the server only password hashes, so tests
that read the server's logs for secrets see nothing the harness wrote itself.
"""
import hashlib
import os
import re
import signal
import subprocess
import time

import harness

# The server refusing a user, as opposed to failing to answer: 1044 no access
# to the database, 1045 login refused, 1142 command denied on a table,
# 1227 a privilege is missing, 1698 login refused by a socket-auth account.
REFUSED = re.compile(r"ERROR (1044|1045|1142|1227) \(")

ADMIN_USER = "os_admin"
ADMIN_PASSWORD = "Adm1n-'pw\\\" #x"   # quotes, a backslash, a space and a '#' on purpose

# Options the plugin writes into run/my.cnf (lifecycle.c), so a server started
# here looks exactly like one the plugin started.
MY_CNF = """[mariadbd]
datadir="{datadir}"
socket="{socket}"
port={port}
bind-address=127.0.0.1
pid-file="{pid}"
log-error="{log}"
slow-query-log-file="{slow}"
general-log-file="{general}"
tmpdir="{tmp}"
user=root
server-id={server_id}
log-bin=mariadb-bin
relay-log=mariadb-relay-bin
binlog-format=ROW
log-slave-updates=ON
skip-name-resolve
!include {overrides}
!include {role}
"""


def _escape_option(value):
    return value.replace("\\", "\\\\").replace('"', '\\"')


def native_password_hash(password):
    """mysql_native_password's stored form: '*' + uppercase hex of SHA1(SHA1(password))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode("utf-8")).digest()).hexdigest().upper()


def _process_alive(pid):
    """True if pid runs and is not a zombie (the server is not our child)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


class MysqlServer:
    def __init__(self, env, index=0, server_id=None, admin_user=ADMIN_USER, admin_password=ADMIN_PASSWORD,
                 options=None):
        """options: extra server options {name: value}, written into run/overrides.cnf (the file the plugin
        keeps its configuration overrides in, included by my.cnf) before anything starts."""
        self.env = env
        self.index = index
        self.base = env.mkdir(f"mysql{index}")
        self.datadir = os.path.join(self.base, "data")
        self.run_dir = env.mkdir(f"mysql{index}", "run", mode=0o750)
        self.socket = os.path.join(self.run_dir, "mysqld.sock")
        self.pid_file = os.path.join(self.run_dir, "mysqld.pid")
        self.log = os.path.join(self.run_dir, "error.log")
        self.port = harness.free_port()
        self.host = "127.0.0.1"
        self.server_id = server_id or (index + 1)
        self.admin_user = admin_user
        self.admin_password = admin_password
        if options:
            with open(os.path.join(self.run_dir, "overrides.cnf"), "w") as f:
                f.write("[mariadbd]\n" + "".join(f'{k}="{v}"\n' for k, v in options.items()))
        env.callback(self.stop)

    # ------------------------------------------------------------------ settings
    def settings(self, **extra):
        """The agent's [datastore] section for this server."""
        s = {
            "host": self.host,
            "port": self.port,
            "socket": self.socket,
            "datadir": self.datadir,
            "run_dir": self.run_dir,
            "server_user": "root",
            "server_id": self.server_id,
            "admin_user": self.admin_user,
            "admin_password": self.admin_password,
            "start_timeout": 60,
            "stop_timeout": 60,
        }
        s.update(extra)
        return s

    # ------------------------------------------------------------------ lifecycle
    def _write_cnf(self):
        for name in ("overrides.cnf", "role.cnf"):
            path = os.path.join(self.run_dir, name)
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write("[mariadbd]\n")
        tmp = os.path.join(self.run_dir, "tmp")
        os.makedirs(tmp, mode=0o700, exist_ok=True)
        with open(os.path.join(self.run_dir, "my.cnf"), "w") as f:
            f.write(MY_CNF.format(datadir=self.datadir, socket=self.socket, port=self.port, pid=self.pid_file,
                                  log=self.log, slow=os.path.join(self.run_dir, "slow.log"),
                                  general=os.path.join(self.run_dir, "general.log"), tmp=tmp, server_id=self.server_id,
                                  overrides=os.path.join(self.run_dir, "overrides.cnf"),
                                  role=os.path.join(self.run_dir, "role.cnf")))

    def install(self):
        self._write_cnf()
        cp = subprocess.run(["mariadb-install-db", "--defaults-file=" + os.path.join(self.run_dir, "my.cnf"),
                             "--auth-root-authentication-method=normal", "--skip-test-db"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if cp.returncode != 0:
            raise AssertionError(f"mariadb-install-db failed ({cp.returncode}): {cp.stdout[-1500:]} {cp.stderr[-1500:]}")

    def launch(self):
        """Start mariadbd detached, as the plugin does, and wait until it answers."""
        self._write_cnf()
        with open(self.log, "ab") as log:
            subprocess.run(["setsid", "-f", "mariadbd", "--defaults-file=" + os.path.join(self.run_dir, "my.cnf")],
                           check=True, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        harness.wait_for(lambda: self.sql("SELECT 1", user="root", password="", socket=True).returncode == 0,
                         60, f"mariadbd on port {self.port} ({self.log_tail()})")

    def start(self):
        """A fresh server with the plugin's admin account; returns self."""
        self.install()
        self.launch()
        pw = native_password_hash(self.admin_password)
        stmts = []
        for host in ("localhost", "127.0.0.1", "::1"):
            stmts.append(f"CREATE USER '{self.admin_user}'@'{host}' IDENTIFIED BY PASSWORD '{pw}'")
            stmts.append(f"GRANT ALL PRIVILEGES ON *.* TO '{self.admin_user}'@'{host}' WITH GRANT OPTION")
        self.root_sql(";".join(stmts))
        return self

    def pid(self):
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if _process_alive(pid) else None

    def alive(self):
        return self.pid() is not None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while _process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _process_alive(pid):
            os.kill(pid, signal.SIGKILL)

    def crash(self):
        """SIGKILL the server, as a crash would."""
        self.stop(signal.SIGKILL, timeout=10)

    def log_tail(self, n=5):
        try:
            with open(self.log, "rb") as f:
                return b" | ".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return "no log"

    # ------------------------------------------------------------------ client
    def sql(self, query, user=None, password=None, database=None, socket=False, timeout=60):
        """Run `query` with the stock mariadb client; returns CompletedProcess
        (stdout: tab-separated rows, no header)."""
        user = self.admin_user if user is None else user
        password = self.admin_password if password is None else password
        cnf = harness.secret_file(self.env.path(f"client-{os.getpid()}-{time.monotonic_ns()}.cnf"),
                                  f'[client]\npassword="{_escape_option(password)}"\n')
        argv = ["mariadb", "--defaults-file=" + cnf, "--batch", "--skip-column-names", "--user=" + user]
        if socket:
            argv.append("--socket=" + self.socket)
        else:
            argv += ["--host=127.0.0.1", "--port=" + str(self.port), "--protocol=tcp"]
        if database is not None:
            argv.append("--database=" + database)
        argv += ["-e", query]
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, text=True)
        finally:
            os.unlink(cnf)

    def sql_access(self, query, user, password, **kw):
        """Run `query` as `user` to check what that user may do: the
        CompletedProcess when it ran (returncode 0) or the server refused the
        user (returncode != 0, a REFUSED error). Anything else raises: no
        connection or a broken query proves neither access nor its absence."""
        cp = self.sql(query, user=user, password=password, **kw)
        if cp.returncode != 0 and not REFUSED.match(cp.stderr.strip()):
            raise AssertionError(f"{query!r} as {user!r} neither ran nor was refused: {cp.stderr.strip()[:300]}")
        return cp

    def root_sql(self, query, **kw):
        cp = self.sql(query, user="root", password="", socket=True, **kw)
        if cp.returncode != 0:
            raise AssertionError(f"root SQL failed: {cp.stderr.strip()}")
        return cp.stdout

    def admin_sql(self, query, **kw):
        cp = self.sql(query, **kw)
        if cp.returncode != 0:
            raise AssertionError(f"admin SQL failed: {cp.stderr.strip()}")
        return cp.stdout

    def rows(self, query, **kw):
        out = self.admin_sql(query, **kw)
        return [tuple(line.split("\t")) for line in out.splitlines() if line != ""]

    def scalar(self, query, **kw):
        rows = self.rows(query, **kw)
        return rows[0][0] if rows else None

    def databases(self):
        return {r[0] for r in self.rows("SHOW DATABASES")}


def start_server(env, index=0, **kw):
    return MysqlServer(env, index, **kw).start()


def agent_for(env, server, instance_id=None, backup_dir=None, **extra):
    return harness.Agent(env, "mysql", server.settings(**extra), instance_id=instance_id or f"mysql-{server.index}",
                         backup_dir=backup_dir)
