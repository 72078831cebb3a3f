#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang, -fsanitize=fuzzer,
# address,undefined) into $FUZZ_BUILD_DIR (default: build-fuzz/) and runs each
# for SECONDS (default 10) with -max_len=8192, FUZZ_JOBS (default: the number
# of cores) at a time. Prints each target's number of executions and fails if
# any target found a crash, a sanitizer report, a leak, a timeout or a broken
# property.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 3600
#
# Seeds come from tests/fuzz/corpus/<target>/ (read only); what a run learns
# is kept in $build/corpus/<target>/ for the next run, crashing inputs in
# $build/artifacts/ and each run's output in $build/logs/<target>.log.
# See tests/fuzz/README.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
secs=${1:-10}
if [ $# -gt 0 ]; then shift; fi
case $secs in
  '' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac
jobs=${FUZZ_JOBS:-$(nproc)}

"$top/scripts/install-deps.sh" >/dev/null

cmake -S "$top/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for d in "$top"/tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi

mkdir -p "$build/artifacts" "$build/logs"
run_one() {
  local t=$1 rc=0
  mkdir -p "$build/corpus/$t"
  # The first directory receives new inputs; the seed directory is only read.
  "$build/$t" -max_total_time="$secs" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" \
    "$build/corpus/$t" "$top/tests/fuzz/corpus/$t" \
    >"$build/logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$build/logs/$t.rc"
}

for t in "${targets[@]}"; do
  if [ ! -x "$build/$t" ] || [ ! -d "$top/tests/fuzz/corpus/$t" ]; then
    echo "fuzz.sh: no target $t (see tests/fuzz/CMakeLists.txt)" >&2
    exit 2
  fi
done
echo "fuzz.sh: ${#targets[@]} targets, ${secs} s each, $jobs at a time"
start=$(date +%s)
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  rm -f "$build/logs/$t.rc"
  run_one "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
  log=$build/logs/$t.log
  rc=$(cat "$build/logs/$t.rc" 2>/dev/null || echo "?")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  corp=$(find "$build/corpus/$t" -type f | wc -l)
  if [ "$rc" = 0 ]; then
    printf 'fuzz.sh: %-24s ok   %10s execs (%s/s), %s, %s inputs kept\n' \
      "$t" "${execs:-?}" "${per_s:-?}" "${cov:-cov: ?}" "$corp"
  else
    failed+=("$t")
    printf 'fuzz.sh: %-24s FAIL exit %s after %s execs; log %s\n' \
      "$t" "$rc" "${execs:-?}" "$log"
    tail -n 60 "$log" | sed 's/^/    /'
  fi
done
echo "fuzz.sh: took $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}; inputs in $build/artifacts/" \
    "(reproduce: $build/TARGET FILE)" >&2
  exit 1
fi
