"""A control plane for tests: trove-control with CURVE keys and an allow-list,
agents that serve through it, and trovectl to drive them — the whole path a
user's command takes."""
import json
import os
import subprocess

import harness


def keygen(name):
    cp = subprocess.run([harness.control_binary(), "keygen", name], capture_output=True, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise RuntimeError(f"keygen {name} failed: {cp.stderr.decode()}")
    with open(name + ".pub") as f:
        return f.read().strip()


class ControlPlane:
    def __init__(self, env, curve=True, request_timeout_ms=600000, log_level="debug"):
        self.env = env
        self.curve = curve
        self.dir = env.mkdir("control", mode=0o700)
        self.agent_endpoint = f"tcp://127.0.0.1:{harness.free_port()}"
        self.client_endpoint = f"ipc://{self.dir}/control.sock"
        self.allow_path = os.path.join(self.dir, "allowed_agents")
        self.allowed = []
        settings = {
            "agent_endpoint": self.agent_endpoint,
            "client_endpoint": self.client_endpoint,
            "state_dir": self.dir,
            "log_level": log_level,
            "request_timeout_ms": request_timeout_ms,
        }
        if curve:
            keygen(os.path.join(self.dir, "server"))
            self.server_pub = os.path.join(self.dir, "server.pub")
            settings["server_key_file"] = os.path.join(self.dir, "server.key")
            settings["allowed_agents_file"] = self.allow_path
        else:
            settings["plaintext_dev"] = True
        self.config = harness.write_ini(os.path.join(self.dir, "control.conf"), {"control": settings})
        self.proc = None

    def agent_keys(self, instance_id, allowed=True):
        """A key pair for an agent, added to the allow-list when `allowed`.
        Returns the agent's [curve] section. Call before start()."""
        base = os.path.join(self.env.mkdir("keys", mode=0o700), instance_id)
        pub = keygen(base)
        if allowed:
            self.allowed.append(f"{instance_id} {pub}")
        return {"server_public_key_file": self.server_pub, "agent_key_file": base + ".key"}

    def start(self):
        if self.curve:
            with open(self.allow_path, "w") as f:
                f.write("# instance-id public-key\n" + "\n".join(self.allowed) + "\n")
        self.proc = self.env.spawn([harness.control_binary(), "-c", self.config], "trove-control")
        harness.wait_for(lambda: self.ctl("list").ok, 10, "trove-control")
        return self

    def agent(self, plugin, settings, instance_id, allowed=True, **kw):
        """An Agent configured to serve through this control plane."""
        curve = self.agent_keys(instance_id, allowed) if self.curve else None
        return harness.Agent(self.env, plugin, settings, instance_id=instance_id,
                             control_endpoint=self.agent_endpoint, curve=curve, **kw)

    def ctl(self, *args, timeout=900, stdin=b""):
        """Run trovectl --json with args (stdin: bytes for its standard input);
        the Result carries exit code and stderr."""
        argv = [harness.trovectl_binary(), "--endpoint", self.client_endpoint, "--json", "--timeout", "600"]
        argv += [str(a) for a in args]
        cp = subprocess.run(argv, capture_output=True, input=stdin, timeout=timeout)
        out = cp.stdout.decode("utf-8", "replace").strip()
        try:
            doc = json.loads(out) if out else {}
        except json.JSONDecodeError:
            doc = {"ok": False, "error": {"code": "bad_output", "message": out[-2000:]}}
        if "ok" not in doc:
            # trovectl --json prints the bare result map on success
            doc = {"ok": cp.returncode == 0, "result": doc} if cp.returncode == 0 else \
                {"ok": False, "error": {"code": "exit_%d" % cp.returncode,
                                        "message": cp.stderr.decode("utf-8", "replace")}}
        return harness.Result(doc, cp.stderr.decode("utf-8", "replace"), cp.returncode)

    def op(self, instance, op, args=None):
        """One protocol op through trovectl's generic `call` verb, its JSON
        arguments on standard input (off the command line)."""
        return self.ctl("call", instance, op, "-", stdin=json.dumps(args or {}).encode())

    def instance(self, instance_id):
        r = self.ctl("show", instance_id)
        return r.result.get("instance", r.result) if r.ok else None

    def wait_connected(self, instance_id, timeout=20):
        def connected():
            info = self.instance(instance_id)
            return info if info and info.get("connected") else None
        return harness.wait_for(connected, timeout, f"agent {instance_id} connected")


class Instance:
    """One managed database instance, addressed the way the battery needs it:
    op(name, args) -> harness.Result, through the control plane."""

    def __init__(self, control, agent, server):
        self.control = control
        self.agent = agent
        self.server = server
        self.id = agent.instance_id

    def op(self, name, args=None):
        return self.control.op(self.id, name, args)

    def must(self, name, args=None):
        r = self.op(name, args)
        if not r.ok:
            raise AssertionError(f"{self.id}: {name} failed: {r.code}: {r.message}")
        return r
