/* store — the payload store: the one core API that the FUSE daemon (fs/)
 * and the tools (tools/) use. A store is a directory (STORE/index: LMDB,
 * STORE/fragments: immutable fragment images, STORE/staging: in-flight
 * writes). This API knows nothing of FUSE.
 *
 * Identifier spaces (see also fs/fnode.h):
 *  - inode number (u64): an object's or directory's id, from the index;
 *    1 is the root; 2..15 are reserved for synthetic entries of fs/.
 *  - fragment id (u64): names one immutable image; never reused.
 *  - version (u64): an object's data version; bumped by every commit.
 *
 * Threads: every function may be called from any thread concurrently,
 * except store_open/store_close. All return 0 or -errno.
 */
#ifndef PFS_STORE_H
#define PFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include "index/idx.h"
#include "index/storeconf.h"
#include "index/view.h"

struct store;
struct pver;
struct wsess;
struct fbuf;
struct fcache_stats;

struct store_opts {
	size_t fragment_size;   /* target raw bytes per fragment; 0 = 1 MiB */
	size_t cache_size;      /* fragment cache budget; 0 = 256 MiB */
	size_t spill_size;      /* staged bytes kept in memory per handle; 0 = 8 MiB */
	int no_stream;          /* do not pre-cut sequential writes (tests, benchmarks) */
	int create;             /* initialise an empty directory */
	int rdonly;             /* read-only: no txn writes, no sweeps */
	int sweep;              /* at open: sweep orphans, staging, memory objects;
				 * at close: empty storage=memory objects */
	int lock_shared;        /* rdonly daemon: a shared lock, so no writer
				 * runs beside it (tools take none) */
	unsigned threads;       /* worker threads for (de)compression and
				 * read-ahead; 0 = one per CPU */
	int no_threads;         /* no worker threads at all: serial decoding,
				 * no read-ahead (deterministic tests) */
	int sync;               /* every commit and namespace change is durable
				 * when it returns (two flushes each); else the
				 * newest one is durable within sync_ms (durable.c) */
	unsigned sync_ms;       /* flush interval of the newest commit; 0 = 1000 */
	const struct store_conf *conf;   /* with create: what kind of store to
				 * make (NULL: local); ignored for an existing one */
	int daemon;             /* the FUSE daemon: its mount of the store tells
				 * other openers it is live (storelock.h) */
	/* Called once when the store's lock is held by a process that is
	 * exiting and store_open waits for it (NULL: a log line). */
	void (*lock_note)(const char *dir, unsigned wait_ms);
	/* RADOS stores (docs/rados.md); 0 = the default */
	unsigned rados_timeout;  /* seconds bounding every cluster operation (30) */
	unsigned rados_lease;    /* the writer's lease, seconds (30) */
	unsigned follower_lease; /* a follower is dropped after this many seconds
				  * without renewing its record (30) */
	unsigned base_every;     /* a base every this many log entries (10000) */
	uint64_t disk_cache;     /* bytes of fetched images kept in STORE/cache (1 GiB) */
	int takeover;            /* with create: a writer for an existing RADOS store */
	unsigned takeover_wait;  /* seconds to wait for the old writer's lease */
	int takeover_force;      /* break the old writer's lease at once */
};

/* What an applied log entry changed on a follower (store_set_change_cb):
 * the daemon drops what the kernel caches for it. And, on the store that
 * writes (local only), SWAP: the background recompression gave object INO
 * a new version PV with exactly the bytes of the one before
 * (recompress.c (S7)); PV is marked extends (pver_extends_from), so
 * readers follow it as after an append commit (fs/ops.c (6)). */
enum store_change_kind { STORE_CHANGE_INODE, STORE_CHANGE_DIRENT, STORE_CHANGE_ALL, STORE_CHANGE_SWAP };
struct pver;
struct store_change {
	enum store_change_kind kind;
	uint64_t ino;            /* INODE, SWAP */
	uint64_t parent;         /* DIRENT: the directory and the name (not */
	const char *name;        /*   NUL-terminated, valid during the call) */
	size_t name_len;
	struct pver *pv;         /* SWAP: the new version (valid during the call) */
};

#define STORE_INLINE_MAX 4096   /* objects up to this size live in the index */
/* The largest fragment_size of a RADOS store: an image is one RADOS object
 * and OSDs refuse writes past osd_max_write_size (90 MiB by default). */
