#!/bin/bash
# Story: NFSv4.0 and NFSv4.2 clients (over loopback) hold POSIX locks across an
# nfsd restart; the cld tracker ($TRACKER_CMD, default Debian's nfsdcld) must
# be the tracker the kernel chooses at both starts, and both locks must be
# reclaimed.  See tests/vm/README.md for the list of checks.
here=$(dirname "$0")
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
info "tracker: $TRACKER_CMD"
info "rpc.nfsd args: $NFSD_ARGS"
: "${RESTARTS:=1}"
info "nfsd restarts: $RESTARTS"

# --- server setup ---------------------------------------------------------
if nfsd_set_times "$NFSD_TIME"; then
	pass lease-grace-time "nfsv4leasetime=$(cat /proc/fs/nfsd/nfsv4leasetime) nfsv4gracetime=$(cat /proc/fs/nfsd/nfsv4gracetime)"
else
	fail lease-grace-time "could not set $NFSD_TIME s (now lease=$(cat /proc/fs/nfsd/nfsv4leasetime) grace=$(cat /proc/fs/nfsd/nfsv4gracetime))"
fi
if [ -e /sbin/nfsdcltrack ] || [ -e /usr/sbin/nfsdcltrack ]; then
	fail no-umh-fallback "/sbin/nfsdcltrack exists: the kernel could fall back to it"
else
	pass no-umh-fallback "/sbin/nfsdcltrack absent in the guest"
fi
if [ -e /var/lib/nfs/v4recovery ]; then
	fail no-legacy-fallback "/var/lib/nfs/v4recovery exists"
else
	pass no-legacy-fallback "/var/lib/nfs/v4recovery absent in the guest"
fi
check export "tmpfs $EXPORT exported to 127.0.0.1, mountd running" export_tmpfs || finish

tracker_start
if wait_for 10 tracker_has_watch; then
	pass tracker-started "pid $TRACKER_PID watching $TRACKER_WATCH_DESC"
else
	if tracker_alive; then
		info "tracker pid $TRACKER_PID shows no inotify watch after 10s; going on"
	else
		fail tracker-started "tracker exited: $(tail -5 "$R/tracker.log" | tr '\n' '|')"
		finish
	fi
fi

# --- first start ----------------------------------------------------------
mark start-1
t=$(now)
nfsd_start || { fail nfsd-start-1 "rpc.nfsd $NFSD_ARGS failed"; finish; }
info "first start: rpc.nfsd took $(awk -v a="$t" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')s, threads=$(nfsd_threads)"
seg=$(nfsd_lines_since start-1)
if grep -q "$TRACKER_CHOSEN" <<<"$seg"; then
	pass tracker-chosen-start-1 "dmesg: $(grep -m1 "$TRACKER_CHOSEN" <<<"$seg" | sed 's/^\[[^]]*\] //')"
else
	fail tracker-chosen-start-1 "no '$TRACKER_CHOSEN' after the first start; NFSD lines: $(tr '\n' '|' <<<"$seg")"
fi
if grep -q 'Unable to initialize client recovery tracking' <<<"$seg"; then
	fail no-tracking-error-start-1 "$(grep -m1 'Unable to initialize' <<<"$seg")"
fi
if tracker_has_pipe; then pass tracker-pipe-open-1 "tracker has $TRACKER_PIPE_DESC open"; else fail tracker-pipe-open-1 "tracker does not hold the cld pipe open"; fi

# --- clients --------------------------------------------------------------
modprobe nfsv4 2>/dev/null
mkdir -p /mnt/v40 /mnt/v42
check mount-v4.0 "127.0.0.1:/ on /mnt/v40" timeout 60 mount -t nfs4 -o vers=4.0 127.0.0.1:/ /mnt/v40 || finish
check mount-v4.2 "127.0.0.1:/ on /mnt/v42" timeout 60 mount -t nfs4 -o vers=4.2 127.0.0.1:/ /mnt/v42 || finish
info "mounts: $(awk '$3 == "nfs4" {match($4, /vers=[0-9.]+/); print $2 " " substr($4, RSTART, RLENGTH)}' /proc/mounts | tr '\n' ' ')"
echo "written via 4.0" >/mnt/v40/a && echo "written via 4.2" >/mnt/v42/b &&
	[ "$(cat /mnt/v42/a)" = "written via 4.0" ] && [ "$(cat /mnt/v40/b)" = "written via 4.2" ]
check io-basic "files a (via 4.0) and b (via 4.2) created, each read back via the other version" test $? -eq 0

