"""The world a check runs in: a temporary directory, child processes that are
always stopped, free loopback ports, and the product's own binaries
(trove-control, trove-agent, trovectl) wired together with CURVE, so every
operation takes the path a user's command takes:
trovectl -> trove-control -> trove-agent -> plugin -> server.

Standard library only. Binaries come from TROVE_BUILD (a build tree) when it is
set, else from TROVE_BINDIR (set by the installed command).
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def binary(name):
    """Path of trove-agent, trove-control or trovectl."""
    build = os.environ.get("TROVE_BUILD")
    if build:
        return os.path.join(build, "agent" if name == "trove-agent" else "control", name)
    return os.path.join(os.environ.get("TROVE_BINDIR", "/usr/local/bin"), name)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate() until it returns a true value; raise naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s" + (f" (last error: {last})" if last else ""))


def write_ini(path, sections, mode=0o644):
    """Write {section: {key: value}} as INI, quoting values that need it."""
    lines = []
    for section, kv in sections.items():
        lines.append(f"[{section}]")
        for k, v in kv.items():
            if v is None:
                continue
            v = ("true" if v else "false") if isinstance(v, bool) else str(v)
            if v != v.strip() or any(c in v for c in "#;\"") or v == "":
                v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{k} = {v}")
        lines.append("")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, mode)
    return path


class Proc:
    """A child process with its output in a log file; stop() signals, waits, kills."""

    def __init__(self, argv, log_path, env=None, cwd=None, stop_signal=signal.SIGTERM):
        self.argv = list(argv)
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=None, timeout=30):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig if sig is not None else self.stop_signal)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.log.close()
        return self.proc.returncode


class Env(contextlib.ExitStack):
    """One part's world: a temp dir and everything started in it, torn down on exit.
    Descriptions get it in start_server(env, index): path(), mkdir(), spawn()
    and callback() (run at teardown, last registered first)."""

    def __init__(self, prefix="trove-check-", keep=False):
        super().__init__()
        self.keep = keep or bool(os.environ.get("TROVE_KEEP_TMP"))
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)  # servers that drop privileges must be able to enter it
        self.callback(self._remove_dir)

    def _remove_dir(self):
        if self.keep:
            print(f"keeping {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        p = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def mkdir(self, *parts, mode=0o755):
        p = os.path.join(self.dir, *parts)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    def spawn(self, argv, name, **kw):
        """Start a process whose log is <dir>/<name>.log; it is stopped at exit."""
        p = Proc(argv, self.path(name + ".log"), **kw)
        self.callback(p.stop)
        return p

    def log_tails(self, lines=30):
        """The end of every log in the world, for a failure report."""
        out = []
        for root, _, files in os.walk(self.dir):
            for name in sorted(files):
                if name.endswith(".log"):
                    with open(os.path.join(root, name), "rb") as f:
                        tail = b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
                    out.append(f"--- {os.path.relpath(os.path.join(root, name), self.dir)} (tail)\n{tail}")
        return "\n".join(out)


class Result:
    """The outcome of one operation: ok + result, or an error code + message."""

    def __init__(self, doc):
        self.ok = bool(doc.get("ok"))
        self.result = doc.get("result") or {}
        err = doc.get("error") or {}
        self.code = "ok" if self.ok else err.get("code", "unknown")
        self.message = err.get("message", "")

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)


class OpFailed(Exception):
    """An operation the scenario needs failed; the check that ran it fails."""


class ControlPlane:
    """trove-control with CURVE keys and an allow-list of agent keys. The check
    starts its servers and agents itself, so the control plane provisions
    nothing and serves no REST API (no fixed port shared between runs);
    trovectl takes the operator's path, --endpoint on the client socket."""

    def __init__(self, env):
        self.env = env
        self.dir = env.mkdir("control", mode=0o700)
        self.keys = env.mkdir("keys", mode=0o700)
        self.agent_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.client_endpoint = f"ipc://{self.dir}/control.sock"
        self.allowed = []
        self.server_pub = self._keygen(os.path.join(self.dir, "server"))
        self.config = write_ini(os.path.join(self.dir, "control.conf"), {"control": {
            "agent_endpoint": self.agent_endpoint, "client_endpoint": self.client_endpoint,
            "state_dir": self.dir, "log_level": "info", "request_timeout_ms": 600000,
            "server_key_file": os.path.join(self.dir, "server.key"),
            "allowed_agents_file": os.path.join(self.dir, "allowed_agents"),
            "provisioner": "none", "api_listen": "off"}})

    def _keygen(self, base):
        cp = subprocess.run([binary("trove-control"), "keygen", base], capture_output=True,
                            stdin=subprocess.DEVNULL)
        if cp.returncode != 0:
            raise RuntimeError(f"trove-control keygen failed: {cp.stderr.decode()}")
        with open(base + ".pub") as f:
            self.last_pub = f.read().strip()
        return base + ".pub"

    def agent(self, plugin, plugin_dir, settings, instance_id, backup_dir):
        """Configure (not start) an agent for `instance_id`; its key joins the allow-list."""
        self._keygen(os.path.join(self.keys, instance_id))
        self.allowed.append(f"{instance_id} {self.last_pub}")
        return Agent(self.env, plugin, plugin_dir, settings, instance_id, backup_dir, self.agent_endpoint,
                     {"server_public_key_file": self.server_pub,
                      "agent_key_file": os.path.join(self.keys, instance_id + ".key")})

    def start(self):
        with open(os.path.join(self.dir, "allowed_agents"), "w") as f:
            f.write("# instance-id public-key\n" + "\n".join(self.allowed) + "\n")
        self.env.spawn([binary("trove-control"), "-c", self.config], "trove-control")
        wait_for(lambda: self.ctl("list").ok, 10, "trove-control")

    def ctl(self, *args, timeout=900):
        argv = [binary("trovectl"), "--endpoint", self.client_endpoint, "--json", "--timeout", "600"]
        cp = subprocess.run(argv + [str(a) for a in args], capture_output=True, stdin=subprocess.DEVNULL,
                            timeout=timeout)
        out = cp.stdout.decode("utf-8", "replace").strip()
        try:
            doc = json.loads(out) if out else {}
        except json.JSONDecodeError:
            doc = {"ok": False, "error": {"code": "bad_output", "message": out[-2000:]}}
        if "ok" not in doc:  # trovectl --json prints the bare result map on success
            doc = {"ok": True, "result": doc} if cp.returncode == 0 else \
                {"ok": False, "error": {"code": f"exit_{cp.returncode}",
                                        "message": cp.stderr.decode("utf-8", "replace")}}
        return Result(doc)

    def instance(self, instance_id):
        r = self.ctl("show", instance_id)
        return r.result.get("instance", r.result) if r.ok else None

    def wait_connected(self, instance_id, timeout=20):
        def connected():
            info = self.instance(instance_id)
            return info if info and info.get("connected") else None
        return wait_for(connected, timeout, f"agent {instance_id} connected")


