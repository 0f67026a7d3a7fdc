"""The instance lifecycle (control/instances.c) end to end on this host: create
MySQL, PostgreSQL and Redis instances with databases and users, restart, resize
flavor and volume, delete and force delete, one action at a time, and a control
plane killed with SIGKILL that adopts its instances again when it starts.

instances_driver (argv[1]) wires the module with the loop, rpc (CURVE, agent
keys admitted at run time), conductor, core, tasks, a SQLite registry and the
local provisioner, as trove-control does; requests go in as JSON lines through
control_submit, replies and task events come out as JSON lines. The engines are
checked from the outside with the stock mariadb, psql and redis-cli clients,
as the users the create asked for. Runs as root.
"""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import harness
from harness import check

DRIVER = sys.argv[1] if len(sys.argv) > 1 else harness.build_path("tests", "control", "instances_driver")
GIB = 1024 ** 3


class Driver:
    """One control plane process; its state (registry, keys) and instances
    directory survive a restart because they live in the Env."""

    def __init__(self, env, port=None):
        self.env = env
        self.state_dir = os.path.join(env.dir, "state")
        self.instances_dir = os.path.join(env.dir, "instances")
        self.port = port or harness.free_port()
        self.tag = 0
        self.proc = None
        env.callback(self.cleanup)

    def start(self):
        argv = [DRIVER, "--state-dir", self.state_dir, "--instances-dir", self.instances_dir,
                "--agent-binary", harness.agent_binary(), "--plugin-dir", harness.build_path("plugins"),
                "--agent-endpoint", f"tcp://127.0.0.1:{self.port}", "--flavor", "small:256", "--flavor", "big:512"]
        self.log = open(os.path.join(self.env.dir, "driver.log"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True).start()
        ready = self._next(lambda d: d.get("type") == "ready", 30, "the driver to start")
        self.versions = {v["datastore"]: v for v in self.call("versions")["result"]["versions"]}
        return ready

    @staticmethod
    def _read(proc, lines):
        for line in proc.stdout:
            lines.put(json.loads(line))

    def _next(self, match, timeout, what):
        for doc in self.seen:
            if match(doc):
                self.seen.remove(doc)
                return doc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                doc = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if match(doc):
                return doc
            self.seen.append(doc)
        raise AssertionError(f"timed out waiting for {what}; driver log: {self.log_tail()}")

    def log_tail(self, n=15):
        with open(os.path.join(self.env.dir, "driver.log"), "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")

    def submit(self, op, instance=None, args=None, tenant=None):
        self.tag += 1
        req = {"tag": self.tag, "op": op}
        if instance:
            req["instance"] = instance
        if args is not None:
            req["args"] = args
        if tenant:
            req["tenant"] = tenant
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        return self.tag

    def reply(self, tag, timeout=60):
        return self._next(lambda d: d.get("tag") == tag and d.get("type") == "reply", timeout, f"reply {tag}")

    def done(self, tag, timeout=300):
        return self._next(lambda d: d.get("tag") == tag and d.get("type") == "event" and d.get("last"), timeout,
                          f"the end of task {tag}")["event"]

    def submit_raw(self, req):
        self.tag += 1
        req = dict(req, tag=self.tag)
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        return self.tag

    def call(self, op, instance=None, args=None, tenant=None):
        return self.reply(self.submit(op, instance, args, tenant))

    def run_task(self, op, instance=None, args=None, tenant=None, timeout=300):
        """Submit a long op; return (reply, task.done event)."""
        tag = self.submit(op, instance, args, tenant)
        r = self.reply(tag)
        if r["status"] != "ok":
            return r, None
        return r, self.done(tag, timeout)

    def must_task(self, op, instance=None, args=None, tenant=None, timeout=300):
        r, done = self.run_task(op, instance, args, tenant, timeout)
        if r["status"] != "ok" or not done.get("ok"):
            raise AssertionError(f"{op} {instance or ''}: {r} {done}\n{self.log_tail()}")
        return r["result"]

    def show(self, instance):
        return self.call("show", instance)

    def create(self, datastore, name, flavor="small", volume=1, **extra):
        args = {"name": name, "flavor": flavor, "volume_size": volume, "datastore": datastore,
                "datastore_version": self.versions[datastore]["id"]}
        args.update(extra)
        return self.must_task("instance.create", args=args, tenant="tenant-a")["instance_id"]

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()

    def cleanup(self):
        """Whatever a test left: stop the driver, force-delete every instance on disk."""
        self.stop()
        if not os.path.isdir(self.instances_dir):
            return
        tool = harness.build_path("tests", "control", "provision_tool")
        for name in os.listdir(self.instances_dir):
            if not name.startswith("."):
                subprocess.run([tool, "--instances-dir", self.instances_dir, "--agent-binary", harness.agent_binary(),
                                "--plugin-dir", harness.build_path("plugins"), "force-destroy", name],
                               capture_output=True)
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mount_point = line.split()[4]
                if mount_point.startswith(self.instances_dir + "/"):
                    subprocess.run(["umount", "-l", mount_point], capture_output=True)


def instance_dir(driver, instance_id):
    return os.path.join(driver.instances_dir, instance_id)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def agent_pid(driver, instance_id):
    with open(os.path.join(instance_dir(driver, instance_id), "agent.pid")) as f:
        return int(f.read())


def fs_size(path):
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def mariadb(port, user, password, sql, database=None):
    cnf = harness.secret_file(f"/tmp/trove-test-client-{os.getpid()}-{time.monotonic_ns()}.cnf",
                              f'[client]\npassword="{password}"\n')
    argv = ["mariadb", "--defaults-file=" + cnf, "--batch", "--skip-column-names", "--protocol=tcp",
            "--host=127.0.0.1", f"--port={port}", "--user=" + user, "-e", sql]
    if database:
        argv.append("--database=" + database)
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        os.unlink(cnf)
    if cp.returncode != 0:
        raise AssertionError(f"mariadb as {user}: {cp.stderr.strip()}")
    return cp.stdout.strip()


def psql(port, user, password, database, sql):
    env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="disable", PGGSSENCMODE="disable", PGCONNECT_TIMEOUT="5")
    cp = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                         "-U", user, "-d", database, "-c", sql], capture_output=True, text=True, env=env, timeout=60,
                        stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise AssertionError(f"psql as {user}: {cp.stderr.strip()}")
    return cp.stdout.strip()


