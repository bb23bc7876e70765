/* test_copy — copies between objects through write sessions (wsess_copy,
 * wsess_copy_within, wsess_copy_sess: index/stage.c (10), commit.c (1)),
 * on a temporary store with 4 KiB fragments. Every object has a model (a
 * byte buffer); after each commit every object must equal its model, its
 * fragment list must be contiguous and row-aligned, and the reference
 * counts must equal the fragment records over all objects.
 *
 * Checked: a whole copy (what `cp` does) writes no fragment image and
 * lists the source's ids; a partial copy into the middle writes only the
 * edges; copies past the end are short (0 at the end); copies into a gap
 * leave zeros; copies within one session with overlapping ranges behave
 * as memmove; a copy from a view; sources of another format or storage are
 * copied as bytes (still equal); both sides stay independent under later
 * writes, truncates and deletes; images shared by a copy survive the
 * deletion of the source and are deleted (after the next index flush) once no
 * object lists them; a failed commit (injected ENOSPC) keeps the old
 * version and the reference counts; and a randomized sequence of writes,
 * copies (from other objects, from the object itself, within the
 * session), truncates and commits over several objects (seed logged as
 * "# seed N"; TEST_SEED repeats it). */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "cache/fault.h"
#include "cache/log.h"
#include "index/store_int.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"
#include "tests/unit/trefs.h"

#define ROOT IDX_ROOT_INO
#define FRAG 4096

static char tmp[4000], fragdir[4300];
static struct store *st;

/* ---- models ---- */

struct model {
	char *b;
	size_t len, cap;
};

static void m_reserve(struct model *m, size_t n)
{
	if (n <= m->cap)
		return;
	m->cap = n * 2 + 64;
	if (!(m->b = realloc(m->b, m->cap)))
		abort();
}

static void m_write(struct model *m, const void *p, size_t len, size_t off)
{
	m_reserve(m, off + len + 1);
	if (off > m->len)
		memset(m->b + m->len, 0, off - m->len);
	if (len)
		memmove(m->b + off, p, len);
	if (off + len > m->len)
		m->len = off + len;
}

static void m_truncate(struct model *m, size_t size)
{
	m_reserve(m, size + 1);
	if (size > m->len)
		memset(m->b + m->len, 0, size - m->len);
	m->len = size;
}

/* copy_file_range on models: [soff, soff+len) of SRC (clipped) to OFF of
 * DST. @return the bytes copied. */
static size_t m_copy_range(struct model *dst, const struct model *src, size_t soff, size_t len, size_t off)
{
	char *tmpb;

	if (soff >= src->len)
		return 0;
	if (len > src->len - soff)
		len = src->len - soff;
	tmpb = malloc(len ? len : 1);
	memcpy(tmpb, src->b + soff, len);
	m_write(dst, tmpb, len, off);
	free(tmpb);
	return len;
}

static void m_dup(struct model *dst, const struct model *src)
{
	dst->len = 0;
	m_write(dst, src->b, src->len, 0);
}

static void gen_rows(struct model *m, uint64_t first, size_t target)
{
	char row[64];

	for (uint64_t i = first; m->len < target; i++) {
		int n = snprintf(row, sizeof(row), "%07" PRIu64 ",name%" PRIu64 ",%" PRIu64 "\n", i, i * 7 % 1000,
				 (i * 2654435761u) % 100000);
		m_write(m, row, (size_t)n, m->len);
	}
}

/* ---- store helpers ---- */

static uint64_t mkobj(const char *name)
{
	struct idx_inode in;
	int rc = store_mknod(st, ROOT, name, S_IFREG | 0644, 0, 0, 0, &in);

	if (rc) {
		printf("Bail out! mknod %s: %d\n", name, rc);
		exit(1);
	}
	return in.ino;
}

static struct pver *pin(uint64_t ino)
{
	struct pver *pv;

	if (store_pver_get(st, ino, &pv)) {
		printf("Bail out! store_pver_get %" PRIu64 "\n", ino);
		exit(1);
	}
	return pv;
}

