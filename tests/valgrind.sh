#!/bin/bash
# valgrind.sh BUILD — run every unit test binary BUILD/tests/test_* under
# valgrind memcheck (`make valgrind`; a tier of .ci/run). One TAP line per
# binary: ok when the binary passed all its checks, valgrind reported no
# error (invalid access, uninitialised value, bad free, ...) and no leak
# (definite or possible); otherwise the TAP line says what, followed by
# the first lines of valgrind's report.
#
# io_uring: valgrind 3.19 runs io_uring_setup/enter but does not see the
# kernel write the buffers of io_uring reads, so every byte read that way
# looks uninitialised. PAYLOADFS_NO_URING=1 makes the local backend read
# with pread (its fallback when io_uring is unavailable) instead.
# The LMDB map: valgrind cannot map the index's 64 GiB; idx_open falls back
# to a smaller map and logs a warning (expected here).
# RADOS: a throwaway Ceph cluster is started for test_backend_rados (unless
# PFS_CEPH_CONF names one) and stopped by PID at exit.
#
# Output: BUILD/valgrind/NAME.log (valgrind) and NAME.tap (the test's own
# output); the counts go to BUILD/valgrind/test-counts as "passed failed
# skipped", the last line is "N passed, N failed". Exit 1 when any failed.
set -u

BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "valgrind: no build directory ${1:-build}" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VG_TIMEOUT=${VG_TIMEOUT:-900}
OUT=$BUILD/valgrind
mkdir -p "$OUT"
export PAYLOADFS_NO_URING=1

n=0 pass=0 fail=0 skip=0
START=$SECONDS
if ! command -v valgrind >/dev/null 2>&1; then
	echo "ok 1 - valgrind # skip valgrind is not installed (packaging/install-deps.sh installs it)"
	echo "1..1"
	echo "0 0 1" >"$OUT/test-counts"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
fi

# The RADOS tests need a cluster: one for the run (tests/rados/cluster.sh),
# stopped by PID at exit. librados needs no suppressions: measured 0
# errors and no leaks for test_backend_rados under memcheck.
CEPH_DIR=""
if [ -x "$BUILD/tests/test_backend_rados" ] && [ -z "${PFS_CEPH_CONF:-}" ]; then
	CEPH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pfs-vg-ceph.XXXXXX")
	trap '"$ROOT/tests/rados/cluster.sh" stop "$CEPH_DIR"; rm -rf --one-file-system "$CEPH_DIR"' EXIT
	trap 'exit 130' INT TERM
	if "$ROOT/tests/rados/cluster.sh" start "$CEPH_DIR" >"$OUT/cluster.log" 2>&1; then
		eval "$("$ROOT/tests/rados/cluster.sh" env "$CEPH_DIR")"
	else
		echo "# valgrind: the test cluster did not start (see $OUT/cluster.log)"
	fi
fi

shopt -s nullglob
for t in "$BUILD"/tests/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	log=$OUT/$name.log tap=$OUT/$name.tap
	n=$((n + 1))
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$VG_TIMEOUT" valgrind --error-exitcode=1 --leak-check=full \
		--num-callers=30 --log-file="$log" "$t") >"$tap" 2>&1 </dev/null
	rc=$?
	secs=$((SECONDS - t0))
	errs=$(grep -o 'ERROR SUMMARY: [0-9]*' "$log" 2>/dev/null | tail -1 | grep -o '[0-9]*$')
	checks=$(grep -Ec '^ok [0-9]+' "$tap")
	notok=$(grep -Ec '^not ok [0-9]+' "$tap")
	why=""
	if [ "$rc" -eq 124 ]; then
		why="timed out after ${VG_TIMEOUT} s"
	elif [ -z "$errs" ]; then
		why="no valgrind summary (status $rc)"
	elif [ "$errs" -gt 0 ]; then
		why="$errs valgrind errors"
	elif [ "$notok" -gt 0 ]; then
		why="$notok failed checks"
	elif [ "$rc" -ne 0 ]; then
		why="exit status $rc"
	fi
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		echo "ok $n - valgrind $name: $checks checks, 0 errors, no leaks [${secs} s]"
	else
		fail=$((fail + 1))
		echo "not ok $n - valgrind $name: $why [${secs} s]; report: $log"
		grep -m 1 -A 25 -E '== (Invalid|Conditional|Use of|Syscall param|Mismatched|[0-9,]+ bytes in|Source and)' "$log" |
			sed 's/^/#   /'
		grep -E '^(not ok|Bail out)' "$tap" | head -5 | sed 's/^/#   /'
		echo "#   reproduce: (cd $ROOT && PAYLOADFS_NO_URING=1 valgrind --leak-check=full --track-origins=yes $t)"
	fi
done
echo "1..$n"
echo "# valgrind: $n binaries in $((SECONDS - START)) s"
echo "$pass $fail $skip" >"$OUT/test-counts"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
