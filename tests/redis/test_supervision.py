"""The redis-server process under the support library's supervision: the
plugin starts it in the foreground, detached in its own session; a server
that dies during start is reported with the end of its log; a server that
neither answers SHUTDOWN nor exits on SIGTERM is killed after stop_timeout;
agent processes starting the same instance at once start one server."""
import os
import signal
import threading
import time

import harness
from harness import check
from redis_server import RedisServer


def servers_of(server):
    """Live redis-server processes working in this server's directory (Redis
    rewrites its command line, but it runs in its dir)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if comm == "redis-server" and state not in ("Z", "X") and cwd == server.dir:
            pids.append(int(entry))
    return pids


def session_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[3])


def prepared(env, **settings):
    server = RedisServer(env)   # not started: the plugin prepares it
    agent = harness.Agent(env, "redis", dict(server.settings, **settings))
    agent.must("prepare", {})
    return server, agent


def test_start_detaches_and_reports_a_death_with_the_log():
    with harness.Env(prefix="redis-supervision-") as env:
        server, agent = prepared(env)
        pid = int(open(server.pid_file).read())
        check(servers_of(server) == [pid], f"servers: {servers_of(server)}, pid file {pid}")
        check(session_of(pid) == pid, "redis-server does not lead its own session")
        check(os.readlink(f"/proc/{pid}/fd/0") == "/dev/null", "redis-server's stdin is not /dev/null")
        agent.must("stop")
        with open(server.config_file, "a") as f:
            f.write("no-such-directive yes\n")
        r = agent.call("start")
        check(r.code == "datastore_error" and "exited during start" in r.message and "Bad directive" in r.message,
              f"a server that cannot start: {r}")
        check(not servers_of(server), "a server is left running")


def test_stop_kills_a_server_that_does_not_exit():
    with harness.Env(prefix="redis-supervision-kill-") as env:
        server, agent = prepared(env, stop_timeout=1, connect_timeout_ms=200, command_timeout_ms=200)
        server.cli("SET", "k", "v")
        pid = int(open(server.pid_file).read())
        os.kill(pid, signal.SIGSTOP)   # answers nothing, and a pending SIGTERM waits
        start = time.monotonic()
        r = agent.call("stop")
        took = time.monotonic() - start
        check(r.ok, f"stop of a hung server: {r}")
        check(not servers_of(server), "the hung server still runs")
        check(took < 15, f"stop took {took:.1f}s")
        check("killing it" in r.stderr, f"the escalation is not logged: {r.stderr[-1000:]}")
        check(agent.must("status")["state"] == "stopped", "status after the kill")
        agent.must("start")
        check(server.ping(), "the server does not start again after the kill")


def test_two_agent_processes_start_one_server():
    with harness.Env(prefix="redis-supervision-race-") as env:
        server, agent = prepared(env)
        agent.must("stop")
        starts = open(server.log_file).read().count("Redis is starting")
        results = []
        threads = [threading.Thread(target=lambda: results.append(agent.call("start"))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(all(r.ok for r in results), f"concurrent starts: {results}")
        time.sleep(0.5)   # a second server would be dying on the taken port now
        check(len(servers_of(server)) == 1, f"servers: {servers_of(server)}")
        started = open(server.log_file).read().count("Redis is starting") - starts
        check(started == 1, f"{started} redis-server processes were started for one instance")
        check(agent.must("status")["state"] == "running", "status after concurrent starts")


if __name__ == "__main__":
    harness.run_tests(globals())
