/* fault — named fault points for tests: arm a point to fail its Nth call
 * with a chosen errno. Compiled in when PFS_FAULT_INJECTION is defined
 * (the default build; `make FAULT=0` leaves the points out).
 *
 * Points are armed from the environment at start-up
 * (PAYLOADFS_FAULT="name:nth:errno[,name:nth:errno…]", errno by number or
 * by name such as ENOSPC), or by fault_arm() in unit tests.
 *
 * Names in use: "alloc", "frag_write", "frag_fsync", "frag_rename",
 * "frag_read", "lz4", "lmdb_commit", "staging_write", "uring_init" (the
 * local backend then reads with pread). */
#ifndef PFS_FAULT_H
#define PFS_FAULT_H

#ifdef PFS_FAULT_INJECTION
/* Return 0, or -errno when the point is armed and this is the Nth call
 * since arming (1-based). A point fires once, then disarms. Thread-safe. */
int fault_hit(const char *name);
/* Arm NAME to fail its NTH next call with -ERR (ERR > 0). @return 0, or
 * -EINVAL for a bad argument, -ENOSPC when the table is full. */
int fault_arm(const char *name, unsigned nth, int err);
/* Parse a PAYLOADFS_FAULT-style spec and arm each point. @return 0 or
 * -EINVAL. */
int fault_arm_spec(const char *spec);
/* Disarm every point. */
void fault_reset(void);
#define FAULT(name) fault_hit(name)
#else
#define FAULT(name) 0
static inline int fault_arm_spec(const char *spec) { (void)spec; return 0; }
#endif

#endif
