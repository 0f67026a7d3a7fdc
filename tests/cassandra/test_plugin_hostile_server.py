"""The Cassandra plugin against servers that break the protocol on purpose:
after a proper handshake and login, the answer to the plugin's first
statement is a truncated frame, a frame claiming 300 MiB, one just over the
client's 16 MiB cap, a row count the frame cannot hold, an answer on another
stream, or not CQL at all. Every operation fails with datastore_error and a
message that says what was wrong, status reports the node as not running,
and the agent neither crashes nor hangs. A server whose error message quotes
the statement that carried a password (as a syntax error does) does not get
that password into the operation's message or the agent's log.
"""
import os
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import harness  # noqa: E402
from harness import check  # noqa: E402

try:
    import ds_cassandra as ds  # noqa: E402
except ImportError as exc:
    print(f"skipped: python3-cassandra (the DataStax driver) is not installed ({exc})")
    sys.exit(77)

PASSWORD = "quoted-back-secret-77"


def frame(stream, opcode, body, version=0x84):
    return struct.pack(">BBhBi", version, 0, stream, opcode, len(body)) + body


def string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


SUPPORTED = struct.pack(">H", 1) + string("CQL_VERSION") + struct.pack(">H", 1) + string("3.4.5")


def rows(stream, columns, count_claimed=None, cells=()):
    """A ROWS result: columns [(name, type id)], rows of cells (bytes)."""
    body = struct.pack(">iii", 2, 0x0001, len(columns)) + string("system_auth") + string("roles")
    for name, type_id in columns:
        body += string(name) + struct.pack(">H", type_id)
    body += struct.pack(">i", len(cells) if count_claimed is None else count_claimed)
    for row in cells:
        for cell in row:
            body += struct.pack(">i", len(cell)) + cell
    return frame(stream, 0x08, body)


def error(stream, code, message):
    return frame(stream, 0x00, struct.pack(">i", code) + string(message))


def complete(data, stream):
    """A whole, well-formed response frame on `stream`."""
    if len(data) < 9:
        return False
    version, _, got, _, length = struct.unpack(">BBhBi", data[:9])
    return version == 0x84 and got == stream and len(data) == 9 + length


class HostileServer:
    """Logs anyone in, then answers each QUERY with reply(stream, cql)."""

    def __init__(self, env, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.queries = []
        threading.Thread(target=self.accept, daemon=True).start()
        env.callback(self.close)

    def accept(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def serve(self, conn):
        with conn:
            try:
                while True:
                    head = self.read(conn, 9)
                    if head is None:
                        return
                    _, _, stream, opcode, length = struct.unpack(">BBhBi", head)
                    body = self.read(conn, length) if length else b""
                    if opcode == 0x05:
                        conn.sendall(frame(stream, 0x06, SUPPORTED))
                    elif opcode == 0x01:
                        conn.sendall(frame(stream, 0x03, string("org.apache.cassandra.auth.PasswordAuthenticator")))
                    elif opcode == 0x0F:
                        conn.sendall(frame(stream, 0x10, struct.pack(">i", -1)))
                    elif opcode == 0x07:
                        (n,) = struct.unpack(">i", body[:4])
                        cql = body[4:4 + n].decode()
                        self.queries.append(cql)
                        data = self.reply(stream, cql)
                        if data is None:
                            self.done.wait(30)
                            return
                        conn.sendall(data)
                        if not complete(data, stream):
                            return   # what the client makes of a broken frame, not of a slow one
                    else:
                        return
            except (OSError, struct.error):
                return

    def close(self):
        self.done.set()
        self.sock.close()


def agent_for(env, port, name):
    node = ds.StandinNode(env, 0, start=False, extra_settings={"native_port": port, "request_timeout_ms": 3000,
                                                               "connect_timeout_ms": 1000})
    return harness.Agent(env, "cassandra", node.settings, instance_id=name)


def sane(r):
    check(0 <= r.exit_code < 128 and "Sanitizer" not in r.stderr and
          "runtime error" not in r.stderr, f"the agent crashed: exit {r.exit_code}\n{r.stderr[-2000:]}")


CASES = [
    ("truncated", lambda s, q: frame(s, 0x08, struct.pack(">i", 2) + b"\0" * 96)[:30], ["truncated"]),
    ("300 MiB claim", lambda s, q: struct.pack(">BBhBi", 0x84, 0, s, 0x08, 300 * 1024 * 1024), ["exceeds"]),
    ("over the 16 MiB cap", lambda s, q: struct.pack(">BBhBi", 0x84, 0, s, 0x08, 17 * 1024 * 1024),
     ["17825792", "16777216"]),
    ("a row count it cannot hold", lambda s, q: rows(s, [("role", 0x000D)], count_claimed=0x7FFFFFFF),
     ["cannot fit"]),
    ("another stream", lambda s, q: frame(s + 5, 0x08, struct.pack(">i", 1)), ["stream"]),
    ("not CQL", lambda s, q: b"HTTP/1.1 404 Not Found\r\n\r\n", ["version 0x48"]),
]


def test_broken_frames():
    with harness.Env(prefix="cs-hostile-server-") as env:
        for i, (what, reply, words) in enumerate(CASES):
            server = HostileServer(env, reply)
            agent = agent_for(env, server.port, f"hostile{i}")
            for op, args in (("user.list", None), ("database.list", None), ("config.show", None),
                             ("cluster.status", None)):
                started = time.monotonic()
                r = agent.call(op, args)
                sane(r)
                check(r.code == "datastore_error" and "sent a frame the client refuses" in r.message and
                      all(w in r.message for w in words), f"{what}, {op}: {r.code}: {r.message}")
                check(time.monotonic() - started < 20, f"{what}, {op} took {time.monotonic() - started:.1f} s")
            st = agent.call("status")
            sane(st)
            check(st.ok and st["state"] != "running", f"{what}: status says {st.result}")

        server = HostileServer(env, lambda s, q: None)   # answers nothing after the login
        agent = agent_for(env, server.port, "silent")
        started = time.monotonic()
        r = agent.call("user.list")
        sane(r)
        check(r.code == "timeout" and time.monotonic() - started < 15, f"a silent server: {r}")


def test_password_quoted_back():
    with harness.Env(prefix="cs-hostile-quote-") as env:
        def reply(stream, cql):
            if cql.startswith("SELECT"):
                return rows(stream, [("can_login", 0x0004), ("is_superuser", 0x0004)])
            return error(stream, 0x2000, f"line 1:50 mismatched input near '{cql}'")   # quotes it all back
        server = HostileServer(env, reply)
        agent = agent_for(env, server.port, "quoter")
        for op, args in (("user.create", {"name": "victim", "password": PASSWORD}),
                         ("root.enable", {"password": PASSWORD})):
            r = agent.call(op, args)
            sane(r)
            check(not r.ok and "withheld" in r.message, f"{op}: {r.code}: {r.message}")
            check(PASSWORD not in r.message and PASSWORD not in r.stderr, f"{op} repeated the password: {r}")
        check(any(PASSWORD in q for q in server.queries), "the statements never carried the password")
        r = agent.call("database.create", {"name": "plain"})
        check("mismatched input" in r.message, f"an error without a password keeps the server's text: {r}")


def main():
    harness.run_tests(globals())


if __name__ == "__main__":
    main()
