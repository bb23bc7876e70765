/* payload.h — libpayload: a payloadfs store without FUSE.
 *
 * The same core as the payloadfs daemon and payloadctl: a program opens a
 * store directory and reads many objects (or byte ranges, or row ranges
 * with the mount's @rows semantics) in one call, without an open/read/close
 * round trip through the kernel per object. See payload(3).
 *
 * Conventions: every call that can fail returns 0 (or a count, where
 * said) or a negative errno; payload_strerror(err) describes a code and
 * payload_errmsg() the calling thread's last failure, naming what failed.
 * Handles are opaque. Every call may be made from any thread at once,
 * except payload_close, which must be the last call on its store (after
 * every version of it was released).
 */
#ifndef PAYLOAD_H
#define PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PAYLOAD_VERSION_MAJOR 0
#define PAYLOAD_VERSION_MINOR 1

typedef struct payload_store payload_store;
typedef struct payload_version payload_version;

/* payload_open modes */
#define PAYLOAD_RDONLY 0   /* always allowed, also while a daemon has the store mounted */
#define PAYLOAD_RDWR   1   /* the store to itself: -EBUSY while mounted */

/* Open the store in directory DIR (a local store, or a RADOS store's
 * local directory). @return 0 and *OUT; -ENOENT (no store there), -EBUSY
 * (RDWR: a daemon or payloadctl holds it), -EPROTO (unknown format),
 * -EINVAL (bad mode or NULL argument), -ENOMEM, -errno. */
int payload_open(const char *dir, int mode, payload_store **out);
/* Close; NULL-safe. Every payload_version of the store must be released. */
void payload_close(payload_store *st);

/* What a request reads (struct payload_get.range). */
#define PAYLOAD_WHOLE 0    /* the whole object (or the view its path names) */
#define PAYLOAD_BYTES 1    /* bytes [start, stop) of it, clipped at its end */
#define PAYLOAD_ROWS  2    /* header rows, then data rows [start, stop):
			    * the mount's NAME@rows=start:stop */
#define PAYLOAD_END   INT64_MAX   /* stop: to the end */

struct payload_get {
	/* in */
	const char *path;      /* object path in the store ("a/b.csv",
				* ".by-id/ID", ".snapshots/S/a/b.csv"; may end
				* in @rows=A:B, @part=K/N or @meta); NULL: ID */
	uint64_t id;           /* the object's id when PATH and VERSION are NULL */
	const payload_version *version;   /* a pinned version: overrides both */
	int range;             /* PAYLOAD_WHOLE, PAYLOAD_BYTES or PAYLOAD_ROWS */
	int64_t start, stop;   /* BYTES: offsets (>= 0); ROWS: Python slice bounds
				* (negative counts from the end) */
	void *buf;             /* the caller's buffer (NULL with CAP 0: size only) */
	size_t cap;
	/* out */
	int result;            /* 0 or -errno */
	uint64_t size;         /* bytes of the result (also when buf is too small) */
	size_t len;            /* bytes written to buf */
	uint64_t obj_version;  /* the version read */
};
/* Fill N requests. Fragments every request needs and the cache lacks are
 * loaded in parallel on the store's worker pool before the copies.
 * Per request: -ENOENT, -ENOTDIR, -EISDIR, -EINVAL (bad range, a view
 * path with PAYLOAD_ROWS, not a regular file), -ERANGE (CAP < size:
 * nothing copied, SIZE set), -EIO (a damaged fragment), -EREMOTE (a
 * storage=memory object: its bytes live in the daemon), -ENOMEM.
 * @return how many requests failed (0: all done), or -EINVAL (REQS NULL
 *   with N > 0, ST NULL). */
int payload_get_many(payload_store *st, struct payload_get *reqs, size_t n);

