#!/usr/bin/env bats
# xattrs.bats — user.payload.* settings and figures, arbitrary user.*
# attributes, inheritance from directories, and the errors for bad values.

load helpers

setup() {
	pfs_init
	mount_pfs
}
teardown() { pfs_teardown; }

@test "format defaults to lines; fixed:N can be set and read back" {
	seq 1 10 >"$MNT/a.txt"
	[ "$(xget "$MNT/a.txt" user.payload.format)" = lines ]
	printf '%032d' 0 >"$MNT/r.bin"
	setfattr -n user.payload.format -v fixed:16 "$MNT/r.bin"
	[ "$(xget "$MNT/r.bin" user.payload.format)" = fixed:16 ]
	[ "$(xget "$MNT/r.bin" user.payload.rows)" = 2 ]
	setfattr -n user.payload.format -v lines "$MNT/r.bin"
	[ "$(xget "$MNT/r.bin" user.payload.format)" = lines ]
	[ "$(xget "$MNT/r.bin" user.payload.rows)" = 1 ]
}

@test "header defaults to 1 for .csv and .tsv, 0 otherwise" {
	for f in a.csv b.tsv c.txt d.jsonl e f.csv.gz; do
		printf 'h\n1\n2\n' >"$MNT/$f"
	done
	[ "$(xget "$MNT/a.csv" user.payload.header)" = 1 ]
	[ "$(xget "$MNT/b.tsv" user.payload.header)" = 1 ]
	[ "$(xget "$MNT/c.txt" user.payload.header)" = 0 ]
	[ "$(xget "$MNT/d.jsonl" user.payload.header)" = 0 ]
	[ "$(xget "$MNT/e" user.payload.header)" = 0 ]
	[ "$(xget "$MNT/f.csv.gz" user.payload.header)" = 0 ]
	# rows counts data rows only
	[ "$(xget "$MNT/a.csv" user.payload.rows)" = 2 ]
	[ "$(xget "$MNT/c.txt" user.payload.rows)" = 3 ]
}

@test "setting header changes what views prepend and what rows counts" {
	gen_csv "$TWIN/d.csv" 100
	cp "$TWIN/d.csv" "$MNT/d.csv"
	setfattr -n user.payload.header -v 2 "$MNT/d.csv"
	[ "$(xget "$MNT/d.csv" user.payload.header)" = 2 ]
	[ "$(xget "$MNT/d.csv" user.payload.rows)" = 99 ]
	cmp "$MNT/d.csv@rows=0:3" <(slice_lines "$TWIN/d.csv" 0 3 2)
	setfattr -n user.payload.header -v 0 "$MNT/d.csv"
	[ "$(xget "$MNT/d.csv" user.payload.rows)" = 101 ]
	cmp "$MNT/d.csv@rows=0:3" <(sed -n 1,3p "$TWIN/d.csv")
	cmp "$MNT/d.csv@rows=-2:" <(tail -n 2 "$TWIN/d.csv")
	# the object's bytes never change
	same_file "$MNT/d.csv" "$TWIN/d.csv"
}

@test "rows, version, fragments and id are read-only figures: EPERM" {
	gen_csv "$MNT/d.csv" 500
	ino=$(stat -c %i "$MNT/d.csv")
	[ "$(xget "$MNT/d.csv" user.payload.id)" = "$ino" ]
	[ "$(xget "$MNT/d.csv" user.payload.rows)" = 500 ]
	[[ $(xget "$MNT/d.csv" user.payload.version) =~ ^[1-9][0-9]*$ ]]
	[[ $(xget "$MNT/d.csv" user.payload.fragments) =~ ^[0-9]+$ ]]
	for x in rows version fragments id; do
		before=$(xget "$MNT/d.csv" user.payload.$x)
		expect_errno EPERM setxattr "$MNT/d.csv" user.payload.$x 7
		expect_errno EPERM removexattr "$MNT/d.csv" user.payload.$x
		[ "$(xget "$MNT/d.csv" user.payload.$x)" = "$before" ]
	done
	run setfattr -n user.payload.rows -v 1 "$MNT/d.csv"
	[ "$status" -ne 0 ]
}

