#!/usr/bin/env bash
# npm run setup: everything a fresh Debian 12 machine needs, then the build. Non-interactive, idempotent,
# fast when nothing is missing.
#   1. LibTorch: Debian's libtorch-dev when no LibTorch is found and LIBTORCH is unset
#   2. with the system LibTorch: an optimized BLAS (libopenblas0-pthread) and Gloo's headers (libgloo-dev)
#   3. PostgreSQL's server (Debian's postgresql) for the data-source tests, when missing; optional
#   3b. Debian's chromium for the report's browser test, when missing; optional
#   4. npm ci (skipped when node_modules matches package-lock.json)
#   5. the addon (cmake-js, incremental) and the TypeScript
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "nodetune setup: $*"; }

source scripts/apt.sh

# 1. LibTorch
if [ -z "${LIBTORCH:-}" ] && ! node scripts/find-libtorch.js >/dev/null 2>&1; then
  apt_install libtorch-dev libopenblas0-pthread libgloo-dev
fi
node scripts/find-libtorch.js

# 2. BLAS: Debian's libtorch uses whatever libblas.so.3 points at; the reference BLAS is ~35x slower.
source_kind=$(node -e "console.log(require('./scripts/find-libtorch.js').findLibtorch().source)")
if [ "$source_kind" = "system" ] && command -v dpkg >/dev/null; then
  if ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then apt_install libopenblas0-pthread; fi
  # Debian's libtorch-dev leaves out the Gloo headers its c10d headers include (distributed training).
  if ! dpkg -s libgloo-dev >/dev/null 2>&1; then apt_install libgloo-dev; fi
fi

# 3. PostgreSQL's server binaries, for the data-source tests (test/31.data-sources-postgres starts its own server in a
# temporary folder). Optional: setup goes on without them, and those tests say why they skip.
# NODETUNE_SETUP_OPTIONAL=0 skips the optional test tools (3 and 3b): npm run test:libtorch2 sets it in its root.
optional=${NODETUNE_SETUP_OPTIONAL:-1}
if [ "$optional" != "0" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  ( apt_install postgresql ) || log "PostgreSQL could not be installed (the PostgreSQL data-source tests will skip); install its server package to run them"
fi

# 3b. Debian's chromium, for the report's browser test (test/46.train-report renders report.html headless and checks
# the page). Optional, as PostgreSQL above: without it that test says why it skips.
if [ "$optional" != "0" ] && ! command -v chromium >/dev/null; then
  ( apt_install chromium ) || log "chromium could not be installed (the report's browser test will skip); install Debian's chromium to run it"
fi

# 4. npm dependencies
stamp=node_modules/.nodetune-setup-stamp
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
  log "node_modules is up to date"
else
  log "npm ci"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > "$stamp"
fi

# 5. build
log "building the addon (cmake-js)"
node scripts/build-native.js
log "building the TypeScript"
npx --no-install tsc -p .
log "done. Try: npm run demo, npm test, npx nodetune doctor"
