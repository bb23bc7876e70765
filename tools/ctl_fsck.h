/* ctl_fsck — internals of `payloadctl fsck`, shared by its three files:
 *   ctl_fsck.c       the driver: one read txn collects every inode, dirent,
 *                    fragment record, reference count and orphan mark (a
 *                    consistent snapshot, also while mounted); messages.
 *   ctl_fsck_ns.c    the namespace: dirents, nlink, reachability, orphans.
 *   ctl_fsck_data.c  fragment lists, reference counts, fragment images
 *                    (every one read and verified), unreferenced images.
 * What is checked is docs/format.md "Consistency rules". */
#ifndef PFS_CTL_FSCK_H
#define PFS_CTL_FSCK_H

#include "tools/ctl.h"

struct fk_ino {
	struct idx_inode in;
	uint32_t links;         /* dirents naming it */
	uint32_t subdirs;       /* directories: child directories */
	uint64_t dparent;       /* parent directory of its first dirent; 0 none */
	const char *dname;      /* name of its first dirent (owned by dirents) */
	size_t f0;              /* its fragment records: frags[f0 .. f0 + fn) */
	uint32_t fn;
	uint8_t orphan;         /* in the orphans db */
	uint8_t inl_present;    /* an inline record exists */
	uint8_t reach;          /* 0 unknown, 1 reachable from the root, 2 not */
	size_t inl_len;         /* inline record length */
	uint64_t inl_rows;      /* rows counted in the inline bytes */
};

struct fk_dirent {
	uint64_t parent, child;
	uint32_t type;          /* S_IFMT bits recorded in the dirent */
	char *name;
};

struct fk_frag {                /* one fragment record */
	uint64_t ino;
	struct frag_desc d;
};

struct fk_ref {                 /* one refs record */
	uint64_t id;
	uint32_t count;
};

struct fsck {
	struct store *st;
	struct fk_ino *inos;            /* sorted by ino */
	size_t ninos, cap_inos;
	struct fk_dirent *dirents;      /* in (parent, name) order */
	size_t ndirents, cap_dirents;
	struct fk_frag *frags;          /* sorted by (ino, off) */
	size_t nfrags, cap_frags;
	size_t *byid;                   /* indexes of frags sorted by (id, ino, off) */
	struct fk_ref *refs;            /* sorted by id */
	size_t nrefs, cap_refs;
	uint64_t next_ino, next_frag;   /* meta counters */
	unsigned long problems, warnings;
	uint64_t objects, checked;      /* objects seen, fragment images read */
	uint64_t skipped_memory;        /* fragments of storage=memory objects */
};

/* The record of inode INO, or NULL. */
struct fk_ino *fk_find(struct fsck *f, uint64_t ino);

/* Print one problem line (counted): "OBJ: WHAT" where OBJ names inode INO
 * by path and id ("" when INO is 0). */
void fk_problem(struct fsck *f, uint64_t ino, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Print one warning line "warning: ..." (not damage). */
void fk_warn(struct fsck *f, uint64_t ino, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Rows in BUF/LEN of an object in IN's format (lines: newlines, plus a
 * last row without one; fixed:N: LEN / N). */
uint64_t fk_count_rows(const struct idx_inode *in, const char *buf, size_t len);

/* ctl_fsck_ns.c */
void fk_check_namespace(struct fsck *f);

/* ctl_fsck_data.c: the index-only checks, then the images. Those
 * returning int return 0, or -errno when the check could not run. */
void fk_check_lists(struct fsck *f);
int fk_check_refs(struct fsck *f);
int fk_check_images(struct fsck *f);
int fk_check_unreferenced(struct fsck *f);

#endif
