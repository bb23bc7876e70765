/* rlog_follow — what followers use: the watch on the head (woken by the
 * writer's notifies, kept alive by a thread of this module) and the
 * followers' records r.<id> and expiry marks x.<id> (rlog.h). */
#include "cache/rlog_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/fault.h"
#include "cache/log.h"

#define WATCH_TIMEOUT_S  30      /* the OSD drops a watch it has not heard from this long */
#define KEEP_MS          1000    /* how often the keeper checks the watch */
#define SILENT_MS        8000    /* a watch not confirmed for this long: notifies may be lost */

/* ---- the watch ---- */

/* librados's finisher thread: ack at once (a notifier waits for every
 * ack), then wake the user. */
static void watch_cb(void *arg, uint64_t notify_id, uint64_t handle, uint64_t notifier_id,
		     void *data, size_t len)
{
	struct rlog *l = arg;

	(void)notifier_id, (void)data, (void)len;
	rados_notify_ack(l->io, RLOG_HEAD, notify_id, handle, NULL, 0);
	l->wcb(l->warg);
}

/* librados: the watch HANDLE is dead; the keeper makes a new one. */
static void watch_err(void *arg, uint64_t handle, int err)
{
	struct rlog *l = arg;

	pthread_mutex_lock(&l->lock);
	if (handle == l->whandle) {
		l->watch_err = err ? err : -ENOTCONN;
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&l->lock);
}

/* Make the watch again. @return 0 or -errno. */
static int rewatch(struct rlog *l, uint64_t old)
{
	uint64_t h = 0;
	int rc, f = FAULT("rlog_watch");

	if (old)
		rados_unwatch2(l->io, old);
	rc = f ? f : rados_watch3(l->io, RLOG_HEAD, &h, watch_cb, watch_err, WATCH_TIMEOUT_S, l);
	pthread_mutex_lock(&l->lock);
	l->whandle = rc == 0 ? h : 0;
	l->watch_err = 0;
	pthread_mutex_unlock(&l->lock);
	return rc;
}

/* The keeper: every KEEP_MS, check the watch; make it again when it broke
 * (the error callback, or rados_watch_check < 0); wake the user when it
 * is back after an error or a silence (notifies may have been lost). */
static void *keeper(void *arg)
{
	struct rlog *l = arg;
	int silent = 0, failing = 0;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		int64_t until = rlog_now_ms() + KEEP_MS;
		uint64_t h;
		int need, rc;

		while (!l->watch_stop && !l->watch_err && rlog_now_ms() < until)
			rlog_cond_wait_until(l, until);
		if (l->watch_stop)
			break;
		h = l->whandle;
		need = l->watch_err || h == 0;
		pthread_mutex_unlock(&l->lock);
		if (!need) {
			rc = rados_watch_check(l->io, h);
			if (rc < 0) {
				log_warn("rlog %s: the watch broke: %s", l->name, strerror(-rc));
				need = 1;
			} else if (rc > SILENT_MS && !silent) {
				log_warn("rlog %s: the watch was not confirmed for %d ms", l->name, rc);
				silent = 1;
			} else if (rc <= SILENT_MS && silent) {
				log_info("rlog %s: the watch is confirmed again", l->name);
				silent = 0;
				l->wcb(l->warg);
			}
		}
		if (need) {
			rc = rewatch(l, h);
			if (rc == 0) {
				log_info("rlog %s: watching the head again", l->name);
				failing = silent = 0;
				l->wcb(l->warg);
			} else if (!failing++) {
				log_warn("rlog %s: cannot watch the head again: %s (retrying)", l->name,
					 strerror(-rc));
			}
		}
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int rlog_watch(struct rlog *l, void (*cb)(void *arg), void *arg)
{
	uint64_t h = 0;
	int rc;

	pthread_mutex_lock(&l->lock);
	if (l->watching) {
		pthread_mutex_unlock(&l->lock);
		return -EBUSY;
	}
	l->watching = 1;            /* claimed: set cb before a notify can come */
	l->wcb = cb;
	l->warg = arg;
	pthread_mutex_unlock(&l->lock);
	rc = rados_watch3(l->io, RLOG_HEAD, &h, watch_cb, watch_err, WATCH_TIMEOUT_S, l);
	pthread_mutex_lock(&l->lock);
	if (rc == 0) {
		l->whandle = h;
		l->watch_stop = 0;
		rc = -pthread_create(&l->keeper, NULL, keeper, l);
	}
	if (rc) {
		l->watching = 0;
		l->whandle = 0;
	}
	pthread_mutex_unlock(&l->lock);
	if (rc && h) {
		rados_unwatch2(l->io, h);
		rados_watch_flush(l->cluster);
	}
	if (rc)
		log_err("rlog %s: cannot watch the head: %s (%s)", l->name, strerror(-rc),
			log_errname(rc));
	return rc;
}

void rlog_watch_stop(struct rlog *l)
{
	uint64_t h;

	pthread_mutex_lock(&l->lock);
	if (!l->watching) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	l->watch_stop = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->keeper, NULL);
	pthread_mutex_lock(&l->lock);
	h = l->whandle;
	l->whandle = 0;
	pthread_mutex_unlock(&l->lock);
	if (h)
		rados_unwatch2(l->io, h);
	rados_watch_flush(l->cluster);      /* no callback runs after this */
	pthread_mutex_lock(&l->lock);
	l->watching = 0;
	pthread_mutex_unlock(&l->lock);
}

