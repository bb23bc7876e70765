/* stage — per-handle staging: an append-only log of written bytes (in
 * memory, spilling to a file in STORE/staging past spill_size), the
 * fragments pre-cut from a sequential writer's tail, and the segment list
 * that describes the handle's content over its base version.
 *
 * Invariants:
 *  (1) segs are sorted, contiguous from 0 and cover exactly [0, size):
 *      segs[i].off + segs[i].len == segs[i+1].off; no segment is empty.
 *  (2) SEG_BASE bytes come from ws->base (pinned), SEG_STAGE bytes from the
 *      log (never rewritten: a later write appends and re-points), SEG_ZERO
 *      reads as zeros (holes from extending writes/truncates), SEG_PRECUT
 *      bytes from the pre-cut fragments (5).
 *  (3) A session is dirty iff its content may differ from its base.
 *  (4) ws->lock serializes the session's calls (the kernel may send reads
 *      and writes of one handle concurrently).
 *  (5) Streaming ingest. When content [pc_end, size) is more than a
 *      fragment (a writer appending: cp, >>), a piece is cut from pc_end
 *      (to the last row end within a fragment, or a fragment's worth of a
 *      longer row, whose next piece continues it: FRAG_F_CONT, with the
 *      phase pc_phase finds), handed to a wjob (encode + put on the store's pool)
 *      and the range is re-pointed at once to SEG_PRECUT: the pre-cut
 *      space is the concatenation of the pre-cut fragments in cut order,
 *      pc[i].d.off its offset there. Reading a SEG_PRECUT byte waits for
 *      its job, then reads the image (or, when the job failed, the raw
 *      bytes the job kept). So the log's bytes of the piece are no longer
 *      referenced and are dropped (mem_off moves up): a sequential writer
 *      keeps at most about a fragment plus one write in the log.
 *  (6) No SEG_STAGE segment references log bytes below mem_off.
 *  (7) A pre-cut fragment is only a source, like a base fragment: a later
 *      write over its range overlays it, and the commit reuses the ones
 *      still whole at a row boundary (commit.c (1)); the commit's sync
 *      covers the ones it uses. Pre-cut images the commit did not use are
 *      deleted when the session is reset (after a commit) or freed; after
 *      a crash nothing references them and the mount sweeps them.
 *  (8) Memory per session is bounded whatever the pattern: the log spills
 *      past spill_size (streaming then stops), and at most pc_max jobs
 *      (raw + encoded fragment each) are in flight: the writer waits for
 *      the oldest (helping to run it) beyond that.
 *  (9) The first failure of a job (or to start one) is sticky: streaming
 *      stops, and the next commit returns that errno (the object keeps its
 *      version). A failed fragment keeps its raw bytes and is never
 *      reused (bytes not handed to a job stay staged), so a later commit
 *      of the session re-cuts them.
 * (10) Copies (copy_file_range(2)). A range of another version — another
 *      object's, or another version of this one — is copied in as a
 *      SEG_FOREIGN segment naming that version, which the session pins
 *      (sg->fpv) until it is reset or freed; a copy from the base itself is
 *      a SEG_BASE segment. No byte moves: the commit reuses every foreign
 *      fragment that lies whole at a row boundary of the new content by id
 *      (commit.c (1)) and re-cuts only the pieces at the edges, reading them
 *      through the segment list. A copy within the session's own content
 *      duplicates its segments (memmove semantics: the source segments are
 *      taken before the destination changes); since two segments may then
 *      name the same log bytes, the log's buffer is no longer handed to a
 *      job without a copy (ws->dup_stage). Copied ranges are not pre-cut
 *      (pc_end moves past them): their fragments exist already.
 */
#include "index/store_int.h"
#include "cache/bufpool.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct pcfrag {
	struct frag_desc d;     /* d.off: offset in the pre-cut space */
	uint64_t at;            /* content offset where it was cut (phase) */
	int end_nl;             /* its last byte is '\n' */
	struct wjob *job;       /* in flight, or failed (holds the raw bytes) */
	int err;                /* the job failed with err */
	int bad;                /* not reusable (failed, or its sync failed) */
	int kept;               /* the index references it now: never delete */
};

