/* test_backend_rados — the RADOS backend against a real throwaway cluster
 * (tests/rados/cluster.sh: one monitor, one memstore OSD on 127.0.0.1):
 * the common backend contract (backend_contract.h), then what is RADOS's
 * own: the exclusive create and its -EEXIST at sync, sync covering exactly
 * the ids it names (a failed put fails only its own id's sync; an id never
 * put is -ENOENT), batches of many ids with missing ones, images of
 * several MiB, namespaces that keep stores apart, threads, the fault
 * points, and the cluster failing: with the OSD stopped every operation
 * fails with -ETIMEDOUT within the timeout (never a hang) and works again
 * once it is back; with the monitor stopped, I/O goes on and a new
 * connection times out.
 *
 * The cluster: $PFS_CEPH_CONF, $PFS_RADOS_POOL, $PFS_RADOS_CLUSTER and
 * $PFS_RADOS_CLUSTER_SH (cluster.sh env; tests/run-all.sh starts one for
 * every RADOS test). Without them the test runs itself again under
 * tests/rados/with-cluster.sh (from the source root), which starts a
 * cluster and stops it afterwards. Random ids and namespaces come from a
 * logged seed (env TEST_SEED). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache/backend.h"
#include "cache/fault.h"
#include "cache/rados_conn.h"
#include "tests/unit/tap.h"

#include "tests/unit/backend_contract.h"
#include "tests/unit/tcluster.h"

#define TIMEOUT_S    3      /* the timeout of the fault sections */
#define SLACK_S      10     /* what a bounded wait may take beyond it (valgrind) */

static const char *conf_path, *pool, *cluster_dir, *cluster_sh;
static char nsbase[48];

/* Open a backend on namespace <nsbase>-SUFFIX with TIMEOUT seconds. */
static int open_ns(const char *suffix, unsigned timeout, struct frag_backend **out)
{
	struct rados_conf c = { .conf_path = conf_path, .timeout = timeout };
	char ns[96];

	snprintf(ns, sizeof(ns), "%s-%s", nsbase, suffix);
	return backend_rados_open(&c, pool, ns, out);
}

/* Run cluster.sh CMD on the test cluster. @return its exit status. */
static int cluster(const char *cmd)
{
	char line[1024];
	int rc;

	snprintf(line, sizeof(line), "'%s' %s '%s' >&2", cluster_sh, cmd, cluster_dir);
	rc = system(line);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static int del_cb(void *arg, uint64_t id)
{
	struct frag_backend *b = arg;

	return frag_del(b, id) == 0 ? 0 : -EIO;
}

static int count_cb(void *arg, uint64_t id)
{
	(void)id;
	++*(size_t *)arg;
	return 0;
}

/* Remove every image of B's namespace and close B. */
static void drain(struct frag_backend *b, const char *name)
{
	size_t n = 0;

	CHECK_EQ(frag_list(b, del_cb, b), 0, "%s: every image deleted", name);
	CHECK_EQ(frag_list(b, count_cb, &n), 0, "%s: list after", name);
	CHECK_EQ(n, 0, "%s: the namespace is empty", name);
	frag_backend_destroy(b);
}

static struct frag_get req_for(uint64_t id)
{
	struct frag_get r = { .id = id, .cap = image_len(id), .err = 12345, .len = 777 };

	r.buf = malloc(r.cap);
	return r;
}

/* ---- opening ---- */

/* @return a TCP port of 127.0.0.1 that nothing listens on (bound, then
 * closed), or 9 when no socket can be had. */
static int closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port = 9;

	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static void test_open_errors(void)
{
	struct rados_conf c = { .conf_path = conf_path, .timeout = TIMEOUT_S };
	struct rados_conf nofile = { .conf_path = "/nonexistent/ceph.conf", .timeout = TIMEOUT_S };
	struct frag_backend *b = (void *)1;
	char path[] = "/tmp/test_backend_rados.XXXXXX";
	double t0;
	FILE *f;
	int fd;

	CHECK_EQ(backend_rados_open(&nofile, pool, "x", &b), -ENOENT,
		 "open: a missing configuration file gives -ENOENT");
	CHECK(b == NULL, "open: out is NULL on failure");
	CHECK_EQ(backend_rados_open(&c, "no-such-pool", "x", &b), -ENOENT,
		 "open: a missing pool gives -ENOENT");
	CHECK_EQ(backend_rados_open(&c, pool, "", &b), -EINVAL,
		 "open: an empty namespace gives -EINVAL");
	CHECK_EQ(backend_rados_open(&c, pool, NULL, &b), -EINVAL,
		 "open: no namespace gives -EINVAL");
	/* a monitor address where nothing listens: a port just bound and freed */
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f) {
		fprintf(f, "[global]\nmon host = v1:127.0.0.1:%d\nauth client required = none\n"
			"auth cluster required = none\nauth service required = none\n", closed_port());
		fclose(f);
	}
	c.conf_path = path;
	c.timeout = 2;
	t0 = now_s();
	CHECK_EQ(backend_rados_open(&c, pool, "x", &b), -ETIMEDOUT,
		 "open: no monitor answering gives -ETIMEDOUT");
	CHECK(now_s() - t0 < 2 + SLACK_S, "open: ... within the timeout (%.1f s for 2 s)",
	      now_s() - t0);
	unlink(path);
	frag_backend_destroy(NULL);
}

