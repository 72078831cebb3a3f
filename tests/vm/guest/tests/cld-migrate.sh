#!/bin/bash
# Story: switching a running server from Debian's nfsdcld to nfsd-helper.
# Under nfsdcld, an NFSv4.0 and an NFSv4.2 client take locks. nfsd and
# nfsdcld are stopped; nfsd-helper starts with a fresh database and
# --nfsdcld-db pointing at the database nfsdcld itself wrote; nfsd starts
# again, and both clients must reclaim their locks under nfsd-helper. The
# nfsdcld database must be left unchanged. See tests/vm/README.md.
here=$(dirname "$0")
TRACKER_MODE=cld
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
info "first tracker: $TRACKER_CMD"

nfsd_set_times "$NFSD_TIME" || fail lease-grace-time "could not set $NFSD_TIME s"
check export "tmpfs $EXPORT exported to 127.0.0.1" export_tmpfs || finish

# --- under nfsdcld ------------------------------------------------------------
tracker_start
wait_for 10 tracker_has_watch || { fail nfsdcld-started "$(tail -5 "$R/tracker.log" | tr '\n' '|')"; finish; }
mark start-1
nfsd_start || { fail nfsd-start-1 "rpc.nfsd failed"; finish; }
tracker_chosen_check nfsdcld-start-1 start-1
modprobe nfsv4 2>/dev/null
mkdir -p /mnt/v40 /mnt/v42
check mount-v4.0 "vers=4.0" timeout 60 mount -t nfs4 -o vers=4.0 127.0.0.1:/ /mnt/v40 || finish
check mount-v4.2 "vers=4.2" timeout 60 mount -t nfs4 -o vers=4.2 127.0.0.1:/ /mnt/v42 || finish
echo a >/mnt/v40/a && echo b >/mnt/v42/b
lock_hold h40 /mnt/v40/a
lock_hold h42 /mnt/v42/b
if wait_for 30 lock_locked h40 && wait_for 30 lock_locked h42; then
	pass locks-taken "under nfsdcld: the 4.0 client locks a, the 4.2 client locks b"
else
	fail locks-taken "h40='$(lock_state h40)' h42='$(lock_state h42)'"
	finish
fi
lock_try conflict-a "4.2 client tries a" /mnt/v42/a CONFLICT
lock_try conflict-b "4.0 client tries b" /mnt/v40/b CONFLICT
if wait_for 10 tracker_db_has 'NFSv4\.2 vmtest' && tracker_db_has 'NFSv4\.0'; then
	pass nfsdcld-recorded "nfsdcld's current epoch: $(tracker_db_ids | tr '\n' '|')"
else
	fail nfsdcld-recorded "nfsdcld's current epoch: $(tracker_db_ids | tr '\n' '|')"
fi
info "nfsdcld grace row: $(sqlite3 -readonly "$NFSDCLD_DB" 'select current, recovery from grace;' 2>&1)"

