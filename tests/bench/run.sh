#!/bin/bash
# run.sh BUILD — the side-by-side benchmark of issue 3 (`make bench`).
#
# In one run, on the same generated CSV (>= 1 GB by default) on the local
# disk, it measures ext4 directly, bindfs (FUSE passthrough) over an ext4
# directory, squashfuse and squashfuse_ll on an lz4 image with 1 MiB blocks,
# and BUILD's payloadfs daemon (default options unless BENCH_PFS_OPTS):
#   seq     cold sequential read (fresh mount + drop_caches) and warm re-read
#   view    a 100,000-row @rows= view, cold, at row 0, the middle and near the
#           end, against `tail -n +N | head -n M` on warm ext4
#   ingest  cp + close + sync of the CSV
#   small   3,000 files of 1 KiB created, written and closed (one process)
#   readers 8 processes each reading its @part=K/8, cold, against 8
#           `tail -n +A | head -n B` on cold ext4; then 8 workers opening a
#           random 100-row @rows= view 8 times a second each for
#           BENCH_READERS_SECS, cold (fresh mount, drop_caches, rows no
#           request read before) and warm, against `tail | head` on warm
#           ext4: latency median and p99 (tests/bench/readers.c, issue 13 §5)
#   rados   on one throwaway Ceph cluster (tests/rados/cluster.sh, under the
#           work directory, stopped by PID at the end): `rados bench` write
#           and seq (1 MiB objects, 16 ops) against ingest and cold read of
#           the CSV through a RADOS store's writer; the same cold read from
#           a local store and on a follower; follower lag (close(2) on the
#           writer to the new size on a follower); 1 KiB-file commits per
#           second, 1 and 8 threads, RADOS against local; where a small
#           commit's time goes (index log append, LMDB commit: issue 12)
# and the peak RSS (VmHWM) of every payloadfs daemon at the end of its
# workload. Prints a table and the ratios against the issues' targets, and
# writes the same to BUILD/bench/results.md (raw samples: results.tsv; the
# medians and targets for charts: chart.tsv, drawn by tests/bench/chart.sh
# into BUILD/bench/bench-figures.svg and bench-targets.svg).
# Every read is checked against the ext4 bytes: wrong bytes fail the run.
#
# Environment (docs/benchmarks.md):
#   BENCH_SIZE=256M      data size (K/M/G); default 20,000,000 rows (~1.18 GB)
#   BENCH_ROWS=N         data rows (overrides BENCH_SIZE)
#   BENCH_ONLY=a,b       run only these figures: seq, view, ingest, small, rados
#   BENCH_REPS=3         runs per timed figure (median reported) ...
#   BENCH_BUDGET=60      ... stopping early once a figure has used this many s
#   BENCH_SMALL_FILES=3000
#   BENCH_SMALL_THREADS=8 the multi-thread small-file run of figure rados
#   BENCH_READERS_SECS=30 length of each random-view run (figure readers)
#   BENCH_LAG_N=300      commits timed for the follower lag (figure rados)
#   BENCH_RADOS_SECS=120 bound of each `rados bench` run (it moves the CSV's
#                        size in 1 MiB objects; a run cut short fails)
#   BENCH_PFS_OPTS=...   extra -o options for payloadfs (e.g. page_cache)
#   BENCH_PERF=1|dwarf   one extra, untimed cold read and ingest under
#                        `perf record` of the daemon (BUILD/bench/perf-*.txt)
#   BENCH_DIR=/var/tmp   where the work directory is made (local ext4)
#   BENCH_KEEP=1         keep the work directory
#
# Needs root (drop_caches). Everything lives in one mktemp directory; every
# mount made is unmounted on exit, failure or Ctrl-C, the cluster is
# stopped (cluster.sh stop: by the PIDs it recorded), and only the PIDs
# this script started are ever signalled. Not part of `make check`.
set -eu -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || {
	echo "bench: no build directory ${1:-build}" >&2
	exit 2
}
PFS=$BUILD/payloadfs
PCTL=$BUILD/payloadctl
GEN=$BUILD/bench/gencsv
SMALLF=$BUILD/bench/smallfiles
READERS=$BUILD/bench/readers
RLAG=$BUILD/bench/rlag
RLOGB=$BUILD/bench/bench_rlog
SHIM=$BUILD/bench/commit_times.so
CLUSTER_SH=$ROOT/tests/rados/cluster.sh
OUT=$BUILD/bench

REPS=${BENCH_REPS:-3}
BUDGET=${BENCH_BUDGET:-60}
ONLY=${BENCH_ONLY:-}
PERF=${BENCH_PERF:-0}
PFS_OPTS=${BENCH_PFS_OPTS:-}
NSMALL=${BENCH_SMALL_FILES:-3000}
SMALL_THREADS=${BENCH_SMALL_THREADS:-8}
LAG_N=${BENCH_LAG_N:-300}
READERS_SECS=${BENCH_READERS_SECS:-30}
LAG_POLL_US=250
RADOS_SECS=${BENCH_RADOS_SECS:-120}
RLOG_N=500 # appends timed by bench_rlog
SMALL_BYTES=1024
VIEW_ROWS=100000
ROW_BYTES=59 # mean row length of gencsv, to turn BENCH_SIZE into rows

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: FAILED: %s\n' "$*" >&2
	exit 1
}

# parse_size 256M -> bytes (K, M, G are powers of 1024); fails on junk.
parse_size() {
	local v=$1 n m=1
	case "$v" in
	*[kK]) m=1024 n=${v%?} ;;
	*[mM]) m=$((1024 * 1024)) n=${v%?} ;;
	*[gG]) m=$((1024 * 1024 * 1024)) n=${v%?} ;;
	*) n=$v ;;
	esac
	[[ $n =~ ^[0-9]+$ ]] || return 1
	echo $((n * m))
}

wants() { [ -z "$ONLY" ] || [[ ,$ONLY, == *,$1,* ]]; }

# ---- checks before anything is made ------------------------------------

[ "$(id -u)" -eq 0 ] || die "needs root (drop_caches, mounts)"
for t in "$PFS" "$GEN" "$SMALLF"; do
	[ -x "$t" ] || die "$t is missing; run make bench (it builds it)"
done
# the peers each figure needs (figure rados needs none of them)
need=(fusermount3 dd cmp getfattr)
if wants seq; then need+=(bindfs squashfuse squashfuse_ll mksquashfs); fi
if wants ingest || wants small; then need+=(bindfs); fi
for c in "${need[@]}"; do
	command -v "$c" >/dev/null || die "$c is missing; run packaging/install-deps.sh --bench"
done
if [ "$PERF" != 0 ]; then
	command -v perf >/dev/null || die "BENCH_PERF needs perf (packaging/install-deps.sh --bench)"
fi
for f in ${ONLY//,/ }; do
	case "$f" in
	seq | view | ingest | small | rados | readers) ;;
	*) die "BENCH_ONLY: unknown figure '$f' (seq, view, ingest, small, rados, readers)" ;;
	esac
