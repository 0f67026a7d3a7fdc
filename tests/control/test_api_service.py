#!/usr/bin/python3
"""The service end to end with the stock client: trove-control (local
provisioner, tokens) driven by the unchanged `openstack database` client,
making real MySQL, PostgreSQL and Redis instances on this host: datastore
and flavor lists, create with databases and users, list and show until
ACTIVE, databases, users, grants, root, restart, resize flavor (the engine's
memory setting changes), resize volume (the volume grows, data intact) and
delete. A second tenant's token lists nothing of the first's and gets 404 for
its ids. Engines are checked with the stock mariadb, psql and redis-cli.
Runs as root (loop devices, and PostgreSQL runs as its own user).
"""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import harness
from controlplane import keygen
from harness import check

OPENSTACK = "/usr/bin/openstack"
TOKEN_T1 = "tenant-one-token-0123456789"
TOKEN_T2 = "tenant-two-token-0123456789"
TOKEN_OPS = "operator-token-0123456789"
MIB = 1024 * 1024


class Service:
    def __init__(self, env):
        self.env = env
        self.state = env.mkdir("state", mode=0o700)
        self.instances = env.mkdir("instances", mode=0o711)
        keygen(os.path.join(self.state, "server"))
        tokens = harness.secret_file(env.path("tokens"), f"{TOKEN_T1} t1\n{TOKEN_T2} t2\n{TOKEN_OPS} ops admin\n")
        self.port = harness.free_port()
        config = harness.write_ini(env.path("control.conf"), {
            "control": {"agent_endpoint": f"tcp://127.0.0.1:{harness.free_port()}", "state_dir": self.state,
                        "server_key_file": os.path.join(self.state, "server.key"), "log_level": "info",
                        "api_listen": f"127.0.0.1:{self.port}", "api_token_file": tokens},
            "provision": {"instances_dir": self.instances},
        })
        self.proc = env.spawn([harness.control_binary(), "-c", config], "trove-control")
        env.callback(self.cleanup)
        harness.wait_for(lambda: self.api("GET", "/flavors")[0] == 200, 30, "the REST API")

    def cleanup(self):
        """Whatever a test left: delete its instances through the API, then unmount what remains."""
        for tenant, token in (("t1", TOKEN_T1), ("t2", TOKEN_T2)):
            code, body = self.api("GET", "/instances", tenant=tenant, token=token)
            for inst in (body or {}).get("instances", []) if code == 200 else []:
                self.api("POST", f"/instances/{inst['id']}/action", {"reset_status": {}}, tenant, token)
                self.api("DELETE", f"/instances/{inst['id']}", tenant=tenant, token=token)
        harness.wait_for(lambda: not [d for d in os.listdir(self.instances) if not d.startswith(".")], 120,
                         "instances removed", interval=0.5) if self.proc.alive() else None
        self.proc.stop()
        with open("/proc/self/mountinfo") as f:
            for line in f:
                if line.split()[4].startswith(self.instances + "/"):
                    subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)

    def api(self, method, path, body=None, tenant="t1", token=TOKEN_T1):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1.0/{tenant}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("X-Auth-Token", token)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None
        except OSError:
            return 0, None

    def openstack(self, *args, tenant="t1", token=TOKEN_T1):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["HOME"] = self.env.dir
        argv = [OPENSTACK, "--os-auth-type", "admin_token", "--os-token", token, "--os-endpoint",
                f"http://127.0.0.1:{self.port}/v1.0/{tenant}"] + [str(a) for a in args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)

    def must(self, *args, **kw):
        cp = self.openstack(*args, **kw)
        check(cp.returncode == 0, f"openstack {' '.join(map(str, args))}: exit {cp.returncode}: {cp.stderr}")
        return json.loads(cp.stdout) if "-f" in args else cp.stdout

    def show(self, name_or_id):
        return self.must("database", "instance", "show", name_or_id, "-f", "json")

    def wait_settled(self, instance_id, timeout=300):
        """Until no task runs on the instance; its last task must have completed and it must be ACTIVE."""
        last_task = None

        def settled():
            nonlocal last_task
            code, body = self.api("GET", f"/instances/{instance_id}")
            check(code == 200, f"instance {instance_id}: HTTP {code} {body}")
            inst = body["instance"]
            if inst.get("task"):
                last_task = inst["task"]["id"]
                return None
            return inst if inst["status"] not in ("BUILD", "NEW") else None

        inst = harness.wait_for(settled, timeout, f"instance {instance_id} to settle", interval=0.5)
        if last_task:
            _, t = self.api("GET", f"/tasks/{last_task}")
            check(t["task"]["state"] == "COMPLETED", f"task {t['task']['kind']} failed: {t['task']['error']}")
        check(inst["status"] in ("ACTIVE", "HEALTHY"), f"instance {instance_id} is {inst['status']}: "
              f"{inst.get('fault', {}).get('message', '')}")
        return inst

    def volume_bytes(self, instance_id):
        st = os.statvfs(os.path.join(self.instances, instance_id, "vol"))
        return st.f_blocks * st.f_frsize

    def create(self, name, datastore, *extra):
        created = self.must("database", "instance", "create", name, "--flavor", "m1.tiny", "--size", "1",
                            "--datastore", datastore, *extra, "-f", "json")
        check(created["status"] == "BUILD" and created["name"] == name, f"create answers BUILD: {created}")
        names = [r["Name"] for r in self.must("database", "instance", "list", "-f", "json")]
        check(name in names, f"a new instance is listed: {names}")
        return self.wait_settled(created["id"])


