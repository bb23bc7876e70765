/* test_rlog — the cluster side of a RADOS store's index log (cache/rlog.h)
 * against a real throwaway cluster (tests/rados/cluster.sh): open and the
 * head's format; the writer's lease (a second writer refused naming the
 * holder, a takeover waiting for a lease to expire, one breaking it, the
 * epoch bumped by each session); appends and reads in order and without
 * holes (-EEXIST, -ERANGE, pages, entries of several MiB); a stale writer
 * fenced by the epoch (its append writes nothing); trims; bases (chunks
 * kept, replaced, replaced while read, damaged); followers' records and
 * expiry; the watch (notify latency, kept across an OSD restart); the
 * lease lost when renewals stop; fault points; the OSD stopped (every call
 * -ETIMEDOUT within the timeout, an append in doubt settled by a new
 * session).
 *
 * Each test works in a namespace of its own. The cluster: the variables
 * of `cluster.sh env` (tests/run-all.sh starts one); without them the test
 * runs itself again under tests/rados/with-cluster.sh. Random bytes come
 * from a logged seed (env TEST_SEED). Latencies are printed as figures,
 * never asserted. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/rados_conn.h"
#include "cache/rlog.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"
#include "tests/unit/tcluster.h"

#define T_S        30     /* the timeout of the ordinary sections */
#define DOWN_T_S   2      /* the timeout of the OSD-down section */
#define SLACK_S    10     /* what a bounded wait may take beyond it (valgrind) */
#define LEASE_S    3

static const char *conf_path, *pool, *cluster_dir, *cluster_sh;
static char nsbase[48];

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static int cluster(const char *cmd)
{
	char line[1024];
	int rc;

	snprintf(line, sizeof(line), "'%s' %s '%s' >&2", cluster_sh, cmd, cluster_dir);
	rc = system(line);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static struct rconn *conn_new(unsigned timeout)
{
	struct rados_conf c = { .conf_path = conf_path, .timeout = timeout };
	struct rconn *rc = NULL;

	if (rconn_open(&c, &rc))
		return NULL;
	return rc;
}

static void ns_of(char *out, const char *suffix)
{
	snprintf(out, 96, "%s-%s", nsbase, suffix);
}

static int open_ns(struct rconn *c, const char *suffix, int create, struct rlog **out)
{
	char ns[96];

	ns_of(ns, suffix);
	return rlog_open(c, pool, ns, create, out);
}

/* A raw I/O context on namespace SUFFIX, for looking behind rlog's back. */
static rados_ioctx_t raw_io(struct rconn *c, const char *suffix)
{
	rados_ioctx_t io = NULL;
	char ns[96];

	ns_of(ns, suffix);
	if (rconn_ioctx(c, pool, ns, &io))
		return NULL;
	return io;
}

static int obj_exists(rados_ioctx_t io, const char *oid)
{
	uint64_t size;
	time_t mtime;

	return rados_stat(io, oid, &size, &mtime) == 0;
}

/* Count the omap keys of pfs.head starting with PREFIX. */
static int count_keys(rados_ioctx_t io, const char *prefix)
{
	rados_read_op_t op = rados_create_read_op();
	rados_omap_iter_t it = NULL;
	char *k, *v;
	size_t vl;
	int pv = 0, n = 0;

	rados_read_op_omap_get_vals2(op, "", prefix, 1000, &it, NULL, &pv);
	if (rados_read_op_operate(op, io, "pfs.head", 0) < 0 || pv < 0)
		n = -1;
	while (n >= 0 && rados_omap_get_next(it, &k, &v, &vl) == 0 && k)
		n++;
	if (it)
		rados_omap_get_end(it);
	rados_release_read_op(op);
	return n;
}

/* Count the objects of namespace IO whose names start with PREFIX. */
static int count_objs(rados_ioctx_t io, const char *prefix)
{
	rados_list_ctx_t ctx;
	const char *name;
	int n = 0;

	if (rados_nobjects_list_open(io, &ctx) < 0)
		return -1;
	while (rados_nobjects_list_next(ctx, &name, NULL, NULL) == 0)
		n += strncmp(name, prefix, strlen(prefix)) == 0;
	rados_nobjects_list_close(ctx);
	return n;
}

/* ---- entries: deterministic bytes from (lsn, len, salt) ---- */

static void fill(unsigned char *p, size_t len, uint64_t lsn, uint64_t salt)
{
	uint64_t x = lsn * 0x9e3779b97f4a7c15ull ^ salt;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0) {
			x ^= x >> 31;
			x *= 0xbf58476d1ce4e5b9ull;
			x ^= x >> 29;
		}
		p[i] = (unsigned char)(x >> (8 * (i % 8)));
	}
}

/* Append one entry of LEN bytes at LSN. */
static int append1(struct rlog *l, uint64_t lsn, size_t len, uint64_t salt)
{
	unsigned char *p = malloc(len ? len : 1);
	const void *d[1] = { p };
	size_t ln[1] = { len };
	int rc;

	fill(p, len, lsn, salt);
	rc = rlog_append(l, lsn, d, ln, 1);
	free(p);
	return rc;
}

/* What a read delivered, checked against fill() with the expected
 * lengths. */
struct rd {
	uint64_t first, last, n;
	size_t (*len_of)(uint64_t lsn);
	uint64_t salt;
	int bad, order;
	size_t bytes;
};

static int rd_cb(void *arg, uint64_t lsn, const void *data, size_t len)
{
	struct rd *r = arg;
	size_t want = r->len_of(lsn);

	if (r->n == 0)
		r->first = lsn;
	else if (lsn != r->last + 1)
		r->order++;
	r->last = lsn;
	r->n++;
	r->bytes += len;
	if (len != want) {
		r->bad++;
	} else {
		unsigned char *p = malloc(len ? len : 1);
		fill(p, len, lsn, r->salt);
		r->bad += memcmp(p, data, len) != 0;
		free(p);
	}
	return 0;
}

static size_t len_small(uint64_t lsn)
{
	return 100 + (size_t)(lsn * 37 % 900);
}

static int count_cb(void *arg, uint64_t lsn, const void *data, size_t len)
{
	(void)lsn, (void)data, (void)len;
	++*(uint64_t *)arg;
	return 0;
}

static int stop_cb(void *arg, uint64_t lsn, const void *data, size_t len)
{
	(void)data, (void)len;
	++*(uint64_t *)arg;
	return lsn == 3 ? 42 : 0;
}

/* ---- open ---- */

static void test_open(struct rconn *c)
{
	struct rlog *l = (void *)1, *l2 = NULL;
	rados_ioctx_t io = raw_io(c, "open-bad");
	uint64_t first = 9, last = 9;

	CHECK_EQ(open_ns(c, "open", 0, &l), -ENOENT, "open: no head and no create: -ENOENT");
	CHECK(l == NULL, "open: out is NULL on failure");
	CHECK_EQ(open_ns(c, "open", 1, &l), 0, "open: create");
	CHECK(l && rlog_tail(l, &first, &last) == 0 && first == 0 && last == 0,
	      "open: a new log is empty (%" PRIu64 " %" PRIu64 ")", first, last);
	CHECK_EQ(open_ns(c, "open", 0, &l2), 0, "open: an existing head without create");
	rlog_close(l2);
	l2 = NULL;
	CHECK_EQ(open_ns(c, "open", 1, &l2), 0, "open: create of an existing head opens it");
	rlog_close(l2);
	rlog_close(l);
	rlog_close(NULL);
	l = (void *)1;
	CHECK_EQ(rlog_open(c, "no-such-pool", "x", 1, &l), -ENOENT, "open: no such pool: -ENOENT");
	CHECK_EQ(rlog_open(c, pool, "", 1, &l), -EINVAL, "open: an empty namespace: -EINVAL");
	/* heads that are not ours */
	CHECK(io && rados_setxattr(io, "pfs.head", "pfs.format", "2", 1) == 0,
	      "open: a head of format 2 (written raw)");
	CHECK_EQ(open_ns(c, "open-bad", 1, &l), -EPROTO, "open: another format: -EPROTO");
	rados_rmxattr(io, "pfs.head", "pfs.format");
	CHECK_EQ(open_ns(c, "open-bad", 0, &l), -EPROTO,
		 "open: an object pfs.head without pfs.format: -EPROTO");
	rados_setxattr(io, "pfs.head", "pfs.format", "1", 1);
	rados_setxattr(io, "pfs.head", "pfs.epoch", "12", 2);
	CHECK_EQ(open_ns(c, "open-bad", 0, &l), -EUCLEAN, "open: a damaged pfs.epoch: -EUCLEAN");
	rados_remove(io, "pfs.head");
	if (io)
		rados_ioctx_destroy(io);
}

