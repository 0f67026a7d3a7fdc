#!/usr/bin/python3
"""The REST API in the real trove-control, with a real agent on a real
MariaDB: databases, users, grants, passwords and root through the stock
`openstack database` client with a static token, and through trovectl;
outcomes checked with the stock `mariadb` client. A second tenant's token
finds nothing of the first tenant's.

The instance row is seeded into the registry (api_test_server seed) and its
agent is started by the test, so this runs without the provisioner.

usage: test_api_agents.py API_TEST_SERVER
"""
import json
import os
import subprocess
import sys

import harness
from controlplane import ControlPlane
from harness import check
from mysql_server import MysqlServer

SERVER = sys.argv[1] if len(sys.argv) > 1 else harness.build_path("tests", "control", "api_test_server")
OPENSTACK = "/usr/bin/openstack"
TOKEN_T1 = "t1-token-0123456789abcdef"
TOKEN_T2 = "t2-token-0123456789abcdef"
PASSWORD = "it's a \"quoted\" pw"


class Service:
    """trove-control with the REST API on, a seeded registry, and one MySQL instance of tenant t1 whose
    agent serves through it."""

    def __init__(self, env):
        self.env = env
        self.server = MysqlServer(env).start()
        self.control = ControlPlane(env)
        registry = os.path.join(self.control.dir, "registry.db")
        # t2's instance (running, same version, no agent) is made first, so it is the first candidate for
        # reading the version's parameter schema: the API must go on to an instance whose agent answers.
        out = subprocess.run([SERVER, "seed", "--registry", "sqlite:" + registry, "--instances", "t2:1",
                              "--instances", "t1:1"], capture_output=True, text=True, check=True).stdout
        ids = {line.split()[1]: line.split()[2] for line in out.splitlines()}
        self.id, self.other = ids["t1"], ids["t2"]
        tokens = harness.secret_file(env.path("tokens"), f"{TOKEN_T1} t1\n{TOKEN_T2} t2\n")
        self.port = harness.free_port()
        settings = {
            "agent_endpoint": self.control.agent_endpoint, "client_endpoint": self.control.client_endpoint,
            "state_dir": self.control.dir, "log_level": "debug", "request_timeout_ms": 60000,
            "api_listen": f"127.0.0.1:{self.port}", "api_token_file": tokens, "provisioner": "none",
            "registry": "sqlite:" + registry,
            "server_key_file": os.path.join(self.control.dir, "server.key"),
            "allowed_agents_file": self.control.allow_path,
        }
        self.agent = self.control.agent("mysql", self.server.settings(), self.id)
        harness.write_ini(self.control.config, {"control": settings})
        self.control.start()
        self.agent.serve()
        self.control.wait_connected(self.id, timeout=30)
        self.endpoint = f"http://127.0.0.1:{self.port}/v1.0/t1"

    def openstack(self, *args, token=TOKEN_T1, endpoint=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["HOME"] = self.env.dir
        argv = [OPENSTACK, "--os-auth-type", "admin_token", "--os-token", token, "--os-endpoint",
                endpoint or self.endpoint] + list(args)
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)

    def must(self, *args, **kw):
        cp = self.openstack(*args, **kw)
        check(cp.returncode == 0, f"openstack {' '.join(args)}: exit {cp.returncode}: {cp.stderr}")
        return json.loads(cp.stdout) if "-f" in args else cp.stdout

    def trovectl(self, *args, stdin=None, token=TOKEN_T1):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}
        env.update({"TROVE_URL": f"http://127.0.0.1:{self.port}", "TROVE_TENANT": "t1", "TROVE_TOKEN": token})
        return subprocess.run([harness.trovectl_binary()] + list(args), capture_output=True, text=True, env=env,
                              input=stdin, timeout=120)

    def login_databases(self, user, password):
        cp = self.server.sql("SHOW DATABASES", user=user, password=password)
        if cp.returncode != 0:
            return None
        return set(cp.stdout.split()) - {"information_schema"}


