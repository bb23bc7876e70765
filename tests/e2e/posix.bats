#!/usr/bin/env bats
# posix.bats — POSIX behaviour and security. The errno of every failing
# operation in posix.table is checked against an ext4 twin, as root and as
# two unprivileged users (the mount uses allow_other so they can enter);
# then the security rules: owner-only store files, allow_other only when
# asked for, bounded names and xattrs, and bounded daemon memory under huge
# views, many views and huge sizes.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

ALICE=64101 BOB=64102 GRP=64200   # the table's users (fsop.py USERS)

# posix_fixture — the tree posix.table runs on; run as root with the
# working directory at the tree's root.
posix_fixture() {
	set -e
	umask 022
	echo x >xf
	echo data >f
	ln f hl
	setfattr -n user.k -v vvvv f
	mkdir d e e4
	echo x >d/g
	setfattr -n user.dx -v 1 d
	mkdir -p tree/a/b nl/e2 nl/e3 nl/mvd nl/x
	echo c >tree/xc
	echo xa >xa
	mkdir xb
	ln -s f sl
	ln -s d sld
	ln -s nowhere dangling
	ln -s loop2 loop1
	ln -s loop1 loop2
	mkfifo fifo
	for f in vsrc1 vsrc2 vsrc3 vl tf r1 r2 lx; do echo v >$f; done
	echo s >suidf
	chmod 755 suidf
	mkdir ha ha/sub
	echo a >ha/af
	echo a >ha/af600
	chmod 600 ha/af600
	echo '#!/bin/sh' >ha/sgidf
	chmod 755 ha/sgidf
	setfattr -n user.dx -v 1 ha
	chown -R $ALICE:$ALICE ha
	mkdir ro priv
	echo x >ro/x
	echo x >priv/x
	chmod 555 ro
	chmod 700 priv
	echo w >pubw
	chmod 666 pubw
	mkdir tmp tmp2 sg
	chmod 1777 tmp tmp2
	echo a >tmp/af
	chmod 666 tmp/af
	mkdir tmp/ad
	chown $ALICE:$ALICE tmp/af tmp/ad tmp2
	echo b >tmp/bobf
	echo b >tmp/bobf2
	chmod 755 tmp/bobf
	chown $BOB:0 tmp/bobf
	chown $BOB:$BOB tmp/bobf2
	echo r >tmp/rootf
	echo b >tmp2/bobf
	echo b >tmp2/bobf3
	chown $BOB:$BOB tmp2/bobf tmp2/bobf3
	chown 0:$GRP sg
	chmod 2777 sg
}

# vm_hwm — the daemon's peak resident set, in KiB.
vm_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status"; }

# as USER OP ARGS... — fsop OP as a table user, working directory $MNT.
as() { python3 "$E2E/fsop.py" as "$1" "$MNT" "${@:2}"; }

@test "errno table: every case of posix.table gives ext4's result or its documented deviation" {
	mount_pfs allow_other
	(cd "$MNT" && posix_fixture)
	(cd "$TWIN" && posix_fixture)
	run python3 "$E2E/fsop.py" table "$E2E/posix.table" "$MNT" "$TWIN"
	show_output
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^([0-9]+)\ cases,\ ([0-9]+)\ deliberate\ deviations,\ 0\ mismatches$ ]]
	[ "${BASH_REMATCH[1]}" -ge 250 ]
	daemon_alive
}

@test "docs/posix.md holds posix.table as fsop.py table-doc prints it" {
	local doc=$BATS_TEST_DIRNAME/../../docs/posix.md
	python3 "$E2E/fsop.py" table-doc "$E2E/posix.table" >"$TMP/want"
	sed -n '/^<!-- table:begin/,/^<!-- table:end/p' "$doc" | sed '1d;$d' >"$TMP/got"
	[ -s "$TMP/got" ]
	diff "$TMP/want" "$TMP/got" >&2 || {
		echo "# docs/posix.md is stale: regenerate it with fsop.py table-doc" >&2
		return 1
	}
	grep -q '(posix.md)' "$BATS_TEST_DIRNAME/../../docs/guide.md"
	grep -q 'docs/posix.md' "$BATS_TEST_DIRNAME/../../README.md"
}

