/* ctl_fsck_plan_ns — `fsck --repair`, the decisions for the namespace and
 * the counters (docs/payloadctl.1 REPAIR), after ctl_fsck_plan.c decided
 * the data. Works on the snapshot only; each decision prints one "repair:"
 * line.
 *
 * Policy:
 *  (1) An entry that names nothing, the root, or lives in a non-directory,
 *      or has an invalid name, is removed; one recording the wrong type is
 *      rewritten. A directory named twice keeps its first entry.
 *  (2) An inode no entry names any more: an unlinked one (in the orphans
 *      list, nlink 0) is freed, as the daemon's sweep would; any other —
 *      and a directory not reachable from the root — moves to
 *      /lost+found/ID (lost+found is made, mode 0700, when needed).
 *      Objects whose bytes were lost move there too (ctl_fsck_plan.c).
 *  (3) A symbolic link without a target is removed; one whose size is not
 *      its target's length gets the right size.
 *  (5) Snapshots are never destroyed: a snapshot's root is a root; an
 *      object of a snapshot whose bytes were lost keeps its name and what
 *      verifies (moved up) in place, with the user.fsck.* xattrs; an inode
 *      of a snapshot that nothing names is left where it is (reported
 *      again by the check: dropping the snapshot frees it). Entries that
 *      cross from one tree into another (live, or a snapshot) are removed.
 *  (4) nlink is recounted from the entries (directories: 2 + their child
 *      directories), orphan marks of linked inodes and of directories are
 *      removed, stray inline records of non-objects are removed, and the
 *      next inode number and fragment id are moved above every one in use.
 */
#include "tools/ctl_fsck.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LF_NAME "lost+found"

static int name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= IDX_NAME_MAX && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..") && !view_name_reserved(name);
}

static int live(const struct fk_dirent *e)
{
	return !e->drop;
}

/* Add entry LF/NAME -> CHILD of TYPE to F's dirents. @return 0, -ENOMEM. */
static int add_dirent(struct fsck *f, const char *name, uint64_t child, uint32_t type)
{
	struct fk_dirent *v;

	if (f->ndirents == f->cap_dirents) {
		size_t cap = f->cap_dirents ? f->cap_dirents * 2 : 64;
		if (!(v = realloc(f->dirents, cap * sizeof(*v))))
			return -ENOMEM;
		f->dirents = v;
		f->cap_dirents = cap;
	}
	v = &f->dirents[f->ndirents];
	memset(v, 0, sizeof(*v));
	if (!(v->name = strdup(name)))
		return -ENOMEM;
	v->parent = f->lf;
	v->child = child;
	v->type = type;
	v->added = 1;
	f->ndirents++;
	return 0;
}

/* Re-pick every inode's first live entry in a directory (its "home",
 * what paths and reachability follow). */
static void rehome(struct fsck *f)
{
	for (size_t i = 0; i < f->ninos; i++) {
		f->inos[i].dparent = 0;
		f->inos[i].dname = NULL;
	}
	for (size_t i = 0; i < f->ndirents; i++) {
		const struct fk_dirent *e = &f->dirents[i];
		struct fk_ino *c = fk_find(f, e->child);
		if (live(e) && c && !c->dparent) {
			c->dparent = e->parent;
			c->dname = e->name;
		}
	}
}

