/* store_rados — see store_rados.h and docs/rados.md.
 *
 * Invariants:
 *  (1) The writer's local index never holds a change the log lacks: every
 *      logged write txn reaches the commit hook, which appends its entry at
 *      tail + 1 under the session's epoch and returns only once RADOS
 *      acknowledged it (idx_lmdb.c (7)). r->tail is the position of the
 *      newest entry both in the log and in the local index.
 *  (2) After an append whose outcome is unknown (a timeout), or a lost
 *      lease, the next commit first starts a new session (lease, epoch
 *      bump: an append of the old epoch still in flight can no longer
 *      land) and reads the tail: an entry of ours that landed after all
 *      makes the local index behind the log (the store refuses commits
 *      until it is opened again, which applies it); a tail moved by
 *      another writer means we were taken over (EROFS from then on).
 *  (3) A follower applies entries in order, each in one local txn, under
 *      commit_lock (like a commit: no version is loaded and pinned between
 *      its txn and its releases), then drops the cached versions and tells
 *      the daemon (change callback) what changed.
 *  (4) Images are deleted only by the writer, only when every live
 *      follower's horizon is at or past the releasing entry (tagged with
 *      r->tail after the commit: >= the releasing entry). A follower's
 *      horizon is its applied position, held back to (release - 1) by every
 *      image an entry released while a version here pins it.
 *  (5) A follower registers (with the position it starts from as its
 *      horizon) before it catches up, and serves only once caught up: the
 *      writer never deletes an image of a state the follower can show.
 * Lock order: st->commit_lock, then r->m (a leaf).
 */
#include "index/store_int.h"
#include "index/store_rados.h"
#include "index/ilog.h"
#include "cache/rados_conn.h"
#include "cache/rlog.h"
#include "cache/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

enum { ROLE_TOOL = 0, ROLE_WRITER, ROLE_FOLLOWER };

struct fol {                  /* a follower as the writer sees it */
	char id[64];
	uint64_t seq, horizon, applied;
	int64_t changed_ns;       /* our clock, when seq last changed */
	int dead;
	uint64_t seen;            /* the scan that last saw its record */
};

struct held { uint64_t id, lsn; };

