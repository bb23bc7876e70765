/* rlog_base — bases: the whole index as of a log position, in chunk
 * objects pfs.b.<lsn>.<epoch>.<k> that the head's pfs.base points at
 * (rlog.h; invariants 3-5 of rlog_int.h). */
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

#define WINDOW      4       /* chunk writes / reads in flight */
#define BOUND_STEP  16      /* the intent's chunk bound grows by this much */
#define CHUNKS_MAX  10000   /* 4 decimal digits in the names */

static void chunk_name(char *out, uint64_t lsn, uint64_t epoch, uint32_t k)
{
	snprintf(out, 64, "pfs.b.%016" PRIx64 ".%016" PRIx64 ".%04u", lsn, epoch, k);
}

static void intent_key(char *out, uint64_t lsn, uint64_t epoch)
{
	snprintf(out, 40, "b.%016" PRIx64 ".%016" PRIx64, lsn, epoch);
}

/* One epoch-guarded op on the head: set the intent KEY to COUNT (a bound
 * on the chunk objects that may exist: invariant 4), and with REC (not
 * NULL) point pfs.base at it. @return 0, -ESTALE, -errno. */
static int head_op(struct rlog *l, uint64_t epoch, const char *key, uint32_t count,
		   const struct rlog_base_rec *rec)
{
	rados_write_op_t op = rados_create_write_op();
	unsigned char v[4], r[RLOG_BASE_LEN];
	const char *kp[1] = { key }, *vp[1] = { (const char *)v };
	size_t vl[1] = { 4 };
	char hx[17];
	int rc;

	if (!op)
		return -ENOMEM;
	rlog_hex16(hx, epoch);
	rlog_put32(v, count);
	rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, hx, 16);
	rados_write_op_omap_set(op, kp, vp, vl, 1);
	if (rec) {
		rlog_base_encode(r, rec);
		rados_write_op_setxattr(op, RLOG_X_BASE, (const char *)r, RLOG_BASE_LEN);
	}
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_TRY);
	rados_release_write_op(op);
	if (rc == -ECANCELED || rc == -ESHUTDOWN) {
		struct rlog_head h;
		int e = rlog_fenced_check(l, epoch, rc, &h);
		rc = e ? e : -EAGAIN;
	}
	return rc < 0 ? rc : 0;
}

/* Remove chunks 0..COUNT-1 of base LSN/EPOCH, then its intent key. */
static int drop_base(struct rlog *l, uint64_t lsn, uint64_t epoch, uint32_t count, uint64_t guard)
{
	char (*names)[64] = malloc(256 * sizeof(*names));
	char key[40];
	const char *kp[1] = { key };
	int rc = names ? 0 : -ENOMEM;

	for (uint32_t k = 0; rc == 0 && k < count; k += 256) {
		uint32_t n = count - k < 256 ? count - k : 256;
		for (uint32_t i = 0; i < n; i++)
			chunk_name(names[i], lsn, epoch, k + i);
		rc = rlog_remove_all(l, names, n);
	}
	free(names);
	intent_key(key, lsn, epoch);
	if (rc == 0)
		rc = rlog_omap_rm(l, kp, 1, guard);
	return rc;
}

/* Delete every base but KEEP_LSN/KEEP_EPOCH (older ones, and what failed
 * puts left). Failures are logged: the next put tries again. */
