/* idx — the LMDB metadata schema and record codecs. The only module that
 * includes lmdb.h; MDB_* codes become -errno here (logged with
 * mdb_strerror). Everything above works with these txn-scoped calls.
 *
 * Databases (keys big-endian so they sort; values little-endian, fixed
 * layouts in docs/format.md):
 *   meta     "format" -> u32, "next_ino" -> u64, "next_frag" -> u64
 *   inodes   ino u64 -> struct idx_inode record
 *   dirents  parent u64 + name -> child ino u64 + type u32
 *   frags    ino u64 + byte offset u64 -> struct frag_desc record
 *   refs     fragment id u64 -> u32 reference count
 *   inline   ino u64 -> bytes (tiny object data or symlink target)
 *   xattrs   ino u64 + name -> value
 *   orphans  ino u64 -> (empty): unlinked inodes still open
 *   snapshots first ino u64 -> snapshot record (name, inode range, figures)
 *   rowidx   fragment id u64 -> row index of the fragment (format 4, rowidx.h)
 *
 * A txn belongs to one thread at a time. A read txn sees one consistent
 * snapshot. Pointers returned into a txn are valid only until the txn ends.
 */
#ifndef PFS_IDX_H
#define PFS_IDX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Formats this build reads: 1 (no snapshot was ever taken), 2 (the
 * store has, or had, snapshots: inodes of reserved ranges that a reader
 * of format 1 would take for lost ones), 3 (the store record; fragments
 * that continue a row, FRAG_F_CONT), 4 (the rowidx db: a sparse row index
 * per fragment; fragments written before it have none), 5 (FRAG_F_STAGED:
 * fragments stored raw at ingest, compressed later by index/recompress.c).
 * New stores are made as 5, and a read-write open raises an older store
 * to 5 before anything else. */
#define IDX_FORMAT_MIN     1
#define IDX_FORMAT_VERSION 5
#define IDX_ROOT_INO  1
#define IDX_FIRST_INO 16          /* 2..15 reserved for synthetic entries */
#define IDX_NAME_MAX  255

struct idx;
struct idx_txn;

enum pfmt_kind { PFMT_LINES = 0, PFMT_FIXED = 1 };

/* Inode flags. */
#define INODE_F_FMT_SET     0x1   /* format set explicitly (inherited by children) */
#define INODE_F_HDR_SET     0x2   /* header set explicitly */
#define INODE_F_MEMORY      0x4   /* storage=memory */
#define INODE_F_STORAGE_SET 0x8   /* storage set explicitly */
#define INODE_F_INLINE      0x10  /* data lives in the inline db */
#define INODE_F_SNAP        0x20  /* belongs to a snapshot: read-only */

struct idx_inode {
	uint64_t ino;
	uint32_t mode, uid, gid, nlink;
	uint64_t rdev;
	uint64_t size;
	uint64_t rows;          /* all rows, header rows included */
	int64_t  atime_ns, mtime_ns, ctime_ns;
	uint64_t version;       /* bumped by every data commit */
	uint32_t fmt_kind;      /* enum pfmt_kind */
	uint32_t fmt_recsize;   /* fixed:N */
	uint32_t header;        /* header rows (lines only) */
	uint32_t flags;         /* INODE_F_* */
	uint32_t nfrags;
	uint32_t reserved;
	uint64_t parent;        /* directories: the parent directory */
	int64_t  mset_ns;       /* when mtime was last set explicitly (utimens) */
};

/* A fragment as an object's version lists it. A row (lines) or record
 * (fixed:N) longer than a fragment spans several: every fragment but the
 * first of such a run has FRAG_F_CONT, its first byte continuing the row
 * that started in an earlier fragment (format 3, docs/format.md). first_row
 * is the number of rows that start before the fragment, so for a
 * FRAG_F_CONT fragment it is the number of the first row that STARTS in
 * it (if any: rows may be 0 for a fragment wholly inside a row). */
#define FRAG_F_MEMORY 0x1     /* image lives in the memory backend */
#define FRAG_F_CONT   0x2     /* its first byte continues the previous fragment's row */
#define FRAG_F_STAGED 0x4     /* stored raw because the encoders fell behind: to be
                               * compressed by the background pass (format 5) */
struct frag_desc {
	uint64_t off;           /* byte offset in the object */
	uint64_t first_row;     /* rows starting before it (its first row's number) */
	uint64_t id;
	uint32_t len;           /* raw bytes */
	uint32_t rows;          /* rows starting in it (0 when it lies inside one) */
	uint32_t stored_len;    /* image bytes after the header */
	uint16_t codec;
	uint16_t flags;         /* FRAG_F_* */
	uint64_t checksum;
};

