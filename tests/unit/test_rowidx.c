/* test_rowidx — the per-fragment row index of format 4 (index/rowidx.h)
 * and the row lookups that use it (pver_row_offsets, index/pver.c (5)).
 *
 * Pure part: rowidx_build + rowidx_find against a naive newline walk, for
 * fragments with rows at exactly the stride (255, 256, 257, 512, 513
 * rows), continuation fragments (FRAG_F_CONT: local row 0 after the first
 * newline), no trailing newline, CRLF rows, fragments in which no row
 * starts, and damaged records (refused, never trusted).
 *
 * Store part: objects committed through the store (fragment_size 4096, so
 * rows span fragments and continuation fragments appear) have a record per
 * fragment; the offset of every row (header-only, empty and ordinary
 * objects, rows longer than a fragment) equals the naive one, found with
 * the index (rowidx_hits grow, no fragment decoded for indexed rows) and,
 * with every record deleted (a format-3 store's fragments), by scanning
 * (row_scans grow) with the same result; dropping a fragment's last
 * reference deletes its record. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index/store_int.h"
#include "index/rowidx.h"
#include "cache/log.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"
#include "tests/unit/tstore.h"

/* Where local row J starts in RAW/LEN (CONT: after the first newline), or
 * LEN when it does not start in it. */
static size_t naive_start(const char *raw, size_t len, int cont, uint64_t j)
{
	uint64_t nl = j + (cont ? 1 : 0);
	size_t p = 0;

	while (nl && p < len) {
		const char *q = memchr(raw + p, '\n', len - p);
		if (!q)
			return len;
		p = (size_t)(q - raw) + 1;
		nl--;
	}
	return nl ? len : p;
}

static uint64_t naive_rows(const char *raw, size_t len, int cont)
{
	uint64_t n = 0;

	while (naive_start(raw, len, cont, n) < len)
		n++;
	return n;
}

/* Build RAW's index and check every local row through rowidx_find (plus
 * the newline skip) against naive_start; indexed rows need no skip. */
static void check_frag(const char *what, const char *raw, size_t len, int cont)
{
	unsigned char *rec;
	size_t rlen;
	uint64_t rows = naive_rows(raw, len, cont), bad = 0, exact_bad = 0, got_rows = ~0ull;
	int rc = rowidx_build(raw, len, cont, &rec, &rlen, &got_rows);

	CHECK_EQ(rc, 0, "%s: built", what);
	CHECK_EQ(got_rows, rows, "%s: its rows counted (%" PRIu64 ")", what, rows);
	{
		struct idx_inode lines;
		memset(&lines, 0, sizeof(lines));   /* lines format */
		CHECK_EQ(got_rows, frag_rows(&lines, raw, len, cont ? 1 : 0),
			 "%s: the same count as frag_rows (the encoder uses either)", what);
	}
	if (!rows) {
		CHECK(rec == NULL && rlen == 0, "%s: no row starts in it: no record", what);
		free(rec);
		return;
	}
	CHECK(rec != NULL, "%s: a record for its %" PRIu64 " rows", what, rows);
	if (!rec)
		return;
	{
		const unsigned char *pre;
		uint32_t plen;
		size_t base = (size_t)ROWIDX_HDR +
			4 * ((rows - 1 < ROWIDX_HEAD ? rows - 1 : ROWIDX_HEAD) + (rows + ROWIDX_STRIDE - 1) / ROWIDX_STRIDE);
		/* the prefix: the most whole rows among the first 9 that fit */
		size_t want = 0;
		for (uint64_t j = 1; !cont && j <= ROWIDX_HEAD && j <= rows; j++) {
			size_t e = j < rows ? naive_start(raw, len, 0, j) : len;
			if (e > ROWIDX_PREFIX_MAX || (j == rows && rows > 1))
				break;
			want = e;
		}
		CHECK_EQ(rlen, base + (want ? 4 + want : 0),
			 "%s: record length: head rows + one entry per %d rows + a %zu-byte prefix", what,
			 ROWIDX_STRIDE, want);
		CHECK_EQ(rowidx_prefix(rec, rlen, &pre, &plen), 0, "%s: its prefix decodes", what);
		CHECK(plen == want && (!want || memcmp(pre, raw, want) == 0),
		      "%s: prefix: the first %zu bytes (whole rows), got %u", what, want, plen);
	}
	for (uint64_t j = 0; j < rows; j++) {
		uint32_t off = 0, skip = 0;
		const char *p;
		if (rowidx_find(rec, rlen, (uint32_t)len, j, &off, &skip)) {
			bad++;
			continue;
		}
		p = raw + off;
		for (uint32_t s = 0; s < skip; s++)
			p = memchr(p, '\n', len - (size_t)(p - raw)) + 1;
		if ((size_t)(p - raw) != naive_start(raw, len, cont, j))
			bad++;
		if ((j % ROWIDX_STRIDE == 0 || (j >= 1 && j <= ROWIDX_HEAD)) && skip != 0)
			exact_bad++;
		if (skip >= ROWIDX_STRIDE)
			exact_bad++;
	}
	CHECK_EQ(bad, 0, "%s: every one of the %" PRIu64 " rows found where it starts", what, rows);
	CHECK_EQ(exact_bad, 0, "%s: rows 1..%d and multiples of %d exact, others < %d rows away", what,
		 ROWIDX_HEAD, ROWIDX_STRIDE, ROWIDX_STRIDE);
	{
		uint32_t off, skip;
		uint64_t past = (rows + ROWIDX_STRIDE - 1) / ROWIDX_STRIDE * ROWIDX_STRIDE;
		CHECK_EQ(rowidx_find(rec, rlen, (uint32_t)len, past, &off, &skip), -ERANGE,
			 "%s: row %" PRIu64 " is past the index: -ERANGE", what, past);
	}
	free(rec);
}

