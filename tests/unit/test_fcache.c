/* test_fcache — the fragment cache: hit/miss counters, the byte budget and
 * LRU order, pinned entries under eviction pressure, drop, repeated ids in
 * one fetch, several backends in one fetch, damaged or missing fragments
 * (-EIO / -ENOENT with nothing pinned, nothing cached), an allocation
 * fault, and a 4-thread fetch/put stress; with a worker pool: parallel
 * decoding in one batch, one load when several callers miss the same
 * fragment at once (the others wait), waiters of a failed load getting
 * the error themselves, read-ahead (fcache_prefetch) and its budget, the
 * foreground in-flight budget serializing loads that do not fit, and
 * cancelled read-ahead at pool shutdown. Random choices come from a
 * logged seed (env TEST_SEED). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/backend.h"
#include "cache/codec.h"
#include "cache/fault.h"
#include "cache/fcache.h"
#include "cache/log.h"
#include "cache/pool.h"
#include "tests/unit/tap.h"

static uint64_t seed;

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_r(uint64_t *st)
{
	return mix(*st += 0x9e3779b97f4a7c15ull);
}

static void seed_init(void)
{
	const char *s = getenv("TEST_SEED");

	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	printf("# seed %llu\n", (unsigned long long)seed);
}

/* Raw bytes of fragment ID: text-like (so lz4 is used) with an id stamp. */
static void raw_fill(uint64_t id, char *p, size_t n)
{
	uint64_t s = id;

	for (size_t i = 0; i < n; i++)
		p[i] = i % 16 == 15 ? '\n' : (char)('a' + rnd_r(&s) % 4);
	if (n >= 8)
		memcpy(p, &id, 8);
}

/* Encode fragment ID of RAW_LEN bytes, store it in B, describe it in REF.
 * FLIP >= 0 damages that byte of the stored image. @return 0 or -errno. */
static int make_frag(struct frag_backend *b, uint64_t id, size_t raw_len, long flip,
		     struct frag_ref *ref)
{
	char *raw = malloc(raw_len + 1);
	size_t cap = frag_encode_bound(raw_len), len;
	unsigned char *img = malloc(cap);
	struct frag_info fi;
	int rc;

	raw_fill(id, raw, raw_len);
	rc = frag_encode(id, raw, raw_len, 1, img, cap, &len, &fi);
	if (!rc && flip >= 0)
		img[(size_t)flip % len] ^= 0x10;
	if (!rc)
		rc = frag_put(b, id, img, len);
	*ref = (struct frag_ref){ id, fi.raw_len, fi.stored_len, fi.checksum, b };
	free(raw);
	free(img);
	return rc;
}

/* @return 1 when B holds exactly the raw bytes of REF. */
static int buf_ok(const struct fbuf *b, const struct frag_ref *ref)
{
	char *want;
	int ok;

	if (!b || b->id != ref->id || b->len != ref->raw_len)
		return 0;
	want = malloc(b->len + 1);
	raw_fill(ref->id, want, b->len);
	ok = memcmp(want, b->data, b->len) == 0;
	free(want);
	return ok;
}

static struct fcache_stats stats(struct fcache *c)
{
	struct fcache_stats st;

	fcache_get_stats(c, &st);
	return st;
}

/* Fetch REF alone, check its bytes, put it back. @return 1 when fine. */
static int touch(struct fcache *c, const struct frag_ref *ref)
{
	struct fbuf *b = NULL;
	int ok = fcache_fetch(c, ref, 1, &b) == 0 && buf_ok(b, ref);

	fbuf_put(b);
	return ok;
}

/* Drop every id of REFS; nothing pinned means the cache is then empty. */
static int empty_after_drop(struct fcache *c, const struct frag_ref *refs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fcache_drop(c, refs[i].id);
	return stats(c).entries == 0 && stats(c).bytes == 0;
}

static void test_hits(struct frag_backend *mem)
{
	struct fcache *c = fcache_new(100000);
	struct frag_ref refs[10];
	struct fbuf *out[10], *b;
	int ok = 1;

	for (int i = 0; i < 10; i++)
		make_frag(mem, 0x100 + (uint64_t)i, 1000, -1, &refs[i]);
	CHECK_EQ(fcache_fetch(c, refs, 10, out), 0, "fetch 10 misses");
	for (int i = 0; i < 10; i++)
		ok &= buf_ok(out[i], &refs[i]);
	CHECK(ok, "the 10 buffers hold the right bytes");
	CHECK(stats(c).misses == 10 && stats(c).hits == 0, "10 misses, 0 hits");
	CHECK(stats(c).entries == 10 && stats(c).bytes == 10000, "10 entries, 10000 bytes");
	CHECK_EQ(stats(c).budget, 100000, "budget reported");
	for (int i = 0; i < 10; i++)
		fbuf_put(out[i]);
	CHECK_EQ(fcache_fetch(c, refs, 10, out), 0, "fetch the 10 again");
	CHECK(stats(c).hits == 10 && stats(c).misses == 10, "10 hits now");
	for (int i = 0; i < 10; i++)
		fbuf_put(out[i]);
	b = fcache_lookup(c, 0x105);
	CHECK(buf_ok(b, &refs[5]), "lookup of a cached id pins it");
	fbuf_put(b);
	b = fcache_lookup(c, 0x999);
	CHECK(b == NULL, "lookup of an absent id misses");
	CHECK_EQ(stats(c).hits, 11, "lookup counts hits");
	CHECK_EQ(stats(c).misses, 11, "lookup counts misses");
	CHECK_EQ(fcache_fetch(c, refs, 0, out), 0, "fetch of nothing");
	fbuf_put(NULL);
	fcache_free(c);
	fcache_free(NULL);
	c = fcache_new(0);
	CHECK_EQ(stats(c).budget, 256u << 20, "budget 0 means 256 MiB");
	fcache_free(c);
}

