/* putcut — the fragments of store_put_many's members that do not fit
 * inline: cut, encoded and put BEFORE the batch's one index txn (ns.c (7)).
 *
 * Invariants:
 *  (P1) A member's bytes are cut as a commit cuts a region (commit.c (1)):
 *       pieces of at most frag_size bytes ending at a row end
 *       (cut_piece_len), fixed:N records never split but by a record longer
 *       than a fragment, each piece a wjob on the store's pool (encode +
 *       put: lz4, the row index stashed for the txn), at most
 *       2 x threads jobs in flight over the whole batch, so memory stays a
 *       few fragments whatever the batch's size.
 *  (P2) Every image of the batch is durable before the txn that names it:
 *       ONE backend sync of all their ids (commit.c (3)).
 *  (P3) Until the txn committed nothing references these images: on any
 *       failure (a job's, the sync's, any member's in the txn, the txn's)
 *       putcut_discard deletes every one of them and drops their stashed
 *       row indexes; a crash before the txn leaves unreferenced images,
 *       which the next mount's sweep removes (docs/design.md, orphans).
 */
#include "index/store_int.h"
#include "index/rowidx.h"
#include "cache/bufpool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int wait_oldest(struct putcut *pc)
{
	return wjob_wait(pc->jobs[pc->waited++]);
}

static int push_job(struct putcut *pc, struct wjob *j)
{
	if (pc->njobs == pc->cap) {
		uint32_t nc = pc->cap ? pc->cap * 2 : 64;
		struct wjob **nj = realloc(pc->jobs, nc * sizeof(*nj));
		if (!nj)
			return -ENOMEM;
		pc->jobs = nj;
		pc->cap = nc;
	}
	pc->jobs[pc->njobs++] = j;
	return 0;
}

void putcut_init(struct putcut *pc, struct store *st)
{
	unsigned t = pool_threads(st->pool);

	memset(pc, 0, sizeof(*pc));
	pc->st = st;
	pc->max_inflight = 2 * (t ? t : 1);
}

int putcut_member(struct putcut *pc, const struct idx_inode *fmt, const void *data, size_t len,
		  struct putcut_member *m)
{
	struct store *st = pc->st;
	const char *p = data;
	size_t at = 0;
	uint32_t phase = 0;
	int rc = 0;

	m->fmt = *fmt;
	m->first = pc->njobs;
	m->n = 0;
	m->rows = 0;
	m->len = len;
	while (at < len && !rc) {
		size_t piece = cut_piece_len(fmt, st->frag_size, p + at, len - at, 1, phase), cap;
		struct wjob *j = NULL;
		char *raw;

		if (!piece)
			return -EIO;       /* cannot happen with FINAL */
		if (m->n >= STORE_FRAGS_MAX)
			return -EFBIG;
		while (!rc && pc->njobs - pc->waited >= pc->max_inflight)
			rc = wait_oldest(pc);
		if (rc)
			break;
		if (!(raw = bp_get(piece, &cap)))
			return -ENOMEM;
		memcpy(raw, p + at, piece);
		rc = wjob_start(st, fmt, raw, cap, piece, phase, &j);
		if (!rc && (rc = push_job(pc, j)) != 0) {
			wjob_wait(j);
			if (!j->rc)
				store_discard_image(st, j->be, j->d.id);
			wjob_free(j);
		}
		if (rc) {
			if (!j)
				bp_put(raw, cap);
			break;
		}
		phase = next_phase(fmt, p + at, piece, phase);
		at += piece;
		m->n++;
	}
	return rc;
}

int putcut_finish(struct putcut *pc)
{
	uint64_t *ids;
	int rc = 0;

	for (uint32_t k = pc->waited; k < pc->njobs; k++) {
		int r = wjob_wait(pc->jobs[k]);
		rc = rc ? rc : r;
	}
	pc->waited = pc->njobs;
	for (uint32_t k = 0; k < pc->njobs && !rc; k++)
		rc = pc->jobs[k]->rc;
	if (rc || !pc->njobs)
		return rc;
	if (!(ids = malloc(pc->njobs * sizeof(*ids))))
		return -ENOMEM;
	for (uint32_t k = 0; k < pc->njobs; k++)
		ids[k] = pc->jobs[k]->d.id;
	rc = frag_sync(pc->st->disk, ids, pc->njobs);     /* (P2) */
	free(ids);
	return rc;
}

int putcut_fill(struct putcut *pc, struct idx_txn *t, uint64_t ino, struct putcut_member *m)
{
	uint64_t off = 0, row = 0;
	int rc = 0;

	for (uint32_t k = 0; k < m->n && !rc; k++) {
		struct frag_desc d = pc->jobs[m->first + k]->out;
		d.off = off;
		d.first_row = row;
		off += d.len;
		row += d.rows;
		rc = idx_frag_put(t, ino, &d);
		if (!rc)
			rc = store_ref_inc(pc->st, t, d.id);
	}
	m->rows = row;
	return rc;
}

void putcut_discard(struct putcut *pc)
{
	for (uint32_t k = 0; k < pc->njobs; k++) {
		struct wjob *j = pc->jobs[k];
		unsigned char *rec;
		size_t len;

		if (wjob_wait(j) == 0) {
			store_discard_image(pc->st, j->be, j->d.id);
			if (pc->st->ris && rowidx_stash_take(pc->st->ris, j->d.id, &rec, &len))
				free(rec);
		}
	}
	putcut_free(pc);
}

void putcut_free(struct putcut *pc)
{
	for (uint32_t k = 0; k < pc->njobs; k++)
		wjob_free(pc->jobs[k]);
	free(pc->jobs);
	pc->jobs = NULL;
	pc->njobs = pc->cap = pc->waited = 0;
}
