/* ilog — the index log's entries: every record a write txn put into or
 * deleted from the index, encoded so that another copy of the index can
 * apply them in order (DESIGN §8; docs/format.md "Index log entries"). A
 * RADOS store's writer appends one entry per txn to the cluster before
 * the txn commits locally; followers and a new writer apply them. Pure
 * functions, no LMDB (idx_lmdb.c captures and applies; the fuzzers call
 * the decoder directly). Any thread may call; a buffer is one thread's.
 *
 * Entry layout (all little-endian):
 *   0  magic "PFL1"        4
 *   4  entry version (1)   1, then 3 zero bytes
 *   8  lsn                 8   position in the log (1, 2, ...)
 *  16  epoch               8   the writer session that appended it
 *  24  nops                4
 *  28  ops bytes           4   length of the ops that follow
 *  32  ops: db u8, kind u8 (1 put, 2 del), key length u16, value length
 *      u32 (0 for del), key, value — nops times
 *  end xxh64 of every byte before it, 8
 *
 * db numbers are stable (ILOG_DB_*); a decoder refuses unknown ones.
 */
#ifndef PFS_ILOG_H
#define PFS_ILOG_H

#include <stddef.h>
#include <stdint.h>

enum ilog_db {
	ILOG_DB_META = 0, ILOG_DB_INODES = 1, ILOG_DB_DIRENTS = 2, ILOG_DB_FRAGS = 3,
	ILOG_DB_REFS = 4, ILOG_DB_INLINE = 5, ILOG_DB_XATTRS = 6, ILOG_DB_ORPHANS = 7,
	ILOG_DB_SNAPS = 8, ILOG_DB_ROWIDX = 9, ILOG_DB_COUNT = 10
};
enum ilog_kind { ILOG_PUT = 1, ILOG_DEL = 2 };

#define ILOG_HDR       32
#define ILOG_TRAILER   8
#define ILOG_KEY_MAX   511          /* longer than any index key */
#define ILOG_VAL_MAX   (1u << 20)   /* longer than any index value */
#define ILOG_OP_HDR    8

/* One operation, as decoded (pointers into the entry). */
struct ilog_op {
	uint8_t db, kind;
	const unsigned char *key;
	size_t klen;
	const unsigned char *val;    /* NULL for del */
	size_t vlen;
};

/* An entry being built (the ops of one txn). */
struct ilog_buf {
	unsigned char *data;         /* ILOG_HDR bytes, then the ops */
	size_t len, cap;
	uint32_t nops;
	int err;                     /* -ENOMEM or -E2BIG once an add failed */
};

/* Meta keys that belong to one copy of the index and are never logged
 * (the clean-close marker, the applied position, the store's own
 * configuration). */
int ilog_meta_local(const void *key, size_t klen);

/* Start BUF empty (allocates nothing yet). */
void ilog_buf_init(struct ilog_buf *buf);
/* Forget the ops (keeps the memory). */
void ilog_buf_reset(struct ilog_buf *buf);
void ilog_buf_free(struct ilog_buf *buf);
/* Append one op. A failure is remembered in buf->err (the txn must then
 * fail) and returned: -ENOMEM, -E2BIG (a key or value over the limits,
 * or an entry past 1 GiB), -EINVAL (bad db or kind). */
int ilog_buf_add(struct ilog_buf *buf, uint8_t db, uint8_t kind, const void *key, size_t klen,
		 const void *val, size_t vlen);
/* Complete the entry in BUF (header with LSN and EPOCH, trailer); BUF then
 * holds buf->len bytes ready to store. @return 0, buf->err, -ENOMEM. */
int ilog_buf_finish(struct ilog_buf *buf, uint64_t lsn, uint64_t epoch);

/* Check a whole entry DATA/LEN: magic, version, lengths, every op, the
 * checksum. @param[out] lsn, epoch, nops (may be NULL)
 * @return 0, or -EUCLEAN (damaged or not an entry: nothing is applied). */
int ilog_check(const void *data, size_t len, uint64_t *lsn, uint64_t *epoch, uint32_t *nops);

/* Iterate the ops of an entry that passed ilog_check: *POS starts at 0.
 * @return 1 and *OP, 0 at the end. */
int ilog_next(const void *data, size_t len, size_t *pos, struct ilog_op *op);

/* What an op means to the store above (for caches and notices). */
enum ilog_what {
	ILOG_W_OTHER = 0,
	ILOG_W_INODE,     /* ino: its record, data, inline bytes or xattrs changed */
	ILOG_W_DIRENT,    /* parent, name (not NUL-terminated, name_len) changed */
	ILOG_W_REF_GONE,  /* frag: its count reached 0 (refs record deleted) */
	ILOG_W_REF_SET,   /* frag: its count is set (> 0) */
	ILOG_W_ORPHAN,    /* ino: put in or taken out of the orphans table */
	ILOG_W_SNAP,      /* a snapshot record changed */
};
struct ilog_effect {
	enum ilog_what what;
	uint64_t ino, parent, frag;
	const char *name;
	size_t name_len;
};
/* Decode what OP changes. Malformed keys give ILOG_W_OTHER. */
void ilog_effect(const struct ilog_op *op, struct ilog_effect *e);

#endif
