/* commit — turning a handle's staged content into a new version.
 *
 * The commit protocol (DESIGN §4):
 *  (1) The new content is a segment list over the base version, the
 *      session's pre-cut fragments (stage.c (5)) and its foreign versions
 *      (stage.c (10): copies). Fragments that the new content contains
 *      whole, starting a row or continuing one exactly as their FRAG_F_CONT
 *      says (fixed:N: at the same place in a record) — base fragments
 *      inside a SEG_BASE segment, pre-cut ones inside a SEG_PRECUT segment,
 *      a foreign version's inside a SEG_FOREIGN segment (same format and
 *      storage) — are reused as they are, by id (a fragment another object
 *      lists gets one more reference: counts are kept across objects); only
 *      the gaps between reused fragments ("regions") are cut into new
 *      fragments of at most fragment_size bytes, at the last row end within
 *      that size or inside a longer row (pver.c (4)), so a row of any length
 *      is cut with one fragment's worth of buffer. So an append or
 *      a tail change writes only the fragments it touches, a streamed
 *      write (cp) writes at close only its last piece, and a change in the
 *      middle rewrites the fragments around the change (the index records
 *      after it move, their bytes do not).
 *  (2) A reused fragment smaller than half the fragment size next to a
 *      region is absorbed into it, so repeated small appends do not leave a
 *      trail of tiny fragments: each commit rewrites at most one small
 *      neighbour on each side of each region.
 *  (3) Every fragment image the new list references and the index does not
 *      yet (new ones and reused pre-cut ones) is written (backend put)
 *      before the index transaction that references them, and no durable
 *      state ever references an image that is not durable: ONE backend
 *      sync() naming exactly those ids returns 0 before the txn (put does
 *      not fsync: backend_local.c (1), (2)); the txn's own durability is
 *      durable.c's.
 *  (4) One LMDB write txn swaps the fragment list (only the records that
 *      differ are written), the reference counts (all increments before
 *      any decrement, so a fragment that moves is never seen at 0), the
 *      inline bytes, size, rows, mtime and version+1.
 *  (5) On any failure before the txn commits, the object keeps its
 *      previous version; the new images are deleted (or, after a crash,
 *      swept at the next mount since nothing references them). Pre-cut
 *      fragments stay with the session (deleted when it is freed); after a
 *      failed sync none of them is reused (their durability is unknown).
 *  (6) Images whose count reached 0 are released after the txn committed
 *      (deleted now, or at their last unpin).
 *  (8) A data commit (a session's: NEWIN is its base's inode) is cut with
 *      the object's current format and storage: when a setting changed
 *      since the session began (xattr.c re-cut the object), run_txn sees
 *      it under commit_lock and the commit is cut again with the current
 *      settings (so it neither reverts the change nor slips a size that is
 *      not a multiple of a new fixed:N past its check).
 *  (7) Regions are cut in order and each piece becomes a wjob (wjob.c):
 *      ids are allocated in cut order, the encodes and puts run on the
 *      store's pool, several at once, at most 2 x threads in flight (the
 *      committer waits for the oldest, helping to run it), so memory stays
 *      bounded by a few fragments whatever the commit's size.
 *  (9) Streams (DESIGN §9, fs/ops.c (6)): the new version is marked
 *      `extends` (pver_extends) only when its content keeps every byte of
 *      the version it replaces at the same offset, and its session did
 *      not truncate (truncate(2), ftruncate(2), O_TRUNC: a truncate is
 *      never an append, even one that grows the object with zeros; the
 *      caller says so: MAY_EXTEND). That is decided from
 *      the segment list, never from sizes or fragment ids: the content
 *      begins with SEG_BASE segments that map [0, base size) onto the
 *      base at the same offsets (keeps_base), AND the version the txn
 *      replaces (read under commit_lock) is the session's base. A
 *      session whose base was overtaken by another commit (the last
 *      commit wins, design.md) is never marked, even if it appended;
 *      overtaken only by recompression swaps (recompress.c (S7): versions
 *      with exactly the base's bytes, known from the version cache's
 *      same_since, store_same_since) it is marked, and ext_from says
 *      from which version on every version's bytes are kept.
 *      Fragment lists are not the test: an append re-cuts the base's
 *      small last fragment (2) and inline objects have none, while their
 *      bytes are kept all the same.
 */
