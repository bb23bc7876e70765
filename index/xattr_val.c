/* xattr_val — see xattr_val.h. */
#include "index/xattr_val.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XP XATTR_PREFIX

enum xattr_kind xattr_kind_of(const char *name)
{
	static const struct { const char *n; enum xattr_kind k; } tab[] = {
		{ XP "format", XK_FORMAT }, { XP "header", XK_HEADER }, { XP "storage", XK_STORAGE },
		{ XP "rows", XK_ROWS }, { XP "version", XK_VERSION }, { XP "fragments", XK_FRAGS },
		{ XP "id", XK_ID },
	};
	if (strncmp(name, "user.", 5) != 0)
		return XK_BADNS;
	if (name[5] == '\0')
		return XK_EMPTY;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(name, tab[i].n) == 0)
			return tab[i].k;
	return XK_OTHER;
}

int xattr_is_figure(enum xattr_kind k)
{
	return k == XK_ROWS || k == XK_VERSION || k == XK_FRAGS || k == XK_ID;
}

int xattr_render(const struct idx_inode *in, enum xattr_kind k, char *buf, size_t cap)
{
	switch (k) {
	case XK_FORMAT:
		return in->fmt_kind == PFMT_FIXED ? snprintf(buf, cap, "fixed:%u", in->fmt_recsize)
						  : snprintf(buf, cap, "lines");
	case XK_HEADER: return snprintf(buf, cap, "%u", in->fmt_kind == PFMT_FIXED ? 0 : in->header);
	case XK_STORAGE: return snprintf(buf, cap, "%s", in->flags & INODE_F_MEMORY ? "memory" : "disk");
	case XK_ROWS: {
		uint64_t h = in->fmt_kind == PFMT_FIXED ? 0 : in->header;
		return snprintf(buf, cap, "%" PRIu64, in->rows > h ? in->rows - h : 0);
	}
	case XK_VERSION: return snprintf(buf, cap, "%" PRIu64, in->version);
	case XK_FRAGS: return snprintf(buf, cap, "%u", in->nfrags);
	case XK_ID: return snprintf(buf, cap, "%" PRIu64, in->ino);
	default: return -ENODATA;
	}
}

int xattr_parse_setting(enum xattr_kind k, const char *val, size_t len, struct idx_inode *in)
{
	char s[XATTR_SETTING_MAX + 1], *end;
	unsigned long v;

	/* a NUL inside would end the C string early: "lines\0junk" is not
	 * "lines" */
	if (len == 0 || len >= sizeof(s) || memchr(val, '\0', len))
		return -EINVAL;
	memcpy(s, val, len);
	s[len] = '\0';
	if (s[len - 1] == '\n')     /* tolerate `echo` style values */
		s[--len] = '\0';
	switch (k) {
	case XK_FORMAT:
		if (strcmp(s, "lines") == 0) {
			in->fmt_kind = PFMT_LINES;
			in->fmt_recsize = 0;
		} else if (strncmp(s, "fixed:", 6) == 0 && s[6] >= '1' && s[6] <= '9') {
			v = strtoul(s + 6, &end, 10);
			if (*end || v == 0 || v > XATTR_RECSIZE_MAX)
				return -EINVAL;
			in->fmt_kind = PFMT_FIXED;
			in->fmt_recsize = (uint32_t)v;
			in->header = 0;
		} else {
			return -EINVAL;
		}
		in->flags |= INODE_F_FMT_SET;
		return 0;
	case XK_HEADER:
		if (s[0] < '0' || s[0] > '9')
			return -EINVAL;
		v = strtoul(s, &end, 10);
		if (*end || v > XATTR_HEADER_MAX)
			return -EINVAL;
		if (in->fmt_kind == PFMT_FIXED && v)
			return -EINVAL;
		in->header = (uint32_t)v;
		in->flags |= INODE_F_HDR_SET;
		return 0;
	case XK_STORAGE:
		if (strcmp(s, "disk") == 0)
			in->flags &= ~INODE_F_MEMORY;
		else if (strcmp(s, "memory") == 0)
			in->flags |= INODE_F_MEMORY;
		else
			return -EINVAL;
		in->flags |= INODE_F_STORAGE_SET;
		return 0;
	default:
		return -EINVAL;
	}
}
