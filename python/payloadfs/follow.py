"""Following a growing object (Store.follow; payload_follow_* in payload(3)).

    with payloadfs.open("/srv/store") as store:
        with store.follow("logs/events.csv", timeout=5) as rows:
            for row in rows:           # bytes of one whole row, ending in b"\\n"
                handle(row)            # ends after 5 s without a new row

A follower returns what writers commit (close or fsync through the mount,
put_many) while each commit is an append that keeps every byte it had
returned; a rewrite or truncate raises OSError(ESTALE), an unlink or
rename FileNotFoundError, both after every row before them was yielded.
`tell().offset` is where to resume (start=). The GIL is released while
the library waits; close() (from any thread) stops an iteration that is
waiting, which then ends.
"""
import collections
import ctypes
import errno as _errno

Position = collections.namedtuple("Position", "offset version size")

_END = (1 << 63) - 1
_ROWS, _BYTES, _POLL = 0, 1, 2
_SLICE_MS = 250          # a wait without limit waits in slices: Ctrl-C works


class _Pos(ctypes.Structure):
    _fields_ = [("offset", ctypes.c_uint64), ("version", ctypes.c_uint64),
                ("size", ctypes.c_uint64), ("row_len", ctypes.c_uint64)]


def _setup(lib):
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    for name, res, args in [
            ("payload_follow_open", ctypes.c_int,
             [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_int64, ctypes.POINTER(vp)]),
            ("payload_follow_next", ctypes.c_ssize_t, [vp, vp, sz, ctypes.c_int]),
            ("payload_follow_tell", ctypes.c_int, [vp, ctypes.POINTER(_Pos)]),
            ("payload_follow_cancel", None, [vp]),
            ("payload_follow_close", None, [vp])]:
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


class Follower:
    """Iterate for rows (rows=True: bytes of one whole row each) or
    chunks (rows=False: bytes as committed). See Store.follow."""

    def __init__(self, store, path, timeout=None, rows=True, start=None, poll=False,
                 bufsize=1 << 16):
        from . import _lib, _error, _b
        self._lib, self._error = _lib, _error
        flags = (_ROWS if rows else _BYTES) | (_POLL if poll else 0)
        h = ctypes.c_void_p()
        rc = _lib.payload_follow_open(store._handle(), _b(path), flags,
                                      _END if start is None else int(start), ctypes.byref(h))
        if rc:
            raise _error(rc)
        self._h = h
        self._rows = rows
        self._timeout = timeout
        self._buf = ctypes.create_string_buffer(bufsize)
        self._pending = collections.deque()
        self._closed = False
        self._busy = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._pending:
            return self._pending.popleft()
        if self._closed or not self._h:
            self._free()
            raise StopIteration
        n = self._pull()
        if n == 0:
            raise StopIteration
        data = self._buf.raw[:n]
        if not self._rows:
            return data
        if not data.endswith(b"\n"):
            return data                       # fixed:N records: whole ones
        rows = [r + b"\n" for r in data[:-1].split(b"\n")]
        self._pending.extend(rows[1:])
        return rows[0]

    def _pull(self):
        left = None if self._timeout is None else int(self._timeout * 1000)
        self._busy = True
        try:
            while True:
                if self._closed:
                    return 0
                ms = _SLICE_MS if left is None else min(left, _SLICE_MS)
                n = self._lib.payload_follow_next(self._h, self._buf, len(self._buf), ms)
                if n == -_errno.ERANGE:         # a row longer than the buffer
                    p = _Pos()
                    self._lib.payload_follow_tell(self._h, ctypes.byref(p))
                    self._buf = ctypes.create_string_buffer(int(p.row_len))
                    continue
                if n == -_errno.ECANCELED:
                    self._closed = True
                    return 0
                if n < 0:
                    raise self._error(n)
                if n > 0:
                    return n
                if left is not None:
                    left -= ms
                    if left <= 0:
                        return 0
        finally:
            self._busy = False
            if self._closed:
                self._free()

    def tell(self):
        """Position(offset, version, size): OFFSET is the next byte the
        follower returns (rows yielded so far end there, less any rows
        still held back in this object); start=OFFSET resumes."""
        p = _Pos()
        if not self._h:
            raise ValueError("the follower is closed")
        self._lib.payload_follow_tell(self._h, ctypes.byref(p))
        back = sum(len(r) for r in self._pending)
        return Position(p.offset - back, p.version, p.size)

    def close(self):
        """Stop: a waiting iteration (in another thread) ends, so does every
        later one. Safe from any thread, and more than once."""
        self._closed = True
        if self._h:
            self._lib.payload_follow_cancel(self._h)
            if not self._busy:
                self._free()

    def _free(self):
        h, self._h = self._h, None
        if h:
            self._lib.payload_follow_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None) and not self._busy:
            self._free()
