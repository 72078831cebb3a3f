#!/bin/bash
# Stage 2 of the real-kernel test VM with systemd as PID 1 (VM_INIT=systemd
# in run-vm.sh): runs as PID 1 inside the overlay (host root, read-only,
# with a tmpfs upper layer), prepares the overlay for a boot of the host's
# own systemd and execs it. systemd then starts vmtest.target alone:
# sysinit and basic, and vmtest.service, which runs ONE test script
# (guest/systemd-test.sh) and powers the VM off. Everything else, NFS
# included, is started by the test through systemctl, as on a server.
#
# Inputs and outputs are those of stage2.sh (/vm-results/vm.env, result,
# dmesg.txt, test.log, boot.txt); the journal of the boot is saved as
# journal.txt.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C LC_ALL=C
R=/vm-results
RESULT=$R/result
here=$(cd "$(dirname "$0")" && pwd)

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 1 >/proc/sys/kernel/sysrq
say() { echo "vm-stage2-systemd: $*" >/dev/console; }
read -r up _ </proc/uptime
echo "stage2_uptime $up" >"$R/boot.txt"
fatal() {
	say "FATAL: $*"
	echo "FAIL harness: $*" >>"$RESULT"
	dmesg >"$R/dmesg.txt" 2>&1
	echo "END 1" >>"$RESULT"
	sync
	echo o >/proc/sysrq-trigger
	sleep 60
}

# shellcheck disable=SC1091
[ -r "$R/vm.env" ] && set -a && . "$R/vm.env" && set +a
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vm.test=*) VM_TEST=${arg#vm.test=} ;;
	esac
done
[ -n "${VM_TEST:-}" ] || fatal "no test given"
[ -r "$VM_TEST" ] || fatal "test script $VM_TEST not readable in the guest"
[ -x /lib/systemd/systemd ] || fatal "no /lib/systemd/systemd in the host root"
: "${VM_GUEST_TIMEOUT:=400}"

# --- the overlay, as a freshly installed NFS server would be -----------------
# The host's mounts, services and settings are not the guest's: no fstab
# entries (the guest has no disks), no exports, no container policy that
# forbids maintainer scripts to start services, no man-db index rebuilt at
# every package install (minutes under TCG).
echo "# vmtest: the guest mounts nothing from fstab" >/etc/fstab
: >/etc/exports
rm -rf /etc/exports.d
rm -f /usr/sbin/policy-rc.d /var/lib/man-db/auto-update
echo vmtest >/etc/hostname
# The host's /tmp is the guest's too (the tree under test may be there): a
# boot must not empty it (Debian's tmpfiles.d/tmp.conf says "D /tmp").
echo "d /tmp 1777 root root -" >/etc/tmpfiles.d/tmp.conf
# No silent fallback from the cld tracker to the usermode helper.
rm -f /usr/sbin/nfsdcltrack /sbin/nfsdcltrack 2>/dev/null
# The host's own enabled services (databases, timers, gettys) stay off:
# only what vmtest.target and the test pull in starts.
rm -rf /etc/systemd/system/multi-user.target.wants \
	/etc/systemd/system/getty.target.wants \
	/etc/systemd/system/timers.target.wants \
	/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service
# nfs-server.service as Debian's nfs-kernel-server enables it.
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -sf /lib/systemd/system/nfs-server.service \
	/etc/systemd/system/multi-user.target.wants/nfs-server.service
# The NFS server's own settings: NFSv4 only, the kernel's shortest lease and
# grace period, so that restarts take seconds.
mkdir -p /etc/nfs.conf.d
cat >/etc/nfs.conf.d/vmtest.conf <<EOF
[nfsd]
vers3=n
udp=n
threads=2
grace-time=${NFSD_TIME:-10}
lease-time=${NFSD_TIME:-10}
EOF
# nfsd's state from the host's own NFS server, if any, is not the guest's.
rm -rf /var/lib/nfs/nfsdcld /var/lib/nfs/nfsd-helper /var/lib/nfs/v4recovery

cat >/etc/systemd/system/vmtest.target <<EOF
[Unit]
Description=nfsd-helper real-kernel test
Requires=basic.target vmtest.service
After=basic.target vmtest.service
AllowIsolate=yes
EOF
cat >/etc/systemd/system/vmtest.service <<EOF
[Unit]
Description=nfsd-helper real-kernel test: $(basename "$VM_TEST")
After=basic.target
[Service]
Type=oneshot
Environment=VM_TEST=$VM_TEST
ExecStart=/bin/bash $here/systemd-test.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
EOF
ln -sf vmtest.target /etc/systemd/system/default.target

# Guest-side watchdog (outlives the exec: systemd inherits it as a child).
(
	sleep "$VM_GUEST_TIMEOUT"
	say "watchdog: test still running after ${VM_GUEST_TIMEOUT}s, powering off"
	echo "FAIL guest-watchdog: test did not finish within ${VM_GUEST_TIMEOUT}s" >>"$RESULT"
	echo w >/proc/sysrq-trigger
	sleep 1
	dmesg >"$R/dmesg.txt" 2>&1
	journalctl -b --no-pager >"$R/journal.txt" 2>&1
	echo "END 124" >>"$RESULT"
	sync
	echo o >/proc/sysrq-trigger
) </dev/null >/dev/null 2>&1 &

say "up after ${up}s; starting systemd (vmtest.target)"
umount /dev /sys /proc
exec /lib/systemd/systemd --unit=vmtest.target --log-target=kmsg
