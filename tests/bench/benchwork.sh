# benchwork.sh — sourced by the single-figure bench scripts (follow.sh,
# libfollow.sh, libget.sh): a work directory, a payloadfs mount of a store
# in it, and the clean-up that unmounts it and waits only for the daemon
# the script started (by its PID) on exit, failure or Ctrl-C.
#
#   bench_work NAME DIR...   W=$(mktemp -d BENCH_DIR/pfs-bench$NAME.XXXXXX)
#                            with the subdirectories DIR... made in it
#   bench_mount [OPTS]       init nothing; mount $W/store on $W/mnt (log and
#                            pidfile in $W), sets pid
#   bench_unmount            unmount $W/mnt and wait for the daemon
#   bench_where              "<fs type> under $W; load: ..." for a header line
# Needs BUILD set (an absolute path).

pid=
W=

bench_wait_daemon() {
	if [ -n "$pid" ]; then
		for _ in $(seq 1000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
	fi
	pid=
}

bench_cleanup() {
	if [ -n "$W" ] && mountpoint -q "$W/mnt"; then
		fusermount3 -u "$W/mnt" || fusermount3 -uz "$W/mnt"
	fi
	bench_wait_daemon
	if [ -n "$W" ]; then rm -rf --one-file-system "$W"; fi
}

bench_work() {
	local name=$1 d
	shift
	W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/pfs-bench$name.XXXXXX")
	for d in "$@"; do mkdir "$W/$d"; done
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_mount() {
	"$BUILD/payloadfs" "$W/store" "$W/mnt" -o "logfile=$W/log,pidfile=$W/pid${1:+,$1}"
	pid=$(cat "$W/pid")
}

bench_unmount() {
	fusermount3 -u "$W/mnt"
	bench_wait_daemon
}

bench_where() {
	echo "$(df -T "$W" | awk 'NR == 2 { print $2 }') under $W; load: $(uptime | sed 's/.*load/load/')"
}
