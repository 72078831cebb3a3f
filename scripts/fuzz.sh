#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang, -fsanitize=fuzzer,
# address,undefined) into $FUZZ_BUILD_DIR (default: build-fuzz/) and runs each
# for SECONDS (default 10) with -max_len=8192, FUZZ_JOBS (default: the number
# of cores) at a time. Prints each target's executions, coverage (libFuzzer's
# cov and ft) and crashes, and fails if any target found a crash, a sanitizer
# report, a leak, a timeout or a broken property.
#
#   scripts/fuzz.sh [--runs N] [--merge] [SECONDS] [TARGET...]
#
#   --runs N   the long mode: stop each target after N executions
#              (-runs=N, e.g. 10000000) instead of after SECONDS; with
#              SECONDS too, whichever comes first
#   --merge    afterwards, merge what the run found into the seed corpus
#              tests/fuzz/corpus/<target>/ (-merge=1: only inputs that add
#              coverage), so that the repository keeps it
#
# Seeds come from tests/fuzz/corpus/<target>/ (read only during the run);
# what a run learns is kept in $build/corpus/<target>/ for the next run,
# crashing inputs in $build/artifacts/ and each run's output in
# $build/logs/<target>.log. See tests/fuzz/README.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
usage() {
  echo "usage: $0 [--runs N] [--merge] [SECONDS] [TARGET...]" >&2
  exit 2
}
runs=0
merge=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs)
      [ $# -ge 2 ] || usage
      runs=$2
      shift 2
      ;;
    --merge)
      merge=1
      shift
      ;;
    *) break ;;
  esac
done
case $runs in '' | *[!0-9]*) usage ;; esac
secs_given=0
if [ $# -gt 0 ] && [ -n "$1" ] && [ -z "${1//[0-9]/}" ]; then
  secs=$1
  secs_given=1
  shift
else
  secs=10
fi
# --runs alone runs until N executions, however long that takes.
if [ "$runs" -gt 0 ] && [ "$secs_given" = 0 ]; then secs=0; fi
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
  local limits=(-max_total_time="$secs")
  if [ "$runs" -gt 0 ]; then limits+=(-runs="$runs"); fi
  "$build/$t" "${limits[@]}" -max_len=8192 -timeout=10 \
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
if [ "$runs" -gt 0 ]; then
  limit="$runs executions each"
  # (An `[ ] && echo` inside $() would end the script under set -e.)
  if [ "$secs" -gt 0 ]; then limit="$runs executions or $secs s each"; fi
else
  limit="${secs} s each"
fi
echo "fuzz.sh: ${#targets[@]} targets, $limit, $jobs at a time"
start=$(date +%s)
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  rm -f "$build/logs/$t.rc" "$build/artifacts/$t-"*
  run_one "$t" &
done
wait

failed=()
total_execs=0
total_crashes=0
for t in "${targets[@]}"; do
  log=$build/logs/$t.log
  rc=$(cat "$build/logs/$t.rc" 2>/dev/null || echo "?")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 || true)
  corp=$(find "$build/corpus/$t" -type f | wc -l)
  crashes=$(find "$build/artifacts" -name "$t-*" -type f | wc -l)
  total_execs=$((total_execs + ${execs:-0}))
  total_crashes=$((total_crashes + crashes))
  if [ "$rc" = 0 ]; then
    printf 'fuzz.sh: %-24s ok   %10s execs (%s/s), %s, %s, %s crashes, %s inputs kept\n' \
      "$t" "${execs:-?}" "${per_s:-?}" "${cov:-cov: ?}" "${ft:-ft: ?}" \
      "$crashes" "$corp"
    if [ "$merge" = 1 ]; then
      before=$(find "$top/tests/fuzz/corpus/$t" -type f | wc -l)
      "$build/$t" -merge=1 -max_len=8192 -timeout=10 \
        "$top/tests/fuzz/corpus/$t" "$build/corpus/$t" \
        >"$build/logs/$t.merge.log" 2>&1 ||
        echo "fuzz.sh: $t: merge failed; log $build/logs/$t.merge.log" >&2
      after=$(find "$top/tests/fuzz/corpus/$t" -type f | wc -l)
      echo "fuzz.sh: $t: $((after - before)) new inputs merged into tests/fuzz/corpus/$t ($after in all)"
    fi
  else
    failed+=("$t")
    printf 'fuzz.sh: %-24s FAIL exit %s after %s execs; log %s\n' \
      "$t" "$rc" "${execs:-?}" "$log"
    tail -n 60 "$log" | sed 's/^/    /'
  fi
done
echo "fuzz.sh: took $(($(date +%s) - start)) s; $total_execs executions," \
  "$total_crashes crashes"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}; inputs in $build/artifacts/" \
    "(reproduce: $build/TARGET FILE)" >&2
  exit 1
fi
