/* ops — the low-level FUSE operations of payloadfs. */
#ifndef PFS_OPS_H
#define PFS_OPS_H

#define FUSE_USE_VERSION 312
#include "cache/hist.h"
#include <fuse_lowlevel.h>
#include <stddef.h>

struct store;
struct store_change;

/* The daemon's state, passed as the session's userdata. Immutable once
 * the session runs. */
struct pfs {
	struct store *st;
	int rdonly;
	int page_cache;   /* read handles of a current version may use the page
			   * cache (default; -o direct_io turns it off) */
	long long started_ns;   /* when the daemon started serving */
	size_t cache_size;      /* the fragment cache budget */
	char ra_path[128];      /* sysfs read_ahead_kb of the mount, or "" */
	size_t ra_bytes;        /* the window to set there */
	int ra_done;            /* atomic: set (or tried) once */
	struct hist read_lat;   /* READs of objects and views (.metrics) */
	struct hist commit_lat; /* commits at close/fsync that succeeded */
};

/* Set the mount's read-ahead window (once, best effort: only root may);
 * called from request handlers, i.e. after the kernel processed INIT. */
void pfs_tune_read_ahead(struct pfs *p);

extern const struct fuse_lowlevel_ops pfs_ops;

/* The `.stats` JSON (also the root's user.payload.stats xattr): cache,
 * I/O and node counters and the daemon's memory, as a malloc'd string.
 * @return 0 or -ENOMEM. Thread-safe. */
int pfs_stats_json(struct pfs *p, char **out, size_t *len);

/* The same figures, and the latency histograms, in the Prometheus text
 * exposition format (version 0.0.4): the `.metrics` file, documented in
 * docs/metrics.md. @return 0 or -ENOMEM. Thread-safe. */
int pfs_metrics_text(struct pfs *p, char **out, size_t *len);

/* A follower applied a change from the writer's log (store_set_change_cb):
 * drop what the kernel caches for it. Runs on the store's applier thread. */
void pfs_applied(void *arg, const struct store_change *c);

#endif
