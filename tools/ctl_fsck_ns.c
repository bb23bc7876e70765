/* ctl_fsck_ns — fsck of the namespace (docs/format.md consistency rule 4
 * and index/ns.c invariants): every dirent lives in a directory, has a
 * valid name and names an existing inode of the type it records; a
 * directory is named by exactly one dirent, its parent field agrees, it is
 * reachable from the root and its nlink is 2 + its child directories; a
 * non-directory's nlink is its number of dirents, and one with none is an
 * orphan with nlink 0. Snapshots (index/snap.c): each snapshot's root is a
 * root like inode 1; every inode of a snapshot's range carries
 * INODE_F_SNAP and no other does; entries never cross from one tree (the
 * live one or a snapshot) into another; the ranges lie below next_ino and
 * do not overlap. */
#include "tools/ctl_fsck.h"

#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

static int name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= IDX_NAME_MAX && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..") && !view_name_reserved(name);
}

static void check_dirent(struct fsck *f, const struct fk_dirent *e)
{
	struct fk_ino *p = fk_find(f, e->parent), *c = fk_find(f, e->child);

	if (!p)
		return;   /* collected per existing inode: cannot happen */
	if (!S_ISDIR(p->in.mode)) {
		fk_problem(f, e->parent, "a %s holds a directory entry '%s'",
			   ctl_type_name(p->in.mode), e->name);
		return;
	}
	if (!name_ok(e->name))
		fk_problem(f, e->parent, "entry '%s': invalid name", e->name);
	if (!c) {
		fk_problem(f, e->parent, "entry '%s' names inode %" PRIu64 ", which does not exist",
			   e->name, e->child);
		return;
	}
	if (fk_is_root(f, e->child)) {
		fk_problem(f, e->parent, "entry '%s' names %s", e->name,
			   e->child == IDX_ROOT_INO ? "the root directory" : "a snapshot's root");
		return;
	}
	if (fk_snap(f, e->parent) != fk_snap(f, e->child))
		fk_problem(f, e->parent, "entry '%s' names inode %" PRIu64 " of %s", e->name, e->child,
			   fk_snap(f, e->child) ? "a snapshot" : "the live tree");
	if ((c->in.mode & S_IFMT) != e->type)
		fk_problem(f, e->parent, "entry '%s' records a %s, but inode %" PRIu64 " is a %s",
			   e->name, ctl_type_name(e->type), e->child, ctl_type_name(c->in.mode));
	c->links++;
	if (S_ISDIR(c->in.mode))
		p->subdirs++;
}

/* 1 when R is reachable from the root through first dirents, else 2. */
static int reach(struct fsck *f, struct fk_ino *r)
{
	struct fk_ino *cur = r, *x;
	size_t steps = 0;
	int res;

	while (!cur->reach) {
		struct fk_ino *p;
		if (fk_is_root(f, cur->in.ino)) {
			cur->reach = 1;
			break;
		}
		if (!cur->dparent || ++steps > f->ninos || !(p = fk_find(f, cur->dparent))) {
			cur->reach = 2;
			break;
		}
		cur = p;
	}
	res = cur->reach;
	for (x = r; x != cur; x = fk_find(f, x->dparent))
		x->reach = (uint8_t)res;
	return res;
}

static void check_dir(struct fsck *f, struct fk_ino *r)
{
	const struct idx_inode *in = &r->in;
	uint32_t want = 2 + r->subdirs;

	if (fk_is_root(f, in->ino)) {
		if (r->links)
			fk_problem(f, in->ino, "the root is named by %" PRIu32 " directory entries", r->links);
		if (in->ino != IDX_ROOT_INO && in->parent != in->ino)
			fk_problem(f, in->ino, "a snapshot's root whose parent field says %" PRIu64, in->parent);
	} else if (r->links == 0) {
		fk_problem(f, in->ino, "directory is in no directory (lost)");
	} else {
		if (r->links > 1)
			fk_problem(f, in->ino, "directory is named by %" PRIu32 " entries", r->links);
		if (in->parent != r->dparent)
			fk_problem(f, in->ino, "parent field says %" PRIu64 ", but its entry is in %" PRIu64,
				   in->parent, r->dparent);
		if (reach(f, r) != 1)
			fk_problem(f, in->ino, "directory is not reachable from the root");
	}
	if (in->nlink != want)
		fk_problem(f, in->ino, "nlink is %" PRIu32 ", expected %" PRIu32
			   " (2 + %" PRIu32 " subdirectories)", in->nlink, want, r->subdirs);
	if (r->orphan)
		fk_problem(f, in->ino, "a directory in the orphans list");
	if (r->inl_present)
		fk_problem(f, in->ino, "a directory with inline data");
}

