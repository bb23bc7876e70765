/* ops — FUSE low-level operations: translate requests into store calls.
 *
 * Open-file model (DESIGN §4, §5):
 *  (1) Every open handle pins the version it opened (struct fh.pv); reads
 *      of a read-only handle never see later commits.
 *  (2) A handle opened for writing owns a write session (fh.ws): its
 *      writes are staged, invisible to other handles, and committed by
 *      flush (close), fsync or release. Writable handles use direct I/O so
 *      staged bytes never enter the shared page cache.
 *  (3) Read-only handles of objects keep the kernel page cache while the
 *      version is the one the cache was filled from (fn_cache_keep).
 *      This daemon is the only writer of its store (store.c (5)), so it
 *      knows every change: attributes of real inodes are cached for
 *      ATTR_TIMEOUT and every data commit invalidates the inode's
 *      attributes and pages (notify.h: sent by a dedicated thread; the
 *      committing close/fsync waits for it at most NOTIFY_WAIT_MS, so a
 *      notice never deadlocks against a READ holding a page lock). Views are never attribute-cached (their size follows the
 *      object's).
 *  (3a) The page cache and i_size are per inode, not per handle, and any
 *      size change (a writer's direct writes extend i_size in the kernel;
 *      another reader's stat; an O_TRUNC open) can make a page-cache
 *      reader of an older version stop early or get a short read
 *      zero-filled. So by default every read handle uses direct I/O and
 *      reads exactly its version. -o page_cache lets read handles use the
 *      kernel cache (fast re-reads, MAP_SHARED mmap) when no handle of
 *      another version is open (fn_open_read), with that caveat.
 *  (3b) stat reports the committed size, also while an object is open for
 *      writing (fstat carries no handle, so even the writer's own fstat
 *      does; lseek(SEEK_END) and reads on its handle see its content).
 *      Attributes are not cached while writers are open: their direct
 *      writes extend the kernel's size, the next stat corrects it.
 *  (4) Views are resolved on lookup (never listed) and re-resolved against
 *      the current version at every open and getattr.
 */
#include "fs/ops.h"
#include "fs/fnode.h"
#include "fs/notify.h"
#include "index/store.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define ENTRY_TIMEOUT 1.0
#define ATTR_TIMEOUT  1.0
#define IO_BLKSIZE    (128 * 1024)   /* st_blksize: what tools use as their read size */

enum fh_kind { FH_OBJ, FH_VIEW, FH_META };

struct fh {
	enum fh_kind kind;
	struct pver *pv;          /* pinned version (read-only handles) */
	struct wsess *ws;         /* write session, or NULL */
	struct view_map vm;       /* FH_VIEW */
	char *meta;               /* FH_META: the JSON */
	size_t meta_len;
	int append;
	uint64_t ino;             /* FH_OBJ read handles: counted in fn_open_read */
	int counted;
	int failed;               /* a commit failed: close(2) returned its error */
	int writer;               /* FH_OBJ write handle: counted in fn_writer_open */
};

struct dh {
	size_t n;
	struct dent { char *name; uint64_t ino; uint32_t type; } *v;
};

static struct pfs *pfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fh *)(uintptr_t)fi->fh;
}

/* ---- attributes ---- */

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static void fill_stat(const struct idx_inode *in, struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = in->ino;
	s->st_mode = in->mode;
	s->st_nlink = in->nlink;
	s->st_uid = in->uid;
	s->st_gid = in->gid;
	s->st_rdev = in->rdev;
	s->st_size = (off_t)in->size;
	s->st_blksize = IO_BLKSIZE;
	s->st_blocks = (blkcnt_t)((in->size + 511) / 512);
	if (S_ISDIR(in->mode))
		s->st_size = 4096, s->st_blocks = 8;
	ns_to_ts(in->atime_ns, &s->st_atim);
	ns_to_ts(in->mtime_ns, &s->st_mtim);
	ns_to_ts(in->ctime_ns, &s->st_ctim);
}

static void byid_stat(struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = FN_BYID_INO;
	s->st_mode = S_IFDIR | 0555;
	s->st_nlink = 2;
	s->st_size = 4096;
}

