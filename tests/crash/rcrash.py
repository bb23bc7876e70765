"""rcrash — the crash harness's oracle over a RADOS store (crash.py --rados).

For a RADOS store the commit point is the cluster (docs/rados.md "The
index log"): close(2) and fsync(2) return only once the commit's images and
its log entry are durable in RADOS, and the writer's local LMDB is a cache
of that log. So after a kill -9 of the writer, the oracle of oracle.py
(every acknowledged step is there with its exact bytes, the operation cut
short is old or new as a whole, nothing else changed) must hold

  (a) when the same STORE is mounted again (the host restarted: its own
      lease is taken back at once, the local LMDB catches up from the log),
  (b) when ANOTHER, fresh STORE takes over (`payloadctl init --rados
      POOL/NAME --takeover --force`, the writer's host died): its local
      index is rebuilt from the newest base and the log alone, and
  (c) on a follower mounted alongside for the whole run (its own STORE):
      once the recovered writer is idle, the follower's tree converges to
      the tree the oracle accepted (within FOLLOWER_WAIT seconds).

Rounds (RadosHarness, the rounds of crash.py with these changes): the
store lives in a namespace of its own of the cluster named by
PFS_CEPH_CONF and PFS_RADOS_POOL (tests/rados/cluster.sh env), purged at
the end; crashes alternate between (a) and (b) (the odd ones remount, the
even ones take over; the old STORE directory is deleted, as the dead
host's disk would be); the fault points are crash.py's that exist on a
RADOS store plus the log's own (rlog_append: killed before the entry is
sent — the old version; rlog_appended: the entry is durable, the local
LMDB not committed — the new version, from the log). The image count
check compares the objects' fragments with the image objects of the
namespace; a sweep a follower deferred ("left to a later sweep") may leave
unreferenced images, which must then be exactly those fsck reports.

Cases (RADOS_CASES): the deterministic fault-point cases of cases.py that
make sense on RADOS, plus the log's own points, each recovered by a remount
of the same STORE or by a takeover (the three about the log's commit point
both ways, the others one way in turn), and then read by a follower made
from scratch (base and log); cases about local files (an image left empty
on disk by a torn write, counts of unreferenced image files, the sweep's
own fault points on local files) are not run here. One more case: a sweep
that a follower's open file defers, then new commits.

Nothing is signalled but daemons this process started (their pidfiles).
"""

import os
import re
import shutil
import subprocess
import time

import crash
import cases
from cases import BIG, BIG2, NEW_BIG, OLD, CaseFailed, Ctx, rewrite_big, tree0
from crashlib import Mount, MountError, read_tree

# Fault points on a RADOS writer: (point, lowest N, highest N).
RADOS_KILL_POINTS = [
    ("frag_write", 1, 300), ("frag_fsync", 1, 100),
    ("commit_txn", 1, 60), ("lmdb_commit", 1, 80), ("lmdb_committed", 1, 80),
    ("rlog_append", 1, 80), ("rlog_appended", 1, 80), ("rlog_appended", 1, 20),
    ("commit_release", 1, 60), ("frag_release", 1, 200),
    ("staging_write", 1, 400), ("staging_spill", 1, 6),
    ("lmdb_sync", 1, 12),
]
FOLLOWER_WAIT = 30          # s for a follower to reach the recovered tree
IMAGES_WAIT = 15            # s for the reaper to delete what it released


class NoCluster(Exception):
    pass


