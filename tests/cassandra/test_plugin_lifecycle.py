"""The Cassandra plugin runs a node from nothing: prepare writes cassandra.yaml,
starts the launcher named in the settings, puts its admin role in place of
the default superuser (which can no longer log in), and makes the requested
keyspaces, roles and root. Then stop drains first, start and restart bring
the node back with its data, a killed node shows as crashed, configuration
applies live through nodetool (the JMX password only in a 0600 file, never
on nodetool's command line) or waits for a restart and survives one, and
the guest log is readable. Checked from outside with the DataStax driver
and the node's own files.
"""
import json
import os
import signal
import stat
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import harness  # noqa: E402
from harness import check  # noqa: E402

try:
    import ds_cassandra as ds  # noqa: E402
    from cassandra.cluster import NoHostAvailable  # noqa: E402
    from cassandra import Unauthorized  # noqa: E402
except ImportError as exc:
    print(f"skipped: python3-cassandra (the DataStax driver) is not installed ({exc})")
    sys.exit(77)

APP_PW = "app 'pw' \"x\" é"
ROOT_PW = "r00t'pw"
JMX_PW = "jmx-secret-4f2a"


def nodetool_recorder(env):
    """A nodetool that records its argv (and its -pwf file's mode) before running the stand-in's."""
    log = env.path("nodetool-calls.jsonl")
    path = env.path("bin", "nodetool")
    with open(path, "w") as f:
        f.write(f"""#!/usr/bin/python3
import json, os, sys
argv = sys.argv[1:]
pwf = argv[argv.index("-pwf") + 1] if "-pwf" in argv else None
mode = oct(os.stat(pwf).st_mode & 0o777) if pwf and os.path.exists(pwf) else None
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": argv, "pwf_mode": mode}}) + "\\n")
os.execv({ds.NODETOOL!r}, [{ds.NODETOOL!r}] + argv)
""")
    os.chmod(path, 0o755)
    return path, log


