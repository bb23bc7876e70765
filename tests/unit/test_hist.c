/* test_hist — the latency histograms (cache/hist.h): an observation lands
 * in the first bucket whose bound is >= it (a bound itself is inside its
 * bucket, one ns more is in the next), past the last bound in +Inf; the
 * cumulative counts are non-decreasing and end at the count; the sum adds
 * up; 4 threads observing at once lose nothing. */
#include <pthread.h>
#include <stdint.h>

#include "cache/hist.h"
#include "tests/unit/tap.h"

static void test_buckets(void)
{
	struct hist h = { { 0 }, 0 };
	struct hist_snap s;
	int mono = 1;

	hist_observe(&h, 0);                   /* bucket 0 (<= 10 us) */
	hist_observe(&h, 10000);               /* exactly the first bound: bucket 0 */
	hist_observe(&h, 10001);               /* bucket 1 (<= 25 us) */
	hist_observe(&h, 999999);              /* bucket 6 (<= 1 ms) */
	hist_observe(&h, 10000000000ull);      /* the last bound: bucket 17 */
	hist_observe(&h, 10000000001ull);      /* +Inf */
	hist_read(&h, &s);
	CHECK_EQ(s.count, 6, "count is every observation, +Inf included");
	CHECK_EQ(s.cum[0], 2, "0 and 10 us are <= 10 us");
	CHECK_EQ(s.cum[1], 3, "10 us + 1 ns is in le=25us");
	CHECK_EQ(s.cum[5], 3, "nothing more up to 500 us");
	CHECK_EQ(s.cum[6], 4, "999999 ns is in le=1ms");
	CHECK_EQ(s.cum[HIST_NBOUNDS - 2], 4, "nothing in 2.5 s");
	CHECK_EQ(s.cum[HIST_NBOUNDS - 1], 5, "10 s exactly is in le=10s, 10 s + 1 ns is not");
	CHECK(s.sum_ns == 0 + 10000 + 10001 + 999999 + 10000000000ull + 10000000001ull, "sum of the observations");
	for (unsigned i = 1; i < HIST_NBOUNDS; i++)
		if (hist_bound_ns[i] <= hist_bound_ns[i - 1] || s.cum[i] < s.cum[i - 1])
			mono = 0;
	CHECK(mono, "bounds increase, cumulative counts do not decrease");
}

static struct hist shared;

static void *observer(void *arg)
{
	uint64_t base = (uint64_t)(uintptr_t)arg;

	for (uint64_t i = 0; i < 100000; i++)
		hist_observe(&shared, (base + i) % 20000000);   /* 0 .. 20 ms */
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];
	struct hist_snap s;
	uint64_t sum = 0;

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, observer, (void *)(uintptr_t)(i * 7777));
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int k = 0; k < 4; k++)
		for (uint64_t i = 0; i < 100000; i++)
			sum += ((uint64_t)k * 7777 + i) % 20000000;
	hist_read(&shared, &s);
	CHECK_EQ(s.count, 400000, "4 threads x 100000 observations, none lost");
	CHECK(s.sum_ns == sum, "the sum of 400000 concurrent observations");
	CHECK_EQ(s.cum[HIST_NBOUNDS - 1], 400000, "all within 10 s");
}

int main(void)
{
	struct hist h = { { 0 }, 0 };
	struct hist_snap s;
	uint64_t a = hist_now_ns(), b = hist_now_ns();

	CHECK(b >= a && a > 0, "hist_now_ns is monotonic");
	hist_read(&h, &s);
	CHECK_EQ(s.count, 0, "an empty histogram counts nothing");
	test_buckets();
	test_threads();
	return tap_done();
}
