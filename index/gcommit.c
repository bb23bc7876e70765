/* gcommit — the commit lock ("commit_lock") and group commit.
 *
 * commit_lock serializes commits and namespace changes (store_wbegin ..
 * store_wend), a RADOS store's version loads (pver.c (7): a local store's
 * take it no more), deletes (store_wbegin_freeing), a follower's applier
 * and base loads. It is a gate, not a mutex, because a commit holds it
 * across its flush: on a local store LMDB's fdatasync of the index, on a
 * RADOS writer (an index with a commit hook, idx_lmdb.c (7)) also one log
 * append, a cluster round trip. Group commit lets concurrent committers
 * share that flush (and append).
 *
 * Two ways to hold the gate:
 *  - exclusively (store_xlock/store_xunlock; store_wbegin on a store that
 *    is not grouped — a follower, or PAYLOADFS_GROUP_COMMIT=0 — and
 *    store_wbegin_freeing): as a mutex did;
 *  - as a member of a commit round (store_wbegin on a grouped store: every
 *    writable store, local or a RADOS writer, by default).
 *
 * A round = one top-level LMDB write txn (the parent): one commit, so one
 * flush of the index (+ one log append on a RADOS writer). Below, "the
 * log append" reads "the LMDB commit" on a local store (G2, G4, G5).
 *
 * Invariants:
 *  (G1) The gate is held by at most one party: an exclusive holder, or
 *       one round (g->active), from the round's start until its last member
 *       released it (store_wunlock). So everything that was "under
 *       commit_lock" before group commit still excludes every commit.
 *  (G2) The member who starts a round (the leader, whose thread began the
 *       parent, idx.h) is the only one who ends the parent: it commits it
 *       (idx_commit: the hook appends the round's one entry, then LMDB
 *       commits: protocol B, idx_lmdb.c (7)), or aborts it when its own
 *       operation failed (G3); both on its thread, as LMDB requires.
 *       Nothing of a round reaches the local index before the log has all
 *       of it, and nothing of a failed round reaches either.
 *  (G3) Members run their operations one at a time (g->child), in the
 *       order they get the slot; each sees the operations merged before
 *       it, exactly as if the earlier members had committed first. The
 *       leader, always first (it takes the slot as it opens the round),
 *       works in the parent itself (a child txn costs LMDB two large
 *       allocations: a round of one commit needs none); every later member
 *       works in a child txn of the parent (idx_lmdb.c (9)). A child that
 *       fails is dropped with the ops it captured: the round and the other
 *       members go on. When the leader's own operation fails, the parent
 *       holds nothing else: it is aborted, the round ends at once, and the
 *       members queued for the slot (none has begun) start over.
 *  (G4) A merged member's commit (store_wcommit) returns the round's
 *       outcome: 0 only when the parent committed (its change is in the log
 *       and in the local index); on failure every merged member gets the
 *       same error and nothing of theirs changed (their old versions stay).
 *       So callers keep their shape: after store_wcommit() == 0 the change
 *       is as durable as a commit of its own.
 *  (G5) The leader closes the round (state CLOSING: no one joins after)
 *       only when no child is open, no member waits for the child slot,
 *       and no committer waits to join — or the round has GC_MAX_MEMBERS
 *       members, or its entry GC_MAX_BYTES bytes. While a round is CLOSING
 *       (its append in flight), new committers wait (g->waiting) and form
 *       the next round together when this one is over: that is where the
 *       batching comes from.
 *  (G6) Post-commit sections (after store_wcommit returned, before
 *       store_wunlock: store_pvcur_set in commit.c, ...) of a round's
 *       merged members run one at a time in the order of their children
 *       (g->turn), after the round's outcome and before anything else holds
 *       the gate (G1): the current version of an object committed twice in
 *       one round ends as the second commit's, as with one lock per commit.
 *  (G7) No starvation between the two kinds: when a round ends, every
 *       exclusive locker waiting then goes (one at a time) before the next
 *       round starts (excl_quota: they are short, a read and pins, and a
 *       file's open waits for one); then, while committers wait, the next
 *       round goes before any later exclusive locker.
 * A thread holds the gate at most once (it is not recursive, like the
 * mutex it replaced); a member's role lives in thread-local state from
 * store_wbegin to store_wunlock, which the same thread calls.
 *
 * Lock order: the gate, then an LMDB write txn, then st->lock; g->m is a
 * leaf held only to change the gate's state (never across I/O but an
 * aborted parent's idx_abort, which does none).
 */
