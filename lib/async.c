/* async — libpayload's asynchronous batched get (lib/payload.h,
 * payload_queue_*): a reader submits batches of payload_get requests and
 * reaps them later, keeping a stream of batches going with bounded memory.
 *
 * Invariants:
 *  (A1) One read path: a submitted batch runs payload_get_many, unchanged,
 *       as one group job on the store's worker pool (cache/pool.h), whose
 *       fragment loads go to the same pool (a waiting job helps run them,
 *       so nesting never deadlocks the pool).
 *  (A2) Bounds: at most DEPTH batches and MAX_BYTES bytes (the sum of
 *       their requests' CAP) are in flight, from the submit that accepted
 *       them until the reap (payload_queue_poll/wait) that hands their
 *       completion back; the counters are changed under q->m only, so
 *       q->bytes <= max_bytes always (peak_bytes records the highest).
 *       A submit that would pass a bound blocks until reaps make room, or
 *       with PAYLOAD_NOWAIT returns -EAGAIN; a batch bigger than MAX_BYTES
 *       alone is refused (-E2BIG).
 *  (A3) Completions come back in submission order: a reap returns the
 *       oldest batches, done, in order; a waiter whose oldest batch has not
 *       started runs it itself (pool_group_wait), so a queue makes progress
 *       even when the pool is busy or has no threads.
 *  (A4) A batch is freed only after pool_group_wait on it returned (the
 *       pool may touch the group until then: pool.h (2)); exactly one
 *       thread waits on each group (b->claimed, under q->m).
 *  (A5) payload_queue_close waits for every batch in flight (their
 *       buffers are written) and drops their completions.
 */
#include "lib/payload.h"
#include "lib/payload_int.h"
#include "index/store_int.h"
#include "cache/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PL_API __attribute__((visibility("default")))

struct batch {
	struct pool_group g;
	payload_queue *q;
	struct payload_get *reqs;
	size_t n;
	void *tag;
	uint64_t bytes;
	int rc;
	int queued, done, claimed, waited;   /* under q->m */
	struct batch *next;
};

struct payload_queue {
	payload_store *ps;
	struct pool *pool;
	pthread_mutex_t m;
	pthread_cond_t cv;
	unsigned depth, inflight;
	uint64_t max_bytes, bytes, peak_bytes;
	struct batch *head, *tail;
	uint64_t submitted, completed;
};

PL_API int payload_queue_open(payload_store *ps, unsigned depth, uint64_t max_bytes, payload_queue **out)
{
	payload_queue *q;

	if (out)
		*out = NULL;
	if (!ps || !out || !depth)
		return payload_fail(-EINVAL, "payload_queue_open");
	if (!(q = calloc(1, sizeof(*q))))
		return payload_fail(-ENOMEM, "payload_queue_open");
	q->ps = ps;
	q->pool = store_pool(payload_core(ps));
	q->depth = depth;
	q->max_bytes = max_bytes ? max_bytes : UINT64_MAX;
	pthread_mutex_init(&q->m, NULL);
	pthread_cond_init(&q->cv, NULL);
	*out = q;
	return 0;
}

static void run_batch(void *arg)
{
	struct batch *b = arg;
	payload_queue *q = b->q;
	int rc = payload_get_many(q->ps, b->reqs, b->n);

	pthread_mutex_lock(&q->m);
	b->rc = rc;
	b->done = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->m);
}

PL_API int payload_queue_submit(payload_queue *q, struct payload_get *reqs, size_t n, void *tag, int flags)
{
	struct batch *b;
	uint64_t bytes = 0;

	if (!q || (!reqs && n) || (flags & ~PAYLOAD_NOWAIT))
		return payload_fail(-EINVAL, "payload_queue_submit");
	for (size_t i = 0; i < n; i++)
		bytes += reqs[i].cap;
	if (bytes > q->max_bytes)
		return payload_fail(-E2BIG, "payload_queue_submit: a batch of %llu bytes, the queue's limit %llu",
				    (unsigned long long)bytes, (unsigned long long)q->max_bytes);
	if (!(b = calloc(1, sizeof(*b))))
		return payload_fail(-ENOMEM, "payload_queue_submit");
	*b = (struct batch){ .q = q, .reqs = reqs, .n = n, .tag = tag, .bytes = bytes };
	pthread_mutex_lock(&q->m);
	while (q->inflight >= q->depth || q->bytes + bytes > q->max_bytes) {   /* (A2) */
		if (flags & PAYLOAD_NOWAIT) {
			pthread_mutex_unlock(&q->m);
			free(b);
			return payload_fail(-EAGAIN, "payload_queue_submit: %u batches, %llu bytes in flight",
					    q->inflight, (unsigned long long)q->bytes);
		}
		pthread_cond_wait(&q->cv, &q->m);
	}
	q->inflight++;
	q->bytes += bytes;
	if (q->bytes > q->peak_bytes)
		q->peak_bytes = q->bytes;
	q->submitted++;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
	pool_group_init(&b->g);
	pthread_mutex_unlock(&q->m);
	/* outside q->m: without memory for a job record the pool runs it
	 * here at once, and it takes q->m */
	pool_group_submit(q->pool, &b->g, run_batch, b);     /* (A1) */
	pthread_mutex_lock(&q->m);
	b->queued = 1;        /* only now may a reaper wait on its group (A4) */
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->m);
	return 0;
}

