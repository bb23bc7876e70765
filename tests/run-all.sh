#!/bin/bash
# run-all.sh BUILD — start a throwaway Ceph cluster for the RADOS tests
# (tests/rados/cluster.sh; stopped by PID at exit), run every unit test
# binary BUILD/tests/test_*, a short run of each fuzz harness
# (tests/fuzz/run.sh: FUZZ_TIME seconds each, default 20; 0 replays the
# seeds only), then the bats end-to-end suite
# tests/e2e/ against BUILD's payloadfs and payloadctl, the Python
# package's pytest tests (tests/python/run.sh), then the crash tests'
# short mode (tests/crash/run.sh, on a local store and on a RADOS store of
# the run's cluster), the power-loss explorer's short mode
# (tests/crash/powerloss.py --tap) and the short stress runs
# (tests/stress/run.sh short), and last the Debian package's test
# (tests/deb/check-deb.sh: about a minute, part deb; the sanitizer tier
# of .ci/run leaves it out). Called by `make check` after building (which
# also builds the fuzzers when clang and libFuzzer are installed; without
# them each harness is one skip).
#
# Before them, the checks of the test suite itself: tests/lint-bats.sh (no
# bats assertion that can never fail), tests/run-all-selftest.sh (this
# script's counting, on fake binaries) and tests/bench/chart-selftest.sh
# (make bench's chart drawing, on a fixed sample).
#
# Counting: each TAP "ok" line is a pass, "not ok" a failure, an "ok ... #
# skip" a skip. A binary (or bats file) that exits non-zero without any "not
# ok" line — a crash, a sanitizer abort, a timeout — counts as one failure;
# a unit binary exiting 77 without test lines counts as one skip. Every
# other run must print exactly one TAP plan "1..N" (first or last), with N
# the number of test lines it printed: a missing plan, two plans or a plan
# that does not match (a binary that stopped early, even with status 0)
# count as one more failure, noted in the summary, unless the run already
# counts one for its exit status.
#
# RUN_ALL_PARTS (a comma list of lint, unit, fuzz, e2e, e2e-rados, python, crash,
# powerloss, stress, deb; default all of them) runs only those parts: for a
# quick look, and for the self-test. `make check` runs them all.
#
# e2e-rados runs the end-to-end files again with PFS_E2E_RADOS=1: every
# test against a RADOS writer store on the run's cluster (a fresh
# namespace per test; tests/e2e/helpers.bash). Tests that inspect what only
# a local store has (image files on disk, ENOSPC of a small local file
# system) say so with local_only and count as skips there. E2E_RADOS_FILES
# (names without .bats, space-separated; default every file but rados.bats,
# which is RADOS-only already) narrows it, for a quick look. The sanitizer
# tier of .ci/run leaves this part out (RUN_ALL_PARTS) to stay inside its
# budget; tier 1 runs it whole.
#
# Output: the TAP of every file as it runs, a per-file summary, and as the
# last line "N passed, N failed" (", N skipped" when some were). The counts
# also go to BUILD/test-counts as "passed failed skipped". Exit 1 when
# anything failed.
set -u

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "run-all: no build directory ${1:-build}" >&2; exit 2; }
UNIT_TIMEOUT=${UNIT_TIMEOUT:-600}
E2E_TIMEOUT=${E2E_TIMEOUT:-1200}

