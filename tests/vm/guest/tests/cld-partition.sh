#!/bin/bash
# Story: a client whose lease expired during a network partition must not
# reclaim after the next nfsd restart.
#
# The partitioned client lives in its own network namespace (and UTS
# namespace, so its client owner string differs: "partclient") behind a veth
# pair, and holds locks on p and q. The link is cut for longer than the lease.
# Linux 6.1 then keeps it as a courtesy client; a conflicting lock request on
# p from the second client (the root namespace) makes the server expire it,
# and the tracker gets Remove. nfsd is restarted, the link restored: the
# partitioned client's reclaim must fail. q is a lock nobody else asked for,
# so losing it can only mean the reclaim was refused; the second client keeps
# p. The tracker is nfsd-helper in cld mode (TRACKER_MODE=helper-cld, the
# default), nfsd-helper on the patched kernel's four files (nfsdfs-partition)
# or nfsdcld (TRACKER_MODE=cld).
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

# The partitioned client: a process that keeps its namespaces (network, UTS
# and the mount namespace "ip netns exec" makes) alive; everything else runs
# in them through nsenter.
mkdir -p /mnt/root
rm -f /tmp/part-mounted
ip netns exec part unshare --uts bash -c "hostname partclient && mkdir -p /mnt/part && timeout 60 mount -t nfs4 -o vers=4.2 $SRV:/ /mnt/part && touch /tmp/part-mounted && exec sleep 100000" >>"$R/test.log" 2>&1 &
KEEP=$!
PART=(nsenter -t "$KEEP" -m -n -u)
if wait_for 70 test -e /tmp/part-mounted; then pass mount-partitioned "vers=4.2 $SRV:/ from namespace part, hostname partclient"; else fail mount-partitioned "mount in namespace part failed"; finish; fi
check mount-root "vers=4.2 127.0.0.1:/ on /mnt/root" timeout 60 mount -t nfs4 -o vers=4.2 127.0.0.1:/ /mnt/root || finish
echo p >/mnt/root/p && echo q >/mnt/root/q
lock_hold hp /mnt/part/p "${PART[@]}"
lock_hold hq /mnt/part/q "${PART[@]}"
if wait_for 30 lock_locked hp && wait_for 30 lock_locked hq; then
	pass locks-taken "the partitioned client locks p and q"
else
	fail locks-taken "hp='$(lock_state hp)' hq='$(lock_state hq)'"
	finish
fi
lock_try conflict-before-cut "the root client tries p" /mnt/root/p CONFLICT
if wait_for 10 tracker_db_has partclient && tracker_db_has 'NFSv4\.2 vmtest'; then
	pass recorded-both "tracker records: $(tracker_db_ids | tr '\n' '|')"
else
	fail recorded-both "tracker records: $(tracker_db_ids | tr '\n' '|')"
fi
info "clients: $(grep -h 'name\|status' /proc/fs/nfsd/clients/*/info 2>/dev/null | tr '\n' ' ')"

# --- partition -------------------------------------------------------------
mark cut
ip link set vh down
t_cut=$(now)
courtesy() { grep -qs 'status: courtesy' /proc/fs/nfsd/clients/*/info; }
if wait_for $((NFSD_TIME * 4)) courtesy; then
	pass courtesy "the partitioned client is a courtesy client $(since "$t_cut")s after the cut (lease ${NFSD_TIME}s)"
else
	fail courtesy "no courtesy client $(since "$t_cut")s after the cut: $(grep -h 'name\|status' /proc/fs/nfsd/clients/*/info 2>/dev/null | tr '\n' ' ')"
fi
# nfsdfs-partition first lets the expiry fail (partition_expire_fails).
if declare -F partition_expire_fails >/dev/null; then partition_expire_fails; fi
# The conflicting request expires the courtesy client and is then granted.
got=""
for i in 1 2 3 4 5; do
	out=$(timeout 60 "$PY" "$LOCKTOOL" try /mnt/root/p 2>&1)
	[ "$out" = ACQUIRED ] && got=$i && break
	sleep 2