#define STORE_RADOS_FRAG_MAX ((size_t)64 << 20)

/* Limits (docs/guide.md "Limits"). An object holds at most STORE_SIZE_MAX
 * bytes (ext4's largest file with 4 KiB blocks, so truncate(2) and
 * write(2) fail with EFBIG where ext4's do) and at most STORE_FRAGS_MAX
 * fragments (a commit needing more fails with EFBIG: 16 TiB of full 1 MiB
 * fragments; fragments cut at row ends are a little less full, so a lines
 * object very close to the size limit may not fit). Rows have no limit of
 * their own: a row (or
 * record) longer than a fragment spans several, each at most
 * fragment_size, so what one commit allocates is bounded by a few
 * fragments whatever the rows. */
#define STORE_SIZE_MAX  0xFFFFFFFF000ull          /* 16 TiB - 4 KiB */
#define STORE_FRAGS_MAX (1u << 24)

/* Open the store in DIR. With CREATE, an empty or missing-index directory
 * is initialised (index/, fragments/, staging/ created 0700).
 * A store locked by a process that is exiting is waited for, a few
 * seconds at most (storelock.h).
 * @return 0; -ENOENT DIR missing, or not a store and !create; -ENOTEMPTY
 *   DIR is not empty and not a store; -EPROTO unknown format version (a
 *   clear message is logged); -EBUSY another daemon or tool uses it;
 *   -errno. */
int store_open(const char *dir, const struct store_opts *o, struct store **out);
void store_close(struct store *st);

/* Wall-clock time in nanoseconds since the epoch. */
int64_t store_now_ns(void);

/* Make everything committed so far durable (power loss included): one
 * index flush, shared with concurrent callers; a no-op with opts.sync
 * (already durable) and on read-only stores. @return 0 or -errno (EIO,
 * ENOSPC of the flush). Images that the flush lets go are deleted by the
 * store's reaper thread, not by the caller. */
int store_sync(struct store *st);

/* Wait until the reaper deleted every released image that is due now
 * (whose release is durable: after store_sync, all of them). For tests
 * and tools that count image files; returns at once on read-only stores. */
void store_reap_wait(struct store *st);

/* Call CB(ARG, change) (on the store's thread that applies the log, or
 * the background recompressor's for SWAP) for every change a follower
 * applies and every swap. Set it right after store_open, before the store
 * is used; NULL stops (once it returns, no call runs or comes). */
void store_set_change_cb(struct store *st, void (*cb)(void *arg, const struct store_change *c), void *arg);

/* The kind of store ST is (its "store" record; local for a read-only open
 * of a store older than format 3). Valid while ST is open. */
const struct store_conf *store_get_conf(const struct store *st);

/* One-line description of an open error from store_open (static string). */
const char *store_strerror(int err);

/* ---- namespace: attributes are struct idx_inode ---- */

int store_getattr(struct store *st, uint64_t ino, struct idx_inode *out);
/* @return -ENOENT, -ENOTDIR (parent not a directory), -ENAMETOOLONG. */
int store_lookup(struct store *st, uint64_t parent, const char *name, struct idx_inode *out);
/* Create a non-directory (regular file, fifo, socket, device) named NAME.
 * Payload settings are inherited from PARENT; header defaults to 1 for
 * *.csv / *.tsv. @return -EEXIST, -EINVAL (name reserved for views),
 * -ENAMETOOLONG, -ENOTDIR, -ENOENT. */
int store_mknod(struct store *st, uint64_t parent, const char *name, uint32_t mode,
		uint64_t rdev, uint32_t uid, uint32_t gid, struct idx_inode *out);
/* A regular file created by the mount (fs/ops.c create): like store_mknod,
 * but the name is only *pending* — held in memory, not in the index — until
 * the first commit of the file (its first close or fsync) puts it in the
 * index in the same transaction as the content, or a namespace change of
 * this store or store_pend_flush puts it there first, as an empty file. A
 * crash before that loses the pending name (ns.c "Pending names"). Falls
 * back to store_mknod on a store that does not defer (RADOS, or
 * PAYLOADFS_DEFER_CREATE=0). Same errors as store_mknod. */
int store_create_pending(struct store *st, uint64_t parent, const char *name, uint32_t mode,
			 uint32_t uid, uint32_t gid, struct idx_inode *out);