/* NROWS rows of varied lengths (EOL "\n" or "\r\n"), the last without
 * its newline when NOLAST; PRE bytes of a continued row first. */
static char *gen(uint64_t nrows, const char *eol, int nolast, size_t pre, size_t *len)
{
	size_t cap = pre + nrows * 40 + 16, n = 0;
	char *b = malloc(cap);

	for (size_t i = 0; i < pre; i++)
		b[n++] = 'p';
	if (pre)
		b[n++] = '\n';
	for (uint64_t r = 0; r < nrows; r++) {
		n += (size_t)snprintf(b + n, cap - n, "%" PRIu64 ",%.*s", r, (int)(r * 7 % 23), "xxxxxxxxxxxxxxxxxxxxxxxxx");
		if (!(nolast && r + 1 == nrows))
			n += (size_t)snprintf(b + n, cap - n, "%s", eol);
	}
	*len = n;
	return b;
}

static void test_pure(void)
{
	static const uint64_t counts[] = { 1, 2, 8, 9, 10, 255, 256, 257, 512, 513, 3000 };
	char what[128];
	size_t len;
	char *b;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		for (int v = 0; v < 4; v++) {
			int cont = v & 1, nolast = v >> 1;
			b = gen(counts[i], "\n", nolast, cont ? 5 : 0, &len);
			snprintf(what, sizeof(what), "%" PRIu64 " rows%s%s", counts[i], cont ? ", continued" : "",
				 nolast ? ", no trailing newline" : "");
			check_frag(what, b, len, cont);
			free(b);
		}
	}
	b = gen(600, "\r\n", 0, 0, &len);
	check_frag("600 CRLF rows", b, len, 0);
	free(b);
	check_frag("inside one row (continued, no newline)", "abcdef", 6, 1);
	check_frag("the end of a continued row only", "abc\n", 4, 1);
	check_frag("one newline", "\n", 1, 0);
	check_frag("empty lines", "\n\n\n\n\n\n\n\n\n\n\n", 11, 0);

	/* damaged records are refused (the reader then scans) */
	{
		unsigned char *rec;
		size_t rlen;
		uint32_t off, skip;
		b = gen(300, "\n", 0, 0, &len);
		CHECK_EQ(rowidx_build(b, len, 0, &rec, &rlen, NULL), 0, "300 rows: built");
		CHECK_EQ(rowidx_find(rec, rlen - 1, (uint32_t)len, 3, &off, &skip), -EUCLEAN,
			 "a record one byte short: -EUCLEAN");
		CHECK_EQ(rowidx_find(rec, 4, (uint32_t)len, 3, &off, &skip), -EUCLEAN,
			 "a record shorter than its header: -EUCLEAN");
		CHECK_EQ(rowidx_find(rec, rlen, 100, 299, &off, &skip), -EUCLEAN,
			 "an offset past the fragment's length: -EUCLEAN");
		CHECK_EQ(rowidx_find(rec, rlen + 1, (uint32_t)len, 3, &off, &skip), -EUCLEAN,
			 "a record one byte long: -EUCLEAN");
		rec[0] ^= 1;
		CHECK_EQ(rowidx_find(rec, rlen, (uint32_t)len, 3, &off, &skip), -EUCLEAN,
			 "another stride: -EUCLEAN");
		free(rec);
		free(b);
	}
}

