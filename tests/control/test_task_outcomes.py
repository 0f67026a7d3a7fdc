"""Task outcomes are never lost and no task runs forever.

- A real agent and a real trove-control: trove-control is killed (SIGKILL)
  while a logical backup runs on MariaDB, held back by a table lock the test
  keeps until it wants the backup to end. Restarted at once, it adopts the
  task from the agent's hello and records the outcome the agent sends;
  restarted only after the backup finished, it still gets the outcome, which
  the agent kept because nobody acknowledged it.
- A real agent and a raw control plane (this test's ROUTER) that never
  acknowledges: the agent sends the outcome again, lists it in its hello after
  a reconnect, and stops once it gets the ack.
- A real trove-control and a raw agent (this test's DEALER): a task.done
  whose ack was lost arrives twice and is recorded and forwarded once, and
  acknowledged both times; a task the agent no longer knows at its hello
  fails with the reason; a task without an outcome fails at its deadline.
"""
import json
import os
import select
import subprocess
import time
import uuid

import msgpack
import zmq

import harness
from controlplane import ControlPlane
from harness import check
from mysql_server import MysqlServer
from redis_server import RedisServer


def pack(msg):
    return msgpack.packb(msg, use_bin_type=True)


def unpack(frame):
    return msgpack.unpackb(frame, raw=False)


