/* fuzz_xattr — libFuzzer harness for the payload xattr values
 * (index/xattr_val.c): xattr_parse_setting, xattr_render, xattr_kind_of.
 *
 * Input: byte 0 picks the setting (format, header, storage, or a
 * non-setting kind), byte 1 the inode the value is set on (lines or
 * fixed:N, header, flags), the rest is the value (any bytes, NULs too).
 * With byte 0 >= 0x80 the rest is an xattr name for xattr_kind_of instead.
 *
 * Properties checked (abort on violation):
 *  - the parser accepts exactly what an independent reference grammar
 *    accepts: "lines" | "fixed:" [1-9][0-9]* (<= 2^24) | DIGITS (<= 10^6;
 *    only 0 on a fixed object) | "disk" | "memory", one trailing '\n'
 *    allowed, at most 63 bytes, no NUL byte anywhere;
 *  - a refused value leaves the inode byte-identical; an accepted one
 *    changes only the fields of its setting, sets its *_SET flag, and sets
 *    them to the reference's values;
 *  - render(parse(v)) parses back (on the original inode) to the same inode
 *    (canonical round trip), and render never overflows its buffer;
 *  - xattr_kind_of: XK_BADNS exactly for names outside "user.", XK_EMPTY
 *    for "user." alone, the seven payload names map to their kinds, every
 *    other user.* name is XK_OTHER.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/xattr_val.h"

#define FUZZ_NAME "fuzz_xattr"
#include "tests/fuzz/fuzz.h"

/* Reference: decimal DIGITS (at least one) of S/LEN, value capped at
 * LIMIT + 1 so it never overflows. @return 0 or -1. */
static int ref_digits(const char *s, size_t len, uint64_t limit, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > limit)
			v = limit + 1;
	}
	*out = v;
	return 0;
}

/* The reference parser: same contract as xattr_parse_setting. */
static int ref_parse(enum xattr_kind k, const char *val, size_t len, struct idx_inode *in)
{
	uint64_t v;

	if (len == 0 || len > XATTR_SETTING_MAX || memchr(val, '\0', len))
		return -EINVAL;
	if (val[len - 1] == '\n')
		len--;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(val, lit, len) == 0)
	switch (k) {
	case XK_FORMAT:
		if (IS("lines")) {
			in->fmt_kind = PFMT_LINES;
			in->fmt_recsize = 0;
		} else if (len > 6 && memcmp(val, "fixed:", 6) == 0 && val[6] != '0' &&
			   ref_digits(val + 6, len - 6, XATTR_RECSIZE_MAX, &v) == 0 &&
			   v >= 1 && v <= XATTR_RECSIZE_MAX) {
			in->fmt_kind = PFMT_FIXED;
			in->fmt_recsize = (uint32_t)v;
			in->header = 0;
		} else {
			return -EINVAL;
		}
		in->flags |= INODE_F_FMT_SET;
		return 0;
	case XK_HEADER:
		if (ref_digits(val, len, XATTR_HEADER_MAX, &v) || v > XATTR_HEADER_MAX ||
		    (in->fmt_kind == PFMT_FIXED && v))
			return -EINVAL;
		in->header = (uint32_t)v;
		in->flags |= INODE_F_HDR_SET;
		return 0;
	case XK_STORAGE:
		if (IS("disk"))
			in->flags &= ~INODE_F_MEMORY;
		else if (IS("memory"))
			in->flags |= INODE_F_MEMORY;
		else
			return -EINVAL;
		in->flags |= INODE_F_STORAGE_SET;
		return 0;
	default:
		return -EINVAL;
	}
#undef IS
}

