/* backend — where immutable fragment images live: one small interface
 * (put / sync / get-many / delete / list of fragments by 64-bit id) with a
 * local-directory backend, an in-memory backend and a RADOS backend (Ceph,
 * librados) behind it; nothing above cache/ knows which one it talks to.
 *
 * Contract for every backend:
 *  (1) A fragment id is written at most once; put() of an id that exists
 *      replaces nothing and returns -EEXIST. A backend whose puts are
 *      asynchronous (RADOS) may learn that only when the write completes:
 *      its put() returns 0 and the sync() naming the id returns -EEXIST.
 *  (2) After put() returns 0 and a later sync() naming its id (or all ids)
 *      returns 0,
 *      the image is durable (survives a crash) — for the memory backend,
 *      until the process exits. Before that sync, the image may be lost or
 *      partial after a crash: the index never names it yet, and the next
 *      mount sweeps it. sync() covers exactly the ids it is given, so
 *      concurrent commits each make their own images durable and none is
 *      told "durable" about an image another thread is still writing.
 *  (3) get_many() is the batched read: it fetches all N images in as few
 *      I/O submissions as the backend can (one io_uring submission for the
 *      local backend when available). Each request has its own result.
 *  (4) All ops are thread-safe.
 */
#ifndef PFS_BACKEND_H
#define PFS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct frag_backend;

/* One request of a batched read. */
struct frag_get {
	uint64_t id;     /* [in]  fragment id */
	void    *buf;    /* [in]  destination, CAP bytes */
	size_t   cap;    /* [in]  expected image size (header + stored bytes);
			  *       0 asks only whether the image exists and its
			  *       size (BUF unused): err 0 and LEN = its size */
	size_t   len;    /* [out] bytes read (cap 0: the image's size) */
	int      err;    /* [out] 0, -ENOENT (no such fragment), -EIO, ... */
};

struct frag_backend_ops {
	const char *name;
	/* Store image DATA/LEN under ID. @return 0, -EEXIST, -ENOSPC, -EIO,
	 * -EDQUOT, -ENOMEM (never flattened: ENOSPC stays ENOSPC). */
	int (*put)(struct frag_backend *b, uint64_t id, const void *data, size_t len);
	/* Make the N images IDS durable (each put() by the caller before this
	 * call and not deleted since): their bytes and their names. Images of
	 * other callers may become durable too. N == 0 does nothing. IDS NULL:
	 * every image put() before this call.
	 * @return 0 when all of them are durable, else -errno (-EIO, -ENOSPC,
	 * -EDQUOT, -ENOMEM…, as the file system reported it). */
	int (*sync)(struct frag_backend *b, const uint64_t *ids, size_t n);
	/* Fetch N images. @return 0 when the batch was submitted (look at each
	 * req->err), or -errno when nothing could be done. */
	int (*get_many)(struct frag_backend *b, struct frag_get *reqs, size_t n);
	/* Remove ID. @return 0, or -ENOENT when absent, or -errno. */
	int (*del)(struct frag_backend *b, uint64_t id);
	/* Call CB(ARG, id) for every stored id, in no particular order; stops
	 * and returns CB's value when it is non-zero. @return 0 or -errno. */
	int (*list)(struct frag_backend *b, int (*cb)(void *arg, uint64_t id), void *arg);
	/* Free the backend; NULL-safe through frag_backend_destroy(). */
	void (*destroy)(struct frag_backend *b);
	/* Optional (NULL: nothing to do). Remove what interrupted puts of
	 * older versions may have left that list() does not show (the local
	 * backend's temporary files); called by the full sweep after an
	 * unclean shutdown. @return 0 or -errno. */
	int (*sweep_partial)(struct frag_backend *b);
	/* Optional (NULL: del() is durable when it returns). Make every del()
	 * that returned before this call durable (the local backend: one
	 * syncfs, which commits the folders' unlinks). @return 0 or -errno. */
	int (*sync_dels)(struct frag_backend *b);
	/* Optional (NULL: "image ID"). Where image ID lives, for messages:
	 * "fragments/XX/ID.frag" (local, relative to STORE), "RADOS object
	 * POOL/NSPACE/ID", into BUF (CAP bytes, NUL-terminated). */
	void (*where)(struct frag_backend *b, uint64_t id, char *buf, size_t cap);
	/* Optional (NULL: 0). The bytes of image ID that the last get_many()
	 * gave did not verify (checksum, header). A backend keeping a local
	 * copy of another's images (backend_cached) drops its copy, so that a
	 * damaged copy is never served again. @return 1 when those bytes came
	 * from such a copy (reading again fetches them from the source), 0
	 * when they came from the source itself (reading again cannot help). */
	int (*invalidate)(struct frag_backend *b, uint64_t id);
	/* Optional (NULL: get_many(), then DONE for each request in order).
	 * get_many() that also calls DONE(ARG, i) once for every request i,
	 * as soon as that request is finished (its err and len final, its
	 * buffer no longer written), on the calling thread, in any order,
	 * before it returns — so the caller can decode an image while the
	 * others are still read. DONE must not call the backend. When it
	 * returns -errno (nothing could be done), DONE was never called. */
	int (*get_many_cb)(struct frag_backend *b, struct frag_get *reqs, size_t n,
			   void (*done)(void *arg, size_t i), void *arg);
};

