#!/usr/bin/env bats
# rados.bats — stores on Ceph RADOS (docs/rados.md) on real mounts against a
# real throwaway cluster (tests/rados/cluster.sh: one monitor, one memstore
# OSD on 127.0.0.1; run-all.sh starts one for the run, else this file
# starts its own and stops it by PID): a writer and two followers as
# separate daemons with separate STORE directories; follower lag; a second
# writer refused; takeover after kill -9 of the writer with nothing
# acknowledged lost; the OSD and the monitor stopped mid-commit; deletion
# of images held by a follower's open file; a follower that was down
# catching up (from the log, and from a base); payloadctl on RADOS stores
# (gc keeping what a lagging follower may read);
# init's errors. Each test uses a namespace of its own.

load helpers

setup_file() {
	if [ -z "${PFS_CEPH_CONF:-}" ]; then
		OWN_CLUSTER=$(mktemp -d "${TMPDIR:-/tmp}/pfs-ceph.XXXXXX")
		"$BATS_TEST_DIRNAME/../rados/cluster.sh" start "$OWN_CLUSTER" >&3 2>&1
		eval "$("$BATS_TEST_DIRNAME/../rados/cluster.sh" env "$OWN_CLUSTER")"
		export OWN_CLUSTER PFS_CEPH_CONF PFS_RADOS_POOL PFS_RADOS_CLUSTER PFS_RADOS_CLUSTER_SH
	fi
}

teardown_file() {
	if [ -n "${OWN_CLUSTER:-}" ]; then
		"$BATS_TEST_DIRNAME/../rados/cluster.sh" stop "$OWN_CLUSTER"
		rm -rf --one-file-system "$OWN_CLUSTER"
	fi
}

setup() {
	PFS_E2E_RADOS=0 pfs_init        # this file makes its own RADOS stores
	POOL=$PFS_RADOS_POOL
	NS=t$(date +%s%N)$RANDOM
	FOLLOWERS=()
	STOPPED_PID=
}

teardown() {
	local n p
	# a follower a test stopped (SIGSTOP) must run to be unmounted
	[ -z "${STOPPED_PID:-}" ] || kill -CONT "$STOPPED_PID" 2>/dev/null || true
	for p in "${BG_PIDS[@]:-}"; do       # holders first: they keep mounts busy
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	BG_PIDS=()
	# the cluster's daemons back up if a test stopped one
	"$PFS_RADOS_CLUSTER_SH" start-osd "$PFS_RADOS_CLUSTER" >/dev/null 2>&1 || true
	"$PFS_RADOS_CLUSTER_SH" start-mon "$PFS_RADOS_CLUSTER" >/dev/null 2>&1 || true
	for n in "${FOLLOWERS[@]:-}"; do
		[ -n "$n" ] && funmount "$n"
	done
	pfs_teardown
}

# rinit ROLE STORE [ARGS...] — payloadctl init --rados|--follow POOL/NS STORE.
rinit() {
	local role=$1 store=$2
	shift 2
	"$PCTL" init "--$role" "$POOL/$NS" --ceph-conf "$PFS_CEPH_CONF" "$@" "$store"
}

# fmount NAME [OPTS] — mount $TMP/NAME.store on $TMP/NAME.mnt (its own log
# and pidfile); the test's teardown unmounts it.
fmount() {
	local n=$1
	mkdir -p "$TMP/$n.mnt"
	with_san_log "$PFS" "$TMP/$n.store" "$TMP/$n.mnt" \
		-o "logfile=$TMP/$n.log,pidfile=$TMP/$n.pid${2:+,$2}" 3>&-
	FOLLOWERS+=("$n")
}

