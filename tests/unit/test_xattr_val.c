/* test_xattr_val — the payload xattr values (index/xattr_val.c) without a
 * store: which names are settings, figures, other user.* names or outside
 * the namespace; every accepted and refused value of user.payload.format,
 * .header and .storage (with the one tolerated trailing newline, and the
 * NUL-inside regression found by fuzz_xattr), that a refused value leaves
 * the inode untouched, and that every rendered setting parses back to the
 * same inode. Pure functions: no store needed. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "index/xattr_val.h"
#include "tests/unit/tap.h"

static struct idx_inode lines_file(void)
{
	struct idx_inode in = { .ino = 20, .mode = S_IFREG | 0644, .fmt_kind = PFMT_LINES, .header = 1,
				.rows = 11, .version = 4, .nfrags = 2 };
	return in;
}

/* Parse VAL/LEN as setting K on a copy of IN. @return the parser's rc; the
 * copy in *OUT. */
static int parse(enum xattr_kind k, const char *val, size_t len, const struct idx_inode *in,
		 struct idx_inode *out)
{
	*out = *in;
	return xattr_parse_setting(k, val, len, out);
}

#define S(lit) lit, sizeof(lit) - 1

static void test_kinds(void)
{
	CHECK_EQ(xattr_kind_of("user.payload.format"), XK_FORMAT, "user.payload.format is the format setting");
	CHECK_EQ(xattr_kind_of("user.payload.header"), XK_HEADER, "user.payload.header");
	CHECK_EQ(xattr_kind_of("user.payload.storage"), XK_STORAGE, "user.payload.storage");
	CHECK(xattr_kind_of("user.payload.rows") == XK_ROWS && xattr_kind_of("user.payload.version") == XK_VERSION &&
	      xattr_kind_of("user.payload.fragments") == XK_FRAGS && xattr_kind_of("user.payload.id") == XK_ID,
	      "the four figures");
	CHECK(xattr_is_figure(XK_ROWS) && xattr_is_figure(XK_ID) && !xattr_is_figure(XK_FORMAT) &&
	      !xattr_is_figure(XK_OTHER), "figures are the read-only kinds only");
	CHECK_EQ(xattr_kind_of("user.payload.Format"), XK_OTHER, "names are case-sensitive: another user.* name");
	CHECK_EQ(xattr_kind_of("user.payload."), XK_OTHER, "user.payload. alone is another user.* name");
	CHECK_EQ(xattr_kind_of("user.tag"), XK_OTHER, "user.tag");
	CHECK_EQ(xattr_kind_of("trusted.payload.format"), XK_BADNS, "trusted.*: outside the namespace");
	CHECK_EQ(xattr_kind_of("user"), XK_BADNS, "\"user\" without the dot: outside");
	CHECK_EQ(xattr_kind_of("user."), XK_EMPTY, "\"user.\" alone: XK_EMPTY (EINVAL, as ext4)");
}

static void test_format(void)
{
	struct idx_inode in = lines_file(), out;

	CHECK(parse(XK_FORMAT, S("fixed:16"), &in, &out) == 0 && out.fmt_kind == PFMT_FIXED &&
	      out.fmt_recsize == 16 && out.header == 0 && (out.flags & INODE_F_FMT_SET),
	      "fixed:16: fixed, N 16, header 0, FMT_SET");
	CHECK(parse(XK_FORMAT, S("fixed:16\n"), &in, &out) == 0 && out.fmt_recsize == 16,
	      "one trailing newline is tolerated");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:16\n\n"), &in, &out), -EINVAL, "two newlines: -EINVAL");
	CHECK(parse(XK_FORMAT, S("fixed:16777216"), &in, &out) == 0 && out.fmt_recsize == 1u << 24,
	      "fixed:2^24 is the largest");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:16777217"), &in, &out), -EINVAL, "fixed:2^24+1: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:99999999999999999999999"), &in, &out), -EINVAL,
		 "fixed: with an overflowing number: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:0"), &in, &out), -EINVAL, "fixed:0: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:08"), &in, &out), -EINVAL, "a leading zero: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:+8"), &in, &out), -EINVAL, "a sign: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("fixed: 8"), &in, &out), -EINVAL, "a space: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:8x"), &in, &out), -EINVAL, "trailing junk: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:"), &in, &out), -EINVAL, "fixed: without N: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, S("Lines"), &in, &out), -EINVAL, "values are case-sensitive: -EINVAL");
	CHECK_EQ(parse(XK_FORMAT, "", 0, &in, &out), -EINVAL, "an empty value: -EINVAL");
	CHECK(parse(XK_FORMAT, S("lines"), &in, &out) == 0 && out.fmt_kind == PFMT_LINES &&
	      out.fmt_recsize == 0 && out.header == 1, "lines keeps the header");
	/* found by fuzz_xattr: what followed a NUL was ignored */
	CHECK_EQ(parse(XK_FORMAT, S("lines\0junk"), &in, &out), -EINVAL, "lines\\0junk: -EINVAL (not lines)");
	CHECK_EQ(parse(XK_FORMAT, S("fixed:8\0"), &in, &out), -EINVAL, "fixed:8\\0: -EINVAL");
	{
		char big[80];
		memset(big, '1', sizeof(big));
		memcpy(big, "fixed:", 6);
		CHECK_EQ(parse(XK_FORMAT, big, XATTR_SETTING_MAX + 1, &in, &out), -EINVAL,
			 "a %d-byte value: -EINVAL", XATTR_SETTING_MAX + 1);
	}
}

