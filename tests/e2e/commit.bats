#!/usr/bin/env bats
# commit.bats — commit on close: isolation of writers and readers, fsync,
# versions, compression on disk, big objects, many fragments, and commits
# that rewrite only the fragments they touch.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

# frag_files — the fragment images in the store, sorted.
frag_files() { store_images; }

@test "writes are invisible to other readers until close" {
	mount_pfs
	printf 'old content\n' >"$MNT/f.txt"
	python3 - "$MNT/f.txt" <<'EOF'
import os, sys
p = sys.argv[1]
w = os.open(p, os.O_WRONLY)
os.write(w, b"NEW")
os.lseek(w, 0, os.SEEK_END)
os.write(w, b"appended\n")
r = open(p, "rb").read()
assert r == b"old content\n", "a reader saw uncommitted bytes: %r" % r
assert os.stat(p).st_size in (12, 21)
os.close(w)
r = open(p, "rb").read()
assert r == b"NEW content\nappended\n", "after close: %r" % r
EOF
	[ "$(cat "$MNT/f.txt")" = "$(printf 'NEW content\nappended')" ]
	# the same with O_TRUNC (what `>` and cp do): the truncation is staged too
	gen_csv "$TMP/old.csv" 20000
	cp "$TMP/old.csv" "$MNT/t.csv"
	python3 - "$MNT/t.csv" "$TMP/old.csv" <<'EOF'
import os, sys
p, old = sys.argv[1], open(sys.argv[2], "rb").read()
w = os.open(p, os.O_WRONLY | os.O_TRUNC)
r = open(p, "rb").read()
assert r == old, "after O_TRUNC, before any write: a reader got %d of %d bytes" % (len(r), len(old))
os.write(w, b"x" * 300000)
r = open(p, "rb").read()
assert r == old, "while writing: a reader got %d of %d bytes" % (len(r), len(old))
with open(p, "rb") as f:
    size = os.fstat(f.fileno()).st_size
    assert size == len(old), "a reader opened while a writer stages sees st_size %d, not %d" % (size, len(old))
    r = f.read()
    assert r == old, "while writing: a reader got %d of %d bytes" % (len(r), len(old))
os.close(w)
r = open(p, "rb").read()
assert r == b"x" * 300000, "after close: %d bytes" % len(r)
EOF
}

@test "a new file is not visible with content before its first close" {
	mount_pfs
	python3 - "$MNT/n.csv" <<'EOF'
import os, sys
p = sys.argv[1]
w = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(w, b"a,b\n1,2\n")
assert open(p, "rb").read() == b"", "uncommitted bytes visible"
os.close(w)
assert open(p, "rb").read() == b"a,b\n1,2\n"
EOF
}

@test "an open reader keeps the version it opened across commits" {
	mount_pfs
	gen_csv "$TMP/v1.csv" 60000 1
	gen_csv "$TMP/v2.csv" 50000 2
	cp "$TMP/v1.csv" "$MNT/d.csv"
	python3 - "$MNT/d.csv" "$TMP/v1.csv" "$TMP/v2.csv" <<'EOF'
import os, sys
p, v1, v2 = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
r = os.open(p, os.O_RDONLY)
first = os.read(r, 4096)
# another writer commits a whole new version, then an append
w = os.open(p, os.O_WRONLY | os.O_TRUNC)
os.write(w, v2)
os.close(w)
w = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(w, b"tail\n")
os.close(w)
rest = b""
while True:
    b = os.read(r, 1 << 16)
    if not b: break
    rest += b
assert first + rest == v1, "the open reader saw another version (%d bytes)" % len(first + rest)
assert os.pread(r, 100, 1000) == v1[1000:1100]
os.close(r)
assert open(p, "rb").read() == v2 + b"tail\n", "a new open must see the new version"
EOF
}

