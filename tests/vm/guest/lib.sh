# shellcheck shell=bash
# Helpers for guest test scripts (sourced; runs inside the test VM, see stage2.sh).
#
# Results go to $VM_RESULT_FILE, one line each:
#   PASS <check> [detail]     FAIL <check>: <why>     INFO <text>
# stage2.sh appends "END <status>"; the host counts a test as passed only with
# at least one PASS, no FAIL and END 0.
R=${VM_RESULTS:-/vm-results}
RESULT=${VM_RESULT_FILE:-$R/result}
FAILS=0
# The cld tracker under test; a parameter so nfsd-helper can replace nfsdcld.
PIPEFS=/var/lib/nfs/rpc_pipefs
: "${TRACKER_CMD:=/usr/sbin/nfsdcld -F -d -p $PIPEFS}"
# TRACKER_MODE=nfsdfs (set by the nfsdfs-* tests): nfsd-helper ($NFSD_HELPER)
# serves the four client tracking files of the nfsd filesystem, which only the
# patched nfsd of kernel-patches/ ($NFSD_KO, loaded by stage2.sh) has.
# TRACKER_MODE=helper-cld (the cld-* tests): nfsd-helper ($NFSD_HELPER) serves
# the stock kernel's cld pipe, as a drop-in for nfsdcld.
: "${TRACKER_MODE:=cld}"
HELPER_DB=/var/lib/nfs/nfsd-helper/state.sqlite
if [ "$TRACKER_MODE" = nfsdfs ]; then
	TRACKER_CMD="${NFSD_HELPER:-nfsd-helper} -F -d --nfsdfs /proc/fs/nfsd --db $HELPER_DB --ctl-socket /run/nfsd-helper/ctl.sock"
	TRACKER_CHOSEN='Using nfsdfs client tracking operations'
	TRACKER_WATCH_DESC=/proc/fs/nfsd/allow_client
	TRACKER_PIPE_DESC=/proc/fs/nfsd/allow_client
else
	# helper-cld: nfsd-helper on the cld pipe (the cld-* tests). No import:
	# /var/lib/nfs is a fresh tmpfs, and a test that imports says so.
	if [ "$TRACKER_MODE" = helper-cld ]; then
		TRACKER_CMD="${NFSD_HELPER:-nfsd-helper} -F -d --nfsdfs /proc/fs/nfsd --cld-pipe $PIPEFS/nfsd/cld --db $HELPER_DB --ctl-socket /run/nfsd-helper/ctl.sock --nfsdcld-db none --nfsdcltrack-db none"
	fi
	TRACKER_CHOSEN='Using nfsdcld client tracking operations'
	TRACKER_WATCH_DESC=$PIPEFS/nfsd
	TRACKER_PIPE_DESC=$PIPEFS/nfsd/cld
fi
: "${NFSD_ARGS:=-N 3 -U 2}"
: "${NFSD_TIME:=10}"
# shellcheck disable=SC2034 # used by the test scripts that source this file
PY=/usr/bin/python3
# shellcheck disable=SC2034
LOCKTOOL=$(dirname "${BASH_SOURCE[0]}")/locktool.py