/* One object of a payload_put_many batch. */
struct payload_put {
	const char *path;      /* created (its directory must exist) or replaced */
	const void *data;
	size_t len;            /* any size: up to 4096 bytes inline in the index,
				* larger ones as fragments (row-aligned, lz4) */
	int result;            /* out: 0, or this member's -errno */
};
/* Create or replace N regular files in ONE index transaction: after 0 all
 * of them are visible at once (to the next read of any opener); on failure
 * none changed, and the failing member's result says why (the others' are
 * 0). New files get mode 0644, the caller's uid and gid, and their
 * directory's payload settings (*.csv: one header row). A path given twice
 * is written twice: the later bytes win. Read-write handles only.
 * Members over 4096 bytes are cut into fragments as a writer's close
 * would cut them and every fragment of the batch is made durable (one
 * sync) before the one index transaction; a failure deletes them all.
 * @return 0; -EROFS (a read-only handle, or a snapshot's path); -EFBIG (a
 * member needs more than the object limit of fragments); -EBUSY (an
 * object's format changed during the call); -EINVAL (an empty or reserved name, a view
 * suffix, not a regular file, a storage=memory directory, a fixed:N size
 * mismatch, NULL arguments); -EISDIR (a directory's path); -ENOENT,
 * -ENOTDIR (the directory); -ENAMETOOLONG; -ENOSPC, -EIO, -ENOMEM. */
int payload_put_many(payload_store *st, struct payload_put *reqs, size_t n);

/* An object's figures (payload_stat, payload_version_stat). */
struct payload_stat {
	uint64_t id;           /* the object's id: .by-id/ID */
	uint64_t version;      /* bumped by every commit of its data */
	uint64_t size;         /* bytes */
	uint64_t rows;         /* rows (lines or records), header included */
	uint64_t header_rows;  /* of them, header rows */
	int64_t mtime_ns;
};
/* Figures of the object at PATH now. @return 0, -ENOENT, -EISDIR,
 * -EINVAL (not a regular file), -errno. */
int payload_stat(payload_store *st, const char *path, struct payload_stat *out);

/* Pin the current version of the object at PATH: requests naming it read
 * exactly that version, whatever is committed later, until
 * payload_version_release. @return 0, -ENOENT, -EISDIR, -EINVAL, -ENOMEM. */
int payload_version_get(payload_store *st, const char *path, payload_version **out);
int payload_version_stat(const payload_version *v, struct payload_stat *out);
void payload_version_release(payload_version *v);   /* NULL-safe */

/* A fixed description of ERR (a negative errno); never NULL. */
const char *payload_strerror(int err);
/* The calling thread's last failure of a payload_ call, naming what
 * failed ("payload_open /srv/store: ..."); "" when none. Valid until the
 * thread's next payload_ call. */
const char *payload_errmsg(void);

/* ---- asynchronous batched get (lib/async.c) ----
 * A queue runs whole payload_get_many batches on the store's worker pool.
 * At most DEPTH batches and MAX_BYTES bytes (the sum of their requests'
 * CAP: the caller's buffers) are in flight from the submit that accepts a
 * batch until the poll or wait that returns its completion; completions
 * come back in submission order. Every call may be made from any thread. */
typedef struct payload_queue payload_queue;

#define PAYLOAD_NOWAIT 1   /* payload_queue_submit: -EAGAIN instead of blocking */

struct payload_completion {
	void *tag;                  /* as submitted */
	struct payload_get *reqs;   /* as submitted: each request's result is set */
	size_t n;
	int failed;                 /* what payload_get_many returned for the batch */
};
struct payload_queue_stat {
	unsigned batches;           /* in flight now */
	uint64_t bytes;             /* in flight now */
	uint64_t peak_bytes;        /* the most ever in flight (<= MAX_BYTES) */
	uint64_t submitted, completed;
};
/* A queue on ST of DEPTH batches (>= 1) and MAX_BYTES (0: no byte limit).
 * @return 0 and *OUT; -EINVAL, -ENOMEM. */
int payload_queue_open(payload_store *st, unsigned depth, uint64_t max_bytes, payload_queue **out);
/* Queue N requests (REQS and their buffers stay the caller's and must live
 * until the completion is returned) tagged TAG. Blocks while DEPTH batches
 * or too many bytes are in flight (another thread must reap), or with
 * FLAGS PAYLOAD_NOWAIT fails with -EAGAIN. @return 0; -EAGAIN; -E2BIG (the
 * batch alone is over MAX_BYTES); -EINVAL; -ENOMEM. */
