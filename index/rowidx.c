/* rowidx — see rowidx.h.
 *
 * Invariants:
 *  (1) What an index promises: every offset it holds is where the named
 *      local row starts in the fragment's raw bytes (0, or one past a
 *      '\n'), entries are strictly increasing and below the fragment's
 *      length, and ent[k] is local row k * ROWIDX_STRIDE for every k with
 *      k * ROWIDX_STRIDE < rows (no gaps), head[j - 1] local row j for
 *      1 <= j <= min(ROWIDX_HEAD, rows - 1). It depends only on the
 *      fragment's bytes and FRAG_F_CONT, never on where the fragment lies
 *      in an object (first_row may change when a commit reuses it), so
 *      one record keyed by fragment id serves every object and snapshot
 *      that shares the fragment.
 *  (2) When it may be missing (readers then scan the decoded fragment,
 *      which is what format 3 always did): fragments written before
 *      format 4 (stores are upgraded lazily: only new fragments get one,
 *      a rewrite of an object indexes what it rewrites); fixed:N objects
 *      and memory-storage fragments (never indexed); fragments in which
 *      no row starts; fragments whose stash entry was displaced (3).
 *      A malformed record is treated as missing (rowidx_find -EUCLEAN).
 *  (3) The stash carries an index from the encoder (wjob.c, which has
 *      the raw bytes) to the commit that first references the fragment
 *      (commit.c swap_lists, same txn as the first reference). It is a
 *      direct-mapped table of ROWIDX_STASH slots by id: ids are allocated
 *      in sequence, so a commit of up to ROWIDX_STASH new fragments keeps
 *      them all; a larger one, or a failed commit's leftovers, lose
 *      entries to later ids (bounded memory, never a wrong index: an
 *      entry is taken only for its own id).
 */
#include "index/rowidx.h"
#include "index/idx_rec.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void put_le16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static uint16_t get_le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

int rowidx_build(const char *raw, size_t len, int cont, unsigned char **out, size_t *out_len,
		 uint64_t *rows)
{
	uint64_t dummy;
	int oom = 0;

	const char *p = raw, *end = raw + len;
	uint32_t head[ROWIDX_HEAD], nhead = 0, n = 0, cap = 0, *ent = NULL;
	uint64_t row = 0;           /* local row of the start at P */
	unsigned char *rec;

	*out = NULL;
	*out_len = 0;
	if (!rows)
		rows = &dummy;
	if (cont) {                 /* local row 0 starts after the first newline */
		p = memchr(p, '\n', len);
		p = p ? p + 1 : end;
	}
	while (p < end) {           /* a row starts at P */
		if (row >= 1 && row <= ROWIDX_HEAD)
			head[nhead++] = (uint32_t)(p - raw);
		if (row % ROWIDX_STRIDE == 0 && !oom) {
			if (n == cap) {
				uint32_t *v = realloc(ent, (cap ? cap * 2 : 16) * sizeof(*v));
				if (!v)
					oom = 1;     /* go on counting rows */
				else
					ent = v, cap = cap ? cap * 2 : 16;
			}
			if (!oom)
				ent[n++] = (uint32_t)(p - raw);
		}
		p = memchr(p, '\n', (size_t)(end - p));
		p = p ? p + 1 : end;
		row++;
	}
	*rows = row;
	if (oom || !n) {
		free(ent);
		return oom ? -ENOMEM : 0;
	}
	/* the prefix: the most head rows that fit, whole */
	uint32_t plen = 0;
	if (!cont)
		for (uint32_t i = 0; i < nhead && head[i] <= ROWIDX_PREFIX_MAX; i++)
			plen = head[i];
	if (!cont && !plen && len <= ROWIDX_PREFIX_MAX && n == 1 && nhead == 0)
		plen = (uint32_t)len;     /* a fragment of one row */
	*out_len = ROWIDX_HDR + 4 * (size_t)(nhead + n) + (plen ? 4 + plen : 0);
	if (!(rec = malloc(*out_len))) {
		free(ent);
		*out_len = 0;
		return -ENOMEM;
	}
	put_le16(rec, ROWIDX_STRIDE);
	put_le16(rec + 2, (uint16_t)nhead);
	idx_rec_put_le32(rec + 4, n);
	for (uint32_t i = 0; i < nhead; i++)
		idx_rec_put_le32(rec + ROWIDX_HDR + 4 * i, head[i]);
	for (uint32_t i = 0; i < n; i++)
		idx_rec_put_le32(rec + ROWIDX_HDR + 4 * (nhead + i), ent[i]);
	if (plen) {
		idx_rec_put_le32(rec + ROWIDX_HDR + 4 * (nhead + n), plen);
		memcpy(rec + ROWIDX_HDR + 4 * (nhead + n) + 4, raw, plen);
	}
	free(ent);
	*out = rec;
	return 0;
}