funmount() {
	local n=$1 pid i
	pid=$(cat "$TMP/$n.pid" 2>/dev/null) || pid=
	if is_mounted "$TMP/$n.mnt"; then
		fusermount3 -u "$TMP/$n.mnt" || fusermount3 -uz "$TMP/$n.mnt" || true
	fi
	for ((i = 0; i < 1000 && ${#pid}; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
		sleep 0.01
	done
}

# wait_for SECONDS CMD... — poll (every 20 ms) until CMD succeeds.
wait_for() {
	local end=$((SECONDS + $1)) 
	shift
	while ! "$@" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.02
	done
}

# images — the fragment images of this test's store in the cluster.
# (an image is the object named by its id in 16 hex digits)
has_image() { rados --conf "$PFS_CEPH_CONF" -p "$POOL" -N "$NS" stat "$1" >/dev/null 2>&1; }

# The hex ids of an object's fragments (payloadctl stat -v).
frag_ids() {
	"$PCTL" stat -v "$1" "$2" | awk 'length($6) == 16 && $6 ~ /^[0-9a-f]+$/ { print $6 }'
}

@test "a writer and two followers: a CSV copied into the writer reads on both followers a moment later, views too; followers are read-only" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	rinit follow "$TMP/f2.store"
	mount_pfs
	fmount f1
	fmount f2
	gen_csv "$TWIN/e.csv" 30000 3
	cp "$TWIN/e.csv" "$MNT/e.csv"
	wait_for 10 cmp -s "$TWIN/e.csv" "$TMP/f1.mnt/e.csv"
	wait_for 10 cmp -s "$TWIN/e.csv" "$TMP/f2.mnt/e.csv"
	slice_lines "$TWIN/e.csv" 100 200 >"$TWIN/v.csv"
	cmp "$TWIN/v.csv" "$TMP/f1.mnt/e.csv@rows=100:200"
	cmp "$TWIN/v.csv" "$TMP/f2.mnt/e.csv@rows=100:200"
	[ "$(xget "$TMP/f1.mnt/e.csv" user.payload.rows)" = "$(xget "$MNT/e.csv" user.payload.rows)" ]
	# a rename, a mkdir, an xattr and an unlink reach them too
	mkdir "$MNT/d"
	mv "$MNT/e.csv" "$MNT/d/e2.csv"
	setfattr -n user.tag -v blue "$MNT/d/e2.csv"
	wait_for 10 test -f "$TMP/f1.mnt/d/e2.csv"
	wait_for 10 test ! -e "$TMP/f1.mnt/e.csv"
	[ "$(xget "$TMP/f1.mnt/d/e2.csv" user.tag)" = blue ]
	# every change on a follower is EROFS
	expect_errno EROFS write "$TMP/f1.mnt/new.csv" x
	expect_errno EROFS mkdir "$TMP/f1.mnt/dd"
	expect_errno EROFS unlink "$TMP/f1.mnt/d/e2.csv"
	expect_errno EROFS setxattr "$TMP/f1.mnt/d/e2.csv" user.k v
	rm "$MNT/d/e2.csv"
	wait_for 10 test ! -e "$TMP/f2.mnt/d/e2.csv"
}

@test "a second writer of the same RADOS store is refused with one line naming the holder" {
	rinit rados "$STORE"
	mount_pfs
	run rinit rados "$TMP/w2.store" --takeover --wait 1
	show_output
	[ "$status" -ne 0 ]
	[[ $output == *"$(hostname)"* ]]
	[ ! -e "$TMP/w2.store/index" ]
	echo still >"$MNT/a.txt"
	[ "$(cat "$MNT/a.txt")" = still ]
}

@test "kill -9 of the writer: a takeover from another STORE finds every acknowledged file" {
	rinit rados "$STORE"
	mount_pfs
	local i
	for ((i = 0; i < 40; i++)); do
		gen_lines "$MNT/f$i.txt" $((i * 50 + 1)) "$i"
		gen_lines "$TWIN/f$i.txt" $((i * 50 + 1)) "$i"
	done
	kill -KILL "$DAEMON_PID"
	fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"
	wait_daemon_exit
	rinit rados "$TMP/w2.store" --takeover --force
	fmount w2
	for ((i = 0; i < 40; i++)); do
		cmp "$TWIN/f$i.txt" "$TMP/w2.mnt/f$i.txt"
	done
	# the new writer carries on
	echo after >"$TMP/w2.mnt/after.txt"
	[ "$(cat "$TMP/w2.mnt/after.txt")" = after ]
}

@test "the OSD stopped mid-commit: close fails within rados_timeout, the old version stays and reads on; commits work again after it is back" {
	rinit rados "$STORE"
	mount_pfs rados_timeout=3
	echo v1 >"$MNT/a.txt"
	gen_lines "$MNT/b.txt" 2000 4
	cat "$MNT/b.txt" >/dev/null          # in the caches now
	"$PFS_RADOS_CLUSTER_SH" stop-osd "$PFS_RADOS_CLUSTER"
	run timeout 30 python3 -c '
import os, sys, time
t = time.monotonic()
try:
    with open(sys.argv[1], "w") as f: f.write("v2\n")
    print("closed OK")
except OSError as e:
    print("close:", os.strerror(e.errno))
print("within 20 s" if time.monotonic() - t < 20 else "took %.1f s" % (time.monotonic() - t))' "$MNT/a.txt"
	show_output
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "close: Input/output error" || ${lines[0]} == "close: Connection timed out" ]]
	[ "${lines[1]}" = "within 20 s" ]
	[ "$(cat "$MNT/a.txt")" = v1 ]
	gen_lines "$TWIN/b.txt" 2000 4
	cmp "$TWIN/b.txt" "$MNT/b.txt"
	"$PFS_RADOS_CLUSTER_SH" start-osd "$PFS_RADOS_CLUSTER"
	wait_for 60 bash -c "echo v3 >'$MNT/a.txt'"
	[ "$(cat "$MNT/a.txt")" = v3 ]
	echo v4 >"$MNT/c.txt"
	[ "$(cat "$MNT/c.txt")" = v4 ]
}

