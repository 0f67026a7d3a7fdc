"""Heartbeats become instance statuses in the registry, with Trove's names.

A real trove-control on its default SQLite registry; the instance rows are
written with Python's sqlite3 (as the instance lifecycle would), and this
test speaks as the instance's agent over the wire. It reads the status back
from the registry file.

- a running engine shows ACTIVE, a stopped one SHUTDOWN with the reason;
- a heartbeat older than the last one applied (same epoch, lower seq) is
  ignored, and a new epoch (a restarted agent) starts over;
- an agent silent for heartbeat_miss intervals shows ERROR with the reason,
  and its next heartbeat brings the instance back;
- while a task holds the instance, heartbeats leave its status alone;
- settings applied that need a restart show RESTART_REQUIRED until one;
- after a restart of trove-control, an instance whose agent never comes back
  shows ERROR, while one whose agent reconnects keeps its status.
"""
import os
import sqlite3
import time

import harness
from harness import check
from test_task_outcomes import Client, RawAgent, plain_control

NOW = int(time.time() * 1000)


def registry_path(state_dir):
    return os.path.join(state_dir, "registry.db")


def add_instance(db, instance_id, status="ACTIVE", task_id=None):
    """The rows an instance needs, as the instance lifecycle writes them."""
    con = sqlite3.connect(db, timeout=10)
    with con:
        con.execute("INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES ('t1', 't1', ?)", (NOW,))
        con.execute("INSERT OR IGNORE INTO datastores (id, name, default_version_id, created_at, updated_at)"
                    " VALUES ('ds-redis', 'redis', NULL, ?, ?)", (NOW, NOW))
        con.execute("INSERT OR IGNORE INTO datastore_versions (id, datastore, name, plugin, engine, active, packages,"
                    " image, created_at, updated_at) VALUES ('v-7', 'redis', '7.0', 'redis', '{}', 1, '', '', ?, ?)",
                    (NOW, NOW))
        con.execute("INSERT OR IGNORE INTO flavors (id, name, ram_mb, vcpus, disk_gb, created_at)"
                    " VALUES ('1', 'small', 512, 1, 1, ?)", (NOW,))
        con.execute("INSERT INTO instances (id, tenant_id, name, status, status_reason, datastore,"
                    " datastore_version_id, flavor_id, volume_size_gb, volume_kind, engine_port, ports,"
                    " agent_public_key, task_id, provision, created_at, updated_at)"
                    " VALUES (?, 't1', ?, ?, '', 'redis', 'v-7', '1', 1, 'directory', 0, '{}', '', ?, '{}', ?, ?)",
                    (instance_id, instance_id, status, task_id, NOW, NOW))
    con.close()


def status_of(db, instance_id):
    con = sqlite3.connect(db, timeout=10)
    try:
        row = con.execute("SELECT status, status_reason, hb_epoch, hb_seq FROM instances WHERE id = ?",
                          (instance_id,)).fetchone()
    finally:
        con.close()
    return row


def wait_status(db, instance_id, status, timeout=10):
    def now():
        row = status_of(db, instance_id)
        return row if row and row[0] == status else None
    try:
        return harness.wait_for(now, timeout, f"{instance_id} {status}", interval=0.1)
    except Exception:
        raise AssertionError(f"{instance_id} is {status_of(db, instance_id)}, not {status}")


def heartbeat(agent, state="running", message="", task=None, seq=None):
    agent.seq = seq if seq is not None else agent.seq + 1
    agent.send({"type": "heartbeat", "seq": agent.seq, "epoch": agent.epoch, "state": state, "role": "standalone",
                "term": 0, "position": "", "message": message, "task": task})


def taken(client, agent):
    """Until trove-control has taken the agent's last heartbeat (control.instance shows its seq): it and
    everything the agent sent before it have been handled, registry writes included."""
    def shown():
        r = client.call("control.instance", {"instance": agent.instance})
        return r["ok"] and r["result"]["instance"].get("seq") == agent.seq
    harness.wait_for(shown, 10, f"heartbeat {agent.seq} of {agent.instance} to be taken")


