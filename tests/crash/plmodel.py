"""plmodel — the file-system model of the power-loss explorer: from a
trace (pltrace.py), which calls were durable at each moment, which states
a power cut there could leave, and the bytes of each state.

The model (tests/crash/README.md, "Power loss", says the same for users):

 * Objects are the files and directories the daemon made or opened under
   the store (an inode each). The store directory itself exists, empty and
   durable, before the trace starts.
 * Metadata is journaled in order (ext4 and its data=ordered default):
   namespace changes (create, mkdir, unlink, rmdir, rename, link) and size
   changes (ftruncate, fallocate) form one global log; a power cut keeps a
   prefix of it. That prefix covers at least every metadata call recorded
   before the BEGIN of a completed sync that commits the journal:
     - syncfs(2) or sync(2) (everything, data included);
     - fsync/fdatasync of an object whose metadata changed since the last
       journal commit the model knows of (its creation, a size change, a
       write past its end, an entry change in it for a directory), as ext4
       commits the running transaction then; a flush of a file whose blocks
       were only overwritten commits nothing.
 * File data is not ordered: each file's writes since its last sync may
   persist in any combination, page by page (4 KiB), each page holding a
   prefix of the writes that touched it (the page's content at the moment
   write-back took it). A write past the end persists with its bytes or not
   at all (data=ordered never shows stale blocks); a page lost below one
   that persisted reads as zeros. fsync/fdatasync of an object makes every
   write to it recorded before its BEGIN durable; a write through an
   O_DSYNC descriptor is durable when it returns.
 * A sync that failed makes nothing durable. sync_file_range(2) makes
   nothing durable.
 * LMDB's lock.mdb is not part of a state: LMDB rebuilds its reader table
   at every open.

Generators of states at a crash point P (the trace cut before event P):
  meta-all/data-none   every metadata call, only the durable data
  none       metadata: the durable prefix; data: only what is durable
  meta-none/data-all   the durable metadata prefix, all data
  all        everything recorded before P (what a daemon crash leaves)
  meta-k     a metadata prefix of length k, with no or all volatile data
  file-k     one file's volatile writes as a prefix of length k, the rest all
             (and the rest none)
  random     a random metadata prefix; for each page of each file a random
             prefix of its volatile writes
"""

import hashlib
import os
import random

import pltrace as T

PAGE = 4096


class Obj:
    """A file or directory. dops: its data and size operations in trace
    order, as indices into Model.ops."""
    __slots__ = ("id", "kind", "path", "dops", "dpos", "ignore", "changes", "ino")

    def __init__(self, oid, kind, path, ino=0):
        self.id, self.kind, self.path, self.ino = oid, kind, path, ino
        self.dops = []
        self.dpos = []             # the trace positions of dops
        self.ignore = path.endswith("/lock.mdb") or path == "index/lock.mdb"
        self.changes = []          # trace positions of its metadata changes


class Op:
    """One state-changing call. kind: 'create' 'mkdir' 'unlink' 'rmdir'
    'rename' 'link' (namespace), 'trunc' 'falloc' (size), 'write' (data).
    Metadata ops have mi (their index in the metadata log)."""
    __slots__ = ("pos", "kind", "obj", "path", "path2", "off", "length", "ev", "mi", "dsync",
                 "oi", "extends", "keep")

    def __init__(self, pos, kind, **kw):
        self.pos, self.kind = pos, kind
        self.obj = self.path = self.path2 = self.ev = None
        self.off = self.length = 0
        self.mi = self.oi = -1
        self.dsync = self.extends = self.keep = False
        for k, v in kw.items():
            setattr(self, k, v)


class TraceError(Exception):
    """The trace holds something the model cannot replay."""


class Durable:
    """What is durable at a moment: per object, how many of its dops (a
    prefix), plus single durable writes (O_DSYNC); how many metadata ops (a
    prefix) and the trace position the journal is known committed to."""

    def __init__(self, nobjs):
        self.upto = [0] * nobjs
        self.extra = set()          # op indices of durable O_DSYNC writes
        self.meta = 0
        self.meta_pos = -1

    def copy(self):
        d = Durable(0)
        d.upto, d.extra, d.meta, d.meta_pos = list(self.upto), set(self.extra), self.meta, self.meta_pos
        return d


