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
# and the peak RSS (VmHWM) of every payloadfs daemon at the end of its
# workload. Prints a table and the ratios against the issue's targets, and
# writes the same to BUILD/bench/results.md (raw samples: results.tsv).
# Every read is checked against the ext4 bytes: wrong bytes fail the run.
#
# Environment (docs/benchmarks.md):
#   BENCH_SIZE=256M      data size (K/M/G); default 20,000,000 rows (~1.18 GB)
#   BENCH_ROWS=N         data rows (overrides BENCH_SIZE)
#   BENCH_ONLY=a,b       run only these figures: seq, view, ingest, small
#   BENCH_REPS=3         runs per timed figure (median reported) ...
#   BENCH_BUDGET=60      ... stopping early once a figure has used this many s
#   BENCH_SMALL_FILES=3000
#   BENCH_PFS_OPTS=...   extra -o options for payloadfs (e.g. page_cache)
#   BENCH_PERF=1|dwarf   one extra, untimed cold read and ingest under
#                        `perf record` of the daemon (BUILD/bench/perf-*.txt)
#   BENCH_DIR=/var/tmp   where the work directory is made (local ext4)
#   BENCH_KEEP=1         keep the work directory
#
# Needs root (drop_caches). Everything lives in one mktemp directory; every
# mount made is unmounted on exit, failure or Ctrl-C, and only the PIDs this
# script started are ever signalled. Not part of `make check`.
set -eu -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || {
	echo "bench: no build directory ${1:-build}" >&2
	exit 2
}
PFS=$BUILD/payloadfs
GEN=$BUILD/bench/gencsv
SMALLF=$BUILD/bench/smallfiles
OUT=$BUILD/bench

REPS=${BENCH_REPS:-3}
BUDGET=${BENCH_BUDGET:-60}
ONLY=${BENCH_ONLY:-}
PERF=${BENCH_PERF:-0}
PFS_OPTS=${BENCH_PFS_OPTS:-}
NSMALL=${BENCH_SMALL_FILES:-3000}
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
for c in bindfs squashfuse squashfuse_ll mksquashfs fusermount3 dd cmp; do
	command -v "$c" >/dev/null || die "$c is missing; run packaging/install-deps.sh --bench"
done
if [ "$PERF" != 0 ]; then
	command -v perf >/dev/null || die "BENCH_PERF needs perf (packaging/install-deps.sh --bench)"
fi
for f in ${ONLY//,/ }; do
	case "$f" in
	seq | view | ingest | small) ;;
	*) die "BENCH_ONLY: unknown figure '$f' (seq, view, ingest, small)" ;;
	esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive number"
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
mkdir -p "$DATA" "$EXT" "$STORE" "$TMPO" "$LOGD" "$MNT_BIND" "$MNT_SQ" "$MNT_SQLL" "$MNT_PFS" "$OUT"
: >"$PFS_LOG"
rm -f "$OUT"/perf-*.data "$OUT"/perf-*.data.old "$OUT"/perf-*.txt "$OUT"/perf-*.log "$OUT/results.md" "$OUT/results.tsv"

declare -A FPID=()   # foreground FUSE daemons started here: name -> PID
PFS_PID=""           # the payloadfs daemon (daemonized; from its pidfile)
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

