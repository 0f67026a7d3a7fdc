"""When trove-control starts, every task an earlier run left unfinished in
the registry resumes or ends failed with a reason; none hangs.

The rows are written with Python's sqlite3 into the registry of a stopped
control plane, as a control plane killed mid-task would have left them.
With no module to resume an instance.restart here (provisioner = none), it
fails at once, "interrupted by a restart of trove-control". An agent's task
(backup.create) waits for that agent's hello, which decides: the agent no
longer knows it, so it fails with that reason."""
import sqlite3
import time

import harness
from harness import check
from test_conductor_status import add_instance, hello, start, start_again
from test_task_outcomes import RawAgent

NOW = int(time.time() * 1000)


def add_task(db, task_id, instance, kind):
    con = sqlite3.connect(db, timeout=10)
    with con:
        con.execute("INSERT INTO tasks (id, tenant_id, instance_id, kind, state, progress, message, error, args,"
                    " result, owner, owner_epoch, created_at, updated_at)"
                    " VALUES (?, 't1', ?, ?, 'RUNNING', 40, 'half way', '', '{}', '{}', 'old:1', 1, ?, ?)",
                    (task_id, instance, kind, NOW, NOW))
        con.execute("UPDATE instances SET task_id = ? WHERE id = ?", (task_id, instance))
    con.close()


def task_row(db, task_id):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT state, error, owner FROM tasks WHERE id = ?", (task_id,)).fetchone()
    finally:
        con.close()


def test_unfinished_tasks_resume_or_fail_with_a_reason():
    with harness.Env() as env:
        proc, endpoint, client, db = start(env)
        add_instance(db, "rs-1")
        add_instance(db, "rs-2")
        proc.stop()
        add_task(db, "ctl-task", "rs-1", "instance.restart")
        add_task(db, "agent-task", "rs-2", "backup.create")

        proc, endpoint, client, _ = start_again(env, proc)
        row = task_row(db, "ctl-task")
        check(row[0] == "FAILED" and "interrupted by a restart of trove-control" in row[1],
              f"the control task of the earlier run: {row}")
        con = sqlite3.connect(db, timeout=10)
        holder = con.execute("SELECT task_id FROM instances WHERE id = 'rs-1'").fetchone()[0]
        con.close()
        check(holder is None, f"the failed task still holds its instance: {holder}")
        t = client.call("control.task", {"id": "ctl-task"})["result"]
        check(t["state"] == "failed" and t["ok"] is False, f"control.task: {t}")

        running = client.call("control.task", {"id": "agent-task"})["result"]
        check(running["state"] == "running" and running["percent"] == 40, f"the agent's task: {running}")
        # While it waits, the instance stays busy: one action at a time.
        check(task_row(db, "agent-task")[0] == "RUNNING", "the agent's task was ended before its agent spoke")

        agent = RawAgent(env, endpoint, "rs-2")
        hello(agent, 60000)
        harness.wait_for(lambda: task_row(db, "agent-task")[0] == "FAILED", 10, "the agent's task failed")
        row = task_row(db, "agent-task")
        check("no longer knows task agent-task" in row[1], f"reason: {row}")


def test_a_redelivered_outcome_completes_a_task_of_an_earlier_run():
    with harness.Env() as env:
        proc, endpoint, client, db = start(env)
        add_instance(db, "rs-3")
        proc.stop()
        add_task(db, "bk-old", "rs-3", "backup.create")
        proc, endpoint, client, _ = start_again(env, proc)
        agent = RawAgent(env, endpoint, "rs-3")
        # It finished while nobody listened: the hello lists it as waiting for its ack.
        agent.hello([{"id": "bk-old", "op": "backup.create", "state": "finished"}])
        agent.send({"type": "event", "id": "bk-old", "event": "task.done", "op": "backup.create", "ok": True,
                    "result": {"backup": {"id": "bk-old"}}})
        ack = agent.expect(lambda m: m.get("type") == "ack")
        check(ack is not None and ack["id"] == "bk-old", f"no ack: {ack}")
        row = task_row(db, "bk-old")
        check(row[0] == "COMPLETED", f"the registry did not record the outcome before the ack: {row}")


if __name__ == "__main__":
    harness.run_tests(globals())
