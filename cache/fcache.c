/* fcache — the cache of decompressed fragments and the batched read path;
 * see fcache.h for the contract.
 *
 * Layout: NSHARDS shards picked by a hash of the id, each a mutex, a
 * condition variable (a load finished), a chained hash table and an LRU
 * list of the unpinned entries. The byte budget is global (atomic
 * counter); eviction takes the shard tail with the oldest release tick,
 * which approximates one global LRU.
 *
 * Entry states: LOADING (in the table, pinned by its loader, bytes not yet
 * valid), READY (verified bytes), FAILED (its load failed; out of the
 * table, freed at its last unpin).
 *
 * Invariants:
 *  (1) An entry belongs to the shard of its id for life. It is in that
 *      shard's table unless dropped, evicted or failed, and it is on the
 *      shard's LRU list exactly when it is in the table, READY and its
 *      refcount is 0.
 *  (2) Refcount changes 0->1 and 1->0 happen under the shard lock; other
 *      changes are atomic without it. A refcount below zero aborts.
 *  (3) An entry is freed exactly once: when it leaves the table with
 *      refcount 0 (eviction, drop), or when its last pin goes after it
 *      left the table (dropped while pinned, failed).
 *  (4) c->bytes / c->entries count every live entry (in a table, or out of
 *      it and still pinned), LOADING ones included.
 *  (5) Along a shard's LRU list from head to tail the ticks decrease.
 *  (6) A LOADING entry always holds its loader's pin, so it is never on
 *      an LRU list and never evicted. Its state changes only under the
 *      shard lock, followed by a broadcast of the shard's condition.
 *      Only verified bytes are ever READY; bytes never change once READY.
 *  (6a) Bytes that do not verify are reported to their backend
 *      (frag_invalidate), so a backend's local copy of another's image
 *      (backend_cached) is dropped and never served again; when the bytes
 *      came from such a copy the image is read once more (from the
 *      source), in the same load. Damage is logged with where the image
 *      lives (frag_where).
 *  (7) In-flight accounting (fcache.h (5)): a load adds its image and
 *      decode bytes to inflight_fg or inflight_bg before any I/O and
 *      removes them when the load finished.
 *  (8) A batch of several images with a pool is decoded as it arrives:
 *      the backend's get_many_cb tells each finished image and its decode
 *      goes to the pool at once (both cores decode while the disk still
 *      reads the rest), and an image that verified is READY as soon as
 *      its decode ended (a waiter need not wait for the whole batch).
 *      Every image read is decoded exactly once, a
 *      failed or damaged one only fails its own entry, and the image
 *      buffers go back to the buffer pool only after every decode of the
 *      batch ran (pool_group_wait).
 * Lock order: at most one shard lock is held at a time; c->ilock (the
 * in-flight budget) is never held together with a shard lock; no lock is
 * held while calling a backend, decoding, or freeing an entry.
 */
#include "cache/fcache.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/backend.h"
#include "cache/bufpool.h"
#include "cache/codec.h"
#include "cache/fault.h"
#include "cache/log.h"
#include "cache/pool.h"

#define NSHARDS          16
#define INITIAL_BUCKETS  64
#define DEFAULT_BUDGET   ((size_t)256 << 20)

enum { E_READY = 0, E_LOADING = 1, E_FAILED = 2 };

struct shard;

struct entry {
	struct fbuf buf;            /* first: the caller's view; buf.refs atomic */
	struct shard *shard;        /* immutable */
	uint64_t checksum;          /* xxh64 of the bytes; set before READY */
	struct entry *hnext;        /* protected by shard->lock */
	struct entry *prev, *next;  /* LRU links; protected by shard->lock */
	uint64_t tick;              /* release time; protected by shard->lock */
	int in_table;               /* protected by shard->lock */
	int state;                  /* protected by shard->lock: invariant (6) */
	size_t cap;                 /* immutable: capacity of buf.data (bufpool) */
};

struct shard {
	pthread_mutex_t lock;
	pthread_cond_t loaded;      /* an entry of this shard left LOADING */
	struct fcache *cache;       /* immutable */
	struct entry **buckets;     /* protected by lock */
	size_t nbuckets;            /* protected by lock; a power of two */
	size_t count;               /* entries in the table; protected by lock */
	struct entry *lru_head;     /* most recently released; protected by lock */
	struct entry *lru_tail;     /* next to evict; protected by lock */
};

