"""plwork — the workloads of the power-loss explorer and their oracle.

A workload runs against a live mount whose daemon records its calls
(plshim.c). It writes its own marks into the same trace (one write(2) to
the O_APPEND trace file each, pltrace.write_mark), so each mark sits
exactly between the daemon's calls that happened before and after it:

  {"k": "mount", "sync": bool, "sync_ms": N, "delay_ms": N}
                                   the mount is up
  {"k": "begin", "op": N, "kind": K, "steps": [TREE, ...]}
                                   before the first call of operation N;
                                   TREE is the whole tree after each step
  {"k": "ack", "op": N, "s": S}    after the call that acknowledged step S
                                   (a create by open, a commit by close or
                                   fsync, a rename, a mkdir/rmdir, cp's end)
  {"k": "end", "op": N}
  {"k": "durable", "upto": I}      every step up to global step I is durable:
                                   after fsync(2) returned (I = the steps
                                   acknowledged before it was called), and
                                   after an unmount whose daemon exited 0
  {"k": "unmounted"}

A TREE maps each path of the mount (".snapshots/NAME/..." for snapshots)
to the sha256 of a file's bytes or "d" for a directory.

The oracle (allowed_trees) says which trees a state cut at trace position
P may show, by the rules the README states: every step acknowledged before
P is there except that the newest commit may be undone (a commit is
durable once another was committed, fsync(2) returned, or within sync_ms:
here with slack), none undone with -o sync, the operation in flight may
be at any of its steps.
"""

import hashlib
import os
import subprocess
import threading
import time

import pltrace

