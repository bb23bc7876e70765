/* rlog_int — what the files of the rlog module share (rlog.c: open, the
 * head's xattrs, reading the log; rlog_writer.c: the lease and sessions;
 * rlog_append.c: appends, notifies, trims; rlog_base.c: bases;
 * rlog_follow.c: the watch and the followers' records). Not for use
 * outside cache/rlog*.c.
 *
 * The objects and byte layouts are in docs/format.md "RADOS objects".
 *
 * Invariants (the numbers are cited by the code):
 *  (1) The log is the omap keys l.<lsn, 16 hex> of pfs.head, and pfs.tail
 *      (16 hex) is the last lsn ever appended. Every append is one write op
 *      that compares pfs.epoch with the session's epoch and pfs.tail with
 *      FIRST-1, then sets pfs.tail to the last new lsn and the new keys: so
 *      the lsns 1..tail were each appended exactly once, in order, by the
 *      session that held the epoch then, and no entry is overwritten.
 *  (2) Entries leave the log only by trim, from the low end (a range
 *      removal l. .. l.<upto+1>), never past the newest base: the held
 *      entries are always first..tail without a hole, and the base covers
 *      everything before first.
 *  (3) pfs.epoch only grows, by a compare-and-set made by a writer that
 *      holds the lock. Every write that only a writer may make (append,
 *      trim, base, expiry of a follower) is guarded by a compare with its
 *      session's epoch: once a newer session bumped it, an older one's
 *      writes all fail (-ECANCELED, reported -ESTALE) and change nothing.
 *  (4) A big entry's objects pfs.e.<lsn>.<epoch>.<part> are written only
 *      after an intent key e.<lsn>.<epoch> (epoch-guarded) says they may
 *      exist, and a base's chunk objects pfs.b.<lsn>.<epoch>.<k> only while
 *      b.<lsn>.<epoch> holds a count above k: every such object can be
 *      found from the omap, so trims and later bases delete what failed
 *      appends and puts left. Object names carry the writer's epoch: a
 *      fenced writer never overwrites a live one's objects.
 *  (5) A big entry's pointer records its length and xxh64, a base's record
 *      its length and xxh64: what is read is checked against them, so a
 *      reader never returns bytes other than those appended (-EUCLEAN).
 *  (6) Session states: NONE (never, or released) -> LIVE (rlog_acquire)
 *      -> DOUBT (an append timed out) or FENCED (lease not renewed in
 *      time, lock lost, epoch moved, blocklisted). Only LIVE appends;
 *      DOUBT and FENCED end only by a new rlog_acquire (or release).
 * Lock order: slock (acquire, release, close), then lock. lock is a leaf:
 * no librados call is made and no thread joined while it is held.
 */
#ifndef PFS_RLOG_INT_H
#define PFS_RLOG_INT_H

#include <pthread.h>
#include <stdint.h>
#include <rados/librados.h>

#include "cache/rlog.h"

#define RLOG_HEAD        "pfs.head"
#define RLOG_LOCK        "pfs.writer"
#define RLOG_X_FORMAT    "pfs.format"
#define RLOG_X_EPOCH     "pfs.epoch"
#define RLOG_X_TAIL      "pfs.tail"
#define RLOG_X_BASE      "pfs.base"
#define RLOG_X_WRITER    "pfs.writer"

#define RLOG_INLINE_MAX  (256u << 10)   /* an entry's bytes kept in the omap value */
#define RLOG_OP_INLINE   (8u << 20)     /* inline bytes of one append op, at most */
#define RLOG_PART_MAX    (16u << 20)    /* one object of a big entry */
#define RLOG_PAGE_BYTES  (4u << 20)     /* what one page of a read aims at */
#define RLOG_PAGE_MAX    1024           /* osd_max_omap_entries_per_request */
#define RLOG_VAL_INLINE  1              /* omap value kinds (docs/format.md) */
#define RLOG_VAL_PTR     2
#define RLOG_PTR_LEN     32
#define RLOG_BASE_LEN    40
#define RLOG_FOLLOWER_LEN 96
#define RLOG_HOLDER_MAX  256
#define RLOG_COOKIE_MAX  (RLOG_HOLDER_MAX + 24)

enum rlog_state { S_NONE = 0, S_LIVE, S_DOUBT, S_FENCED };

struct rlog {
	struct rconn *conn;         /* immutable: one reference */
	rados_t cluster;            /* immutable */
	rados_ioctx_t io;           /* immutable; thread-safe (librados) */
	char name[256];             /* immutable: "POOL/NSPACE" for messages */
	pthread_mutex_t slock;      /* serializes acquire, release, close: held
				     * across their librados calls; taken
				     * before lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* renewer, keeper: stop; notifies: count
				     * (CLOCK_MONOTONIC) */