static struct wsess *begin(uint64_t ino, int trunc)
{
	struct pver *pv = pin(ino);
	struct wsess *ws = NULL;
	int rc = store_wsess_begin(st, pv, NULL, trunc, &ws);

	pver_put(pv);
	if (rc) {
		printf("Bail out! wsess_begin %" PRIu64 ": %d\n", ino, rc);
		exit(1);
	}
	return ws;
}

static int put_all(uint64_t ino, const struct model *m)
{
	struct wsess *ws = begin(ino, 1);
	int rc = m->len ? wsess_write(ws, m->b, m->len, 0) : 0;

	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}

static uint64_t written(void)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s.frags_written;
}

/* Object INO equals M, and its fragment list is contiguous, row-aligned
 * and agrees with the index. @return 1, or 0 with WHY. */
static int same_q(uint64_t ino, const struct model *m, char *why, size_t cap)
{
	struct pver *pv = pin(ino);
	const struct idx_inode *in = pver_inode(pv);
	uint32_t fixed = in->fmt_kind == PFMT_FIXED ? in->fmt_recsize : 0, nf = pver_nfrags(pv);
	char *buf = malloc(m->len + 64);
	ssize_t n = pver_read(pv, buf, m->len + 64, 0);
	uint64_t off = 0, row = 0;
	int ok = 0;

	if (n != (ssize_t)m->len || (m->len && memcmp(buf, m->b, m->len))) {
		size_t i = 0;
		while (n > 0 && i < (size_t)n && i < m->len && buf[i] == m->b[i])
			i++;
		snprintf(why, cap, "read %zd bytes, model %zu, first difference at %zu", n, m->len, i);
		goto out;
	}
	for (uint32_t i = 0; i < nf; i++) {
		const struct frag_desc *d = pver_frag(pv, i);
		/* where it starts: inside a row (lines) or at an offset in a record */
		uint32_t phase = fixed ? (uint32_t)(d->off % fixed) : d->off && m->b[d->off - 1] != '\n';
		uint64_t rows = d->off + d->len <= m->len ? frag_rows(in, m->b + d->off, d->len, phase) : 0;
		if (d->off != off || d->first_row != row || !d->len || d->rows != rows) {
			snprintf(why, cap, "fragment %u: off %" PRIu64 " row %" PRIu64 " rows %u (want %" PRIu64 ", %"
				 PRIu64 ", %" PRIu64 ")", i, d->off, d->first_row, d->rows, off, row, rows);
			goto out;
		}
		if (!!(d->flags & FRAG_F_CONT) != !!phase || (fixed && d->len % fixed)) {
			snprintf(why, cap, "fragment %u (off %" PRIu64 ", %u bytes): FRAG_F_CONT %d, but it %s a row%s",
				 i, d->off, d->len, !!(d->flags & FRAG_F_CONT), phase ? "continues" : "starts",
				 fixed && d->len % fixed ? ", not whole records" : "");
			goto out;
		}
		off += d->len;
		row += d->rows;
	}
	if (nf && (off != m->len || row != in->rows)) {
		snprintf(why, cap, "fragments cover %" PRIu64 " bytes / %" PRIu64 " rows of %zu / %" PRIu64, off, row,
			 m->len, in->rows);
		goto out;
	}
	ok = 1;
out:
	free(buf);
	pver_put(pv);
	return ok;
}

static int same(uint64_t ino, const struct model *m, const char *what)
{
	char why[300] = "";
	int ok = same_q(ino, m, why, sizeof(why));

	CHECK(ok, "%s: equals its model (%zu bytes), fragments contiguous and row-aligned%s%s", what, m->len,
	      ok ? "" : ": ", ok ? "" : why);
	return ok;
}

/* ---- reference counts over all objects ---- */

/* refs == records; with FILES, after a store_sync, one image file per
 * referenced disk id and no other (nothing else may be pinned then). */