class Model:
    def __init__(self, trace, root):
        self.trace, self.root = trace, root.rstrip("/")
        self.objs = [Obj(0, "d", "")]     # the store directory
        self.ops = []                     # every Op, in trace order
        self.meta = []                    # indices into ops of metadata ops
        self.syncs = []                   # (begin pos, end pos, obj id or None, ok)
        self.marks = []                   # (pos, mark dict)
        self.unsupported = []             # descriptions of what cannot be replayed
        self.dirs = {"": 0}               # path -> obj id of the last directory made there
        self._build()

    # ---- building ----

    def rel(self, p):
        if p == self.root:
            return ""
        if not p.startswith(self.root + "/"):
            raise TraceError("path outside the store: %s" % p)
        return p[len(self.root) + 1:]

    def _build(self):
        live = {"": 0}                    # path -> obj id, the daemon's view
        fdmap = {}                        # (pid, fd) -> obj id
        size = {}                         # obj id -> live size
        begins = {}                       # (pid, tid, fd, kind) -> begin pos
        for e in self.trace.events:
            t = e.type
            if t == T.MARK:
                self.marks.append((e.pos, e.mark))
            elif t == T.OPEN:
                p = self.rel(e.path)
                if e.flags & T.F_CREATED:
                    o = self._new_obj("f", p, e.ino)
                    live[p] = o.id
                    size[o.id] = 0
                    self._meta(Op(e.pos, "create", obj=o.id, path=p, ev=e))
                elif p not in live:
                    raise TraceError("#%d: %s opened, but its creation was not recorded" % (e.pos, p))
                fdmap[(e.pid, e.fd)] = live[p]
            elif t == T.CLOSE:
                fdmap.pop((e.pid, e.fd), None)
            elif t == T.WRITE:
                oid = self._fd_obj(fdmap, e)
                end = e.a + e.dlen
                ext = end > size.get(oid, 0)
                size[oid] = max(size.get(oid, 0), end)
                op = Op(e.pos, "write", obj=oid, off=e.a, length=e.dlen, ev=e,
                        dsync=bool(e.flags & T.F_DSYNC), extends=ext)
                self._data(op)
                if ext:
                    self.objs[oid].changes.append(e.pos)
            elif t in (T.TRUNC, T.FALLOC):
                if e.fd >= 0:
                    oid = self._fd_obj(fdmap, e)
                else:
                    oid = live.get(self.rel(e.path))
                    if oid is None:
                        raise TraceError("#%d: truncate of unknown %s" % (e.pos, e.path))
                if t == T.TRUNC:
                    size[oid] = e.a
                    op = Op(e.pos, "trunc", obj=oid, length=e.a, ev=e)
                else:
                    if e.flags & 0x01 == 0:      # FALLOC_FL_KEEP_SIZE not set
                        size[oid] = max(size.get(oid, 0), e.a + e.b)
                    op = Op(e.pos, "falloc", obj=oid, off=e.a, length=e.b, ev=e,
                            keep=bool(e.flags & 0x01))
                self._meta(op)
                self._data_index(op)
            elif t == T.SYNC_BEGIN:
                begins[(e.pid, e.tid, e.fd, e.flags)] = e.pos
                if e.flags in (T.SK_FSYNC, T.SK_FDATASYNC):
                    self._fd_obj(fdmap, e)
            elif t == T.SYNC_END:
                b = begins.pop((e.pid, e.tid, e.fd, e.flags), None)
                if b is None:
                    raise TraceError("#%d: a sync end without its begin" % e.pos)
                oid = None if e.flags in (T.SK_SYNCFS, T.SK_SYNC) else self._fd_obj(fdmap, e)
                self.syncs.append((b, e.pos, oid, e.ret == 0))
            elif t in (T.UNLINK, T.RMDIR):
                p = self.rel(e.path)
                if p not in live:
                    raise TraceError("#%d: %s of unknown %s" % (e.pos, T.NAMES[t], p))
                oid = live.pop(p)
                self._meta(Op(e.pos, "unlink" if t == T.UNLINK else "rmdir", obj=oid, path=p, ev=e))
            elif t == T.MKDIR:
                p = self.rel(e.path)
                o = self._new_obj("d", p)
                live[p] = o.id
                self._meta(Op(e.pos, "mkdir", obj=o.id, path=p, ev=e))
            elif t in (T.RENAME, T.LINK):
                a, b = self.rel(e.path), self.rel(e.path2)
                if t == T.RENAME and e.flags:
                    raise TraceError("#%d: renameat2 flags %#x are not modelled" % (e.pos, e.flags))
                if a not in live:
                    raise TraceError("#%d: %s of unknown %s" % (e.pos, T.NAMES[t], a))
                oid = live[a]
                if t == T.RENAME:
                    for q in [q for q in live if q == a or q.startswith(a + "/")]:
                        live[b + q[len(a):]] = live.pop(q)
                else:
                    live[b] = oid
                self._meta(Op(e.pos, "rename" if t == T.RENAME else "link", obj=oid, path=a,
                              path2=b, ev=e))
            elif t == T.MMAPW:
                if not self.objs[self._fd_obj(fdmap, e)].ignore:
                    self.unsupported.append("#%d: shared writable mmap of %s" % (e.pos, e.path))
            elif t == T.URING and e.flags == 2:
                self.unsupported.append("#%d: an io_uring submission (its writes and syncs are "
                                        "invisible to the shim)" % e.pos)
            elif t == T.UNSUPP:
                self.unsupported.append("#%d: %s into %s" % (e.pos, e.path, e.path2))
            elif t == T.MSYNC:
                pass    # no shared writable mapping of a store file is allowed (MMAPW)
        self.live_end = live
        self.meta_pos = [self.ops[i].pos for i in self.meta]
        for o in self.objs:
            o.dpos = [self.ops[i].pos for i in o.dops]

    def _new_obj(self, kind, path, ino=0):
        o = Obj(len(self.objs), kind, path, ino)
        self.objs.append(o)
        if kind == "d":
            self.dirs[path] = o.id
        return o

    def _fd_obj(self, fdmap, e):
        oid = fdmap.get((e.pid, e.fd))
        if oid is None:
            raise TraceError("#%d: %s on fd %d, which no recorded open made" % (e.pos, T.NAMES[e.type], e.fd))
        return oid

    def _meta(self, op):
        op.mi = len(self.meta)
        self.ops.append(op)
        self.meta.append(len(self.ops) - 1)
        parent = os.path.dirname(op.path) if op.path is not None else None
        touched = []
        if op.kind in ("create", "mkdir", "unlink", "rmdir", "rename", "link"):
            touched.append(self._dir_of(parent))
            if op.path2 is not None:
                touched.append(self._dir_of(os.path.dirname(op.path2)))
        touched.append(op.obj)
        for oid in touched:
            if oid is not None:
                self.objs[oid].changes.append(op.pos)

    def _dir_of(self, path):
        """The obj id of the directory at PATH as the daemon saw it now (the
        last mkdir of it), or None."""
        return self.dirs.get(path)

    def _data(self, op):
        self.ops.append(op)
        self._data_index(op)

    def _data_index(self, op):
        op.oi = len(self.objs[op.obj].dops)
        self.objs[op.obj].dops.append(len(self.ops) - 1)

    # ---- durability ----

    def crash_points(self):
        """(position, Durable) for each moment a power cut is explored at:
        just before each sync that completed (the window since the previous
        one is then at its widest) and at the end of the trace. Durable
        describes what is durable at that position."""
        ends = sorted((e, b, oid, ok) for b, e, oid, ok in self.syncs)
        d = Durable(len(self.objs))
        out = []
        ei = 0
        meta_pos_list = self.meta_pos
        # O_DSYNC writes: durable at their own record; folded in as we go
        dsync = [(self.ops[i].pos, i) for i in range(len(self.ops))
                 if self.ops[i].kind == "write" and self.ops[i].dsync]
        di = 0
        npos = len(self.trace.events)
        while True:
            nxt = ends[ei][0] if ei < len(ends) else npos
            while di < len(dsync) and dsync[di][0] < nxt:
                d.extra.add(dsync[di][1])
                di += 1
            if ei >= len(ends):
                out.append((npos, d.copy()))
                break
            e, b, oid, ok = ends[ei]
            out.append((e, d.copy()))
            if ok:
                self._apply_sync(d, b, oid, meta_pos_list)
            ei += 1
        return out

    @staticmethod
    def count_before(lst, pos):
        """How many of the sorted positions LST are before POS."""
        lo, hi = 0, len(lst)
        while lo < hi:
            mid = (lo + hi) // 2
            if lst[mid] < pos:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def index_sync_ends(self):
        """The trace positions of the ends of successful syncs of an LMDB
        data.mdb, of syncfs/sync, and the end of the trace."""
        out = {len(self.trace.events)}
        for b, e, oid, ok in self.syncs:
            if ok and (oid is None or self.objs[oid].path.endswith("data.mdb")):
                out.add(e)
        return out

    def _apply_sync(self, d, b, oid, meta_pos_list):
        if oid is None:                   # syncfs / sync: everything before b
            for o in self.objs:
                d.upto[o.id] = max(d.upto[o.id], self.count_before(o.dpos, b))
            d.meta = max(d.meta, self.count_before(meta_pos_list, b))
            d.meta_pos = max(d.meta_pos, b)
            return
        o = self.objs[oid]
        d.upto[oid] = max(d.upto[oid], self.count_before(o.dpos, b))
        # the journal commits when the object has a metadata change after
        # the last commit the model knows of
        k = self.count_before(o.changes, b)
        if k and o.changes[k - 1] > d.meta_pos:
            d.meta = max(d.meta, self.count_before(meta_pos_list, b))
            d.meta_pos = max(d.meta_pos, b)

    # ---- states ----

    def volatile(self, p, d):
        """(metadata range [lo, hi), {obj id: [op index, ...]}) of what is
        recorded before P and not durable under D."""
        hi = self.count_before(self.meta_pos, p)
        vd = {}
        for o in self.objs:
            if o.ignore or o.kind != "f":
                continue
            lst = [i for i in o.dops[d.upto[o.id]:] if self.ops[i].pos < p and
                   self.ops[i].kind == "write" and i not in d.extra]
            if lst:
                vd[o.id] = lst
        return d.meta, max(hi, d.meta), vd

    def states(self, p, d, rng, nrandom=4, cap_prefix=24):
        """Yield (label, State) for crash point P, in priority order."""
        lo, hi, vd = self.volatile(p, d)
        all_data = {o: ("all",) for o in vd}
        none_data = {}
        # first the state most likely to break an invariant: every name
        # change (an unlink that went ahead) without the data that was to
        # make it safe
        yield "meta-all/data-none", State(p, d, hi, none_data)
        yield "none", State(p, d, lo, none_data)
        yield "meta-none/data-all", State(p, d, lo, all_data)
        yield "all", State(p, d, hi, all_data)
        for o, lst in sorted(vd.items(), key=lambda kv: (not self.objs[kv[0]].path.endswith(".mdb"), kv[0])):
            ks = list(range(len(lst)))
            if len(ks) > cap_prefix:
                ks = sorted(set([0, len(lst) - 1] + rng.sample(ks, cap_prefix - 2)))
            for k in ks:
                sel = dict(all_data)
                sel[o] = ("prefix", k)
                yield "file-prefix %s:%d/%d" % (self.objs[o].path, k, len(lst)), State(p, d, hi, sel)
                yield "file-prefix-alone %s:%d/%d" % (self.objs[o].path, k, len(lst)), \
                    State(p, d, lo, {o: ("prefix", k)})
        ms = list(range(lo + 1, hi))
        if len(ms) > cap_prefix:
            ms = sorted(rng.sample(ms, cap_prefix))
        for m in ms:
            yield "meta-prefix %d/%d data-none" % (m - lo, hi - lo), State(p, d, m, none_data)
            yield "meta-prefix %d/%d data-all" % (m - lo, hi - lo), State(p, d, m, all_data)
        for i in range(nrandom):
            seed = rng.randrange(1 << 30)
            m = rng.randint(lo, hi)
            yield "random %d (seed %d)" % (i, seed), State(p, d, m, {o: ("random", seed) for o in vd})

    # ---- materializing ----

    def chunks(self, i):
        """The 4 KiB-page pieces of write op I: [(page, off, length, data offset)]."""
        op = self.ops[i]
        out, off, end, doff = [], op.off, op.off + op.length, op.ev.doff
        while off < end:
            nxt = min(end, (off // PAGE + 1) * PAGE)
            out.append((off // PAGE, off, nxt - off, doff))
            doff += nxt - off
            off = nxt
        return out

    def selected(self, oid, rule, vlist):
        """The volatile pieces of object OID that persist under RULE:
        [(op index, (page, off, length, data offset))]."""
        if rule[0] == "all":
            return [(i, c) for i in vlist for c in self.chunks(i)]
        if rule[0] == "prefix":
            return [(i, c) for i in vlist[:rule[1]] for c in self.chunks(i)]
        if rule[0] == "random":
            r = random.Random("%d:%d" % (rule[1], oid))
            pages = {}
            for i in vlist:
                for c in self.chunks(i):
                    pages.setdefault(c[0], []).append((i, c))
            out = []
            for pg in sorted(pages):
                lst = pages[pg]
                out.extend(lst[:r.randint(0, len(lst))])
            return out
        raise ValueError(rule)

    def namespace(self, m):
        """{path: obj id} after the first M metadata ops."""
        ns = {"": 0}
        for mi in range(m):
            op = self.ops[self.meta[mi]]
            k = op.kind
            if k in ("create", "mkdir"):
                ns[op.path] = op.obj
            elif k in ("unlink", "rmdir"):
                ns.pop(op.path, None)
            elif k == "rename":
                moved = [q for q in ns if q == op.path or q.startswith(op.path + "/")]
                for q in [q for q in ns if q == op.path2 or q.startswith(op.path2 + "/")]:
                    del ns[q]
                for q in moved:
                    ns[op.path2 + q[len(op.path):]] = ns.pop(q)
            elif k == "link":
                ns[op.path2] = ns.get(op.path, op.obj)
        return ns

    def content(self, st, oid, vd):
        """The bytes of file OID in state ST: (bytearray, size), the size
        past the bytes being zeros (a preallocated file stays sparse)."""
        o = self.objs[oid]
        d = st.d
        items = []                 # (pos, offset, kind, op or piece)
        for i in o.dops[:d.upto[oid]]:
            items.append(self._item(i))
        for i in o.dops[d.upto[oid]:]:
            op = self.ops[i]
            if op.pos >= st.p:
                break
            if op.kind == "write":
                if i in d.extra:
                    items.append(self._item(i))
            elif op.mi < st.m:         # size ops persist with the metadata prefix
                items.append(self._item(i))
        rule = st.sel.get(oid)
        if rule and oid in vd:
            for i, c in self.selected(oid, rule, vd[oid]):
                items.append((self.ops[i].pos, c[1], "piece", c))
        items.sort(key=lambda x: (x[0], x[1]))
        buf, size = bytearray(), 0
        data = self.trace.buf
        for pos, _, kind, a in items:
            if kind == "write":
                self._put(buf, a.off, data[a.ev.doff:a.ev.doff + a.length])
                size = max(size, a.off + a.length)
            elif kind == "piece":
                _, off, ln, doff = a
                self._put(buf, off, data[doff:doff + ln])
                size = max(size, off + ln)
            elif kind == "trunc":
                del buf[a.length:]
                size = a.length
            elif kind == "falloc":
                if not a.keep:         # FALLOC_FL_KEEP_SIZE
                    size = max(size, a.off + a.length)
        return buf, size

    def _item(self, i):
        op = self.ops[i]
        return (op.pos, op.off, op.kind, op)

    @staticmethod
    def _put(buf, off, b):
        if off > len(buf):
            buf.extend(bytes(off - len(buf)))
        buf[off:off + len(b)] = b

    def materialize(self, st, dest=None):
        """Build state ST: returns its digest, and writes it under DEST when
        given (a fresh directory: the store)."""
        _, _, vd = self.volatile(st.p, st.d)
        ns = self.namespace(st.m)
        h = hashlib.sha256()
        if dest is not None:
            os.makedirs(dest)
        for path in sorted(ns):
            o = self.objs[ns[path]]
            if o.ignore:
                continue
            if o.kind == "d":
                h.update(b"d %s\n" % path.encode())
                if dest is not None and path:
                    os.makedirs(os.path.join(dest, path), exist_ok=True)
                continue
            b, size = self.content(st, o.id, vd)
            h.update(b"f %s %d %s\n" % (path.encode(), size, hashlib.sha256(b).hexdigest().encode()))
            if dest is not None:
                parent = os.path.join(dest, os.path.dirname(path))
                os.makedirs(parent, exist_ok=True)
                with open(os.path.join(dest, path), "wb") as f:
                    f.write(b)
                    f.truncate(size)
        return h.hexdigest()


class State:
    """A crash state: cut before trace position p, D durable, the first m
    metadata ops, and for each object with volatile data a rule: ('all',),
    ('prefix', k) or ('random', seed); absent: none."""
    __slots__ = ("p", "d", "m", "sel")

    def __init__(self, p, d, m, sel):
        self.p, self.d, self.m, self.sel = p, d, m, sel
