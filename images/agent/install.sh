#!/bin/bash
# Bakes trove-agent into a Debian 12 guest image (run inside the image root
# as root, from a checkout of this project). Installs the runtime libraries,
# builds and installs the agent and its plugins under /usr/local, and puts the
# service unit and example configuration in place. It creates no keys: each
# instance gets its key pair and instance id at provisioning time.
set -euo pipefail
cd "$(dirname "$0")/../.."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  gcc libc6-dev meson ninja-build pkg-config libzmq3-dev libmsgpack-dev libjansson-dev libzstd-dev \
  libssl-dev libmariadb-dev libpq-dev libhiredis-dev >/dev/null
meson setup /tmp/trove-agent-build --prefix=/usr/local --buildtype=release -Dwerror=true >/dev/null
ninja -C /tmp/trove-agent-build
meson install -C /tmp/trove-agent-build --tags runtime >/dev/null || meson install -C /tmp/trove-agent-build >/dev/null
install -d -m 0755 /etc/trove
install -m 0644 images/agent/agent.conf.example /etc/trove/agent.conf.example
install -m 0600 images/agent/agent-secrets.conf.example /etc/trove/agent-secrets.conf.example
if [ -d /etc/systemd/system ]; then
  sed 's#/usr/bin/trove-agent#/usr/local/bin/trove-agent#g' images/agent/trove-agent.service \
    >/etc/systemd/system/trove-agent.service
  chmod 0644 /etc/systemd/system/trove-agent.service
fi
rm -rf /tmp/trove-agent-build
echo "trove-agent installed: $(/usr/local/bin/trove-agent --version)"
echo "at provisioning: write /etc/trove/agent.conf, agent-secrets.conf (0600), agent.key (0600), control.pub; enable trove-agent"
