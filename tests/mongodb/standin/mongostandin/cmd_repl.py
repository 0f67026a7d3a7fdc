"""Replica set commands: replSetInitiate, replSetGetStatus, replSetGetConfig,
replSetReconfig, replSetStepDown, replSetStepUp, replSetFreeze, and the
internal member-to-member commands (heartbeat, votes, position updates),
which only __system (the keyFile identity) may run when auth is on.
"""
from .bsoncodec import Int64
from .dispatch import command
from .errors import MongoError


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
