"""trove-plugin-check's description of Cassandra (plugin "cassandra"), on the
protocol-level stand-in under tests/cassandra/standin (no Cassandra server can
be installed here; see its README for what it does not do). Everything here
reads and writes with the DataStax Python driver (python3-cassandra), never
through the agent.

A description's servers are started the way an operator would start a node:
a cassandra.yaml like the one the plugin generates, the launcher in the
foreground with a pid file the plugin takes over, and the plugin's admin role
made with the default superuser, which then loses its login. The nodes of
one check share their ports and differ by address (127.0.0.1, 127.0.0.2, as
ccm does), so two of them can form a ring.

StandinNode is also what tests/cassandra/test_plugin_*.py use, with or
without starting the node (the plugin's prepare may start it instead).
"""
import logging
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "cassandra"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "kit", "plugin-check"))

from trove_check.datastore import Datastore, Server  # noqa: E402
import standin_cluster  # noqa: E402

from cassandra import AuthenticationFailed, InvalidRequest, Unauthorized  # noqa: E402
from cassandra.auth import PlainTextAuthProvider  # noqa: E402
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable  # noqa: E402
from cassandra.policies import WhiteListRoundRobinPolicy  # noqa: E402

logging.getLogger("cassandra").setLevel(logging.CRITICAL)

LAUNCHER = standin_cluster.LAUNCHER
NODETOOL = standin_cluster.NODETOOL
ADMIN_USER = "trove_admin"
ADMIN_PASSWORD = "check 'admin' \"pw\"\\ é"
ROW_TABLE = "rows"


def cql_literal(text):
    return "'" + text.replace("'", "''") + "'"


def cql_ident(name):
    return '"' + name.replace('"', '""') + '"'


def shared_ports(env, count=3):
    """One native, storage and admin (JMX) port for every node of env, free on all their addresses."""
    ports = getattr(env, "cassandra_ports", None)
    if ports is None:
        ports = standin_cluster.free_ports(3, tuple(f"127.0.0.{i + 1}" for i in range(count)))
        env.cassandra_ports = ports
    return ports


