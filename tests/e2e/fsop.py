#!/usr/bin/env python3
"""fsop — one file-system operation with an exact errno, for the bats tests.

Usage: fsop.py OP ARGS...   prints "OK" (plus a result for some ops) or the
errno name of the failing step, e.g. "EROFS" or "close:EINVAL"; exit 0 either
way, 2 on a usage error. Ops:

  stat PATH                 lstat; prints OK
  read PATH                 open O_RDONLY, read all, close
  open-w PATH               open O_WRONLY (no create), close
  open-rw PATH              open O_RDWR, close
  create PATH               open O_WRONLY|O_CREAT|O_EXCL, close
  write PATH DATA           open O_WRONLY|O_TRUNC (creating), write, close;
                            a failing close prints close:ERRNO
  append PATH DATA          open O_WRONLY|O_APPEND, write, close
  truncate PATH SIZE        truncate(2)
  mkdir PATH / rmdir PATH / unlink PATH
  rename OLD NEW / link OLD NEW / symlink TARGET PATH
  setxattr PATH NAME VALUE [create|replace]
  getxattr PATH NAME        prints OK VALUE
  removexattr PATH NAME
  readok PATH               read all in 64 KiB chunks; prints OK, or
                            ERRNO:N where N is how many bytes came first;
                            with --compare FILE, bytes that came before the
                            error must equal FILE's prefix (else prints WRONG)
  each WANT OP PATH...      OP on each PATH (one process for many checks):
                            prints OK when every result is WANT, else one
                            "PATH: RESULT" line per mismatch
"""
import errno
import os
import sys


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def step(label, fn, *a):
    try:
        return fn(*a)
    except OSError as e:
        raise Failed(("%s:" % label if label else "") + name(e))


class Failed(Exception):
    pass


def write_file(path, data, flags):
    fd = step("", os.open, path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = step("write", os.write, fd, view)
            view = view[n:]
    except Failed:
        os.close(fd)
        raise
    step("close", os.close, fd)


def readok(path, compare):
    ref = open(compare, "rb").read() if compare else None
    fd = step("", os.open, path, os.O_RDONLY)
    got = 0
    try:
        while True:
            try:
                b = os.read(fd, 65536)
            except OSError as e:
                return "%s:%d" % (name(e), got)
            if not b:
                return "OK"
            if ref is not None and ref[got:got + len(b)] != b:
                return "WRONG:%d" % got
            got += len(b)
    finally:
        os.close(fd)


def run(op, a):
    if op == "stat":
        step("", os.lstat, a[0])
    elif op == "read":
        fd = step("", os.open, a[0], os.O_RDONLY)
        while step("read", os.read, fd, 65536):
            pass
        step("close", os.close, fd)
    elif op == "open-w" or op == "open-rw":
        fd = step("", os.open, a[0], os.O_WRONLY if op == "open-w" else os.O_RDWR)
        step("close", os.close, fd)
    elif op == "create":
        fd = step("", os.open, a[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        step("close", os.close, fd)
    elif op == "write":
        write_file(a[0], a[1].encode(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    elif op == "append":
        write_file(a[0], a[1].encode(), os.O_WRONLY | os.O_APPEND)
    elif op == "truncate":
        step("", os.truncate, a[0], int(a[1]))
    elif op == "mkdir":
        step("", os.mkdir, a[0])
    elif op == "rmdir":
        step("", os.rmdir, a[0])
    elif op == "unlink":
        step("", os.unlink, a[0])
    elif op == "rename":
        step("", os.rename, a[0], a[1])
    elif op == "link":
        step("", os.link, a[0], a[1])
    elif op == "symlink":
        step("", os.symlink, a[0], a[1])
    elif op == "setxattr":
        flags = {"": 0, "create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}[
            a[3] if len(a) > 3 else ""]
        step("", os.setxattr, a[0], a[1], a[2].encode(), flags)
    elif op == "getxattr":
        return "OK " + step("", os.getxattr, a[0], a[1]).decode(errors="replace")
    elif op == "removexattr":
        step("", os.removexattr, a[0], a[1])
    elif op == "readok":
        cmp = a[2] if len(a) > 2 and a[1] == "--compare" else None
        return readok(a[0], cmp)
    else:
        print("fsop: unknown op %s" % op, file=sys.stderr)
        sys.exit(2)
    return "OK"


def result(op, a):
    try:
        return run(op, a)
    except Failed as f:
        return f.args[0]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "each":
        want, op = sys.argv[2], sys.argv[3]
        bad = ["%s: %s" % (p, r) for p in sys.argv[4:] for r in [result(op, [p])] if r != want]
        print("\n".join(bad) if bad else "OK")
        return
    try:
        print(run(sys.argv[1], sys.argv[2:]))
    except Failed as f:
        print(f.args[0])


if __name__ == "__main__":
    main()
