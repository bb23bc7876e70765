#!/usr/bin/env bats
# ctl.bats — payloadctl on stores filled through a real mount: init, ls,
# stat, cat (objects and every kind of view, byte for byte against the
# mount), fsck (clean after normal use and while mounted; a flipped byte, a
# missing fragment file, a wrong reference count, a broken dirent, an
# unreferenced image), and every error path with its message and exit
# status (0 ok, 1 failure or damage, 2 usage; fsck 2 = could not run).

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

ERR_RE='^payloadctl: .+: .+'

# ---- fixtures --------------------------------------------------------------

# populate — mount with 64 KiB fragments and fill the store; copies go to
# $TWIN. d.csv (4000 rows, ~190 KB: several fragment files) also has a hard
# link sub/hard.csv and a symlink link.csv; sub/n.txt, small.txt and
# empty.csv are inline; rec.bin is fixed:16 with two raw fragments. Leaves
# the store mounted; INO and SIZE are d.csv's.
populate() {
	mount_pfs fragment_size=65536
	mkdir "$MNT/sub" "$TWIN/sub"
	gen_csv "$TWIN/d.csv" 4000
	seq 1 50 >"$TWIN/sub/n.txt"
	echo small >"$TWIN/small.txt"
	: >"$TWIN/empty.csv"
	gen_bin "$TWIN/rec.bin" 80000
	cp "$TWIN/d.csv" "$MNT/d.csv"
	cp "$TWIN/sub/n.txt" "$MNT/sub/n.txt"
	cp "$TWIN/small.txt" "$MNT/small.txt"
	: >"$MNT/empty.csv"
	touch "$MNT/rec.bin"
	setfattr -n user.payload.format -v fixed:16 "$MNT/rec.bin"
	cp "$TWIN/rec.bin" "$MNT/rec.bin"
	ln -s d.csv "$MNT/link.csv"
	ln "$MNT/d.csv" "$MNT/sub/hard.csv"
	INO=$(stat -c %i "$MNT/d.csv")
	SIZE=$(stat -c %s "$MNT/d.csv")
}

# ctl ARGS... — payloadctl with fd 3 closed (use as `run --separate-stderr ctl …`).
ctl() { "$PCTL" "$@" 3>&-; }

# ls_line NAME — the `payloadctl ls $STORE` line of NAME.
ls_line() { "$PCTL" ls "$STORE" | awk -v n="$1" '$7 == n'; }

# frag_list PATH — the rows of `stat -v`'s fragment list: "# off len row rows id stored codec".
frag_list() { "$PCTL" stat -v "$STORE" "$1" | sed -n '/^fragment list:/,$p' | tail -n +3; }

# ---- general ---------------------------------------------------------------

@test "payloadctl --help, COMMAND --help and --version" {
	local help
	run --separate-stderr ctl --help
	[ "$status" -eq 0 ]
	[[ $output == *usage:* ]]
	help=$output
	for c in init ls stat cat fsck; do
		[[ $help == *"  $c "* ]]
		run --separate-stderr ctl "$c" --help
		[ "$status" -eq 0 ]
		[[ ${lines[0]} == "usage: payloadctl $c"* ]]
	done
	run --separate-stderr ctl --version
	[ "$status" -eq 0 ]
	[[ $output =~ ^payloadctl\ [0-9]+\.[0-9]+ ]]
}

