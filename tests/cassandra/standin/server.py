"""The native transport: one thread per client connection, the v4 frame
state machine (OPTIONS, STARTUP, SASL PLAIN login, QUERY, PREPARE, EXECUTE,
REGISTER) and pushed events. Frames of any other protocol version get the
error that makes drivers retry with a lower version."""
import socket
import threading
import traceback

import cqlwire
from cqlwire import (OP_AUTH_RESPONSE, OP_AUTH_SUCCESS, OP_AUTHENTICATE, OP_BATCH, OP_ERROR, OP_EVENT,
                     OP_EXECUTE, OP_OPTIONS, OP_PREPARE, OP_QUERY, OP_READY, OP_REGISTER, OP_RESULT, OP_STARTUP,
                     OP_SUPPORTED)
from errors import BadCredentials, CqlError, InvalidRequest, ProtocolError, ServerError
from executor import Session

OP_NAMES = {OP_STARTUP: "STARTUP", OP_OPTIONS: "OPTIONS", OP_QUERY: "QUERY", OP_PREPARE: "PREPARE",
            OP_EXECUTE: "EXECUTE", OP_REGISTER: "REGISTER", OP_BATCH: "BATCH", OP_AUTH_RESPONSE: "AUTH_RESPONSE"}
AUTHENTICATOR = "org.apache.cassandra.auth.PasswordAuthenticator"
EVENT_TYPES = ("TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE")


class Closed(Exception):
    pass


class NativeServer:
    def __init__(self, node):
        self.node = node
        self.sock = None
        self.connections = set()
        self.lock = threading.Lock()
        self.running = False

    def start(self):
        cfg = self.node.config
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((cfg.rpc_address, cfg.native_port))
        s.listen(128)
        self.sock = s
        self.running = True
        threading.Thread(target=self._accept_loop, name="native-accept", daemon=True).start()

    def _accept_loop(self):
        while self.running:
            try:
                sock, addr = self.sock.accept()
            except OSError:
                return
            conn = ClientConnection(self, sock, addr)
            with self.lock:
                self.connections.add(conn)
            threading.Thread(target=conn.run, name=f"native-{addr[1]}", daemon=True).start()

    def stop(self):
        self.running = False
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self.sock.close()
        with self.lock:
            conns = list(self.connections)
        for c in conns:
            c.close()

    def forget(self, conn):
        with self.lock:
            self.connections.discard(conn)

    def broadcast(self, kind, payload):
        if kind == "SCHEMA_CHANGE":
            body = cqlwire.schema_change_event(*payload)
        elif kind == "TOPOLOGY_CHANGE":
            body = cqlwire.topology_event(*payload)
        else:
            body = cqlwire.status_event(*payload)
        with self.lock:
            conns = [c for c in self.connections if kind in c.events]
        for c in conns:
            c.send(cqlwire.frame(-1, OP_EVENT, body))


