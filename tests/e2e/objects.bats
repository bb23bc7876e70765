#!/usr/bin/env bats
# objects.bats — objects as ordinary files. Every operation is done both on
# the mount and on an ext4 twin directory; the twin is the oracle.

load helpers

setup() {
	pfs_init
	mount_pfs
}
teardown() { pfs_teardown; }

@test "cp a CSV in: byte-for-byte equal, same size and line count" {
	gen_csv "$TMP/src.csv" 30000
	cp "$TMP/src.csv" "$MNT/events.csv"
	cp "$TMP/src.csv" "$TWIN/events.csv"
	same_file "$MNT/events.csv" "$TMP/src.csv"
	[ "$(stat -c %s "$MNT/events.csv")" = "$(stat -c %s "$TMP/src.csv")" ]
	in_both 'wc -l events.csv; md5sum events.csv; tail -c 100 events.csv'
	in_both 'dd if=events.csv bs=1000 skip=37 count=5 status=none | md5sum'
	same_tree
}

@test "create an empty file, a small file and a file with no final newline" {
	in_both 'touch empty && printf "one line" > nonl.txt && echo hi > hi.txt'
	in_both 'stat -c "%n %s %F" empty nonl.txt hi.txt; cat nonl.txt hi.txt'
	same_tree
}

@test "overwrite: a longer file with a shorter one and back" {
	gen_csv "$TMP/long.csv" 20000 1
	gen_csv "$TMP/short.csv" 50 2
	in_both "cp '$TMP/long.csv' f.csv && cp '$TMP/short.csv' f.csv"
	same_file "$MNT/f.csv" "$TMP/short.csv"
	in_both "cp '$TMP/long.csv' f.csv"
	same_file "$MNT/f.csv" "$TMP/long.csv"
	in_both 'echo replaced > f.csv && cat f.csv && stat -c %s f.csv'
	same_tree
}

@test "append with >> to small and multi-fragment files" {
	gen_csv "$TMP/src.csv" 40000
	in_both "printf 'a\nb\n' > s.txt && printf 'c\n' >> s.txt && seq 1 1000 >> s.txt"
	in_both "cp '$TMP/src.csv' big.csv && seq 1 10 >> big.csv && printf 'no newline' >> big.csv && echo tail >> big.csv"
	in_both 'tail -n 15 big.csv; wc -l s.txt big.csv'
	same_tree
}

@test "O_APPEND writes land at the end even after a seek" {
	in_both "seq 1 100 > a.txt"
	for d in "$MNT" "$TWIN"; do
		python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.lseek(fd, 0, os.SEEK_SET)
os.write(fd, b"appended\n")
os.close(fd)' "$d/a.txt"
	done
	same_tree
}

@test "dd conv=notrunc seek= patches in place, also past the end" {
	gen_csv "$TMP/src.csv" 20000
	gen_bin "$TMP/patch" 10000 3
	in_both "cp '$TMP/src.csv' f.csv"
	in_both "printf XYZ | dd of=f.csv bs=1 seek=1000 conv=notrunc status=none"
	in_both "dd if='$TMP/patch' of=f.csv bs=4096 seek=10 conv=notrunc status=none"
	in_both "dd if='$TMP/patch' of=f.csv bs=1 seek=\$((\$(stat -c %s f.csv) - 10)) count=100 conv=notrunc status=none"
	in_both "stat -c %s f.csv"
	# past the end: the gap reads as zeros
	in_both "printf END | dd of=f.csv bs=1 seek=\$((\$(stat -c %s f.csv) + 5000)) conv=notrunc status=none"
	in_both "stat -c %s f.csv; tail -c 5010 f.csv | od -c | head -3"
	same_tree
}

@test "truncate -s smaller, larger (zero fill) and 0" {
	gen_csv "$TMP/src.csv" 20000
	in_both "cp '$TMP/src.csv' f.csv && truncate -s 12345 f.csv && stat -c %s f.csv"
	same_tree
	in_both "truncate -s 3000000 f.csv && stat -c %s f.csv"
	same_tree
	in_both "truncate -s 100 f.csv && echo more >> f.csv && truncate -s 0 f.csv && stat -c %s f.csv && wc -c < f.csv"
	same_tree
	in_both "truncate -s 7 new.txt && od -c new.txt"
	same_tree
}

