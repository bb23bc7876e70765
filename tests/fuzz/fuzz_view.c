/* fuzz_view — libFuzzer harness for the view-name parser (index/view.c):
 * view_parse, view_part_child, view_parse_id, view_name_reserved and
 * view_row_range.
 *
 * Input: 8 bytes of a row count R (little-endian), then a name. The name
 * is cut at its first NUL (names hold none) and at its first '/': the part
 * before is a lookup name, the part after is the child name looked up in a
 * `NAME@part=K` directory (the kernel splits `x@part=K/N` the same way).
 *
 * Properties checked (abort on violation):
 *  - view_parse agrees exactly with an independent reference parser of the
 *    grammar in view.c (suffix after the last '@'; `rows=[INT]:[INT]` with
 *    INT = -?DIGITS in int64; `part=K/N` and `part=K` with K, N decimal in
 *    int64, K < N; `meta`; empty base is -ENOENT): same return, same base
 *    length, same kind and bounds;
 *  - a returned 0 means no reserved suffix (view_name_reserved is 0), a
 *    non-zero one means reserved;
 *  - a parsed rows or part view round-trips: its canonical rendering parses
 *    back to the same spec;
 *  - view_part_child accepts exactly what view_parse accepts as
 *    `part=K/N`, with the same K and N;
 *  - view_parse_id accepts 1-19 decimal digits and nothing else, with the
 *    value strtoull gives;
 *  - view_row_range gives a <= b <= R, Python slice clipping for rows and
 *    [floor(K*R/N), floor((K+1)*R/N)) for part (computed here in 128 bits).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/view.h"

#define NAME_MAX_FUZZ 1024

#define FUZZ_NAME "fuzz_view"
#include "tests/fuzz/fuzz.h"

/* Reference integer parser: -?DIGITS within int64. @return 0 or -1. */
static int ref_int(const char *s, size_t len, int64_t *out)
{
	__int128 v = 0;
	size_t i = 0;
	int neg = 0;

	if (len && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == len)
		return -1;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > (__int128)INT64_MAX + 1)
			return -1;
	}
	if (neg)
		v = -v;
	if (v > INT64_MAX || v < INT64_MIN)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Reference unsigned (no sign allowed) within int64. */
static int ref_uint(const char *s, size_t len, int64_t *out)
{
	if (len && s[0] == '-')
		return -1;
	return ref_int(s, len, out);
}