# Wait up to 10 s for PID (one we started) to exit; then TERM it.
wait_gone() {
	local i
	for ((i = 0; i < 1000; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ] && return 0
		sleep 0.01
	done
	say "PID $1 still running 10 s after unmount; stopping it"
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
pfs_mount() {
	rm -f "$PFS_PIDFILE"
	"$PFS" "$STORE" "$MNT_PFS" -o "$PFS_OPTIONS" </dev/null 3>&- ||
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

# perf_start NAME / perf_stop — record the payloadfs daemon (BENCH_PERF).
perf_start() {
	local cg=(-g)
	[ "$PERF" = dwarf ] && cg=(--call-graph "dwarf,16384" -F 499)
	PERF_NAME=$1
	perf record -e cpu-clock "${cg[@]}" -p "$PFS_PID" -o "$OUT/perf-$1.data" \
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
	local c0 n
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
		ingest_one ingest.payloadfs "$MNT_PFS/events.csv"
		add cpu.ingest "$(awk -v a="$c0" -v b="$(pfs_cpu)" 'BEGIN { print b - a }')"
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

# small_one KEY DIR — create NSMALL files of 1 KiB in the new DIR.
small_one() {
	local r
	mkdir "$2" || die "mkdir $2 failed"
	r=$("$SMALLF" "$2" "$NSMALL" "$SMALL_BYTES") || die "smallfiles in $2 failed"
	add "$1" "${r% *}"
	add "${1/small/small_sync}" "${r#* }"
	[ "$(find "$2" -type f | wc -l)" -eq "$NSMALL" ] || die "$2 does not hold $NSMALL files"
	say "  $1: ${r% *}s (+ syncfs ${r#* }s)"
}

fig_small() {
	local n=0
	say "$NSMALL small files of $SMALL_BYTES bytes"
	mkdir -p "$EXT/small-ref"
	"$SMALLF" "$EXT/small-ref" "$NSMALL" "$SMALL_BYTES" >/dev/null || die "smallfiles failed"
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

# ---- run ---------------------------------------------------------------------

if wants ingest; then fig_ingest; fi
if wants seq; then fig_seq; fi
if wants view; then fig_view; fi
if wants small; then fig_small; fi
for p in bindfs squashfuse squashfuse_ll; do umount_peer "$p"; done
T_RUN=$(awk -v a="$T_RUN" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ------------------------------------------------------------------

# cache_size of the daemon: from BENCH_PFS_OPTS, else the default in --help.
cs=$(tr ',' '\n' <<<"$PFS_OPTS" | sed -n 's/^cache_size=//p' | tail -n 1)
[ -n "$cs" ] || cs=$("$PFS" --help 2>&1 | sed -n 's/.*cache_size=.*(default \([0-9]*[KMG]\?\)).*/\1/p' | head -n 1)
CACHE_BYTES=$(parse_size "${cs:-0}" 2>/dev/null) || CACHE_BYTES=0

# fmt_rate KEY UNITS_PER_RUN DIV — UNITS/median/DIV, or "—".
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
# target NAME MEASURED OP GOAL UNIT — one row of the targets table.
target() {
	local name=$1 v=$2 op=$3 goal=$4 unit=$5 st
	if [ -z "$v" ]; then
		echo "| $name | not run | $op $goal$unit | — |"
		return
	fi
	st=$(awk -v v="$v" -v g="$goal" -v op="$op" 'BEGIN {
		ok = (op == "≥") ? v >= g : v <= g
		if (ok) { print "**met**"; exit }
		if (op == "≥") printf "missed (%.0f%% of the target)", 100 * v / g
		else printf "missed (%.0f%% over)", 100 * (v - g) / g }')
	echo "| $name | $v$unit | $op $goal$unit | $st |"
}

MB=1000000
R_SEQ=$(speedup seq_cold.payloadfs seq_cold.squashfuse || true)
R_SEQLL=$(speedup seq_cold.payloadfs seq_cold.squashfuse_ll || true)
R_WARM=$(speedup seq_warm.payloadfs seq_warm.ext4 || true)
R_VIEW=$(speedup view_mid.payloadfs tailhead_mid.ext4 || true)
R_END=$(speedup view_zero.payloadfs view_end.payloadfs || true)
R_INGEST=$(speedup ingest.payloadfs ingest.ext4 || true)
R_INGEST_B=$(speedup ingest.payloadfs ingest.bindfs || true)
R_SMALL=$(speedup small.payloadfs small.bindfs || true)
R_SMALL_E=$(speedup small.payloadfs small.ext4 || true)
PEAK_KB=0
for w in "${!RSS_KB[@]}"; do [ "${RSS_KB[$w]}" -gt "$PEAK_KB" ] && PEAK_KB=${RSS_KB[$w]}; done
PEAK_MIB="" LIMIT_MIB=$(((CACHE_BYTES >> 20) + 64))
[ "$PEAK_KB" -gt 0 ] && PEAK_MIB=$(awk -v k="$PEAK_KB" 'BEGIN { printf "%.0f", k / 1024 }')

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
	for w in import ingest seq view small perf; do
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
	echo "## Machine and set-up"
	echo
	echo "- CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
	echo "- RAM: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- kernel: $(uname -sr); $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "- disk: $src_dev ($blk${model:+, $model}, rotational=$rota), $(findmnt -no FSTYPE,OPTIONS -T "$WORK" | tr -s ' ')"
	echo "- load average at start $LOAD_START, at end $LOAD_END (the machine is shared when these are high)"
	echo "- payloadfs: \`$(basename "$PFS") STORE MNT -o logfile=..,pidfile=..${PFS_OPTS:+,$PFS_OPTS}\` ($("$PFS" --version 2>&1 | head -n 1)); default options otherwise (cache_size ${cs:-?})"
	echo "- bindfs $(bindfs --version 2>&1 | awk '{ print $2; exit }') \`bindfs -f DATA MNT\`; $(squashfuse --help 2>&1 | awk 'NR == 1 { print $1, $2 }') and squashfuse_ll \`-f IMG MNT\`; \`mksquashfs events.csv IMG -comp lz4 -b 1M -noappend\` ($(mksquashfs -version 2>&1 | head -n 1 | awk '{ print $3 }'))"
	echo "- cold: fresh mount (ext4: not remounted) then \`sync; echo 3 > /proc/sys/vm/drop_caches\`; reads: \`dd bs=1M of=/dev/null\`; warm: the same read again at once"
	echo "- views: \`cat MNT/events.csv@rows=A:A+100000 > file\`, cold, compared byte for byte with header + \`tail -n +(A+2) | head -n 100000\`"
	echo "- perf hardware counters (\`perf stat -e instructions true\`): $PERF_HW"
	[ "$PERF" = 0 ] || echo "- BENCH_PERF=$PERF: daemon profiles in $OUT/perf-seq_cold.txt and $OUT/perf-ingest.txt (\`perf report -i $OUT/perf-seq_cold.data\`)"
	echo "- command: \`${BENCH_CMDLINE:-make bench}\`${ONLY:+ (BENCH_ONLY=$ONLY)}"
} >"$OUT/results.md"

{
	echo "# key	samples (seconds; cpu.* = daemon CPU seconds)"
	for k in "${KEYS[@]}"; do printf '%s\t%s\n' "$k" "${SAMP[$k]}"; done
	for w in "${!RSS_KB[@]}"; do printf 'vmhwm_kb.%s\t%s\n' "$w" "${RSS_KB[$w]}"; done
} >"$OUT/results.tsv"

cat "$OUT/results.md"
say "written $OUT/results.md and $OUT/results.tsv"