/* The layout of REC/LEN: *BASE bytes of header and entries, then
 * *PLEN prefix bytes after a 4-byte length. @return 0 or -EUCLEAN. */
static int layout(const unsigned char *p, size_t len, uint32_t *nhead, uint32_t *n, size_t *base,
		  uint32_t *plen)
{
	if (len < ROWIDX_HDR || get_le16(p) != ROWIDX_STRIDE)
		return -EUCLEAN;
	*nhead = get_le16(p + 2);
	*n = idx_rec_get_le32(p + 4);
	if (*nhead > ROWIDX_HEAD || *n == 0 || *n > (len - ROWIDX_HDR) / 4)
		return -EUCLEAN;
	*base = ROWIDX_HDR + 4 * ((size_t)*nhead + *n);
	*plen = 0;
	if (len == *base)
		return 0;
	if (len < *base + 4)
		return -EUCLEAN;
	*plen = idx_rec_get_le32(p + *base);
	return *plen && *plen <= ROWIDX_PREFIX_MAX && len == *base + 4 + *plen ? 0 : -EUCLEAN;
}

int rowidx_prefix(const void *rec, size_t len, const unsigned char **pp, uint32_t *plen)
{
	const unsigned char *p = rec;
	uint32_t nhead, n;
	size_t base;
	int rc = layout(p, len, &nhead, &n, &base, plen);

	*pp = rc || !*plen ? NULL : p + base + 4;
	if (rc)
		*plen = 0;
	return rc;
}

int rowidx_find(const void *rec, size_t len, uint32_t frag_len, uint64_t row,
		uint32_t *off, uint32_t *skip)
{
	const unsigned char *p = rec;
	uint32_t nhead, n, k, plen;
	size_t base;

	if (layout(p, len, &nhead, &n, &base, &plen))
		return -EUCLEAN;
	if (row >= 1 && row <= nhead) {
		*off = idx_rec_get_le32(p + ROWIDX_HDR + 4 * (row - 1));
		*skip = 0;
	} else {
		if (row / ROWIDX_STRIDE >= n)
			return -ERANGE;
		k = (uint32_t)(row / ROWIDX_STRIDE);
		*off = idx_rec_get_le32(p + ROWIDX_HDR + 4 * ((size_t)nhead + k));
		*skip = (uint32_t)(row % ROWIDX_STRIDE);
	}
	return *off < frag_len ? 0 : -EUCLEAN;
}

/* ---- the stash (invariant 3) ---- */

#define ROWIDX_STASH 8192

struct rowidx_stash {
	pthread_mutex_t lock;
	struct stash_ent { uint64_t id; unsigned char *rec; size_t len; } v[ROWIDX_STASH];
};

struct rowidx_stash *rowidx_stash_new(void)
{
	struct rowidx_stash *s = calloc(1, sizeof(*s));

	if (s)
		pthread_mutex_init(&s->lock, NULL);
	return s;
}

void rowidx_stash_free(struct rowidx_stash *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < ROWIDX_STASH; i++)
		free(s->v[i].rec);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void rowidx_stash_put(struct rowidx_stash *s, uint64_t id, unsigned char *rec, size_t len)
{
	unsigned char *old;

	if (!s) {
		free(rec);
		return;
	}
	pthread_mutex_lock(&s->lock);
	struct stash_ent *e = &s->v[id % ROWIDX_STASH];
	old = e->rec;
	e->id = id;
	e->rec = rec;
	e->len = len;
	pthread_mutex_unlock(&s->lock);
	free(old);
}

int rowidx_stash_take(struct rowidx_stash *s, uint64_t id, unsigned char **rec, size_t *len)
{
	int found = 0;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	struct stash_ent *e = &s->v[id % ROWIDX_STASH];
	if (e->rec && e->id == id) {
		*rec = e->rec;
		*len = e->len;
		e->rec = NULL;
		found = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}