/* Size of a view of PV; *META gets the JSON for @meta views. */
static int view_attr(struct pver *pv, const struct view_spec *sp, uint64_t *size,
		     struct view_map *vm, char **meta, size_t *meta_len)
{
	int rc;

	if (sp->kind == VIEW_META) {
		char *m;
		size_t len;
		rc = view_meta_json(pv, &m, &len);
		if (rc)
			return rc;
		*size = len;
		if (meta) {
			*meta = m;
			*meta_len = len;
		} else {
			free(m);
		}
		return 0;
	}
	rc = view_resolve(pv, sp, vm);
	if (!rc)
		*size = view_size(vm);
	return rc;
}

/* Attributes of view INO (object BASE). */
static int view_stat(struct pfs *p, uint64_t ino, const struct fnode_view *v, struct stat *s)
{
	struct pver *pv;
	struct view_map vm;
	uint64_t size = 0;
	int rc = store_pver_get(p->st, v->base, &pv);

	if (rc)
		return rc;
	if (v->spec.kind == VIEW_PARTDIR) {
		fill_stat(pver_inode(pv), s);
		s->st_ino = ino;
		s->st_mode = S_IFDIR | 0555;
		s->st_nlink = 2;
		s->st_size = 4096;
		s->st_blocks = 8;
		pver_put(pv);
		return 0;
	}
	rc = view_attr(pv, &v->spec, &size, &vm, NULL, NULL);
	if (!rc) {
		fill_stat(pver_inode(pv), s);
		s->st_ino = ino;
		s->st_nlink = 1;
		s->st_size = (off_t)size;
		s->st_blocks = (blkcnt_t)((size + 511) / 512);
		if (v->spec.kind != VIEW_ROWS)
			s->st_mode &= ~(mode_t)0222;
	}
	pver_put(pv);
	return rc;
}

static int do_stat(struct pfs *p, uint64_t ino, struct stat *s)
{
	struct idx_inode in;
	struct fnode_view v;
	int rc;

	if (ino == FN_BYID_INO) {
		byid_stat(s);
		return 0;
	}
	if (fn_is_view(ino)) {
		rc = fn_view(ino, &v);
		return rc ? rc : view_stat(p, ino, &v, s);
	}
	rc = store_getattr(p->st, ino, &in);
	if (!rc)
		fill_stat(&in, s);
	return rc;
}

/* ---- lookup ---- */

static void reply_entry_real(fuse_req_t req, const struct idx_inode *in)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (fn_ref_real(in->ino)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e.ino = in->ino;
	e.generation = 1;
	e.entry_timeout = ENTRY_TIMEOUT;
	e.attr_timeout = ATTR_TIMEOUT;
	fill_stat(in, &e.attr);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		fn_forget(in->ino, 1);   /* the request was interrupted */
}

