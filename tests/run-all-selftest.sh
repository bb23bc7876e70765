#!/bin/bash
# run-all-selftest.sh — tests/run-all.sh's counting, proved on fake unit
# binaries: for each case, a scratch BUILD whose only test binary
# BUILD/tests/test_fake is a script printing some TAP and exiting some way;
# `RUN_ALL_PARTS=unit tests/run-all.sh BUILD` must end with the expected
# "N passed, N failed[, N skipped]" line, write the same counts to
# BUILD/test-counts, and say why in the summary line of test_fake. Run by
# run-all.sh itself (make check); TAP on stdout, one line per case.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/run-all-selftest.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
n=0 failed=0

# case DESC SCRIPT WANT NOTE — run run-all.sh on a fake binary running the
# bash SCRIPT; WANT is run-all's last line, NOTE a text the summary line of
# test_fake must hold (empty: it must hold no note in parentheses).
case_() {
	local desc=$1 body=$2 want=$3 note=$4 b out last line counts why=""
	n=$((n + 1))
	b=$TMP/build$n
	mkdir -p "$b/tests"
	printf '#!/bin/bash\n%s\n' "$body" >"$b/tests/test_fake"
	chmod +x "$b/tests/test_fake"
	out=$(RUN_ALL_PARTS=unit "$ROOT/tests/run-all.sh" "$b" 2>&1 </dev/null)
	last=$(tail -n 1 <<<"$out")
	line=$(grep -E '^#   unit/test_fake ' <<<"$out")
	counts=$(cat "$b/test-counts" 2>/dev/null)
	if [ "$last" != "$want" ]; then
		why="last line '$last', want '$want'"
	elif [ "$(awk '{ printf "%d passed, %d failed", $1, $2; if ($3) printf ", %d skipped", $3 }' <<<"$counts")" != "$want" ]; then
		why="test-counts '$counts' disagree with '$want'"
	elif [ -z "$line" ]; then
		why="no summary line for unit/test_fake"
	elif [ -n "$note" ] && [[ $line != *"$note"* ]]; then
		why="summary line '$line' does not say '$note'"
	elif [ -z "$note" ] && [[ $line == *"("* ]]; then
		why="summary line '$line' has a note"
	fi
	if [ -z "$why" ]; then
		echo "ok $n - $desc: $want"
	else
		failed=1
		echo "not ok $n - $desc: $why"
		sed 's/^/#   | /' <<<"$out" | tail -n 20
	fi
}

case_ "a full run with its plan last" \
	'echo "ok 1 - a"; echo "ok 2 - b"; echo "1..2"' \
	"2 passed, 0 failed" ""
case_ "a full run with its plan first" \
	'echo "1..2"; echo "ok 1 - a"; echo "ok 2 - b"' \
	"2 passed, 0 failed" ""
case_ "status 0 after 2 of the 3 tests its plan announced" \
	'echo "1..3"; echo "ok 1 - a"; echo "ok 2 - b"; exit 0' \
	"2 passed, 1 failed" "(TAP plan 1..3 but 2 test lines)"
case_ "status 0 before the plan at the end" \
	'echo "ok 1 - a"; exit 0' \
	"1 passed, 1 failed" "(no TAP plan 1..N"
case_ "status 0 and no output at all" \
	'exit 0' \
	"0 passed, 1 failed" "(no TAP plan 1..N"
case_ "a plan that counts more tests than ran" \
	'echo "ok 1 - a"; echo "1..2"' \
	"1 passed, 1 failed" "(TAP plan 1..2 but 1 test lines)"
case_ "two plans" \
	'echo "1..1"; echo "ok 1 - a"; echo "1..1"' \
	"1 passed, 1 failed" "(2 TAP plans)"
case_ "a crash after one test: one failure, not two" \
	'echo "ok 1 - a"; kill -SEGV $$' \
	"1 passed, 1 failed" "(killed by signal 11) (no TAP plan 1..N"
case_ "a failed test with its plan and status 1" \
	'echo "ok 1 - a"; echo "not ok 2 - b"; echo "1..2"; exit 1' \
	"1 passed, 1 failed" ""
case_ "status 1 with a plan and no failed test" \
	'echo "ok 1 - a"; echo "1..1"; exit 1' \
	"1 passed, 1 failed" "(exit status 1 without a failed test)"
case_ "a skipped test" \
	'echo "ok 1 - a # skip not here"; echo "ok 2 - b"; echo "1..2"' \
	"1 passed, 0 failed, 1 skipped" ""
case_ "exit 77 without output: one skip" \
	'exit 77' \
	"0 passed, 0 failed, 1 skipped" "(skipped: exit 77)"
case_ "exit 77 with a 1..0 skip plan: one skip" \
	'echo "1..0 # skip not compiled in"; exit 77' \
	"0 passed, 0 failed, 1 skipped" "(skipped: exit 77)"
echo "1..$n"
exit $failed
