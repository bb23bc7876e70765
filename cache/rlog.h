/* rlog — a RADOS store's shared state in the cluster (docs/rados.md): the
 * head object `pfs.head` of the store's namespace with the index log (an
 * ordered sequence of entries, index/ilog.h — opaque bytes here), the
 * writer's lease and epoch, bases (the whole index in chunks) and the
 * followers' records. Knows librados; knows nothing of LMDB or FUSE.
 *
 * Fencing: the writer session's every append is one RADOS write op that
 * compares the head's `pfs.epoch` xattr with the session's epoch before it
 * sets the omap keys, so a session whose epoch was bumped by a newer writer
 * (takeover) can append nothing more (-ESTALE). The lease (the exclusive
 * lock `pfs.writer` on the head, renewed by a thread of this module) keeps
 * two live writers apart and tells a takeover when the old one is gone.
 *
 * Every call is bounded by the connection's timeout (rados_conn.h): a dead
 * OSD or monitor gives -ETIMEDOUT, never a hang. Errors are -errno, never
 * flattened. Thread-safe: any thread may call anything; appends are
 * serialized by the caller (the store's commit lock). */
#ifndef PFS_RLOG_H
#define PFS_RLOG_H

#include <stddef.h>
#include <stdint.h>

#include "cache/rados_conn.h"

struct rlog;

/* Open the shared state of store POOL/NSPACE on connection RC (takes a
 * reference). With CREATE the head object is created when missing (epoch
 * 0, empty log, format RLOG_FORMAT); without it a missing head is -ENOENT.
 * @return 0, -ENOENT (no such pool or store), -EPROTO (a head of another
 * format), -ETIMEDOUT, -errno. */
#define RLOG_FORMAT 1
int rlog_open(struct rconn *rc, const char *pool, const char *nspace, int create, struct rlog **out);
void rlog_close(struct rlog *l);    /* releases a held lease; NULL-safe */

/* ---- the writer ---- */

/* Take the lease (the exclusive lock, held for LEASE_S seconds and renewed
 * every LEASE_S/3 by a thread of this module) and start a new writer
 * session: bump the epoch (compare-and-set). WAIT_S > 0 retries a lease
 * held by another writer for that long (a takeover waiting for a dead
 * writer's lease to expire); FORCE breaks it at once. HOLDER (may be NULL)
 * names this host in the lock's description.
 * @param[out] epoch the session's epoch; tail the last entry's lsn (0: none)
 * @return 0; -EBUSY the lease is held by another writer (its description
 * is logged: who, since when); -ETIMEDOUT; -errno. */
int rlog_acquire(struct rlog *l, unsigned lease_s, unsigned wait_s, int force, const char *holder,
		 uint64_t *epoch, uint64_t *tail);
/* 0 while this session's lease is held and was renewed in time; -ESTALE
 * once a renewal failed for longer than the lease or the epoch moved (the
 * writer must stop committing). */
int rlog_lease_ok(struct rlog *l);
/* Append N entries at lsns FIRST, FIRST+1, ... in one epoch-guarded write
 * op (big entries go to objects of their own first). Returns when the
 * cluster acknowledged it (durable), then notifies the watchers (without
 * waiting for them). @return 0; -ESTALE (fenced: another session's epoch);
 * -EEXIST (an lsn already holds an entry); -ETIMEDOUT; -errno. */
int rlog_append(struct rlog *l, uint64_t first, const void *const *data, const size_t *len, size_t n);
/* Give the lease back (a clean unmount). */
int rlog_release(struct rlog *l);

/* ---- reading the log (any host) ---- */

/* Call CB(ARG, lsn, data, len) for the entries after AFTER, in order, at
 * most MAX of them (0: all there are). DATA is valid during the call only.
 * CB's non-zero return stops and is returned.
 * @return 0; -ERANGE when the entry AFTER+1 is gone (trimmed: load a base);
 * -ETIMEDOUT; -errno. */
int rlog_read(struct rlog *l, uint64_t after, size_t max,
	      int (*cb)(void *arg, uint64_t lsn, const void *data, size_t len), void *arg);
/* The last lsn in the log (0: empty), and the first still held (0: none). */
int rlog_tail(struct rlog *l, uint64_t *first, uint64_t *last);
/* Call CB(ARG) (on a librados thread: it must only wake someone) whenever
 * the writer notifies an append, until rlog_close. Re-establishes the
 * watch after an error. @return 0 or -errno. */
int rlog_watch(struct rlog *l, void (*cb)(void *arg), void *arg);

/* ---- bases ---- */

/* Write a base standing for log position LSN: PUT is called repeatedly to
 * fetch chunk after chunk (it returns 1 and sets *DATA/*LEN, or 0 at the
 * end, or -errno); then the head's pfs.base points at it (epoch-guarded)
 * and older bases are deleted. @return 0, -ESTALE, -errno. */
int rlog_base_put(struct rlog *l, uint64_t lsn,
		  int (*next)(void *arg, const void **data, size_t *len), void *arg);
/* Read the newest base: *LSN, then CB(ARG, data, len) per chunk in order.
 * @return 0; -ENOENT (no base yet); -errno. */
int rlog_base_get(struct rlog *l, uint64_t *lsn,
		  int (*cb)(void *arg, const void *data, size_t len), void *arg);
/* Delete the log entries with lsn <= UPTO (epoch-guarded). */
int rlog_trim(struct rlog *l, uint64_t upto);

/* ---- followers ---- */

struct rlog_follower {
	char id[64];            /* unique per follower session */
	uint64_t applied;       /* its log_lsn */
	uint64_t horizon;       /* docs/rados.md "Deleting images across hosts" */
	uint64_t seq;           /* bumped by every update */
	char host[64];
};
/* Write (replace) follower F's record. @return 0 or -errno. */
int rlog_follower_put(struct rlog *l, const struct rlog_follower *f);
/* Remove follower ID's record (a follower leaving cleanly). */
int rlog_follower_del(struct rlog *l, const char *id);
/* Every follower record (CB per record; non-zero stops). */
int rlog_followers(struct rlog *l, int (*cb)(void *arg, const struct rlog_follower *f), void *arg);
/* The writer marks follower ID expired (x.<id>); the follower checks
 * rlog_follower_expired on each update. @return 0/1, or -errno. */
int rlog_follower_expire(struct rlog *l, const char *id);
int rlog_follower_expired(struct rlog *l, const char *id);

#endif
