"""The plugin conformance battery: one scenario, written once, run for every
datastore through the whole product (trovectl -> trove-control -> trove-agent
-> plugin -> a real server), with CURVE on. A datastore is described by
tests/conformance/ds_<plugin>.py; everything checked here is checked from the
outside with the datastore's own client.

usage: battery.py PLUGIN PART   (PART: access, config, backup, replication)
"""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from controlplane import ControlPlane, Instance  # noqa: E402
from harness import check  # noqa: E402

HOSTILE_PASSWORD = "p'a\"s\\s w0rd-é"


def bring_up(env, ds, count, shared_backups=True):
    """Start `count` fresh servers, a control plane and one agent per server."""
    control = ControlPlane(env)
    backups = env.mkdir("backups", mode=0o700) if shared_backups else None
    servers = [ds.start_server(env, i) for i in range(count)]
    agents = [control.agent(ds.plugin, s.settings, f"{ds.plugin}-{i}", backup_dir=backups)
              for i, s in enumerate(servers)]
    control.start()
    for a in agents:
        a.serve()
    for a in agents:
        control.wait_connected(a.instance_id)
    return control, [Instance(control, a, s) for a, s in zip(agents, servers)]


def expect_error(r, codes, what):
    check(not r.ok, f"{what}: expected an error, got {r.result}")
    check(r.code in codes, f"{what}: expected {codes}, got {r.code}: {r.message}")
    check(r.message, f"{what}: the error has no message")


# --------------------------------------------------------------------- parts

def part_access(ds, env):
    control, (inst,) = bring_up(env, ds, 1)
    hello = control.instance(inst.id)
    caps = set(hello.get("capabilities", []))
    for op in sorted(ds.expect_unsupported):
        check(op not in caps, f"{op} is announced as a capability but the datastore cannot do it")
        expect_error(inst.op(op, {"name": "x"}), {"not_supported"}, f"{op} (declared unsupported)")
    check(inst.must("ping")["pong"] is True, "ping did not answer pong")
    status = inst.must("status")
    check(status["state"] == "running", f"status of a running server says {status['state']}")

    db = ds.test_database
    other = "conformance_other"
    if ds.databases:
        inst.must("database.create", {"name": db})
        inst.must("database.create", {"name": other})
        names = {d["name"] for d in inst.must("database.list")["databases"]}
        check({db, other} <= names, f"database.list lacks the new databases: {names}")
        expect_error(inst.op("database.create", {"name": db}), {"already_exists", "datastore_error"},
                     "creating a database twice")
    ds.write_rows(inst.server, db, [("k1", "v1")])

    inst.must("user.create", {"name": "alice", "password": HOSTILE_PASSWORD, "databases": [db]})
    check(ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db),
          "a user created with a password holding quotes, a backslash and a space cannot read its database")
    check(not ds.can_read(inst.server, "alice", "wrong-password", db), "a wrong password was accepted")
    if ds.databases:
        check(not ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, other),
              "a user can read a database it was never granted")
    users = {u["name"] for u in inst.must("user.list")["users"]}
    check("alice" in users, f"user.list lacks alice: {users}")
    shown = inst.must("user.show", {"name": "alice"})["user"]
    check(shown["name"] == "alice", f"user.show returned {shown}")
    access = {d["name"] for d in inst.must("user.access", {"name": "alice"})["databases"]}
    check(db in access, f"user.access does not list {db}: {access}")

    inst.must("user.revoke", {"name": "alice", "databases": [db]})
    check(not ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db), "access remains after revoke")
    inst.must("user.grant", {"name": "alice", "databases": [db]})
    check(ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db), "access missing after grant")
    inst.must("user.password", {"name": "alice", "password": "N3w\\pass'word"})
    check(ds.can_read(inst.server, "alice", "N3w\\pass'word", db), "the new password does not work")
    check(not ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db), "the old password still works")

    hostile = f"x'; DROP DATABASE {db}; --"
    r = inst.op("user.create", {"name": hostile, "password": "pw", "databases": [db]})
    if r.ok:
        names = {u["name"] for u in inst.must("user.list")["users"]}
        check(hostile in names, "a hostile name was accepted but not stored literally")
    else:
        expect_error(r, {"invalid_argument"}, "a hostile user name")
    # (a NUL byte cannot travel in JSON or msgpack strings at all: the wire tests cover it)
    expect_error(inst.op("user.create", {"name": "", "password": "pw"}), {"invalid_argument"}, "an empty user name")
    check(ds.read_rows(inst.server, db) == [("k1", "v1")], "data changed after hostile input")

    expect_error(inst.op("user.create", {"name": "bob"}), {"invalid_argument"}, "user.create without a password")
    expect_error(inst.op("user.create", {"name": 42, "password": "x"}), {"invalid_argument"}, "a numeric user name")
    expect_error(inst.op("no.such.op"), {"not_found"}, "an unknown op")
    expect_error(inst.op("user.show", {"name": "nobody-here"}), {"not_found"}, "showing a missing user")

    inst.must("user.delete", {"name": "alice"})
    check(not ds.can_read(inst.server, "alice", "N3w\\pass'word", db), "a deleted user can still log in")
    if ds.databases:
        inst.must("database.delete", {"name": other})
        names = {d["name"] for d in inst.must("database.list")["databases"]}
        check(other not in names, "database.delete left the database")


