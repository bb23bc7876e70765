#!/usr/bin/env bats
# snapshots.bats — cheap copies and snapshots on a real mount (DESIGN §1
# "Snapshots by copying", `.snapshots/NAME/`): coreutils cp inside the
# mount shares the source's fragments through copy_file_range (no image
# written: images and io.fragments_written counted), cp -r of a directory,
# both sides independent afterwards; copy_file_range with offsets, into the
# middle, past the end, within one file and from a view, compared with the
# same calls on ext4 ($TWIN), errors included; `.snapshots`: a snapshot
# reads exactly as the tree was (manifest with SHA-256 of every file) after
# everything live changed or went, views in snapshots, EROFS for every
# write, names, rmdir frees the images nothing else lists (at the next
# index flush), snapshots survive a remount, fsck is clean.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

images() { store_images | wc -l; }

# flush — make the daemon flush its index now (fsync of the mount's root),
# then wait (10 s at most) until its reaper deleted the images that the
# flush let go (io.deletes_pending back to 0).
flush() {
	local i
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT"
	for ((i = 0; i < 1000; i++)); do
		[ "$(stat_field io.deletes_pending)" -eq 0 ] && return 0
		sleep 0.01
	done
	echo "# flush: deletions still pending after 10 s" >&2
	return 1
}

manifest() { python3 "$E2E/manifest.py" "$1"; }

@test "cp inside the mount shares the source's fragments: no image written, same bytes, same fragment count" {
	mount_pfs fragment_size=65536
	gen_csv "$MNT/a.csv" 60000 1
	local before_img before_w
	flush
	before_img=$(images)
	before_w=$(stat_field io.fragments_written)
	[ "$before_img" -gt 20 ]
	cp "$MNT/a.csv" "$MNT/b.csv"
	same_file "$MNT/a.csv" "$MNT/b.csv"
	[ "$(images)" -eq "$before_img" ]
	[ "$(stat_field io.fragments_written)" -eq "$before_w" ]
	[ "$(xget "$MNT/b.csv" user.payload.fragments)" = "$(xget "$MNT/a.csv" user.payload.fragments)" ]
	[ "$(xget "$MNT/b.csv" user.payload.rows)" = 60000 ]
	[ "$(stat -c %i "$MNT/b.csv")" != "$(stat -c %i "$MNT/a.csv")" ]
	# the copy is its own object: a view and a remount work on it
	[ "$(cat "$MNT/b.csv@rows=-1:" | wc -l)" -eq 2 ]
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *clean* ]]
}

@test "cp -r of a directory inside the mount: the same tree, no image written" {
	mount_pfs fragment_size=65536
	mkdir -p "$MNT/ds/sub" "$TWIN/ds/sub"
	gen_csv "$TWIN/ds/a.csv" 20000 2
	gen_lines "$TWIN/ds/sub/b.log" 30000 3
	printf 'tiny\n' >"$TWIN/ds/tiny.txt"
	ln -s a.csv "$TWIN/ds/link"
	cp -a "$TWIN/ds/." "$MNT/ds/"
	local before
	flush
	before=$(images)
	cp -r "$MNT/ds" "$MNT/ds.snap"
	cp -r "$TWIN/ds" "$TWIN/ds.snap"
	[ "$(images)" -eq "$before" ]
	diff -r "$MNT/ds" "$MNT/ds.snap"
	same_tree
}

@test "a copy and its source are independent: writes, appends, truncates and deletes of either side" {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/a.csv" 40000 4
	cp "$TWIN/a.csv" "$MNT/a.csv"
	cp "$MNT/a.csv" "$MNT/b.csv"
	cp "$TWIN/a.csv" "$TWIN/b.csv"
	in_both 'printf "9,x,y,1.0,changed\n" | dd of=a.csv bs=1 seek=100000 conv=notrunc status=none
		printf "tail\n" >> b.csv
		truncate -s 500000 a.csv
		printf "ZZZZ" | dd of=b.csv bs=1 seek=7 conv=notrunc status=none
		cp b.csv c.csv; printf "c only\n" >> c.csv'
	same_tree
	rm "$MNT/a.csv" "$TWIN/a.csv"
	flush
	same_tree
	unmount_pfs
	mount_pfs
	same_tree
}

