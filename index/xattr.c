/* xattr — extended attributes: payload settings (user.payload.format,
 * .header, .storage), read-only figures (.rows .version .fragments .id)
 * and any other user.* attribute, stored in the xattrs db.
 *
 * Invariants:
 *  (1) Settings live in the inode record, never in the xattrs db; figures
 *      are computed; only other user.* names are stored.
 *  (2) Changing the format or storage of a non-empty object re-cuts its
 *      data in one commit (commit.c); a fixed:N format that does not
 *      divide the size is refused (EINVAL) and nothing changes.
 */
#include "index/store_int.h"
#include "index/xattr_val.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define XP XATTR_PREFIX

/* Does inode IN have a value for setting/figure K? */
static int has_value(const struct idx_inode *in, enum xattr_kind k)
{
	if (S_ISREG(in->mode))
		return 1;
	if (!S_ISDIR(in->mode))
		return 0;
	switch (k) {
	case XK_FORMAT: return !!(in->flags & INODE_F_FMT_SET);
	case XK_HEADER: return !!(in->flags & INODE_F_HDR_SET);
	case XK_STORAGE: return !!(in->flags & INODE_F_STORAGE_SET);
	default: return 0;
	}
}

ssize_t store_getxattr(struct store *st, uint64_t ino, const char *name, void *buf, size_t cap)
{
	struct idx_txn *t;
	struct idx_inode in;
	enum xattr_kind k = xattr_kind_of(name);
	char tmp[64];
	const void *v;
	size_t len = 0;
	int rc;

	if (k == XK_BADNS)
		return -ENODATA;
	if (k == XK_EMPTY)
		return -EINVAL;
	if (strlen(name) > IDX_NAME_MAX)
		return -ERANGE;
	/* a pending name's attributes are read from the index (ns.c P1) */
	if (store_pending(st, ino) && (rc = store_pend_flush(st)) != 0)
		return rc;
	rc = idx_begin(st->idx, 1, &t);
	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (!rc && k == XK_OTHER) {
		rc = idx_xattr_get(t, ino, name, &v, &len);
	} else if (!rc) {
		if (!has_value(&in, k))
			rc = -ENODATA;
		else
			len = (size_t)xattr_render(&in, k, tmp, sizeof(tmp));
		v = tmp;
	}
	if (!rc && cap && len > cap)
		rc = -ERANGE;
	if (!rc && cap)
		memcpy(buf, v, len);
	idx_abort(t);
	return rc ? rc : (ssize_t)len;
}

/* A setting on an object whose data must be re-cut (format or storage
 * changed and it holds data): one commit over its whole content. */
static int recut(struct store *st, uint64_t ino, const struct idx_inode *newin)
{
	struct pver *pv;
	struct seg s = { 0 };
	int rc = store_pver_get(st, ino, &pv);

	if (rc)
		return rc;
	s.off = 0;
	s.len = pver_inode(pv)->size;
	s.src = 0;
	s.kind = SEG_BASE;
	rc = commit_segments(st, pv, &s, s.len ? 1 : 0, NULL, newin, store_now_ns(), 0, NULL);
	pver_put(pv);
	return rc;
}

static int set_setting(struct store *st, uint64_t ino, enum xattr_kind k, const void *val, size_t len,
		       int flags)
{
	struct idx_txn *t;
	struct idx_inode in, nin;
	struct nsw w;
	int rc = store_nswbegin(st, &t, 0, &w);

	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (!rc)
		rc = inode_ro(&in);
	if (!rc && !S_ISREG(in.mode) && !S_ISDIR(in.mode))
		rc = -EPERM;
	if (!rc && (flags & XATTR_CREATE) && has_value(&in, k))
		rc = -EEXIST;
	if (!rc && (flags & XATTR_REPLACE) && !has_value(&in, k))
		rc = -ENODATA;
	nin = in;
	if (!rc)
		rc = xattr_parse_setting(k, val, len, &nin);
	if (!rc && S_ISREG(in.mode) && in.size &&
	    (nin.fmt_kind != in.fmt_kind || nin.fmt_recsize != in.fmt_recsize ||
	     (nin.flags & INODE_F_MEMORY) != (in.flags & INODE_F_MEMORY))) {
		/* data must be re-cut: leave this txn, commit separately */
		store_nswend(st, t, w.n ? 0 : -EAGAIN, &w);   /* keeps merged names */
		return recut(st, ino, &nin);
	}
	if (!rc) {
		nin.ctime_ns = store_now_ns();
		rc = idx_inode_put(t, &nin);
	}
	rc = store_nswend(st, t, rc, &w);
	if (!rc)
		store_pvcur_drop(st, ino);
	return rc;
}

struct xroom {
	struct idx_txn *t;
	uint64_t ino;
	const char *skip;       /* the name being set: its old value goes */
	size_t names, bytes;
	int rc;
};

static int xroom_add(void *arg, const char *name)
{
	struct xroom *r = arg;
	const void *v;
	size_t len = 0;

	if (strcmp(name, r->skip) == 0)
		return 0;
	r->rc = idx_xattr_get(r->t, r->ino, name, &v, &len);
	r->names += strlen(name) + 1;
	r->bytes += strlen(name) + 1 + len;
	return r->rc;
}