#include "index/store_int.h"
#include "cache/bufpool.h"
#include "cache/codec.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A run of CNT fragments, contiguous in their source and in the new
 * content: base fragments [idx, idx+cnt) whole inside one SEG_BASE
 * segment (or a foreign version's inside one SEG_FOREIGN segment), or one
 * pre-cut fragment (cnt 1). Runs keep the reuse plan O(segments), not
 * O(fragments): only a run's ends are checked. */
struct cand {
	uint64_t off;      /* offset of the run in the new content */
	uint32_t idx;      /* first fragment's index in its source */
	uint32_t cnt;      /* fragments in the run; 0 = none reused */
	uint32_t fsrc;     /* foreign: the session's foreign version */
	uint8_t pre;       /* a pre-cut fragment of the session */
	uint8_t foreign;   /* fragments of a foreign version */
};

struct cut {
	struct store *st;
	struct pver *base;
	struct stage *sg;
	const struct seg *segs;
	size_t nsegs;
	const struct idx_inode *in;   /* format to cut with */
	struct wjob **jobs;           /* new fragments, in cut order */
	uint32_t *pos;                /* jobs[k] is list[pos[k]] */
	uint32_t njobs, capjobs, waited;
	unsigned max_inflight;
	struct frag_backend *be;
	char *buf;                    /* inline content */
	size_t bufcap;
	int base_nl;                  /* the base's last byte is '\n' (-1: not read yet) */
};

static uint64_t content_size(const struct seg *s, size_t n)
{
	return n ? s[n - 1].off + s[n - 1].len : 0;
}

static int read_exact(struct cut *c, void *buf, size_t len, uint64_t off)
{
	ssize_t r = segs_read(c->base, c->sg, c->segs, c->nsegs, buf, len, off);

	return r < 0 ? (int)r : ((size_t)r == len ? 0 : -EIO);
}

/* The version run V's fragments come from (not for pre-cut runs). */
static const struct pver *run_src(const struct cut *c, const struct cand *v)
{
	return v->foreign ? stage_foreign(c->sg, v->fsrc) : c->base;
}

/* Descriptor of fragment K of run V. */
static const struct frag_desc *run_frag(const struct cut *c, const struct cand *v, uint32_t k)
{
	int usable;

	return v->pre ? stage_precut_get(c->sg, v->idx, &usable) : &run_src(c, v)->frags[v->idx + k];
}

static uint64_t run_len(const struct cut *c, const struct cand *v)
{
	const struct frag_desc *a, *b;

	if (!v->cnt)
		return 0;
	a = run_frag(c, v, 0);
	b = run_frag(c, v, v->cnt - 1);
	return b->off + b->len - a->off;
}

/* Is the last byte of the version run V comes from (base or foreign) a
 * '\n'? Read once for the base. @return 1, 0 or -errno. */
static int src_ends_nl(struct cut *c, const struct cand *v)
{
	struct pver *src = v->foreign ? stage_foreign(c->sg, v->fsrc) : c->base;
	ssize_t r;
	char ch;

	if (!v->foreign && c->base_nl >= 0)
		return c->base_nl;
	r = pver_read(src, &ch, 1, src->in.size - 1);
	if (r != 1)
		return r < 0 ? (int)r : -EIO;
	if (!v->foreign)
		c->base_nl = ch == '\n';
	return ch == '\n';
}

/* Does run V (cnt > 0, lines) end with '\n'? Told by the fragment after
 * it in its source (FRAG_F_CONT: that one continues a row), by the
 * session for a pre-cut one, else by the source's last byte: no read but
 * for a source's last fragment. @return 1, 0 or -errno. */
static int run_end_nl(struct cut *c, const struct cand *v)
{
	const struct pver *src;

	if (v->pre)
		return stage_precut_ends_nl(c->sg, v->idx);
	src = run_src(c, v);
	if (v->idx + v->cnt < src->nfrags)
		return !(src->frags[v->idx + v->cnt].flags & FRAG_F_CONT);
	return src_ends_nl(c, v);
}

/* The phase (store_int.h: frag_rows) of new content at OFF; PREV is the
 * run before OFF (or NULL): when it ends at OFF it tells without a read.
 * @return 0 and *PHASE, or -errno. */
static int phase_at(struct cut *c, const struct cand *prev, uint64_t off, uint32_t *phase)
{
	int nl;
	char ch;

	*phase = 0;
	if (inode_is_fixed(c->in)) {
		*phase = (uint32_t)(off % c->in->fmt_recsize);
		return 0;
	}
	if (off == 0)
		return 0;
	if (prev && prev->cnt && prev->off + run_len(c, prev) == off) {
		nl = run_end_nl(c, prev);
	} else {
		nl = read_exact(c, &ch, 1, off - 1);
		if (!nl)
			nl = ch == '\n';
	}
	if (nl < 0)
		return nl;
	*phase = !nl;
	return 0;
}

/* Offset of run V's first fragment in its source (a pre-cut one: where
 * the session cut it). */
static uint64_t run_src_off(const struct cut *c, const struct cand *v)
{
	return v->pre ? stage_precut_at(c->sg, v->idx) : run_frag(c, v, 0)->off;
}

/* Drop the run's first (FIRST) or last fragment from reuse. */
static void run_trim(const struct cut *c, struct cand *v, int first)
{
	if (first) {
		v->off += run_frag(c, v, 0)->len;
		v->idx++;
	}
	v->cnt--;
}

/* ---- reuse plan ---- */

static int add_cand(struct cand **v, uint32_t *n, uint32_t *cap, uint64_t off, uint32_t idx,
		    uint32_t cnt, int pre, int foreign, uint32_t fsrc)
{
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 64;
		struct cand *nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct cand){ .off = off, .idx = idx, .cnt = cnt, .fsrc = fsrc, .pre = (uint8_t)pre,
				      .foreign = (uint8_t)foreign };
	return 0;
}

/* Fragments of B whole inside segment S (of SEG_BASE or SEG_FOREIGN kind,
 * whose src is an offset in B): one run, found by two binary searches. */