/* Put every pending name in the index (one txn). @return 0 or -errno
 * (the names stay pending). */
int store_pend_flush(struct store *st);
/* Put INO's pending name (if it is one) in the index as an empty file:
 * one txn of its own, for a close or fsync that commits no content. */
int store_pend_commit(struct store *st, uint64_t ino);
/* 1 when INO's name is pending. */
int store_pending(struct store *st, uint64_t ino);
int store_mkdir(struct store *st, uint64_t parent, const char *name, uint32_t mode,
		uint32_t uid, uint32_t gid, struct idx_inode *out);
int store_symlink(struct store *st, uint64_t parent, const char *name, const char *target,
		  uint32_t uid, uint32_t gid, struct idx_inode *out);
/* Copy the link target into BUF (CAP bytes, NUL-terminated).
 * @return the target length, -EINVAL not a symlink, -ENAMETOOLONG. */
ssize_t store_readlink(struct store *st, uint64_t ino, char *buf, size_t cap);
/* @return -EPERM for a directory, -EEXIST, -EMLINK. */
int store_link(struct store *st, uint64_t ino, uint64_t newparent, const char *newname,
	       struct idx_inode *out);
/* Remove NAME. An inode whose link count reaches 0 becomes an orphan: its
 * data stays until store_forget() (the fs dropped its last reference) or
 * the next open with sweep. @return -EISDIR, -ENOENT. */
int store_unlink(struct store *st, uint64_t parent, const char *name);
/* @return -ENOTDIR, -ENOTEMPTY, -ENOENT. */
int store_rmdir(struct store *st, uint64_t parent, const char *name);
/* rename(2) semantics incl. atomic replace; FLAGS: RENAME_NOREPLACE,
 * RENAME_EXCHANGE. @return -EINVAL (into own subtree or a view name),
 * -ENOTEMPTY, -EISDIR, -ENOTDIR, -EEXIST. */
int store_rename(struct store *st, uint64_t parent, const char *name,
		 uint64_t newparent, const char *newname, unsigned flags);
/* Free an orphan's data if its link count is 0 (called by fs when the
 * kernel forgets the inode). A linked inode is left alone. */
int store_forget(struct store *st, uint64_t ino);
/* store_forget, unless IN_USE(INO) — called inside the write transaction,
 * after the link count was read as 0 — says the caller holds a reference
 * to INO again. The fs decides to forget when the kernel drops its last
 * node of an object, then calls this; a lookup in between (made while the
 * object still had a name) and an unlink before this transaction would
 * otherwise free an object that an open file uses. IN_USE must take no
 * store lock (it runs under commit_lock). */
int store_forget_unused(struct store *st, uint64_t ino, int (*in_use)(uint64_t ino));

#define STORE_SET_MODE  0x1
#define STORE_SET_UID   0x2
#define STORE_SET_GID   0x4
#define STORE_SET_ATIME 0x8
#define STORE_SET_MTIME 0x10
#define STORE_SET_CTIME 0x20
#define STORE_CLEAR_MODE 0x40  /* clear the bits ATTR->mode & 07777 (setuid and
				* setgid on a data change): nothing is written
				* when none of them is set */
/* Change metadata (not size: sizes go through a write session).
 * ctime is set to now unless STORE_SET_CTIME. */
int store_setattr(struct store *st, uint64_t ino, const struct idx_inode *attr, unsigned mask,
		  struct idx_inode *out);

/* Call CB for each entry of directory INO after name AFTER (NULL = from the
 * start), in name order, until CB returns non-zero. */
int store_readdir(struct store *st, uint64_t ino, const char *after,
		  int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type), void *arg);

int store_statfs(struct store *st, struct statvfs *out);

/* ---- extended attributes (index/xattr.c) ----
 * user.payload.format / .header / .storage are settings; .rows .version
 * .fragments .id are read-only figures (EPERM on set); other user.* are
 * stored. Names are at most IDX_NAME_MAX bytes (ERANGE), values at most
 * STORE_XATTR_MAX (E2BIG); the names of one inode fit one listxattr(2)
 * answer (STORE_XATTR_LIST_MAX) and its stored names and values take at
 * most STORE_XATTR_TOTAL bytes (ENOSPC beyond, as ext4 when its block is
 * full). A refused call stores nothing. */
