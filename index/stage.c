/* stage — per-handle staging: an append-only log of written bytes (in
 * memory, spilling to a file in STORE/staging past spill_size) and the
 * segment list that describes the handle's content over its base version.
 *
 * Invariants:
 *  (1) segs are sorted, contiguous from 0 and cover exactly [0, size):
 *      segs[i].off + segs[i].len == segs[i+1].off; no segment is empty.
 *  (2) SEG_BASE bytes come from ws->base (pinned), SEG_STAGE bytes from the
 *      log (never rewritten: a later write appends and re-points), SEG_ZERO
 *      reads as zeros (holes from extending writes/truncates).
 *  (3) A session is dirty iff its content may differ from its base.
 *  (4) ws->lock serializes the session's calls (the kernel may send reads
 *      and writes of one handle concurrently).
 */
#include "index/store_int.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct stage {
	char *mem;
	size_t mem_len, mem_cap;
	int fd;                 /* spill file, -1 until spilled */
	uint64_t len;           /* bytes logged (memory or file) */
	size_t spill;
	char path[4096];
};

struct wsess {
	struct store *st;
	struct pver *base;          /* pinned */
	struct stage sg;
	struct seg *segs;
	size_t n, cap;
	uint64_t size;
	int dirty;
	int64_t changed_ns;         /* time of the last write or truncate */
	int is_view;
	struct view_map vm;         /* view sessions: the view's bytes in base */
	pthread_mutex_t lock;
};

/* ---- the log ---- */

