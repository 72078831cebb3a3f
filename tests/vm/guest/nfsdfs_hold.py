#!/usr/bin/python3
"""Plays a helper that is slow to record clients, on the patched nfsd's
client tracking files (kernel-patches/), for the nfsdfs-* tests in
tests/vm/guest/tests.

  nfsdfs_hold.py NFSDFS READYFILE STOPFILE [HEXID...]

Opens NFSDFS/allow_client, create_client, grace_done and expire_client and
creates READYFILE. A start is answered with one "client" line for each
HEXID (a client id in hex, allowed with any principal) and "done 0" with a
new instance id. grace_done and expire_client requests are answered
"<seq> 0" at once. A create_client request is held until a grace_done has been answered
and one more second has passed (at most 25 s: the kernel withdraws a
request after 30 s), then answered "<seq> 0". This forces a create that the
kernel sent during grace to be answered after grace has ended. Stops when
STOPFILE exists. Prints one line per event, stamped with the guest's uptime:
  <uptime> create held <client-id>
  <uptime> grace_done answered
  <uptime> create answered <client-id> (held <s> s, after grace_done|before grace_done)
and "FAIL <file>-request: ..." for a request that does not parse (exit 1).
"""
import os
import re
import select
import sys
import time

REQUEST = {
    "allow_client": rb"([1-9][0-9]*) start 1 ([0-9]+)\n",
    "create_client": rb"([1-9][0-9]*) ([1-9][0-9]*) \\x((?:[0-9a-f]{2})+)"
                     rb" (?:-|\\x[0-9a-f]{64}) v4[01]\n",
    "grace_done": rb"([1-9][0-9]*) ([1-9][0-9]*)\n",
    "expire_client": rb"([1-9][0-9]*) ([1-9][0-9]*) \\x((?:[0-9a-f]{2})+)\n",
}
MAX_HOLD = 25.0


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def say(line):
    print("%.2f %s" % (uptime(), line), flush=True)


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    nfsdfs, ready, stop = sys.argv[1:4]
    allowed = [h.lower().encode() for h in sys.argv[4:]]
    fds = {name: os.open(os.path.join(nfsdfs, name), os.O_RDWR)
           for name in REQUEST}
    names = {fd: name for name, fd in fds.items()}
    open(ready, "w").close()
    p = select.poll()
    for fd in fds.values():
        p.register(fd, select.POLLIN)
    held = []  # (time read, seq, client)
    grace_done_at = None
    status = 0
    while not os.path.exists(stop):
        for fd, _ in p.poll(100):
            name = names[fd]
            req = os.read(fd, 8192)
            if not req:
                continue
            m = re.fullmatch(REQUEST[name], req)
            if m is None:
                say("FAIL %s-request: does not parse: %r" % (name, req))
                status = 1
                continue
            if name == "allow_client":
                seq = m.group(1)
                reply = b"".join(seq + b" client \\x" + h + b" -\n"
                                 for h in allowed)
                reply += seq + b" done 0 %d\n" % int(time.time())
                os.write(fd, reply)
                say("start answered, %d client(s) allowed" % len(allowed))
            elif name == "create_client":
                client = bytes.fromhex(m.group(3).decode()).decode(
                    "utf-8", "replace")
                held.append((time.monotonic(), m.group(1), client))
                say("create held %s" % client)
            else:
                os.write(fd, m.group(1) + b" 0\n")
                if name == "grace_done":
                    grace_done_at = time.monotonic()
                    say("grace_done answered")
        now = time.monotonic()
        keep = []
        for t, seq, client in held:
            after = grace_done_at is not None and now >= grace_done_at + 1
            if after or now - t >= MAX_HOLD:
                os.write(fds["create_client"], seq + b" 0\n")
                say("create answered %s (held %.1f s, %s grace_done)" %
                    (client, now - t, "after" if after else "before"))
            else:
                keep.append((t, seq, client))
        held = keep
    for fd in fds.values():
        os.close(fd)
    return status


if __name__ == "__main__":
    sys.exit(main())