done
if wants rados; then
	for t in "$PCTL" "$RLAG" "$RLOGB" "$SHIM"; do
		[ -e "$t" ] || die "$t is missing; run make bench (it builds it)"
	done
	for c in rados ceph-mon ceph-osd monmaptool; do
		command -v "$c" >/dev/null || die "$c is missing (figure rados); run packaging/install-deps.sh --bench"
	done
	[ -x "$CLUSTER_SH" ] || die "$CLUSTER_SH is missing"
	[[ $SMALL_THREADS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SMALL_THREADS must be a positive number"
	[[ $LAG_N =~ ^[1-9][0-9]*$ ]] && [ "$LAG_N" -le 3000 ] || die "BENCH_LAG_N must be a number from 1 to 3000"
	[[ $RADOS_SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RADOS_SECS must be a positive number of seconds"
fi
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive number"
if wants readers; then
	[ -x "$READERS" ] || die "$READERS is missing; run make bench (it builds it)"
	[[ $READERS_SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_READERS_SECS must be a positive number of seconds"
fi
[[ $BUDGET =~ ^[0-9]+$ ]] || die "BENCH_BUDGET must be a number of seconds"
[[ $NSMALL =~ ^[1-9][0-9]*$ ]] || die "BENCH_SMALL_FILES must be a positive number"
if [ -n "${BENCH_ROWS:-}" ]; then
	ROWS=$BENCH_ROWS
elif [ -n "${BENCH_SIZE:-}" ]; then
	b=$(parse_size "$BENCH_SIZE") || die "BENCH_SIZE: not a size: $BENCH_SIZE"
	ROWS=$((b / ROW_BYTES))
else
	ROWS=20000000
fi
[[ $ROWS =~ ^[0-9]+$ ]] && [ "$ROWS" -ge $((3 * VIEW_ROWS)) ] ||
	die "need at least $((3 * VIEW_ROWS)) rows (got $ROWS)"

BASE=${BENCH_DIR:-/var/tmp}
[[ $BASE != *[[:space:]]* ]] || die "BENCH_DIR must not contain white space"
mkdir -p "$BASE"
need_kb=$((ROWS * ROW_BYTES / 1024 * 5 + 1048576))
# rados: two disk caches of the images, and the OSD's memstore saved to disk
# when it stops
if wants rados; then need_kb=$((need_kb + ROWS * ROW_BYTES / 1024 * 2)); fi
avail_kb=$(df -Pk "$BASE" | awk 'NR == 2 { print $4 }')
[ "$avail_kb" -ge "$need_kb" ] ||
	die "$BASE has $((avail_kb / 1024)) MiB free; the run needs about $((need_kb / 1024)) MiB"

# ---- work directory, mounts, clean-up ---------------------------------

WORK=$(mktemp -d "$BASE/payloadfs-bench.XXXXXX")
DATA=$WORK/data           # the CSV on ext4; bindfs mounts this directory
SRC=$DATA/events.csv
EXT=$WORK/ext4            # ext4 targets of ingest and small files
STORE=$WORK/store
IMG=$WORK/events.sqfs
TMPO=$WORK/out            # view outputs and expected bytes
LOGD=$WORK/log
MNT_BIND=$WORK/mnt/bindfs
MNT_SQ=$WORK/mnt/squashfuse
MNT_SQLL=$WORK/mnt/squashfuse_ll
MNT_PFS=$WORK/mnt/payloadfs
PFS_PIDFILE=$WORK/payloadfs.pid
PFS_LOG=$OUT/payloadfs.log
CEPH=$WORK/ceph           # the throwaway cluster (figure rados)
mkdir -p "$DATA" "$EXT" "$STORE" "$TMPO" "$LOGD" "$MNT_BIND" "$MNT_SQ" "$MNT_SQLL" "$MNT_PFS" "$OUT"
: >"$PFS_LOG"
rm -f "$OUT"/perf-*.data "$OUT"/perf-*.data.old "$OUT"/perf-*.txt "$OUT"/perf-*.log "$OUT/results.md" "$OUT/results.tsv" \
	"$OUT"/payloadfs-rados-*.log "$OUT/cluster.log"

declare -A FPID=()   # foreground FUSE daemons started here: name -> PID
PFS_PID=""           # the payloadfs daemon (daemonized; from its pidfile)
declare -A RPID=()   # the RADOS stores' daemons (figure rados): name -> PID
CLUSTER_UP=0         # 1 once cluster.sh start was called on $CEPH
PERF_PID=""

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# Unmount MNT (ours), retrying while busy, lazily as a last resort.
unmount() {
	local i
	for ((i = 0; i < 20; i++)); do
		is_mounted "$1" || return 0
		fusermount3 -u "$1" 2>/dev/null && return 0
		sleep 0.25
	done
	say "$1 stayed busy; lazy unmount"
	fusermount3 -uz "$1"
}

# Wait up to SECS (default 10) for PID (one we started) to exit; then TERM it.
wait_gone() {
	local i
	for ((i = 0; i < ${2:-10} * 100; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ] && return 0
		sleep 0.01
	done
	say "PID $1 still running ${2:-10} s after unmount; stopping it"
	kill -TERM "$1" 2>/dev/null || true
	return 1
}

cleanup() {
	local rc=$? m name
	set +e
	trap - EXIT INT TERM
	if [ -n "$PERF_PID" ]; then
		kill -INT "$PERF_PID" 2>/dev/null
		wait "$PERF_PID" 2>/dev/null
	fi
	awk -v p="$WORK/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do unmount "$m"; done
	for name in "${!FPID[@]}"; do
		wait_gone "${FPID[$name]}"
		wait "${FPID[$name]}" 2>/dev/null
	done
	[ -n "$PFS_PID" ] && wait_gone "$PFS_PID"
	# a RADOS daemon's unmount may wait for the cluster (rados_timeout); one
	# whose cluster is gone may not stop at all (it retries deletes): our
	# own PID then gets SIGKILL
	for name in "${!RPID[@]}"; do
		wait_gone "${RPID[$name]}" 60 || wait_gone "${RPID[$name]}" 15 || {
			say "payloadfs ($name, PID ${RPID[$name]}) did not stop on SIGTERM; SIGKILL"
			kill -KILL "${RPID[$name]}" 2>/dev/null
			wait_gone "${RPID[$name]}" 5
		}
	done
	if [ "$CLUSTER_UP" = 1 ]; then
		"$CLUSTER_SH" stop "$CEPH" >>"$OUT/cluster.log" 2>&1 || say "stopping the cluster failed: $OUT/cluster.log"
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $WORK (remove it with rm -rf --one-file-system $WORK)"
	else
		rm -rf --one-file-system "$WORK"
	fi
	[ $rc -eq 0 ] || say "exit status $rc; payloadfs log: $PFS_LOG"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_mount MNT PID — until MNT is mounted (up to 10 s); fails if PID died.
wait_mount() {
	local i
	for ((i = 0; i < 1000; i++)); do
		is_mounted "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

# fuse_mount NAME MNT CMD... — run the FUSE daemon CMD in the foreground
# (-f is part of CMD), in the background of this shell, so its PID is known.
fuse_mount() {
	local name=$1 mnt=$2 pid
	shift 2
	"$@" </dev/null >>"$LOGD/$name.log" 2>&1 &
	pid=$!
	FPID[$name]=$pid
	wait_mount "$mnt" "$pid" || die "$name did not mount $mnt: $(tail -n 5 "$LOGD/$name.log")"
}

fuse_umount() {
	local name=$1 mnt=$2
	[ -n "${FPID[$name]:-}" ] || return 0
	unmount "$mnt"
	wait_gone "${FPID[$name]}" || true
	wait "${FPID[$name]}" 2>/dev/null || true
	unset "FPID[$name]"
}

mount_peer() {
	case "$1" in
	bindfs) fuse_mount bindfs "$MNT_BIND" bindfs -f "$DATA" "$MNT_BIND" ;;
	squashfuse) fuse_mount squashfuse "$MNT_SQ" squashfuse -f "$IMG" "$MNT_SQ" ;;
	squashfuse_ll) fuse_mount squashfuse_ll "$MNT_SQLL" squashfuse_ll -f "$IMG" "$MNT_SQLL" ;;
	esac
}
umount_peer() {
	case "$1" in
	bindfs) fuse_umount bindfs "$MNT_BIND" ;;
	squashfuse) fuse_umount squashfuse "$MNT_SQ" ;;
	squashfuse_ll) fuse_umount squashfuse_ll "$MNT_SQLL" ;;
	esac
}
remount_peer() {
	umount_peer "$1"
	mount_peer "$1"
}
ensure_peer() { [ -n "${FPID[$1]:-}" ] || mount_peer "$1"; }

PFS_OPTIONS="logfile=$PFS_LOG,pidfile=$PFS_PIDFILE${PFS_OPTS:+,$PFS_OPTS}"
PRE=() # a command prefix for the daemons (figure rados: env LD_PRELOAD=...)
pfs_mount() {
	rm -f "$PFS_PIDFILE"
	"${PRE[@]}" "$PFS" "$STORE" "$MNT_PFS" -o "$PFS_OPTIONS" </dev/null 3>&- ||
		die "payloadfs did not start: $(tail -n 5 "$PFS_LOG")"
	PFS_PID=$(cat "$PFS_PIDFILE" 2>/dev/null) || PFS_PID=""
	[[ $PFS_PID =~ ^[0-9]+$ ]] || die "payloadfs wrote no pid to $PFS_PIDFILE"
	is_mounted "$MNT_PFS" || die "payloadfs returned but $MNT_PFS is not mounted"
}

declare -A RSS_KB=() # workload -> largest VmHWM (kB) of a daemon at its end
# pfs_umount WORKLOAD — record the daemon's VmHWM, unmount, wait for it.
pfs_umount() {
	local hwm
	[ -n "$PFS_PID" ] || return 0
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PFS_PID/status" 2>/dev/null) ||
		die "payloadfs daemon $PFS_PID is gone (crashed?): $(tail -n 5 "$PFS_LOG")"
	[ -n "$hwm" ] || die "payloadfs daemon $PFS_PID is gone (crashed?)"
	if [ -z "${RSS_KB[$1]:-}" ] || [ "$hwm" -gt "${RSS_KB[$1]}" ]; then
		RSS_KB[$1]=$hwm
	fi
	unmount "$MNT_PFS"
	wait_gone "$PFS_PID" || die "payloadfs daemon did not exit after unmount"
	PFS_PID=""
}
pfs_remount() {
	pfs_umount "$1"
	pfs_mount
}

# CPU seconds (user + system, all threads) the daemon has used so far.
CLK_TCK=$(getconf CLK_TCK)
pfs_cpu() { awk -v hz="$CLK_TCK" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$PFS_PID/stat"; }
# pfs_statf NAME — one figure of the mount's .stats by its (unique) leaf
# name, e.g. recompressed; cheap enough to poll.
pfs_statf() { awk -F'[:,]' -v k="\"$1\"" '$1 ~ k { gsub(/ /, "", $2); print $2; exit }' "$MNT_PFS/.stats"; }

# Drop the page cache (all of it: the data, the stores, LMDB), then load the
# measuring tools again, so a cold figure pays for cold data, not for
# exec'ing a cold cat or dd.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	cat </dev/null
	dd if=/dev/null of=/dev/null status=none
	cp --version >/dev/null
	tail -n 1 /dev/null
	head -n 1 /dev/null
}

# ---- samples -------------------------------------------------------------

declare -A SAMP=() # figure key -> "s1 s2 ..." (seconds unless noted)
KEYS=()
add() {
	[ -n "${SAMP[$1]+x}" ] || KEYS+=("$1")
	SAMP[$1]="${SAMP[$1]:-}${SAMP[$1]:+ }$2"
}
cnt() { [ -n "${SAMP[$1]:-}" ] && wc -w <<<"${SAMP[$1]}" || echo 0; }
med() {
	[ -n "${SAMP[$1]:-}" ] || return 1
	tr ' ' '\n' <<<"${SAMP[$1]}" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# more KEY — true while KEY has fewer than REPS samples and, after the
# first, their sum stays under BUDGET seconds.
more() {
	local n
	n=$(cnt "$1")
	[ "$n" -lt "$REPS" ] || return 1
	[ "$n" -eq 0 ] && return 0
	tr ' ' '\n' <<<"${SAMP[$1]}" | awk -v b="$BUDGET" '{ s += $1 } END { exit !(s < b) }'
}

tick() { T0=$EPOCHREALTIME; }
tock() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.6f\n", b - a }'; }

# rate KEY UNITS_PER_RUN DIV — UNITS/median/DIV, or "—".
rate() {
	local m
	m=$(med "$1") || { echo "—"; return; }
	awk -v u="$2" -v d="$3" -v t="$m" 'BEGIN { printf "%.0f", u / t / d }'
}
cell() { # KEY UNITS DIV — "value (n)"
	local v
	v=$(rate "$1" "$2" "$3")
	[ "$v" = "—" ] && { echo "—"; return; }
	echo "$v ($(cnt "$1"))"
}
ms() {
	local m
	m=$(med "$1") || { echo "—"; return; }
	awk -v t="$m" 'BEGIN { printf "%.1f", t * 1000 }'
}
msn() {
	local v
	v=$(ms "$1")
	[ "$v" = "—" ] && { echo "—"; return; }
	echo "$v ($(cnt "$1"))"
}
# ratio A_KEY B_KEY — median(B)/median(A): how many times faster A is.
speedup() {
	local a b
	a=$(med "$1") && b=$(med "$2") || return 1
	awk -v a="$a" -v b="$b" 'BEGIN { r = b / a
		printf (r >= 10 ? "%.1f" : r >= 0.1 ? "%.2f" : "%.3f"), r }'
}
# best_ratio A_KEY B_KEY... — A's speedup over the fastest of the Bs that ran.
best_ratio() {
	local a=$1 k b best=
	shift
	for k in "$@"; do
		b=$(med "$k") || continue
		best=$(awk -v b="$b" -v m="${best:-}" 'BEGIN { print (m == "" || b < m) ? b : m }')
	done
	[ -n "$best" ] && a=$(med "$a") || return 1
	awk -v a="$a" -v b="$best" 'BEGIN { r = b / a
		printf (r >= 10 ? "%.1f" : r >= 0.1 ? "%.2f" : "%.3f"), r }'
}
# target NAME MEASURED OP GOAL UNIT — one row of the targets table.
CHART_TARGETS=()
target() {
	local name=$1 v=$2 op=$3 goal=$4 unit=$5 st
	if [ -z "$v" ]; then
		echo "| $name | not run | $op $goal$unit | — |"
		return
	fi
	# chart.tsv (tests/bench/chart.sh) gets every target that ran
	[[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] && CHART_TARGETS+=("$(printf 'target\t%s\t%s\t%s\t%s\t%s' "${name//\\/}" "$v" \
		"$([ "$op" = "≥" ] && echo ">=" || echo "<=")" "$goal" "$(echo $unit)")")
	st=$(awk -v v="$v" -v g="$goal" -v op="$op" 'BEGIN {
		ok = (op == "≥") ? v >= g : v <= g
		if (ok) { print "**met**"; exit }
		if (op == "≥") printf "missed (%.0f%% of the target)", 100 * v / g
		else printf "missed (%.0f%% over)", 100 * (v - g) / g }')
	echo "| $name | $v$unit | $op $goal$unit | $st |"
}

# pctl KEY P — the P-quantile (nearest rank) of KEY's samples.
pctl() {
	[ -n "${SAMP[$1]:-}" ] || return 1
	tr ' ' '\n' <<<"${SAMP[$1]}" | sort -g |
		awk -v p="$2" '{ a[NR] = $1 } END { k = int(p * NR + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR; print a[k] }'
}
pms() { # KEY P — pctl in ms, or "—"
	local v
	v=$(pctl "$1" "$2") || { echo "—"; return; }
	awk -v t="$v" 'BEGIN { printf "%.1f", t * 1000 }'
}
# rratio A UNITS_A B UNITS_B — the rate of A (UNITS_A per median of A)
# over the rate of B.
rratio() {
	local a b
	a=$(med "$1") && b=$(med "$3") || return 1
	awk -v a="$a" -v ua="$2" -v b="$b" -v ub="$4" 'BEGIN { r = (ua / a) / (ub / b)
		printf (r >= 10 ? "%.1f" : r >= 0.1 ? "%.2f" : "%.3f"), r }'
}

# read_file FILE — sequential read with 1 MiB requests; prints the seconds.
# Fails unless exactly SIZE bytes came back.
read_file() {
	local n
	tick
	dd if="$1" of=/dev/null bs=1M 2>"$WORK/dd.err" || die "dd $1: $(cat "$WORK/dd.err")"
	tock
	n=$(awk '/bytes/ { print $1; exit }' "$WORK/dd.err")
	[ "$n" = "$SIZE" ] || die "reading $1 returned $n bytes, expected $SIZE"
}

# perf_start NAME [PID] / perf_stop — record the payloadfs daemon
# (BENCH_PERF), or PID (one of ours).
perf_start() {
	local cg=(-g)
	[ "$PERF" = dwarf ] && cg=(--call-graph "dwarf,16384" -F 499)
	PERF_NAME=$1
	perf record -e cpu-clock "${cg[@]}" -p "${2:-$PFS_PID}" -o "$OUT/perf-$1.data" \
		>"$OUT/perf-$1.log" 2>&1 &
	PERF_PID=$!
	sleep 0.5 # perf attaches asynchronously
}
perf_stop() {
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=""
	{
		echo "# flat profile of the payloadfs daemon ($PERF_NAME); call graphs follow"
		perf report -i "$OUT/perf-$PERF_NAME.data" --stdio --no-children -g none \
			--sort dso,sym --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$'
		echo
		perf report -i "$OUT/perf-$PERF_NAME.data" --stdio --no-children \
			--sort sym --percent-limit 2 2>/dev/null
	} >"$OUT/perf-$PERF_NAME.txt" || true
	say "perf profile of the daemon: $OUT/perf-$PERF_NAME.txt"
}

# ---- the data ------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_RUN=$EPOCHREALTIME
say "work directory $WORK; generating $ROWS rows"
tick
SIZE=$("$GEN" "$SRC" "$ROWS" 1) || die "gencsv failed"
T_GEN=$(tock)
LINES=$(wc -l <"$SRC")
[ "$LINES" -eq $((ROWS + 1)) ] || die "$SRC has $LINES lines, expected $((ROWS + 1))"
say "$SRC: $SIZE bytes, $ROWS rows + header (generated in ${T_GEN}s)"

PFS_HAS_DATA=0
# Check that payloadfs holds the CSV with the right row count.
pfs_check_rows() {
	local r
	r=$(getfattr --only-values -n user.payload.rows "$MNT_PFS/events.csv" 2>/dev/null) ||
		die "getfattr user.payload.rows on payloadfs failed"
	[ "$r" = "$ROWS" ] || die "payloadfs says $r rows, expected $ROWS"
}
# Import the CSV into payloadfs with cp, untimed, unless ingest did it.
ensure_pfs_data() {
	[ "$PFS_HAS_DATA" = 1 ] && return 0
	say "importing the CSV into payloadfs (cp, untimed)"
	pfs_mount
	cp "$SRC" "$MNT_PFS/events.csv" || die "cp into payloadfs failed"
	pfs_check_rows
	pfs_umount import
	PFS_HAS_DATA=1
}

# ---- ingest: cp + close + sync ---------------------------------------------

# ingest_one KEY DEST — one timed cp of the (warm) CSV to DEST plus sync.
ingest_one() {
	local dt
	sync
	tick
	cp "$SRC" "$2" || die "cp to $2 failed"
	sync
	dt=$(tock)
	[ "$(stat -c %s "$2")" = "$SIZE" ] || die "$2 has the wrong size after cp"
	add "$1" "$dt"
	say "  $1: ${dt}s"
}

fig_ingest() {
	local c0 n s0 r0
	say "ingest (cp + close + sync), source warm in the page cache"
	cat "$SRC" >/dev/null
	while more ingest.ext4; do
		ingest_one ingest.ext4 "$EXT/events.csv"
		rm -f "$EXT/events.csv"
	done
	ensure_peer bindfs
	while more ingest.bindfs; do
		ingest_one ingest.bindfs "$MNT_BIND/ingest.csv"
		rm -f "$MNT_BIND/ingest.csv"
	done
	pfs_mount
	while more ingest.payloadfs; do
		if [ -e "$MNT_PFS/events.csv" ]; then
			rm -f "$MNT_PFS/events.csv"
		fi
		c0=$(pfs_cpu)
		s0=$(pfs_statf staged_raw)
		r0=$(pfs_statf recompressed)
		ingest_one ingest.payloadfs "$MNT_PFS/events.csv"
		add cpu.ingest "$(awk -v a="$c0" -v b="$(pfs_cpu)" 'BEGIN { print b - a }')"
		# fragments staged raw (index/recompress.c), and the time from the
		# end of the sync until the background pass compressed them all
		n=$(($(pfs_statf staged_raw) - s0))
		add staged.ingest "$n"
		tick
		while [ $(($(pfs_statf recompressed) - r0)) -lt "$n" ]; do
			[ "$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { print (b - a > 300) }')" = 0 ] ||
				die "staged fragments not compressed after 300 s"
			sleep 0.05
		done
		add compressed_after.ingest "$(tock)"
		say "  staged raw: $n fragments, compressed $(med compressed_after.ingest)s after the sync"
	done
	pfs_check_rows
	PFS_HAS_DATA=1
	if [ "$PERF" != 0 ]; then
		perf_start ingest
		cp "$SRC" "$MNT_PFS/perf.csv" && sync
		perf_stop
		rm -f "$MNT_PFS/perf.csv"
	fi
	pfs_umount ingest
}

# ---- squashfs image ----------------------------------------------------------

make_image() {
	[ -f "$IMG" ] && return 0
	say "mksquashfs -comp lz4 -b 1M"
	tick
	mksquashfs "$SRC" "$IMG" -comp lz4 -b 1M -noappend -quiet -no-progress >"$LOGD/mksquashfs.log" 2>&1 ||
		die "mksquashfs failed: $(tail -n 5 "$LOGD/mksquashfs.log")"
	T_MKSQ=$(tock)
	IMG_SIZE=$(stat -c %s "$IMG")
}

# ---- seq: cold sequential read, warm re-read ------------------------------

peer_file() {
	case "$1" in
	ext4) echo "$SRC" ;;
	bindfs) echo "$MNT_BIND/events.csv" ;;
	squashfuse) echo "$MNT_SQ/events.csv" ;;
	squashfuse_ll) echo "$MNT_SQLL/events.csv" ;;
	payloadfs) echo "$MNT_PFS/events.csv" ;;
	esac
}

