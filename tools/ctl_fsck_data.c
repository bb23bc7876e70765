/* ctl_fsck_data — fsck of the data (docs/format.md consistency rules 1-3):
 * each object's fragment list is contiguous and covers its size and rows
 * (or its inline bytes do); each reference count equals the number of
 * fragment records naming the id; every fragment image is read through the
 * daemon's read path (fcache_fetch: header, id, length and checksum
 * verified) and the rows starting in it counted; a fragment continues a
 * row (FRAG_F_CONT) exactly when it should (lines: the bytes before it do
 * not end a row; fixed:N: its offset is inside a record; never the first);
 * images nothing references are warnings. A fragment's row index (format
 * 4, rule 7), when it has one, must be what rowidx_build makes of the
 * verified bytes with the record's FRAG_F_CONT (rowidx.c (1): it depends
 * on nothing else); one that differs, or one whose fragment nothing
 * references, is dropped by --repair (a missing index is allowed: readers
 * scan the fragment).
 *
 * While a mount commits, a fragment of the snapshot may be deleted before
 * it is read: a fragment that fails to read is reported only if a fresh
 * txn shows that an object still lists it. */
#include "tools/ctl_fsck.h"
#include "cache/backend.h"
#include "cache/codec.h"
#include "cache/fcache.h"
#include "index/rowidx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FRAG_FMT "fragment %016llx (bytes %" PRIu64 "..%" PRIu64 ")"
#define FRAG_ARGS(d) (unsigned long long)(d)->id, (d)->off, (d)->off + (d)->len

/* ---- fragment lists ---- */

static void check_inline(struct fsck *f, const struct fk_ino *r)
{
	const struct idx_inode *in = &r->in;

	if (r->fn)
		fk_problem(f, in->ino, "inline object also has %" PRIu32 " fragment records", r->fn);
	if (in->nfrags)
		fk_problem(f, in->ino, "inline object counts %" PRIu32 " fragments", in->nfrags);
	if (!r->inl_present) {
		if (in->size)
			fk_problem(f, in->ino, "inline data is missing (size %" PRIu64 ")", in->size);
	} else if (r->inl_len != in->size) {
		fk_problem(f, in->ino, "inline data is %zu bytes, the size is %" PRIu64, r->inl_len, in->size);
	} else if (r->inl_rows != in->rows) {
		fk_problem(f, in->ino, "inline data holds %" PRIu64 " rows, the inode says %" PRIu64,
			   r->inl_rows, in->rows);
	}
}

/* The fragment list of object R: contiguous from byte 0 and row 0, no
 * empty fragment, ending at the size and the row count. */
static void check_list(struct fsck *f, const struct fk_ino *r)
{
	const struct idx_inode *in = &r->in;
	uint64_t off = 0, row = 0;
	int mem = !!(in->flags & INODE_F_MEMORY);

	if (r->inl_present)
		fk_warn(f, in->ino, "stale inline record of %zu bytes (the object is stored as fragments)",
			r->inl_len);
	if (in->nfrags != r->fn)
		fk_problem(f, in->ino, "the inode counts %" PRIu32 " fragments, the index holds %" PRIu32,
			   in->nfrags, r->fn);
	if (in->size && !r->fn) {
		fk_problem(f, in->ino, "size is %" PRIu64 " but no fragment holds its data", in->size);
		return;
	}
	for (uint32_t k = 0; k < r->fn; k++) {
		const struct frag_desc *d = &f->frags[r->f0 + k].d;
		if (d->off != off) {
			fk_problem(f, in->ino, FRAG_FMT ": starts at byte %" PRIu64 ", expected %" PRIu64
				   " (a %s)", FRAG_ARGS(d), d->off, off, d->off > off ? "gap" : "overlap");
			return;
		}
		if (d->first_row != row) {
			fk_problem(f, in->ino, FRAG_FMT ": first row is %" PRIu64 ", expected %" PRIu64,
				   FRAG_ARGS(d), d->first_row, row);
			return;
		}
		if (!d->len)
			fk_problem(f, in->ino, FRAG_FMT ": empty fragment", FRAG_ARGS(d));
		if (!!(d->flags & FRAG_F_MEMORY) != mem)
			fk_problem(f, in->ino, FRAG_FMT ": image lives in %s, but the object is storage=%s",
				   FRAG_ARGS(d), mem ? "a file" : "memory", mem ? "memory" : "disk");
		if (in->fmt_kind == PFMT_FIXED && in->fmt_recsize &&
		    !!(d->flags & FRAG_F_CONT) != (d->off % in->fmt_recsize != 0))
			fk_problem(f, in->ino, FRAG_FMT ": %s as continuing a record, but it starts %s one",
				   FRAG_ARGS(d), d->flags & FRAG_F_CONT ? "marked" : "not marked",
				   d->off % in->fmt_recsize ? "inside" : "at the start of");
		else if (in->fmt_kind != PFMT_FIXED && k == 0 && (d->flags & FRAG_F_CONT))
			fk_problem(f, in->ino, FRAG_FMT ": the first fragment is marked as continuing a row",
				   FRAG_ARGS(d));
		off += d->len;
		row += d->rows;
	}
	if (off != in->size)
		fk_problem(f, in->ino, "fragments cover %" PRIu64 " bytes, the size is %" PRIu64, off, in->size);
	if (row != in->rows)
		fk_problem(f, in->ino, "fragments hold %" PRIu64 " rows, the inode says %" PRIu64, row, in->rows);
}

