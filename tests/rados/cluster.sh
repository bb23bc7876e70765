#!/bin/bash
# cluster.sh — a throwaway single-node Ceph cluster for the RADOS tests:
# one monitor and one memstore OSD on 127.0.0.1, auth none, msgr v1 only,
# everything (config, monitor store, OSD store, logs, sockets, PIDs) under
# DIR. Daemons are stopped by the PIDs recorded in DIR, never by name.
# tests/rados/README.md explains the choices.
#
#   cluster.sh start DIR [POOL]   make a new cluster in DIR (absent or empty)
#                                 with pool POOL (default payloadfs-test);
#                                 returns once a probe write to POOL is done
#   cluster.sh stop DIR           stop the OSD, then the monitor (DIR stays)
#   cluster.sh env DIR            print `export NAME=VALUE` lines: CEPH_CONF,
#                                 PFS_CEPH_CONF, PFS_RADOS_POOL, PFS_RADOS_CLUSTER
#                                 (DIR), PFS_RADOS_CLUSTER_SH (this script)
#   cluster.sh stop-osd DIR       stop the OSD only (its memstore is saved to
#   cluster.sh start-osd DIR        DIR/osd and loaded again: data survives;
#                                 start-osd returns once a write works again)
#   cluster.sh stop-mon DIR       stop the monitor only
#   cluster.sh start-mon DIR      start it again (same port) and wait for it
#   cluster.sh status DIR         which daemons run, with their PIDs
#
# Exit 0 on success; on failure a one-line reason on stderr ("cluster.sh:
# ...") followed by the tail of the daemon's log, exit 1; bad usage exit 2.
# Needs ceph-mon, ceph-osd, ceph-common (packaging/install-deps.sh) and
# /usr/bin/python3 with python3-rados (a dependency of ceph-common).
#
# Environment: CLUSTER_TIMEOUT (s, default 60) bounds every wait.
set -u

ME=cluster.sh
HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT=${CLUSTER_TIMEOUT:-60}
PY=/usr/bin/python3

die() {
	echo "$ME: $*" >&2
	exit 1
}

usage() {
	echo "usage: $ME start DIR [POOL] | stop DIR | env DIR | status DIR |" \
	     "stop-osd DIR | start-osd DIR | stop-mon DIR | start-mon DIR" >&2
	exit 2
}

now_ms() { date +%s%3N; }

# phase WHAT — log WHAT with the milliseconds since start to DIR/log/setup.out.
phase() {
	echo "# $ME: +$(( $(now_ms) - T0 )) ms: $*" >>"$D/log/setup.out"
}

# show_log FILE — the last lines of a daemon's log, indented, on stderr.
show_log() {
	[ -f "$1" ] || return 0
	echo "$ME: last lines of $1:" >&2
	tail -n 15 "$1" | sed 's/^/    /' >&2
}

# ---- PIDs: recorded at start, checked against /proc before any signal ----

# ours NAME — print the recorded PID of daemon NAME (mon or osd) when that
# process still runs and is the daemon started with this DIR's config
# (a PID reused by another process is not ours).
ours() {
	local f=$D/$1.pid pid
	[ -r "$f" ] || return 1
	pid=$(cat "$f")
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	alive "$pid" || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$CONF" || return 1
	echo "$pid"
}

# alive PID — the process exists and has not exited (a zombie has: its
# parent, maybe an init that does not reap, has yet to collect it).
alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	case "$st" in Z* | X*) return 1 ;; esac
	return 0
}

