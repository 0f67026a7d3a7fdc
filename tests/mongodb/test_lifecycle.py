"""The mongod process under the MongoDB plugin: prepare on an empty machine
(generated mongod.conf, keyFile, a one-member replica set, the admin account,
databases, users, root and configuration overrides), stop, start, restart,
crash and a hung server, as status reports them; configuration applied live
and pending a restart; settings checked at open. Checked with pymongo and
the process table, never with the plugin."""
import os
import signal
import stat
import time

import harness
from controlplane import ControlPlane
from harness import check
from mongodb_server import ADMIN_PASSWORD, MongoServer

ALICE_PW = "al'ice \"pw\" \\ 1"
ROOT_PW = "r00t 'pw'"


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def status(agent):
    return agent.must("status").result


def test_prepare_a_new_instance_then_stop_start_crash_and_hang():
    with harness.Env(prefix="mongodb-lifecycle-") as env:
        server = MongoServer(env, 0)   # nothing on disk yet: prepare makes it all
        agent = harness.Agent(env, "mongodb", server.settings)
        check(status(agent)["state"] == "new", f"an unprepared instance: {status(agent)}")
        agent.must("prepare", {"databases": [{"name": "shop"}],
                               "users": [{"name": "alice", "password": ALICE_PW, "databases": ["shop"]}],
                               "root_password": ROOT_PW,
                               "overrides": {"cursorTimeoutMillis": "120000", "net.maxIncomingConnections": "500"}})
        st = status(agent)
        check(st["state"] == "running" and st["role"] == "standalone" and st["term"] >= 1 and
              st["position"].count(":") == 2, f"status after prepare: {st}")
        admin = server.admin()
        rs = admin.admin.command("replSetGetStatus")
        check(rs["set"] == "rs-0" and [m["name"] for m in rs["members"]] == [server.member] and
              rs["myState"] == 1, f"a one-member replica set of this host: {rs}")
        check(admin.admin.command("getParameter", 1, cursorTimeoutMillis=1)["cursorTimeoutMillis"] == 120000,
              "the live override")
        opts = admin.admin.command("getCmdLineOpts")["parsed"]
        check(opts["net"]["maxIncomingConnections"] == 500 and opts["security"]["keyFile"],
              f"the startup override and the keyFile: {opts}")
        check("shop" in admin.list_database_names(), "the database")
        alice = server.client("alice", ALICE_PW)
        alice.shop.items.insert_one({"_id": 1})
        alice.close()
        root = server.client("root", ROOT_PW)
        check(root.admin.command("ping")["ok"] == 1.0, "root")
        root.close()
        info = admin.admin.command("usersInfo", "trove_admin")["users"][0]
        check(info["roles"] == [{"role": "root", "db": "admin"}] and info["mechanisms"] == ["SCRAM-SHA-256"],
              f"the agent's account: {info}")
        admin.close()
        for name in ("mongod.conf", "keyfile", "trove-state.json"):
            path = os.path.join(server.config_dir, name)
            check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, f"{name} is not 0600")
            with open(path, "rb") as f:
                text = f.read()
            check(ADMIN_PASSWORD.encode() not in text and ROOT_PW.encode() not in text, f"a password is in {name}")
        with open(os.path.join(server.config_dir, "mongod.log"), "rb") as f:
            log = f.read()
        check(ADMIN_PASSWORD.encode() not in log and ALICE_PW.encode() not in log, "a password is in mongod's log")
        check(agent.call("prepare", {}).ok, "prepare is repeatable on a prepared instance")

        pid = server.pid()
        agent.must("stop")
        check(not alive(pid) and status(agent)["state"] == "stopped", "stop")
        agent.must("start")
        check(status(agent)["state"] == "running", "start")
        pid = server.pid()
        os.kill(pid, signal.SIGKILL)
        harness.wait_for(lambda: not alive(pid), 10, "mongod killed")
        check(status(agent)["state"] == "crashed", f"a killed server: {status(agent)}")
        agent.must("start")
        pid = server.pid()
        agent.must("restart")
        check(server.pid() != pid and status(agent)["state"] == "running", "restart")

        pid = server.pid()
        os.kill(pid, signal.SIGSTOP)   # a hung server: status answers anyway, saying so
        try:
            started = time.monotonic()
            st = status(agent)
            check(st["state"] != "running" and st["message"], f"a hung server: {st}")
            check(time.monotonic() - started < 30, "status hung with the server")
        finally:
            os.kill(pid, signal.SIGCONT)
        harness.wait_for(lambda: status(agent)["state"] == "running", 20, "running again")


