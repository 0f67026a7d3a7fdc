"""The local provisioner (control/provision.h) on real engines: MariaDB, PostgreSQL
and Redis instances, each on its own loop-mounted ext4 volume, with a detached
trove-agent. The provisioner is driven through provision_tool (a test program
linking the module, argv[1]); the engine is prepared, stopped and started
through the instance's own agent (`trove-agent -c CONF call ...`), exactly the
operations the control plane sends it.

Checked from the outside: /proc/self/mountinfo, statvfs, file modes, /proc/<pid>,
losetup, and the stock mariadb, psql and redis-cli clients. Runs as root. Every
instance a test makes is force-deleted when the test ends, pass or fail.
"""
import json
import os
import pwd
import signal
import stat
import subprocess
import sys
import time

import harness
from harness import check

TOOL = sys.argv[1] if len(sys.argv) > 1 else harness.build_path("tests", "control", "provision_tool")
GIB = 1024 ** 3
PG_BIN = os.environ.get("TROVE_PG_BINDIR", "/usr/lib/postgresql/15/bin")


class Provisioner:
    """One instances_dir inside a test's Env; every instance is force-deleted at exit."""

    def __init__(self, env, volume=None, plugin_dir=None, extra_env=None):
        self.env = env
        self.instances_dir = os.path.join(env.dir, "instances")
        self.volume = volume
        self.plugin_dir = plugin_dir or harness.build_path("plugins")
        self.extra_env = extra_env or {}
        key_name = os.path.join(env.dir, "control")
        if not os.path.exists(key_name + ".pub"):
            self.run("keygen", key_name, base=False)
        with open(key_name + ".pub") as f:
            self.server_key = f.read().strip()
        # An endpoint nobody listens on: the agent keeps reconnecting, which
        # is all these tests need from the link.
        self.endpoint = f"tcp://127.0.0.1:{harness.free_port()}"
        env.callback(self.cleanup)

    def argv(self, *args, base=True):
        argv = [TOOL]
        if base:
            argv += ["--instances-dir", self.instances_dir, "--agent-binary", harness.agent_binary(),
                     "--plugin-dir", self.plugin_dir]
            if self.volume:
                argv += ["--volume", self.volume]
        return argv + [str(a) for a in args]

    def run(self, *args, base=True):
        environ = dict(os.environ)
        environ.update(self.extra_env)
        cp = subprocess.run(self.argv(*args, base=base), capture_output=True, text=True, timeout=600, env=environ,
                            stdin=subprocess.DEVNULL)
        try:
            doc = json.loads(cp.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"provision_tool {args}: exit {cp.returncode}, no JSON: {cp.stdout!r} {cp.stderr!r}")
        doc["stderr"] = cp.stderr
        return doc

    def must(self, *args):
        doc = self.run(*args)
        if not doc["ok"]:
            raise AssertionError(f"provision_tool {' '.join(map(str, args))}: {doc['code']}: {doc['message']}")
        return doc["result"]

    def create(self, instance_id, plugin, ram_mb=256, volume_gb=1, **extra):
        args = ["create", instance_id, plugin, "--ram-mb", ram_mb, "--volume-gb", volume_gb,
                "--endpoint", self.endpoint, "--server-key", self.server_key, "--heartbeat-ms", 1000]
        if plugin == "postgres":
            args += ["--bindir", PG_BIN, "--datastore", "postgresql"]
        for k, v in extra.items():
            args += ["--" + k.replace("_", "-"), v]
        return self.must(*args)

    def cleanup(self):
        if not os.path.isdir(self.instances_dir):
            return
        doc = self.run("list")
        for instance_id in doc.get("result", {}).get("instances", []):
            r = self.run("force-destroy", instance_id)
            if not r["ok"]:
                print(f"cleanup of {instance_id}: {r['message']}", file=sys.stderr)
        # Last resort, so the Env never removes files through a mount point.
        for mount_point in mounts_under(self.instances_dir):
            subprocess.run(["umount", "-l", mount_point], capture_output=True)