struct fcache {
	struct shard shards[NSHARDS];
	size_t budget;              /* immutable */
	struct pool *pool;          /* set by fcache_configure, then immutable */
	pthread_mutex_t ilock;      /* in-flight budget */
	pthread_cond_t iroom;       /* foreground in-flight bytes went down */
	uint64_t inflight[2];       /* protected by ilock: [0] fg, [1] bg */
	size_t inflight_max;        /* immutable after fcache_configure */
	uint64_t bytes, entries;    /* atomic: invariant (4) */
	uint64_t hits, misses, evictions;  /* atomic */
	uint64_t batches, fetched, fetched_bytes, parallel, waits;  /* atomic */
	uint64_t prefetched, prefetch_skipped, damaged;             /* atomic */
	uint64_t tick;              /* atomic: release clock */
};

/* ---- helpers ---------------------------------------------------------- */

static uint64_t hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	id *= 0xc4ceb9fe1a85ec53ull;
	return id ^ (id >> 33);
}

static struct shard *shard_of(struct fcache *c, uint64_t id)
{
	return &c->shards[hash_id(id) % NSHARDS];
}

static size_t bucket_of(const struct shard *s, uint64_t id)
{
	return (size_t)(hash_id(id) / NSHARDS) & (s->nbuckets - 1);
}

static void stat_add(uint64_t *ctr, uint64_t v)
{
	__atomic_fetch_add(ctr, v, __ATOMIC_RELAXED);
}

static uint64_t stat_get(const uint64_t *ctr)
{
	return __atomic_load_n(ctr, __ATOMIC_RELAXED);
}

/* malloc with fault point "alloc". @return NULL on failure. */
static void *xmalloc(size_t n)
{
	return FAULT("alloc") ? NULL : malloc(n);
}

static void refs_underflow(const struct fbuf *b)
{
	log_err("fragment %016" PRIx64 ": buffer refcount underflow", b->id);
	abort();
}

/* ---- shard table and LRU (caller holds s->lock) --------------------------- */

static struct entry *table_find(struct shard *s, uint64_t id)
{
	struct entry *e = s->buckets[bucket_of(s, id)];

	while (e && e->buf.id != id)
		e = e->hnext;
	return e;
}

/* Double the buckets when full; on allocation failure keep the table. */
static void table_grow(struct shard *s)
{
	size_t old = s->nbuckets;
	struct entry **ob = s->buckets, **nb;

	if (s->count < old)
		return;
	nb = calloc(old * 2, sizeof(*nb));
	if (!nb)
		return;
	s->buckets = nb;
	s->nbuckets = old * 2;
	for (size_t i = 0; i < old; i++) {
		struct entry *e = ob[i], *next;
		for (; e; e = next) {
			size_t k = bucket_of(s, e->buf.id);
			next = e->hnext;
			e->hnext = nb[k];
			nb[k] = e;
		}
	}
	free(ob);
}

static void table_insert(struct shard *s, struct entry *e)
{
	size_t k = bucket_of(s, e->buf.id);

	e->hnext = s->buckets[k];
	s->buckets[k] = e;
	e->in_table = 1;
	s->count++;
	table_grow(s);
}

static void table_remove(struct shard *s, struct entry *e)
{
	struct entry **p = &s->buckets[bucket_of(s, e->buf.id)];

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	e->in_table = 0;
	s->count--;
}

static void lru_push(struct shard *s, struct entry *e)
{
	e->tick = __atomic_fetch_add(&s->cache->tick, 1, __ATOMIC_RELAXED);
	e->prev = NULL;
	e->next = s->lru_head;
	if (s->lru_head)
		s->lru_head->prev = e;
	else
		s->lru_tail = e;
	s->lru_head = e;
}

static void lru_unlink(struct shard *s, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

/* Add N pins to E (found in the table). */
static void pin_locked(struct shard *s, struct entry *e, int n)
{
	if (__atomic_load_n(&e->buf.refs, __ATOMIC_RELAXED) == 0)
		lru_unlink(s, e);
	__atomic_fetch_add(&e->buf.refs, n, __ATOMIC_ACQ_REL);
}

/* Invariants (1), (5), (6) for one shard: checker for assert(). */
static __attribute__((unused)) int shard_check(struct shard *s)
{
	size_t in_lru = 0, unpinned = 0;

	for (struct entry *e = s->lru_head; e; e = e->next) {
		if (!e->in_table || e->buf.refs != 0 || e->state != E_READY ||
		    (e->next && e->next->tick > e->tick))
			return 0;
		in_lru++;
	}
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext) {
			if (e->state == E_FAILED || (e->state == E_LOADING && e->buf.refs == 0))
				return 0;
			unpinned += e->buf.refs == 0;
		}
	return in_lru == unpinned;
}

/* ---- entries, eviction -------------------------------------------------- */