def redis_cli(port, user, password, *args):
    env = dict(os.environ, REDISCLI_AUTH=password)
    cp = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--no-auth-warning", "--user", user] +
                        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=60,
                        stdin=subprocess.DEVNULL)
    return cp.stdout.strip()


def check_gone(driver, instance_id):
    r = driver.show(instance_id)
    check(r["status"] == "not_found", f"a deleted instance is still in the registry: {r}")
    check(not os.path.exists(instance_dir(driver, instance_id)), "the instance's directory is left")
    with open("/proc/self/mountinfo") as f:
        check(instance_id not in f.read(), "the instance's volume is still mounted")


# ------------------------------------------------------------------ scenarios

def test_three_datastores_created_at_once_with_users_then_deleted():
    with harness.Env(prefix="inst-three-") as env:
        d = Driver(env)
        d.start()
        check({"mysql", "postgresql", "redis"} <= set(d.versions), f"discovered versions: {d.versions}")
        check(d.versions["mysql"]["plugin"] == "mysql" and d.versions["postgresql"]["name"].isdigit(),
              f"versions: {d.versions}")
        requests = {
            "mysql": {"databases": [{"name": "shop"}],
                      "users": [{"name": "alice", "password": "al'ice \"pw", "databases": ["shop"]}]},
            "postgresql": {"databases": [{"name": "shop"}],
                           "users": [{"name": "bob", "password": "b'ob pw", "databases": ["shop"]}]},
            "redis": {"users": [{"name": "app", "password": "app pw", "databases": ["app:*"]}]},
        }
        tags = {}
        for ds, extra in requests.items():
            args = {"name": "db-" + ds, "flavor": "small", "volume_size": 1, "datastore": ds,
                    "datastore_version": d.versions[ds]["id"]}
            args.update(extra)
            tags[ds] = d.submit("instance.create", args=args, tenant="tenant-a")
        ids = {}
        for ds, tag in tags.items():
            r = d.reply(tag)
            check(r["status"] == "ok" and r["result"]["state"] == "running", f"create {ds}: {r}")
            ids[ds] = r["result"]["instance_id"]
            # The row exists as soon as the create is accepted.
            check(d.show(ids[ds])["result"]["status"] in ("BUILD", "ACTIVE"), "no BUILD row after the reply")
        for ds, tag in tags.items():
            done = d.done(tag)
            check(done.get("ok") and done["result"]["instance_id"] == ids[ds], f"create {ds} ended: {done}")
        rows = {ds: d.show(i)["result"] for ds, i in ids.items()}
        for ds, row in rows.items():
            check(row["status"] == "ACTIVE" and row["task"] == "" and row["volume_kind"] == "loop", f"{ds}: {row}")
            check(row["engine_port"] > 0 and len(row["agent_public_key"]) == 40, f"{ds}: {row}")
        check(mariadb(rows["mysql"]["engine_port"], "alice", "al'ice \"pw", "SELECT DATABASE()", "shop") == "shop",
              "alice cannot reach her database")
        check(psql(rows["postgresql"]["engine_port"], "bob", "b'ob pw", "shop", "SELECT current_user") == "bob",
              "bob cannot reach his database")
        check(redis_cli(rows["redis"]["engine_port"], "app", "app pw", "SET", "app:k", "v") == "OK",
              "the redis user cannot write its keys")
        for ds, i in ids.items():
            d.must_task("instance.delete", i)
            check_gone(d, i)


