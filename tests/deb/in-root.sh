#!/bin/bash
# in-root.sh DEB VERSION — run by tests/deb/check-deb.sh inside a chroot
# into an overlay of the machine's root whose writes go to a tmpfs, in a
# private mount namespace: nothing done here reaches the machine. Prints
# one "T ok DESCRIPTION" or "T fail WHY" per check, in check-deb.sh's
# order (IN_ROOT), and other lines as comments. Stops at the first failure
# (the later checks need the earlier ones).
set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
DEB=$1 VERSION=$2

t_ok() { echo "T ok $1"; }
t_fail() {
	echo "T fail $1"
	exit 1
}

T=$(mktemp -d /var/tmp/pfs-deb.XXXXXX)
STORE=$T/store MNT=$T/mnt
mkdir "$STORE" "$MNT"
PID=
# Unmount and wait for the daemon (a PID this script's mount started):
# a daemon left running would keep the namespace alive.
stop() {
	local i
	if awk -v m="$MNT" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	[ -n "$PID" ] || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$PID" 2>/dev/null || { PID=; return 0; }
		sleep 0.1
	done
	echo "daemon $PID still running after its unmount: killed"
	kill -9 "$PID" 2>/dev/null
	PID=
	return 1
}
trap stop EXIT
mount_store() { # [ENV=VALUE...] — mount $STORE on $MNT with the installed daemon
	rm -f "$T/pid"
	env "$@" payloadfs "$STORE" "$MNT" -o "logfile=$T/log,pidfile=$T/pid" || return 1
	PID=$(cat "$T/pid") || return 1
	mountpoint -q "$MNT"
}

# 5 — a clean root
if dpkg-query -W -f='${Status}' payloadfs 2>/dev/null | grep -q installed; then
	echo "this machine has payloadfs installed: purged inside the overlay"
	dpkg --purge payloadfs >/dev/null 2>&1 || t_fail "dpkg --purge payloadfs"
fi
st=$(dpkg-query -W -f='${Status}' payloadfs 2>/dev/null)
case "$st" in *installed*) t_fail "payloadfs still in dpkg's database: $st" ;; esac
for f in /usr/bin/payloadfs /usr/bin/payloadctl; do
	[ ! -e "$f" ] || t_fail "$f exists before the install"
done
t_ok clean

# 6 — apt-get install
# Every dependency is on the machine already (packaging/install-deps.sh):
# apt must install payloadfs alone, fetching nothing.
if ! out=$(apt-get install -y -q --no-install-recommends "$DEB" 2>&1); then
	printf '%s\n' "$out" | tail -n 20
	t_fail "apt-get install $DEB failed"
fi
new=$(printf '%s\n' "$out" | awk '/^The following NEW packages will be installed:/ { f = 1; next }
	f && /^  / { for (i = 1; i <= NF; i++) print $i; next } { f = 0 }' | tr '\n' ' ')
[ "$new" = "payloadfs " ] || t_fail "apt-get installed more than payloadfs: $new"
st=$(dpkg-query -W -f='${Status} ${Version}' payloadfs 2>&1)
[ "$st" = "install ok installed $VERSION" ] || t_fail "dpkg status: $st"
[ "$(command -v payloadfs)" = /usr/bin/payloadfs ] || t_fail "payloadfs on PATH: $(command -v payloadfs)"
v=$(payloadfs --version 2>&1 | head -n 1)
[[ $v == "payloadfs $VERSION "* ]] || t_fail "payloadfs --version: $v"
t_ok "$v"

# 7 — a mount with the installed daemon
mount_store || { tail -n 5 "$T/log" 2>/dev/null; t_fail "payloadfs $STORE $MNT did not mount"; }
printf 'id,name\n0,zero\n1,one\n2,two\n3,three\n' >"$T/ref.csv"
cp "$T/ref.csv" "$MNT/events.csv" || t_fail "cp to the mount"
cmp "$T/ref.csv" "$MNT/events.csv" || t_fail "the file read back differs"
view=$(cat "$MNT/events.csv@rows=1:3")
[ "$view" = $'id,name\n1,one\n2,two' ] || t_fail "events.csv@rows=1:3 read: $view"
stop || t_fail "the daemon did not exit after fusermount3 -u"
t_ok mount

# 8 — no fault points in the packaged daemon
mount_store PAYLOADFS_FAULT=frag_write:1:EIO || { tail -n 5 "$T/log"; t_fail "mount with PAYLOADFS_FAULT set"; }
head -c 3000000 /dev/zero | tr '\0' 'x' | fold -w 99 >"$MNT/big.txt" ||
	t_fail "a commit with PAYLOADFS_FAULT=frag_write:1:EIO set failed: the package has fault points"
grep -q "fault point" "$T/log" && t_fail "the daemon's log has a fault line: $(grep "fault point" "$T/log")"
stop || t_fail "the daemon did not exit after fusermount3 -u"
t_ok faults

# 9 — payloadctl on the unmounted store
ls_out=$(payloadctl ls "$STORE" 2>&1) || t_fail "payloadctl ls: $ls_out"
grep -q events.csv <<<"$ls_out" || t_fail "payloadctl ls has no events.csv: $ls_out"
payloadctl cat "$STORE" /events.csv >"$T/cat.csv" 2>"$T/cat.err" || t_fail "payloadctl cat: $(cat "$T/cat.err")"
cmp "$T/ref.csv" "$T/cat.csv" || t_fail "payloadctl cat differs"
t_ok payloadctl

# 10 — purge
files=$(dpkg -L payloadfs | while read -r f; do [ -f "$f" ] && echo "$f"; done)
[ -n "$files" ] || t_fail "dpkg -L payloadfs lists no file"
out=$(apt-get purge -y -q payloadfs 2>&1) || { printf '%s\n' "$out" | tail -n 20; t_fail "apt-get purge"; }
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done)
[ -z "$left" ] || t_fail "left after the purge: $left"
[ ! -e /usr/share/doc/payloadfs ] || t_fail "/usr/share/doc/payloadfs left after the purge"
t_ok purge
