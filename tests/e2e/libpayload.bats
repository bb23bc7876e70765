#!/usr/bin/env bats
# libpayload.bats — the library (lib/payload.h) beside a real mount, through
# tests/lib/pltool (BUILD/tests/pltool): batched gets equal the bytes the
# mount serves; read-write opens are refused while mounted; a read-only
# handle sees a commit made through the mount after it opened; a
# ten-line program builds with `pkg-config --cflags --libs payload` against
# a `make install DESTDIR=...` tree; put_many is all or none, also when it
# fails mid-batch or is killed between its images' sync and its txn
# (crash point put_txn: the next mount sweeps what it left).

load helpers

PLTOOL=$PAYLOADFS_BUILD/tests/pltool
R=2001

setup() {
	pfs_init
	mount_pfs
	gen_csv "$TWIN/d.csv" $R
	gen_bin "$TWIN/b.bin" 300000
	cp "$TWIN/d.csv" "$TWIN/b.bin" "$MNT/"
}
teardown() { pfs_teardown; }

@test "a batch equals what the mount serves: whole, bytes, rows, @part, by id" {
	local id
	id=$(stat -c %i "$MNT/b.bin")
	cat "$MNT/d.csv" "$MNT/b.bin" "$MNT/d.csv@rows=100:250" "$MNT/d.csv@part=3/4" >"$TMP/want"
	dd if="$MNT/b.bin" bs=1 skip=1000 count=70000 status=none >>"$TMP/want"
	cat "$MNT/d.csv@rows=-7:" "$MNT/.by-id/$id" >>"$TMP/want"
	"$PLTOOL" get "$STORE" d.csv b.bin d.csv:rows=100:250 "d.csv@part=3/4" \
		b.bin:bytes=1000:71000 d.csv:rows=-7: "id=$id" >"$TMP/got"
	same_file "$TMP/got" "$TMP/want"
}

@test "the rows of a batch equal the ext4 twin's lines" {
	slice_lines "$TWIN/d.csv" 5 1500 >"$TMP/want"
	"$PLTOOL" get "$STORE" d.csv:rows=5:1500 >"$TMP/got"
	same_file "$TMP/got" "$TMP/want"
}

@test "read-write open is refused while the store is mounted, saying why" {
	run -1 "$PLTOOL" open "$STORE" w
	[[ $output == *"payload_open $STORE read-write: the store is in use"* ]]
	run -0 "$PLTOOL" open "$STORE" r
	# a put_many is refused the same way, and writes nothing
	printf 'other\n' >"$TMP/other"
	run -1 "$PLTOOL" put "$STORE" d.csv="$TMP/other" new.csv="$TMP/other"
	[[ $output == *"payload_open $STORE read-write: the store is in use"* ]]
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	[ ! -e "$MNT/new.csv" ]
	run -0 "$PCTL" cat "$STORE" d.csv
	[ "$output" = "$(cat "$TWIN/d.csv")" ]
}

@test "stdout and stderr into one pipe, read slowly: every byte arrives (librados keeps stderr's flags)" {
	# librados set O_NONBLOCK on a pipe on fd 2, and so on a 2>&1 stdout:
	# writes past the pipe's 64 KiB failed with EAGAIN (cache/rados_conn.c (3))
	[ "$(stat -c %s "$TWIN/d.csv")" -gt 65536 ]   # more than a pipe holds
	"$PLTOOL" get "$STORE" d.csv 2>&1 | { sleep 0.5; cat; } >"$TMP/lib"
	same_file "$TMP/lib" "$TWIN/d.csv"
	"$PCTL" cat "$STORE" d.csv 2>&1 | { sleep 0.5; cat; } >"$TMP/ctl"
	same_file "$TMP/ctl" "$TWIN/d.csv"
}

