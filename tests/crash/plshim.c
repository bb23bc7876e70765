/* plshim — an LD_PRELOAD shim for the power-loss explorer (powerloss.py):
 * it records every call that changes a file or a directory under one
 * root (the store), with the bytes written, into a trace that
 * pltrace.py replays into the states a power cut could leave.
 * For tests only: nothing in index/, cache/ or fs/ knows of it.
 *
 * Environment:
 *   PFS_TRACE=FILE            append the records to FILE (nothing is
 *                             recorded without it)
 *   PFS_TRACE_ROOT=DIR        record only paths under DIR (absolute, no
 *                             symlink in it)
 *   PFS_SHIM_URING=allow      let io_uring rings be set up (by default
 *                             io_uring_queue_init fails with ENOSYS, so the
 *                             daemon reads with pread and fsyncs with
 *                             fsync(2), which the shim sees; see below)
 *   PFS_SHIM_META_SYNC_DELAY_MS=N
 *                             delay by N ms the return of an fsync or
 *                             fdatasync of an LMDB data.mdb when nothing
 *                             but its meta pages (its first 8 KiB) was
 *                             written to it since its last sync began:
 *                             that is the daemon's index flush
 *                             (store_sync: fsync(2), the syncer, unmount),
 *                             not a commit's own flush. Widens the window
 *                             of issue 10 §1 (a).
 *
 * Invariants:
 *  (1) A record is appended after the call it describes returned (a
 *      write's bytes are in the page cache by then), in one write(2) to an
 *      O_APPEND file under rec_lock: the trace order is a total order in
 *      which every call that returned before another began comes first.
 *      Two exceptions keep that true where it matters: a close is recorded
 *      BEFORE the descriptor is closed (so another thread's open that gets
 *      the same number is recorded after it), and a sync is two records,
 *      SYNC_BEGIN before the call and SYNC_END after it returned (only what
 *      was recorded before the BEGIN is covered by it).
 *  (2) A descriptor is tracked from its OPEN record to its CLOSE record.
 *      Every data call on a tracked descriptor checks that the descriptor
 *      still names the inode it was opened on (a number closed behind our
 *      back, by closedir's internal close, and reused for a socket is then
 *      dropped, not recorded).
 *  (3) What the shim cannot see is recorded as such, never ignored: a
 *      shared writable mmap of a tracked file (MMAPW), an io_uring
 *      submission (URING), a copy_file_range/sendfile/splice into a
 *      tracked file (UNSUPP). The explorer refuses a trace that has them
 *      where they could change the store (lock.mdb's mmap is LMDB's reader
 *      table, rebuilt at every open, and is allowed).
 *
 * The record layout (little-endian) is struct rec below followed by path1,
 * path2 and the data; pltrace.py reads it (REC_FMT there).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum rec_type {
	R_OPEN = 1,    /* fd, a = open flags, b = st_mode, ino; flags F_CREATED */
	R_CLOSE = 2,   /* fd */
	R_WRITE = 3,   /* fd, a = offset, data; flags F_DSYNC for an O_DSYNC/O_SYNC fd */
	R_TRUNC = 4,   /* fd (or -1 and path1), a = length */
	R_FALLOC = 5,  /* fd, a = offset, b = length, flags = fallocate mode */
	R_SYNC_BEGIN = 6, /* fd (-1 for sync), flags = SK_* */
	R_SYNC_END = 7,   /* fd, flags = SK_*, ret = 0 or -errno */
	R_UNLINK = 8,  /* path1 */
	R_RMDIR = 9,   /* path1 */
	R_MKDIR = 10,  /* path1 */
	R_RENAME = 11, /* path1 -> path2, flags = renameat2 flags */
	R_LINK = 12,   /* path1 -> path2 */
	R_MMAPW = 13,  /* fd: a shared writable mapping of a tracked file */
	R_MSYNC = 14,  /* a = length */
	R_URING = 15,  /* flags 1: a ring was refused, 2: a submission was seen */
	R_UNSUPP = 16, /* fd: a call into a tracked file the shim cannot replay; path1 names it */
	R_MARK = 20,   /* written by the workload, not here: data = JSON */
	R_SFR = 21,    /* sync_file_range: fd, a = offset, b = nbytes, flags = its flags */
};

