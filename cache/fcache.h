/* fcache — the in-memory cache of decompressed fragments: one LRU bounded
 * by bytes, shared by every reader, with pinned buffers; and
 * fcache_fetch(), the read path: hits from the cache, all misses of one
 * call fetched with one backend get_many() and decoded (checksum verified)
 * before they enter the cache.
 *
 * Invariants:
 *  (1) A buffer returned to a caller is pinned (refcount > 0) and is never
 *      freed or changed until the caller calls fbuf_put().
 *  (2) Buffers are immutable once published; the bytes of fragment ID are
 *      the same everywhere (fragments never change).
 *  (3) Cached bytes (pinned or not) count against the budget; unpinned
 *      entries are evicted least-recently-used first until within budget.
 *      Pinned entries beyond the budget are evicted when unpinned.
 *  (4) Only bytes whose checksum verified ever enter the cache.
 * All functions are thread-safe.
 */
#ifndef PFS_FCACHE_H
#define PFS_FCACHE_H

#include <stddef.h>
#include <stdint.h>

struct fcache;
struct frag_backend;

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
};

/* @return a cache with a budget of BUDGET bytes (0 = 256 MiB), or NULL on
 * allocation failure. */
struct fcache *fcache_new(size_t budget);
/* Free the cache; every buffer must have been put back. NULL-safe. */
void fcache_free(struct fcache *c);

/* Pin the cached bytes of ID. @return the pinned buffer, or NULL on miss. */
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

void fcache_get_stats(struct fcache *c, struct fcache_stats *st);

#endif