# stop_daemon NAME — SIGTERM, wait up to TIMEOUT, then SIGKILL. A daemon
# that does not run is fine (idempotent).
stop_daemon() {
	local name=$1 pid t0
	pid=$(ours "$name") || { rm -f "$D/$name.pid"; return 0; }
	kill -TERM "$pid" 2>/dev/null
	t0=$SECONDS
	while alive "$pid"; do
		if [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
			echo "$ME: $name (pid $pid) did not stop in ${TIMEOUT} s: SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 0.05
	done
	# a zombie child of ours is reaped by the shell; others by their parent
	wait "$pid" 2>/dev/null
	rm -f "$D/$name.pid"
}

# launch NAME CMD... — start CMD in the background with no inherited
# descriptors but its log, record its PID in DIR/NAME.pid.
launch() {
	local name=$1
	shift
	"$@" </dev/null >>"$D/log/$name.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	echo $! >"$D/$name.pid"
}

# ---- configuration ----

# free_port — a TCP port on 127.0.0.1 that nothing listens on, outside the
# ephemeral range (so an outgoing connection cannot take it meanwhile) and
# outside the OSDs' 6800-7300. Random, so two clusters started at once
# rarely pick the same; start_mon retries with another when bind fails.
free_port() {
	"$PY" - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("no free port")
EOF
}

# write_conf FSID PORT — DIR/ceph.conf.
write_conf() {
	cat >"$CONF" <<EOF
# written by tests/rados/cluster.sh: a throwaway test cluster
[global]
fsid = $1
mon host = v1:127.0.0.1:$2
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
run dir = $D/run
crash dir = $D/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 16
osd pool default pgp num = 16
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
[mon]
mon data = $D/mon
log file = $D/log/\$name.log
admin socket = $D/run/\$name.asok
mon cluster log file = $D/log/cluster.log
# the test disk may be full-ish: never shut the monitor down for it
mon data avail crit = 0
mon data avail warn = 0
# never mark the only OSD out while it is stopped for a fault test
mon osd down out interval = 0
ms bind retry count = 1
# propose map changes at once, not batched over a second: each of the
# start's monitor commands and the OSD's boot waits for one proposal
paxos propose interval = 0.01
paxos min wait = 0.001
ms bind retry delay = 1
[osd]
osd data = $D/osd
log file = $D/log/\$name.log
admin socket = $D/run/\$name.asok
osd objectstore = memstore
memstore device bytes = 4294967296
# the OSD is placed in the CRUSH map by start (racing the OSD's own
# update at boot fails about one start in ten with "wrong fsid")
osd crush update on start = false
osd class update on start = false
# a stop writes the memstore to DIR/osd so that start-osd finds the data
osd fast shutdown = false
EOF
}

# ---- monitor ----

# mon_port — the monitor's port, from the config.
mon_port() {
	sed -n 's/^mon host = v1:127.0.0.1:\([0-9]*\)$/\1/p' "$CONF"
}

# mon_listening — wait until the monitor accepts connections on its port
# (a client that connects before would wait out its 3 s hunt interval).
# Fails early when the monitor exits. @return 0 or 1.
mon_listening() {
	local port t0
	port=$(mon_port)
	t0=$(now_ms)
	while [ $(( $(now_ms) - t0 )) -lt $((TIMEOUT * 1000)) ]; do
		ours mon >/dev/null || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.02
	done
	return 1
}

# start_mon [QUICK] — start the monitor; wait until it listens and, unless
# QUICK, until it answers a command. @return 0 or 1.
start_mon() {
	ours mon >/dev/null && return 0
	launch mon ceph-mon -c "$CONF" -i a -f
	if mon_listening; then
		[ -n "${1:-}" ] && return 0
		timeout -k 5 "$TIMEOUT" ceph -c "$CONF" --connect-timeout "$TIMEOUT" mon stat \
			>/dev/null 2>>"$D/log/setup.out" && return 0
		echo "$ME: the monitor runs but does not answer in ${TIMEOUT} s" >&2
	fi
	show_log "$D/log/mon.a.log"
	return 1
}

# mkfs_mon — a fresh monitor store on a new port. @return 0 or 1.
mkfs_mon() {
	local fsid port
	fsid=$(cat /proc/sys/kernel/random/uuid)
	port=$(free_port) || return 1
	write_conf "$fsid" "$port"
	rm -rf "$D/mon" "$D/monmap"
	mkdir -p "$D/mon"
	monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$port]" "$D/monmap" \
		>>"$D/log/setup.out" 2>&1 || return 1
	ceph-mon -c "$CONF" -i a --mkfs --monmap "$D/monmap" >>"$D/log/setup.out" 2>&1
}

# ---- OSD ----

# probe — write an object to the pool: the first write to a new pool
# waits until its placement groups are active, so this is the readiness
# check (and after start-osd, the proof that writes work again).
probe() {
	local pool
	pool=$(cat "$D/pool")
	timeout -k 5 "$TIMEOUT" rados -c "$CONF" -p "$pool" put cluster-probe "$CONF" \
		>>"$D/log/setup.out" 2>&1
}

start_osd() {
	ours osd >/dev/null && return 0
	launch osd ceph-osd -c "$CONF" -i 0 -f
	probe && return 0
	echo "$ME: no write to the pool succeeded within ${TIMEOUT} s of the OSD's start" >&2
	show_log "$D/log/osd.0.log"
	return 1
}

