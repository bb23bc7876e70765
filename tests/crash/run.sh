#!/bin/bash
# run.sh BUILD [rados] — the crash tests' short mode, for `make check`
# (tests/run-all.sh), as TAP (one line per case and per batch).
#
# run.sh BUILD: on a local store, the deterministic fault-point cases, then
# random crash rounds in batches. CRASH_ROUNDS (default 150), CRASH_BUDGET
# (seconds of random rounds, default 100) and CRASH_SEED (default: random,
# printed) tune it; the long mode is `make crash ROUNDS=500`.
#
# run.sh BUILD rados: the same over a RADOS store (crash.py --rados,
# tests/crash/rcrash.py) of the cluster that PFS_CEPH_CONF and
# PFS_RADOS_POOL name (run-all.sh starts one): the RADOS cases, then two
# batches of rounds, crashes recovered by a remount of the same STORE and
# by a takeover in turn, a follower alongside. CRASH_RADOS_ROUNDS (default
# 40), CRASH_RADOS_BUDGET (seconds of rounds, default 100),
# CRASH_RADOS_CASE_BUDGET (seconds of cases after which only the seven
# always run are started, default 60; cases left out print no line) and
# CRASH_SEED tune it; without a cluster it is one failed TAP line, never a skip. The
# long mode is `make crash-rados ROUNDS=200`.
#
# See tests/crash/README.md.
set -u
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if [ "${2:-}" = rados ]; then
	exec "$PY" "$HERE/crash.py" --rados --build "$BUILD" --tap --cases --batches 2 \
		--case-budget "${CRASH_RADOS_CASE_BUDGET:-60}" \
		--rounds "${CRASH_RADOS_ROUNDS:-40}" --budget "${CRASH_RADOS_BUDGET:-100}" \
		${CRASH_SEED:+--seed "$CRASH_SEED"}
fi
exec "$PY" "$HERE/crash.py" --build "$BUILD" --tap --cases --batches 4 --startup-rounds 16 \
	--rounds "${CRASH_ROUNDS:-150}" --budget "${CRASH_BUDGET:-100}" \
	${CRASH_SEED:+--seed "$CRASH_SEED"}
