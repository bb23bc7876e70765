#!/usr/bin/env bats
# handles.bats — the lifetime of open-file handles against what the kernel
# does: a READ ends (for the kernel) inside the writev of its reply, so the
# handle's RELEASE can run before that writev returns; RELEASEs queued at
# unmount are dropped. Both were found by the crash tests (tests/crash)
# under ASan; under the ASan build teardown fails on any sanitizer report.

load helpers

setup() { pfs_init; }
teardown() { pfs_teardown; }

@test "small objects read while they are rewritten: replies never use a released handle" {
	# direct_io: page-cache readers would make some write opens ESTALE
	# (fs/fnode.c), which is not what this test is about
	mount_pfs direct_io
	# each version is "gen sha256(body)\n" + body: a reader can tell a
	# whole version from anything else; the objects are inline (< 4 KiB)
	python3 - "$MNT" <<'PY'
import hashlib, os, random, sys, time
m = sys.argv[1]
names = ["%s/s%d.txt" % (m, i) for i in range(6)]
def version(gen):
    body = os.urandom(random.randint(200, 3000)).hex()[: random.randint(100, 3500)].encode()
    return b"%d %s\n" % (gen, hashlib.sha256(body).hexdigest().encode()) + body
for i, p in enumerate(names):
    with open(p, "wb") as f:
        f.write(version(i))
kids = []
for k in range(3):
    pid = os.fork()
    if pid == 0:
        random.seed(k)
        bad = reads = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 6:
            p = random.choice(names)
            if random.random() < 0.2:
                with open(p, "wb") as f:
                    f.write(version(k * 100000 + reads))
                continue
            if random.random() < 0.1:
                with open(p + "@meta", "rb") as f:
                    bad += b'"version"' not in f.read()
                continue
            with open(p, "rb") as f:
                b = f.read()
            head, _, body = b.partition(b"\n")
            bad += head.split(b" ")[1] != hashlib.sha256(body).hexdigest().encode()
            reads += 1
        print("# worker %d: %d reads, %d bad" % (k, reads, bad))
        os._exit(1 if bad or reads < 50 else 0)
    kids.append(pid)
sys.exit(max(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in kids))
PY
}

@test "handles the kernel never releases (a lazy unmount with files open) are freed at exit" {
	mount_pfs
	echo hi >"$MNT/f"
	mkdir "$MNT/d"
	# hold a file and a directory open across a lazy unmount: their RELEASE
	# comes after the kernel let go of the connection and is usually lost
	python3 - "$MNT" <<'PY'
import os, subprocess, sys
m = sys.argv[1]
fds = [os.open(m + "/f", os.O_RDONLY), os.open(m + "/d", os.O_RDONLY | os.O_DIRECTORY),
       os.open(m + "/f", os.O_WRONLY | os.O_APPEND)]
os.write(fds[2], b"more\n")
os.fsync(fds[2])
subprocess.check_call(["fusermount3", "-uz", m])
for fd in fds:
    try:
        os.close(fd)
    except OSError:
        pass
PY
	wait_daemon_exit
	not_mounted "$MNT"
	# whatever the kernel dropped was freed (under ASan teardown fails on a
	# leak report) and the fsync'ed append is there
	grep -E 'freed [0-9]+ handle|serving' "$LOG" | sed 's/^/# /' >&3
	mount_pfs
	[ "$(cat "$MNT/f")" = "$(printf 'hi\nmore')" ]
}
