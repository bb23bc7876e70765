/* libget — the library's figure of `make bench` (tests/bench/libget.sh):
 * batched gets of small chunks through libpayload against open + read +
 * close of the same chunks as files, through a payloadfs mount and on
 * ext4.
 *
 *   libget put STORE N SIZE       N chunks c/NNNNNNN of SIZE bytes (one
 *                                 payload_put_many per 10,000) into STORE
 *   libget files DIR N SIZE       the same chunks as files in DIR/c/
 *   libget read STORE MNT EXT N SIZE BATCH REPS
 *                                 every chunk, each way, REPS times after
 *                                 one warm-up pass (so every way reads
 *                                 cached chunks), in random order; the
 *                                 library in batches of BATCH; every byte
 *                                 checked. Prints chunks/s per way (best
 *                                 pass) and the ratios, one "key value"
 *                                 line each.
 *   libget lib STORE N SIZE BATCH REPS
 *                                 the library's way alone (for perf). */
#include "lib/payload.h"
#include "tests/bench/benchclock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Chunk I's bytes: 64-bit words that differ per chunk and per place (cheap
 * to make again for checking, so checking costs every way the same). */
static void chunk(char *b, size_t size, unsigned i)
{
	uint64_t w = (uint64_t)i * 0x9E3779B97F4A7C15ull;

	for (size_t k = 0; k + 8 <= size; k += 8) {
		w = w * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(b + k, &w, 8);
	}
	memset(b + (size & ~(size_t)7), 'x', size & 7);
}

static void name(char *b, size_t cap, const char *dir, unsigned i)
{
	snprintf(b, cap, "%s%sc/%07u", dir ? dir : "", dir ? "/" : "", i);
}

static int put(const char *store, unsigned n, size_t size)
{
	payload_store *st;
	enum { B = 10000 };
	struct payload_put *p = calloc(B, sizeof(*p));
	char *data = malloc((size_t)B * size), (*names)[32] = malloc(B * 32);
	if (payload_open(store, PAYLOAD_RDWR, &st))
		return fprintf(stderr, "libget: %s\n", payload_errmsg()), 1;
	for (unsigned a = 0; a < n; a += B) {
		unsigned m = n - a < B ? n - a : B;
		for (unsigned i = 0; i < m; i++) {
			chunk(data + (size_t)i * size, size, a + i);
			name(names[i], 32, NULL, a + i);
			p[i] = (struct payload_put){ .path = names[i], .data = data + (size_t)i * size, .len = size };
		}
		if (payload_put_many(st, p, m))
			return fprintf(stderr, "libget: %s\n", payload_errmsg()), 1;
	}
	payload_close(st);
	free(p);
	free(data);
	free(names);
	return 0;
}

static int files(const char *dir, unsigned n, size_t size)
{
	char path[4096], *b = malloc(size);

	snprintf(path, sizeof(path), "%s/c", dir);
	mkdir(path, 0755);
	for (unsigned i = 0; i < n; i++) {
		int fd;
		name(path, sizeof(path), dir, i);
		chunk(b, size, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, b, size) != (ssize_t)size || close(fd))
			return perror(path), 1;
	}
	free(b);
	return 0;
}

/* One pass of open+read+close over DIR's chunks in ORDER. @return 0 or 1. */
static int pass_files(const char *dir, const unsigned *order, unsigned n, size_t size, char *buf, char *want)
{
	char path[4096];

	for (unsigned k = 0; k < n; k++) {
		int fd;
		name(path, sizeof(path), dir, order[k]);
		fd = open(path, O_RDONLY);
		if (fd < 0 || read(fd, buf, size + 1) != (ssize_t)size || close(fd))
			return perror(path), 1;
		chunk(want, size, order[k]);
		if (memcmp(buf, want, size))
			return fprintf(stderr, "libget: %s: wrong bytes\n", path), 1;
	}
	return 0;
}