#define STORE_XATTR_MAX      65536
#define STORE_XATTR_LIST_MAX 65536
#define STORE_XATTR_TOTAL    (1u << 20)
/* @return the value length (copied when CAP >= it), -ENODATA, -ERANGE. */
ssize_t store_getxattr(struct store *st, uint64_t ino, const char *name, void *buf, size_t cap);
/* FLAGS: XATTR_CREATE, XATTR_REPLACE. @return -EINVAL (bad payload value,
 * or the name "user." alone), -EPERM (read-only figure), -ENOTSUP
 * (namespace other than user.), -EEXIST, -ENODATA, -ERANGE (name too
 * long), -E2BIG (value too long), -ENOSPC (no room on the inode).
 * Changing the format or storage of an object
 * that holds data re-cuts it in one commit (a new version); the header
 * only changes what views prepend. */
int store_setxattr(struct store *st, uint64_t ino, const char *name, const void *val,
		   size_t len, int flags);
/* NUL-separated names; @return total length, -ERANGE. */
ssize_t store_listxattr(struct store *st, uint64_t ino, char *buf, size_t cap);
int store_removexattr(struct store *st, uint64_t ino, const char *name);

/* One member of store_put_many. */
struct store_put {
	uint64_t parent;        /* the directory */
	const char *name;       /* created there, or replaced */
	const void *data;
	size_t len;             /* at most STORE_INLINE_MAX */
	uint32_t mode, uid, gid;   /* of a new object */
	uint64_t ino;           /* out: the object (on success) */
};
/* Create or replace N regular files with the bytes given, in ONE index
 * write txn (index/ns.c (7)): after 0 all are visible at once; on failure
 * nothing changed and *FAILED is the index of the member that failed (N
 * when no member did: the txn itself failed). New files inherit their
 * directory's payload settings; a name given twice is written twice (the
 * later bytes win). @return 0; -EFBIG (a member over STORE_INLINE_MAX);
 * -EINVAL (a bad or reserved name, not a regular file, storage=memory,
 * a fixed:N size mismatch); -EISDIR; -ENOENT, -ENOTDIR (PARENT); -EROFS
 * (read-only store, or in a snapshot); -ENAMETOOLONG; -ENOSPC, -errno. */
int store_put_many(struct store *st, struct store_put *puts, size_t n, size_t *failed);

/* Resolve PATH (relative to the root; leading slashes ignored) to its
 * inode as the mount would (index/path.c): symbolic links followed on the
 * way, and at the end too with FOLLOW; .by-id/ID and .snapshots/NAME at
 * the root. No view suffixes. @return 0, -ENOENT, -ENOTDIR, -ELOOP,
 * -ENAMETOOLONG, -EXDEV (a link with an absolute target), -errno. */
int store_resolve(struct store *st, const char *path, int follow, struct idx_inode *out);

/* A read view: one read txn for a batch of lookups (index/path.c R1-R4).
 * store_rview_begin sets *OUT to NULL (and returns 0) for a store whose
 * names may be pending (the daemon's): every call below then takes V ==
 * NULL and answers as the plain call does. End a view on the thread that
 * began it, soon (it holds a reader slot and old pages). @return 0,
 * -ENOMEM, -errno. */
struct store_rview;
int store_rview_begin(struct store *st, struct store_rview **out);
void store_rview_end(struct store_rview *v);
/* store_resolve / store_getattr as of V's begin. */
int store_rview_resolve(struct store *st, struct store_rview *v, const char *path, int follow,
			struct idx_inode *out);
int store_rview_getattr(struct store *st, struct store_rview *v, uint64_t ino, struct idx_inode *out);
/* Copy bytes [OFF, OFF + LEN) of inline object IN (read through V, so
 * of V's snapshot; V non-NULL) into BUF. @return 0, -EINVAL (past its
 * end), -EIO (the record does not match IN's size), -errno. */
int store_rview_read_inline(struct store_rview *v, const struct idx_inode *in, void *buf,
			    uint64_t off, size_t len);

/* ---- versions: immutable, pinned views of an object's data ---- */

/* Pin the current version of object INO. @return -ENOENT, -EISDIR. */
int store_pver_get(struct store *st, uint64_t ino, struct pver **out);
/* The current version of object INO if the store holds it in memory (a
 * reference), else NULL: never loads one (a read-only store still checks
 * it against the index, as store_pver_get). */