/* Open (creating when CREATE) the environment in DIR. @return 0, -ENOENT
 * (absent and !CREATE), -EPROTO (store of an unknown format version:
 * logged), -errno. */
int idx_open(const char *dir, int create, int rdonly, struct idx **out);
void idx_close(struct idx *x);

/* Begin a txn. @return 0, -EAGAIN (reader table full), -ENOMEM, -EROFS. */
int idx_begin(struct idx *x, int rdonly, struct idx_txn **out);
/* Commit (and free) T. @return 0 or -ENOSPC (map full / disk full),
 * -EIO, injected fault "lmdb_commit". T is freed either way. */
int idx_commit(struct idx_txn *t);
/* Abort and free T. NULL-safe. */
void idx_abort(struct idx_txn *t);
/* A child of write txn P (an LMDB nested txn; idx_lmdb.c invariant 9):
 * its changes reach P when idx_commit(child) merges them (P then commits
 * or aborts them all); idx_abort(child), or a failed idx_commit(child),
 * drops them and the ops it captured, and P goes on. One child at a time;
 * P must not be used while its child is open, and P ends on the thread
 * that began it. @return 0, -ENOMEM, -errno. */
int idx_child_begin(struct idx_txn *p, struct idx_txn **out);
/* Bytes of the log entry write txn T (with its children) captured so far;
 * 0 without a commit hook. */
size_t idx_txn_log_bytes(const struct idx_txn *t);
/* 1 when write txn T is captured for the commit hook (idx_lmdb.c (7)). */
int idx_txn_logged(const struct idx_txn *t);

/* meta counters */
int idx_meta_get_u64(struct idx_txn *t, const char *key, uint64_t *val);   /* -ENOENT */
int idx_meta_put_u64(struct idx_txn *t, const char *key, uint64_t val);
/* A meta record's bytes (copied into BUF, cap CAP; *LEN its length).
 * @return 0, -ENOENT, -EOVERFLOW (longer than CAP), -errno. */
int idx_meta_get_bytes(struct idx_txn *t, const char *key, void *buf, size_t cap, size_t *len);
int idx_meta_put_bytes(struct idx_txn *t, const char *key, const void *val, size_t len);

/* inodes */
int idx_inode_get(struct idx_txn *t, uint64_t ino, struct idx_inode *out);  /* -ENOENT */
int idx_inode_put(struct idx_txn *t, const struct idx_inode *in);
int idx_inode_del(struct idx_txn *t, uint64_t ino);
/* Next free inode number (persists the counter). */
int idx_alloc_ino(struct idx_txn *t, uint64_t *ino);

/* dirents */
int idx_dirent_get(struct idx_txn *t, uint64_t parent, const char *name, uint64_t *child, uint32_t *type);
int idx_dirent_put(struct idx_txn *t, uint64_t parent, const char *name, uint64_t child, uint32_t type);
int idx_dirent_del(struct idx_txn *t, uint64_t parent, const char *name);  /* -ENOENT */
/* Iterate PARENT's entries in name order, starting after AFTER (NULL = from
 * the first). CB returns non-zero to stop (that value is returned). */
int idx_dirent_iter(struct idx_txn *t, uint64_t parent, const char *after,
		    int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type), void *arg);
/* 1 when PARENT has at least one entry, 0 when none, -errno. */
int idx_dirent_any(struct idx_txn *t, uint64_t parent);

/* fragment lists */
/* Load all of INO's fragments in offset order into a malloc'd array. */
int idx_frags_load(struct idx_txn *t, uint64_t ino, struct frag_desc **out, uint32_t *n);
/* The fragment containing byte OFF (the last with off <= OFF): O(log F). */
int idx_frag_at(struct idx_txn *t, uint64_t ino, uint64_t off, struct frag_desc *out);
int idx_frag_put(struct idx_txn *t, uint64_t ino, const struct frag_desc *d);
int idx_frag_del(struct idx_txn *t, uint64_t ino, uint64_t off);
/* Iterate every fragment record of every inode (fsck). */
int idx_frags_iter_all(struct idx_txn *t,
		       int (*cb)(void *arg, uint64_t ino, const struct frag_desc *d), void *arg);

/* row indexes (format 4; idx_lmdb.c invariant 10, index/rowidx.h).
 * idx_rowidx_get: *VAL valid until the txn ends; -ENOENT when the
 * fragment has none (or the store has no rowidx db). idx_rowidx_del: 0
 * also when absent. */
