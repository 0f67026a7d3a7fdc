"""The agent loads plugins only from its plugin directory, refuses a plugin
built for another ABI major (naming both numbers), whether the next major or
a 1.x plugin, and refuses plugin files that others could have replaced."""
import os
import shutil

import harness
from harness import check

FIXTURES = harness.build_path("tests", "agent")


def agent_call(env, plugin, plugin_dir, op="ping"):
    agent = harness.Agent(env, plugin, {}, instance_id="loader")
    # point the agent at the fixture directory
    with open(agent.config) as f:
        text = f.read()
    text = text.replace(f"plugin_dir = {harness.plugin_dir(plugin)}", f"plugin_dir = {plugin_dir}")
    with open(agent.config, "w") as f:
        f.write(text)
    return agent.call(op)


def agent_major():
    """The agent's own ABI major, from trove-agent --version ("... (plugin ABI 2.0)")."""
    import subprocess
    out = subprocess.run([harness.agent_binary(), "--version"], capture_output=True, text=True).stdout
    return int(out.rsplit("ABI ", 1)[1].split(".")[0])


def test_next_abi_major_is_refused_with_both_numbers():
    mine = agent_major()
    with harness.Env() as env:
        r = agent_call(env, "nextmajor", FIXTURES)
        check(not r.ok, f"a plugin for ABI major {mine + 1} was loaded: {r}")
        check(f"ABI major {mine + 1}" in r.message and f"ABI major {mine}" in r.message,
              f"message must name both ABI majors: {r.message!r}")


def test_v1_plugin_is_refused_with_both_numbers():
    mine = agent_major()
    with harness.Env() as env:
        r = agent_call(env, "oldmajor", FIXTURES)
        check(not r.ok and r.code == "invalid_argument", f"a plugin for ABI major 1 was loaded: {r}")
        check("ABI major 1," in r.message and f"ABI major {mine}" in r.message,
              f"message must name both ABI majors: {r.message!r}")


def test_plugin_writable_by_others_is_refused():
    with harness.Env() as env:
        d = env.mkdir("plugins")
        shutil.copy(os.path.join(FIXTURES, "nextmajor.so"), os.path.join(d, "nextmajor.so"))
        os.chmod(os.path.join(d, "nextmajor.so"), 0o666)
        r = agent_call(env, "nextmajor", d)
        check(not r.ok and "writable by group or others" in r.message, f"group-writable plugin not refused: {r}")


def test_plugin_name_cannot_leave_the_directory():
    with harness.Env() as env:
        r = agent_call(env, "../nextmajor", FIXTURES)
        check(not r.ok and r.code == "invalid_argument" and "plugin name" in r.message,
              f"a path-like plugin name was not refused: {r}")


def test_missing_plugin_names_the_path():
    with harness.Env() as env:
        r = agent_call(env, "nosuchplugin", FIXTURES)
        check(not r.ok and "nosuchplugin.so" in r.message, f"missing plugin error is unclear: {r}")


if __name__ == "__main__":
    harness.run_tests(globals())