struct pver *store_pver_cached(struct store *st, uint64_t ino);
/* Take another reference. */
struct pver *pver_ref(struct pver *pv);
/* Drop a reference; the last one unpins the fragments. NULL-safe. */
void pver_put(struct pver *pv);
/* Attributes of the object at this version (valid while pinned). */
const struct idx_inode *pver_inode(const struct pver *pv);
/* 1 when PV was made by a commit that replaced version
 * pver_inode(PV)->version - 1 with content that keeps every byte of it at
 * the same offset (an append, checked on the commit's segment list under
 * commit_lock: commit.c (9)); 0 otherwise (a rewrite, a shrink, a commit
 * whose base was not the version it replaced, a version loaded from the
 * index). Streams: fs/ops.c (6). */
int pver_extends(const struct pver *pv);
/* With pver_extends: the lowest version F such that PV keeps every byte
 * of each version in [F, version) at the same offset (version - 1, or the
 * first of a run of byte-identical versions a recompression swap made
 * before it: recompress.c (S7)); 0 without. Streams: fs/ops.c (6). */
uint64_t pver_extends_from(const struct pver *pv);
/* Read up to LEN bytes at OFF; all missing fragments in one batch.
 * @return bytes read (short at end of data), -EIO (damaged fragment:
 * logged with object and fragment), -ENOMEM. */
ssize_t pver_read(struct pver *pv, void *buf, size_t len, uint64_t off);
/* A read served from pinned cache buffers, for replies without a copy:
 * iov[0..n) point into pinned fragments (or into the version's inline
 * bytes: the caller keeps the version pinned until rvec_release). */
#define RVEC_INLINE 8
struct rvec {
	size_t n, cap;
	uint64_t len;               /* bytes described */
	struct iovec *iov;
	struct fbuf **bufs;         /* the pin behind iov[i], or NULL */
	struct iovec iov_s[RVEC_INLINE];
	struct fbuf *bufs_s[RVEC_INLINE];
};
void rvec_init(struct rvec *v);
/* Unpin and free; the rvec is empty (and reusable) afterwards. */
void rvec_release(struct rvec *v);
/* Append up to LEN bytes at OFF of PV to V (all missing fragments in one
 * batch, as pver_read). @return bytes appended (short at end of data),
 * -EIO, -ENOMEM; on failure V is left as it was. */
ssize_t pver_read_vec(struct pver *pv, uint64_t off, size_t len, struct rvec *v);

/* Read-ahead state of one sequential reader (a handle): zero-initialise;
 * the caller serializes calls on one state. */
struct readahead {
	uint64_t next;              /* where the next sequential read starts */
	uint64_t until;             /* read ahead up to here already */
	uint64_t window;            /* current read-ahead distance */
};
/* Note a read of [OFF, OFF+LEN) of PV (the handle's first read, or one
 * that continues the last: sequential; callers may note a read before
 * they fetch it, so that read-ahead overlaps it); when sequential,
 * queue the fragments of the next WINDOW bytes (growing up to
 * STORE_RA_MAX, never past LIMIT) for background loading. Never blocks. */
#define STORE_RA_MAX ((uint64_t)16 << 20)
void pver_readahead(struct pver *pv, struct readahead *ra, uint64_t off, size_t len, uint64_t limit);

/* Start loading the fragments of bytes [A, B) of PV in the background
 * (read-ahead budget permitting; never blocks). */
void pver_prefetch(struct pver *pv, uint64_t a, uint64_t b);
/* The same for the fragments holding rows [ROW_A, ROW_B) (0-based over all
 * rows, header included), from the fragment where ROW_A starts through the
 * one where ROW_B starts, at most MAX bytes of fragments from the first:
 * found with the fragment list alone (no row index, no decoding), so it
 * can run before the rows' exact offsets are known (view.c: view_prefetch). */
void pver_prefetch_rows(struct pver *pv, uint64_t row_a, uint64_t row_b, uint64_t max);

/* Byte offsets OFFS[k] where rows ROWS[k] start (N <= 8), with every
 * fragment to scan fetched in ONE batch. @return 0, -EIO, -EINVAL. */
int pver_row_offsets(struct pver *pv, const uint64_t *rows, size_t n, uint64_t *offs);

/* Byte offset where row ROW (0-based over all rows, header included)
 * starts; rows >= the row count map to the size. */
