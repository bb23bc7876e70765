/* ctl_bench — `payloadctl bench DIR`: a quick self-benchmark of the store
 * API on this machine, in a scratch store made in DIR (a new or empty
 * directory, removed again unless --keep): the codec on one thread
 * (xxh64, lz4 encode, decode with its checksum), a large sequential write
 * and commit through a write session (fragments cut and compressed on the
 * store's pool, as the daemon does), commits of many small objects, and
 * sequential reads through pver_read with a cold and a warm fragment
 * cache. Prints a table; measures, asserts nothing. */
#include "tools/ctl.h"
#include "cache/codec.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_MIN_S 0.3    /* each codec figure runs at least this long */
#define PIECE (1u << 20)

static const char help[] =
	"usage: payloadctl bench [OPTIONS] DIR\n"
	"\n"
	"Measure the store library on this machine in a scratch store made in DIR\n"
	"(a new or empty directory; removed afterwards unless --keep): checksum,\n"
	"lz4 encode and decode (one thread), a sequential write and commit, commits\n"
	"of small objects, and sequential reads (cold and warm fragment cache).\n"
	"Prints one table; the figures depend on the disk holding DIR and on what\n"
	"else runs.\n"
	"\n"
	"  --size=BYTES     data written and read (K/M/G suffixes; default 64M)\n"
	"  -n, --objects=N  small objects committed (default 2000)\n"
	"  -k, --keep       keep the scratch store\n";

struct bench {
	const char *dir;
	char *data;             /* SIZE bytes of CSV text */
	size_t size;
	uint64_t nsmall;
	unsigned threads;
};

/* CSV text: a header, then rows of numbers and words (lz4 shrinks it to
 * about half, like many real datasets). */
static void gen_csv(char *buf, size_t size)
{
	static const char *const words[] = { "alpha", "bravo", "charlie", "delta", "echo",
					     "foxtrot", "golf", "hotel" };
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t n = (size_t)snprintf(buf, size, "id,ts,name,value,flag\n"), row = 0;

	while (n < size) {
		char line[96];
		int len;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		len = snprintf(line, sizeof(line), "%zu,%" PRIu64 ",%s,%" PRIu64 ".%02u,%c\n", row,
			       (uint64_t)1700000000 + row * 3, words[x & 7], x % 100000,
			       (unsigned)(x >> 40) % 100, x & 8 ? 'y' : 'n');
		row++;
		if (n + (size_t)len > size)
			len = (int)(size - n);
		memcpy(buf + n, line, (size_t)len);
		n += (size_t)len;
	}
	buf[size - 1] = '\n';
}

/* ---- the codec (one thread) ---- */

static double bench_checksum(struct bench *b)
{
	volatile uint64_t sink = 0;
	uint64_t bytes = 0;
	double t0 = ctl_now(), t;

	do {
		for (size_t off = 0; off + PIECE <= b->size; off += PIECE) {
			sink ^= frag_checksum(b->data + off, PIECE);
			bytes += PIECE;
		}
	} while ((t = ctl_now() - t0) < BENCH_MIN_S);
	(void)sink;
	return ctl_rate(bytes, t);
}

/* Encode MB/s into *ENC, decode MB/s into *DEC, stored/raw into *RATIO.
 * @return 0 or -errno. */
static int bench_codec(struct bench *b, double *enc, double *dec, double *ratio)
{
	size_t cap = frag_encode_bound(PIECE), n = b->size / PIECE, len = 0, stored = 0;
	char *img = malloc(cap * (n ? n : 1)), *raw = malloc(PIECE);
	size_t *lens = calloc(n ? n : 1, sizeof(*lens));
	uint64_t bytes = 0;
	double t0, t;
	int rc = 0;

	if (!img || !raw || !lens || !n) {
		rc = n ? -ENOMEM : -EINVAL;
		goto out;
	}
	t0 = ctl_now();
	do {
		for (size_t i = 0; i < n && !rc; i++) {
			rc = frag_encode(i + 1, b->data + i * PIECE, PIECE, 0, img + i * cap, cap, &len, NULL);
			lens[i] = len;
			bytes += PIECE;
		}
	} while (!rc && (t = ctl_now() - t0) < BENCH_MIN_S);
	if (rc)
		goto out;
	*enc = ctl_rate(bytes, t);
	for (size_t i = 0; i < n; i++)
		stored += lens[i];
	*ratio = (double)stored / (double)(n * PIECE);
	bytes = 0;
	t0 = ctl_now();
	do {
		for (size_t i = 0; i < n && !rc; i++) {
			rc = frag_decode(img + i * cap, lens[i], i + 1, raw, PIECE, NULL);
			bytes += PIECE;
		}
	} while (!rc && (t = ctl_now() - t0) < BENCH_MIN_S);
	if (!rc)
		*dec = ctl_rate(bytes, t);
out:
	free(img);
	free(raw);
	free(lens);
	return rc;
}