@test "arbitrary user.* attributes are stored, listed and removed" {
	echo x >"$MNT/f"
	echo x >"$TWIN/f"
	for d in "$MNT" "$TWIN"; do
		setfattr -n user.color -v blue "$d/f"
		setfattr -n user.owner.team -v "data platform" "$d/f"
		setfattr -n user.empty "$d/f"
		setfattr -n user.bin -v 0x00ff00 "$d/f"
	done
	[ "$(xget "$MNT/f" user.color)" = blue ]
	[ "$(xget "$MNT/f" user.owner.team)" = "data platform" ]
	cmp <(getfattr -n user.bin --only-values "$MNT/f") <(getfattr -n user.bin --only-values "$TWIN/f")
	in_both 'getfattr -d -m "^user\.(color|owner|empty|bin)" f | sort'
	run getfattr -d -m - "$MNT/f"
	[[ $output == *user.color=* ]]
	[[ $output == *user.payload.format=* ]]
	[[ $output == *user.payload.rows=* ]]
	for d in "$MNT" "$TWIN"; do
		setfattr -n user.color -v red "$d/f"
		setfattr -x user.color "$d/f"
	done
	expect_errno ENODATA getxattr "$MNT/f" user.color
	expect_errno ENODATA removexattr "$MNT/f" user.color
	expect_errno ENODATA getxattr "$MNT/f" user.never
	in_both 'getfattr -d -m "^user\.(color|owner|empty|bin)" f | sort'
	# XATTR_CREATE / XATTR_REPLACE
	expect_errno EEXIST setxattr "$MNT/f" user.owner.team x create
	expect_errno ENODATA setxattr "$MNT/f" user.none x replace
	expect_errno OK setxattr "$MNT/f" user.none x create
	expect_errno OK setxattr "$MNT/f" user.none y replace
	[ "$(xget "$MNT/f" user.none)" = y ]
	# directories carry them too
	mkdir "$MNT/d"
	setfattr -n user.tag -v dir "$MNT/d"
	[ "$(xget "$MNT/d" user.tag)" = dir ]
}

@test "getfattr -d -m user.payload shows the payload settings and figures" {
	gen_csv "$MNT/d.csv" 10
	run getfattr -d -m user.payload "$MNT/d.csv"
	[ "$status" -eq 0 ]
	for x in format header rows version fragments id; do
		[[ $output == *"user.payload.$x="* ]]
	done
}

@test "payload settings are inherited from the directory" {
	mkdir "$MNT/recs" "$MNT/logs"
	setfattr -n user.payload.format -v fixed:8 "$MNT/recs"
	setfattr -n user.payload.header -v 2 "$MNT/logs"
	[ "$(xget "$MNT/recs" user.payload.format)" = fixed:8 ]
	printf '%064d' 0 >"$MNT/recs/a.bin"
	[ "$(xget "$MNT/recs/a.bin" user.payload.format)" = fixed:8 ]
	[ "$(xget "$MNT/recs/a.bin" user.payload.rows)" = 8 ]
	printf 'h1\nh2\nx\ny\n' >"$MNT/logs/app.log"
	[ "$(xget "$MNT/logs/app.log" user.payload.header)" = 2 ]
	[ "$(xget "$MNT/logs/app.log" user.payload.rows)" = 2 ]
	[ "$(cat "$MNT/logs/app.log@rows=1:")" = "$(printf 'h1\nh2\ny')" ]
	# objects made before the setting keep their own
	echo plain >"$MNT/plain.bin"
	mv "$MNT/plain.bin" "$MNT/recs/"
	[ "$(xget "$MNT/recs/plain.bin" user.payload.format)" = lines ]
	# changing the directory later does not touch existing objects
	setfattr -n user.payload.format -v fixed:4 "$MNT/recs"
	[ "$(xget "$MNT/recs/a.bin" user.payload.format)" = fixed:8 ]
}

