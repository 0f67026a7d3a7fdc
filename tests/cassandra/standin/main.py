"""Starting and stopping a stand-in node: the launcher's options (those of
bin/cassandra), the startup sequence (load, join the ring, open the ports),
the computed system tables, and a graceful stop that flushes (drains) first."""
import datetime
import os
import signal
import sys
import threading
import time
import urllib.parse

import schema
from admin import AdminServer
from auth import Auth
from config import Config, ConfigError
from engine import Engine
from executor import Executor
from ring import Ring, RingError
from server import NativeServer

STARTUP_LINE = (
    "StandIn: this is a protocol-level stand-in for Apache Cassandra {version}, written for tests. It is NOT "
    "Cassandra. It speaks CQL native protocol v4 only and does not implement: BATCH, compression, TLS, TTL "
    "expiry, secondary indexes, materialized views, user-defined types and functions, ALTER TABLE, Paxos "
    "(IF clauses are checked but not linearizable), hinted handoff, repair, streaming by token range (every "
    "node holds every row), JMX (nodetool talks to an admin port), bcrypt password hashes (PBKDF2 is used).")

USAGE = "Usage: cassandra [-f] [-h] [-p pidfile] [-H dumpfile] [-E errorfile] [-R] [-v] [-D<name>=<value>]"
ROOT_REFUSAL = ("Running Cassandra as root user or group is not recommended - please start Cassandra using a "
                "different system user.\nIf you really want to force running Cassandra as root, use -R command "
                "line option.")


class Logger:
    def __init__(self, path, to_stdout):
        self.file = open(path, "a", buffering=1) if path else None
        self.to_stdout = to_stdout
        self.lock = threading.Lock()

    def __call__(self, message):
        level, _, text = message.partition(" ")
        if level not in ("INFO", "WARN", "ERROR", "DEBUG"):
            level, text = "INFO", message
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
        line = f"{level:<5} [{threading.current_thread().name}] {stamp} {text.strip()}\n"
        with self.lock:
            if self.file:
                self.file.write(line)
            if self.to_stdout:
                sys.stdout.write(line)
                sys.stdout.flush()


