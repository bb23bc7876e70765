/* pool — a small fixed pool of worker threads for CPU work on fragments:
 * parallel decompression of one request's misses, parallel compression at
 * commit, and background read-ahead.
 *
 * Two kinds of work:
 *  - group jobs: a caller submits several jobs under one struct pool_group
 *    and waits for all of them with pool_group_wait(). While it waits, the
 *    caller runs its own group's jobs that no worker has started yet, so a
 *    group always completes even when every worker is busy (or the pool
 *    has no threads at all): waiting can never deadlock on the pool.
 *  - background jobs (pool_submit_bg): fire-and-forget, lower priority;
 *    a worker takes a background job only when no group job is queued.
 *    Background jobs may be dropped unstarted by pool_free(): their CANCEL
 *    callback then runs instead, so their memory is never lost.
 *
 * Invariants:
 *  (1) A job runs exactly once (by a worker or by its group's waiter), or,
 *      for a background job, either runs or is cancelled exactly once.
 *  (2) g->pending counts the group's jobs not yet finished; it is changed
 *      only under p->lock, and pool_group_wait() returns only after it
 *      reached 0, so the group (often on the caller's stack) is never
 *      touched by the pool after the wait returns.
 *  (3) Queued job records are owned by the queue; a job's FN never sees
 *      its record.
 * Lock order: p->lock is a leaf; no job runs while it is held.
 * All functions are thread-safe except pool_new/pool_free.
 */
#ifndef PFS_POOL_H
#define PFS_POOL_H

#include <pthread.h>
#include <stddef.h>

struct pool;

/* A set of jobs one caller waits for. Initialise with pool_group_init();
 * live until pool_group_wait() returned. */
struct pool_group {
	unsigned pending;          /* protected by the pool's lock */
	pthread_cond_t done;       /* signalled when pending reaches 0 */
};

/* Make a pool of NTHREADS workers (0 = run everything in the callers).
 * @return the pool, or NULL on allocation or thread-creation failure. */
struct pool *pool_new(unsigned nthreads);
/* Stop the workers: queued group jobs still run (their waiters depend on
 * them), queued background jobs are cancelled. NULL-safe. */
void pool_free(struct pool *p);
/* Number of worker threads. */
unsigned pool_threads(const struct pool *p);

void pool_group_init(struct pool_group *g);
/* Queue FN(ARG) as a job of G. When the job record cannot be allocated,
 * FN(ARG) runs at once in the caller, so the call cannot fail. */
void pool_group_submit(struct pool *p, struct pool_group *g, void (*fn)(void *), void *arg);
/* Run G's unstarted jobs here and wait until all of G's jobs finished.
 * Destroys G's condition variable: G may be reused after pool_group_init(). */
void pool_group_wait(struct pool *p, struct pool_group *g);

/* Queue a background job FN(ARG); CANCEL(ARG) runs instead if the pool is
 * freed before the job started (CANCEL may be NULL).
 * @return 0; -ENOMEM, -ENOSYS (the pool has no threads), -ESHUTDOWN (being
 * freed): nothing was queued and the caller still owns ARG. */
int pool_submit_bg(struct pool *p, void (*fn)(void *), void (*cancel)(void *), void *arg);
/* Background jobs queued and not yet started (for back-pressure). */
size_t pool_bg_queued(struct pool *p);

/* The number of CPUs this process may run on (at least 1). */
unsigned pool_ncpus(void);

#endif
