/* rlog — open, the head's xattrs, reading the log (rlog.h; the invariants
 * are in rlog_int.h). */
#include "cache/rlog_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "cache/fault.h"
#include "cache/log.h"

/* ---- small helpers ---- */

int64_t rlog_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rlog_cond_wait_until(struct rlog *l, int64_t when_ms)
{
	struct timespec ts = { .tv_sec = when_ms / 1000, .tv_nsec = (when_ms % 1000) * 1000000 };

	pthread_cond_timedwait(&l->cond, &l->lock, &ts);
}

void rlog_hex16(char *out, uint64_t v)
{
	snprintf(out, 17, "%016" PRIx64, v);
}

int rlog_parse_hex16(const char *s, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	if (len != 16)
		return -EUCLEAN;
	for (size_t i = 0; i < 16; i++) {
		int c = s[i];
		if (c >= '0' && c <= '9')
			x = x << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = x << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -EUCLEAN;
	}
	*v = x;
	return 0;
}

void rlog_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t rlog_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void rlog_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t rlog_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the head's xattrs ---- */

void rlog_base_encode(unsigned char out[RLOG_BASE_LEN], const struct rlog_base_rec *b)
{
	memset(out, 0, RLOG_BASE_LEN);
	out[0] = 1;                        /* version */
	rlog_put32(out + 4, b->chunks);
	rlog_put64(out + 8, b->lsn);
	rlog_put64(out + 16, b->epoch);
	rlog_put64(out + 24, b->bytes);
	rlog_put64(out + 32, b->hash);
}

int rlog_base_decode(const void *p, size_t len, struct rlog_base_rec *b)
{
	const unsigned char *q = p;

	if (len != RLOG_BASE_LEN || q[0] != 1)
		return -EUCLEAN;
	b->chunks = rlog_get32(q + 4);
	b->lsn = rlog_get64(q + 8);
	b->epoch = rlog_get64(q + 16);
	b->bytes = rlog_get64(q + 24);
	b->hash = rlog_get64(q + 32);
	return 0;
}

int rlog_head_parse(rados_xattrs_iter_t it, struct rlog_head *h)
{
	const char *name, *val;
	size_t len;
	int rc = 0;

	memset(h, 0, sizeof(*h));
	while (rados_getxattrs_next(it, &name, &val, &len) == 0 && name) {
		if (strcmp(name, RLOG_X_FORMAT) == 0) {
			char buf[16];
			char *end;
			if (len == 0 || len >= sizeof(buf)) {
				rc = -EUCLEAN;
				continue;
			}
			memcpy(buf, val, len);
			buf[len] = '\0';
			h->format = (unsigned)strtoul(buf, &end, 10);
			h->has_format = *end == '\0';
			if (!h->has_format)
				rc = -EUCLEAN;
		} else if (strcmp(name, RLOG_X_EPOCH) == 0) {
			if (rlog_parse_hex16(val, len, &h->epoch))
				rc = -EUCLEAN;
		} else if (strcmp(name, RLOG_X_TAIL) == 0) {
			if (rlog_parse_hex16(val, len, &h->tail))
				rc = -EUCLEAN;
		} else if (strcmp(name, RLOG_X_BASE) == 0) {
			h->has_base = 1;
			if (rlog_base_decode(val, len, &h->base))
				rc = -EUCLEAN;
		}
	}
	if (rc == 0 && !h->has_format)
		rc = -EPROTO;
	return rc;
}

int rlog_head_read(struct rlog *l, struct rlog_head *h)
{
	rados_read_op_t op = rados_create_read_op();
	rados_xattrs_iter_t it = NULL;
	int prval = 0, rc;

	if (!op)
		return -ENOMEM;
	rados_read_op_getxattrs(op, &it, &prval);
	rc = rados_read_op_operate(op, l->io, RLOG_HEAD, 0);
	if (rc >= 0)
		rc = prval;
	if (rc >= 0 && it)
		rc = rlog_head_parse(it, h);
	if (it)
		rados_getxattrs_end(it);
	rados_release_read_op(op);
	return rc < 0 ? rc : 0;
}

/* ---- completions ---- */

