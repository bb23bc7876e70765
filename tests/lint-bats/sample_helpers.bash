# sample_helpers.bash — loaded by the lint self-test's samples (bad.bats,
# good.bats, guarded.bats).

# sample_check DIR — an assertion helper (bad.bats calls it as a command)
sample_check() {
	[ -f "$1" ] && [ -x "$1" ]   # BAD: a helper's mid-function && list
	[ -r "$1" ]
}

# sample_value — not an assertion: only ever used in $(...), conditions
# and run
sample_value() {
	[ -n "${HOME:-}" ] && echo "$HOME"
	! true
	echo done
}

# sample_teardown — called from teardown only: not an assertion
sample_teardown() {
	[ -n "${BG:-}" ] && kill "$BG" 2>/dev/null && wait "$BG"
	! false
	true
}

# sample_fails — ends on a false && list: its status is the list's
sample_fails() {
	true
	[ 1 = 2 ] && true
}
