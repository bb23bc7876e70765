/* test_libpayload — libpayload (lib/payload.h) through its shared library,
 * against a store this process also holds read-write through the core, as
 * the daemon would (the writer). Expected bytes are built here from the
 * content written, not read back through the core.
 *
 * Proves payload.c's invariants: (1)/(3) batched get of whole objects,
 * byte ranges, row ranges (@rows semantics, also as path views and
 * @part), by path and by id, over objects of many fragments; (2) a
 * read-only handle sees a commit made after it opened, and read-write is
 * refused while the store is held; (4) per-request errors leave the other
 * requests served and nothing copied into a short buffer; pinned versions
 * and snapshots read the old bytes; (5) threads share one handle; (6)
 * put_many: one txn, all or none, large members cut like a commit, a
 * storage=memory directory refused (EINVAL, library and core), a member
 * whose format changed between its cut and the txn refused (EBUSY, core:
 * ns.c (9)), no image left behind by a failed batch; (7) inline objects
 * served from one read view per batch, and commits after a batch seen by
 * the next. */
#include "tests/unit/tap.h"
#include "tests/unit/tstore.h"
#include "lib/payload.h"
#include "index/store.h"
#include "index/store_int.h"
#include "cache/fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROWS 3000
static char dir[256];
static struct store *W;        /* the writer */
static char *csv;              /* e.csv: "id,val\n" + ROWS rows */
static size_t csv_len;
static size_t row_at[ROWS + 2]; /* byte offset of data row i (row_at[ROWS] = end) */
static char bin[50000];
static uint64_t bin_ino, csv_ino;
static struct idx_inode mem;    /* directory "mem", storage=memory */
static long images(void);

static uint64_t put(const char *name, const void *data, size_t len)
{
	uint64_t ino;
	int rc = tst_obj(W, name, &ino);

	if (!rc)
		rc = tst_put_data(W, ino, data, len);
	if (rc) {
		printf("Bail out! writing %s: %d\n", name, rc);
		exit(1);
	}
	return ino;
}

static void setup(void)
{
	struct store_opts o = { .fragment_size = 4096, .create = 1 };
	char tmpl[] = "/tmp/test_libpayload.XXXXXX";
	size_t cap = 64 + ROWS * 32, n;
	int rc;

	if (!mkdtemp(tmpl)) {
		printf("Bail out! mkdtemp\n");
		exit(1);
	}
	snprintf(dir, sizeof(dir), "%s/store", tmpl);
	mkdir(dir, 0700);
	rc = store_open(dir, &o, &W);
	if (rc) {
		printf("Bail out! store_open %s: %d\n", dir, rc);
		exit(1);
	}
	csv = malloc(cap);
	n = (size_t)sprintf(csv, "id,val\n");
	for (int i = 0; i < ROWS; i++) {
		row_at[i] = n;
		n += (size_t)sprintf(csv + n, "%d,%d\n", i, i * 7919 % 100003);
	}
	row_at[ROWS] = n;
	csv_len = n;
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (char)(i * 2654435761u >> 13);
	csv_ino = put("e.csv", csv, csv_len);
	bin_ino = put("b.bin", bin, sizeof(bin));
	rc = store_mkdir(W, IDX_ROOT_INO, "d", 0755, 0, 0, NULL);
	if (!rc)    /* a storage=memory directory: put_many refuses it (test_put) */
		rc = store_mkdir(W, IDX_ROOT_INO, "mem", 0755, 0, 0, &mem);
	if (!rc)
		rc = store_setxattr(W, mem.ino, "user.payload.storage", "memory", 6, 0);
	if (rc) {
		printf("Bail out! mkdir: %d\n", rc);
		exit(1);
	}
}

/* header + data rows [a, b) of e.csv */
static int rows_eq(const struct payload_get *r, size_t a, size_t b)
{
	size_t h = row_at[0], body = row_at[b] - row_at[a];

	return r->result == 0 && r->len == h + body && memcmp(r->buf, csv, h) == 0 &&
	       memcmp((char *)r->buf + h, csv + row_at[a], body) == 0;
}

static void test_batch(payload_store *ps)
{
	static char b[8][200000];
	struct payload_get r[8];
	char idpath[64];
	int rc;

	memset(r, 0, sizeof(r));
	snprintf(idpath, sizeof(idpath), ".by-id/%llu", (unsigned long long)csv_ino);
	r[0] = (struct payload_get){ .path = "b.bin" };
	r[1] = (struct payload_get){ .path = "b.bin", .range = PAYLOAD_BYTES, .start = 12345, .stop = 30001 };
	r[2] = (struct payload_get){ .path = "e.csv", .range = PAYLOAD_ROWS, .start = 1000, .stop = 2500 };
	r[3] = (struct payload_get){ .id = bin_ino };
	r[4] = (struct payload_get){ .path = "e.csv@rows=-10:" };
	r[5] = (struct payload_get){ .path = "e.csv@part=2/3" };
	r[6] = (struct payload_get){ .path = idpath, .range = PAYLOAD_ROWS, .start = -5, .stop = PAYLOAD_END };
	r[7] = (struct payload_get){ .path = "b.bin", .range = PAYLOAD_BYTES, .start = 49990, .stop = PAYLOAD_END };
	for (int i = 0; i < 8; i++) {
		r[i].buf = b[i];
		r[i].cap = sizeof(b[i]);
	}
	rc = payload_get_many(ps, r, 8);
	CHECK_EQ(rc, 0, "a batch of 8 requests: none failed (%s)", payload_errmsg());
	CHECK(r[0].len == sizeof(bin) && memcmp(b[0], bin, sizeof(bin)) == 0, "whole object by path");
	CHECK(r[1].len == 30001 - 12345 && memcmp(b[1], bin + 12345, r[1].len) == 0,
	      "byte range [12345, 30001)");
	CHECK(rows_eq(&r[2], 1000, 2500), "rows 1000:2500 carry the header, then those rows");
	CHECK(r[3].len == sizeof(bin) && memcmp(b[3], bin, sizeof(bin)) == 0, "whole object by id");
	CHECK(rows_eq(&r[4], ROWS - 10, ROWS), "path view @rows=-10:");
	CHECK(rows_eq(&r[5], 2 * ROWS / 3, ROWS), "path view @part=2/3");
	CHECK(rows_eq(&r[6], ROWS - 5, ROWS), ".by-id path with rows -5:");
	CHECK(r[7].len == 10 && memcmp(b[7], bin + 49990, 10) == 0, "byte range to the end is clipped");
	CHECK(r[2].size == r[2].len && r[2].obj_version > 0, "size and version are reported");
}