/* ---- appends and reads ---- */

static void test_append_read(struct rconn *c)
{
	struct rlog *w = NULL, *r = NULL;
	uint64_t epoch, tail, first, last, got = 0;
	unsigned char a[10], b[20], z[1];
	const void *d3[3] = { a, b, z };
	size_t l3[3] = { 10, 20, 0 };
	struct rd rd;
	double t0, t;
	int bad = 0, rc;

	if (open_ns(c, "ar", 1, &w) || open_ns(c, "ar", 0, &r)) {
		CHECK(0, "ar: open");
		goto out;
	}
	CHECK_EQ(append1(w, 1, 10, 1), -ESTALE, "ar: an append without a session: -ESTALE");
	CHECK_EQ(rlog_lease_ok(w), -ESTALE, "ar: no session: lease not ok");
	CHECK_EQ(rlog_acquire(w, 30, 0, 0, "writer-ar", &epoch, &tail), 0, "ar: acquire");
	CHECK(epoch == 1 && tail == 0, "ar: first session: epoch 1, tail 0 (%" PRIu64 " %" PRIu64 ")",
	      epoch, tail);
	CHECK_EQ(rlog_lease_ok(w), 0, "ar: lease ok");
	CHECK_EQ(append1(w, 1, len_small(1), 1), 0, "ar: append 1");
	fill(a, 10, 2, 7), fill(b, 20, 3, 7);
	CHECK_EQ(rlog_append(w, 2, d3, l3, 3), 0, "ar: append 2..4 in one op (one empty)");
	CHECK(rlog_tail(r, &first, &last) == 0 && first == 1 && last == 4,
	      "ar: tail 1..4 (%" PRIu64 "..%" PRIu64 ")", first, last);
	CHECK_EQ(append1(w, 3, 5, 9), -EEXIST, "ar: an append at an lsn held: -EEXIST");
	CHECK_EQ(append1(w, 1, 5, 9), -EEXIST, "ar: ... also at the first");
	CHECK_EQ(append1(w, 6, 5, 9), -ERANGE, "ar: an append past the end + 1: -ERANGE (a gap)");
	CHECK_EQ(rlog_append(w, 5, d3, l3, 0), -EINVAL, "ar: n 0: -EINVAL");
	CHECK_EQ(append1(w, 0, 5, 9), -EINVAL, "ar: lsn 0: -EINVAL");
	CHECK(rlog_tail(r, &first, &last) == 0 && last == 4, "ar: refused appends wrote nothing");
	CHECK_EQ(rlog_lease_ok(w), 0, "ar: ... and the session goes on");
	got = 0;
	CHECK_EQ(rlog_read(r, 0, 0, stop_cb, &got), 42, "ar: read stops at the callback's non-zero return");
	CHECK_EQ(got, 3, "ar: ... after the entry it returned it for");
	/* many entries of random sizes in groups: pages, order, bytes */
	{
		uint64_t lsn = 5;
		int ops = 0;
		t0 = now_s();
		while (lsn < 405) {
			size_t n = 1 + rnd_below(12), k;
			unsigned char *bufs[12];
			const void *d[12];
			size_t ln[12];
			for (k = 0; k < n; k++) {
				ln[k] = len_small(lsn + k);
				bufs[k] = malloc(ln[k]);
				fill(bufs[k], ln[k], lsn + k, 1);
				d[k] = bufs[k];
			}
			bad += rlog_append(w, lsn, d, ln, n) != 0;
			for (k = 0; k < n; k++)
				free(bufs[k]);
			lsn += n;
			ops++;
		}
		t = now_s() - t0;
		CHECK_EQ(bad, 0, "ar: %" PRIu64 " more entries in %d appends of 1-12 (%.2f ms per append)",
			 lsn - 5, ops, t * 1000 / ops);
		rd = (struct rd){ .len_of = len_small, .salt = 1 };
		t0 = now_s();
		rc = rlog_read(r, 4, 0, rd_cb, &rd);
		t = now_s() - t0;
		CHECK_EQ(rc, 0, "ar: read after 4 (%.1f ms, %.1f MB/s)", t * 1000, rd.bytes / t / 1e6);
		CHECK(rd.first == 5 && rd.last == lsn - 1 && rd.n == lsn - 5 && rd.order == 0,
		      "ar: every entry once, in order (%" PRIu64 "..%" PRIu64 ", %" PRIu64 ")",
		      rd.first, rd.last, rd.n);
		CHECK_EQ(rd.bad, 0, "ar: every entry's bytes");
		rd = (struct rd){ .len_of = len_small, .salt = 1 };
		CHECK(rlog_read(r, 100, 7, rd_cb, &rd) == 0 && rd.n == 7 && rd.first == 101 &&
		      rd.last == 107 && rd.bad == 0, "ar: read of at most 7 after 100");
		rd = (struct rd){ .len_of = len_small, .salt = 1 };
		CHECK(rlog_read(r, lsn - 1, 0, rd_cb, &rd) == 0 && rd.n == 0,
		      "ar: read after the tail: nothing");
	}
	/* latency of one small append (a commit of a small file) */
	{
		uint64_t lsn;
		rlog_tail(r, &first, &last);
		lsn = last + 1;
		bad = 0;
		t0 = now_s();
		for (int i = 0; i < 100; i++)
			bad += append1(w, lsn + i, 1024, 1) != 0;
		t = now_s() - t0;
		CHECK_EQ(bad, 0, "ar: 100 appends of 1 KiB: %.2f ms each", t * 10);
	}
	CHECK_EQ(rlog_release(w), 0, "ar: release");
	CHECK_EQ(append1(w, 1000, 1, 1), -ESTALE, "ar: an append after release: -ESTALE");
out:
	rlog_close(w);
	rlog_close(r);
}

/* exact bytes of a few entries (2..4 of test_append_read's kind) */
struct exact { uint64_t lsn[8]; size_t len[8]; unsigned char *p[8]; int n, bad; };

static int exact_cb(void *arg, uint64_t lsn, const void *data, size_t len)
{
	struct exact *e = arg;

	if (e->n >= 8 || e->lsn[e->n] != lsn || e->len[e->n] != len ||
	    (len && memcmp(e->p[e->n], data, len) != 0))
		e->bad++;
	e->n++;
	return 0;
}

static void test_exact(struct rconn *c)
{
	struct rlog *w = NULL;
	uint64_t epoch, tail;
	unsigned char a[10], b[20], z[1];
	const void *d[3] = { a, b, z };
	size_t ln[3] = { 10, 20, 0 };
	struct exact e = { { 1, 2, 3 }, { 10, 20, 0 }, { a, b, z }, 0, 0 };

	if (open_ns(c, "exact", 1, &w) || rlog_acquire(w, 30, 0, 0, "x", &epoch, &tail)) {
		CHECK(0, "exact: open and acquire");
		rlog_close(w);
		return;
	}
	fill(a, 10, 1, 3), fill(b, 20, 2, 3);
	CHECK_EQ(rlog_append(w, 1, d, ln, 3), 0, "exact: append 3 (10, 20 and 0 bytes)");
	CHECK(rlog_read(w, 0, 0, exact_cb, &e) == 0 && e.n == 3 && e.bad == 0,
	      "exact: read back byte for byte, the empty one too (%d, %d bad)", e.n, e.bad);
	rlog_close(w);
}

/* ---- big entries ---- */

static size_t big_len[8];
static size_t len_big(uint64_t lsn)
{
	return big_len[lsn];
}