static void test_budget(struct frag_backend *mem)
{
	struct fcache *c = fcache_new(5000);
	struct frag_ref refs[20];
	int ok = 1, within = 1;
	struct fbuf *b;

	for (int i = 0; i < 20; i++) {
		make_frag(mem, 0x200 + (uint64_t)i, 1000, -1, &refs[i]);
		ok &= touch(c, &refs[i]);
		within &= stats(c).bytes <= 5000;
	}
	CHECK(ok && within, "20 fragments through a 5-fragment budget, always within it");
	CHECK(stats(c).entries == 5 && stats(c).evictions == 15, "5 entries kept, 15 evicted");
	ok = 1;
	for (int i = 15; i < 20; i++) {
		b = fcache_lookup(c, refs[i].id);
		ok &= b != NULL;
		fbuf_put(b);
	}
	CHECK(ok, "the 5 most recent are the ones kept");
	touch(c, &refs[15]);          /* now 16 is the least recently used */
	touch(c, &refs[0]);           /* a miss: evicts one */
	b = fcache_lookup(c, refs[16].id);
	CHECK(b == NULL, "the least recently used went");
	b = fcache_lookup(c, refs[15].id);
	CHECK(b != NULL, "the recently touched stayed");
	fbuf_put(b);
	fcache_free(c);
}

static void test_pinned(struct frag_backend *mem)
{
	struct fcache *c = fcache_new(3000);
	struct frag_ref pinned[5], other[10];
	struct fbuf *held[5];
	int ok = 1;

	for (int i = 0; i < 5; i++)
		make_frag(mem, 0x300 + (uint64_t)i, 1000, -1, &pinned[i]);
	for (int i = 0; i < 10; i++)
		make_frag(mem, 0x400 + (uint64_t)i, 1000, -1, &other[i]);
	CHECK_EQ(fcache_fetch(c, pinned, 5, held), 0, "pin 5 fragments over a 3-fragment budget");
	CHECK_EQ(stats(c).bytes, 5000, "pinned bytes count (beyond the budget)");
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 10; i++)
			ok &= touch(c, &other[i]);
	CHECK(ok, "30 other fetches under pressure");
	ok = 1;
	for (int i = 0; i < 5; i++)
		ok &= buf_ok(held[i], &pinned[i]);
	CHECK(ok, "pinned buffers intact");
	for (int i = 0; i < 5; i++) {
		struct fbuf *b = fcache_lookup(c, pinned[i].id);
		ok &= b == held[i];
		fbuf_put(b);
	}
	CHECK(ok, "pinned entries still cached");
	CHECK_EQ(stats(c).bytes, 5000, "only pinned bytes left over budget");
	for (int i = 0; i < 5; i++)
		fbuf_put(held[i]);
	CHECK(stats(c).bytes <= 3000, "within budget once unpinned (%llu)",
	      (unsigned long long)stats(c).bytes);
	fcache_free(c);
}

static void test_drop(struct frag_backend *mem)
{
	struct fcache *c = fcache_new(0);
	struct frag_ref refs[3];
	struct fbuf *out[3];

	for (int i = 0; i < 2; i++)
		make_frag(mem, 0x500 + (uint64_t)i, 1000, -1, &refs[i]);
	refs[2] = refs[0];   /* the same id twice in one call */
	CHECK_EQ(fcache_fetch(c, refs, 3, out), 0, "fetch with a repeated id");
	CHECK(out[0] == out[2] && buf_ok(out[2], &refs[0]), "repeated id: one shared buffer");
	CHECK_EQ(stats(c).entries, 2, "repeated id: one entry");
	fcache_drop(c, refs[0].id);
	struct fbuf *gone = fcache_lookup(c, refs[0].id);
	CHECK(gone == NULL, "dropped id is no longer found");
	CHECK(buf_ok(out[0], &refs[0]), "dropped pinned buffer still readable");
	CHECK_EQ(stats(c).entries, 2, "dropped pinned entry lives on");
	fbuf_put(out[0]);
	CHECK(buf_ok(out[2], &refs[0]), "... while its second pin is held");
	fbuf_put(out[2]);
	CHECK(stats(c).entries == 1 && stats(c).bytes == 1000, "freed at its last put");
	fbuf_put(out[1]);
	fcache_drop(c, refs[1].id);
	CHECK(stats(c).entries == 0 && stats(c).bytes == 0, "unpinned entry freed at drop");
	fcache_drop(c, 0xabcdef);
	int ok = touch(c, &refs[0]);
	CHECK(ok, "a dropped id can be fetched again");
	fcache_free(c);
}