static void test_sizes(payload_store *ps)
{
	struct payload_get r[2] = {
		{ .path = "e.csv", .range = PAYLOAD_ROWS, .start = 0, .stop = 3 },
		{ .path = "b.bin" },
	};
	char small[100];
	int rc;

	rc = payload_get_many(ps, r, 2);
	CHECK(rc == 0 && r[0].size == row_at[3] && r[0].len == 0 && r[1].size == sizeof(bin),
	      "a NULL buffer asks for the sizes only");
	memset(small, 'Z', sizeof(small));
	r[1].buf = small;
	r[1].cap = sizeof(small);
	r[0].buf = malloc(r[0].size);
	r[0].cap = r[0].size;
	rc = payload_get_many(ps, r, 2);
	CHECK_EQ(rc, 1, "one of two requests failed");
	CHECK_EQ(r[1].result, -ERANGE, "a short buffer is ERANGE");
	CHECK(r[1].size == sizeof(bin) && r[1].len == 0 && small[0] == 'Z' && small[99] == 'Z',
	      "... with the size, and nothing copied");
	CHECK(rows_eq(&r[0], 0, 3), "the other request of the batch was served");
	CHECK(strstr(payload_errmsg(), "request 1 (b.bin)") != NULL, "the message names the request: %s",
	      payload_errmsg());
	free(r[0].buf);
}

static void test_errors(payload_store *ps)
{
	char buf[64];
	struct payload_get r[] = {
		{ .path = "nope" },
		{ .path = "d" },
		{ .id = 1 },
		{ .id = 999999 },
		{ .path = "b.bin", .range = PAYLOAD_BYTES, .start = -1, .stop = 5 },
		{ .path = "b.bin", .range = PAYLOAD_BYTES, .start = 9, .stop = 5 },
		{ .path = "e.csv@rows=1:2", .range = PAYLOAD_ROWS, .start = 0, .stop = 1 },
		{ .path = "b.bin", .range = 7 },
		{ .path = "e.csv@part=1" },
		{ .path = "b.bin/x" },
		{ .path = "b.bin", .cap = 5 },
	};
	int want[] = { -ENOENT, -EISDIR, -ENOENT, -ENOENT, -EINVAL, -EINVAL, -EINVAL, -EINVAL,
		       -EISDIR, -ENOTDIR, -EINVAL };
	size_t n = sizeof(r) / sizeof(r[0]);
	int rc = payload_get_many(ps, r, n);
	struct payload_stat sb;

	CHECK_EQ(rc, (int)n, "every bad request failed");
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(r[i].result, want[i], "bad request %zu: %s", i, payload_strerror(want[i]));
	CHECK_EQ(payload_get_many(NULL, r, 1), -EINVAL, "NULL store");
	CHECK_EQ(payload_get_many(ps, NULL, 1), -EINVAL, "NULL requests");
	CHECK_EQ(payload_get_many(ps, NULL, 0), 0, "an empty batch");
	CHECK_EQ(payload_stat(ps, "d", &sb), -EISDIR, "stat of a directory");
	CHECK_EQ(payload_stat(ps, "e.csv@rows=1:2", &sb), -EINVAL, "stat of a view");
	CHECK(strstr(payload_errmsg(), "payload_stat e.csv@rows=1:2") != NULL, "message: %s",
	      payload_errmsg());
	CHECK(payload_stat(ps, "e.csv", &sb) == 0 && sb.size == csv_len && sb.rows == ROWS + 1 &&
	      sb.header_rows == 1 && sb.id == csv_ino, "stat of e.csv");
	(void)buf;
}

