"""The Debian packages: dpkg-buildpackage builds every package of
debian/control from a copy of the tree (tests off, as in any package build),
lintian finds no error in them, each carries what it must (binaries, units,
/etc/trove with a 0600 secrets file, a plugin per datastore depending on its
client library), and the agent unit's ExecStartPre, run as written against
the packaged files, refuses the shipped empty configuration with one clear
line, and accepts a complete one."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.environ["TROVE_SOURCE"]
PLUGIN_LIBS = {"mysql": "libmariadb3", "postgres": "libpq5", "redis": "libhiredis", "mongodb": "libmongoc",
               "cassandra": "libc6"}


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def copy_tree(dst):
    """The tree's files (tracked and untracked, not ignored), without build dirs."""
    git = shutil.which("git")
    cp = run([git, "-C", SOURCE, "ls-files", "-z", "-co", "--exclude-standard"]) if git else None
    if cp is None or cp.returncode != 0:   # no git, or a tree that is not a checkout
        shutil.copytree(SOURCE, dst, ignore=shutil.ignore_patterns("build*", ".git", "__pycache__"))
        return
    os.makedirs(dst)
    for rel in cp.stdout.split("\0"):
        if not rel or rel.split("/")[0].startswith("build") or not os.path.exists(os.path.join(SOURCE, rel)):
            continue
        os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(os.path.join(SOURCE, rel), os.path.join(dst, rel), follow_symlinks=False)


def expected_packages(src):
    with open(os.path.join(src, "debian", "control")) as f:
        return re.findall(r"^Package:\s*(\S+)", f.read(), re.M)


def build(work):
    src = os.path.join(work, "trove")
    copy_tree(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")
    for k in ("TROVE_BUILD", "TROVE_SOURCE", "ASAN_OPTIONS", "UBSAN_OPTIONS", "MAKEFLAGS"):
        env.pop(k, None)
    cp = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env)
    if cp.returncode != 0:
        raise AssertionError(f"dpkg-buildpackage failed:\n{cp.stdout[-6000:]}\n{cp.stderr[-4000:]}")
    print("ok   dpkg-buildpackage -us -uc -b")
    debs = {}
    for name in os.listdir(work):
        m = re.match(r"^([a-z0-9.+-]+)_([^_]+)_(amd64|all|[a-z0-9]+)\.deb$", name)
        if m and not m.group(1).endswith("-dbgsym"):
            debs[m.group(1)] = os.path.join(work, name)
    want = expected_packages(src)
    missing = [p for p in want if p not in debs]
    if missing:
        raise AssertionError(f"packages not produced: {missing} (produced: {sorted(debs)})")
    for p in ("trove-agent", "trove-control", "trovectl", "libtrove-plugin-dev", "trove-plugin-mysql",
              "trove-plugin-postgres", "trove-plugin-redis", "trove-plugin-mongodb", "trove-plugin-cassandra"):
        if p not in want:
            raise AssertionError(f"debian/control has no package {p}")
    print(f"ok   every package produced: {', '.join(want)}")
    return debs


def lintian(work):
    changes = [n for n in os.listdir(work) if n.endswith(".changes")]
    cp = run(["lintian", "--tag-display-limit", "0", os.path.join(work, changes[0])])
    errors = [line for line in cp.stdout.splitlines() if line.startswith("E:")]
    if errors:
        raise AssertionError("lintian reports errors:\n" + "\n".join(errors))
    warnings = sum(1 for line in cp.stdout.splitlines() if line.startswith("W:"))
    print(f"ok   lintian: no errors ({warnings} warnings)")


def contents(deb):
    """{path: (mode string, owner)} of a .deb, paths without the leading '.'."""
    out = {}
    for line in run(["dpkg-deb", "-c", deb], check=True).stdout.splitlines():
        f = line.split()
        out[f[5][1:]] = (f[0], f[1])
    return out


def field(deb, name):
    return run(["dpkg-deb", "-f", deb, name], check=True).stdout.strip()


def control_file(deb, name):
    cp = run(["dpkg-deb", "--info", deb, name])
    return cp.stdout if cp.returncode == 0 else ""


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def check_contents(debs):
    agent = contents(debs["trove-agent"])
    expect(agent.get("/usr/bin/trove-agent", ("",))[0] == "-rwxr-xr-x", "trove-agent lacks /usr/bin/trove-agent")
    expect("/lib/systemd/system/trove-agent.service" in agent, "trove-agent lacks its unit")
    expect(agent.get("/etc/trove/agent-secrets.conf") == ("-rw-------", "root/root"),
           f"agent-secrets.conf is {agent.get('/etc/trove/agent-secrets.conf')}, not 0600 root")
    expect(agent.get("/etc/trove/agent.conf", ("",))[0] == "-rw-r--r--", "trove-agent lacks /etc/trove/agent.conf")
    conffiles = control_file(debs["trove-agent"], "conffiles").split()
    expect({"/etc/trove/agent.conf", "/etc/trove/agent-secrets.conf"} <= set(conffiles),
           f"agent configuration is not conffiles: {conffiles}")
    expect("adduser --system" in control_file(debs["trove-agent"], "postinst"), "trove-agent's postinst makes no user")
    print("ok   trove-agent: binary, unit, /etc/trove (secrets 0600 root) as conffiles, system user")

    control = contents(debs["trove-control"])
    for path in ("/usr/bin/trove-control", "/lib/systemd/system/trove-control.service", "/etc/trove/trove-control.conf"):
        expect(path in control, f"trove-control lacks {path}")
    postinst = control_file(debs["trove-control"], "postinst")
    for needle in ("adduser --system", "keygen /etc/trove/control", "chmod 0600 /etc/trove/control.key"):
        expect(needle in postinst, f"trove-control's postinst lacks '{needle}'")
    print("ok   trove-control: binary, unit, configuration; postinst makes the user and a 0600 key pair")

    expect("/usr/bin/trovectl" in contents(debs["trovectl"]), "trovectl lacks its binary")
    dev = contents(debs["libtrove-plugin-dev"])
    for suffix in ("/trove_plugin.h", "/trove-plugin.pc", "/libtrove-plugin-support.a", "/trove-plugin-check"):
        expect(any(p.endswith(suffix) for p in dev), f"libtrove-plugin-dev lacks *{suffix}")
    print("ok   trovectl, libtrove-plugin-dev (header, .pc, support library, trove-plugin-check)")

    for name, lib in PLUGIN_LIBS.items():
        pkg = f"trove-plugin-{name}"
        files = contents(debs[pkg])
        expect(any(p.endswith(f"/trove/plugins/{name}.so") for p in files), f"{pkg} lacks {name}.so")
        depends = field(debs[pkg], "Depends")
        expect(lib in depends and "trove-agent" in depends, f"{pkg} Depends: {depends}")
        print(f"ok   {pkg}: {name}.so, Depends: {depends}")


