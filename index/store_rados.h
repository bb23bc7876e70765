/* store_rados — the store's side of a RADOS store (docs/rados.md): the
 * connection, the images in the cluster, the index log (cache/rlog.h), the
 * writer's lease and commit hook, the follower's applier, and deletion of
 * images across hosts. Internal to index/ (store.c, durable.c). */
#ifndef PFS_STORE_RADOS_H
#define PFS_STORE_RADOS_H

#include <stdint.h>

struct store;
struct store_opts;
struct frag_desc;

/* Open the RADOS side of ST (st->conf is RADOS) after open_conf, before
 * the root is made: connect, open the image backend (st->disk) and the
 * log, then by role:
 *  - writer: take the lease (opts: rados_lease, takeover_wait,
 *    takeover_force), bring the local index up to the log's end (from a base
 *    when it was trimmed or CREATED is a takeover), install the commit hook;
 *  - follower: register, bring the local index up to the log's end, start
 *    the applier.
 * A read-only open (tools) only opens the image backend.
 * @return 0; -EEXIST (a new writer store whose RADOS store already holds
 * something: use --takeover); -EBUSY (another writer holds the lease);
 * -ENOENT (no such RADOS store: init it first); -ETIMEDOUT; -errno. */
int srados_open(struct store *st, const struct store_opts *o, int created);
/* After the root of a NEW writer store was made: write the first base
 * (position 0) so that followers can start. @return 0 or -errno. */
int srados_created(struct store *st);
/* Start the threads (the writer's follower watch; the follower's applier)
 * once the store is otherwise open. @return 0 or -errno. */
int srados_start(struct store *st);
/* Stop the thread (first thing at close). NULL-safe. */
void srados_stop(struct store *st);
/* Give the lease back, close the log (after the store's last txn). The
 * connection is left in st->rados_conn for store_close to drop after the
 * image backend. NULL-safe on a store without a RADOS side. */
void srados_close(struct store *st);
/* May the writer's sweep delete images no index record names? Only when
 * no follower record holds anything back (docs/rados.md). */
int srados_sweep_ok(struct store *st);
/* store_unref_delete_ok of a RADOS store. */
int srados_unref_ok(struct store *st, char *why, size_t cap);

/* Deletion across hosts (docs/rados.md). The position to tag a released
 * image with (the log position of the newest local commit, which is >=
 * the releasing commit's); whether an image tagged LSN may go now. */
uint64_t srados_release_tag(struct store *st);
int srados_may_delete(struct store *st, uint64_t lsn);
/* A follower: image D was released by the entry being applied while a
 * version here pins it (a zombie): hold the horizon back until
 * srados_unheld (its last unpin). */
void srados_held(struct store *st, const struct frag_desc *d);
void srados_unheld(struct store *st, const struct frag_desc *d);
/* The cluster's space (rados_cluster_stat): TOTAL and AVAIL bytes, what
 * statfs(2) and fallocate(2)'s check see of a RADOS store. @return 0;
 * -ENODATA when the cluster has no figures (they come from its manager:
 * a cluster without one reports a size of 0); -errno (-ETIMEDOUT). */
int srados_space(struct store *st, uint64_t *total, uint64_t *avail);
/* Is ST a follower (never deletes images, never commits)? */
int srados_follower(const struct store *st);

#endif
