"""The mongod stand-in, checked from outside by an independent client:
Debian's python3-pymongo (3.11) and raw sockets, never the project's own code.
It must say it is a stand-in, speak the wire protocol (OP_QUERY handshake,
OP_MSG with checksums and document sequences), authenticate with SCRAM-SHA-256,
store and find documents, enforce users and roles, get and set parameters,
hold writes under an fsync lock, keep its data in files a copy can restart
from, run a two-member replica set that replicates, steps down and up, apply
oplog entries with applyOps, and keep a member started on a copy of another's
files REMOVED until its set adds it.
"""
import base64
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import bson
import pymongo
from pymongo import monitoring
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError, OperationFailure

NotPrimary = getattr(pymongo.errors, "NotPrimaryError", None) or pymongo.errors.NotMasterError
SOURCE = os.environ.get("TROVE_SOURCE") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MONGOD = os.path.join(SOURCE, "tests", "mongodb", "standin", "mongod")
ADMIN_PW = "adm'in \"pw\\ é"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_failure(code, fn, *args, contains=None, **kw):
    """Run fn; it must fail with this server error code (and message fragment)."""
    try:
        fn(*args, **kw)
    except OperationFailure as exc:
        check(exc.code == code, f"expected code {code}, got {exc.code}: {exc}")
        if contains is not None:
            text = (exc.details or {}).get("errmsg", str(exc))
            check(contains in text, f"expected {contains!r} in {text!r}")
        return exc
    raise AssertionError(f"{getattr(fn, '__name__', fn)} succeeded but should fail with code {code}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s (last error: {last})")


class StandIn:
    """One stand-in mongod process in its own directory; stopped by the ExitStack."""

    def __init__(self, stack, root, name, *extra, dbpath=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.dbpath = dbpath or os.path.join(self.dir, "db")
        os.makedirs(self.dbpath, exist_ok=True)
        self.port = free_port()
        self.extra = list(extra)
        self.proc = None
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        self.log_path = os.path.join(self.dir, "mongod.log")
        stack.callback(self.stop)

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        argv = [MONGOD, "--port", str(self.port), "--bind_ip", "127.0.0.1", "--dbpath", self.dbpath,
                "--logpath", self.log_path, "--logappend"] + self.extra
        with open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: self.client(timeout_ms=500).admin.command("hello")["ok"] == 1.0, 20,
                 f"stand-in on port {self.port} answering hello")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def client(self, user=None, password=None, timeout_ms=5000, **kw):
        if user is not None:
            kw.update(username=user, password=password, authSource="admin", authMechanism="SCRAM-SHA-256")
        return pymongo.MongoClient("127.0.0.1", self.port, directConnection=True,
                                   serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, **kw)

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


class Recorder(monitoring.CommandListener):
    """Names of the commands pymongo saw succeed."""

    def __init__(self):
        self.names = []

    def started(self, event):
        pass

    def succeeded(self, event):
        self.names.append(event.command_name)

    def failed(self, event):
        pass


def crashes(root):
    """Python tracebacks any stand-in printed (a thread that died counts as a failure)."""
    found = []
    for base, _, files in os.walk(root):
        for name in files:
            if name == "stdout.txt":
                with open(os.path.join(base, name), errors="replace") as f:
                    if "Traceback" in f.read():
                        found.append(os.path.join(base, name))
    return found


@contextlib.contextmanager
def world(prefix):
    root = tempfile.mkdtemp(prefix=prefix)
    with contextlib.ExitStack() as stack:
        try:
            yield stack, root
            stack.close()
            check(not crashes(root), f"a stand-in printed a traceback: {crashes(root)}")
        finally:
            stack.close()
            if os.environ.get("TROVE_KEEP_TMP"):
                print(f"keeping {root}", file=sys.stderr)
            else:
                shutil.rmtree(root, ignore_errors=True)


def data_files(dbpath):
    """{relative path: bytes} of the data directory as a file backup sees it."""
    out = {}
    for base, dirs, files in os.walk(dbpath):
        dirs[:] = [d for d in dirs if d != "diagnostic.data"]
        for name in files:
            if name == "mongod.lock":
                continue
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, dbpath)] = f.read()
    return out


