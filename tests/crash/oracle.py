"""oracle — what a store recovered after a crash may hold, from the
journal of workload.py, and the comparison with what it does hold.

Rules (DESIGN.md §4: a crash leaves the old version or the new one, never
a mix; what close/fsync acknowledged survives a daemon crash):
  * every operation that ended with rc 0 happened, in journal order;
  * the operation cut short (the last one, ended with an errno) is
    somewhere between its last acknowledged step and its last step: if
    steps 0..j-1 were acknowledged, the tree is one of T_j .. T_k (T_i is
    the tree after steps 0..i-1), compared as a whole, so a rename is old
    name or new name, never both or neither;
  * nothing else differs: no name is missing or extra, no file holds
    bytes that no allowed state gives it;
  * storage=memory objects (workload.is_memory) are empty after a crash;
  * a held reader read what it opened (a "bad" record is a failure).
"""

import json

from crashlib import CRASH_ERRNOS, DIR, EMPTY_HASH
from workload import is_memory
import errno as _errno

CRASH_NAMES = {_errno.errorcode[e] for e in CRASH_ERRNOS}


class JournalError(Exception):
    """A journal line that cannot be read. The workload writes each line
    whole (one write and an fdatasync) and is never killed, so such a line
    is a bug to report, never a torn write to skip."""


class Journal:
    def __init__(self, path):
        self.start = None
        self.ops = []          # [{"op": rec, "acks": [s...], "end": rec or None}]
        self.stopped = None
        self.bad = []          # "bad" records: wrong bytes seen while running
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                    k = rec["k"]
                    if k not in ("start", "op", "ack", "end", "stop", "bad"):
                        raise ValueError("unknown record kind %r" % k)
                    if k in ("ack", "end") and not self.ops:
                        raise ValueError("%s before any op" % k)
                except (ValueError, KeyError, TypeError) as e:
                    raise JournalError("journal %s line %d cannot be read (%s): %r" % (
                        path, lineno, e, line[:200])) from None
                if k == "start":
                    self.start = rec["tree"]
                elif k == "op":
                    self.ops.append({"op": rec, "acks": [], "end": None})
                elif k == "ack":
                    self.ops[-1]["acks"].append(rec["s"])
                elif k == "end":
                    self.ops[-1]["end"] = rec
                elif k == "stop":
                    self.stopped = rec
                elif k == "bad":
                    self.bad.append(rec)


def apply(tree, step):
    t = dict(tree)
    for p, v in step.items():
        if v is None:
            t.pop(p, None)
        else:
            t[p] = v
    return t


class Verdict:
    def __init__(self):
        self.problems = []     # lines
        self.mixed = 0         # files holding bytes no allowed state has
        self.lost = 0          # acknowledged names or contents missing
        self.extra = 0         # names no allowed state has
        self.torn = 0          # names each right in some state, not together
        self.ops_done = 0
        self.cut = None        # the operation cut short: "N kind (j of k steps acknowledged)"
        self.cut_outcome = None  # which allowed state matched: "old", "new", "step i"
        self.early_error = None  # an op that failed while the daemon was alive

    @property
    def ok(self):
        return not self.problems


def allowed_trees(j, v):
    """The allowed trees and the tree every completed operation gives."""
    tree = dict(j.start)
    cands = None
    for o in j.ops:
        rec, end = o["op"], o["end"]
        steps = rec["steps"]
        if end is not None and end["rc"] == 0:
            for s in steps:
                tree = apply(tree, s)
            v.ops_done += 1
            continue
        # a step may go unacknowledged (a create's open: workload.py), but
        # acknowledged ones come in order; a later ack makes every earlier
        # step part of the past
        acks = o["acks"]
        first = max(acks) + 1 if acks else 0
        if acks != sorted(set(acks)):
            v.problems.append("journal: op %d acknowledged steps %s out of order" % (rec["n"], acks))
        states, t = [tree], tree
        for s in steps:
            t = apply(t, s)
            states.append(t)
        cands = [(i, states[i]) for i in range(first, len(states))]
        v.cut = "op %d %s (%d of %d steps acknowledged, rc %s)" % (
            rec["n"], rec["op"], first, len(steps), end["rc"] if end else "none")
        if end is None:
            v.problems.append("journal: op %d has no end (the workload died?)" % rec["n"])
        elif end["rc"] not in CRASH_NAMES:
            v.problems.append("op %d %s failed with %s (not a crash errno): %s" % (
                rec["n"], rec["op"], end["rc"], end.get("what", "")))
        break
    if cands is None:
        cands = [(0, tree)]
    return cands


def crashed(tree):
    """TREE as a crash leaves it: storage=memory objects emptied."""
    return {p: ([EMPTY_HASH] + v[1:] if isinstance(v, list) and is_memory(p) else v)
            for p, v in tree.items()}


def describe(v):
    if v == DIR:
        return "directory"
    if v is None:
        return "absent"
    return "%s.. (%s%s)" % (v[0][:12], v[1], ", note %r" % v[2][:20] if v[2] else "")


def check(j, observed, killed_at=None):
    """Compare OBSERVED ({path: value}) with journal J. KILLED_AT: the
    monotonic time of the SIGKILL when the harness sent it (an operation
    that failed before it failed while the daemon was alive)."""
    v = Verdict()
    if j.start is None:
        v.problems.append("journal: no start record")
        return v
    cands = [(i, crashed(t)) for i, t in allowed_trees(j, v)]
    for b in j.bad:
        v.problems.append("op %d: %s" % (b["n"], b["what"]))
    last = j.ops[-1] if j.ops else None
    if killed_at is not None and last and last["end"] and last["end"]["rc"] != 0:
        if last["end"]["t"] < killed_at:
            v.early_error = "op %d failed with %s %.3f s before the kill" % (
                last["op"]["n"], last["end"]["rc"], killed_at - last["end"]["t"])
            v.problems.append(v.early_error)
    for i, t in cands:
        if t == observed:
            n = len(cands) + cands[0][0] - 1
            v.cut_outcome = "old" if i == 0 else ("new" if i == n else "step %d" % i)
            return v
    # no allowed tree matches: say how the closest one differs
    best = min(cands, key=lambda c: len(diff(c[1], observed)))
    every = {}
    for _, t in cands:
        for p, val in t.items():
            every.setdefault(p, []).append(val)
    for p, want, got in diff(best[1], observed):
        known = every.get(p, [])
        if got is None:
            v.lost += 1
            kind = "lost"
        elif want is None and p not in every:
            v.extra += 1
            kind = "extra"
        elif got in known:
            v.torn += 1
            kind = "torn (right alone, not together)"
        else:
            v.mixed += 1
            kind = "mixed/wrong"
        v.problems.append("%s: %s: expected %s, found %s" % (kind, p, describe(want), describe(got)))
    if v.cut:
        v.problems.append("(the operation cut short: %s)" % v.cut)
    return v


def diff(a, b):
    out = []
    for p in sorted(set(a) | set(b)):
        if a.get(p) != b.get(p):
            out.append((p, a.get(p), b.get(p)))
    return out
