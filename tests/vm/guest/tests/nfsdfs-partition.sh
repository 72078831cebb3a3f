#!/bin/bash
# Story: the cld-partition story (a client whose lease expired during a
# network partition must not reclaim after the next restart) with the
# patched nfsd of kernel-patches/ and nfsd-helper serving its four client
# tracking files: the expiry reaches the helper as expire_client.
#
# Before the conflict that expires the courtesy client, the expiry fails
# first: nfsd-helper is stopped and nfsdfs_fail.py answers expire_client
# with -5 (a storage error). The kernel must then keep the client and its
# locks (a conflicting lock is refused, not granted), ask again on its next
# laundromat run, and expire the client only once the restarted nfsd-helper
# answered 0. The story then goes on as in cld-partition.sh.
# shellcheck disable=SC2034 # read by lib.sh and cld-partition.sh
TRACKER_MODE=nfsdfs
partclient_known() { grep -qs partclient /proc/fs/nfsd/clients/*/info; }
partclient_gone() { ! partclient_known; }
partclient_info() { grep -hs -A3 partclient /proc/fs/nfsd/clients/*/info | grep -E 'name|status' | tr '\n' ' '; }
expire_answers() { grep -c '^answered -5 .*partclient' /tmp/ex.out 2>/dev/null || true; }
partition_expire_fails() {
	local t out
	tracker_stop
	rm -f /tmp/ex-ready /tmp/ex-stop /tmp/ex.out
	"$PY" "$here/../nfsdfs_fail.py" /proc/fs/nfsd expire_client /tmp/ex-ready /tmp/ex-stop >/tmp/ex.out 2>&1 &
	local ex=$!
	if ! wait_for 10 test -e /tmp/ex-ready; then
		fail expire-tool "did not open expire_client: $(cat /tmp/ex.out)"
		return
	fi
	t=$(now)
	lock_try expire-failed-lock-refused "helper stopped, expire_client answered -5; the root client tries p" /mnt/root/p CONFLICT
	if [ "$(expire_answers)" -ge 1 ]; then
		pass expire-failed-answered "$(grep -m1 '^answered' /tmp/ex.out)"
	else
		fail expire-failed-answered "no expire_client of partclient: $(tr '\n' '|' </tmp/ex.out)"
	fi
	if partclient_known; then
		pass expire-failed-client-kept "$(partclient_info)"
	else
		fail expire-failed-client-kept "the partitioned client is gone after a failed expire_client"
	fi
	dmesg | grep -q 'expire_client failed, record kept: -5' &&
		info "dmesg: $(dmesg | grep -m1 'expire_client failed' | sed 's/^\[[^]]*\] //')"
	# The next laundromat run (at most a lease later) asks again.
	if wait_for $((NFSD_TIME * 3)) bash -c "[ \$(grep -c '^answered -5 .*partclient' /tmp/ex.out) -ge 2 ]"; then
		pass expire-retried "expire_client sent again $(since "$t")s after the first, answered -5 again"
	else
		fail expire-retried "$(expire_answers) expire_client request(s) in $(since "$t")s"
	fi
	lock_try expire-failed-lock-still-refused "after the retry failed too, the root client tries p" /mnt/root/p CONFLICT
	if partclient_known; then
		pass expire-retry-failed-client-kept "$(partclient_info)"
	else
		fail expire-retry-failed-client-kept "the partitioned client is gone"
	fi
	touch /tmp/ex-stop
	wait "$ex" || fail expire-tool "$(grep FAIL /tmp/ex.out | tr '\n' '|')"
	info "expire_client answered -5 $(expire_answers) time(s)"
	# nfsd-helper again: it answers the next expire_client with 0.
	t=$(now)
	tracker_start
	wait_for 10 tracker_has_pipe || fail helper-restarted "$(tail -3 "$R/tracker.log" | tr '\n' '|')"
	if wait_for $((NFSD_TIME * 3)) partclient_gone; then
		pass expire-ok-client-expired "the partitioned client expired $(since "$t")s after nfsd-helper was restarted"
	else
		fail expire-ok-client-expired "still there $(since "$t")s after nfsd-helper was restarted: $(partclient_info)"
	fi
}
# shellcheck source=tests/vm/guest/tests/cld-partition.sh
. "$(dirname "$0")/cld-partition.sh"
