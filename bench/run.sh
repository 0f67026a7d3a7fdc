#!/bin/bash
# Runs every benchmark against BUILD (default: build). Each prints its own
# figures and the ratio against a baseline measured in the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=$(readlink -f "${1:-build}")
status=0
echo "== agent: ping round trip and idle memory"
/usr/bin/python3 bench/agent_bench.py "$BUILD" || status=1
echo "== REST: GET /instances with 1,000 instances, against a bare libmicrohttpd handler"
"$BUILD/bench/api-bench" || status=1
echo "== trove-control with 10,000 agents heartbeating at 1 Hz over CURVE, against a bare CURVE ROUTER"
bash bench/control_swarm.sh "$BUILD" || status=1
echo "== MySQL create-to-ACTIVE through the REST API, against starting the engine by hand"
/usr/bin/python3 bench/mysql_create.py "$BUILD" || status=1
for script in bench/*_backup.sh bench/*_backup.py bench/*_user_create.*; do
  [ -e "$script" ] || continue
  echo "== $script"
  case "$script" in
    *.py) /usr/bin/python3 "$script" "$BUILD" || status=1 ;;
    *) bash "$script" "$BUILD" || status=1 ;;
  esac
done
exit $status