static void test_open_errors(void)
{
	payload_store *ps = (payload_store *)1;
	char missing[300];

	CHECK_EQ(payload_open(NULL, PAYLOAD_RDONLY, &ps), -EINVAL, "open NULL dir");
	CHECK(ps == NULL, "... sets *out to NULL");
	CHECK_EQ(payload_open(dir, 5, &ps), -EINVAL, "open with a bad mode");
	snprintf(missing, sizeof(missing), "%s.missing", dir);
	CHECK_EQ(payload_open(missing, PAYLOAD_RDONLY, &ps), -ENOENT, "open of no store");
	CHECK(strstr(payload_errmsg(), missing) != NULL, "the message names the directory");
	CHECK_EQ(payload_open(dir, PAYLOAD_RDWR, &ps), -EBUSY, "read-write refused while held");
	CHECK(strstr(payload_errmsg(), "read-write") && strstr(payload_errmsg(), "in use"),
	      "... saying why: %s", payload_errmsg());
	CHECK(strcmp(payload_strerror(-EBADMSG), "Bad message") == 0, "other codes: their errno text");
	CHECK(payload_strerror(-123456) != NULL, "an unknown code has a text");
	payload_close(NULL);
}

static void test_versions(payload_store *ps)
{
	static char b1[60000], b2[60000];
	struct payload_get r[2];
	payload_version *v = NULL;
	struct payload_stat s0, s1;
	struct idx_snap snap;
	char newbin[3000];
	int rc;

	memset(newbin, 'n', sizeof(newbin));
	rc = payload_version_get(ps, "b.bin", &v);
	CHECK(rc == 0 && v, "pin b.bin's version");
	CHECK(store_snap_create(W, "s1", &snap) == 0, "the writer takes snapshot s1");
	put("b.bin", newbin, sizeof(newbin));       /* a commit after the handle opened */
	r[0] = (struct payload_get){ .path = "b.bin", .buf = b1, .cap = sizeof(b1) };
	r[1] = (struct payload_get){ .version = v, .buf = b2, .cap = sizeof(b2) };
	rc = payload_get_many(ps, r, 2);
	CHECK_EQ(rc, 0, "read current and pinned");
	CHECK(r[0].len == sizeof(newbin) && memcmp(b1, newbin, sizeof(newbin)) == 0,
	      "the read-only handle sees the commit made after it opened");
	CHECK(r[1].len == sizeof(bin) && memcmp(b2, bin, sizeof(bin)) == 0,
	      "the pinned version still reads the old bytes");
	CHECK(r[1].obj_version < r[0].obj_version, "... an older version");
	CHECK(payload_version_stat(v, &s0) == 0 && s0.size == sizeof(bin), "version_stat: old size");
	CHECK(payload_stat(ps, "b.bin", &s1) == 0 && s1.version > s0.version && s1.size == sizeof(newbin),
	      "stat: the new version");
	payload_version_release(v);
	r[0] = (struct payload_get){ .path = ".snapshots/s1/b.bin", .buf = b1, .cap = sizeof(b1) };
	rc = payload_get_many(ps, r, 1);
	CHECK(rc == 0 && r[0].len == sizeof(bin) && memcmp(b1, bin, sizeof(bin)) == 0,
	      "read as of snapshot s1");
	put("b.bin", bin, sizeof(bin));
	payload_version_release(NULL);
	CHECK_EQ(payload_version_get(ps, "nope", &v), -ENOENT, "pin a missing object");
	CHECK(v == NULL, "... *out NULL");
}

struct thr { payload_store *ps; int bad; int seed; };

static void *reader(void *arg)
{
	struct thr *t = arg;
	char *buf = malloc(8 * 8192);
	unsigned x = (unsigned)t->seed;

	for (int it = 0; it < 200; it++) {
		struct payload_get r[8];
		for (int i = 0; i < 8; i++) {
			x = x * 1103515245u + 12345u;
			int64_t off = (int64_t)(x >> 8) % (int64_t)(sizeof(bin) - 8192);
			r[i] = (struct payload_get){ .path = "b.bin", .range = PAYLOAD_BYTES, .start = off,
						     .stop = off + 4096, .buf = buf + i * 8192, .cap = 8192 };
		}
		if (payload_get_many(t->ps, r, 8))
			t->bad++;
		for (int i = 0; i < 8; i++)
			if (r[i].len != 4096 || memcmp(buf + i * 8192, bin + r[i].start, 4096))
				t->bad++;
	}
	free(buf);
	return NULL;
}

/* A small object ("NAME" in directory DIR of the root, made if missing)
 * holding DATA, written by W; its inode in *IN. */
static void put_small(const char *dirname, const char *name, const char *data, struct idx_inode *in)
{
	struct idx_inode d;
	int rc = store_lookup(W, IDX_ROOT_INO, dirname, &d);

	if (rc == -ENOENT)
		rc = store_mkdir(W, IDX_ROOT_INO, dirname, 0755, 0, 0, &d);
	if (!rc && (rc = store_lookup(W, d.ino, name, in)) == -ENOENT)
		rc = store_mknod(W, d.ino, name, S_IFREG | 0644, 0, 0, 0, in);
	if (!rc)
		rc = tst_put_data(W, in->ino, data, strlen(data));
	if (!rc)
		rc = store_getattr(W, in->ino, in);
	if (rc) {
		printf("Bail out! writing %s/%s: %d\n", dirname, name, rc);
		exit(1);
	}
}

/* Invariant (7): inline objects served from one read view per batch —
 * paths of one directory after another, a directory of the same name
 * length, by id, byte ranges, size queries, short buffers; rows still
 * through the version; and a commit made after a batch is seen by the
 * next one. */
