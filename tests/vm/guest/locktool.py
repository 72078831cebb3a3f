#!/usr/bin/python3
"""POSIX (fcntl) lock helper for the real-kernel VM tests.

  locktool.py hold FILE CTLDIR
      Opens FILE read-write, takes an exclusive fcntl lock on the whole file
      without waiting, writes CTLDIR/state ("locked" or "lock-failed ERRNO"),
      then serves commands given as files in CTLDIR:
        io-N      -> pwrite + fsync + pread on the open descriptor; answer in
                     io-N.result: "ok" or "error ERRNONAME message"
        release   -> close the file (dropping the lock), write state
                     "released", exit 0
      The lock is held by this process for as long as it lives.

  locktool.py try FILE
      Opens FILE read-write and tries an exclusive fcntl lock without waiting.
      Prints ACQUIRED (exit 0, lock dropped on exit), CONFLICT ERRNONAME
      (exit 11) or ERROR ERRNONAME message (exit 1).
"""
import errno
import fcntl
import os
import sys
import time


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.rename(tmp, path)


def hold(path, ctl):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        write_atomic(os.path.join(ctl, "state"), "lock-failed %s" % errno.errorcode.get(e.errno, e.errno))
        return 1
    write_atomic(os.path.join(ctl, "state"), "locked %d" % os.getpid())
    n = 0
    while True:
        if os.path.exists(os.path.join(ctl, "release")):
            os.close(fd)
            write_atomic(os.path.join(ctl, "state"), "released")
            return 0
        for name in sorted(os.listdir(ctl)):
            if not name.startswith("io-") or "." in name:
                continue
            res = os.path.join(ctl, name + ".result")
            if os.path.exists(res):
                continue
            n += 1
            data = ("io %s from pid %d at %.3f\n" % (name, os.getpid(), time.time())).encode()
            try:
                os.pwrite(fd, data, 0)
                os.fsync(fd)
                back = os.pread(fd, len(data), 0)
                if back != data:
                    write_atomic(res, "error MISMATCH read back %r" % back)
                else:
                    write_atomic(res, "ok")
            except OSError as e:
                write_atomic(res, "error %s %s" % (errno.errorcode.get(e.errno, e.errno), e.strerror))
        time.sleep(0.1)


def try_lock(path):
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as e:
        print("ERROR %s %s" % (errno.errorcode.get(e.errno, e.errno), e.strerror))
        return 1
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            print("CONFLICT %s" % errno.errorcode[e.errno])
            return 11
        print("ERROR %s %s" % (errno.errorcode.get(e.errno, e.errno), e.strerror))
        return 1
    print("ACQUIRED")
    os.close(fd)
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "hold":
        return hold(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "try":
        return try_lock(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
