"""The agent's side of the 2.0 operations, through `trove-agent call` on the
example plugin and a real trove-example-kvd: guest-log copies are bounded
and never left half-written, log arguments are checked, a long operation is
refused while another agent process runs one, database.alter needs
something to change, and a backup whose plugin puts a password into its
metadata (stored in clear) fails instead of storing it."""
import fcntl
import json
import os
import sys

import harness
from harness import check

sys.path.insert(0, harness.source_path("kit", "plugin-check"))
sys.path.insert(0, harness.source_path("plugins", "example"))
import description  # noqa: E402  the example's own description starts its server

FIXTURES = harness.build_path("tests", "agent")


def example_agent(env):
    server = description.ExampleServer(env, 0)
    return harness.Agent(env, "example", server.settings, instance_id="ops")


def test_log_fetch_over_its_limit_fails_and_leaves_no_file():
    with harness.Env() as env:
        a = example_agent(env)
        r = a.call("log.fetch", {"name": "server", "max_bytes": 10})
        check(not r.ok and r.code == "invalid_argument" and "10 bytes" in r.message, f"log.fetch: {r}")
        logs = os.path.join(a.dir, "state", "logs")
        check(not os.path.isdir(logs) or not os.listdir(logs), f"files left behind: {os.listdir(logs)}")
        got = a.must("log.fetch", {"name": "server"}).result
        check(os.path.exists(got["path"]) and got["bytes"] > 0, f"log.fetch: {got}")


def test_log_arguments_are_checked():
    with harness.Env() as env:
        a = example_agent(env)
        for args, code in (({"name": "server", "bytes": 0}, "invalid_argument"),
                           ({"name": "server", "bytes": 65537}, "invalid_argument"),
                           ({"name": "../etc/passwd"}, "invalid_argument"),
                           ({"name": "nosuch"}, "not_found")):
            r = a.call("log.tail", args)
            check(not r.ok and r.code == code and r.message, f"log.tail {args}: {r}")


def test_a_long_operation_is_refused_while_another_process_runs_one():
    with harness.Env() as env:
        a = example_agent(env)
        lock = os.path.join(a.dir, "state", "long-operation.lock")
        a.must("status")
        with open(lock, "a") as held:   # what a daemon running a long operation holds
            fcntl.flock(held, fcntl.LOCK_EX)
            r = a.call("restart")
            check(not r.ok and r.code == "failed_precondition" and "another agent process" in r.message,
                  f"restart while another process holds the lock: {r}")
            check(a.must("status").result["state"] == "running", "the refused restart touched the server")
        a.must("restart")


def test_database_alter_needs_something_to_change():
    with harness.Env() as env:
        a = example_agent(env)
        a.must("database.create", {"name": "d1"})
        r = a.call("database.alter", {"name": "d1"})
        check(not r.ok and r.code == "invalid_argument", f"database.alter without changes: {r}")
        r = a.call("database.alter", {"name": "d1", "character_set": "utf8"})
        check(not r.ok and r.code == "invalid_argument" and "character" in r.message, f"{r}")
        a.must("database.alter", {"name": "d1", "options": {"max_keys": 3}})
        listed = a.must("database.list").result["databases"]
        check(listed[0]["options"]["max_keys"] == "3", f"database.list: {listed}")


def test_backup_metadata_never_stores_a_secret():
    with harness.Env() as env:
        a = harness.Agent(env, "leakymeta", {}, instance_id="leaky")
        with open(a.config) as f:
            text = f.read()
        with open(a.config, "w") as f:
            f.write(text.replace(f"plugin_dir = {harness.plugin_dir('leakymeta')}", f"plugin_dir = {FIXTURES}"))
        r = a.call("backup.create")
        check(not r.ok and r.code == "internal" and "admin_password" in r.message, f"backup.create: {r}")
        records = a.must("backup.list").result["backups"]
        check(len(records) == 1 and records[0]["state"] == "failed", f"records: {records}")
        for name in os.listdir(a.backup_dir):
            with open(os.path.join(a.backup_dir, name), "rb") as f:
                check(b"hunter2" not in f.read(), f"the password reached {name}")
        check("hunter2" not in json.dumps(records) + r.message + r.stderr, "the password was echoed")


if __name__ == "__main__":
    harness.run_tests(globals())
