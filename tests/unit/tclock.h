/* tclock — seconds on the monotonic clock, for the unit tests' bounded
 * waits (included by tutil.h and tcluster.h). */
#ifndef PFS_TCLOCK_H
#define PFS_TCLOCK_H

#include <time.h>

/* Seconds on the monotonic clock (bounded waits). */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