static void test_header_storage(void)
{
	struct idx_inode in = lines_file(), fixed = lines_file(), out, before;

	fixed.fmt_kind = PFMT_FIXED;
	fixed.fmt_recsize = 8;
	fixed.header = 0;
	CHECK(parse(XK_HEADER, S("0"), &in, &out) == 0 && out.header == 0 && (out.flags & INODE_F_HDR_SET),
	      "header 0: HDR_SET");
	CHECK(parse(XK_HEADER, S("1000000\n"), &in, &out) == 0 && out.header == 1000000, "header 10^6 is the largest");
	CHECK_EQ(parse(XK_HEADER, S("1000001"), &in, &out), -EINVAL, "header 10^6+1: -EINVAL");
	CHECK_EQ(parse(XK_HEADER, S("-1"), &in, &out), -EINVAL, "a negative header: -EINVAL");
	CHECK_EQ(parse(XK_HEADER, S(" 1"), &in, &out), -EINVAL, "a leading space: -EINVAL");
	CHECK_EQ(parse(XK_HEADER, S("2\0"), &in, &out), -EINVAL, "2\\0: -EINVAL");
	CHECK_EQ(parse(XK_HEADER, S("55555\0\0\0\0"), &in, &out), -EINVAL,
		 "the fuzz_xattr reproducer 55555\\0\\0\\0\\0: -EINVAL");
	CHECK_EQ(parse(XK_HEADER, S("1"), &fixed, &out), -EINVAL, "header 1 on a fixed object: -EINVAL");
	CHECK(parse(XK_HEADER, S("0"), &fixed, &out) == 0, "header 0 on a fixed object");
	CHECK(parse(XK_STORAGE, S("memory\n"), &in, &out) == 0 && (out.flags & INODE_F_MEMORY) &&
	      (out.flags & INODE_F_STORAGE_SET), "storage memory");
	before = out;
	CHECK(xattr_parse_setting(XK_STORAGE, S("disk"), &out) == 0 && !(out.flags & INODE_F_MEMORY) &&
	      (out.flags & INODE_F_STORAGE_SET), "storage disk clears MEMORY");
	CHECK_EQ(parse(XK_STORAGE, S("ram"), &before, &out), -EINVAL, "storage ram: -EINVAL");
	CHECK(memcmp(&out, &before, sizeof(out)) == 0, "a refused value leaves the inode unchanged");
	CHECK_EQ(parse(XK_ROWS, S("5"), &in, &out), -EINVAL, "a figure is no setting: -EINVAL");
	CHECK_EQ(parse(XK_OTHER, S("5"), &in, &out), -EINVAL, "another name is no setting: -EINVAL");
}

static void test_render(void)
{
	static const enum xattr_kind settings[] = { XK_FORMAT, XK_HEADER, XK_STORAGE };
	struct idx_inode in = lines_file(), f = lines_file(), back;
	char buf[64];
	int ok = 1, n;

	CHECK(xattr_render(&in, XK_ROWS, buf, sizeof(buf)) == 2 && strcmp(buf, "10") == 0,
	      "rows are data rows: 11 rows with 1 header row render as 10");
	CHECK(xattr_render(&in, XK_ID, buf, sizeof(buf)) == 2 && strcmp(buf, "20") == 0, "id");
	CHECK(xattr_render(&in, XK_VERSION, buf, sizeof(buf)) == 1 && strcmp(buf, "4") == 0, "version");
	CHECK(xattr_render(&in, XK_FRAGS, buf, sizeof(buf)) == 1 && strcmp(buf, "2") == 0, "fragments");
	CHECK_EQ(xattr_render(&in, XK_OTHER, buf, sizeof(buf)), -ENODATA, "another name renders nothing: -ENODATA");
	f.fmt_kind = PFMT_FIXED;
	f.fmt_recsize = 4096;
	f.flags = INODE_F_MEMORY;
	CHECK(xattr_render(&f, XK_FORMAT, buf, sizeof(buf)) == 10 && strcmp(buf, "fixed:4096") == 0, "fixed:4096");
	CHECK(xattr_render(&f, XK_HEADER, buf, 2) == 1 && strcmp(buf, "0") == 0, "a fixed object's header is 0");
	CHECK(xattr_render(&f, XK_FORMAT, buf, 4) == 10 && strcmp(buf, "fix") == 0,
	      "a short buffer: truncated and terminated, full length returned");
	for (int which = 0; which < 2; which++) {
		const struct idx_inode *src = which ? &f : &in;
		for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
			n = xattr_render(src, settings[i], buf, sizeof(buf));
			back = *src;
			ok &= n > 0 && xattr_parse_setting(settings[i], buf, (size_t)n, &back) == 0;
			ok &= back.fmt_kind == src->fmt_kind && back.fmt_recsize == src->fmt_recsize &&
			      (back.flags & INODE_F_MEMORY) == (src->flags & INODE_F_MEMORY);
		}
	}
	CHECK(ok, "every rendered setting parses back to the same settings");
}

int main(void)
{
	test_kinds();
	test_format();
	test_header_storage();
	test_render();
	return tap_done();
}