total_pass=0 total_fail=0 total_skip=0
summary=()
# Everything the tests make lives under $RUN_TMP, so whatever a killed test
# left mounted can be found and unmounted at exit.
RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/payloadfs-check.XXXXXX")
out=$RUN_TMP/tap
cleanup() {
	local m
	# the test cluster's daemons, by the PIDs cluster.sh recorded
	if [ -r "$RUN_TMP/ceph/ceph.conf" ]; then
		"$ROOT/tests/rados/cluster.sh" stop "$RUN_TMP/ceph"
	fi
	awk -v p="$RUN_TMP/" 'index($2, p) == 1 && $3 ~ /^fuse/ { print $2 }' /proc/mounts |
		sort -r | while read -r m; do
			echo "# run-all: unmounting leftover $m" >&2
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"
		done
	rm -rf --one-file-system "$RUN_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TMPDIR=$RUN_TMP

# tally NAME STATUS — count the TAP lines in $out for one file (which
# started at $t0).
tally() {
	local name=$1 status=$2 pass fail skip note="" secs=$((SECONDS - t0)) seen plans n
	skip=$(grep -Eci '^ok [0-9]+.*# skip' "$out")
	pass=$(($(grep -Ec '^ok [0-9]+' "$out") - skip))
	fail=$(grep -Ec '^not ok [0-9]+' "$out")
	seen=$((pass + fail + skip))
	plans=$(grep -Ec '^1\.\.[0-9]+([[:space:]]|$)' "$out")
	n=$(grep -E -m 1 '^1\.\.[0-9]+([[:space:]]|$)' "$out" | grep -Eo '^1\.\.[0-9]+' | cut -c4-)
	if [ "$status" -eq 77 ] && [ "$seen" -eq 0 ]; then
		skip=1 note=" (skipped: exit 77)"
		add_counts "$name" "$pass" "$fail" "$skip" "$note" "$secs"
		return
	fi
	if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		if [ "$status" -eq 124 ]; then
			note=" (timed out)"
		elif [ "$status" -gt 128 ]; then
			note=" (killed by signal $((status - 128)))"
		else
			note=" (exit status $status without a failed test)"
		fi
	elif [ "$plans" -ne 1 ] || [ "$n" -ne "$seen" ]; then
		fail=$((fail + 1))
	fi
	if [ "$plans" -eq 0 ]; then
		note="$note (no TAP plan 1..N: stopped early?)"
	elif [ "$plans" -gt 1 ]; then
		note="$note ($plans TAP plans)"
	elif [ "$n" -ne "$seen" ]; then
		note="$note (TAP plan 1..$n but $seen test lines)"
	fi
	add_counts "$name" "$pass" "$fail" "$skip" "$note" "$secs"
}

# add_counts NAME PASS FAIL SKIP NOTE SECS — add one file's counts.
add_counts() {
	local name=$1 pass=$2 fail=$3 skip=$4 note=$5 secs=$6
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	summary+=("$(printf '  %-28s %4d passed, %d failed%s%s  [%ds]' "$name" "$pass" "$fail" \
		"$([ "$skip" -gt 0 ] && echo ", $skip skipped")" "$note" "$secs")")
}

# part NAME — NAME is one of the parts to run ($RUN_ALL_PARTS).
RUN_ALL_PARTS=${RUN_ALL_PARTS:-lint,unit,fuzz,e2e,e2e-rados,python,crash,powerloss,stress,deb}
part() { [[ ,$RUN_ALL_PARTS, == *,$1,* ]]; }

# ---- the test suite's own checks ----
if part lint; then
	for s in lint-bats.sh run-all-selftest.sh bench/chart-selftest.sh; do
		name=suite/${s%.sh}
		echo "# $name"
		t0=$SECONDS
		(cd "$ROOT" && timeout -k 10 "$UNIT_TIMEOUT" "tests/$s") 2>&1 </dev/null | tee "$out"
		tally "$name" "${PIPESTATUS[0]}"
	done
fi

# ---- a Ceph cluster for the RADOS tests ----
# One throwaway cluster (tests/rados/cluster.sh: one monitor, one memstore
# OSD on 127.0.0.1) serves every RADOS test of the run; its variables
# (cluster.sh env: PFS_CEPH_CONF, PFS_RADOS_POOL, ...) are exported, and
# cleanup stops it by PID. A cluster that does not start is one failure
# (its RADOS tests then fail too: they find no cluster).
if part unit || part e2e || part e2e-rados || part crash; then
	echo "# rados/cluster.sh start"
	t0=$SECONDS
	if "$ROOT/tests/rados/cluster.sh" start "$RUN_TMP/ceph" >"$out" 2>&1; then
		eval "$("$ROOT/tests/rados/cluster.sh" env "$RUN_TMP/ceph")"
		sed 's/^/# /' "$out"
	else
		cat "$out"
		: >"$out"
		tally rados/cluster.sh 1
	fi
fi

# ---- unit tests ----
units=()
if part unit; then
	shopt -s nullglob
	units=("$BUILD"/tests/test_*)
	shopt -u nullglob
fi
for t in "${units[@]}"; do
	if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
	name=unit/$(basename "$t")
	echo "# $name"
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$UNIT_TIMEOUT" "$t") 2>&1 </dev/null | tee "$out"
	tally "$name" "${PIPESTATUS[0]}"
done

# ---- fuzzers: one TAP line per harness ----
export FUZZ_TIME=${FUZZ_TIME:-20}
for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
	part fuzz && [ -f "$f" ] || continue
	name=$(basename "$f" .c)
	echo "# fuzz/$name"
	t0=$SECONDS
	(cd "$ROOT" && tests/fuzz/run.sh "$BUILD" "$name") 2>&1 </dev/null | tee "$out"
	tally "fuzz/$name" "${PIPESTATUS[0]}"
done

# ---- end-to-end tests ----
export PAYLOADFS_BUILD=$BUILD
# A hung test fails after this long and its teardown still unmounts.
export BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-300}
if ! part e2e; then
	:
