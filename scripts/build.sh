#!/usr/bin/env bash
# Configures and builds nfsd-helper into $BUILD_DIR (default: build/), tests
# included, with warnings as errors (NFSDH_WERROR) and clang-tidy
# (NFSDH_CLANG_TIDY, .clang-tidy) so that the test command and CI fail on a
# new warning or finding. $CMAKE_ARGS come last and may override.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DNFSDH_WERROR=ON -DNFSDH_CLANG_TIDY=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