@test "unknown commands, options and wrong arguments are usage errors (exit 2)" {
	populate
	run --separate-stderr ctl no-such-command
	[ "$status" -eq 2 ]
	[[ ${stderr_lines[0]} == "payloadctl: no-such-command: unknown command" ]]
	[ -z "$output" ]
	run --separate-stderr ctl
	[ "$status" -eq 2 ]
	[[ ${stderr_lines[0]} =~ ^payloadctl: ]]
	run --separate-stderr ctl --bogus
	[ "$status" -eq 2 ]
	run --separate-stderr ctl fsck --no-such-option "$STORE"
	[ "$status" -eq 2 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	[[ $stderr == *--no-such-option* ]]
	run --separate-stderr ctl ls -x "$STORE"
	[ "$status" -eq 2 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	run --separate-stderr ctl cat "$STORE"
	[ "$status" -eq 2 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
	run --separate-stderr ctl stat "$STORE"
	[ "$status" -eq 2 ]
	run --separate-stderr ctl ls "$STORE" a b
	[ "$status" -eq 2 ]
	run --separate-stderr ctl init
	[ "$status" -eq 2 ]
	run --separate-stderr ctl fsck
	[ "$status" -eq 2 ]
}

# expect_no_store STATUS CMD ARGS... — CMD fails with STATUS and the
# "no such store" message naming the store ($2 of the command line).
expect_no_store() {
	local want=$1
	shift
	run --separate-stderr ctl "$@"
	[ "$status" -eq "$want" ]
	[[ ${stderr_lines[0]} == "payloadctl: $2: no such store ("* ]]
	[ -z "$output" ]
}

@test "every command refuses a missing store, a foreign directory and an empty one" {
	mkdir "$TMP/foreign" "$TMP/empty"
	echo x >"$TMP/foreign/x"
	for s in "$TMP/nonexistent" "$TMP/foreign" "$TMP/empty"; do
		expect_no_store 1 ls "$s"
		expect_no_store 1 ls "$s" x
		expect_no_store 1 stat "$s" x
		expect_no_store 1 cat "$s" x
		expect_no_store 2 fsck "$s"
	done
	# nothing was created in them
	[ ! -e "$TMP/nonexistent" ]
	[ "$(ls -A "$TMP/empty")" = "" ]
	[ "$(ls -A "$TMP/foreign")" = x ]
}

# ---- init ------------------------------------------------------------------

@test "init makes an empty directory a store that payloadfs mounts" {
	run --separate-stderr ctl init "$STORE"
	[ "$status" -eq 0 ]
	[ -d "$STORE/index" ]
	[ -d "$STORE/fragments" ]
	[ -d "$STORE/staging" ]
	run --separate-stderr ctl ls "$STORE"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run --separate-stderr ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "fsck: 0 objects, 0 fragments checked: clean" ]
	mount_pfs
	echo hi >"$MNT/f"
	[ "$(cat "$MNT/f")" = hi ]
}

@test "init creates a missing directory and leaves an existing store alone" {
	run --separate-stderr ctl init "$TMP/new"
	[ "$status" -eq 0 ]
	[ -d "$TMP/new/index" ]
	STORE=$TMP/new
	mount_pfs
	echo keep >"$MNT/k"
	run --separate-stderr ctl init "$STORE"     # while mounted, too
	[ "$status" -eq 0 ]
	[[ $output == *"already a payloadfs store"* ]]
	[ "$(cat "$MNT/k")" = keep ]
	[ "$("$PCTL" cat "$STORE" k)" = keep ]
	run --separate-stderr ctl init "$TMP/no/such/parent"
	[ "$status" -eq 1 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
}

@test "init refuses a non-empty foreign directory and leaves it untouched" {
	local d=$TMP/foreign            # not $STORE: a RADOS-mode $STORE is a store already
	mkdir "$d"
	echo mine >"$d/notes.txt"
	run --separate-stderr ctl init "$d"
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "payloadctl: $d: directory is not empty and is not a payloadfs store" ]
	[ "$(ls -A "$d")" = notes.txt ]
}

# ---- ls --------------------------------------------------------------------

@test "ls lists the root like ls -l: mode, nlink, size, rows, version, fragments, name" {
	populate
	run --separate-stderr ctl ls "$STORE"
	[ "$status" -eq 0 ]
	# name order, no views, no .by-id
	[ "$(awk '{ print $7 }' <<<"$output" | tr '\n' ' ')" = "d.csv empty.csv link.csv rec.bin small.txt sub " ]
	[[ $output != *@* ]]
	[[ $output != *by-id* ]]
	read -r mode nlink size rows version frags name <<<"$(ls_line d.csv)"
	[ "$mode" = "$(stat -c %A "$MNT/d.csv")" ]
	[ "$nlink" = 2 ]
	[ "$size" = "$SIZE" ]
	[ "$rows" = 4000 ]
	[ "$version" = "$(xget "$MNT/d.csv" user.payload.version)" ]
	[ "$frags" = "$(xget "$MNT/d.csv" user.payload.fragments)" ]
	[ "$frags" -ge 3 ]
	read -r mode nlink size rows version frags name <<<"$(ls_line rec.bin)"
	[ "$size" = 80000 ]
	[ "$rows" = 5000 ]
	[ "$frags" = 2 ]
	read -r mode nlink size rows version frags name <<<"$(ls_line small.txt)"
	[ "$size" = 6 ]
	[ "$rows" = 1 ]
	[ "$frags" = 0 ]
	read -r mode nlink size rows version frags name <<<"$(ls_line empty.csv)"
	[ "$size" = 0 ]
	[ "$rows" = 0 ]
	read -r mode nlink size rows version frags name <<<"$(ls_line sub)"
	[ "$mode" = drwxr-xr-x ]
	[ "$nlink" = 2 ]
	[ "$rows" = - ]
	[ "$version" = - ]
	[[ $(ls_line link.csv) =~ ^l.*\ link\.csv\ -\>\ d\.csv$ ]]
}

@test "ls of a subdirectory, of one entry, with -d, and of the root as / or ''" {
	populate
	run --separate-stderr ctl ls "$STORE" sub
	[ "$status" -eq 0 ]
	[ "$(awk '{ print $7 }' <<<"$output" | tr '\n' ' ')" = "hard.csv n.txt " ]
	[[ ${lines[1]} =~ ^-rw-r--r--\ +1\ +141\ +50\ +[0-9]+\ +0\ n\.txt$ ]]
	for p in /sub sub/ ./sub/ /sub/.. /sub/../sub; do
		run --separate-stderr ctl ls "$STORE" "$p"
		[ "$status" -eq 0 ]
		if [[ $p == *.. ]]; then [[ $output == *d.csv* ]]; else [[ $output == *n.txt* ]]; fi
	done
	run --separate-stderr ctl ls "$STORE" sub/n.txt
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ ${lines[0]} == *" sub/n.txt" ]]
	run --separate-stderr ctl ls -d "$STORE" sub
	[ "${#lines[@]}" -eq 1 ]
	[[ ${lines[0]} =~ ^d.*\ sub$ ]]
	[ "$(ctl ls "$STORE" /)" = "$(ctl ls "$STORE")" ]
	[ "$(ctl ls "$STORE" '')" = "$(ctl ls "$STORE")" ]
	# .by-id/ID names an object
	run --separate-stderr ctl ls "$STORE" ".by-id/$INO"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == *" 4000 "* ]]
}