/* ---- exclusive create, sync of exactly the named ids ---- */

static void test_exclusive(void)
{
	struct frag_backend *b = NULL;
	uint64_t x = 0x100 | (rnd() << 12), y = x + 1, z = x + 2, ghost = x + 3;
	uint64_t xz[2] = { x, z }, xg[2] = { x, ghost };
	struct frag_get r;

	if (open_ns("excl", TIMEOUT_S, &b) != 0) {
		CHECK(0, "excl: open");
		return;
	}
	CHECK_EQ(put_image(b, x), 0, "excl: put");
	CHECK_EQ(put_image(b, x), -EEXIST, "excl: a put of an id still pending is -EEXIST at once");
	CHECK_EQ(frag_sync(b, &x, 1), 0, "excl: sync");
	CHECK_EQ(frag_sync(b, &x, 1), 0, "excl: sync again (asks the cluster: it exists)");
	CHECK_EQ(frag_sync(b, xg, 2), -ENOENT, "excl: sync of an id never put is -ENOENT");
	CHECK_EQ(frag_put(b, x, "other bytes", 11), 0, "excl: put over an existing object is sent");
	CHECK_EQ(put_image(b, y), 0, "excl: put of another id meanwhile");
	CHECK_EQ(frag_sync(b, &y, 1), 0, "excl: the other id's sync is not failed by it");
	CHECK_EQ(frag_sync(b, &x, 1), -EEXIST, "excl: the sync naming it says -EEXIST");
	CHECK_EQ(frag_sync(b, &x, 1), -EEXIST, "excl: ... and keeps saying it (until del)");
	r = req_for(x);
	CHECK_EQ(frag_get_many(b, &r, 1), 0, "excl: get");
	CHECK(image_ok(&r), "excl: the first image is intact (nothing replaced)");
	free(r.buf);
	CHECK_EQ(put_image(b, z), 0, "excl: put z");
	CHECK_EQ(frag_sync(b, xz, 2), -EEXIST, "excl: a sync of a failed and a good id fails");
	CHECK_EQ(frag_del(b, x), 0, "excl: del of the id");
	CHECK_EQ(frag_put(b, x, "new", 3), 0, "excl: after del the id can be put again");
	CHECK_EQ(frag_sync(b, &x, 1), 0, "excl: ... and synced");
	r = (struct frag_get){ .id = x, .cap = 3 };
	r.buf = malloc(3);
	frag_get_many(b, &r, 1);
	CHECK(r.err == 0 && r.len == 3 && memcmp(r.buf, "new", 3) == 0, "excl: the new bytes");
	free(r.buf);
	CHECK_EQ(frag_sync(b, NULL, 0), 0, "excl: sync of every put");
	drain(b, "excl");
}

/* ---- many ids in one batch ---- */

#define NMANY   1500      /* more than librados's 1024 ops in flight, and
			   * than the pending table keeps before reaping */
#define NMISS   100
#define MISSING 0x8000000000000000ull   /* the bit of the ids never put */

