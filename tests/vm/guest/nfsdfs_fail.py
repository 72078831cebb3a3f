#!/usr/bin/python3
"""Plays a helper whose database fails, on one client tracking file of the
patched nfsd (kernel-patches/), for the nfsdfs-* tests in tests/vm/guest/tests.

  nfsdfs_fail.py NFSDFS FILE READYFILE STOPFILE

FILE is expire_client or create_client. Opens NFSDFS/FILE, creates
READYFILE, and answers every request with "<seq> -5" (EIO: a storage error)
until STOPFILE exists; then closes the file and exits. The requests are
  expire_client: "<seq> <instance> <client-id>"
  create_client: "<seq> <instance> <client-id> <princhash|-> <v40|v41>"
with the client id as \\x hex. Prints one line per request:
  answered -5 <client-id decoded> (<the request>)
or "FAIL <FILE>-request: ..." for a request that does not parse (exit 1).
"""
import os
import re
import select
import sys

REQUEST = {
    "expire_client": rb"([1-9][0-9]*) ([1-9][0-9]*) \\x((?:[0-9a-f]{2})+)\n",
    "create_client": rb"([1-9][0-9]*) ([1-9][0-9]*) \\x((?:[0-9a-f]{2})+)"
                     rb" (?:-|\\x[0-9a-f]{64}) v4[01]\n",
}


def main():
    if len(sys.argv) != 5 or sys.argv[2] not in REQUEST:
        sys.stderr.write(__doc__)
        return 2
    nfsdfs, name, ready, stop = sys.argv[1:]
    fd = os.open(os.path.join(nfsdfs, name), os.O_RDWR)
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
        m = re.fullmatch(REQUEST[name], req)
        if m is None:
            print("FAIL %s-request: does not parse: %r" % (name, req), flush=True)
            status = 1
            continue
        os.write(fd, m.group(1) + b" -5\n")
        client = bytes.fromhex(m.group(3).decode()).decode("utf-8", "replace")
        print("answered -5 %s (%r)" % (client, req), flush=True)
    os.close(fd)
    return status


if __name__ == "__main__":
    sys.exit(main())
