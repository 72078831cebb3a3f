#!/bin/bash
# nfsd restarted RESTART_COUNT times (default 10) with the tracker running and
# no clients: after EVERY start the kernel must choose the cld tracker.
# Each start recreates <rpc_pipefs>/nfsd/cld and the kernel waits only ~1 s
# (10 x 100 ms) for a tracker to open it; a tracker that misses the window
# makes the kernel give up on cld ("Unable to initialize client recovery
# tracking! (-110)" here, where no fallback exists).  Every start is a check.
here=$(dirname "$0")
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
: "${RESTART_COUNT:=10}"
info "tracker: $TRACKER_CMD"
info "rpc.nfsd args: $NFSD_ARGS, $RESTART_COUNT starts"
if nfsd_set_times "$NFSD_TIME"; then pass lease-grace-time "$NFSD_TIME s"; else fail lease-grace-time "could not set $NFSD_TIME s"; fi
if [ -e /sbin/nfsdcltrack ]; then fail no-umh-fallback "/sbin/nfsdcltrack exists"; else pass no-umh-fallback "/sbin/nfsdcltrack absent"; fi
check export "tmpfs $EXPORT exported" export_tmpfs || finish
tracker_start
wait_for 10 tracker_has_watch || info "no inotify watch seen for the tracker after 10s"
ok=0
missed=0
for ((i = 1; i <= RESTART_COUNT; i++)); do
	mark "loop-$i"
	t=$(now)
	nfsd_start || { fail "start-$i" "rpc.nfsd failed"; continue; }
	took=$(awk -v a="$t" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
	seg=$(nfsd_lines_since "loop-$i")
	if grep -q 'Using nfsdcld client tracking operations' <<<"$seg"; then
		ok=$((ok + 1))
		pass "tracker-chosen-$i" "rpc.nfsd took ${took}s"
	else
		missed=$((missed + 1))
		fail "tracker-chosen-$i" "rpc.nfsd took ${took}s; NFSD lines: $(grep -v 'vmtest: mark' <<<"$seg" | sed 's/^\[[^]]*\] //' | tr '\n' '|')"
	fi
	tracker_alive || { fail "tracker-alive-$i" "tracker exited: $(tail -3 "$R/tracker.log" | tr '\n' '|')"; break; }
	nfsd_stop || fail "stop-$i" "rpc.nfsd 0 failed"
done
info "cld tracker chosen at $ok of $RESTART_COUNT starts, missed $missed"
tracker_stop
finish
