/* fnode — the daemon's table of the node ids the kernel knows (lookup
 * counts), what each one stands for, and the names the kernel may have
 * cached for each object (so a commit can invalidate them).
 *
 * Node-id spaces (the FUSE nodeid; st_ino is always the index inode
 * number, i.e. the object ID):
 *  - 1 .. 2^61-1: directories, symlinks and special files: the node id
 *    is the index inode number (root 1; IDX_FIRST_INO up).
 *  - FN_BYID_INO (2): the synthetic `.by-id` directory; FN_STATS_INO (3):
 *    the synthetic `.stats` file (cache and I/O counters as JSON);
 *    FN_SNAPS_INO (4): the synthetic `.snapshots` directory (snapshots.h);
 *    FN_METRICS_INO (5): the synthetic `.metrics` file (the same counters
 *    in the Prometheus text format).
 *  - Snapshot entries (`.snapshots/NAME/...`) are in the same spaces as
 *    live ones: a snapshot's inodes are real index inodes with numbers of
 *    their own, a range that snapshot owns ([first, first + count),
 *    index/snap.c (1); its root directory is FIRST), so a snapshot's
 *    directories, symlinks and special files have node id = inode number,
 *    and its regular files get version nodes (FN_FILE_BIT) like live ones
 *    — whose version never changes. Nothing in this table tells them
 *    apart: the store refuses every change to them (EROFS).
 *  - FN_FILE_BIT | n: ONE VERSION of a regular file: (object ino,
 *    version). A lookup of a regular file returns the node of its current
 *    version; after a commit the next lookup gets a new node — except
 *    after an append (streams, ops.c (6)): a node with readers of the
 *    replaced version MOVES to the new version (fn_follow), since the
 *    new bytes only extend its old ones; its readers move with it. The kernel
 *    keeps one inode, one i_size and one page cache per node, so every
 *    node's bytes are immutable: pages cached for it are never wrong for
 *    the readers that opened it, whatever is committed later (DESIGN §5
 *    "an open file pins the version it opened").
 *  - FN_VIEW_BIT | n: a view (`obj@rows=…`, `@part=…`, `@meta`), one per
 *    distinct (object, suffix) while the kernel holds a lookup on it.
 *    Every handle of a file node shows the node's version, except a
 *    writer, which is ALONE on its node: the kernel keeps one i_size per
 *    node and moves it on a writer's O_TRUNC, ftruncate, writes and
 *    attribute replies, which clamps page-cache readers' reads and
 *    truncates readers' mappings (SIGBUS), and a reader's
 *    lseek(SEEK_END) reads it. So an open that would share a node with
 *    a handle of other content is refused with ESTALE: a write open of a
 *    node with any open handle, a read open of a node with a writer (the
 *    node is then SEALED: no lookup returns it again), and a read open of
 *    a node of an older version that has open handles. The kernel then
 *    walks the path again with LOOKUP_REVAL, the lookup returns a fresh
 *    node (of the same version after a seal; of the current version for
 *    an older node), and the open is retried there. Fresh nodes made
 *    after a seal serve readers with direct I/O only (no_pc). The
 *    retry's lookup (same thread) gets a new node RESERVED for that
 *    thread — also when the name now names another object (a rename
 *    came between the refusal and the retry's lookup): other threads' opens of it are refused (and retried on nodes
 *    of their own) until the thread opened it, so a retry never meets a
 *    handle that arrived meanwhile. A retry on the same node (through
 *    /proc/self/fd, where there is no lookup) goes through with direct
 *    I/O, unless the node has page-cache readers: then ESTALE reaches the
 *    application. Only an open with no lookup by the thread since the
 *    refusal is taken for such a retry (fn_lookup_begin): a retry whose
 *    lookup failed leaves its note behind, and the thread's next open(2)
 *    must not share a node because of it.
 *  Counters never hand out a number twice within a mount.
 *
 * Lookup counts follow libfuse's contract: +1 for every entry replied,
 * -N on forget; reaching 0 drops the node. An object's data is freed
 * (store_forget_unused with fn_in_use) when the last node that names it
 * is forgotten and no new one was made before the store's transaction. A count
 * going negative is a bug: abort().
 *
 * All functions are thread-safe (one mutex, fn_lock; a leaf: never held
 * across store calls or kernel notices).
 */
#ifndef PFS_FNODE_H
#define PFS_FNODE_H

#include <stddef.h>
#include <stdint.h>
#include "index/idx.h"
#include "index/view.h"

#define FN_BYID_INO  2ull
#define FN_STATS_INO 3ull     /* the synthetic `.stats` file */
#define FN_SNAPS_INO 4ull     /* the synthetic `.snapshots` directory */
#define FN_METRICS_INO 5ull   /* the synthetic `.metrics` file (Prometheus text) */
#define FN_FILE_BIT  (1ull << 61)
#define FN_VIEW_BIT  (1ull << 62)