/* ---- the store ---- */

static int open_store(struct bench *b, int create, struct store **st)
{
	struct store_opts o = { .create = create, .cache_size = b->size + (64u << 20),
				.threads = b->threads };

	return store_open(b->dir, &o, st);
}

/* Write B->data as one object NAME in the root and commit it. @return 0 and
 * *INO, or -errno. */
static int write_object(struct bench *b, struct store *st, const char *name, uint64_t *ino)
{
	struct idx_inode in;
	struct pver *pv;
	struct wsess *ws;
	int rc = store_mknod(st, IDX_ROOT_INO, name, S_IFREG | 0644, 0, getuid(), getgid(), &in);

	if (rc)
		return rc;
	if ((rc = store_pver_get(st, in.ino, &pv)))
		return rc;
	rc = store_wsess_begin(st, pv, NULL, 1, &ws);
	pver_put(pv);
	for (size_t off = 0; !rc && off < b->size; off += PIECE)
		rc = wsess_write(ws, b->data + off, b->size - off < PIECE ? b->size - off : PIECE, off);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	*ino = in.ino;
	return rc;
}

static int small_objects(struct bench *b, struct store *st)
{
	struct idx_inode dir, in;
	int rc = store_mkdir(st, IDX_ROOT_INO, "small", 0755, getuid(), getgid(), &dir);

	for (uint64_t i = 0; i < b->nsmall && !rc; i++) {
		char name[32];
		struct pver *pv;
		struct wsess *ws;
		snprintf(name, sizeof(name), "o%06" PRIu64 ".csv", i);
		if ((rc = store_mknod(st, dir.ino, name, S_IFREG | 0644, 0, getuid(), getgid(), &in)))
			break;
		if ((rc = store_pver_get(st, in.ino, &pv)))
			break;
		rc = store_wsess_begin(st, pv, NULL, 1, &ws);
		pver_put(pv);
		if (!rc)
			rc = wsess_write(ws, b->data + (i * 211) % (b->size - 256), 200, 0);
		if (!rc)
			rc = wsess_commit(ws);
		wsess_free(ws);
	}
	return rc;
}

/* Read object INO sequentially. @return MB/s, or a negative -errno. */
static double read_object(struct store *st, uint64_t ino)
{
	struct readahead ra = { 0 };
	struct pver *pv;
	char *buf = malloc(PIECE);
	uint64_t off = 0, size;
	double t0 = ctl_now();
	int rc = buf ? store_pver_get(st, ino, &pv) : -ENOMEM;

	if (rc) {
		free(buf);
		return rc;
	}
	size = pver_inode(pv)->size;
	while (off < size) {
		size_t want = size - off < PIECE ? (size_t)(size - off) : PIECE;
		ssize_t n;
		pver_readahead(pv, &ra, off, want, size);
		n = pver_read(pv, buf, want, off);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			break;
		}
		off += (uint64_t)n;
	}
	pver_put(pv);
	free(buf);
	return rc ? rc : ctl_rate(size, ctl_now() - t0);
}

static void row(const char *what, double v, const char *unit, const char *note)
{
	printf("  %-38s %10.1f %-9s %s\n", what, v, unit, note ? note : "");
}