@test "store files and folders are owner-only, whatever the umask" {
	umask 000
	mount_pfs fragment_size=64K
	gen_csv "$MNT/big.csv" 20000
	mkdir "$MNT/dir"
	echo tiny >"$MNT/dir/tiny"
	setfattr -n user.k -v v "$MNT/dir/tiny"
	# a writer past the 8 MiB spill threshold holds a staging file (what
	# goes back before the end written so far is not streamed: it stays
	# staged)
	"$PY" -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o666)
os.pwrite(fd, b"x", 9 << 20)
os.pwrite(fd, b"x" * (9 << 20), 0)
open(sys.argv[2], "w").close()
time.sleep(60)' "$MNT/spill" "$TMP/written" &
	BG_PIDS+=($!)
	for ((i = 0; i < 500; i++)); do [ -e "$TMP/written" ] && break; sleep 0.02; done
	[ -e "$TMP/written" ]
	[ -n "$(ls "$STORE/staging")" ]
	if rados_mode; then
		cat "$MNT/big.csv" >/dev/null
		ls "$STORE/cache"/*/* >/dev/null      # images fetched from the cluster are kept
	else
		ls "$STORE/fragments"/*/* >/dev/null  # images exist
	fi
	[ -e "$STORE/index/data.mdb" ]
	[ -e "$STORE/index/lock.mdb" ]
	local loose
	loose=$(find "$STORE" -mindepth 1 \( \( -type d ! -perm 700 \) -o \( ! -type d -perm /077 \) \) -printf '%m %p\n')
	[ -z "$loose" ] || { echo "# not owner-only:" >&2; echo "$loose" | sed 's/^/#   /' >&2; return 1; }
	# the daemon's log is private; its pidfile is not writable by others
	[ "$(stat -c %a "$LOG")" = 600 ]
	[ -z "$(find "$PIDFILE" -perm /022)" ]
	# payloadctl init of a missing directory: owner-only too
	"$PCTL" init "$TMP/store2"
	loose=$(find "$TMP/store2" \( -type d ! -perm 700 \) -o \( ! -type d -perm /077 \))
	[ -z "$loose" ]
}

@test "a default mount shuts other users out; allow_other lets them in under default_permissions" {
	mount_pfs
	echo hi >"$MNT/pub"
	chmod 644 "$MNT/pub"
	local opts
	opts=$(awk -v m="$MNT" '$2 == m { print $4 }' /proc/mounts)
	[[ ,$opts, == *,default_permissions,* ]]
	[[ ,$opts, != *,allow_other,* ]]
	# bob cannot even enter the mount; the same on the twin works
	[ "$(as bob stat .)" = cwd:EACCES ]
	[ "$(python3 "$E2E/fsop.py" as bob "$TWIN" stat .)" = OK ]
	[ "$(as root read pub)" = OK ]
	unmount_pfs
	mount_pfs allow_other
	grep " $MNT " /proc/mounts | grep -q allow_other
	grep " $MNT " /proc/mounts | grep -q default_permissions
	[ "$(as bob read pub)" = OK ]
	# the kernel checks the permission bits (the daemon never sees the call)
	[ "$(as bob open pub w)" = EACCES ]
	[ "$(as bob create new)" = EACCES ]
	[ "$(as bob unlink pub)" = EACCES ]
	[ "$(as bob chmod pub 666)" = EPERM ]
	chmod 600 "$MNT/pub"
	[ "$(as bob read pub)" = EACCES ]
	[ "$(as bob read pub@rows=0:1)" = EACCES ]
	[ "$(as bob read pub@meta)" = EACCES ]
	[ "$(cat "$MNT/pub")" = hi ]
	# .by-id reaches an object whatever directories lead to it: there the
	# object's own mode protects it (documented in guide.md, Limits)
	mkdir -m 700 "$MNT/private"
	echo s >"$MNT/private/open"
	echo s >"$MNT/private/closed"
	chmod 600 "$MNT/private/closed"
	[ "$(as bob read private/open)" = EACCES ]
	[ "$(as bob read ".by-id/$(stat -c %i "$MNT/private/open")")" = OK ]
	[ "$(as bob read ".by-id/$(stat -c %i "$MNT/private/closed")")" = EACCES ]
}

