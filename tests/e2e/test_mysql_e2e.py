"""End to end, as a user meets it: trovectl -> trove-control -> trove-agent ->
mysql plugin -> a real MariaDB, with CURVE on the agent link. Outcomes are
checked with the stock `mariadb` client."""
import harness
from controlplane import ControlPlane
from harness import check
from mysql_server import MysqlServer

PASSWORD = "it's a \"quoted\" \\ pass"


def bring_up(env, extra_agents=()):
    server = MysqlServer(env).start()
    control = ControlPlane(env)
    agent = control.agent("mysql", server.settings(), "shop-db")
    others = [control.agent("mysql", server.settings(), name, allowed=allowed) for name, allowed in extra_agents]
    control.start()
    agent.serve()
    control.wait_connected("shop-db")
    return server, control, agent, others


def login_databases(server, user, password):
    """The databases `user` sees with the stock client, or None if the server
    refuses the login (any other failure raises)."""
    cp = server.sql_access("SHOW DATABASES", user, password)
    if cp.returncode != 0:
        return None
    return set(cp.stdout.split()) - {"information_schema"}


def test_user_with_hostile_password_sees_exactly_its_databases():
    with harness.Env() as env:
        server, control, _, _ = bring_up(env)
        for db in ("shop", "blog", "secret"):
            r = control.ctl("database-create", "shop-db", db)
            check(r.ok, f"database-create {db}: {r.code}: {r.message}")
        r = control.ctl("user-create", "shop-db", "alice", PASSWORD, "--databases", "shop,blog")
        check(r.ok, f"user-create: {r.code}: {r.message}")
        check(login_databases(server, "alice", PASSWORD) == {"shop", "blog"},
              f"alice sees {login_databases(server, 'alice', PASSWORD)}")
        listed = control.ctl("user-show-access", "shop-db", "alice")
        check(listed.ok and {d["name"] for d in listed["databases"]} == {"shop", "blog"}, f"show-access: {listed}")

        r = control.ctl("user-revoke-access", "shop-db", "alice", "blog")
        check(r.ok, f"revoke: {r.code}: {r.message}")
        check(login_databases(server, "alice", PASSWORD) == {"shop"}, "blog still visible after revoke-access")
        cp = server.sql_access("SELECT 1", "alice", PASSWORD, database="blog")
        check(cp.returncode != 0, "alice can still use blog after revoke-access")

        r = control.ctl("user-change-password", "shop-db", "alice", "n3w 'pw'")
        check(r.ok and login_databases(server, "alice", "n3w 'pw'") == {"shop"}, "change-password did not take")
        check(login_databases(server, "alice", PASSWORD) is None, "the old password still works")

        r = control.ctl("user-delete", "shop-db", "alice")
        check(r.ok and login_databases(server, "alice", "n3w 'pw'") is None, "a deleted user can log in")


def test_hostile_names_are_refused_and_change_nothing():
    with harness.Env() as env:
        server, control, _, _ = bring_up(env)
        check(control.ctl("database-create", "shop-db", "shop").ok, "database-create shop failed")
        hostile = "x'; DROP DATABASE shop; --"
        r = control.ctl("database-create", "shop-db", hostile)
        if r.ok:
            check(hostile in server.databases(), "a hostile database name was accepted but not stored literally")
        else:
            check(r.code == "invalid_argument" and r.message, f"hostile database name: {r.code}: {r.message}")
            check(r.exit_code == 1 and r.stderr.strip().count("\n") == 0, "the error is not one line on stderr")
        r = control.ctl("user-create", "shop-db", hostile, "pw", "--databases", "shop")
        if r.ok:
            n = server.scalar(f"SELECT COUNT(*) FROM mysql.user WHERE User = 0x{hostile.encode().hex()}")
            check(n == "1", "a hostile user name was accepted but not stored literally")
            check(login_databases(server, hostile, "pw") == {"shop"}, "the hostile user cannot use shop")
        else:
            check(r.code == "invalid_argument", f"hostile user name: {r.code}: {r.message}")
        r = control.ctl("user-create", "shop-db", "bob", "pw", "--databases", "`shop`.*; --")
        check(not r.ok, "a hostile database in a grant was accepted")
        check("shop" in server.databases(), "database shop is gone")
        r = control.ctl("database-delete", "shop-db", "mysql")
        check(r.code in ("invalid_argument", "failed_precondition") and "mysql" in server.databases(),
              f"deleting the system database mysql: {r.code}: {r.message}")


