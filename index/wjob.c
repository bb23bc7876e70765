/* wjob — one fragment to encode and put, run on the store's worker pool:
 * the commit cuts its regions into wjobs (several encodes at once), and a
 * write session cuts the tail of a sequential write into wjobs while the
 * writes go on (stage.c (5)).
 *
 * Invariants:
 *  (1) The id is allocated when the job is made, in cut order, so ids and
 *      fragment order are the same whatever order the workers finish in.
 *  (2) RAW comes from the bufpool (cache/bufpool.h: recycled, so streaming
 *      does not page-fault fresh memory per fragment). The job owns RAW
 *      once wjob_start returned 0 (a failed start leaves RAW with the
 *      caller); on success it
 *      frees RAW (the bytes live in the image now), on failure it keeps
 *      RAW so that its owner can still read and re-cut the bytes.
 *  (3) Nothing but the job touches it between wjob_start and wjob_wait;
 *      after wjob_wait the owner reads d/rc and frees it with wjob_free.
 *  (4) A job that fails leaves no image (backend put removes its own).
 */
#include "index/store_int.h"
#include "index/rowidx.h"
#include "cache/codec.h"
#include "cache/bufpool.h"
#include "cache/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void wjob_run(void *arg)
{
	struct wjob *j = arg;
	/* the store's other encode jobs in flight now (recompress.c (P1)) */
	unsigned behind = __atomic_load_n(&j->st->enc_inflight, __ATOMIC_RELAXED) - 1;
	size_t cap = frag_encode_bound(j->len), enc_len = 0;
	char *enc = bp_get(cap, &cap);     /* fault point "alloc" */
	struct frag_info info;
	int rc = enc ? 0 : -ENOMEM;
	unsigned char *rec = NULL;
	size_t rlen = 0;
	uint64_t rows;

	if (!rc && !inode_is_fixed(&j->fmt) && !(j->d.flags & FRAG_F_MEMORY) && j->st->ris)
		/* its row index, for the commit to put (rowidx.c (3)), and
		 * its rows in the same pass; no index on ENOMEM (rowidx.c (2)) */
		(void)rowidx_build(j->raw, j->len, j->phase != 0, &rec, &rlen, &rows);
	else
		rows = frag_rows(&j->fmt, j->raw, j->len, j->phase);
	if (!rc) {
		int raw = store_stage_raw_now(j->st, &j->d, behind);

		rc = frag_encode_mode(j->d.id, j->raw, j->len, (uint32_t)rows, enc, cap, &enc_len, &info, !raw);
		if (!rc && raw)
			j->d.flags |= FRAG_F_STAGED;
	}
	if (!rc)
		rc = frag_put(j->be, j->d.id, enc, enc_len);
	bp_put(enc, cap);
	if (!rc && rec)
		rowidx_stash_put(j->st->ris, j->d.id, rec, rlen);
	else
		free(rec);
	if (!rc) {
		j->out = j->d;
		j->out.rows = info.rows;
		j->out.stored_len = info.stored_len;
		j->out.codec = info.codec;
		j->out.checksum = info.checksum;
		bp_put(j->raw, j->raw_cap);
		j->raw = NULL;
		__atomic_add_fetch(&j->st->stats.frags_written, 1, __ATOMIC_RELAXED);
	}
	j->rc = rc;
	__atomic_sub_fetch(&j->st->enc_inflight, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
}

int wjob_new(struct store *st, const struct idx_inode *fmt, size_t len, uint32_t phase,
	     struct wjob **out)
{
	struct wjob *j;

	*out = NULL;
	if (len > FRAG_MAX_RAW)
		return -EFBIG;
	if (FAULT("alloc") || !(j = calloc(1, sizeof(*j))))
		return -ENOMEM;
	j->st = st;
	j->fmt = *fmt;
	j->be = fmt->flags & INODE_F_MEMORY ? st->mem : st->disk;
	j->len = len;
	j->d.id = store_alloc_frag_id(st);
	j->d.len = (uint32_t)len;
	j->phase = phase;
	j->d.flags = (fmt->flags & INODE_F_MEMORY ? FRAG_F_MEMORY : 0) | (phase ? FRAG_F_CONT : 0);
	j->waited = 1;           /* nothing to wait for until submitted */
	*out = j;
	return 0;
}

void wjob_submit(struct wjob *j, char *raw, size_t raw_cap)
{
	j->raw = raw;
	j->raw_cap = raw_cap;
	j->waited = 0;
	__atomic_add_fetch(&j->st->enc_inflight, 1, __ATOMIC_RELAXED);
	pool_group_init(&j->g);
	pool_group_submit(j->st->pool, &j->g, wjob_run, j);
}

int wjob_start(struct store *st, const struct idx_inode *fmt, char *raw, size_t raw_cap, size_t len,
	       uint32_t phase, struct wjob **out)
{
	int rc = wjob_new(st, fmt, len, phase, out);

	if (!rc)
		wjob_submit(*out, raw, raw_cap);
	return rc;
}

int wjob_done(const struct wjob *j)
{
	return __atomic_load_n(&j->done, __ATOMIC_ACQUIRE);
}

int wjob_wait(struct wjob *j)
{
	if (!j->waited) {
		pool_group_wait(j->st->pool, &j->g);
		j->waited = 1;
	}
	return j->rc;
}

void wjob_free(struct wjob *j)
{
	if (!j)
		return;
	wjob_wait(j);
	bp_put(j->raw, j->raw_cap);
	free(j);
}
