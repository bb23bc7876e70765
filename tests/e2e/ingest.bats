#!/usr/bin/env bats
# ingest.bats — the streaming write path through a real mount: a
# sequential writer's fragments are cut, compressed and put while it writes
# (nothing is spilled to staging/), random writes, truncates and rewrites
# over those pre-cut ranges before close stay exact, and failures while
# streaming reach close(2) with their errno and leave no image behind.
# Staged raw fragments are compressed in the background, and readers that
# follow the object move across those swaps (index/recompress.c (S7)).

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

# frag_count — fragment images in the store.
frag_count() { store_images | wc -l; }

# fsck_clean — unmount, then payloadctl fsck (orphan images, reference
# counts, fragment lists) must pass.
fsck_clean() {
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
}

@test "a sequential write is cut into fragments while it is written; close commits it" {
	mount_pfs fragment_size=64K
	gen_csv "$TMP/src.csv" 400000
	run python3 - "$TMP/src.csv" "$MNT/big.csv" "$STORE" "$E2E" "$E2E_NS" <<'PY'
import os, subprocess, sys
src, dst, store, e2e, ns = sys.argv[1:6]
data = open(src, "rb").read()
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
half = len(data) // 2
for i in range(0, half, 1 << 17):
    os.write(fd, data[i:min(i + (1 << 17), half)])
def frags():
    if ns:      # RADOS mode (helpers.bash): the namespace's image objects
        return len(subprocess.check_output(["/usr/bin/python3", e2e + "/../rados/ns.py", "images",
                                            os.environ["PFS_CEPH_CONF"], os.environ["PFS_RADOS_POOL"],
                                            ns]).split())
    return sum(len([f for f in fs if f.endswith(".frag")]) for _, _, fs in os.walk(store + "/fragments"))
n = frags()
staged = os.listdir(store + "/staging")
for i in range(half, len(data), 1 << 17):
    os.write(fd, data[i:i + (1 << 17)])
os.close(fd)
print("pre-cut %d staging %d" % (n, len(staged)))
PY
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	# half of ~14 MB in 64 KiB fragments: over a hundred images before close
	pre=$(echo "$output" | awk '{ print $2 }')
	[ "$pre" -ge 50 ]
	[[ $output == *"staging 0" ]]
	same_file "$MNT/big.csv" "$TMP/src.csv"
	n=$(xget "$MNT/big.csv" user.payload.fragments)
	[ "$(xget "$MNT/big.csv" user.payload.rows)" -eq 400000 ]   # data rows (the header excluded)
	fsck_clean
	[ "$(frag_count)" -eq "$n" ]
	mount_pfs
	same_file "$MNT/big.csv" "$TMP/src.csv"
}

@test "random writes, truncates and extensions over pre-cut ranges match a model" {
	mount_pfs fragment_size=16K
	run python3 - "$MNT" <<'PY'
import os, random, sys
mnt = sys.argv[1]
seed = random.randrange(1 << 30)
print("seed", seed)
rnd = random.Random(seed)
def rows(n, tag):
    return b"".join(b"%s,%d,%s\n" % (tag, i, b"x" * rnd.randrange(0, 60)) for i in range(n))
for trial in range(6):
    p = "%s/m%d.csv" % (mnt, trial)
    model = bytearray(rows(200, b"old"))
    with open(p, "wb") as f:
        f.write(model)
    fd = os.open(p, os.O_WRONLY | (os.O_TRUNC if trial % 2 else 0))
    if trial % 2:
        model = bytearray()
    for step in range(60):
        op = rnd.randrange(10)
        if op < 5 or not model:                      # append (streams)
            b = rows(rnd.randrange(50, 800), b"a%d" % step)
            os.pwrite(fd, b, len(model))
            model += b
        elif op < 8:                                 # overwrite anywhere
            off = rnd.randrange(len(model))
            b = rows(rnd.randrange(1, 30), b"w%d" % step)[: rnd.randrange(1, 3000)]
            os.pwrite(fd, b, off)
            if off + len(b) > len(model):
                model.extend(b"\0" * (off + len(b) - len(model)))
            model[off:off + len(b)] = b
        elif op < 9:                                 # truncate back
            n = rnd.randrange(len(model) + 1)
            os.ftruncate(fd, n)
            del model[n:]
        else:                                        # a hole, then more rows
            gap = rnd.randrange(1, 5000)
            b = rows(20, b"h%d" % step)
            os.pwrite(fd, b, len(model) + gap)
            model += b"\0" * gap + b
    os.close(fd)
    got = open(p, "rb").read()
    assert got == bytes(model), "trial %d: %d bytes, model %d; first difference at %d" % (
        trial, len(got), len(model),
        next((i for i in range(min(len(got), len(model))) if got[i] != model[i]), -1))
print("OK")
PY
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	[[ $output == *OK ]]
	# every image is referenced: pre-cut fragments the commits did not use
	# are gone (images the commits released go after the next index flush:
	# count after the unmount's)
	total=0
	for f in "$MNT"/m*.csv; do
		total=$((total + $(xget "$f" user.payload.fragments)))
	done
	fsck_clean
	[ "$(frag_count)" -eq "$total" ]
}

