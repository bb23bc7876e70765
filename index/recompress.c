/* recompress — ingest at disk speed: writers store a fragment raw when the
 * encoders fall behind (a *staged* image, FRAG_F_STAGED, format 5), and a
 * background pass later swaps each staged image for a compressed one.
 *
 * Policy:
 *  (P1) A wjob stages raw when, as it starts, another encode job of the
 *       store is still in flight (submitted, not finished:
 *       st->enc_inflight > 1): a writer cut the next fragment before the
 *       encoders finished the previous one, so they are behind it, and
 *       compressing now would make it wait (a writer keeps up to 2 jobs
 *       per worker in flight: stage.c, commit.c). A lone small commit or
 *       a writer slower than the encoders (one job at a time) compresses
 *       at once. Measured on a 1 GB cp (docs/benchmarks.md): the rules
 *       "another job queued, not started" and "as many others in flight
 *       as workers" staged only a quarter to a half of the fragments and
 *       left the ingest 4-5x slower than staging all of them. PAYLOADFS_STAGE_RAW
 *       = behind: the daemon stages when behind (tools never do: no pass
 *       runs in them); = always stages every disk fragment; unset or 0
 *       never stages (the default for now: the lead decides; since (S7)
 *       readers following the object move across swaps). Never for
 *       storage=memory images, RADOS stores
 *       (out of scope: their log would carry format-5 records to hosts
 *       of older builds) or stores below format 5. The .stats figure
 *       frags_staged_raw counts them.
 *
 * The swap of one staged fragment (store_recompress_one), for the record
 * R = (ino, off) -> id A, staged, raw:
 *  (S1) Images are never rewritten in place: the compressed bytes go to a
 *       NEW fragment id B (allocated like any commit's, never reused), so
 *       a reader that holds R (a pinned version, pver.c (1)) keeps reading
 *       image A, which stays on disk until its last pin goes (store.c's
 *       zombies) and its release is durable (durable.c (1)): the same path
 *       as an image a commit dropped.
 *  (S2) B's bytes decode to A's bytes: B is encoded from A's bytes read
 *       through the cache, which verifies A's checksum, and R' keeps the
 *       raw length, rows, first row and checksum of R. A reader sees the
 *       same bytes whichever record it holds.
 *  (S3) B is durable (frag_sync) before the index txn that names it
 *       (format.md invariant 1).
 *  (S4) One small write txn, under commit_lock: it re-reads R and goes on
 *       only if R still names A staged and A's count is 1 (a copy or a
 *       snapshot shares A: left raw, counted recompress_skipped); then R
 *       -> B (lz4, flag cleared), refs A 1 -> 0 (deleting A's row index)
 *       and B 0 -> 1, A's row index moved to B (it is a function of the
 *       bytes: rowidx.c (1)), next_frag, and the inode's version bumped
 *       so that a commit whose base listed A reloads the list from the
 *       index instead of diffing against a stale one (commit.c run_txn).
 *       The object's cached version is replaced by the swapped one
 *       (S7) under commit_lock (pver.c (2)); pinned versions are
 *       untouched.
 *  (S5) Crash at any point leaves a readable store and nothing the mount
 *       sweep does not remove: before the txn commits, B is an image no
 *       `refs` record names (swept; R still names A, raw and readable);
 *       after it, A is such an image until its deferred delete ran (swept
 *       likewise). Fault points: "recompress_txn" (B written and synced,
 *       txn not begun) and "recompress_release" (txn committed, A not
 *       released); the errno points lz4, frag_write, frag_fsync and
 *       lmdb_commit fail a swap, which then discards B and leaves R as it
 *       was.
 *  (S6) Work is bounded: one fragment per txn, a pass handles at most MAX
 *       fragments, and the daemon's thread runs at the lowest priority
 *       and waits (up to 1 s) while encode jobs are in flight (writers
 *       come first). A pass scans the frags db, so it runs only at mount,
 *       when a commit with staged fragments kicks it, while the previous
 *       pass made progress and left work, and 30 s after a failed one:
 *       an idle daemon scans nothing.
 *  (S7) Streams (DESIGN §9, fs/ops.c (6), (6h)): the swap's version N
 *       has exactly the bytes of the version N - 1 it replaced (same
 *       size, same bytes at every offset: S2), so it keeps every byte of
 *       it, as an append does: it is marked extends (pver_extends), with
 *       ext_from = same_since = the first version of the run of
 *       byte-identical versions N - 1 ends (N - 1 itself unless N - 1 is
 *       a swap's version the version cache holds: store_same_since). The
 *       version is built in the txn (N - 1's cached list with R -> B, or
 *       the index's list), installed as the cached current version under
 *       commit_lock like a commit's (pver.c (2)), and announced after the
 *       commit lock is released, as a commit announces its version to
 *       fs/ops.c: the store's change callback gets STORE_CHANGE_SWAP with
 *       it (store_changed_swap), and ops.c moves the followers of
 *       [ext_from, N - 1] to N (follow_append). A commit whose base was
 *       overtaken only by swaps (base version >= same_since of the version
 *       it replaces) is still an append (commit.c (9)), so a writer held
 *       open across a swap keeps its readers following. Without a cached
 *       N - 1 (evicted, cold) the run is N - 1 alone: fewer moves, never a
 *       wrong one. Nothing changes for RADOS stores (they never stage).
 * The store ends up compressed once the pass ran over every staged
 * record: staged_pending in .stats says how many are left.
 */
