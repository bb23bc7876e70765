/* hist — latency histograms with fixed buckets and atomic counters, for
 * the Prometheus exposition of the daemon (`.metrics`, docs/metrics.md).
 *
 * Invariants:
 *  (1) Buckets are fixed (hist_bound_ns): the same for every histogram and
 *      every run, so scrapes of different daemons can be summed.
 *  (2) An observation of D ns lands in exactly one slot: the first bucket
 *      whose bound is >= D, or the +Inf slot past the last bound.
 *  (3) Lock-free: hist_observe is two relaxed atomic adds; any thread may
 *      observe while another reads. A read's cumulative counts are
 *      non-decreasing and its count is their last value (the count is
 *      derived from the slots read, never read apart from them); its sum
 *      may miss an observation whose slot it already saw (a scrape
 *      tolerates that: both only grow).
 * No FUSE here: index/, cache/ and tools/ may use it too. */
#ifndef PFS_HIST_H
#define PFS_HIST_H

#include <stdint.h>

#define HIST_NBOUNDS 18

/* Upper bounds of the buckets, in ns, increasing: 10 us .. 10 s. */
extern const uint64_t hist_bound_ns[HIST_NBOUNDS];

struct hist {
	uint64_t slot[HIST_NBOUNDS + 1];   /* per bucket (not cumulative); last: +Inf */
	uint64_t sum_ns;
};

/* What a reader sees: cumulative counts per bound (le), the total count
 * (the +Inf bucket) and the sum in ns. */
struct hist_snap {
	uint64_t cum[HIST_NBOUNDS];
	uint64_t count;
	uint64_t sum_ns;
};

/* Record one observation of NS nanoseconds. Thread-safe, lock-free. */
void hist_observe(struct hist *h, uint64_t ns);

/* Read H into OUT. Thread-safe. */
void hist_read(const struct hist *h, struct hist_snap *out);

/* A monotonic clock in ns, for the observations. */
uint64_t hist_now_ns(void);

#endif
