"""Server-level commands: the handshake (hello/isMaster), build and server
status, parameters, command-line options, sessions, fsync lock/unlock,
currentOp and shutdown.
"""
import os
import platform
import socket
import time
import uuid

from .bsoncodec import Binary, DateTime, Int64
from .dispatch import COMMANDS, CloseConnection, command
from .errors import MongoError

VERSION = "5.0.0"
VERSION_ARRAY = [5, 0, 0, 0]
STANDIN_NOTE = ("mongod stand-in (Python, tests only): speaks the MongoDB 5.0 wire protocol; not MongoDB. "
                "See its README for what it does not do.")


@command("hello", "isMaster", "ismaster", auth="none")
def cmd_hello(ctx):
    """Handshake and topology: wire versions, limits, replica set role."""
    return ctx.server.hello_reply(ctx)


@command("ping", auth="none")
def cmd_ping(ctx):
    """Checks the server answers."""
    return {"ok": 1.0}


@command("buildInfo", "buildinfo", auth="none")
def cmd_build_info(ctx):
    """Version information (the version is the protocol level the stand-in follows)."""
    return {"version": VERSION, "gitVersion": "standin", "standin": True, "standinNote": STANDIN_NOTE,
            "modules": [], "allocator": "system", "javascriptEngine": "none", "sysInfo": "deprecated",
            "versionArray": VERSION_ARRAY, "openssl": {"running": "disabled", "compiled": "disabled"},
            "buildEnvironment": {"distmod": "standin", "target_os": "linux", "target_arch": platform.machine()},
            "bits": 64, "debug": False, "maxBsonObjectSize": 16 * 1024 * 1024,
            "storageEngines": ["standin"], "ok": 1.0}


@command("whatsmyuri", auth="none")
def cmd_whatsmyuri(ctx):
    """The client's address as the server sees it."""
    return {"you": ctx.conn.peer, "ok": 1.0}


@command("_isSelf", auth="none")
def cmd_is_self(ctx):
    """Identifies this process (members use it to recognise themselves)."""
    return {"id": ctx.server.instance_id, "ok": 1.0}


@command("getParameter", auth=("cluster", "getParameter"), admin_only=True)
def cmd_get_parameter(ctx):
    """Server parameters; with showDetails, whether each is settable at runtime/startup."""
    out = ctx.server.parameters.get_command(ctx.cmd)
    out["ok"] = 1.0
    return out


@command("setParameter", auth=("cluster", "setParameter"), admin_only=True)
def cmd_set_parameter(ctx):
    """Change runtime-settable parameters."""
    reply, names = ctx.server.parameters.set_command(ctx.cmd)
    for name in names:
        ctx.server.log.info("COMMAND", ctx.conn.ctx_name, "Successfully set parameter",
                            {"parameter": name})
    ctx.server.parameters_changed(names)
    reply["ok"] = 1.0
    return reply


@command("getCmdLineOpts", auth=("cluster", "getCmdLineOpts"), admin_only=True)
def cmd_get_cmd_line_opts(ctx):
    """argv and the parsed startup options."""
    opts = ctx.server.options
    return {"argv": list(opts.argv), "parsed": opts.parsed(), "ok": 1.0}


@command("serverStatus", auth=("cluster", "serverStatus"))
def cmd_server_status(ctx):
    """Uptime, connections, operation counters, replication role, storage."""
    server = ctx.server
    uptime = time.monotonic() - server.start_monotonic
    status = {
        "host": server.host_name, "version": VERSION, "process": "mongod", "pid": Int64(os.getpid()),
        "uptime": float(int(uptime)), "uptimeMillis": Int64(int(uptime * 1000)),
        "uptimeEstimate": Int64(int(uptime)), "localTime": DateTime.now(),
        "asserts": {"regular": 0, "warning": 0, "msg": 0, "user": server.counters["userAsserts"], "rollovers": 0},
        "connections": {"current": len(server.connections), "available": 51200 - len(server.connections),
                        "totalCreated": server.counters["connectionsCreated"],
                        "active": max(1, len(server.connections))},
        "network": {"bytesIn": Int64(server.counters["bytesIn"]), "bytesOut": Int64(server.counters["bytesOut"]),
                    "numRequests": Int64(server.counters["requests"])},
        "opcounters": {k: Int64(server.counters[k]) for k in
                       ("insert", "query", "update", "delete", "getmore", "command")},
        "storageEngine": {"name": "standin", "supportsCommittedReads": True, "persistent": True,
                          "readOnly": False},
        "standin": True,
    }
    if server.repl is not None:
        repl = {k: v for k, v in server.hello_reply(ctx).items()
                if k in ("setName", "setVersion", "ismaster", "isWritablePrimary", "secondary", "primary",
                         "hosts", "me", "electionId", "lastWrite")}
        repl["rbid"] = 1
        status["repl"] = repl
    status["ok"] = 1.0
    return status


