#!/usr/bin/env bats
# repair.bats — damaged fragment images on a real mount, and `payloadctl
# fsck --repair`. For a flipped byte, a truncated, a zero-filled, a deleted
# and a swapped image: reading the object (or a view of it) through the
# mount fails with EIO after only correct bytes (never wrong bytes), the
# daemon logs a line naming the object and the fragment and keeps serving
# everything else; --repair refuses while the store is mounted; unmounted,
# fsck names the object and fragment (exit 1), --repair exits 1 and a new
# fsck is clean; mounted again, every healthy object is byte-identical to
# the sha256 taken before the damage, and the damaged one is
# /lost+found/ID-NAME holding exactly its fragments that verified, with
# user.fsck.path and user.fsck.lost. Index damage (reference counts, a
# dangling entry, nlink) is repaired in place.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

# populate — with 64 KiB fragments: d.csv (several fragments), e.csv,
# sub/n.txt (inline), rec.bin (fixed:16), a hard link sub/hard.csv to
# e.csv and a symlink link.csv; sha256 of every file in $TMP/sums (paths
# relative to the mount). Unmounts. D_INO / E_INO are the objects' ids.
populate() {
	mount_pfs fragment_size=65536
	mkdir "$MNT/sub"
	gen_csv "$TWIN/d.csv" 5000 1
	gen_csv "$TWIN/e.csv" 4000 2
	gen_bin "$TWIN/rec.bin" 80000 3
	cp "$TWIN/d.csv" "$MNT/d.csv"
	cp "$TWIN/e.csv" "$MNT/e.csv"
	seq 1 50 >"$MNT/sub/n.txt"
	touch "$MNT/rec.bin"
	setfattr -n user.payload.format -v fixed:16 "$MNT/rec.bin"
	cp "$TWIN/rec.bin" "$MNT/rec.bin"
	ln "$MNT/e.csv" "$MNT/sub/hard.csv"
	ln -s d.csv "$MNT/link.csv"
	D_INO=$(stat -c %i "$MNT/d.csv")
	E_INO=$(stat -c %i "$MNT/e.csv")
	(cd "$MNT" && find . -type f | sort | xargs sha256sum) >"$TMP/sums"
	unmount_pfs
}

# frag_row PATH K — fields of the K-th (0-based) fragment of PATH in
# `payloadctl stat -v`: "i off len first rows id stored codec".
frag_row() { "$PCTL" stat -v "$STORE" "$1" | sed -n '/^fragment list:/,$p' | tail -n +3 | sed -n "$(($2 + 1))p"; }

# damage KIND ID [OTHER] — flip | truncate | zero | delete | swap the image
# of fragment ID (with OTHER's). In RADOS mode the objects in the cluster
# are damaged, and this host's image cache (STORE/cache, filled when
# populate read every file) forgets them: the damage is met by a host
# without a good copy.
damage() {
	local f=$TMP/img.$2 g=$TMP/img.${3:-}
	[ "$1" = delete ] || image_get "$2" "$f"
	case $1 in
	flip) python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)' "$f" ;;
	truncate) truncate -s 100 "$f" ;;
	zero) python3 -c 'import os, sys; p = sys.argv[1]; n = os.path.getsize(p); open(p, "r+b").write(bytes(n))' "$f" ;;
	delete) image_rm "$2" ;;
	swap)
		image_get "$3" "$g"
		image_put "$3" "$f"
		f=$g
		;;
	esac
	if [ "$1" != delete ]; then
		rados_mode || image_rm "$2"      # a new file in place of the image
		image_put "$2" "$f"
	fi
	if rados_mode; then
		rm -f "$STORE/cache/${2:14:2}/$2" "$STORE/cache/${3:14:2}/${3:-x}"
	fi
}

# without_range SRC OFF LEN DST — SRC with bytes [OFF, OFF+LEN) cut out.
without_range() {
	python3 -c 'import sys
b = open(sys.argv[1], "rb").read(); o, n = int(sys.argv[2]), int(sys.argv[3])
open(sys.argv[4], "wb").write(b[:o] + b[o + n:])' "$@"
}

