"""trove-plugin-check fails a plugin that is broken, naming the check: the
example plugin built three times, each with one deliberate fault (a user
who can still log in after delete, a restore whose data differs, a replica
that never sees the write). Every other check before the named one passes,
so the failure is the fault's and not the setup's."""
import os
import subprocess
import sys

BUILD = os.environ["TROVE_BUILD"]
SOURCE = os.environ["TROVE_SOURCE"]
CHECK = os.path.join(SOURCE, "kit", "plugin-check", "trove-plugin-check")
DESCRIPTION = os.path.join(SOURCE, "plugins", "example", "description.py")

CASES = [
    ("broken_user_delete", "access", "FAIL access: a deleted user can no longer log in"),
    ("broken_restore", "backup", "FAIL backup: restoring the full backup on another server gives back exactly "
                                 "its rows -- the restored data differs"),
    ("broken_replication", "replication", "FAIL replication: the replica sees the source's writes"),
]


def run(variant, part, expected):
    plugin = os.path.join(BUILD, "tests", "kit", variant, "example.so")
    cp = subprocess.run([sys.executable, CHECK, "--parts", part, plugin, DESCRIPTION], capture_output=True,
                        text=True, timeout=600, env=dict(os.environ, TROVE_CHECK_LOGS="0"))
    fails = [line for line in cp.stdout.splitlines() if line.startswith("FAIL")]
    problems = []
    if cp.returncode != 1:
        problems.append(f"exit status {cp.returncode}, not 1")
    if len(fails) != 1 or not fails[0].startswith(expected):
        problems.append(f"expected one failure starting {expected!r}, got {fails}")
    if not any(line.startswith("PASS " + part) for line in cp.stdout.splitlines()):
        problems.append("no check of the part passed before the failure")
    print(f"{'ok  ' if not problems else 'FAIL'} {variant}: {fails[0] if fails else 'no failure reported'}")
    for p in problems:
        print(f"     {p}")
    if problems:
        print(cp.stdout[-4000:], cp.stderr[-2000:], file=sys.stderr)
    return not problems


sys.exit(0 if all([run(*case) for case in CASES]) else 1)
