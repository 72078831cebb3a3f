#!/bin/bash
# Story: the nfsd-helper Debian package on a real NFS server, systemd as
# PID 1 (stage2-systemd.sh), Debian's stock kernel and nfs-kernel-server.
#
# 1. nfs-server.service starts with nfsdcld, as Debian ships it; an NFSv4.1
#    and an NFSv4.2 client each take a lock. (Not 4.0: Linux 6.1 sends no
#    Create when a 4.0 client reclaims, so whichever cld tracker runs drops
#    it at the end of the grace period and it cannot reclaim twice; see
#    "Findings with Debian's nfsdcld" in tests/vm/README.md.)
# 2. `dpkg -i nfsd-helper_*.deb`: nfsdcld is stopped, nfsd-helper starts and
#    imports nfsdcld's records. A third client (another network and UTS
#    namespace, so another client owner) mounts and locks now: only
#    nfsd-helper ever records it.
# 3. `systemctl restart nfs-server`: nfsd-helper is the tracker (it holds
#    the cld pipe and answered the grace start, helper-ctl status says so),
#    and both clients reclaim their locks.
# 4. `dpkg -r nfsd-helper`: the records are handed back to nfsdcld (a new
#    epoch, with the third client), the helper's database is moved aside,
#    and nfsdcld starts again.
# 5. `systemctl restart nfs-server`: nfsdcld is the tracker and all three
#    clients reclaim again.
# 6. `dpkg --purge`: the state directory and the nfs.conf.d file are gone,
#    and nfsdcld still serves.
# See tests/vm/README.md.
here=$(dirname "$0")
TRACKER_MODE=cld
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
jlog() { journalctl -b --no-pager -o short-monotonic "$@" 2>/dev/null; }

if [ "$(cat /proc/1/comm)" = systemd ]; then
	pass systemd-pid1 "$(systemctl --version | head -n 1)"
else
	fail systemd-pid1 "PID 1 is $(cat /proc/1/comm)"
	finish
fi
[ -r "${NFSDH_DEB:-}" ] || { fail package "NFSDH_DEB='${NFSDH_DEB:-}' not readable"; finish; }
info "package: $NFSDH_DEB"

# The pid of a unit's main process, and whether it holds the cld pipe open.
main_pid() { systemctl show -p MainPID --value "$1"; }
holds_pipe() {
	local pid
	pid=$(main_pid "$1")
	[ -n "$pid" ] && [ "$pid" != 0 ] && ls -l "/proc/$pid/fd" 2>/dev/null | grep -q 'nfsd/cld$'
}
active() { systemctl is-active --quiet "$1"; }
inactive() { ! systemctl is-active --quiet "$1"; }

# restart TAG: systemctl restart nfs-server, between kernel log markers.
restart() {
	local t
	mark "restart-$1"
	t=$(now)
	systemctl restart nfs-server.service || fail "restart-$1" "systemctl restart nfs-server failed: $(systemctl status nfs-server --no-pager 2>&1 | tail -5 | tr '\n' '|')"
	T_RESTART=$(now)
	mark "started-$1"
	info "restart $1: systemctl restart nfs-server took $(since "$t")s"
}
# reclaimed TAG: after a restart every holder's I/O works on its locked
# fd (the clients reclaimed), grace ends, no lock was lost, and each lock
# still conflicts with another client.
reclaimed() {
	local tag=$1 h r cl
	for h in h41 h42 hn; do
		r=$(lock_io "$h" "$tag")
		if [ "$r" = ok ]; then pass "io-after-restart-$tag-$h" "ok at +$(since "$T_RESTART")s"; else fail "io-after-restart-$tag-$h" "$r"; fi
	done
	if wait_for 90 grace_over; then pass "grace-ended-$tag" "$(since "$T_RESTART")s after the restart"; else fail "grace-ended-$tag" "still in grace after 90 s"; fi
	cl=$(dmesg_since "restart-$tag" | grep -iE 'lock reclaim failed|lost [0-9]+ locks?|lost lock|unhandled error' | sed 's/^\[[^]]*\] //' | tr '\n' '|')
	if [ -z "$cl" ]; then pass "client-recovery-clean-$tag" "no lost locks in dmesg"; else fail "client-recovery-clean-$tag" "$cl"; fi
	lock_try "lock-kept-v4.1-$tag" "4.2 client tries a" /mnt/v42/a CONFLICT
	lock_try "lock-kept-v4.2-$tag" "4.1 client tries b" /mnt/v41/b CONFLICT
	lock_try "lock-kept-new-$tag" "4.2 client tries n" /mnt/v42/n CONFLICT
}
# chosen TAG WHO: the kernel chose cld tracking at the restart TAG, and the
# main process of WHO (nfsdcld.service or nfsd-helper.service) holds the pipe.
chosen() {
	local tag=$1 unit=$2 seg
	seg=$(nfsd_lines_since "restart-$tag")
	if grep -q 'Using nfsdcld client tracking operations' <<<"$seg" &&
		! grep -q 'UMH upcall\|legacy client tracking\|state recovery directory\|Unable to initialize client recovery' <<<"$seg"; then
		pass "cld-tracking-$tag" "dmesg: $(grep 'client tracking operations' <<<"$seg" | tail -n 1 | sed 's/^\[[^]]*\] //')"
	else
		fail "cld-tracking-$tag" "dmesg: $(tr '\n' '|' <<<"$seg")"
	fi
	if wait_for 10 holds_pipe "$unit"; then
		pass "pipe-held-by-$unit-$tag" "pid $(main_pid "$unit")"
	else
		fail "pipe-held-by-$unit-$tag" "main pid $(main_pid "$unit") does not hold the cld pipe"
	fi
}