def calls(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


def settings_value(node, name):
    with node.session() as s:
        row = s.execute("SELECT value FROM system_views.settings WHERE name = %s", (name,)).one()
        return row.value if row else None


def can_log_in(node, user, password):
    try:
        with node.session(user, password):
            return True
    except NoHostAvailable:
        return False


def wait_state(agent, want, timeout=30):
    return harness.wait_for(lambda: agent.must("status")["state"] == want, timeout, f"status {want}")


def test_prepare_and_lifecycle():
    with harness.Env(prefix="cs-lifecycle-") as env:
        nodetool, recorded = nodetool_recorder(env)
        node = ds.StandinNode(env, 0, start=False, extra_settings={"nodetool": nodetool, "jmx_user": "monitor",
                                                                   "jmx_password": JMX_PW})
        agent = harness.Agent(env, "cassandra", node.settings)
        check(agent.must("status")["state"] == "new", "a node never prepared should be new")

        agent.must("prepare", {"databases": [{"name": "app"}],
                               "users": [{"name": "app_user", "password": APP_PW, "databases": ["app"]}],
                               "root_password": ROOT_PW,
                               "overrides": {"concurrent_reads": "48", "compaction_throughput_mb_per_sec": "16"}})
        check(agent.must("status")["state"] == "running", "status after prepare")
        yaml = open(os.path.join(node.conf_dir, "cassandra.yaml")).read()
        for line in ("authenticator: PasswordAuthenticator", "authorizer: CassandraAuthorizer", "concurrent_reads: 48",
                     f"native_transport_port: {node.port}", 'listen_address: "127.0.0.1"'):
            check(line in yaml, f"cassandra.yaml lacks {line!r}:\n{yaml}")
        check(settings_value(node, "concurrent_reads") == "48", "the override did not reach the first start")
        check(settings_value(node, "compaction_throughput_mb_per_sec") == "16", "the live override at start")

        check(not can_log_in(node, "cassandra", "cassandra"), "the default superuser still logs in")
        check(can_log_in(node, "root", ROOT_PW), "root cannot log in")
        with node.session("app_user", APP_PW) as s:
            s.execute("SELECT keyspace_name FROM system_schema.keyspaces")
        with node.session() as s:
            s.execute("CREATE TABLE app.kv (k int PRIMARY KEY, v text)")
            s.execute("INSERT INTO app.kv (k, v) VALUES (1, 'one')")
            keyspace = s.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'app'").one()
            check(dict(keyspace.replication) == {"class": "org.apache.cassandra.locator.SimpleStrategy",
                                                 "replication_factor": "1"}, f"app: {keyspace}")

        pid = node.pid()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        check(ds.ADMIN_PASSWORD.encode() not in cmdline and JMX_PW.encode() not in cmdline,
              "a secret is on the node's command line")

        # stop drains first; start brings the data back
        agent.must("stop")
        check(agent.must("status")["state"] == "stopped", "status after stop")
        check(not node.alive(pid), "the node still runs after stop")
        system_log = open(os.path.join(node.log_dir, "system.log")).read()
        check("DRAINED" in system_log, "stop did not drain the node first")
        check(any(c["argv"][-1] == "drain" for c in calls(recorded)), "nodetool drain was not run")
        agent.must("start")
        check(agent.must("status")["state"] == "running", "status after start")
        with node.session() as s:
            check(s.execute("SELECT v FROM app.kv WHERE k = 1").one().v == "one", "a row was lost across stop/start")

        # a node killed under the agent is crashed, not stopped; start recovers it
        os.kill(node.pid(), signal.SIGKILL)
        harness.wait_for(lambda: agent.must("status")["state"] == "crashed", 30, "crashed after a kill")
        agent.must("start")
        check(agent.must("status")["state"] == "running", "status after starting a crashed node")

        # configuration: live through nodetool, restart-only pending, both persisted
        before = len(calls(recorded))
        r = agent.must("config.apply", {"values": {"compaction_throughput_mb_per_sec": "24",
                                                   "read_request_timeout_in_ms": "7000", "concurrent_writes": "40"}})
        check(sorted(r["applied"]) == ["compaction_throughput_mb_per_sec", "read_request_timeout_in_ms"] and
              r["pending_restart"] == ["concurrent_writes"], f"config.apply: {r.result}")
        check(settings_value(node, "compaction_throughput_mb_per_sec") == "24", "the live value did not apply")
        check(settings_value(node, "read_request_timeout_in_ms") == "7000", "settimeout read did not apply")
        check(settings_value(node, "concurrent_writes") == "32", "a restart-only value applied live")
        setters = [c for c in calls(recorded)[before:] if c["argv"][-2:] in (["setcompactionthroughput", "24"],
                                                                             ["read", "7000"])]
        check(len(setters) == 2, f"nodetool setters: {calls(recorded)[before:]}")
        for c in calls(recorded):
            check(JMX_PW not in " ".join(c["argv"]) and "-pw" not in c["argv"], f"a JMX password on argv: {c}")
            check("-pwf" in c["argv"] and c["pwf_mode"] == "0o600", f"nodetool without a 0600 -pwf file: {c}")
        leftovers = [n for n in os.listdir(os.path.join(agent.dir, "state", "plugin")) if n.startswith(".trove-")]
        check(not leftovers, f"JMX password files left behind: {leftovers}")
        shown = agent.must("config.show", {"names": ["compaction_throughput_mb_per_sec", "concurrent_writes"]})
        check(shown["values"] == {"compaction_throughput_mb_per_sec": "24", "concurrent_writes": "32"},
              f"config.show: {shown.result}")
        agent.must("restart")
        check(settings_value(node, "concurrent_writes") == "40", "the pending value did not apply at restart")
        check(settings_value(node, "compaction_throughput_mb_per_sec") == "24", "a live value was lost at restart")

        r = agent.call("config.apply", {"values": {"tombstone_warn_threshold": "5000",
                                                   "tombstone_failure_threshold": "100"}})
        check(r.code == "invalid_argument" and "tombstone_warn_threshold" in r.message, f"cross rule: {r}")
        r = agent.call("config.apply", {"values": {"num_tokens": "8"}})
        check(r.code == "invalid_argument" and "num_tokens" in r.message, f"an unknown setting: {r}")
        schema = {p["name"]: p for p in agent.must("config.schema")["parameters"]}
        check(schema["compaction_throughput_mb_per_sec"]["dynamic"] and not schema["concurrent_reads"]["dynamic"],
              "schema dynamic flags")

        r = agent.must("config.reset")
        check("compaction_throughput_mb_per_sec" in r["applied"] and "concurrent_writes" in r["pending_restart"],
              f"config.reset: {r.result}")
        check(settings_value(node, "compaction_throughput_mb_per_sec") == "64", "reset did not restore the default")
        yaml = open(os.path.join(node.conf_dir, "cassandra.yaml")).read()
        check("concurrent_writes" not in yaml and "concurrent_reads" not in yaml, "reset left overrides in the yaml")

        # guest logs
        logs = {g["name"]: g for g in agent.must("log.list")["logs"]}
        check("system" in logs and logs["system"]["bytes"] > 0, f"log.list: {logs}")
        tail = agent.must("log.tail", {"name": "system", "bytes": 300})
        check(0 < tail["bytes"] <= 300 and "Startup complete" in open(os.path.join(node.log_dir, "system.log")).read(),
              f"log.tail: {tail.result}")
        check(agent.call("log.tail", {"name": "nope"}).code == "not_found", "an unknown log")

        # nothing secret in what the agent or the node wrote
        agent.must("stop")
        for root, _, files in os.walk(env.dir):
            for name in files:
                path = os.path.join(root, name)
                if name.endswith((".log", ".yaml", ".conf", ".properties", ".jsonl")) and "secrets" not in name:
                    data = open(path, "rb").read()
                    for secret in (APP_PW, ROOT_PW, JMX_PW, ds.ADMIN_PASSWORD):
                        check(secret.encode() not in data, f"a secret is in {path}")


def test_settings_refused():
    with harness.Env(prefix="cs-settings-") as env:
        node = ds.StandinNode(env, 0, start=False)
        for extra, words in [({"no_such_setting": "1"}, ["no_such_setting"]),
                             ({"data_dir": "relative/path"}, ["data_dir"]),
                             ({"config_dir": "/tmp/a b"}, ["/tmp/a b"]),
                             ({"cluster_name": "x\"y"}, ["cluster_name"]),
                             ({"dc": "dc1"}, ["dc and rack"]),
                             ({"jmx_user": "monitor"}, ["jmx_user and jmx_password"]),
                             ({"admin_user": "cassandra"}, ["cassandra"])]:
            settings = dict(node.settings, **extra)
            r = harness.Agent(env, "cassandra", settings, instance_id=f"bad{len(words[0])}{abs(hash(str(extra)))%997}")\
                .call("status")
            check(not r.ok and all(w in (r.message + r.stderr) for w in words), f"{extra} was not refused: {r}")


def main():
    harness.run_tests(globals())


if __name__ == "__main__":
    main()
