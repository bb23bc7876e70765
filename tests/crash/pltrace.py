"""pltrace — read the trace plshim.c writes (and the workload's marks in
it) into a list of events. The layout is plshim.c's struct rec.

  pltrace.py TRACE [--data]      print the events, one a line
"""

import json
import mmap
import os
import struct
import sys

REC_FMT = "<IHHIIiiqqQQIIII"
REC_LEN = struct.calcsize(REC_FMT)
assert REC_LEN == 72

OPEN, CLOSE, WRITE, TRUNC, FALLOC, SYNC_BEGIN, SYNC_END = 1, 2, 3, 4, 5, 6, 7
UNLINK, RMDIR, MKDIR, RENAME, LINK, MMAPW, MSYNC, URING, UNSUPP = 8, 9, 10, 11, 12, 13, 14, 15, 16
MARK, SFR = 20, 21
NAMES = {OPEN: "open", CLOSE: "close", WRITE: "write", TRUNC: "trunc", FALLOC: "falloc",
         SYNC_BEGIN: "sync<", SYNC_END: "sync>", UNLINK: "unlink", RMDIR: "rmdir",
         MKDIR: "mkdir", RENAME: "rename", LINK: "link", MMAPW: "mmapw", MSYNC: "msync",
         URING: "uring", UNSUPP: "unsupported", MARK: "mark", SFR: "sync_file_range"}
F_CREATED, F_DSYNC = 1, 2
SK_FSYNC, SK_FDATASYNC, SK_SYNCFS, SK_SYNC = 1, 2, 3, 4
SK_NAMES = {SK_FSYNC: "fsync", SK_FDATASYNC: "fdatasync", SK_SYNCFS: "syncfs", SK_SYNC: "sync"}


class Event:
    """One record. pos is its index in the trace; data is (offset, length)
    into the trace's bytes (Trace.data() reads it)."""
    __slots__ = ("pos", "type", "flags", "pid", "tid", "fd", "ret", "a", "b", "ino", "t_ns",
                 "path", "path2", "doff", "dlen", "mark")

    def describe(self, root=""):
        def rel(p):
            return p[len(root):].lstrip("/") if root and p and p.startswith(root) else p
        name = NAMES.get(self.type, str(self.type))
        if self.type == MARK:
            return "#%d mark %s" % (self.pos, json.dumps(self.mark, sort_keys=True)[:200])
        s = "#%d t=%.3f pid=%d %s" % (self.pos, self.t_ns / 1e9, self.pid, name)
        if self.type in (SYNC_BEGIN, SYNC_END):
            s += " %s" % SK_NAMES.get(self.flags, self.flags)
        if self.path:
            s += " " + rel(self.path)
        if self.path2:
            s += " -> " + rel(self.path2)
        if self.type == OPEN:
            s += " fd=%d flags=%#o%s" % (self.fd, self.a, " CREATED" if self.flags & F_CREATED else "")
        elif self.type == WRITE:
            s += " fd=%d off=%d len=%d%s" % (self.fd, self.a, self.dlen,
                                             " dsync" if self.flags & F_DSYNC else "")
        elif self.type in (TRUNC, FALLOC):
            s += " len=%d" % self.a if self.type == TRUNC else " off=%d len=%d" % (self.a, self.b)
        elif self.type == SYNC_END:
            s += " ret=%d%s" % (self.ret, " (delayed)" if self.b else "")
        elif self.type == CLOSE:
            s += " fd=%d" % self.fd
        return s


class Trace:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        size = os.fstat(self.f.fileno()).st_size
        self.buf = mmap.mmap(self.f.fileno(), size, prot=mmap.PROT_READ) if size else b""
        self.events = []
        self._parse()

    def _parse(self):
        buf, off, n = self.buf, 0, len(self.buf)
        while off < n:
            if n - off < REC_LEN:
                raise ValueError("%s: a record cut short at byte %d" % (self.path, off))
            (ln, typ, flags, pid, tid, fd, ret, a, b, ino, t_ns, n1, n2, nd,
             _pad) = struct.unpack_from(REC_FMT, buf, off)
            if ln != REC_LEN + n1 + n2 + nd or off + ln > n:
                raise ValueError("%s: a damaged record at byte %d" % (self.path, off))
            e = Event()
            e.pos, e.type, e.flags, e.pid, e.tid, e.fd, e.ret = len(self.events), typ, flags, pid, tid, fd, ret
            e.a, e.b, e.ino, e.t_ns = a, b, ino, t_ns
            p = off + REC_LEN
            e.path = bytes(buf[p:p + n1]).decode("utf-8", "surrogateescape") if n1 else None
            p += n1
            e.path2 = bytes(buf[p:p + n2]).decode("utf-8", "surrogateescape") if n2 else None
            p += n2
            e.doff, e.dlen = p, nd
            e.mark = json.loads(bytes(buf[p:p + nd])) if typ == MARK else None
            self.events.append(e)
            off += ln

    def data(self, e):
        return self.buf[e.doff:e.doff + e.dlen]


def write_mark(fd, obj, t_ns):
    """Append a MARK record holding OBJ (JSON) to the trace open as FD
    (O_APPEND): one write, so it lands whole between the shim's records."""
    data = json.dumps(obj, sort_keys=True).encode()
    hdr = struct.pack(REC_FMT, REC_LEN + len(data), MARK, 0, os.getpid(), 0, -1, 0, 0, 0, 0,
                      t_ns, 0, 0, len(data), 0)
    rec = hdr + data
    if os.write(fd, rec) != len(rec):
        raise OSError("short write of a trace mark")


def main():
    t = Trace(sys.argv[1])
    root = None
    for e in t.events:
        if root is None and e.path and "/index/" in e.path:
            root = e.path.split("/index/")[0]
        print(e.describe(root or ""))
        if "--data" in sys.argv and e.type == WRITE:
            print("    " + bytes(t.data(e)[:64]).hex())


if __name__ == "__main__":
    main()
