#!/bin/bash
# The main job on one machine: installs what it needs, builds, brings up
# trove-control as a service on its embedded defaults (SQLite registry, local
# provisioner, REST API on loopback with a generated token), creates a MySQL
# instance with a database and a user through trovectl, connects to it with the
# stock mariadb client, and leaves the service running.
#   bash tools/demo.sh         start (after stopping and removing an earlier demo)
#   bash tools/demo.sh stop    stop trove-control, the agents and engines; unmount the volumes
# Everything lives under $TROVE_DEMO_DIR (default /var/lib/trove-demo); BUILD
# names the build directory (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
DEMO=${TROVE_DEMO_DIR:-/var/lib/trove-demo}
BUILD=${BUILD:-build}
TENANT=demo

say() { printf '\n== %s\n' "$*"; }

# A process is gone: wait up to $2 tenths of a second for pid $1 to exit.
wait_gone() {
  local pid=$1 tenths=$2
  for _ in $(seq "$tenths"); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# SIGTERM, then SIGKILL after $2 tenths of a second, to the pid in file $1.
stop_pidfile() {
  local file=$1 tenths=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  kill -TERM "$pid" 2>/dev/null || return 0
  wait_gone "$pid" "$tenths" || kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 50 || true
}

stop_demo() {
  [ -d "$DEMO" ] || { echo "nothing to stop: $DEMO does not exist"; return 0; }
  say "stopping trove-control, then each instance's agent and engine"
  stop_pidfile "$DEMO/control.pid" 300
  local inst
  for inst in "$DEMO"/instances/*/; do
    [ -f "$inst/agent.conf" ] || continue
    stop_pidfile "$inst/agent.pid" 150
    # The engine is stopped by its own plugin, the way the agent stops it.
    if [ -x "$DEMO/bin/trove-agent" ]; then
      "$DEMO/bin/trove-agent" -c "$inst/agent.conf" call stop >/dev/null 2>&1 </dev/null || true
    fi
    if mountpoint -q "$inst/vol"; then
      umount "$inst/vol" 2>/dev/null || umount -l "$inst/vol"
    fi
    echo "stopped $(basename "$inst")"
  done
  echo "stopped; the data stays in $DEMO until the next 'bash tools/demo.sh'"
}

if [ "${1:-}" = stop ]; then
  stop_demo
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: bash tools/demo.sh [stop]" >&2
  exit 2
fi

say "packages (tools/packages.sh)"
bash tools/packages.sh

say "building into $BUILD"
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" >/dev/null
fi
ninja -C "$BUILD" >/dev/null
B=$SRC/$BUILD

if [ -d "$DEMO" ]; then
  stop_demo
  rm -rf "$DEMO"
fi
install -d -m 0755 "$DEMO"
install -d -m 0700 "$DEMO/state"
install -d -m 0711 "$DEMO/instances"
# trove-control and trove-agent are run from the build tree; `stop` needs the agent
# even when the build tree changes afterwards.
install -d -m 0755 "$DEMO/bin"
ln -sf "$B/agent/trove-agent" "$DEMO/bin/trove-agent"

free_port() {   # the given port if nothing listens on it, else any free one
  /usr/bin/python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}
API_PORT=$(free_port 8779)
AGENT_PORT=$(free_port 5555)
URL=http://127.0.0.1:$API_PORT

say "trove-control: SQLite registry and local provisioner (its defaults), REST API on $URL with a token"
"$B/control/trove-control" keygen "$DEMO/state/control" >/dev/null
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
( umask 077
  printf '# TOKEN TENANT [admin]\n%s %s\n' "$TOKEN" "$TENANT" > "$DEMO/tokens"
  printf '%s\n' "$TOKEN" > "$DEMO/demo.token" )
unset TOKEN
cat > "$DEMO/control.conf" <<CONF
# Everything not set here is trove-control's default (docs/operations.md).
[control]
state_dir = $DEMO/state
server_key_file = $DEMO/state/control.key
api_listen = 127.0.0.1:$API_PORT
api_token_file = $DEMO/tokens
agent_endpoint = tcp://127.0.0.1:$AGENT_PORT

[provision]
instances_dir = $DEMO/instances
CONF
setsid "$B/control/trove-control" -c "$DEMO/control.conf" </dev/null >>"$DEMO/control.log" 2>&1 &
echo $! > "$DEMO/control.pid"

export TROVE_URL=$URL TROVE_TENANT=$TENANT
unset TROVE_CONTROL_ENDPOINT TROVE_TOKEN
ctl() { "$B/control/trovectl" --token-file "$DEMO/demo.token" "$@"; }
step() { printf '\n$ trovectl %s\n' "$*"; ctl "$@"; }
for _ in $(seq 100); do
  ctl flavor-list >/dev/null 2>&1 && break
  kill -0 "$(cat "$DEMO/control.pid")" 2>/dev/null || { tail -5 "$DEMO/control.log"; exit 1; }
  sleep 0.1
done

step datastore-list
step flavor-list

say "a MySQL instance with database 'shop' and user 'app' (its password goes to trovectl on stdin)"
( umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DEMO/app.password" )
printf '\n$ trovectl create demo-mysql m1.tiny --size 1 --datastore mysql --database shop --user app --wait < app.password\n'
ctl create demo-mysql m1.tiny --size 1 --datastore mysql --database shop --user app --wait <"$DEMO/app.password"
step show demo-mysql
PORT=$(ctl --json show demo-mysql | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["instance"]["port"])')

say "the stock mariadb client, as app (the password from a 0600 option file, never the command line)"
( umask 077; printf '[client]\npassword="%s"\n' "$(cat "$DEMO/app.password")" > "$DEMO/app.cnf" )
SQL="CREATE TABLE IF NOT EXISTS orders (id INT PRIMARY KEY, item VARCHAR(40)); REPLACE INTO orders VALUES (1, 'tea'); SELECT CURRENT_USER() AS user, DATABASE() AS db, item FROM orders"
printf '$ mariadb --defaults-extra-file=app.cnf -h 127.0.0.1 -P %s -u app shop -e "%s"\n' "$PORT" "$SQL"
mariadb --defaults-extra-file="$DEMO/app.cnf" --protocol=tcp -h 127.0.0.1 -P "$PORT" -u app shop -e "$SQL"

say "the stock openstack client, with the same token"
printf '$ openstack database instance list\n'
OS_AUTH_TYPE=admin_token OS_TOKEN=$(cat "$DEMO/demo.token") OS_ENDPOINT=$URL/v1.0/$TENANT \
  openstack database instance list

STOP="bash $SRC/tools/demo.sh stop"
[ "$DEMO" = /var/lib/trove-demo ] || STOP="TROVE_DEMO_DIR=$DEMO $STOP"
cat <<EOF

trove-control is running (pid $(cat "$DEMO/control.pid"), log $DEMO/control.log), with instance demo-mysql
on 127.0.0.1:$PORT. Reach it with trovectl:
  export TROVE_URL=$URL TROVE_TENANT=$TENANT
  $B/control/trovectl --token-file $DEMO/demo.token list
with the stock OpenStack client:
  export OS_AUTH_TYPE=admin_token OS_TOKEN=\$(cat $DEMO/demo.token) OS_ENDPOINT=$URL/v1.0/$TENANT
  openstack database instance list
with mariadb, as app:
  mariadb --defaults-extra-file=$DEMO/app.cnf -h 127.0.0.1 -P $PORT -u app shop
Stop everything (trove-control, agents, engines, volumes) with:
  $STOP
EOF
