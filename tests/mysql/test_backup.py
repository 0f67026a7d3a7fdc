"""Backups through the agent: full and incremental mariadb-backup streams and a
logical dump, restored into another real server; the rows, users and GTID
history come back at each point, a broken chain or a corrupted piece is
refused before the target's data is touched, and no credentials are left
behind in files or on command lines.
"""
import json
import os
import signal
import subprocess

import harness
import mysql_server
from harness import check


def insert_rows(server, tag, start, n):
    values = ",".join(f"({i}, '{tag}-{i}')" for i in range(start, start + n))
    server.admin_sql(f"INSERT INTO items VALUES {values}", database="shop")


def rows(server):
    return server.rows("SELECT id, v FROM items ORDER BY id", database="shop")


def no_leftovers(server):
    left = [n for n in os.listdir(server.run_dir) if n.startswith(".trove-") or n.startswith("backup-")]
    check(not left, f"files left in run_dir after an operation: {left}")


def kill_mid_backup(agent, server):
    """SIGKILL a `trove-agent call backup.create` while mariadb-backup streams:
    the backup is never complete, the credentials file it held is removed by the
    next operation, and the next backup works."""
    known = {b["id"] for b in agent.must("backup.list")["backups"]}
    argv = [harness.agent_binary(), "-c", agent.config, "call", "backup.create", json.dumps({"kind": "full"})]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mine = f".trove-{proc.pid}-"
    harness.wait_for(lambda: any(n.startswith(mine) for n in os.listdir(server.run_dir)), 30,
                     "the backup's credentials file")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The orphaned mariadb-backup exits once it notices its closed stdout.
    harness.wait_for(lambda: not harness.processes_with(os.path.join(server.run_dir, mine)), 30,
                     "the killed agent's mariadb-backup to exit")
    killed = [b for b in agent.must("backup.list")["backups"] if b["id"] not in known]
    check(len(killed) == 1 and killed[0]["state"] != "complete", f"the killed backup's record: {killed}")
    left = [n for n in os.listdir(server.run_dir) if n.startswith((mine, f"backup-{proc.pid}-"))]
    check(not left, f"the killed agent's credentials or work files are still there: {left}")
    again = agent.must("backup.create", {"kind": "full"})["backup"]
    check(again["state"] == "complete", f"the backup after the killed one: {again}")
    return again


def main():
    with harness.Env(prefix="mysql-backup-") as env:
        backups = env.mkdir("backups", mode=0o700)
        src = mysql_server.start_server(env, 0)
        dst = mysql_server.start_server(env, 1)
        a_src = mysql_server.agent_for(env, src, backup_dir=backups)
        a_dst = mysql_server.agent_for(env, dst, backup_dir=backups)

        a_src.must("database.create", {"name": "shop"})
        src.admin_sql("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB", database="shop")
        insert_rows(src, "first", 0, 2000)
        a_src.must("user.create", {"name": "alice", "password": "pw'1", "databases": ["shop"]})
        at_full = rows(src)
        gtid_full = src.scalar("SELECT @@gtid_binlog_pos")

        full = a_src.must("backup.create", {"kind": "full"})["backup"]
        meta = full["meta"]
        check(full["state"] == "complete" and full["kind"] == "full", f"full backup record: {full}")
        for key in ("format", "to_lsn", "from_lsn", "engine_version", "gtid_position", "binlog_file"):
            check(meta.get(key), f"full backup meta lacks {key}: {meta}")
        check(meta["gtid_position"] == gtid_full, f"meta GTID {meta['gtid_position']} != server {gtid_full}")
        no_leftovers(src)

        insert_rows(src, "second", 2000, 500)
        src.admin_sql("UPDATE items SET v = 'changed' WHERE id < 10", database="shop")
        at_inc = rows(src)
        inc = a_src.must("backup.create", {"kind": "incremental", "parent": full["id"]})["backup"]
        check(inc["parent"] == full["id"] and inc["meta"]["from_lsn"] == meta["to_lsn"],
              f"incremental starts at {inc['meta'].get('from_lsn')}, the full ends at {meta['to_lsn']}")
        check(inc["size"] < full["size"], f"the incremental ({inc['size']}) is not smaller than the full ({full['size']})")

        insert_rows(src, "third", 3000, 100)
        logical = a_src.must("backup.create", {"kind": "logical"})["backup"]
        at_logical = rows(src)
        check(logical["meta"].get("format") == "sql", f"logical meta: {logical['meta']}")
        insert_rows(src, "after", 4000, 10)   # after every backup: never restored
        r = a_src.call("backup.create", {"kind": "incremental", "parent": logical["id"]})
        check(not r.ok and r.code == "invalid_argument", f"an incremental on a logical parent: {r}")

        # Restore the full backup into another server.
        a_dst.must("database.create", {"name": "dst_only"})
        a_dst.must("backup.restore", {"backup_id": full["id"]})
        check(a_dst.must("status")["state"] == "running", "the target is not running after restore")
        check(rows(dst) == at_full, "the full restore did not give back the rows at the full backup")
        check("dst_only" not in dst.databases(), "the target's old data survived a physical restore")
        cp = dst.sql("SELECT COUNT(*) FROM items", user="alice", password="pw'1", database="shop")
        check(cp.returncode == 0, f"the restored user cannot log in: {cp.stderr}")
        check(dst.scalar("SELECT @@gtid_binlog_pos") == gtid_full,
              f"the restored server does not continue the GTID history: {dst.scalar('SELECT @@gtid_binlog_pos')}")
        no_leftovers(dst)
        old = [n for n in os.listdir(os.path.dirname(dst.datadir)) if "trove-" in n]
        check(not old, f"restore left directories beside the datadir: {old}")

        # Full + incremental.
        a_dst.must("backup.restore", {"backup_id": inc["id"]})
        check(rows(dst) == at_inc, "full + incremental did not give back the rows at the incremental")

        # Logical.
        a_dst.must("database.create", {"name": "dst_only"})
        a_dst.must("backup.restore", {"backup_id": logical["id"]})
        check(rows(dst) == at_logical, "the logical restore did not give back the rows at the dump")
        check("dst_only" not in dst.databases(), "the logical restore kept a database the dump does not have")
        check(a_dst.must("status")["state"] == "running", "the admin account broke after a logical restore")
        cp = dst.sql("SELECT COUNT(*) FROM items", user="alice", password="pw'1", database="shop")
        check(cp.returncode == 0, f"the user from the dump cannot log in: {cp.stderr}")

        kill_mid_backup(a_src, src)

        # A corrupted piece is refused before anything is touched.
        before = rows(dst)
        pid = dst.pid()
        piece = os.path.join(backups, full["id"] + ".zst")
        with open(piece, "r+b") as f:
            f.seek(os.path.getsize(piece) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        r = a_dst.call("backup.restore", {"backup_id": inc["id"]})
        check(not r.ok and r.code == "checksum_mismatch", f"restoring a corrupted chain: {r}")
        check(dst.pid() == pid and rows(dst) == before, "a refused restore touched the target")
    print("mysql backup: passed")


if __name__ == "__main__":
    main()
