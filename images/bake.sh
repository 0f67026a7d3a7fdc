#!/bin/bash
# images/bake.sh DATASTORE [OUT] - bakes a guest image for one datastore,
# offline from this machine's Debian mirror: debootstrap --variant=minbase,
# the engine's packages, this project's packages (built with
# dpkg-buildpackage unless DEBS names a directory of them), cloud-init and the
# first-boot step. Writes OUT/trove-DATASTORE.rootfs.tar.gz, an OCI image
# archive OUT/trove-DATASTORE.oci.tar and OUT/trove-DATASTORE.manifest
# (every package inside with its version). Run as root on Debian 12.
set -euo pipefail
DATASTORE=${1:?usage: images/bake.sh mysql|postgres|redis [OUT]}
OUT=$(realpath -m "${2:-images/out}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
case "$DATASTORE" in
  mysql) ENGINE="mariadb-server mariadb-client mariadb-backup" UNIT=mariadb ;;
  postgres) ENGINE="postgresql" UNIT=postgresql ;;
  redis) ENGINE="redis-server" UNIT=redis-server ;;
  *) echo "bake.sh: unknown datastore '$DATASTORE' (mysql, postgres, redis)" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "bake.sh: run as root (debootstrap, chroot)" >&2; exit 1; }
MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
WORK=$(mktemp -d /var/tmp/trove-bake.XXXXXX)
ROOT=$WORK/rootfs
cleanup() {
  for m in proc sys dev/pts dev; do umount "$ROOT/$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

packages() {
  if [ -n "${DEBS:-}" ]; then echo "$DEBS"; return; fi
  mkdir -p "$WORK/src"
  (cd "$SRC" && git ls-files -co --exclude-standard | grep -v '^build' | tar -cf - -T -) | tar -xf - -C "$WORK/src"
  (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b >"$WORK/deb.log" 2>&1) ||
    { tail -30 "$WORK/deb.log" >&2; exit 1; }
  echo "$WORK"
}

echo "bake: packages" >&2
DEBDIR=$(packages)
echo "bake: debootstrap $SUITE from $MIRROR" >&2
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"   # no service starts while baking
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
mkdir -p "$ROOT/tmp/debs"
cp "$DEBDIR"/trove-agent_*.deb "$DEBDIR"/trove-plugin-"$DATASTORE"_*.deb "$ROOT/tmp/debs/"
echo "bake: engine, cloud-init, trove-agent, trove-plugin-$DATASTORE" >&2
chroot "$ROOT" /bin/sh -ec "
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends systemd systemd-sysv cloud-init $ENGINE /tmp/debs/*.deb
  apt-get clean
  rm -rf /var/lib/apt/lists/* /tmp/debs
" >"$WORK/install.log" 2>&1 || { tail -30 "$WORK/install.log" >&2; exit 1; }
install -D -m 0755 "$SRC/images/firstboot/trove-firstboot" "$ROOT/usr/lib/trove/trove-firstboot"
install -D -m 0644 "$SRC/images/firstboot/trove-firstboot.service" "$ROOT/lib/systemd/system/trove-firstboot.service"
install -d -m 0700 "$ROOT/var/lib/trove"
# The first-boot step starts the agent once /etc/trove is written.
chroot "$ROOT" systemctl enable trove-firstboot.service >/dev/null 2>&1
chroot "$ROOT" systemctl disable trove-agent.service >/dev/null 2>&1
# The plugin runs the engine itself, on the instance's volume: the
# distribution's own service for it stays off.
chroot "$ROOT" systemctl disable "$UNIT.service" >/dev/null 2>&1
rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/machine-id"
touch "$ROOT/etc/machine-id"
umount "$ROOT/proc"

mkdir -p "$OUT"
NAME=trove-$DATASTORE
{ echo "# $NAME: Debian $SUITE minbase from $MIRROR, baked $(date -u +%FT%TZ)"
  chroot "$ROOT" dpkg-query -W -f '${Package} ${Version}\n' | sort; } >"$OUT/$NAME.manifest"
install -D -m 0644 "$OUT/$NAME.manifest" "$ROOT/usr/share/trove/image.manifest"
echo "bake: $OUT/$NAME.rootfs.tar.gz" >&2
tar --numeric-owner --xattrs -C "$ROOT" -czf "$OUT/$NAME.rootfs.tar.gz" .
echo "bake: $OUT/$NAME.oci.tar" >&2
python3 "$SRC/images/oci.py" "$OUT/$NAME.rootfs.tar.gz" "$OUT/$NAME.manifest" "$NAME" "$OUT/$NAME.oci.tar"
echo "bake: done: $(wc -l <"$OUT/$NAME.manifest") lines of manifest" >&2
