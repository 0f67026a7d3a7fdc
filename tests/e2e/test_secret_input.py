"""Passwords reach the datastore exactly as given, and never through a
command line. `trove-agent call` takes its JSON arguments from standard input
(`-`) or a file (`@FILE`), and its command line holds no password while it
runs. Passwords over the limit are refused with the same words by the agent
and by trovectl, and nothing changes; trovectl reads a password from standard
input whole and it arrives, through the control plane, at a real Redis.
Arguments that cannot be used are refused in the project's own words."""
import json
import os
import subprocess

import harness
from controlplane import ControlPlane
from harness import check
from redis_server import RedisServer

LIMIT = 1024   # INPUT_PASSWORD_MAX, common/input.h
TOO_LONG = f"password is longer than {LIMIT} bytes"


def secret(n):
    """n printable bytes that differ along their length, so any cut shows."""
    return "".join(chr(ord("!") + (i * 7) % 90) for i in range(n))


def agent_call(agent, op, arg, stdin=b""):
    """trove-agent call OP ARG (ARG as given: JSON, "-" or "@FILE")."""
    cp = subprocess.run([harness.agent_binary(), "-c", agent.config, "call", op, arg], input=stdin,
                        capture_output=True, timeout=120)
    doc = json.loads(cp.stdout.decode() or "{}")
    return harness.Result(doc, cp.stderr.decode("utf-8", "replace"), cp.returncode)


def logs_in(server, user, password):
    return server.cli("PING", user=user, password=password, check=False).strip() == "PONG"


def test_agent_call_reads_arguments_from_stdin_and_a_file():
    with harness.Env() as env:
        server = RedisServer(env).start()
        agent = harness.Agent(env, "redis", server.settings)
        password = "pw from stdin, not argv"
        proc = subprocess.Popen([harness.agent_binary(), "-c", agent.config, "call", "user.create", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # While it waits for its arguments, everyone can read its command line.
            def cmdline():
                with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                    text = f.read().replace(b"\0", b" ").decode()
                return text if "trove-agent" in text else None
            cmdline = harness.wait_for(cmdline, 10, "trove-agent's command line")
            check("call user.create -" in cmdline and password not in cmdline, f"command line: {cmdline!r}")
            args = {"name": "app", "password": password, "databases": ["app:*"]}
            out, err = proc.communicate(json.dumps(args).encode(), timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        check(proc.returncode == 0 and json.loads(out)["ok"], f"call with args on stdin: {out!r} {err!r}")
        check(logs_in(server, "app", password), "the user created from stdin cannot log in")

        path = harness.secret_file(env.path("args.json"), json.dumps({"name": "app", "password": "pw from a file"}))
        r = agent_call(agent, "user.password", "@" + path)
        check(r.ok, f"call with args from @FILE: {r}")
        check(logs_in(server, "app", "pw from a file") and not logs_in(server, "app", password),
              "the password from the file did not replace the old one")

        r = agent_call(agent, "status", "@" + env.path("missing.json"))
        check(r.code == "invalid_argument" and "cannot open" in r.message, f"a missing @FILE: {r}")
        r = agent_call(agent, "status", "-", stdin=b"{" + b" " * (16 * 1024 * 1024) + b"}")
        check(r.code == "invalid_argument" and "longer than 16777216 bytes" in r.message, f"17 MB of args: {r}")


def test_agent_refuses_what_it_cannot_take_in_its_own_words():
    with harness.Env() as env:
        server = RedisServer(env).start()
        agent = harness.Agent(env, "redis", server.settings)
        users = server.cli("ACL", "USERS")
        for n in (LIMIT + 1, 1100, 2000):
            pw = secret(n)
            for op, args, name in [
                ("user.create", {"name": "big", "password": pw, "databases": ["b:*"]}, "password"),
                ("user.password", {"name": "big", "password": pw}, "password"),
                ("root.enable", {"password": pw}, "password"),
                ("prepare", {"root_password": pw}, "root_password"),
                ("replication.attach", {"source": {"host": "127.0.0.1", "port": 1, "password": pw}}, "password"),
            ]:
                r = agent.call(op, args)
                check(r.code == "invalid_argument" and r.message == f"{name} is longer than {LIMIT} bytes",
                      f"{op} with a {n}-byte password: {r}")
        check(server.cli("ACL", "USERS") == users, "a refused password changed the users")
        check(agent.must("root.show")["enabled"] is False, "a refused root password enabled root")

        # At the limit the agent passes it on whole; the plugin's own, lower limit answers.
        r = agent.call("user.create", {"name": "big", "password": secret(LIMIT), "databases": ["b:*"]})
        check(r.code == "invalid_argument" and "1-512" in r.message, f"a {LIMIT}-byte password: {r}")

        r = agent_call(agent, "user.create", '{"name": "nul\\u0000byte", "password": "pw"}')
        check(r.code == "invalid_argument" and
              r.message.startswith("JSON arguments: strings must not contain NUL (\\u0000)"), f"a NUL escape: {r}")
        check("JSON_" not in r.message and "not valid JSON" not in r.message, f"the NUL message: {r.message}")


def test_trovectl_password_from_stdin_arrives_whole_or_not_at_all():
    with harness.Env() as env:
        server = RedisServer(env).start()
        control = ControlPlane(env)
        agent = control.agent("redis", server.settings, "cache-1")
        control.start()
        agent.serve()
        control.wait_connected("cache-1")

        longest = secret(512)   # the Redis plugin's limit
        r = control.ctl("user-create", "cache-1", "app", "-", "--databases", "app:*", stdin=longest.encode() + b"\n")
        check(r.ok, f"user-create with a 512-byte password on stdin: {r}")
        check(logs_in(server, "app", longest), "the 512-byte password does not log in")
        check(not logs_in(server, "app", longest[:-1]), "a shortened password logs in")

        users = server.cli("ACL", "USERS")
        for n in (1100, 2000):
            r = control.ctl("user-change-password", "cache-1", "app", "-", stdin=secret(n).encode() + b"\n")
            check(r.exit_code == 2 and r.stderr == f"trovectl: usage: {TOO_LONG}\n", f"a {n}-byte password: {r}")
        r = control.ctl("user-change-password", "cache-1", "app", "-", stdin=secret(LIMIT).encode() + b"\n")
        check(r.exit_code == 1 and r.code == "invalid_argument" and "1-512" in r.message,
              f"a {LIMIT}-byte password reaches the plugin and is refused there: {r}")
        check(server.cli("ACL", "USERS") == users and logs_in(server, "app", longest),
              "a refused password changed something")

        r = control.op("cache-1", "user.password", {"name": "app", "password": "via call on stdin"})
        check(r.ok and logs_in(server, "app", "via call on stdin"), f"call with JSON on stdin: {r}")


if __name__ == "__main__":
    harness.run_tests(globals())
