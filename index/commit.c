/* commit — turning a handle's staged content into a new version.
 *
 * The commit protocol (DESIGN §4):
 *  (1) The new content is a segment list over the base version (stage.c).
 *      Old fragments that the new content contains whole, at a row
 *      boundary, are reused as they are; only the gaps between reused
 *      fragments ("regions") are cut into new row-aligned fragments. So an
 *      append or a tail change writes only the fragments it touches, and a
 *      change in the middle rewrites the fragments around the change (the
 *      index records after it move, their bytes do not).
 *  (2) A reused fragment smaller than half the fragment size next to a
 *      region is absorbed into it, so repeated small appends do not leave a
 *      trail of tiny fragments: each commit rewrites at most one small
 *      neighbour on each side of each region.
 *  (3) Every new fragment image is written and made durable (backend put +
 *      sync) BEFORE the index transaction that references it.
 *  (4) One LMDB write txn swaps the fragment list (only the records that
 *      differ are written), the reference counts (all increments before
 *      any decrement, so a fragment that moves is never seen at 0), the
 *      inline bytes, size, rows, mtime and version+1.
 *  (5) On any failure before the txn commits, the object keeps its
 *      previous version; the new images are deleted (or, after a crash,
 *      swept at the next mount since nothing references them).
 *  (6) Images whose count reached 0 are released after the txn committed
 *      (deleted now, or at their last unpin).
 */
#include "index/store_int.h"
#include "cache/codec.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cand {
	uint64_t off;      /* offset in the new content */
	uint32_t idx;      /* index in the base's fragment list */
	int ok;
};

struct cut {
	struct store *st;
	struct pver *base;
	struct stage *sg;
	const struct seg *segs;
	size_t nsegs;
	const struct idx_inode *in;   /* format to cut with */
	struct frag_desc *out;        /* new fragments, in order */
	uint32_t nout, capout;
	struct frag_backend *be;
	uint16_t fflags;
	char *buf, *enc;
	size_t bufcap, enccap;
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

/* ---- reuse plan ---- */

static int add_cand(struct cand **v, uint32_t *n, uint32_t *cap, uint64_t off, uint32_t idx)
{
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 64;
		struct cand *nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct cand){ off, idx, 1 };
	return 0;
}