now() { cut -d' ' -f1 /proc/uptime; }
T0=$(now)
elapsed() { awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
log() { echo "[$(elapsed)s] $*"; }
pass() {
	echo "PASS $*" >>"$RESULT"
	log "PASS $*"
}
fail() {
	local check=$1
	shift
	echo "FAIL $check: $*" >>"$RESULT"
	log "FAIL $check: $*"
	FAILS=$((FAILS + 1))
}
info() {
	echo "INFO $*" >>"$RESULT"
	log "INFO $*"
}
# check NAME DETAIL CMD...: PASS if CMD succeeds, FAIL otherwise.
check() {
	local name=$1 detail=$2
	shift 2
	if "$@"; then pass "$name" "$detail"; else fail "$name" "$detail (failed: $*)"; fi
}
finish() {
	log "done, $FAILS failure(s)"
	[ "$FAILS" -eq 0 ]
	exit $?
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s; 0 as soon as it succeeds.
wait_for() {
	local deadline
	deadline=$(awk -v a="$(now)" -v s="$1" 'BEGIN{print a+s}')
	shift
	while :; do
		"$@" && return 0
		awk -v a="$(now)" -v d="$deadline" 'BEGIN{exit !(a>=d)}' && return 1
		sleep 0.2
	done
}

# Kernel log segments: a marker line written to /dev/kmsg, then everything
# logged after it.
mark() { echo "vmtest: mark $1" >/dev/kmsg; }
dmesg_since() { dmesg | sed -n "/vmtest: mark $1\$/,\$p"; }
nfsd_lines_since() { dmesg_since "$1" | grep -E 'NFSD|nfsd|NFS:|nfs4|lockd|vmtest: mark' || true; }

# Lease and grace time can only be set while nfsd is not running.
# nfsd_set_times LEASE [GRACE]: GRACE defaults to LEASE.
nfsd_set_times() {
	local lease=$1 grace=${2:-$1} f t
	for f in nfsv4leasetime nfsv4gracetime; do
		t=$lease
		[ "$f" = nfsv4gracetime ] && t=$grace
		if ! echo "$t" >/proc/fs/nfsd/$f 2>/dev/null; then
			return 1
		fi
		[ "$(cat /proc/fs/nfsd/$f)" = "$t" ] || return 1
	done
}
nfsd_threads() { cat /proc/fs/nfsd/threads 2>/dev/null || echo 0; }
# shellcheck disable=SC2086 # NFSD_ARGS is a list of arguments
nfsd_start() { rpc.nfsd $NFSD_ARGS; }
nfsd_stop() { rpc.nfsd 0; }
in_grace() { [ "$(cat /proc/fs/nfsd/v4_end_grace 2>/dev/null)" = N ]; }
grace_over() { [ "$(cat /proc/fs/nfsd/v4_end_grace 2>/dev/null)" = Y ]; }

# Each line prefixed with the guest's uptime, as dmesg and trace.txt are.
uptime_stamp() {
	local line up _
	while IFS= read -r line; do
		read -r up _ </proc/uptime
		printf '[%10s] %s\n' "$up" "$line"
	done
}
# The tracker runs in its own session, output in $R/tracker.log.
tracker_start() {
	echo "=== $(date +%T) starting: $TRACKER_CMD" >>"$R/tracker.log"
	setsid bash -c "exec $TRACKER_CMD" > >(uptime_stamp >>"$R/tracker.log") 2>&1 </dev/null &
	TRACKER_PID=$!
}
# tracker_start_checked: tracker_start, then PASS tracker-started once it is
# ready, or FAIL and finish.
tracker_start_checked() {
	tracker_start
	if wait_for 10 tracker_has_watch; then
		pass tracker-started "pid $TRACKER_PID watching $TRACKER_WATCH_DESC"
	else
		fail tracker-started "$(tail -5 "$R/tracker.log" | tr '\n' '|')"
		finish
	fi
}
# A partitioned client's network: namespace "part", veth vh (server side,
# $PART_SRV) and vc (client side, $PART_CLI), exported to the client.
PART_SRV=10.99.0.1
PART_CLI=10.99.0.2
part_netns_setup() {
	ip netns add part &&
		ip link add vh type veth peer name vc netns part &&
		ip addr add "$PART_SRV/24" dev vh && ip link set vh up &&
		ip -n part addr add "$PART_CLI/24" dev vc && ip -n part link set vc up &&
		ip -n part link set lo up &&
		exportfs -o rw,fsid=0,no_root_squash,no_subtree_check,insecure,sync "$PART_CLI:$EXPORT"
}
tracker_alive() { [ -n "${TRACKER_PID:-}" ] && kill -0 "$TRACKER_PID" 2>/dev/null; }
# Ready = it watches the pipefs directory (inotify) or has the cld pipe open.
# In nfsdfs mode both mean: it holds /proc/fs/nfsd/allow_client open.
tracker_has_watch() {
	local fd
	[ "$TRACKER_MODE" = nfsdfs ] && {
		tracker_has_pipe
		return
	}
	for fd in /proc/"$TRACKER_PID"/fd/*; do
		case "$(readlink "$fd" 2>/dev/null)" in
		*inotify* | */nfsd/cld) return 0 ;;
		esac
	done
	return 1
}
tracker_has_pipe() {
	local fd pat=*/nfsd/cld
	[ "$TRACKER_MODE" = nfsdfs ] && pat=/proc/fs/nfsd/allow_client
	for fd in /proc/"$TRACKER_PID"/fd/*; do
		# shellcheck disable=SC2254 # $pat is a pattern
		case "$(readlink "$fd" 2>/dev/null)" in $pat) return 0 ;; esac
	done
	return 1
}
tracker_stop() {
	tracker_alive || return 0
	kill "$TRACKER_PID" 2>/dev/null
	wait_for 5 bash -c "! kill -0 $TRACKER_PID 2>/dev/null" || kill -9 "$TRACKER_PID" 2>/dev/null
}

# Export a fresh tmpfs as the NFSv4 pseudo root, serve it with mountd.
EXPORT=/export
export_tmpfs() {
	mkdir -p "$EXPORT" && mount -t tmpfs -o mode=0777 tmpfs "$EXPORT" || return 1
	exportfs -o rw,fsid=0,no_root_squash,no_subtree_check,insecure,sync "127.0.0.1:$EXPORT" || return 1
	rpcbind -w 2>/dev/null || rpcbind || return 1
	rpc.mountd -N 2 -N 3 || return 1
}

# --- the tracker's records and log -------------------------------------------
# tracker_db_ids: the client ids the tracker would allow at the next start,
# one per line: nfsd-helper's v4clients (helper-cld, nfsdfs), or the table of
# nfsdcld's current epoch.
NFSDCLD_DB=/var/lib/nfs/nfsdcld/main.sqlite
tracker_db_ids() {
	local cur
	if [ "$TRACKER_MODE" = cld ]; then
		[ -r "$NFSDCLD_DB" ] || return 0
		cur=$(sqlite3 -readonly "$NFSDCLD_DB" "select printf('rec-%016x', current) from grace;" 2>/dev/null)
		[ -n "$cur" ] || return 0
		sqlite3 -readonly "$NFSDCLD_DB" "select cast(id as text) from \"$cur\";" 2>/dev/null | tr -d '\0'
	else
		[ -r "$HELPER_DB" ] || return 0
		sqlite3 -readonly "$HELPER_DB" "select cast(id as text) from v4clients where scope = 'default';" 2>/dev/null | tr -d '\0'
	fi
}
# tracker_db_has PATTERN: an id matching the grep -E PATTERN is recorded.
tracker_db_has() { tracker_db_ids | grep -qE "$1"; }
tracker_db_info() { info "tracker records $1: $(tracker_db_ids | tr '\n' '|')"; }
# recovery_story SINCE: what happened to client state after uptime SINCE,
# on one line for a FAIL message: the helper's grace and create_client lines,
# the kernel's tracking errors, and the NFSv4 reclaims and error replies from
# the trace events (stage2.sh enables them).
recovery_story() {
	local since=$1
	{
		echo "since ${since}s, now $(now)s:"
		awk -v t="$since" '{ u = $0; sub(/^\[ */, "", u); sub(/\].*/, "", u) } u + 0 >= t' "$R/tracker.log" 2>/dev/null |
			grep -E 'starts its grace|ended its grace|create_client [0-9]+:|failed|error' | sed 's/ nfsd-helper: / /'
		dmesg | awk -v t="$since" '{ u = $0; sub(/^\[ */, "", u); sub(/\].*/, "", u) } u + 0 >= t' |
			grep -E 'NFSD: .*(failed|grace)|NFS: .*lost' | sed 's/\[ *\([0-9.]*\)\]/[\1]/'
		# The server's statuses (nfs4_xdr_status repeats them on the client
		# side); NFS4ERR_GRACE retries only counted.
		awk -v t="$since" '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { if ($i + 0 >= t) print; break } }' \
			/sys/kernel/tracing/trace 2>/dev/null |
			grep -E 'nfs4_(open|lock)_(reclaim|expired)|nfs4_setclientid|nfsd_compound_status.*status=[1-9]|nfsd_grace' |
			sed -E 's/^ *[^ ]+ +\[[0-9]+\] [^ ]+ +//' |
			awk '/status=10013|\(GRACE\)/ { g++; next } { print } END { if (g) print g " NFS4ERR_GRACE trace line(s) left out" }'
	} | tr '|' '+' | cut -c1-200 | tr '\n' '|' | cut -c1-3000
}
# tracker_log_count PATTERN: lines of the tracker's log matching it.
tracker_log_count() { grep -cE "$1" "$R/tracker.log" 2>/dev/null || true; }

