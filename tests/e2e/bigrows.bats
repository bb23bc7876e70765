#!/usr/bin/env bats
# bigrows.bats — any byte sequence commits (issue 11 item 2): rows and
# records longer than a fragment span several fragments (FRAG_F_CONT,
# docs/format.md), so zero-filled and newline-free objects of several GiB,
# `truncate -s 1G` and pjdfstest open/25.t's pwrite at 2 GiB commit and
# read back like ext4 (or /dev/zero) has them, views over and around a
# giant row read like `sed -n` of the ext4 copy, writes through them land
# like the same edit on the copy, and fsck finds such stores clean. The
# daemon's peak resident size while 2 GB stream in stays small: no row is
# ever held whole.

load helpers

setup() {
	pfs_init
}
teardown() { pfs_teardown; }

# vm_hwm — the daemon's peak resident set, in KiB.
vm_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status"; }

# remount — unmount and mount again, so that reads come from the store.
remount() {
	unmount_pfs
	mount_pfs "$@"
}

# pattern N [FROM] — N bytes of a repeating newline-free pattern (a 1 MiB
# block of letters), starting FROM bytes into it; on stdout.
pattern() {
	python3 -c 'import sys
n, at = int(sys.argv[1]), int(sys.argv[2])
blk = bytes(97 + (i * 7 + i // 4099) % 26 for i in range(1 << 20))
out = sys.stdout.buffer
while n > 0:
    o = at % len(blk)
    k = min(n, len(blk) - o)
    out.write(blk[o:o + k])
    n -= k
    at += k' "$1" "${2:-0}"
}

# bytes_at FILE OFF LEN — LEN bytes of FILE from OFF, on stdout.
bytes_at() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.stdout.buffer.write(os.pread(fd, int(sys.argv[3]), int(sys.argv[2])))' "$@"
}

# meta_rows PATH — the rows figure of PATH@meta.
meta_rows() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["rows"])' "$1@meta"
}

# view_is FILE A B — $MNT/FILE@rows=A:B equals slice_lines of the twin, and
# its st_size is its length.
view_is() {
	slice_lines "$TWIN/$1" "$2" "$3" >"$TMP/want"
	cat "$MNT/$1@rows=$2:$3" >"$TMP/got"
	same_file "$TMP/got" "$TMP/want"
	[ "$(stat -c %s "$MNT/$1@rows=$2:$3")" = "$(stat -c %s "$TMP/want")" ] || {
		echo "# st_size of $1@rows=$2:$3 is wrong" >&2
		return 1
	}
}

# replace_rows FILE A B NEWFILE — the oracle for a write to @rows=A:B of a
# CSV (one header row): the header becomes NEWFILE's first line, data rows
# A:B the rest of NEWFILE.
replace_rows() {
	python3 - "$@" <<'EOF'
import sys
path, a, b, new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = open(path, "rb").read().splitlines(keepends=True)
ins = open(new, "rb").read().splitlines(keepends=True)
data = lines[1:]
data[a:b] = ins[1:]
open(path, "wb").write(b"".join(ins[:1] + data))
EOF
}

@test "dd of 2 GB of zeros commits and reads back; the daemon stays small" {
	local h0 h1
	mount_pfs
	h0=$(vm_hwm)
	dd if=/dev/zero of="$MNT/disk.img" bs=1M count=2048 status=none
	h1=$(vm_hwm)
	echo "# daemon VmHWM ${h0} KiB -> ${h1} KiB while 2 GB of zeros were written" >&3
	[ $((h1 - h0)) -lt $((128 * 1024)) ]
	[ "$(stat -c %s "$MNT/disk.img")" = 2147483648 ]
	remount
	[ "$(stat -c %s "$MNT/disk.img")" = 2147483648 ]
	[ "$(xget "$MNT/disk.img" user.payload.rows)" = 1 ]
	[ "$(xget "$MNT/disk.img" user.payload.fragments)" = 2048 ]
	cmp "$MNT/disk.img" <(head -c 2147483648 /dev/zero)
	daemon_alive
}