static int add_run(const struct pver *b, const struct seg *s, int foreign, struct cand **v, uint32_t *n,
		   uint32_t *cap)
{
	uint32_t lo = 0, hi = b->nfrags, first;

	while (lo < hi) {      /* first fragment with off >= src */
		uint32_t mid = lo + (hi - lo) / 2;
		if (b->frags[mid].off < s->src)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	hi = b->nfrags;
	while (lo < hi) {      /* first fragment ending past the segment */
		uint32_t mid = lo + (hi - lo) / 2;
		if (b->frags[mid].off + b->frags[mid].len <= s->src + s->len)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == first)
		return 0;
	return add_cand(v, n, cap, s->off + (b->frags[first].off - s->src), first, lo - first, 0, foreign,
			s->fsrc);
}

/* May fragments of version PV be listed as they are by a version in
 * format and storage IN? */
static int same_kind(const struct pver *pv, const struct idx_inode *in)
{
	return pv->nfrags && pv->in.fmt_kind == in->fmt_kind && pv->in.fmt_recsize == in->fmt_recsize &&
	       (pv->in.flags & INODE_F_MEMORY) == (in->flags & INODE_F_MEMORY);
}

/* Fragments contained whole in a SEG_BASE segment (base fragments, when
 * BASE_OK), a SEG_FOREIGN segment (of a version of the same format and
 * storage) or a SEG_PRECUT segment (usable pre-cut ones), in content
 * order. */
static int find_cands(struct cut *c, int base_ok, int pre_ok, struct cand **v, uint32_t *n)
{
	uint32_t cap = 0, npc = (uint32_t)stage_precut_n(c->sg);
	int rc = 0;

	*v = NULL;
	*n = 0;
	for (size_t i = 0; i < c->nsegs && !rc; i++) {
		const struct seg *s = &c->segs[i];
		uint32_t lo = 0, hi;
		int usable;
		if (s->kind == SEG_BASE && base_ok) {
			rc = add_run(c->base, s, 0, v, n, &cap);
		} else if (s->kind == SEG_FOREIGN) {
			const struct pver *f = stage_foreign(c->sg, s->fsrc);
			if (same_kind(f, c->in))
				rc = add_run(f, s, 1, v, n, &cap);
		} else if (s->kind == SEG_PRECUT && pre_ok) {
			hi = npc;
			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;
				if (stage_precut_get(c->sg, mid, &usable)->off < s->src)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (uint32_t k = lo; k < npc && !rc; k++) {
				const struct frag_desc *d = stage_precut_get(c->sg, k, &usable);
				if (d->off + d->len > s->src + s->len)
					break;
				if (usable)
					rc = add_cand(v, n, &cap, s->off + (d->off - s->src), k, 1, 1, 0, 0);
			}
		}
	}
	return rc;
}

/* Is there a gap (bytes not reused) right before run I / right after it?
 * (Runs are sorted and do not overlap.) */
static int gap_before(const struct cut *c, const struct cand *v, uint32_t i)
{
	return v[i].off > 0 && !(i && v[i - 1].cnt && v[i - 1].off + run_len(c, &v[i - 1]) == v[i].off);
}

static int gap_after(const struct cut *c, const struct cand *v, uint32_t i, uint32_t n, uint64_t size)
{
	uint64_t end = v[i].off + run_len(c, &v[i]);

	return end < size && !(i + 1 < n && v[i + 1].cnt && v[i + 1].off == end);
}

/* Check each run continues the rows of the new content as it did in its
 * source (trimming the fragments that do not); then absorb small fragments
 * next to regions (invariant 2). Inside a run every fragment follows the
 * same byte as in its source, so its FRAG_F_CONT and rows still hold:
 * only the ends of a run need a look.
 * - lines: the first fragment has FRAG_F_CONT exactly when the byte
 *   before it here is not '\n' (0 bytes before it: a row starts);
 * - fixed:N: the run moved by a multiple of N (its phase is kept);
 * - the source's last fragment, when it ends without '\n', is reused only
 *   where it is still last: a short last row is re-cut with what follows
 *   it rather than continued by a new fragment. */
static int check_cands(struct cut *c, struct cand *v, uint32_t n, uint64_t size)
{
	int fixed = inode_is_fixed(c->in), rc;
	uint64_t half = c->st->frag_size / 2;
	uint8_t *small;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t phase;
		if (!v[i].cnt)
			continue;
		if (fixed) {
			uint64_t rec = c->in->fmt_recsize, ph = v[i].off % rec;
			/* every fragment of the run is shifted alike; records that fit
			 * a fragment stay whole (a pre-cut piece after a truncate to
			 * a partial record may start inside one: re-cut) */
			if (ph != run_src_off(c, &v[i]) % rec || (ph && rec <= c->st->frag_size))
				v[i].cnt = 0;
			continue;
		}
		if ((rc = phase_at(c, i ? &v[i - 1] : NULL, v[i].off, &phase)))
			return rc;
		if (!!(run_frag(c, &v[i], 0)->flags & FRAG_F_CONT) != phase)
			run_trim(c, &v[i], 1);
		if (v[i].cnt && !v[i].pre && v[i].idx + v[i].cnt == run_src(c, &v[i])->nfrags &&
		    v[i].off + run_len(c, &v[i]) < size) {
			int nl = src_ends_nl(c, &v[i]);
			if (nl < 0)
				return nl;
			if (!nl)
				run_trim(c, &v[i], 0);
		}
	}
	if (!n || !(small = calloc(n, 1)))
		return n ? -ENOMEM : 0;
	for (uint32_t i = 0; i < n; i++) {      /* decided on the state before absorption */
		int gb, ga;
		if (!v[i].cnt)
			continue;
		gb = gap_before(c, v, i);
		ga = gap_after(c, v, i, n, size);
		if (v[i].cnt == 1)
			small[i] = run_frag(c, &v[i], 0)->len < half && (gb || ga) ? 1 : 0;
		else
			small[i] = (run_frag(c, &v[i], 0)->len < half && gb ? 1 : 0) |
				   (run_frag(c, &v[i], v[i].cnt - 1)->len < half && ga ? 2 : 0);
	}
	for (uint32_t i = 0; i < n; i++) {
		if (v[i].cnt == 1 && small[i])
			v[i].cnt = 0;
		else if (v[i].cnt > 1) {
			if (small[i] & 1)
				run_trim(c, &v[i], 1);
			if (small[i] & 2)
				run_trim(c, &v[i], 0);
		}
	}
	free(small);
	return 0;
}

