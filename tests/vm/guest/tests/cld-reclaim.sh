#!/bin/bash
# Story: nfsd-helper serves the stock kernel's cld pipe in place of nfsdcld.
# NFSv4.0 and NFSv4.2 clients hold locks across an nfsd restart; then a
# restart during the grace period of another; then nfsd-helper is killed
# (SIGKILL) and started again while nfsd runs, a new NFSv4.1 client is
# recorded by the new process, and all clients reclaim at the next restart.
# Every start must choose the cld tracker. See tests/vm/README.md.
here=$(dirname "$0")
: "${TRACKER_MODE:=helper-cld}"
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
info "tracker: $TRACKER_CMD"
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
helper_mode() { [ "$TRACKER_MODE" != cld ]; }
GRACE_START_LOG='starts its grace period \(cld'

nfsd_set_times "$NFSD_TIME" || fail lease-grace-time "could not set $NFSD_TIME s"
check export "tmpfs $EXPORT exported to 127.0.0.1" export_tmpfs || finish
tracker_start
if wait_for 10 tracker_has_watch; then
	pass tracker-started "pid $TRACKER_PID watching $TRACKER_WATCH_DESC"
else
	fail tracker-started "no inotify watch or pipe after 10 s: $(tail -5 "$R/tracker.log" | tr '\n' '|')"
	finish
fi

# restart_only TAG: rpc.nfsd 0; rpc.nfsd, between the kernel log markers
# restart-TAG and started-TAG.
restart_only() {
	local t
	mark "restart-$1"
	t=$(now)
	nfsd_stop && nfsd_start || fail "nfsd-restart-$1" "rpc.nfsd failed"
	T_RESTART=$(now)
	IN_GRACE=0
	in_grace && IN_GRACE=1
	mark "started-$1"
	info "restart $1: rpc.nfsd 0 + rpc.nfsd took $(since "$t")s"
}
# restart_checks TAG GRACE_STARTS_BEFORE: the kernel chose the tracker at
# that restart, and nfsd-helper logged a GraceStart since.
restart_checks() {
	local tag=$1 n=$2 seg
	seg=$(dmesg | sed -n "/vmtest: mark restart-$tag\$/,/vmtest: mark started-$tag\$/p")
	if grep -q "$TRACKER_CHOSEN" <<<"$seg" && ! grep -q 'UMH upcall\|legacy client tracking\|state recovery directory\|Unable to initialize client recovery' <<<"$seg"; then
		pass "tracker-chosen-restart-$tag" "dmesg: $(grep 'client tracking operations' <<<"$seg" | sed 's/^\[[^]]*\] //')"
	else
		fail "tracker-chosen-restart-$tag" "the kernel did not choose the tracker ($TRACKER_CHOSEN); dmesg: $(grep -E 'NFSD|nfsd' <<<"$seg" | tr '\n' '|')"
	fi
	if helper_mode; then
		grace_starts_after() { [ "$(tracker_log_count "$GRACE_START_LOG")" -gt "$1" ]; }
		if wait_for 5 grace_starts_after "$n"; then
			pass "grace-start-$tag" "helper log: $(grep -E "$GRACE_START_LOG" "$R/tracker.log" | sed -n "$((n + 1))p")"
		else
			fail "grace-start-$tag" "no new GraceStart in the helper's log"
		fi
	fi
}
restart() {
	local n
	n=$(tracker_log_count "$GRACE_START_LOG")
	restart_only "$1"
	restart_checks "$1" "$n"
}
# reclaimed TAG HOLDER... : after a restart, I/O on each holder's locked fd
# works (the client reclaims), grace ends, and no lock was lost.
reclaimed() {
	local tag=$1 h r cl
	shift
	for h in "$@"; do
		r=$(lock_io "$h" "$tag")
		if [ "$r" = ok ]; then pass "io-after-restart-$tag-$h" "ok at +$(since "$T_RESTART")s"; else fail "io-after-restart-$tag-$h" "$r; $(recovery_story "$T_RESTART")"; fi
	done
	if wait_for 90 grace_over; then pass "grace-ended-$tag" "$(since "$T_RESTART")s after the restart"; else fail "grace-ended-$tag" "still in grace after 90 s"; fi
	cl=$(dmesg_since "restart-$tag" | grep -iE 'lock reclaim failed|lost [0-9]+ locks?|lost lock|unhandled error' | sed 's/^\[[^]]*\] //' | tr '\n' '|')
	if [ -z "$cl" ]; then pass "client-recovery-clean-$tag" "no lost locks in dmesg"; else fail "client-recovery-clean-$tag" "$cl"; fi
}
records() {
	local name=$1 want=$2
	if wait_for 10 tracker_db_has "$want"; then
		pass "$name" "tracker records: $(tracker_db_ids | tr '\n' '|')"
	else
		fail "$name" "no record matching '$want': $(tracker_db_ids | tr '\n' '|')"
	fi
}