static void drop_others(struct rlog *l, uint64_t keep_lsn, uint64_t keep_epoch, uint64_t guard)
{
	char after[40] = "b.";

	for (;;) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it = NULL;
		struct { uint64_t lsn, epoch; uint32_t count; } v[64];
		unsigned char more = 0;
		size_t n = 0, vl;
		char *k, *val;
		int pv = 0, rc;

		if (!op)
			return;
		rados_read_op_omap_get_vals2(op, after, "b.", 64, &it, &more, &pv);
		rc = rados_read_op_operate(op, l->io, RLOG_HEAD, 0);
		if (rc >= 0)
			rc = pv;
		while (rc >= 0 && rados_omap_get_next(it, &k, &val, &vl) == 0 && k && n < 64) {
			snprintf(after, sizeof(after), "%s", k);
			if (strlen(k) != 35 || vl != 4 || rlog_parse_hex16(k + 2, 16, &v[n].lsn) ||
			    rlog_parse_hex16(k + 19, 16, &v[n].epoch)) {
				log_err("rlog %s: listing the bases: a damaged base key %s: skipped", l->name, k);
				continue;
			}
			v[n].count = rlog_get32((const unsigned char *)val);
			if (v[n].lsn != keep_lsn || v[n].epoch != keep_epoch)
				n++;
		}
		if (it)
			rados_omap_get_end(it);
		rados_release_read_op(op);
		for (size_t i = 0; rc >= 0 && i < n; i++) {
			rc = drop_base(l, v[i].lsn, v[i].epoch, v[i].count, guard);
			if (rc == 0)
				log_info("rlog %s: deleted the base of %" PRIu64 " (epoch %" PRIu64
					 ", %u chunks)", l->name, v[i].lsn, v[i].epoch, v[i].count);
		}
		if (rc < 0) {
			log_warn("rlog %s: cannot delete old bases: %s (left for the next base)",
				 l->name, strerror(-rc));
			return;
		}
		if (!more)
			return;
	}
}

/* A chunk write in flight. */
struct wslot {
	rados_write_op_t op;
	rados_completion_t c;
};

static int wslot_wait(struct wslot *s)
{
	int rc = 0;

	if (s->c) {
		rc = rlog_wait_all(&s->c, 1, NULL);
		s->c = NULL;
	}
	if (s->op)
		rados_release_write_op(s->op);
	s->op = NULL;
	return rc;
}

/* Write the chunks NEXT gives as objects of base LSN/EPOCH (WINDOW in
 * flight), raising the intent's bound before each batch.
 * @param[out] rec chunks, bytes, hash @param[out] bound the intent's count */
static int write_chunks(struct rlog *l, uint64_t lsn, uint64_t epoch,
			int (*next)(void *, const void **, size_t *), void *arg,
			struct rlog_base_rec *rec, uint32_t *bound)
{
	struct wslot slots[WINDOW] = { { 0 } };
	XXH64_state_t *st = XXH64_createState();
	char key[40];
	int rc = st ? 0 : -ENOMEM;

	intent_key(key, lsn, epoch);
	if (st)
		XXH64_reset(st, 0);
	while (rc == 0) {
		struct wslot *s = &slots[rec->chunks % WINDOW];
		const void *data;
		size_t len;
		char oid[64];
		int r = next(arg, &data, &len);

		if (r <= 0) {
			rc = r;
			break;
		}
		if (len > RLOG_CHUNK_MAX || rec->chunks >= CHUNKS_MAX) {
			log_err("rlog %s: base chunk %u of %zu bytes: too big (%u bytes, %u chunks "
				"at most) (EFBIG)", l->name, rec->chunks, len, RLOG_CHUNK_MAX, CHUNKS_MAX);
			rc = -EFBIG;
			break;
		}
		if (rec->chunks >= *bound) {
			*bound += BOUND_STEP;
			rc = head_op(l, epoch, key, *bound, NULL);
			if (rc)
				break;
		}
		rc = wslot_wait(s);
		if (rc)
			break;
		chunk_name(oid, lsn, epoch, rec->chunks);
		s->op = rados_create_write_op();
		rc = s->op ? rados_aio_create_completion2(NULL, NULL, &s->c) : -ENOMEM;
		if (rc == 0) {
			rados_write_op_write_full(s->op, data, len);   /* copies the bytes */
			rc = rados_aio_write_op_operate(s->op, l->io, s->c, oid, NULL,
							LIBRADOS_OPERATION_FULL_TRY);
		}
		if (rc < 0 && s->c) {
			rados_aio_release(s->c);
			s->c = NULL;
		}
		if (rc == 0) {
			XXH64_update(st, data, len);
			rec->bytes += len;
			rec->chunks++;
		}
	}
	for (int i = 0; i < WINDOW; i++) {
		int r = wslot_wait(&slots[i]);
		if (!rc)
			rc = r;
	}
	if (st) {
		rec->hash = XXH64_digest(st);
		XXH64_freeState(st);
	}
	return rc;
}

