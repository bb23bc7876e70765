/* rlog — a RADOS store's shared state in the cluster (docs/rados.md): the
 * head object `pfs.head` of the store's namespace with the index log (an
 * ordered sequence of entries, index/ilog.h — opaque bytes here), the
 * writer's lease and epoch, bases (the whole index in chunks) and the
 * followers' records. Knows librados; knows nothing of LMDB or FUSE. The
 * objects and their byte layouts: docs/format.md "RADOS objects".
 *
 * Fencing: the writer session's every append is one RADOS write op that
 * compares the head's `pfs.epoch` xattr with the session's epoch (and
 * `pfs.tail` with the position before the entries) before it sets the omap
 * keys, so a session whose epoch was bumped by a newer writer (takeover)
 * can append nothing more (-ESTALE), and no entry is ever overwritten or
 * left out (-EEXIST, -ERANGE). The lease (the exclusive lock `pfs.writer`
 * on the head, renewed by a thread of this module) keeps two live writers
 * apart and tells a takeover when the old one is gone.
 *
 * Every call is bounded by the connection's timeout (rados_conn.h): a dead
 * OSD or monitor gives -ETIMEDOUT, never a hang. Errors are -errno, never
 * flattened. Thread-safe: any thread may call anything; appends are
 * serialized by the caller (the store's commit lock).
 *
 * Refinements of the first draft of this contract (2026-12, with the
 * implementation): rlog_holder(); the "in doubt" rule after an append timed
 * out (rlog_append); -ERANGE for an append that would leave a gap; -EUCLEAN
 * for a log with a hole; the "start over" call of rlog_base_get's CB; the
 * preconditions of rlog_base_put and rlog_trim; -ESTALE from
 * rlog_follower_put for an expired follower. */
#ifndef PFS_RLOG_H
#define PFS_RLOG_H

#include <stddef.h>
#include <stdint.h>

#include "cache/rados_conn.h"

struct rlog;

/* Open the shared state of store POOL/NSPACE on connection RC (takes a
 * reference). With CREATE the head object is created when missing (epoch
 * 0, empty log, format RLOG_FORMAT); without it a missing head is -ENOENT.
 * @param[out] out the handle, NULL on failure
 * @return 0, -ENOENT (no such pool or store), -EPROTO (a head of another
 * format, or an object pfs.head that is not a payloadfs head), -EUCLEAN (a
 * head whose xattrs are damaged), -EINVAL (empty pool or namespace),
 * -ETIMEDOUT, -errno. */
#define RLOG_FORMAT 1
int rlog_open(struct rconn *rc, const char *pool, const char *nspace, int create, struct rlog **out);
/* Stop the watch, give a held lease back (rlog_release), wait for the
 * notifies in flight, drop the connection's reference. When the cluster
 * does not answer this takes a few times the connection's timeout (each
 * of those steps is bounded by it). NULL-safe. */
void rlog_close(struct rlog *l);

/* ---- the writer ---- */

/* Take the lease (the exclusive lock, held for LEASE_S seconds and renewed
 * every LEASE_S/3 by a thread of this module) and start a new writer
 * session: bump the epoch (compare-and-set). WAIT_S > 0 retries a lease
 * held by another writer for that long (a takeover waiting for a dead
 * writer's lease to expire); FORCE breaks it at once. HOLDER (may be NULL)
 * names this host: it is kept with the lock (rlog_holder) and in its
 * description. A writer whose lease was broken (FORCE) or waited out
 * (unless it released it meanwhile) is also blocklisted by its client
 * address, so that a writer that was only paused can do nothing more in
 * the cluster (docs/rados.md); never this handle's own connection.
 * A failed call ends the session the handle had.
 * Calling it again on a handle that has (or had) a session starts a new
 * session (the lease is kept if still held): this is how a writer goes on
 * after an append in doubt (rlog_append) or a lease lost to an outage.
 * @param[out] epoch the session's epoch (> 0)
 * @param[out] tail the last entry's lsn (0: none), read after the bump: no
 *             append of an earlier session can land after it (its epoch
 *             compare fails), so it is final
 * @return 0; -EBUSY the lease is held by another writer (logged with its
 * holder; rlog_holder tells who); -ETIMEDOUT; -errno. */
int rlog_acquire(struct rlog *l, unsigned lease_s, unsigned wait_s, int force, const char *holder,
		 uint64_t *epoch, uint64_t *tail);
