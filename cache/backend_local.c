/* backend_local — fragment images as files DIR/XX/ID.frag, written with
 * write + fsync + no-replace rename, read in batches through io_uring
 * (pread when io_uring is unavailable).
 *
 * Invariants:
 *  (1) A final name XX/ID.frag only ever appears through an atomic
 *      no-replace rename (or link) of a fully written, fsync'ed temporary
 *      file: a reader never sees a partial image, an existing image is
 *      never replaced.
 *  (2) Temporary files are XX/.tmp.ID.PID.SEQ, in the fan-out folder of
 *      their final name. A failed put() removes its own; open removes every
 *      leftover (of puts interrupted by a crash).
 *  (3) Every fan-out folder whose entries changed since the last
 *      successful sync() has its bit set in `dirty`; sync() fsyncs those.
 *  (4) A ring is used by one get_many() at a time (its slot's lock), and
 *      holds no pending SQE or unreaped CQE whenever that lock is free.
 *      There are RING_SLOTS rings, so that concurrent batches (several
 *      readers, read-ahead) do not wait for each other's I/O.
 * Lock order: a slot lock and dirty_lock are never held together; at most
 * one slot lock is held.
 */
#include "cache/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include "cache/fault.h"
#include "cache/log.h"

#define FANOUT        256
#define RING_ENTRIES  256          /* reads in flight per submission */
#define RING_SLOTS    8            /* rings for concurrent batches */
#define MAX_IO_CHUNK  0x40000000u  /* bytes per read/write call */
#define MAX_TRIES     16           /* io_uring -EINTR/-EAGAIN retries per read */
#define PATH_LEN      64           /* "XX/.tmp.<16>.<pid>.<seq>" fits */

struct local_backend {
	struct frag_backend base;     /* first: the public handle */
	int rootfd;                   /* immutable after open */
	unsigned long tmp_seq;        /* atomic: temporary-name counter */
	pthread_mutex_t dirty_lock;
	uint64_t dirty[FANOUT / 64];  /* protected by dirty_lock */
	struct ring_slot {
		pthread_mutex_t lock;
		struct io_uring ring;  /* protected by lock */
		int ok;                /* protected by lock */
	} rings[RING_SLOTS];
	unsigned ring_next;           /* atomic: where the next batch looks first */
};

/* Per-request state of one get_many() call. */
struct rd_state {
	int fd;         /* open image, -1 once the request is finished */
	unsigned tries; /* io_uring retries after -EINTR/-EAGAIN */
};

static int uring_warned;  /* atomic: "io_uring unavailable" logged once */

static struct local_backend *to_local(struct frag_backend *fb)
{
	return (struct local_backend *)fb;
}

static void frag_path(char *buf, uint64_t id)
{
	snprintf(buf, PATH_LEN, "%02x/%016" PRIx64 ".frag", (unsigned)(id & 0xff), id);
}

static void tmp_path(struct local_backend *b, char *buf, uint64_t id)
{
	unsigned long seq = __atomic_fetch_add(&b->tmp_seq, 1, __ATOMIC_RELAXED);

	snprintf(buf, PATH_LEN, "%02x/.tmp.%016" PRIx64 ".%ld.%lu",
		 (unsigned)(id & 0xff), id, (long)getpid(), seq);
}

static void mark_dirty(struct local_backend *b, uint64_t id)
{
	unsigned d = (unsigned)(id & 0xff);

	pthread_mutex_lock(&b->dirty_lock);
	b->dirty[d / 64] |= 1ull << (d % 64);
	pthread_mutex_unlock(&b->dirty_lock);
}

/* ---- put ------------------------------------------------------------ */

/* Write all LEN bytes, retrying short writes and EINTR. @return 0, -errno
 * from write(2), or -EIO when write makes no progress. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		size_t chunk = len < MAX_IO_CHUNK ? len : MAX_IO_CHUNK;
		ssize_t n = write(fd, p, chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write and fsync the image into the open temporary FD; fault points
 * "frag_write" and "frag_fsync". @return 0 or -errno as is. */
static int write_durable(int fd, const void *data, size_t len)
{
	int rc = FAULT("frag_write");

	if (!rc)
		rc = write_all(fd, data, len);
	if (!rc)
		rc = FAULT("frag_fsync");
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	return rc;
}

/* Create a fresh temporary file for ID (a name collision with a stray file
 * picks another name). @return the fd, NAME filled; or -errno. */