@test "ls of a directory larger than one read batch lists every entry once, in order" {
	mount_pfs
	mkdir "$MNT/many"
	(cd "$MNT/many" && seq -f 'f%05g' 1 2100 | xargs touch)
	run --separate-stderr ctl ls "$STORE" many
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2100 ]
	[ "$(awk '{ print $7 }' <<<"$output")" = "$(seq -f 'f%05g' 1 2100)" ]
}

@test "ls, stat and cat report a missing path as 'payloadctl: PATH: why'" {
	populate
	for cmd in ls stat cat; do
		run --separate-stderr ctl $cmd "$STORE" ds/missing.csv
		[ "$status" -eq 1 ]
		[ "${stderr_lines[0]}" = "payloadctl: ds/missing.csv: No such file or directory" ]
		[ -z "$output" ]
		run --separate-stderr ctl $cmd "$STORE" d.csv/x
		[ "$status" -eq 1 ]
		[ "${stderr_lines[0]}" = "payloadctl: d.csv/x: Not a directory" ]
	done
	run --separate-stderr ctl cat "$STORE" .by-id/999999
	[ "$status" -eq 1 ]
	[[ ${stderr_lines[0]} =~ $ERR_RE ]]
}

# ---- stat ------------------------------------------------------------------

@test "stat prints every attribute of an object" {
	populate
	run --separate-stderr ctl stat "$STORE" d.csv
	[ "$status" -eq 0 ]
	field() { sed -n "s/^$1: *//p" <<<"$output"; }
	[ "$(field path)" = d.csv ]
	[ "$(field id)" = "$INO" ]
	[ "$(field type)" = "regular file" ]
	[ "$(field mode)" = "0644 (-rw-r--r--)" ]
	[ "$(field uid)" = "$(stat -c %u "$MNT/d.csv")" ]
	[ "$(field gid)" = "$(stat -c %g "$MNT/d.csv")" ]
	[ "$(field nlink)" = 2 ]
	[ "$(field size)" = "$SIZE" ]
	[ "$(field rows)" = 4000 ]
	[ "$(field 'header rows')" = 1 ]
	[ "$(field format)" = lines ]
	[ "$(field storage)" = disk ]
	[ "$(field version)" = "$(xget "$MNT/d.csv" user.payload.version)" ]
	[ "$(field fragments)" = "$(xget "$MNT/d.csv" user.payload.fragments)" ]
	[ "$(field inline)" = no ]
	[[ $(field mtime) == "$(date -d "@$(stat -c %Y "$MNT/d.csv")" '+%Y-%m-%d %H:%M:%S')."* ]]
	[ -n "$(field atime)" ]
	[ -n "$(field ctime)" ]
	[[ $output != *"fragment list"* ]]
}