# cfr.py OPS... in the current directory: each op "SRC:SOFF:LEN:DST:DOFF"
# (offsets or "-" for the file position); prints each result or errno.
cfr() {
	python3 - "$@" <<'PY'
import errno, os, sys
for op in sys.argv[1:]:
    src, so, ln, dst, do = op.split(":")
    try:
        fi = os.open(src, os.O_RDONLY)
        fo = os.open(dst, os.O_RDWR | os.O_CREAT, 0o644) if src != dst else os.open(dst, os.O_RDWR)
        n = os.copy_file_range(fi, fo, int(ln), None if so == "-" else int(so), None if do == "-" else int(do))
        os.close(fi)
        os.close(fo)
        print(op, n)
    except OSError as e:
        print(op, errno.errorcode[e.errno])
PY
}

@test "copy_file_range with offsets behaves as on ext4: middle, past the end, holes, within a file, short copies" {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/s.csv" 30000 5
	gen_lines "$TWIN/d.txt" 20000 6
	cp "$TWIN/s.csv" "$TWIN/d.txt" "$MNT/"
	local size
	size=$(stat -c %s "$TWIN/s.csv")
	in_both "$(declare -f cfr); cfr s.csv:1000:300000:d.txt:50000 s.csv:$((size - 10)):4096:d.txt:100 \
		s.csv:$size:10:d.txt:0 s.csv:$((size + 5)):10:d.txt:0 s.csv:0:5000:new.csv:200000 \
		s.csv:123:777777:s2.csv:0 d.txt:0:1000:d.txt:900000 d.txt:5000:70000:d.txt:200000 \
		d.txt:0:100:d.txt:50"
	same_tree
	in_both "cat d.txt | md5sum; stat -c %s d.txt new.csv s2.csv"
}

@test "copy_file_range errors as on ext4: read-only destination, directories, flags, O_APPEND" {
	mount_pfs
	printf 'a,b\n1,2\n' >"$TWIN/x.csv"
	cp "$TWIN/x.csv" "$MNT/x.csv"
	mkdir "$MNT/dir" "$TWIN/dir"
	in_both 'python3 - <<"PY"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.copy_file_range.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                 ctypes.c_size_t, ctypes.c_uint]
libc.copy_file_range.restype = ctypes.c_ssize_t
def t(what, fi, fo, n, flags=0, off_in=None, off_out=None):
    a = ctypes.c_longlong(off_in) if off_in is not None else None
    b = ctypes.c_longlong(off_out) if off_out is not None else None
    r = libc.copy_file_range(fi, ctypes.byref(a) if a else None, fo, ctypes.byref(b) if b else None, n, flags)
    print(what, r if r >= 0 else errno.errorcode[ctypes.get_errno()])
r = os.open("x.csv", os.O_RDONLY)
t("to a read-only fd", r, os.open("x.csv", os.O_RDONLY), 4)
t("from a directory", os.open("dir", os.O_RDONLY), os.open("y", os.O_WRONLY | os.O_CREAT), 4)
t("to a directory", r, os.open("dir", os.O_RDONLY), 4)
t("with flags", r, os.open("z", os.O_WRONLY | os.O_CREAT), 4, 1)
t("to O_APPEND", r, os.open("w", os.O_WRONLY | os.O_CREAT | os.O_APPEND), 4)
t("from a write-only fd", os.open("z", os.O_WRONLY), os.open("w", os.O_WRONLY), 4)
rw = os.open("x.csv", os.O_RDWR)
t("overlapping, one fd", rw, rw, 4, 0, 0, 2)
t("overlapping, two fds", rw, os.open("x.csv", os.O_RDWR), 4, 0, 0, 2)
t("not overlapping, one fd", rw, rw, 3, 0, 0, 5)
t("no bytes", r, os.open("z", os.O_WRONLY), 0)
os.closerange(3, 64)     # payloadfs: the writes become visible at close
print(open("x.csv", "rb").read())
PY'
}