#include "index/store_int.h"
#include "cache/codec.h"
#include "cache/bufpool.h"
#include "cache/fault.h"
#include "cache/fcache.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct recomp {
	pthread_t thread;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int stop, kicked;
};

void store_stage_raw_init(struct store *st, int daemon)
{
	const char *e = getenv("PAYLOADFS_STAGE_RAW");

	st->stage_raw = 0;
	if (st->rdonly || st->rados || st->conf.kind != STORE_LOCAL || st->format < 5)
		return;
	/* opt-in (P1): unset or 0 never stages; a swap moves followers
	 * (S7) */
	if (e && strcmp(e, "always") == 0)
		st->stage_raw = 2;
	else if (e && strcmp(e, "behind") == 0)
		st->stage_raw = daemon ? 1 : 0;
	else
		st->stage_raw = 0;
}

int store_stage_raw_now(struct store *st, const struct frag_desc *d, unsigned behind)
{
	int raw;

	if (d->flags & FRAG_F_MEMORY)
		return 0;
	raw = st->stage_raw == 2 || (st->stage_raw == 1 && behind >= 1);
	if (raw) {
		__atomic_add_fetch(&st->stats.frags_staged_raw, 1, __ATOMIC_RELAXED);
		store_recompress_kick(st);
	}
	return raw;
}

/* Write the compressed image of staged D (its bytes read through the
 * cache: verified) under new id *NEWID. @return 0, 1 when lz4 does not
 * shrink it (nothing written), 2 when D's image cannot be read (released
 * meanwhile, or damaged: the reader's and fsck's business), -errno. */
static int write_compressed(struct store *st, const struct frag_desc *d, uint64_t *newid,
			    struct frag_info *info)
{
	struct frag_ref ref = { d->id, d->len, d->stored_len, d->checksum, st->disk };
	struct fbuf *b = NULL;
	size_t cap = frag_encode_bound(d->len), n = 0;
	char *enc;
	int rc = fcache_fetch(st->cache, &ref, 1, &b);

	if (rc)
		return rc == -ENOENT || rc == -EIO ? 2 : rc;
	enc = bp_get(cap, &cap);
	if (!enc) {
		fbuf_put(b);
		return -ENOMEM;
	}
	*newid = store_alloc_frag_id(st);
	rc = frag_encode_mode(*newid, b->data, b->len, d->rows, enc, cap, &n, info, 1);
	fbuf_put(b);
	if (!rc && info->codec != FRAG_CODEC_LZ4)
		rc = 1;
	if (!rc)
		rc = frag_put(st->disk, *newid, enc, n);
	bp_put(enc, cap);
	if (!rc)
		rc = frag_sync(st->disk, newid, 1);          /* (S3) */
	if (rc < 0)
		store_discard_image(st, st->disk, *newid);
	return rc;
}

