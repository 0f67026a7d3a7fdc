#!/bin/bash
# The main job on one machine: builds the project, brings up trove-control,
# and a MariaDB instance managed by trove-agent with the mysql plugin (CURVE on
# the agent link), then walks through a short scenario with trovectl.
# Everything lives under $TROVE_DEMO_DIR (default /tmp/trove-demo) and is
# stopped at the end; pass --keep to leave it running.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=false
[ "${1:-}" = "--keep" ] && KEEP=true
bash tools/packages.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
B=$PWD/build
DEMO=${TROVE_DEMO_DIR:-/tmp/trove-demo}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -f "$DEMO/agent.pid" ]; then kill "$(cat "$DEMO/agent.pid")" 2>/dev/null || true; fi
if [ -f "$DEMO/control.pid" ]; then kill "$(cat "$DEMO/control.pid")" 2>/dev/null || true; fi
if [ -f "$DEMO/mysql/run/mysqld.pid" ]; then kill "$(cat "$DEMO/mysql/run/mysqld.pid")" 2>/dev/null || true; sleep 2; fi
rm -rf "$DEMO"
install -d -m 0700 "$DEMO" "$DEMO/agent-state"
install -d -m 0755 "$DEMO/mysql"

echo "== keys: one for the control plane, one for the agent; the agent's public key is allow-listed"
"$B/control/trove-control" keygen "$DEMO/control" >/dev/null
"$B/control/trove-control" keygen "$DEMO/agent" >/dev/null
echo "demo-mysql $(cat "$DEMO/agent.pub")" > "$DEMO/allowed_agents"

AGENT_PORT=$(free_port)
MYSQL_PORT=$(free_port)
cat > "$DEMO/control.conf" <<CONF
[control]
agent_endpoint = tcp://127.0.0.1:$AGENT_PORT
client_endpoint = ipc://$DEMO/control.sock
state_dir = $DEMO
server_key_file = $DEMO/control.key
allowed_agents_file = $DEMO/allowed_agents
CONF
cat > "$DEMO/agent.conf" <<CONF
[agent]
instance_id = demo-mysql
control_endpoint = tcp://127.0.0.1:$AGENT_PORT
plugin = mysql
plugin_dir = $B/plugins/mysql
state_dir = $DEMO/agent-state
secrets_file = $DEMO/agent-secrets.conf
heartbeat_ms = 2000

[curve]
server_public_key_file = $DEMO/control.pub
agent_key_file = $DEMO/agent.key

[datastore]
port = $MYSQL_PORT
datadir = $DEMO/mysql/data
run_dir = $DEMO/mysql/run
server_user = root
CONF
( umask 077; printf '[datastore]\nadmin_password = %s\n' "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" > "$DEMO/agent-secrets.conf" )

echo "== starting trove-control and trove-agent (logs in $DEMO/*.log)"
"$B/control/trove-control" -c "$DEMO/control.conf" >"$DEMO/control.log" 2>&1 &
echo $! > "$DEMO/control.pid"
"$B/agent/trove-agent" -c "$DEMO/agent.conf" >"$DEMO/agent.log" 2>&1 &
echo $! > "$DEMO/agent.pid"

cleanup() {
  if ! $KEEP; then
    echo "== stopping"
    "$B/control/trovectl" stop demo-mysql >/dev/null 2>&1 || true
    kill "$(cat "$DEMO/agent.pid")" "$(cat "$DEMO/control.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
}
trap cleanup EXIT

export TROVE_CONTROL_ENDPOINT=ipc://$DEMO/control.sock
for _ in $(seq 100); do
  "$B/control/trovectl" ping demo-mysql >/dev/null 2>&1 && break
  sleep 0.1
done
step() { printf '\n$ trovectl %s\n' "$*"; "$B/control/trovectl" "$@"; }

step list
step prepare demo-mysql
step status demo-mysql
step database-create demo-mysql shop
step user-create demo-mysql alice "it's a secret" --databases shop
step user-list demo-mysql
step user-show-access demo-mysql alice
printf '\n$ mariadb --user=alice -p... -e "SHOW DATABASES"   (the stock client, as alice)\n'
printf '[client]\npassword="it'"'"'s a secret"\n' > "$DEMO/alice.cnf"; chmod 600 "$DEMO/alice.cnf"
mariadb --defaults-file="$DEMO/alice.cnf" --user=alice --host=127.0.0.1 --port="$MYSQL_PORT" -e "SHOW DATABASES"
step configuration-apply demo-mysql max_connections=300
step configuration-show demo-mysql max_connections
step backup-create demo-mysql
step backup-list demo-mysql
step root-show demo-mysql
echo
echo "demo complete: control plane, agent and MariaDB worked end to end"
if $KEEP; then
  echo "left running; try: TROVE_CONTROL_ENDPOINT=$TROVE_CONTROL_ENDPOINT $B/control/trovectl status demo-mysql"
fi
