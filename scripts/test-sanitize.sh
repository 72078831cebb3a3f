#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer and UndefinedBehaviorSanitizer
# (gcc) into $ASAN_BUILD_DIR (default: build-asan/) and runs its whole ctest
# suite there. Extra arguments go to ctest (e.g. -R 'qword').
#
# The scenario tests start the real nfsd-helper (and helper-ctl) from the build
# tree, so those processes are sanitized too. A sanitizer report anywhere fails
# the run twice over:
#   - every report aborts the process that found it (abort_on_error=1,
#     halt_on_error=1, leaks included), so a test binary dies and a daemon
#     stopped with SIGTERM does not exit 0, which the harness checks;
#   - every report is also written to $build/sanitizer-logs/ (log_path), and
#     this script fails if any file appears there, even from a child process
#     whose exit status no test looked at (say one killed with SIGKILL later).
# Run as root (FUSE mounts), like scripts/test.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${ASAN_BUILD_DIR:-$top/build-asan}

"$top/scripts/install-deps.sh"

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
san+=" -fno-omit-frame-pointer"
# gcc 12 with -fsanitize=address at -O1 and above warns falsely about
# uninitialized std::function members inside libstdc++'s <regex> (used by
# Catch2), which -Werror would make fatal. The normal build keeps this
# warning.
san+=" -Wno-maybe-uninitialized"
# -O0 and line tables only (file:line in every report): instrumenting at -O2
# costs four times the compile time of the normal build, at -O0 about as
# much as the normal build, and the suite runs barely slower. No -DNDEBUG,
# so asserts are live. SANITIZE_OPT="-O1 -g" to choose otherwise.
opt=${SANITIZE_OPT:--O0 -g1}
start=$(date +%s)
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNFSDH_WERROR=ON \
  -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ \
  "-DCMAKE_C_FLAGS=$san" "-DCMAKE_CXX_FLAGS=$san" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$opt" \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
  "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
cmake --build "$build" -j"$(nproc)"
built=$(date +%s)
echo "test-sanitize.sh: sanitizer build took $((built - start)) s"

logs=$build/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# log_path makes each process write its reports to $logs/report.<pid>.
common="abort_on_error=1:print_summary=1:log_path=$logs/report"
# verify_asan_link_order=0: the storage-fault tests (tests/fault/) start the
# daemon with LD_PRELOAD=libnfsdh_faultvfs.so, which then comes before the
# ASan runtime in the library list and ASan would refuse to start. That
# library (sanitized too, and linked to the runtime) only registers an SQLite
# VFS from a constructor and interposes no libc function, so ASan's
# interceptors still see every call.
asan="detect_leaks=1:check_initialization_order=1:strict_init_order=1"
asan+=":detect_stack_use_after_return=1:verify_asan_link_order=0"
export ASAN_OPTIONS="$common:$asan"
export UBSAN_OPTIONS="$common:halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="$common"

status=0
cd "$build"
ctest --output-on-failure -j1 "$@" || status=$?
echo "test-sanitize.sh: ctest under ASan+UBSan took $(($(date +%s) - built)) s"

reports=("$logs"/report.*)
if [ -e "${reports[0]}" ]; then
  echo "test-sanitize.sh: ${#reports[@]} sanitizer report(s):" >&2
  for r in "${reports[@]}"; do
    echo "==== $r" >&2
    cat "$r" >&2
  done
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "test-sanitize.sh: FAILED" >&2
  exit "$status"
fi
echo "test-sanitize.sh: no sanitizer reports"