@test "truncate -s 1G commits and reads back as ext4's" {
	mount_pfs
	truncate -s 1G "$MNT/x"
	truncate -s 1G "$TWIN/x"
	[ "$(stat -c %s "$MNT/x")" = 1073741824 ]
	remount
	same_file "$MNT/x" "$TWIN/x"
	[ "$(xget "$MNT/x" user.payload.rows)" = 1 ]
	[ "$(meta_rows "$MNT/x")" = 1 ]
	daemon_alive
}

@test "pjdfstest open/25.t: a 1-byte pwrite at 2 GiB is kept" {
	mount_pfs
	run fsop pwriteat "$MNT/p" 2147483648 x
	[ "$output" = "OK 2147483649 x" ]
	run fsop pwriteat "$TWIN/p" 2147483648 x
	[ "$output" = "OK 2147483649 x" ]
	remount
	[ "$(stat -c %s "$MNT/p")" = 2147483649 ]
	cmp <(bytes_at "$MNT/p" $((2147483649 - 3 * 1048576)) $((3 * 1048576))) \
		<(bytes_at "$TWIN/p" $((2147483649 - 3 * 1048576)) $((3 * 1048576)))
	cmp <(bytes_at "$MNT/p" 1000000000 1048576) <(head -c 1048576 /dev/zero)
	[ "$(xget "$MNT/p" user.payload.rows)" = 1 ]
	daemon_alive
}

@test "a newline-free object past 4 GiB: an append continues its row; reads and views at high offsets" {
	local size=$(((4 << 30) + (256 << 20))) frags
	mount_pfs
	truncate -s 4G "$MNT/big.bin"
	pattern $((256 << 20)) | dd of="$MNT/big.bin" bs=1M iflag=fullblock oflag=append conv=notrunc status=none
	[ "$(stat -c %s "$MNT/big.bin")" = $size ]
	remount
	[ "$(stat -c %s "$MNT/big.bin")" = $size ]
	[ "$(xget "$MNT/big.bin" user.payload.rows)" = 1 ]
	[ "$(meta_rows "$MNT/big.bin")" = 1 ]
	frags=$(xget "$MNT/big.bin" user.payload.fragments)
	echo "# $frags fragments" >&3
	[ "$frags" -ge 4352 ]
	[ "$frags" -le 4353 ]
	# the appended bytes, all of them, and across the 4 GiB seam
	cmp <(bytes_at "$MNT/big.bin" $((4 << 30)) $((256 << 20))) <(pattern $((256 << 20)))
	cmp <(bytes_at "$MNT/big.bin" $(((4 << 30) - 524288)) 1048576) \
		<(head -c 524288 /dev/zero; pattern 524288)
	cmp <(bytes_at "$MNT/big.bin" $((3 << 30)) 1048576) <(head -c 1048576 /dev/zero)
	# the one row as a view: its size, and its bytes at high offsets
	[ "$(stat -c %s "$MNT/big.bin@rows=0:1")" = $size ]
	[ "$(stat -c %s "$MNT/big.bin@rows=1:")" = 0 ]
	cmp <(bytes_at "$MNT/big.bin@rows=0:" $(((4 << 30) + (100 << 20))) 1048576) <(pattern 1048576 $((100 << 20)))
	cmp <(bytes_at "$MNT/big.bin@part=0/1" $((size - 1048576)) 1048576) \
		<(pattern 1048576 $(((256 << 20) - 1048576)))
	daemon_alive
}

