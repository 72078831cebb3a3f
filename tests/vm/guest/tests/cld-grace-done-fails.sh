#!/bin/bash
# Story: a GraceDone the tracker cannot store must still end the grace
# period (RFC 7530 9.6.3.4, second edge condition; research/recovery.md
# scenario 16), on the stock kernel's cld pipe.
#
# Client A ("partclient", in its own network and UTS namespace behind a
# veth pair) locks p; client B (the root namespace) locks r. nfsd restarts
# with A cut off: A cannot reclaim, B reclaims r. While the grace period
# ends, another process holds SQLite's write lock on the helper's database
# (as an administrator's sqlite3 shell left in a transaction would), so the
# helper's GraceDone transaction fails and the upcall is answered -EIO; the
# stock kernel ends its grace period anyway. B then locks p, which A held.
# nfsd restarts again and A's link comes back: A must not reclaim p (its
# I/O gets EIO and B keeps p), and the allow list of that start must hold B
# alone. Without the helper's recording of the missed grace end, the scope
# stays "in grace", the second restart keeps A's record, and A reclaims a
# lock that B was granted in between.
here=$(dirname "$0")
: "${TRACKER_MODE:=helper-cld}"
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
info "tracker ($TRACKER_MODE): $TRACKER_CMD"
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
SRV=$PART_SRV
CLI=$PART_CLI

nfsd_set_times "$NFSD_TIME" || fail lease-grace-time "could not set $NFSD_TIME s"
check export "tmpfs $EXPORT exported to 127.0.0.1" export_tmpfs || finish
check netns "namespace part, $CLI behind veth to $SRV, exported" part_netns_setup || finish

tracker_start_checked
mark start-1
nfsd_start || { fail nfsd-start-1 "rpc.nfsd failed"; finish; }
tracker_chosen_check start-1 start-1
modprobe nfsv4 2>/dev/null

mkdir -p /mnt/root
rm -f /tmp/part-mounted
ip netns exec part unshare --uts bash -c "hostname partclient && mkdir -p /mnt/part && timeout 60 mount -t nfs4 -o vers=4.2 $SRV:/ /mnt/part && touch /tmp/part-mounted && exec sleep 100000" >>"$R/test.log" 2>&1 &
KEEP=$!
PART=(nsenter -t "$KEEP" -m -n -u)
if wait_for 70 test -e /tmp/part-mounted; then pass mount-a "vers=4.2 $SRV:/ from namespace part, hostname partclient"; else fail mount-a "mount in namespace part failed"; finish; fi
check mount-b "vers=4.2 127.0.0.1:/ on /mnt/root" timeout 60 mount -t nfs4 -o vers=4.2 127.0.0.1:/ /mnt/root || finish
echo p >/mnt/root/p && echo r >/mnt/root/r
lock_hold ha /mnt/part/p "${PART[@]}"
lock_hold hb /mnt/root/r
if wait_for 30 lock_locked ha && wait_for 30 lock_locked hb; then
	pass locks-taken "A locks p, B locks r"
else
	fail locks-taken "ha='$(lock_state ha)' hb='$(lock_state hb)'"
	finish
fi
if wait_for 10 tracker_db_has partclient && tracker_db_has 'NFSv4\.2 vmtest'; then
	pass recorded-both "tracker records: $(tracker_db_ids | tr '\n' '|')"
else
	fail recorded-both "tracker records: $(tracker_db_ids | tr '\n' '|')"
fi

# --- restart with A cut off; the grace end cannot be stored -----------------
ip link set vh down
creates_before=$(tracker_log_count 'cld Create [0-9]+: client .*vmtest')
mark restart-1
nfsd_stop && nfsd_start || fail nfsd-restart-1 "rpc.nfsd failed"
t_restart=$(now)
tracker_chosen_check restart-1 restart-1
r=$(lock_io hb r1)
if [ "$r" = ok ]; then pass io-b-after-restart-1 "B reclaimed r (+$(since "$t_restart")s)"; else fail io-b-after-restart-1 "$r"; fi
# B's RECLAIM_COMPLETE is recorded before the database is locked.
b_recorded() { [ "$(tracker_log_count 'cld Create [0-9]+: client .*vmtest')" -gt "$creates_before" ]; }
if wait_for 30 b_recorded; then pass b-recorded-1 "B recorded in the new instance"; else fail b-recorded-1 "no Create of B after restart-1"; fi
# Take SQLite's write lock while nfsd is still in grace, and keep it until
# the kernel has ended grace and the helper has answered its GraceDone.
rm -f /tmp/dblock-held /tmp/dblock-release
"$PY" - "$HELPER_DB" <<'EOF' >>"$R/test.log" 2>&1 &
import os, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN EXCLUSIVE")
open("/tmp/dblock-held", "w").close()
deadline = time.time() + 240
while not os.path.exists("/tmp/dblock-release") and time.time() < deadline:
    time.sleep(0.1)
