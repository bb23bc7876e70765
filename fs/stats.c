/* stats — the `.stats` JSON: what the daemon's caches and I/O are doing,
 * readable with `cat MNT/.stats` or `getfattr -n user.payload.stats MNT`. */
#include "fs/ops.h"
#include "fs/fnode.h"
#include "fs/notify.h"
#include "index/store.h"
#include "cache/fcache.h"
#include "cache/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* VmRSS and VmHWM of this process in bytes (0 when unknown). */
static void memory_use(uint64_t *rss, uint64_t *hwm)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	unsigned long long kb;

	*rss = *hwm = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			*rss = (uint64_t)kb << 10;
		else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			*hwm = (uint64_t)kb << 10;
	}
	fclose(f);
}

int pfs_stats_json(struct pfs *p, char **out, size_t *len)
{
	struct store_stats ss;
	struct fcache_stats cs;
	struct fn_stats ns;
	uint64_t rss, hwm;
	FILE *f;

	*out = NULL;
	*len = 0;
	store_get_stats(p->st, &ss);
	store_get_cache_stats(p->st, &cs);
	fn_get_stats(&ns);
	memory_use(&rss, &hwm);
	if (!(f = open_memstream(out, len)))
		return -ENOMEM;
	fprintf(f, "{\n  \"uptime_s\": %.3f,\n",
		(double)(store_now_ns() - p->started_ns) / 1e9);
	fprintf(f, "  \"cache\": {\n"
		"    \"hits\": %" PRIu64 ",\n    \"misses\": %" PRIu64 ",\n"
		"    \"evictions\": %" PRIu64 ",\n    \"bytes\": %" PRIu64 ",\n"
		"    \"entries\": %" PRIu64 ",\n    \"budget\": %" PRIu64 ",\n"
		"    \"waits\": %" PRIu64 "\n  },\n",
		cs.hits, cs.misses, cs.evictions, cs.bytes, cs.entries, cs.budget, cs.waits);
	fprintf(f, "  \"io\": {\n"
		"    \"batches\": %" PRIu64 ",\n    \"fragments_read\": %" PRIu64 ",\n"
		"    \"bytes_read\": %" PRIu64 ",\n    \"decoded_in_parallel\": %" PRIu64 ",\n"
		"    \"read_ahead\": %" PRIu64 ",\n    \"read_ahead_skipped\": %" PRIu64 ",\n"
		"    \"damaged\": %" PRIu64 ",\n    \"inflight_bytes\": %" PRIu64 ",\n"
		"    \"inflight_read_ahead_bytes\": %" PRIu64 ",\n    \"inflight_budget\": %" PRIu64 ",\n"
		"    \"fragments_written\": %" PRIu64 ",\n    \"fragments_deleted\": %" PRIu64 ",\n"
		"    \"commits\": %" PRIu64 ",\n    \"index_txns\": %" PRIu64 ",\n"
		"    \"syncs\": %" PRIu64 ",\n"
		"    \"sync_failures\": %" PRIu64 ",\n    \"deletes_pending\": %" PRIu64 "\n  },\n",
		cs.batches, cs.fetched, cs.fetched_bytes, cs.parallel, cs.prefetched,
		cs.prefetch_skipped, cs.damaged, cs.inflight_fg, cs.inflight_bg, cs.inflight_budget,
		ss.frags_written, ss.frags_deleted, ss.commits, ss.index_txns, ss.syncs, ss.sync_failures,
		ss.deletes_pending);
	fprintf(f, "  \"nodes\": {\n"
		"    \"file_versions\": %" PRIu64 ",\n    \"views\": %" PRIu64 ",\n"
		"    \"other\": %" PRIu64 ",\n    \"objects\": %" PRIu64 ",\n"
		"    \"names\": %" PRIu64 ",\n    \"sealed\": %" PRIu64 ",\n"
		"    \"notify_waits\": %" PRIu64 "\n  },\n",
		ns.file_nodes, ns.view_nodes, ns.real_nodes, ns.objects, ns.names, ns.sealed,
		notify_waits());
	fprintf(f, "  \"memory\": {\n    \"rss\": %" PRIu64 ",\n    \"peak_rss\": %" PRIu64 "\n  }\n}\n",
		rss, hwm);
	if (fclose(f)) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

void pfs_tune_read_ahead(struct pfs *p)
{
	FILE *f;

	if (!p->ra_path[0] || __atomic_exchange_n(&p->ra_done, 1, __ATOMIC_ACQ_REL))
		return;
	f = fopen(p->ra_path, "w");
	if (!f || fprintf(f, "%zu\n", p->ra_bytes >> 10) < 0 || fclose(f) != 0) {
		int e = errno;
		if (f)
			fclose(f);
		log_info("read-ahead window left at the kernel's default (%s: %s)", p->ra_path, strerror(e));
		return;
	}
	log_debug("read-ahead window %zu KiB (%s)", p->ra_bytes >> 10, p->ra_path);
}
