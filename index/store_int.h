/* store_int — internals shared by the store's implementation files
 * (store.c, ns.c, xattr.c, pver.c, stage.c, commit.c). Not for fs/ or
 * tools/.
 *
 * Lock order: st->commit_lock, then an LMDB write txn, then st->lock.
 * st->lock is never held across I/O or while waiting for a txn.
 * commit_lock is a gate (gcommit.c): held exclusively (store_xlock) or by
 * a commit round of a RADOS writer (group commit); "under commit_lock"
 * means either.
 */
#ifndef PFS_STORE_INT_H
#define PFS_STORE_INT_H

#include "index/store.h"
#include "index/rowidx.h"
#include "cache/backend.h"
#include "cache/fcache.h"
#include "cache/pool.h"

#include <errno.h>
#include <pthread.h>

/* u64 -> u32 counter map (open addressing), for fragment pins. */
struct pinmap {
	uint64_t *keys;     /* 0 = empty slot (fragment ids start at 1) */
	uint32_t *vals;
	uint8_t  *zombie;   /* refcount reached 0 while pinned: delete at unpin */
	size_t cap, used;
};

struct srados;
struct rconn;

/* commit_lock (gcommit.c): an exclusive holder or one commit round. */
struct cgate {
	pthread_mutex_t m;           /* leaf: everything below */
	pthread_cond_t c;
	int excl;                    /* an exclusive holder */
	unsigned excl_wait;          /* exclusive lockers waiting */
	unsigned excl_quota;         /* (G7): exclusive grants before the next round */
	unsigned waiting;            /* committers waiting to join a round */
	int active;                  /* a round holds the gate (G1) */
	int state;                   /* the round's state (gcommit.c) */
	struct idx_txn *parent;      /* the round's top-level write txn */
	unsigned joined, members, queued, merged;
	int child;                   /* a child txn is open (G3) */
	size_t bytes;                /* the round's entry, as of the last child */
	uint64_t turn;               /* (G6) */
	int rc;                      /* the round's outcome */
};

struct store {
	char *dir;
	struct store_conf conf;      /* immutable after open */
	struct srados *rados;        /* a RADOS store's side (store_rados.c), or NULL */
	struct rconn *rados_conn;    /* dropped at close, after the backend */
	void (*change_cb)(void *arg, const struct store_change *c);   /* set before use */
	void *change_arg;
	pthread_mutex_t change_lock; /* held across a callback: store_set_change_cb
				      * returns once none runs */
	struct idx *idx;
	struct frag_backend *disk, *mem;
	struct fcache *cache;
	struct pool *pool;           /* workers: decoding, read-ahead, encoding */
	struct rowidx_stash *ris;    /* new fragments' row indexes (rowidx.c (3)); NULL: none
				      * (read-only, or a store of format < 4) */
	uint32_t format;             /* the store's format version after open */
	int stage_raw;               /* recompress.c (P1): 0 never, 1 when behind, 2 always; set at open */
	unsigned enc_inflight;       /* atomic: wjobs submitted, not finished (recompress.c (P1)) */
	struct recomp *recomp;       /* the background compressor (recompress.c), or NULL */
	size_t frag_size, spill_size;
	int rdonly;
	int no_stream;               /* opts.no_stream */
	int sweep;                   /* daemon: sweeps at open, empties memory objects at close */
	int lockfd;                  /* STORE itself, flock()ed exclusively unless rdonly */
	int markfd;                  /* storelock.h: a tool's busy mark, or -1 */
	uint64_t next_frag;          /* atomic */
	struct cgate commit_lock;    /* serializes commits and namespace writes (gcommit.c) */
	int grouped;                 /* commits go in rounds (gcommit.c); set at open */
	pthread_mutex_t lock;        /* protects pins and pvcur */
	struct pinmap pins;          /* protected by lock */
	struct pvslot *pvcur;        /* protected by lock: ino -> current pver */
	size_t pvcur_cap;
	uint64_t pv_gen;             /* protected by lock: pvcur changes by commits (pver.c (7)) */
	uint64_t release_gen;        /* protected by lock: images released (pver.c (7)) */
	struct store_stats stats;    /* atomic fields */
	/* durability and deferred deletion (durable.c) */
	int dur_lazy;                /* NOMETASYNC index, the syncer; immutable while open */
	int reap_running;            /* the reaper thread runs (read-write stores) */
	int dur_leftover;            /* atomic: something was left for the sweep (store.c (S2)) */
	int clean_base;              /* opened clean or fully swept (store.c (S2)) */
	unsigned sync_ms;            /* syncer interval */
	uint64_t synced_written;     /* atomic: idx_last_written at the last flush */
	pthread_mutex_t sync_lock;   /* serializes flushes */
	pthread_mutex_t sync_wlock;  /* leaf: sync_gen, sync_stopping */
	pthread_cond_t sync_cond;    /* stop the syncer */
	uint64_t sync_gen;           /* protected by sync_wlock: flushes started */
	uint64_t sync_done_gen;      /* atomic: generation of the last successful flush */
	int sync_stopping, sync_running;
	pthread_t sync_thread;
	pthread_mutex_t dq_lock;     /* the deferred deletions */
	pthread_cond_t dq_cond;      /* wakes the reaper */
	pthread_cond_t dq_done;      /* the reaper finished a batch */
	struct dq_ent *dq;           /* protected by dq_lock: entries [dqhead, dqn) */
	size_t dqhead, dqn, dqcap;   /* protected by dq_lock */
	int reap_busy, reap_stopping;   /* protected by dq_lock */
	size_t reap_busy_n;          /* protected by dq_lock: images the reaper deletes now */
	pthread_t reap_thread;
	int reserve_fd;              /* index/reserve (reserve.c); -1 none; immutable */
	uint64_t reserve_size;       /* immutable after open */
	int reserve_held;            /* protected by commit_lock: the reserve is allocated */
	/* deferred creates (ns.c, "Pending names") */
	int pend_on;                 /* immutable after open: creates may be deferred */
	pthread_rwlock_t pend_ns;    /* read: a deferred create; write: a namespace txn */
	pthread_mutex_t pend_lock;   /* leaf: pend, ino_mem */
	struct pend_ent *pend;       /* protected by pend_lock: names not yet in the index */
	uint64_t ino_mem;            /* protected by pend_lock: > every number handed out */
	uint64_t pend_gen;           /* protected by pend_lock: names that left pend */
};

