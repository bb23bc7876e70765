/* fuzz — what the libFuzzer harnesses share: REQUIRE, and the byte
 * readers their reference models use (written here, not taken from the
 * code under test, so that a reference stays independent of it).
 * Header-only: define FUZZ_NAME (the harness's name) before including. */
#ifndef PFS_FUZZ_H
#define PFS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including tests/fuzz/fuzz.h"
#endif

/* A property of the code under test: abort (the fuzzer's crash) when C is
 * false, naming C and where. */
#define REQUIRE(c) do { if (!(c)) { \
	fprintf(stderr, FUZZ_NAME ": property failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
	abort(); } } while (0)

/* The N-byte little-endian number at P (N <= 8). */
static inline uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Store V at P as N little-endian bytes. */
static inline void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

#endif