static inline int fn_is_view(uint64_t nodeid) { return (nodeid & FN_VIEW_BIT) != 0; }
static inline int fn_is_file(uint64_t nodeid)
{
	return (nodeid & (FN_FILE_BIT | FN_VIEW_BIT)) == FN_FILE_BIT;
}

struct fnode_view {
	uint64_t base;            /* object inode */
	struct view_spec spec;
	/* the row view resolved for one version of BASE (fn_view_set_map):
	 * a view is resolved once per version, not at every lookup, open and
	 * GETATTR (its attributes are never cached by the kernel) */
	int map_ok;
	uint64_t map_version;
	uint32_t map_header;      /* header rows then (an xattr: no new version) */
	struct view_map map;
};

/* What a file node stands for: one version of an object. */
struct fnode_file {
	uint64_t ino;             /* the object */
	uint64_t version;         /* the version the node shows */
	uint64_t size;            /* that version's size and mtime */
	int64_t mtime_ns;
	uint32_t pc_readers;      /* open read handles using its page cache */
	uint32_t readers;         /* open read handles of the node (pc or not) */
	uint32_t writers;         /* open write handles of the node */
	int no_pc;                /* made after a seal: direct I/O only */
	int wpages;               /* a writer had it: its page cache may hold
				   * staged bytes, so a reader's open drops it
				   * first (FN_PC_FRESH) */
	int sealed;               /* never handed out again */
};

/* Live view nodes are capped (-o max_views=N): the kernel holds a view
 * node only while it is in use (views have nlink 0 and ops.c has the
 * kernel drop a view's dentry after its lookup, so an unused one is
 * evicted and forgotten at once), and a lookup of a new view name beyond
 * the cap fails with ENFILE instead of growing the table without bound. */
#define FN_VIEW_MAX_DEFAULT 262144

/* Create the table with at most MAX live view nodes (0: the default).
 * @return 0 or -ENOMEM. */
int fn_init(size_t max);
void fn_fini(void);

/* Count one lookup of directory/symlink/special inode INO (node id INO).
 * @return 0 or -ENOMEM. */
int fn_ref_real(uint64_t ino);
/* Count one lookup of regular file IN (its current version) reached as
 * NAME in directory PARENT (NAME may be NULL when no name is involved)
 * by thread TID (0: none). Returns the node of (IN->ino, IN->version),
 * made when there is none — or, when TID's open (of this or any other
 * object: the name may have moved) was just refused with ESTALE, a new
 * node reserved for TID's retry — and
 * remembers (PARENT, NAME) as a name the kernel may cache for the object.
 * @param[out] nodeid. @return 0, 1 (a reserved node: its version may
 *   still move before the open, so its attributes must not be cached),
 *   or -ENOMEM. */
int fn_ref_file(uint64_t parent, const char *name, const struct idx_inode *in, uint64_t tid,
		uint64_t *nodeid);
/* A lookup by thread TID begins (every LOOKUP request, whatever it finds):
 * a refused open of TID that was retried through a lookup, or whose retry
 * failed there, no longer takes the same-node leniency of a retry without
 * a lookup (fnode.h: through /proc/self/fd). */
void fn_lookup_begin(uint64_t tid);
/* Count one lookup of the view SUFFIX (text after '@') of object BASE.
 * @param[out] nodeid the view's node id. @return 0, -ENOMEM, or -ENFILE
 * (a new view while the table holds max_views of them). */
int fn_ref_view(uint64_t base, const char *suffix, const struct view_spec *spec, uint64_t *nodeid);
/* Drop N lookups of NODEID. @return the object/inode number the store
 * may now forget (its last node went), or 0. Forget it with
 * store_forget_unused(st, ino, fn_in_use): a lookup may have made a new
 * node of it before the store's transaction runs. */
uint64_t fn_forget(uint64_t nodeid, uint64_t n);
/* Whether the kernel holds a node of inode INO (a file or view node of
 * the object, or its real node): 1 or 0. Takes only fn_lock, so it may be
 * called under the store's commit_lock. */
int fn_in_use(uint64_t ino);

/* Describe view / file node NODEID. @return 0, or -ENOENT (unknown). */
int fn_view(uint64_t nodeid, struct fnode_view *out);
/* Remember that view node NODEID resolves to MAP for VERSION of its
 * object with HEADER header rows (a no-op when the node is gone). */
void fn_view_set_map(uint64_t nodeid, uint64_t version, uint32_t header, const struct view_map *map);
int fn_file(uint64_t nodeid, struct fnode_file *out);
/* The index inode a non-view node id stands for: the object of a file
 * node, the id itself otherwise; 0 for an unknown file node. */