/* Object BASE (regular file) + view suffix NAME@SFX. */
static void lookup_view(fuse_req_t req, uint64_t base, const char *sfx, const struct view_spec *sp)
{
	struct pfs *p = pfs_of(req);
	struct fuse_entry_param e;
	struct fnode_view v = { .base = base, .spec = *sp };
	uint64_t ino;
	int rc;

	memset(&e, 0, sizeof(e));
	if (fn_ref_view(base, sfx, sp, &ino)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = view_stat(p, ino, &v, &e.attr);
	if (rc) {
		fn_forget(ino, 1);
		fuse_reply_err(req, rc == -EISDIR ? ENOENT : -rc);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		fn_forget(ino, 1);
}

/* NAME inside a `NAME@part=K` directory: the view part K of N. */
static void lookup_part(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fnode_view v;
	struct view_spec sp;
	char sfx[64];
	int rc = fn_view(parent, &v);

	if (!rc && v.spec.kind != VIEW_PARTDIR)
		rc = -ENOTDIR;
	if (!rc)
		rc = view_part_child(&v.spec, name, &sp);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	snprintf(sfx, sizeof(sfx), "part=%llu/%llu", (unsigned long long)sp.k, (unsigned long long)sp.n);
	lookup_view(req, v.base, sfx, &sp);
}

static void pfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pfs *p = pfs_of(req);
	struct view_spec sp;
	struct idx_inode in;
	size_t blen;
	int rc, isview;

	if (strlen(name) > IDX_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (parent == FUSE_ROOT_ID && strcmp(name, ".by-id") == 0) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.ino = FN_BYID_INO;
		e.entry_timeout = e.attr_timeout = ENTRY_TIMEOUT;
		byid_stat(&e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	if (fn_is_view(parent)) {
		lookup_part(req, parent, name);
		return;
	}
	isview = view_parse(name, &blen, &sp);
	if (isview < 0) {
		fuse_reply_err(req, -isview);
		return;
	}
	if (parent == FN_BYID_INO) {
		uint64_t id;
		rc = view_parse_id(name, blen, &id);
		if (!rc)
			rc = id < IDX_FIRST_INO ? -ENOENT : store_getattr(p->st, id, &in);
		if (!rc && !S_ISREG(in.mode))
			rc = -ENOENT;
	} else if (isview) {
		char base[IDX_NAME_MAX + 1];
		memcpy(base, name, blen);
		base[blen] = '\0';
		rc = store_lookup(p->st, parent, base, &in);
		if (!rc && !S_ISREG(in.mode))
			rc = -ENOENT;
	} else {
		rc = store_lookup(p->st, parent, name, &in);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (isview)
		lookup_view(req, in.ino, name + blen + 1, &sp);
	else
		reply_entry_real(req, &in);
}

static void pfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct pfs *p = pfs_of(req);

	if (ino != FN_BYID_INO && ino != FUSE_ROOT_ID && fn_forget(ino, nlookup))
		store_forget(p->st, ino);
	fuse_reply_none(req);
}

static void pfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fv)
{
	struct pfs *p = pfs_of(req);

	for (size_t i = 0; i < count; i++)
		if (fv[i].ino != FN_BYID_INO && fv[i].ino != FUSE_ROOT_ID &&
		    fn_forget(fv[i].ino, fv[i].nlookup))
			store_forget(p->st, fv[i].ino);
	fuse_reply_none(req);
}

static void pfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat s;
	int rc = do_stat(pfs_of(req), ino, &s);
	struct fh *h = fi ? fh_of(fi) : NULL;

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (h) {
		/* the kernel passes the handle on reads (size checks): answer
		 * with the handle's own content (staged, or its version) */
		s.st_size = (off_t)(h->ws ? wsess_size(h->ws) :
				    h->kind == FH_VIEW ? view_size(&h->vm) :
				    h->kind == FH_META ? h->meta_len : pver_inode(h->pv)->size);
		s.st_blocks = (blkcnt_t)((s.st_size + 511) / 512);
	}
	fuse_reply_attr(req, &s, fn_is_view(ino) || (h && h->ws) || fn_writers(ino) ? 0 : ATTR_TIMEOUT);
}

/* ---- setattr ---- */

static int set_size(struct pfs *p, fuse_ino_t ino, struct fh *h, uint64_t size)
{
	struct fnode_view v;
	int rc;

	if (h && h->ws) {
		return wsess_truncate(h->ws, size);
	}
	if (!fn_is_view(ino))
		return store_truncate(p->st, ino, NULL, size);
	rc = fn_view(ino, &v);
	return rc ? rc : store_truncate(p->st, v.base, &v.spec, size);
}

static void pfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct pfs *p = pfs_of(req);
	struct fh *h = fi ? fh_of(fi) : NULL;
	struct idx_inode a;
	unsigned mask = 0;
	int rc = 0;

	if (p->rdonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (ino == FN_BYID_INO || (fn_is_view(ino) && (to_set & ~(FUSE_SET_ATTR_SIZE)))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		rc = set_size(p, ino, h, (uint64_t)attr->st_size);
		if (!rc && !(h && h->ws) && fn_is_view(ino)) {
			struct fnode_view v;
			if (fn_view(ino, &v) == 0)
				notify_inval(v.base);
		}
	}
	memset(&a, 0, sizeof(a));
	if (to_set & FUSE_SET_ATTR_MODE)
		mask |= STORE_SET_MODE, a.mode = attr->st_mode;
	if (to_set & FUSE_SET_ATTR_UID)
		mask |= STORE_SET_UID, a.uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		mask |= STORE_SET_GID, a.gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		mask |= STORE_SET_ATIME, a.atime_ns = store_now_ns();
	else if (to_set & FUSE_SET_ATTR_ATIME)
		mask |= STORE_SET_ATIME,
		a.atime_ns = (int64_t)attr->st_atim.tv_sec * 1000000000 + attr->st_atim.tv_nsec;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		mask |= STORE_SET_MTIME, a.mtime_ns = store_now_ns();
	else if (to_set & FUSE_SET_ATTR_MTIME)
		mask |= STORE_SET_MTIME,
		a.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
	if (!rc && (mask || (to_set & FUSE_SET_ATTR_CTIME)) && !fn_is_view(ino))
		rc = store_setattr(p->st, ino, &a, mask, NULL);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	pfs_getattr(req, ino, fi);
}

/* ---- namespace changes ---- */

static void pfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct idx_inode in;
	int rc = parent == FN_BYID_INO || fn_is_view(parent) ? -EPERM :
		 store_mknod(p->st, parent, name, mode, rdev, c->uid, c->gid, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry_real(req, &in);
}

static void pfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct idx_inode in;
	int rc = parent == FN_BYID_INO || fn_is_view(parent) ? -EPERM :
		 store_mkdir(p->st, parent, name, mode, c->uid, c->gid, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry_real(req, &in);
}

static void pfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct idx_inode in;
	int rc = parent == FN_BYID_INO || fn_is_view(parent) ? -EPERM :
		 store_symlink(p->st, parent, name, link, c->uid, c->gid, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry_real(req, &in);
}

static void pfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	ssize_t n = fn_is_view(ino) || ino == FN_BYID_INO ? -EINVAL :
		    store_readlink(pfs_of(req)->st, ino, buf, sizeof(buf));

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_readlink(req, buf);
}

