"""The registry test suite against a real PostgreSQL 15 server, and the same
scenario on SQLite and PostgreSQL giving the same dump.

Starts its own server (initdb + pg_ctl on a free loopback port, as the
postgres system user), always stopped on exit, and runs the test_registry
program with TROVE_REGISTRY_URL naming it. The password travels in
PGPASSWORD, never in argv or the URL.

usage: test_registry_pg.py PATH/TO/test_registry [cmocka test filter]
"""
import os
import subprocess
import sys

import harness
import postgres_server


def run_suite(binary, env, what, timeout=600):
    r = subprocess.run([binary], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    print(f"---- {what} ----\n{out}")
    if r.returncode != 0:
        raise AssertionError(f"{what}: test_registry exited {r.returncode}")


def main():
    binary = os.path.abspath(sys.argv[1])
    if not postgres_server.available():
        print("PostgreSQL 15 is not installed: skipping")
        return 77
    with harness.Env(prefix="trove-registry-pg-") as env:
        srv = postgres_server.new_server(env)
        base = dict(os.environ)
        base.update({"PGPASSWORD": srv.admin_password, "PGCONNECT_TIMEOUT": "10"})
        base.pop("PGPASSFILE", None)
        # The suite is plain single-connection code (no libzmq threads): check leaks too.
        base["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
        if len(sys.argv) > 2:
            base["TROVE_TEST_FILTER"] = sys.argv[2]

        pg_env = dict(base)
        pg_env["TROVE_REGISTRY_URL"] = (f"host={srv.host} port={srv.port} user={postgres_server.ADMIN_USER} "
                                        "dbname=postgres sslmode=disable gssencmode=disable")
        pg_env["TROVE_REGISTRY_DUMP_OUT"] = env.path("dump.postgresql")
        run_suite(binary, pg_env, "postgresql (keyword connection string)")

        # The URI form names the same server.
        uri_env = dict(pg_env)
        uri_env["TROVE_REGISTRY_URL"] = (f"postgresql://{postgres_server.ADMIN_USER}@{srv.host}:{srv.port}/postgres"
                                         "?sslmode=disable&gssencmode=disable")
        uri_env["TROVE_TEST_FILTER"] = "open_*"
        uri_env.pop("TROVE_REGISTRY_DUMP_OUT")
        run_suite(binary, uri_env, "postgresql (URI)")

        sq_env = dict(base)
        sq_env.pop("TROVE_REGISTRY_URL", None)
        sq_env["TROVE_TEST_FILTER"] = "golden_dump"
        sq_env["TROVE_REGISTRY_DUMP_OUT"] = env.path("dump.sqlite")
        run_suite(binary, sq_env, "sqlite (golden dump)")

        with open(env.path("dump.postgresql"), encoding="utf-8") as f:
            pg_dump = f.read()
        with open(env.path("dump.sqlite"), encoding="utf-8") as f:
            sq_dump = f.read()
        if not pg_dump or pg_dump != sq_dump:
            raise AssertionError("the same scenario dumps differently on the two backends:\n"
                                 f"--- postgresql\n{pg_dump}\n--- sqlite\n{sq_dump}")
        print(f"dumps identical on both backends ({len(pg_dump.splitlines())} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