static int refs_q(int files, char *why, size_t cap)
{
	return trefs_audit(st, fragdir, ".frag", files, why, cap, NULL);
}

static void check_refs(int files, const char *what)
{
	char why[300] = "";
	int ok = refs_q(files, why, sizeof(why));

	CHECK(ok, "%s: reference counts equal the fragment records over all objects%s%s%s", what,
	      files ? ", one image per referenced id" : "", ok ? "" : ": ", ok ? "" : why);
}

/* How many of B's fragment ids A's current version lists too. */
static uint32_t shared_ids(uint64_t a, uint64_t b)
{
	struct pver *pa = pin(a), *pb = pin(b);
	uint32_t n = 0;

	for (uint32_t i = 0; i < pver_nfrags(pb); i++)
		for (uint32_t k = 0; k < pver_nfrags(pa); k++)
			if (pver_frag(pa, k)->id == pver_frag(pb, i)->id) {
				n++;
				break;
			}
	pver_put(pa);
	pver_put(pb);
	return n;
}

/* ---- tests ---- */

static uint64_t src_ino;
static struct model src;

static void test_whole_copy(void)
{
	uint64_t dst = mkobj("whole.csv"), w0;
	struct model dm = { 0 };
	struct pver *pv;
	struct wsess *ws;
	ssize_t n;
	uint32_t nf;

	src_ino = mkobj("src.csv");
	gen_rows(&src, 0, 300 * 1024);
	CHECK_EQ(put_all(src_ino, &src), 0, "a 300 KiB source object is committed");
	pv = pin(src_ino);
	nf = pver_nfrags(pv);
	CHECK(nf > 50, "the source has %u fragments of about 4 KiB", nf);
	w0 = written();
	ws = begin(dst, 1);            /* cp: O_TRUNC, then copy_file_range from 0 */
	n = wsess_copy(ws, pv, NULL, 0, UINT64_MAX / 4, 0);
	CHECK_EQ(n, (ssize_t)src.len, "a copy of more than the source copies its size");
	CHECK_EQ(wsess_size(ws), src.len, "the session's content has the source's size");
	CHECK_EQ(wsess_copy(ws, pv, NULL, src.len, 100, src.len), 0, "a copy at the source's end copies 0 bytes");
	CHECK_EQ(wsess_copy(ws, pv, NULL, src.len + 5, 100, 0), 0, "a copy past the source's end copies 0 bytes");
	CHECK_EQ(wsess_commit(ws), 0, "the copy commits");
	wsess_free(ws);
	CHECK_EQ(written() - w0, 0, "a whole copy writes no fragment image (%" PRIu64 " written)", written() - w0);
	m_dup(&dm, &src);
	same(dst, &dm, "the copy");
	CHECK_EQ(shared_ids(dst, src_ino), nf, "the copy lists every one of the source's %u fragment ids", nf);
	check_refs(1, "after a whole copy");
	/* the fragment counts are 2 now */
	{
		struct idx_txn *t;
		uint32_t cnt = 0;
		idx_begin(store_idx(st), 1, &t);
		idx_ref_get(t, pver_frag(pv, nf / 2)->id, &cnt);
		idx_abort(t);
		CHECK_EQ(cnt, 2, "a shared fragment's reference count is 2");
	}
	pver_put(pv);
	free(dm.b);
}

/* A row-aligned range of the source into the middle of another object:
 * only the edges are re-cut. */
