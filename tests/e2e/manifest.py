#!/usr/bin/env python3
"""manifest DIR [--times] — print one line per entry under DIR (sorted,
recursive) so two trees can be compared with diff: path, type, permission
bits, owner, link count and size for non-directories, a SHA-256 of file
content, symlink targets, hard-link groups ("=FIRST" when the inode was
already seen), and with --times the mtime in seconds. The root's .by-id and
.snapshots entries are skipped (they exist only on payloadfs)."""
import hashlib
import os
import stat
import sys


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()[:16]


def main():
    root = sys.argv[1]
    times = "--times" in sys.argv[2:]
    seen = {}
    out = []
    for dirpath, dirs, files in os.walk(root):
        if dirpath == root:
            dirs[:] = [d for d in dirs if d not in (".by-id", ".snapshots")]
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            mode = st.st_mode
            f = [rel, stat.filemode(mode), "%d:%d" % (st.st_uid, st.st_gid)]
            if stat.S_ISDIR(mode):
                pass
            elif st.st_ino in seen:
                f += ["nlink=%d" % st.st_nlink, "=" + seen[st.st_ino]]
            else:
                seen[st.st_ino] = rel
                f += ["nlink=%d" % st.st_nlink]
                if stat.S_ISLNK(mode):
                    f += ["-> " + os.readlink(p)]
                elif stat.S_ISREG(mode):
                    f += ["size=%d" % st.st_size, digest(p)]
            if times and not stat.S_ISLNK(mode):
                f += ["mtime=%d" % st.st_mtime]
            out.append(" ".join(f))
    print("\n".join(out))


main()