@test "stat -v lists contiguous fragments whose ids are the fragment files" {
	populate
	unmount_pfs
	frag_list d.csv >"$TMP/frags"
	[ "$(wc -l <"$TMP/frags")" -eq "$(ctl stat "$STORE" d.csv | sed -n 's/^fragments: *//p')" ]
	local off=0 row=0 idx=0
	while read -r i o len first rows id stored codec; do
		[ "$i" = "$idx" ]
		[ "$o" = "$off" ]
		[ "$first" = "$row" ]
		[[ $id =~ ^[0-9a-f]{16}$ ]]
		image_exists "$id"
		[ "$(image_size "$id")" -eq $((stored + 48)) ]
		[ "$codec" = lz4 ]
		off=$((off + len)) row=$((row + rows)) idx=$((idx + 1))
	done <"$TMP/frags"
	[ "$off" -eq "$SIZE" ]
	[ "$row" -eq 4001 ]    # with the header row
	# rec.bin: incompressible, stored raw, whole 16-byte records
	frag_list rec.bin >"$TMP/frags"
	[ "$(wc -l <"$TMP/frags")" -eq 2 ]
	while read -r i o len first rows id stored codec; do
		[ "$codec" = raw ]
		[ $((len % 16)) -eq 0 ]
		[ "$rows" -eq $((len / 16)) ]
	done <"$TMP/frags"
}

@test "stat of a directory, a symlink, an inline object and a fixed:N object" {
	populate
	run --separate-stderr ctl stat "$STORE" sub
	[ "$status" -eq 0 ]
	[[ $output == *"type:        directory"* ]]
	[[ $output == *"nlink:       2"* ]]
	[[ $output == *"parent:      1"* ]]
	[[ $output != *"rows:"* ]]
	run --separate-stderr ctl stat "$STORE" link.csv
	[[ $output == *"type:        symbolic link"* ]]
	[[ $output == *"target:      d.csv"* ]]
	[[ $output == *"size:        5"* ]]
	run --separate-stderr ctl stat -v "$STORE" sub/n.txt
	[[ $output == *"inline:      yes"* ]]
	[[ $output == *"rows:        50"* ]]
	[[ $output == *"header rows: 0"* ]]
	[[ $output == *"fragments:   0"* ]]
	run --separate-stderr ctl stat "$STORE" rec.bin
	[[ $output == *"format:      fixed:16 (set explicitly)"* ]]
	[[ $output == *"rows:        5000"* ]]
	run --separate-stderr ctl stat "$STORE" /
	[ "$status" -eq 0 ]
	[[ $output == *"id:          1"* ]]
	# stat -v of the hard link is the same object
	[ "$(ctl stat -v "$STORE" sub/hard.csv | grep -v ^path)" = "$(ctl stat -v "$STORE" d.csv | grep -v ^path)" ]
}

# ---- cat -------------------------------------------------------------------

@test "cat writes each object byte for byte as the mount serves it" {
	populate
	for f in d.csv sub/n.txt small.txt empty.csv rec.bin link.csv sub/hard.csv; do
		ctl cat "$STORE" "$f" >"$TMP/got"
		same_file "$TMP/got" "$MNT/$f"
	done
	ctl cat "$STORE" ".by-id/$INO" >"$TMP/got"
	same_file "$TMP/got" "$MNT/.by-id/$INO"
	unmount_pfs
	for f in d.csv sub/n.txt small.txt empty.csv rec.bin; do
		ctl cat "$STORE" "$f" >"$TMP/got"
		same_file "$TMP/got" "$TWIN/$f"
	done
}