int idx_rowidx_get(struct idx_txn *t, uint64_t frag_id, const void **val, size_t *len);
int idx_rowidx_put(struct idx_txn *t, uint64_t frag_id, const void *val, size_t len);
int idx_rowidx_del(struct idx_txn *t, uint64_t frag_id);
/* Every fragment id that has a row index, in id order (fsck). */
int idx_rowidx_iter(struct idx_txn *t, int (*cb)(void *arg, uint64_t frag_id), void *arg);

/* reference counts; DELTA may be negative. @param[out] now new count.
 * A count reaching 0 deletes the record (and the fragment's row index). Underflow is -EUCLEAN (corrupt). */
int idx_ref_add(struct idx_txn *t, uint64_t frag_id, int delta, uint32_t *now);
int idx_ref_get(struct idx_txn *t, uint64_t frag_id, uint32_t *count);    /* 0 when absent */
int idx_refs_iter(struct idx_txn *t, int (*cb)(void *arg, uint64_t id, uint32_t count), void *arg);

/* inline bytes; *data valid until the txn ends */
int idx_inline_get(struct idx_txn *t, uint64_t ino, const void **data, size_t *len);
int idx_inline_put(struct idx_txn *t, uint64_t ino, const void *data, size_t len);
int idx_inline_del(struct idx_txn *t, uint64_t ino);  /* 0 also when absent */

/* xattrs; *val valid until the txn ends */
int idx_xattr_get(struct idx_txn *t, uint64_t ino, const char *name, const void **val, size_t *len);
int idx_xattr_put(struct idx_txn *t, uint64_t ino, const char *name, const void *val, size_t len);
int idx_xattr_del(struct idx_txn *t, uint64_t ino, const char *name);   /* -ENODATA */
int idx_xattr_iter(struct idx_txn *t, uint64_t ino,
		   int (*cb)(void *arg, const char *name), void *arg);
int idx_xattr_del_all(struct idx_txn *t, uint64_t ino);

/* orphans */
int idx_orphan_put(struct idx_txn *t, uint64_t ino);
int idx_orphan_del(struct idx_txn *t, uint64_t ino);
int idx_orphans_iter(struct idx_txn *t, int (*cb)(void *arg, uint64_t ino), void *arg);

/* The format version record (idx_format_get), and raising it to
 * IDX_FORMAT_VERSION inside T (a no-op when it is already). */
int idx_format_get(struct idx_txn *t, uint32_t *version);
int idx_format_raise(struct idx_txn *t);

/* Snapshots: a snapshot owns the inode numbers [first, first + count);
 * its root directory is inode FIRST. */
struct idx_snap {
	uint64_t first;
	uint64_t count;
	int64_t created_ns;
	uint64_t frags;          /* fragment records it holds */
	uint64_t bytes;          /* bytes of its objects */
	char name[IDX_NAME_MAX + 1];
};
/* Put (or replace) S, keyed by S->first. @return 0, -EINVAL (name), -errno. */
int idx_snap_put(struct idx_txn *t, const struct idx_snap *s);
int idx_snap_del(struct idx_txn *t, uint64_t first);                     /* -ENOENT */
/* Every snapshot in order of first inode (= of creation). */
int idx_snaps_iter(struct idx_txn *t, int (*cb)(void *arg, const struct idx_snap *s), void *arg);
/* The snapshot whose range holds INO: O(log S). @return 0, -ENOENT. */
int idx_snap_at(struct idx_txn *t, uint64_t ino, struct idx_snap *out);
/* Inodes FROM <= ino < TO, in order. */
int idx_inodes_iter_range(struct idx_txn *t, uint64_t from, uint64_t to,
			  int (*cb)(void *arg, const struct idx_inode *in), void *arg);
/* Delete every dirent of directory PARENT. */
int idx_dirent_del_all(struct idx_txn *t, uint64_t parent);

/* Iterate all inodes (fsck, sweeps). */
int idx_inodes_iter(struct idx_txn *t, int (*cb)(void *arg, const struct idx_inode *in), void *arg);

/* Durability (index/durable.c). idx_set_metasync: ON flushes the meta
 * page at every commit (LMDB's default); off (MDB_NOMETASYNC) leaves it to
 * the next flush: the newest commit may be undone by a power loss, the
 * environment never torn. idx_sync: flush everything committed (fault
 * point "lmdb_sync"). idx_last_written: the LMDB txn id of the newest
 * txn committed by this process that wrote something (0: none yet). Its
 * commit flushed the data file after every earlier txn's meta page was
 * written, so a larger value than one read after txn T committed means
 * T's meta page is durable. An empty txn (no put or del) writes nothing
 * and flushes nothing, and never moves it.
 * @return 0 or -errno. */