int rlog_wait_all(rados_completion_t *cs, size_t n, int *ret)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		int rc;
		if (!cs[i])
			continue;
		rados_aio_wait_for_complete(cs[i]);
		rc = rados_aio_get_return_value(cs[i]);
		rados_aio_release(cs[i]);
		cs[i] = NULL;
		if (ret)
			ret[i] = rc;
		if (rc < 0 && !first)
			first = rc;
	}
	return first;
}

int rlog_remove_all(struct rlog *l, char (*names)[64], size_t n)
{
	rados_completion_t *cs;
	rados_write_op_t *ops;
	int *ret, first = 0;

	if (n == 0)
		return 0;
	cs = calloc(n, sizeof(*cs));
	ops = calloc(n, sizeof(*ops));
	ret = calloc(n, sizeof(*ret));
	if (!cs || !ops || !ret) {
		free(cs);
		free(ops);
		free(ret);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = -ENOMEM;
		ops[i] = rados_create_write_op();
		if (ops[i] && rados_aio_create_completion2(NULL, NULL, &cs[i]) == 0) {
			rados_write_op_remove(ops[i]);
			rc = rados_aio_write_op_operate(ops[i], l->io, cs[i], names[i], NULL,
							LIBRADOS_OPERATION_FULL_FORCE);
		}
		if (rc < 0) {
			if (cs[i])
				rados_aio_release(cs[i]);
			cs[i] = NULL;
			if (!first)
				first = rc;
		}
	}
	rlog_wait_all(cs, n, ret);
	for (size_t i = 0; i < n; i++) {
		if (ret[i] < 0 && ret[i] != -ENOENT && !first)
			first = ret[i];
		if (ops[i])
			rados_release_write_op(ops[i]);
	}
	free(cs);
	free(ops);
	free(ret);
	return first;
}

int rlog_omap_rm(struct rlog *l, const char *const *keys, size_t n, uint64_t epoch)
{
	rados_write_op_t op;
	char hex[17];
	int rc;

	if (n == 0)
		return 0;
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	if (epoch) {
		rlog_hex16(hex, epoch);
		rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, hex, 16);
	}
	rados_write_op_omap_rm_keys(op, keys, n);
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_FORCE);
	rados_release_write_op(op);
	return rc < 0 ? rc : 0;
}

/* ---- open / close ---- */

/* Create the head when missing: exclusive create with the format, epoch 0
 * and tail 0 in one op. @return 0, -EEXIST (there is one), -errno. */
static int head_create(struct rlog *l)
{
	rados_write_op_t op = rados_create_write_op();
	char fmt[16], zero[17];
	int rc;

	if (!op)
		return -ENOMEM;
	snprintf(fmt, sizeof(fmt), "%d", RLOG_FORMAT);
	rlog_hex16(zero, 0);
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_setxattr(op, RLOG_X_FORMAT, fmt, strlen(fmt));
	rados_write_op_setxattr(op, RLOG_X_EPOCH, zero, 16);
	rados_write_op_setxattr(op, RLOG_X_TAIL, zero, 16);
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_TRY);
	rados_release_write_op(op);
	return rc < 0 ? rc : 0;
}

int rlog_open(struct rconn *rc, const char *pool, const char *nspace, int create, struct rlog **out)
{
	pthread_condattr_t ca;
	struct rlog_head h;
	struct rlog *l;
	int err;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->slock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);  /* timed waits: rlog_cond_wait_until */
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(l->name, sizeof(l->name), "%s/%s", pool ? pool : "", nspace ? nspace : "");
	l->conn = rconn_get(rc);
	l->cluster = rconn_cluster(rc);
	err = rconn_ioctx(rc, pool, nspace, &l->io);
	if (err)
		goto fail;
	if (create) {
		err = head_create(l);
		if (err == 0)
			log_info("rlog %s: created the head (format %d)", l->name, RLOG_FORMAT);
		else if (err != -EEXIST)
			goto fail;
	}
	err = rlog_head_read(l, &h);
	if (err == 0 && h.format != RLOG_FORMAT)
		err = -EPROTO;
	if (err)
		goto fail;
	*out = l;
	return 0;
