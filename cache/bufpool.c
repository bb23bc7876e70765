/* bufpool — see bufpool.h.
 *
 * Invariants:
 *  (1) Every kept buffer is on the list of its exact capacity class, and
 *      kept_bytes is the sum of the capacities kept; kept_bytes <= BP_KEEP.
 *  (2) A buffer is either handed out or kept, never both.
 *  (3) A fresh buffer of BP_MIN bytes or more has its whole pages
 *      populated (writable) before it is handed out: one madvise
 *      (MADV_POPULATE_WRITE) instead of a page fault per 4 KiB when the
 *      decoder first writes it (measured: 70k faults, ~19% of the daemon's
 *      CPU in a cold 1 GB read while the cache fills; docs/benchmarks.md).
 *      Best effort: a kernel without it (EINVAL, < 5.14) or a failure
 *      (ENOMEM) leaves the pages to fault in as before.
 */
#include "cache/bufpool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache/fault.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define NCLASS 128       /* classes of 64 KiB .. 8 MiB; bigger ones are not kept */

struct kept { struct kept *next; };

static pthread_mutex_t bp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept *lists[NCLASS];   /* protected by bp_lock */
static size_t kept_bytes;            /* protected by bp_lock */

static size_t bp_populates;          /* atomic: buffers populated (tests) */

/* Invariant (3): fault in the whole pages of fresh buffer P (N bytes). */
static void populate(void *p, size_t n)
{
	static long page;
	uintptr_t a, b;

	if (!page)
		page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
	a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	b = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
	if (b > a && madvise((void *)a, b - a, MADV_POPULATE_WRITE) == 0)
		__atomic_fetch_add(&bp_populates, 1, __ATOMIC_RELAXED);
}

size_t bp_populated(void)
{
	return __atomic_load_n(&bp_populates, __ATOMIC_RELAXED);
}

static size_t round_up(size_t n)
{
	return n < BP_MIN ? n : (n + BP_CLASS - 1) / BP_CLASS * BP_CLASS;
}

void *bp_get(size_t n, size_t *cap)
{
	size_t c = round_up(n ? n : 1), k = c / BP_CLASS;
	void *p = NULL;

	if (FAULT("alloc"))
		return NULL;
	if (c >= BP_MIN && k < NCLASS) {
		/* this class, or the next one up (a little slack, no waste) */
		pthread_mutex_lock(&bp_lock);
		for (size_t j = k; j < NCLASS && j <= k + 1 && !p; j++) {
			if (lists[j]) {
				struct kept *b = lists[j];
				lists[j] = b->next;
				kept_bytes -= j * BP_CLASS;
				c = j * BP_CLASS;
				p = b;
			}
		}
		pthread_mutex_unlock(&bp_lock);
	}
	if (!p && (p = malloc(c)) && c >= BP_MIN)
		populate(p, c);
	if (p)
		*cap = c;
	return p;
}

void bp_put(void *p, size_t cap)
{
	size_t k = cap / BP_CLASS;

	if (!p)
		return;
	if (cap >= BP_MIN && cap % BP_CLASS == 0 && k < NCLASS) {
		pthread_mutex_lock(&bp_lock);
		if (kept_bytes + cap <= BP_KEEP) {
			struct kept *b = p;
			b->next = lists[k];
			lists[k] = b;
			kept_bytes += cap;
			p = NULL;
		}
		pthread_mutex_unlock(&bp_lock);
	}
	free(p);
}

size_t bp_kept(void)
{
	size_t n;

	pthread_mutex_lock(&bp_lock);
	n = kept_bytes;
	pthread_mutex_unlock(&bp_lock);
	return n;
}

void bp_trim(void)
{
	pthread_mutex_lock(&bp_lock);
	for (size_t k = 0; k < NCLASS; k++)
		while (lists[k]) {
			struct kept *b = lists[k];
			lists[k] = b->next;
			free(b);
		}
	kept_bytes = 0;
	pthread_mutex_unlock(&bp_lock);
}