@test "rm removes files; removing a missing file or a directory fails" {
	gen_csv "$TMP/src.csv" 3000
	in_both "cp '$TMP/src.csv' a.csv && echo x > b && mkdir d"
	in_both 'rm a.csv && ls'
	expect_errno ENOENT stat "$MNT/a.csv"
	expect_errno ENOENT unlink "$MNT/a.csv"
	expect_errno EISDIR unlink "$MNT/d"
	in_both 'rm b; ls'
	same_tree
}

@test "an unlinked file stays readable through an open descriptor" {
	gen_csv "$TMP/src.csv" 20000
	cp "$TMP/src.csv" "$MNT/f.csv"
	python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
assert not os.path.exists(sys.argv[1])
data = b""
while True:
    b = os.read(fd, 1 << 16)
    if not b: break
    data += b
os.close(fd)
assert data == open(sys.argv[2], "rb").read(), "content changed after unlink"' "$MNT/f.csv" "$TMP/src.csv"
	[ -z "$(ls "$MNT")" ]
}

@test "mv over an existing file replaces it atomically" {
	gen_csv "$TMP/old.csv" 20000 1
	gen_csv "$TMP/new.csv" 15000 2
	in_both "cp '$TMP/old.csv' target.csv && cp '$TMP/new.csv' src.csv"
	ino=$(stat -c %i "$MNT/src.csv")
	# a reader of the old target keeps its content across the replace
	python3 - "$MNT" "$TMP/old.csv" <<'EOF'
import os, subprocess, sys
mnt, old = sys.argv[1], open(sys.argv[2], "rb").read()
fd = os.open(mnt + "/target.csv", os.O_RDONLY)
head = os.read(fd, 100)
subprocess.run(["mv", "src.csv", "target.csv"], cwd=mnt, check=True)
data = head
while True:
    b = os.read(fd, 1 << 16)
    if not b: break
    data += b
os.close(fd)
assert data == old, "the open reader saw the replacing file"
EOF
	(cd "$TWIN" && mv src.csv target.csv)
	[ "$(stat -c %i "$MNT/target.csv")" = "$ino" ]
	same_file "$MNT/target.csv" "$TMP/new.csv"
	expect_errno ENOENT stat "$MNT/src.csv"
	same_tree
}

@test "rename(2) over an existing file is never observed half done" {
	gen_csv "$TMP/a.csv" 5000 1
	gen_csv "$TMP/b.csv" 5000 2
	cp "$TMP/a.csv" "$MNT/cur.csv"
	python3 - "$MNT" "$TMP/a.csv" "$TMP/b.csv" <<'EOF'
import os, shutil, sys, threading
mnt, a, b = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
stop, bad = False, []
def reader():
    while not stop:
        try:
            with open(mnt + "/cur.csv", "rb") as f:
                d = f.read()
        except FileNotFoundError:
            bad.append("cur.csv missing during rename")
            return
        if d not in (a, b):
            bad.append("mixed content, %d bytes" % len(d))
            return
t = threading.Thread(target=reader)
t.start()
for i in range(40):
    with open(mnt + "/tmp.csv", "wb") as f:
        f.write(b if i % 2 == 0 else a)
    os.rename(mnt + "/tmp.csv", mnt + "/cur.csv")
stop = True
t.join()
assert not bad, bad
EOF
}

@test "mv of directories: rename, move into another, over an empty one; errors" {
	gen_csv "$TMP/src.csv" 2000
	in_both "mkdir -p a/b/c x empty && cp '$TMP/src.csv' a/b/c/f.csv && echo y > a/y"
	in_both 'mv a z && ls -R'
	in_both 'mv z/b x/ && ls -R'
	in_both 'mv x/b empty && ls -R'
	in_both 'mkdir -p full/sub && mv z full; echo $?'
	in_both 'mkdir -p p/q && mkdir -p r/q/nonempty && mv -T p/q r/q; echo $?'
	in_both 'mv full full/sub/into-itself; echo $?'
	in_both 'mkdir dd && echo f > file && mv dd file; echo $?; mv file dd; echo $?'
	same_tree
	same_file "$MNT/empty/b/c/f.csv" "$TMP/src.csv"
	# rename(2) of a non-empty directory over a non-empty one: ENOTEMPTY
	expect_errno ENOTEMPTY rename "$MNT/full" "$MNT/r"
}

