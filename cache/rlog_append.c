/* rlog_append — appends, notifies and trims of the writer (rlog.h): one
 * write op per append guarded by the epoch and the tail (invariant 1),
 * big entries behind their intents (invariant 4), trims from the low end
 * (invariant 2). The invariants are in rlog_int.h. */
#include "cache/rlog_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cache/fault.h"
#include "cache/log.h"

#define NOTIFY_MS      1000    /* a notify waits this long for the acks */
#define NOTIFY_MAX     8       /* notifies in flight; more are dropped */

/* ---- notifies ---- */

struct rnotify {
	struct rlog *l;
	rados_completion_t c;
	char *reply;
	size_t reply_len;
};

/* librados's finisher thread. */
static void notify_done(rados_completion_t c, void *arg)
{
	struct rnotify *n = arg;
	struct rlog *l = n->l;

	if (n->reply)
		rados_buffer_free(n->reply);
	rados_aio_release(c);
	free(n);
	pthread_mutex_lock(&l->lock);
	l->notifies--;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* Tell the watchers that the log reaches TAIL, without waiting for them;
 * a notify is a hint: with NOTIFY_MAX in flight (slow followers), this
 * one is dropped (the next one or the followers' polling covers it). */
static void notify(struct rlog *l, uint64_t tail)
{
	unsigned char payload[8];
	struct rnotify *n;
	int rc;

	pthread_mutex_lock(&l->lock);
	if (l->notifies >= NOTIFY_MAX) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	l->notifies++;
	pthread_mutex_unlock(&l->lock);
	rlog_put64(payload, tail);
	n = calloc(1, sizeof(*n));
	rc = n ? rados_aio_create_completion2(n, notify_done, &n->c) : -ENOMEM;
	if (rc == 0) {
		n->l = l;
		rc = rados_aio_notify(l->io, RLOG_HEAD, n->c, (const char *)payload, 8, NOTIFY_MS,
				      &n->reply, &n->reply_len);
		if (rc < 0)
			rados_aio_release(n->c);
	}
	if (rc < 0) {
		free(n);
		pthread_mutex_lock(&l->lock);
		l->notifies--;
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
	}
}

void rlog_notifies_wait(struct rlog *l)
{
	pthread_mutex_lock(&l->lock);
	while (l->notifies)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

/* ---- appends ---- */

/* One entry of an append, as it goes into the omap. */
struct aent {
	char key[20];           /* l.<lsn> */
	unsigned char *val;     /* malloc'ed */
	size_t vlen;
	uint32_t parts;         /* > 0: a big entry */
};

/* Write the big entries' objects (invariant 4): the intent keys in one
 * epoch-guarded op, then every part at once. */
static int write_big(struct rlog *l, uint64_t epoch, uint64_t first, struct aent *e,
		     const void *const *data, const size_t *len, size_t n)
{
	size_t nbig = 0, nparts = 0, k = 0;
	rados_completion_t *cs = NULL;
	rados_write_op_t *ops = NULL, op;
	char (*ikeys)[40] = NULL;
	const char **kp = NULL, **vp = NULL;
	unsigned char (*ivals)[4] = NULL;
	size_t *vl = NULL;
	char hex[17];
	int rc;

	for (size_t i = 0; i < n; i++)
		if (e[i].parts) {
			nbig++;
			nparts += e[i].parts;
		}
	ikeys = calloc(nbig, sizeof(*ikeys));
	ivals = calloc(nbig, sizeof(*ivals));
	kp = calloc(nbig, sizeof(*kp));
	vp = calloc(nbig, sizeof(*vp));
	vl = calloc(nbig, sizeof(*vl));
	cs = calloc(nparts, sizeof(*cs));
	ops = calloc(nparts, sizeof(*ops));
	op = rados_create_write_op();
	if (!ikeys || !ivals || !kp || !vp || !vl || !cs || !ops || !op) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0, j = 0; i < n; i++) {
		if (!e[i].parts)
			continue;
		snprintf(ikeys[j], sizeof(ikeys[j]), "e.%016" PRIx64 ".%016" PRIx64, first + i, epoch);
		rlog_put32(ivals[j], e[i].parts);
		kp[j] = ikeys[j];
		vp[j] = (const char *)ivals[j];
		vl[j] = 4;
		j++;
	}
	rlog_hex16(hex, epoch);
	rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, hex, 16);
	rados_write_op_omap_set(op, kp, vp, vl, nbig);
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_TRY);
	if (rc == -ECANCELED || rc == -ESHUTDOWN) {
		struct rlog_head h;
		int r = rlog_fenced_check(l, epoch, rc, &h);
		rc = r ? r : -EAGAIN;
	}
	if (rc < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		for (uint32_t p = 0; p < e[i].parts; p++, k++) {
			size_t off = (size_t)p * RLOG_PART_MAX;
			size_t pl = len[i] - off < RLOG_PART_MAX ? len[i] - off : RLOG_PART_MAX;
			char oid[64];
			int r;

			snprintf(oid, sizeof(oid), "pfs.e.%016" PRIx64 ".%016" PRIx64 ".%04u",
				 first + i, epoch, p);
			ops[k] = rados_create_write_op();
			r = ops[k] ? rados_aio_create_completion2(NULL, NULL, &cs[k]) : -ENOMEM;
			if (r == 0) {
				/* the write op copies the bytes */
				rados_write_op_write_full(ops[k], (const char *)data[i] + off, pl);
				r = rados_aio_write_op_operate(ops[k], l->io, cs[k], oid, NULL,
							       LIBRADOS_OPERATION_FULL_TRY);
			}
			if (r < 0) {
				if (cs[k])
					rados_aio_release(cs[k]);
				cs[k] = NULL;
				if (!rc)
					rc = r;
			}
		}
	}
	{
		int r = rlog_wait_all(cs, k, NULL);
		if (!rc)
			rc = r;
	}
out:
	for (size_t i = 0; ops && i < nparts; i++)
		if (ops[i])
			rados_release_write_op(ops[i]);
	if (op)
		rados_release_write_op(op);
	free(ikeys), free(ivals), free(kp), free(vp), free(vl), free(cs), free(ops);
	return rc;
}

