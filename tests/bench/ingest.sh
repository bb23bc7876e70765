#!/bin/bash
# ingest.sh — the write-path benchmark: `cp CSV DIR/ && sync` on ext4 (a
# directory of the file system that holds $TMPDIR) and on payloadfs, runs
# interleaved; prints each run and the medians: wall time, the close(2)
# of cp on payloadfs (the commit), the daemon's CPU seconds and peak RSS.
#
#   tests/bench/ingest.sh [BUILD [CSV [RUNS]]]
#
# BUILD defaults to build/, RUNS to 3; PFS_OPTS adds mount options (e.g.
# PFS_OPTS=sync: every close durable). Without CSV a ~1 GB CSV of 11.65M
# realistic rows is generated once under $TMPDIR (kept for the next run).
# Needs strace (close timing). Mounts only under its own mktemp directory
# and unmounts it on exit.
set -u
BUILD=${1:-build}
CSV=${2:-}
RUNS=${3:-3}
TMPD=${TMPDIR:-/tmp}
PFS=$BUILD/payloadfs
[ -x "$PFS" ] || { echo "no $PFS (make first)" >&2; exit 1; }
if [ -z "$CSV" ]; then
	CSV=$TMPD/payloadfs-bench-ingest.csv
	if [ ! -s "$CSV" ]; then
		echo "# generating $CSV (~1 GB)" >&2
		python3 - "$CSV" 11650000 <<'PY'
import random, sys
random.seed(42)
out = open(sys.argv[1], "w", buffering=1 << 22)
out.write("id,ts,user_id,email,country,product,qty,price,status,comment\n")
countries = "US DE FR GB JP BR IN CA ES IT NL SE PL MX KR".split()
products = "widget gadget doohickey sprocket gizmo thingamajig whatsit contraption".split()
statuses = "paid shipped pending refunded cancelled".split()
words = "the quick brown fox jumps over lazy dog order late fast great bad ok again box".split()
names = "alice bob carol dave erin frank grace heidi ivan judy mallory oscar".split()
ri = random.randrange
buf = []
for i in range(int(sys.argv[2])):
    u = ri(1, 2000000)
    c = " ".join(words[ri(0, 16)] for _ in range(ri(0, 6)))
    buf.append("%d,%d,%d,%s%d@example.com,%s,%s,%d,%d.%02d,%s,%s\n" % (
        i, 1700000000 + i * 3 + ri(0, 3), u, names[u % 12], u, countries[ri(0, 15)],
        products[ri(0, 8)], ri(1, 20), ri(0, 500), ri(0, 100), statuses[ri(0, 5)], c))
    if len(buf) >= 100000:
        out.write("".join(buf))
        buf = []
out.write("".join(buf))
PY
	fi
fi
W=$(mktemp -d "$TMPD/pfs-bench-ingest.XXXXXX")
PID=
cleanup() {
	if mountpoint -q "$W/mnt" 2>/dev/null; then fusermount3 -u "$W/mnt" || fusermount3 -uz "$W/mnt"; fi
	[ -n "$PID" ] && while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
	rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "# $(basename "$CSV"): $(stat -c %s "$CSV") bytes; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$W/results"
for ((r = 0; r < RUNS; r++)); do
	mkdir -p "$W/store" "$W/mnt" "$W/ext4"
	sync
	s=$(now); cp "$CSV" "$W/ext4/" && sync; e=$(now)
	ext=$(echo "$e - $s" | bc)
	rm -f "$W/ext4/"*; sync
	"$PFS" "$W/store" "$W/mnt" -o "logfile=$W/log,pidfile=$W/pid${PFS_OPTS:+,$PFS_OPTS}" 3>&- || exit 1
	PID=$(cat "$W/pid")
	s=$(now); strace -qq -e trace=close -T -o "$W/st" cp "$CSV" "$W/mnt/" && sync; e=$(now)
	pfs=$(echo "$e - $s" | bc)
	cl=$(grep -o '<[0-9.]*>' "$W/st" | tr -d '<>' | sort -g | tail -1)
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
	cpu=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$PID/stat")
	cmp -s "$CSV" "$W/mnt/$(basename "$CSV")" || echo "# MISMATCH in run $r"
	fusermount3 -u "$W/mnt"
	while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
	PID=
	printf 'run %d: ext4 %.2f s  payloadfs %.2f s (close %.3f s)  ratio %.2f  daemon CPU %s s  peak RSS %d MiB  load %s\n' \
		"$r" "$ext" "$pfs" "$cl" "$(echo "$ext / $pfs" | bc -l)" "$cpu" $((hwm / 1024)) "$(cut -d' ' -f1 /proc/loadavg)"
	echo "$ext $pfs $cl $cpu $hwm" >>"$W/results"
	rm -rf "$W/store" "$W/mnt"
done
me=$(cut -d' ' -f1 "$W/results" | median)
mp=$(cut -d' ' -f2 "$W/results" | median)
mc=$(cut -d' ' -f3 "$W/results" | median)
mu=$(cut -d' ' -f4 "$W/results" | median)
mh=$(cut -d' ' -f5 "$W/results" | median)
printf 'median of %d: ext4 %.2f s  payloadfs %.2f s (close %.3f s)  ingest ratio (ext4/payloadfs) %.2f  daemon CPU %.2f s  peak RSS %d MiB\n' \
	"$RUNS" "$me" "$mp" "$mc" "$(echo "$me / $mp" | bc -l)" "$mu" "$(echo "$mh / 1024" | bc)"
