#!/bin/bash
# Runs one fuzz target (or all) for longer than the test suite does:
#   tools/fuzz.sh TARGET [SECONDS]     fuzz TARGET for SECONDS (default 600)
#   tools/fuzz.sh all [SECONDS]        every target in turn, SECONDS each
#   tools/fuzz.sh merge TARGET         add the kept inputs that reach new
#                                      coverage to the seeds in tests/fuzz/TARGET/
#   tools/fuzz.sh list                 the targets
# New inputs are kept in $BUILD/fuzz-corpus/TARGET between runs; a crashing
# input is saved in $BUILD/fuzz-artifacts/TARGET/. BUILD defaults to build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-fuzz}
SRC=tests/fuzz

targets() {
  for f in "$SRC"/fuzz_*.c; do
    t=${f##*/fuzz_}
    t=${t%.c}
    [ -d "$SRC/$t" ] && echo "$t"
  done
}

build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" >/dev/null
  fi
  if ! ninja -C "$BUILD" "tests/fuzz/fuzz_$1" >/dev/null; then
    echo "cannot build fuzz_$1 in $BUILD (is its plugin built, and clang installed?)" >&2
    exit 1
  fi
}

run() {
  local t=$1 seconds=$2
  build "$t"
  mkdir -p "$BUILD/fuzz-corpus/$t"
  TROVE_BUILD=$PWD/$BUILD /usr/bin/python3 "$SRC/run_fuzzer.py" --seconds "$seconds" \
    --corpus "$BUILD/fuzz-corpus/$t" "$BUILD/tests/fuzz/fuzz_$t" "$SRC/$t"
}

case "${1:-}" in
  ""|-h|--help)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
  list)
    targets ;;
  merge)
    t=${2:?merge needs a TARGET}
    build "$t"
    /usr/bin/python3 "$SRC/run_fuzzer.py" --merge --corpus "$BUILD/fuzz-corpus/$t" \
      "$BUILD/tests/fuzz/fuzz_$t" "$SRC/$t" ;;
  all)
    rc=0
    for t in $(targets); do
      run "$t" "${2:-600}" || rc=1
    done
    exit $rc ;;
  *)
    if ! targets | grep -qx "$1"; then
      echo "no fuzz target \"$1\"; targets: $(targets | tr '\n' ' ')" >&2
      exit 2
    fi
    run "$1" "${2:-600}" ;;
esac