class Node:
    def __init__(self, config, log, jmx_port, properties):
        self.config = config
        self.log = log
        self.jmx_port = jmx_port
        self.properties = properties
        self.stop_event = threading.Event()
        self.started = time.time()
        self.drained = False
        self.trace_probability = 0.0
        self.engine = self.auth = self.executor = self.ring = self.native = self.admin = None

    # ---- computed tables ----
    def _local_rows(self, table):
        st = self.engine.state
        c = self.config
        row = {"key": "local", "bootstrapped": "COMPLETED" if st["bootstrapped"] == "COMPLETED" else "IN_PROGRESS",
               "broadcast_address": c.listen_address, "broadcast_port": c.storage_port,
               "cluster_name": st.get("cluster_name", c["cluster_name"]), "cql_version": schema.CQL_VERSION,
               "data_center": c.dc,
               "gossip_generation": st["generation"], "host_id": self.engine.host_id,
               "listen_address": c.listen_address, "listen_port": c.storage_port, "native_protocol_version": "4",
               "partitioner": c["partitioner"], "rack": c.rack, "release_version": schema.RELEASE_VERSION,
               "rpc_address": c.broadcast_rpc_address, "rpc_port": c.native_port,
               "schema_version": self.engine.schema_version(),
               "tokens": table.columns["tokens"].type.normalize(st["tokens"]), "truncated_at": None}
        table.rows = {("local",): row}

    def _peer_rows(self, table):
        import uuid
        rows = {}
        for info, _ in self.ring.peer_list():
            rows[(info["address"],)] = {
                "peer": info["address"], "data_center": info["dc"], "host_id": uuid.UUID(info["host_id"]),
                "preferred_ip": None, "rack": info["rack"], "release_version": info.get("release_version"),
                "rpc_address": info.get("rpc_address"),
                "schema_version": uuid.UUID(info["schema_version"]) if info.get("schema_version") not in
                (None, "None") else None,
                "tokens": table.columns["tokens"].type.normalize(info.get("tokens") or [])}
        table.rows = rows

    def _settings_rows(self, table):
        table.rows = {(n,): {"name": n, "value": v} for n, v in self.config.settings_rows()}

    def _virtual_schema_rows(self, name):
        def refresh(table):
            rows = schema.virtual_schema_rows(self.engine.keyspaces)[("keyspaces", "tables", "columns").index(name)]
            table.rows = {table.key_of(r): r for r in rows}
        return refresh

    def _wire_tables(self):
        ks = self.engine.keyspaces
        ks["system"].tables["local"].refresh = self._local_rows
        ks["system"].tables["peers"].refresh = self._peer_rows
        ks["system_views"].tables["settings"].refresh = self._settings_rows
        for name in ("keyspaces", "tables", "columns"):
            ks["system_virtual_schema"].tables[name].refresh = self._virtual_schema_rows(name)

    # ---- lifecycle ----
    def start(self):
        self.log(STARTUP_LINE.format(version=schema.RELEASE_VERSION))
        c = self.config
        self.log(f"INFO  Configuration location: file:{c.path}")
        self.engine = Engine(c, self.log)
        self.engine.load_state()
        if self.engine.state["bootstrapped"] == "DECOMMISSIONED" and \
                self.properties.get("cassandra.override_decommission") != "true":
            raise ConfigError("This node was decommissioned and will not rejoin the ring unless "
                              "cassandra.override_decommission=true has been set, or all existing data is removed "
                              "and the node is bootstrapped again")
        self._check_cluster_name()
        peers_table = self.engine.keyspaces["system"].tables["peers"]
        self.engine.load()
        remembered = list(peers_table.rows.values())
        self.auth = Auth(self.engine, c)
        self.executor = Executor(self.engine, self.auth, c)
        self.ring = Ring(self.engine, c, self.log)
        self.engine.ring = self.ring
        self.native = NativeServer(self)
        self.engine.listeners.append(self.native.broadcast)
        self.ring.restore_peers(remembered)
        self._wire_tables()
        self.ring.start_listener()
        self._join()
        if self.auth.ensure_default_role():
            self.log("INFO  Created default superuser role 'cassandra'")
            self.engine.auth_changed()
        self.engine.flush()
        self.ring.start_gossip()
        self.admin = AdminServer(self, self.jmx_port)
        self.admin.start()
        self.log(f"INFO  JMX-equivalent admin port listening on {c.listen_address}:{self.jmx_port}")
        if c["start_native_transport"]:
            self.native.start()
            self.log(f"INFO  Starting listening for CQL clients on /{c.rpc_address}:{c.native_port} (unencrypted)...")
        self.log("INFO  Startup complete")

    def _check_cluster_name(self):
        """system.local keeps the name of the ring the node first started in; like Cassandra, a node
        configured with another name refuses to start (renaming is UPDATE system.local, flush, restart)."""
        st, configured = self.engine.state, self.config["cluster_name"]
        saved = st.get("cluster_name")
        if saved is None:
            st["cluster_name"] = configured
            self.engine.save_state()
        elif saved != configured:
            raise ConfigError(f"Saved cluster name {saved} != configured name {configured}")

    def _join(self):
        c = self.config
        seeds = [s.split(":")[0] for s in c.seeds]
        is_seed = c.listen_address in seeds
        st = self.engine.state
        bootstrap = bool(c["auto_bootstrap"]) and not is_seed and st["bootstrapped"] != "COMPLETED"
        delay = int(self.properties.get("cassandra.ring_delay_ms", "30000")) / 1000
        try:
            joined = self.ring.join(seeds, is_seed or st["bootstrapped"] == "COMPLETED", bootstrap, delay)
        except RingError as exc:
            raise ConfigError(str(exc))
        self.log(f"INFO  {'Joined the ring through the seeds' if joined else 'No other node reachable; starting alone'}")
        st["bootstrapped"] = "COMPLETED"
        self.engine.save_state()

    def drain(self):
        self.log("INFO  DRAINING: starting drain process")
        self.native.stop()
        self.engine.flush()
        self.engine.accepting_writes = False
        self.drained = True
        self.log("INFO  DRAINED")

    def decommissioned(self):
        self.native.stop()
        self.engine.flush()
        self.engine.state["bootstrapped"] = "DECOMMISSIONED"
        self.engine.save_state()

    def request_stop(self):
        self.stop_event.set()

    def shutdown(self):
        self.log("INFO  Shutting down: draining first")
        for part in (self.native, self.admin):
            if part is not None:
                part.stop()
        if self.engine is not None and not self.drained:
            try:
                self.engine.flush()
            except Exception as exc:  # keep stopping even if the last flush fails
                self.log(f"ERROR flush at shutdown failed: {exc}")
        if self.ring is not None:
            self.ring.stop()
        if self.engine is not None:
            self.engine.commitlog.close()
        self.log("INFO  Shutdown complete")