@test "a reader open before a writer's O_TRUNC keeps reading the whole old version" {
	mount_pfs
	gen_csv "$TMP/old.csv" 40000
	cp "$TMP/old.csv" "$MNT/d.csv"
	python3 - "$MNT/d.csv" "$TMP/old.csv" <<'EOF'
import os, sys
p, old = sys.argv[1], open(sys.argv[2], "rb").read()
r = os.open(p, os.O_RDONLY)
got = os.read(r, 4096)
w = os.open(p, os.O_WRONLY | os.O_TRUNC)
os.write(w, b"y" * 300000)
while True:
    c = os.read(r, 65536)
    if not c: break
    got += c
assert got == old, "the reader got %d of %d bytes while a writer was staging" % (len(got), len(old))
assert os.fstat(r).st_size in (len(old), 300000)
os.close(w)
os.close(r)
assert open(p, "rb").read() == b"y" * 300000
EOF
}

@test "a view opened before a commit keeps its version" {
	mount_pfs
	gen_csv "$TMP/d.csv" 1000
	cp "$TMP/d.csv" "$MNT/d.csv"
	exec 5<"$MNT/d.csv@rows=0:500"
	printf 'id,user,action,value,note\nX\n' >"$MNT/d.csv@rows=0:500"
	cat <&5 >"$TMP/got"
	exec 5<&-
	cmp "$TMP/got" <(slice_lines "$TMP/d.csv" 0 500)
	[ "$(xget "$MNT/d.csv" user.payload.rows)" = 501 ]
}

@test "fsync commits while the file stays open" {
	mount_pfs
	echo old >"$MNT/f"
	python3 - "$MNT/f" <<'EOF'
import os, sys
p = sys.argv[1]
v0 = int(os.getxattr(p, "user.payload.version"))
w = os.open(p, os.O_WRONLY | os.O_TRUNC)
os.write(w, b"synced\n")
os.fsync(w)
assert open(p, "rb").read() == b"synced\n", "fsync did not commit"
assert int(os.getxattr(p, "user.payload.version")) == v0 + 1
os.write(w, b"more\n")
assert open(p, "rb").read() == b"synced\n"
os.fdatasync(w)
assert open(p, "rb").read() == b"synced\nmore\n", "fdatasync did not commit"
os.close(w)
assert open(p, "rb").read() == b"synced\nmore\n"
EOF
}

@test "the version increments once per commit and not for clean closes" {
	mount_pfs
	echo a >"$MNT/f"
	v=$(xget "$MNT/f" user.payload.version)
	for i in 1 2 3; do
		expect_errno OK append "$MNT/f" "line $i"
		[ "$(xget "$MNT/f" user.payload.version)" = $((v + i)) ]
	done
	v=$((v + 3))
	cat "$MNT/f" >/dev/null
	expect_errno OK open-w "$MNT/f"
	expect_errno OK open-rw "$MNT/f"
	[ "$(xget "$MNT/f" user.payload.version)" = "$v" ]
	# metadata changes are not data commits
	chmod 600 "$MNT/f"
	setfattr -n user.x -v y "$MNT/f"
	[ "$(xget "$MNT/f" user.payload.version)" = "$v" ]
	# the version survives a remount
	unmount_pfs
	mount_pfs
	[ "$(xget "$MNT/f" user.payload.version)" = "$v" ]
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["version"] == int(sys.argv[2])' "$MNT/f@meta" "$v"
}

@test "two writers: the last close wins whole, never a mix" {
	mount_pfs
	echo base >"$MNT/f"
	python3 - "$MNT/f" <<'EOF'
import os, sys
p = sys.argv[1]
a = os.open(p, os.O_WRONLY)
b = os.open(p, os.O_WRONLY)
os.write(a, b"A" * 10000)
os.write(b, b"B" * 5000)
os.close(a)
got = open(p, "rb").read()
assert got == b"A" * 10000, "after A's close: %r..." % got[:20]
os.close(b)
got = open(p, "rb").read()
assert got in (b"B" * 5000, b"B" * 5000 + b"A" * 5000), "after B's close: %r..." % got[:20]
EOF
}

