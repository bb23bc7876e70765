#!/usr/bin/env bats
# ctl_data.bats — payloadctl's data commands against real mounts: import
# (a tree mounted afterwards equals its source byte for byte, with modes,
# ns mtimes, symlinks, hard links, fifos and the daemon's csv/tsv header
# rule; options; the progress line only on a terminal), export (the round
# trip import -> mount -> export equals the source; views; while mounted),
# gc (garbage of a killed daemon removed, referenced images never
# touched, --dry-run changes nothing), snapshot (of an unmounted store; of
# a store a daemon is writing: every snapshot mounts, fsck's clean and
# holds whole versions), bench; and every error path with its message and
# exit status (0 ok, 1 failure, 2 usage or store in use): missing store,
# mounted store, missing and unreadable sources, a full file system.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

ERR_RE='^payloadctl: .+: .+'

ctl() { "$PCTL" "$@" 3>&-; }

# make_src DIR — a tree of every kind of entry, with odd modes and ns times.
make_src() {
	local d=$1
	mkdir -p "$d/sub/deeper" "$d/empty-dir"
	gen_csv "$d/d.csv" 20000
	gen_csv "$d/sub/t.tsv" 300 3
	seq 1 500 >"$d/sub/n.txt"
	gen_bin "$d/sub/blob.bin" 300000 4
	: >"$d/empty"
	echo tiny >"$d/sub/deeper/tiny.txt"
	ln "$d/d.csv" "$d/sub/hard.csv"
	ln -s ../d.csv "$d/sub/link.csv"
	ln -s /absolute/elsewhere "$d/dangling"
	mkfifo "$d/fifo"
	chmod 0640 "$d/sub/blob.bin"
	chmod 04755 "$d/empty"
	chmod 0711 "$d/sub/deeper"
	touch -d '2021-03-04 05:06:07.123456789' "$d/d.csv"
	touch -h -d '2019-01-01 00:00:00.5' "$d/sub/link.csv"
	touch -d '2020-02-02 02:02:02.987654321' "$d/sub/deeper" "$d/sub"
}

# meta DIR — one line per entry below DIR: path, type, mode, links (not for
# directories: ext4 counts differently), size (files only), target, mtime
# with ns; then a sha256 line per regular file.
meta() {
	(cd "$1" && find . -mindepth 1 -printf '%P %y %m %n %s %l %T@\n' | sort |
		awk '$2 == "d" { $4 = "-"; $5 = "-" } { print }'
	 cd "$1" && find . -type f -exec sha256sum {} + | sort -k2)
}

# same_meta A B — the trees A and B are the same by meta.
same_meta() {
	local a b
	a=$(meta "$1") b=$(meta "$2")
	if [ "$a" != "$b" ]; then
		echo "# trees differ (< $1, > $2):" >&2
		diff <(echo "$a") <(echo "$b") | sed 's/^/#   /' >&2
		return 1
	fi
}

# small_fs — a 16 MiB tmpfs at $TMP/small (always unmounted in teardown).
small_fs() {
	mkdir "$TMP/small"
	mount -t tmpfs -o size=16m tmpfs "$TMP/small"
	EXTRA_MOUNTS+=("$TMP/small")
}

# ---- import ------------------------------------------------------------------

@test "import: a tree of every kind of entry; mounted it equals the source; export gives it back" {
	make_src "$TWIN/src"
	run --separate-stderr ctl import --fragment-size=64K "$STORE" "$TWIN/src" /data
	show_output
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	[[ ${lines[0]} == "import: 6 files ("*"), 4 directories, 2 symlinks, 1 hard link, 1 other in "*" s ("*" MB/s)" ]]
	run ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	[[ $output == *": clean" ]]
	[[ $output != *warning* ]]
	# several fragments of 64 KiB
	[ "$(ctl stat "$STORE" data/d.csv | awk '$1 == "fragments:" { print $2 }')" -ge 10 ]

	mount_pfs
	same_meta "$TWIN/src" "$MNT/data"
	[ "$(stat -c %i "$MNT/data/d.csv")" = "$(stat -c %i "$MNT/data/sub/hard.csv")" ]
	# headers follow the daemon's rule: csv and tsv 1, others 0
	[ "$(xget "$MNT/data/d.csv" user.payload.header)" = 1 ]
	[ "$(xget "$MNT/data/sub/t.tsv" user.payload.header)" = 1 ]
	[ "$(xget "$MNT/data/sub/n.txt" user.payload.header)" = 0 ]
	[ "$(xget "$MNT/data/d.csv" user.payload.rows)" = 20000 ]
	head -n 6 "$MNT/data/d.csv@rows=0:5" | cmp - <(head -n 6 "$TWIN/src/d.csv")
	unmount_pfs

	run --separate-stderr ctl export "$STORE" data "$TMP/out"
	show_output
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ ${lines[0]} == "export: 6 files ("*"), 4 directories, 2 symlinks, 1 hard link, 1 other in "* ]]
	same_meta "$TWIN/src" "$TMP/out"
	[ "$(stat -c %i "$TMP/out/d.csv")" = "$(stat -c %i "$TMP/out/sub/hard.csv")" ]
}

