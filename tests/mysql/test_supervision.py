"""How the plugin supervises mariadbd through the support library, on a real
server: a server that does not stop on SIGTERM within stop_timeout is killed
and reported stopped, and starts again; a server that exits during start
fails the start at once with the end of its error log; while another
process holds the plugin's server lock, start, stop and restart answer
failed_precondition and change nothing.
"""
import fcntl
import os
import signal
import time

import harness
import mysql_server
from harness import check


def test_stop_escalates_to_sigkill():
    with harness.Env(prefix="mysql-supervision-") as env:
        server = mysql_server.start_server(env, 0)
        agent = mysql_server.agent_for(env, server, stop_timeout=2)
        pid = server.pid()
        os.kill(pid, signal.SIGSTOP)   # a stopped process cannot act on SIGTERM
        start = time.monotonic()
        try:
            agent.must("stop")
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        took = time.monotonic() - start
        check(not server.alive(), "a server that ignored SIGTERM still runs after stop")
        check(took >= 2, f"stop killed the server after {took:.1f}s, before stop_timeout")
        st = agent.must("status").result
        check(st["state"] == "stopped", f"status after a stop that had to kill: {st}")
        agent.must("start")
        check(agent.must("status")["state"] == "running" and server.alive(), "the killed server does not start again")


def test_start_that_dies_says_why():
    with harness.Env(prefix="mysql-supervision-") as env:
        server = mysql_server.start_server(env, 1)
        agent = mysql_server.agent_for(env, server, start_timeout=60)
        agent.must("stop")
        overrides = os.path.join(server.run_dir, "overrides.cnf")
        with open(overrides) as f:
            good = f.read()
        with open(overrides, "a") as f:
            f.write("no_such_server_option_x9=1\n")
        start = time.monotonic()
        r = agent.call("start")
        took = time.monotonic() - start
        check(not r.ok and r.code == "datastore_error" and "exited during start" in r.message and
              "no_such_server_option_x9" in r.message, f"a start that dies: {r}")
        check(took < 30, f"a server that died at once was waited for {took:.1f}s")
        check(not server.alive(), "a server that could not start is running")
        with open(overrides, "w") as f:
            f.write(good)
        agent.must("start")
        check(agent.must("status")["state"] == "running", "the server does not start once its options are fixed")


def test_lock_held_elsewhere():
    with harness.Env(prefix="mysql-supervision-") as env:
        server = mysql_server.start_server(env, 2)
        agent = mysql_server.agent_for(env, server)
        agent.must("status")   # the agent made its state directory
        lock_path = os.path.join(agent.dir, "state", "plugin", "server.lock")
        pid = server.pid()
        with open(lock_path, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            for op in ("stop", "restart", "start"):
                r = agent.call(op)
                check(not r.ok and r.code == "failed_precondition" and "another operation" in r.message,
                      f"{op} while another process holds the server lock: {r}")
            check(server.pid() == pid, "the server was stopped or restarted while the lock was held")
        agent.must("restart")
        check(server.alive() and server.pid() != pid, "restart after the lock was released did not restart")


if __name__ == "__main__":
    harness.run_tests(globals())