@test "the monitor stopped and restarted: commits end within rados_timeout either way and work once it is back" {
	rinit rados "$STORE"
	mount_pfs rados_timeout=3
	echo v1 >"$MNT/a.txt"
	"$PFS_RADOS_CLUSTER_SH" stop-mon "$PFS_RADOS_CLUSTER"
	run timeout 30 python3 -c '
import os, sys, time
t = time.monotonic()
try:
    with open(sys.argv[1], "w") as f: f.write("v2\n")
    print("closed OK")
except OSError as e:
    print("close:", os.strerror(e.errno))
print("within 20 s" if time.monotonic() - t < 20 else "took %.1f s" % (time.monotonic() - t))' "$MNT/a.txt"
	show_output
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "within 20 s" ]
	daemon_alive
	"$PFS_RADOS_CLUSTER_SH" start-mon "$PFS_RADOS_CLUSTER"
	wait_for 60 bash -c "echo v3 >'$MNT/a.txt'"
	[ "$(cat "$MNT/a.txt")" = v3 ]
}

@test "an image a follower's open file still reads is kept until it closes, then deleted" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	mount_pfs fragment_size=65536
	fmount f1
	gen_csv "$TWIN/big.csv" 40000 9
	cp "$TWIN/big.csv" "$MNT/big.csv"
	wait_for 10 cmp -s "$TWIN/big.csv" "$TMP/f1.mnt/big.csv"
	local old
	old=$(frag_ids "$TMP/f1.store" /big.csv)
	[ "$(echo "$old" | wc -l)" -gt 10 ]
	# a reader on the follower holds the version open, reads half
	mkfifo "$TMP/go"
	python3 -c '