# ---------------------------------------------------------------------------

def test_says_it_is_a_stand_in():
    out = subprocess.run([MONGOD, "--version"], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0 and "stand-in" in out.stdout and "not MongoDB" in out.stdout,
          f"--version must say it is a stand-in: {out.stdout!r}")
    with world("standin-banner-") as (stack, root):
        server = StandIn(stack, root, "a").start()
        with open(server.stdout_path) as f:
            banner = f.read()
        check("NOT MongoDB" in banner and "does not implement" in banner,
              f"the startup line must say it is not MongoDB and list what it does not do: {banner!r}")
        info = server.client().admin.command("buildInfo")
        check(info.get("standin") is True and info["gitVersion"] == "standin",
              f"buildInfo must say standin: {info}")
        hello = server.client().admin.command("hello")
        check(hello["maxWireVersion"] == 13 and hello["minWireVersion"] == 0, f"wire versions: {hello}")
        check("compression" not in hello, "compression must not be advertised")


def test_users_documents_and_parameters():
    with world("standin-auth-") as (stack, root):
        server = StandIn(stack, root, "a", "--auth").start()
        anon = server.client()
        expect_failure(13, anon.admin.command, "listDatabases", contains="command listDatabases requires authentication")
        expect_failure(13, anon.test.command, "createUser", "x", pwd="y", roles=[])
        anon.admin.command("createUser", "admin", pwd=ADMIN_PW, roles=["root"], mechanisms=["SCRAM-SHA-256"])
        expect_failure(13, anon.admin.command, "createUser", "second", pwd="y", roles=[],
                       contains="requires authentication")

        admin = server.client("admin", ADMIN_PW)
        check(admin.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"] ==
              [{"user": "admin", "db": "admin"}], "connectionStatus after SCRAM-SHA-256")
        hello = server.client().admin.command("hello", saslSupportedMechs="admin.admin")
        check(hello.get("saslSupportedMechs") == ["SCRAM-SHA-256"], f"saslSupportedMechs: {hello}")
        expect_failure(18, server.client("admin", "wrong").admin.command, "ping", contains="Authentication failed.")

        # documents: filters, a cursor over more than one batch, indexes
        recorder = Recorder()
        app_admin = server.client("admin", ADMIN_PW, event_listeners=[recorder])
        coll = app_admin.shop.items
        coll.insert_many([{"_id": i, "n": i, "kind": "even" if i % 2 == 0 else "odd", "tags": [i % 3]}
                          for i in range(250)])
        check(sum(1 for _ in coll.find()) == 250, "find() over 250 documents")
        check("getMore" in recorder.names, f"a 250-document cursor must use getMore: {set(recorder.names)}")
        raw_batches = list(coll.find_raw_batches({"kind": "even"}, batch_size=50))
        check(len(raw_batches) == 3 and sum(len(bson.decode_all(b)) for b in raw_batches) == 125,
              "legacy OP_QUERY/OP_GET_MORE raw batches (pymongo's find_raw_batches)")
        exhausted = list(coll.find({"n": {"$lt": 120}}, batch_size=25, cursor_type=pymongo.CursorType.EXHAUST))
        check(sorted(d["_id"] for d in exhausted) == list(range(120)), "an exhaust cursor streams every batch")
        check(coll.count_documents({"n": {"$gt": 100, "$lt": 110}}) == 9, "$gt/$lt filter")
        check(sorted(d["_id"] for d in coll.find({"n": {"$in": [3, 5, 700]}})) == [3, 5], "$in filter")
        check(coll.count_documents({"kind": "odd"}) == 125, "equality filter")
        check(coll.count_documents({"tags": 2}) == 83, "equality on an array element")
        check(coll.find_one({"_id": 7}, {"kind": 1, "_id": 0}) == {"kind": "odd"}, "projection")
        check([d["n"] for d in coll.find({}, sort=[("n", -1)], limit=3)] == [249, 248, 247], "sort + limit")
        check(coll.estimated_document_count() == 250, "estimated count")
        coll.update_one({"_id": 1}, {"$set": {"kind": "special"}, "$inc": {"n": 1000}})
        check(coll.find_one({"_id": 1}) == {"_id": 1, "n": 1001, "kind": "special", "tags": [1]}, "$set/$inc")
        check(coll.delete_many({"n": {"$gte": 200, "$lt": 1000}}).deleted_count == 50, "delete_many")
        coll.create_index([("n", 1)], unique=True, name="n_unique")
        check(any(ix["name"] == "n_unique" and ix.get("unique") for ix in coll.list_indexes()), "listIndexes")
        try:
            coll.insert_one({"n": 5})
            raise AssertionError("a duplicate unique key was accepted")
        except DuplicateKeyError as exc:
            check(exc.code == 11000 and "E11000 duplicate key error collection: shop.items index: n_unique" in str(exc),
                  f"duplicate key message: {exc}")
        try:
            coll.insert_many([{"_id": 1}, {"_id": 9999}], ordered=True)
            raise AssertionError("duplicate _id accepted")
        except BulkWriteError as exc:
            check(exc.details["nInserted"] == 0 and exc.details["writeErrors"][0]["code"] == 11000, "ordered bulk")
        check("items" in app_admin.shop.list_collection_names(), "listCollections")
        names = app_admin.list_database_names()
        check({"admin", "local", "shop"} <= set(names), f"listDatabases nameOnly: {names}")
        sizes = app_admin.admin.command("listDatabases")["databases"]
        check(all(d["sizeOnDisk"] > 0 for d in sizes), f"listDatabases sizeOnDisk: {sizes}")
        expect_failure(26, app_admin.shop.command, "listIndexes", "nothere", contains="ns does not exist")
        expect_failure(59, app_admin.admin.command, "fooBar", contains="no such command: 'fooBar'")

        # users and roles
        admin.admin.command("createUser", "app", pwd="app-pw", roles=[{"role": "readWrite", "db": "shop"}])
        expect_failure(51003, admin.admin.command, "createUser", "app", pwd="x", roles=[],
                       contains='User "app@admin" already exists')
        app = server.client("app", "app-pw")
        check(app.shop.items.count_documents({}) == 200, "app reads its database")
        app.shop.items.insert_one({"_id": "from-app"})
        expect_failure(13, app.other.things.insert_one, {"x": 1},
                       contains="not authorized on other to execute command")
        expect_failure(13, app.admin.command, "listDatabases", authorizedDatabases=False)
        check(app.list_database_names() == ["shop"], "authorized databases only")
        admin.admin.command("grantRolesToUser", "app", roles=[{"role": "read", "db": "other"}])
        check(app.other.things.count_documents({}) == 0, "granted read works")
        expect_failure(13, app.other.things.insert_one, {"x": 1})
        admin.admin.command("revokeRolesFromUser", "app", roles=[{"role": "read", "db": "other"}])
        expect_failure(13, app.other.things.count_documents, {})
        info = admin.admin.command("usersInfo", {"user": "app", "db": "admin"})["users"][0]
        check(info["roles"] == [{"role": "readWrite", "db": "shop"}], f"usersInfo roles: {info}")
        check("credentials" not in info and set(info["mechanisms"]) == {"SCRAM-SHA-1", "SCRAM-SHA-256"},
              f"usersInfo without credentials: {info}")
        creds = admin.admin.command("usersInfo", "app", showCredentials=True)["users"][0]["credentials"]
        sha256 = creds["SCRAM-SHA-256"]
        check(sha256["iterationCount"] >= 4096 and len(base64.b64decode(sha256["salt"])) == 28,
              f"SCRAM-SHA-256 credentials: iterations {sha256['iterationCount']}")
        admin.admin.command("createUser", "nobody", pwd="n-pw", roles=[])
        expect_failure(13, server.client("nobody", "n-pw").shop.items.find_one, {})
        admin.admin.command("updateUser", "app", pwd="new-pw")
        expect_failure(18, server.client("app", "app-pw").shop.items.find_one, {})
        check(server.client("app", "new-pw").shop.items.find_one({"_id": "from-app"}) is not None, "new password")
        admin.admin.command("dropUser", "app")
        expect_failure(11, admin.admin.command, "dropUser", "app", contains='User "app@admin" not found')
        expect_failure(18, server.client("app", "new-pw").shop.items.find_one, {})
        expect_failure(13, app.shop.items.find_one, {})  # an open session loses a dropped user

        # parameters
        details = admin.admin.command({"getParameter": {"showDetails": True}, "logLevel": 1,
                                       "enableLocalhostAuthBypass": 1})
        check(details["logLevel"] == {"value": 0, "settableAtRuntime": True, "settableAtStartup": True},
              f"logLevel details: {details}")
        check(details["enableLocalhostAuthBypass"]["settableAtRuntime"] is False, "startup-only parameter")
        everything = admin.admin.command({"getParameter": {"showDetails": True, "allParameters": True}})
        check(len([k for k in everything if k != "ok"]) >= 30, "a realistic parameter table")
        check(admin.admin.command("setParameter", 1, cursorTimeoutMillis=120000)["was"] == 600000, "was")
        check(admin.admin.command("getParameter", 1, cursorTimeoutMillis=1)["cursorTimeoutMillis"] == 120000,
              "setParameter is read back")
        expect_failure(20, admin.admin.command, "setParameter", 1, enableLocalhostAuthBypass=False,
                       contains="not allowed to change [enableLocalhostAuthBypass] at runtime")
        expect_failure(72, admin.admin.command, "setParameter", 1, noSuchParameter=1,
                       contains="attempted to set unrecognized parameter [noSuchParameter]")
        expect_failure(2, admin.admin.command, "setParameter", 1, scramSHA256IterationCount=10)
        expect_failure(72, admin.admin.command, "getParameter", 1, noSuchParameter=1,
                       contains="no option found to get")
        expect_failure(13, admin.shop.command, "getParameter", 1, logLevel=1,
                       contains="may only be run against the admin database")
        opts = admin.admin.command("getCmdLineOpts")
        check(opts["parsed"]["security"]["authorization"] == "enabled" and "--auth" in opts["argv"],
              f"getCmdLineOpts: {opts}")
        status = admin.admin.command("serverStatus")
        check(status["uptime"] >= 0 and status["connections"]["current"] >= 1 and status["process"] == "mongod",
              "serverStatus")