static void test_many(void)
{
	struct frag_backend *b = NULL;
	uint64_t *ids = malloc(NMANY * sizeof(*ids));
	struct frag_get *reqs = calloc(NMANY + NMISS, sizeof(*reqs));
	size_t bad = 0, good = 0, missing = 0, listed = 0;
	double t0;

	if (open_ns("many", 30, &b) != 0) {
		CHECK(0, "many: open");
		goto out;
	}
	for (size_t i = 0; i < NMANY; i++) {
		ids[i] = (rnd() & ~0xfull & ~MISSING) | 1;   /* never one of the missing ones */
		if (image_len(ids[i]) > 5000)   /* small ones: 1.5 k images */
			ids[i] ^= 2;
		if (image_len(ids[i]) > 5000)
			ids[i] ^= 4;
	}
	t0 = now_s();
	for (size_t i = 0; i < NMANY; i++)
		bad += put_image(b, ids[i]) != 0;
	CHECK_EQ(bad, 0, "many: %d puts without a sync in between", NMANY);
	CHECK_EQ(frag_sync(b, ids, NMANY), 0, "many: one sync of the %d ids (%.2f s in all)",
		 NMANY, now_s() - t0);
	/* requests: every id, with a missing one after each 15th */
	size_t k = 0;
	for (size_t i = 0; i < NMANY; i++) {
		reqs[k++] = req_for(ids[i]);
		if (i % 15 == 14)
			reqs[k++] = req_for(ids[i] | MISSING);
	}
	t0 = now_s();
	CHECK_EQ(frag_get_many(b, reqs, k), 0, "many: one get_many of %zu ids (%.2f s)", k,
		 now_s() - t0);
	for (size_t i = 0; i < k; i++) {
		if (reqs[i].id & MISSING)
			missing += reqs[i].err == -ENOENT && reqs[i].len == 0;
		else
			good += image_ok(&reqs[i]);
	}
	CHECK_EQ(good, NMANY, "many: each image read back whole");
	CHECK_EQ(missing, NMISS, "many: each missing id -ENOENT on its own");
	for (size_t i = 0; i < k; i++)
		free(reqs[i].buf);
	/* cap 0: does the image exist */
	reqs[0] = (struct frag_get){ .id = ids[0], .err = 1 };
	reqs[1] = (struct frag_get){ .id = ids[0] | MISSING, .err = 1 };
	frag_get_many(b, reqs, 2);
	CHECK(reqs[0].err == 0 && reqs[1].err == -ENOENT, "many: cap 0 says whether it exists (%d %d)",
	      reqs[0].err, reqs[1].err);
	CHECK_EQ(frag_list(b, count_cb, &listed), 0, "many: list");
	CHECK_EQ(listed, NMANY, "many: list gives every image once");
	drain(b, "many");
out:
	free(ids);
	free(reqs);
}

/* ---- large images ---- */

static void test_large(void)
{
	static const size_t sizes[] = { 4u << 20, 16u << 20, (64u << 20) + 12345 };
	struct frag_backend *b = NULL;

	if (open_ns("large", 60, &b) != 0) {
		CHECK(0, "large: open");
		return;
	}
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint64_t id = 0x1a00 + s;
		size_t n = sizes[s];
		unsigned char *p = malloc(n), *q = malloc(n);
		struct frag_get r = { .id = id, .buf = q, .cap = n };

		image_fill(id, p, n);
		CHECK_EQ(frag_put(b, id, p, n), 0, "large: put %zu bytes", n);
		memset(p, 0, n);      /* put copied the bytes */
		CHECK_EQ(frag_sync(b, &id, 1), 0, "large: sync %zu bytes", n);
		CHECK_EQ(frag_get_many(b, &r, 1), 0, "large: get %zu bytes", n);
		image_fill(id, p, n);
		CHECK(r.err == 0 && r.len == n && memcmp(p, q, n) == 0, "large: %zu bytes read back whole", n);
		free(p);
		free(q);
	}
	{       /* over osd_max_write_size (90 MiB): refused, not a hang */
		size_t n = 91u << 20;
		unsigned char *p = calloc(1, n);
		uint64_t id = 0x1aff;
		CHECK_EQ(frag_put(b, id, p, n), 0, "large: put 91 MiB is sent");
		CHECK_EQ(frag_sync(b, &id, 1), -EMSGSIZE,
			 "large: ... and its sync fails with -EMSGSIZE (osd_max_write_size)");
		CHECK_EQ(frag_del(b, id), -ENOENT, "large: nothing of it was stored");
		free(p);
	}
	drain(b, "large");
}

/* ---- namespaces ---- */

