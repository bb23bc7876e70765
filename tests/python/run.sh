#!/bin/bash
# run.sh BUILD — the payloadfs Python package's tests (tests/python/) with
# Debian's python3 and pytest, against BUILD's libpayload, payloadfs and
# payloadctl, the package from the source tree (python/). Prints TAP (one
# line per test and the plan) for tests/run-all.sh; exit status is pytest's.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# A sanitizer build of the library cannot be loaded into python (its
# runtime must come first): one skip (run-all.sh: exit 77, no test lines).
if readelf -d "$BUILD/libpayload.so.0" | grep -q 'libasan\|libubsan'; then
	echo "# python: $BUILD/libpayload.so.0 is a sanitizer build: skipped"
	exit 77
fi
tap=$(mktemp "${TMPDIR:-/tmp}/pytap.XXXXXX")
PAYLOADFS_BUILD=$BUILD PAYLOADFS_LIB=$BUILD/libpayload.so.0 PAYLOADFS_TAP=$tap \
	PYTHONPATH=$ROOT/python PYTHONDONTWRITEBYTECODE=1 \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider "$ROOT/tests/python" | sed 's/^/# /'
rc=${PIPESTATUS[0]}
cat "$tap"
rm -f "$tap"
exit "$rc"