/* Is there room on inode INO for NAME with a LEN-byte value?
 * @return 0, -ENOSPC (the name list would outgrow what listxattr(2) can
 * return, or the stored bytes STORE_XATTR_TOTAL), or -errno. */
static int xattr_room(struct idx_txn *t, uint64_t ino, const char *name, size_t len)
{
	/* the payload names every object lists, with their NULs */
	struct xroom r = { t, ino, name, 7 * sizeof(XP "fragments"), 0, 0 };
	int rc = idx_xattr_iter(t, ino, xroom_add, &r);

	if (!rc)
		rc = r.rc;
	if (rc)
		return rc;
	r.names += strlen(name) + 1;
	r.bytes += strlen(name) + 1 + len;
	return r.names > STORE_XATTR_LIST_MAX || r.bytes > STORE_XATTR_TOTAL ? -ENOSPC : 0;
}

int store_setxattr(struct store *st, uint64_t ino, const char *name, const void *val,
		   size_t len, int flags)
{
	struct nsw w;
	struct idx_txn *t;
	struct idx_inode in;
	enum xattr_kind k = xattr_kind_of(name);
	const void *old;
	size_t oldlen;
	int rc;

	if (k == XK_BADNS)
		return -ENOTSUP;
	if (k == XK_EMPTY)
		return -EINVAL;
	if (xattr_is_figure(k))
		return -EPERM;
	if (strlen(name) > IDX_NAME_MAX)
		return -ERANGE;
	if (len > STORE_XATTR_MAX)
		return -E2BIG;
	if (k != XK_OTHER)
		return set_setting(st, ino, k, val, len, flags);
	rc = store_nswbegin(st, &t, 0, &w);
	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (!rc)
		rc = inode_ro(&in);
	if (!rc && (flags & (XATTR_CREATE | XATTR_REPLACE))) {
		int have = idx_xattr_get(t, ino, name, &old, &oldlen) == 0;
		if ((flags & XATTR_CREATE) && have)
			rc = -EEXIST;
		if ((flags & XATTR_REPLACE) && !have)
			rc = -ENODATA;
	}
	if (!rc)
		rc = xattr_room(t, ino, name, len);
	if (!rc)
		rc = idx_xattr_put(t, ino, name, val, len);
	if (!rc) {
		in.ctime_ns = store_now_ns();
		rc = idx_inode_put(t, &in);
	}
	return store_nswend(st, t, rc, &w);
}

struct xlist {
	char *buf;
	size_t cap, len;
};

static int xlist_add(void *arg, const char *name)
{
	struct xlist *l = arg;
	size_t n = strlen(name) + 1;

	if (l->cap && l->len + n <= l->cap)
		memcpy(l->buf + l->len, name, n);
	l->len += n;
	return 0;
}

ssize_t store_listxattr(struct store *st, uint64_t ino, char *buf, size_t cap)
{
	static const enum xattr_kind order[] = { XK_FORMAT, XK_HEADER, XK_STORAGE, XK_ROWS, XK_VERSION, XK_FRAGS, XK_ID };
	static const char *const names[] = { XP "format", XP "header", XP "storage", XP "rows",
					     XP "version", XP "fragments", XP "id" };
	struct xlist l = { buf, cap, 0 };
	struct idx_txn *t;
	struct idx_inode in;
	/* a pending name's attributes are read from the index (ns.c P1) */
	int rc = store_pending(st, ino) ? store_pend_flush(st) : 0;

	if (!rc)
		rc = idx_begin(st->idx, 1, &t);

	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	for (size_t i = 0; !rc && i < sizeof(order) / sizeof(order[0]); i++)
		if (has_value(&in, order[i]))
			xlist_add(&l, names[i]);
	if (!rc)
		rc = idx_xattr_iter(t, ino, xlist_add, &l);
	idx_abort(t);
	if (rc)
		return rc;
	if (cap && l.len > cap)
		return -ERANGE;
	return (ssize_t)l.len;
}

int store_removexattr(struct store *st, uint64_t ino, const char *name)
{
	struct nsw w;
	struct idx_txn *t;
	struct idx_inode in;
	enum xattr_kind k = xattr_kind_of(name);
	int rc;

	if (k == XK_BADNS)
		return -ENODATA;
	if (k == XK_EMPTY)
		return -EINVAL;
	if (strlen(name) > IDX_NAME_MAX)
		return -ERANGE;
	if (xattr_is_figure(k))
		return -EPERM;
	rc = store_nswbegin(st, &t, 0, &w);
	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (!rc)
		rc = inode_ro(&in);
	if (!rc && k != XK_OTHER) {
		/* an object always has its settings; a directory forgets its
		 * explicit one */
		if (!S_ISDIR(in.mode))
			rc = S_ISREG(in.mode) ? -EPERM : -ENODATA;
		else if (!has_value(&in, k))
			rc = -ENODATA;
		else
			in.flags &= ~(k == XK_FORMAT ? INODE_F_FMT_SET :
				      k == XK_HEADER ? INODE_F_HDR_SET : INODE_F_STORAGE_SET);
	} else if (!rc) {
		rc = idx_xattr_del(t, ino, name);
	}
	if (!rc) {
		in.ctime_ns = store_now_ns();
		rc = idx_inode_put(t, &in);
	}
	return store_nswend(st, t, rc, &w);
}
