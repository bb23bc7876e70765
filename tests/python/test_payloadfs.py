"""The payloadfs Python package against a real mount: every read is
compared with the bytes the mount serves for the same name."""
import errno
import os
import threading
import time

import pytest

import payloadfs


def mnt_bytes(mnt, name):
    with open(os.path.join(mnt, name), "rb") as f:
        return f.read()


def test_get_many_equals_the_mount(mounted):
    store, mnt, data = mounted
    names = ["d.csv", "b.bin", "d.csv@rows=10:20", "d.csv@rows=-3:", "d.csv@part=2/5", "d.csv@meta"]
    bid = os.stat(os.path.join(mnt, "b.bin")).st_ino
    with payloadfs.open(store) as s:
        got = s.get_many(names + [bid])
    want = [mnt_bytes(mnt, n) for n in names] + [data["b.bin"]]
    assert got == want


def test_read_rows_and_bytes(mounted):
    store, mnt, data = mounted
    with payloadfs.open(store) as s:
        assert s.read_rows("d.csv", 100, 250) == mnt_bytes(mnt, "d.csv@rows=100:250")
        assert s.read_rows("d.csv", -10) == mnt_bytes(mnt, "d.csv@rows=-10:")
        assert s.read_bytes("b.bin", 1000, 5000) == data["b.bin"][1000:5000]


def test_open_is_a_file_for_pandas(mounted):
    pandas = pytest.importorskip("pandas")
    store, mnt, data = mounted
    with payloadfs.open(store) as s:
        df = pandas.read_csv(s.open("d.csv@rows=0:1000"))
        want = pandas.read_csv(os.path.join(mnt, "d.csv@rows=0:1000"))
        assert df.equals(want)
        assert len(df) == 1000
        with s.open("b.bin") as f:
            f.seek(299990)
            assert f.read() == data["b.bin"][299990:]
            f.seek(5)
            assert f.read(7) == data["b.bin"][5:12]


def test_partitions_cover_the_rows_once(mounted):
    store, mnt, data = mounted
    with payloadfs.open(store) as s:
        parts = list(payloadfs.partitions(s, "d.csv", 3))
        assert [p.index for p in parts] == [0, 1, 2]
        assert parts[0].start == 0 and parts[-1].stop == 5000
        assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
        for p in parts:
            assert s.read_rows("d.csv", p.start, p.stop) == mnt_bytes(mnt, p.view)
        with pytest.raises(ValueError):
            list(payloadfs.partitions(s, "d.csv", 0))


def test_sees_a_commit_through_the_mount_and_a_pin_does_not(mounted):
    store, mnt, data = mounted
    with payloadfs.open(store) as s:
        old = s.get("d.csv")
        with s.pin("d.csv") as v:
            with open(os.path.join(mnt, "d.csv"), "ab") as f:
                f.write(b"9999,new,1.0\n")
            assert s.get("d.csv") == old + b"9999,new,1.0\n"
            assert s.get_many([v]) == [old]
            assert v.read(0, 10) == old[:10]
    with open(os.path.join(mnt, "d.csv"), "wb") as f:
        f.write(data["d.csv"])


def test_errors(mounted, tmp_path):
    store, mnt, data = mounted
    with pytest.raises(OSError) as e:
        payloadfs.open(store, mode="w")
    assert e.value.errno == errno.EBUSY
    assert "in use" in str(e.value)
    with pytest.raises(FileNotFoundError):
        payloadfs.open(tmp_path / "nostore")
    with pytest.raises(ValueError):
        payloadfs.open(store, mode="x")
    with payloadfs.open(store) as s:
        with pytest.raises(FileNotFoundError) as e:
            s.get_many(["b.bin", "missing"])
        assert "missing" in str(e.value)
        with pytest.raises(IsADirectoryError):
            s.get("d.csv@part=1")
        with pytest.raises(OSError) as e:
            s.put_many({"x": b"1"})
        assert e.value.errno == errno.EROFS
    s.close()
    with pytest.raises(ValueError):
        s.get("d.csv")


def test_threads_share_a_store(mounted):
    store, mnt, data = mounted
    bad = []
    with payloadfs.open(store) as s:
        def work(k):
            for i in range(50):
                off = (k * 7919 + i * 4099) % 290000
                got = s._get([("b.bin", 0, None, 1, off, off + 4096)] * 4)
                if got != [data["b.bin"][off:off + 4096]] * 4:
                    bad.append(k)
        ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert bad == []


