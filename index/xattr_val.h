/* xattr_val — the payload xattrs as text: which name is which, parsing a
 * setting's value (user.payload.format / .header / .storage) into an
 * inode, and rendering a setting or figure. Pure functions (no store, no
 * index): xattr.c is the caller, tests/fuzz/fuzz_xattr.c fuzzes them. Any
 * thread may call. */
#ifndef PFS_XATTR_VAL_H
#define PFS_XATTR_VAL_H

#include <stddef.h>

#include "index/idx.h"

#define XATTR_PREFIX "user.payload."
#define XATTR_HEADER_MAX 1000000u      /* largest user.payload.header */
#define XATTR_RECSIZE_MAX (1u << 24)   /* largest N of fixed:N */
#define XATTR_SETTING_MAX 63           /* longest setting value accepted */

enum xattr_kind {
	XK_OTHER,      /* any other user.* name: stored as is */
	XK_FORMAT, XK_HEADER, XK_STORAGE,        /* settings */
	XK_ROWS, XK_VERSION, XK_FRAGS, XK_ID,    /* read-only figures */
	XK_BADNS,      /* not in the user.* namespace */
	XK_EMPTY,      /* "user." alone: EINVAL, as ext4 */
};

/* The kind of xattr NAME (NUL-terminated). */
enum xattr_kind xattr_kind_of(const char *name);

/* 1 when K is a read-only figure (rows, version, fragments, id). */
int xattr_is_figure(enum xattr_kind k);

/* Parse the value VAL/LEN (not NUL-terminated; one trailing '\n' is
 * tolerated, as `echo` leaves it) of setting K into IN: format sets
 * fmt_kind, fmt_recsize (and header 0 for fixed), header sets header,
 * storage sets INODE_F_MEMORY; each sets its INODE_F_*_SET flag.
 * Accepted: "lines", "fixed:N" (1 <= N <= XATTR_RECSIZE_MAX, no sign or
 * leading zero); a decimal header 0..XATTR_HEADER_MAX (a fixed object
 * takes only 0); "disk", "memory".
 * @return 0, or -EINVAL (K is not a setting, empty or too long value, a
 * NUL byte inside, or a value outside the above) and IN is unchanged. */
int xattr_parse_setting(enum xattr_kind k, const char *val, size_t len, struct idx_inode *in);

/* Render the value of setting or figure K of IN into BUF (capacity CAP,
 * NUL-terminated when CAP > 0), as getxattr returns it (no NUL, no
 * newline). A rendered setting parses back to the same inode fields.
 * @return the value's length (which may exceed CAP - 1, as snprintf), or
 * -ENODATA when K has no rendered value (XK_OTHER, XK_BADNS). */
int xattr_render(const struct idx_inode *in, enum xattr_kind k, char *buf, size_t cap);

#endif