# --- the switch ----------------------------------------------------------------
mark stop
nfsd_stop || fail nfsd-stop "rpc.nfsd 0 failed"
tracker_stop
ls -la "$(dirname "$NFSDCLD_DB")" | sed 's/^/INFO nfsdcld dir: /' >>"$RESULT"
sum_before=$(cd "$(dirname "$NFSDCLD_DB")" && sha256sum ./* | sort)
info "nfsdcld files: $(tr '\n' ' ' <<<"$sum_before")"

TRACKER_MODE=helper-cld
TRACKER_CMD="${NFSD_HELPER:-nfsd-helper} -F -d --nfsdfs none --cld-pipe $PIPEFS/nfsd/cld --db $HELPER_DB --ctl-socket /run/nfsd-helper/ctl.sock --nfsdcld-db $NFSDCLD_DB --nfsdcltrack-db none"
info "second tracker: $TRACKER_CMD"
[ -e "$HELPER_DB" ] && fail fresh-helper-db "$HELPER_DB exists before nfsd-helper's first start"
tracker_start
if wait_for 10 tracker_has_watch; then pass helper-started "pid $TRACKER_PID"; else fail helper-started "$(tail -5 "$R/tracker.log" | tr '\n' '|')"; finish; fi
if wait_for 5 grep -q 'imported 2 client(s) from the nfsdcld database' "$R/tracker.log"; then
	pass import-logged "$(grep -m1 'imported .* client(s)' "$R/tracker.log")"
else
	fail import-logged "no 'imported 2 client(s)' in the helper's log: $(grep -i import "$R/tracker.log" | tr '\n' '|')"
fi
if tracker_db_has 'NFSv4\.2 vmtest' && tracker_db_has 'NFSv4\.0'; then
	pass imported-records "helper records: $(tracker_db_ids | tr '\n' '|')"
else
	fail imported-records "helper records: $(tracker_db_ids | tr '\n' '|')"
fi

mark start-2
nfsd_start || { fail nfsd-start-2 "rpc.nfsd failed"; finish; }
t=$(now)
tracker_chosen_check helper-start-2 start-2
gs=$(grep -E 'starts its grace period' "$R/tracker.log" | tail -1)
n=$(sed -n 's/.*; \([0-9]*\) client(s) may reclaim.*/\1/p' <<<"$gs")
if [ "${n:-0}" -ge 2 ]; then pass grace-start-allows-imported "helper: $gs"; else fail grace-start-allows-imported "helper: ${gs:-no GraceStart logged}"; fi

for h in h40 h42; do
	r=$(lock_io "$h" r1)
	if [ "$r" = ok ]; then pass "io-after-switch-$h" "ok at +$(since "$t")s"; else fail "io-after-switch-$h" "$r"; fi
done
if wait_for 90 grace_over; then pass grace-ended "$(since "$t")s after the start"; else fail grace-ended "still in grace after 90 s"; fi
lock_try lock-reclaimed-v4.0 "4.2 client tries a" /mnt/v42/a CONFLICT
lock_try lock-reclaimed-v4.2 "4.0 client tries b" /mnt/v40/b CONFLICT
for h in h40 h42; do
	r=$(lock_io "$h" r2)
	if [ "$r" = ok ]; then pass "io-after-grace-$h" "no EIO"; else fail "io-after-grace-$h" "$r"; fi
done
cl=$(dmesg_since start-2 | grep -iE 'lock reclaim failed|lost [0-9]+ locks?|lost lock|unhandled error' | sed 's/^\[[^]]*\] //' | tr '\n' '|')
if [ -z "$cl" ]; then pass client-recovery-clean "no lost locks in dmesg"; else fail client-recovery-clean "$cl"; fi
info "helper records after grace: $(tracker_db_ids | tr '\n' '|')"

sum_after=$(cd "$(dirname "$NFSDCLD_DB")" && sha256sum ./* | sort)
if [ "$sum_after" = "$sum_before" ]; then
	pass nfsdcld-db-unchanged "same files, same sha256: $(tr '\n' ' ' <<<"$sum_after")"
else
	fail nfsdcld-db-unchanged "before: $(tr '\n' ' ' <<<"$sum_before") after: $(tr '\n' ' ' <<<"$sum_after")"
fi

# --- teardown ------------------------------------------------------------------
lock_release h40
lock_release h42
umount /mnt/v40 /mnt/v42 || fail umount "umount failed"
nfsd_stop
if tracker_alive; then pass helper-alive "still running"; else fail helper-alive "exited: $(tail -5 "$R/tracker.log" | tr '\n' '|')"; fi
tracker_stop
bad=$(dmesg | grep -E 'BUG|WARNING|Oops|general protection|Call Trace|blocked for more than' | tr '\n' '|')
if [ -z "$bad" ]; then pass kernel-healthy "no BUG/WARNING/Oops in dmesg"; else fail kernel-healthy "$bad"; fi
nfsd_lines_since start-1 >"$R/nfsd-dmesg.txt"
finish
