#!/bin/bash
# Overhead of user.create through the agent against issuing the SQL directly,
# on the same MariaDB server in the same run. `trove-agent call` is one process
# per operation (start, config, plugin load, connect), so the fair baseline is
# one stock `mariadb` client process per user running the same statements
# (CREATE USER + GRANT). The SQL alone, all users through one client process,
# is printed for scale. Goal: agent / direct <= 1.2x.
#
# usage: bench/mysql_user_create.sh BUILD_DIR [USERS]
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [USERS]}" && pwd)
USERS=${2:-100}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
exec env TROVE_BUILD="$BUILD" TROVE_SOURCE="$SOURCE" PYTHONPATH="$SOURCE/tests/lib" \
  /usr/bin/python3 - "$USERS" <<'PY'
import subprocess, sys, time
import harness
import mysql_server

n = int(sys.argv[1])

with harness.Env(prefix="bench-mysql-users-") as env:
    server = mysql_server.start_server(env, 0)
    agent = mysql_server.agent_for(env, server)
    server.admin_sql("CREATE DATABASE shop")
    creds = harness.secret_file(env.path("bench-client.cnf"),
                                f'[client]\nuser={server.admin_user}\nsocket={server.socket}\n'
                                f'password="{mysql_server._escape_option(server.admin_password)}"\n')

    def sql_for(name):
        return (f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}'; "
                f"GRANT ALL PRIVILEGES ON `shop`.* TO '{name}'@'%'")

    def direct(prefix):
        for i in range(n):
            subprocess.run(["mariadb", "--defaults-file=" + creds, "-e", sql_for(f"{prefix}{i}")], check=True,
                           stdin=subprocess.DEVNULL)

    def through_agent(prefix):
        for i in range(n):
            agent.must("user.create", {"name": f"{prefix}{i}", "password": f"pw-{prefix}{i}", "databases": ["shop"]})

    def one_client(prefix):
        script = ";".join(sql_for(f"{prefix}{i}") for i in range(n))
        subprocess.run(["mariadb", "--defaults-file=" + creds, "-e", script], check=True, stdin=subprocess.DEVNULL)

    times = {"direct": [], "agent": [], "sql": []}
    for rnd in range(3):               # interleaved rounds; fresh names each time
        for name, fn in (("direct", direct), ("agent", through_agent), ("sql", one_client)):
            t = time.monotonic()
            fn(f"b{rnd}{name[0]}_")
            times[name].append(time.monotonic() - t)
    d, a, s = (min(times[k]) / n * 1000 for k in ("direct", "agent", "sql"))
    print(f"{n} users per round, best of 3 rounds, per user:")
    print(f"direct  one mariadb process per user (CREATE USER + GRANT) : {d:7.2f} ms")
    print(f"agent   one trove-agent call user.create per user          : {a:7.2f} ms")
    print(f"scale   the SQL alone, all users in one client process     : {s:7.2f} ms")
    print(f"ratio agent/direct: {a / d:.2f}x (goal <= 1.2x)")
PY