/* Fetch REFS, expect RC, and check nothing stays pinned or cached of BAD. */
static void check_failed_fetch(struct fcache *c, const struct frag_ref *refs, size_t n,
			       uint64_t bad, int want, const char *what)
{
	struct fbuf *out[4] = { (void *)1, (void *)1, (void *)1, (void *)1 };
	int nulls = 1;

	CHECK_EQ(fcache_fetch(c, refs, n, out), want, "%s: fetch fails", what);
	for (size_t i = 0; i < n; i++)
		nulls &= out[i] == NULL;
	CHECK(nulls, "%s: every out[i] is NULL", what);
	struct fbuf *b = fcache_lookup(c, bad);
	CHECK(b == NULL, "%s: nothing cached for it", what);
	int empty = empty_after_drop(c, refs, n);
	CHECK(empty, "%s: nothing left pinned", what);
}

static void test_damage(struct frag_backend *mem, struct frag_backend *local)
{
	struct fcache *c = fcache_new(0);
	struct frag_ref refs[3], r;

	log_init("test_fcache", LOG_TO_STDERR, LOG_ERR);
	make_frag(mem, 0x600, 5000, -1, &refs[0]);
	make_frag(mem, 0x601, 5000, 100, &refs[1]);   /* payload byte damaged */
	make_frag(mem, 0x602, 5000, -1, &refs[2]);
	check_failed_fetch(c, refs, 3, 0x601, -EIO, "damaged payload");
	make_frag(local, 0x603, 5000, 20, &refs[1]);  /* header damaged, on disk */
	check_failed_fetch(c, refs, 3, 0x603, -EIO, "damaged header (local)");
	make_frag(mem, 0x604, 5000, -1, &refs[1]);
	r = refs[1];
	refs[1].checksum ^= 1;
	check_failed_fetch(c, refs, 3, 0x604, -EIO, "index checksum differs");
	refs[1] = r;
	refs[1].raw_len -= 1;
	check_failed_fetch(c, refs, 3, 0x604, -EIO, "index raw length differs");
	refs[1] = r;
	refs[1].id = 0x605;                          /* image of 0x604 stored as 0x605 */
	{
		struct frag_get g = { .id = 0x604, .cap = FRAG_HDR_SIZE + r.stored_len };
		g.buf = malloc(g.cap);
		frag_get_many(mem, &g, 1);
		frag_put(mem, 0x605, g.buf, g.cap);
		free(g.buf);
	}
	check_failed_fetch(c, refs, 3, 0x605, -EIO, "image of another id");
	refs[1] = r;
	refs[1].id = 0x6ff;
	check_failed_fetch(c, refs, 3, 0x6ff, -ENOENT, "missing fragment");
	refs[1] = r;
	int ok = touch(c, &refs[1]);
	CHECK(ok, "a good fragment caches");
	refs[1].checksum ^= 1;
	check_failed_fetch(c, refs, 3, 0x999, -EIO, "cached entry contradicts the index");
#ifdef PFS_FAULT_INJECTION
	refs[1] = r;
	fault_arm("alloc", 2, ENOMEM);
	check_failed_fetch(c, refs, 3, 0x999, -ENOMEM, "allocation fault");
	fault_reset();
#endif
	log_init("test_fcache", LOG_TO_STDERR, LOG_INFO);
	fcache_free(c);
}

/* Invariant (6a): an image cache (backend_cached over a memory backend)
 * whose copy is damaged is healed by one more read from the inner backend;
 * a damaged image in the inner backend is EIO and leaves no copy. */
