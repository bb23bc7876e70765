#!/usr/bin/python3
"""test_plmodel — the power-loss model's rules on synthetic traces: each
case writes a few records as plshim.c would, builds every state the model
gives at the end of the trace, and checks the set of trees they show
against the set the rule in plmodel.py's header implies. powerloss.py runs
these first (a broken model would make every state check meaningless).

  tests/crash/test_plmodel.py        TAP, one line per case
"""

import os
import random
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plmodel  # noqa: E402
import pltrace as T  # noqa: E402

ROOT = "/st"
REG, DIRM = 0o100644, 0o040755


class Tr:
    """A synthetic trace: one call per method, as the shim records it."""

    def __init__(self):
        self.recs = []
        self.fd = 10

    def rec(self, typ, flags=0, fd=-1, ret=0, a=0, b=0, ino=0, p1="", p2="", data=b""):
        p1, p2 = p1.encode(), p2.encode()
        self.recs.append(struct.pack(T.REC_FMT, T.REC_LEN + len(p1) + len(p2) + len(data), typ,
                                     flags, 1, 1, fd, ret, a, b, ino, len(self.recs), len(p1),
                                     len(p2), len(data), 0) + p1 + p2 + data)

    def create(self, path, dsync=False):
        self.fd += 1
        self.rec(T.OPEN, T.F_CREATED, self.fd, a=os.O_CREAT | (os.O_DSYNC if dsync else 0), b=REG,
                 ino=self.fd, p1=ROOT + "/" + path)
        return self.fd

    def opendir(self, path):
        self.fd += 1
        self.rec(T.OPEN, 0, self.fd, b=DIRM, ino=self.fd, p1=ROOT + ("/" + path if path else ""))
        return self.fd

    def write(self, fd, off, data, dsync=False):
        self.rec(T.WRITE, T.F_DSYNC if dsync else 0, fd, a=off, data=data)

    def sync(self, fd, kind=T.SK_FSYNC, ret=0):
        self.rec(T.SYNC_BEGIN, kind, fd)
        self.rec(T.SYNC_END, kind, fd, ret=ret)

    def mkdir(self, path):
        self.rec(T.MKDIR, p1=ROOT + "/" + path)

    def unlink(self, path):
        self.rec(T.UNLINK, p1=ROOT + "/" + path)

    def model(self):
        f = tempfile.NamedTemporaryFile(prefix="plmodel-test.", delete=False)
        f.write(b"".join(self.recs))
        f.close()
        try:
            return plmodel.Model(T.Trace(f.name), ROOT)
        finally:
            os.unlink(f.name)


def trees(m, p=None, nrandom=30):
    """Every tree the model gives at position P (default: the end): a set
    of frozensets of (path, bytes or 'd')."""
    out = set()
    for pos, d in m.crash_points():
        if p is not None and pos != p:
            continue
        if p is None and pos != len(m.trace.events):
            continue
        _, _, vd = m.volatile(pos, d)
        for _, st in m.states(pos, d, random.Random(1), nrandom=nrandom, cap_prefix=100):
            ns = m.namespace(st.m)
            t = []
            for path, oid in ns.items():
                o = m.objs[oid]
                if not path or o.ignore:
                    continue
                if o.kind == "d":
                    t.append((path, "d"))
                else:
                    b, size = m.content(st, oid, vd)
                    t.append((path, bytes(b) + bytes(size - len(b))))
            out.add(frozenset(t))
    return out


def case_fsync_keeps_and_later_write_may_go():
    t = Tr()
    fd = t.create("f")
    t.write(fd, 0, b"aaaa")
    t.sync(fd)
    t.write(fd, 0, b"bb")
    got = {dict(x)["f"] for x in trees(t.model())}
    return got == {b"aaaa", b"bbaa"}, got


def case_metadata_is_a_prefix():
    t = Tr()
    t.mkdir("d")
    fd = t.create("d/x")
    t.mkdir("e")
    t.write(fd, 0, b"x")
    got = {frozenset(p for p, _ in x) for x in trees(t.model())}
    want = {frozenset(), frozenset({"d"}), frozenset({"d", "d/x"}), frozenset({"d", "d/x", "e"})}
    return got == want, sorted(sorted(x) for x in got)