int payload_queue_submit(payload_queue *q, struct payload_get *reqs, size_t n, void *tag, int flags);
/* Up to MAX finished batches, oldest first, without blocking. @return how
 * many (0: the oldest is not done), -EINVAL. */
int payload_queue_poll(payload_queue *q, struct payload_completion *out, size_t max);
/* As poll, but waits (at most TIMEOUT_MS ms; < 0: no limit) until the
 * oldest batch is done, running it in the caller when no worker started
 * it. @return how many (>= 1; 0 when nothing is in flight), -ETIMEDOUT,
 * -EINVAL. */
int payload_queue_wait(payload_queue *q, struct payload_completion *out, size_t max, int timeout_ms);
int payload_queue_stat(payload_queue *q, struct payload_queue_stat *out);
/* Wait for every batch in flight (their buffers are filled), drop their
 * completions, free Q; NULL-safe. Before payload_close of its store. */
void payload_queue_close(payload_queue *q);

/* ---- following a growing object (streams): lib/follow.c ---- */

typedef struct payload_follow payload_follow;

/* payload_follow_open flags */
#define PAYLOAD_FOLLOW_ROWS  0   /* return whole rows only: a row whose '\n'
				  * (or fixed:N record whose last byte) is not
				  * committed yet is withheld until it is */
#define PAYLOAD_FOLLOW_BYTES 1   /* return bytes as they are committed */
#define PAYLOAD_FOLLOW_POLL  2   /* wait by polling every 5 ms, not inotify */

/* Follow the object at PATH (no view suffix) of ST from byte START (0:
 * its beginning; PAYLOAD_END: its current end, in ROWS mode after its
 * last complete row; else an offset from payload_follow_tell, to resume).
 * The follower pins the object's current version; it keeps at most one
 * fragment of it (its last) to check later versions.
 * @return 0 and *OUT; -ENOENT, -ENOTDIR, -EISDIR, -EINVAL (a view, not a
 * regular file, bad FLAGS, START past the end), -EREMOTE
 * (storage=memory), -EMFILE, -ENOMEM, -EIO. */
int payload_follow_open(payload_store *st, const char *path, int flags, int64_t start,
			payload_follow **out);
/* Copy into BUF the bytes committed after the last call's (whole rows in
 * ROWS mode, as many as fit in CAP), waiting up to TIMEOUT_MS for a commit
 * when there are none (< 0: without limit; 0: not at all). A new version
 * is followed only when it keeps every byte of the one followed (an
 * append, checked against the stored fragments and bytes).
 * @return bytes copied (> 0); 0: none before the timeout; -ESTALE (the
 * object was rewritten, truncated or replaced by another object at PATH),
 * -ENOENT (PATH was unlinked or renamed): both final, nothing returned
 * before is lost, payload_follow_tell says where to resume; -ERANGE (ROWS:
 * the next complete row is longer than CAP; payload_follow_tell's row_len
 * says how long; nothing consumed); -ECANCELED (payload_follow_cancel);
 * -EINVAL (NULL BUF or CAP 0); -EIO (a damaged fragment), -ENOMEM. */
ssize_t payload_follow_next(payload_follow *f, void *buf, size_t cap, int timeout_ms);

/* Where a follower is. */
struct payload_follow_pos {
	uint64_t offset;       /* the next byte it returns */
	uint64_t version;      /* the version it follows (returned up to offset) */
	uint64_t size;         /* that version's size */
	uint64_t row_len;      /* after -ERANGE: the length of the row that
				* did not fit; else 0 */
};
int payload_follow_tell(const payload_follow *f, struct payload_follow_pos *out);
/* Make a waiting payload_follow_next (in another thread) and every later
 * one return -ECANCELED. Async-signal-safe. */
void payload_follow_cancel(payload_follow *f);
/* Release the follower and its version; NULL-safe; not while another
 * thread is in payload_follow_next (cancel it first). */
void payload_follow_close(payload_follow *f);

#ifdef __cplusplus
}
#endif
#endif