def agent_call(inst, op, args=None, timeout=600):
    argv = [harness.agent_binary(), "-c", inst["agent_config"], "call", op]
    if args is not None:
        argv.append(json.dumps(args))
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(cp.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"trove-agent call {op}: exit {cp.returncode}: {cp.stdout!r} {cp.stderr[-2000:]}")
    if not doc.get("ok"):
        raise AssertionError(f"trove-agent call {op}: {doc.get('error')}\n{cp.stderr[-2000:]}")
    return doc.get("result") or {}


def mounts_under(path):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path or fields[4].startswith(path + "/"):
                found.append(fields[4])
    return found


def mount_fstype(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                return fields[fields.index("-") + 1]
    return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def fs_size(path):
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def loop_devices_for(path):
    cp = subprocess.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"], capture_output=True,
                        text=True)
    return [line for line in cp.stdout.splitlines() if path in line]


def secret(inst, key):
    with open(os.path.join(inst["dir"], "secrets.conf")) as f:
        for line in f:
            if line.startswith(key + " = "):
                return json.loads(line.split(" = ", 1)[1])
    raise AssertionError(f"{key} not in the secrets file")


def check_created(inst, plugin, gb):
    """What create promises: a mounted ext4 volume of the size asked, a live
    agent with this instance's configuration, 0600 secrets and key, the key's
    public half reported."""
    d = inst["dir"]
    check(inst["volume_kind"] == "loop", f"volume kind {inst['volume_kind']}")
    check(mount_fstype(inst["volume_path"]) == "ext4", f"{inst['volume_path']} is not an ext4 mount")
    size = fs_size(inst["volume_path"])
    check(0.9 * gb * GIB < size <= gb * GIB, f"a {gb} GB volume has a {size}-byte filesystem")
    check(os.path.getsize(inst["volume_image"]) == gb * GIB, "the image is not the size asked")
    check(os.stat(inst["volume_image"]).st_blocks * 512 < 0.2 * gb * GIB, "the image is not sparse")
    check(alive(inst["agent_pid"]), "the agent does not run")
    with open(f"/proc/{inst['agent_pid']}/cmdline") as f:
        cmdline = f.read().split("\0")
    check(inst["agent_config"] in cmdline, f"agent command line {cmdline}")
    check(os.getsid(inst["agent_pid"]) != os.getsid(0), "the agent runs in the test's session (not detached)")
    for name in ("secrets.conf", "agent.key", "agent.conf", "instance.conf"):
        check(mode(os.path.join(d, name)) == 0o600, f"{name} is mode {oct(mode(os.path.join(d, name)))}")
    with open(os.path.join(d, "agent.pub")) as f:
        check(f.read().strip() == inst["agent_public_key"], "the reported public key is not the agent's")
    with open(inst["agent_config"]) as f:
        conf = f.read()
    password_key = "admin_password" if plugin == "mysql" else "password"
    check(len(secret(inst, password_key)) == 32, "no generated admin password in the secrets file")
    check(secret(inst, password_key) not in conf, "the admin password is in the agent configuration")
    check(f'port = "{inst["port"]}"' in conf, "the engine port is not in the agent configuration")
    check(not harness.tcp_open("127.0.0.1", inst["port"]), "something already listens on the engine's port")


def check_gone(prov, inst, engine_pid=None):
    """Nothing of the instance is left: no mount, no loop device, no process, no file."""
    if os.path.exists(inst["dir"]):
        raise AssertionError(f"{inst['dir']} still exists: {os.listdir(inst['dir'])}")
    check(mounts_under(inst["dir"]) == [], f"still mounted: {mounts_under(inst['dir'])}")
    check(loop_devices_for(inst["dir"]) == [], f"loop devices left: {loop_devices_for(inst['dir'])}")
    check(not alive(inst["agent_pid"]), "the agent still runs")
    if engine_pid:
        check(not alive(engine_pid), "the engine still runs")
    check(inst["id"] not in prov.must("list")["instances"], "the instance is still listed")


# ------------------------------------------------------------------ engines' clients

