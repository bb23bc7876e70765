#!/usr/bin/env bats
# good.bats — a sample for tests/lint-bats.sh's self-test: legal uses of
# && and !, which tests/lint-bats.py must accept (no finding). Every check
# here holds: lint-bats.sh runs it with bats, and every test must pass.

load sample_helpers

teardown() {
	[ -n "${TMP:-}" ] && rm -rf "$TMP"
	sample_teardown
}

@test "&& in conditions, strings, substitutions, [[ ]], (( )) and here-documents" {
	if [ -d / ] && [ -d /tmp ]; then true; fi
	if ! [ -e /x ] && true; then
		true
	elif [ -d / ] && ! false; then
		true
	fi
	while [ -d / ] && false; do :; done
	until true && true; do :; done
	run bash -c 'true && false; ! true'
	run bash -c "[ -d / ] && exit 0
! false"
	x=$(false && true; ! false)
	y="a && b" z='! c' w=$'x && y'
	arr=(a "&& b" '! c')
	[[ -d / && ( -d /tmp || -d /var ) ]]
	[[ ! -e /x ]]
	(( 1 && 2 ))
	[ ! -e /nonexistent ]
	cat <<EOF2 >/dev/null
	a && b
	! c
EOF2
	cat <<-'EOF3' >/dev/null
	$(x && y)
	! z
	EOF3
	echo "a && b" # a comment: && and ! are not code here
	echo "${x:-&&}" "$(echo "a && b")" `echo '&&'`
	diff <(true && echo a) <(echo a)
	[ -d / ] && [ -d /tmp ]
}

@test "guarded forms: || false, || true, || a command" {
	! grep -q nothing-like-this /dev/null || false
	[ -d / ] && [ -d /tmp ] || false
	[ -d / ] && [ -d /tmp ] || { echo "# no dirs" >&2; return 1; }
	{ false && true; } || true
	run ! false
	run -1 false
	true
}

@test "&& before control flow: break, continue, return, skip" {
	for i in 1 2 3; do
		[ "$i" = 1 ] && continue
		[ "$i" = 3 ] && break
	done
	[ -e /nonexistent ] && skip "a condition, not an assertion"
	true
}

@test "the last command of a test, of a subshell, of a function" {
	(cd / && ls >/dev/null)
	(cd /tmp && ! false)
	x=$(sample_value)
	if sample_value >/dev/null; then true; fi
	run sample_value
	[ "$(last_ok)" = ok ]
	true
	[ -d / ] && ! [ -e /x ]
}

@test "a negation as the last command" {
	true
	! false
}

# last_ok — ends on an && list: its status is the list's
last_ok() {
	[ -d / ] && echo ok
}
