"""The server process: startup (options, keyFile, data directory, listeners,
pid file, optional fork), one thread per client connection, the periodic
tasks (cursor timeout, diagnostic data) and an orderly shutdown on SIGTERM,
SIGINT or the shutdown command. All shared state sits behind one lock.
"""
import ipaddress
import os
import signal
import socket
import sys
import threading
import time

from . import bsoncodec, cmd_admin, cmd_auth, cmd_crud, cmd_ddl, cmd_repl, legacy, wire  # noqa: F401
from .auth import Users
from .bsoncodec import BSONError, DateTime, Int64, ObjectId
from .config import OptionsError, parse_args
from .cursors import Cursors
from .datastore import DataStore
from .dispatch import CloseConnection, run_command
from .errors import MongoError
from .log import Logger
from .parameters import Parameters, StartupError
from .replication import ReplicationCoordinator
from .storage import Storage, StorageError

MAX_WIRE_VERSION = 13  # MongoDB 5.0
BANNER = ("mongod stand-in: a Python test double speaking the MongoDB 5.0 wire protocol -- NOT MongoDB. "
          "It does not implement: WiredTiger or any query planner/indexes beyond uniqueness, transactions, "
          "change streams, sharding, TLS, compression, x.509/LDAP/Kerberos, user-defined roles, "
          "collations, text/geo/TTL indexes, most aggregation stages, rollback, chained or priority "
          "takeover replication, arbiters. See tests/mongodb/standin/README.md.")
STANDIN_NOTE = "protocol-level stand-in for tests, not MongoDB"


class Connection:
    """One client connection and its authentication state."""

    def __init__(self, server, sock, addr, conn_id):
        self.server = server
        self.sock = sock
        self.id = conn_id
        self.peer = f"{addr[0]}:{addr[1]}"
        try:
            self.is_local = ipaddress.ip_address(addr[0].split("%")[0]).is_loopback
        except ValueError:
            self.is_local = False
        self.ctx_name = f"conn{conn_id}"
        self.users = []
        self.conversations = {}
        self.next_conversation = 1
        self.last_optime = None
        self.request_ids = 0

    def current_identities(self, server):
        out = []
        for user, db in list(self.users):
            ident = server.users.identity(user, db)
            if ident is None:  # the user was dropped: the session loses it, as in mongod
                self.users.remove((user, db))
                continue
            out.append(ident)
        return out

    def login(self, user, db):
        self.users = [(u, d) for (u, d) in self.users if d != db] + [(user, db)]

    def logout(self, db):
        self.users = [(u, d) for (u, d) in self.users if d != db]

    def add_conversation(self, conv):
        cid = self.next_conversation
        self.next_conversation += 1
        self.conversations[cid] = conv
        return cid

    def next_request_id(self):
        self.request_ids += 1
        return self.request_ids

    def serve(self):
        stream = self.sock.makefile("rb")
        try:
            while not self.server.shutting_down:
                msg = wire.read_message(stream)
                if msg is None:
                    break
                request_id, _, opcode, message = msg
                with self.server.lock:
                    self.server.counters["bytesIn"] += len(message)
                    self.server.counters["requests"] += 1
                if not self.handle(request_id, opcode, message):
                    break
        except (wire.ProtocolError, UnicodeDecodeError) as exc:
            self.server.log.warning("NETWORK", self.ctx_name, "Closing connection after a protocol error",
                                    {"remote": self.peer, "error": str(exc)})
        except (OSError, CloseConnection):
            pass
        finally:
            try:
                stream.close()
                self.sock.close()
            except OSError:
                pass

    def handle(self, request_id, opcode, message):
        """Handle one message; False closes the connection."""
        try:
            if opcode == wire.OP_MSG:
                request = wire.parse_op_msg(request_id, message)
            elif opcode == wire.OP_QUERY:
                request = wire.parse_op_query(request_id, message)
                if request.collection != "$cmd":
                    legacy.handle_query(self, request)
                    return True
            elif opcode == wire.OP_GET_MORE:
                legacy.handle_get_more(self, request_id, message)
                return True
            elif opcode == wire.OP_KILL_CURSORS:
                legacy.handle_kill_cursors(self, message)
                return True
            else:
                self.server.log.warning("NETWORK", self.ctx_name, "Closing connection: unsupported opcode",
                                        {"remote": self.peer, "opCode": opcode,
                                         "note": "OP_COMPRESSED is never advertised; legacy opcodes are refused"})
                return False
        except BSONError as exc:
            if opcode != wire.OP_KILL_CURSORS:
                self._reply(opcode, request_id, MongoError(22, f"invalid BSON in request: {exc}").reply())
            return True
        except (wire.ProtocolError, UnicodeDecodeError) as exc:
            if opcode != wire.OP_KILL_CURSORS:
                self._reply(opcode, request_id, MongoError(17, str(exc)).reply())
            return True
        reply = run_command(self.server, self, request)
        if request.more_to_come:
            return True
        self._reply(opcode, request_id, reply)
        return True

    def _reply(self, opcode, request_id, reply):
        try:
            if opcode in (wire.OP_QUERY, wire.OP_GET_MORE):
                data = wire.op_reply(request_id, [reply], self.next_request_id())
            else:
                data = wire.op_msg(request_id, reply, self.next_request_id())
        except BSONError as exc:
            data = wire.op_msg(request_id, MongoError(1, f"reply could not be encoded: {exc}").reply(),
                               self.next_request_id())
        self._send(data)

    def send_raw(self, data):
        self._send(data)

    def _send(self, data):
        with self.server.lock:
            self.server.counters["bytesOut"] += len(data)
        self.sock.sendall(data)


