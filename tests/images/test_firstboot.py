"""The first-boot step (images/firstboot/trove-firstboot) against the built
agent: a missing, truncated or malformed seed (an injected line, a bad key)
is refused with one log line and nothing is written; a good seed writes
/etc/trove with the right modes, passes the agent's --check-config and,
without systemd, says how to start the agent."""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile

BUILD = os.environ["TROVE_BUILD"]
SOURCE = os.environ["TROVE_SOURCE"]
FIRSTBOOT = os.path.join(SOURCE, "images", "firstboot", "trove-firstboot")
AGENT = os.path.join(BUILD, "agent", "trove-agent")


def keypair(path):
    subprocess.run([os.path.join(BUILD, "control", "trove-control"), "keygen", path], check=True,
                   capture_output=True)
    text = open(path + ".key").read()
    return re.search(r'public-key = "(.*)"', text).group(1), re.search(r'secret-key = "(.*)"', text).group(1)


def firstboot(seed_path, etc):
    return subprocess.run([sys.executable, FIRSTBOOT, seed_path, etc, AGENT], capture_output=True, text=True,
                          timeout=60)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    work = tempfile.mkdtemp(prefix="trove-firstboot-")
    ctl_pub, _ = keypair(os.path.join(work, "control"))
    pub, sec = keypair(os.path.join(work, "agent"))
    good = {"instance_id": "db-1", "control_endpoint": "tcp://192.0.2.1:5555", "control_public_key": ctl_pub,
            "agent_public_key": pub, "agent_secret_key": sec, "plugin": "mysql",
            "plugin_dir": os.path.join(BUILD, "plugins", "mysql"),
            "datastore": {"host": "127.0.0.1", "port": 3306},
            "secrets": {"admin_password": "pw-from-the-seed"}}
    bad = {
        "missing": None,
        "truncated": "{",
        "no endpoint": {k: v for k, v in good.items() if k != "control_endpoint"},
        "injected line": dict(good, control_endpoint="tcp://192.0.2.1:5555\n[agent]"),
        "injected setting": dict(good, datastore={"port": "3306\nplaintext_dev = true"}),
        "short key": dict(good, agent_secret_key=sec[:39]),
        "path id": dict(good, instance_id="../db-1"),
    }
    for name, seed in bad.items():
        path = os.path.join(work, "seed-bad.json")
        etc = os.path.join(work, "etc-" + name.replace(" ", "-"))
        if os.path.exists(path):
            os.unlink(path)
        if seed is not None:
            with open(path, "w") as f:
                f.write(seed if isinstance(seed, str) else json.dumps(seed))
        cp = firstboot(path, etc)
        lines = cp.stderr.strip().splitlines()
        expect(cp.returncode == 1 and len(lines) == 1 and "refused" in lines[0], f"{name}: {cp.stderr!r}")
        expect(not os.path.exists(etc), f"{name}: something was written")
        print(f"ok   {name}: {lines[0]}")

    path = os.path.join(work, "seed.json")
    etc = os.path.join(work, "etc")
    with open(path, "w") as f:
        json.dump(good, f)
    cp = firstboot(path, etc)
    expect(cp.returncode == 0, f"a good seed was refused: {cp.stderr!r}")
    modes = {n: stat.S_IMODE(os.stat(os.path.join(etc, n)).st_mode) for n in os.listdir(etc)}
    expect(modes == {"agent.conf": 0o644, "agent-secrets.conf": 0o600, "agent.key": 0o600, "control.pub": 0o644},
           f"files and modes: {modes}")
    expect("pw-from-the-seed" not in open(os.path.join(etc, "agent.conf")).read(), "a secret in agent.conf")
    expect("pw-from-the-seed" not in cp.stderr, "a secret in the log")
    check = subprocess.run([AGENT, "-c", os.path.join(etc, "agent.conf"), "--check-config"], capture_output=True,
                           text=True)
    expect(check.returncode == 0 and "configuration OK (instance db-1, plugin mysql)" in check.stdout,
           f"the written configuration: {check.stderr!r}")
    print(f"ok   a good seed: {sorted(modes.items())}; {check.stdout.strip()}")
    expect("no systemd" in cp.stderr, f"without systemd it does not say so: {cp.stderr!r}")
    print("ok   without systemd it says how to start the agent")
    subprocess.run(["rm", "-rf", work])
    return 0


if __name__ == "__main__":
    sys.exit(main())
