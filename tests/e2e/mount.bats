#!/usr/bin/env bats
# mount.bats — mounting and unmounting: options, --help/--version, store
# validation errors, read-only mounts, and data surviving a remount.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

# The format version record of the unmounted $STORE (docs/format.md: key
# "format" of the LMDB database "meta", u32 little-endian), read and
# rewritten with lmdb-utils.
get_store_format() {
	mdb_dump -s meta "$STORE/index" | sed -n '/^ 666f726d6174$/{n;p;q}' |
		python3 -c 'import sys; print(int.from_bytes(bytes.fromhex(sys.stdin.read().strip()), "little"))'
}
set_store_format() {
	local hex
	hex=$(python3 -c 'import struct,sys; print(struct.pack("<I", int(sys.argv[1])).hex())' "$1")
	mdb_dump -s meta "$STORE/index" >"$TMP/meta.dump"
	grep -qx ' 666f726d6174' "$TMP/meta.dump"   # the key "format" is there
	sed "/^ 666f726d6174\$/{n;s/.*/ $hex/}" "$TMP/meta.dump" | mdb_load -s meta "$STORE/index"
	[ "$(get_store_format)" = "$1" ]
}

@test "an empty store directory is initialised, mounted and unmounted" {
	mount_pfs
	is_mounted "$MNT"
	[ -d "$STORE/index" ]
	[ -d "$STORE/fragments" ]
	[ -d "$STORE/staging" ]
	# the new file system is empty: views and .by-id are not listed
	run ls -A "$MNT"
	[ "$status" -eq 0 ]
	[[ ! $output =~ @ ]]
	run ls "$MNT"
	[ -z "$output" ]
	stat -f -c %T "$MNT" | grep -q fuse
	unmount_pfs
	not_mounted "$MNT"
}

@test "--help prints usage with the payloadfs options and exits 0" {
	run pfs --help
	show_output
	[ "$status" -eq 0 ]
	[[ ${output,,} == *usage* ]]
	[[ $output == *STORE* ]]
	[[ $output == *fragment_size* ]]
	[[ $output == *cache_size* ]]
	not_mounted "$MNT"
}

@test "--version prints a version and exits 0" {
	run pfs --version
	show_output
	[ "$status" -eq 0 ]
	[[ $output =~ payloadfs ]]
	[[ $output =~ [0-9]+\.[0-9]+ ]]
}

@test "no arguments: usage error, exit status not 0" {
	run pfs
	show_output
	[ "$status" -ne 0 ]
	[ -n "$output" ]
}

