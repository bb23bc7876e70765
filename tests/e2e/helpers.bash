# helpers.bash — shared set-up for the payloadfs end-to-end tests.
#
# Each test gets its own temporary directory $TMP holding the store
# ($STORE), the mount point ($MNT), an ext4 twin directory ($TWIN) that
# serves as the oracle, and the daemon's log and pidfile. Readiness needs no
# sleeps: the daemon daemonizes only once the mount is live. teardown always
# unmounts, waits for the daemon to exit, prints its log when the test failed
# and removes $TMP. Only PIDs this file started are ever signalled.

bats_require_minimum_version 1.5.0

PAYLOADFS_BUILD=${PAYLOADFS_BUILD:-$BATS_TEST_DIRNAME/../../build}
# Fault-point tests count calls (frag_write:5, lmdb_commit:3): daemons do
# not stage raw unless a test asks (PAYLOADFS_STAGE_RAW=always, ingest.bats),
# so no background swap (index/recompress.c) takes a call in between.
export PAYLOADFS_STAGE_RAW=${PAYLOADFS_STAGE_RAW:-0}
PFS=$PAYLOADFS_BUILD/payloadfs
PCTL=$PAYLOADFS_BUILD/payloadctl
E2E=$BATS_TEST_DIRNAME

# Debian's python3 (install-deps.sh installs it) starts fastest; a shim
# earlier in PATH (pyenv) can cost most of a second per call.
# $PY is for background jobs (`"$PY" ... &`), where $! must be python's PID.
if [ -x /usr/bin/python3 ]; then
	PY=/usr/bin/python3
	python3() { /usr/bin/python3 "$@"; }
else
	PY=python3
fi

# ---- set-up and tear-down -------------------------------------------------

# Make $TMP, $STORE (empty), $MNT and $TWIN. Called from each file's setup.
pfs_init() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/pfs-e2e.XXXXXX")
	STORE=$TMP/store
	MNT=$TMP/mnt
	TWIN=$TMP/twin
	LOG=$TMP/daemon.log
	PIDFILE=$TMP/daemon.pid
	mkdir "$STORE" "$MNT" "$TWIN"
	BG_PIDS=()
	EXTRA_MOUNTS=()
	SAN_ENV=(env
		"ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$TMP/sanitizer"
		"UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$TMP/sanitizer"
		"TSAN_OPTIONS=${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$TMP/sanitizer")
	DAEMON_PID=
	E2E_NS=
	if rados_mode; then
		rados_store_init "$STORE" || return 1
	fi
}

# ---- RADOS mode -----------------------------------------------------------
#
# PFS_E2E_RADOS=1 runs a file's tests against a RADOS writer store: pfs_init
# makes $STORE a writer store (payloadctl init --rados) of a fresh namespace
# of the run's cluster (PFS_CEPH_CONF, PFS_RADOS_POOL: tests/run-all.sh
# starts one; by hand, tests/rados/with-cluster.sh), and pfs_teardown removes
# that namespace's objects once the daemon is gone. Tests that look at
# STORE/fragments, or need a local store's layout, say so with local_only.

rados_mode() { [ "${PFS_E2E_RADOS:-0}" = 1 ]; }

# rados_store_init DIR — DIR (empty) becomes a writer store of a new
# namespace ($E2E_NS).
rados_store_init() {
	if [ -z "${PFS_CEPH_CONF:-}" ] || [ -z "${PFS_RADOS_POOL:-}" ]; then
		echo "# PFS_E2E_RADOS=1 needs a cluster: PFS_CEPH_CONF and PFS_RADOS_POOL" \
			"(tests/rados/with-cluster.sh, or tests/run-all.sh)" >&2
		return 1
	fi
	E2E_NS=e2e$(date +%s%N)$RANDOM
	"$PCTL" init --rados "$PFS_RADOS_POOL/$E2E_NS" --ceph-conf "$PFS_CEPH_CONF" "$1" >/dev/null 3>&-
}

# store_images — the ids (16 hex digits) of $STORE's fragment images,
# sorted, one a line: its fragments/ folder, or in RADOS mode the image
# objects of its namespace.
store_images() {
	if rados_mode; then
		/usr/bin/python3 "$E2E/../rados/ns.py" images "$PFS_CEPH_CONF" "$PFS_RADOS_POOL" "$E2E_NS"
	else
		find "$STORE/fragments" -type f -name '*.frag' -printf '%f\n' | sed 's/\.frag$//' | sort
	fi
}

