#!/bin/bash
# The whole test suite: installs what it needs, builds everything with
# AddressSanitizer/UndefinedBehaviorSanitizer, runs every test, and ends with
# "N passed, N failed" (", N skipped" if any). Exits non-zero on any failure:
# a failed or timed-out test, meson test itself failing, or no test log at all;
# under CI a skipped test counts as a failure (CI installs every server). The
# suite includes the fuzz targets (suite 'fuzz', TROVE_FUZZ_SECONDS each).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/packages.sh || exit 1
BUILD=${BUILD:-build-test}
if [ -f "$BUILD/build.ninja" ]; then
  meson setup --reconfigure "$BUILD" -Dasan=true >/dev/null || exit 1
else
  meson setup "$BUILD" -Dasan=true >/dev/null || exit 1
fi
ninja -C "$BUILD" || exit 1
# The log is counted below: one left by an earlier run must not be.
LOG="$BUILD/meson-logs/testlog.json"
rm -f "$LOG"
meson test -C "$BUILD" --no-rebuild --print-errorlogs --num-processes "${TEST_JOBS:-2}" "$@"
MESON_RC=$?
/usr/bin/python3 - "$LOG" "$MESON_RC" <<'PY'
import json, os, sys
log, meson_rc = sys.argv[1], int(sys.argv[2])
if not os.path.exists(log):
    print(f"meson test exited {meson_rc} and wrote no {log}: nothing was tested", file=sys.stderr)
    sys.exit(1)
passed = failed = skipped = 0
with open(log) as f:
    for line in f:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
ci = bool(os.environ.get("CI"))
if ci and skipped:
    print(f"{skipped} skipped tests count as failures under CI", file=sys.stderr)
line = f"{passed} passed, {failed + (skipped if ci else 0)} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
bad = failed or (skipped and ci)
if passed + failed + skipped == 0:
    print("no test ran", file=sys.stderr)
    bad = True
if meson_rc != 0 and not bad:
    # meson failed for a reason its log does not show as a test (a build or
    # setup error, an interrupted run): that is a failure too.
    print(f"meson test exited {meson_rc} although no test in its log failed", file=sys.stderr)
    bad = True
sys.exit(1 if bad else 0)
PY