static int pass_lib(payload_store *st, const unsigned *order, unsigned n, size_t size, unsigned batch,
		    char *bufs, char (*names)[32], struct payload_get *r, char *want)
{
	for (unsigned a = 0; a < n; a += batch) {
		unsigned m = n - a < batch ? n - a : batch;
		for (unsigned i = 0; i < m; i++) {
			name(names[i], 32, NULL, order[a + i]);
			r[i] = (struct payload_get){ .path = names[i], .buf = bufs + (size_t)i * size, .cap = size };
		}
		if (payload_get_many(st, r, m))
			return fprintf(stderr, "libget: %s\n", payload_errmsg()), 1;
		for (unsigned i = 0; i < m; i++) {
			chunk(want, size, order[a + i]);
			if (r[i].len != size || memcmp(r[i].buf, want, size))
				return fprintf(stderr, "libget: %s: wrong bytes\n", names[i]), 1;
		}
	}
	return 0;
}

static int readall(const char *store, const char *mnt, const char *ext, unsigned n, size_t size,
		   unsigned batch, int reps)
{
	unsigned *order = malloc(n * sizeof(*order));
	char *buf = malloc(size + 1), *want = malloc(size + 8), *bufs = malloc((size_t)batch * size);
	char (*names)[32] = malloc((size_t)batch * 32);
	struct payload_get *r = calloc(batch, sizeof(*r));
	double best[3] = { 1e30, 1e30, 1e30 }, t;
	payload_store *st;
	unsigned x = 12345;

	for (unsigned i = 0; i < n; i++)
		order[i] = i;
	for (unsigned i = n - 1; i > 0; i--) {
		x = x * 1103515245u + 12345u;
		unsigned j = (x >> 8) % (i + 1), tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	if (payload_open(store, PAYLOAD_RDONLY, &st))
		return fprintf(stderr, "libget: %s\n", payload_errmsg()), 1;
	for (int rep = -1; rep < reps; rep++) {      /* -1: the warm-up pass */
		t = now_s();
		if (pass_lib(st, order, n, size, batch, bufs, names, r, want))
			return 1;
		t = now_s() - t;
		if (rep >= 0 && t < best[0])
			best[0] = t;
		if (!mnt)
			continue;
		t = now_s();
		if (pass_files(mnt, order, n, size, buf, want))
			return 1;
		t = now_s() - t;
		if (rep >= 0 && t < best[1])
			best[1] = t;
		t = now_s();
		if (pass_files(ext, order, n, size, buf, want))
			return 1;
		t = now_s() - t;
		if (rep >= 0 && t < best[2])
			best[2] = t;
	}
	payload_close(st);
	printf("chunks %u\nchunk_bytes %zu\nbatch %u\n", n, size, batch);
	if (!mnt) {
		printf("lib_chunks_per_s %.0f\n", n / best[0]);
		goto out;
	}
	printf("lib_chunks_per_s %.0f\nmount_chunks_per_s %.0f\next4_chunks_per_s %.0f\n",
	       n / best[0], n / best[1], n / best[2]);
	printf("lib_vs_mount %.2f\nlib_vs_ext4 %.2f\n", best[1] / best[0], best[2] / best[0]);
out:
	free(order);
	free(buf);
	free(want);
	free(bufs);
	free(names);
	free(r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "put") == 0)
		return put(argv[2], (unsigned)atoi(argv[3]), (size_t)atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "files") == 0)
		return files(argv[2], (unsigned)atoi(argv[3]), (size_t)atoi(argv[4]));
	if (argc == 9 && strcmp(argv[1], "read") == 0)
		return readall(argv[2], argv[3], argv[4], (unsigned)atoi(argv[5]), (size_t)atoi(argv[6]),
			       (unsigned)atoi(argv[7]), atoi(argv[8]));
	if (argc == 7 && strcmp(argv[1], "lib") == 0)
		return readall(argv[2], NULL, NULL, (unsigned)atoi(argv[3]), (size_t)atoi(argv[4]),
			       (unsigned)atoi(argv[5]), atoi(argv[6]));
	fprintf(stderr, "usage: libget put STORE N SIZE | files DIR N SIZE | "
		"read STORE MNT EXT N SIZE BATCH REPS | lib STORE N SIZE BATCH REPS\n");
	return 2;
}
