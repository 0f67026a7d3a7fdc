"""mongod stand-in processes (tests/mongodb/standin/, a test double: no MongoDB
server exists for Debian 12; MONGOD may name a real mongod instead) for the
MongoDB plugin's tests and its conformance description. A server gets the files the plugin's prepare
writes -- <config_dir>/mongod.conf in the plugin's layout, a keyFile, a
one-member replica set initiated through the localhost exception and the
admin account -- so the plugin can stop, restart, restore and reconfigure
it; it is stopped when the env closes, even if the plugin restarted it.
Every server of a test shares the admin password and the keyFile, as the
members of one deployment do. Checks use pymongo (Debian's python3-pymongo),
never the plugin.
"""
import hashlib
import os
import signal
import subprocess
import time

import pymongo

SOURCE = os.environ.get("TROVE_SOURCE") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
# The stand-in, unless MONGOD names a real mongod (docs/plugins/mongodb.md, "Checking a real MongoDB").
MONGOD = os.environ.get("MONGOD") or os.path.join(SOURCE, "tests", "mongodb", "standin", "mongod")
ADMIN_USER = "trove_admin"
ADMIN_PASSWORD = "adm'in \"pw\\ é 1"
KEY = "dGVzdCBkZXBsb3ltZW50IHNoYXJlZCBrZXlmaWxlIDJmOGE="


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MongoServer:
    """One stand-in mongod in env (an object with mkdir, path and callback)."""

    def __init__(self, env, index=0, key=KEY, heartbeat_ms=300, election_ms=2000):
        self.env = env
        self.index = index
        self.dir = env.mkdir(f"mongodb-{index}", mode=0o700)
        self.config_dir = os.path.join(self.dir, "etc")
        self.dbpath = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.set_name = f"rs-{index}"
        self.key = key
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.proc = None
        self.log = None
        env.callback(self.stop)

    @property
    def member(self):
        return f"{self.host}:{self.port}"

    @property
    def settings(self):
        """The agent's [datastore] section for this server."""
        return {"mongod": MONGOD, "host": self.host, "port": self.port, "dbpath": self.dbpath,
                "config_dir": self.config_dir, "admin_user": ADMIN_USER, "admin_password": ADMIN_PASSWORD,
                "replica_set": self.set_name, "heartbeat_interval_ms": self.heartbeat_ms,
                "election_timeout_ms": self.election_ms, "start_timeout": 60, "stop_timeout": 30,
                "sync_timeout": 120, "connect_timeout_ms": 3000, "status_timeout_ms": 1000}

    def write_files(self):
        os.makedirs(self.config_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.dbpath, mode=0o700, exist_ok=True)
        key = os.path.join(self.config_dir, "keyfile")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.key + "\n")
        conf = "\n".join([
            "net:", f"  bindIp: {_quote('127.0.0.1')}", f"  port: {self.port}",
            "processManagement:", f"  pidFilePath: {_quote(os.path.join(self.config_dir, 'mongod.pid'))}",
            "replication:", f"  replSetName: {_quote(self.set_name)}",
            "security:", "  authorization: enabled", f"  keyFile: {_quote(key)}",
            "storage:", f"  dbPath: {_quote(self.dbpath)}",
            "systemLog:", "  destination: file", "  logAppend: true",
            f"  path: {_quote(os.path.join(self.config_dir, 'mongod.log'))}", ""])
        path = os.path.join(self.config_dir, "mongod.conf")
        with open(path, "w") as f:
            f.write(conf)
        os.chmod(path, 0o600)

    def start(self, initiate=True):
        """Start as our child, initiate a one-member set and create the admin account."""
        if not os.path.exists(os.path.join(self.config_dir, "mongod.conf")):
            self.write_files()
        self.log = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen([MONGOD, "--config", os.path.join(self.config_dir, "mongod.conf")],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        _wait(lambda: self.client(None).admin.command("hello")["ok"] == 1.0, 30, f"mongod stand-in on {self.port}")
        if initiate:
            anon = self.client(None)
            anon.admin.command("replSetInitiate", {
                "_id": self.set_name, "version": 1, "members": [{"_id": 0, "host": self.member}],
                "settings": {"heartbeatIntervalMillis": self.heartbeat_ms,
                             "electionTimeoutMillis": self.election_ms}})
            _wait(lambda: anon.admin.command("hello").get("isWritablePrimary"), 30, "the set's primary")
            anon.admin.command("createUser", ADMIN_USER, pwd=ADMIN_PASSWORD, roles=[{"role": "root", "db": "admin"}],
                               mechanisms=["SCRAM-SHA-256"])
        return self

    def pid(self):
        try:
            with open(os.path.join(self.config_dir, "mongod.pid")) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def stop(self):
        """Stop our child, and any mongod the plugin started since (it is not our child)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None
        pid = self.pid()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if pid <= 1 or not _alive(pid):
                return
            os.kill(pid, sig)
            deadline = time.monotonic() + 20
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def client(self, user=ADMIN_USER, password=ADMIN_PASSWORD, timeout_ms=5000):
        kw = {}
        if user is not None:
            kw = dict(username=user, password=password, authSource="admin", authMechanism="SCRAM-SHA-256")
        return pymongo.MongoClient(self.host, self.port, directConnection=True, serverSelectionTimeoutMS=timeout_ms,
                                   connectTimeoutMS=timeout_ms, socketTimeoutMS=60000, **kw)

    def admin(self):
        return self.client()

    def digest(self):
        """(documents, sha256) over every user database, collection and document, in _id order,
        computed with pymongo alone."""
        c = self.admin()
        h = hashlib.sha256()
        count = 0
        for db in sorted(c.list_database_names()):
            if db in ("admin", "local", "config"):
                continue
            for name in sorted(c[db].list_collection_names()):
                h.update(f"{db}\0{name}\0".encode())
                for doc in c[db][name].find(sort=[("_id", 1)]):
                    h.update(bson_bytes(doc))
                    count += 1
        return count, h.hexdigest()


def bson_bytes(doc):
    import bson
    return bson.BSON.encode(doc)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
