"""payloadfs — a payloadfs store from Python, over libpayload (payload(3)).

    import payloadfs
    with payloadfs.open("/srv/store") as store:          # read-only
        a, b = store.get_many(["a.bin", "events.csv@rows=0:10"])
        rows = store.read_rows("events.csv", 100, 200)   # header + rows 100..199
        df = pandas.read_csv(store.open("events.csv@rows=0:1000"))
        for part in payloadfs.partitions(store, "events.csv", 4):
            ...                                          # part.view, part.start, part.stop
    with payloadfs.open("/srv/store", mode="w") as store: # refused while mounted
        store.put_many({"x/1": b"...", "x/2": b"..."})    # one transaction

Pure Python over ctypes. Every batch is one call into the library;
ctypes releases the GIL around calls into a CDLL (Python's ctypes
documentation), so other threads run while a batch is read. Errors raise
OSError subclasses (FileNotFoundError, ...) whose message is the library's
payload_errmsg(), naming what failed.
"""
import collections
import ctypes
import ctypes.util
import errno as _errno
import io
import os

__all__ = ["open", "Store", "Version", "partitions", "Partition"]


_WHOLE, _BYTES, _ROWS = 0, 1, 2
_END = (1 << 63) - 1


class _Get(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char_p), ("id", ctypes.c_uint64),
                ("version", ctypes.c_void_p), ("range", ctypes.c_int),
                ("start", ctypes.c_int64), ("stop", ctypes.c_int64),
                ("buf", ctypes.c_void_p), ("cap", ctypes.c_size_t),
                ("result", ctypes.c_int), ("size", ctypes.c_uint64),
                ("len", ctypes.c_size_t), ("obj_version", ctypes.c_uint64)]


class _Put(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char_p), ("data", ctypes.c_char_p),
                ("len", ctypes.c_size_t), ("result", ctypes.c_int)]


class _Stat(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("version", ctypes.c_uint64),
                ("size", ctypes.c_uint64), ("rows", ctypes.c_uint64),
                ("header_rows", ctypes.c_uint64), ("mtime_ns", ctypes.c_int64)]


Stat = collections.namedtuple("Stat", "id version size rows header_rows mtime_ns")
Partition = collections.namedtuple("Partition", "index count start stop view")


def _load():
    path = os.environ.get("PAYLOADFS_LIB") or "libpayload.so.0"
    lib = ctypes.CDLL(path)
    vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
    for name, res, args in [
            ("payload_open", ctypes.c_int, [cp, ctypes.c_int, ctypes.POINTER(vp)]),
            ("payload_close", None, [vp]),
            ("payload_get_many", ctypes.c_int, [vp, ctypes.POINTER(_Get), sz]),
            ("payload_put_many", ctypes.c_int, [vp, ctypes.POINTER(_Put), sz]),
            ("payload_stat", ctypes.c_int, [vp, cp, ctypes.POINTER(_Stat)]),
            ("payload_version_get", ctypes.c_int, [vp, cp, ctypes.POINTER(vp)]),
            ("payload_version_stat", ctypes.c_int, [vp, ctypes.POINTER(_Stat)]),
            ("payload_version_release", None, [vp]),
            ("payload_strerror", cp, [ctypes.c_int]),
            ("payload_errmsg", cp, [])]:
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


_lib = _load()
from .follow import _setup as _follow_setup  # noqa: E402 (needs _lib)
_follow_setup(_lib)


def _error(rc, msg=None):
    if msg is None:
        msg = _lib.payload_errmsg().decode(errors="replace")
    return OSError(-rc, msg or _lib.payload_strerror(rc).decode())


def _b(path):
    return os.fsencode(path)


def open(store, mode="r"):
    """Open the store directory STORE: mode "r" (always allowed, also
    while mounted) or "w" (read-write: OSError EBUSY while a daemon or
    another writer holds it)."""
    if mode not in ("r", "w"):
        raise ValueError("mode must be 'r' or 'w'")
    return Store(store, mode)