/* (S7) The version the swap makes: PREV's list (the cached current
 * version when it is version IN->version - 1, else the index's, read in
 * T after R was put) with ND at ND->off; same bytes as PREV, so marked
 * extends of the whole run of byte-identical versions PREV ends. @return
 * a version (one reference) or NULL (no memory: nobody follows). */
static struct pver *swapped_pver(struct store *st, struct idx_txn *t, const struct idx_inode *in,
				 const struct frag_desc *nd)
{
	struct pver *prev = store_pver_cached(st, in->ino), *pv = calloc(1, sizeof(*pv));
	uint64_t pver_no = in->version - 1;
	uint32_t at = 0;
	int rc = pv ? 0 : -ENOMEM;

	if (prev && (prev->in.version != pver_no || !prev->nfrags)) {
		pver_put(prev);
		prev = NULL;
	}
	if (!rc && prev) {
		if (!(pv->frags = malloc(prev->nfrags * sizeof(*pv->frags))))
			rc = -ENOMEM;
		else
			memcpy(pv->frags, prev->frags, prev->nfrags * sizeof(*pv->frags));
		pv->nfrags = prev->nfrags;
		while (!rc && at < pv->nfrags && pv->frags[at].off != nd->off)
			at++;
		if (!rc && at < pv->nfrags)
			pv->frags[at] = *nd;
		else if (!rc)
			rc = -EIO;                        /* not the list R is in */
	} else if (!rc) {
		rc = idx_frags_load(t, in->ino, &pv->frags, &pv->nfrags);
	}
	if (!rc) {
		pv->st = st;
		pv->refs = 1;
		pv->in = *in;
		rc = store_pin_list(st, pv, prev, prev ? at : 0);
	}
	if (rc) {
		if (pv)
			free(pv->frags);
		free(pv);
		pver_put(prev);
		return NULL;
	}
	pv->same_since = store_same_since(st, prev, in->ino, pver_no);
	pv->extends = 1;
	pv->ext_from = pv->same_since;
	pver_put(prev);
	return pv;
}

/* (S4): swap R = (INO, D->off) from D->id to NEWID; NEWID 0 (lz4 does
 * not shrink A) only clears R's flag: A is final as it is. @return 1
 * swapped, 0 not (R moved on, or A is shared), -errno. */
static int swap_txn(struct store *st, uint64_t ino, const struct frag_desc *d, uint64_t newid,
		    const struct frag_info *info)
{
	struct idx_txn *t;
	struct frag_desc cur, nd;
	struct idx_inode in;
	struct pver *pv = NULL;
	uint32_t count = 0, now;
	const void *ri;
	size_t rilen;
	unsigned char *copy = NULL;
	int rc = store_wbegin(st, &t), swapped = 0;

	if (rc)
		return rc;
	rc = idx_frag_at(t, ino, d->off, &cur);
	if (!rc && (cur.id != d->id || cur.off != d->off || !(cur.flags & FRAG_F_STAGED)))
		rc = 1;                          /* R moved on: a commit replaced it */
	if (!rc)
		rc = idx_ref_get(t, d->id, &count);
	if (!rc && count != 1) {
		__atomic_add_fetch(&st->stats.recompress_skipped, 1, __ATOMIC_RELAXED);
		rc = 1;
	}
	if (!rc && !newid) {
		nd = cur;
		nd.flags &= (uint16_t)~FRAG_F_STAGED;
		rc = store_wend(st, t, idx_frag_put(t, ino, &nd));
		return rc ? rc : 1;
	}
	if (!rc)
		rc = idx_inode_get(t, ino, &in);
	if (!rc && (rc = idx_rowidx_get(t, d->id, &ri, &rilen)) == 0) {
		copy = malloc(rilen);                 /* the value dies with the del below */
		rc = copy ? 0 : -ENOMEM;
		if (copy)
			memcpy(copy, ri, rilen);
	} else if (rc == -ENOENT) {
		rc = 0;
	}
	if (!rc) {
		nd = cur;
		nd.id = newid;
		nd.codec = info->codec;
		nd.stored_len = info->stored_len;
		nd.flags &= (uint16_t)~FRAG_F_STAGED;
		rc = idx_frag_put(t, ino, &nd);
	}
	if (!rc)
		rc = idx_ref_add(t, d->id, -1, &now);     /* to 0: deletes A's row index */
	if (!rc)
		rc = idx_ref_add(t, newid, 1, &now);
	if (!rc && copy)
		rc = idx_rowidx_put(t, newid, copy, rilen);
	if (!rc) {
		in.version++;                             /* (S4): stale bases reload */
		rc = idx_inode_put(t, &in);
	}
	if (!rc)
		pv = swapped_pver(st, t, &in, &nd);       /* (S7) */
	if (!rc)
		rc = idx_meta_put_u64(t, "next_frag", __atomic_load_n(&st->next_frag, __ATOMIC_RELAXED));
	free(copy);
	if (rc == 1) {
		store_wabort(st, t);
		store_wunlock(st);
		return 0;
	}
	if (!rc)
		rc = store_wcommit(st, t);
	else
		store_wabort(st, t);
	if (!rc) {
		if (pv)                                  /* under commit_lock: pver.c (2) */
			store_pvcur_set(st, pv);
		else
			store_pvcur_drop(st, ino);
		swapped = 1;
	}
	store_wunlock(st);
	if (rc) {
		pver_put(pv);
		return rc;
	}
	dur_after_commit(st);
	if (pv)                                      /* (S7): followers move */
		store_changed_swap(st, ino, pv);
	pver_put(pv);
	return swapped;
}

