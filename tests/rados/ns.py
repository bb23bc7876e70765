#!/usr/bin/python3
"""ns.py — a test store's objects in one RADOS namespace of the throwaway
test cluster (tests/rados/cluster.sh), for the e2e tests' RADOS mode
(tests/e2e/helpers.bash):

  ns.py images CONF POOL NS     the image objects (16 hex digits), sorted,
                                one a line
  ns.py bytes CONF POOL NS      the images' total size in bytes
  ns.py purge CONF POOL NS...   remove every object of the namespaces
                                (images, head, log objects, bases), all
                                removes of a namespace in flight at once

Exit 0, or 1 with a one-line reason on stderr; 2 for bad usage."""
import re
import sys

import rados

IMAGE = re.compile(r"^[0-9a-f]{16}$")


def connect(conf):
    c = rados.Rados(conffile=conf, conf={"client_mount_timeout": "30",
                                         "rados_osd_op_timeout": "30",
                                         "rados_mon_op_timeout": "30"})
    c.connect()
    return c


def images(io):
    return sorted(o.key for o in io.list_objects() if IMAGE.match(o.key))


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in ("images", "bytes", "purge") or \
            (sys.argv[1] != "purge" and len(sys.argv) != 5):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    cmd, conf, pool, spaces = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    c = connect(conf)
    try:
        io = c.open_ioctx(pool)
        try:
            for ns in spaces:
                if not ns:
                    continue
                io.set_namespace(ns)
                if cmd == "images":
                    for name in images(io):
                        print(name)
                elif cmd == "bytes":
                    print(sum(io.stat(name)[0] for name in images(io)))
                else:
                    comps = [io.aio_remove(o.key) for o in io.list_objects()]
                    for comp in comps:
                        comp.wait_for_complete()
        finally:
            io.close()
    finally:
        c.shutdown()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except rados.Error as e:
        print("ns.py: %s" % e, file=sys.stderr)
        sys.exit(1)
