#!/bin/sh
# have-libfuzzer.sh [CC] — exit 0 when CC (default clang) can build and run
# a libFuzzer binary with ASan+UBSan (clang and libclang-rt-14-dev
# installed), else print why on stderr and exit 1. Quiet on success.
CC=${1:-${FUZZ_CC:-clang}}
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "have-libfuzzer: $CC not found (packaging/install-deps.sh installs clang)" >&2
	exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/have-libfuzzer.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
cat >"$dir/probe.c" <<'EOC'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOC
if ! "$CC" -fsanitize=fuzzer,address,undefined -o "$dir/probe" "$dir/probe.c" >"$dir/log" 2>&1; then
	echo "have-libfuzzer: $CC cannot link -fsanitize=fuzzer (libclang-rt-14-dev missing?): $(head -c 300 "$dir/log")" >&2
	exit 1
fi
if ! "$dir/probe" -runs=1 >"$dir/log" 2>&1; then
	echo "have-libfuzzer: a libFuzzer binary does not run: $(tail -c 300 "$dir/log")" >&2
	exit 1
fi
exit 0
