"""workload — the random operations of a crash round, with the oracle
journal.

Each workload runs in its own process (forked by crash.py; several run at
once, each in its own folder MNT/wK of the mount). It reads its tree at
start, then does random operations until one fails (the daemon was
killed: ENOTCONN / ECONNABORTED) or MAX_OPS are done.

Every operation is a list of *steps*: the tree changes it makes, in order,
each acknowledged by one system call returning success (a commit by close
or fsync, a rename by rename). A create's open acknowledges nothing: the new
name is pending until the first close (index/ns.c P6), so a crash may or may
not leave it, empty; steps may therefore be acknowledged with gaps. Before the first system
call of an operation the journal gets

  {"k": "op", "n": N, "op": KIND, "old": {path: value}, "steps": [{path: value|null}, ...]}

after each acknowledging call {"k": "ack", "n": N, "s": STEP, "t": T}, and at
the end {"k": "end", "n": N, "rc": 0 or "ENOTCONN", "t": T}. Each line is
written and fdatasync'ed (on the local disk, not the mount) before the
workload goes on. A value is [sha256 of the bytes, user.payload.format] for
a file, "d" for a directory, null for nothing. oracle.py turns the journal
into the trees a recovered store may show.

Objects (all names are fixed, so renames replace and creates reuse):
  a*.csv, d1/a*.csv  text rows (header 1), any bytes: truncates cut rows,
                     appends may end without a newline
  b*.dat, d2/b*.dat  32-byte records ending in '\\n', so they read the same
                     as lines or as fixed:32; format changes re-cut them
  d3/s*.txt          small files (inline, < 4 KiB), some hard-linked to each
                     other: a note set through one name shows through all,
                     a rename onto another link of the same file does nothing
  d4/x*              empty directories (mkdir, rmdir, rename)
  d5/m*.csv          storage=memory objects (d5 has the setting; created
                     by the harness): emptied by every crash
Sizes: inline (< 4 KiB), mid (several 16 KiB fragments), big (dozens).

A *held* reader (op "hold") keeps a descriptor open over later
operations; closing it ("unhold") first reads it up to the size it had
at open, which must give the bytes it opened (snapshot isolation; a
reader that followed an append, DESIGN §9, keeps those bytes too), so
renames, unlinks and rewrites of held objects leave pinned fragments and
orphans behind for the crash and the sweep. A mismatch is journaled as
{"k": "bad"}.
"""

import errno
import json
import os
import time

from crashlib import DIR, EMPTY_HASH, hash_bytes, read_tree

REC = 32
MEM_DIR = "d5"                  # storage=memory, made by the harness
BASE_DIRS = ["d1", "d2", "d3", "d4", MEM_DIR]
CSV = ["a0.csv", "a1.csv", "a2.csv", "d1/a3.csv", "d1/a4.csv", "d1/a5.csv"]
DAT = ["b0.dat", "d2/b1.dat", "d2/b2.dat", "d2/b3.dat"]
SMALL = ["d3/s%d.txt" % i for i in range(10)]
MEM = [MEM_DIR + "/m%d.csv" % i for i in range(3)]
XDIRS = ["d4/x%d" % i for i in range(4)]
POOLS = (CSV, DAT, SMALL, MEM)
MAX_HELD = 3


def is_memory(path):
    """Objects under MEM_DIR are storage=memory: a crash empties them."""
    return path.startswith(MEM_DIR + "/")


class Stop(Exception):
    """An operation failed: the workload ends (the journal has the end)."""


class Journal:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def put(self, rec):
        b = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        while b:
            b = b[os.write(self.fd, b):]
        os.fdatasync(self.fd)

    def close(self):
        os.close(self.fd)