def test_restart_resize_flavor_and_volume_one_action_at_a_time():
    with harness.Env(prefix="inst-actions-") as env:
        d = Driver(env)
        d.start()
        i = d.create("mysql", "db-actions", databases=[{"name": "shop"}],
                     users=[{"name": "alice", "password": "pw1", "databases": ["shop"]}])
        port = d.show(i)["result"]["engine_port"]
        mariadb(port, "alice", "pw1", "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')", "shop")
        check(mariadb(port, "alice", "pw1", "SELECT @@innodb_buffer_pool_size") == str(128 * 1024 * 1024),
              "the small flavor's buffer pool is not in effect")

        # One action at a time: a second one is refused at once, not queued.
        first = d.submit("instance.restart", i)
        second = d.call("instance.restart", i)
        check(second["status"] == "failed_precondition" and "one action at a time" in second["message"],
              f"a second action: {second}")
        check(d.reply(first)["status"] == "ok" and d.done(first)["ok"], "the restart failed")
        check(d.show(i)["result"]["status"] == "ACTIVE", "not ACTIVE after the restart")

        d.must_task("instance.resize_flavor", i, {"flavor": "big"})
        row = d.show(i)["result"]
        check(row["flavor"] == "big" and row["status"] == "ACTIVE", f"after resize flavor: {row}")
        check(mariadb(port, "alice", "pw1", "SELECT @@innodb_buffer_pool_size") == str(256 * 1024 * 1024),
              "the big flavor's buffer pool is not in effect")

        before = d.call("dump")["result"]["dump"]
        for bad in ({"size": 1}, {"size": 0}, {}):
            r = d.call("instance.resize_volume", i, bad)
            check(r["status"] == "invalid_argument", f"resize_volume {bad}: {r}")
        r = d.call("instance.resize_flavor", i, {"flavor": "nope"})
        check(r["status"] == "not_found", f"an unknown flavor: {r}")
        check(d.call("dump")["result"]["dump"] == before, "a refused request changed the registry")

        vol = os.path.join(instance_dir(d, i), "vol")
        d.must_task("instance.resize_volume", i, {"size": 2})
        row = d.show(i)["result"]
        check(row["volume_size"] == 2 and row["status"] == "ACTIVE", f"after resize volume: {row}")
        check(fs_size(vol) > 1.8 * GIB, "df did not grow")
        check(mariadb(port, "alice", "pw1", "SELECT v FROM t", "shop") == "kept", "data lost in the resize")
        d.must_task("instance.delete", i)
        check_gone(d, i)


def test_control_plane_killed_adopts_its_instances():
    with harness.Env(prefix="inst-adopt-") as env:
        d = Driver(env)
        d.start()
        running = d.create("redis", "db-running", users=[{"name": "app", "password": "pw", "databases": ["k:*"]}])
        dead = d.create("redis", "db-dead")
        kept_pid, dead_pid = agent_pid(d, running), agent_pid(d, dead)
        port = d.show(running)["result"]["engine_port"]
        redis_cli(port, "app", "pw", "SET", "k:1", "v")
        d.kill()
        os.kill(dead_pid, signal.SIGKILL)   # an agent that died while the control plane was down

        d2 = Driver(env, port=d.port)
        d2.start()
        check(d2.show(running)["result"]["status"] == "ACTIVE", "the status was lost")
        # The admitted keys came back from the registry: the agents reconnect by themselves.
        d2.must_task("instance.restart", running, timeout=120)
        d2.must_task("instance.restart", dead, timeout=120)
        check(agent_pid(d2, running) == kept_pid and pid_alive(kept_pid), "a running agent was replaced")
        check(agent_pid(d2, dead) != dead_pid and pid_alive(agent_pid(d2, dead)), "the dead agent was not restarted")
        check(redis_cli(port, "app", "pw", "GET", "k:1") == "v", "data lost across the restarts")
        for i in (running, dead):
            d2.must_task("instance.delete", i)
            check_gone(d2, i)


