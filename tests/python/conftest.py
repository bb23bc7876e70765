"""Fixtures of the payloadfs Python tests (tests/python/run.sh runs them
with Debian's /usr/bin/python3 -m pytest), and TAP output for
tests/run-all.sh: with PAYLOADFS_TAP=FILE one "ok N - name" / "not ok N -
name" line per test (a skip: "ok N - name # skip") and the plan "1..N" at
the end go to FILE.

Fixtures: `mounted` — a store with d.csv and b.bin, mounted by BUILD's
payloadfs on a temporary mount point for the module (unmounted at the
end, also on failure, and the daemon waited for by its PID); `store_dir`
— an empty, unmounted store."""
import os
import random
import subprocess
import tempfile
import time

import pytest

BUILD = os.environ.get("PAYLOADFS_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
TAP = os.environ.get("PAYLOADFS_TAP")
_tap = []


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and not report.passed):
        name = report.nodeid.split("::")[-1]
        if report.skipped:
            _tap.append("ok %d - %s # skip" % (len(_tap) + 1, name))
        elif report.passed:
            _tap.append("ok %d - %s" % (len(_tap) + 1, name))
        else:
            _tap.append("not ok %d - %s" % (len(_tap) + 1, name))


def pytest_sessionfinish(session, exitstatus):
    if TAP:
        with open(TAP, "w") as f:
            for line in _tap:
                f.write(line + "\n")
            f.write("1..%d\n" % len(_tap))


def _csv(rows):
    r = random.Random(7)
    lines = ["id,name,value\n"] + ["%d,n%d,%.3f\n" % (i, r.randrange(1000), r.random()) for i in range(rows)]
    return "".join(lines).encode()


@pytest.fixture(scope="module")
def mounted():
    tmp = tempfile.mkdtemp(prefix="pfs-py.")
    store, mnt = os.path.join(tmp, "store"), os.path.join(tmp, "mnt")
    os.mkdir(store)
    os.mkdir(mnt)
    subprocess.run([os.path.join(BUILD, "payloadctl"), "init", store], check=True, stdout=subprocess.DEVNULL)
    pidfile = os.path.join(tmp, "pid")
    subprocess.run([os.path.join(BUILD, "payloadfs"), store, mnt, "-o",
                    "logfile=%s/log,pidfile=%s" % (tmp, pidfile)], check=True)
    pid = int(open(pidfile).read())
    try:
        data = {"d.csv": _csv(5000), "b.bin": random.Random(3).randbytes(300000)}
        for name, b in data.items():
            with open(os.path.join(mnt, name), "wb") as f:
                f.write(b)
        yield store, mnt, data
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
        for _ in range(1000):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        subprocess.run(["rm", "-rf", tmp])


@pytest.fixture
def store_dir(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    subprocess.run([os.path.join(BUILD, "payloadctl"), "init", str(store)], check=True,
                   stdout=subprocess.DEVNULL)
    return store
