/* bench_rados — the RADOS fragment backend's own throughput, to set beside
 * `rados bench` on the same cluster (tests/bench/rados.sh): is the backend
 * the limit?
 *
 *   window  put N images of SIZE bytes keeping 16 writes in flight (put
 *           id i, then sync the id put 16 before: rados bench's -t 16)
 *   batch   put 16 images, then one sync of those 16, N/16 times (how a
 *           commit of 16 fragments uses it)
 *   read    get_many of 16 images at a time over all N (cold for the
 *           client: no cache in the backend)
 *   del     del of every image, one at a time
 * Every image read is checked (length and the id stamped in it).
 *
 * usage: bench_rados [N [SIZE]]   (default 1024 images of 1 MiB)
 * Environment: PFS_CEPH_CONF, PFS_RADOS_POOL (cluster.sh env).
 * Prints one line per figure: "rados-backend NAME: MB/s, ops/s, CPU s". */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache/backend.h"
#include "cache/rados_conn.h"
#include "tests/bench/benchclock.h"

#define DEPTH 16


/* SIZE 0: a figure in operations only (del moves no bytes). */
static void report(const char *name, size_t n, size_t size, double secs, double cpu)
{
	if (size)
		printf("rados-backend %-6s %8.1f MB/s %9.1f ops/s  (%zu x %zu B in %.2f s, client CPU %.2f s)\n",
		       name, (double)n * (double)size / secs / 1e6, (double)n / secs, n, size, secs, cpu);
	else
		printf("rados-backend %-6s %9.1f ops/s  (%zu in %.2f s, client CPU %.2f s)\n",
		       name, (double)n / secs, n, secs, cpu);
	fflush(stdout);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_rados: %s: %s\n", what, strerror(-rc));
	exit(1);
}

/* Put N images with ids BASE.., DEPTH in flight (window) or in batches
 * of DEPTH. */
static void put_all(struct frag_backend *b, uint64_t base, size_t n, unsigned char *img,
		    size_t size, int batch)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t id = base + i;
		int rc;

		memcpy(img, &id, sizeof(id));
		if ((rc = frag_put(b, id, img, size)) != 0)
			die("put", rc);
		if (!batch && i >= DEPTH) {
			uint64_t old = id - DEPTH;
			if ((rc = frag_sync(b, &old, 1)) != 0)
				die("sync", rc);
		}
		if (batch && (i % DEPTH == DEPTH - 1 || i == n - 1)) {
			uint64_t ids[DEPTH];
			size_t k = i % DEPTH + 1;
			for (size_t j = 0; j < k; j++)
				ids[j] = id - (k - 1) + j;
			if ((rc = frag_sync(b, ids, k)) != 0)
				die("sync", rc);
		}
	}
	if (!batch) {
		int rc = frag_sync(b, NULL, 0);
		if (rc)
			die("sync", rc);
	}
}

int main(int argc, char **argv)
{
	const char *conf = getenv("PFS_CEPH_CONF"), *pool = getenv("PFS_RADOS_POOL");
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1024;
	size_t size = argc > 2 ? strtoull(argv[2], NULL, 0) : 1u << 20;
	struct rados_conf c = { .conf_path = conf, .timeout = 60 };
	struct frag_backend *b = NULL;
	struct frag_get reqs[DEPTH];
	unsigned char *img;
	char ns[64];
	double t0, c0;
	size_t bad = 0;
	int rc;

	if (!conf || !pool || n < DEPTH || size < 8) {
		fprintf(stderr, "usage: bench_rados [N>=16 [SIZE>=8]] with PFS_CEPH_CONF and "
			"PFS_RADOS_POOL set (tests/rados/cluster.sh env DIR)\n");
		return 2;
	}
	snprintf(ns, sizeof(ns), "bench-%d", (int)getpid());
	if ((rc = backend_rados_open(&c, pool, ns, &b)) != 0)
		die("open", rc);
	img = malloc(size);
	for (size_t i = 0; i < size; i++)
		img[i] = (unsigned char)(i * 131 + (i >> 12));
	for (int k = 0; k < DEPTH; k++)
		reqs[k].buf = malloc(size);

	c0 = cpu_s(), t0 = now_s();
	put_all(b, 1, n, img, size, 0);
	report("window", n, size, now_s() - t0, cpu_s() - c0);

	c0 = cpu_s(), t0 = now_s();
	put_all(b, 1 + n, n, img, size, 1);
	report("batch", n, size, now_s() - t0, cpu_s() - c0);

	c0 = cpu_s(), t0 = now_s();
	for (size_t i = 0; i < 2 * n; i += DEPTH) {
		size_t k = 2 * n - i < DEPTH ? 2 * n - i : DEPTH;
		for (size_t j = 0; j < k; j++) {
			reqs[j].id = 1 + i + j;
			reqs[j].cap = size;
		}
		if ((rc = frag_get_many(b, reqs, k)) != 0)
			die("get_many", rc);
		for (size_t j = 0; j < k; j++) {
			uint64_t got;
			memcpy(&got, reqs[j].buf, sizeof(got));
			bad += reqs[j].err != 0 || reqs[j].len != size || got != reqs[j].id;
		}
	}
	report("read", 2 * n, size, now_s() - t0, cpu_s() - c0);
	if (bad) {
		fprintf(stderr, "bench_rados: %zu images read back wrong\n", bad);
		return 1;
	}

	c0 = cpu_s(), t0 = now_s();
	for (size_t i = 0; i < 2 * n; i++)
		if ((rc = frag_del(b, 1 + i)) != 0)
			die("del", rc);
	report("del", 2 * n, 0, now_s() - t0, cpu_s() - c0);

	for (int k = 0; k < DEPTH; k++)
		free(reqs[k].buf);
	free(img);
	frag_backend_destroy(b);
	return 0;
}
