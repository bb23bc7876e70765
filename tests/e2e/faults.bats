#!/usr/bin/env bats
# faults.bats — every named fault point (cache/fault.h) on a real mount,
# armed with PAYLOADFS_FAULT=name:nth:errno when the daemon starts. For each
# point: the system call that reaches it (close, fsync, write, read, open,
# mkdir, rename, setxattr) fails with exactly the injected errno (ENOSPC
# stays ENOSPC, EDQUOT stays EDQUOT) — or, for io_uring submission and set-up
# failures, the read falls back to pread and returns the right bytes; the
# daemon log shows the point fired exactly once (no test passes without
# reaching its point); the previous version stays readable byte for byte;
# the daemon keeps serving (the next write commits); and after unmount fsck
# is clean with no image left behind.
#
# Counting calls: the daemon's sweep at mount commits one index txn, so the
# first lmdb_commit of a test's own operation is call 2. No data is read or
# written at mount, so the data-path points count from the test's first
# operation.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

fio() { python3 "$E2E/faultio.py" "$@"; }

# prepare — with 64 KiB fragments: d.csv (20000 rows, ~16 lz4 fragments)
# and small.txt (inline) in the store and in $TWIN; new.csv (another
# content) in $TMP. Unmounts; V0 is d.csv's version.
prepare() {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/d.csv" 20000 1
	echo small >"$TWIN/small.txt"
	gen_csv "$TMP/new.csv" 15000 2
	cp "$TWIN/d.csv" "$MNT/d.csv"
	cp "$TWIN/small.txt" "$MNT/small.txt"
	V0=$(xget "$MNT/d.csv" user.payload.version)
	[ "$(xget "$MNT/d.csv" user.payload.fragments)" -ge 8 ]
	unmount_pfs
}

# mount_fault SPEC — mount the store with the fault SPEC armed; LOG_MARK
# is where this daemon's lines start in $LOG.
mount_fault() {
	LOG_MARK=$(($(cat "$LOG" 2>/dev/null | wc -l) + 1))
	PAYLOADFS_FAULT=$1 mount_pfs fragment_size=65536${2:+,$2}
}

# fired NAME [N] — the daemon mounted last logged that point NAME fired N
# (1) times.
fired() {
	local n
	n=$(tail -n "+$LOG_MARK" "$LOG" | grep -c "fault point $1 fired" || true)
	[ "$n" -eq "${2:-1}" ] || {
		echo "# fault point $1 fired $n time(s), want ${2:-1}" >&2
		return 1
	}
}

# intact — d.csv and small.txt are their previous versions.
intact() {
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	same_file "$MNT/small.txt" "$TWIN/small.txt"
	[ "$(xget "$MNT/d.csv" user.payload.version)" = "$V0" ] || {
		echo "# d.csv version $(xget "$MNT/d.csv" user.payload.version), want $V0" >&2
		return 1
	}
}

# serving — the daemon keeps serving: an overwrite commits and reads back,
# a small file is created; then unmount and fsck is clean, without even a
# warning (a failed commit left no image behind).
serving() {
	[ "$(fio put "$TMP/new.csv" "$MNT/d.csv")" = OK ]
	same_file "$MNT/d.csv" "$TMP/new.csv"
	echo after >"$MNT/after.txt"
	[ "$(cat "$MNT/after.txt")" = after ]
	unmount_pfs
	run --separate-stderr "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ ${lines[0]} == *": clean" ]]
}