@test "over-long names and xattrs are refused with clear errors and store nothing" {
	mount_pfs
	echo x >"$MNT/f"
	mkdir "$MNT/d"
	local n256 n255 before
	n256=$(printf 'n%.0s' {1..256})
	n255=${n256:1}
	for op in create mkdir; do
		expect_errno ENAMETOOLONG $op "$MNT/d/$n256"
	done
	expect_errno ENAMETOOLONG symlink f "$MNT/d/$n256"
	expect_errno ENAMETOOLONG link "$MNT/f" "$MNT/d/$n256"
	expect_errno ENAMETOOLONG rename "$MNT/f" "$MNT/d/$n256"
	expect_errno ENAMETOOLONG symlink "$(printf 't%.0s' {1..4096})" "$MNT/d/s"
	[ -z "$(ls -A "$MNT/d")" ]
	expect_errno OK create "$MNT/d/$n255"
	[ "$(ls "$MNT/d")" = "$n255" ]
	before=$(getfattr -d --absolute-names "$MNT/f" 2>&1)
	expect_errno ERANGE setxattr "$MNT/f" "user.$n256" v
	expect_errno E2BIG setxattr2 "$MNT/f" user.big 65537
	expect_errno EINVAL setxattr "$MNT/f" user. v
	expect_errno ENOTSUP setxattr "$MNT/f" trusted.x v
	[ "$(getfattr -d --absolute-names "$MNT/f" 2>&1)" = "$before" ]
	# many names: refused (ENOSPC, like ext4 when its block is full) before
	# the list outgrows one listxattr(2) answer; the refused one is absent
	run python3 - "$MNT/f" <<'EOF'
import errno, os, sys
p = sys.argv[1]
for i in range(1000):
    name = "user.%03d%s" % (i, "n" * 240)
    try:
        os.setxattr(p, name, b"v")
    except OSError as e:
        print(i, errno.errorcode[e.errno])
        break
names = os.listxattr(p)
print(len(names), sum(len(n) + 1 for n in names) <= 65536, name in names)
EOF
	show_output
	[[ ${lines[0]} =~ ^2[0-9][0-9]\ ENOSPC$ ]]
	[[ ${lines[1]} =~ \ True\ False$ ]]
	getfattr -d --absolute-names "$MNT/f" >/dev/null
	# many bytes: 64 KiB values stop at 1 MiB per inode
	run python3 - "$MNT/d" <<'EOF'
import errno, os, sys
for i in range(100):
    try:
        os.setxattr(sys.argv[1], "user.v%d" % i, b"x" * 65536)
    except OSError as e:
        print(i, errno.errorcode[e.errno], "user.v%d" % i in os.listxattr(sys.argv[1]))
        break
EOF
	show_output
	[ "$output" = "15 ENOSPC False" ]
	daemon_alive
}