def parse_args(argv):
    opts = {"foreground": False, "pidfile": None, "allow_root": False, "properties": {}}
    it = iter(argv)
    for a in it:
        if a == "-f":
            opts["foreground"] = True
        elif a == "-p":
            opts["pidfile"] = next(it, None)
        elif a == "-R":
            opts["allow_root"] = True
        elif a in ("-H", "-E"):
            next(it, None)
        elif a == "-v":
            opts["version"] = True
        elif a == "-h":
            opts["help"] = True
        elif a.startswith("-D") and "=" in a:
            k, v = a[2:].split("=", 1)
            opts["properties"][k] = v
        else:
            raise ConfigError(f"Unknown option: {a}\n{USAGE}")
    return opts


def config_path(props):
    url = props.get("cassandra.config")
    if url:
        parsed = urllib.parse.urlparse(url)
        return urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else url
    conf = os.environ.get("CASSANDRA_CONF")
    if conf:
        return os.path.join(conf, "cassandra.yaml")
    raise ConfigError("Cannot locate cassandra.yaml: pass -Dcassandra.config=file:///path/cassandra.yaml or set "
                      "CASSANDRA_CONF")


def daemonize(log_dir):
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def launch(argv):
    try:
        opts = parse_args(argv)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if opts.get("help"):
        print(USAGE)
        return 0
    if opts.get("version"):
        print(schema.RELEASE_VERSION)
        return 0
    if os.geteuid() == 0 and not opts["allow_root"]:
        print(ROOT_REFUSAL, file=sys.stderr)
        return 1
    props = opts["properties"]
    try:
        config = Config(config_path(props), props)
    except ConfigError as exc:
        print(f"Exception (org.apache.cassandra.exceptions.ConfigurationException) encountered during startup: "
              f"{exc}", file=sys.stderr)
        return 3
    log_dir = props.get("cassandra.logdir") or os.environ.get("CASSANDRA_LOG_DIR") or \
        os.path.join(os.path.dirname(config.data_dir), "logs")
    os.makedirs(log_dir, exist_ok=True)
    if not opts["foreground"]:
        daemonize(log_dir)
    if opts["pidfile"]:
        with open(opts["pidfile"], "w") as f:
            f.write(f"{os.getpid()}\n")
    log = Logger(os.path.join(log_dir, "system.log"), opts["foreground"])
    jmx = int(props.get("cassandra.jmx.local.port") or os.environ.get("JMX_PORT") or 7199)
    node = Node(config, log, jmx, props)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: node.request_stop())
    try:
        node.start()
    except (ConfigError, OSError, Exception) as exc:
        msg = getattr(exc, "message", None) or str(exc)
        log(f"ERROR Exception encountered during startup: {msg}")
        print(f"Exception encountered during startup: {msg}", file=sys.stderr)
        node.shutdown()
        return 3
    while not node.stop_event.wait(0.5):
        pass
    node.shutdown()
    return 0
