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

More ops, mostly for the POSIX errno table (posix.table, see `table`):

  open PATH FLAGS [MODE]    open(2) with FLAGS, a comma list of r w rw creat
                            excl trunc append dir nofollow nonblock; close
  openwrite PATH FLAGS DATA open, write DATA (step "write:"), close
  openread PATH FLAGS       open, read (step "read:"), close
  ftruncate PATH FLAGS SIZE open, ftruncate (step "ftruncate:"), close
  lseek PATH OFFSET         open O_RDONLY, lseek(SEEK_SET) (step "lseek:")
  statm PATH                lstat; prints OK MODE(octal) UID GID
  mtime PATH                lstat; prints OK MTIME-SECONDS
  nlink PATH                lstat; prints OK NLINK
  fallocate PATH OFF LEN [MODE [FLAGS]]  open with FLAGS (default rw),
                            fallocate(2) with MODE, a comma list of keep
                            punch zero collapse insert unshare bad (default
                            0) (step "fallocate:"), close
  size PATH                 lstat; prints OK SIZE
  sum PATH                  read all; prints OK SIZE and the first 12 hex
                            digits of its SHA-256
  writefstat PATH FLAGS DATA  open, write DATA, fstat the same descriptor
                            (steps "write:", "fstat:"); prints OK MODE(octal)
  copyrange SRC DST         copy_file_range(2) all of SRC into DST (opened
                            O_WRONLY; step "copy:"), close
  mkdir PATH [MODE] / mknod PATH fifo|chr|sock [MODE] / readlink PATH
  listdir PATH              os.listdir: prints OK N
  chmod PATH MODE / chown PATH UID GID (-1 keeps) / lchown PATH UID GID
  utime PATH now|nownow|nowomit|SECONDS   utimensat: NULL times, both
                            UTIME_NOW, UTIME_NOW + UTIME_OMIT, or both set
  rename2 OLD NEW noreplace|exchange|whiteout|bad   renameat2(2)
  getxattr2 PATH NAME SIZE  getxattr(2) with a SIZE-byte buffer: OK LEN
  listxattr2 PATH SIZE      listxattr(2) with a SIZE-byte buffer: OK LEN
  setxattr2 PATH NAME BYTES [create|replace]  a value of BYTES bytes
  lsetxattr PATH NAME VALUE setxattr without following a symlink
  access PATH r|w|x         faccessat(2) with AT_EACCESS