@test "import: into an existing directory, dir/. merges, --format, --header, -f" {
	make_src "$TWIN/src"
	ctl init "$STORE" >/dev/null
	mount_pfs
	mkdir "$MNT/in"
	unmount_pfs
	run ctl import -q "$STORE" "$TWIN/src/sub" "$TWIN/src/d.csv" in
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run ctl import -q "$STORE" "$TWIN/src/." /
	[ "$status" -eq 0 ]
	gen_bin "$TMP/rec.bin" 4096 9
	printf 'h1\nh2\na\nb\n' >"$TMP/two.txt"
	run ctl import -q --format fixed:64 "$STORE" "$TMP/rec.bin" /rec.bin
	[ "$status" -eq 0 ]
	run ctl import -q --header=2 "$STORE" "$TMP/two.txt" /two.txt
	[ "$status" -eq 0 ]
	mount_pfs
	same_meta "$TWIN/src/sub" "$MNT/in/sub"
	cmp "$TWIN/src/d.csv" "$MNT/in/d.csv"
	cmp "$TWIN/src/d.csv" "$MNT/d.csv"
	[ "$(xget "$MNT/rec.bin" user.payload.format)" = fixed:64 ]
	[ "$(xget "$MNT/rec.bin" user.payload.rows)" = 64 ]
	[ "$(xget "$MNT/two.txt" user.payload.rows)" = 2 ]
	cmp <(printf 'h1\nh2\nb\n') "$MNT/two.txt@rows=1:"
	ino=$(stat -c %i "$MNT/d.csv")
	unmount_pfs
	# an existing object: refused, then replaced with -f (same id, new version)
	echo replaced >"$TMP/d.csv"
	run --separate-stderr ctl import "$STORE" "$TMP/d.csv" /d.csv
	[ "$status" -eq 1 ]
	[[ $stderr =~ $ERR_RE ]]
	[[ $stderr == *"File exists"* ]]
	run ctl import -q -f "$STORE" "$TMP/d.csv" /d.csv
	[ "$status" -eq 0 ]
	mount_pfs
	[ "$(stat -c %i "$MNT/d.csv")" = "$ino" ]
	[ "$(xget "$MNT/d.csv" user.payload.version)" = 2 ]
	cmp "$TMP/d.csv" "$MNT/d.csv"
}

@test "import: errors — missing store (1), mounted store (2), missing and unreadable sources (1), usage (2)" {
	make_src "$TWIN/src"
	run --separate-stderr ctl import "$TMP/nostore" "$TWIN/src" /
	[ "$status" -eq 1 ]
	[ "$stderr" = "payloadctl: $TMP/nostore: no such store (missing directory, or not a payloadfs store)" ]

	mount_pfs
	run --separate-stderr ctl import "$STORE" "$TWIN/src" /
	[ "$status" -eq 2 ]
	[[ $stderr == "payloadctl: $STORE: the store is in use (mounted by payloadfs"*"import needs the store to itself" ]]
	unmount_pfs

	# a missing source and an unreadable one (read(2) fails with EIO even
	# for root): each named, the others imported, exit 1
	run --separate-stderr ctl import -q "$STORE" "$TMP/missing" /proc/self/mem "$TWIN/src/d.csv" /
	[ "$status" -eq 1 ]
	[[ $stderr == *"payloadctl: $TMP/missing: cannot stat: No such file or directory"* ]]
	[[ $stderr == *"payloadctl: /proc/self/mem: cannot read: Input/output error"* ]]
	run ctl ls "$STORE"
	[[ $output == *" d.csv"* ]]
	[[ $output != *" mem"* ]]
	# DEST's directory must exist; several sources need a directory
	run --separate-stderr ctl import "$STORE" "$TWIN/src/d.csv" /no/such/x
	[ "$status" -eq 1 ]
	[[ $stderr == *"No such file or directory"* ]]
	run --separate-stderr ctl import "$STORE" "$TWIN/src/d.csv" "$TWIN/src/empty" /d.csv
	[ "$status" -eq 1 ]
	[[ $stderr == *"not a directory"* ]]
	# usage errors
	for args in "" "$STORE" "$STORE $TWIN/src" "--format=csv $STORE $TWIN/src /" \
		"--bogus $STORE $TWIN/src /" "--fragment-size=0 $STORE $TWIN/src /"; do
		run ctl import $args
		[ "$status" -eq 2 ] || { echo "# import $args: status $status" >&2; false; }
	done
	run ctl fsck "$STORE"
	[ "$status" -eq 0 ]
}

