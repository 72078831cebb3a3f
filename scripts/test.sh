#!/usr/bin/env bash
# The README's second command: installs what is needed, builds, and runs every
# test: unit tests, the simulator's own tests, and the black-box scenario
# tests that run the real nfsd-helper binary against the simulated kernel over
# FUSE. Run as root (FUSE mounts).
#
# Then the same suite again, built with ASan+UBSan (scripts/test-sanitize.sh,
# build-asan/), and a short run of every fuzz target of the protocol parsers
# (scripts/fuzz.sh, build-fuzz/, FUZZ_SECONDS per target, default 5). Extra
# arguments go to the first ctest run only. Before those, the patched
# kernel module is built (scripts/build-kmod.sh) and the QEMU tests that load
# it run (scripts/vm-test.sh --group nfsdfs). SANITIZE=0, FUZZ_SECONDS=0 or
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

# The kernel side: the patched nfsd.ko of kernel-patches/, loaded into
# Debian's own kernel under QEMU, with nfsd-helper serving its four files
# (tests/vm/README.md). Fails, never skips, when QEMU cannot run.
if [ "${VM_TESTS:-1}" != 0 ]; then
  start=$(date +%s)
  "$top/scripts/build-kmod.sh"
  NFSD_HELPER=$build/daemon/nfsd-helper "$top/scripts/vm-test.sh" --group nfsdfs
  echo "test.sh: patched-kernel build and QEMU tests took $(( $(date +%s) - start )) s"
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