fail:
	if (err == -EPROTO)
		log_err("rlog %s: open: %s is not a payloadfs head of format %d (EPROTO)", l->name,
			RLOG_HEAD, RLOG_FORMAT);
	else if (err != -ENOENT || create)
		log_err("rlog %s: cannot open: %s (%s)", l->name, strerror(-err), log_errname(err));
	rlog_close(l);
	return err;
}

void rlog_close(struct rlog *l)
{
	if (!l)
		return;
	if (l->io) {
		rlog_watch_stop(l);
		rlog_release(l);
		rlog_notifies_wait(l);
		rados_ioctx_destroy(l->io);
	}
	rconn_put(l->conn);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->slock);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* ---- reading the log ---- */

static int key_lsn(const char *key, size_t klen, uint64_t *lsn)
{
	if (klen != 18 || key[0] != 'l' || key[1] != '.')
		return -EUCLEAN;
	return rlog_parse_hex16(key + 2, 16, lsn);
}

/* Does the entry LSN still exist? @return 1, 0, -errno. */
static int entry_exists(struct rlog *l, uint64_t lsn)
{
	rados_read_op_t op = rados_create_read_op();
	rados_omap_iter_t it = NULL;
	char key[20], *k, *v;
	const char *keys[1] = { key };
	size_t vl;
	int prval = 0, rc;

	if (!op)
		return -ENOMEM;
	snprintf(key, sizeof(key), "l.%016" PRIx64, lsn);
	rados_read_op_omap_get_vals_by_keys(op, keys, 1, &it, &prval);
	rc = rados_read_op_operate(op, l->io, RLOG_HEAD, 0);
	if (rc >= 0)
		rc = prval;
	if (rc >= 0)
		rc = rados_omap_get_next(it, &k, &v, &vl) == 0 && k != NULL;
	if (it)
		rados_omap_get_end(it);
	rados_release_read_op(op);
	return rc;
}

/* Read the big entry LSN that the pointer record P/LEN names: all its
 * parts in flight at once, checked against the record (invariant 5).
 * @param[out] out the entry (malloc'ed; the caller frees), *outlen
 * @return 0; -ERANGE (trimmed while being read); -EUCLEAN; -errno. */
static int fetch_big(struct rlog *l, uint64_t lsn, const unsigned char *p, size_t len,
		     unsigned char **out, size_t *outlen)
{
	rados_completion_t *cs = NULL;
	uint64_t epoch, length, hash;
	uint32_t parts;
	unsigned char *buf = NULL;
	int *ret = NULL, rc = 0;

	*out = NULL;
	if (len != RLOG_PTR_LEN || p[0] != RLOG_VAL_PTR || p[1] != 1)
		return -EUCLEAN;
	parts = rlog_get32(p + 4);
	epoch = rlog_get64(p + 8);
	length = rlog_get64(p + 16);
	hash = rlog_get64(p + 24);
	if (length == 0 || length > RLOG_ENTRY_MAX ||
	    parts != (length + RLOG_PART_MAX - 1) / RLOG_PART_MAX)
		return -EUCLEAN;
	buf = malloc(length);
	cs = calloc(parts, sizeof(*cs));
	ret = calloc(parts, sizeof(*ret));
	if (!buf || !cs || !ret) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < parts; i++) {
		char oid[64];
		size_t off = (size_t)i * RLOG_PART_MAX;
		size_t n = length - off < RLOG_PART_MAX ? length - off : RLOG_PART_MAX;
		int r;

		snprintf(oid, sizeof(oid), "pfs.e.%016" PRIx64 ".%016" PRIx64 ".%04u", lsn, epoch, i);
		r = rados_aio_create_completion2(NULL, NULL, &cs[i]);
		if (r == 0)
			r = rados_aio_read(l->io, oid, cs[i], (char *)buf + off, n, 0);
		if (r < 0) {
			if (cs[i])
				rados_aio_release(cs[i]);
			cs[i] = NULL;
			ret[i] = r;
		}
	}
	rlog_wait_all(cs, parts, ret);
	for (uint32_t i = 0; i < parts && rc == 0; i++) {
		size_t off = (size_t)i * RLOG_PART_MAX;
		size_t n = length - off < RLOG_PART_MAX ? length - off : RLOG_PART_MAX;
		if (ret[i] == -ENOENT) {
			int e = entry_exists(l, lsn);
			rc = e < 0 ? e : e ? -EUCLEAN : -ERANGE;
			if (rc == -EUCLEAN)
				log_err("rlog %s: entry %" PRIu64 ": read: object part %u is missing (EUCLEAN)",
					l->name, lsn, i);
		} else if (ret[i] < 0) {
			rc = ret[i];
		} else if ((size_t)ret[i] != n) {
			log_err("rlog %s: entry %" PRIu64 ": read: object part %u is %d bytes, not %zu (EUCLEAN)",
				l->name, lsn, i, ret[i], n);
			rc = -EUCLEAN;
		}
	}
	if (rc == 0 && XXH64(buf, length, 0) != hash) {
		log_err("rlog %s: entry %" PRIu64 ": read: its objects do not match its record (xxh64) (EUCLEAN)",
			l->name, lsn);
		rc = -EUCLEAN;
	}
