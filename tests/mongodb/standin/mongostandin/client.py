"""The client one member uses to talk to another: OP_MSG commands over TCP,
authenticated as __system@local with the keyFile secret via SCRAM-SHA-256
(exactly how mongod members authenticate to each other with a keyFile).
"""
import socket

from . import scram, wire
from .bsoncodec import Binary
from .errors import CODE_NAMES


class PeerError(Exception):
    """A peer could not be reached, or answered ok: 0 (code is then set)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def split_host(host):
    name, _, port = host.rpartition(":")
    if not name or not port.isdigit():
        raise PeerError(f"invalid member host '{host}'")
    return name.strip("[]"), int(port)


class PeerClient:
    def __init__(self, host, key=None, timeout=10.0):
        self.host = host
        self.key = key
        self.timeout = timeout
        self.sock = None
        self.stream = None
        self.request_id = 0

    def connect(self):
        name, port = split_host(self.host)
        try:
            self.sock = socket.create_connection((name, port), timeout=min(self.timeout, 5.0))
        except OSError as exc:
            raise PeerError(f"Error connecting to {self.host} :: caused by :: {exc.strerror or exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.timeout)
        self.stream = self.sock.makefile("rb")
        self.command("admin", {"hello": 1})
        if self.key is not None:
            self._authenticate()
        return self

    def _authenticate(self):
        conv = scram.ClientConversation("SCRAM-SHA-256", "__system", self.key)
        reply = self.command("local", {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                                       "payload": Binary(conv.first()), "options": {"skipEmptyExchange": True}})
        try:
            final = conv.final(reply["payload"].data)
        except scram.SCRAMError as exc:
            raise PeerError(f"internal authentication to {self.host} failed: {exc}", 18) from None
        reply = self.command("local", {"saslContinue": 1, "conversationId": reply["conversationId"],
                                       "payload": Binary(final)})
        try:
            conv.verify(reply["payload"].data)
        except scram.SCRAMError as exc:
            raise PeerError(f"internal authentication to {self.host} failed: {exc}", 18) from None
        if not reply.get("done"):
            self.command("local", {"saslContinue": 1, "conversationId": reply["conversationId"],
                                   "payload": Binary(b"")})

    def command(self, db, doc, timeout=None):
        """The reply document; PeerError on a network error or ok: 0."""
        if self.sock is None:
            self.connect()
        body = dict(doc)
        body["$db"] = db
        self.request_id += 1
        try:
            if timeout is not None:
                self.sock.settimeout(timeout)
            self.sock.sendall(wire.op_msg_request(body, self.request_id))
            msg = wire.read_message(self.stream)
            if msg is None:
                raise PeerError(f"connection to {self.host} closed")
            reply = wire.parse_reply_body(msg[2], msg[3])
        except (OSError, wire.ProtocolError, ValueError) as exc:
            self.close()
            raise PeerError(f"network error talking to {self.host}: {exc}") from None
        finally:
            if self.sock is not None and timeout is not None:
                self.sock.settimeout(self.timeout)
        if not reply.get("ok"):
            code = reply.get("code")
            raise PeerError(f"{CODE_NAMES.get(code, code)}: {reply.get('errmsg', 'command failed')}", code)
        return reply

    def close(self):
        for closable in (self.stream, self.sock):
            try:
                if closable is not None:
                    closable.close()
            except OSError:
                pass
        self.sock = None
        self.stream = None
