#!/usr/bin/env bats
# mmap.bats — shared writable mappings with commit-on-close kept: bytes
# written through a MAP_SHARED mapping of an O_RDWR descriptor belong to
# the writer's session and commit at msync(MS_SYNC), fsync(2), close(2), or
# the munmap that ends the session after the last close; other descriptors
# read the last committed version until then; a failed commit reaches
# msync/fsync/close; numpy.memmap(mode="r+") works and persists.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

version() { xget "$1" user.payload.version; }

@test "MAP_SHARED writes commit at msync(MS_SYNC), fsync and close; readers see the old version until then" {
	mount_pfs
	gen_bin "$MNT/f" 300000 1
	python3 - "$MNT/f" <<'EOF'
import mmap, os, sys
p = sys.argv[1]
ver = lambda: int(os.getxattr(p, "user.payload.version"))
committed = lambda: open(p, "rb").read()
orig = committed()
v0 = ver()
fd = os.open(p, os.O_RDWR)
m = mmap.mmap(fd, 300000, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[0:5] = b"HELLO"
m[299995:300000] = b"WORLD"
assert os.pread(fd, 5, 0) == b"HELLO"           # the writer reads its mapped bytes
assert committed() == orig and ver() == v0      # nobody else does yet
m.flush()                                       # msync(MS_SYNC): a commit
want = b"HELLO" + orig[5:299995] + b"WORLD"
assert committed() == want, "after msync"
assert ver() == v0 + 1
m[1000:1003] = b"abc"
os.fsync(fd)                                    # fsync writes the pages back first
want = want[:1000] + b"abc" + want[1003:]
assert committed() == want, "after fsync"
assert ver() == v0 + 2
os.write(fd, b"12345")                          # write(2) at offset 0 beside the mapping
assert m[0:5] == b"12345"                       # the mapping shows it
m.close()                                       # munmap, and close of mmap's dup: a commit
want = b"12345" + want[5:]
assert committed() == want and ver() == v0 + 3
# a bare munmap (no descriptor closed) stages the pages, commits nothing
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
a = libc.mmap(None, 300000, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
assert a not in (None, ctypes.c_void_p(-1).value)
ctypes.memmove(a + 2000, b"xyz", 3)
assert libc.munmap(a, 300000) == 0
assert os.pread(fd, 3, 2000) == b"xyz"          # staged in the writer's session
assert committed() == want and ver() == v0 + 3
os.close(fd)                                    # close commits
want = want[:2000] + b"xyz" + want[2003:]
assert committed() == want, "after close"
assert ver() == v0 + 4
print("ok")
EOF
}

@test "a mapping written after the last close commits at munmap; mapped pages of a growing file" {
	mount_pfs
	echo start >"$MNT/g"
	python3 - "$MNT/g" <<'EOF'
import mmap, os, sys, time
p = sys.argv[1]
fd = os.open(p, os.O_RDWR)
os.ftruncate(fd, 3 * 4096 + 10)                 # mmap cannot grow a file: ftruncate first
m = mmap.mmap(fd, 3 * 4096 + 10, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
os.close(fd)                                    # commits: 12,298 bytes, "start\n" + zeros
assert os.stat(p).st_size == 3 * 4096 + 10
m[4096:4101] = b"later"                         # written after the last close
m[-3:] = b"end"
assert open(p, "rb").read(4101)[4096:] == b"\0" * 5
m.close()                                       # munmap: write-back, then the release commits
for _ in range(500):                            # the kernel sends the release in the background
    data = open(p, "rb").read()
    if data[4096:4101] == b"later":
        break
    time.sleep(0.01)
assert data[:6] == b"start\n" and data[4096:4101] == b"later" and data[-3:] == b"end", data[-16:]
assert len(data) == 3 * 4096 + 10
print("ok")
EOF
	unmount_pfs
	mount_pfs
	[ "$(head -c 5 "$MNT/g")" = start ]
	[ "$(tail -c 3 "$MNT/g")" = end ]
}

@test "numpy.memmap(mode=r+) changes persist after close and remount" {
	mount_pfs
	python3 - "$MNT/a.npy" "$TWIN/a.npy" <<'EOF'
import sys
import numpy as np
for p in sys.argv[1:]:
    a = np.arange(1_000_000, dtype=np.int64)
    a.tofile(p)
    m = np.memmap(p, dtype=np.int64, mode="r+")
    m[::1000] = -1
    m[123456] = 42
    m.flush()
    m[999_999] = 7           # not flushed: goes at close
    del m
b = np.fromfile(sys.argv[1], dtype=np.int64)
assert b[123456] == 42 and b[999_999] == 7 and (b[::1000] == -1).all(), b[:3]
print("ok")
EOF
	same_file "$MNT/a.npy" "$TWIN/a.npy"
	unmount_pfs
	mount_pfs
	same_file "$MNT/a.npy" "$TWIN/a.npy"
	python3 -c 'import numpy as np, sys
m = np.memmap(sys.argv[1], dtype=np.int64, mode="r")
assert m[123456] == 42 and m[1000] == -1 and m[999_999] == 7 and m[1001] == 1001' "$MNT/a.npy"
}

@test "a failed commit of mapped bytes reaches msync(MS_SYNC) and keeps the old version; close commits again" {
	mount_pfs
	gen_bin "$MNT/f" 200000 2
	cp "$MNT/f" "$TMP/orig"
	unmount_pfs
	# the next fragment write fails with ENOSPC (the commit at msync)
	PAYLOADFS_FAULT=frag_write:1:ENOSPC mount_pfs
	run python3 - "$MNT/f" <<'EOF'
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 200000, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[100:105] = b"XXXXX"
try:
    m.flush()
    print("msync OK")
except OSError as e:
    print("msync", errno.errorcode[e.errno])
print("committed", open(sys.argv[1], "rb").read(105)[100:].hex())
m.close()
os.close(fd)
EOF
	show_output
	[ "${lines[0]}" = "msync ENOSPC" ]
	[ "${lines[1]}" = "committed $(head -c 105 "$TMP/orig" | tail -c 5 | od -An -tx1 | tr -d ' \n')" ]
	grep -q 'fault point frag_write fired' "$LOG"
	# the fault fired once: the close after it commits the mapped bytes
	[ "$(head -c 105 "$MNT/f" | tail -c 5)" = XXXXX ]
	cmp -n 100 "$MNT/f" "$TMP/orig"
	daemon_alive
}

@test "mapped writes of an O_APPEND writer land where they are written; -o direct_io keeps MAP_SHARED refused" {
	mount_pfs
	printf '0123456789' >"$MNT/ap"
	printf '0123456789' >"$TWIN/ap"
	for d in "$MNT" "$TWIN"; do
		python3 - "$d/ap" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_APPEND)
m = mmap.mmap(fd, 10, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[2:4] = b"ab"
m.flush()
os.write(fd, b"tail")        # O_APPEND: at the end
m.close()
os.close(fd)
EOF
	done
	same_file "$MNT/ap" "$TWIN/ap"
	[ "$(cat "$MNT/ap")" = 01ab456789tail ]
	unmount_pfs
	mount_pfs direct_io
	run python3 -c 'import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    mmap.mmap(fd, 10, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    print("mapped")
except OSError as e:
    print(errno.errorcode[e.errno])' "$MNT/ap"
	[ "$output" = ENODEV ]
}

@test "a SQLite database in WAL mode and an LMDB environment with MDB_WRITEMAP work on a mount and survive a remount" {
	mount_pfs
	# the same work on the mount and on ext4; the databases' contents agree
	cat >"$TMP/db.py" <<'PY'
import sqlite3, sys, lmdb
d, what = sys.argv[1], sys.argv[2]
if what == "write":
    c = sqlite3.connect(d + "/t.sqlite")
    assert c.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
    c.execute("create table t(a integer primary key, b text)")
    for k in range(20):                      # 20 transactions
        c.executemany("insert into t values(?, ?)", [(k * 100 + i, "x%d" % i * 7) for i in range(100)])
        c.commit()
    c.execute("update t set b = 'changed' where a % 7 = 0")
    c.commit()
    c.close()
    e = lmdb.open(d + "/env", map_size=1 << 26, writemap=True)
    for k in range(10):
        with e.begin(write=True) as t:
            for i in range(500):
                t.put(b"k%05d" % (k * 500 + i), b"v%d" % i * 30)
    with e.begin(write=True) as t:
        for i in range(0, 5000, 3):
            t.delete(b"k%05d" % i)
    e.close()
c = sqlite3.connect(d + "/t.sqlite")
assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
for r in c.execute("select a, b from t order by a"):
    print("sql", r[0], r[1])
c.close()
e = lmdb.open(d + "/env", map_size=1 << 26, readonly=True, lock=False)
with e.begin() as t:
    for k, v in t.cursor():
        print("kv", k.decode(), len(v), v[:8].decode())
e.close()
PY
	/usr/bin/python3 "$TMP/db.py" "$TWIN" write >"$TMP/ext4.txt"
	/usr/bin/python3 "$TMP/db.py" "$MNT" write >"$TMP/pfs.txt"
	[ "$(grep -c '^sql ' "$TMP/ext4.txt")" -eq 2000 ]
	[ "$(grep -c '^kv ' "$TMP/ext4.txt")" -eq 3333 ]
	cmp "$TMP/ext4.txt" "$TMP/pfs.txt"
	unmount_pfs
	mount_pfs
	/usr/bin/python3 "$TMP/db.py" "$MNT" read >"$TMP/pfs2.txt"
	cmp "$TMP/ext4.txt" "$TMP/pfs2.txt"
}