def test_fsync_lock_file_backup_and_restart():
    with world("standin-files-") as (stack, root):
        server = StandIn(stack, root, "a", "--auth").start()
        server.client().admin.command("createUser", "admin", pwd=ADMIN_PW, roles=["root"])
        admin = server.client("admin", ADMIN_PW)
        admin.app.docs.insert_many([{"_id": i, "v": "x" * 100} for i in range(500)])

        lock_conn = server.client("admin", ADMIN_PW)
        reply = lock_conn.admin.command("fsync", lock=True)
        check(reply["lockCount"] == 1 and "now locked against writes" in reply["info"], f"fsync lock: {reply}")
        check(admin.admin.command("currentOp").get("fsyncLock") is True, "currentOp shows the fsync lock")
        before = data_files(server.dbpath)
        done = threading.Event()
        errors = []

        def blocked_write():
            try:
                server.client("admin", ADMIN_PW).app.docs.insert_one({"_id": "during-lock"})
            except Exception as exc:  # reported below
                errors.append(exc)
            done.set()

        writer = threading.Thread(target=blocked_write)
        writer.start()
        time.sleep(1.0)
        check(not done.is_set(), "a write must wait while fsync holds the lock")
        check(admin.app.docs.count_documents({}) == 500, "reads continue under the fsync lock")
        copy = os.path.join(root, "copy")
        shutil.copytree(server.dbpath, copy, ignore=shutil.ignore_patterns("mongod.lock", "diagnostic.data"))
        check(data_files(server.dbpath) == before, "the data files changed under the fsync lock")
        lock_conn.admin.command("fsyncUnlock")
        check(done.wait(10) and not errors, f"the blocked write must finish after fsyncUnlock: {errors}")
        writer.join()
        expect_failure(20, lock_conn.admin.command, "fsyncUnlock", contains="fsyncUnlock called when not locked")

        # A second process started on the copied bytes sees the data as of the lock.
        restored = StandIn(stack, root, "restored", "--auth", dbpath=copy).start()
        r = restored.client("admin", ADMIN_PW)
        check(r.app.docs.count_documents({}) == 500, "the file copy holds the 500 documents")
        check(r.app.docs.find_one({"_id": "during-lock"}) is None, "the copy must not hold the write made after it")
        restored.stop()

        # Clean restart, then a crash (SIGKILL) restart: every acknowledged write survives.
        check(server.stop() == 0, "SIGTERM must stop the stand-in with exit code 0")
        with open(os.path.join(server.dbpath, "mongod.lock"), "rb") as f:
            check(f.read() == b"", "a clean shutdown leaves mongod.lock empty")
        server.start()
        admin = server.client("admin", ADMIN_PW)
        check(admin.app.docs.count_documents({}) == 501, "data after a clean restart")
        admin.app.docs.insert_one({"_id": "before-crash"})
        server.stop(signal.SIGKILL)
        server.start()
        admin = server.client("admin", ADMIN_PW)
        check(admin.app.docs.find_one({"_id": "before-crash"}) is not None, "an acknowledged write survives SIGKILL")
        try:
            admin.admin.command("shutdown", force=True)
        except AutoReconnect:
            pass
        check(server.proc.wait(30) == 0, "the shutdown command stops the process")


