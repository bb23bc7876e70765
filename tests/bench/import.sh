#!/bin/bash
# import.sh BUILD [RUNS] — `payloadctl import` against `cp -r` into a mount,
# end to end and durable when done (import ends with an index flush; the
# mount is unmounted and its daemon waited for). Two data sets under a
# fresh directory in $BENCH_DIR (default /var/tmp): one CSV of ~530 MB
# (gencsv) and 10,000 files of 4,000 bytes (smallfiles). Prints one line
# per run and the medians. Needs root for the mount only as any FUSE mount
# does; not part of make check. docs/benchmarks.md has recorded runs.
set -eu
BUILD=$(cd "${1:-build}" && pwd)
RUNS=${2:-3}
DIR=$(mktemp -d "${BENCH_DIR:-/var/tmp}/payloadfs-import.XXXXXX")
PID=
cleanup() {
	mountpoint -q "$DIR/mnt" 2>/dev/null && fusermount3 -u "$DIR/mnt"
	[ -n "$PID" ] && while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
	rm -rf --one-file-system "$DIR"
}
trap cleanup EXIT
now() { date +%s.%N; }
mkdir -p "$DIR/src/small"
"$BUILD/bench/gencsv" "$DIR/src/events.csv" 9000000 >/dev/null
"$BUILD/bench/smallfiles" "$DIR/src/small" 10000 4000 >/dev/null

run_import() {
	rm -rf "$DIR/st" && mkdir "$DIR/st"
	local s=$(now)
	"$BUILD/payloadctl" import -q "$DIR/st" "$1" /data
	awk -v a="$(now)" -v b="$s" 'BEGIN { printf "%.3f\n", a - b }'
}
run_cp() {
	rm -rf "$DIR/st" "$DIR/mnt" && mkdir "$DIR/st" "$DIR/mnt"
	"$BUILD/payloadfs" "$DIR/st" "$DIR/mnt" -o pidfile="$DIR/pid"
	PID=$(cat "$DIR/pid")
	local s=$(now)
	cp -r "$1" "$DIR/mnt/data"
	fusermount3 -u "$DIR/mnt"
	while kill -0 "$PID" 2>/dev/null; do sleep 0.01; done
	PID=
	awk -v a="$(now)" -v b="$s" 'BEGIN { printf "%.3f\n", a - b }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for ds in events.csv small; do
	cat $(find "$DIR/src/$ds" -type f) >/dev/null
	: >"$DIR/imp" && : >"$DIR/cp"
	for ((i = 0; i < RUNS; i++)); do
		run_import "$DIR/src/$ds" | tee -a "$DIR/imp" | sed "s/^/$ds: import /"
		run_cp "$DIR/src/$ds" | tee -a "$DIR/cp" | sed "s/^/$ds: cp+umount /"
	done
	echo "$ds: median import $(median <"$DIR/imp") s, cp into a mount $(median <"$DIR/cp") s"
done
