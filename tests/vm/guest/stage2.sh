#!/bin/bash
# Stage 2 of the real-kernel test VM: PID 1 inside the overlay (host root,
# read-only, with a tmpfs upper layer).  Prepares an NFS server environment,
# runs ONE test script and always powers the VM off.
#
# Inputs:  /vm-results/vm.env (written by the host: VM_TEST, TRACKER_CMD, ...),
#          kernel command line vm.test=PATH (overrides VM_TEST).
# Outputs (in /vm-results, the writable 9p share of the host's run directory):
#          result      PASS/FAIL/INFO lines, ended by "END <exit status>"
#          dmesg.txt   the guest's kernel log at the end
#          test.log    the test's stdout/stderr
#          boot.txt    guest uptime when stage 2 started
#          trace.txt   NFSv4 client/server and sunrpc trace events
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C LC_ALL=C
R=/vm-results
RESULT=$R/result

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 60
}
say() { echo "vm-stage2: $*" >/dev/console; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
# What udev would add: bash's process substitution needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
echo 1 >/proc/sys/kernel/sysrq
read -r up _ </proc/uptime
echo "stage2_uptime $up" >"$R/boot.txt"
say "up after ${up}s"

fatal() {
	say "FATAL: $*"
	echo "FAIL harness: $*" >>"$RESULT"
	dmesg >"$R/dmesg.txt" 2>&1
	echo "END 1" >>"$RESULT"
	poweroff_now
}

# shellcheck disable=SC1091
# Exported: the test scripts (child processes) read these settings too.
[ -r "$R/vm.env" ] && set -a && . "$R/vm.env" && set +a
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vm.test=*) VM_TEST=${arg#vm.test=} ;;
	esac
done
[ -n "${VM_TEST:-}" ] || fatal "no test given (vm.test= on the command line or VM_TEST in vm.env)"
[ -r "$VM_TEST" ] || fatal "test script $VM_TEST not readable in the guest"
: "${VM_GUEST_TIMEOUT:=180}"

# Guest-side watchdog: whatever hangs, results and dmesg still come back.
(
	sleep "$VM_GUEST_TIMEOUT"
	say "watchdog: test still running after ${VM_GUEST_TIMEOUT}s, powering off"
	echo "FAIL guest-watchdog: test did not finish within ${VM_GUEST_TIMEOUT}s" >>"$RESULT"
	echo 1 >/proc/sys/kernel/sysrq
	echo w >/proc/sysrq-trigger # blocked tasks into dmesg
	sleep 1
	dmesg >"$R/dmesg.txt" 2>&1
	cat /sys/kernel/tracing/trace >"$R/trace.txt" 2>/dev/null
	echo "END 124" >>"$RESULT"
	poweroff_now
) &
watchdog=$!

# Writable scratch areas on top of the read-only host root.
mount -t tmpfs -o mode=0755 tmpfs /run
# /tmp stays the overlay's (writable, gone at power-off) and not a fresh
# tmpfs: the project tree under test may itself live under the host's /tmp
# (a CI clone), and the guest loads nfsd.ko and runs nfsd-helper from there.
mount -t tmpfs -o mode=0755 tmpfs /var/lib/nfs
# No /var/lib/nfs/v4recovery: the kernel's legacy tracker has no directory.
mkdir -p /run/lock /var/lib/nfs/rpc_pipefs /var/lib/nfs/sm
: >/var/lib/nfs/etab
: >/var/lib/nfs/rmtab
hostname vmtest
ip link set lo up || fatal "ip link set lo up"

# No silent fallback from the cld tracker to the usermode helper: the kernel
# execs /sbin/nfsdcltrack (here a symlink into /usr/sbin) from this root.
rm -f /usr/sbin/nfsdcltrack /sbin/nfsdcltrack 2>/dev/null
[ -e /sbin/nfsdcltrack ] && fatal "/sbin/nfsdcltrack still present in the overlay"
# No exports from the host's configuration.
: >/etc/exports
rm -rf /etc/exports.d

if [ -n "${NFSD_KO:-}" ]; then
	# A patched nfsd (kernel-patches/, scripts/build-kmod.sh): its
	# dependencies from the stock kernel first, then the module itself.
	[ -r "$NFSD_KO" ] || fatal "NFSD_KO=$NFSD_KO not readable in the guest"
	for dep in $(modinfo -F depends "$NFSD_KO" | tr ',' ' '); do
		modprobe "$dep" || fatal "modprobe $dep (needed by $NFSD_KO)"
	done
	insmod "$NFSD_KO" || fatal "insmod $NFSD_KO"
	echo "INFO nfsd module: $NFSD_KO (srcversion $(modinfo -F srcversion "$NFSD_KO"))" >>"$RESULT"
else
	modprobe nfsd || fatal "modprobe nfsd"
fi
mount -t nfsd nfsd /proc/fs/nfsd || fatal "mount nfsd filesystem"
mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs || fatal "mount rpc_pipefs"
# nfs-utils' configured pipefs directory (Debian's nfs.conf: /run/rpc_pipefs):
# the same per-netns superblock, mounted there too.
pipefs_conf=$(nfsconf --get general pipefs-directory 2>/dev/null || true)
if [ -n "$pipefs_conf" ] && [ "$pipefs_conf" != /var/lib/nfs/rpc_pipefs ]; then
	mkdir -p "$pipefs_conf" && mount -t rpc_pipefs sunrpc "$pipefs_conf"
fi

# Kernel trace events of the client and server sides of NFSv4 state
# (reclaims, server errors, grace, reconnects), saved as trace.txt: when a
# test fails only now and then, they say which side was late or refused.
# The NFSv4 client module is loaded now so that its events can be enabled.
modprobe nfsv4 2>/dev/null
TRACEFS=/sys/kernel/tracing
mountpoint -q "$TRACEFS" || mount -t tracefs tracefs "$TRACEFS" 2>/dev/null
traced=0
if [ -w "$TRACEFS/set_event" ]; then
	echo 4096 >"$TRACEFS/buffer_size_kb" 2>/dev/null
	for ev in nfsd:nfsd_compound_status nfsd:nfsd_grace_start nfsd:nfsd_grace_complete \
		nfsd:nfsd_clid_reclaim_complete nfsd:nfsd_clid_fresh nfsd:nfsd_clid_confirmed \
		nfs4:nfs4_setclientid nfs4:nfs4_setclientid_confirm nfs4:nfs4_renew_async \
		nfs4:nfs4_exchange_id nfs4:nfs4_create_session nfs4:nfs4_reclaim_complete \
		nfs4:nfs4_open_reclaim nfs4:nfs4_open_expired nfs4:nfs4_lock_reclaim \
		nfs4:nfs4_lock_expired nfs4:nfs4_state_mgr nfs4:nfs4_state_mgr_failed \
		nfs4:nfs4_xdr_status sunrpc:rpc_socket_connect sunrpc:rpc_socket_close \
		sunrpc:rpc_socket_reset_connection sunrpc:rpc_socket_error; do
		echo "$ev" >>"$TRACEFS/set_event" 2>/dev/null && traced=$((traced + 1))
	done
fi
echo "INFO trace: $traced kernel event(s) enabled, saved in trace.txt" >>"$RESULT"

echo "INFO kernel $(uname -r)" >>"$RESULT"
echo "INFO stage2 uptime ${up}s" >>"$RESULT"
say "running test $VM_TEST (tracker: ${TRACKER_CMD:-unset})"
export VM_RESULTS=$R VM_RESULT_FILE=$RESULT
start=$(cut -d' ' -f1 /proc/uptime)
bash "$VM_TEST" >"$R/test.log" 2>&1
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
echo "INFO test ran $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}')s in the guest" >>"$RESULT"
say "test exited with status $rc"
kill "$watchdog" 2>/dev/null
dmesg >"$R/dmesg.txt" 2>&1
[ "$traced" -gt 0 ] && cat "$TRACEFS/trace" >"$R/trace.txt" 2>&1
echo "END $rc" >>"$RESULT"
poweroff_now
