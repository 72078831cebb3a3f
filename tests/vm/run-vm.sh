#!/usr/bin/env bash
# Boots the test VM once for ONE guest test and collects its results.
#
#   run-vm.sh GUEST_TEST_SCRIPT RUN_DIR
#
# Environment: VM_KERNEL, VM_INITRD (required); VM_TIMEOUT (host-side limit,
# seconds, default 480), VM_GUEST_TIMEOUT (guest watchdog, default
# VM_TIMEOUT-30), VM_MEM (MiB, default 1024), VM_SMP (default 2),
# TRACKER_CMD, TRACKER_MODE, NFSD_ARGS, NFSD_TIME, NFSD_KO (a patched nfsd.ko to insmod
# instead of modprobe nfsd), NFSD_HELPER (the nfsd-helper binary) (passed to
# the guest via vm.env), NFSDH_DEB (the nfsd-helper .deb the systemd tests
# install), VM_INIT (stage2: the default; systemd: stage2-systemd.sh boots the
# host's systemd as PID 1, see tests/vm/README.md).
#
# RUN_DIR afterwards holds: console.log (serial console), qemu.log (QEMU's
# stderr), share/ (the guest's writable 9p share: result, dmesg.txt,
# test.log, tracker.log, ...) and status (one line: "<RESULT> <seconds>
# <boot seconds> <host load average at start>", RESULT one of PASS FAIL
# TIMEOUT NORESULT QEMU-ERROR).
# Exit status: 0 only for PASS.
set -uo pipefail
test_script=${1:?usage: run-vm.sh GUEST_TEST RUN_DIR}
run=${2:?usage: run-vm.sh GUEST_TEST RUN_DIR}
here=$(cd "$(dirname "$0")" && pwd)
: "${VM_KERNEL:?}" "${VM_INITRD:?}"
: "${VM_TIMEOUT:=480}" "${VM_MEM:=1024}" "${VM_SMP:=2}"
: "${VM_GUEST_TIMEOUT:=$((VM_TIMEOUT > 60 ? VM_TIMEOUT - 30 : VM_TIMEOUT / 2))}"
test_script=$(realpath "$test_script")

rm -rf "$run"
mkdir -p "$run/share"
{
  printf 'VM_TEST=%q\n' "$test_script"
  printf 'VM_GUEST_TIMEOUT=%q\n' "$VM_GUEST_TIMEOUT"
  for v in TRACKER_CMD TRACKER_MODE NFSD_ARGS NFSD_TIME NFSD_KO NFSD_HELPER NFSDH_DEB; do
    [ -n "${!v:-}" ] && printf '%s=%q\n' "$v" "${!v}"
  done
} >"$run/share/vm.env"

# no_timer_check: on a loaded host, emulated time runs so unevenly that the
# kernel's IO-APIC timer check can fail and panic at boot ("IO-APIC + timer
# doesn't work!"); the emulated timer is known to work.
case "${VM_INIT:-stage2}" in
  stage2) stage2=$here/guest/stage2.sh ;;
  systemd) stage2=$here/guest/stage2-systemd.sh ;;
  *) echo "run-vm.sh: VM_INIT must be stage2 or systemd, not '$VM_INIT'" >&2; exit 2 ;;
esac

load=$(cut -d" " -f1 /proc/loadavg)
start=$(date +%s.%N)
timeout --kill-after=10 "$VM_TIMEOUT" \
  qemu-system-x86_64 -accel tcg -cpu max -smp "$VM_SMP" -m "$VM_MEM" \
  -display none -monitor none -serial "file:$run/console.log" \
  -no-reboot -nic none \
  -kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
  -append "console=ttyS0 panic=-1 loglevel=6 no_timer_check vm.stage2=$stage2 vm.test=$test_script" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$run/share,mount_tag=vmresults,security_model=none,multidevs=remap" \
  </dev/null >"$run/qemu.log" 2>&1
qrc=$?
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
boot=$(awk '/^stage2_uptime/{printf "%.1f", $2}' "$run/share/boot.txt" 2>/dev/null)

res=$run/share/result
if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
  status=TIMEOUT
elif [ ! -s "$res" ] && [ $qrc -ne 0 ]; then
  status=QEMU-ERROR
elif ! grep -q '^END ' "$res" 2>/dev/null; then
  status=NORESULT
elif grep -q '^FAIL' "$res" || ! grep -q '^END 0$' "$res" || ! grep -q '^PASS' "$res"; then
  status=FAIL
else
  status=PASS
fi
echo "$status $secs ${boot:--} $load" >"$run/status"
[ "$status" = PASS ]
