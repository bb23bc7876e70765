/* ctl_fsck_plan — `fsck --repair`, the decisions for the data of each
 * object (docs/payloadctl.1 REPAIR). Works on the checked snapshot only;
 * ctl_fsck_fix.c writes what is decided here, ctl_fsck_plan_ns.c decides
 * the namespace. Each decision prints one "repair:" line.
 *
 * Policy for a regular object:
 *  (1) A healthy object (every fragment verified, the list contiguous from
 *      0 and covering exactly its size, rows right) is left untouched.
 *  (2) Only metadata wrong (row counts, first rows, the fragment counter,
 *      a stale inline record, empty fragment records, a fragment's mark of
 *      continuing a row): the records are rewritten in place; the bytes,
 *      the path and the version stay. Each kept record's FRAG_F_CONT and
 *      rows are set from the verified bytes: lines, it continues a row
 *      when the kept fragment before it ends without '\n'; fixed:N, when
 *      its new offset is inside a record.
 *  (3) Bytes lost — a fragment whose image is missing or does not verify
 *      (truncated, zero-filled, flipped, swapped, another id), a gap or an
 *      overlap in the list, a list shorter or longer than the size, missing
 *      inline bytes: the object keeps every fragment that verifies, in
 *      order, moved up to close the gaps (with (2) for their marks and
 *      rows, so rows that a dropped fragment cut join), its size and rows
 *      become what it now holds,
 *      its version goes up by one, and it moves to /lost+found/ID-NAME with
 *      xattrs user.fsck.path (where it was) and user.fsck.lost (each byte
 *      range dropped and why). Its other names are removed.
 *  (4) A fixed:N object whose size is no multiple of N becomes `lines`,
 *      and its bytes are re-cut into new fragments through the store API
 *      after the index is consistent.
 *  (5) A storage=memory object with any of the above is emptied: its data
 *      lived in a daemon's memory and is gone (a mount does the same).
 */
#include "tools/ctl_fsck.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DROPPED_MAX 60000   /* bytes of user.fsck.lost (below STORE_XATTR_MAX) */

/* Append "; WHAT" to R->dropped (bounded). @return 0 or -ENOMEM. */
static int note_dropped(struct fk_ino *r, const char *fmt, ...)
{
	char line[512];
	size_t old = r->dropped ? strlen(r->dropped) : 0, n;
	va_list ap;
	char *v;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	if (old + n + 3 > DROPPED_MAX)
		return 0;
	v = realloc(r->dropped, old + n + 3);
	if (!v)
		return -ENOMEM;
	if (old)
		memcpy(v + old, "; ", 2), old += 2;
	memcpy(v + old, line, n + 1);
	r->dropped = v;
	return 0;
}

/* Mark R lost (policy 3), remembering where it was. @return 0 or -ENOMEM. */
int fk_mark_lost(struct fsck *f, struct fk_ino *r)
{
	char path[4096];

	if (r->lost)
		return 0;
	r->lost = 1;
	if (fk_path(f, r->in.ino, path, sizeof(path)))
		snprintf(path, sizeof(path), "(in no directory)");
	r->origin = strdup(path);
	return r->origin ? 0 : -ENOMEM;
}

/* FR's flags and rows at offset OFF under format IN, after PREV (the kept
 * record before it, or NULL): FRAG_F_CONT as the bytes say (policy 2), or
 * as recorded where they were not read (FK_SKIPPED). */
static void place(const struct idx_inode *in, struct fk_frag *fr, const struct fk_frag *prev, uint64_t off)
{
	int cont;

	if (in->fmt_kind == PFMT_FIXED)
		cont = in->fmt_recsize && off % in->fmt_recsize;
	else if (!prev)
		cont = 0;
	else if (fr->state == FK_GOOD && prev->state == FK_GOOD)
		cont = !prev->nl_end;
	else
		cont = !!(fr->d.flags & FRAG_F_CONT);
	fr->nflags = (uint16_t)((fr->d.flags & ~FRAG_F_CONT) | (cont ? FRAG_F_CONT : 0));
	if (fr->state != FK_GOOD && in->fmt_kind != PFMT_FIXED)
		fr->nrows = fr->d.rows;
	else
		fr->nrows = (uint32_t)fk_frag_rows(in, off, fr->d.len, fr->nls, fr->nl_end, cont);
}