# --- first start, two clients, two locks -----------------------------------
mark start-1
nfsd_start || { fail nfsd-start-1 "rpc.nfsd $NFSD_ARGS failed"; finish; }
tracker_chosen_check start-1 start-1
if wait_for 5 tracker_has_pipe; then pass tracker-pipe-open "holds $TRACKER_PIPE_DESC"; else fail tracker-pipe-open "does not hold the cld pipe"; fi
modprobe nfsv4 2>/dev/null
mkdir -p /mnt/v40 /mnt/v42 /mnt/v41
check mount-v4.0 "vers=4.0" timeout 60 mount -t nfs4 -o vers=4.0 127.0.0.1:/ /mnt/v40 || finish
check mount-v4.2 "vers=4.2" timeout 60 mount -t nfs4 -o vers=4.2 127.0.0.1:/ /mnt/v42 || finish
echo a >/mnt/v40/a && echo b >/mnt/v42/b && echo c >/mnt/v42/c
lock_hold h40 /mnt/v40/a
lock_hold h42 /mnt/v42/b
if wait_for 30 lock_locked h40 && wait_for 30 lock_locked h42; then
	pass locks-taken "4.0 client locks a, 4.2 client locks b"
else
	fail locks-taken "h40='$(lock_state h40)' h42='$(lock_state h42)'"
	finish
fi
lock_try conflict-a "4.2 client tries a" /mnt/v42/a CONFLICT
lock_try conflict-b "4.0 client tries b" /mnt/v40/b CONFLICT
# The 4.2 client is recorded at RECLAIM_COMPLETE, the 4.0 client at
# OPEN_CONFIRM.
records recorded-v4.2 'NFSv4\.2 vmtest'
records recorded-v4.0 'NFSv4\.0'
if helper_mode; then
	n=$(tracker_log_count 'cld Create')
	if [ "$n" -ge 2 ]; then pass helper-creates "$n cld Create upcall(s) in the helper's log"; else fail helper-creates "$n cld Create upcall(s) in the helper's log"; fi
fi

# --- restart 1: both clients reclaim ----------------------------------------
restart 1
reclaimed 1 h40 h42
lock_try lock-reclaimed-v4.0-1 "4.2 client tries a" /mnt/v42/a CONFLICT
lock_try lock-reclaimed-v4.2-1 "4.0 client tries b" /mnt/v40/b CONFLICT
records recorded-after-grace-1 'NFSv4\.2 vmtest'
# Linux 6.1 sends no Create when an NFSv4.0 client reclaims (cld v2 checks
# only its in-memory reclaim table), so the 4.0 client's record is not
# refreshed in the new instance and is dropped at GraceDone: any tracker of
# the stock kernel loses it (tests/vm/README.md). For information only.
if tracker_db_has 'NFSv4\.0'; then info "4.0 client still recorded after grace 1"; else info "4.0 client no longer recorded after grace 1 (no Create on a 4.0 reclaim)"; fi
lock_release h40