def _crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _recv_message(sock):
    header = b""
    while len(header) < 16:
        chunk = sock.recv(16 - len(header))
        if not chunk:
            return None
        header += chunk
    length, _, response_to, opcode = struct.unpack("<iiii", header)
    body = b""
    while len(body) < length - 16:
        chunk = sock.recv(length - 16 - len(body))
        if not chunk:
            return None
        body += chunk
    return opcode, response_to, body


def _op_msg(request_id, body, sequences=(), checksum=False, corrupt=False):
    flags = 1 if checksum else 0
    parts = [struct.pack("<I", flags), b"\x00", bson.BSON.encode(body)]
    for ident, docs in sequences:
        payload = ident.encode() + b"\x00" + b"".join(bson.BSON.encode(d) for d in docs)
        parts += [b"\x01", struct.pack("<i", 4 + len(payload)), payload]
    content = b"".join(parts)
    length = 16 + len(content) + (4 if checksum else 0)
    message = struct.pack("<iiii", length, request_id, 0, 2013) + content
    if checksum:
        crc = _crc32c(message) ^ (1 if corrupt else 0)
        message += struct.pack("<I", crc)
    return message


def _msg_reply(sock, message):
    sock.sendall(message)
    opcode, _, body = _recv_message(sock)
    check(opcode == 2013, f"expected an OP_MSG reply, got opcode {opcode}")
    check(body[4] == 0, "reply must start with a body section")
    return bson.BSON(body[5:]).decode()