static void test_inline(payload_store *ps)
{
	struct idx_inode a, b, c, e;
	struct payload_get r[10];
	char buf[10][64], idpath[64];
	int rc;

	put_small("s", "a.txt", "alpha\nbeta\ngamma\n", &a);
	put_small("s", "b.txt", "0123456789abcdefghij", &b);
	put_small("t", "b.txt", "another directory, same name", &c);
	put_small("s", "e.txt", "", &e);
	CHECK((a.flags & INODE_F_INLINE) && (b.flags & INODE_F_INLINE) && (c.flags & INODE_F_INLINE),
	      "the small objects are inline (in the index)");
	snprintf(idpath, sizeof(idpath), ".by-id/%llu", (unsigned long long)b.ino);
	memset(r, 0, sizeof(r));
	memset(buf, '#', sizeof(buf));
	r[0] = (struct payload_get){ .path = "s/a.txt" };
	r[1] = (struct payload_get){ .path = "s/b.txt" };
	r[2] = (struct payload_get){ .path = "t/b.txt" };
	r[3] = (struct payload_get){ .path = "s/b.txt", .range = PAYLOAD_BYTES, .start = 10, .stop = 14 };
	r[4] = (struct payload_get){ .id = c.ino };
	r[5] = (struct payload_get){ .path = "s/a.txt", .range = PAYLOAD_ROWS, .start = 1, .stop = 2 };
	r[6] = (struct payload_get){ .path = "s/../s/b.txt", .range = PAYLOAD_BYTES, .start = 18,
				     .stop = PAYLOAD_END };
	r[7] = (struct payload_get){ .path = "s/nope.txt" };
	r[8] = (struct payload_get){ .path = idpath };
	r[9] = (struct payload_get){ .path = "s/e.txt" };
	for (int i = 0; i < 10; i++) {
		r[i].buf = buf[i];
		r[i].cap = sizeof(buf[i]);
	}
	r[1].cap = 5;           /* too short: -ERANGE, nothing copied */
	rc = payload_get_many(ps, r, 10);
	CHECK_EQ(rc, 2, "a batch of 10 over inline objects: the short buffer and the missing name fail");
	CHECK(r[0].result == 0 && r[0].len == 17 && memcmp(buf[0], "alpha\nbeta\ngamma\n", 17) == 0 &&
	      r[0].obj_version == a.version, "whole inline object, and its version");
	CHECK(r[1].result == -ERANGE && r[1].size == 20 && r[1].len == 0 && buf[1][0] == '#',
	      "a short buffer: -ERANGE, the size, nothing copied");
	CHECK(r[2].result == 0 && r[2].len == 28 && memcmp(buf[2], "another directory, same name", 28) == 0,
	      "the same name in another directory of the same length: that directory's object");
	CHECK(r[3].result == 0 && r[3].len == 4 && memcmp(buf[3], "abcd", 4) == 0 && buf[3][4] == '#',
	      "byte range [10, 14) of an inline object");
	CHECK(r[4].result == 0 && r[4].len == 28 && memcmp(buf[4], "another", 7) == 0, "an inline object by id");
	CHECK(r[5].result == 0 && r[5].len == 5 && memcmp(buf[5], "beta\n", 5) == 0, "rows 1:2 of an inline object");
	CHECK(r[6].result == 0 && r[6].len == 2 && memcmp(buf[6], "ij", 2) == 0, "s/../s/b.txt, bytes 18: to the end");
	CHECK(r[7].result == -ENOENT && r[7].len == 0, "a missing name in a known directory: -ENOENT");
	CHECK(r[8].result == 0 && r[8].len == 20 && memcmp(buf[8], "0123456789abcdefghij", 20) == 0,
	      ".by-id path of an inline object");
	CHECK(r[9].result == 0 && r[9].len == 0 && r[9].size == 0, "an empty object");
	/* size queries: no buffer */
	r[0] = (struct payload_get){ .path = "t/b.txt" };
	rc = payload_get_many(ps, r, 1);
	CHECK(rc == 0 && r[0].size == 28 && r[0].len == 0, "a size query of an inline object");
	/* a commit after a batch: the next batch sees it (payload.c (2), (7)) */
	put_small("s", "b.txt", "rewritten", &b);
	put_small("t", "b.txt", "grown beyond what it held before", &c);
	memset(r, 0, 2 * sizeof(r[0]));
	r[0] = (struct payload_get){ .path = "s/b.txt", .buf = buf[0], .cap = sizeof(buf[0]) };
	r[1] = (struct payload_get){ .path = "t/b.txt", .buf = buf[1], .cap = sizeof(buf[1]) };
	rc = payload_get_many(ps, r, 2);
	CHECK(rc == 0 && r[0].len == 9 && memcmp(buf[0], "rewritten", 9) == 0 && r[0].obj_version == b.version &&
	      r[1].len == 32 && memcmp(buf[1], "grown beyond what it held before", 32) == 0,
	      "commits made after the last batch are seen by the next one (%s)", payload_errmsg());
}

/* index/pver.c (8): a cached current version (not inline) is handed out
 * without a txn while nothing commits, and a commit made by another
 * writer (here W, another environment of the store) is seen at the next
 * call. */