@test "a missing store directory is a clear one-line error" {
	run pfs "$TMP/nope" "$MNT" -o "logfile=$LOG,pidfile=$PIDFILE"
	show_output
	[ "$status" -ne 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$TMP/nope"* ]]
	[ ! -e "$TMP/nope" ]
	not_mounted "$MNT"
}

@test "a missing mount point is an error" {
	run pfs "$STORE" "$TMP/nomnt" -o "logfile=$LOG,pidfile=$PIDFILE"
	show_output
	[ "$status" -ne 0 ]
	[ -n "$output" ]
	not_mounted "$TMP/nomnt"
}

@test "a foreign non-empty directory is refused and left untouched" {
	local d=$TMP/foreign            # not $STORE: a RADOS-mode $STORE is a store already
	mkdir "$d"
	echo "my thesis" >"$d/thesis.txt"
	mkdir "$d/photos"
	run pfs "$d" "$MNT" -o "logfile=$LOG,pidfile=$PIDFILE"
	show_output
	[ "$status" -ne 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$d"* ]]
	not_mounted "$MNT"
	[ "$(ls -A "$d")" = "$(printf 'photos\nthesis.txt')" ]
	[ "$(cat "$d/thesis.txt")" = "my thesis" ]
}

@test "a store file that is not a directory is refused" {
	echo x >"$TMP/file"
	run pfs "$TMP/file" "$MNT" -o "logfile=$LOG,pidfile=$PIDFILE"
	show_output
	[ "$status" -ne 0 ]
	[ "${#lines[@]}" -eq 1 ]
	not_mounted "$MNT"
}

@test "a store of an unknown format version is refused with a clear message" {
	mount_pfs
	echo hello >"$MNT/a.txt"
	unmount_pfs
	orig=$(get_store_format)
	[ "$orig" -ge 1 ]
	set_store_format $((orig + 1000))
	run pfs "$STORE" "$MNT" -o "logfile=$LOG,pidfile=$PIDFILE"
	show_output
	[ "$status" -ne 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ ${output,,} == *version* ]]
	not_mounted "$MNT"
	# put the version back: the refusal did not damage the store
	set_store_format "$orig"
	mount_pfs
	[ "$(cat "$MNT/a.txt")" = hello ]
}

# make_old_store VERSION — turn the unmounted $STORE into one an older
# build made: format VERSION, no "store" record (Debian's python3-lmdb).
make_old_store() {
	python3 - "$STORE/index" "$1" <<'PY'
import lmdb, struct, sys
env = lmdb.open(sys.argv[1], max_dbs=16, map_size=1 << 30)
meta = env.open_db(b"meta")
with env.begin(write=True, db=meta) as t:
    assert t.delete(b"store"), "no store record to remove"
    t.put(b"format", struct.pack("<I", int(sys.argv[2])))
env.close()
PY
}

store_record() {
	python3 - "$STORE/index" <<'PY'
import lmdb, sys
env = lmdb.open(sys.argv[1], max_dbs=16, map_size=1 << 30, readonly=True, lock=False)
with env.begin(db=env.open_db(b"meta", create=False)) as t:
    v = t.get(b"store")
print(repr(v))
PY
}

@test "stores of formats 1 and 2 are upgraded to 5 at their first read-write mount; read-only opens leave them" {
	local_only "stores of formats 1 and 2 are local stores (RADOS stores began with format 3)"
	local v
	mount_pfs
	echo hello >"$MNT/a.txt"
	mkdir "$MNT/d"
	unmount_pfs
	[ "$(get_store_format)" = 5 ]
	[ "$(store_record)" = "b'kind=local\\n'" ]
	for v in 1 2; do
		make_old_store "$v"
		[ "$(get_store_format)" = "$v" ]
		[ "$(store_record)" = None ]
		run "$PCTL" cat "$STORE" /a.txt
		[ "$status" -eq 0 ]
		[ "$output" = hello ]
		[ "$(get_store_format)" = "$v" ]          # a read-only open changed nothing
		mount_pfs
		[ "$(cat "$MNT/a.txt")" = hello ]
		[ -d "$MNT/d" ]
		unmount_pfs
		[ "$(get_store_format)" = 5 ]
		[ "$(store_record)" = "b'kind=local\\n'" ]
		grep -q "store format $v upgraded to 5" "$LOG"
	done
}

@test "a store already mounted is refused by a second daemon" {
	mount_pfs
	mkdir "$TMP/mnt2"
	run pfs "$STORE" "$TMP/mnt2" -o "logfile=$TMP/second.log,pidfile=$TMP/second.pid"
	show_output
	if is_mounted "$TMP/mnt2"; then
		fusermount3 -u "$TMP/mnt2"
		echo "# a second daemon mounted the same store" >&2
		false
	fi
	[ "$status" -ne 0 ]
	[ "${#lines[@]}" -eq 1 ]
	# the first mount is unharmed
	echo ok >"$MNT/still"
	[ "$(cat "$MNT/still")" = ok ]
}

@test "-o ro: reads work, every kind of write is EROFS" {
	mount_pfs
	gen_csv "$MNT/d.csv" 100
	mkdir "$MNT/dir"
	cp "$MNT/d.csv" "$TWIN/d.csv"
	unmount_pfs
	mount_pfs ro
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	[ "$(cat "$MNT/d.csv@rows=0:2")" = "$(slice_lines "$TWIN/d.csv" 0 2)" ]
	expect_errno EROFS open-w "$MNT/d.csv"
	expect_errno EROFS write "$MNT/new.csv" "a,b"
	expect_errno EROFS append "$MNT/d.csv" "1,2"
	expect_errno EROFS truncate "$MNT/d.csv" 10
	expect_errno EROFS mkdir "$MNT/dir2"
	expect_errno EROFS rmdir "$MNT/dir"
	expect_errno EROFS unlink "$MNT/d.csv"
	expect_errno EROFS rename "$MNT/d.csv" "$MNT/e.csv"
	expect_errno EROFS link "$MNT/d.csv" "$MNT/e.csv"
	expect_errno EROFS symlink d.csv "$MNT/s"
	expect_errno EROFS setxattr "$MNT/d.csv" user.color blue
	expect_errno EROFS open-w "$MNT/d.csv@rows=1:2"
	run chmod 600 "$MNT/d.csv"
	[ "$status" -ne 0 ]
	same_file "$MNT/d.csv" "$TWIN/d.csv"
}

@test "remount keeps files, directories, links, modes and xattrs" {
	mount_pfs
	for d in "$MNT" "$TWIN"; do
		mkdir -p "$d/a/b"
		gen_csv "$d/a/events.csv" 5000
		gen_bin "$d/a/b/blob.bin" 300000 7
		echo small >"$d/small.txt"
		: >"$d/empty"
		ln -s a/events.csv "$d/link"
		ln "$d/small.txt" "$d/a/hard.txt"
		chmod 640 "$d/small.txt"
		chmod 750 "$d/a/b"
		touch -d '2001-02-03 04:05:06' "$d/a/events.csv"
	done
	setfattr -n user.color -v blue "$MNT/a/events.csv"
	setfattr -n user.payload.header -v 2 "$MNT/a/events.csv"
	ino=$(stat -c %i "$MNT/a/events.csv")
	same_tree
	python3 "$E2E/manifest.py" "$MNT" --times >"$TMP/before"
	unmount_pfs
	mount_pfs
	same_tree
	python3 "$E2E/manifest.py" "$MNT" --times | diff "$TMP/before" -
	[ "$(stat -c %Y "$MNT/a/events.csv")" = "$(stat -c %Y "$TWIN/a/events.csv")" ]
	[ "$(xget "$MNT/a/events.csv" user.color)" = blue ]
	[ "$(xget "$MNT/a/events.csv" user.payload.header)" = 2 ]
	[ "$(stat -c %i "$MNT/a/events.csv")" = "$ino" ]
	same_file "$MNT/.by-id/$ino" "$TWIN/a/events.csv"
}

@test "-o fragment_size and cache_size accept K and M suffixes" {
	mount_pfs fragment_size=64K,cache_size=8M
	gen_csv "$MNT/d.csv" 20000
	gen_csv "$TWIN/d.csv" 20000
	same_file "$MNT/d.csv" "$TWIN/d.csv"
	# ~1 MB in 64 KiB fragments
	[ "$(xget "$MNT/d.csv" user.payload.fragments)" -ge 10 ]
}

@test "a bad option value is an error and nothing is mounted" {
	run pfs "$STORE" "$MNT" -o "logfile=$LOG,pidfile=$PIDFILE,fragment_size=lots"
	show_output
	[ "$status" -ne 0 ]
	[ -n "$output" ]
	not_mounted "$MNT"
	run pfs "$STORE" "$MNT" -o "logfile=$LOG,pidfile=$PIDFILE,cache_size=-5"
	show_output
	[ "$status" -ne 0 ]
	not_mounted "$MNT"
}

@test "-f runs in the foreground and exits 0 at unmount" {
	"${SAN_ENV[@]}" "$PFS" "$STORE" "$MNT" -f -o "logfile=$LOG" 3>&- &
	pid=$!
	BG_PIDS+=("$pid")
	# -f gives no readiness signal: poll (bounded) for the live mount
	for ((i = 0; i < 200; i++)); do
		mountpoint -q "$MNT" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	mountpoint -q "$MNT"
	kill -0 "$pid"            # still running: it did not daemonize
	echo hi >"$MNT/f"
	[ "$(cat "$MNT/f")" = hi ]
	fusermount3 -u "$MNT"
	rc=0
	wait "$pid" || rc=$?
	BG_PIDS=()
	[ "$rc" -eq 0 ]
	not_mounted "$MNT"
}

# as_nobody — the permission checks other users get, on the mount and on
# the ext4 twin alike (setpriv from util-linux).
perm_checks() {
	chmod 755 "$TMP"
	in_both 'echo data > pub && chmod 644 pub && echo s > priv && chmod 600 priv && mkdir ro && chmod 555 ro && mkdir open && chmod 777 open && echo w > open/w && chmod 666 open/w'
	in_both 'setpriv --reuid=65534 --regid=65534 --clear-groups bash -c "cat pub; cat priv; echo x >> pub; touch ro/new; ls ro; echo x > new; echo y >> open/w; cat open/w; echo z > open/mine; chmod 600 pub; ls -l open/mine | cut -c1-10" 2>&1; echo $?'
	same_tree
}

@test "allow_other with default_permissions: other users get ext4's permission checks" {
	mount_pfs allow_other,default_permissions
	grep " $MNT " /proc/mounts | grep -q allow_other
	grep " $MNT " /proc/mounts | grep -q default_permissions
	perm_checks
}

@test "allow_other alone: the daemon enforces permissions like ext4" {
	mount_pfs allow_other
	perm_checks
}

# ms_since T0 — milliseconds since T0 (from date +%s%N).
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# hold_lock SECONDS — a background process holds the store's lock (an
# exclusive flock of the directory) without a busy mark or a mount: to an
# opener it looks like a daemon whose mount is gone and that is still
# closing the store. Returns once it holds it; killing it lets go.
hold_lock() {
	rm -f "$TMP/held"
	"$PY" -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[2]))' "$STORE" "$1" "$TMP/held" 3>&- &
	BG_PIDS+=($!)
	local i
	for ((i = 0; i < 500; i++)); do
		[ -e "$TMP/held" ] && return 0
		sleep 0.01
	done
	echo "# the holder never took the store's lock" >&2
	return 1
}

