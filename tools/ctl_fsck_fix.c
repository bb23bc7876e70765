/* ctl_fsck_fix — `fsck --repair`, carrying out the plan of
 * ctl_fsck_plan*.c on a store opened read-write (its exclusive lock held,
 * so the snapshot is the store).
 *
 * Order (each step only after the one before succeeded):
 *  (1) One index write txn: lost+found, entries, fragment records, inode
 *      records, inline records, orphan marks, xattrs of lost objects,
 *      reference counts recounted from the final records, counters. It
 *      commits whole or not at all.
 *  (2) Fragment images no final reference count names are deleted (the
 *      dropped damaged ones, and leftovers of interrupted commits); staging
 *      files are deleted. On a RADOS store only while no follower may
 *      still read one of them (store_unref_delete_ok): else they are kept
 *      (said), for gc or a sweep later.
 *  (3) Objects that were fixed:N and became lines are re-cut: their
 *      bytes are read and committed again through the store API, like a
 *      daemon commit (new fragments, then one txn).
 * A crash between the steps leaves a consistent index; what (2) did not
 * delete the next mount sweeps, and a new --repair redoes (3).
 */
#include "tools/ctl_fsck.h"
#include "cache/backend.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LF_NAME "lost+found"

static int fix_lf(struct fsck *f, struct idx_txn *t)
{
	struct fk_ino *root = fk_find(f, IDX_ROOT_INO);
	struct idx_inode in;
	int rc;

	if (!f->lf_new)
		return 0;
	memset(&in, 0, sizeof(in));
	in.ino = f->lf;
	in.mode = S_IFDIR | 0700;
	in.uid = root->in.uid;
	in.gid = root->in.gid;
	in.nlink = 2 + f->lf_subdirs;
	in.parent = IDX_ROOT_INO;
	in.atime_ns = in.mtime_ns = in.ctime_ns = store_now_ns();
	rc = idx_inode_put(t, &in);
	if (!rc)
		rc = idx_dirent_put(t, IDX_ROOT_INO, LF_NAME, f->lf, S_IFDIR);
	return rc;
}

static int fix_dirents(struct fsck *f, struct idx_txn *t)
{
	int rc = 0;

	for (size_t i = 0; i < f->ndirents && !rc; i++) {
		const struct fk_dirent *e = &f->dirents[i];
		if (e->added && !e->drop)
			rc = idx_dirent_put(t, e->parent, e->name, e->child, e->type);
		else if (e->drop && !e->added)
			rc = idx_dirent_del(t, e->parent, e->name);
		else if (e->retype && !e->drop)
			rc = idx_dirent_put(t, e->parent, e->name, e->child, e->type);
	}
	return rc;
}

/* Rewrite the fragment records of R: delete them all, put the kept ones
 * at their new offsets. */
static int fix_records(struct fsck *f, struct idx_txn *t, const struct fk_ino *r)
{
	int rc = 0;

	for (uint32_t k = 0; k < r->fn && !rc; k++)
		rc = idx_frag_del(t, r->in.ino, f->frags[r->f0 + k].d.off);
	for (uint32_t k = 0; k < r->fn && !rc && !r->destroy; k++) {
		const struct fk_frag *fr = &f->frags[r->f0 + k];
		struct frag_desc d = fr->d;
		if (fr->drop)
			continue;
		d.off = fr->noff;
		d.first_row = fr->nrow;
		d.rows = fr->nrows;
		d.flags = fr->nflags;
		rc = idx_frag_put(t, r->in.ino, &d);
		/* a row index holds for one FRAG_F_CONT (rowidx.c (1)) */
		if (!rc && ((fr->d.flags ^ fr->nflags) & FRAG_F_CONT))
			rc = idx_rowidx_del(t, d.id);
	}
	return rc;
}

static int lost_xattrs(struct idx_txn *t, const struct fk_ino *r)
{
	const char *why = r->dropped ? r->dropped : "nothing: it was in no directory";
	int rc = 0;

	if (r->origin)
		rc = idx_xattr_put(t, r->in.ino, "user.fsck.path", r->origin, strlen(r->origin));
	if (!rc)
		rc = idx_xattr_put(t, r->in.ino, "user.fsck.lost", why, strlen(why));
	return rc;
}

static int fix_inode(struct fsck *f, struct idx_txn *t, struct fk_ino *r)
{
	int records = r->data_changed || r->destroy, rc = 0;

	for (uint32_t k = 0; k < r->fn && !records; k++)
		records = f->frags[r->f0 + k].drop;
	if (records)
		rc = fix_records(f, t, r);
	if (r->destroy) {
		if (!rc)
			rc = idx_inline_del(t, r->in.ino);
		if (!rc)
			rc = idx_xattr_del_all(t, r->in.ino);
		if (!rc)
			rc = idx_inode_del(t, r->in.ino);
		if (!rc && r->orphan)
			rc = idx_orphan_del(t, r->in.ino);
		return rc;
	}
	if (!rc && r->drop_inline)
		rc = idx_inline_del(t, r->in.ino);
	if (!rc && r->unorphan)
		rc = idx_orphan_del(t, r->in.ino);
	if (!rc && r->lost)
		rc = lost_xattrs(t, r);
	if (!rc && memcmp(&r->nin, &r->in, sizeof(r->in)) != 0) {
		r->nin.ctime_ns = store_now_ns();
		rc = idx_inode_put(t, &r->nin);
	}
	return rc;
}