out:
	if (rc == 0) {
		*out = buf;
		*outlen = length;
	} else {
		free(buf);
	}
	free(cs);
	free(ret);
	return rc;
}

/* One page of a read. */
struct page {
	uint64_t tail;         /* pfs.tail, read with the page */
	uint64_t first;        /* the first entry held (0: none) */
	rados_omap_iter_t it;  /* the entries after pos */
	unsigned char more;
	rados_read_op_t op;
};

/* Read up to WANT entries after POS, with the tail and the first held
 * entry, in one read op. */
static int page_read(struct rlog *l, uint64_t pos, size_t want, struct page *pg)
{
	rados_xattrs_iter_t xit = NULL;
	rados_omap_iter_t kit = NULL;
	struct rlog_head h;
	char after[20], *k, *v;
	size_t vl;
	int px = 0, pk = 0, pv = 0, rc;

	memset(pg, 0, sizeof(*pg));
	rc = FAULT("rlog_read");
	if (rc)
		return rc;
	pg->op = rados_create_read_op();
	if (!pg->op)
		return -ENOMEM;
	snprintf(after, sizeof(after), "l.%016" PRIx64, pos);
	rados_read_op_getxattrs(pg->op, &xit, &px);
	rados_read_op_omap_get_keys2(pg->op, "l.", 1, &kit, NULL, &pk);
	rados_read_op_omap_get_vals2(pg->op, after, "l.", want, &pg->it, &pg->more, &pv);
	rc = rados_read_op_operate(pg->op, l->io, RLOG_HEAD, 0);
	if (rc >= 0)
		rc = px < 0 ? px : pk < 0 ? pk : pv;
	if (rc >= 0)
		rc = rlog_head_parse(xit, &h);
	if (rc >= 0) {
		pg->tail = h.tail;
		if (rados_omap_get_next(kit, &k, &v, &vl) == 0 && k && strncmp(k, "l.", 2) == 0)
			rc = key_lsn(k, strlen(k), &pg->first);
	}
	if (xit)
		rados_getxattrs_end(xit);
	if (kit)
		rados_omap_get_end(kit);
	return rc < 0 ? rc : 0;
}

static void page_free(struct page *pg)
{
	if (pg->it)
		rados_omap_get_end(pg->it);
	if (pg->op)
		rados_release_read_op(pg->op);
}

/* Why the entry WANT is not where it should be: trimmed (-ERANGE) when
 * the first entry held comes after it, else a hole (-EUCLEAN). */
static int missing(struct rlog *l, const struct page *pg, uint64_t want)
{
	if (pg->first == 0 || pg->first > want)
		return -ERANGE;
	log_err("rlog %s: read: the log has a hole: entry %" PRIu64 " is missing (held %" PRIu64
		"..%" PRIu64 ") (EUCLEAN)", l->name, want, pg->first, pg->tail);
	return -EUCLEAN;
}

