#!/usr/bin/env python3
"""gendata — deterministic test data.

  gendata.py csv PATH ROWS [SEED]   CSV: header "id,user,action,value,note"
                                    then ROWS rows of varying length
  gendata.py lines PATH ROWS [SEED] the same rows without a header
  gendata.py bin PATH BYTES [SEED]  incompressible pseudo-random bytes
"""
import random
import sys

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
ACTIONS = ["view", "click", "buy", "share", "login", "logout"]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def rows(n, seed):
    x = seed * 2654435761 % 2147483647 or 1
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7fffffff
        note = " ".join(WORDS[(x >> s) % 8] for s in range(0, (x >> 20) % 9 * 3, 3))
        yield "%d,%s,%s,%d.%02d,%s\n" % (i, USERS[x % 8], ACTIONS[(x >> 8) % 6],
                                         (x >> 4) % 10000, (x >> 12) % 100, note)


def main():
    kind, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    if kind == "bin":
        with open(path, "wb") as f:
            r = random.Random(seed)
            left = n
            while left:
                k = min(left, 1 << 20)
                f.write(r.randbytes(k))
                left -= k
        return
    with open(path, "w") as f:
        if kind == "csv":
            f.write("id,user,action,value,note\n")
        buf = []
        for line in rows(n, seed):
            buf.append(line)
            if len(buf) >= 10000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))


main()