def test_wire_protocol():
    check(_crc32c(b"123456789") == 0xE3069283, "the test's own CRC-32C")
    with world("standin-wire-") as (stack, root):
        server = StandIn(stack, root, "a").start()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            query = bson.BSON.encode({"isMaster": 1, "helloOk": True, "client": {"application": {"name": "t"}}})
            msg = struct.pack("<iii", 7, 0, 2004) + struct.pack("<i", 0) + b"admin.$cmd\x00" + \
                struct.pack("<ii", 0, -1) + query
            sock.sendall(struct.pack("<i", 4 + len(msg)) + msg)
            opcode, response_to, body = _recv_message(sock)
            check(opcode == 1 and response_to == 7, f"OP_QUERY must be answered by OP_REPLY to 7: {opcode}")
            flags, cursor_id, start, count = struct.unpack("<iqii", body[:20])
            reply = bson.BSON(body[20:]).decode()
            check(count == 1 and reply["ismaster"] is True and reply["helloOk"] is True
                  and 9 <= reply["maxWireVersion"] <= 17, f"OP_REPLY isMaster: {reply}")

            ok = _msg_reply(sock, _op_msg(8, {"ping": 1, "$db": "admin"}, checksum=True))
            check(ok["ok"] == 1.0, f"OP_MSG with a valid checksum: {ok}")
            bad = _msg_reply(sock, _op_msg(9, {"ping": 1, "$db": "admin"}, checksum=True, corrupt=True))
            check(bad["ok"] == 0.0 and "checksum" in bad["errmsg"], f"a corrupt checksum must be refused: {bad}")

            docs = [{"_id": i, "s": "kind-1"} for i in range(3)]
            res = _msg_reply(sock, _op_msg(10, {"insert": "seq", "$db": "wire", "ordered": True},
                                           sequences=[("documents", docs)]))
            check(res == {"n": 3, "ok": 1.0}, f"kind-1 document sequence insert: {res}")
            found = _msg_reply(sock, _op_msg(11, {"find": "seq", "filter": {"s": "kind-1"}, "$db": "wire"}))
            check([d["_id"] for d in found["cursor"]["firstBatch"]] == [0, 1, 2], f"find after kind-1: {found}")

            broken = bson.BSON.encode({"ping": 1, "$db": "admin"})[:-1] + b"\x05"
            content = struct.pack("<I", 0) + b"\x00" + broken
            sock.sendall(struct.pack("<iiii", 16 + len(content), 12, 0, 2013) + content)
            opcode, _, body = _recv_message(sock)
            err = bson.BSON(body[5:]).decode()
            check(err["ok"] == 0.0 and err["code"] == 22, f"malformed BSON must be refused with InvalidBSON: {err}")

            compressed = struct.pack("<iiii", 25, 13, 0, 2012) + struct.pack("<iib", 2013, 0, 0)
            sock.sendall(compressed)
            check(_recv_message(sock) is None, "OP_COMPRESSED (never advertised) must close the connection")