static int tmp_create(struct local_backend *b, uint64_t id, char *name)
{
	for (int i = 0; i < 8; i++) {
		int fd;

		tmp_path(b, name, id);
		fd = openat(b->rootfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

/* Move TMP to FINAL unless FINAL exists: renameat2(RENAME_NOREPLACE), or
 * link + unlink on filesystems without it. @return 0, -EEXIST, -errno. */
static int rename_noreplace(int dirfd, const char *tmp, const char *final)
{
	if (renameat2(dirfd, tmp, dirfd, final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (linkat(dirfd, tmp, dirfd, final, 0) < 0)
		return -errno;
	unlinkat(dirfd, tmp, 0);
	return 0;
}

/* Invariant (1). On failure the temporary file is gone, no final file was
 * made, and the errno is returned as is (ENOSPC stays ENOSPC). */
static int local_put(struct frag_backend *fb, uint64_t id, const void *data, size_t len)
{
	struct local_backend *b = to_local(fb);
	char final[PATH_LEN], tmp[PATH_LEN];
	struct stat st;
	int fd, rc;

	frag_path(final, id);
	if (fstatat(b->rootfd, final, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	fd = tmp_create(b, id, tmp);
	if (fd < 0)
		return fd;
	rc = write_durable(fd, data, len);
	if (close(fd) < 0 && errno != EINTR && !rc)
		rc = -errno;
	if (!rc)
		rc = FAULT("frag_rename");
	if (!rc)
		rc = rename_noreplace(b->rootfd, tmp, final);
	if (rc) {
		unlinkat(b->rootfd, tmp, 0);
		return rc;
	}
	mark_dirty(b, id);
	return 0;
}

/* ---- sync / del ------------------------------------------------------- */

static int fsync_fanout(struct local_backend *b, unsigned d)
{
	char name[4];
	int fd, rc = 0;

	snprintf(name, sizeof(name), "%02x", d);
	fd = openat(b->rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* fsyncs the folders touched since the last successful sync. On failure
 * the folders not yet synced stay marked, so a later sync() retries them.
 * @return 0 or -errno of open/fsync. */
static int local_sync(struct frag_backend *fb)
{
	struct local_backend *b = to_local(fb);
	uint64_t todo[FANOUT / 64];
	int rc = 0;

	pthread_mutex_lock(&b->dirty_lock);
	memcpy(todo, b->dirty, sizeof(todo));
	memset(b->dirty, 0, sizeof(b->dirty));
	pthread_mutex_unlock(&b->dirty_lock);
	for (unsigned d = 0; d < FANOUT && !rc; d++) {
		if (!(todo[d / 64] & (1ull << (d % 64))))
			continue;
		rc = fsync_fanout(b, d);
		if (!rc)
			todo[d / 64] &= ~(1ull << (d % 64));
	}
	if (rc) {
		pthread_mutex_lock(&b->dirty_lock);
		for (unsigned w = 0; w < FANOUT / 64; w++)
			b->dirty[w] |= todo[w];
		pthread_mutex_unlock(&b->dirty_lock);
	}
	return rc;
}

/* @return 0, -ENOENT when absent, or -errno of unlink(2). */
static int local_del(struct frag_backend *fb, uint64_t id)
{
	struct local_backend *b = to_local(fb);
	char path[PATH_LEN];

	frag_path(path, id);
	if (unlinkat(b->rootfd, path, 0) < 0)
		return -errno;
	mark_dirty(b, id);
	return 0;
}

/* ---- list -------------------------------------------------------------- */

/* Parse "%016llx.frag" (lower-case hex) belonging to fan-out folder D.
 * @return 1 and *ID, or 0 for any other name. */
static int parse_name(const char *name, unsigned d, uint64_t *id)
{
	uint64_t v = 0;

	if (strlen(name) != 21 || strcmp(name + 16, ".frag") != 0)
		return 0;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		unsigned x;

		if (c >= '0' && c <= '9')
			x = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = (unsigned)(c - 'a' + 10);
		else
			return 0;
		v = (v << 4) | x;
	}
	if ((v & 0xff) != d)
		return 0;
	*id = v;
	return 1;
}

/* Open fan-out folder D for reading. @return the DIR, or NULL with errno
 * (ENOENT when the folder does not exist). */
static DIR *open_fanout(int rootfd, unsigned d)
{
	char name[4];
	DIR *dir;
	int fd;

	snprintf(name, sizeof(name), "%02x", d);
	fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	dir = fdopendir(fd);
	if (!dir) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return dir;
}

/* Call CB for every image of folder D. @return 0, CB's non-zero value, or
 * -errno of readdir(3). */
static int list_fanout(DIR *dir, unsigned d, int (*cb)(void *, uint64_t), void *arg)
{
	struct dirent *de;
	uint64_t id;
	int rc;

	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de)
			return errno ? -errno : 0;
		if (parse_name(de->d_name, d, &id) && (rc = cb(arg, id)) != 0)
			return rc;
	}
}

/* A missing fan-out folder holds nothing. @return 0, CB's non-zero value,
 * or -errno of opendir/readdir. */
static int local_list(struct frag_backend *fb, int (*cb)(void *, uint64_t), void *arg)
{
	struct local_backend *b = to_local(fb);
	int rc = 0;

	for (unsigned d = 0; d < FANOUT && !rc; d++) {
		DIR *dir = open_fanout(b->rootfd, d);

		if (!dir) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		rc = list_fanout(dir, d, cb, arg);
		closedir(dir);
	}
	return rc;
}

/* ---- get_many ------------------------------------------------------------ */

/* Open every request's image (fault point "frag_read" per request). Sets
 * len/err of each; ST[i].fd is the open file of each request still to
 * read, -1 for those already finished (error, or nothing to read). */
static void open_all(struct local_backend *b, struct frag_get *reqs, size_t n,
		     struct rd_state *st)
{
	char path[PATH_LEN];

	for (size_t i = 0; i < n; i++) {
		struct frag_get *r = &reqs[i];
		int rc = FAULT("frag_read");

		r->len = 0;
		r->err = rc;
		st[i].fd = -1;
		st[i].tries = 0;
		if (rc)
			continue;
		frag_path(path, r->id);
		st[i].fd = openat(b->rootfd, path, O_RDONLY | O_CLOEXEC);
		if (st[i].fd < 0)
			r->err = -errno;
		else if (r->cap == 0)
			st[i].fd = (close(st[i].fd), -1);
	}
}

static void finish(struct rd_state *s, struct frag_get *r, int err)
{
	r->err = err;
	close(s->fd);
	s->fd = -1;
}

/* Read the rest of request R with pread(2). */
static void pread_rest(struct rd_state *s, struct frag_get *r)
{
	while (r->len < r->cap) {
		size_t left = r->cap - r->len;
		ssize_t n = pread(s->fd, (char *)r->buf + r->len,
				  left < MAX_IO_CHUNK ? left : MAX_IO_CHUNK, (off_t)r->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			finish(s, r, n < 0 ? -errno : -EIO);  /* 0: short file */
			return;
		}
		r->len += (size_t)n;
	}
	finish(s, r, 0);
}

static void prep_read(struct io_uring_sqe *sqe, struct rd_state *s, struct frag_get *r,
		      size_t i)
{
	size_t left = r->cap - r->len;

	io_uring_prep_read(sqe, s->fd, (char *)r->buf + r->len,
			   (unsigned)(left < MAX_IO_CHUNK ? left : MAX_IO_CHUNK), r->len);
	sqe->user_data = i;
}

/* Account one completion RES of request R. @return 1 when the remainder
 * must be resubmitted (short read, or -EINTR/-EAGAIN), 0 when finished. */
static int complete_read(struct rd_state *s, struct frag_get *r, int res)
{
	if (res < 0) {
		if ((res == -EINTR || res == -EAGAIN) && ++s->tries < MAX_TRIES)
			return 1;
		finish(s, r, res);
		return 0;
	}
	if (res == 0) {
		finish(s, r, -EIO);   /* the file is shorter than the image */
		return 0;
	}
	r->len += (size_t)res;
	if (r->len < r->cap)
		return 1;
	finish(s, r, 0);
	return 0;
}

/* Reap every available completion; resubmissions go to REDO. Fault point
 * "uring_complete" replaces a completion's result with its errno. */
static unsigned reap(struct io_uring *ring, struct frag_get *reqs, struct rd_state *st,
		     size_t *redo, size_t *nredo)
{
	struct io_uring_cqe *cqe;
	unsigned done = 0;
	int rc;

	while (io_uring_peek_cqe(ring, &cqe) == 0) {
		size_t i = (size_t)cqe->user_data;
		int res = cqe->res;

		io_uring_cqe_seen(ring, cqe);
		done++;
		if ((rc = FAULT("uring_complete")) != 0)
			res = rc;    /* as if the kernel had failed this read */
		if (complete_read(&st[i], &reqs[i], res))
			redo[(*nredo)++] = i;
	}
	return done;
}

/* After a failed submit: wait for the reads the kernel already has, so
 * none lands in a buffer after get_many() returned. Requests not finished
 * stay open for pread_rest(), which continues at req->len. */
static void drain(struct io_uring *ring, struct frag_get *reqs, struct rd_state *st,
		  unsigned inflight)
{
	struct io_uring_cqe *cqe;
	unsigned kernel = inflight - io_uring_sq_ready(ring);

	while (kernel) {
		int rc = io_uring_wait_cqe(ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return;
		size_t i = (size_t)cqe->user_data;
		int res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		kernel--;
		if (res > 0)
			reqs[i].len += (size_t)res;
		else if (res < 0 && res != -EINTR && res != -EAGAIN)
			finish(&st[i], &reqs[i], res);
	}
}

/* Read every open request through the ring: all reads in one submission
 * (RING_ENTRIES at a time for larger batches), short reads resubmitted.
 * Fault point "uring_submit" fails a submission (the ring is then given
 * up and the reads finish with pread).
 * Caller holds ring_lock. @return 0, or -errno when the ring failed (the
 * requests still open are left for pread_rest()). */
static int uring_read_all(struct io_uring *ring, struct frag_get *reqs, size_t n,
			  struct rd_state *st, size_t *redo)
{
	size_t next = 0, nredo = 0;
	unsigned inflight = 0;

	for (;;) {
		while (inflight < RING_ENTRIES && (nredo || next < n)) {
			size_t i = nredo ? redo[--nredo] : next++;
			struct io_uring_sqe *sqe;

			if (st[i].fd < 0)
				continue;
			sqe = io_uring_get_sqe(ring);
			if (!sqe) {
				redo[nredo++] = i;
				break;
			}
			prep_read(sqe, &st[i], &reqs[i], i);
			inflight++;
		}
		if (!inflight)
			return 0;
		int rc = FAULT("uring_submit");
		if (!rc)
			rc = io_uring_submit_and_wait(ring, 1);
		if (rc < 0 && rc != -EINTR) {
			drain(ring, reqs, st, inflight);
			return rc;
		}
		inflight -= reap(ring, reqs, st, redo, &nredo);
	}
}

static void ring_warn_once(int err)
{
	if (!__atomic_exchange_n(&uring_warned, 1, __ATOMIC_RELAXED))
		log_warn("io_uring is unavailable (%s): fragments are read with pread",
			 strerror(-err));
}

/* Run the batch through the ring when there is one. A ring that fails is
 * torn down for good (this backend falls back to pread). */
static void uring_batch(struct local_backend *b, struct frag_get *reqs, size_t n,
			struct rd_state *st, size_t *redo)
{
	unsigned first = __atomic_fetch_add(&b->ring_next, 1, __ATOMIC_RELAXED);
	struct ring_slot *rs = NULL;

	/* a free ring if there is one, else wait for the first choice */
	for (unsigned k = 0; k < RING_SLOTS && !rs; k++) {
		struct ring_slot *c = &b->rings[(first + k) % RING_SLOTS];
		if (pthread_mutex_trylock(&c->lock) == 0)
			rs = c;
	}
	if (!rs) {
		rs = &b->rings[first % RING_SLOTS];
		pthread_mutex_lock(&rs->lock);
	}
	if (rs->ok) {
		int rc = uring_read_all(&rs->ring, reqs, n, st, redo);
		if (rc) {
			log_err("io_uring read failed (%s): switching to pread", strerror(-rc));
			io_uring_queue_exit(&rs->ring);
			rs->ok = 0;
		}
	}
	pthread_mutex_unlock(&rs->lock);
}

/* Each request: err 0 and len == cap, or -ENOENT (no such image), -EIO
 * (file shorter than cap), or another -errno. @return 0, or -ENOMEM when
 * nothing could be done (then every request's err is -ENOMEM). */
static int local_get_many(struct frag_backend *fb, struct frag_get *reqs, size_t n)
{
	struct local_backend *b = to_local(fb);
	struct rd_state *st;
	size_t *redo;

	if (n == 0)
		return 0;
	st = malloc(n * (sizeof(*st) + sizeof(*redo)));
	if (!st) {
		for (size_t i = 0; i < n; i++)
			reqs[i].err = -ENOMEM, reqs[i].len = 0;
		return -ENOMEM;
	}
	redo = (size_t *)(st + n);
	open_all(b, reqs, n, st);
	uring_batch(b, reqs, n, st, redo);
	for (size_t i = 0; i < n; i++)
		if (st[i].fd >= 0)
			pread_rest(&st[i], &reqs[i]);
	free(st);
	return 0;
}

/* ---- open / destroy ---------------------------------------------------- */

/* Remove the leftover temporary files in fan-out folder D (invariant 2).
 * Failures are logged, not fatal. */
static void sweep_tmp(int rootfd, unsigned d)
{
	DIR *dir = open_fanout(rootfd, d);
	struct dirent *de;

	if (!dir) {
		log_warn("fragments/%02x: cannot open: %s", d, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, ".tmp.", 5) != 0)
			continue;
		if (unlinkat(dirfd(dir), de->d_name, 0) < 0)
			log_warn("fragments/%02x/%s: cannot remove: %s", d, de->d_name,
				 strerror(errno));
	}
	closedir(dir);
}

/* Create (0700) and sweep the 256 fan-out folders; fsync ROOTFD when any
 * folder was made. @return 0 or -errno of mkdir/fsync. */
static int make_fanout(int rootfd, int sweep)
{
	char name[4];
	int made = 0;

	for (unsigned d = 0; d < FANOUT; d++) {
		snprintf(name, sizeof(name), "%02x", d);
		if (mkdirat(rootfd, name, 0700) == 0)
			made = 1;
		else if (errno != EEXIST)
			return -errno;
		if (sweep)
			sweep_tmp(rootfd, d);
	}
	if (made && fsync(rootfd) < 0)
		return -errno;
	return 0;
}

/* fsync the folder that holds DIR (after DIR was created in it). */
static int fsync_parent(const char *dir)
{
	char *copy = strdup(dir), *slash;
	int fd, rc = 0;

	if (!copy)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	if (slash == copy)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	fd = open(slash ? copy : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

/* Create DIR (0700) when missing and open it. @return the fd or -errno. */
static int open_root(const char *dir)
{
	int fd, rc;

	if (mkdir(dir, 0700) == 0) {
		rc = fsync_parent(dir);
		if (rc)
			return rc;
	} else if (errno != EEXIST) {
		return -errno;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Fault point "uring_init" (or a failing first ring): no rings at all,
 * every read goes through pread. Later rings that fail just are not used. */
static void ring_init(struct local_backend *b)
{
	int rc = FAULT("uring_init");

	if (!rc)
		rc = io_uring_queue_init(RING_ENTRIES, &b->rings[0].ring, 0);
	if (rc) {
		ring_warn_once(rc);
		return;
	}
	b->rings[0].ok = 1;
	for (unsigned k = 1; k < RING_SLOTS; k++)
		b->rings[k].ok = io_uring_queue_init(RING_ENTRIES, &b->rings[k].ring, 0) == 0;
}

static void local_destroy(struct frag_backend *fb)
{
	struct local_backend *b = to_local(fb);

	for (unsigned k = 0; k < RING_SLOTS; k++) {
		if (b->rings[k].ok)
			io_uring_queue_exit(&b->rings[k].ring);
		pthread_mutex_destroy(&b->rings[k].lock);
	}
	if (b->rootfd >= 0)
		close(b->rootfd);
	pthread_mutex_destroy(&b->dirty_lock);
	free(b);
}

static const struct frag_backend_ops local_ops = {
	.name = "local",
	.put = local_put,
	.sync = local_sync,
	.get_many = local_get_many,
	.del = local_del,
	.list = local_list,
	.destroy = local_destroy,
};

/* Also fault point "uring_init": when it fires (or io_uring_queue_init
 * fails) the backend reads with pread. */
static int local_open(const char *dir, int rdonly, struct frag_backend **out)
{
	struct local_backend *b;
	int rc;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->base.ops = &local_ops;
	pthread_mutex_init(&b->dirty_lock, NULL);
	for (unsigned k = 0; k < RING_SLOTS; k++)
		pthread_mutex_init(&b->rings[k].lock, NULL);
	b->rootfd = rdonly ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : open_root(dir);
	if (b->rootfd < 0) {
		rc = rdonly ? -errno : b->rootfd;
		goto fail;
	}
	rc = rdonly ? 0 : make_fanout(b->rootfd, 1);
	if (rc)
		goto fail;
	ring_init(b);
	*out = &b->base;
	return 0;
fail:
	log_err("%s: cannot open fragment store: %s", dir, strerror(-rc));
	local_destroy(&b->base);
	return rc;
}

int backend_local_open(const char *dir, struct frag_backend **out)
{
	return local_open(dir, 0, out);
}

int backend_local_open_ro(const char *dir, struct frag_backend **out)
{
	return local_open(dir, 1, out);
}