@test "copy_file_range from a view copies the view's bytes" {
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/a.csv" 20000 7
	cp "$TWIN/a.csv" "$MNT/a.csv"
	# (not cp: a view's st_ino is its node's, which a second lookup may
	# change, and cp then refuses the source as "replaced while copied")
	python3 - "$MNT" <<'PY'
import os, sys
m = sys.argv[1]
for src, dst in (("a.csv@rows=100:15000", "v.csv"), ("a.csv@part=1/3", "p.csv"), ("a.csv@meta", "m.json")):
    fi = os.open(os.path.join(m, src), os.O_RDONLY)
    fo = os.open(os.path.join(m, dst), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    while os.copy_file_range(fi, fo, 1 << 30):
        pass
    os.close(fi)
    os.close(fo)
PY
	slice_lines "$TWIN/a.csv" 100 15000 >"$TWIN/v.csv"
	same_file "$MNT/v.csv" "$TWIN/v.csv"
	cmp "$MNT/p.csv" "$MNT/a.csv@part=1/3"
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["rows"] == 20000' "$MNT/m.json"
}

@test "a snapshot reads exactly as the tree was after every live change; views, xattrs and links in it" {
	mount_pfs fragment_size=65536
	mkdir -p "$MNT/ds/sub" "$MNT/logs"
	gen_csv "$MNT/ds/a.csv" 30000 8
	gen_lines "$MNT/ds/sub/b.log" 20000 9
	gen_bin "$MNT/logs/blob.bin" 300000 10
	printf 'small\n' >"$MNT/ds/tiny.txt"
	ln -s a.csv "$MNT/ds/link"
	ln "$MNT/ds/a.csv" "$MNT/logs/a-hard.csv"
	setfattr -n user.note -v "stage 3" "$MNT/ds/a.csv"
	local want rows meta
	want=$(manifest "$MNT")
	rows=$(cat "$MNT/ds/a.csv@rows=10:20" | md5sum)
	meta=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["id"], d["version"], d["rows"])' "$MNT/ds/a.csv@meta")
	run ls "$MNT/.snapshots"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	mkdir "$MNT/.snapshots/before"
	run ls "$MNT/.snapshots"
	[ "$output" = before ]
	run ls -a "$MNT"
	[[ $output != *.snapshots* ]]
	[ "$(manifest "$MNT/.snapshots/before")" = "$want" ]
	# change and delete everything live
	gen_csv "$MNT/ds/a.csv" 5000 11
	printf 'x\n' >>"$MNT/ds/sub/b.log"
	rm -r "$MNT/logs" "$MNT/ds/sub"
	mv "$MNT/ds/tiny.txt" "$MNT/moved.txt"
	setfattr -n user.note -v changed "$MNT/ds/a.csv"
	rm "$MNT/ds/link"
	flush
	[ "$(manifest "$MNT/.snapshots/before")" = "$want" ]
	[ "$(cat "$MNT/.snapshots/before/ds/a.csv@rows=10:20" | md5sum)" = "$rows" ]
	[ "$( (sed 1d "$MNT/.snapshots/before/ds/a.csv@part=0/2"; sed 1d "$MNT/.snapshots/before/ds/a.csv@part=1/2") | md5sum)" = \
	  "$(sed 1d "$MNT/.snapshots/before/ds/a.csv" | md5sum)" ]
	[ "$(wc -l <"$MNT/.snapshots/before/ds/a.csv@part=0/2")" -eq 15001 ]
	[ "$(xget "$MNT/.snapshots/before/ds/a.csv" user.note)" = "stage 3" ]
	[ "$(xget "$MNT/.snapshots/before/ds/a.csv" user.payload.rows)" = 30000 ]
	[ "$(readlink "$MNT/.snapshots/before/ds/link")" = a.csv ]
	[ "$(stat -c %i "$MNT/.snapshots/before/ds/a.csv")" = "$(stat -c %i "$MNT/.snapshots/before/logs/a-hard.csv")" ]
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
id0, v0, r0 = sys.argv[2].split()
assert d["rows"] == int(r0) and d["version"] == int(v0) and d["id"] != int(id0), d' \
		"$MNT/.snapshots/before/ds/a.csv@meta" "$meta"
	# a copy out of the snapshot restores the old bytes, sharing its fragments
	local before
	before=$(images)
	cp "$MNT/.snapshots/before/ds/a.csv" "$MNT/restored.csv"
	[ "$(images)" -eq "$before" ]
	cmp "$MNT/restored.csv" "$MNT/.snapshots/before/ds/a.csv"
}