def mariadb(port, user, password, sql, database=None):
    cnf = harness.secret_file(f"/tmp/trove-api-client-{os.getpid()}-{time.monotonic_ns()}.cnf",
                              f'[client]\npassword="{password}"\n')
    argv = ["mariadb", "--defaults-file=" + cnf, "--batch", "--skip-column-names", "--protocol=tcp",
            "--host=127.0.0.1", f"--port={port}", "--user=" + user, "-e", sql] + (["-D", database] if database else [])
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        os.unlink(cnf)
    return cp.stdout.strip() if cp.returncode == 0 else None


def psql(port, user, password, database, sql):
    env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="disable", PGGSSENCMODE="disable", PGCONNECT_TIMEOUT="5")
    cp = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                         "-U", user, "-d", database, "-c", sql], capture_output=True, text=True, env=env, timeout=60,
                        stdin=subprocess.DEVNULL)
    return cp.stdout.strip() if cp.returncode == 0 else None


def redis_cli(port, user, password, *args):
    cp = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--no-auth-warning", "--user", user] +
                        [str(a) for a in args], capture_output=True, text=True, env=dict(os.environ, REDISCLI_AUTH=password),
                        timeout=60, stdin=subprocess.DEVNULL)
    return cp.stdout.strip()


def lifecycle(svc, inst, memory_probe, data_probe):
    """restart, resize flavor (memory_probe() before and after), resize volume (data_probe() intact), delete."""
    iid = inst["id"]
    svc.must("database", "instance", "restart", inst["name"])
    svc.wait_settled(iid)
    check(data_probe(), "the data is there after a restart")

    before = memory_probe()
    svc.must("database", "instance", "resize", "flavor", inst["name"], "m1.small")
    shown = svc.wait_settled(iid)
    after = memory_probe()
    check(shown["flavor"]["id"] == "2", f"the flavor is m1.small: {shown['flavor']}")
    check(after != before and after is not None, f"the memory setting changed with the flavor: {before} -> {after}")

    size_before = svc.volume_bytes(iid)
    svc.must("database", "instance", "resize", "volume", inst["name"], "2")
    shown = svc.wait_settled(iid)
    check(shown["volume"]["size"] == 2, f"volume size shown: {shown['volume']}")
    grown = svc.volume_bytes(iid)
    check(grown > size_before * 1.5, f"the volume grew: {size_before} -> {grown} bytes")
    check(data_probe(), "the data is intact after growing the volume")

    svc.must("database", "instance", "delete", inst["name"])
    harness.wait_for(lambda: svc.api("GET", f"/instances/{iid}")[0] == 404, 120, "the instance to go", interval=0.5)
    check(not os.path.exists(os.path.join(svc.instances, iid)), "the instance's directory is gone")


def check_isolation(svc, iid):
    rows = svc.must("database", "instance", "list", "-f", "json", tenant="t2", token=TOKEN_T2)
    check(rows == [], f"the second tenant lists nothing: {rows}")
    for path in (f"/instances/{iid}", f"/instances/{iid}/users", f"/instances/{iid}/databases", f"/instances/{iid}/root"):
        code, _ = svc.api("GET", path, tenant="t2", token=TOKEN_T2)
        check(code == 404, f"the second tenant gets 404 for {path}, not {code}")
    cp = svc.openstack("database", "instance", "show", iid, tenant="t2", token=TOKEN_T2)
    check(cp.returncode != 0 and "No instance" in cp.stderr, f"show as t2: {cp.stderr}")