@test "cat of views equals the mount's views byte for byte" {
	populate
	local v f
	for v in rows=0:10 rows=10:20 rows=-5: rows=:3 rows=3990:99999 rows=5:2 rows=-10:-5 \
		rows=: rows=-99999:2 part=0/1 part=0/3 part=1/3 part=2/3 part=7/8 part=3/8 meta; do
		for f in d.csv sub/n.txt rec.bin empty.csv; do
			ctl cat "$STORE" "$f@$v" >"$TMP/got"
			cat "$MNT/$f@$v" >"$TMP/want"
			if [ "$v" = meta ]; then
				# times aside (atime may move), the JSON is the same
				grep -v time "$TMP/got" >"$TMP/got.m"
				grep -v time "$TMP/want" >"$TMP/want.m"
				same_file "$TMP/got.m" "$TMP/want.m"
				python3 -m json.tool "$TMP/got" >/dev/null
			else
				same_file "$TMP/got" "$TMP/want"
			fi
		done
	done
	# and what sed -n gives
	ctl cat "$STORE" 'd.csv@rows=100:200' | cmp - <(slice_lines "$TWIN/d.csv" 100 200)
	ctl cat "$STORE" 'd.csv@part=3/8' | cmp - <(slice_lines "$TWIN/d.csv" 1500 2000)
	ctl cat "$STORE" ".by-id/$INO@rows=-3:" | cmp - <(slice_lines "$TWIN/d.csv" -3 "")
	ctl cat "$STORE" 'sub/../link.csv@rows=0:1' | cmp - <(slice_lines "$TWIN/d.csv" 0 1)
	ctl cat "$STORE" 'sub/n.txt@rows=0:3' | cmp - <(printf '1\n2\n3\n')    # no header
}

@test "cat streams a large object in bounded memory" {
	if ldd "$PCTL" | grep -Eq 'lib(a|ub|t)san'; then
		skip "RSS is not meaningful under sanitizers"
	fi
	mount_pfs
	gen_bin "$TWIN/big" $((48 << 20))
	cp "$TWIN/big" "$MNT/big"
	unmount_pfs
	# RADOS mode: librados's own threads and buffers come on top (about
	# 20 MiB for an `ls`): the bound is that baseline + 24 MiB
	python3 - "$PCTL" "$STORE" "$TMP/got" "${PFS_E2E_RADOS:-0}" <<'EOF'
import resource, subprocess, sys
limit = 32 * 1024
if sys.argv[4] == "1":
    subprocess.run([sys.argv[1], "ls", sys.argv[2]], stdout=subprocess.DEVNULL, check=True)
    base = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    limit = base + 24 * 1024
    print("# payloadctl ls: max RSS %d KiB" % base, file=sys.stderr)
with open(sys.argv[3], "wb") as out:
    subprocess.run([sys.argv[1], "cat", sys.argv[2], "big"], stdout=out, check=True)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("# payloadctl cat of 48 MiB: max RSS %d KiB (limit %d)" % (rss, limit), file=sys.stderr)
sys.exit(0 if rss < limit else 1)
EOF
	same_file "$TMP/got" "$TWIN/big"
}

@test "cat rejects bad views, directories and partition directories" {
	populate
	for v in 'd.csv@rows=abc' 'd.csv@rows=1:2:3' 'd.csv@part=9/8' 'd.csv@part=1/0' 'd.csv@part=-1/2' '@meta'; do
		run --separate-stderr ctl cat "$STORE" "$v"
		[ "$status" -eq 1 ]
		[[ ${stderr_lines[0]} == "payloadctl: $v: bad view ("* ]]
		[ -z "$output" ]
	done
	run --separate-stderr ctl cat "$STORE" 'd.csv@part=3'
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "payloadctl: d.csv@part=3: Is a directory" ]
	run --separate-stderr ctl cat "$STORE" sub
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "payloadctl: sub: Is a directory" ]
	# views exist only for objects (ENOENT on the mount as well)
	run --separate-stderr ctl cat "$STORE" 'sub@meta'
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "payloadctl: sub@meta: No such file or directory" ]
	run cat "$MNT/sub@meta"
	[ "$status" -ne 0 ]
	# a suffix that is not a view is part of the name
	run --separate-stderr ctl cat "$STORE" 'd.csv@other'
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "payloadctl: d.csv@other: No such file or directory" ]
}