static void test_namespaces(void)
{
	struct frag_backend *a = NULL, *b = NULL;
	uint64_t id = 0x77;
	size_t na = 0, nb = 0;
	struct frag_get r = { .id = id, .cap = 1 };
	char c;

	if (open_ns("nsa", TIMEOUT_S, &a) || open_ns("nsb", TIMEOUT_S, &b)) {
		CHECK(0, "ns: open two");
		frag_backend_destroy(a);
		frag_backend_destroy(b);
		return;
	}
	CHECK(frag_put(a, id, "A", 1) == 0 && frag_sync(a, &id, 1) == 0, "ns: put id in namespace a");
	CHECK(frag_put(b, id, "B", 1) == 0 && frag_sync(b, &id, 1) == 0,
	      "ns: the same id in namespace b is another object");
	CHECK(frag_put(a, id + 1, "a", 1) == 0 && frag_sync(a, NULL, 0) == 0, "ns: a second in a");
	r.buf = &c;
	frag_get_many(b, &r, 1);
	CHECK(r.err == 0 && c == 'B', "ns: b reads its own");
	{       /* objects in the namespace not named like an image */
		static const char *stray[] = { "README", "0123", "00000000000000AB",
					       "00000000000000001", "000000000000007g" };
		struct rados_conf rc = { .conf_path = conf_path, .timeout = TIMEOUT_S };
		struct rconn *conn = NULL;
		rados_ioctx_t io = NULL;
		char ns[96];
		int bad = 0;

		snprintf(ns, sizeof(ns), "%s-nsa", nsbase);
		if (rconn_open(&rc, &conn) == 0 && rconn_ioctx(conn, pool, ns, &io) == 0)
			for (size_t i = 0; i < sizeof(stray) / sizeof(stray[0]); i++)
				bad += rados_write_full(io, stray[i], "?", 1) != 0;
		CHECK(io && bad == 0, "ns: 5 objects of other names written into namespace a");
		frag_list(a, count_cb, &na);
		frag_list(b, count_cb, &nb);
		CHECK(na == 2 && nb == 1, "ns: each lists its own images, nothing else (%zu, %zu)", na, nb);
		for (size_t i = 0; io && i < sizeof(stray) / sizeof(stray[0]); i++)
			rados_remove(io, stray[i]);
		if (io)
			rados_ioctx_destroy(io);
		rconn_put(conn);
	}
	drain(a, "ns a");
	r.err = 1;
	frag_get_many(b, &r, 1);
	CHECK(r.err == 0 && c == 'B', "ns: emptying a leaves b alone");
	drain(b, "ns b");
}

/* ---- threads: put, sync, read, delete, list at once ---- */

struct wthr { struct frag_backend *b; uint64_t base; int bad; };

static void *worker(void *arg)
{
	struct wthr *t = arg;
	uint64_t ids[60];
	struct frag_get reqs[60];

	for (int i = 0; i < 60; i++) {
		ids[i] = t->base + (uint64_t)i * 13;
		t->bad += put_image(t->b, ids[i]) != 0;
	}
	t->bad += frag_sync(t->b, ids, 60) != 0;
	for (int round = 0; round < 3; round++) {
		reqs_alloc(reqs, ids, 60);
		t->bad += frag_get_many(t->b, reqs, 60) != 0;
		for (int i = 0; i < 60; i++)
			t->bad += !image_ok(&reqs[i]);
		reqs_free(reqs, 60);
	}
	for (int i = 0; i < 60; i += 2)
		t->bad += frag_del(t->b, ids[i]) != 0;
	reqs_alloc(reqs, ids, 60);
	t->bad += frag_get_many(t->b, reqs, 60) != 0;
	for (int i = 0; i < 60; i++)
		t->bad += i % 2 ? !image_ok(&reqs[i]) : reqs[i].err != -ENOENT;
	reqs_free(reqs, 60);
	return NULL;
}

struct lthr { struct frag_backend *b; int stop, bad, lists; };

static void *lister(void *arg)
{
	struct lthr *t = arg;

	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		size_t n = 0;
		t->bad += frag_list(t->b, count_cb, &n) != 0;
		t->bad += frag_sync(t->b, NULL, 0) != 0;
		t->lists++;
	}
	return NULL;
}