@test "every write in a snapshot is EROFS; .snapshots names and entries" {
	mount_pfs
	mkdir -p "$MNT/d/e"
	printf 'a,b\n1,2\n' >"$MNT/d/x.csv"
	ln -s x.csv "$MNT/d/l"
	mkdir "$MNT/.snapshots/s"
	local S=$MNT/.snapshots/s/d
	expect_errno EROFS write "$S/x.csv" data
	expect_errno EROFS write "$S/new" data
	expect_errno EROFS write "$S/x.csv@rows=0:1" 'a,b
'
	expect_errno_each EROFS open-w "$S/x.csv" "$S/x.csv@rows=0:1"
	expect_errno_each EROFS open-rw "$S/x.csv"
	expect_errno EROFS append "$S/x.csv" more
	expect_errno_each EROFS create "$S/n2"
	expect_errno EROFS truncate "$S/x.csv" 0
	expect_errno_each EROFS mkdir "$S/nd"
	expect_errno_each EROFS rmdir "$S/e"
	expect_errno_each EROFS unlink "$S/x.csv" "$S/l"
	expect_errno EROFS rename "$S/x.csv" "$S/y.csv"
	expect_errno EROFS rename "$S/x.csv" "$MNT/d/y.csv"
	expect_errno EROFS rename "$MNT/d/x.csv" "$S/y.csv"
	expect_errno EROFS link "$S/x.csv" "$MNT/d/hard"
	expect_errno EROFS link "$MNT/d/x.csv" "$S/hard"
	expect_errno EROFS symlink x "$S/sl"
	expect_errno EROFS setxattr "$S/x.csv" user.k v
	expect_errno EROFS setxattr "$S/x.csv" user.payload.format fixed:2
	expect_errno EROFS removexattr "$S/x.csv" user.payload.header
	run chmod 600 "$S/x.csv"
	[ "$status" -ne 0 ]
	[[ $output == *Read-only* ]]
	run touch "$S/x.csv"
	[ "$status" -ne 0 ]
	[[ $output == *Read-only* ]]
	run mknod "$S/fifo" p
	[ "$status" -ne 0 ]
	[[ $output == *Read-only* ]]
	expect_errno EROFS truncate "$MNT/.snapshots/s/d/x.csv@rows=0:1" 0
	expect_errno OK read "$S/x.csv"
	[ "$(cat "$S/x.csv")" = "$(printf 'a,b\n1,2')" ]
	# names in .snapshots
	expect_errno EEXIST mkdir "$MNT/.snapshots/s"
	expect_errno ENOENT rmdir "$MNT/.snapshots/nope"
	expect_errno EINVAL mkdir "$MNT/.snapshots/x@meta"
	expect_errno EPERM create "$MNT/.snapshots/file"
	expect_errno EPERM symlink x "$MNT/.snapshots/sl"
	expect_errno EPERM rename "$MNT/.snapshots/s" "$MNT/.snapshots/t"
	expect_errno EEXIST mkdir "$MNT/.snapshots"
	expect_errno EBUSY rename "$MNT/d" "$MNT/.snapshots"
	expect_errno EBUSY rmdir "$MNT/.snapshots"
	run ls -a "$MNT"
	[[ $output != *.snapshots* ]]
	[ "$(stat -c %U:%a "$MNT/.snapshots")" = "$(stat -c %U "$MNT"):755" ]
}