static void test_big(struct rconn *c)
{
	struct rlog *w = NULL;
	rados_ioctx_t io = raw_io(c, "big");
	uint64_t epoch, tail, first, last;
	unsigned char *p[4];
	const void *d[4];
	struct rd rd = { .len_of = len_big, .salt = 5 };
	char oid[80];
	double t0, t;
	int rc;

	big_len[1] = 256u << 10;            /* inline: the limit */
	big_len[2] = (256u << 10) + 1;      /* one part */
	big_len[3] = 5u << 20;
	big_len[4] = 100;
	big_len[5] = (40u << 20) + 7;       /* three parts */
	if (!io || open_ns(c, "big", 1, &w) || rlog_acquire(w, 30, 0, 0, "big", &epoch, &tail)) {
		CHECK(0, "big: open and acquire");
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		p[i] = malloc(big_len[i + 1]);
		fill(p[i], big_len[i + 1], (uint64_t)i + 1, 5);
		d[i] = p[i];
	}
	t0 = now_s();
	rc = rlog_append(w, 1, d, big_len + 1, 4);
	t = now_s() - t0;
	CHECK_EQ(rc, 0, "big: append 256 KiB, 256 KiB + 1, 5 MiB and 100 bytes in one call (%.1f ms)",
		 t * 1000);
	for (int i = 0; i < 4; i++)
		free(p[i]);
	CHECK_EQ(append1(w, 5, big_len[5], 5), 0, "big: append 40 MiB");
	snprintf(oid, sizeof(oid), "pfs.e.%016x.%016" PRIx64 ".0000", 1, epoch);
	CHECK(!obj_exists(io, oid), "big: 256 KiB stays inline");
	snprintf(oid, sizeof(oid), "pfs.e.%016x.%016" PRIx64 ".0000", 2, epoch);
	CHECK(obj_exists(io, oid), "big: 256 KiB + 1 is an object");
	snprintf(oid, sizeof(oid), "pfs.e.%016x.%016" PRIx64 ".0002", 5, epoch);
	CHECK(obj_exists(io, oid), "big: 40 MiB is three parts");
	CHECK_EQ(count_keys(io, "e."), 3, "big: one intent key per big entry");
	{
		uint64_t n = 0;
		size_t all = 0;
		for (int i = 1; i <= 5; i++)
			all += big_len[i];
		t0 = now_s();
		rc = rlog_read(w, 0, 0, count_cb, &n);
		t = now_s() - t0;
		CHECK(rc == 0 && n == 5, "big: read all 5 (%.1f ms, %.0f MB/s)", t * 1000, all / t / 1e6);
	}
	rc = rlog_read(w, 0, 0, rd_cb, &rd);
	CHECK_EQ(rc, 0, "big: read all again, checking the bytes");
	CHECK(rd.n == 5 && rd.bad == 0 && rd.order == 0, "big: each entry's bytes (%" PRIu64
	      " entries, %d bad)", rd.n, rd.bad);
	/* many near the limit in one append: past the op's inline budget */
	{
		size_t n = 40, ln[40];
		unsigned char *q[40];
		const void *dq[40];
		for (size_t i = 0; i < n; i++) {
			ln[i] = 250u << 10;
			q[i] = malloc(ln[i]);
			fill(q[i], ln[i], 6 + i, 5);
			dq[i] = q[i];
			big_len[0] = 0;
		}
		CHECK_EQ(rlog_append(w, 6, dq, ln, n), 0, "big: 40 entries of 250 KiB in one append");
		for (size_t i = 0; i < n; i++)
			free(q[i]);
		CHECK(count_keys(io, "e.") > 3, "big: ... some past the op's 8 MiB budget became objects");
	}
	/* damage behind rlog's back */
	snprintf(oid, sizeof(oid), "pfs.e.%016x.%016" PRIx64 ".0000", 3, epoch);
	CHECK(rados_write(io, oid, "XXXX", 4, 1000) == 0, "big: damage a byte range of an object");
	rd = (struct rd){ .len_of = len_big, .salt = 5 };
	CHECK_EQ(rlog_read(w, 2, 1, rd_cb, &rd), -EUCLEAN, "big: the read finds it: -EUCLEAN");
	CHECK_EQ(rd.n, 0, "big: ... and delivers nothing of it");
	CHECK(rados_remove(io, oid) == 0, "big: remove the object");
	CHECK_EQ(rlog_read(w, 2, 1, rd_cb, &rd), -EUCLEAN, "big: a missing object: -EUCLEAN");
	CHECK(rlog_tail(w, &first, &last) == 0 && last == 45, "big: tail 45");
out:
	rlog_close(w);
	if (io)
		rados_ioctx_destroy(io);
}

/* ---- the lease ---- */

/* rlog_acquire waiting up to 20 s, on a thread of its own. */
struct waiter { struct rlog *l; int rc; double took; };

static void *waiter_run(void *arg)
{
	struct waiter *w = arg;
	uint64_t e, t;
	double t0 = now_s();

	w->rc = rlog_acquire(w->l, LEASE_S, 20, 0, "host-e", &e, &t);
	w->took = now_s() - t0;
	return NULL;
}

static void test_lease(void)
{
	struct rconn *ca = conn_new(T_S), *cb = conn_new(T_S), *cc = conn_new(T_S);
	struct rlog *a = NULL, *b = NULL, *c = NULL;
	uint64_t ea = 0, eb = 0, ec = 0, tail, first, last;
	char who[300];
	double t0, t;
	int rc;

	if (!ca || !cb || !cc || open_ns(ca, "lease", 1, &a) || open_ns(cb, "lease", 0, &b) ||
	    open_ns(cc, "lease", 0, &c)) {
		CHECK(0, "lease: three connections and handles");
		goto out;
	}
	CHECK_EQ(rlog_holder(b, who, sizeof(who)), 0, "lease: nobody holds it");
	CHECK_EQ(rlog_acquire(a, LEASE_S, 0, 0, "host-a", &ea, &tail), 0, "lease: a acquires");
	CHECK_EQ(append1(a, 1, 10, 1), 0, "lease: a appends 1");
	CHECK_EQ(rlog_acquire(b, LEASE_S, 0, 0, "host-b", &eb, &tail), -EBUSY,
		 "lease: a second writer is refused at once: -EBUSY");
	CHECK(rlog_holder(b, who, sizeof(who)) == 1 && strncmp(who, "host-a since ", 13) == 0,
	      "lease: rlog_holder names the holder (%s)", who);
	t0 = now_s();
	rc = rlog_acquire(b, LEASE_S, 2, 0, "host-b", &eb, &tail);
	t = now_s() - t0;
	CHECK_EQ(rc, -EBUSY, "lease: waiting 2 s for a lease that is renewed: -EBUSY");
	CHECK(t >= 1.9 && t < 2 + SLACK_S, "lease: ... after the wait (%.2f s)", t);
	sleep_s(LEASE_S * 1.2);
	CHECK_EQ(rlog_lease_ok(a), 0, "lease: a renews: its lease holds past its duration");
	CHECK_EQ(rlog_acquire(b, LEASE_S, 0, 0, "host-b", &eb, &tail), -EBUSY,
		 "lease: ... in the cluster too: b is still refused");
	CHECK_EQ(append1(a, 2, 10, 1), 0, "lease: a appends 2");
	/* b breaks it */
	t0 = now_s();
	rc = rlog_acquire(b, LEASE_S, 0, 1, "host-b", &eb, &tail);
	t = now_s() - t0;
	CHECK_EQ(rc, 0, "lease: force breaks it (takeover in %.0f ms)", t * 1000);
	CHECK(eb == ea + 1 && tail == 2, "lease: b's epoch %" PRIu64 " = a's + 1, tail 2 (%" PRIu64 ")",
	      eb, tail);
	CHECK_EQ(append1(a, 3, 10, 1), -ESTALE, "lease: a's append after the takeover: -ESTALE");
	CHECK_EQ(rlog_lease_ok(a), -ESTALE, "lease: a's lease is not ok");
	CHECK_EQ(append1(a, 3, 10, 1), -ESTALE, "lease: ... and stays so");
	CHECK(rlog_tail(b, &first, &last) == 0 && last == 2, "lease: a wrote nothing (tail %" PRIu64 ")",
	      last);
	{
		rados_ioctx_t io = raw_io(ca, "lease");
		CHECK(io && rados_write_full(io, "probe", "x", 1) == -ESHUTDOWN,
		      "lease: a's connection is blocklisted: every write refused");
		if (io)
			rados_ioctx_destroy(io);
	}
	CHECK_EQ(append1(b, 3, 10, 2), 0, "lease: b appends 3");
	/* a writer that stops renewing: c waits it out */
	{
		struct rlog *d = NULL;
		struct rconn *cd = conn_new(T_S);
		rados_ioctx_t io = cd ? raw_io(cd, "lease") : NULL;
		struct timeval tv = { LEASE_S, 0 };
		CHECK_EQ(rlog_release(b), 0, "lease: b releases");
		CHECK_EQ(rlog_holder(c, who, sizeof(who)), 0, "lease: ... nobody holds it");
		/* a dead writer: its lock taken raw, never renewed */
		CHECK(io && rados_lock_exclusive(io, "pfs.head", "pfs.writer", "dead-cookie", "dead",
						 &tv, 0) == 0, "lease: a dead writer's lock (%d s)", LEASE_S);
		t0 = now_s();
		rc = rlog_acquire(c, LEASE_S, 20, 0, "host-c", &ec, &tail);
		t = now_s() - t0;
		CHECK_EQ(rc, 0, "lease: a takeover waiting for it gets it (after %.2f s)", t);
		CHECK(t > LEASE_S * 0.5 && t < LEASE_S + SLACK_S,
		      "lease: ... once it expired (%.2f s, lease %d s)", t, LEASE_S);
		CHECK(ec == eb + 1 && tail == 3, "lease: c's epoch %" PRIu64 " = b's + 1, tail 3", ec);
		CHECK(io && rados_write_full(io, "probe", "x", 1) == -ESHUTDOWN,
		      "lease: the writer waited out is blocklisted");
		CHECK_EQ(rlog_open(cd, pool, "x", 0, &d), -ESHUTDOWN,
			 "lease: ... it can open nothing more");
		if (io)
			rados_ioctx_destroy(io);
		rconn_put(cd);
	}
	CHECK_EQ(append1(c, 4, 10, 3), 0, "lease: c appends 4");
	/* a writer that hands over cleanly while another waits: not blocklisted */
	{
		struct rconn *ce = conn_new(T_S);
		struct rlog *e = NULL;
		struct waiter wt = { 0 };
		pthread_t th;
		rados_ioctx_t io;
		if (!ce || open_ns(ce, "lease", 0, &e)) {
			CHECK(0, "lease: a fourth connection");
		} else {
			wt.l = e;
			pthread_create(&th, NULL, waiter_run, &wt);
			sleep_s(1);
			CHECK_EQ(rlog_release(c), 0, "lease: c releases while e waits");
			pthread_join(th, NULL);
			CHECK_EQ(wt.rc, 0, "lease: e gets the lease (after %.2f s)", wt.took);
			io = raw_io(cc, "lease");
			CHECK(io && rados_write_full(io, "probe", "x", 1) == 0,
			      "lease: c, which released cleanly, is not blocklisted");
			if (io)
				rados_ioctx_destroy(io);
			CHECK_EQ(append1(e, 5, 10, 3), 0, "lease: e appends 5");
			CHECK_EQ(rlog_release(e), 0, "lease: e releases");
		}
		rlog_close(e);
		rconn_put(ce);
	}
	CHECK_EQ(append1(b, 4, 10, 3), -ESTALE, "lease: b (released) cannot append");
	/* new sessions of one handle: the epoch moves on, the lease is kept */
	CHECK_EQ(rlog_acquire(c, LEASE_S, 0, 0, "host-c", &ec, &tail), 0, "lease: c acquires again");
	CHECK(ec == eb + 3 && tail == 5, "lease: epoch %" PRIu64 " (b's + 3), tail 5", ec);
	CHECK_EQ(rlog_acquire(c, LEASE_S, 0, 0, "host-c", &ec, &tail), 0,
		 "lease: c starts a new session while holding the lease");
	CHECK(ec == eb + 4 && tail == 5, "lease: epoch %" PRIu64 ", tail 5", ec);
	CHECK_EQ(append1(c, 6, 10, 3), 0, "lease: c appends 6");
out:
	rlog_close(a);
	rlog_close(b);
	rlog_close(c);
	rconn_put(ca);
	rconn_put(cb);
	rconn_put(cc);
}