def mariadb(inst, sql, user="os_admin", password=None, database=None):
    password = secret(inst, "admin_password") if password is None else password
    env_dir = os.path.dirname(os.path.dirname(inst["dir"]))
    cnf = harness.secret_file(os.path.join(env_dir, f"client-{time.monotonic_ns()}.cnf"),
                              f'[client]\npassword="{password}"\n')
    argv = ["mariadb", "--defaults-file=" + cnf, "--batch", "--skip-column-names", "--protocol=tcp",
            "--host=127.0.0.1", f"--port={inst['port']}", "--user=" + user, "-e", sql]
    if database:
        argv.append("--database=" + database)
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        os.unlink(cnf)
    if cp.returncode != 0:
        raise AssertionError(f"mariadb: {cp.stderr.strip()}")
    return cp.stdout.strip()


def psql(inst, sql, user="postgres", password=None, database="postgres"):
    env = dict(os.environ, PGPASSWORD=secret(inst, "password") if password is None else password,
               PGSSLMODE="disable", PGGSSENCMODE="disable", PGCONNECT_TIMEOUT="5")
    cp = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                         "-p", str(inst["port"]), "-U", user, "-d", database, "-c", sql],
                        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise AssertionError(f"psql: {cp.stderr.strip()}")
    return cp.stdout.strip()


def redis_cli(inst, *args):
    env = dict(os.environ, REDISCLI_AUTH=secret(inst, "password"))
    cp = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(inst["port"]), "--no-auth-warning"] +
                        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=60,
                        stdin=subprocess.DEVNULL)
    if cp.returncode != 0 or cp.stdout.startswith(("ERR", "NOAUTH", "WRONGPASS")):
        raise AssertionError(f"redis-cli {args}: {cp.stdout} {cp.stderr}")
    return cp.stdout.strip()


# ------------------------------------------------------------------ scenarios

def test_mysql_create_resize_flavor_destroy():
    with harness.Env(prefix="prov-mysql-") as env:
        prov = Provisioner(env)
        inst = prov.create("db-mysql", "mysql", ram_mb=256, volume_gb=1)
        check_created(inst, "mysql", 1)
        check(inst["params"] == {"innodb_buffer_pool_size": str(128 * 1024 * 1024)}, f"params {inst['params']}")

        agent_call(inst, "prepare", {"overrides": inst["params"], "databases": [{"name": "shop"}],
                                     "users": [{"name": "alice", "password": "al'ice pw", "databases": ["shop"]}]})
        inst = prov.must("describe", "db-mysql")
        check(alive(inst["engine_pid"]), "describe does not report the running engine")
        check(mariadb(inst, "SELECT @@datadir") == inst["volume_path"] + "/data/", "the datadir is not on the volume")
        check(mariadb(inst, "SELECT @@innodb_buffer_pool_size") == str(128 * 1024 * 1024),
              "the flavor's buffer pool size is not in effect")
        mariadb(inst, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'kept')",
                user="alice", password="al'ice pw", database="shop")

        # Grow: stopped through the agent, grown offline, started through the agent.
        agent_call(inst, "stop")
        grown = prov.must("resize-volume", "db-mysql", 2)
        check(grown["volume_gb"] == 2 and mount_fstype(inst["volume_path"]) == "ext4", f"after resize: {grown}")
        check(1.8 * GIB < fs_size(inst["volume_path"]) <= 2 * GIB, "df did not grow to 2 GB")
        check(alive(inst["agent_pid"]) and grown["agent_pid"] == inst["agent_pid"], "the agent did not survive")
        agent_call(inst, "start")
        check(mariadb(inst, "SELECT v FROM shop.t WHERE id = 1") == "kept", "data lost in the resize")
        for size in (2, 1):
            r = prov.run("resize-volume", "db-mysql", size)
            check(not r["ok"] and r["code"] == "failed_precondition" and "only grow" in r["message"], f"shrink: {r}")
        check(fs_size(inst["volume_path"]) > 1.8 * GIB, "a refused shrink changed the volume")

        # A new flavor: the parameters the caller applies through the agent, then a restart.
        params = prov.must("apply-flavor", "db-mysql", 512)["params"]
        check(params == {"innodb_buffer_pool_size": str(256 * 1024 * 1024)}, f"flavor params {params}")
        check(prov.must("describe", "db-mysql")["ram_mb"] == 512, "the flavor is not recorded")
        agent_call(inst, "config.apply", {"values": params})
        agent_call(inst, "restart")
        check(mariadb(inst, "SELECT @@innodb_buffer_pool_size") == str(256 * 1024 * 1024),
              "the new flavor's buffer pool size is not in effect")

        engine_pid = prov.must("describe", "db-mysql")["engine_pid"]
        prov.must("destroy", "db-mysql")
        check_gone(prov, inst, engine_pid)
        check(prov.run("destroy", "db-mysql")["code"] == "not_found", "a second destroy did not say not_found")