class Server:
    def __init__(self, options):
        self.options = options
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.op_local = threading.local()
        self.parameters = Parameters()
        self.port = options.get("net.port", 27017)
        self.host_name = f"{socket.gethostname()}:{self.port}"
        self.instance_id = ObjectId()
        self.start_monotonic = time.monotonic()
        self.shutting_down = False
        self.shutdown_event = threading.Event()
        self.fsync_lock_count = 0
        self.connections = {}
        self.next_conn_id = 1
        self.listeners = []
        self.counters = {k: 0 for k in ("insert", "query", "update", "delete", "getmore", "command", "bytesIn",
                                        "bytesOut", "requests", "connectionsCreated", "userAsserts")}
        self.auth_enabled = (options.get("security.authorization") == "enabled"
                             or bool(options.get("security.keyFile")))
        self.log = Logger(options.get("systemLog.path"), options.get("systemLog.logAppend", False),
                          lambda: self.parameters.get("logLevel"))
        self.storage = Storage(options.get("storage.dbPath", "/data/db"))
        self.users = Users(self)
        self.datastore = DataStore(self)
        self.cursors = Cursors()
        self.repl = None
        self.key = None

    # ---- startup ----

    def start(self):
        self.log.info("CONTROL", "main", "mongod stand-in starting", {"note": BANNER, "pid": os.getpid(),
                                                                      "port": self.port,
                                                                      "dbPath": self.storage.dbpath})
        try:
            self.parameters.apply_startup(self.options.get("setParameter", {}))
        except StartupError as exc:
            raise StartupFailure(str(exc), 2) from None
        if self.options.get("systemLog.verbosity"):
            self.parameters.values["logLevel"] = min(5, int(self.options.get("systemLog.verbosity")))
        key_path = self.options.get("security.keyFile")
        if key_path:
            self.key = read_key_file(key_path)
            self.users.set_key(self.key)
        try:
            self.storage.open()
        except StorageError as exc:
            raise StartupFailure(str(exc), exc.exit_code) from None
        if self.storage.unclean:
            self.log.warning("STORAGE", "initandlisten", "Detected unclean shutdown - mongod.lock is not empty",
                             {"lockFile": os.path.join(self.storage.dbpath, "mongod.lock")})
        with self.lock:
            self._startup_documents()
            if self.options.get("replication.replSetName"):
                self.repl = ReplicationCoordinator(self, self.options.get("replication.replSetName"))
                try:
                    self.repl.load()
                except MongoError as exc:
                    raise StartupFailure(f"cannot load the replica set state: {exc.message}", 100) from None
        self._listen()
        pid_path = self.options.get("processManagement.pidFilePath")
        if pid_path:
            with open(pid_path, "w") as f:
                f.write(f"{os.getpid()}\n")
        for target in (self._reaper, self._ftdc):
            threading.Thread(target=target, daemon=True).start()
        if self.repl is not None:
            self.repl.start()
        self.log.info("NETWORK", "listener", "Waiting for connections", {"port": self.port, "ssl": "off"})

    def _startup_documents(self):
        coll, created = self.datastore.collection("local", "startup_log", options={"capped": True,
                                                                                      "size": 10485760})
        now = DateTime.now()
        coll.insert({"_id": f"{socket.gethostname()}-{now.ms}", "hostname": socket.gethostname(),
                     "startTime": now, "startTimeLocal": time.ctime(), "cmdLine": self.options.parsed(),
                     "pid": Int64(os.getpid()), "buildinfo": {"version": cmd_admin.VERSION, "standin": True}})
        if not self.options.get("replication.replSetName"):
            self.ensure_fcv()
        self.storage.commit()

    def ensure_fcv(self):
        coll, _ = self.datastore.collection("admin", "system.version")
        if coll.find_id("featureCompatibilityVersion") is None:
            self.datastore.insert(coll, {"_id": "featureCompatibilityVersion", "version": "5.0"})

    def ensure_auth_schema(self):
        coll, _ = self.datastore.collection("admin", "system.version")
        if coll.find_id("authSchema") is None:
            self.datastore.insert(coll, {"_id": "authSchema", "currentVersion": 5})

    def _bind_addresses(self):
        if self.options.get("net.bindIpAll"):
            return ["0.0.0.0"]
        raw = self.options.get("net.bindIp", "localhost")
        out = []
        for item in raw.split(","):
            item = item.strip()
            if item == "localhost":
                item = "127.0.0.1"
            if item and item not in out:
                out.append(item)
        return out

    def _listen(self):
        for address in self._bind_addresses():
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, self.port))
            except OSError as exc:
                sock.close()
                raise StartupFailure(f"Error setting up listener: SocketException: {exc.strerror} "
                                     f"({address}:{self.port})", 48) from None
            sock.listen(128)
            self.listeners.append(sock)
            threading.Thread(target=self._accept_loop, args=(sock,), daemon=True).start()

    def _accept_loop(self, listener):
        while not self.shutting_down:
            try:
                sock, addr = listener.accept()
            except OSError:
                if self.shutting_down:
                    return
                time.sleep(0.05)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                conn = Connection(self, sock, addr, self.next_conn_id)
                self.next_conn_id += 1
                self.connections[conn.id] = conn
                self.counters["connectionsCreated"] += 1
            if not self.parameters.get("quiet"):
                self.log.info("NETWORK", "listener", "Connection accepted",
                              {"remote": conn.peer, "connectionId": conn.id,
                               "connectionCount": len(self.connections)})
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.serve()
        finally:
            with self.lock:
                self.connections.pop(conn.id, None)
            if not self.parameters.get("quiet"):
                self.log.info("NETWORK", conn.ctx_name, "Connection ended",
                              {"remote": conn.peer, "connectionId": conn.id,
                               "connectionCount": len(self.connections)})

    # ---- periodic tasks ----

    def _reaper(self):
        while not self.shutdown_event.wait(5):
            with self.lock:
                self.cursors.reap(int(self.parameters.get("cursorTimeoutMillis")))

    def _ftdc(self):
        """diagnostic.data: periodic metrics written even under the fsync lock, as mongod's FTDC does."""
        directory = os.path.join(self.storage.dbpath, "diagnostic.data")
        path = None
        while True:
            with self.lock:
                period = self.parameters.get("diagnosticDataCollectionPeriodMillis") / 1000.0
                enabled = self.parameters.get("diagnosticDataCollectionEnabled")
                limit = self.parameters.get("diagnosticDataCollectionFileSizeMB") * 1024 * 1024
                sample = {"start": DateTime.now(), "connections": len(self.connections),
                          "opcounters": {k: Int64(self.counters[k]) for k in
                                         ("insert", "query", "update", "delete", "getmore", "command")},
                          "uptimeMillis": Int64(int((time.monotonic() - self.start_monotonic) * 1000))}
            if self.shutdown_event.wait(period):
                return
            if not enabled:
                continue
            try:
                if path is None or os.path.getsize(path) > limit:
                    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
                    path = os.path.join(directory, f"metrics.{stamp}-00000")
                with open(path, "ab") as f:
                    f.write(bsoncodec.encode(sample))
            except OSError:
                path = None

    # ---- services for commands ----

    def localhost_exception_open(self):
        return bool(self.parameters.get("enableLocalhostAuthBypass")) and not self.users.any_exist()

    def wait_while_fsync_locked(self):
        while self.fsync_lock_count and not self.shutting_down:
            self.cond.wait(1.0)
        if self.shutting_down:
            raise MongoError(91, "The server is in quiesce mode and will shut down")

    def note_optime(self, optime):
        self.op_local.optime = optime

    def take_optime(self, conn):
        optime = getattr(self.op_local, "optime", None)
        self.op_local.optime = None
        if optime is not None:
            conn.last_optime = optime
        return optime

    def parameters_changed(self, names):
        if "logLevel" in names:
            self.log.info("CONTROL", "conn", "logLevel changed", {"logLevel": self.parameters.get("logLevel")})

    def hello_reply(self, ctx):
        cmd = ctx.cmd
        is_hello = ctx.name == "hello"
        reply = {}
        if cmd.get("helloOk"):
            reply["helloOk"] = True
        if self.repl is not None:
            reply.update(self.repl.hello_fields(is_hello))
        else:
            reply["isWritablePrimary" if is_hello else "ismaster"] = True
        reply.update({"maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": wire.MAX_MESSAGE_SIZE,
                      "maxWriteBatchSize": 100000, "localTime": DateTime.now(),
                      "logicalSessionTimeoutMinutes": self.parameters.get("localLogicalSessionTimeoutMinutes"),
                      "connectionId": ctx.conn.id, "minWireVersion": 0, "maxWireVersion": MAX_WIRE_VERSION,
                      "readOnly": False})
        mechs_for = cmd.get("saslSupportedMechs")
        if isinstance(mechs_for, str) and "." in mechs_for:
            db, _, user = mechs_for.partition(".")
            doc = self.users.find(user, db)
            if doc is not None:
                enabled = self.parameters.get("authenticationMechanisms")
                reply["saslSupportedMechs"] = [m for m in Users.mechanisms_of(doc) if m in enabled]
        if "speculativeAuthenticate" in cmd:
            spec = cmd_auth.speculative(ctx, cmd["speculativeAuthenticate"])
            if spec is not None:
                reply["speculativeAuthenticate"] = spec
        if "client" in cmd and not getattr(ctx.conn, "metadata_logged", False):
            ctx.conn.metadata_logged = True
            self.log.info("NETWORK", ctx.conn.ctx_name, "client metadata",
                          {"remote": ctx.conn.peer, "client": ctx.conn.ctx_name, "doc": _printable(cmd["client"])})
        reply["ok"] = 1.0
        return reply

    # ---- shutdown ----

    def begin_shutdown(self, reason):
        with self.lock:
            if self.shutting_down:
                return
            self.shutting_down = True
            self.cond.notify_all()
        self.log.info("CONTROL", "main", "Shutting down", {"reason": reason})
        self.shutdown_event.set()

    def finish_shutdown(self):
        for sock in self.listeners:
            try:
                sock.close()
            except OSError:
                pass
        if self.repl is not None:
            self.repl.stop()
        with self.lock:
            self.storage.close()
            conns = list(self.connections.values())
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.log.info("CONTROL", "main", "Now exiting", {})
        self.log.info("CONTROL", "main", "Shutting down with code", {"exitCode": 0})
        self.log.close()