@test "ln: a hard link shares the inode, nlink 2, writes show through" {
	in_both 'seq 1 1000 > a.txt && ln a.txt b.txt && stat -c "%h" a.txt b.txt'
	[ "$(stat -c %i "$MNT/a.txt")" = "$(stat -c %i "$MNT/b.txt")" ]
	[ "$(stat -c %h "$MNT/a.txt")" = 2 ]
	in_both 'echo more >> b.txt && tail -n 2 a.txt'
	same_tree
	in_both 'rm a.txt && stat -c %h b.txt && tail -n 1 b.txt'
	in_both 'mkdir d && ln d d2; echo $?'
	expect_errno EEXIST link "$MNT/b.txt" "$MNT/b.txt"
	same_tree
}

@test "ln -s and readlink, dangling links, links to directories" {
	in_both 'mkdir -p dir/sub && echo hello > dir/sub/f && ln -s dir/sub/f s1 && ln -s dir d1 && ln -s nowhere dangling && ln -s /an/absolute/path abs'
	in_both 'readlink s1 d1 dangling abs; cat s1; cat d1/sub/f; ls d1/; stat -L -c %F d1'
	in_both 'cat dangling; echo $?'
	in_both 'ln -s "$(printf "x%.0s" {1..300})" long && readlink long | wc -c'
	[ "$(stat -c %F "$MNT/s1")" = "symbolic link" ]
	same_tree
}

@test "chmod, chown, touch -d and touch -a" {
	in_both 'echo x > f && mkdir d'
	in_both 'chmod 640 f && chmod 2750 d && stat -c "%a %A" f d'
	in_both 'chown 1234:5678 f && chown 42:43 d && stat -c "%u %g" f d'
	in_both "touch -d '2001-02-03 04:05:06' f d && stat -c '%Y' f d"
	in_both "touch -a -d '1999-12-31 23:59:59' f && stat -c '%X %Y' f"
	in_both "touch -m -d '2010-01-01 00:00:00.5' f && stat -c '%y' f"
	same_tree --times
	# contents are untouched by metadata changes; chown drops set-id bits
	in_both 'cat f; chmod 4755 f; chown 7:7 f; stat -c %a f'
}

@test "mkdir, rmdir, ENOTEMPTY, EEXIST, ENOTDIR" {
	in_both 'mkdir -p a/b/c && mkdir e && echo x > a/file'
	expect_errno ENOTEMPTY rmdir "$MNT/a"
	expect_errno ENOTEMPTY rmdir "$MNT/a/b"
	expect_errno EEXIST mkdir "$MNT/a"
	expect_errno EEXIST mkdir "$MNT/a/file"
	expect_errno ENOTDIR rmdir "$MNT/a/file"
	expect_errno ENOENT rmdir "$MNT/nope"
	expect_errno ENOENT mkdir "$MNT/nope/sub"
	expect_errno ENOTDIR mkdir "$MNT/a/file/sub"
	in_both 'rmdir e && rmdir a/b/c && ls -R'
	in_both 'rmdir a 2>/dev/null; echo $?; rm a/file && rmdir a/b a && ls -A'
	same_tree
}

@test "names: long, unicode, spaces, and @ that is not a view suffix" {
	long=$(printf 'n%.0s' {1..255})
	in_both "echo a > '$long' && echo b > 'héllo wörld ☃.txt' && echo c > 'user@example.com' && echo d > 'a@b.csv' && mkdir 'dir @x'"
	in_both "ls"
	expect_errno ENAMETOOLONG create "$MNT/${long}x"
	same_tree
}

@test "statfs: df and stat -f report a sane file system" {
	gen_bin "$MNT/blob" 2000000 1
	run df -P "$MNT"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	read -r bsize blocks bfree bavail <<<"$(stat -f -c '%S %b %f %a' "$MNT")"
	[ "$bsize" -gt 0 ]
	[ "$blocks" -gt 0 ]
	[ "$bfree" -le "$blocks" ]
	[ "$bavail" -le "$blocks" ]
	[ "$(stat -f -c %l "$MNT")" -ge 255 ]   # name length
	df -i "$MNT" >/dev/null
}

@test "mkfifo and special files keep their type" {
	in_both 'mkfifo p && stat -c "%F %a" p'
	same_tree
}

@test "a tree copied in with cp -r compares equal with diff -r" {
	mkdir -p "$TMP/src/x/y"
	for i in $(seq 1 30); do gen_csv "$TMP/src/x/f$i.csv" $((i * 37)) "$i"; done
	gen_bin "$TMP/src/x/y/blob" 700000 9
	ln -s ../f1.csv "$TMP/src/x/y/link"
	in_both "cp -a '$TMP/src' tree"
	diff -r "$MNT/tree" "$TMP/src"
	same_tree --times
	in_both "find tree | sort | wc -l; find tree -type f -printf '%P %s\\n' | sort"
}

