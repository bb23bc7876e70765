#!/usr/bin/env bats
# metrics.bats — the Prometheus text format of the daemon: MNT/.metrics
# and `payloadctl stats --prometheus MNT` parse with the text-format parser
# of Debian's python3-prometheus-client (promcheck.py: naming, HELP,
# histograms, every .stats figure present), and the values move: a read
# raises the read counters and the read-latency histogram, a commit the
# commit counter and the commit-latency histogram.

load helpers

setup() {
	pfs_init
	/usr/bin/python3 -c 'import prometheus_client.parser'
}
teardown() { pfs_teardown; }

prom() { /usr/bin/python3 "$E2E/promcheck.py" "$@"; }

@test ".metrics parses, follows the naming rules and has every .stats figure" {
	mount_pfs
	gen_lines "$MNT/a.txt" 2000
	cat "$MNT/.stats" >"$TMP/stats.json"
	cat "$MNT/.metrics" >"$TMP/m.prom"
	run prom check "$TMP/m.prom" "$TMP/stats.json"
	show_output
	[ "$status" -eq 0 ]
	[ "$output" = OK ]
	# the size stat(2) reports is the length of the text (cat, tools)
	[ "$(stat -c %s "$MNT/.metrics")" -gt 1000 ]
	# hidden like .stats, read-only, no xattrs
	run ls -A "$MNT"
	[[ $output != *.metrics* ]]
	expect_errno EACCES write "$MNT/.metrics" x
	run rm "$MNT/.metrics"
	[ "$status" -ne 0 ]
	[ -f "$MNT/.metrics" ]
}

@test "payloadctl stats --prometheus MNT prints the scrape; plain stats the JSON; errors are clear" {
	mount_pfs
	run --separate-stderr "$PCTL" stats --prometheus "$MNT"
	[ "$status" -eq 0 ]
	echo "$output" >"$TMP/m.prom"
	"$PCTL" stats "$MNT" >"$TMP/stats.json"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/stats.json"
	run prom check "$TMP/m.prom" "$TMP/stats.json"
	show_output
	[ "$output" = OK ]
	run --separate-stderr "$PCTL" stats --prometheus "$TMP"
	[ "$status" -eq 1 ]
	[ "$stderr" = "payloadctl: $TMP: not a payloadfs mount point (no .metrics)" ]
	run --separate-stderr "$PCTL" stats
	[ "$status" -eq 2 ]
	[[ $stderr == "payloadctl: stats: missing MNT"* ]]
}

@test "a read moves the read counters and the read-latency histogram; a commit the commit histogram" {
	mount_pfs direct_io
	gen_lines "$TWIN/a.txt" 50000
	cp "$TWIN/a.txt" "$MNT/a.txt"
	cat "$MNT/.metrics" >"$TMP/m0.prom"
	cmp "$MNT/a.txt" "$TWIN/a.txt"
	cat "$MNT/.metrics" >"$TMP/m1.prom"
	echo "one more" >>"$MNT/a.txt"
	cat "$MNT/.metrics" >"$TMP/m2.prom"
	local m0 m1 m2
	# reads, read-latency <= 10 s, its sum, commit-latency count, commits,
	# cache misses, cache hits: one line per scrape
	{ read -ra m0; read -ra m1; read -ra m2; } < <(prom values \
		payloadfs_read_latency_seconds_count 'payloadfs_read_latency_seconds_bucket{le="10"}' \
		payloadfs_read_latency_seconds_sum payloadfs_commit_latency_seconds_count \
		payloadfs_commits_total payloadfs_cache_misses_total payloadfs_cache_hits_total \
		-- "$TMP/m0.prom" "$TMP/m1.prom" "$TMP/m2.prom")
	echo "# before the read: ${m0[*]}; after it: ${m1[*]}; after the append: ${m2[*]}" >&3
	[ "${#m2[@]}" -eq 7 ]
	[ "${m0[3]}" -ge 1 ]                  # cp's close committed a.txt
	[ "${m1[0]}" -gt "${m0[0]}" ]         # cmp's reads reached the daemon (direct_io)
	[ "${m1[1]}" -gt "${m0[1]}" ]         # ... and landed in a bucket
	[ "${m1[2]}" != "${m0[2]}" ]          # ... and took some time
	[ "${m1[3]}" -eq "${m0[3]}" ]         # reading commits nothing
	[ "${m2[3]}" -eq $((m1[3] + 1)) ]     # the append's close: one commit
	[ "${m2[4]}" -gt "${m1[4]}" ]         # ... counted in payloadfs_commits_total
	# the fragment lookups behind the read: misses or hits moved
	[ $((m1[5] + m1[6])) -gt $((m0[5] + m0[6])) ]
}