class Agent:
    """A trove-agent configuration for one instance; serve() runs it."""

    def __init__(self, env, plugin, plugin_dir, settings, instance_id, backup_dir, endpoint, curve):
        self.env = env
        self.instance_id = instance_id
        self.backup_dir = backup_dir
        self.dir = env.mkdir("agent-" + instance_id, mode=0o700)
        self.state_dir = os.path.join(self.dir, "state")
        public, secret = {}, {}
        for k, v in settings.items():
            (secret if ("password" in k or "secret" in k) else public)[k] = v
        secrets = write_ini(os.path.join(self.dir, "secrets.conf"), {"datastore": secret}, mode=0o600)
        self.config = write_ini(os.path.join(self.dir, "agent.conf"), {
            "agent": {"instance_id": instance_id, "plugin": plugin, "plugin_dir": plugin_dir,
                      "state_dir": self.state_dir, "secrets_file": secrets, "log_level": "info",
                      "heartbeat_ms": 1000, "control_endpoint": endpoint},
            "backup": {"location": backup_dir}, "curve": curve, "datastore": public})

    def serve(self):
        return self.env.spawn([binary("trove-agent"), "-c", self.config], "agent-" + self.instance_id)


class Instance:
    """One managed instance as the battery addresses it: op(name, args) through the control plane."""

    def __init__(self, control, agent, server):
        self.control = control
        self.agent = agent
        self.server = server
        self.id = agent.instance_id

    def op(self, name, args=None):
        return self.control.ctl("call", self.id, name, json.dumps(args or {}))

    def must(self, name, args=None):
        r = self.op(name, args)
        if not r.ok:
            raise OpFailed(f"{self.id}: {name} failed: {r.code}: {r.message}")
        return r