def start(env, **settings):
    proc, agent_endpoint, client_endpoint = plain_control(env, **settings)
    client = Client(env, client_endpoint)
    harness.wait_for(lambda: client.call("control.ping")["ok"], 10, "trove-control")
    state_dir = os.path.dirname(client_endpoint[len("ipc://"):])
    return proc, agent_endpoint, client, registry_path(state_dir)


def hello(agent, heartbeat_ms):
    agent.send({"type": "hello", "instance": agent.instance, "agent_version": "test", "plugin": {"name": "raw"},
                "abi": {"major": 1, "minor": 0}, "capabilities": [], "features": [], "heartbeat_ms": heartbeat_ms,
                "epoch": agent.epoch, "tasks": []})


def test_engine_state_becomes_the_status_and_old_heartbeats_are_ignored():
    with harness.Env() as env:
        _, endpoint, client, db = start(env)
        add_instance(db, "st-1", status="BUILD")
        agent = RawAgent(env, endpoint, "st-1")
        hello(agent, 60000)
        heartbeat(agent, "running")
        row = wait_status(db, "st-1", "ACTIVE")
        # Heartbeats that say what the registry shows cost no write.
        for _ in range(3):
            heartbeat(agent, "running")
        heartbeat(agent, "stopped", "redis-server is not running", seq=9)
        after = wait_status(db, "st-1", "SHUTDOWN")
        check(row[3] == 1 and after[3] == 9, f"steady heartbeats were written: {row} then {after}")

        heartbeat(agent, "stopped", "redis-server is not running", seq=10)
        row = status_of(db, "st-1")
        check(row[1] == "the engine is stopped: redis-server is not running", f"reason: {row}")
        check(row[2] == agent.epoch and row[3] == 9, f"the applied heartbeat is not recorded: {row}")

        # Late: same epoch, lower seq. Ignored: the one after it still finds SHUTDOWN to keep.
        heartbeat(agent, "running", seq=5)
        heartbeat(agent, "stopped", "redis-server is not running", seq=11)
        taken(client, agent)
        check(status_of(db, "st-1")[0] == "SHUTDOWN", "an older heartbeat rolled the status back")

        # A restarted agent: a new epoch, seq from 1 again.
        agent.epoch += 1
        heartbeat(agent, "running", seq=1)
        wait_status(db, "st-1", "ACTIVE")

        heartbeat(agent, "crashed", "out of memory")
        row = wait_status(db, "st-1", "SHUTDOWN")
        check("crashed" in row[1] and "out of memory" in row[1], f"reason: {row}")
        heartbeat(agent, "unknown", "status query failed")
        row = wait_status(db, "st-1", "ERROR")
        check("cannot tell the engine's state" in row[1], f"reason: {row}")
        heartbeat(agent, "running")
        wait_status(db, "st-1", "ACTIVE")


def test_silent_agent_shows_error_and_comes_back():
    with harness.Env() as env:
        _, endpoint, client, db = start(env, heartbeat_miss=2)
        add_instance(db, "st-2", status="BUILD")
        agent = RawAgent(env, endpoint, "st-2")
        hello(agent, 300)
        heartbeat(agent, "running")
        wait_status(db, "st-2", "ACTIVE")
        # Nothing for longer than 2 x 300 ms.
        row = wait_status(db, "st-2", "ERROR", timeout=5)
        check("no heartbeat" in row[1] and "2 intervals of 300 ms" in row[1], f"reason: {row}")
        r = client.call("control.instance", {"instance": "st-2"})
        check(r["ok"] and r["result"]["instance"]["connected"] is False, f"still connected: {r}")
        heartbeat(agent, "running")
        wait_status(db, "st-2", "ACTIVE")


