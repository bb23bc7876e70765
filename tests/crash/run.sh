#!/bin/bash
# run.sh BUILD — the crash tests' short mode, for `make check`
# (tests/run-all.sh): the deterministic fault-point cases, then random
# crash rounds in batches, as TAP (one line per case and per batch).
# CRASH_ROUNDS (default 150), CRASH_BUDGET (seconds of random rounds,
# default 100) and CRASH_SEED (default: random, printed) tune it; the long
# mode is `make crash ROUNDS=500`. See tests/crash/README.md.
set -u
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
exec "$PY" "$HERE/crash.py" --build "$BUILD" --tap --cases --batches 4 --startup-rounds 16 \
	--rounds "${CRASH_ROUNDS:-150}" --budget "${CRASH_BUDGET:-100}" \
	${CRASH_SEED:+--seed "$CRASH_SEED"}
