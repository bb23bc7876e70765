/* bench_rlog — the latency of one index log append (cache/rlog.h) on a
 * cluster: the RADOS round trip a commit on a RADOS writer waits for while
 * it holds the commit lock (index/store_rados.c append_hook). Set beside
 * the small-file commit rate of tests/bench/run.sh (figure rados), it says
 * how much of a small commit that round trip is, and what appending
 * several commits' entries in one op (group commit) would cost.
 *
 *   bench_rlog [N [SIZE [BATCH]]]   (default 500 appends, 1024 bytes, 8)
 *
 * In a namespace of its own (rlogbench-PID, removed at the end) it takes a
 * writer session (rlog_acquire) and appends, one after the other:
 *   single  N appends of one entry of SIZE bytes (what each commit does)
 *   batch   N / BATCH appends of BATCH entries of SIZE bytes in one op
 *           (what a group commit of BATCH closers would do)
 * Prints one line per figure: appends, entries per second, the latency
 * of one append (median, p99, max) and this process's CPU time per append
 * (librados: the op, its reply, the notify that follows it), in ms.
 * Environment: PFS_CEPH_CONF, PFS_RADOS_POOL (tests/rados/cluster.sh env).
 * Exit 0; 1 with "bench_rlog: ..." when a call fails; 2 on a usage error. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache/rados_conn.h"
#include "tests/bench/benchclock.h"
#include "cache/rlog.h"

#define MAX_BATCH 256


static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* nearest rank */
static double pct(const double *sorted, size_t n, double p)
{
	size_t k = (size_t)(p * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	return sorted[(k > n ? n : k) - 1];
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_rlog: %s: %s\n", what, strerror(-rc));
	exit(1);
}

/* Append OPS ops of BATCH entries each after *TAIL; report as NAME. */
static void run(struct rlog *l, uint64_t *tail, const char *name, size_t ops, size_t batch,
		unsigned char *entry, size_t size, double *lat)
{
	const void *data[MAX_BATCH];
	size_t len[MAX_BATCH];
	double t0 = now_s(), c0 = cpu_s(), t, c;

	for (size_t i = 0; i < ops; i++) {
		double a = now_s();
		int rc;

		for (size_t j = 0; j < batch; j++) {
			uint64_t lsn = *tail + 1 + j;
			memcpy(entry + j * size, &lsn, sizeof(lsn)); /* entries differ */
			data[j] = entry + j * size;
			len[j] = size;
		}
		rc = rlog_append(l, *tail + 1, data, len, batch);
		if (rc)
			die("rlog_append", rc);
		lat[i] = now_s() - a;
		*tail += batch;
	}
	t = now_s() - t0;
	c = cpu_s() - c0;
	qsort(lat, ops, sizeof(*lat), cmp_d);
	printf("rlog-append %-6s %4zu appends of %3zu x %zu B: %6.0f entries/s; one append: median %.2f ms, "
	       "p99 %.2f ms, max %.2f ms, client CPU %.2f ms\n",
	       name, ops, batch, size, (double)(ops * batch) / t, pct(lat, ops, 0.5) * 1e3,
	       pct(lat, ops, 0.99) * 1e3, lat[ops - 1] * 1e3, c / (double)ops * 1e3);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *conf = getenv("PFS_CEPH_CONF"), *pool = getenv("PFS_RADOS_POOL");
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 500;
	size_t size = argc > 2 ? strtoull(argv[2], NULL, 0) : 1024;
	size_t batch = argc > 3 ? strtoull(argv[3], NULL, 0) : 8;
	struct rados_conf c = { .conf_path = conf, .timeout = 60 };
	struct rconn *rc = NULL;
	struct rlog *l = NULL;
	rados_ioctx_t io;
	uint64_t epoch, tail;
	unsigned char *entry;
	double *lat;
	char ns[64];
	int e;

	if (!conf || !pool || argc > 4 || n < 1 || n > 1000000 || size < 8 || size > (1 << 20) || batch < 1 ||
	    batch > MAX_BATCH) {
		fprintf(stderr, "usage: bench_rlog [N [SIZE>=8 [BATCH<=%d]]] with PFS_CEPH_CONF and "
			"PFS_RADOS_POOL set (tests/rados/cluster.sh env DIR)\n", MAX_BATCH);
		return 2;
	}
	snprintf(ns, sizeof(ns), "rlogbench-%d", (int)getpid());
	if ((e = rconn_open(&c, &rc)) != 0)
		die("connect", e);
	if ((e = rlog_open(rc, pool, ns, 1, &l)) != 0)
		die("rlog_open", e);
	if ((e = rlog_acquire(l, 30, 0, 0, "bench_rlog", &epoch, &tail)) != 0)
		die("rlog_acquire", e);
	entry = malloc(batch * size);
	lat = malloc(n * sizeof(*lat));
	if (!entry || !lat)
		die("malloc", -ENOMEM);
	for (size_t i = 0; i < batch * size; i++)
		entry[i] = (unsigned char)(i * 131 + 7);

	run(l, &tail, "single", n, 1, entry, size, lat);
	if (batch > 1)
		run(l, &tail, "batch", n / batch ? n / batch : 1, batch, entry, size, lat);

	rlog_close(l);
	/* the namespace's only object: the head (entries this small live in
	 * its omap) */
	if ((e = rconn_ioctx(rc, pool, ns, &io)) != 0)
		die("ioctx", e);
	e = rados_remove(io, "pfs.head");
	rados_ioctx_destroy(io);
	rconn_put(rc);
	if (e < 0)
		die("removing pfs.head", e);
	free(entry);
	free(lat);
	return 0;
}