/* Two handles on one connection: no blocklisting (never one's own
 * connection), so the epoch alone fences the stale writer. */
static void test_stale_epoch(struct rconn *c)
{
	struct rlog *a = NULL, *b = NULL;
	uint64_t ea, eb, tail, first, last;
	struct rlog_follower f = { .id = "f1", .host = "h" };

	if (open_ns(c, "stale", 1, &a) || open_ns(c, "stale", 0, &b)) {
		CHECK(0, "stale: two handles");
		goto out;
	}
	CHECK_EQ(rlog_acquire(a, 30, 0, 0, "one", &ea, &tail), 0, "stale: a acquires");
	CHECK_EQ(append1(a, 1, 10, 1), 0, "stale: a appends 1");
	CHECK_EQ(rlog_acquire(b, 30, 0, 1, "two", &eb, &tail), 0,
		 "stale: b forces (same connection: not blocklisted)");
	CHECK_EQ(eb, ea + 1, "stale: b's epoch is a's + 1");
	CHECK_EQ(rlog_lease_ok(a), 0, "stale: a does not know yet (its renewal has not run)");
	CHECK_EQ(append1(a, 2, 10, 1), -ESTALE, "stale: a's append fails its epoch compare: -ESTALE");
	CHECK_EQ(rlog_lease_ok(a), -ESTALE, "stale: a's session is fenced from then on");
	CHECK(rlog_tail(b, &first, &last) == 0 && last == 1, "stale: a's append wrote nothing");
	CHECK_EQ(rlog_trim(a, 1), -ESTALE, "stale: a's trim: -ESTALE");
	CHECK_EQ(rlog_follower_expire(a, "f1"), -ESTALE, "stale: a's expiry of a follower: -ESTALE");
	CHECK_EQ(rlog_follower_put(b, &f), 0, "stale: ... which is still there");
	CHECK_EQ(rlog_follower_expired(b, "f1"), 0, "stale: ... not expired");
	CHECK_EQ(append1(b, 2, 10, 2), 0, "stale: b appends 2");
out:
	rlog_close(a);
	rlog_close(b);
}

/* rlog_set_tag: a lease held by another session of the same tag (a dead
 * process of the same STORE: another client, the same cookie when it
 * started in the same second) is taken back at once, and that client
 * blocklisted; one of another tag is not. A's connection is its own (it
 * ends blocklisted). */
static void test_tag(struct rconn *c)
{
	struct rconn *ca = conn_new(T_S);
	struct rlog *a = NULL, *b = NULL, *d = NULL;
	uint64_t ea, eb, ed, tail;
	char who[256];

	if (!ca || open_ns(ca, "tag", 1, &a) || open_ns(c, "tag", 0, &b) || open_ns(c, "tag", 0, &d)) {
		CHECK(0, "tag: three handles");
		goto out;
	}
	rlog_set_tag(a, 0x5eed);
	rlog_set_tag(b, 0x5eed);
	rlog_set_tag(d, 0xd1ff);
	CHECK_EQ(rlog_acquire(a, 30, 0, 0, "host-t", &ea, &tail), 0, "tag: a acquires");
	CHECK(rlog_holder(b, who, sizeof(who)) == 1 && strncmp(who, "host-t since ", 13) == 0,
	      "tag: the holder is named as always (%s)", who);
	CHECK_EQ(rlog_acquire(d, 30, 0, 0, "host-d", &ed, &tail), -EBUSY,
		 "tag: a session of another tag is refused at once");
	CHECK_EQ(rlog_acquire(b, 30, 0, 0, "host-t", &eb, &tail), 0,
		 "tag: a new session of the same tag takes the lease back without waiting");
	CHECK_EQ(eb, ea + 1, "tag: ... with a new epoch");
	CHECK_EQ(append1(a, 1, 10, 1), -ESTALE, "tag: the old session appends nothing more");
	CHECK_EQ(append1(b, 1, 10, 2), 0, "tag: the new one appends");
	CHECK_EQ(rlog_acquire(d, 30, 0, 0, "host-d", &ed, &tail), -EBUSY,
		 "tag: another tag is still refused");
out:
	rlog_close(a);
	rlog_close(b);
	rlog_close(d);
	rconn_put(ca);
}

/* ---- lease loss ---- */

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hook_cv = PTHREAD_COND_INITIALIZER;
static int hook_block, hook_blocked;

/* The renewal thread stops here while hook_block is set. */
static void renew_hook(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hook_mu);
	hook_blocked++;
	while (hook_block)
		pthread_cond_wait(&hook_cv, &hook_mu);
	pthread_mutex_unlock(&hook_mu);
}

