#!/bin/bash
# chart.sh TSV PREFIX — draw `make bench`'s results (BUILD/bench/chart.tsv,
# written by tests/bench/run.sh) as two SVG files with gnuplot:
#
#   PREFIX-figures.svg  one panel per figure: a bar per peer (payloadfs in
#                       its own colour), the value over each bar
#   PREFIX-targets.svg  one bar per target: the measured figure over its
#                       target, turned so that 1 is the target and more is
#                       better (measured/goal for "≥", goal/measured for
#                       "≤"); green when met, red when missed
#
# TSV rows (tab-separated; lines starting with # are comments):
#   bar     FIGURE  UNIT      PEER  VALUE
#   target  NAME    MEASURED  OP    GOAL  UNIT     (OP: >= or <=)
#   note    TEXT                                   (the charts' subtitle)
# Bars of one FIGURE are drawn in the order they come. A row that is not
# one of these, a value that is not a number, or a TSV with no bar and no
# target is an error (exit 1, a message on stderr, no SVG written).
# Needs gnuplot (Debian: gnuplot-nox).
set -eu -o pipefail
export LC_ALL=C

[ $# -eq 2 ] || { echo "usage: chart.sh TSV PREFIX" >&2; exit 2; }
TSV=$1 PREFIX=$2
die() { echo "chart: $*" >&2; exit 1; }
[ -r "$TSV" ] || die "$TSV: cannot read"
command -v gnuplot >/dev/null || die "gnuplot not found (packaging/install-deps.sh installs gnuplot-nox)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pfs-chart.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# Check every row and split the bars into one data file per figure
# (peer, value, colour) and the targets into one file (name, score,
# colour, label); gnuplot reads them tab-separated.
awk -F'\t' -v tmp="$TMP" '
function num(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ }
function bad(why) { printf "chart: %s line %d: %s\n", FILENAME, NR, why > "/dev/stderr"; err = 1; exit 1 }
/^#/ || /^[[:space:]]*$/ { next }
$1 == "note" { note = $2; next }
$1 == "bar" {
	if (NF != 5) bad("a bar row has 5 fields: bar FIGURE UNIT PEER VALUE")
	if (!num($5)) bad("not a number: " $5)
	if (!($2 in fig)) { fig[$2] = ++nfig; unit[nfig] = $3; title[nfig] = $2 }
	i = fig[$2]
	colour = ($4 ~ /^payloadfs/) ? 1467134 : 9083311   # #1662fe, #8a99af
	printf "%s\t%s\t%d\n", $4, $5, colour > (tmp "/fig" i ".dat")
	next
}
$1 == "target" {
	if (NF != 6) bad("a target row has 6 fields: target NAME MEASURED OP GOAL UNIT")
	if (!num($3) || !num($5)) bad("not a number: " $3 " or " $5)
	if ($4 != ">=" && $4 != "<=") bad("OP is >= or <=, not " $4)
	if ($3 + 0 <= 0 || $5 + 0 <= 0) bad("MEASURED and GOAL must be above 0")
	score = ($4 == ">=") ? $3 / $5 : $5 / $3
	met = ($4 == ">=") ? ($3 + 0 >= $5 + 0) : ($3 + 0 <= $5 + 0)
	op = ($4 == ">=") ? "≥" : "≤"
	u = ($6 == "x") ? "x" : " " $6
	printf "%s\t%.6g\t%d\t%s%s (target %s %s%s)\n", $2, score, met ? 2664261 : 13840175, $3, u, op, $5, u > (tmp "/targets.dat")
	ntarget++
	if (score > maxscore) maxscore = score
	next
}
{ bad("unknown row kind: " $1) }
END {
	if (err) exit 1
	if (nfig == 0 && ntarget == 0) { printf "chart: %s: no bar and no target row\n", FILENAME > "/dev/stderr"; exit 1 }
	printf "%d\n%d\n%.6g\n", nfig, ntarget, maxscore > (tmp "/counts")
	for (i = 1; i <= nfig; i++) printf "%s (%s)\n", title[i], unit[i] > (tmp "/titles")
	printf "%s\n", note > (tmp "/note")
}' "$TSV" || exit 1

{ read -r NFIG; read -r NTARGET; read -r MAXSCORE; } <"$TMP/counts"
NOTE=$(cat "$TMP/note")
# gnuplot strings in double quotes: escape backslashes and quotes
q() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }

COMMON='set datafile separator "\t"
set style fill solid 0.85 border rgb "#333333"
set grid ytics lc rgb "#dddddd"
unset key
set border 3
set tics nomirror'

rm -f "$PREFIX-figures.svg" "$PREFIX-targets.svg"
if [ "$NFIG" -gt 0 ]; then
	cols=$((NFIG < 3 ? NFIG : 3))
	rows=$(((NFIG + cols - 1) / cols))
	{
		echo "set terminal svg size $((cols * 400)),$((rows * 300 + 60)) font 'sans,11' noenhanced background rgb 'white'"
		echo "set output $(q "$PREFIX-figures.svg")"
		echo "$COMMON"
		echo "set multiplot layout $rows,$cols title $(q "payloadfs against its peers")${NOTE:+ . \"\\n\" . $(q "$NOTE")}"
		echo "set boxwidth 0.6"
		echo "set yrange [0:*]"
		echo "set offsets 0.5, 0.5, graph 0.12, 0"
		echo "set xtics rotate by -25"
		i=1
		while IFS= read -r t; do
			echo "set title $(q "$t")"
			echo "plot $(q "$TMP/fig$i.dat") using 0:2:3:xtic(1) title $(q "$t") with boxes lc rgb variable, '' using 0:2:(sprintf(\$2 >= 100 ? '%.0f' : '%.3g', \$2)) title 'values' with labels offset 0,0.6 font 'sans,9'"
			i=$((i + 1))
		done <"$TMP/titles"
		echo "unset multiplot"
	} >"$TMP/figures.gp"
	gnuplot "$TMP/figures.gp" || die "gnuplot failed on the figures"
fi

if [ "$NTARGET" -gt 0 ]; then
	{
		echo "set terminal svg size 1100,$((NTARGET * 34 + 130)) font 'sans,11' noenhanced background rgb 'white'"
		echo "set output $(q "$PREFIX-targets.svg")"
		echo "$COMMON"
		echo "set grid xtics noytics lc rgb '#dddddd'"
		echo "set multiplot title $(q "measured / target (1 = the target; right of the line: met)")${NOTE:+ . \"\\n\" . $(q "$NOTE")}"
		echo "set lmargin 62"
		echo "set tmargin 5"
		echo "set xrange [0:$(awk -v m="$MAXSCORE" 'BEGIN { print (m * 1.45 > 2) ? m * 1.45 : 2 }')]"
		echo "set yrange [-$NTARGET + 0.4:0.6]"
		echo "set ytics scale 0"
		echo "set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 dt 2 lc rgb '#333333'"
		echo "plot $(q "$TMP/targets.dat") using (\$2/2):(-\$0):(\$2/2):(0.35):3:ytic(1) title 'measured / target' with boxxyerror lc rgb variable, '' using 2:(-\$0):4 title 'figures' with labels left offset 0.8,0 font 'sans,9'"
		echo "unset multiplot"
	} >"$TMP/targets.gp"
	gnuplot "$TMP/targets.gp" || die "gnuplot failed on the targets"
fi
for f in "$PREFIX-figures.svg" "$PREFIX-targets.svg"; do
	[ -f "$f" ] && echo "chart: written $f"
done
exit 0
