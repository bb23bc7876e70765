/* durable — when commits reach the disk, and deletion of released images.
 *
 * The index (LMDB) is committed with MDB_NOMETASYNC by default ("lazy"): a
 * commit that wrote something writes its pages, flushes the data file (one
 * fdatasync), then writes its meta page without a flush; that meta page
 * reaches the disk with the next flush (the next such commit's, or the
 * syncer's). After a power loss or a kernel crash LMDB opens at the newest
 * meta page on disk: the newest commit may be undone, the store is never
 * torn (LMDB's guarantee for this mode). A crash of the daemon alone loses
 * nothing: the kernel holds every page written. With store_opts.sync (-o
 * sync) LMDB flushes the meta page too: every commit is durable when it
 * returns. A txn that wrote nothing (no put, no del) writes no page, no
 * meta page and flushes nothing: it never counts as a flush.
 *
 * Fragment images are made durable before the transaction that references
 * them (commit.c invariant 3), in one batch per commit.
 *
 * Invariants:
 *  (1) An image whose last reference went in txn T is deleted only after
 *      T's meta page is durable: until then a power loss can bring back
 *      the state before T, which references the image. The image waits on
 *      dq with W = idx_last_written() and G = sync_gen (flushes started),
 *      both read after T committed, so W >= T's id. It is due when
 *       (a) idx_last_written() > W: a txn after T in LMDB's order wrote
 *           pages, and its commit flushed the data file after T's meta
 *           page had been written (LMDB serializes write txns); or
 *       (b) sync_done_gen > G: a flush (store_sync) whose generation was
 *           taken after the entry was queued — so it began after T
 *           committed — succeeded. A flush that began before the entry
 *           was queued never counts, however late it returns.
 *      With -o sync every entry is due at once (T's commit flushed its
 *      meta page before T returned).
 *  (2) dq is in queue order with W and G non-decreasing (both are read
 *      under dq_lock and only grow), so the due entries are a prefix of
 *      dq: the reaper takes them from the head.
 *  (3) Deletions run on the reaper thread, never on the thread of the
 *      request that released the images: a snapshot drop's thousands of
 *      unlinks do not hold up the next close(2). store_reap_wait() waits
 *      for every entry due when it is called.
 *  (4) The syncer thread flushes the index every sync_ms when a txn wrote
 *      something since the last flush, so the newest commit is durable
 *      within that time even if no other commit follows, and no queued
 *      image waits longer (lazy mode).
 *  (4a) On a RADOS store (docs/rados.md) the commit point is the log in the
 *      cluster, not the local index: an image is tagged with the log
 *      position of the newest local commit (>= the releasing entry's) and
 *      is due once every live follower's horizon reached it
 *      (srados_may_delete); a follower deletes nothing.
 *  (5) dur_stop: the syncer stops, then one final flush makes every queued
 *      entry due by (b), then the reaper deletes them and stops. If the
 *      final flush fails nothing queued is deleted: those images stay on
 *      disk for the next mount's sweep (st->dur_leftover is set, so the
 *      store is not marked clean).
 * Lock order: sync_lock, then commit_lock (none taken inside it here),
 * then dq_lock; sync_wlock is a leaf.
 */
#include "index/store_int.h"
#include "index/store_rados.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dq_ent {
	struct frag_desc d;
	uint64_t written, gen;     /* W and G at release (invariant 1) */
};

static uint64_t done_gen(struct store *st)
{
	return __atomic_load_n(&st->sync_done_gen, __ATOMIC_ACQUIRE);
}

/* Caller holds dq_lock. The number of due entries at the head (2). */
static size_t due_prefix(struct store *st)
{
	uint64_t w = idx_last_written(st->idx), g = done_gen(st);
	size_t i = st->dqhead;

	if (st->rados) {           /* (4a): written holds the log position */
		while (i < st->dqn && srados_may_delete(st, st->dq[i].written))
			i++;
		return i - st->dqhead;
	}
	if (!st->dur_lazy)
		return st->dqn - st->dqhead;
	while (i < st->dqn && (st->dq[i].written < w || st->dq[i].gen < g))
		i++;
	return i - st->dqhead;
}

