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

/* Every figure .stats and .metrics show, read once per scrape. */
struct figures {
	struct store_stats ss;
	struct fcache_stats cs;
	struct fn_stats ns;
	uint64_t rss, hwm;
};

static void figures_read(struct pfs *p, struct figures *g)
{
	store_get_stats(p->st, &g->ss);
	store_get_cache_stats(p->st, &g->cs);
	fn_get_stats(&g->ns);
	memory_use(&g->rss, &g->hwm);
}

int pfs_stats_json(struct pfs *p, char **out, size_t *len)
{
	struct figures g;
	FILE *f;

	*out = NULL;
	*len = 0;
	figures_read(p, &g);
	if (!(f = open_memstream(out, len)))
		return -ENOMEM;
	fprintf(f, "{\n  \"uptime_s\": %.3f,\n",
		(double)(store_now_ns() - p->started_ns) / 1e9);
	fprintf(f, "  \"cache\": {\n"
		"    \"hits\": %" PRIu64 ",\n    \"misses\": %" PRIu64 ",\n"
		"    \"evictions\": %" PRIu64 ",\n    \"bytes\": %" PRIu64 ",\n"
		"    \"entries\": %" PRIu64 ",\n    \"budget\": %" PRIu64 ",\n"
		"    \"waits\": %" PRIu64 "\n  },\n",
		g.cs.hits, g.cs.misses, g.cs.evictions, g.cs.bytes, g.cs.entries, g.cs.budget, g.cs.waits);
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
		g.cs.batches, g.cs.fetched, g.cs.fetched_bytes, g.cs.parallel, g.cs.prefetched,
		g.cs.prefetch_skipped, g.cs.damaged, g.cs.inflight_fg, g.cs.inflight_bg, g.cs.inflight_budget,
		g.ss.frags_written, g.ss.frags_deleted, g.ss.commits, g.ss.index_txns, g.ss.syncs, g.ss.sync_failures,
		g.ss.deletes_pending);
	fprintf(f, "  \"nodes\": {\n"
		"    \"file_versions\": %" PRIu64 ",\n    \"views\": %" PRIu64 ",\n"
		"    \"other\": %" PRIu64 ",\n    \"objects\": %" PRIu64 ",\n"
		"    \"names\": %" PRIu64 ",\n    \"sealed\": %" PRIu64 ",\n"
		"    \"notify_waits\": %" PRIu64 "\n  },\n",
		g.ns.file_nodes, g.ns.view_nodes, g.ns.real_nodes, g.ns.objects, g.ns.names, g.ns.sealed,
		notify_waits());
	fprintf(f, "  \"views\": {\n    \"resolves\": %" PRIu64 ",\n    \"row_scans\": %" PRIu64
		",\n    \"row_index_hits\": %" PRIu64 "\n  },\n",
		g.ss.view_resolves, g.ss.row_scans, g.ss.rowidx_hits);
	fprintf(f, "  \"ingest\": {\n    \"staged_raw\": %" PRIu64 ",\n    \"recompressed\": %" PRIu64
		",\n    \"recompress_skipped\": %" PRIu64 ",\n    \"staged_pending\": %" PRIu64 "\n  },\n",
		g.ss.frags_staged_raw, g.ss.frags_recompressed, g.ss.recompress_skipped, g.ss.staged_pending);
	fprintf(f, "  \"memory\": {\n    \"rss\": %" PRIu64 ",\n    \"peak_rss\": %" PRIu64 "\n  }\n}\n",
		g.rss, g.hwm);
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

/* ---- .metrics: the Prometheus text exposition format (0.0.4) ----
 * Every figure of .stats, under the usual names: counters end in _total,
 * units are in the name (_bytes, _seconds), and the latency histograms of
 * reads and commits. docs/metrics.md lists each one; keep it in step. */

static void metric(FILE *f, const char *type, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	metric(f, "counter", name, help, v);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	metric(f, "gauge", name, help, v);
}

static void histogram(FILE *f, const char *name, const char *help, const struct hist *h)
{
	struct hist_snap s;

	hist_read(h, &s);
	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (unsigned i = 0; i < HIST_NBOUNDS; i++)
		fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, (double)hist_bound_ns[i] / 1e9, s.cum[i]);
	fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9f\n%s_count %" PRIu64 "\n",
		name, s.count, name, (double)s.sum_ns / 1e9, name, s.count);
}