def test_put_many_one_transaction(store_dir):
    with payloadfs.open(store_dir, mode="w") as s:
        s.put_many({"a": b"1", "b.csv": b"h\n1\n2\n"})
        assert s.get_many(["a", "b.csv@rows=1:"]) == [b"1", b"h\n2\n"]
        with pytest.raises(OSError) as e:
            s.put_many([("c", b"3"), ("a", b"changed"), ("bad@rows=1:2", b"x")])
        assert e.value.errno == errno.EINVAL
        with pytest.raises(FileNotFoundError):
            s.get("c")
        assert s.get("a") == b"1"
        big = bytes(range(256)) * 12289          # over 3 MiB: fragments
        s.put_many({"big": big, "a": b"2"})
        assert s.get_many(["big", "a"]) == [big, b"2"]


def test_zarr_store_batches(store_dir):
    zarr = pytest.importorskip("zarr")
    np = pytest.importorskip("numpy")
    import payloadfs.zarr as pz
    import subprocess
    # the array's directory (put_many makes no directories): payloadctl
    # import of an empty one
    empty = store_dir.parent / "empty-arr"
    empty.mkdir()
    build = os.environ.get("PAYLOADFS_BUILD")
    subprocess.run([os.path.join(build, "payloadctl"), "import", str(store_dir), str(empty), "/arr"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a = np.arange(3600, dtype="f8").reshape(60, 60)
    st = pz.Store(store_dir, root="arr", mode="w")
    z = zarr.create(shape=a.shape, chunks=(10, 10), dtype="f8", store=st, overwrite=False)
    st.put_batches = 0                  # .zarray was one
    z[:] = a
    assert st.put_batches == 1          # 36 chunks, one transaction
    st.close()
    st = pz.Store(store_dir, root="arr")
    z = zarr.open_array(st, mode="r")
    assert (z[:] == a).all()
    assert (z[15:45, 5:25] == a[15:45, 5:25]).all()
    assert st.batches == 2              # one get_many per selection
    st.close()


def test_the_gil_is_released_during_a_batch(mounted):
    """Another thread runs Python code while a batch is in the library
    (ctypes.CDLL releases the GIL around the call; a PyDLL would not)."""
    import ctypes
    store, mnt, data = mounted
    n, slots = 40000, 1000
    with payloadfs.open(store) as s:
        arr = (payloadfs._Get * n)()
        bufs = ctypes.create_string_buffer(slots * 4096)
        for i in range(n):
            arr[i].path = b"b.bin"
            arr[i].range = 1
            arr[i].start = (i * 4099) % 290000
            arr[i].stop = arr[i].start + 4096
            arr[i].buf = ctypes.addressof(bufs) + (i % slots) * 4096
            arr[i].cap = 4096
        started, stamps, span, rc = threading.Event(), [], [], []

        def batch():
            started.set()
            t0 = time.monotonic()
            rc.append(payloadfs._lib.payload_get_many(s._handle(), arr, n))
            span.extend([t0, time.monotonic()])
        t = threading.Thread(target=batch)
        t.start()
        started.wait()
        while t.is_alive():
            stamps.append(time.monotonic())
        t.join()
        assert rc == [0]
        last = (n - slots) * 4099 % 290000      # the last request of slot 0
        assert bufs.raw[:4096] == data["b.bin"][last:last + 4096]
        t0, t1 = span
        inside = [t0] + [x for x in stamps if t0 < x < t1] + [t1]
        gap = max(b - a for a, b in zip(inside, inside[1:]))
        # held through the call, the GIL would leave one gap of the call's
        # length; released, this thread runs all along (the OS may pause it)
        assert gap < 0.5 * (t1 - t0), "longest pause %.3f s in a %.3f s batch" % (gap, t1 - t0)


def test_get_iter_streams_batches_in_order(store_dir):
    data = {"g%03d" % i: bytes([i % 251]) * (i * 997 % 9000 + 1) for i in range(300)}
    with payloadfs.open(store_dir, mode="w") as s:
        s.put_many(data)
        keys = sorted(data) * 2
        got = list(s.get_iter(iter(keys), batch=16, depth=3, max_bytes=200000))
        assert got == [data[k] for k in keys]
        # a batch alone over max_bytes is read on its own, still in order
        got = list(s.get_iter(keys[:40], batch=8, depth=2, max_bytes=20000))
        assert got == [data[k] for k in keys[:40]]
        with pytest.raises(FileNotFoundError):
            list(s.get_iter(["g001", "nope"], batch=1))