void fk_check_lists(struct fsck *f)
{
	/* frags are in (ino, off) order: give each inode its run */
	for (size_t i = 0, j; i < f->nfrags; i = j) {
		struct fk_ino *r = fk_find(f, f->frags[i].ino);
		for (j = i + 1; j < f->nfrags && f->frags[j].ino == f->frags[i].ino; j++)
			;
		if (!r) {
			fk_problem(f, 0, "%zu fragment record(s) of inode %" PRIu64 ", which does not exist",
				   j - i, f->frags[i].ino);
			continue;
		}
		r->f0 = i;
		r->fn = (uint32_t)(j - i);
	}
	for (size_t i = 0; i < f->ninos; i++) {
		const struct fk_ino *r = &f->inos[i];
		const struct idx_inode *in = &r->in;
		if (!S_ISREG(in->mode)) {
			if (r->fn)
				fk_problem(f, in->ino, "a %s with %" PRIu32 " fragment records",
					   ctl_type_name(in->mode), r->fn);
			continue;
		}
		f->objects++;
		if (in->fmt_kind == PFMT_FIXED && !in->fmt_recsize)
			fk_problem(f, in->ino, "format fixed:0");
		else if (in->fmt_kind == PFMT_FIXED && in->size % in->fmt_recsize)
			fk_problem(f, in->ino, "size %" PRIu64 " is not a multiple of the record size %" PRIu32,
				   in->size, in->fmt_recsize);
		if (in->flags & INODE_F_INLINE)
			check_inline(f, r);
		else
			check_list(f, r);
	}
}

/* ---- reference counts ---- */

static int cmp_byid(const void *a, const void *b, void *arg)
{
	const struct fk_frag *v = arg, *x = &v[*(const size_t *)a], *y = &v[*(const size_t *)b];

	if (x->d.id != y->d.id)
		return x->d.id < y->d.id ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->d.off < y->d.off ? -1 : x->d.off > y->d.off;
}

static int cmp_ref(const void *a, const void *b)
{
	uint64_t x = ((const struct fk_ref *)a)->id, y = ((const struct fk_ref *)b)->id;
	return x < y ? -1 : x > y;
}

struct fk_ref *fk_find_ref(struct fsck *f, uint64_t id)
{
	struct fk_ref key = { .id = id };

	return f->nrefs ? bsearch(&key, f->refs, f->nrefs, sizeof(key), cmp_ref) : NULL;
}

/* End of the run of records of the same id starting at byid[I]. */
static size_t run_end(const struct fsck *f, size_t i)
{
	size_t j = i + 1;

	while (j < f->nfrags && f->frags[f->byid[j]].d.id == f->frags[f->byid[i]].d.id)
		j++;
	return j;
}