int rlog_base_put(struct rlog *l, uint64_t lsn,
		  int (*next)(void *arg, const void **data, size_t *len), void *arg)
{
	struct rlog_base_rec rec = { .lsn = lsn };
	struct rlog_head h;
	uint32_t bound = 0;
	char key[40];
	int rc;

	rc = rlog_session_epoch(l, &rec.epoch);
	if (rc)
		return rc;
	rc = rlog_head_read(l, &h);
	if (rc)
		return rc;
	if (h.has_base && lsn == h.base.lsn)
		return 0;
	if (lsn > h.tail || (h.has_base && lsn < h.base.lsn)) {
		log_err("rlog %s: a base at %" PRIu64 " refused: the log ends at %" PRIu64
			", the newest base is at %" PRIu64 " (EINVAL)", l->name, lsn, h.tail,
			h.has_base ? h.base.lsn : 0);
		return -EINVAL;
	}
	intent_key(key, lsn, rec.epoch);
	rc = write_chunks(l, lsn, rec.epoch, next, arg, &rec, &bound);
	if (rc == 0)
		rc = FAULT("rlog_base");
	if (rc == 0)
		rc = head_op(l, rec.epoch, key, rec.chunks, &rec);     /* the base is recorded */
	if (rc) {
		if (bound && rc != -ESTALE)
			drop_base(l, lsn, rec.epoch, bound, rec.epoch);
		log_err("rlog %s: the base at %" PRIu64 " failed: %s (%s)", l->name, lsn, strerror(-rc),
			log_errname(rc));
		return rc;
	}
	log_info("rlog %s: base at %" PRIu64 " recorded (%u chunks, %" PRIu64 " bytes)", l->name,
		 lsn, rec.chunks, rec.bytes);
	drop_others(l, lsn, rec.epoch, rec.epoch);
	return 0;
}

/* ---- reading a base ---- */

/* A chunk read in flight: stat and a first read of HINT bytes in one op. */
struct rslot {
	rados_read_op_t op;
	rados_completion_t c;
	unsigned char *buf;
	size_t cap, got;
	uint64_t size;
	time_t mtime;
	int pstat, pread;
};

static int rslot_start(struct rlog *l, struct rslot *s, const char *oid, size_t hint)
{
	int rc;

	if (s->cap < hint) {
		void *p = realloc(s->buf, hint);
		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = hint;
	}
	s->op = rados_create_read_op();
	if (!s->op)
		return -ENOMEM;
	s->got = 0;
	s->size = 0;
	rados_read_op_stat(s->op, &s->size, &s->mtime, &s->pstat);
	rados_read_op_read(s->op, 0, hint, (char *)s->buf, &s->got, &s->pread);
	rc = rados_aio_create_completion2(NULL, NULL, &s->c);
	if (rc == 0)
		rc = rados_aio_read_op_operate(s->op, l->io, s->c, oid, 0);
	if (rc < 0) {
		if (s->c)
			rados_aio_release(s->c);
		s->c = NULL;
		rados_release_read_op(s->op);
		s->op = NULL;
	}
	return rc;
}

/* Wait for S, then read what the first read left of the object OID.
 * @return 0 (s->buf holds s->got == s->size bytes), -ENOENT, -errno. */
static int rslot_finish(struct rlog *l, struct rslot *s, const char *oid)
{
	int rc = rlog_wait_all(&s->c, 1, NULL);

	s->c = NULL;
	if (s->op)
		rados_release_read_op(s->op);
	s->op = NULL;
	if (rc == 0)
		rc = s->pstat < 0 ? s->pstat : s->pread;
	if (rc < 0)
		return rc;
	if (s->size > RLOG_CHUNK_MAX)
		return -EUCLEAN;
	if (s->size > s->cap) {
		void *p = realloc(s->buf, s->size);
		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = s->size;
	}
	while (s->got < s->size) {
		rc = rados_read(l->io, oid, (char *)s->buf + s->got, s->size - s->got, s->got);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -EUCLEAN;        /* shorter than its stat said */
		s->got += (size_t)rc;
	}
	return 0;
}