static void pfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct idx_inode in;
	int rc = fn_is_view(ino) || ino == FN_BYID_INO || newparent == FN_BYID_INO ? -EPERM :
		 store_link(pfs_of(req)->st, ino, newparent, newname, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry_real(req, &in);
}

static void pfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc = parent == FN_BYID_INO ? -EPERM :
		 view_name_reserved(name) ? -EPERM : store_unlink(pfs_of(req)->st, parent, name);

	fuse_reply_err(req, -rc);
}

static void pfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc = parent == FN_BYID_INO ? -EPERM :
		 (parent == FUSE_ROOT_ID && strcmp(name, ".by-id") == 0) ? -EBUSY :
		 store_rmdir(pfs_of(req)->st, parent, name);

	fuse_reply_err(req, -rc);
}

static void pfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	int rc;

	if (parent == FN_BYID_INO || newparent == FN_BYID_INO)
		rc = -EPERM;
	else if (view_name_reserved(name))
		rc = -EINVAL;
	else
		rc = store_rename(pfs_of(req)->st, parent, name, newparent, newname, flags);
	fuse_reply_err(req, -rc);
}

/* ---- files ---- */

static void fh_free(struct fh *h)
{
	if (!h)
		return;
	if (h->counted)
		fn_close_read(h->ino, pver_inode(h->pv)->version);
	if (h->writer)
		fn_writer_close(h->ino);
	wsess_free(h->ws);
	pver_put(h->pv);
	free(h->meta);
	free(h);
}