# commit_fault SPEC [OPTS] — arm SPEC (mount options OPTS), overwrite
# d.csv: close(2) must fail with SPEC's errno, and the point must have
# fired once.
commit_fault() {
	local point=${1%%:*} err=${1##*:}
	prepare
	mount_fault "$1" "${2:-}"
	run fio put "$TMP/new.csv" "$MNT/d.csv"
	echo "# $1: $output" >&3
	[ "$output" = "close:$err" ]
	fired "$point"
	intact
	serving
}

need_uring() {
	local_only "images are read from the cluster, never with io_uring (the local backend's)"
	grep -q "io_uring is unavailable" "$LOG" && skip "io_uring is unavailable on this kernel"
	return 0
}

# ---- commits (close) ---------------------------------------------------

@test "frag_write ENOSPC: close(2) fails with ENOSPC, the old version stays" {
	commit_fault frag_write:1:ENOSPC
}

@test "frag_write EDQUOT on a later fragment: close(2) fails with EDQUOT" {
	commit_fault frag_write:3:EDQUOT
}

# frag_fsync: the sync of a commit's new images before its index
# transaction (commit.c invariant 3); these cases mount with -o sync
@test "frag_fsync EIO (-o sync): close(2) fails with EIO, the old version stays" {
	# the local backend hits the point per image or folder synced, the
	# RADOS backend once per sync call (a commit's one batch)
	if rados_mode; then
		commit_fault frag_fsync:1:EIO sync
	else
		commit_fault frag_fsync:2:EIO sync
	fi
}

@test "frag_fsync ENOSPC (-o sync, the batched sync at close): close(2) fails with ENOSPC, the old version stays" {
	commit_fault frag_fsync:1:ENOSPC sync
}

@test "lz4 (encoding) EIO: close(2) fails with EIO, the old version stays" {
	commit_fault lz4:2:EIO
}

@test "lmdb_commit ENOSPC (index full): close(2) fails with ENOSPC, the old version stays" {
	commit_fault lmdb_commit:2:ENOSPC
}

@test "staging_read EIO (reading staged bytes at commit): close(2) fails with EIO" {
	commit_fault staging_read:1:EIO
}

@test "lmdb_commit EDQUOT on a small (inline) object: close(2) fails with EDQUOT" {
	prepare
	mount_fault lmdb_commit:2:EDQUOT
	run fio put "$E2E/faultio.py" "$MNT/small.txt"
	[ "$output" = close:EDQUOT ]
	fired lmdb_commit
	intact
	serving
}

@test "fsync(2) fails with frag_fsync's EIO (-o sync); the old version stays until a commit succeeds" {
	prepare
	mount_fault frag_fsync:1:EIO sync
	run fio put-fsync "$TMP/new.csv" "$MNT/d.csv" "$TWIN/d.csv"
	echo "# $output" >&3
	# the close after a failed fsync commits again, and succeeds
	[ "$output" = "fsync:EIO old:same close:OK" ]
	fired frag_fsync
	same_file "$MNT/d.csv" "$TMP/new.csv"
	[ "$(xget "$MNT/d.csv" user.payload.version)" = $((V0 + 1)) ]
	same_file "$MNT/small.txt" "$TWIN/small.txt"
	serving
}

# lmdb_sync: the index flush fsync(2) asks for (store_sync). The commit
# before it succeeded, so — as on ext4, whose page cache keeps what a failed
# fsync could not write — the new bytes are what a fresh open reads; the
# caller is told the flush failed, and the next fsync(2) flushes again.
# sync_ms is 10 minutes so that the syncer thread never flushes first.
lmdb_sync_fault() {
	local err=$1
	prepare
	mount_fault "lmdb_sync:1:$err" sync_ms=600000
	run fio put-fsync "$TMP/new.csv" "$MNT/d.csv" "$TWIN/d.csv"
	echo "# lmdb_sync:1:$err: $output" >&3
	[ "$output" = "fsync:$err old:DIFF close:OK" ]
	fired lmdb_sync
	# the error line names the operation and the errno (issue 15): its text
	# and its name
	tail -n "+$LOG_MARK" "$LOG" | grep -qF "index flush failed: $(python3 -c "import os, errno; print(os.strerror(errno.$err))") ($err)"
	same_file "$MNT/d.csv" "$TMP/new.csv"
	[ "$(xget "$MNT/d.csv" user.payload.version)" = $((V0 + 1)) ]
	# the next fsync(2) flushes again (a failed flush covers nothing) and
	# succeeds
	local syncs
	syncs=$(stat_field io.syncs)
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd)' "$MNT/d.csv"
	[ "$(stat_field io.syncs)" -eq $((syncs + 1)) ]
	[ "$(stat_field io.sync_failures)" -eq 1 ]
	same_file "$MNT/small.txt" "$TWIN/small.txt"
	serving
}