/* Tag this handle's writer sessions with TAG (non-zero): the cookie of
 * the lock a session holds starts with it. A caller that persists one tag
 * per place its sessions run from (the writer's STORE directory), and
 * runs at most one session from that place at a time (its own lock on
 * it), tells rlog_acquire that a lease held under the same tag and
 * another cookie belongs to a session of that place that is gone (the
 * process died): rlog_acquire then breaks it at once (blocklisting its
 * client) instead of waiting for it to expire, so a writer restarted
 * after a crash carries on at once. Call before rlog_acquire. */
void rlog_set_tag(struct rlog *l, uint64_t tag);
/* Who holds the lease now: the HOLDER its writer gave (with the time it
 * took the lease: "HOST since 2027-01-02T03:04:05Z"), into BUF (CAP bytes,
 * NUL-terminated, cut to fit). For "store is being written by HOST".
 * @return 1 held (BUF set), 0 nobody holds it (BUF ""), -errno. */
int rlog_holder(struct rlog *l, char *buf, size_t cap);
/* 0 while this session's lease is held, was renewed in time and no append
 * is in doubt; -ESTALE from the first moment that is not so: a renewal has
 * not succeeded for longer than the lease minus a margin (lease/5), the
 * lock was lost or broken, the epoch moved, or an append timed out. Once
 * -ESTALE, it stays so until the next rlog_acquire (the writer must stop
 * committing). -ESTALE also when no session was ever started. */
int rlog_lease_ok(struct rlog *l);
/* Append N entries (N >= 1, each at most RLOG_ENTRY_MAX bytes) at lsns
 * FIRST, FIRST+1, ... in one
 * epoch-guarded write op that also checks that FIRST is the log's next
 * position (big entries go to objects of their own first). Returns when
 * the cluster acknowledged it (durable), then notifies the watchers
 * (without waiting for them). A failed append writes no entry.
 * After -ETIMEDOUT the append is *in doubt*: it may still land. The
 * session then refuses appends (-ESTALE) and the caller must start a new
 * session (rlog_acquire): its bump of the epoch makes sure the doubtful
 * op can no longer land, and the tail it returns says whether it did
 * (tail >= FIRST + N - 1: it landed, whole; else it never will). rlog_tail
 * alone tells the truth of the moment only.
 * @return 0; -ESTALE (no session, lease not ok, fenced by another
 * session's epoch, or in doubt); -EEXIST (an lsn in FIRST.. already holds an
 * entry); -ERANGE (FIRST is past the log's end + 1: a gap); -EINVAL (N 0,
 * an lsn overflow); -EFBIG (an entry too big); -ETIMEDOUT; -ENOSPC/-EDQUOT (the cluster is full);
 * -errno; an injected error (fault point "rlog_append"). */
#define RLOG_ENTRY_MAX (2ull << 30)
int rlog_append(struct rlog *l, uint64_t first, const void *const *data, const size_t *len, size_t n);
/* Give the lease back (a clean unmount) and end the session; pfs.writer
 * then says "released" (a takeover waiting for it blocklists nobody). @return 0,
 * -ETIMEDOUT, -errno (the session ends anyway; the lock then expires). */
int rlog_release(struct rlog *l);

/* ---- reading the log (any host) ---- */

/* Call CB(ARG, lsn, data, len) for the entries after AFTER, in order, at
 * most MAX of them (0: all there are). DATA is valid during the call only.
 * CB's non-zero return stops and is returned. Entries come in pages; each
 * page is read in one op with the log's tail, so what is read is
 * contiguous and complete up to the tail of the moment.
 * @return 0; -ERANGE when the entry AFTER+1 is gone (trimmed: load a base;
 * also when it was trimmed while being read); -EUCLEAN (a hole in the log,
 * or a big entry whose objects do not match its record); -ETIMEDOUT;
 * -errno; an injected error (fault point "rlog_read", per page). */
int rlog_read(struct rlog *l, uint64_t after, size_t max,
	      int (*cb)(void *arg, uint64_t lsn, const void *data, size_t len), void *arg);
/* The last lsn in the log (0: empty), and the first still held (0: none:
 * empty, or all trimmed). @return 0 or -errno. */
int rlog_tail(struct rlog *l, uint64_t *first, uint64_t *last);
/* Call CB(ARG) (on a librados thread: it must only wake someone) whenever
 * the writer notifies an append, until rlog_close. Notifies are hints:
 * delivery is at most once, and those sent while the watch is down are
 * lost, so a follower must also poll (docs/rados.md: every second). A
 * thread of this module checks the watch every second; when it broke it
 * is made again, and CB is also called each time the watch is back after
 * an error or a long silence (a re-read of the log is due).
 * @return 0; -EBUSY (this handle already watches); -ETIMEDOUT; -errno. */
