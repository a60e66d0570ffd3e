# Sourced by the setup scripts: apt_install PKG... installs Debian packages non-interactively (as root, or through
# a password-less sudo), with a message that names the packages when it cannot.
apt_install() {
  local runner=()
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then runner=(sudo -n); else
      log "need to install Debian packages: $* — run as root, or: sudo apt-get install -y $*"; exit 1; fi
  fi
  if ! command -v apt-get >/dev/null; then
    log "apt-get not found: install $* with your system's package manager, or set LIBTORCH to an unpacked LibTorch"; exit 1
  fi
  log "installing $*"
  "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
