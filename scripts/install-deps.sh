#!/usr/bin/env bash
# Installs every Debian package nfsd-helper needs to build, run and test.
# Idempotent; run as root on Debian 12.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libevent-dev libsqlite3-dev sqlite3
  libfuse3-dev fuse3
  catch2 nlohmann-json3-dev
  man-db groff-base
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
