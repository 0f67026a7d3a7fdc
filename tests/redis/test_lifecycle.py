"""Lifecycle through the agent on a server the plugin prepares itself: a new
instance reports "new", prepare writes the config file (admin password only as
a hash), applies overrides, creates users and root; stop, start, restart and a
crash show in status; data written before a stop is there after the start."""
import os
import signal
import time

import harness
from harness import check
from redis_server import RedisServer


def main():
    with harness.Env(prefix="redis-lifecycle-") as env:
        server = RedisServer(env)          # not started: the plugin prepares it
        agent = harness.Agent(env, "redis", server.settings)
        check(agent.must("status")["state"] == "new", "a never-prepared instance is not reported new")
        check(agent.call("start").code == "failed_precondition", "start before prepare")

        agent.must("prepare", {
            "overrides": {"maxmemory": "104857600", "databases": "4", "appendonly": "on"},
            "users": [{"name": "app", "password": "a pw'\"", "databases": ["app:*"]}],
            "root_password": "R00t pw",
        })
        st = agent.must("status")
        check(st["state"] == "running" and st["role"] == "standalone" and st["term"] == 0, f"status: {st.result}")
        check(server.config_get("databases") == "4", "the restart-only override is not in effect")
        check(server.config_get("maxmemory") == "104857600", "the maxmemory override is not in effect")
        check(server.config_get("appendonly") == "yes", "the appendonly override is not in effect")
        check(server.cli("SET", "app:k", "v", user="app", password="a pw'\"").strip() == "OK", "prepared user")
        check(server.cli("PING", user="root", password="R00t pw").strip() == "PONG", "prepared root")
        mode = os.stat(server.config_file).st_mode & 0o777
        check(mode == 0o600, f"the config file is mode {oct(mode)}")
        with open(server.config_file) as f:
            text = f.read()
        check(server.password not in text and "R00t pw" not in text, "a password is in the config file in clear")
        check(agent.call("prepare", {}).code == "failed_precondition", "prepare on a running server was accepted")

        agent.must("stop")
        check(not server.ping(), "the server answers after stop")
        check(agent.must("status")["state"] == "stopped", "status after stop")
        agent.must("start")
        check(server.cli("GET", "app:k").strip() == "v", "data written before stop is gone")
        check(agent.must("status")["state"] == "running", "status after start")

        pid = int(open(server.pid_file).read())
        os.kill(pid, signal.SIGKILL)
        harness.wait_for(lambda: agent.must("status")["state"] == "crashed", 10, "crashed state")
        agent.must("start")
        agent.must("restart")
        check(agent.must("status")["state"] == "running", "status after restart")
        check(server.cli("GET", "app:k").strip() == "v", "data lost across restart (AOF on)")
        new_pid = int(open(server.pid_file).read())
        check(new_pid != pid, "restart did not start a new process")
    print("redis lifecycle: passed")


if __name__ == "__main__":
    main()