int pver_row_offset(struct pver *pv, uint64_t row, uint64_t *off);
/* The first LEN bytes of PV when its first fragment's row index holds
 * them (format 4: pver.c (6)), read from the index, decoding nothing, and
 * kept with PV; NULL otherwise (read them from the fragment). Valid while
 * PV is held. */
const char *pver_head_load(struct pver *pv, uint64_t len);
/* The same, only if an earlier pver_head_load kept them. */
const char *pver_head(const struct pver *pv, uint64_t len);
/* Append bytes [OFF, OFF + LEN) of PV to V from the first HLEN bytes kept
 * by pver_head_load (OFF + LEN <= HLEN), pinning nothing (valid while PV
 * is held). @return LEN, 0 when they are not kept, -ENOMEM. */
ssize_t pver_head_vec(struct pver *pv, uint64_t hlen, uint64_t off, size_t len, struct rvec *v);
uint32_t pver_nfrags(const struct pver *pv);
/* The I-th fragment descriptor (I < pver_nfrags). */
const struct frag_desc *pver_frag(const struct pver *pv, uint32_t i);

/* ---- write sessions: per-handle staging, commit on close ---- */

/* Begin staging on top of BASE (the session takes its own reference).
 * With VIEW (VIEW_ROWS only; NULL for the whole object) the session's
 * content is the view's bytes and its commit replaces the view's rows and
 * the header (DESIGN §1). TRUNCATE starts from empty content. */
int store_wsess_begin(struct store *st, struct pver *base, const struct view_spec *view,
		      int truncate, struct wsess **out);
int wsess_write(struct wsess *ws, const void *buf, size_t len, uint64_t off);
int wsess_truncate(struct wsess *ws, uint64_t size);
/* fallocate(2) of the session's content [OFF, OFF+LEN) (LEN > 0), staged
 * like a write and committed with the session. The store keeps no holes:
 * zeros cost next to nothing once compressed.
 *  - wsess_allocate (modes 0 and FALLOC_FL_KEEP_SIZE): the space the range
 *    adds past the end must be free on the store's file system (checked,
 *    not held: -ENOSPC); without KEEP_SIZE the content grows to OFF+LEN
 *    with zeros. Nothing changes inside the content.
 *  - wsess_zero (FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE): the range
 *    reads as zeros; with KEEP_SIZE only the part before the end changes,
 *    else the content grows to OFF+LEN (the growth checked as above).
 * @return 0, -EFBIG (OFF+LEN beyond STORE_SIZE_MAX), -ENOSPC, -ENOMEM
 *   (nothing changed). */
int wsess_allocate(struct wsess *ws, uint64_t off, uint64_t len, int keep_size);
int wsess_zero(struct wsess *ws, uint64_t off, uint64_t len, int keep_size);
/* Read the session's current content. @return bytes read or -errno. */
ssize_t wsess_read(struct wsess *ws, void *buf, size_t len, uint64_t off);
uint64_t wsess_size(const struct wsess *ws);
int wsess_dirty(const struct wsess *ws);
/* Commit (no-op when clean): fragments written and made durable first,
 * then one index transaction; the session is rebased on the new version
 * and clean again. On failure the object keeps its previous version and
 * the session keeps its staged content.
 * @return 0, -ENOSPC, -EIO, -EINVAL (fixed:N size not a multiple of N,
 * view content without its header rows), -ENOENT (object deleted). */
int wsess_commit(struct wsess *ws);
/* wsess_commit, and *OUT = a reference to the version it committed (the
 * caller puts it), or NULL when nothing was committed (clean, or failed).
 * The version is the one this commit made, whatever commits the session
 * makes next (streams: fs/ops.c (6) reads pver_extends of it). */
int wsess_commit_ref(struct wsess *ws, struct pver **out);
/* copy_file_range(2) into a session: content [OFF, OFF+n) becomes bytes
 * [SRC_OFF, SRC_OFF+n) of version SRC (of any object, or of a view of it:
 * VM is the view's byte map, NULL for the whole object), with n = LEN
 * clipped at the source's end (0 at or past it). Nothing is read or
 * written: the session references SRC (pinned until the session is reset
 * or freed) and its commit reuses SRC's fragments that lie whole at a row
 * boundary by id, re-cutting only the pieces at the edges; a source of
 * another format or storage is copied as bytes at commit. Past the end of
 * the content the gap becomes zeros (a hole), as with a write. Writing
 * either side later never changes the other.
 * @return n, -EFBIG (OFF + n beyond 2^50), -ENOMEM (nothing changed). */
