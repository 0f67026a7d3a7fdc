"""trove-plugin-check's description of the example datastore: how to start
trove-example-kvd, and how to read and write with its own client,
trove-example-kv. It is the only per-datastore part of the check; copy it
with the plugin and change what the datastore does differently.

The binaries are found in EXAMPLE_KVD / EXAMPLE_KV, a build tree
(TROVE_BUILD), beside this file (an out-of-tree build), or in PATH.
"""
import os
import shutil
import signal
import subprocess

from trove_check.datastore import Datastore, Server
from trove_check.runtime import Proc, free_port, wait_for

ADMIN_USER = "trove_admin"
ADMIN_PASSWORD = "check admin 'pw\""


def _binary(name, variable):
    if os.environ.get(variable):
        return os.environ[variable]
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.environ.get("TROVE_BUILD")
    for d in ([os.path.join(build, "plugins", "example")] if build else []) + [here]:
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return shutil.which(name) or name


KVD = _binary("trove-example-kvd", "EXAMPLE_KVD")
KV = _binary("trove-example-kv", "EXAMPLE_KV")


class ExampleServer(Server):
    def __init__(self, env, index):
        self.dir = env.mkdir(f"example{index}", mode=0o700)
        self.datadir = os.path.join(self.dir, "data")
        port = free_port()
        super().__init__({"host": "127.0.0.1", "port": port, "datadir": self.datadir, "kvd": KVD,
                          "admin_user": ADMIN_USER, "admin_password": ADMIN_PASSWORD}, "127.0.0.1", port)
        admin = dict(os.environ, KVD_ADMIN_USER=ADMIN_USER, KVD_ADMIN_PASSWORD=ADMIN_PASSWORD)
        subprocess.run([KVD, "--datadir", self.datadir, "--init"], env=admin, check=True, capture_output=True)
        # the server's log is where the plugin's own starts put it, for the logs part
        self.proc = Proc([KVD, "--datadir", self.datadir, "--port", str(port), "--bind", self.host],
                         os.path.join(self.datadir, "kvd.log"), env=admin)
        env.callback(self.stop)
        wait_for(lambda: self.kv("PING").returncode == 0, 20, f"trove-example-kvd on port {port}")

    def stop(self):
        """Stop the server, also when the plugin restarted it (it is no longer our child then)."""
        self.proc.stop()
        try:
            with open(os.path.join(self.datadir, "kvd.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def kv(self, *args, user=ADMIN_USER, password=ADMIN_PASSWORD, stdin=None):
        argv = [KV, "-h", self.host, "-p", str(self.port)] + (["-u", user] if user else []) + list(args)
        return subprocess.run(argv, input=stdin, capture_output=True, env=dict(os.environ, KV_PASSWORD=password),
                              timeout=60)

    def must(self, *args, stdin=None):
        cp = self.kv(*args, stdin=stdin)
        if cp.returncode != 0:
            raise AssertionError(f"trove-example-kv {' '.join(args)}: {cp.stderr.decode(errors='replace')}")
        return [line.split("\t") for line in cp.stdout.decode().splitlines() if line]


class ExampleDatastore(Datastore):
    plugin = "example"
    expect_unsupported = set()   # it offers every op
    databases = True
    test_database = "conformance"
    live_parameter = ("max_value_bytes", "4096")
    restart_parameter = ("listen_backlog", "32")
    incremental_backup = False
    database_option = ("max_keys", "1000")

    def start_server(self, env, index):
        return ExampleServer(env, index)

    def write_rows(self, server, database, rows):
        lines = "".join(f"PUT\t{database}\t{k}\t{v}\n" for k, v in rows)
        server.must(stdin=lines.encode())

    def read_rows(self, server, database):
        return sorted((row[0], row[1]) for row in server.must("SCAN", database))

    def can_read(self, server, user, password, database):
        cp = server.kv("SCAN", database, user=user, password=password)
        if cp.returncode == 0:
            return True
        why = cp.stderr.decode(errors="replace").strip()
        if why.startswith(("ERR auth:", "ERR denied:")):
            return False
        raise AssertionError(f"SCAN as {user!r} was neither answered nor refused: {why[:300]}")

    def read_parameter(self, server, name):
        return server.must("CONFIG.GET", name)[0][0]

    def same_value(self, name, wanted, reported):
        truth = {"on": "1", "true": "1", "yes": "1", "off": "0", "false": "0", "no": "0"}
        w, r = str(wanted).lower(), str(reported).lower()
        return truth.get(w, w) == truth.get(r, r)

    def read_database_option(self, server, database, option):
        for row in server.must("DB.LIST"):
            if row[0] == database and option == "max_keys":
                return row[1]
        return None

    def cluster_members(self, server):
        return {f"{row[0]}:{row[1]}" for row in server.must("CLUSTER.STATUS") if len(row) >= 2}


DATASTORE = ExampleDatastore()
