"""The conformance battery: one scenario per part, written once, run against any
plugin through the whole product. Every check has a name that says what a
user expects, and fails with a reason; a part stops at its first failure,
since what follows depends on it. A part runs only when the plugin claims
the operations it needs (its capabilities, from the agent's hello).

Parts: access (users, databases, root, hostile input), config, backup,
replication, cluster, logs.
"""
import hashlib
import json
import os
import shutil

from .runtime import ControlPlane, Env, Instance, OpFailed

HOSTILE_PASSWORD = "p'a\"s\\s w0rd-é"
CLUSTER_SECRET = "trove-check shared secret 9f1c"


class StopPart(Exception):
    pass


class Report:
    """Counts and prints every check: PASS part: name / FAIL part: name -- reason."""

    def __init__(self, out):
        self.out = out
        self.passed = self.failed = 0
        self.parts = []

    def record(self, part, name, ok, reason=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        line = f"{'PASS' if ok else 'FAIL'} {part}: {name}" + ("" if ok or not reason else f" -- {reason}")
        print(line, file=self.out, flush=True)


class Part:
    def __init__(self, report, name):
        self.report = report
        self.name = name
        self.current = None

    def begin(self, name):
        """Name the check whose operations run next (an operation that fails fails it)."""
        self.current = name

    def expect(self, ok, reason):
        self.report.record(self.name, self.current, bool(ok), reason)
        if not ok:
            raise StopPart()

    def check(self, name, ok, reason):
        self.begin(name)
        self.expect(ok, reason)


def _error(r, codes):
    """None when r is an error with one of `codes` and a message, else why not."""
    if r.ok:
        return f"it succeeded: {json.dumps(r.result)[:200]}"
    if r.code not in codes:
        return f"expected {'/'.join(sorted(codes))}, got {r.code}: {r.message}"
    return None if r.message else "the error has no message"


def _rows(n, start=0, tag="r"):
    return [(f"{tag}{i:05d}", f"value-{tag}-{i}") for i in range(start, start + n)]


def _diff(got, want):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    return f"{len(got)} rows instead of {len(want)}; missing {missing[:3]}, unexpected {extra[:3]}"


class World:
    """Servers, a control plane and one agent per server, all in one Env."""

    def __init__(self, env, ds, plugin_dir, count):
        self.env = env
        self.control = ControlPlane(env)
        self.backups = env.mkdir("backups", mode=0o700)
        servers = [ds.start_server(env, i) for i in range(count)]
        agents = [self.control.agent(ds.plugin, plugin_dir, s.settings, f"{ds.plugin}-{i}", self.backups)
                  for i, s in enumerate(servers)]
        self.control.start()
        for a in agents:
            a.serve()
        for a in agents:
            self.control.wait_connected(a.instance_id)
        self.instances = [Instance(self.control, a, s) for a, s in zip(agents, servers)]


# ------------------------------------------------------------------ access

def part_access(p, ds, w, caps):
    (inst,) = w.instances
    p.begin("the agent answers ping and status says running")
    p.expect(inst.must("ping")["pong"] is True and inst.must("status")["state"] == "running",
             "ping or status did not answer as expected")
    for op in sorted(ds.expect_unsupported):
        p.check(f"{op} is not offered and answers not_supported", op not in caps and
                _error(inst.op(op, {"name": "x"}), {"not_supported"}) is None,
                f"{op} is announced, or did not answer not_supported")
    db, other = ds.test_database, "conformance_other"
    if ds.databases:
        p.begin("database.create makes databases that database.list shows")
        inst.must("database.create", {"name": db})
        inst.must("database.create", {"name": other})
        names = {d["name"] for d in inst.must("database.list")["databases"]}
        p.expect({db, other} <= names, f"database.list shows {sorted(names)}")
        p.check("creating a database twice is an error", _error(inst.op("database.create", {"name": db}),
                {"already_exists", "datastore_error"}) is None, "the second create did not fail cleanly")
    ds.write_rows(inst.server, db, [("k1", "v1")])

    p.begin("a user created with a password holding quotes, a backslash and a space can read its database")
    inst.must("user.create", {"name": "alice", "password": HOSTILE_PASSWORD, "databases": [db]})
    p.expect(ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db), "the datastore's own client was refused")
    p.check("a wrong password is refused", not ds.can_read(inst.server, "alice", "wrong-password", db),
            "the wrong password was accepted")
    if ds.databases:
        p.check("a user cannot read a database it was never granted",
                not ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, other), "it could")
    p.begin("user.list, user.show and user.access show the user and its database")
    users = {u["name"] for u in inst.must("user.list")["users"]}
    shown = inst.must("user.show", {"name": "alice"})["user"]
    access = {d["name"] for d in inst.must("user.access", {"name": "alice"})["databases"]}
    p.expect("alice" in users and shown["name"] == "alice" and db in access,
             f"list {sorted(users)}, show {shown}, access {sorted(access)}")

    p.begin("after user.revoke the user can no longer read the database")
    inst.must("user.revoke", {"name": "alice", "databases": [db]})
    p.expect(not ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db), "it still can")
    p.begin("after user.grant it can again")
    inst.must("user.grant", {"name": "alice", "databases": [db]})
    p.expect(ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db), "it cannot")
    p.begin("user.password changes the password: the new one works, the old one does not")
    inst.must("user.password", {"name": "alice", "password": "N3w\\pass'word"})
    p.expect(ds.can_read(inst.server, "alice", "N3w\\pass'word", db) and
             not ds.can_read(inst.server, "alice", HOSTILE_PASSWORD, db), "the old or the new password misbehaves")

    hostile = f"x'; DROP DATABASE {db}; --"
    p.begin("a user name that tries to break out of quoting is refused or stored literally, and changes nothing")
    r = inst.op("user.create", {"name": hostile, "password": "pw", "databases": [db]})
    literal = r.ok and hostile in {u["name"] for u in inst.must("user.list")["users"]}
    p.expect((literal or _error(r, {"invalid_argument"}) is None) and ds.read_rows(inst.server, db) == [("k1", "v1")],
             f"user.create answered {r.code} {r.message}, or the data changed")
    p.check("bad arguments are invalid_argument with a message: an empty name, no password, a numeric name",
            all(_error(inst.op("user.create", a), {"invalid_argument"}) is None for a in
                ({"name": "", "password": "pw"}, {"name": "bob"}, {"name": 42, "password": "x"})),
            "one of them was not refused as invalid_argument")
    p.check("an unknown op is not_found, a missing user is not_found",
            _error(inst.op("no.such.op"), {"not_found"}) is None and
            _error(inst.op("user.show", {"name": "nobody-here"}), {"not_found"}) is None, "one was not")

    if "root.enable" in caps and "root.show" in caps:
        p.begin("root.enable returns a superuser that can log in, and root.show says so")
        root = inst.must("root.enable")
        p.expect(root.get("name") and root.get("password") and inst.must("root.show")["enabled"] is True and
                 ds.can_read(inst.server, root["name"], root["password"], db), f"root.enable gave {root.result}")
        if "root.disable" in caps:
            p.begin("root.disable takes the superuser's login away")
            inst.must("root.disable")
            p.expect(inst.must("root.show")["enabled"] is False and
                     not ds.can_read(inst.server, root["name"], root["password"], db), "root can still log in")

    if "database.alter" in caps and ds.database_option and ds.databases:
        option, value = ds.database_option
        p.begin(f"database.alter sets {option} as the datastore reports it")
        inst.must("database.alter", {"name": db, "options": {option: value}})
        p.expect(ds.same_value(option, value, ds.read_database_option(inst.server, db, option)),
                 f"the datastore reports {ds.read_database_option(inst.server, db, option)}")
        p.check("database.alter with an unknown option is invalid_argument and changes nothing",
                _error(inst.op("database.alter", {"name": db, "options": {"no_such_option_anywhere": "1"}}),
                       {"invalid_argument"}) is None and
                ds.same_value(option, value, ds.read_database_option(inst.server, db, option)), "it was not")

    p.begin("a deleted user can no longer log in")
    inst.must("user.delete", {"name": "alice"})
    p.expect(not ds.can_read(inst.server, "alice", "N3w\\pass'word", db), "the deleted user still logged in")
    if ds.databases:
        p.begin("database.delete removes the database")
        inst.must("database.delete", {"name": other})
        p.expect(other not in {d["name"] for d in inst.must("database.list")["databases"]}, "it is still listed")