def test_postgres_runs_as_its_user_and_grows_with_the_engine_running():
    with harness.Env(prefix="prov-pg-") as env:
        prov = Provisioner(env)
        inst = prov.create("db-pg", "postgres", ram_mb=512, volume_gb=1)
        check_created(inst, "postgres", 1)
        check(inst["params"] == {"shared_buffers": str(128 * 128)}, f"params {inst['params']}")   # 128 MB in 8 kB
        agent_call(inst, "prepare", {"overrides": inst["params"], "databases": [{"name": "shop"}],
                                     "users": [{"name": "bob", "password": "b'ob pw", "databases": ["shop"]}]})
        inst = prov.must("describe", "db-pg")
        pg_uid = pwd.getpwnam("postgres").pw_uid
        check(os.stat(os.path.join(inst["volume_path"], "data")).st_uid == pg_uid,
              "the data directory does not belong to postgres")
        with open(f"/proc/{inst['engine_pid']}/status") as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        check(set(uids) == {str(pg_uid)}, f"the postmaster runs as uid {uids}")
        check(psql(inst, "SHOW data_directory") == inst["volume_path"] + "/data", "the datadir is not on the volume")
        check(psql(inst, "SHOW shared_buffers") == "128MB", "the flavor's shared_buffers is not in effect")
        psql(inst, "CREATE SCHEMA app; CREATE TABLE app.t (v text); INSERT INTO app.t VALUES ('kept')", user="bob", password="b'ob pw",
             database="shop")

        # The engine still runs: the provisioner stops it by its pid file.
        old_engine = inst["engine_pid"]
        grown = prov.must("resize-volume", "db-pg", 3)
        check(not alive(old_engine), "the engine was not stopped for the resize")
        check(2.7 * GIB < fs_size(inst["volume_path"]) <= 3 * GIB and grown["volume_gb"] == 3, "df did not grow")
        agent_call(inst, "start")
        check(psql(inst, "SELECT v FROM app.t", user="bob", password="b'ob pw", database="shop") == "kept",
              "data lost in the resize")

        params = prov.must("apply-flavor", "db-pg", 1024)["params"]
        agent_call(inst, "config.apply", {"values": params})
        agent_call(inst, "restart")
        check(psql(inst, "SHOW shared_buffers") == "256MB", "the new flavor's shared_buffers is not in effect")

        engine_pid = prov.must("describe", "db-pg")["engine_pid"]
        prov.must("destroy", "db-pg")
        check_gone(prov, inst, engine_pid)


def test_redis_create_resize_destroy():
    with harness.Env(prefix="prov-redis-") as env:
        prov = Provisioner(env)
        inst = prov.create("db-redis", "redis", ram_mb=128, volume_gb=1)
        check_created(inst, "redis", 1)
        agent_call(inst, "prepare", {"overrides": inst["params"]})
        check(redis_cli(inst, "CONFIG", "GET", "maxmemory").splitlines()[1] == str(64 * 1024 * 1024),
              "the flavor's maxmemory is not in effect")
        check(redis_cli(inst, "CONFIG", "GET", "dir").splitlines()[1] == inst["volume_path"] + "/data",
              "the data directory is not on the volume")
        redis_cli(inst, "SET", "k", "kept")
        agent_call(inst, "stop")          # SHUTDOWN SAVE: the data reaches the volume
        prov.must("resize-volume", "db-redis", 2)
        check(fs_size(inst["volume_path"]) > 1.8 * GIB, "df did not grow")
        agent_call(inst, "start")
        check(redis_cli(inst, "GET", "k") == "kept", "data lost in the resize")

        params = prov.must("apply-flavor", "db-redis", 256)["params"]
        agent_call(inst, "config.apply", {"values": params})
        check(redis_cli(inst, "CONFIG", "GET", "maxmemory").splitlines()[1] == str(128 * 1024 * 1024),
              "the new flavor's maxmemory is not in effect")
        engine_pid = prov.must("describe", "db-redis")["engine_pid"]
        prov.must("destroy", "db-redis")
        check_gone(prov, inst, engine_pid)