ssize_t wsess_copy(struct wsess *ws, struct pver *src, const struct view_map *vm, uint64_t src_off,
		   uint64_t len, uint64_t off);
/* The same from the session's own content [SRC_OFF, SRC_OFF+LEN) (memmove
 * semantics: overlapping ranges copy the bytes as they were). */
ssize_t wsess_copy_within(struct wsess *ws, uint64_t src_off, uint64_t len, uint64_t off);
/* The same from another session's content, as bytes (read, then written:
 * its staged bytes are its own), at most 64 MiB per call (a short copy).
 * SRC == DST is wsess_copy_within. Never holds both sessions' locks.
 * @return bytes copied (short on a failure after some), -errno. */
ssize_t wsess_copy_sess(struct wsess *dst, struct wsess *src, uint64_t src_off, uint64_t len,
			uint64_t off);
/* The version the session is based on (borrowed reference). */
struct pver *wsess_base(const struct wsess *ws);
/* Discard staged content and free. NULL-safe. */
void wsess_free(struct wsess *ws);

/* Resize object INO (or its rows view VIEW; NULL = the object) to SIZE in
 * one commit: truncate(2) without a handle. A view of another kind is
 * -EROFS. */
int store_truncate(struct store *st, uint64_t ino, const struct view_spec *view, uint64_t size);

/* ---- snapshots (index/snap.c) ----
 * A snapshot is a read-only copy of the whole tree as of one instant,
 * under inode numbers of its own ([first, first + count): its root
 * directory is FIRST); it shares every fragment (reference counts), so
 * taking one costs O(index records) and no fragment bytes. Its inodes are
 * read with the ordinary calls (store_getattr, store_lookup, store_readdir,
 * store_pver_get, store_getxattr...); every call that would change one
 * returns -EROFS. */
/* Take snapshot NAME in one write txn. @param[out] out its record (may be
 * NULL). @return 0, -EEXIST (a snapshot of that name), -EINVAL (empty, '/',
 * a view suffix), -ENAMETOOLONG, -ENOSPC, -errno; on failure nothing
 * changed. */
int store_snap_create(struct store *st, const char *name, struct idx_snap *out);
/* Drop snapshot NAME in one (freeing) txn: its records go, images no
 * longer referenced are released (deleted once the drop is durable).
 * @return 0, -ENOENT, -errno. */
int store_snap_drop(struct store *st, const char *name);
/* @return 0 and *OUT, -ENOENT, -ENAMETOOLONG. */
int store_snap_lookup(struct store *st, const char *name, struct idx_snap *out);
/* Call CB for each snapshot in order of creation until it returns
 * non-zero (returned). */
int store_snap_list(struct store *st, int (*cb)(void *arg, const struct idx_snap *s), void *arg);
/* The snapshot that inode INO belongs to. @return 0, -ENOENT (a live one). */
int store_snap_of(struct store *st, uint64_t ino, struct idx_snap *out);

/* ---- counters for tests and payloadctl ---- */
struct store_stats {
	uint64_t frags_written;    /* fragment images written since open */
	uint64_t frags_deleted;
	uint64_t commits;
	uint64_t frag_records;     /* fragment index records put or deleted by commits */
	uint64_t cache_hits, cache_misses, cache_bytes;
	uint64_t syncs, sync_failures;   /* index flushes by store_sync */
	uint64_t deletes_pending;  /* released images not deleted yet: waiting
				    * for a flush, or for the reaper */
	uint64_t log_rounds;       /* commit rounds that committed (index/gcommit.c):
				    * one log append each on a RADOS writer, one
				    * index flush each on a local store */
	uint64_t log_round_members;   /* ... and the commits they carried */
	uint64_t row_scans;        /* fragments decoded to find where a row starts */
	uint64_t rowidx_hits;      /* rows found through a fragment's row index */
	uint64_t view_resolves;    /* row views resolved (view_resolve) */
	uint64_t load_retries;     /* cold version loads started over: an image was
				    * released meanwhile (pver.c (7)) */
	uint64_t index_txns;       /* LMDB write txns that committed a change (each
				    * one fdatasync of the index; idx_write_commits) */
	uint64_t frags_staged_raw; /* images written raw because the encoders were
				    * behind (index/recompress.c (P1)) */
	uint64_t frags_recompressed;   /* staged images the background pass swapped
					* for compressed ones (recompress.c) */
	uint64_t recompress_skipped;   /* staged images it left raw: shared by
					* several records (a copy, a snapshot) */
	uint64_t staged_pending;   /* staged images the pass has not handled yet
				    * (counted at open, then kept up to date) */
};
void store_get_stats(struct store *st, struct store_stats *out);