static void test_cached_damage(const char *dir)
{
	struct fcache *c = fcache_new(0);
	struct frag_backend *inner, *cb;
	struct frag_ref good, bad, r;
	struct fbuf *out[1];
	char cdir[4200], path[4300];
	struct stat sb;
	int fd, ok;

	snprintf(cdir, sizeof(cdir), "%s/imgcache", dir);
	backend_mem_open(&inner);
	CHECK_EQ(backend_cached_open(inner, cdir, 1 << 20, &cb), 0, "an image cache over a memory backend");
	make_frag(inner, 0x700, 5000, -1, &good);
	make_frag(inner, 0x701, 5000, 100, &bad);     /* damaged at the source */
	good.backend = bad.backend = cb;
	ok = fcache_fetch(c, &good, 1, out) == 0 && buf_ok(out[0], &good);
	CHECK(ok, "a fetch through the image cache");
	fbuf_put(out[0]);
	fcache_drop(c, good.id);
	snprintf(path, sizeof(path), "%s/00/%016x", cdir, 0x700);
	CHECK_EQ(stat(path, &sb), 0, "... keeps a copy");
	/* damage the copy: one payload byte */
	fd = open(path, O_RDWR);
	ok = fd >= 0 && pwrite(fd, "#", 1, FRAG_HDR_SIZE + 7) == 1;
	close(fd);
	CHECK(ok, "damage the copy in the image cache");
	log_init("test_fcache", LOG_TO_STDERR, LOG_CRIT);
	ok = fcache_fetch(c, &good, 1, out) == 0 && buf_ok(out[0], &good);
	log_init("test_fcache", LOG_TO_STDERR, LOG_ERR);
	CHECK(ok, "a damaged copy is dropped and the image read again from the source: right bytes");
	if (ok)
		fbuf_put(out[0]);
	fcache_drop(c, good.id);
	{
		char want[8];
		fd = open(path, O_RDONLY);
		ok = fd >= 0 && pread(fd, want, 1, FRAG_HDR_SIZE + 7) == 1 && want[0] != '#';
		if (fd >= 0)
			close(fd);
	}
	CHECK(ok, "... and the copy kept now is a good one");
	r = bad;
	log_init("test_fcache", LOG_TO_STDERR, LOG_CRIT);
	check_failed_fetch(c, &r, 1, 0x701, -EIO, "an image damaged at the source, through the image cache");
	log_init("test_fcache", LOG_TO_STDERR, LOG_ERR);
	snprintf(path, sizeof(path), "%s/01/%016x", cdir, 0x701);
	CHECK(stat(path, &sb) < 0 && errno == ENOENT, "... leaves no copy of it in the image cache");
	CHECK_EQ(stats(c).damaged, 1, "one damaged fragment counted (the healed copy is not)");
	fcache_free(c);
	frag_backend_destroy(cb);
}

static void test_backends(struct frag_backend *mem, struct frag_backend *mem2,
			  struct frag_backend *local)
{
	struct fcache *c = fcache_new(0);
	struct frag_ref refs[6];
	struct fbuf *out[6];
	int ok = 1;

	make_frag(mem, 0x700, 3000, -1, &refs[0]);
	make_frag(local, 0x701, 200000, -1, &refs[1]);
	make_frag(mem2, 0x702, 0, -1, &refs[2]);
	make_frag(local, 0x703, 1, -1, &refs[3]);
	make_frag(mem2, 0x704, 7000, -1, &refs[4]);
	refs[5] = refs[1];
	CHECK_EQ(fcache_fetch(c, refs, 6, out), 0, "fetch across 3 backends");
	for (int i = 0; i < 6; i++)
		ok &= buf_ok(out[i], &refs[i]);
	CHECK(ok, "all 6 buffers right (empty fragment included)");
	for (int i = 0; i < 6; i++)
		fbuf_put(out[i]);
	fcache_free(c);
}

/* ---- stress ---- */

#define NFRAG   200
#define NTHREAD 4
#define ITERS   3000

struct stress {
	struct fcache *c;
	struct frag_backend *b;
	struct frag_ref *refs;   /* NFRAG shared fragments */
	int tid;
	long bad;
	struct frag_ref own[64];  /* this thread's own fragments */
	int nown;
};

/* Fetch a random batch, check it, keep it pinned for a while. */
static void stress_step(struct stress *s, uint64_t *st, struct fbuf **held)
{
	struct frag_ref *own = s->own;
	int *nown = &s->nown;
	struct frag_ref batch[8];
	size_t n = 1 + rnd_r(st) % 8;
	uint64_t op = rnd_r(st) % 100;

	for (size_t i = 0; i < n; i++)
		batch[i] = s->refs[rnd_r(st) % NFRAG];
	if (op < 5 && *nown < 64) {   /* a new fragment of this thread */
		uint64_t id = ((uint64_t)(s->tid + 1) << 32) | (uint64_t)*nown;
		s->bad += make_frag(s->b, id, 1 + rnd_r(st) % 20000, -1, &own[*nown]) != 0;
		(*nown)++;
	}
	if (*nown && op < 30)
		batch[0] = own[rnd_r(st) % (uint64_t)*nown];
	if (op >= 95)
		fcache_drop(s->c, batch[0].id);
	if (fcache_fetch(s->c, batch, n, held) != 0) {
		s->bad++;
		return;
	}
	for (size_t i = 0; i < n; i++)
		s->bad += !buf_ok(held[i], &batch[i]);
}

