#!/bin/sh
# install-deps.sh — install what payloadfs needs to build and test on
# Debian 12, and only what is missing. Idempotent; safe to run again.
# Runs as root, or through sudo when that is available.
#
#   install-deps.sh           what `make`, `make check` and `make demo` need
#   install-deps.sh --bench   also the peers and tools of `make bench`
#                             (bindfs, squashfuse, squashfs-tools, perf)
set -eu

# clang + libclang-rt-14-dev: the libFuzzer harnesses (make fuzz; clang
# only recommends the runtime, and --no-install-recommends skips it);
# valgrind: make valgrind; python3-numpy: numpy.memmap in mmap.bats;
# python3-lmdb: e2e tests that make stores of older formats;
# systemd: systemd-analyze verify of the units (tests/e2e/units.bats);
# bash-completion: tests/e2e/completion.bats; python3-prometheus-client:
# its text-format parser checks the .metrics scrape (tests/e2e/metrics.bats).
# python3-pytest, python3-pandas, python3-zarr: the payloadfs Python
# package's tests (tests/python; pandas and zarr are what it integrates).
# librados-dev: the RADOS backend (cache/backend_rados.c links -lrados);
# ceph-mon, ceph-osd, ceph-common: the throwaway test cluster that
# tests/rados/cluster.sh starts on 127.0.0.1 (ceph-common has the `ceph`
# and `rados` tools). Ceph 16.2 in Debian 12; about 60 MB of packages,
# about 230 MB installed (--no-install-recommends).
# debhelper, lintian: `make deb` and its test (tests/deb/check-deb.sh, part
# deb of make check; dpkg-dev comes with build-essential); gnuplot-nox:
# the benchmark charts (tests/bench/chart.sh, checked by make check).
PKGS="build-essential pkg-config libfuse3-dev fuse3 liblmdb-dev lmdb-utils
liblz4-dev liburing-dev libxxhash-dev bats attr python3 python3-numpy e2fsprogs
util-linux coreutils clang libclang-rt-14-dev valgrind python3-lmdb
librados-dev ceph-mon ceph-osd ceph-common debhelper lintian gnuplot-nox
systemd bash-completion python3-prometheus-client
python3-pytest python3-pandas python3-zarr"
BENCH_PKGS="bindfs squashfuse squashfs-tools linux-perf"

for arg in "$@"; do
	case "$arg" in
	--bench) PKGS="$PKGS $BENCH_PKGS" ;;
	*) echo "usage: install-deps.sh [--bench]" >&2; exit 2 ;;
	esac
done

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "install-deps: all dependencies present"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: missing:$missing; run as root (sudo is not available)" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is wanted
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
echo "install-deps: installed:$missing"