@test "a read-only handle sees a commit made through the mount after it opened" {
	local pid
	# d.csv: a cached version (index/pver.c (8)); s.txt: an inline object,
	# read through the batch's view of the index (lib/payload.c (7))
	printf 'small one\n' >"$MNT/s.txt"
	"$PLTOOL" follow "$STORE" d.csv:rows=-1: s.txt "$TMP/go" >"$TMP/got" 2>"$TMP/err" &
	pid=$!
	BG_PIDS+=("$pid")
	# wait for its first read (one line of header, one row, s.txt)
	for _ in $(seq 500); do [ "$(wc -l <"$TMP/got")" -ge 3 ] && break; sleep 0.01; done
	printf 'new,row,here\n' >>"$MNT/d.csv"
	printf 'rewritten by the daemon\n' >"$MNT/s.txt"
	touch "$TMP/go"
	wait "$pid"
	{ slice_lines "$TWIN/d.csv" -1 ''; printf 'small one\n'; head -1 "$TWIN/d.csv"; printf 'new,row,here\n'
	  printf 'rewritten by the daemon\n'; } >"$TMP/want"
	same_file "$TMP/got" "$TMP/want"
}

@test "make install DESTDIR: pkg-config builds a ten-line program against payload.h" {
	local root=$TMP/root inst=$TMP/root/usr/local
	if readelf -d "$PAYLOADFS_BUILD/libpayload.so" | grep -q 'libasan\|libubsan'; then
		skip "a sanitizer build of the library: a plain program cannot load it first"
	fi
	make -s -C "$BATS_TEST_DIRNAME/../.." BUILD="$PAYLOADFS_BUILD" DESTDIR="$root" install-lib >"$TMP/make.log" 2>&1 || {
		cat "$TMP/make.log" >&2
		return 1
	}
	[ -L "$inst/lib/libpayload.so.0" ]
	[ -f "$inst/include/payload.h" ]
	[ -f "$inst/share/man/man3/payload.3" ]
	cat >"$TMP/ten.c" <<'C'
#include <payload.h>
#include <stdio.h>
int main(int argc, char **argv) {
	payload_store *st; char buf[65536];
	struct payload_get r = { .path = argv[2], .range = PAYLOAD_ROWS, .start = 0, .stop = 3, .buf = buf, .cap = sizeof(buf) };
	if (argc < 3 || payload_open(argv[1], PAYLOAD_RDONLY, &st)) return 1;
	if (payload_get_many(st, &r, 1)) { fprintf(stderr, "%s\n", payload_errmsg()); return 1; }
	fwrite(buf, 1, r.len, stdout); payload_close(st); return 0;
}
C
	flags=$(PKG_CONFIG_PATH="$inst/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" pkg-config --cflags --libs payload)
	[[ $flags == *"-I$inst/include"* ]]
	# shellcheck disable=SC2086
	gcc -o "$TMP/ten" "$TMP/ten.c" $flags
	LD_LIBRARY_PATH="$inst/lib" "$TMP/ten" "$STORE" d.csv >"$TMP/got"
	head -4 "$TWIN/d.csv" >"$TMP/want"
	same_file "$TMP/got" "$TMP/want"
	# the Python package, where Debian's python3 looks under the prefix
	pydir=$(/usr/bin/python3 -c 'import sys; print("lib/python%d.%d/dist-packages" % sys.version_info[:2])')
	[ -f "$inst/$pydir/payloadfs/__init__.py" ]
	PYTHONPATH="$inst/$pydir" LD_LIBRARY_PATH="$inst/lib" /usr/bin/python3 -c \
		'import payloadfs, sys; sys.stdout.buffer.write(payloadfs.open(sys.argv[1]).read_rows("d.csv", 0, 3))' \
		"$STORE" >"$TMP/got.py"
	same_file "$TMP/got.py" "$TMP/want"
}

