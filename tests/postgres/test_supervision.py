"""How the plugin supervises a real postmaster through the agent: a start
that fails says why with the end of the server log; a postmaster that does
not stop within the grace period (here: frozen with SIGSTOP) is killed with
its process group, status then says stopped, and the next start recovers
every committed row; start and stop wait for another agent process that
holds the server lock; work directories a killed agent left in /tmp are
removed, and none of the plugin's own is left behind."""
import fcntl
import os
import signal
import sys
import threading
import time

import harness
from harness import check
from postgres_server import PgServer, available


def postmaster_pid(srv):
    with open(os.path.join(srv.datadir, "postmaster.pid")) as f:
        return int(f.readline())


def group_members(pgid):
    """Live processes of a process group (zombies count as gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def main():
    if not available():
        print("SKIP: PostgreSQL 15 is not installed")
        return 77
    with harness.Env() as env:
        # a stale work directory of an agent process that no longer runs
        stale = "/tmp/trove-pg-99999999-dump-leftover"
        os.makedirs(os.path.join(stale, "inner"), exist_ok=True)
        srv = PgServer(env)
        agent = harness.Agent(env, "postgres", srv.settings())
        # the same server through an agent whose grace period (start_timeout) is 3 s
        quick = harness.Agent(env, "postgres", srv.settings(start_timeout=3), instance_id="inst-quick")
        agent.must("prepare", {"databases": [{"name": "shop"}]})
        check(not os.path.exists(stale), "a dead agent's work directory is removed")
        left = [d for d in os.listdir("/tmp") if d.startswith("trove-pg-") and
                not os.path.exists("/proc/" + d.split("-")[2])]
        check(left == [], f"no work directory of a finished call is left behind: {left}")
        srv.psql("CREATE TABLE t (k int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)", "shop")

        # the postmaster runs on its own: in its own session, not the agent's child
        pid = postmaster_pid(srv)
        check(os.getsid(pid) == pid and os.getpgid(pid) == pid, "the postmaster leads its own session")

        # frozen: the fast shutdown request waits, the grace period passes, the group is killed
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        r = quick.call("stop")
        took = time.monotonic() - started
        check(r.ok, f"stop succeeds by killing: {r}")
        check(2.5 <= took < 30, f"after the grace period (start_timeout = 3 s): {took:.1f} s")
        check(group_members(pid) == [], "the postmaster and its backends are gone")
        check("killing" in r.stderr, f"the escalation is logged: {r.stderr[-500:]}")
        st = quick.must("status")
        check(st["state"] == "stopped", f"a killed stop is still a stop: {st.result}")
        agent.must("start")   # waits for the dead postmaster to be reaped, then recovers
        check(srv.psql("SELECT count(*) FROM t", "shop").strip() == "100", "crash recovery kept every row")

        # a start that fails says why
        agent.must("stop")
        with open(os.path.join(srv.datadir, "postgresql.auto.conf"), "a") as f:
            f.write("shared_buffers = 'plenty'\n")
        r = agent.call("start")
        check(r.code == "datastore_error" and "shared_buffers" in r.message and "log ends" in r.message,
              f"the end of the server log says why: {r}")
        check(agent.must("status")["state"] == "stopped", "nothing runs after a failed start")
        with open(os.path.join(srv.datadir, "postgresql.auto.conf")) as f:
            text = f.read().replace("shared_buffers = 'plenty'\n", "")
        with open(os.path.join(srv.datadir, "postgresql.auto.conf"), "w") as f:
            f.write(text)
        agent.must("start")

        # another agent process holds the server lock: stop waits for it
        lock_path = os.path.join(agent.dir, "state", "plugin", "server.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = []
        t = threading.Thread(target=lambda: done.append(agent.call("stop")))
        t.start()
        time.sleep(2)
        check(not done and srv.running(), "stop waits while another process holds the lock")
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        t.join(60)
        check(done and done[0].ok and not srv.running(), f"then stops: {done}")
    print("postgres supervision: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
