#!/usr/bin/env bash
# The README's second command: installs what is needed, builds, and runs every
# test: unit tests, the simulator's own tests, and the black-box scenario
# tests that run the real nfsd-helper binary against the simulated kernel over
# FUSE. Run as root (FUSE mounts).
#
# Then the same suite again, built with ASan+UBSan (scripts/test-sanitize.sh,
# build-asan/), and a short run of every fuzz target of the protocol parsers
# (scripts/fuzz.sh, build-fuzz/, FUZZ_SECONDS per target, default 5). Extra
# arguments go to the first ctest run only. Before those, for Debian 12's
# 6.1 and for 6.12, the patched kernel module is built (scripts/build-kmod.sh
# --kernel 6.1|6.12) and the QEMU tests that load it run (scripts/vm-test.sh
# --kernel 6.1|6.12 --group nfsdfs); then the QEMU tests of nfsd-helper's
# cld mode and ID mapping on the stock kernel (--group cld --test idmap), on
# 6.1 and again on 6.12, and the Debian package (scripts/build-deb.sh) under
# systemd in QEMU (--group systemd).
# SANITIZE=0, FUZZ_SECONDS=0 or
# VM_TESTS=0 skips a stage, for a quick local run; CI runs them all.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"

start=$(date +%s)
cd "$build"
ctest --output-on-failure -j1 "$@"
echo "test.sh: ctest took $(( $(date +%s) - start )) s"

# The kernel side (tests/vm/README.md), every group even if one fails:
# the patched nfsd.ko of kernel-patches/<series>/, loaded into Debian's own
# 6.1 and 6.12 kernels under QEMU, with nfsd-helper serving its four files;
# then Debian's stock nfsd with nfsd-helper serving the cld pipe in place of
# nfsdcld, and the NFSv4 ID mapping channels in place of rpc.idmapd. Fails,
# never skips, when QEMU cannot run.
if [ "${VM_TESTS:-1}" != 0 ]; then
  vm_failed=0
  for k in 6.1 6.12; do
    start=$(date +%s)
    "$top/scripts/build-kmod.sh" --kernel "$k"
    NFSD_HELPER=$build/daemon/nfsd-helper "$top/scripts/vm-test.sh" --kernel "$k" --group nfsdfs || vm_failed=1
    echo "test.sh: $k patched-kernel build and QEMU tests took $(( $(date +%s) - start )) s"
  done
  start=$(date +%s)
  NFSD_HELPER=$build/daemon/nfsd-helper "$top/scripts/vm-test.sh" --group cld --test idmap || vm_failed=1
  echo "test.sh: stock-kernel cld and idmap QEMU tests took $(( $(date +%s) - start )) s"
  # The same groups on 6.12 (linux-image-6.12-amd64; tests/vm/KERNELS.md).
  start=$(date +%s)
  NFSD_HELPER=$build/daemon/nfsd-helper "$top/scripts/vm-test.sh" --kernel 6.12 --group cld --test idmap || vm_failed=1
  echo "test.sh: 6.12 cld and idmap QEMU tests took $(( $(date +%s) - start )) s"
  # The Debian package (dpkg-buildpackage, lintian), installed and removed
  # in a guest that boots systemd as PID 1, around nfs-server restarts.
  start=$(date +%s)
  if "$top/scripts/build-deb.sh"; then
    "$top/scripts/vm-test.sh" --group systemd || vm_failed=1
  else
    vm_failed=1
  fi
  echo "test.sh: Debian package build and systemd QEMU test took $(( $(date +%s) - start )) s"
  [ "$vm_failed" = 0 ] || { echo "test.sh: FAIL: QEMU tests failed (see above)" >&2; exit 1; }
fi

if [ "${SANITIZE:-1}" != 0 ]; then
  start=$(date +%s)
  "$top/scripts/test-sanitize.sh"
  echo "test.sh: sanitizer build and ctest took $(( $(date +%s) - start )) s"
fi
if [ "${FUZZ_SECONDS:-5}" != 0 ]; then
  start=$(date +%s)
  "$top/scripts/fuzz.sh" "${FUZZ_SECONDS:-5}"
  echo "test.sh: fuzzing took $(( $(date +%s) - start )) s"
fi