@test "views over and around giant rows read like sed -n of the ext4 copy; writes through them land" {
	local at
	mount_pfs
	python3 -c 'import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"id,text\n0,a\n1,b\n2,c\n")
    f.write(b"3," + b"x" * (12 << 20) + b"\n")
    f.write(b"4,d\n5,e\n")
    f.write(b"6," + b"y" * (5 << 20) + b"\n")
    f.write(b"7,f\n")' "$TWIN/g.csv"
	cp "$TWIN/g.csv" "$MNT/g.csv"
	same_file "$MNT/g.csv" "$TWIN/g.csv"
	[ "$(xget "$MNT/g.csv" user.payload.rows)" = 8 ]
	# the long rows (17 MiB) span 1 MiB fragments: 17 of them at least
	[ "$(xget "$MNT/g.csv" user.payload.fragments)" -ge 17 ]
	view_is g.csv 0 3
	view_is g.csv 3 4
	view_is g.csv 2 5
	view_is g.csv 3 7
	view_is g.csv 4 6
	view_is g.csv 6 7
	view_is g.csv -2 ""
	view_is g.csv "" ""
	cmp <(cat "$MNT/g.csv@part=1/4") <(slice_lines "$TWIN/g.csv" 2 4)
	cmp <(cat "$MNT/g.csv@part=3/4") <(slice_lines "$TWIN/g.csv" 6 8)
	# the 12 MiB row replaced by two short rows, through a view
	printf 'id,text\n3,short\n3b,short\n' >"$TMP/new"
	cp "$TMP/new" "$MNT/g.csv@rows=3:4"
	replace_rows "$TWIN/g.csv" 3 4 "$TMP/new"
	same_file "$MNT/g.csv" "$TWIN/g.csv"
	# and a short row replaced by a 7 MiB one
	python3 -c 'import sys; open(sys.argv[1], "wb").write(b"id,text\n0," + b"z" * (7 << 20) + b"\n")' "$TMP/new"
	cp "$TMP/new" "$MNT/g.csv@rows=0:1"
	replace_rows "$TWIN/g.csv" 0 1 "$TMP/new"
	same_file "$MNT/g.csv" "$TWIN/g.csv"
	[ "$(xget "$MNT/g.csv" user.payload.rows)" = 9 ]
	view_is g.csv 0 1
	view_is g.csv 6 8
	# 5 bytes inside the 5 MiB row, on both sides
	at=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().index(b"6,y") + (3 << 20))' "$TWIN/g.csv")
	printf 'PATCH' | dd of="$MNT/g.csv" bs=1 seek="$at" conv=notrunc status=none
	printf 'PATCH' | dd of="$TWIN/g.csv" bs=1 seek="$at" conv=notrunc status=none
	same_file "$MNT/g.csv" "$TWIN/g.csv"
	view_is g.csv 5 7
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *": clean"* ]]
}

@test "fixed:N records longer than a fragment: rows, views, a change inside a record" {
	mount_pfs fragment_size=64K
	mkdir "$MNT/d" "$TWIN/d"
	setfattr -n user.payload.format -v fixed:100000 "$MNT/d"
	python3 -c 'import sys
with open(sys.argv[1], "wb") as f:
    for i in range(40):
        f.write(bytes((i * 31 + k) % 251 for k in range(256)) * 390 + bytes([i]) * 160)' "$TWIN/d/r.bin"
	[ "$(stat -c %s "$TWIN/d/r.bin")" = 4000000 ]
	cp "$TWIN/d/r.bin" "$MNT/d/r.bin"
	same_file "$MNT/d/r.bin" "$TWIN/d/r.bin"
	[ "$(xget "$MNT/d/r.bin" user.payload.rows)" = 40 ]
	[ "$(xget "$MNT/d/r.bin" user.payload.fragments)" = 80 ]
	cmp <(cat "$MNT/d/r.bin@rows=10:12") <(bytes_at "$TWIN/d/r.bin" 1000000 200000)
	cmp <(cat "$MNT/d/r.bin@part=3/8") <(bytes_at "$TWIN/d/r.bin" 1500000 500000)
	printf 'changed' | dd of="$MNT/d/r.bin" bs=1 seek=2070000 conv=notrunc status=none
	printf 'changed' | dd of="$TWIN/d/r.bin" bs=1 seek=2070000 conv=notrunc status=none
	same_file "$MNT/d/r.bin" "$TWIN/d/r.bin"
	cmp <(cat "$MNT/d/r.bin@rows=20:21") <(bytes_at "$TWIN/d/r.bin" 2000000 100000)
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *": clean"* ]]
}