#include "index/store_int.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GC_MAX_MEMBERS 64
#define GC_MAX_BYTES   ((size_t)8 << 20)

enum { R_STARTING = 1, R_OPEN, R_CLOSING, R_DONE };

/* This thread's part in a round (store_wbegin .. store_wunlock). */
static __thread struct {
	int in;          /* a member of the current round */
	int leader;      /* works in the parent itself (G3) */
	int merged;      /* its change is in the parent */
	uint64_t seq;    /* merged: its turn (G6) */
} me;

int gcommit_wanted(void)
{
	const char *e = getenv("PAYLOADFS_GROUP_COMMIT");

	return !e || strcmp(e, "0") != 0;
}

void gate_init(struct cgate *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->m, NULL);
	pthread_cond_init(&g->c, NULL);
}

void gate_destroy(struct cgate *g)
{
	pthread_mutex_destroy(&g->m);
	pthread_cond_destroy(&g->c);
}

void store_xlock(struct store *st)
{
	struct cgate *g = &st->commit_lock;

	pthread_mutex_lock(&g->m);
	g->excl_wait++;
	while (g->active || g->excl || (g->waiting && !g->excl_quota))
		pthread_cond_wait(&g->c, &g->m);
	g->excl_wait--;
	if (g->excl_quota)
		g->excl_quota--;
	g->excl = 1;
	pthread_mutex_unlock(&g->m);
}

