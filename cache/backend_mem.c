/* backend_mem — fragment images kept in RAM: a hash map id -> malloc'd
 * copy behind a read-write lock. Same contract as every backend
 * (backend.h); "durable" means until destroy.
 *
 * Invariants:
 *  (1) An id appears at most once in the map; its bytes never change.
 *  (2) count is the number of entries; nbuckets is a power of two.
 */
#include "cache/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/fault.h"

struct mem_entry {
	struct mem_entry *next;   /* bucket chain */
	uint64_t id;
	size_t len;
	unsigned char data[];
};

struct mem_backend {
	struct frag_backend base;   /* first: the public handle */
	pthread_rwlock_t lock;
	struct mem_entry **buckets; /* protected by lock */
	size_t nbuckets;            /* protected by lock */
	size_t count;               /* protected by lock */
};

static struct mem_backend *to_mem(struct frag_backend *fb)
{
	return (struct mem_backend *)fb;
}

static size_t bucket_of(uint64_t id, size_t nbuckets)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (size_t)id & (nbuckets - 1);
}

/* Caller holds lock. @return the link pointing at ID's entry (or at the
 * NULL ending its chain). */
static struct mem_entry **find(struct mem_backend *b, uint64_t id)
{
	struct mem_entry **p = &b->buckets[bucket_of(id, b->nbuckets)];

	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

/* Double the table when it is full. Caller holds lock for writing. An
 * allocation failure leaves the table as it is (longer chains). */
static void maybe_grow(struct mem_backend *b)
{
	size_t n = b->nbuckets * 2;
	struct mem_entry **nb;

	if (b->count < b->nbuckets)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct mem_entry *e = b->buckets[i], *next;
		for (; e; e = next) {
			size_t k = bucket_of(e->id, n);
			next = e->next;
			e->next = nb[k];
			nb[k] = e;
		}
	}
	free(b->buckets);
	b->buckets = nb;
	b->nbuckets = n;
}

/* @return 0, -EEXIST (nothing replaced), -ENOMEM, or an injected -errno
 * of fault point "alloc". */
static int mem_put(struct frag_backend *fb, uint64_t id, const void *data, size_t len)
{
	struct mem_backend *b = to_mem(fb);
	struct mem_entry *e, **p;
	int rc = FAULT("alloc");

	if (rc)
		return rc;
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	e->id = id;
	e->len = len;
	if (len)
		memcpy(e->data, data, len);
	pthread_rwlock_wrlock(&b->lock);
	p = find(b, id);
	if (*p) {
		rc = -EEXIST;
	} else {
		e->next = NULL;
		*p = e;
		b->count++;
		maybe_grow(b);
	}
	pthread_rwlock_unlock(&b->lock);
	if (rc)
		free(e);
	return rc;
}

/* Nothing to do: RAM is as durable as this backend gets. @return 0. */
static int mem_sync(struct frag_backend *fb, const uint64_t *ids, size_t n)
{
	(void)fb, (void)ids, (void)n;
	return 0;
}

/* Each request: err 0 and len == cap (cap bytes copied), -ENOENT, or -EIO
 * when the image is shorter than cap (len = bytes copied). @return 0. */
static int mem_get_many(struct frag_backend *fb, struct frag_get *reqs, size_t n)
{
	struct mem_backend *b = to_mem(fb);

	pthread_rwlock_rdlock(&b->lock);
	for (size_t i = 0; i < n; i++) {
		struct frag_get *r = &reqs[i];
		struct mem_entry *e = *find(b, r->id);

		r->len = 0;
		r->err = e ? 0 : -ENOENT;
		if (!e)
			continue;
		if (r->cap == 0) {           /* existence and size only */
			r->len = e->len;
			continue;
		}
		r->len = e->len < r->cap ? e->len : r->cap;
		if (r->len)
			memcpy(r->buf, e->data, r->len);
		if (r->len < r->cap)
			r->err = -EIO;
	}
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

/* @return 0 or -ENOENT. */
static int mem_del(struct frag_backend *fb, uint64_t id)
{
	struct mem_backend *b = to_mem(fb);
	struct mem_entry **p, *e;

	pthread_rwlock_wrlock(&b->lock);
	p = find(b, id);
	e = *p;
	if (e) {
		*p = e->next;
		b->count--;
	}
	pthread_rwlock_unlock(&b->lock);
	free(e);
	return e ? 0 : -ENOENT;
}

/* CB runs without the lock held (it may call into the backend) over a
 * snapshot of the ids. @return 0, CB's non-zero value, or -ENOMEM. */
static int mem_list(struct frag_backend *fb, int (*cb)(void *, uint64_t), void *arg)
{
	struct mem_backend *b = to_mem(fb);
	uint64_t *ids;
	size_t n = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&b->lock);
	ids = malloc((b->count ? b->count : 1) * sizeof(*ids));
	for (size_t i = 0; ids && i < b->nbuckets; i++)
		for (struct mem_entry *e = b->buckets[i]; e; e = e->next)
			ids[n++] = e->id;
	pthread_rwlock_unlock(&b->lock);
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++)
		rc = cb(arg, ids[i]);
	free(ids);
	return rc;
}

static void mem_destroy(struct frag_backend *fb)
{
	struct mem_backend *b = to_mem(fb);

	for (size_t i = 0; b->buckets && i < b->nbuckets; i++) {
		struct mem_entry *e = b->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(b->buckets);
	pthread_rwlock_destroy(&b->lock);
	free(b);
}

static const struct frag_backend_ops mem_ops = {
	.name = "memory",
	.put = mem_put,
	.sync = mem_sync,
	.get_many = mem_get_many,
	.del = mem_del,
	.list = mem_list,
	.destroy = mem_destroy,
};

/* @param[out] out the backend, NULL on failure. @return 0 or -ENOMEM. */
int backend_mem_open(struct frag_backend **out)
{
	struct mem_backend *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (!b)
		return -ENOMEM;
	b->nbuckets = 64;
	b->buckets = calloc(b->nbuckets, sizeof(*b->buckets));
	if (!b->buckets) {
		free(b);
		return -ENOMEM;
	}
	pthread_rwlock_init(&b->lock, NULL);
	b->base.ops = &mem_ops;
	*out = &b->base;
	return 0;
}
