/* durable — when commits reach the disk, and deletion of released images.
 *
 * The index (LMDB) is committed with MDB_NOMETASYNC by default: a commit
 * writes its pages, flushes them (one fdatasync), then writes its meta
 * page without a flush; that meta page reaches the disk with the next
 * flush (the next commit's, or the syncer's). After a power loss or a
 * kernel crash LMDB opens at the newest meta page on disk: the newest
 * commit may be undone, the store is never torn (LMDB's guarantee for
 * this mode). A crash of the daemon alone loses nothing: the kernel holds
 * every page written. With store_opts.sync (-o sync) LMDB flushes the meta
 * page too: every commit is durable when it returns.
 *
 * Fragment images are made durable before the transaction that references
 * them (commit.c invariant 3), in one batch per commit.
 *
 * Invariants:
 *  (1) An image whose last reference went in txn T is deleted only after
 *      T's meta page is durable: after a later commit (whose flush wrote
 *      it) or a later store_sync. Until then the durable state may still
 *      be the one before T, which references the image. So with dur_on a
 *      released image waits on dq, tagged with the index's commit count
 *      and the sync count at release, and goes once either has moved on
 *      (dur_after_commit, store_sync).
 *  (2) The syncer thread flushes the index every sync_ms when commits
 *      happened since the last flush, so the newest commit is durable
 *      within that time even if no other commit follows, and the queue
 *      never waits longer.
 * Lock order: sync_lock, then commit_lock (none taken inside it here),
 * then dq_lock; sync_wlock is a leaf.
 */
#include "index/store_int.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dq_ent {
	struct frag_desc d;
	uint64_t commits, syncs;   /* counts at release (invariant 1) */
};

int dur_defer_delete(struct store *st, const struct frag_desc *d)
{
	struct dq_ent *v;

	if (!st->dur_on || (d->flags & FRAG_F_MEMORY))
		return 0;           /* delete now */
	pthread_mutex_lock(&st->dq_lock);
	if (st->dqn == st->dqcap) {
		size_t cap = st->dqcap ? st->dqcap * 2 : 64;
		v = realloc(st->dq, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&st->dq_lock);
			return 1;   /* no memory: keep the image, the sweep deletes it */
		}
		st->dq = v;
		st->dqcap = cap;
	}
	st->dq[st->dqn++] = (struct dq_ent){ *d, idx_commits(st->idx),
					     __atomic_load_n(&st->syncs, __ATOMIC_ACQUIRE) };
	pthread_mutex_unlock(&st->dq_lock);
	return 1;
}

/* Delete the queued images whose release is now durable (invariant 1). */
static void dq_run(struct store *st)
{
	uint64_t commits = idx_commits(st->idx), syncs = __atomic_load_n(&st->syncs, __ATOMIC_ACQUIRE);
	struct dq_ent *go = NULL;
	size_t n = 0, keep = 0;

	pthread_mutex_lock(&st->dq_lock);
	if (st->dqn && (go = malloc(st->dqn * sizeof(*go)))) {
		for (size_t i = 0; i < st->dqn; i++) {
			if (st->dq[i].commits < commits || st->dq[i].syncs < syncs)
				go[n++] = st->dq[i];
			else
				st->dq[keep++] = st->dq[i];
		}
		st->dqn = keep;
	}
	pthread_mutex_unlock(&st->dq_lock);
	for (size_t i = 0; i < n; i++)
		store_delete_image(st, &go[i].d);
	free(go);
}

void dur_after_commit(struct store *st)
{
	size_t n;

	if (!st->dur_on)
		return;
	pthread_mutex_lock(&st->dq_lock);
	n = st->dqn;
	pthread_mutex_unlock(&st->dq_lock);
	if (n)
		dq_run(st);
}

int store_sync(struct store *st)
{
	uint64_t want, gen = 0;
	int rc = 0, covered;

	if (!st->dur_on)
		return 0;        /* -o sync or read-only: nothing waits for a flush */
	/* a flush that STARTED after this call covers every commit before it */
	pthread_mutex_lock(&st->sync_wlock);
	want = st->sync_gen + 1;
	pthread_mutex_unlock(&st->sync_wlock);
	pthread_mutex_lock(&st->sync_lock);
	pthread_mutex_lock(&st->sync_wlock);
	covered = st->sync_done_gen >= want;
	if (!covered)
		gen = ++st->sync_gen;
	pthread_mutex_unlock(&st->sync_wlock);
	if (!covered) {
		uint64_t commits = idx_commits(st->idx);
		rc = idx_sync(st->idx);
		if (rc) {
			log_err("index flush failed: %s", strerror(-rc));
			__atomic_add_fetch(&st->stats.sync_failures, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&st->syncs, 1, __ATOMIC_RELEASE);
			__atomic_add_fetch(&st->stats.syncs, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&st->synced_commits, commits, __ATOMIC_RELAXED);
			pthread_mutex_lock(&st->sync_wlock);
			st->sync_done_gen = gen;
			pthread_mutex_unlock(&st->sync_wlock);
		}
	}
	pthread_mutex_unlock(&st->sync_lock);
	if (!rc)
		dq_run(st);
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
		/* invariant (2): only when something was committed since */
		if (idx_commits(st->idx) != __atomic_load_n(&st->synced_commits, __ATOMIC_RELAXED))
			store_sync(st);
		pthread_mutex_lock(&st->sync_wlock);
	}
	pthread_mutex_unlock(&st->sync_wlock);
	return NULL;
}

int dur_start(struct store *st)
{
	int rc = idx_set_metasync(st->idx, 0);   /* MDB_NOMETASYNC */

	if (rc)
		return rc;
	st->dur_on = 1;
	rc = -pthread_create(&st->sync_thread, NULL, syncer, st);
	if (rc) {
		st->dur_on = 0;
		idx_set_metasync(st->idx, 1);
		return rc;
	}
	st->sync_running = 1;
	return 0;
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
	if (st->dur_on && store_sync(st))
		log_warn("the final index flush failed: after a power loss the newest commit may be "
			 "undone; images still queued for deletion are left to the next mount's sweep");
	st->dur_on = 0;
	free(st->dq);
	st->dq = NULL;
	st->dqn = st->dqcap = 0;
}