/* 1 when A's count is 1 (else counted skipped): a shared image is left
 * raw before anything is written for it. swap_txn checks again. */
static int shared_ok(struct store *st, const struct frag_desc *d)
{
	struct idx_txn *t;
	uint32_t count = 0;

	if (idx_begin(st->idx, 1, &t))
		return 1;                       /* swap_txn decides */
	(void)idx_ref_get(t, d->id, &count);
	idx_abort(t);
	if (count > 1)
		__atomic_add_fetch(&st->stats.recompress_skipped, 1, __ATOMIC_RELAXED);
	return count <= 1;
}

int store_recompress_one(struct store *st, uint64_t ino, const struct frag_desc *d)
{
	struct frag_info info;
	uint64_t newid = 0;
	int rc;

	if (st->rdonly)
		return -EROFS;
	if (!(d->flags & FRAG_F_STAGED) || (d->flags & FRAG_F_MEMORY))
		return 0;
	if (!shared_ok(st, d))                   /* (S4), before any work */
		return 0;
	rc = store_pin_frags(st, d, 1);          /* (S1): A outlives our read */
	if (rc)
		return rc;
	rc = write_compressed(st, d, &newid, &info);
	if (rc == 1) {                           /* incompressible: final as it is */
		rc = swap_txn(st, ino, d, 0, &info);
		goto out;
	}
	if (rc == 2) {
		rc = 0;                                  /* released meanwhile, or damaged: not ours */
		goto out;
	}
	if (rc)
		goto out;
	FAULT_CRASH("recompress_txn");           /* (S5) */
	rc = swap_txn(st, ino, d, newid, &info);
	if (rc <= 0) {
		store_discard_image(st, st->disk, newid);
		goto out;
	}
	__atomic_add_fetch(&st->stats.frags_recompressed, 1, __ATOMIC_RELAXED);
	FAULT_CRASH("recompress_release");       /* (S5) */
	store_release_frag(st, d);               /* pinned by us: deleted at our unpin */
out:
	store_unpin_frags(st, d, 1);
	return rc;
}

struct scan {
	struct { uint64_t ino; struct frag_desc d; } *v;
	size_t n, max;
	uint64_t total;
};

static int scan_cb(void *arg, uint64_t ino, const struct frag_desc *d)
{
	struct scan *s = arg;

	if (!(d->flags & FRAG_F_STAGED))
		return 0;
	s->total++;
	if (s->n < s->max) {
		s->v[s->n].ino = ino;
		s->v[s->n].d = *d;
		s->n++;
	}
	return 0;
}

