#!/bin/bash
# Installs the Debian 12 packages the build, the servers and the tests need.
# Runs apt only as root and only when something is missing.
set -euo pipefail
PACKAGES=(
  gcc g++ libc6-dev make meson ninja-build pkg-config
  clang libclang-rt-14-dev
  libzmq3-dev libmsgpack-dev libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev libzstd-dev libssl-dev
  libcmocka-dev
  libmariadb-dev libpq-dev libhiredis-dev libmongoc-dev libbson-dev libsqlite3-dev
  mariadb-server mariadb-client mariadb-backup postgresql redis-server
  memcached swift swift-account swift-container swift-object swift-proxy
  python3 python3-boto3 python3-cassandra python3-msgpack python3-pymongo python3-zmq zstd procps
  python3-troveclient python3-openstackclient
  build-essential debhelper dpkg-dev lintian
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing packages (run as root to install them): ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
