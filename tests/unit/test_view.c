/* test_view — the view-name parser (view_parse, view_name_reserved,
 * view_part_child) and row-range resolution (view_row_range): every case of
 * the grammar in index/view.c, Python slice semantics checked against a
 * reference implementation of slice.indices (step 1) over many (start,
 * stop, R), and @part ranges covering [0, R) exactly once with balanced
 * sizes. Pure functions: no store needed. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "index/view.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"

/* ---- parse helpers ---- */

/* NAME with control characters escaped, for TAP lines (4 rotating buffers). */
static const char *esc(const char *name)
{
	static char bufs[4][256];
	static int turn;
	char *o = bufs[turn++ & 3];
	size_t n = 0;

	for (; *name && n + 5 < sizeof(bufs[0]); name++) {
		unsigned char c = (unsigned char)*name;
		if (c < 0x20 || c == 0x7f)
			n += (size_t)snprintf(o + n, 5, "\\x%02x", c);
		else
			o[n++] = (char)c;
	}
	o[n] = '\0';
	return o;
}

struct pr {
	int rc;
	size_t base;
	struct view_spec sp;
};

static struct pr parse(const char *name)
{
	struct pr r;

	memset(&r, 0xa5, sizeof(r));
	r.rc = view_parse(name, &r.base, &r.sp);
	return r;
}

/* NAME parses as a rows view with the given bounds (has_* = 0: omitted). */
static void expect_rows(const char *name, size_t base, int hs, int64_t s, int he, int64_t e)
{
	struct pr r = parse(name);
	int ok = r.rc == 1 && r.sp.kind == VIEW_ROWS && r.base == base && r.sp.has_start == hs &&
		 r.sp.has_stop == he && (!hs || r.sp.start == s) && (!he || r.sp.stop == e);

	CHECK(ok, "'%s' is rows view (start %s%" PRId64 ", stop %s%" PRId64 ", base %zu)", name,
	      hs ? "" : "none/", s, he ? "" : "none/", e, base);
	if (!ok)
		printf("#   got rc %d kind %d base %zu has %d/%d start %" PRId64 " stop %" PRId64 "\n",
		       r.rc, r.sp.kind, r.base, r.sp.has_start, r.sp.has_stop, r.sp.start, r.sp.stop);
}

static void expect_part(const char *name, size_t base, uint64_t k, uint64_t n)
{
	struct pr r = parse(name);
	int ok = r.rc == 1 && r.sp.kind == VIEW_PART && r.base == base && r.sp.k == k && r.sp.n == n;

	CHECK(ok, "'%s' is part %" PRIu64 "/%" PRIu64 " (base %zu)", name, k, n, base);
	if (!ok)
		printf("#   got rc %d kind %d base %zu k %" PRIu64 " n %" PRIu64 "\n", r.rc, r.sp.kind,
		       r.base, r.sp.k, r.sp.n);
}

static void expect_enoent(const char *name)
{
	struct pr r = parse(name);

	CHECK_EQ(r.rc, -ENOENT, "'%s' is malformed: -ENOENT", esc(name));
	CHECK(view_name_reserved(name), "'%s' is reserved (cannot be created)", esc(name));
}

/* A plain name: rc 0, VIEW_NONE, base = whole name, not reserved. */
static void expect_plain(const char *name)
{
	struct pr r = parse(name);

	CHECK(r.rc == 0 && r.sp.kind == VIEW_NONE && r.base == strlen(name),
	      "'%s' is a plain name (rc %d kind %d base %zu)", name, r.rc, r.sp.kind, r.base);
	CHECK(!view_name_reserved(name), "'%s' is not reserved", name);
}