@test "import onto a full file system: ENOSPC named, exit 1, the store stays consistent" {
	local_only "a full local file system: the store's images live in the cluster"
	small_fs
	rmdir "$STORE"
	STORE=$TMP/small/store
	ctl init "$STORE" >/dev/null
	gen_csv "$TMP/keep.csv" 2000
	gen_bin "$TMP/big.bin" 40000000 5
	run --separate-stderr ctl import "$STORE" "$TMP/keep.csv" "$TMP/big.bin" /
	show_output
	[ "$status" -eq 1 ]
	[[ $stderr == *"payloadctl: $TMP/big.bin: cannot import: No space left on device"* ]]
	run ctl ls "$STORE"
	[[ $output == *" keep.csv"* ]]
	[[ $output != *" big.bin"* ]]
	run ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	# deletes still work and the store mounts
	mount_pfs
	cmp "$TMP/keep.csv" "$MNT/keep.csv"
}

@test "import and export draw a progress line on a terminal only; one summary line" {
	mkdir "$TWIN/src"
	gen_bin "$TWIN/src/a.bin" 48000000 1
	gen_csv "$TWIN/src/b.csv" 100000
	ctl init "$STORE" >/dev/null
	script -qec "$PCTL import $STORE $TWIN/src /t1" /dev/null >"$TMP/tty.out" 3>&-
	[[ $(cat "$TMP/tty.out") == *$'\r'*" MB/s"*"ETA "*"import: 2 files"* ]]
	grep -q 'files' "$TMP/tty.out"
	run --separate-stderr ctl import "$STORE" "$TWIN/src" /t2
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	script -qec "$PCTL export $STORE /t1 $TMP/e1" /dev/null >"$TMP/tty2.out" 3>&-
	[[ $(cat "$TMP/tty2.out") == *$'\r'*" MB/s"*"export: 2 files"* ]]
	run --separate-stderr ctl export -q "$STORE" /t2 "$TMP/e2"
	[ "$status" -eq 0 ]
	[ -z "$output$stderr" ]
	same_meta "$TWIN/src" "$TMP/e1"
	same_meta "$TWIN/src" "$TMP/e2"
}

# ---- export ------------------------------------------------------------------

@test "export: views and directories while mounted equal what the mount serves" {
	mount_pfs fragment_size=65536
	mkdir "$MNT/ds"
	gen_csv "$MNT/ds/d.csv" 20000
	seq 1 100 >"$MNT/ds/n.txt"
	mkdir "$TMP/out"
	run --separate-stderr ctl export "$STORE" 'ds/d.csv@rows=100:200' 'ds/d.csv@part=2/5' \
		ds/d.csv@meta ds "$TMP/out"
	show_output
	[ "$status" -eq 0 ]
	cmp "$MNT/ds/d.csv@rows=100:200" "$TMP/out/d.csv@rows=100:200"
	cmp "$MNT/ds/d.csv@part=2/5" "$TMP/out/d.csv@part=2_5"
	cmp "$MNT/ds/d.csv@meta" "$TMP/out/d.csv@meta"
	same_meta "$MNT/ds" "$TMP/out/ds"
	# a view to a new file name; the root's contents into a directory
	ctl export -q "$STORE" 'ds/d.csv@rows=-3:' "$TMP/last3.csv"
	cmp "$MNT/ds/d.csv@rows=-3:" "$TMP/last3.csv"
	mkdir "$TMP/all"
	ctl export -q "$STORE" / "$TMP/all"
	same_meta "$MNT/ds" "$TMP/all/ds"
}