static void test_threads_rados(void)
{
	struct frag_backend *b = NULL;
	pthread_t th[6], lt;
	struct wthr w[6];
	struct lthr l = { 0 };
	size_t n = 0;
	int bad = 0;

	if (open_ns("threads", 30, &b) != 0) {
		CHECK(0, "threads: open");
		return;
	}
	l.b = b;
	pthread_create(&lt, NULL, lister, &l);
	for (int i = 0; i < 6; i++) {
		w[i] = (struct wthr){ b, ((uint64_t)(i + 1) << 48) | (rnd() & 0xffff0000ull), 0 };
		pthread_create(&th[i], NULL, worker, &w[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		bad += w[i].bad;
	}
	__atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
	pthread_join(lt, NULL);
	CHECK_EQ(bad, 0, "threads: 6 threads put, sync, read, delete and read again at once");
	CHECK_EQ(l.bad, 0, "threads: ... while another lists and syncs everything (%d rounds)", l.lists);
	frag_list(b, count_cb, &n);
	CHECK_EQ(n, 6 * 30, "threads: what is left is what was not deleted");
	drain(b, "threads");
}

/* ---- fault points ---- */

static void test_faults(void)
{
#ifdef PFS_FAULT_INJECTION
	struct frag_backend *b = NULL;
	uint64_t ids[3] = { 0xf1, 0xf2, 0xf3 };
	struct frag_get reqs[3];

	if (open_ns("faults", TIMEOUT_S, &b) != 0) {
		CHECK(0, "faults: open");
		return;
	}
	fault_arm("frag_write", 1, ENOSPC);
	CHECK_EQ(put_image(b, ids[0]), -ENOSPC, "faults: frag_write fails the put with ENOSPC");
	fault_reset();
	CHECK_EQ(put_image(b, ids[0]), 0, "faults: the put works afterwards");
	for (int i = 1; i < 3; i++)
		put_image(b, ids[i]);
	fault_arm("frag_fsync", 1, EIO);
	CHECK_EQ(frag_sync(b, ids, 3), -EIO, "faults: frag_fsync fails the sync with EIO");
	fault_reset();
	CHECK_EQ(frag_sync(b, ids, 3), 0, "faults: the sync works afterwards");
	reqs_alloc(reqs, ids, 3);
	fault_arm("frag_read", 2, EIO);
	CHECK_EQ(frag_get_many(b, reqs, 3), 0, "faults: get_many with a read fault");
	fault_reset();
	CHECK(image_ok(&reqs[0]) && image_ok(&reqs[2]), "faults: other requests unaffected");
	CHECK_EQ(reqs[1].err, -EIO, "faults: frag_read fails its request");
	reqs_free(reqs, 3);
	drain(b, "faults");
#else
	printf("# fault points compiled out (FAULT=0): skipped\n");
#endif
}

/* ---- the OSD stopped ---- */

/* CHECK that the TAKEN seconds are within the timeout (not a hang). */
#define CHECK_BOUNDED(taken, what) \
	CHECK((taken) < TIMEOUT_S + SLACK_S, "osd down: %s within the timeout (%.1f s for %d s)", \
	      what, (taken), TIMEOUT_S)

static void test_osd_down(void)
{
	struct frag_backend *b = NULL;
	uint64_t a = 0xa0, c = 0xc0, d = 0xd0, e = 0xe0;
	struct frag_get r;
	size_t n = 0;
	double t0, t;
	int rc;

	if (open_ns("osd", TIMEOUT_S, &b) != 0) {
		CHECK(0, "osd down: open");
		return;
	}
	CHECK(put_image(b, a) == 0 && frag_sync(b, &a, 1) == 0, "osd down: put and sync before");
	CHECK_EQ(put_image(b, c), 0, "osd down: a put not synced yet");
	r = req_for(c);
	frag_get_many(b, &r, 1);     /* waits for c's write: it is done */
	CHECK(image_ok(&r), "osd down: ... which completed");
	free(r.buf);

	CHECK_EQ(cluster("stop-osd"), 0, "osd down: stop the OSD");
	t0 = now_s();
	rc = put_image(b, d);
	t = now_s() - t0;
	CHECK_EQ(rc, 0, "osd down: a put is sent (%.2f s)", t);
	CHECK(t < TIMEOUT_S, "osd down: ... without waiting for the OSD");
	CHECK_EQ(frag_sync(b, &c, 1), 0, "osd down: sync of an id whose write completed: 0, no wait");
	t0 = now_s();
	rc = frag_sync(b, &d, 1);
	CHECK_EQ(rc, -ETIMEDOUT, "osd down: sync of the put sent while it was down: -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "sync");
	CHECK_EQ(frag_sync(b, &d, 1), -ETIMEDOUT, "osd down: that sync keeps failing (until del)");
	r = req_for(a);
	t0 = now_s();
	CHECK_EQ(frag_get_many(b, &r, 1), 0, "osd down: get_many submitted");
	CHECK_EQ(r.err, -ETIMEDOUT, "osd down: the read fails with -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "read");
	t0 = now_s();
	CHECK_EQ(frag_del(b, e), -ETIMEDOUT, "osd down: del fails with -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "del");
	t0 = now_s();
	CHECK_EQ(frag_list(b, count_cb, &n), -ETIMEDOUT, "osd down: list fails with -ETIMEDOUT");
	CHECK_BOUNDED(now_s() - t0, "list");

	CHECK_EQ(cluster("start-osd"), 0, "osd down: start the OSD again");
	r.err = 1;
	CHECK(frag_get_many(b, &r, 1) == 0 && image_ok(&r), "osd back: the image put before reads back");
	free(r.buf);
	rc = frag_del(b, d);
	CHECK(rc == 0 || rc == -ENOENT, "osd back: del of the timed-out put (%d)", rc);
	CHECK(put_image(b, d) == 0 && frag_sync(b, &d, 1) == 0, "osd back: its id is put and synced");
	CHECK(put_image(b, e) == 0 && frag_sync(b, &e, 1) == 0, "osd back: a new put and sync work");
	r = req_for(e);
	CHECK(frag_get_many(b, &r, 1) == 0 && image_ok(&r), "osd back: and read");
	free(r.buf);
	drain(b, "osd back");
}

/* ---- the monitor stopped ---- */

static void test_mon_down(void)
{
	struct frag_backend *b = NULL, *b2 = (void *)1;
	uint64_t id = 0x3030;
	struct frag_get r;
	double t0;

	if (open_ns("mon", TIMEOUT_S, &b) != 0) {
		CHECK(0, "mon down: open");
		return;
	}
	CHECK_EQ(cluster("stop-mon"), 0, "mon down: stop the monitor");
	CHECK(put_image(b, id) == 0 && frag_sync(b, &id, 1) == 0,
	      "mon down: an open backend still puts and syncs (I/O goes to the OSD)");
	r = req_for(id);
	CHECK(frag_get_many(b, &r, 1) == 0 && image_ok(&r), "mon down: and reads");
	free(r.buf);
	t0 = now_s();
	CHECK_EQ(open_ns("mon", TIMEOUT_S, &b2), -ETIMEDOUT, "mon down: a new connection: -ETIMEDOUT");
	CHECK(now_s() - t0 < TIMEOUT_S + SLACK_S, "mon down: ... within the timeout (%.1f s)",
	      now_s() - t0);
	CHECK_EQ(cluster("start-mon"), 0, "mon down: start the monitor again");
	CHECK_EQ(open_ns("mon", TIMEOUT_S, &b2), 0, "mon back: a new connection works");
	frag_backend_destroy(b2);
	drain(b, "mon back");
}

/* ---- the shared connection ---- */

static void test_shared_conn(void)
{
	struct rados_conf c = { .conf_path = conf_path, .timeout = TIMEOUT_S };
	struct frag_backend *a = NULL, *b = NULL;
	struct rconn *conn = NULL;
	char ns[96];
	uint64_t id = 0x5;

	CHECK_EQ(rconn_open(&c, &conn), 0, "conn: open");
	if (!conn)
		return;
	CHECK_EQ(rconn_timeout(conn), TIMEOUT_S, "conn: the timeout");
	snprintf(ns, sizeof(ns), "%s-conn", nsbase);
	CHECK_EQ(backend_rados_open_conn(conn, pool, ns, &a), 0, "conn: a backend on it");
	CHECK_EQ(backend_rados_open_conn(conn, pool, ns, &b), 0, "conn: a second one");
	rconn_put(conn);            /* the backends hold their own references */
	if (!a || !b)
		return;
	CHECK(frag_put(a, id, "s", 1) == 0 && frag_sync(a, &id, 1) == 0, "conn: put through one");
	CHECK_EQ(frag_sync(b, &id, 1), 0, "conn: the other sees it (same namespace)");
	frag_backend_destroy(a);
	drain(b, "conn");
}

int main(void)
{
	struct frag_backend *b = NULL;

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
	snprintf(nsbase, sizeof(nsbase), "t%d-%08llx", (int)getpid(),
		 (unsigned long long)(rnd() & 0xffffffffu));
	printf("# cluster %s, pool %s, namespaces %s-*\n", conf_path, pool, nsbase);

	test_open_errors();
	CHECK_EQ(open_ns("contract", 60, &b), 0, "rados: open");
	if (b) {
		contract_run(b, "rados");
		drain(b, "rados");
	}
	test_exclusive();
	test_many();
	test_large();
	test_namespaces();
	test_threads_rados();
	test_shared_conn();
	test_faults();
	test_osd_down();
	test_mon_down();
	return tap_done();
}
