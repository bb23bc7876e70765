#!/bin/bash
# deb.sh BUILD — `make deb`: build payloadfs_VERSION_ARCH.deb with
# `dpkg-buildpackage -us -uc -b` in a copy of the source tree, so that the
# tree itself is never written to (no debian/ at its top, no build
# products outside BUILD).
#
#   BUILD/deb/payloadfs-VERSION/   the copy: the files git knows (tracked,
#                                  and untracked but not ignored), with
#                                  packaging/debian copied to debian/
#   BUILD/deb/*.deb, *.changes, *.buildinfo, build.log
#
# The build runs with DEB_BUILD_OPTIONS=nocheck (debian/rules never runs
# the tests anyway: CI does) and in parallel on every core. The last line
# printed is the path of the .deb. packaging/README.md says more.
set -eu -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
OUT=$BUILD/deb

for t in dpkg-buildpackage dh dpkg-parsechangelog; do
	command -v "$t" >/dev/null || {
		echo "deb: $t not found (packaging/install-deps.sh installs dpkg-dev and debhelper)" >&2
		exit 1
	}
done

VERSION=$(dpkg-parsechangelog -l "$ROOT/packaging/debian/changelog" -S Version)
TREE=$OUT/payloadfs-$VERSION
rm -rf "$OUT"
mkdir -p "$TREE"

# The source files: git's list when this is a clone, else everything but
# build directories and version-control metadata.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -z -c -o --exclude-standard) |
		(cd "$ROOT" && xargs -0 cp -a --parents -t "$TREE" --)
else
	(cd "$ROOT" && tar -cf - --exclude=./.git --exclude='./build' --exclude='./build-*' .) |
		(cd "$TREE" && tar -xf -)
fi
# The copy of a worktree never has its own build products; debian/ is
# the packaging directory.
rm -rf "$TREE/debian"
cp -a "$ROOT/packaging/debian" "$TREE/debian"

echo "deb: building payloadfs $VERSION in $TREE (log: $OUT/build.log)" >&2
# Not make's jobserver of a caller (make check runs this): dh gives make
# its own -j from DEB_BUILD_OPTIONS.
unset MAKEFLAGS MFLAGS MAKELEVEL
export DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
if ! (cd "$TREE" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1; then
	tail -n 40 "$OUT/build.log" >&2
	echo "deb: dpkg-buildpackage failed (whole log: $OUT/build.log)" >&2
	exit 1
fi
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
DEB=$OUT/payloadfs_${VERSION}_$ARCH.deb
[ -f "$DEB" ] || { echo "deb: dpkg-buildpackage made no $DEB" >&2; exit 1; }
# A warning in the build log is a failure: the Makefile has -Werror, so
# this catches what it does not see (dpkg-shlibdeps, dh_* warnings).
if grep -n 'warning:' "$OUT/build.log" >&2; then
	echo "deb: warnings in the build (above; log: $OUT/build.log)" >&2
	exit 1
fi
echo "$DEB"