static void test_lease_loss(struct rconn *c)
{
#ifdef PFS_FAULT_INJECTION
	struct rlog *w = NULL;
	uint64_t epoch, e2, tail;
	double t0 = 0, t = 0;
	int rc = 0;

	if (open_ns(c, "loss", 1, &w)) {
		CHECK(0, "loss: open");
		return;
	}
	CHECK_EQ(rlog_acquire(w, LEASE_S, 0, 0, "loss", &epoch, &tail), 0, "loss: acquire (3 s lease)");
	fault_reset();
	fault_arm("rlog_renew", 1, EIO);
	sleep_s(LEASE_S * 1.0);
	CHECK_EQ(fault_fired("rlog_renew"), 1, "loss: one renewal failed (fault point rlog_renew)");
	CHECK_EQ(rlog_lease_ok(w), 0, "loss: one failed renewal does not lose the lease");
	CHECK_EQ(append1(w, 1, 10, 1), 0, "loss: ... appends go on");
	/* stop the renewals */
	hook_block = 1;
	hook_blocked = 0;
	fault_hook("rlog_renew", renew_hook, NULL);
	t0 = now_s();
	while (now_s() - t0 < LEASE_S + SLACK_S && (rc = rlog_lease_ok(w)) == 0)
		sleep_s(0.05);
	t = now_s() - t0;
	CHECK_EQ(rc, -ESTALE, "loss: renewals stopped: the lease is lost (after %.2f s)", t);
	CHECK(hook_blocked >= 1, "loss: ... the renewal thread was held");
	CHECK_EQ(append1(w, 2, 10, 1), -ESTALE, "loss: appends fail: -ESTALE");
	pthread_mutex_lock(&hook_mu);
	hook_block = 0;
	pthread_cond_broadcast(&hook_cv);
	pthread_mutex_unlock(&hook_mu);
	fault_reset();
	sleep_s(0.3);
	CHECK_EQ(rlog_lease_ok(w), -ESTALE, "loss: renewals back: still -ESTALE (until a new session)");
	CHECK_EQ(rlog_acquire(w, LEASE_S, 0, 0, "loss", &e2, &tail), 0, "loss: a new session");
	CHECK(e2 == epoch + 1 && tail == 1, "loss: epoch + 1, tail 1");
	CHECK_EQ(append1(w, 2, 10, 1), 0, "loss: appends again");
	rlog_close(w);
#else
	(void)c;
	printf("# fault points compiled out (FAULT=0): lease loss skipped\n");
#endif
}

/* ---- trims ---- */

struct chunks {
	size_t n, i;
	size_t len[16];
	uint64_t salt;
	unsigned char *cur;
	int calls;
};

static int chunk_next(void *arg, const void **data, size_t *len)
{
	struct chunks *c = arg;

	c->calls++;
	if (c->i == c->n)
		return 0;
	free(c->cur);
	c->cur = malloc(c->len[c->i] ? c->len[c->i] : 1);
	fill(c->cur, c->len[c->i], c->i, c->salt);
	*data = c->cur;
	*len = c->len[c->i];
	c->i++;
	return 1;
}

/* What a base read gave, checked against struct chunks. */
struct got {
	struct chunks *want;
	size_t n;
	int bad, restarts;
	struct rlog *replacer;     /* replace the base while reading */
	struct chunks *with;
	uint64_t with_lsn;
	int replace_rc;
};

static int got_cb(void *arg, const void *data, size_t len)
{
	struct got *g = arg;

	if (!data && len == 0) {
		g->restarts++;
		g->n = 0;
		g->bad = 0;
		g->want = g->with;
		return 0;
	}
	if (g->n >= g->want->n || g->want->len[g->n] != len) {
		g->bad++;
	} else {
		unsigned char *p = malloc(len ? len : 1);
		fill(p, len, g->n, g->want->salt);
		g->bad += memcmp(p, data, len) != 0;
		free(p);
	}
	g->n++;
	if (g->replacer && g->n == 1) {
		g->with->i = 0;
		g->replace_rc = rlog_base_put(g->replacer, g->with_lsn, chunk_next, g->with);
		g->replacer = NULL;
	}
	return 0;
}

/* The second chunk claims more than RLOG_CHUNK_MAX bytes (it is refused
 * before its bytes are touched). */
static int huge_next(void *arg, const void **data, size_t *len)
{
	struct chunks *c = arg;
	int rc = chunk_next(arg, data, len);

	if (rc == 1 && c->i == 2)
		*len = RLOG_CHUNK_MAX + 1;
	return rc;
}

static int nth_next_fails(void *arg, const void **data, size_t *len)
{
	struct chunks *c = arg;

	if (c->i == 2)
		return -EIO;
	return chunk_next(arg, data, len);
}