uint64_t fn_ino(uint64_t nodeid);

/* A read handle of the version IN opens on file node NODEID for thread
 * TID. It may use the node's page cache when WANT, the node shows that
 * version, the node is not no_pc and has no writer (the writer is alone
 * on its node: writers of the object on other nodes do not matter). A
 * node reserved for TID that nobody opened yet takes IN's version.
 * @param[out] pc FN_PC_KEEP (the page cache, kept across opens),
 *   FN_PC_FRESH (the page cache, which this open must drop first: a writer
 *   had the node, and its pages may hold bytes it staged, ops.c (2a)), or
 *   0 (direct I/O).
 * @return 0 (counted: call fn_close_read(NODEID, *PC) at release), or
 *   -ESTALE when the node has a writer (it is sealed) or shows an older
 *   version and has open handles (the kernel retries on a fresh node). */
#define FN_PC_KEEP  1
#define FN_PC_FRESH 2
int fn_open_read(uint64_t nodeid, const struct idx_inode *in, int want, uint64_t tid, int *pc);
void fn_close_read(uint64_t nodeid, int pc);

/* A write handle with session WS opens on file node NODEID of object INO
 * for thread TID. The node becomes the writer's: sealed, and its
 * attributes show WS's size (fn_writer_size) until fn_close_write; it is
 * marked wpages for good (a later reader's open drops its page cache).
 * @return 0 (counted: call fn_close_write(NODEID, INO) before freeing
 *   WS), or -ESTALE when the node has open handles (it is sealed; the
 *   kernel retries the open on a fresh node). */
struct wsess;
int fn_open_write(uint64_t nodeid, uint64_t ino, uint64_t tid, const struct wsess *ws);
/* The staged size of NODEID's writer (the kernel keeps one i_size per
 * node: a writer's lseek(SEEK_END) reads it, so every attribute reply for
 * a writer's node must carry it). @return 1 and *SIZE, or 0 (no writer). */
int fn_writer_size(uint64_t nodeid, uint64_t *size);
void fn_close_write(uint64_t nodeid, uint64_t ino);
/* Open write handles of object INO (attributes are then not cached: the
 * writer's direct writes move the kernel's size). */
int fn_writers(uint64_t ino);
/* The kernel was given node NODEID's attributes to cache for TIMEOUT
 * seconds (0: not cached; a no-op for nodes other than file nodes). */
void fn_attr_cached(uint64_t nodeid, double timeout);
/* 1 when the kernel may still hold cached attributes of a file node of
 * object INO (ops.c (3c)). */
int fn_attrs_cached(uint64_t ino);

/* Streams (ops.c (6)): the file nodes of object INO that show a version
 * in [LO, HI], have open read handles and no writer — the nodes whose
 * readers follow a commit that appended to HI (and kept every byte of LO
 * .. HI - 1: swaps, pver_extends_from). *NODES is malloc'd (the caller
 * frees it; NULL when *N is 0). @return 0 or -ENOMEM (then nobody follows). */
int fn_followers(uint64_t ino, uint64_t lo, uint64_t hi, uint64_t **nodes, size_t *n);
/* Move file node NODEID from its version in [LO, HI] to IN's version,
 * size and mtime (IN keeps every byte of those: pver_extends_from), if it
 * still shows one of them (HI < IN's version) and has no writer; it then
 * becomes the object's current node unless sealed.
 * @param[out] old_size the size it showed. @return 1 moved, 0 not. */
int fn_follow(uint64_t nodeid, uint64_t lo, uint64_t hi, const struct idx_inode *in, uint64_t *old_size);

/* Name bookkeeping for invalidation: the kernel moved / dropped the entry
 * PARENT/NAME (rename, unlink). EXCHANGE swaps the two names' objects. */
void fn_name_rename(uint64_t parent, const char *name, uint64_t newparent,
		    const char *newname, int exchange);
void fn_name_gone(uint64_t parent, const char *name);

/* What the kernel may cache for object INO: its file nodes and the
 * names it was reached by. Fills at most CAP of each into the arrays
 * (names as malloc'd strings the caller frees).
 * @return 0 or -ENOMEM. */
struct fn_names {
	size_t nnodes, nnames;
	uint64_t nodes[8];
	uint64_t parents[8];
	char *names[8];
};
int fn_object_refs(uint64_t ino, struct fn_names *out);
void fn_names_free(struct fn_names *n);

/* Counters for .stats and tests. */
struct fn_stats {
	uint64_t file_nodes, view_nodes, real_nodes, objects, names;   /* now */
	uint64_t sealed;      /* write opens moved to a fresh node (ESTALE), ever */
};
void fn_get_stats(struct fn_stats *out);

#endif
