#!/usr/bin/python3
"""Plays a misbehaving helper on the nfsdfs client tracking files of the
patched nfsd (kernel-patches/), for tests/vm/guest/tests/nfsdfs-upcalls.sh.

  nfsdfs_downcall.py NFSDFS READYFILE

Opens NFSDFS/allow_client (so that the next nfsd start chooses the nfsdfs
tracker), creates READYFILE, then waits up to 60 s for the start request.
It checks that:
  - the request is one line "<seq> start 1 <kernel-boot-time>";
  - a request read but not answered is read again, whole and unchanged, by
    the next open file after the first one is closed (re-queue on close);
  - a read with a small buffer gets the request in parts;
  - every malformed downcall, each carrying the right sequence number, and
    a reply to create_client with no request outstanding, fail with EINVAL;
  - a well-formed "<seq> done -5 0" is accepted (the kernel then has no
    server instance and retries the start).
Prints PASS/FAIL lines (lib.sh format without the prefix file) on stdout;
exit status 1 if anything failed.
"""
import errno
import os
import re
import select
import sys
import time

fails = 0


def report(ok, name, detail):
    global fails
    print("%s %s%s %s" % ("PASS" if ok else "FAIL", name, "" if ok else ":", detail), flush=True)
    if not ok:
        fails += 1


def wait_request(fd, seconds):
    p = select.poll()
    p.register(fd, select.POLLIN)
    deadline = time.time() + seconds
    while time.time() < deadline:
        if p.poll(500):
            return True
    return False


def read_all(fd, bufsize):
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(fd, bufsize)
        if not chunk:
            break
        out += chunk
    return out


def main():
    nfsdfs, ready = sys.argv[1], sys.argv[2]
    path = os.path.join(nfsdfs, "allow_client")
    fd = os.open(path, os.O_RDWR)
    open(ready, "w").close()
    if not wait_request(fd, 60):
        report(False, "start-request", "no request on %s within 60 s" % path)
        return 1
    first = os.read(fd, 4096)
    m = re.fullmatch(rb"([1-9][0-9]*) start 1 (0|[1-9][0-9]*)\n", first)
    report(m is not None, "start-request", "read %r" % first)
    if m is None:
        return 1
    seq = m.group(1)
    report(os.read(fd, 4096) == b"", "read-empty-queue", "a second read returns 0 with nothing queued")
    # Close without answering: the request must come back.
    os.close(fd)
    fd = os.open(path, os.O_RDWR)
    if not wait_request(fd, 5):
        report(False, "requeue-on-close", "nothing to read after the reader closed with the request unanswered")
        return 1
    again = read_all(fd, 7)
    report(again == first, "requeue-on-close",
           "re-read in 7-byte parts after close: %r" % again)

    s = seq.decode()
    bad = [
        ("no-newline", "%s done 0 5" % s),
        ("double-space", "%s done  0 5\n" % s),
        ("trailing-space", "%s done 0 5 \n" % s),
        ("leading-space", " %s done 0 5\n" % s),
        ("empty-line", "\n"),
        ("empty-line-after", "%s done 0 5\n\n" % s),
        ("nul-byte", "%s done 0 5\x00\n" % s),
        ("unknown-keyword", "%s finished 0 5\n" % s),
        ("wrong-seq", "%d done 0 5\n" % (int(s) + 1000)),
        ("seq-leading-zero", "0%s done 0 5\n" % s),
        ("seq-not-number", "x%s done 0 5\n" % s),
        ("status-minus-zero", "%s done -0 0\n" % s),
        ("status-too-big", "%s done -4096 0\n" % s),
        ("status-positive", "%s done 5 0\n" % s),
        ("ok-with-instance-0", "%s done 0 0\n" % s),
        ("error-with-instance", "%s done -5 7\n" % s),
        ("instance-over-2^63", "%s done 0 9223372036854775808\n" % s),
        ("instance-over-2^64", "%s done 0 18446744073709551616\n" % s),
        ("done-extra-field", "%s done 0 5 6\n" % s),
        ("done-missing-field", "%s done 0\n" % s),
        ("client-id-empty", "%s client \\x -\n" % s),
        ("client-id-1025-bytes", "%s client \\x%s -\n" % (s, "ab" * 1025)),
        ("client-id-odd-hex", "%s client \\x616 -\n" % s),
        ("client-id-bad-hex", "%s client \\x6g -\n" % s),
        ("princhash-31-bytes", "%s client \\x61 \\x%s\n" % (s, "cd" * 31)),
        ("princhash-33-bytes", "%s client \\x61 \\x%s\n" % (s, "cd" * 33)),
        ("princhash-escaped-dash", "%s client \\x61 \\055\n" % s),
        ("client-missing-hash", "%s client \\x61\n" % s),
        # one good client line, then a bad one: nothing may be applied
        ("good-then-bad", "%s client \\x61 -\n%s client \\x -\n" % (s, s)),
        ("client-after-done", "%s done 0 5\n%s client \\x61 -\n" % (s, s)),
        ("two-dones", "%s done 0 5\n%s done 0 6\n" % (s, s)),
        ("too-long-8192", "%s client \\x%s -\n" % (s, "ab" * 4096)),
    ]
    for name, text in bad:
        data = text.encode()
        try:
            n = os.write(fd, data)
            report(False, "malformed-" + name, "write of %r accepted (%d bytes)" % (data[:80], n))
        except OSError as e:
            report(e.errno == errno.EINVAL, "malformed-" + name,
                   "write refused with %s" % errno.errorcode.get(e.errno, e.errno))
    cfd = os.open(os.path.join(nfsdfs, "create_client"), os.O_RDWR)
    try:
        os.write(cfd, ("%s 0\n" % s).encode())
        report(False, "create-reply-unknown-seq", "a reply with no request outstanding was accepted")
    except OSError as e:
        report(e.errno == errno.EINVAL, "create-reply-unknown-seq",
               "refused with %s" % errno.errorcode.get(e.errno, e.errno))
    os.close(cfd)
    # Well-formed: the helper could not start an instance.
    try:
        good = ("%s done -5 0\n" % s).encode()
        n = os.write(fd, good)
        report(n == len(good), "wellformed-accepted", "%r accepted" % good)
    except OSError as e:
        report(False, "wellformed-accepted", "refused with %s" % errno.errorcode.get(e.errno, e.errno))
    try:
        os.write(fd, good)
        report(False, "answered-twice", "a second reply to the answered request was accepted")
    except OSError as e:
        report(e.errno == errno.EINVAL, "answered-twice",
               "second reply refused with %s" % errno.errorcode.get(e.errno, e.errno))
    os.close(fd)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
