#!/usr/bin/python3
"""Plays a helper whose database fails, on the expire_client file of the
patched nfsd (kernel-patches/), for tests/vm/guest/tests/nfsdfs-partition.sh.

  nfsdfs_expire.py NFSDFS READYFILE STOPFILE

Opens NFSDFS/expire_client, creates READYFILE, and answers every request
"<seq> <instance> <client-id>" with "<seq> -5" (EIO: a storage error) until
STOPFILE exists; then closes the file and exits. Prints one line per request:
  answered -5 <client-id decoded from \\x hex> (<the request>)
or "FAIL expire-request: ..." for a request that does not parse (exit 1).
"""
import os
import re
import select
import sys


def main():
    nfsdfs, ready, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    fd = os.open(os.path.join(nfsdfs, "expire_client"), os.O_RDWR)
    open(ready, "w").close()
    p = select.poll()
    p.register(fd, select.POLLIN)
    status = 0
    while not os.path.exists(stop):
        if not p.poll(200):
            continue
        req = os.read(fd, 4096)
        if not req:
            continue
        m = re.fullmatch(rb"([1-9][0-9]*) ([1-9][0-9]*) \\x((?:[0-9a-f]{2})+)\n", req)
        if m is None:
            print("FAIL expire-request: does not parse: %r" % req, flush=True)
            status = 1
            continue
        os.write(fd, m.group(1) + b" -5\n")
        name = bytes.fromhex(m.group(3).decode()).decode("utf-8", "replace")
        print("answered -5 %s (%r)" % (name, req), flush=True)
    os.close(fd)
    return status


if __name__ == "__main__":
    sys.exit(main())
