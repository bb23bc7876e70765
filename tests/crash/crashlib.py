"""crashlib — what the crash tests share: a payloadfs mount that can be
killed (Mount), unmounting a dead mount, payloadctl fsck, reading the tree
of a mount, and the store's on-disk leftovers (docs/format.md).

Only processes this module started are ever signalled: the daemon's PID
comes from its -o pidfile=, and the harness is a child subreaper so that
the daemon (which detaches) stays its child and is reaped here, with its
exit status (a daemon that died by anything but our SIGKILL is a finding).
"""

import ctypes
import errno
import hashlib
import os
import re
import signal
import subprocess
import time

EMPTY_HASH = hashlib.sha256(b"").hexdigest()
DIR = "d"                       # the tree value of a directory
# What a system call in flight or made after the daemon died returns: the
# kernel ends FUSE requests of a dead daemon with ENOTCONN or ECONNABORTED,
# and with EIO one whose arguments the dying daemon was still copying in
# (a large WRITE). Before the kill, any of them is a failure.
CRASH_ERRNOS = {errno.ENOTCONN, errno.ECONNABORTED, errno.EIO}

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Make detached grandchildren (the daemons) children of this process."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def is_mounted(path):
    """True when PATH is a mount point in /proc/mounts (also a dead FUSE
    mount, where os.path.ismount fails with ENOTCONN)."""
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == path:
                return True
    return False


def hash_bytes(b):
    return hashlib.sha256(b).hexdigest()


class MountError(Exception):
    pass