@test "bad values are EINVAL and change nothing" {
	printf '%032d' 0 >"$MNT/r.bin"
	gen_csv "$MNT/d.csv" 10
	for v in bogus fixed: fixed:0 fixed:abc fixed:-4 fixed:1x ''; do
		expect_errno EINVAL setxattr "$MNT/r.bin" user.payload.format "$v"
	done
	[ "$(xget "$MNT/r.bin" user.payload.format)" = lines ]
	for v in -1 abc 1.5 '' 99999999999999999999999; do
		expect_errno EINVAL setxattr "$MNT/d.csv" user.payload.header "$v"
	done
	[ "$(xget "$MNT/d.csv" user.payload.header)" = 1 ]
	[ "$(xget "$MNT/d.csv" user.payload.rows)" = 10 ]
	expect_errno EINVAL setxattr "$MNT/d.csv" user.payload.storage floppy
	mkdir "$MNT/dir"
	before=$(fsop getxattr "$MNT/dir" user.payload.format)
	expect_errno EINVAL setxattr "$MNT/dir" user.payload.format bogus
	expect_errno EINVAL setxattr "$MNT/dir" user.payload.header -1
	[ "$(fsop getxattr "$MNT/dir" user.payload.format)" = "$before" ]
	daemon_alive
}

@test "a fixed:N object whose size is not a multiple of N fails the close with EINVAL" {
	printf '%032d' 0 >"$MNT/r.bin"
	setfattr -n user.payload.format -v fixed:16 "$MNT/r.bin"
	cp "$MNT/r.bin" "$TMP/before"
	v=$(xget "$MNT/r.bin" user.payload.version)
	expect_errno close:EINVAL write "$MNT/r.bin" "$(printf '%033d' 1)"
	expect_errno close:EINVAL append "$MNT/r.bin" "12345"
	same_file "$MNT/r.bin" "$TMP/before"
	[ "$(xget "$MNT/r.bin" user.payload.version)" = "$v" ]
	[ "$(xget "$MNT/r.bin" user.payload.rows)" = 2 ]
	# the daemon keeps serving and a valid size commits
	expect_errno OK write "$MNT/r.bin" "$(printf '%048d' 2)"
	[ "$(xget "$MNT/r.bin" user.payload.rows)" = 3 ]
	[ "$(stat -c %s "$MNT/r.bin")" = 48 ]
	[ "$(cat "$MNT/r.bin@rows=1:2")" = "$(printf '%016d' 0)" ]
	# a directory's fixed:N applies to a new object's first close
	mkdir "$MNT/recs"
	setfattr -n user.payload.format -v fixed:8 "$MNT/recs"
	expect_errno close:EINVAL write "$MNT/recs/n.bin" "123"
}

@test "fixed:N views index records" {
	gen_bin "$TMP/recs" 1600 4
	cp "$TMP/recs" "$MNT/recs.bin"
	setfattr -n user.payload.format -v fixed:16 "$MNT/recs.bin"
	[ "$(xget "$MNT/recs.bin" user.payload.rows)" = 100 ]
	cmp "$MNT/recs.bin@rows=10:20" <(dd if="$TMP/recs" bs=16 skip=10 count=10 status=none)
	cmp "$MNT/recs.bin@rows=-1:" <(tail -c 16 "$TMP/recs")
	cmp "$MNT/recs.bin@part=1/4" <(dd if="$TMP/recs" bs=16 skip=25 count=25 status=none)
}

@test "storage=memory objects are served from RAM and gone after a remount" {
	mkdir "$MNT/scratch"
	setfattr -n user.payload.storage -v memory "$MNT/scratch"
	gen_csv "$TWIN/m.csv" 20000
	cp "$TWIN/m.csv" "$MNT/scratch/m.csv"
	[ "$(xget "$MNT/scratch/m.csv" user.payload.storage)" = memory ]
	same_file "$MNT/scratch/m.csv" "$TWIN/m.csv"
	cmp "$MNT/scratch/m.csv@rows=100:200" <(slice_lines "$TWIN/m.csv" 100 200)
	echo 'more,row' >>"$MNT/scratch/m.csv"
	echo 'more,row' >>"$TWIN/m.csv"
	same_file "$MNT/scratch/m.csv" "$TWIN/m.csv"
	# nothing of it reached the store's fragment files
	[ "$(store_images | wc -l)" = 0 ]
	unmount_pfs
	mount_pfs
	size=$(stat -c %s "$MNT/scratch/m.csv" 2>/dev/null || echo 0)
	[ "$size" = 0 ]
}