/* Open object or view INO with FLAGS into a new handle. */
static int fh_open(struct pfs *p, fuse_ino_t ino, int flags, struct fh **out, int *keep, int *direct)
{
	struct fh *h = calloc(1, sizeof(*h));
	int wr = (flags & O_ACCMODE) != O_RDONLY, trunc = wr && (flags & O_TRUNC);
	struct fnode_view v = { .base = ino };
	uint64_t size;
	int rc = 0;

	*out = NULL;
	*keep = 0;
	*direct = 0;
	if (!h)
		return -ENOMEM;
	h->append = !!(flags & O_APPEND);
	if (fn_is_view(ino) && (rc = fn_view(ino, &v)) == 0)
		h->kind = v.spec.kind == VIEW_META ? FH_META : FH_VIEW;
	if (!rc && v.spec.kind == VIEW_PARTDIR)
		rc = -EISDIR;
	if (!rc && wr && (p->rdonly || h->kind == FH_META || (h->kind == FH_VIEW && v.spec.kind != VIEW_ROWS)))
		rc = -EROFS;
	if (!rc)
		rc = store_pver_get(p->st, v.base, &h->pv);
	if (!rc && wr)
		rc = store_wsess_begin(p->st, h->pv, h->kind == FH_VIEW ? &v.spec : NULL, trunc, &h->ws);
	if (!rc && wr && h->kind == FH_OBJ) {
		h->ino = ino;
		h->writer = 1;
		fn_writer_open(ino);
	}
	else if (!rc && h->kind != FH_OBJ)
		rc = view_attr(h->pv, &v.spec, &size, &h->vm, &h->meta, &h->meta_len);
	else if (!rc) {
		uint64_t ver = pver_inode(h->pv)->version;
		h->ino = ino;
		h->counted = 1;
		*direct = fn_open_read(ino, ver) || !p->page_cache;
		if (!*direct)
			*keep = fn_cache_keep(ino, ver);
	}
	if (!rc && (h->ws || h->kind != FH_OBJ))
		*direct = 1;   /* staged bytes and views never enter the page cache */
	if (rc == -EISDIR && fn_is_view(ino))
		rc = -ENOENT;
	if (rc) {
		fh_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

static void pfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h;
	int keep, direct, rc;

	if (ino == FN_BYID_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	rc = fh_open(pfs_of(req), ino, fi->flags, &h, &keep, &direct);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = direct;
	fi->keep_cache = keep;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_free(h);
}

static void pfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct idx_inode in;
	struct fh *h;
	int keep, direct, rc;

	if (parent == FN_BYID_INO || fn_is_view(parent)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = store_mknod(p->st, parent, name, S_IFREG | (mode & 07777), 0, c->uid, c->gid, &in);
	if (!rc && (rc = fn_ref_real(in.ino)) == 0) {
		rc = fh_open(p, in.ino, fi->flags, &h, &keep, &direct);
		if (rc)
			fn_forget(in.ino, 1);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = in.ino;
	e.generation = 1;
	e.entry_timeout = ENTRY_TIMEOUT;
	e.attr_timeout = ATTR_TIMEOUT;
	fill_stat(&in, &e.attr);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = direct;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		fh_free(h);
		fn_forget(in.ino, 1);
	}
}

static void pfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (h->ws)
		n = wsess_read(h->ws, buf, size, (uint64_t)off);
	else if (h->kind == FH_META)
		n = (uint64_t)off >= h->meta_len ? 0 :
		    (ssize_t)(size < h->meta_len - (size_t)off ? size : h->meta_len - (size_t)off);
	else if (h->kind == FH_VIEW)
		n = view_read(h->pv, &h->vm, buf, size, (uint64_t)off);
	else
		n = pver_read(h->pv, buf, size, (uint64_t)off);
	if (n > 0 && h->kind == FH_META && !h->ws)
		memcpy(buf, h->meta + off, (size_t)n);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int rc;

	(void)ino;
	if (!h->ws) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (h->append)
		off = (off_t)wsess_size(h->ws);
	rc = wsess_write(h->ws, buf, size, (uint64_t)off);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/* Commit a dirty handle, then drop the kernel's attributes and pages of
 * the object (its size, mtime and bytes changed). */
static int commit_handle(struct pfs *p, struct fh *h)
{
	int rc;

	if (!h->ws || !wsess_dirty(h->ws))
		return 0;
	rc = wsess_commit(h->ws);
	h->failed = rc != 0;
	if (!rc)
		notify_inval(pver_inode(wsess_base(h->ws))->ino);
	(void)p;
	return rc;
}

static void pfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -commit_handle(pfs_of(req), fh_of(fi)));
}

static void pfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	fuse_reply_err(req, -commit_handle(pfs_of(req), fh_of(fi)));
}

/* Every close(2) flushes (and commits) before release; what is still dirty
 * here after a failed commit was refused to the application and is
 * discarded — never committed behind its back. */