class ClientConnection:
    def __init__(self, server, sock, addr):
        self.server = server
        self.node = server.node
        self.sock = sock
        self.addr = addr
        self.state = "startup"
        self.session = Session()
        self.events = set()
        self.wlock = threading.Lock()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def send(self, data):
        with self.wlock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise Closed()
            buf += chunk
        return bytes(buf)

    def run(self):
        try:
            while True:
                self.serve_one()
        except (Closed, OSError):
            pass
        finally:
            self.server.forget(self)
            self.close()

    def serve_one(self):
        first = self.recv_exact(1)
        version = first[0] & 0x7F
        if version in (1, 2):
            rest = self.recv_exact(7)
            flags, stream, opcode = rest[0], int.from_bytes(rest[1:2], "big", signed=True), rest[2]
            length = int.from_bytes(rest[3:7], "big", signed=True)
        else:
            rest = self.recv_exact(8)
            flags, stream, opcode = rest[0], int.from_bytes(rest[1:3], "big", signed=True), rest[3]
            length = int.from_bytes(rest[4:8], "big", signed=True)
        if version != cqlwire.VERSION:
            self._refuse_version(version, stream, length)
        if first[0] & 0x80:
            self._fail_and_close(stream, ProtocolError("Invalid frame: the direction bit says response"))
        if length < 0 or length > self.node.config.max_frame:
            self._fail_and_close(stream, ProtocolError(
                f"Request is too big: length {length} exceeds maximum allowed length {self.node.config.max_frame}."))
        body = self.recv_exact(length)
        try:
            if flags & cqlwire.FLAG_COMPRESSION:
                raise ProtocolError("Received a compressed frame, but no compression was negotiated")
            r = cqlwire.Reader(body)
            if flags & cqlwire.FLAG_CUSTOM_PAYLOAD:
                for _ in range(r.short()):
                    r.string()
                    r.bytes_()
            opcode_out, out = self.dispatch(opcode, r)
        except CqlError as exc:
            opcode_out, out = OP_ERROR, exc.body()
        except Exception as exc:  # a bug in the stand-in: report it as the server error it is
            self.node.log("ERROR unexpected failure:\n" + traceback.format_exc())
            opcode_out, out = OP_ERROR, ServerError(f"java.lang.RuntimeException: {exc}").body()
        self.send(cqlwire.frame(stream, opcode_out, out))

    def _refuse_version(self, version, stream, length):
        """Unsupported versions get a protocol error (in a frame the client can read) and a closed connection."""
        if 0 <= length <= self.node.config.max_frame:
            try:
                self.recv_exact(length)
            except Closed:
                pass
        err = ProtocolError(f"Invalid or unsupported protocol version ({version}); supported versions are (4/v4)")
        if version in (1, 2):
            head = bytes([0x80 | version, 0, stream & 0xFF, OP_ERROR]) + len(err.body()).to_bytes(4, "big")
            self.send(head + err.body())
        else:
            self.send(cqlwire.frame(stream, OP_ERROR, err.body(), version=0x80 | min(max(version, 3), 4)))
        raise Closed()

    def _fail_and_close(self, stream, err):
        self.send(cqlwire.frame(stream, OP_ERROR, err.body()))
        raise Closed()

    # ---- messages ----
    def dispatch(self, opcode, r):
        name = OP_NAMES.get(opcode)
        if name is None:
            raise ProtocolError(f"Unknown opcode {opcode}")
        if opcode == OP_OPTIONS:
            return OP_SUPPORTED, cqlwire.string_multimap({"CQL_VERSION": ["3.4.5"], "COMPRESSION": [],
                                                          "PROTOCOL_VERSIONS": ["4/v4"]})
        if self.state == "startup":
            if opcode != OP_STARTUP:
                raise ProtocolError(f"Unexpected message {name}, expecting STARTUP or OPTIONS")
            return self.startup(r)
        if opcode == OP_STARTUP:
            raise ProtocolError("Unexpected message STARTUP, the connection is already initialized")
        if self.state == "auth":
            if opcode != OP_AUTH_RESPONSE:
                raise ProtocolError(f"Unexpected message {name}, expecting SASL response")
            return self.auth_response(r)
        if opcode == OP_AUTH_RESPONSE:
            raise ProtocolError("Unexpected message AUTH_RESPONSE, the connection is already authenticated")
        return getattr(self, "op_" + name.lower())(r)

    def startup(self, r):
        options = r.string_map()
        cql = options.get("CQL_VERSION")
        if cql is None:
            raise ProtocolError("Missing value CQL_VERSION in STARTUP message")
        if not cql.startswith("3."):
            raise ProtocolError(f"Unsupported CQL version {cql}, supported versions are 3.4.5")
        if options.get("COMPRESSION"):
            raise ProtocolError(f"Unknown compression algorithm: {options['COMPRESSION']}")
        if self.node.config.password_auth:
            self.state = "auth"
            return OP_AUTHENTICATE, cqlwire.string(AUTHENTICATOR)
        self.state = "ready"
        return OP_READY, b""

    def auth_response(self, r):
        token = r.bytes_() or b""
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise BadCredentials("Invalid SASL PLAIN token")
        _, user, password = parts
        if not user:
            raise BadCredentials("Authentication ID must not be null")
        if not password:
            raise BadCredentials("Password must not be null")
        try:
            user_text, password_text = user.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            raise BadCredentials("Provided username and/or password are incorrect")
        self.node.auth.login(user_text, password_text)
        self.session.user = user_text
        self.state = "ready"
        return OP_AUTH_SUCCESS, cqlwire.bytes_(None)

    def op_register(self, r):
        for kind in r.string_list():
            if kind not in EVENT_TYPES:
                raise ProtocolError(f"Invalid value '{kind}' for Type")
            self.events.add(kind)
        return OP_READY, b""

    def op_query(self, r):
        text = r.long_string()
        params = cqlwire.QueryParams(r)
        return OP_RESULT, self.node.executor.query(self.session, text, params).body()

    def op_prepare(self, r):
        text = r.long_string()
        return OP_RESULT, self.node.executor.prepare(self.session, text).body()

    def op_execute(self, r):
        statement_id = r.short_bytes()
        params = cqlwire.QueryParams(r)
        result = self.node.executor.execute(self.session, statement_id, params)
        return OP_RESULT, result.body(skip_metadata=params.skip_metadata and result.kind == "rows")

    def op_batch(self, r):
        raise InvalidRequest("BATCH is not implemented by this stand-in")