static void test_cached_fresh(payload_store *ps)
{
	static char want[3][20000], got[20000];
	struct payload_get r;
	struct idx_inode in;
	int ok = 1;

	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < sizeof(want[k]); i++)
			want[k][i] = (char)('a' + (i * 7 + (size_t)k * 3) % 26);
	for (int k = 0; k < 3; k++) {
		put_small("big", "f.bin", "", &in);
		if (tst_put_data(W, in.ino, want[k], sizeof(want[k])) || store_getattr(W, in.ino, &in) ||
		    (in.flags & INODE_F_INLINE))
			ok = 0;
		for (int rep = 0; rep < 3; rep++) {   /* the first loads it, the others hit */
			r = (struct payload_get){ .path = "big/f.bin", .buf = got, .cap = sizeof(got) };
			if (payload_get_many(ps, &r, 1) || r.len != sizeof(got) ||
			    memcmp(got, want[k], sizeof(got)) || r.obj_version != in.version)
				ok = 0;
		}
	}
	CHECK(ok, "a cached version of 20000 bytes: every rewrite by the other writer is seen at the next call");
}

static void test_threads(payload_store *ps)
{
	pthread_t th[4];
	struct thr t[4];
	int bad = 0;

	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ .ps = ps, .seed = i + 1 };
		pthread_create(&th[i], NULL, reader, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	CHECK_EQ(bad, 0, "4 threads x 200 batches of 8 ranges on one handle: all bytes right");
}


/* get PATH whole into a malloc'd buffer: its result, *LEN */
static int get_one(payload_store *ps, const char *path, char **out, size_t *len)
{
	struct payload_get r = { .path = path };
	int rc = payload_get_many(ps, &r, 1);

	*out = NULL;
	*len = 0;
	if (rc)
		return r.result;
	r.buf = *out = malloc(r.size + 1);
	r.cap = r.size;
	payload_get_many(ps, &r, 1);
	*len = r.len;
	return r.result;
}

static int has(payload_store *ps, const char *path, const void *want, size_t wlen)
{
	char *b;
	size_t len;
	int rc = get_one(ps, path, &b, &len), ok = rc == 0 && len == wlen && memcmp(b, want, wlen) == 0;

	free(b);
	return ok;
}