class Cluster:
    """The test cluster (PFS_CEPH_CONF, PFS_RADOS_POOL): namespaces made
    for this run, counted and purged through librados (python3-rados)."""

    def __init__(self):
        self.conf = os.environ.get("PFS_CEPH_CONF", "")
        self.pool = os.environ.get("PFS_RADOS_POOL", "")
        if not self.conf or not self.pool:
            raise NoCluster("no Ceph cluster: PFS_CEPH_CONF and PFS_RADOS_POOL are not set "
                            "(tests/rados/cluster.sh env; make check starts one)")
        try:
            import rados
        except ImportError as e:
            raise NoCluster("python3-rados is missing (run with /usr/bin/python3): %s" % e)
        self.c = rados.Rados(conffile=self.conf, conf={"client_mount_timeout": "30",
                                                       "rados_osd_op_timeout": "30",
                                                       "rados_mon_op_timeout": "30"})
        try:
            self.c.connect()
            self.io = self.c.open_ioctx(self.pool)
        except Exception as e:
            raise NoCluster("cannot reach the cluster of %s, pool %s: %s" % (self.conf, self.pool, e))
        self.spaces = []
        self.n = 0

    def new_ns(self, label):
        self.n += 1
        ns = "crash-%s-%d-%d-%d" % (label, os.getpid(), time.time_ns() % 10**9, self.n)
        self.spaces.append(ns)
        return ns

    def images(self, ns):
        self.io.set_namespace(ns)
        return sum(1 for o in self.io.list_objects() if re.match(r"^[0-9a-f]{16}$", o.key))

    def purge(self, ns):
        self.io.set_namespace(ns)
        comps = [self.io.aio_remove(o.key) for o in self.io.list_objects()]
        for comp in comps:
            comp.wait_for_complete()

    def close(self, keep=False):
        if not keep:
            for ns in self.spaces:
                try:
                    self.purge(ns)
                except Exception as e:
                    print("# rcrash: purging namespace %s: %s" % (ns, e), flush=True)
        self.io.close()
        self.c.shutdown()