static void *stress_main(void *arg)
{
	struct stress *s = arg;
	uint64_t st = seed + (uint64_t)s->tid * 7919;
	struct fbuf *held[3][8] = { { 0 } };

	for (int it = 0; it < ITERS; it++) {
		struct fbuf **slot = held[it % 3];
		for (int i = 0; i < 8; i++) {
			fbuf_put(slot[i]);
			slot[i] = NULL;
		}
		stress_step(s, &st, slot);
	}
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 8; i++)
			fbuf_put(held[k][i]);
	return NULL;
}

static void test_stress(void)
{
	struct frag_backend *b = NULL;
	struct frag_ref *refs = calloc(NFRAG, sizeof(*refs));
	static struct stress s[NTHREAD];
	int empty = 1;
	pthread_t th[NTHREAD];
	uint64_t st = seed, total = 0;
	struct fcache *c;
	long bad = 0;

	backend_mem_open(&b);
	for (int i = 0; i < NFRAG; i++) {
		make_frag(b, 0x10000 + (uint64_t)i, 100 + rnd_r(&st) % 20000, -1, &refs[i]);
		total += refs[i].raw_len;
	}
	c = fcache_new(total / 4);
	for (int i = 0; i < NTHREAD; i++) {
		s[i] = (struct stress){ .c = c, .b = b, .refs = refs, .tid = i };
		pthread_create(&th[i], NULL, stress_main, &s[i]);
	}
	for (int i = 0; i < NTHREAD; i++) {
		pthread_join(th[i], NULL);
		bad += s[i].bad;
	}
	struct fcache_stats fs = stats(c);
	CHECK_EQ(bad, 0, "stress: %d threads x %d fetches, every buffer right", NTHREAD, ITERS);
	CHECK(fs.bytes <= fs.budget, "stress: within budget at rest (%llu of %llu)",
	      (unsigned long long)fs.bytes, (unsigned long long)fs.budget);
	CHECK(fs.hits > 0 && fs.misses > 0 && fs.evictions > 0,
	      "stress: hits %llu, misses %llu, evictions %llu", (unsigned long long)fs.hits,
	      (unsigned long long)fs.misses, (unsigned long long)fs.evictions);
	for (int i = 0; i < NTHREAD; i++)
		(void)empty_after_drop(c, s[i].own, (size_t)s[i].nown);
	empty &= empty_after_drop(c, refs, NFRAG);
	CHECK(empty, "stress: nothing left pinned (all %llu entries droppable)",
	      (unsigned long long)fs.entries);
	fcache_free(c);
	frag_backend_destroy(b);
	free(refs);
}


/* ---- a slow, counting backend (module edge: wraps the memory backend) ---- */

struct slow {
	struct frag_backend base;
	struct frag_backend *inner;
	int delay_ms;
	int calls, busy, max_busy;   /* atomic */
	int per_id[64];              /* atomic: reads of id 0x800 + k */
};

