/* tap — a minimal TAP producer for the unit tests: ok/not ok lines, a
 * plan at the end, exit 1 when any check failed. */
#ifndef PFS_TAP_H
#define PFS_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_fail;

/* COND is evaluated exactly once. */
#define CHECK(cond, ...) do { \
	int tap_ok = !!(cond); \
	tap_n++; \
	if (tap_ok) { printf("ok %d - ", tap_n); } \
	else { tap_fail++; printf("not ok %d - ", tap_n); } \
	printf(__VA_ARGS__); printf("\n"); \
	if (!tap_ok) printf("#   failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
	fflush(stdout); \
} while (0)

#define CHECK_EQ(a, b, ...) do { \
	long long tap_a = (long long)(a), tap_b = (long long)(b); \
	CHECK(tap_a == tap_b, __VA_ARGS__); \
	if (tap_a != tap_b) printf("#   got %lld, want %lld\n", tap_a, tap_b); \
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_fail)
		printf("# %d of %d checks failed\n", tap_fail, tap_n);
	return tap_fail ? 1 : 0;
}

#endif