class Op:
    """One journaled operation: `with w.op(kind, steps, data) as o:` then
    o.call(fn, ..., ack=STEP) for each system call. DATA: the bytes of each
    file the operation leaves behind, for the model."""

    def __init__(self, w, kind, steps, data):
        self.w, self.kind, self.steps, self.data = w, kind, steps, data
        self.fds = []
        self.where = "start"     # the system call under way, for the journal

    def __enter__(self):
        w = self.w
        w.n += 1
        self.n = w.n
        paths = sorted({p for s in self.steps for p in s})
        w.j.put({"k": "op", "n": self.n, "op": self.kind,
                 "old": {p: w.tree.get(p) for p in paths}, "steps": self.steps,
                 "t": time.monotonic()})
        return self

    def call(self, fn, *args, ack=None):
        self.where = fn.__name__
        r = fn(*args)
        if ack is not None:
            self.w.j.put({"k": "ack", "n": self.n, "s": ack, "t": time.monotonic()})
        return r

    def open(self, path, flags, ack=None):
        fd = self.call(os.open, path, flags | os.O_CLOEXEC, 0o644, ack=ack)
        self.fds.append(fd)
        return fd

    def write(self, fd, data, chunk):
        mv = memoryview(data)
        off = 0
        while mv:
            self.where = "write at %d" % off
            n = os.write(fd, mv[:chunk])
            mv = mv[n:]
            off += n

    def close(self, fd, ack=None):
        self.fds.remove(fd)
        self.call(os.close, fd, ack=ack)

    def __exit__(self, et, e, tb):
        w = self.w
        if et is None:
            w.j.put({"k": "end", "n": self.n, "rc": 0, "t": time.monotonic()})
            for s in self.steps:
                w.apply(s)
            w.data.update(self.data)
            return False
        if not issubclass(et, OSError):
            return False
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        name = errno.errorcode.get(e.errno, str(e.errno))
        w.j.put({"k": "end", "n": self.n, "rc": name, "t": time.monotonic(),
                 "what": "%s: %s: %s" % (self.kind, self.where, e)})
        raise Stop(name)