@test "lmdb_sync EIO (the index flush of fsync(2)): fsync(2) fails with EIO, the commit stays, the next fsync flushes" {
	lmdb_sync_fault EIO
}

@test "lmdb_sync ENOSPC: fsync(2) fails with ENOSPC, not EIO" {
	lmdb_sync_fault ENOSPC
}

@test "lmdb_sync EIO on fsync(2) of a directory (fsyncdir): EIO, the mkdir stays, the next fsync flushes" {
	prepare
	mount_fault lmdb_sync:1:EIO sync_ms=600000
	mkdir "$MNT/d"
	run python3 -c 'import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for _ in range(2):
    try:
        os.fsync(fd)
        print("OK")
    except OSError as e:
        print(errno.errorcode[e.errno])' "$MNT/d"
	[ "${lines[*]}" = "EIO OK" ]
	fired lmdb_sync
	[ -d "$MNT/d" ]
	[ "$(stat_field io.sync_failures)" -eq 1 ]
	intact
	serving
}

@test "staging_write ENOSPC: write(2) fails with ENOSPC, nothing is committed" {
	prepare
	mount_fault staging_write:1:ENOSPC
	run fio patch "$TMP/new.csv" "$MNT/d.csv"
	[ "$output" = write:ENOSPC ]
	fired staging_write
	intact
	serving
}

@test "staging_write ENOSPC after O_TRUNC: like ext4, the file keeps what was written (nothing)" {
	prepare
	mount_fault staging_write:1:ENOSPC
	run fio put "$TMP/new.csv" "$MNT/d.csv"
	[ "$output" = write:ENOSPC ]
	fired staging_write
	# ext4 truncates at open(2) and keeps what write(2) stored: nothing
	# here; the commit at close does the same
	[ -f "$MNT/d.csv" ]
	[ ! -s "$MNT/d.csv" ]
	[ "$(xget "$MNT/d.csv" user.payload.version)" = $((V0 + 1)) ]
	same_file "$MNT/small.txt" "$TWIN/small.txt"
	serving
}

@test "staging_read EIO: a read through the writer's own descriptor fails with EIO" {
	prepare
	mount_fault staging_read:1:EIO
	# rewrite the first bytes with the same bytes: the commit at close then
	# leaves the content as it was (a new version)
	run fio rw-read "$MNT/d.csv" "id,user"
	[ "$output" = "read:EIO close:OK" ]
	fired staging_read
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	[ "$(xget "$MNT/d.csv" user.payload.version)" = $((V0 + 1)) ]
	serving
}

# ---- namespace and xattrs: one index txn each ------------------------------

@test "lmdb_commit ENOSPC on create (a RADOS store commits a create at once): open(O_CREAT) fails with ENOSPC, no entry appears" {
	rados_mode || skip "a local store defers a create's commit to the first close: the next test"
	prepare
	mount_fault lmdb_commit:2:ENOSPC
	expect_errno ENOSPC create "$MNT/new.csv"
	fired lmdb_commit
	expect_errno ENOENT stat "$MNT/new.csv"
	[ -z "$(ls "$MNT" | grep new.csv)" ]
	intact
	expect_errno OK create "$MNT/new.csv"
	serving
}

