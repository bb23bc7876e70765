#!/bin/bash
# libfollow.sh BUILD — the stream figure of `make bench` (issue 14): a
# writer appends a row through a payloadfs mount and fsyncs it every
# BENCH_FOLLOW_PERIOD ms (5), BENCH_FOLLOW_ROWS times (200); a library
# follower (payload_follow_next, read-only handle beside the daemon) returns
# each row; BUILD/bench/libfollow prints the latency from the writer's
# fsync return to the follower's return of the row (median, p90, p99, max;
# target: median <= 10 ms), once waking by inotify and once by polling.
# Every row is checked. Results also in BUILD/bench/libfollow-results.txt.
# The mount is unmounted on exit; only the daemon started here is waited
# for. Not part of `make check`.
set -eu -o pipefail

BUILD=$(cd "${1:-build}" && pwd)
N=${BENCH_FOLLOW_ROWS:-200}
PERIOD=${BENCH_FOLLOW_PERIOD:-5}
. "$(dirname "$0")/benchwork.sh"
bench_work libfollow store mnt

echo "# bench follow: $N rows, one every $PERIOD ms + fsync, $(bench_where)"
"$BUILD/payloadctl" init "$W/store" >/dev/null
bench_mount
: >"$BUILD/bench/libfollow-results.txt"
for mode in inotify poll; do
	printf 'id,val,pad\n' >"$W/mnt/s-$mode.csv"
	"$BUILD/bench/libfollow" "$W/store" "$W/mnt" "s-$mode.csv" "$N" "$PERIOD" "$mode" |
		tee -a "$BUILD/bench/libfollow-results.txt"
done