/* ---- cutting regions into new fragments ---- */

static int grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 65536;
	while (nc < need)
		nc *= 2;
	char *np = realloc(*p, nc);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

/* Wait for the oldest job in flight. @return its result. */
static int wait_oldest(struct cut *c)
{
	return wjob_wait(c->jobs[c->waited++]);
}

/* Grow bufpool buffer *P (capacity *CAP, LEN bytes used) to NEED bytes.
 * @return 0 or -ENOMEM (*P unchanged). */
static int bgrow(char **p, size_t *cap, size_t len, size_t need)
{
	size_t nc;
	char *np;

	if (need <= *cap)
		return 0;
	if (!(np = bp_get(need, &nc)))
		return -ENOMEM;
	if (len)
		memcpy(np, *p, len);
	bp_put(*p, *cap);
	*p = np;
	*cap = nc;
	return 0;
}

/* Queue RAW/LEN (a bufpool buffer of CAP bytes, taken over in every case)
 * of phase PHASE as the new fragment at list position POS (invariant 7).
 * @return 0 or -errno (of this piece or of an earlier job). */
static int emit(struct cut *c, char *raw, size_t cap, size_t len, uint32_t phase, uint32_t pos)
{
	struct wjob *j;
	int rc = 0;

	if (c->njobs >= STORE_FRAGS_MAX)
		rc = -EFBIG;
	while (!rc && c->njobs - c->waited >= c->max_inflight)
		rc = wait_oldest(c);
	if (!rc && c->njobs == c->capjobs) {
		uint32_t nc = c->capjobs ? c->capjobs * 2 : 16;
		struct wjob **nj = realloc(c->jobs, nc * sizeof(*nj));
		uint32_t *np = nj ? realloc(c->pos, nc * sizeof(*np)) : NULL;
		if (nj)
			c->jobs = nj;
		if (np) {
			c->pos = np;
			c->capjobs = nc;
		} else {
			rc = -ENOMEM;
		}
	}
	if (!rc)
		rc = wjob_start(c->st, c->in, raw, cap, len, phase, &j);
	if (rc) {
		bp_put(raw, cap);
		return rc;
	}
	c->jobs[c->njobs] = j;
	c->pos[c->njobs++] = pos;
	return 0;
}

size_t cut_piece_len(const struct idx_inode *in, size_t frag_size, const char *buf, size_t have,
		     int final, uint32_t phase)
{
	const char *nl;
	size_t p;

	if (have <= frag_size)
		return final ? have : 0;
	if (inode_is_fixed(in)) {
		size_t n = in->fmt_recsize, end = phase % n ? n - phase % n : n;   /* first record end */
		return end <= frag_size ? end + (frag_size - end) / n * n : frag_size;
	}
	nl = memrchr(buf, '\n', frag_size);
	if (!nl)
		return frag_size;     /* a row longer than a fragment */
	p = (size_t)(nl - buf) + 1;
	if (p >= frag_size / 2)
		return p;
	/* less than half a fragment of rows, then a row that does not fit the
	 * rest: when that row is longer than a fragment too (it is cut anyway)
	 * the fragment is filled with its start, so rows a little longer than
	 * a fragment do not leave a small fragment each */
	if (have - p < frag_size)
		return final || memchr(buf + p, '\n', have - p) ? p : 0;
	return memchr(buf + p, '\n', frag_size) ? p : frag_size;
}

uint32_t next_phase(const struct idx_inode *in, const char *buf, size_t len, uint32_t phase)
{
	if (inode_is_fixed(in))
		return (uint32_t)(((uint64_t)phase + len) % in->fmt_recsize);
	return len ? buf[len - 1] != '\n' : phase;
}

/* Cut content [a, b), whose first byte is of phase PHASE, into pieces of
 * at most frag_size bytes. The buffer holds frag_size + 1 bytes, and up
 * to 2 x frag_size + 1 when cut_piece_len needs to see more to decide, so
 * memory stays bounded however long a row is. Each piece's buffer goes to
 * its job and only the bytes after the piece are copied into the next
 * buffer. *POS is the list position of the next new fragment. */
static int cut_region(struct cut *c, uint64_t a, uint64_t b, uint32_t phase, uint32_t *pos)
{
	size_t fs = c->st->frag_size, have = 0, cap = 0, fill = fs + 1;
	uint64_t at = a;       /* content offset of buf[0] */
	char *buf = NULL;
	int rc = 0;

	while (at < b && !rc) {
		uint64_t left = b - at - have;
		size_t take = have >= fill ? 0 : left < fill - have ? (size_t)left : fill - have;
		size_t piece, ncap = 0, rest;
		uint32_t ph = phase;
		char *next = NULL;
		if (take) {
			if ((rc = bgrow(&buf, &cap, have, have + take)) ||
			    (rc = read_exact(c, buf + have, take, at + have)))
				break;
			have += take;
		}
		piece = cut_piece_len(c->in, fs, buf, have, at + have == b, phase);
		if (!piece) {       /* only with less than 2 x frag_size + 1 bytes */
			if (fill > fs + 1 || at + have == b) {
				rc = -EIO;
				break;
			}
			fill = 2 * fs + 1;
			continue;
		}
		fill = fs + 1;
		rest = have - piece;
		if (at + piece < b && (rc = bgrow(&next, &ncap, 0, rest > fill ? rest : fill)))
			break;
		if (next)
			memcpy(next, buf + piece, rest);
		phase = next_phase(c->in, buf, piece, phase);
		rc = emit(c, buf, cap, piece, ph, (*pos)++);
		buf = next;
		cap = ncap;
		have = rest;
		at += piece;
	}
	bp_put(buf, cap);
	return rc;
}