def exec_start_pre(root):
    with open(os.path.join(root, "lib/systemd/system/trove-agent.service")) as f:
        lines = [line.split("=", 1)[1].strip() for line in f if line.startswith("ExecStartPre=")]
    expect(len(lines) == 1 and "--check-config" in lines[0], f"the agent unit's ExecStartPre is {lines}")
    return shlex.split(lines[0])


def run_check(root, argv, config):
    """ExecStartPre as written, with every absolute path inside root and the
    configuration file replaced by config."""
    args = [config if a == "/etc/trove/agent.conf" else (root + a if a.startswith("/") else a) for a in argv]
    return run(args, timeout=30)


def check_unit_refuses(debs, work):
    root = os.path.join(work, "root")
    for p in ("trove-agent", "trove-plugin-mysql", "trove-control"):
        run(["dpkg-deb", "-x", debs[p], root], check=True)
    argv = exec_start_pre(root)
    etc = os.path.join(root, "etc/trove")
    conf = os.path.join(etc, "agent.conf")

    cp = run_check(root, argv, conf)
    expect(cp.returncode != 0, f"the shipped (empty) configuration was accepted: {cp.stdout}")
    expect("agent.conf" in cp.stderr and "instance_id is missing" in cp.stderr and len(cp.stderr.splitlines()) == 1,
           f"the refusal of an empty configuration is not one clear line: {cp.stderr!r}")
    print(f"ok   ExecStartPre refuses the packaged empty configuration: {cp.stderr.strip()}")

    cp = run_check(root, argv, os.path.join(etc, "absent.conf"))
    expect(cp.returncode != 0 and "absent.conf: cannot open" in cp.stderr, f"a missing file: {cp.stderr!r}")
    print(f"ok   ExecStartPre refuses a missing configuration: {cp.stderr.strip()}")

    keygen = os.path.join(root, "usr/bin/trove-control")
    run([keygen, "keygen", os.path.join(etc, "control")], check=True)
    run([keygen, "keygen", os.path.join(etc, "agent")], check=True)
    plugin_dir = os.path.dirname(next(os.path.join(d, "mysql.so") for d, _, fs in os.walk(root) if "mysql.so" in fs))
    secrets = os.path.join(etc, "agent-secrets.conf")
    with open(secrets, "a") as f:
        f.write("[datastore]\nadmin_password = s3cret-for-the-check\n")
    os.chmod(secrets, 0o600)
    good = (f"[agent]\ninstance_id = db-7\ncontrol_endpoint = tcp://192.0.2.1:5555\nplugin = mysql\n"
            f"plugin_dir = {plugin_dir}\nstate_dir = {work}/state\nsecrets_file = {secrets}\n"
            f"[curve]\nserver_public_key_file = {etc}/control.pub\nagent_key_file = {etc}/agent.key\n")
    malformed = os.path.join(etc, "malformed.conf")
    with open(malformed, "w") as f:
        f.write(good.replace("instance_id = db-7", "instance_id = ../db-7"))
    cp = run_check(root, argv, malformed)
    expect(cp.returncode != 0 and "instance_id is invalid" in cp.stderr, f"a malformed instance id: {cp.stderr!r}")
    print(f"ok   ExecStartPre refuses a malformed configuration: {cp.stderr.strip()}")

    with open(conf, "w") as f:
        f.write(good)
    cp = run_check(root, argv, conf)
    expect(cp.returncode == 0 and "configuration OK (instance db-7, plugin mysql)" in cp.stdout,
           f"a complete configuration was refused: {cp.stdout!r} {cp.stderr!r}")
    expect("s3cret" not in cp.stdout + cp.stderr, "the check printed a secret")
    print(f"ok   ExecStartPre accepts a complete configuration: {cp.stdout.strip()}")

    os.chmod(os.path.join(etc, "agent.key"), 0o644)
    cp = run_check(root, argv, conf)
    expect(cp.returncode != 0 and "agent.key" in cp.stderr, f"a readable key file was accepted: {cp.stderr!r}")
    print(f"ok   ExecStartPre refuses a key pair others can read: {cp.stderr.strip()}")


def main():
    for tool in ("dpkg-buildpackage", "dh", "lintian"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} is not installed (tools/packages.sh installs it)")
            return 77
    work = tempfile.mkdtemp(prefix="trove-deb-")
    try:
        debs = build(work)
        lintian(work)
        check_contents(debs)
        check_unit_refuses(debs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