# ------------------------------------------------------------------ config

def part_config(p, ds, w, caps):
    (inst,) = w.instances
    live_name, live_value = ds.live_parameter
    restart_name, restart_value = ds.restart_parameter
    params = {x["name"]: x for x in inst.must("config.schema")["parameters"]}
    p.check("the schema marks the live parameter dynamic and the restart one not",
            params.get(live_name, {}).get("dynamic") is True and params.get(restart_name, {}).get("dynamic") is False,
            f"{live_name}: {params.get(live_name)}, {restart_name}: {params.get(restart_name)}")
    before = ds.read_parameter(inst.server, live_name)
    p.begin("a set with an unknown parameter is refused, naming it, and changes nothing")
    r = inst.op("config.apply", {"values": {live_name: live_value, "no_such_parameter_anywhere": "1"}})
    p.expect(_error(r, {"invalid_argument"}) is None and "no_such_parameter_anywhere" in r.message and
             ds.same_value(live_name, before, ds.read_parameter(inst.server, live_name)),
             f"{r.code}: {r.message}")
    p.begin(f"config.apply of {live_name} applies live and the server reports it")
    r = inst.must("config.apply", {"values": {live_name: live_value}})
    got = ds.read_parameter(inst.server, live_name)
    p.expect(live_name in r["applied"] and ds.same_value(live_name, live_value, got), f"{r.result}; server says {got}")
    shown = inst.must("config.show", {"names": [live_name]})["values"]
    p.check("config.show reports the applied value", ds.same_value(live_name, live_value, shown.get(live_name)),
            f"config.show says {shown}")
    p.begin(f"config.apply of {restart_name} is reported pending a restart")
    r = inst.must("config.apply", {"values": {restart_name: restart_value}})
    p.expect(restart_name in r["pending_restart"], f"{r.result}")
    p.begin("config.reset puts the live parameter back")
    inst.must("config.reset")
    got = ds.read_parameter(inst.server, live_name)
    p.expect(ds.same_value(live_name, before, got), f"it is {got}, not {before}")