/* Policy (1). */
static void plan_dirents(struct fsck *f)
{
	for (size_t i = 0; i < f->ndirents; i++) {
		struct fk_dirent *e = &f->dirents[i];
		struct fk_ino *p = fk_find(f, e->parent), *c = fk_find(f, e->child);
		const char *why = NULL;

		if (!p || !S_ISDIR(p->in.mode))
			why = "it is not in a directory";
		else if (!name_ok(e->name))
			why = "invalid name";
		else if (!c)
			why = "it names a missing inode";
		else if (fk_is_root(f, e->child))
			why = "it names the root";
		else if (fk_snap(f, e->parent) != fk_snap(f, e->child))
			why = "it crosses from one tree into another (live, snapshot)";
		else if (S_ISDIR(c->in.mode) && (c->dparent != e->parent || c->dname != e->name))
			why = "a second entry of a directory";
		if (why) {
			e->drop = 1;
			fk_action(f, e->parent, "entry '%s' -> %" PRIu64 " removed: %s", e->name, e->child, why);
		} else if ((c->in.mode & S_IFMT) != e->type) {
			e->retype = 1;
			e->type = c->in.mode & S_IFMT;
			fk_action(f, e->parent, "entry '%s' now records a %s", e->name, ctl_type_name(c->in.mode));
		}
	}
}

/* Drop every live entry naming INO. */
static void drop_names(struct fsck *f, uint64_t ino)
{
	for (size_t i = 0; i < f->ndirents; i++)
		if (f->dirents[i].child == ino && live(&f->dirents[i]))
			f->dirents[i].drop = 1;
}

/* Entries naming each inode and each directory's child directories. */
static void count_links(struct fsck *f)
{
	for (size_t i = 0; i < f->ninos; i++)
		f->inos[i].nlinks = f->inos[i].nsubdirs = 0;
	for (size_t i = 0; i < f->ndirents; i++) {
		const struct fk_dirent *e = &f->dirents[i];
		struct fk_ino *p = fk_find(f, e->parent), *c = fk_find(f, e->child);
		if (!live(e) || !c)
			continue;
		c->nlinks++;
		if (S_ISDIR(c->in.mode) && p)
			p->nsubdirs++;
	}
}

/* Find or plan /lost+found. @return 0, -ENOMEM. */
static int need_lf(struct fsck *f)
{
	if (f->lf)
		return 0;
	for (size_t i = 0; i < f->ndirents; i++) {
		const struct fk_dirent *e = &f->dirents[i];
		struct fk_ino *c = fk_find(f, e->child);
		if (live(e) && e->parent == IDX_ROOT_INO && strcmp(e->name, LF_NAME) == 0 && c &&
		    S_ISDIR(c->in.mode)) {
			f->lf = e->child;
			return 0;
		}
	}
	for (size_t i = 0; i < f->ndirents; i++)
		if (live(&f->dirents[i]) && f->dirents[i].parent == IDX_ROOT_INO &&
		    strcmp(f->dirents[i].name, LF_NAME) == 0) {
			fprintf(stdout, "repair: /" LF_NAME " exists and is not a directory: cannot "
				"make lost+found\n");
			return -EUCLEAN;
		}
	/* a fresh number, above every inode even when next_ino is damaged */
	for (size_t i = 0; i < f->ninos; i++)
		if (f->inos[i].in.ino >= f->new_next_ino)
			f->new_next_ino = f->inos[i].in.ino + 1;
	f->lf = f->new_next_ino++;
	f->lf_new = 1;
	fk_action(f, 0, "directory /" LF_NAME " (id %" PRIu64 ") made", f->lf);
	return 0;
}

/* Move R into lost+found as "ID" or "ID-NAME". @return 0 or -errno. */
static int to_lf(struct fsck *f, struct fk_ino *r)
{
	char name[IDX_NAME_MAX + 1];
	const char *base = r->dname;
	int rc = need_lf(f);

	if (rc)
		return rc;
	if (r->dparent == f->lf && r->dname && !S_ISDIR(r->in.mode)) {
		/* already there: keep that one name */
		for (size_t i = 0; i < f->ndirents; i++) {
			struct fk_dirent *e = &f->dirents[i];
			if (e->child == r->in.ino && live(e) && e->name != r->dname)
				e->drop = 1;
		}
		return 0;
	}
	snprintf(name, sizeof(name), "%" PRIu64 "%s%s", r->in.ino, base ? "-" : "", base ? base : "");
	if (!name_ok(name))
		snprintf(name, sizeof(name), "%" PRIu64, r->in.ino);
	drop_names(f, r->in.ino);
	rc = add_dirent(f, name, r->in.ino, r->in.mode & S_IFMT);
	if (!rc)
		fk_action(f, r->in.ino, "moved to /" LF_NAME "/%s", name);
	if (!rc && S_ISDIR(r->in.mode))
		r->nin.parent = f->lf;
	return rc;
}

