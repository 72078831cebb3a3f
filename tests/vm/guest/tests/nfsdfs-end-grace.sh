#!/bin/bash
# Story: the cld-end-grace story (helper-ctl end-grace ends nfsd's grace
# period, and the helper records it from the upcall the write causes) with
# the patched nfsd of kernel-patches/ and nfsd-helper serving its four
# client tracking files: the write sends grace_done, and the kernel ends
# grace only once it is answered 0.
# shellcheck disable=SC2034 # read by lib.sh and cld-end-grace.sh
TRACKER_MODE=nfsdfs
# shellcheck source=tests/vm/guest/tests/cld-end-grace.sh
. "$(dirname "$0")/cld-end-grace.sh"