/* 1 when FR's bytes can be kept in an object of storage MEM. */
static int usable(const struct fk_frag *fr, int mem)
{
	if (!!(fr->d.flags & FRAG_F_MEMORY) != mem)
		return 0;
	return fr->state == FK_GOOD || (mem && fr->state == FK_SKIPPED);
}

static int plan_inline(struct fsck *f, struct fk_ino *r)
{
	struct idx_inode *in = &r->nin;
	int rc = 0;

	for (uint32_t k = 0; k < r->fn; k++)
		f->frags[r->f0 + k].drop = 1;
	if (r->fn) {
		r->data_changed = 1;
		fk_action(f, in->ino, "%" PRIu32 " fragment record(s) of an inline object removed", r->fn);
	}
	in->nfrags = 0;
	if (!r->inl_present) {
		if (!in->size)
			return 0;
		rc = fk_mark_lost(f, r);
		if (!rc)
			rc = note_dropped(r, "bytes 0..%" PRIu64 ": inline data missing", in->size);
		fk_action(f, in->ino, "inline data missing: emptied (%" PRIu64 " bytes lost)", in->size);
		in->size = in->rows = 0;
		in->version++;
		r->data_changed = 1;
	} else if (r->inl_len != in->size) {
		rc = fk_mark_lost(f, r);
		if (!rc)
			rc = note_dropped(r, "the size was %" PRIu64 "; the %zu inline bytes are kept",
					  in->size, r->inl_len);
		fk_action(f, in->ino, "size set to its %zu inline bytes (was %" PRIu64 ")", r->inl_len, in->size);
		in->size = r->inl_len;
		in->rows = r->inl_rows;
		in->version++;
	} else if (r->inl_rows != in->rows) {
		fk_action(f, in->ino, "rows set to %" PRIu64 " (was %" PRIu64 ")", r->inl_rows, in->rows);
		in->rows = r->inl_rows;
	}
	return rc;
}

/* Walk R's records: decide which are kept (usable, not overlapping) and
 * note every byte range lost. Sets *SIZE to the bytes kept and *LOST when
 * any range was lost. @return 0 or -ENOMEM. */
static int choose_kept(struct fsck *f, struct fk_ino *r, uint64_t *size, int *lost)
{
	int mem = !!(r->in.flags & INODE_F_MEMORY), rc = 0;
	uint64_t covered = 0, kept = 0;

	*lost = 0;
	for (uint32_t k = 0; k < r->fn && !rc; k++) {
		struct fk_frag *fr = &f->frags[r->f0 + k];
		const struct frag_desc *d = &fr->d;

		if (!d->len) {
			fr->drop = 1;   /* holds nothing: metadata only */
			continue;
		}
		if (d->off > covered) {
			*lost = 1;
			rc = note_dropped(r, "bytes %" PRIu64 "..%" PRIu64 ": no fragment", covered, d->off);
		}
		if (!rc && d->off < covered) {
			*lost = fr->drop = 1;
			rc = note_dropped(r, "bytes %" PRIu64 "..%" PRIu64 " (fragment %016llx): overlaps "
					  "the fragment before it", d->off, d->off + d->len,
					  (unsigned long long)d->id);
		} else if (!rc && !usable(fr, mem)) {
			*lost = fr->drop = 1;
			rc = note_dropped(r, "bytes %" PRIu64 "..%" PRIu64 " (fragment %016llx): %s",
					  d->off, d->off + d->len, (unsigned long long)d->id,
					  fr->why ? fr->why : "its image is in the wrong backend");
		}
		if (!fr->drop)
			kept += d->len;
		if (d->off + d->len > covered)
			covered = d->off + d->len;
	}
	if (!rc && covered < r->in.size) {
		*lost = 1;
		rc = note_dropped(r, "bytes %" PRIu64 "..%" PRIu64 ": no fragment", covered, r->in.size);
	} else if (!rc && covered > r->in.size) {
		*lost = 1;
		rc = note_dropped(r, "the size was %" PRIu64 "; the fragments hold %" PRIu64
				  " bytes, kept", r->in.size, covered);
	}
	*size = kept;
	return rc;
}