DIR = "d"
# how late the syncer may be for the "within sync_ms" rule: the flush
# itself, a loaded machine; a commit older than sync_ms + delay + this must
# be durable
SYNC_SLACK_NS = 3 * 10**9


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Workload:
    def __init__(self, mnt, trace_path, rng, log=None):
        self.mnt, self.rng = mnt, rng
        self.tfd = os.open(trace_path, os.O_WRONLY | os.O_APPEND)
        self.tree = {}             # path -> sha | DIR
        self.data = {}             # path -> bytes (files)
        self.nop = 0
        self.nsteps = 0            # global steps acknowledged
        self.gen = 0
        self.snaps = []
        self.log = log or (lambda s: None)
        self.sync = False

    def close(self):
        os.close(self.tfd)

    def mark(self, obj):
        pltrace.write_mark(self.tfd, obj, time.monotonic_ns())

    def full(self, p):
        return os.path.join(self.mnt, p)

    # ---- operations: steps are announced, then acknowledged ----

    def begin(self, kind, trees):
        self.nop += 1
        self.cur = (self.nop, trees)
        self.mark({"k": "begin", "op": self.nop, "kind": kind, "steps": trees})
        self.log("op %d %s" % (self.nop, kind))

    def ack(self, s):
        n, trees = self.cur
        self.nsteps += 1
        self.tree = dict(trees[s])
        self.mark({"k": "ack", "op": n, "s": s})

    def end(self):
        self.mark({"k": "end", "op": self.cur[0]})

    def durable(self, upto):
        self.mark({"k": "durable", "upto": upto})

    def after(self, changes):
        """The tree after applying CHANGES {path: value or None}."""
        t = dict(self.tree)
        for p, v in changes.items():
            if v is None:
                for q in [q for q in t if q == p or q.startswith(p + "/")]:
                    del t[q]
            else:
                t[p] = v
        return t

    # ---- content ----

    def rows(self, nbytes):
        r, out, total = self.rng, [], 0
        self.gen += 1
        dull = r.random() < 0.3
        while total < nbytes:
            k = r.randint(1, 160)
            body = b"x" * k if dull else r.randbytes((k + 1) // 2).hex()[:k].encode()
            row = b"%d,%d," % (self.gen, len(out)) + body + b"\n"
            out.append(row)
            total += len(row)
        return out

    def csv(self, nbytes):
        self.gen += 1
        return b"id,val,g%d\n" % self.gen + b"".join(self.rows(nbytes))

    def size(self, big=False):
        x = self.rng.random()
        if big and x < 0.04:
            return self.rng.randint(2200000, 2600000)  # 128 images or more: one syncfs
        if x < 0.25:
            return self.rng.randint(10, 3500)          # inline
        if x < 0.85:
            return self.rng.randint(5000, 70000)       # a few 16 KiB fragments
        return self.rng.randint(70000, 200000)

    def write_all(self, fd, b):
        step = self.rng.choice([4096, 16384, 65536])
        for i in range(0, len(b), step):
            os.write(fd, b[i:i + step])

    # ---- the operations ----

    def mkdir(self, p):
        self.begin("mkdir " + p, [self.after({p: DIR})])
        os.mkdir(self.full(p))
        self.ack(0)
        self.end()

    def create(self, p, b, fsync=False):
        """A new file: open(O_CREAT) is one step, the close (or the fsync)
        the next. The open acknowledges nothing: the name is pending until
        the close (index/ns.c P6), so the empty file is allowed in flight
        only."""
        t1 = self.after({p: sha(b"")})
        t2 = dict(t1)
        t2[p] = sha(b)
        self.begin("create " + p, [t1, t2])
        fd = os.open(self.full(p), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.write_all(fd, b)
        if fsync:
            self.fsync_fd(fd, 1)
        os.close(fd)
        if not fsync:
            self.ack(1)
        self.end()
        self.data[p] = b

    def fsync_fd(self, fd, step):
        """fsync(2) FD, which commits step STEP of the current op and makes
        every step before durable."""
        os.fsync(fd)
        self.ack(step)
        self.durable(self.nsteps)

    def rewrite(self, p, b, fsync=False):
        self.begin("rewrite " + p, [self.after({p: sha(b)})])
        fd = os.open(self.full(p), os.O_WRONLY | os.O_TRUNC)
        self.write_all(fd, b)
        if fsync:
            self.fsync_fd(fd, 0)
        os.close(fd)
        if not fsync:
            self.ack(0)
        self.end()
        self.data[p] = b

    def append(self, p, b):
        new = self.data[p] + b
        self.begin("append " + p, [self.after({p: sha(new)})])
        fd = os.open(self.full(p), os.O_WRONLY | os.O_APPEND)
        self.write_all(fd, b)
        os.close(fd)
        self.ack(0)
        self.end()
        self.data[p] = new

    def view_write(self, p):
        """Replace rows [a:b) of CSV P through P@rows=a:b (DESIGN.md 1: what
        is written starts with the header, which replaces the object's)."""
        old = self.data[p]
        rows = old.splitlines(keepends=True)[1:]     # the header is replaced
        n = len(rows)
        a = self.rng.randint(0, n)
        bnd = self.rng.randint(a, n)
        new_rows = self.rows(self.rng.choice([0, 50, 3000, 30000]))
        self.gen += 1
        new_hdr = b"id,val,v%d\n" % self.gen
        new = new_hdr + b"".join(rows[:a] + new_rows + rows[bnd:])
        self.begin("view %s@rows=%d:%d" % (p, a, bnd), [self.after({p: sha(new)})])
        fd = os.open(self.full(p) + "@rows=%d:%d" % (a, bnd), os.O_WRONLY | os.O_TRUNC)
        self.write_all(fd, new_hdr + b"".join(new_rows))
        os.close(fd)
        self.ack(0)
        self.end()
        with open(self.full(p), "rb") as f:
            got = f.read()
        if got != new:
            raise AssertionError("view write of %s: the object reads %d bytes (sha %s), the model "
                                 "says %d (sha %s)" % (p, len(got), sha(got)[:12], len(new), sha(new)[:12]))
        self.data[p] = new

    def copy(self, src, dst):
        """cp SRC DST (coreutils: copy_file_range): creating DST is one
        step, its close the next; only the close acknowledges (the created
        name is pending until then: index/ns.c P6)."""
        t1 = self.after({dst: sha(b"")})
        t2 = dict(t1)
        t2[dst] = self.tree[src]
        self.begin("cp %s %s" % (src, dst), [t1, t2])
        subprocess.run(["cp", self.full(src), self.full(dst)], check=True)
        self.ack(1)
        self.end()
        self.data[dst] = self.data[src]

    def unlink(self, p):
        self.begin("unlink " + p, [self.after({p: None})])
        os.unlink(self.full(p))
        self.ack(0)
        self.end()
        self.data.pop(p)

    def rename(self, a, b):
        """rename(2) A onto B (A != B: a step must be a commit)."""
        assert a != b
        t = self.after({b: None})
        t[b] = t.pop(a)
        self.begin("rename %s %s" % (a, b), [t])
        os.rename(self.full(a), self.full(b))
        self.ack(0)
        self.end()
        self.data[b] = self.data.pop(a)

    def snap_create(self, name):
        t = dict(self.tree)
        t[".snapshots/" + name] = DIR
        for p, v in self.tree.items():
            if not p.startswith(".snapshots/"):
                t[".snapshots/%s/%s" % (name, p)] = v
        self.begin("snapshot " + name, [t])
        os.mkdir(self.full(".snapshots/" + name))
        self.ack(0)
        self.end()
        self.snaps.append(name)

    def snap_drop(self, name):
        self.begin("drop snapshot " + name, [self.after({".snapshots/" + name: None})])
        os.rmdir(self.full(".snapshots/" + name))
        self.ack(0)
        self.end()
        self.snaps.remove(name)

    def fsync_path(self, p):
        """fsync(2) of P opened read-only: an index flush (store_sync) that
        covers every step acknowledged before the call."""
        upto = self.nsteps
        fd = os.open(self.full(p), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.durable(upto)

    def files(self):
        return sorted(p for p, v in self.tree.items() if v != DIR and not p.startswith(".snapshots/"))

    def csvs(self):
        return [p for p in self.files() if p.endswith(".csv") and self.data[p].endswith(b"\n")
                and b"\n" in self.data[p]]


# ---- scenarios ----------------------------------------------------------
#
# A scenario: mount options, shim settings, and a body run against the mount.
# Each returns nothing; failures raise.

class Scenario:
    name = ""
    about = ""
    opts = "fragment_size=16K"
    sync = False
    sync_ms = 1000
    delay_ms = 0            # PFS_SHIM_META_SYNC_DELAY_MS
    remounts = 0            # how many times body() asks for a remount

    def body(self, w, remount):
        raise NotImplementedError


class FlushBeforeCommit(Scenario):
    name = "flush-before-commit"
    about = ("the window of issue 10 §1 (a): an index flush (fsync(2) of another file) starts, "
             "a commit that releases images lands while it runs (flushes delayed 300 ms), then "
             "one more commit and the unmount")
    sync_ms = 600000        # no syncer: the only flushes are the ones below
    delay_ms = 300

    def body(self, w, remount):
        w.mkdir("d")
        w.create("d/x.csv", w.csv(90000))
        w.create("d/y.txt", b"y\n")
        w.fsync_path("d/y.txt")           # everything so far durable
        t = threading.Thread(target=w.fsync_path, args=("d/y.txt",))
        t.start()
        time.sleep(0.1)                   # the flush is in its delayed fdatasync
        w.rewrite("d/x.csv", w.csv(90000))
        t.join()
        w.create("d/z.txt", b"z\n")       # the next commit's flush
        time.sleep(0.1)


class EmptyTxnAtUnmount(Scenario):
    name = "empty-txn-at-unmount"
    about = ("the window of issue 10 §1 (b): a rewrite releases images, then the unmount "
             "(whose sweep commits an empty transaction) before any other flush")
    sync_ms = 600000

    def body(self, w, remount):
        w.mkdir("d")
        w.create("d/x.csv", w.csv(90000))
        w.fsync_path("d/x.csv")
        w.rewrite("d/x.csv", w.csv(90000))


class Random(Scenario):
    """Random operations: creates, rewrites (some with fsync), appends,
    view writes, cp, renames, unlinks, snapshot create and drop, fsync of
    other files; remounts in the middle."""
    name = "random"

    def __init__(self, rng, nops, sync=False, big=False):
        self.rng, self.nops, self.big = rng, nops, big
        self.sync = sync
        # staged writes past 64 KiB spill to STORE/staging/ (swept at mount)
        self.opts = "fragment_size=16K,spill_size=%s" % rng.choice(["64K", "8M"])
        self.sync_ms = rng.choice([30, 100, 300]) if not sync else 1000
        self.delay_ms = rng.choice([0, 0, 30, 150]) if not sync else 0
        self.remounts = 1 if nops >= 10 else 0
        self.name = "random-sync" if sync else "random"
        self.about = ("%d random operations, -o %s,%s" % (nops, self.opts, "sync" if sync else
                      "sync_ms=%d, index flushes delayed %d ms" % (self.sync_ms, self.delay_ms)))

    def body(self, w, remount):
        r = self.rng
        w.mkdir("a")
        w.mkdir("b")
        names = ["a/f%d.csv" % i for i in range(4)] + ["b/g%d.csv" % i for i in range(3)] + ["b/s.txt"]
        remount_at = r.randint(self.nops // 3, 2 * self.nops // 3) if self.remounts else -1
        for i in range(self.nops):
            if i == remount_at:
                remount()
            self.one(w, names)
            if r.random() < 0.15:
                time.sleep(r.choice([0.01, 0.05, self.sync_ms / 1000.0]))

    def one(self, w, names):
        r = self.rng
        files = w.files()
        free = [n for n in names if n not in w.tree]
        x = r.random()
        if not files or (free and x < 0.2):
            p = r.choice(free)
            w.create(p, w.csv(w.size(self.big)), fsync=r.random() < 0.15)
        elif x < 0.38:
            w.rewrite(r.choice(files), w.csv(w.size(self.big)), fsync=r.random() < 0.2)
        elif x < 0.5:
            w.append(r.choice(files), b"".join(w.rows(r.choice([100, 5000, 40000]))))
        elif x < 0.6 and w.csvs():
            w.view_write(r.choice(w.csvs()))
        elif x < 0.7 and free:
            w.copy(r.choice(files), r.choice(free))
        elif x < 0.76:
            src = r.choice(files)      # never onto itself: that commits nothing
            w.rename(src, r.choice([n for n in names if n != src]))
        elif x < 0.82 and len(files) > 1:
            w.unlink(r.choice(files))
        elif x < 0.9:
            if w.snaps and (len(w.snaps) >= 2 or r.random() < 0.4):
                w.snap_drop(r.choice(w.snaps))
            else:
                w.snap_create("s%d" % w.nop)
        else:
            w.fsync_path(r.choice(files))


# ---- the oracle ---------------------------------------------------------

class Oracle:
    """Reads the marks of a trace and answers, for a trace position, which
    trees a state cut there may show."""

    def __init__(self, marks, events):
        self.marks = marks            # [(pos, dict)]
        self.events = events

    def allowed(self, p):
        """[(label, tree)] the state cut before trace position P may show,
        and a note saying why (for failure reports)."""
        steps = [({}, None, 0)]       # (tree, label, ack time)
        begun = {}                    # op -> (kind, trees)
        acked = {}                    # op -> last acked step
        inflight = None
        lower = 0
        sync = False
        sync_ms = delay = None
        why = []
        for pos, m in self.marks:
            if pos >= p:
                break
            k = m["k"]
            t = self.events[pos].t_ns
            if k == "mount":
                sync, sync_ms, delay = m["sync"], m["sync_ms"], m["delay_ms"]
            elif k == "begin":
                begun[m["op"]] = (m["kind"], m["steps"])
                inflight = m["op"]
            elif k == "ack":
                kind, trees = begun[m["op"]]
                steps.append((trees[m["s"]], "op %d (%s) step %d" % (m["op"], kind, m["s"]), t))
                acked[m["op"]] = m["s"]
                if sync:
                    lower = len(steps) - 1
            elif k == "end":
                if inflight == m["op"]:
                    inflight = None
            elif k == "durable":
                lower = max(lower, m["upto"])
        c = len(steps) - 1
        lower = max(lower, c - 1)
        # "within sync_ms": a step acknowledged long enough before P
        if sync_ms is not None and not sync and p > 0:
            now = self.events[min(p, len(self.events)) - 1].t_ns
            limit = (sync_ms + (delay or 0)) * 10**6 + SYNC_SLACK_NS
            for i in range(c, lower, -1):
                if now - steps[i][2] > limit:
                    lower = i
                    why.append("step %d is older than sync_ms + %d s" % (i, SYNC_SLACK_NS // 10**9))
                    break
        out = [(steps[i][1] or "the empty store", steps[i][0]) for i in range(lower, c + 1)]
        if inflight is not None:
            kind, trees = begun[inflight]
            first = acked.get(inflight, -1) + 1
            for s in range(first, len(trees)):
                out.append(("op %d (%s) step %d, in flight" % (inflight, kind, s), trees[s]))
        return out