# healthy_same SKIP... — every file of $TMP/sums but those named has its
# sha256 on the mount.
healthy_same() {
	local pat='^$'
	for s in "$@"; do pat="$pat|^[0-9a-f]+  \\./$s\$"; done
	grep -Ev "$pat" "$TMP/sums" >"$TMP/sums.keep"
	[ "$(wc -l <"$TMP/sums.keep")" -eq $(($(wc -l <"$TMP/sums") - $#)) ]
	(cd "$MNT" && sha256sum --quiet -c "$TMP/sums.keep")
}

# corruption_case KIND — the whole story for one kind of damage to
# fragment 1 of d.csv (swap: exchanged with fragment 0 of e.csv).
corruption_case() {
	local kind=$1 i off len first rows id rest eoff elen eid said
	populate
	read -r i off len first rows id rest <<<"$(frag_row d.csv 1)"
	read -r i eoff elen first rows eid rest <<<"$(frag_row e.csv 0)"
	damage "$kind" "$id" "$eid"
	mount_pfs
	# EIO, after only correct bytes; twice (nothing bad was cached)
	run fsop readok "$MNT/d.csv" --compare "$TWIN/d.csv"
	echo "# $kind: read: $output" >&3
	[[ $output =~ ^EIO:[0-9]+$ ]]
	[ "${output#EIO:}" -le "$off" ]
	run fsop readok "$MNT/d.csv" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
	# a view over the damaged fragment (all rows: the same bytes) too
	run fsop readok "$MNT/d.csv@rows=:" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
	[ "${output#EIO:}" -le "$off" ]
	# the log names the object and the fragment
	grep -E "object $D_INO: .*fragment $id .*could not be read" "$LOG"
	# the daemon keeps serving the rest
	[ "$(cat "$MNT/sub/n.txt" | wc -l)" = 50 ]
	same_file "$MNT/rec.bin" "$TWIN/rec.bin"
	[ "$kind" = swap ] || same_file "$MNT/e.csv" "$TWIN/e.csv"
	echo still >"$MNT/new.txt"
	# --repair refuses a mounted store and changes nothing
	run --separate-stderr "$PCTL" fsck --repair "$STORE"
	[ "$status" -eq 2 ]
	[[ $stderr == *"is in use"*"unmount it first"* ]]
	rm "$MNT/new.txt"
	unmount_pfs
	# fsck names the object and the fragment
	run --separate-stderr "$PCTL" fsck "$STORE"
	echo "$output" | sed 's/^/# fsck: /' >&3
	[ "$status" -eq 1 ]
	said="/d.csv (id $D_INO): fragment $id (bytes $off..$((off + len))): "
	[[ $output == *"$said"* ]]
	# repair, then a clean check
	run --separate-stderr "$PCTL" fsck --repair "$STORE"
	echo "$output" | grep '^repair:' | sed 's/^/# /' >&3
	[ "$status" -eq 1 ]
	[[ $output == *"repair: /d.csv (id $D_INO): moved to /lost+found/$D_INO-d.csv"* ]]
	[[ ${lines[-1]} == "fsck: repaired ("*"); a new check is clean" ]]
	run "$PCTL" fsck "$STORE"
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} == *": clean" ]]
	run image_exists "$id"
	[ "$status" -ne 0 ]
	# mounted again: healthy objects are byte-identical; d.csv is in lost+found
	mount_pfs
	if [ "$kind" = swap ]; then
		healthy_same d.csv e.csv sub/hard.csv
		without_range "$TWIN/e.csv" "$eoff" "$elen" "$TMP/e.want"
		same_file "$MNT/lost+found/$E_INO-e.csv" "$TMP/e.want"
		[ ! -e "$MNT/sub/hard.csv" ]
	else
		healthy_same d.csv
	fi
	[ ! -e "$MNT/d.csv" ]
	[ "$(readlink "$MNT/link.csv")" = d.csv ]    # a symlink is a name, left alone
	without_range "$TWIN/d.csv" "$off" "$len" "$TMP/d.want"
	same_file "$MNT/lost+found/$D_INO-d.csv" "$TMP/d.want"
	[ "$(xget "$MNT/lost+found/$D_INO-d.csv" user.fsck.path)" = /d.csv ]
	[[ $(xget "$MNT/lost+found/$D_INO-d.csv" user.fsck.lost) == *"bytes $off..$((off + len)) (fragment $id)"* ]]
	[ "$(xget "$MNT/lost+found/$D_INO-d.csv" user.payload.rows)" = $(($(wc -l <"$TMP/d.want") - 1)) ]
	# and the repaired object is an ordinary object again
	echo "5000,x,y,1.00,z" >>"$MNT/lost+found/$D_INO-d.csv"
	tail -n 1 "$MNT/lost+found/$D_INO-d.csv" | grep -q '^5000,x,y'
	mv "$MNT/lost+found/$D_INO-d.csv" "$MNT/d-salvaged.csv"
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	[ "$status" -eq 0 ]
}