static int slow_put(struct frag_backend *b, uint64_t id, const void *d, size_t l)
{
	return frag_put(((struct slow *)b)->inner, id, d, l);
}
static int slow_sync(struct frag_backend *b, const uint64_t *ids, size_t n)
{
	return frag_sync(((struct slow *)b)->inner, ids, n);
}
static int slow_get_many(struct frag_backend *b, struct frag_get *r, size_t n)
{
	struct slow *s = (struct slow *)b;
	int busy = __atomic_add_fetch(&s->busy, 1, __ATOMIC_SEQ_CST), m;

	while ((m = __atomic_load_n(&s->max_busy, __ATOMIC_SEQ_CST)) < busy &&
	       !__atomic_compare_exchange_n(&s->max_busy, &m, busy, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	__atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < n; i++)
		if (r[i].id >= 0x800 && r[i].id < 0x800 + 64)
			__atomic_add_fetch(&s->per_id[r[i].id - 0x800], 1, __ATOMIC_SEQ_CST);
	usleep((useconds_t)s->delay_ms * 1000);
	int rc = frag_get_many(s->inner, r, n);
	__atomic_sub_fetch(&s->busy, 1, __ATOMIC_SEQ_CST);
	return rc;
}
static int slow_del(struct frag_backend *b, uint64_t id) { return frag_del(((struct slow *)b)->inner, id); }
static int slow_list(struct frag_backend *b, int (*cb)(void *, uint64_t), void *a)
{
	return frag_list(((struct slow *)b)->inner, cb, a);
}
static void slow_destroy(struct frag_backend *b) { (void)b; }
static const struct frag_backend_ops slow_ops = {
	"slow", slow_put, slow_sync, slow_get_many, slow_del, slow_list, slow_destroy, NULL, NULL, NULL, NULL, NULL
};

static void slow_init(struct slow *s, struct frag_backend *inner, int delay_ms)
{
	memset(s, 0, sizeof(*s));
	s->base.ops = &slow_ops;
	s->inner = inner;
	s->delay_ms = delay_ms;
}

static void test_parallel(struct frag_backend *mem)
{
	struct pool *pl = pool_new(2);
	struct fcache *c = fcache_new(0);
	struct frag_ref refs[8];
	struct fbuf *out[8];
	struct slow sb;
	int ok = 1;

	slow_init(&sb, mem, 0);
	fcache_configure(c, pl, 0);
	for (int i = 0; i < 8; i++)
		make_frag(&sb.base, 0x800 + (uint64_t)i, 50000, -1, &refs[i]);
	CHECK_EQ(fcache_fetch(c, refs, 8, out), 0, "pool: fetch 8 misses");
	for (int i = 0; i < 8; i++)
		ok &= buf_ok(out[i], &refs[i]);
	CHECK(ok, "pool: the 8 buffers hold the right bytes");
	CHECK_EQ(sb.calls, 1, "pool: the 8 misses were one get_many (one I/O submission)");
	CHECK_EQ(stats(c).batches, 1, "pool: batches counter is 1");
	CHECK_EQ(stats(c).parallel, 8, "pool: the 8 were decoded as pool jobs");
	for (int i = 0; i < 8; i++)
		fbuf_put(out[i]);
	CHECK_EQ(stats(c).inflight_fg, 0, "pool: nothing in flight afterwards");
	fcache_free(c);
	pool_free(pl);
}

/* ---- per-arrival decoding (fcache.c (8), backend.h get_many_cb) ---- */

/* A backend that reads the whole batch from INNER, then tells the images
 * one by one; after telling the first it waits (up to 5 s) until the
 * cache shows that image READY — which only a decode that started before
 * the batch ended can do. */
struct trickle {
	struct frag_backend base;
	struct frag_backend *inner;
	struct fcache *c;
	int early;                   /* image 0 was READY while the batch ran */
	int calls;
};

static int tr_put(struct frag_backend *b, uint64_t id, const void *d, size_t l)
{
	return frag_put(((struct trickle *)b)->inner, id, d, l);
}
static int tr_sync(struct frag_backend *b, const uint64_t *ids, size_t n)
{
	return frag_sync(((struct trickle *)b)->inner, ids, n);
}
static int tr_get_many(struct frag_backend *b, struct frag_get *r, size_t n)
{
	return frag_get_many(((struct trickle *)b)->inner, r, n);
}
static int tr_get_many_cb(struct frag_backend *b, struct frag_get *r, size_t n,
			  void (*done)(void *, size_t), void *arg)
{
	struct trickle *t = (struct trickle *)b;
	int rc = frag_get_many(t->inner, r, n);

	t->calls++;
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		done(arg, i);
		if (i == 0 && n > 1) {
			for (int k = 0; k < 500 && !t->early; k++) {
				struct fbuf *f = fcache_lookup(t->c, r[0].id);
				t->early = f != NULL;
				fbuf_put(f);
				if (!t->early)
					usleep(10000);
			}
		}
	}
	return 0;
}
static int tr_del(struct frag_backend *b, uint64_t id) { return frag_del(((struct trickle *)b)->inner, id); }
static int tr_list(struct frag_backend *b, int (*cb)(void *, uint64_t), void *a)
{
	return frag_list(((struct trickle *)b)->inner, cb, a);
}
static void tr_destroy(struct frag_backend *b) { (void)b; }
static const struct frag_backend_ops trickle_ops = {
	.name = "trickle", .put = tr_put, .sync = tr_sync, .get_many = tr_get_many,
	.del = tr_del, .list = tr_list, .destroy = tr_destroy, .get_many_cb = tr_get_many_cb,
};

static void test_arrivals(struct frag_backend *mem)
{
	struct pool *pl = pool_new(2);
	struct fcache *c = fcache_new(0);
	struct trickle t = { .base.ops = &trickle_ops, .inner = mem, .c = c };
	struct frag_ref refs[5];
	struct fbuf *out[5];
	int ok = 1;

	fcache_configure(c, pl, 0);
	for (int i = 0; i < 5; i++)     /* the middle one damaged */
		ok &= make_frag(&t.base, 0x900 + (uint64_t)i, 300000, i == 2 ? 5000 : -1, &refs[i]) == 0;
	CHECK(ok, "arrivals: 5 images stored, the middle one damaged");
	CHECK_EQ(fcache_fetch(c, refs, 5, out), -EIO, "arrivals: the batch fails with the damaged one's EIO");
	CHECK_EQ(t.calls, 1, "arrivals: one batched read");
	CHECK(t.early, "arrivals: the first image was decoded (READY) before the batch ended");
	ok = 1;
	for (int i = 0; i < 5; i++) {
		struct fbuf *f = fcache_lookup(c, refs[i].id);
		ok &= i == 2 ? f == NULL : buf_ok(f, &refs[i]);
		fbuf_put(f);
	}
	CHECK(ok, "arrivals: the 4 good images arrived with the right bytes, the damaged one is not cached");
	CHECK_EQ(stats(c).entries, 4, "arrivals: exactly 4 entries live (the failed one freed)");
	CHECK_EQ(stats(c).bytes, 4 * (uint64_t)refs[0].raw_len, "arrivals: their bytes counted, no more");
	CHECK_EQ(stats(c).damaged, 1, "arrivals: one damaged image counted");
	CHECK_EQ(stats(c).inflight_fg, 0, "arrivals: nothing in flight afterwards");
	CHECK(empty_after_drop(c, refs, 5), "arrivals: nothing pinned (no buffer left behind)");
	fcache_free(c);
	pool_free(pl);
}