struct srados {
	struct store *st;
	struct rconn *conn;
	struct rlog *log;
	int role;
	unsigned lease_s, follower_lease_s, base_every;
	char host[64];
	uint64_t epoch;
	uint64_t tail;            /* atomic: invariant (1); a follower's applied */
	int uncertain;            /* protected by commit_lock: invariant (2) */
	int fenced;               /* atomic: taken over (EROFS) or behind (EIO) */
	pthread_mutex_t m;        /* leaf: everything below */
	pthread_cond_t c;
	pthread_t thread;
	int running, stopping, wake;
	uint64_t horizon;         /* atomic (writer): min horizon of live followers */
	struct fol *fol;          /* writer: followers seen */
	size_t nfol;
	uint64_t last_base;       /* writer: position of the newest base */
	uint64_t scans;           /* writer: passes that read the records */
	char id[64];              /* follower: this session's id */
	uint64_t seq;
	struct held *held;        /* follower: zombies holding the horizon */
	size_t nheld, capheld;
	uint64_t applying;        /* follower: the entry being applied */
	uint64_t held_floor;      /* follower: a held image could not be noted
				   * (no memory): the horizon stays at or below this */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t aload(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void astore(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

int srados_follower(const struct store *st)
{
	return st->rados && st->rados->role == ROLE_FOLLOWER;
}

/* ---- catching up from the log ---- */

struct apply_ctx {
	struct store *st;
	int n;
};

/* What an applied op changed: cached versions, pins, the daemon's caches. */
static void applied_op(void *arg, const struct ilog_op *op)
{
	struct apply_ctx *a = arg;
	struct store *st = a->st;
	struct ilog_effect e;

	ilog_effect(op, &e);
	switch (e.what) {
	case ILOG_W_INODE:
		store_pvcur_drop(st, e.ino);
		store_changed(st, STORE_CHANGE_INODE, e.ino, 0, NULL, 0);
		break;
	case ILOG_W_DIRENT:
		store_changed(st, STORE_CHANGE_DIRENT, 0, e.parent, e.name, e.name_len);
		break;
	case ILOG_W_REF_GONE: {
		struct frag_desc d = { .id = e.frag };
		store_release_frag(st, &d);       /* a zombie when pinned here */
		break;
	}
	case ILOG_W_REF_SET:
		store_unzombie(st, e.frag);
		break;
	case ILOG_W_SNAP:
		store_changed(st, STORE_CHANGE_ALL, 0, 0, NULL, 0);
		break;
	default:
		break;
	}
	a->n++;
}

static int apply_one(void *arg, uint64_t lsn, const void *data, size_t len)
{
	struct apply_ctx *a = arg;
	struct srados *r = a->st->rados;
	int rc;

	store_xlock(a->st);
	r->applying = lsn;
	rc = idx_apply(a->st->idx, data, len, applied_op, a);
	if (rc >= 0)
		astore(&r->tail, lsn);
	store_xunlock(a->st);
	if (rc < 0)
		log_err("%s: index log entry %" PRIu64 ": applying: %s (%s)", a->st->dir, lsn,
			strerror(-rc), log_errname(rc));
	return rc < 0 ? rc : 0;
}

struct base_ctx {
	struct idx_txn *t;
};

static int base_chunk(void *arg, const void *data, size_t len)
{
	return idx_base_add(((struct base_ctx *)arg)->t, data, len);
}

/* Replace the local index by the newest base. */
static int load_base(struct store *st)
{
	struct srados *r = st->rados;
	struct base_ctx b;
	uint64_t lsn = 0;
	int rc;

	store_xlock(st);
	rc = idx_base_begin(st->idx, &b.t);
	if (!rc) {
		rc = rlog_base_get(r->log, &lsn, base_chunk, &b);
		rc = idx_base_end(b.t, lsn, rc);
	}
	if (!rc)
		astore(&r->tail, lsn);
	store_xunlock(st);
	if (rc) {
		log_err("%s: loading the store's base from the cluster failed: %s (%s)", st->dir,
			strerror(-rc), log_errname(rc));
		return rc;
	}
	store_pvcur_drop_range(st, 0, UINT64_MAX);
	store_changed(st, STORE_CHANGE_ALL, 0, 0, NULL, 0);
	log_info("%s: the index was loaded from the base at log position %" PRIu64, st->dir, lsn);
	return 0;
}

/* Apply every entry after the local position; from a base when the log
 * no longer holds the next one (or FROM_BASE). */
static int catch_up(struct store *st, int from_base)
{
	struct srados *r = st->rados;
	struct apply_ctx a = { st, 0 };
	uint64_t have = 0;
	int rc = idx_log_lsn(st->idx, &have);

	if (rc)
		return rc;
	astore(&r->tail, have);
	if (from_base && (rc = load_base(st)) != 0)
		return rc;
	rc = rlog_read(r->log, aload(&r->tail), 0, apply_one, &a);
	if (rc == -ERANGE && !from_base) {
		rc = load_base(st);
		if (!rc)
			rc = rlog_read(r->log, aload(&r->tail), 0, apply_one, &a);
	}
	if (!rc && a.n)
		log_info("%s: caught up with the index log: position %" PRIu64, st->dir, aload(&r->tail));
	return rc;
}

/* ---- the writer ---- */

/* Invariant (2): a new session after an unknown outcome or a lost lease. */
static int resession(struct srados *r)
{
	uint64_t epoch, tail;
	int rc = rlog_acquire(r->log, r->lease_s, 0, 0, r->host, &epoch, &tail);

	if (rc) {
		log_err("%s: the writer's lease could not be taken again: %s (%s)", r->st->dir,
			strerror(-rc), log_errname(rc == -EBUSY ? -EROFS : rc));
		return rc == -EBUSY ? -EROFS : rc;
	}
	r->epoch = epoch;
	r->uncertain = 0;
	if (tail == aload(&r->tail))
		return 0;
	__atomic_store_n(&r->fenced, tail > aload(&r->tail) + 1 ? -EROFS : -EIO, __ATOMIC_RELAXED);
	log_err("%s: the log holds entries this host did not apply (log at %" PRIu64 ", here %" PRIu64
		"): %s; no more commits until the store is mounted again (EIO)", r->st->dir, tail, aload(&r->tail),
		tail > aload(&r->tail) + 1 ? "another writer took over" : "an append that timed out landed");
	return -EIO;
}

/* The commit hook (idx_lmdb.c (7)), under LMDB's writer lock. */
static int append_hook(void *arg, struct ilog_buf *buf, uint64_t *lsn)
{
	struct srados *r = arg;
	const void *data;
	size_t len;
	uint64_t next, first, last;
	int rc = __atomic_load_n(&r->fenced, __ATOMIC_RELAXED);

	if (rc)
		return rc;
	if ((r->uncertain || rlog_lease_ok(r->log)) && (rc = resession(r)) != 0)
		return rc;
	next = aload(&r->tail) + 1;
	rc = ilog_buf_finish(buf, next, r->epoch);
	if (rc)
		return rc;
	data = buf->data;
	len = buf->len;
	rc = rlog_append(r->log, next, &data, &len, 1);
	if (rc == -ESTALE) {
		__atomic_store_n(&r->fenced, -EROFS, __ATOMIC_RELAXED);
		log_err("%s: commit: another writer took this store over: no more commits here (EROFS)",
			r->st->dir);
		return -EROFS;
	}
	if (rc && rc != -EEXIST) {
		/* did it land after all? (the OSD may have applied it) */
		if (rlog_tail(r->log, &first, &last) == 0 && last >= next)
			rc = last == next ? 0 : -EIO;
		if (rc) {
			r->uncertain = 1;
			log_err("%s: appending index log entry %" PRIu64 " failed: %s (%s)", r->st->dir, next,
				strerror(-rc), log_errname(rc));
		}
	}
	if (rc == -EEXIST) {
		__atomic_store_n(&r->fenced, -EIO, __ATOMIC_RELAXED);
		log_err("%s: commit: index log position %" PRIu64 " is taken: this host is behind the log (EIO)",
			r->st->dir,
			next);
		return -EIO;
	}
	if (rc)
		return rc;
	astore(&r->tail, next);
	*lsn = next;
	return 0;
}

/* A base is dumped from one read txn (idx_base_dump, which pushes chunks)
 * and uploaded by rlog_base_put (which pulls them): a producer thread and
 * a hand-over of one chunk at a time, so a base of any size takes two
 * chunks of memory, not the index's size. */
struct handover {
	pthread_mutex_t m;
	pthread_cond_t c;
	unsigned char *chunk;        /* owned by the hand-over while set */
	size_t len;
	int done, rc, stop;          /* producer finished (rc), consumer gave up */
	unsigned char *taken;        /* the chunk the consumer holds (freed next call) */
	struct store *st;
	uint64_t lsn;
};

static int ho_emit(void *arg, const void *data, size_t len)
{
	struct handover *h = arg;
	unsigned char *copy = malloc(len);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	pthread_mutex_lock(&h->m);
	while (h->chunk && !h->stop)
		pthread_cond_wait(&h->c, &h->m);
	if (h->stop) {
		pthread_mutex_unlock(&h->m);
		free(copy);
		return -ECANCELED;
	}
	h->chunk = copy;
	h->len = len;
	pthread_cond_broadcast(&h->c);
	pthread_mutex_unlock(&h->m);
	return 0;
}

static void *ho_producer(void *arg)
{
	struct handover *h = arg;
	int rc = idx_base_dump(h->st->idx, (size_t)4 << 20, ho_emit, h, &h->lsn);

	pthread_mutex_lock(&h->m);
	h->done = 1;
	h->rc = rc;
	pthread_cond_broadcast(&h->c);
	pthread_mutex_unlock(&h->m);
	return NULL;
}

static int ho_next(void *arg, const void **data, size_t *len)
{
	struct handover *h = arg;
	int rc;

	pthread_mutex_lock(&h->m);
	free(h->taken);
	h->taken = NULL;
	while (!h->chunk && !h->done)
		pthread_cond_wait(&h->c, &h->m);
	if (h->chunk) {
		h->taken = h->chunk;
		*data = h->chunk;
		*len = h->len;
		h->chunk = NULL;
		pthread_cond_broadcast(&h->c);
		rc = 1;
	} else {
		rc = h->rc ? h->rc : 0;
	}
	pthread_mutex_unlock(&h->m);
	return rc;
}

/* The position the base will stand for: the log position of the read txn
 * the producer opens. rlog_base_put needs it before the first chunk, so
 * the producer's first chunk is awaited (its header carries it). */
static int write_base(struct store *st)
{
	struct srados *r = st->rados;
	struct handover h;
	pthread_t th;
	uint64_t lsn = 0;
	int rc;

	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.m, NULL);
	pthread_cond_init(&h.c, NULL);
	h.st = st;
	rc = -pthread_create(&th, NULL, ho_producer, &h);
	if (rc)
		goto out;
	pthread_mutex_lock(&h.m);
	while (!h.chunk && !h.done)
		pthread_cond_wait(&h.c, &h.m);
	if (h.chunk)
		ilog_check(h.chunk, h.len, &lsn, NULL, NULL);   /* a base chunk: its lsn */
	rc = h.chunk ? 0 : h.rc ? h.rc : -ENODATA;
	pthread_mutex_unlock(&h.m);
	if (!rc)
		rc = rlog_base_put(r->log, lsn, ho_next, &h);
	pthread_mutex_lock(&h.m);
	h.stop = 1;                       /* the producer ends if it still waits */
	pthread_cond_broadcast(&h.c);
	pthread_mutex_unlock(&h.m);
	pthread_join(th, NULL);
	if (!rc && h.rc && h.rc != -ECANCELED)    /* stopped: rlog needed no more */
		rc = h.rc;
out:
	free(h.chunk);
	free(h.taken);
	pthread_mutex_destroy(&h.m);
	pthread_cond_destroy(&h.c);
	if (rc)
		log_warn("%s: writing a base at %" PRIu64 " failed: %s", st->dir, lsn, strerror(-rc));
	else
		r->last_base = lsn;
	return rc;
}

/* One pass of the writer's thread: follower liveness and horizons,
 * expiry, bases, trimming (docs/rados.md). */
struct scan { struct srados *r; int64_t now; uint64_t min_horizon, min_applied; int live; };

static struct fol *fol_find(struct srados *r, const char *id)
{
	for (size_t i = 0; i < r->nfol; i++)
		if (!strcmp(r->fol[i].id, id))
			return &r->fol[i];
	return NULL;
}

static int scan_one(void *arg, const struct rlog_follower *f)
{
	struct scan *s = arg;
	struct srados *r = s->r;
	struct fol *k = fol_find(r, f->id);

	if (!k) {
		struct fol *v = realloc(r->fol, (r->nfol + 1) * sizeof(*v));
		if (!v)
			return 0;
		r->fol = v;
		k = &r->fol[r->nfol++];
		memset(k, 0, sizeof(*k));
		snprintf(k->id, sizeof(k->id), "%s", f->id);
		k->seq = f->seq;
		k->changed_ns = s->now;     /* a new record counts as live from now */
	} else if (k->seq != f->seq) {
		k->seq = f->seq;
		k->changed_ns = s->now;
	}
	k->horizon = f->horizon;
	k->applied = f->applied;
	k->seen = r->scans;
	if (!k->dead && s->now - k->changed_ns > (int64_t)r->follower_lease_s * 1000000000) {
		k->dead = 1;
		rlog_follower_expire(r->log, k->id);
		log_warn("%s: follower %s stopped renewing its record: its images are no longer kept",
			 r->st->dir, k->id);
	}
	if (!k->dead) {
		s->live++;
		if (k->horizon < s->min_horizon)
			s->min_horizon = k->horizon;
		if (k->applied < s->min_applied)
			s->min_applied = k->applied;
	}
	return 0;
}

static void writer_pass(struct srados *r)
{
	struct scan s = { r, now_ns(), UINT64_MAX, UINT64_MAX, 0 };
	uint64_t tail = aload(&r->tail);

	r->scans++;
	if (rlog_followers(r->log, scan_one, &s) != 0)
		return;           /* keep the last horizon: deleting nothing new */
	for (size_t i = 0; i < r->nfol;)         /* records gone: forget them */
		if (r->fol[i].seen != r->scans)
			r->fol[i] = r->fol[--r->nfol];
		else
			i++;
	astore(&r->horizon, s.live ? (s.min_horizon < tail ? s.min_horizon : tail) : tail);
	store_reap_kick(r->st);
	if (r->base_every && tail >= r->last_base + r->base_every && !write_base(r->st)) {
		uint64_t upto = r->last_base < s.min_applied ? r->last_base : s.min_applied;
		if (upto)
			rlog_trim(r->log, upto);
	}
}

/* ---- the follower ---- */

static void follower_record(struct srados *r)
{
	struct rlog_follower f;
	uint64_t applied = aload(&r->tail), horizon = applied;

	memset(&f, 0, sizeof(f));
	pthread_mutex_lock(&r->m);
	for (size_t i = 0; i < r->nheld; i++)
		if (r->held[i].lsn - 1 < horizon)
			horizon = r->held[i].lsn - 1;
	if (r->held_floor && r->held_floor < horizon)
		horizon = r->held_floor;
	f.seq = ++r->seq;
	pthread_mutex_unlock(&r->m);
	snprintf(f.id, sizeof(f.id), "%s", r->id);
	snprintf(f.host, sizeof(f.host), "%s", r->host);
	f.applied = applied;
	f.horizon = horizon;
	if (rlog_follower_put(r->log, &f))
		log_warn("%s: the follower record could not be written", r->st->dir);
}

static void new_follower_id(struct srados *r)
{
	snprintf(r->id, sizeof(r->id), "%.40s.%d.%lld", r->host, (int)getpid(), (long long)now_ns());
}

/* The writer expired this follower (it did not renew its record within
 * the writer's follower_lease: a pause, a partition): images this host
 * held may be gone (an open file reading one gets EIO, never wrong
 * bytes). Register again under a new identity (invariant (5): the
 * horizon is the position it starts from) and re-sync: from the newest
 * base when that is ahead of the local index (never back in time: a
 * reader must not see an older state), else from the log. */
static int resync(struct srados *r)
{
	struct store *st = r->st;
	uint64_t base = 0, here = aload(&r->tail);
	char old[64];

	snprintf(old, sizeof(old), "%s", r->id);
	rlog_follower_del(r->log, old);
	new_follower_id(r);
	follower_record(r);
	if (rlog_base_pos(r->log, &base) == 0 && base > here) {
		log_warn("%s: the writer expired this follower (%s: its record was not renewed in time): "
			 "re-syncing as %s from the newest base (log position %" PRIu64 ", this index at %"
			 PRIu64 ")", st->dir, old, r->id, base, here);
		return load_base(st);
	}
	log_warn("%s: the writer expired this follower (%s: its record was not renewed in time): "
		 "re-syncing as %s from the log at position %" PRIu64 " (the newest base, at %" PRIu64
		 ", is not newer)", st->dir, old, r->id, here, base);
	return 0;
}

static void follower_pass(struct srados *r)
{
	struct store *st = r->st;
	struct apply_ctx a = { st, 0 };
	int rc;

	if (rlog_follower_expired(r->log, r->id) == 1 && resync(r))
		return;
	rc = rlog_read(r->log, aload(&r->tail), 0, apply_one, &a);
	if (rc == -ERANGE && !load_base(st))
		rc = rlog_read(r->log, aload(&r->tail), 0, apply_one, &a);
	follower_record(r);
}

/* ---- the thread of either role ---- */

static void *thread_main(void *arg)
{
	struct srados *r = arg;
	struct timespec until;

	pthread_mutex_lock(&r->m);
	while (!r->stopping) {
		if (!r->wake) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;                  /* the fallback poll */
			pthread_cond_timedwait(&r->c, &r->m, &until);
		}
		if (r->stopping)
			break;
		r->wake = 0;
		pthread_mutex_unlock(&r->m);
		if (r->role == ROLE_FOLLOWER)
			follower_pass(r);
		else
			writer_pass(r);
		pthread_mutex_lock(&r->m);
	}
	pthread_mutex_unlock(&r->m);
	return NULL;
}

static void on_notify(void *arg)
{
	struct srados *r = arg;

	pthread_mutex_lock(&r->m);
	r->wake = 1;
	pthread_cond_signal(&r->c);
	pthread_mutex_unlock(&r->m);
}

/* ---- opening and closing ---- */

/* This writer STORE's tag (local meta "writer_tag", made once): its
 * sessions' lease cookies carry it, so that a restart after a crash takes
 * back the lease its dead session still holds (rlog_set_tag; the STORE's
 * exclusive lock makes sure that session is gone). */
static int writer_tag(struct store *st, uint64_t *tag)
{
	struct idx_txn *t;
	int rc = idx_begin(st->idx, 1, &t);

	if (rc)
		return rc;
	rc = idx_meta_get_u64(t, "writer_tag", tag);
	idx_abort(t);
	if (rc != -ENOENT)
		return rc;
	do {
		if (getrandom(tag, sizeof(*tag), 0) != sizeof(*tag))
			*tag = (uint64_t)now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	} while (!*tag);
	rc = idx_begin(st->idx, 0, &t);
	if (rc)
		return rc;
	rc = idx_meta_put_u64(t, "writer_tag", *tag);
	return rc ? (idx_abort(t), rc) : idx_commit(t);
}

int srados_open(struct store *st, const struct store_opts *o, int created)
{
	struct srados *r = calloc(1, sizeof(*r));
	struct rados_conf rc_conf = { 0 };
	uint64_t first = 0, last = 0, tag;
	int rc;

	if (!r)
		return -ENOMEM;
	st->rados = r;
	r->st = st;
	pthread_mutex_init(&r->m, NULL);
	pthread_cond_init(&r->c, NULL);
	r->lease_s = o->rados_lease ? o->rados_lease : 30;
	r->follower_lease_s = o->follower_lease ? o->follower_lease : 30;
	r->base_every = o->base_every ? o->base_every : 10000;
	if (gethostname(r->host, sizeof(r->host) - 1) < 0)
		strcpy(r->host, "unknown");
	/* a follower applies the log in its daemon (sweep) and at its init
	 * (created); tools that open it read-write only read (EROFS) */
	if (st->rdonly)
		r->role = ROLE_TOOL;
	else if (st->conf.role == STORE_FOLLOWER)
		r->role = o->sweep || created ? ROLE_FOLLOWER : ROLE_TOOL;
	else
		r->role = ROLE_WRITER;
	if (r->role == ROLE_TOOL && st->conf.role == STORE_FOLLOWER)
		st->rdonly = 1;
	rc_conf.conf_path = st->conf.ceph_conf[0] ? st->conf.ceph_conf : NULL;
	rc_conf.client_id = st->conf.ceph_id[0] ? st->conf.ceph_id : NULL;
	rc_conf.timeout = o->rados_timeout;
	rc = rconn_open(&rc_conf, &r->conn);
	if (!rc)
		rc = backend_rados_open_conn(r->conn, st->conf.pool, st->conf.name, &st->disk);
	if (!rc && !st->rdonly) {        /* tools that only read do not fill the cache */
		struct frag_backend *cached;
		char path[4200];
		snprintf(path, sizeof(path), "%s/cache", st->dir);
		rc = backend_cached_open(st->disk, path, o->disk_cache ? o->disk_cache : ((uint64_t)1 << 30),
					 &cached);
		if (!rc)
			st->disk = cached;
	}
	if (rc || r->role == ROLE_TOOL)
		return rc;
	rc = rlog_open(r->conn, st->conf.pool, st->conf.name, created && r->role == ROLE_WRITER && !o->takeover,
		       &r->log);
	if (rc == -ENOENT) {
		log_err("%s: open: no payloadfs store %s/%s in the cluster (ENOENT)", st->dir, st->conf.pool,
			st->conf.name);
		store_set_open_detail(rc, "no payloadfs store %s/%s in the cluster (pool or store missing)",
				      st->conf.pool, st->conf.name);
	}
	if (rc)
		return rc;
	if (r->role == ROLE_FOLLOWER) {
		new_follower_id(r);
		follower_record(r);              /* invariant (5) */
		rc = catch_up(st, created);
		if (!rc)
			follower_record(r);
		return rc;
	}
	if ((rc = writer_tag(st, &tag)) != 0)
		return rc;
	rlog_set_tag(r->log, tag);
	rc = rlog_acquire(r->log, r->lease_s, o->takeover ? o->takeover_wait : 0, o->takeover_force, r->host,
			  &r->epoch, &last);
	if (rc == -EBUSY) {
		char who[256];
		if (rlog_holder(r->log, who, sizeof(who)) == 1)
			store_set_open_detail(rc, "RADOS store %s/%s is being written by %s (lease held): "
					      "one writer at a time", st->conf.pool, st->conf.name, who);
		log_err("%s: open: another writer holds the store's lease (EBUSY)", st->dir);
	}
	if (rc)
		return rc;
	if (created && !o->takeover) {
		if (last || rlog_tail(r->log, &first, &last) || last) {
			log_err("%s: the RADOS store %s/%s already holds a store: to make this host its writer, "
				"use --takeover (EEXIST)", st->dir, st->conf.pool, st->conf.name);
			store_set_open_detail(-EEXIST, "RADOS store %s/%s exists already (to write it from "
					      "this host: init --takeover)", st->conf.pool, st->conf.name);
			return -EEXIST;
		}
		astore(&r->tail, 0);
	} else {
		rc = catch_up(st, created);
		if (rc)
			return rc;
		if (aload(&r->tail) != last) {
			log_err("%s: open: the local index is at log position %" PRIu64 " but the log ends at %"
				PRIu64 " (EUCLEAN)", st->dir, aload(&r->tail), last);
			return -EUCLEAN;
		}
	}
	astore(&r->horizon, 0);        /* nothing deleted until the first pass */
	idx_set_commit_hook(st->idx, append_hook, r);
	/* group commit (gcommit.c); PAYLOADFS_GROUP_COMMIT=0: a round per
	 * commit (measurements, docs/rados.md) */
	st->grouped = gcommit_wanted();
	return 0;
}

int srados_created(struct store *st)
{
	return st->rados && st->rados->role == ROLE_WRITER ? write_base(st) : 0;
}

int srados_start(struct store *st)
{
	struct srados *r = st->rados;
	int rc;

	if (!r || r->role == ROLE_TOOL)
		return 0;
	if (r->role == ROLE_WRITER)
		writer_pass(r);
	rc = rlog_watch(r->log, on_notify, r);
	if (rc)
		log_warn("%s: no watch on the store's head (%s): polling every second", st->dir, strerror(-rc));
	rc = -pthread_create(&r->thread, NULL, thread_main, r);
	if (!rc)
		r->running = 1;
	return rc;
}

void srados_stop(struct store *st)
{
	struct srados *r = st->rados;

	if (!r || !r->running)
		return;
	pthread_mutex_lock(&r->m);
	r->stopping = 1;
	pthread_cond_signal(&r->c);
	pthread_mutex_unlock(&r->m);
	pthread_join(r->thread, NULL);
	r->running = 0;
}

struct sweep_chk { uint64_t tail; int ok; };

static int sweep_chk_one(void *arg, const struct rlog_follower *f)
{
	struct sweep_chk *c = arg;

	if (f->horizon < c->tail)
		c->ok = 0;
	return 0;
}

int srados_sweep_ok(struct store *st)
{
	struct srados *r = st->rados;
	struct sweep_chk c = { aload(&r->tail), 1 };

	if (r->role != ROLE_WRITER || rlog_followers(r->log, sweep_chk_one, &c))
		return 0;
	return c.ok;
}

void srados_close(struct store *st)
{
	struct srados *r = st->rados;

	if (!r)
		return;
	srados_stop(st);
	if (r->log && r->role == ROLE_FOLLOWER)
		rlog_follower_del(r->log, r->id);
	if (r->log && r->role == ROLE_WRITER) {
		st->grouped = 0;
		idx_set_commit_hook(st->idx, NULL, NULL);
	}
	rlog_close(r->log);            /* gives a held lease back */
	/* the backend (st->disk) shares the connection: store_close destroys it first */
	free(r->fol);
	free(r->held);
	pthread_mutex_destroy(&r->m);
	pthread_cond_destroy(&r->c);
	st->rados = NULL;
	st->rados_conn = r->conn;      /* dropped by store_close after the backend */
	free(r);
}

int srados_space(struct store *st, uint64_t *total, uint64_t *avail)
{
	struct rados_cluster_stat_t cs;
	int rc = rados_cluster_stat(rconn_cluster(st->rados->conn), &cs);

	if (rc < 0)
		return rc;
	if (!cs.kb)
		return -ENODATA;
	*total = cs.kb << 10;
	*avail = cs.kb_avail << 10;
	return 0;
}

/* ---- deletion across hosts ---- */

uint64_t srados_release_tag(struct store *st)
{
	return aload(&st->rados->tail);
}

int srados_may_delete(struct store *st, uint64_t lsn)
{
	return st->rados->role == ROLE_WRITER && aload(&st->rados->horizon) >= lsn;
}

void srados_held(struct store *st, const struct frag_desc *d)
{
	struct srados *r = st->rados;

	pthread_mutex_lock(&r->m);
	if (r->nheld == r->capheld) {
		size_t cap = r->capheld ? r->capheld * 2 : 16;
		struct held *v = realloc(r->held, cap * sizeof(*v));
		if (!v) {             /* hold everything back from here: never unsafe */
			uint64_t at = r->applying ? r->applying : aload(&r->tail);
			if (!r->held_floor || at - 1 < r->held_floor)
				r->held_floor = at - 1;
			pthread_mutex_unlock(&r->m);
			log_err("%s: out of memory noting a held image: the horizon stays at %" PRIu64
				" until this follower is mounted again (ENOMEM)", st->dir, at - 1);
			return;
		}
		r->held = v;
		r->capheld = cap;
	}
	r->held[r->nheld++] = (struct held){ d->id, r->applying ? r->applying : aload(&r->tail) };
	pthread_mutex_unlock(&r->m);
}

void srados_unheld(struct store *st, const struct frag_desc *d)
{
	struct srados *r = st->rados;

	pthread_mutex_lock(&r->m);
	for (size_t i = 0; i < r->nheld; i++)
		if (r->held[i].id == d->id) {
			r->held[i] = r->held[--r->nheld];
			break;
		}
	pthread_mutex_unlock(&r->m);
}

/* ---- tools (store.h: store_unref_delete_ok, store_hold_*, store_log_*) ---- */

/* The log handle: the session's, or (a tool's read-only open) one opened
 * on first use. Caller: the tool's one thread. */
static int tool_log(struct srados *r, struct rlog **out)
{
	int rc = 0;

	pthread_mutex_lock(&r->m);
	if (!r->log)
		rc = rlog_open(r->conn, r->st->conf.pool, r->st->conf.name, 0, &r->log);
	*out = r->log;
	pthread_mutex_unlock(&r->m);
	if (rc == -ENOENT)
		log_err("%s: opening the log: no payloadfs store %s/%s in the cluster (ENOENT)", r->st->dir,
			r->st->conf.pool, r->st->conf.name);
	return rc;
}

struct unref_chk {
	uint64_t tail;
	unsigned n, holding;
	struct rlog_follower first;    /* the first that holds back */
};

static int unref_chk_one(void *arg, const struct rlog_follower *f)
{
	struct unref_chk *c = arg;

	c->n++;
	if (f->horizon < c->tail && !c->holding++)
		c->first = *f;
	return 0;
}

int srados_unref_ok(struct store *st, char *why, size_t cap)
{
	struct srados *r = st->rados;
	struct unref_chk c;
	struct rlog *log;
	uint64_t first, last, local;
	int rc;

	if (!r || st->conf.role == STORE_FOLLOWER)
		return -EROFS;
	if ((rc = tool_log(r, &log)) != 0)
		return rc;
	if (r->role == ROLE_WRITER) {
		last = aload(&r->tail);      /* the lease is ours: the log's end */
	} else {
		if ((rc = rlog_tail(log, &first, &last)) != 0 || (rc = idx_log_lsn(st->idx, &local)) != 0)
			return rc;
		if (local != last) {
			snprintf(why, cap, "this store's index is at log position %" PRIu64 " but the log at %"
				 PRIu64 " (it lacks newer commits: mount it, or take it over, first)", local, last);
			return 0;
		}
	}
	memset(&c, 0, sizeof(c));
	c.tail = last;
	if ((rc = rlog_followers(log, unref_chk_one, &c)) != 0)
		return rc;
	if (c.holding) {
		snprintf(why, cap, "%u of %u follower(s) may still read released images: %s on %s holds "
			 "images released after log position %" PRIu64 " (the log is at %" PRIu64 ")",
			 c.holding, c.n, c.first.id, c.first.host, c.first.horizon, last);
		return 0;
	}
	return 1;
}

struct store_hold {
	struct srados *r;
	struct rlog *log;
	pthread_mutex_t m;
	pthread_cond_t c;
	pthread_t thread;
	int stopping, running, expired;   /* protected by m */
	struct rlog_follower f;           /* protected by m */
};

/* Write the record (a new seq). Caller holds h->m. */
static int hold_put(struct store_hold *h)
{
	int rc;

	h->f.seq++;
	h->f.applied = h->f.horizon;     /* the writer trims no entry after it */
	rc = rlog_follower_put(h->log, &h->f);
	if (rc == -ESTALE)
		h->expired = 1;
	return h->expired ? -ESTALE : rc;
}

static void *hold_main(void *arg)
{
	struct store_hold *h = arg;
	struct timespec until;

	pthread_mutex_lock(&h->m);
	while (!h->stopping && !h->expired) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&h->c, &h->m, &until);
		if (!h->stopping && hold_put(h) && !h->expired)
			log_warn("%s: the hold's follower record could not be renewed", h->r->st->dir);
	}
	pthread_mutex_unlock(&h->m);
	return NULL;
}

