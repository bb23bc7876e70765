#!/bin/bash
# check-deb.sh BUILD — `make check-deb`, and part `deb` of tests/run-all.sh:
# build the Debian package and install it into a throwaway root. TAP.
#
#  1  `make deb` (packaging/deb.sh) builds payloadfs_VERSION_ARCH.deb with
#     dpkg-buildpackage, Debian's hardening flags on top of -Werror, and no
#     warning in the build log
#  2  lintian reports no error and no warning (packaging/README.md)
#  3  the package's files list has the binaries, both man pages and the
#     docs; and, for each of the mount helper, the systemd units and the
#     bash completion that packaging/ has, its installed path
#  4  Depends names fuse3 and every shared library the binaries link
#     (${shlibs:Depends})
# Then, as root, in a private mount namespace (unshare -m): an overlay of
# the whole root file system whose writes go to a tmpfs, chrooted into
# (tests/deb/in-root.sh). What apt and dpkg do there never reaches this
# machine; the namespace and the tmpfs go away with the test.
#  5  the root is clean: no payloadfs package, no /usr/bin/payloadfs
#     (purged inside the overlay when the machine itself has it)
#  6  `apt-get install ./payloadfs_*.deb` installs it and nothing else
#     (its dependencies are on the machine already: install-deps.sh), and
#     `payloadfs --version` (found on PATH) prints the package's version
#  7  the INSTALLED daemon mounts a store in the root: a CSV written and
#     closed reads back byte for byte, a @rows= view reads the right rows,
#     fusermount3 -u unmounts it and the daemon exits
#  8  the installed daemon has no fault points (debian/rules builds with
#     FAULT=0): with PAYLOADFS_FAULT=frag_write:1:EIO a commit still works
#  9  the installed payloadctl reads the unmounted store (ls, cat)
# 10  `apt-get purge payloadfs` removes every file the package installed
#
# Without root, unshare or overlayfs, 5-10 are skips. What it proves: the
# package installs with apt on this Debian system, pulls no dependency this
# machine lacks, and the binaries it installs run (from their installed
# paths, against the system's libraries) and serve a real mount. What it
# does not: an install on a minimal system (debootstrap), boot-time
# mounting (the units are only checked to be in the package).
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1)) failed=1
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 30 | sed 's/^/#   /'
	return 0
}
skip() { n=$((n + 1)); echo "ok $n - $1 # skip $2"; }
finish() {
	echo "1..$n"
	exit "$failed"
}

# 1 — the build
if out=$("$ROOT/packaging/deb.sh" "$BUILD" 2>&1); then
	DEB=$(printf '%s\n' "$out" | tail -n 1)
	ok "make deb built $(basename "$DEB") without a warning"
else
	notok "make deb built the package" "$out"
	finish
fi
VERSION=$(dpkg-deb -f "$DEB" Version)
CHANGES=${DEB%.deb}.changes

# 2 — lintian
if ! command -v lintian >/dev/null; then
	notok "lintian is installed (packaging/install-deps.sh)"
elif out=$(lintian --fail-on error,warning "$CHANGES" 2>&1); then
	ok "lintian: no error or warning tag"
else
	notok "lintian: no error or warning tag" "$out"
fi

# 3 — the files list
list=$(dpkg-deb -c "$DEB" | awk '{ print $NF }' | sed 's,^\./,/,')
has() { # PATH — in the list, as is or compressed
	grep -qxF -e "$1" -e "$1.gz" <<<"$list"
}
missing=""
for f in /usr/bin/payloadfs /usr/bin/payloadctl /usr/share/man/man8/payloadfs.8 \
	/usr/share/man/man1/payloadctl.1 /usr/share/doc/payloadfs/copyright \
	/usr/share/doc/payloadfs/README.md /usr/share/doc/payloadfs/guide.md \
	/usr/share/doc/payloadfs/format.md; do
	has "$f" || missing="$missing $f"
done
# what packaging/ has -> where the package must put it
optional="packaging/mount.fuse.payloadfs=/sbin/mount.fuse.payloadfs
packaging/mount.fuse.payloadfs=/usr/share/man/man8/mount.fuse.payloadfs.8
packaging/systemd/payloadfs@.service=/lib/systemd/system/payloadfs@.service
packaging/systemd/mnt-payload.mount=/usr/share/doc/payloadfs/examples/mnt-payload.mount
packaging/bash-completion/payloadctl=/usr/share/bash-completion/completions/payloadctl"
present=""
while IFS== read -r src dst; do
	[ -e "$ROOT/$src" ] || continue
	[[ " $present " == *" $src "* ]] || present="$present $src"
	has "$dst" || missing="$missing $dst"