@test "ls, stat and cat are safe while mounted and see each commit" {
	populate
	echo "4000,new,row,0,x" >>"$MNT/d.csv"
	echo "4000,new,row,0,x" >>"$TWIN/d.csv"
	ctl cat "$STORE" d.csv >"$TMP/got"
	same_file "$TMP/got" "$TWIN/d.csv"
	read -r _ _ size rows version _ _ <<<"$(ls_line d.csv)"
	[ "$size" = "$(stat -c %s "$MNT/d.csv")" ]
	[ "$rows" = 4001 ]
	[ "$version" = "$(xget "$MNT/d.csv" user.payload.version)" ]
	run --separate-stderr ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	# the mount is unharmed and keeps committing
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	echo more >>"$MNT/small.txt"
	[ "$(ctl cat "$STORE" small.txt)" = "$(printf 'small\nmore')" ]
}

@test "cat reports a write error on stdout; storage=memory objects are refused, fsck notes them" {
	populate
	local rc=0
	"$PCTL" cat "$STORE" d.csv >/dev/full 2>"$TMP/err" 3>&- || rc=$?
	[ "$rc" -eq 1 ]
	[ "$(cat "$TMP/err")" = "payloadctl: stdout: No space left on device" ]
	mkdir "$MNT/mem"
	setfattr -n user.payload.storage -v memory "$MNT/mem"
	gen_csv "$MNT/mem/m.csv" 3000
	run --separate-stderr ctl cat "$STORE" mem/m.csv
	[ "$status" -eq 1 ]
	[[ ${stderr_lines[0]} == "payloadctl: mem/m.csv: storage=memory object"* ]]
	run --separate-stderr ctl stat -v "$STORE" mem/m.csv
	[[ $output == *"storage:     memory"* ]]
	[[ $output == *"lz4 (memory)"* ]]
	run --separate-stderr ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^note:\ [0-9]+\ fragment\(s\)\ of\ storage=memory ]]
	[[ ${lines[-1]} == *": clean" ]]
	unmount_pfs
	# emptied at unmount; the store stays clean
	run --separate-stderr ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
}

# ---- fsck ------------------------------------------------------------------

@test "fsck is clean after normal use, counting objects and fragment files" {
	populate
	gen_csv "$MNT/e.csv" 3000 4
	printf 'id,user,action,value,note\nx\n' >"$MNT/d.csv@rows=100:2000"
	cp "$MNT/e.csv" "$MNT/sub/e-copy.csv"            # shares fragments
	ln "$MNT/e.csv" "$MNT/sub/e-link.csv"
	mv "$MNT/e.csv" "$MNT/f.csv"
	mv "$MNT/sub" "$MNT/sub2"
	mkdir -p "$MNT/a/b/c"
	mv "$MNT/small.txt" "$MNT/a/b/c/small.txt"
	rm -r "$MNT/a/b"
	truncate -s 50000 "$MNT/sub2/e-copy.csv"
	dd if=/dev/zero of="$MNT/f.csv" bs=1 count=10 seek=70000 conv=notrunc status=none
	echo tail >>"$MNT/f.csv"
	setfattr -n user.payload.header -v 2 "$MNT/d.csv"
	rm "$MNT/empty.csv"
	local objects
	objects=$(find "$MNT" -type f -printf '%i\n' | sort -u | wc -l)
	unmount_pfs
	run --separate-stderr ctl fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "fsck: $objects objects, $(store_images | wc -l) fragments checked: clean" ]
	[ -z "$stderr" ]
}

@test "fsck exits 1 naming the object, fragment and byte range of a flipped byte" {
	populate
	unmount_pfs
	local i off len first rows id rest
	read -r i off len first rows id rest <<<"$(frag_list d.csv | sed -n 2p)"
	image_flip "$id"
	run --separate-stderr ctl fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 2 ]
	[[ ${lines[0]} == "/d.csv (id $INO): fragment $id (bytes $off..$((off + len))): damaged"* ]]
	[[ ${lines[1]} =~ ^fsck:\ 5\ objects,\ [0-9]+\ fragments\ checked:\ 1\ problem$ ]]
	[ -z "$stderr" ]
	# the damaged object cannot be read, the others still can
	run --separate-stderr ctl cat "$STORE" d.csv
	[ "$status" -eq 1 ]
	[[ ${stderr_lines[0]} == "payloadctl: d.csv: Input/output error"* ]]
	ctl cat "$STORE" 'd.csv@rows=0:10' | cmp - <(slice_lines "$TWIN/d.csv" 0 10)
	ctl cat "$STORE" rec.bin | cmp - "$TWIN/rec.bin"
}

