/* libbatch — the library's put and cold-read figures of `make bench-lib`
 * (tests/bench/libget.sh, issue 14):
 *
 *   libbatch put STORE EXT N SIZE
 *       (a) ONE payload_put_many of N objects p/NNNNNNN of SIZE bytes into
 *       STORE (timed: the call, which returns once the batch is durable),
 *       against creating the same N files in EXT/p (open + write + close
 *       each, then one syncfs). Every object is read back and checked
 *       (untimed). Prints seconds, objects/s and the ratio.
 *   libbatch mkcold STORE EXT N SIZE
 *       N objects k/NNNNNNN of SIZE bytes (put_many batches of 256 MiB)
 *       and the same N files in EXT/k, for the cold figure.
 *   libbatch cold lib STORE N SIZE K BATCH  |  cold ext EXT N SIZE K THREADS
 *       K distinct random objects of the N (the same K both ways): the
 *       library in payload_get_many batches of BATCH, or THREADS threads
 *       doing open + read + close of the files; every byte checked. The
 *       caller drops the page cache first. Prints seconds and MB/s.
 * Chunk bytes are pseudo-random (incompressible), made again to check. */
#include "lib/payload.h"
#include "tests/bench/benchclock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void chunk(char *b, size_t size, unsigned i)
{
	uint64_t w = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;

	for (size_t k = 0; k + 8 <= size; k += 8) {
		w = w * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(b + k, &w, 8);
	}
	memset(b + (size & ~(size_t)7), 'x', size & 7);
}

static void name(char *b, size_t cap, const char *dir, const char *sub, unsigned i)
{
	snprintf(b, cap, "%s%s%s/%07u", dir ? dir : "", dir ? "/" : "", sub, i);
}

static int die(const char *what)
{
	fprintf(stderr, "libbatch: %s: %s\n", what, payload_errmsg());
	return 1;
}

/* N objects SUB/i (i from FIRST) in one put_many. */
static int put_batch(payload_store *st, const char *sub, unsigned first, unsigned n, size_t size,
		     double *secs)
{
	struct payload_put *p = calloc(n, sizeof(*p));
	char *data = malloc((size_t)n * size), (*names)[32] = malloc((size_t)n * 32);
	double t;
	int rc;

	if (!p || !data || !names)
		return fprintf(stderr, "libbatch: out of memory\n"), 1;
	for (unsigned i = 0; i < n; i++) {
		chunk(data + (size_t)i * size, size, first + i);
		name(names[i], 32, NULL, sub, first + i);
		p[i] = (struct payload_put){ .path = names[i], .data = data + (size_t)i * size, .len = size };
	}
	t = now_s();
	rc = payload_put_many(st, p, n);
	*secs = now_s() - t;
	free(p);
	free(data);
	free(names);
	return rc ? die("payload_put_many") : 0;
}

static int make_files(const char *ext, const char *sub, unsigned n, size_t size, double *secs)
{
	char path[4096], *b = malloc(size);
	double t;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", ext, sub);
	mkdir(path, 0755);
	t = now_s();
	for (unsigned i = 0; i < n; i++) {
		name(path, sizeof(path), ext, sub, i);
		chunk(b, size, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, b, size) != (ssize_t)size || close(fd))
			return perror(path), 1;
	}
	if ((fd = open(ext, O_RDONLY | O_DIRECTORY)) < 0 || syncfs(fd) || close(fd))
		return perror(ext), 1;
	*secs = now_s() - t;
	free(b);
	return 0;
}

/* Read back SUB/[0, n) and check every byte (batches of 1000). */
static int check_all(payload_store *st, const char *sub, unsigned n, size_t size)
{
	enum { B = 1000 };
	struct payload_get *r = calloc(B, sizeof(*r));
	char *bufs = malloc((size_t)B * size), *want = malloc(size + 8), (*names)[32] = malloc(B * 32);

	for (unsigned a = 0; a < n; a += B) {
		unsigned m = n - a < B ? n - a : B;
		for (unsigned i = 0; i < m; i++) {
			name(names[i], 32, NULL, sub, a + i);
			r[i] = (struct payload_get){ .path = names[i], .buf = bufs + (size_t)i * size, .cap = size };
		}
		if (payload_get_many(st, r, m))
			return die("check");
		for (unsigned i = 0; i < m; i++) {
			chunk(want, size, a + i);
			if (r[i].len != size || memcmp(r[i].buf, want, size))
				return fprintf(stderr, "libbatch: %s: wrong bytes\n", names[i]), 1;
		}
	}
	free(r);
	free(bufs);
	free(want);
	free(names);
	return 0;
}

static int put_figure(const char *store, const char *ext, unsigned n, size_t size)
{
	payload_store *st;
	double tl, te;

	if (payload_open(store, PAYLOAD_RDWR, &st))
		return die(store);
	if (put_batch(st, "p", 0, n, size, &tl) || check_all(st, "p", n, size))
		return 1;
	payload_close(st);
	if (make_files(ext, "p", n, size, &te))
		return 1;
	printf("put_objects %u\nput_object_bytes %zu\n", n, size);
	printf("put_many_s %.3f\nput_many_objects_per_s %.0f\n", tl, n / tl);
	printf("ext4_create_s %.3f\next4_create_objects_per_s %.0f\n", te, n / te);
	printf("put_many_vs_ext4 %.2f\n", te / tl);
	return 0;
}