class Session:
    """A driver session on one node (closed by close() or the with block)."""

    def __init__(self, host, port, user, password, timeout=20):
        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=timeout)
        self.cluster = Cluster([host], port=port, protocol_version=4, auth_provider=PlainTextAuthProvider(user, password),
                               execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10,
                               control_connection_timeout=10, schema_metadata_enabled=False,
                               token_metadata_enabled=False)
        try:
            self.session = self.cluster.connect()
        except Exception:
            self.cluster.shutdown()
            raise

    def execute(self, *args, **kw):
        return self.session.execute(*args, **kw)

    def prepare(self, text):
        return self.session.prepare(text)

    def close(self):
        self.cluster.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class StandinNode(Server):
    """A stand-in node at 127.0.0.<index + 1> with the plugin's settings for it."""

    def __init__(self, env, index, start=True, admin_password=ADMIN_PASSWORD, extra_settings=None):
        native, storage, jmx = shared_ports(env)
        self.env = env
        self.index = index
        self.address = f"127.0.0.{index + 1}"
        self.dir = env.mkdir(f"cassandra{index}")
        self.conf_dir = os.path.join(self.dir, "conf")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_dir = os.path.join(self.dir, "logs")
        self.pid_file = os.path.join(self.dir, "run", "cassandra.pid")
        self.admin_password = admin_password
        self.jmx_port = jmx
        settings = {
            "cassandra": LAUNCHER, "nodetool": NODETOOL, "config_dir": self.conf_dir, "data_dir": self.data_dir,
            "commitlog_dir": os.path.join(self.dir, "commitlog"), "hints_dir": os.path.join(self.dir, "hints"),
            "saved_caches_dir": os.path.join(self.dir, "saved_caches"), "log_dir": self.log_dir,
            "pid_file": self.pid_file, "listen_address": self.address, "native_port": native,
            "storage_port": storage, "jmx_port": jmx, "num_tokens": 4, "admin_user": ADMIN_USER,
            "admin_password": admin_password, "start_timeout": 90, "stop_timeout": 30,
        }
        settings.update(extra_settings or {})
        super().__init__(settings, self.address, native)
        self.proc = None
        env.callback(self.stop)
        if start:
            self.start()
            self.bootstrap_admin()

    # ---- the process ----
    def write_yaml(self):
        """The cassandra.yaml an operator (or the plugin) writes for this node."""
        os.makedirs(self.conf_dir, exist_ok=True)
        s = self.settings
        lines = [f"cluster_name: 'Test Cluster'", f"num_tokens: {s['num_tokens']}",
                 f"listen_address: {self.address}", f"rpc_address: {self.address}",
                 f"native_transport_port: {s['native_port']}", f"storage_port: {s['storage_port']}",
                 "data_file_directories:", f"  - {self.data_dir}", f"commitlog_directory: {s['commitlog_dir']}",
                 f"hints_directory: {s['hints_dir']}", f"saved_caches_directory: {s['saved_caches_dir']}",
                 "authenticator: PasswordAuthenticator", "authorizer: CassandraAuthorizer",
                 "role_manager: CassandraRoleManager", "partitioner: org.apache.cassandra.dht.Murmur3Partitioner",
                 "commitlog_sync: periodic", "commitlog_sync_period_in_ms: 10000", "endpoint_snitch: SimpleSnitch",
                 "auto_bootstrap: true", "seed_provider:",
                 "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider", "    parameters:",
                 f"      - seeds: \"{self.address}\""]
        with open(os.path.join(self.conf_dir, "cassandra.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.write_yaml()
        os.makedirs(os.path.dirname(self.pid_file), exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        argv = [LAUNCHER, "-f", "-R", "-p", self.pid_file,
                f"-Dcassandra.config=file://{self.conf_dir}/cassandra.yaml",
                f"-Dcassandra.jmx.local.port={self.jmx_port}", f"-Dcassandra.logdir={self.log_dir}"]
        self.log = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the stand-in at {self.address} exited: {self.log_tail()}")
            if standin_cluster.harness.tcp_open(self.address, self.port):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the stand-in at {self.address} did not open its native port")

    def pid(self):
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def stop(self):
        """Stops the node whoever started it (the plugin's own starts are nobody's child here)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                if not self.alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)

    @staticmethod
    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(") ", 1)[1][0] != "Z"
        except (OSError, IndexError):
            return False

    def log_tail(self, n=40):
        path = os.path.join(self.log_dir, "system.log")
        try:
            with open(path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def nodetool(self, *args, check=True):
        r = subprocess.run([NODETOOL, "-h", self.address, "-p", str(self.jmx_port), *args], capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"nodetool {' '.join(args)}: {r.stderr}")
        return r

    # ---- roles ----
    def bootstrap_admin(self):
        """The plugin's admin role, made with the default superuser, which then loses its login."""
        deadline = time.monotonic() + 30
        while True:
            try:
                s = self.session("cassandra", "cassandra")
                break
            except NoHostAvailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        with s:
            s.execute(f"CREATE ROLE {cql_ident(ADMIN_USER)} WITH PASSWORD = {cql_literal(self.admin_password)} "
                      "AND SUPERUSER = true AND LOGIN = true")
        with self.session() as s:
            s.execute("ALTER ROLE cassandra WITH PASSWORD = 'not-the-default-any-more' AND LOGIN = false "
                      "AND SUPERUSER = false")

    def session(self, user=ADMIN_USER, password=None, host=None):
        return Session(host or self.address, self.port, user, self.admin_password if password is None else password)


class CassandraDatastore(Datastore):
    plugin = "cassandra"
    # Replication is per keyspace across the ring: a node has no primary or replica.
    expect_unsupported = {"replication.snapshot", "replication.attach", "replication.detach",
                          "replication.promote", "replication.demote", "replication.read_only",
                          "replication.position", "replication.wait", "replication.status", "replication.compare",
                          "replication.credentials"}
    databases = True
    test_database = "conformance"
    live_parameter = ("compaction_throughput_mb_per_sec", "32")
    restart_parameter = ("concurrent_reads", "64")
    incremental_backup = False
    database_option = ("replication_factor", "2")

    def start_server(self, env, index):
        return StandinNode(env, index)

    def write_rows(self, server, database, rows):
        with server.session() as s:
            s.execute(f"CREATE TABLE IF NOT EXISTS {cql_ident(database)}.{ROW_TABLE} (k text PRIMARY KEY, v text)")
            insert = s.prepare(f"INSERT INTO {cql_ident(database)}.{ROW_TABLE} (k, v) VALUES (?, ?)")
            for k, v in rows:
                s.execute(insert, (k, v))

    def read_rows(self, server, database):
        with server.session() as s:
            try:
                rows = s.execute(f"SELECT k, v FROM {cql_ident(database)}.{ROW_TABLE}")
            except InvalidRequest:   # no such keyspace or table: no rows
                return []
            return sorted((r.k, r.v) for r in rows)

    def can_read(self, server, user, password, database):
        with server.session() as s:
            if not s.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                             (database,)).one():
                return False
            s.execute(f"CREATE TABLE IF NOT EXISTS {cql_ident(database)}.{ROW_TABLE} (k text PRIMARY KEY, v text)")
        try:
            with server.session(user, password) as s:
                s.execute(f"SELECT k FROM {cql_ident(database)}.{ROW_TABLE} LIMIT 1")
                return True
        except (AuthenticationFailed, Unauthorized):
            return False
        except NoHostAvailable as e:
            # The driver wraps a refused login in NoHostAvailable; a node that
            # cannot be reached proves neither access nor its absence.
            errors = list(getattr(e, "errors", {}).values())
            if errors and all(isinstance(x, (AuthenticationFailed, Unauthorized)) or "Bad credentials" in str(x)
                              for x in errors):
                return False
            raise AssertionError(f"login as {user!r} was neither allowed nor refused: {e}") from e

    def read_parameter(self, server, name):
        with server.session() as s:
            row = s.execute("SELECT value FROM system_views.settings WHERE name = %s", (name,)).one()
            return row.value if row else None

    def read_database_option(self, server, database, option):
        with server.session() as s:
            row = s.execute("SELECT replication, durable_writes FROM system_schema.keyspaces WHERE "
                            "keyspace_name = %s", (database,)).one()
        if row is None:
            return None
        if option == "durable_writes":
            return str(row.durable_writes).lower()
        return dict(row.replication).get(option)

    def cluster_members(self, server):
        with server.session() as s:
            local = s.execute("SELECT rpc_address FROM system.local WHERE key = 'local'").one()
            peers = s.execute("SELECT rpc_address FROM system.peers")
            return {f"{local.rpc_address}:{server.port}"} | {f"{p.rpc_address}:{server.port}" for p in peers}


DATASTORE = CassandraDatastore()
