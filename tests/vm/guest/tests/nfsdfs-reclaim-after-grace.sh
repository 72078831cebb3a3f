#!/bin/bash
# Story: an NFSv4.0 reclaim whose create_client is answered only after grace
# has ended must be refused, and must not touch the freed reclaim record.
#
# An NFSv4.0 client is recorded before its reclaim is granted (it sends no
# OPEN_CONFIRM for a reclaim), so the kernel sends create_client from the
# reclaim check and sleeps until the helper answers. Here nfsdfs_hold.py
# plays the helper through the restart: it allows the client, answers
# grace_done at once but
# holds the reclaim's create_client until grace has ended. Meanwhile grace
# ends and nfsd frees its reclaim records; a second client then locks the
# file the first one held. The reclaim must be refused (the client loses its
# lock: EIO), and the kernel's trace must show no reclaim OPEN answered OK
# after the grace period's end (nfsd_grace_complete). Before the fix nfsd
# looked the reclaim record up before the upcall, wrote to it after (it had
# been freed at the end of grace meanwhile) and granted the reclaim.
here=$(dirname "$0")
TRACKER_MODE=nfsdfs
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
info "tracker ($TRACKER_MODE): $TRACKER_CMD"
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

nfsd_set_times "$NFSD_TIME" || fail lease-grace-time "could not set $NFSD_TIME s"
check export "tmpfs $EXPORT exported to 127.0.0.1" export_tmpfs || finish
tracker_start_checked
mark start-1
nfsd_start || { fail nfsd-start-1 "rpc.nfsd failed"; finish; }
tracker_chosen_check start-1 start-1
modprobe nfsv4 2>/dev/null
mkdir -p /mnt/v40 /mnt/v42
check mount-v4.0 "127.0.0.1:/ on /mnt/v40" timeout 60 mount -t nfs4 -o vers=4.0 127.0.0.1:/ /mnt/v40 || finish
echo a >/mnt/v40/a
lock_hold h40 /mnt/v40/a
if wait_for 30 lock_locked h40; then pass lock-taken "the 4.0 client locks a"; else fail lock-taken "h40='$(lock_state h40)'"; finish; fi
if wait_for 10 tracker_db_has 'NFSv4\.0'; then pass recorded "tracker records: $(tracker_db_ids | tr '\n' '|')"; else fail recorded "tracker records: $(tracker_db_ids | tr '\n' '|')"; fi

# Restart with nfsdfs_hold.py in the helper's place: it allows the 4.0
# client (the id the helper recorded) and holds its reclaim's create_client.
id40=$(sqlite3 -readonly "$HELPER_DB" "select lower(hex(id)) from v4clients where cast(id as text) like '%NFSv4.0%';")
[ -n "$id40" ] || { fail client-id "the 4.0 client's id is not in the helper's database"; finish; }
tracker_stop
rm -f /tmp/hold-ready /tmp/hold-stop
"$PY" "$here/../nfsdfs_hold.py" /proc/fs/nfsd /tmp/hold-ready /tmp/hold-stop "$id40" >/tmp/hold.out 2>&1 &
HOLD=$!
wait_for 10 test -e /tmp/hold-ready || { fail hold-tool "did not start: $(cat /tmp/hold.out)"; finish; }
mark restart-1
nfsd_stop && nfsd_start || fail nfsd-restart "rpc.nfsd failed"
t_restart=$(now)
seg=$(nfsd_lines_since restart-1)
if grep -q 'Using nfsdfs client tracking operations' <<<"$seg"; then pass tracker-chosen-restart-1 "nfsdfs_hold.py serves the four files"; else fail tracker-chosen-restart-1 "$(tr '\n' '|' <<<"$seg")"; fi
if grep -q 'start answered, 1 client' /tmp/hold.out; then pass allow-list "the 4.0 client is allowed"; else fail allow-list "$(tr '\n' '|' </tmp/hold.out)"; fi
# The 4.0 client reclaims when its holder's I/O meets the restart.
touch /tmp/h40/io-r1
held() { grep -q 'create held .*NFSv4\.0' /tmp/hold.out; }
if wait_for 60 held; then pass reclaim-create-held "$(grep -m1 'create held' /tmp/hold.out) ($(since "$t_restart")s after the restart)"; else fail reclaim-create-held "no create_client for the 4.0 client's reclaim: $(tr '\n' '|' </tmp/hold.out)"; fi
gd() { grep -q 'grace_done answered' /tmp/hold.out; }
if wait_for 60 gd; then pass grace-ended "$(grep -m1 'grace_done answered' /tmp/hold.out)"; else fail grace-ended "no grace_done: $(tr '\n' '|' </tmp/hold.out)"; fi
released() { grep -q 'create answered .*NFSv4\.0.*after grace_done' /tmp/hold.out; }
if wait_for 30 released; then pass create-after-grace "$(grep -m1 'create answered .*NFSv4\.0' /tmp/hold.out)"; else fail create-after-grace "$(tr '\n' '|' </tmp/hold.out)"; fi
# A second client takes the lock the first one held before the restart.
check mount-v4.2 "127.0.0.1:/ on /mnt/v42" timeout 60 mount -t nfs4 -o vers=4.2 127.0.0.1:/ /mnt/v42
lock_hold h42 /mnt/v42/a
if wait_for 60 lock_locked h42; then pass other-client-locks "the 4.2 client holds a after grace"; else fail other-client-locks "h42='$(lock_state h42)'"; fi
if wait_for 120 test -e /tmp/h40/io-r1.result; then r=$(cat /tmp/h40/io-r1.result); else r="no answer"; fi
case "$r" in
"error EIO"*) pass reclaim-refused "the 4.0 client's lock was not reclaimed after grace: $r" ;;
*) fail reclaim-refused "expected EIO on the 4.0 client's fd, got '$r'" ;;
esac
touch /tmp/hold-stop
wait "$HOLD"
info "hold tool: $(tr '\n' '|' </tmp/hold.out)"
# Client and server trace events: no reclaim OPEN succeeded after the grace
# period of the last start ended.
tr=$(cat /sys/kernel/tracing/trace 2>/dev/null)
if ! grep -q nfsd_grace_complete <<<"$tr"; then
	fail trace "no nfsd_grace_complete event in the trace"
else
	late=$(awk '/nfsd_grace_start/ {g = 0} /nfsd_grace_complete/ {g = 1} g && /nfs4_open_reclaim: error=0 /' <<<"$tr" | sed 's/^ *//' | cut -c1-160)
	seen=$(awk '/nfsd_grace_start/ {s = 1} s && /nfs4_open_reclaim|nfsd_grace_complete|OP_OPEN status/' <<<"$tr" | sed 's/^ *//' | cut -c1-110 | tr '\n' '|')
	if [ -z "$late" ]; then pass no-reclaim-after-grace "trace since the restart: $seen"; else fail no-reclaim-after-grace "a reclaim OPEN succeeded after grace ended: $(tr '\n' '|' <<<"$late")"; fi
fi
bad=$(dmesg | grep -E 'BUG|WARNING|Oops|general protection|Call Trace' | head -20 | tr '\n' '|')
if [ -z "$bad" ]; then pass kernel-healthy "no BUG/WARNING/Oops in dmesg"; else fail kernel-healthy "$bad"; fi

lock_release h42
lock_release h40
umount /mnt/v42 /mnt/v40 2>/dev/null
nfsd_stop
nfsd_lines_since start-1 >"$R/nfsd-dmesg.txt"
finish
