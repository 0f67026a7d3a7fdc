"""replication.credentials through the agent on two real MariaDB servers: one
replication account per instance, the same from every call and from the
snapshot, kept in a 0600 file in the plugin's state directory and put back
when its password was changed behind the agent's back; a replica promoted,
and the old primary demoted with the new primary's credentials alone (no
snapshot) follows it and gets its writes. The password reaches no binary log.
"""
import glob
import os
import stat
import subprocess

import harness
import mysql_server
from harness import check


def insert_rows(server, tag, start, n):
    values = ",".join(f"({i}, '{tag}-{i}')" for i in range(start, start + n))
    server.admin_sql(f"INSERT INTO items VALUES {values}", database="shop")


def rows(server):
    return server.rows("SELECT id, v FROM items ORDER BY id", database="shop")


def can_log_in(server, creds):
    return server.sql("SELECT 1", user=creds["user"], password=creds["password"]).returncode == 0


def binlog_text(server):
    out = b""
    for path in sorted(glob.glob(os.path.join(server.datadir, "*-bin.[0-9]*"))):
        cp = subprocess.run(["mariadb-binlog", "--no-defaults", "-vv", path], capture_output=True,
                            stdin=subprocess.DEVNULL)
        check(cp.returncode == 0, f"mariadb-binlog cannot decode {path}: {cp.stderr[-500:]}")
        with open(path, "rb") as f:
            out += f.read() + cp.stdout
    return out


def test_one_account_per_instance(primary, a_pri):
    first = a_pri.must("replication.credentials").result
    check(first["user"].startswith("os_repl_") and len(first["password"]) == 32, f"credentials: {first}")
    again = a_pri.must("replication.credentials").result
    check(again == first, f"a second call handed out other credentials: {again} vs {first}")
    check(can_log_in(primary, first), "the replication account cannot log in with its password")
    grants = " ".join(r[0] for r in primary.rows(f"SHOW GRANTS FOR '{first['user']}'@'%'"))
    check("REPLICATION SLAVE" in grants and "ALL PRIVILEGES" not in grants, f"its grants: {grants}")
    kept = os.path.join(a_pri.dir, "state", "plugin", "replication.account")
    check(stat.S_IMODE(os.stat(kept).st_mode) == 0o600, f"{kept} is not 0600")
    check(first["user"] not in {u["name"] for u in a_pri.must("user.list")["users"]},
          "the replication account shows in user.list")
    r = a_pri.call("user.delete", {"name": first["user"], "host": "%"})
    check(not r.ok and r.code == "invalid_argument", f"the replication account can be deleted: {r}")

    primary.admin_sql(f"ALTER USER '{first['user']}'@'%' IDENTIFIED BY 'changed-behind-our-back'")
    check(not can_log_in(primary, first), "the changed password did not take")
    check(a_pri.must("replication.credentials").result == first, "credentials changed after a password change")
    check(can_log_in(primary, first), "replication.credentials did not put the kept password back")
    return first


def test_switchover_without_snapshot(env, primary, replica, a_pri, a_rep, creds):
    a_pri.must("database.create", {"name": "shop"})
    primary.admin_sql("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(64))", database="shop")
    insert_rows(primary, "seed", 0, 50)
    snap = a_pri.must("replication.snapshot")
    check(snap["user"] == creds["user"] and snap["password"] == creds["password"],
          f"the snapshot hands out another account: {snap['user']}")
    source = {"host": primary.host, "port": primary.port, "user": snap["user"], "password": snap["password"]}
    a_rep.must("replication.attach", {"source": source, "snapshot": snap["backup"]["id"]})
    insert_rows(primary, "live", 100, 50)
    a_pri.must("replication.read_only", {"read_only": True})
    pos = a_pri.must("replication.position")["position"]
    a_rep.must("replication.wait", {"position": pos, "timeout_ms": 30000})
    a_rep.must("replication.promote")
    check(a_rep.must("replication.status")["role"] in ("primary", "standalone"), "the replica was not promoted")

    new = a_rep.must("replication.credentials").result
    check(new["user"].startswith("os_repl_") and can_log_in(replica, new),
          f"the new primary's credentials do not log in: {new['user']}")
    a_pri.must("replication.demote", {"source": {"host": replica.host, "port": replica.port, "user": new["user"],
                                                 "password": new["password"]}})
    st = a_pri.must("replication.status").result
    check(st["role"] == "replica" and st["source_port"] == replica.port and st["io_state"] == "Yes",
          f"the demoted primary's status: {st}")
    insert_rows(replica, "after-switch", 200, 50)
    pos = a_rep.must("replication.position")["position"]
    a_pri.must("replication.wait", {"position": pos, "timeout_ms": 30000})
    check(rows(primary) == rows(replica) and len(rows(primary)) == 150,
          f"the demoted primary has {len(rows(primary))} rows, the new primary {len(rows(replica))}")
    return new


def test_no_password_in_binary_logs(primary, replica, secrets):
    for server in (primary, replica):
        text = binlog_text(server)
        check(b"os_repl_" in text, f"no replication account statement in {server.datadir}'s binary logs")
        for secret in secrets:
            check(secret.encode() not in text, f"a replication password is in {server.datadir}'s binary logs")


def main():
    with harness.Env(prefix="mysql-creds-") as env:
        backups = env.mkdir("backups", mode=0o700)
        primary = mysql_server.start_server(env, 0)
        replica = mysql_server.start_server(env, 1)
        a_pri = mysql_server.agent_for(env, primary, backup_dir=backups)
        a_rep = mysql_server.agent_for(env, replica, backup_dir=backups)
        creds = test_one_account_per_instance(primary, a_pri)
        new = test_switchover_without_snapshot(env, primary, replica, a_pri, a_rep, creds)
        test_no_password_in_binary_logs(primary, replica, [creds["password"], new["password"]])
    print("mysql credentials: passed")


if __name__ == "__main__":
    main()
