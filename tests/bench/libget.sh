#!/bin/bash
# libget.sh BUILD — the library's figure of `make bench` (issue 14): batched
# gets of cached small chunks through libpayload (BUILD/bench/libget)
# against open + read + close of the same chunks as files through a
# payloadfs mount of the same store, and on ext4. Prints chunks/s of each
# way and the ratios, and writes them to BUILD/bench/lib-results.txt.
#
# Environment: BENCH_LIB_CHUNKS=100000 chunks, BENCH_LIB_SIZE=4096 bytes
# each (at most 4096: the chunks are written with payload_put_many),
# BENCH_LIB_BATCH=1000 requests per payload_get_many, BENCH_LIB_REPS=3
# passes after one warm-up (best reported), BENCH_DIR=/var/tmp where the
# work directory is made (its file system is the "ext4" way).
# The mount is unmounted on exit, failure or Ctrl-C; only the daemon this
# script started is waited for. Not part of `make check`.
set -eu -o pipefail

BUILD=$(cd "${1:-build}" && pwd)
N=${BENCH_LIB_CHUNKS:-100000}
SIZE=${BENCH_LIB_SIZE:-4096}
BATCH=${BENCH_LIB_BATCH:-1000}
REPS=${BENCH_LIB_REPS:-3}
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/pfs-benchlib.XXXXXX")
mkdir "$W/store" "$W/mnt" "$W/ext"
pid=
cleanup() {
	if mountpoint -q "$W/mnt"; then fusermount3 -u "$W/mnt" || fusermount3 -uz "$W/mnt"; fi
	if [ -n "$pid" ]; then
		for _ in $(seq 1000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
	fi
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# bench lib: $N chunks of $SIZE bytes, batches of $BATCH, $(df -T "$W" | awk 'NR == 2 { print $2 }') under $W; load: $(uptime | sed 's/.*load/load/')"
"$BUILD/payloadctl" init "$W/store" >/dev/null
mkdir "$W/c"
"$BUILD/payloadctl" import "$W/store" "$W/c" /c >/dev/null   # put_many makes no directories
"$BUILD/bench/libget" put "$W/store" "$N" "$SIZE"
"$BUILD/bench/libget" files "$W/ext" "$N" "$SIZE"
"$BUILD/payloadfs" "$W/store" "$W/mnt" -o "logfile=$W/log,pidfile=$W/pid"
pid=$(cat "$W/pid")
"$BUILD/bench/libget" read "$W/store" "$W/mnt" "$W/ext" "$N" "$SIZE" "$BATCH" "$REPS" |
	tee "$BUILD/bench/lib-results.txt"