/* Read the chunks of base B in order, WINDOW in flight, and give them to
 * CB. @param[out] gone 1 when a chunk object is missing. */
static int read_chunks(struct rlog *l, const struct rlog_base_rec *b,
		       int (*cb)(void *, const void *, size_t), void *arg, int *gone)
{
	struct rslot slots[WINDOW];
	XXH64_state_t *st = XXH64_createState();
	size_t hint = b->chunks ? b->bytes / b->chunks * 5 / 4 + 4096 : 4096;
	uint64_t bytes = 0;
	uint32_t sent = 0;
	int rc = st ? 0 : -ENOMEM;

	*gone = 0;
	memset(slots, 0, sizeof(slots));
	if (hint > RLOG_CHUNK_MAX)
		hint = RLOG_CHUNK_MAX;
	if (st)
		XXH64_reset(st, 0);
	for (uint32_t k = 0; rc == 0 && k < b->chunks; k++) {
		struct rslot *s = &slots[k % WINDOW];
		char oid[64];

		for (; rc == 0 && sent < b->chunks && sent < k + WINDOW; sent++) {
			chunk_name(oid, b->lsn, b->epoch, sent);
			rc = rslot_start(l, &slots[sent % WINDOW], oid, hint);
		}
		if (rc)
			break;
		chunk_name(oid, b->lsn, b->epoch, k);
		rc = rslot_finish(l, s, oid);
		if (rc == -ENOENT) {
			*gone = 1;
			break;
		}
		if (rc == 0) {
			XXH64_update(st, s->buf, s->got);
			bytes += s->got;
			rc = cb(arg, s->buf, s->got);
		}
	}
	for (int i = 0; i < WINDOW; i++) {
		if (slots[i].c)
			rlog_wait_all(&slots[i].c, 1, NULL);
		if (slots[i].op)
			rados_release_read_op(slots[i].op);
		free(slots[i].buf);
	}
	if (rc == 0 && (bytes != b->bytes || XXH64_digest(st) != b->hash)) {
		log_err("rlog %s: the base at %" PRIu64 " does not match its record (%" PRIu64
			" bytes read, %" PRIu64 " recorded, or the xxh64 differs) (EUCLEAN)", l->name, b->lsn,
			bytes, b->bytes);
		rc = -EUCLEAN;
	}
	if (st)
		XXH64_freeState(st);
	return rc;
}

int rlog_base_pos(struct rlog *l, uint64_t *lsn)
{
	struct rlog_head h;
	int rc = rlog_head_read(l, &h);

	if (rc == 0 && !h.has_base)
		rc = -ENOENT;
	*lsn = rc ? 0 : h.base.lsn;
	return rc;
}

int rlog_base_get(struct rlog *l, uint64_t *lsn,
		  int (*cb)(void *arg, const void *data, size_t len), void *arg)
{
	struct rlog_head h, h2;

	*lsn = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc, gone;

		rc = rlog_head_read(l, &h);
		if (rc == 0 && !h.has_base)
			rc = -ENOENT;
		if (rc)
			return rc;
		*lsn = h.base.lsn;
		if (attempt > 0) {
			log_info("rlog %s: the base was replaced while being read: reading the new "
				 "one (%" PRIu64 ")", l->name, h.base.lsn);
			rc = cb(arg, NULL, 0);      /* start over */
			if (rc)
				return rc;
		}
		rc = read_chunks(l, &h.base, cb, arg, &gone);
		if (!gone)
			return rc;
		rc = rlog_head_read(l, &h2);
		if (rc)
			return rc;
		if (h2.has_base && h2.base.lsn == h.base.lsn && h2.base.epoch == h.base.epoch) {
			log_err("rlog %s: the base at %" PRIu64 " lacks a chunk (EUCLEAN)", l->name, h.base.lsn);
			return -EUCLEAN;
		}
	}
	return -EAGAIN;
}