class StartupFailure(Exception):
    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def _printable(value):
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def read_key_file(path):
    """The keyFile secret as mongod reads it: whitespace removed, base64 characters only, 6-1024 of them."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise StartupFailure(f"error getting file {path}: {exc.strerror}", 1) from None
    if st.st_mode & 0o077:
        raise StartupFailure(f"permissions on {path} are too open", 1)
    with open(path, "rb") as f:
        raw = f.read()
    key = bytes(b for b in raw if b not in b" \t\r\n\v\f").decode("ascii", "replace")
    if len(key) < 6:
        raise StartupFailure(f"security key in {path} has length {len(key)}, must be between 6 and 1024 chars", 1)
    if len(key) > 1024:
        raise StartupFailure(f"security key in {path} has length {len(key)}, must be between 6 and 1024 chars", 1)
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for c in key:
        if c not in allowed:
            raise StartupFailure(f"invalid char in key file {path}: {c!r}", 1)
    return key


USAGE = """Usage: mongod [options]   (the mongod stand-in: a test double, not MongoDB)

Options:
  -f, --config FILE        YAML configuration file (mongod.conf subset)
  --port N                 listen port (default 27017)
  --bind_ip A[,B]          addresses to listen on (default localhost)
  --bind_ip_all            listen on all IPv4 addresses
  --dbpath DIR             data directory (default /data/db)
  --auth / --noauth        require authentication (implied by --keyFile)
  --keyFile FILE           shared secret members authenticate each other with
  --replSet NAME           run as a replica set member
  --oplogSize MB           oplog size
  --logpath FILE, --logappend
  --pidfilepath FILE, --fork
  --setParameter NAME=VALUE
  -v[v...], --quiet, --version, --help
