#!/usr/bin/env bats
# fstab.bats — mounting like any file system: `mount -t fuse.payloadfs`,
# an fstab line with `mount -a -T FSTAB` (noauto lines skipped) and
# `mount -T FSTAB MNT`, `umount MNT`, and an unknown option refused by name.
#
# Each test runs its mounts in a private mount namespace (unshare -m
# --propagation private), so nothing it mounts is seen outside, and with a
# temporary fstab: the machine's /etc/fstab is never read or changed.
# mount(8) runs /sbin/mount.fuse3 (Debian's fuse3), which runs
# `payloadfs STORE MNT -o OPTS` through /bin/sh. mount(8) drops PATH from
# the environment of its helpers, so the shell searches its default path,
# which starts with /usr/local/sbin: inside the namespace a directory
# holding only a link to the built payloadfs is bind-mounted there. The
# binary is never installed, and the machine's /usr/local/sbin is untouched.

load helpers

setup() {
	pfs_init
	command -v unshare >/dev/null
	[ -x /sbin/mount.fuse3 ] || [ -x /usr/sbin/mount.fuse3 ]
	mkdir "$TMP/bin" "$TMP/mnt2"
	ln -s "$(readlink -f "$PFS")" "$TMP/bin/payloadfs"
}
teardown() { pfs_teardown; }

# in_ns SCRIPT — run the bash SCRIPT in a new private mount namespace with
# the built payloadfs first in PATH (and in the default path of mount's
# helpers, see above). The script sees $STORE, $MNT, $TMP.
in_ns() {
	"${SAN_ENV[@]}" STORE="$STORE" MNT="$MNT" TMP="$TMP" PATH="$TMP/bin:$PATH" \
		unshare -m --propagation private bash -c '
set -u
mount --bind "$TMP/bin" /usr/local/sbin || exit 99
# wait_gone PIDFILE — after an umount, wait for that daemon to exit
wait_gone() {
	local pid i
	pid=$(cat "$1" 2>/dev/null) || return 0
	for ((i = 0; i < 1000; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.01
	done
	echo "daemon $pid still running after umount" >&2
	return 1
}
'"$1" 3>&-
}

@test "mount -t fuse.payloadfs STORE MNT -o OPTS mounts through mount.fuse3; umount MNT unmounts" {
	run in_ns '
mount -t fuse.payloadfs "$STORE" "$MNT" -o allow_other,log_level=warn,pidfile=$TMP/pid,logfile=$TMP/log || exit 1
awk -v m="$MNT" '"'"'$2 == m { print "type", $3; print "opts", $4 }'"'"' /proc/self/mounts
echo hello >"$MNT/a.txt" || exit 2
cat "$MNT/a.txt"
umount "$MNT" || exit 3
wait_gone "$TMP/pid" || exit 4
mountpoint -q "$MNT" && exit 5
echo done'
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *"type fuse.payloadfs"* ]]
	[[ $output == *allow_other* ]]
	[[ $output == *hello* ]]
	[[ $output == *done ]]
	# the object is in the store: what was written through mount -t stays
	mount_pfs
	[ "$(cat "$MNT/a.txt")" = hello ]
}

@test "fstab: mount -a mounts a defaults,allow_other,_netdev line and skips noauto; mount MNT mounts the noauto line" {
	cat >"$TMP/fstab" <<-EOF
	# a comment, as in /etc/fstab
	$STORE $MNT fuse.payloadfs defaults,allow_other,_netdev,pidfile=$TMP/pid1,logfile=$TMP/log1 0 0
	$STORE.b $TMP/mnt2 fuse.payloadfs defaults,noauto,nofail,x-systemd.automount,x-systemd.idle-timeout=60,users,pidfile=$TMP/pid2,logfile=$TMP/log2 0 0
	EOF
	mkdir "$STORE.b"
	run in_ns '
mount -a -T "$TMP/fstab" || exit 1
mountpoint -q "$MNT" && echo "auto line mounted"
mountpoint -q "$TMP/mnt2" && echo "noauto line mounted by mount -a"
echo x >"$MNT/x" || exit 2
umount "$MNT" || exit 3
wait_gone "$TMP/pid1" || exit 4
mount -T "$TMP/fstab" "$TMP/mnt2" || exit 5
mountpoint -q "$TMP/mnt2" && echo "noauto line mounted by name"
echo y >"$TMP/mnt2/y" || exit 6
cat "$TMP/mnt2/y"
umount "$TMP/mnt2" || exit 7
wait_gone "$TMP/pid2" || exit 8
echo done'
	show_output
	rm -rf "$STORE.b"
	[ "$status" -eq 0 ]
	[[ $output == *"auto line mounted"* ]]
	[[ $output != *"noauto line mounted by mount -a"* ]]
	[[ $output == *"noauto line mounted by name"* ]]
	[[ $output == *done ]]
}

@test "fstab: a defaults,relatime,noatime,... line mounts (atime policies accepted; atime only by utimensat)" {
	cat >"$TMP/fstab" <<-EOF
	$STORE $MNT fuse.payloadfs defaults,relatime,noatime,lazytime,nodiratime,strictatime,diratime,pidfile=$TMP/pid1,logfile=$TMP/log1 0 0
	EOF
	run in_ns '
mount -a -T "$TMP/fstab" || exit 1
mountpoint -q "$MNT" && echo "atime line mounted"
echo a >"$MNT/a" || exit 2
touch -a -d @1000000000 "$MNT/a" || exit 3
cat "$MNT/a" >/dev/null || exit 4
stat -c "atime %X" "$MNT/a"
umount "$MNT" || exit 5
wait_gone "$TMP/pid1" || exit 6
echo done'
	show_output
	[ "$status" -eq 0 ]
	[[ $output == *"atime line mounted"* ]]
	# a read leaves the atime that utimensat set, whatever the policy
	[[ $output == *"atime 1000000000"* ]]
	[[ $output == *done ]]
}

@test "payloadfs itself ignores the options of mount(8) and systemd (what mount.fuse3 may pass on)" {
	mount_pfs "defaults,_netdev,auto,nofail,user,users,x-systemd.automount,x-systemd.requires=a.mount"
	echo z >"$MNT/z"
	[ "$(cat "$MNT/z")" = z ]
}

@test "an unknown option is refused by name through mount -t and directly; nothing is mounted" {
	run in_ns 'mount -t fuse.payloadfs "$STORE" "$MNT" -o allow_other,no_such_opt=1'
	show_output
	[ "$status" -ne 0 ]
	[[ $output == *no_such_opt* ]]
	not_mounted "$MNT"
	run pfs "$STORE" "$MNT" -o bogus_option
	[ "$status" -eq 1 ]
	[[ $output == *"unknown option"*bogus_option* ]]
	[[ $output == *"payloadfs: options: unknown or invalid option"* ]]
	not_mounted "$MNT"
}
