#!/usr/bin/env bats
# streams.bats — a reader follows its object while it only grows (DESIGN §5,
# §9; fs/ops.c (6), index/commit.c (9)): `tail -f` on the mount shows rows
# another process appends (append + close, append + fsync); a reader that
# opened before an append reads the new bytes with plain read(2); a
# rewrite, a truncate, a failed commit, or an append whose base was
# overtaken by another commit leave the reader on its version.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

# wait_for FILE TEXT — wait (at most 10 s) until FILE holds exactly TEXT.
# tail polls (the mount is not local for coreutils: no inotify); -s 0.1
# makes it poll every 100 ms.
wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(cat "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	echo "# $1 holds:" >&2
	sed 's/^/#   /' "$1" >&2
	echo "# want:" >&2
	printf '%s\n' "$2" | sed 's/^/#   /' >&2
	return 1
}

# start_tail FILE OUT — `tail -f` FILE into OUT in the background, once it
# printed what FILE holds now (so it opened FILE before what follows).
start_tail() {
	tail -s 0.1 -n +1 -f "$1" >"$2" 2>"$2.err" &
	BG_PIDS+=($!)
	wait_for "$2" "$(cat "$1")"
}

@test "tail -f follows rows appended by other processes' append + close" {
	mount_pfs
	printf 'ts,msg\n1,start\n' >"$MNT/log.csv"
	start_tail "$MNT/log.csv" "$TMP/out"
	echo "2,second" >>"$MNT/log.csv"
	wait_for "$TMP/out" "$(printf 'ts,msg\n1,start\n2,second')"
	echo "3,third" >>"$MNT/log.csv"
	echo "4,fourth" >>"$MNT/log.csv"
	wait_for "$TMP/out" "$(printf 'ts,msg\n1,start\n2,second\n3,third\n4,fourth')"
	# many appends in a row: the follower's node moves at each one (each
	# writer's open is refused on it, ESTALE, and retried on a node of
	# its own, which the kernel forgets after the close)
	local want i
	want=$(printf 'ts,msg\n1,start\n2,second\n3,third\n4,fourth')
	for ((i = 5; i <= 16; i++)); do
		echo "$i,row" >>"$MNT/log.csv"
		want+=$'\n'"$i,row"
		wait_for "$TMP/out" "$want"
	done
	[ ! -s "$TMP/out.err" ]
	[ "$(xget "$MNT/log.csv" user.payload.version)" -ge 15 ]
}

@test "tail -f follows a writer that appends and fsyncs without closing (fragments, past the inline size)" {
	mount_pfs fragment_size=65536
	gen_lines "$MNT/big.log" 2000          # ~100 KB: fragments, not inline
	start_tail "$MNT/big.log" "$TMP/out"
	python3 - "$MNT/big.log" "$TMP/out" <<'PY'
import os, sys, time
path, out = sys.argv[1], sys.argv[2]
base = open(path, "rb").read()
def shown(want, what):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if open(out, "rb").read() == want:
            return
        time.sleep(0.05)
    sys.exit("tail did not show %s: %r" % (what, open(out, "rb").read()[len(base):]))
w = os.open(path, os.O_WRONLY | os.O_APPEND)
got = base
for i in range(3):
    row = b"fsync-row-%d,%s\n" % (i, b"z" * (i * 5000))
    os.write(w, row)
    got += row
    os.fsync(w)                       # publishes what was written so far
    shown(got, "row %d after fsync" % i)
os.write(w, b"last\n")
os.close(w)
shown(got + b"last\n", "the row of the close")
PY
}