Argument words may hold <C*N> (C repeated N times), e.g. <x*256> or
<a/*2048>, for long names and paths.

  table TABLE ROOT_A ROOT_B run every case of TABLE in ROOT_A (payloadfs)
                            and ROOT_B (ext4), each case in a child
                            process as the case's user with its working
                            directory at the root; prints a summary line
                            and one line per mismatch; exit 1 on any
  table-doc TABLE           the markdown table of TABLE (docs/posix.md)
  as USER ROOT OP ARGS...   one op as a table user (root, alice, bob) with
                            its working directory at ROOT (paths relative
                            to it; ROOT is opened before the switch, so the
                            directories above it need not be searchable)
"""
import ctypes
import ctypes.util
import errno
import os
import re
import stat as st_
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
    elif op in MORE:
        return MORE[op](*a) or "OK"
    else:
        print("fsop: unknown op %s" % op, file=sys.stderr)
        sys.exit(2)
    return "OK"


# ---- more ops (posix.table) ----------------------------------------------

FLAGS = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR, "creat": os.O_CREAT,
         "excl": os.O_EXCL, "trunc": os.O_TRUNC, "append": os.O_APPEND,
         "dir": os.O_DIRECTORY, "nofollow": os.O_NOFOLLOW, "nonblock": os.O_NONBLOCK,
         "path": os.O_PATH}

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def flags_of(spec):
    f = 0
    for w in spec.split(","):
        f |= FLAGS[w]
    return f


def cstep(label, rc):
    """Raise Failed when a libc call returned -1."""
    if rc < 0:
        e = ctypes.get_errno()
        raise Failed(("%s:" % label if label else "") + errno.errorcode.get(e, str(e)))
    return rc


def op_open(path, flags, mode="644"):
    fd = step("", os.open, path, flags_of(flags), int(mode, 8))
    step("close", os.close, fd)


def with_fd(path, flags, label, fn):
    fd = step("", os.open, path, flags_of(flags), 0o644)
    try:
        r = step(label, fn, fd)
    finally:
        os.close(fd)
    return r


def op_openwrite(path, flags, data):
    with_fd(path, flags, "write", lambda fd: os.write(fd, data.encode()))


def op_openread(path, flags):
    with_fd(path, flags, "read", lambda fd: os.read(fd, 4096))


def op_ftruncate(path, flags, size):
    with_fd(path, flags, "ftruncate", lambda fd: os.ftruncate(fd, int(size)))


def op_writefstat(path, flags, data):
    def wf(fd):
        step("write", os.write, fd, data.encode())
        return "OK %o" % step("fstat", os.fstat, fd).st_mode
    return with_fd(path, flags, "", wf)


def op_copyrange(src, dst):
    fi = step("", os.open, src, os.O_RDONLY)
    try:
        fo = step("", os.open, dst, os.O_WRONLY)
        try:
            step("copy", os.copy_file_range, fi, fo, os.fstat(fi).st_size)
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def op_lseek(path, off):
    with_fd(path, "r", "lseek", lambda fd: os.lseek(fd, int(off), os.SEEK_SET))


def op_statm(path):
    s = step("", os.lstat, path)
    return "OK %o %d %d" % (s.st_mode, s.st_uid, s.st_gid)


def op_nlink(path):
    return "OK %d" % step("", os.lstat, path).st_nlink


FALLOC = {"keep": 0x01, "punch": 0x02, "collapse": 0x08, "zero": 0x10, "insert": 0x20,
          "unshare": 0x40, "bad": 0x4000}


def op_fallocate(path, off, length, mode="", flags="rw"):
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    m = 0
    for w in filter(None, mode.split(",")):
        m |= FALLOC[w]
    fd = step("", os.open, path, flags_of(flags))
    try:
        cstep("fallocate", libc.fallocate(fd, m, int(off), int(length)))
    finally:
        os.close(fd)


def op_size(path):
    return "OK %d" % step("", os.lstat, path).st_size


def op_sum(path):
    import hashlib
    h, n = hashlib.sha256(), 0
    fd = step("", os.open, path, os.O_RDONLY)
    try:
        while True:
            b = step("read", os.read, fd, 1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
    finally:
        os.close(fd)
    return "OK %d %s" % (n, h.hexdigest()[:12])


def op_mtime(path):
    return "OK %d" % (step("", os.lstat, path).st_mtime_ns // 10**9)


def op_mkdir(path, mode="755"):
    step("", os.mkdir, path, int(mode, 8))


def op_mknod(path, kind, mode="644"):
    t = {"fifo": st_.S_IFIFO, "chr": st_.S_IFCHR, "sock": st_.S_IFSOCK}[kind]
    step("", os.mknod, path, t | int(mode, 8), os.makedev(1, 3) if kind == "chr" else 0)


def op_readlink(path):
    return "OK " + step("", os.readlink, path)


def op_listdir(path):
    return "OK %d" % len(step("", os.listdir, path))


def op_chmod(path, mode):
    step("", os.chmod, path, int(mode, 8))


def op_chown(path, uid, gid):
    step("", os.chown, path, int(uid), int(gid))


def op_lchown(path, uid, gid):
    step("", os.lchown, path, int(uid), int(gid))


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
AT_FDCWD = -100


def op_utime(path, how):
    if how == "now":
        ts = None
    else:
        pair = {"nownow": ((0, UTIME_NOW), (0, UTIME_NOW)),
                "nowomit": ((0, UTIME_NOW), (0, UTIME_OMIT))}.get(how)
        if pair is None:
            pair = ((int(how), 0), (int(how), 0))
        ts = (Timespec * 2)(Timespec(*pair[0]), Timespec(*pair[1]))
    cstep("", libc.utimensat(AT_FDCWD, path.encode(), ts, 0))


RENAME = {"noreplace": 1, "exchange": 2, "whiteout": 4, "bad": 1 << 20, "both": 3}


def op_rename2(old, new, flags):
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                               ctypes.c_uint]
    cstep("", libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), RENAME[flags]))


def op_getxattr2(path, name, size):
    buf = ctypes.create_string_buffer(max(int(size), 1))
    libc.getxattr.restype = ctypes.c_ssize_t
    n = cstep("", libc.getxattr(path.encode(), name.encode(), buf, ctypes.c_size_t(int(size))))
    return "OK %d" % n


def op_listxattr2(path, size):
    buf = ctypes.create_string_buffer(max(int(size), 1))
    libc.listxattr.restype = ctypes.c_ssize_t
    n = cstep("", libc.listxattr(path.encode(), buf, ctypes.c_size_t(int(size))))
    return "OK %d" % n


def op_setxattr2(path, name, nbytes, how=""):
    flags = {"": 0, "create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}[how]
    step("", os.setxattr, path, name, b"v" * int(nbytes), flags)


def op_access(path, how):
    mode = {"r": os.R_OK, "w": os.W_OK, "x": os.X_OK}[how]
    if not os.access(path, mode, effective_ids=True):
        e = ctypes.get_errno() or errno.EACCES
        raise Failed(errno.errorcode.get(e, str(e)))


def op_lsetxattr(path, name, value):
    step("", lambda: os.setxattr(path, name, value.encode(), 0, follow_symlinks=False))


def op_listxattr(path):
    names = sorted(step("", os.listxattr, path))
    return " ".join(["OK"] + ([",".join(names)] if names else []))


MORE = {"open": op_open, "openwrite": op_openwrite, "openread": op_openread,
        "ftruncate": op_ftruncate, "lseek": op_lseek, "statm": op_statm, "nlink": op_nlink, "fallocate": op_fallocate, "mtime": op_mtime,
        "writefstat": op_writefstat, "copyrange": op_copyrange, "size": op_size, "sum": op_sum,
        "mkdir": op_mkdir, "mknod": op_mknod, "readlink": op_readlink, "listdir": op_listdir,
        "chmod": op_chmod, "chown": op_chown, "lchown": op_lchown, "utime": op_utime,
        "rename2": op_rename2, "getxattr2": op_getxattr2, "listxattr2": op_listxattr2,
        "setxattr2": op_setxattr2, "lsetxattr": op_lsetxattr, "access": op_access, "listxattr": op_listxattr}


# ---- the errno table ------------------------------------------------------

# Table users: uid, gid, supplementary groups. alice is in the shared group
# 64200, bob is not. Neither has an entry in /etc/passwd.
USERS = {"root": (0, 0, [0]), "alice": (64101, 64101, [64101, 64200]),
         "bob": (64102, 64102, [64102])}


def expand(word):
    return re.sub(r"<(.+?)\*(\d+)>", lambda m: m.group(1) * int(m.group(2)), word)


def parse_table(path):
    """Cases of a table file: lines `USER | OP ARGS | EXT4 | PFS | CASE`
    (PFS "=" when payloadfs must match ext4, else the deliberate result and
    a note); `## TITLE` starts a section; `#` lines are comments."""
    import shlex
    cases, section = [], ""
    for n, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = [x.strip().replace("\\|", "|") for x in re.split(r"(?<!\\)\|", line)]
        if len(f) != 5 or f[0] not in USERS:
            sys.exit("%s:%d: want USER | OP ARGS | EXT4 | PFS | CASE" % (path, n))
        words = shlex.split(f[1])
        cases.append({"line": n, "section": section, "user": f[0], "cmd": f[1],
                      "op": words[0], "args": [expand(w) for w in words[1:]],
                      "ext4": f[2], "pfs": f[2] if f[3] == "=" else f[3], "dev": f[3] != "=",
                      "case": f[4]})
    return cases


def run_as(user, rootfd, op, args):
    """Run OP in a child as USER with cwd ROOTFD; return its result."""
    uid, gid, groups = USERS[user]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = "BUG:child"
        try:
            os.close(r)
            os.setgroups(groups)
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            os.umask(0o022)
            os.fchdir(rootfd)
            out = result(op, args)
        except OSError as e:     # fchdir refused: the root itself is closed to USER
            out = "cwd:" + name(e)
        except BaseException as e:   # a bug in the table or in this file
            out = "BUG:%r" % e
        finally:
            os.write(w, str(out).encode(errors="replace"))
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def table(path, root_a, root_b):
    cases = parse_table(path)
    fa = os.open(root_a, os.O_RDONLY | os.O_DIRECTORY)
    fb = os.open(root_b, os.O_RDONLY | os.O_DIRECTORY)
    bad, dev = [], 0
    for c in cases:
        got_a = run_as(c["user"], fa, c["op"], c["args"])
        got_b = run_as(c["user"], fb, c["op"], c["args"])
        where = "line %d: %s: %s" % (c["line"], c["user"], c["cmd"][:100])
        if got_b != c["ext4"]:
            bad.append("%s: ext4 gave %s, the table says %s" % (where, got_b, c["ext4"]))
        if got_a != c["pfs"]:
            bad.append("%s: payloadfs gave %s, want %s%s" % (where, got_a, c["pfs"],
                                                            "" if c["dev"] else " (as ext4)"))
        dev += c["dev"]
    print("%d cases, %d deliberate deviations, %d mismatches" % (len(cases), dev, len(bad)))
    for b in bad:
        print(b)
    return 1 if bad else 0


def table_doc(path):
    """The table as markdown, one table per section."""
    section = None
    for c in parse_table(path):
        if c["section"] != section:
            section = c["section"]
            print("\n### %s\n" % section)
            print("| user | operation | case | ext4 | payloadfs |")
            print("| --- | --- | --- | --- | --- |")
        cmd, case = (c[k].replace("|", "\\|") for k in ("cmd", "case"))
        print("| %s | `%s` | %s | %s | %s |" % (c["user"], cmd, case, c["ext4"],
                                           "**%s**" % c["pfs"] if c["dev"] else "same"))


def result(op, a):
    try:
        return run(op, a)
    except Failed as f:
        return f.args[0]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "table":
        sys.exit(table(*sys.argv[2:5]))
    if sys.argv[1] == "as" and len(sys.argv) >= 5:
        fd = os.open(sys.argv[3], os.O_RDONLY | os.O_DIRECTORY)
        print(run_as(sys.argv[2], fd, sys.argv[4], [expand(w) for w in sys.argv[5:]]))
        return
    if sys.argv[1] == "table-doc" and len(sys.argv) == 3:
        table_doc(sys.argv[2])
        return
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
