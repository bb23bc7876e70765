"""payloadfs.zarr — a zarr v2 store (zarr 2.13's store protocol) over a
payloadfs store: each key is an object under ROOT. zarr reads the chunks
of a selection with getitems(keys, on_error="omit") — one
payloadfs get_many batch here — and writes them with setitems(dict) — one
put_many transaction.

    import zarr, payloadfs.zarr
    st = payloadfs.zarr.Store("/srv/store", root="arr", mode="w")
    z = zarr.create(shape=(100, 100), chunks=(10, 10), dtype="f8", store=st)
    z[:] = data

Limits of this version: keys must be flat (zarr arrays with the default
"." separator, no groups: ROOT must exist and a key holds no "/"), and
keys can be neither listed nor deleted (so open arrays with mode "w-",
"r" or "a", not "w", which deletes first).
"""
from zarr.storage import BaseStore

import payloadfs


class Store(BaseStore):
    def __init__(self, store, root="", mode="r"):
        self._store = payloadfs.open(store, mode=mode)
        self._root = root.strip("/")
        self._readable = True
        self._writeable = mode == "w"
        self._erasable = False
        self._listable = False
        self.batches = 0        # getitems calls: how many batches reads took
        self.put_batches = 0    # setitems calls: how many transactions writes took

    def _path(self, key):
        if "/" in key:
            raise KeyError("payloadfs.zarr.Store keys are flat (no '/'): %r" % key)
        return "%s/%s" % (self._root, key) if self._root else key

    def close(self):
        self._store.close()

    def __getitem__(self, key):
        try:
            return self._store.get(self._path(key))
        except FileNotFoundError:
            raise KeyError(key) from None

    def getitems(self, keys, *, on_error="omit"):
        """All of KEYS in one get_many; missing ones are left out."""
        keys = list(keys)
        self.batches += 1
        vals = self._store._get([(self._path(k), 0, None, 0, 0, 0) for k in keys],
                                omit_missing=True)
        return {k: v for k, v in zip(keys, vals) if v is not None}

    def __contains__(self, key):
        try:
            self._store.stat(self._path(key))
            return True
        except (FileNotFoundError, KeyError):
            return False

    def __setitem__(self, key, value):
        self.setitems({key: value})

    def setitems(self, values):
        """All of VALUES in one put_many transaction."""
        self.put_batches += 1
        self._store.put_many({self._path(k): bytes(memoryview(v).cast("B")) if not
                              isinstance(v, bytes) else v for k, v in values.items()})

    def __delitem__(self, key):
        raise OSError("payloadfs.zarr.Store cannot delete keys in this version: %r" % key)

    def __iter__(self):
        raise OSError("payloadfs.zarr.Store cannot list keys in this version")

    def __len__(self):
        raise OSError("payloadfs.zarr.Store cannot list keys in this version")
