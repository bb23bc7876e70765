/* benchclock — the clocks the bench programs time with. */
#ifndef PFS_BENCHCLOCK_H
#define PFS_BENCHCLOCK_H

#include <sys/resource.h>

#include "tests/unit/tclock.h"   /* now_s */

/* This process's CPU time (user + system), in seconds. */
static inline double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

#endif