fig_seq() {
	local peer f t c0 c1
	make_image
	ensure_pfs_data
	for peer in ext4 bindfs squashfuse squashfuse_ll payloadfs; do
		say "sequential read: $peer"
		f=$(peer_file "$peer")
		while more "seq_cold.$peer"; do
			case "$peer" in
			ext4) ;;
			payloadfs) pfs_mount ;;
			*) remount_peer "$peer" ;;
			esac
			drop_caches
			c0=0 c1=0
			if [ "$peer" = payloadfs ]; then c0=$(pfs_cpu); fi
			t=$(read_file "$f")
			add "seq_cold.$peer" "$t"
			if [ "$peer" = payloadfs ]; then c1=$(pfs_cpu); fi
			t=$(read_file "$f")
			add "seq_warm.$peer" "$t"
			if [ "$peer" = payloadfs ]; then
				add cpu.seq_cold "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')"
				add cpu.seq_warm "$(awk -v a="$c1" -v b="$(pfs_cpu)" 'BEGIN { print b - a }')"
			fi
			say "  cold $(awk -v s="$SIZE" -v t="${SAMP[seq_cold.$peer]##* }" 'BEGIN { printf "%.0f", s / 1e6 / t }') MB/s, warm $(awk -v s="$SIZE" -v t="$t" 'BEGIN { printf "%.0f", s / 1e6 / t }') MB/s"
			# the bytes must be the CSV's (checked once, untimed)
			if [ "$(cnt "seq_cold.$peer")" -eq 1 ] && [ "$peer" != ext4 ]; then
				cmp "$SRC" "$f" || die "WRONG BYTES: $f differs from $SRC"
			fi
			if [ "$peer" = payloadfs ]; then pfs_umount seq; fi
		done
	done
	if [ "$PERF" != 0 ]; then
		pfs_mount
		drop_caches
		perf_start seq_cold
		read_file "$MNT_PFS/events.csv" >/dev/null
		perf_stop
		pfs_umount perf
	fi
}

# ---- view: 100,000-row ranges ------------------------------------------------