@test "random-offset reads equal the ext4 copy" {
	gen_bin "$TMP/blob" 3000000 5
	cp "$TMP/blob" "$MNT/blob"
	python3 - "$MNT/blob" "$TMP/blob" <<'EOF'
import os, random, sys
ref = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_RDONLY)
r = random.Random(1)
for _ in range(300):
    off = r.randrange(0, len(ref) + 100)
    n = r.choice([1, 7, 4096, 65536, 300000])
    assert os.pread(fd, n, off) == ref[off:off + n], (off, n)
os.close(fd)
EOF
}

@test "read/write handle: write then read back before close" {
	for d in "$MNT" "$TWIN"; do
		python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"hello world\n" * 1000)
os.lseek(fd, 6, 0)
os.write(fd, b"WORLD")
got = os.pread(fd, 12, 0)
assert got == b"hello WORLD\n", "read back %r" % got
# fstat carries no file handle: payloadfs reports the committed size
# (writes are invisible until close); the size of the handle is SEEK_END
assert os.lseek(fd, 0, os.SEEK_END) == 12000, "SEEK_END %d" % os.lseek(fd, 0, os.SEEK_END)
os.ftruncate(fd, 100)
got = os.pread(fd, 200, 0)
assert got == (b"hello WORLD\n" + b"hello world\n" * 8)[:100], "after ftruncate %r" % got
assert os.lseek(fd, 0, os.SEEK_END) == 100, "SEEK_END %d" % os.lseek(fd, 0, os.SEEK_END)
os.close(fd)' "$d/rw.txt"
	done
	same_tree
}

@test "a directory with 800 entries lists completely, also after removals" {
	# ~60-byte entries: a dozen readdir calls of 4 KiB
	in_both 'mkdir big && cd big && touch $(seq -f "a-rather-long-file-name-for-readdir-%05g" 1 800) && ls | wc -l && ls | md5sum'
	in_both 'cd big && rm *5 && ls -f | sort | md5sum && find . -type f | wc -l'
	same_tree
}

@test "cp within the mount: an independent, equal copy" {
	gen_csv "$TMP/src.csv" 30000
	in_both "mkdir sub && cp '$TMP/src.csv' sub/a.csv && cp sub/a.csv b.csv && cp -r sub sub2"
	in_both 'echo tail >> b.csv && printf X | dd of=sub2/a.csv bs=1 seek=100 conv=notrunc status=none'
	same_file "$MNT/sub/a.csv" "$TMP/src.csv"
	same_tree
}

@test "mtime follows writes; reading a directory is EISDIR; O_EXCL is EEXIST" {
	in_both "echo x > f && touch -d '2001-02-03 04:05:06' f && echo y >> f && [ \$(stat -c %Y f) -gt 1000000000 ] && echo newer"
	in_both "touch -d '2001-02-03 04:05:06' f && truncate -s 1 f && [ \$(stat -c %Y f) -gt 1000000000 ] && echo newer"
	in_both "mkdir d && touch -d '2001-02-03 04:05:06' d && touch d/n && [ \$(stat -c %Y d) -gt 1000000000 ] && echo newer"
	in_both 'cat d; echo $?'
	expect_errno read:EISDIR read "$MNT/d"
	expect_errno EISDIR open-w "$MNT/d"
	expect_errno EEXIST create "$MNT/f"
	expect_errno ENOTDIR stat "$MNT/f/x"
}

@test "mmap reads equal the content, also after a commit" {
	# MAP_SHARED needs page-cache reads: by default every read handle uses
	# direct I/O so that it reads exactly its version (payloadfs(8))
	unmount_pfs
	mount_pfs page_cache
	gen_bin "$TMP/a" 3000000 1
	gen_bin "$TMP/b" 2000000 2
	cp "$TMP/a" "$MNT/blob"
	python3 - "$MNT/blob" "$TMP/a" "$TMP/b" <<'EOF'
import mmap, os, shutil, sys
p, a, b = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
with open(p, "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    assert m[:] == a, "mmap differs"
    assert m[123456:123460] == a[123456:123460]
    m.close()
shutil.copyfile(sys.argv[3], p)
with open(p, "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    assert len(m) == len(b) and m[:] == b, "mmap after a commit shows stale data"
    m.close()
EOF
}
