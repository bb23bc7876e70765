/* fcache — the cache of decompressed fragments and the batched read path;
 * see fcache.h for the contract.
 *
 * Layout: NSHARDS shards picked by a hash of the id, each a mutex, a
 * chained hash table and an LRU list of the unpinned entries. The byte
 * budget is global (atomic counter); eviction takes the shard tail with
 * the oldest release tick, which approximates one global LRU.
 *
 * Invariants:
 *  (1) An entry belongs to the shard of its id for life. It is in that
 *      shard's table unless dropped or evicted, and it is on the shard's
 *      LRU list exactly when it is in the table and its refcount is 0.
 *  (2) Refcount changes 0->1 and 1->0 happen under the shard lock; other
 *      changes are atomic without it. A refcount below zero aborts.
 *  (3) An entry is freed exactly once: when it leaves the table with
 *      refcount 0 (eviction, drop), or when its last pin goes after it
 *      left the table (dropped while pinned).
 *  (4) c->bytes / c->entries count every live entry (in a table, or
 *      dropped and still pinned).
 *  (5) Along a shard's LRU list from head to tail the ticks decrease.
 *  (6) Only bytes that decoded and verified (id, raw length, checksum)
 *      ever enter a table; an entry's bytes never change once published.
 * Lock order: at most one shard lock is held at a time; no lock is held
 * while calling a backend, decoding, or freeing an entry.
 */
#include "cache/fcache.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/backend.h"
#include "cache/codec.h"
#include "cache/fault.h"
#include "cache/log.h"

#define NSHARDS          16
#define INITIAL_BUCKETS  64
#define DEFAULT_BUDGET   ((size_t)256 << 20)

struct shard;

struct entry {
	struct fbuf buf;            /* first: the caller's view; buf.refs atomic */
	struct shard *shard;        /* immutable */
	uint64_t checksum;          /* immutable: xxh64 of the bytes */
	struct entry *hnext;        /* protected by shard->lock */
	struct entry *prev, *next;  /* LRU links; protected by shard->lock */
	uint64_t tick;              /* release time; protected by shard->lock */
	int in_table;               /* protected by shard->lock */
	char data[];
};

struct shard {
	pthread_mutex_t lock;
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
	uint64_t bytes, entries;    /* atomic: invariant (4) */
	uint64_t hits, misses, evictions;  /* atomic */
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

/* Invariants (1), (5) for one shard: checker for assert(). */
static __attribute__((unused)) int shard_check(struct shard *s)
{
	size_t in_lru = 0, unpinned = 0;

	for (struct entry *e = s->lru_head; e; e = e->next) {
		if (!e->in_table || e->buf.refs != 0 || (e->next && e->next->tick > e->tick))
			return 0;
		in_lru++;
	}
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct entry *e = s->buckets[i]; e; e = e->hnext)
			unpinned += e->buf.refs == 0;
	return in_lru == unpinned;
}

/* ---- entries, eviction -------------------------------------------------- */

/* @return an unpublished entry of RAW_LEN bytes for ID, or NULL. */
static struct entry *entry_new(struct fcache *c, uint64_t id, size_t raw_len)
{
	struct entry *e = xmalloc(sizeof(*e) + raw_len);

	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->buf.id = id;
	e->buf.len = raw_len;
	e->buf.data = e->data;
	e->shard = shard_of(c, id);
	return e;
}