import sys
f = open(sys.argv[1], "rb"); a = f.read(1000000)
open(sys.argv[3], "w").write("opened\n")
open(sys.argv[2]).read()        # wait for the go
b = f.read()
sys.exit(0 if a + b == open(sys.argv[4], "rb").read() else 1)' \
		"$TMP/f1.mnt/big.csv" "$TMP/go" "$TMP/opened" "$TWIN/big.csv" 3>&- &
	BG_PIDS+=($!)
	wait_for 10 test -s "$TMP/opened"
	gen_csv "$MNT/big.csv" 1000 10           # rewrite: every old image released
	wait_for 10 cmp -s "$MNT/big.csv" "$TMP/f1.mnt/big.csv"
	sleep 3                                  # several passes of the writer's horizon
	local id
	for id in $old; do
		has_image "$id"
	done
	echo go >"$TMP/go"
	wait "${BG_PIDS[0]}"                     # it read the old version whole
	BG_PIDS=()
	wait_for 20 bash -c "! rados --conf '$PFS_CEPH_CONF' -p '$POOL' -N '$NS' stat $(echo "$old" | head -n 1)"
}

@test "a follower that was down catches up, from the log and from a base after trimming" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	mount_pfs base_every=5
	fmount f1
	echo one >"$MNT/one.txt"
	wait_for 10 test -f "$TMP/f1.mnt/one.txt"
	funmount f1
	local i
	for ((i = 0; i < 30; i++)); do
		echo "$i" >"$MNT/n$i.txt"
	done
	sleep 2                                  # a base and a trim pass
	fmount f1
	for ((i = 0; i < 30; i++)); do
		[ "$(cat "$TMP/f1.mnt/n$i.txt")" = "$i" ]
	done
	[ "$(cat "$TMP/f1.mnt/one.txt")" = one ]
	# the log it had stopped at was trimmed: it loaded a base
	grep -q "the index was loaded from the base" "$TMP/f1.log"
}

@test "payloadctl ls, stat, cat, export and fsck work on RADOS writer and follower stores" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	mount_pfs
	gen_csv "$TWIN/e.csv" 5000 2
	cp "$TWIN/e.csv" "$MNT/e.csv"
	fmount f1
	wait_for 10 cmp -s "$TWIN/e.csv" "$TMP/f1.mnt/e.csv"
	run "$PCTL" ls "$STORE" /
	[ "$status" -eq 0 ]
	[[ $output == *e.csv* ]]
	run "$PCTL" ls "$TMP/f1.store" /
	[ "$status" -eq 0 ]
	[[ $output == *e.csv* ]]
	"$PCTL" cat "$TMP/f1.store" /e.csv | cmp - "$TWIN/e.csv"
	"$PCTL" cat "$STORE" "/e.csv@rows=10:20" | cmp - <(slice_lines "$TWIN/e.csv" 10 20)
	mkdir "$TMP/out"
	"$PCTL" export "$TMP/f1.store" /e.csv "$TMP/out"
	cmp "$TWIN/e.csv" "$TMP/out/e.csv"
	unmount_pfs
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} == *clean ]]
}

@test "init's errors: a bad POOL/NAME, a missing pool, an existing store without --takeover, a follower of nothing; nothing is left" {
	run "$PCTL" init --rados nopool "$TMP/s1"
	[ "$status" -eq 2 ]
	[[ $output == *"not POOL/NAME"* ]]
	run "$PCTL" init --rados "no-such-pool/$NS" --ceph-conf "$PFS_CEPH_CONF" --timeout 5 "$TMP/s2"
	show_output
	[ "$status" -eq 1 ]
	[ ! -e "$TMP/s2/index" ]
	run rinit follow "$TMP/s3"
	show_output
	[ "$status" -eq 1 ]
	[ ! -e "$TMP/s3/index" ]
	rinit rados "$STORE"
	run rinit rados "$TMP/s4"
	show_output
	[ "$status" -eq 1 ]
	[[ $output == *--takeover* ]]
	[ ! -e "$TMP/s4/index" ]
	run "$PCTL" init --takeover "$TMP/s5"
	[ "$status" -eq 2 ]
	run rinit rados "$STORE"
	[ "$status" -eq 1 ]
	[[ $output == *"already a payloadfs store"* ]]
}