/* Old fragments contained whole in a SEG_BASE segment. */
static int find_cands(struct cut *c, struct cand **v, uint32_t *n)
{
	const struct pver *b = c->base;
	uint32_t cap = 0;
	int rc = 0;

	*v = NULL;
	*n = 0;
	for (size_t i = 0; i < c->nsegs && !rc; i++) {
		const struct seg *s = &c->segs[i];
		uint32_t lo = 0, hi = b->nfrags;
		if (s->kind != SEG_BASE)
			continue;
		while (lo < hi) {      /* first fragment with off >= src */
			uint32_t mid = lo + (hi - lo) / 2;
			if (b->frags[mid].off < s->src)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (uint32_t k = lo; k < b->nfrags && !rc &&
		     b->frags[k].off + b->frags[k].len <= s->src + s->len; k++)
			rc = add_cand(v, n, &cap, s->off + (b->frags[k].off - s->src), k);
	}
	return rc;
}

/* Check each candidate starts and ends on a row boundary of the new
 * content; then absorb small ones next to regions (invariant 2). */
static int check_cands(struct cut *c, struct cand *v, uint32_t n, uint64_t size)
{
	const struct pver *b = c->base;
	int fixed = inode_is_fixed(c->in), base_nl = -1;
	uint64_t half = c->st->frag_size / 2;
	uint8_t *small;

	for (uint32_t i = 0; i < n; i++) {
		const struct frag_desc *f = &b->frags[v[i].idx];
		int last = v[i].idx + 1 == b->nfrags;
		if (fixed) {
			v[i].ok = v[i].off % c->in->fmt_recsize == 0;
			continue;
		}
		if (v[i].off > 0 && !(i && v[i - 1].ok && v[i - 1].off + b->frags[v[i - 1].idx].len == v[i].off &&
				      v[i - 1].idx + 1 < b->nfrags)) {
			char ch;
			int rc = read_exact(c, &ch, 1, v[i].off - 1);
			if (rc)
				return rc;
			v[i].ok = ch == '\n';
		}
		if (v[i].ok && last && v[i].off + f->len < size) {
			if (base_nl < 0) {
				char ch;
				ssize_t r = pver_read(c->base, &ch, 1, b->in.size - 1);
				if (r != 1)
					return r < 0 ? (int)r : -EIO;
				base_nl = ch == '\n';
			}
			v[i].ok = base_nl;
		}
	}
	if (!n || !(small = calloc(n, 1)))
		return n ? -ENOMEM : 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t end = v[i].off + b->frags[v[i].idx].len;
		int gap_before = v[i].off > 0 && !(i && v[i - 1].ok &&
				 v[i - 1].off + b->frags[v[i - 1].idx].len == v[i].off);
		int gap_after = end < size && !(i + 1 < n && v[i + 1].ok && v[i + 1].off == end);
		small[i] = v[i].ok && b->frags[v[i].idx].len < half && (gap_before || gap_after);
	}
	for (uint32_t i = 0; i < n; i++)
		if (small[i])
			v[i].ok = 0;
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

static int emit(struct cut *c, const char *data, size_t len, uint64_t off)
{
	struct frag_info info;
	struct frag_desc *d;
	size_t enc_len;
	uint64_t id;
	int rc;

	if (len > FRAG_MAX_RAW)
		return -EFBIG;
	if ((rc = grow(&c->enc, &c->enccap, frag_encode_bound(len))))
		return rc;
	if (c->nout == c->capout) {
		uint32_t nc = c->capout ? c->capout * 2 : 16;
		struct frag_desc *nv = realloc(c->out, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->out = nv;
		c->capout = nc;
	}
	id = store_alloc_frag_id(c->st);
	rc = frag_encode(id, data, len, (uint32_t)rows_in(c->in, data, len), c->enc, c->enccap,
			 &enc_len, &info);
	if (!rc)
		rc = frag_put(c->be, id, c->enc, enc_len);
	if (rc)
		return rc;
	__atomic_add_fetch(&c->st->stats.frags_written, 1, __ATOMIC_RELAXED);
	d = &c->out[c->nout++];
	memset(d, 0, sizeof(*d));
	d->off = off;
	d->id = id;
	d->len = (uint32_t)len;
	d->rows = info.rows;
	d->stored_len = info.stored_len;
	d->codec = info.codec;
	d->flags = c->fflags;
	d->checksum = info.checksum;
	return 0;
}

/* Length of the next piece of BUF (HAVE bytes; FINAL when the region ends
 * there), or 0 when more bytes are needed to find a row end. */
static size_t piece_len(struct cut *c, const char *buf, size_t have, int final)
{
	size_t target = c->st->frag_size;

	if (inode_is_fixed(c->in)) {
		size_t n = c->in->fmt_recsize;
		target = target / n * n;
		if (target < n)
			target = n;
		return have <= target ? (final ? have : 0) : target;
	}
	if (have <= target)
		return final ? have : 0;
	const char *nl = memrchr(buf, '\n', target);
	if (nl)
		return (size_t)(nl - buf) + 1;
	nl = memchr(buf + target, '\n', have - target);   /* one long row */
	if (nl)
		return (size_t)(nl - buf) + 1;
	return final ? have : 0;
}

static int cut_region(struct cut *c, uint64_t a, uint64_t b)
{
	size_t have = 0, chunk = c->st->frag_size + 1;
	uint64_t pos = a;       /* content offset of buf[0] */
	int rc;

	while (pos < b) {
		uint64_t left = b - pos - have;
		size_t take = left < chunk ? (size_t)left : chunk, piece;
		if (take) {
			if ((rc = grow(&c->buf, &c->bufcap, have + take)) ||
			    (rc = read_exact(c, c->buf + have, take, pos + have)))
				return rc;
			have += take;
		}
		piece = piece_len(c, c->buf, have, pos + have == b);
		if (!piece)
			continue;     /* a row longer than the buffer: read on */
		if ((rc = emit(c, c->buf, piece, pos)))
			return rc;
		memmove(c->buf, c->buf + piece, have - piece);
		have -= piece;
		pos += piece;
	}
	return 0;
}

/* Build the new list: reused candidates plus new fragments for the gaps. */
static int build_list(struct cut *c, struct cand *v, uint32_t n, uint64_t size,
		      struct frag_desc **list, uint32_t *nlist)
{
	uint64_t pos = 0;
	struct frag_desc *out = NULL;
	uint32_t cnt = 0, cap = 0;
	int rc = 0;

	for (uint32_t i = 0; i <= n && !rc; i++) {
		uint64_t next = size;
		if (i < n && !v[i].ok)
			continue;
		if (i < n)
			next = v[i].off;
		if (next > pos) {
			uint32_t first = c->nout;
			rc = cut_region(c, pos, next);
			for (uint32_t k = first; !rc && k < c->nout; k++) {
				if (cnt == cap) {
					cap = cap ? cap * 2 : 64;
					struct frag_desc *nv = realloc(out, cap * sizeof(*nv));
					if (!nv) { rc = -ENOMEM; break; }
					out = nv;
				}
				out[cnt++] = c->out[k];
			}
		}
		if (rc || i == n)
			break;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			struct frag_desc *nv = realloc(out, cap * sizeof(*nv));
			if (!nv) { rc = -ENOMEM; break; }
			out = nv;
		}
		out[cnt] = c->base->frags[v[i].idx];
		out[cnt].off = v[i].off;
		pos = v[i].off + out[cnt].len;
		cnt++;
	}
	if (rc) {
		free(out);
		return rc;
	}
	uint64_t row = 0;
	for (uint32_t k = 0; k < cnt; k++) {
		out[k].first_row = row;
		row += out[k].rows;
	}
	*list = out;
	*nlist = cnt;
	return 0;
}

/* ---- the index transaction ---- */

struct txn_out {
	struct frag_desc *freed;
	uint32_t nfreed;
};

static int ref_inc(struct store *st, struct idx_txn *t, uint64_t id)
{
	uint32_t now;
	int rc = idx_ref_add(t, id, 1, &now);

	if (!rc && now == 1)
		store_unzombie(st, id);
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
 * offset); increments first, decrements last (invariant 4). */
static int swap_lists(struct store *st, struct idx_txn *t, uint64_t ino,
		      const struct frag_desc *old, uint32_t nold,
		      const struct frag_desc *nw, uint32_t nnew, struct txn_out *o)
{
	uint32_t i = 0, j = 0;
	int rc = 0;

	/* pass 1: puts and increments */
	while (j < nnew && !rc) {
		while (i < nold && old[i].off < nw[j].off)
			i++;
		int same_key = i < nold && old[i].off == nw[j].off;
		if (same_key && old[i].id == nw[j].id) {
			if (old[i].first_row != nw[j].first_row)
				rc = idx_frag_put(t, ino, &nw[j]);
		} else {
			rc = idx_frag_put(t, ino, &nw[j]);
			if (!rc)
				rc = ref_inc(st, t, nw[j].id);
		}
		j++;
	}
	/* pass 2: key deletions and decrements */
	for (i = 0, j = 0; i < nold && !rc; i++) {
		uint32_t now;
		while (j < nnew && nw[j].off < old[i].off)
			j++;
		int same_key = j < nnew && nw[j].off == old[i].off;
		if (same_key && nw[j].id == old[i].id)
			continue;
		if (!same_key)
			rc = idx_frag_del(t, ino, old[i].off);
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

/* Pin LIST and make it the new current version. */
static int make_pver(struct store *st, const struct idx_inode *in, const struct frag_desc *list,
		     uint32_t n, const char *inl, struct pver **out)
{
	struct pver *pv = calloc(1, sizeof(*pv));

	if (!pv)
		return -ENOMEM;
	pv->st = st;
	pv->refs = 1;
	pv->in = *in;
	pv->nfrags = n;
	if (n && !(pv->frags = malloc(n * sizeof(*list))))
		goto nomem;
	if (n)
		memcpy(pv->frags, list, n * sizeof(*list));
	if (!n) {
		if (!(pv->inl = malloc(in->size ? in->size : 1)))
			goto nomem;
		if (in->size)
			memcpy(pv->inl, inl, in->size);
	}
	if (store_pin_frags(st, pv->frags, n))
		goto nomem;
	*out = pv;
	return 0;
nomem:
	free(pv->frags);
	free(pv->inl);
	free(pv);
	return -ENOMEM;
}

static int run_txn(struct store *st, struct pver *base, const struct idx_inode *newin,
		   const struct frag_desc *list, uint32_t n, const char *inl, uint64_t size,
		   uint64_t rows, int64_t mtime_ns, struct pver **newpv, struct txn_out *o)
{
	struct frag_desc *old = NULL;
	uint32_t nold = 0;
	struct idx_inode cur;
	struct idx_txn *t;
	struct pver *pv = NULL;
	int rc = store_wbegin(st, &t), own_old = 0;

	if (rc)
		return rc;
	rc = idx_inode_get(t, base->in.ino, &cur);
	if (!rc && cur.version == base->in.version) {
		old = base->frags;
		nold = base->nfrags;
	} else if (!rc) {
		rc = idx_frags_load(t, base->in.ino, &old, &nold);
		own_old = 1;
	}
	if (!rc)
		rc = swap_lists(st, t, base->in.ino, old, nold, list, n, o);
	if (!rc)
		rc = inl && size ? idx_inline_put(t, base->in.ino, inl, size) : idx_inline_del(t, base->in.ino);
	if (!rc) {
		settle_inode(&cur, base, newin, size, rows, n, inl && size, mtime_ns);
		rc = idx_inode_put(t, &cur);
	}
	if (!rc)
		rc = idx_meta_put_u64(t, "next_frag", __atomic_load_n(&st->next_frag, __ATOMIC_RELAXED));
	if (!rc)
		rc = make_pver(st, &cur, list, n, inl, &pv);
	if (!rc)
		rc = idx_commit(t);
	else
		idx_abort(t);
	if (!rc)
		store_pvcur_set(st, pv);   /* under commit_lock: see pver.c (2) */
	pthread_mutex_unlock(&st->commit_lock);
	if (own_old)
		free(old);
	if (rc) {
		pver_put(pv);
		return rc;
	}
	if (newpv)
		*newpv = pv;
	else
		pver_put(pv);
	return 0;
}

static void discard_new(struct cut *c)
{
	for (uint32_t i = 0; i < c->nout; i++)
		frag_del(c->be, c->out[i].id);
}

int commit_segments(struct store *st, struct pver *base, const struct seg *segs, size_t n,
		    struct stage *sg, const struct idx_inode *newin, int64_t mtime_ns,
		    struct pver **newpv)
{
	struct cut c = { .st = st, .base = base, .sg = sg, .segs = segs, .nsegs = n, .in = newin };
	uint64_t size = content_size(segs, n), rows = 0;
	struct frag_desc *list = NULL;
	struct txn_out o = { 0 };
	struct cand *cands = NULL;
	uint32_t ncands = 0, nlist = 0;
	int mem = !!(newin->flags & INODE_F_MEMORY);
	int inl = size <= STORE_INLINE_MAX && !mem;
	int rc = 0;

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
	c.fflags = mem ? FRAG_F_MEMORY : 0;
	if (inl) {
		if (size && !(rc = grow(&c.buf, &c.bufcap, size)))
			rc = read_exact(&c, c.buf, size, 0);
		rows = rc ? 0 : rows_in(newin, c.buf, size);
	} else {
		int same = newin->fmt_kind == base->in.fmt_kind && newin->fmt_recsize == base->in.fmt_recsize &&
			   (newin->flags & INODE_F_MEMORY) == (base->in.flags & INODE_F_MEMORY);
		if (same && base->nfrags)
			rc = find_cands(&c, &cands, &ncands);
		if (!rc)
			rc = check_cands(&c, cands, ncands, size);
		if (!rc)
			rc = build_list(&c, cands, ncands, size, &list, &nlist);
		if (!rc && c.nout && !st->ckpt_on)
			rc = frag_sync(c.be);   /* else the next checkpoint (checkpoint.c) */
		if (!rc && nlist)
			rows = list[nlist - 1].first_row + list[nlist - 1].rows;
	}
	if (!rc)
		rc = run_txn(st, base, newin, list, nlist, inl ? c.buf : NULL, size, rows, mtime_ns, newpv, &o);
	if (rc) {
		discard_new(&c);
		if (rc != -EINVAL)
			log_warn("object %llu: commit failed: %s; the previous version stays",
				 (unsigned long long)base->in.ino, strerror(-rc));
	} else {
		__atomic_add_fetch(&st->stats.commits, 1, __ATOMIC_RELAXED);
		store_release_list(st, o.freed, o.nfreed);
		o.freed = NULL;
	}
	free(o.freed);
	free(list);
	free(cands);
	free(c.out);
	free(c.buf);
	free(c.enc);
	return rc;
}
