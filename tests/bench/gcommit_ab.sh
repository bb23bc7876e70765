#!/bin/bash
# gcommit_ab.sh — interleaved A/B of 1 KiB-file commits on RADOS writer
# mounts (docs/benchmarks.md "group commit"). Not part of make bench.
#
#   tests/bench/gcommit_ab.sh OTHER_BUILD BUILD REPS FILES THREADS [dirs]
#
# One throwaway cluster (tests/rados/cluster.sh, stopped by PID at exit)
# and four daemons mounted at once: a local store (BUILD), a RADOS writer
# of OTHER_BUILD (e.g. main's), one of BUILD with PAYLOADFS_GROUP_COMMIT=0,
# one of BUILD. Each round runs BUILD/bench/smallfiles (FILES files of 1
# KiB) on each mount in turn (the order rotates per round), so that all
# see the same load; prints one line per run: "round variant threads
# files/s load". With `dirs`, THREADS processes of FILES/THREADS files
# each, every one in a directory of its own (the kernel serializes creates
# in one directory); else one process of THREADS threads in one directory.
set -u
[ $# -ge 5 ] || { echo "usage: $0 OTHER_BUILD BUILD REPS FILES THREADS [dirs]" >&2; exit 2; }
OTHER=$(realpath "$1") BUILD=$(realpath "$2") REPS=$3 N=$4 THR=$5 DIRS=${6:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CL=$ROOT/tests/rados/cluster.sh
SF=$BUILD/bench/smallfiles
W=$(mktemp -d "${TMPDIR:-/tmp}/gcommit-ab.XXXXXX")
declare -A BIN=([local]=$BUILD [other]=$OTHER [gc0]=$BUILD [gc]=$BUILD)
VARIANTS="local other gc0 gc"

cleanup() {
	local v
	for v in $VARIANTS; do
		mountpoint -q "$W/mnt.$v" 2>/dev/null && fusermount3 -u "$W/mnt.$v"
	done
	sleep 1
	"$CL" stop "$W/ceph" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

[ -x "$SF" ] || { echo "$SF missing (make $SF)" >&2; exit 1; }
"$CL" start "$W/ceph" >"$W/cluster.log" 2>&1 || { tail -3 "$W/cluster.log" >&2; exit 1; }
eval "$("$CL" env "$W/ceph")"
for v in $VARIANTS; do
	mkdir -p "$W/store.$v" "$W/mnt.$v"
	if [ "$v" = local ]; then
		"${BIN[$v]}/payloadctl" init "$W/store.$v" >/dev/null || exit 1
	else
		"${BIN[$v]}/payloadctl" init --rados "$PFS_RADOS_POOL/ab-$v" --ceph-conf "$PFS_CEPH_CONF" \
			"$W/store.$v" >/dev/null || exit 1
	fi
	gc=1
	[ "$v" = gc0 ] && gc=0
	env PAYLOADFS_GROUP_COMMIT=$gc "${BIN[$v]}/payloadfs" "$W/store.$v" "$W/mnt.$v" \
		-o "logfile=$W/$v.log" </dev/null || exit 1
done
for r in $(seq 1 "$REPS"); do
	case $((r % 4)) in
	0) ord="local other gc0 gc" ;; 1) ord="gc local other gc0" ;;
	2) ord="gc0 gc local other" ;; 3) ord="other gc0 gc local" ;;
	esac
	for v in $ord; do
		d=$W/mnt.$v/r$r
		mkdir "$d" || exit 1
		t0=$EPOCHREALTIME
		if [ -n "$DIRS" ]; then
			pids=()
			for k in $(seq 1 "$THR"); do
				mkdir "$d/d$k"
				"$SF" "$d/d$k" $((N / THR)) 1024 1 >/dev/null &
				pids+=($!)
			done
			for p in "${pids[@]}"; do wait "$p" || exit 1; done
		else
			"$SF" "$d" "$N" 1024 "$THR" >/dev/null || exit 1
		fi
		awk -v r="$r" -v v="$v" -v t="$THR" -v n="$N" -v a="$t0" -v b="$EPOCHREALTIME" \
			-v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { printf "%s %s %s %.0f files/s load %s\n", r, v, t, n / (b - a), l }'
	done
done