# flip_obj ID — damage image object ID in the cluster: one byte of its
# stored bytes inverted (rados get, then put of the modified bytes).
flip_obj() {
	rados --conf "$PFS_CEPH_CONF" -p "$POOL" -N "$NS" get "$1" "$TMP/obj.$1"
	cp "$TMP/obj.$1" "$TMP/obj.$1.good"
	python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[48 + (len(b) - 48) // 2] ^= 0x5a
open(p, "wb").write(b)' "$TMP/obj.$1"
	rados --conf "$PFS_CEPH_CONF" -p "$POOL" -N "$NS" put "$1" "$TMP/obj.$1"
}

@test "a corrupted image in RADOS: EIO and a log line naming the object and fragment on the writer and a follower, fsck of both finds it; no bad copy is kept" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	mount_pfs fragment_size=65536
	gen_csv "$TWIN/d.csv" 20000 5
	cp "$TWIN/d.csv" "$MNT/d.csv"
	local ino id off
	ino=$(stat -c %i "$MNT/d.csv")
	unmount_pfs
	id=$(frag_ids "$STORE" /d.csv | sed -n 3p)
	off=$("$PCTL" stat -v "$STORE" /d.csv | awk -v id="$id" '$6 == id { print $2 }')
	[ -n "$id" ]
	[ "$off" -gt 0 ]
	flip_obj "$id"
	mount_pfs
	fmount f1
	wait_for 10 test "$(stat -c %s "$TMP/f1.mnt/d.csv" 2>/dev/null)" = "$(stat -c %s "$TWIN/d.csv")"
	# reads: EIO after only correct bytes, on both hosts, twice
	run fsop readok "$MNT/d.csv" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
	[ "${output#EIO:}" -le "$off" ]
	run fsop readok "$TMP/f1.mnt/d.csv" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
	run fsop readok "$TMP/f1.mnt/d.csv" --compare "$TWIN/d.csv"
	[[ $output =~ ^EIO:[0-9]+$ ]]
	# the log lines name the RADOS object, the fragment and the object
	grep -F "fragment $id (RADOS object $POOL/$NS/$id): " "$LOG"
	grep -E "object $ino: version [0-9]+: fragment $id .*could not be read: damaged" "$LOG"
	grep -F "fragment $id (RADOS object $POOL/$NS/$id): " "$TMP/f1.log"
	# neither host keeps a copy of the bad bytes in its image cache
	[ ! -e "$STORE/cache/${id:14:2}/$id" ]
	[ ! -e "$TMP/f1.store/cache/${id:14:2}/$id" ]
	# the store serves on
	echo still >"$MNT/new.txt"
	wait_for 10 test -f "$TMP/f1.mnt/new.txt"
	[ "$(cat "$TMP/f1.mnt/new.txt")" = still ]
	# fsck of the writer's and of the follower's STORE (both mounted) name it
	run "$PCTL" fsck "$STORE"
	show_output
	[ "$status" -eq 1 ]
	[[ $output == *"/d.csv (id $ino): fragment $id (bytes $off.."*"): damaged: "*"(RADOS object $POOL/$NS/$id)"* ]]
	run "$PCTL" fsck "$TMP/f1.store"
	show_output
	[ "$status" -eq 1 ]
	[[ $output == *"/d.csv (id $ino): fragment $id (bytes $off.."*"): damaged: "*"(RADOS object $POOL/$NS/$id)"* ]]
	# the object mended in the cluster: both read it whole again (nothing
	# bad was kept anywhere)
	rados --conf "$PFS_CEPH_CONF" -p "$POOL" -N "$NS" put "$id" "$TMP/obj.$id.good"
	cmp "$MNT/d.csv" "$TWIN/d.csv"
	cmp "$TMP/f1.mnt/d.csv" "$TWIN/d.csv"
	run "$PCTL" fsck "$TMP/f1.store"
	[ "$status" -eq 0 ]
}

