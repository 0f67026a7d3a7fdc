"""A switchover with the credentials-only handshake: after the replica is
promoted, replication.credentials on it (no snapshot, no backup record) gives
an account the old primary follows it with. The account can only replicate,
each call adds a password without revoking the earlier ones, and numbered
databases have no settings for database.alter to change."""
import os

import harness
from harness import check
from redis_server import RedisServer


def backup_records(agent):
    return sorted(os.listdir(agent.backup_dir))


def test_demote_follows_with_credentials_alone():
    with harness.Env(prefix="redis-switchover-") as env:
        p = RedisServer(env, 0).start()
        r = RedisServer(env, 1).start()
        ap = harness.Agent(env, "redis", p.settings, instance_id="primary")
        ar = harness.Agent(env, "redis", r.settings, instance_id="replica", backup_dir=ap.backup_dir)
        p.cli("SET", "seed", "1")
        snap = ap.must("replication.snapshot")
        ar.must("replication.attach", {"source": {"host": "127.0.0.1", "port": p.port, "user": snap["user"],
                                                  "password": snap["password"]}, "snapshot": snap["backup"]["id"]})
        ap.must("replication.read_only", {"read_only": True})
        final = ap.must("replication.position")["position"]
        ar.must("replication.wait", {"position": final, "timeout_ms": 20000})
        ar.must("replication.promote")
        r.cli("SET", "promoted", "yes")

        before = backup_records(ar)
        creds = ar.must("replication.credentials")
        check(creds["user"] == "replicator" and len(creds["password"]) >= 16, f"credentials: {creds.result}")
        check(backup_records(ar) == before, "replication.credentials stored a backup")
        out = r.cli("GET", "promoted", user=creds["user"], password=creds["password"], check=False)
        check(out.startswith("NOPERM"), f"the replication account can read data: {out!r}")

        ap.must("replication.demote", {"source": {"host": "127.0.0.1", "port": r.port, "user": creds["user"],
                                                  "password": creds["password"]}})
        check(ap.must("replication.status")["role"] == "replica", "the old primary does not follow")
        r.cli("SET", "after-switch", "yes")
        ap.must("replication.wait", {"position": ar.must("replication.position")["position"], "timeout_ms": 20000})
        check(p.cli("GET", "after-switch").strip() == "yes" and p.cli("GET", "promoted").strip() == "yes",
              "the demoted server lacks the new primary's writes")
        check(p.config_get("min-replicas-to-write") == "0", "demote left the read-only setting")

        # Each call adds a password; the one the demoted server uses keeps working.
        again = ar.must("replication.credentials")
        check(again["password"] != creds["password"], "credentials repeated a password")
        for pw in (creds["password"], again["password"]):
            check(r.cli("PING", user=again["user"], password=pw).strip() == "PONG", "a handed-out password was revoked")
        check(ap.must("replication.status")["io_state"] == "up", "the link went down when credentials were renewed")


def test_numbered_databases_have_nothing_to_alter():
    with harness.Env(prefix="redis-alter-") as env:
        server = RedisServer(env).start()
        agent = harness.Agent(env, "redis", server.settings)
        for args in ({"name": "0", "options": {"keys": "5"}}, {"name": "0", "character_set": "utf8"}):
            res = agent.call("database.alter", args)
            check(res.code == "not_supported", f"database.alter {args}: {res}")
        check(server.config_get("databases") == "16", "a refused alter changed the server")


if __name__ == "__main__":
    harness.run_tests(globals())