static void test_rows_grammar(void)
{
	expect_rows("a.csv@rows=1:2", 5, 1, 1, 1, 2);
	expect_rows("a.csv@rows=:5", 5, 0, 0, 1, 5);
	expect_rows("a.csv@rows=5:", 5, 1, 5, 0, 0);
	expect_rows("a.csv@rows=:", 5, 0, 0, 0, 0);
	expect_rows("a.csv@rows=-10:", 5, 1, -10, 0, 0);
	expect_rows("a.csv@rows=-3:-1", 5, 1, -3, 1, -1);
	expect_rows("a.csv@rows=0:0", 5, 1, 0, 1, 0);
	expect_rows("a.csv@rows=-0:-0", 5, 1, 0, 1, 0);
	expect_rows("a.csv@rows=7:3", 5, 1, 7, 1, 3);
	expect_rows("x@rows=0001:010", 1, 1, 1, 1, 10);
	expect_rows("x@rows=00000000000000000000000000042:", 1, 1, 42, 0, 0);
	/* huge values: the int64 limits parse; one past them is malformed */
	expect_rows("x@rows=9223372036854775807:", 1, 1, INT64_MAX, 0, 0);
	expect_rows("x@rows=:-9223372036854775807", 1, 0, 0, 1, -INT64_MAX);
	expect_rows("x@rows=1000000000000:2000000000000", 1, 1, 1000000000000LL, 1, 2000000000000LL);
	/* grammar: INT = [-]DIGITS that fits in int64; INT64_MIN fits */
	expect_rows("x@rows=-9223372036854775808:", 1, 1, INT64_MIN, 0, 0);
	expect_enoent("x@rows=9223372036854775808:");
	expect_enoent("x@rows=:-9223372036854775809");
	expect_enoent("x@rows=18446744073709551615:");
	expect_enoent("x@rows=18446744073709551616:");
	expect_enoent("x@rows=99999999999999999999:");      /* 20 digits */
	expect_enoent("x@rows=:12345678901234567890");
	expect_enoent("x@rows=-99999999999999999999:");
	expect_enoent("x@rows=123456789012345678901234567890:");
	/* malformed suffixes */
	expect_enoent("a.csv@rows=abc");
	expect_enoent("a.csv@rows=1");
	expect_enoent("a.csv@rows=");
	expect_enoent("a.csv@rows=1:2:3");
	expect_enoent("a.csv@rows=::");
	expect_enoent("a.csv@rows=1 :2");
	expect_enoent("a.csv@rows= 1:2");
	expect_enoent("a.csv@rows=1:2 ");
	expect_enoent("a.csv@rows=+1:2");
	expect_enoent("a.csv@rows=-:2");
	expect_enoent("a.csv@rows=--1:");
	expect_enoent("a.csv@rows=1-:");
	expect_enoent("a.csv@rows=1.5:2");
	expect_enoent("a.csv@rows=0x10:");
	expect_enoent("a.csv@rows=a:b");
	expect_enoent("a.csv@rows=1:2\n");
	/* empty base */
	expect_enoent("@rows=1:2");
	expect_enoent("@rows=:");
	expect_enoent("@meta");
	expect_enoent("@part=1/2");
}

static void test_part_grammar(void)
{
	struct pr r;

	expect_part("a.csv@part=3/8", 5, 3, 8);
	expect_part("a.csv@part=0/1", 5, 0, 1);
	expect_part("a.csv@part=7/8", 5, 7, 8);
	expect_part("a@part=007/08", 1, 7, 8);
	expect_part("a@part=9223372036854775806/9223372036854775807", 1, 9223372036854775806ULL,
		    9223372036854775807ULL);
	expect_enoent("a.csv@part=9/8");
	expect_enoent("a.csv@part=8/8");
	expect_enoent("a.csv@part=1/0");
	expect_enoent("a.csv@part=0/0");
	expect_enoent("a.csv@part=-1/4");
	expect_enoent("a.csv@part=1/-4");
	expect_enoent("a.csv@part=-0/4");
	expect_enoent("a.csv@part=");
	expect_enoent("a.csv@part=/8");
	expect_enoent("a.csv@part=3/");
	expect_enoent("a.csv@part=3/8/1");
	expect_enoent("a.csv@part=3//8");
	expect_enoent("a.csv@part=a/8");
	expect_enoent("a.csv@part=3/b");
	expect_enoent("a.csv@part=3 /8");
	expect_enoent("a.csv@part=3:8");
	expect_enoent("a.csv@part=+3/8");
	expect_enoent("a.csv@part=-3");
	expect_enoent("a.csv@part=x");
	expect_enoent("a.csv@part=3/99999999999999999999");
	expect_enoent("a.csv@part=99999999999999999999");

	/* NAME@part=K alone: the hidden directory of `NAME@part=K/N` */
	r = parse("a.csv@part=3");
	CHECK(r.rc == 1 && r.sp.kind == VIEW_PARTDIR && r.sp.k == 3 && r.sp.n == 0 && r.base == 5,
	      "'a.csv@part=3' is VIEW_PARTDIR k 3 (rc %d kind %d k %" PRIu64 " n %" PRIu64 ")", r.rc,
	      r.sp.kind, r.sp.k, r.sp.n);
	CHECK(view_name_reserved("a.csv@part=3"), "'a.csv@part=3' is reserved");
	r = parse("a.csv@part=0");
	CHECK(r.rc == 1 && r.sp.kind == VIEW_PARTDIR && r.sp.k == 0, "'a.csv@part=0' is VIEW_PARTDIR k 0");
}