/* Build the omap values (inline, or pointers to objects: RLOG_VAL_*). */
static int build_values(struct aent *e, uint64_t first, uint64_t epoch,
			const void *const *data, const size_t *len, size_t n, int *any_big)
{
	size_t inl = 0;

	*any_big = 0;
	for (size_t i = 0; i < n; i++) {
		snprintf(e[i].key, sizeof(e[i].key), "l.%016" PRIx64, first + i);
		if (len[i] > RLOG_INLINE_MAX || inl + len[i] > RLOG_OP_INLINE) {
			e[i].parts = (uint32_t)((len[i] + RLOG_PART_MAX - 1) / RLOG_PART_MAX);
			e[i].vlen = RLOG_PTR_LEN;
			e[i].val = calloc(1, RLOG_PTR_LEN);
			if (!e[i].val)
				return -ENOMEM;
			e[i].val[0] = RLOG_VAL_PTR;
			e[i].val[1] = 1;                /* version */
			rlog_put32(e[i].val + 4, e[i].parts);
			rlog_put64(e[i].val + 8, epoch);
			rlog_put64(e[i].val + 16, len[i]);
			rlog_put64(e[i].val + 24, XXH64(data[i], len[i], 0));
			*any_big = 1;
		} else {
			inl += len[i];
			e[i].vlen = len[i] + 1;
			e[i].val = malloc(e[i].vlen);
			if (!e[i].val)
				return -ENOMEM;
			e[i].val[0] = RLOG_VAL_INLINE;
			if (len[i])
				memcpy(e[i].val + 1, data[i], len[i]);
		}
	}
	return 0;
}