fig_view() {
	local pos a b t
	# "near the end": row 19M of 20M, leaving room for the whole range
	local end=$((ROWS - ROWS / 20))
	[ $end -le $((ROWS - VIEW_ROWS)) ] || end=$((ROWS - VIEW_ROWS))
	declare -A AT=([zero]=0 [mid]=$((ROWS / 2)) [end]=$end)
	ensure_pfs_data
	head -n 1 "$SRC" >"$TMPO/header"
	say "tail | head on warm ext4 (the expected bytes)"
	cat "$SRC" >/dev/null
	for pos in zero mid end; do
		a=${AT[$pos]}
		while more "tailhead_$pos.ext4"; do
			set +o pipefail
			tick
			tail -n +$((a + 2)) "$SRC" | head -n $VIEW_ROWS >"$TMPO/th.$pos"
			t=$(tock)
			set -o pipefail
			add "tailhead_$pos.ext4" "$t"
		done
		[ "$(wc -l <"$TMPO/th.$pos")" -eq $VIEW_ROWS ] || die "tail | head at row $a gave the wrong row count"
		cat "$TMPO/header" "$TMPO/th.$pos" >"$TMPO/expect.$pos"
		say "  row $a: $(med "tailhead_$pos.ext4")s"
	done
	for pos in zero mid end; do
		a=${AT[$pos]}
		b=$((a + VIEW_ROWS))
		say "payloadfs events.csv@rows=$a:$b, cold"
		while more "view_$pos.payloadfs"; do
			pfs_mount
			drop_caches
			tick
			cat "$MNT_PFS/events.csv@rows=$a:$b" >"$TMPO/view.$pos" || die "reading the view @rows=$a:$b failed"
			t=$(tock)
			cmp "$TMPO/expect.$pos" "$TMPO/view.$pos" ||
				die "WRONG BYTES: events.csv@rows=$a:$b differs from tail | head on ext4"
			add "view_$pos.payloadfs" "$t"
			# the same view again on the same mount (information only)
			tick
			cat "$MNT_PFS/events.csv@rows=$a:$b" >"$TMPO/view.$pos" || die "reading the view @rows=$a:$b failed"
			add "viewwarm_$pos.payloadfs" "$(tock)"
			cmp "$TMPO/expect.$pos" "$TMPO/view.$pos" ||
				die "WRONG BYTES: events.csv@rows=$a:$b (warm) differs from tail | head on ext4"
			pfs_umount view
			say "  cold ${t}s, again $(med "viewwarm_$pos.payloadfs")s"
		done
	done
	VIEW_AT_MID=${AT[mid]} VIEW_AT_END=${AT[end]}
}

# ---- small files ---------------------------------------------------------------

# small_one KEY DIR [THREADS] — create NSMALL files of 1 KiB in the new
# DIR (with THREADS threads, default 1).
small_one() {
	local r
	mkdir "$2" || die "mkdir $2 failed"
	r=$("$SMALLF" "$2" "$NSMALL" "$SMALL_BYTES" "${3:-1}") || die "smallfiles in $2 failed"
	add "$1" "${r% *}"
	add "${1/small/small_sync}" "${r#* }"
	[ "$(find "$2" -type f | wc -l)" -eq "$NSMALL" ] || die "$2 does not hold $NSMALL files"
	say "  $1: ${r% *}s (+ syncfs ${r#* }s)"
}

# The ext4 reference of the small files' bytes.
small_ref() {
	[ -d "$EXT/small-ref" ] && return 0
	mkdir -p "$EXT/small-ref"
	"$SMALLF" "$EXT/small-ref" "$NSMALL" "$SMALL_BYTES" >/dev/null || die "smallfiles failed"
}
# small_cmp DIR — a few of DIR's small files must be the reference's bytes.
small_cmp() {
	local f
	for f in f000000 f000123 "$(printf 'f%06d' $((NSMALL - 1)))"; do
		[ -e "$EXT/small-ref/$f" ] || continue
		cmp "$EXT/small-ref/$f" "$1/$f" || die "WRONG BYTES in $1/$f"
	done
}

fig_small() {
	local n=0
	say "$NSMALL small files of $SMALL_BYTES bytes"
	small_ref
	while more small.ext4; do
		n=$((n + 1))
		small_one small.ext4 "$EXT/small.$n"
		rm -rf "$EXT/small.$n"
	done
	ensure_peer bindfs
	while more small.bindfs; do
		n=$((n + 1))
		small_one small.bindfs "$MNT_BIND/small.$n"
		cmp "$EXT/small-ref/f000123" "$MNT_BIND/small.$n/f000123" || die "WRONG BYTES in a small file on bindfs"
		rm -rf "$MNT_BIND/small.$n"
	done
	pfs_mount
	while more small.payloadfs; do
		n=$((n + 1))
		small_one small.payloadfs "$MNT_PFS/small.$n"
		for f in f000000 f000123 "$(printf 'f%06d' $((NSMALL - 1)))"; do
			cmp "$EXT/small-ref/$f" "$MNT_PFS/small.$n/$f" || die "WRONG BYTES in $f on payloadfs"
		done
		rm -rf "$MNT_PFS/small.$n"
	done
	pfs_umount small
}

# ---- rados: a store on a throwaway Ceph cluster (issue 12) -----------------

RPOOL=payloadfs-bench
RNS=bench                         # the RADOS store's name (its namespace)
RSTORE_W=$WORK/rados-writer.store
RSTORE_F=$WORK/rados-follower.store
MNT_RW=$WORK/mnt/rados-writer
MNT_RF=$WORK/mnt/rados-follower
RB_OBJS=0 RB_BYTES=0              # rados bench: the CSV's size in 1 MiB objects
declare -A RRSS_KB=()             # RADOS daemon -> largest VmHWM (kB)
declare -A SHIMR=()               # "local.1" ... -> commit_times.so figures

rstore() { if [ "$1" = writer ]; then echo "$RSTORE_W"; else echo "$RSTORE_F"; fi; }
rmnt() { if [ "$1" = writer ]; then echo "$MNT_RW"; else echo "$MNT_RF"; fi; }

# rpfs_mount NAME — mount the RADOS store NAME (writer or follower) with the
# same options as the local store, its log in BUILD/bench.
rpfs_mount() {
	local name=$1 pid log=$OUT/payloadfs-rados-$1.log
	rm -f "$WORK/$name.pid"
	"${PRE[@]}" "$PFS" "$(rstore "$name")" "$(rmnt "$name")" \
		-o "logfile=$log,pidfile=$WORK/$name.pid${PFS_OPTS:+,$PFS_OPTS}" </dev/null 3>&- ||
		die "payloadfs ($name) did not start: $(tail -n 5 "$log")"
	pid=$(cat "$WORK/$name.pid" 2>/dev/null) || pid=""
	[[ $pid =~ ^[0-9]+$ ]] || die "payloadfs ($name) wrote no pid to $WORK/$name.pid"
	RPID[$name]=$pid
	is_mounted "$(rmnt "$name")" || die "payloadfs ($name) returned but $(rmnt "$name") is not mounted"
}
# rpfs_umount NAME — record the daemon's VmHWM, unmount, wait for it.
rpfs_umount() {
	local name=$1 pid=${RPID[$1]:-} hwm
	[ -n "$pid" ] || return 0
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || hwm=""
	[ -n "$hwm" ] ||
		die "payloadfs ($name) daemon $pid is gone (crashed?): $(tail -n 5 "$OUT/payloadfs-rados-$name.log")"
	if [ -z "${RRSS_KB[$name]:-}" ] || [ "$hwm" -gt "${RRSS_KB[$name]}" ]; then
		RRSS_KB[$name]=$hwm
	fi
	unmount "$(rmnt "$name")"
	wait_gone "$pid" 60 || die "payloadfs ($name) did not exit after unmount"
	unset "RPID[$name]"
}
# rpfs_cold NAME — a fresh daemon, its disk cache (STORE/cache) emptied
# while it was down, the page cache dropped.
rpfs_cold() {
	local c
	rpfs_umount "$1"
	c=$(rstore "$1")/cache
	[ -d "$c" ] || die "$c is missing: where does the RADOS store keep its disk cache?"
	find "$c" -type f -delete || die "emptying $c failed"
	[ -z "$(find "$c" -type f | head -n 1)" ] || die "$c is not empty"
	rpfs_mount "$1"
	drop_caches
}

pcpu() { awk -v hz="$CLK_TCK" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"; }
osd_cpu() { pcpu "$(cat "$CEPH/osd.pid")"; }
delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }

