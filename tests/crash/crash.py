#!/usr/bin/env python3
"""crash.py — the crash harness: kill a payloadfs daemon with SIGKILL at
random moments of a random workload, remount, and check that every object
is its old or its new content, that nothing acknowledged is lost, that
payloadctl fsck is clean and that the mount swept what the crash left.

  tests/crash/crash.py [--build DIR] [--rounds N] [--seed S] [--cases]
                       [--tap --batches B] [--budget SEC] [--keep]

One store and one mount point (under $TMPDIR) serve all rounds, so objects
keep their history. A round: the daemon serves --workers workload
processes (workload.py, each in its own folder wK) and is killed either by a timer (SIGKILL from here, by the PID of its
-o pidfile=) or by itself at the Nth hit of a fault point armed with
PAYLOADFS_FAULT=point:N:KILL; the dead mount is unmounted (fusermount3 -u,
-uz); fsck checks the crashed store (exit 0: unreferenced images are only
warnings); some rounds crash the next mount during its sweep; the store is
mounted again; fsck must then be clean with no unreferenced image and no
staging or temporary file; the tree must match the journal (oracle.py).
Every 10th round ends with a clean unmount and fsck.

Everything random follows --seed (printed at start): rerunning with the
same seed repeats the operations and the fault-point kills exactly; timer
kills land at the same delay, though not always at the same instruction.
"""

import argparse
import os
import random
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import crashlib  # noqa: E402
from crashlib import (Mount, MountError, byid_mismatches, count_images, fsck, leftovers,  # noqa: E402
                      listed_images, read_tree)
import oracle  # noqa: E402
import workload  # noqa: E402

# Each mount picks its fragment and spill sizes from these (older
# fragments of other sizes stay as they are and get reused), and sometimes
# -o direct_io, threads=0, a 1M fragment cache, -o sync or a short sync_ms.
FRAGMENT_SIZES = ["4K", "16K", "16K", "16K", "64K"]
SPILL_SIZES = ["4K", "64K", "64K", "1M"]

# Where a fault-point kill may land: (point, lowest N, highest N). The
# first index txn of a daemon is its mount's sweep.
KILL_POINTS = [
    ("frag_write", 1, 300), ("frag_fsync", 1, 300),
    # the 1st index txn is the mount's sweep (when it has work): N=1 kills
    # the daemon in its start-up, before it serves (Harness.start_faulted)
    ("commit_txn", 1, 60), ("lmdb_commit", 1, 80), ("lmdb_committed", 1, 80),
    ("commit_release", 1, 60), ("frag_release", 1, 200),
    ("staging_write", 1, 400), ("staging_spill", 1, 6),
    # a flush of the index: fsync(2), or the syncer (not with -o sync)
    ("lmdb_sync", 1, 12),
]
# Points of a mount's start-up: its sweep.
SWEEP_POINTS = ["sweep_frag:1", "sweep_frag:4", "sweep_staging:1", "lmdb_commit:1",
                "lmdb_committed:1"]


class RoundFailed(Exception):
    def __init__(self, lines):
        super().__init__(lines[0] if lines else "failed")
        self.lines = lines


class Stats:
    def __init__(self):
        self.rounds = self.ops = self.timer_kills = self.fault_kills = 0
        self.sweep_kills = self.mixed = self.lost = self.torn = self.extra = 0
        self.startup_kills = 0
        self.fsck_runs = self.unref_seen = self.clean_unmounts = 0
        self.outcomes = {}

    def line(self):
        oc = ", ".join("%s %d" % kv for kv in sorted(self.outcomes.items()))
        return ("%d rounds, %d operations, %d kills (%d timer, %d fault point (%d in a mount's "
                "start-up), %d during the sweep), cut operations: %s; mixed %d, lost %d, torn %d, extra %d; fsck %d runs, "
                "all clean (%d unreferenced images seen in crashed stores, all swept)" % (
                    self.rounds, self.ops, self.timer_kills + self.fault_kills + self.sweep_kills,
                    self.timer_kills, self.fault_kills, self.startup_kills, self.sweep_kills,
                    oc or "none",
                    self.mixed, self.lost, self.torn, self.extra, self.fsck_runs,
                    self.unref_seen))