static void test_put(payload_store *ps)
{
	payload_store *ro = NULL;
	struct payload_stat sb, sb0;
	char big[5000];
	int rc;

	CHECK(payload_open(dir, PAYLOAD_RDONLY, &ro) == 0, "a read-only handle beside the read-write one");
	CHECK(payload_stat(ps, "b.bin", &sb0) == 0, "b.bin before");
	{
		struct payload_put p[] = {
			{ .path = "n1", .data = "one\n", .len = 4 },
			{ .path = "d/x.csv", .data = "h\n1\n2\n", .len = 6 },
			{ .path = "b.bin", .data = "small", .len = 5 },
			{ .path = "/d/../n2", .data = "", .len = 0 },
		};
		rc = payload_put_many(ps, p, 4);
		CHECK_EQ(rc, 0, "put_many of 4: two new, one replaced, one empty (%s)", payload_errmsg());
	}
	CHECK(has(ps, "n1", "one\n", 4) && has(ps, "d/x.csv", "h\n1\n2\n", 6) && has(ps, "b.bin", "small", 5) &&
	      has(ps, "n2", "", 0), "all four read back");
	CHECK(has(ro, "b.bin", "small", 5) && has(ro, "d/x.csv", "h\n1\n2\n", 6),
	      "a read-only handle opened before sees them");
	CHECK(payload_stat(ps, "b.bin", &sb) == 0 && sb.version == sb0.version + 1 && sb.size == 5 &&
	      sb.id == sb0.id, "the replaced object: same id, next version");
	CHECK(payload_stat(ps, "d/x.csv", &sb) == 0 && sb.rows == 3 && sb.header_rows == 1,
	      "a new .csv gets one header row, its rows counted");
	{
		struct payload_get r = { .path = "d/x.csv", .range = PAYLOAD_ROWS, .start = 1, .stop = 2 };
		char b[16];
		r.buf = b;
		r.cap = sizeof(b);
		CHECK(payload_get_many(ps, &r, 1) == 0 && r.len == 4 && memcmp(b, "h\n2\n", 4) == 0,
		      "rows of a put object");
	}
	/* all or none: the last member is bad */
	{
		struct payload_put p[] = {
			{ .path = "n3", .data = "three", .len = 5 },
			{ .path = "b.bin", .data = "CHANGED", .len = 7 },
			{ .path = "bad@rows=1:2", .data = "x", .len = 1 },
		};
		rc = payload_put_many(ps, p, 3);
		CHECK_EQ(rc, -EINVAL, "a batch with a view name fails");
		CHECK(p[2].result == -EINVAL && p[0].result == 0 && p[1].result == 0, "... the member says which");
		CHECK(strstr(payload_errmsg(), "member 2 (bad@rows=1:2)") != NULL, "message: %s", payload_errmsg());
	}
	{
		char *b;
		size_t len;
		CHECK_EQ(get_one(ps, "n3", &b, &len), -ENOENT, "... and its new object does not exist");
		free(b);
	}
	CHECK(has(ps, "b.bin", "small", 5), "... and its replaced object kept its bytes");
	memset(big, 'b', sizeof(big));
	{
		struct payload_put p[] = {
			{ .path = "n4", .data = "4", .len = 1 },
			{ .path = "n5", .data = big, .len = sizeof(big) },
		};
		CHECK_EQ(payload_put_many(ps, p, 2), 0, "a member over 4096 bytes beside a small one");
		CHECK(has(ps, "n5", big, sizeof(big)) && has(ps, "n4", "4", 1), "... both read back");
	}
	{
		struct payload_put p[] = { { .path = "n6", .data = "6", .len = 1 }, { .path = "d", .data = "x", .len = 1 } };
		CHECK_EQ(payload_put_many(ps, p, 2), -EISDIR, "a directory's path: EISDIR");
		CHECK(payload_stat(ps, "n6", &sb) == -ENOENT, "... nothing created");
	}
	{
		struct payload_put p[] = { { .path = "n7", .data = "7", .len = 1 }, { .path = "no/x", .data = "x", .len = 1 } };
		CHECK_EQ(payload_put_many(ps, p, 2), -ENOENT, "a missing directory: ENOENT");
		CHECK(p[1].result == -ENOENT && payload_stat(ps, "n7", &sb) == -ENOENT, "... nothing created");
	}
	{
		/* members reuse the resolution of the member before them only
		 * when their directory is the same one */
		struct payload_put p[] = {
			{ .path = "d/m1", .data = "m1", .len = 2 }, { .path = "d/m2", .data = "m2", .len = 2 },
			{ .path = "m3", .data = "m3", .len = 2 }, { .path = "d/m4", .data = "m4", .len = 2 },
		};
		CHECK_EQ(payload_put_many(ps, p, 4), 0, "members in d, the root, d again");
		CHECK(has(ps, "d/m1", "m1", 2), "... d/m1 in d");
		CHECK(has(ps, "d/m2", "m2", 2), "... d/m2 in d");
		CHECK(has(ps, "m3", "m3", 2), "... m3 in the root");
		CHECK(payload_stat(ps, "d/m3", &sb) == -ENOENT, "... and not in d");
		CHECK(has(ps, "d/m4", "m4", 2), "... d/m4 in d");
	}
	{
		struct payload_put p[] = { { .path = "d/m5", .data = "5", .len = 1 }, { .path = "d/m6", .data = "6", .len = 1 },
					   { .path = "dd/m7", .data = "7", .len = 1 } };
		CHECK_EQ(payload_put_many(ps, p, 3), -ENOENT, "after two members of d, one in a missing dd: ENOENT");
		CHECK_EQ(p[2].result, -ENOENT, "... the result is on that member");
		CHECK(payload_stat(ps, "d/m5", &sb) == -ENOENT, "... nothing created");
	}
	{
		struct payload_put p[] = { { .path = "n8", .data = "8", .len = 1 }, { .path = "n1/x", .data = "x", .len = 1 } };
		CHECK_EQ(payload_put_many(ps, p, 2), -ENOTDIR, "a file as directory: ENOTDIR");
	}
	{
		struct payload_put p[] = { { .path = ".snapshots/s1/n9", .data = "9", .len = 1 } };
		CHECK_EQ(payload_put_many(ps, p, 1), -EROFS, "into a snapshot: EROFS");
	}
	{
		struct payload_put p[] = { { .path = "n10", .data = NULL, .len = 3 } };
		CHECK_EQ(payload_put_many(ps, p, 1), -EINVAL, "NULL data with a length: EINVAL");
		CHECK_EQ(payload_put_many(ps, NULL, 1), -EINVAL, "NULL members: EINVAL");
		CHECK_EQ(payload_put_many(ro, p, 1), -EROFS, "a read-only handle: EROFS");
		CHECK(strstr(payload_errmsg(), "payload_put_many on") && strstr(payload_errmsg(), "read-only"),
		      "message: %s", payload_errmsg());
	}
	{
		struct payload_put p[] = { { .path = "n1", .data = "A", .len = 1 }, { .path = "n1", .data = "B", .len = 1 } };
		CHECK(payload_put_many(ps, p, 2) == 0 && has(ps, "n1", "B", 1), "a path given twice: the later wins");
	}
	/* storage=memory: its bytes would live only in a daemon's memory,
	 * and a read-write handle means no daemon: refused (payload(3)) */
	memset(big, 'm', sizeof(big));
	{
		long before = images();
		struct payload_put p[] = {
			{ .path = "n11", .data = "11", .len = 2 },
			{ .path = "mem/small", .data = "s", .len = 1 },
		};
		CHECK_EQ(payload_put_many(ps, p, 2), -EINVAL, "a small member into a storage=memory directory: EINVAL");
		CHECK_EQ(p[1].result, -EINVAL, "... the member says which");
		CHECK(strstr(payload_errmsg(), "member 1 (mem/small): its directory has storage=memory") != NULL,
		      "... message: %s", payload_errmsg());
		CHECK_EQ(payload_stat(ps, "mem/small", &sb), -ENOENT, "... it is not created");
		CHECK_EQ(payload_stat(ps, "n11", &sb), -ENOENT, "... nor the other member");
		p[1].path = "mem/big";
		p[1].data = big;
		p[1].len = sizeof(big);
		CHECK_EQ(payload_put_many(ps, p, 2), -EINVAL, "a large member into a storage=memory directory: EINVAL");
		CHECK_EQ(p[1].result, -EINVAL, "... the member says which");
		CHECK_EQ(payload_stat(ps, "mem/big", &sb), -ENOENT, "... it is not created");
		CHECK_EQ(payload_stat(ps, "n11", &sb), -ENOENT, "... nor the other member");
		CHECK_EQ(images(), before, "... and no fragment image was left");
	}
	payload_close(ro);
}

