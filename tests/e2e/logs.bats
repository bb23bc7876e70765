#!/usr/bin/env bats
# logs.bats — the daemon's log: -o log_level=error|warn|info|debug filters
# what is written; in the foreground (-f) it goes to stderr, daemonized to
# syslog (facility daemon) with the syslog level as priority; an invalid
# level is refused with a clear error; each error line names the object
# (or fragment), the operation and the errno.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

# A store with big.txt (a fragment of which is damaged: reading it is EIO
# and logs errors) and ok.txt.
damaged_store() {
	mount_pfs
	gen_lines "$MNT/big.txt" 60000
	echo fine >"$MNT/ok.txt"
	unmount_pfs
	local id
	id=$(store_images | head -n 1)
	[ -n "$id" ]
	image_flip "$id"
}

# fg_mount LEVEL — payloadfs -f -o log_level=LEVEL in the background, its
# stderr in $TMP/fg.LEVEL; returns once the mount is live.
fg_mount() {
	local i
	"${SAN_ENV[@]}" "$PFS" "$STORE" "$MNT" -f -o "log_level=$1" 2>"$TMP/fg.$1" 3>&- &
	DAEMON_PID=$!
	for ((i = 0; i < 1000; i++)); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.01
	done
	echo "# payloadfs -f -o log_level=$1 did not mount:" >&2
	cat "$TMP/fg.$1" >&2
	return 1
}

# What makes a line at each level: an EIO read (error), a refused commit
# of a fixed:8 object of 5 bytes (info, and warning when it is discarded
# at release), a commit (debug), the mount itself (info).
log_workload() {
	run cat "$MNT/big.txt"
	[ "$status" -ne 0 ]
	touch "$MNT/fx"
	setfattr -n user.payload.format -v fixed:8 "$MNT/fx"
	# close(2) fails with EINVAL: 5 bytes are not whole 8-byte records
	run python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.write(fd, b"12345"); os.close(fd)' "$MNT/fx"
	[ "$status" -ne 0 ]
	[[ $output == *"Invalid argument"* ]]
	echo more >>"$MNT/ok.txt"
}

@test "foreground: log_level filters stderr by level; error lines name object, operation and errno" {
	damaged_store
	local lvl
	for lvl in error warn info debug; do
		fg_mount "$lvl"
		log_workload
		unmount_pfs
	done
	# error: errors only
	grep -q '^payloadfs: error: ' "$TMP/fg.error"
	run grep -v '^payloadfs: error: ' "$TMP/fg.error"
	[ -z "$output" ]
	# warn: errors and warnings
	grep -q '^payloadfs: error: ' "$TMP/fg.warn"
	grep -q '^payloadfs: warning: object [0-9]*: discarding writes' "$TMP/fg.warn"
	run grep -Ev '^payloadfs: (error|warning): ' "$TMP/fg.warn"
	[ -z "$output" ]
	# info (the default): and info lines, no debug
	grep -q '^payloadfs: info: serving ' "$TMP/fg.info"
	grep -q '^payloadfs: info: object [0-9]*: size 5 is not a multiple' "$TMP/fg.info"
	grep -q '^payloadfs: warning: ' "$TMP/fg.info"
	run grep -c '^payloadfs: debug: ' "$TMP/fg.info"
	[ "$output" = 0 ]
	# debug: everything, a commit's time among it
	grep -q '^payloadfs: debug: object [0-9]*: committed in [0-9.]* ms' "$TMP/fg.debug"
	grep -q '^payloadfs: error: ' "$TMP/fg.debug"
	# every error line: "object N ..." or "fragment ID ...", what was
	# done, and the errno name at the end
	run grep -hv -E '^payloadfs: error: (object [0-9]+|fragment [0-9a-f]{16})[: ].*(read|commit).*\(E[A-Z0-9]+\)$' \
		<(grep -h '^payloadfs: error: ' "$TMP"/fg.*)
	show_output
	[ -z "$output" ]
}

@test "an invalid log_level is refused with a clear error and nothing is mounted" {
	run pfs "$STORE" "$MNT" -o log_level=loud
	[ "$status" -eq 1 ]
	[ "$output" = "payloadfs: log_level: must be error, warn, info or debug" ]
	not_mounted "$MNT"
	run pfs "$STORE" "$MNT" -f -o log_level=
	[ "$status" -eq 1 ]
	[ "$output" = "payloadfs: log_level: must be error, warn, info or debug" ]
	not_mounted "$MNT"
}

# Daemonized, the log goes to syslog: in a private mount namespace a
# datagram socket of this test is bind-mounted on /dev/log (made there on
# a tmpfs over /dev, with /dev/fuse and /dev/null bound back), and it
# receives what the daemon logs, "<PRI>...payloadfs[PID]: message".
@test "daemonized: the log goes to syslog (facility daemon, syslog levels), filtered by log_level" {
	command -v unshare >/dev/null
	damaged_store
	mkdir "$TMP/realdev"
	run --separate-stderr "${SAN_ENV[@]}" STORE="$STORE" MNT="$MNT" TMP="$TMP" PFS="$PFS" PY="$PY" \
		unshare -m --propagation private bash -c '
set -u
mount --bind /dev "$TMP/realdev" || exit 90
mount -t tmpfs tmpfs /dev || exit 91
for d in null zero random urandom fuse; do touch /dev/$d && mount --bind "$TMP/realdev/$d" /dev/$d || exit 92; done
"$PY" -c "
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(\"/dev/log\")
s.settimeout(20)
open(sys.argv[1], \"w\").close()
with open(sys.argv[2], \"a\") as out:
    while True:
        m = s.recv(4096).decode()
        out.write(m.rstrip(chr(10)) + chr(10)); out.flush()
        if \"unmounted\" in m or \"STOP\" in m:
            break
" "$TMP/ready" "$TMP/syslog" &
lp=$!
for i in $(seq 500); do [ -e "$TMP/ready" ] && break; sleep 0.01; done
for lvl in warn info; do
	"$PFS" "$STORE" "$MNT" -o log_level=$lvl,pidfile=$TMP/pid || exit 93
	cat "$MNT/big.txt" >/dev/null 2>&1
	echo x >>"$MNT/ok.txt"
	pid=$(cat "$TMP/pid")
	umount "$MNT"
	for i in $(seq 1000); do kill -0 $pid 2>/dev/null || break; sleep 0.01; done
	echo "== $lvl done" >>"$TMP/syslog"
done
wait $lp
cat "$TMP/syslog"'
	show_output
	[ "$status" -eq 0 ]
	local warn info
	warn=$(sed -n '1,/^== warn done/p' <<<"$output")
	info=$(sed -n '/^== warn done/,/^== info done/p' <<<"$output")
	# <27> = daemon.err: the damaged read's error, with the daemon's pid
	[[ $warn =~ \<27\>.*payloadfs\[[0-9]+\]:\ fragment\ [0-9a-f]{16}.*read.*\(EIO\) ]]
	# log_level=warn: no daemon.info (<30>) line
	[[ $warn != *"<30>"* ]]
	# log_level=info: <30> = daemon.info, the serving and unmounted lines
	[[ $info =~ \<30\>.*payloadfs\[[0-9]+\]:\ serving\  ]]
	[[ $info =~ \<30\>.*payloadfs\[[0-9]+\]:\ unmounted\  ]]
	# the stderr format is not used there
	[[ $output != *"payloadfs: info:"* ]]
}