@test "a compressible 20 MB CSV takes less room in the store than on ext4" {
	mount_pfs
	gen_csv "$TMP/big.csv" 420000
	size=$(stat -c %s "$TMP/big.csv")
	[ "$size" -ge 20000000 ]
	cp "$TMP/big.csv" "$MNT/big.csv"
	sync "$MNT/big.csv"
	stored=$(du -sb "$STORE" | cut -f1)
	echo "# csv $size bytes, store $stored bytes" >&3
	[ "$stored" -lt "$size" ]
	same_file "$MNT/big.csv" "$TMP/big.csv"
}

@test "a 50 MB object round-trips, also after a remount" {
	mount_pfs
	gen_bin "$TMP/big" 52428800 11
	cp "$TMP/big" "$MNT/big"
	same_file "$MNT/big" "$TMP/big"
	[ "$(stat -c %s "$MNT/big")" = 52428800 ]
	dd if="$MNT/big" bs=1M skip=17 count=3 status=none | cmp - <(dd if="$TMP/big" bs=1M skip=17 count=3 status=none)
	unmount_pfs
	mount_pfs
	same_file "$MNT/big" "$TMP/big"
}

@test "many fragments: views across fragment boundaries equal sed -n" {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/d.csv" 60000
	cp "$TWIN/d.csv" "$MNT/d.csv"
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	size=$(stat -c %s "$TWIN/d.csv")
	nfrag=$(xget "$MNT/d.csv" user.payload.fragments)
	echo "# $size bytes in $nfrag fragments" >&3
	[ "$nfrag" -ge $((size / 65536 / 2)) ]
	[ "$nfrag" -le $((size / 65536 * 2 + 2)) ]
	# row ranges that straddle many 64 KiB boundaries
	for r in 0:60000 1300:1400 1000:9000 -7000:-100 30000: :5 59999: 12345:12346; do
		a=${r%%:*} b=${r#*:}
		slice_lines "$TWIN/d.csv" "$a" "$b" >"$TMP/want"
		cmp "$MNT/d.csv@rows=$r" "$TMP/want"
	done
	: >"$TMP/all"
	for k in $(seq 0 12); do
		tail -n +2 "$MNT/d.csv@part=$k/13" >>"$TMP/all"
	done
	tail -n +2 "$TWIN/d.csv" | cmp - "$TMP/all"
	# a view write across boundaries
	cat "$MNT/d.csv@rows=1000:9000" | sed 's/alice/ALICE/' >"$TMP/v"
	cat "$TMP/v" >"$MNT/d.csv@rows=1000:9000"
	sed -i '1002,9001s/alice/ALICE/' "$TWIN/d.csv"
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	# and random reads over the boundaries
	python3 - "$MNT/d.csv" "$TWIN/d.csv" <<'EOF'
import os, random, sys
ref = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_RDONLY)
r = random.Random(3)
for _ in range(400):
    off = r.randrange(0, len(ref))
    n = r.choice([1, 100, 65536, 65537, 200000])
    assert os.pread(fd, n, off) == ref[off:off + n], (off, n)
os.close(fd)
EOF
}

@test "an append or a small patch rewrites only the fragments it touches" {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/d.csv" 80000
	cp "$TWIN/d.csv" "$MNT/d.csv"
	n0=$(xget "$MNT/d.csv" user.payload.fragments)
	[ "$n0" -ge 30 ]
	frag_files >"$TMP/before"
	[ "$(wc -l <"$TMP/before")" -ge 30 ]
	gen_lines "$TMP/more" 3 5
	cat "$TMP/more" >>"$MNT/d.csv"
	cat "$TMP/more" >>"$TWIN/d.csv"
	frag_files >"$TMP/after"
	new=$(comm -13 "$TMP/before" "$TMP/after" | wc -l)
	gone=$(comm -23 "$TMP/before" "$TMP/after" | wc -l)
	echo "# append: $new fragment files written, $gone deleted" >&3
	[ "$new" -le 2 ]
	[ "$gone" -le 1 ]
	# a one-byte patch in the middle
	cp "$TMP/after" "$TMP/before"
	printf X | dd of="$MNT/d.csv" bs=1 seek=1500000 conv=notrunc status=none
	printf X | dd of="$TWIN/d.csv" bs=1 seek=1500000 conv=notrunc status=none
	frag_files >"$TMP/after"
	new=$(comm -13 "$TMP/before" "$TMP/after" | wc -l)
	echo "# patch: $new fragment files written" >&3
	[ "$new" -le 2 ]
	same_file "$MNT/d.csv" "$TWIN/d.csv"
}