/* Fragment images in the store directory now. */
static long images(void)
{
	char cmd[400];
	long n = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "find '%s/fragments' -name '*.frag' | wc -l", dir);
	if ((f = popen(cmd, "r"))) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

/* Members over 4096 bytes (ns.c (9), putcut.c): fragments cut at row
 * ends, one transaction, and a failed batch leaves no image behind. */
static void test_put_big(payload_store *ps)
{
	size_t csvn = 3u << 20, binn = (5u << 19) + 17, rows = 0, n = 0, mid = 0, midrow = 0;
	char *bcsv = malloc(csvn + 1024), *bbin = malloc(binn), *got = malloc(64);
	struct payload_stat sb;
	long before, after;

	if (!bcsv || !bbin || !got) {
		printf("Bail out! malloc\n");
		exit(1);
	}
	n = (size_t)sprintf(bcsv, "k,v\n");
	while (n < csvn) {       /* rows of 5 to ~300 bytes: cuts fall inside */
		size_t len = 3 + (rows * 2654435761u >> 7) % 297;
		if (!mid && n >= csvn / 2) {
			mid = n;
			midrow = rows;
		}
		n += (size_t)sprintf(bcsv + n, "%zu,", rows);
		memset(bcsv + n, 'a' + (char)(rows % 26), len);
		n += len;
		bcsv[n++] = '\n';
		rows++;
	}
	for (size_t i = 0; i < binn; i++)
		bbin[i] = (char)((i * 2654435761u) >> 11 ^ i >> 17);
	before = images();
	{
		struct payload_put p[] = {
			{ .path = "big.csv", .data = bcsv, .len = n },
			{ .path = "tiny", .data = "t", .len = 1 },
			{ .path = "d/big.bin", .data = bbin, .len = binn },
		};
		CHECK_EQ(payload_put_many(ps, p, 3), 0, "put_many of a 3 MiB csv, a tiny and a 2.5 MiB binary (%s)",
			 payload_errmsg());
	}
	after = images();
	CHECK(after >= before + 7, "... the large members went to fragments (%ld -> %ld images)", before, after);
	CHECK(has(ps, "big.csv", bcsv, n) && has(ps, "d/big.bin", bbin, binn) && has(ps, "tiny", "t", 1),
	      "... every member reads back byte for byte");
	CHECK(payload_stat(ps, "big.csv", &sb) == 0 && sb.rows == rows + 1 && sb.header_rows == 1 && sb.size == n,
	      "... the csv's rows are counted over its fragments (%llu of %zu)", (unsigned long long)sb.rows, rows + 1);
	{
		/* one row in the middle, read as a row range: the header + that row */
		size_t end = (size_t)((char *)memchr(bcsv + mid, '\n', n - mid) - bcsv) + 1;
		struct payload_get r = { .path = "big.csv", .range = PAYLOAD_ROWS, .start = (int64_t)midrow,
					 .stop = (int64_t)midrow + 1 };
		char *b = malloc(end - mid + 4);
		r.buf = b;
		r.cap = end - mid + 4;
		CHECK(payload_get_many(ps, &r, 1) == 0 && r.len == 4 + end - mid && memcmp(b, "k,v\n", 4) == 0 &&
		      memcmp(b + 4, bcsv + mid, end - mid) == 0, "... a row range of it reads that row");
		free(b);
	}
	/* a failure after large members were cut: none of their images stays */
	before = images();
	{
		struct payload_put p[] = {
			{ .path = "big2.bin", .data = bbin, .len = binn },
			{ .path = "big.csv", .data = bbin, .len = binn },
			{ .path = "bad@rows=1:2", .data = "x", .len = 1 },
		};
		CHECK_EQ(payload_put_many(ps, p, 3), -EINVAL, "a bad member after two large ones: EINVAL");
		CHECK(p[2].result == -EINVAL, "... the member says which");
	}
	CHECK(payload_stat(ps, "big2.bin", &sb) == -ENOENT && has(ps, "big.csv", bcsv, n),
	      "... nothing created, the replaced object kept its bytes");
	CHECK_EQ(images(), before, "... and no fragment image of the batch stays");
	{
		struct payload_put p[] = {
			{ .path = "big3.bin", .data = bbin, .len = binn },
			{ .path = "d", .data = bbin, .len = binn },
		};
		CHECK_EQ(payload_put_many(ps, p, 2), -EISDIR, "a large member naming a directory: EISDIR");
		CHECK(payload_stat(ps, "big3.bin", &sb) == -ENOENT, "... nothing created");
	}
	CHECK_EQ(images(), before, "... and no image stays");
	/* replace a large object by a large one, twice in one batch */
	{
		struct payload_put p[] = {
			{ .path = "big.csv", .data = bbin, .len = binn },
			{ .path = "big.csv", .data = bcsv, .len = n / 2 },
		};
		CHECK_EQ(payload_put_many(ps, p, 2), 0, "a large object replaced twice in one batch");
		CHECK(has(ps, "big.csv", bcsv, n / 2), "... the later bytes win");
	}
	free(bcsv);
	free(bbin);
	free(got);
}

/* ns.c (9): a large member is cut with its object's settings before the
 * txn; when they change meanwhile the txn refuses it (EBUSY), nothing
 * changes and no image stays. Reachable through the core only (the
 * library has no setxattr and a read-write handle holds the store): a
 * hook at the sync of the batch's images changes the format then. */