/* Empty storage=memory object R (policy 5). */
static void empty_memory(struct fsck *f, struct fk_ino *r)
{
	for (uint32_t k = 0; k < r->fn; k++)
		f->frags[r->f0 + k].drop = 1;
	r->nin.size = r->nin.rows = 0;
	r->nin.nfrags = 0;
	r->nin.version++;
	r->data_changed = 1;
	r->lost = 0;
	free(r->dropped);
	r->dropped = NULL;
	fk_action(f, r->in.ino, "storage=memory object emptied (its data lived in a daemon's memory)");
}

static int plan_frags(struct fsck *f, struct fk_ino *r)
{
	struct idx_inode *in = &r->nin;
	uint64_t size, off = 0, row = 0;
	uint32_t nkept = 0, last = UINT32_MAX;
	int lost, moved = 0, rc;

	if (r->inl_present) {
		r->drop_inline = 1;
		fk_action(f, in->ino, "stale inline record removed");
	}
	rc = choose_kept(f, r, &size, &lost);
	if (rc)
		return rc;
	if (lost && (in->flags & INODE_F_MEMORY)) {
		empty_memory(f, r);
		return 0;
	}
	if (in->fmt_kind == PFMT_FIXED && (!in->fmt_recsize || size % in->fmt_recsize)) {
		fk_action(f, in->ino, "format fixed:%" PRIu32 " does not fit its %" PRIu64
			  " bytes: set to lines", in->fmt_recsize, size);
		in->fmt_kind = PFMT_LINES;
		in->fmt_recsize = 0;
		r->recut = 1;
	}
	for (uint32_t k = 0; k < r->fn; k++) {
		struct fk_frag *fr = &f->frags[r->f0 + k];
		if (fr->drop)
			continue;
		fr->noff = off;
		fr->nrow = row;
		place(in, fr, last == UINT32_MAX ? NULL : &f->frags[r->f0 + last], off);
		moved |= off != fr->d.off || row != fr->d.first_row || fr->nrows != fr->d.rows ||
			 fr->nflags != fr->d.flags;
		off += fr->d.len;
		row += fr->nrows;
		nkept++;
		last = k;
	}
	if (nkept != r->fn || moved)
		r->data_changed = 1;
	if (lost) {
		rc = fk_mark_lost(f, r);
		fk_action(f, in->ino, "keeps %" PRIu32 " of its %" PRIu32 " fragment records, %" PRIu64
			  " bytes (its size was %" PRIu64 "); lost: %s", nkept, r->fn, size, in->size,
			  r->dropped ? r->dropped : "");
	} else if (r->data_changed || in->size != off || in->rows != row || in->nfrags != nkept) {
		fk_action(f, in->ino, "fragment records rewritten: %" PRIu32 " fragments, %" PRIu64
			  " bytes, %" PRIu64 " rows (the bytes are unchanged)", nkept, off, row);
	}
	if (r->recut)
		fk_action(f, in->ino, "now lines: the bytes are re-cut into new fragments");
	if (lost || r->recut)
		in->version++;
	in->size = off;
	in->rows = row;
	in->nfrags = nkept;
	return rc;
}

int fk_plan_data(struct fsck *f)
{
	int rc = 0;

	for (size_t i = 0; i < f->nfrags; i++)   /* records of inodes that do not exist */
		if (!fk_find(f, f->frags[i].ino)) {
			f->frags[i].drop = 1;
			fk_action(f, 0, "fragment record of missing inode %" PRIu64 " removed", f->frags[i].ino);
		}
	for (size_t i = 0; i < f->ninos && !rc; i++) {
		struct fk_ino *r = &f->inos[i];
		if (!S_ISREG(r->in.mode)) {
			for (uint32_t k = 0; k < r->fn; k++)
				f->frags[r->f0 + k].drop = 1;
			if (r->fn)
				fk_action(f, r->in.ino, "%" PRIu32 " fragment record(s) of a %s removed",
					  r->fn, ctl_type_name(r->in.mode));
			continue;
		}
		rc = (r->in.flags & INODE_F_INLINE) ? plan_inline(f, r) : plan_frags(f, r);
	}
	return rc;
}
