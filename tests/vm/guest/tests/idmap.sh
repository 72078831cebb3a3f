#!/bin/bash
# Story: nfsd-helper --idmap serves nfsd's NFSv4 ID mapping on the stock
# kernel (rpc.idmapd not running, nfsd's nfs4_disable_idmapping off). Files
# created through an NFSv4 mount (loopback, sec=sys) by two local users show
# their owners' names on the client; a file owned by a uid without a name
# shows "nobody"; a chown to an id the server cannot name is refused.
#
# Client and server are one machine with one /etc/passwd, so the client's own
# ID mapping (request-key -> nfsidmap, same Domain) could hide a server that
# sent bare numbers. Two checks tell them apart: nfsd's cache content lists
# the names nfsd-helper wrote, and the server's idmapd.conf maps carol's uid
# to the name "dave" ([Static], which only nfsd-helper reads): a client that
# shows carol's file as owned by dave got the name from the server.
# Client tracking is left to $TRACKER_CMD (nfsdcld by default).
here=$(dirname "$0")
# shellcheck source=tests/vm/guest/lib.sh
. "$here/../lib.sh"
HELPER=${NFSD_HELPER:-}
CTL=$(dirname "$HELPER")/../ctl/helper-ctl
DOMAIN=vmtest.example
SERVER_CONF=/run/server-idmapd.conf
SOCK=/run/nfsd-helper/ctl.sock
info "nfsd-helper: $HELPER"
[ -x "$HELPER" ] || { fail helper-binary "NFSD_HELPER ($HELPER) is not an executable nfsd-helper"; finish; }

# --- setup ------------------------------------------------------------------
if pgrep -x rpc.idmapd >/dev/null; then
	fail no-rpc-idmapd "rpc.idmapd is running: $(pgrep -a -x rpc.idmapd)"
else
	pass no-rpc-idmapd "rpc.idmapd is not running"
fi
echo N >/sys/module/nfsd/parameters/nfs4_disable_idmapping
check idmapping-on "nfs4_disable_idmapping = $(cat /sys/module/nfsd/parameters/nfs4_disable_idmapping)" \
	test "$(cat /sys/module/nfsd/parameters/nfs4_disable_idmapping)" = N
nfsd_set_times "$NFSD_TIME" || info "could not set lease/grace time to $NFSD_TIME"

# Users in the overlay's /etc (a tmpfs upper layer).
mkusers() {
	groupadd -g 3001 alices && groupadd -g 3002 bobs && groupadd -g 3003 carols &&
		groupadd -g 3004 daves &&
		useradd -M -N -u 2001 -g alices alice && useradd -M -N -u 2002 -g bobs bob &&
		useradd -M -N -u 2003 -g carols carol && useradd -M -N -u 2004 -g daves dave
}
check users "alice 2001, bob 2002, carol 2003, dave 2004 created" mkusers || finish
# The client's nfsidmap (request-key) reads /etc/idmapd.conf: same domain.
printf '[General]\nDomain = %s\n[Mapping]\nNobody-User = nobody\nNobody-Group = nogroup\n' "$DOMAIN" >/etc/idmapd.conf
cat >"$SERVER_CONF" <<CONF
[General]
Domain = $DOMAIN
[Mapping]
Nobody-User = nobody
Nobody-Group = nogroup
[Translation]
Method = static,nsswitch
[Static]
dave@$DOMAIN = carol
CONF

check export "tmpfs $EXPORT exported to 127.0.0.1, mountd running" export_tmpfs || finish
tracker_start
wait_for 10 tracker_has_watch || info "tracker shows no watch after 10 s; going on"

# --- nfsd-helper serving the idmap channels --------------------------------
mkdir -p /var/lib/nfs/nfsd-helper
HLOG=$R/nfsd-helper.log
setsid "$HELPER" -F -d --nfsdfs none --cld-pipe none --nfsdcld-db none \
	--nfsdcltrack-db none --db /var/lib/nfs/nfsd-helper/state.sqlite \
	--ctl-socket "$SOCK" --idmap --idmap-conf "$SERVER_CONF" >"$HLOG" 2>&1 </dev/null &
HPID=$!
holds() {
	local fd
	for fd in /proc/"$HPID"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "$1" ] && return 0
	done
	return 1
}
both_open() {
	holds "/proc/$HPID/net/rpc/nfs4.idtoname/channel" || holds /proc/net/rpc/nfs4.idtoname/channel || return 1
	holds "/proc/$HPID/net/rpc/nfs4.nametoid/channel" || holds /proc/net/rpc/nfs4.nametoid/channel
}
if wait_for 15 both_open; then
	pass helper-serves-idmap "pid $HPID holds both channels open"
else
	fail helper-serves-idmap "fds: $(ls -l /proc/$HPID/fd 2>&1 | tr '\n' '|'); log: $(tail -5 "$HLOG" | tr '\n' '|')"
	finish
