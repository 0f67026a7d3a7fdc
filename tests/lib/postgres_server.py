"""Real PostgreSQL 15 servers for the tests: initdb into a temp dir, pg_ctl
start on a free loopback port, always stopped when the harness.Env closes.

PostgreSQL refuses to run as root, so every server command runs as the
`postgres` system user through setpriv (which execs, so nothing lingers).
Servers use scram-sha-256 for every connection: the tests log in with the
stock psql client and a password, exactly as a tenant would.
"""
import os
import pwd
import shutil
import subprocess

import harness

PG_BIN = os.environ.get("TROVE_PG_BINDIR", "/usr/lib/postgresql/15/bin")
OS_USER = "postgres"
ADMIN_USER = "postgres"
# Quotes and a backslash: the admin password itself must survive every path.
ADMIN_PASSWORD = "adm'in\"pw\\1 x"


def available():
    return os.path.exists(os.path.join(PG_BIN, "postgres")) and shutil.which("psql") is not None


def as_os_user(argv, home):
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", "env", f"HOME={home}",
            "LANG=C.UTF-8"] + list(argv)


def chown_os_user(path):
    pw = pwd.getpwnam(OS_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


class PgServer:
    """One server in <env>/<name>: data/ is the cluster, the directory itself
    holds the socket, the log and the WAL archive."""

    def __init__(self, env, name="pg", port=None):
        self.env = env
        self.name = name
        self.port = port or harness.free_port()
        self.host = "127.0.0.1"
        self.dir = env.mkdir(name, mode=0o755)
        chown_os_user(self.dir)
        self.datadir = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.archive = os.path.join(self.dir, "wal-archive")
        self.admin_password = ADMIN_PASSWORD
        env.callback(self.teardown)

    # -- the agent's view -------------------------------------------------
    def settings(self, **extra):
        s = {
            "host": self.host,
            "port": self.port,
            "socket_dir": self.dir,
            "user": ADMIN_USER,
            "password": self.admin_password,
            "datadir": self.datadir,
            "bindir": PG_BIN,
            "os_user": OS_USER,
            "wal_archive_dir": self.archive,
            "log_file": self.log,
            "sslmode": "disable",
        }
        s.update(extra)
        return s

    # -- server control ---------------------------------------------------
    def run_as_os_user(self, argv, check=True, **kw):
        return subprocess.run(as_os_user(argv, self.dir), stdin=subprocess.DEVNULL, capture_output=True,
                              check=check, **kw)

    def initdb(self):
        pwfile = os.path.join(self.dir, "initdb.pw")
        harness.secret_file(pwfile, self.admin_password + "\n")
        chown_os_user(pwfile)
        try:
            self.run_as_os_user([os.path.join(PG_BIN, "initdb"), "-D", self.datadir, "-U", ADMIN_USER,
                                 "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8",
                                 "--locale=C.UTF-8"])
        finally:
            os.unlink(pwfile)
        return self

    def start(self):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses={self.host}"
        r = self.run_as_os_user([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-t", "60", "-D", self.datadir,
                                 "-l", self.log, "-o", opts], check=False)
        if r.returncode != 0:
            raise AssertionError(f"postgres did not start: {r.stderr.decode()}\n{self.log_tail()}")
        return self

    def running(self):
        pidfile = os.path.join(self.datadir, "postmaster.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.readline().strip() or 0)
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False

    def stop(self, mode="fast"):
        if self.running():
            self.run_as_os_user([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-t", "60", "-D", self.datadir,
                                 "-m", mode], check=False)

    def kill(self):
        """SIGKILL the postmaster, the way a crash looks."""
        with open(os.path.join(self.datadir, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
        os.kill(pid, 9)

    def teardown(self):
        try:
            self.stop("immediate")
        except Exception:
            pass

    def log_tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    # -- the stock client -------------------------------------------------
    def psql_env(self, password):
        env = dict(os.environ)
        env.update({"PGPASSWORD": password, "PGSSLMODE": "disable", "PGGSSENCMODE": "disable",
                    "PGCONNECT_TIMEOUT": "5", "PGAPPNAME": "trove-test"})
        env.pop("PGPASSFILE", None)
        return env

    def psql_run(self, sql, database="postgres", user=ADMIN_USER, password=None):
        password = self.admin_password if password is None else password
        argv = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                "-U", user, "-d", database, "-c", sql]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=self.psql_env(password),
                              timeout=60)

    def psql(self, sql, database="postgres", user=ADMIN_USER, password=None):
        """Run sql as `user`; return stdout (unaligned, tuples only). Raises on error."""
        r = self.psql_run(sql, database, user, password)
        if r.returncode != 0:
            raise AssertionError(f"psql as {user!r} on {database!r} failed: {r.stderr.decode('utf-8', 'replace')}")
        return r.stdout.decode("utf-8")

    def rows(self, sql, database="postgres"):
        out = self.psql(sql, database)
        return [line.split("|") for line in out.splitlines() if line]

    def can_connect(self, user, password, database):
        r = self.psql_run("SELECT current_database()", database, user, password)
        return r.returncode == 0 and r.stdout.decode().strip() == database

    def connect_error(self, user, password, database):
        return self.psql_run("SELECT 1", database, user, password).stderr.decode("utf-8", "replace")


def new_server(env, name="pg", start=True):
    """A fresh, initialised server (started unless start=False)."""
    srv = PgServer(env, name).initdb()
    return srv.start() if start else srv