def _wait_state(client, wanted, timeout=60):
    def states():
        st = client.admin.command("replSetGetStatus")
        got = sorted(m["stateStr"] for m in st["members"])
        return st if got == sorted(wanted) else None
    return wait_for(states, timeout, f"replica set members {wanted}")


def test_replica_set():
    with world("standin-rs-") as (stack, root):
        key = os.path.join(root, "keyfile")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"c2hhcmVkIHNlY3JldCBmb3IgdGhlIHJlcGxpY2Egc2V0\n")
        os.close(fd)
        a = StandIn(stack, root, "a", "--replSet", "rs0", "--keyFile", key).start()
        b = StandIn(stack, root, "b", "--replSet", "rs0", "--keyFile", key).start()

        anon = a.client()
        check(anon.admin.command("hello").get("info") == "Does not have a valid replica set config",
              "an uninitialized member says so")
        expect_failure(13, anon.admin.command, "replSetGetStatus", contains="requires authentication")
        anon.admin.command("replSetInitiate", {
            "_id": "rs0", "members": [{"_id": 0, "host": a.host}],
            "settings": {"heartbeatIntervalMillis": 500, "electionTimeoutMillis": 3000}})
        wait_for(lambda: anon.admin.command("hello").get("isWritablePrimary"), 30, "a one-member set elects a primary")
        anon.admin.command("createUser", "admin", pwd=ADMIN_PW, roles=["root"])
        ca = a.client("admin", ADMIN_PW)
        ca.app.docs.insert_many([{"_id": i} for i in range(20)])
        status = ca.admin.command("replSetGetStatus")
        check(status["set"] == "rs0" and status["myState"] == 1 and status["term"] >= 1, f"status: {status}")
        applied = status["optimes"]["appliedOpTime"]
        check(isinstance(applied["ts"], bson.timestamp.Timestamp) and applied["t"] >= 1, f"optime: {applied}")
        check(ca.local.oplog.rs.find_one({"ns": "app.docs", "op": "i", "o._id": 3}) is not None,
              "the oplog records inserts with op, ns, o, ts, t")

        config = ca.admin.command("replSetGetConfig")["config"]
        config["version"] += 1
        config["members"].append({"_id": 1, "host": b.host})
        ca.admin.command("replSetReconfig", config)
        _wait_state(ca, ["PRIMARY", "SECONDARY"])
        cb = b.client("admin", ADMIN_PW)  # users replicated from the primary
        wait_for(lambda: cb.app.docs.count_documents({}) == 20, 30, "the secondary cloned the data")

        ca.app.get_collection("docs", write_concern=pymongo.WriteConcern(w=2, wtimeout=20000)).insert_one(
            {"_id": "replicated"})
        check(cb.app.docs.find_one({"_id": "replicated"}) == {"_id": "replicated"},
              "a w:2 write on the primary is read back on the secondary")
        hello_b = cb.admin.command("hello")
        check(hello_b["secondary"] is True and hello_b["setName"] == "rs0" and hello_b["primary"] == a.host
              and set(hello_b["hosts"]) == {a.host, b.host} and hello_b["me"] == b.host, f"hello on B: {hello_b}")
        try:
            cb.app.docs.insert_one({"_id": "on-secondary"})
            raise AssertionError("a write on the secondary was accepted")
        except NotPrimary as exc:
            check("not primary" in str(exc), f"secondary write error: {exc}")
        st_b = cb.admin.command("replSetGetStatus")
        check(st_b["syncSourceHost"] == a.host and st_b["myState"] == 2, f"B syncs from A: {st_b['syncSourceHost']}")

        def both_vote():
            version = ca.admin.command("replSetGetConfig")["config"]["version"]
            return (ca.admin.command("replSetGetStatus")["votingMembersCount"] == 2
                    and cb.admin.command("replSetGetConfig")["config"]["version"] == version)
        wait_for(both_vote, 30, "the new member becomes a voter on both members (newlyAdded cleared)")
        check(all(m["health"] == 1.0 for m in st_b["members"]), f"B sees both members healthy: {st_b['members']}")

        expect_failure(2, ca.admin.command, "replSetStepDown", 5, contains="must be longer than")
        ca.admin.command("replSetStepDown", 20, secondaryCatchUpPeriodSecs=10)
        wait_for(lambda: cb.admin.command("hello").get("isWritablePrimary"), 30, "B becomes primary by handoff")
        term_b = cb.admin.command("replSetGetStatus")["term"]
        check(term_b >= 2, f"a new term after the election: {term_b}")
        cb.app.get_collection("docs", write_concern=pymongo.WriteConcern(w=2, wtimeout=20000)).insert_one(
            {"_id": "written-on-b"})
        check(ca.app.docs.find_one({"_id": "written-on-b"}) is not None, "A follows B after stepping down")

        ca.admin.command("replSetFreeze", 0)
        ca.admin.command("replSetStepUp")
        check(ca.admin.command("hello")["isWritablePrimary"], "A is primary again after replSetStepUp")
        wait_for(lambda: cb.admin.command("hello").get("secondary"), 30, "B returns to secondary")
        final = _wait_state(ca, ["PRIMARY", "SECONDARY"])
        check(final["term"] > term_b, "stepping up starts a newer term")
        ca.app.get_collection("docs", write_concern=pymongo.WriteConcern(w="majority", wtimeout=20000)).insert_one(
            {"_id": "final"})
        check(cb.app.docs.count_documents({}) == 23, "both members hold every document")
        hello_a = ca.admin.command("hello")
        check(hello_a["electionId"] is not None and hello_a["lastWrite"]["opTime"]["t"] == final["term"],
              f"hello reports electionId and lastWrite: {hello_a}")