static int fix_inodes(struct fsck *f, struct idx_txn *t)
{
	int rc = 0;

	for (size_t i = 0; i < f->nfrags && !rc; i++)   /* records of missing inodes */
		if (!fk_find(f, f->frags[i].ino))
			rc = idx_frag_del(t, f->frags[i].ino, f->frags[i].d.off);
	for (size_t i = 0; i < f->ninos && !rc; i++)
		rc = fix_inode(f, t, &f->inos[i]);
	return rc;
}

/* Records naming byid[I..E) that survive the repair. */
static uint32_t kept_in_run(struct fsck *f, size_t i, size_t e)
{
	uint32_t n = 0;

	for (; i < e; i++) {
		const struct fk_frag *fr = &f->frags[f->byid[i]];
		const struct fk_ino *r = fk_find(f, fr->ino);
		n += !fr->drop && r && !r->destroy;
	}
	return n;
}

/* Set the count of ID from HAVE to WANT (a repair line when that is not
 * just the count of records the repair dropped). */
static int set_ref(struct fsck *f, struct idx_txn *t, uint64_t id, uint32_t have, uint32_t want,
		   uint32_t records)
{
	uint32_t now;

	if (have == want)
		return 0;
	if (have != records)
		fk_action(f, 0, "fragment %016llx: reference count set to %" PRIu32 " (was %" PRIu32 ")",
			  (unsigned long long)id, want, have);
	return idx_ref_add(t, id, (int)want - (int)have, &now);
}

/* Every reference count becomes the number of surviving records; the ids
 * still referenced go to LIVE (sorted, malloc'd, *NLIVE). */
static int fix_refs(struct fsck *f, struct idx_txn *t, uint64_t **live, size_t *nlive)
{
	size_t i = 0, n = 0;
	int rc = 0;

	*live = malloc((f->nfrags ? f->nfrags : 1) * sizeof(**live));
	if (!*live)
		return -ENOMEM;
	while (i < f->nfrags && !rc) {   /* ids named by records, in id order */
		uint64_t id = f->frags[f->byid[i]].d.id;
		size_t e = i + 1;
		struct fk_ref *ref = fk_find_ref(f, id);
		uint32_t want;
		while (e < f->nfrags && f->frags[f->byid[e]].d.id == id)
			e++;
		want = kept_in_run(f, i, e);
		rc = set_ref(f, t, id, ref ? ref->count : 0, want, (uint32_t)(e - i));
		if (want)
			(*live)[n++] = id;
		i = e;
	}
	for (size_t j = 0; j < f->nrefs && !rc; j++) {   /* counts no record names */
		const struct fk_ref *ref = &f->refs[j];
		size_t lo = 0, hi = f->nfrags;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (f->frags[f->byid[mid]].d.id < ref->id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == f->nfrags || f->frags[f->byid[lo]].d.id != ref->id)
			rc = set_ref(f, t, ref->id, ref->count, 0, 0);
	}
	*nlive = n;
	return rc;
}

struct strays {
	struct fsck *f;
	uint64_t *v;
	size_t n, cap;
};

static int stray_cb(void *arg, uint64_t ino)
{
	struct strays *s = arg;
	uint64_t *v;

	if (fk_find(s->f, ino))
		return 0;
	if (!(v = fk_grow(s->v, &s->cap, s->n, sizeof(*v))))
		return -ENOMEM;
	s->v = v;
	v[s->n++] = ino;
	return 0;
}

/* Orphan marks of inodes that do not exist are deleted (collected first:
 * nothing is deleted while a cursor walks the db). */
static int fix_stray_orphans(struct fsck *f, struct idx_txn *t)
{
	struct strays s = { .f = f };
	int rc = idx_orphans_iter(t, stray_cb, &s);

	for (size_t i = 0; i < s.n && !rc; i++) {
		rc = idx_orphan_del(t, s.v[i]);
		fk_action(f, 0, "orphan mark of missing inode %" PRIu64 " removed", s.v[i]);
	}
	free(s.v);
	return rc;
}

/* Drop the row indexes the check found wrong or without a fragment
 * (readers then scan those fragments, as without format 4). */
static int fix_rowidx(struct fsck *f, struct idx_txn *t)
{
	int rc = 0;

	for (size_t i = 0; i < f->nbad_rowidx && !rc; i++)
		rc = idx_rowidx_del(t, f->bad_rowidx[i]);
	if (!rc && f->nbad_rowidx)
		fk_action(f, 0, "%zu row index(es) dropped (wrong, or without a fragment)", f->nbad_rowidx);
	return rc;
}