def part_config(ds, env):
    control, (inst,) = bring_up(env, ds, 1)
    params = {p["name"]: p for p in inst.must("config.schema")["parameters"]}
    live_name, live_value = ds.live_parameter
    restart_name, restart_value = ds.restart_parameter
    check(params.get(live_name, {}).get("dynamic") is True, f"{live_name} is not in the schema as live")
    check(params.get(restart_name, {}).get("dynamic") is False, f"{restart_name} is not in the schema as restart-only")

    before = ds.read_parameter(inst.server, live_name)
    bad = {live_name: live_value, "no_such_parameter_anywhere": "1"}
    r = inst.op("config.apply", {"values": bad})
    expect_error(r, {"invalid_argument"}, "applying a set with an unknown parameter")
    check("no_such_parameter_anywhere" in r.message, f"the violation is not named: {r.message}")
    check(ds.same_value(live_name, before, ds.read_parameter(inst.server, live_name)),
          "a set that failed validation changed the server")

    r = inst.must("config.apply", {"values": {live_name: live_value}})
    check(live_name in r["applied"], f"{live_name} not reported applied: {r.result}")
    got = ds.read_parameter(inst.server, live_name)
    check(ds.same_value(live_name, live_value, got), f"{live_name} is {got} on the server, not {live_value}")
    shown = inst.must("config.show", {"names": [live_name]})["values"]
    check(ds.same_value(live_name, live_value, shown.get(live_name)), f"config.show says {shown}")

    r = inst.must("config.apply", {"values": {restart_name: restart_value}})
    check(restart_name in r["pending_restart"], f"{restart_name} not reported pending: {r.result}")

    inst.must("config.reset")
    got = ds.read_parameter(inst.server, live_name)
    check(ds.same_value(live_name, before, got), f"after reset {live_name} is {got}, not {before}")


def _rows(n, start=0, tag="r"):
    return [(f"{tag}{i:05d}", f"value-{tag}-{i}") for i in range(start, start + n)]