static void test_trim_base(struct rconn *c)
{
	struct rlog *w = NULL, *r = NULL;
	rados_ioctx_t io = raw_io(c, "base");
	uint64_t epoch, tail, first, last, lsn;
	struct chunks c1 = { .n = 5, .len = { 1024, 3u << 20, 0, 777, 2u << 20 }, .salt = 11 };
	struct chunks c2 = { .n = 9, .salt = 12 }, c3 = { .n = 3, .len = { 5, 6, 7 }, .salt = 13 };
	struct got g;
	struct rd rd;
	char oid[80];
	int bad = 0;

	for (size_t i = 0; i < c2.n; i++)
		c2.len[i] = 100000 + i * 1000;
	if (!io || open_ns(c, "base", 1, &w) || open_ns(c, "base", 0, &r) ||
	    rlog_acquire(w, 30, 0, 0, "base", &epoch, &tail)) {
		CHECK(0, "base: open and acquire");
		goto out;
	}
	big_len[0] = 0;
	for (uint64_t i = 1; i <= 50; i++)
		bad += append1(w, i, i % 10 == 0 ? (300u << 10) : len_small(i), 1) != 0;
	CHECK_EQ(bad, 0, "base: 50 entries (every 10th a big one)");
	CHECK_EQ(rlog_base_get(r, &lsn, got_cb, &g), -ENOENT, "base: no base yet: -ENOENT");
	CHECK_EQ(rlog_trim(w, 10), -EINVAL, "trim: without a base: -EINVAL");
	CHECK_EQ(rlog_base_put(w, 51, chunk_next, &c1), -EINVAL, "base: past the tail: -EINVAL");
	CHECK_EQ(rlog_base_put(w, 30, chunk_next, &c1), 0, "base: put at 30 (5 chunks, 5 MiB)");
	g = (struct got){ .want = &c1 };
	CHECK_EQ(rlog_base_get(r, &lsn, got_cb, &g), 0, "base: get");
	CHECK(lsn == 30 && g.n == 5 && g.bad == 0 && g.restarts == 0,
	      "base: lsn 30, the same 5 chunks byte for byte (%zu, %d bad)", g.n, g.bad);
	c1.i = 0;
	c1.calls = 0;
	CHECK(rlog_base_put(w, 30, chunk_next, &c1) == 0 && c1.calls == 0,
	      "base: a put at the recorded lsn: 0, nothing done");
	CHECK_EQ(rlog_base_put(w, 20, chunk_next, &c1), -EINVAL, "base: older than the newest: -EINVAL");
	/* trims */
	CHECK_EQ(rlog_trim(w, 31), -EINVAL, "trim: past the newest base: -EINVAL");
	CHECK_EQ(count_keys(io, "e."), 5, "trim: 5 big entries before");
	CHECK_EQ(rlog_trim(w, 30), 0, "trim: up to the base (30)");
	CHECK(rlog_tail(r, &first, &last) == 0 && first == 31 && last == 50,
	      "trim: the log holds 31..50 (%" PRIu64 "..%" PRIu64 ")", first, last);
	CHECK_EQ(count_keys(io, "e."), 2, "trim: the big entries' intents <= 30 are gone");
	snprintf(oid, sizeof(oid), "pfs.e.%016x.%016" PRIx64 ".0000", 30, epoch);
	CHECK(!obj_exists(io, oid), "trim: ... and their objects");
	snprintf(oid, sizeof(oid), "pfs.e.%016x.%016" PRIx64 ".0000", 40, epoch);
	CHECK(obj_exists(io, oid), "trim: a big entry above stays");
	rd = (struct rd){ .len_of = len_small, .salt = 1 };
	CHECK_EQ(rlog_read(r, 0, 0, rd_cb, &rd), -ERANGE, "trim: a read after 0: -ERANGE (load a base)");
	CHECK_EQ(rlog_read(r, 29, 0, rd_cb, &rd), -ERANGE, "trim: a read after 29: -ERANGE");
	CHECK_EQ(rd.n, 0, "trim: ... nothing delivered");
	{
		uint64_t n = 0;
		CHECK(rlog_read(r, 30, 0, count_cb, &n) == 0 && n == 20, "trim: a read after 30: 20 entries");
	}
	/* a hole: an entry removed behind rlog's back */
	{
		const char *k[1] = { "l.000000000000002d" };     /* 45 */
		rados_write_op_t op = rados_create_write_op();
		uint64_t n = 0;
		rados_write_op_omap_rm_keys(op, k, 1);
		CHECK(rados_write_op_operate2(op, io, "pfs.head", NULL, 0) >= 0, "hole: remove entry 45 raw");
		rados_release_write_op(op);
		CHECK_EQ(rlog_read(r, 30, 0, count_cb, &n), -EUCLEAN, "hole: a read across it: -EUCLEAN");
		CHECK_EQ(rlog_read(r, 44, 0, count_cb, &n), -EUCLEAN, "hole: a read starting at it: -EUCLEAN");
		CHECK_EQ(append1(w, 51, 10, 1), 0, "hole: appends go on at the tail");
		CHECK_EQ(rlog_read(r, 45, 0, count_cb, &n), 0, "hole: a read after it works");
	}
	/* replace the base: the old chunks go */
	CHECK_EQ(rlog_base_put(w, 40, chunk_next, &c2), 0, "base: a new base at 40 (9 chunks)");
	g = (struct got){ .want = &c2 };
	CHECK(rlog_base_get(r, &lsn, got_cb, &g) == 0 && lsn == 40 && g.n == 9 && g.bad == 0,
	      "base: the new one reads back");
	CHECK_EQ(count_keys(io, "b."), 1, "base: one base key left");
	CHECK_EQ(count_objs(io, "pfs.b."), 9, "base: only the new base's 9 chunk objects left");
	/* a failing put leaves the recorded base and nothing else */
#ifdef PFS_FAULT_INJECTION
	fault_arm("rlog_base", 1, EIO);
	c3.i = 0;
	CHECK_EQ(rlog_base_put(w, 45, chunk_next, &c3), -EIO, "base: a put failing before its record: -EIO");
	fault_reset();
	CHECK(rlog_base_get(r, &lsn, got_cb, &(struct got){ .want = &c2 }) == 0 && lsn == 40,
	      "base: the recorded one stays");
	CHECK_EQ(count_objs(io, "pfs.b."), 9, "base: the failed put's chunks were removed");
#endif
	c3.i = 0;
	CHECK_EQ(rlog_base_put(w, 45, nth_next_fails, &c3), -EIO, "base: NEXT's error is returned");
	CHECK_EQ(count_objs(io, "pfs.b."), 9, "base: ... its chunks removed");
	c3.i = 0;
	CHECK_EQ(rlog_base_put(w, 45, huge_next, &c3), -EFBIG, "base: a chunk over 64 MiB: -EFBIG");
	CHECK_EQ(count_objs(io, "pfs.b."), 9, "base: ... nothing of it left");
	/* replaced while being read: the read starts over, once */
	c3.i = 0;
	g = (struct got){ .want = &c2, .replacer = w, .with = &c3, .with_lsn = 45 };
	CHECK_EQ(rlog_base_get(r, &lsn, got_cb, &g), 0, "base: replaced while read (after chunk 0)");
	CHECK_EQ(g.replace_rc, 0, "base: ... the replacing put worked");
	CHECK(g.restarts == 1 && lsn == 45 && g.n == 3 && g.bad == 0,
	      "base: ... the read started over once (CB NULL) and gave the new one (%d, %" PRIu64
	      ", %zu, %d)", g.restarts, lsn, g.n, g.bad);
	/* damaged */
	snprintf(oid, sizeof(oid), "pfs.b.%016x.%016" PRIx64 ".0001", 45, epoch);
	CHECK(rados_write_full(io, oid, "XXXXXX", 6) == 0, "base: damage a chunk (same length)");
	g = (struct got){ .want = &c3 };
	CHECK_EQ(rlog_base_get(r, &lsn, got_cb, &g), -EUCLEAN, "base: the read finds it: -EUCLEAN");
	CHECK(rados_remove(io, oid) == 0, "base: remove the chunk");
	g = (struct got){ .want = &c3 };
	CHECK_EQ(rlog_base_get(r, &lsn, got_cb, &g), -EUCLEAN, "base: a missing chunk: -EUCLEAN");
	/* the whole log trimmed: the tail stays, appends go on after it */
	c3.i = 0;
	CHECK_EQ(rlog_base_put(w, 51, chunk_next, &c3), 0, "all: a base at the tail (51)");
	CHECK_EQ(rlog_trim(w, 51), 0, "all: trim everything");
	CHECK(rlog_tail(r, &first, &last) == 0 && first == 0 && last == 51,
	      "all: no entry held, the tail still 51 (%" PRIu64 ", %" PRIu64 ")", first, last);
	CHECK_EQ(count_keys(io, "l."), 0, "all: no entry key left");
	CHECK_EQ(count_keys(io, "e."), 0, "all: no intent left");
	CHECK_EQ(count_objs(io, "pfs.e."), 0, "all: no big entry object left");
	{
		uint64_t n = 0;
		CHECK_EQ(rlog_read(r, 40, 0, count_cb, &n), -ERANGE, "all: a read after 40: -ERANGE");
		CHECK(rlog_read(r, 51, 0, count_cb, &n) == 0 && n == 0, "all: a read after 51: nothing");
		CHECK_EQ(append1(w, 51, 10, 1), -EEXIST, "all: an append at 51: -EEXIST");
		CHECK_EQ(append1(w, 52, 10, 1), 0, "all: an append at 52");
		CHECK(rlog_read(r, 51, 0, count_cb, &n) == 0 && n == 1, "all: a read after 51: 52");
	}
out:
	free(c1.cur), free(c2.cur), free(c3.cur);
	rlog_close(w);
	rlog_close(r);
	if (io)
		rados_ioctx_destroy(io);
}

/* ---- followers ---- */

struct flist { int n; struct rlog_follower f[8]; };

static int flist_cb(void *arg, const struct rlog_follower *f)
{
	struct flist *l = arg;

	if (l->n < 8)
		l->f[l->n] = *f;
	l->n++;
	return 0;
}