/* ---- through a store ---- */

#define FRAG 4096
static char tmp[4096], sdir[4200];

static struct store *open_store(int create)
{
	struct store_opts o = { .fragment_size = FRAG, .create = create };
	struct store *s = NULL;
	int rc = store_open(sdir, &o, &s);

	if (rc) {
		printf("Bail out! store_open %s: %s\n", sdir, store_strerror(rc));
		exit(1);
	}
	return s;
}

/* Every row's offset in object INO (data DATA/LEN) by pver_row_offsets
 * equals the naive one. @return rows checked, or -1 on a mismatch. */
static int64_t check_rows(struct store *st, uint64_t ino, const char *data, size_t len, const char *what)
{
	struct pver *pv;
	uint64_t rows, bad = 0;
	int rc = store_pver_get(st, ino, &pv);

	CHECK_EQ(rc, 0, "%s: version pinned", what);
	if (rc)
		return -1;
	rows = pver_inode(pv)->rows;
	CHECK_EQ(rows, naive_rows(data, len, 0), "%s: %" PRIu64 " rows", what, rows);
	for (uint64_t r = 0; r <= rows; r++) {
		uint64_t got = ~0ull, want = r < rows ? naive_start(data, len, 0, r) : len;
		if (pver_row_offset(pv, r, &got) || got != want) {
			if (!bad)
				printf("#   row %" PRIu64 ": got %" PRIu64 ", want %" PRIu64 "\n", r, got, want);
			bad++;
		}
	}
	{   /* and three at once, as view_resolve asks */
		uint64_t q[3] = { rows / 3, rows / 2, rows }, o[3];
		rc = pver_row_offsets(pv, q, 3, o);
		for (int k = 0; !rc && k < 3; k++)
			if (o[k] != (q[k] < rows ? naive_start(data, len, 0, q[k]) : len))
				bad++;
		if (rc)
			bad++;
	}
	pver_put(pv);
	CHECK_EQ(bad, 0, "%s: every row's offset is the naive one", what);
	return bad ? -1 : (int64_t)rows;
}

struct ids { uint64_t v[4096]; uint32_t n, cont, withrows; };

static int collect(void *arg, uint64_t ino, const struct frag_desc *d)
{
	struct ids *a = arg;

	(void)ino;
	if (a->n < 4096)
		a->v[a->n++] = d->id;
	a->cont += !!(d->flags & FRAG_F_CONT);
	a->withrows += d->rows > 0;
	return 0;
}

/* Fragment ids of every record, and how many have a row index. */
static void frag_ids(struct store *st, struct ids *a, uint32_t *indexed)
{
	struct idx_txn *t;
	const void *v;
	size_t l;

	memset(a, 0, sizeof(*a));
	*indexed = 0;
	if (idx_begin(st->idx, 1, &t))
		return;
	idx_frags_iter_all(t, collect, a);
	for (uint32_t i = 0; i < a->n; i++)
		*indexed += idx_rowidx_get(t, a->v[i], &v, &l) == 0;
	idx_abort(t);
}

