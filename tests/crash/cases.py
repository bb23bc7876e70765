"""cases — deterministic crash cases. Each one kills the daemon at one named
step, through PAYLOADFS_FAULT=point:N:KILL (cache/fault.h), and checks the
recovered store exactly:

  * the operation returned a crash errno (ENOTCONN / ECONNABORTED) and the
    daemon died by SIGKILL at that point (its log says so);
  * the crashed store (before any mount) passes fsck and shows what that
    step leaves: unreferenced images, a temporary image, a staging file,
    an orphan;
  * after the remount: every object is the old or the new content as that
    step implies (before the index txn commits: old; after: new), fsck is
    clean with no unreferenced image, no staging or temporary file is left,
    and the images on disk are exactly those the objects list (an orphan
    that kept its images would show up there).

The steps: commit.c (3) images written (frag_write, commit_txn; with
-o sync frag_fsync), (4) the txn (lmdb_commit, lmdb_committed), (6)
release (commit_release, frag_release), for rewrites, appends, @rows=
views, truncates and format re-cuts; staging spill (staging_spill,
staging_write); rmdir, unlink and rename over an object (lmdb_commit,
lmdb_committed); and the mount's own sweep (sweep_staging, lmdb_commit:1,
lmdb_committed:1, sweep_frag) on a store a crash left dirty.
"""

import os
import shutil
import tempfile
import time

from crashlib import (CRASH_ERRNOS, DIR, Mount, MountError, count_images, fsck, hash_bytes,
                      leftovers, read_tree)

# No flush of the index by the syncer's timer during a case, and no worker
# threads (encodes and puts one after the other): the Nth hit of a point,
# and what is on disk then, must not depend on timing. fsync(2) and
# unmount still flush (store_sync, index/durable.c).
OPTS = "fragment_size=16K,spill_size=64K,sync_ms=600000,threads=0"
REC = 32


class CaseFailed(Exception):
    pass


def csv(rows, seed, header=b"id,val\n"):
    out = [header]
    for i in range(rows):
        out.append(b"%d,%d,%s\n" % (seed, i, (b"%08x" % ((i * 2654435761 + seed) & 0xffffffff)) * (1 + i % 9)))
    return b"".join(out)


def recs(n, seed):
    return b"".join(b"%010d,%020d\n" % (seed, i) for i in range(n))