done <<<"$optional"
if [ -z "$missing" ]; then
	ok "files list: binaries, man pages, docs${present:+ and$present}"
else
	notok "files list: binaries, man pages, docs${present:+ and$present}" \
		"missing:$missing"$'\n'"$list"
fi

# 4 — Depends
deps=$(dpkg-deb -f "$DEB" Depends)
missing=""
for p in fuse3 libc6 libfuse3-3 liblmdb0 liblz4-1 liburing2 libxxhash0 librados2; do
	grep -Eq "(^|, )$p( |,|$)" <<<"$deps" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	ok "Depends: fuse3 and the shared libraries ($deps)"
else
	notok "Depends: fuse3 and the shared libraries" "missing:$missing in: $deps"
fi

# 5-10 — in a throwaway root
IN_ROOT=("the root has no payloadfs before the install"
	"apt-get install ./$(basename "$DEB") (nothing else) and payloadfs --version"
	"the installed daemon mounts a store: write, read back, a @rows= view, unmount"
	"the installed daemon has no fault points (PAYLOADFS_FAULT ignored)"
	"the installed payloadctl reads the unmounted store"
	"apt-get purge removes every file of the package")
why=""
if [ "$(id -u)" -ne 0 ]; then
	why="needs root"
elif ! command -v unshare >/dev/null || ! command -v apt-get >/dev/null; then
	why="needs unshare and apt-get"
elif ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
	why="needs overlayfs"
fi
if [ -n "$why" ]; then
	for d in "${IN_ROOT[@]}"; do skip "$d" "$why"; done
	finish
fi

# The overlay's lower layer is / alone (not the mounts under it): the work
# directory must be on the root file system to be seen inside. $TMPDIR,
# else /var/tmp (when /tmp is a tmpfs).
WORK=""
for d in "${TMPDIR:-/tmp}" /var/tmp; do
	if [ -d "$d" ] && [ "$(stat -c %d "$d")" = "$(stat -c %d /)" ]; then
		WORK=$(mktemp -d "$d/payloadfs-deb.XXXXXX") && break
	fi
done
if [ -z "$WORK" ]; then
	for d in "${IN_ROOT[@]}"; do skip "$d" "neither \$TMPDIR nor /var/tmp is on the root file system"; done
	finish
fi
trap 'rm -rf --one-file-system "$WORK"' EXIT
cp "$DEB" "$WORK/payloadfs.deb"
cp "$ROOT/tests/deb/in-root.sh" "$WORK/"
timeout -k 10 300 unshare -m --propagation private bash -c '
	set -eu
	W=$1
	mkdir "$W/ovl"
	mount -t tmpfs -o size=512m tmpfs "$W/ovl"
	mkdir "$W/ovl/upper" "$W/ovl/work" "$W/ovl/root"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$W/ovl/upper,workdir=$W/ovl/work" "$W/ovl/root"
	R=$W/ovl/root
	mount --rbind /dev "$R/dev"
	mount -t proc proc "$R/proc"
	mount -t sysfs sysfs "$R/sys"
	mount -t tmpfs tmpfs "$R/run"
	chroot "$R" /bin/bash "$W/in-root.sh" "$W/payloadfs.deb" "$2"
' in-root "$WORK" "$VERSION" >"$WORK/out" 2>&1
rc=$?
# in-root.sh prints "T ok|fail DESCRIPTION" (one per entry of IN_ROOT,
# in order) and comment lines.
i=0
while IFS= read -r line; do
	case "$line" in
	"T ok "*) ok "${IN_ROOT[$i]}"; i=$((i + 1)) ;;
	"T fail "*) notok "${IN_ROOT[$i]}" "${line#T fail }"; i=$((i + 1)) ;;
	*) echo "# $line" ;;
	esac
done <"$WORK/out"
while [ "$i" -lt "${#IN_ROOT[@]}" ]; do
	notok "${IN_ROOT[$i]}" "not reached (the root's script ended with status $rc)"
	i=$((i + 1))
done
finish