def test_mysql():
    with harness.Env() as env:
        svc = Service(env)
        check("mysql" in [d["Name"] for d in svc.must("datastore", "list", "-f", "json")], "mysql is offered")
        check("m1.tiny" in [f["Name"] for f in svc.must("database", "flavor", "list", "-f", "json")], "flavors")
        inst = svc.create("shop-db", "mysql", "--datastore-version", "10.11", "--databases", "shop",
                          "--users", "alice:al1ce pw")
        port, iid = inst["port"], inst["id"]
        check(mariadb(port, "alice", "al1ce pw", "SELECT DATABASE()", "shop") == "shop", "alice reaches shop")
        mariadb(port, "alice", "al1ce pw", "CREATE TABLE t (v INT); INSERT INTO t VALUES (42)", "shop")
        check_isolation(svc, iid)

        svc.must("database", "db", "create", "shop-db", "blog")
        check({"shop", "blog"} <= {r["Name"] for r in svc.must("database", "db", "list", "shop-db", "-f", "json")},
              "db list")
        svc.must("database", "user", "create", "shop-db", "bob", "b0b pw", "--databases", "shop")
        users = {u["Name"]: u for u in svc.must("database", "user", "list", "shop-db", "-f", "json")}
        check({"alice", "bob"} <= set(users), f"user list: {users}")
        check(svc.must("database", "user", "show", "shop-db", "bob", "-f", "json")["name"] == "bob", "user show")
        svc.must("database", "user", "grant", "access", "shop-db", "bob", "blog")
        check(mariadb(port, "bob", "b0b pw", "SELECT 1", "blog") == "1", "grant: bob reaches blog")
        svc.must("database", "user", "revoke", "access", "shop-db", "bob", "blog")
        check(mariadb(port, "bob", "b0b pw", "SELECT 1", "blog") is None, "revoke: bob no longer reaches blog")
        svc.must("database", "user", "delete", "shop-db", "bob")
        check(mariadb(port, "bob", "b0b pw", "SELECT 1") is None, "a deleted user cannot log in")
        svc.must("database", "db", "delete", "shop-db", "blog")
        check("blog" not in {r["Name"] for r in svc.must("database", "db", "list", "shop-db", "-f", "json")}, "db delete")
        root = svc.must("database", "root", "enable", "shop-db", "-f", "json")
        check(svc.must("database", "root", "show", "shop-db", "-f", "json")["is_root_enabled"] is True, "root show")

        def memory():
            return mariadb(port, root["name"], root["password"], "SELECT @@innodb_buffer_pool_size")

        lifecycle(svc, inst, memory, lambda: mariadb(port, "alice", "al1ce pw", "SELECT v FROM t", "shop") == "42")