void store_xunlock(struct store *st)
{
	struct cgate *g = &st->commit_lock;

	pthread_mutex_lock(&g->m);
	g->excl = 0;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

/* With g->m: the round is over once its outcome is out and every member
 * released the gate (G1). */
static void round_maybe_end(struct cgate *g)
{
	if (g->active && g->state == R_DONE && g->members == 0) {
		g->active = 0;
		g->state = 0;
		g->excl_quota = g->excl_wait;   /* (G7) */
		pthread_cond_broadcast(&g->c);
	}
}

/* With g->m: may the leader close the round now? (G5) */
static int close_ok(const struct cgate *g)
{
	if (g->child || g->queued)
		return 0;
	return !g->waiting || g->joined >= GC_MAX_MEMBERS || g->bytes >= GC_MAX_BYTES;
}

/* With g->m, by the leader (G2): wait until the round may close, close it
 * (commit the parent when a child merged, else abort it) and publish the
 * outcome. */
static void round_close(struct store *st, struct cgate *g)
{
	int rc;

	while (!close_ok(g))
		pthread_cond_wait(&g->c, &g->m);
	g->state = R_CLOSING;
	if (g->merged) {
		pthread_mutex_unlock(&g->m);
		rc = idx_commit(g->parent);
		pthread_mutex_lock(&g->m);
		if (rc == 0) {
			__atomic_add_fetch(&st->stats.log_rounds, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&st->stats.log_round_members, g->merged, __ATOMIC_RELAXED);
		}
	} else {
		idx_abort(g->parent);
		rc = 0;
	}
	g->parent = NULL;
	g->rc = rc;
	g->state = R_DONE;
	pthread_cond_broadcast(&g->c);
}

/* A member is done with its child (MERGED or not): the leader closes the
 * round; a merged member waits for the outcome and its turn. @return the
 * round's outcome for a merged member, else 0. */
static int child_done(struct store *st, int merged)
{
	struct cgate *g = &st->commit_lock;
	int rc = 0;

	pthread_mutex_lock(&g->m);
	g->child = 0;
	me.merged = merged;
	if (me.leader && !merged) {
		/* (G3): the parent holds only the leader's failed operation
		 * (its aborted txn, through store_wabort) */
		g->parent = NULL;
		g->rc = 0;
		g->state = R_DONE;
		pthread_cond_broadcast(&g->c);
		pthread_mutex_unlock(&g->m);
		return 0;
	}
	g->bytes = idx_txn_log_bytes(g->parent);   /* no child open: it stands still */
	if (merged)
		me.seq = g->merged++;
	pthread_cond_broadcast(&g->c);
	if (me.leader)
		round_close(st, g);
	if (merged) {
		while (g->state != R_DONE || g->turn != me.seq)
			pthread_cond_wait(&g->c, &g->m);
		rc = g->rc;
	}
	pthread_mutex_unlock(&g->m);
	return rc;
}

/* Join the open round, or start one (G1, G5); then wait for the child
 * slot (G3). @return 0 (a member), or -errno (the round could not start:
 * nothing held). */
static int round_join(struct store *st)
{
	struct cgate *g = &st->commit_lock;
	int rc;

	pthread_mutex_lock(&g->m);
again:
	g->waiting++;
	for (;;) {
		if (g->active && g->state == R_OPEN && g->joined < GC_MAX_MEMBERS &&
		    g->bytes < GC_MAX_BYTES) {
			me.leader = 0;
			break;
		}
		if (!g->active && !g->excl && !(g->excl_wait && g->excl_quota)) {
			g->active = 1;
			g->state = R_STARTING;
			pthread_mutex_unlock(&g->m);
			rc = idx_begin(st->idx, 0, &g->parent);   /* idx_lmdb.c (5): may grow the map */
			pthread_mutex_lock(&g->m);
			if (rc) {
				g->parent = NULL;
				g->active = 0;
				g->state = 0;
				g->waiting--;
				pthread_cond_broadcast(&g->c);
				pthread_mutex_unlock(&g->m);
				return rc;
			}
			g->state = R_OPEN;
			g->joined = g->members = g->queued = g->merged = 0;
			g->child = 0;
			g->bytes = 0;
			g->turn = 0;
			g->rc = 0;
			me.leader = 1;
			pthread_cond_broadcast(&g->c);
			break;
		}
		pthread_cond_wait(&g->c, &g->m);
	}
	g->waiting--;
	g->joined++;
	g->members++;
	g->queued++;
	me.in = 1;
	me.merged = 0;
	while (g->child && g->state == R_OPEN)
		pthread_cond_wait(&g->c, &g->m);
	g->queued--;
	if (g->state != R_OPEN) {       /* the leader's operation failed (G3) */
		g->members--;
		me.in = 0;
		round_maybe_end(g);
		goto again;
	}
	g->child = 1;
	pthread_mutex_unlock(&g->m);
	return 0;
}

int store_wbegin(struct store *st, struct idx_txn **t)
{
	int rc;

	*t = NULL;
	if (st->rdonly)
		return -EROFS;
	if (!st->grouped) {
		store_xlock(st);
		rc = store_reserve_check(st);   /* reserve.c invariant (2) */
		if (!rc)
			rc = idx_begin(st->idx, 0, t);
		if (rc)
			store_xunlock(st);
		return rc;
	}
	rc = round_join(st);
	if (rc)
		return rc;
	rc = store_reserve_check(st);
	if (!rc && me.leader)
		*t = st->commit_lock.parent;   /* (G3) */
	else if (!rc)
		rc = idx_child_begin(st->commit_lock.parent, t);
	if (!rc && (rc = FAULT("commit_member")) != 0)
		store_wabort(st, *t);           /* drops the child, or the leader's parent */
	else if (rc && me.leader)
		store_wabort(st, st->commit_lock.parent);
	else if (rc)
		child_done(st, 0);
	if (rc) {
		*t = NULL;
		store_wunlock(st);
	}
	return rc;
}

int store_wcommit(struct store *st, struct idx_txn *t)
{
	int rc;

	if (!me.in)
		return idx_commit(t);
	if (me.leader)                  /* it works in the parent (G3) */
		return child_done(st, 1);
	rc = idx_commit(t);             /* merge the child (G3) */
	if (rc) {
		child_done(st, 0);
		return rc;
	}
	return child_done(st, 1);       /* (G4) */
}

void store_wabort(struct store *st, struct idx_txn *t)
{
	idx_abort(t);                   /* the leader's: the parent (G3) */
	if (me.in)
		child_done(st, 0);
}

void store_wunlock(struct store *st)
{
	struct cgate *g = &st->commit_lock;

	if (!me.in) {
		store_xunlock(st);
		return;
	}
	pthread_mutex_lock(&g->m);
	if (me.merged)
		g->turn++;                  /* (G6) */
	g->members--;
	me.in = 0;
	pthread_cond_broadcast(&g->c);
	round_maybe_end(g);
	pthread_mutex_unlock(&g->m);
}

int store_wend(struct store *st, struct idx_txn *t, int rc)
{
	if (rc == 0)
		rc = store_wcommit(st, t);
	else
		store_wabort(st, t);
	store_wunlock(st);
	if (rc == 0)
		dur_after_commit(st);
	return rc;
}

unsigned store_commit_waiting(struct store *st)
{
	struct cgate *g = &st->commit_lock;
	unsigned n;

	pthread_mutex_lock(&g->m);
	n = g->waiting + g->queued;
	pthread_mutex_unlock(&g->m);
	return n;
}