def _system_client(server, key_text):
    """The keyFile identity: __system@local, as members (and mongorestore --oplogReplay) log in."""
    return pymongo.MongoClient("127.0.0.1", server.port, directConnection=True, serverSelectionTimeoutMS=5000,
                               username="__system", password=key_text, authSource="local",
                               authMechanism="SCRAM-SHA-256")


def test_apply_ops():
    """applyOps, as mongorestore --oplogReplay sends it: only an identity with every privilege
    (__system here) may run it; inserts and updates are upserts; entries are checked first."""
    with world("standin-applyops-") as (stack, root):
        key = os.path.join(root, "keyfile")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"YXBwbHlPcHMga2V5ZmlsZQ==\n")
        os.close(fd)
        server = StandIn(stack, root, "a", "--keyFile", key).start()
        server.client().admin.command("createUser", "admin", pwd=ADMIN_PW, roles=["root"])
        admin = server.client("admin", ADMIN_PW)
        admin.app.docs.insert_many([{"_id": 1, "v": "one"}, {"_id": 2, "v": "two"}])
        ops = [{"op": "i", "ns": "app.docs", "o": {"_id": 3, "v": "three"}},
               {"op": "i", "ns": "app.docs", "o": {"_id": 1, "v": "one again"}},
               {"op": "u", "ns": "app.docs", "o2": {"_id": 2}, "o": {"_id": 2, "v": "two, replaced"}},
               {"op": "d", "ns": "app.docs", "o": {"_id": 3}},
               {"op": "c", "ns": "app.$cmd", "o": {"create": "made"}},
               {"op": "i", "ns": "app.made", "o": {"_id": "m"}},
               {"op": "n", "ns": "", "o": {"msg": "noop"}}]
        expect_failure(13, admin.admin.command, "applyOps", ops, contains="not authorized on admin")
        check(admin.app.docs.count_documents({}) == 2, "a refused applyOps changed nothing")
        system = _system_client(server, "YXBwbHlPcHMga2V5ZmlsZQ==")
        bad = ops[:2] + [{"op": "x", "ns": "app.docs", "o": {"_id": 9}}]
        expect_failure(2, system.admin.command, "applyOps", bad, contains="unknown op type")
        check(admin.app.docs.find_one({"_id": 3}) is None, "entries are all checked before any is applied")
        reply = system.admin.command("applyOps", ops)
        check(reply["applied"] == len(ops) and reply["results"] == [True] * len(ops), f"applyOps reply: {reply}")
        docs = {d["_id"]: d["v"] for d in admin.app.docs.find()}
        check(docs == {1: "one again", 2: "two, replaced"}, f"applied entries: {docs}")
        check(admin.app.made.find_one() == {"_id": "m"}, "a command entry created a collection")


