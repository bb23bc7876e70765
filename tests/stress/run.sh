#!/bin/bash
# run.sh BUILD short|long — mount a fresh store under $TMPDIR and run the
# fsx exerciser (tests/stress/fsx.c) and the concurrency stress test
# (tests/stress/stress.py) against it; TAP on stdout, one line per run.
#   short (make check): fsx 20,000 ops (one seed), the stress test for
#                       30 s (PFS_STRESS=0 leaves it out)
#   long  (make stress): fsx $FSX_OPS ops for each of $FSX_SEEDS seeds,
#                       stress for $SECONDS s; SEED= replays one seed.
# Every mount is unmounted at exit; only PIDs started here are signalled.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 2
MODE=${2:-short}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pfs-stress.XXXXXX")
MNT= PIDF= n=0 failed=0
cleanup() {
	[ -n "$MNT" ] && umount_one
	rm -rf --one-file-system "$TMP"
}
umount_one() {
	local pid
	pid=$(cat "$PIDF" 2>/dev/null)
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	for _ in $(seq 100); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	MNT=
}
trap cleanup EXIT
# mount_fresh NAME — a new store and mount point under $TMP/NAME
mount_fresh() {
	local d=$TMP/$1
	mkdir -p "$d/store" "$d/mnt" "$d/twin"
	PIDF=$d/pid
	"$BUILD/payloadfs" "$d/store" "$d/mnt" \
		-o "fragment_size=65536,logfile=$d/log,pidfile=$PIDF${PFS_OPTS:+,$PFS_OPTS}" 3>&- || return 1
	MNT=$d/mnt
}
# tap OK DESC — print one TAP line
tap() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}
run_fsx() {     # run_fsx SEED OPS
	local rc=0 d
	mount_fresh "fsx-$1" || { tap 1 "fsx seed $1: mount"; return; }
	d=$TMP/fsx-$1
	"$BUILD/stress/fsx" -q -s "$1" -n "$2" "$d/mnt" "$d/twin" >"$d/out" 2>&1 || rc=$?
	sed 's/^/# /' "$d/out" | grep -v '^#   ' | tail -n 4
	[ $rc = 0 ] || sed 's/^/# /' "$d/out" | tail -n 60
	umount_one
	tap $rc "fsx: $2 ops, seed $1, mount equals the ext4 twins"
}
run_stress() {  # run_stress SEED SECONDS
	local rc=0 d
	mount_fresh "stress-$1" || { tap 1 "stress seed $1: mount"; return; }
	d=$TMP/stress-$1
	"$PY" "$HERE/stress.py" "$d/mnt" "$d/side" --seed "$1" --seconds "$2" >"$d/out" 2>&1 || rc=$?
	[ $rc = 0 ] && { umount_one; mount_fresh_again "$d" && \
		"$PY" "$HERE/stress.py" "$MNT" "$d/side" --check-only >>"$d/out" 2>&1 || rc=$?; }
	sed 's/^/# /' "$d/out" | tail -n 40
	[ -n "$MNT" ] && umount_one
	tap $rc "stress: ${2}s, seed $1, reads are committed versions, the tree equals the model (also after a remount)"
}
mount_fresh_again() {   # the same store again (persistence)
	PIDF=$1/pid
	"$BUILD/payloadfs" "$1/store" "$1/mnt" -o "fragment_size=65536,logfile=$1/log,pidfile=$PIDF${PFS_OPTS:+,$PFS_OPTS}" 3>&- || return 1
	MNT=$1/mnt
}
seed() { echo "${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"; }

if [ "$MODE" = long ]; then
	for _ in $(seq "${FSX_SEEDS:-3}"); do run_fsx "$(seed)" "${FSX_OPS:-100000}"; done
	run_stress "$(seed)" "${SECONDS_STRESS:-${STRESS_SECONDS:-600}}"
else
	run_fsx "$(seed)" 20000
	if [ "${PFS_STRESS:-1}" = 1 ]; then
		run_stress "$(seed)" 30
	else
		n=$((n + 1)); echo "ok $n - stress.py # skip PFS_STRESS=0"
	fi
fi
echo "1..$n"
exit $failed