# tracker_chosen_check SUFFIX MARK: the kernel chose the tracker after MARK,
# with no tracking error and no fallback.
tracker_chosen_check() {
	local sfx=$1 seg chosen
	seg=$(nfsd_lines_since "$2")
	chosen=$(grep -E 'Using .*(client tracking operations|state recovery directory)' <<<"$seg" | sed 's/^\[[^]]*\] //' | tr '\n' '|')
	if grep -q "$TRACKER_CHOSEN" <<<"$seg" && ! grep -q 'UMH upcall\|legacy client tracking\|state recovery directory' <<<"$seg"; then
		pass "tracker-chosen-$sfx" "dmesg: $chosen"
	else
		fail "tracker-chosen-$sfx" "the kernel did not choose the tracker ($TRACKER_CHOSEN); NFSD lines: $(tr '\n' '|' <<<"$seg")"
	fi
	if grep -q 'Unable to initialize client recovery tracking' <<<"$seg"; then
		fail "no-tracking-error-$sfx" "$(grep 'Unable to initialize' <<<"$seg" | tr '\n' '|')"
	fi
}

# --- lock holders (tests/vm/guest/locktool.py) --------------------------------
# lock_hold NAME FILE [PREFIX...]: a holder process locking FILE, run under
# PREFIX (e.g. nsenter into another client's namespaces); controlled through
# /tmp/NAME. lock_state NAME prints its state line.
lock_hold() {
	local name=$1 file=$2
	shift 2
	rm -rf "/tmp/$name" && mkdir -p "/tmp/$name"
	"$@" "$PY" "$LOCKTOOL" hold "$file" "/tmp/$name" >>"$R/test.log" 2>&1 &
}
lock_state() { cat "/tmp/$1/state" 2>/dev/null; }
lock_locked() { case "$(lock_state "$1")" in locked*) return 0 ;; esac; return 1; }
lock_pid() { lock_state "$1" | sed -n 's/^locked //p'; }
# lock_io NAME TAG: pwrite+fsync+pread on the holder's locked fd; prints "ok"
# or "error ERRNO ...". Waits for hard-mounted clients to recover.
lock_io() {
	touch "/tmp/$1/io-$2"
	if wait_for "${3:-120}" test -e "/tmp/$1/io-$2.result"; then cat "/tmp/$1/io-$2.result"; else echo "no answer within ${3:-120}s"; fi
}
# lock_try CHECK DETAIL FILE EXPECT [PREFIX...]: one non-blocking lock attempt
# on FILE (from the client PREFIX runs in); PASS if the answer starts with
# EXPECT (CONFLICT or ACQUIRED).
lock_try() {
	local name=$1 detail=$2 file=$3 want=$4 out
	shift 4
	out=$(timeout 60 "$@" "$PY" "$LOCKTOOL" try "$file" 2>&1)
	case "$out" in
	"$want"*) pass "$name" "$detail: $out" ;;
	*) fail "$name" "$detail: expected $want, got '${out:-timeout}'" ;;
	esac
}
lock_release() {
	touch "/tmp/$1/release"
	wait_for 60 bash -c "grep -q released /tmp/$1/state 2>/dev/null"
}
