/* hist — see hist.h for the invariants. */
#include "cache/hist.h"

#include <time.h>

const uint64_t hist_bound_ns[HIST_NBOUNDS] = {
	10000, 25000, 50000, 100000, 250000, 500000,              /* 10 us .. 500 us */
	1000000, 2500000, 5000000, 10000000, 25000000, 50000000,  /* 1 ms .. 50 ms */
	100000000, 250000000, 500000000,                          /* 100 ms .. 500 ms */
	1000000000, 2500000000, 10000000000,                      /* 1 s .. 10 s */
};

void hist_observe(struct hist *h, uint64_t ns)
{
	unsigned lo = 0, hi = HIST_NBOUNDS;

	/* (2): the first bound >= ns; HIST_NBOUNDS is the +Inf slot */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (hist_bound_ns[mid] >= ns)
			hi = mid;
		else
			lo = mid + 1;
	}
	__atomic_add_fetch(&h->slot[lo], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->sum_ns, ns, __ATOMIC_RELAXED);
}

void hist_read(const struct hist *h, struct hist_snap *out)
{
	uint64_t c = 0;

	for (unsigned i = 0; i < HIST_NBOUNDS; i++) {
		c += __atomic_load_n(&h->slot[i], __ATOMIC_RELAXED);
		out->cum[i] = c;
	}
	out->count = c + __atomic_load_n(&h->slot[HIST_NBOUNDS], __ATOMIC_RELAXED);
	out->sum_ns = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
}

uint64_t hist_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