# One holder per client.  A second process on the SAME client would be
# refused by the client's own VFS lock table whatever the server knows, so
# each lock is contended from the OTHER client (another clientid): only the
# server can say no there.
mkdir -p /tmp/h40 /tmp/h42
"$PY" "$LOCKTOOL" hold /mnt/v40/a /tmp/h40 >>"$R/test.log" 2>&1 &
H40=$!
"$PY" "$LOCKTOOL" hold /mnt/v42/b /tmp/h42 >>"$R/test.log" 2>&1 &
H42=$!
holder_state() { cat "/tmp/$1/state" 2>/dev/null; }
locked() { case "$(holder_state "$1")" in locked*) return 0 ;; esac; return 1; }
if wait_for 30 locked h40 && wait_for 30 locked h42; then
	pass locks-taken "4.0 client holds a lock on a (pid $H40), 4.2 client holds a lock on b (pid $H42)"
else
	fail locks-taken "holders: h40='$(holder_state h40)' h42='$(holder_state h42)'"
	finish
fi
# contend LABEL FILE EXPECT(CONFLICT|ACQUIRED)
contend() {
	local out
	out=$(timeout 60 "$PY" "$LOCKTOOL" try "$3" 2>&1)
	case "$out" in
	"$4"*) pass "$1" "$2: $out" ;;
	*) fail "$1" "$2: expected $4, got '${out:-timeout}'" ;;
	esac
}
contend conflict-before-restart-a "4.2 client tries a" /mnt/v42/a CONFLICT
contend conflict-before-restart-b "4.0 client tries b" /mnt/v40/b CONFLICT

db=/var/lib/nfs/nfsdcld/main.sqlite
dbinfo() {
	[ -r "$db" ] || return 0
	info "nfsdcld db $1: $(sqlite3 -readonly "$db" "select 'grace current=' || current || ' recovery=' || recovery from grace;" 2>&1 | tr '\n' ' ')" \
		"tables: $(sqlite3 -readonly "$db" "select name from sqlite_master where type='table' and name like 'rec-%';" 2>&1 | tr '\n' ' ')"
	local tb
	for tb in $(sqlite3 -readonly "$db" "select name from sqlite_master where type='table' and name like 'rec-%';" 2>/dev/null); do
		info "  $tb: $(sqlite3 -readonly "$db" "select count(*) from \"$tb\";") record(s): $(sqlite3 -readonly "$db" "select cast(id as text) from \"$tb\";" 2>/dev/null | tr -d '\0' | tr '\n' '|')"
	done
}
dbinfo "before restart"