int store_hold_start(struct store *st, uint64_t horizon, struct store_hold **out)
{
	struct srados *r = st->rados;
	struct store_hold *h;
	int rc;

	*out = NULL;
	if (!r)
		return -EINVAL;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	h->r = r;
	pthread_mutex_init(&h->m, NULL);
	pthread_cond_init(&h->c, NULL);
	if ((rc = tool_log(r, &h->log)) != 0)
		goto fail;
	snprintf(h->f.id, sizeof(h->f.id), "tool.%.30s.%d.%lld", r->host, (int)getpid(), (long long)now_ns());
	snprintf(h->f.host, sizeof(h->f.host), "%s", r->host);
	h->f.horizon = horizon;
	pthread_mutex_lock(&h->m);
	rc = hold_put(h);
	pthread_mutex_unlock(&h->m);
	if (rc)
		goto fail;
	if ((rc = -pthread_create(&h->thread, NULL, hold_main, h)) != 0) {
		rlog_follower_del(h->log, h->f.id);
		goto fail;
	}
	h->running = 1;
	*out = h;
	return 0;
fail:
	pthread_mutex_destroy(&h->m);
	pthread_cond_destroy(&h->c);
	free(h);
	return rc;
}

int store_hold_set(struct store_hold *h, uint64_t horizon)
{
	int rc;

	pthread_mutex_lock(&h->m);
	h->f.horizon = horizon;
	rc = h->expired ? -ESTALE : hold_put(h);
	pthread_mutex_unlock(&h->m);
	return rc;
}

