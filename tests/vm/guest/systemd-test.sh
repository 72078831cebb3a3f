#!/bin/bash
# vmtest.service (see stage2-systemd.sh): runs the test script named by
# VM_TEST under systemd as PID 1, writes the results as stage2.sh does, and
# powers the VM off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C LC_ALL=C
R=/vm-results
RESULT=$R/result
# shellcheck disable=SC1091
[ -r "$R/vm.env" ] && set -a && . "$R/vm.env" && set +a
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vm.test=*) VM_TEST=${arg#vm.test=} ;;
	esac
done
read -r up _ </proc/uptime
echo "INFO kernel $(uname -r), systemd $(systemctl --version | sed -n '1s/^systemd //p') as PID 1" >>"$RESULT"
echo "INFO vmtest.service started at guest uptime ${up}s" >>"$RESULT"
echo "systemd_test_uptime $up" >>"$R/boot.txt"
export VM_RESULTS=$R VM_RESULT_FILE=$RESULT
bash "$VM_TEST" >"$R/test.log" 2>&1
rc=$?
read -r end _ </proc/uptime
echo "INFO test ran $(awk -v a="$up" -v b="$end" 'BEGIN{printf "%.1f", b-a}')s in the guest" >>"$RESULT"
dmesg >"$R/dmesg.txt" 2>&1
journalctl -b --no-pager >"$R/journal.txt" 2>&1
echo "END $rc" >>"$RESULT"
sync
echo o >/proc/sysrq-trigger
sleep 60