# --- restart(s) ----------------------------------------------------------
# restart_and_check N: rpc.nfsd 0; rpc.nfsd; then every check is suffixed -N
# when RESTARTS > 1.
restart_and_check() {
	local n=$1 sfx="" t t_restart seg chosen h r cl
	[ "$RESTARTS" -gt 1 ] && sfx="-$n"
	mark "restart-$n"
	t=$(now)
	nfsd_stop || fail "nfsd-stop$sfx" "rpc.nfsd 0 failed"
	[ "$(nfsd_threads)" = 0 ] || fail "nfsd-stop$sfx" "threads=$(nfsd_threads) after rpc.nfsd 0"
	mark "start-r$n"
	nfsd_start || { fail "nfsd-start-r$n" "rpc.nfsd $NFSD_ARGS failed"; finish; }
	t_restart=$(now)
	info "restart $n: rpc.nfsd 0 + rpc.nfsd took $(awk -v a="$t" -v b="$t_restart" 'BEGIN{printf "%.1f", b-a}')s, threads=$(nfsd_threads)"
	seg=$(nfsd_lines_since "start-r$n")
	chosen=$(grep -E 'Using .*(client tracking operations|state recovery directory)' <<<"$seg" | sed 's/^\[[^]]*\] //' | tr '\n' '|')
	if grep -q "$TRACKER_CHOSEN" <<<"$seg"; then
		pass "tracker-chosen-restart$sfx" "dmesg: $chosen"
	else
		fail "tracker-chosen-restart$sfx" "after restart $n the kernel did not choose the tracker ($TRACKER_CHOSEN); NFSD lines: $(tr '\n' '|' <<<"$seg")"
	fi
	if grep -q 'Unable to initialize client recovery tracking' <<<"$seg"; then
		fail "no-tracking-error-restart$sfx" "dmesg: $(grep 'Unable to initialize\|Is nfsdcld' <<<"$seg" | sed 's/^\[[^]]*\] //' | tr '\n' '|')"
	else
		pass "no-tracking-error-restart$sfx" "no 'Unable to initialize client recovery tracking' after restart $n"
	fi
	if grep -q 'UMH upcall\|legacy client tracking\|state recovery directory' <<<"$seg"; then
		fail "no-fallback-restart$sfx" "dmesg: $chosen"
	fi
	if grep -q 'no clients to reclaim' <<<"$seg"; then
		fail "grace-with-records$sfx" "the kernel got no client records from the tracker: $(grep 'no clients to reclaim' <<<"$seg" | sed 's/^\[[^]]*\] //')"
	elif grep -q 'starting .*grace period' <<<"$seg"; then
		pass "grace-with-records$sfx" "dmesg: $(grep -m1 'starting .*grace period' <<<"$seg" | sed 's/^\[[^]]*\] //')"
	else
		info "no grace-period message after restart $n"
	fi
	if in_grace; then info "server in grace after restart $n"; else info "server NOT in grace right after restart $n"; fi

	# I/O through the lock holders right away: this makes both clients notice
	# the restart and reclaim (it returns once their recovery is done).
	for h in h40 h42; do
		r=$(io $h "r$n")
		if [ "$r" = ok ]; then pass "io-after-restart-$h$sfx" "pwrite+fsync+pread on the locked fd: ok at +$(awk -v a="$t_restart" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')s"; else fail "io-after-restart-$h$sfx" "$r; $(recovery_story "$t")"; fi
	done

	if wait_for 90 grace_over; then
		pass "grace-ended$sfx" "v4_end_grace=Y $(awk -v a="$t_restart" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')s after restart $n"
	else
		fail "grace-ended$sfx" "still in grace 90s after restart $n"
	fi
	grep -E 'clients done reclaiming|grace period' <<<"$(nfsd_lines_since "start-r$n")" | sed 's/^\[[^]]*\] /INFO dmesg: /' >>"$RESULT"
	dbinfo "after grace $n"

	# The locks must still be held (reclaimed) and the I/O still fine.
	contend "lock-reclaimed-v4.0$sfx" "after grace, 4.2 client tries a (locked by the 4.0 client)" /mnt/v42/a CONFLICT
	contend "lock-reclaimed-v4.2$sfx" "after grace, 4.0 client tries b (locked by the 4.2 client)" /mnt/v40/b CONFLICT
	for h in h40 h42; do
		r=$(io $h "g$n")
		if [ "$r" = ok ]; then pass "io-after-grace-$h$sfx" "no EIO on the locked fd"; else fail "io-after-grace-$h$sfx" "$r"; fi
	done
	for h in h40 h42; do
		if [ -d "/proc/$([ $h = h40 ] && echo $H40 || echo $H42)" ] && locked $h; then :; else fail "holder-alive-$h$sfx" "holder gone: $(holder_state $h)"; fi
	done
	cl=$(dmesg_since "start-r$n" | grep -iE 'lock reclaim failed|lost [0-9]+ locks?|lost lock|reclaim.*fail|unhandled error' | sed 's/^\[[^]]*\] //' | tr '\n' '|')
	if [ -n "$cl" ]; then fail "client-recovery-clean$sfx" "client kernel messages: $cl"; else pass "client-recovery-clean$sfx" "no lock-reclaim errors in dmesg"; fi
}
io() {
	local h=$1 n=$2
	touch "/tmp/$h/io-$n"
	if wait_for 90 test -e "/tmp/$h/io-$n.result"; then cat "/tmp/$h/io-$n.result"; else echo "no answer within 90s"; fi
}
for ((i = 1; i <= RESTARTS; i++)); do
	restart_and_check "$i"
done

# --- control: once released, the other client gets the lock ---------------
touch /tmp/h40/release /tmp/h42/release
wait $H40 $H42
contend released-a-acquirable "4.2 client tries a after release" /mnt/v42/a ACQUIRED
contend released-b-acquirable "4.0 client tries b after release" /mnt/v40/b ACQUIRED

# --- teardown -------------------------------------------------------------
umount /mnt/v40 /mnt/v42 || fail umount "umount failed"
nfsd_stop
if tracker_alive; then pass tracker-alive "tracker still running at the end"; else fail tracker-alive "tracker exited: $(tail -5 "$R/tracker.log" | tr '\n' '|')"; fi
tracker_stop
nfsd_lines_since start-1 >"$R/nfsd-dmesg.txt"
finish
