#!/bin/bash
# run.sh BUILD [NAME...] — replay the seed corpus of each fuzz harness,
# then fuzz it for FUZZ_TIME seconds; one TAP line per harness. NAMEs are
# harness names (fuzz_view ...); none means every tests/fuzz/fuzz_*.c.
# Called by tests/run-all.sh (make check) and by `make fuzz-run`.
#
# Environment:
#   FUZZ_TIME  seconds of fuzzing per harness (default 20); 0 only replays
#              the committed seeds (the sanitizer tier: same binaries)
#   FUZZ_CC    the compiler `make fuzz` used (default clang), to tell
#              "not built" (a failure) from "clang or libFuzzer missing" (a
#              skip)
#   FUZZ_ARGS  extra libFuzzer flags for the fuzzing run (e.g. -jobs=2)
#
# Files: the seeds are tests/fuzz/corpus/NAME/ (read only; a dictionary
# tests/fuzz/NAME.dict is used when present). What the fuzzer learns goes
# to BUILD/fuzz/corpus/NAME/ (kept between runs); a crashing input goes to
# BUILD/fuzz/artifacts/NAME/, and the TAP line names it, followed by the
# stack and the command that reproduces it. The full log of each run is
# BUILD/fuzz/logs/NAME.log.
#
# Exit 0 when every harness passed or was skipped, 1 otherwise.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "fuzz/run: no build directory ${1:-build}" >&2; exit 2; }
shift
FUZZ_TIME=${FUZZ_TIME:-20}
FUZZ_CC=${FUZZ_CC:-clang}
FUZZ_ARGS=${FUZZ_ARGS:-}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
		names+=("$(basename "$f" .c)")
	done
fi

n=0 failed=0
# tap OK|NOT TEXT — one TAP line.
tap() {
	n=$((n + 1))
	if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}

# excerpt LOG — the interesting part of a crash log, as TAP comments.
excerpt() {
	grep -v -e '^INFO:' -e '^#[0-9]' -e 'Uses: [0-9]' -e '^\*\*\*' "$1" |
		grep -m 1 -A 40 -e 'ERROR' -e 'property failed' -e 'runtime error' -e 'deadly signal' \
			-e 'Timeout' -e 'out-of-memory' |
		head -45 | sed 's/^/#   /'
}

for name in "${names[@]}"; do
	bin=$BUILD/fuzz/$name
	seeds=$ROOT/tests/fuzz/corpus/$name
	work=$BUILD/fuzz/corpus/$name
	art=$BUILD/fuzz/artifacts/$name
	log=$BUILD/fuzz/logs/$name.log
	dict=$ROOT/tests/fuzz/$name.dict
	if [ ! -x "$bin" ]; then
		if why=$("$ROOT/tests/fuzz/have-libfuzzer.sh" "$FUZZ_CC" 2>&1); then
			tap NOT "$name: not built ($bin missing; \`make fuzz\` failed?)"
		else
			tap OK "$name # skip clang/libFuzzer unavailable: ${why#have-libfuzzer: }"
		fi
		continue
	fi
	mkdir -p "$work" "$art" "$(dirname "$log")"
	: >"$log"

	# 1. every committed seed, once (a regression seed that crashes again
	#    is its own reproducer)
	mapfile -t files < <(find "$seeds" -type f 2>/dev/null | sort)
	if [ ${#files[@]} -eq 0 ]; then
		tap NOT "$name: no seeds in tests/fuzz/corpus/$name"
		continue
	fi
	if ! timeout -k 10 300 "$bin" -timeout=10 "${files[@]}" >>"$log" 2>&1; then
		bad=$(grep -o 'Running: .*' "$log" | tail -1 | sed 's/^Running: //')
		tap NOT "$name: seed corpus does not replay cleanly; reproducer: ${bad:-?}"
		excerpt "$log"
		echo "#   reproduce: $bin $bad"
		continue
	fi
	if [ "$FUZZ_TIME" -le 0 ] 2>/dev/null; then
		tap OK "$name: ${#files[@]} seeds replay cleanly (no fuzzing: FUZZ_TIME=0)"
		continue
	fi

	# 2. fuzz for FUZZ_TIME seconds from the seeds and what earlier runs found
	before=$(find "$art" -type f | wc -l)
	t0=$SECONDS
	extra=()
	[ -f "$dict" ] && extra+=("-dict=$dict")
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
	timeout -k 10 $((FUZZ_TIME + 300)) "$bin" -max_total_time="$FUZZ_TIME" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" "${extra[@]}" \
		$FUZZ_ARGS "$work" "$seeds" >>"$log" 2>&1
	rc=$?
	secs=$((SECONDS - t0))
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
	[ -z "$execs" ] && execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
	units=$(find "$work" -type f | wc -l)
	if [ "$rc" -eq 0 ]; then
		tap OK "$name: ${#files[@]} seeds replay cleanly; ${execs:-?} executions in ${secs} s, no crash (corpus $units)"
		continue
	fi
	repro=$(grep -o 'Test unit written to .*' "$log" | tail -1 | sed 's/^Test unit written to //')
	if [ -z "$repro" ] && [ "$(find "$art" -type f | wc -l)" -gt "$before" ]; then
		repro=$(ls -t "$art"/* 2>/dev/null | head -1)
	fi
	tap NOT "$name: crash after ${execs:-?} executions (status $rc); reproducer: ${repro:-none written}"
	excerpt "$log"
	[ -n "$repro" ] && echo "#   reproduce: $bin $repro"
	echo "#   full log: $log"
done
echo "1..$n"
[ "$failed" -eq 0 ]
