"""Test harness: temp dirs, free loopback ports, child processes that are always
stopped, and the project's binaries (trove-agent, trove-control, trovectl).

Standard library only. Every resource is registered on an ExitStack so a failing
test still stops its servers and removes its files (set TROVE_KEEP_TMP=1 to keep
the files for a post-mortem).
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("TROVE_BUILD") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
SOURCE = os.environ.get("TROVE_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")


def build_path(*parts):
    return os.path.join(BUILD, *parts)


def source_path(*parts):
    return os.path.join(SOURCE, *parts)


def agent_binary():
    return build_path("agent", "trove-agent")


def control_binary():
    return build_path("control", "trove-control")


def trovectl_binary():
    return build_path("control", "trovectl")


def plugin_dir(name):
    return build_path("plugins", name)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate() until it returns a true value; raise naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled is not ready yet
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s" + (f" (last error: {last_exc})" if last_exc else ""))


def processes_with(text):
    """Pids of live processes whose command line contains `text`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(name))
        except OSError:
            pass
    return found


def tcp_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Proc:
    """A child process with its output in a log file. stop() signals it, waits,
    and kills it if it does not exit in time."""

    def __init__(self, argv, log_path, env=None, cwd=None, stop_signal=signal.SIGTERM, preexec_fn=None):
        self.argv = list(argv)
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd, preexec_fn=preexec_fn)
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

    def kill(self):
        return self.stop(signal.SIGKILL, timeout=10)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


class Env(contextlib.ExitStack):
    """One test's world: a temp dir and everything started in it, torn down on exit."""

    def __init__(self, prefix="trove-test-"):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)  # servers that drop privileges must be able to enter it
        self.callback(self._remove_dir)

    def _remove_dir(self):
        if os.environ.get("TROVE_KEEP_TMP"):
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


def write_ini(path, sections, mode=0o644):
    """Write {section: {key: value}} as an INI file. Values are quoted when they
    have leading/trailing spaces or comment characters."""
    lines = []
    for section, kv in sections.items():
        lines.append(f"[{section}]")
        for k, v in kv.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            v = str(v)
            if v != v.strip() or any(c in v for c in "#;\"") or v == "":
                v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{k} = {v}")
        lines.append("")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, mode)
    return path


class Result:
    """The outcome of one operation: ok + result, or an error code + message."""

    def __init__(self, doc, stderr="", exit_code=0):
        self.doc = doc
        self.ok = bool(doc.get("ok"))
        self.result = doc.get("result") or {}
        err = doc.get("error") or {}
        self.code = "ok" if self.ok else err.get("code", "unknown")
        self.message = err.get("message", "")
        self.stderr = stderr
        self.exit_code = exit_code

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    def __repr__(self):
        return f"Result(ok={self.ok}, code={self.code!r}, message={self.message!r}, result={self.result!r})"


class Agent:
    """A trove-agent configuration for one instance. call() runs one operation
    in-process through the agent's dispatch (`trove-agent -c CONF call OP -`,
    the JSON arguments on standard input, so no password is on a command
    line); serve() runs the agent connected to a control plane."""

    def __init__(self, env, plugin, settings, instance_id="inst-a", backup_dir=None, control_endpoint=None,
                 curve=None, heartbeat_ms=1000, log_level="info"):
        self.env = env
        self.instance_id = instance_id
        self.dir = env.mkdir("agent-" + instance_id, mode=0o700)
        self.backup_dir = backup_dir or env.mkdir("backups")
        public, secret = {}, {}
        for k, v in settings.items():
            (secret if "password" in k else public)[k] = v
        secrets_path = write_ini(os.path.join(self.dir, "secrets.conf"), {"datastore": secret}, mode=0o600)
        agent = {
            "instance_id": instance_id,
            "plugin": plugin,
            "plugin_dir": plugin_dir(plugin),
            "state_dir": os.path.join(self.dir, "state"),
            "secrets_file": secrets_path,
            "log_level": log_level,
            "heartbeat_ms": heartbeat_ms,
            "control_endpoint": control_endpoint or "tcp://127.0.0.1:1",
        }
        sections = {"agent": agent, "backup": {"location": self.backup_dir}, "datastore": public}
        if curve:
            sections["curve"] = curve
        else:
            agent["plaintext_dev"] = True
        self.config = write_ini(os.path.join(self.dir, "agent.conf"), sections)
        self.proc = None

    def call(self, op, args=None, timeout=900):
        argv = [agent_binary(), "-c", self.config, "call", op]
        text = b""
        if args is not None:
            argv.append("-")
            text = json.dumps(args).encode()
        cp = subprocess.run(argv, input=text, capture_output=True, timeout=timeout)
        out = cp.stdout.decode("utf-8", "replace").strip()
        try:
            doc = json.loads(out) if out else {}
        except json.JSONDecodeError:
            doc = {}
        if not doc:
            doc = {"ok": False, "error": {"code": "no_output",
                                          "message": f"exit {cp.returncode}: {cp.stderr.decode('utf-8', 'replace')[-2000:]}"}}
        return Result(doc, cp.stderr.decode("utf-8", "replace"), cp.returncode)

    def must(self, op, args=None, **kw):
        r = self.call(op, args, **kw)
        if not r.ok:
            raise AssertionError(f"{op} failed: {r.code}: {r.message}\n{r.stderr[-3000:]}")
        return r

    def serve(self):
        self.proc = self.env.spawn([agent_binary(), "-c", self.config], "agent-" + self.instance_id)
        return self.proc


def check(condition, message):
    """assert that survives python -O, with a message saying what the user would see."""
    if not condition:
        raise AssertionError(message)


def secret_file(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def run_tests(namespace):
    """Run every test_* function in namespace, print one line per test, and
    exit non-zero if any failed. Each test gets its own fresh Env."""
    import traceback
    failed = ran = 0
    names = [n for n in namespace if n.startswith("test_") and callable(namespace[n])]
    only = os.environ.get("TROVE_TEST_ONLY")
    for name in names:
        if only and only not in name:
            continue
        ran += 1
        start = time.monotonic()
        try:
            namespace[name]()
            print(f"ok   {name} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - start:.1f}s)", flush=True)
            traceback.print_exc()
    if not ran:
        print(f"no test ran (TROVE_TEST_ONLY={only!r}): nothing was checked", flush=True)
    sys.exit(1 if failed or not ran else 0)