/* The local backend's get_many_cb: DONE once per request, each already
 * finished when told (a missing image in the middle included). */
struct told { struct frag_get *r; int n[8]; int err_at[8]; size_t len_at[8]; };

static void tell(void *arg, size_t i)
{
	struct told *t = arg;

	t->n[i]++;
	t->err_at[i] = t->r[i].err;
	t->len_at[i] = t->r[i].len;
}

static void test_local_cb(struct frag_backend *local)
{
	struct frag_ref refs[5];
	struct frag_get g[5];
	struct told t = { .r = g };
	int ok = 1;

	for (int i = 0; i < 5; i++)
		if (i != 2)
			ok &= make_frag(local, 0xa00 + (uint64_t)i, 200000, -1, &refs[i]) == 0;
	refs[2] = refs[1];
	refs[2].id = 0xa02;             /* never stored */
	CHECK(ok, "local cb: 4 images stored, the middle id missing");
	for (int i = 0; i < 5; i++)
		g[i] = (struct frag_get){ .id = refs[i].id, .cap = FRAG_HDR_SIZE + refs[i].stored_len,
					  .buf = malloc(FRAG_HDR_SIZE + refs[i].stored_len) };
	CHECK_EQ(frag_get_many_cb(local, g, 5, tell, &t), 0, "local cb: the batch ran");
	ok = 1;
	for (int i = 0; i < 5; i++)
		ok &= t.n[i] == 1 && t.err_at[i] == g[i].err && t.len_at[i] == g[i].len;
	CHECK(ok, "local cb: DONE once per request, each finished when told");
	CHECK(g[2].err == -ENOENT && g[0].err == 0 && g[4].err == 0 && g[4].len == g[4].cap,
	      "local cb: the missing one is -ENOENT, the others read whole");
	for (int i = 0; i < 5; i++)
		free(g[i].buf);
}

struct racer { struct fcache *c; struct frag_ref ref; int rc; int ok; };

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct fbuf *b = NULL;

	r->rc = fcache_fetch(r->c, &r->ref, 1, &b);
	r->ok = r->rc == 0 && buf_ok(b, &r->ref);
	fbuf_put(b);
	return NULL;
}

static void test_single_load(struct frag_backend *mem)
{
	struct fcache *c = fcache_new(0);
	struct racer r[4];
	pthread_t t[4];
	struct slow sb;
	int ok = 1;

	slow_init(&sb, mem, 100);
	make_frag(&sb.base, 0x820, 30000, -1, &r[0].ref);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ .c = c, .ref = r[0].ref };
		pthread_create(&t[i], NULL, racer_main, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok &= r[i].ok;
	}
	CHECK(ok, "4 threads missing one fragment at once all get its bytes");
	CHECK_EQ(sb.per_id[0x20], 1, "... and it was read from the backend once");
	CHECK(stats(c).waits >= 1, "... the others waited for that load (%llu waits)",
	      (unsigned long long)stats(c).waits);
	fcache_free(c);

	/* a damaged fragment: the waiters see the failure and fail too */
	c = fcache_new(0);
	log_init("test_fcache", LOG_TO_STDERR, LOG_CRIT);
	make_frag(&sb.base, 0x821, 30000, 500, &r[0].ref);
	for (int i = 0; i < 3; i++) {
		r[i] = (struct racer){ .c = c, .ref = r[0].ref };
		pthread_create(&t[i], NULL, racer_main, &r[i]);
	}
	ok = 1;
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ok &= r[i].rc == -EIO;
	}
	log_init("test_fcache", LOG_TO_STDERR, LOG_INFO);
	CHECK(ok, "3 threads racing on a damaged fragment all get -EIO");
	CHECK(stats(c).entries == 0 && stats(c).bytes == 0, "nothing of it stays in the cache");
	fcache_free(c);
}

static int dones;
static void count_done(void *arg) { __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST); }