@test "lmdb_commit ENOSPC on a new file's first close (the create writes no txn: index/ns.c P1-P6): close fails with ENOSPC, the name stays, empty" {
	local_only "a RADOS store does not defer creates (the test before)"
	prepare
	mount_fault lmdb_commit:2:ENOSPC
	expect_errno close:ENOSPC create "$MNT/new.csv"
	fired lmdb_commit
	[ "$(stat -c %s "$MNT/new.csv")" -eq 0 ]
	[ -n "$(ls "$MNT" | grep new.csv)" ]
	intact
	expect_errno EEXIST create "$MNT/new.csv"
	serving
}

@test "lmdb_commit on mkdir (EIO), rename (ENOSPC) and setxattr (EDQUOT) fail with that errno" {
	prepare
	mount_fault lmdb_commit:2:EIO
	expect_errno EIO mkdir "$MNT/dir"
	fired lmdb_commit
	expect_errno ENOENT stat "$MNT/dir"
	intact
	unmount_pfs
	mount_fault lmdb_commit:2:ENOSPC
	expect_errno ENOSPC rename "$MNT/small.txt" "$MNT/d.csv"
	fired lmdb_commit
	intact
	unmount_pfs
	mount_pfs
	setfattr -n user.k -v old "$MNT/d.csv"
	unmount_pfs
	mount_fault lmdb_commit:2:EDQUOT
	expect_errno EDQUOT setxattr "$MNT/d.csv" user.k new
	fired lmdb_commit
	[ "$(xget "$MNT/d.csv" user.k)" = old ]
	# the point fired once and is disarmed: the same call now succeeds
	expect_errno OK setxattr "$MNT/d.csv" user.k new
	[ "$(xget "$MNT/d.csv" user.k)" = new ]
	fired lmdb_commit
	serving
}

# ---- reads -----------------------------------------------------------------

# read_fault SPEC WANT — arm SPEC; the first pass over d.csv must fail with
# WANT after only correct bytes, the second pass (same descriptor) must
# return every byte right. The mount reads with direct I/O and no worker
# threads (no read-ahead): a one-shot fault met by a background read-ahead,
# or by a kernel page-cache read that the kernel then retries, is absorbed
# by design (the retry reads good bytes), so only there does the Nth call
# belong to the application's read(2). Persistent damage reaches read(2)
# in every mode (the corruption tests below use the default mount).
read_fault() {
	prepare
	mount_fault "$1" direct_io,threads=0
	[ "${3:-}" != uring ] || need_uring
	run fio read-twice "$MNT/d.csv" "$TWIN/d.csv"
	echo "# $1: $output" >&3
	[[ $output =~ ^$2:[0-9]+\ OK$ ]]
	fired "${1%%:*}"
	intact
	serving
}

@test "frag_read EIO: read(2) fails with EIO, never wrong bytes; the next read is right" {
	read_fault frag_read:1:EIO EIO
}

@test "lz4_decode EIO: read(2) fails with EIO; the next read is right" {
	read_fault lz4_decode:3:EIO EIO
}

@test "alloc ENOMEM in the fragment cache: read(2) fails with ENOMEM; the next read is right" {
	read_fault alloc:1:ENOMEM ENOMEM
}

@test "uring_complete EIO (a failed io_uring completion): read(2) fails with EIO" {
	read_fault uring_complete:2:EIO EIO uring
}

@test "uring_submit EAGAIN: the batch falls back to pread and read(2) returns the right bytes" {
	prepare
	mount_fault uring_submit:1:EAGAIN
	need_uring
	run fio read-twice "$MNT/d.csv" "$TWIN/d.csv"
	[ "$output" = "OK OK" ]
	fired uring_submit
	grep -qF "io_uring read failed (Resource temporarily unavailable): switching to pread (EAGAIN)" "$LOG"
	intact
	serving
}