def test_copied_member_waits_removed():
    """A member started on a copy of another member's files does not find itself in the copied
    config: like mongod it stays REMOVED, and joins (without an initial sync) once added."""
    with world("standin-copy-") as (stack, root):
        key = os.path.join(root, "keyfile")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"Y29waWVkIG1lbWJlciBrZXlmaWxl\n")
        os.close(fd)
        a = StandIn(stack, root, "a", "--replSet", "rs0", "--keyFile", key).start()
        anon = a.client()
        anon.admin.command("replSetInitiate", {
            "_id": "rs0", "members": [{"_id": 0, "host": a.host}],
            "settings": {"heartbeatIntervalMillis": 300, "electionTimeoutMillis": 2000}})
        wait_for(lambda: anon.admin.command("hello").get("isWritablePrimary"), 30, "A becomes primary")
        anon.admin.command("createUser", "admin", pwd=ADMIN_PW, roles=["root"])
        ca = a.client("admin", ADMIN_PW)
        ca.app.docs.insert_many([{"_id": i} for i in range(30)])
        ca.admin.command("fsync", lock=True)
        files = data_files(a.dbpath)
        ca.admin.command("fsyncUnlock")
        b = StandIn(stack, root, "b", "--replSet", "rs0", "--keyFile", key)
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(b.dbpath, rel)), exist_ok=True)
            with open(os.path.join(b.dbpath, rel), "wb") as f:
                f.write(data)
        b.start()
        hello_b = b.client().admin.command("hello")
        check("setName" not in hello_b and hello_b.get("isreplicaset") is True and not hello_b["isWritablePrimary"]
              and hello_b.get("info") == "Does not have a valid replica set config", f"hello on the copy: {hello_b}")
        cb = b.client("admin", ADMIN_PW)
        expect_failure(93, cb.admin.command, "replSetGetStatus", contains="not a member")
        config = ca.admin.command("replSetGetConfig")["config"]
        config["version"] += 1
        config["members"].append({"_id": 1, "host": b.host})
        ca.admin.command("replSetReconfig", config)
        _wait_state(ca, ["PRIMARY", "SECONDARY"])
        ca.app.get_collection("docs", write_concern=pymongo.WriteConcern(w=2, wtimeout=20000)).insert_one(
            {"_id": "after"})
        check(cb.app.docs.count_documents({}) == 31, "the copy follows A once added")
        with open(b.log_path) as f:
            check("Starting initial sync" not in f.read(), "the copy needed no initial sync")


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    only = os.environ.get("TROVE_TEST_ONLY")
    failed = 0
    for name, fn in tests:
        if only and only not in name:
            continue
        start = time.monotonic()
        try:
            fn()
            print(f"ok   {name} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - start:.1f}s)", flush=True)
            traceback.print_exc()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