def test_a_hung_server_never_stalls_the_heartbeat():
    """The agent's heartbeats carry status; with mongod stopped by SIGSTOP they keep coming,
    say the server does not answer, and the instance stays connected."""
    with harness.Env(prefix="mongodb-hung-") as env:
        server = MongoServer(env, 0).start()
        control = ControlPlane(env)
        agent = control.agent("mongodb", server.settings, "hung-db", heartbeat_ms=500)
        control.start()
        agent.serve()
        control.wait_connected("hung-db")
        harness.wait_for(lambda: control.instance("hung-db").get("state") == "running", 20, "a running heartbeat")
        pid = server.pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            info = harness.wait_for(lambda: (lambda i: i if i.get("state") == "starting" else None)(
                control.instance("hung-db")), 20, "a heartbeat saying mongod does not answer")
            check("not answering" in info.get("message", ""), f"the heartbeat's message: {info}")
            seqs = []
            for _ in range(8):
                info = control.instance("hung-db")
                # the control plane's own rule: stale after three missed intervals
                check(info["connected"] and 0 <= info["last_heartbeat_ms_ago"] < 3 * 500,
                      f"heartbeats stalled while mongod hangs: {info}")
                seqs.append(info["seq"])
                time.sleep(0.5)
            check(seqs[-1] >= seqs[0] + 3, f"heartbeats did not keep coming: {seqs}")
        finally:
            os.kill(pid, signal.SIGCONT)
        harness.wait_for(lambda: control.instance("hung-db").get("state") == "running", 20, "running again")


def test_configuration_live_pending_and_reset():
    with harness.Env(prefix="mongodb-config-") as env:
        server = MongoServer(env, 0).start()
        agent = harness.Agent(env, "mongodb", server.settings)
        schema = {p["name"]: p for p in agent.must("config.schema")["parameters"]}
        check(schema["cursorTimeoutMillis"]["dynamic"] is True and schema["maxSessions"]["dynamic"] is False and
              schema["net.maxIncomingConnections"]["dynamic"] is False, "dynamic flags from getParameter showDetails")
        r = agent.must("config.apply", {"values": {"logLevel": "1", "notablescan": "on", "maxSessions": "5000",
                                                   "operationProfiling.slowOpThresholdMs": "250"}})
        check(sorted(r["applied"]) == ["logLevel", "notablescan"] and
              sorted(r["pending_restart"]) == ["maxSessions", "operationProfiling.slowOpThresholdMs"], f"{r.result}")
        admin = server.admin()
        got = admin.admin.command("getParameter", 1, logLevel=1, notablescan=1, maxSessions=1)
        check(got["logLevel"] == 1 and got["notablescan"] is True and got["maxSessions"] == 1000000,
              f"live values now, startup ones later: {got}")
        admin.close()
        r = agent.call("config.apply", {"values": {"logLevel": "9"}})
        check(r.code == "invalid_argument", f"a value outside the schema: {r}")
        agent.must("restart")
        admin = server.admin()
        got = admin.admin.command("getParameter", 1, logLevel=1, maxSessions=1)
        opts = admin.admin.command("getCmdLineOpts")["parsed"]
        check(got == {"logLevel": 1, "maxSessions": 5000, "ok": 1.0} and
              opts["operationProfiling"]["slowOpThresholdMs"] == 250, f"after the restart: {got} {opts}")
        admin.close()
        shown = agent.must("config.show", {"names": ["maxSessions", "operationProfiling.slowOpThresholdMs"]})
        check(shown["values"] == {"maxSessions": "5000", "operationProfiling.slowOpThresholdMs": "250"},
              f"config.show reads back: {shown.result}")
        r = agent.must("config.reset")
        check(sorted(r["applied"]) == ["logLevel", "notablescan"], f"reset: {r.result}")
        agent.must("restart")
        admin = server.admin()
        got = admin.admin.command("getParameter", 1, logLevel=1, notablescan=1, maxSessions=1)
        check(got == {"logLevel": 0, "notablescan": False, "maxSessions": 1000000, "ok": 1.0}, f"after reset: {got}")
        try:
            admin.admin.command("getCmdLineOpts")["parsed"]["operationProfiling"]
            raise AssertionError("the startup option is still set after reset")
        except KeyError:
            pass
        admin.close()


def test_settings_are_checked_when_the_plugin_opens():
    with harness.Env(prefix="mongodb-settings-") as env:
        server = MongoServer(env, 0)
        for extra, words in (({"no_such_setting": "1"}, "no_such_setting"),
                             ({"dbpath": "relative/path"}, "dbpath"),
                             ({"admin_user": "trove_replicator"}, "must differ"),
                             ({"replica_set": "bad/name"}, "replica set name")):
            agent = harness.Agent(env, "mongodb", dict(server.settings, **extra), instance_id="x" + str(len(words)))
            r = agent.call("status")
            check(not r.ok and words in (r.message + r.stderr), f"{extra}: {r.code} {r.message} {r.stderr[-300:]}")
        settings = dict(server.settings)
        del settings["admin_password"]
        r = harness.Agent(env, "mongodb", settings, instance_id="nopw").call("status")
        check(not r.ok and "admin_password" in (r.message + r.stderr), f"no admin_password: {r}")


if __name__ == "__main__":
    harness.run_tests(globals())
