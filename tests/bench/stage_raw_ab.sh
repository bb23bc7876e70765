#!/bin/bash
# stage_raw_ab.sh — staging raw at ingest (index/recompress.c), A/B in one
# run: `cp CSV DEST && sync` on ext4 and on three payloadfs mounts at once,
# PAYLOADFS_STAGE_RAW=0 (never: every fragment compressed before the
# commit, as before format 5), unset (the daemon's policy: raw when the
# encoders are behind) and =always, interleaved run by run so that the
# machine's load hits them alike. Prints each run (wall s, daemon CPU s,
# fragments staged raw, s from the end of the sync until the background
# pass compressed them all) and the medians.
#
#   tests/bench/stage_raw_ab.sh [BUILD [ROWS [RUNS]]]
#
# BUILD defaults to build/ (needs BUILD/bench/gencsv: make bench builds
# it), ROWS to 20,000,000 (~1.18 GB, the `make bench` CSV), RUNS to 3.
# Works in its own mktemp directory under BENCH_DIR (default /var/tmp),
# unmounts what it mounted and removes the directory on exit. Not a test.
set -u
BUILD=${1:-build}
ROWS=${2:-20000000}
RUNS=${3:-3}
PFS=$BUILD/payloadfs
PCTL=$BUILD/payloadctl
GEN=$BUILD/bench/gencsv
for b in "$PFS" "$PCTL" "$GEN"; do
	[ -x "$b" ] || { echo "no $b (make bench builds it)" >&2; exit 1; }
done
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/pfs-stage-ab.XXXXXX")
MODES=(0 auto always)
declare -A PID
cleanup() {
	local m
	for m in "${MODES[@]}"; do
		if mountpoint -q "$W/mnt.$m" 2>/dev/null; then
			fusermount3 -u "$W/mnt.$m" || fusermount3 -uz "$W/mnt.$m"
		fi
		[ -n "${PID[$m]:-}" ] && while kill -0 "${PID[$m]}" 2>/dev/null; do sleep 0.05; done
	done
	rm -rf "$W"
}
trap cleanup EXIT
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
statf() { awk -F'[:,]' -v k="\"$2\"" '$1 ~ k { gsub(/ /, "", $2); print $2; exit }' "$W/mnt.$1/.stats"; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/${PID[$1]}/stat"; }

"$GEN" "$W/src.csv" "$ROWS" 1 >/dev/null || { echo "gencsv failed" >&2; exit 1; }
SIZE=$(stat -c %s "$W/src.csv")
mkdir "$W/ext4"
for m in "${MODES[@]}"; do
	mkdir "$W/mnt.$m"
	"$PCTL" init "$W/store.$m" >/dev/null || exit 1
	if [ "$m" = auto ]; then
		PAYLOADFS_STAGE_RAW=behind "$PFS" "$W/store.$m" "$W/mnt.$m" -o "pidfile=$W/pid.$m,logfile=$W/log.$m" || exit 1
	else
		PAYLOADFS_STAGE_RAW=$m "$PFS" "$W/store.$m" "$W/mnt.$m" -o "pidfile=$W/pid.$m,logfile=$W/log.$m" || exit 1
	fi
	PID[$m]=$(cat "$W/pid.$m")
done
cat "$W/src.csv" >/dev/null
echo "# $SIZE bytes; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
echo "# run target wall_s daemon_cpu_s staged_raw compressed_after_s"
declare -A R
for ((r = 1; r <= RUNS; r++)); do
	sync
	t=$(now)
	cp "$W/src.csv" "$W/ext4/a.csv" && sync
	w=$(since "$t")
	R[ext4]+="$w "
	echo "$r ext4 $w - - -"
	rm -f "$W/ext4/a.csv"
	for m in "${MODES[@]}"; do
		rm -f "$W/mnt.$m/a.csv"
		sync
		c0=$(cpu "$m") s0=$(statf "$m" staged_raw) r0=$(statf "$m" recompressed)
		t=$(now)
		cp "$W/src.csv" "$W/mnt.$m/a.csv" && sync
		w=$(since "$t")
		c=$(awk -v a="$c0" -v b="$(cpu "$m")" 'BEGIN { printf "%.2f", b - a }')
		n=$(($(statf "$m" staged_raw) - s0))
		t=$(now)
		while [ $(($(statf "$m" recompressed) - r0)) -lt "$n" ]; do sleep 0.05; done
		a=$(since "$t")
		cmp -s "$W/src.csv" "$W/mnt.$m/a.csv" || { echo "$m: bytes differ" >&2; exit 1; }
		R[$m]+="$w "
		R[cpu.$m]+="$c "
		R[after.$m]+="$a "
		echo "$r pfs.$m $w $c $n $a"
	done
done
e=$(tr ' ' '\n' <<<"${R[ext4]}" | grep . | median)
echo "# medians: ext4 ${e}s"
for m in "${MODES[@]}"; do
	v=$(tr ' ' '\n' <<<"${R[$m]}" | grep . | median)
	echo "# pfs STAGE_RAW=$m: ${v}s ($(awk -v a="$e" -v b="$v" 'BEGIN { printf "%.2f", a / b }')x ext4)," \
		"daemon CPU $(tr ' ' '\n' <<<"${R[cpu.$m]}" | grep . | median)s," \
		"compressed $(tr ' ' '\n' <<<"${R[after.$m]}" | grep . | median)s after the sync"
done
for m in "${MODES[@]}"; do
	fusermount3 -u "$W/mnt.$m"
	while kill -0 "${PID[$m]}" 2>/dev/null; do sleep 0.05; done
	PID[$m]=
	echo "# store.$m after unmount: $("$PCTL" stat -v "$W/store.$m" /a.csv | grep -cE ' raw( |$)') raw," \
		"$("$PCTL" stat -v "$W/store.$m" /a.csv | grep -c ' lz4$') lz4 fragments; $("$PCTL" fsck "$W/store.$m")"
done
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
