"""A backup interrupted by SIGKILL of the agent is never reported complete and
leaves no piece that looks like a good backup; the next backup succeeds and
restores. Runs on a real MariaDB with enough data that the backup takes a
moment."""
import os
import signal
import subprocess

import harness
from harness import check
from mysql_server import MysqlServer, agent_for


def fill(server, mb):
    """About `mb` MB of hex text from RAND(): it compresses only ~2:1, so the
    backup takes long enough to be interrupted."""
    server.admin_sql("CREATE DATABASE IF NOT EXISTS bulk")
    server.admin_sql("CREATE TABLE IF NOT EXISTS bulk.t (id INT AUTO_INCREMENT PRIMARY KEY, pad LONGTEXT) ENGINE=InnoDB")
    for _ in range(mb):
        server.admin_sql("SET SESSION group_concat_max_len = 4194304; "
                         "INSERT INTO bulk.t (pad) SELECT GROUP_CONCAT(MD5(RAND()) SEPARATOR '') FROM mysql.seq_1_to_32768")


def test_sigkill_mid_backup_leaves_it_incomplete_and_the_next_backup_works():
    with harness.Env() as env:
        server = MysqlServer(env).start()
        fill(server, 160)
        agent = agent_for(env, server, "interrupt-1")
        argv = [harness.agent_binary(), "-c", agent.config, "call", "backup.create",
                '{"kind": "full", "backup_id": "doomed"}']
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        partial = os.path.join(agent.backup_dir, "doomed.zst.partial")
        harness.wait_for(lambda: os.path.exists(partial) and os.path.getsize(partial) > 1 << 20, 60,
                         "backup bytes on disk")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check(not os.path.exists(os.path.join(agent.backup_dir, "doomed.zst")),
              "a killed backup left a piece under its final name")
        # The orphaned mariadb-backup exits once it notices its closed stdout.
        harness.wait_for(lambda: not harness.processes_with(os.path.join(server.run_dir, f".trove-{proc.pid}-")),
                         30, "the killed agent's mariadb-backup to exit")

        shown = agent.must("backup.show", {"backup_id": "doomed"})["backup"]
        check(shown["state"] == "failed" and "interrupted" in shown.get("error", ""),
              f"the interrupted backup is reported as {shown['state']}: {shown}")
        check(not os.path.exists(partial), "the partial piece was not cleaned up")
        r = agent.call("backup.restore", {"backup_id": "doomed"})
        check(not r.ok and r.code == "failed_precondition", f"restoring an interrupted backup: {r}")

        good = agent.must("backup.create", {"kind": "full", "backup_id": "good"})["backup"]
        check(good["state"] == "complete" and good["size"] > 100 << 20, f"the next backup: {good}")
        count = server.scalar("SELECT COUNT(*) FROM bulk.t")
        server.admin_sql("DELETE FROM bulk.t")
        agent.must("backup.restore", {"backup_id": "good"})
        check(server.scalar("SELECT COUNT(*) FROM bulk.t") == count, "the restored data does not match")


if __name__ == "__main__":
    harness.run_tests(globals())