def rinit(build, cluster, ns, role, store, *extra):
    """payloadctl init --ROLE POOL/NS STORE. Returns "" or the error."""
    p = subprocess.run([os.path.join(build, "payloadctl"), "init", "--" + role,
                        "%s/%s" % (cluster.pool, ns), "--ceph-conf", cluster.conf] + list(extra) +
                       [store], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        return "payloadctl init --%s %s %s: exit %d: %s" % (role, " ".join(extra), store, p.returncode,
                                                          (p.stdout + p.stderr).strip())
    return ""


class RMount(Mount):
    """A payloadfs daemon next to others this process started (the
    follower): reaping a writer that died in its start-up must not take
    the follower's exit status, nor wait for it."""
    others = ()

    def reap_strays(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                if self.status is not None:
                    return
                time.sleep(0.01)
                continue
            other = [m for m in self.others if m.pid == pid]
            if other:
                other[0].status = st      # a follower died: its check says so
            else:
                self.status = st


class RadosHarness(crash.Harness):
    mount_class = RMount

    def __init__(self, args, out, cluster, label="rounds"):
        super().__init__(args, out)
        self.cluster = cluster
        self.ns = cluster.new_ns(label)
        self.gen = 0
        self.kill_points = RADOS_KILL_POINTS
        self.crashes = self.remounts = self.takeovers = 0
        self.deferred = self.converged = 0
        self.left_unref = 0
        self.log_pos = 0
        self.pending = False      # a deferred sweep left images, none full since
        self.follower = None
        self.fstore = os.path.join(self.tmp, "follower.store")
        self.fmnt = os.path.join(self.tmp, "follower.mnt")
        self.fwork = os.path.join(self.tmp, "follower.work")
        for d in (self.fmnt, self.fwork):
            os.mkdir(d)

    def init(self, role, store, *extra):
        err = rinit(self.build, self.cluster, self.ns, role, store, *extra)
        if err:
            raise crash.RoundFailed([err])

    def new_mount(self, fault=None):
        m = super().new_mount(fault)
        m.others = [self.follower] if self.follower else []
        return m

    def setup(self):
        self.init("rados", self.store)
        if self.args.follower:
            self.init("follow", self.fstore)
            f = RMount(self.build, self.fstore, self.fmnt, self.fwork)
            if not f.start():
                raise crash.RoundFailed(["the follower's mount failed: %s" % f.error])
            self.follower = f
        super().setup()

    def after_crash(self, r, rng):
        """Odd crashes: the same STORE is mounted again; even ones: a new
        STORE takes over (the dead host's directory is deleted)."""
        self.crashes += 1
        how = self.args.recovery
        if how == "remount" or (how == "alternate" and self.crashes % 2):
            self.remounts += 1
            return
        old = self.store
        self.gen += 1
        self.store = os.path.join(self.tmp, "store.%d" % self.gen)
        self.init("rados", self.store, "--takeover", "--force")
        shutil.rmtree(old)
        self.takeovers += 1
        if self.args.verbose:
            self.say("round %d: %s took over" % (r, self.store))

    def count_images(self):
        return self.cluster.images(self.ns)

    def sweeps_seen(self):
        """Read the writers' log (every mount of the run appends to it) up
        to its last mount: each mount's start ends with "serving", and
        before that its sweep said whether it deleted unreferenced images
        (an unclean start: the sweep; "closed cleanly": no sweep of images;
        "left to a later sweep": a follower deferred it). Sets
        self.pending: unreferenced images may remain from a deferred sweep,
        no full sweep since."""
        try:
            with open(os.path.join(self.work, "daemon.log"), errors="replace") as f:
                f.seek(self.log_pos)
                text = f.read()
        except OSError:
            return
        seg = []
        for ln in text.splitlines(keepends=True):
            seg.append(ln)
            if "payloadfs: info: serving " not in ln:
                continue
            block = "".join(seg)
            if "left to a later sweep" in block:
                self.pending = True
                self.deferred += 1
            elif "closed cleanly: the sweep looks at staging/ and the orphans only" not in block:
                self.pending = False     # an unclean start: the full sweep ran
            self.log_pos += len(block.encode())
            seg = []

    def fsck(self, when, mounted=False):
        unref = super().fsck(when)
        if not mounted:
            return unref
        self.left_unref = 0
        self.sweeps_seen()
        if unref:
            # the writer's sweep deletes unreferenced images only when no
            # live follower may still read one (docs/rados.md); they stay
            # until a later sweep (after an unclean stop) deletes them
            if self.follower and self.pending:
                self.left_unref = unref
            else:
                rc, lines, _ = crash.fsck(self.build, self.store)
                raise crash.RoundFailed(["fsck %s: %d unreferenced images after the mount's sweep" %
                                         (when, unref)] + lines[-30:])
        return unref

    def images_problems(self, listed, on_disk):
        """The namespace holds the images the objects list, plus the
        unreferenced ones a deferred sweep left (fsck counted them); images
        released since wait for the follower's horizon and then the reaper."""
        want = listed + self.left_unref
        deadline = time.monotonic() + IMAGES_WAIT
        while on_disk != want and time.monotonic() < deadline:
            time.sleep(0.1)
            on_disk = self.count_images()
        if on_disk != want:
            return ["%d images in the namespace, the objects list %d, %d left unreferenced by a "
                    "deferred sweep (an orphan the sweep missed, or an image lost?)" % (
                        on_disk, listed, self.left_unref)]
        return []

    def after_check(self, r):
        f = self.follower
        if not f:
            return []
        if not f.alive():
            return ["the follower's daemon ended (%s)" % f.died_by()] + f.log_tail(20)
        deadline = time.monotonic() + FOLLOWER_WAIT
        while True:
            bad = []
            for k in range(self.args.workers):
                try:
                    t = read_tree(os.path.join(self.fmnt, "w%d" % k))
                except OSError as e:
                    bad.append("worker %d: reading the follower's tree: %s" % (k, e))
                    continue
                if t != self.prev[k]:
                    diff = sorted(p for p in set(t) | set(self.prev[k]) if t.get(p) != self.prev[k].get(p))
                    bad.append("worker %d: the follower differs at %s" % (k, diff[:8]))
            if not bad:
                self.converged += 1
                return []
            if time.monotonic() > deadline:
                return (["round %d: the follower did not reach the recovered tree in %d s" % (
                    r, FOLLOWER_WAIT)] + bad + ["follower log: " + ln.rstrip() for ln in f.log_tail(15)])
            time.sleep(0.1)

    def failure(self, r, e):
        super().failure(r, e)
        self.say("(that is: tests/crash/crash.py --rados --build %s --seed %d --rounds %d; "
                 "namespace %s)" % (self.args.build, self.args.seed, r + 1, self.ns))

    def finish(self):
        """After the last round: the follower unmounts cleanly, no
        sanitizer report on it."""
        f, self.follower = self.follower, None
        if f:
            end = f.unmount(dead=not f.alive())
            if end != "exit 0":
                raise crash.RoundFailed(["the follower ended with %s" % end] + f.log_tail(20))
            reps = f.sanitizer_reports()
            if reps:
                raise crash.RoundFailed(["sanitizer reports of the follower: %s" % reps])

    def summary(self):
        return ("%d crashes: %d remounts of the same STORE, %d takeovers by a new STORE; "
                "follower converged %d times; %d sweeps deferred by the follower" % (
                    self.crashes, self.remounts, self.takeovers, self.converged, self.deferred))

    def close(self):
        f, self.follower = self.follower, None
        if f:
            try:
                f.unmount(dead=not f.alive())
            except MountError as e:
                self.say("cleanup: %s" % e)
        super().close()


# ---- the fault-point cases on a RADOS store ----

class RCtx(Ctx):
    """A case's store in a namespace of its own. recover() first takes the
    store over from a new STORE when TAKEOVER, and afterwards makes a
    follower from scratch that must show the same tree."""
    cluster = None          # set by run_cases
    takeover = False

    def __init__(self, build, name):
        super().__init__(build, name)
        self.ns = self.cluster.new_ns("case")
        self.init_err = rinit(build, self.cluster, self.ns, "rados", self.store)

    def mount(self, fault=None, opts=""):
        self.check(not self.init_err, self.init_err)
        m = RMount(self.build, self.store, self.mnt, self.work, cases.OPTS + opts, fault)
        if not m.start():
            raise CaseFailed("mount%s failed: %s" % (" with " + fault if fault else "", m.error))
        self.m = m
        return m

    def count_images(self):
        return self.cluster.images(self.ns)

    def recover(self, expect):
        if self.takeover:
            new = os.path.join(self.tmp, "store.2")
            err = rinit(self.build, self.cluster, self.ns, "rados", new, "--takeover", "--force")
            self.check(not err, err)
            shutil.rmtree(self.store)
            self.store = new
        super().recover(expect)
        # a follower made now: its index comes from the cluster alone
        fstore = os.path.join(self.tmp, "follower.store")
        fmnt = os.path.join(self.tmp, "follower.mnt")
        os.mkdir(fmnt)
        err = rinit(self.build, self.cluster, self.ns, "follow", fstore)
        self.check(not err, err)
        f = RMount(self.build, fstore, fmnt, self.work)
        self.check(f.start(), "the follower's mount failed: %s" % getattr(f, "error", ""))
        try:
            got = read_tree(fmnt)
        finally:
            end = f.unmount(dead=not f.alive())
        self.check(end == "exit 0", "the follower ended with %s" % end)
        reps = f.sanitizer_reports()
        self.check(not reps, "sanitizer reports: %s" % reps)
        want = read_tree_of(expect)
        self.check(got == want, "a new follower reads another tree: differs at %s" % sorted(
            p for p in set(got) | set(want) if got.get(p) != want.get(p))[:6])


def read_tree_of(expect):
    """The read_tree value of cases' EXPECT ({path: bytes | DIR | (bytes, format)})."""
    from crashlib import DIR, hash_bytes
    out = {}
    for p, v in expect.items():
        if v == DIR:
            out[p] = DIR
        elif isinstance(v, tuple):
            out[p] = [hash_bytes(v[0]), v[1], None]
        else:
            out[p] = [hash_bytes(v), "lines", None]
    return out


def fsync_write_big(c):
    cases.fsync_write(c, "big.csv", BIG2)


def _cases():
    dc = cases.data_case
    base = [
        # the log append is the commit point: before it, old; after it, new
        dc("rewrite, killed before its log entry is sent (rlog_append:1)", "rlog_append:1:KILL",
           rewrite_big, OLD),
        dc("rewrite, log entry durable, local index not committed (rlog_appended:1)",
           "rlog_appended:1:KILL", rewrite_big, NEW_BIG),
        dc("rewrite, fsync'ed: killed after its entry is in the log (rlog_appended:1)",
           "rlog_appended:1:KILL", fsync_write_big, NEW_BIG),
        dc("rename over an object, entry in the log only (rlog_appended:1)", "rlog_appended:1:KILL",
           lambda c: os.rename(c.p("d/other.csv"), c.p("big.csv")),
           tree0(big_dot_csv=BIG2, d__other_dot_csv=None)),
        dc("unlink, entry in the log only (rlog_appended:1)", "rlog_appended:1:KILL",
           lambda c: os.unlink(c.p("big.csv")), tree0(big_dot_csv=None)),
        dc("rmdir, killed before the append (rlog_append:1)", "rlog_append:1:KILL",
           lambda c: os.rmdir(c.p("d/empty")), OLD),
        dc("append, entry in the log only (rlog_appended:1)", "rlog_appended:1:KILL",
           lambda c: c.write("big.csv", cases.APPEND, os.O_WRONLY | os.O_APPEND),
           tree0(big_dot_csv=BIG + cases.APPEND)),
        dc("rewrite, killed putting its third image (frag_write:3)", "frag_write:3:KILL",
           rewrite_big, OLD),
        dc("rewrite, images durable, index txn not begun (commit_txn:1)", "commit_txn:1:KILL",
           rewrite_big, OLD),
        dc("rewrite, killed in the index txn, before the append (lmdb_commit:2)", "lmdb_commit:2:KILL",
           rewrite_big, OLD),
        dc("rewrite, committed here and in the log (lmdb_committed:2)", "lmdb_committed:2:KILL",
           rewrite_big, NEW_BIG),
        dc("rewrite, committed, old images not released (commit_release:1)", "commit_release:1:KILL",
           rewrite_big, NEW_BIG),
        dc("-o sync: rewrite, killed while deleting old images (frag_release:3)", "frag_release:3:KILL",
           rewrite_big, NEW_BIG, may_succeed=True, opts=",sync"),
        dc("staging spill of a rewrite (staging_spill:1)", "staging_spill:1:KILL",
           lambda c: c.write("d/other.csv", BIG, os.O_WRONLY | os.O_TRUNC), OLD),
        dc("small file rewrite, entry in the log only (rlog_appended:1)", "rlog_appended:1:KILL",
           lambda c: c.write("small.csv", BIG2[:900], os.O_WRONLY | os.O_TRUNC),
           tree0(small_dot_csv=BIG2[:900])),
    ]
    # the cases of the log's commit point with both recoveries, the others
    # with one of them in turn (the short mode's time)
    out = []
    for i, (name, fn) in enumerate(base):
        if i < 3 or i % 2:
            out.append(("RADOS, same STORE remounted: " + name, fn, False))
        if i < 3 or not i % 2:
            out.append(("RADOS, takeover by a new STORE: " + name, fn, True))
    return out


def deferred_sweep(c):
    """Killed with a commit's images in the cluster and its txn not begun
    (commit_txn:1) while a follower holds an old version open: the
    writer's sweep at the next mount must leave unreferenced images alone
    (the follower's horizon is behind) — and new commits must still work,
    there and after a clean unmount and mount (their image ids must pass
    the ids the crash left: a put is an exclusive create)."""
    from crashlib import hash_bytes
    cases.base(c)
    fstore = os.path.join(c.tmp, "f.store")
    fmnt = os.path.join(c.tmp, "f.mnt")
    fwork = os.path.join(c.tmp, "f.work")
    os.mkdir(fmnt)
    os.mkdir(fwork)
    err = rinit(c.build, c.cluster, c.ns, "follow", fstore)
    c.check(not err, err)
    f = RMount(c.build, fstore, fmnt, fwork)
    c.check(f.start(), "the follower's mount failed: %s" % getattr(f, "error", ""))
    held = None
    try:
        held = os.open(os.path.join(fmnt, "big.csv"), os.O_RDONLY)
        c.mount()
        rewrite_big(c)
        c.unmount()
        deadline = time.monotonic() + 20
        while True:
            with open(os.path.join(fmnt, "big.csv"), "rb") as fh:
                if hash_bytes(fh.read()) == hash_bytes(BIG2):
                    break
            c.check(time.monotonic() < deadline, "the follower never saw the rewrite")
            time.sleep(0.05)
        unref = c.crash("commit_txn:1:KILL", lambda c: c.write("d/other.csv", BIG, os.O_WRONLY | os.O_TRUNC))
        c.check(unref >= 10, "crashed store: %d unreferenced images, expected every new one" % unref)
        m = c.mount()
        with open(m.log, errors="replace") as lf:
            lf.seek(m.log_start)
            c.check("left to a later sweep" in lf.read(),
                    "the sweep was not deferred by the follower's open file (the case tests nothing)")
        c.write("new.csv", BIG2)
        c.unmount()
        c.mount()
        c.write("new2.csv", BIG)
        got = read_tree(c.mnt)
        c.unmount()
        os.lseek(held, 0, os.SEEK_SET)
        b = b""
        while True:
            chunk = os.read(held, 1 << 20)
            if not chunk:
                break
            b += chunk
        c.check(b == BIG, "the follower's open file did not keep the version it opened")
    finally:
        if held is not None:
            os.close(held)
        end = f.unmount(dead=not f.alive())
    c.check(end == "exit 0", "the follower ended with %s" % end)
    want = read_tree_of(tree0(big_dot_csv=BIG2, new_dot_csv=BIG2, new2_dot_csv=BIG))
    c.check(got == want, "the tree differs at %s" % sorted(
        p for p in set(got) | set(want) if got.get(p) != want.get(p))[:6])
    c.fsck("at the end")


RADOS_CASES = _cases() + [
    ("RADOS: a crash's images left by a sweep a follower deferred; new commits still work",
     deferred_sweep, False)]


# Always run (when --cases): the log's commit point both ways (the first
# six) and the deferred sweep; the others while --case-budget lasts, in an
# order drawn from the seed (under ASan a case takes ~15 s: each daemon's
# exit runs the leak check of a librados process).
FIRST_CASES = 6


def case_order(seed):
    import random
    must = RADOS_CASES[:FIRST_CASES] + RADOS_CASES[-1:]
    rest = RADOS_CASES[FIRST_CASES:-1]
    random.Random(seed ^ 0xca5e).shuffle(rest)
    return must, rest


def run_cases(args, out, cluster, first):
    """The RADOS cases, TAP lines numbered from FIRST. Returns (n, failed).
    A case the budget leaves out prints no line (it is not a pass)."""
    n = failed = 0
    must, rest = case_order(args.seed)
    t0 = time.monotonic()
    left = []
    for i, (name, fn, takeover) in enumerate(must + rest):
        if i >= len(must) and args.case_budget and time.monotonic() - t0 > args.case_budget:
            left.append(name)
            continue
        cls = type("RCtxCase", (RCtx,), {"cluster": cluster, "takeover": takeover})
        k, f = cases.run_all([(name, fn)], args, out, args.tap, ctx_class=cls, first=first + n)
        n += k
        failed += f
    if left:
        print("# crash --rados: %d of %d cases not run (--case-budget %g s; another seed runs "
              "others): %s" % (len(left), len(RADOS_CASES), args.case_budget, "; ".join(left)),
              file=out, flush=True)
    return n, failed


def main(a, out):
    """crash.py --rados: the RADOS cases (--cases), then --batches batches
    of random rounds, as TAP when --tap. Returns the exit status."""
    t0 = time.monotonic()
    case_list = RADOS_CASES if a.cases else []
    nbatches = 0 if a.no_rounds else a.batches
    try:
        cluster = Cluster()
    except NoCluster as e:
        if a.tap:
            print("1..1\nnot ok 1 - crash over RADOS: %s" % e, flush=True)
        else:
            print("# crash --rados: FAIL: %s" % e, flush=True)
        return 1
    # the TAP plan comes last: the case budget decides how many cases run
    print("# crash --rados: seed %d (rerun: tests/crash/crash.py --rados --seed %d --rounds %d), "
          "cluster %s, pool %s" % (a.seed, a.seed, a.rounds, cluster.conf, cluster.pool), flush=True)
    n = failed = 0
    try:
        if case_list:
            n, failed = run_cases(a, out, cluster, 1)
        if nbatches:
            f = run_batches(a, out, cluster, n, nbatches)
            failed += f
            n += nbatches
    finally:
        cluster.close(keep=a.keep)
    if a.tap:
        print("1..%d" % n, flush=True)
    secs = time.monotonic() - t0
    print("# crash --rados: %s in %.0f s (seed %d)" % ("PASS" if not failed else "FAIL", secs, a.seed),
          flush=True)
    return 1 if failed else 0


def run_batches(a, out, cluster, n, nbatches):
    """NBATCHES TAP lines (numbered after N) of random rounds on one RADOS
    store. Returns the number failed."""
    failed = 0
    start = time.monotonic()
    h = RadosHarness(a, out, cluster)
    per = [a.rounds // nbatches + (1 if i < a.rounds % nbatches else 0) for i in range(nbatches)]
    first, err = 0, None
    try:
        try:
            h.setup()
        except (crash.RoundFailed, MountError, OSError) as e:
            err = e if isinstance(e, crash.RoundFailed) else crash.RoundFailed([str(e)])
            h.failure(0, err)
        for b, cnt in enumerate(per):
            n += 1
            if err is not None:
                # the set-up or an earlier batch failed: this one ran nothing
                if a.tap:
                    print("not ok %d - crash over RADOS: batch %d not run (an earlier failure)" % (n, b + 1),
                          flush=True)
                failed += 1
                continue
            deadline = start + a.budget * (b + 1) / nbatches if a.budget else float("inf")
            ran, err = crash.run_rounds(h, first, cnt, deadline)
            last = b == nbatches - 1
            if err is None and last:
                try:
                    if h.mount:
                        h.clean_unmount()
                    h.finish()
                except (crash.RoundFailed, MountError) as e:
                    err = e if isinstance(e, crash.RoundFailed) else crash.RoundFailed([str(e)])
                    h.failure(first + cnt, err)
            if err is None and ran == 0:
                err = crash.RoundFailed(["batch %d ran none of its %d rounds" % (b + 1, cnt)])
                h.say("FAILED: " + err.lines[0])
            if (err is None and last and a.rounds >= 2 and a.recovery == "alternate" and
                    (h.remounts == 0 or h.takeovers == 0)):
                err = crash.RoundFailed(["no remount or no takeover in the run: %s" % h.summary()])
                h.say("FAILED: " + err.lines[0])
            desc = "crash over RADOS, rounds %d-%d (seed %d): %d run; %s" % (
                first, first + cnt - 1, a.seed, ran, h.summary())
            if a.tap:
                print("%s %d - %s" % ("not ok" if err else "ok", n, desc), flush=True)
            if err:
                failed += 1
            first += cnt
        h.say("crash --rados: " + h.stats.line())
        h.say("crash --rados: " + h.summary())
    finally:
        h.close()
    return failed
