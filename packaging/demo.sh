#!/bin/bash
# demo.sh BUILD — make a demo store with a sample CSV, mount it, and print
# what to try. Called by `make demo`. Reuses (and first unmounts) the
# previous demo under $PAYLOADFS_DEMO (default /tmp/payloadfs-demo).
set -eu

BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
DEMO=${PAYLOADFS_DEMO:-/tmp/payloadfs-demo}
STORE=$DEMO/store
MNT=$DEMO/mnt
ROWS=200000

die() { echo "demo: $*" >&2; exit 1; }

[ -x "$BUILD/payloadfs" ] || die "$BUILD/payloadfs not built (run make)"
command -v fusermount3 >/dev/null || die "fusermount3 missing (run packaging/install-deps.sh)"
[ -e /dev/fuse ] || die "/dev/fuse missing: this machine cannot mount FUSE filesystems"

mkdir -p "$DEMO"
if mountpoint -q "$MNT" 2>/dev/null || grep -qs " $MNT fuse" /proc/mounts; then
	echo "demo: unmounting the previous demo at $MNT"
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
fi
# A fresh store each time, so the demo always starts from the same state.
rm -rf "$STORE" "$MNT"
mkdir -p "$STORE" "$MNT"

CSV=$DEMO/events.csv
if [ ! -s "$CSV" ]; then
	echo "demo: generating $CSV ($ROWS rows)"
	python3 - "$CSV" "$ROWS" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
actions = ["view", "click", "buy", "share", "login", "logout"]
ts0 = 1700000000
with open(path, "w") as f:
    f.write("id,ts,user,action,value\n")
    x = 12345
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7fffffff      # deterministic LCG
        f.write("%d,%d,%s,%s,%d.%02d\n" % (i, ts0 + i * 7 + x % 5,
                users[x % len(users)], actions[(x >> 8) % len(actions)],
                (x >> 4) % 1000, (x >> 12) % 100))
PY
fi

"$BUILD/payloadfs" "$STORE" "$MNT" -o "logfile=$DEMO/daemon.log,pidfile=$DEMO/daemon.pid" 3>&- \
	|| die "mount failed (see $DEMO/daemon.log)"
mountpoint -q "$MNT" || die "$MNT is not mounted (see $DEMO/daemon.log)"
cp "$CSV" "$MNT/events.csv"
ID=$(stat -c %i "$MNT/events.csv")

cat <<MSG

payloadfs demo mounted: store $STORE, mount point $MNT
$(ls -l "$MNT")

Try:
  cd $MNT
  head events.csv@rows=1000:1005             # header, then rows 1000..1004
  cat events.csv@rows=-3:                    # the last three rows
  wc -l events.csv@part=3/8                  # the 4th of 8 partitions
  python3 -m json.tool events.csv@meta       # id, version, size, rows, ...
  getfattr -d -m user.payload events.csv     # settings and figures
  ls -li                                     # the inode number is the object ID;
  head -3 .by-id/$ID                          # the same object by ID
  ls -a                                      # views are never listed

Write through a view (rows 10..19 replaced in one transaction on close):
  cat events.csv@rows=10:20 > /tmp/v.csv
  sed -i 's/,buy,/,refund,/' /tmp/v.csv
  cat /tmp/v.csv > events.csv@rows=10:20
  head -21 events.csv | tail -10

Offline tool (reading is safe while mounted):
  $BUILD/payloadctl ls $STORE
  $BUILD/payloadctl cat $STORE events.csv@rows=0:3

Unmount:
  cd / && fusermount3 -u $MNT
Daemon log: $DEMO/daemon.log
MSG