/* ---- followers' records ---- */

/* 1-63 printable ASCII characters, no space. */
static int id_ok(const char *id)
{
	size_t n = id ? strnlen(id, 64) : 0;

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (id[i] <= 0x20 || id[i] >= 0x7f)
			return 0;
	return 1;
}

static void record_encode(unsigned char out[RLOG_FOLLOWER_LEN], const struct rlog_follower *f)
{
	memset(out, 0, RLOG_FOLLOWER_LEN);
	out[0] = 1;                                 /* version */
	rlog_put64(out + 8, f->applied);
	rlog_put64(out + 16, f->horizon);
	rlog_put64(out + 24, f->seq);
	memcpy(out + 32, f->host, strnlen(f->host, sizeof(f->host)));
}

static int record_decode(const char *key, const void *v, size_t len, struct rlog_follower *f)
{
	const unsigned char *p = v;

	memset(f, 0, sizeof(*f));
	if (len >= 1 && p[0] > 1)
		return -EPROTO;
	if (len != RLOG_FOLLOWER_LEN || p[0] != 1 || memchr(p + 32, 0, 64) == NULL ||
	    strlen(key) < 3 || strlen(key) > 65)
		return -EUCLEAN;
	snprintf(f->id, sizeof(f->id), "%s", key + 2);
	f->applied = rlog_get64(p + 8);
	f->horizon = rlog_get64(p + 16);
	f->seq = rlog_get64(p + 24);
	memcpy(f->host, p + 32, 64);
	return 0;
}

int rlog_follower_put(struct rlog *l, const struct rlog_follower *f)
{
	unsigned char rec[RLOG_FOLLOWER_LEN];
	char rkey[80], xkey[80];
	const char *kp[1] = { rkey }, *vp[1] = { (const char *)rec };
	size_t vl[1] = { RLOG_FOLLOWER_LEN };
	rados_write_op_t op;
	int prval = 0, rc;

	if (!id_ok(f->id) || strnlen(f->host, sizeof(f->host)) >= sizeof(f->host))
		return -EINVAL;
	snprintf(rkey, sizeof(rkey), "r.%s", f->id);
	snprintf(xkey, sizeof(xkey), "x.%s", f->id);
	record_encode(rec, f);
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	/* a missing key compares equal to "": not expired */
	rados_write_op_omap_cmp(op, xkey, LIBRADOS_CMPXATTR_OP_EQ, "", 0, &prval);
	rados_write_op_omap_set(op, kp, vp, vl, 1);
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_TRY);
	rados_release_write_op(op);
	if (rc == -ECANCELED) {
		log_warn("rlog %s: follower %s was expired by the writer", l->name, f->id);
		return -ESTALE;
	}
	return rc < 0 ? rc : 0;
}