static int fix_meta(struct fsck *f, struct idx_txn *t)
{
	int rc = 0;

	if (f->new_next_ino != f->next_ino)
		rc = idx_meta_put_u64(t, "next_ino", f->new_next_ino);
	if (!rc && f->new_next_frag != f->next_frag)
		rc = idx_meta_put_u64(t, "next_frag", f->new_next_frag);
	return rc;
}

/* ---- after the txn ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct unref {
	const uint64_t *live;
	size_t nlive;
	uint64_t *v;
	size_t n, cap;
};

static int unref_cb(void *arg, uint64_t id)
{
	struct unref *u = arg;

	if (u->nlive && bsearch(&id, u->live, u->nlive, sizeof(id), cmp_u64))
		return 0;
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 64;
		uint64_t *v = realloc(u->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		u->v = v;
		u->cap = cap;
	}
	u->v[u->n++] = id;
	return 0;
}

/* Step (2): delete every image not in LIVE, and the staging files. */
static int fix_images(struct fsck *f, const uint64_t *live, size_t nlive)
{
	struct frag_backend *b = store_backend(f->st, 0);
	struct unref u = { .live = live, .nlive = nlive };
	char path[4096];
	struct dirent *de;
	size_t gone = 0;
	DIR *d;
	char why[512];
	int rc = frag_list(b, unref_cb, &u), ok = 1;

	if (rc >= 0 && u.n && (ok = store_unref_delete_ok(f->st, why, sizeof(why))) == 0) {
		fk_action(f, 0, "%zu fragment image(s) no object references kept: %s (payloadctl gc "
			  "deletes them later)", u.n, why);
		u.n = 0;
	}
	if (ok < 0)
		rc = ok;
	for (size_t i = 0; i < u.n && rc >= 0; i++) {
		int r = frag_del(b, u.v[i]);
		if (r && r != -ENOENT)
			rc = r;
		else
			gone++;
	}
	if (u.n)
		fk_action(f, 0, "%zu fragment image(s) no object references deleted", gone);
	free(u.v);
	snprintf(path, sizeof(path), "%s/staging", f->dir);
	if (rc >= 0 && (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' && unlinkat(dirfd(d), de->d_name, 0) == 0)
				fk_action(f, 0, "staging file %s deleted", de->d_name);
		closedir(d);
	}
	return rc < 0 ? rc : 0;
}

/* Step (3): rewrite object INO's bytes through the store. */
static int recut(struct store *st, uint64_t ino)
{
	struct pver *pv = NULL;
	struct wsess *ws = NULL;
	char *buf = malloc(CTL_CHUNK);
	uint64_t off = 0;
	int rc = buf ? store_pver_get(st, ino, &pv) : -ENOMEM;

	if (!rc)
		rc = store_wsess_begin(st, pv, NULL, 1, &ws);
	while (!rc) {
		ssize_t n = pver_read(pv, buf, CTL_CHUNK, off);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		rc = wsess_write(ws, buf, (size_t)n, off);
		off += (uint64_t)n;
	}
	if (!rc)
		rc = wsess_dirty(ws) ? wsess_commit(ws) : 0;
	wsess_free(ws);
	pver_put(pv);
	free(buf);
	return rc;
}

int fk_fix(struct fsck *f)
{
	uint64_t *live = NULL;
	size_t nlive = 0;
	struct idx_txn *t;
	int rc = idx_begin(store_idx(f->st), 0, &t);

	if (rc)
		return rc;
	rc = fix_lf(f, t);
	if (!rc)
		rc = fix_dirents(f, t);
	if (!rc)
		rc = fix_inodes(f, t);
	if (!rc)
		rc = fix_refs(f, t, &live, &nlive);
	if (!rc)
		rc = fix_stray_orphans(f, t);
	if (!rc)
		rc = fix_rowidx(f, t);
	if (!rc)
		rc = fix_meta(f, t);
	rc = rc ? (idx_abort(t), rc) : idx_commit(t);
	if (rc) {
		printf("repair: the index transaction failed (%s): nothing was changed\n", strerror(-rc));
		free(live);
		return rc;
	}
	rc = fix_images(f, live, nlive);
	free(live);
	for (size_t i = 0; i < f->ninos && !rc; i++) {
		const struct fk_ino *r = &f->inos[i];
		if (r->recut && fk_snap(f, r->in.ino)) {
			printf("repair: id %" PRIu64 ": in snapshot %s: not re-cut (snapshots are read-only)\n",
			       r->in.ino, fk_snap(f, r->in.ino)->name);
			continue;
		}
		if (r->recut && !r->destroy && (rc = recut(f->st, r->in.ino)) != 0)
			printf("repair: id %" PRIu64 ": re-cutting failed: %s\n", r->in.ino, strerror(-rc));
	}
	return rc;
}