static int run(struct bench *b)
{
	struct store *st = NULL;
	double enc = 0, dec = 0, ratio = 0, t0, v;
	uint64_t ino = 0;
	char note[64];
	int rc;

	printf("payloadctl bench: %s, %zu MiB of CSV text, %u worker thread%s, 1 MiB fragments\n",
	       b->dir, b->size >> 20, b->threads, b->threads == 1 ? "" : "s");
	printf("  %-38s %10s %-9s\n", "what", "figure", "unit");
	row("xxh64 checksum (1 thread)", bench_checksum(b), "MB/s", NULL);
	if ((rc = bench_codec(b, &enc, &dec, &ratio)))
		return rc;
	snprintf(note, sizeof(note), "stored/raw %.2f", ratio);
	row("lz4 encode + checksum (1 thread)", enc, "MB/s", note);
	row("decode + verify (1 thread)", dec, "MB/s", NULL);
	fflush(stdout);

	if ((rc = open_store(b, 1, &st)))
		return rc;
	t0 = ctl_now();
	rc = write_object(b, st, "bench.csv", &ino);
	v = ctl_rate(b->size, ctl_now() - t0);
	if (!rc)
		row("write + commit, one object (pool)", v, "MB/s", "no flush");
	t0 = ctl_now();
	if (!rc)
		rc = store_sync(st);
	if (!rc)
		row("store_sync after it (index flush)", (ctl_now() - t0) * 1e3, "ms", NULL);
	fflush(stdout);
	t0 = ctl_now();
	if (!rc)
		rc = small_objects(b, st);
	if (!rc) {
		snprintf(note, sizeof(note), "%" PRIu64 " objects of 200 bytes", b->nsmall);
		row("create + commit, small objects", (double)b->nsmall / (ctl_now() - t0), "objects/s", note);
	}
	store_close(st);
	st = NULL;
	fflush(stdout);
	if (!rc)
		rc = open_store(b, 0, &st);   /* a fresh fragment cache */
	if (!rc && (v = read_object(st, ino)) >= 0)
		row("sequential read, cold fragment cache", v, "MB/s", "images in the page cache");
	if (!rc && v >= 0 && (v = read_object(st, ino)) >= 0)
		row("sequential read, warm fragment cache", v, "MB/s", NULL);
	if (!rc && v < 0)
		rc = (int)v;
	store_close(st);
	return rc;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

/* Remove the scratch store (and DIR when it was made here). */
static void cleanup(const char *dir, int made)
{
	static const char *const subs[] = { "index", "fragments", "staging" };
	char path[4200];

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (made)
		rmdir(dir);
}

int ctl_bench(int argc, char **argv)
{
	struct bench b = { .size = 64u << 20, .nsmall = 2000 };
	const char *size = NULL, *objs = NULL;
	int keep = 0, n, rc, made = 0;
	struct ctl_opt opts[] = {
		{ 0, "size", NULL, &size },
		{ 'n', "objects", NULL, &objs },
		{ 'k', "keep", &keep, NULL },
	};
	uint64_t v;
	struct stat sb;
	char probe[4200];

	rc = ctl_parse("bench", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), help, &n);
	if (rc >= 0)
		return rc;
	if (n != 2)
		return ctl_usage("bench", n < 2 ? "missing DIR" : "too many arguments");
	if (size) {
		if (ctl_parse_size(size, 16ull << 30, 0, &v) || v < PIECE)
			return ctl_usage("bench", "bad --size '%s' (1M to 16G)", size);
		b.size = (size_t)v;
	}
	if (objs && ctl_parse_size(objs, 10000000, 0, &b.nsmall))
		return ctl_usage("bench", "bad --objects '%s' (1 to 10000000)", objs);
	b.dir = argv[1];
	snprintf(probe, sizeof(probe), "%s/index", b.dir);
	if (stat(probe, &sb) == 0) {
		ctl_err(b.dir, "already a store: bench needs a new or empty directory");
		return CTL_FAIL;
	}
	if (mkdir(b.dir, 0700) == 0)
		made = 1;
	else if (errno != EEXIST) {
		ctl_err(b.dir, "cannot create directory: %s", strerror(errno));
		return CTL_FAIL;
	}
	b.threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (!b.threads)
		b.threads = 1;
	if (!(b.data = malloc(b.size))) {
		ctl_err("bench", "%s", strerror(ENOMEM));
		rc = -ENOMEM;
	} else {
		gen_csv(b.data, b.size);
		rc = run(&b);
		if (rc)
			ctl_err(b.dir, "%s", store_strerror(rc));
	}
	free(b.data);
	if (keep)
		printf("kept the scratch store in %s\n", b.dir);
	else if (rc != -ENOTEMPTY)
		cleanup(b.dir, made);
	fflush(stdout);
	return rc ? CTL_FAIL : CTL_OK;
}