"""


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    try:
        options, action = parse_args(argv)
    except OptionsError as exc:
        print(str(exc), file=sys.stderr)
        print("try 'mongod --help' for more information", file=sys.stderr)
        return 2
    if action == "version":
        print(f"db version v{cmd_admin.VERSION} (mongod stand-in; {STANDIN_NOTE})")
        return 0
    if action == "help":
        print(USAGE)
        return 0
    print(BANNER, flush=True)
    ready_pipe = None
    if options.get("processManagement.fork"):
        ready_pipe = _fork()
        if ready_pipe is None:
            return 0
    server = Server(options)
    try:
        server.start()
    except StartupFailure as exc:
        server.log.error("CONTROL", "initandlisten", "Fatal startup error", {"error": str(exc)})
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        if ready_pipe is not None:
            os.write(ready_pipe, f"{exc.exit_code}".encode())
        try:
            server.storage.close()
        except Exception:
            pass
        return exc.exit_code
    if ready_pipe is not None:
        os.write(ready_pipe, b"0")
        os.close(ready_pipe)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: server.begin_shutdown(f"signal {s}"))
    signal.signal(signal.SIGUSR1, lambda s, f: server.log.reopen())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while not server.shutdown_event.wait(0.5):
        pass
    server.finish_shutdown()
    return 0


def _fork():
    """Daemonize like mongod --fork: the parent exits once the child listens. Returns the
    child's end of the readiness pipe, or None in the parent (which has reported the outcome)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        print(f"about to fork child process, waiting until server is ready for connections.\n"
              f"forked process: {pid}", flush=True)
        status = os.read(read_fd, 16).decode() or "1"
        if status == "0":
            print("child process started successfully, parent exiting", flush=True)
            os._exit(0)
        print(f"ERROR: child process failed, exited with {status}", flush=True)
        os._exit(int(status) if status.isdigit() else 1)
    os.close(read_fd)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    return write_fd