class Harness:
    mount_class = Mount

    def __init__(self, args, out):
        self.args, self.out = args, out
        self.build = os.path.abspath(args.build)
        self.tmp = tempfile.mkdtemp(prefix="pfs-crash.", dir=os.environ.get("TMPDIR", "/tmp"))
        self.store = os.path.join(self.tmp, "store")
        self.mnt = os.path.join(self.tmp, "mnt")
        self.work = os.path.join(self.tmp, "work")
        for d in (self.store, self.mnt, self.work):
            os.mkdir(d)
        self.mount = None
        self.mount_rng = random.Random(args.seed ^ 0x5eed)
        self.last_opts = ""
        self.prev = {}            # worker -> tree verified at the end of the last round
        self.stats = Stats()
        self.kill_points = KILL_POINTS
        self.fault_share = 0.4    # of the rounds that arm a fault point

    def say(self, msg):
        print("# " + msg, file=self.out, flush=True)

    def new_mount(self, fault=None):
        r = self.mount_rng
        opts = "fragment_size=%s,spill_size=%s" % (r.choice(FRAGMENT_SIZES), r.choice(SPILL_SIZES))
        if r.random() < 0.25:
            opts += ",direct_io"          # reads bypass the page cache
        if r.random() < 0.2:
            opts += ",threads=0"          # no read-ahead, serial decoding
        if r.random() < 0.2:
            opts += ",cache_size=1M"      # the fragment cache evicts all the time
        c = r.random()
        if c < 0.2:
            opts += ",sync"               # every commit durable when it returns
        elif c < 0.5:
            opts += ",sync_ms=%d" % r.choice([10, 50, 200])   # the syncer flushes often
        self.last_opts = opts
        return self.mount_class(self.build, self.store, self.mnt, self.work, opts, fault)

    def fsck(self, when, mounted=False):
        rc, lines, unref = fsck(self.build, self.store)
        self.stats.fsck_runs += 1
        if rc != 0:
            raise RoundFailed(["fsck %s: exit %d" % (when, rc)] + lines[-30:])
        if mounted and unref:
            raise RoundFailed(["fsck %s: %d unreferenced images after the mount's sweep" %
                               (when, unref)] + lines[-30:])
        return unref

    def check_sanitizers(self):
        reps = self.new_mount().sanitizer_reports()
        if reps:
            lines = ["sanitizer reports: %s" % " ".join(reps)]
            with open(reps[0], errors="replace") as f:
                lines += f.read().splitlines()[:40]
            raise RoundFailed(lines)

    def clean_unmount(self):
        end = self.mount.unmount()
        self.mount = None
        if end != "exit 0":
            raise RoundFailed(["clean unmount: the daemon ended with %s" % end])
        self.stats.clean_unmounts += 1
        self.check_sanitizers()
        self.fsck("after a clean unmount")
        left = leftovers(self.store)
        if left:
            raise RoundFailed(["after a clean unmount: leftovers " + " ".join(left[:10])])

    def ensure_mount(self):
        """A live mount with no fault armed."""
        if self.mount and self.mount.fault is None and self.mount.alive():
            return
        if self.mount:
            self.clean_unmount()
        m = self.new_mount()
        if not m.start():
            raise RoundFailed(["mount failed: %s (daemon: %s)" % (m.error, m.died_by())] +
                              m.log_tail())
        self.mount = m

    def start_armed(self, spec):
        """A new mount armed with SPEC (point:N:KILL). Returns it live, or
        reaped (status set) when SPEC killed the daemon in its start-up (the
        mount's sweep, or the syncer flushing the sweep's txn before the
        mount is up): a crash like any other. Any other failure to mount
        fails."""
        m = self.new_mount(spec)
        if m.start():
            return m
        if m.died_by() != "SIGKILL" or not m.fault_fired(spec.split(":")[0]):
            raise RoundFailed(["mount with %s failed: %s (daemon: %s)" % (
                spec, m.error, m.died_by())] + m.log_tail())
        return m

    # ---- one round ----

    def setup(self):
        """Before round 0: the workers' folders, each with a storage=memory
        folder d5 (workload.MEM_DIR), then a clean unmount."""
        self.ensure_mount()
        for k in range(self.args.workers):
            d = os.path.join(self.mnt, "w%d" % k)
            os.mkdir(d)
            os.mkdir(os.path.join(d, workload.MEM_DIR))
            os.setxattr(os.path.join(d, workload.MEM_DIR), "user.payload.storage", b"memory")
        self.clean_unmount()
        self.prev = {}

    def fork_worker(self, k, wseed, wfd, gofd):
        """Fork worker K: it reads its tree, writes one byte to WFD, waits
        for one byte on GOFD (all workers start together), then runs."""
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            w = workload.Workload(os.path.join(self.mnt, "w%d" % k), self.jpath(k),
                                  random.Random(wseed), self.args.max_ops)
            w.run(lambda: (os.write(wfd, b"r"), os.read(gofd, 1)))
        except BaseException:
            with open(os.path.join(self.work, "workload.%d.err" % k), "w") as f:
                traceback.print_exc(file=f)
            code = 3
        os._exit(code)

    def jpath(self, k):
        return os.path.join(self.work, "journal.%d" % k)

    def wait_workers(self, pids, status, timeout):
        """Reap the workers in PIDS (status[pid] filled). Returns True when
        all ended within TIMEOUT s."""
        deadline = time.monotonic() + timeout
        while True:
            for pid in pids:
                if pid not in status:
                    p, st = os.waitpid(pid, os.WNOHANG)
                    if p:
                        status[pid] = st
            if len(status) == len(pids):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)

    def run_workload(self, rng, r, fault_mode):
        n = self.args.workers
        for k in range(n):
            if os.path.exists(self.jpath(k)):
                os.unlink(self.jpath(k))
        rfd, wfd = os.pipe()
        gor, gow = os.pipe()
        pids = [self.fork_worker(k, rng.randrange(1 << 62), wfd, gor) for k in range(n)]
        os.close(wfd)
        os.close(gor)
        got = b""
        deadline = time.monotonic() + 120
        while len(got) < n and time.monotonic() < deadline:
            ready, _, _ = select.select([rfd], [], [], 1)
            if ready:
                b = os.read(rfd, n)
                if not b:
                    break
                got += b
        os.close(rfd)
        if got != b"r" * n:
            os.close(gow)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)          # our children
                os.waitpid(pid, 0)
            point = self.mount.fault.split(":")[0] if self.mount.fault else None
            if point and self.mount.fault_fired(point):
                # e.g. the syncer's flush, reached early. The workers saw the
                # connection go when the daemon's files closed, which can be
                # a moment before it is a zombie: wait for that.
                self.mount.wait_exit(30)
                return "before the workload"
            raise RoundFailed(["the workload did not start"] + self.workload_err())
        os.write(gow, b"g" * n)
        os.close(gow)
        if fault_mode:
            delay = max(3.0, 2 * self.args.max_delay)
        elif rng.random() < 0.3:
            delay = rng.uniform(0, 0.1)
        else:
            delay = rng.uniform(0, self.args.max_delay)
        t0 = time.monotonic()
        status = {}
        how = None
        while True:
            if self.wait_workers(pids, status, 0):
                how = "workload ended"
                break
            if not self.mount.alive():
                how = "daemon died"
                break
            if time.monotonic() - t0 >= delay:
                self.mount.kill()
                how = "timer"
                break
            time.sleep(0.002)
        if how == "workload ended":
            self.mount.kill()        # they stopped on their own: still crash the daemon
        if not self.wait_workers(pids, status, 120):
            for pid in pids:
                if pid not in status:
                    os.kill(pid, signal.SIGKILL)   # our children
                    os.waitpid(pid, 0)
            raise RoundFailed(["a workload hung after the daemon died"])
        bad = [st for st in status.values() if st != 0]
        if bad:
            raise RoundFailed(["a workload failed (status %d)" % bad[0]] + self.workload_err())
        return how

    def workload_err(self):
        out = []
        for k in range(self.args.workers):
            try:
                with open(os.path.join(self.work, "workload.%d.err" % k)) as f:
                    out += ["worker %d: %s" % (k, ln) for ln in f.read().splitlines()]
            except OSError:
                pass
        return out

    def round(self, r):
        t0 = time.monotonic()
        try:
            self.round_body(r)
        finally:
            if self.args.verbose:
                self.say("round %d took %.1f s (%s)" % (r, time.monotonic() - t0,
                                                         self.last_opts))

    def round_body(self, r):
        a = self.args
        rng = random.Random(a.seed * 1000003 + r)
        fault = None
        if rng.random() < self.fault_share:
            point, lo, hi = rng.choice(self.kill_points)
            fault = "%s:%d:KILL" % (point, rng.randint(lo, hi))
        if r % 10 == 9 and self.mount:
            self.clean_unmount()
        if fault is None:
            self.ensure_mount()
            m = self.mount
        else:
            if self.mount:
                self.clean_unmount()
            m = self.mount = self.start_armed(fault)
        if m.status is not None:
            # the fault fired in the mount's start-up: the store must come
            # back as the tree verified at the end of the last round
            self.stats.startup_kills += 1
            how = "before the workload"
        else:
            how = self.run_workload(rng, r, fault is not None)
        m.wait_exit()
        end = m.died_by()
        if end != "SIGKILL":
            raise RoundFailed(["the daemon ended with %s, not our SIGKILL" % end] + m.log_tail())
        killed_at = m.killed_at
        fault_at = m.fault_time(fault.split(":")[0]) if fault else None
        if fault_at is not None:
            self.stats.fault_kills += 1
            killed_at = min(fault_at, killed_at or fault_at)  # our timer may have fired too
        elif m.killed_at is not None:
            self.stats.timer_kills += 1
        else:
            raise RoundFailed(["the daemon died (SIGKILL) but no fault fired and we did not kill "
                               "it"] + m.log_tail())
        m.unmount(dead=True)
        self.mount = None
        self.stats.unref_seen += self.fsck("of the crashed store")
        self.after_crash(r, rng)
        if rng.random() < 0.15:
            spec = rng.choice(SWEEP_POINTS) + ":KILL"
            s = self.start_armed(spec)
            if s.status is None:
                self.mount = s
                self.clean_unmount()
            else:
                self.stats.sweep_kills += 1
                self.fsck("after a crash during the sweep")
        self.ensure_mount()
        self.fsck("after the remount", mounted=True)
        left = leftovers(self.store)
        if left:
            raise RoundFailed(["after the remount: not swept: " + " ".join(left[:10])])
        top = sorted(os.listdir(self.mnt))
        want = ["w%d" % k for k in range(a.workers)]
        problems = [] if top == want else ["the mount's root holds %s, not %s" % (top, want)]
        listed, on_disk = 0, self.count_images()
        for k in range(a.workers):
            wroot = os.path.join(self.mnt, "w%d" % k)
            observed = read_tree(wroot)
            problems += ["worker %d: %s" % (k, p) for p in byid_mismatches(self.mnt, wroot, observed)]
            listed += listed_images(wroot, observed)
            if how == "before the workload":
                # killed while the workers read their trees: nothing changed
                if observed != self.prev.get(k, observed):
                    problems.append("worker %d: killed before any operation, the tree changed" % k)
                self.prev[k] = observed
                continue
            j = oracle.Journal(self.jpath(k))
            v = oracle.check(j, observed, killed_at=killed_at)
            if k in self.prev and j.start != self.prev[k]:
                v.problems.append("the round started from a tree that differs from the one verified")
            self.stats.ops += len(j.ops)
            self.stats.mixed += v.mixed
            self.stats.lost += v.lost
            self.stats.torn += v.torn
            self.stats.extra += v.extra
            if v.cut_outcome:
                self.stats.outcomes[v.cut_outcome] = self.stats.outcomes.get(v.cut_outcome, 0) + 1
            if a.verbose:
                self.say("round %d worker %d: %s, %d ops, cut: %s -> %s" % (
                    r, k, fault or "timer", len(j.ops), v.cut, v.cut_outcome))
            problems += ["worker %d: %s" % (k, p) for p in v.problems]
            self.prev[k] = observed
        problems += self.images_problems(listed, on_disk)
        if not problems:
            problems += self.after_check(r)
        if problems:
            raise RoundFailed(["round %d (%s): the recovered tree is wrong" % (r, fault or "timer")]
                              + problems[:40])
        self.check_sanitizers()
        self.stats.rounds += 1

    # ---- what a kind of store does differently (rcrash.RadosHarness) ----

    def after_crash(self, r, rng):
        """The daemon of round R is dead, its mount gone: a local store is
        mounted again as it is."""

    def count_images(self):
        return count_images(self.store)

    def images_problems(self, listed, on_disk):
        """LISTED: the fragments the recovered objects list, ON_DISK: the
        images the store holds, right after a mount's sweep."""
        if listed != on_disk:
            return ["%d fragment images on disk, the objects list %d (an orphan the sweep "
                    "missed?)" % (on_disk, listed)]
        return []

    def after_check(self, r):
        """More checks once round R's recovered tree passed the oracle
        (self.prev holds it): a list of problems."""
        return []

    def failure(self, r, e):
        self.say("FAILED in round %d: %s" % (r, e.lines[0]))
        for ln in e.lines[1:]:
            self.say("  " + ln.rstrip())
        self.say("rerun: tests/crash/crash.py --build %s --seed %d --rounds %d" % (
            self.args.build, self.args.seed, r + 1))
        if self.mount:
            for ln in self.mount.log_tail(25):
                self.say("  log: " + ln.rstrip())
        saved = os.path.join(os.environ.get("CRASH_KEEP_DIR", "/tmp"),
                             "pfs-crash-failed.%d.%d" % (self.args.seed, r))
        try:
            shutil.copytree(self.tmp, saved, ignore=shutil.ignore_patterns("mnt"))
            self.say("store, journal and daemon log kept in " + saved)
        except OSError as ce:
            self.say("could not keep the store: %s" % ce)

    def close(self):
        if self.mount:
            try:
                self.mount.unmount(dead=not self.mount.alive())
            except MountError as e:
                self.say("cleanup: %s" % e)
        if crashlib.is_mounted(self.mnt):
            import subprocess
            subprocess.call(["fusermount3", "-uz", self.mnt])
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def run_rounds(h, first, count, deadline):
    """Run rounds FIRST.. up to COUNT of them, the first one whatever the
    DEADLINE says. Returns (rounds run, error)."""
    for r in range(first, first + count):
        if r > first and time.monotonic() > deadline:
            return r - first, None
        try:
            h.round(r)
        except (RoundFailed, MountError, oracle.JournalError) as e:
            if not isinstance(e, RoundFailed):
                e = RoundFailed([str(e)])
            h.failure(r, e)
            return r - first, e
        if not h.args.tap and (r + 1 - first) % 10 == 0:
            h.say("%d rounds: %s" % (h.stats.rounds, h.stats.line()))
    return count, None


