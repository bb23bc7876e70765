#!/usr/bin/env bats
# smallfile.bats — small new files (issue 13 section 3): what a user sees of
# a file between its create and its first close (the name is pending: in
# this daemon it exists for everyone, its content empty; a crash loses it;
# index/ns.c P1-P6), O_EXCL, rename and fsync before the close; a close that
# nobody else has cached does not wait for invalidation notices (ops.c
# (3c)), one that somebody has cached does and shows the new size.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

@test "a created, unclosed file is listed by ls for others and opens by name; O_EXCL loses" {
	mount_pfs
	python3 - "$MNT" <<'EOF'
import errno, os, subprocess, sys
d = sys.argv[1]
p = d + "/new.txt"
w = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(w, b"hello\n")
# another process: ls lists it (stat and reads of the
# writer's node show its staged size and bytes: the kernel keeps one
# inode per node, fnode.h fn_writer_size)
ls = subprocess.run(["ls", d], capture_output=True, text=True, check=True).stdout.split()
assert "new.txt" in ls, "ls before close: %r" % ls
# a second O_EXCL create of the name fails, as it does anywhere
try:
    os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    raise SystemExit("a second O_EXCL create succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, e
# a second open of the new file by its name works
r = os.open(p, os.O_RDONLY)
os.close(r)
os.close(w)
assert open(p, "rb").read() == b"hello\n"
EOF
}

@test "O_EXCL creates of one name racing: exactly one wins" {
	mount_pfs
	python3 - "$MNT" <<'EOF'
import os, sys
d = sys.argv[1]
for round in range(20):
    p = "%s/race%d" % (d, round)
    pids = []
    for k in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, b"writer %d\n" % k)
                os.close(fd)
                os._exit(0)
            except FileExistsError:
                os._exit(1)
        pids.append(pid)
    wins = sum(1 for pid in pids if os.waitpid(pid, 0)[1] == 0)
    assert wins == 1, "round %d: %d O_EXCL creates won" % (round, wins)
    body = open(p, "rb").read()
    assert body.startswith(b"writer ") and body.endswith(b"\n"), body
EOF
}

