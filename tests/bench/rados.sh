#!/bin/bash
# rados.sh BUILD — the RADOS figures of `make bench-rados`: on one
# throwaway cluster (tests/rados/cluster.sh; the one in $PFS_CEPH_CONF when
# set, else one started by tests/rados/with-cluster.sh and stopped after),
#   rados bench -p POOL SECS write -b 1M -t 16 --no-cleanup, then seq, then
#   cleanup (Ceph's own client: what the cluster can do), and
#   BUILD/bench/bench_rados (the backend: put with 16 in flight, put 16 +
#   sync, get_many of 16, del), N images of 1 MiB.
# Environment: BENCH_RADOS_SECS (10), BENCH_RADOS_N (1024).
set -eu -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "rados.sh: no build ${1:-build}" >&2; exit 2; }
SECS=${BENCH_RADOS_SECS:-10}
N=${BENCH_RADOS_N:-1024}

if [ -z "${PFS_CEPH_CONF:-}" ]; then
	exec "$ROOT/tests/rados/with-cluster.sh" "$0" "$BUILD"
fi

# rbench MODE — one rados bench run; prints its bandwidth line.
rbench() {
	local out
	out=$(rados -c "$PFS_CEPH_CONF" -p "$PFS_RADOS_POOL" bench "$SECS" "$@" 2>&1) || {
		echo "$out" >&2
		echo "rados.sh: rados bench $* failed" >&2
		exit 1
	}
	printf 'rados bench %-6s %s MB/s (avg latency %s s, %s ops)\n' "$1" \
		"$(awk -F': *' '/^Bandwidth \(MB\/sec\)/ {print $2}' <<<"$out")" \
		"$(awk -F': *' '/^Average Latency\(s\)/ {print $2}' <<<"$out")" \
		"$(awk -F': *' '/^Total (writes|reads) made/ {print $2}' <<<"$out")"
}

echo "# cluster $PFS_CEPH_CONF, pool $PFS_RADOS_POOL"
rbench write -b 1M -t 16 --no-cleanup
rbench seq -t 16
rados -c "$PFS_CEPH_CONF" -p "$PFS_RADOS_POOL" cleanup >/dev/null
"$BUILD/bench/bench_rados" "$N" $((1 << 20))