static void test_partial_middle(void)
{
	uint64_t dst = mkobj("middle.csv"), w0;
	struct model dm = { 0 };
	struct pver *pv = pin(src_ino);
	const struct frag_desc *a = pver_frag(pv, 10), *b = pver_frag(pv, 40);
	size_t soff = (size_t)a->off + 7, slen = (size_t)(b->off - a->off) + 100, doff;
	struct wsess *ws;
	uint32_t sh;

	gen_rows(&dm, 900000, 100 * 1024);
	CHECK_EQ(put_all(dst, &dm), 0, "a 100 KiB destination is committed");
	doff = dm.len / 2;
	w0 = written();
	ws = begin(dst, 0);
	CHECK_EQ(wsess_copy(ws, pv, NULL, soff, slen, doff), (ssize_t)slen,
		 "a copy of %zu bytes from inside a fragment into the middle", slen);
	m_copy_range(&dm, &src, soff, slen, doff);
	CHECK_EQ(wsess_commit(ws), 0, "it commits");
	wsess_free(ws);
	same(dst, &dm, "partial copy into the middle");
	sh = shared_ids(dst, src_ino);
	CHECK(sh >= 25, "at least 25 of the 30 whole source fragments are shared (%u)", sh);
	CHECK(written() - w0 <= 6, "only the edges were re-cut: %" PRIu64 " images written for 30 fragments copied",
	      written() - w0);
	check_refs(0, "after a partial copy");
	same(src_ino, &src, "the source after the copies");
	pver_put(pv);
	free(dm.b);
}

/* Independence: writing, truncating and deleting either side. */
static void test_independent(void)
{
	uint64_t a = mkobj("ia.csv"), b = mkobj("ib.csv");
	struct model ma = { 0 }, mb = { 0 };
	struct wsess *ws;
	struct pver *pv;
	struct idx_inode in;
	long before;

	gen_rows(&ma, 5000, 200 * 1024);
	CHECK_EQ(put_all(a, &ma), 0, "object a is committed");
	pv = pin(a);
	ws = begin(b, 1);
	wsess_copy(ws, pv, NULL, 0, ma.len, 0);
	CHECK_EQ(wsess_commit(ws), 0, "b is a copy of a");
	wsess_free(ws);
	pver_put(pv);
	m_dup(&mb, &ma);
	/* overwrite the middle of a, append to b */
	ws = begin(a, 0);
	wsess_write(ws, "XXXXXXXX\n", 9, ma.len / 3);
	m_write(&ma, "XXXXXXXX\n", 9, ma.len / 3);
	CHECK_EQ(wsess_commit(ws), 0, "a is changed in the middle");
	wsess_free(ws);
	ws = begin(b, 0);
	wsess_write(ws, "tail,row\n", 9, mb.len);
	m_write(&mb, "tail,row\n", 9, mb.len);
	wsess_truncate(ws, 4000);
	m_truncate(&mb, 4000);
	wsess_write(ws, "more\n", 5, 6000);
	m_write(&mb, "more\n", 5, 6000);
	CHECK_EQ(wsess_commit(ws), 0, "b is appended to, truncated and extended");
	wsess_free(ws);
	same(a, &ma, "a after both changed");
	same(b, &mb, "b after both changed");
	check_refs(1, "after changing both sides");
	/* copy a again, then delete a: b keeps the bytes */
	pv = pin(a);
	ws = begin(b, 1);
	wsess_copy(ws, pv, NULL, 0, ma.len, 0);
	CHECK_EQ(wsess_commit(ws), 0, "b is a copy of a again");
	wsess_free(ws);
	pver_put(pv);
	m_dup(&mb, &ma);
	tst_sync(st);      /* b's previous images go */
	before = tut_count_files(fragdir, ".frag");
	CHECK_EQ(store_unlink(st, ROOT, "ia.csv"), 0, "a is unlinked");
	CHECK_EQ(store_forget(st, a), 0, "and forgotten (its data freed)");
	CHECK_EQ(store_getattr(st, a, &in), -ENOENT, "a is gone");
	same(b, &mb, "b after a was deleted");
	check_refs(1, "after deleting the source");
	CHECK_EQ(tut_count_files(fragdir, ".frag"), before, "no image was deleted: b lists all of a's");
	/* overwrite b whole: the shared images go after the next flush */
	mb.len = 0;
	gen_rows(&mb, 777, 20 * 1024);
	CHECK_EQ(put_all(b, &mb), 0, "b is rewritten whole");
	same(b, &mb, "b rewritten");
	check_refs(1, "after the last lister of the shared images went");
	CHECK(tut_count_files(fragdir, ".frag") < before, "images only a and b listed are deleted (%ld -> %ld)",
	      before, tut_count_files(fragdir, ".frag"));
	free(ma.b);
	free(mb.b);
}