class Mount:
    """One payloadfs daemon serving STORE on MNT. opts: -o options besides
    logfile/pidfile; fault: a PAYLOADFS_FAULT spec for this daemon."""

    def __init__(self, build, store, mnt, work, opts="", fault=None):
        self.build, self.store, self.mnt, self.work = build, store, mnt, work
        self.opts, self.fault = opts, fault
        self.log = os.path.join(work, "daemon.log")
        self.pidfile = os.path.join(work, "daemon.pid")
        self.pid = None
        self.status = None          # os.waitpid status once reaped
        self.killed_at = None       # time.monotonic() of our SIGKILL

    def env(self):
        e = dict(os.environ)
        san = os.path.join(self.work, "sanitizer")
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            e[k] = (e[k] + ":" if e.get(k) else "") + "log_path=" + san
        e.pop("PAYLOADFS_FAULT", None)
        # the cases count fault-point calls (frag_write, lmdb_commit, ...):
        # no staging raw, so no background swaps take calls in between
        # (index/recompress.c; test_recompress kills inside the pass)
        e.setdefault("PAYLOADFS_STAGE_RAW", "0")
        if self.fault:
            e["PAYLOADFS_FAULT"] = self.fault
        return e

    def start(self):
        """Mount. Returns True when the mount is live, False when payloadfs
        failed (its message is in self.error); the daemon, if one was
        forked and died during start-up, is reaped (self.status)."""
        opts = "logfile=%s,pidfile=%s" % (self.log, self.pidfile)
        if self.opts:
            opts += "," + self.opts
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
        try:
            self.log_start = os.path.getsize(self.log)
        except OSError:
            self.log_start = 0
        errf = os.path.join(self.work, "mount.err")
        with open(errf, "w") as err:
            rc = subprocess.call([os.path.join(self.build, "payloadfs"), self.store, self.mnt,
                                  "-o", opts], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err, env=self.env(),
                                 timeout=120)
        with open(errf) as err:
            self.error = err.read().strip()
        if rc != 0:
            self.reap_strays()
            return False
        try:
            with open(self.pidfile) as f:
                self.pid = int(f.read().strip())
        except (OSError, ValueError) as e:
            raise MountError("payloadfs returned 0 but wrote no pid: %s" % e)
        if not is_mounted(self.mnt):
            raise MountError("payloadfs returned 0 but %s is not mounted" % self.mnt)
        return True

    def reap_strays(self, timeout=5):
        """A daemon that died during start-up never wrote a pidfile: reap
        whatever child of ours has exited (only daemons are our children
        here). Sets self.status from the last one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.01)
                continue
            self.status = st

    def alive(self):
        if self.pid is None or self.status is not None:
            return False
        pid, st = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.status = st
        return False

    def wait_exit(self, timeout=60):
        """Reap the daemon. Returns its waitpid status, or raises."""
        if self.pid is None:
            return self.status
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)      # ours: from our pidfile
                os.waitpid(self.pid, 0)
                raise MountError("daemon %d did not exit" % self.pid)
            time.sleep(0.005)
        return self.status

    def kill(self):
        """SIGKILL the daemon (the crash). A daemon that is writing a
        sanitizer report is left to finish it and exit on its own (up to
        60 s): a kill would cut the report short."""
        if self.alive() and self.reporting():
            deadline = time.monotonic() + 60
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.alive():
            self.killed_at = time.monotonic()
            os.kill(self.pid, signal.SIGKILL)

    def reporting(self):
        """True when this daemon has started a sanitizer report."""
        return self.pid is not None and os.path.exists(
            os.path.join(self.work, "sanitizer.%d" % self.pid))

    def died_by(self):
        """'SIGKILL', 'exit N', 'signal N' or None (still running)."""
        if self.status is None:
            return None
        if os.WIFSIGNALED(self.status):
            sig = os.WTERMSIG(self.status)
            return "SIGKILL" if sig == signal.SIGKILL else "signal %d" % sig
        return "exit %d" % os.WEXITSTATUS(self.status)

    def unmount(self, dead=False):
        """Unmount (a dead mount too: fusermount3 -u, then -uz) and reap
        the daemon. Returns the daemon's end ('exit 0' after a clean one)."""
        for i in range(50):
            if not is_mounted(self.mnt):
                break
            if subprocess.call(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL) == 0:
                break
            if dead or i >= 10:
                subprocess.call(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
                break
            time.sleep(0.1)
        if is_mounted(self.mnt):
            raise MountError("%s is still mounted" % self.mnt)
        self.wait_exit()
        return self.died_by()

    def sanitizer_reports(self):
        """Sanitizer report files written by daemons of this work dir."""
        out = []
        for name in sorted(os.listdir(self.work)):
            p = os.path.join(self.work, name)
            if name.startswith("sanitizer.") and os.path.getsize(p) > 0:
                out.append(p)
        return out

    def log_tail(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                return f.readlines()[-n:]
        except OSError:
            return []

    def fault_time(self, point):
        """The CLOCK_MONOTONIC time at which fault POINT killed this daemon
        (from its log), or None."""
        try:
            with open(self.log, errors="replace") as f:
                f.seek(self.log_start)
                text = f.read()
        except OSError:
            return None
        m = re.search(r"fault: %s: killing the process \(monotonic ([0-9.]+)\)" % re.escape(point), text)
        return float(m.group(1)) if m else None

    def fault_fired(self, point):
        """True when the daemon log says fault POINT killed this daemon."""
        return self.fault_time(point) is not None


def fsck(build, store, env=None):
    """Run payloadctl fsck. Returns (exit status, output lines, number of
    unreferenced-image warnings)."""
    p = subprocess.run([os.path.join(build, "payloadctl"), "fsck", store], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=env, timeout=600)
    lines = (p.stdout + p.stderr).splitlines()
    unref = sum(1 for ln in lines if ln.startswith("warning:") and "is not referenced" in ln)
    return p.returncode, lines, unref


def leftovers(store):
    """Files that must not survive a mount's sweep: staging files and
    temporary fragment images (docs/format.md)."""
    out = []
    sdir = os.path.join(store, "staging")
    for name in os.listdir(sdir):
        out.append("staging/" + name)
    fdir = os.path.join(store, "fragments")
    for sub in os.listdir(fdir):
        p = os.path.join(fdir, sub)
        if os.path.isdir(p):
            out.extend("fragments/%s/%s" % (sub, n) for n in os.listdir(p) if n.startswith(".tmp."))
    return out


def count_images(store):
    n = 0
    fdir = os.path.join(store, "fragments")
    for sub in os.listdir(fdir):
        p = os.path.join(fdir, sub)
        if os.path.isdir(p):
            n += sum(1 for x in os.listdir(p) if x.endswith(".frag"))
    return n


def file_value(path):
    """Tree value of a regular file: [sha256, format, user.note or None],
    and its bytes."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        note = os.getxattr(path, "user.note").decode()
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise
        note = None
    return [hash_bytes(data), os.getxattr(path, "user.payload.format").decode(), note], data


def read_tree(root, want_data=False):
    """{relative path: value} of everything under ROOT (views are never
    listed). Value: DIR for a directory, [sha256, format, note] for a file. With
    want_data, also {path: bytes}."""
    tree, data = {}, {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            tree[os.path.normpath(os.path.join(rel, d))] = DIR
        for fn in filenames:
            p = os.path.normpath(os.path.join(rel, fn))
            tree[p], b = file_value(os.path.join(dirpath, fn))
            if want_data:
                data[p] = b
    return (tree, data) if want_data else tree


def listed_images(root, tree):
    """Fragments the files of TREE (under ROOT) list (user.payload.fragments).
    Right after a mount's sweep, with no fragment shared between objects,
    this is the number of images on disk: an orphan the sweep missed would
    keep images no name lists."""
    return sum(int(os.getxattr(os.path.join(root, p), "user.payload.fragments"))
               for p, v in tree.items() if v != DIR)


def byid_mismatches(mnt, root, tree):
    """Files of TREE (under ROOT) whose MNT/.by-id/INO reads other bytes
    than the name: the object ID must name the same object after a crash."""
    bad = []
    for p, v in sorted(tree.items()):
        if v == DIR:
            continue
        ino = os.stat(os.path.join(root, p)).st_ino
        with open(os.path.join(mnt, ".by-id", str(ino)), "rb") as f:
            h = hash_bytes(f.read())
        if h != v[0]:
            bad.append("%s (id %d): .by-id reads %s.., the name %s.." % (p, ino, h[:12], v[0][:12]))
    return bad


def _raise(e):
    raise e
