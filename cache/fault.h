/* fault — named fault points for tests: arm a point to fail its Nth call
 * with a chosen errno. Compiled in when PFS_FAULT_INJECTION is defined
 * (the default build; `make FAULT=0` leaves the points out).
 *
 * Points are armed from the environment at start-up
 * (PAYLOADFS_FAULT="name:nth:errno[,name:nth:errno…]", errno by number or
 * by name such as ENOSPC), or by fault_arm() in unit tests.
 *
 * Every firing is logged at warning level: "fault point NAME fired: WHY
 * (injected)", so an end-to-end test can tell that its point was reached.
 *
 * The action KILL instead of an errno (`frag_fsync:3:KILL`) makes the Nth
 * call kill the whole process with SIGKILL, after one line on stderr
 * ("fault: NAME: killing the process (monotonic SECONDS)", the time of
 * CLOCK_MONOTONIC): the crash tests (tests/crash/) use it to die at a
 * chosen step of the commit protocol.
 *
 * Names in use (docs/design.md "Fault points" says what each one proves):
 *   alloc          fcache, memory-backend and wjob allocations
 *   frag_write     writing a fragment image (put; local and RADOS backends)
 *   frag_fsync     the sync of a commit's new images: opening an image or
 *                  folder for fsync, or its syncfs; each RADOS sync call
 *   frag_read      opening an image for a batched read (RADOS: each request)
 *   uring_init     the ring at open (the local backend then uses pread)
 *   uring_submit   one io_uring submission (the batch finishes with pread)
 *   uring_complete one io_uring completion (that read fails)
 *   lz4            encoding a fragment (lz4 compression)
 *   lz4_decode     decompressing an lz4 fragment
 *   lmdb_commit    committing any index write transaction
 *   staging_write  appending to a handle's staging log
 *   staging_read   reading staged bytes back (commit, read of a writer)
 *   lmdb_sync      flushing the index (store_sync: fsync(2), index/durable.c)
 *   rlog_append    a RADOS store's log append, before anything is sent
 *                  (KILL: the writer dies with the entry not in the log)
 *   rlog_read      each page of a log read (cache/rlog.c)
 *   rlog_renew     each renewal of the writer's lease (cache/rlog_writer.c)
 *   rlog_base      a base's chunks written, the base not yet recorded
 *   rlog_watch     each new attempt of the watch keeper to watch the head
 *   follow_delay   a commit's or a swap's follower move (fs/ops.c (6g), (6h)): when it
 *                  fires, the move waits 1 s first (the errno is ignored)
 *   commit_member  a commit round's member (RADOS writer, index/gcommit.c)
 *                  has its txn and is about to run its operation (the
 *                  member fails; tests hook it to hold a member there)
 *
 * Crash points (FAULT_CRASH: only KILL has an effect there; an errno armed
 * on them is counted and ignored):
 *   commit_txn     a commit's images are written and synced, its index txn
 *                  not begun
 *   put_txn        a store_put_many's large members' images are written
 *                  and synced, its index txn not begun (index/ns.c (9))
 *   commit_release its txn committed, the images it freed not released yet
 *   frag_release   before each freed image is deleted (at once with -o sync
 *                  or storage=memory, else once a flush covers its release)
 *   lmdb_committed right after any index txn committed
 *   staging_spill  a spill file was created and filled, not yet in use
 *   sweep_staging  before each staging file is removed at mount
 *   sweep_frag     before each unreferenced image is removed at mount
 *   rlog_appended  a log append acknowledged (durable), watchers not yet
 *                  notified (the writer dies with the entry in the log)
 *   recompress_txn the background pass's compressed image is durable, its
 *                  swap txn not begun (index/recompress.c (S5))
 *   recompress_release  the swap txn committed, the raw image not released
 *   pend_read      a pending create (index/ns.c (P3)) read the index, its
 *                  name not re-checked in st->pend yet (unit tests hook it)
 *   pver_read      a cold version load read the index, its images not
 *                  pinned yet (unit tests hook it: index/pver.c (7))
 * lmdb_commit counts every index write txn, the mount's own (its sweep)
 * included: tests/crash/cases.py says which one it aims at. */
#ifndef PFS_FAULT_H
#define PFS_FAULT_H

#ifdef PFS_FAULT_INJECTION
/* Return 0, or -errno when the point is armed and this is the Nth call
 * since arming (1-based). A point fires once, then disarms. Thread-safe. */
int fault_hit(const char *name);
/* Action for fault_arm(): kill the process instead of failing the call
 * (above every errno, so never mistaken for one). */
#define FAULT_KILL 4096
/* Arm NAME to fail its NTH next call with -ERR (0 < ERR < FAULT_KILL), or
 * to kill the process there (ERR == FAULT_KILL). @return 0, or -EINVAL for
 * a bad argument, -ENOSPC when the table is full. */
int fault_arm(const char *name, unsigned nth, int err);
/* Parse a PAYLOADFS_FAULT-style spec and arm each point. @return 0 or
 * -EINVAL. */
int fault_arm_spec(const char *spec);
/* Unit tests: call FN(ARG) at every call of point NAME (on the caller's
 * thread, no lock held), until fault_reset(); an armed errno of the same
 * point still fires after it. For interleavings: a hook can block the
 * point's thread until the test lets it go. @return 0, -EINVAL, -ENOSPC
 * (4 hooks at most). */
int fault_hook(const char *name, void (*fn)(void *arg), void *arg);
/* How many times NAME fired since the last fault_reset(). */
unsigned fault_fired(const char *name);
/* Disarm every point and zero the counts. */
void fault_reset(void);
#define FAULT(name) fault_hit(name)
#define FAULT_CRASH(name) ((void)fault_hit(name))
#else
#define FAULT(name) 0
#define FAULT_CRASH(name) ((void)0)
static inline int fault_arm_spec(const char *spec) { (void)spec; return 0; }
#endif

#endif