static void pfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int rc = 0;

	if (h->ws && wsess_dirty(h->ws) && h->failed)
		log_warn("object %llu: discarding writes whose commit failed at close", (unsigned long long)ino);
	else
		rc = commit_handle(pfs_of(req), h);
	if (rc)
		log_err("object %llu: commit at release failed: %s", (unsigned long long)ino, strerror(-rc));
	fh_free(h);
	fuse_reply_err(req, 0);
}

/* ---- directories ---- */

static int dh_add(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct dh *d = arg;
	struct dent *v;

	if (!(d->n & (d->n + 1)) || d->n == 0) {
		v = realloc(d->v, (d->n * 2 + 2) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
	}
	if (!(d->v[d->n].name = strdup(name)))
		return -ENOMEM;
	d->v[d->n].ino = child;
	d->v[d->n].type = type;
	d->n++;
	return 0;
}

static void dh_free(struct dh *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d);
}

static void pfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dh *d = calloc(1, sizeof(*d));
	int rc = d ? 0 : -ENOMEM;

	if (!rc && fn_is_view(ino)) {
		struct fnode_view v;
		rc = fn_view(ino, &v);
		if (!rc && v.spec.kind != VIEW_PARTDIR)
			rc = -ENOTDIR;
	}
	if (!rc)
		rc = dh_add(d, ".", ino, S_IFDIR);
	if (!rc)
		rc = dh_add(d, "..", ino, S_IFDIR);   /* the kernel fixes up ".." */
	if (!rc && ino != FN_BYID_INO && !fn_is_view(ino))
		rc = store_readdir(pfs_of(req)->st, ino, NULL, dh_add, d);
	if (rc) {
		dh_free(d);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dh_free(d);
}

static void pfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dh *d = (struct dh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat s = { .st_ino = d->v[i].ino, .st_mode = d->v[i].type };
		size_t n = fuse_add_direntry(req, buf + used, size - used, d->v[i].name, &s, (off_t)i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dh_free((struct dh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void pfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino; (void)datasync; (void)fi;
	fuse_reply_err(req, 0);    /* every namespace change is already a durable txn */
}

static void pfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs s;
	int rc = store_statfs(pfs_of(req)->st, &s);

	(void)ino;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &s);
}

/* ---- xattrs ---- */

static int xattr_target(fuse_ino_t ino)
{
	return ino != FN_BYID_INO && !fn_is_view(ino);
}

static void pfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	int rc = pfs_of(req)->rdonly ? -EROFS :
		 xattr_target(ino) ? store_setxattr(pfs_of(req)->st, ino, name, value, size, flags) : -EPERM;

	fuse_reply_err(req, -rc);
}

static void pfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = NULL;
	ssize_t n;

	if (!xattr_target(ino)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = store_getxattr(pfs_of(req)->st, ino, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ssize_t n;

	if (!xattr_target(ino)) {
		if (size)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_xattr(req, 0);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = store_listxattr(pfs_of(req)->st, ino, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int rc = pfs_of(req)->rdonly ? -EROFS :
		 xattr_target(ino) ? store_removexattr(pfs_of(req)->st, ino, name) : -EPERM;

	fuse_reply_err(req, -rc);
}

/* ---- session ---- */

static void pfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

const struct fuse_lowlevel_ops pfs_ops = {
	.init = pfs_init,
	.lookup = pfs_lookup,
	.forget = pfs_forget,
	.forget_multi = pfs_forget_multi,
	.getattr = pfs_getattr,
	.setattr = pfs_setattr,
	.readlink = pfs_readlink,
	.mknod = pfs_mknod,
	.mkdir = pfs_mkdir,
	.unlink = pfs_unlink,
	.rmdir = pfs_rmdir,
	.symlink = pfs_symlink,
	.rename = pfs_rename,
	.link = pfs_link,
	.open = pfs_open,
	.create = pfs_create,
	.read = pfs_read,
	.write = pfs_write,
	.flush = pfs_flush,
	.release = pfs_release,
	.fsync = pfs_fsync,
	.opendir = pfs_opendir,
	.readdir = pfs_readdir,
	.releasedir = pfs_releasedir,
	.fsyncdir = pfs_fsyncdir,
	.statfs = pfs_statfs,
	.setxattr = pfs_setxattr,
	.getxattr = pfs_getxattr,
	.listxattr = pfs_listxattr,
	.removexattr = pfs_removexattr,
};