int dur_defer_delete(struct store *st, const struct frag_desc *d)
{
	struct dq_ent *v;

	if (st->rados && srados_follower(st))
		return 1;           /* (4a): the writer deletes; nothing to do here */
	if (!st->reap_running || (d->flags & FRAG_F_MEMORY))
		return 0;           /* delete now: a memory image, or no reaper */
	pthread_mutex_lock(&st->dq_lock);
	if (st->dqhead && st->dqhead * 2 >= st->dqn) {      /* compact */
		memmove(st->dq, st->dq + st->dqhead, (st->dqn - st->dqhead) * sizeof(*st->dq));
		st->dqn -= st->dqhead;
		st->dqhead = 0;
	}
	if (st->dqn == st->dqcap) {
		size_t cap = st->dqcap ? st->dqcap * 2 : 64;
		v = realloc(st->dq, cap * sizeof(*v));
		if (!v) {
			st->dur_leftover = 1;
			pthread_mutex_unlock(&st->dq_lock);
			return 1;   /* no memory: keep the image, the sweep deletes it */
		}
		st->dq = v;
		st->dqcap = cap;
	}
	pthread_mutex_lock(&st->sync_wlock);
	st->dq[st->dqn++] = (struct dq_ent){ *d, st->rados ? srados_release_tag(st) : idx_last_written(st->idx),
					     st->sync_gen };
	pthread_mutex_unlock(&st->sync_wlock);
	if (!st->dur_lazy || st->rados)
		pthread_cond_signal(&st->dq_cond);
	pthread_mutex_unlock(&st->dq_lock);
	return 1;
}

/* Wake the reaper when something may have become due. */
static void reap_kick(struct store *st)
{
	pthread_mutex_lock(&st->dq_lock);
	if (st->dqn > st->dqhead)
		pthread_cond_signal(&st->dq_cond);
	pthread_mutex_unlock(&st->dq_lock);
}

void dur_after_commit(struct store *st)
{
	if (st->reap_running)
		reap_kick(st);
}

void store_reap_kick(struct store *st)
{
	if (st->reap_running)
		reap_kick(st);
}

static void *reaper(void *arg)
{
	struct store *st = arg;
	struct dq_ent *go = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&st->dq_lock);
	for (;;) {
		size_t n = due_prefix(st);

		if (n) {
			if (n > cap) {
				struct dq_ent *v = realloc(go, n * sizeof(*v));
				if (!v && !cap) {       /* one at a time, then */
					n = 1;
					v = realloc(go, sizeof(*v));
				}
				if (v) {
					go = v;
					cap = n;
				}
				if (n > cap)
					n = cap;
			}
			if (n) {
				memcpy(go, st->dq + st->dqhead, n * sizeof(*go));
				st->dqhead += n;
				if (st->dqhead == st->dqn)
					st->dqhead = st->dqn = 0;
				st->reap_busy = 1;
				st->reap_busy_n = n;
				pthread_mutex_unlock(&st->dq_lock);
				for (size_t i = 0; i < n; i++)
					store_delete_image(st, &go[i].d);
				pthread_mutex_lock(&st->dq_lock);
				st->reap_busy = 0;
				st->reap_busy_n = 0;
				pthread_cond_broadcast(&st->dq_done);
				continue;
			}
			/* no memory for even one entry: try again when woken */
		}
		pthread_cond_broadcast(&st->dq_done);
		if (st->reap_stopping)
			break;
		pthread_cond_wait(&st->dq_cond, &st->dq_lock);
	}
	pthread_mutex_unlock(&st->dq_lock);
	free(go);
	return NULL;
}

uint64_t dur_pending(struct store *st)
{
	uint64_t n;

	pthread_mutex_lock(&st->dq_lock);
	n = st->dqn - st->dqhead + (uint64_t)st->reap_busy_n;
	pthread_mutex_unlock(&st->dq_lock);
	return n;
}

void store_reap_wait(struct store *st)
{
	if (!st->reap_running)
		return;
	pthread_mutex_lock(&st->dq_lock);
	while (st->reap_busy || due_prefix(st)) {
		pthread_cond_signal(&st->dq_cond);
		pthread_cond_wait(&st->dq_done, &st->dq_lock);
	}
	pthread_mutex_unlock(&st->dq_lock);
}

