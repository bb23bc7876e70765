#!/usr/bin/env python3
"""stress.py — concurrent readers and writers on a payloadfs mount, checked
against a model.

Usage: stress.py MOUNT SIDE [--seed N] [--seconds S] [--procs P] [--threads T]

MOUNT is a payloadfs mount (empty); SIDE is a scratch directory on another
file system (ext4) for the model, the locks and the logs. P processes of T
threads each run random operations for S seconds; then everything
quiesces and the tree is compared with the model. Prints the seed first;
exit 0 when every check held, 1 on a difference (printed with the seed),
2 on a usage error.

What runs at once (several threads and processes on the same and on
different objects):
  writers    whole rewrites (O_TRUNC, several at once on one object: each
             takes the object's lock only around its close), edit sessions
             (pwrite at random offsets, sparse extends, appends through
             O_APPEND, ftruncate, fsync mid-session), truncate(2),
             `@rows=` view writes, xattr format changes (lines <-> fixed:N),
             tmp + rename replaces
  namespace  rename (also over an existing object), link / unlink,
             create, mkdir / rmdir (and rmdir of a non-empty directory)
  readers    plain reads, slow (chunks with pauses while commits land),
             with mmap (MAP_SHARED, or MAP_PRIVATE where direct I/O refuses
             it), `@rows=` and `@part=` view reads

The model. Each object (by its st_ino) has a model file in SIDE/model,
changed only by the thread holding the object's lock (flock, so it holds
across processes), right after the commit it mirrors; the commit's hash
and its time window (before the committing call .. after it) go to that
thread's log. Writers whose result depends on the base (edits, views,
truncate, and O_TRUNC rewrites that write nothing: a clean session
commits nothing, see op_rewrite) hold the lock from before their open to
after their close, so their base is the model's current version. Namespace changes hold one
namespace lock and log the names they change. Readers take no lock:
    every plain read must return exactly one committed version of the
    object it opened (its hash), one that was current at some time within
    the reader's open (before open .. after open) — so a reader keeps its
    version however many commits land while it reads, up to the size
    fstat gave at its open; and the name must have named that object at
    some time within the open. Streams (DESIGN §9): a reader whose fstat
    shows more after its read followed appends: it must still hold every
    byte it read, and all it holds then must be one committed version,
    current at some time between its open and that read;
view readers hold the object's lock in shared mode only across their open
and compare with the model's slice at once. After the run every name,
size and byte in the mount must equal the model.
"""
import argparse
import errno
import fcntl
import hashlib
import json
import mmap
import os
import random
import shutil
import sys
import threading
import time
import traceback

DIRS = ["d0", "d1"]
BIN = ["d%d/b%d" % (i, j) for i in range(2) for j in range(3)]
CSV = ["d%d/c%d.csv" % (i, j) for i in range(2) for j in range(2)]
LINKS = ["d%d/l%d" % (i, j) for i in range(2) for j in range(2)]
SUBDIRS = ["d%d/s%d" % (i, j) for i in range(2) for j in range(2)]
HEADER = b"id,value,note\n"
NOW = time.monotonic_ns
VERIFY = bool(os.environ.get("STRESS_VERIFY"))


def H(b):
    return hashlib.blake2b(b, digest_size=12).hexdigest()


class Fail(Exception):
    pass


class Ctx:
    """Per-thread state: its random stream and its log."""

    def __init__(self, a, wid):
        self.a = a
        self.wid = wid
        self.rng = random.Random("%d/%s" % (a.seed, wid))
        self.log = open(os.path.join(a.side, "log", "w%s.jsonl" % wid), "w")
        self.ops = 0
        self.tmpn = 0

    def rec(self, **kw):
        self.log.write(json.dumps(kw) + "\n")

    def m(self, name):
        return os.path.join(self.a.mount, name)


# ---- locks (flock on files in SIDE/locks: across threads and processes) ----

class Lock:
    def __init__(self, a, key, shared=False):
        self.path = os.path.join(a.side, "locks", key)
        self.shared = shared

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)      # releases the lock


def ns_lock(a, shared=False):
    return Lock(a, "ns", shared)


def obj_lock(a, ino, shared=False):
    return Lock(a, "obj-%d" % ino, shared)


# ---- the model ----

def model_path(a, ino):
    return os.path.join(a.side, "model", str(ino))


def model_read(a, ino):
    with open(model_path(a, ino), "rb") as f:
        return f.read()


def model_write(a, ino, data):
    p = model_path(a, ino)
    with open(p + ".new", "wb") as f:
        f.write(data)
    os.rename(p + ".new", p)


