#!/usr/bin/env python3
"""estale.py DIR — 3 processes on 6 small files of DIR, each step a whole
read (page cache) or an O_TRUNC rewrite; prints how many write opens
failed with ESTALE (a writer sent back from a page-cached node must always
get in on the kernel's one retry: fs/fnode.h) and any other errors."""
import os, sys, random, errno, multiprocessing as mp
d = sys.argv[1]
def work(seed):
    r = random.Random(seed); est = 0; opens = 0; other = 0; where = []
    for i in range(4000):
        p = os.path.join(d, "f%d" % r.randrange(6))
        step = "read"
        try:
            if r.random() < 0.5:
                try:
                    fd = os.open(p, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                while os.read(fd, 65536): pass
                os.close(fd)
            else:
                opens += 1
                step = "open"
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                step = "write"
                os.write(fd, os.urandom(r.randrange(100, 20000)))
                step = "close"
                os.close(fd)
        except OSError as e:
            if e.errno == errno.ESTALE:
                est += 1
                where.append(step if r is not None else "?")
            else: other += 1
    if where:
        sys.stderr.write("ESTALE at: %s\n" % ",".join(where))
    return est, opens, other
with mp.Pool(3) as pool:
    res = pool.map(work, [1, 2, 3])
print("ESTALE %d of %d write opens, other errors %d" % (sum(x[0] for x in res), sum(x[1] for x in res), sum(x[2] for x in res)))
