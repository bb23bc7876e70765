/* fcache — the in-memory cache of decompressed fragments: one LRU bounded
 * by bytes, shared by every reader, with pinned buffers; and the read
 * path: fcache_fetch() (hits from the cache, all misses of one call fetched
 * with ONE backend get_many() per backend and decoded — in parallel on the
 * worker pool when there are several, each as its read completes — before
 * they enter the cache), and
 * fcache_prefetch() (the same in the background, for read-ahead).
 *
 * Invariants:
 *  (1) A buffer returned to a caller is pinned (refcount > 0) and is never
 *      freed or changed until the caller calls fbuf_put().
 *  (2) Buffers are immutable once published; the bytes of fragment ID are
 *      the same everywhere (fragments never change).
 *  (3) Cached bytes (pinned, loading or not) count against the budget;
 *      unpinned entries are evicted least-recently-used first until within
 *      budget. Pinned entries beyond the budget are evicted when unpinned.
 *  (4) Only bytes whose checksum verified are ever handed out: a fragment
 *      being loaded is in the table as "loading"; other callers that want
 *      it wait for it instead of reading it again, and get it only once it
 *      verified (or fetch it themselves when its load failed).
 *  (5) Back-pressure by bytes: the image and decode buffers of fragments
 *      being loaded never exceed the in-flight budget, separately for
 *      foreground fetches (which wait for room, but always proceed when
 *      nothing else is in flight) and read-ahead (which is skipped when
 *      there is no room): memory stays bounded under any load.
 * All functions are thread-safe.
 */
#ifndef PFS_FCACHE_H
#define PFS_FCACHE_H

#include <stddef.h>
#include <stdint.h>

struct fcache;
struct frag_backend;
struct pool;

/* A pinned, immutable, decompressed fragment. */
struct fbuf {
	uint64_t id;
	size_t len;
	const char *data;
	/* private: */
	int refs;
};

/* What to fetch: the descriptor of a fragment as the index records it. */
struct frag_ref {
	uint64_t id;
	uint32_t raw_len;
	uint32_t stored_len;
	uint64_t checksum;
	struct frag_backend *backend;   /* where the image lives */
};

struct fcache_stats {
	uint64_t hits, misses, evictions, bytes, entries, budget;
	uint64_t batches;          /* backend get_many() calls (one I/O submission each) */
	uint64_t fetched;          /* fragments read from a backend */
	uint64_t fetched_bytes;    /* image bytes read */
	uint64_t parallel;         /* fragments decoded on pool workers */
	uint64_t waits;            /* fetches that waited for another caller's load */
	uint64_t prefetched;       /* fragments read ahead in the background */
	uint64_t prefetch_skipped; /* read-ahead skipped: in-flight budget full */
	uint64_t damaged;          /* fragments that failed verification */
	uint64_t inflight_fg, inflight_bg, inflight_budget;   /* bytes now */
};

/* @return a cache with a budget of BUDGET bytes (0 = 256 MiB), or NULL on
 * allocation failure. Without a pool, decoding is serial and
 * fcache_prefetch() does nothing. */
struct fcache *fcache_new(size_t budget);
/* Use POOL (borrowed: it must outlive the cache's last fetch) for
 * parallel decoding and read-ahead; INFLIGHT bytes for each in-flight
 * budget (0 = budget / 8, between 8 MiB and 64 MiB). Call before the
 * first fetch. */
void fcache_configure(struct fcache *c, struct pool *pool, size_t inflight);
/* Free the cache; every buffer must have been put back and no prefetch
 * may be running (free the pool first). NULL-safe. */
void fcache_free(struct fcache *c);

/* Pin the cached bytes of ID. @return the pinned buffer, or NULL when not
 * cached (or still loading). */
struct fbuf *fcache_lookup(struct fcache *c, uint64_t id);
/* Unpin. NULL-safe. Aborts on refcount underflow. */
void fbuf_put(struct fbuf *b);
/* Forget ID (its fragment was deleted): an unpinned entry is freed now, a
 * pinned one when its last pin goes. */
void fcache_drop(struct fcache *c, uint64_t id);

/* Fetch N fragments: hits pinned from the cache; every miss fetched in ONE
 * get_many() per backend, decoded and verified (id, checksum, raw_len),
 * inserted and pinned. OUT[i] is the pinned buffer of REFS[i].
 * @return 0 (all pinned); -EIO (a fragment is damaged: logged with its id,
 *   nothing pinned), -ENOENT (missing fragment), -ENOMEM, or a backend
 *   -errno. On failure every OUT[i] is NULL. */
int fcache_fetch(struct fcache *c, const struct frag_ref *refs, size_t n,
		 struct fbuf **out);

/* Read ahead: start loading, in the background, those of REFS that are
 * neither cached nor being loaded, as long as the read-ahead budget has
 * room. Never blocks on I/O. DONE(ARG) (may be NULL) is called once the
 * background work is over, or at once when nothing was queued: the caller
 * keeps the images alive until then (e.g. a pinned version).
 * @return the number of fragments queued (0 when nothing needed or could
 * be done). */
size_t fcache_prefetch(struct fcache *c, const struct frag_ref *refs, size_t n,
		       void (*done)(void *), void *arg);

void fcache_get_stats(struct fcache *c, struct fcache_stats *st);

#endif