def startup_batch(a, out, n, count):
    """TAP line N: COUNT rounds on a store of their own, half of them
    armed with the sweep's index txn (lmdb_commit:1:KILL), so that the
    daemon dies in its start-up whenever its sweep has work: the round must still recover
    the last verified tree. Fails unless at least one kill came in a
    start-up (else it did not test that)."""
    h = Harness(a, out)
    h.kill_points = [("lmdb_commit", 1, 1)]
    h.fault_share = 0.5                 # the other rounds run workloads, so the trees grow
    first = 1 << 20                     # round numbers (and so draws) apart from the batches
    err = None
    try:
        h.setup()
        ran, err = run_rounds(h, first, count, float("inf"))
        if err is None:
            h.clean_unmount()
    except (RoundFailed, MountError, OSError) as e:
        err = e if isinstance(e, RoundFailed) else RoundFailed([str(e)])
        h.failure(first, err)
    finally:
        h.close()
    desc = "crash: %d rounds armed with the sweep's txn (seed %d): %d killed in a mount's start-up" % (
        count, a.seed, h.stats.startup_kills)
    if err is None and h.stats.startup_kills == 0:
        h.say("no round was killed in a mount's start-up: the sweep never had work")
        err = RoundFailed(["no start-up kill"])
    if a.tap:
        print("%s %d - %s" % ("not ok" if err else "ok", n, desc), flush=True)
    else:
        h.say(desc)
    h.say("crash (start-up batch): " + h.stats.line())
    return err is None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("PAYLOADFS_BUILD", "build"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cases", action="store_true", help="run the fault-point cases first")
    ap.add_argument("--no-rounds", action="store_true", help="no random rounds (the cases, --startup-rounds)")
    ap.add_argument("--tap", action="store_true", help="TAP output, one line per batch and case")
    ap.add_argument("--batches", type=int, default=1)
    ap.add_argument("--budget", type=float, default=0,
                    help="start no round after SEC s of rounds (the cases not counted)")
    ap.add_argument("--max-delay", type=float, default=1.0, help="longest timer delay (s)")
    ap.add_argument("--max-ops", type=int, default=100000)
    ap.add_argument("--workers", type=int, default=2, help="workload processes at once")
    ap.add_argument("--startup-rounds", type=int, default=0,
                    help="then N rounds, half armed with lmdb_commit:1:KILL (the sweep's txn), "
                    "as one more batch that fails unless some kill came in a mount's start-up")
    ap.add_argument("--rados", action="store_true",
                    help="over a RADOS store of the cluster of PFS_CEPH_CONF, PFS_RADOS_POOL "
                    "(rcrash.py): its cases (--cases) and rounds")
    ap.add_argument("--no-follower", dest="follower", action="store_false",
                    help="--rados: no follower mounted alongside the rounds")
    ap.add_argument("--case-budget", type=float, default=0,
                    help="--rados: start no case but the first seven after SEC s of cases")
    ap.add_argument("--recovery", choices=("alternate", "remount", "takeover"), default="alternate",
                    help="--rados: after each crash the same STORE is mounted again, a new STORE "
                    "takes over, or (default) the one and the other in turn")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.seed is None:
        a.seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
    out = sys.stdout
    crashlib.become_subreaper()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.rados:
        import rcrash
        return rcrash.main(a, out)
    t0 = time.monotonic()
    import cases
    case_list = cases.CASES if a.cases else []
    nbatches = 0 if a.no_rounds else a.batches
    startup = a.startup_rounds
    if a.tap:
        print("1..%d" % (len(case_list) + nbatches + (1 if startup else 0)), flush=True)
    print("# crash: seed %d (rerun: tests/crash/crash.py --seed %d --rounds %d)" % (
        a.seed, a.seed, a.rounds), flush=True)
    n = 0
    failed = 0
    if case_list:
        n, f = cases.run_all(case_list, a, out, tap=a.tap)
        failed += f
    if nbatches:
        start = time.monotonic()
        h = Harness(a, out)
        try:
            per = [a.rounds // nbatches + (1 if i < a.rounds % nbatches else 0) for i in range(nbatches)]
            first, err = 0, None
            try:
                h.setup()
            except (RoundFailed, MountError, OSError) as e:
                err = e if isinstance(e, RoundFailed) else RoundFailed([str(e)])
                h.failure(0, err)
                failed += 1
                if a.tap:
                    print("not ok %d - crash rounds: the set-up failed" % (n + 1), flush=True)
                n += 1
                per = per[1:]
            for b, cnt in enumerate(per):
                n += 1
                if err is not None:
                    if a.tap:
                        print("ok %d - crash rounds batch %d # skip an earlier batch failed" % (n, b + 1))
                    continue
                # each batch may use its share of the budget (and what the
                # earlier ones left), so every batch runs some rounds
                deadline = start + a.budget * (b + 1) / nbatches if a.budget else float("inf")
                ran, err = run_rounds(h, first, cnt, deadline)
                if err is None and b == nbatches - 1 and h.mount:
                    try:
                        h.clean_unmount()
                    except RoundFailed as e:
                        h.failure(first + cnt, e)
                        err = e
                desc = "crash rounds %d-%d (seed %d): %d run" % (first, first + cnt - 1, a.seed, ran)
                if not err and ran == 0:
                    # a batch that tested nothing fails, never passes or skips
                    err = RoundFailed(["batch %d ran none of its %d rounds" % (b + 1, cnt)])
                    h.say("FAILED: " + err.lines[0])
                if a.tap:
                    print("%s %d - %s" % ("not ok" if err else "ok", n, desc), flush=True)
                if err:
                    failed += 1
                first += cnt
            h.say("crash: " + h.stats.line())
        finally:
            h.close()
    if startup:
        n += 1
        if not startup_batch(a, out, n, startup):
            failed += 1
    secs = time.monotonic() - t0
    verdict = "PASS" if not failed else "FAIL"
    print("# crash: %s in %.0f s (seed %d)" % (verdict, secs, a.seed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
