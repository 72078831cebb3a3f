#!/bin/bash
# Story: the cld-partition story (a client whose lease expired during a
# network partition must not reclaim after the next restart) with the
# patched nfsd of kernel-patches/ and nfsd-helper serving its four client
# tracking files: the expiry reaches the helper as expire_client.
# shellcheck disable=SC2034 # read by lib.sh and cld-partition.sh
TRACKER_MODE=nfsdfs
# shellcheck source=tests/vm/guest/tests/cld-partition.sh
. "$(dirname "$0")/cld-partition.sh"