static void test_store(void)
{
	struct store *st = open_store(1);
	struct idx_inode in, hin, ein;
	struct store_stats s0, s1;
	struct ids a;
	uint32_t indexed;
	size_t len, hlen;
	char *data, *hdr;

	/* rows of 20..60 bytes, a few longer than a fragment (continuation
	 * fragments), header first */
	{
		size_t cap = 400000;
		data = malloc(cap);
		len = (size_t)snprintf(data, cap, "id,text\n");
		for (int r = 0; r < 5000; r++) {
			int w = r % 997 == 500 ? 9000 : 10 + r * 13 % 40;
			len += (size_t)snprintf(data + len, cap - len, "%d,", r);
			memset(data + len, 'a' + r % 26, (size_t)w);
			len += (size_t)w;
			data[len++] = '\n';
		}
	}
	CHECK_EQ(store_mknod(st, IDX_ROOT_INO, "d.csv", S_IFREG | 0644, 0, 0, 0, &in), 0, "d.csv made");
	CHECK_EQ(tst_put_data(st, in.ino, data, len), 0, "d.csv: %zu bytes committed", len);
	frag_ids(st, &a, &indexed);
	CHECK(a.n > 50 && a.cont > 0 && a.withrows < a.n, "d.csv: %u fragments, %u continue a row, %u hold no row start",
	      a.n, a.cont, a.n - a.withrows);
	CHECK_EQ(indexed, a.withrows, "every fragment of d.csv in which rows start has a row index (%u of %u)",
		 indexed, a.n);

	store_get_stats(st, &s0);
	check_rows(st, in.ino, data, len, "d.csv, indexed");
	store_get_stats(st, &s1);
	CHECK(s1.rowidx_hits > s0.rowidx_hits, "the rows were found through the index (%" PRIu64 " hits)",
	      s1.rowidx_hits - s0.rowidx_hits);
	{   /* indexed rows decode nothing */
		struct pver *pv;
		uint64_t rows[3] = { 1, 2, 0 }, o[3];
		store_pver_get(st, in.ino, &pv);
		store_get_stats(st, &s0);
		pver_row_offsets(pv, rows, 2, o);
		store_get_stats(st, &s1);
		CHECK_EQ(s1.row_scans - s0.row_scans, 0, "rows 1 and 2 (the header's end, indexed): no fragment decoded");
		pver_put(pv);
	}

	/* a header-only object longer than a fragment, and an empty one */
	hdr = malloc(10000);
	memset(hdr, 'h', 9999);
	hdr[9999] = '\n';
	hlen = 10000;
	CHECK_EQ(store_mknod(st, IDX_ROOT_INO, "h.csv", S_IFREG | 0644, 0, 0, 0, &hin), 0, "h.csv made");
	CHECK_EQ(tst_put_data(st, hin.ino, hdr, hlen), 0, "h.csv: a 10000-byte header only");
	check_rows(st, hin.ino, hdr, hlen, "h.csv (header only)");
	CHECK_EQ(store_mknod(st, IDX_ROOT_INO, "e.csv", S_IFREG | 0644, 0, 0, 0, &ein), 0, "e.csv made");
	CHECK_EQ(tst_put_data(st, ein.ino, "", 0), 0, "e.csv: empty");
	check_rows(st, ein.ino, "", 0, "e.csv (empty)");

	/* without the records (a format-3 store's fragments): the same
	 * offsets, by scanning */
	{
		struct idx_txn *t;
		int rc = idx_begin(st->idx, 0, &t);
		frag_ids(st, &a, &indexed);
		for (uint32_t i = 0; !rc && i < a.n; i++)
			rc = idx_rowidx_del(t, a.v[i]);
		if (!rc)
			rc = idx_commit(t);
		else
			idx_abort(t);
		CHECK_EQ(rc, 0, "every row index deleted");
		frag_ids(st, &a, &indexed);
		CHECK_EQ(indexed, 0, "no fragment has one now");
	}
	store_get_stats(st, &s0);
	check_rows(st, in.ino, data, len, "d.csv, not indexed");
	check_rows(st, hin.ino, hdr, hlen, "h.csv, not indexed");
	store_get_stats(st, &s1);
	CHECK_EQ(s1.rowidx_hits, s0.rowidx_hits, "without records no row is found through an index");
	CHECK(s1.row_scans > s0.row_scans, "... they are found by scanning (%" PRIu64 " scans)",
	      s1.row_scans - s0.row_scans);

	/* rewritten: new fragments are indexed, the released ones' records go */
	data[len - 2] = 'Z';
	CHECK_EQ(tst_put_data(st, in.ino, data, len), 0, "d.csv rewritten");
	frag_ids(st, &a, &indexed);
	CHECK(indexed >= 1, "its rewritten fragment has a row index (%u)", indexed);
	{
		uint64_t keep = 0;
		struct idx_txn *t;
		const void *v;
		size_t l;
		/* find the indexed (new) fragment, then drop the object */
		idx_begin(st->idx, 1, &t);
		for (uint32_t i = 0; i < a.n; i++)
			if (idx_rowidx_get(t, a.v[i], &v, &l) == 0)
				keep = a.v[i];
		idx_abort(t);
		CHECK_EQ(tst_put_data(st, in.ino, "x\n", 2), 0, "d.csv replaced by one tiny row");
		idx_begin(st->idx, 1, &t);
		CHECK_EQ(idx_rowidx_get(t, keep, &v, &l), -ENOENT,
			 "the record of a fragment whose last reference went is deleted with it");
		idx_abort(t);
	}
	store_close(st);
	free(data);
	free(hdr);
}

int main(void)
{
	seed_init();
	log_init("test_rowidx", LOG_TO_STDERR, LOG_WARNING);
	test_pure();
	if (tut_mkdtemp(tmp, sizeof(tmp), "test_rowidx")) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	snprintf(sdir, sizeof(sdir), "%s/store", tmp);
	mkdir(sdir, 0700);
	test_store();
	tut_rmrf(tmp);
	return tap_done();
}
