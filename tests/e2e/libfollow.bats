#!/usr/bin/env bats
# libfollow.bats — following a growing object with the library
# (payload_follow_*, lib/follow.c) beside a real mount, through
# tests/lib/pltool's tail command: a writer that appends through the mount
# and fsyncs after each row (one open descriptor: fsync commits) is
# followed row by row by a read-only library handle; a rewrite and a
# truncate through the mount end the follower with ESTALE, an unlink with
# ENOENT, each after every row it had returned.

load helpers

PLTOOL=$PAYLOADFS_BUILD/tests/pltool

setup() {
	pfs_init
	mount_pfs
	printf 'ts,val\n' >"$MNT/log.csv"
}
teardown() { pfs_teardown; }

# append_rows FILE N: N rows, each written and fsynced on one descriptor
append_rows() {
	python3 - "$1" "$2" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for i in range(int(sys.argv[2])):
    os.write(fd, b"%d,%s\n" % (i, b"v" * (i % 50)))
    os.fsync(fd)
    time.sleep(0.005)
os.close(fd)
PY
}

# wait_rc PID RC: PID (a background job of this shell) exits with RC
wait_rc() {
	local rc=0
	wait "$1" || rc=$?
	[ "$rc" -eq "$2" ] || { echo "exit status $rc, expected $2"; cat "$TMP/err"; return 1; }
}

# wait_lines FILE N: until FILE has N lines (5 s at most)
wait_lines() {
	for _ in $(seq 500); do [ "$(wc -l <"$1")" -ge "$2" ] && return 0; sleep 0.01; done
	return 1
}

@test "a library follower sees every row a mount writer appends and fsyncs" {
	local pid
	"$PLTOOL" tail "$STORE" log.csv 0 81 >"$TMP/got" 2>"$TMP/err" &
	pid=$!
	BG_PIDS+=("$pid")
	append_rows "$MNT/log.csv" 80
	wait_rc "$pid" 0
	same_file "$TMP/got" "$MNT/log.csv"
}

@test "the same with polling, in bytes mode, from the end" {
	local pid
	"$PLTOOL" tail "$STORE" log.csv end 40 poll >"$TMP/got" 2>"$TMP/err" &
	pid=$!
	BG_PIDS+=("$pid")
	sleep 0.2   # its open: from the end, the header is not followed
	append_rows "$MNT/log.csv" 40
	wait_rc "$pid" 0
	tail -n +2 "$MNT/log.csv" >"$TMP/want"
	same_file "$TMP/got" "$TMP/want"
}

# follow_until_error CHANGE...: follow log.csv, append 5 rows, run CHANGE,
# expect the follower to fail; its output must be the 6 rows it had.
follow_until_error() {
	append_rows "$MNT/log.csv" 5
	cp "$MNT/log.csv" "$TMP/want"
	"$PLTOOL" tail "$STORE" log.csv 0 -1 >"$TMP/got" 2>"$TMP/err" &
	FPID=$!
	BG_PIDS+=("$FPID")
	wait_lines "$TMP/got" 6
	"$@"
}

@test "a rewrite through the mount ends the follower with ESTALE, keeping its rows" {
	follow_until_error sh -c "printf 'new,1\n' >'$MNT/log.csv'"
	wait_rc "$FPID" 1
	same_file "$TMP/got" "$TMP/want"
	run cat "$TMP/err"
	[[ $output == *"log.csv: version "*" does not keep the bytes of version "*"rewritten or truncated (returned up to byte $(stat -c %s "$TMP/want"))"* ]]
}

@test "a truncate through the mount ends the follower with ESTALE" {
	follow_until_error truncate -s 10 "$MNT/log.csv"
	wait_rc "$FPID" 1
	same_file "$TMP/got" "$TMP/want"
	run cat "$TMP/err"
	[[ $output == *"rewritten or truncated"*"Stale"* || $output == *"rewritten or truncated"*"not an append"* ]]
}

@test "an unlink through the mount ends the follower with ENOENT" {
	follow_until_error rm "$MNT/log.csv"
	wait_rc "$FPID" 1
	same_file "$TMP/got" "$TMP/want"
	run cat "$TMP/err"
	[[ $output == *"log.csv: it was unlinked or renamed"* ]]
}