	/* the writer session (invariant 6) */
	enum rlog_state state;      /* protected by lock */
	uint64_t epoch;             /* protected by lock */
	unsigned lease_ms;          /* protected by lock */
	int64_t renewed_ms;         /* protected by lock: monotonic ms at which
				     * the last lock/renewal that succeeded was sent */
	char cookie[RLOG_COOKIE_MAX]; /* written only while no renewer runs;
				     * "" until the first acquire */
	char desc[RLOG_HOLDER_MAX]; /* as cookie: the lock's description */
	char holder[RLOG_HOLDER_MAX]; /* as cookie: the HOLDER it was made for */
	uint64_t tag;               /* as cookie: rlog_set_tag (0: none), the
				     * cookie's first 16 hex digits when set */
	int renewing;               /* protected by lock: renewer started */
	int renew_stop;             /* protected by lock */
	pthread_t renewer;          /* owned by whoever set renewing */

	unsigned notifies;          /* protected by lock: notifies in flight */

	/* the watch (rlog_follow.c) */
	int watching;               /* protected by lock: rlog_watch done */
	int watch_stop;             /* protected by lock */
	int watch_err;              /* protected by lock: the error callback fired */
	uint64_t whandle;           /* protected by lock: 0 while not registered */
	void (*wcb)(void *arg);     /* immutable once watching */
	void *warg;                 /* immutable once watching */
	pthread_t keeper;           /* owned by whoever set watching */
};

/* ---- rlog.c: shared helpers ---- */

/* The head's xattrs, parsed. */
struct rlog_base_rec {
	uint32_t chunks;
	uint64_t lsn, epoch, bytes, hash;
};
struct rlog_head {
	int has_format;
	unsigned format;
	uint64_t epoch, tail;
	int has_base;
	struct rlog_base_rec base;
};

int64_t rlog_now_ms(void);
/* Wait on cond (lock held) until WHEN_MS (monotonic) or a signal. */
void rlog_cond_wait_until(struct rlog *l, int64_t when_ms);
void rlog_hex16(char *out, uint64_t v);                 /* 17 bytes: 16 hex + NUL */
int rlog_parse_hex16(const char *s, size_t len, uint64_t *v);
void rlog_put64(unsigned char *p, uint64_t v);
uint64_t rlog_get64(const unsigned char *p);
void rlog_put32(unsigned char *p, uint32_t v);
uint32_t rlog_get32(const unsigned char *p);
/* Parse the xattrs ITER lists into H. @return 0, -EPROTO (no pfs.format),
 * -EUCLEAN (a damaged value). */
int rlog_head_parse(rados_xattrs_iter_t it, struct rlog_head *h);
/* Read the head's xattrs. @return 0, -ENOENT, -EPROTO, -EUCLEAN, -errno. */
int rlog_head_read(struct rlog *l, struct rlog_head *h);
void rlog_base_encode(unsigned char out[RLOG_BASE_LEN], const struct rlog_base_rec *b);
int rlog_base_decode(const void *p, size_t len, struct rlog_base_rec *b);
/* Wait for and release each of the N completions (NULL ones skipped).
 * @return the first negative return value, else 0. RET[i] (may be NULL)
 * gets each value. */
int rlog_wait_all(rados_completion_t *cs, size_t n, int *ret);
/* Remove the objects NAMES[0..N-1] (all in flight at once, FULL_FORCE).
 * @return 0 (a missing object is fine) or the first other error. */
int rlog_remove_all(struct rlog *l, char (*names)[64], size_t n);
/* Remove the N omap keys KEYS of the head (one op, FULL_FORCE), guarded by
 * EPOCH when it is not 0. */
int rlog_omap_rm(struct rlog *l, const char *const *keys, size_t n, uint64_t epoch);

/* ---- rlog_writer.c, rlog_append.c ---- */

/* The session's epoch when it may write (LIVE and lease in time), else
 * -ESTALE. @param[out] epoch */
int rlog_session_epoch(struct rlog *l, uint64_t *epoch);
/* A write op of the session came back -ECANCELED or blocklisted: find out
 * why. @return -ESTALE (fenced: the state says so from now on) or 0 (the
 * epoch is still ours: the op failed on another compare). */
int rlog_fenced_check(struct rlog *l, uint64_t epoch, int rc, struct rlog_head *h);
/* Stop the renewal thread (join; caller does not hold lock). */
void rlog_renewer_stop(struct rlog *l);
/* Wait for every notify in flight. */
void rlog_notifies_wait(struct rlog *l);

/* ---- rlog_follow.c ---- */
void rlog_watch_stop(struct rlog *l);

#endif