def test_force_destroy_after_the_agent_was_killed():
    with harness.Env(prefix="prov-force-") as env:
        prov = Provisioner(env)
        inst = prov.create("db-force", "mysql")
        agent_call(inst, "prepare", {})
        engine_pid = prov.must("describe", "db-force")["engine_pid"]
        os.kill(inst["agent_pid"], signal.SIGKILL)
        harness.wait_for(lambda: not alive(inst["agent_pid"]), 10, "the killed agent to go")
        described = prov.must("describe", "db-force")
        check(described["agent_pid"] == 0 and described["engine_pid"] == engine_pid,
              f"describe after kill -9 of the agent: {described}")
        prov.must("force-destroy", "db-force")
        check_gone(prov, inst, engine_pid)
        check(prov.run("force-destroy", "db-force")["ok"], "force-destroy of a removed instance is not ok")


def test_adopt_keeps_a_running_agent_and_restarts_a_dead_one():
    with harness.Env(prefix="prov-adopt-") as env:
        prov = Provisioner(env)
        inst = prov.create("db-adopt", "redis")
        agent_call(inst, "prepare", {})
        again = prov.must("adopt", "db-adopt")
        check(again["agent_pid"] == inst["agent_pid"], "adopt replaced a running agent")

        os.kill(inst["agent_pid"], signal.SIGKILL)
        harness.wait_for(lambda: not alive(inst["agent_pid"]), 10, "the killed agent to go")
        again = prov.must("adopt", "db-adopt")
        check(again["agent_pid"] not in (0, inst["agent_pid"]) and alive(again["agent_pid"]),
              "adopt did not start the agent again")
        check(again["engine_pid"] and alive(again["engine_pid"]), "the engine did not keep running")

        # As after a host reboot: nothing runs and the volume is not mounted.
        agent_call(again, "stop")
        prov.must("stop", "db-adopt")
        check(not alive(again["agent_pid"]), "stop left the agent running")
        subprocess.run(["umount", inst["volume_path"]], check=True)
        back = prov.must("adopt", "db-adopt")
        check(back["volume_mounted"] and mount_fstype(inst["volume_path"]) == "ext4", "adopt did not mount the volume")
        check(alive(back["agent_pid"]), "adopt did not start the agent")
        agent_call(back, "start")
        check(redis_cli(back, "PING") == "PONG", "the engine did not start on the remounted volume")


def test_create_without_starting_the_agent_then_start():
    """The control plane admits the agent's key before the agent first connects."""
    with harness.Env(prefix="prov-nostart-") as env:
        prov = Provisioner(env)
        inst = prov.run("create", "db-later", "redis", "--ram-mb", 128, "--volume-gb", 1, "--endpoint", prov.endpoint,
                        "--server-key", prov.server_key, "--no-start")
        check(inst["ok"], f"create --no-start: {inst}")
        inst = inst["result"]
        check(inst["agent_pid"] == 0 and len(inst["agent_public_key"]) == 40, f"after create: {inst}")
        check(not os.path.exists(os.path.join(inst["dir"], "agent.pid")), "an agent pid file without an agent")
        check(mount_fstype(inst["volume_path"]) == "ext4", "the volume is not mounted")
        started = prov.must("start", "db-later")
        check(alive(started["agent_pid"]), "start did not start the agent")
        again = prov.must("start", "db-later")
        check(again["agent_pid"] == started["agent_pid"], "a second start replaced the running agent")
        prov.must("destroy", "db-later")
        check_gone(prov, started)


