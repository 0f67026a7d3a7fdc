"""The C CQL client (plugins/cassandra/cql.c, through tests/cassandra/cql_probe)
against the stand-in: connect, log in, DDL, bound values of every type the
plugin needs, prepare/execute, paging, and each server error mapped to its
status. Then against hostile servers speaking raw bytes: a truncated frame, an
oversized length claim, a row count the frame cannot hold, a wrong version, a
wrong stream id, garbage, a server that hangs and one that hangs up. Each is
refused with a clear error, and the hung server within the request timeout.

usage: test_cql_client.py PATH/TO/cql_probe
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import standin_cluster  # noqa: E402

PROBE = sys.argv[1] if len(sys.argv) > 1 else harness.build_path("tests", "cassandra", "cql_probe")


def probe(*args, password=None, env=None, timeout=60):
    # the probe is single-threaded, so LeakSanitizer can check it (in an ASan build)
    full_env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", **(env or {}))
    return subprocess.run([PROBE, *args], input=(password + "\n") if password is not None else "",
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def frame(stream, opcode, body, version=0x84, flags=0):
    return struct.pack(">BBhBi", version, flags, stream, opcode, len(body)) + body


def string(s):
    return struct.pack(">H", len(s)) + s.encode()


SUPPORTED = struct.pack(">H", 1) + string("CQL_VERSION") + struct.pack(">H", 1) + string("3.4.5")


class HostileServer:
    """Answers OPTIONS and STARTUP properly (when `handshake`), then gives `reply(stream)` to the next request."""

    def __init__(self, env, reply, handshake=True):
        self.reply = reply
        self.handshake = handshake
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()
        env.callback(self.close)

    def read_request(self, conn):
        head = b""
        while len(head) < 9:
            chunk = conn.recv(9 - len(head))
            if not chunk:
                return None
            head += chunk
        _, _, stream, opcode, length = struct.unpack(">BBhBi", head)
        while length > 0:
            length -= len(conn.recv(length))
        return stream, opcode

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        try:
            if self.handshake:
                stream, _ = self.read_request(conn)               # OPTIONS
                conn.sendall(frame(stream, 0x06, SUPPORTED))
                stream, _ = self.read_request(conn)               # STARTUP
                conn.sendall(frame(stream, 0x02, b""))
            req = self.read_request(conn)
            if req is None:
                return
            data = self.reply(req[0])
            if data is None:
                self.stop.wait(60)                                # hang
                return
            conn.sendall(data)
            conn.close()
        except OSError:
            pass

    def close(self):
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


def hostile(env, reply, handshake=True, probe_env=None):
    server = HostileServer(env, reply, handshake)
    started = time.monotonic()
    r = probe("query", "127.0.0.1", str(server.port), env=probe_env)
    return r, time.monotonic() - started


def expect_error(r, status, words):
    line = r.stdout.strip()
    assert r.returncode == 3, f"expected a refusal, got rc {r.returncode}: {line} {r.stderr}"
    assert line.startswith(f"error {status} "), f"expected {status}: {line}"
    for w in words:
        assert w in line, f"expected {w!r} in: {line}"
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr


def rows_claiming(stream, count):
    body = struct.pack(">iii", 2, 0x0001, 1) + string("system") + string("local") + string("release_version")
    body += struct.pack(">H", 0x000D) + struct.pack(">i", count) + struct.pack(">i", 3) + b"4.0"
    return frame(stream, 0x08, body)


def test_against_standin(env):
    node, = standin_cluster.ring(env, 1)
    node.start()
    r = probe("scenario", node.address, str(node.native_port), "cassandra", password="cassandra", timeout=120)
    assert r.returncode == 0 and "scenario ok" in r.stdout, f"scenario failed:\n{r.stdout}\n{r.stderr}"
    r = probe("query", node.address, str(node.native_port), "cassandra", password="cassandra")
    assert r.stdout.strip() == "ok 4.0.11", r.stdout + r.stderr
    r = probe("query", node.address, str(node.native_port), "cassandra", password="nope")
    expect_error(r, "bad_credentials", ["Provided username cassandra and/or password are incorrect"])
    assert "nope" not in r.stdout
    log = open(node.proc.log_path).read()
    assert "pa'ss" not in log and "nope" not in log, "a password reached the server log"


def test_hostile_servers(env):
    r, _ = hostile(env, lambda s: frame(s, 0x08, struct.pack(">i", 2) + b"\0" * 96)[:20])
    expect_error(r, "bad_frame", ["truncated", "closed the connection"])

    r, _ = hostile(env, lambda s: struct.pack(">BBhBi", 0x84, 0, s, 0x08, 300 * 1024 * 1024))
    expect_error(r, "bad_frame", ["exceeds", "byte limit"])

    r, _ = hostile(env, lambda s: struct.pack(">BBhBi", 0x84, 0, s, 0x08, 2 * 1024 * 1024),
                   probe_env={"CQL_PROBE_MAX_BODY": "1048576"})
    expect_error(r, "bad_frame", ["2097152", "1048576"])

    r, _ = hostile(env, lambda s: rows_claiming(s, 0x7FFFFFFF))
    expect_error(r, "bad_frame", ["cannot fit"])

    r, _ = hostile(env, lambda s: frame(s, 0x08, struct.pack(">iii", 2, 1, -4)))
    expect_error(r, "bad_frame", ["column count -4"])

    r, _ = hostile(env, lambda s: frame(s, 0x08, struct.pack(">i", 1), version=0x83))
    expect_error(r, "bad_frame", ["0x83"])

    r, _ = hostile(env, lambda s: frame(s + 7, 0x08, struct.pack(">i", 1)))
    expect_error(r, "bad_frame", ["stream"])

    r, _ = hostile(env, lambda s: b"HTTP/1.1 404 Not Found\r\n\r\n")
    expect_error(r, "bad_frame", ["version 0x48"])

    r, took = hostile(env, lambda s: None, probe_env={"CQL_PROBE_TIMEOUT_MS": "800"})
    expect_error(r, "timeout", ["timed out"])
    assert took < 5, f"a hung server held the client {took:.1f} s"

    r, took = hostile(env, lambda s: None, handshake=False, probe_env={"CQL_PROBE_TIMEOUT_MS": "800"})
    expect_error(r, "timeout", [])
    assert took < 5, f"a silent server held the client {took:.1f} s"

    r, _ = hostile(env, lambda s: b"")
    expect_error(r, "connection_broken", ["closed the connection"])

    closed = harness.free_port()
    r = probe("query", "127.0.0.1", str(closed))
    expect_error(r, "connect_failed", ["refused"])


def test_login_required(env):
    node, = standin_cluster.ring(env, 1)
    node.start()
    r = probe("query", node.address, str(node.native_port))
    expect_error(r, "auth_required", ["PasswordAuthenticator"])


def main():
    if not os.access(PROBE, os.X_OK):
        print(f"cql_probe not built at {PROBE}", file=sys.stderr)
        return 1
    for test in (test_against_standin, test_hostile_servers, test_login_required):
        with harness.Env() as env:
            test(env)
            print(f"ok {test.__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