@test "a flipped byte in a fragment: EIO and a log line on read; fsck --repair salvages the rest" {
	corruption_case flip
}

@test "a truncated fragment image: EIO and a log line on read; fsck --repair salvages the rest" {
	corruption_case truncate
}

@test "a zero-filled fragment image: EIO and a log line on read; fsck --repair salvages the rest" {
	corruption_case zero
}

@test "a deleted fragment image: EIO and a log line on read; fsck --repair salvages the rest" {
	corruption_case delete
}

@test "two swapped fragment images: both objects EIO; fsck --repair salvages both" {
	corruption_case swap
}

@test "index damage (reference counts, a dangling entry, an uncounted name) is repaired in place" {
	need_mdb_tools
	populate
	local i off len first rows id rest
	read -r i off len first rows id rest <<<"$(frag_row d.csv 0)"
	mdb_put refs "$id" "$(u32le 3)"                                    # 1 record, count 3
	mdb_put refs "$(u64be $((0x7fff0000)))" "$(u32le 1)"               # a count, no record
	mdb_put dirents "$(u64be 1)$(hexstr ghost)" "$(u64le 999999)$(u32le $((0x8000)))"
	mdb_put dirents "$(u64be 1)$(hexstr dup)" "$(u64le "$D_INO")$(u32le $((0x8000)))"
	run "$PCTL" fsck "$STORE"
	echo "$output" | sed 's/^/# fsck: /' >&3
	[ "$status" -eq 1 ]
	run "$PCTL" fsck --repair "$STORE"
	echo "$output" | grep '^repair:' | sed 's/^/# /' >&3
	[ "$status" -eq 1 ]
	[[ $output == *"fragment $id: reference count set to 1 (was 3)"* ]]
	[[ $output == *"entry 'ghost' -> 999999 removed"* ]]
	[[ $output == *"/d.csv (id $D_INO): nlink set to 2 (was 1)"* ]]
	[[ $output != *lost+found* ]]
	run "$PCTL" fsck "$STORE"
	[ "$status" -eq 0 ]
	mount_pfs
	healthy_same
	same_file "$MNT/dup" "$TWIN/d.csv"
	[ "$(stat -c %h "$MNT/d.csv")" = 2 ]
	[ ! -e "$MNT/ghost" ]
	[ ! -e "$MNT/lost+found" ]
}

@test "fsck --repair of a healthy store changes nothing and exits 0" {
	populate
	local before
	before=$("$PCTL" ls "$STORE")
	run "$PCTL" fsck --repair "$STORE"
	[ "$status" -eq 0 ]
	[[ $output != *repair:* ]]
	[ "$("$PCTL" ls "$STORE")" = "$before" ]
	mount_pfs
	healthy_same
}
