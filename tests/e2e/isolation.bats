#!/usr/bin/env bats
# isolation.bats — regression tests for what tests/stress/fsx found: every
# descriptor keeps its version's bytes AND size (fstat, lseek SEEK_END,
# mmap) while other descriptors of the same object write, truncate and
# commit; a writer never shares a FUSE node with readers (fs/fnode.h).

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

@test "a reader's lseek(SEEK_END) and fstat keep its version's size after a stat cached the new one" {
	mount_pfs
	python3 - "$MNT/a" <<'PY'
import os, sys
p = sys.argv[1]
open(p, "wb").write(b"x" * 5550)
w = os.open(p, os.O_RDWR)
r = os.open(p, os.O_RDONLY)            # opened while a writer is open
os.pwrite(w, b"X", 0)                  # a rewrite: readers keep their version
os.lseek(w, 0, os.SEEK_END)            # (a pure append moves them: streams.bats)
os.write(w, b"y" * 60000)
os.close(w)                            # commits 65550 bytes
assert os.stat(p).st_size == 65550     # the kernel may cache this size
assert os.fstat(r).st_size == 5550, os.fstat(r).st_size
assert os.lseek(r, 0, os.SEEK_END) == 5550, os.lseek(r, 0, os.SEEK_END)
assert os.pread(r, 10, 5545) == b"x" * 5
os.close(r)
PY
}

@test "a reader's MAP_PRIVATE mapping survives a writer's ftruncate, O_TRUNC and commit" {
	mount_pfs fragment_size=65536
	python3 - "$MNT/b" <<'PY'
import mmap, os, signal, sys
signal.signal(signal.SIGBUS, signal.SIG_DFL)
p = sys.argv[1]
old = bytes(range(256)) * 400          # 102400 bytes
open(p, "wb").write(old)
w = os.open(p, os.O_RDWR)
r = os.open(p, os.O_RDONLY)
m = mmap.mmap(r, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
assert m[:] == old
os.ftruncate(w, 10)                    # the writer's node only
assert m[100000:100010] == old[100000:100010]
w2 = os.open(p, os.O_WRONLY | os.O_TRUNC)
os.write(w2, b"new\n")
os.close(w2)
os.close(w)
assert m[:] == old, "the mapping changed"
assert os.fstat(r).st_size == len(old)
m.close()
os.close(r)
assert open(p, "rb").read() == old[:10]   # the last commit wins
PY
}

@test "a reopen through /proc/self/fd of a replaced version leaves the old page-cache reader's bytes alone" {
	mount_pfs fragment_size=65536
	python3 - "$MNT/c" <<'PY'
import mmap, os, sys
p = sys.argv[1]
open(p, "wb").write(b"A" * 100000)
r1 = os.open(p, os.O_RDONLY)
assert os.pread(r1, 4096, 0) == b"A" * 4096          # page cache of its node
w = os.open(p, os.O_WRONLY | os.O_TRUNC)
os.write(w, b"B" * 100000)
os.close(w)
try:
    r2 = os.open("/proc/self/fd/%d" % r1, os.O_RDONLY)
except OSError as e:                                   # refused: r1 is unharmed
    r2 = None
    assert e.errno == 116, e                           # ESTALE
if r2 is not None:
    m = mmap.mmap(r2, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    assert m[:4] == b"BBBB" and m[50000:50004] == b"BBBB", "r2 reads the current version"
    m.close()
    os.close(r2)
assert os.pread(r1, 100000, 0) == b"A" * 100000, "the old reader read another version"
os.close(r1)
PY
}

@test "readers and writers of one name: every open sees one whole version, and a writer's retry never surfaces ESTALE" {
	mount_pfs fragment_size=65536
	python3 - "$MNT/d" <<'PY'
import mmap, os, sys, threading
p = sys.argv[1]
vers = [bytes([65 + i]) * (20000 + 7919 * i) for i in range(6)]
open(p, "wb").write(vers[0])
bad = []
def reader():
    for _ in range(150):
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError as e:
            bad.append("reader open: %s" % e); return
        n = os.fstat(fd).st_size
        d = os.pread(fd, 1 << 20, 0)
        if n:
            m = mmap.mmap(fd, n, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
            if m[:] != d: bad.append("mapping differs from read")
            m.close()
        if d not in vers or len(d) != n: bad.append("read %d bytes (fstat %d): no version" % (len(d), n))
        os.close(fd)
def writer(k):
    for i in range(40):
        try:
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC if i % 2 else os.O_RDWR)
        except OSError as e:
            bad.append("writer open: %s" % e); return
        v = vers[(k + i) % len(vers)]
        os.ftruncate(fd, 0)
        os.pwrite(fd, v, 0)
        os.close(fd)
ts = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer, args=(k,)) for k in range(2)]
for t in ts: t.start()
for t in ts: t.join()
assert not bad, bad[:5]
PY
}

@test "a writer's lseek(SEEK_END) and fstat show its staged size right after another stat of the name" {
	mount_pfs
	python3 - "$MNT/e" <<'PY'
import os, sys
p = sys.argv[1]
open(p, "wb").write(b"c" * 184628)
for i in range(50):
    w = os.open(p, os.O_RDWR)
    os.pwrite(w, b"s", 254744 + i)          # a sparse extend: staged 254745+i
    os.stat(p)                              # the committed size, same jiffy
    end = os.lseek(w, 0, os.SEEK_END)
    assert end == 254745 + i, "lseek(SEEK_END) %d, staged %d" % (end, 254745 + i)
    assert os.fstat(w).st_size == 254745 + i, os.fstat(w).st_size
    os.write(w, b"t")
    os.ftruncate(w, 184628)
    os.close(w)
assert open(p, "rb").read() == b"c" * 184628
PY
}