/* Deliver one entry (its omap value V/VL) to CB. */
static int deliver(struct rlog *l, uint64_t lsn, const char *v, size_t vl,
		   int (*cb)(void *, uint64_t, const void *, size_t), void *arg)
{
	const unsigned char *p = (const unsigned char *)v;
	unsigned char *big;
	size_t blen;
	int rc;

	if (vl >= 1 && p[0] == RLOG_VAL_INLINE)
		return cb(arg, lsn, p + 1, vl - 1);
	if (vl >= 1 && p[0] == RLOG_VAL_PTR) {
		rc = fetch_big(l, lsn, p, vl, &big, &blen);
		if (rc)
			return rc;
		rc = cb(arg, lsn, big, blen);
		free(big);
		return rc;
	}
	log_err("rlog %s: entry %" PRIu64 ": read: unknown value kind (%zu bytes) (EUCLEAN)", l->name,
		lsn, vl);
	return -EUCLEAN;
}

int rlog_read(struct rlog *l, uint64_t after, size_t max,
	      int (*cb)(void *arg, uint64_t lsn, const void *data, size_t len), void *arg)
{
	uint64_t pos = after;
	size_t done = 0, page = 64;

	for (;;) {
		size_t want = page, n = 0, bytes = 0;
		struct page pg;
		char *k, *v;
		size_t vl;
		int rc;

		if (max && max - done < want)
			want = max - done;
		rc = page_read(l, pos, want, &pg);
		while (rc == 0 && rados_omap_get_next(pg.it, &k, &v, &vl) == 0 && k) {
			uint64_t lsn;
			rc = key_lsn(k, strlen(k), &lsn);
			if (rc == 0 && lsn != pos + 1 && n == 0) {
				rc = missing(l, &pg, pos + 1);
			} else if (rc == 0 && lsn != pos + 1) {
				log_err("rlog %s: read: the log has a hole after entry %" PRIu64 " (EUCLEAN)", l->name,
					pos);
				rc = -EUCLEAN;
			}
			if (rc == 0)
				rc = deliver(l, lsn, v, vl, cb, arg);
			if (rc == 0) {
				pos = lsn;
				n++;
				bytes += vl;
			}
		}
		/* the page is consistent with its tail: it must reach it, or be full */
		if (rc == 0 && n == 0 && pg.tail > pos)
			rc = missing(l, &pg, pos + 1);
		if (rc == 0 && n < want && !pg.more && pos < pg.tail) {
			log_err("rlog %s: read: the log ends at %" PRIu64 ", its tail says %" PRIu64 " (EUCLEAN)",
				l->name, pos, pg.tail);
			rc = -EUCLEAN;
		}
		page_free(&pg);
		if (rc)
			return rc;
		done += n;
		if (pos >= pg.tail || (max && done >= max))
			return 0;
		/* aim the next page at RLOG_PAGE_BYTES */
		page = n ? RLOG_PAGE_BYTES / (bytes / n + 1) : page;
		page = page < 16 ? 16 : page > RLOG_PAGE_MAX ? RLOG_PAGE_MAX : page;
	}
}

int rlog_tail(struct rlog *l, uint64_t *first, uint64_t *last)
{
	rados_read_op_t op = rados_create_read_op();
	rados_xattrs_iter_t xit = NULL;
	rados_omap_iter_t kit = NULL;
	struct rlog_head h;
	char *k, *v;
	size_t vl;
	int px = 0, pk = 0, rc;

	*first = *last = 0;
	if (!op)
		return -ENOMEM;
	rados_read_op_getxattrs(op, &xit, &px);
	rados_read_op_omap_get_keys2(op, "l.", 1, &kit, NULL, &pk);
	rc = rados_read_op_operate(op, l->io, RLOG_HEAD, 0);
	if (rc >= 0)
		rc = px < 0 ? px : pk;
	if (rc >= 0)
		rc = rlog_head_parse(xit, &h);
	if (rc >= 0) {
		*last = h.tail;
		if (rados_omap_get_next(kit, &k, &v, &vl) == 0 && k && strncmp(k, "l.", 2) == 0)
			rc = key_lsn(k, strlen(k), first);
	}
	if (xit)
		rados_getxattrs_end(xit);
	if (kit)
		rados_omap_get_end(kit);
	rados_release_read_op(op);
	return rc < 0 ? rc : 0;
}
