"""include/trove_plugin.h compiles alone as C11 and as C++ with every warning
an error, and its layout matches the ABI version it declares
(header_check.c)."""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("TROVE_SOURCE") or os.path.join(HERE, "..", "..")
FLAGS = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-I", os.path.join(SOURCE, "include")]


def compile_as(compiler, language, std):
    exe = shutil.which(compiler)
    if not exe:
        print(f"FAIL {compiler} is not installed", flush=True)
        return False
    argv = [exe, f"-std={std}", "-x", language, *FLAGS, os.path.join(HERE, "header_check.c")]
    cp = subprocess.run(argv, capture_output=True, text=True)
    print(f"{'ok  ' if cp.returncode == 0 else 'FAIL'} {' '.join(argv[:3])} trove_plugin.h", flush=True)
    if cp.returncode != 0:
        print(cp.stderr, file=sys.stderr)
    return cp.returncode == 0


ok = compile_as("cc", "c", "c11") & compile_as("c++", "c++", "c++11") & compile_as("c++", "c++", "c++17")
sys.exit(0 if ok else 1)