/* @return an unpublished LOADING entry of RAW_LEN bytes for ID (its bytes
 * from the recycled buffers), or NULL. */
static struct entry *entry_new(struct fcache *c, uint64_t id, size_t raw_len)
{
	struct entry *e = xmalloc(sizeof(*e));
	char *data = e ? bp_get(raw_len, &e->cap) : NULL;

	if (!data) {
		free(e);
		return NULL;
	}
	memset(e, 0, offsetof(struct entry, cap));
	e->buf.id = id;
	e->buf.len = raw_len;
	e->buf.data = data;
	e->shard = shard_of(c, id);
	e->state = E_LOADING;
	return e;
}

/* Free an entry that was never published. */
static void entry_discard(struct entry *e)
{
	bp_put((void *)e->buf.data, e->cap);
	free(e);
}

/* Free a live entry no one can reach any more (invariant 3). */
static void entry_free(struct entry *e)
{
	struct fcache *c = e->shard->cache;

	__atomic_fetch_sub(&c->bytes, e->buf.len, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&c->entries, 1, __ATOMIC_RELAXED);
	entry_discard(e);
}

/* @return the shard whose LRU tail is oldest, or NULL when every entry is
 * pinned. */
static struct shard *oldest_shard(struct fcache *c)
{
	struct shard *best = NULL;
	uint64_t best_tick = UINT64_MAX;