@test "removing objects frees their fragment files" {
	mount_pfs fragment_size=65536
	gen_bin "$TMP/blob" 2000000 2
	cp "$TMP/blob" "$MNT/a"
	[ "$(frag_files | wc -l)" -ge 20 ]
	rm "$MNT/a"
	unmount_pfs
	mount_pfs
	[ "$(frag_files | wc -l)" = 0 ]
}

@test "truncate commits a new version" {
	mount_pfs
	gen_csv "$TMP/d.csv" 5000
	cp "$TMP/d.csv" "$MNT/d.csv"
	v=$(xget "$MNT/d.csv" user.payload.version)
	truncate -s 1000 "$MNT/d.csv"
	[ "$(xget "$MNT/d.csv" user.payload.version)" -gt "$v" ]
	head -c 1000 "$TMP/d.csv" | cmp - "$MNT/d.csv"
}

@test "a daemon killed with uncommitted writes: the old version survives, staging is swept" {
	mount_pfs
	gen_csv "$TWIN/d.csv" 20000
	cp "$TWIN/d.csv" "$MNT/d.csv"
	mkfifo "$TMP/ready"
	# a writer stages 24 MiB (past any in-memory threshold) and stays open
	"$PY" - "$MNT/d.csv" "$TMP/ready" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(24):
    os.write(fd, bytes([65 + i]) * (1 << 20))
with open(sys.argv[2], "w") as f:
    f.write("staged\n")
time.sleep(600)
PY
	BG_PIDS+=($!)
	timeout 120 bash -c 'read -r _ <"$1"' _ "$TMP/ready"
	crash_daemon
	not_mounted "$MNT"
	mount_pfs
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	[ -z "$(ls -A "$STORE/staging")" ]
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
}

@test "ENOSPC from a commit reaches close(2) or write(2), never EIO; the old version stays" {
	local_only "a full local file system: the store's images live in the cluster"
	mkdir "$TMP/small"
	mount -t tmpfs -o size=12m tmpfs "$TMP/small"
	EXTRA_MOUNTS+=("$TMP/small")
	rmdir "$STORE"
	STORE=$TMP/small/store
	mkdir "$STORE"
	mount_pfs
	gen_bin "$TMP/keep" 500000 1
	gen_bin "$TMP/big" 30000000 2
	cp "$TMP/keep" "$MNT/keep"
	echo old >"$MNT/obj"
	v=$(xget "$MNT/obj" user.payload.version)
	run python3 - "$MNT/obj" "$TMP/big" <<'PY'
import errno, os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
try:
    for i in range(0, len(data), 1 << 20):
        os.write(fd, data[i:i + (1 << 20)])
except OSError as e:
    print("write:" + errno.errorcode[e.errno])
    try:
        os.close(fd)
    except OSError:
        pass
    sys.exit(0)
try:
    os.close(fd)
    print("OK")
except OSError as e:
    print("close:" + errno.errorcode[e.errno])
PY
	echo "# $output" >&3
	[[ $output == write:ENOSPC || $output == close:ENOSPC ]]
	# the old version stays, the daemon keeps serving
	[ "$(cat "$MNT/obj")" = old ]
	[ "$(xget "$MNT/obj" user.payload.version)" = "$v" ]
	same_file "$MNT/keep" "$TMP/keep"
	# the space of the failed commit came back: a small write fits
	gen_bin "$TMP/mid" 2000000 3
	cp "$TMP/mid" "$MNT/mid"
	same_file "$MNT/mid" "$TMP/mid"
	unmount_pfs
	mount_pfs
	[ "$(cat "$MNT/obj")" = old ]
	same_file "$MNT/mid" "$TMP/mid"
}