struct stage {
	char *mem;              /* a bufpool buffer of mem_cap bytes */
	size_t mem_len, mem_cap;
	uint64_t mem_off;       /* log offset of mem[0] (6) */
	int fd;                 /* spill file, -1 until spilled */
	uint64_t len;           /* bytes logged (memory or file) */
	size_t spill;
	char path[4096];
	/* pre-cut fragments (5) */
	struct store *st;
	struct idx_inode fmt;   /* the base's format and storage */
	struct pcfrag *pc;
	size_t npc, pccap;
	uint64_t pc_len;        /* size of the pre-cut space */
	size_t pc_reaped;       /* pc[0..pc_reaped) have no job in flight */
	size_t pc_max;          /* jobs in flight at most (8) */
	int pc_err;             /* (9) */
	/* foreign versions (10): pinned, one reference each */
	struct pver **fpv;
	size_t nfpv, fpvcap;
};

struct wsess {
	struct store *st;
	struct pver *base;          /* pinned */
	struct stage sg;
	struct seg *segs;
	size_t n, cap;
	uint64_t size;
	uint64_t pc_end;            /* content [0, pc_end) is not cut further (5) */
	int stream;                 /* streaming allowed (not views, not disabled) */
	int dirty;
	int truncated;              /* truncated (or O_TRUNC) since the last
				     * commit: that commit is no append
				     * (commit.c (9)) */
	int64_t changed_ns;         /* time of the last write or truncate */
	int is_view;
	int dup_stage;              /* two segments may name the same log bytes (10) */
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
		ssize_t w = pwrite(fd, sg->mem + done, sg->mem_len - done, (off_t)(sg->mem_off + done));
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
	FAULT_CRASH("staging_spill");
	bp_put(sg->mem, sg->mem_cap);
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
			if (!(m = bp_get(cap, &cap)))
				return -ENOMEM;
			if (sg->mem_len)
				memcpy(m, sg->mem, sg->mem_len);
			bp_put(sg->mem, sg->mem_cap);
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
		if (off < sg->mem_off)
			return -EIO;     /* (6): a dropped byte is never referenced */
		memcpy(buf, sg->mem + (off - sg->mem_off), len);
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

/* ---- pre-cut fragments (5)-(9) ---- */

/* Wait for pc[i]'s job when it is in flight; account its outcome. */
static void pc_settle(struct stage *sg, size_t i)
{
	struct pcfrag *p = &sg->pc[i];
	int rc;

	if (!p->job || p->job->waited)
		return;
	rc = wjob_wait(p->job);
	if (rc) {
		p->err = rc;
		p->bad = 1;
		if (!sg->pc_err) {
			sg->pc_err = rc;
			log_warn("pre-cut fragment %016llx: %s; the commit will fail (streaming stops)",
				 (unsigned long long)p->d.id, strerror(-rc));
		}
		return;
	}
	p->d.rows = p->job->out.rows;
	p->d.stored_len = p->job->out.stored_len;
	p->d.codec = p->job->out.codec;
	p->d.checksum = p->job->out.checksum;
	p->d.flags |= p->job->out.flags & FRAG_F_STAGED;   /* recompress.c (P1) */
	wjob_free(p->job);
	p->job = NULL;
}

/* Account finished jobs, oldest first; with WAIT, wait for the oldest
 * one still in flight first. */
static void pc_reap(struct stage *sg, int wait)
{
	while (sg->pc_reaped < sg->npc) {
		struct pcfrag *p = &sg->pc[sg->pc_reaped];
		if (p->job && !p->job->waited && !wait && !wjob_done(p->job))
			break;
		pc_settle(sg, sg->pc_reaped++);
		wait = 0;
	}
}

static size_t pc_find(const struct stage *sg, uint64_t src)
{
	size_t lo = 0, hi = sg->npc;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (sg->pc[mid].d.off <= src)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Read pre-cut space [src, src+len). @return 0 or -errno. */
static int stage_read_pc(struct stage *sg, void *buf, size_t len, uint64_t src)
{
	if (!sg || src + len > sg->pc_len)
		return -EIO;
	for (size_t i = pc_find(sg, src); len; i++) {
		struct pcfrag *p = &sg->pc[i];
		uint64_t in = src - p->d.off;
		size_t k = p->d.len - in < len ? (size_t)(p->d.len - in) : len;
		pc_settle(sg, i);
		if (p->err) {
			memcpy(buf, p->job->raw + in, k);
		} else {
			struct frag_ref ref = { p->d.id, p->d.len, p->d.stored_len, p->d.checksum,
						store_backend_of(sg->st, &p->d) };
			struct fbuf *fb;
			int rc = fcache_fetch(sg->st->cache, &ref, 1, &fb);
			if (rc)
				return rc == -ENOENT ? -EIO : rc;
			memcpy(buf, fb->data + in, k);
			fbuf_put(fb);
		}
		buf = (char *)buf + k;
		src += k;
		len -= k;
	}
	return 0;
}

size_t stage_precut_n(const struct stage *sg)
{
	return sg ? sg->npc : 0;
}

const struct frag_desc *stage_precut_get(const struct stage *sg, size_t i, int *usable)
{
	*usable = !sg->pc[i].bad && !sg->pc[i].job;
	return &sg->pc[i].d;
}

uint64_t stage_precut_at(const struct stage *sg, size_t i)
{
	return sg->pc[i].at;
}

int stage_precut_ends_nl(const struct stage *sg, size_t i)
{
	return sg->pc[i].end_nl;
}

int stage_precut_settle(struct stage *sg)
{
	int rc;

	if (!sg)
		return 0;
	for (size_t i = 0; i < sg->npc; i++)
		pc_settle(sg, i);
	sg->pc_reaped = sg->npc;
	rc = sg->pc_err;
	sg->pc_err = 0;
	return rc;
}

void stage_precut_mark_bad(struct stage *sg)
{
	for (size_t i = 0; sg && i < sg->npc; i++)
		sg->pc[i].bad = 1;
}

void stage_precut_keep(struct stage *sg, size_t i)
{
	sg->pc[i].kept = 1;
}

/* Drop every pre-cut fragment: wait for the jobs, delete the images the
 * index does not reference (7). */
static void pc_clear(struct stage *sg)
{
	for (size_t i = 0; i < sg->npc; i++) {
		struct pcfrag *p = &sg->pc[i];
		pc_settle(sg, i);
		if (!p->err && !p->kept) {
			store_discard_image(sg->st, store_backend_of(sg->st, &p->d), p->d.id);
			fcache_drop(sg->st->cache, p->d.id);
		}
		wjob_free(p->job);
	}
	free(sg->pc);
	sg->pc = NULL;
	sg->npc = sg->pccap = sg->pc_reaped = 0;
	sg->pc_len = 0;
	sg->pc_err = 0;
}

/* Drop the foreign versions (10). */
static void foreign_clear(struct stage *sg)
{
	for (size_t i = 0; i < sg->nfpv; i++)
		pver_put(sg->fpv[i]);
	free(sg->fpv);
	sg->fpv = NULL;
	sg->nfpv = sg->fpvcap = 0;
}

size_t stage_foreign_n(const struct stage *sg)
{
	return sg ? sg->nfpv : 0;
}

struct pver *stage_foreign(const struct stage *sg, uint32_t i)
{
	return sg->fpv[i];
}

/* The index of PV among SG's foreign versions, added (with a reference)
 * when it is not one yet. @return 0 and *IDX, or -ENOMEM (nothing added). */
static int foreign_add(struct stage *sg, struct pver *pv, uint32_t *idx)
{
	for (size_t i = 0; i < sg->nfpv; i++)
		if (sg->fpv[i] == pv) {
			*idx = (uint32_t)i;
			return 0;
		}
	if (sg->nfpv == UINT32_MAX)
		return -ENOMEM;
	if (sg->nfpv == sg->fpvcap) {
		size_t cap = sg->fpvcap ? sg->fpvcap * 2 : 4;
		struct pver **v = realloc(sg->fpv, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		sg->fpv = v;
		sg->fpvcap = cap;
	}
	sg->fpv[sg->nfpv] = pver_ref(pv);
	*idx = (uint32_t)sg->nfpv++;
	return 0;
}

static void stage_reset(struct stage *sg)
{
	pc_clear(sg);
	foreign_clear(sg);
	bp_put(sg->mem, sg->mem_cap);
	sg->mem = NULL;
	sg->mem_len = sg->mem_cap = 0;
	sg->mem_off = 0;
	if (sg->fd >= 0) {
		close(sg->fd);
		if (unlink(sg->path) < 0 && errno != ENOENT)
			store_note_leftover(sg->st);
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
		} else if (s[i].kind == SEG_PRECUT) {
			rc = stage_read_pc(sg, (char *)buf + done, k, s[i].src + in);
		} else {
			struct pver *from = s[i].kind == SEG_FOREIGN ? stage_foreign(sg, s[i].fsrc) : base;
			ssize_t r = pver_read(from, (char *)buf + done, k, s[i].src + in);
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

/* Do segments P and Q (Q right after P in the content) continue each
 * other: same source, Q's bytes right after P's? */
static int seg_continues(const struct seg *p, uint8_t kind, uint32_t fsrc, uint64_t src)
{
	if (p->kind != kind || p->fsrc != fsrc)
		return 0;
	return kind == SEG_ZERO || p->src + p->len == src;
}

static int seg_push_f(struct wsess *ws, uint8_t kind, uint32_t fsrc, uint64_t src, uint64_t len)
{
	struct seg *last = ws->n ? &ws->segs[ws->n - 1] : NULL;

	if (!len)
		return 0;
	if (kind != SEG_FOREIGN)
		fsrc = 0;
	if (last && seg_continues(last, kind, fsrc, src)) {
		last->len += len;
	} else {
		if (segs_reserve(ws, 1))
			return -ENOMEM;
		ws->segs[ws->n++] = (struct seg){ .off = ws->size, .len = len, .src = kind == SEG_ZERO ? 0 : src,
						  .fsrc = fsrc, .kind = kind };
	}
	ws->size += len;
	return 0;
}

static int seg_push(struct wsess *ws, uint8_t kind, uint64_t src, uint64_t len)
{
	return seg_push_f(ws, kind, 0, src, len);
}

/* Merge segment I into I-1 when they continue each other. @return 1 when
 * merged. */
static int seg_merge_prev(struct wsess *ws, size_t i)
{
	struct seg *p, *q;

	if (i == 0 || i >= ws->n)
		return 0;
	p = &ws->segs[i - 1];
	q = &ws->segs[i];
	if (!seg_continues(p, q->kind, q->fsrc, q->src))
		return 0;
	p->len += q->len;
	memmove(q, q + 1, (ws->n - i - 1) * sizeof(*q));
	ws->n--;
	return 1;
}

/* Replace content [off, off+len) with a segment, extending with zeros.
 * Needs room for 3 more segments (reserved first): the only failure is
 * that reservation (-ENOMEM), and then nothing changed. */
static int seg_overlay_f(struct wsess *ws, uint64_t off, uint64_t len, uint8_t kind, uint32_t fsrc,
			 uint64_t src)
{
	uint64_t end = off + len;
	size_t first, last;
	int rc;

	if (kind != SEG_FOREIGN)
		fsrc = 0;
	if ((rc = segs_reserve(ws, 3)))
		return rc;
	if (off > ws->size && (rc = seg_push(ws, SEG_ZERO, 0, off - ws->size)))
		return rc;
	if (end >= ws->size) {
		if ((rc = seg_split(ws, off)))
			return rc;
		seg_cut_tail(ws, off);
		return seg_push_f(ws, kind, fsrc, src, len);
	}
	if ((rc = seg_split(ws, off)) || (rc = seg_split(ws, end)))
		return rc;
	/* segments [first, last) are replaced by one */
	first = off ? seg_find(ws->segs, ws->n, off) : 0;
	last = seg_find(ws->segs, ws->n, end);
	memmove(&ws->segs[first + 1], &ws->segs[last], (ws->n - last) * sizeof(*ws->segs));
	ws->n = first + 1 + (ws->n - last);
	ws->segs[first] = (struct seg){ .off = off, .len = len, .src = kind == SEG_ZERO ? 0 : src,
					.fsrc = fsrc, .kind = kind };
	seg_merge_prev(ws, first + 1);
	seg_merge_prev(ws, first);
	return 0;
}

static int seg_overlay(struct wsess *ws, uint64_t off, uint64_t len, uint8_t kind, uint64_t src)
{
	return seg_overlay_f(ws, off, len, kind, 0, src);
}

/* ---- streaming: pre-cutting a sequential writer's tail (5) ---- */

/* Lowest log offset a SEG_STAGE segment references (log end if none). */
static uint64_t stage_low_ref(const struct wsess *ws)
{
	uint64_t lo = ws->sg.len;

	for (size_t i = 0; i < ws->n; i++)
		if (ws->segs[i].kind == SEG_STAGE && ws->segs[i].src < lo)
			lo = ws->segs[i].src;
	return lo;
}

/* Drop log bytes below LO from memory (6). May move bytes: only after a
 * cut that copied. */
static void stage_drop_below(struct stage *sg, uint64_t lo)
{
	uint64_t n;

	if (sg->fd >= 0 || lo <= sg->mem_off)
		return;
	n = lo - sg->mem_off;
	if (n > sg->mem_len)
		n = sg->mem_len;
	memmove(sg->mem, sg->mem + n, sg->mem_len - (size_t)n);
	sg->mem_len -= (size_t)n;
	sg->mem_off += n;
}

/* The phase (store_int.h: frag_rows) of content at pc_end: fixed:N from
 * the offset; lines from the last pre-cut piece when it ends there, else
 * from the byte before (once per session, or after a truncate). A phase
 * that a later write makes wrong only costs the reuse: the commit checks
 * every pre-cut fragment against the content (commit.c check_cands).
 * @return 0 or -errno. */
static int pc_phase(struct wsess *ws, uint32_t *phase)
{
	const struct pcfrag *last = ws->sg.npc ? &ws->sg.pc[ws->sg.npc - 1] : NULL;
	char ch;
	ssize_t r;

	*phase = 0;
	if (inode_is_fixed(&ws->sg.fmt)) {
		*phase = (uint32_t)(ws->pc_end % ws->sg.fmt.fmt_recsize);
		return 0;
	}
	if (ws->pc_end == 0)
		return 0;
	if (last && last->at + last->d.len == ws->pc_end) {
		*phase = !last->end_nl;
		return 0;
	}
	r = segs_read(ws->base, &ws->sg, ws->segs, ws->n, &ch, 1, ws->pc_end - 1);
	if (r != 1)
		return r < 0 ? (int)r : -EIO;
	*phase = ch != '\n';
	return 0;
}

/* Cut one piece from [pc_end, size) if there is one: at most a fragment,
 * so a row longer than a fragment is cut as it comes and never held whole.
 * @return 1 when a piece was cut, 0 when there is none (yet), -errno when
 * a job could not be started (nothing changed; the bytes stay staged). */
static int stream_one(struct wsess *ws)
{
	struct stage *sg = &ws->sg;
	size_t fs = ws->st->frag_size, i = seg_find(ws->segs, ws->n, ws->pc_end), piece, have;
	size_t raw_cap = 0, rest_cap = 0;
	uint64_t tail = ws->size - ws->pc_end;
	const struct seg *last = &ws->segs[ws->n - 1];
	int handoff;
	char *raw = NULL, *rest = NULL;
	struct wjob *job;
	uint32_t phase;
	int rc, end_nl;

	if (tail <= fs || ws->n - i > 8)
		return 0;          /* not a fragment yet, or not a sequential tail */
	if ((rc = pc_phase(ws, &phase)))
		return rc;
	handoff = ws->n - i == 1 && last->off == ws->pc_end && last->kind == SEG_STAGE && !ws->dup_stage &&
		  last->src == sg->mem_off &&
		  last->src + last->len == sg->len && sg->fd < 0;
	if (handoff) {
		/* the log's buffer goes to the job; what follows the piece is
		 * copied into a fresh (recycled) buffer */
		have = sg->mem_len;
		piece = cut_piece_len(&sg->fmt, fs, sg->mem, have, 0, phase);
		if (!piece)
			return 0;
		if (!(rest = bp_get(sg->mem_cap, &rest_cap)))
			return -ENOMEM;
		memcpy(rest, sg->mem + piece, have - piece);
		raw = sg->mem;
		raw_cap = sg->mem_cap;
	} else {
		have = tail < 2 * fs ? (size_t)tail : 2 * fs;
		if (!(raw = bp_get(have, &raw_cap)))
			return -ENOMEM;
		ssize_t r = segs_read(ws->base, sg, ws->segs, ws->n, raw, have, ws->pc_end);
		piece = r == (ssize_t)have ? cut_piece_len(&sg->fmt, fs, raw, have, 0, phase) : 0;
		if (!piece) {
			bp_put(raw, raw_cap);
			return r < 0 ? (int)r : 0;
		}
	}
	if (!(rc = segs_reserve(ws, 3)) && sg->npc == sg->pccap) {
		size_t cap = sg->pccap ? sg->pccap * 2 : 64;
		struct pcfrag *v = realloc(sg->pc, cap * sizeof(*v));
		if (v) {
			sg->pc = v;
			sg->pccap = cap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (!rc)
		rc = wjob_new(ws->st, &sg->fmt, piece, phase, &job);
	if (rc) {
		if (handoff)
			bp_put(rest, rest_cap);
		else
			bp_put(raw, raw_cap);
		return rc;
	}
	/* nothing can fail from here on */
	end_nl = raw[piece - 1] == '\n';
	wjob_submit(job, raw, raw_cap);
	sg->pc[sg->npc++] = (struct pcfrag){ .d = job->d, .job = job, .at = ws->pc_end, .end_nl = end_nl };
	sg->pc[sg->npc - 1].d.off = sg->pc_len;
	seg_overlay(ws, ws->pc_end, piece, SEG_PRECUT, sg->pc_len);   /* reserved: cannot fail */
	sg->pc_len += piece;
	ws->pc_end += piece;
	if (handoff) {
		sg->mem = rest;
		sg->mem_cap = rest_cap;
		sg->mem_len = have - piece;
		sg->mem_off += piece;
	} else {
		stage_drop_below(sg, stage_low_ref(ws));
	}
	return 1;
}

/* After a write: pre-cut what the tail holds (5), keeping at most pc_max
 * jobs in flight (8). A failure to start a job leaves the bytes staged
 * and is sticky like a job's failure (9). */
static void stream_tail(struct wsess *ws)
{
	struct stage *sg = &ws->sg;

	if (!ws->stream || sg->pc_err || sg->fd >= 0)
		return;
	pc_reap(sg, 0);
	for (;;) {
		if (ws->size - ws->pc_end <= ws->st->frag_size)
			return;
		while (sg->npc - sg->pc_reaped >= sg->pc_max)
			pc_reap(sg, 1);
		int rc = sg->pc_err ? 0 : stream_one(ws);
		if (rc < 0) {     /* (9); the bytes stay staged */
			sg->pc_err = rc;
			log_warn("streaming stopped: %s; the commit will fail", strerror(-rc));
		}
		if (rc != 1)
			return;
	}
}

/* ---- sessions ---- */

static int wsess_reset(struct wsess *ws, int truncate)
{
	const struct idx_inode *in = pver_inode(ws->base);

	ws->n = 0;
	ws->size = 0;
	ws->pc_end = 0;
	ws->dup_stage = 0;
	stage_reset(&ws->sg);
	ws->sg.fmt = *in;
	if (truncate)
		return 0;
	ws->pc_end = in->size;
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
	if (st->rdonly || inode_ro(pver_inode(base))) {
		free(ws);
		return -EROFS;
	}
	ws->st = st;
	ws->base = pver_ref(base);
	ws->sg.fd = -1;
	ws->sg.spill = st->spill_size;
	ws->sg.st = st;
	ws->sg.pc_max = 2 * (pool_threads(st->pool) ? pool_threads(st->pool) : 1);
	ws->stream = !view && !st->no_stream;
	pthread_mutex_init(&ws->lock, NULL);
	if (view) {
		ws->is_view = 1;
		rc = view->kind == VIEW_ROWS ? view_resolve(base, view, &ws->vm) : -EROFS;
	}
	if (!rc)
		rc = wsess_reset(ws, truncate);
	ws->dirty = truncate && (ws->is_view ? view_size(&ws->vm) : pver_inode(base)->size) > 0;
	ws->truncated = truncate;
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
	if (off + len < off || off + len > STORE_SIZE_MAX)
		return -EFBIG;
	pthread_mutex_lock(&ws->lock);
	rc = segs_reserve(ws, 3);     /* so that the overlay cannot fail */
	if (!rc)
		rc = stage_append(&ws->sg, ws->st->dir, buf, len, &at);
	if (!rc)
		rc = seg_overlay(ws, off, len, SEG_STAGE, at);
	if (!rc) {
		ws->dirty = 1;
		ws->changed_ns = store_now_ns();
		stream_tail(ws);
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int wsess_truncate(struct wsess *ws, uint64_t size)
{
	int rc = 0;

	if (size > STORE_SIZE_MAX)
		return -EFBIG;
	pthread_mutex_lock(&ws->lock);
	if (size < ws->size) {
		rc = seg_split(ws, size);
		if (!rc)
			seg_cut_tail(ws, size);
		if (!rc && ws->pc_end > size)
			ws->pc_end = size;
	} else if (size > ws->size) {
		rc = seg_push(ws, SEG_ZERO, 0, size - ws->size);
	}
	if (!rc) {
		ws->dirty = 1;
		ws->truncated = 1;
		ws->changed_ns = store_now_ns();
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

/* fallocate(2) must find NEED more bytes free where the store keeps its
 * images (its file system; a RADOS store's cluster: store_statfs) (ext4
 * allocates them; here they are zeros until written, so the check tells
 * a caller reserving space whether its writes will fit).
 * @return 0, -ENOSPC or -errno of statfs. */
static int space_for(struct store *st, uint64_t need)
{
	struct statvfs v;
	int rc;

	if (!need)
		return 0;
	if ((rc = store_statfs(st, &v)) != 0)
		return rc;
	return (uint64_t)v.f_bavail * v.f_frsize < need ? -ENOSPC : 0;
}

int wsess_allocate(struct wsess *ws, uint64_t off, uint64_t len, int keep_size)
{
	uint64_t end = off + len;
	int rc;

	if (end < off || end > STORE_SIZE_MAX)
		return -EFBIG;
	pthread_mutex_lock(&ws->lock);
	rc = space_for(ws->st, end > ws->size ? end - ws->size : 0);
	if (!rc && !keep_size && end > ws->size) {
		rc = seg_push(ws, SEG_ZERO, 0, end - ws->size);
		if (!rc) {
			ws->dirty = 1;
			ws->changed_ns = store_now_ns();
		}
	}
	pthread_mutex_unlock(&ws->lock);
	return rc;
}

int wsess_zero(struct wsess *ws, uint64_t off, uint64_t len, int keep_size)
{
	uint64_t end = off + len;
	int rc = 0;

	if (end < off || end > STORE_SIZE_MAX)
		return -EFBIG;
	pthread_mutex_lock(&ws->lock);
	if (keep_size && end > ws->size)
		end = ws->size;
	else if (end > ws->size)
		rc = space_for(ws->st, end - ws->size);
	if (!rc && off < end)
		rc = seg_overlay(ws, off, end - off, SEG_ZERO, 0);
	if (!rc && off < end) {
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

/* ---- copies (10) ---- */

static int copy_range(struct wsess *ws, struct wsess *out, uint64_t a, uint64_t b);

/* The session changed by a copy into [off, end): dirty, and not pre-cut. */
static void copied(struct wsess *ws, uint64_t end)
{
	ws->dirty = 1;
	ws->changed_ns = store_now_ns();
	if (ws->pc_end < end)
		ws->pc_end = end < ws->size ? end : ws->size;
}

ssize_t wsess_copy(struct wsess *ws, struct pver *src, const struct view_map *vm, uint64_t src_off,
		   uint64_t len, uint64_t off)
{
	uint64_t size = vm ? view_size(vm) : src->in.size, a[2], n[2], at = off;
	const struct idx_inode *bin = pver_inode(ws->base);
	uint32_t fi = 0;
	int kind = SEG_FOREIGN, nr = 0, rc;

	if (src_off >= size || !len)
		return 0;
	if (len > size - src_off)
		len = size - src_off;
	if (off + len < off || off + len > ((uint64_t)1 << 50))
		return -EFBIG;
	/* the source's bytes as object ranges: a view is its header, then its rows */
	if (!vm) {
		a[nr] = src_off, n[nr++] = len;
	} else {
		if (src_off < vm->hdr_len) {
			uint64_t k = vm->hdr_len - src_off < len ? vm->hdr_len - src_off : len;
			a[nr] = src_off, n[nr++] = k;
		}
		if (src_off + len > vm->hdr_len) {
			uint64_t from = src_off > vm->hdr_len ? src_off - vm->hdr_len : 0;
			a[nr] = vm->rows_off + from, n[nr++] = src_off + len - vm->hdr_len - from;
		}
	}
	pthread_mutex_lock(&ws->lock);
	if (src == ws->base || (src->in.ino == bin->ino && src->in.version == bin->version))
		kind = SEG_BASE;           /* the session's own base: no foreign version */
	rc = segs_reserve(ws, 8);      /* so that the overlays cannot fail */
	if (!rc && kind == SEG_FOREIGN)
		rc = foreign_add(&ws->sg, src, &fi);
	for (int i = 0; !rc && i < nr; i++) {
		rc = seg_overlay_f(ws, at, n[i], (uint8_t)kind, fi, a[i]);
		at += n[i];
	}
	if (!rc)
		copied(ws, off + len);
	pthread_mutex_unlock(&ws->lock);
	return rc ? rc : (ssize_t)len;
}

ssize_t wsess_copy_within(struct wsess *ws, uint64_t src_off, uint64_t len, uint64_t off)
{
	struct wsess tmp = { .st = ws->st, .base = ws->base };
	int rc = 0;

	pthread_mutex_lock(&ws->lock);
	if (src_off >= ws->size || !len) {
		len = 0;
		goto out;
	}
	if (len > ws->size - src_off)
		len = ws->size - src_off;
	if (off + len < off || off + len > ((uint64_t)1 << 50)) {
		rc = -EFBIG;
		goto out;
	}
	/* the source segments first (memmove semantics), then overlay them */
	rc = copy_range(ws, &tmp, src_off, src_off + len);
	if (!rc)
		rc = segs_reserve(ws, 3 * tmp.n + 3);
	for (size_t i = 0; !rc && i < tmp.n; i++) {
		const struct seg *t = &tmp.segs[i];
		rc = seg_overlay_f(ws, off + t->off, t->len, t->kind, t->fsrc, t->src);   /* reserved */
		if (t->kind == SEG_STAGE)
			ws->dup_stage = 1;
	}
	if (!rc)
		copied(ws, off + len);
out:
	pthread_mutex_unlock(&ws->lock);
	free(tmp.segs);
	return rc ? rc : (ssize_t)len;
}

#define COPY_BYTES_MAX ((uint64_t)64 << 20)

ssize_t wsess_copy_sess(struct wsess *dst, struct wsess *src, uint64_t src_off, uint64_t len, uint64_t off)
{
	size_t chunk = 1 << 20;
	uint64_t done = 0;
	char *buf;
	int rc = 0;

	if (dst == src)
		return wsess_copy_within(dst, src_off, len, off);
	if (len > COPY_BYTES_MAX)
		len = COPY_BYTES_MAX;      /* a short copy: the caller asks again */
	if (off + len < off || off + len > ((uint64_t)1 << 50))
		return -EFBIG;
	if (!(buf = malloc(chunk)))
		return -ENOMEM;
	while (done < len) {
		size_t k = len - done < chunk ? (size_t)(len - done) : chunk;
		ssize_t r = wsess_read(src, buf, k, src_off + done);
		if (r <= 0) {
			rc = (int)r;
			break;
		}
		if ((rc = wsess_write(dst, buf, (size_t)r, off + done)))
			break;
		done += (uint64_t)r;
	}
	free(buf);
	return done ? (ssize_t)done : rc;
}

size_t wsess_precut_count(struct wsess *ws)
{
	size_t n = 0;

	pthread_mutex_lock(&ws->lock);
	for (size_t i = 0; i < ws->sg.npc; i++) {
		pc_settle(&ws->sg, i);
		n += !ws->sg.pc[i].err && !ws->sg.pc[i].kept;
	}
	pthread_mutex_unlock(&ws->lock);
	return n;
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
		rc = seg_push_f(out, s->kind, s->fsrc, s->kind == SEG_ZERO ? 0 : s->src + (from - s->off), to - from);
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
	return wsess_commit_ref(ws, NULL);
}

int wsess_commit_ref(struct wsess *ws, struct pver **out)
{
	struct pver *newpv = NULL;
	int rc = 0, empty = 0;

	if (out)
		*out = NULL;
	pthread_mutex_lock(&ws->lock);
	if (!ws->dirty)
		goto out;
	if (ws->is_view) {
		struct wsess obj = { .st = ws->st, .base = ws->base };
		uint64_t hdr_new = 0, rows_off_new = 0, rows_new = 0;
		rc = view_to_object(ws, &obj, &hdr_new, &rows_off_new, &rows_new);
		if (!rc)
			rc = commit_segments(ws->st, ws->base, obj.segs, obj.n, &ws->sg,
					     pver_inode(ws->base), ws->changed_ns, !ws->truncated, &newpv);
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
				     pver_inode(ws->base), ws->changed_ns, !ws->truncated, &newpv);
	}
	if (rc)
		goto out;
	pver_put(ws->base);
	ws->base = newpv;
	if (out)
		*out = pver_ref(newpv);
	rc = wsess_reset(ws, empty);
	ws->dirty = 0;
	ws->truncated = 0;
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