fi
# A second one must refuse: the channels are served.
mkdir -m 0700 -p /run/second
out=$(timeout 20 "$HELPER" -F --nfsdfs none --cld-pipe none --nfsdcld-db none \
	--nfsdcltrack-db none --db /run/second/state.sqlite --ctl-socket /run/second/ctl.sock \
	--idmap --idmap-conf "$SERVER_CONF" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "is already served by pid $HPID (nfsd-helper)" <<<"$out"; then
	pass second-refused "exit $rc: $(grep -m1 'already served' <<<"$out")"
else
	fail second-refused "exit $rc: $(tr '\n' '|' <<<"$out")"
fi

# --- nfsd and the client ------------------------------------------------------
nfsd_start || { fail nfsd-start "rpc.nfsd $NFSD_ARGS failed"; finish; }
modprobe nfsv4 2>/dev/null
mkdir -p /mnt/c
check mount "127.0.0.1:/ on /mnt/c, vers=4.2, sec=sys, noac" \
	timeout 60 mount -t nfs4 -o vers=4.2,sec=sys,noac 127.0.0.1:/ /mnt/c || finish
as() { # as UID GID CMD...
	local u=$1 g=$2
	shift 2
	setpriv --reuid="$u" --regid="$g" --clear-groups "$@"
}
as 2001 3001 sh -c 'echo a >/mnt/c/by-alice' &&
	as 2002 3002 sh -c 'echo b >/mnt/c/by-bob' &&
	as 2003 3003 sh -c 'echo c >/mnt/c/by-carol'
check create "files created through the mount by alice, bob and carol" test $? -eq 0
owner() { stat -c '%U:%G' "$1" 2>&1; }
info "server side: $(ls -ln "$EXPORT" | tr '\n' '|')"
info "client side: $(ls -l /mnt/c | tr '\n' '|')"
check owner-alice "by-alice is $(owner /mnt/c/by-alice) on the client" test "$(owner /mnt/c/by-alice)" = alice:alices
check owner-bob "by-bob is $(owner /mnt/c/by-bob) on the client" test "$(owner /mnt/c/by-bob)" = bob:bobs
check server-side-name "by-carol (uid 2003 on disk: $(stat -c %u "$EXPORT/by-carol")) is $(owner /mnt/c/by-carol) on the client: the server's [Static] name" \
	test "$(owner /mnt/c/by-carol)" = dave:carols
content=$(cat /proc/net/rpc/nfs4.idtoname/content 2>&1)
info "nfs4.idtoname content: $(tr '\n' '|' <<<"$content")"
check kernel-cache-names "nfsd's idtoname cache holds alice@$DOMAIN and bob@$DOMAIN" \
	grep -q "user 2001 alice@$DOMAIN" <<<"$content"
grep -q "user 2002 bob@$DOMAIN" <<<"$content" || fail kernel-cache-names "no bob@$DOMAIN"

# chown through the mount: bob's file to alice (nametoid alice@domain).
check chown-known "chown alice by-bob through the mount" chown alice /mnt/c/by-bob
check chown-result "by-bob is now $(stat -c %u "$EXPORT/by-bob") on disk, $(owner /mnt/c/by-bob) on the client" \
	test "$(stat -c %u "$EXPORT/by-bob")" = 2001 -a "$(owner /mnt/c/by-bob)" = alice:bobs
# An id nobody can name: the client sends it as a number, nfsd asks
# nametoid, nfsd-helper answers with a negative entry: NFS4ERR_BADOWNER.
if out=$(chown 4242 /mnt/c/by-alice 2>&1); then
	fail chown-unknown-refused "chown 4242 succeeded: now $(stat -c %u "$EXPORT/by-alice")"
else
	pass chown-unknown-refused "$out; on disk still $(stat -c %u "$EXPORT/by-alice")"
fi
check chown-unknown-unchanged "by-alice still uid 2001 on disk" test "$(stat -c %u "$EXPORT/by-alice")" = 2001
# A file owned by a uid without a name (set on the server's disk).
echo x >"$EXPORT/unmapped" && chown 4343:4343 "$EXPORT/unmapped"
check owner-nobody "unmapped (4343:4343 on disk) is $(owner /mnt/c/unmapped) on the client" \
	test "$(owner /mnt/c/unmapped)" = nobody:nogroup

# --- statistics ---------------------------------------------------------------
st=$("$CTL" status --json --ctl-socket "$SOCK" 2>&1)
info "helper-ctl status: $(tr -d '\n ' <<<"$st" | grep -o '"idmap":{.*}' | head -c 600)"
jq() { python3 -c "import json,sys; d=json.load(sys.stdin)['idmap']; print($1)" <<<"$st" 2>&1; }
check stats-idtoname "idtoname hits $(jq "d['idtoname']['hits']"), misses $(jq "d['idtoname']['misses']")" \
	test "$(jq "d['idtoname']['hits'] >= 3 and d['idtoname']['misses'] >= 1")" = True
check stats-nametoid "nametoid hits $(jq "d['nametoid']['hits']"), misses $(jq "d['nametoid']['misses']")" \
	test "$(jq "d['nametoid']['hits'] >= 1 and d['nametoid']['misses'] >= 1")" = True

umount /mnt/c
nfsd_stop
kill "$HPID" 2>/dev/null
wait_for 10 bash -c "! kill -0 $HPID 2>/dev/null" || { kill -9 "$HPID"; fail helper-exit "nfsd-helper did not exit on SIGTERM"; }
tracker_stop
finish
