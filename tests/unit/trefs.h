/* trefs — the reference-count audit shared by the unit tests that change
 * fragment sharing (test_commit, test_copy, test_snap). Header-only;
 * include after index/store_int.h and tests/unit/tutil.h.
 *
 * What it checks, over every fragment record of the store (live tree,
 * snapshots, pinned-free): each id's refs record equals the number of
 * fragment records naming it, and no refs record is left without records;
 * with FILES, after a store_sync (so released images are gone), the image
 * files in the fragment folder are exactly one per referenced disk id. */
#ifndef PFS_TREFS_H
#define PFS_TREFS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/tstore.h"

/* id -> count, a linear list (tests hold at most a few thousand ids) */
struct trefs_count { uint64_t *id; uint32_t *n; size_t len, cap; };

static inline void trefs_add(struct trefs_count *c, uint64_t id, uint32_t n)
{
	for (size_t i = 0; i < c->len; i++)
		if (c->id[i] == id) {
			c->n[i] += n;
			return;
		}
	if (c->len == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->id = realloc(c->id, c->cap * sizeof(*c->id));
		c->n = realloc(c->n, c->cap * sizeof(*c->n));
		if (!c->id || !c->n)
			abort();
	}
	c->id[c->len] = id;
	c->n[c->len++] = n;
}

static inline uint32_t trefs_get(const struct trefs_count *c, uint64_t id)
{
	for (size_t i = 0; i < c->len; i++)
		if (c->id[i] == id)
			return c->n[i];
	return 0;
}

static inline void trefs_free(struct trefs_count *c)
{
	free(c->id);
	free(c->n);
}

static inline int trefs_on_frag(void *arg, uint64_t ino, const struct frag_desc *d)
{
	struct trefs_count *c = arg;   /* c[0]: all records, c[1]: disk ones */

	(void)ino;
	trefs_add(&c[0], d->id, 1);
	if (!(d->flags & FRAG_F_MEMORY))
		trefs_add(&c[1], d->id, 1);
	return 0;
}

static inline int trefs_on_ref(void *arg, uint64_t id, uint32_t count)
{
	trefs_add(arg, id, count);
	return 0;
}

/* Audit ST (its fragment folder FRAGDIR; image files end in SFX, NULL for
 * every file). *NDISK (may be NULL) gets the number of referenced disk ids.
 * @return 1 when everything holds, else 0 with the first difference in
 * WHY (CAP bytes). */
static inline int trefs_audit(struct store *st, const char *fragdir, const char *sfx, int files,
			      char *why, size_t cap, size_t *ndisk)
{
	struct trefs_count recs[2] = { { 0 }, { 0 } }, refs = { 0 };
	struct idx_txn *t;
	int ok = 1, rc = idx_begin(store_idx(st), 1, &t);

	if (rc) {
		snprintf(why, cap, "idx_begin %d", rc);
		return 0;
	}
	rc = idx_frags_iter_all(t, trefs_on_frag, recs);
	if (!rc)
		rc = idx_refs_iter(t, trefs_on_ref, &refs);
	idx_abort(t);
	if (rc || recs[0].len != refs.len) {
		snprintf(why, cap, "rc %d: %zu ids recorded, %zu refs records", rc, recs[0].len, refs.len);
		ok = 0;
	}
	for (size_t i = 0; ok && i < recs[0].len; i++)
		if (trefs_get(&refs, recs[0].id[i]) != recs[0].n[i]) {
			snprintf(why, cap, "fragment %016" PRIx64 ": %u records, count %u", recs[0].id[i],
				 recs[0].n[i], trefs_get(&refs, recs[0].id[i]));
			ok = 0;
		}
	if (ndisk)
		*ndisk = recs[1].len;
	if (ok && files) {
		long nfiles;
		if (tst_sync(st)) {
			snprintf(why, cap, "store_sync failed");
			ok = 0;
		}
		nfiles = tut_count_files(fragdir, sfx);
		if (ok && nfiles != (long)recs[1].len) {
			snprintf(why, cap, "%ld image files, %zu referenced disk ids", nfiles, recs[1].len);
			ok = 0;
		}
	}
	trefs_free(&recs[0]);
	trefs_free(&recs[1]);
	trefs_free(&refs);
	return ok;
}

#endif
