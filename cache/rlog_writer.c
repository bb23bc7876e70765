/* rlog_writer — the writer's lease and sessions (rlog.h): the lock and its
 * renewal thread, takeovers (waiting, breaking, blocklisting), the epoch
 * bump, the session states. The invariants are in rlog_int.h; (3) and (6)
 * are kept here (appends and trims: rlog_append.c). */
#include "cache/rlog_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/log.h"

#define RETRY_MS       200     /* a takeover waiting: how often it tries */
#define FORCE_TRIES    5

/* ---- session state (invariant 6) ---- */

/* Caller holds lock. */
static void fence_locked(struct rlog *l, const char *why)
{
	if (l->state == S_FENCED)
		return;
	log_err("rlog %s: writer session of epoch %" PRIu64 " fenced: %s: appends fail (ESTALE)",
		l->name, l->epoch, why);
	l->state = S_FENCED;
	pthread_cond_broadcast(&l->cond);
}

/* Caller holds lock. @return 0 when the session may append, else -ESTALE. */
static int check_locked(struct rlog *l)
{
	if (l->state != S_LIVE)
		return -ESTALE;
	if (rlog_now_ms() - l->renewed_ms > (int64_t)(l->lease_ms - l->lease_ms / 5)) {
		fence_locked(l, "the lease was not renewed in time");
		return -ESTALE;
	}
	return 0;
}

int rlog_session_epoch(struct rlog *l, uint64_t *epoch)
{
	int rc;

	pthread_mutex_lock(&l->lock);
	rc = check_locked(l);
	*epoch = l->epoch;
	pthread_mutex_unlock(&l->lock);
	return rc;
}

