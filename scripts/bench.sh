#!/usr/bin/env bash
# Builds nfsd-helper and runs the benchmark of tests/bench/README.md: Debian's
# nfsdcld and nfsd-helper under the same load from the simulated kernel. Prints
# the table and writes it as JSON to $BUILD_DIR/bench.json.
#
# Run as root (FUSE mounts, perf). Arguments go to nfsd-bench, e.g.
#   bash scripts/bench.sh --smoke
#   bash scripts/bench.sh --targets helper-4f --sizes 1000000
# The databases live under $BENCH_DIR (default: a new directory in /var/tmp,
# removed after a successful run), whose file system is the one measured.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

"$top/scripts/install-deps.sh"
BUILD_DIR="$build" "$top/scripts/build.sh"

args=(--json "$build/bench.json")
if [ -n "${BENCH_DIR:-}" ]; then
  args+=(--dir "$BENCH_DIR")
fi
exec "$build/tests/bench/nfsd-bench" "${args[@]}" "$@"