done
if [ -n "$got" ]; then pass conflict-expires-courtesy "the root client got p at attempt $got, $(since "$t_cut")s after the cut"; else fail conflict-expires-courtesy "the root client never got p: $out"; fi
lock_hold hr /mnt/root/p
if wait_for 30 lock_locked hr; then pass root-holds-p "the root client holds p"; else fail root-holds-p "hr='$(lock_state hr)'"; fi
not_recorded() { ! tracker_db_has partclient; }
if wait_for 10 not_recorded; then
	pass partitioned-removed "tracker records: $(tracker_db_ids | tr '\n' '|')"
else
	fail partitioned-removed "still recorded: $(tracker_db_ids | tr '\n' '|')"
fi
if [ "$TRACKER_MODE" != cld ]; then
	if grep -qE "(cld Remove|expire_client).*partclient" "$R/tracker.log"; then
		pass tracker-got-remove "$(grep -E "(cld Remove|expire_client).*partclient" "$R/tracker.log" | tail -1)"
	else
		fail tracker-got-remove "no Remove of partclient in the tracker's log"
	fi
fi
info "clients after expiry: $(grep -h 'name\|status' /proc/fs/nfsd/clients/*/info 2>/dev/null | tr '\n' ' ')"

# --- restart while partitioned, then restore the link -----------------------
gs_before=$(tracker_log_count 'starts its grace period')
mark restart-1
nfsd_stop && nfsd_start || fail nfsd-restart "rpc.nfsd failed"
t_restart=$(now)
tracker_chosen_check restart-1 restart-1
seg=$(nfsd_lines_since restart-1)
grep -m1 -E 'may reclaim|grace period' <<<"$seg" | sed 's/^\[[^]]*\] /INFO dmesg: /' >>"$RESULT"
# The allow list handed to the kernel holds the root client only.
if [ "$TRACKER_MODE" != cld ]; then
	new_grace_start() { grep -E 'starts its grace period' "$R/tracker.log" | sed -n "$((gs_before + 1))p"; }
	has_new_grace_start() { [ -n "$(new_grace_start)" ]; }
	wait_for 5 has_new_grace_start
	if new_grace_start | grep -q '; 1 client(s) may reclaim'; then
		pass allow-list-without-partitioned "$(new_grace_start)"
	else
		fail allow-list-without-partitioned "expected 1 client (the root client) in the allow list: $(new_grace_start)"
	fi
fi
ip link set vh up
info "link restored $(since "$t_cut")s after the cut"
r=$(lock_io hr r1)
if [ "$r" = ok ]; then pass io-root-after-restart "the root client's locked fd works at +$(since "$t_restart")s"; else fail io-root-after-restart "$r"; fi
# The partitioned client notices the restart when it talks to the server
# again; its reclaim must be refused, so its locks are lost: EIO.
r=$(lock_io hq r1 180)
case "$r" in
"error EIO"*) pass partitioned-lock-q-lost "I/O on the fd whose lock (q) was not reclaimed: $r (+$(since "$t_restart")s)" ;;
*) fail partitioned-lock-q-lost "expected EIO on q (reclaim refused), got '$r'" ;;
esac
r=$(lock_io hp r1 60)
case "$r" in
"error EIO"*) pass partitioned-lock-p-lost "$r" ;;
*) fail partitioned-lock-p-lost "expected EIO on p, got '$r'" ;;
esac
wait_for 90 grace_over || fail grace-ended "still in grace 90 s after the restart"
# Its holders close their files first: while they hold their (lost) locks,
# the client's own lock table would refuse another process of it anyway.
lock_release hp
lock_release hq
lock_try root-keeps-p "after grace, the partitioned client tries p" /mnt/part/p CONFLICT "${PART[@]}"
r=$(lock_io hr r2)
if [ "$r" = ok ]; then pass io-root-after-grace "ok"; else fail io-root-after-grace "$r"; fi
cl=$(dmesg_since restart-1 | grep -iE 'lost [0-9]+ locks?|lock reclaim failed|reclaim' | sed 's/^\[[^]]*\] //' | tr '\n' '|')
info "client messages after the restart: ${cl:-none}"
if tracker_db_has partclient; then
	info "partclient is recorded again (a new, non-reclaim client): $(tracker_db_ids | tr '\n' '|')"
fi
info "tracker records at the end: $(tracker_db_ids | tr '\n' '|')"

# --- teardown ----------------------------------------------------------------
lock_release hr
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