class Version:
    """A pinned version of one object (Store.pin): reads of it return the
    same bytes whatever is committed later, until release()."""

    def __init__(self, store, handle):
        self._store = store
        self._h = handle

    def stat(self):
        s = _Stat()
        rc = _lib.payload_version_stat(self._h, ctypes.byref(s))
        if rc:
            raise _error(rc)
        return Stat(s.id, s.version, s.size, s.rows, s.header_rows, s.mtime_ns)

    def read(self, start=0, stop=None):
        return self._store._get([(None, 0, self._h, _BYTES, start, _END if stop is None else stop)])[0]

    def release(self):
        if self._h:
            _lib.payload_version_release(self._h)
            self._h = None
            self._store._versions.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class Store:
    """An open store (payloadfs.open). Thread-safe: threads may share it."""

    def __init__(self, path, mode="r"):
        h = ctypes.c_void_p()
        rc = _lib.payload_open(_b(path), 1 if mode == "w" else 0, ctypes.byref(h))
        if rc:
            raise _error(rc)
        self._h = h
        self.path = os.fspath(path)
        self.mode = mode
        self._versions = set()

    def close(self):
        for v in list(self._versions):
            v.release()
        if self._h:
            _lib.payload_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("the store is closed")
        return self._h

    def _get(self, reqs, omit_missing=False):
        """REQS: (path, id, version, range, start, stop) tuples. Two calls:
        the sizes, then the bytes into buffers of those sizes."""
        n = len(reqs)
        if n == 0:
            return []
        arr = (_Get * n)()
        for i, (path, oid, ver, rng, start, stop) in enumerate(reqs):
            arr[i].path = _b(path) if path is not None else None
            arr[i].id = oid
            arr[i].version = ver
            arr[i].range = rng
            arr[i].start = start
            arr[i].stop = stop
        h = self._handle()
        _lib.payload_get_many(h, arr, n)
        bufs = [None] * n
        for i in range(n):
            if arr[i].result == 0:
                bufs[i] = bytearray(arr[i].size)
                arr[i].cap = arr[i].size
                arr[i].buf = ctypes.addressof((ctypes.c_char * len(bufs[i])).from_buffer(bufs[i])) \
                    if arr[i].size else None
        failed = _lib.payload_get_many(h, arr, n)
        out = []
        for i in range(n):
            r = arr[i].result
            if r == -_errno.ERANGE:        # grew between the two calls: once more alone
                out.append(self._get([reqs[i]], omit_missing)[0])
                continue
            if r:
                if omit_missing and r == -_errno.ENOENT:
                    out.append(None)
                    continue
                raise _error(r, "payload_get_many: %s: %s" % (
                    reqs[i][0] if reqs[i][0] is not None else ".by-id/%d" % reqs[i][1],
                    _lib.payload_strerror(r).decode()))
            out.append(bytes(bufs[i][:arr[i].len]))
        del failed
        return out

    @staticmethod
    def _req(key):
        if isinstance(key, int):
            return (None, key, None, _WHOLE, 0, 0)
        if isinstance(key, Version):
            return (None, 0, key._h, _WHOLE, 0, 0)
        return (os.fspath(key), 0, None, _WHOLE, 0, 0)

    def get_many(self, keys):
        """The bytes of every key (a path, possibly with a view suffix
        @rows=A:B / @part=K/N / @meta; an int object id; a Version), in
        one batch. Raises OSError for the first key that failed."""
        return self._get([self._req(k) for k in keys])

    def get(self, key):
        return self.get_many([key])[0]

    def get_iter(self, keys, batch=256, depth=4, max_bytes=256 << 20):
        """Yield the bytes of every key of KEYS in order, reading ahead:
        batches of BATCH keys, up to DEPTH batches and MAX_BYTES bytes in
        flight on the library's queue (payload_queue_*), the GIL released
        while the library works. Raises OSError for a key that failed."""
        from payloadfs import _queue
        return _queue.get_iter(self, keys, batch, depth, max_bytes)

    def read_rows(self, path, start=None, stop=None):
        """The header rows, then data rows [start, stop) (Python slice
        bounds) of the object at PATH: the mount's PATH@rows=start:stop."""
        return self._get([(os.fspath(path), 0, None, _ROWS, 0 if start is None else start,
                           _END if stop is None else stop)])[0]

    def read_bytes(self, path, start=0, stop=None):
        return self._get([(os.fspath(path), 0, None, _BYTES, start,
                           _END if stop is None else stop)])[0]

    def put_many(self, items):
        """Create or replace every PATH: BYTES of ITEMS (a dict, or pairs)
        in ONE transaction: all visible at once, or none on failure.
        Members may be of any size (over 4096 bytes: fragments)."""
        items = list(items.items() if hasattr(items, "items") else items)
        n = len(items)
        if n == 0:
            return
        arr = (_Put * n)()
        keep = []
        for i, (path, data) in enumerate(items):
            data = bytes(data)
            keep.append(data)
            arr[i].path = _b(path)
            arr[i].data = data
            arr[i].len = len(data)
        rc = _lib.payload_put_many(self._handle(), arr, n)
        if rc:
            raise _error(rc)

    def stat(self, path):
        s = _Stat()
        rc = _lib.payload_stat(self._handle(), _b(path), ctypes.byref(s))
        if rc:
            raise _error(rc)
        return Stat(s.id, s.version, s.size, s.rows, s.header_rows, s.mtime_ns)

    def pin(self, path):
        """Pin the current version of PATH (a Version; release() it, or
        use it in a with statement)."""
        h = ctypes.c_void_p()
        rc = _lib.payload_version_get(self._handle(), _b(path), ctypes.byref(h))
        if rc:
            raise _error(rc)
        v = Version(self, h)
        self._versions.add(v)
        return v

    def follow(self, path, timeout=None, rows=True, start=None, poll=False):
        """Follow PATH while writers append to it: a Follower (an iterator;
        close() it, or use it in a with statement) yielding the bytes of
        each whole row as it is committed (rows=False: bytes as committed,
        an incomplete last row too). TIMEOUT: seconds to wait for the next
        row before the iteration ends (None: no limit; close() from another
        thread ends it). START: a byte offset (None: the current end, after
        its last complete row; 0: from the beginning; tell().offset of an
        earlier follower: resume). POLL: check every 5 ms instead of being
        woken by inotify. Raises OSError(ESTALE) when a commit rewrites or
        truncates it, FileNotFoundError when it is unlinked or renamed:
        after every row before it was yielded. payload_follow_next(3)."""
        from .follow import Follower
        return Follower(self, path, timeout=timeout, rows=rows, start=start, poll=poll)

    def open(self, path):
        """A read-only binary file object over PATH (or its view): reads
        are byte-range gets; a plain object is pinned for the file's life,
        so it reads one version throughout."""
        return io.BufferedReader(_Raw(self, os.fspath(path)), buffer_size=1 << 20)


