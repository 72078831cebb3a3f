#!/usr/bin/env bash
# Configures and builds nfsd-helper into $BUILD_DIR (default: build/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