enum { F_CREATED = 1, F_DSYNC = 2 };
enum { SK_FSYNC = 1, SK_FDATASYNC = 2, SK_SYNCFS = 3, SK_SYNC = 4 };

struct rec {
	uint32_t len;          /* of the whole record */
	uint16_t type, flags;
	uint32_t pid, tid;
	int32_t fd, ret;
	int64_t a, b;
	uint64_t ino, t_ns;    /* t_ns: CLOCK_MONOTONIC */
	uint32_t n1, n2, ndata, pad;
} __attribute__((packed));

#define MAX_FD 65536

struct fdinfo {
	uint64_t ino;          /* 0: not tracked */
	int dsync;             /* opened with O_DSYNC or O_SYNC */
	int meta_db;           /* an LMDB data.mdb */
	char *path;            /* absolute */
};

static struct fdinfo fds[MAX_FD];       /* protected by fd_lock */
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -1;               /* set once by the constructor */
static char root[PATH_MAX];
static size_t root_len;
static int allow_uring;
static long meta_delay_ms;
/* data.mdb files: pages (beyond the meta pages) written since the last
 * sync began, by inode. Protected by fd_lock. */
static struct { uint64_t ino; int pages; } dbs[16];

#define REAL(name) real_##name
#define DECL(ret, name, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	ret name(__VA_ARGS__)
#define RESOLVE(name) \
	do { if (!real_##name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name); } while (0)

static ssize_t (*raw_write)(int, const void *, size_t);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *t = getenv("PFS_TRACE"), *r = getenv("PFS_TRACE_ROOT"), *d;
	int (*ropen)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");

	raw_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (!t || !r || !*r || r[0] != '/' || strlen(r) >= sizeof(root))
		return;
	strcpy(root, r);
	root_len = strlen(root);
	while (root_len > 1 && root[root_len - 1] == '/')
		root[--root_len] = '\0';
	allow_uring = (d = getenv("PFS_SHIM_URING")) && !strcmp(d, "allow");
	meta_delay_ms = (d = getenv("PFS_SHIM_META_SYNC_DELAY_MS")) ? atol(d) : 0;
	trace_fd = ropen(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (trace_fd < 0) {
		fprintf(stderr, "plshim: %s: %s\n", t, strerror(errno));
		abort();     /* a trace that silently records nothing would pass every check */
	}
}

/* Append one record (invariant 1). A trace that cannot be written is a
 * broken test: abort rather than leave a trace with a hole. */
static void emit(struct rec *h, const char *p1, const char *p2, const struct iovec *data, int ndata)
{
	size_t n1 = p1 ? strlen(p1) : 0, n2 = p2 ? strlen(p2) : 0, nd = 0, len;
	char *buf, *q;

	for (int i = 0; i < ndata; i++)
		nd += data[i].iov_len;
	len = sizeof(*h) + n1 + n2 + nd;
	if (!(buf = malloc(len)))
		abort();
	h->len = (uint32_t)len;
	h->pid = (uint32_t)getpid();
	h->tid = (uint32_t)syscall(SYS_gettid);
	h->n1 = (uint32_t)n1;
	h->n2 = (uint32_t)n2;
	h->ndata = (uint32_t)nd;
	h->pad = 0;
	h->t_ns = now_ns();
	q = buf + sizeof(*h);
	memcpy(q, p1, n1), q += n1;
	memcpy(q, p2, n2), q += n2;
	for (int i = 0; i < ndata; i++)
		memcpy(q, data[i].iov_base, data[i].iov_len), q += data[i].iov_len;
	pthread_mutex_lock(&rec_lock);
	h->t_ns = now_ns();
	memcpy(buf, h, sizeof(*h));
	for (size_t off = 0; off < len;) {
		ssize_t w = raw_write(trace_fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	pthread_mutex_unlock(&rec_lock);
	free(buf);
}

static void emit_simple(int type, int flags, int fd, int ret, int64_t a, int64_t b, uint64_t ino,
			const char *p1, const char *p2)
{
	struct rec h = { .type = (uint16_t)type, .flags = (uint16_t)flags, .fd = fd, .ret = ret,
			 .a = a, .b = b, .ino = ino };

	emit(&h, p1, p2, NULL, 0);
}

static int under_root(const char *p)
{
	return root_len && !strncmp(p, root, root_len) && (p[root_len] == '\0' || p[root_len] == '/');
}

/* The absolute path of DIRFD/NAME in OUT (PATH_MAX). @return 0, or -1
 * when it cannot be known (then nothing is recorded for it). */
static int resolve(int dirfd, const char *name, char *out)
{
	char base[PATH_MAX];

	if (!name)
		return -1;
	if (name[0] == '/') {
		if (strlen(name) >= PATH_MAX)
			return -1;
		strcpy(out, name);
		return 0;
	}
	if (dirfd == AT_FDCWD) {
		if (!getcwd(base, sizeof(base)))
			return -1;
	} else {
		char link[64];
		ssize_t n;

		pthread_mutex_lock(&fd_lock);
		if (dirfd >= 0 && dirfd < MAX_FD && fds[dirfd].ino && fds[dirfd].path) {
			snprintf(base, sizeof(base), "%s", fds[dirfd].path);
			n = (ssize_t)strlen(base);
		} else {
			n = -1;
		}
		pthread_mutex_unlock(&fd_lock);
		if (n < 0) {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
			n = readlink(link, base, sizeof(base) - 1);
			if (n < 0)
				return -1;
			base[n] = '\0';
		}
	}
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", base, name) >= PATH_MAX)
		return -1;
	/* "./x" and "x/." never occur in the daemon's calls; keep paths plain */
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int db_slot(uint64_t ino)   /* caller holds fd_lock */
{
	for (int i = 0; i < 16; i++)
		if (dbs[i].ino == ino)
			return i;
	for (int i = 0; i < 16; i++)
		if (!dbs[i].ino) {
			dbs[i].ino = ino;
			dbs[i].pages = 1;
			return i;
		}
	return -1;
}

/* After a successful open of PATH as FD: track it and record R_OPEN. */
static void opened(int fd, const char *path, int flags, int created)
{
	struct stat sb;
	struct fdinfo fi = { 0 };

	if (trace_fd < 0 || fd < 0 || fd >= MAX_FD || !under_root(path) || fstat(fd, &sb) < 0)
		return;
	fi.ino = sb.st_ino ? (uint64_t)sb.st_ino : 1;
	fi.dsync = (flags & O_DSYNC) != 0;   /* O_SYNC includes O_DSYNC */
	fi.meta_db = S_ISREG(sb.st_mode) && !strcmp(base_name(path), "data.mdb");
	fi.path = strdup(path);
	pthread_mutex_lock(&fd_lock);
	free(fds[fd].path);
	fds[fd] = fi;
	if (fi.meta_db)
		(void)db_slot(fi.ino);
	pthread_mutex_unlock(&fd_lock);
	emit_simple(R_OPEN, created ? F_CREATED : 0, fd, 0, flags, sb.st_mode, fi.ino, path, NULL);
}

/* Is FD tracked (invariant 2)? Fills *FI (path not copied). */
static int tracked(int fd, struct fdinfo *fi)
{
	struct stat sb;
	int ok;

	if (trace_fd < 0 || fd < 0 || fd >= MAX_FD)
		return 0;
	pthread_mutex_lock(&fd_lock);
	*fi = fds[fd];
	pthread_mutex_unlock(&fd_lock);
	if (!fi->ino)
		return 0;
	ok = fstat(fd, &sb) == 0 && ((uint64_t)sb.st_ino ? (uint64_t)sb.st_ino : 1) == fi->ino;
	if (!ok) {
		pthread_mutex_lock(&fd_lock);
		if (fds[fd].ino == fi->ino) {
			free(fds[fd].path);
			memset(&fds[fd], 0, sizeof(fds[fd]));
		}
		pthread_mutex_unlock(&fd_lock);
	}
	return ok;
}

static void untrack(int fd)
{
	struct fdinfo fi;

	if (trace_fd < 0 || fd < 0 || fd >= MAX_FD)
		return;
	pthread_mutex_lock(&fd_lock);
	fi = fds[fd];
	memset(&fds[fd], 0, sizeof(fds[fd]));
	pthread_mutex_unlock(&fd_lock);
	if (fi.ino) {
		emit_simple(R_CLOSE, 0, fd, 0, 0, 0, fi.ino, fi.path, NULL);
		free(fi.path);
	}
}

/* A write of the bytes IOV (N iovecs, RET bytes taken) at OFF to FD. */
static void wrote(int fd, const struct fdinfo *fi, int64_t off, const struct iovec *iov, int n, ssize_t ret)
{
	struct iovec v[64];
	struct rec h = { .type = R_WRITE, .flags = fi->dsync ? F_DSYNC : 0, .fd = fd, .a = off,
			 .ino = fi->ino };
	size_t left = (size_t)ret;
	int k = 0;

	for (int i = 0; i < n && left; i++) {
		size_t l = iov[i].iov_len < left ? iov[i].iov_len : left;
		if (k == 64) {       /* more iovecs than fit: one record each batch */
			emit(&h, fi->path, NULL, v, k);
			for (int j = 0; j < k; j++)
				h.a += (int64_t)v[j].iov_len;
			k = 0;
		}
		v[k].iov_base = iov[i].iov_base;
		v[k++].iov_len = l;
		left -= l;
	}
	if (fi->meta_db && off + ret > 8192) {
		pthread_mutex_lock(&fd_lock);
		int s = db_slot(fi->ino);
		if (s >= 0)
			dbs[s].pages = 1;
		pthread_mutex_unlock(&fd_lock);
	}
	emit(&h, fi->path, NULL, v, k);
}

/* ---- open ---- */

static int existed(int dirfd, const char *path)
{
	struct stat sb;

	return fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

static int do_openat(int (*fn)(int, const char *, int, ...), int dirfd, const char *path,
		     int flags, mode_t mode)
{
	char abs[PATH_MAX];
	int want = trace_fd >= 0 && resolve(dirfd, path, abs) == 0 && under_root(abs);
	int pre = want && (flags & O_CREAT) ? existed(dirfd, path) : 1;
	int fd = fn(dirfd, path, flags, mode);

	if (want && fd >= 0) {
		int e = errno;
		opened(fd, abs, flags, !pre);
		errno = e;
	}
	return fd;
}

static mode_t va_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

DECL(int, openat, int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	RESOLVE(openat);
	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	return do_openat(REAL(openat), dirfd, path, flags, m);
}

DECL(int, openat64, int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	RESOLVE(openat64);
	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	return do_openat(REAL(openat64), dirfd, path, flags, m);
}

static int (*real_open_fn)(const char *, int, ...);
static int (*real_open64_fn)(const char *, int, ...);

static int open_as_openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	(void)dirfd;
	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	if (!real_open_fn)
		real_open_fn = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	return real_open_fn(path, flags, m);
}

static int open64_as_openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	(void)dirfd;
	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	if (!real_open64_fn)
		real_open64_fn = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
	return real_open64_fn(path, flags, m);
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	return do_openat(open_as_openat, AT_FDCWD, path, flags, m);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	return do_openat(open64_as_openat, AT_FDCWD, path, flags, m);
}

int creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode)
{
	return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* _FORTIFY_SOURCE entry points */
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

/* ---- close ---- */

DECL(int, close, int fd)
{
	RESOLVE(close);
	if (fd == trace_fd && fd >= 0)
		return 0;         /* the trace stays open (a daemon closing every fd) */
	untrack(fd);          /* before: invariant 1 */
	return REAL(close)(fd);
}

DECL(int, closedir, DIR *d)
{
	RESOLVE(closedir);
	untrack(dirfd(d));
	return REAL(closedir)(d);
}

/* ---- writes ---- */

DECL(ssize_t, write, int fd, const void *buf, size_t len)
{
	struct fdinfo fi;
	ssize_t r;

	RESOLVE(write);
	r = REAL(write)(fd, buf, len);
	if (r > 0 && tracked(fd, &fi)) {
		int e = errno;
		struct iovec v = { (void *)buf, (size_t)r };
		off_t end = lseek(fd, 0, SEEK_CUR);
		wrote(fd, &fi, (int64_t)end - r, &v, 1, r);
		errno = e;
	}
	return r;
}

DECL(ssize_t, writev, int fd, const struct iovec *iov, int n)
{
	struct fdinfo fi;
	ssize_t r;

	RESOLVE(writev);
	r = REAL(writev)(fd, iov, n);
	if (r > 0 && tracked(fd, &fi)) {
		int e = errno;
		off_t end = lseek(fd, 0, SEEK_CUR);
		wrote(fd, &fi, (int64_t)end - r, iov, n, r);
		errno = e;
	}
	return r;
}

#define PWRITE(name) \
DECL(ssize_t, name, int fd, const void *buf, size_t len, off_t off) \
{ \
	struct fdinfo fi; \
	ssize_t r; \
	RESOLVE(name); \
	r = REAL(name)(fd, buf, len, off); \
	if (r > 0 && tracked(fd, &fi)) { \
		int e = errno; \
		struct iovec v = { (void *)buf, (size_t)r }; \
		wrote(fd, &fi, off, &v, 1, r); \
		errno = e; \
	} \
	return r; \
}
PWRITE(pwrite)
PWRITE(pwrite64)

#define PWRITEV(name) \
DECL(ssize_t, name, int fd, const struct iovec *iov, int n, off_t off) \
{ \
	struct fdinfo fi; \
	ssize_t r; \
	RESOLVE(name); \
	r = REAL(name)(fd, iov, n, off); \
	if (r > 0 && tracked(fd, &fi)) { \
		int e = errno; \
		wrote(fd, &fi, off, iov, n, r); \
		errno = e; \
	} \
	return r; \
}
PWRITEV(pwritev)
PWRITEV(pwritev64)

#define PWRITEV2(name) \
DECL(ssize_t, name, int fd, const struct iovec *iov, int n, off_t off, int flags) \
{ \
	struct fdinfo fi; \
	ssize_t r; \
	RESOLVE(name); \
	r = REAL(name)(fd, iov, n, off, flags); \
	if (r > 0 && tracked(fd, &fi)) { \
		int e = errno; \
		off_t at = off; \
		if (off == -1) \
			at = lseek(fd, 0, SEEK_CUR) - r; \
		fi.dsync |= (flags & (RWF_DSYNC | RWF_SYNC)) != 0; \
		wrote(fd, &fi, at, iov, n, r); \
		errno = e; \
	} \
	return r; \
}
PWRITEV2(pwritev2)
PWRITEV2(pwritev64v2)

/* ---- sizes ---- */

#define FTRUNC(name) \
DECL(int, name, int fd, off_t len) \
{ \
	struct fdinfo fi; \
	int r; \
	RESOLVE(name); \
	r = REAL(name)(fd, len); \
	if (r == 0 && tracked(fd, &fi)) \
		emit_simple(R_TRUNC, 0, fd, 0, len, 0, fi.ino, fi.path, NULL); \
	return r; \
}
FTRUNC(ftruncate)
FTRUNC(ftruncate64)

#define TRUNC(name) \
DECL(int, name, const char *path, off_t len) \
{ \
	char abs[PATH_MAX]; \
	int r; \
	RESOLVE(name); \
	r = REAL(name)(path, len); \
	if (r == 0 && trace_fd >= 0 && resolve(AT_FDCWD, path, abs) == 0 && under_root(abs)) \
		emit_simple(R_TRUNC, 0, -1, 0, len, 0, 0, abs, NULL); \
	return r; \
}
TRUNC(truncate)
TRUNC(truncate64)

#define FALLOC(name) \
DECL(int, name, int fd, int mode, off_t off, off_t len) \
{ \
	struct fdinfo fi; \
	int r; \
	RESOLVE(name); \
	r = REAL(name)(fd, mode, off, len); \
	if (r == 0 && tracked(fd, &fi)) \
		emit_simple(R_FALLOC, mode, fd, 0, off, len, fi.ino, fi.path, NULL); \
	return r; \
}
FALLOC(fallocate)
FALLOC(fallocate64)

#define PFALLOC(name) \
DECL(int, name, int fd, off_t off, off_t len) \
{ \
	struct fdinfo fi; \
	int r; \
	RESOLVE(name); \
	r = REAL(name)(fd, off, len); \
	if (r == 0 && tracked(fd, &fi)) \
		emit_simple(R_FALLOC, 0, fd, 0, off, len, fi.ino, fi.path, NULL); \
	return r; \
}
PFALLOC(posix_fallocate)
PFALLOC(posix_fallocate64)

/* ---- syncs ---- */

/* Is this sync of FI the daemon's index flush (only meta pages written
 * since the last sync began)? Resets the page flag for the next one. */
static int index_flush(const struct fdinfo *fi)
{
	int s, pages;

	if (!fi->meta_db)
		return 0;
	pthread_mutex_lock(&fd_lock);
	s = db_slot(fi->ino);
	pages = s < 0 || dbs[s].pages;
	if (s >= 0)
		dbs[s].pages = 0;
	pthread_mutex_unlock(&fd_lock);
	return !pages;
}

static int do_sync(int (*fn)(int), int fd, int kind)
{
	struct fdinfo fi;
	int t = tracked(fd, &fi), r, e, delay = 0;

	if (t) {
		delay = meta_delay_ms > 0 && index_flush(&fi);
		emit_simple(R_SYNC_BEGIN, kind, fd, 0, 0, 0, fi.ino, fi.path, NULL);
	}
	r = fn(fd);
	e = errno;
	if (t) {
		if (delay) {
			struct timespec ts = { meta_delay_ms / 1000, (meta_delay_ms % 1000) * 1000000 };
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
		emit_simple(R_SYNC_END, kind, fd, r < 0 ? -e : 0, 0, delay, fi.ino, fi.path, NULL);
	}
	errno = e;
	return r;
}

DECL(int, fsync, int fd)
{
	RESOLVE(fsync);
	return do_sync(REAL(fsync), fd, SK_FSYNC);
}

DECL(int, fdatasync, int fd)
{
	RESOLVE(fdatasync);
	return do_sync(REAL(fdatasync), fd, SK_FDATASYNC);
}

DECL(int, syncfs, int fd)
{
	int r, e;

	RESOLVE(syncfs);
	if (trace_fd < 0)
		return REAL(syncfs)(fd);
	/* whatever fd it names, the store's file system is the only one
	 * recorded: everything before the BEGIN is covered */
	emit_simple(R_SYNC_BEGIN, SK_SYNCFS, fd, 0, 0, 0, 0, NULL, NULL);
	r = REAL(syncfs)(fd);
	e = errno;
	emit_simple(R_SYNC_END, SK_SYNCFS, fd, r < 0 ? -e : 0, 0, 0, 0, NULL, NULL);
	errno = e;
	return r;
}

DECL(void, sync, void)
{
	RESOLVE(sync);
	if (trace_fd >= 0)
		emit_simple(R_SYNC_BEGIN, SK_SYNC, -1, 0, 0, 0, 0, NULL, NULL);
	REAL(sync)();
	if (trace_fd >= 0)
		emit_simple(R_SYNC_END, SK_SYNC, -1, 0, 0, 0, 0, NULL, NULL);
}

DECL(int, sync_file_range, int fd, off_t off, off_t n, unsigned flags)
{
	struct fdinfo fi;
	int r;

	RESOLVE(sync_file_range);
	r = REAL(sync_file_range)(fd, off, n, flags);
	/* starts or waits for write-back only: no durability (no metadata,
	 * no disk cache flush); recorded for the record */
	if (r == 0 && tracked(fd, &fi))
		emit_simple(R_SFR, (int)flags, fd, 0, off, n, fi.ino, fi.path, NULL);
	return r;
}

DECL(int, msync, void *addr, size_t len, int flags)
{
	RESOLVE(msync);
	if (trace_fd >= 0)
		emit_simple(R_MSYNC, flags, -1, 0, (int64_t)len, (int64_t)(uintptr_t)addr, 0, NULL, NULL);
	return REAL(msync)(addr, len, flags);
}

#define MMAP(name) \
DECL(void *, name, void *addr, size_t len, int prot, int flags, int fd, off_t off) \
{ \
	struct fdinfo fi; \
	void *p; \
	RESOLVE(name); \
	p = REAL(name)(addr, len, prot, flags, fd, off); \
	if (p != MAP_FAILED && fd >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED) && \
	    tracked(fd, &fi)) \
		emit_simple(R_MMAPW, 0, fd, 0, off, (int64_t)len, fi.ino, fi.path, NULL); \
	return p; \
}
MMAP(mmap)
MMAP(mmap64)

/* ---- the namespace ---- */

static void path_op(int type, int flags, int dirfd, const char *path, int r)
{
	char abs[PATH_MAX];

	if (r == 0 && trace_fd >= 0 && resolve(dirfd, path, abs) == 0 && under_root(abs))
		emit_simple(type, flags, -1, 0, 0, 0, 0, abs, NULL);
}

/* Resolved after the call: resolve() reads only the dirfd's path (or the
 * working directory), which the call does not change. */
DECL(int, unlink, const char *path)
{
	int r;

	RESOLVE(unlink);
	r = REAL(unlink)(path);
	path_op(R_UNLINK, 0, AT_FDCWD, path, r);
	return r;
}

DECL(int, unlinkat, int dirfd, const char *path, int flags)
{
	int r;

	RESOLVE(unlinkat);
	r = REAL(unlinkat)(dirfd, path, flags);
	path_op(flags & AT_REMOVEDIR ? R_RMDIR : R_UNLINK, 0, dirfd, path, r);
	return r;
}

DECL(int, rmdir, const char *path)
{
	int r;

	RESOLVE(rmdir);
	r = REAL(rmdir)(path);
	path_op(R_RMDIR, 0, AT_FDCWD, path, r);
	return r;
}

DECL(int, mkdir, const char *path, mode_t mode)
{
	int r;

	RESOLVE(mkdir);
	r = REAL(mkdir)(path, mode);
	path_op(R_MKDIR, 0, AT_FDCWD, path, r);
	return r;
}

DECL(int, mkdirat, int dirfd, const char *path, mode_t mode)
{
	int r;

	RESOLVE(mkdirat);
	r = REAL(mkdirat)(dirfd, path, mode);
	path_op(R_MKDIR, 0, dirfd, path, r);
	return r;
}

static void two_path_op(int type, int flags, int d1, const char *p1, int d2, const char *p2, int r)
{
	char a1[PATH_MAX], a2[PATH_MAX];

	if (r != 0 || trace_fd < 0 || resolve(d1, p1, a1) || resolve(d2, p2, a2))
		return;
	if (under_root(a1) || under_root(a2))
		emit_simple(type, flags, -1, 0, 0, 0, 0, a1, a2);
}

DECL(int, rename, const char *a, const char *b)
{
	int r;

	RESOLVE(rename);
	r = REAL(rename)(a, b);
	two_path_op(R_RENAME, 0, AT_FDCWD, a, AT_FDCWD, b, r);
	return r;
}

DECL(int, renameat, int da, const char *a, int db, const char *b)
{
	int r;

	RESOLVE(renameat);
	r = REAL(renameat)(da, a, db, b);
	two_path_op(R_RENAME, 0, da, a, db, b, r);
	return r;
}

DECL(int, renameat2, int da, const char *a, int db, const char *b, unsigned flags)
{
	int r;

	RESOLVE(renameat2);
	r = REAL(renameat2)(da, a, db, b, flags);
	two_path_op(R_RENAME, (int)flags, da, a, db, b, r);
	return r;
}

DECL(int, link, const char *a, const char *b)
{
	int r;

	RESOLVE(link);
	r = REAL(link)(a, b);
	two_path_op(R_LINK, 0, AT_FDCWD, a, AT_FDCWD, b, r);
	return r;
}

DECL(int, linkat, int da, const char *a, int db, const char *b, int flags)
{
	int r;

	RESOLVE(linkat);
	r = REAL(linkat)(da, a, db, b, flags);
	two_path_op(R_LINK, flags, da, a, db, b, r);
	return r;
}

/* ---- what the shim cannot replay (invariant 3) ---- */

static void unsupported(int fd, const char *what)
{
	struct fdinfo fi;

	if (tracked(fd, &fi))
		emit_simple(R_UNSUPP, 0, fd, 0, 0, 0, fi.ino, what, fi.path);
}

DECL(ssize_t, copy_file_range, int in, off_t *oin, int out, off_t *oout, size_t n, unsigned fl)
{
	RESOLVE(copy_file_range);
	unsupported(out, "copy_file_range");
	return REAL(copy_file_range)(in, oin, out, oout, n, fl);
}

DECL(ssize_t, sendfile, int out, int in, off_t *off, size_t n)
{
	RESOLVE(sendfile);
	unsupported(out, "sendfile");
	return REAL(sendfile)(out, in, off, n);
}

DECL(ssize_t, splice, int in, loff_t *oin, int out, loff_t *oout, size_t n, unsigned fl)
{
	RESOLVE(splice);
	unsupported(out, "splice");
	return REAL(splice)(in, oin, out, oout, n, fl);
}

/* liburing is linked dynamically: its ring set-up and submissions pass
 * through here. The daemon's rings read fragments and fsync them in
 * batches (cache/backend_local.c); a refused ring makes it read with pread
 * and fsync with fsync(2), which are recorded. */
struct io_uring;
struct io_uring_params;

DECL(int, io_uring_queue_init, unsigned entries, struct io_uring *ring, unsigned flags)
{
	RESOLVE(io_uring_queue_init);
	if (trace_fd >= 0 && !allow_uring) {
		emit_simple(R_URING, 1, -1, 0, 0, 0, 0, NULL, NULL);
		return -ENOSYS;
	}
	return REAL(io_uring_queue_init)(entries, ring, flags);
}

DECL(int, io_uring_queue_init_params, unsigned entries, struct io_uring *ring, struct io_uring_params *p)
{
	RESOLVE(io_uring_queue_init_params);
	if (trace_fd >= 0 && !allow_uring) {
		emit_simple(R_URING, 1, -1, 0, 0, 0, 0, NULL, NULL);
		return -ENOSYS;
	}
	return REAL(io_uring_queue_init_params)(entries, ring, p);
}

DECL(int, io_uring_submit, struct io_uring *ring)
{
	RESOLVE(io_uring_submit);
	if (trace_fd >= 0)
		emit_simple(R_URING, 2, -1, 0, 0, 0, 0, NULL, NULL);
	return REAL(io_uring_submit)(ring);
}

DECL(int, io_uring_submit_and_wait, struct io_uring *ring, unsigned n)
{
	RESOLVE(io_uring_submit_and_wait);
	if (trace_fd >= 0)
		emit_simple(R_URING, 2, -1, 0, 0, 0, 0, NULL, NULL);
	return REAL(io_uring_submit_and_wait)(ring, n);
}