def test_stock_client_manages_databases_and_users():
    with harness.Env() as env:
        svc = Service(env)
        i = svc.id
        svc.must("database", "db", "create", i, "shop")
        svc.must("database", "db", "create", i, "blog", "--character_set", "utf8mb4", "--collate",
                 "utf8mb4_general_ci")
        check({"shop", "blog"} <= svc.server.databases(), f"databases on the server: {svc.server.databases()}")
        names = [r["Name"] for r in svc.must("database", "db", "list", i, "-f", "json")]
        check({"shop", "blog"} <= set(names), f"db list: {names}")

        svc.must("database", "user", "create", i, "alice", PASSWORD, "--databases", "shop")
        check(svc.login_databases("alice", PASSWORD) == {"shop"}, "alice logs in and sees shop")
        users = svc.must("database", "user", "list", i, "-f", "json")
        alice = [u for u in users if u["Name"] == "alice"]
        check(len(alice) == 1 and "shop" in alice[0]["Databases"], f"user list: {users}")
        shown = svc.must("database", "user", "show", i, "alice", "-f", "json")
        check(shown["name"] == "alice", f"user show: {shown}")
        svc.must("database", "user", "grant", "access", i, "alice", "blog")
        check(svc.login_databases("alice", PASSWORD) == {"shop", "blog"}, "grant took")
        access = [r["Name"] for r in svc.must("database", "user", "show", "access", i, "alice", "-f", "json")]
        check(set(access) == {"shop", "blog"}, f"show access: {access}")
        svc.must("database", "user", "revoke", "access", i, "alice", "blog")
        check(svc.login_databases("alice", PASSWORD) == {"shop"}, "revoke took")
        svc.must("database", "user", "update", "attributes", i, "alice", "--new_password", "n3w 'pw'")
        check(svc.login_databases("alice", "n3w 'pw'") == {"shop"} and
              svc.login_databases("alice", PASSWORD) is None, "the new password replaced the old one")

        cp = svc.openstack("database", "user", "create", i, "bob'; DROP DATABASE shop; --", "pw")
        check(cp.returncode != 0 and "user name" in cp.stderr and "shop" in svc.server.databases(),
              f"a hostile user name is refused: {cp.stderr}")

        root = svc.must("database", "root", "enable", i, "-f", "json")
        check(root["name"] and root["password"], f"root enable: {root}")
        check(svc.server.sql("SELECT 1", user=root["name"], password=root["password"]).returncode == 0,
              "the root password works")
        check(svc.must("database", "root", "show", i, "-f", "json")["is_root_enabled"] is True, "root show")

        params = svc.must("database", "configuration", "parameter", "list", "10.11", "--datastore", "mysql",
                          "-f", "json")
        check(any(p["Name"] == "max_connections" for p in params), f"parameters from the plugin: {params[:3]}")

        svc.must("database", "user", "delete", i, "alice")
        check(svc.login_databases("alice", "n3w 'pw'") is None, "a deleted user cannot log in")
        svc.must("database", "db", "delete", i, "blog")
        check("blog" not in svc.server.databases(), "db delete took")


def test_another_tenant_sees_nothing():
    with harness.Env() as env:
        svc = Service(env)
        svc.must("database", "db", "create", svc.id, "shop")
        t2 = f"http://127.0.0.1:{svc.port}/v1.0/t2"
        rows = svc.must("database", "instance", "list", "-f", "json", token=TOKEN_T2, endpoint=t2)
        check([r["ID"] for r in rows] == [svc.other], f"t2 lists only its own instance: {rows}")
        for args in (("database", "instance", "show", svc.id), ("database", "db", "list", svc.id),
                     ("database", "user", "list", svc.id), ("database", "root", "show", svc.id)):
            cp = svc.openstack(*args, token=TOKEN_T2, endpoint=t2)
            check(cp.returncode != 0 and ("No instance" in cp.stderr or "404" in cp.stderr),
                  f"{' '.join(args)} as t2: {cp.stderr}")
        cp = svc.openstack("database", "db", "create", svc.id, "evil", token=TOKEN_T2, endpoint=t2)
        check(cp.returncode != 0 and "evil" not in svc.server.databases(), "t2 cannot create in t1's instance")
        cp = svc.openstack("database", "instance", "list", token=TOKEN_T2)
        check(cp.returncode != 0 and "403" in cp.stderr, f"t2's token on t1's URL: {cp.stderr}")


def test_trovectl_over_rest_with_a_real_agent():
    with harness.Env() as env:
        svc = Service(env)
        cp = svc.trovectl("database-create", "inst-0", "shop")
        check(cp.returncode == 0, f"database-create by instance name: {cp.stderr}")
        cp = svc.trovectl("user-create", "inst-0", "carol", "-", "shop", stdin=PASSWORD + "\n")
        check(cp.returncode == 0 and svc.login_databases("carol", PASSWORD) == {"shop"},
              f"user-create with the password from stdin: {cp.stderr}")
        cp = svc.trovectl("--json", "user-list", "inst-0")
        check(cp.returncode == 0 and "carol" in [u["name"] for u in json.loads(cp.stdout)["users"]], cp.stdout)
        cp = svc.trovectl("database-create", "inst-0", "shop")
        check(cp.returncode == 1 and cp.stderr.count("\n") == 1 and cp.stderr.startswith("trovectl: "),
              f"an existing database: one line: {cp.stderr!r}")
        cp = svc.trovectl("root-enable", "inst-0")
        check(cp.returncode == 0 and "password: " in cp.stdout and "********" not in cp.stdout,
              "root-enable prints the password it was asked for")
        cp = svc.trovectl("user-delete", "inst-0", "carol")
        check(cp.returncode == 0 and svc.login_databases("carol", PASSWORD) is None, cp.stderr)


if __name__ == "__main__":
    harness.run_tests(globals())