@test "uring_init ENOSYS at mount: reads use pread and return the right bytes" {
	local_only "images are read from the cluster, never with io_uring (the local backend's)"
	prepare
	mount_fault uring_init:1:ENOSYS
	fired uring_init
	grep -q "io_uring is unavailable (Function not implemented)" "$LOG"
	run fio read-twice "$MNT/d.csv" "$TWIN/d.csv"
	[ "$output" = "OK OK" ]
	intact
	serving
}

@test "a bad PAYLOADFS_FAULT is refused at start-up and nothing is mounted" {
	run env PAYLOADFS_FAULT=frag_write:0:ENOSPC "$PFS" "$STORE" "$MNT" -o "logfile=$LOG" 3>&-
	[ "$status" -ne 0 ]
	[[ $output == *PAYLOADFS_FAULT* ]]
	not_mounted "$MNT"
}

# ---- real ENOSPC: a store on a small tmpfs ---------------------------------
# (commit.bats covers an oversized write that fills staging/ first; here
# the staged bytes fit in memory and the fragments do not, so the error
# comes from the commit at close.)

# small_store SIZE — make $STORE a directory on a fresh SIZE tmpfs under
# $TMP (unmounted by teardown).
small_store() {
	local_only "a full local file system: the store's images live in the cluster"
	mkdir "$TMP/small"
	mount -t tmpfs -o "size=$1,mode=0700" tmpfs "$TMP/small"
	EXTRA_MOUNTS+=("$TMP/small")
	rmdir "$STORE"
	STORE=$TMP/small/store
	mkdir "$STORE"
}

# used — bytes in use on the small tmpfs.
used() { df --output=used -B1 "$TMP/small" | tail -n 1 | tr -d ' '; }

# wait_used_below BYTES — poll (up to 10 s) until used() < BYTES: an
# unlinked object's images go when the kernel forgets its inode.
wait_used_below() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(used)" -lt "$1" ] && return 0
		sleep 0.05
	done
	echo "# tmpfs still uses $(used) bytes, want < $1" >&2
	return 1
}

@test "real ENOSPC: an oversized commit fails at close(2) with ENOSPC, the old version stays, space comes back" {
	small_store 10m
	mount_pfs
	gen_bin "$TMP/keep" 4000000 1
	gen_bin "$TMP/big" 7000000 2      # staged in memory (below the 8 MiB spill)
	cp "$TMP/keep" "$MNT/keep"
	echo old >"$MNT/obj"
	v=$(xget "$MNT/obj" user.payload.version)
	before=$(used)
	run fio put "$TMP/big" "$MNT/obj"
	echo "# 7 MB into a 10 MB tmpfs holding 4 MB: $output (tmpfs used $before bytes before)" >&3
	[ "$output" = close:ENOSPC ]
	grep -q "commit failed: No space left on device" "$LOG"
	# the old version stays and every other object reads back
	[ "$(cat "$MNT/obj")" = old ]
	[ "$(xget "$MNT/obj" user.payload.version)" = "$v" ]
	same_file "$MNT/keep" "$TMP/keep"
	# the failed commit's images were removed: usage is back where it was
	after=$(used)
	echo "# used after the failed commit: $after bytes" >&3
	[ "$after" -le $((before + 131072)) ]
	[ -z "$(find "$STORE/fragments" -name '.tmp.*')" ]
	# deleting an object gives its space back (statfs of the tmpfs) ...
	rm "$MNT/keep"
	wait_used_below $((after - 3900000))
	echo "# used after rm keep: $(used) bytes" >&3
	# ... and the same write now fits
	[ "$(fio put "$TMP/big" "$MNT/obj")" = OK ]
	same_file "$MNT/obj" "$TMP/big"
	unmount_pfs
	mount_pfs
	same_file "$MNT/obj" "$TMP/big"
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
}