def wait_task_finished(driver, task, timeout=180):
    def finished():
        r = driver.reply(driver.submit_raw({"op": "task", "id": task}))
        return r["result"] if r["status"] == "ok" and r["result"]["state"] != "running" else None
    return harness.wait_for(finished, timeout, f"task {task} to finish", interval=0.2)


def test_control_plane_killed_mid_task_resumes_or_fails_with_a_reason():
    with harness.Env(prefix="inst-resume-") as env:
        d = Driver(env)
        d.start()
        i = d.create("redis", "db-grow")
        vol = os.path.join(instance_dir(d, i), "vol")
        r = d.call("instance.resize_volume", i, {"size": 2})
        check(r["status"] == "ok", f"resize: {r}")
        d.kill()                          # somewhere between stop, growth and start
        d2 = Driver(env, port=d.port)
        d2.start()
        task = wait_task_finished(d2, r["result"]["task"])
        row = d2.show(i)["result"]
        check(task["state"] == "completed", f"the resumed resize: {task}")
        check(row["status"] == "ACTIVE" and row["task"] == "" and row["volume_size"] == 2, f"after resume: {row}")
        check(fs_size(vol) > 1.8 * GIB, "the volume did not grow")

        r = d2.submit_raw({"op": "instance.create", "tenant": "tenant-a",
                           "args": {"name": "db-cut", "flavor": "small", "volume_size": 1, "datastore": "mysql",
                                    "datastore_version": d2.versions["mysql"]["id"],
                                    "users": [{"name": "u", "password": "secret-pw"}]}})
        r = d2.reply(r)
        check(r["status"] == "ok", f"create: {r}")
        cut = r["result"]["instance_id"]
        d2.kill()                         # somewhere in provisioning or prepare
        d3 = Driver(env, port=d.port)
        d3.start()
        task = wait_task_finished(d3, r["result"]["task"])
        row = d3.show(cut)["result"]
        check(row["task"] == "", f"the instance is still held by a task: {row}")
        if task["state"] == "completed":
            check(row["status"] == "ACTIVE", f"a completed create left {row}")
        else:
            check(row["status"] == "ERROR" and "restart" in row["status_reason"], f"a failed create left {row}")
        with open(os.path.join(d3.state_dir, "registry.db"), "rb") as f:
            check(b"secret-pw" not in f.read(), "a user's password was stored in the registry")
        d3.must_task("instance.force_delete", cut)
        check_gone(d3, cut)
        d3.must_task("instance.delete", i)


def test_force_delete_works_when_the_agent_is_gone():
    with harness.Env(prefix="inst-force-") as env:
        d = Driver(env)
        d.start()
        i = d.create("mysql", "db-force")
        pid = agent_pid(d, i)
        os.kill(pid, signal.SIGKILL)
        harness.wait_for(lambda: not pid_alive(pid), 10, "the agent to die")
        d.must_task("instance.force_delete", i)
        check_gone(d, i)


def test_bad_creates_change_nothing():
    with harness.Env(prefix="inst-bad-") as env:
        d = Driver(env)
        d.start()
        good = {"name": "x", "flavor": "small", "volume_size": 1, "datastore": "redis",
                "datastore_version": d.versions["redis"]["id"]}
        before = d.call("dump")["result"]["dump"]
        cases = [
            (dict(good, flavor="nope"), "tenant-a", "not_found"),
            (dict(good, datastore_version="nope"), "tenant-a", "not_found"),
            (dict(good, datastore="mysql"), "tenant-a", "invalid_argument"),
            (dict(good, volume_size=0), "tenant-a", "invalid_argument"),
            (dict(good, volume_size=10 ** 9), "tenant-a", "invalid_argument"),
            (dict(good, users="alice"), "tenant-a", "invalid_argument"),
            ({k: v for k, v in good.items() if k != "name"}, "tenant-a", "invalid_argument"),
            (good, None, "invalid_argument"),
        ]
        for args, tenant, code in cases:
            r = d.call("instance.create", args=args, tenant=tenant)
            check(r["status"] == code and r["message"], f"create {args} as {tenant}: {r}")
        for op in ("instance.delete", "instance.restart", "instance.force_delete"):
            r = d.call(op, "no-such-instance")
            check(r["status"] == "not_found", f"{op} of an unknown instance: {r}")
        check(d.call("dump")["result"]["dump"] == before, "a refused request changed the registry")
        check([n for n in os.listdir(d.instances_dir) if not n.startswith(".")] == [], "a refused create left files")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: the provisioner mounts volumes and needs root")
        sys.exit(77)
    harness.run_tests(dict(globals()))