int store_recompress_pass(struct store *st, size_t max, uint64_t *left)
{
	struct scan s = { .max = max ? max : 1 };
	struct idx_txn *t;
	uint64_t done = 0;
	int rc, swapped = 0;

	if (left)
		*left = 0;
	if (st->rdonly)
		return -EROFS;
	if (!(s.v = calloc(s.max, sizeof(*s.v))))
		return -ENOMEM;
	rc = idx_begin(st->idx, 1, &t);
	if (!rc) {
		rc = idx_frags_iter_all(t, scan_cb, &s);
		idx_abort(t);
	}
	__atomic_store_n(&st->stats.staged_pending, s.total, __ATOMIC_RELAXED);
	for (size_t i = 0; !rc && i < s.n; i++) {
		if (st->recomp && __atomic_load_n(&st->recomp->stop, __ATOMIC_RELAXED))
			break;
		rc = store_recompress_one(st, s.v[i].ino, &s.v[i].d);
		if (rc > 0) {
			swapped++;
			done++;
			__atomic_sub_fetch(&st->stats.staged_pending, 1, __ATOMIC_RELAXED);
		}
		if (rc >= 0)
			rc = 0;
	}
	free(s.v);
	if (left)
		*left = s.total - done;
	return rc ? rc : swapped;
}

void store_recompress_kick(struct store *st)
{
	struct recomp *r = st->recomp;

	if (!r || __atomic_load_n(&r->kicked, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&r->m);
	r->kicked = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->m);
}

#define RECOMP_BATCH 64          /* fragments per pass (S6) */
#define RECOMP_RETRY_MS 30000    /* a failed pass is tried again this much later */
#define RECOMP_BUSY_MS 20        /* wait while writers' encode jobs are queued */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *recomp_main(void *arg)
{
	struct store *st = arg;
	struct recomp *r = st->recomp;
	uint64_t left = 0;
	int again = 1;           /* the first pass counts what an earlier mount left */
	int failed = 0;

	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);   /* (S6) */
	for (;;) {
		pthread_mutex_lock(&r->m);
		/* a pass scans the whole frags db: only when kicked (a commit
		 * with staged fragments), at mount, or to retry a failure */
		if (!again && !r->kicked && !r->stop && failed) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += RECOMP_RETRY_MS / 1000;
			pthread_cond_timedwait(&r->cv, &r->m, &ts);
		} else if (!again && !r->kicked && !r->stop) {
			pthread_cond_wait(&r->cv, &r->m);
		}
		r->kicked = 0;
		if (r->stop) {
			pthread_mutex_unlock(&r->m);
			break;
		}
		pthread_mutex_unlock(&r->m);
		/* writers first: wait while their encode jobs are queued */
		for (int i = 0; i < 50 && __atomic_load_n(&st->enc_inflight, __ATOMIC_RELAXED) &&
				!__atomic_load_n(&r->stop, __ATOMIC_RELAXED); i++)
			sleep_ms(RECOMP_BUSY_MS);
		/* go on at once while a pass made progress and left work;
		 * otherwise (only shared or failing ones left) wait */
		int rc = store_recompress_pass(st, RECOMP_BATCH, &left);

		again = rc > 0 && left > 0;
		failed = rc < 0;
	}
	return NULL;
}

int recomp_start(struct store *st)
{
	struct recomp *r;
	int rc;

	if (st->stage_raw == 0 && st->format < 5)
		return 0;
	if (st->rdonly || st->rados || st->conf.kind != STORE_LOCAL)
		return 0;
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	pthread_mutex_init(&r->m, NULL);
	pthread_cond_init(&r->cv, NULL);
	st->recomp = r;
	rc = -pthread_create(&r->thread, NULL, recomp_main, st);
	if (rc) {
		st->recomp = NULL;
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->m);
		free(r);
	}
	return rc;
}

void recomp_stop(struct store *st)
{
	struct recomp *r = st->recomp;

	if (!r)
		return;
	pthread_mutex_lock(&r->m);
	r->stop = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->m);
	pthread_join(r->thread, NULL);
	st->recomp = NULL;
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->m);
	free(r);
}