/* 1 when directory R reaches the root through homes (bounded walk). */
static int reachable(struct fsck *f, const struct fk_ino *r)
{
	for (size_t steps = 0; steps <= f->ninos; steps++) {
		if (fk_is_root(f, r->in.ino) || (f->lf_new && r->in.ino == f->lf))
			return 1;
		if (!r->dparent)
			return 0;
		if (f->lf_new && r->dparent == f->lf)
			return 1;
		r = fk_find(f, r->dparent);
		if (!r)
			return 0;
	}
	return 0;   /* a cycle */
}

/* Policy (2) for directories: while one is unreachable, move the top of
 * its chain (the one with no home, or where the chain loops). */
static int plan_lost_dirs(struct fsck *f)
{
	for (size_t pass = 0; pass <= f->ninos; pass++) {
		struct fk_ino *top = NULL;
		for (size_t i = 0; i < f->ninos && !top; i++) {
			struct fk_ino *r = &f->inos[i];
			if (!S_ISDIR(r->in.mode) || fk_is_root(f, r->in.ino) || fk_snap(f, r->in.ino) ||
			    reachable(f, r))
				continue;    /* policy (5): a snapshot's directory stays */
			top = r;
			for (size_t steps = 0; top->dparent && steps < f->ninos; steps++) {
				struct fk_ino *p = fk_find(f, top->dparent);
				if (!p || fk_is_root(f, p->in.ino))
					break;
				top = p;
			}
		}
		if (!top)
			return 0;
		int rc = to_lf(f, top);
		if (rc)
			return rc;
		rehome(f);
	}
	return -EUCLEAN;
}

/* Policies (2) and (3) for non-directories; (4) for orphan marks and
 * inline records. @return 0 or -errno. */
static int plan_inodes(struct fsck *f)
{
	int rc = 0;

	count_links(f);
	for (size_t i = 0; i < f->ninos && !rc; i++) {
		struct fk_ino *r = &f->inos[i];
		uint32_t mode = r->in.mode;

		if (S_ISDIR(mode)) {
			if (r->orphan) {
				r->unorphan = 1;
				fk_action(f, r->in.ino, "orphan mark of a directory removed");
			}
			if (r->inl_present) {
				r->drop_inline = 1;
				fk_action(f, r->in.ino, "inline record of a directory removed");
			}
			continue;
		}
		if (S_ISLNK(mode) && !r->inl_present) {
			r->destroy = 1;
			drop_names(f, r->in.ino);
			for (uint32_t k = 0; k < r->fn; k++)
				f->frags[r->f0 + k].drop = 1;
			fk_action(f, r->in.ino, "symbolic link without a target removed");
			continue;
		}
		if (S_ISLNK(mode) && r->inl_len != r->in.size) {
			r->nin.size = r->inl_len;
			fk_action(f, r->in.ino, "symbolic link size set to %zu", r->inl_len);
		}
		if (!S_ISREG(mode) && !S_ISLNK(mode) && r->inl_present) {
			r->drop_inline = 1;
			fk_action(f, r->in.ino, "inline record of a %s removed", ctl_type_name(mode));
		}
		if (r->nlinks == 0 && r->orphan) {
			r->destroy = 1;
			r->lost = 0;
			for (uint32_t k = 0; k < r->fn; k++)
				f->frags[r->f0 + k].drop = 1;
			fk_action(f, r->in.ino, "unlinked %s freed", ctl_type_name(mode));
		} else if (r->lost && fk_snap(f, r->in.ino)) {
			fk_action(f, r->in.ino, "kept in snapshot %s, in place (snapshots are read-only)",
				  fk_snap(f, r->in.ino)->name);
		} else if (r->lost) {
			rc = to_lf(f, r);
		} else if (r->nlinks == 0 && fk_snap(f, r->in.ino)) {
			printf("repair: id %" PRIu64 ": an inode of snapshot %s that no entry names: left as it is "
			       "(dropping the snapshot frees it)\n", r->in.ino, fk_snap(f, r->in.ino)->name);
		} else if (r->nlinks == 0) {
			rc = fk_mark_lost(f, r);
			if (!rc)
				rc = to_lf(f, r);
		} else if (r->orphan) {
			r->unorphan = 1;
			fk_action(f, r->in.ino, "orphan mark removed (%" PRIu32 " entries name it)", r->nlinks);
		}
	}
	return rc;
}