class _Raw(io.RawIOBase):
    def __init__(self, store, path):
        super().__init__()
        self._store = store
        self.name = path
        self._ver = None
        if "@" not in os.path.basename(path):
            self._ver = store.pin(path)
            self._size = self._ver.stat().size
        else:
            self._size = store._size_of(path)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, off, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + off < 0:
            raise OSError(_errno.EINVAL, "negative seek position")
        self._pos = base + off
        return self._pos

    def readinto(self, b):
        want = len(b)
        if want == 0 or self._pos >= self._size:
            return 0
        if self._ver is not None:
            req = (None, 0, self._ver._h, _BYTES, self._pos, self._pos + want)
        else:
            req = (self.name, 0, None, _BYTES, self._pos, self._pos + want)
        data = self._store._get([req])[0]
        n = len(data)
        b[:n] = data
        self._pos += n
        return n

    def close(self):
        if self._ver is not None:
            self._ver.release()
            self._ver = None
        super().close()


def _size_of(self, path):
    arr = (_Get * 1)()
    arr[0].path = _b(path)
    _lib.payload_get_many(self._handle(), arr, 1)
    if arr[0].result:
        raise _error(arr[0].result)
    return arr[0].size


Store._size_of = _size_of


def partitions(store, path, n):
    """Yield the N row-balanced partitions of the object at PATH, as the
    mount's PATH@part=K/N: Partition(index, count, start, stop, view), where
    [start, stop) are data rows (store.read_rows(path, start, stop) reads
    one) and view is the @part path (store.open(view) for pandas)."""
    if n <= 0:
        raise ValueError("n must be positive")
    st = store.stat(path)
    rows = st.rows - st.header_rows
    for k in range(n):
        yield Partition(k, n, k * rows // n, (k + 1) * rows // n, "%s@part=%d/%d" % (path, k, n))