@test "remount right after unmount: fusermount3 -u MNT && payloadfs STORE MNT, 40 times" {
	local i cur old=() waited
	mount_pfs
	# memory objects make the old daemon's exit longer (it empties them)
	mkdir "$MNT/mem"
	setfattr -n user.payload.storage -v memory "$MNT/mem"
	for ((i = 0; i < 40; i++)); do
		echo "$i" >"$MNT/f$i"
		echo "$i" >"$MNT/mem/m$i"
		old+=("$DAEMON_PID")
		# as a script does it: the old daemon may still hold the store
		fusermount3 -u "$MNT"
		with_san_log "$PFS" "$STORE" "$MNT" -o "logfile=$LOG,pidfile=$PIDFILE" 3>&-
		DAEMON_PID=$(cat "$PIDFILE")
		[ "$DAEMON_PID" != "${old[-1]}" ]
		mountpoint -q "$MNT"
	done
	for ((i = 0; i < 40; i++)); do
		[ "$(cat "$MNT/f$i")" = "$i" ]
	done
	waited=$(grep -c 'exiting: waiting' "$LOG" || true)
	echo "# $waited of 40 remounts waited for the old daemon" >&3
	# the old daemons all exited, and none removed the new one's pidfile
	[ "$(cat "$PIDFILE")" = "$DAEMON_PID" ]
	cur=$DAEMON_PID
	for i in "${old[@]}"; do
		DAEMON_PID=$i
		wait_daemon_exit
	done
	DAEMON_PID=$cur
	daemon_alive
}