def case_overwrite_flush_commits_no_journal():
    # g is made durable; f is created and synced (journal committed); g is
    # unlinked; f is overwritten in place and fdatasynced: that flush does
    # not commit the journal, so the unlink may be lost...
    t = Tr()
    g = t.create("g")
    t.sync(g)
    f = t.create("f")
    t.write(f, 0, b"1111")
    t.sync(f)
    t.unlink("g")
    t.write(f, 0, b"2222")
    t.sync(f, T.SK_FDATASYNC)
    got = {frozenset(p for p, _ in x) for x in trees(t.model())}
    ok1 = got == {frozenset({"f", "g"}), frozenset({"f"})}
    # ...but a write past the end (a size change) does commit it
    t = Tr()
    g = t.create("g")
    t.sync(g)
    f = t.create("f")
    t.write(f, 0, b"1111")
    t.sync(f)
    t.unlink("g")
    t.write(f, 4, b"2222")
    t.sync(f, T.SK_FDATASYNC)
    got2 = {frozenset(p for p, _ in x) for x in trees(t.model())}
    return ok1 and got2 == {frozenset({"f"})}, (got, got2)


def case_dsync_write_and_failed_sync():
    t = Tr()
    f = t.create("f")
    t.sync(f)
    t.write(f, 0, b"d", dsync=True)       # durable when it returns
    t.write(f, 1, b"v")
    t.sync(f, ret=-5)                     # failed: makes nothing durable
    got = {dict(x)["f"] for x in trees(t.model())}
    return got == {b"d", b"dv"}, got


def case_pages_hold_prefixes():
    # after A (two pages) is synced, B rewrites both pages and C the first:
    # page 0 shows A, B or C (a prefix of B, C), page 1 A or B, each on
    # its own
    t = Tr()
    f = t.create("f")
    t.write(f, 0, b"A" * 8192)
    t.sync(f)
    t.write(f, 0, b"B" * 8192)
    t.write(f, 0, b"C" * 4096)
    got = {dict(x)["f"] for x in trees(t.model(), nrandom=200)}
    pages = {(b[:4096][:1], b[4096:][:1]) for b in got}
    want = {(a, c) for a in (b"A", b"B", b"C") for c in (b"A", b"B")}
    return pages == want and all(len(b) == 8192 for b in got), sorted(pages)


def case_append_is_never_garbage():
    t = Tr()
    f = t.create("f")
    t.write(f, 0, b"x" * 10)
    t.sync(f)
    t.write(f, 10, b"y" * 5000)
    got = {dict(x)["f"] for x in trees(t.model(), nrandom=200)}
    ok = all(b[:10] == b"x" * 10 and set(b[10:]) <= {ord("y"), 0} for b in got)
    sizes = {len(b) for b in got}
    return ok and sizes == {10, 4096, 5010}, sorted(sizes)


def case_syncfs_covers_everything():
    t = Tr()
    t.mkdir("d")
    f = t.create("d/f")
    t.write(f, 0, b"z")
    r = t.opendir("")
    t.sync(r, T.SK_SYNCFS)
    got = trees(t.model())
    return got == {frozenset({("d", "d"), ("d/f", b"z")})}, got


def case_dir_fsync_forces_earlier_ops():
    t = Tr()
    t.mkdir("a")
    t.create("a/x")
    t.mkdir("b")
    d = t.opendir("a")
    t.sync(d)
    t.mkdir("c")
    got = {frozenset(p for p, _ in x) for x in trees(t.model())}
    want = {frozenset({"a", "a/x", "b"}), frozenset({"a", "a/x", "b", "c"})}
    return got == want, sorted(sorted(x) for x in got)


CASES = [
    ("an fsync keeps what was written before it; a later write may or may not persist",
     case_fsync_keeps_and_later_write_may_go),
    ("unsynced metadata persists as a prefix of its order", case_metadata_is_a_prefix),
    ("fdatasync of an overwritten file commits no journal; one past the end does",
     case_overwrite_flush_commits_no_journal),
    ("an O_DSYNC write is durable; a failed fsync makes nothing durable",
     case_dsync_write_and_failed_sync),
    ("each 4 KiB page holds a prefix of its unsynced writes", case_pages_hold_prefixes),
    ("an unsynced append persists page by page, never as garbage", case_append_is_never_garbage),
    ("syncfs makes everything durable", case_syncfs_covers_everything),
    ("an fsync of a folder commits every metadata call before it", case_dir_fsync_forces_earlier_ops),
]


def run(out, first=1):
    """Print one TAP line per case, numbered from FIRST. Returns the
    number failed."""
    failed = 0
    for i, (name, fn) in enumerate(CASES, first):
        try:
            ok, got = fn()
        except Exception as e:      # a crash of the model is a failure too
            ok, got = False, repr(e)
        out.write("%s %d - model: %s\n" % ("ok" if ok else "not ok", i, name))
        if not ok:
            out.write("# got: %s\n" % (got,))
            failed += 1
    return failed


if __name__ == "__main__":
    sys.stdout.write("1..%d\n" % len(CASES))
    sys.exit(1 if run(sys.stdout) else 0)