int rlog_lease_ok(struct rlog *l)
{
	int rc;

	pthread_mutex_lock(&l->lock);
	rc = check_locked(l);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

int rlog_fenced_check(struct rlog *l, uint64_t epoch, int rc, struct rlog_head *h)
{
	char why[96];
	int r;

	if (rc == -ESHUTDOWN) {      /* EBLOCKLISTED: a takeover blocklisted us */
		pthread_mutex_lock(&l->lock);
		if (l->epoch == epoch)
			fence_locked(l, "this client was blocklisted (a takeover)");
		pthread_mutex_unlock(&l->lock);
		return -ESTALE;
	}
	r = rlog_head_read(l, h);
	if (r)
		return r;
	if (h->epoch == epoch)
		return 0;
	snprintf(why, sizeof(why), "the epoch moved to %" PRIu64, h->epoch);
	pthread_mutex_lock(&l->lock);
	if (l->epoch == epoch)
		fence_locked(l, why);
	pthread_mutex_unlock(&l->lock);
	return -ESTALE;
}

/* ---- the lock ---- */

/* One holder of the lock, as rados_list_lockers tells it. */
struct locker {
	char client[64];        /* "client.4106" */
	char cookie[RLOG_COOKIE_MAX];
	char addr[128];         /* "v1:127.0.0.1:0/2624372210" */
};

static void copy_cut(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* @return the number of lockers (0 or 1: the lock is exclusive; K gets
 * the first), or -errno. */
static int lockers(struct rlog *l, struct locker *k)
{
	size_t tl = 64, cl = 256, kl = 1024, al = 512;
	char *tag = NULL, *cli = NULL, *ck = NULL, *ad = NULL;
	ssize_t n = -ERANGE;
	int excl;

	memset(k, 0, sizeof(*k));
	for (int tries = 0; tries < 3 && n == -ERANGE; tries++) {
		free(tag), free(cli), free(ck), free(ad);
		tag = malloc(tl), cli = malloc(cl), ck = malloc(kl), ad = malloc(al);
		if (!tag || !cli || !ck || !ad) {
			n = -ENOMEM;
			break;
		}
		n = rados_list_lockers(l->io, RLOG_HEAD, RLOG_LOCK, &excl, tag, &tl, cli, &cl,
				       ck, &kl, ad, &al);
	}
	if (n > 0) {
		copy_cut(k->client, sizeof(k->client), cli, strnlen(cli, cl));
		copy_cut(k->cookie, sizeof(k->cookie), ck, strnlen(ck, kl));
		copy_cut(k->addr, sizeof(k->addr), ad, strnlen(ad, al));
	}
	free(tag), free(cli), free(ck), free(ad);
	return n < 0 ? (int)n : n > 0;
}

/* The holder text of a cookie "<16 hex> <holder>" (the whole cookie when
 * it is not one of ours). */
static const char *cookie_holder(const char *cookie)
{
	const char *sp = strchr(cookie, ' ');

	return sp && sp - cookie == 16 ? sp + 1 : cookie;
}

int rlog_holder(struct rlog *l, char *buf, size_t cap)
{
	struct locker k;
	int n = lockers(l, &k);

	if (cap)
		buf[0] = '\0';
	if (n <= 0)
		return n;
	if (cap)
		copy_cut(buf, cap, cookie_holder(k.cookie), strlen(cookie_holder(k.cookie)));
	return 1;
}

/* Make this handle's cookie "<16 random hex> HOLDER since TIME" and the
 * lock's description (caller holds slock; no renewer runs). */
static void make_cookie(struct rlog *l, const char *holder)
{
	char clean[RLOG_HOLDER_MAX - 40], when[32];
	uint64_t rnd = 0;
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	for (i = 0; holder[i] && i < sizeof(clean) - 1; i++)
		clean[i] = holder[i] >= 0x20 && holder[i] < 0x7f ? holder[i] : '?';
	clean[i] = '\0';
	if (l->tag)
		rnd = l->tag;
	else if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)rlog_now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(l->desc, sizeof(l->desc), "%s since %s", clean, when);
	snprintf(l->cookie, sizeof(l->cookie), "%016" PRIx64 " %s", rnd, l->desc);
}

void rlog_set_tag(struct rlog *l, uint64_t tag)
{
	pthread_mutex_lock(&l->slock);
	if (tag != l->tag) {
		l->tag = tag;
		l->holder[0] = '\0';       /* the next acquire makes a new cookie */
	}
	pthread_mutex_unlock(&l->slock);
}

/* Is K's lock held by an earlier session of this handle's tag (a process
 * that is gone: rlog_set_tag), from another client than ours? */
static int own_dead_session(const struct rlog *l, const struct locker *k)
{
	char want[18], own[48];

	if (!l->tag)
		return 0;
	snprintf(want, sizeof(want), "%016" PRIx64 " ", l->tag);
	snprintf(own, sizeof(own), "client.%" PRIu64, (uint64_t)rados_get_instance_id(l->cluster));
	return strncmp(k->cookie, want, 17) == 0 && strcmp(k->client, own) != 0;
}

/* Keep K's client from doing anything more in the cluster (a writer that
 * is dead, or only paused: invariant 3 fences its appends already; this
 * fences its image puts and deletes too). Never our own connection.
 * A failure (the monitor not answering) is logged: the epoch still
 * fences the log. */
static void blocklist(struct rlog *l, const struct locker *k)
{
	char own[48], addr[128];
	int rc;

	snprintf(own, sizeof(own), "client.%" PRIu64, (uint64_t)rados_get_instance_id(l->cluster));
	if (!k->addr[0] || strcmp(own, k->client) == 0)
		return;
	snprintf(addr, sizeof(addr), "%s", k->addr);
	rc = rados_blocklist_add(l->cluster, addr, 0);
	if (rc)
		log_warn("rlog %s: cannot blocklist the old writer %s at %s: %s (the epoch still "
			 "fences its appends)", l->name, k->client, k->addr, strerror(-rc));
	else
		log_warn("rlog %s: blocklisted the old writer %s at %s (%s)", l->name, k->client,
			 k->addr, cookie_holder(k->cookie));
}

/* Fence the holder K (blocklist) and break its lease. @return 0 (also
 * when it was gone already) or -errno. */
static int break_lease(struct rlog *l, const struct locker *k)
{
	int rc;

	blocklist(l, k);
	rc = rados_break_lock(l->io, RLOG_HEAD, RLOG_LOCK, k->client, k->cookie);
	return rc == -ENOENT ? 0 : rc;
}

/* Did CLIENT's last session end with rlog_release (pfs.writer says
 * "released CLIENT ...")? */
static int released_by(struct rlog *l, const char *client)
{
	char buf[RLOG_COOKIE_MAX + 200], want[80];
	int n = rados_getxattr(l->io, RLOG_HEAD, RLOG_X_WRITER, buf, sizeof(buf) - 1);

	if (n < 0)
		return 0;
	buf[n] = '\0';
	snprintf(want, sizeof(want), "released %s ", client);
	return strncmp(buf, want, strlen(want)) == 0;
}

/* Take the lock for LEASE_MS (RENEW: a lock this handle holds is kept).
 * @param[out] sent_ms when the successful request was sent
 * @return 0, -EBUSY, -errno. */
static int take_lock(struct rlog *l, unsigned lease_ms, unsigned wait_s, int force,
		     int64_t *sent_ms)
{
	struct timeval tv = { .tv_sec = lease_ms / 1000, .tv_usec = (lease_ms % 1000) * 1000 };
	int64_t deadline = rlog_now_ms() + (int64_t)wait_s * 1000;
	struct locker old = { 0 }, k = { 0 };
	int rc, forced = 0, empty = 0;

	for (;;) {
		*sent_ms = rlog_now_ms();
		rc = rados_lock_exclusive(l->io, RLOG_HEAD, RLOG_LOCK, l->cookie, l->desc, &tv,
					  LIBRADOS_LOCK_FLAG_RENEW);
		if (rc != -EBUSY)
			break;
		rc = lockers(l, &k);
		if (rc < 0)
			return rc;
		if (rc == 0 && empty++ < 3)
			continue;       /* it expired in between: try again at once */
		if (rc > 0 && own_dead_session(l, &k) && forced < FORCE_TRIES) {
			log_warn("rlog %s: the lease is held by an earlier session of this store (%s) "
				 "that is gone: taking it back", l->name, cookie_holder(k.cookie));
			forced++;
			if ((rc = break_lease(l, &k)) != 0)
				return rc;
			continue;
		}
		if (rc > 0 && !old.client[0])
			log_warn("rlog %s: the lease is held by %s (%s at %s)%s", l->name,
				 cookie_holder(k.cookie), k.client, k.addr,
				 force ? ": breaking it" : wait_s ? ": waiting for it to expire" : "");
		if (rc > 0)
			old = k;        /* the last holder seen */
		if (rc > 0 && force && forced < FORCE_TRIES) {
			forced++;
			if ((rc = break_lease(l, &k)) != 0)
				return rc;
			continue;
		}
		if (force || rlog_now_ms() >= deadline) {
			log_err("rlog %s: taking the lease: store is being written by %s (lease held) (EBUSY)", l->name,
				cookie_holder(k.cookie));
			return -EBUSY;
		}
		{
			int64_t left = deadline - rlog_now_ms();
			struct timespec ts = { 0, (left < RETRY_MS ? left : RETRY_MS) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (rc == 0 && old.client[0] && !forced && !released_by(l, old.client))
		blocklist(l, &old);     /* waited out: it may only be paused */
	return rc;
}

/* ---- the renewal thread ---- */

static void *renewer(void *arg)
{
	struct rlog *l = arg;
	int64_t next;

	pthread_mutex_lock(&l->lock);
	next = l->renewed_ms + l->lease_ms / 3;
	for (;;) {
		struct timeval tv;
		int64_t t0;
		int rc;

		while (!l->renew_stop && rlog_now_ms() < next)
			rlog_cond_wait_until(l, next);
		if (l->renew_stop || (l->state != S_LIVE && l->state != S_DOUBT))
			break;
		tv.tv_sec = l->lease_ms / 1000;
		tv.tv_usec = (l->lease_ms % 1000) * 1000;
		pthread_mutex_unlock(&l->lock);
		t0 = rlog_now_ms();
		rc = FAULT("rlog_renew");
		if (!rc)
			rc = rados_lock_exclusive(l->io, RLOG_HEAD, RLOG_LOCK, l->cookie, l->desc,
						  &tv, LIBRADOS_LOCK_FLAG_RENEW);
		pthread_mutex_lock(&l->lock);
		if (rc == 0) {
			if (t0 > l->renewed_ms)
				l->renewed_ms = t0;
			next = t0 + l->lease_ms / 3;
		} else if (rc == -EBUSY || rc == -ENOENT || rc == -ESHUTDOWN) {
			fence_locked(l, rc == -EBUSY ? "the lock is held by another writer"
				       : rc == -ENOENT ? "the lock was broken"
				       : "this client was blocklisted (a takeover)");
			break;
		} else {
			log_warn("rlog %s: lease renewal failed: %s (last renewed %" PRId64
				 " ms ago, lease %u ms)", l->name, strerror(-rc),
				 rlog_now_ms() - l->renewed_ms, l->lease_ms);
			next = rlog_now_ms() + l->lease_ms / 6;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

void rlog_renewer_stop(struct rlog *l)
{
	pthread_mutex_lock(&l->lock);
	if (!l->renewing) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	l->renew_stop = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->renewer, NULL);
	pthread_mutex_lock(&l->lock);
	l->renewing = 0;
	l->renew_stop = 0;
	pthread_mutex_unlock(&l->lock);
}

/* ---- acquire / release ---- */

/* Bump pfs.epoch by compare-and-set (invariant 3) and record who we are in
 * pfs.writer. @param[out] epoch the new one. @return 0 or -errno. */
static int bump_epoch(struct rlog *l, uint64_t *epoch)
{
	for (int tries = 0; tries < 5; tries++) {
		rados_write_op_t op;
		struct rlog_head h;
		char old[17], new[17], who[RLOG_COOKIE_MAX + 160], *addrs = NULL;
		int rc = rlog_head_read(l, &h);

		if (rc)
			return rc;
		rlog_hex16(old, h.epoch);
		rlog_hex16(new, h.epoch + 1);
		if (rados_getaddrs(l->cluster, &addrs) < 0)
			addrs = NULL;
		snprintf(who, sizeof(who), "client.%" PRIu64 " %s %s",
			 (uint64_t)rados_get_instance_id(l->cluster), addrs ? addrs : "?", l->desc);
		if (addrs)
			rados_buffer_free(addrs);
		op = rados_create_write_op();
		if (!op)
			return -ENOMEM;
		rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, old, 16);
		rados_write_op_setxattr(op, RLOG_X_EPOCH, new, 16);
		rados_write_op_setxattr(op, RLOG_X_WRITER, who, strlen(who));
		rc = rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_TRY);
		rados_release_write_op(op);
		if (rc >= 0) {
			*epoch = h.epoch + 1;
			return 0;
		}
		if (rc != -ECANCELED)
			return rc;
	}
	return -EAGAIN;
}

int rlog_acquire(struct rlog *l, unsigned lease_s, unsigned wait_s, int force, const char *holder,
		 uint64_t *epoch, uint64_t *tail)
{
	struct rlog_head h;
	uint64_t e = 0;
	int64_t sent;
	int rc;

	*epoch = *tail = 0;
	if (lease_s == 0 || lease_s > 86400)
		return -EINVAL;
	pthread_mutex_lock(&l->slock);
	rlog_renewer_stop(l);
	pthread_mutex_lock(&l->lock);
	l->state = S_NONE;
	pthread_mutex_unlock(&l->lock);
	if (!holder || !*holder)
		holder = "unknown";
	if (!l->cookie[0] || strncmp(l->holder, holder, sizeof(l->holder)) != 0) {
		if (l->cookie[0])
			rados_unlock(l->io, RLOG_HEAD, RLOG_LOCK, l->cookie);   /* ours, if still */
		make_cookie(l, holder);
		snprintf(l->holder, sizeof(l->holder), "%s", holder);
	}
	rc = take_lock(l, lease_s * 1000, wait_s, force, &sent);
	if (rc == 0)
		rc = bump_epoch(l, &e);
	if (rc == 0)
		rc = rlog_head_read(l, &h);     /* the tail, after the bump */
	if (rc == 0 && h.epoch != e)
		rc = -ESTALE;                   /* bumped again by another: not ours */
	if (rc) {
		if (rc != -EBUSY)
			log_err("rlog %s: cannot start a writer session: %s (%s)", l->name, strerror(-rc),
				log_errname(rc));
		goto out;
	}
	pthread_mutex_lock(&l->lock);
	l->state = S_LIVE;
	l->epoch = e;
	l->lease_ms = lease_s * 1000;
	l->renewed_ms = sent;
	l->renew_stop = 0;
	rc = pthread_create(&l->renewer, NULL, renewer, l);
	l->renewing = rc == 0;
	if (rc) {
		l->state = S_NONE;
		rc = -rc;
	}
	pthread_mutex_unlock(&l->lock);
	if (rc == 0) {
		*epoch = e;
		*tail = h.tail;
		log_info("rlog %s: writer session of epoch %" PRIu64 " (%s), log tail %" PRIu64
			 ", lease %u s", l->name, e, l->desc, h.tail, lease_s);
	}
out:
	pthread_mutex_unlock(&l->slock);
	return rc;
}

/* Say in pfs.writer that this session ended cleanly (epoch-guarded), so
 * that a takeover that waited for it does not blocklist this client. */
static void mark_released(struct rlog *l, uint64_t epoch)
{
	rados_write_op_t op = rados_create_write_op();
	char hx[17], who[RLOG_COOKIE_MAX + 200];

	if (!op)
		return;
	rlog_hex16(hx, epoch);
	snprintf(who, sizeof(who), "released client.%" PRIu64 " %s",
		 (uint64_t)rados_get_instance_id(l->cluster), l->desc);
	rados_write_op_cmpxattr(op, RLOG_X_EPOCH, LIBRADOS_CMPXATTR_OP_EQ, hx, 16);
	rados_write_op_setxattr(op, RLOG_X_WRITER, who, strlen(who));
	rados_write_op_operate2(op, l->io, RLOG_HEAD, NULL, LIBRADOS_OPERATION_FULL_FORCE);
	rados_release_write_op(op);
}

int rlog_release(struct rlog *l)
{
	uint64_t epoch;
	int rc = 0, had, live;

	pthread_mutex_lock(&l->slock);
	rlog_renewer_stop(l);
	pthread_mutex_lock(&l->lock);
	had = l->state != S_NONE;
	live = l->state == S_LIVE || l->state == S_DOUBT;
	epoch = l->epoch;
	l->state = S_NONE;
	pthread_mutex_unlock(&l->lock);
	if (live)
		mark_released(l, epoch);
	if (had && l->cookie[0]) {
		rc = rados_unlock(l->io, RLOG_HEAD, RLOG_LOCK, l->cookie);
		if (rc == -ENOENT)
			rc = 0;         /* not ours any more: nothing to give back */
		if (rc)
			log_warn("rlog %s: cannot give the lease back: %s (it expires)", l->name,
				 strerror(-rc));
	}
	pthread_mutex_unlock(&l->slock);
	return rc;
}