class Ctx:
    """One case: its own store, mount point and daemon log."""

    def __init__(self, build, name):
        self.build = build
        self.tmp = tempfile.mkdtemp(prefix="pfs-crashcase.", dir=os.environ.get("TMPDIR", "/tmp"))
        self.store = os.path.join(self.tmp, "store")
        self.mnt = os.path.join(self.tmp, "mnt")
        self.work = os.path.join(self.tmp, "work")
        for d in (self.store, self.mnt, self.work):
            os.mkdir(d)
        self.m = None
        self.notes = []

    def p(self, rel):
        return os.path.join(self.mnt, rel)

    def check(self, cond, msg):
        if not cond:
            raise CaseFailed(msg)

    def mount(self, fault=None, opts=""):
        m = Mount(self.build, self.store, self.mnt, self.work, OPTS + opts, fault)
        if not m.start():
            raise CaseFailed("mount%s failed: %s" % (" with " + fault if fault else "", m.error))
        self.m = m
        return m

    def unmount(self):
        end = self.m.unmount()
        self.m = None
        self.check(end == "exit 0", "clean unmount: the daemon ended with %s" % end)
        reps = Mount(self.build, self.store, self.mnt, self.work).sanitizer_reports()
        self.check(not reps, "sanitizer reports: %s" % reps)

    def fsck(self, when):
        rc, lines, unref = fsck(self.build, self.store)
        self.check(rc == 0, "fsck %s: exit %d: %s" % (when, rc, " | ".join(lines[-8:])))
        return unref

    def write(self, rel, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
        fd = os.open(self.p(rel), flags, 0o644)
        try:
            mv = memoryview(data)
            while mv:
                mv = mv[os.write(fd, mv[:65536]):]
        finally:
            os.close(fd)

    def frags(self, rel):
        return int(os.getxattr(self.p(rel), "user.payload.fragments"))

    def crash(self, fault, op, may_succeed=False, opts=""):
        """Mount with FAULT armed, run OP(ctx) (it must fail with a crash
        errno; with MAY_SUCCEED it may also return: the point is reached
        after the reply, in the FUSE release that follows close), make sure
        the fault killed the daemon, unmount the dead mount. Returns the
        unreferenced-image count fsck sees then."""
        m = self.mount(fault, opts)
        err = None
        try:
            op(self)
        except OSError as e:
            err = e
        deadline = time.monotonic() + 20
        while m.alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if m.alive():
            self.unmount()
            raise CaseFailed("%s: the fault point was never reached (the operation %s)" % (
                fault, "failed: %s" % err if err else "succeeded"))
        point = fault.split(":")[0]
        self.check(m.died_by() == "SIGKILL" and m.fault_fired(point),
                   "%s: the daemon ended with %s, fault fired: %s" % (fault, m.died_by(), m.fault_fired(point)))
        self.check((err is None and may_succeed) or (err is not None and err.errno in CRASH_ERRNOS),
                   "%s: the operation returned %s, not a crash errno" % (fault, err or "success"))
        m.unmount(dead=True)
        self.m = None
        return self.fsck("of the crashed store")

    def recover(self, expect):
        """Mount, check the sweep's work and that the tree is EXPECT:
        {path: bytes | DIR | (bytes, format)}; unmount; fsck."""
        self.mount()
        self.check(self.fsck("after the remount") == 0, "unreferenced images after the remount")
        left = leftovers(self.store)
        self.check(not left, "not swept at mount: %s" % left)
        tree = read_tree(self.mnt)
        want = {}
        for p, v in expect.items():
            if v == DIR:
                want[p] = DIR
            elif isinstance(v, tuple):
                want[p] = [hash_bytes(v[0]), v[1], None]
            else:
                want[p] = [hash_bytes(v), "lines", None]
        if tree != want:
            bad = sorted(p for p in set(tree) | set(want) if tree.get(p) != want.get(p))
            raise CaseFailed("recovered tree differs at %s: %s" % (
                bad, "; ".join("%s: want %s got %s" % (p, str(want.get(p))[:30], str(tree.get(p))[:30])
                               for p in bad[:4])))
        files = [p for p, v in tree.items() if v != DIR]
        listed = sum(self.frags(p) for p in files)
        on_disk = self.count_images()
        self.check(listed == on_disk, "%d images on disk, the objects list %d (an orphan kept its "
                   "images?)" % (on_disk, listed))
        self.unmount()
        self.fsck("after the clean unmount")

    def count_images(self):
        return count_images(self.store)

    def close(self):
        if self.m:
            try:
                self.m.unmount(dead=not self.m.alive())
            except MountError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- the set-up every data case starts from ----

BIG = csv(4000, 1)          # 190 KiB: a dozen 16 KiB fragments
BIG2 = csv(4400, 2)
SMALL = csv(20, 3)          # inline
REC0 = recs(2048, 4)        # 64 KiB of 32-byte records


def base(c):
    c.mount()
    os.mkdir(c.p("d"))
    c.write("big.csv", BIG)
    c.write("small.csv", SMALL)
    c.write("d/rec.dat", REC0)
    c.write("d/other.csv", BIG2)
    os.mkdir(c.p("d/empty"))
    c.nbig = c.frags("big.csv")
    c.check(c.nbig >= 10, "big.csv has only %d fragments" % c.nbig)
    c.unmount()


def tree0(**change):
    t = {"big.csv": BIG, "small.csv": SMALL, "d": DIR, "d/rec.dat": REC0, "d/other.csv": BIG2,
         "d/empty": DIR}
    for k, v in change.items():
        k = k.replace("__", "/").replace("_dot_", ".")
        if v is None:
            t.pop(k, None)
        else:
            t[k] = v
    return t


def close_quietly(fd):
    """close(2) FD, ignoring its error (the daemon may be dead)."""
    try:
        os.close(fd)
    except OSError:
        pass


def rewrite_big(c):
    c.write("big.csv", BIG2, os.O_WRONLY | os.O_TRUNC)


def fsync_dir(c):
    """fsync(2) of the root directory: a flush of the index (store_sync)."""
    fd = os.open(c.mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        close_quietly(fd)


def fsync_dir_until_dead(c, secs=15):
    """fsync_dir again and again until the daemon is dead. The old images
    of a rewrite are freed when the last pin of the old version goes, which
    may be in the FUSE release that the kernel sends after close(2) has
    returned: a release after the flush's start waits for the next flush
    (durable.c (1b)), and the case's sync_ms is 600 s."""
    deadline = time.monotonic() + secs
    while c.m.alive() and time.monotonic() < deadline:
        fsync_dir(c)
        time.sleep(0.02)


def fsync_write(c, rel, data):
    """Rewrite REL and fsync it before the close (the fsync commits, then
    flushes the index)."""
    fd = os.open(c.p(rel), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        close_quietly(fd)


APPEND = b"".join(b"4001,%d,appended\n" % i for i in range(100))
VIEW = b"id,val,new\n" + b"".join(b"v,%d\n" % i for i in range(30))


def view_result():
    lines = BIG.splitlines(keepends=True)
    rows = lines[1:]
    rows[100:200] = VIEW.splitlines(keepends=True)[1:]
    return VIEW.splitlines(keepends=True)[0] + b"".join(rows)


def data_case(name, fault, op, want, crashed=None, may_succeed=False, opts=""):
    """A case on the base store: OP under FAULT (mount options OPTS added),
    then WANT (the tree)."""
    def run(c):
        base(c)
        unref = c.crash(fault, op, may_succeed, opts)
        if crashed:
            crashed(c, unref)
        c.recover(want)
    return (name, run)


def unref_is(n_fn, what):
    def chk(c, unref):
        n = n_fn(c)
        c.check(unref == n, "crashed store: %d unreferenced images, expected %d (%s)" % (unref, n, what))
    return chk


def unref_at_least(n, what):
    def chk(c, unref):
        c.check(unref >= n, "crashed store: %d unreferenced images, expected >= %d (%s)" % (unref, n, what))
    return chk


def one_staging_file(c, unref):
    st = [x for x in leftovers(c.store) if x.startswith("staging/")]
    c.check(len(st) == 1, "crashed store: %d staging files, expected 1" % len(st))


NEW_BIG = tree0(big_dot_csv=BIG2)
OLD = tree0()

CASES = [
    # images are written in place (O_EXCL): frag_write fires after the
    # third image's file was created, so it is left empty under its name
    data_case("rewrite, killed writing its third image (frag_write:3)", "frag_write:3:KILL",
              rewrite_big, OLD, unref_is(lambda c: 3, "two images and an empty one")),
    data_case("rewrite, images durable, index txn not begun (commit_txn:1)", "commit_txn:1:KILL",
              rewrite_big, OLD, unref_at_least(10, "every new image")),
    data_case("rewrite, killed inside the index txn (lmdb_commit:2)", "lmdb_commit:2:KILL",
              rewrite_big, OLD, unref_at_least(10, "every new image")),
    data_case("rewrite, index txn committed, nothing released (lmdb_committed:2)",
              "lmdb_committed:2:KILL", rewrite_big, NEW_BIG,
              unref_is(lambda c: c.nbig, "every old image")),
    data_case("rewrite, committed, old images not released (commit_release:1)", "commit_release:1:KILL",
              rewrite_big, NEW_BIG, unref_is(lambda c: c.nbig, "every old image")),
    # old images are deleted once a flush of the index covers their
    # release (here the one an fsync of the root asks for), by the reaper
    # thread: the fsync may have returned when the kill comes
    data_case("rewrite, killed while deleting old images (frag_release:3)", "frag_release:3:KILL",
              lambda c: (rewrite_big(c), fsync_dir_until_dead(c)), NEW_BIG,
              unref_is(lambda c: c.nbig - 2, "old images not yet deleted"), may_succeed=True),
    data_case("append, images durable, txn not begun (commit_txn:1)", "commit_txn:1:KILL",
              lambda c: c.write("big.csv", APPEND, os.O_WRONLY | os.O_APPEND), OLD,
              unref_at_least(1, "the new tail")),
    data_case("append, committed, not released (commit_release:1)", "commit_release:1:KILL",
              lambda c: c.write("big.csv", APPEND, os.O_WRONLY | os.O_APPEND),
              tree0(big_dot_csv=BIG + APPEND)),
    data_case("@rows=100:200 view write, txn not begun (commit_txn:1)", "commit_txn:1:KILL",
              lambda c: c.write("big.csv@rows=100:200", VIEW, os.O_WRONLY | os.O_TRUNC), OLD),
    data_case("@rows=100:200 view write, txn committed (lmdb_committed:2)", "lmdb_committed:2:KILL",
              lambda c: c.write("big.csv@rows=100:200", VIEW, os.O_WRONLY | os.O_TRUNC),
              tree0(big_dot_csv=view_result())),
    data_case("truncate, killed inside the txn (lmdb_commit:2)", "lmdb_commit:2:KILL",
              lambda c: os.truncate(c.p("big.csv"), 100001), OLD),
    data_case("truncate, txn committed (lmdb_committed:2)", "lmdb_committed:2:KILL",
              lambda c: os.truncate(c.p("big.csv"), 100001), tree0(big_dot_csv=BIG[:100001])),
    data_case("format lines -> fixed:32, killed re-cutting (frag_write:2)", "frag_write:2:KILL",
              lambda c: os.setxattr(c.p("d/rec.dat"), "user.payload.format", b"fixed:32"), OLD,
              unref_is(lambda c: 2, "one re-cut image and an empty one")),
    data_case("format lines -> fixed:32, committed, not released (commit_release:1)",
              "commit_release:1:KILL",
              lambda c: os.setxattr(c.p("d/rec.dat"), "user.payload.format", b"fixed:32"),
              tree0(d__rec_dot_dat=(REC0, "fixed:32")), unref_at_least(4, "the old lines images")),
    data_case("staging spill of a 190 KiB rewrite (staging_spill:1)", "staging_spill:1:KILL",
              lambda c: c.write("d/other.csv", BIG, os.O_WRONLY | os.O_TRUNC), OLD, one_staging_file),
    data_case("writes after the spill (staging_write:3)", "staging_write:3:KILL",
              lambda c: c.write("d/other.csv", BIG, os.O_WRONLY | os.O_TRUNC), OLD, one_staging_file),
    data_case("rename over an object, inside the txn (lmdb_commit:2)", "lmdb_commit:2:KILL",
              lambda c: os.rename(c.p("d/other.csv"), c.p("big.csv")), OLD),
    data_case("rename over an object, txn committed: the replaced one is an orphan (lmdb_committed:2)",
              "lmdb_committed:2:KILL", lambda c: os.rename(c.p("d/other.csv"), c.p("big.csv")),
              tree0(big_dot_csv=BIG2, d__other_dot_csv=None)),
    data_case("rmdir, inside the txn (lmdb_commit:2)", "lmdb_commit:2:KILL",
              lambda c: os.rmdir(c.p("d/empty")), OLD),
    data_case("rmdir, txn committed (lmdb_committed:2)", "lmdb_committed:2:KILL",
              lambda c: os.rmdir(c.p("d/empty")), tree0(d__empty=None)),
    data_case("unlink, txn committed (lmdb_committed:2)", "lmdb_committed:2:KILL",
              lambda c: os.unlink(c.p("big.csv")), tree0(big_dot_csv=None)),
    # the flush of an fsync (index/durable.c): the commit before it is
    # there after a daemon crash
    data_case("fsync's flush of the index, killed (lmdb_sync:1)", "lmdb_sync:1:KILL",
              lambda c: fsync_write(c, "big.csv", BIG2), NEW_BIG),
    # -o sync: a second flush per commit, images deleted as soon as no handle
    # pins them: the writer's handle pins the old version until its FUSE
    # release, which comes after close(2) returned, so close may succeed
    data_case("-o sync: rewrite, images durable, txn not begun (commit_txn:1)", "commit_txn:1:KILL",
              rewrite_big, OLD, unref_at_least(10, "every new image"), opts=",sync"),
    data_case("-o sync: rewrite, killed syncing its images (frag_fsync:5)", "frag_fsync:5:KILL",
              rewrite_big, OLD, unref_at_least(10, "every new image, written"), opts=",sync"),
    data_case("-o sync: rewrite, killed while deleting old images (frag_release:3)",
              "frag_release:3:KILL", rewrite_big, NEW_BIG,
              unref_is(lambda c: c.nbig - 2, "old images not yet deleted"), may_succeed=True,
              opts=",sync"),
]


# ---- an open, unlinked storage=memory object (the sweep used to fail) ----

def memory_orphan(c):
    c.mount()
    os.mkdir(c.p("mem"))
    os.setxattr(c.p("mem"), "user.payload.storage", b"memory")
    c.write("mem/m.csv", BIG)
    c.write("mem/keep.csv", SMALL)
    fd = os.open(c.p("mem/m.csv"), os.O_RDONLY)
    os.unlink(c.p("mem/m.csv"))
    c.m.kill()
    c.m.wait_exit()
    close_quietly(fd)
    c.m.unmount(dead=True)
    c.m = None
    c.fsck("of the crashed store")
    c.recover({"mem": DIR, "mem/keep.csv": b""})


CASES.append(("an open, unlinked storage=memory object at the crash: the store mounts again",
              memory_orphan))


def killed_memory_commit(c):
    """Killed committing to a storage=memory object: its bytes lived in the
    dead daemon, so it comes back empty; disk objects keep theirs."""
    c.mount()
    os.mkdir(c.p("mem"))
    os.setxattr(c.p("mem"), "user.payload.storage", b"memory")
    c.write("mem/m.csv", BIG)
    c.write("big.csv", BIG2)
    c.unmount()
    m = c.mount("lmdb_commit:3:KILL")        # 1: the mount's sweep, 2: the write, 3: the append
    c.write("mem/m.csv", BIG2)               # lives in this daemon's memory only
    try:
        c.write("mem/m.csv", b"x\n", os.O_WRONLY | os.O_APPEND)
        raise CaseFailed("the append's commit survived lmdb_commit:3:KILL")
    except OSError as e:
        c.check(e.errno in CRASH_ERRNOS, "the append failed with %s" % e)
    m.wait_exit()
    m.unmount(dead=True)
    c.m = None
    c.check(m.died_by() == "SIGKILL" and m.fault_fired("lmdb_commit"), "not killed by the fault")
    c.fsck("of the crashed store")
    c.recover({"mem": DIR, "mem/m.csv": b"", "big.csv": BIG2})


def killed_closing(c):
    """The daemon empties storage=memory objects in one txn when it closes
    the store; killed there (the kernel has let go of the mount already),
    the next mount's sweep does it."""
    c.mount()
    os.mkdir(c.p("mem"))
    os.setxattr(c.p("mem"), "user.payload.storage", b"memory")
    c.unmount()
    m = c.mount("lmdb_commit:4:KILL")        # 1: the sweep, 2: create, 3: its commit, 4: the close's
    c.write("mem/m.csv", BIG)
    end = m.unmount()
    c.m = None
    c.check(end == "SIGKILL" and m.fault_fired("lmdb_commit"), "the daemon ended with %s" % end)
    c.fsck("of the store killed at close")
    c.recover({"mem": DIR, "mem/m.csv": b""})


CASES += [
    ("killed committing a storage=memory append: memory objects come back empty", killed_memory_commit),
    ("killed in the close's own txn (emptying storage=memory objects)", killed_closing),
]


# ---- the mount's own sweep, on a store a crash left dirty ----

def dirty(c):
    """base(), then one daemon leaves: a staging file (an open writer past
    the spill size), an orphan with images (an open, unlinked object) and
    unreferenced old images (killed after a commit, before its release)."""
    base(c)
    m = c.mount("commit_release:2:KILL")      # 1: victim.csv, 2: the rewrite
    w = os.open(c.p("d/other.csv"), os.O_WRONLY | os.O_TRUNC)
    os.write(w, BIG * 2)                         # spilled, never committed
    r = os.open(c.p("small.csv"), os.O_RDONLY)
    c.write("victim.csv", BIG2)
    v = os.open(c.p("victim.csv"), os.O_RDONLY)
    os.unlink(c.p("victim.csv"))
    try:
        rewrite_big(c)
        raise CaseFailed("the rewrite survived commit_release:2:KILL")
    except OSError as e:
        c.check(e.errno in CRASH_ERRNOS, "the rewrite failed with %s" % e)
    for fd in (w, r, v):
        close_quietly(fd)
    m.wait_exit()
    c.check(m.fault_fired("commit_release"), "commit_release did not fire")
    m.unmount(dead=True)
    c.m = None
    c.check(c.fsck("of the dirty store") >= c.nbig, "the dirty store lacks unreferenced images")
    c.check(any(x.startswith("staging/") for x in leftovers(c.store)), "the dirty store has no staging file")


def sweep_case(name, fault, after):
    def run(c):
        dirty(c)
        m = Mount(c.build, c.store, c.mnt, c.work, OPTS, fault)
        c.check(not m.start(), "the mount with %s succeeded (the sweep never reached it)" % fault)
        c.check(m.died_by() == "SIGKILL" and m.fault_fired(fault.split(":")[0]),
                "the mount with %s failed, but not by the fault (%s): %s" % (fault, m.died_by(), m.error))
        c.check(not crashed_mount(c), "a mount is left behind")
        unref = c.fsck("after the crash during the sweep")
        if after:
            after(c, unref)
        c.recover(NEW_BIG)
    return (name, run)


def crashed_mount(c):
    from crashlib import is_mounted
    return is_mounted(c.mnt)


def staging_kept(c, unref):
    c.check(any(x.startswith("staging/") for x in leftovers(c.store)),
            "killed before removing it, the staging file is gone")


def orphan_freed(c, unref):
    c.check(unref >= c.nbig + 10, "the orphan's images are not unreferenced yet (%d)" % unref)


CASES += [
    sweep_case("sweep, killed removing staging files (sweep_staging:1)", "sweep_staging:1:KILL",
               staging_kept),
    sweep_case("sweep, killed inside its index txn (lmdb_commit:1)", "lmdb_commit:1:KILL", None),
    sweep_case("sweep, orphans freed, their images not yet deleted (lmdb_committed:1)",
               "lmdb_committed:1:KILL", orphan_freed),
    sweep_case("sweep, killed removing unreferenced images (sweep_frag:3)", "sweep_frag:3:KILL", None),
]


def run_all(cases, args, out, tap, ctx_class=Ctx, first=1):
    """Run CASES, each in a CTX_CLASS; one TAP line each (numbered from
    FIRST). Returns (n, failed)."""
    failed = 0
    build = os.path.abspath(args.build)
    for i, (name, fn) in enumerate(cases, first):
        c = ctx_class(build, name)
        t0 = time.monotonic()
        err = None
        try:
            fn(c)
        except (CaseFailed, MountError, OSError) as e:
            err = e
        finally:
            log = c.m.log_tail(15) if c.m else []
            if err is not None and not log:
                log = Mount(build, c.store, c.mnt, c.work).log_tail(15)
            c.close()
        secs = time.monotonic() - t0
        if tap:
            print("%s %d - crash case: %s [%.1fs]" % ("not ok" if err else "ok", i, name, secs),
                  file=out, flush=True)
        elif err:
            print("# FAILED: %s" % name, file=out)
        if err:
            failed += 1
            print("#   %s" % err, file=out)
            for ln in log:
                print("#   log: " + ln.rstrip(), file=out)
    if not tap:
        print("# crash cases: %d run, %d failed" % (len(cases), failed), file=out, flush=True)
    return len(cases), failed
