#!/bin/bash
# chart-selftest.sh — tests/bench/chart.sh on fixed input (part lint of
# tests/run-all.sh; a second or two). TAP. Only the drawing is checked
# here: the benchmark figures themselves stay out of make check.
#  1  tests/bench/chart-sample.tsv renders two SVG files that parse as XML
#     with an <svg> root
#  2  the figures chart names every figure and every peer of the sample;
#     one payloadfs-coloured bar per figure, the other peers grey
#  3  the targets chart names every target; met ones green, missed ones
#     red, for ">=" and "<=" targets alike (sample: 2 met, 1 missed)
#  4-6 bad input: a value that is not a number, an unknown row kind, no
#     bar and no target: exit 1, a message naming the problem, no SVG
set -u
cd "$(dirname "$0")/../.." || exit 1
CHART=tests/bench/chart.sh SAMPLE=tests/bench/chart-sample.tsv
T=$(mktemp -d "${TMPDIR:-/tmp}/chart-selftest.XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1)) failed=1
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'
	return 0
}
if ! command -v gnuplot >/dev/null; then
	notok "gnuplot is installed (packaging/install-deps.sh: gnuplot-nox)"
	echo "1..$n"
	exit 1
fi

# svginfo FILE — on stdout: the root tag, then every <text>, then the
# fill colours of the filled polygons (gnuplot's bars) with their counts
# ("FILL rgb(r,g,b) N").
svginfo() {
	/usr/bin/python3 - "$1" <<'PY'
import re, sys, collections
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print("ROOT", root.tag)
for el in root.iter("{http://www.w3.org/2000/svg}text"):
    print("TEXT", "".join(el.itertext()).strip())
fills = collections.Counter()
for el in root.iter("{http://www.w3.org/2000/svg}polygon"):
    fill = el.attrib.get("fill", "")
    if fill.startswith("rgb("):
        fills[re.sub(r"\s", "", fill)] += 1
for c, k in sorted(fills.items()):
    print("FILL", c, k)
PY
}

# 1 — the sample renders
if out=$("$CHART" "$SAMPLE" "$T/s" 2>&1) && fi=$(svginfo "$T/s-figures.svg" 2>&1) &&
	ti=$(svginfo "$T/s-targets.svg" 2>&1) &&
	grep -qx "ROOT {http://www.w3.org/2000/svg}svg" <<<"$fi" &&
	grep -qx "ROOT {http://www.w3.org/2000/svg}svg" <<<"$ti"; then
	ok "the sample renders two SVG files that parse as XML"
else
	notok "the sample renders two SVG files that parse as XML" "$out${fi:+$'\n'$fi}${ti:+$'\n'$ti}"
	fi="" ti=""
fi

# 2 — the figures chart
missing=""
while IFS=$'\t' read -r kind fig unit peer _; do
	[ "$kind" = bar ] || continue
	grep -qxF "TEXT $fig ($unit)" <<<"$fi" || missing="$missing [$fig ($unit)]"
	grep -qxF "TEXT $peer" <<<"$fi" || missing="$missing [$peer]"
done <"$SAMPLE"
nfig=$(awk -F'\t' '$1 == "bar" { f[$2] = 1 } END { n = 0; for (k in f) n++; print n }' "$SAMPLE")
ngrey=$(awk -F'\t' '$1 == "bar" && $4 !~ /^payloadfs/' "$SAMPLE" | wc -l)
blue=$(awk '$2 == "rgb(22,98,254)" { print $3 }' <<<"$fi")
grey=$(awk '$2 == "rgb(138,153,175)" { print $3 }' <<<"$fi")
if [ -z "$missing" ] && [ "${blue:-0}" = "$nfig" ] && [ "${grey:-0}" = "$ngrey" ]; then
	ok "figures: every figure and peer named, $nfig payloadfs bars, $ngrey grey"
else
	notok "figures: every figure and peer named, payloadfs bars coloured" \
		"missing:${missing:- none}; payloadfs bars ${blue:-0} (want $nfig), grey ${grey:-0} (want $ngrey)"
fi

# 3 — the targets chart
missing=""
while IFS=$'\t' read -r kind name _; do
	[ "$kind" = target ] || continue
	grep -qxF "TEXT $name" <<<"$ti" || missing="$missing [$name]"
done <"$SAMPLE"
green=$(awk '$2 == "rgb(40,167,69)" { print $3 }' <<<"$ti")
red=$(awk '$2 == "rgb(211,47,47)" { print $3 }' <<<"$ti")
if [ -z "$missing" ] && [ "${green:-0}" = 2 ] && [ "${red:-0}" = 1 ]; then
	ok "targets: every target named, 2 met (green), 1 missed (red)"
else
	notok "targets: every target named, 2 met (green), 1 missed (red)" \
		"missing:${missing:- none}; green ${green:-0}, red ${red:-0}"
fi

# 4-6 — bad input
bad() { # DESCRIPTION EXPECTED_MESSAGE — the TSV is on stdin
	local out rc
	cat >"$T/bad.tsv"
	rm -f "$T"/b-*.svg
	out=$("$CHART" "$T/bad.tsv" "$T/b" 2>&1)
	rc=$?
	if [ "$rc" -eq 1 ] && grep -qF "$2" <<<"$out" && ! ls "$T"/b-*.svg >/dev/null 2>&1; then
		ok "$1: exit 1, \"$2\", no SVG"
	else
		notok "$1: exit 1, \"$2\", no SVG" "exit $rc: $out; $(ls "$T")"
	fi
}
bad "a value that is not a number" "line 2: not a number: fast" \
	< <(printf 'bar\tcold read\tMB/s\text4\t812\nbar\tcold read\tMB/s\tpayloadfs\tfast\n')
bad "an unknown row kind" "line 2: unknown row kind: bars" \
	< <(printf 'bar\tcold read\tMB/s\text4\t812\nbars\tcold read\tMB/s\tpayloadfs\t1\n')
bad "no bar and no target" "no bar and no target row" \
	< <(printf '# nothing measured\nnote\tempty\n')

echo "1..$n"
exit "$failed"
