/* killpriv — which setuid/setgid bits a change of a file's data clears.
 *
 * A local file system clears them when a caller without CAP_FSETID
 * changes a regular file's data: write(2), open(O_TRUNC), truncate(2),
 * ftruncate(2), fallocate(2), copy_file_range(2) into it (the kernel's
 * file_remove_privs / setattr_should_drop_suidgid). The FUSE daemon must
 * do it itself: payloadfs keeps FUSE_CAP_HANDLE_KILLPRIV (the kernel
 * leaves the bits to the server) and libfuse 3.14 hands the daemon none
 * of the kernel's per-request kill flags (FUSE_WRITE_KILL_SUIDGID,
 * FUSE_OPEN_KILL_SUIDGID, FATTR_KILL_SUIDGID), so ops.c decides from the
 * caller's credentials (fuse_req_ctx: uid, fsgid, pid; the supplementary
 * groups and capabilities from /proc). Page write-back of a shared mapping
 * clears nothing (as on ext4: a mapped store is no write(2)).
 *
 * The rule, as Linux 6.x applies it (an ext4 twin agrees, tests/e2e
 * posix.table "Setuid and setgid on data changes"):
 *  (1) Nothing is cleared for a caller with CAP_FSETID in the daemon's
 *      user namespace, nor on anything but a regular file.
 *  (2) S_ISUID is always cleared.
 *  (3) S_ISGID is cleared when S_IXGRP is set (a real setgid executable),
 *      or when the caller is not in the file's group (neither its fsgid
 *      nor a supplementary group); a setgid file without group execute is
 *      a mandatory-locking mark its group's members keep.
 *  (4) chown(2) (a new owner or group, not a directory) clears S_ISUID
 *      whoever the caller (CAP_FSETID too), and S_ISGID as (3) says but
 *      for any caller when S_IXGRP is set (the kernel's chown_common and
 *      setattr_should_drop_sgid). With FUSE_HANDLE_KILLPRIV granted
 *      (initflags.h) the kernel leaves this to the daemon as well.
 * No FUSE header here: the rule is unit-tested (tests/unit/test_killpriv.c).
 */
#ifndef PFS_KILLPRIV_H
#define PFS_KILLPRIV_H

#include <stddef.h>
#include <stdint.h>

/* What the rule needs to know about the caller. */
struct kp_caller {
	int capable;              /* CAP_FSETID (kp_capable) */
	uint32_t fsgid;           /* the caller's file-system gid */
	const uint32_t *groups;   /* its supplementary groups (may be NULL when */
	size_t ngroups;           /*   kp_need_groups said they are not needed) */
};

/* The bits (S_ISUID | S_ISGID, or 0) a data change by caller C clears
 * from a file of MODE (type bits included) and group GID: rules (1)-(3). */
uint32_t kp_kill_mask(uint32_t mode, uint32_t gid, const struct kp_caller *c);

/* The bits a chown by caller C clears from a file of MODE and group GID
 * (its group before the chown): rule (4). */
uint32_t kp_chown_mask(uint32_t mode, uint32_t gid, const struct kp_caller *c);

/* 1 when kp_kill_mask must see the caller's supplementary groups to
 * decide for a file of MODE and group GID owned by a caller of FSGID
 * (rule 3, a setgid file without group execute outside the caller's
 * fsgid); 0 when the groups cannot change the answer. */
int kp_need_groups(uint32_t mode, uint32_t gid, uint32_t fsgid);

/* Whether thread PID (in the daemon's pid namespace, as FUSE reports it)
 * has CAP_FSETID in its effective set and lives in the daemon's user
 * namespace (capable(CAP_FSETID) of the kernel). A thread that is gone,
 * or whose /proc entry cannot be read, is taken as NOT capable: the bits
 * are then cleared, the safe side. PID 0 (a request the kernel makes on
 * its own) is not capable either. @return 1 or 0. */
int kp_capable(uint32_t pid);

#endif