# --- 1. Debian as shipped: nfsdcld -------------------------------------------
mkdir -p "$EXPORT" && mount -t tmpfs -o mode=0777 tmpfs "$EXPORT"
opts="rw,fsid=0,no_root_squash,no_subtree_check,insecure,sync"
# nfs-server.service runs exportfs -r at each start: exports live in
# /etc/exports, for this host and for the third client's namespace.
echo "$EXPORT 127.0.0.1($opts) $PART_CLI($opts)" >/etc/exports
check netns "namespace part, $PART_CLI behind veth to $PART_SRV" bash -c "
	ip netns add part &&
	ip link add vh type veth peer name vc netns part &&
	ip addr add $PART_SRV/24 dev vh && ip link set vh up &&
	ip -n part addr add $PART_CLI/24 dev vc && ip -n part link set vc up &&
	ip -n part link set lo up" || finish
mark restart-1
systemctl start nfs-server.service || fail nfs-server-start "$(systemctl status nfs-server --no-pager 2>&1 | tail -5 | tr '\n' '|')"
T_RESTART=$(now)
chosen 1 nfsdcld.service
modprobe nfsv4 2>/dev/null
mkdir -p /mnt/v41 /mnt/v42
check mount-v4.1 "vers=4.1" timeout 60 mount -t nfs4 -o vers=4.1 127.0.0.1:/ /mnt/v41 || finish
check mount-v4.2 "vers=4.2" timeout 60 mount -t nfs4 -o vers=4.2 127.0.0.1:/ /mnt/v42 || finish
echo a >/mnt/v41/a && echo b >/mnt/v42/b
lock_hold h41 /mnt/v41/a
lock_hold h42 /mnt/v42/b
if wait_for 30 lock_locked h41 && wait_for 30 lock_locked h42; then
	pass locks-taken "4.1 client locks a, 4.2 client locks b"
else
	fail locks-taken "h41='$(lock_state h41)' h42='$(lock_state h42)'"
	finish
fi
if wait_for 20 tracker_db_has 'NFSv4\.2' && wait_for 20 tracker_db_has 'NFSv4\.1'; then
	pass nfsdcld-records "nfsdcld's current epoch: $(tracker_db_ids | tr '\n' '|')"
else
	fail nfsdcld-records "nfsdcld's current epoch: $(tracker_db_ids | tr '\n' '|')"
fi

# --- 2. the package is installed ----------------------------------------------
t=$(now)
if dpkg -i "$NFSDH_DEB" >"$R/dpkg-install.log" 2>&1; then
	pass dpkg-install "in $(since "$t")s"
else
	fail dpkg-install "$(tail -5 "$R/dpkg-install.log" | tr '\n' '|')"
	finish
fi
check nfsdcld-stopped "nfsdcld.service inactive after the install" wait_for 10 inactive nfsdcld.service
check helper-started "nfsd-helper.service active" wait_for 10 active nfsd-helper.service
check helper-enabled "nfs-server.service wants nfsd-helper.service" \
	bash -c "systemctl show -p Wants --value nfs-server.service | grep -qw nfsd-helper.service"
if [ "$(stat -c %a /var/lib/nfs/nfsd-helper)" = 700 ]; then pass state-dir-0700 /var/lib/nfs/nfsd-helper; else fail state-dir-0700 "$(stat -c %a /var/lib/nfs/nfsd-helper)"; fi
status=$(helper-ctl status 2>&1)
if grep -q '^nfsd-helper ' <<<"$status"; then pass helper-ctl-status "$(head -n 1 <<<"$status")"; else fail helper-ctl-status "$(tr '\n' '|' <<<"$status")"; fi
dump=$(helper-ctl dump 2>&1)
if grep -q 'NFSv4\.1' <<<"$dump" && grep -q 'NFSv4\.2' <<<"$dump"; then
	pass imported "helper-ctl dump: $(grep -c 'NFSv4' <<<"$dump") record(s)"
