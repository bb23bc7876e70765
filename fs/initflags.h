/* initflags — grant the kernel FUSE_PARALLEL_DIROPS and
 * FUSE_HANDLE_KILLPRIV, which libfuse 3.14 does not pass on (issue 13 §5;
 * fs/killpriv.h).
 *
 * pfs_init asks for FUSE_CAP_PARALLEL_DIROPS and FUSE_CAP_HANDLE_KILLPRIV,
 * but libfuse 3.14.0's do_init sets neither in its INIT reply (it marks
 * them capable and has no reply line for them; measured: the kernel
 * offers flags 0x73fffffb, libfuse replies 0x4040f029, bits 18 and 19
 * clear). Without PARALLEL_DIROPS the kernel serializes every LOOKUP in a
 * directory behind the directory's fuse_inode mutex (fuse_lock_inode), so
 * N readers opening views of one object wait for each other's lookups, a
 * cold view's lookup holding the mutex for its fragment read
 * (docs/benchmarks.md "Many readers at once"). Without HANDLE_KILLPRIV
 * the kernel also clears setuid/setgid itself, from its cached mode, on
 * top of the daemon's rule (killpriv.h), and hides any error of the
 * daemon's own.
 *
 * The daemon's device I/O goes through fuse_session_custom_io (fs/main.c):
 * initflags_seen_request() sees every request read, initflags_patch_reply()
 * every reply and notice written. Invariants:
 *  (1) Only the reply to the INIT request (same unique, error 0, an
 *      fuse_init_out) is ever changed, and only by setting bits of
 *      INITFLAGS_GRANT in its flags, each only when that INIT request
 *      offered it (the kernel supports it). Every other byte written is
 *      the caller's.
 *  (2) The daemon is safe with parallel lookups and readdirs in one
 *      directory: the kernel still takes the directory's i_rwsem shared
 *      for them and exclusive for every change, so only lookup/lookup and
 *      lookup/readdir run together, as they already did across
 *      directories (fnode tables are under fn_lock, index reads are LMDB
 *      read transactions).
 *  (3) It happens at most once per session; with a libfuse that already
 *      sets the flag the patch changes nothing.
 *  (4) With HANDLE_KILLPRIV the kernel leaves setuid/setgid on write,
 *      truncate and chown to the daemon, which applies Linux's rule from
 *      the caller's credentials (killpriv.h; ops.c).
 * No FUSE headers here: the structs are the kernel's (linux/fuse.h), so
 * the logic is unit-tested without a mount (tests/unit/test_initflags.c).
 */
#ifndef PFS_INITFLAGS_H
#define PFS_INITFLAGS_H

#include <stddef.h>
#include <sys/uio.h>

/* A request of LEN bytes was read from the device into BUF. */
void initflags_seen_request(const void *buf, size_t len);

/* A reply or notice (IOV, COUNT) is about to be written: patch it when it
 * is the INIT reply (invariant 1). @return 1 when it was patched. */
int initflags_patch_reply(struct iovec *iov, int count);

/* 1 once the INIT reply granted parallel directory operations (.stats). */
int initflags_parallel_dirops(void);
/* 1 once it granted FUSE_HANDLE_KILLPRIV. */
int initflags_handle_killpriv(void);

/* Forget the session (tests). */
void initflags_reset(void);

#endif
