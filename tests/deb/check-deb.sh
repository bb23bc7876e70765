#!/bin/bash
# check-deb.sh BUILD — `make check-deb`, and part `deb` of tests/run-all.sh:
# build the Debian package and install it into a throwaway root. TAP.
#
#  1  `make deb` (packaging/deb.sh) builds payloadfs_VERSION_ARCH.deb with
#     dpkg-buildpackage, Debian's hardening flags on top of -Werror, and no
#     warning in the build log (a symbol the library gained or lost against
#     debian/libpayload0.symbols is one), and the three other binary
#     packages: libpayload0, libpayload-dev, python3-payloadfs
#  2  lintian reports no error and no warning (packaging/README.md)
#  3  the package's files list has the binaries, both man pages and the
#     docs; and, for each of the mount helper, the systemd units and the
#     bash completion that packaging/ has, its installed path
#  4  Depends names fuse3 and every shared library the binaries link
#     (${shlibs:Depends})
#  5  the files lists of the library packages: libpayload.so.0(.1.0) in
#     libpayload0 (in /usr/lib/MULTIARCH), payload.h, payload.pc, the
#     libpayload.so link and payload(3) in libpayload-dev, the module in
#     python3-payloadfs; each library file in exactly one package;
#     libpayload-dev depends on libpayload0 (= VERSION), python3-payloadfs
#     on python3 and libpayload0 (not on -dev)
# Then, as root, in a private mount namespace (unshare -m): an overlay of
# the whole root file system whose writes go to a tmpfs, chrooted into
# (tests/deb/in-root.sh). What apt and dpkg do there never reaches this
# machine; the namespace and the tmpfs go away with the test.
#  6  the root is clean: none of the four packages, no /usr/bin/payloadfs,
#     no payload.h, no importable payloadfs module (purged inside the
#     overlay when the machine itself has them)
#  7  `apt-get install` of the four .debs installs them and nothing else
#     (their dependencies are on the machine already: install-deps.sh), and
#     `payloadfs --version` (found on PATH) prints the package's version
#  8  the INSTALLED daemon mounts a store in the root: a CSV written and
#     closed reads back byte for byte, a @rows= view reads the right rows,
#     fusermount3 -u unmounts it and the daemon exits
#  9  the installed daemon has no fault points (debian/rules builds with
#     FAULT=0): with PAYLOADFS_FAULT=frag_write:1:EIO a commit still works
# 10  the installed payloadctl reads the unmounted store (ls, cat)
# 11  /usr/bin/python3 imports the installed payloadfs module (from
#     /usr/lib/python3/dist-packages, PAYLOADFS_LIB unset, cwd /) and reads
#     that store through the installed libpayload.so.0 (get, read_rows)
# 12  a ten-line C program compiled with `pkg-config --cflags --libs
#     payload` (payload.pc's libdir is /usr/lib/MULTIARCH) reads the store
#     (a skip when the root has no gcc or pkg-config)
# 13  `apt-get purge libpayload-dev` removes the header and the .so link
#     and leaves python3-payloadfs installed and working (test 11 again)
# 14  `apt-get purge` of the others removes every file the four installed
#
# Without root, unshare or overlayfs, 6-14 are skips. What it proves: the
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
OUT=$(dirname "$DEB")
ARCH=$(dpkg-deb -f "$DEB" Architecture)
LIBDEB=$OUT/libpayload0_${VERSION}_$ARCH.deb
DEVDEB=$OUT/libpayload-dev_${VERSION}_$ARCH.deb
PYDEB=$OUT/python3-payloadfs_${VERSION}_all.deb
for d in "$LIBDEB" "$DEVDEB" "$PYDEB"; do
	[ -f "$d" ] || notok "make deb built $(basename "$d")" "$(ls "$OUT")"
done
[ "$failed" = 0 ] || finish

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
while IFS='=' read -r src dst; do
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