@test "fsck reports a deleted fragment file as a missing fragment with its references" {
	populate
	unmount_pfs
	local i off len first rows id rest
	read -r i off len first rows id rest <<<"$(frag_list d.csv | tail -n 1)"
	image_rm "$id"
	run --separate-stderr ctl fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 1 ]
	[[ ${lines[0]} == "/d.csv (id $INO): fragment $id (bytes $off..$SIZE): missing: no image $(image_where "$id"), but 1 reference(s) to it" ]]
	[[ ${lines[-1]} == *": 1 problem" ]]
	[[ $output != *n.txt* ]]
	[[ $output != *rec.bin* ]]
}

@test "fsck reports reference counts that do not match the fragment records" {
	need_mdb_tools
	populate
	unmount_pfs
	local id
	id=$(frag_list d.csv | awk 'NR == 1 { print $6 }')
	mdb_put refs "$id" "$(u32le 3)"                    # 1 record, count 3
	mdb_put refs "$(u64be $((0x7fff0000)))" "$(u32le 1)" # a count, no record
	run --separate-stderr ctl fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 1 ]
	[[ $output == *"/d.csv (id $INO): fragment $id: reference count 3, but 1 fragment record(s) name it"* ]]
	[[ $output == *"fragment 000000007fff0000: reference count 1, but no fragment record names it"* ]]
	[[ ${lines[-1]} =~ :\ [0-9]+\ problems$ ]]
}

@test "fsck reports a dirent to a missing inode and a wrong nlink" {
	need_mdb_tools
	populate
	unmount_pfs
	# root/ghost -> inode 999999; root/dup -> d.csv (a third name nlink does not count)
	mdb_put dirents "$(u64be 1)$(hexstr ghost)" "$(u64le 999999)$(u32le $((0x8000)))"
	mdb_put dirents "$(u64be 1)$(hexstr dup)" "$(u64le "$INO")$(u32le $((0x8000)))"
	run --separate-stderr ctl fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 1 ]
	[[ $output == *"/ (id 1): entry 'ghost' names inode 999999, which does not exist"* ]]
	[[ $output == *"/d.csv (id $INO): nlink is 2, but 3 directory entries name it"* ]]
	[[ ${lines[-1]} == *": 2 problems" ]]
}

@test "fsck warns about an unreferenced fragment image but stays clean" {
	populate
	unmount_pfs
	image_get "$(store_images | head -n 1)" "$TMP/img"
	image_put 00000000ffffffff "$TMP/img"
	run --separate-stderr ctl fsck "$STORE"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "warning: fragment image $(image_where 00000000ffffffff) is not referenced"* ]]
	[[ ${lines[-1]} == *": clean" ]]
	# after a clean unmount the mount does not list the images: it stays
	mount_pfs
	image_exists 00000000ffffffff
	unmount_pfs
	# gc removes it
	run ctl gc "$STORE"
	[ "$status" -eq 0 ]
	run image_exists 00000000ffffffff
	[ "$status" -ne 0 ]
}

@test "fsck of a mounted store being written stays clean" {
	populate
	gen_csv "$TWIN/w.csv" 2000 7
	cp "$TWIN/w.csv" "$MNT/w.csv"
	(
		for i in $(seq 1 60); do
			echo "$i,w,row,$i,x" >>"$MNT/w.csv" || exit 1
			[ $((i % 10)) -ne 0 ] || cp "$TWIN/w.csv" "$MNT/w.csv" || exit 1
		done
	) 3>&- &
	local writer=$! rc=0
	BG_PIDS+=("$writer")
	for i in 1 2 3 4 5 6; do
		ctl fsck "$STORE" >"$TMP/fsck.out" 2>&1 || { rc=$?; cat "$TMP/fsck.out" | sed 's/^/# /' >&3; break; }
	done
	wait "$writer"
	BG_PIDS=()
	[ "$rc" -eq 0 ]
	run --separate-stderr ctl fsck "$STORE"
	[ "$status" -eq 0 ]
}