static void test_part_child(void)
{
	struct view_spec dir, out, notdir;
	struct pr r = parse("d.csv@part=3");
	const char *bad[] = { "3", "2", "0", "", "-8", "8x", "x8", " 8", "8/", "+8", "08.0",
			      "99999999999999999999" };

	dir = r.sp;
	memset(&out, 0x5a, sizeof(out));
	CHECK_EQ(view_part_child(&dir, "8", &out), 0, "part=3 / '8' resolves");
	CHECK(out.kind == VIEW_PART && out.k == 3 && out.n == 8, "... to part 3/8 (kind %d k %" PRIu64
	      " n %" PRIu64 ")", out.kind, out.k, out.n);
	CHECK_EQ(view_part_child(&dir, "4", &out), 0, "part=3 / '4' (K = N-1) resolves");
	CHECK(out.kind == VIEW_PART && out.k == 3 && out.n == 4, "... to part 3/4");
	CHECK_EQ(view_part_child(&dir, "0004", &out), 0, "part=3 / '0004' resolves (leading zeros)");
	CHECK_EQ(view_part_child(&dir, "9223372036854775807", &out), 0, "part=3 / INT64_MAX resolves");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(view_part_child(&dir, bad[i], &out), -ENOENT, "part=3 / '%s' is -ENOENT", bad[i]);
	r = parse("d.csv@part=0");
	CHECK_EQ(view_part_child(&r.sp, "1", &out), 0, "part=0 / '1' resolves");
	CHECK_EQ(view_part_child(&r.sp, "0", &out), -ENOENT, "part=0 / '0' is -ENOENT");
	notdir = parse("d.csv@part=3/8").sp;
	CHECK_EQ(view_part_child(&notdir, "8", &out), -ENOENT, "a VIEW_PART is not a directory: -ENOENT");
	notdir = parse("d.csv@rows=1:2").sp;
	CHECK_EQ(view_part_child(&notdir, "8", &out), -ENOENT, "a VIEW_ROWS is not a directory: -ENOENT");
	notdir = parse("d.csv").sp;
	CHECK_EQ(view_part_child(&notdir, "8", &out), -ENOENT, "VIEW_NONE is not a directory: -ENOENT");
}

static void test_other_names(void)
{
	struct pr r = parse("a.csv@meta");

	CHECK(r.rc == 1 && r.sp.kind == VIEW_META && r.base == 5, "'a.csv@meta' is VIEW_META, base 5");
	CHECK(view_name_reserved("a.csv@meta"), "'a.csv@meta' is reserved");
	r = parse("x@y@meta");
	CHECK(r.rc == 1 && r.sp.kind == VIEW_META && r.base == 3, "'x@y@meta' is VIEW_META of 'x@y'");
	r = parse("a@@meta");
	CHECK(r.rc == 1 && r.sp.kind == VIEW_META && r.base == 2, "'a@@meta' is VIEW_META of 'a@'");

	expect_plain("a.csv@metax");
	expect_plain("a.csv@meta=");
	expect_plain("a.csv@Meta");
	expect_plain("a.csv@rows");
	expect_plain("a.csv@rowsx=1:2");
	expect_plain("a.csv@ROWS=1:2");
	expect_plain("a.csv@part");
	expect_plain("a.csv@partition=1/2");
	expect_plain("a.csv@");
	expect_plain("a.csv");
	expect_plain("");
	expect_plain("@");
	expect_plain("rows=1:2");
	expect_plain("a.csv@rows=1:2@x");      /* the last '@' counts */
	expect_plain("a@meta@y");
	expect_plain("a@part=1/2@rows");
	expect_rows("a@b@rows=1:2", 3, 1, 1, 1, 2);
	expect_rows("a@rows=9:9@rows=1:2", 10, 1, 1, 1, 2);
	expect_part("a@rows=1:2@part=1/2", 10, 1, 2);
	expect_enoent("a@rows=1:2@rows=x");
	expect_enoent("a@rows=1:2@part=2/2");
}