# store_image_bytes — the total size of $STORE's fragment images in bytes
# (apparent sizes; the images are written whole).
store_image_bytes() {
	if rados_mode; then
		/usr/bin/python3 "$E2E/../rados/ns.py" bytes "$PFS_CEPH_CONF" "$PFS_RADOS_POOL" "$E2E_NS"
	else
		find "$STORE/fragments" -type f -name '*.frag' -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'
	fi
}

# Fragment images by id (16 hex digits), wherever $STORE keeps them: the
# file fragments/XX/ID.frag, or in RADOS mode the object ID of its
# namespace (the rados tool; a test's store is unmounted or idle).
rados_ns() { rados -c "$PFS_CEPH_CONF" -p "$PFS_RADOS_POOL" -N "$E2E_NS" "$@"; }
# image_where ID — how payloadfs and payloadctl name the image in messages.
image_where() {
	if rados_mode; then
		echo "RADOS object $PFS_RADOS_POOL/$E2E_NS/$1"
	else
		echo "fragments/${1:14:2}/$1.frag"
	fi
}
# image_exists ID
image_exists() {
	if rados_mode; then rados_ns stat "$1" >/dev/null 2>&1; else [ -f "$STORE/fragments/${1:14:2}/$1.frag" ]; fi
}
# image_size ID — its size in bytes.
image_size() {
	if rados_mode; then
		rados_ns stat "$1" | sed -n 's/.* size \([0-9]*\)$/\1/p'
	else
		stat -c %s "$STORE/fragments/${1:14:2}/$1.frag"
	fi
}
# image_get ID FILE / image_put ID FILE — copy an image out, or write one
# (a new id, or replacing an image's bytes).
image_get() {
	if rados_mode; then rados_ns get "$1" "$2"; else cp "$STORE/fragments/${1:14:2}/$1.frag" "$2"; fi
}
image_put() {
	if rados_mode; then rados_ns put "$1" "$2"; else cp "$2" "$STORE/fragments/${1:14:2}/$1.frag"; fi
}
# image_rm ID
image_rm() {
	if rados_mode; then rados_ns rm "$1"; else rm "$STORE/fragments/${1:14:2}/$1.frag"; fi
}
# image_flip ID — invert the byte in the middle of the image.
image_flip() {
	local f
	f=$(mktemp "$TMP/img.XXXXXX")
	image_get "$1" "$f" || return 1
	python3 - "$f" <<'EOF'
import os, sys
p = sys.argv[1]
n = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(n // 2)
    b = f.read(1)
    f.seek(n // 2)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
	if rados_mode; then
		image_put "$1" "$f"
	else
		cat "$f" >"$STORE/fragments/${1:14:2}/$1.frag"   # in place: its inode stays
	fi
	rm -f "$f"
}

# local_only REASON — skip this test in RADOS mode (it inspects what only a
# local store has). A skip is not a pass: run-all.sh counts it as a skip.
local_only() {
	if rados_mode; then
		skip "RADOS mode: $1"
	fi
}

# 0 when $1 is a mount point in /proc/mounts (also when the daemon died and
# the mount only answers ENOTCONN, where mountpoint(1) fails).
is_mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts
}

# mount_pfs [EXTRA_OPTS] — mount $STORE on $MNT; fails the test when the
# daemon fails or the mount is not live when it returns. Sets DAEMON_PID
# from the pidfile (the daemon removes that file when it exits).
mount_pfs() {
	local opts="logfile=$LOG,pidfile=$PIDFILE${1:+,$1}"
	rm -f "$PIDFILE"
	DAEMON_PID=
	with_san_log "$PFS" "$STORE" "$MNT" -o "$opts" 3>&- || {
		echo "# payloadfs $STORE $MNT -o $opts: exit status $?" >&2
		return 1
	}
	DAEMON_PID=$(cat "$PIDFILE" 2>/dev/null) || DAEMON_PID=
	[[ $DAEMON_PID =~ ^[0-9]+$ ]] || {
		echo "# payloadfs returned but wrote no pid to $PIDFILE" >&2
		DAEMON_PID=
		return 1
	}
	mountpoint -q "$MNT" || {
		echo "# payloadfs returned but $MNT is not a live mount point" >&2
		return 1
	}
}

# Wait up to ~10 s for the daemon $DAEMON_PID to exit. Returns 1 if it is
# still running (and then stops it: it is a PID this test started).
wait_daemon_exit() {
	local pid=${DAEMON_PID:-} i
	DAEMON_PID=
	[ -n "$pid" ] || return 0
	for ((i = 0; i < 1000; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		# a zombie nobody reaps yet has exited too
		[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
		sleep 0.01
	done
	echo "# daemon $pid still running 10 s after unmount; stopping it" >&2
	kill -TERM "$pid" 2>/dev/null
	sleep 1
	kill -KILL "$pid" 2>/dev/null
	return 1
}

# crash_daemon — SIGKILL the daemon $DAEMON_PID (one this test started)
# while the background holder ${BG_PIDS[0]} keeps a file open on $MNT, then
# stop the holder, remove the dead mount and wait for the daemon to go.
# Fails when the mount cannot be removed or the daemon does not exit.
crash_daemon() {
	kill -KILL "$DAEMON_PID"
	kill "${BG_PIDS[0]}" && wait "${BG_PIDS[0]}" || true
	BG_PIDS=()
	fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"
	wait_daemon_exit
}

# unmount_pfs — unmount $MNT and wait for the daemon to exit. Retries while
# the mount is busy; lazy-detaches as a last resort (and then fails).
unmount_pfs() {
	local i
	for ((i = 0; i < 5; i++)); do
		is_mounted "$MNT" || break
		fusermount3 -u "$MNT" 2>/dev/null && break
		sleep 0.2
	done
	if is_mounted "$MNT"; then
		echo "# $MNT stayed busy; lazy unmount" >&2
		fusermount3 -uz "$MNT" 2>/dev/null
		wait_daemon_exit
		return 1
	fi
	wait_daemon_exit
}

# with_san_log CMD... — run CMD with sanitizer reports going to
# $TMP/sanitizer.PID (a daemon's stderr is gone once it daemonizes). For a
# background job use `"${SAN_ENV[@]}" CMD... &` so that $! is CMD's PID.
with_san_log() { "${SAN_ENV[@]}" "$@"; }

# Fail when a sanitizer reported something for the daemon (its report
# files, or its log).
check_log_clean() {
	local f rc=0
	for f in "$TMP"/sanitizer.*; do
		[ -s "$f" ] || continue
		echo "# sanitizer report from the daemon ($f):" >&2
		head -n 60 "$f" | sed 's/^/#   /' >&2
		rc=1
	done
	if [ -f "$LOG" ] && grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$LOG"; then
		echo "# sanitizer report in the daemon log" >&2
		rc=1
	fi
	return $rc
}

pfs_teardown() {
	local rc=0
	[ -n "${TMP:-}" ] || return 0
	# Background helpers (python holders) a test started and left running.
	for p in "${BG_PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	unmount_pfs || rc=1
	# file systems a test mounted under $TMP (a small tmpfs for ENOSPC)
	for m in "${EXTRA_MOUNTS[@]:-}"; do
		[ -n "$m" ] && is_mounted "$m" && { umount "$m" || umount -l "$m" || rc=1; }
	done
	check_log_clean || rc=1
	# RADOS mode: the store's objects go with the test (the daemon is gone)
	if [ -n "${E2E_NS:-}" ]; then
		/usr/bin/python3 "$E2E/../rados/ns.py" purge "$PFS_CEPH_CONF" "$PFS_RADOS_POOL" "$E2E_NS" || rc=1
	fi
	if [ -z "${BATS_TEST_COMPLETED:-}" ] || [ $rc -ne 0 ]; then
		if [ -s "$LOG" ]; then
			{
				echo "# --- daemon log ($LOG) ---"
				tail -n 200 "$LOG" | sed 's/^/#   /'
			} >&3
		fi
	fi
	rm -rf --one-file-system "$TMP"
	return $rc
}

# ---- data and comparison -------------------------------------------------

# gen_csv PATH ROWS [SEED] — header + ROWS deterministic rows.
gen_csv() { python3 "$E2E/gendata.py" csv "$@"; }
# gen_lines PATH ROWS [SEED] — the same rows, no header.
gen_lines() { python3 "$E2E/gendata.py" lines "$@"; }
# gen_bin PATH BYTES [SEED] — incompressible bytes.
gen_bin() { python3 "$E2E/gendata.py" bin "$@"; }

# fsop OP ARGS... — one operation, prints OK or the errno name (fsop.py).
fsop() { python3 "$E2E/fsop.py" "$@"; }

# expect_errno WANT OP ARGS... — run fsop and require output WANT.
expect_errno() {
	local want=$1 got
	shift
	got=$(fsop "$@")
	if [ "$got" != "$want" ]; then
		echo "# fsop $*: got '$got', want '$want'" >&2
		return 1
	fi
}

# in_both SCRIPT — run the bash SCRIPT with the working directory $MNT, then
# with $TWIN; the exit status and output (stdout+stderr) must be identical.
in_both() {
	local out_m out_t rc_m rc_t
	out_m=$(cd "$MNT" && bash -c "$1" 2>&1) && rc_m=0 || rc_m=$?
	out_t=$(cd "$TWIN" && bash -c "$1" 2>&1) && rc_t=0 || rc_t=$?
	if [ "$rc_m" != "$rc_t" ] || [ "$out_m" != "$out_t" ]; then
		echo "# in_both: $1" >&2
		echo "# payloadfs: status $rc_m, output: $out_m" >&2
		echo "# ext4:      status $rc_t, output: $out_t" >&2
		return 1
	fi
}

# same_tree [--times] — $MNT and $TWIN have the same manifest.
same_tree() {
	local m t
	m=$(python3 "$E2E/manifest.py" "$MNT" "$@") || return 1
	t=$(python3 "$E2E/manifest.py" "$TWIN" "$@") || return 1
	if [ "$m" != "$t" ]; then
		echo "# trees differ (< payloadfs, > ext4):" >&2
		diff <(echo "$m") <(echo "$t") | sed 's/^/#   /' >&2
		return 1
	fi
}

# same_file A B — cmp, with a readable failure.
same_file() {
	cmp "$1" "$2" >&2 || {
		echo "# $1 ($(stat -c %s "$1" 2>&1) bytes) differs from $2 ($(stat -c %s "$2") bytes)" >&2
		return 1
	}
}

# slice_lines FILE A B [HEADER] — what a view @rows=A:B of FILE must return:
# its HEADER (default 1) header lines, then data rows A:B with Python slice
# semantics (A or B may be empty or negative), as `sed -n` prints them.
slice_lines() {
	local file=$1 a=$2 b=$3 h=${4:-1} n range lo hi
	n=$(($(wc -l <"$file") - h))
	range=$(python3 -c 'import sys
a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lo, hi, _ = slice(int(a) if a else None, int(b) if b else None).indices(n)
print(lo, max(lo, hi))' "$a" "$b" "$n")
	read -r lo hi <<<"$range"
	{
		[ "$h" -gt 0 ] && sed -n "1,${h}p" "$file"
		[ "$hi" -gt "$lo" ] && sed -n "$((lo + h + 1)),$((hi + h))p" "$file"
	} || true
}

# xget PATH NAME — print the value of xattr NAME (nothing when absent).
xget() { getfattr --only-values --absolute-names -n "$2" "$1" 2>/dev/null; }

# stat_field NAME — print one counter of MNT/.stats (a dotted path):
# stat_field io.fragments_read
stat_field() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d[k]
print(d)' "$MNT/.stats" "$1"
}

# daemon_alive — the mount still answers.
daemon_alive() {
	stat "$MNT" >/dev/null && ls "$MNT" >/dev/null
}

# not_mounted DIR — DIR is not a mount point (a plain `! cmd` would not fail
# a bats test).
not_mounted() {
	! is_mounted "$1" && ! mountpoint -q "$1" 2>/dev/null
}

# pfs ARGS... — run payloadfs with fd 3 closed (a daemon holding bats' fd 3
# would hang bats); use as `run pfs ...` (never `run ... 3>&-`, which closes
# bats' own fd 3 for the run).
pfs() { "$PFS" "$@" 3>&-; }

# expect_errno_each WANT OP PATH... — expect_errno for many paths at once.
expect_errno_each() {
	local want=$1 op=$2 got
	shift 2
	got=$(fsop each "$want" "$op" "$@")
	if [ "$got" != OK ]; then
		echo "# fsop $op: want $want, got:" >&2
		echo "$got" | sed 's/^/#   /' >&2
		return 1
	fi
}

# show_output — after `run`, echo what the command printed (bats shows it
# only when the test fails).
show_output() {
	printf '# | %s\n' "${lines[@]}"
	[ -z "${stderr:-}" ] || printf '# 2| %s\n' "${stderr_lines[@]}"
	echo "# status $status"
}

# ---- editing an unmounted store's index (lmdb-utils) ----------------------

# need_mdb_tools — skip the test when mdb_dump and mdb_load are missing.
need_mdb_tools() {
	command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null ||
		skip "lmdb-utils (mdb_dump, mdb_load) not installed"
}

# mdb_put DB KEYHEX VALHEX — write one record into the unmounted store's index.
mdb_put() {
	printf 'VERSION=3\nformat=bytevalue\ndatabase=%s\ntype=btree\nHEADER=END\n %s\n %s\nDATA=END\n' \
		"$1" "$2" "$3" | mdb_load -s "$1" "$STORE/index"
}

# u64be / u64le / u32le N — hex encodings for mdb_put.
u64be() { printf '%016x' "$1"; }
u64le() { python3 -c 'import struct,sys; print(struct.pack("<Q", int(sys.argv[1])).hex())' "$1"; }
u32le() { python3 -c 'import struct,sys; print(struct.pack("<I", int(sys.argv[1])).hex())' "$1"; }
hexstr() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