static void test_followers(struct rconn *c)
{
	struct rlog *w = NULL, *f = NULL;
	rados_ioctx_t io = raw_io(c, "fol");
	struct rlog_follower a = { .id = "host-a.1", .applied = 10, .horizon = 9, .seq = 1, .host = "alpha" };
	struct rlog_follower b = { .id = "host-b.7", .applied = 12, .horizon = 12, .seq = 4, .host = "beta" };
	struct rlog_follower bad = { .id = "a b", .host = "x" };
	struct flist fl = { 0 };
	uint64_t epoch, tail;

	if (!io || open_ns(c, "fol", 1, &w) || open_ns(c, "fol", 0, &f)) {
		CHECK(0, "fol: open");
		goto out;
	}
	CHECK(rlog_followers(w, flist_cb, &fl) == 0 && fl.n == 0, "fol: none yet");
	CHECK_EQ(rlog_follower_put(f, &b), 0, "fol: put b");
	CHECK_EQ(rlog_follower_put(f, &a), 0, "fol: put a");
	a.applied = 11, a.seq = 2;
	CHECK_EQ(rlog_follower_put(f, &a), 0, "fol: put a again (seq 2)");
	fl.n = 0;
	CHECK(rlog_followers(w, flist_cb, &fl) == 0 && fl.n == 2, "fol: two records (%d)", fl.n);
	CHECK(strcmp(fl.f[0].id, "host-a.1") == 0 && fl.f[0].applied == 11 && fl.f[0].horizon == 9 &&
	      fl.f[0].seq == 2 && strcmp(fl.f[0].host, "alpha") == 0, "fol: a's record, replaced");
	CHECK(strcmp(fl.f[1].id, "host-b.7") == 0 && fl.f[1].applied == 12 && fl.f[1].horizon == 12 &&
	      fl.f[1].seq == 4 && strcmp(fl.f[1].host, "beta") == 0, "fol: b's record, in id order");
	CHECK_EQ(rlog_follower_put(f, &bad), -EINVAL, "fol: an id with a space: -EINVAL");
	memset(bad.id, 'x', sizeof(bad.id));
	CHECK_EQ(rlog_follower_put(f, &bad), -EINVAL, "fol: an id of 64 characters: -EINVAL");
	CHECK_EQ(rlog_follower_del(f, ""), -EINVAL, "fol: an empty id: -EINVAL");
	CHECK_EQ(rlog_acquire(w, 30, 0, 0, "fol", &epoch, &tail), 0, "fol: the writer acquires");
	CHECK_EQ(rlog_follower_expired(f, "host-b.7"), 0, "fol: b not expired");
	CHECK_EQ(rlog_follower_expire(w, "host-b.7"), 0, "fol: the writer expires b");
	CHECK_EQ(rlog_follower_expired(f, "host-b.7"), 1, "fol: b finds its mark");
	fl.n = 0;
	CHECK(rlog_followers(w, flist_cb, &fl) == 0 && fl.n == 1 && strcmp(fl.f[0].id, "host-a.1") == 0,
	      "fol: b's record is gone");
	CHECK_EQ(rlog_follower_put(f, &b), -ESTALE, "fol: b's next put: -ESTALE (expired)");
	fl.n = 0;
	CHECK(rlog_followers(w, flist_cb, &fl) == 0 && fl.n == 1, "fol: ... it did not come back");
	CHECK_EQ(rlog_follower_del(f, "host-b.7"), 0, "fol: b deletes its record and mark");
	CHECK_EQ(rlog_follower_expired(f, "host-b.7"), 0, "fol: no mark any more");
	CHECK_EQ(rlog_follower_del(f, "host-b.7"), 0, "fol: deleting nothing: 0");
	CHECK_EQ(rlog_follower_del(f, "host-a.1"), 0, "fol: a leaves");
	fl.n = 0;
	CHECK(rlog_followers(w, flist_cb, &fl) == 0 && fl.n == 0, "fol: none left");
	/* records that are not version 1 */
	{
		unsigned char v2[96] = { 2 };
		const char *k[1] = { "r.newer" }, *v[1] = { (const char *)v2 };
		size_t vl[1] = { 96 };
		rados_write_op_t op = rados_create_write_op();
		rados_write_op_omap_set(op, k, v, vl, 1);
		rados_write_op_operate2(op, io, "pfs.head", NULL, 0);
		rados_release_write_op(op);
		CHECK_EQ(rlog_followers(w, flist_cb, &fl), -EPROTO, "fol: a record of version 2: -EPROTO");
		v2[0] = 1;
		vl[0] = 50;
		op = rados_create_write_op();
		rados_write_op_omap_set(op, k, v, vl, 1);
		rados_write_op_operate2(op, io, "pfs.head", NULL, 0);
		rados_release_write_op(op);
		CHECK_EQ(rlog_followers(w, flist_cb, &fl), -EUCLEAN, "fol: a short record: -EUCLEAN");
	}
out:
	rlog_close(w);
	rlog_close(f);
	if (io)
		rados_ioctx_destroy(io);
}

/* ---- watch ---- */

static pthread_mutex_t w_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_cv = PTHREAD_COND_INITIALIZER;
static unsigned w_count;
static double w_last;

static void wake_cb(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&w_mu);
	w_count++;
	w_last = now_s();
	pthread_cond_broadcast(&w_cv);
	pthread_mutex_unlock(&w_mu);
}

/* Wait until the callback ran more than BEFORE times, at most SECS.
 * @return the time it ran, or 0. */
static double wait_wake(unsigned before, double secs)
{
	double deadline = now_s() + secs, t = 0;

	pthread_mutex_lock(&w_mu);
	while (w_count <= before && now_s() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&w_cv, &w_mu, &ts);
	}
	if (w_count > before)
		t = w_last;
	pthread_mutex_unlock(&w_mu);
	return t;
}

static unsigned wakes(void)
{
	unsigned n;

	pthread_mutex_lock(&w_mu);
	n = w_count;
	pthread_mutex_unlock(&w_mu);
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void test_watch(struct rconn *cw, struct rconn *cf)
{
	struct rlog *w = NULL, *f = NULL;
	uint64_t epoch, tail;
	double lat[20];
	int n = 0, missed = 0;

	if (open_ns(cw, "watch", 1, &w) || open_ns(cf, "watch", 0, &f) ||
	    rlog_acquire(w, 30, 0, 0, "w", &epoch, &tail)) {
		CHECK(0, "watch: open and acquire");
		goto out;
	}
	CHECK_EQ(rlog_watch(f, wake_cb, NULL), 0, "watch: the follower watches the head");
	CHECK_EQ(rlog_watch(f, wake_cb, NULL), -EBUSY, "watch: a second watch on the handle: -EBUSY");
	for (int i = 0; i < 20; i++) {
		unsigned before = wakes();
		double t0, t1;
		append1(w, (uint64_t)i + 1, 200, 1);
		t0 = now_s();
		t1 = wait_wake(before, 5);
		if (t1)
			lat[n++] = (t1 - t0) * 1000;
		else
			missed++;
	}
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_double);
	CHECK(missed == 0, "watch: each of 20 appends woke the follower (notify after the append "
	      "returned: median %.2f ms, max %.2f ms)", n ? lat[n / 2] : -1.0, n ? lat[n - 1] : -1.0);
	/* the OSD drops the watch when the head goes: the keeper makes it again
	 * once there is a head again, and wakes the follower */
	{
		rados_ioctx_t io = raw_io(cw, "watch");
		struct rlog *w2 = NULL;
		unsigned before = wakes();
		double t0;
		rlog_close(w);
		w = NULL;
		CHECK(io && rados_remove(io, "pfs.head") == 0, "watch: remove the head behind its back");
		if (io)
			rados_ioctx_destroy(io);
		sleep_s(2.5);                /* the keeper fails to watch a missing head */
#ifdef PFS_FAULT_INJECTION
		fault_reset();
		fault_arm("rlog_watch", 1, EIO);     /* and one attempt more */
#endif
		CHECK_EQ(open_ns(cw, "watch", 1, &w2), 0, "watch: a new head");
		t0 = now_s();
		CHECK(wait_wake(before, 15) > 0, "watch: the keeper watches it again and wakes the "
		      "follower (%.1f s)", now_s() - t0);
#ifdef PFS_FAULT_INJECTION
		CHECK_EQ(fault_fired("rlog_watch"), 1, "watch: ... after an attempt failed (fault point "
			 "rlog_watch)");
		fault_reset();
#endif
		sleep_s(1.5);
		before = wakes();
		CHECK(w2 && rlog_acquire(w2, 30, 0, 0, "w2", &epoch, &tail) == 0 && append1(w2, 1, 10, 1) == 0,
		      "watch: a writer appends to the new head");
		CHECK(wait_wake(before, 5) > 0, "watch: ... its notify reaches the follower");
		rlog_close(w2);
	}
out:
	rlog_close(f);
	rlog_close(w);
}

/* ---- fault points ---- */

static void test_faults(struct rconn *c)
{
#ifdef PFS_FAULT_INJECTION
	struct rlog *w = NULL;
	uint64_t epoch, tail, first, last, n = 0;

	if (open_ns(c, "faults", 1, &w) || rlog_acquire(w, 30, 0, 0, "f", &epoch, &tail)) {
		CHECK(0, "faults: open and acquire");
		rlog_close(w);
		return;
	}
	fault_reset();
	fault_arm("rlog_append", 1, EIO);
	CHECK_EQ(append1(w, 1, 10, 1), -EIO, "faults: rlog_append fails the append with EIO");
	CHECK(rlog_tail(w, &first, &last) == 0 && last == 0, "faults: ... nothing written");
	CHECK_EQ(append1(w, 1, 10, 1), 0, "faults: the next append works");
	fault_arm("rlog_read", 1, ENOMEM);
	CHECK_EQ(rlog_read(w, 0, 0, count_cb, &n), -ENOMEM, "faults: rlog_read fails a read");
	CHECK(rlog_read(w, 0, 0, count_cb, &n) == 0 && n == 1, "faults: the next read works");
	fault_reset();
	rlog_close(w);
#else
	(void)c;
	printf("# fault points compiled out (FAULT=0): skipped\n");
#endif
}

/* ---- the OSD stopped ---- */