int rlog_watch(struct rlog *l, void (*cb)(void *arg), void *arg);

/* ---- bases ---- */

/* Write a base standing for log position LSN (<= the log's tail): NEXT is
 * called repeatedly to fetch chunk after chunk (it returns 1 and sets
 * *DATA and *LEN — valid until its next call —, or 0 at the end, or
 * -errno); each chunk (at most RLOG_CHUNK_MAX bytes) becomes one object; then the
 * head's pfs.base points at it (epoch-guarded) and older bases (and what
 * failed puts left) are deleted. Chunk boundaries are kept: rlog_base_get
 * gives the same chunks. A base for the LSN already recorded is kept: 0,
 * nothing written, NEXT not called.
 * @return 0; -ESTALE (no live session, or fenced); -EINVAL (LSN past the
 * tail, or older than the newest base); -EFBIG (a chunk too big); NEXT's
 * error; -ETIMEDOUT; -errno; an injected error (fault point "rlog_base",
 * after the chunks are written, before the base is recorded). */
#define RLOG_CHUNK_MAX (64u << 20)
int rlog_base_put(struct rlog *l, uint64_t lsn,
		  int (*next)(void *arg, const void **data, size_t *len), void *arg);
/* Read the newest base: *LSN, then CB(ARG, data, len) per chunk in order.
 * The bytes are checked against the base's record (length, xxh64). When
 * the base is replaced while it is read (its chunks deleted under the
 * reader), the read starts over from the new one, once: CB is then called
 * with DATA NULL and LEN 0, meaning "forget the chunks so far", and *LSN
 * changes. *LSN is only meaningful after a 0 return.
 * @return 0; -ENOENT (no base yet); -EUCLEAN (damaged: a chunk missing or
 * the bytes not matching the record); -EAGAIN (replaced twice while being
 * read: try again); CB's non-zero return; -ETIMEDOUT; -errno. */
int rlog_base_get(struct rlog *l, uint64_t *lsn,
		  int (*cb)(void *arg, const void *data, size_t len), void *arg);
/* The log position the newest base stands for, without reading it.
 * @return 0; -ENOENT (no base yet); -errno. */
int rlog_base_pos(struct rlog *l, uint64_t *lsn);
/* Delete the log entries with lsn <= UPTO (epoch-guarded), with the
 * objects of big ones. UPTO must not pass the newest base (a log without
 * a base keeps every entry: a new follower needs them).
 * @return 0; -ESTALE; -EINVAL (UPTO past the newest base, or no base);
 * -ETIMEDOUT; -errno. */
int rlog_trim(struct rlog *l, uint64_t upto);

/* ---- followers ---- */

struct rlog_follower {
	char id[64];            /* unique per follower session: 1-63 printable
				 * ASCII characters, no space */
	uint64_t applied;       /* its log_lsn */
	uint64_t horizon;       /* docs/rados.md "Deleting images across hosts" */
	uint64_t seq;           /* bumped by every update */
	char host[64];          /* NUL-terminated */
};
/* Write (replace) follower F's record, unless F was expired.
 * @return 0; -ESTALE (F's expiry mark exists: re-sync under a new id,
 * after rlog_follower_del of the old one); -EINVAL (bad id or host);
 * -errno. */
int rlog_follower_put(struct rlog *l, const struct rlog_follower *f);
/* Remove follower ID's record and its expiry mark (a follower leaving
 * cleanly, or one that found itself expired). @return 0 (also when there
 * was nothing), -EINVAL, -errno. */
int rlog_follower_del(struct rlog *l, const char *id);
/* Every follower record, in id order (CB per record; non-zero stops and
 * is returned). @return 0; -EPROTO (a record of a newer version: the
 * reaper must not guess); -EUCLEAN (a damaged record); -errno. */
int rlog_followers(struct rlog *l, int (*cb)(void *arg, const struct rlog_follower *f), void *arg);
/* The writer marks follower ID expired (x.<id>) and removes its record, in
 * one op (epoch-guarded when this handle holds a session: -ESTALE); the
 * follower checks rlog_follower_expired on each update (its next
 * rlog_follower_put fails with -ESTALE anyway). @return 0/1, or -errno. */
int rlog_follower_expire(struct rlog *l, const char *id);
int rlog_follower_expired(struct rlog *l, const char *id);

#endif
