#!/bin/bash
# in-root.sh DEBDIR VERSION — run by tests/deb/check-deb.sh inside a chroot
# into an overlay of the machine's root whose writes go to a tmpfs, in a
# private mount namespace: nothing done here reaches the machine. Prints
# one "T ok DESCRIPTION" or "T fail WHY" per check, in check-deb.sh's
# order (IN_ROOT), and other lines as comments. Stops at the first failure
# (the later checks need the earlier ones).
set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
DEBDIR=$1 VERSION=$2
# the four binary packages of the source package payloadfs
PKGS="payloadfs libpayload0 libpayload-dev python3-payloadfs"

t_ok() { echo "T ok $1"; }
t_skip() { echo "T skip $1"; }
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

# 6 — a clean root
for p in $PKGS; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
		echo "this machine has $p installed: purged inside the overlay"
		dpkg --purge "$p" >/dev/null 2>&1 || t_fail "dpkg --purge $p"
	fi
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	case "$st" in *installed*) t_fail "$p still in dpkg's database: $st" ;; esac
done
for f in /usr/bin/payloadfs /usr/bin/payloadctl /usr/include/payload.h; do
	[ ! -e "$f" ] || t_fail "$f exists before the install"
done
/usr/bin/python3 -c 'import payloadfs' 2>/dev/null && t_fail "python3 imports payloadfs before the install"
t_ok clean

# 7 — apt-get install
# Every dependency is on the machine already (packaging/install-deps.sh):
# apt must install the four packages alone, fetching nothing.
debs=()
for p in $PKGS; do
	d=$(echo "$DEBDIR/${p}_"*.deb)
	[ -f "$d" ] || t_fail "no $DEBDIR/${p}_*.deb"
	debs+=("$d")
done
if ! out=$(apt-get install -y -q --no-install-recommends "${debs[@]}" 2>&1); then
	printf '%s\n' "$out" | tail -n 20
	t_fail "apt-get install ${debs[*]} failed"
fi
new=$(printf '%s\n' "$out" | awk '/^The following NEW packages will be installed:/ { f = 1; next }
	f && /^  / { for (i = 1; i <= NF; i++) print $i; next } { f = 0 }' | tr '\n' ' ')
[ "$new" = "libpayload-dev libpayload0 payloadfs python3-payloadfs " ] ||
	t_fail "apt-get installed other than the four packages: $new"
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>&1)
	[ "$st" = "install ok installed $VERSION" ] || t_fail "dpkg status of $p: $st"
done
[ "$(command -v payloadfs)" = /usr/bin/payloadfs ] || t_fail "payloadfs on PATH: $(command -v payloadfs)"
v=$(payloadfs --version 2>&1 | head -n 1)
[[ $v == "payloadfs $VERSION "* ]] || t_fail "payloadfs --version: $v"
t_ok "$v"

# 8 — a mount with the installed daemon
mount_store || { tail -n 5 "$T/log" 2>/dev/null; t_fail "payloadfs $STORE $MNT did not mount"; }
printf 'id,name\n0,zero\n1,one\n2,two\n3,three\n' >"$T/ref.csv"
cp "$T/ref.csv" "$MNT/events.csv" || t_fail "cp to the mount"
cmp "$T/ref.csv" "$MNT/events.csv" || t_fail "the file read back differs"
view=$(cat "$MNT/events.csv@rows=1:3")
[ "$view" = $'id,name\n1,one\n2,two' ] || t_fail "events.csv@rows=1:3 read: $view"
stop || t_fail "the daemon did not exit after fusermount3 -u"
t_ok mount

# 9 — no fault points in the packaged daemon
mount_store PAYLOADFS_FAULT=frag_write:1:EIO || { tail -n 5 "$T/log"; t_fail "mount with PAYLOADFS_FAULT set"; }
head -c 3000000 /dev/zero | tr '\0' 'x' | fold -w 99 >"$MNT/big.txt" ||
	t_fail "a commit with PAYLOADFS_FAULT=frag_write:1:EIO set failed: the package has fault points"
grep -q "fault point" "$T/log" && t_fail "the daemon's log has a fault line: $(grep "fault point" "$T/log")"
stop || t_fail "the daemon did not exit after fusermount3 -u"
t_ok faults