@test "a reader that opened before an append reads the new bytes with plain read(2)" {
	mount_pfs fragment_size=65536
	python3 - "$MNT" <<'PY'
import os, subprocess, sys
mnt = sys.argv[1]
for name, size in (("small.csv", 3001), ("large.csv", 150001)):   # inline; 3 fragments
    p = os.path.join(mnt, name)
    old = b"".join(b"%07d\n" % i for i in range(size // 8)) + b"x" * (size % 8)
    open(p, "wb").write(old)
    r = os.open(p, os.O_RDONLY)
    got = b""
    while chunk := os.read(r, 65536):
        got += chunk
    assert got == old
    assert os.read(r, 100) == b""                  # at the end
    # another process appends (its own open, write, close); the old end
    # is inside a page the reader's page cache holds
    subprocess.run(["sh", "-c", 'printf "appended-1\\nappended-2\\n" >> "$1"', "sh", p], check=True)
    new = old + b"appended-1\nappended-2\n"
    assert os.fstat(r).st_size == len(new), (name, os.fstat(r).st_size, len(new))
    tail = os.read(r, 1000)
    assert tail == b"appended-1\nappended-2\n", (name, tail)
    assert os.read(r, 100) == b""
    # every byte it read before is still there, the page of the old end too
    assert os.pread(r, 200, len(old) - 100) == new[len(old) - 100:len(old) + 100], name
    assert os.pread(r, len(new) + 10, 0) == new, name
    assert os.lseek(r, 0, os.SEEK_END) == len(new)
    # a second append moves it again
    subprocess.run(["sh", "-c", 'printf "appended-3\\n" >> "$1"', "sh", p], check=True)
    assert os.read(r, 100) == b"appended-3\n", name
    # a new reader sees the same bytes
    assert open(p, "rb").read() == new + b"appended-3\n", name
    os.close(r)
PY
}

@test "a rewrite does not move the reader, even one that keeps the size growing" {
	mount_pfs fragment_size=65536
	python3 - "$MNT" <<'PY'
import os, sys
mnt = sys.argv[1]
for name, old in (("s.csv", b"a,1\nb,2\n"), ("l.csv", b"".join(b"%07d\n" % i for i in range(20000)))):
    p = os.path.join(mnt, name)
    open(p, "wb").write(old)
    r = os.open(p, os.O_RDONLY)
    assert os.read(r, len(old) + 1) == old
    # O_RDWR: change the first byte, then append: bigger, every later
    # byte kept, but byte 0 differs — a rewrite, not an append
    w = os.open(p, os.O_RDWR)
    os.pwrite(w, b"Z", 0)
    os.pwrite(w, b"more\n", len(old))
    os.close(w)
    assert open(p, "rb").read() == b"Z" + old[1:] + b"more\n"
    assert os.fstat(r).st_size == len(old), (name, os.fstat(r).st_size)
    assert os.read(r, 100) == b"", name
    assert os.pread(r, 1, 0) == old[:1], name
    assert os.pread(r, len(old) + 100, 0) == old, name
    # O_TRUNC rewrite with a longer content that starts with the same bytes
    w = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.write(w, old + b"x\n")
    os.close(w)
    assert os.fstat(r).st_size == len(old), name
    assert os.pread(r, len(old) + 100, 0) == old, name
    # later appends do not reach it either: it is on an older version
    with open(p, "ab") as a:
        a.write(b"y\n")
    assert os.fstat(r).st_size == len(old), name
    assert os.read(r, 100) == b"", name
    os.close(r)
PY
}

@test "a truncate does not move the reader: shrinking, growing, or followed by writes" {
	mount_pfs fragment_size=65536
	python3 - "$MNT/t.csv" <<'PY'
import os, subprocess, sys
p = sys.argv[1]
old = b"".join(b"%05d\n" % i for i in range(30000))     # 180000 bytes
open(p, "wb").write(old)
r = os.open(p, os.O_RDONLY)
assert os.pread(r, 10, 0) == old[:10]
os.truncate(p, 100)                                    # truncate(2), no handle
with open(p, "ab") as a:
    a.write(b"n" * 200000)                             # bigger than before
assert os.path.getsize(p) == 200100
assert os.fstat(r).st_size == len(old)
assert os.pread(r, len(old) + 1000, 0) == old
# truncate(1) growing the object (open, ftruncate, close): every byte is
# kept, but a truncate is no append
r2 = os.open(p, os.O_RDONLY)
subprocess.run(["truncate", "-s", "300000", p], check=True)
assert os.path.getsize(p) == 300000
assert os.fstat(r2).st_size == 200100, os.fstat(r2).st_size
assert os.pread(r2, 100, 200090) == b"n" * 10
# a writer that shrinks, then writes past the reader's end
r3 = os.open(p, os.O_RDONLY)
w = os.open(p, os.O_RDWR)
os.ftruncate(w, 50)
os.pwrite(w, b"x" * 400000, 50)
os.close(w)
assert os.path.getsize(p) == 400050
assert os.fstat(r3).st_size == 300000, os.fstat(r3).st_size
assert os.pread(r3, 10, 299990) == b"\0" * 10
# after the truncating commit, the next plain append is followed again
r4 = os.open(p, os.O_RDONLY)
with open(p, "ab") as a:
    a.write(b"end\n")
assert os.fstat(r4).st_size == 400054, os.fstat(r4).st_size
assert os.pread(r4, 4, 400050) == b"end\n"
for fd in (r, r2, r3, r4):
    os.close(fd)
PY
}

@test "an append committed on a base another commit overtook moves nobody" {
	mount_pfs
	python3 - "$MNT/o.csv" <<'PY'
import os, sys
p = sys.argv[1]
open(p, "wb").write(b"v1\n")
a = os.open(p, os.O_WRONLY | os.O_APPEND)          # base: v1
with open(p, "wb") as b:
    b.write(b"rewritten-v2\n")                     # v2, a rewrite
r = os.open(p, os.O_RDONLY)                         # a reader of v2
assert os.read(r, 100) == b"rewritten-v2\n"
os.write(a, b"a\n")
os.close(a)                                         # v3 = v1 + "a\n": the last commit wins
assert open(p, "rb").read() == b"v1\na\n"
assert os.fstat(r).st_size == len(b"rewritten-v2\n")
assert os.pread(r, 100, 0) == b"rewritten-v2\n"
assert os.read(r, 100) == b""
os.close(r)
PY
}

@test "a failed append commit moves nobody; the next append does" {
	# fragment image writes: #1 the first content; #2 the first append
	# (it re-cuts the small last fragment) fails with ENOSPC
	PAYLOADFS_FAULT=frag_write:2:ENOSPC mount_pfs fragment_size=65536
	python3 - "$MNT/f.log" <<'PY'
import errno, os, sys
p = sys.argv[1]
old = b"r" * 4999 + b"\n"                           # not inline
open(p, "wb").write(old)
r = os.open(p, os.O_RDONLY)
assert os.read(r, 10000) == old
w = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(w, b"lost\n")
try:
    os.close(w)
    sys.exit("close should have failed")
except OSError as e:
    assert e.errno == errno.ENOSPC, e
assert os.fstat(r).st_size == len(old)
assert os.read(r, 100) == b""
with open(p, "ab") as a:
    a.write(b"kept\n")
assert os.read(r, 100) == b"kept\n"
assert os.fstat(r).st_size == len(old) + 5
os.close(r)
PY
	grep -q 'fault point frag_write fired' "$LOG"
}

@test "a fixed:N append refused at close (EINVAL) moves nobody" {
	mount_pfs
	python3 - "$MNT/recs" <<'PY'
import errno, os, sys
p = sys.argv[1]
open(p, "wb").close()
os.setxattr(p, "user.payload.format", b"fixed:4")
open(p, "ab").write(b"AAAABBBB")
r = os.open(p, os.O_RDONLY)
assert os.read(r, 100) == b"AAAABBBB"
w = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(w, b"CCC")                                 # not a whole record
try:
    os.close(w)
    sys.exit("close should have failed")
except OSError as e:
    assert e.errno == errno.EINVAL, e
assert os.fstat(r).st_size == 8
assert os.read(r, 100) == b""
open(p, "ab").write(b"DDDD")
assert os.read(r, 100) == b"DDDD"
os.close(r)
PY
}

@test "a view and an unlinked object's reader do not follow" {
	mount_pfs
	python3 - "$MNT" <<'PY'
import os, sys
mnt = sys.argv[1]
p = os.path.join(mnt, "v.csv")
open(p, "wb").write(b"h\n1\n2\n")
v = os.open(p + "@rows=0:", os.O_RDONLY)            # views keep their map
assert os.read(v, 100) == b"h\n1\n2\n"
u = os.open(p, os.O_RDONLY)
assert os.read(u, 100) == b"h\n1\n2\n"
os.unlink(p)                                        # a new object takes the name
open(p, "wb").write(b"h\n1\n2\n3\n")
with open(p, "ab") as a:
    a.write(b"4\n")
assert os.read(u, 100) == b""
assert os.fstat(u).st_size == 6
assert os.read(v, 100) == b""
assert os.fstat(v).st_size == 6
os.close(u)
os.close(v)
PY
}

@test "copy_file_range from a reader that followed an append copies the new bytes" {
	mount_pfs fragment_size=65536
	python3 - "$MNT" <<'PY'
import os, sys
mnt = sys.argv[1]
src, dst = os.path.join(mnt, "src.log"), os.path.join(mnt, "dst.log")
old = b"".join(b"%07d\n" % i for i in range(20000))      # fragments
open(src, "wb").write(old)
r = os.open(src, os.O_RDONLY)
with open(src, "ab") as a:
    a.write(b"tail-row\n")
w = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n, at = 0, 0
while True:
    k = os.copy_file_range(r, w, 1 << 20, at, at)
    if k == 0:
        break
    at += k
os.close(w)
assert at == len(old) + 9, at
assert open(dst, "rb").read() == old + b"tail-row\n"
os.close(r)
PY
}

@test "a follower maps the appended bytes without asking the size first" {
	mount_pfs fragment_size=65536
	python3 - "$MNT/m.log" <<'PY'
import ctypes, mmap, os, sys
# libc's mmap, not Python's (which fstats the file first): nothing here
# asks the kernel for the size after the append; a fault past the size
# the kernel knows is SIGBUS, which kills python and fails the test
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
p = sys.argv[1]
old = b"".join(b"%07d\n" % i for i in range(10000)) + b"x" * 100   # 80100 bytes
open(p, "wb").write(old)
r = os.open(p, os.O_RDONLY)
assert os.read(r, len(old) + 1) == old
add = b"y" * 20000 + b"\n"
with open(p, "ab") as a:
    a.write(add)
n = len(old) + len(add)
addr = libc.mmap(None, n, mmap.PROT_READ, mmap.MAP_SHARED, r, 0)
assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
assert ctypes.string_at(addr, n) == old + add
libc.munmap(addr, n)
os.close(r)
PY
}

@test "readers follow two appends whose moves ran in the other order (the later append's first)" {
	# follow_delay: the first append's move waits 1 s (fs/ops.c (6g)), so
	# the second append, which opened after the first committed, moves
	# first and finds nobody on the first append's version yet
	PAYLOADFS_FAULT=follow_delay:1:EIO mount_pfs
	python3 - "$MNT/f.log" <<'PY'
import os, sys, threading, time
p = sys.argv[1]
old = b"base\n"
open(p, "wb").write(old)
r = os.open(p, os.O_RDONLY)
assert os.read(r, 100) == old
def append(data):
    w = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.write(w, data)
    os.close(w)
a = threading.Thread(target=append, args=(b"a\n",))
a.start()
deadline = time.monotonic() + 0.9
while True:          # the first append committed (its move still waits)
    with open(p, "rb") as f:
        if f.read() == old + b"a\n":
            break
    assert time.monotonic() < deadline, "the first append did not commit"
    time.sleep(0.01)
append(b"b\n")
assert a.is_alive(), "the first append's move did not wait"
a.join()
assert os.read(r, 100) == b"a\nb\n"
append(b"c\n")
assert os.read(r, 100) == b"c\n"
assert os.fstat(r).st_size == len(old) + 6
os.close(r)
PY
	grep -q 'fault point follow_delay fired' "$LOG"
}