@test "a damaged copy in a host's image cache is dropped and read again from the cluster: right bytes, one log line" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	mount_pfs fragment_size=65536
	fmount f1
	gen_csv "$TWIN/d.csv" 20000 6
	cp "$TWIN/d.csv" "$MNT/d.csv"
	wait_for 10 cmp -s "$TWIN/d.csv" "$TMP/f1.mnt/d.csv"
	local id c
	id=$(frag_ids "$TMP/f1.store" /d.csv | sed -n 2p)
	c=$TMP/f1.store/cache/${id:14:2}/$id
	[ -f "$c" ]                  # the read kept a copy
	funmount f1                  # forget what is in memory
	python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x5a
open(p, "wb").write(b)' "$c"
	fmount f1
	cmp "$TMP/f1.mnt/d.csv" "$TWIN/d.csv"
	grep -F "fragment $id: the copy in the image cache is damaged" "$TMP/f1.log"
	grep -F "dropped, read again from RADOS object $POOL/$NS/$id" "$TMP/f1.log"
	# the copy kept now is the cluster's image
	rados --conf "$PFS_CEPH_CONF" -p "$POOL" -N "$NS" get "$id" "$TMP/obj"
	cmp "$c" "$TMP/obj"
	run grep -c "could not be read" "$TMP/f1.log"
	[ "$output" = 0 ]
}

@test "a follower stopped past follower_lease is dropped: the writer deletes what only it held; woken, it re-syncs from a base, serves on, and its old open file reads EIO, never wrong bytes" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	mount_pfs fragment_size=65536,follower_lease=3,base_every=5
	fmount f1 threads=0                  # no read-ahead: what was not read is not fetched
	gen_csv "$TWIN/big.csv" 200000 9
	cp "$TWIN/big.csv" "$MNT/big.csv"
	wait_for 10 test "$(stat -c %s "$TMP/f1.mnt/big.csv" 2>/dev/null)" = "$(stat -c %s "$TWIN/big.csv")"
	local old last
	old=$(frag_ids "$TMP/f1.store" /big.csv)
	last=$(echo "$old" | tail -n 1)
	[ "$(echo "$old" | wc -l)" -gt 100 ]
	# an open file on the follower: 1 MB read, the rest after the go
	mkfifo "$TMP/go"
	"$PY" - "$TMP/f1.mnt/big.csv" "$TMP/go" "$TMP/opened" "$TWIN/big.csv" >"$TMP/holder.out" 3>&- <<'PY' &
import errno, os, sys
ref = open(sys.argv[4], "rb").read()
fd = os.open(sys.argv[1], os.O_RDONLY)
got = b""
while len(got) < 1000000:
    got += os.read(fd, 65536)
open(sys.argv[3], "w").write("opened\n")
open(sys.argv[2]).read()             # wait for the go
try:
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        got += b
    print("OK" if got == ref else "WRONG")
except OSError as e:
    print("%s after %d bytes, %s" % (errno.errorcode[e.errno], len(got),
                                     "right ones" if ref[:len(got)] == got else "WRONG ones"))
PY
	BG_PIDS+=($!)
	wait_for 10 test -s "$TMP/opened"
	gen_csv "$TWIN/new.csv" 1000 10
	cp "$TWIN/new.csv" "$MNT/big.csv"    # every old image released
	wait_for 10 cmp -s "$TWIN/new.csv" "$TMP/f1.mnt/big.csv"
	sleep 2                              # writer passes: the follower holds them
	has_image "$last"
	STOPPED_PID=$(cat "$TMP/f1.pid")
	kill -STOP "$STOPPED_PID"
	local i
	for ((i = 0; i < 8; i++)); do        # commits past base_every: a newer base
		echo "$i" >"$MNT/n$i.txt"
	done
	# dropped after 3 s without a renewal: the images only it held go
	wait_for 30 bash -c "! rados --conf '$PFS_CEPH_CONF' -p '$POOL' -N '$NS' stat $last"
	grep -q "follower .* stopped renewing its record: its images are no longer kept" "$LOG"
	kill -CONT "$STOPPED_PID"
	STOPPED_PID=
	wait_for 30 grep -q "the writer expired this follower" "$TMP/f1.log"
	grep -q "re-syncing as .* from the newest base" "$TMP/f1.log"
	# it serves on, the newest state
	wait_for 20 test -f "$TMP/f1.mnt/n7.txt"
	[ "$(cat "$TMP/f1.mnt/n7.txt")" = 7 ]
	cmp "$TMP/f1.mnt/big.csv" "$TWIN/new.csv"
	echo go >"$TMP/go"
	wait "${BG_PIDS[0]}"
	BG_PIDS=()
	cat "$TMP/holder.out" | sed 's/^/# holder: /' >&3
	[[ $(cat "$TMP/holder.out") == "EIO after "*" bytes, right ones" ]]
	grep -q "could not be read: missing" "$TMP/f1.log"
	# and its new record lets the writer go on deleting
	local cur
	cur=$(frag_ids "$STORE" /big.csv | head -n 1)
	[ -n "$cur" ]
	echo x >"$MNT/big.csv"
	wait_for 20 bash -c "! rados --conf '$PFS_CEPH_CONF' -p '$POOL' -N '$NS' stat $cur"
}

