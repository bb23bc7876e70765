#!/usr/bin/env bats
# completion.bats — packaging/bash-completion/payloadctl, sourced in bash
# with Debian's bash-completion and called as bash calls it (COMP_WORDS,
# COMP_CWORD): every subcommand of payloadctl completes, and every option
# each subcommand accepts. What the completion should offer is taken from
# the C sources (the dispatch table of tools/payloadctl.c, the option
# tables and option strings of tools/ctl_CMD.c), not from the help text the
# completion itself reads, so a subcommand or option missing from the help
# fails here. The built payloadctl is first in PATH.

load helpers

ROOT=$BATS_TEST_DIRNAME/../..

setup() {
	if rados_mode; then
		skip "no store involved: runs once, in the e2e part"
	fi
	[ -r /usr/share/bash-completion/bash_completion ]
}

# complete_lines — read command lines from stdin, one a line (words split
# by spaces; a line ending in a space completes an empty word); for each,
# run the completion in one bash (bash-completion and the file sourced
# once) and print COMPREPLY on one line, space-separated.
complete_lines() {
	PATH=$(dirname "$(readlink -f "$PCTL")"):$PATH bash -c '
source /usr/share/bash-completion/bash_completion || exit 90
source "$0" || exit 91
while IFS= read -r line; do
	read -ra COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$line
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_payloadctl payloadctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 92
	echo "${COMPREPLY[*]}"
done' "$ROOT/packaging/bash-completion/payloadctl"
}

# complete_words WORD... — the completion of one command line (the last
# word is the one completed), one word a line.
complete_words() {
	local line="$*"
	[ -n "${!#}" ] || line+=" "
	complete_lines <<<"$line" | tr ' ' '\n' | grep -v '^$'
}

# The subcommands dispatched by tools/payloadctl.c.
source_commands() {
	sed -nE 's/^\t\{ "([a-z]+)", ctl_[a-z_]+ \},$/\1/p' "$ROOT/tools/payloadctl.c"
}

# The options tools/ctl_CMD.c accepts: "--long" literals, ctl_opt tables
# ({ 'x', "long", ...}) and ctl_getopt's flag letters.
source_options() {
	local f=$ROOT/tools/ctl_$1.c
	[ -f "$f" ] || return 1
	{
		grep -oE '"--[a-z][a-z-]*"' "$f" | tr -d '"'
		sed -nE "s/.*\\{ *'([a-zA-Z])' *, *\"([a-z-]+)\".*/-\\1\\n--\\2/p" "$f"
		sed -nE 's/.*\{ *0 *, *"([a-z-]+)".*/--\1/p' "$f"
		sed -nE 's/.*ctl_getopt\("[a-z]+", [^,]+, [^,]+, "([a-z]+)".*/\1/p' "$f" | grep -o . | sed 's/^/-/'
	} | sort -u
}

@test "every subcommand of payloadctl completes, and only those matching the prefix" {
	local cmds c
	cmds=$(source_commands)
	[ "$(wc -l <<<"$cmds")" -ge 11 ]
	run complete_words payloadctl ""
	[ "$status" -eq 0 ]
	for c in $cmds help; do
		grep -qx "$c" <<<"$output" || { echo "# $c is not completed" >&2; return 1; }
	done
	# nothing else: what is completed is a real subcommand
	[ "$(sort <<<"$output")" = "$(printf '%s\n' $cmds help | sort)" ]
	run complete_words payloadctl sn
	[ "$output" = snapshot ]
	run complete_words payloadctl --debug st
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "stat stats " ]
	run complete_words payloadctl --d
	[ "$output" = --debug ]
}

@test "every option of every subcommand completes; each completed option is one the tool accepts" {
	local c o want got bad=0 cmds
	cmds=($(source_commands))
	mapfile -t all < <(printf 'payloadctl %s -\n' "${cmds[@]}" | complete_lines)
	[ "${#all[@]}" -eq "${#cmds[@]}" ]
	for i in "${!cmds[@]}"; do
		c=${cmds[i]}
		[ -f "$ROOT/tools/ctl_$c.c" ] || { echo "# no tools/ctl_$c.c" >&2; return 1; }
		want=$(source_options "$c" | grep -vx -- '--' || true)
		got=$(tr ' ' '\n' <<<"${all[i]}")
		for o in $want; do
			[ "$o" = -h ] && continue
			grep -qx -- "$o" <<<"$got" || { echo "# payloadctl $c $o: not completed" >&2; bad=1; }
		done
		for o in $got; do
			# an option the tool does not know is reported as unknown
			if "$PCTL" "$c" "$o" </dev/null 2>&1 >/dev/null | grep -q "unknown option"; then
				echo "# payloadctl $c $o: completed, but unknown to the tool" >&2
				bad=1
			fi
		done
	done
	[ "$bad" -eq 0 ]
	# the check above can see an unknown option
	run "$PCTL" gc --no-such-option
	[[ $output == *"unknown option"* ]]
}

@test "option values and operands: --format values, paths" {
	run complete_words payloadctl import --format ""
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "fixed: lines " ]
	mkdir -p "$BATS_TEST_TMPDIR/compl/store1"
	cd "$BATS_TEST_TMPDIR/compl"
	run complete_words payloadctl ls sto
	[ "$output" = store1 ]
	run complete_words payloadctl stats --prometheus st
	[ "$output" = store1 ]
}