static int list_push(struct frag_desc **out, uint32_t *cnt, uint32_t *cap, const struct frag_desc *d)
{
	if (*cnt == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 64;
		struct frag_desc *nv = realloc(*out, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*out = nv;
		*cap = nc;
	}
	(*out)[(*cnt)++] = *d;
	return 0;
}

/* Append run V's descriptors (offsets are set by finish_list). */
static int list_push_run(const struct cut *c, struct frag_desc **out, uint32_t *cnt, uint32_t *cap,
			 const struct cand *v)
{
	if (v->pre)
		return list_push(out, cnt, cap, run_frag(c, v, 0));
	const struct frag_desc *from = run_frag(c, v, 0);
	if (*cnt + v->cnt > *cap) {
		uint32_t nc = *cap ? *cap : 64;
		while (nc < *cnt + v->cnt)
			nc *= 2;
		struct frag_desc *nv = realloc(*out, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*out = nv;
		*cap = nc;
	}
	memcpy(*out + *cnt, from, v->cnt * sizeof(**out));
	*cnt += v->cnt;
	return 0;
}

/* Build the new list: reused candidates plus new fragments for the gaps
 * (their descriptors are filled in by finish_list once the jobs are
 * done). */
static int build_list(struct cut *c, struct cand *v, uint32_t n, uint64_t size,
		      struct frag_desc **list, uint32_t *nlist)
{
	uint64_t pos = 0;
	struct frag_desc *out = NULL, d;
	const struct cand *prev = NULL;
	uint32_t cnt = 0, cap = 0;
	int rc = 0;

	for (uint32_t i = 0; i <= n && !rc; i++) {
		uint64_t next = size;
		if (i < n && !v[i].cnt)
			continue;
		if (i < n)
			next = v[i].off;
		if (next > pos) {
			uint32_t first = c->njobs, at = cnt, phase;
			rc = phase_at(c, prev, pos, &phase);
			if (!rc)
				rc = cut_region(c, pos, next, phase, &at);
			memset(&d, 0, sizeof(d));
			for (uint32_t k = first; !rc && k < c->njobs; k++)
				rc = list_push(&out, &cnt, &cap, &d);
		}
		if (rc || i == n)
			break;
		if (cnt + v[i].cnt > STORE_FRAGS_MAX) {
			rc = -EFBIG;
			break;
		}
		rc = list_push_run(c, &out, &cnt, &cap, &v[i]);
		prev = &v[i];
		pos = v[i].off + run_len(c, &v[i]);
	}
	if (rc) {
		free(out);
		return rc;
	}
	*list = out;
	*nlist = cnt;
	return 0;
}

/* Wait for every job; fill in the new fragments' descriptors, and the
 * offsets and first rows from SKIP on (the unchanged prefix keeps the
 * base's). @return 0 or the first job's -errno. */
static int finish_list(struct cut *c, struct frag_desc *list, uint32_t n, uint32_t skip)
{
	uint64_t off = skip ? list[skip - 1].off + list[skip - 1].len : 0;
	uint64_t row = skip ? list[skip - 1].first_row + list[skip - 1].rows : 0;
	int rc = 0;

	for (uint32_t k = c->waited; k < c->njobs; k++) {
		int r = wjob_wait(c->jobs[k]);
		rc = rc ? rc : r;
	}
	c->waited = c->njobs;
	for (uint32_t k = 0; k < c->njobs && !rc; k++) {
		rc = c->jobs[k]->rc;
		list[c->pos[k]] = c->jobs[k]->out;
	}
	for (uint32_t k = skip; k < n && !rc; k++) {     /* [0, skip) is the base's */
		list[k].off = off;
		list[k].first_row = row;
		off += list[k].len;
		row += list[k].rows;
	}
	return rc;
}

/* Make the new list's images durable: the new ones and the reused
 * pre-cut ones (invariant 3). */
static int sync_new(struct cut *c, const struct cand *v, uint32_t n)
{
	uint64_t *ids = malloc(((size_t)c->njobs + n + 1) * sizeof(*ids));
	size_t k = 0;
	int rc;

	if (!ids)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->njobs; i++)
		ids[k++] = c->jobs[i]->d.id;
	for (uint32_t i = 0; i < n; i++)
		if (v[i].cnt && v[i].pre)
			ids[k++] = run_frag(c, &v[i], 0)->id;
	rc = frag_sync(c->be, ids, k);
	free(ids);
	return rc;
}

/* ---- the index transaction ---- */

struct txn_out {
	int keeps_base;       /* in: the content keeps the base's bytes (9) */
	struct frag_desc *freed;
	uint32_t nfreed;
	uint64_t records;     /* fragment records put or deleted */
};

int store_ref_inc(struct store *st, struct idx_txn *t, uint64_t id)
{
	uint32_t now;
	int rc = idx_ref_add(t, id, 1, &now);
	unsigned char *rec;
	size_t len;

	if (!rc && now == 1)
		store_unzombie(st, id);
	/* a new fragment's row index, in the txn of its first reference
	 * (idx_lmdb.c (10)) */
	if (!rc && now == 1 && rowidx_stash_take(st->ris, id, &rec, &len)) {
		rc = idx_rowidx_put(t, id, rec, len);
		free(rec);
	}
	return rc;
}

static int push_freed(struct txn_out *o, const struct frag_desc *d)
{
	struct frag_desc *v = realloc(o->freed, (o->nfreed + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	v[o->nfreed++] = *d;
	o->freed = v;
	return 0;
}

/* Write only the records that differ between OLD and NEW (both sorted by
 * offset); increments first, decrements last (invariant 4). The first
 * SKIP records of both are known to be identical (an unchanged prefix):
 * an append costs O(new fragments), not O(F). */
static int swap_lists(struct store *st, struct idx_txn *t, uint64_t ino,
		      const struct frag_desc *old, uint32_t nold,
		      const struct frag_desc *nw, uint32_t nnew, uint32_t skip, struct txn_out *o)
{
	uint32_t i = skip, j = skip;
	int rc = 0;

	/* pass 1: puts and increments */
	while (j < nnew && !rc) {
		while (i < nold && old[i].off < nw[j].off)
			i++;
		int same_key = i < nold && old[i].off == nw[j].off;
		if (same_key && old[i].id == nw[j].id) {
			if (old[i].first_row != nw[j].first_row)
				rc = idx_frag_put(t, ino, &nw[j]), o->records++;
		} else {
			rc = idx_frag_put(t, ino, &nw[j]);
			o->records++;
			if (!rc)
				rc = store_ref_inc(st, t, nw[j].id);
		}
		j++;
	}
	/* pass 2: key deletions and decrements */
	for (i = skip, j = skip; i < nold && !rc; i++) {
		uint32_t now;
		while (j < nnew && nw[j].off < old[i].off)
			j++;
		int same_key = j < nnew && nw[j].off == old[i].off;
		if (same_key && nw[j].id == old[i].id)
			continue;
		if (!same_key)
			rc = idx_frag_del(t, ino, old[i].off), o->records++;
		if (!rc)
			rc = idx_ref_add(t, old[i].id, -1, &now);
		if (!rc && now == 0)
			rc = push_freed(o, &old[i]);
	}
	return rc;
}

static void settle_inode(struct idx_inode *cur, const struct pver *base, const struct idx_inode *newin,
			 uint64_t size, uint64_t rows, uint32_t nfrags, int inl, int64_t mtime_ns)
{
	const uint32_t keep = INODE_F_FMT_SET | INODE_F_HDR_SET | INODE_F_STORAGE_SET | INODE_F_MEMORY;
	int recut = newin != &base->in;

	cur->fmt_kind = newin->fmt_kind;
	cur->fmt_recsize = newin->fmt_recsize;
	if (recut) {
		cur->header = newin->header;
		cur->flags = (cur->flags & ~keep) | (newin->flags & keep);
	} else {
		cur->flags = (cur->flags & ~INODE_F_MEMORY) | (newin->flags & INODE_F_MEMORY);
	}
	if (cur->fmt_kind == PFMT_FIXED)
		cur->header = 0;
	cur->size = size;
	cur->rows = rows;
	cur->nfrags = nfrags;
	cur->flags = inl ? cur->flags | INODE_F_INLINE : cur->flags & ~INODE_F_INLINE;
	cur->version++;
	cur->ctime_ns = store_now_ns();
	if (cur->mset_ns <= mtime_ns)
		cur->mtime_ns = mtime_ns;
}

/* Pin *LIST (taken over on success: *LIST is then NULL) as the new
 * version; pins of the first NSHARED positions are shared with BASE. */
static int make_pver(struct store *st, const struct idx_inode *in, struct frag_desc **list,
		     uint32_t n, const char *inl, const struct pver *base, uint32_t nshared,
		     struct pver **out)
{
	struct pver *pv = calloc(1, sizeof(*pv));

	if (!pv)
		return -ENOMEM;
	pv->st = st;
	pv->refs = 1;
	pv->in = *in;
	pv->nfrags = n;
	pv->frags = n ? *list : NULL;
	if (!n) {
		if (!(pv->inl = malloc(in->size ? in->size : 1)))
			goto nomem;
		if (in->size)
			memcpy(pv->inl, inl, in->size);
	}
	if (store_pin_list(st, pv, base, nshared))
		goto nomem;
	if (n)
		*list = NULL;
	*out = pv;
	return 0;
nomem:
	free(pv->inl);
	free(pv);
	return -ENOMEM;
}

#define SETTING_FLAGS (INODE_F_FMT_SET | INODE_F_HDR_SET | INODE_F_STORAGE_SET | INODE_F_MEMORY)

/* The settings a commit is cut with differ from the object's now. */
static int settings_moved(const struct idx_inode *cur, const struct idx_inode *in)
{
	return cur->fmt_kind != in->fmt_kind || cur->fmt_recsize != in->fmt_recsize ||
	       (cur->flags & INODE_F_MEMORY) != (in->flags & INODE_F_MEMORY);
}

/* *OUT = BASE's inode with CUR's settings. */
static void with_settings(struct idx_inode *out, const struct pver *base, const struct idx_inode *cur)
{
	*out = base->in;
	out->fmt_kind = cur->fmt_kind;
	out->fmt_recsize = cur->fmt_recsize;
	out->header = cur->header;
	out->flags = (base->in.flags & ~SETTING_FLAGS) | (cur->flags & SETTING_FLAGS);
}

/* With DATA (a data commit, (8)), -EAGAIN and *MOVED = BASE's inode with
 * the current settings when they changed since NEWIN was read. */
static int run_txn(struct store *st, struct pver *base, const struct idx_inode *newin, int data,
		   struct idx_inode *moved,
		   struct frag_desc **list, uint32_t n, uint32_t nshared, const char *inl, uint64_t size,
		   uint64_t rows, int64_t mtime_ns, struct pver **newpv, struct txn_out *o)
{
	struct frag_desc *old = NULL;
	uint32_t nold = 0;
	struct idx_inode cur;
	struct idx_txn *t;
	struct pver *pv = NULL;
	struct nsw w = { 0 };
	uint64_t same = 0;
	int rc = store_wbegin(st, &t), own_old = 0;

	if (rc)
		return rc;
	/* a pending name goes in with its first content (ns.c P1-P6) */
	rc = store_pend_merge_one(st, t, base->in.ino, &w);
	if (!rc)
		rc = idx_inode_get(t, base->in.ino, &cur);
	if (!rc)
		rc = inode_ro(&cur);     /* snapshots never change (snap.c (2)) */
	if (!rc)    /* (9): the first version with the replaced one's bytes */
		same = store_same_since(st, base, base->in.ino, cur.version);
	if (!rc && data && settings_moved(&cur, newin)) {
		with_settings(moved, base, &cur);
		rc = -EAGAIN;
	}
	if (!rc && cur.version == base->in.version) {
		old = base->frags;
		nold = base->nfrags;
	} else if (!rc) {
		rc = idx_frags_load(t, base->in.ino, &old, &nold);
		own_old = 1;
		nshared = 0;     /* the index moved on: diff it all */
	}
	if (!rc)
		rc = swap_lists(st, t, base->in.ino, old, nold, *list, n, nshared, o);
	if (!rc)
		rc = inl && size ? idx_inline_put(t, base->in.ino, inl, size) : idx_inline_del(t, base->in.ino);
	if (!rc) {
		settle_inode(&cur, base, newin, size, rows, n, inl && size, mtime_ns);
		rc = idx_inode_put(t, &cur);
	}
	if (!rc)
		rc = idx_meta_put_u64(t, "next_frag", __atomic_load_n(&st->next_frag, __ATOMIC_RELAXED));
	if (!rc)
		rc = make_pver(st, &cur, list, n, inl, base, nshared, &pv);
	if (!rc) {  /* (9): it replaced the base, or a swap of it (read under commit_lock) */
		pv->extends = o->keeps_base && base->in.version >= same;
		pv->ext_from = pv->extends ? same : 0;
	}
	if (!rc)
		rc = store_wcommit(st, t);     /* a round's outcome: gcommit.c (G4) */
	else
		store_wabort(st, t);
	if (!rc)
		store_pvcur_set(st, pv);   /* under commit_lock: see pver.c (2), gcommit.c (G6) */
	store_pend_done(st, &w, rc == 0);     /* under commit_lock: ns.c (P4) */
	store_wunlock(st);
	if (own_old)
		free(old);
	if (rc) {
		pver_put(pv);
		return rc;
	}
	dur_after_commit(st);
	if (newpv)
		*newpv = pv;
	else
		pver_put(pv);
	return 0;
}

/* (9) Whether content SEGS[0..N) begins with the base's bytes
 * [0, BASE_SIZE) at the same offsets: SEG_BASE segments mapping each
 * offset to itself, back to back from 0 (an append, a growth with a hole,
 * a copy_file_range past the end keep them; any write, truncate or copy
 * into that range splits them off). */
static int keeps_base(const struct seg *segs, size_t n, uint64_t base_size)
{
	uint64_t at = 0;

	for (size_t i = 0; i < n && at < base_size; i++) {
		if (segs[i].kind != SEG_BASE || segs[i].off != at || segs[i].src != at)
			return 0;
		at += segs[i].len;
	}
	return at >= base_size;
}

/* List positions [0, n) equal to the base's (its first run, unmoved). */
static uint32_t shared_prefix(const struct cand *v, uint32_t n)
{
	return n && !v[0].pre && !v[0].foreign && v[0].idx == 0 && v[0].off == 0 ? v[0].cnt : 0;
}

/* Wait for and free every job; with DISCARD delete their images. */
static void free_jobs(struct cut *c, int discard)
{
	for (uint32_t i = 0; i < c->njobs; i++) {
		if (discard && wjob_wait(c->jobs[i]) == 0)
			store_discard_image(c->jobs[i]->st, c->be, c->jobs[i]->d.id);
		wjob_free(c->jobs[i]);
	}
	free(c->jobs);
	free(c->pos);
}

/* Cut and put what the list needs (invariants 1, 2, 7) and make it
 * durable (3). @return 0 and the list, or -errno. */
static int plan_and_write(struct cut *c, const struct idx_inode *newin, uint64_t size,
			  struct frag_desc **list, uint32_t *nlist, uint64_t *rows,
			  struct cand **cands_out, uint32_t *ncands_out)
{
	const struct pver *base = c->base;
	int same = newin->fmt_kind == base->in.fmt_kind && newin->fmt_recsize == base->in.fmt_recsize &&
		   (newin->flags & INODE_F_MEMORY) == (base->in.flags & INODE_F_MEMORY);
	struct cand *cands = NULL;
	uint32_t ncands = 0;
	/* pre-cut pieces were cut with the base's settings too (8) */
	int rc = find_cands(c, same && base->nfrags, same, &cands, &ncands);
	if (!rc)
		rc = check_cands(c, cands, ncands, size);
	if (!rc)
		rc = build_list(c, cands, ncands, size, list, nlist);
	if (!rc)
		rc = finish_list(c, *list, *nlist, shared_prefix(cands, ncands));
	if (!rc && (c->njobs || ncands)) {
		rc = sync_new(c, cands, ncands);
		if (rc)
			stage_precut_mark_bad(c->sg);
	}
	if (!rc && *nlist)
		*rows = (*list)[*nlist - 1].first_row + (*list)[*nlist - 1].rows;
	*cands_out = cands;
	*ncands_out = ncands;
	return rc;
}

/* One try of commit_segments with the settings of NEWIN; DATA, MOVED:
 * run_txn. */
static int commit_once(struct store *st, struct pver *base, const struct seg *segs, size_t n,
		       struct stage *sg, const struct idx_inode *newin, int data,
		       struct idx_inode *moved, int64_t mtime_ns, int may_extend, struct pver **newpv)
{
	struct cut c = { .st = st, .base = base, .sg = sg, .segs = segs, .nsegs = n, .in = newin,
			 .base_nl = -1 };
	uint64_t size = content_size(segs, n), rows = 0;
	struct frag_desc *list = NULL;
	struct txn_out o = { .keeps_base = may_extend && keeps_base(segs, n, base->in.size) };
	struct cand *cands = NULL;
	uint32_t nlist = 0, ncands = 0;
	int mem = !!(newin->flags & INODE_F_MEMORY);
	int inl = size <= STORE_INLINE_MAX && !mem;
	int rc = 0, staged = 0;

	if (newpv)
		*newpv = NULL;
	if (st->rdonly)
		return -EROFS;
	if (inode_is_fixed(newin) && size % newin->fmt_recsize) {
		log_info("object %llu: size %llu is not a multiple of the record size %u: commit refused",
			 (unsigned long long)base->in.ino, (unsigned long long)size, newin->fmt_recsize);
		return -EINVAL;
	}
	c.be = mem ? st->mem : st->disk;
	c.max_inflight = 2 * (pool_threads(st->pool) ? pool_threads(st->pool) : 1);
	rc = stage_precut_settle(sg);      /* a streaming failure fails this commit (stage.c (9)) */
	if (!rc && inl) {
		if (size && !(rc = grow(&c.buf, &c.bufcap, size)))
			rc = read_exact(&c, c.buf, size, 0);
		rows = rc ? 0 : rows_in(newin, c.buf, size);
	} else if (!rc) {
		rc = plan_and_write(&c, newin, size, &list, &nlist, &rows, &cands, &ncands);
	}
	for (uint32_t i = 0; !rc && i < nlist && !staged; i++)
		staged = !!(list[i].flags & FRAG_F_STAGED);
	FAULT_CRASH("commit_txn");        /* (3) done, (4) not begun */
	if (!rc)
		rc = run_txn(st, base, newin, data, moved, &list, nlist, shared_prefix(cands, ncands),
			     inl ? c.buf : NULL,
			     size, rows, mtime_ns, newpv, &o);
	free_jobs(&c, rc != 0);
	if (rc) {
		if (rc != -EINVAL && rc != -EAGAIN)
			log_warn("object %llu: commit failed: %s; the previous version stays",
				 (unsigned long long)base->in.ino, strerror(-rc));
	} else {
		/* the index references these now: the session must not delete them */
		for (uint32_t i = 0; i < ncands; i++)
			if (cands[i].cnt && cands[i].pre)
				stage_precut_keep(sg, cands[i].idx);
		__atomic_add_fetch(&st->stats.commits, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&st->stats.frag_records, o.records, __ATOMIC_RELAXED);
		if (staged)
			store_recompress_kick(st);   /* recompress.c */
		FAULT_CRASH("commit_release");    /* (4) committed, (6) not done */
		store_release_list(st, o.freed, o.nfreed);
		o.freed = NULL;
	}
	free(o.freed);
	free(cands);
	free(list);
	free(c.buf);
	return rc;
}

int commit_segments(struct store *st, struct pver *base, const struct seg *segs, size_t n,
		    struct stage *sg, const struct idx_inode *newin, int64_t mtime_ns,
		    int may_extend, struct pver **newpv)
{
	struct idx_inode moved;
	int data = newin == &base->in, rc;

	/* (8): a setting that changed meanwhile is cut again; a few tries,
	 * then the commit fails with EBUSY (settings changing all along) */
	for (int tries = 0; tries < 8; tries++) {
		struct idx_inode cur;
		rc = commit_once(st, base, segs, n, sg, newin, data, &moved, mtime_ns, may_extend, newpv);
		/* a fixed:N size check failed on settings that moved meanwhile */
		if (rc == -EINVAL && data && store_getattr(st, base->in.ino, &cur) == 0 &&
		    settings_moved(&cur, newin)) {
			with_settings(&moved, base, &cur);
			rc = -EAGAIN;
		}
		if (rc != -EAGAIN)
			return rc;
		newin = &moved;
	}
	return -EBUSY;
}