# gc_would_free — a dry run of gc on $STORE would delete the images it found.
gc_would_free() {
	"$PCTL" gc --dry-run "$STORE" 2>/dev/null | tail -n 1 | grep -q '^gc: would free .* 1 fragment image,'
}

@test "payloadctl gc of a RADOS store keeps an unreferenced image while a lagging follower may read it, deletes it once the follower caught up; gc refuses a follower store" {
	rinit rados "$STORE"
	rinit follow "$TMP/f1.store"
	mount_pfs
	fmount f1
	gen_csv "$TWIN/a.csv" 2000 4
	cp "$TWIN/a.csv" "$MNT/a.csv"
	wait_for 10 cmp -s "$TWIN/a.csv" "$TMP/f1.mnt/a.csv"
	# the follower stops applying; the writer goes on, then unmounts
	STOPPED_PID=$(cat "$TMP/f1.pid")
	kill -STOP "$STOPPED_PID"
	echo b >"$MNT/b.txt"
	echo c >"$MNT/c.txt"
	unmount_pfs
	# garbage: an image no record names (a copy of a real one)
	local img
	img=$(frag_ids "$STORE" /a.csv | head -n 1)
	[ -n "$img" ]
	rados --conf "$PFS_CEPH_CONF" -p "$POOL" -N "$NS" get "$img" "$TMP/img"
	rados --conf "$PFS_CEPH_CONF" -p "$POOL" -N "$NS" put 00000000000fffee "$TMP/img"

	run --separate-stderr "$PCTL" gc "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *"gc: kept 1 unreferenced fragment image: 1 of 1 follower(s) may still read released images"*"run gc again later"* ]]
	has_image 00000000000fffee
	run --separate-stderr "$PCTL" gc --dry-run "$STORE"
	[ "$status" -eq 0 ]
	[[ $output == *"gc: would keep 1 unreferenced fragment image"* ]]
	has_image 00000000000fffee

	# gc on the follower's store is refused, whether it runs or not
	run --separate-stderr "$PCTL" gc "$TMP/f1.store"
	[ "$status" -ne 0 ]
	[[ $stderr == *"a follower store has no garbage of its own"* ]]

	# the follower catches up: its record's horizon reaches the log's end
	kill -CONT "$STOPPED_PID"
	STOPPED_PID=
	wait_for 10 test -f "$TMP/f1.mnt/c.txt"
	wait_for 20 gc_would_free
	run --separate-stderr "$PCTL" gc "$STORE"
	show_output
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} == "gc: freed "*" bytes ("*"): 1 fragment image, 0 staging files, 0 unlinked inodes, 0 storage=memory objects" ]]
	run has_image 00000000000fffee
	[ "$status" -ne 0 ]
	# nothing referenced went: both stores still read a.csv whole
	mount_pfs
	cmp "$TWIN/a.csv" "$MNT/a.csv"
	cmp "$TWIN/a.csv" "$TMP/f1.mnt/a.csv"
}