class Workload:
    """The operations of one process under ROOT (a folder of the mount)."""

    def __init__(self, root, journal_path, rng, max_ops):
        self.root, self.rng, self.max_ops = root, rng, max_ops
        self.j = Journal(journal_path)
        self.n = 0
        self.held = []                      # [(fd, path, sha256, size at open)]
        self.gen = rng.randrange(1 << 30)   # tags new content, for debugging

    # ---- model ----

    def apply(self, step):
        for p, v in step.items():
            if v is None:
                self.tree.pop(p, None)
                self.data.pop(p, None)
            else:
                self.tree[p] = v

    def full(self, p):
        return os.path.join(self.root, p)

    def fmt(self, p):
        v = self.tree.get(p)
        return v[1] if isinstance(v, list) else "lines"

    def note(self, p):
        v = self.tree.get(p)
        return v[2] if isinstance(v, list) else None

    def same_inode(self, p, data):
        """The value of P (same inode) holding DATA."""
        return [hash_bytes(data), self.fmt(p), self.note(p)]

    def files(self, pool):
        return [p for p in pool if isinstance(self.tree.get(p), list)]

    # ---- content ----

    def hexs(self, n):
        return self.rng.randbytes((n + 1) // 2).hex()[:n].encode()

    def csv_rows(self, nbytes):
        """About NBYTES of text rows, each ending in '\\n'; sometimes
        compressible, sometimes one row longer than a fragment."""
        r, out, total = self.rng, [], 0
        self.gen += 1
        dull = r.random() < 0.4
        while total < nbytes:
            if r.random() < 0.01:
                k = r.randint(17000, 40000)
            else:
                k = r.randint(1, 200)
            body = (b"x" * k) if dull else self.hexs(k)
            row = b"%d,%d," % (self.gen, len(out)) + body + b"\n"
            out.append(row)
            total += len(row)
        return out

    def dat_recs(self, n):
        self.gen += 1
        h = self.rng.randbytes(10 * n).hex().encode()
        return [b"%010d," % ((self.gen * 7919 + i) % 10**10) + h[20 * i:20 * i + 20] + b"\n"
                for i in range(n)]

    def pick_size(self):
        r = self.rng.random()
        if r < 0.3:
            return self.rng.randint(0, 3800)
        if r < 0.75:
            return self.rng.randint(4096, 96 * 1024)
        return self.rng.randint(96 * 1024, 400 * 1024)

    def new_content(self, path):
        size = self.pick_size()
        if path in DAT:
            return b"".join(self.dat_recs(size // REC))
        if path in SMALL:
            return self.hexs(self.rng.randint(0, 1500)) + b"\n"
        self.gen += 1
        return b"id,val,gen%d\n" % self.gen + b"".join(self.csv_rows(size))

    def chunk(self):
        return self.rng.choice([512, 4096, 16384, 65536, 131072])

    # ---- operations ----

    def op(self, kind, steps, data=None):
        return Op(self, kind, steps, data or {})

    def do_rewrite(self, path, fsync_mid=False):
        """O_TRUNC rewrite (a create when missing); with fsync_mid, an fsync
        after the first part commits that part first."""
        data = self.new_content(path)
        old = self.tree.get(path)
        fmt = self.fmt(path)
        steps = []
        if old is None:
            steps.append({path: [EMPTY_HASH, "lines", None]})
        note = self.note(path)
        unit = REC if path in DAT else 1       # fixed:32 commits whole records only
        cut = unit * self.rng.randint(0, len(data) // unit) if fsync_mid else None
        if fsync_mid:
            steps.append({path: [hash_bytes(data[:cut]), fmt, note]})
        steps.append({path: [hash_bytes(data), fmt, note]})
        flags = os.O_WRONLY | os.O_TRUNC | (os.O_CREAT if old is None else 0)
        with self.op("rewrite" + ("+fsync" if fsync_mid else ""), steps, {path: data}) as o:
            # a create is not durable before its first close (index/ns.c P6):
            # the empty name is allowed after a crash, never required
            fd = o.open(self.full(path), flags)
            c = self.chunk()
            if fsync_mid:
                o.write(fd, data[:cut], c)
                o.call(os.fsync, fd, ack=len(steps) - 2)
                o.write(fd, data[cut:], c)
            else:
                o.write(fd, data, c)
            o.close(fd, ack=len(steps) - 1)

    def do_replace(self, path):
        """Write PATH.tmp, then rename it over PATH."""
        tmp = path + ".tmp"
        data = self.new_content(path)
        v = [hash_bytes(data), "lines", None]
        steps = [{tmp: [EMPTY_HASH, "lines", None]}, {tmp: v}, {tmp: None, path: v}]
        with self.op("replace", steps, {path: data}) as o:
            fd = o.open(self.full(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)   # pending: no ack
            o.write(fd, data, self.chunk())
            o.close(fd, ack=1)
            o.call(os.rename, self.full(tmp), self.full(path), ack=2)

    def do_append(self, path):
        old = self.data[path]
        fsync_mid = self.rng.random() < 0.3
        if path in DAT:
            parts = [b"".join(self.dat_recs(self.rng.randint(1, 600))) for _ in range(1 + fsync_mid)]
        else:
            n = self.rng.choice([50, 300, 3000, 30000, 100000])
            parts = [b"".join(self.csv_rows(self.rng.randint(1, n))) for _ in range(1 + fsync_mid)]
            if self.rng.random() < 0.15:
                parts[-1] = parts[-1][:-1]           # a last row without '\n'
        fmt = self.fmt(path)
        steps, acc = [], old
        for p in parts:
            acc += p
            steps.append({path: [hash_bytes(acc), fmt, self.note(path)]})
        with self.op("append" + ("+fsync" if fsync_mid else ""), steps, {path: acc}) as o:
            fd = o.open(self.full(path), os.O_WRONLY | os.O_APPEND)
            for i, p in enumerate(parts):
                o.write(fd, p, self.chunk())
                if i + 1 < len(parts):
                    o.call(os.fsync, fd, ack=i)
            o.close(fd, ack=len(parts) - 1)

    def do_overwrite(self, path):
        """Write in place (no O_TRUNC) at an offset, maybe past the end."""
        old = self.data[path]
        if path in DAT:
            off = REC * self.rng.randint(0, len(old) // REC)
            new = b"".join(self.dat_recs(self.rng.randint(1, 100)))
        else:
            off = self.rng.randint(0, len(old))
            new = self.hexs(self.rng.randint(1, 3000))
        data = old[:off] + new + old[off + len(new):]
        steps = [{path: self.same_inode(path, data)}]
        with self.op("overwrite", steps, {path: data}) as o:
            fd = o.open(self.full(path), os.O_WRONLY)
            o.call(os.pwrite, fd, new, off)
            o.close(fd, ack=0)

    def do_truncate(self, path):
        old = self.data[path]
        if path in DAT:
            size = REC * self.rng.randint(0, len(old) // REC)
        elif self.rng.random() < 0.15:
            size = len(old) + self.rng.randint(1, 5000)
        else:
            size = self.rng.randint(0, len(old))
        data = old[:size] + b"\0" * (size - len(old))
        steps = [{path: self.same_inode(path, data)}]
        with self.op("truncate", steps, {path: data}) as o:
            o.call(os.truncate, self.full(path), size, ack=0)

    def view_rows(self, path):
        """(header, rows) of PATH as a @rows= view sees them, or None when
        its bytes are not whole rows (views there follow seam rules this
        model does not try to predict)."""
        b = self.data[path]
        if path in DAT:
            n = len(b) // REC
            if len(b) % REC or b.count(b"\n") != n or any(b[REC * i + REC - 1] != 10 for i in range(n)):
                return None
            return b"", [b[REC * i:REC * i + REC] for i in range(n)]
        if not b or not b.endswith(b"\n"):
            return None
        lines = b.splitlines(keepends=True)
        return lines[0], lines[1:]

    def do_view(self, path):
        vr = self.view_rows(path)
        if vr is None:
            return self.do_append(path) if path in DAT else self.do_rewrite(path)
        hdr, rows = vr
        n, r = len(rows), self.rng
        form = r.randrange(4)
        if form == 0:
            a = r.randint(0, n)
            b = r.randint(a, n + 3)
            spec, sl = "%d:%d" % (a, b), slice(a, b)
        elif form == 1:
            a = r.randint(0, n + 2)
            spec, sl = "%d:" % a, slice(a, None)
        elif form == 2:
            b = r.randint(0, n)
            spec, sl = ":%d" % b, slice(None, b)
        else:
            k = r.randint(1, min(n, 10) + 1)
            spec, sl = "-%d:" % k, slice(-k, None)
        if path in DAT:
            new_hdr, new = b"", self.dat_recs(r.choice([0, 1, 5, 40, 3000]))
        else:
            self.gen += 1
            new_hdr = b"id,val,view%d\n" % self.gen
            new = self.csv_rows(r.choice([0, 1, 200, 5000, 100000])) if r.random() < 0.9 else []
        rows = list(rows)
        rows[sl] = new                      # Python slice semantics, as DESIGN.md 1
        data = new_hdr + b"".join(rows)
        steps = [{path: self.same_inode(path, data)}]
        payload = new_hdr + b"".join(new)
        with self.op("view@rows=" + spec, steps, {path: data}) as o:
            fd = o.open(self.full(path) + "@rows=" + spec, os.O_WRONLY | os.O_TRUNC)
            o.write(fd, payload, self.chunk())
            o.close(fd, ack=0)

    def do_format(self, path):
        new = "lines" if self.fmt(path) != "lines" else "fixed:%d" % REC
        steps = [{path: [self.tree[path][0], new, self.note(path)]}]
        with self.op("format=" + new, steps) as o:
            o.call(os.setxattr, self.full(path), "user.payload.format", new.encode(), ack=0)

    def do_rename(self, src, dst):
        v = self.tree[src]
        same = dst in self.links and self.links.get(src) == self.links[dst]
        steps = [] if same else [{src: None, dst: v}]    # two links of one file: a no-op
        data = {dst: self.data[src]} if v != DIR and not same else {}
        with self.op("rename" + (" onto its own link" if same else ""), steps, data) as o:
            o.call(os.rename, self.full(src), self.full(dst), ack=None if same else 0)
        if not same and src in self.links:
            self.links[dst] = self.links.pop(src)

    def do_delete(self, path):
        steps = [{path: None}]
        with self.op("rmdir" if self.tree[path] == DIR else "unlink", steps) as o:
            fn = os.rmdir if self.tree[path] == DIR else os.unlink
            o.call(fn, self.full(path), ack=0)
        self.links.pop(path, None)

    def do_small_create(self, path):
        data = self.hexs(self.rng.randint(0, 2000))
        steps = [{path: [EMPTY_HASH, "lines", None]}, {path: [hash_bytes(data), "lines", None]}]
        with self.op("create", steps, {path: data}) as o:
            fd = o.open(self.full(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL)   # pending: no ack
            o.write(fd, data, 4096)
            o.close(fd, ack=1)
        self.links[path] = ("new", self.n)

    def do_hold(self, path):
        """Open PATH for reading and keep the descriptor (no tree change)."""
        with self.op("hold " + path, []) as o:
            fd = o.call(os.open, self.full(path), os.O_RDONLY | os.O_CLOEXEC)
            size = o.call(os.fstat, fd).st_size
        self.held.append((fd, path, self.tree[path][0], size))

    def do_unhold(self):
        """Read a held descriptor whole: it must still give what it opened."""
        fd, path, want, size = self.held.pop(self.rng.randrange(len(self.held)))
        with self.op("unhold " + path, []) as o:
            o.fds.append(fd)
            parts, off = [], 0
            while off < size:
                b = o.call(os.pread, fd, min(1 << 20, size - off), off)
                if not b:
                    break
                parts.append(b)
                off += len(b)
            o.close(fd)
        got = hash_bytes(b"".join(parts))
        if got != want:
            self.j.put({"k": "bad", "n": self.n, "what": "held reader of %s read %d bytes %s, "
                        "opened as %s" % (path, off, got[:12], want[:12])})

    def names_of(self, path):
        """PATH and the other names (hard links) of its inode."""
        key = self.links.get(path)
        return [path] + [q for q, k in self.links.items() if q != path and key is not None and k == key]

    def do_note(self, path):
        """Set or remove the user.note xattr (stored in the index, one per
        inode: every hard link shows it)."""
        v = list(self.tree[path])
        if v[2] is not None and self.rng.random() < 0.4:
            v[2] = None
            with self.op("note removed", [{p: v for p in self.names_of(path)}]) as o:
                o.call(os.removexattr, self.full(path), "user.note", ack=0)
            return
        self.gen += 1
        v[2] = "note %d %s" % (self.gen, self.hexs(self.rng.randint(0, 300)).decode())
        with self.op("note", [{p: v for p in self.names_of(path)}]) as o:
            o.call(os.setxattr, self.full(path), "user.note", v[2].encode(), ack=0)

    def do_link(self, src, dst):
        """A second name for a small file."""
        with self.op("link", [{dst: self.tree[src]}], {dst: self.data[src]}) as o:
            o.call(os.link, self.full(src), self.full(dst), ack=0)
        self.links[dst] = self.links[src]

    def do_mkdir(self, path):
        with self.op("mkdir", [{path: DIR}]) as o:
            o.call(os.mkdir, self.full(path), 0o755, ack=0)

    def do_dirop(self):
        r = self.rng
        x = r.choice(XDIRS)
        if x not in self.tree:
            return self.do_mkdir(x)
        if r.random() < 0.5:
            return self.do_delete(x)
        y = r.choice([d for d in XDIRS if d != x])
        return self.do_rename(x, y)

    # ---- the loop ----

    def one(self):
        r = self.rng
        if self.held and r.random() < 0.06:
            return self.do_unhold()
        if len(self.held) < MAX_HELD and r.random() < 0.04:
            have = [p for pool in POOLS for p in self.files(pool)]
            if have:
                return self.do_hold(r.choice(have))
        pool = r.choices(POOLS, weights=[6, 3, 2, 1])[0]
        have = self.files(pool)
        path = r.choice(pool)
        kind = r.choices(["rewrite", "rewrite+fsync", "replace", "view", "append", "overwrite",
                          "truncate", "rename", "delete", "format", "create", "dir", "note"],
                         weights=[14, 3, 9, 15, 14, 6, 7, 8, 5, 7, 8, 4, 4])[0]
        if pool is SMALL and (kind not in ("rename", "delete", "dir", "note") or not have):
            kind = "create"
        if kind == "dir":
            return self.do_dirop()
        if kind == "create":
            free = [p for p in SMALL if p not in self.tree]
            if not free:
                return self.do_delete(r.choice(self.files(SMALL)))
            if self.files(SMALL) and r.random() < 0.3:
                return self.do_link(r.choice(self.files(SMALL)), r.choice(free))
            return self.do_small_create(r.choice(free))
        if kind in ("rewrite", "rewrite+fsync", "replace") or not have:
            if kind == "replace":
                return self.do_replace(path)
            return self.do_rewrite(path, fsync_mid=kind == "rewrite+fsync")
        path = r.choice(have)
        if kind == "rename":
            return self.do_rename(path, r.choice([p for p in pool if p != path]))
        if kind == "delete":
            return self.do_delete(path)
        if kind == "format" and pool is DAT:
            return self.do_format(path)
        if kind == "format" or kind == "view":
            return self.do_view(path)
        return getattr(self, "do_" + kind)(path)

    def tidy(self):
        """Round start: make the base directories, drop leftovers that no
        pool names (PATH.tmp of a replace that was cut short)."""
        known = set(BASE_DIRS + CSV + DAT + SMALL + MEM + XDIRS)
        for p in sorted(self.tree, key=lambda p: -p.count("/")):
            if p not in known:
                self.do_delete(p)
        for d in BASE_DIRS:
            if d not in self.tree and d != MEM_DIR:
                self.do_mkdir(d)
        with self.op("check " + MEM_DIR, []) as o:
            v = o.call(os.getxattr, self.full(MEM_DIR), "user.payload.storage")
        if v != b"memory":
            self.j.put({"k": "bad", "n": self.n, "what": "%s lost its storage=memory setting: %r" %
                        (MEM_DIR, v)})

    def run(self, ready):
        """READY() is called once the start tree is journaled."""
        self.tree, self.data = read_tree(self.root, want_data=True)
        self.links = {p: os.stat(self.full(p)).st_ino for p in SMALL if p in self.tree}
        self.j.put({"k": "start", "tree": self.tree, "t": time.monotonic()})
        ready()
        try:
            self.tidy()
            while self.n < self.max_ops:
                self.one()
            self.j.put({"k": "stop", "why": "max_ops", "t": time.monotonic()})
        except Stop:
            pass
        self.j.close()