#define CHECK_BOUNDED(taken, what) \
	CHECK((taken) < DOWN_T_S + SLACK_S, "osd down: %s within the timeout (%.1f s for %d s)", \
	      what, (taken), DOWN_T_S)

static void test_osd_down(void)
{
	struct rconn *cw = conn_new(DOWN_T_S), *cf = conn_new(DOWN_T_S);
	struct rlog *w = NULL, *f = NULL;
	struct rlog_follower fr = { .id = "down", .host = "h" };
	uint64_t epoch, e2, tail, first, last, n = 0;
	double t0, t;
	unsigned before;
	int rc;

	if (!cw || !cf || open_ns(cw, "osd", 1, &w) || open_ns(cf, "osd", 0, &f) ||
	    rlog_acquire(w, 30, 0, 0, "osd", &epoch, &tail) || rlog_watch(f, wake_cb, NULL)) {
		CHECK(0, "osd down: open, acquire, watch");
		goto out;
	}
	CHECK_EQ(append1(w, 1, 10, 1), 0, "osd down: append 1 before");
	CHECK_EQ(cluster("stop-osd"), 0, "osd down: stop the OSD");
	t0 = now_s();
	rc = append1(w, 2, 10, 1);
	t = now_s() - t0;
	CHECK_EQ(rc, -ETIMEDOUT, "osd down: append: -ETIMEDOUT");
	CHECK_BOUNDED(t, "append");
	CHECK_EQ(rlog_lease_ok(w), -ESTALE, "osd down: the append is in doubt: lease not ok");
	CHECK_EQ(append1(w, 2, 10, 1), -ESTALE, "osd down: appends refused until a new session");
	t0 = now_s();
	CHECK_EQ(rlog_tail(f, &first, &last), -ETIMEDOUT, "osd down: tail: -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "tail");
	t0 = now_s();
	CHECK_EQ(rlog_read(f, 0, 0, count_cb, &n), -ETIMEDOUT, "osd down: read: -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "read");
	t0 = now_s();
	CHECK_EQ(rlog_follower_put(f, &fr), -ETIMEDOUT, "osd down: follower put: -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "follower put");
	t0 = now_s();
	CHECK_EQ(rlog_acquire(w, 30, 0, 0, "osd", &e2, &tail), -ETIMEDOUT, "osd down: acquire: -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "acquire");
	CHECK_EQ(cluster("start-osd"), 0, "osd down: start the OSD again");
	CHECK_EQ(rlog_acquire(w, 30, 0, 0, "osd", &e2, &tail), 0, "osd back: a new session");
	CHECK(e2 > epoch && tail == 1, "osd back: its tail says the append in doubt did not land "
	      "(epoch %" PRIu64 ", tail %" PRIu64 ")", e2, tail);
	/* the keeper wakes the follower once the watch is confirmed again: let
	 * that pass (no wake for 2.5 s), so that what follows counts notifies */
	t0 = now_s();
	do {
		before = wakes();
		sleep_s(2.5);
	} while (wakes() != before && now_s() - t0 < 30);
	{
		int woke = 0;
		double worst = 0;
		for (uint64_t i = 2; i <= 4; i++) {
			before = wakes();
			rc = append1(w, i, 10, 1);
			t0 = now_s();
			t = rc == 0 ? wait_wake(before, 15) : 0;
			woke += t > 0;
			if (t > 0 && t - t0 > worst)
				worst = t - t0;
		}
		CHECK_EQ(woke, 3, "osd back: the watch survived: each of 3 appends woke the follower "
			 "(at most %.1f ms)", worst * 1000);
	}
	n = 0;
	CHECK(rlog_read(f, 0, 0, count_cb, &n) == 0 && n == 4, "osd back: the follower reads 1..4");
out:
	rlog_close(f);
	rlog_close(w);
	rconn_put(cw);
	rconn_put(cf);
}

/* ---- a writer killed around an append (the crash points) ---- */

/* The child: a writer on namespace SUFFIX appends 1, arms SPEC, appends 2
 * (where SPEC kills it). Prints no TAP. @return its exit status (it should
 * not return at all). */
static int crash_child(const char *suffix, const char *spec)
{
	struct rconn *c = conn_new(T_S);
	struct rlog *w = NULL;
	uint64_t e, t;

	if (!c || open_ns(c, suffix, 1, &w) || rlog_acquire(w, 30, 0, 0, "doomed", &e, &t) ||
	    append1(w, 1, 10, 1))
		return 2;
#ifdef PFS_FAULT_INJECTION
	if (fault_arm_spec(spec))
		return 2;
#else
	(void)spec;
#endif
	append1(w, 2, 10, 1);
	return 3;       /* not killed */
}

/* Run the child for SPEC on namespace SUFFIX. @return 1 when it died by
 * SIGKILL. */
static int run_child(const char *suffix, const char *spec)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t pid;
	int st;

	if (n <= 0)
		return 0;
	self[n] = '\0';
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execl(self, self, "--crash-child", suffix, spec, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

static void test_crash(struct rconn *c)
{
#ifdef PFS_FAULT_INJECTION
	static const struct { const char *ns, *spec; uint64_t tail; const char *what; } cases[] = {
		{ "crash-before", "rlog_append:1:KILL", 1, "killed as the append began: not in the log" },
		{ "crash-after", "rlog_appended:1:KILL", 2, "killed once the append returned: in the log" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rlog *w = NULL;
		uint64_t e = 0, tail = 0, first, last;
		CHECK(run_child(cases[i].ns, cases[i].spec), "crash: the writer %s (%s)",
		      cases[i].what, cases[i].spec);
		if (open_ns(c, cases[i].ns, 0, &w)) {
			CHECK(0, "crash: open after the crash");
			continue;
		}
		CHECK(rlog_tail(w, &first, &last) == 0 && last == cases[i].tail,
		      "crash: the log ends at %" PRIu64 " (%" PRIu64 ")", cases[i].tail, last);
		CHECK(rlog_acquire(w, 30, 0, 1, "heir", &e, &tail) == 0 && e == 2 && tail == cases[i].tail,
		      "crash: a takeover breaks the dead writer's lease: epoch 2, the same tail");
		CHECK_EQ(append1(w, tail + 1, 10, 1), 0, "crash: ... and appends after it");
		rlog_close(w);
	}
#else
	(void)c;
	printf("# fault points compiled out (FAULT=0): crash points skipped\n");
#endif
}


int main(int argc, char **argv)
{
	struct rconn *c1, *c2;
	double t0 = now_s();

	if (argc == 4 && strcmp(argv[1], "--crash-child") == 0) {
		conf_path = getenv("PFS_CEPH_CONF");
		pool = getenv("PFS_RADOS_POOL");
		snprintf(nsbase, sizeof(nsbase), "%s", getenv("RLOG_NSBASE") ? getenv("RLOG_NSBASE") : "");
		return crash_child(argv[2], argv[3]);
	}
	need_cluster();
	conf_path = getenv("PFS_CEPH_CONF");
	pool = getenv("PFS_RADOS_POOL");
	cluster_dir = getenv("PFS_RADOS_CLUSTER");
	cluster_sh = getenv("PFS_RADOS_CLUSTER_SH");
	if (!pool || !cluster_dir || !cluster_sh) {
		printf("Bail out! PFS_RADOS_POOL, PFS_RADOS_CLUSTER, PFS_RADOS_CLUSTER_SH unset\n");
		return 1;
	}
	seed_init();
	snprintf(nsbase, sizeof(nsbase), "rl%d-%08llx", (int)getpid(),
		 (unsigned long long)(rnd() & 0xffffffffu));
	printf("# cluster %s, pool %s, namespaces %s-*\n", conf_path, pool, nsbase);
	setenv("RLOG_NSBASE", nsbase, 1);      /* for the crash children */
	c1 = conn_new(T_S);
	c2 = conn_new(T_S);
	if (!c1 || !c2) {
		printf("Bail out! cannot connect to the cluster\n");
		return 1;
	}
	test_open(c1);
	test_append_read(c1);
	test_exact(c1);
	test_big(c1);
	test_stale_epoch(c1);
	test_tag(c1);
	test_lease();
	test_lease_loss(c1);
	test_trim_base(c1);
	test_followers(c1);
	test_watch(c1, c2);
	test_faults(c1);
	test_crash(c1);
	test_osd_down();
	rconn_put(c1);
	rconn_put(c2);
	printf("# %.1f s in all\n", now_s() - t0);
	return tap_done();
}
