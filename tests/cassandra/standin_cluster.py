"""Stand-in Cassandra nodes for tests: writes a cassandra.yaml the way an
operator (or the plugin) would, starts tests/cassandra/standin/cassandra in the
foreground as a child, waits for its native port, runs its nodetool, and stops
it when the harness.Env closes. Nodes of one ring share the native and storage
ports and differ by loopback address (127.0.0.1, 127.0.0.2, ...), as ccm does.
"""
import os
import socket
import subprocess

import harness

STANDIN = harness.source_path("tests", "cassandra", "standin")
LAUNCHER = os.path.join(STANDIN, "cassandra")
NODETOOL = os.path.join(STANDIN, "nodetool")


def free_ports(count, addresses=("127.0.0.1", "127.0.0.2")):
    """`count` ports free on every one of `addresses`."""
    ports = []
    while len(ports) < count:
        p = harness.free_port()
        if p in ports:
            continue
        try:
            for a in addresses:
                with socket.socket() as s:
                    s.bind((a, p))
        except OSError:
            continue
        ports.append(p)
    return ports


class StandinNode:
    def __init__(self, env, name, address, native_port, storage_port, jmx_port, seeds, cluster_name="Test Cluster",
                 password_auth=True, extra=None, dc=None, rack=None):
        self.env = env
        self.name = name
        self.address = address
        self.native_port = native_port
        self.storage_port = storage_port
        self.jmx_port = jmx_port
        self.seeds = seeds
        self.cluster_name = cluster_name
        self.password_auth = password_auth
        self.extra = extra or {}
        self.dc, self.rack = dc, rack
        self.dir = env.mkdir(name)
        self.conf_dir = env.mkdir(name, "conf")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_dir = os.path.join(self.dir, "logs")
        self.config_file = os.path.join(self.conf_dir, "cassandra.yaml")
        self.proc = None
        env.callback(self.stop)

    def write_config(self):
        lines = [
            f"cluster_name: '{self.cluster_name}'",
            "num_tokens: 1",
            f"listen_address: {self.address}",
            f"rpc_address: {self.address}",
            f"native_transport_port: {self.native_port}",
            f"storage_port: {self.storage_port}",
            "data_file_directories:",
            f"  - {self.data_dir}",
            f"commitlog_directory: {os.path.join(self.dir, 'commitlog')}",
            f"hints_directory: {os.path.join(self.dir, 'hints')}",
            f"saved_caches_directory: {os.path.join(self.dir, 'saved_caches')}",
            "authenticator: " + ("PasswordAuthenticator" if self.password_auth else "AllowAllAuthenticator"),
            "authorizer: " + ("CassandraAuthorizer" if self.password_auth else "AllowAllAuthorizer"),
            "role_manager: CassandraRoleManager",
            "endpoint_snitch: " + ("GossipingPropertyFileSnitch" if self.dc else "SimpleSnitch"),
            "seed_provider:",
            "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
            "    parameters:",
            f"      - seeds: \"{','.join(self.seeds)}\"",
        ]
        lines += [f"{k}: {v}" for k, v in self.extra.items()]
        with open(self.config_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        if self.dc:
            with open(os.path.join(self.conf_dir, "cassandra-rackdc.properties"), "w") as f:
                f.write(f"dc={self.dc}\nrack={self.rack or 'rack1'}\n")

    def argv(self):
        return [LAUNCHER, "-f", "-R", f"-Dcassandra.config=file://{self.config_file}",
                f"-Dcassandra.jmx.local.port={self.jmx_port}", f"-Dcassandra.logdir={self.log_dir}",
                "-Dcassandra.ring_delay_ms=20000"]

    def start(self, wait=True):
        if not os.path.exists(self.config_file):
            self.write_config()
        self.proc = harness.Proc(self.argv(), os.path.join(self.dir, "stdout.log"))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=40):
        def ready():
            if not self.proc.alive():
                raise RuntimeError(f"stand-in {self.name} exited: {self.proc.log_tail()}")
            return harness.tcp_open(self.address, self.native_port)
        harness.wait_for(ready, timeout, f"stand-in {self.name} on {self.address}:{self.native_port}")

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def nodetool(self, *args, check=True):
        r = subprocess.run([NODETOOL, "-h", self.address, "-p", str(self.jmx_port), *args], capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"nodetool {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r


def ring(env, count=2, password_auth=True, **kw):
    """`count` nodes on 127.0.0.1.. sharing ports; the first is the seed. Not started."""
    native, storage = free_ports(2, tuple(f"127.0.0.{i + 1}" for i in range(count)))
    jmx = free_ports(count, ("127.0.0.1",) + tuple(f"127.0.0.{i + 1}" for i in range(1, count)))
    nodes = []
    for i in range(count):
        nodes.append(StandinNode(env, f"node{i + 1}", f"127.0.0.{i + 1}", native, storage, jmx[i], ["127.0.0.1"],
                                 password_auth=password_auth, **kw))
    return nodes