class Client:
    """A raw client of trove-control's client socket: sends requests, collects replies and events."""

    def __init__(self, env, endpoint):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.seen = []
        env.callback(lambda: (self.sock.close(0), self.ctx.term()))

    def send(self, op, args=None, instance=None, rid=None, timeout_ms=600000):
        rid = rid or uuid.uuid4().hex
        msg = {"v": 1, "type": "request", "id": rid, "op": op, "args": args or {}, "timeout_ms": timeout_ms}
        if instance:
            msg["instance"] = instance
        self.sock.send(pack(msg))
        return rid

    def pump(self, until, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.poll(int(max(0.0, deadline - time.monotonic()) * 1000)):
                msg = unpack(self.sock.recv())
                self.seen.append(msg)
                if until(msg):
                    return msg
        return None

    def call(self, op, args=None, instance=None, timeout=10):
        rid = self.send(op, args, instance)
        reply = self.pump(lambda m: m.get("type") == "reply" and m.get("id") == rid, timeout)
        check(reply is not None, f"no reply to {op}")
        return reply


def task_state(client, task_id):
    reply = client.call("control.task", {"id": task_id})
    return reply["result"] if reply["ok"] else None


def wait_task(client, task_id, want, timeout):
    def done():
        t = task_state(client, task_id)
        return t if t and t.get("state") == want else None
    return harness.wait_for(done, timeout, f"task {task_id} {want}", interval=0.2)


class TableLock:
    """LOCK TABLES ... WRITE held by a stock mariadb client session until release(): a logical backup
    (mariadb-dump) waits for it, so the backup's task runs exactly as long as the test wants."""

    def __init__(self, env, server, table):
        cnf = harness.secret_file(env.path("lock-client.cnf"), '[client]\npassword=""\n')
        self.proc = subprocess.Popen(["mariadb", "--defaults-file=" + cnf, "--user=root", "--socket=" + server.socket,
                                      "--batch", "--skip-column-names", "--unbuffered"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        env.callback(self.release)
        self.proc.stdin.write(f"LOCK TABLES {table} WRITE; SELECT 'locked';\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        check(line.strip() == "locked", f"the table lock was not taken: {line!r}")

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("UNLOCK TABLES;\n")
            self.proc.stdin.close()
            self.proc.wait(30)


def mysql_behind_control(env):
    server = MysqlServer(env).start()
    server.admin_sql("CREATE DATABASE IF NOT EXISTS bulk; CREATE TABLE bulk.t (id INT PRIMARY KEY); "
                     "INSERT INTO bulk.t VALUES (1)")
    control = ControlPlane(env)
    agent = control.agent("mysql", server.settings(), "outcome-1")
    control.start()
    agent.serve()
    control.wait_connected("outcome-1", 30)
    return server, control, agent


def test_control_plane_killed_mid_task_adopts_it_and_records_the_outcome():
    with harness.Env() as env:
        server, control, agent = mysql_behind_control(env)
        lock = TableLock(env, server, "bulk.t")
        client = Client(env, control.client_endpoint)
        reply = client.call("backup.create", {"kind": "logical", "backup_id": "bk-kill"}, instance="outcome-1")
        check(reply["ok"] and reply["result"]["task"], f"backup.create: {reply}")
        task = reply["result"]["task"]
        check(task_state(client, task)["state"] == "running", "the task is not running")

        control.proc.kill()
        control.start()
        # The new control plane never saw the task start: the agent's hello names it.
        running = wait_task(client, task, "running", 40)
        check(running["instance"] == "outcome-1", f"adopted task: {running}")
        lock.release()
        done = wait_task(client, task, "completed", 300)
        check(done.get("ok") is True and done["result"]["backup"]["state"] == "complete",
              f"the outcome recorded after the restart: {done}")
        check(agent.proc.alive(), "the agent died")


def test_outcome_reached_while_the_control_plane_is_down_is_delivered_after_it_returns():
    with harness.Env() as env:
        server, control, agent = mysql_behind_control(env)
        lock = TableLock(env, server, "bulk.t")
        client = Client(env, control.client_endpoint)
        reply = client.call("backup.create", {"kind": "logical", "backup_id": "bk-down"}, instance="outcome-1")
        check(reply["ok"], f"backup.create: {reply}")
        task = reply["result"]["task"]

        control.proc.kill()
        lock.release()
        record = os.path.join(agent.backup_dir, "bk-down.json")

        def finished():
            try:
                with open(record) as f:
                    state = json.load(f).get("state")
            except (OSError, ValueError):
                return None
            return state if state in ("complete", "failed") else None
        state = harness.wait_for(finished, 600, "the backup ended while the control plane was down")
        check(state == "complete", f"the backup ended {state}")
        time.sleep(1.0)   # the agent's task.done goes out to nobody
        control.start()
        # The outcome reaches the restarted control plane, which never saw the task start.
        done = wait_task(client, task, "completed", 60)
        check(done["result"]["backup"]["id"] == "bk-down", f"the redelivered outcome: {done}")


class Router:
    """A raw control plane: the ROUTER one agent connects to, plain text on loopback."""

    def __init__(self, env, port=None):
        self.env = env
        self.ctx = zmq.Context()
        env.callback(self.close)
        self.sock = None
        self.port = port
        self.bind()

    def bind(self):
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if self.port:
            self.sock.bind(f"tcp://127.0.0.1:{self.port}")
        else:
            self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.agent_id = None
        self.seen = []

    def rebind(self):
        self.sock.close(0)
        time.sleep(0.2)
        self.bind()

    def close(self):
        if self.sock:
            self.sock.close(0)
        self.ctx.term()

    def pump(self, until, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.sock.poll(int(max(0.0, deadline - time.monotonic()) * 1000)):
                break
            frames = self.sock.recv_multipart()
            self.agent_id = frames[0]
            msg = unpack(frames[1])
            self.seen.append(msg)
            if until and until(msg):
                return msg
        return None

    def send(self, msg):
        self.sock.send_multipart([self.agent_id, pack(msg)])


def is_done(task_id):
    return lambda m: m.get("type") == "event" and m.get("event") == "task.done" and m.get("id") == task_id


def test_agent_sends_the_outcome_again_until_it_is_acknowledged():
    with harness.Env() as env:
        server = RedisServer(env).start()
        peer = Router(env)
        agent = harness.Agent(env, "redis", server.settings, instance_id="acks-1",
                              control_endpoint=f"tcp://127.0.0.1:{peer.port}", heartbeat_ms=300)
        agent.serve()
        check(peer.pump(lambda m: m.get("type") == "hello", 10), "no hello")
        peer.send({"v": 1, "type": "request", "id": "bk-ack", "op": "backup.create", "args": {"kind": "full"}})
        first = peer.pump(is_done("bk-ack"), 60)
        check(first is not None and first["ok"] and first["op"] == "backup.create", f"task.done: {first}")

        again = peer.pump(is_done("bk-ack"), 5)
        check(again == first, f"the unacknowledged outcome was not sent again: {again}")

        # A reconnect: the hello lists the outcome still waiting, and it follows the hello.
        peer.rebind()
        hello = peer.pump(lambda m: m.get("type") == "hello", 20)
        check(hello is not None, "no hello after the reconnect")
        check({"id": "bk-ack", "op": "backup.create", "state": "finished"} in hello["tasks"],
              f"the hello does not list the waiting outcome: {hello.get('tasks')}")
        check(peer.pump(is_done("bk-ack"), 5) is not None, "the outcome was not sent after the hello")

        peer.send({"v": 1, "type": "ack", "id": "bk-ack"})
        time.sleep(0.5)
        peer.seen.clear()
        peer.pump(None, 4)
        check(not [m for m in peer.seen if is_done("bk-ack")(m)], "the outcome was sent again after its ack")
        heartbeats = [m for m in peer.seen if m.get("type") == "heartbeat"]
        check(heartbeats and heartbeats[-1]["epoch"] == hello["epoch"], f"heartbeat epoch: {heartbeats[-1:]}")


def test_an_agent_epoch_never_goes_back():
    with harness.Env() as env:
        server = RedisServer(env).start()
        peer = Router(env)
        agent = harness.Agent(env, "redis", server.settings, instance_id="epoch-1",
                              control_endpoint=f"tcp://127.0.0.1:{peer.port}", heartbeat_ms=300)
        # The last run's epoch lies ahead of the clock (the clock was set back since).
        state = os.path.join(agent.dir, "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        ahead = int(time.time() * 1000) + 10 ** 9
        with open(os.path.join(state, "epoch"), "w") as f:
            f.write(f"{ahead}\n")
        agent.serve()
        hello = peer.pump(lambda m: m.get("type") == "hello", 10)
        check(hello is not None and hello["epoch"] == ahead + 1, f"epoch after a clock set back: {hello}")
        with open(os.path.join(state, "epoch")) as f:
            check(int(f.read()) == ahead + 1, "the epoch was not kept for the next run")


def plain_control(env, **settings):
    """trove-control in plain-text mode with extra [control] settings."""
    d = env.mkdir("control", mode=0o700)
    agent_endpoint = f"tcp://127.0.0.1:{harness.free_port()}"
    conf = {"agent_endpoint": agent_endpoint, "client_endpoint": f"ipc://{d}/control.sock", "state_dir": d,
            "plaintext_dev": True, "log_level": "debug", "api_listen": "off", "provisioner": "none"}
    conf.update(settings)
    config = harness.write_ini(os.path.join(d, "control.conf"), {"control": conf})
    proc = env.spawn([harness.control_binary(), "-c", config], "trove-control")
    return proc, agent_endpoint, conf["client_endpoint"]


class RawAgent:
    """This test as an agent: a DEALER under an instance id, speaking plain text."""

    def __init__(self, env, endpoint, instance):
        self.env, self.endpoint, self.instance = env, endpoint, instance
        self.ctx = zmq.Context()
        env.callback(self.close)
        self.sock = None
        self.seq = 0
        self.epoch = int(time.time() * 1000)
        self.connect()

    def connect(self):
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, self.instance.encode())
        self.sock.connect(self.endpoint)

    def restart(self):
        """A new process: a new connection and a new epoch."""
        self.sock.close(0)
        time.sleep(0.3)
        self.epoch += 1000
        self.seq = 0
        self.connect()

    def close(self):
        if self.sock:
            self.sock.close(0)
        self.ctx.term()

    def send(self, msg):
        self.sock.send(pack({"v": 1, **msg}))

    def hello(self, tasks):
        self.send({"type": "hello", "instance": self.instance, "agent_version": "test", "plugin": {"name": "raw"},
                   "abi": {"major": 1, "minor": 0}, "capabilities": ["backup.create"], "features": [],
                   "heartbeat_ms": 60000, "epoch": self.epoch, "tasks": tasks})

    def heartbeat(self):
        self.seq += 1
        self.send({"type": "heartbeat", "seq": self.seq, "epoch": self.epoch, "state": "running",
                   "role": "standalone", "term": 0, "position": "", "message": "", "task": None})

    def recv(self, timeout):
        if self.sock.poll(int(timeout * 1000)):
            return unpack(self.sock.recv())
        return None

    def expect(self, what, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(max(0.05, deadline - time.monotonic()))
            if msg and what(msg):
                return msg
        return None


def raw_setup(env, **settings):
    control, agent_endpoint, client_endpoint = plain_control(env, **settings)
    client = Client(env, client_endpoint)
    harness.wait_for(lambda: client.call("control.ping")["ok"], 10, "trove-control")
    agent = RawAgent(env, agent_endpoint, "raw-1")
    agent.hello([])
    agent.heartbeat()

    def connected():
        r = client.call("control.instance", {"instance": "raw-1"})
        return r["ok"] and r["result"]["instance"]["connected"]
    harness.wait_for(connected, 10, "the raw agent connected")
    return control, client, agent


def start_task(client, agent, task_id):
    client.send("backup.create", {"kind": "full"}, instance="raw-1", rid=task_id)
    req = agent.expect(lambda m: m.get("type") == "request" and m.get("id") == task_id)
    check(req is not None and req["op"] == "backup.create", f"the agent got no request: {req}")
    agent.send({"type": "reply", "id": task_id, "ok": True, "result": {"task": task_id, "state": "running"}})
    reply = client.pump(lambda m: m.get("type") == "reply" and m.get("id") == task_id, 5)
    check(reply is not None and reply["ok"], f"the client got no task reply: {reply}")


def done_event(task_id, marker):
    return {"type": "event", "id": task_id, "event": "task.done", "op": "backup.create", "ok": True,
            "result": {"backup": {"id": marker}}}


def test_a_lost_ack_means_the_outcome_comes_twice_and_is_recorded_once():
    with harness.Env() as env:
        _, client, agent = raw_setup(env)
        start_task(client, agent, "t-lost-ack")
        agent.send({"type": "event", "id": "t-lost-ack", "event": "task.progress", "percent": 50, "message": "half"})
        agent.send(done_event("t-lost-ack", "first"))
        ack = agent.expect(lambda m: m.get("type") == "ack")
        check(ack == {"v": 1, "type": "ack", "id": "t-lost-ack"}, f"the control plane did not acknowledge: {ack}")

        # The ack is lost: the agent sends the outcome again (a retry may even differ; the first one counts).
        agent.send(done_event("t-lost-ack", "second"))
        ack = agent.expect(lambda m: m.get("type") == "ack")
        check(ack is not None and ack["id"] == "t-lost-ack", "a repeated outcome was not acknowledged again")

        client.pump(lambda m: False, 1.0)
        dones = [m for m in client.seen if is_done("t-lost-ack")(m)]
        check(len(dones) == 1 and dones[0]["result"]["backup"]["id"] == "first",
              f"the client should see exactly the first outcome once: {dones}")
        progress = [m for m in client.seen if m.get("event") == "task.progress"]
        check(len(progress) == 1 and progress[0]["percent"] == 50, f"progress events: {progress}")
        t = task_state(client, "t-lost-ack")
        check(t["state"] == "completed" and t["result"]["backup"]["id"] == "first", f"recorded outcome: {t}")


def test_a_task_the_agent_no_longer_knows_fails_at_its_hello():
    with harness.Env() as env:
        _, client, agent = raw_setup(env)
        start_task(client, agent, "t-forgotten")
        agent.restart()
        agent.hello([])
        agent.heartbeat()
        done = client.pump(is_done("t-forgotten"), 5)
        check(done is not None and done["ok"] is False and done["error"]["code"] == "unavailable",
              f"the follower was not told the task failed: {done}")
        t = wait_task(client, "t-forgotten", "failed", 5)
        check("no longer knows task t-forgotten" in t["error"]["message"], f"reason: {t}")


def test_a_running_task_reported_at_hello_is_adopted():
    with harness.Env() as env:
        _, client, agent = raw_setup(env)
        agent.hello([{"id": "t-adopted", "op": "backup.create", "state": "running"}])
        t = wait_task(client, "t-adopted", "running", 5)
        check(t["op"] == "backup.create" and t["instance"] == "raw-1", f"adopted: {t}")
        agent.send(done_event("t-adopted", "late"))
        check(agent.expect(lambda m: m.get("type") == "ack") is not None, "no ack")
        t = wait_task(client, "t-adopted", "completed", 5)
        check(t["result"]["backup"]["id"] == "late", f"outcome: {t}")


def test_a_task_without_an_outcome_fails_at_its_deadline():
    with harness.Env() as env:
        _, client, agent = raw_setup(env, task_deadline_ms=1500)
        start_task(client, agent, "t-silent")
        done = client.pump(is_done("t-silent"), 6)
        check(done is not None and done["ok"] is False and done["error"]["code"] == "timeout",
              f"the task did not fail at its deadline: {done}")
        check("no outcome within 1 s" in done["error"]["message"], f"reason: {done['error']}")
        check(task_state(client, "t-silent")["state"] == "failed", "the task is not recorded as failed")
        # A second long operation is no longer refused for the instance's sake.
        client.send("backup.create", {"kind": "full"}, instance="raw-1", rid="t-next")
        check(agent.expect(lambda m: m.get("type") == "request" and m.get("id") == "t-next") is not None,
              "the next task did not reach the agent")


def test_a_second_long_operation_is_refused_while_one_runs():
    with harness.Env() as env:
        _, client, agent = raw_setup(env)
        start_task(client, agent, "t-first")
        reply = client.call("backup.create", {"kind": "full"}, instance="raw-1")
        check(not reply["ok"] and reply["error"]["code"] == "failed_precondition" and
              "t-first" in reply["error"]["message"], f"a second task: {reply}")
        short = client.send("user.list", instance="raw-1", rid="short-1")
        check(agent.expect(lambda m: m.get("id") == short) is not None, "a short op was refused too")


def test_a_retried_request_id_joins_the_waiting_one():
    with harness.Env() as env:
        _, client, agent = raw_setup(env)
        other = Client(env, client.sock.getsockopt_string(zmq.LAST_ENDPOINT))
        client.send("user.list", instance="raw-1", rid="retry-1")
        first = agent.expect(lambda m: m.get("id") == "retry-1")
        other.send("user.list", instance="raw-1", rid="retry-1")
        again = agent.expect(lambda m: m.get("id") == "retry-1")
        check(first is not None and again is not None, "the retry was not sent to the agent again")
        agent.send({"type": "reply", "id": "retry-1", "ok": True, "result": {"users": []}})
        for who in (client, other):
            reply = who.pump(lambda m: m.get("type") == "reply" and m.get("id") == "retry-1", 5)
            check(reply is not None and reply["ok"] and reply["result"] == {"users": []},
                  f"an asker did not get the one reply: {reply}")


if __name__ == "__main__":
    harness.run_tests(globals())