/* Compress staged fragments (index/recompress.c). store_recompress_pass
 * scans the index and swaps at most MAX staged images for compressed
 * ones, one small txn each; *LEFT (may be NULL): staged records it did not
 * swap (beyond MAX, shared, or failed). @return the number swapped, or
 * -EROFS, -errno. store_recompress_one: the swap of record (INO, D->off),
 * D as read from the index: @return 1 swapped, 0 not (no longer staged,
 * shared, released), -errno. store_recompress_kick: wake the daemon's
 * pass (no-op without one). */
int store_recompress_pass(struct store *st, size_t max, uint64_t *left);
int store_recompress_one(struct store *st, uint64_t ino, const struct frag_desc *d);
void store_recompress_kick(struct store *st);
/* Committers waiting now to join a commit round, or in one for their turn
 * to run (RADOS writer; tests). */
unsigned store_commit_waiting(struct store *st);
/* The fragment cache's counters (hits, misses, evictions, bytes, I/O
 * batches, read-ahead, in-flight bytes). */
void store_get_cache_stats(struct store *st, struct fcache_stats *out);

/* ---- RADOS stores: what tools need (docs/rados.md) ---- */

/* May a tool that holds store ST (gc, fsck --repair) delete fragment
 * images no index record names, now? A local store: yes. A RADOS writer
 * store: only while no follower record holds an image back (each
 * follower's horizon at the log's end: docs/rados.md "Deleting images
 * across hosts"; a live follower may still read an image released after
 * its horizon), and (opened read-only) only when the local index is at the
 * log's end (else it would call images of newer commits unreferenced).
 * @return 1 yes; 0 not now (WHY, CAP bytes: what holds back); -EROFS a
 * follower store (its writer deletes); -errno (the cluster did not
 * answer). */
int store_unref_delete_ok(struct store *st, char *why, size_t cap);

/* A tool holding images of a RADOS store while it copies a state of it
 * (payloadctl snapshot): a follower record of its own, with HORIZON, its
 * record renewed every second by a thread, so that the writer deletes no
 * image released after HORIZON while the hold lives (docs/rados.md). The
 * writer sees the record at its next pass (a second or so): images it
 * deleted before may be gone. */
struct store_hold;
/* @return 0; -EINVAL (not a RADOS store); -errno. */
int store_hold_start(struct store *st, uint64_t horizon, struct store_hold **out);
/* Move the horizon (forward or back). @return 0; -ESTALE (the writer
 * expired the hold: it renewed too late; start a new one); -errno. */
int store_hold_set(struct store_hold *h, uint64_t horizon);
/* 0 while the hold is live; -ESTALE once the writer expired it. */
int store_hold_check(struct store_hold *h);
/* Remove the record. NULL-safe. */
void store_hold_end(struct store_hold *h);
/* The last position of ST's index log in the cluster (a RADOS store).
 * @return 0, -EINVAL (local), -errno. */
int store_log_tail(struct store *st, uint64_t *tail);
/* Bring IDX (a copy of ST's index, made by idx_copy) up to ST's log end:
 * apply the entries after its log_lsn, from the newest base when the log
 * no longer holds them. @param[out] pos its position now. @return 0 or
 * -errno. */
int store_log_catch_up(struct store *st, struct idx *idx, uint64_t *pos);

/* Make IDX (a copy of a RADOS store's index: payloadctl snapshot) the
 * index of a local store: its "store" record says local, its log position
 * goes. @return 0 or -errno. */
int store_index_make_local(struct idx *idx);

/* Internal access for tools living on the same core (fsck). */
struct idx *store_idx(struct store *st);
struct frag_backend *store_backend(struct store *st, int memory);
struct fcache *store_cache(struct store *st);

#endif