@test "export: errors — missing path, bad view, existing file, full file system" {
	mount_pfs
	gen_bin "$MNT/big.bin" 30000000 3
	echo x >"$MNT/x.txt"
	unmount_pfs
	run --separate-stderr ctl export "$STORE" nope "$TMP/o"
	[ "$status" -eq 1 ]
	[ "$stderr" = "payloadctl: nope: No such file or directory" ]
	run --separate-stderr ctl export "$STORE" 'x.txt@rows=abc' "$TMP/o"
	[ "$status" -eq 1 ]
	[[ $stderr == *"bad view"* ]]
	run --separate-stderr ctl export "$TMP/nostore" x.txt "$TMP/o"
	[ "$status" -eq 1 ]
	[[ $stderr == *"no such store"* ]]
	echo old >"$TMP/o"
	run --separate-stderr ctl export "$STORE" x.txt "$TMP/o"
	[ "$status" -eq 1 ]
	[[ $stderr == *"$TMP/o: cannot create: File exists"* ]]
	ctl export -q -f "$STORE" x.txt "$TMP/o"
	[ "$(cat "$TMP/o")" = x ]
	run ctl export "$STORE" x.txt
	[ "$status" -eq 2 ]
	small_fs
	run --separate-stderr ctl export "$STORE" x.txt big.bin "$TMP/small"
	show_output
	[ "$status" -eq 1 ]
	[[ $stderr == *"payloadctl: $TMP/small/big.bin: cannot write: No space left on device"* ]]
	[ ! -e "$TMP/small/big.bin" ]       # the partial file is removed
	[ "$(cat "$TMP/small/x.txt")" = x ]
}

# ---- gc ----------------------------------------------------------------------

# image_sums ID... — "sha256  ID" of each image (wherever the store keeps it).
image_sums() {
	local id
	for id in "$@"; do
		image_get "$id" "$TMP/sum.img"
		echo "$(sha256sum <"$TMP/sum.img" | cut -d' ' -f1)  $id"
	done
	rm -f "$TMP/sum.img"
}

@test "gc: unreferenced images and staging files go, referenced images stay; --dry-run changes nothing" {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/keep.csv" 20000
	cp "$TWIN/keep.csv" "$MNT/keep.csv"
	run --separate-stderr ctl gc "$STORE"
	[ "$status" -eq 2 ]
	[[ $stderr == *"the store is in use"*"gc needs the store to itself" ]]
	run ctl gc -n "$STORE"
	[ "$status" -eq 2 ]
	unmount_pfs
	# garbage: an image no record names, a staging file
	image_get "$(store_images | head -n 1)" "$TMP/img"
	image_put 00000000000fffee "$TMP/img"
	echo staged >"$STORE/staging/leftover"
	keep=$(ctl stat -v "$STORE" keep.csv | sed -n '/^fragment list:/,$p' | tail -n +3 | awk '{ print $6 }')
	[ "$(echo "$keep" | wc -l)" -ge 10 ]
	image_sums $keep >"$TMP/keep.sums"
	n_before=$(store_images | wc -l)

	run --separate-stderr ctl gc --dry-run "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *"would delete: image $(image_where 00000000000fffee) ("*" bytes, no index record references it)"* ]]
	[[ $output == *"would delete: staging/leftover (7 bytes)"* ]]
	[[ ${lines[-1]} == "gc: would free "*" bytes ("*"): 1 fragment image, 1 staging file, 0 unlinked inodes, 0 storage=memory objects (dry run: nothing changed)" ]]
	[ "$(store_images | wc -l)" -eq "$n_before" ]
	[ -e "$STORE/staging/leftover" ]

	run --separate-stderr ctl gc "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} == "gc: freed "*" bytes ("*"): 1 fragment image, 1 staging file, 0 unlinked inodes, 0 storage=memory objects" ]]
	run image_exists 00000000000fffee
	[ "$status" -ne 0 ]
	[ ! -e "$STORE/staging/leftover" ]
	[ "$(image_sums $keep)" = "$(cat "$TMP/keep.sums")" ]
	[ "$(store_images | wc -l)" -eq $((n_before - 1)) ]
	run ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	[[ $output != *warning* ]]
	run ctl gc "$STORE"
	[ "$output" = "gc: nothing to collect" ]
	mount_pfs
	cmp "$TWIN/keep.csv" "$MNT/keep.csv"
}