@test "real ENOSPC: on a full store inline commits and creates fail with ENOSPC, never EIO; a full store still mounts" {
	small_store 4m
	mount_pfs fragment_size=65536
	gen_bin "$TMP/fill" 1048576 3
	# fill with 1 MiB, then 64 KiB, then 4 KiB objects until each size fails
	run python3 - "$MNT" "$TMP/fill" <<'PY'
import errno, os, sys
mnt, fill = sys.argv[1], open(sys.argv[2], "rb").read()
n, last = 0, {}
for size in (1 << 20, 1 << 16, 1 << 12):
    while True:
        p = os.path.join(mnt, "fill%d" % n)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            last[size] = "open:" + errno.errorcode[e.errno]
            break
        os.write(fd, fill[:size])
        n += 1
        try:
            os.close(fd)
        except OSError as e:   # the create stands: an empty object
            last[size] = "close:" + errno.errorcode[e.errno]
            break
print(n, " ".join("%d=%s" % kv for kv in sorted(last.items())))
PY
	echo "# filled: $output" >&3
	[[ $output =~ ^[0-9]+\ 4096=(open|close):ENOSPC\ 65536=(open|close):ENOSPC\ 1048576=close:ENOSPC$ ]]
	nfill=${output%% *}
	# now tiny (inline: index only) objects until the index cannot grow
	run python3 - "$MNT" <<'PY'
import errno, os, sys
mnt = sys.argv[1]
for i in range(20000):
    p = os.path.join(mnt, "s%05d.txt" % i)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        print(i, "create:" + errno.errorcode[e.errno]); break
    os.write(fd, b"small object %05d\n" % i * 8)
    try:
        os.close(fd)
    except OSError as e:
        print(i, "close:" + errno.errorcode[e.errno]); break
else:
    print(i, "none failed")
PY
	echo "# inline objects: $output" >&3
	[[ $output =~ ^[0-9]+\ (create|close):ENOSPC$ ]]
	local k=${output%% *} step=${output#* }
	# every acknowledged object is intact; the failed one is absent
	# (create failed) or empty (its commit failed: the create had succeeded)
	run python3 - "$MNT" "$k" <<'PY'
import os, sys
mnt, k = sys.argv[1], int(sys.argv[2])
bad = [i for i in range(k) if open(os.path.join(mnt, "s%05d.txt" % i), "rb").read() != b"small object %05d\n" % i * 8]
print("bad:%d" % len(bad))
PY
	[ "$output" = bad:0 ]
	if [[ $step == create:* ]]; then
		[ ! -e "$(printf '%s/s%05d.txt' "$MNT" "$k")" ]
	else
		[ ! -s "$(printf '%s/s%05d.txt' "$MNT" "$k")" ]
	fi
	# the index itself ran out of room (LMDB's short write) and said ENOSPC
	grep -qF "index: commit: No space left on device (ENOSPC)" "$LOG"
	[ "$(grep -c "Input/output error" "$LOG")" = 0 ]
	# mkdir and setxattr are index transactions too: ENOSPC or OK, never EIO
	# (on fill0 the index may have had no room for even the first small
	# object)
	for op in "mkdir $MNT/dir1" "setxattr $MNT/fill0 user.k $(printf 'v%.0s' {1..3000})"; do
		r=$(fsop $op)
		echo "# $op: $r" >&3
		[ "$r" = OK ] || [ "$r" = ENOSPC ]
	done
	# a full store still mounts (the sweep at mount writes nothing)
	unmount_pfs
	mount_pfs fragment_size=65536
	same_file "$MNT/fill0" "$TMP/fill"
	# deleting the filler gives the space back and creates work again
	rm "$MNT"/fill*
	wait_used_below $((4 * 1048576 - nfill * 60000))
	run python3 - "$MNT" <<'PY'
import os, sys
for i in range(200):
    with open(os.path.join(sys.argv[1], "again%d.txt" % i), "wb") as f:
        f.write(b"again\n" * 50)
print("OK")
PY
	[ "$output" = OK ]
	[ "$(fio put "$TMP/fill" "$MNT/big-again")" = OK ]
	same_file "$MNT/big-again" "$TMP/fill"
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
}
