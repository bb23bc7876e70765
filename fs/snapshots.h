/* snapshots — the synthetic `.snapshots` directory at the root of the
 * mount (DESIGN §1): `mkdir .snapshots/NAME` takes a snapshot of the whole
 * tree, `rmdir` drops it, readdir lists them, and `.snapshots/NAME/` is
 * the snapshot's root directory — a real (read-only) inode of the index,
 * reached through the ordinary operations (index/snap.c). Node id
 * FN_SNAPS_INO (fnode.h). All functions are thread-safe and return 0 or
 * -errno. */
#ifndef PFS_SNAPSHOTS_H
#define PFS_SNAPSHOTS_H

#include <stdint.h>
#include <sys/stat.h>

#include "index/idx.h"

struct pfs;

/* Attributes of `.snapshots`: a directory owned like the mount's root,
 * mode 0755 (its owner may take and drop snapshots), nlink 2 + snapshots. */
int snaps_stat(struct pfs *p, struct stat *s);
/* The root directory of snapshot NAME. @return 0, -ENOENT. */
int snaps_lookup(struct pfs *p, const char *name, struct idx_inode *out);
/* mkdir .snapshots/NAME: take it; *OUT is its root directory.
 * @return 0, -EEXIST, -EINVAL, -ENAMETOOLONG, -EROFS (read-only mount),
 * -ENOSPC, -errno. */
int snaps_create(struct pfs *p, const char *name, struct idx_inode *out);
/* rmdir .snapshots/NAME. @return 0, -ENOENT, -EROFS, -errno. */
int snaps_drop(struct pfs *p, const char *name);
/* Each snapshot as a directory entry (its root's inode number). */
int snaps_list(struct pfs *p, int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type),
	       void *arg);

#endif
