/* ops — the low-level FUSE operations of payloadfs. */
#ifndef PFS_OPS_H
#define PFS_OPS_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

struct store;

/* The daemon's state, passed as the session's userdata. */
struct pfs {
	struct store *st;
	int rdonly;
	int page_cache;  /* -o page_cache: read handles may use the kernel page cache */
	struct fuse_session *se;   /* for invalidation notices */
};

extern const struct fuse_lowlevel_ops pfs_ops;

#endif