static int mkcold(const char *store, const char *ext, unsigned n, size_t size)
{
	unsigned per = (unsigned)((256u << 20) / size);
	payload_store *st;
	double t0 = now_s(), t, sum = 0;

	if (!per)
		per = 1;
	if (payload_open(store, PAYLOAD_RDWR, &st))
		return die(store);
	for (unsigned a = 0; a < n; a += per) {
		if (put_batch(st, "k", a, n - a < per ? n - a : per, size, &t))
			return 1;
		sum += t;
	}
	payload_close(st);
	printf("cold_store_build_s %.1f\ncold_store_put_many_s %.1f\n", now_s() - t0, sum);
	t0 = now_s();
	if (make_files(ext, "k", n, size, &t))
		return 1;
	printf("cold_ext4_build_s %.1f\n", now_s() - t0);
	return 0;
}

/* K distinct random indexes of [0, N): the same every run. The callers
 * clamp K to N (there are no more distinct chunks than that). */
static unsigned *pick(unsigned n, unsigned k)
{
	unsigned *all = malloc(n * sizeof(*all)), x = 4242;

	for (unsigned i = 0; i < n; i++)
		all[i] = i;
	for (unsigned i = 0; i < k && i < n; i++) {
		x = x * 1103515245u + 12345u;
		unsigned j = i + (x >> 4) % (n - i), tmp = all[i];
		all[i] = all[j];
		all[j] = tmp;
	}
	return all;
}

static int cold_lib(const char *store, unsigned n, size_t size, unsigned k, unsigned batch)
{
	unsigned *idx = pick(n, k);
	struct payload_get *r = calloc(batch, sizeof(*r));
	char *bufs = malloc((size_t)batch * size), *want = malloc(size + 8), (*names)[32] = malloc((size_t)batch * 32);
	payload_store *st;
	double t = now_s(), check = 0;

	if (payload_open(store, PAYLOAD_RDONLY, &st))
		return die(store);
	for (unsigned a = 0; a < k; a += batch) {
		unsigned m = k - a < batch ? k - a : batch;
		double c;
		for (unsigned i = 0; i < m; i++) {
			name(names[i], 32, NULL, "k", idx[a + i]);
			r[i] = (struct payload_get){ .path = names[i], .buf = bufs + (size_t)i * size, .cap = size };
		}
		if (payload_get_many(st, r, m))
			return die("payload_get_many");
		c = now_s();
		for (unsigned i = 0; i < m; i++) {
			chunk(want, size, idx[a + i]);
			if (r[i].len != size || memcmp(r[i].buf, want, size))
				return fprintf(stderr, "libbatch: %s: wrong bytes\n", names[i]), 1;
		}
		check += now_s() - c;
	}
	t = now_s() - t;
	payload_close(st);
	printf("cold_lib_s %.3f\ncold_lib_check_s %.3f\ncold_lib_MBps %.1f\n", t, check,
	       (double)k * size / t / 1e6);
	return 0;
}

struct ext_job {
	const char *ext;
	const unsigned *idx;
	unsigned k;
	size_t size;
	unsigned next;     /* atomic */
	int bad;           /* atomic */
};

static void *ext_worker(void *arg)
{
	struct ext_job *j = arg;
	char path[4096], *buf = malloc(j->size + 1), *want = malloc(j->size + 8);

	for (;;) {
		unsigned i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		ssize_t got = 0, r;
		int fd;
		if (i >= j->k)
			break;
		name(path, sizeof(path), j->ext, "k", j->idx[i]);
		if ((fd = open(path, O_RDONLY)) < 0) {
			__atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
			break;
		}
		while ((r = read(fd, buf + got, j->size + 1 - (size_t)got)) > 0)
			got += r;
		close(fd);
		chunk(want, j->size, j->idx[i]);
		if (got != (ssize_t)j->size || memcmp(buf, want, j->size)) {
			__atomic_store_n(&j->bad, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	free(buf);
	free(want);
	return NULL;
}

static int cold_ext(const char *ext, unsigned n, size_t size, unsigned k, unsigned threads)
{
	struct ext_job j = { .ext = ext, .idx = pick(n, k), .k = k, .size = size };
	pthread_t *th = calloc(threads, sizeof(*th));
	double t = now_s();

	for (unsigned i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, ext_worker, &j);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t = now_s() - t;
	if (j.bad)
		return fprintf(stderr, "libbatch: an ext4 chunk was missing or wrong\n"), 1;
	printf("cold_ext4_s %.3f\ncold_ext4_MBps %.1f\n", t, (double)k * size / t / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "put") == 0)
		return put_figure(argv[2], argv[3], (unsigned)atoi(argv[4]), (size_t)atol(argv[5]));
	if (argc == 6 && strcmp(argv[1], "mkcold") == 0)
		return mkcold(argv[2], argv[3], (unsigned)atoi(argv[4]), (size_t)atol(argv[5]));
	if (argc == 8 && strcmp(argv[1], "cold") == 0 && (unsigned)atoi(argv[6]) > (unsigned)atoi(argv[4])) {
		fprintf(stderr, "libbatch: cold: K %s > N %s: there are only N distinct chunks\n", argv[6], argv[4]);
		return 2;
	}
	if (argc == 8 && strcmp(argv[1], "cold") == 0 && strcmp(argv[2], "lib") == 0)
		return cold_lib(argv[3], (unsigned)atoi(argv[4]), (size_t)atol(argv[5]), (unsigned)atoi(argv[6]),
				(unsigned)atoi(argv[7]));
	if (argc == 8 && strcmp(argv[1], "cold") == 0 && strcmp(argv[2], "ext") == 0)
		return cold_ext(argv[3], (unsigned)atoi(argv[4]), (size_t)atol(argv[5]), (unsigned)atoi(argv[6]),
				(unsigned)atoi(argv[7]));
	fprintf(stderr, "usage: libbatch put STORE EXT N SIZE | mkcold STORE EXT N SIZE |\n"
		"       cold lib STORE N SIZE K BATCH | cold ext EXT N SIZE K THREADS\n");
	return 2;
}