static int stage_spill(struct stage *sg, const char *dir)
{
	static unsigned long counter;
	int fd;

	snprintf(sg->path, sizeof(sg->path), "%s/staging/%d.%lu.stage", dir, (int)getpid(),
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	fd = open(sg->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < sg->mem_len;) {
		ssize_t w = pwrite(fd, sg->mem + done, sg->mem_len - done, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int rc = -errno;
			close(fd);
			unlink(sg->path);
			return rc;
		}
		done += (size_t)w;
	}
	free(sg->mem);
	sg->mem = NULL;
	sg->mem_len = sg->mem_cap = 0;
	sg->fd = fd;
	return 0;
}

static int stage_append(struct stage *sg, const char *dir, const void *buf, size_t len, uint64_t *at)
{
	int rc = FAULT("staging_write");

	if (rc)
		return rc;
	if (sg->fd < 0 && sg->mem_len + len > sg->spill && (rc = stage_spill(sg, dir)) < 0)
		return rc;
	*at = sg->len;
	if (sg->fd >= 0) {
		for (size_t done = 0; done < len;) {
			ssize_t w = pwrite(sg->fd, (const char *)buf + done, len - done,
					   (off_t)(sg->len + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			done += (size_t)w;
		}
	} else {
		if (sg->mem_len + len > sg->mem_cap) {
			size_t cap = sg->mem_cap ? sg->mem_cap : 65536;
			char *m;
			while (cap < sg->mem_len + len)
				cap *= 2;
			if (!(m = realloc(sg->mem, cap)))
				return -ENOMEM;
			sg->mem = m;
			sg->mem_cap = cap;
		}
		memcpy(sg->mem + sg->mem_len, buf, len);
		sg->mem_len += len;
	}
	sg->len += len;
	return 0;
}

int stage_read(struct stage *sg, void *buf, size_t len, uint64_t off)
{
	int rc = FAULT("staging_read");

	if (rc)
		return rc;
	if (off + len > sg->len)
		return -EIO;
	if (sg->fd < 0) {
		memcpy(buf, sg->mem + off, len);
		return 0;
	}
	for (size_t done = 0; done < len;) {
		ssize_t r = pread(sg->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return 0;
}

static void stage_reset(struct stage *sg)
{
	free(sg->mem);
	sg->mem = NULL;
	sg->mem_len = sg->mem_cap = 0;
	if (sg->fd >= 0) {
		close(sg->fd);
		unlink(sg->path);
		sg->fd = -1;
	}
	sg->len = 0;
}

/* ---- segment lists ---- */

/* Index of the segment holding content byte OFF (OFF < size). */
static size_t seg_find(const struct seg *s, size_t n, uint64_t off)
{
	size_t lo = 0, hi = n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

ssize_t segs_read(struct pver *base, struct stage *sg, const struct seg *s, size_t n,
		  void *buf, size_t len, uint64_t off)
{
	uint64_t size = n ? s[n - 1].off + s[n - 1].len : 0;
	size_t done = 0;

	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	for (size_t i = seg_find(s, n, off); done < len; i++) {
		uint64_t in = off + done - s[i].off;
		size_t k = (size_t)(s[i].len - in);
		int rc = 0;
		if (k > len - done)
			k = len - done;
		if (s[i].kind == SEG_ZERO) {
			memset((char *)buf + done, 0, k);
		} else if (s[i].kind == SEG_STAGE) {
			rc = stage_read(sg, (char *)buf + done, k, s[i].src + in);
		} else {
			ssize_t r = pver_read(base, (char *)buf + done, k, s[i].src + in);
			rc = r < 0 ? (int)r : ((size_t)r != k ? -EIO : 0);
		}
		if (rc)
			return rc;
		done += k;
	}
	return (ssize_t)done;
}

static int segs_reserve(struct wsess *ws, size_t more)
{
	if (ws->n + more <= ws->cap)
		return 0;
	size_t cap = ws->cap ? ws->cap : 8;
	while (cap < ws->n + more)
		cap *= 2;
	struct seg *v = realloc(ws->segs, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ws->segs = v;
	ws->cap = cap;
	return 0;
}

/* Cut the content at OFF so that a segment starts there (OFF <= size). */
static int seg_split(struct wsess *ws, uint64_t off)
{
	size_t i;
	struct seg *s;
	uint64_t cut;

	if (off >= ws->size || off == 0)
		return 0;
	i = seg_find(ws->segs, ws->n, off);
	if (ws->segs[i].off == off)
		return 0;
	if (segs_reserve(ws, 1))
		return -ENOMEM;
	s = ws->segs;
	memmove(&s[i + 2], &s[i + 1], (ws->n - i - 1) * sizeof(*s));
	cut = off - s[i].off;
	s[i + 1] = s[i];
	s[i + 1].off = off;
	s[i + 1].len = s[i].len - cut;
	if (s[i].kind != SEG_ZERO)
		s[i + 1].src = s[i].src + cut;
	s[i].len = cut;
	ws->n++;
	return 0;
}

/* Drop everything from OFF to the end (OFF is a segment start or size). */
static void seg_cut_tail(struct wsess *ws, uint64_t off)
{
	while (ws->n && ws->segs[ws->n - 1].off >= off)
		ws->n--;
	ws->size = off;
}

static int seg_push(struct wsess *ws, uint8_t kind, uint64_t src, uint64_t len)
{
	struct seg *last = ws->n ? &ws->segs[ws->n - 1] : NULL;

	if (!len)
		return 0;
	if (last && last->kind == kind &&
	    (kind == SEG_ZERO || last->src + last->len == src)) {
		last->len += len;
	} else {
		if (segs_reserve(ws, 1))
			return -ENOMEM;
		ws->segs[ws->n++] = (struct seg){ .off = ws->size, .len = len, .src = src, .kind = kind };
	}
	ws->size += len;
	return 0;
}

/* Replace content [off, off+len) with a segment, extending with zeros. */
static int seg_overlay(struct wsess *ws, uint64_t off, uint64_t len, uint8_t kind, uint64_t src)
{
	uint64_t end = off + len, old = ws->size;
	struct seg *tail = NULL;
	size_t ntail = 0, first;
	int rc;

	if (off > old && (rc = seg_push(ws, SEG_ZERO, 0, off - old)))
		return rc;
	if (end >= ws->size) {
		if ((rc = seg_split(ws, off)))
			return rc;
		seg_cut_tail(ws, off);
		return seg_push(ws, kind, src, len);
	}
	if ((rc = seg_split(ws, off)) || (rc = seg_split(ws, end)))
		return rc;
	/* segments [first, last) are replaced; keep the tail aside */
	first = seg_find(ws->segs, ws->n, off);
	size_t last = seg_find(ws->segs, ws->n, end);
	ntail = ws->n - last;
	tail = malloc(ntail * sizeof(*tail));
	if (!tail)
		return -ENOMEM;
	memcpy(tail, &ws->segs[last], ntail * sizeof(*tail));
	uint64_t full = ws->size;
	ws->n = first;
	ws->size = off;
	rc = seg_push(ws, kind, src, len);
	for (size_t i = 0; !rc && i < ntail; i++)
		rc = seg_push(ws, tail[i].kind, tail[i].src, tail[i].len);
	free(tail);
	if (!rc && ws->size != full)
		rc = -EIO;
	return rc;
}

/* ---- sessions ---- */

static int wsess_reset(struct wsess *ws, int truncate)
{
	const struct idx_inode *in = pver_inode(ws->base);

	ws->n = 0;
	ws->size = 0;
	stage_reset(&ws->sg);
	if (truncate)
		return 0;
	if (ws->is_view) {
		int rc = seg_push(ws, SEG_BASE, 0, ws->vm.hdr_len);
		return rc ? rc : seg_push(ws, SEG_BASE, ws->vm.rows_off, ws->vm.rows_len);
	}
	return seg_push(ws, SEG_BASE, 0, in->size);
}

int store_wsess_begin(struct store *st, struct pver *base, const struct view_spec *view,
		      int truncate, struct wsess **out)
{
	struct wsess *ws = calloc(1, sizeof(*ws));
	int rc = 0;

	*out = NULL;
	if (!ws)
		return -ENOMEM;
	if (st->rdonly) {
		free(ws);
		return -EROFS;
	}
	ws->st = st;
	ws->base = pver_ref(base);
	ws->sg.fd = -1;
	ws->sg.spill = st->spill_size;
	pthread_mutex_init(&ws->lock, NULL);
	if (view) {
		ws->is_view = 1;
		rc = view->kind == VIEW_ROWS ? view_resolve(base, view, &ws->vm) : -EROFS;
	}
	if (!rc)
		rc = wsess_reset(ws, truncate);
	ws->dirty = truncate && (ws->is_view ? view_size(&ws->vm) : pver_inode(base)->size) > 0;
	ws->changed_ns = store_now_ns();
	if (rc) {
		wsess_free(ws);
		return rc;
	}
	*out = ws;
	return 0;
}

void wsess_free(struct wsess *ws)
{
	if (!ws)
		return;
	stage_reset(&ws->sg);
	pver_put(ws->base);
	free(ws->segs);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}

int wsess_write(struct wsess *ws, const void *buf, size_t len, uint64_t off)
{
	uint64_t at;
	int rc;

	if (!len)
		return 0;
	if (off + len < off || off + len > ((uint64_t)1 << 50))
		return -EFBIG;
	pthread_mutex_lock(&ws->lock);
	rc = stage_append(&ws->sg, ws->st->dir, buf, len, &at);
	if (!rc)
		rc = seg_overlay(ws, off, len, SEG_STAGE, at);
	if (!rc) {
		ws->dirty = 1;
		ws->changed_ns = store_now_ns();
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int wsess_truncate(struct wsess *ws, uint64_t size)
{
	int rc = 0;

	if (size > ((uint64_t)1 << 50))
		return -EFBIG;
	pthread_mutex_lock(&ws->lock);
	if (size < ws->size) {
		rc = seg_split(ws, size);
		if (!rc)
			seg_cut_tail(ws, size);
	} else if (size > ws->size) {
		rc = seg_push(ws, SEG_ZERO, 0, size - ws->size);
	}
	if (!rc) {
		ws->dirty = 1;
		ws->changed_ns = store_now_ns();
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

ssize_t wsess_read(struct wsess *ws, void *buf, size_t len, uint64_t off)
{
	ssize_t r;

	pthread_mutex_lock(&ws->lock);
	r = segs_read(ws->base, &ws->sg, ws->segs, ws->n, buf, len, off);
	pthread_mutex_unlock(&ws->lock);
	return r;
}

uint64_t wsess_size(const struct wsess *ws)
{
	return ws->size;
}

int wsess_dirty(const struct wsess *ws)
{
	return ws->dirty;
}

struct pver *wsess_base(const struct wsess *ws)
{
	return ws->base;
}

/* Offset just past the Nth '\n' of the session content, or -1 when the
 * content holds fewer than N rows ending in '\n'. */
static int64_t after_nth_newline(struct wsess *ws, uint64_t nrows)
{
	char buf[65536];
	uint64_t off = 0;

	if (nrows == 0)
		return 0;
	while (off < ws->size) {
		ssize_t r = segs_read(ws->base, &ws->sg, ws->segs, ws->n, buf, sizeof(buf), off);
		if (r <= 0)
			return r < 0 ? r : -1;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] == '\n' && --nrows == 0)
				return (int64_t)(off + (uint64_t)i + 1);
		off += (uint64_t)r;
	}
	return -1;
}

/* Last byte of content [0, end) is '\n'? (end > 0) */
static int ends_with_newline(struct wsess *ws, uint64_t end)
{
	char c;
	ssize_t r = segs_read(ws->base, &ws->sg, ws->segs, ws->n, &c, 1, end - 1);

	return r == 1 ? c == '\n' : (r < 0 ? (int)r : -EIO);
}

/* Append to OUT the session's segments covering [a, b). */
static int copy_range(struct wsess *ws, struct wsess *out, uint64_t a, uint64_t b)
{
	int rc = 0;

	if (a >= b)
		return 0;
	for (size_t i = seg_find(ws->segs, ws->n, a); !rc && i < ws->n && ws->segs[i].off < b; i++) {
		const struct seg *s = &ws->segs[i];
		uint64_t from = s->off > a ? s->off : a, to = s->off + s->len < b ? s->off + s->len : b;
		rc = seg_push(out, s->kind, s->kind == SEG_ZERO ? 0 : s->src + (from - s->off), to - from);
	}
	return rc;
}

/* Build the object's new segment list for a view session: new header,
 * base bytes between header and the view rows, new rows, base tail.
 * Sets *hdr_new and *rows_new to the lengths of the new parts and
 * *rows_off_new to where the new rows start. */
static int view_to_object(struct wsess *ws, struct wsess *obj, uint64_t *hdr_new, uint64_t *rows_off_new,
			  uint64_t *rows_new)
{
	const struct idx_inode *in = pver_inode(ws->base);
	uint64_t hrows = inode_is_fixed(in) ? 0 : in->header;
	uint64_t tail = ws->vm.rows_off + ws->vm.rows_len, h;
	int64_t cut;
	int rc, more_after, nl;
	char lf = '\n';
	uint64_t at;

	if (hrows > in->rows)
		hrows = in->rows;
	if (inode_is_fixed(in) && ws->size % in->fmt_recsize)
		return -EINVAL;
	if (ws->size == 0) {
		/* nothing written: the view's rows go, the header stays */
		*hdr_new = ws->vm.hdr_len;
		*rows_off_new = ws->vm.rows_off;
		*rows_new = 0;
		rc = seg_push(obj, SEG_BASE, 0, ws->vm.rows_off);
		return rc ? rc : seg_push(obj, SEG_BASE, tail, in->size - tail);
	}
	cut = after_nth_newline(ws, hrows);
	if (cut < -1)
		return (int)cut;
	if (cut == -1) {
		/* all of it is header when its last header row lacks '\n' */
		int64_t c = after_nth_newline(ws, hrows - 1);
		if (c < -1)
			return (int)c;
		if (c < 0 || (uint64_t)c >= ws->size)
			return -EINVAL;    /* the header rows are missing */
		cut = (int64_t)ws->size;
	}
	h = (uint64_t)cut;
	more_after = in->size > ws->vm.hdr_len;   /* base bytes follow the header */
	rc = copy_range(ws, obj, 0, h);
	if (!rc && more_after && h && (nl = ends_with_newline(ws, h)) <= 0) {
		rc = nl < 0 ? nl : stage_append(&ws->sg, ws->st->dir, &lf, 1, &at);
		if (!rc)
			rc = seg_push(obj, SEG_STAGE, at, 1);
	}
	*hdr_new = obj->size;
	if (!rc)
		rc = seg_push(obj, SEG_BASE, ws->vm.hdr_len, ws->vm.rows_off - ws->vm.hdr_len);
	/* rows written after a last base row without '\n' (an empty view at
	 * the end): end that row so that it and the new rows stay apart */
	if (!rc && !inode_is_fixed(in) && ws->size > h && ws->vm.rows_off == in->size &&
	    ws->vm.rows_off > ws->vm.hdr_len) {
		char last;
		ssize_t r = pver_read(ws->base, &last, 1, in->size - 1);
		rc = r < 0 ? (int)r : (r != 1 ? -EIO : 0);
		if (!rc && last != '\n' && !(rc = stage_append(&ws->sg, ws->st->dir, &lf, 1, &at)))
			rc = seg_push(obj, SEG_STAGE, at, 1);
	}
	*rows_off_new = obj->size;
	if (!rc)
		rc = copy_range(ws, obj, h, ws->size);
	if (!rc && !inode_is_fixed(in) && ws->size > h && tail < in->size &&
	    (nl = ends_with_newline(ws, ws->size)) <= 0) {   /* fixed records have no '\n' */
		rc = nl < 0 ? nl : stage_append(&ws->sg, ws->st->dir, &lf, 1, &at);
		if (!rc)
			rc = seg_push(obj, SEG_STAGE, at, 1);
	}
	*rows_new = obj->size - *rows_off_new;
	if (!rc)
		rc = seg_push(obj, SEG_BASE, tail, in->size - tail);
	return rc;
}

int wsess_commit(struct wsess *ws)
{
	struct pver *newpv = NULL;
	int rc = 0, empty = 0;

	pthread_mutex_lock(&ws->lock);
	if (!ws->dirty)
		goto out;
	if (ws->is_view) {
		struct wsess obj = { .st = ws->st, .base = ws->base };
		uint64_t hdr_new = 0, rows_off_new = 0, rows_new = 0;
		rc = view_to_object(ws, &obj, &hdr_new, &rows_off_new, &rows_new);
		if (!rc)
			rc = commit_segments(ws->st, ws->base, obj.segs, obj.n, &ws->sg,
					     pver_inode(ws->base), ws->changed_ns, &newpv);
		free(obj.segs);
		if (!rc) {
			ws->vm.hdr_len = hdr_new;
			ws->vm.rows_off = rows_off_new;
			ws->vm.rows_len = rows_new;
			/* the session's content stays what it wrote: empty content
			 * (rows deleted, header kept) rebases as empty, so writes that
			 * follow on the same handle (`cmd > f@rows=…` closes a dup
			 * before cmd writes) start from nothing */
			empty = ws->size == 0;
		}
	} else {
		rc = commit_segments(ws->st, ws->base, ws->segs, ws->n, &ws->sg,
				     pver_inode(ws->base), ws->changed_ns, &newpv);
	}
	if (rc)
		goto out;
	pver_put(ws->base);
	ws->base = newpv;
	rc = wsess_reset(ws, empty);
	ws->dirty = 0;
out:
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int store_truncate(struct store *st, uint64_t ino, const struct view_spec *view, uint64_t size)
{
	struct pver *pv;
	struct wsess *ws;
	int rc;

	if (view && view->kind != VIEW_ROWS)
		return -EROFS;
	rc = store_pver_get(st, ino, &pv);
	if (rc)
		return rc;
	rc = store_wsess_begin(st, pv, view, 0, &ws);
	pver_put(pv);
	if (rc)
		return rc;
	rc = wsess_truncate(ws, size);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}
