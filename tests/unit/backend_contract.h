/* backend_contract — the contract every fragment backend keeps
 * (cache/backend.h (1)-(4)), as one set of checks that test_backend runs
 * against the local backend (io_uring and pread) and the memory backend,
 * and test_backend_rados against the RADOS backend: put, get_many batches
 * with a missing id, -EEXIST, a too-large cap, del, list, four threads at
 * once. Images follow from their ids (image_len/image_fill: 1 in 16 is
 * ~3 MiB); random ids come from a logged seed (env TEST_SEED).
 * Header-only, for one test binary each; include after tap.h. */
#ifndef PFS_BACKEND_CONTRACT_H
#define PFS_BACKEND_CONTRACT_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/backend.h"
#include "tests/unit/tap.h"

static uint64_t rng_state;

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
	return mix(rng_state += 0x9e3779b97f4a7c15ull);
}

static void seed_init(void)
{
	const char *s = getenv("TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);

	printf("# seed %llu\n", (unsigned long long)seed);
	rng_state = seed;
}

/* The image of ID: its length and bytes follow from the id. */
static size_t image_len(uint64_t id)
{
	uint64_t h = mix(id);

	return h % 16 == 0 ? 3 * 1024 * 1024 + h % 1000 : 1 + h % 5000;
}

static void image_fill(uint64_t id, unsigned char *p, size_t n)
{
	uint64_t s = id;

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			s = mix(s + i);
		p[i] = (unsigned char)(s >> (8 * (i % 8)));
	}
}

static int put_image(struct frag_backend *b, uint64_t id)
{
	size_t n = image_len(id);
	unsigned char *p = malloc(n);
	int rc;

	image_fill(id, p, n);
	rc = frag_put(b, id, p, n);
	free(p);
	return rc;
}

/* Put ID again (DATA/LEN, or its own image when DATA is NULL): contract
 * (1) says -EEXIST, from put() or, for an asynchronous backend, from the
 * sync() naming the id. @return what the backend said. */
static int put_dup(struct frag_backend *b, uint64_t id, const void *data, size_t len)
{
	int rc = data ? frag_put(b, id, data, len) : put_image(b, id);

	return rc ? rc : frag_sync(b, &id, 1);
}

/* @return 1 when R holds the whole image of its id. */
static int image_ok(const struct frag_get *r)
{
	unsigned char *want;
	int ok;

	if (r->err || r->len != image_len(r->id))
		return 0;
	want = malloc(r->len);
	image_fill(r->id, want, r->len);
	ok = memcmp(want, r->buf, r->len) == 0;
	free(want);
	return ok;
}

static void reqs_alloc(struct frag_get *reqs, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		reqs[i].id = ids[i];
		reqs[i].cap = image_len(ids[i]);
		reqs[i].buf = malloc(reqs[i].cap);
		reqs[i].err = 12345;
		reqs[i].len = 777;
	}
}

static void reqs_free(struct frag_get *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(reqs[i].buf);
}

/* ---- list helpers ---- */

struct seen { const uint64_t *ids; size_t n; size_t found, extra, calls; };

static int seen_cb(void *arg, uint64_t id)
{
	struct seen *s = arg;
	size_t i;

	s->calls++;
	for (i = 0; i < s->n && s->ids[i] != id; i++)
		;
	if (i < s->n)
		s->found++;
	else
		s->extra++;
	return 0;
}

static int stop_cb(void *arg, uint64_t id)
{
	(void)id;
	return ++*(int *)arg == 3 ? 99 : 0;
}

/* ---- the common contract ---- */

#define NIDS 300   /* more than one io_uring submission's worth (256) */

static void gen_ids(uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ids[i] = i < 8 ? (rnd() & ~0xffull) | 0x5a : rnd() | 1;  /* a crowded fan-out dir */
}

static void check_batch(struct frag_backend *b, const char *name, const uint64_t *ids,
			size_t n)
{
	struct frag_get *reqs = calloc(n + 1, sizeof(*reqs));
	uint64_t *all = malloc((n + 1) * sizeof(*all));
	size_t good = 0;

	memcpy(all, ids, n * sizeof(*ids));
	all[n] = 0x0123456789abcdefull;   /* never put */
	reqs_alloc(reqs, all, n + 1);
	CHECK_EQ(frag_get_many(b, reqs, n + 1), 0, "%s: get_many of %zu ids submitted", name, n + 1);
	for (size_t i = 0; i < n; i++)
		good += image_ok(&reqs[i]);
	CHECK_EQ(good, n, "%s: every image read back whole", name);
	CHECK_EQ(reqs[n].err, -ENOENT, "%s: missing id gives -ENOENT", name);
	reqs_free(reqs, n + 1);
	free(reqs);
	free(all);
}