# setup_osd POOL — create osd.0, place it in CRUSH, create the pool: one
# Python process for the three monitor commands (each `ceph` CLI call costs
# 0.4 s). Prints the OSD's uuid.
setup_osd() {
	"$PY" - "$CONF" "$1" "$TIMEOUT" <<'EOF'
import errno, json, sys, time, uuid
import rados
conf, pool, timeout = sys.argv[1], sys.argv[2], sys.argv[3]
c = rados.Rados(conffile=conf, conf={"client_mount_timeout": timeout,
                                     "rados_mon_op_timeout": timeout})
c.connect()
# A command sent right after connecting can carry a zero fsid (the client
# has no monmap from the monitor yet) and is refused with EPERM "wrong
# fsid" (about one start in ten): such a refusal changed nothing, so the
# command is sent again.
def cmd(**kw):
    deadline = time.monotonic() + float(timeout)
    while True:
        rc, out, err = c.mon_command(json.dumps(kw), b"")
        if rc == -errno.EPERM and "wrong fsid" in err and time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        if rc != 0:
            raise SystemExit("mon command %s failed: %d %s" % (kw["prefix"], rc, err))
        return out
u = str(uuid.uuid4())
cmd(prefix="osd new", uuid=u, id=0)
cmd(prefix="osd crush add", id=0, weight=1.0, args=["root=default", "host=localhost"])
cmd(prefix="osd pool create", pool=pool, pg_num=16, pgp_num=16)
cmd(prefix="osd pool application enable", pool=pool, app="payloadfs")
c.shutdown()
print(u)
EOF
}

# ---- commands ----

cmd_start() {
	local pool=${1:-payloadfs-test} uuid tries
	if [ -e "$CONF" ]; then
		die "$D already holds a cluster (use start-mon/start-osd, or a new DIR)"
	fi
	mkdir -p "$D" || die "cannot create $D"
	[ -z "$(ls -A "$D")" ] || die "$D is not empty"
	mkdir -p "$D/run" "$D/log" "$D/osd" "$D/crash"
	echo "$pool" >"$D/pool"
	# a port taken between free_port and the monitor's bind: try another
	for tries in 1 2 3; do
		mkfs_mon || { show_log "$D/log/setup.out"; die "monitor mkfs failed"; }
		phase "monitor store made"
		start_mon quick && break
		stop_daemon mon
		grep -q 'bind' "$D/log/mon.a.log" 2>/dev/null || die "the monitor did not start"
		echo "$ME: the monitor could not bind its port (try $tries): another port" >&2
		mv "$D/log/mon.a.log" "$D/log/mon.a.log.$tries"
		[ "$tries" -lt 3 ] || die "the monitor did not start"
	done
	phase "monitor listens"
	uuid=$(setup_osd "$pool" 2>>"$D/log/setup.out") || {
		show_log "$D/log/setup.out"
		cmd_stop
		die "creating the OSD and the pool failed"
	}
	ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$D/log/setup.out" 2>&1 || {
		show_log "$D/log/setup.out"
		cmd_stop
		die "OSD mkfs failed"
	}
	phase "osd.0 and pool made, OSD store made"
	start_osd || { cmd_stop; die "the OSD did not become ready"; }
	phase "probe write done: ready"
	echo "$ME: cluster up in $(( $(now_ms) - T0 )) ms: mon pid $(cat "$D/mon.pid")," \
	     "osd pid $(cat "$D/osd.pid"), pool $pool, conf $CONF" >&2
}

cmd_stop() {
	stop_daemon osd
	stop_daemon mon
}

cmd_env() {
	[ -r "$CONF" ] || die "no cluster in $D"
	printf 'export CEPH_CONF=%q\n' "$CONF"
	printf 'export PFS_CEPH_CONF=%q\n' "$CONF"
	printf 'export PFS_RADOS_POOL=%q\n' "$(cat "$D/pool")"
	printf 'export PFS_RADOS_CLUSTER=%q\n' "$D"
	printf 'export PFS_RADOS_CLUSTER_SH=%q\n' "$HERE/cluster.sh"
}

cmd_status() {
	local n pid rc=0
	[ -r "$CONF" ] || die "no cluster in $D"
	for n in mon osd; do
		if pid=$(ours $n); then
			echo "$n running (pid $pid)"
		else
			echo "$n stopped"
			rc=3
		fi
	done
	return $rc
}

[ $# -ge 2 ] || usage
CMD=$1
D=$2
case "$D" in /*) ;; *) D=$(pwd)/$D ;; esac
D=${D%/}
CONF=$D/ceph.conf
T0=$(now_ms)
shift 2

case "$CMD" in
start) [ $# -le 1 ] || usage; cmd_start "$@" ;;
stop) cmd_stop ;;
env) cmd_env ;;
status) cmd_status ;;
stop-osd) [ -r "$CONF" ] || die "no cluster in $D"; stop_daemon osd ;;
start-osd) [ -r "$CONF" ] || die "no cluster in $D"; start_osd || exit 1 ;;
stop-mon) [ -r "$CONF" ] || die "no cluster in $D"; stop_daemon mon ;;
start-mon) [ -r "$CONF" ] || die "no cluster in $D"; start_mon || exit 1 ;;
*) usage ;;
esac
