# broken.bats — a sample that does not parse (an unterminated quote):
# tests/lint-bats.py must say so and fail, never pass it unchecked.

@test "unterminated" {
	echo "a && b
	[ 1 = 1 ] && [ 2 = 2 ]
}
