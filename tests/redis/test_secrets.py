"""Passwords stay out of everything Redis records. With the slow log catching
every command (slowlog-log-slower-than 0) and MONITOR connections reading
from the first command on, the plugin prepares a server (users, root),
creates a user, changes a password, enables root with a given and a generated
password, takes a replication snapshot and attaches a replica with its
credentials. No password then appears in either server's slow log, MONITOR
stream or log file, in the config file CONFIG REWRITE wrote, in an ACL file
ACL SAVE wrote, or on the wire from the agent to Redis (a relay records every
byte; only the admin's own AUTH may carry a cleartext password). The one
password Redis must keep in clear, a replica's masterauth, is only in that
replica's 0600 config file."""
import hashlib
import os
import socket
import stat
import threading
import time

import harness
from harness import check
from redis_server import RedisServer

# Letters, digits and dashes only: MONITOR escapes other bytes, which would
# hide a leak from a plain substring search.
PASSWORDS = {
    "prepared user": "pw-prepared-user-4Kq9ZtW2",
    "prepared root": "pw-prepared-root-7Hd3XcV8",
    "created user": "pw-created-user-2Lm6NbQ1",
    "changed password": "pw-changed-pass-9Rt5YgJ4",
    "given root": "pw-given-root-3Fs8WkP6",
}
ADMIN = "pw-admin-8Jc2VnL5"


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Monitor(threading.Thread):
    """A MONITOR connection opened as soon as the server accepts one, over TCP
    or, with `unix_path`, over a unix socket. With `open_port`, the same
    pipeline then opens the server's TCP port (CONFIG SET port): Redis runs a
    client's pipelined commands before it accepts another connection, so
    nobody reaches the server over TCP before MONITOR is attached. Then it
    records every byte."""

    def __init__(self, port, password, unix_path=None, open_port=None):
        super().__init__(daemon=True)
        self.port, self.password, self.unix_path, self.open_port = port, password, unix_path, open_port
        self.data = bytearray()
        self.attached = threading.Event()
        self.stopping = threading.Event()

    def _connect(self):
        deadline = time.monotonic() + 60
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                if not self.unix_path:
                    return socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(0.5)
                    sock.connect(self.unix_path)
                    return sock
                except OSError:
                    sock.close()
                    raise
            except OSError:
                time.sleep(0.005)
        return None

    def run(self):
        sock = self._connect()
        if not sock:
            return
        with sock:
            pipeline = [resp("AUTH", "default", self.password)]
            if self.open_port:
                pipeline.append(resp("CONFIG", "SET", "port", str(self.open_port)))
            pipeline.append(resp("MONITOR"))
            sock.sendall(b"".join(pipeline))
            replies = b""
            while replies.count(b"+OK\r\n") < len(pipeline) and not self.stopping.is_set():
                try:
                    chunk = sock.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                replies += chunk
            self.data += replies.split(b"+OK\r\n", len(pipeline))[len(pipeline)]
            self.attached.set()
            sock.settimeout(0.1)
            while not self.stopping.is_set():
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                self.data += chunk

    def stop(self):
        self.stopping.set()
        self.join(5)

    def text(self):
        return bytes(self.data).decode("utf-8", "replace")


class Relay(threading.Thread):
    """A TCP relay in front of a server that records every byte clients send."""

    def __init__(self, target_port):
        super().__init__(daemon=True)
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.sent = bytearray()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self.listener.close()

    def _pump(self, src, dst, record):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if record:
                    with self.lock:
                        self.sent += chunk
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.join(5)

    def text(self):
        with self.lock:
            return bytes(self.sent).decode("utf-8", "replace")


def start_monitor(env, port, password, unix_path=None, open_port=None):
    m = Monitor(port, password, unix_path, open_port)
    m.start()
    env.callback(m.stop)
    return m


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def check_absent(records, secrets):
    for where, text in records.items():
        for what, password in secrets.items():
            check(password not in text, f"the {what} password appears in the {where}")