@test "a put failing while streaming: close(2) returns ENOSPC, the old version stays, no image is left" {
	mount_pfs fragment_size=64K
	gen_csv "$TMP/old.csv" 3000
	cp "$TMP/old.csv" "$MNT/f.csv"
	n0=$(frag_count)
	v=$(xget "$MNT/f.csv" user.payload.version)
	unmount_pfs
	# the 5th fragment put of the daemon fails (a streaming one: the writes
	# below are ~3 MB of 64 KiB fragments)
	PAYLOADFS_FAULT=frag_write:5:ENOSPC mount_pfs fragment_size=64K
	gen_csv "$TMP/new.csv" 80000 7
	run python3 - "$MNT/f.csv" "$TMP/new.csv" <<'PY'
import errno, os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
for i in range(0, len(data), 1 << 17):
    os.write(fd, data[i:i + (1 << 17)])
try:
    os.close(fd)
    print("OK")
except OSError as e:
    print("close:" + errno.errorcode[e.errno])
PY
	echo "# $output" >&3
	[ "$output" = close:ENOSPC ]
	same_file "$MNT/f.csv" "$TMP/old.csv"
	[ "$(xget "$MNT/f.csv" user.payload.version)" = "$v" ]
	# the session's pre-cut images went with its handle (they were never
	# referenced: deleted at once, not after a flush)
	[ "$(frag_count)" -eq "$n0" ]
	# the next write succeeds
	cp "$TMP/new.csv" "$MNT/f.csv"
	same_file "$MNT/f.csv" "$TMP/new.csv"
	fsck_clean
}

@test "a daemon killed while streaming: the old version survives, pre-cut images are swept" {
	mount_pfs fragment_size=64K
	gen_csv "$TWIN/d.csv" 2000
	cp "$TWIN/d.csv" "$MNT/d.csv"
	mkfifo "$TMP/ready"
	"$PY" - "$MNT/d.csv" "$TMP/ready" "$E2E" <<'PY' &
import os, sys, time
sys.path.insert(0, sys.argv[3])
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
row = b"".join(b"%d,streamed,row\n" % i for i in range(200000))
os.write(fd, row)
with open(sys.argv[2], "w") as f:
    f.write("written\n")
time.sleep(600)
PY
	BG_PIDS+=($!)
	timeout 120 bash -c 'read -r _ <"$1"' _ "$TMP/ready"
	[ "$(frag_count)" -gt 10 ]          # pre-cut while the writer is open
	crash_daemon
	mount_pfs
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	n=$(xget "$MNT/d.csv" user.payload.fragments)
	fsck_clean
	[ "$(frag_count)" -eq "$n" ]
}

