"""Store.follow (python/payloadfs/follow.py) beside a real mount: a writer
appending and fsyncing through the mount is followed row by row; a
rewrite raises ESTALE after the rows before it; close() from another
thread ends a waiting iteration; the GIL is released while it waits."""
import errno
import os
import threading
import time

import pytest

import payloadfs


def _writer(path, rows, delay=0.003):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for r in rows:
            os.write(fd, r)
            os.fsync(fd)
            time.sleep(delay)
    finally:
        os.close(fd)


def test_follow_yields_each_appended_row(mounted):
    store_dir, mnt, _ = mounted
    path = os.path.join(mnt, "f1.csv")
    with open(path, "wb") as f:
        f.write(b"k,v\n")
    rows = [b"%d,%s\n" % (i, b"x" * (i % 17)) for i in range(40)]
    got = []
    with payloadfs.open(store_dir) as store, store.follow("f1.csv", timeout=10, start=0) as fol:
        t = threading.Thread(target=_writer, args=(path, rows))
        t.start()
        for row in fol:
            got.append(row)
            if len(got) == 41:
                break
        t.join()
        assert fol.tell().offset == os.path.getsize(path)
    assert got == [b"k,v\n"] + rows
    with open(path, "rb") as f:
        assert b"".join(got) == f.read()


def test_a_rewrite_raises_estale_after_the_rows_before_it(mounted):
    store_dir, mnt, _ = mounted
    path = os.path.join(mnt, "f2.csv")
    with open(path, "wb") as f:
        f.write(b"a\nb\n")
    got = []
    with payloadfs.open(store_dir) as store, store.follow("f2.csv", timeout=10, start=0) as fol:
        got.append(next(fol))
        got.append(next(fol))
        with open(path, "wb") as f:     # O_TRUNC: a rewrite
            f.write(b"c\n")
        with pytest.raises(OSError) as e:
            next(fol)
        assert e.value.errno == errno.ESTALE
        assert "rewritten or truncated" in str(e.value)
        assert fol.tell().offset == 4
    assert got == [b"a\n", b"b\n"]


def test_close_from_another_thread_ends_a_wait_and_the_gil_is_free(mounted):
    store_dir, mnt, _ = mounted
    with open(os.path.join(mnt, "f3.csv"), "wb") as f:
        f.write(b"h\n")
    ticks = [0]
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    store = payloadfs.open(store_dir)
    fol = store.follow("f3.csv")                # from the end, no time limit
    out = {}

    def iterate():
        t0 = time.monotonic()
        out["rows"] = list(fol)
        out["waited"] = time.monotonic() - t0

    t = threading.Thread(target=tick)
    t.start()
    it = threading.Thread(target=iterate, daemon=True)
    it.start()
    time.sleep(0.3)
    fol.close()
    it.join(5)
    stop.set()
    t.join()
    if it.is_alive():                           # the store stays open: it is in use
        pytest.fail("close() did not end the waiting iteration within 5 s")
    store.close()
    assert out == {"rows": [], "waited": out["waited"]}
    assert out["waited"] >= 0.25
    assert ticks[0] > 20, "another thread ran while the follower waited"