# 10 — payloadctl on the unmounted store
ls_out=$(payloadctl ls "$STORE" 2>&1) || t_fail "payloadctl ls: $ls_out"
grep -q events.csv <<<"$ls_out" || t_fail "payloadctl ls has no events.csv: $ls_out"
payloadctl cat "$STORE" /events.csv >"$T/cat.csv" 2>"$T/cat.err" || t_fail "payloadctl cat: $(cat "$T/cat.err")"
cmp "$T/ref.csv" "$T/cat.csv" || t_fail "payloadctl cat differs"
t_ok payloadctl

# 11 — the installed Python module reads the store through the installed
# library (libpayload.so.0 from the system's library path: no
# PAYLOADFS_LIB, no build tree)
files=$(for p in $PKGS; do dpkg -L "$p"; done | while read -r f; do [ -f "$f" ] && echo "$f"; done)
[ -n "$files" ] || t_fail "dpkg -L lists no file"
pycheck() {
	(cd / && env -u PAYLOADFS_LIB /usr/bin/python3 -c '
import sys, payloadfs
assert payloadfs.__file__ == "/usr/lib/python3/dist-packages/payloadfs/__init__.py", payloadfs.__file__
with payloadfs.open(sys.argv[1]) as st:
    sys.stdout.buffer.write(st.get("events.csv"))
    sys.stdout.buffer.write(st.read_rows("events.csv", 1, 3))
' "$STORE" 2>&1)
}
out=$(pycheck) || t_fail "python3 -c 'import payloadfs' ...: $out"
[ "$out" = "$(cat "$T/ref.csv")"$'\n'"id,name"$'\n'"1,one"$'\n'"2,two" ] || t_fail "payloadfs.get/read_rows read: $out"
t_ok python

# 12 — a C program built with pkg-config against libpayload-dev
if ! command -v gcc >/dev/null || ! command -v pkg-config >/dev/null; then
	t_skip "no gcc or pkg-config in the root"
else
	ma=$(gcc -print-multiarch)
	libdir=$(pkg-config --variable=libdir payload 2>&1)
	[ "$libdir" = "/usr/lib/$ma" ] || t_fail "payload.pc libdir: $libdir (not /usr/lib/$ma)"
	cat >"$T/c.c" <<'C'
#include <payload.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	payload_store *st;
	char buf[256];
	struct payload_get g = { .path = "events.csv", .buf = buf, .cap = sizeof(buf) };
	if (payload_open(argv[1], PAYLOAD_RDONLY, &st) || payload_get_many(st, &g, 1))
		return fprintf(stderr, "%s\n", payload_errmsg()), 1;
	fwrite(buf, 1, g.len, stdout);
	payload_close(st);
	return argc != 2;
}
C
	# shellcheck disable=SC2046 # pkg-config's words
	out=$(gcc -o "$T/c" "$T/c.c" $(pkg-config --cflags --libs payload) 2>&1) || t_fail "gcc with pkg-config --cflags --libs payload: $out"
	"$T/c" "$STORE" >"$T/c.out" 2>&1 || t_fail "the program: $(cat "$T/c.out")"
	cmp "$T/ref.csv" "$T/c.out" >/dev/null || t_fail "the program read: $(cat "$T/c.out")"
	t_ok cprog
fi

# 13 — python3-payloadfs does not need libpayload-dev
out=$(apt-get purge -y -q libpayload-dev 2>&1) || { printf '%s\n' "$out" | tail -n 20; t_fail "apt-get purge libpayload-dev"; }
for f in /usr/include/payload.h "/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x)/libpayload.so"; do
	[ ! -e "$f" ] || t_fail "$f left after purging libpayload-dev"
done
dpkg-query -W -f='${Status}' python3-payloadfs 2>&1 | grep -q 'ok installed' ||
	t_fail "purging libpayload-dev removed python3-payloadfs"
out=$(pycheck) || t_fail "without libpayload-dev: python3 -c 'import payloadfs' ...: $out"
t_ok nodev

# 14 — purge (libpayload-dev went in 12)
out=$(apt-get purge -y -q payloadfs libpayload0 python3-payloadfs 2>&1) || { printf '%s\n' "$out" | tail -n 20; t_fail "apt-get purge"; }
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done)
[ -z "$left" ] || t_fail "left after the purge: $left"
for d in /usr/share/doc/payloadfs /usr/lib/python3/dist-packages/payloadfs; do
	[ ! -e "$d" ] || t_fail "$d left after the purge"
done
t_ok purge