/* A copy within one session, overlapping both ways (memmove), and from
 * another session (bytes). */
static void test_within(void)
{
	uint64_t a = mkobj("within.csv"), b = mkobj("other.csv");
	struct model ma = { 0 }, mb = { 0 };
	struct wsess *ws, *wb;

	gen_rows(&ma, 42, 60 * 1024);
	CHECK_EQ(put_all(a, &ma), 0, "an object to copy within");
	ws = begin(a, 0);
	wsess_write(ws, "staged,bytes,here\n", 18, 1000);
	m_write(&ma, "staged,bytes,here\n", 18, 1000);
	CHECK_EQ(wsess_copy_within(ws, 0, 20000, 5000), 20000, "copy forward over an overlap");
	m_copy_range(&ma, &ma, 0, 20000, 5000);
	CHECK_EQ(wsess_copy_within(ws, 30000, 15000, 25000), 15000, "copy backward over an overlap");
	m_copy_range(&ma, &ma, 30000, 15000, 25000);
	CHECK_EQ(wsess_copy_within(ws, ma.len - 100, 5000, ma.len + 300), 100,
		 "copy of the last 100 bytes past the end (short; a hole before it)");
	m_copy_range(&ma, &ma, ma.len - 100, 5000, ma.len + 300);
	CHECK_EQ(wsess_size(ws), ma.len, "the session's size is the model's");
	CHECK_EQ(wsess_copy_within(ws, ma.len, 10, 0), 0, "a copy from the end copies nothing");
	{
		char *buf = malloc(ma.len);
		ssize_t r = wsess_read(ws, buf, ma.len, 0);
		CHECK(r == (ssize_t)ma.len && memcmp(buf, ma.b, ma.len) == 0,
		      "the session reads the memmove model before the commit");
		free(buf);
	}
	/* a second session copies from this one's staged content */
	gen_rows(&mb, 3, 10 * 1024);
	CHECK_EQ(put_all(b, &mb), 0, "a second object");
	wb = begin(b, 0);
	CHECK_EQ(wsess_copy_sess(wb, ws, 900, 3000, 2000), 3000, "a copy from another session's staged content");
	m_copy_range(&mb, &ma, 900, 3000, 2000);
	CHECK_EQ(wsess_commit(wb), 0, "it commits");
	wsess_free(wb);
	same(b, &mb, "the copy from a session");
	/* the log handed to a job must not drop bytes a duplicate names */
	for (int i = 0; i < 8; i++) {
		char row[32];
		int n = snprintf(row, sizeof(row), "appended,%d,row\n", i);
		wsess_write(ws, row, (size_t)n, ma.len);
		m_write(&ma, row, (size_t)n, ma.len);
		wsess_copy_within(ws, ma.len - (size_t)n, (size_t)n, 100 + (size_t)i * 40);
		m_copy_range(&ma, &ma, ma.len - (size_t)n, (size_t)n, 100 + (size_t)i * 40);
	}
	{
		struct model big = { 0 };
		gen_rows(&big, 5, 6 * FRAG);   /* enough to stream */
		wsess_write(ws, big.b, big.len, ma.len);
		m_write(&ma, big.b, big.len, ma.len);
		free(big.b);
	}
	CHECK_EQ(wsess_commit(ws), 0, "the session with copies within commits");
	wsess_free(ws);
	same(a, &ma, "copies within one session");
	check_refs(1, "after copies within a session");
	free(ma.b);
	free(mb.b);
}

/* Other formats and storage: bytes are copied, the result still equal;
 * and a copy from a view. */