def test_database_error_reaches_the_user():
    with harness.Env() as env:
        server, control, _, _ = bring_up(env)
        r = control.ctl("database-create", "shop-db", "cs", "--character-set", "no_such_charset")
        check(not r.ok and r.code in ("invalid_argument", "datastore_error") and "no_such_charset" in r.message,
              f"a bad character set did not produce a clear error: {r.code}: {r.message}")
        check("cs" not in server.databases(), "a database was created despite the error")


def test_agent_key_must_be_in_the_allow_list():
    with harness.Env() as env:
        server, control, agent, (intruder, allowed) = bring_up(env, [("intruder", False), ("second", True)])
        intruder.serve()
        allowed.serve()
        control.wait_connected("second")
        # The intruder's handshake must have happened and failed before its
        # absence means anything: both sides say so in their logs.
        harness.wait_for(lambda: "refused agent handshake" in control.proc.log_tail(400), 20,
                         "trove-control refusing the intruder's key")
        harness.wait_for(lambda: "handshake with" in intruder.proc.log_tail(200), 20,
                         "the intruder seeing its handshake fail")
        info = control.instance("intruder")
        check(not info or not info.get("connected"), f"an agent with an unknown key was admitted: {info}")
        r = control.ctl("ping", "intruder")
        check(r.code == "unavailable", f"ping to a refused agent: {r.code}: {r.message}")
        check(control.ctl("ping", "second").ok, "the same agent code with an allowed key does not work")


def test_allowed_key_cannot_take_over_another_instance():
    with harness.Env() as env:
        server, control, agent, (impostor,) = bring_up(env, [("other", True)])
        # The impostor holds a valid key (allowed as "other") but claims "shop-db".
        with open(impostor.config) as f:
            text = f.read()
        with open(impostor.config, "w") as f:
            # ...and manages nothing: any request it executed would fail
            f.write(text.replace("instance_id = other", "instance_id = shop-db")
                    .replace(f"port = {server.port}", "port = 1"))
        impostor.serve()
        harness.wait_for(lambda: "handshake" in impostor.proc.log_tail() or "serving" in impostor.proc.log_tail(),
                         10, "impostor started")
        for i in range(5):
            r = control.ctl("database-create", "shop-db", f"db{i}")
            check(r.ok, f"requests for shop-db failed while an impostor tried its id: {r.code}: {r.message}")
        check({f"db{i}" for i in range(5)} <= server.databases(), "requests for shop-db did not reach its agent")
        check("request" not in impostor.proc.log_tail(200), "the impostor received shop-db's requests")
        check(control.instance("shop-db").get("connected"), "the real agent lost its instance")


def test_root_enable_show_disable():
    with harness.Env() as env:
        server, control, _, _ = bring_up(env)
        r = control.ctl("root-enable", "shop-db")
        check(r.ok and r.get("password"), f"root-enable: {r}")
        name, pw = r.get("name", "root"), r["password"]
        cp = server.sql("SELECT CURRENT_USER()", user=name, password=pw)
        check(cp.returncode == 0, f"root cannot log in with the returned password: {cp.stderr}")
        check(control.ctl("root-show", "shop-db").get("enabled") is True, "root-show does not say enabled")
        check(control.ctl("root-disable", "shop-db").ok, "root-disable failed")
        check(server.sql_access("SELECT 1", name, pw).returncode != 0, "root can log in after root-disable")
        check(control.ctl("root-show", "shop-db").get("enabled") is False, "root-show still says enabled")


if __name__ == "__main__":
    harness.run_tests(globals())
