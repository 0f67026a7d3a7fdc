#!/usr/bin/python3
"""Run one libFuzzer target for a bounded time and report what it did.

run_fuzzer.py [--seconds S] [--max-len N] [--corpus DIR] BINARY SEEDS
run_fuzzer.py --merge BINARY SEEDS CORPUS
run_fuzzer.py --missing REASON

Every seed runs first (regression inputs included), then the fuzzer mutates
for S seconds (TROVE_FUZZ_SECONDS, default 40). New inputs go to CORPUS (a
fresh temporary directory unless given), never into the seed directory. A
crash, a leak, a sanitizer report, a failed property, a slow input or a
runaway allocation fails the run; the input that did it is saved under
$TROVE_BUILD/fuzz-artifacts/<target>/ and its path printed. The last line
is a summary: executions, rate, corpus size, coverage, peak memory.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
# The longest input each target tries; the rest try 4096 bytes.
MAX_LEN = {"wire": 16384, "json": 16384, "cql": 16384, "conf": 8192}


def target_name(binary):
    return os.path.basename(binary).removeprefix("fuzz_")


def stats(output):
    found = {}
    for key in ("number_of_executed_units", "average_exec_per_sec", "new_units_added", "peak_rss_mb"):
        m = re.search(r"stat::%s:\s*(\d+)" % key, output)
        found[key] = int(m.group(1)) if m else None
    status = [l for l in output.splitlines() if re.match(r"#\d+\s", l)]
    last = status[-1] if status else ""
    m = re.search(r"cov: (\d+)", last)
    found["cov"] = int(m.group(1)) if m else None
    m = re.search(r"corp: (\d+)/", last)
    found["corpus"] = int(m.group(1)) if m else None
    return found


def count_files(path):
    return sum(1 for e in os.scandir(path) if e.is_file()) if os.path.isdir(path) else 0


def fuzz(args):
    name = target_name(args.binary)
    seconds = args.seconds or int(os.environ.get("TROVE_FUZZ_SECONDS", "40"))
    seeds = count_files(args.seeds)
    if seeds == 0:
        print(f"fuzz {name}: no seed corpus in {args.seeds}", file=sys.stderr)
        return 1
    build = os.environ.get("TROVE_BUILD", os.path.dirname(os.path.abspath(args.binary)))
    artifacts = os.path.join(build, "fuzz-artifacts", name)
    os.makedirs(artifacts, exist_ok=True)
    work = args.corpus or tempfile.mkdtemp(prefix=f"fuzz-{name}-")
    os.makedirs(work, exist_ok=True)
    cmd = [
        args.binary,
        f"-max_total_time={seconds}",
        f"-max_len={args.max_len}",
        "-timeout=10",              # one input taking 10 s is a failure
        "-rss_limit_mb=1024",
        "-malloc_limit_mb=64",      # an allocation sized from a claim is a failure
        "-use_value_profile=1",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        work,
        args.seeds,
    ]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace")
    finally:
        if not args.corpus:
            shutil.rmtree(work, ignore_errors=True)
    out = proc.stdout
    if proc.returncode != 0:
        print("\n".join(out.splitlines()[-80:]))
        saved = re.findall(r"Test unit written to (\S+)", out)
        where = saved[-1] if saved else f"(no input saved; see above, artifacts in {artifacts})"
        print(f"fuzz {name}: FAILED (exit {proc.returncode}); input: {where}")
        print(f"once fixed, keep that input as a regression seed in {args.seeds}/")
        return 1
    s = stats(out)
    if s["number_of_executed_units"] is None:
        print(out[-4000:])
        print(f"fuzz {name}: no statistics in libFuzzer's output")
        return 1
    print(f"fuzz {name}: {s['number_of_executed_units']} execs in {seconds} s "
          f"({s['average_exec_per_sec']}/s), corpus {s['corpus']} inputs from {seeds} seeds "
          f"({s['new_units_added']} new), coverage {s['cov']} edges, peak RSS {s['peak_rss_mb']} MB")
    return 0


def merge(args):
    """Add the inputs of CORPUS that reach new coverage to the seed corpus."""
    before = count_files(args.seeds)
    proc = subprocess.run([args.binary, "-merge=1", f"-max_len={args.max_len}", args.seeds, args.corpus],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
        return 1
    print(f"fuzz {target_name(args.binary)}: seed corpus {before} -> {count_files(args.seeds)} inputs")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--missing", help="the fuzzer cannot be built here: skip with this reason")
    p.add_argument("--seconds", type=int, default=0)
    p.add_argument("--max-len", type=int, help="longest input (default: per target, else 4096)")
    p.add_argument("--corpus", help="keep new inputs here (default: a temporary directory)")
    p.add_argument("--merge", action="store_true")
    p.add_argument("binary", nargs="?")
    p.add_argument("seeds", nargs="?")
    args = p.parse_args()
    if args.missing:
        print(f"skipped: {args.missing}")
        return SKIP
    if not args.binary or not args.seeds:
        p.error("BINARY and SEEDS are required")
    if not args.max_len:
        args.max_len = MAX_LEN.get(target_name(args.binary), 4096)
    if args.merge:
        if not args.corpus:
            p.error("--merge needs --corpus")
        return merge(args)
    return fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
