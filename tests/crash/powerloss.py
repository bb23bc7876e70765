#!/usr/bin/python3
"""powerloss.py — the power-loss explorer: run a workload on a real mount
whose daemon records every call that changes the store (plshim.c, through
LD_PRELOAD), build from that trace the states a power cut could leave
(plmodel.py), and open each one: payloadctl fsck must pass, the mount must
come up, and the tree must be one the README allows at that moment
(plwork.py's oracle). tests/crash/README.md, "Power loss", has the model
and what it does not cover.

  tests/crash/powerloss.py --build DIR [--long] [--seed S] [--tap] [--jobs J]
                           [--scenario NAME ...] [--max-states N] [--keep] [-v]

Short mode (make check): the two scenarios of issue 10 §1 and two random
workloads, a bounded number of states each. --long (make powerloss): more
and longer random workloads, every state the generators give.
"""

import argparse
import concurrent.futures
import errno
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import plmodel  # noqa: E402
import pltrace  # noqa: E402
import plwork  # noqa: E402
import test_plmodel  # noqa: E402

MOUNT_TIMEOUT = 60


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(len(ln.split()) > 1 and ln.split()[1] == path for ln in f)


class Daemon:
    """One payloadfs -f serving STORE on MNT, our child (so it is stopped
    and reaped by its PID only)."""

    def __init__(self, build, store, mnt, log, opts, env=None):
        self.mnt, self.log = mnt, log
        self.logf = open(log, "ab")
        cmd = [os.path.join(build, "payloadfs"), store, mnt, "-f", "-o", opts]
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not is_mounted(mnt):
            if self.p.poll() is not None:
                self.logf.close()
                raise MountFailed("payloadfs exited with status %d before mounting" % self.p.returncode)
            if time.monotonic() > deadline:
                self.kill()
                raise MountFailed("payloadfs did not mount within %d s" % MOUNT_TIMEOUT)
            time.sleep(0.005)

    def unmount(self):
        """Unmount and reap. Returns the exit status (0 after a clean one)."""
        for i in range(100):
            if not is_mounted(self.mnt):
                break
            if subprocess.call(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL) == 0:
                break
            time.sleep(0.05)
        if is_mounted(self.mnt):
            subprocess.call(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        try:
            rc = self.p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = -signal.SIGKILL
        self.logf.close()
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()              # our child, by PID
            self.p.wait()
        if is_mounted(self.mnt):
            subprocess.call(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)


class MountFailed(Exception):
    pass


def log_tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return [ln.rstrip("\n") for ln in f.readlines()[-n:]]
    except OSError:
        return []


# ---- running a scenario under the shim ----------------------------------

def daemon_opts(sc):
    o = [sc.opts]
    o.append("sync" if sc.sync else "sync_ms=%d" % sc.sync_ms)
    return ",".join(x for x in o if x)


def run_traced(a, sc, work, rng, say):
    """Run scenario SC on a fresh store under the shim. Returns (the store
    directory, the trace's path, the Workload)."""
    store = os.path.realpath(os.path.join(work, "store"))
    mnt = os.path.join(work, "mnt")
    trace = os.path.join(work, "trace")
    os.mkdir(store)
    os.mkdir(mnt)
    open(trace, "wb").close()
    env = dict(os.environ)
    env.setdefault("PAYLOADFS_STAGE_RAW", "0")   # as crashlib.py: no background swaps
    env.update({"LD_PRELOAD": a.shim, "PFS_TRACE": trace, "PFS_TRACE_ROOT": store,
                "PFS_SHIM_META_SYNC_DELAY_MS": str(sc.delay_ms)})
    if a.asan:
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    log = os.path.join(work, "traced.log")
    w = plwork.Workload(mnt, trace, rng, say if a.verbose > 1 else None)
    state = {"d": None}

    def up():
        state["d"] = Daemon(a.build, store, mnt, log, daemon_opts(sc), env)
        w.mark({"k": "mount", "sync": sc.sync, "sync_ms": sc.sync_ms, "delay_ms": sc.delay_ms})

    def down():
        rc = state["d"].unmount()
        state["d"] = None
        if rc != 0:
            raise RuntimeError("the traced daemon exited with status %d at unmount: %s"
                               % (rc, " | ".join(log_tail(log, 5))))
        w.durable(w.nsteps)          # a clean unmount flushed everything
        w.mark({"k": "unmounted"})

    try:
        up()
        sc.body(w, lambda: (down(), up()))
        down()
    finally:
        if state["d"]:
            state["d"].kill()
        w.close()
    return store, trace, w


def replay_check(model, store):
    """The state with everything in the trace must be the store on disk,
    byte for byte (lock.mdb aside): otherwise the shim missed a call and no
    state built from the trace can be trusted."""
    npos = len(model.trace.events)
    d = model.crash_points()[-1][1]
    lo, hi, vd = model.volatile(npos, d)
    st = plmodel.State(npos, d, hi, {o: ("all",) for o in vd})
    ns = model.namespace(hi)
    want = {}
    for path, oid in ns.items():
        o = model.objs[oid]
        if o.ignore:
            continue
        if o.kind == "d":
            want[path] = "d"
        else:
            b, size = model.content(st, oid, vd)
            want[path] = hashlib.sha256(bytes(b) + bytes(size - len(b))).hexdigest()
    have = {}
    for dp, dns, fns in os.walk(store):
        rel = os.path.relpath(dp, store)
        rel = "" if rel == "." else rel
        have[rel] = "d"
        for fn in fns:
            p = os.path.join(rel, fn)
            if p == "index/lock.mdb":
                continue
            with open(os.path.join(dp, fn), "rb") as f:
                have[p] = hashlib.sha256(f.read()).hexdigest()
    bad = []
    for p in sorted(set(want) | set(have)):
        if want.get(p) != have.get(p):
            bad.append("%s: replayed %s, on disk %s" % (p or "/", (want.get(p) or "absent")[:12],
                                                        (have.get(p) or "absent")[:12]))
    return bad


# ---- checking one state -------------------------------------------------

def read_tree(mnt):
    """{path: sha | 'd' | 'error: ...'} of the mount, snapshots included."""
    tree = {}

    def walk(top, prefix):
        for dp, dns, fns in os.walk(top, onerror=lambda e: tree.__setitem__(
                prefix + "<walk>", "error: %s" % e)):
            rel = os.path.relpath(dp, top)
            rel = "" if rel == "." else rel
            for d in dns:
                tree[prefix + os.path.join(rel, d)] = "d"
            for fn in fns:
                p = os.path.join(dp, fn)
                try:
                    with open(p, "rb") as f:
                        tree[prefix + os.path.join(rel, fn)] = hashlib.sha256(f.read()).hexdigest()
                except OSError as e:
                    tree[prefix + os.path.join(rel, fn)] = "error: %s" % (
                        errno.errorcode.get(e.errno, e.errno))
    walk(mnt, "")
    snaps = os.path.join(mnt, ".snapshots")
    for name in sorted(os.listdir(snaps)):
        tree[".snapshots/" + name] = "d"
        walk(os.path.join(snaps, name), ".snapshots/%s/" % name)
    return tree


def tree_diff(have, want):
    out = []
    for p in sorted(set(have) | set(want)):
        h, w = have.get(p), want.get(p)
        if h != w:
            out.append("%s: the state has %s, this tree %s" % (p, short(h), short(w)))
    return out


def short(v):
    if v is None:
        return "nothing"
    if v == "d":
        return "a directory"
    if v.startswith("error"):
        return "a file that cannot be read (%s)" % v[7:]
    return "sha %s.." % v[:12]


def fsck(build, store):
    p = subprocess.run([os.path.join(build, "payloadctl"), "fsck", store], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=600)
    lines = (p.stdout + p.stderr).splitlines()
    unref = sum(1 for ln in lines if ln.startswith("warning:") and "is not referenced" in ln)
    return p.returncode, lines, unref


def open_state(a, sdir, mnt):
    """Open the state in SDIR/store: fsck, mount, read the tree, unmount,
    fsck again. Returns (tree or None, problems that do not depend on the
    oracle)."""
    store = os.path.join(sdir, "store")
    probs = []
    rc, lines, _ = fsck(a.build, store)
    if rc != 0:
        probs.append("payloadctl fsck exit %d (before the mount):" % rc)
        probs.extend("    " + ln for ln in lines[:12])
    log = os.path.join(sdir, "daemon.log")
    try:
        d = Daemon(a.build, store, mnt, log, "fragment_size=16K")
    except MountFailed as e:
        return None, probs + ["the mount did not come up: %s" % e] + ["    " + ln for ln in log_tail(log)]
    try:
        tree = read_tree(mnt)
    except OSError as e:
        tree = None
        probs.append("reading the mount failed: %s" % e)
    finally:
        rc = d.unmount()
    if rc != 0:
        probs.append("the daemon exited with status %d:" % rc)
        probs.extend("    " + ln for ln in log_tail(log))
    if tree is not None:
        probs.extend("%s: read failed: %s" % (p, v[7:]) for p, v in sorted(tree.items())
                     if v.startswith("error"))
    if not probs:
        rc, lines, unref = fsck(a.build, store)
        if rc != 0:
            probs.append("payloadctl fsck after the mount: exit %d:" % rc)
            probs.extend("    " + ln for ln in lines[:12])
        elif unref:
            probs.append("%d fragment image(s) that no index record references survived the mount "
                         "(its sweep did not delete them: space nothing will reclaim):" % unref)
            probs.extend("    " + ln for ln in lines[:6])
    return tree, probs


def judge(tree, allowed):
    """Problems of TREE against the ALLOWED [(label, tree)]: none when it is
    one of them."""
    if tree is None or any(tree == t for _, t in allowed):
        return []
    best = min(allowed, key=lambda lt: len(tree_diff(tree, lt[1])))
    return (["the tree is none of the %d allowed (%s); closest: %s:" % (
        len(allowed), "; ".join(lbl for lbl, _ in allowed), best[0])] +
        ["    " + x for x in tree_diff(tree, best[1])[:12]])


# ---- exploring ------------------------------------------------------------

def describe_point(model, p):
    ev = model.trace.events
    if p >= len(ev):
        return "the end of the trace (after the last unmount)"
    return "before %s" % ev[p].describe(model.root)


def describe_state(model, st, vd):
    """What the state kept and dropped of what was not durable."""
    lo, hi = st.d.meta, model.count_before(model.meta_pos, st.p)
    hi = max(hi, lo)
    out = []
    kept = [model.ops[model.meta[i]] for i in range(lo, st.m)]
    lost = [model.ops[model.meta[i]] for i in range(st.m, hi)]

    def names(ops):
        s = ", ".join("%s %s" % (op.kind, op.path or model.objs[op.obj].path) for op in ops[-6:])
        return ("..., " if len(ops) > 6 else "") + s
    if kept:
        out.append("volatile metadata kept (%d): %s" % (len(kept), names(kept)))
    if lost:
        out.append("volatile metadata lost (%d): %s" % (len(lost), names(lost)))
    for oid, lst in sorted(vd.items()):
        rule = st.sel.get(oid)
        chosen = set(i for i, _ in model.selected(oid, rule, lst)) if rule else set()
        dropped = [model.ops[i] for i in lst if i not in chosen]
        if dropped and model.objs[oid].path in model.namespace(st.m).keys():
            out.append("%s: %d of %d unsynced write(s) lost%s: %s" % (
                model.objs[oid].path, len(dropped), len(lst),
                "" if not rule else " (%s)" % rule[0],
                ", ".join("%d+%d" % (op.off, op.length) for op in dropped[:6])))
    return out


class Explorer:
    """Opens the states of one trace. A state is opened once per distinct
    bytes (digest); the tree it showed is then judged against the allowed
    trees of every crash point that produced those bytes, so a state that
    is fine early in the trace and wrong later (after an fsync(2) returned)
    is still caught."""

    def __init__(self, a, sc, model, oracle, work, say):
        self.a, self.sc, self.model, self.oracle, self.work, self.say = a, sc, model, oracle, work, say
        self.opened = {}       # digest -> (tree, problems) once opened; None while pending
        self.judged = set()    # (digest, allowed signature)
        self.later = []        # (digest, p, label, st) to judge once opened
        self.checked = self.dups = self.rejudged = 0
        self.failures = []
        self.points = 0
        self.allowed_at = {}
        self.lock = threading.Lock()
        self.slots = []

    def allowed(self, p):
        if p not in self.allowed_at:
            al = self.oracle.allowed(p)
            sig = hashlib.sha256(repr(sorted(sorted(t.items()) for _, t in al)).encode()).hexdigest()
            self.allowed_at[p] = (al, sig)
        return self.allowed_at[p]

    def done(self):
        return len(self.failures) >= self.a.max_failures

    def run(self, max_states, deadline):
        rng = random.Random(self.a.seed)
        cps = self.model.crash_points()
        if not self.a.creation:
            # before the store was first mounted nothing was acknowledged:
            # see README, "what it does not cover"
            first = next(pos for pos, m in self.model.marks if m["k"] == "mount")
            cps = [(p, d) for p, d in cps if p > first]
        if self.a.index_points < 1.0:
            # the short mode: every index flush (and syncfs, and the end),
            # a sample of the others (the images' fsyncs)
            index = self.model.index_sync_ends()
            pick = random.Random(self.a.seed + 1)
            cps = [(p, d) for p, d in cps if p in index or pick.random() < self.a.index_points]
        self.points = len(cps)
        # breadth-first: every crash point's first state, then every
        # second one..., so a budget spreads over the whole trace; the
        # latest crash points first (the scenarios of issue 10 §1 end with
        # the window they test)
        gens = [(p, self.model.states(p, d, random.Random(rng.random()),
                                      nrandom=self.a.nrandom, cap_prefix=self.a.cap_prefix))
                for p, d in reversed(cps)]
        jobs = max(1, self.a.jobs)
        for k in range(jobs):
            m = os.path.join(self.work, "cmnt%d" % k)
            os.mkdir(m)
            self.slots.append(m)
        pool = concurrent.futures.ThreadPoolExecutor(jobs)
        pending = set()
        stop = False
        while gens and not stop:
            nxt = []
            for p, g in gens:
                item = next(g, None)
                if item is None:
                    continue
                nxt.append((p, g))
                label, st = item
                digest = self.model.materialize(st)
                _, sig = self.allowed(p)
                if (digest, sig) in self.judged:
                    self.dups += 1
                    continue
                self.judged.add((digest, sig))
                if digest in self.opened:
                    self.later.append((digest, p, label, st))
                    continue
                if len(self.opened) >= max_states or time.monotonic() > deadline or self.done():
                    stop = True
                    break
                self.opened[digest] = None
                while len(pending) >= jobs:
                    _, pending = concurrent.futures.wait(
                        pending, return_when=concurrent.futures.FIRST_COMPLETED)
                pending.add(pool.submit(self.one, digest, p, label, st))
            gens = nxt
        concurrent.futures.wait(pending)
        pool.shutdown()
        for digest, p, label, st in self.later:
            res = self.opened.get(digest)
            if res is None or res[0] is None or res[1] or self.done():
                continue        # not opened, or already failing on its own
            self.rejudged += 1
            probs = judge(res[0], self.allowed(p)[0])
            if probs:
                self.fail(p, label, st, probs, None)
        return self.checked

    def fail(self, p, label, st, probs, kept):
        _, _, vd = self.model.volatile(st.p, st.d)
        f = {"point": describe_point(self.model, p), "pos": p, "label": label,
             "state": describe_state(self.model, st, vd), "problems": probs}
        if kept:
            f["kept"] = kept
        with self.lock:
            self.failures.append(f)

    def one(self, digest, p, label, st):
        with self.lock:
            if self.done():
                return
            n = self.checked + 1
            self.checked += 1
            mnt = self.slots.pop()
        sdir = os.path.join(self.work, "state%d" % n)
        try:
            self.model.materialize(st, os.path.join(sdir, "store"))
            tree, probs = open_state(self.a, sdir, mnt)
            self.opened[digest] = (tree, probs)
            probs = probs + judge(tree, self.allowed(p)[0])
            if probs:
                self.fail(p, label, st, probs, self.keep(sdir, n))
            elif self.a.verbose:
                self.say("state %d ok: %s, %s" % (n, describe_point(self.model, p), label))
        except Exception:
            self.fail(p, label, st, ["the check raised:"] +
                      ["    " + x for x in traceback.format_exc().splitlines()], None)
        finally:
            with self.lock:
                self.slots.append(mnt)
            if not self.a.keep:
                shutil.rmtree(sdir, ignore_errors=True)

    def keep(self, sdir, n):
        base = os.environ.get("PL_KEEP_DIR") or os.path.join("/tmp", "pfs-powerloss-failed")
        dest = "%s.%s.%d" % (base, self.sc.name, n)
        try:
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(sdir, dest, symlinks=True)
            shutil.copy(os.path.join(self.work, "trace"), os.path.join(dest, "trace"))
            return dest
        except OSError:
            return None


# ---- main -----------------------------------------------------------------

def scenarios(a):
    rng = random.Random(a.seed)
    out = [plwork.FlushBeforeCommit(), plwork.EmptyTxnAtUnmount()]
    if a.long:
        for i in range(4):
            out.append(plwork.Random(random.Random(rng.random()), 40, big=True))
        out.append(plwork.Random(random.Random(rng.random()), 20, sync=True, big=True))
    else:
        out.append(plwork.Random(random.Random(rng.random()), 12))
        out.append(plwork.Random(random.Random(rng.random()), 6, sync=True))
    names = set(a.scenario or [])
    if names:
        out = [s for s in out if s.name in names]
    return out


def run_scenario(a, sc, idx, say):
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="pfs-powerloss.%s." % sc.name)
    res = {"name": sc.name, "about": sc.about, "failures": [], "error": None}
    try:
        rng = random.Random("%s:%d" % (a.seed, idx))
        store, trace, w = run_traced(a, sc, work, rng, say)
        tr = pltrace.Trace(trace)
        model = plmodel.Model(tr, store)
        if model.unsupported:
            raise RuntimeError("the trace has calls the explorer cannot replay: " +
                               "; ".join(model.unsupported[:5]))
        bad = replay_check(model, store)
        if bad:
            raise RuntimeError("replaying the whole trace does not give the store on disk "
                               "(the shim missed a call): " + "; ".join(bad[:5]))
        oracle = plwork.Oracle(model.marks, tr.events)
        ex = Explorer(a, sc, model, oracle, work, say)
        t1 = time.monotonic()
        ex.run(a.max_states, t1 + a.budget)
        res.update(states=ex.checked, dups=ex.dups, rejudged=ex.rejudged, points=ex.points,
                   events=len(tr.events),
                   ops=w.nop, failures=ex.failures, trace_s=t1 - t0, explore_s=time.monotonic() - t1)
    except Exception:
        res["error"] = traceback.format_exc().rstrip().splitlines()
    finally:
        if a.keep:
            say("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    res["secs"] = time.monotonic() - t0
    return res


def report(res, n, tap, out):
    ok = not res["error"] and not res["failures"]
    if res["error"]:
        line = "%s: the run failed" % res["name"]
    else:
        line = ("%s: %d states opened, %d more judged on the same bytes (%d crash points, %d "
                "duplicates; %d events, %d operations; trace %.0f s, states %.0f s)" % (
                    res["name"], res["states"], res["rejudged"], res["points"], res["dups"],
                    res["events"], res["ops"], res["trace_s"], res["explore_s"]))
    if tap:
        out.write("%s %d - %s\n" % ("ok" if ok else "not ok", n, line))
    else:
        out.write("%s %s\n" % ("PASS" if ok else "FAIL", line))
    pre = "# " if tap else "  "
    if not ok:
        out.write("%sthe scenario: %s\n" % (pre, res["about"]))
    for ln in res["error"] or []:
        out.write("%s%s\n" % (pre, ln))
    for f in res["failures"]:
        out.write("%sA POWER CUT %s (trace #%d), state %s:\n" % (pre, f["point"], f["pos"], f["label"]))
        for ln in f["state"]:
            out.write("%s  %s\n" % (pre, ln))
        for ln in f["problems"]:
            out.write("%s  %s\n" % (pre, ln))
        if f.get("kept"):
            out.write("%s  the state, its trace and the daemon log are in %s\n" % (pre, f["kept"]))
    out.flush()
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--long", action="store_true", help="the long mode (make powerloss)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--tap", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="states opened at once")
    ap.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    ap.add_argument("--max-states", type=int, default=None, help="states per scenario")
    ap.add_argument("--budget", type=float, default=None, help="seconds of states per scenario")
    ap.add_argument("--max-failures", type=int, default=1, help="failing states reported per scenario")
    ap.add_argument("--creation", action="store_true",
                    help="also cut power while the first mount creates the store")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.shim = os.path.join(a.build, "crash", "plshim.so")
    if a.seed is None:
        a.seed = int(os.environ.get("PL_SEED") or random.randrange(1 << 31))
    if a.max_states is None:
        a.max_states = int(os.environ.get("PL_MAX_STATES") or (100000 if a.long else 90))
    if a.budget is None:
        a.budget = float(os.environ.get("PL_BUDGET") or (600 if a.long else 40))
    a.nrandom = 8 if a.long else 2
    a.index_points = 1.0 if a.long else 0.2
    a.cap_prefix = 48 if a.long else 8
    with open(os.path.join(a.build, "payloadfs"), "rb") as f:
        a.asan = b"__asan_init" in f.read()
    out = sys.stdout

    def say(msg):
        out.write(("# " if a.tap else "") + msg + "\n")
        out.flush()
    for need in ("payloadfs", "payloadctl", "crash/plshim.so"):
        if not os.path.exists(os.path.join(a.build, need)):
            sys.exit("powerloss: %s/%s is missing (make %s)" % (a.build, need,
                     "powerloss" if need.endswith(".so") else "all"))
    scs = scenarios(a)
    nmodel = len(test_plmodel.CASES)
    if a.tap:
        out.write("1..%d\n" % (nmodel + len(scs)))
    say("powerloss: seed %d (rerun: tests/crash/powerloss.py --build %s --seed %d%s)" % (
        a.seed, a.build, a.seed, " --long" if a.long else ""))
    t0 = time.monotonic()
    # the model's rules first (tests/crash/test_plmodel.py)
    mout = sys.stdout if a.tap else open(os.devnull, "w")
    failed = test_plmodel.run(mout, 1)
    if failed and not a.tap:
        out.write("FAIL the model: %d rule(s) broken (tests/crash/test_plmodel.py)\n" % failed)
    for i, sc in enumerate(scs, nmodel + 1):
        res = run_scenario(a, sc, i, say)
        if not report(res, i, a.tap, out):
            failed += 1
    say("powerloss: %d model rules and %d scenario(s), %d failed, %.0f s" % (
        nmodel, len(scs), failed, time.monotonic() - t0))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