def test_a_task_owns_the_status_while_it_runs():
    with harness.Env() as env:
        _, endpoint, client, db = start(env, heartbeat_miss=2)
        add_instance(db, "st-3", status="REBOOT", task_id=None)
        con = sqlite3.connect(db, timeout=10)
        with con:
            con.execute("UPDATE instances SET task_id = 'some-task' WHERE id = 'st-3'")
        con.close()
        agent = RawAgent(env, endpoint, "st-3")
        hello(agent, 300)
        heartbeat(agent, "stopped", "restarting")
        taken(client, agent)
        # Silent past heartbeat_miss, and past the next look for silent agents (every second).
        harness.wait_for(lambda: not client.call("control.instance", {"instance": "st-3"})["result"]["instance"]
                         ["connected"], 10, "st-3 to count as silent")
        time.sleep(1.5)
        check(status_of(db, "st-3")[0] == "REBOOT", f"a heartbeat or silence changed a task's status: "
                                                     f"{status_of(db, 'st-3')}")
        con = sqlite3.connect(db, timeout=10)
        with con:
            con.execute("UPDATE instances SET task_id = NULL WHERE id = 'st-3'")
        con.close()
        heartbeat(agent, "running")
        # The conductor re-reads a status it believes unchanged at least every 30 s; a change is at once.
        heartbeat(agent, "stopped", "down")
        wait_status(db, "st-3", "SHUTDOWN")


def test_after_a_restart_instances_keep_their_status_unless_their_agent_stays_away():
    with harness.Env() as env:
        proc, endpoint, client, db = start(env, heartbeat_miss=2, agent_heartbeat_ms=100)
        add_instance(db, "st-back")
        add_instance(db, "st-gone")
        back = RawAgent(env, endpoint, "st-back")
        hello(back, 60000)
        heartbeat(back, "running")
        wait_status(db, "st-back", "ACTIVE")
        proc.kill()

        proc, endpoint2, client, db2 = start_again(env, proc)
        check(db2 == db, "a different registry after the restart")
        back.restart()
        hello(back, 60000)
        heartbeat(back, "running")
        taken(client, back)
        check(status_of(db, "st-back")[0] == "ACTIVE" and status_of(db, "st-gone")[0] == "ACTIVE",
              "statuses changed at once after a restart")
        # The grace for agents to come back is 40 s at least (their reconnect backoff reaches 32 s).
        row = wait_status(db, "st-gone", "ERROR", timeout=60)
        check("no agent has connected since trove-control started" in row[1], f"reason: {row}")
        heartbeat(back, "running")
        check(status_of(db, "st-back")[0] == "ACTIVE", f"the returned agent's instance: {status_of(db, 'st-back')}")


def test_settings_that_need_a_restart_show_restart_required_until_one():
    with harness.Env() as env:
        _, endpoint, client, db = start(env)
        add_instance(db, "st-rr", status="BUILD")
        agent = RawAgent(env, endpoint, "st-rr")
        hello(agent, 60000)
        heartbeat(agent, "running")
        wait_status(db, "st-rr", "ACTIVE")

        rid = client.send("config.apply", {"values": {"maxmemory": "64mb"}}, instance="st-rr")
        req = agent.expect(lambda m: m.get("id") == rid)
        check(req is not None, "the agent got no config.apply")
        agent.send({"type": "reply", "id": rid, "ok": True,
                    "result": {"applied": [], "pending_restart": ["maxmemory"]}})
        row = wait_status(db, "st-rr", "RESTART_REQUIRED")
        check("after a restart" in row[1], f"reason: {row}")
        heartbeat(agent, "running")
        taken(client, agent)
        check(status_of(db, "st-rr")[0] == "RESTART_REQUIRED", "a heartbeat cleared RESTART_REQUIRED")

        rid = client.send("restart", instance="st-rr")
        check(agent.expect(lambda m: m.get("id") == rid) is not None, "the agent got no restart")
        agent.send({"type": "reply", "id": rid, "ok": True, "result": {"task": rid, "state": "running"}})
        agent.send({"type": "event", "id": rid, "event": "task.done", "op": "restart", "ok": True, "result": {}})
        wait_status(db, "st-rr", "ACTIVE")


def start_again(env, old_proc):
    """The same configuration again (the state directory keeps the registry)."""
    argv = old_proc.argv
    proc = env.spawn(argv, "trove-control-2")
    config = argv[-1]
    with open(config) as f:
        lines = dict(line.split(" = ", 1) for line in f.read().splitlines() if " = " in line)
    client = Client(env, lines["client_endpoint"])
    harness.wait_for(lambda: client.call("control.ping")["ok"], 10, "trove-control again")
    return proc, lines["agent_endpoint"], client, registry_path(lines["state_dir"])


if __name__ == "__main__":
    harness.run_tests(globals())