@test "a store held by an exiting process is waited for, a bounded time; a live mount is refused at once" {
	local t0 ms
	# released after 1 s: the mount waits for it, says so, and goes on
	hold_lock 1
	t0=$(date +%s%N)
	mount_pfs
	ms=$(ms_since "$t0")
	echo "# the mount waited $ms ms" >&3
	[ "$ms" -ge 300 ]
	grep -q 'exiting: waiting for it' "$LOG"
	echo x >"$MNT/x"
	unmount_pfs
	# never released: the wait ends at the bound, with the reason on stderr
	hold_lock 60
	t0=$(date +%s%N)
	PAYLOADFS_LOCK_WAIT_MS=1000 run pfs "$STORE" "$MNT"
	ms=$(ms_since "$t0")
	show_output
	[ "$status" -ne 0 ]
	[[ ${lines[0]} == *"exiting: waiting for it (1 s at most)" ]]
	[[ ${lines[1]} == *"store is in use by another payloadfs daemon or payloadctl" ]]
	[ "$ms" -ge 1000 ]
	[ "$ms" -lt 10000 ]
	not_mounted "$MNT"
	kill "${BG_PIDS[-1]}"
	wait "${BG_PIDS[-1]}" || true
	# payloadctl waits the same way
	hold_lock 1
	run "$PCTL" gc "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *"exiting: waiting for it"* ]]
	# a live mount is refused at once, however long the bound
	mount_pfs
	mkdir "$TMP/mnt2"
	t0=$(date +%s%N)
	PAYLOADFS_LOCK_WAIT_MS=30000 run pfs "$STORE" "$TMP/mnt2"
	ms=$(ms_since "$t0")
	show_output
	[ "$status" -ne 0 ]
	[ "$ms" -lt 5000 ]
	[[ $output != *waiting* ]]
	not_mounted "$TMP/mnt2"
	PAYLOADFS_LOCK_WAIT_MS=30000 run "$PCTL" gc "$STORE"
	[ "$status" -eq 2 ]
	[[ $output == *"the store is in use"* ]]
	[[ $output != *waiting* ]]
	[ "$(cat "$MNT/x")" = x ]
}
