#!/usr/bin/env bats
# tools.bats — payloadctl on a store with data (init, ls, stat, cat with
# views, fsck), damaged fragments seen through a mount (EIO, never wrong
# bytes, a log line naming object and fragment), and the error format.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

ERR_RE='^payloadctl: .+: .+'

# populate — mount with 64 KiB fragments, write d.csv (several fragments,
# the only object stored as fragment files), sub/n.txt and small.txt
# (inline), keep copies in $TWIN, and unmount.
populate() {
	mount_pfs fragment_size=65536
	mkdir "$MNT/sub" "$TWIN/sub"
	gen_csv "$TWIN/d.csv" 4000
	seq 1 50 >"$TWIN/sub/n.txt"
	echo small >"$TWIN/small.txt"
	cp "$TWIN/d.csv" "$MNT/d.csv"
	cp "$TWIN/sub/n.txt" "$MNT/sub/n.txt"
	cp "$TWIN/small.txt" "$MNT/small.txt"
	INO=$(stat -c %i "$MNT/d.csv")
	SIZE=$(stat -c %s "$MNT/d.csv")
	unmount_pfs
	[ "$(find "$STORE/fragments" -type f -name '*.frag' | wc -l)" -ge 2 ]
}

# corrupt_fragment — flip one byte in the middle of one fragment file of
# d.csv; sets FRAG to its path.
corrupt_fragment() {
	FRAG=$(find "$STORE/fragments" -type f -name '*.frag' | sort | head -n 1)
	python3 - "$FRAG" <<'EOF'
import os, sys
p = sys.argv[1]
n = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(n // 2 + 7)
    b = f.read(1)
    f.seek(n // 2 + 7)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}

# names_fragment — the daemon log has a line naming d.csv (by ID or name)
# and $FRAG's fragment (by its ID in hex or decimal, or its file name).
names_fragment() {
	local hex dec short
	hex=$(basename "$FRAG" .frag)
	dec=$((16#$hex))
	short=$(echo "$hex" | sed 's/^0*//')
	grep -E "(\<$INO\>|d\.csv)" "$LOG" | grep -Eqi "(\<$dec\>|\<$short\>|$hex)" || {
		echo "# no log line names object $INO and fragment $hex ($dec)" >&2
		return 1
	}
}

@test "payloadctl init makes a store that payloadfs mounts" {
	run "$PCTL" init "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[ -d "$STORE/index" ]
	[ -d "$STORE/fragments" ]
	mount_pfs
	echo hi >"$MNT/f"
	[ "$(cat "$MNT/f")" = hi ]
}

@test "payloadctl init refuses a foreign non-empty directory" {
	echo mine >"$STORE/notes.txt"
	run --separate-stderr "$PCTL" init "$STORE"
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	[ "$(ls -A "$STORE")" = notes.txt ]
}

@test "payloadctl ls lists a directory of the store" {
	populate
	run --separate-stderr "$PCTL" ls "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *d.csv* ]]
	[[ $output == *sub* ]]
	[[ $output == *small.txt* ]]
	[[ $output != *@* ]]
	run --separate-stderr "$PCTL" ls "$STORE" sub
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *n.txt* ]]
	[[ $output != *d.csv* ]]
	run --separate-stderr "$PCTL" ls "$STORE" /sub
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *n.txt* ]]
}

@test "payloadctl stat shows an object's id, size and rows" {
	populate
	run --separate-stderr "$PCTL" stat "$STORE" d.csv
	show_output
	[ "$status" -eq 0 ]
	[[ $output =~ (^|[^0-9])$INO([^0-9]|$) ]]
	[[ $output =~ (^|[^0-9])$SIZE([^0-9]|$) ]]
	[[ $output =~ (^|[^0-9])4000([^0-9]|$) ]]
}

@test "payloadctl cat prints objects and views" {
	populate
	"$PCTL" cat "$STORE" d.csv >"$TMP/got"
	same_file "$TMP/got" "$TWIN/d.csv"
	"$PCTL" cat "$STORE" sub/n.txt >"$TMP/got"
	same_file "$TMP/got" "$TWIN/sub/n.txt"
	"$PCTL" cat "$STORE" 'd.csv@rows=10:20' >"$TMP/got"
	cmp "$TMP/got" <(slice_lines "$TWIN/d.csv" 10 20)
	"$PCTL" cat "$STORE" 'd.csv@rows=-5:' >"$TMP/got"
	cmp "$TMP/got" <(slice_lines "$TWIN/d.csv" -5 "")
	"$PCTL" cat "$STORE" 'd.csv@part=3/8' >"$TMP/got"
	cmp "$TMP/got" <(slice_lines "$TWIN/d.csv" 1500 2000)
	"$PCTL" cat "$STORE" 'd.csv@meta' | python3 -m json.tool >/dev/null
	"$PCTL" cat "$STORE" 'sub/n.txt@rows=0:3' >"$TMP/got"
	printf '1\n2\n3\n' | cmp - "$TMP/got"
}

@test "payloadctl reads a store while it is mounted" {
	populate
	mount_pfs
	echo "new,row" >>"$MNT/d.csv"
	echo "new,row" >>"$TWIN/d.csv"
	"$PCTL" cat "$STORE" d.csv >"$TMP/got"
	same_file "$TMP/got" "$TWIN/d.csv"
	run "$PCTL" ls "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *d.csv* ]]
	# the mount is unharmed
	same_file "$MNT/d.csv" "$TWIN/d.csv"
}

@test "payloadctl fsck is clean on a healthy store" {
	populate
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	# and after more work: overwrite, view write, rm, rename, hard link
	mount_pfs fragment_size=65536
	gen_csv "$MNT/e.csv" 3000 4
	printf 'id,user,action,value,note\nx\n' >"$MNT/d.csv@rows=100:2000"
	ln "$MNT/e.csv" "$MNT/sub/e-link.csv"
	mv "$MNT/e.csv" "$MNT/f.csv"
	rm "$MNT/small.txt"
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
}

@test "a corrupted fragment reads as EIO, never wrong bytes, and is logged" {
	populate
	corrupt_fragment
	mount_pfs
	run fsop readok "$MNT/d.csv" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
	# again (a damaged fragment must not have been cached as good)
	run fsop readok "$MNT/d.csv" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
	run cat "$MNT/d.csv"
	[ "$status" -ne 0 ]
	run cat "$MNT/d.csv@rows=:"
	[ "$status" -ne 0 ]
	names_fragment
	# the daemon keeps serving everything else
	daemon_alive
	same_file "$MNT/sub/n.txt" "$TWIN/sub/n.txt"
	same_file "$MNT/small.txt" "$TWIN/small.txt"
}

@test "payloadctl fsck exits 1 naming the object with a damaged fragment" {
	populate
	corrupt_fragment
	run --separate-stderr "$PCTL" fsck "$STORE"
	show_output
	echo "$output $stderr" | sed 's/^/# /' >&3
	[ "$status" -eq 1 ]
	[[ "$output $stderr" =~ (d\.csv|(^|[^0-9])$INO([^0-9]|$)) ]]
	[[ "$output $stderr" != *n.txt* ]]
}

@test "payloadctl fsck exits 1 when a fragment file is missing" {
	populate
	rm "$(find "$STORE/fragments" -type f -name '*.frag' | sort | tail -n 1)"
	run --separate-stderr "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 1 ]
	[[ "$output $stderr" =~ (d\.csv|(^|[^0-9])$INO([^0-9]|$)) ]]
	mount_pfs
	run fsop readok "$MNT/d.csv" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
}

@test "payloadctl errors are 'payloadctl: what: why' with a non-zero exit" {
	populate
	run --separate-stderr "$PCTL" cat "$STORE" nope.csv
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	[[ $stderr == *nope.csv* ]]
	[ -z "$output" ]
	run --separate-stderr "$PCTL" cat "$STORE" 'd.csv@rows=abc'
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	run --separate-stderr "$PCTL" ls "$TMP/nonexistent"
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	mkdir "$TMP/foreign" && echo x >"$TMP/foreign/x"
	run --separate-stderr "$PCTL" ls "$TMP/foreign"
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	run --separate-stderr "$PCTL" fsck "$TMP/foreign"
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	run --separate-stderr "$PCTL" stat "$STORE" sub/none
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	run --separate-stderr "$PCTL" no-such-command
	show_output
	[ "$status" -ne 0 ]
	[[ ${stderr_lines[0]} =~ ^payloadctl: ]]
	run --separate-stderr "$PCTL"
	show_output
	[ "$status" -ne 0 ]
	[ -n "$stderr" ]
}
