#!/usr/bin/env bash
# Installs the Debian packages nfsd-helper needs. Idempotent; run as root on
# Debian 12.
#
#   install-deps.sh          everything: build, run and every test
#                            (scripts/test.sh, CI)
#   install-deps.sh --demo   only what scripts/demo.sh needs: a compiler and
#                            the libraries of the daemon, helper-ctl and the
#                            simulated kernel (FUSE)
set -euo pipefail

# scripts/demo.sh: builds nfsd-helper, helper-ctl and tests/sim/nfsd-sim
# (cmake -DBUILD_TESTING=OFF -DNFSDH_SIMULATOR=ON) and runs the simulator.
demo=(
  build-essential cmake pkg-config
  libevent-dev libsqlite3-dev
  libnfsidmap-dev
  libsystemd-dev
  libtirpc-dev rpcsvc-proto
  libcap-ng-dev
  nlohmann-json3-dev
  libfuse3-dev fuse3
)
# Everything else is for the tests (scripts/test.sh).
tests=(
  catch2
  # The QEMU tests read the databases (tests/vm/guest/).
  sqlite3
  # systemd-analyze verify (systemd/verify.sh).
  systemd
  # Debian's nfsdcld: the reference tracker of the cld tests
  # (tests/sim/cld_pipe_story.h) and of the QEMU tests.
  nfs-kernel-server
  # The man pages render without a warning (man/check.sh).
  man-db groff-base
  # scripts/vm-test.sh: Debian's own kernel under QEMU (tests/vm/README.md);
  # scripts/build-kmod.sh: the patched nfsd.ko of kernel-patches/, built
  # from linux-source-6.1 against the headers of that same kernel.
  qemu-system-x86 linux-image-amd64 busybox-static cpio python3
  # scripts/vm-test.sh --kernel 6.12: Debian 13's kernel, built for Debian 12,
  # installed next to 6.1 (the host keeps booting its own kernel; only the
  # QEMU guest boots /boot/vmlinuz-6.12.* with /lib/modules/6.12.*).
  linux-image-6.12-amd64
  linux-headers-amd64 linux-source-6.1 patch xz-utils
  # scripts/fuzz.sh: clang with libFuzzer and its sanitizer runtimes
  # (libclang-rt-14-dev, not pulled in without recommends), and
  # llvm-symbolizer (llvm) for readable sanitizer stack traces.
  clang libclang-rt-14-dev llvm
  # scripts/build.sh: clang-tidy in the build (.clang-tidy).
  clang-tidy
  # scripts/bench.sh: perf counts the trackers' fsync calls (tests/bench/).
  linux-perf
  # scripts/build-deb.sh: the Debian package (debian/), built with
  # dpkg-buildpackage and checked with lintian.
  debhelper dpkg-dev fakeroot lintian
)

case "${1:-}" in
  "") packages=("${demo[@]}" "${tests[@]}") ;;
  --demo) packages=("${demo[@]}") ;;
  *)
    echo "usage: install-deps.sh [--demo]" >&2
    exit 2
    ;;
esac

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