int fk_check_refs(struct fsck *f)
{
	uint64_t max = 0;
	size_t i = 0, j = 0;

	if (f->nfrags && !(f->byid = malloc(f->nfrags * sizeof(*f->byid))))
		return -ENOMEM;
	for (size_t k = 0; k < f->nfrags; k++)
		f->byid[k] = k;
	if (f->nfrags)
		qsort_r(f->byid, f->nfrags, sizeof(*f->byid), cmp_byid, f->frags);
	if (f->nrefs)
		qsort(f->refs, f->nrefs, sizeof(*f->refs), cmp_ref);   /* already in key order */
	while (i < f->nfrags || j < f->nrefs) {
		const struct fk_frag *fr = i < f->nfrags ? &f->frags[f->byid[i]] : NULL;
		const struct fk_ref *rf = j < f->nrefs ? &f->refs[j] : NULL;
		size_t e = fr ? run_end(f, i) : i;

		if (rf && (!fr || rf->id < fr->d.id)) {
			fk_problem(f, 0, "fragment %016llx: reference count %" PRIu32
				   ", but no fragment record names it", (unsigned long long)rf->id, rf->count);
			max = rf->id > max ? rf->id : max;
			j++;
			continue;
		}
		if (!fr)
			break;   /* unreachable: a ref would have been taken above */
		if (!rf || fr->d.id < rf->id)
			fk_problem(f, fr->ino, "fragment %016llx: named by %zu fragment record(s), "
				   "but it has no reference count", (unsigned long long)fr->d.id, e - i);
		else if (rf->count != e - i)
			fk_problem(f, fr->ino, "fragment %016llx: reference count %" PRIu32 ", but %zu "
				   "fragment record(s) name it", (unsigned long long)fr->d.id, rf->count, e - i);
		if (rf && fr->d.id == rf->id)
			j++;
		max = fr->d.id > max ? fr->d.id : max;
		i = e;
	}
	if (max && f->next_frag <= max)
		fk_problem(f, 0, "next fragment id %016llx is not above the highest id %016llx "
			   "(ids would be reused)", (unsigned long long)f->next_frag, (unsigned long long)max);
	return 0;
}

/* ---- fragment images ---- */

/* 1 when a fresh txn shows some object still listing the fragment of
 * records byid[I..E) (0: it changed under a mount since the snapshot). */
static int still_listed(struct fsck *f, size_t i, size_t e)
{
	struct idx_txn *t;
	int listed = 0;

	if (idx_begin(store_idx(f->st), 1, &t))
		return 1;
	for (; i < e && !listed; i++) {
		const struct fk_frag *fr = &f->frags[f->byid[i]];
		struct frag_desc d;
		listed = idx_frag_at(t, fr->ino, fr->d.off, &d) == 0 && d.id == fr->d.id &&
			 d.off == fr->d.off;
	}
	idx_abort(t);
	return listed;
}

/* Why fragment D failed to load (RC from fcache_fetch), into WHY. Reads
 * the image again through the backend and decodes it step by step. */
static void diagnose(struct fsck *f, const struct frag_desc *d, int rc, char *why, size_t cap)
{
	struct frag_backend *b = store_backend(f->st, 0);
	struct frag_get req = { .id = d->id, .cap = FRAG_HDR_SIZE + (size_t)d->stored_len };
	struct frag_info info;
	char *raw = NULL, where[160];

	snprintf(why, cap, "damaged (%s)", strerror(-rc));
	if (rc != -ENOENT) {
		if (!(req.buf = malloc(req.cap)))
			return;
		rc = frag_get_many(b, &req, 1);
		if (!rc)
			rc = req.err;
	}
	frag_where(b, d->id, where, sizeof(where));
	if (rc == -ENOENT) {
		struct fk_ref key = { .id = d->id }, *r = NULL;
		if (f->nrefs)
			r = bsearch(&key, f->refs, f->nrefs, sizeof(key), cmp_ref);
		snprintf(why, cap, "missing: no image %s, but %" PRIu32 " reference(s) to it", where,
			 r ? r->count : 0);
	} else if (rc && !(rc == -EIO && req.len < req.cap)) {
		snprintf(why, cap, "unreadable image: %s", strerror(-rc));
	} else if (req.len < FRAG_HDR_SIZE ||
		   (frag_decode_header(req.buf, FRAG_HDR_SIZE, &info) && req.len < req.cap)) {
		snprintf(why, cap, "damaged: truncated image (%zu of %zu bytes)", req.len, req.cap);
	} else if (frag_decode_header(req.buf, FRAG_HDR_SIZE, &info)) {   /* the header alone */
		snprintf(why, cap, "damaged: bad image header");
	} else if (info.id != d->id) {
		snprintf(why, cap, "damaged: the image header names fragment %016llx",
			 (unsigned long long)info.id);
	} else if (info.raw_len != d->len || info.stored_len != d->stored_len ||
		   info.checksum != d->checksum) {
		snprintf(why, cap, "damaged: the image header disagrees with the index record");
	} else if (req.len < req.cap) {
		snprintf(why, cap, "damaged: truncated image (%zu of %zu bytes)", req.len, req.cap);
	} else if ((raw = malloc(d->len ? d->len : 1)) &&
		   frag_decode(req.buf, req.len, d->id, raw, d->len, NULL)) {
		snprintf(why, cap, "damaged: %s", info.codec == FRAG_CODEC_RAW ? "checksum mismatch" :
			 "checksum mismatch or undecodable lz4 data");
	}
	if (rc != -ENOENT && strlen(why) + strlen(where) + 4 < cap)   /* which object holds it */
		snprintf(why + strlen(why), cap - strlen(why), " (%s)", where);
	free(raw);
	free(req.buf);
}