/* Free a live entry no one can reach any more (invariant 3). */
static void entry_free(struct entry *e)
{
	struct fcache *c = e->shard->cache;

	__atomic_fetch_sub(&c->bytes, e->buf.len, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&c->entries, 1, __ATOMIC_RELAXED);
	free(e);
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

/* Pin ID when cached. @return the entry or NULL; counts nothing. */
static struct entry *lookup_pin(struct fcache *c, uint64_t id)
{
	struct shard *s = shard_of(c, id);
	struct entry *e;

	pthread_mutex_lock(&s->lock);
	e = table_find(s, id);
	if (e)
		pin_locked(s, e, 1);
	pthread_mutex_unlock(&s->lock);
	return e;
}

struct fbuf *fcache_lookup(struct fcache *c, uint64_t id)
{
	struct entry *e = lookup_pin(c, id);

	stat_add(e ? &c->hits : &c->misses, 1);
	return e ? &e->buf : NULL;
}

/* The last pin of an entry goes: back on the LRU, or freed when dropped.
 * @return 1 when the cache may now be over budget. */
static int unpin_last(struct entry *e)
{
	struct shard *s = e->shard;
	int r, freed = 0;

	pthread_mutex_lock(&s->lock);
	r = __atomic_sub_fetch(&e->buf.refs, 1, __ATOMIC_ACQ_REL);
	if (r < 0)
		refs_underflow(&e->buf);
	if (r == 0 && e->in_table)
		lru_push(s, e);
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

/* ---- fetch ------------------------------------------------------------------ */

/* One miss of a fetch call: sorted by (backend, id) so that each backend's
 * misses are contiguous and a repeated id is adjacent. */
struct miss {
	struct frag_backend *backend;
	uint64_t id;
	size_t idx;   /* into refs / out */
};

static int miss_cmp(const void *a, const void *b)
{
	const struct miss *x = a, *y = b;

	if (x->backend != y->backend)
		return (uintptr_t)x->backend < (uintptr_t)y->backend ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Does cached entry E hold what REF describes? Logs when not. */
static int ref_matches(const struct entry *e, const struct frag_ref *ref)
{
	if (e->buf.len == ref->raw_len && e->checksum == ref->checksum)
		return 1;
	log_err("fragment %016" PRIx64 ": cached length %zu / checksum %016" PRIx64
		" differ from the index (%" PRIu32 " / %016" PRIx64 ")",
		ref->id, e->buf.len, e->checksum, ref->raw_len, ref->checksum);
	return 0;
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

/* Check the read of R and decode it into a new entry.
 * @return 0 and *OUT; or the read's -errno (-ENOENT missing, ...), -EIO
 * damaged (logged with the id), -ENOMEM. */
static int decode_miss(struct fcache *c, const struct frag_ref *ref,
		       const struct frag_get *r, struct entry **out)
{
	struct frag_info fi;
	struct entry *e;
	int rc;

	*out = NULL;
	if (r->err) {
		log_err("fragment %016" PRIx64 ": %s", ref->id,
			r->err == -ENOENT ? "missing" : strerror(-r->err));
		return r->err;
	}
	e = entry_new(c, ref->id, ref->raw_len);
	if (!e)
		return -ENOMEM;
	rc = frag_decode(r->buf, r->len, ref->id, e->data, ref->raw_len, &fi);
	if (!rc && (fi.raw_len != ref->raw_len || fi.checksum != ref->checksum))
		rc = -EIO;
	if (rc) {
		log_err("fragment %016" PRIx64 ": %s", ref->id, damage_reason(r, ref));
		free(e);
		return -EIO;
	}
	e->checksum = fi.checksum;
	*out = e;
	return 0;
}

/* Publish decoded E with N pins, or pin the entry another thread
 * published meanwhile (E is then freed). @return the pinned entry. */
static struct entry *publish(struct fcache *c, struct entry *e, int n)
{
	struct shard *s = e->shard;
	struct entry *old;

	pthread_mutex_lock(&s->lock);
	old = table_find(s, e->buf.id);
	if (old) {
		pin_locked(s, old, n);
	} else {
		__atomic_store_n(&e->buf.refs, n, __ATOMIC_RELAXED);
		table_insert(s, e);
		stat_add(&c->bytes, e->buf.len);
		stat_add(&c->entries, 1);
	}
	pthread_mutex_unlock(&s->lock);
	if (old)
		free(e);
	else
		evict_to_budget(c);
	return old ? old : e;
}

/* Decode and publish the read R of the run MS[0..K) (one id, K >= 1
 * occurrences), pinning it once per occurrence into OUT.
 * @return 0 or as decode_miss(); -EIO when occurrences disagree. */
static int install(struct fcache *c, const struct frag_ref *refs, const struct miss *ms,
		   size_t k, const struct frag_get *r, struct fbuf **out)
{
	struct entry *e;
	int rc = decode_miss(c, &refs[ms[0].idx], r, &e);

	if (rc)
		return rc;
	e = publish(c, e, (int)k);
	for (size_t j = 0; j < k; j++)
		out[ms[j].idx] = &e->buf;
	for (size_t j = 0; j < k; j++)
		if (!ref_matches(e, &refs[ms[j].idx]))
			return -EIO;
	return 0;
}

/* Length of the run of equal ids starting at MS[0] (of M). */
static size_t run_len(const struct miss *ms, size_t m)
{
	size_t k = 1;

	while (k < m && ms[k].id == ms[0].id)
		k++;
	return k;
}

/* Allocate one read request per distinct id of MS[0..M). @return the
 * number of requests, or 0 on allocation failure. */
static size_t reqs_make(const struct frag_ref *refs, const struct miss *ms, size_t m,
			struct frag_get *reqs)
{
	size_t u = 0;

	for (size_t i = 0; i < m; i += run_len(ms + i, m - i), u++) {
		const struct frag_ref *ref = &refs[ms[i].idx];
		reqs[u].id = ref->id;
		reqs[u].cap = FRAG_HDR_SIZE + (size_t)ref->stored_len;
		reqs[u].buf = xmalloc(reqs[u].cap);
		if (!reqs[u].buf)
			return 0;
	}
	return u;
}

/* Fetch the misses MS[0..M) of one backend with ONE get_many(), decode and
 * publish them. Every miss that succeeds is pinned into OUT even when
 * another fails. @return 0 or the first error. */
static int fetch_backend(struct fcache *c, const struct frag_ref *refs,
			 const struct miss *ms, size_t m, struct fbuf **out)
{
	struct frag_get *reqs = calloc(m, sizeof(*reqs));
	size_t u = 0;
	int rc = -ENOMEM;

	if (!reqs || !(u = reqs_make(refs, ms, m, reqs)))
		goto out;
	rc = frag_get_many(ms[0].backend, reqs, u);
	if (rc) {
		log_err("fragments: batched read of %zu failed: %s", u, strerror(-rc));
		goto out;
	}
	for (size_t i = 0, j = 0; i < m; j++) {
		size_t k = run_len(ms + i, m - i);
		int r = install(c, refs, ms + i, k, &reqs[j], out);
		if (r && !rc)
			rc = r;
		i += k;
	}
out:
	for (size_t j = 0; reqs && j < m; j++)
		free(reqs[j].buf);
	free(reqs);
	return rc;
}

/* Pin every hit into OUT; collect the misses into MS. @return the number
 * of misses, or (size_t)-1 when a cached entry contradicts its ref. */
static size_t pin_hits(struct fcache *c, const struct frag_ref *refs, size_t n,
		       struct fbuf **out, struct miss *ms)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		struct entry *e = lookup_pin(c, refs[i].id);

		if (!e) {
			ms[m++] = (struct miss){ refs[i].backend, refs[i].id, i };
			continue;
		}
		out[i] = &e->buf;
		if (!ref_matches(e, &refs[i]))
			return (size_t)-1;
	}
	stat_add(&c->hits, n - m);
	stat_add(&c->misses, m);
	return m;
}

static void release_all(struct fbuf **out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fbuf_put(out[i]);
		out[i] = NULL;
	}
}

/* Errors as in fcache.h; -ENOMEM also from fault point "alloc". When one
 * fragment fails, the others that verified stay cached (unpinned): their
 * bytes are good and the work is not lost. With several errors, the one
 * returned is the first met (by backend, then id). */
int fcache_fetch(struct fcache *c, const struct frag_ref *refs, size_t n,
		 struct fbuf **out)
{
	struct miss *ms;
	size_t m;
	int rc = 0;

	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return 0;
	ms = xmalloc(n * sizeof(*ms));
	if (!ms)
		return -ENOMEM;
	m = pin_hits(c, refs, n, out, ms);
	if (m == (size_t)-1) {
		rc = -EIO;
		goto out;
	}
	qsort(ms, m, sizeof(*ms), miss_cmp);
	for (size_t i = 0, j; i < m; i = j) {
		for (j = i + 1; j < m && ms[j].backend == ms[i].backend; j++)
			;
		int r = fetch_backend(c, refs, ms + i, j - i, out);
		if (r && !rc)
			rc = r;
	}
out:
	if (rc)
		release_all(out, n);
	free(ms);
	return rc;
}

/* ---- life cycle, stats ----------------------------------------------------- */

struct fcache *fcache_new(size_t budget)
{
	struct fcache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->budget = budget ? budget : DEFAULT_BUDGET;
	for (int i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];
		s->cache = c;
		s->nbuckets = INITIAL_BUCKETS;
		s->buckets = calloc(INITIAL_BUCKETS, sizeof(*s->buckets));
		pthread_mutex_init(&s->lock, NULL);
		if (!s->buckets) {
			fcache_free(c);
			return NULL;
		}
	}
	return c;
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
				free(e);
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c);
}

void fcache_get_stats(struct fcache *c, struct fcache_stats *st)
{
	st->hits = stat_get(&c->hits);
	st->misses = stat_get(&c->misses);
	st->evictions = stat_get(&c->evictions);
	st->bytes = stat_get(&c->bytes);
	st->entries = stat_get(&c->entries);
	st->budget = c->budget;
}
