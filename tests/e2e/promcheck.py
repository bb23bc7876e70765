#!/usr/bin/python3
"""promcheck.py — check a payloadfs `.metrics` scrape with the Prometheus
text-format parser of Debian's python3-prometheus-client.

  promcheck.py check METRICS STATS_JSON   parse METRICS; check the naming
      (payloadfs_ prefix, counters end in _total, HELP on every family,
      histograms with cumulative buckets ending in +Inf == _count), and
      that every figure of the .stats JSON has its metric with the same
      value where a value cannot move between the two reads (budgets).
      Prints "OK" or the problems, one a line (exit 1).
  promcheck.py values SAMPLE... -- METRICS...   print each SAMPLE's value
      (name, or name{label="value"}) in each METRICS file: one line per
      file, the values space-separated.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

# .stats key -> the sample that carries it in .metrics (docs/metrics.md)
STATS_TO_METRIC = {
    "uptime_s": "payloadfs_uptime_seconds",
    "cache.hits": "payloadfs_cache_hits_total",
    "cache.misses": "payloadfs_cache_misses_total",
    "cache.evictions": "payloadfs_cache_evictions_total",
    "cache.bytes": "payloadfs_cache_bytes",
    "cache.entries": "payloadfs_cache_entries",
    "cache.budget": "payloadfs_cache_budget_bytes",
    "cache.waits": "payloadfs_cache_waits_total",
    "io.batches": "payloadfs_read_batches_total",
    "io.fragments_read": "payloadfs_fragments_read_total",
    "io.bytes_read": "payloadfs_fragment_read_bytes_total",
    "io.decoded_in_parallel": "payloadfs_fragments_decoded_in_parallel_total",
    "io.read_ahead": "payloadfs_read_ahead_fragments_total",
    "io.read_ahead_skipped": "payloadfs_read_ahead_skipped_total",
    "io.damaged": "payloadfs_fragments_damaged_total",
    "io.inflight_bytes": "payloadfs_inflight_bytes",
    "io.inflight_read_ahead_bytes": "payloadfs_inflight_read_ahead_bytes",
    "io.inflight_budget": "payloadfs_inflight_budget_bytes",
    "io.fragments_written": "payloadfs_fragments_written_total",
    "io.fragments_deleted": "payloadfs_fragments_deleted_total",
    "io.commits": "payloadfs_commits_total",
    "io.index_txns": "payloadfs_index_transactions_total",
    "io.syncs": "payloadfs_syncs_total",
    "io.sync_failures": "payloadfs_sync_failures_total",
    "io.deletes_pending": "payloadfs_deletes_pending",
    "nodes.file_versions": 'payloadfs_kernel_nodes{kind="file_version"}',
    "nodes.views": 'payloadfs_kernel_nodes{kind="view"}',
    "nodes.other": 'payloadfs_kernel_nodes{kind="other"}',
    "nodes.objects": "payloadfs_kernel_objects",
    "nodes.names": "payloadfs_kernel_names",
    "nodes.sealed": "payloadfs_write_opens_sealed_total",
    "nodes.notify_waits": "payloadfs_close_notify_waits_total",
    "views.resolves": "payloadfs_view_resolves_total",
    "views.row_scans": "payloadfs_view_row_scans_total",
    "views.row_index_hits": "payloadfs_view_row_index_hits_total",
    "ingest.staged_raw": "payloadfs_fragments_staged_raw_total",
    "ingest.recompressed": "payloadfs_fragments_recompressed_total",
    "ingest.recompress_skipped": "payloadfs_recompress_skipped_total",
    "ingest.staged_pending": "payloadfs_fragments_staged_pending",
    "memory.rss": "payloadfs_resident_memory_bytes",
    "memory.peak_rss": "payloadfs_resident_memory_peak_bytes",
}
# figures that cannot change between the two reads of an idle mount
STABLE = {"cache.budget", "io.inflight_budget", "io.commits", "io.fragments_written",
          "cache.hits", "cache.misses", "io.fragments_read"}
HISTOGRAMS = ("payloadfs_read_latency_seconds", "payloadfs_commit_latency_seconds")


def samples(text):
    """{'name{k="v"}': value} of every sample, and the families."""
    fams = list(text_string_to_metric_families(text))
    out = {}
    for f in fams:
        for s in f.samples:
            key = s.name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(s.labels.items())) + "}"
                            if s.labels else "")
            if key in out:
                raise SystemExit("duplicate sample " + key)
            out[key] = s.value
    return fams, out


def flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flatten(v, prefix + k + ".")
        else:
            yield prefix + k, v


def check(metrics_path, stats_path):
    text = open(metrics_path).read()
    probs = []
    fams, vals = samples(text)
    helps = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP ")}
    for f in fams:
        if not f.name.startswith("payloadfs_"):
            probs.append("%s: no payloadfs_ prefix" % f.name)
        if not f.documentation:
            probs.append("%s: no HELP" % f.name)
        if f.type == "counter":
            for s in f.samples:
                if not s.name.endswith("_total"):
                    probs.append("%s: a counter sample without _total" % s.name)
            if f.name + "_total" not in helps:
                probs.append("%s: HELP/TYPE not under the _total name" % f.name)
        if f.type not in ("counter", "gauge", "histogram"):
            probs.append("%s: type %s" % (f.name, f.type))
        if f.type == "gauge" and f.name.endswith("_total"):
            probs.append("%s: a gauge named _total" % f.name)
    types = {f.name: f.type for f in fams}
    for h in HISTOGRAMS:
        if types.get(h) != "histogram":
            probs.append("%s: missing or not a histogram" % h)
            continue
        fam = [f for f in fams if f.name == h][0]
        buckets = [(float(s.labels["le"]), s.value) for s in fam.samples if s.name == h + "_bucket"]
        les = [b[0] for b in buckets]
        if les != sorted(les) or les[-1] != float("inf") or len(les) < 10:
            probs.append("%s: buckets not increasing up to +Inf: %s" % (h, les))
        if any(b[1] > c[1] for b, c in zip(buckets, buckets[1:])):
            probs.append("%s: bucket counts not cumulative" % h)
        if buckets[-1][1] != vals.get(h + "_count"):
            probs.append("%s: +Inf bucket != _count" % h)
        if h + "_sum" not in vals:
            probs.append("%s: no _sum" % h)
    stats = dict(flatten(json.load(open(stats_path))))
    for k, v in stats.items():
        m = STATS_TO_METRIC.get(k)
        if m is None:
            probs.append(".stats %s: no metric for it" % k)
        elif m not in vals:
            probs.append(".stats %s: metric %s missing" % (k, m))
        elif k in STABLE and vals[m] != v:
            probs.append(".stats %s = %s but %s = %s" % (k, v, m, vals[m]))
    print("\n".join(probs) if probs else "OK")
    return 1 if probs else 0


def main():
    if sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "values":
        sep = sys.argv.index("--")
        names, files = sys.argv[2:sep], sys.argv[sep + 1:]
        for path in files:
            _, vals = samples(open(path).read())
            print(" ".join(str(int(vals[n])) if vals[n] == int(vals[n]) else repr(vals[n])
                           for n in names))
        return 0
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
