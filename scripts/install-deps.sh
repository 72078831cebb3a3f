#!/usr/bin/env bash
# Installs every Debian package nfsd-helper needs to build, run and test.
# Idempotent; run as root on Debian 12.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libevent-dev libsqlite3-dev sqlite3
  libnfsidmap-dev
  libfuse3-dev fuse3
  catch2 nlohmann-json3-dev
  libsystemd-dev systemd
  libtirpc-dev rpcsvc-proto
  libcap-ng-dev
  nfs-kernel-server
  man-db groff-base
  # scripts/vm-test.sh: Debian's own kernel under QEMU (tests/vm/README.md);
  # scripts/build-kmod.sh: the patched nfsd.ko of kernel-patches/, built
  # from linux-source-6.1 against the headers of that same kernel.
  qemu-system-x86 linux-image-amd64 busybox-static cpio python3
  linux-headers-amd64 linux-source-6.1 patch xz-utils
  # scripts/fuzz.sh: clang with libFuzzer and its sanitizer runtimes
  # (libclang-rt-14-dev, not pulled in without recommends), and
  # llvm-symbolizer (llvm) for readable sanitizer stack traces.
  clang libclang-rt-14-dev llvm
  # scripts/bench.sh: perf counts the trackers' fsync calls (tests/bench/).
  linux-perf
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
# Packages such as nfs-kernel-server start their services when installed.
# Where no init system runs them (a container, a build machine), forbid the
# start for the duration of the install, as Debian's policy-rc.d allows.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ "$(ps -p 1 -o comm= 2>/dev/null)" != systemd ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
