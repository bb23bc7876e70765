#!/bin/bash
# libget.sh BUILD — the library's figure of `make bench` (issue 14): batched
# gets of cached small chunks through libpayload (BUILD/bench/libget)
# against open + read + close of the same chunks as files through a
# payloadfs mount of the same store, and on ext4. Prints chunks/s of each
# way and the ratios, and writes them to BUILD/bench/lib-results.txt.
#
# Then (BUILD/bench/libbatch, the mount gone) two more figures side by
# side: (a) ONE payload_put_many of BENCH_LIB_PUT_N=100000 objects of 1 KiB
# against creating them as files on ext4 (open+write+close each, then
# syncfs), target >= 10x; (b) cold: BENCH_LIB_COLD_MB=2048 MiB of 64 KiB
# objects (built with put_many, 256 MiB per call, and as ext4 files: the
# build times are printed), then 10,000 random chunks of them after
# drop_caches, payload_get_many in batches of 1,000 against 16 threads of
# open+read+close on ext4, BENCH_LIB_COLD_REPS=2 passes each (best),
# target >= 2x. The cold figure needs root (drop_caches): skipped without.
# Every read is checked byte for byte.
#
# Environment: BENCH_LIB_CHUNKS=100000 chunks, BENCH_LIB_SIZE=4096 bytes
# each,
# BENCH_LIB_BATCH=1000 requests per payload_get_many, BENCH_LIB_REPS=3
# passes after one warm-up (best reported), BENCH_DIR=/var/tmp where the
# work directory is made (its file system is the "ext4" way),
# BENCH_LIB_CACHED_ONLY=1 stops after the cached-chunk figure.
# The mount is unmounted on exit, failure or Ctrl-C; only the daemon this
# script started is waited for. Not part of `make check`.
set -eu -o pipefail

BUILD=$(cd "${1:-build}" && pwd)
N=${BENCH_LIB_CHUNKS:-100000}
SIZE=${BENCH_LIB_SIZE:-4096}
BATCH=${BENCH_LIB_BATCH:-1000}
REPS=${BENCH_LIB_REPS:-3}
. "$(dirname "$0")/benchwork.sh"
bench_work lib store mnt ext

echo "# bench lib: $N chunks of $SIZE bytes, batches of $BATCH, $(bench_where)"
"$BUILD/payloadctl" init "$W/store" >/dev/null
mkdir "$W/c"
"$BUILD/payloadctl" import "$W/store" "$W/c" /c >/dev/null   # put_many makes no directories
"$BUILD/payloadctl" import "$W/store" "$W/c" /p >/dev/null
"$BUILD/payloadctl" import "$W/store" "$W/c" /k >/dev/null
"$BUILD/bench/libget" put "$W/store" "$N" "$SIZE"
"$BUILD/bench/libget" files "$W/ext" "$N" "$SIZE"
sync    # no writeback of the fresh store and files during the timed passes
bench_mount
"$BUILD/bench/libget" read "$W/store" "$W/mnt" "$W/ext" "$N" "$SIZE" "$BATCH" "$REPS" |
	tee "$BUILD/bench/lib-results.txt"

# ---- put_many and cold batched gets (libbatch): the store unmounted ----
bench_unmount
[ "${BENCH_LIB_CACHED_ONLY:-0}" = 1 ] && exit 0
R=$BUILD/bench/lib-results.txt
PUT_N=${BENCH_LIB_PUT_N:-100000}
echo "# put: one payload_put_many of $PUT_N objects of 1 KiB vs ext4 files; load: $(uptime | sed 's/.*load/load/')"
"$BUILD/bench/libbatch" put "$W/store" "$W/ext" "$PUT_N" 1024 | tee -a "$R"
awk '$1 == "put_many_vs_ext4" { printf "put_many / ext4 %.1fx (target >= 10x)\n", $2 }' "$R"

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
if [ "$(id -u)" -ne 0 ]; then
	echo "# cold figure skipped: drop_caches needs root"
	exit 0
fi
COLD_N=$(( ${BENCH_LIB_COLD_MB:-2048} * 16 ))     # 64 KiB objects
COLD_K=${BENCH_LIB_COLD_K:-10000}
[ "$COLD_K" -le "$COLD_N" ] || COLD_K=$COLD_N      # no more distinct chunks than objects
REPS_C=${BENCH_LIB_COLD_REPS:-2}
echo "# cold: $COLD_N objects of 64 KiB ($(( COLD_N / 16 )) MiB), $COLD_K random chunks; load: $(uptime | sed 's/.*load/load/')"
"$BUILD/bench/libbatch" mkcold "$W/store" "$W/ext" "$COLD_N" 65536 | tee -a "$R"
best_lib=1e30 best_ext=1e30
for _ in $(seq "$REPS_C"); do
	drop_caches
	out=$("$BUILD/bench/libbatch" cold lib "$W/store" "$COLD_N" 65536 "$COLD_K" 1000)
	echo "$out"
	t=$(echo "$out" | awk '$1 == "cold_lib_s" { print $2 }')
	best_lib=$(awk -v a="$best_lib" -v b="$t" 'BEGIN { print (b < a ? b : a) }')
	drop_caches
	out=$("$BUILD/bench/libbatch" cold ext "$W/ext" "$COLD_N" 65536 "$COLD_K" 16)
	echo "$out"
	t=$(echo "$out" | awk '$1 == "cold_ext4_s" { print $2 }')
	best_ext=$(awk -v a="$best_ext" -v b="$t" 'BEGIN { print (b < a ? b : a) }')
done
{
	echo "cold_chunks $COLD_K"
	echo "cold_store_mib $(( COLD_N / 16 ))"
	echo "cold_lib_best_s $best_lib"
	echo "cold_ext4_16threads_best_s $best_ext"
	awk -v l="$best_lib" -v e="$best_ext" 'BEGIN { printf "cold_lib_vs_ext4 %.2f\n", e / l }'
} | tee -a "$R"
awk '$1 == "cold_lib_vs_ext4" { printf "cold batched get / ext4 16 threads %.1fx (target >= 2x)\n", $2 }' "$R"