@test "huge view ranges and 20,000 views open at once keep the daemon's memory bounded" {
	mount_pfs
	gen_csv "$MNT/d.csv" 1000
	local h0 h1
	h0=$(vm_hwm)
	expect_errno ENOENT read "$MNT/d.csv@rows=0:99999999999999999999"
	expect_errno ENOENT read "$MNT/d.csv@part=0/18446744073709551615"
	expect_errno OK read "$MNT/d.csv@rows=-9223372036854775808:"
	expect_errno OK read "$MNT/d.csv@rows=-9223372036854775808:9223372036854775807"
	expect_errno OK read "$MNT/d.csv@part=9223372036854775806/9223372036854775807"
	cmp "$MNT/d.csv@rows=-9223372036854775808:" "$MNT/d.csv"
	run python3 - "$MNT/d.csv" <<'EOF'
import json, os, resource, sys, time
stats = lambda: json.load(open(os.path.dirname(sys.argv[1]) + "/.stats"))["nodes"]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
n = min(20000, hard - 32)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
fds = [os.open("%s@rows=%d:%d" % (sys.argv[1], i % 1000, 1000 + i // 1000), os.O_RDONLY)
       for i in range(n)]
assert os.read(fds[-1], 4096)
assert stats()["views"] >= n, stats()
for fd in fds:
    os.close(fd)
for i in range(5000):           # and more, each looked up once
    os.stat("%s@rows=%d:" % (sys.argv[1], i))
for i in range(2000):           # part directories with a bad child
    try:
        os.stat("%s@part=%d/x" % (sys.argv[1], i))
        sys.exit("@part=%d/x exists" % i)
    except FileNotFoundError:
        pass
# the kernel forgets unused views (asynchronously) and the table empties;
# the entry notices are best effort (a full queue drops one), so a few may
# linger until the kernel reclaims them
for _ in range(300):
    if stats()["views"] == 0:
        break
    time.sleep(0.01)
print(n, stats()["views"])
EOF
	show_output
	[ "$status" -eq 0 ]
	read -r n left <<<"$output"
	[ "$n" -ge 19000 ]
	[ "$left" -lt 100 ]
	h1=$(vm_hwm)
	echo "# VmHWM ${h0} KiB -> ${h1} KiB after $n open views; $left view nodes left" >&3
	# about 0.4 KiB per open view; 200 MiB is generous (sanitizers included)
	[ $((h1 - h0)) -lt $((200 * 1024)) ]
	daemon_alive
}

@test "-o max_views caps live view inodes: ENFILE beyond, freed when closed" {
	mount_pfs max_views=100
	gen_csv "$MNT/d.csv" 10
	run python3 - "$MNT/d.csv" <<'EOF'
import errno, os, sys, time
fds = [os.open("%s@rows=%d:" % (sys.argv[1], i), os.O_RDONLY) for i in range(100)]
try:
    os.open(sys.argv[1] + "@rows=100:", os.O_RDONLY)
    print("opened past the cap")
except OSError as e:
    print(errno.errorcode[e.errno])
os.stat(sys.argv[1] + "@rows=5:")          # a view in the table still resolves
os.stat(sys.argv[1])                        # and real files are not views
for fd in fds:
    os.close(fd)
# unused views are forgotten: the kernel sends the forgets on its own,
# asynchronously, so a lookup may briefly still find the table full
waits = 0
for i in range(1000):
    while True:
        try:
            os.stat("%s@rows=%d:" % (sys.argv[1], 1000 + i))
            break
        except OSError as e:
            if e.errno != errno.ENFILE or waits >= 200:
                raise
            waits += 1
            time.sleep(0.01)
print("OK", waits)
EOF
	show_output
	[ "${lines[0]}" = ENFILE ]
	[[ ${lines[1]} =~ ^OK\ [0-9]+$ ]]
	grep -q max_views <("$PFS" --help)
	mkdir "$TMP/m2"
	run pfs "$STORE" "$TMP/m2" -o max_views=0
	show_output
	[ "$status" -ne 0 ]
	[[ $output == *max_views* ]]
	not_mounted "$TMP/m2"
}

@test "huge sizes are EFBIG at ext4's limit; a 300 MiB row commits in bounded memory" {
	mount_pfs
	seq 1 10 >"$MNT/f.txt"
	cp "$MNT/f.txt" "$TWIN/f.txt"
	local h0 h1
	for d in "$MNT" "$TWIN"; do
		expect_errno EFBIG truncate "$d/f.txt" 17592186040321
		expect_errno EFBIG truncate "$d/f.txt" 9223372036854775807
		run python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.pwrite(fd, b"x", 17592186040320)
    print("OK")
except OSError as e:
    print(e.errno)
os.close(fd)' "$d/f.txt"
		[ "$output" = 27 ]     # EFBIG
	done
	same_file "$MNT/f.txt" "$TWIN/f.txt"
	# 300 MiB of zeros is one row in the lines format, longer than a
	# fragment: it spans 300 of them and is never held whole
	h0=$(vm_hwm)
	expect_errno OK truncate "$MNT/f.txt" $((300 << 20))
	h1=$(vm_hwm)
	echo "# VmHWM ${h0} KiB -> ${h1} KiB for a 300 MiB row" >&3
	[ $((h1 - h0)) -lt $((128 * 1024)) ]
	truncate -s $((300 << 20)) "$TWIN/f.txt"
	same_file "$MNT/f.txt" "$TWIN/f.txt"
	daemon_alive
}