def test_directory_volume_without_loop_devices():
    with harness.Env(prefix="prov-dir-") as env:
        prov = Provisioner(env, extra_env={"TROVE_PROVISION_VOLUME": "directory"})
        inst = prov.create("db-dir", "redis", volume_gb=1)
        check(inst["volume_kind"] == "directory" and inst["volume_image"] == "", f"kind: {inst}")
        check(mounts_under(inst["dir"]) == [], "a directory volume was mounted")
        check(not os.path.exists(os.path.join(inst["dir"], "volume.img")), "an image was made")
        agent_call(inst, "prepare", {})
        redis_cli(inst, "SET", "k", "v")
        grown = prov.must("resize-volume", "db-dir", 2)
        check(grown["volume_gb"] == 2 and grown["volume_kind"] == "directory", f"resize: {grown}")
        check(prov.run("resize-volume", "db-dir", 1)["code"] == "failed_precondition", "a shrink was accepted")
        engine_pid = prov.must("describe", "db-dir")["engine_pid"]
        prov.must("destroy", "db-dir")
        check_gone(prov, inst, engine_pid)

        # The option does the same as the environment.
        prov2 = Provisioner(env, volume="directory")
        check(prov2.create("db-dir2", "mysql")["volume_kind"] == "directory", "--volume directory ignored")
        prov2.must("destroy", "db-dir2")


def test_bad_requests_change_nothing():
    with harness.Env(prefix="prov-bad-") as env:
        prov = Provisioner(env)
        good = ["--ram-mb", 256, "--volume-gb", 1, "--endpoint", prov.endpoint, "--server-key", prov.server_key]
        cases = [
            (["create", "../etc", "redis"] + good, "invalid_argument"),
            (["create", "a'b", "redis"] + good, "invalid_argument"),
            (["create", "x" * 65, "redis"] + good, "invalid_argument"),
            (["create", "ok1", "mongodb"] + good, "invalid_argument"),
            (["create", "ok1", "redis", "--ram-mb", 256, "--volume-gb", 0, "--endpoint", prov.endpoint,
              "--server-key", prov.server_key], "invalid_argument"),
            (["create", "ok1", "redis", "--ram-mb", 10, "--volume-gb", 1, "--endpoint", prov.endpoint,
              "--server-key", prov.server_key], "invalid_argument"),
            (["create", "ok1", "redis", "--ram-mb", 256, "--volume-gb", 1, "--endpoint", prov.endpoint,
              "--server-key", "not-a-key"], "invalid_argument"),
            (["create", "ok1", "redis", "--ram-mb", 256, "--volume-gb", 1, "--endpoint", "tcp://10.1.2.3:5555",
              "--plaintext"], "invalid_argument"),
            (["create", "ok1", "redis", "--binary", "/usr/bin/redis-server; rm -rf /"] + good, "invalid_argument"),
            (["resize-volume", "nope", 5], "not_found"),
            (["describe", "nope"], "not_found"),
            (["apply-flavor", "nope", 512], "not_found"),
        ]
        for args, code in cases:
            r = prov.run(*args)
            check(not r["ok"] and r["code"] == code and r["message"], f"{args[:3]}: {r}")
        check(sorted(os.listdir(prov.instances_dir)) == [], f"left behind: {os.listdir(prov.instances_dir)}")

        inst = prov.create("dup", "redis")
        r = prov.run("create", "dup", "redis", *good)
        check(r["code"] == "already_exists", f"a second create: {r}")
        check(prov.must("describe", "dup")["agent_pid"] == inst["agent_pid"], "a refused create touched the first")


def test_failed_create_leaves_nothing():
    with harness.Env(prefix="prov-fail-") as env:
        empty = env.mkdir("no-plugins")
        prov = Provisioner(env, plugin_dir=empty)
        r = prov.run("create", "db-fail", "mysql", "--ram-mb", 256, "--volume-gb", 1, "--endpoint", prov.endpoint,
                     "--server-key", prov.server_key)
        check(not r["ok"] and "trove-agent exited" in r["message"] and "mysql.so" in r["message"],
              f"create with an agent that cannot start: {r}")
        path = os.path.join(prov.instances_dir, "db-fail")
        check(not os.path.exists(path), "a failed create left its directory")
        check(mounts_under(prov.instances_dir) == [] and loop_devices_for(path) == [], "a failed create left a mount")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: the provisioner mounts volumes and needs root")
        sys.exit(77)
    harness.run_tests(dict(globals()))