def test_prepare_and_user_operations_leave_no_password_in_redis_records():
    with harness.Env(prefix="redis-secrets-") as env:
        server = RedisServer(env, password=ADMIN)   # not started: the plugin prepares it
        # The plugin starts redis-server through this wrapper, which keeps its
        # TCP port closed and listens on a unix socket instead; the MONITOR
        # connection attaches there and opens the port in the same pipeline,
        # so MONITOR sees prepare from the agent's first command.
        sock = env.path("monitor.sock")
        wrapper = env.path("redis-server-wrapper")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\nexec redis-server "$@" --port 0 --unixsocket "{sock}" --unixsocketperm 700\n')
        os.chmod(wrapper, 0o755)
        agent = harness.Agent(env, "redis", dict(server.settings, redis_server=wrapper))
        monitor = start_monitor(env, server.port, server.password, unix_path=sock, open_port=server.port)
        secrets = dict(PASSWORDS)
        stderr = []

        def must(a, op, args=None):
            r = a.must(op, args)
            stderr.append(r.stderr)
            return r

        must(agent, "prepare", {
            "overrides": {"slowlog-log-slower-than": "0", "slowlog-max-len": "100000",
                          "repl-diskless-sync-delay": "0"},
            "users": [{"name": "app", "password": secrets["prepared user"], "databases": ["app:*"]}],
            "root_password": secrets["prepared root"],
        })
        check(monitor.attached.is_set(), "the MONITOR connection was not attached during prepare")
        must(agent, "user.create", {"name": "web", "password": secrets["created user"], "databases": ["web:*"]})
        must(agent, "user.password", {"name": "app", "password": secrets["changed password"]})
        must(agent, "root.enable", {"password": secrets["given root"]})
        secrets["generated root"] = must(agent, "root.enable")["password"]
        snap = must(agent, "replication.snapshot")
        secrets["replication"] = snap["password"]

        replica = RedisServer(env, 1, password=ADMIN).start()
        replica.cli("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "100000")
        replica_monitor = start_monitor(env, replica.port, replica.password)
        check(replica_monitor.attached.wait(10), "no MONITOR connection on the replica")
        ar = harness.Agent(env, "redis", replica.settings, instance_id="replica", backup_dir=agent.backup_dir)
        must(ar, "replication.attach", {"source": {"host": "127.0.0.1", "port": server.port, "user": snap["user"],
                                                   "password": secrets["replication"]}})

        # Every password is in force, so the searches below look for the right text.
        for user, what in [("app", "changed password"), ("web", "created user"), ("root", "generated root")]:
            check(server.cli("PING", user=user, password=secrets[what]).strip() == "PONG", f"{user} cannot log in")
        # MONITOR streams each server's commands in order: once a marker sent
        # last has arrived, everything the agents sent before it has too.
        for srv, mon in ((server, monitor), (replica, replica_monitor)):
            srv.cli("ECHO", "monitor-drained-marker")
            harness.wait_for(lambda: "monitor-drained-marker" in mon.text(), 10, "the MONITOR stream to drain")
        slowlog = server.cli("SLOWLOG", "GET", "-1")
        check("SETUSER" in slowlog, "the slow log did not record ACL SETUSER: it would prove nothing")
        check('"AUTH"' in monitor.text() and '"INFO"' in monitor.text(),
              "the MONITOR stream missed the agent's commands: it would prove nothing")
        replica_config = read(replica.config_file)
        records = {
            "primary's slow log": slowlog,
            "replica's slow log": replica.cli("SLOWLOG", "GET", "-1"),
            "primary's MONITOR stream": monitor.text(),
            "replica's MONITOR stream": replica_monitor.text(),
            "primary's server log": read(server.log_file),
            "replica's server log": read(replica.log_file),
            "primary's config file": read(server.config_file),
            "agents' stderr": "\n".join(stderr),
        }
        check_absent(records, dict(secrets, admin=ADMIN))
        check_absent({"replica's config file": replica_config},
                     {k: v for k, v in secrets.items() if k != "replication"})

        # CONFIG REWRITE kept the users as hashes; masterauth is Redis's one cleartext.
        check(f"#{sha256(secrets['changed password'])}" in records["primary's config file"],
              "the config file does not hold the user's password hash")
        check(f'masterauth "{secrets["replication"]}"' in replica_config or
              f"masterauth {secrets['replication']}" in replica_config, "the replica's config has no masterauth")
        mode = stat.S_IMODE(os.stat(replica.config_file).st_mode)
        check(mode == 0o600, f"the replica's config file, which holds masterauth, is mode {oct(mode)}")


class AclFileServer(RedisServer):
    """A server whose users live in an ACL file (ACL SAVE persists them)."""

    def write_config(self):
        super().write_config()
        self.acl_file = os.path.join(self.dir, "users.acl")
        with open(self.acl_file, "w") as f:
            f.write(f"user default on #{sha256(self.password)} ~* &* +@all\n")
        lines = [ln for ln in read(self.config_file).splitlines() if not ln.startswith("user ")]
        with open(self.config_file, "w") as f:
            f.write("\n".join(lines + [f'aclfile "{self.acl_file}"']) + "\n")


def test_acl_file_and_wire_carry_only_hashes():
    with harness.Env(prefix="redis-secrets-acl-") as env:
        server = AclFileServer(env, password=ADMIN).start()
        relay = Relay(server.port)
        relay.start()
        env.callback(relay.stop)
        agent = harness.Agent(env, "redis", dict(server.settings, port=relay.port))
        secrets = {k: PASSWORDS[k] for k in ("created user", "changed password", "given root")}

        agent.must("user.create", {"name": "app", "password": secrets["created user"], "databases": ["app:*"]})
        agent.must("user.password", {"name": "app", "password": secrets["changed password"]})
        agent.must("root.enable", {"password": secrets["given root"]})
        secrets["generated root"] = agent.must("root.enable")["password"]
        secrets["replication"] = agent.must("replication.snapshot")["password"]
        check(server.cli("PING", user="app", password=secrets["changed password"]).strip() == "PONG",
              "app cannot log in with its new password")

        acl = read(server.acl_file)
        check(f"#{sha256(secrets['changed password'])}" in acl, f"ACL SAVE did not write app's hash: {acl}")
        wire = relay.text()
        check("SETUSER" in wire and server.password in wire,
              "the relay did not see the agent's commands: it would prove nothing")
        check_absent({"ACL file": acl}, dict(secrets, admin=ADMIN))
        check_absent({"agent's connection to Redis": wire}, secrets)


if __name__ == "__main__":
    harness.run_tests(globals())
