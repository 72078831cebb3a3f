#!/usr/bin/env bash
# The README's second command: installs what is needed, builds, and runs every
# test: unit tests, the simulator's own tests, and the black-box scenario
# tests that run the real nfsd-helper binary against the simulated kernel over
# FUSE. Run as root (FUSE mounts).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"

start=$(date +%s)
cd "$build"
ctest --output-on-failure -j1 "$@"
echo "test.sh: ctest took $(( $(date +%s) - start )) s"