int rlog_follower_del(struct rlog *l, const char *id)
{
	char rkey[80], xkey[80];
	const char *keys[2] = { rkey, xkey };

	if (!id_ok(id))
		return -EINVAL;
	snprintf(rkey, sizeof(rkey), "r.%s", id);
	snprintf(xkey, sizeof(xkey), "x.%s", id);
	return rlog_omap_rm(l, keys, 2, 0);
}

int rlog_followers(struct rlog *l, int (*cb)(void *arg, const struct rlog_follower *f), void *arg)
{
	char after[80] = "r.";

	for (;;) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it = NULL;
		unsigned char more = 0;
		struct rlog_follower f;
		char *k, *v;
		size_t vl;
		int pv = 0, rc;

		if (!op)
			return -ENOMEM;
		rados_read_op_omap_get_vals2(op, after, "r.", 256, &it, &more, &pv);
		rc = rados_read_op_operate(op, l->io, RLOG_HEAD, 0);
		if (rc >= 0)
			rc = pv;
		while (rc >= 0 && rados_omap_get_next(it, &k, &v, &vl) == 0 && k) {
			snprintf(after, sizeof(after), "%s", k);
			rc = record_decode(k, v, vl, &f);
			if (rc)
				log_err("rlog %s: follower record %s: %s (%s)", l->name, k,
					rc == -EPROTO ? "a newer version" : "damaged", log_errname(rc));
			else
				rc = cb(arg, &f);
		}
		if (it)
			rados_omap_get_end(it);
		rados_release_read_op(op);
		if (rc || !more)
			return rc;
	}
}

int rlog_follower_expire(struct rlog *l, const char *id)
{
	char rkey[80], xkey[80], hx[17];
	const char *rk[1] = { rkey }, *xk[1] = { xkey };
	unsigned char v[8];
	const char *vp[1] = { (const char *)v };
	size_t vl[1] = { 8 };
	rados_write_op_t op;
	uint64_t epoch;
	int guarded, rc;

	if (!id_ok(id))
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	guarded = l->state != S_NONE;
	epoch = guarded ? l->epoch : 0;
	pthread_mutex_unlock(&l->lock);
	snprintf(rkey, sizeof(rkey), "r.%s", id);
	snprintf(xkey, sizeof(xkey), "x.%s", id);
	rlog_put64(v, epoch);
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	if (guarded) {
		rlog_hex16(hx, epoch);
		rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, hx, 16);
	}
	rados_write_op_omap_set(op, xk, vp, vl, 1);
	rados_write_op_omap_rm_keys(op, rk, 1);
	rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_FORCE);
	rados_release_write_op(op);
	if (guarded && (rc == -ECANCELED || rc == -ESHUTDOWN)) {
		struct rlog_head h;
		int r = rlog_fenced_check(l, epoch, rc, &h);
		rc = r ? r : -EAGAIN;
	}
	if (rc >= 0)
		log_info("rlog %s: follower %s expired", l->name, id);
	return rc < 0 ? rc : 0;
}

int rlog_follower_expired(struct rlog *l, const char *id)
{
	rados_read_op_t op;
	rados_omap_iter_t it = NULL;
	char xkey[80], *k, *v;
	const char *keys[1] = { xkey };
	size_t vl;
	int prval = 0, rc;

	if (!id_ok(id))
		return -EINVAL;
	snprintf(xkey, sizeof(xkey), "x.%s", id);
	op = rados_create_read_op();
	if (!op)
		return -ENOMEM;
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