struct pend_ent {
	struct pend_ent *next;
	uint64_t parent;
	struct idx_inode in;         /* the inode as created: an empty file */
	char name[];
};

struct pver {
	struct store *st;
	struct idx_inode in;
	struct frag_desc *frags;     /* sorted by off; empty when inline */
	uint32_t nfrags;
	char *inl;                   /* inline bytes (size in in.size) */
	int refs;                    /* atomic */
	struct pinchunk **pins;      /* the pins of frags, PIN_CHUNK positions each */
	struct pvhead *head;         /* atomic, set once: the object's first bytes
				      * from its first fragment's row index
				      * (pver_head_load), or NULL */
	uint32_t npins;
	uint8_t extends;             /* set once, before it is published: its
				      * commit kept every byte of version
				      * in.version - 1 at the same offsets
				      * (commit.c (9)); 0 for a loaded version */
	uint64_t ext_from;           /* with extends: it keeps every byte of each
				      * version in [ext_from, in.version) (a run
				      * of swaps before it: recompress.c (S7)) */
	uint64_t same_since;         /* 0, or a swap's version (recompress.c
				      * (S7)): every version in [same_since,
				      * in.version] has exactly its bytes */
};

struct pvhead {
	uint32_t len;
	char bytes[];
};

struct pvslot {
	uint64_t ino;
	struct pver *pv;             /* holds one reference */
	uint64_t checked;            /* a read-only opener's: pv is current as of
					* this commit id (pver.c (8)); 0: unknown */
};

/* Durability (durable.c). dur_start: the reaper, and with LAZY the
 * NOMETASYNC index and the syncer; dur_stop: the syncer, a final flush,
 * the reaper's last deletions. dur_defer_delete: @return 1 when image D
 * was queued for the reaper (deleted once its release is durable,
 * invariant 1), 0 when the caller deletes it now (a memory image, or no
 * reaper). dur_after_commit: after a write txn committed, wake the reaper
 * for what the commit's flush made due. */
int dur_start(struct store *st, int lazy);
void dur_stop(struct store *st);
int dur_defer_delete(struct store *st, const struct frag_desc *d);
/* Images queued or being deleted by the reaper now. */
uint64_t dur_pending(struct store *st);
void dur_after_commit(struct store *st);
/* A more precise message for store_strerror(RC) after this thread's
 * failing store_open (e.g. who holds a RADOS store's lease). */