/* Rows that start in the verified bytes of record FR (NLS newlines,
 * NL_END), as its own FRAG_F_CONT and offset say; whether that flag is
 * right is fk_check_rows_span's (lines) and check_list's (fixed). */
static void check_rows(struct fsck *f, const struct fk_frag *fr, uint32_t nls, int nl_end)
{
	const struct fk_ino *r = fk_find(f, fr->ino);
	const struct frag_desc *d = &fr->d;
	uint64_t rows;

	if (!r || !S_ISREG(r->in.mode))
		return;
	rows = fk_frag_rows(&r->in, d->off, d->len, nls, nl_end, !!(d->flags & FRAG_F_CONT));
	if (rows != d->rows)
		fk_problem(f, fr->ino, FRAG_FMT ": %" PRIu64 " rows start in it, its record says %" PRIu32,
			   FRAG_ARGS(d), rows, d->rows);
}

/* Remember fragment ID's row index as one --repair drops. @return 0 or
 * -ENOMEM. */
static int bad_rowidx(struct fsck *f, uint64_t id)
{
	uint64_t *v = fk_grow(f->bad_rowidx, &f->cap_bad_rowidx, f->nbad_rowidx, sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->bad_rowidx = v;
	v[f->nbad_rowidx++] = id;
	return 0;
}

/* The row index of the image of record FR (its verified bytes BUF) against
 * what its bytes make, as record FR reads them (lines only). A read txn of
 * its own: a mount may have committed since the snapshot, but a fragment
 * id is never reused and its index never rewritten, only deleted with its
 * last reference (then it is absent, which is allowed). @return 0 or
 * -errno (the check cannot go on). */
static int check_rowidx(struct fsck *f, const struct fk_frag *fr, const struct fbuf *buf)
{
	const struct fk_ino *r = fk_find(f, fr->ino);
	const struct frag_desc *d = &fr->d;
	unsigned char *want = NULL;
	size_t want_len = 0, have_len;
	const void *have;
	struct idx_txn *t;
	int rc;

	if (!r || !S_ISREG(r->in.mode) || r->in.fmt_kind == PFMT_FIXED || (d->flags & FRAG_F_MEMORY))
		return 0;
	rc = idx_begin(store_idx(f->st), 1, &t);
	if (rc)
		return rc;
	rc = idx_rowidx_get(t, d->id, &have, &have_len);
	if (rc == -ENOENT) {
		idx_abort(t);
		return 0;
	}
	if (!rc)
		rc = rowidx_build(buf->data, buf->len, !!(d->flags & FRAG_F_CONT), &want, &want_len, NULL);
	if (!rc) {
		f->rowidx_checked++;
		if (!want || want_len != have_len || memcmp(want, have, have_len)) {
			fk_problem(f, fr->ino, FRAG_FMT ": its row index (%zu bytes) is not that of its bytes "
				   "(%s): views would read the wrong rows", FRAG_ARGS(d), have_len,
				   want ? "which make another" : "in which no row starts");
			rc = bad_rowidx(f, d->id);
		}
	}
	idx_abort(t);
	free(want);
	return rc;
}

/* Records A and B describe the same image (FRAG_F_CONT is where a record
 * puts it, not what the image holds). */
static int same_desc(const struct frag_desc *a, const struct frag_desc *b)
{
	return a->len == b->len && a->stored_len == b->stored_len && a->checksum == b->checksum &&
	       a->codec == b->codec && (a->flags & FRAG_F_MEMORY) == (b->flags & FRAG_F_MEMORY);
}

/* Read and verify the image of record FR through the read path. Sets its
 * state (and nls, nl_end; or why). @return 0, -ENOMEM, or 1 when the read
 * failed and a mount may have dropped the fragment since the snapshot. */
static int verify_record(struct fsck *f, struct fk_frag *fr, size_t i, size_t e)
{
	const struct frag_desc *d = &fr->d;
	struct frag_ref ref = { .id = d->id, .raw_len = d->len, .stored_len = d->stored_len,
				.checksum = d->checksum, .backend = store_backend(f->st, 0) };
	struct fbuf *buf;
	char why[320];
	int rc = fcache_fetch(store_cache(f->st), &ref, 1, &buf);

	if (rc == -ENOMEM)
		return rc;
	if (rc == 0) {
		fr->state = FK_GOOD;
		for (const char *p = buf->data, *end = buf->data + buf->len;
		     p < end && (p = memchr(p, '\n', (size_t)(end - p))); p++)
			fr->nls++;
		fr->nl_end = buf->len && buf->data[buf->len - 1] == '\n';
		rc = 0;
		for (size_t k = i; k < e; k++)
			if (same_desc(&f->frags[f->byid[k]].d, d)) {
				check_rows(f, &f->frags[f->byid[k]], fr->nls, fr->nl_end);
				/* one verdict per image: a bad index is dropped once */
				if (!rc && (!f->nbad_rowidx || f->bad_rowidx[f->nbad_rowidx - 1] != d->id))
					rc = check_rowidx(f, &f->frags[f->byid[k]], buf);
			}
		fbuf_put(buf);
		fcache_drop(store_cache(f->st), d->id);   /* each image is read once */
		return rc;
	}
	if (!still_listed(f, i, e))
		return 1;
	diagnose(f, d, rc, why, sizeof(why));
	fr->state = FK_BAD;
	fr->why = strdup(why);
	return fr->why ? 0 : -ENOMEM;
}

/* Read and verify the fragment of records byid[I..E). Records that agree
 * share one read; one that disagrees is also verified against itself, so
 * that each record knows whether its own description holds (--repair).
 * @return 0 or -ENOMEM (the check cannot go on). */
static int check_image(struct fsck *f, size_t i, size_t e)
{
	struct fk_frag *first = &f->frags[f->byid[i]];
	const struct frag_desc *d = &first->d;
	int rc;

	for (size_t k = i + 1; k < e; k++) {
		const struct fk_frag *o = &f->frags[f->byid[k]];
		if (!same_desc(&o->d, d))
			fk_problem(f, o->ino, FRAG_FMT ": its record disagrees with that of object %" PRIu64,
				   FRAG_ARGS(&o->d), first->ino);
	}
	if (d->flags & FRAG_F_MEMORY) {
		f->skipped_memory++;
		for (size_t k = i; k < e; k++)
			f->frags[f->byid[k]].state = FK_SKIPPED;
		return 0;
	}
	f->checked++;
	rc = verify_record(f, first, i, e);
	if (rc < 0)
		return rc;
	if (rc > 0)
		return 0;
	if (first->state == FK_BAD)
		for (size_t k = i; k < e; k++) {
			const struct fk_frag *fr = &f->frags[f->byid[k]];
			fk_problem(f, fr->ino, FRAG_FMT ": %s", FRAG_ARGS(&fr->d), first->why);
		}
	for (size_t k = i + 1; k < e; k++) {
		struct fk_frag *fr = &f->frags[f->byid[k]];
		if (same_desc(&fr->d, d)) {
			fr->state = first->state;
			fr->nls = first->nls;
			fr->nl_end = first->nl_end;
			continue;
		}
		if (fr->d.flags & FRAG_F_MEMORY) {
			fr->state = FK_SKIPPED;
			continue;
		}
		rc = verify_record(f, fr, k, k + 1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int fk_check_images(struct fsck *f)
{
	for (size_t i = 0, e; i < f->nfrags; i = e) {
		int rc;
		e = run_end(f, i);
		rc = check_image(f, i, e);
		if (rc)
			return rc;
	}
	return 0;
}

void fk_check_rows_span(struct fsck *f)
{
	for (size_t i = 0; i < f->ninos; i++) {
		const struct fk_ino *r = &f->inos[i];
		if (!S_ISREG(r->in.mode) || r->in.fmt_kind == PFMT_FIXED || (r->in.flags & INODE_F_INLINE))
			continue;
		for (uint32_t k = 1; k < r->fn; k++) {
			const struct fk_frag *p = &f->frags[r->f0 + k - 1], *fr = &f->frags[r->f0 + k];
			int cont = !!(fr->d.flags & FRAG_F_CONT);
			if (p->state != FK_GOOD || p->d.off + p->d.len != fr->d.off || cont == !p->nl_end)
				continue;
			fk_problem(f, r->in.ino, FRAG_FMT ": %s", FRAG_ARGS(&fr->d), cont ?
				   "marked as continuing a row, but the fragment before it ends one" :
				   "the fragment before it does not end at a row boundary, and this one is not "
				   "marked as continuing that row");
		}
	}
}

/* ---- images nothing references ---- */

struct unref {
	struct fsck *f;
	uint64_t *ids;
	size_t n, cap;
	int err;
};

static int unref_cb(void *arg, uint64_t id)
{
	struct unref *u = arg;
	struct fk_ref key = { .id = id };

	if (u->f->nrefs && bsearch(&key, u->f->refs, u->f->nrefs, sizeof(key), cmp_ref))
		return 0;
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 64;
		uint64_t *v = realloc(u->ids, cap * sizeof(*v));
		if (!v) {
			u->err = -ENOMEM;
			return 1;
		}
		u->ids = v;
		u->cap = cap;
	}
	u->ids[u->n++] = id;
	return 0;
}

int fk_check_unreferenced(struct fsck *f)
{
	struct unref u = { .f = f };
	struct idx_txn *t = NULL;
	int rc = frag_list(store_backend(f->st, 0), unref_cb, &u);

	if (rc > 0)
		rc = u.err;
	/* a mount may have committed them since the snapshot: ask again */
	if (!rc && u.n)
		rc = idx_begin(store_idx(f->st), 1, &t);
	for (size_t i = 0; !rc && i < u.n; i++) {
		uint32_t count = 0;
		rc = idx_ref_get(t, u.ids[i], &count);
		if (!rc && !count) {
			char where[160];
			frag_where(store_backend(f->st, 0), u.ids[i], where, sizeof(where));
			fk_warn(f, 0, "fragment image %s is not referenced (left by an interrupted commit; "
				"removed at the next mount)", where);
		}
	}
	idx_abort(t);
	free(u.ids);
	return rc;
}

/* ---- row indexes nothing references ---- */

struct orphan_idx {
	struct fsck *f;
	uint64_t *ids;
	size_t n, cap;
};

static int rowidx_id_cb(void *arg, uint64_t id)
{
	struct orphan_idx *o = arg;

	uint64_t *v;

	if (fk_find_ref(o->f, id))
		return 0;
	if (!(v = fk_grow(o->ids, &o->cap, o->n, sizeof(*v))))
		return -ENOMEM;
	o->ids = v;
	v[o->n++] = id;
	return 0;
}

int fk_check_rowidx_orphans(struct fsck *f)
{
	struct orphan_idx o = { .f = f };
	struct idx_txn *t;
	int rc = idx_begin(store_idx(f->st), 1, &t);

	if (!rc)
		rc = idx_rowidx_iter(t, rowidx_id_cb, &o);
	/* the iteration's txn is newer than the snapshot: a mount may have
	 * committed a fragment since; it counts only if this txn agrees */
	for (size_t i = 0; !rc && i < o.n; i++) {
		uint32_t count = 0;
		rc = idx_ref_get(t, o.ids[i], &count);
		if (rc || count)
			continue;
		fk_warn(f, 0, "fragment %016llx: a row index without a fragment (format.md rule 7; "
			"fsck --repair drops it)", (unsigned long long)o.ids[i]);
		rc = bad_rowidx(f, o.ids[i]);
	}
	idx_abort(t);
	free(o.ids);
	return rc;
}
