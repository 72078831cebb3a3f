#!/bin/bash
# The reclaim-locks story with TWO nfsd restarts in a row: a client that
# reclaimed after the first restart must be on stable storage again, so that
# it may reclaim after the second one too (RFC 7530 §9.6.3.4, RFC 8881
# §8.4.3).
# known-failure: with Debian's nfsdcld on Linux 6.1 an NFSv4.0 client that reclaimed is never recorded again (no Create upcall on the reclaim path), so its lock is lost at the second restart; see tests/vm/README.md
export RESTARTS=2
exec bash "$(dirname "$0")/reclaim-locks.sh"