def model_fmt(a, ino):
    try:
        with open(model_path(a, ino) + ".fmt") as f:
            return int(f.read() or 0)
    except FileNotFoundError:
        return 0            # lines


def model_set_fmt(a, ino, n):
    with open(model_path(a, ino) + ".fmt", "w") as f:
        f.write(str(n))


def ns_state(a):
    with open(os.path.join(a.side, "ns.json")) as f:
        return json.load(f)


def ns_save(a, st):
    p = os.path.join(a.side, "ns.json")
    with open(p + ".new", "w") as f:
        json.dump(st, f)
    os.rename(p + ".new", p)


# ---- data ----

def bin_data(rng, n):
    style = rng.randrange(3)
    if style == 0:
        return rng.randbytes(n)
    line = rng.randrange(8, 300)
    base = bytes(rng.randrange(32, 127) for _ in range(min(n, 97) or 1))
    out = (base * (n // len(base) + 1))[:n]
    return bytes(b"\n"[0] if (i % line == line - 1) else c for i, c in enumerate(out)) \
        if style == 1 else out


def csv_rows(rng, n):
    tag = rng.randrange(1 << 30)
    return b"".join(b"%d,%d,%s\n" % (tag + i, rng.randrange(10 ** 6), b"x" * rng.randrange(40))
                    for i in range(n))


def split_rows(data):
    """CSV content -> (header bytes, list of row bytes); all rows end in \\n."""
    i = data.find(b"\n") + 1 if data else 0
    hdr, body = data[:i], data[i:]
    rows = body.splitlines(keepends=True)
    return hdr, rows


def view_rows(rows, a, b):
    lo, hi, _ = slice(a, b).indices(len(rows))
    return lo, max(lo, hi)


# ---- helpers ----

def committed(ctx, ino, t0, data, what):
    """Log that object INO's commit (started at T0) made DATA its version,
    and mirror it in the model; WHAT says which operation (for the log).
    Caller holds the object's lock. With STRESS_VERIFY=1 a fresh read
    through .by-id (any name may move meanwhile; no commit of INO can)
    must give DATA at once."""
    t1 = NOW()
    model_write(ctx.a, ino, data)
    ctx.rec(k="ver", ino=ino, t0=t0, t1=t1, h=H(data), n=len(data), op=what)
    if VERIFY:
        try:
            with open(os.path.join(ctx.a.mount, ".by-id", str(ino)), "rb") as f:
                cur = f.read()
        except FileNotFoundError:
            return          # unlinked and forgotten meanwhile
        if cur != data:
            at = next((i for i in range(min(len(cur), len(data))) if cur[i] != data[i]),
                      min(len(cur), len(data)))
            raise Fail("%s (object %d): after the commit a fresh read gives %d bytes, the model "
                       "%d (first difference at %d)" % (what, ino, len(cur), len(data), at))


def resolve(ctx, name):
    """The object NAME names now, or None."""
    try:
        return os.stat(ctx.m(name)).st_ino
    except FileNotFoundError:
        return None


class Gone(Exception):
    """The name moved to another object meanwhile: skip this op."""


def locked_open(ctx, name, flags, view=""):
    """Take NAME's object lock, then open NAME+VIEW with it verified under
    the namespace lock. Returns (lock, fd, ino); raises Gone."""
    ino = resolve(ctx, name)
    if ino is None:
        raise Gone()
    lk = obj_lock(ctx.a, ino).__enter__()
    try:
        with ns_lock(ctx.a, shared=True):
            if resolve(ctx, name) != ino:
                raise Gone()
            fd = os.open(ctx.m(name) + view, flags)
        return lk, fd, ino
    except BaseException:
        lk.__exit__()
        raise


def close_checked(fd, what):
    try:
        os.close(fd)
    except OSError as e:
        raise Fail("%s: close failed: %s" % (what, errno.errorcode.get(e.errno, e.errno)))


# ---- writers ----

def op_rewrite(ctx, csv):
    """O_TRUNC rewrite; the lock is taken only around the close.

    An empty rewrite (O_TRUNC, no write) holds the lock from before its
    open instead: a session whose content equals its base is clean
    (index/stage.c invariant (3)), so O_TRUNC of an object that was empty
    at the open commits nothing at close, and a commit that lands between
    that open and close stays current — as on a local file system, where
    O_TRUNC takes effect at the open. Without the lock the model cannot
    know whether the close commits."""
    name = ctx.rng.choice(CSV if csv else BIN)
    data = HEADER + csv_rows(ctx.rng, ctx.rng.randrange(0, 600)) if csv else \
        bin_data(ctx.rng, ctx.rng.choice([0, 100, 3000, 5000, 70000, 200000]))
    if not data:
        return op_rewrite_empty(ctx, name)
    try:
        fd = os.open(ctx.m(name), os.O_WRONLY | os.O_TRUNC)
    except FileNotFoundError:
        return
    ino = os.fstat(fd).st_ino
    for i in range(0, len(data), 65536):
        os.write(fd, data[i:i + 65536])
    with obj_lock(ctx.a, ino):
        fmt = model_fmt(ctx.a, ino)
        t0 = NOW()
        try:
            os.close(fd)
        except OSError as e:
            if e.errno == errno.EINVAL and fmt and len(data) % fmt:
                return      # fixed:N and not a multiple: refused, as designed
            raise Fail("rewrite %s: close: %s" % (name, e))
        if fmt and len(data) % fmt:
            raise Fail("rewrite %s: fixed:%d, %d bytes: close did not fail" % (name, fmt, len(data)))
        committed(ctx, ino, t0, data, "rewrite %s, %d bytes" % (name, len(data)))


def op_rewrite_empty(ctx, name):
    """O_TRUNC and close under the object's lock (see op_rewrite): the
    object is empty after it, whether or not the close committed."""
    try:
        lk, fd, ino = locked_open(ctx, name, os.O_WRONLY | os.O_TRUNC)
    except (Gone, FileNotFoundError):
        return
    try:
        base = model_read(ctx.a, ino)
        t0 = NOW()
        try:
            os.close(fd)
        finally:
            fd = -1
        if base:
            committed(ctx, ino, t0, b"", "rewrite %s to 0 bytes" % name)
    except OSError as e:
        raise Fail("rewrite %s to 0 bytes: close: %s" % (name, e))
    finally:
        if fd >= 0:
            os.close(fd)
        lk.__exit__()


def op_edit(ctx):
    """An edit session under the object's lock: pwrite (sparse too),
    appends, ftruncate, an fsync midway."""
    name = ctx.rng.choice(BIN)
    app = ctx.rng.random() < 0.25
    try:
        lk, fd, ino = locked_open(ctx, name, os.O_RDWR | (os.O_APPEND if app else 0))
    except (Gone, FileNotFoundError):
        return
    try:
        data = bytearray(model_read(ctx.a, ino))
        base = bytes(data)
        fmt = model_fmt(ctx.a, ino)
        done = ["open %s%s, base %d bytes" % (name, " O_APPEND" if app else "", len(data))]
        for _ in range(ctx.rng.randrange(1, 6)):
            c = ctx.rng.randrange(10)
            done.append("size %d, op %d" % (len(data), c))
            if c < 4:
                off = ctx.rng.randrange(0, 300000)
                b = bin_data(ctx.rng, ctx.rng.randrange(1, 20000))
                if app:
                    off = len(data)
                os.pwrite(fd, b, off)
                if off > len(data):
                    data.extend(bytes(off - len(data)))
                data[off:off + len(b)] = b
                done[-1] += " pwrite %d+%d" % (off, len(b))
            elif c < 6:
                b = bin_data(ctx.rng, ctx.rng.randrange(1, 5000))
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, b)
                data.extend(b)
            elif c < 8:
                n = ctx.rng.randrange(0, 250000)
                done[-1] += " ftruncate %d" % n
                os.ftruncate(fd, n)
                if n < len(data):
                    del data[n:]
                else:
                    data.extend(bytes(n - len(data)))
            elif c == 8:
                got = os.pread(fd, 1 << 20, 0)
                while len(got) < len(data):
                    more = os.pread(fd, 1 << 20, len(got))
                    if not more:
                        break
                    got += more
                if got != bytes(data):
                    at = next((i for i in range(min(len(got), len(data))) if got[i] != data[i]),
                              min(len(got), len(data)))
                    with open(ctx.m(name), "rb") as f:
                        cur = f.read()
                    raise Fail("edit %s: the writer reads %d bytes, not its staged %d (first "
                               "difference at %d; session: %s; a fresh read gives %s %d bytes, "
                               "the model's base %s)" % (name, len(got), len(data), at,
                                                         "; ".join(done), H(cur), len(cur), H(base)))
            else:
                t0 = NOW()
                try:
                    os.fsync(fd)
                except OSError as e:
                    if e.errno == errno.EINVAL and fmt and len(data) % fmt:
                        continue
                    raise Fail("edit %s: fsync: %s" % (name, e))
                base = bytes(data)
                committed(ctx, ino, t0, base, "edit %s: fsync (%s)" % (name, "; ".join(done)))
        t0 = NOW()
        try:
            os.close(fd)
            fd = -1
        except OSError as e:
            fd = -1
            if e.errno == errno.EINVAL and fmt and len(data) % fmt:
                return      # refused: the model keeps the last committed version
            raise Fail("edit %s: close: %s" % (name, e))
        if fmt and len(data) % fmt:
            raise Fail("edit %s: fixed:%d and %d bytes, but close succeeded" % (name, fmt, len(data)))
        if bytes(data) != base:
            committed(ctx, ino, t0, bytes(data), "edit %s: close (%s)" % (name, "; ".join(done)))
    finally:
        if fd >= 0:
            os.close(fd)
        lk.__exit__()


def op_truncate(ctx):
    name = ctx.rng.choice(BIN)
    ino = resolve(ctx, name)
    if ino is None:
        return
    with obj_lock(ctx.a, ino):
        with ns_lock(ctx.a, shared=True):
            if resolve(ctx, name) != ino:
                return
            data = model_read(ctx.a, ino)
            fmt = model_fmt(ctx.a, ino)
            n = ctx.rng.randrange(0, 250000)
            t0 = NOW()
            try:
                os.truncate(ctx.m(name), n)
            except OSError as e:
                if e.errno == errno.EINVAL and fmt and n % fmt:
                    return
                raise Fail("truncate %s %d: %s" % (name, n, e))
        if fmt and n % fmt:
            raise Fail("truncate %s to %d: fixed:%d, but it succeeded" % (name, n, fmt))
        committed(ctx, ino, t0, data[:n] + bytes(max(0, n - len(data))),
                  "truncate %s %d" % (name, n))


def op_format(ctx):
    """Toggle user.payload.format between lines and fixed:N (a re-cut: a
    new version of the same bytes); fixed:N that does not divide the size
    is EINVAL."""
    name = ctx.rng.choice(BIN)
    ino = resolve(ctx, name)
    if ino is None:
        return
    with obj_lock(ctx.a, ino):
        with ns_lock(ctx.a, shared=True):
            if resolve(ctx, name) != ino:
                return
            data = model_read(ctx.a, ino)
            fmt = model_fmt(ctx.a, ino)
            new = 0 if fmt else ctx.rng.choice([1, 2, 4, 16])
            val = b"lines" if not new else b"fixed:%d" % new
            t0 = NOW()
            try:
                os.setxattr(ctx.m(name), "user.payload.format", val)
            except OSError as e:
                if e.errno == errno.EINVAL and new and len(data) % new:
                    return
                raise Fail("setxattr format %s on %s: %s" % (val, name, e))
        if new and len(data) % new:
            raise Fail("format fixed:%d on %d bytes accepted" % (new, len(data)))
        model_set_fmt(ctx.a, ino, new)
        committed(ctx, ino, t0, data, "format %s %s" % (name, val.decode()))


def op_view_write(ctx):
    """Replace rows A:B of a CSV object through its @rows= view."""
    name = ctx.rng.choice(CSV)
    ino = resolve(ctx, name)
    if ino is None:
        return
    data = model_read(ctx.a, ino) if os.path.exists(model_path(ctx.a, ino)) else b""
    _, rows = split_rows(data)
    n = len(rows)
    a = ctx.rng.randrange(-n - 2, n + 3) if ctx.rng.random() < 0.8 else None
    b = ctx.rng.randrange(-n - 2, n + 3) if ctx.rng.random() < 0.8 else None
    view = "@rows=%s:%s" % ("" if a is None else a, "" if b is None else b)
    new = csv_rows(ctx.rng, ctx.rng.randrange(0, 40))
    try:
        lk, fd, ino = locked_open(ctx, name, os.O_WRONLY | os.O_TRUNC, view)
    except (Gone, FileNotFoundError):
        return
    try:
        # NAME may name another object by now (A and B were drawn from the
        # old one's rows: any bounds are valid). Never close this
        # descriptor unrecorded: closing an O_TRUNC view with nothing
        # written commits (it deletes the rows; docs/design.md "Every
        # flush commits").
        data = model_read(ctx.a, ino)
        hdr, rows = split_rows(data)
        lo, hi = view_rows(rows, a, b)
        os.write(fd, HEADER + new)
        t0 = NOW()
        try:
            os.close(fd)
        finally:
            fd = -1
        committed(ctx, ino, t0, HEADER + b"".join(rows[:lo]) + new + b"".join(rows[hi:]),
                  "view write %s%s: rows [%d:%d) of %d -> %d rows" % (name, view, lo, hi, len(rows),
                                                                  new.count(b"\n")))
    except OSError as e:
        raise Fail("view write %s%s: %s" % (name, view, e))
    finally:
        if fd >= 0:
            os.close(fd)
        lk.__exit__()


def op_replace(ctx, name=None):
    """Write a temporary object, then rename it over NAME (an atomic
    replace; also how objects are created, so that nobody finds a new
    object before its model exists)."""
    csv = name in CSV if name else ctx.rng.random() < 0.4
    name = name or ctx.rng.choice(CSV if csv else BIN)
    ctx.tmpn += 1
    tmp = "%s/.tmp-%s-%d" % (os.path.dirname(name), ctx.wid, ctx.tmpn)
    if csv:
        tmp += ".csv"
    data = HEADER + csv_rows(ctx.rng, ctx.rng.randrange(0, 300)) if csv else \
        bin_data(ctx.rng, ctx.rng.choice([10, 4000, 50000]))
    fd = os.open(ctx.m(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    ino = os.fstat(fd).st_ino
    with obj_lock(ctx.a, ino):
        t0c = NOW()
        with ns_lock(ctx.a):
            st = ns_state(ctx.a)
            st["names"][tmp] = ino
            ns_save(ctx.a, st)
            ctx.rec(k="ns", t0=t0c, t1=NOW(), set={tmp: ino})
        model_write(ctx.a, ino, b"")
        ctx.rec(k="ver", ino=ino, t0=t0c, t1=NOW(), h=H(b""), n=0)
        os.write(fd, data)
        t0 = NOW()
        close_checked(fd, "replace " + tmp)
        committed(ctx, ino, t0, data, "replace %s, %d bytes" % (tmp, len(data)))
    with ns_lock(ctx.a):
        st = ns_state(ctx.a)
        t0 = NOW()
        os.rename(ctx.m(tmp), ctx.m(name))
        st["names"].pop(tmp)
        st["names"][name] = ino
        ns_save(ctx.a, st)
        ctx.rec(k="ns", t0=t0, t1=NOW(), set={tmp: None, name: ino})


# ---- namespace ----

def op_namespace(ctx):
    c = ctx.rng.randrange(6)
    create = None
    try:
        ns_op(ctx, c)
    except NeedCreate as e:
        create = e.args[0]
    if create:
        op_replace(ctx, create)       # after the namespace lock (lock order)


class NeedCreate(Exception):
    pass


def ns_op(ctx, c):
    with ns_lock(ctx.a):
        st = ns_state(ctx.a)
        names = st["names"]
        t0 = NOW()
        if c == 0:                                  # rename, maybe over an object
            cls = BIN if ctx.rng.random() < 0.6 else CSV
            src, dst = ctx.rng.choice(cls), ctx.rng.choice(cls)
            if src == dst or src not in names:
                return
            os.rename(ctx.m(src), ctx.m(dst))
            ino = names.pop(src)
            names[dst] = ino
            ch = {src: None, dst: ino}
        elif c == 1:                                # link / unlink a hard link
            ln = ctx.rng.choice(LINKS)
            if ln in names:
                os.unlink(ctx.m(ln))
                names.pop(ln)
                ch = {ln: None}
            else:
                src = ctx.rng.choice(BIN)
                if src not in names:
                    return
                os.link(ctx.m(src), ctx.m(ln))
                names[ln] = names[src]
                ch = {ln: names[src]}
        elif c == 2:                                # unlink or create an object
            cls = BIN if ctx.rng.random() < 0.6 else CSV
            name = ctx.rng.choice(cls)
            if name not in names:
                raise NeedCreate(name)
            else:
                os.unlink(ctx.m(name))
                names.pop(name)
                ch = {name: None}
        elif c == 3:                                # mkdir / rmdir
            d = ctx.rng.choice(SUBDIRS)
            if d in st["dirs"]:
                os.rmdir(ctx.m(d))
                st["dirs"].remove(d)
            else:
                os.mkdir(ctx.m(d))
                st["dirs"].append(d)
            ch = {}
        elif c == 4:                                # rmdir of a non-empty dir
            d = ctx.rng.choice(DIRS)
            if not any(x.startswith(d + "/") for x in list(names) + st["dirs"]):
                return      # renames and unlinks emptied it: rmdir would succeed
            try:
                os.rmdir(ctx.m(d))
                raise Fail("rmdir of a non-empty directory succeeded")
            except OSError as e:
                if e.errno != errno.ENOTEMPTY:
                    raise Fail("rmdir of a non-empty directory: %s, not ENOTEMPTY" % e)
            return
        else:                                       # rename over a link of the same object
            src = ctx.rng.choice(BIN)
            lns = [ln for ln in LINKS if names.get(ln) == names.get(src) and src in names]
            if not lns:
                return
            os.rename(ctx.m(lns[0]), ctx.m(src))    # same inode: a no-op (POSIX)
            ch = {}
        ns_save(ctx.a, st)
        if ch:
            ctx.rec(k="ns", t0=t0, t1=NOW(), set=ch)


# ---- readers ----

def read_slow(ctx, fd, size, upto=None):
    """Read FD to its end (or to UPTO bytes) in random chunks, pausing now
    and then (commits land meanwhile); sometimes through a mapping of SIZE
    bytes. Returns the bytes."""
    if size and ctx.rng.random() < 0.3:
        flags = ctx.rng.choice([mmap.MAP_SHARED, mmap.MAP_PRIVATE])
        try:
            m = mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ)
        except OSError as e:
            if e.errno != errno.ENODEV or flags != mmap.MAP_SHARED:
                raise Fail("mmap of %d bytes: %s" % (size, e))
            m = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        out = []
        at = 0
        while at < size:
            n = ctx.rng.randrange(1, 70000)
            out.append(m[at:at + n])
            at += n
            if ctx.rng.random() < 0.2:
                time.sleep(0.001)
        m.close()
        return b"".join(out)
    # up to the size at open: a reader that follows an append (streams)
    # reads on past it, and its first SIZE bytes stay its open's version
    out, got = [], 0
    while upto is None or got < upto:
        n = ctx.rng.choice([1000, 4096, 65536, 1 << 20])
        b = os.read(fd, n if upto is None else min(upto - got, n))
        if not b:
            break
        out.append(b)
        got += len(b)
        if ctx.rng.random() < 0.1:
            time.sleep(0.001)
    return b"".join(out)


def op_read(ctx):
    name = ctx.rng.choice(BIN + CSV + LINKS)
    t0 = NOW()
    try:
        fd = os.open(ctx.m(name), os.O_RDONLY)
    except FileNotFoundError:
        return
    t1 = NOW()
    try:
        s = os.fstat(fd)
        d = read_slow(ctx, fd, s.st_size, s.st_size)
        if len(d) != s.st_size:
            raise Fail("read %s (object %d, thread %d): %d bytes, fstat at open said %d"
                       % (name, s.st_ino, threading.get_native_id(), len(d), s.st_size))
        s2, end = os.fstat(fd).st_size, os.lseek(fd, 0, os.SEEK_END)
        d2 = None
        if s2 >= len(d) and end >= len(d) and max(s2, end) > len(d):
            # streams: the reader followed appends (more may land between
            # the calls, and for a moment after a move fstat and lseek may
            # disagree: fs/ops.c (6d)); what it reads now keeps every byte
            # it read, and is one committed version, current at some time
            # between the open and now
            d2 = os.pread(fd, 1 << 30, 0)
            t2 = NOW()
            if len(d2) < max(s2, end) or d2[:len(d)] != d:
                raise Fail("read %s (object %d, thread %d): followed from %d to %d bytes, but "
                           "%s" % (name, s.st_ino, threading.get_native_id(), len(d), max(s2, end),
                                   "read %d" % len(d2) if len(d2) < max(s2, end)
                                   else "changed what it had read"))
        elif s2 != len(d) or end != len(d):
            raise Fail("read %s (object %d, thread %d): after reading %d bytes fstat says %d, "
                       "lseek(SEEK_END) %d" % (name, s.st_ino, threading.get_native_id(), len(d),
                                               s2, end))
    finally:
        os.close(fd)
    ctx.rec(k="read", name=name, t0=t0, t1=t1, ino=s.st_ino, h=H(d), n=len(d))
    if d2 is not None:
        ctx.rec(k="read", name=name, t0=t0, t1=t2, ino=s.st_ino, h=H(d2), n=len(d2), follow=1)


def op_view_read(ctx):
    name = ctx.rng.choice(CSV)
    ino = resolve(ctx, name)
    if ino is None:
        return
    part = ctx.rng.random() < 0.4
    with obj_lock(ctx.a, ino, shared=True):
        with ns_lock(ctx.a, shared=True):
            if resolve(ctx, name) != ino:
                return
            data = model_read(ctx.a, ino)
            hdr, rows = split_rows(data)
            n = len(rows)
            if part:
                k = ctx.rng.randrange(1, 9)
                i = ctx.rng.randrange(k)
                view = "@part=%d/%d" % (i, k)
                lo, hi = i * n // k, (i + 1) * n // k
            else:
                a = ctx.rng.randrange(-n - 2, n + 3)
                b = ctx.rng.randrange(-n - 2, n + 3)
                view = "@rows=%d:%d" % (a, b)
                lo, hi = view_rows(rows, a, b)
            fd = os.open(ctx.m(name) + view, os.O_RDONLY)
    try:
        want = hdr + b"".join(rows[lo:hi])
        got = read_slow(ctx, fd, 0)
    finally:
        os.close(fd)
    if got != want:
        raise Fail("view %s%s: %d bytes, the model's slice [%d:%d) of %d rows is %d bytes"
                   % (name, view, len(got), lo, hi, n, len(want)))


# ---- workers ----

OPS = [(op_read, 30), (op_view_read, 8), (lambda c: op_rewrite(c, False), 10),
       (lambda c: op_rewrite(c, True), 4), (op_edit, 12), (op_truncate, 3), (op_format, 2),
       (op_view_write, 6), (op_replace, 3), (op_namespace, 6)]
if os.environ.get("STRESS_NO_FORMAT"):
    OPS = [o for o in OPS if o[0] is not op_format]


def worker(a, wid, deadline, errors):
    ctx = Ctx(a, wid)
    fns = [f for f, w in OPS for _ in range(w)]
    try:
        while NOW() < deadline:
            ctx.rng.choice(fns)(ctx)
            ctx.ops += 1
    except Fail as e:
        errors.append("worker %s, op %d: %s" % (wid, ctx.ops, e))
        ctx.rec(k="fail", msg=str(e))
    except Exception:
        errors.append("worker %s (tid %d), op %d: %s" % (wid, threading.get_native_id(), ctx.ops, traceback.format_exc()))
        ctx.rec(k="fail", msg=traceback.format_exc())
    finally:
        ctx.rec(k="ops", n=ctx.ops)
        ctx.log.close()


def process_main(a, pidx, deadline):
    errors = []
    ts = [threading.Thread(target=worker, args=(a, "%d.%d" % (pidx, t), deadline, errors))
          for t in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for e in errors:
        print("stress: FAIL %s" % e, file=sys.stderr)
    return 1 if errors else 0


# ---- set-up and checks ----

def setup(a):
    for d in ("model", "locks", "log"):
        os.makedirs(os.path.join(a.side, d), exist_ok=True)
    rng = random.Random(a.seed)
    names = {}
    vers = []
    for d in DIRS:
        os.mkdir(os.path.join(a.mount, d))
    for name in BIN + CSV:
        data = HEADER + csv_rows(rng, rng.randrange(50, 400)) if name in CSV else \
            bin_data(rng, rng.randrange(0, 100000))
        p = os.path.join(a.mount, name)
        with open(p, "wb") as f:
            f.write(data)
        ino = os.stat(p).st_ino
        names[name] = ino
        with open(model_path(a, ino), "wb") as f:
            f.write(data)
        vers.append({"k": "ver", "ino": ino, "t0": 0, "t1": 0, "h": H(data), "n": len(data)})
    ns_save(a, {"names": names, "dirs": []})
    with open(os.path.join(a.side, "log", "setup.jsonl"), "w") as f:
        for v in vers:
            f.write(json.dumps(v) + "\n")
        f.write(json.dumps({"k": "ns", "t0": 0, "t1": 0, "set": names}) + "\n")


def load_logs(a):
    recs = []
    for fn in sorted(os.listdir(os.path.join(a.side, "log"))):
        with open(os.path.join(a.side, "log", fn)) as f:
            recs.extend(json.loads(line) for line in f if line.strip())
    return recs


def visible_windows(events):
    """EVENTS: [(t0, t1, value)] in commit order (serialized by a lock).
    Value i may be seen from its t0 until the t1 of the next one."""
    events.sort(key=lambda e: (e[0], e[1]))
    out = []
    for i, (t0, t1, v) in enumerate(events):
        end = events[i + 1][1] if i + 1 < len(events) else float("inf")
        out.append((t0, end, v))
    return out


def check(a):
    recs = load_logs(a)
    bad = []
    vers, ns = {}, {}
    nops = sum(r["n"] for r in recs if r["k"] == "ops")
    for r in recs:
        if r["k"] == "ver":
            vers.setdefault(r["ino"], []).append((r["t0"], r["t1"], r["h"]))
        elif r["k"] == "ns":
            for name, ino in r["set"].items():
                ns.setdefault(name, []).append((r["t0"], r["t1"], ino))
    vw = {ino: visible_windows(ev) for ino, ev in vers.items()}
    nw = {name: visible_windows(ev) for name, ev in ns.items()}
    reads = [r for r in recs if r["k"] == "read"]
    check.follows = sum(1 for r in reads if r.get("follow"))
    for r in reads:
        ok = any(h == r["h"] and t0 <= r["t1"] and r["t0"] <= end for t0, end, h in vw.get(r["ino"], []))
        if not ok:
            known = [h for _, _, h in vw.get(r["ino"], [])]
            bad.append("read of %s (object %d, %d bytes): %s" % (
                r["name"], r["ino"], r["n"],
                "a committed version, but not one current during its open" if r["h"] in known
                else "bytes of no committed version (a mix?)"))
        okn = any(ino == r["ino"] and t0 <= r["t1"] and r["t0"] <= end for t0, end, ino in nw.get(r["name"], []))
        if not okn:
            bad.append("read of %s: object %d, which the name did not name during the open"
                       % (r["name"], r["ino"]))
    # the tree after quiescence equals the model
    st = ns_state(a)
    want_files = {n: i for n, i in st["names"].items()}
    got_files, got_dirs = {}, []
    for root, dirs, files in os.walk(a.mount):
        rel = os.path.relpath(root, a.mount)
        for d in dirs:
            if rel != ".":
                got_dirs.append(os.path.join(rel, d))
        for f in files:
            p = os.path.join(root, f)
            got_files[os.path.normpath(os.path.join(rel, f))] = os.stat(p).st_ino
    if sorted(got_files) != sorted(want_files):
        bad.append("names differ: mount %s, model %s" % (sorted(got_files), sorted(want_files)))
    if sorted(got_dirs) != sorted(st["dirs"]):
        bad.append("directories differ: mount %s, model %s" % (sorted(got_dirs), sorted(st["dirs"])))
    for name, ino in want_files.items():
        if got_files.get(name) not in (None, ino):
            bad.append("%s is object %d, the model says %d" % (name, got_files[name], ino))
            continue
        p = os.path.join(a.mount, name)
        try:
            with open(p, "rb") as f:
                got = f.read()
        except OSError as e:
            bad.append("%s: %s" % (name, e))
            continue
        want = model_read(a, ino)
        if got != want or os.stat(p).st_size != len(want):
            bad.append("%s (object %d): %d bytes (stat %d), the model has %d%s" % (
                name, ino, len(got), os.stat(p).st_size, len(want),
                "" if len(got) != len(want) else ", same length, other bytes"))
    return bad, nops, len(reads), sum(len(v) for v in vers.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mount")
    ap.add_argument("side")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--check-only", action="store_true",
                    help="only compare the tree (after a remount) with the model")
    a = ap.parse_args()
    if a.check_only:
        a.seed = 0
        bad, _, _, _ = check(a)
        for b in bad:
            print("stress: MISMATCH after remount: %s" % b, file=sys.stderr)
        print("stress: after remount: %s" % ("no difference" if not bad else "%d differences" % len(bad)))
        return 1 if bad else 0
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "little")
    print("stress: seed %d, %g s, %d processes x %d threads" % (a.seed, a.seconds, a.procs, a.threads),
          flush=True)
    if os.listdir(a.mount):
        print("stress: %s is not empty" % a.mount, file=sys.stderr)
        return 2
    shutil.rmtree(a.side, ignore_errors=True)
    setup(a)
    start = time.monotonic()
    deadline = NOW() + int(a.seconds * 1e9)
    kids = []
    for p in range(a.procs):
        pid = os.fork()
        if pid == 0:
            rc = 1
            try:
                rc = process_main(a, p, deadline)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        kids.append(pid)
    rc = 0
    for pid in kids:
        _, status = os.waitpid(pid, 0)
        if status:
            rc = 1
    secs = time.monotonic() - start
    bad, nops, nreads, nvers = check(a)
    for b in bad[:30]:
        print("stress: MISMATCH %s" % b, file=sys.stderr)
    if rc or bad:
        print("stress: FAILED (seed %d): %d differences%s; replay: stress.py MOUNT SIDE --seed %d "
              "--seconds %g --procs %d --threads %d (timing makes a replay similar, not identical)"
              % (a.seed, len(bad), ", a worker failed" if rc else "", a.seed, a.seconds, a.procs,
                 a.threads), file=sys.stderr)
        return 1
    print("stress: %d ops in %.1f s (%.0f ops/s): %d reads checked against %d committed versions "
          "(%d of them by readers that followed appends), tree equals the model (seed %d)"
          % (nops, secs, nops / secs, nreads, nvers, getattr(check, "follows", 0), a.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
