/* ctl_fsck — internals of `payloadctl fsck [--repair]`, shared by its files:
 *   ctl_fsck.c       the driver: one read txn collects every inode, dirent,
 *                    fragment record, reference count and orphan mark (a
 *                    consistent snapshot, also while mounted); messages.
 *   ctl_fsck_ns.c    the namespace: dirents, nlink, reachability, orphans.
 *   ctl_fsck_data.c  fragment lists, reference counts, fragment images
 *                    (every one read and verified), unreferenced images.
 *   ctl_fsck_plan.c  --repair, deciding: what each object keeps, what goes
 *                    to lost+found, which entries go, every final count.
 *   ctl_fsck_fix.c   --repair, doing: one write txn, then the images, then
 *                    the objects re-cut through the store API.
 * What is checked is docs/format.md "Consistency rules"; what --repair
 * does is docs/payloadctl.1 "REPAIR". */
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
	/* --repair (ctl_fsck_plan.c) */
	struct idx_inode nin;   /* the inode as the repair writes it */
	uint32_t nlinks;        /* entries naming it after the repair */
	uint32_t nsubdirs;      /* directories: child directories after it */
	uint8_t lost;           /* moved to lost+found */
	uint8_t destroy;        /* deleted (unlinked orphan, broken symlink) */
	uint8_t recut;          /* bytes rewritten (fragments not row-aligned) */
	uint8_t data_changed;   /* its fragment records or inline bytes change */
	uint8_t drop_inline;    /* its inline record is deleted */
	uint8_t unorphan;       /* its orphan mark is deleted */
	char *dropped;          /* what the repair dropped (user.fsck.lost) */
	char *origin;           /* its path before the repair (user.fsck.path) */
};

struct fk_dirent {
	uint64_t parent, child;
	uint32_t type;          /* S_IFMT bits recorded in the dirent */
	char *name;
	uint8_t drop;           /* --repair: deleted */
	uint8_t retype;         /* --repair: rewritten with the inode's type */
	uint8_t added;          /* --repair: a new entry (in lost+found) */
};

/* What reading a fragment record's image found (fk_check_images). */
enum fk_state { FK_UNREAD = 0, FK_GOOD, FK_BAD, FK_SKIPPED };

struct fk_frag {                /* one fragment record */
	uint64_t ino;
	struct frag_desc d;
	uint8_t state;          /* enum fk_state */
	uint8_t nl_end;         /* FK_GOOD: the bytes end with '\n' */
	uint32_t nls;           /* FK_GOOD: '\n' bytes in it */
	char *why;              /* FK_BAD: what is wrong (malloc'd) */
	/* --repair */
	uint8_t drop;           /* the record is deleted */
	uint64_t noff, nrow;    /* where a kept record goes */
	uint32_t nrows;         /* and the rows it holds */
	uint16_t nflags;        /* and its flags (FRAG_F_CONT as its bytes say) */
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
	struct idx_snap *snaps;         /* the snapshots, by first inode */
	size_t nsnaps, cap_snaps;
	unsigned long problems, warnings;
	uint64_t objects, checked;      /* objects seen, fragment images read */
	uint64_t skipped_memory;        /* fragments of storage=memory objects */
	uint64_t rowidx_checked;        /* row indexes rebuilt and compared */
	uint64_t *bad_rowidx;           /* fragment ids whose row index is wrong or */
	size_t nbad_rowidx, cap_bad_rowidx; /* no fragment has (--repair drops them) */
	int quiet;                      /* print nothing (the re-check after a repair) */
	/* --repair */
	const char *dir;                /* the store directory */
	uint64_t lf;                    /* lost+found's inode (0: not needed) */
	int lf_new;                     /* lost+found is created by the repair */
	uint32_t lf_subdirs;            /* directories moved into a new lost+found */
	unsigned long actions;          /* repair lines printed */
	uint64_t new_next_ino, new_next_frag;
};

/* The record of inode INO, or NULL. */
struct fk_ino *fk_find(struct fsck *f, uint64_t ino);
/* The snapshot whose inode range holds INO, or NULL (a live inode). */
const struct idx_snap *fk_snap(const struct fsck *f, uint64_t ino);
/* 1 when INO is a root: the live root or a snapshot's root directory. */
int fk_is_root(const struct fsck *f, uint64_t ino);

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
/* Rows that start in a fragment of NLS newlines, ending in one when
 * NL_END, of LEN bytes at offset OFF, whose first byte continues a row
 * when CONT (lines), in IN's format (fixed:N: the record starts). */
uint64_t fk_frag_rows(const struct idx_inode *in, uint64_t off, uint32_t len, uint32_t nls, int nl_end,
		      int cont);

/* Write the path of INO into BUF (CAP bytes), control characters escaped
 * like ctl_put_name. @return 0, or -1 when no directory reaches INO. */
int fk_path(struct fsck *f, uint64_t ino, char *buf, size_t cap);
/* Print one repair line "repair: OBJ: WHAT" (counted in f->actions). */
void fk_action(struct fsck *f, uint64_t ino, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Make room for one more element in V (N used, *CAP allocated).
 * @return V or its reallocation; NULL when out of memory (V unchanged). */
void *fk_grow(void *v, size_t *cap, size_t n, size_t size);
/* Collect the snapshot into F (fresh). @return 0 or -errno. */
int fk_collect(struct fsck *f);
/* Run every check on the collected snapshot. @return 0, or -errno when a
 * check could not run. */
int fk_check_all(struct fsck *f);
void fk_free(struct fsck *f);

/* ctl_fsck_ns.c */
void fk_check_namespace(struct fsck *f);

/* ctl_fsck_data.c: the index-only checks, then the images. Those
 * returning int return 0, or -errno when the check could not run. */
void fk_check_lists(struct fsck *f);
int fk_check_refs(struct fsck *f);
int fk_check_images(struct fsck *f);
/* After the images: in each lines object, a fragment continues a row
 * (FRAG_F_CONT) exactly when the verified one before it ends without
 * '\n'. */
void fk_check_rows_span(struct fsck *f);
int fk_check_unreferenced(struct fsck *f);
/* Row indexes (format.md rule 7) that no fragment of the snapshot
 * references, also in a fresh txn: warnings, dropped by --repair. */
int fk_check_rowidx_orphans(struct fsck *f);

/* ctl_fsck_plan_ns.c: decide the repair on a checked snapshot (nothing is
 * written). @return 0, -ENOMEM, or -EUCLEAN for damage it cannot repair
 * (printed). */
int fk_plan(struct fsck *f);
/* ctl_fsck_plan.c: the data part of fk_plan. @return 0 or -ENOMEM. */
int fk_plan_data(struct fsck *f);
/* Mark R's bytes lost (it moves to lost+found), remembering its path.
 * @return 0 or -ENOMEM. */
int fk_mark_lost(struct fsck *f, struct fk_ino *r);
/* ctl_fsck_fix.c: carry out the plan on F's store (opened read-write, its
 * lock held). @return 0 or -errno (the index txn is all or nothing; what
 * failed is printed). */
int fk_fix(struct fsck *f);
/* Binary search of fragment id ID in F's refs (sorted by fk_check_refs). */
struct fk_ref *fk_find_ref(struct fsck *f, uint64_t id);

#endif