# 5 — the library packages' files lists and dependencies
files_of() { dpkg-deb -c "$1" | awk '{ print $6 }' | sed 's,^\./,/,'; }
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
lib_list=$(files_of "$LIBDEB") dev_list=$(files_of "$DEVDEB") py_list=$(files_of "$PYDEB")
missing=""
grep -qx "/usr/lib/$MA/libpayload\.so\.0\.[0-9.]*" <<<"$lib_list" || missing="$missing libpayload0:/usr/lib/$MA/libpayload.so.0.*"
grep -qxF "/usr/lib/$MA/libpayload.so.0" <<<"$lib_list" || missing="$missing libpayload0:/usr/lib/$MA/libpayload.so.0"
for f in /usr/include/payload.h "/usr/lib/$MA/pkgconfig/payload.pc" "/usr/lib/$MA/libpayload.so" \
	/usr/share/man/man3/payload.3.gz; do
	grep -qxF "$f" <<<"$dev_list" || missing="$missing libpayload-dev:$f"
done
for f in /usr/lib/python3/dist-packages/payloadfs/__init__.py /usr/lib/python3/dist-packages/payloadfs/zarr.py \
	/usr/lib/python3/dist-packages/payloadfs/follow.py /usr/lib/python3/dist-packages/payloadfs/_queue.py; do
	grep -qxF "$f" <<<"$py_list" || missing="$missing python3-payloadfs:$f"
done
# each file in one package only (the .so link not in libpayload0, ...)
dup=$(printf '%s\n' "$list" "$lib_list" "$dev_list" "$py_list" | grep -v '/$' | sort | uniq -d)
[ -z "$dup" ] || missing="$missing in two packages: $dup"
grep -qF "libpayload0 (= $VERSION)" <<<"$(dpkg-deb -f "$DEVDEB" Depends)" ||
	missing="$missing libpayload-dev Depends: $(dpkg-deb -f "$DEVDEB" Depends)"
pydeps=$(dpkg-deb -f "$PYDEB" Depends)
for p in python3 libpayload0; do
	grep -Eq "(^|, )$p( |,|$)" <<<"$pydeps" || missing="$missing python3-payloadfs Depends lacks $p: $pydeps"
done
grep -q libpayload-dev <<<"$pydeps" && missing="$missing python3-payloadfs depends on libpayload-dev"
if [ -z "$missing" ]; then
	ok "files lists and Depends of libpayload0, libpayload-dev, python3-payloadfs"
else
	notok "files lists and Depends of libpayload0, libpayload-dev, python3-payloadfs" \
		"wrong:$missing"
fi

# 6-14 — in a throwaway root
IN_ROOT=("the root has none of the packages before the install"
	"apt-get install of the four .debs (nothing else) and payloadfs --version"
	"the installed daemon mounts a store: write, read back, a @rows= view, unmount"
	"the installed daemon has no fault points (PAYLOADFS_FAULT ignored)"
	"the installed payloadctl reads the unmounted store"
	"the installed python3-payloadfs reads the store through the installed libpayload0"
	"a C program built with pkg-config --cflags --libs payload reads the store"
	"purging libpayload-dev leaves python3-payloadfs working"
	"apt-get purge removes every file of the four packages")
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
mkdir "$WORK/debs"
cp "$DEB" "$LIBDEB" "$DEVDEB" "$PYDEB" "$WORK/debs/"
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
	chroot "$R" /bin/bash "$W/in-root.sh" "$W/debs" "$2"
' in-root "$WORK" "$VERSION" >"$WORK/out" 2>&1
rc=$?
# in-root.sh prints "T ok|fail|skip DESCRIPTION" (one per entry of IN_ROOT,
# in order) and comment lines.
i=0
while IFS= read -r line; do
	case "$line" in
	"T ok "*) ok "${IN_ROOT[$i]}"; i=$((i + 1)) ;;
	"T fail "*) notok "${IN_ROOT[$i]}" "${line#T fail }"; i=$((i + 1)) ;;
	"T skip "*) skip "${IN_ROOT[$i]}" "${line#T skip }"; i=$((i + 1)) ;;
	*) echo "# $line" ;;
	esac
done <"$WORK/out"
while [ "$i" -lt "${#IN_ROOT[@]}" ]; do
	notok "${IN_ROOT[$i]}" "not reached (the root's script ended with status $rc)"
	i=$((i + 1))
done
finish
