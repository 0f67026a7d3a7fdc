"""Replica set commands: replSetInitiate, replSetGetStatus, replSetGetConfig,
replSetReconfig, replSetStepDown, replSetStepUp, replSetFreeze, applyOps
(oplog entries, as mongorestore --oplogReplay sends them), and the
internal member-to-member commands (heartbeat, votes, position updates),
which only __system (the keyFile identity) may run when auth is on.
"""
from .bsoncodec import Binary, Int64
from .datastore import validate_collection_name, validate_db_name
from .dispatch import command
from .errors import MongoError, not_supported

_APPLY_OPS = {"i", "u", "d", "c", "n"}


def _repl(ctx):
    repl = ctx.server.repl
    if repl is None:
        raise MongoError(76, "not running with --replSet")
    return repl


@command("replSetInitiate", auth=("cluster", "replSetConfigure"), admin_only=True, localhost_ok=True)
def cmd_repl_set_initiate(ctx):
    """Create the replica set from this member (default: a one-member set)."""
    repl = _repl(ctx)
    arg = ctx.arg
    repl.initiate(arg if isinstance(arg, dict) else None)
    return {"ok": 1.0}


@command("replSetGetStatus", auth=("cluster", "replSetGetStatus"), admin_only=True)
def cmd_repl_set_get_status(ctx):
    """Members, states, optimes, term and sync sources."""
    return _repl(ctx).status()


@command("replSetGetConfig", auth=("cluster", "replSetGetConfig"), admin_only=True)
def cmd_repl_set_get_config(ctx):
    """The current replica set config."""
    repl = _repl(ctx)
    if repl.config is None:
        raise MongoError(94, "no replset config has been received")
    reply = {"config": repl.public_config(repl.config)}
    if ctx.cmd.get("commitmentStatus"):
        reply["commitmentStatus"] = True
    reply["ok"] = 1.0
    return reply


@command("replSetReconfig", auth=("cluster", "replSetConfigure"), admin_only=True)
def cmd_repl_set_reconfig(ctx):
    """Install a new config (version must grow; one voting member added or removed at a time)."""
    repl = _repl(ctx)
    if not isinstance(ctx.arg, dict):
        raise MongoError(14, "replSetReconfig needs a config document")
    repl.reconfig(ctx.arg, bool(ctx.cmd.get("force")))
    return {"ok": 1.0}


def _seconds(value, default):
    if value is None:
        return default
    if type(value) not in (int, float, Int64):
        return default
    return int(value)


@command("replSetStepDown", auth=("cluster", "replSetStateChange"), admin_only=True)
def cmd_repl_set_step_down(ctx):
    """Step down after an electable secondary has caught up (or at once with force)."""
    repl = _repl(ctx)
    seconds = _seconds(ctx.arg, 60)
    catch_up = _seconds(ctx.cmd.get("secondaryCatchUpPeriodSecs"), 10)
    repl.step_down(seconds, catch_up, bool(ctx.cmd.get("force")))
    return {"ok": 1.0}


@command("replSetStepUp", auth=("cluster", "replSetStateChange"), admin_only=True, lock=False)
def cmd_repl_set_step_up(ctx):
    """Stand for election now."""
    repl = _repl(ctx)
    with ctx.server.lock:
        if repl.config is None:
            raise MongoError(94, "no replset config has been received")
    won = repl.run_election_unlocked(skip_dry_run=bool(ctx.cmd.get("skipDryRun")), reason="replSetStepUp")
    if not won:
        raise MongoError(125, "Election failed.")
    return {"ok": 1.0}


@command("replSetFreeze", auth=("cluster", "replSetStateChange"), admin_only=True)
def cmd_repl_set_freeze(ctx):
    """Keep this secondary from standing for election for N seconds (0 unfreezes)."""
    reply = _repl(ctx).freeze(_seconds(ctx.arg, 0))
    reply["ok"] = 1.0
    return reply


@command("replSetGetRBID", auth=("cluster", "internal"), admin_only=True)
def cmd_repl_set_get_rbid(ctx):
    """Rollback id (constant: the stand-in never rolls back)."""
    _repl(ctx)
    return {"rbid": 1, "ok": 1.0}


@command("replSetHeartbeat", auth=("cluster", "internal"))
def cmd_repl_set_heartbeat(ctx):
    """Member-to-member liveness, state, optime and config propagation."""
    return _repl(ctx).on_heartbeat(ctx.cmd)


@command("replSetRequestVotes", auth=("cluster", "internal"), admin_only=True)
def cmd_repl_set_request_votes(ctx):
    """A candidate asks for this member's vote."""
    return _repl(ctx).on_request_votes(ctx.cmd)


@command("replSetUpdatePosition", auth=("cluster", "internal"), admin_only=True)
def cmd_repl_set_update_position(ctx):
    """A secondary reports how far it has applied the oplog."""
    return _repl(ctx).on_update_position(ctx.cmd)


def _check_entry(i, entry):
    if not isinstance(entry, dict):
        raise MongoError(14, f"applyOps entry {i} is not an object")
    op, ns = entry.get("op"), entry.get("ns")
    if op not in _APPLY_OPS:
        raise MongoError(2, f"applyOps entry {i}: unknown op type: {op!r}")
    if not isinstance(ns, str):
        raise MongoError(2, f"applyOps entry {i}: 'ns' must be a string")
    if not isinstance(entry.get("o"), dict):
        raise MongoError(2, f"applyOps entry {i}: 'o' must be an object")
    if "ui" in entry and not isinstance(entry["ui"], Binary):
        raise MongoError(2, f"applyOps entry {i}: 'ui' must be a UUID")
    if op == "n":
        return
    db, dot, name = ns.partition(".")
    validate_db_name(db)
    if op == "c":
        if name != "$cmd":
            raise MongoError(2, f"applyOps entry {i}: a command entry's ns must be <db>.$cmd")
        return
    if not dot:
        raise MongoError(73, f"Invalid namespace specified '{ns}'")
    validate_collection_name(db, name, for_user_write=False)
    if op == "u" and not isinstance(entry.get("o2"), dict):
        raise MongoError(2, f"applyOps entry {i}: an update needs 'o2'")


@command("applyOps", auth="custom", secondary="never", writes=True)
def cmd_apply_ops(ctx):
    """Apply oplog entries (i, u, d, c, n); inserts and updates are upserts, as with alwaysUpsert."""
    if ctx.auth_enabled() and not ctx.is_system():
        # mongod requires anyAction on anyResource, which only __system has among built-in identities
        raise ctx.unauthorized()
    ops = ctx.arg
    if not isinstance(ops, list):
        raise MongoError(14, "applyOps must be an array of oplog entries")
    if "preCondition" in ctx.cmd:
        raise not_supported("applyOps preCondition")
    if ctx.cmd.get("alwaysUpsert") is False:
        raise not_supported("applyOps alwaysUpsert: false")
    for i, entry in enumerate(ops):
        _check_entry(i, entry)
    ctx.wait_writable()
    applied = 0
    for entry in ops:
        try:
            ctx.server.datastore.apply_command_entry(entry)
        except MongoError as exc:
            exc.extra = {"applied": applied, "results": [True] * applied + [False]}
            raise
        applied += 1
    return {"applied": applied, "results": [True] * applied, "ok": 1.0}
