#!/bin/bash
# Story: helper-ctl end-grace ends nfsd's grace period on the real kernel,
# and the helper records it through the upcall that the write causes.
#
# The kernel answers a write of Y to v4_end_grace by sending GraceDone (cld)
# or grace_done (the four files) to the tracker; older 6.1 releases send it
# from the write itself and wait for the answer (the cld path without a
# timeout), Debian's current 6.1 hands it to the laundromat and refuses a
# write once grace is over (EBUSY). An NFSv4.0 client holds a
# lock, so after a restart grace cannot end early (a 4.0 client never sends
# RECLAIM_COMPLETE) and would last the whole 60 s: the client reclaims, then
# helper-ctl end-grace must return at once, nfsd must be out of grace, the
# helper must have recorded the end from the upcall (not from its own late
# look at v4_end_grace) and nfsd must not have logged a failed grace end;
# a second end-grace says the grace period had already ended.
# nfsdfs-end-grace is the same story on the patched kernel's four files.
here=$(dirname "$0")
: "${TRACKER_MODE:=helper-cld}"
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
CTL=$(dirname "${NFSD_HELPER:-/nonexistent}")/../ctl/helper-ctl
info "tracker ($TRACKER_MODE): $TRACKER_CMD"
[ -x "$CTL" ] || { fail helper-ctl "no helper-ctl next to NFSD_HELPER ($CTL)"; finish; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
scope_in_grace() { sqlite3 -readonly "$HELPER_DB" "select new_boot_time is not null from scopes where name = 'default';" 2>/dev/null; }

nfsd_set_times "$NFSD_TIME" 60 || fail lease-grace-time "could not set lease $NFSD_TIME s, grace 60 s"
check export "tmpfs $EXPORT exported to 127.0.0.1" export_tmpfs || finish
tracker_start_checked
mark start-1
nfsd_start || { fail nfsd-start-1 "rpc.nfsd failed"; finish; }
tracker_chosen_check start-1 start-1
modprobe nfsv4 2>/dev/null
mkdir -p /mnt/v40
check mount-v4.0 "127.0.0.1:/ on /mnt/v40" timeout 60 mount -t nfs4 -o vers=4.0 127.0.0.1:/ /mnt/v40 || finish
echo a >/mnt/v40/a
lock_hold h40 /mnt/v40/a
if wait_for 30 lock_locked h40; then pass lock-taken "the 4.0 client locks a"; else fail lock-taken "h40='$(lock_state h40)'"; finish; fi
if wait_for 10 tracker_db_has 'vmtest'; then pass recorded "tracker records: $(tracker_db_ids | tr '\n' '|')"; else fail recorded "tracker records: $(tracker_db_ids | tr '\n' '|')"; fi

mark restart-1
nfsd_stop && nfsd_start || fail nfsd-restart "rpc.nfsd failed"
t_restart=$(now)
tracker_chosen_check restart-1 restart-1
r=$(lock_io h40 r1)
if [ "$r" = ok ]; then pass io-after-restart "the 4.0 client reclaimed its lock (+$(since "$t_restart")s)"; else fail io-after-restart "$r"; fi
if in_grace && [ "$(scope_in_grace)" = 1 ]; then
	pass in-grace "nfsd and the helper's scope are in grace $(since "$t_restart")s after the restart"
else
	fail in-grace "v4_end_grace=$(cat /proc/fs/nfsd/v4_end_grace 2>&1) scope in grace=$(scope_in_grace)"
fi

ends_before=$(tracker_log_count 'ended its grace period')
t=$(now)
out=$(timeout 50 "$CTL" end-grace --json 2>&1)
rc=$?
took=$(since "$t")
if [ "$rc" = 0 ] && awk -v s="$took" 'BEGIN{exit !(s < 10)}'; then
	pass end-grace-returns "helper-ctl end-grace: rc 0 in ${took}s: $(tr -d '\n ' <<<"$out" | cut -c1-200)"
else
	fail end-grace-returns "rc $rc after ${took}s: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
fi
if grace_over; then pass kernel-out-of-grace "v4_end_grace says Y"; else fail kernel-out-of-grace "v4_end_grace says $(cat /proc/fs/nfsd/v4_end_grace 2>&1)"; fi
new_end() { grep -E 'ended its grace period' "$R/tracker.log" | sed -n "$((ends_before + 1))p"; }
has_new_end() { [ -n "$(new_end)" ]; }
if wait_for 10 has_new_end && new_end | grep -qE '\((cld GraceDone|grace_done) [0-9]+\)'; then
	pass end-recorded-from-upcall "$(new_end | cut -c1-200)"
else
	fail end-recorded-from-upcall "expected the end recorded from the GraceDone/grace_done upcall: '$(new_end | cut -c1-200)'"
fi
if [ "$(scope_in_grace)" = 0 ]; then pass scope-out-of-grace "the helper's scope is out of grace"; else fail scope-out-of-grace "scope in grace=$(scope_in_grace)"; fi
seg=$(nfsd_lines_since restart-1)
if grep -qiE 'Unable to end grace|grace_done.*fail' <<<"$seg"; then
	fail no-failed-grace-end "$(grep -iE 'Unable to end grace|grace_done.*fail' <<<"$seg" | tr '\n' '|')"
else
	pass no-failed-grace-end "dmesg: $(grep -iE 'grace' <<<"$seg" | sed 's/^\[[^]]*\] //' | tr '\n' '|')"
fi
out=$("$CTL" end-grace 2>&1)
rc=$?
if [ "$rc" = 0 ] && grep -q 'had already ended' <<<"$out"; then
	pass end-grace-again "a second end-grace: $out"
else
	fail end-grace-again "a second end-grace: rc $rc: $out"
fi
r=$(lock_io h40 r2)
if [ "$r" = ok ]; then pass io-after-end-grace "ok"; else fail io-after-end-grace "$r"; fi

lock_release h40
umount /mnt/v40 || fail umount "umount /mnt/v40 failed"
nfsd_stop
if tracker_alive; then pass tracker-alive "still running"; else fail tracker-alive "exited: $(tail -5 "$R/tracker.log" | tr '\n' '|')"; fi
tracker_stop
bad=$(dmesg | grep -E 'BUG|WARNING|Oops|general protection|Call Trace|blocked for more than' | tr '\n' '|')
if [ -z "$bad" ]; then pass kernel-healthy "no BUG/WARNING/Oops in dmesg"; else fail kernel-healthy "$bad"; fi
nfsd_lines_since start-1 >"$R/nfsd-dmesg.txt"
finish