def test_postgresql():
    with harness.Env() as env:
        svc = Service(env)
        inst = svc.create("pg1", "postgresql", "--databases", "shop", "--users", "carol:car0l pw")
        port = inst["port"]
        check(psql(port, "carol", "car0l pw", "shop", "SELECT current_user") == "carol", "carol logs in")
        check_isolation(svc, inst["id"])
        svc.must("database", "db", "create", "pg1", "blog")
        check("blog" in {r["Name"] for r in svc.must("database", "db", "list", "pg1", "-f", "json")}, "db list")
        svc.must("database", "user", "create", "pg1", "dave", "d4ve pw", "--databases", "blog")
        check("dave" in {u["Name"] for u in svc.must("database", "user", "list", "pg1", "-f", "json")}, "user list")
        access = {r["Name"] for r in svc.must("database", "user", "show", "access", "pg1", "dave", "-f", "json")}
        check("blog" in access, f"show access: {access}")
        svc.must("database", "user", "delete", "pg1", "dave")
        svc.must("database", "db", "delete", "pg1", "blog")
        root = svc.must("database", "root", "enable", "pg1", "-f", "json")
        check(svc.must("database", "root", "show", "pg1", "-f", "json")["is_root_enabled"] is True, "root show")
        # PostgreSQL 15 lets only the owner create in a database's public schema: the data is root's
        check(psql(port, root["name"], root["password"], "shop", "CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
              is not None, "root writes")

        def memory():
            return psql(port, root["name"], root["password"], "postgres", "SHOW shared_buffers")

        lifecycle(svc, inst, memory, lambda: psql(port, root["name"], root["password"], "shop", "SELECT v FROM t") == "7")


def test_redis():
    with harness.Env() as env:
        svc = Service(env)
        inst = svc.create("cache1", "redis")
        port = inst["port"]
        svc.must("database", "user", "create", "cache1", "erin", "er1n pw")
        check(redis_cli(port, "erin", "er1n pw", "PING") == "PONG", "erin logs in")
        check("erin" in {u["Name"] for u in svc.must("database", "user", "list", "cache1", "-f", "json")}, "user list")
        check(svc.must("database", "user", "show", "cache1", "erin", "-f", "json")["name"] == "erin", "user show")
        cp = svc.openstack("database", "db", "create", "cache1", "x")
        check(cp.returncode != 0, "Redis databases are numbered: create is refused")
        root = svc.must("database", "root", "enable", "cache1", "-f", "json")
        check(svc.must("database", "root", "show", "cache1", "-f", "json")["is_root_enabled"] is True, "root show")
        check(redis_cli(port, root["name"], root["password"], "SET", "k", "v") == "OK", "root writes")
        check_isolation(svc, inst["id"])
        svc.must("database", "user", "delete", "cache1", "erin")

        def memory():
            return redis_cli(port, root["name"], root["password"], "CONFIG", "GET", "maxmemory")

        def data():
            redis_cli(port, root["name"], root["password"], "SAVE")
            return redis_cli(port, root["name"], root["password"], "GET", "k") == "v"

        lifecycle(svc, inst, memory, data)


def test_trovectl_waits_with_progress():
    with harness.Env() as env:
        svc = Service(env)
        tok = harness.secret_file(env.path("t1.token"), TOKEN_T1 + "\n")

        def trovectl(*args, stdin=None):
            e = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}
            e.update({"TROVE_URL": f"http://127.0.0.1:{svc.port}", "TROVE_TENANT": "t1"})
            return subprocess.run([harness.trovectl_binary(), "--token-file", tok] + list(args), capture_output=True,
                                  text=True, env=e, input=stdin, timeout=600)

        cp = trovectl("create", "kv", "m1.tiny", "--size", "1", "--datastore", "redis", "--user", "fred", "--wait",
                      stdin="fr3d pw\n")
        check(cp.returncode == 0 and "ACTIVE" in cp.stdout, f"create --wait: {cp.stdout} {cp.stderr}")
        check("trovectl: create: BUILD" in cp.stderr, f"progress on stderr: {cp.stderr}")
        inst = svc.show("kv")
        check(redis_cli(inst["port"], "fred", "fr3d pw", "PING") == "PONG", "the user from stdin logs in")
        cp = trovectl("resize-volume", "kv", "2", "--wait")
        check(cp.returncode == 0 and svc.show("kv")["volume"] == 2, f"resize-volume --wait: {cp.stderr}")
        cp = trovectl("delete", "kv", "--wait")
        check(cp.returncode == 0 and "deleted" in cp.stderr, f"delete --wait: {cp.stderr}")
        check(svc.api("GET", f"/instances/{inst['id']}")[0] == 404, "gone after delete --wait")

        # a create that fails: an operator adds a version whose engine binary does not exist
        ops = harness.secret_file(env.path("ops.token"), TOKEN_OPS + "\n")
        e = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}
        e.update({"TROVE_URL": f"http://127.0.0.1:{svc.port}", "TROVE_TENANT": "ops"})
        cp = subprocess.run([harness.trovectl_binary(), "--token-file", ops, "datastore-version-create", "redis",
                             "9.9", "redis", "--engine-binary", "/nonexistent/redis-server"], capture_output=True,
                            text=True, env=e, timeout=60)
        check(cp.returncode == 0, f"datastore-version-create as the operator: {cp.stderr}")
        cp = trovectl("create", "broken", "m1.tiny", "--size", "1", "--datastore", "redis", "--datastore-version",
                      "9.9", "--wait")
        check(cp.returncode == 1 and "is ERROR: provisioning failed: engine binary /nonexistent/redis-server" in cp.stderr,
              f"a create that fails ends --wait with its reason: {cp.stderr!r}")
        cp = trovectl("--json", "show", "broken")
        status = json.loads(cp.stdout)["instance"]["status"] if cp.returncode == 0 else None
        check(status in ("ERROR", "FAILED") or cp.returncode == 1, f"the failed instance: {status}")


if __name__ == "__main__":
    harness.run_tests(globals())
