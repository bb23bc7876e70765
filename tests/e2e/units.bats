#!/usr/bin/env bats
# units.bats — the systemd units of packaging/systemd/ pass
# `systemd-analyze verify` (which needs no systemd as PID 1: it loads the
# units offline). verify insists that ExecStart's binary exists, so the
# service is checked in a temporary copy that names the built payloadfs
# instead of /usr/bin/payloadfs; --man=no because the man pages are not
# installed. Warnings (an unknown key, a bad value) do not change verify's
# exit status, so any output at all fails the test.

load helpers

setup() {
	command -v systemd-analyze >/dev/null
	UNITS=$BATS_TEST_DIRNAME/../../packaging/systemd
	UTMP=$(mktemp -d "${TMPDIR:-/tmp}/pfs-units.XXXXXX")
}
teardown() { rm -rf "$UTMP"; }

# verify UNIT... — systemd-analyze verify of the units, all output merged
verify() { systemd-analyze verify --man=no "$@" 2>&1; }

@test "payloadfs@.service verifies (as instance payloadfs@mnt-payload.service)" {
	grep -q '^ExecStart=/usr/bin/payloadfs ' "$UNITS/payloadfs@.service"
	sed "s#/usr/bin/payloadfs #$(readlink -f "$PFS") #" "$UNITS/payloadfs@.service" \
		>"$UTMP/payloadfs@mnt-payload.service"
	run verify "$UTMP/payloadfs@mnt-payload.service"
	show_output
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "mnt-payload.mount verifies: Type=fuse.payloadfs, Where= matches its name" {
	grep -qx 'Type=fuse.payloadfs' "$UNITS/mnt-payload.mount"
	grep -qx 'Where=/mnt/payload' "$UNITS/mnt-payload.mount"
	run verify "$UNITS/mnt-payload.mount"
	show_output
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "verify catches a broken unit (the check above can fail)" {
	sed 's/^What=/Wht=/' "$UNITS/mnt-payload.mount" >"$UTMP/mnt-payload.mount"
	run verify "$UTMP/mnt-payload.mount"
	[ "$status" -ne 0 ]
	[[ $output == *"What= setting is missing"* ]]
}