# rbench MODE KEY ARGS... — one `rados bench` run (16 ops in flight) that
# must move all RB_OBJS objects; its "Total time run" is the sample.
rbench() {
	local mode=$1 key=$2 out t n
	shift 2
	out=$(rados -p "$RPOOL" bench "$RADOS_SECS" "$mode" -t 16 --run-name pfsbench "$@" 2>&1) ||
		die "rados bench $mode failed: $(tail -n 5 <<<"$out")"
	t=$(awk -F': *' '/^Total time run/ { print $2 }' <<<"$out")
	n=$(awk -F': *' '/^Total (writes|reads) made/ { print $2 }' <<<"$out")
	[ "$n" = "$RB_OBJS" ] ||
		die "rados bench $mode moved ${n:-no} objects in ${RADOS_SECS}s, expected $RB_OBJS (BENCH_RADOS_SECS too short?)"
	[[ $t =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "rados bench $mode: no total time in its output"
	add "$key" "$t"
	say "  rados bench $mode: $(awk -v b="$RB_BYTES" -v t="$t" 'BEGIN { printf "%.0f", b / 1e6 / t }') MB/s"
}

# shim_stats FILE T0 T1 FILES — commit_times.so's calls that began in
# [T0, T1] (epoch seconds): "appends append_s append_median lmdbs lmdb_s
# lmdb_median" (seconds).
shim_stats() {
	awk -v a="$2" -v b="$3" '($1 == "append" || $1 == "lmdb") && $2 >= a && $2 <= b { print $1, $3 }' "$1" |
		sort -k1,1 -k2,2g | awk '
		{ n[$1]++; s[$1] += $2; v[$1, n[$1]] = $2 }
		END {
			split("append lmdb", ks, " ")
			for (i = 1; i <= 2; i++) {
				k = ks[i]; c = n[k] + 0; m = 0
				if (c) m = c % 2 ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
				printf "%d %.6f %.6f ", c, s[k], m
			}
			print ""
		}'
}

fig_rados() {
	local n=0 t c0 o0 out l c thr kind r pl pw dir
	local -A win=()
	RB_OBJS=$(((SIZE + 1048575) / 1048576))
	RB_BYTES=$((RB_OBJS * 1048576))
	say "RADOS: a throwaway cluster in $CEPH (tests/rados/cluster.sh)"
	CLUSTER_UP=1
	"$CLUSTER_SH" start "$CEPH" "$RPOOL" >>"$OUT/cluster.log" 2>&1 ||
		die "the cluster did not start: $(tail -n 5 "$OUT/cluster.log")"
	eval "$("$CLUSTER_SH" env "$CEPH")" || die "cluster.sh env $CEPH failed"
	LOAD_RADOS=$(cut -d' ' -f1-3 /proc/loadavg)

	# what the cluster does with Ceph's own client, for as many bytes as the CSV
	say "rados bench: $RB_OBJS objects of 1 MiB, 16 ops in flight, write then seq"
	while more rb_write; do
		rbench write rb_write -b 1M --no-cleanup --max-objects "$RB_OBJS"
		rbench seq rb_seq
		rados -p "$RPOOL" cleanup --run-name pfsbench >>"$OUT/cluster.log" 2>&1 || die "rados cleanup failed"
	done

	"$PCTL" init --rados "$RPOOL/$RNS" --ceph-conf "$PFS_CEPH_CONF" "$RSTORE_W" >>"$OUT/cluster.log" 2>&1 ||
		die "payloadctl init --rados failed: $(tail -n 3 "$OUT/cluster.log")"
	"$PCTL" init --follow "$RPOOL/$RNS" --ceph-conf "$PFS_CEPH_CONF" "$RSTORE_F" >>"$OUT/cluster.log" 2>&1 ||
		die "payloadctl init --follow failed: $(tail -n 3 "$OUT/cluster.log")"
	mkdir -p "$MNT_RW" "$MNT_RF"

	# ingest through the writer: close(2) returns once images and log entry are in RADOS
	say "RADOS ingest (cp + close + sync into the writer's mount)"
	cat "$SRC" >/dev/null
	rpfs_mount writer
	while more rados_ingest.writer; do
		if [ -e "$MNT_RW/events.csv" ]; then rm -f "$MNT_RW/events.csv"; fi
		c0=$(pcpu "${RPID[writer]}") o0=$(osd_cpu)
		ingest_one rados_ingest.writer "$MNT_RW/events.csv"
		add cpu.rados_ingest "$(delta "$c0" "$(pcpu "${RPID[writer]}")")"
		add osd.rados_ingest "$(delta "$o0" "$(osd_cpu)")"
	done
	r=$(getfattr --only-values -n user.payload.rows "$MNT_RW/events.csv" 2>/dev/null) ||
		die "getfattr user.payload.rows on the RADOS writer failed"
	[ "$r" = "$ROWS" ] || die "the RADOS writer says $r rows, expected $ROWS"
	rpfs_umount writer

	# cold reads: local store, writer, follower, in turn (and the writer again
	# with its disk cache kept: a restarted host)
	ensure_pfs_data
	say "cold sequential read: local store, RADOS writer, RADOS follower"
	while more rados_cold.writer; do
		pfs_mount
		drop_caches
		c0=$(pfs_cpu)
		t=$(read_file "$MNT_PFS/events.csv")
		add rados_cold.local "$t"
		add cpu.rados_cold.local "$(delta "$c0" "$(pfs_cpu)")"
		pfs_umount rados
		for kind in writer follower; do
			rpfs_cold "$kind"
			c0=$(pcpu "${RPID[$kind]}") o0=$(osd_cpu)
			t=$(read_file "$(rmnt "$kind")/events.csv")
			add "rados_cold.$kind" "$t"
			add "cpu.rados_cold.$kind" "$(delta "$c0" "$(pcpu "${RPID[$kind]}")")"
			add "osd.rados_cold.$kind" "$(delta "$o0" "$(osd_cpu)")"
			cmp "$SRC" "$(rmnt "$kind")/events.csv" ||
				die "WRONG BYTES: events.csv on the RADOS $kind differs from $SRC"
			if [ "$kind" = writer ]; then
				rpfs_umount writer
				rpfs_mount writer
				drop_caches
				t=$(read_file "$MNT_RW/events.csv")
				add rados_diskcache.writer "$t"
			fi
			rpfs_umount "$kind"
		done
		say "  local $(rate rados_cold.local "$SIZE" 1000000) MB/s, writer $(rate rados_cold.writer "$SIZE" 1000000) MB/s, follower $(rate rados_cold.follower "$SIZE" 1000000) MB/s (medians so far)"
	done

	# follower lag: close(2) on the writer -> the new size on the follower
	say "follower lag over $LAG_N commits"
	rpfs_mount writer
	rpfs_mount follower
	out=$("$RLAG" "$MNT_RW/lag.txt" "$MNT_RF/lag.txt" "$LAG_N" "$LAG_POLL_US") || die "rlag failed"
	while read -r l c; do
		add rados_lag "$l"
		add rados_lagclose "$c"
	done <<<"$out"
	[ "$(cnt rados_lag)" -eq "$LAG_N" ] || die "rlag gave $(cnt rados_lag) samples, expected $LAG_N"
	rpfs_umount follower
	say "  median $(ms rados_lag) ms, p99 $(pms rados_lag 0.99) ms"

	# commits per second of 1 KiB files, local store against the writer
	small_ref
	pfs_mount
	for thr in $(printf '%s\n' 1 "$SMALL_THREADS" | sort -un); do
		say "$NSMALL files of 1 KiB, $thr thread(s): local store, RADOS writer (no follower mounted)"
		while more "rados_small$thr.writer"; do
			n=$((n + 1))
			c0=$(pfs_cpu)
			small_one "rados_small$thr.local" "$MNT_PFS/rsmall.$n" "$thr"
			add "cpu.rados_small$thr.local" "$(delta "$c0" "$(pfs_cpu)")"
			small_cmp "$MNT_PFS/rsmall.$n"
			c0=$(pcpu "${RPID[writer]}") o0=$(osd_cpu)
			small_one "rados_small$thr.writer" "$MNT_RW/small.$n" "$thr"
			add "cpu.rados_small$thr.writer" "$(delta "$c0" "$(pcpu "${RPID[writer]}")")"
			add "osd.rados_small$thr.writer" "$(delta "$o0" "$(osd_cpu)")"
			small_cmp "$MNT_RW/small.$n"
		done
	done
	say "$NSMALL files of 1 KiB, 1 thread, on the writer with a follower mounted"
	rpfs_mount follower
	while more rados_small1.follower; do
		n=$((n + 1))
		small_one rados_small1.follower "$MNT_RW/small.$n" 1
		small_cmp "$MNT_RW/small.$n"
	done
	# the follower has them too
	for ((c = 0; c < 1000; c++)); do
		[ -e "$MNT_RF/small.$n/$(printf 'f%06d' $((NSMALL - 1)))" ] && break
		sleep 0.01
	done
	[ "$c" -lt 1000 ] || die "the follower does not show small.$n/ 10 s after the writer made it"
	small_cmp "$MNT_RF/small.$n"
	rpfs_umount follower
	pfs_umount rados
	rpfs_umount writer

	# where a small commit's time goes: both daemons under commit_times.so,
	# untimed runs (the shim times each index log append and LMDB commit)
	say "where a 1 KiB file's commit time goes (commit_times.so)"
	rm -f "$WORK"/ct-local.* "$WORK"/ct-writer.*
	PRE=(env "LD_PRELOAD=$SHIM" "PFS_COMMIT_TIMES=$WORK/ct-local")
	pfs_mount
	PRE=(env "LD_PRELOAD=$SHIM" "PFS_COMMIT_TIMES=$WORK/ct-writer")
	rpfs_mount writer
	PRE=()
	pl=$PFS_PID pw=${RPID[writer]}
	for thr in $(printf '%s\n' 1 "$SMALL_THREADS" | sort -un); do
		for kind in local writer; do
			n=$((n + 1))
			if [ "$kind" = local ]; then dir=$MNT_PFS/rsmall.$n; else dir=$MNT_RW/small.$n; fi
			mkdir "$dir" || die "mkdir $dir failed"
			t=$EPOCHREALTIME
			r=$("$SMALLF" "$dir" "$NSMALL" "$SMALL_BYTES" "$thr") || die "smallfiles in $dir failed"
			win[$kind.$thr]="$t $EPOCHREALTIME ${r% *}"
			small_cmp "$dir"
		done
	done
	pfs_umount rados
	rpfs_umount writer
	for kind in local writer; do
		if [ "$kind" = local ]; then t=$WORK/ct-local.$pl; else t=$WORK/ct-writer.$pw; fi
		[ -s "$t" ] || die "commit_times.so wrote no $t (was it preloaded?)"
		for thr in $(printf '%s\n' 1 "$SMALL_THREADS" | sort -un); do
			read -r c0 o0 r <<<"${win[$kind.$thr]}"
			SHIMR[$kind.$thr]="$r $(shim_stats "$t" "$c0" "$o0")"
		done
	done
	[ "$(awk '{ print $2 }' <<<"${SHIMR[writer.1]}")" -ge "$NSMALL" ] ||
		die "commit_times.so saw fewer index log appends than files on the writer"

	# the index log append alone, on the same cluster
	say "index log appends alone (bench_rlog)"
	o0=$(osd_cpu)
	RLOG_OUT=$("$RLOGB" "$RLOG_N" 1024 8 2>>"$OUT/cluster.log") || die "bench_rlog failed"
	RLOG_OSD=$(delta "$o0" "$(osd_cpu)")

	if [ "$PERF" != 0 ]; then
		rpfs_cold writer
		perf_start rados_seq_cold "${RPID[writer]}"
		read_file "$MNT_RW/events.csv" >/dev/null
		perf_stop
		n=$((n + 1))
		mkdir "$MNT_RW/small.$n"
		perf_start rados_small "${RPID[writer]}"
		"$SMALLF" "$MNT_RW/small.$n" "$NSMALL" "$SMALL_BYTES" >/dev/null || die "smallfiles failed"
		perf_stop
		rpfs_umount writer
	fi

	say "stopping the cluster"
	"$CLUSTER_SH" stop "$CEPH" >>"$OUT/cluster.log" 2>&1 || die "stopping the cluster failed"
	CLUSTER_UP=0
}

# ---- readers: many readers at once (issue 13 §5) ------------------------------

# tests/bench/readers.c drops the page cache itself (after hashing what each
# reader must return, which reads the CSV) and checks every reader's bytes.
fig_readers() {
	local t c0 out frags slot warm
	ensure_pfs_data
	say "readers: 8 @part=K/8 readers on a fresh mount, against 8 tail | head on ext4, both cold"
	while more parts.payloadfs; do
		pfs_mount
		c0=$(pfs_cpu)
		[ "$PERF" = 0 ] || perf_start readers_parts
		t=$("$READERS" parts "$SRC" "$ROWS" 8 pfs "$MNT_PFS/events.csv") || die "readers parts on payloadfs failed"
		[ "$PERF" = 0 ] || perf_stop
		add parts.payloadfs "$t"
		add cpu.parts "$(delta "$c0" "$(pfs_cpu)")"
		pfs_umount readers
		t=$("$READERS" parts "$SRC" "$ROWS" 8 ext4 "$SRC") || die "readers parts on ext4 failed"
		add parts.ext4 "$t"
		say "  payloadfs ${SAMP[parts.payloadfs]##* }s, ext4 ${t}s"
	done
	# cold views take rows from slots of one fragment's rows each, past the
	# first 64 fragments; the warm run reads views of those first rows
	pfs_mount
	frags=$(getfattr --absolute-names --only-values -n user.payload.fragments "$MNT_PFS/events.csv") ||
		die "getfattr user.payload.fragments failed"
	slot=$((ROWS / frags))
	warm=$((slot * 64))
	[ "$warm" -le $((ROWS / 4)) ] || warm=$((ROWS / 4))
	[ "$slot" -ge 200 ] || slot=200
	RV_WARM_ROWS=$warm RV_SLOT=$slot
	say "readers: 8 workers x 8 random 100-row views/s for ${READERS_SECS}s, payloadfs cold (rows $warm.. in slots of $slot rows)"
	[ "$PERF" = 0 ] || perf_start readers_views_cold
	out=$("$READERS" views "$SRC" "$ROWS" pfs "$MNT_PFS/events.csv" 8 8 "$READERS_SECS" 1 "$warm" "$ROWS" "$slot" 2>"$WORK/rv.err") ||
		die "readers views (payloadfs, cold) failed: $(cat "$WORK/rv.err")"
	[ "$PERF" = 0 ] || perf_stop
	add rview_cold.payloadfs "$(echo $out)"
	RV_N_COLD=$(sed -n 's/^# //p' "$WORK/rv.err")
	say "  $RV_N_COLD: median $(ms rview_cold.payloadfs) ms, p99 $(pms rview_cold.payloadfs 0.99) ms"
	cat "$MNT_PFS/events.csv@rows=0:$warm" >/dev/null || die "reading @rows=0:$warm failed"
	say "readers: the same, warm (rows 0..$warm, read just before)"
	[ "$PERF" = 0 ] || perf_start readers_views_warm
	out=$("$READERS" views "$SRC" "$ROWS" pfs "$MNT_PFS/events.csv" 8 8 "$READERS_SECS" 2 0 "$warm" 0 2>"$WORK/rv.err") ||
		die "readers views (payloadfs, warm) failed: $(cat "$WORK/rv.err")"
	[ "$PERF" = 0 ] || perf_stop
	add rview_warm.payloadfs "$(echo $out)"
	RV_N_WARM=$(sed -n 's/^# //p' "$WORK/rv.err")
	say "  $RV_N_WARM: median $(ms rview_warm.payloadfs) ms, p99 $(pms rview_warm.payloadfs 0.99) ms"
	pfs_umount readers
	say "readers: the same with tail | head on warm ext4 (rows $warm..)"
	cat "$SRC" >/dev/null
	out=$("$READERS" views "$SRC" "$ROWS" ext4 "$SRC" 8 8 "$READERS_SECS" 1 "$warm" "$ROWS" 0 2>"$WORK/rv.err") ||
		die "readers views (ext4) failed: $(cat "$WORK/rv.err")"
	add rview.ext4 "$(echo $out)"
	RV_N_EXT4=$(sed -n 's/^# //p' "$WORK/rv.err")
	say "  $RV_N_EXT4: median $(ms rview.ext4) ms, p99 $(pms rview.ext4 0.99) ms"
}

readers_report() {
	echo "## Many readers at once (issue 13 §5)"
	echo
	echo "8 processes at once, each reading its \`events.csv@part=K/8\` (header + its rows, 1 MiB reads) on a"
	echo "fresh mount after \`drop_caches\`, against 8 \`tail -n +A | head -n B\` of its own eighth on cold ext4;"
	echo "wall time of all 8 (every reader's bytes hashed and compared with the CSV's). Then 8 workers, each"
	echo "opening a random 100-row \`@rows=A:A+100\` view 8 times a second for ${READERS_SECS} s (open, read all, close;"
	echo "the latency of each, its bytes checked): cold = a fresh mount, \`drop_caches\`, every view in a slot of"
	echo "${RV_SLOT:-?} rows (one fragment's) no earlier view touched, past row ${RV_WARM_ROWS:-?}; warm = views of rows"
	echo "0..${RV_WARM_ROWS:-?}, read through the mount just before; the peer runs \`tail -n +(A+2) | head -n 100\` on"
	echo "warm ext4 at the same rate (a request due while its worker is busy starts late; none after ${READERS_SECS} s)."
	echo
	echo "| figure | ext4 \`tail \\| head\` | payloadfs |"
	echo "| --- | ---: | ---: |"
	echo "| 8 readers of their eighth, cold, wall ms | $(msn parts.ext4) | $(msn parts.payloadfs) |"
	echo "| random 100-row views, cold: median / p99 ms | — | $(ms rview_cold.payloadfs) / $(pms rview_cold.payloadfs 0.99) (${RV_N_COLD:-not run}) |"
	echo "| random 100-row views, warm: median / p99 ms | $(ms rview.ext4) / $(pms rview.ext4 0.99) (${RV_N_EXT4:-not run}) | $(ms rview_warm.payloadfs) / $(pms rview_warm.payloadfs 0.99) (${RV_N_WARM:-not run}) |"
	echo
	echo "payloadfs daemon CPU during the 8 partition readers (median s): $(cpu_cell parts)."
	echo
	echo "## Targets (issue 13 §5)"
	echo
	echo "| figure | measured | target | status |"
	echo "| --- | ---: | ---: | --- |"
	target "8 @part readers (cold) vs 8 tail \\| head readers on ext4" "$R_PARTS" "≥" 3 x
	target "random 100-row views, warm, p99" "$R_RV_WARM" "≤" 5 " ms"
	target "random 100-row views, cold, p99" "$R_RV_COLD" "≤" 20 " ms"
	echo
}

# ---- run ---------------------------------------------------------------------

if wants ingest; then fig_ingest; fi
if wants seq; then fig_seq; fi
if wants view; then fig_view; fi
if wants small; then fig_small; fi
if wants rados; then fig_rados; fi
if wants readers; then fig_readers; fi
for p in bindfs squashfuse squashfuse_ll; do umount_peer "$p"; done
T_RUN=$(awk -v a="$T_RUN" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ------------------------------------------------------------------

# cache_size of the daemon: from BENCH_PFS_OPTS, else the default in --help.
cs=$(tr ',' '\n' <<<"$PFS_OPTS" | sed -n 's/^cache_size=//p' | tail -n 1)
[ -n "$cs" ] || cs=$("$PFS" --help 2>&1 | sed -n 's/.*cache_size=.*(default \([0-9]*[KMG]\?\)).*/\1/p' | head -n 1)
CACHE_BYTES=$(parse_size "${cs:-0}" 2>/dev/null) || CACHE_BYTES=0

MB=1000000
R_SEQ=$(speedup seq_cold.payloadfs seq_cold.squashfuse || true)
R_SEQLL=$(speedup seq_cold.payloadfs seq_cold.squashfuse_ll || true)
R_WARM=$(speedup seq_warm.payloadfs seq_warm.ext4 || true)
R_VIEW=$(speedup view_mid.payloadfs tailhead_mid.ext4 || true)
R_END=$(speedup view_zero.payloadfs view_end.payloadfs || true)
R_INGEST=$(speedup ingest.payloadfs ingest.ext4 || true)
R_INGEST_B=$(speedup ingest.payloadfs ingest.bindfs || true)
R_SMALL=$(speedup small.payloadfs small.bindfs || true)
# issue 13: the view at each position against tail | head there; the seq
# read against the best squashfuse; warm against the best FUSE peer
R_VIEW0=$(speedup view_zero.payloadfs tailhead_zero.ext4 || true)
R_VIEWEND=$(speedup view_end.payloadfs tailhead_end.ext4 || true)
R_SEQBEST=$(best_ratio seq_cold.payloadfs seq_cold.squashfuse seq_cold.squashfuse_ll || true)
R_WARMBEST=$(best_ratio seq_warm.payloadfs seq_warm.squashfuse seq_warm.squashfuse_ll || true)
R_SMALL_E=$(speedup small.payloadfs small.ext4 || true)
PEAK_KB=0
for w in "${!RSS_KB[@]}"; do [ "${RSS_KB[$w]}" -gt "$PEAK_KB" ] && PEAK_KB=${RSS_KB[$w]}; done
PEAK_MIB="" LIMIT_MIB=$(((CACHE_BYTES >> 20) + 64))
[ "$PEAK_KB" -gt 0 ] && PEAK_MIB=$(awk -v k="$PEAK_KB" 'BEGIN { printf "%.0f", k / 1024 }')

# ---- report of figure rados ----------------------------------------------------

# cpun PREFIX KEY — the median CPU seconds PREFIX.KEY, or "—".
cpun() {
	local m
	m=$(med "$1.$2") || { echo "—"; return; }
	awk -v m="$m" 'BEGIN { printf "%.2f", m }'
}
# shim_cell KIND.THREADS WHAT — one figure of the commit_times.so runs.
shim_cell() {
	local v=${SHIMR[$1]:-}
	[ -n "$v" ] || { echo "—"; return; }
	# v: wall appends append_s append_med lmdbs lmdb_s lmdb_med
	awk -v w="$2" -v f="$NSMALL" '{
		wall = $1; na = $2; sa = $3; ma = $4; nl = $5; sl = $6; ml = $7
		if (w == "wall") printf "%.2f", wall / f * 1000
		else if (w == "na") printf "%.2f", na / f
		else if (w == "ma") printf (na ? "%.2f" : "—"), ma * 1000
		else if (w == "sa") printf (na ? "%.2f (%.0f%%)" : "—"), sa / f * 1000, 100 * sa / wall
		else if (w == "nl") printf "%.2f", nl / f
		else if (w == "ml") printf "%.2f", ml * 1000
		else if (w == "sl") printf "%.2f (%.0f%%)", sl / f * 1000, 100 * sl / wall
		else if (w == "rest") printf "%.2f (%.0f%%)", (wall - sa - sl) / f * 1000, 100 * (wall - sa - sl) / wall
	}' <<<"$v"
}

R_PARTS=$(speedup parts.payloadfs parts.ext4 || true)
R_RV_WARM=$(pms rview_warm.payloadfs 0.99)
[ "$R_RV_WARM" = "—" ] && R_RV_WARM=""
R_RV_COLD=$(pms rview_cold.payloadfs 0.99)
[ "$R_RV_COLD" = "—" ] && R_RV_COLD=""

R_RCOLD="" R_RINGEST="" R_LAG99="" R_RFOLLOW="" R_RSMALL1="" R_RSMALLN="" R_RSEQ="" R_RDISK=""
if wants rados; then
	R_RCOLD=$(rratio rados_cold.writer "$SIZE" rados_cold.local "$SIZE" || true)
	R_RINGEST=$(rratio rados_ingest.writer "$SIZE" rb_write "$RB_BYTES" || true)
	R_LAG99=$(pms rados_lag 0.99)
	[ "$R_LAG99" = "—" ] && R_LAG99=""
	R_RFOLLOW=$(speedup rados_cold.writer rados_cold.follower || true)
	R_RSMALL1=$(speedup rados_small1.writer rados_small1.local || true)
	R_RSMALLN=$(speedup "rados_small$SMALL_THREADS.writer" "rados_small$SMALL_THREADS.local" || true)
	R_RSEQ=$(rratio rados_cold.writer "$SIZE" rb_seq "$RB_BYTES" || true)
	R_RDISK=$(rratio rados_diskcache.writer "$SIZE" rados_cold.local "$SIZE" || true)
fi

rados_report() {
	local w
	echo "## RADOS stores (issue 12)"
	echo
	echo "One throwaway cluster (\`tests/rados/cluster.sh\`: one monitor, one memstore OSD, 127.0.0.1, pool size 1,"
	echo "Ceph $(rados --version 2>/dev/null | awk '{ print $3; exit }')) under the work directory, load average ${LOAD_RADOS:-?} when it started."
	echo "A RADOS store \`$RPOOL/$RNS\`: a writer and a follower daemon, each with a STORE of its own"
	echo "(\`payloadctl init --rados\` / \`--follow\`), default options${PFS_OPTS:+ plus $PFS_OPTS}. \"Cold\": a fresh daemon,"
	echo "its disk cache (STORE/cache) emptied, then \`drop_caches\` (the OSD keeps its objects in memory: memstore)."
	echo "\`rados bench\` moves the CSV's size in 1 MiB objects ($RB_OBJS), 16 ops in flight."
	echo
	echo "| figure | local store | RADOS writer | RADOS follower | \`rados bench\` |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	echo "| cold sequential read, MB/s | $(cell rados_cold.local "$SIZE" $MB) | $(cell rados_cold.writer "$SIZE" $MB) | $(cell rados_cold.follower "$SIZE" $MB) | seq $(cell rb_seq "$RB_BYTES" $MB) |"
	echo "| the same read, disk cache kept (a restarted host), MB/s | — | $(cell rados_diskcache.writer "$SIZE" $MB) | — | — |"
	echo "| ingest cp + close + sync, MB/s of CSV | $(cell ingest.payloadfs "$SIZE" $MB) | $(cell rados_ingest.writer "$SIZE" $MB) | — | write $(cell rb_write "$RB_BYTES" $MB) |"
	echo "| $NSMALL files of 1 KiB, 1 thread, files/s | $(cell rados_small1.local "$NSMALL" 1) | $(cell rados_small1.writer "$NSMALL" 1) | — | — |"
	if [ "$SMALL_THREADS" != 1 ]; then
		echo "| $NSMALL files of 1 KiB, $SMALL_THREADS threads, files/s | $(cell "rados_small$SMALL_THREADS.local" "$NSMALL" 1) | $(cell "rados_small$SMALL_THREADS.writer" "$NSMALL" 1) | — | — |"
	fi
	echo "| $NSMALL files of 1 KiB, 1 thread, a follower mounted, files/s | — | $(cell rados_small1.follower "$NSMALL" 1) | — | — |"
	echo
	echo "Follower lag over $(cnt rados_lag) commits (a file of 1,001-$((1000 + LAG_N)) bytes rewritten on the writer; from"
	echo "its close(2) returning until \`stat\` on the follower shows the new size, polled every ${LAG_POLL_US} µs; the"
	echo "bytes then checked): median $(ms rados_lag) ms, p99 $(pms rados_lag 0.99) ms, max $(pms rados_lag 1) ms."
	echo "The writer's close(2) of those commits: median $(ms rados_lagclose) ms, p99 $(pms rados_lagclose 0.99) ms."
	echo
	echo "CPU seconds (user + system, median per run) of the payloadfs daemon and of the OSD:"
	echo
	echo "| run | payloadfs | OSD |"
	echo "| --- | ---: | ---: |"
	echo "| ingest into the writer | $(cpun cpu rados_ingest) | $(cpun osd rados_ingest) |"
	echo "| cold read, local store | $(cpun cpu rados_cold.local) | — |"
	echo "| cold read, writer | $(cpun cpu rados_cold.writer) | $(cpun osd rados_cold.writer) |"
	echo "| cold read, follower | $(cpun cpu rados_cold.follower) | $(cpun osd rados_cold.follower) |"
	echo "| $NSMALL files, 1 thread, local store | $(cpun cpu rados_small1.local) | — |"
	echo "| $NSMALL files, 1 thread, writer | $(cpun cpu rados_small1.writer) | $(cpun osd rados_small1.writer) |"
	if [ "$SMALL_THREADS" != 1 ]; then
		echo "| $NSMALL files, $SMALL_THREADS threads, local store | $(cpun cpu "rados_small$SMALL_THREADS.local") | — |"
		echo "| $NSMALL files, $SMALL_THREADS threads, writer | $(cpun cpu "rados_small$SMALL_THREADS.writer") | $(cpun osd "rados_small$SMALL_THREADS.writer") |"
	fi
	echo
	echo "Where a 1 KiB file's time goes: separate, untimed runs of $NSMALL files with both daemons under"
	echo "\`commit_times.so\` (LD_PRELOAD: it times every index log append — \`rados_write_op_operate2\` on"
	echo "pfs.head, one RADOS round trip, made under the commit lock — and every LMDB commit). Per file:"
	echo
	echo "| per file | local, 1 thread | RADOS, 1 thread | local, $SMALL_THREADS threads | RADOS, $SMALL_THREADS threads |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	local t=$SMALL_THREADS
	echo "| wall time (files in parallel: wall / files), ms | $(shim_cell local.1 wall) | $(shim_cell writer.1 wall) | $(shim_cell "local.$t" wall) | $(shim_cell "writer.$t" wall) |"
	echo "| index log appends | $(shim_cell local.1 na) | $(shim_cell writer.1 na) | $(shim_cell "local.$t" na) | $(shim_cell "writer.$t" na) |"
	echo "| median append, ms | $(shim_cell local.1 ma) | $(shim_cell writer.1 ma) | $(shim_cell "local.$t" ma) | $(shim_cell "writer.$t" ma) |"
	echo "| time in appends, ms (share of the wall time) | $(shim_cell local.1 sa) | $(shim_cell writer.1 sa) | $(shim_cell "local.$t" sa) | $(shim_cell "writer.$t" sa) |"
	echo "| LMDB commits | $(shim_cell local.1 nl) | $(shim_cell writer.1 nl) | $(shim_cell "local.$t" nl) | $(shim_cell "writer.$t" nl) |"
	echo "| median LMDB commit, ms | $(shim_cell local.1 ml) | $(shim_cell writer.1 ml) | $(shim_cell "local.$t" ml) | $(shim_cell "writer.$t" ml) |"
	echo "| time in LMDB commits, ms (share) | $(shim_cell local.1 sl) | $(shim_cell writer.1 sl) | $(shim_cell "local.$t" sl) | $(shim_cell "writer.$t" sl) |"
	echo "| the rest (FUSE, the file system, CPU), ms (share) | $(shim_cell local.1 rest) | $(shim_cell writer.1 rest) | $(shim_cell "local.$t" rest) | $(shim_cell "writer.$t" rest) |"
	echo
	echo "With several threads the shares are of the wall time the threads share: appends and LMDB commits"
	echo "run one at a time under the commit lock, so their share is how long that lock was busy with them."
	echo "The index log append alone (\`bench_rlog $RLOG_N 1024 8\`, one append after another, same cluster):"
	echo
	echo '```'
	echo "${RLOG_OUT:-not run}"
	echo '```'
	echo
	echo "The OSD used ${RLOG_OSD:-?} CPU-s for those $((RLOG_N + RLOG_N / 8)) appends (and their notifies)."
	echo
	echo -n "RADOS daemons' peak RSS (VmHWM):"
	for w in writer follower; do
		[ -n "${RRSS_KB[$w]:-}" ] && echo -n " $w $(awk -v k="${RRSS_KB[$w]}" 'BEGIN { printf "%.0f", k / 1024 }') MiB,"
	done
	echo " cache_size ${cs:-?} each."
	echo
	echo "## Targets (issue 12: RADOS stores)"
	echo
	echo "| figure | measured | target | status |"
	echo "| --- | ---: | ---: | --- |"
	target "cold sequential read, RADOS writer vs local store" "$R_RCOLD" "≥" 0.8 x
	target "ingest into a RADOS store vs \`rados bench write\` (CSV bytes)" "$R_RINGEST" "≥" 0.7 x
	target "follower lag p99 (close on the writer to the new size on a follower)" "$R_LAG99" "≤" 100 " ms"
	target "a follower's cold read time vs the writer's (within 10%)" "$R_RFOLLOW" "≤" 1.1 x
	target "1 KiB-file commits/s, RADOS vs local store, 1 thread" "$R_RSMALL1" "≥" 0.5 x
	if [ "$SMALL_THREADS" != 1 ]; then
		target "1 KiB-file commits/s, RADOS vs local store, $SMALL_THREADS threads" "$R_RSMALLN" "≥" 0.5 x
	fi
	echo
	echo "Also: RADOS cold read vs \`rados bench seq\` ${R_RSEQ:-—}x; RADOS read with the disk cache kept vs the local store's cold read ${R_RDISK:-—}x."
	echo
}

src_dev=$(findmnt -no SOURCE -T "$WORK")
blk=$(lsblk -no PKNAME "$src_dev" 2>/dev/null | head -n 1)
[ -n "$blk" ] || blk=$(basename "$src_dev")
rota=$(cat "/sys/block/$blk/queue/rotational" 2>/dev/null || echo "?")
model=$(cat "/sys/block/$blk/device/model" 2>/dev/null | sed 's/ *$//' || true)
if ! command -v perf >/dev/null; then
	PERF_HW="perf not installed"
elif perf_out=$(perf stat -e instructions true 2>&1) && [[ $perf_out != *"not supported"* ]]; then
	PERF_HW="supported"
else
	PERF_HW="not supported (no hardware counters, as in many VMs); software events such as cpu-clock work"
fi
commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit (+ uncommitted changes)"
branch=$(git -C "$ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
SRC_LZ=""
if [ -n "${IMG_SIZE:-}" ]; then SRC_LZ=$(awk -v a="$SIZE" -v b="$IMG_SIZE" 'BEGIN { printf "%.2f", a / b }'); fi
PFS_STORE=$(du -sb "$STORE/fragments" 2>/dev/null | cut -f1)
N_SMALL=$NSMALL
rss_rows() {
	local w
	for w in import ingest seq view small rados readers perf; do
		[ -n "${RSS_KB[$w]:-}" ] || continue
		echo "| $w | $(awk -v k="${RSS_KB[$w]}" 'BEGIN { printf "%.0f", k / 1024 }') |"
	done
}
cpu_cell() {
	local m
	m=$(med "cpu.$1") || { echo "—"; return; }
	awk -v m="$m" 'BEGIN { printf "%.2f", m }'
}

{
	echo "# payloadfs benchmark results"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) · commit $commit on $branch · $(nproc) cores · run took ${T_RUN}s"
	echo
	echo "Data: \`events.csv\`, $SIZE bytes, $ROWS rows + header (gencsv seed 1, generated in ${T_GEN}s)."
	if [ -n "$SRC_LZ" ]; then
		echo "squashfs image (lz4, 1 MiB blocks): $IMG_SIZE bytes (${SRC_LZ}x), built in ${T_MKSQ}s."
	fi
	if [ -n "$PFS_STORE" ] && [ "$PFS_STORE" -gt 0 ]; then
		echo "payloadfs fragment files: $PFS_STORE bytes ($(awk -v a="$SIZE" -v b="$PFS_STORE" 'BEGIN { printf "%.2f", a / b }')x)."
	fi
	echo
	echo "Medians; (n) is the number of runs. MB = 10^6 bytes. Timed runs: up to $REPS each, fewer once a figure used ${BUDGET}s."
	echo
	if wants seq || wants view || wants ingest || wants small; then
	echo "| figure | ext4 | bindfs | squashfuse | squashfuse_ll | payloadfs |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	echo "| cold sequential read, MB/s | $(cell seq_cold.ext4 "$SIZE" $MB) | $(cell seq_cold.bindfs "$SIZE" $MB) | $(cell seq_cold.squashfuse "$SIZE" $MB) | $(cell seq_cold.squashfuse_ll "$SIZE" $MB) | $(cell seq_cold.payloadfs "$SIZE" $MB) |"
	echo "| warm re-read, MB/s | $(cell seq_warm.ext4 "$SIZE" $MB) | $(cell seq_warm.bindfs "$SIZE" $MB) | $(cell seq_warm.squashfuse "$SIZE" $MB) | $(cell seq_warm.squashfuse_ll "$SIZE" $MB) | $(cell seq_warm.payloadfs "$SIZE" $MB) |"
	echo "| ingest cp + close + sync, MB/s | $(cell ingest.ext4 "$SIZE" $MB) | $(cell ingest.bindfs "$SIZE" $MB) | — | — | $(cell ingest.payloadfs "$SIZE" $MB) |"
	echo "| $N_SMALL files of 1 KiB created, files/s | $(cell small.ext4 "$N_SMALL" 1) | $(cell small.bindfs "$N_SMALL" 1) | — | — | $(cell small.payloadfs "$N_SMALL" 1) |"
	echo "| then syncfs, ms | $(msn small_sync.ext4) | $(msn small_sync.bindfs) | — | — | $(msn small_sync.payloadfs) |"
	echo
	echo "| 100,000-row range | payloadfs \`@rows=\` cold, ms | the same view again, ms | \`tail -n +N \\| head -n 100000\` warm ext4, ms |"
	echo "| --- | ---: | ---: | ---: |"
	echo "| at row 0 | $(msn view_zero.payloadfs) | $(msn viewwarm_zero.payloadfs) | $(msn tailhead_zero.ext4) |"
	echo "| at row ${VIEW_AT_MID:-?} | $(msn view_mid.payloadfs) | $(msn viewwarm_mid.payloadfs) | $(msn tailhead_mid.ext4) |"
	echo "| at row ${VIEW_AT_END:-?} | $(msn view_end.payloadfs) | $(msn viewwarm_end.payloadfs) | $(msn tailhead_end.ext4) |"
	echo
	echo "payloadfs daemon: peak RSS (VmHWM at the end of each workload; a fresh daemon per cold run), MiB, cache_size ${cs:-?}:"
	echo
	echo "| workload | VmHWM, MiB |"
	echo "| --- | ---: |"
	rss_rows
	echo
	echo "payloadfs daemon CPU (user + system, all threads, median s): cold read $(cpu_cell seq_cold), warm re-read $(cpu_cell seq_warm), ingest $(cpu_cell ingest)."
	if wants ingest; then
		echo
		echo "ingest: fragments staged raw (medians) $(med staged.ingest || echo —), all compressed by the background pass $(med compressed_after.ingest || echo —) s after the sync (index/recompress.c)."
	fi
	echo
	echo "## Targets (issue 3)"
	echo
	echo "| figure | measured | target | status |"
	echo "| --- | ---: | ---: | --- |"
	target "cold sequential read vs squashfuse" "$R_SEQ" "≥" 1.5 x
	target "cold sequential read vs squashfuse_ll" "$R_SEQLL" "≥" 1.5 x
	target "warm re-read vs ext4 page cache" "$R_WARM" "≥" 0.8 x
	target "100k-row view (cold) vs tail \\| head on warm ext4" "$R_VIEW" "≥" 20 x
	target "view at row ${VIEW_AT_END:-?} vs view at row 0 (time)" "$R_END" "≤" 2 x
	target "ingest (cp + close + sync) vs ext4" "$R_INGEST" "≥" 1.0 x
	target "small-file creates/s vs bindfs" "$R_SMALL" "≥" 1.5 x
	target "daemon peak RSS vs cache_size + 64 MiB" "$PEAK_MIB" "≤" "$LIMIT_MIB" " MiB"
	echo
	echo "Also: ingest vs bindfs ${R_INGEST_B:-—}x, small-file creates/s vs ext4 ${R_SMALL_E:-—}x."
	echo
	echo "## Targets (issue 13)"
	echo
	echo "| figure | measured | target | status |"
	echo "| --- | ---: | ---: | --- |"
	target "cold sequential read vs the faster squashfuse" "$R_SEQBEST" "≥" 1.5 x
	target "warm re-read vs the faster squashfuse" "$R_WARMBEST" "≥" 0.97 x
	target "100k-row view (cold) at row 0 vs tail -n +2 \\| head (warm ext4)" "$R_VIEW0" "≥" 1.0 x
	target "100k-row view (cold) at row ${VIEW_AT_MID:-?} vs tail \\| head" "$R_VIEW" "≥" 30 x
	target "100k-row view (cold) at row ${VIEW_AT_END:-?} vs tail \\| head" "$R_VIEWEND" "≥" 30 x
	target "ingest (cp + close + sync) vs ext4" "$R_INGEST" "≥" 1.0 x
	target "1 KiB files created + closed/s, 1 writer, vs bindfs" "$R_SMALL" "≥" 2.0 x
	echo
	fi
	if wants rados; then rados_report; fi
	if wants readers; then readers_report; fi
	echo "## Machine and set-up"
	echo
	echo "- CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
	echo "- RAM: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- kernel: $(uname -sr); $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "- disk: $src_dev ($blk${model:+, $model}, rotational=$rota), $(findmnt -no FSTYPE,OPTIONS -T "$WORK" | tr -s ' ')"
	echo "- load average at start $LOAD_START, at end $LOAD_END (the machine is shared when these are high)"
	echo "- payloadfs: \`$(basename "$PFS") STORE MNT -o logfile=..,pidfile=..${PFS_OPTS:+,$PFS_OPTS}\` ($("$PFS" --version 2>&1 | head -n 1)); default options otherwise (cache_size ${cs:-?})"
	command -v bindfs >/dev/null && command -v squashfuse >/dev/null &&
	echo "- bindfs $(bindfs --version 2>&1 | awk '{ print $2; exit }') \`bindfs -f DATA MNT\`; $(squashfuse --help 2>&1 | awk 'NR == 1 { print $1, $2 }') and squashfuse_ll \`-f IMG MNT\`; \`mksquashfs events.csv IMG -comp lz4 -b 1M -noappend\` ($(mksquashfs -version 2>&1 | head -n 1 | awk '{ print $3 }'))"
	echo "- cold: fresh mount (ext4: not remounted) then \`sync; echo 3 > /proc/sys/vm/drop_caches\`; reads: \`dd bs=1M of=/dev/null\`; warm: the same read again at once"
	echo "- views: \`cat MNT/events.csv@rows=A:A+100000 > file\`, cold, compared byte for byte with header + \`tail -n +(A+2) | head -n 100000\`"
	echo "- perf hardware counters (\`perf stat -e instructions true\`): $PERF_HW"
	[ "$PERF" = 0 ] || echo "- BENCH_PERF=$PERF: daemon profiles in $OUT/perf-*.txt (\`perf report -i $OUT/perf-seq_cold.data\`; figure rados: perf-rados_seq_cold, perf-rados_small)"
	echo "- command: \`${BENCH_CMDLINE:-make bench}\`${ONLY:+ (BENCH_ONLY=$ONLY)}"
} >"$OUT/results.md"

{
	echo "# key	samples (seconds; cpu.* = daemon CPU seconds)"
	for k in "${KEYS[@]}"; do printf '%s\t%s\n' "$k" "${SAMP[$k]}"; done
	for w in "${!RSS_KB[@]}"; do printf 'vmhwm_kb.%s\t%s\n' "$w" "${RSS_KB[$w]}"; done
} >"$OUT/results.tsv"

# chart.tsv: the medians as bars of each figure per peer, and the targets,
# for tests/bench/chart.sh (rows: see there). A figure or peer that did
# not run has no row.
chart_bar() { # FIGURE UNIT KEY_PREFIX UNITS DIV PEER... — rates
	local fig=$1 unit=$2 key=$3 u=$4 d=$5 p v
	shift 5
	for p in "$@"; do
		v=$(rate "$key.$p" "$u" "$d")
		[ "$v" = "—" ] || printf 'bar\t%s\t%s\t%s\t%s\n' "$fig" "$unit" "$p" "$v"
	done
}
chart_ms() { # FIGURE PEER KEY [PEER KEY]... — median times in ms
	local fig=$1 v
	shift
	while [ $# -ge 2 ]; do
		v=$(ms "$2")
		[ "$v" = "—" ] || printf 'bar\t%s\tms, less is better\t%s\t%s\n' "$fig" "$1" "$v"
		shift 2
	done
}
{
	echo "# tests/bench/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $commit"
	printf 'note\t%s rows (%s bytes), %s, load average %s to %s\n' "$ROWS" "$SIZE" "$(date -u +%Y-%m-%d)" "${LOAD_START%% *}" "${LOAD_END%% *}"
	chart_bar "cold sequential read" MB/s seq_cold "$SIZE" $MB ext4 bindfs squashfuse squashfuse_ll payloadfs
	chart_bar "warm re-read" MB/s seq_warm "$SIZE" $MB ext4 bindfs squashfuse squashfuse_ll payloadfs
	chart_bar "ingest: cp + close + sync" MB/s ingest "$SIZE" $MB ext4 bindfs payloadfs
	chart_bar "$N_SMALL files of 1 KiB created" files/s small "$N_SMALL" 1 ext4 bindfs payloadfs
	chart_ms "100,000-row range at row ${VIEW_AT_MID:-?}" "payloadfs @rows= cold" view_mid.payloadfs \
		"payloadfs @rows= again" viewwarm_mid.payloadfs "tail | head, warm ext4" tailhead_mid.ext4
	chart_bar "RADOS: cold sequential read" MB/s rados_cold "$SIZE" $MB local writer follower
	chart_bar "RADOS: 1 KiB-file commits, 1 thread" files/s rados_small1 "$NSMALL" 1 local writer
	chart_ms "8 readers of their eighth, cold" "ext4 tail | head" parts.ext4 "payloadfs @part=K/8" parts.payloadfs
	printf '%s\n' "${CHART_TARGETS[@]}"
} >"$OUT/chart.tsv"

cat "$OUT/results.md"
say "written $OUT/results.md and $OUT/results.tsv"
if command -v gnuplot >/dev/null; then
	"$ROOT/tests/bench/chart.sh" "$OUT/chart.tsv" "$OUT/bench" >&2 ||
		say "the charts failed (chart.sh above); the results stand"
else
	say "gnuplot not installed: no charts (packaging/install-deps.sh --bench)"
fi