@test "parallel readers during repeated commits each see one whole version" {
	mount_pfs fragment_size=65536
	gen_csv "$TMP/a.csv" 40000 1
	gen_csv "$TMP/b.csv" 30000 2
	cp "$TMP/a.csv" "$MNT/d.csv"
	python3 - "$MNT/d.csv" "$TMP/a.csv" "$TMP/b.csv" <<'PY'
import os, sys, threading
p, a, b = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
stop, bad, reads = False, [], [0]
def reader():
    while not stop and not bad:
        fd = os.open(p, os.O_RDONLY)
        size = os.fstat(fd).st_size
        chunks = []
        while True:
            c = os.read(fd, 100000)
            if not c: break
            chunks.append(c)
        os.close(fd)
        d = b"".join(chunks)
        if d not in (a, b):
            bad.append("a reader got %d bytes that are neither version (st_size at open %d)" % (len(d), size))
        reads[0] += 1
ts = [threading.Thread(target=reader) for _ in range(4)]
for t in ts: t.start()
i = 0
while (i < 12 or reads[0] < 8) and i < 400 and not bad:
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    data = b if i % 2 == 0 else a
    for j in range(0, len(data), 65536):
        os.write(fd, data[j:j + 65536])
    os.close(fd)
    i += 1
if i % 2:            # end on version a
    with open(p, "wb") as f:
        f.write(a)
stop = True
for t in ts: t.join()
assert not bad, bad
assert reads[0] >= 8, reads
PY
	same_file "$MNT/d.csv" "$TMP/a.csv"
}

@test "tiny objects live in the index, not in fragment files" {
	mount_pfs
	for i in $(seq 1 20); do echo "row $i" >"$MNT/t$i.txt"; done
	printf '%3000s' x >"$MNT/three-k"
	[ "$(store_images | wc -l)" = 0 ]
	[ "$(xget "$MNT/t1.txt" user.payload.fragments)" = 0 ]
	[ "$(cat "$MNT/t7.txt")" = "row 7" ]
	unmount_pfs
	mount_pfs
	[ "$(cat "$MNT/t20.txt")" = "row 20" ]
	[ "$(stat -c %s "$MNT/three-k")" = 3000 ]
}

@test "a row longer than fragment_size is one fragment; fixed:N records straddle nothing" {
	mount_pfs fragment_size=65536
	{ echo h; head -c 300000 /dev/zero | tr '\0' 'x'; echo; echo short; } >"$TWIN/long.csv"
	cp "$TWIN/long.csv" "$MNT/long.csv"
	same_file "$MNT/long.csv" "$TWIN/long.csv"
	[ "$(xget "$MNT/long.csv" user.payload.rows)" = 2 ]
	cmp "$MNT/long.csv@rows=0:1" <(slice_lines "$TWIN/long.csv" 0 1)
	cmp "$MNT/long.csv@rows=1:" <(slice_lines "$TWIN/long.csv" 1 "")
	# 100-byte records with 64 KiB fragments: views cut at record bounds
	mkdir "$MNT/recs"
	setfattr -n user.payload.format -v fixed:100 "$MNT/recs"
	gen_bin "$TWIN/r.bin" 1000000 6
	cp "$TWIN/r.bin" "$MNT/recs/r.bin"
	[ "$(xget "$MNT/recs/r.bin" user.payload.rows)" = 10000 ]
	[ "$(xget "$MNT/recs/r.bin" user.payload.fragments)" -ge 8 ]
	for r in 650:660 0:10000 9990: 1234:5678; do
		a=${r%%:*} b=${r#*:}
		b=${b:-10000}
		cmp "$MNT/recs/r.bin@rows=$r" <(dd if="$TWIN/r.bin" bs=100 skip="$a" count=$((b - a)) status=none)
	done
	cmp "$MNT/recs/r.bin@part=5/7" <(dd if="$TWIN/r.bin" bs=100 skip=7142 count=1429 status=none)
}
