#!/usr/bin/env python3
"""faultio — file operations whose every step reports its errno, for
faults.bats. Prints one word per step ("OK" or the errno name), exit 0 either
way, 2 on a usage error.

  put SRC DST           open DST O_WRONLY|O_CREAT|O_TRUNC, write SRC's bytes
                        in 1 MiB writes, close: prints "OK", "open:ERR",
                        "write:ERR" (the descriptor is then closed quietly)
                        or "close:ERR"
  patch SRC DST         as put, but open DST O_WRONLY (no O_CREAT, no
                        O_TRUNC): SRC's bytes overwrite DST from offset 0
  put-fsync SRC DST OLD as put, then fsync before close; prints
                        "fsync:RES old:same|old:DIFF close:RES", where old:
                        says whether a second descriptor opened after the
                        failed fsync still reads OLD's bytes
  rw-read DST DATA      open DST O_RDWR, write DATA at 0, read it back
                        through the same descriptor: "read:RES close:RES"
  read-twice PATH REF   read PATH whole on one descriptor, twice: the
                        results of both passes, each "OK" (the bytes equal
                        REF's), "WRONG" or "ERR:N" (N bytes came first)
"""
import errno
import os
import sys

CHUNK = 1 << 20


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def attempt(fn, *a):
    try:
        fn(*a)
        return "OK"
    except OSError as e:
        return name(e)


def write_all(fd, data):
    for i in range(0, len(data), CHUNK):
        view = memoryview(data)[i:i + CHUNK]
        while view:
            view = view[os.write(fd, view):]


def read_all(fd, ref):
    got = bytearray()
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        try:
            b = os.read(fd, 65536)
        except OSError as e:
            return "%s:%d" % (name(e), len(got))
        if not b:
            return "OK" if bytes(got) == ref else "WRONG"
        got += b
        if ref[:len(got)] != got:
            return "WRONG"


def put(src, dst, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    data = open(src, "rb").read()
    try:
        fd = os.open(dst, flags, 0o644)
    except OSError as e:
        return "open:" + name(e)
    try:
        write_all(fd, data)
    except OSError as e:
        attempt(os.close, fd)
        return "write:" + name(e)
    res = attempt(os.close, fd)
    return "OK" if res == "OK" else "close:" + res


def patch(src, dst):
    return put(src, dst, os.O_WRONLY)


def put_fsync(src, dst, old):
    data = open(src, "rb").read()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    write_all(fd, data)
    out = ["fsync:" + attempt(os.fsync, fd)]
    with open(dst, "rb") as f:
        out.append("old:same" if f.read() == open(old, "rb").read() else "old:DIFF")
    out.append("close:" + attempt(os.close, fd))
    return " ".join(out)


def rw_read(dst, data):
    data = data.encode()
    fd = os.open(dst, os.O_RDWR)
    os.pwrite(fd, data, 0)
    try:
        got = os.pread(fd, len(data), 0)
        out = ["read:" + ("OK" if got == data else "WRONG")]
    except OSError as e:
        out = ["read:" + name(e)]
    out.append("close:" + attempt(os.close, fd))
    return " ".join(out)


def read_twice(path, ref):
    ref = open(ref, "rb").read()
    fd = os.open(path, os.O_RDONLY)
    try:
        return "%s %s" % (read_all(fd, ref), read_all(fd, ref))
    finally:
        os.close(fd)


def main():
    ops = {"put": (put, 2), "patch": (patch, 2), "put-fsync": (put_fsync, 3), "rw-read": (rw_read, 2),
           "read-twice": (read_twice, 2)}
    if len(sys.argv) < 2 or sys.argv[1] not in ops or len(sys.argv) != 2 + ops[sys.argv[1]][1]:
        sys.stderr.write(__doc__)
        return 2
    print(ops[sys.argv[1]][0](*sys.argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
