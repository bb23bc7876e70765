#!/bin/bash
# lint-bats.sh — make check's guard against bats assertions that can never
# fail (tests/lint-bats.py says which and why: a mid-test `A && B`, a
# mid-test `! cmd`). TAP on stdout:
#   - the linter's self-test on the samples in tests/lint-bats/: bad.bats
#     (it must report exactly the lines marked # BAD, in the file and in
#     the helpers it loads), good.bats and guarded.bats (legal uses: nothing
#     reported) and broken.bats (cannot be parsed: an error, never a pass);
#   - the premise, with the installed bats: every test of bad.bats passes
#     although each marked line's check is false, every test of good.bats
#     passes, and every test of guarded.bats (one false check each, in a
#     form the linter accepts) fails;
#   - then one line per tests/e2e/*.bats, listing what it found.
# Exit 1 when any line is "not ok".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
LINT=("$PY" "$ROOT/tests/lint-bats.py")
SAMPLES=$ROOT/tests/lint-bats
n=0 failed=0

# tap OK DESC [OUTPUT] — one TAP line (OK: 0 for ok), OUTPUT as comments.
tap() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		failed=1
		echo "not ok $n - $2"
	fi
	[ -z "${3:-}" ] || sed "s|$ROOT/||; s/^/#   /" <<<"$3"
}

out=$("${LINT[@]}" --marked "$SAMPLES/bad.bats" 2>&1)
tap $? "lint self-test: bad.bats: every line marked # BAD is reported, and nothing else" "$out"
out=$("${LINT[@]}" "$SAMPLES/bad.bats" 2>&1)
rc=$?
[ "$rc" -eq 1 ]
tap $? "lint self-test: bad.bats is rejected (exit 1, got $rc)"
out=$("${LINT[@]}" "$SAMPLES/good.bats" 2>&1)
tap $? "lint self-test: good.bats (legal && and ! uses) is accepted" "$out"
out=$("${LINT[@]}" "$SAMPLES/guarded.bats" 2>&1)
tap $? "lint self-test: guarded.bats (checks that fail a test) is accepted" "$out"
out=$("${LINT[@]}" "$SAMPLES/broken.bats" 2>&1)
rc=$?
[ "$rc" -eq 2 ] && [[ $out == *"cannot parse"* ]]
tap $? "lint self-test: broken.bats is an error (exit 2, got $rc), not a pass" "$out"

# bats_all FILE WANT — run FILE with bats; every test must be WANT (ok or
# "not ok").
bats_all() {
	local out tests good
	out=$(cd "$SAMPLES" && bats --tap "$1" 2>&1 </dev/null)
	tests=$(grep -Eo -m 1 '^1\.\.[0-9]+' <<<"$out" | cut -c4-)
	good=$(grep -Ec "^$2 [0-9]+" <<<"$out")
	[ -n "$tests" ] && [ "$tests" -gt 0 ] && [ "$good" -eq "$tests" ] && return 0
	grep -E '^(ok|not ok)' <<<"$out"
	return 1
}
for s in "bad.bats ok every check marked # BAD is false, yet every test passes" \
	"good.bats ok every test passes" \
	"guarded.bats not ok every test fails"; do
	read -r file want desc <<<"$s"
	[ "$want" = not ] && want="not ok" desc=${desc#ok }
	if ! command -v bats >/dev/null; then
		n=$((n + 1))
		echo "ok $n - bats $file # skip bats is not installed"
		continue
	fi
	out=$(bats_all "$file" "$want")
	tap $? "premise, with bats $(bats --version | cut -d' ' -f2): $file: $desc" "$out"
done

shopt -s nullglob
for f in "$ROOT"/tests/e2e/*.bats; do
	out=$("${LINT[@]}" "$f" 2>&1)
	tap $? "lint tests/e2e/$(basename "$f"): no assertion that can never fail" "$out"
done
echo "1..$n"
exit $failed
