"""The agent at the wire: a raw ROUTER peer (this test, speaking the
protocol directly) sends it well-formed and malformed frames. The agent must
answer every bad frame with a clear error and keep serving; a repeated request
id is answered from the cache, not executed twice; long operations answer at
once and report progress and completion; SIGTERM says bye."""
import signal
import time

import msgpack
import zmq

import harness
from harness import check
from redis_server import RedisServer


class Peer:
    """The control plane's side of one agent connection, in plain text on loopback."""

    def __init__(self, env):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.agent_id = None
        self.hellos, self.heartbeats, self.events = [], [], []
        env.callback(lambda: (self.sock.close(0), self.ctx.term()))

    def pump(self, timeout=5.0, until=None):
        """Receive until until(msg) is true; returns that message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.sock.poll(int(max(0.0, deadline - time.monotonic()) * 1000)):
                break
            frames = self.sock.recv_multipart()
            self.agent_id = frames[0]
            msg = msgpack.unpackb(frames[1], raw=False)
            kind = msg.get("type")
            {"hello": self.hellos, "heartbeat": self.heartbeats, "event": self.events}.get(kind, []).append(msg)
            if until and until(msg):
                return msg
        return None

    def send_raw(self, *frames):
        self.sock.send_multipart([self.agent_id, *frames])

    def send(self, msg):
        self.send_raw(msgpack.packb(msg, use_bin_type=True))

    def reply_to(self, rid, timeout=10.0):
        msg = self.pump(timeout, lambda m: m.get("type") == "reply" and m.get("id") == rid)
        check(msg is not None, f"no reply to request {rid!r}")
        return msg

    def request(self, rid, op, args=None, timeout=10.0):
        msg = {"v": 1, "type": "request", "id": rid, "op": op}
        if args is not None:
            msg["args"] = args
        self.send(msg)
        return self.reply_to(rid, timeout)


def start(env):
    server = RedisServer(env).start()
    peer = Peer(env)
    agent = harness.Agent(env, "redis", server.settings, instance_id="wire-1", control_endpoint=peer.endpoint,
                          heartbeat_ms=300)
    agent.serve()
    hello = peer.pump(10, lambda m: m.get("type") == "hello")
    check(hello is not None, "the agent sent no hello")
    return peer, agent, hello


def expect_error(reply, code, what):
    check(reply["ok"] is False, f"{what}: expected an error, got {reply}")
    check(reply["error"]["code"] == code, f"{what}: expected {code}, got {reply['error']}")
    check(reply["error"]["message"], f"{what}: empty error message")


def test_hello_and_heartbeats():
    with harness.Env() as env:
        peer, agent, hello = start(env)
        check(peer.agent_id == b"wire-1", f"routing id is {peer.agent_id!r}, not the instance id")
        check(hello["instance"] == "wire-1" and hello["plugin"]["name"] == "redis", f"hello: {hello}")
        check(hello["abi"]["major"] == 2 and "user.create" in hello["capabilities"], f"hello: {hello}")
        check("database.create" not in hello["capabilities"], "an unsupported op is announced as a capability")
        peer.pump(2.0)
        seqs = [h["seq"] for h in peer.heartbeats]
        check(len(seqs) >= 3 and seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
              f"heartbeats missing or not increasing: {seqs}")
        check(peer.heartbeats[-1]["state"] == "running", f"heartbeat state: {peer.heartbeats[-1]}")


def test_malformed_frames_get_errors_and_the_agent_keeps_serving():
    with harness.Env() as env:
        peer, agent, _ = start(env)
        bad_frames = {
            "garbage": b"\xc1\xff\x00garbage",
            "truncated map": msgpack.packb({"v": 1, "type": "request", "id": "t1", "op": "ping"})[:-3],
            "claimed huge array": b"\xdd\xff\xff\xff\xff",
            "deep nesting": b"\x91" * 200 + b"\xc0",
            "not a map": msgpack.packb([1, 2, 3]),
            "trailing bytes": msgpack.packb({"v": 1, "type": "request", "id": "t2", "op": "ping"}) + b"\x00",
        }
        for what, frame in bad_frames.items():
            peer.send_raw(frame)
            reply = peer.reply_to("")
            expect_error(reply, "invalid_argument", what)
        peer.send_raw(msgpack.packb({"v": 1}), b"second frame")
        expect_error(peer.reply_to(""), "invalid_argument", "a two-frame message")
        for what, msg in {
            "wrong version": {"v": 2, "type": "request", "id": "e1", "op": "ping"},
            "missing op": {"v": 1, "type": "request", "id": "e2"},
            "args not a map": {"v": 1, "type": "request", "id": "e3", "op": "ping", "args": [1]},
            "op not a string": {"v": 1, "type": "request", "id": "e4", "op": 7},
        }.items():
            peer.send(msg)
            expect_error(peer.reply_to(msg["id"]), "invalid_argument", what)
        expect_error(peer.request("e5", "no.such.op"), "not_found", "an unknown op")
        expect_error(peer.request("e6", "user.create", {"name": 5, "password": "x"}), "invalid_argument",
                     "a wrongly typed argument")
        expect_error(peer.request("e7", "database.create", {"name": "x"}), "not_supported",
                     "an op the plugin does not implement")
        reply = peer.request("p1", "ping")
        check(reply["ok"] and reply["result"]["pong"] is True, f"ping after bad frames: {reply}")
        check(agent.proc.alive(), "the agent died")


def test_oversized_frame_drops_the_connection_and_the_agent_reconnects():
    with harness.Env() as env:
        peer, agent, _ = start(env)
        peer.hellos.clear()
        peer.send_raw(b"\x00" * (17 * 1024 * 1024))
        hello = peer.pump(15, lambda m: m.get("type") == "hello")
        check(hello is not None, "the agent did not reconnect after an oversized frame")
        check(peer.request("p2", "ping")["ok"], "ping failed after reconnect")


def test_repeated_request_id_is_not_executed_twice():
    with harness.Env() as env:
        peer, agent, _ = start(env)
        args = {"name": "carol", "password": "pw", "databases": ["c:*"]}
        first = peer.request("same-id", "user.create", args)
        check(first["ok"], f"user.create failed: {first}")
        again = peer.request("same-id", "user.create", args)
        check(again == first, f"a repeated id was answered differently: {again}")
        fresh = peer.request("new-id", "user.create", args)
        expect_error(fresh, "already_exists", "creating the same user under a new id")


def test_long_operation_answers_at_once_then_reports():
    with harness.Env() as env:
        peer, agent, _ = start(env)
        reply = peer.request("bk-1", "backup.create", {"kind": "full"})
        check(reply["ok"] and reply["result"] == {"task": "bk-1", "state": "running"}, f"task reply: {reply}")
        done = peer.pump(60, lambda m: m.get("type") == "event" and m.get("event") == "task.done")
        check(done is not None and done["id"] == "bk-1" and done["ok"], f"task.done: {done}")
        check(done["result"]["backup"]["state"] == "complete", f"backup record: {done['result']}")
        progress = [e for e in peer.events if e["event"] == "task.progress" and e["id"] == "bk-1"]
        check(progress, "no task.progress events")
        peer.events.clear()
        again = peer.request("bk-1", "backup.create", {"kind": "full"})
        check(again == reply, "a repeated task id was not answered from the cache")
        redone = peer.pump(5, lambda m: m.get("type") == "event" and m.get("event") == "task.done")
        check(redone == done, "a repeated task id did not get its task.done again")
        listed = peer.request("bl", "backup.list")["result"]["backups"]
        check(len(listed) == 1, f"the repeated backup ran twice: {len(listed)} backups")


def test_sigterm_says_bye_and_exits_cleanly():
    with harness.Env() as env:
        peer, agent, _ = start(env)
        agent.proc.proc.send_signal(signal.SIGTERM)
        bye = peer.pump(10, lambda m: m.get("type") == "bye")
        check(bye is not None, "no bye on SIGTERM")
        check(agent.proc.proc.wait(10) == 0, "the agent did not exit 0 on SIGTERM")


if __name__ == "__main__":
    harness.run_tests(globals())
