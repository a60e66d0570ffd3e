#!/usr/bin/env bash
# npm run test:libtorch2: builds nodetune against LibTorch 2.x and runs the whole suite there.
#
# A Debian 13 (trixie) root, made with debootstrap from Debian's mirror, holds Debian's libtorch-dev 2.x, its
# Node.js and OpenBLAS. The working tree (tracked and untracked-but-not-ignored files) is copied in, ../shared is
# bound read-only beside it, and `npm run setup && npm test` runs inside, in a chroot within a private mount
# namespace (nothing stays mounted when it ends, however it ends).
#
# The root is kept and reused: NODETUNE_TRIXIE_ROOT (default /var/cache/nodetune/trixie-libtorch2); its
# node_modules and build/ too, so a second run only rebuilds what changed. Delete the folder to start over.
# NODETUNE_DEBIAN_MIRROR overrides the mirror (default http://deb.debian.org/debian).
# Arguments after the script's name replace `npm test` (e.g. `npm run test:libtorch2 -- npx mocha dist/test/80*.js`).
# Needs root (debootstrap, chroot, mount namespaces) and the network to Debian's mirror and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "nodetune test:libtorch2: $*"; }
source scripts/apt.sh

if [ "$(id -u)" != "0" ]; then
  log "needs root (debootstrap, chroot, mount namespaces): run it as root, e.g. sudo npm run test:libtorch2"
  exit 1
fi
command -v debootstrap >/dev/null || apt_install debootstrap
command -v unshare >/dev/null || apt_install util-linux

root=${NODETUNE_TRIXIE_ROOT:-/var/cache/nodetune/trixie-libtorch2}
mirror=${NODETUNE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(libtorch-dev libopenblas0-pthread libgloo-dev nodejs npm g++ make cmake python3 ca-certificates git postgresql)
started=$(date +%s)

# Runs a command inside the root: /proc, /sys and /dev from the host, the network's name resolution, ../shared.
in_root() {
  local shared_dir=""
  if [ -d ../shared ]; then shared_dir=$(cd ../shared && pwd); fi
  unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
    root=$1; shared=$2; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o size=8g tmpfs "$root/tmp"
    if [ -n "$shared" ]; then
      mkdir -p "$root/work/shared"
      mount --bind "$shared" "$root/work/shared"
      mount -o remount,bind,ro "$root/work/shared"
    fi
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 CI="${CI:-}" NODETUNE_DEV_CHECKOUT=1 NODETUNE_SETUP_OPTIONAL=0 ${OPENBLAS_CORETYPE+OPENBLAS_CORETYPE="$OPENBLAS_CORETYPE"} \
      ${NODETUNE_ROOT_CA+NODE_EXTRA_CA_CERTS="$NODETUNE_ROOT_CA"} \
      ${NODETUNE_JOBS+NODETUNE_JOBS="$NODETUNE_JOBS"} "$@"
  ' in_root "$root" "$shared_dir" "$@"
}

# 1. The base system (once).
if [ ! -f "$root/.nodetune-base" ]; then
  log "debootstrap trixie into $root (from $mirror)"
  rm -rf "$root.partial"
  mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase trixie "$root.partial" "$mirror" >/dev/null
  rm -rf "$root"
  mv "$root.partial" "$root"
  touch "$root/.nodetune-base"
fi

# 2. The packages (again only when the list changes). No service starts inside the root (policy-rc.d): the
# PostgreSQL tests start their own server in a temporary folder.
want="${packages[*]}"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
if [ "$(cat "$root/.nodetune-packages" 2>/dev/null)" != "$want" ]; then
  log "installing in the root: $want"
  in_root /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $want >/dev/null"
  echo "$want" > "$root/.nodetune-packages"
fi
# npm inside reaches the registry as npm outside does: the same registry, and the same certificate authorities
# (a host whose traffic passes a TLS-inspecting proxy trusts its certificate through these).
registry=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)
printf 'registry=%s\nfund=false\naudit=false\nupdate-notifier=false\n' "$registry" > "$root/root/.npmrc"
cafile=$(npm config get cafile 2>/dev/null || true)
if [ ! -f "$cafile" ]; then cafile=${NODE_EXTRA_CA_CERTS:-}; fi
if [ -n "$cafile" ] && [ -f "$cafile" ]; then
  cp "$cafile" "$root/etc/ssl/nodetune-host-ca.crt"
  echo "cafile=/etc/ssl/nodetune-host-ca.crt" >> "$root/root/.npmrc"
  export NODETUNE_ROOT_CA=/etc/ssl/nodetune-host-ca.crt
fi

# 3. The working tree, over the previous copy (its node_modules and build/ are kept: they belong to this root).
dest="$root/work/nodetune"
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name build -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$dest"

versions=$(in_root /bin/sh -c 'echo "LibTorch $(dpkg-query -W -f="\${Version}" libtorch-dev), Node.js $(node --version), OpenBLAS $(dpkg-query -W -f="\${Version}" libopenblas0-pthread)"')
log "$versions; ready after $(( $(date +%s) - started )) s"

# 4. Setup and the suite.
if [ $# -eq 0 ]; then set -- npm test; fi
cmd=$(printf '%q ' "$@")
in_root /bin/bash -c "cd /work/nodetune && npm run setup && $cmd"
log "passed against $versions in $(( $(date +%s) - started )) s"
