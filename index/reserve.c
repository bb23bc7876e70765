/* reserve — room kept back so that deletes work on a full file system.
 *
 * LMDB copies every page it changes, so even a transaction that removes
 * records needs new pages; on a full file system an unlink would fail with
 * ENOSPC and no space could ever be freed. A read-write store therefore
 * keeps STORE/index/reserve, a preallocated file of st->reserve_size bytes
 * (1/64 of the file system, clamped to [64 KiB, 4 MiB]).
 *
 * Invariants:
 *  (1) The reserve is given back (truncated to 0) only at the start of a
 *      transaction that frees space (unlink, rmdir, the destruction of an
 *      unlinked inode, the sweeps at mount and unmount:
 *      store_wbegin_freeing), and only when less than the reserve is free.
 *  (2) While it is given back, every other write transaction (creates,
 *      commits, renames, attribute changes: store_wbegin) first tries to
 *      make it again, which needs reserve_size bytes free, and fails with
 *      ENOSPC when it cannot. So the space it returned serves deletes only,
 *      until deletes have freed enough to hold it again.
 *  (3) st->reserve_held changes under commit_lock; reserve_fd and
 *      reserve_size are set at open and immutable after.
 * A reserve file that cannot be opened is logged and the store works
 * without it (invariant 2 then never refuses). One that cannot be made at
 * open, because the file system is already full, counts as given back.
 */
#include "index/store_int.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define RESERVE_MIN ((uint64_t)64 << 10)
#define RESERVE_MAX ((uint64_t)4 << 20)

/* Bytes free for the daemon on the store's file system, or UINT64_MAX when
 * unknown. */
static uint64_t free_bytes(int fd)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* Make the reserve file its full size. Caller holds commit_lock.
 * @return 0 or -errno (ENOSPC: no room for it now). */
static int fill(struct store *st)
{
	int rc = posix_fallocate(st->reserve_fd, 0, (off_t)st->reserve_size);

	if (rc == EOPNOTSUPP || rc == EINVAL) {   /* no fallocate: write zeros */
		static const char zero[4096];
		rc = 0;
		for (uint64_t off = 0; off < st->reserve_size && !rc; off += sizeof(zero))
			if (pwrite(st->reserve_fd, zero, sizeof(zero), (off_t)off) != (ssize_t)sizeof(zero))
				rc = errno ? errno : EIO;
	}
	if (!rc && fsync(st->reserve_fd) < 0)
		rc = errno;
	if (rc) {
		if (ftruncate(st->reserve_fd, 0) < 0)
			log_warn("index reserve: cannot truncate: %s", strerror(errno));
		return -rc;
	}
	st->reserve_held = 1;
	return 0;
}

void store_reserve_open(struct store *st)
{
	char path[4096];
	struct statvfs sv;
	struct stat sb;
	uint64_t size;

	st->reserve_fd = -1;
	snprintf(path, sizeof(path), "%s/index/reserve", st->dir);
	st->reserve_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->reserve_fd < 0 || fstatvfs(st->reserve_fd, &sv) < 0) {
		log_warn("%s: cannot open: %s (deletes may fail on a full file system)", path,
			 strerror(errno));
		if (st->reserve_fd >= 0)
			close(st->reserve_fd);
		st->reserve_fd = -1;
		return;
	}
	size = (uint64_t)sv.f_blocks * sv.f_frsize / 64;
	st->reserve_size = size < RESERVE_MIN ? RESERVE_MIN : size > RESERVE_MAX ? RESERVE_MAX : size;
	if (fstat(st->reserve_fd, &sb) == 0 && (uint64_t)sb.st_blocks * 512 >= st->reserve_size) {
		st->reserve_held = 1;   /* store_open: no other thread yet */
		return;
	}
	if (fill(st))
		log_warn("%s: no room for the %llu-byte reserve: writes fail with ENOSPC until deletes free it",
			 path, (unsigned long long)st->reserve_size);
}

void store_reserve_close(struct store *st)
{
	if (st->reserve_fd >= 0)
		close(st->reserve_fd);
	st->reserve_fd = -1;
}

/* Invariant (1). Caller holds commit_lock. */
static void release_if_full(struct store *st)
{
	if (st->reserve_fd < 0 || !st->reserve_held || free_bytes(st->reserve_fd) >= st->reserve_size)
		return;
	if (ftruncate(st->reserve_fd, 0) < 0) {
		log_warn("index reserve: cannot release: %s", strerror(errno));
		return;
	}
	st->reserve_held = 0;
	log_info("file system full: index reserve of %llu bytes released for a delete",
		 (unsigned long long)st->reserve_size);
}

int store_wbegin_freeing(struct store *st, struct idx_txn **t)
{
	int rc;

	*t = NULL;
	if (st->rdonly)
		return -EROFS;
	store_xlock(st);
	release_if_full(st);
	rc = idx_begin(st->idx, 0, t);
	if (rc)
		store_xunlock(st);
	return rc;
}

int store_reserve_check(struct store *st)
{
	if (st->reserve_fd < 0 || st->reserve_held)
		return 0;
	if (free_bytes(st->reserve_fd) >= st->reserve_size && fill(st) == 0) {
		log_info("index reserve of %llu bytes refilled", (unsigned long long)st->reserve_size);
		return 0;
	}
	return -ENOSPC;
}
