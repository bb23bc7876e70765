/* follow — libpayload's followers (payload_follow_*, lib/payload.h): a
 * reader of an object that is appended to receives the rows (or bytes)
 * committed since its last call, pulling them at its own pace.
 *
 * Invariants:
 *  (1) A follower holds one pinned version PV and an offset POS <= its
 *      size: it has returned exactly bytes [START, POS) of PV. Bytes
 *      are read only from the version being followed, never guessed.
 *  (2) A newer version N is followed only when it keeps every byte of PV
 *      (checked exactly, not from sizes): N is at least as long; every
 *      fragment of PV before the tail (below) is in N at the same offset
 *      with the same id (fragments are immutable, so the bytes are the
 *      same), or else the bytes from the first differing one are compared;
 *      and the tail, PV's bytes from its last fragment's offset (all of
 *      an inline object), equals N's bytes there (skipped when N lists
 *      the same fragment). The tail is a copy kept by the follower: a
 *      writer's commit that absorbs PV's last fragment into a new one
 *      lets the daemon delete the old image, which a read-only opener's
 *      pin does not prevent (docs/design.md, "Known limits").
 *  (3) Any other new version (rewritten, truncated), or PATH naming
 *      another object, is final: -ESTALE; PATH naming nothing: -ENOENT.
 *      POS is unchanged, so nothing returned is lost and the caller
 *      resumes with a new follower (payload_follow_tell). A read error
 *      (-EIO: a damaged or missing fragment) is not final: POS stays and
 *      the next call reads again (test_follow's test_eio).
 *  (4) Back-pressure: the caller pulls. A call reads at most CAP bytes
 *      into the caller's buffer (plus, in ROWS mode when no row end is in
 *      them, a 64 KiB scan buffer to size the next row); the follower
 *      itself holds PV and its tail (at most one fragment).
 *  (5) ROWS mode returns whole rows only: lines up to their '\n', fixed:N
 *      records whole. BYTES mode returns what is committed.
 *  (6) No busy waiting on a local store: the index's LMDB data file is
 *      written with pwrite (no MDB_WRITEMAP, index/idx_lmdb.c), so every
 *      commit of any process raises IN_MODIFY on STORE/index/data.mdb;
 *      the follower drains its inotify queue before it checks the index,
 *      so a commit between the check and the wait wakes the wait. The
 *      last write (the meta page) comes just before LMDB shows the
 *      transaction to new readers (the lock file's txnid, no event), so
 *      after a wake that found nothing it looks again every 1 ms, up to
 *      SETTLE times. RADOS
 *      stores (and PAYLOAD_FOLLOW_POLL) check every 5 ms instead.
 *  (7) One thread uses a follower at a time; payload_follow_cancel may be
 *      called from any thread (an atomic flag and an eventfd).
 */
#include "lib/payload_int.h"
#include "index/store.h"
#include "index/storeconf.h"
#include "index/view.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PL_API __attribute__((visibility("default")))

#define POLL_MS   5         /* without inotify */
#define RECHECK_MS 1000     /* with inotify: a check at least this often */
#define SCAN      65536     /* ROWS: scan buffer to size a row past CAP */
#define SETTLE    20        /* after a wake: checks 1 ms apart */
#define RETRIES   4         /* reads of a version the writer released meanwhile */