void store_set_open_detail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wake the reaper: more images may be due (store_rados.c's horizon moved). */
void store_reap_kick(struct store *st);
/* Tell the daemon what an applied log entry changed (store_change). */
void store_changed(struct store *st, enum store_change_kind kind, uint64_t ino, uint64_t parent,
		   const char *name, size_t name_len);
/* Tell the daemon that INO's new version PV has the bytes of the one
 * before (STORE_CHANGE_SWAP: recompress.c (S7)). */
void store_changed_swap(struct store *st, uint64_t ino, struct pver *pv);
/* Under commit_lock: the first version of the run of byte-identical
 * versions (swaps, recompress.c (S7)) that ends at version VERSION of
 * INO, as far as HINT (may be NULL) or the version cache knows; VERSION
 * itself when neither knows it. */
uint64_t store_same_since(struct store *st, const struct pver *hint, uint64_t ino, uint64_t version);
/* Delete image D now (and drop it from the cache). */
void store_delete_image(struct store *st, const struct frag_desc *d);
/* Delete image ID of backend BE that no index record names (a failed
 * commit's, a session's pre-cut one); a failure is left to the sweep. */
void store_discard_image(struct store *st, struct frag_backend *be, uint64_t id);
/* Something that only the next full sweep removes was left behind: the
 * store is not marked clean at close (store.c (S2)). */
void store_note_leftover(struct store *st);

/* Staging raw and the background compressor (recompress.c).
 * store_stage_raw_init: the policy (P1), after the format is known;
 * store_stage_raw_now: a wjob with BEHIND other jobs in flight stores D
 * raw (1) or compresses (0); recomp_start/stop: the daemon's thread. */
void store_stage_raw_init(struct store *st, int daemon);
int store_stage_raw_now(struct store *st, const struct frag_desc *d, unsigned behind);
int recomp_start(struct store *st);
void recomp_stop(struct store *st);

/* The store's worker pool (never NULL once open; may have 0 threads). */
struct pool *store_pool(struct store *st);

/* Pins (store.c). Pin every fragment of a list; unpin deletes zombies
 * whose index count is still 0. */
int store_pin_frags(struct store *st, const struct frag_desc *d, uint32_t n);
void store_unpin_frags(struct store *st, const struct frag_desc *d, uint32_t n);
/* A version's pins, in chunks of PIN_CHUNK list positions (store.c): a
 * chunk lying wholly inside the first NSHARED positions of PV's list,
 * whose ids are SHARE's at the same positions (an unchanged prefix), is
 * shared with SHARE by reference, so an append pins O(PIN_CHUNK + new)
 * fragments, not O(F). SHARE may be NULL. @return 0 or -ENOMEM (then
 * nothing is pinned). store_unpin_list drops PV's chunks; a chunk's last
 * reference unpins its fragments (store_unpin_frags). */
#define PIN_CHUNK 1024
struct pinchunk;
int store_pin_list(struct store *st, struct pver *pv, const struct pver *share, uint32_t nshared);
void store_unpin_list(struct store *st, struct pver *pv);
/* After a commit whose txn took fragment ID's count to 0: delete its image
 * now, or when the last pin goes. */
void store_release_frag(struct store *st, const struct frag_desc *d);
/* A commit resurrected ID (count 0 -> 1) while pinned: not a zombie. */
void store_unzombie(struct store *st, uint64_t id);
uint64_t store_alloc_frag_id(struct store *st);
struct frag_backend *store_backend_of(struct store *st, const struct frag_desc *d);
/* Forget the cached current version of INO (after a commit or delete),
 * or of every inode FROM <= ino < TO (a dropped snapshot). */
void store_pvcur_drop(struct store *st, uint64_t ino);
void store_pvcur_drop_range(struct store *st, uint64_t from, uint64_t to);
/* Make PV the cached current version of its inode (takes a reference). */
void store_pvcur_set(struct store *st, struct pver *pv);
/* Publish the empty version of object IN, just created (its txn committed,
 * commit_lock still held: what pver_load would read now), so that the open
 * that follows a create needs no load (and no commit_lock). Best effort:
 * no memory, nothing published. */
void store_pvcur_set_empty(struct store *st, const struct idx_inode *in);

/* Drop all data of INO inside T (fragment records, refs, inline); collect
 * fragments whose count reached 0 into *FREED (malloc'd, *NFREED). */
int store_drop_data(struct idx_txn *t, uint64_t ino, struct frag_desc **freed, uint32_t *nfreed);
/* Delete a fully-unlinked inode (nlink 0) inside T: data, xattrs, record,
 * orphan mark. */
int store_destroy_inode(struct idx_txn *t, uint64_t ino, struct frag_desc **freed, uint32_t *nfreed);
/* Release images collected by the above after the txn committed. */
void store_release_list(struct store *st, struct frag_desc *freed, uint32_t n);

/* Begin a write txn under commit_lock (released by store_wend). On a
 * writable store (a local one or a RADOS writer) it is a member of a
 * commit round (gcommit.c) unless PAYLOADFS_GROUP_COMMIT=0. */
int store_wbegin(struct store *st, struct idx_txn **t);
/* The pieces of store_wend, for callers with a post-commit section under
 * commit_lock (commit.c): store_wcommit commits T and returns when it is
 * committed (in a round: the round's outcome, gcommit.c (G4)) or failed;
 * store_wabort aborts T; store_wunlock then releases commit_lock. */
int store_wcommit(struct store *st, struct idx_txn *t);
void store_wabort(struct store *st, struct idx_txn *t);
void store_wunlock(struct store *st);
/* commit_lock held exclusively (version loads, deletes, a follower's
 * applier); never by a thread that holds it already. */
void store_xlock(struct store *st);
void store_xunlock(struct store *st);
void gate_init(struct cgate *g);
/* PAYLOADFS_GROUP_COMMIT is not "0": a writable store commits in rounds. */
int gcommit_wanted(void);
void gate_destroy(struct cgate *g);

/* The reserve that lets deletes run on a full file system (reserve.c).
 * store_wbegin_freeing is store_wbegin for a txn that frees space: it may
 * first give the reserve back. store_reserve_check (caller holds
 * commit_lock; store_wbegin calls it) remakes a given-back reserve.
 * @return 0, or -ENOSPC while it is given back and cannot be remade.
 * Open/close: read-write stores only; failures are logged, never fatal. */
int store_wbegin_freeing(struct store *st, struct idx_txn **t);
int store_reserve_check(struct store *st);
void store_reserve_open(struct store *st);
void store_reserve_close(struct store *st);
/* Commit (rc == 0) or abort T and release commit_lock; returns the result. */
int store_wend(struct store *st, struct idx_txn *t, int rc);

/* Pending names (ns.c): a namespace write txn. store_nswbegin is
 * store_wbegin (FREEING: store_wbegin_freeing) that first excludes
 * deferred creates and puts every pending name into T; store_nswend is
 * store_wend for it (it forgets the names T committed). NSW carries what
 * was merged between the two. */
struct nsw { uint64_t *inos; size_t n; };
int store_nswbegin(struct store *st, struct idx_txn **t, int freeing, struct nsw *w);
int store_nswend(struct store *st, struct idx_txn *t, int rc, struct nsw *w);
/* The pieces of store_nswend, for callers with a post-commit section:
 * after store_wcommit/store_wabort, store_nswunlock(committed) replaces
 * store_wunlock. */
void store_nswunlock(struct store *st, struct nsw *w, int committed);
/* Inside a write txn T (the gate held): put INO's pending name into T if
 * it is pending; *W says what to forget once T committed (store_pend_done,
 * before store_wunlock). */
int store_pend_merge_one(struct store *st, struct idx_txn *t, uint64_t ino, struct nsw *w);
void store_pend_done(struct store *st, struct nsw *w, int committed);
void store_pend_init(struct store *st, int on);
void store_pend_fini(struct store *st);

/* -EROFS when IN belongs to a snapshot (snap.c invariant 2), else 0. */
static inline int inode_ro(const struct idx_inode *in) { return (in->flags & INODE_F_SNAP) ? -EROFS : 0; }

/* Payload format of an inode: rows are lines or fixed records. */
static inline int inode_is_fixed(const struct idx_inode *in) { return in->fmt_kind == PFMT_FIXED; }

/* Count rows of BUF/LEN as a fragment holds them (lines: '\n' count plus
 * one for a last row without '\n'; fixed: len / N). */
uint64_t rows_in(const struct idx_inode *in, const char *buf, size_t len);

/* Where a piece of content starts relative to the rows (its "phase"):
 * lines: 1 when it starts inside a row (offset > 0 and the byte before it
 * is not '\n'), else 0; fixed:N: its offset mod N. A piece of phase != 0
 * is a FRAG_F_CONT fragment (pver.c invariant 4). */
/* Rows starting in piece RAW/LEN of phase PHASE in format IN: what its
 * fragment record's rows says. */
uint64_t frag_rows(const struct idx_inode *in, const char *raw, size_t len, uint32_t phase);

/* One fragment being encoded and put on the pool (wjob.c). */
struct wjob {
	struct pool_group g;
	struct store *st;
	struct frag_backend *be;
	struct idx_inode fmt;        /* rows are counted in this format */
	char *raw;                   /* owned (bufpool); given back when the put succeeded */
	size_t raw_cap;              /* its bufpool capacity */
	size_t len;
	uint32_t phase;              /* where the piece starts (frag_rows) */
	struct frag_desc d;          /* immutable once started: id, len, flags */
	struct frag_desc out;        /* the job's result: d + rows, codec, lengths, checksum */
	int rc;                      /* valid after wjob_wait */
	int done;                    /* atomic: finished */
	int waited;                  /* owner only */
};
/* Allocate the next fragment id and queue the encode + put of RAW/LEN
 * (a bufpool buffer of RAW_CAP bytes: taken over when this returns 0,
 * left to the caller on failure). FMT gives the row
 * format and the storage (INODE_F_MEMORY picks the memory backend);
 * PHASE where the piece starts (frag_rows: its rows, and FRAG_F_CONT).
 * @return 0 and *OUT, or -ENOMEM / -EFBIG (nothing queued). */
int wjob_start(struct store *st, const struct idx_inode *fmt, char *raw, size_t raw_cap, size_t len,
	       uint32_t phase, struct wjob **out);
/* wjob_start in two steps: wjob_new allocates the job and its id
 * (-ENOMEM, -EFBIG; free an unsubmitted job with wjob_free), wjob_submit
 * hands RAW (LEN bytes as given to wjob_new) over and queues it; it
 * cannot fail. */
int wjob_new(struct store *st, const struct idx_inode *fmt, size_t len, uint32_t phase,
	     struct wjob **out);
void wjob_submit(struct wjob *j, char *raw, size_t raw_cap);
/* Finished (no wait)? */
int wjob_done(const struct wjob *j);
/* Wait (helping to run it). @return 0 or the job's -errno (raw kept). */
int wjob_wait(struct wjob *j);
/* Wait and free. NULL-safe. The image (if any) stays. */
void wjob_free(struct wjob *j);

/* One more reference to fragment ID in txn T (commit.c): a first one
 * un-zombies it and puts its stashed row index. */
int store_ref_inc(struct store *st, struct idx_txn *t, uint64_t id);

/* store_put_many's members over STORE_INLINE_MAX (putcut.c): cut and put
 * before the batch's txn, filled into it, discarded on any failure. */
struct putcut {
	struct store *st;
	struct wjob **jobs;          /* every member's, in cut order */
	uint32_t njobs, cap, waited;
	unsigned max_inflight;
};
struct putcut_member {
	struct idx_inode fmt;        /* the settings its bytes were cut with */
	uint32_t first, n;           /* its jobs: jobs[first, first + n) */
	uint64_t rows;               /* set by putcut_fill */
	size_t len;
};
void putcut_init(struct putcut *pc, struct store *st);
/* Cut DATA/LEN with FMT's settings into jobs. @return 0, -EFBIG, -ENOMEM,
 * -errno of an earlier job. */
int putcut_member(struct putcut *pc, const struct idx_inode *fmt, const void *data, size_t len,
		  struct putcut_member *m);
/* Wait for every job, then ONE sync of all images. @return 0 or -errno. */
int putcut_finish(struct putcut *pc);
/* Put M's fragment records of object INO and their references in T. */
int putcut_fill(struct putcut *pc, struct idx_txn *t, uint64_t ino, struct putcut_member *m);
/* Delete every image (nothing references them) and free; or only free
 * (after the txn committed: the index owns them). */
void putcut_discard(struct putcut *pc);
void putcut_free(struct putcut *pc);

/* Commit a new content described by a segment list over BASE (commit.c). */
enum seg_kind { SEG_BASE = 0, SEG_STAGE = 1, SEG_ZERO = 2, SEG_PRECUT = 3, SEG_FOREIGN = 4 };
struct seg {
	uint64_t off;        /* offset in the content */
	uint64_t len;
	uint64_t src;        /* base offset (SEG_BASE), stage offset (SEG_STAGE),
			      * offset in the pre-cut fragments (SEG_PRECUT) or
			      * in the foreign version (SEG_FOREIGN) */
	uint32_t fsrc;       /* SEG_FOREIGN: which of the session's foreign
			      * versions (stage_foreign); 0 otherwise */
	uint8_t kind;
};
struct stage;            /* append-only staged bytes (stage.c) */
/* Copy staged bytes [OFF, OFF+LEN) into BUF. @return 0; -EIO (past the
 * log, or a short spill file); -errno of pread(2); an injected -errno from
 * fault point "staging_read". */
int stage_read(struct stage *sg, void *buf, size_t len, uint64_t off);
/* Pre-cut fragments of a session (stage.c (5)-(9)); SG may be NULL (none).
 * stage_precut_settle waits for every job and returns (and clears) the
 * first streaming failure. stage_precut_get's descriptor has off = its
 * offset in the pre-cut space; *USABLE when the commit may reference it.
 * stage_precut_keep: the index references fragment I now (never deleted
 * by the session); stage_precut_mark_bad: none is usable any more (their
 * sync failed). */
int stage_precut_settle(struct stage *sg);
size_t stage_precut_n(const struct stage *sg);
const struct frag_desc *stage_precut_get(const struct stage *sg, size_t i, int *usable);
/* Where pre-cut fragment I was cut (its content offset then: the phase of
 * a fixed:N piece is that mod N), and whether its last byte is '\n'. */
uint64_t stage_precut_at(const struct stage *sg, size_t i);
int stage_precut_ends_nl(const struct stage *sg, size_t i);
void stage_precut_keep(struct stage *sg, size_t i);
void stage_precut_mark_bad(struct stage *sg);
/* Foreign versions of a session (stage.c (10)): pinned versions of other
 * objects (or other versions of this one) whose bytes SEG_FOREIGN segments
 * reference — what copy_file_range(2) copied in. SG may be NULL (none).
 * stage_foreign_n: how many; stage_foreign: the I-th (borrowed). */
size_t stage_foreign_n(const struct stage *sg);
struct pver *stage_foreign(const struct stage *sg, uint32_t i);
/* Pre-cut images a live session holds, after waiting for its jobs in
 * flight (tests: images no index record references yet). */
size_t wsess_precut_count(struct wsess *ws);

/* Length of the next piece of BUF (HAVE bytes, of phase PHASE; FINAL
 * when the content ends there) for fragments of at most FRAG_SIZE bytes
 * in format IN: up to the last row (record) end within FRAG_SIZE bytes,
 * or FRAG_SIZE bytes when a row longer than FRAG_SIZE starts before half
 * of it (lines; in fixed:N only when no record ends within it); 0 when
 * more bytes are needed to decide (not FINAL, and HAVE <= FRAG_SIZE, or
 * less than FRAG_SIZE bytes past that row's start: 2 x FRAG_SIZE + 1
 * bytes always decide). commit.c. */
size_t cut_piece_len(const struct idx_inode *in, size_t frag_size, const char *buf, size_t have,
		     int final, uint32_t phase);
/* The phase of the piece that follows piece BUF/LEN of phase PHASE. */
uint32_t next_phase(const struct idx_inode *in, const char *buf, size_t len, uint32_t phase);
/* Read content [off, off+len) of segment list S/N (base bytes from BASE,
 * staged bytes from SG). @return bytes read (short at the end) or -errno. */
ssize_t segs_read(struct pver *base, struct stage *sg, const struct seg *s, size_t n,
		  void *buf, size_t len, uint64_t off);

/* Commit content SEGS (N segments) over BASE for object INO, with
 * attributes NEWIN (format/header as the new version should have). On
 * success *NEWPV is the new pinned version (may be NULL to skip). */
/* MTIME_NS is when the content last changed (the session's last write);
 * the new version's mtime is that, unless mtime was set explicitly after
 * it (cp -p sets times before close). MAY_EXTEND: the content may count as
 * an append of BASE (commit.c (9)); 0 for a session that truncated. */
int commit_segments(struct store *st, struct pver *base, const struct seg *segs, size_t n,
		    struct stage *sg, const struct idx_inode *newin, int64_t mtime_ns,
		    int may_extend, struct pver **newpv);

#endif