/* The append op failed with RC: say why (invariants 1, 3, 6). */
static int append_failed(struct rlog *l, uint64_t epoch, uint64_t first, uint64_t last, int rc)
{
	struct rlog_head h;
	int r;

	if (rc == -ETIMEDOUT) {
		pthread_mutex_lock(&l->lock);
		if (l->epoch == epoch && l->state == S_LIVE)
			l->state = S_DOUBT;
		pthread_mutex_unlock(&l->lock);
		log_err("rlog %s: the append of %" PRIu64 "..%" PRIu64 " timed out: in doubt until "
			"a new session (%s)", l->name, first, last, log_errname(rc));
		return rc;
	}
	if (rc != -ECANCELED && rc != -ESHUTDOWN)
		return rc;
	r = rlog_fenced_check(l, epoch, rc, &h);
	if (r == -ESTALE)
		return r;
	if (r) {        /* cannot tell why: the append failed (nothing landed) */
		log_err("rlog %s: the append of %" PRIu64 " failed its compare; reading the head: %s (%s)",
			l->name, first, strerror(-r), log_errname(r));
		return r;
	}
	if (h.tail >= first) {
		log_err("rlog %s: the append at %" PRIu64 " finds the log at %" PRIu64 " already (EEXIST)",
			l->name, first, h.tail);
		return -EEXIST;
	}
	if (h.tail < first - 1) {
		log_err("rlog %s: the append at %" PRIu64 " would leave a gap (the log ends at %"
			PRIu64 ") (ERANGE)", l->name, first, h.tail);
		return -ERANGE;
	}
	return -EAGAIN;
}

int rlog_append(struct rlog *l, uint64_t first, const void *const *data, const size_t *len, size_t n)
{
	uint64_t epoch, last = first + n - 1;
	struct aent *e = NULL;
	const char **keys = NULL, **vals = NULL;
	size_t *vlens = NULL;
	rados_write_op_t op = NULL;
	char hx[17], prev[17], tail[17];
	int rc, big;

	if (n == 0 || !data || !len || first == 0 || last < first)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!data[i] && len[i])
			return -EINVAL;
		if (len[i] > RLOG_ENTRY_MAX)
			return -EFBIG;
	}
	rc = FAULT("rlog_append");
	if (rc)
		return rc;
	rc = rlog_session_epoch(l, &epoch);
	if (rc)
		return rc;
	e = calloc(n, sizeof(*e));
	keys = calloc(n, sizeof(*keys));
	vals = calloc(n, sizeof(*vals));
	vlens = calloc(n, sizeof(*vlens));
	op = rados_create_write_op();
	rc = e && keys && vals && vlens && op ? 0 : -ENOMEM;
	if (rc == 0)
		rc = build_values(e, first, epoch, data, len, n, &big);
	if (rc == 0 && big)
		rc = write_big(l, epoch, first, e, data, len, n);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		keys[i] = e[i].key;
		vals[i] = (const char *)e[i].val;
		vlens[i] = e[i].vlen;
	}
	rlog_hex16(hx, epoch);
	rlog_hex16(prev, first - 1);
	rlog_hex16(tail, last);
	rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, hx, 16);
	rados_write_op_cmpxattr(op, RLOG_X_TAIL, LIBRADOS_CMPXATTR_OP_EQ, prev, 16);
	rados_write_op_setxattr(op, RLOG_X_TAIL, tail, 16);
	rados_write_op_omap_set(op, keys, vals, vlens, n);
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_TRY);
	if (rc >= 0) {
		rc = 0;
		FAULT_CRASH("rlog_appended");
		notify(l, last);
	} else {
		rc = append_failed(l, epoch, first, last, rc);
	}
out:
	for (size_t i = 0; e && i < n; i++)
		free(e[i].val);
	if (op)
		rados_release_write_op(op);
	free(e), free(keys), free(vals), free(vlens);
	return rc;
}

/* ---- trim ---- */

/* Remove the big entries' objects and intent keys for lsns <= UPTO (of
 * any epoch: invariant 4), a page at a time. */