int store_sync(struct store *st)
{
	uint64_t want, gen = 0;
	int rc = 0, covered;

	if (!st->dur_lazy)
		return 0;        /* -o sync or read-only: nothing waits for a flush */
	/* a flush that STARTED after this call covers every commit before it */
	pthread_mutex_lock(&st->sync_wlock);
	want = st->sync_gen + 1;
	pthread_mutex_unlock(&st->sync_wlock);
	pthread_mutex_lock(&st->sync_lock);
	pthread_mutex_lock(&st->sync_wlock);
	covered = done_gen(st) >= want;
	if (!covered)
		gen = ++st->sync_gen;    /* taken before the flush begins (1b) */
	pthread_mutex_unlock(&st->sync_wlock);
	if (!covered) {
		uint64_t written = idx_last_written(st->idx);
		rc = idx_sync(st->idx);
		if (rc) {
			log_err("index flush failed: %s (%s)", strerror(-rc), log_errname(rc));
			__atomic_add_fetch(&st->stats.sync_failures, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&st->stats.syncs, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&st->synced_written, written, __ATOMIC_RELAXED);
			__atomic_store_n(&st->sync_done_gen, gen, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&st->sync_lock);
	if (!rc && st->reap_running)
		reap_kick(st);
	return rc;
}

static void *syncer(void *arg)
{
	struct store *st = arg;
	struct timespec until;

	pthread_mutex_lock(&st->sync_wlock);
	while (!st->sync_stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(st->sync_ms % 1000) * 1000000;
		until.tv_sec += st->sync_ms / 1000 + until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		while (!st->sync_stopping &&
		       pthread_cond_timedwait(&st->sync_cond, &st->sync_wlock, &until) != ETIMEDOUT)
			;
		if (st->sync_stopping)
			break;
		pthread_mutex_unlock(&st->sync_wlock);
		/* invariant (4): only when a txn wrote something since */
		if (idx_last_written(st->idx) != __atomic_load_n(&st->synced_written, __ATOMIC_RELAXED))
			store_sync(st);
		pthread_mutex_lock(&st->sync_wlock);
	}
	pthread_mutex_unlock(&st->sync_wlock);
	return NULL;
}

int dur_start(struct store *st, int lazy)
{
	int rc;

	if (lazy && (rc = idx_set_metasync(st->idx, 0)))   /* MDB_NOMETASYNC */
		return rc;
	rc = -pthread_create(&st->reap_thread, NULL, reaper, st);
	if (rc)
		goto fail;
	st->reap_running = 1;
	if (!lazy)
		return 0;
	st->dur_lazy = 1;
	rc = -pthread_create(&st->sync_thread, NULL, syncer, st);
	if (!rc) {
		st->sync_running = 1;
		return 0;
	}
	st->dur_lazy = 0;
	dur_stop(st);
fail:
	if (lazy)
		idx_set_metasync(st->idx, 1);
	return rc;
}

void dur_stop(struct store *st)
{
	if (st->sync_running) {
		pthread_mutex_lock(&st->sync_wlock);
		st->sync_stopping = 1;
		pthread_cond_broadcast(&st->sync_cond);
		pthread_mutex_unlock(&st->sync_wlock);
		pthread_join(st->sync_thread, NULL);
		st->sync_running = 0;
	}
	if (st->dur_lazy && store_sync(st)) {
		log_warn("the final index flush failed: after a power loss the newest commit may be "
			 "undone; images still queued for deletion are left to the next mount's sweep");
		st->dur_leftover = 1;
	}
	if (st->reap_running) {     /* (5): it deletes what is due, then stops */
		pthread_mutex_lock(&st->dq_lock);
		st->reap_stopping = 1;
		pthread_cond_signal(&st->dq_cond);
		pthread_mutex_unlock(&st->dq_lock);
		pthread_join(st->reap_thread, NULL);
		st->reap_running = 0;
	}
	if (st->dqn > st->dqhead)
		st->dur_leftover = 1;
	st->dur_lazy = 0;
	free(st->dq);
	st->dq = NULL;
	st->dqn = st->dqhead = st->dqcap = 0;
}
