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
	if rados_mode; then
		skip "no store involved: runs once, in the e2e part"
	fi
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

# systemd reads /etc/fstab through systemd-fstab-generator; run on a
# temporary fstab (SYSTEMD_FSTAB) it shows what systemd makes of the lines
# the guide documents.
@test "fstab lines through systemd-fstab-generator: _netdev orders after the network, x-systemd.automount makes an automount" {
	local gen=/lib/systemd/system-generators/systemd-fstab-generator
	[ -x "$gen" ]
	cat >"$UTMP/fstab" <<-EOF
	/srv/payload /mnt/payload fuse.payloadfs defaults,allow_other,_netdev 0 0
	/srv/p2 /mnt/p2 fuse.payloadfs defaults,noauto,x-systemd.automount,_netdev 0 0
	EOF
	mkdir -p "$UTMP/gen/normal" "$UTMP/gen/early" "$UTMP/gen/late"
	SYSTEMD_FSTAB=$UTMP/fstab SYSTEMD_LOG_LEVEL=err "$gen" "$UTMP/gen/normal" "$UTMP/gen/early" "$UTMP/gen/late"
	local n=$UTMP/gen/normal
	grep -qx 'Type=fuse.payloadfs' "$n/mnt-payload.mount"
	grep -qx 'What=/srv/payload' "$n/mnt-payload.mount"
	# _netdev: a remote file system, mounted with the network up
	[ -e "$n/remote-fs.target.requires/mnt-payload.mount" ]
	# noauto + x-systemd.automount: not mounted at boot, an automount instead
	grep -qx 'Where=/mnt/p2' "$n/mnt-p2.automount"
	[ -e "$n/remote-fs.target.requires/mnt-p2.automount" ]
	[ ! -e "$n/remote-fs.target.requires/mnt-p2.mount" ]
	run verify "$n/mnt-payload.mount" "$n/mnt-p2.mount" "$n/mnt-p2.automount"
	show_output
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}