def part_backup(ds, env):
    control, (src, dst) = bring_up(env, ds, 2)
    db = ds.test_database
    if ds.databases:
        src.must("database.create", {"name": db})
    first = _rows(200)
    ds.write_rows(src.server, db, first)
    full = src.must("backup.create", {"kind": "full"})["backup"]
    check(full["state"] == "complete" and full["checksum"].startswith("sha256:"), f"full backup record: {full}")
    chain_end, expected = full, sorted(first)
    if ds.incremental_backup:
        second = _rows(100, 200)
        ds.write_rows(src.server, db, second)
        inc = src.must("backup.create", {"kind": "incremental", "parent": full["id"]})["backup"]
        check(inc["parent"] == full["id"] and inc["state"] == "complete", f"incremental record: {inc}")
        chain_end, expected = inc, sorted(first + second)
    ds.write_rows(src.server, db, _rows(50, 900, tag="after"))  # after the last backup: must not come back

    listed = {b["id"] for b in src.must("backup.list")["backups"]}
    check({full["id"], chain_end["id"]} <= listed, f"backup.list lacks the backups: {listed}")

    dst.must("backup.restore", {"backup_id": full["id"]})
    check(ds.read_rows(dst.server, db) == sorted(first), "restoring the full backup did not give back its rows")
    if ds.incremental_backup:
        dst.must("backup.restore", {"backup_id": chain_end["id"]})
        check(ds.read_rows(dst.server, db) == expected, "restoring full + incremental did not give back all rows")

    # One byte flipped on disk: restore refuses before touching anything.
    before = ds.read_rows(dst.server, db)
    piece = os.path.join(src.agent.backup_dir, full["id"] + ".zst")
    with open(piece, "r+b") as f:
        f.seek(os.path.getsize(piece) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    r = dst.op("backup.restore", {"backup_id": full["id"]})
    expect_error(r, {"checksum_mismatch"}, "restoring a corrupted backup")
    check(dst.must("status")["state"] == "running", "the target stopped after a refused restore")
    check(ds.read_rows(dst.server, db) == before, "a refused restore changed the target's data")


def part_replication(ds, env):
    control, (src, rep) = bring_up(env, ds, 2)
    db = ds.test_database
    if ds.databases:
        src.must("database.create", {"name": db})
    ds.write_rows(src.server, db, _rows(20, tag="seed"))
    snap = src.must("replication.snapshot")
    check(snap.get("user") and snap.get("password"), f"snapshot gave no replication credentials: {snap.result}")
    source = {"host": src.server.host, "port": src.server.port, "user": snap["user"], "password": snap["password"]}
    rep.must("replication.attach", {"source": source, "snapshot": snap["backup"]["id"]})
    check(rep.must("replication.status")["role"] == "replica", "the replica does not report role replica")

    before = src.must("replication.position")["position"]
    ds.write_rows(src.server, db, _rows(30, tag="live"))
    after = src.must("replication.position")["position"]
    order = src.must("replication.compare", {"a": before, "b": after})["order"]
    check(order == "before", f"position before writes compares as {order} to the position after")
    rep.must("replication.wait", {"position": after, "timeout_ms": 30000})
    check(ds.read_rows(rep.server, db) == ds.read_rows(src.server, db), "the replica does not have the source's rows")

    # Promote the replica; the old source follows it.
    src.must("replication.read_only", {"read_only": True})
    final = src.must("replication.position")["position"]
    rep.must("replication.wait", {"position": final, "timeout_ms": 30000})
    rep.must("replication.promote")
    check(rep.must("replication.status")["role"] in ("primary", "standalone"), "the promoted replica is not primary")
    ds.write_rows(rep.server, db, _rows(10, tag="promoted"))
    creds = rep.must("replication.snapshot")
    new_source = {"host": rep.server.host, "port": rep.server.port, "user": creds["user"],
                  "password": creds["password"]}
    src.must("replication.demote", {"source": new_source})
    check(src.must("replication.status")["role"] == "replica", "the old source does not follow the new one")
    ds.write_rows(rep.server, db, _rows(10, tag="after-switch"))
    pos = rep.must("replication.position")["position"]
    src.must("replication.wait", {"position": pos, "timeout_ms": 30000})
    check(ds.read_rows(src.server, db) == ds.read_rows(rep.server, db),
          "the old source does not have the new source's rows after following it")


PARTS = {"access": part_access, "config": part_config, "backup": part_backup, "replication": part_replication}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in PARTS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    ds = importlib.import_module("ds_" + sys.argv[1]).DATASTORE
    with harness.Env(prefix=f"conformance-{sys.argv[1]}-{sys.argv[2]}-") as env:
        try:
            PARTS[sys.argv[2]](ds, env)
        except Exception:
            for name in sorted(os.listdir(env.dir)):
                if name.endswith(".log"):
                    print(f"--- {name} (tail)", file=sys.stderr)
                    with open(os.path.join(env.dir, name), "rb") as f:
                        print(b"\n".join(f.read().splitlines()[-30:]).decode("utf-8", "replace"), file=sys.stderr)
            raise
    print(f"conformance {sys.argv[1]} {sys.argv[2]}: passed")


if __name__ == "__main__":
    main()