/* Make the head reapable: done and its group waited (A3, A4). Called and
 * returns with q->m held. @return 1 ready, 0 not (only when !BLOCK or
 * the deadline passed). */
static int head_ready(payload_queue *q, int block, const struct timespec *deadline)
{
	for (;;) {
		struct batch *b = q->head;
		if (!b)
			return 0;
		if (b->waited)
			return 1;
		if (b->queued && !b->claimed && (b->done || block)) {
			b->claimed = 1;
			pthread_mutex_unlock(&q->m);
			pool_group_wait(q->pool, &b->g);   /* runs it here when not started */
			pthread_mutex_lock(&q->m);
			b->waited = 1;
			pthread_cond_broadcast(&q->cv);
			return 1;
		}
		if (!block)
			return 0;
		if (deadline) {
			if (pthread_cond_timedwait(&q->cv, &q->m, deadline) == ETIMEDOUT &&
			    (!q->head || !q->head->waited))
				return 0;
		} else {
			pthread_cond_wait(&q->cv, &q->m);
		}
	}
}

static size_t reap(payload_queue *q, struct payload_completion *out, size_t max, int block,
		   const struct timespec *deadline)
{
	size_t k = 0;

	while (k < max && head_ready(q, block && k == 0, deadline)) {
		struct batch *b = q->head;
		out[k++] = (struct payload_completion){ .tag = b->tag, .reqs = b->reqs, .n = b->n,
							 .failed = b->rc };
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		q->inflight--;
		q->bytes -= b->bytes;
		q->completed++;
		free(b);
		pthread_cond_broadcast(&q->cv);    /* room for submitters */
	}
	return k;
}

PL_API int payload_queue_poll(payload_queue *q, struct payload_completion *out, size_t max)
{
	size_t k;

	if (!q || (!out && max))
		return payload_fail(-EINVAL, "payload_queue_poll");
	pthread_mutex_lock(&q->m);
	k = reap(q, out, max, 0, NULL);
	pthread_mutex_unlock(&q->m);
	return (int)k;
}

PL_API int payload_queue_wait(payload_queue *q, struct payload_completion *out, size_t max, int timeout_ms)
{
	struct timespec dl;
	size_t k;

	if (!q || !out || !max)
		return payload_fail(-EINVAL, "payload_queue_wait");
	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&q->m);
	if (!q->head) {
		pthread_mutex_unlock(&q->m);
		return 0;
	}
	k = reap(q, out, max, 1, timeout_ms >= 0 ? &dl : NULL);
	pthread_mutex_unlock(&q->m);
	if (!k)
		return payload_fail(-ETIMEDOUT, "payload_queue_wait: no batch done within %d ms", timeout_ms);
	return (int)k;
}

PL_API int payload_queue_stat(payload_queue *q, struct payload_queue_stat *out)
{
	if (!q || !out)
		return payload_fail(-EINVAL, "payload_queue_stat");
	pthread_mutex_lock(&q->m);
	*out = (struct payload_queue_stat){ .batches = q->inflight, .bytes = q->bytes,
					    .peak_bytes = q->peak_bytes, .submitted = q->submitted,
					    .completed = q->completed };
	pthread_mutex_unlock(&q->m);
	return 0;
}

PL_API void payload_queue_close(payload_queue *q)
{
	struct payload_completion c;

	if (!q)
		return;
	pthread_mutex_lock(&q->m);
	while (reap(q, &c, 1, 1, NULL))     /* (A5): every batch finished, dropped */
		;
	pthread_mutex_unlock(&q->m);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->m);
	free(q);
}
