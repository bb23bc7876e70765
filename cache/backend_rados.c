/* backend_rados — fragment images as RADOS objects (librados): one object
 * per image, named by the id in 16 lower-case hex digits, in a namespace
 * of the store's own in one pool. Writes are asynchronous and made
 * durable by waiting for them; reads go out in one batch.
 *
 * Invariants:
 *  (1) put() sends one write operation: an exclusive create and a
 *      write_full of the image, applied by the OSD atomically: an object
 *      that exists is never replaced or modified (-EEXIST), and no object
 *      is ever seen partly written. A failed operation writes nothing,
 *      except one that timed out (-ETIMEDOUT), which may still have been
 *      applied: the id then names an unreferenced image that the store's
 *      sweep removes, as after a crash.
 *  (2) put() returns once the operation is submitted; its entry stays in
 *      the pending table until a sync() that names it (or covers all)
 *      sees it succeed, a del() of its id, or (finished well, waited for
 *      by nobody) a reap when the table passes reap_at entries, which
 *      keeps it bounded for a caller that never syncs. The completion
 *      callback records the result; waiters wait on cond for done.
 *      RADOS completes a write only once it is durable on every replica,
 *      so a put that completed with 0 is durable: sync(ids) returns 0
 *      only when every named id either completed with 0 or, put before
 *      and no longer pending, exists in the cluster. A failed put stays in
 *      the table with its error (sync keeps returning it; put of that id
 *      is -EEXIST) until del() of the id.
 *  (3) An id appears at most once in the pending table; put() refuses an
 *      id that is pending with -EEXIST before sending anything.
 *  (4) get_many() and del() of an id whose put is still in flight wait
 *      for it first (RADOS orders reads after writes only on request), so
 *      a thread reads its own completed puts.
 *  (5) Every operation is bounded by the connection's timeout (OSD ops,
 *      monitor commands: rados_conn.h), so each wait here ends: a dead
 *      OSD fails the operation with -ETIMEDOUT. Errors are librados's
 *      -errno as they come (ENOSPC stays ENOSPC: writes carry FULL_TRY, so
 *      a full cluster answers -ENOSPC/-EDQUOT instead of blocking them;
 *      removes carry FULL_FORCE, so space can be freed on a full cluster).
 *  (6) An entry is freed when its last reference goes: the table holds
 *      one while it is linked, the write operation one until its
 *      callback ran, each waiter one while it waits. Its completion and
 *      write operation are released with it, after done.
 * Lock order: lock is a leaf (no librados call blocks while it is held;
 * the completion callback takes it).
 */
#include "cache/backend.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/fault.h"
#include "cache/log.h"
#include "cache/rados_conn.h"

#define OID_LEN    17      /* 16 hex digits and the NUL */
#define REAP_MIN   1024    /* put() drops finished entries past this many */

/* One put() not yet covered by a successful sync (invariant 2). */
struct pput {
	struct pput *next;          /* protected by lock: hash chain */
	struct rados_backend *b;    /* immutable */
	uint64_t id;                /* immutable */
	rados_completion_t c;       /* immutable; released with the entry */
	rados_write_op_t op;        /* immutable; released with the entry */
	unsigned refs;              /* protected by lock (invariant 6) */
	int linked;                 /* protected by lock: in the table */
	int done;                   /* protected by lock: rc is the result */
	int rc;                     /* protected by lock */
};

struct rados_backend {
	struct frag_backend base;   /* first: the public handle */
	struct rconn *conn;         /* immutable: one reference */
	rados_ioctx_t io;           /* immutable; thread-safe */
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* an entry became done */
	struct pput **buckets;      /* protected by lock */
	size_t nbuckets;            /* protected by lock: a power of two */
	size_t count;               /* protected by lock: linked entries */
	size_t reap_at;             /* protected by lock */
	char where[200];            /* immutable: "POOL/NSPACE", for messages */
};

static struct rados_backend *to_rados(struct frag_backend *fb)
{
	return (struct rados_backend *)fb;
}