/* An inode in a state picked by SEL. */
static void make_inode(uint8_t sel, struct idx_inode *in)
{
	memset(in, 0, sizeof(*in));
	in->ino = 16 + sel;
	in->mode = (sel & 1) ? 040755 : 0100644;
	in->size = (uint64_t)sel * 4096;
	in->rows = (uint64_t)sel * 100;
	in->version = sel;
	in->nfrags = sel / 3;
	if (sel & 2) {
		in->fmt_kind = PFMT_FIXED;
		in->fmt_recsize = 1u + (sel >> 2);
	} else {
		in->header = sel >> 4;
	}
	in->flags = (uint32_t)(sel >> 3) & (INODE_F_FMT_SET | INODE_F_HDR_SET | INODE_F_MEMORY |
					    INODE_F_STORAGE_SET);
}

static void check_kind(const char *name)
{
	static const struct { const char *n; enum xattr_kind k; } tab[] = {
		{ "user.payload.format", XK_FORMAT }, { "user.payload.header", XK_HEADER },
		{ "user.payload.storage", XK_STORAGE }, { "user.payload.rows", XK_ROWS },
		{ "user.payload.version", XK_VERSION }, { "user.payload.fragments", XK_FRAGS },
		{ "user.payload.id", XK_ID },
	};
	enum xattr_kind k = xattr_kind_of(name), want = XK_OTHER;

	if (strncmp(name, "user.", 5) != 0)
		want = XK_BADNS;
	else if (name[5] == '\0')
		want = XK_EMPTY;
	for (size_t i = 0; want == XK_OTHER && i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(name, tab[i].n) == 0)
			want = tab[i].k;
	REQUIRE(k == want);
	REQUIRE(xattr_is_figure(k) == (k == XK_ROWS || k == XK_VERSION || k == XK_FRAGS || k == XK_ID));
}

/* Render setting K of IN into a buffer exactly as large as needed, and
 * into a short one, checking the snprintf contract. */
static int render_checked(const struct idx_inode *in, enum xattr_kind k, char *out, size_t cap)
{
	char small[4];
	int n = xattr_render(in, k, out, cap), m = xattr_render(in, k, small, sizeof(small));

	REQUIRE(n == m);
	if (n >= 0) {
		REQUIRE((size_t)n < cap && strlen(out) == (size_t)n);
		REQUIRE(strncmp(small, out, sizeof(small) - 1) == 0 && strlen(small) < sizeof(small));
		REQUIRE(!strchr(out, '\n'));
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* byte 0 picks from these 7 (the seeds depend on the order) */
	static const enum xattr_kind kinds[] = { XK_FORMAT, XK_HEADER, XK_STORAGE, XK_OTHER,
						 XK_ROWS, XK_ID, XK_BADNS };
	struct idx_inode orig, got, want, again;
	const char *val;
	char buf[96];
	enum xattr_kind k;
	size_t len;
	int rc, wrc, n;

	if (size < 2)
		return 0;
	if (data[0] >= 0x80) {
		char name[300];
		size_t m = size - 1 < sizeof(name) - 1 ? size - 1 : sizeof(name) - 1;
		memcpy(name, data + 1, m);
		name[m] = '\0';
		check_kind(name);
		return 0;
	}
	k = kinds[data[0] % (sizeof(kinds) / sizeof(kinds[0]))];
	make_inode(data[1], &orig);
	val = (const char *)data + 2;
	len = size - 2;

	got = want = orig;
	rc = xattr_parse_setting(k, val, len, &got);
	wrc = ref_parse(k, val, len, &want);
	REQUIRE(rc == 0 || rc == -EINVAL);
	REQUIRE(rc == wrc);
	REQUIRE(memcmp(&got, &want, sizeof(got)) == 0);
	if (rc)
		return 0;
	n = render_checked(&got, k, buf, sizeof(buf));
	REQUIRE(n > 0);
	again = orig;
	REQUIRE(xattr_parse_setting(k, buf, (size_t)n, &again) == 0);
	REQUIRE(memcmp(&again, &got, sizeof(got)) == 0);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = render_checked(&got, kinds[i], buf, sizeof(buf));
		REQUIRE(n >= 0 || kinds[i] == XK_OTHER || kinds[i] == XK_BADNS);
	}
	REQUIRE(xattr_render(&got, XK_EMPTY, buf, sizeof(buf)) == -ENODATA);
	return 0;
}