con.execute("ROLLBACK")
EOF
LOCKER=$!
if wait_for 20 test -e /tmp/dblock-held; then
	pass db-locked "another process holds the database's write lock; in grace: $(in_grace && echo yes || echo no)"
else
	fail db-locked "could not take the write lock"
fi
if wait_for 90 grace_over; then pass grace-ended-1 "the kernel ended its grace period $(since "$t_restart")s after the restart"; else fail grace-ended-1 "still in grace"; fi
gd_failed() { nfsd_lines_since restart-1 | grep -q 'Unable to end grace period: -5'; }
if wait_for 60 gd_failed; then
	pass grace-done-failed "dmesg: $(nfsd_lines_since restart-1 | grep -m1 'Unable to end grace period' | sed 's/^\[[^]]*\] //'); helper: $(grep -m1 'answered -EIO' "$R/tracker.log" | cut -c1-160)"
else
	fail grace-done-failed "nfsd never logged a failed GraceDone: $(nfsd_lines_since restart-1 | grep -i grace | tr '\n' '|')"
fi
seg=$(nfsd_lines_since restart-1)
info "dmesg after restart-1: $(grep -iE 'grace' <<<"$seg" | sed 's/^\[[^]]*\] //' | tr '\n' '|')"
touch /tmp/dblock-release
wait "$LOCKER"

# B now takes p, which A held before restart-1.
lock_hold hb2 /mnt/root/p
if wait_for 30 lock_locked hb2; then pass b-locks-p "B holds p after grace"; else fail b-locks-p "hb2='$(lock_state hb2)'"; fi

# --- restart again, and A comes back -----------------------------------------
gs_before=$(tracker_log_count 'starts its grace period')
mark restart-2
nfsd_stop && nfsd_start || fail nfsd-restart-2 "rpc.nfsd failed"
t_restart=$(now)
tracker_chosen_check restart-2 restart-2
new_grace_start() { grep -E 'starts its grace period' "$R/tracker.log" | sed -n "$((gs_before + 1))p"; }
has_new_grace_start() { [ -n "$(new_grace_start)" ]; }
wait_for 10 has_new_grace_start
if new_grace_start | grep -q '; 1 client(s) may reclaim'; then
	pass allow-list-without-a "$(new_grace_start | cut -c1-220)"
else
	fail allow-list-without-a "expected B alone on the allow list: $(new_grace_start | cut -c1-220)"
fi
ip link set vh up
r=$(lock_io hb2 r2)
if [ "$r" = ok ]; then pass io-b-after-restart-2 "B reclaimed p (+$(since "$t_restart")s)"; else fail io-b-after-restart-2 "$r"; fi
r=$(lock_io ha r2 180)
case "$r" in
"error EIO"*) pass a-lock-lost "A's reclaim of p was refused: $r (+$(since "$t_restart")s)" ;;
*) fail a-lock-lost "expected EIO on A's p (reclaim refused), got '$r'" ;;
esac
wait_for 90 grace_over || fail grace-ended-2 "still in grace 90 s after restart-2"
lock_release ha
lock_try b-keeps-p "after grace, A tries p" /mnt/part/p CONFLICT "${PART[@]}"
info "helper: $(grep -E 'pending|recorded after nfsd|v4_end_grace|-EIO' "$R/tracker.log" | cut -c1-200 | tr '\n' '|')"
info "tracker records at the end: $(tracker_db_ids | tr '\n' '|')"

# --- teardown ----------------------------------------------------------------
lock_release hb
lock_release hb2
"${PART[@]}" umount /mnt/part 2>/dev/null || info "umount in part failed"
kill "$KEEP" 2>/dev/null
umount /mnt/root || fail umount "umount /mnt/root failed"
nfsd_stop
if tracker_alive; then pass tracker-alive "still running"; else fail tracker-alive "exited: $(tail -5 "$R/tracker.log" | tr '\n' '|')"; fi
tracker_stop
bad=$(dmesg | grep -E 'BUG|WARNING|Oops|general protection|Call Trace|blocked for more than' | tr '\n' '|')
if [ -z "$bad" ]; then pass kernel-healthy "no BUG/WARNING/Oops in dmesg"; else fail kernel-healthy "$bad"; fi
nfsd_lines_since start-1 >"$R/nfsd-dmesg.txt"
finish
