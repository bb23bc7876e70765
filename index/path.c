/* path — resolving a path inside a store to an inode, as the mount would
 * (the one implementation payloadctl and libpayload share): components
 * looked up from the root, "." and "..", symbolic links with relative
 * targets followed (at most STORE_MAXLINKS per path, as Linux; an absolute
 * target names a path of the mount, not of the store: -EXDEV), and the
 * root's synthetic directories .by-id/ID (an object by its id) and
 * .snapshots/NAME (a snapshot's root). View suffixes are not parsed here.
 *
 * Read views (struct store_rview: a batch of lookups, libpayload's
 * payload_get_many):
 *  (R1) A view is one LMDB read txn: every resolve, getattr and inline
 *       read through it sees the index as of the txn's begin — the last
 *       commit of any process before store_rview_begin — and nothing
 *       later. A caller begins a view per call (per batch), so a commit
 *       made by another process before the call is seen by it ("sees new
 *       commits at its next call", payload(3)).
 *  (R2) It answers exactly as store_resolve / store_getattr would at its
 *       txn's begin: same components, links, .by-id and .snapshots. A
 *       store with pending names (ns.c P1: the daemon's deferred creates,
 *       answered before the index and merged into it at any time) gets no
 *       view (store_rview_begin sets NULL) and the plain calls serve, so
 *       a pending name is never missed between the view's snapshot and
 *       its merge.
 *  (R3) The last directory resolved (the path up to its last '/', as
 *       given) is remembered with its inode: a later path of the same
 *       directory (byte for byte) looks up only its last component in
 *       it. Sound because nothing the view reads changes during its txn;
 *       a prefix that does not resolve to a directory is not remembered
 *       (so .by-id/ID and errors take the full walk).
 *  (R4) Pointers into the map never leave the view: inline bytes are
 *       copied out before store_rview_read_inline returns (idx_lmdb.c
 *       (6)), and the view must end on the thread that began it (its
 *       read txn counts among that thread's txns, idx_lmdb.c (5)).
 */
#include "index/store_int.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct store_rview {
	struct store *st;
	struct idx_txn *t;
	char *pfx;              /* (R3): the remembered directory's path, or NULL */
	size_t pfx_len;
	struct idx_inode pdir;  /* ... and its inode */
};

int store_rview_begin(struct store *st, struct store_rview **out)
{
	struct store_rview *v;
	int rc;

	*out = NULL;
	if (st->pend_on)
		return 0;               /* (R2) */
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	rc = idx_begin(st->idx, 1, &v->t);
	if (rc) {
		free(v);
		return rc;
	}
	v->st = st;
	*out = v;
	return 0;
}

void store_rview_end(struct store_rview *v)
{
	if (!v)
		return;
	idx_abort(v->t);
	free(v->pfx);
	free(v);
}

int store_rview_getattr(struct store *st, struct store_rview *v, uint64_t ino, struct idx_inode *out)
{
	return v ? idx_inode_get(v->t, ino, out) : store_getattr(st, ino, out);
}