# --- restart during grace: two restarts, the second while in grace ----------
# A 4.0 client on the allow list makes grace run its full length (it sends
# no RECLAIM_COMPLETE), so restart 3 certainly comes during the grace period
# of restart 2. A second 4.0 mount with its own superblock opens a file with
# a new open-owner: OPEN_CONFIRM, so Create.
mkdir -p /mnt/v40b
check mount-v4.0-second "vers=4.0,nosharecache" timeout 60 mount -t nfs4 -o vers=4.0,nosharecache 127.0.0.1:/ /mnt/v40b || finish
cat /mnt/v40b/a >/dev/null
records recorded-v4.0-again 'NFSv4\.0'
n=$(tracker_log_count "$GRACE_START_LOG")
restart_only 2
ig=$IN_GRACE
restart_only 3
if [ "$ig" = 1 ]; then pass in-grace-2 "restart 3 came while the server was in grace after restart 2"; else fail in-grace-2 "not in grace right after restart 2"; fi
restart_checks 2 "$n"
restart_checks 3 "$((n + 1))"
if helper_mode; then
	if grep -E "$GRACE_START_LOG" "$R/tracker.log" | tail -1 | grep -q 'never ended its grace period'; then
		pass restart-in-grace-seen "helper: $(grep -E "$GRACE_START_LOG" "$R/tracker.log" | tail -1)"
	else
		fail restart-in-grace-seen "the last GraceStart does not say the previous instance never ended grace: $(grep -E "$GRACE_START_LOG" "$R/tracker.log" | tail -1)"
	fi
fi
reclaimed 3 h42
lock_try lock-reclaimed-v4.2-3 "4.0 client tries b" /mnt/v40/b CONFLICT
records recorded-after-grace-3 'NFSv4\.2 vmtest'

# --- tracker killed and restarted while nfsd runs ---------------------------
kill -9 "$TRACKER_PID"
wait_for 5 bash -c "! kill -0 $TRACKER_PID 2>/dev/null"
info "tracker pid $TRACKER_PID killed with SIGKILL"
tracker_start
if wait_for 10 tracker_has_pipe; then pass tracker-reopened "new pid $TRACKER_PID holds $TRACKER_PIPE_DESC"; else fail tracker-reopened "no cld pipe open: $(tail -5 "$R/tracker.log" | tr '\n' '|')"; fi
mark mount-v4.1
check mount-v4.1 "vers=4.1 after the tracker restarted" timeout 60 mount -t nfs4 -o vers=4.1 127.0.0.1:/ /mnt/v41 || finish
lock_hold h41 /mnt/v41/c
if wait_for 30 lock_locked h41; then pass lock-taken-v4.1 "4.1 client locks c"; else fail lock-taken-v4.1 "h41='$(lock_state h41)'"; fi
records recorded-v4.1 'NFSv4\.1 vmtest'
if dmesg_since mount-v4.1 | grep -q 'Unable to create client record'; then
	fail create-after-tracker-restart "$(dmesg_since mount-v4.1 | grep 'Unable to create' | tr '\n' '|')"
fi
restart 4
reclaimed 4 h42 h41
lock_try lock-reclaimed-v4.2-4 "4.0 client tries b" /mnt/v40/b CONFLICT
lock_try lock-reclaimed-v4.1-4 "4.2 client tries c" /mnt/v42/c CONFLICT
records recorded-after-grace-4-v4.1 'NFSv4\.1 vmtest'
records recorded-after-grace-4-v4.2 'NFSv4\.2 vmtest'
tracker_db_info "at the end"

# --- control, teardown, kernel health ---------------------------------------
lock_release h42
lock_release h41
lock_try released-b-acquirable "4.0 client tries b after release" /mnt/v40/b ACQUIRED
lock_try released-c-acquirable "4.2 client tries c after release" /mnt/v42/c ACQUIRED
umount /mnt/v40 /mnt/v40b /mnt/v42 /mnt/v41 || fail umount "umount failed"
nfsd_stop
if tracker_alive; then pass tracker-alive "still running"; else fail tracker-alive "exited: $(tail -5 "$R/tracker.log" | tr '\n' '|')"; fi
tracker_stop
bad=$(dmesg | grep -E 'BUG|WARNING|Oops|general protection|Call Trace|blocked for more than' | tr '\n' '|')
if [ -z "$bad" ]; then pass kernel-healthy "no BUG/WARNING/Oops in dmesg"; else fail kernel-healthy "$bad"; fi
nfsd_lines_since start-1 >"$R/nfsd-dmesg.txt"
finish