# wait_compressed — wait up to ~30 s until the background pass compressed
# every staged fragment (.stats ingest.staged_pending 0 and recompressed
# equal to staged_raw); fails otherwise.
wait_compressed() {
	local i
	for ((i = 0; i < 300; i++)); do
		if [ "$(stat_field ingest.staged_pending)" -eq 0 ] &&
			[ "$(stat_field ingest.recompressed)" -eq "$(stat_field ingest.staged_raw)" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "# still pending: $(stat_field ingest.staged_pending), recompressed $(stat_field ingest.recompressed) of $(stat_field ingest.staged_raw)" >&3
	return 1
}

@test "fragments staged raw at ingest are compressed in the background: same bytes, an open reader unaffected, fsck clean" {
	local_only "RADOS stores never stage raw (docs/format.md, Format 5)"
	local nfrags
	gen_csv "$TMP/src.csv" 200000
	PAYLOADFS_STAGE_RAW=always mount_pfs fragment_size=256K
	cp "$TMP/src.csv" "$MNT/a.csv"
	sync
	exec 4<"$MNT/a.csv"              # a reader holding the file across the swaps
	[ "$(stat_field ingest.staged_raw)" -ge 30 ]
	wait_compressed
	cmp "$TMP/src.csv" - <&4
	exec 4<&-
	cmp "$TMP/src.csv" "$MNT/a.csv"
	[ "$(xget "$MNT/a.csv" user.payload.fragments)" -eq "$(stat_field ingest.staged_raw)" ]
	unmount_pfs
	run "$PCTL" stat -v "$STORE" /a.csv
	[ "$status" -eq 0 ]
	nfrags=$(grep -cE '^ +[0-9]+ +[0-9]+ ' <<<"$output")
	[ "$nfrags" -ge 30 ]
	[ "$(grep -c ' lz4$' <<<"$output")" -eq "$nfrags" ]
	[ "$(grep -c 'staged' <<<"$output")" -eq 0 ]
	mount_pfs
	[ "$(stat_field ingest.staged_pending)" -eq 0 ]
	cmp "$TMP/src.csv" "$MNT/a.csv"
	fsck_clean
	[ "$(frag_count)" -eq "$nfrags" ]     # the raw images are gone
}

@test "a reader following an object staged raw moves with each swap and still follows appends (ops.c (6h))" {
	local_only "RADOS stores never stage raw (docs/format.md, Format 5)"
	PAYLOADFS_STAGE_RAW=always mount_pfs fragment_size=64K
	python3 - "$MNT" "$STORE" <<'PY'
import json, os, sys, time
mnt, store = sys.argv[1], sys.argv[2]
p = os.path.join(mnt, "s.csv")
def stats():
    return json.load(open(os.path.join(mnt, ".stats")))["ingest"]
def compressed(what):
    end = time.monotonic() + 20
    while time.monotonic() < end:
        s = stats()
        if s["staged_pending"] == 0 and s["recompressed"] == s["staged_raw"]:
            return
        time.sleep(0.05)
    sys.exit("%s: still staged: %r" % (what, stats()))
def images():
    return sum(f.endswith(".frag") for _, _, fs in os.walk(os.path.join(store, "fragments")) for f in fs)
def only_listed(r, what):
    # the reader moved off the raw images: once their release is durable
    # (an fsync flushes; a writer's last pin may go in its FUSE release,
    # after its close returned) they are gone, though the reader is open
    want = int(os.getxattr(p, "user.payload.fragments"))
    end = time.monotonic() + 20
    while images() != want and time.monotonic() < end:
        os.fsync(r)
        time.sleep(0.1)
    assert images() == want, (what, images(), want)
base = b"".join(b"%07d,row,%d\n" % (i, i * 7 % 1000) for i in range(20000))   # ~330 KB
open(p, "wb").write(base)
assert stats()["staged_raw"] >= 5
r = os.open(p, os.O_RDONLY)
assert os.read(r, len(base) + 100) == base
compressed("the ingest")
only_listed(r, "after the swaps")
assert os.fstat(r).st_size == len(base)
assert os.read(r, 100) == b""
# a writer held open across a swap: its appends are appends of the
# swapped versions, so the reader follows them
w = os.open(p, os.O_WRONLY | os.O_APPEND)
got = base
for i in range(3):
    row = b"appended-%d,%s\n" % (i, b"abc" * 1000)     # compressible: swapped
    os.write(w, row)
    got += row
    os.fsync(w)                         # a small raw fragment, then its swap
    assert os.read(r, 10000) == row, i
    assert os.fstat(r).st_size == len(got), i
    compressed("append %d" % i)
os.close(w)
only_listed(r, "after the appends' swaps")
assert os.pread(r, len(got) + 10, 0) == got
os.close(r)
assert open(p, "rb").read() == got
PY
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	[ "$status" -eq 0 ]
}

@test "an append whose base a swap overtook moves the swap's readers before the swap's own move runs (ops.c (6h), (6g))" {
	local_only "RADOS stores never stage raw (docs/format.md, Format 5)"
	# follow_delay: the 1st move (the swap's: a new file's first commit,
	# O_TRUNC, is no append) waits 1 s before it looks for followers
	PAYLOADFS_FAULT=follow_delay:1:EIO PAYLOADFS_STAGE_RAW=always mount_pfs fragment_size=64K
	python3 - "$MNT" <<'PY'
import json, os, sys, time
mnt = sys.argv[1]
p = os.path.join(mnt, "s.csv")
def stats():
    return json.load(open(os.path.join(mnt, ".stats")))["ingest"]
base = b"".join(b"%07d,row\n" % i for i in range(2000))       # 24 KB: one fragment
open(p, "wb").write(base)
v1 = int(os.getxattr(p, "user.payload.version"))
r = os.open(p, os.O_RDONLY)
assert os.read(r, len(base) + 100) == base
w = os.open(p, os.O_WRONLY | os.O_APPEND)                      # its base: v1
end = time.monotonic() + 10
while int(os.getxattr(p, "user.payload.version")) == v1:       # the swap committed
    assert time.monotonic() < end, "no swap"
    time.sleep(0.01)
row = b"appended," + b"x" * 100 + b"\n"
os.write(w, row)
os.fsync(w)                        # an append of v1 and of the swap's version
assert stats()["recompressed"] == 0, "the swap's move already ran"
assert os.read(r, 1000) == row     # moved by the append, from v1
assert os.fstat(r).st_size == len(base) + len(row)
os.close(w)
end = time.monotonic() + 10
while stats()["recompressed"] < 1:
    assert time.monotonic() < end, "the swap did not finish"
    time.sleep(0.05)
assert os.pread(r, 100000, 0) == base + row
os.close(r)
PY
	grep -q 'fault point follow_delay fired' "$LOG"
}

@test "payloadctl compress: fragments staged raw by an import are compressed offline, same bytes, fsck clean; it refuses a mounted store" {
	local_only "RADOS stores never stage raw (docs/format.md, Format 5)"
	local nfrags
	gen_csv "$TMP/src.csv" 100000
	PAYLOADFS_STAGE_RAW=always run "$PCTL" import "$STORE" "$TMP/src.csv" /
	[ "$status" -eq 0 ]
	run "$PCTL" stat -v "$STORE" /src.csv
	nfrags=$(grep -cE '^ +[0-9]+ +[0-9]+ ' <<<"$output")
	[ "$nfrags" -ge 4 ]
	[ "$(grep -c '(staged: to be compressed)' <<<"$output")" -eq "$nfrags" ]
	run "$PCTL" compress "$STORE"
	[ "$status" -eq 0 ]
	[ "$output" = "compress: $nfrags fragments compressed, 0 left raw (shared by a copy or a snapshot)" ]
	run "$PCTL" stat -v "$STORE" /src.csv
	[ "$(grep -c ' lz4$' <<<"$output")" -eq "$nfrags" ]
	"$PCTL" cat "$STORE" /src.csv >"$TMP/got.csv"
	cmp "$TMP/src.csv" "$TMP/got.csv"
	run "$PCTL" compress "$STORE"
	[ "$output" = "compress: 0 fragments compressed, 0 left raw (shared by a copy or a snapshot)" ]
	run "$PCTL" fsck "$STORE"
	[ "$status" -eq 0 ]
	[ "$(frag_count)" -eq "$nfrags" ]     # the raw images are gone
	mount_pfs
	run "$PCTL" compress "$STORE"
	[ "$status" -eq 2 ]                  # in use: the daemon holds it
	[[ $output == *"the store is in use"* ]]
}