@test "rename and unlink of a file before its first close" {
	mount_pfs
	python3 - "$MNT" <<'EOF'
import os, sys
d = sys.argv[1]
w = os.open(d + "/a", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(w, b"renamed before close\n")
os.rename(d + "/a", d + "/b")
assert not os.path.exists(d + "/a")
assert os.stat(d + "/b").st_size in (0, 21)
os.close(w)
assert open(d + "/b", "rb").read() == b"renamed before close\n"
assert sorted(os.listdir(d)) == ["b"], os.listdir(d)
# unlinked before its close: the fd still writes, nothing stays
w = os.open(d + "/c", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.unlink(d + "/c")
os.write(w, b"gone\n")
os.close(w)
assert sorted(os.listdir(d)) == ["b"], os.listdir(d)
EOF
}

@test "fsync before close commits a new file; a daemon killed before the close keeps it and loses the unclosed one's pending name" {
	mount_pfs
	"$PY" - "$MNT/kept.txt" "$TMP/fsynced" <<'EOF' &
import os, sys, time
w = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(w, b"made durable by fsync\n")
os.fsync(w)
# and one created and written, neither closed nor fsynced
p = os.open(os.path.dirname(sys.argv[1]) + "/pending.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(p, b"never committed\n")
open(sys.argv[2], "w").close()
time.sleep(600)          # never closes: the daemon is killed first
EOF
	BG_PIDS=($!)
	for i in $(seq 100); do [ -e "$TMP/fsynced" ] && break; sleep 0.1; done
	[ -e "$TMP/fsynced" ]
	crash_daemon
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	mount_pfs
	[ "$(cat "$MNT/kept.txt")" = "made durable by fsync" ]
	if rados_mode; then
		# a RADOS store commits a create at once: the name stays, empty
		[ "$(stat -c %s "$MNT/pending.txt")" -eq 0 ]
	else
		# the file never closed was only a pending name (index/ns.c
		# P6): the crash loses that name, and nothing else
		run ls "$MNT"
		[ "$output" = "kept.txt" ]
	fi
}

# notify_waits — the .stats count of closes that waited for notices.
notify_waits() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["nodes"]["notify_waits"])' "$MNT/.stats"
}

@test "a close nobody else has cached does not wait for notices; a cached one does and stat shows the new size" {
	mount_pfs
	w0=$(notify_waits)
	python3 - "$MNT" <<'EOF'
import os, sys
for i in range(50):
    fd = os.open("%s/s%03d" % (sys.argv[1], i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"x" * 1024)
    os.close(fd)
EOF
	w1=$(notify_waits)
	echo "# waits: $w0 -> $w1"
	[ "$w1" -eq "$w0" ]
	[ "$(stat -c %s "$MNT/s007")" -eq 1024 ]
	# now cached (stat above): a rewrite's close waits, and another
	# process's stat right after the close shows the new size
	python3 - "$MNT/s007" <<'EOF'
import os, subprocess, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"y" * 100)
os.close(fd)
s = subprocess.run(["stat", "-c", "%s", sys.argv[1]], capture_output=True, text=True, check=True).stdout.strip()
assert s == "1124", "stat after close: %s" % s
EOF
	w2=$(notify_waits)
	echo "# waits: $w1 -> $w2"
	[ "$w2" -gt "$w1" ]
}

# index_txns — the .stats count of index write txns (one fdatasync each).
index_txns() { stat_field io.index_txns; }

@test "a create + 1 KiB write + close is one index txn; a create + close without a write one too" {
	local_only "a RADOS store does not defer creates (index/ns.c: its namespace goes through the log)"
	mount_pfs
	t0=$(index_txns)
	python3 - "$MNT" <<'EOF'
import os, sys
for i in range(20):
    fd = os.open("%s/w%02d" % (sys.argv[1], i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"x" * 1023 + b"\n")
    os.close(fd)
EOF
	t1=$(index_txns)
	python3 - "$MNT" <<'EOF'
import os, sys
for i in range(20):
    os.close(os.open("%s/e%02d" % (sys.argv[1], i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
EOF
	t2=$(index_txns)
	echo "# index txns: $t0 -> $t1 -> $t2"
	[ $((t1 - t0)) -eq 20 ]
	[ $((t2 - t1)) -eq 20 ]
	[ "$(stat -c %s "$MNT/w07")" -eq 1024 ]
	[ "$(stat -c %s "$MNT/e07")" -eq 0 ]
	unmount_pfs
	mount_pfs
	[ "$(stat -c %s "$MNT/w19")" -eq 1024 ]
	[ -e "$MNT/e19" ]
}

@test "a pending name: empty to others, not in the index for payloadctl; mkdir over it, rmdir of its parent, chmod, utimes, setxattr, link before its close" {
	local_only "a RADOS store does not defer creates (index/ns.c: its namespace goes through the log)"
	mount_pfs
	mkdir "$MNT/d"
	"$PY" - "$MNT" "$TMP" <<'EOF' &
import os, sys, time
d, t = sys.argv[1], sys.argv[2]
a = os.open(d + "/p.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
b = os.open(d + "/d/child", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
open(t + "/created", "w").close()
while not os.path.exists(t + "/go"):
    time.sleep(0.02)
os.write(a, b"hello\n")
os.close(a)
os.close(b)
open(t + "/closed", "w").close()
EOF
	BG_PIDS=($!)
	for i in $(seq 100); do [ -e "$TMP/created" ] && break; sleep 0.05; done
	[ -e "$TMP/created" ]
	# visible here as an empty regular file, to another process too
	[ "$(stat -c '%s %F' "$MNT/p.txt")" = "0 regular empty file" ]
	# the library in another process reads the index only: not there yet
	run "$PCTL" ls "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output != *p.txt* ]]
	run mkdir "$MNT/p.txt"
	[ "$status" -ne 0 ]
	[[ $output == *"File exists"* ]]
	run rmdir "$MNT/d"
	[ "$status" -ne 0 ]
	[[ $output == *"not empty"* ]]
	chmod 600 "$MNT/p.txt"
	touch -m -d "2001-02-03 04:05:06 UTC" "$MNT/p.txt"
	setfattr -n user.note -v kept "$MNT/p.txt"
	ln "$MNT/p.txt" "$MNT/hard"
	# a namespace change put the pending names in the index (ns.c P2)
	run "$PCTL" ls "$STORE"
	[[ $output == *p.txt* ]]
	touch "$TMP/go"
	for i in $(seq 100); do [ -e "$TMP/closed" ] && break; sleep 0.05; done
	[ -e "$TMP/closed" ]
	[ "$(cat "$MNT/p.txt")" = hello ]
	[ "$(cat "$MNT/hard")" = hello ]
	[ "$(stat -c %a "$MNT/p.txt")" = 600 ]
	[ "$(xget "$MNT/p.txt" user.note)" = kept ]
	[ -e "$MNT/d/child" ]
}

@test "a first close whose commit fails (ENOSPC) returns the error and keeps the new name, empty" {
	local_only "a RADOS store does not defer creates (index/ns.c: its namespace goes through the log)"
	mount_pfs
	unmount_pfs
	# call 1 is the mount's sweep; call 2 the close's commit (the create
	# writes no txn); call 3, the name alone after it, succeeds
	PAYLOADFS_FAULT=lmdb_commit:2:ENOSPC mount_pfs
	run "$PY" - "$MNT/n.txt" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"x" * 1024)
try:
    os.close(fd)
    print("close:OK")
except OSError as e:
    print("close:" + os.strerror(e.errno))
EOF
	[ "$output" = "close:No space left on device" ]
	[ "$(stat -c %s "$MNT/n.txt")" -eq 0 ]
	# the release after the failed close commits the name alone: it is
	# in the index (release comes after close returned: poll)
	for i in $(seq 50); do "$PCTL" ls "$STORE" | grep -q n.txt && break; sleep 0.1; done
	run "$PCTL" ls "$STORE"
	[[ $output == *n.txt* ]]
	unmount_pfs
	mount_pfs
	[ "$(stat -c %s "$MNT/n.txt")" -eq 0 ]
	grep -q "fault point lmdb_commit fired" "$LOG"
}