@test "rmdir of a snapshot frees the images nothing else lists (after the next index flush); snapshots survive a remount; fsck is clean" {
	mount_pfs fragment_size=65536
	mkdir "$MNT/ds"
	gen_csv "$MNT/ds/a.csv" 40000 12
	gen_csv "$MNT/ds/keep.csv" 20000 13
	flush
	local base both after
	base=$(images)
	mkdir "$MNT/.snapshots/one" "$MNT/.snapshots/two"
	[ "$(images)" -eq "$base" ]
	rm "$MNT/ds/a.csv"
	gen_csv "$MNT/ds/new.csv" 10000 14
	flush
	both=$(images)
	[ "$both" -gt "$base" ]            # a.csv's images are kept by the snapshots
	local sum
	sum=$(manifest "$MNT/.snapshots/one")
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *clean* ]]
	mount_pfs
	[ "$(ls "$MNT/.snapshots" | tr '\n' ' ')" = "one two " ]
	[ "$(manifest "$MNT/.snapshots/one")" = "$sum" ]
	rmdir "$MNT/.snapshots/one"
	flush
	[ "$(images)" -eq "$both" ]         # two still lists them
	rmdir "$MNT/.snapshots/two"
	flush
	after=$(images)
	[ "$after" -lt "$both" ]
	[ "$(ls "$MNT/.snapshots" | wc -l)" -eq 0 ]
	expect_errno ENOENT stat "$MNT/.snapshots/one"
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *clean* ]]
	run "$PCTL" fsck --repair "$STORE"
	[ "$status" -eq 0 ]
}

@test "fsck counts snapshot references and its repair keeps snapshot-only images" {
	mount_pfs fragment_size=65536
	gen_csv "$MNT/a.csv" 20000 15
	mkdir "$MNT/.snapshots/s"
	rm "$MNT/a.csv"
	local sum
	sum=$(md5sum <"$MNT/.snapshots/s/a.csv")
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *clean* ]]
	run "$PCTL" fsck --repair "$STORE"
	show_output
	[ "$status" -eq 0 ]
	mount_pfs
	[ "$(md5sum <"$MNT/.snapshots/s/a.csv")" = "$sum" ]
	run "$PCTL" ls "$STORE" /.snapshots/s
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *a.csv* ]]
}

@test "an index that starts with a 1 MiB map grows past it: 1500 small objects, a snapshot, a remount" {
	PAYLOADFS_INDEX_MAP=1048576 mount_pfs
	local i
	for ((i = 0; i < 1500; i++)); do
		printf '%04d,%01000d\n' "$i" "$i" >"$MNT/o$i.csv"
	done
	mkdir "$MNT/.snapshots/s"
	[ "$(ls "$MNT/.snapshots/s" | wc -l)" -eq 1500 ]
	[ "$(cat "$MNT/.snapshots/s/o1499.csv")" = "$(printf '%04d,%01000d' 1499 1499)" ]
	grep -q "index: map grown from" "$LOG"
	unmount_pfs
	PAYLOADFS_INDEX_MAP=1048576 mount_pfs
	[ "$(ls "$MNT" | wc -l)" -eq 1500 ]
	[ "$(cat "$MNT/o7.csv")" = "$(printf '%04d,%01000d' 7 7)" ]
	mkdir "$MNT/.snapshots/t"
	[ "$(ls "$MNT/.snapshots/t" | wc -l)" -eq 1500 ]
}