static void oid_of(char *buf, uint64_t id)
{
	snprintf(buf, OID_LEN, "%016" PRIx64, id);
}

/* @return 1 and *ID when NAME is an image's name (16 lower-case hex). */
static int id_of(const char *name, uint64_t *id)
{
	uint64_t v = 0;
	int i;

	for (i = 0; name[i]; i++) {
		int c = name[i];
		if (i == 16)
			return 0;
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	if (i != 16)
		return 0;
	*id = v;
	return 1;
}

/* ---- the pending table (caller holds lock) ---- */

static size_t bucket_of(uint64_t id, size_t nbuckets)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (size_t)id & (nbuckets - 1);
}

static struct pput **find(struct rados_backend *b, uint64_t id)
{
	struct pput **p = &b->buckets[bucket_of(id, b->nbuckets)];

	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

/* Double the table when full; an allocation failure keeps it as it is. */
static void maybe_grow(struct rados_backend *b)
{
	size_t n = b->nbuckets * 2;
	struct pput **nb;

	if (b->count < b->nbuckets || !(nb = calloc(n, sizeof(*nb))))
		return;
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct pput *e = b->buckets[i], *next;
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

static void entry_free(struct pput *e)
{
	if (e->c)
		rados_aio_release(e->c);
	if (e->op)
		rados_release_write_op(e->op);
	free(e);
}

/* Drop N references (invariant 6). */
static void unref_n(struct pput *e, unsigned n)
{
	if (e->refs < n)
		abort();
	e->refs -= n;
	if (e->refs == 0)
		entry_free(e);
}

static void unref(struct pput *e)
{
	unref_n(e, 1);
}

/* Take E out of the table. @return the references to drop with it: 1
 * (the table's) when it was linked, else 0. */
static unsigned detach(struct rados_backend *b, struct pput *e)
{
	struct pput **p;

	if (!e->linked)
		return 0;
	p = find(b, e->id);
	if (*p == e)
		*p = e->next;
	e->linked = 0;
	b->count--;
	return 1;
}

/* Wait until E is done (caller holds lock and a reference). @return its rc. */
static int wait_done(struct rados_backend *b, struct pput *e)
{
	while (!e->done)
		pthread_cond_wait(&b->cond, &b->lock);
	return e->rc;
}

/* Drop the entries that finished well and that nobody waits for: a
 * later sync of their ids asks the cluster (invariant 2). Keeps the table
 * bounded for a caller that puts without syncing. */
static void reap(struct rados_backend *b)
{
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct pput **p = &b->buckets[i];
		while (*p) {
			struct pput *e = *p;
			if (e->done && e->rc == 0 && e->refs == 1) {
				*p = e->next;
				e->linked = 0;
				b->count--;
				unref(e);       /* the table's: the last */
			} else {
				p = &e->next;
			}
		}
	}
	b->reap_at = b->count * 2 > REAP_MIN ? b->count * 2 : REAP_MIN;
}

/* ---- put ---- */

/* librados's finisher thread: record the write's result (invariant 2). */
static void put_done(rados_completion_t c, void *arg)
{
	struct pput *e = arg;
	struct rados_backend *b = e->b;
	int rc = rados_aio_get_return_value(c);

	pthread_mutex_lock(&b->lock);
	e->rc = rc;
	e->done = 1;
	pthread_cond_broadcast(&b->cond);
	unref(e);                   /* the operation's reference */
	pthread_mutex_unlock(&b->lock);
}

/* Invariants 1-3. @return 0 when the write was sent (its result comes
 * with the sync that names ID), -EEXIST (ID pending in this backend),
 * -ENOMEM, an injected error (fault point "frag_write"), or librados's
 * -errno when it could not be sent. */
static int rados_put(struct frag_backend *fb, uint64_t id, const void *data, size_t len)
{
	struct rados_backend *b = to_rados(fb);
	char oid[OID_LEN];
	struct pput *e;
	int rc = FAULT("frag_write");

	if (rc)
		return rc;
	if (len > UINT32_MAX)
		return -EFBIG;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->b = b;
	e->id = id;
	e->op = rados_create_write_op();
	if (!e->op || rados_aio_create_completion2(e, put_done, &e->c) < 0) {
		entry_free(e);
		return -ENOMEM;
	}
	/* the write op copies the bytes: DATA is the caller's again on return */
	rados_write_op_create(e->op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_write_full(e->op, data, len);
	oid_of(oid, id);

	pthread_mutex_lock(&b->lock);
	struct pput **p = find(b, id);
	if (*p) {
		pthread_mutex_unlock(&b->lock);
		entry_free(e);
		return -EEXIST;     /* invariant 3 */
	}
	e->refs = 2;                /* the table's and the operation's */
	e->linked = 1;
	e->next = NULL;
	*p = e;
	b->count++;
	maybe_grow(b);
	if (b->count >= b->reap_at)
		reap(b);
	pthread_mutex_unlock(&b->lock);

	rc = rados_aio_write_op_operate(e->op, b->io, e->c, oid, NULL,
					LIBRADOS_OPERATION_FULL_TRY);
	if (rc < 0) {
		/* not sent: no callback will come */
		pthread_mutex_lock(&b->lock);
		e->rc = rc;
		e->done = 1;
		pthread_cond_broadcast(&b->cond);
		unref_n(e, 1 + detach(b, e));   /* and the operation's reference */
		pthread_mutex_unlock(&b->lock);
	}
	return rc < 0 ? rc : 0;
}

/* ---- sync ---- */

/* Ask the cluster whether the N objects IDS exist: all stats in flight at
 * once. @return 0 when all do, else the first error (-ENOENT, ...). */
static int stat_all(struct rados_backend *b, const uint64_t *ids, size_t n)
{
	rados_completion_t *cs;
	uint64_t size;
	time_t mtime;
	int first = 0;

	if (n == 0)
		return 0;
	cs = calloc(n, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char oid[OID_LEN];
		int rc = rados_aio_create_completion2(NULL, NULL, &cs[i]);

		oid_of(oid, ids[i]);
		if (rc == 0)
			rc = rados_aio_stat(b->io, oid, cs[i], &size, &mtime);
		if (rc < 0) {
			if (!first)
				first = rc;
			if (cs[i])
				rados_aio_release(cs[i]);
			cs[i] = NULL;
		}
	}
	/* size and mtime are written by every stat, never read: the same
	 * two variables serve all of them (each write is whole) */
	for (size_t i = 0; i < n; i++) {
		if (!cs[i])
			continue;
		rados_aio_wait_for_complete(cs[i]);
		int rc = rados_aio_get_return_value(cs[i]);
		if (rc < 0 && !first)
			first = rc;
		rados_aio_release(cs[i]);
	}
	free(cs);
	return first;
}

/* sync(NULL, 0): wait for every pending put. */
static int sync_all(struct rados_backend *b)
{
	struct pput **v;
	size_t n = 0;
	int first = 0;

	pthread_mutex_lock(&b->lock);
	v = malloc((b->count ? b->count : 1) * sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&b->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->nbuckets; i++)
		for (struct pput *e = b->buckets[i]; e; e = e->next) {
			e->refs++;
			v[n++] = e;
		}
	for (size_t i = 0; i < n; i++) {
		int rc = wait_done(b, v[i]);
		if (rc && !first)
			first = rc;
		unref_n(v[i], 1 + (rc == 0 ? detach(b, v[i]) : 0));
	}
	pthread_mutex_unlock(&b->lock);
	free(v);
	return first;
}

/* Invariant 2. @return 0 when every named image is durable, else the
 * first failure: the put's own error (-ENOSPC, -EDQUOT, -ETIMEDOUT,
 * -EEXIST when the object existed before, ...), -ENOENT for an id never
 * put, or an injected error (fault point "frag_fsync"). */
static int rados_sync(struct frag_backend *fb, const uint64_t *ids, size_t n)
{
	struct rados_backend *b = to_rados(fb);
	struct pput **v;
	uint64_t *ask;
	size_t nask = 0;
	int first = 0, rc;

	if (ids && n == 0)
		return 0;
	rc = FAULT("frag_fsync");
	if (rc)
		return rc;
	if (!ids)
		return sync_all(b);
	v = calloc(n, sizeof(*v));
	ask = malloc(n * sizeof(*ask));
	if (!v || !ask) {
		free(v);
		free(ask);
		return -ENOMEM;
	}
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < n; i++) {
		struct pput *e = *find(b, ids[i]);
		if (e) {
			e->refs++;
			v[i] = e;
		} else {
			ask[nask++] = ids[i];
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			continue;
		rc = wait_done(b, v[i]);
		if (rc && !first)
			first = rc;
		unref_n(v[i], 1 + (rc == 0 ? detach(b, v[i]) : 0));
	}
	pthread_mutex_unlock(&b->lock);
	rc = stat_all(b, ask, nask);
	if (rc && !first)
		first = rc;
	free(v);
	free(ask);
	return first;
}

/* ---- get_many ---- */

/* Invariant 4: wait for the pending puts of the requested ids. */
static void wait_puts(struct rados_backend *b, const struct frag_get *reqs, size_t n)
{
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < n; i++) {
		struct pput *e = *find(b, reqs[i].id);
		if (!e || e->done)
			continue;
		e->refs++;
		wait_done(b, e);
		unref(e);
	}
	pthread_mutex_unlock(&b->lock);
}

/* Each request: err 0 and len == cap, -ENOENT (no such image), -EIO (the
 * object is shorter than cap; len says how long), -ETIMEDOUT, an injected
 * error (fault point "frag_read", per request), or another -errno. All
 * reads are in flight at once (cap 0 asks whether the object exists, and
 * its size: len).
 * @return 0, or -ENOMEM when nothing could be done (then every request's
 * err is -ENOMEM). */
static int rados_get_many(struct frag_backend *fb, struct frag_get *reqs, size_t n)
{
	struct rados_backend *b = to_rados(fb);
	rados_completion_t *cs;
	uint64_t *size;
	time_t mtime;

	if (n == 0)
		return 0;
	cs = calloc(n, sizeof(*cs) + sizeof(*size));
	size = (uint64_t *)(cs + n);
	if (!cs) {
		for (size_t i = 0; i < n; i++)
			reqs[i].err = -ENOMEM, reqs[i].len = 0;
		return -ENOMEM;
	}
	wait_puts(b, reqs, n);
	for (size_t i = 0; i < n; i++) {
		struct frag_get *r = &reqs[i];
		char oid[OID_LEN];
		int rc = FAULT("frag_read");

		r->len = 0;
		r->err = 0;
		oid_of(oid, r->id);
		if (!rc)
			rc = rados_aio_create_completion2(NULL, NULL, &cs[i]);
		if (!rc)
			rc = r->cap ? rados_aio_read(b->io, oid, cs[i], r->buf, r->cap, 0)
				    : rados_aio_stat(b->io, oid, cs[i], &size[i], &mtime);
		if (rc < 0) {
			r->err = rc;
			if (cs[i])
				rados_aio_release(cs[i]);
			cs[i] = NULL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct frag_get *r = &reqs[i];
		int rc;

		if (!cs[i])
			continue;
		rados_aio_wait_for_complete(cs[i]);
		rc = rados_aio_get_return_value(cs[i]);
		rados_aio_release(cs[i]);
		if (rc < 0) {
			r->err = rc;
		} else if (r->cap) {
			r->len = (size_t)rc;
			r->err = r->len == r->cap ? 0 : -EIO;
		} else {
			r->len = (size_t)size[i];
		}
	}
	free(cs);
	return 0;
}

/* ---- del / list ---- */

/* Invariant 4, then remove the object (FULL_FORCE: invariant 5).
 * @return 0, -ENOENT when absent, or -errno (-ETIMEDOUT, ...). */
static int rados_del(struct frag_backend *fb, uint64_t id)
{
	struct rados_backend *b = to_rados(fb);
	char oid[OID_LEN];
	rados_write_op_t op;
	struct pput *e;
	int rc;

	pthread_mutex_lock(&b->lock);
	e = *find(b, id);
	if (e) {
		e->refs++;
		wait_done(b, e);
		unref_n(e, 1 + detach(b, e));
	}
	pthread_mutex_unlock(&b->lock);
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_remove(op);
	oid_of(oid, id);
	rc = rados_write_op_operate2(op, b->io, oid, NULL, LIBRADOS_OPERATION_FULL_FORCE);
	rados_release_write_op(op);
	return rc;
}

/* Every object of the namespace named like an image, in the cluster's
 * order (an image whose put is still in flight may be missing). CB runs
 * with no lock held. @return 0, CB's non-zero value, or librados's
 * -errno (-ETIMEDOUT, ...). */
static int rados_list(struct frag_backend *fb, int (*cb)(void *, uint64_t), void *arg)
{
	struct rados_backend *b = to_rados(fb);
	rados_list_ctx_t ctx;
	int rc = rados_nobjects_list_open(b->io, &ctx);

	if (rc < 0)
		return rc;
	for (;;) {
		const char *name;
		uint64_t id;

		rc = rados_nobjects_list_next(ctx, &name, NULL, NULL);
		if (rc == -ENOENT) {
			rc = 0;
			break;
		}
		if (rc < 0)
			break;
		if (id_of(name, &id) && (rc = cb(arg, id)) != 0)
			break;
	}
	rados_nobjects_list_close(ctx);
	return rc;
}

/* ---- open / destroy ---- */

/* Wait for every write in flight (each ends within the timeout), free
 * the table, close the I/O context, drop the connection. */
static void rados_destroy(struct frag_backend *fb)
{
	struct rados_backend *b = to_rados(fb);

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; b->buckets && i < b->nbuckets; i++) {
		while (b->buckets[i]) {
			struct pput *e = b->buckets[i];
			e->refs++;
			wait_done(b, e);
			unref_n(e, 1 + detach(b, e));
		}
	}
	pthread_mutex_unlock(&b->lock);
	free(b->buckets);
	if (b->io)
		rados_ioctx_destroy(b->io);
	rconn_put(b->conn);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static void rados_where(struct frag_backend *fb, uint64_t id, char *buf, size_t cap)
{
	snprintf(buf, cap, "RADOS object %s/%016" PRIx64, to_rados(fb)->where, id);
}

static const struct frag_backend_ops rados_ops = {
	.where = rados_where,
	.name = "rados",
	.put = rados_put,
	.sync = rados_sync,
	.get_many = rados_get_many,
	.del = rados_del,
	.list = rados_list,
	.destroy = rados_destroy,
};

int backend_rados_open_conn(struct rconn *conn, const char *pool, const char *nspace,
			    struct frag_backend **out)
{
	struct rados_backend *b;
	int rc;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->base.ops = &rados_ops;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->conn = rconn_get(conn);
	b->nbuckets = 64;
	b->reap_at = REAP_MIN;
	b->buckets = calloc(b->nbuckets, sizeof(*b->buckets));
	if (!b->buckets) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = rconn_ioctx(conn, pool, nspace, &b->io);
	if (rc)
		goto fail;
	snprintf(b->where, sizeof(b->where), "%s/%s", pool, nspace);
	*out = &b->base;
	return 0;
fail:
	log_err("rados: cannot open fragment store %s/%s: %s (%s)", pool ? pool : "(null)",
		nspace ? nspace : "(null)", strerror(-rc), log_errname(rc));
	rados_destroy(&b->base);
	return rc;
}

int backend_rados_open(const struct rados_conf *c, const char *pool, const char *nspace,
		       struct frag_backend **out)
{
	struct rconn *conn;
	int rc;

	*out = NULL;
	rc = rconn_open(c, &conn);
	if (rc)
		return rc;
	rc = backend_rados_open_conn(conn, pool, nspace, out);
	rconn_put(conn);
	return rc;
}