elif ! command -v bats >/dev/null; then
	echo "# bats not installed (run packaging/install-deps.sh)"
	: >"$out"
	t0=$SECONDS
	tally e2e 1
else
	for f in "$ROOT"/tests/e2e/*.bats; do
		name=e2e/$(basename "$f")
		echo "# $name"
		t0=$SECONDS
		(cd "$ROOT" && timeout -k 10 "$E2E_TIMEOUT" bats --tap "$f") 2>&1 </dev/null | tee "$out"
		tally "$name" "${PIPESTATUS[0]}"
	done
fi

# ---- the end-to-end files again, against RADOS writer stores ----
if part e2e-rados && command -v bats >/dev/null; then
	if [ -n "${E2E_RADOS_FILES:-}" ]; then
		rfiles=()
		for n in $E2E_RADOS_FILES; do rfiles+=("$ROOT/tests/e2e/$n.bats"); done
	else
		rfiles=("$ROOT"/tests/e2e/*.bats)
	fi
	for f in "${rfiles[@]}"; do
		[ "$(basename "$f")" = rados.bats ] && continue
		name=e2e-rados/$(basename "$f")
		echo "# $name"
		t0=$SECONDS
		(cd "$ROOT" && PFS_E2E_RADOS=1 timeout -k 10 "$E2E_TIMEOUT" bats --tap "$f") 2>&1 </dev/null | tee "$out"
		tally "$name" "${PIPESTATUS[0]}"
	done
fi

# ---- the Python package (tests/python/run.sh: pytest, as TAP) ----
if part python; then
	echo "# python/pytest"
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$E2E_TIMEOUT" tests/python/run.sh "$BUILD") 2>&1 </dev/null | tee "$out"
	tally python/pytest "${PIPESTATUS[0]}"
fi

# ---- crash tests (short mode; `make crash` is the long one) ----
if part crash; then
	echo "# crash/run.sh"
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$E2E_TIMEOUT" tests/crash/run.sh "$BUILD") 2>&1 </dev/null | tee "$out"
	tally crash/run.sh "${PIPESTATUS[0]}"
	# the same harness over a RADOS store of the run's cluster (a missing
	# cluster is a failed line, not a skip)
	echo "# crash/run.sh rados"
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$E2E_TIMEOUT" tests/crash/run.sh "$BUILD" rados) 2>&1 </dev/null | tee "$out"
	tally "crash/run.sh rados" "${PIPESTATUS[0]}"
fi

# ---- power-loss explorer (short mode; `make powerloss` is the long one) ----
if part powerloss; then
	echo "# crash/powerloss.py"
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$E2E_TIMEOUT" tests/crash/powerloss.py --build "$BUILD" --tap) 2>&1 </dev/null | tee "$out"
	tally crash/powerloss.py "${PIPESTATUS[0]}"
fi

# ---- stress: fsx against ext4 twins, the concurrency stress test ----
if part stress && [ -x "$BUILD/stress/fsx" ]; then
	echo "# stress/run.sh short"
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$E2E_TIMEOUT" tests/stress/run.sh "$BUILD" short) 2>&1 </dev/null | tee "$out"
	tally stress/run.sh "${PIPESTATUS[0]}"
fi

# ---- the Debian package: built, installed into a throwaway root, mounted ----
if part deb; then
	echo "# deb/check-deb.sh"
	t0=$SECONDS
	(cd "$ROOT" && timeout -k 10 "$E2E_TIMEOUT" tests/deb/check-deb.sh "$BUILD") 2>&1 </dev/null | tee "$out"
	tally deb/check-deb.sh "${PIPESTATUS[0]}"
fi

{
	echo "# summary ($((SECONDS / 60)) min $((SECONDS % 60)) s)"
	printf '%s\n' "${summary[@]}"
} | sed 's/^  /#   /'
echo "$total_pass $total_fail $total_skip" >"$BUILD/test-counts"
line="$total_pass passed, $total_fail failed"
[ "$total_skip" -gt 0 ] && line="$line, $total_skip skipped"
echo "$line"
[ "$total_fail" -eq 0 ]