int store_hold_check(struct store_hold *h)
{
	int rc;

	pthread_mutex_lock(&h->m);
	rc = h->expired ? -ESTALE : 0;
	pthread_mutex_unlock(&h->m);
	if (!rc && rlog_follower_expired(h->log, h->f.id) == 1) {
		pthread_mutex_lock(&h->m);
		h->expired = 1;
		pthread_mutex_unlock(&h->m);
		rc = -ESTALE;
	}
	return rc;
}

void store_hold_end(struct store_hold *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->m);
	h->stopping = 1;
	pthread_cond_signal(&h->c);
	pthread_mutex_unlock(&h->m);
	if (h->running)
		pthread_join(h->thread, NULL);
	rlog_follower_del(h->log, h->f.id);
	pthread_mutex_destroy(&h->m);
	pthread_cond_destroy(&h->c);
	free(h);
}

int store_log_tail(struct store *st, uint64_t *tail)
{
	struct rlog *log;
	uint64_t first;
	int rc;

	if (!st->rados)
		return -EINVAL;
	if ((rc = tool_log(st->rados, &log)) != 0)
		return rc;
	return rlog_tail(log, &first, tail);
}

struct copy_apply { struct idx *idx; };

static int copy_apply_one(void *arg, uint64_t lsn, const void *data, size_t len)
{
	int rc = idx_apply(((struct copy_apply *)arg)->idx, data, len, NULL, NULL);

	(void)lsn;
	return rc < 0 ? rc : 0;
}

int store_log_catch_up(struct store *st, struct idx *idx, uint64_t *pos)
{
	struct copy_apply a = { idx };
	struct base_ctx b;
	struct rlog *log;
	uint64_t have = 0, lsn = 0;
	int rc;

	if (!st->rados)
		return -EINVAL;
	if ((rc = tool_log(st->rados, &log)) != 0 || (rc = idx_log_lsn(idx, &have)) != 0)
		return rc;
	rc = rlog_read(log, have, 0, copy_apply_one, &a);
	if (rc == -ERANGE) {         /* trimmed past it: from the newest base */
		rc = idx_base_begin(idx, &b.t);
		if (!rc) {
			rc = rlog_base_get(log, &lsn, base_chunk, &b);
			rc = idx_base_end(b.t, lsn, rc);
		}
		if (!rc)
			rc = rlog_read(log, lsn, 0, copy_apply_one, &a);
	}
	if (!rc)
		rc = idx_log_lsn(idx, pos);
	return rc;
}
