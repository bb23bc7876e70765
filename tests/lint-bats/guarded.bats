#!/usr/bin/env bats
# guarded.bats — a sample for tests/lint-bats.sh's self-test: each test
# holds one false check written in a form that tests/lint-bats.py accepts,
# and lint-bats.sh requires that bats fails every one of them (the forms
# the lint lets through really do fail a test).

load sample_helpers

@test "one check per line" {
	[ 1 = 2 ]
	true
}

@test "! cmd || false" {
	! true || false
	true
}

@test "A && B || false" {
	[ 1 = 2 ] && true || false
	true
}

@test "an && list as the last command" {
	true
	[ 1 = 2 ] && true
}

@test "a negation as the last command" {
	true
	! true
}

@test "an && list as the last command of a subshell" {
	(cd / && [ 1 = 2 ])
	true
}

@test "an assertion helper that ends on an && list" {
	sample_fails
	true
}

@test "run ! with a command that succeeds" {
	run ! true
	true
}

@test "[ ! ... ] and [[ ... && ... ]]" {
	[ ! -d / ]
	true
}

@test "[[ ... && ... ]]" {
	[[ -d / && -d /nonexistent ]]
	true
}