else
	fail imported "nfsdcld's records not in helper-ctl dump: $(tr '\n' '|' <<<"$dump")"
fi

# A client nfsdcld never sees: hostname newclient, in namespace part.
rm -f /tmp/new-mounted
ip netns exec part unshare --uts bash -c "hostname newclient && mkdir -p /mnt/new && timeout 60 mount -t nfs4 -o vers=4.2 $PART_SRV:/ /mnt/new && touch /tmp/new-mounted && exec sleep 100000" >>"$R/test.log" 2>&1 &
KEEP=$!
NEW=(nsenter -t "$KEEP" -m -n -u)
if wait_for 70 test -e /tmp/new-mounted; then pass mount-new "vers=4.2 $PART_SRV:/ from namespace part, hostname newclient"; else fail mount-new "mount in namespace part failed"; finish; fi
echo n >/mnt/v42/n
lock_hold hn /mnt/new/n "${NEW[@]}"
if wait_for 30 lock_locked hn; then pass lock-new "newclient locks n"; else fail lock-new "hn='$(lock_state hn)'"; finish; fi
dump=$(helper-ctl dump 2>&1)
if grep -q newclient <<<"$dump"; then pass helper-records-new "helper-ctl dump: $(grep -c 'NFSv4' <<<"$dump") record(s)"; else fail helper-records-new "$(tr '\n' '|' <<<"$dump")"; fi
epoch_before=$(sqlite3 -readonly "$NFSDCLD_DB" 'select current from grace;')

# --- 3. restart with nfsd-helper ----------------------------------------------
restart 2
chosen 2 nfsd-helper.service
reclaimed 2
status=$(helper-ctl status 2>&1)
last=$(grep 'last start' <<<"$status")
if grep -q '3 allowed to reclaim, 3 reclaimed' <<<"$last"; then pass helper-answered-start "$last"; else fail helper-answered-start "$last"; fi
check nfsdcld-skipped "nfsdcld.service stays inactive" inactive nfsdcld.service
info "journal of nfsd-helper: $(jlog -u nfsd-helper.service | tail -n 6 | cut -c1-160 | tr '\n' '|')"

# --- 4. the package is removed: back to nfsdcld --------------------------------
t=$(now)
if dpkg -r nfsd-helper >"$R/dpkg-remove.log" 2>&1; then
	pass dpkg-remove "in $(since "$t")s"
else
	fail dpkg-remove "$(tail -5 "$R/dpkg-remove.log" | tr '\n' '|')"
	finish
fi
check helper-gone "no nfsd-helper binary, unit inactive" bash -c "[ ! -e /usr/sbin/nfsd-helper ] && ! systemctl is-active --quiet nfsd-helper.service"
check nfsdcld-back "nfsdcld.service active again" wait_for 10 active nfsdcld.service
epoch_after=$(sqlite3 -readonly "$NFSDCLD_DB" 'select current from grace;')
if tracker_db_has 'NFSv4\.2 vmtest' && tracker_db_has 'NFSv4\.1 vmtest' && tracker_db_has newclient &&
	[ "$epoch_after" -gt "$epoch_before" ]; then
	pass handed-back "nfsdcld's current epoch $epoch_after (was $epoch_before): $(tracker_db_ids | tr '\n' '|')"
else
	fail handed-back "nfsdcld's current epoch $epoch_after (was $epoch_before): $(tracker_db_ids | tr '\n' '|')"
fi
if [ ! -e /var/lib/nfs/nfsd-helper/state.sqlite ] && ls /var/lib/nfs/nfsd-helper/state.sqlite.handed-back-* >/dev/null 2>&1; then
	pass helper-db-retired "$(ls /var/lib/nfs/nfsd-helper/ | tr '\n' ' ')"
else
	fail helper-db-retired "$(ls /var/lib/nfs/nfsd-helper/ | tr '\n' ' ')"
fi

# --- 5. restart with nfsdcld ---------------------------------------------------
restart 3
chosen 3 nfsdcld.service
reclaimed 3

# --- 6. purge: nothing of the helper is left, nfsdcld keeps serving ------------
if dpkg --purge nfsd-helper >"$R/dpkg-purge.log" 2>&1; then
	pass dpkg-purge "$(dpkg-query -W -f='${db:Status-Status}' nfsd-helper 2>&1)"
else
	fail dpkg-purge "$(tail -5 "$R/dpkg-purge.log" | tr '\n' '|')"
fi
check purged "no state directory, no nfs.conf.d file" \
	bash -c "[ ! -e /var/lib/nfs/nfsd-helper ] && [ ! -e /etc/nfs.conf.d/nfsd-helper.conf ]"
check nfsdcld-after-purge "nfsdcld.service still active, holding the pipe" holds_pipe nfsdcld.service
finish