struct payload_follow {
	payload_store *ps;
	char *path;
	uint64_t ino;
	int flags;
	struct pver *pv;        /* the version followed (1) */
	uint64_t pos;
	char *tail;             /* PV's bytes [tail_off, size) (2) */
	uint64_t tail_off;
	size_t tail_len, tail_cap;
	uint64_t row_len;       /* after -ERANGE */
	int err;                /* final: -ESTALE, -ENOENT (3) */
	int ifd, efd;           /* inotify (or -1), eventfd */
	atomic_int cancel;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read exactly LEN bytes at OFF of PV. @return 0, -EIO, -ENOMEM. */
static int read_all(struct pver *pv, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pver_read(pv, (char *)buf + done, len - done, off + done);
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Copy PV's tail (2) into F. */
static int load_tail(struct payload_follow *f, struct pver *pv)
{
	uint32_t nf = pver_nfrags(pv);
	uint64_t size = pver_inode(pv)->size;
	uint64_t off = nf ? pver_frag(pv, nf - 1)->off : 0;
	size_t len = (size_t)(size - off);
	int rc;

	if (len > f->tail_cap) {
		char *t = realloc(f->tail, len);
		if (!t)
			return -ENOMEM;
		f->tail = t;
		f->tail_cap = len;
	}
	rc = read_all(pv, f->tail, len, off);
	if (rc)
		return rc;
	f->tail_off = off;
	f->tail_len = len;
	return 0;
}

/* Compare LEN bytes at OFF of N with BUF (or with OLD at OFF when BUF is
 * NULL). @return 1 equal, 0 not, -errno. */
static int same_bytes(struct pver *n, struct pver *old, const char *buf, uint64_t off, uint64_t len)
{
	char a[8192], b[8192];
	int rc;

	while (len) {
		size_t k = len < sizeof(a) ? (size_t)len : sizeof(a);
		if ((rc = read_all(n, a, k, off)))
			return rc;
		if (!buf && (rc = read_all(old, b, k, off)))
			return rc;
		if (memcmp(a, buf ? buf : b, k))
			return 0;
		if (buf)
			buf += k;
		off += k;
		len -= k;
	}
	return 1;
}

/* Does N keep every byte of F's version (2)? @return 1, 0, -errno. */
static int is_append(struct payload_follow *f, struct pver *n)
{
	struct pver *p = f->pv;
	uint64_t psize = pver_inode(p)->size;
	uint32_t np = pver_nfrags(p), nn = pver_nfrags(n), i;
	int rc;

	if (pver_inode(n)->size < psize)
		return 0;
	for (i = 0; i < np; i++) {
		const struct frag_desc *d = pver_frag(p, i);
		if (d->off >= f->tail_off)
			break;
		if (i >= nn || pver_frag(n, i)->off != d->off || pver_frag(n, i)->id != d->id) {
			/* rare: a commit re-cut an inner fragment (a view
			 * session); compare through PV (may fail with EIO
			 * once the writer deleted its images) */
			rc = same_bytes(n, p, NULL, d->off, f->tail_off - d->off);
			if (rc <= 0)
				return rc;
			break;
		}
	}
	if (!f->tail_len)
		return 1;
	if (np && i < nn && pver_frag(n, i)->off == f->tail_off &&
	    pver_frag(n, i)->id == pver_frag(p, np - 1)->id)
		return 1;   /* the same last fragment: the same bytes */
	return same_bytes(n, NULL, f->tail, f->tail_off, f->tail_len);
}

/* Bring F to the object's current version when that is an append (3).
 * @return 0 (on the current version, or it is not readable yet: the next
 * call tries again), -ESTALE, -ENOENT (final), -errno. */
static int refresh(struct payload_follow *f)
{
	struct idx_inode in;
	struct pver *n;
	int rc;

	if (f->err)
		return payload_fail(f->err, "payload_follow_next %s: no longer followed (returned up to "
			       "byte %llu)", f->path, (unsigned long long)f->pos);
	rc = store_resolve(f->ps->st, f->path, 1, &in);
	if (rc == -ENOENT || rc == -ENOTDIR) {
		f->err = -ENOENT;
		return payload_fail(f->err, "payload_follow_next %s: it was unlinked or renamed "
			       "(returned up to byte %llu of version %llu)", f->path,
			       (unsigned long long)f->pos,
			       (unsigned long long)pver_inode(f->pv)->version);
	}
	if (rc)
		return payload_fail(rc, "payload_follow_next %s", f->path);
	if (in.ino != f->ino) {
		f->err = -ESTALE;
		return payload_fail(f->err, "payload_follow_next %s: it now names another object "
			       "(id %llu, was %llu; returned up to byte %llu)", f->path,
			       (unsigned long long)in.ino, (unsigned long long)f->ino,
			       (unsigned long long)f->pos);
	}
	if (in.version == pver_inode(f->pv)->version)
		return 0;
	rc = store_pver_get(f->ps->st, f->ino, &n);
	if (rc)
		return payload_fail(rc, "payload_follow_next %s: loading version %llu", f->path,
			       (unsigned long long)in.version);
	rc = is_append(f, n);
	if (rc == 0) {
		f->err = -ESTALE;
		payload_fail(f->err, "payload_follow_next %s: version %llu (%llu bytes) does not keep "
			"the bytes of version %llu (%llu bytes): rewritten or truncated "
			"(returned up to byte %llu)", f->path,
			(unsigned long long)pver_inode(n)->version,
			(unsigned long long)pver_inode(n)->size,
			(unsigned long long)pver_inode(f->pv)->version,
			(unsigned long long)pver_inode(f->pv)->size, (unsigned long long)f->pos);
		pver_put(n);
		return f->err;
	}
	if (rc > 0) {
		/* keep the old tail if the new one cannot be read: N may
		 * already be released by a later commit (then the next check
		 * compares that one with the old tail) */
		char *ot = f->tail;
		uint64_t ooff = f->tail_off;
		size_t olen = f->tail_len, ocap = f->tail_cap;

		f->tail = NULL;
		f->tail_cap = 0;
		rc = load_tail(f, n);
		if (rc) {
			free(f->tail);
			f->tail = ot;
			f->tail_off = ooff;
			f->tail_len = olen;
			f->tail_cap = ocap;
		} else {
			free(ot);
		}
	}
	if (rc < 0) {
		pver_put(n);
		return payload_fail(rc, "payload_follow_next %s: reading version %llu", f->path,
			       (unsigned long long)pver_inode(n)->version);
	}
	pver_put(f->pv);
	f->pv = n;
	return 0;
}

/* Where the next row ends at or after OFF in PV (bytes mode: not used):
 * @return its end offset, 0 when no complete row is committed, -errno. */
static int64_t row_end_from(struct pver *pv, uint64_t off)
{
	uint64_t size = pver_inode(pv)->size;
	char b[SCAN];

	while (off < size) {
		size_t k = size - off < sizeof(b) ? (size_t)(size - off) : sizeof(b);
		char *nl;
		int rc = read_all(pv, b, k, off);
		if (rc)
			return rc;
		nl = memchr(b, '\n', k);
		if (nl)
			return (int64_t)(off + (uint64_t)(nl - b) + 1);
		off += k;
	}
	return 0;
}

/* Copy what F may return now into BUF (5). @return bytes, 0, -errno. */
static ssize_t take(struct payload_follow *f, char *buf, size_t cap)
{
	const struct idx_inode *in = pver_inode(f->pv);
	uint64_t avail = in->size - f->pos;
	size_t n = avail < cap ? (size_t)avail : cap;
	int rc;

	f->row_len = 0;
	if (!avail)
		return 0;
	if (!(f->flags & PAYLOAD_FOLLOW_BYTES) && in->fmt_kind == PFMT_FIXED && in->fmt_recsize) {
		uint64_t rec = in->fmt_recsize;
		if (avail < rec)
			return 0;
		if (cap < rec) {
			f->row_len = rec;
			return -ERANGE;
		}
		n -= n % rec;
	}
	rc = read_all(f->pv, buf, n, f->pos);
	if (rc)
		return rc;
	if (!(f->flags & PAYLOAD_FOLLOW_BYTES) && in->fmt_kind != PFMT_FIXED) {
		char *nl = memrchr(buf, '\n', n);
		if (!nl) {
			int64_t end = n < avail ? row_end_from(f->pv, f->pos + n) : 0;
			if (end <= 0)
				return end;   /* the row is not complete yet */
			f->row_len = (uint64_t)end - f->pos;
			return -ERANGE;
		}
		n = (size_t)(nl - buf) + 1;
	}
	f->pos += n;
	return (ssize_t)n;
}

/* Wait up to MS for a commit (6). @return 1 when inotify woke it. */
static int wait_commit(struct payload_follow *f, int ms)
{
	struct pollfd p[2] = { { .fd = f->efd, .events = POLLIN }, { .fd = f->ifd, .events = POLLIN } };
	int nfds = f->ifd >= 0 ? 2 : 1;

	if (f->ifd < 0 && ms > POLL_MS)
		ms = POLL_MS;
	else if (ms > RECHECK_MS)
		ms = RECHECK_MS;
	return poll(p, (nfds_t)nfds, ms) > 0 && nfds == 2 && (p[1].revents & POLLIN);
}

static void drain(int fd)
{
	char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	if (fd >= 0)
		while (read(fd, b, sizeof(b)) > 0)
			;
}

PL_API ssize_t payload_follow_next(payload_follow *f, void *buf, size_t cap, int timeout_ms)
{
	uint64_t deadline = timeout_ms > 0 ? now_ms() + (uint64_t)timeout_ms : 0;
	int retries = 0, settle = 0;

	if (!f || !buf || !cap)
		return payload_fail(-EINVAL, "payload_follow_next%s%s", f ? " " : "", f ? f->path : "");
	for (;;) {
		ssize_t n;
		int rc;

		if (atomic_load(&f->cancel))
			return payload_fail(-ECANCELED, "payload_follow_next %s", f->path);
		drain(f->ifd);
		rc = refresh(f);
		if (rc)
			return rc;
		n = take(f, buf, cap);
		if (n == -EIO && retries++ < RETRIES) {
			/* the writer may have released this version's
			 * fragments after a later commit: check again */
			struct idx_inode in;
			if (!store_resolve(f->ps->st, f->path, 1, &in) &&
			    in.version != pver_inode(f->pv)->version)
				continue;
		}
		if (n == -ERANGE)
			return payload_fail(-ERANGE, "payload_follow_next %s: the row at byte %llu is "
				       "%llu bytes, the buffer %zu", f->path,
				       (unsigned long long)f->pos, (unsigned long long)f->row_len, cap);
		if (n < 0)
			return payload_fail((int)n, "payload_follow_next %s at byte %llu", f->path,
				       (unsigned long long)f->pos);
		if (n > 0)
			return n;
		if (timeout_ms == 0)
			return 0;
		{
			/* an event came but the commit was not visible yet:
			 * LMDB publishes a transaction to new readers (the lock
			 * file's txnid) just after it wrote the meta page, so
			 * look again shortly, a few times (6) */
			int ms = settle > 0 ? 1 : RECHECK_MS;
			if (timeout_ms > 0) {
				uint64_t t = now_ms();
				if (t >= deadline)
					return 0;
				if (deadline - t < (uint64_t)ms)
					ms = (int)(deadline - t);
			}
			if (settle > 0)
				settle--;
			if (wait_commit(f, ms))
				settle = SETTLE;
		}
	}
}

PL_API int payload_follow_open(payload_store *ps, const char *path, int flags, int64_t start,
			       payload_follow **out)
{
	struct payload_follow *f;
	struct idx_inode in;
	const struct idx_inode *pin;
	char watch[4200];
	int rc;

	if (out)
		*out = NULL;
	if (!ps || !path || !out || (flags & ~(PAYLOAD_FOLLOW_BYTES | PAYLOAD_FOLLOW_POLL)) ||
	    (start < 0))
		return payload_fail(-EINVAL, "payload_follow_open %s", path ? path : "(null)");
	if (strchr(path, '@')) {
		struct view_spec spec;
		size_t blen;
		if (view_parse(path, &blen, &spec) < 0 || spec.kind != VIEW_NONE)
			return payload_fail(-EINVAL, "payload_follow_open %s: a view cannot be followed", path);
	}
	rc = store_resolve(ps->st, path, 1, &in);
	if (!rc && !S_ISREG(in.mode))
		rc = S_ISDIR(in.mode) ? -EISDIR : -EINVAL;
	if (rc)
		return payload_fail(rc, "payload_follow_open %s", path);
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return payload_fail(-ENOMEM, "payload_follow_open %s", path);
	}
	f->ps = ps;
	f->ino = in.ino;
	f->flags = flags;
	f->ifd = f->efd = -1;
	rc = store_pver_get(ps->st, in.ino, &f->pv);
	if (rc) {
		f->pv = NULL;
		goto fail;
	}
	pin = pver_inode(f->pv);
	if ((pin->flags & INODE_F_MEMORY) && !(pin->flags & INODE_F_INLINE)) {
		rc = -EREMOTE;
		goto fail;
	}
	if ((uint64_t)start > pin->size && start != PAYLOAD_END) {
		rc = -EINVAL;
		goto fail;
	}
	if ((rc = load_tail(f, f->pv)))
		goto fail;
	if (start != PAYLOAD_END) {
		f->pos = (uint64_t)start;
	} else if (flags & PAYLOAD_FOLLOW_BYTES) {
		f->pos = pin->size;
	} else if (pin->fmt_kind == PFMT_FIXED && pin->fmt_recsize) {
		f->pos = pin->size - pin->size % pin->fmt_recsize;
	} else {
		/* after the last complete row: search back from the end */
		uint64_t end = pin->size;
		char b[SCAN];
		f->pos = 0;
		while (end) {
			size_t k = end < sizeof(b) ? (size_t)end : sizeof(b);
			char *nl;
			if ((rc = read_all(f->pv, b, k, end - k)))
				goto fail;
			if ((nl = memrchr(b, '\n', k))) {
				f->pos = end - k + (uint64_t)(nl - b) + 1;
				break;
			}
			end -= k;
		}
	}
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		rc = -errno;
		goto fail;
	}
	if (!(flags & PAYLOAD_FOLLOW_POLL) && store_get_conf(ps->st)->kind == STORE_LOCAL) {
		snprintf(watch, sizeof(watch), "%s/index/data.mdb", ps->dir);
		f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (f->ifd >= 0 && inotify_add_watch(f->ifd, watch, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
			close(f->ifd);   /* polled instead */
			f->ifd = -1;
		}
	}
	*out = f;
	return 0;
fail:
	payload_follow_close(f);
	return payload_fail(rc, "payload_follow_open %s", path);
}

PL_API int payload_follow_tell(const payload_follow *f, struct payload_follow_pos *out)
{
	if (!f || !out)
		return payload_fail(-EINVAL, "payload_follow_tell");
	out->offset = f->pos;
	out->version = pver_inode(f->pv)->version;
	out->size = pver_inode(f->pv)->size;
	out->row_len = f->row_len;
	return 0;
}

PL_API void payload_follow_cancel(payload_follow *f)
{
	uint64_t one = 1;

	if (!f)
		return;
	atomic_store(&f->cancel, 1);
	if (f->efd >= 0 && write(f->efd, &one, sizeof(one)) < 0) {
		/* the counter is full: a wake is pending anyway */
	}
}

PL_API void payload_follow_close(payload_follow *f)
{
	if (!f)
		return;
	if (f->ifd >= 0)
		close(f->ifd);
	if (f->efd >= 0)
		close(f->efd);
	pver_put(f->pv);
	free(f->tail);
	free(f->path);
	free(f);
}