# ------------------------------------------------------------------ backup

def part_backup(p, ds, w, caps):
    src, dst = w.instances
    db = ds.test_database
    if ds.databases:
        src.must("database.create", {"name": db})
    first = _rows(200)
    ds.write_rows(src.server, db, first)
    p.begin("a full backup completes with a sha256 checksum")
    full = src.must("backup.create", {"kind": "full"})["backup"]
    p.expect(full["state"] == "complete" and full["checksum"].startswith("sha256:"), f"record: {full}")
    chain_end, expected = full, sorted(first)
    if ds.incremental_backup:
        second = _rows(100, 200)
        ds.write_rows(src.server, db, second)
        p.begin("an incremental backup on the full one completes")
        inc = src.must("backup.create", {"kind": "incremental", "parent": full["id"]})["backup"]
        p.expect(inc["parent"] == full["id"] and inc["state"] == "complete", f"record: {inc}")
        chain_end, expected = inc, sorted(first + second)
    ds.write_rows(src.server, db, _rows(50, 900, tag="after"))   # after the last backup: must not come back
    listed = {b["id"] for b in src.must("backup.list")["backups"]}
    p.check("backup.list lists the backups", {full["id"], chain_end["id"]} <= listed, f"it lists {listed}")
    p.begin("restoring the full backup on another server gives back exactly its rows")
    dst.must("backup.restore", {"backup_id": full["id"]})
    got = ds.read_rows(dst.server, db)
    p.expect(got == sorted(first), "the restored data differs: " + _diff(got, sorted(first)))
    if ds.incremental_backup:
        p.begin("restoring full + incremental gives back every row of both")
        dst.must("backup.restore", {"backup_id": chain_end["id"]})
        got = ds.read_rows(dst.server, db)
        p.expect(got == expected, "the restored data differs: " + _diff(got, expected))
    before = ds.read_rows(dst.server, db)
    piece = os.path.join(w.backups, full["id"] + ".zst")
    with open(piece, "r+b") as f:   # one byte flipped in storage
        f.seek(os.path.getsize(piece) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    p.begin("a corrupted backup is refused with checksum_mismatch and the target keeps running, unchanged")
    err = _error(dst.op("backup.restore", {"backup_id": full["id"]}), {"checksum_mismatch"})
    p.expect(err is None and dst.must("status")["state"] == "running" and ds.read_rows(dst.server, db) == before,
             err or "the target stopped or its data changed")


# ------------------------------------------------------------------ replication

def _credentials(inst, caps):
    if "replication.credentials" in caps:
        return inst.must("replication.credentials")
    return inst.must("replication.snapshot")


def part_replication(p, ds, w, caps):
    src, rep = w.instances
    db = ds.test_database
    if ds.databases:
        src.must("database.create", {"name": db})
    ds.write_rows(src.server, db, _rows(20, tag="seed"))
    p.begin("a replication snapshot carries credentials for the replica")
    snap = src.must("replication.snapshot")
    p.expect(snap.get("user") and snap.get("password"), f"snapshot result {list(snap.result)}")
    source = {"host": src.server.host, "port": src.server.port, "user": snap["user"], "password": snap["password"]}
    p.begin("a replica attached with the snapshot reports role replica")
    rep.must("replication.attach", {"source": source, "snapshot": snap["backup"]["id"]})
    p.expect(rep.must("replication.status")["role"] == "replica", "it does not")
    before = src.must("replication.position")["position"]
    ds.write_rows(src.server, db, _rows(30, tag="live"))
    after = src.must("replication.position")["position"]
    p.check("the position before writes compares as before the position after",
            src.must("replication.compare", {"a": before, "b": after})["order"] == "before", f"{before} vs {after}")
    p.begin("the replica sees the source's writes")
    rep.must("replication.wait", {"position": after, "timeout_ms": 30000})
    got, want = ds.read_rows(rep.server, db), ds.read_rows(src.server, db)
    p.expect(got == want, "the replica never saw the write: " + _diff(got, want))

    p.begin("the replica is promoted once it has every write of the read-only source")
    src.must("replication.read_only", {"read_only": True})
    final = src.must("replication.position")["position"]
    rep.must("replication.wait", {"position": final, "timeout_ms": 30000})
    rep.must("replication.promote")
    p.expect(rep.must("replication.status")["role"] in ("primary", "standalone"), "it does not say primary")
    ds.write_rows(rep.server, db, _rows(10, tag="promoted"))
    creds = _credentials(rep, caps)
    p.begin("the old source, demoted, follows the new one" +
            (" with credentials alone (no snapshot)" if "replication.credentials" in caps else ""))
    src.must("replication.demote", {"source": {"host": rep.server.host, "port": rep.server.port,
                                                "user": creds["user"], "password": creds["password"]}})
    p.expect(src.must("replication.status")["role"] == "replica", "it does not report role replica")
    ds.write_rows(rep.server, db, _rows(10, tag="after-switch"))
    pos = rep.must("replication.position")["position"]
    p.begin("the demoted server has the new source's writes")
    src.must("replication.wait", {"position": pos, "timeout_ms": 30000})
    got, want = ds.read_rows(src.server, db), ds.read_rows(rep.server, db)
    p.expect(got == want, _diff(got, want))


# ------------------------------------------------------------------ cluster

def _members(inst):
    return {(m["host"], m["port"]): m for m in inst.must("cluster.status")["members"]}


def _secret_leaks(w):
    """Files under the world's backup storage and agent logs that hold the secret."""
    leaks = []
    for root, _, files in os.walk(w.env.dir):
        for name in files:
            if name.endswith((".json", ".log")):
                with open(os.path.join(root, name), "rb") as f:
                    if CLUSTER_SECRET.encode() in f.read():
                        leaks.append(os.path.relpath(os.path.join(root, name), w.env.dir))
    return leaks


def part_cluster(p, ds, w, caps):
    a, b = w.instances
    name = "trove-check"
    p.begin("a node forms a cluster of itself")
    a.must("cluster.join", {"cluster_name": name, "cluster_secret": CLUSTER_SECRET})
    st = a.must("cluster.status")
    p.expect(st.get("cluster_name") == name and any(m["self"] for m in st["members"]), f"status: {st.result}")
    p.begin("a second node joins through the first as a seed, and both list both, up")
    b.must("cluster.join", {"cluster_name": name, "cluster_secret": CLUSTER_SECRET,
                            "seeds": [{"host": a.server.host, "port": a.server.port}]})
    ka, kb = _members(a), _members(b)
    both = {(a.server.host, a.server.port), (b.server.host, b.server.port)}
    p.expect(set(ka) == both and set(kb) == both and all(m["state"] == "up" for m in list(ka.values()) +
                                                         list(kb.values())), f"a lists {ka}, b lists {kb}")
    p.check("the datastore itself reports both members", ds.cluster_members(b.server) ==
            {f"{h}:{port}" for h, port in both}, f"it reports {ds.cluster_members(b.server)}")
    if "backup.create" in caps:
        p.begin("the cluster secret is in no backup record and no log")
        a.must("backup.create")
        leaks = _secret_leaks(w)
        p.expect(not leaks, f"it is in {leaks}")
    p.begin("the second node leaves and the first lists only itself")
    b.must("cluster.leave")
    p.expect(set(_members(a)) == {(a.server.host, a.server.port)}, f"a lists {_members(a)}")
    p.begin("joining with a wrong secret is refused and changes nothing")
    r = b.op("cluster.join", {"cluster_name": name, "cluster_secret": "not the secret",
                              "seeds": [{"host": a.server.host, "port": a.server.port}]})
    p.expect(not r.ok and r.message and set(_members(a)) == {(a.server.host, a.server.port)},
             f"join answered {r.code}, a lists {_members(a)}")


# ------------------------------------------------------------------ logs

def part_logs(p, ds, w, caps):
    (inst,) = w.instances
    if "restart" in caps:
        inst.must("restart")   # give the logs something to say
    p.begin("log.list names the logs with their type")
    logs = inst.must("log.list")["logs"]
    p.expect(logs and all(x.get("name") and x.get("type") in ("system", "user") for x in logs), f"{logs}")
    for log in logs:
        name = log["name"]
        p.begin(f"log.tail of {name} returns at most the bytes asked for")
        tail = inst.must("log.tail", {"name": name, "bytes": 200})
        p.expect(tail["bytes"] <= 200 and len(tail["data"].encode("utf-8")) == tail["bytes"], f"{tail.result}")
        if "log.fetch" not in caps:
            continue
        p.begin(f"log.fetch of {name} copies the whole log to a file whose checksum and size it reports, "
                "ending with the tail")
        got = inst.must("log.fetch", {"name": name})
        with open(got["path"], "rb") as f:
            data = f.read()
        p.expect("sha256:" + hashlib.sha256(data).hexdigest() == got["checksum"] and len(data) == got["bytes"] and
                 data.decode("utf-8", "replace").endswith(tail["data"]), f"{got.result}")
    p.check("log.tail of a log that does not exist is an error",
            _error(inst.op("log.tail", {"name": "no-such-log"}), {"not_found", "invalid_argument"}) is None,
            "it was not")


# ------------------------------------------------------------------ running

PARTS = {
    "access": (part_access, 1, {"user.create", "user.delete"}),
    "config": (part_config, 1, {"config.schema", "config.apply", "config.reset", "config.show"}),
    "backup": (part_backup, 2, {"backup.create", "backup.restore"}),
    "replication": (part_replication, 2, {"replication.snapshot", "replication.attach", "replication.promote",
                                          "replication.demote", "replication.wait", "replication.position"}),
    "cluster": (part_cluster, 2, {"cluster.join", "cluster.leave", "cluster.status"}),
    "logs": (part_logs, 1, {"log.list", "log.tail"}),
}


def plugin_capabilities(ds, plugin_dir, keep, out):
    """What the plugin offers: one agent, its hello through the control plane.
    When that fails, the logs of everything started go to `out` first."""
    with Env(prefix=f"trove-check-{ds.plugin}-caps-", keep=keep) as env:
        try:
            w = World(env, ds, plugin_dir, 1)
            info = w.control.instance(w.instances[0].id) or {}
        except Exception:
            print(env.log_tails(), file=out, flush=True)
            raise
        return set(info.get("capabilities", [])), info


def run_part(report, name, ds, plugin_dir, caps, keep):
    fn, servers, _ = PARTS[name]
    part = Part(report, name)
    with Env(prefix=f"trove-check-{ds.plugin}-{name}-", keep=keep) as env:
        failed_before = report.failed
        try:
            part.begin("the servers, the control plane and the agents start")
            w = World(env, ds, plugin_dir, servers)
            fn(part, ds, w, caps)
        except StopPart:
            pass
        except OpFailed as exc:
            report.record(name, part.current, False, str(exc))
        except Exception as exc:  # a description or a server broke: the check it was in fails
            report.record(name, part.current, False, f"{type(exc).__name__}: {exc}")
        if report.failed > failed_before and os.environ.get("TROVE_CHECK_LOGS", "1") != "0":
            print(env.log_tails(), file=report.out, flush=True)


def install_plugin(plugin_so, name, env):
    """A plugin directory holding the plugin as <name>.so, mode 0644, as the agent demands."""
    d = env.mkdir("plugins")
    dest = os.path.join(d, name + ".so")
    shutil.copyfile(plugin_so, dest)
    os.chmod(dest, 0o644)
    return d
