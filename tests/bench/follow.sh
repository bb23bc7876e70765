#!/bin/bash
# follow.sh BUILD — the stream-follow figure of `make bench` (issue 14 §3):
# a writer appends one row and fsyncs, BENCH_FOLLOW_ROWS times (default
# 200) every BENCH_FOLLOW_MS ms (default 5), while a follower that opened
# the file before polls read(2) (1 ms sleep after an empty read);
# BUILD/bench/follow (tests/bench/follow.c) times each row from the
# writer's fsync(2) return to the follower's read of it, and checks every
# byte. Once through a payloadfs mount of a fresh local store, once on the
# file system of BENCH_DIR (default /var/tmp: ext4 here), the peer. Prints
# medians and 99th percentiles against the target (median <= 10 ms after
# fsync) and writes them to BUILD/bench/follow-results.txt. The mount is
# unmounted on exit, failure or Ctrl-C; only the daemon this script
# started is waited for. Not part of `make check`.
set -eu -o pipefail

BUILD=$(cd "${1:-build}" && pwd)
ROWS=${BENCH_FOLLOW_ROWS:-200}
MS=${BENCH_FOLLOW_MS:-5}
TARGET_MS=10
. "$(dirname "$0")/benchwork.sh"
bench_work follow store mnt ext

out=$BUILD/bench/follow-results.txt
{
	echo "# bench follow: $ROWS rows, one append + fsync every $MS ms, follower polls read(2) (1 ms sleep); $(bench_where)"
	echo "# ms: lag = fsync(2) returned .. the follower read the row (negative: read before fsync returned); seen = write(2) called .. read; fsync = the writer's fsync call"
	printf '%-10s %5s %10s %10s %10s %10s %10s %10s %7s\n' way rows lag_p50 lag_p99 seen_p50 seen_p99 fsync_p50 fsync_p99 early
} | tee "$out"
"$BUILD/payloadctl" init "$W/store" >/dev/null
bench_mount
res=()
for way in payloadfs ext4; do
	dir=$W/mnt
	[ "$way" = ext4 ] && dir=$W/ext
	line=$("$BUILD/bench/follow" "$way" "$dir" "$ROWS" "$MS") || {
		echo "bench follow: FAILED on $way" >&2
		exit 1
	}
	res+=("$line")
	awk -F'\t' '{ printf "%-10s %5d %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %7d\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' <<<"$line" | tee -a "$out"
done
awk -F'\t' -v t="$TARGET_MS" '$1 == "payloadfs" {
	printf "follow: payloadfs median %.2f ms after fsync (target <= %d ms: %s), p99 %.2f ms\n", $3, t, $3 <= t ? "met" : "MISSED", $4
}' <<<"${res[0]}" | tee -a "$out"