static void check_nondir(struct fsck *f, struct fk_ino *r)
{
	const struct idx_inode *in = &r->in;

	if (in->nlink != r->links)
		fk_problem(f, in->ino, "nlink is %" PRIu32 ", but %" PRIu32 " directory entries name it",
			   in->nlink, r->links);
	if (!r->links && !r->orphan)
		fk_problem(f, in->ino, "%s in no directory and not in the orphans list (lost)",
			   ctl_type_name(in->mode));
	if (r->orphan && in->nlink)
		fk_problem(f, in->ino, "in the orphans list (freed at the next mount) but nlink is %" PRIu32,
			   in->nlink);
	if (S_ISLNK(in->mode)) {
		if (!r->inl_present)
			fk_problem(f, in->ino, "symbolic link without a target");
		else if (r->inl_len != in->size)
			fk_problem(f, in->ino, "symbolic link target is %zu bytes, size says %" PRIu64,
				   r->inl_len, in->size);
	} else if (!S_ISREG(in->mode) && r->inl_present) {
		fk_problem(f, in->ino, "a %s with inline data", ctl_type_name(in->mode));
	}
}

/* Name every inode by its first dirent in a directory, so that messages
 * can give paths whatever order the checks run in. */
static void name_inodes(struct fsck *f)
{
	for (size_t i = 0; i < f->ndirents; i++) {
		const struct fk_dirent *e = &f->dirents[i];
		struct fk_ino *p = fk_find(f, e->parent), *c = fk_find(f, e->child);
		if (p && c && S_ISDIR(p->in.mode) && !fk_is_root(f, e->child) && !c->dparent) {
			c->dparent = e->parent;
			c->dname = e->name;
		}
	}
}

/* Each snapshot's record: a range below next_ino, not overlapping the
 * next, whose first inode is a directory. */
static void check_snapshots(struct fsck *f)
{
	for (size_t i = 0; i < f->nsnaps; i++) {
		const struct idx_snap *s = &f->snaps[i];
		struct fk_ino *root = fk_find(f, s->first);
		if (!s->count || s->first < IDX_FIRST_INO || s->first + s->count > f->next_ino)
			fk_problem(f, 0, "snapshot %s: inodes %" PRIu64 "..%" PRIu64 " are not a range below the "
				   "next inode number %" PRIu64, s->name, s->first, s->first + s->count, f->next_ino);
		if (i + 1 < f->nsnaps && s->first + s->count > f->snaps[i + 1].first)
			fk_problem(f, 0, "snapshot %s overlaps snapshot %s", s->name, f->snaps[i + 1].name);
		if (!root || !S_ISDIR(root->in.mode))
			fk_problem(f, 0, "snapshot %s: its root (inode %" PRIu64 ") is %s", s->name, s->first,
				   root ? "not a directory" : "missing");
	}
}

void fk_check_namespace(struct fsck *f)
{
	struct fk_ino *root = fk_find(f, IDX_ROOT_INO);

	name_inodes(f);
	if (!root)
		fk_problem(f, 0, "the root directory (inode 1) is missing");
	else if (!S_ISDIR(root->in.mode))
		fk_problem(f, 0, "the root (inode 1) is a %s", ctl_type_name(root->in.mode));
	for (size_t i = 0; i < f->ndirents; i++)
		check_dirent(f, &f->dirents[i]);
	for (size_t i = 0; i < f->ninos; i++) {
		struct fk_ino *r = &f->inos[i];
		if (S_ISDIR(r->in.mode))
			check_dir(f, r);
		else
			check_nondir(f, r);
		if (!!(r->in.flags & INODE_F_SNAP) != !!fk_snap(f, r->in.ino))
			fk_problem(f, r->in.ino, "%s", fk_snap(f, r->in.ino) ? "inode of a snapshot not marked read-only"
						      : "a live inode marked as a snapshot's");
	}
	check_snapshots(f);
	if (f->ninos && f->next_ino <= f->inos[f->ninos - 1].in.ino)
		fk_problem(f, 0, "next inode number %" PRIu64 " is not above the highest inode %" PRIu64
			   " (numbers would be reused)", f->next_ino, f->inos[f->ninos - 1].in.ino);
}