int idx_set_metasync(struct idx *x, int on);
int idx_sync(struct idx *x);
uint64_t idx_last_written(struct idx *x);
/* LMDB's id of the newest committed txn, of this process or any other
 * (the newer meta page, mdb_env_info's me_last_txnid): it grows with
 * every commit that wrote something. A commit's meta page is written
 * before a new read txn can see the commit, so once a read txn sees a
 * commit this value is at least that commit's id. No txn needed. */
uint64_t idx_last_txnid(struct idx *x);
/* T's id: for a read txn, the id of the commit whose snapshot it reads. */
uint64_t idx_txn_id(const struct idx_txn *t);
/* Top-level write txns that committed having written something since
 * open: each flushed the data file once (fdatasync; its meta page too with
 * metasync on). A round of group commit is one (gcommit.c). */
uint64_t idx_write_commits(struct idx *x);

/* The clean-close marker (meta "clean"). idx_clean_mark(T, 1) records
 * T's own txn id: the store is clean as long as no txn committed after T.
 * idx_clean_mark(T, 0) clears it. idx_clean_get: *CLEAN is 1 when the
 * marker names the newest committed txn (nothing, by any binary, wrote
 * since the clean close), else 0. @return 0 or -errno. */
int idx_clean_mark(struct idx_txn *t, int clean);
int idx_clean_get(struct idx *x, int *clean);

/* ---- the index log (idx_lmdb.c invariants 7 and 8; index/ilog.h) ---- */
struct ilog_buf;
struct ilog_op;
/* Store the entry in BUF (its ops) durably at the log's next position:
 * complete it with ilog_buf_finish(BUF, lsn, epoch), store it, set *LSN.
 * Called by idx_commit under LMDB's writer lock, before the local commit.
 * @return 0, or -errno (the txn is then aborted: nothing changes). */
typedef int (*idx_commit_hook)(void *arg, struct ilog_buf *buf, uint64_t *lsn);
/* Capture every later write txn's ops and pass them to HOOK (NULL: stop).
 * Call while no write txn is open. */
void idx_set_commit_hook(struct idx *x, idx_commit_hook hook, void *arg);
/* The position of the last log entry this index holds (meta "log_lsn";
 * 0: none). @return 0 or -errno. */
int idx_log_lsn(struct idx *x, uint64_t *lsn);
/* Apply the log entry DATA/LEN (ilog_check'ed here) in one write txn that
 * also records its position, if it is the next one (lsn == log_lsn + 1).
 * After the commit, CB(ARG, op) is called for each op (may be NULL).
 * @return 0; 1 when the entry is already in (lsn <= log_lsn: nothing
 * done); -EUCLEAN damaged; -ERANGE a gap (lsn > log_lsn + 1: the entries
 * between are needed first); -errno. */
int idx_apply(struct idx *x, const void *data, size_t len,
	      void (*cb)(void *arg, const struct ilog_op *op), void *arg);
/* A base: the whole index (but local meta keys) as a series of log
 * entries of puts (about CHUNK bytes each; lsn = the index's log_lsn,
 * epoch = the chunk's number from 0), from one read txn. EMIT(ARG, data,
 * len) stores each; a non-zero return stops the dump and is returned.
 * @param[out] lsn the position the base stands for. @return 0 or -errno. */
int idx_base_dump(struct idx *x, size_t chunk, int (*emit)(void *arg, const void *data, size_t len),
		  void *arg, uint64_t *lsn);
/* Replace the whole index (but local meta keys) by a base, in one write
 * txn: idx_base_begin empties it, idx_base_add applies one chunk
 * (checked: -EUCLEAN), idx_base_end records LSN as log_lsn and commits
 * (or aborts when RC != 0). @return 0 or -errno. */
int idx_base_begin(struct idx *x, struct idx_txn **t);
int idx_base_add(struct idx_txn *t, const void *data, size_t len);
int idx_base_end(struct idx_txn *t, uint64_t lsn, int rc);

/* The LMDB map's current size in bytes (it grows: idx_lmdb.c (5)). */
size_t idx_map_size(struct idx *x);

/* Copy the environment to DIR (compacting), for payloadctl snapshot. */
int idx_copy(struct idx *x, const char *dir);

#endif