/* ---- Python slice reference (slice.indices, step 1) ---- */

typedef __int128 i128;

/* Python: for step > 0, lower = 0, upper = length; a bound is
 * None -> default, < 0 -> += length then max(0, .), else min(., length). */
static i128 py_bound(int has, int64_t v, uint64_t len, i128 dflt)
{
	i128 x;

	if (!has)
		return dflt;
	x = v;
	if (x < 0) {
		x += (i128)len;
		if (x < 0)
			x = 0;
	} else if (x > (i128)len) {
		x = (i128)len;
	}
	return x;
}

static void py_slice(int hs, int64_t s, int he, int64_t e, uint64_t len, uint64_t *a, uint64_t *cnt)
{
	i128 start = py_bound(hs, s, len, 0), stop = py_bound(he, e, len, (i128)len);

	*a = (uint64_t)start;
	*cnt = stop > start ? (uint64_t)(stop - start) : 0;
}

static void test_slices(void)
{
	static const uint64_t lens[] = { 0, 1, 2, 3, 5, 10, 17, 100, 1000, 4294967296ull,
					 (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX - 1,
					 UINT64_MAX };
	int64_t vals[64];
	size_t nv = 0;
	long cases = 0, bad = 0, parsed_bad = 0;

	for (int64_t v = -12; v <= 12; v++)
		vals[nv++] = v;
	const int64_t extra[] = { -100, 100, -999, 999, -1000, 1000, -1001, 1001, 4294967295LL,
				  -4294967296LL, INT64_MAX, -INT64_MAX, INT64_MIN, INT64_MAX - 1,
				  INT64_MIN + 1, 1LL << 62, -(1LL << 62) };
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		vals[nv++] = extra[i];

	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		uint64_t len = lens[li];
		for (size_t si = 0; si <= nv; si++) {
			for (size_t ei = 0; ei <= nv; ei++) {
				int hs = si < nv, he = ei < nv;
				int64_t s = hs ? vals[si] : 0, e = he ? vals[ei] : 0;
				struct view_spec sp = { .kind = VIEW_ROWS, .has_start = hs, .has_stop = he,
							.start = s, .stop = e };
				uint64_t a, b, ra, rc;
				view_row_range(&sp, len, &a, &b);
				py_slice(hs, s, he, e, len, &ra, &rc);
				cases++;
				if (a != ra || b < a || b - a != rc) {
					if (bad++ < 10)
						printf("#   R=%" PRIu64 " [%s%" PRId64 ":%s%" PRId64 "]: got [%" PRIu64
						       ", %" PRIu64 "), want start %" PRIu64 " count %" PRIu64 "\n",
						       len, hs ? "" : "_", s, he ? "" : "_", e, a, b, ra, rc);
				}
				/* the same through the parser, for bounds it accepts */
				if (len == 10 || len == 3) {
					char name[96], sb[24] = "", eb[24] = "";
					struct pr r;
					if (hs)
						snprintf(sb, sizeof(sb), "%" PRId64, s);
					if (he)
						snprintf(eb, sizeof(eb), "%" PRId64, e);
					snprintf(name, sizeof(name), "t.csv@rows=%s:%s", sb, eb);
					r = parse(name);
					if (r.rc != 1) {
						if (parsed_bad++ < 10)
							printf("#   '%s' did not parse (rc %d)\n", name, r.rc);
						continue;
					}
					view_row_range(&r.sp, len, &a, &b);
					if (a != ra || b - a != rc) {
						if (parsed_bad++ < 10)
							printf("#   '%s' R=%" PRIu64 ": [%" PRIu64 ", %" PRIu64
							       ") want start %" PRIu64 " count %" PRIu64 "\n",
							       name, len, a, b, ra, rc);
					}
				}
			}
		}
	}
	CHECK_EQ(bad, 0, "view_row_range equals Python slice.indices over %ld (start, stop, R) cases", cases);
	CHECK_EQ(parsed_bad, 0, "parsed '@rows=S:E' names give the Python slice too");

	/* randomized: any int64 bounds, any R */
	bad = 0;
	for (int i = 0; i < 200000; i++) {
		int hs = (int)rnd_below(8) != 0, he = (int)rnd_below(8) != 0;
		int64_t s = (int64_t)rnd(), e = (int64_t)rnd();
		uint64_t len = rnd();
		switch (rnd_below(4)) {   /* mostly values near the range */
		case 0: len %= 64; s %= 80; e %= 80; break;
		case 1: len %= 100000; s %= 120000; e %= 120000; break;
		case 2: len >>= 2; s %= (int64_t)(len | 1); e %= (int64_t)(len | 1); break;
		default: break;
		}
		struct view_spec sp = { .kind = VIEW_ROWS, .has_start = hs, .has_stop = he, .start = s, .stop = e };
		uint64_t a, b, ra, rc;
		view_row_range(&sp, len, &a, &b);
		py_slice(hs, s, he, e, len, &ra, &rc);
		if (a != ra || b < a || b - a != rc) {
			if (bad++ < 10)
				printf("#   R=%" PRIu64 " [%" PRId64 ":%" PRId64 "] has %d/%d: got [%" PRIu64 ", %"
				       PRIu64 ")\n", len, s, e, hs, he, a, b);
		}
	}
	CHECK_EQ(bad, 0, "view_row_range equals the Python slice on 200000 random cases");

	/* a few spelled out, as the design document states them */
	struct { const char *name; uint64_t r, a, b; } ex[] = {
		{ "e@rows=100:200", 1000, 100, 200 }, { "e@rows=100:200", 150, 100, 150 },
		{ "e@rows=100:200", 50, 50, 50 }, { "e@rows=-10:", 1000, 990, 1000 },
		{ "e@rows=-10:", 4, 0, 4 }, { "e@rows=:", 7, 0, 7 }, { "e@rows=:-1", 7, 0, 6 },
		{ "e@rows=-3:-1", 10, 7, 9 }, { "e@rows=5:2", 10, 5, 5 }, { "e@rows=-1:-3", 10, 9, 9 },
		{ "e@rows=3:", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		struct pr r = parse(ex[i].name);
		uint64_t a = 99, b = 99;
		if (r.rc == 1)
			view_row_range(&r.sp, ex[i].r, &a, &b);
		CHECK(r.rc == 1 && a == ex[i].a && b == ex[i].b, "%s over %" PRIu64 " rows is [%" PRIu64
		      ", %" PRIu64 ") (got [%" PRIu64 ", %" PRIu64 "))", ex[i].name, ex[i].r, ex[i].a,
		      ex[i].b, a, b);
	}
}

/* ---- @part ranges ---- */

/* Check that parts 0..N-1 of R rows tile [0, R) in order, with sizes
 * differing by at most one and part K = [floor(K*R/N), floor((K+1)*R/N)).
 * @return 1 when they do. */
static int parts_ok(uint64_t r, uint64_t n, char *why, size_t cap)
{
	uint64_t prev_b = 0, mn = UINT64_MAX, mx = 0;

	for (uint64_t k = 0; k < n; k++) {
		struct view_spec sp = { .kind = VIEW_PART, .k = k, .n = n };
		uint64_t a, b;
		view_row_range(&sp, r, &a, &b);
		if (a != prev_b || b < a) {
			snprintf(why, cap, "R=%" PRIu64 " N=%" PRIu64 " part %" PRIu64 " is [%" PRIu64 ", %"
				 PRIu64 ") after %" PRIu64, r, n, k, a, b, prev_b);
			return 0;
		}
		if (a != (uint64_t)((unsigned __int128)k * r / n)) {
			snprintf(why, cap, "R=%" PRIu64 " N=%" PRIu64 " part %" PRIu64 " starts at %" PRIu64
				 ", not floor(K*R/N)", r, n, k, a);
			return 0;
		}
		if (b - a < mn)
			mn = b - a;
		if (b - a > mx)
			mx = b - a;
		prev_b = b;
	}
	if (prev_b != r || mx - mn > 1) {
		snprintf(why, cap, "R=%" PRIu64 " N=%" PRIu64 ": covers [0, %" PRIu64 "), sizes %" PRIu64
			 "..%" PRIu64, r, n, prev_b, mn, mx);
		return 0;
	}
	return 1;
}

static void test_parts(void)
{
	char why[200] = "";
	long cases = 0, bad = 0;

	for (uint64_t r = 0; r <= 300 && bad < 5; r++)
		for (uint64_t n = 1; n <= 40; n++) {
			cases++;
			if (!parts_ok(r, n, why, sizeof(why)) && bad++ < 5)
				printf("#   %s\n", why);
		}
	const uint64_t big[][2] = { { 1000003, 7 }, { 1ull << 40, 13 }, { UINT64_MAX, 3 },
				    { UINT64_MAX, 64 }, { (uint64_t)INT64_MAX, 10 }, { 5, 1000 },
				    { 0, 1000 }, { 999, 1000 }, { 1000, 1000 }, { 1001, 1000 } };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		cases++;
		if (!parts_ok(big[i][0], big[i][1], why, sizeof(why)) && bad++ < 10)
			printf("#   %s\n", why);
	}
	for (int i = 0; i < 300; i++) {
		uint64_t r = rnd_below(2) ? rnd_below(100000) : rnd(), n = 1 + rnd_below(200);
		cases++;
		if (!parts_ok(r, n, why, sizeof(why)) && bad++ < 10)
			printf("#   %s\n", why);
	}
	CHECK_EQ(bad, 0, "@part=K/N tiles [0, R) exactly once, sizes within 1, over %ld (R, N)", cases);

	/* the design's example: part 3 of 8 is [3R/8, 4R/8) */
	struct pr p = parse("e.csv@part=3/8");
	uint64_t a, b;
	view_row_range(&p.sp, 1000, &a, &b);
	CHECK(a == 375 && b == 500, "e.csv@part=3/8 over 1000 rows is [375, 500) (got [%" PRIu64 ", %" PRIu64 "))", a, b);
	view_row_range(&p.sp, 3, &a, &b);
	CHECK(a == 1 && b == 1, "e.csv@part=3/8 over 3 rows is empty at 1 (got [%" PRIu64 ", %" PRIu64 "))", a, b);
}