int pfs_metrics_text(struct pfs *p, char **out, size_t *len)
{
	struct figures g;
	FILE *f;

	*out = NULL;
	*len = 0;
	figures_read(p, &g);
	if (!(f = open_memstream(out, len)))
		return -ENOMEM;
	fprintf(f, "# HELP payloadfs_uptime_seconds Seconds since the daemon started serving.\n"
		"# TYPE payloadfs_uptime_seconds gauge\npayloadfs_uptime_seconds %.3f\n",
		(double)(store_now_ns() - p->started_ns) / 1e9);
	counter(f, "payloadfs_cache_hits_total", "Fragment lookups served from the fragment cache.", g.cs.hits);
	counter(f, "payloadfs_cache_misses_total", "Fragment lookups that had to read the fragment.", g.cs.misses);
	counter(f, "payloadfs_cache_evictions_total", "Fragments evicted from the cache (LRU, byte budget).",
		g.cs.evictions);
	gauge(f, "payloadfs_cache_bytes", "Decompressed bytes in the fragment cache now.", g.cs.bytes);
	gauge(f, "payloadfs_cache_entries", "Fragments in the cache now.", g.cs.entries);
	gauge(f, "payloadfs_cache_budget_bytes", "The cache's byte budget (-o cache_size).", g.cs.budget);
	counter(f, "payloadfs_cache_waits_total", "Fetches that waited for another reader's load of the same "
		"fragment.", g.cs.waits);
	counter(f, "payloadfs_read_batches_total", "Batched backend reads (one I/O submission each).", g.cs.batches);
	counter(f, "payloadfs_fragments_read_total", "Fragments read from the backend.", g.cs.fetched);
	counter(f, "payloadfs_fragment_read_bytes_total", "Stored (compressed) bytes read from the backend.",
		g.cs.fetched_bytes);
	counter(f, "payloadfs_fragments_decoded_in_parallel_total", "Fragments decoded on worker threads.",
		g.cs.parallel);
	counter(f, "payloadfs_read_ahead_fragments_total", "Fragments read ahead in the background.",
		g.cs.prefetched);
	counter(f, "payloadfs_read_ahead_skipped_total", "Read-aheads skipped: in-flight budget full.",
		g.cs.prefetch_skipped);
	counter(f, "payloadfs_fragments_damaged_total", "Fragments that failed verification (EIO).", g.cs.damaged);
	gauge(f, "payloadfs_inflight_bytes", "Bytes of foreground reads in flight now.", g.cs.inflight_fg);
	gauge(f, "payloadfs_inflight_read_ahead_bytes", "Bytes of read-ahead in flight now.", g.cs.inflight_bg);
	gauge(f, "payloadfs_inflight_budget_bytes", "The in-flight byte budget (each of foreground, read-ahead).",
		g.cs.inflight_budget);
	counter(f, "payloadfs_fragments_written_total", "Fragment images written.", g.ss.frags_written);
	counter(f, "payloadfs_fragments_deleted_total", "Fragment images deleted.", g.ss.frags_deleted);
	counter(f, "payloadfs_commits_total", "Committed transactions (new versions, namespace changes).",
		g.ss.commits);
	counter(f, "payloadfs_index_transactions_total", "Index write transactions that committed a change "
		"(a commit round of several closers is one).", g.ss.index_txns);
	counter(f, "payloadfs_syncs_total", "Index flushes (durability points).", g.ss.syncs);
	counter(f, "payloadfs_sync_failures_total", "Index flushes that failed.", g.ss.sync_failures);
	gauge(f, "payloadfs_deletes_pending", "Released fragment images not deleted yet.", g.ss.deletes_pending);
	fprintf(f, "# HELP payloadfs_kernel_nodes Node ids the kernel holds now, by kind.\n"
		"# TYPE payloadfs_kernel_nodes gauge\n"
		"payloadfs_kernel_nodes{kind=\"file_version\"} %" PRIu64 "\n"
		"payloadfs_kernel_nodes{kind=\"view\"} %" PRIu64 "\n"
		"payloadfs_kernel_nodes{kind=\"other\"} %" PRIu64 "\n",
		g.ns.file_nodes, g.ns.view_nodes, g.ns.real_nodes);
	gauge(f, "payloadfs_kernel_objects", "Objects the kernel holds nodes of now.", g.ns.objects);
	gauge(f, "payloadfs_kernel_names", "Names the kernel may cache now (invalidated on commit).", g.ns.names);
	counter(f, "payloadfs_write_opens_sealed_total", "Write opens moved to a fresh node (ESTALE).", g.ns.sealed);
	counter(f, "payloadfs_close_notify_waits_total", "Closes that waited for the kernel to drop cached "
		"attributes of the committed file.", notify_waits());
	counter(f, "payloadfs_view_resolves_total", "Row views resolved to a byte range.", g.ss.view_resolves);
	counter(f, "payloadfs_fragments_staged_raw_total", "Fragment images written raw because the encoders "
		"were behind (compressed later in the background).", g.ss.frags_staged_raw);
	counter(f, "payloadfs_fragments_recompressed_total", "Staged raw images swapped for compressed ones "
		"by the background pass.", g.ss.frags_recompressed);
	counter(f, "payloadfs_recompress_skipped_total", "Staged raw images left raw: shared by a copy or a "
		"snapshot.", g.ss.recompress_skipped);
	gauge(f, "payloadfs_fragments_staged_pending", "Staged raw images the background pass has still to "
		"compress (as of its last scan).", g.ss.staged_pending);
	counter(f, "payloadfs_view_row_scans_total", "Fragments decoded to find where a row starts.", g.ss.row_scans);
	counter(f, "payloadfs_view_row_index_hits_total", "Row starts found in a fragment's row index "
		"(nothing decoded).", g.ss.rowidx_hits);
	gauge(f, "payloadfs_resident_memory_bytes", "The daemon's resident set size (VmRSS).", g.rss);
	gauge(f, "payloadfs_resident_memory_peak_bytes", "The daemon's peak resident set size (VmHWM).", g.hwm);
	histogram(f, "payloadfs_read_latency_seconds", "Time the daemon took to serve a READ of an object or "
		"view (cache lookups, fetch and decode of missing fragments).", &p->read_lat);
	histogram(f, "payloadfs_commit_latency_seconds", "Time of a commit at close(2) or fsync(2) that "
		"succeeded (cut, compress, write, index transaction).", &p->commit_lat);
	if (fclose(f)) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}