/* The reference parser of view.c's grammar; same contract as view_parse. */
static int ref_parse(const char *name, size_t *base_len, struct view_spec *sp)
{
	const char *at = strrchr(name, '@'), *sfx, *end = name + strlen(name);

	memset(sp, 0, sizeof(*sp));
	*base_len = strlen(name);
	if (!at)
		return 0;
	sfx = at + 1;
	if (strncmp(sfx, "rows=", 5) && strncmp(sfx, "part=", 5) && strcmp(sfx, "meta"))
		return 0;
	*base_len = (size_t)(at - name);
	if (at == name)
		return -ENOENT;
	if (strcmp(sfx, "meta") == 0) {
		sp->kind = VIEW_META;
		return 1;
	}
	if (strncmp(sfx, "rows=", 5) == 0) {
		const char *a = sfx + 5, *colon = memchr(a, ':', (size_t)(end - a));
		if (!colon || memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return -ENOENT;
		sp->kind = VIEW_ROWS;
		sp->has_start = colon > a;
		sp->has_stop = end > colon + 1;
		if (sp->has_start && ref_int(a, (size_t)(colon - a), &sp->start))
			return -ENOENT;
		if (sp->has_stop && ref_int(colon + 1, (size_t)(end - colon - 1), &sp->stop))
			return -ENOENT;
		return 1;
	}
	{
		const char *a = sfx + 5, *slash = memchr(a, '/', (size_t)(end - a));
		int64_t k, n;
		if (!slash) {
			if (ref_uint(a, (size_t)(end - a), &k))
				return -ENOENT;
			sp->kind = VIEW_PARTDIR;
			sp->k = (uint64_t)k;
			return 1;
		}
		if (ref_uint(a, (size_t)(slash - a), &k) ||
		    ref_uint(slash + 1, (size_t)(end - slash - 1), &n) || n < 1 || k >= n)
			return -ENOENT;
		sp->kind = VIEW_PART;
		sp->k = (uint64_t)k;
		sp->n = (uint64_t)n;
		return 1;
	}
}

static int spec_eq(const struct view_spec *a, const struct view_spec *b)
{
	if (a->kind != b->kind)
		return 0;
	switch (a->kind) {
	case VIEW_ROWS:
		return a->has_start == b->has_start && a->has_stop == b->has_stop &&
		       (!a->has_start || a->start == b->start) && (!a->has_stop || a->stop == b->stop);
	case VIEW_PART: return a->k == b->k && a->n == b->n;
	case VIEW_PARTDIR: return a->k == b->k;
	default: return 1;
	}
}

/* Render SP canonically as "x@SUFFIX" into BUF. */
static void render(const struct view_spec *sp, char *buf, size_t cap)
{
	char a[24] = "", b[24] = "";

	switch (sp->kind) {
	case VIEW_ROWS:
		if (sp->has_start)
			snprintf(a, sizeof(a), "%" PRId64, sp->start);
		if (sp->has_stop)
			snprintf(b, sizeof(b), "%" PRId64, sp->stop);
		snprintf(buf, cap, "x@rows=%s:%s", a, b);
		break;
	case VIEW_PART: snprintf(buf, cap, "x@part=%" PRIu64 "/%" PRIu64, sp->k, sp->n); break;
	case VIEW_PARTDIR: snprintf(buf, cap, "x@part=%" PRIu64, sp->k); break;
	case VIEW_META: snprintf(buf, cap, "x@meta"); break;
	default: snprintf(buf, cap, "x"); break;
	}
}

/* Python slice clipping of one bound V over R rows. */
static uint64_t ref_clip(int64_t v, uint64_t r)
{
	__int128 x = v;

	if (x < 0)
		x += (__int128)r;
	if (x < 0)
		x = 0;
	if (x > (__int128)r)
		x = r;
	return (uint64_t)x;
}

static void check_range(const struct view_spec *sp, uint64_t r)
{
	uint64_t a = 0, b = 0, ea, eb;

	if (sp->kind != VIEW_ROWS && sp->kind != VIEW_PART)
		return;
	view_row_range(sp, r, &a, &b);
	REQUIRE(a <= b && b <= r);
	if (sp->kind == VIEW_PART) {
		ea = (uint64_t)((unsigned __int128)sp->k * r / sp->n);
		eb = (uint64_t)((unsigned __int128)(sp->k + 1) * r / sp->n);
	} else {
		ea = sp->has_start ? ref_clip(sp->start, r) : 0;
		eb = sp->has_stop ? ref_clip(sp->stop, r) : r;
		if (eb < ea)
			eb = ea;
	}
	REQUIRE(a == ea && b == eb);
}

static void check_id(const char *s, size_t len)
{
	uint64_t id = 0;
	int rc = view_parse_id(s, len, &id), digits = len >= 1 && len <= 19;

	for (size_t i = 0; digits && i < len; i++)
		digits = s[i] >= '0' && s[i] <= '9';
	REQUIRE(rc == 0 || rc == -ENOENT);
	REQUIRE((rc == 0) == digits);
	if (rc == 0) {
		char tmp[24];
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		REQUIRE(id == strtoull(tmp, NULL, 10));
	}
}

static void check_child(const struct view_spec *dir, const char *child)
{
	struct view_spec got, want;
	char whole[NAME_MAX_FUZZ + 48];
	size_t bl;
	int64_t n = 0;
	int rc, wrc;

	memset(&got, 0x5a, sizeof(got));
	rc = view_part_child(dir, child, &got);
	REQUIRE(rc == 0 || rc == -ENOENT);
	if (dir->kind != VIEW_PARTDIR) {
		REQUIRE(rc == -ENOENT);
		return;
	}
	REQUIRE((rc == 0) == (ref_uint(child, strlen(child), &n) == 0 && n >= 1 &&
			      (uint64_t)n > dir->k));
	if (rc == 0)
		REQUIRE(got.kind == VIEW_PART && got.k == dir->k && got.n == (uint64_t)n);
	if (strchr(child, '@'))
		return;   /* the whole name would be another view */
	snprintf(whole, sizeof(whole), "x@part=%" PRIu64 "/%s", dir->k, child);
	wrc = view_parse(whole, &bl, &want);
	REQUIRE((rc == 0) == (wrc == 1));
	if (rc == 0)
		REQUIRE(spec_eq(&got, &want));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[NAME_MAX_FUZZ + 1], *slash, *child = NULL, canon[96];
	struct view_spec sp, ref, again;
	size_t n, bl = 0, rbl = 0, cbl;
	uint64_t rows = 0;
	int rc, rrc;

	if (size < 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		rows = rows << 8 | data[i];
	data += 8;
	size -= 8;
	n = size < NAME_MAX_FUZZ ? size : NAME_MAX_FUZZ;
	memcpy(name, data, n);
	name[n] = '\0';
	n = strlen(name);
	if ((slash = strchr(name, '/'))) {
		*slash = '\0';
		child = slash + 1;
	}

	rc = view_parse(name, &bl, &sp);
	rrc = ref_parse(name, &rbl, &ref);
	REQUIRE(rc == rrc);
	REQUIRE(bl == rbl);
	REQUIRE(view_name_reserved(name) == (rc != 0));
	if (rc == 0)
		REQUIRE(sp.kind == VIEW_NONE && bl == strlen(name));
	if (rc == 1) {
		REQUIRE(bl >= 1 && name[bl] == '@' && !strchr(name + bl + 1, '@'));
		REQUIRE(spec_eq(&sp, &ref));
		REQUIRE(sp.kind != VIEW_PART || (sp.n >= 1 && sp.k < sp.n));
		render(&sp, canon, sizeof(canon));
		REQUIRE(view_parse(canon, &cbl, &again) == 1 && cbl == 1 && spec_eq(&sp, &again));
		check_range(&sp, rows);
		check_range(&sp, rows % 1000);
	}
	check_id(name, strlen(name));
	check_id(name, bl);
	if (child) {
		if (rc == 1)
			check_child(&sp, child);
		check_id(child, strlen(child));
	}
	return 0;
}