/* Policy (4): nlink and counters. */
static void plan_counts(struct fsck *f)
{
	uint64_t max_ino = f->lf_new ? f->lf : 0, max_frag = 0;

	rehome(f);
	count_links(f);
	for (size_t i = 0; i < f->ndirents; i++)   /* directories moved into a new lost+found */
		if (live(&f->dirents[i]) && f->lf_new && f->dirents[i].parent == f->lf &&
		    S_ISDIR(f->dirents[i].type))
			f->lf_subdirs++;
	for (size_t i = 0; i < f->ninos; i++) {
		struct fk_ino *r = &f->inos[i];
		uint32_t want;
		if (r->destroy)
			continue;
		want = S_ISDIR(r->in.mode) ? 2 + r->nsubdirs + (r->in.ino == IDX_ROOT_INO && f->lf_new)
					   : r->nlinks;
		if (S_ISDIR(r->in.mode) && r->in.ino != IDX_ROOT_INO && r->dparent &&
		    r->nin.parent != r->dparent) {
			fk_action(f, r->in.ino, "parent set to %" PRIu64, r->dparent);
			r->nin.parent = r->dparent;
		}
		if (r->nin.nlink != want) {
			fk_action(f, r->in.ino, "nlink set to %" PRIu32 " (was %" PRIu32 ")", want, r->nin.nlink);
			r->nin.nlink = want;
		}
		if (r->in.ino > max_ino)
			max_ino = r->in.ino;
	}
	if (f->new_next_ino <= max_ino)
		f->new_next_ino = max_ino + 1;
	if (f->ninos && f->next_ino <= f->inos[f->ninos - 1].in.ino)   /* the counter was damaged */
		fk_action(f, 0, "next inode number set to %" PRIu64 " (was %" PRIu64 ")",
			  f->new_next_ino, f->next_ino);
	for (size_t i = 0; i < f->nfrags; i++)
		if (f->frags[i].d.id > max_frag)
			max_frag = f->frags[i].d.id;
	for (size_t i = 0; i < f->nrefs; i++)
		if (f->refs[i].id > max_frag)
			max_frag = f->refs[i].id;
	f->new_next_frag = f->next_frag > max_frag ? f->next_frag : max_frag + 1;
	if (f->new_next_frag != f->next_frag)
		fk_action(f, 0, "next fragment id set to %016llx", (unsigned long long)f->new_next_frag);
}

int fk_plan(struct fsck *f)
{
	struct fk_ino *root = fk_find(f, IDX_ROOT_INO);
	int rc;

	if (!root || !S_ISDIR(root->in.mode)) {
		printf("repair: the root directory (inode 1) is %s: cannot repair this index\n",
		       root ? "not a directory" : "missing");
		return -EUCLEAN;
	}
	f->new_next_ino = f->next_ino;
	for (size_t i = 0; i < f->ninos; i++)
		f->inos[i].nin = f->inos[i].in;
	rc = fk_plan_data(f);
	if (!rc) {
		plan_dirents(f);
		rehome(f);
		rc = plan_lost_dirs(f);
	}
	if (!rc)
		rc = plan_inodes(f);
	if (!rc)
		plan_counts(f);
	return rc;
}