@command("hostInfo", auth=("cluster", "hostInfo"))
def cmd_host_info(ctx):
    """The machine the server runs on."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        pages = 0
    return {"system": {"currentTime": DateTime.now(), "hostname": socket.gethostname(), "cpuAddrSize": 64,
                       "memSizeMB": Int64(pages // (1024 * 1024)), "numCores": os.cpu_count() or 1,
                       "cpuArch": platform.machine(), "numaEnabled": False},
            "os": {"type": platform.system(), "name": platform.platform(), "version": platform.release()},
            "extra": {}, "ok": 1.0}


@command("connectionStatus", auth="none")
def cmd_connection_status(ctx):
    """The users this connection is authenticated as, and their roles."""
    users, roles = [], []
    for ident in ctx.identities:
        users.append({"user": ident.user, "db": ident.db})
        for r in ident.roles:
            if r not in roles:
                roles.append({"role": r["role"], "db": r["db"]})
    if ctx.cmd.get("showPrivileges"):
        raise MongoError(238, "showPrivileges is not supported by the mongod stand-in")
    return {"authInfo": {"authenticatedUsers": users, "authenticatedUserRoles": roles}, "ok": 1.0}


@command("listCommands", auth="none")
def cmd_list_commands(ctx):
    """Every command the stand-in implements."""
    out = {}
    for name in sorted(COMMANDS):
        spec = COMMANDS[name]
        out[name] = {"help": spec.help, "requiresAuth": spec.auth != "none",
                     "secondaryOk": spec.secondary != "never", "adminOnly": spec.admin_only}
    return {"commands": out, "ok": 1.0}


@command("startSession", auth="authenticated")
def cmd_start_session(ctx):
    """A logical session id (sessions are accepted and otherwise ignored)."""
    timeout = ctx.server.parameters.get("localLogicalSessionTimeoutMinutes")
    return {"id": {"id": Binary(uuid.uuid4().bytes, 4)}, "timeoutMinutes": timeout, "ok": 1.0}


@command("endSessions", "killSessions", "refreshSessions", "killAllSessionsByPattern", auth="none")
def cmd_end_sessions(ctx):
    """Session bookkeeping: accepted; the stand-in keeps no session state."""
    return {"ok": 1.0}


@command("killAllSessions", auth=("cluster", "killAnySession"))
def cmd_kill_all_sessions(ctx):
    """Kill every session (the stand-in keeps no session state)."""
    return {"ok": 1.0}


@command("fsync", auth=("cluster", "fsync"), admin_only=True)
def cmd_fsync(ctx):
    """Flush to disk; with lock: true, also block every write until fsyncUnlock."""
    server = ctx.server
    server.storage.commit()
    if not ctx.cmd.get("lock"):
        return {"numFiles": 1, "ok": 1.0}
    server.fsync_lock_count += 1
    server.log.info("COMMAND", ctx.conn.ctx_name, "Lock count is now", {"lockCount": server.fsync_lock_count})
    return {"info": "now locked against writes, use db.fsyncUnlock() to unlock",
            "lockCount": Int64(server.fsync_lock_count),
            "seeAlso": "http://dochub.mongodb.org/core/fsynccommand", "ok": 1.0}


@command("fsyncUnlock", auth=("cluster", "fsync"), admin_only=True)
def cmd_fsync_unlock(ctx):
    """Release one fsync lock; writes resume when none is left."""
    server = ctx.server
    if server.fsync_lock_count == 0:
        raise MongoError(20, "fsyncUnlock called when not locked")
    server.fsync_lock_count -= 1
    server.cond.notify_all()
    server.log.info("COMMAND", ctx.conn.ctx_name, "fsyncUnlock completed", {"lockCount": server.fsync_lock_count})
    return {"info": "fsyncUnlock completed", "lockCount": Int64(server.fsync_lock_count), "ok": 1.0}


@command("currentOp", auth="custom", admin_only=True)
def cmd_current_op(ctx):
    """In-progress operations (always empty here) and whether fsync holds the write lock."""
    if not ctx.cmd.get("$ownOps"):
        ctx.require_cluster("inprog")
    out = {"inprog": []}
    if ctx.server.fsync_lock_count:
        out["fsyncLock"] = True
        out["info"] = "use db.fsyncUnlock() to terminate the fsync write/snapshot lock"
    out["ok"] = 1.0
    return out


@command("logRotate", auth=("cluster", "logRotate"), admin_only=True)
def cmd_log_rotate(ctx):
    """Reopen the log file."""
    ctx.server.log.reopen()
    return {"ok": 1.0}


@command("explain", "mapReduce", "commitTransaction", "abortTransaction", "setFeatureCompatibilityVersion",
         "getLastError", "profile", "top", "setDefaultRWConcern", "getDefaultRWConcern",
         "replSetSyncFrom", "replSetMaintenance", "replSetResizeOplog", "replSetAbortPrimaryCatchUp",
         "cloneCollection", "planCacheClear", "getLog", "getShardVersion", "shardingState", auth="authenticated")
def cmd_known_unsupported(ctx):
    """Real mongod commands the stand-in does not implement (refused, never faked)."""
    raise MongoError(115, f"{ctx.name} is not supported by the mongod stand-in")


@command("shutdown", auth=("cluster", "shutdown"), admin_only=True, lock=False)
def cmd_shutdown(ctx):
    """Stop the server; a primary first waits for a caught-up electable secondary unless force."""
    force = bool(ctx.cmd.get("force"))
    timeout = ctx.cmd.get("timeoutSecs", 15)
    repl = ctx.server.repl
    if repl is not None and not force:
        repl.step_down_for_shutdown(timeout)
    ctx.server.begin_shutdown("shutdown command")
    raise CloseConnection()
