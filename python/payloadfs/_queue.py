"""Store.get_iter: a stream of batched gets through libpayload's queue
(payload_queue_*, payload(3) "Asynchronous get"): up to DEPTH batches in
flight on the store's worker pool, at most MAX_BYTES of buffers, the
results yielded in the keys' order. ctypes releases the GIL during every
library call, so other threads run while a batch is read."""
import ctypes
import errno as _errno

import payloadfs as _p

_lib = _p._lib
_NOWAIT = 1


class _Completion(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_void_p), ("reqs", ctypes.POINTER(_p._Get)),
                ("n", ctypes.c_size_t), ("failed", ctypes.c_int)]


_vp, _sz = ctypes.c_void_p, ctypes.c_size_t
for _name, _res, _args in [
        ("payload_queue_open", ctypes.c_int, [_vp, ctypes.c_uint, ctypes.c_uint64, ctypes.POINTER(_vp)]),
        ("payload_queue_submit", ctypes.c_int, [_vp, ctypes.POINTER(_p._Get), _sz, _vp, ctypes.c_int]),
        ("payload_queue_wait", ctypes.c_int, [_vp, ctypes.POINTER(_Completion), _sz, ctypes.c_int]),
        ("payload_queue_close", None, [_vp])]:
    _f = getattr(_lib, _name)
    _f.restype = _res
    _f.argtypes = _args


def get_iter(store, keys, batch=256, depth=4, max_bytes=256 << 20):
    """Yield the bytes of every key of KEYS (an iterable, read lazily), in
    order. Each batch's sizes are learnt first (a payload_get_many with no
    buffers), then the batch goes to the queue; a batch alone larger than
    MAX_BYTES is read on its own (synchronously)."""
    h = store._handle()
    q = _vp()
    rc = _lib.payload_queue_open(h, depth, max_bytes, ctypes.byref(q))
    if rc:
        raise _p._error(rc)
    pending = []                      # (keys' reqs, arr, bufs), oldest first
    done = _Completion()

    def reap():
        n = _lib.payload_queue_wait(q, ctypes.byref(done), 1, -1)
        if n < 0:
            raise _p._error(n)
        reqs, arr, bufs = pending.pop(0)
        out = []
        for i in range(len(reqs)):
            r = arr[i].result
            if r == -_errno.ERANGE:   # grew since its size was learnt
                out.append(store._get([reqs[i]])[0])
            elif r:
                raise _p._error(r, "payload_get_many: %s: %s" % (
                    reqs[i][0] if reqs[i][0] is not None else ".by-id/%d" % reqs[i][1],
                    _lib.payload_strerror(r).decode()))
            else:
                out.append(bytes(bufs[i][:arr[i].len]))
        return out

    def submit(reqs):
        n = len(reqs)
        arr = (_p._Get * n)()
        for i, (path, oid, ver, rng, start, stop) in enumerate(reqs):
            arr[i].path = _p._b(path) if path is not None else None
            arr[i].id, arr[i].version, arr[i].range = oid, ver, rng
            arr[i].start, arr[i].stop = start, stop
        _lib.payload_get_many(h, arr, n)           # the sizes
        bufs = [None] * n
        for i in range(n):
            if arr[i].result == 0 and arr[i].size:
                bufs[i] = bytearray(arr[i].size)
                arr[i].cap = arr[i].size
                arr[i].buf = ctypes.addressof((ctypes.c_char * arr[i].size).from_buffer(bufs[i]))
            elif arr[i].result == 0:
                bufs[i] = b""
        while True:
            rc = _lib.payload_queue_submit(q, arr, n, None, _NOWAIT)
            if rc == 0:
                pending.append((reqs, arr, bufs))
                return []
            if rc == -_errno.E2BIG:          # alone: after every older batch
                while pending:
                    yield_now.extend(reap())
                return store._get(reqs)
            if rc != -_errno.EAGAIN or not pending:
                raise _p._error(rc)
            yield_now.extend(reap())

    yield_now = []
    try:
        reqs = []
        for key in keys:
            reqs.append(store._req(key))
            if len(reqs) == batch:
                yield_now.extend(submit(reqs))   # ordered: E2BIG batches only when nothing pends
                reqs = []
            while yield_now:
                yield yield_now.pop(0)
        if reqs:
            yield_now.extend(submit(reqs))
        while yield_now:
            yield yield_now.pop(0)
        while pending:
            for b in reap():
                yield b
    finally:
        _lib.payload_queue_close(q)