static void check_short(struct frag_backend *b, const char *name, uint64_t id)
{
	struct frag_get r = { .id = id, .cap = image_len(id) + 10 };

	r.buf = malloc(r.cap);
	CHECK_EQ(frag_get_many(b, &r, 1), 0, "%s: get_many with a too-large cap", name);
	CHECK_EQ(r.err, -EIO, "%s: image shorter than cap gives -EIO", name);
	CHECK_EQ(r.len, image_len(id), "%s: len says what was there", name);
	free(r.buf);
	CHECK_EQ(frag_get_many(b, NULL, 0), 0, "%s: empty batch", name);
}

/* cap 0: whether an image exists and its size, nothing read. */
static void check_sizes(struct frag_backend *b, const char *name, uint64_t id, uint64_t big)
{
	struct frag_get r[3] = { { .id = id, .len = 77 }, { .id = big, .len = 77 },
				 { .id = 0x0123456789abcdefull, .len = 77 } };
	char where[128];

	CHECK_EQ(frag_get_many(b, r, 3), 0, "%s: get_many with cap 0", name);
	CHECK(r[0].err == 0 && r[0].len == image_len(id) && r[1].err == 0 && r[1].len == image_len(big),
	      "%s: cap 0 gives each image's size (%zu, %zu)", name, r[0].len, r[1].len);
	CHECK_EQ(r[2].err, -ENOENT, "%s: cap 0 of a missing id gives -ENOENT", name);
	frag_where(b, 0xab, where, sizeof(where));
	CHECK(strstr(where, "00000000000000ab") != NULL, "%s: where names the id: %s", name, where);
}

static void check_list(struct frag_backend *b, const char *name, const uint64_t *ids,
		       size_t n)
{
	struct seen s = { ids, n, 0, 0, 0 };
	int count = 0;

	CHECK_EQ(frag_list(b, seen_cb, &s), 0, "%s: list", name);
	CHECK(s.found == n && s.extra == 0, "%s: list gives exactly the %zu ids (%zu, %zu extra)",
	      name, n, s.found, s.extra);
	CHECK_EQ(frag_list(b, stop_cb, &count), 99, "%s: list stops at the callback's value", name);
	CHECK_EQ(count, 3, "%s: ... after the 3rd id", name);
}

static void test_contract(struct frag_backend *b, const char *name)
{
	uint64_t *ids = malloc(NIDS * sizeof(*ids));
	size_t bad = 0;

	gen_ids(ids, NIDS);
	for (size_t i = 0; i < NIDS; i++)
		bad += put_image(b, ids[i]) != 0;
	CHECK_EQ(bad, 0, "%s: put %d images", name, NIDS);
	CHECK_EQ(frag_sync(b, ids, NIDS), 0, "%s: sync of the %d ids", name, NIDS);
	CHECK_EQ(frag_sync(b, ids, 0), 0, "%s: sync of nothing", name);
	CHECK_EQ(put_dup(b, ids[3], NULL, 0), -EEXIST, "%s: duplicate put gives -EEXIST", name);
	CHECK_EQ(put_dup(b, ids[4], "x", 1), -EEXIST, "%s: duplicate put with other bytes", name);
	check_batch(b, name, ids, NIDS);
	check_short(b, name, ids[5]);
	{
		size_t k = 0;
		while (k < NIDS - 1 && image_len(ids[k]) < 1000000)
			k++;           /* a big one (1 in 16), when there is one */
		check_sizes(b, name, ids[6], ids[k]);
	}
	CHECK_EQ(frag_del(b, ids[NIDS - 1]), 0, "%s: del", name);
	CHECK_EQ(frag_del(b, ids[NIDS - 1]), -ENOENT, "%s: del again gives -ENOENT", name);
	check_batch(b, name, ids, NIDS - 1);   /* the deleted one is the missing one now */
	check_list(b, name, ids, NIDS - 1);
	CHECK_EQ(frag_sync(b, ids, 2), 0, "%s: sync of 2 ids (fsync one by one)", name);
	free(ids);
}

/* ---- threads ---- */

struct thr { struct frag_backend *b; uint64_t base; int bad; };

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	uint64_t ids[40];
	struct frag_get reqs[40];

	for (int i = 0; i < 40; i++) {
		ids[i] = t->base + (uint64_t)i * 7;
		t->bad += put_image(t->b, ids[i]) != 0;
	}
	for (int round = 0; round < 5; round++) {
		reqs_alloc(reqs, ids, 40);
		t->bad += frag_get_many(t->b, reqs, 40) != 0;
		for (int i = 0; i < 40; i++)
			t->bad += !image_ok(&reqs[i]);
		reqs_free(reqs, 40);
	}
	return NULL;
}

static void test_threads(struct frag_backend *b, const char *name)
{
	pthread_t th[4];
	struct thr t[4];
	int bad = 0;

	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ b, ((uint64_t)(i + 1) << 40) | (rnd() & 0xffffff00ull), 0 };
		pthread_create(&th[i], NULL, thr_main, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	CHECK_EQ(bad, 0, "%s: 4 threads putting and reading concurrently", name);
}

/* The whole contract on B, which holds no image yet. */
static inline void contract_run(struct frag_backend *b, const char *name)
{
	test_contract(b, name);
	test_threads(b, name);
}

#endif