static void test_formats_and_views(void)
{
	uint64_t fx = mkobj("rec.bin"), mem = mkobj("mem.csv"), d1 = mkobj("fromfixed.txt"),
		 d2 = mkobj("frommem.csv"), d3 = mkobj("view.csv"), d4 = mkobj("fixcopy.bin"), w0;
	struct model mf = { 0 }, mm = { 0 }, m1 = { 0 }, m2 = { 0 }, m3 = { 0 }, m4 = { 0 };
	struct view_spec sp = { .kind = VIEW_ROWS, .has_start = 1, .has_stop = 1, .start = 100, .stop = 3000 };
	struct view_map vm;
	struct pver *pv;
	struct wsess *ws;
	char rec[16];

	CHECK_EQ(store_setxattr(st, fx, "user.payload.format", "fixed:16", 8, 0), 0, "rec.bin is fixed:16");
	CHECK_EQ(store_setxattr(st, mem, "user.payload.storage", "memory", 6, 0), 0, "mem.csv is in memory");
	for (int i = 0; i < 4000; i++) {
		snprintf(rec, sizeof(rec), "%015d", i);
		rec[15] = (char)('A' + i % 26);
		m_write(&mf, rec, 16, mf.len);
	}
	CHECK_EQ(put_all(fx, &mf), 0, "64,000 bytes of 16-byte records");
	gen_rows(&mm, 11, 50 * 1024);
	CHECK_EQ(put_all(mem, &mm), 0, "50 KiB in a memory object");
	/* fixed -> lines: bytes */
	pv = pin(fx);
	ws = begin(d1, 1);
	wsess_copy(ws, pv, NULL, 0, mf.len, 0);
	CHECK_EQ(wsess_commit(ws), 0, "a fixed:16 object copied into a lines object");
	wsess_free(ws);
	m_dup(&m1, &mf);
	same(d1, &m1, "fixed -> lines copy");
	CHECK_EQ(shared_ids(d1, fx), 0, "no fragment is shared across formats");
	/* fixed -> fixed at a misaligned offset: re-cut, still records */
	CHECK_EQ(store_setxattr(st, d4, "user.payload.format", "fixed:16", 8, 0), 0, "fixcopy.bin is fixed:16");
	ws = begin(d4, 1);
	wsess_write(ws, "0123456789abcdef", 16, 0);
	m_write(&m4, "0123456789abcdef", 16, 0);
	wsess_copy(ws, pv, NULL, 16 * 100, 16 * 2000, 16);
	m_copy_range(&m4, &mf, 16 * 100, 16 * 2000, 16);
	CHECK_EQ(wsess_commit(ws), 0, "a record-aligned copy into a fixed:16 object");
	wsess_free(ws);
	same(d4, &m4, "fixed -> fixed copy");
	CHECK(shared_ids(d4, fx) > 0, "record-aligned fixed fragments are shared (%u)", shared_ids(d4, fx));
	ws = begin(d4, 0);
	wsess_copy(ws, pv, NULL, 8, 16 * 10, 16 * 5000);   /* half a record in: the size stays a multiple */
	m_copy_range(&m4, &mf, 8, 16 * 10, 16 * 5000);
	CHECK_EQ(wsess_commit(ws), 0, "a copy half a record in, past the end (a hole first)");
	wsess_free(ws);
	same(d4, &m4, "misaligned fixed copy");
	ws = begin(d4, 0);
	wsess_copy(ws, pv, NULL, 0, 7, m4.len);
	CHECK_EQ(wsess_commit(ws), -EINVAL, "a copy leaving a size that is not a multiple of 16 fails (EINVAL)");
	wsess_free(ws);
	same(d4, &m4, "the fixed object after the refused commit");
	pver_put(pv);
	/* memory -> disk: bytes */
	pv = pin(mem);
	w0 = written();
	ws = begin(d2, 1);
	wsess_copy(ws, pv, NULL, 0, mm.len, 0);
	CHECK_EQ(wsess_commit(ws), 0, "a memory object copied into a disk object");
	wsess_free(ws);
	pver_put(pv);
	m_dup(&m2, &mm);
	same(d2, &m2, "memory -> disk copy");
	CHECK(written() - w0 >= 10, "its bytes were written as new images (%" PRIu64 ")", written() - w0);
	CHECK_EQ(shared_ids(d2, mem), 0, "no fragment is shared across storage kinds");
	/* a view of the source: header + rows 100..2999 */
	pv = pin(src_ino);
	CHECK_EQ(view_resolve(pv, &sp, &vm), 0, "a rows view of the source resolves");
	ws = begin(d3, 1);
	CHECK_EQ(wsess_copy(ws, pv, &vm, 0, UINT64_MAX / 4, 0), (ssize_t)view_size(&vm), "the view copies whole");
	{
		char *vb = malloc(view_size(&vm));
		view_read(pv, &vm, vb, view_size(&vm), 0);
		m_write(&m3, vb, view_size(&vm), 0);
		wsess_copy(ws, pv, &vm, 10, 500, m3.len);   /* a piece spanning header and rows */
		m_write(&m3, vb + 10, 500, m3.len);
		free(vb);
	}
	CHECK_EQ(wsess_commit(ws), 0, "the view copy commits");
	wsess_free(ws);
	same(d3, &m3, "copy of a view");
	pver_put(pv);
	check_refs(0, "after format, storage and view copies");
	free(mf.b); free(mm.b); free(m1.b); free(m2.b); free(m3.b); free(m4.b);
}

