"""The vendor kit works out of this tree: `meson install` into a staging
directory puts the header, the support library and trove-plugin.pc in place;
the example plugin's installed sources build with its Makefile using only
`pkg-config trove-plugin` (nothing else is on the pkg-config path); and the
installed trove-plugin-check, finding the installed agent and control plane
beside it, passes the plugin so built."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BUILD = os.environ["TROVE_BUILD"]


def find(root, name, want_dir=False):
    for d, dirs, files in os.walk(root):
        if (name in dirs) if want_dir else (name in files):
            return os.path.join(d, name)
    raise AssertionError(f"{name} was not installed under {root}")


def sanitized():
    """Whether BUILD is a sanitizer build: then the installed library is
    instrumented, and the out-of-tree build must link the same runtimes."""
    cp = subprocess.run(["meson", "introspect", BUILD, "--buildoptions"], capture_output=True, text=True,
                        check=True)
    return any(o["name"] == "asan" and o["value"] is True for o in json.loads(cp.stdout))


def main():
    work = tempfile.mkdtemp(prefix="trove-kit-")
    try:
        stage = os.path.join(work, "stage")
        subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", stage],
                       check=True, capture_output=True)
        pcdir = os.path.dirname(find(stage, "trove-plugin.pc"))
        check_cmd = find(stage, "trove-plugin-check")
        find(stage, "trove_plugin.h")
        find(stage, "trove_plugin_support.h")
        find(stage, "libtrove-plugin-support.a")
        src = os.path.join(work, "example")
        shutil.copytree(find(stage, "example-plugin", want_dir=True), src)
        env = dict(os.environ, PKG_CONFIG_LIBDIR=pcdir, PKG_CONFIG_PATH="", PKG_CONFIG_SYSROOT_DIR=stage)
        env.pop("TROVE_BUILD", None)   # from here on, only what was installed
        # a staged tree is not where the dynamic loader looks for libtrove-control
        env["LD_LIBRARY_PATH"] = os.path.dirname(find(stage, "libtrove-control.so.0"))
        cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "trove-plugin"], env=env, check=True,
                                capture_output=True, text=True).stdout
        print(f"ok   pkg-config --cflags --libs trove-plugin: {cflags.strip()}")
        if stage not in cflags:
            raise AssertionError("pkg-config did not point into the installed kit")
        if sanitized():
            env["CFLAGS"] = "-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer"
        make = subprocess.run(["make", "-C", src, "-j2"], env=env, capture_output=True, text=True)
        if make.returncode != 0:
            raise AssertionError(f"the example did not build out of tree:\n{make.stdout}\n{make.stderr}")
        print("ok   the example plugin builds out of tree with its Makefile")
        cp = subprocess.run([sys.executable, check_cmd, os.path.join(src, "example.so"),
                             os.path.join(src, "description.py")], env=env, capture_output=True, text=True,
                            timeout=1200)
        print(cp.stdout[-6000:])
        if cp.returncode != 0 or " 0 failed" not in cp.stdout:
            print(cp.stderr[-3000:], file=sys.stderr)
            raise AssertionError("the installed trove-plugin-check did not pass the out-of-tree plugin")
        print("ok   the installed trove-plugin-check passes it")
    finally:
        if os.environ.get("TROVE_KEEP_TMP"):
            print(f"keeping {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


main()