/* Wait up to 5 s for the read-ahead of N fragments to finish. */
static int wait_prefetched(struct fcache *c, uint64_t n)
{
	for (int i = 0; i < 500; i++) {
		struct fcache_stats s = stats(c);
		if (s.prefetched >= n && s.inflight_bg == 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void test_prefetch(struct frag_backend *mem)
{
	struct pool *pl = pool_new(2);
	struct fcache *c = fcache_new(0);
	struct frag_ref refs[6];
	struct fbuf *out[6];
	struct slow sb;
	int ok = 1;

	slow_init(&sb, mem, 0);
	fcache_configure(c, pl, 0);
	for (int i = 0; i < 6; i++)
		make_frag(&sb.base, 0x830 + (uint64_t)i, 40000, -1, &refs[i]);
	CHECK_EQ(fcache_prefetch(c, refs, 5, count_done, &dones), 5, "prefetch queues 5 fragments");
	CHECK(wait_prefetched(c, 5), "the 5 were read ahead in the background");
	CHECK_EQ(sb.calls, 1, "read-ahead of 5 was one get_many");
	CHECK_EQ(fcache_prefetch(c, refs, 5, count_done, &dones), 0, "prefetch of cached fragments queues nothing");
	uint64_t misses = stats(c).misses;
	CHECK_EQ(fcache_fetch(c, refs, 6, out), 0, "fetch after read-ahead");
	for (int i = 0; i < 6; i++)
		ok &= buf_ok(out[i], &refs[i]);
	CHECK(ok, "read-ahead bytes are right");
	CHECK_EQ(stats(c).misses - misses, 1, "only the 6th (not read ahead) missed");
	for (int i = 0; i < 6; i++)
		fbuf_put(out[i]);
	fcache_free(c);

	/* a budget that fits one fragment at a time */
	c = fcache_new(0);
	fcache_configure(c, pl, 100000);
	for (int i = 0; i < 6; i++)
		fcache_drop(c, refs[i].id);
	sb.delay_ms = 200;
	size_t q = fcache_prefetch(c, refs, 6, count_done, &dones);
	CHECK(q >= 1 && q <= 2, "a 100 kB read-ahead budget takes 1-2 fragments of ~40 kB (%zu)", q);
	CHECK(stats(c).prefetch_skipped >= 4, "the rest were skipped (%llu)",
	      (unsigned long long)stats(c).prefetch_skipped);
	CHECK(stats(c).inflight_bg <= 100000, "read-ahead in flight within its budget");
	CHECK(wait_prefetched(c, q), "the queued ones finish");
	fcache_free(c);
	pool_free(pl);

	/* pool freed before queued read-ahead ran: cancelled, budget given back */
	pl = pool_new(1);
	c = fcache_new(0);
	fcache_configure(c, pl, 0);
	sb.delay_ms = 100;
	for (int i = 0; i < 6; i++)
		make_frag(&sb.base, 0x840 + (uint64_t)i, 1000, -1, &refs[i]);
	size_t q1 = fcache_prefetch(c, refs, 3, count_done, &dones), q2 = fcache_prefetch(c, refs + 3, 3, count_done, &dones);
	pool_free(pl);
	CHECK(q1 == 3 && q2 == 3, "two read-ahead jobs queued on one worker");
	CHECK_EQ(stats(c).inflight_bg, 0, "after pool_free every read-ahead byte is given back");
	CHECK_EQ(dones, 5, "every prefetch call's DONE ran exactly once (5 calls)");
	CHECK(empty_after_drop(c, refs, 6), "nothing left pinned by cancelled read-ahead");
	fcache_free(c);
}


static void test_fg_budget(struct frag_backend *mem)
{
	struct fcache *c = fcache_new(0);
	struct racer r[3];
	pthread_t t[3];
	struct slow sb;
	int ok = 1;

	slow_init(&sb, mem, 100);
	fcache_configure(c, NULL, 150000);   /* one ~100 kB load fits, two do not */
	for (int i = 0; i < 3; i++) {
		make_frag(&sb.base, 0x850 + (uint64_t)i, 60000, -1, &r[i].ref);
		r[i].c = c;
	}
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, racer_main, &r[i]);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ok &= r[i].ok;
	}
	CHECK(ok, "3 loads that do not fit the in-flight budget together all complete");
	CHECK_EQ(sb.max_busy, 1, "they never ran at the same time (backend concurrency %d)", sb.max_busy);
	CHECK_EQ(stats(c).inflight_fg, 0, "foreground in-flight bytes back to 0");
	fcache_free(c);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	return remove(p);
}

int main(void)
{
	struct frag_backend *mem = NULL, *mem2 = NULL, *local = NULL;
	char dir[] = "/tmp/test_fcache.XXXXXX";

	seed_init();
	if (!mkdtemp(dir) || backend_mem_open(&mem) || backend_mem_open(&mem2) ||
	    backend_local_open(dir, &local)) {
		printf("Bail out! setup failed\n");
		return 1;
	}
	test_hits(mem);
	test_budget(mem);
	test_pinned(mem);
	test_drop(mem);
	test_damage(mem, local);
	test_cached_damage(dir);
	test_backends(mem, mem2, local);
	test_stress();
	test_parallel(mem);
	test_arrivals(mem);
	test_local_cb(local);
	test_single_load(mem);
	test_prefetch(mem);
	test_fg_budget(mem);
	frag_backend_destroy(mem);
	frag_backend_destroy(mem2);
	frag_backend_destroy(local);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
