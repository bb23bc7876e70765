/* fnode — the daemon's table of inodes the kernel knows (lookup counts),
 * and the synthetic inodes of views.
 *
 * Inode-number spaces (what the kernel sees as st_ino / FUSE nodeid):
 *  - 1 .. 2^62-1: real entries of the index (root 1; objects and
 *    directories from IDX_FIRST_INO up, allocated by the index, never
 *    reused). An object's inode number is its object ID.
 *  - FN_BYID_INO (2): the synthetic `.by-id` directory.
 *  - FN_VIEW_BIT | n: a view (`obj@rows=…`, `@part=…`, `@meta`), one per
 *    distinct (object, suffix) while the kernel holds a lookup on it;
 *    numbers are handed out by a counter and never reused within a mount.
 *
 * Lookup counts follow libfuse's contract: +1 for every entry replied,
 * -N on forget; reaching 0 drops the table entry, and for a real inode
 * lets the store free an unlinked object (store_forget). A count going
 * negative is a bug: abort().
 *
 * All functions are thread-safe (one mutex; never held across store
 * calls).
 */
#ifndef PFS_FNODE_H
#define PFS_FNODE_H

#include <stdint.h>
#include "index/view.h"

#define FN_BYID_INO  2ull
#define FN_VIEW_BIT  (1ull << 62)

static inline int fn_is_view(uint64_t ino) { return (ino & FN_VIEW_BIT) != 0; }

struct fnode_view {
	uint64_t base;            /* object inode */
	struct view_spec spec;
};

/* Create the table. @return 0 or -ENOMEM. */
int fn_init(void);
void fn_fini(void);

/* Count one lookup of real inode INO. @return 0 or -ENOMEM. */
int fn_ref_real(uint64_t ino);
/* Count one lookup of the view SUFFIX (text after '@') of object BASE.
 * @param[out] ino the view's inode number. @return 0 or -ENOMEM. */
int fn_ref_view(uint64_t base, const char *suffix, const struct view_spec *spec, uint64_t *ino);
/* Describe view INO. @return 0, or -ENOENT (forgotten/unknown). */
int fn_view(uint64_t ino, struct fnode_view *out);
/* Drop N lookups. @return 1 when INO was a real inode whose count reached
 * 0 (the caller then calls store_forget), else 0. */
int fn_forget(uint64_t ino, uint64_t n);

/* Page-cache bookkeeping of real inode INO: returns 1 when VERSION is the
 * version the kernel cache was filled from (keep it), else records VERSION
 * and returns 0 (the kernel must drop its cache). */
int fn_cache_keep(uint64_t ino, uint64_t version);

/* Open write handles of real inode INO (attributes of such an inode are
 * not cached by the kernel: the writer's direct writes move its size). */
void fn_writer_open(uint64_t ino);
void fn_writer_close(uint64_t ino);
int fn_writers(uint64_t ino);

/* A read-only handle of real inode INO opened on VERSION. @return 1 when
 * handles pinned to OTHER versions are open (the new handle must then
 * bypass the page cache so it does not fill it with a version those
 * readers must not see), else 0. */
int fn_open_read(uint64_t ino, uint64_t version);
/* That handle closed. */
void fn_close_read(uint64_t ino, uint64_t version);

#endif