@test "put_many on the unmounted store: the mount serves every member, or none of a failed batch" {
	unmount_pfs
	printf 'a,b\n1,2\n' >"$TMP/x.csv"
	printf 'hello' >"$TMP/h"
	head -c 5000 /dev/zero >"$TMP/big"
	run -0 "$PLTOOL" put "$STORE" n.csv="$TMP/x.csv" d.csv="$TMP/h"
	run -1 "$PLTOOL" put "$STORE" m.csv="$TMP/x.csv" d.csv="$TMP/x.csv" no/big="$TMP/big"
	[[ $output == *"member 2 (no/big)"*"No such file or directory"* ]]
	mount_pfs
	same_file "$MNT/n.csv" "$TMP/x.csv"
	same_file "$MNT/d.csv" "$TMP/h"
	[ ! -e "$MNT/m.csv" ]
	[ "$(cat "$MNT/n.csv@rows=0:1")" = "$(printf 'a,b\n1,2')" ]
}

@test "put_many of large members: fragments, one transaction; an ENOSPC mid-batch leaves nothing, fsck clean" {
	unmount_pfs
	gen_csv "$TMP/big.csv" 60000
	gen_bin "$TMP/big.bin" 2500000
	printf 'x' >"$TMP/small"
	local before
	before=$(store_images | wc -l)
	# the 3rd fragment image of the batch fails to write
	PAYLOADFS_FAULT=frag_write:3:ENOSPC run -1 "$PLTOOL" put "$STORE" s="$TMP/small" c.csv="$TMP/big.csv" b.bin="$TMP/big.bin"
	[[ $output == *"No space left on device"* ]]
	[ "$(store_images | wc -l)" -eq "$before" ]
	# the sync of the batch's images fails
	PAYLOADFS_FAULT=frag_fsync:1:EIO run -1 "$PLTOOL" put "$STORE" c.csv="$TMP/big.csv" b.bin="$TMP/big.bin"
	[ "$(store_images | wc -l)" -eq "$before" ]
	# the index transaction itself fails after every image was synced
	PAYLOADFS_FAULT=lmdb_commit:1:EIO run -1 "$PLTOOL" put "$STORE" c.csv="$TMP/big.csv" b.bin="$TMP/big.bin"
	[ "$(store_images | wc -l)" -eq "$before" ]
	run "$PCTL" fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
	run -0 "$PLTOOL" put "$STORE" s="$TMP/small" c.csv="$TMP/big.csv" b.bin="$TMP/big.bin"
	[ "$(store_images | wc -l)" -gt "$before" ]
	run "$PCTL" fsck "$STORE"
	[ "$status" -eq 0 ]
	mount_pfs
	same_file "$MNT/c.csv" "$TMP/big.csv"
	same_file "$MNT/b.bin" "$TMP/big.bin"
	same_file "$MNT/s" "$TMP/small"
	[ "$(cat "$MNT/c.csv@rows=59999:60000")" = "$(head -n 1 "$TMP/big.csv"; tail -n 1 "$TMP/big.csv")" ]
}

@test "put_many killed between its images' sync and its txn: no member visible, the next mount sweeps the images, fsck clean" {
	rados_mode && skip "local stores only: a RADOS writer sweeps unreferenced images only while no follower holds any back (docs/rados.md)"
	unmount_pfs
	gen_csv "$TMP/big.csv" 20000
	printf 'x' >"$TMP/small"
	local before
	before=$(store_images | wc -l)
	PAYLOADFS_FAULT=put_txn:1:KILL run "$PLTOOL" put "$STORE" s2="$TMP/small" c2.csv="$TMP/big.csv" d.csv="$TMP/big.csv"
	[ "$status" -eq 137 ]
	[[ $output == *"fault: put_txn: killing the process"* ]]
	# its images were written and synced: left behind, named by nothing
	[ "$(store_images | wc -l)" -gt "$before" ]
	run -0 "$PCTL" fsck "$STORE"
	[[ $output == *"is not referenced (left by an interrupted commit; removed at the next mount)"* ]]
	mount_pfs
	[ ! -e "$MNT/c2.csv" ]
	[ ! -e "$MNT/s2" ]
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	[ "$(store_images | wc -l)" -eq "$before" ]
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	echo "$output" | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
}