@test "gc frees the orphan a killed daemon left, and only its images" {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/keep.csv" 20000
	gen_csv "$TWIN/gone.csv" 5000 2
	cp "$TWIN/keep.csv" "$MNT/keep.csv"
	cp "$TWIN/gone.csv" "$MNT/gone.csv"
	gone_id=$(stat -c %i "$MNT/gone.csv")
	mkfifo "$TMP/ready"
	"$PY" - "$MNT/gone.csv" "$TMP/ready" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
with open(sys.argv[2], "w") as f:
    f.write("held\n")
time.sleep(600)
PY
	BG_PIDS+=($!)
	timeout 120 bash -c 'read -r _ <"$1"' _ "$TMP/ready"
	crash_daemon
	keep=$(ctl stat -v "$STORE" keep.csv | sed -n '/^fragment list:/,$p' | tail -n +3 | awk '{ print $6 }')
	image_sums $keep >"$TMP/keep.sums"
	n_before=$(store_images | wc -l)
	run ctl gc -n "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *"would free: unlinked inode $gone_id"* ]]
	[[ $output == *"only unlinked inode $gone_id references it"* ]]
	freed=$(echo "$output" | grep -c "only unlinked inode $gone_id")
	[ "$freed" -ge 2 ]
	[ "$(store_images | wc -l)" -eq "$n_before" ]
	run ctl gc "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} == "gc: freed "*": $freed fragment images, 0 staging files, 1 unlinked inode, 0 storage=memory objects" ]]
	[ "$(store_images | wc -l)" -eq $((n_before - freed)) ]
	[ "$(image_sums $keep)" = "$(cat "$TMP/keep.sums")" ]
	run ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	[[ $output != *warning* ]]
	run --separate-stderr ctl gc "$TMP/nostore"
	[ "$status" -eq 1 ]
	[[ $stderr == *"no such store"* ]]
	run ctl gc
	[ "$status" -eq 2 ]
}

# ---- snapshot ----------------------------------------------------------------

@test "snapshot of an unmounted store: it mounts, fsck's clean, and is independent" {
	make_src "$TWIN/src"
	ctl import -q --fragment-size=64K "$STORE" "$TWIN/src" /data
	run --separate-stderr ctl snapshot "$STORE" "$TMP/snap"
	show_output
	[ "$status" -eq 0 ]
	if rados_mode; then
		[[ ${lines[0]} == "snapshot: $STORE -> $TMP/snap: a local store of log position "*", "*" fragment images fetched from the cluster ("*" bytes; 1 round) in "* ]]
	else
		[[ ${lines[0]} == "snapshot: $STORE -> $TMP/snap: index copied, "*" fragment images linked (1 round) in "* ]]
	fi
	run ctl fsck "$TMP/snap"
	[ "$status" -eq 0 ]
	[[ $output != *warning* ]]
	id=$(ctl stat -v "$STORE" data/d.csv | sed -n '/^fragment list:/,$p' | sed -n 3p | awk '{ print $6 }')
	if rados_mode; then
		# a local store: copies of the images, fetched from the cluster
		[ ! -e "$TMP/snap/cache" ]
		image_get "$id" "$TMP/img"
		cmp "$TMP/img" "$TMP/snap/fragments/${id:14:2}/$id.frag"
		run ctl stat "$TMP/snap" data/d.csv
		[ "$status" -eq 0 ]
	else
		# hard links of the same images
		[ "$(stat -c %i "$STORE/fragments/${id:14:2}/$id.frag")" = \
		  "$(stat -c %i "$TMP/snap/fragments/${id:14:2}/$id.frag")" ]
	fi
	# writing the snapshot leaves the source alone
	STORE0=$STORE
	STORE=$TMP/snap
	mount_pfs
	same_meta "$TWIN/src" "$MNT/data"
	echo changed >"$MNT/data/d.csv"
	rm "$MNT/data/sub/n.txt"
	unmount_pfs
	STORE=$STORE0
	mount_pfs
	same_meta "$TWIN/src" "$MNT/data"
	unmount_pfs
	# errors
	run --separate-stderr ctl snapshot "$STORE" "$TMP/snap"
	[ "$status" -eq 1 ]
	[[ $stderr == *"not empty"* ]]
	run --separate-stderr ctl snapshot "$TMP/nostore" "$TMP/snap2"
	[ "$status" -eq 1 ]
	[ ! -e "$TMP/snap2" ]
	run ctl snapshot "$STORE"
	[ "$status" -eq 2 ]
}

