#!/usr/bin/env bats
# bad.bats — a sample for tests/lint-bats.sh's self-test. Every line marked
# with a BAD comment holds a check that is false, yet bats passes every
# test here (lint-bats.sh runs it to prove that premise): bash's set -e
# ignores a failure in all but the last command of an && list, in a
# negated pipeline, and in a { } group or an if, loop or case body whose
# status nobody checks. tests/lint-bats.py must report exactly the marked
# lines (also those of the assertion helpers here and in
# sample_helpers.bash).

load sample_helpers

setup() {
	[ -e /nonexistent ] && true   # BAD: a failed check of setup is ignored too
	true
}

@test "a mid-test && list" {
	run true
	[ "$status" -eq 1 ] && [ -z "$output" ]   # BAD
	true
}

@test "a mid-test negation, also of a pipeline" {
	! grep -q root /etc/passwd   # BAD
	! grep root /etc/passwd | grep -q root   # BAD
	true
}

@test "&& lists and negations inside if, loops, case and { } (whose status is not checked)" {
	if true; then
		[ 1 = 2 ] && [ 2 = 2 ]   # BAD
	fi
	if false; then
		true
	else
		! true   # BAD
	fi
	for i in 1 2; do
		[ "$i" -gt 1 ] && [ "$i" -lt 3 ]   # BAD
	done
	for ((i = 0; i < 2; i++)); do
		[ "$i" -lt 0 ] && [ "$i" -lt 2 ]   # BAD
	done
	while read -r a; do
		[ -z "$a" ] && [ "$a" != x ]   # BAD
	done <<<"a"
	case x in
	x) [ a = b ] && [ b = b ] ;;   # BAD
	esac
	{ [ a = b ] && [ b = b ]; }   # BAD
	true
}

@test "a list spread over lines is reported at its first line; one after ; too" {
	[ -d /nonexistent ] &&   # BAD
		[ -d /tmp ]
	true; [ 1 = 2 ] && [ 2 = 2 ]; true   # BAD
	false || [ 1 = 2 ] && true   # BAD
	! [ -d / ] && true   # BAD
	[[ -d / && -d /nonexistent ]] && (( 1 && 2 ))   # BAD
	true
}

@test "an && list in the body of a test that is not last in it" {
	x=$(echo y)
	[ "$x" = z ] && echo "# never printed" >&3   # BAD
	run bash -c 'exit 0'
	[ "$status" -eq 0 ]
}

@test "assertion helpers: called as a command from a test, also from a loaded file" {
	local_check /
	sample_check /
	run false
	[ "$status" -eq 0 ] || other_check
}

local_check() {
	[ -f "$1" ] && [ -r "$1" ]   # BAD
	deeper_check "$1"
}

# deeper_check — called by an assertion helper: an assertion helper too
deeper_check() {
	! [ -d "$1" ]   # BAD
	true
}

# other_check — after ||: its status counts, so it is checked as well
other_check() {
	[ -d /nonexistent ] && [ -d /tmp ]   # BAD
	true
}
