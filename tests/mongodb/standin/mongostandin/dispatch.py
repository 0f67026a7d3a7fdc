"""The command table and the path every command takes: look up, authorize
(authentication, roles, the localhost exception), check the replica set
state (writes only on a primary, reads on a secondary only when the client
allows it), run under the server lock, make writes durable, then wait for
the write concern. Handlers live in the cmd_*.py modules.
"""
import time

from .bsoncodec import to_shell
from .errors import MongoError, not_supported

COMMANDS = {}
SECRET_FIELDS = {"pwd", "payload", "password", "key", "credentials"}


class Spec:
    def __init__(self, func, name, auth, secondary, admin_only, writes, lock, localhost_ok, help_text):
        self.func = func
        self.name = name
        self.auth = auth
        self.secondary = secondary
        self.admin_only = admin_only
        self.writes = writes
        self.lock = lock
        self.localhost_ok = localhost_ok
        self.help = help_text


def command(*names, auth="authenticated", secondary="always", admin_only=False, writes=False, lock=True,
            localhost_ok=False):
    """Register a handler. auth: "none", "authenticated", ("db", action), ("cluster", action) or
    "custom" (the handler checks). secondary: "always", "optIn" (reads) or "never" (writes)."""
    def register(func):
        for name in names:
            COMMANDS[name] = Spec(func, name, auth, secondary, admin_only, writes, lock, localhost_ok,
                                  (func.__doc__ or "").strip().split("\n")[0])
        return func
    return register


class CloseConnection(Exception):
    """Close the client connection without a reply (shutdown does this)."""


def redacted(value):
    """A copy of a command safe to show: secret fields become "xxx" at any depth."""
    if isinstance(value, list):
        return [redacted(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: "xxx" if k in SECRET_FIELDS else redacted(v) for k, v in value.items()}


class Context:
    """One command's view of the world."""

    def __init__(self, server, conn, request):
        self.server = server
        self.conn = conn
        self.request = request
        self.cmd = request.body
        self.db = request.db
        self.name = next(iter(self.cmd))
        self.identities = []
        self.localhost_exception = False

    @property
    def arg(self):
        return self.cmd[self.name]

    def auth_enabled(self):
        return self.server.auth_enabled

    def unauthorized(self, db=None):
        text = to_shell(redacted(self.cmd))
        if len(text) > 1024:
            text = text[:1020] + " ..."
        return MongoError(13, f"not authorized on {db or self.db} to execute command {text}")

    def allowed_db(self, action, db=None):
        if not self.auth_enabled():
            return True
        return any(i.allowed_db(action, db or self.db) for i in self.identities)

    def allowed_cluster(self, action):
        if not self.auth_enabled():
            return True
        return any(i.allowed_cluster(action) for i in self.identities)

    def require_db(self, action, db=None):
        if not self.allowed_db(action, db):
            raise self.unauthorized(db)

    def require_cluster(self, action):
        if not self.allowed_cluster(action):
            raise self.unauthorized()

    def is_system(self):
        return any(i.system for i in self.identities)

    def owner(self):
        """Who owns cursors opened by this command."""
        return tuple(sorted((i.user, i.db) for i in self.identities))

    def wait_writable(self):
        """Block while fsync holds the write lock (as mongod's writers do)."""
        self.server.wait_while_fsync_locked()


def _check_auth(ctx, spec):
    server = ctx.server
    ctx.identities = ctx.conn.current_identities(server)
    if not server.auth_enabled or spec.auth == "none":
        return
    if not ctx.identities:
        if spec.localhost_ok and ctx.conn.is_local and server.localhost_exception_open():
            ctx.localhost_exception = True
            return
        raise MongoError(13, f"command {ctx.name} requires authentication")
    if spec.auth == "authenticated" or spec.auth == "custom":
        return
    scope, action = spec.auth
    if scope == "db":
        ctx.require_db(action)
    else:
        ctx.require_cluster(action)


def _check_replication(ctx, spec):
    repl = ctx.server.repl
    if repl is None or spec.secondary == "always" or ctx.db == "local":
        return
    if repl.is_writable_primary():
        return
    if spec.secondary == "never":
        raise MongoError(10107, "not primary")
    if not repl.can_serve_reads():
        raise MongoError(13436, "node is not in primary or recovering state")
    if not ctx.request.secondary_ok:
        raise MongoError(13435, "not primary and secondaryOk=false")


def _check_generic_arguments(ctx):
    """Arguments that would change a command's meaning if ignored are refused instead."""
    cmd = ctx.cmd
    if "startTransaction" in cmd or "autocommit" in cmd:
        raise not_supported("multi-document transactions")
    read_concern = cmd.get("readConcern")
    if isinstance(read_concern, dict):
        level = read_concern.get("level", "local")
        if level not in ("local", "available", "majority"):
            raise not_supported(f"readConcern level {level}")
        if "afterClusterTime" in read_concern or "atClusterTime" in read_concern:
            raise not_supported("causally consistent and snapshot reads")


def run_command(server, conn, request):
    """The reply document for one request. Never raises MongoError (it becomes the reply)."""
    if not request.body:
        return MongoError(59, "no such command: ''").reply()
    name = next(iter(request.body))
    spec = COMMANDS.get(name)
    if spec is None:
        return MongoError(59, f"no such command: '{name}'").reply()
    ctx = Context(server, conn, request)
    started = time.monotonic()
    try:
        return _run(server, conn, spec, ctx)
    finally:
        _log_command(server, conn, ctx, started)


def _log_command(server, conn, ctx, started):
    """Never logs the command document: it may hold a password or a SASL payload."""
    millis = int((time.monotonic() - started) * 1000)
    attr = {"command": ctx.name, "db": ctx.db, "durationMillis": millis}
    slow_ms = server.options.get("operationProfiling.slowOpThresholdMs", 100)
    if millis >= slow_ms and ctx.name not in ("getMore", "hello", "isMaster", "ismaster", "replSetHeartbeat"):
        server.log.info("COMMAND", conn.ctx_name, "Slow query", attr)
    else:
        server.log.debug(1, "COMMAND", conn.ctx_name, "Ran command", attr)


def _run(server, conn, spec, ctx):
    try:
        if not spec.lock:
            with server.lock:
                _prepare(ctx, spec)
            return spec.func(ctx)
        with server.lock:
            server.note_optime(None)
            _prepare(ctx, spec)
            try:
                reply = spec.func(ctx)
            finally:
                if spec.writes:
                    server.storage.commit()
                    server.cond.notify_all()
            optime = server.take_optime(conn)
            if spec.writes and server.repl is not None and reply.get("ok"):
                wce = server.repl.await_write_concern(ctx.cmd.get("writeConcern"), optime)
                if wce:
                    reply["writeConcernError"] = wce
            return reply
    except MongoError as exc:
        return exc.reply()


def _prepare(ctx, spec):
    server = ctx.server
    server.counters["command"] += 1
    if server.shutting_down:
        raise MongoError(91, "The server is in quiesce mode and will shut down")
    _check_generic_arguments(ctx)
    _check_auth(ctx, spec)
    if spec.admin_only and ctx.db != "admin":
        raise MongoError(13, f"{ctx.name} may only be run against the admin database.")
    _check_replication(ctx, spec)
    write_concern = ctx.cmd.get("writeConcern")
    if spec.writes and server.repl is None and isinstance(write_concern, dict):
        w = write_concern.get("w")
        if type(w) in (int, float) and not isinstance(w, bool) and w > 1:
            raise MongoError(2, "cannot use 'w' > 1 without replication")