struct frag_backend {
	const struct frag_backend_ops *ops;
};

/* Open the local-directory backend rooted at DIR (STORE/fragments): images
 * are DIR/XX/ID.frag, XX the low byte of the id in hex, ID 16 hex digits.
 * Creates DIR and the 256 fan-out folders (mode 0700) when missing; its
 * sweep_partial removes leftover temporary files (.tmp.*) of older
 * versions' interrupted puts.
 * sync() of many ids is one syncfs(2), of a few one batch of fsyncs;
 * PAYLOADFS_SYNC=fsync|syncfs (benchmarks) forces either.
 * @param[out] out the backend, NULL on failure
 * @return 0 or -errno. */
int backend_local_open(const char *dir, struct frag_backend **out);

/* Open the local backend of a store that another process may be writing:
 * creates nothing and removes nothing (no temporary-file sweep). put() and
 * del() still work if called; a read-only store never calls them. */
int backend_local_open_ro(const char *dir, struct frag_backend **out);

/* Open an in-memory backend (images kept in RAM until destroy). */
int backend_mem_open(struct frag_backend **out);

struct rados_conf;   /* cache/rados_conn.h */
struct rconn;

/* Open the RADOS backend: images are the objects of namespace NSPACE (one
 * per store, non-empty) in POOL, named by the id in 16 lower-case hex
 * digits; objects of other names there are ignored. put() sends an
 * exclusive create + write_full in one write operation and returns once
 * it is sent (its result, -EEXIST included, comes with the sync() naming
 * the id); sync() waits for those writes (RADOS completes a write once it
 * is durable on every replica); get_many() sends all reads at once and
 * waits for all; del() removes; list() lists the namespace. Every
 * operation ends within C's timeout: a dead OSD or monitor gives
 * -ETIMEDOUT, never a hang. Errors are librados's -errno as is; an image
 * larger than the OSDs' osd_max_write_size (90 MiB by default) fails its
 * sync with -EMSGSIZE (images are not split over several objects).
 * backend_rados_open connects (rconn_open) for this backend alone;
 * backend_rados_open_conn shares CONN (it takes its own reference).
 * @param[out] out the backend, NULL on failure
 * @return 0 or -errno: -ENOENT (no such pool, or no configuration file),
 *         -EINVAL (empty pool or namespace), -ETIMEDOUT (no monitor), ... */
int backend_rados_open(const struct rados_conf *c, const char *pool, const char *nspace,
		       struct frag_backend **out);
int backend_rados_open_conn(struct rconn *conn, const char *pool, const char *nspace,
			    struct frag_backend **out);

/* A bounded on-disk cache in front of INNER (backend_cached.c): get_many
 * serves images from files under DIR when there, fetches the others with
 * one INNER get_many and keeps them, least recently used first out past
 * BUDGET bytes; put, sync, del (which also drops the copy) and list are
 * INNER's. Takes INNER over on success (destroyed with the cache); leaves
 * it to the caller on failure. @return 0 or -errno (DIR cannot be made). */
int backend_cached_open(struct frag_backend *inner, const char *dir, uint64_t budget,
			struct frag_backend **out);
/* Its counters: reads served from DIR, images fetched from INNER, bytes
 * and files held. B must be a backend_cached_open backend. */
void backend_cached_stats(struct frag_backend *b, uint64_t *hits, uint64_t *misses, uint64_t *bytes,
			  uint64_t *files);

static inline int frag_put(struct frag_backend *b, uint64_t id, const void *d, size_t l)
{ return b->ops->put(b, id, d, l); }
static inline int frag_sync(struct frag_backend *b, const uint64_t *ids, size_t n)
{ return b->ops->sync(b, ids, n); }
static inline int frag_get_many(struct frag_backend *b, struct frag_get *r, size_t n)
{ return b->ops->get_many(b, r, n); }
/* get_many with per-request completions (get_many_cb in the ops). */
int frag_get_many_cb(struct frag_backend *b, struct frag_get *r, size_t n,
		     void (*done)(void *arg, size_t i), void *arg);
static inline int frag_del(struct frag_backend *b, uint64_t id) { return b->ops->del(b, id); }
static inline int frag_list(struct frag_backend *b, int (*cb)(void *, uint64_t), void *arg)
{ return b->ops->list(b, cb, arg); }
static inline int frag_sync_dels(struct frag_backend *b)
{ return b->ops->sync_dels ? b->ops->sync_dels(b) : 0; }
static inline int frag_sweep_partial(struct frag_backend *b)
{ return b->ops->sweep_partial ? b->ops->sweep_partial(b) : 0; }
static inline int frag_invalidate(struct frag_backend *b, uint64_t id)
{ return b->ops->invalidate ? b->ops->invalidate(b, id) : 0; }
void frag_where(struct frag_backend *b, uint64_t id, char *buf, size_t cap);
static inline void frag_backend_destroy(struct frag_backend *b) { if (b) b->ops->destroy(b); }

#endif