#ifdef PFS_FAULT_INJECTION
/* A failing commit of a copy keeps the old version and the counts. */
static void test_fault(void)
{
	uint64_t d = mkobj("fault.csv");
	struct model dm = { 0 };
	struct pver *pv = pin(src_ino);
	struct wsess *ws;

	gen_rows(&dm, 1, 20 * 1024);
	put_all(d, &dm);
	ws = begin(d, 0);
	wsess_copy(ws, pv, NULL, 1234, 80000, 3000);
	fault_arm("lmdb_commit", 1, ENOSPC);
	CHECK_EQ(wsess_commit(ws), -ENOSPC, "the copy's commit fails with the injected ENOSPC");
	fault_reset();
	same(d, &dm, "the old version stays");
	check_refs(1, "after the failed commit (its new edge images deleted)");
	CHECK_EQ(wsess_commit(ws), 0, "the same session commits afterwards");
	m_copy_range(&dm, &src, 1234, 80000, 3000);
	wsess_free(ws);
	same(d, &dm, "the retried copy");
	pver_put(pv);
	free(dm.b);
}
#endif

/* ---- randomized ---- */

#define NOBJ 5

static void test_random(int ops)
{
	uint64_t ino[NOBJ];
	struct model cm[NOBJ] = { 0 };
	char name[32];
	int bad = 0;

	for (int i = 0; i < NOBJ; i++) {
		snprintf(name, sizeof(name), "r%d.csv", i);
		ino[i] = mkobj(name);
		if (i == NOBJ - 1)
			store_setxattr(st, ino[i], "user.payload.storage", "memory", 6, 0);
		gen_rows(&cm[i], (uint64_t)i * 100000, (size_t)rnd_below(120 * 1024));
		put_all(ino[i], &cm[i]);
	}
	for (int op = 0; op < ops && !bad; op++) {
		int d = (int)rnd_below(NOBJ), steps = 1 + (int)rnd_below(6);
		int trunc = rnd_below(4) == 0;
		struct wsess *ws = begin(ino[d], trunc);
		struct model sm = { 0 };
		char why[300] = "";
		int rc = 0;
		if (!trunc)
			m_dup(&sm, &cm[d]);
		for (int k = 0; k < steps && !rc; k++) {
			uint64_t r = rnd_below(10);
			size_t size = sm.len;
			if (r < 4) {          /* copy from another object's current version */
				int s = (int)rnd_below(NOBJ);
				struct pver *pv = pin(ino[s]);
				struct model src_m = { 0 };
				size_t so = (size_t)rnd_below(cm[s].len + 100), len = (size_t)rnd_below(cm[s].len + 1);
				size_t off = (size_t)rnd_below(size + 200);
				ssize_t n;
				m_dup(&src_m, &cm[s]);
				n = wsess_copy(ws, pv, NULL, so, len, off);
				if (n != (ssize_t)m_copy_range(&sm, &src_m, so, len, off)) {
					snprintf(why, sizeof(why), "op %d: wsess_copy gave %zd", op, n);
					rc = -1;
				}
				pver_put(pv);
				free(src_m.b);
			} else if (r < 6) {   /* within the session */
				size_t so = (size_t)rnd_below(size + 50), len = (size_t)rnd_below(size + 1);
				size_t off = (size_t)rnd_below(size + 200);
				ssize_t n = wsess_copy_within(ws, so, len, off);
				if (n != (ssize_t)m_copy_range(&sm, &sm, so, len, off)) {
					snprintf(why, sizeof(why), "op %d: wsess_copy_within gave %zd", op, n);
					rc = -1;
				}
			} else if (r < 8) {   /* rows written somewhere */
				struct model w = { 0 };
				size_t off = (size_t)rnd_below(size + 1);
				gen_rows(&w, rnd(), (size_t)rnd_below(3 * FRAG) + 1);
				rc = wsess_write(ws, w.b, w.len, off);
				m_write(&sm, w.b, w.len, off);
				free(w.b);
			} else if (r < 9) {
				size_t to = (size_t)rnd_below(size + 2000);
				rc = wsess_truncate(ws, to);
				m_truncate(&sm, to);
			} else {              /* a commit in the middle of the session */
				rc = wsess_commit(ws);
				if (!rc)
					m_dup(&cm[d], &sm);
			}
		}
		if (!rc)
			rc = wsess_commit(ws);
		wsess_free(ws);
		if (rc) {
			if (!why[0])
				snprintf(why, sizeof(why), "op %d: %d", op, rc);
			CHECK(0, "random copies: %s", why);
			bad = 1;
			free(sm.b);
			break;
		}
		m_dup(&cm[d], &sm);
		free(sm.b);
		for (int i = 0; i < NOBJ && !bad; i++)
			if (!same_q(ino[i], &cm[i], why, sizeof(why))) {
				CHECK(0, "random copies, op %d: object %d: %s", op, i, why);
				bad = 1;
			}
		if (!bad && !refs_q(0, why, sizeof(why))) {
			CHECK(0, "random copies, op %d: %s", op, why);
			bad = 1;
		}
	}
	if (!bad)
		CHECK(1, "%d random sessions of writes, copies and truncates: every object equals its model, "
		      "counts equal records", ops);
	check_refs(1, "after the random copies");
	for (int i = 0; i < NOBJ; i++)
		free(cm[i].b);
}

int main(void)
{
	struct store_opts o = { .fragment_size = FRAG, .create = 1 };
	char dir[4200];
	int rc;

	seed_init();
	log_init("test_copy", LOG_TO_STDERR, LOG_ERR);
	if (tut_mkdtemp(tmp, sizeof(tmp), "test_copy")) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/store", tmp);
	snprintf(fragdir, sizeof(fragdir), "%s/fragments", dir);
	mkdir(dir, 0700);
	if ((rc = store_open(dir, &o, &st))) {
		printf("Bail out! store_open: %s\n", store_strerror(rc));
		return 1;
	}
	test_whole_copy();
	test_partial_middle();
	test_independent();
	test_within();
	test_formats_and_views();
#ifdef PFS_FAULT_INJECTION
	test_fault();
#else
	printf("ok %d - # skip fault injection not compiled in (FAULT=0)\n", ++tap_n);
#endif
	test_random(300);
	store_close(st);
	free(src.b);
	tut_rmrf(tmp);
	return tap_done();
}
