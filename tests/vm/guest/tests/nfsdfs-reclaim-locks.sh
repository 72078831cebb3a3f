#!/bin/bash
# Story: the reclaim-locks story (NFSv4.0 and NFSv4.2 clients hold locks
# across nfsd restarts) with the patched nfsd of kernel-patches/ and
# nfsd-helper serving its four client tracking files, restarted twice: a
# client that reclaimed after the first restart must be on stable storage
# again to reclaim after the second. Every start must log
# "Using nfsdfs client tracking operations".
# shellcheck disable=SC2034 # read by lib.sh and reclaim-locks.sh
TRACKER_MODE=nfsdfs
: "${RESTARTS:=2}"
# shellcheck source=tests/vm/guest/tests/reclaim-locks.sh
. "$(dirname "$0")/reclaim-locks.sh"