static struct { uint64_t ino; int calls, rc; pthread_t self; } moved;

static void move_format(void *arg)
{
	(void)arg;
	/* only the put's own sync (putcut_finish, on the caller's thread):
	 * the store's syncer thread may sync earlier commits meanwhile */
	if (pthread_equal(pthread_self(), moved.self) && moved.calls++ == 0)
		moved.rc = store_setxattr(W, moved.ino, "user.payload.format", "fixed:4", 7, 0);
}

static void test_put_format_moved(void)
{
	static char data[3 * 4096];
	struct store_put p = { .parent = IDX_ROOT_INO, .name = "fx.bin", .data = data, .len = sizeof(data),
			       .mode = 0644 };
	struct idx_inode in;
	size_t failed = 99;
	long before;
	int rc;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 2654435761u >> 9);
	if (tst_obj(W, "fx.bin", &moved.ino)) {
		printf("Bail out! fx.bin\n");
		exit(1);
	}
	before = images();
	moved.self = pthread_self();
	fault_hook("frag_fsync", move_format, NULL);
	rc = store_put_many(W, &p, 1, &failed);
	fault_reset();
	CHECK(moved.calls >= 1 && moved.rc == 0, "the format changed while the member's images were synced (%d)",
	      moved.rc);
	CHECK_EQ(rc, -EBUSY, "store_put_many: EBUSY (cut with settings that moved)");
	CHECK_EQ(failed, 0, "... the member is named");
	CHECK_EQ(store_getattr(W, moved.ino, &in), 0, "getattr");
	CHECK(in.size == 0 && in.fmt_kind == PFMT_FIXED && in.fmt_recsize == 4,
	      "... the object is unchanged but for the new format (size %llu)", (unsigned long long)in.size);
	CHECK_EQ(images(), before, "... no image of the batch stays");
	{
		/* the core refuses storage=memory too (ns.c put_member,
		 * put_fmt), small or large, whatever its caller checked */
		struct store_put m[] = {
			{ .parent = IDX_ROOT_INO, .name = "c1", .data = "c", .len = 1, .mode = 0644 },
			{ .parent = mem.ino, .name = "c2", .data = "c", .len = 1, .mode = 0644 },
		};
		CHECK_EQ(store_put_many(W, m, 2, &failed), -EINVAL, "core: a small member into storage=memory: EINVAL");
		CHECK_EQ(failed, 1, "... the member is named");
		m[1].data = data;
		m[1].len = sizeof(data);
		CHECK_EQ(store_put_many(W, m, 2, &failed), -EINVAL, "core: a large member into storage=memory: EINVAL");
		CHECK(store_lookup(W, IDX_ROOT_INO, "c1", &in) == -ENOENT && store_lookup(W, mem.ino, "c2", &in) == -ENOENT,
		      "... nothing created");
		CHECK_EQ(images(), before, "... no image stays");
	}
	CHECK_EQ(store_put_many(W, &p, 1, &failed), 0, "the retry succeeds");
	CHECK_EQ(store_getattr(W, moved.ino, &in), 0, "getattr");
	CHECK(in.size == sizeof(data) && in.rows == sizeof(data) / 4, "... cut as fixed:4 records (%llu rows)",
	      (unsigned long long)in.rows);
}

int main(void)
{
	payload_store *ps = NULL;
	int rc;

	setup();
	rc = payload_open(dir, PAYLOAD_RDONLY, &ps);
	CHECK(rc == 0 && ps, "read-only open while a writer holds the store (%s)", payload_errmsg());
	if (!ps)
		return tap_done();
	test_batch(ps);
	test_sizes(ps);
	test_errors(ps);
	test_open_errors();
	test_versions(ps);
	test_threads(ps);
	test_put_format_moved();
	test_inline(ps);
	test_cached_fresh(ps);
	payload_close(ps);
	store_close(W);
	rc = payload_open(dir, PAYLOAD_RDWR, &ps);
	CHECK(rc == 0, "read-write open once the writer is gone (%s)", payload_errmsg());
	if (ps) {
		test_put(ps);
		test_put_big(ps);
	}
	payload_close(ps);
	{
		/* the core's view of big.csv (1.5 MiB of rows): its fragments
		 * were cut at row ends, as a writer's close cuts (putcut.c (P1)) */
		struct store_opts o = { .rdonly = 1 };
		struct store *r = NULL;
		struct idx_inode in;
		struct pver *pv = NULL;
		int cont = 0, ends = 1;
		rc = store_open(dir, &o, &r);
		if (!rc)
			rc = store_resolve(r, "big.csv", 1, &in);
		if (!rc)
			rc = store_pver_get(r, in.ino, &pv);
		CHECK(rc == 0 && pv && pv->nfrags >= 2, "big.csv is in %u fragments", pv ? pv->nfrags : 0);
		for (uint32_t i = 0; pv && i + 1 < pv->nfrags; i++) {     /* the last: n / 2 ends mid-row */
			char last;
			cont |= !!(pv->frags[i].flags & FRAG_F_CONT);
			ends &= pver_read(pv, &last, 1, pv->frags[i].off + pv->frags[i].len - 1) == 1 && last == '\n';
		}
		CHECK(pv && !cont && ends, "... each ends at a row end, none continues a row");
		pver_put(pv);
		store_close(r);
	}
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return tap_done();
}