@test "snapshot while a daemon commits: every snapshot mounts, fsck's clean, holds whole versions" {
	mount_pfs fragment_size=16384,sync_ms=50
	# a writer rewriting, appending, renaming and deleting for a few seconds;
	# every version of a file is self-describing: "v,k" lines, then "end,v,n"
	"$PY" - "$MNT" <<'PY' 3>&- &
import os, random, sys, time
mnt = sys.argv[1]
random.seed(7)
t0, v = time.time(), 0
while time.time() - t0 < 6:
    v += 1
    n = random.randint(200, 4000)
    name = "f%d.csv" % random.randint(0, 5)
    body = "v,k\n" + "".join("%d,%d\n" % (v, k) for k in range(n)) + "end,%d,%d\n" % (v, n)
    tmp = os.path.join(mnt, "tmp.%d" % v)
    with open(tmp, "w") as f:
        f.write(body)
    os.rename(tmp, os.path.join(mnt, name))
    if v % 7 == 0:
        try:
            os.unlink(os.path.join(mnt, "f%d.csv" % random.randint(0, 5)))
        except FileNotFoundError:
            pass
PY
	local writer=$!
	BG_PIDS+=("$writer")
	local k rc=0
	for k in 1 2 3 4 5 6; do
		sleep 0.5
		ctl snapshot "$STORE" "$TMP/snap$k" >"$TMP/snap$k.out" 2>&1 || { rc=$?; cat "$TMP/snap$k.out" >&3; break; }
	done
	wait "$writer"
	BG_PIDS=()
	[ "$rc" -eq 0 ]
	cat "$TMP"/snap*.out | sed 's/^/# /' >&3
	unmount_pfs
	STORE0=$STORE
	for k in 1 2 3 4 5 6; do
		run ctl fsck "$TMP/snap$k"
		[ "$status" -eq 0 ] || { echo "$output" | sed 's/^/# /' >&3; false; }
		STORE=$TMP/snap$k
		mount_pfs
		for f in "$MNT"/f*.csv; do
			[ -e "$f" ] || continue
			python3 - "$f" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[0] == "v,k" and lines[-1] == "", sys.argv[1]
end = lines[-2].split(",")
v, n = end[1], int(end[2])
body = lines[1:-2]
assert len(body) == n, (sys.argv[1], len(body), n)
assert all(l == "%s,%d" % (v, k) for k, l in enumerate(body)), sys.argv[1]
PY
		done
		unmount_pfs
	done
	STORE=$STORE0
}

# ---- bench and usage ---------------------------------------------------------

@test "bench prints its table in a scratch store and removes it" {
	run --separate-stderr ctl bench --size=4M -n 50 "$TMP/b"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *"lz4 encode"*"MB/s"* ]]
	[[ $output == *"decode + verify"* ]]
	[[ $output == *"write + commit, one object"* ]]
	[[ $output == *"small objects"*"objects/s"* ]]
	[[ $output == *"sequential read, cold fragment cache"* ]]
	[[ $output == *"sequential read, warm fragment cache"* ]]
	[ ! -e "$TMP/b" ]
	ctl init "$STORE" >/dev/null
	run --separate-stderr ctl bench "$STORE"
	[ "$status" -eq 1 ]
	[[ $stderr == *"already a store"* ]]
	run ctl bench --size=1 "$TMP/b"
	[ "$status" -eq 2 ]
	run ctl bench
	[ "$status" -eq 2 ]
}

@test "the new commands: --help, missing operands and unknown options are usage errors (2)" {
	for c in import export gc snapshot bench; do
		run ctl "$c" --help
		[ "$status" -eq 0 ]
		[[ ${lines[0]} == "usage: payloadctl $c"* ]]
		run --separate-stderr ctl "$c"
		[ "$status" -eq 2 ]
		[[ $stderr =~ $ERR_RE ]]
		run --separate-stderr ctl "$c" --no-such-option x y z
		[ "$status" -eq 2 ]
		[[ $stderr == "payloadctl: $c: unknown option '--no-such-option'"* ]]
	done
	run ctl --help
	for c in import export gc snapshot bench; do
		[[ $output == *"  $c "* ]]
	done
}