	for (int i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->lock);
		if (s->lru_tail && s->lru_tail->tick < best_tick) {
			best_tick = s->lru_tail->tick;
			best = s;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return best;
}

/* Evict one unpinned entry, oldest first. @return 0 when there is none. */
static int evict_one(struct fcache *c)
{
	struct shard *s = oldest_shard(c);
	struct entry *e;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	e = s->lru_tail;
	if (e) {
		lru_unlink(s, e);
		table_remove(s, e);
	}
	pthread_mutex_unlock(&s->lock);
	if (e) {
		entry_free(e);
		stat_add(&c->evictions, 1);
	}
	return 1;
}

/* Invariant (3) of fcache.h: evict unpinned entries until within budget. */
static void evict_to_budget(struct fcache *c)
{
	while (stat_get(&c->bytes) > c->budget && evict_one(c))
		;
}

/* ---- public: lookup, put, drop ------------------------------------------ */

struct fbuf *fcache_lookup(struct fcache *c, uint64_t id)
{
	struct shard *s = shard_of(c, id);
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = table_find(s, id);
	if (e && e->state == E_READY)
		pin_locked(s, e, 1);
	else
		e = NULL;
	pthread_mutex_unlock(&s->lock);
	stat_add(e ? &c->hits : &c->misses, 1);
	return e ? &e->buf : NULL;
}

/* The last pin of an entry goes: back on the LRU, or freed when out of
 * the table. @return 1 when the cache may now be over budget. */
static int unpin_last(struct entry *e)
{
	struct shard *s = e->shard;
	int r, freed = 0;

	pthread_mutex_lock(&s->lock);
	r = __atomic_sub_fetch(&e->buf.refs, 1, __ATOMIC_ACQ_REL);
	if (r < 0)
		refs_underflow(&e->buf);
	if (r == 0 && e->in_table)
		lru_push(s, e);      /* in the table at 0 pins: READY (invariant 6) */
	else if (r == 0)
		freed = 1;
	pthread_mutex_unlock(&s->lock);
	if (freed)
		entry_free(e);
	return r == 0 && !freed;
}

/* Once the last pin is gone E may be evicted and freed by another thread
 * at any moment: nothing of E is touched after unpin_last(). */
void fbuf_put(struct fbuf *b)
{
	struct entry *e = (struct entry *)b;
	struct fcache *c;
	int r;

	if (!b)
		return;
	r = __atomic_load_n(&b->refs, __ATOMIC_RELAXED);
	while (r > 1)   /* not the last pin: no lock needed (invariant 2) */
		if (__atomic_compare_exchange_n(&b->refs, &r, r - 1, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return;
	if (r < 1)
		refs_underflow(b);
	c = e->shard->cache;
	if (unpin_last(e))
		evict_to_budget(c);
}

void fcache_drop(struct fcache *c, uint64_t id)
{
	struct shard *s = shard_of(c, id);
	struct entry *e, *victim = NULL;

	pthread_mutex_lock(&s->lock);
	e = table_find(s, id);
	if (e) {
		table_remove(s, e);
		if (__atomic_load_n(&e->buf.refs, __ATOMIC_ACQUIRE) == 0) {
			lru_unlink(s, e);
			victim = e;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (victim)
		entry_free(victim);
}

/* ---- in-flight budget ------------------------------------------------------- */

/* Foreground: wait for room, but never while nothing else is in flight
 * (so one huge request still proceeds). */
static void inflight_wait(struct fcache *c, uint64_t bytes)
{
	pthread_mutex_lock(&c->ilock);
	while (c->inflight[0] && c->inflight[0] + bytes > c->inflight_max)
		pthread_cond_wait(&c->iroom, &c->ilock);
	c->inflight[0] += bytes;
	pthread_mutex_unlock(&c->ilock);
}

/* Background: take room only when there is some. @return 1 when taken. */
static int inflight_try(struct fcache *c, uint64_t bytes)
{
	int ok;

	pthread_mutex_lock(&c->ilock);
	ok = c->inflight[1] + bytes <= c->inflight_max;
	if (ok)
		c->inflight[1] += bytes;
	pthread_mutex_unlock(&c->ilock);
	return ok;
}

static void inflight_done(struct fcache *c, int bg, uint64_t bytes)
{
	pthread_mutex_lock(&c->ilock);
	c->inflight[bg] -= bytes;
	if (!bg)
		pthread_cond_broadcast(&c->iroom);
	pthread_mutex_unlock(&c->ilock);
}

/* ---- loading ---------------------------------------------------------------- */

/* One fragment a caller loads: its descriptor and its LOADING entry. */
struct load {
	struct frag_ref ref;
	struct entry *e;
	struct frag_get *get;       /* the image read (during load_backend) */
	int rc;                     /* result of decode */
	const char *why;            /* rc -EIO: what is wrong with the image */
	int published;              /* finish_load() done (READY at its decode) */
};

static int load_cmp(const void *a, const void *b)
{
	const struct load *x = a, *y = b;

	if (x->ref.backend != y->ref.backend)
		return (uintptr_t)x->ref.backend < (uintptr_t)y->ref.backend ? -1 : 1;
	return x->ref.id < y->ref.id ? -1 : x->ref.id > y->ref.id;
}

static uint64_t load_bytes(const struct load *l)
{
	return (uint64_t)FRAG_HDR_SIZE + l->ref.stored_len + l->ref.raw_len;
}

/* Say what is wrong with a fragment image that did not decode. */
static const char *damage_reason(const struct frag_get *r, const struct frag_ref *ref)
{
	struct frag_info fi;

	if (frag_decode_header(r->buf, r->len, &fi))
		return "damaged header";
	if (fi.id != ref->id)
		return "header names another fragment";
	if (fi.raw_len != ref->raw_len)
		return "raw length differs from the index";
	if (fi.checksum != ref->checksum)
		return "checksum differs from the index";
	return fi.codec == FRAG_CODEC_LZ4 ? "lz4 data damaged or checksum mismatch"
					  : "checksum mismatch";
}

/* Decode the image read for L into its entry, verified (invariant 6).
 * Sets l->rc: 0, the read's -errno (-ENOENT missing, ...; logged), -EIO
 * damaged (l->why; logged by the caller, which may read it again). */
static void decode_one(void *arg)
{
	struct load *l = arg;
	struct frag_info fi;
	int rc;

	l->why = NULL;
	if (l->get->err) {
		char where[128];
		frag_where(l->ref.backend, l->ref.id, where, sizeof(where));
		log_err("fragment %016" PRIx64 " (%s): read: %s (%s)", l->ref.id, where,
			l->get->err == -ENOENT ? "missing" : strerror(-l->get->err), log_errname(l->get->err));
		l->rc = l->get->err;
		return;
	}
	rc = frag_decode(l->get->buf, l->get->len, l->ref.id, (char *)l->e->buf.data, l->ref.raw_len, &fi);
	if (!rc && (fi.raw_len != l->ref.raw_len || fi.checksum != l->ref.checksum))
		rc = -EIO;
	if (rc) {
		l->why = damage_reason(l->get, &l->ref);
		l->rc = -EIO;
		return;
	}
	l->e->checksum = fi.checksum;
	l->rc = 0;
}

/* Publish the outcome of L's load: READY, or FAILED and out of the table;
 * wake whoever waits for it. The loader keeps its pin. */
static void finish_load(struct load *l)
{
	struct shard *s = l->e->shard;

	pthread_mutex_lock(&s->lock);
	if (l->rc == 0) {
		l->e->state = E_READY;
	} else {
		l->e->state = E_FAILED;
		if (l->e->in_table)
			table_remove(s, l->e);
	}
	pthread_cond_broadcast(&s->loaded);
	pthread_mutex_unlock(&s->lock);
}

/* Decode L and, when it verified, publish it READY at once (invariant
 * 8): whoever waits for it goes on while the batch's others still load.
 * A failure is published by load_backend (it may read it again, 6a). */
static void decode_publish(void *arg)
{
	struct load *l = arg;

	decode_one(l);
	if (l->rc == 0) {
		finish_load(l);
		l->published = 1;
	}
}

/* A batch decoded as its images arrive (read_decode on a pool). */
struct arrivals {
	struct fcache *c;
	struct load *ls;
	struct pool_group g;
	size_t queued;               /* decodes handed to the pool */
};

/* get_many_cb's DONE: image I has arrived (or failed): decode it on the
 * pool while the batch's other images are still read (invariant 8). */
static void arrived(void *arg, size_t i)
{
	struct arrivals *a = arg;

	a->queued++;
	pool_group_submit(a->c->pool, &a->g, decode_publish, &a->ls[i]);
}

/* Read the images of LS[0..M) (one backend) with ONE get_many() — one
 * I/O submission — and decode them: with several images and a pool, each
 * on the pool as soon as it arrived (invariant 8), else one by one after
 * the batch. Every ls[i].rc is set. */
static void read_decode(struct fcache *c, struct load *ls, size_t m)
{
	int par = m > 1 && pool_threads(c->pool);
	struct arrivals arr = { .c = c, .ls = ls };

	struct frag_get stackv[16], *gv = m <= 16 ? stackv : xmalloc(m * sizeof(*gv));
	size_t capv[16], *caps = m <= 16 ? capv : xmalloc(m * sizeof(*caps));
	int rc = gv && caps ? 0 : -ENOMEM;

	if (gv)
		memset(gv, 0, m * sizeof(*gv));

	for (size_t i = 0; i < m && !rc; i++) {
		gv[i] = (struct frag_get){ .id = ls[i].ref.id,
					   .cap = FRAG_HDR_SIZE + (size_t)ls[i].ref.stored_len };
		if (!(gv[i].buf = bp_get(gv[i].cap, &caps[i])))
			rc = -ENOMEM;
		ls[i].get = &gv[i];
	}
	if (!rc && par) {
		pool_group_init(&arr.g);
		rc = frag_get_many_cb(ls[0].ref.backend, gv, m, arrived, &arr);
		pool_group_wait(c->pool, &arr.g);    /* every decode queued ran */
		if (!rc && arr.queued != m) {
			log_err("fragments: batched read finished %zu of %zu images (EIO)", arr.queued, m);
			rc = -EIO;    /* a backend broke its contract: fail them all */
		}
		if (rc)
			log_err("fragments: batched read of %zu failed: %s (%s)", m, strerror(-rc),
				log_errname(rc));
		else
			stat_add(&c->parallel, m);
	} else if (!rc) {
		rc = frag_get_many(ls[0].ref.backend, gv, m);
		if (rc)
			log_err("fragments: batched read of %zu failed: %s (%s)", m, strerror(-rc),
				log_errname(rc));
	}
	if (!rc) {
		stat_add(&c->batches, 1);
		stat_add(&c->fetched, m);
		for (size_t i = 0; i < m; i++)
			stat_add(&c->fetched_bytes, gv[i].len);
	}
	if (rc) {
		for (size_t i = 0; i < m; i++)
			ls[i].rc = rc, ls[i].why = NULL;
	} else if (!par) {
		for (size_t i = 0; i < m; i++)
			decode_publish(&ls[i]);
	}
	for (size_t i = 0; gv && caps && i < m; i++)
		bp_put(gv[i].buf, gv[i].buf ? caps[i] : 0);
	for (size_t i = 0; i < m; i++)
		ls[i].get = NULL;
	if (gv != stackv)
		free(gv);
	if (caps != capv)
		free(caps);
}

/* An image of L did not verify: log it (with where it lives) and tell
 * the backend (invariant 6a). @return 1 when the bytes came from a local
 * copy that is now dropped: reading again may give good bytes. */
static int damaged(struct fcache *c, struct load *l, int again)
{
	char where[128];
	int retry = frag_invalidate(l->ref.backend, l->ref.id);

	frag_where(l->ref.backend, l->ref.id, where, sizeof(where));
	if (retry && !again) {
		log_warn("fragment %016" PRIx64 ": the copy in the image cache is damaged (%s): "
			 "dropped, read again from %s", l->ref.id, l->why, where);
		return 1;
	}
	log_err("fragment %016" PRIx64 " (%s): read: %s (EIO)", l->ref.id, where, l->why);
	stat_add(&c->damaged, 1);
	return 0;
}

/* Load LS[0..M) (one backend); an image whose local copy was damaged is
 * read once more (invariant 6a). Every entry is published. */
static void load_backend(struct fcache *c, struct load *ls, size_t m)
{
	struct load stackr[16], *redo = NULL;
	size_t *at = NULL, nredo = 0;
	int nomem = 0;

	read_decode(c, ls, m);
	for (size_t i = 0; i < m; i++) {
		if (ls[i].rc != -EIO || !ls[i].why || !damaged(c, &ls[i], 0) || nomem)
			continue;
		if (!redo) {
			redo = m <= 16 ? stackr : xmalloc(m * sizeof(*redo));
			at = xmalloc(m * sizeof(*at));
			if (!redo || !at) {
				nomem = 1;    /* no memory: they stay EIO */
				continue;
			}
		}
		redo[nredo] = ls[i];
		at[nredo++] = i;
	}
	if (nomem)
		nredo = 0;
	if (nredo && redo && at) {
		read_decode(c, redo, nredo);
		for (size_t k = 0; k < nredo; k++) {
			if (redo[k].rc == -EIO && redo[k].why)
				damaged(c, &redo[k], 1);
			ls[at[k]].rc = redo[k].rc;
			ls[at[k]].published = redo[k].published;
		}
	}
	if (redo && redo != stackr)
		free(redo);
	free(at);
	for (size_t i = 0; i < m; i++)
		if (!ls[i].published)
			finish_load(&ls[i]);
}

/* Load LS[0..M): one batch per backend. Each ls[i].rc tells its outcome;
 * every entry is READY or FAILED afterwards. */
static void load_all(struct fcache *c, struct load *ls, size_t m)
{
	qsort(ls, m, sizeof(*ls), load_cmp);
	for (size_t i = 0, j; i < m; i = j) {
		for (j = i + 1; j < m && ls[j].ref.backend == ls[i].ref.backend; j++)
			;
		load_backend(c, ls + i, j - i);
	}
	evict_to_budget(c);
}

/* Find ID in its shard, pinning it (READY or LOADING), or insert a new
 * LOADING entry E pinned once for the caller. *MINE tells which; *READY
 * (may be NULL) whether the entry found was READY.
 * @return the pinned entry, or NULL when E was needed and is NULL. */
static struct entry *find_or_claim3(struct fcache *c, uint64_t id, struct entry *e, int *mine,
				    int *ready)
{
	struct shard *s = shard_of(c, id);
	struct entry *old;

	pthread_mutex_lock(&s->lock);
	old = table_find(s, id);
	if (ready)
		*ready = old && old->state == E_READY;
	if (old) {
		pin_locked(s, old, 1);
	} else if (e) {
		__atomic_store_n(&e->buf.refs, 1, __ATOMIC_RELAXED);
		table_insert(s, e);
		stat_add(&c->bytes, e->buf.len);
		stat_add(&c->entries, 1);
	}
	pthread_mutex_unlock(&s->lock);
	*mine = !old && e;
	return old ? old : e;
}

static struct entry *find_or_claim(struct fcache *c, uint64_t id, struct entry *e, int *mine)
{
	return find_or_claim3(c, id, e, mine, NULL);
}

/* Wait until E (pinned by the caller) is no longer LOADING; count a wait.
 * @return 0 READY, or -EAGAIN when its load failed. */
static int wait_loaded(struct entry *e)
{
	struct shard *s = e->shard;
	int st;

	pthread_mutex_lock(&s->lock);
	if (e->state == E_LOADING)
		stat_add(&s->cache->waits, 1);
	while (e->state == E_LOADING)
		pthread_cond_wait(&s->loaded, &s->lock);
	st = e->state;
	pthread_mutex_unlock(&s->lock);
	return st == E_READY ? 0 : -EAGAIN;
}

/* Does cached entry E hold what REF describes? Logs when not. */
static int ref_matches(const struct entry *e, const struct frag_ref *ref)
{
	if (e->buf.len == ref->raw_len && e->checksum == ref->checksum)
		return 1;
	log_err("fragment %016" PRIx64 ": cached length %zu / checksum %016" PRIx64
		" differ from the index (%" PRIu32 " / %016" PRIx64 "): read refused (EIO)",
		ref->id, e->buf.len, e->checksum, ref->raw_len, ref->checksum);
	return 0;
}

static void release_all(struct fbuf **out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fbuf_put(out[i]);
		out[i] = NULL;
	}
}

/* Pin or claim every ref: OUT[i] gets the entry; claimed ones are added
 * to LS (*M of them). @return 0 or -ENOMEM. */
static int claim_all(struct fcache *c, const struct frag_ref *refs, size_t n,
		     struct fbuf **out, struct load *ls, size_t *m, size_t *hits)
{
	*m = *hits = 0;
	for (size_t i = 0; i < n; i++) {
		int mine, ready;
		struct entry *e = find_or_claim3(c, refs[i].id, NULL, &mine, &ready);

		if (!e) {
			struct entry *ne = entry_new(c, refs[i].id, refs[i].raw_len);
			if (!ne)
				return -ENOMEM;
			e = find_or_claim(c, refs[i].id, ne, &mine);
			if (!mine)
				entry_discard(ne);   /* another caller claimed it meanwhile */
		}
		out[i] = &e->buf;
		if (mine)
			ls[(*m)++] = (struct load){ .ref = refs[i], .e = e };
		else if (ready)
			(*hits)++;
	}
	return 0;
}

/* Errors as in fcache.h; -ENOMEM also from fault point "alloc". When one
 * fragment fails, the others that verified stay cached (unpinned): their
 * bytes are good and the work is not lost. With several errors, the one
 * returned is the first met (by backend, then id). */
int fcache_fetch(struct fcache *c, const struct frag_ref *refs, size_t n,
		 struct fbuf **out)
{
	struct load stack[8], *ls = stack;
	size_t m = 0, hits = 0;
	uint64_t bytes = 0;
	int rc = 0;

	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return 0;
	if (n > 8 && !(ls = xmalloc(n * sizeof(*ls))))
		return -ENOMEM;
	rc = claim_all(c, refs, n, out, ls, &m, &hits);
	stat_add(&c->hits, hits);
	stat_add(&c->misses, n - hits);
	if (rc) {
		for (size_t i = 0; i < m; i++)
			ls[i].rc = rc;
		for (size_t i = 0; i < m; i++)
			finish_load(&ls[i]);     /* claimed but never loaded: fail them */
		goto out;
	}
	for (size_t i = 0; i < m; i++)
		bytes += load_bytes(&ls[i]);
	if (m) {
		inflight_wait(c, bytes);
		load_all(c, ls, m);
		inflight_done(c, 0, bytes);
		for (size_t i = 0; i < m && !rc; i++)
			rc = ls[i].rc;
	}
	/* entries other callers are loading (or our own repeated ids) */
	for (size_t i = 0; i < n && !rc; i++) {
		if (wait_loaded((struct entry *)out[i]) == 0)
			continue;
		/* its loader failed: try once ourselves, for our own error */
		fbuf_put(out[i]);
		out[i] = NULL;
		rc = fcache_fetch(c, &refs[i], 1, &out[i]);
	}
	for (size_t i = 0; i < n && !rc; i++)
		if (!ref_matches((struct entry *)out[i], &refs[i]))
			rc = -EIO;
out:
	if (rc)
		release_all(out, n);
	if (ls != stack)
		free(ls);
	return rc;
}

/* ---- read-ahead -------------------------------------------------------- */

/* A background load. Its fragments are claimed only when the job runs, so
 * nobody ever waits for a job that has not started (a waiter could
 * otherwise sit on a pool worker that the job needs). */
struct prefetch {
	struct fcache *c;
	uint64_t bytes;       /* taken from the read-ahead budget at submit */
	void (*done)(void *);
	void *arg;
	size_t n;
	struct frag_ref refs[];
};

static void prefetch_run(void *arg)
{
	struct prefetch *p = arg;
	struct fcache *c = p->c;
	struct load stack[8], *ls = p->n <= 8 ? stack : xmalloc(p->n * sizeof(*ls));
	size_t m = 0;

	for (size_t i = 0; ls && i < p->n; i++) {
		int mine;
		struct entry *e = find_or_claim(c, p->refs[i].id, NULL, &mine), *ne;

		if (e) {                 /* cached or being loaded meanwhile */
			fbuf_put(&e->buf);
			continue;
		}
		if (!(ne = entry_new(c, p->refs[i].id, p->refs[i].raw_len)))
			break;
		e = find_or_claim(c, p->refs[i].id, ne, &mine);
		if (!mine) {
			entry_discard(ne);
			fbuf_put(&e->buf);
			continue;
		}
		ls[m++] = (struct load){ .ref = p->refs[i], .e = e };
	}
	if (m) {
		load_all(c, ls, m);
		stat_add(&c->prefetched, m);
	}
	for (size_t i = 0; i < m; i++)
		fbuf_put(&ls[i].e->buf);     /* READY entries go to the LRU */
	if (ls != stack)
		free(ls);
	inflight_done(c, 1, p->bytes);
	if (p->done)
		p->done(p->arg);
	free(p);
}

static void prefetch_cancel(void *arg)
{
	struct prefetch *p = arg;

	inflight_done(p->c, 1, p->bytes);
	if (p->done)
		p->done(p->arg);
	free(p);
}

/* Is ID in the table (cached or being loaded)? */
static int present(struct fcache *c, uint64_t id)
{
	struct shard *s = shard_of(c, id);
	int found;

	pthread_mutex_lock(&s->lock);
	found = table_find(s, id) != NULL;
	pthread_mutex_unlock(&s->lock);
	return found;
}

size_t fcache_prefetch(struct fcache *c, const struct frag_ref *refs, size_t n,
		       void (*done)(void *), void *arg)
{
	struct prefetch *p;

	if (!n || !pool_threads(c->pool) || !(p = xmalloc(sizeof(*p) + n * sizeof(p->refs[0])))) {
		if (done)
			done(arg);
		return 0;
	}
	*p = (struct prefetch){ .c = c, .done = done, .arg = arg };
	for (size_t i = 0; i < n; i++) {
		uint64_t need = (uint64_t)FRAG_HDR_SIZE + refs[i].stored_len + refs[i].raw_len;

		if (present(c, refs[i].id))
			continue;
		if (!inflight_try(c, need)) {
			stat_add(&c->prefetch_skipped, 1);
			continue;
		}
		p->refs[p->n++] = refs[i];
		p->bytes += need;
	}
	size_t queued = p->n;
	if (!queued) {
		prefetch_cancel(p);
		return 0;
	}
	if (pool_submit_bg(c->pool, prefetch_run, prefetch_cancel, p) < 0) {
		prefetch_cancel(p);
		return 0;
	}
	return queued;
}

/* ---- life cycle, stats ----------------------------------------------------- */

struct fcache *fcache_new(size_t budget)
{
	struct fcache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->budget = budget ? budget : DEFAULT_BUDGET;
	pthread_mutex_init(&c->ilock, NULL);
	pthread_cond_init(&c->iroom, NULL);
	fcache_configure(c, NULL, 0);
	for (int i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];
		s->cache = c;
		s->nbuckets = INITIAL_BUCKETS;
		s->buckets = calloc(INITIAL_BUCKETS, sizeof(*s->buckets));
		pthread_mutex_init(&s->lock, NULL);
		pthread_cond_init(&s->loaded, NULL);
		if (!s->buckets) {
			fcache_free(c);
			return NULL;
		}
	}
	return c;
}

void fcache_configure(struct fcache *c, struct pool *pool, size_t inflight)
{
	size_t def = c->budget / 8;

	if (def < ((size_t)8 << 20))
		def = (size_t)8 << 20;
	if (def > ((size_t)64 << 20))
		def = (size_t)64 << 20;
	c->pool = pool;
	c->inflight_max = inflight ? inflight : def;
}

/* Every buffer must have been put back (a pinned entry is a caller bug,
 * caught by assert in debug builds). */
void fcache_free(struct fcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];
		if (!s->cache)
			continue;   /* fcache_new() failed before this shard */
		assert(shard_check(s));
		for (size_t k = 0; s->buckets && k < s->nbuckets; k++) {
			struct entry *e = s->buckets[k], *next;
			for (; e; e = next) {
				next = e->hnext;
				assert(e->buf.refs == 0);
				entry_discard(e);
			}
		}
		free(s->buckets);
		pthread_cond_destroy(&s->loaded);
		pthread_mutex_destroy(&s->lock);
	}
	pthread_cond_destroy(&c->iroom);
	pthread_mutex_destroy(&c->ilock);
	free(c);
}

void fcache_get_stats(struct fcache *c, struct fcache_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->hits = stat_get(&c->hits);
	st->misses = stat_get(&c->misses);
	st->evictions = stat_get(&c->evictions);
	st->bytes = stat_get(&c->bytes);
	st->entries = stat_get(&c->entries);
	st->budget = c->budget;
	st->batches = stat_get(&c->batches);
	st->fetched = stat_get(&c->fetched);
	st->fetched_bytes = stat_get(&c->fetched_bytes);
	st->parallel = stat_get(&c->parallel);
	st->waits = stat_get(&c->waits);
	st->prefetched = stat_get(&c->prefetched);
	st->prefetch_skipped = stat_get(&c->prefetch_skipped);
	st->damaged = stat_get(&c->damaged);
	pthread_mutex_lock(&c->ilock);
	st->inflight_fg = c->inflight[0];
	st->inflight_bg = c->inflight[1];
	pthread_mutex_unlock(&c->ilock);
	st->inflight_budget = c->inflight_max;
}