static int trim_big(struct rlog *l, uint64_t upto, uint64_t epoch)
{
	for (;;) {
		rados_read_op_t rop = rados_create_read_op();
		rados_omap_iter_t it = NULL;
		char (*names)[64] = NULL, (*keys)[40] = NULL, *k, *v;
		const char **kp = NULL;
		size_t vl, nn = 0, nk = 0, cap = 0;
		int pv = 0, rc, end = 0;

		if (!rop)
			return -ENOMEM;
		rados_read_op_omap_get_vals2(rop, "e.", "e.", 128, &it, NULL, &pv);
		rc = rados_read_op_operate(rop, l->io, RLOG_HEAD, 0);
		if (rc >= 0)
			rc = pv;
		while (rc >= 0 && rados_omap_get_next(it, &k, &v, &vl) == 0 && k) {
			uint64_t lsn;
			uint32_t parts;
			if (strlen(k) != 35 || rlog_parse_hex16(k + 2, 16, &lsn) || vl != 4) {
				log_err("rlog %s: reading the intents: a damaged intent key %s (EUCLEAN)", l->name, k);
				rc = -EUCLEAN;
				break;
			}
			if (lsn > upto) {
				end = 1;
				break;
			}
			parts = rlog_get32((const unsigned char *)v);
			if (nn + parts > cap) {
				size_t nc = (nn + parts) * 2;
				void *p = realloc(names, nc * sizeof(*names));
				if (!p) {
					rc = -ENOMEM;
					break;
				}
				names = p;
				cap = nc;
			}
			for (uint32_t p = 0; p < parts; p++)
				snprintf(names[nn++], 64, "pfs.e.%.16s.%.16s.%04u", k + 2, k + 19, p);
			void *q = realloc(keys, (nk + 1) * sizeof(*keys));
			if (!q) {
				rc = -ENOMEM;
				break;
			}
			keys = q;
			snprintf(keys[nk++], 40, "%s", k);
		}
		if (it)
			rados_omap_get_end(it);
		rados_release_read_op(rop);
		if (rc >= 0)
			rc = rlog_remove_all(l, names, nn);
		if (rc >= 0 && nk) {
			kp = calloc(nk, sizeof(*kp));
			rc = kp ? 0 : -ENOMEM;
			for (size_t i = 0; kp && i < nk; i++)
				kp[i] = keys[i];
			if (rc == 0)
				rc = rlog_omap_rm(l, kp, nk, epoch);
			if (rc == -ECANCELED || rc == -ESHUTDOWN) {
				struct rlog_head h;
				int r = rlog_fenced_check(l, epoch, rc, &h);
				rc = r ? r : -EAGAIN;
			}
		}
		free(kp), free(names), free(keys);
		if (rc < 0)
			return rc;
		if (end || nk == 0)
			return 0;
	}
}

int rlog_trim(struct rlog *l, uint64_t upto)
{
	struct rlog_head h;
	rados_write_op_t op;
	uint64_t epoch;
	char hx[17], end[20];
	int rc;

	rc = rlog_session_epoch(l, &epoch);
	if (rc)
		return rc;
	rc = rlog_head_read(l, &h);
	if (rc)
		return rc;
	if (!h.has_base || upto > h.base.lsn) {
		log_err("rlog %s: trim to %" PRIu64 " refused: the newest base is at %" PRIu64 " (EINVAL)",
			l->name, upto, h.has_base ? h.base.lsn : 0);
		return -EINVAL;
	}
	if (upto == 0)
		return 0;
	/* the entries first (invariant 2): a reader of a big one then sees it
	 * gone (-ERANGE), not damaged */
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rlog_hex16(hx, epoch);
	snprintf(end, sizeof(end), "l.%016" PRIx64, upto + 1);
	rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, hx, 16);
	rados_write_op_omap_rm_range2(op, "l.", 2, end, 18);
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_FORCE);
	rados_release_write_op(op);
	if (rc == -ECANCELED || rc == -ESHUTDOWN) {
		int r = rlog_fenced_check(l, epoch, rc, &h);
		rc = r ? r : -EAGAIN;
	}
	if (rc < 0)
		return rc;
	return trim_big(l, upto, epoch);
}
