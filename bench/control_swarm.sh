#!/bin/bash
# trove-control with many simulated agents (default 10,000) heartbeating at
# 1 Hz over CURVE, each admitted through the allow-list and each an instance
# of the registry (SQLite): trove-control's CPU share and resident memory in
# the steady state, against a bare CURVE ROUTER with a ZAP handler receiving
# the same traffic in the same run (the cost of ZeroMQ and CURVE alone).
# The simulator runs as several processes: the hard limit on open files is
# per process, and every agent costs a TCP connection and a socket mailbox.
# usage: bench/control_swarm.sh BUILD   (SWARM_AGENTS, SWARM_PROCS, SWARM_WINDOW_S override)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(readlink -f "${1:-build}")
N=${SWARM_AGENTS:-10000}
PROCS=${SWARM_PROCS:-5}
HEARTBEAT_MS=1000
WINDOW=${SWARM_WINDOW_S:-40}      # longer than the conductor's 30 s re-check of each instance
CONNECTS_PER_S=${SWARM_CONNECTS_PER_S:-500}   # agents arriving, all processes together
SWARM=$BUILD/bench/agent-swarm
SEED=$BUILD/tests/control/api_test_server
ulimit -n "$(ulimit -Hn)"

D=$(mktemp -d /tmp/trove-swarm.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
rss_mb() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# Waits until file $1 holds a line matching $2, for at most $3 seconds.
wait_line() {
  for _ in $(seq $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  return 1
}

start_swarm() {   # $1 endpoint
  local per=$(((N + PROCS - 1) / PROCS)) first=0
  swarm_pids=()
  while [ $first -lt "$N" ]; do
    local count=$((first + per > N ? N - first : per))
    "$SWARM" agents "$1" "$D/control.pub" "$D/agents.keys" $first $count $HEARTBEAT_MS $((CONNECTS_PER_S / PROCS)) \
      >>"$D/swarm.log" 2>&1 &
    swarm_pids+=($!)
    pids+=($!)
    first=$((first + count))
  done
}

stop_swarm() {
  kill "${swarm_pids[@]}" 2>/dev/null || true
  wait "${swarm_pids[@]}" 2>/dev/null || true
}

# CPU share (percent of one core) and RSS of pid $1 over WINDOW seconds.
measure() {
  local hz t0 t1
  hz=$(getconf CLK_TCK)
  t0=$(ticks "$1")
  sleep "$WINDOW"
  t1=$(ticks "$1")
  echo "$(awk -v d=$((t1 - t0)) -v hz="$hz" -v w="$WINDOW" 'BEGIN {printf "%.1f", d * 100 / (hz * w)}') $(rss_mb "$1")"
}

echo "== setting up $N agents: registry rows, key pairs, allow-list"
install -d -m 0700 "$D/state"
"$BUILD/control/trove-control" keygen "$D/control" >/dev/null
"$SEED" seed --registry "sqlite:$D/state/registry.db" --instances "swarm:$N" | awk '{print $3}' >"$D/ids"
"$SWARM" keys "$D/ids" "$D" >/dev/null

echo "== baseline: a bare CURVE ROUTER with a ZAP handler, receiving only"
EP=tcp://127.0.0.1:$(free_port)
"$SWARM" router "$EP" "$D/control.key" "$D/allowed_agents" "$N" >"$D/router.log" 2>&1 &
router=$!
pids+=($router)
start=$(date +%s.%N)
start_swarm "$EP"
wait_line "$D/router.log" "^connected" 300
echo "all $N agents spoke after $(elapsed "$start") s"
sleep 5
read -r base_cpu base_rss < <(measure $router)
echo "bare router: CPU ${base_cpu}% of one core, RSS ${base_rss} MB"
stop_swarm
kill $router && wait $router 2>/dev/null || true

echo "== trove-control: allow-list, registry (SQLite), conductor"
EP=tcp://127.0.0.1:$(free_port)
cat >"$D/control.conf" <<CONF
[control]
agent_endpoint = $EP
state_dir = $D/state
server_key_file = $D/control.key
allowed_agents_file = $D/allowed_agents
provisioner = none
api_listen = off
log_level = warn
CONF
# With the usual soft limit of open files: trove-control raises it itself.
(ulimit -Sn 1024; exec "$BUILD/control/trove-control" -c "$D/control.conf") >"$D/control.log" 2>&1 &
control=$!
pids+=($control)
"$SWARM" wait "ipc://$D/state/control.sock" 0 30 >/dev/null
start=$(date +%s.%N)
start_swarm "$EP"
"$SWARM" wait "ipc://$D/state/control.sock" "$N" 300 >/dev/null
echo "all $N agents connected after $(elapsed "$start") s"
sleep 5
since=$(($(date +%s%3N)))
read -r cpu rss < <(measure $control)
registry() {   # the number of instance rows matching a SQL condition
  /usr/bin/python3 - "$D/state/registry.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(db.execute(f"SELECT count(*) FROM instances WHERE {sys.argv[2]}").fetchone()[0])
PY
}
writes=$(registry "updated_at >= $since")
echo "trove-control: CPU ${cpu}% of one core, RSS ${rss} MB, instance rows written in the window: $writes"

echo "== every engine stops at once: $N status changes for the conductor"
t0=$(ticks $control)
start=$(date +%s.%N)
kill -USR1 "${swarm_pids[@]}"
for _ in $(seq 600); do
  [ "$(registry "status = 'SHUTDOWN'")" -ge "$N" ] && break
  sleep 0.5
done
echo "all $N instances SHUTDOWN in the registry $(elapsed "$start") s after the engines stopped" \
  "(heartbeats every ${HEARTBEAT_MS} ms; trove-control used $(( ($(ticks $control) - t0) * 1000 / $(getconf CLK_TCK) )) ms of CPU)"
if [ -s "$D/control.log" ]; then
  echo "trove-control logged $(wc -l <"$D/control.log") warnings or errors while the agents ran; the first:"
  head -3 "$D/control.log"
fi
stop_swarm
echo "ratio: trove-control uses $(awk -v a="$cpu" -v b="$base_cpu" 'BEGIN {printf "%.1f", a / (b > 0 ? b : 1)}')x" \
  "the bare router's CPU (goal: at most one core, 100%)"
awk -v c="$cpu" 'BEGIN {exit !(c <= 100)}'