int main(void)
{
	seed_init();
	test_rows_grammar();
	test_part_grammar();
	test_part_child();
	test_other_names();
	test_slices();
	test_parts();
	{
		uint64_t id = 7;
		CHECK_EQ(view_parse_id("42", 2, &id), 0, "view_parse_id: 42");
		CHECK_EQ(id, 42, "view_parse_id: value 42");
		CHECK_EQ(view_parse_id("42@rows=0:1", 2, &id), 0, "view_parse_id: only LEN bytes are read");
		CHECK_EQ(view_parse_id("", 0, &id), -ENOENT, "view_parse_id: empty is ENOENT");
		CHECK_EQ(view_parse_id("4x", 2, &id), -ENOENT, "view_parse_id: non-digit is ENOENT");
		CHECK_EQ(view_parse_id("-1", 2, &id), -ENOENT, "view_parse_id: sign is ENOENT");
		CHECK_EQ(view_parse_id("12345678901234567890", 20, &id), -ENOENT, "view_parse_id: 20 digits is ENOENT");
		CHECK_EQ(view_parse_id("1234567890123456789", 19, &id), 0, "view_parse_id: 19 digits");
		CHECK(id == 1234567890123456789ull, "view_parse_id: 19-digit value");
	}
	return tap_done();
}