/* NAME in directory DIR, as store_lookup. */
static int rv_lookup(struct store *st, struct store_rview *v, const struct idx_inode *dir,
		     const char *name, struct idx_inode *out)
{
	uint64_t child;
	int rc;

	if (!v)
		return store_lookup(st, dir->ino, name, out);
	if (strlen(name) > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if (!S_ISDIR(dir->mode))
		return -ENOTDIR;
	rc = idx_dirent_get(v->t, dir->ino, name, &child, NULL);
	if (!rc)
		rc = idx_inode_get(v->t, child, out);
	return rc;
}

#define STORE_MAXLINKS 40

/* Split off the next component of *P (skipping slashes) into NAME.
 * @return its length (0 at the end), -ENAMETOOLONG. *LAST is set when no
 * component follows, *SLASH when a '/' follows it. */
static int next_comp(const char **p, char name[IDX_NAME_MAX + 1], int *last, int *slash)
{
	const char *s = *p, *e;
	size_t len;

	while (*s == '/')
		s++;
	e = strchr(s, '/');
	len = e ? (size_t)(e - s) : strlen(s);
	if (len > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, s, len);
	name[len] = '\0';
	*p = s + len;
	*slash = **p == '/';
	s = *p;
	while (*s == '/')
		s++;
	*last = *s == '\0';
	return (int)len;
}

static int resolve_from(struct store *st, struct store_rview *v, const struct idx_inode *start,
			const char *path, int follow, int *links, struct idx_inode *out)
{
	char name[IDX_NAME_MAX + 1];
	struct idx_inode cur = *start, next;
	const char *p = path;
	int rc = 0;

	while (!rc) {
		int last, slash, len = next_comp(&p, name, &last, &slash);
		if (len <= 0) {
			rc = len;
			break;
		}
		if (!S_ISDIR(cur.mode))
			return -ENOTDIR;
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			rc = store_rview_getattr(st, v, cur.parent ? cur.parent : IDX_ROOT_INO, &cur);
			continue;
		}
		if (cur.ino == IDX_ROOT_INO && strcmp(name, ".by-id") == 0) {
			uint64_t id = 0;
			if (last || (len = next_comp(&p, name, &last, &slash)) <= 0)
				return len < 0 ? len : -ENOENT;
			rc = view_parse_id(name, (size_t)len, &id);
			if (!rc)
				rc = id < IDX_FIRST_INO ? -ENOENT : store_rview_getattr(st, v, id, &next);
			if (!rc && !S_ISREG(next.mode))
				rc = -ENOENT;
		} else if (cur.ino == IDX_ROOT_INO && strcmp(name, ".snapshots") == 0) {
			struct idx_snap s;
			if (last || (len = next_comp(&p, name, &last, &slash)) <= 0)
				return len < 0 ? len : -ENOENT;
			rc = store_snap_lookup(st, name, &s);
			if (!rc)
				rc = store_rview_getattr(st, v, s.first, &next);
		} else {
			rc = rv_lookup(st, v, &cur, name, &next);
		}
		if (rc)
			break;
		if (S_ISLNK(next.mode) && (!last || follow || slash)) {
			char target[4096];
			ssize_t n = store_readlink(st, next.ino, target, sizeof(target));
			if (n < 0)
				return (int)n;
			if (++*links > STORE_MAXLINKS)
				return -ELOOP;
			if (target[0] == '/')
				return -EXDEV;
			rc = resolve_from(st, v, &cur, target, 1, links, &next);
			if (rc)
				return rc;
		}
		if (last && slash && !S_ISDIR(next.mode))
			return -ENOTDIR;
		cur = next;
	}
	if (!rc)
		*out = cur;
	return rc;
}

static int resolve_root(struct store *st, struct store_rview *v, const char *path, int follow,
			struct idx_inode *out)
{
	struct idx_inode root;
	int links = 0, rc = store_rview_getattr(st, v, IDX_ROOT_INO, &root);

	return rc ? rc : resolve_from(st, v, &root, path, follow, &links, out);
}

int store_resolve(struct store *st, const char *path, int follow, struct idx_inode *out)
{
	return resolve_root(st, NULL, path, follow, out);
}

int store_rview_resolve(struct store *st, struct store_rview *v, const char *path, int follow,
			struct idx_inode *out)
{
	const char *slash = v ? strrchr(path, '/') : NULL, *last = slash ? slash + 1 : NULL;
	size_t plen = slash ? (size_t)(slash - path) : 0;
	int links = 0;

	/* (R3): a plain last component of a directory resolved before */
	if (!slash || !*last || strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
		return resolve_root(st, v, path, follow, out);
	if (!v->pfx || v->pfx_len != plen || memcmp(v->pfx, path, plen) != 0) {
		char *dir = strndup(path, plen);
		int rc;

		if (!dir)
			return -ENOMEM;
		free(v->pfx);           /* pdir is overwritten below */
		v->pfx = NULL;
		rc = resolve_root(st, v, dir, 1, &v->pdir);
		if (rc || !S_ISDIR(v->pdir.mode)) {
			free(dir);
			return resolve_root(st, v, path, follow, out);
		}
		v->pfx = dir;
		v->pfx_len = plen;
	}
	return resolve_from(st, v, &v->pdir, last, follow, &links, out);
}

int store_rview_read_inline(struct store_rview *v, const struct idx_inode *in, void *buf,
			    uint64_t off, size_t len)
{
	const void *d;
	size_t have;
	int rc = idx_inline_get(v->t, in->ino, &d, &have);

	if (rc == -ENOENT && in->size == 0)
		rc = 0, have = 0, d = "";
	if (!rc && have != in->size) {
		log_err("object %llu: inline record of %zu bytes for a size of %llu (EIO)",
			(unsigned long long)in->ino, have, (unsigned long long)in->size);
		rc = -EIO;
	}
	if (!rc && (off > have || len > have - off))
		rc = -EINVAL;
	if (!rc && len)
		memcpy(buf, (const char *)d + off, len);
	return rc;
}
