/* test_commit — the commit protocol (index/commit.c, index/stage.c) through
 * write sessions, on a temporary store with 4 KiB fragments so that objects
 * have many fragments. Every change is applied to a model (a plain byte
 * buffer) too; after each commit the object must equal the model, its
 * fragment list must be contiguous, each fragment at most 4 KiB, marked
 * FRAG_F_CONT exactly when the byte before it is not '\n' (fixed:N: when
 * it starts inside a record) and counting the rows that start in it, agree
 * with the index records and the row count, and the reference counts must
 * match the fragment records.
 *
 * Fragment writes are counted with store_get_stats().frags_written: an
 * append or a small change rewrites at most 2 fragments of a 1 MiB object
 * (commit.c invariants 1 and 2). Also: views (@rows writes with another row
 * count, reads of @rows/@part), truncate and extension with zeros, whole
 * rewrites, fixed:N size refusal, snapshot isolation of pinned versions and
 * concurrent sessions, staging spill files, injected faults (ENOSPC stays
 * ENOSPC, old version intact, no orphan images) at commit and while a
 * session streams (pre-cut fragments: stage.c (5)-(9)), a session freed
 * without commit (no image left), random streaming patterns (appends with
 * overwrites over pre-cut ranges, reads, truncates, holes, commits), the
 * cost of an append against F = 10 / 1,000 / 100,000 fragments (images and
 * records written are equal; CPU time printed), pin chunks shared between
 * versions, and a randomized sequence (seed logged as "# seed N"; TEST_SEED
 * repeats it). Rows longer than a fragment (FRAG_F_CONT): views over and
 * around them, appends into them, patches and new or removed row ends
 * inside them, truncates into them, a 4 MiB row streamed (never held
 * whole), fixed:N records longer than a fragment, copies half a record
 * off, and the random tests again with rows of ~5,000 bytes. */
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

static char tmp[4096];

struct tstore {
	struct store *st;
	char dir[4200], frags[4300], staging[4300];
};

static struct tstore S;        /* the main store: 4 KiB fragments */

static int open_tstore(struct tstore *t, const char *name, size_t spill, int no_stream, int sync)
{
	struct store_opts o = { .fragment_size = FRAG, .spill_size = spill, .create = 1,
				.no_stream = no_stream, .sync = sync };
	int rc;

	snprintf(t->dir, sizeof(t->dir), "%s/%s", tmp, name);
	snprintf(t->frags, sizeof(t->frags), "%s/fragments", t->dir);
	snprintf(t->staging, sizeof(t->staging), "%s/staging", t->dir);
	mkdir(t->dir, 0700);
	rc = store_open(t->dir, &o, &t->st);
	if (rc)
		printf("Bail out! store_open %s: %s\n", t->dir, store_strerror(rc));
	return rc;
}

/* ---- the model ---- */

struct model {
	char *b;
	size_t len, cap;
};

static void m_reserve(struct model *m, size_t n)
{
	if (n <= m->cap)
		return;
	m->cap = n * 2 + 64;
	m->b = realloc(m->b, m->cap);
	if (!m->b)
		abort();
}

static void m_write(struct model *m, const void *p, size_t len, size_t off)
{
	m_reserve(m, off + len + 1);   /* never NULL after a write, even of 0 bytes */
	if (!len)
		return;
	if (off > m->len)
		memset(m->b + m->len, 0, off - m->len);
	memcpy(m->b + off, p, len);
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

/* fallocate(2) PUNCH_HOLE / ZERO_RANGE of [OFF, OFF+LEN): zeros; with
 * KEEP only up to the end. */
static void m_zero(struct model *m, size_t off, size_t len, int keep)
{
	size_t end = off + len;

	if (keep && end > m->len)
		end = m->len;
	if (off >= end)
		return;
	if (end > m->len)
		m_truncate(m, end);
	memset(m->b + off, 0, end - off);
}

static void m_set(struct model *m, const void *p, size_t len)
{
	m->len = 0;
	m_write(m, p, len, 0);
}

static void m_copy(struct model *dst, const struct model *src)
{
	dst->len = 0;
	m_write(dst, src->b, src->len, 0);
}

static void m_free(struct model *m)
{
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* Rows as rows_in() counts them (lines), or len / N (fixed). */
static uint64_t m_rows(const struct model *m, uint32_t fixed)
{
	uint64_t n = 0;

	if (fixed)
		return m->len / fixed;
	for (size_t i = 0; i < m->len; i++)
		n += m->b[i] == '\n';
	return n + (m->len && m->b[m->len - 1] != '\n');
}

/* Rows that start in bytes [off, off+len) of M: the record starts
 * (FIXED), or the row starts (lines: offset 0 and each byte after a '\n'
 * that is not M's last byte). */
static uint64_t m_frag_rows(const struct model *m, uint32_t fixed, size_t off, size_t len)
{
	uint64_t n = 0;

	for (size_t p = off; p < off + len; p++)
		if (fixed ? p % fixed == 0 : p == 0 || m->b[p - 1] == '\n')
			n++;
	return n;
}

/* Byte offset where row R starts (lines, or records of FIXED bytes); the
 * size when R >= rows. */
static size_t m_rowstart_f(const struct model *m, uint32_t fixed, uint64_t r)
{
	size_t i = 0;

	if (fixed)
		return r >= m->len / fixed ? m->len : (size_t)r * fixed;
	while (r && i < m->len) {
		const char *nl = memchr(m->b + i, '\n', m->len - i);
		if (!nl)
			return m->len;
		i = (size_t)(nl - m->b) + 1;
		r--;
	}
	return r ? m->len : i;
}


/* ---- store helpers ---- */

static uint64_t mkobj(struct tstore *t, const char *name)
{
	struct idx_inode in;
	int rc = store_mknod(t->st, ROOT, name, S_IFREG | 0644, 0, 0, 0, &in);

	if (rc) {
		printf("Bail out! mknod %s: %d\n", name, rc);
		exit(1);
	}
	return in.ino;
}

static struct wsess *begin(struct tstore *t, uint64_t ino, const struct view_spec *view, int trunc)
{
	struct pver *pv;
	struct wsess *ws = NULL;
	int rc = store_pver_get(t->st, ino, &pv);

	if (!rc) {
		rc = store_wsess_begin(t->st, pv, view, trunc, &ws);
		pver_put(pv);
	}
	if (rc) {
		printf("Bail out! wsess_begin on %" PRIu64 ": %d\n", ino, rc);
		exit(1);
	}
	return ws;
}

static uint64_t frags_written(struct tstore *t)
{
	struct store_stats s;

	store_get_stats(t->st, &s);
	return s.frags_written;
}

static int pv_equals_model(struct pver *pv, const struct model *m, char *why, size_t cap)
{
	char *buf = malloc(m->len + 64);
	ssize_t n = pver_read(pv, buf, m->len + 64, 0);
	int ok = n == (ssize_t)m->len && (m->len == 0 || memcmp(buf, m->b, m->len) == 0);

	if (!ok) {
		size_t i = 0;
		if (n > 0)
			while (i < (size_t)n && i < m->len && buf[i] == m->b[i])
				i++;
		snprintf(why, cap, "pver_read gave %zd bytes, model %zu; first difference at %zu", n, m->len, i);
	}
	free(buf);
	return ok;
}

/* Check object INO against model M: bytes, size, rows, fragment list
 * shape, the index records, row offsets. @return 1, or 0 with WHY. */
static int verify_q(struct tstore *t, uint64_t ino, const struct model *m, char *why, size_t cap)
{
	struct pver *pv;
	const struct idx_inode *in;
	struct frag_desc *recs = NULL;
	uint32_t nrecs = 0, nf, fixed;
	struct idx_txn *tx;
	struct idx_inode rec;
	uint64_t off = 0, row = 0, rows;
	int ok = 0, rc = store_pver_get(t->st, ino, &pv);

	if (rc) {
		snprintf(why, cap, "store_pver_get: %d", rc);
		return 0;
	}
	in = pver_inode(pv);
	fixed = in->fmt_kind == PFMT_FIXED ? in->fmt_recsize : 0;
	rows = m_rows(m, fixed);
	nf = pver_nfrags(pv);
	if (in->size != m->len) {
		snprintf(why, cap, "size %" PRIu64 ", model %zu", in->size, m->len);
		goto out;
	}
	if (!pv_equals_model(pv, m, why, cap))
		goto out;
	if (in->rows != rows) {
		snprintf(why, cap, "rows %" PRIu64 ", model %" PRIu64, in->rows, rows);
		goto out;
	}
	if (in->nfrags != nf) {
		snprintf(why, cap, "inode nfrags %u, version lists %u", in->nfrags, nf);
		goto out;
	}
	if (!(in->flags & INODE_F_MEMORY) && (m->len <= STORE_INLINE_MAX) != (nf == 0)) {
		snprintf(why, cap, "%zu bytes in %u fragments (inline up to %d)", m->len, nf, STORE_INLINE_MAX);
		goto out;
	}
	for (uint32_t i = 0; i < nf; i++) {
		const struct frag_desc *d = pver_frag(pv, i);
		int cont = !!(d->flags & FRAG_F_CONT), want_cont;
		uint64_t want_rows;
		if (d->off != off || d->first_row != row || d->len == 0 || d->off + d->len > m->len) {
			snprintf(why, cap, "fragment %u: off %" PRIu64 " first_row %" PRIu64 " len %u; want off %"
				 PRIu64 " first_row %" PRIu64, i, d->off, d->first_row, d->len, off, row);
			goto out;
		}
		want_cont = fixed ? d->off % fixed != 0 : d->off > 0 && m->b[d->off - 1] != '\n';
		want_rows = m_frag_rows(m, fixed, d->off, d->len);
		if (cont != want_cont) {
			snprintf(why, cap, "fragment %u of %u (off %" PRIu64 ", len %u): FRAG_F_CONT %d, but it %s a row",
				 i, nf, d->off, d->len, cont, want_cont ? "continues" : "starts");
			goto out;
		}
		if (d->rows != want_rows) {
			snprintf(why, cap, "fragment %u: %u rows, %" PRIu64 " rows start in its bytes", i, d->rows,
				 want_rows);
			goto out;
		}
		if (d->len > FRAG) {
			snprintf(why, cap, "fragment %u: %u bytes > %d (a fragment is cut inside a longer row)",
				 i, d->len, FRAG);
			goto out;
		}
		if (fixed && fixed <= FRAG && (d->off % fixed || d->len % fixed)) {
			snprintf(why, cap, "fragment %u: off %" PRIu64 " len %u not whole records of %u", i, d->off,
				 d->len, fixed);
			goto out;
		}
		off += d->len;
		row += d->rows;
	}
	if (nf && (off != m->len || row != rows)) {
		snprintf(why, cap, "fragments cover %" PRIu64 " bytes / %" PRIu64 " rows", off, row);
		goto out;
	}
	/* the index agrees with the version */
	rc = idx_begin(store_idx(t->st), 1, &tx);
	if (!rc) {
		rc = idx_inode_get(tx, ino, &rec);
		if (!rc)
			rc = idx_frags_load(tx, ino, &recs, &nrecs);
		for (uint32_t i = 0; !rc && i < nrecs && i < nf; i++) {
			uint32_t cnt = 0;
			const struct frag_desc *d = pver_frag(pv, i);
			if (memcmp(&recs[i], d, sizeof(*d)) != 0) {
				snprintf(why, cap, "index record %u differs from the version's fragment", i);
				rc = -1;
			} else if (idx_ref_get(tx, d->id, &cnt) || cnt == 0) {
				snprintf(why, cap, "fragment %u (id %" PRIu64 ") has reference count 0", i, d->id);
				rc = -1;
			}
		}
		idx_abort(tx);
	}
	if (rc) {
		if (rc != -1)
			snprintf(why, cap, "index read: %d", rc);
		goto out;
	}
	if (nrecs != nf || rec.size != in->size || rec.rows != in->rows || rec.version != in->version) {
		snprintf(why, cap, "index: %u records, size %" PRIu64 ", rows %" PRIu64 "; version: %u, %" PRIu64
			 ", %" PRIu64, nrecs, rec.size, rec.rows, nf, in->size, in->rows);
		goto out;
	}
	/* row offsets: every row of small objects, ~200 of large ones */
	if (!fixed) {
		uint64_t step = rows > 400 ? rows / 200 : 1, cur_row = 0;
		size_t cur_off = 0;
		for (uint64_t r = 0; r <= rows + 1; r += (r + step > rows && r < rows) ? rows - r : step) {
			uint64_t got = 0;
			size_t want;
			while (cur_row < r && cur_off < m->len) {   /* walk on from the last row checked */
				const char *nl = memchr(m->b + cur_off, '\n', m->len - cur_off);
				cur_off = nl ? (size_t)(nl - m->b) + 1 : m->len;
				cur_row++;
			}
			want = cur_row < r ? m->len : cur_off;
			rc = pver_row_offset(pv, r, &got);
			if (rc || got != want) {
				snprintf(why, cap, "pver_row_offset(%" PRIu64 ") = %" PRIu64 " (rc %d), model %zu", r, got, rc,
					 want);
				goto out;
			}
		}
	}
	ok = 1;
out:
	free(recs);
	pver_put(pv);
	return ok;
}

static int verify(struct tstore *t, uint64_t ino, const struct model *m, const char *what)
{
	char why[300] = "";
	int ok = verify_q(t, ino, m, why, sizeof(why));

	CHECK(ok, "%s: object equals the model (%zu bytes), fragments contiguous and row-aligned%s%s", what, m->len,
	      ok ? "" : ": ", ok ? "" : why);
	return ok;
}

/* ---- whole-store consistency: refs equal the fragment records ---- */

/* Every refs record equals the number of fragment records naming its id,
 * and (when nothing older is pinned) every referenced image is a file and
 * no other file lies in fragments/ (after an index flush: released images
 * go after it, index/durable.c invariant 1). */
static int refs_ok(struct tstore *t, int files_too, char *why, size_t cap)
{
	return trefs_audit(t->st, t->frags, NULL, files_too, why, cap, NULL);
}

static void check_refs(struct tstore *t, int files_too, const char *what)
{
	char why[300] = "";
	int ok = refs_ok(t, files_too, why, sizeof(why));

	CHECK(ok, "%s: reference counts equal the fragment records%s%s%s", what,
	      files_too ? ", one file per referenced image" : "", ok ? "" : ": ", ok ? "" : why);
}

static int frag_file_exists(struct tstore *t, uint64_t id)
{
	char path[4400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%02x/%016" PRIx64 ".frag", t->frags, (unsigned)(id & 0xff), id);
	return stat(path, &sb) == 0;
}

/* Content generators: CSV-ish rows. */
static size_t gen_rows(struct model *m, uint64_t first, size_t target)
{
	char row[64];
	uint64_t i = first;

	while (m->len < target) {
		int n = snprintf(row, sizeof(row), "%07" PRIu64 ",name%" PRIu64 ",%" PRIu64 "\n", i, i * 7 % 1000,
				 (i * 2654435761u) % 100000);
		m_write(m, row, (size_t)n, m->len);
		i++;
	}
	return (size_t)(i - first);
}

/* Write all of M into a fresh session content (truncate) and commit. */
static int write_all(struct tstore *t, uint64_t ino, const struct model *m)
{
	struct wsess *ws = begin(t, ino, NULL, 1);
	int rc = 0;

	for (size_t off = 0; !rc && off < m->len; off += 65536) {
		size_t n = m->len - off < 65536 ? m->len - off : 65536;
		rc = wsess_write(ws, m->b + off, n, off);
	}
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}

/* ---- (a) appends, (b) small changes, (d) truncate, (e) rewrite ---- */

static uint64_t big_ino;
static struct model big;

static void test_append(void)
{
	uint64_t w0, w1;
	uint32_t nf0, nf;
	struct pver *pv;
	int ok_all = 1, rc;
	uint64_t worst = 0;

	big_ino = mkobj(&S, "big.csv");
	m_set(&big, "id,name,value\n", 14);
	gen_rows(&big, 0, 1 << 20);
	w0 = frags_written(&S);
	rc = write_all(&S, big_ino, &big);
	w1 = frags_written(&S);
	CHECK_EQ(rc, 0, "write and commit a %zu-byte CSV object", big.len);
	verify(&S, big_ino, &big, "1 MiB object");
	store_pver_get(S.st, big_ino, &pv);
	nf0 = pver_nfrags(pv);
	pver_put(pv);
	CHECK(nf0 >= (1 << 20) / FRAG && w1 - w0 == nf0, "%u fragments of <= %d bytes, each written once (%" PRIu64 ")",
	      nf0, FRAG, w1 - w0);
	check_refs(&S, 1, "after the first commit");

	/* (a) one small row appended: at most 2 fragments written */
	{
		struct wsess *ws = begin(&S, big_ino, NULL, 0);
		const char *row = "9999999,appended,1\n";
		rc = wsess_write(ws, row, strlen(row), wsess_size(ws));
		m_write(&big, row, strlen(row), big.len);
		w0 = frags_written(&S);
		if (!rc)
			rc = wsess_commit(ws);
		w1 = frags_written(&S);
		wsess_free(ws);
		CHECK_EQ(rc, 0, "append one row and commit");
		CHECK(w1 - w0 <= 2, "appending one row to a %u-fragment object wrote %" PRIu64 " fragments (<= 2)", nf0,
		      w1 - w0);
		verify(&S, big_ino, &big, "after one append");
	}
	/* many small appends, each its own commit: cost stays flat, no trail of tiny fragments */
	for (int i = 0; i < 40; i++) {
		char row[64];
		struct wsess *ws = begin(&S, big_ino, NULL, 0);
		int n = snprintf(row, sizeof(row), "%07d,more,%d\n", 8000000 + i, i);
		rc = wsess_write(ws, row, (size_t)n, wsess_size(ws));
		m_write(&big, row, (size_t)n, big.len);
		w0 = frags_written(&S);
		if (!rc)
			rc = wsess_commit(ws);
		w1 = frags_written(&S);
		wsess_free(ws);
		if (rc || w1 - w0 > 2)
			ok_all = 0;
		if (w1 - w0 > worst)
			worst = w1 - w0;
	}
	CHECK(ok_all, "40 appends, one commit each: each wrote <= 2 fragments (worst %" PRIu64 ")", worst);
	verify(&S, big_ino, &big, "after 40 appends");
	store_pver_get(S.st, big_ino, &pv);
	nf = pver_nfrags(pv);
	pver_put(pv);
	CHECK(nf <= nf0 + 2, "small appends are absorbed into the tail: %u fragments, was %u", nf, nf0);
	check_refs(&S, 1, "after the appends");

	/* an append through a session opened with O_APPEND-like offsets, 3 rows in 3 writes, one commit */
	{
		struct wsess *ws = begin(&S, big_ino, NULL, 0);
		for (int i = 0; i < 3; i++) {
			char row[32];
			int n = snprintf(row, sizeof(row), "tail,%d\n", i);
			wsess_write(ws, row, (size_t)n, wsess_size(ws));
			m_write(&big, row, (size_t)n, big.len);
		}
		w0 = frags_written(&S);
		rc = wsess_commit(ws);
		w1 = frags_written(&S);
		wsess_free(ws);
		CHECK(rc == 0 && w1 - w0 <= 2, "3 appended rows in one commit: %" PRIu64 " fragments written", w1 - w0);
		verify(&S, big_ino, &big, "after 3 appends in one commit");
	}
}

static void test_small_changes(void)
{
	struct pver *pv;
	uint32_t nf0, nf1;
	uint64_t w0, w1, off;
	struct wsess *ws;
	int rc;

	store_pver_get(S.st, big_ino, &pv);
	nf0 = pver_nfrags(pv);
	/* (b) 5 bytes in the middle of a row in the middle of the object */
	{
		const struct frag_desc *d = pver_frag(pv, nf0 / 2);
		off = d->off + d->len / 2;
		while (big.b[off] == '\n' || big.b[off + 4] == '\n' || memchr(big.b + off, '\n', 5))
			off++;
	}
	pver_put(pv);
	ws = begin(&S, big_ino, NULL, 0);
	rc = wsess_write(ws, "XXXXX", 5, off);
	m_write(&big, "XXXXX", 5, off);
	w0 = frags_written(&S);
	if (!rc)
		rc = wsess_commit(ws);
	w1 = frags_written(&S);
	wsess_free(ws);
	CHECK(rc == 0 && w1 - w0 <= 2, "5 bytes changed at offset %" PRIu64 " of %zu: %" PRIu64 " fragments written (<= 2)",
	      off, big.len, w1 - w0);
	verify(&S, big_ino, &big, "after a change in the middle");
	store_pver_get(S.st, big_ino, &pv);
	nf1 = pver_nfrags(pv);
	CHECK_EQ(nf1, nf0, "the fragment count is unchanged (%u)", nf1);

	/* a change across a fragment boundary, rows kept: at most the 2 fragments around it */
	{
		const struct frag_desc *d = pver_frag(pv, nf1 / 3);
		char buf[16];
		off = d->off - 6;
		memcpy(buf, big.b + off, 12);
		for (int i = 0; i < 12; i++)
			if (buf[i] != '\n')
				buf[i] = 'Y';
		pver_put(pv);
		ws = begin(&S, big_ino, NULL, 0);
		rc = wsess_write(ws, buf, 12, off);
		m_write(&big, buf, 12, off);
		w0 = frags_written(&S);
		if (!rc)
			rc = wsess_commit(ws);
		w1 = frags_written(&S);
		wsess_free(ws);
		CHECK(rc == 0 && w1 - w0 <= 2, "12 bytes across a fragment boundary: %" PRIu64 " fragments written (<= 2)",
		      w1 - w0);
		verify(&S, big_ino, &big, "after a change across a boundary");
	}
	/* several scattered one-byte changes in one commit: at most 2 per change */
	{
		uint64_t offs[4] = { 1000, big.len / 4, big.len / 2 + 333, big.len - 5000 };
		ws = begin(&S, big_ino, NULL, 0);
		for (int i = 0; i < 4; i++) {
			while (big.b[offs[i]] == '\n')
				offs[i]++;
			wsess_write(ws, "Z", 1, offs[i]);
			m_write(&big, "Z", 1, offs[i]);
		}
		w0 = frags_written(&S);
		rc = wsess_commit(ws);
		w1 = frags_written(&S);
		wsess_free(ws);
		CHECK(rc == 0 && w1 - w0 <= 8, "4 scattered 1-byte changes: %" PRIu64 " fragments written (<= 8)", w1 - w0);
		verify(&S, big_ino, &big, "after scattered changes");
	}
	/* a change that adds a row break in the middle: the rows after it renumber, their bytes stay */
	{
		off = big.len / 3;
		while (big.b[off] == '\n' || big.b[off + 1] == '\n')
			off++;
		ws = begin(&S, big_ino, NULL, 0);
		rc = wsess_write(ws, "\n", 1, off);
		m_write(&big, "\n", 1, off);
		w0 = frags_written(&S);
		if (!rc)
			rc = wsess_commit(ws);
		w1 = frags_written(&S);
		wsess_free(ws);
		CHECK(rc == 0 && w1 - w0 <= 2, "a new row break in the middle: %" PRIu64 " fragments written (<= 2)", w1 - w0);
		verify(&S, big_ino, &big, "after a new row break (first_row of later fragments shifts)");
	}
	/* a session that changes nothing commits nothing */
	{
		uint64_t v0, v1;
		store_pver_get(S.st, big_ino, &pv);
		v0 = pver_inode(pv)->version;
		pver_put(pv);
		ws = begin(&S, big_ino, NULL, 0);
		w0 = frags_written(&S);
		rc = wsess_commit(ws);
		w1 = frags_written(&S);
		CHECK(rc == 0 && !wsess_dirty(ws) && w1 == w0, "a clean session's commit is a no-op");
		wsess_free(ws);
		store_pver_get(S.st, big_ino, &pv);
		v1 = pver_inode(pv)->version;
		pver_put(pv);
		CHECK_EQ(v1, v0, "version unchanged");
	}
	check_refs(&S, 1, "after small changes");
}

static void test_truncate(void)
{
	uint64_t w0, w1, cut;
	struct wsess *ws;
	int rc;

	/* (d) truncate into the middle of a row */
	cut = big.len / 2;
	while (big.b[cut - 1] == '\n')
		cut++;
	ws = begin(&S, big_ino, NULL, 0);
	rc = wsess_truncate(ws, cut);
	m_truncate(&big, cut);
	w0 = frags_written(&S);
	if (!rc)
		rc = wsess_commit(ws);
	w1 = frags_written(&S);
	wsess_free(ws);
	CHECK(rc == 0 && w1 - w0 <= 1, "truncate to %" PRIu64 " (mid-row): %" PRIu64 " fragments written (<= 1)", cut,
	      w1 - w0);
	verify(&S, big_ino, &big, "after truncate to the middle");
	check_refs(&S, 1, "after truncate");

	/* extend with zeros */
	ws = begin(&S, big_ino, NULL, 0);
	rc = wsess_truncate(ws, cut + 10000);
	m_truncate(&big, cut + 10000);
	w0 = frags_written(&S);
	if (!rc)
		rc = wsess_commit(ws);
	w1 = frags_written(&S);
	wsess_free(ws);
	/* the row ending mid-fragment is re-cut with the zeros that extend it: a
	 * row of ~10000 bytes spans ceil(/FRAG) fragments of at most FRAG */
	CHECK(rc == 0 && w1 - w0 <= 1 + (10000 + FRAG - 1) / FRAG, "extend by 10000 zero bytes: %" PRIu64
	      " fragments written (<= %d)", w1 - w0, 1 + (10000 + FRAG - 1) / FRAG);
	verify(&S, big_ino, &big, "after extending with zeros (a long row without '\\n')");

	/* a write past the end leaves a hole of zeros */
	ws = begin(&S, big_ino, NULL, 0);
	rc = wsess_write(ws, "after,the,hole\n", 15, big.len + 5000);
	m_write(&big, "after,the,hole\n", 15, big.len + 5000);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "write 5000 bytes past the end");
	verify(&S, big_ino, &big, "after a write past the end");

	/* shrink and grow within one session */
	ws = begin(&S, big_ino, NULL, 0);
	rc = wsess_truncate(ws, 100000);
	if (!rc)
		rc = wsess_truncate(ws, 100100);
	if (!rc)
		rc = wsess_write(ws, "x\n", 2, 100050);
	m_truncate(&big, 100000);
	m_truncate(&big, 100100);
	m_write(&big, "x\n", 2, 100050);
	{
		char buf[200];
		ssize_t n = wsess_read(ws, buf, sizeof(buf), 99950);
		CHECK(n == 150 && memcmp(buf, big.b + 99950, 150) == 0, "wsess_read sees truncate + zeros + write before commit");
		CHECK_EQ(wsess_size(ws), 100100, "wsess_size");
	}
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "truncate, extend and write in one session");
	verify(&S, big_ino, &big, "after shrink+grow in one session");

	/* store_truncate: to inline size and to 0 */
	rc = store_truncate(S.st, big_ino, NULL, 3000);
	m_truncate(&big, 3000);
	CHECK_EQ(rc, 0, "store_truncate to 3000 bytes");
	verify(&S, big_ino, &big, "inline after store_truncate");
	check_refs(&S, 1, "an inline object holds no fragments");
	rc = store_truncate(S.st, big_ino, NULL, 0);
	m_truncate(&big, 0);
	CHECK_EQ(rc, 0, "store_truncate to 0");
	verify(&S, big_ino, &big, "empty object");
}

static void test_rewrite(void)
{
	uint64_t w0, w1;
	struct model m = { 0 };
	int rc;

	/* (e) whole rewrite: from empty to 1 MiB, and 1 MiB to other 1 MiB */
	m_set(&big, "k,v\n", 4);
	gen_rows(&big, 500000, 1 << 20);
	rc = write_all(&S, big_ino, &big);
	CHECK_EQ(rc, 0, "rewrite the empty object with 1 MiB");
	verify(&S, big_ino, &big, "after a rewrite from empty");
	m_set(&m, "k,v,w\n", 6);
	gen_rows(&m, 900000, 1 << 20);
	w0 = frags_written(&S);
	rc = write_all(&S, big_ino, &m);
	w1 = frags_written(&S);
	m_copy(&big, &m);
	CHECK(rc == 0 && w1 - w0 >= (1 << 20) / FRAG, "whole rewrite: %" PRIu64 " fragments written", w1 - w0);
	verify(&S, big_ino, &big, "after a whole rewrite");
	check_refs(&S, 1, "after a whole rewrite (old images deleted)");
	m_free(&m);
}

/* ---- (c) views ---- */

/* The bytes a rows/part view of model M (H header rows; FIXED: records of
 * that size, no header) shows. */
static void view_model(const struct model *m, uint32_t h, uint32_t fixed, const struct view_spec *sp,
		       struct model *out)
{
	uint64_t rows = m_rows(m, fixed), hr = fixed ? 0 : h < rows ? h : rows, a, b;
	size_t hdr_len = m_rowstart_f(m, fixed, hr), ra, rb;

	view_row_range(sp, rows - hr, &a, &b);
	ra = m_rowstart_f(m, fixed, hr + a);
	rb = m_rowstart_f(m, fixed, hr + b);
	out->len = 0;
	m_write(out, m->b, hdr_len, 0);
	m_write(out, m->b + ra, rb - ra, out->len);
}

/* Apply a view write to model M per DESIGN §1: W (written bytes) starts
 * with the H header rows that replace the header; its remaining rows
 * replace data rows [a, b) of SP; rows keep their boundaries ('\n' added
 * where a written part ends without one and more rows follow). */
static void view_write_model(struct model *m, uint32_t h, uint32_t fixed, const struct view_spec *sp,
			     const char *w, size_t wlen)
{
	uint64_t rows = m_rows(m, fixed), hr = fixed ? 0 : h < rows ? h : rows, a, b;
	size_t hdr_len = m_rowstart_f(m, fixed, hr), ra, rb, hcut = 0;
	struct model out = { 0 };

	view_row_range(sp, rows - hr, &a, &b);
	ra = m_rowstart_f(m, fixed, hr + a);
	rb = m_rowstart_f(m, fixed, hr + b);
	if (wlen == 0 || fixed) {   /* records replaced as they are; or nothing written: the rows go */
		m_write(&out, m->b, ra, 0);
		m_write(&out, w, wlen, out.len);
		m_write(&out, m->b + rb, m->len - rb, out.len);
		m_copy(m, &out);
		m_free(&out);
		return;
	}
	for (uint64_t k = 0; k < hr; k++) {
		const char *nl = memchr(w + hcut, '\n', wlen - hcut);
		hcut = nl ? (size_t)(nl - w) + 1 : wlen;
	}
	m_write(&out, w, hcut, 0);
	if (hcut && w[hcut - 1] != '\n' && m->len > hdr_len)
		m_write(&out, "\n", 1, out.len);
	m_write(&out, m->b + hdr_len, ra - hdr_len, out.len);
	if (wlen > hcut && out.len && out.b[out.len - 1] != '\n')
		m_write(&out, "\n", 1, out.len);   /* a preceding row without '\n' stays a row */
	m_write(&out, w + hcut, wlen - hcut, out.len);
	if (wlen > hcut && w[wlen - 1] != '\n' && rb < m->len)
		m_write(&out, "\n", 1, out.len);
	m_write(&out, m->b + rb, m->len - rb, out.len);
	m_copy(m, &out);
	m_free(&out);
}

static struct view_spec spec_of(const char *name)
{
	struct view_spec sp;
	size_t base;
	int rc = view_parse(name, &base, &sp);

	if (rc != 1) {
		printf("Bail out! view_parse(%s) = %d\n", name, rc);
		exit(1);
	}
	return sp;
}

static int view_reads_ok(struct tstore *t, uint64_t ino, const struct model *m, uint32_t h, uint32_t fixed,
			 const char *name)
{
	struct view_spec sp = spec_of(name);
	struct model want = { 0 };
	struct view_map vm;
	struct pver *pv;
	char *buf;
	ssize_t n = -1;
	int ok, rc = store_pver_get(t->st, ino, &pv);

	view_model(m, h, fixed, &sp, &want);
	if (!rc)
		rc = view_resolve(pv, &sp, &vm);
	buf = malloc(want.len + 100);
	if (!rc) {
		/* read in odd-sized pieces to cross the header/rows seam */
		size_t done = 0;
		while (done < want.len + 50) {
			size_t want_n = want.len + 100 - done < 777 ? want.len + 100 - done : 777;
			n = view_read(pv, &vm, buf + done, want_n, done);
			if (n <= 0)
				break;
			done += (size_t)n;
		}
		n = n < 0 ? n : (ssize_t)done;
	}
	ok = !rc && view_size(&vm) == want.len && n == (ssize_t)want.len && memcmp(buf, want.b, want.len) == 0;
	if (!ok)
		printf("#   %s: rc %d, view size %" PRIu64 ", read %zd, want %zu\n", name, rc, rc ? 0 : view_size(&vm), n,
		       want.len);
	free(buf);
	m_free(&want);
	if (!rc)
		pver_put(pv);
	return ok;
}

static void test_views(void)
{
	uint64_t ino = mkobj(&S, "v.csv"), w0, w1;
	struct model m = { 0 };
	struct view_spec sp;
	struct wsess *ws;
	char buf[256];
	int rc, ok;
	const char *reads[] = { "v.csv@rows=0:10", "v.csv@rows=5000:5010", "v.csv@rows=-10:", "v.csv@rows=:",
				"v.csv@rows=19990:30000", "v.csv@rows=30000:", "v.csv@rows=-3:-1", "v.csv@rows=7:3",
				"v.csv@part=0/8", "v.csv@part=3/8", "v.csv@part=7/8", "v.csv@part=0/1",
				"v.csv@part=12344/12345" };

	m_set(&m, "h1,h2\n", 6);
	for (int i = 0; i < 20000; i++) {
		int n = snprintf(buf, sizeof(buf), "r%05d,%d\n", i, i * 3);
		m_write(&m, buf, (size_t)n, m.len);
	}
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "v.csv: header + 20000 rows (%zu bytes)", m.len);
	ok = 1;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		ok &= view_reads_ok(&S, ino, &m, 1, 0, reads[i]);
	CHECK(ok, "view_resolve/view_read of %zu rows and part views equal the header + the slice of rows",
	      sizeof(reads) / sizeof(reads[0]));

	/* replace rows 5000..5009 by 3 rows, with a new header */
	sp = spec_of("v.csv@rows=5000:5010");
	ws = begin(&S, ino, &sp, 1);
	{
		const char *w = "H1,H2,H3\nnew0\nnew1\nnew2\n";
		rc = wsess_write(ws, w, strlen(w), 0);
		view_write_model(&m, 1, 0, &sp, w, strlen(w));
		w0 = frags_written(&S);
		if (!rc)
			rc = wsess_commit(ws);
		w1 = frags_written(&S);
		CHECK(rc == 0 && w1 - w0 <= 5, "@rows=5000:5010 replaced by a new header and 3 rows: %" PRIu64
		      " fragments written (<= 5)", w1 - w0);
		verify(&S, ino, &m, "after a view write with another row count");
		ssize_t n = wsess_read(ws, buf, sizeof(buf), 0);
		CHECK(n == (ssize_t)strlen(w) && memcmp(buf, w, strlen(w)) == 0 && wsess_size(ws) == strlen(w),
		      "after the commit the view session reads what was written (rebased)");
	}
	/* the same session again: append a row, commit */
	rc = wsess_write(ws, "new3\n", 5, wsess_size(ws));
	{
		const char *w = "H1,H2,H3\nnew0\nnew1\nnew2\nnew3\n";
		struct view_spec sp3 = spec_of("v.csv@rows=5000:5003");
		view_write_model(&m, 1, 0, &sp3, w, strlen(w));
	}
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "a second commit of the same view session");
	verify(&S, ino, &m, "after the second view commit");

	/* read-modify-write of the last 3 rows */
	sp = spec_of("v.csv@rows=-3:");
	ws = begin(&S, ino, &sp, 0);
	{
		struct model want = { 0 }, w = { 0 };
		ssize_t n;
		view_model(&m, 1, 0, &sp, &want);
		m_reserve(&w, want.len + 16);
		n = wsess_read(ws, w.b, want.len + 16, 0);
		w.len = n > 0 ? (size_t)n : 0;
		CHECK(n == (ssize_t)want.len && memcmp(w.b, want.b, want.len) == 0, "a view session starts with the view's bytes");
		for (size_t i = 0; i < w.len; i++)
			if (w.b[i] == 'r')
				w.b[i] = 'R';
		rc = wsess_write(ws, w.b, w.len, 0);
		view_write_model(&m, 1, 0, &sp, w.b, w.len);
		if (!rc)
			rc = wsess_commit(ws);
		CHECK_EQ(rc, 0, "read-modify-write of @rows=-3:");
		verify(&S, ino, &m, "after read-modify-write of the last rows");
		m_free(&want);
		m_free(&w);
	}
	wsess_free(ws);

	/* rows written without a final '\n' in the middle: a '\n' keeps the next row apart */
	sp = spec_of("v.csv@rows=10:12");
	ws = begin(&S, ino, &sp, 1);
	rc = wsess_write(ws, "H1,H2,H3\nxx\nyy", 14, 0);
	view_write_model(&m, 1, 0, &sp, "H1,H2,H3\nxx\nyy", 14);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "@rows=10:12 written without a final newline");
	verify(&S, ino, &m, "after a view write without a final newline");

	/* nothing written (O_TRUNC and close): the rows go, the header stays */
	sp = spec_of("v.csv@rows=100:200");
	ws = begin(&S, ino, &sp, 1);
	view_write_model(&m, 1, 0, &sp, "", 0);
	rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "@rows=100:200 truncated to nothing");
	verify(&S, ino, &m, "after emptying a view");

	/* the header alone, without a newline */
	sp = spec_of("v.csv@rows=0:1");
	ws = begin(&S, ino, &sp, 1);
	rc = wsess_write(ws, "only,header", 11, 0);
	view_write_model(&m, 1, 0, &sp, "only,header", 11);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "a view write holding only a header without '\\n'");
	verify(&S, ino, &m, "after a header-only view write");
	ok = 1;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		ok &= view_reads_ok(&S, ino, &m, 1, 0, reads[i]);
	CHECK(ok, "views read right after the view writes");
	check_refs(&S, 1, "after view writes");
	m_free(&m);

	/* appending rows through an empty view at the end of an object whose
	 * last row has no '\n': the rows must stay apart (DESIGN §1: the view's
	 * rows are replaced; the rows before it are not changed) */
	ino = mkobj(&S, "t.csv");
	m_set(&m, "h\na\nb", 5);
	rc = write_all(&S, ino, &m);
	sp = spec_of("t.csv@rows=2:");
	ws = begin(&S, ino, &sp, 1);
	if (!rc)
		rc = wsess_write(ws, "h\nc\n", 4, 0);
	if (!rc)
		rc = wsess_commit(ws);
	CHECK_EQ(rc, 0, "t.csv = 'h\\na\\nb': write 'h\\nc\\n' to t.csv@rows=2:");
	{
		ssize_t n = wsess_read(ws, buf, sizeof(buf), 0);
		CHECK(n == 4 && memcmp(buf, "h\nc\n", 4) == 0, "the rebased view session reads 'h\\nc\\n' (got %zd bytes)", n);
	}
	wsess_free(ws);
	m_set(&m, "h\na\nb\nc\n", 8);
	verify(&S, ino, &m, "rows appended through @rows=2: after a last row without '\\n' stay separate rows ('h\\na\\nb\\nc\\n')");
	m_free(&m);

	/* a view of a fixed-size object */
	ino = mkobj(&S, "fx.bin");
	rc = store_setxattr(S.st, ino, "user.payload.format", "fixed:8", 7, 0);
	CHECK_EQ(rc, 0, "fx.bin: fixed:8");
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "%07d\n", i);
		m_write(&m, buf, 8, m.len);
	}
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "1000 records of 8 bytes");
	CHECK(view_reads_ok(&S, ino, &m, 0, 8, "fx.bin@rows=10:20") && view_reads_ok(&S, ino, &m, 0, 8, "fx.bin@part=2/3"),
	      "views of a fixed object: records, no header");
	sp = spec_of("fx.bin@rows=10:20");
	ws = begin(&S, ino, &sp, 1);
	rc = wsess_write(ws, "AAAAAAABBBBBBBBCCCCCCCDDDDDDDDEEEEEEEE", 38, 0);
	if (!rc)
		rc = wsess_commit(ws);
	CHECK_EQ(rc, -EINVAL, "a fixed:8 view write of 38 bytes: -EINVAL");
	verify(&S, ino, &m, "the fixed object after the refused view write");
	rc = wsess_write(ws, "EE", 2, 38);
	view_write_model(&m, 0, 8, &sp, "AAAAAAABBBBBBBBCCCCCCCDDDDDDDDEEEEEEEEEE", 40);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "40 bytes (5 records) replace records 10..19");
	verify(&S, ino, &m, "after a fixed view write");
	m_free(&m);
}

/* ---- (f) fixed:N ---- */

static void test_fixed(void)
{
	uint64_t ino = mkobj(&S, "rec.bin"), v0;
	struct model m = { 0 }, old = { 0 };
	struct wsess *ws;
	struct pver *pv;
	char why[300] = "", rec[24];
	int rc;

	rc = store_setxattr(S.st, ino, "user.payload.format", "fixed:24", 8, 0);
	CHECK_EQ(rc, 0, "rec.bin: fixed:24");
	for (int i = 0; i < 1000; i++) {
		memset(rec, 'a' + i % 26, sizeof(rec));
		memcpy(rec, &i, sizeof(i));
		rec[23] = '\n';
		m_write(&m, rec, sizeof(rec), m.len);
	}
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "24000 bytes of 24-byte records");
	verify(&S, ino, &m, "fixed:24 object (fragments are whole records)");
	store_pver_get(S.st, ino, &pv);
	v0 = pver_inode(pv)->version;
	CHECK(pver_nfrags(pv) > 1 && pver_frag(pv, 0)->len == FRAG / 24 * 24,
	      "fragments of %d bytes (the largest multiple of 24 <= %d)", FRAG / 24 * 24, FRAG);
	pver_put(pv);
	m_copy(&old, &m);
	ws = begin(&S, ino, NULL, 0);
	rc = wsess_write(ws, "12345", 5, m.len);
	if (!rc)
		rc = wsess_commit(ws);
	CHECK_EQ(rc, -EINVAL, "a size that is not a multiple of 24: commit -EINVAL");
	CHECK(verify_q(&S, ino, &old, why, sizeof(why)), "the old version stays (%s)", why);
	store_pver_get(S.st, ino, &pv);
	CHECK_EQ(pver_inode(pv)->version, v0, "version unchanged");
	pver_put(pv);
	CHECK(wsess_dirty(ws) && wsess_size(ws) == m.len + 5, "the session keeps its staged content");
	rc = wsess_truncate(ws, m.len + 24);
	m_write(&m, "12345", 5, m.len);
	m_truncate(&m, old.len + 24);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "padded to a whole record: commit succeeds");
	verify(&S, ino, &m, "after the padded commit");
	/* a record changed in the middle rewrites only its fragment */
	{
		uint64_t w0 = frags_written(&S), w1;
		ws = begin(&S, ino, NULL, 0);
		rc = wsess_write(ws, "CHANGED!", 8, 24 * 500 + 4);
		m_write(&m, "CHANGED!", 8, 24 * 500 + 4);
		if (!rc)
			rc = wsess_commit(ws);
		w1 = frags_written(&S);
		wsess_free(ws);
		CHECK(rc == 0 && w1 - w0 <= 2, "one record changed: %" PRIu64 " fragments written", w1 - w0);
		verify(&S, ino, &m, "after changing a record");
	}
	m_free(&m);
	m_free(&old);
}

/* ---- (g) rows longer than a fragment (pver.c invariant 4) ---- */

/* Fragments of INO: how many, how many continue a row, how many lie
 * wholly inside one (0 rows). */
static void frag_shape(struct tstore *t, uint64_t ino, uint32_t *nf, uint32_t *conts, uint32_t *inside)
{
	struct pver *pv;

	*nf = *conts = *inside = 0;
	if (store_pver_get(t->st, ino, &pv))
		return;
	*nf = pver_nfrags(pv);
	for (uint32_t i = 0; i < *nf; i++) {
		const struct frag_desc *d = pver_frag(pv, i);
		*conts += !!(d->flags & FRAG_F_CONT);
		*inside += (d->flags & FRAG_F_CONT) && d->rows == 0;
	}
	pver_put(pv);
}

/* Commit session WS (changes already in model M) of object INO; *W: the
 * images the commit itself wrote (pre-cut ones settled first). */
static int commit_counted(struct tstore *t, struct wsess *ws, uint64_t *w)
{
	uint64_t w0;
	int rc;

	wsess_precut_count(ws);        /* waits for the session's jobs */
	w0 = frags_written(t);
	rc = wsess_commit(ws);
	*w = frags_written(t) - w0;
	return rc;
}

/* Append LEN bytes of one letter (no '\n': a row goes on) to M. */
static void m_fill(struct model *m, char c, size_t len, size_t off)
{
	char *b = malloc(len);

	memset(b, c, len);
	m_write(m, b, len, off);
	free(b);
}

static void test_giant_rows(void)
{
	uint64_t ino = mkobj(&S, "giant.csv"), w;
	struct model m = { 0 };
	struct wsess *ws;
	uint32_t nf, conts, inside;
	size_t g1, g1_len = 30000, g2;
	char row[64];
	int rc, ok;
	const char *reads[] = { "giant.csv@rows=0:3", "giant.csv@rows=4:5", "giant.csv@rows=3:6",
				"giant.csv@rows=4:", "giant.csv@rows=-1:", "giant.csv@rows=-2:-1",
				"giant.csv@rows=5:8", "giant.csv@part=0/3", "giant.csv@part=1/3",
				"giant.csv@part=2/3", "giant.csv@rows=:" };

	/* header, 4 rows, a 30,000-byte row, 3 rows, a 20,000-byte last row without '\n' */
	m_set(&m, "id,text\n", 8);
	for (int i = 0; i < 4; i++) {
		int n = snprintf(row, sizeof(row), "%d,short\n", i);
		m_write(&m, row, (size_t)n, m.len);
	}
	g1 = m.len;
	m_fill(&m, 'G', g1_len, m.len);
	{
		const char *mid = "\n5,after\n6,after\n7,after\n";
		m_write(&m, mid, strlen(mid), m.len);
	}
	g2 = m.len;
	m_fill(&m, 'H', 20000, m.len);
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "giant.csv: rows of 30,000 and 20,000 bytes in %d-byte fragments (%zu bytes)", FRAG, m.len);
	verify(&S, ino, &m, "giant rows: FRAG_F_CONT marks, rows, offsets of every row");
	frag_shape(&S, ino, &nf, &conts, &inside);
	CHECK(nf >= 13 && conts >= 11 && inside >= 9, "%u fragments, %u continue a row, %u lie inside one", nf, conts,
	      inside);
	{
		struct pver *pv;
		uint64_t off = 0;
		store_pver_get(S.st, ino, &pv);
		CHECK(pver_inode(pv)->rows == 10 && pver_row_offset(pv, 5, &off) == 0 && off == g1 &&
		      pver_row_offset(pv, 6, &off) == 0 && off == g1 + g1_len + 1 &&
		      pver_row_offset(pv, 9, &off) == 0 && off == g2,
		      "10 rows; row 5 (the long one) starts at %zu, row 6 after its '\\n', row 9 at %zu", g1, g2);
		pver_put(pv);
	}
	ok = 1;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		ok &= view_reads_ok(&S, ino, &m, 1, 0, reads[i]);
	CHECK(ok, "%zu views over, around and ending in the long rows read right",
	      sizeof(reads) / sizeof(reads[0]));

	/* an append to the last row (it has no '\n'): its last fragment and the new bytes */
	ws = begin(&S, ino, NULL, 0);
	{
		char *b = malloc(10000);
		memset(b, 'I', 10000);
		rc = wsess_write(ws, b, 10000, m.len);
		free(b);
	}
	m_fill(&m, 'I', 10000, m.len);
	if (!rc)
		rc = commit_counted(&S, ws, &w);
	wsess_free(ws);
	CHECK(rc == 0 && w <= 2 + 10000 / FRAG + 1, "10,000 bytes appended to the long last row: %" PRIu64
	      " fragments written (<= %d)", w, 2 + 10000 / FRAG + 1);
	verify(&S, ino, &m, "after an append into a long row");

	/* a patch inside the 30,000-byte row: only its fragment */
	ws = begin(&S, ino, NULL, 0);
	rc = wsess_write(ws, "PATCH", 5, g1 + 14000);
	m_write(&m, "PATCH", 5, g1 + 14000);
	if (!rc)
		rc = commit_counted(&S, ws, &w);
	wsess_free(ws);
	CHECK(rc == 0 && w <= 2, "5 bytes patched inside a long row: %" PRIu64 " fragments written (<= 2)", w);
	verify(&S, ino, &m, "after a patch inside a long row");

	/* a '\n' written inside it splits it: the fragments after it keep their bytes */
	ws = begin(&S, ino, NULL, 0);
	rc = wsess_write(ws, "\n", 1, g1 + 21000);
	m_write(&m, "\n", 1, g1 + 21000);
	if (!rc)
		rc = commit_counted(&S, ws, &w);
	wsess_free(ws);
	CHECK(rc == 0 && w <= 2, "a '\\n' inside a long row splits it: %" PRIu64 " fragments written (<= 2)", w);
	verify(&S, ino, &m, "after splitting a long row");
	ok = 1;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		ok &= view_reads_ok(&S, ino, &m, 1, 0, reads[i]);
	CHECK(ok, "the views read right after the split (11 rows)");

	/* the '\n' that ended it overwritten: two long rows become one */
	ws = begin(&S, ino, NULL, 0);
	rc = wsess_write(ws, "J", 1, g1 + g1_len);
	m_write(&m, "J", 1, g1 + g1_len);
	if (!rc)
		rc = commit_counted(&S, ws, &w);
	wsess_free(ws);
	CHECK(rc == 0 && w <= 2, "the end of a long row removed (it joins the next row): %" PRIu64
	      " fragments written (<= 2)", w);
	verify(&S, ino, &m, "after joining rows");

	/* a '\n' written as the last byte of a fragment inside a long row: the
	 * next fragment now starts a row (it cannot be kept as it is), and
	 * then that '\n' overwritten again: it continues the row once more */
	for (int round = 0; round < 2; round++) {
		struct pver *pv;
		uint64_t at = 0;
		store_pver_get(S.st, ino, &pv);
		for (uint32_t i = 0; i + 1 < pver_nfrags(pv) && !at; i++) {
			const struct frag_desc *d = pver_frag(pv, i), *e = pver_frag(pv, i + 1);
			if (round == 0 && (d->flags & FRAG_F_CONT) && d->rows == 0 && (e->flags & FRAG_F_CONT))
				at = d->off + d->len - 1;
			if (round == 1 && m.b[d->off + d->len - 1] == '\n' && !(e->flags & FRAG_F_CONT) && d->len == FRAG)
				at = d->off + d->len - 1;
		}
		pver_put(pv);
		CHECK(at > 0, "%s at byte %" PRIu64, round ? "a fragment ends with '\\n' and the next starts a row" :
		      "a fragment inside a long row is followed by another", at);
		ws = begin(&S, ino, NULL, 0);
		rc = wsess_write(ws, round ? "L" : "\n", 1, at);
		m_write(&m, round ? "L" : "\n", 1, at);
		if (!rc)
			rc = commit_counted(&S, ws, &w);
		wsess_free(ws);
		CHECK(rc == 0 && w <= 2, "%s: %" PRIu64 " fragments written (<= 2)", round ?
		      "the '\\n' at a fragment's end overwritten" : "a '\\n' at a fragment's end inside a long row", w);
		verify(&S, ino, &m, round ? "the next fragment continues the row now" :
		       "the next fragment starts a row now");
	}

	/* a view write replaces the long row and its neighbours with short rows, then one long row again */
	{
		struct view_spec sp = spec_of("giant.csv@rows=3:6");
		struct model wm = { 0 };
		ws = begin(&S, ino, &sp, 1);
		m_set(&wm, "id,text\nx\ny\n", 12);
		rc = wsess_write(ws, wm.b, wm.len, 0);
		view_write_model(&m, 1, 0, &sp, wm.b, wm.len);
		if (!rc)
			rc = wsess_commit(ws);
		wsess_free(ws);
		CHECK_EQ(rc, 0, "@rows=3:6 (a long row and its neighbours) replaced by 2 short rows");
		verify(&S, ino, &m, "after a view write over a long row");
		sp = spec_of("giant.csv@rows=1:2");
		ws = begin(&S, ino, &sp, 1);
		m_set(&wm, "id,text\n", 8);
		m_fill(&wm, 'K', 25000, wm.len);
		m_write(&wm, "\n", 1, wm.len);
		rc = wsess_write(ws, wm.b, wm.len, 0);
		view_write_model(&m, 1, 0, &sp, wm.b, wm.len);
		if (!rc)
			rc = wsess_commit(ws);
		wsess_free(ws);
		CHECK_EQ(rc, 0, "@rows=1:2 replaced by a 25,000-byte row");
		verify(&S, ino, &m, "after a view write of a long row");
		ok = 1;
		for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
			ok &= view_reads_ok(&S, ino, &m, 1, 0, reads[i]);
		CHECK(ok, "the views read right after the view writes");
		m_free(&wm);
	}

	/* truncate into the middle of a long row, then extend it with zeros */
	{
		struct pver *pv;
		uint64_t a = 0, b = 0;
		store_pver_get(S.st, ino, &pv);
		pver_row_offset(pv, 2, &a);
		pver_row_offset(pv, 3, &b);
		pver_put(pv);
		CHECK(b - a > 3 * FRAG, "row 2 is the long one (%" PRIu64 " bytes)", b - a);
		ws = begin(&S, ino, NULL, 0);
		rc = wsess_truncate(ws, a + (b - a) / 2);
		m_truncate(&m, (size_t)(a + (b - a) / 2));
		if (!rc)
			rc = commit_counted(&S, ws, &w);
		wsess_free(ws);
		CHECK(rc == 0 && w <= 1, "truncate into the middle of a long row: %" PRIu64 " fragments written (<= 1)", w);
		verify(&S, ino, &m, "after a truncate into a long row");
		ws = begin(&S, ino, NULL, 0);
		rc = wsess_truncate(ws, m.len + 50000);
		m_truncate(&m, m.len + 50000);
		if (!rc)
			rc = commit_counted(&S, ws, &w);
		wsess_free(ws);
		CHECK(rc == 0 && w <= 1 + (50000 + FRAG - 1) / FRAG + 1, "50,000 zeros extend the long last row: %" PRIu64
		      " fragments written", w);
		verify(&S, ino, &m, "after extending a long row with zeros");
	}
	check_refs(&S, 1, "giant rows");
	m_free(&m);
}

/* Rows a little longer than a fragment (JSON lines of 1.2 fragments): a
 * fragment that would hold less than half a fragment of rows is filled
 * with the start of the next row instead (it is cut anyway), so such rows
 * do not leave a small fragment each; rows that fit a fragment are not
 * split. */
static void test_rows_just_over(void)
{
	uint64_t ino = mkobj(&S, "over.jsonl"), ino2 = mkobj(&S, "under.jsonl");
	struct model m = { 0 }, m2 = { 0 };
	struct pver *pv;
	uint32_t nf, small = 0, split = 0;
	int rc;

	for (int i = 0; i < 30; i++) {
		m_fill(&m, (char)('a' + i % 26), FRAG + FRAG / 5, m.len);
		m_write(&m, "\n", 1, m.len);
		m_fill(&m2, (char)('a' + i % 26), FRAG / 10 + (i % 3) * (FRAG / 2), m2.len);   /* 0.1, 0.6, 1.1 */
		m_write(&m2, "\n", 1, m2.len);
	}
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "30 rows of %d bytes (1.2 fragments each)", FRAG + FRAG / 5 + 1);
	verify(&S, ino, &m, "rows a little longer than a fragment");
	store_pver_get(S.st, ino, &pv);
	nf = pver_nfrags(pv);
	for (uint32_t i = 0; i + 1 < nf; i++)
		small += pver_frag(pv, i)->len < FRAG / 2;
	pver_put(pv);
	CHECK(small == 0, "%u fragments for %zu bytes, none but the last under half a fragment (%u are)", nf, m.len,
	      small);
	rc = write_all(&S, ino2, &m2);
	CHECK_EQ(rc, 0, "30 rows of 0.1, 0.6 and 1.1 fragments");
	verify(&S, ino2, &m2, "rows around a fragment's size");
	store_pver_get(S.st, ino2, &pv);
	for (uint32_t i = 0; i < pver_nfrags(pv); i++) {
		const struct frag_desc *d = pver_frag(pv, i);
		uint64_t a = d->off, rs;
		if (!(d->flags & FRAG_F_CONT))
			continue;
		while (a > 0 && m2.b[a - 1] != '\n')
			a--;
		rs = (uint64_t)((const char *)memchr(m2.b + d->off, '\n', m2.len - d->off) - m2.b) + 1 - a;
		split += rs <= FRAG;    /* a row that fits a fragment was split */
	}
	pver_put(pv);
	CHECK_EQ(split, 0, "only rows longer than a fragment span fragments");
	check_refs(&S, 1, "rows around a fragment's size");
	m_free(&m);
	m_free(&m2);
}

/* A sequential writer of one long row: pieces are cut and handed to jobs
 * while it writes (never the whole row in memory, nothing spilled), and
 * the commit reuses them all. */
static void test_giant_stream(void)
{
	struct tstore T;
	struct model m = { 0 };
	struct wsess *ws;
	uint64_t ino, w;
	char chunk[8192];
	size_t pre;
	int rc = 0;

	if (open_tstore(&T, "gstream", 64 * 1024, 0, 0))   /* streaming, spill past 64 KiB */
		return;
	ino = mkobj(&T, "row.txt");
	ws = begin(&T, ino, NULL, 1);
	for (size_t off = 0; off < (4u << 20) && !rc; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (char)('a' + (off / 8192 + i) % 26);
		rc = wsess_write(ws, chunk, sizeof(chunk), off);
		m_write(&m, chunk, sizeof(chunk), off);
	}
	pre = wsess_precut_count(ws);
	CHECK(rc == 0 && pre >= (4u << 20) / FRAG - 2, "a 4 MiB row without '\\n' written in 8 KiB pieces: %zu fragments "
	      "pre-cut while writing", pre);
	CHECK_EQ(tut_count_files(T.staging, NULL), 0, "nothing spilled to staging/ (the row is never held whole)");
	rc = commit_counted(&T, ws, &w);
	CHECK(rc == 0 && w <= 1, "the commit reuses every pre-cut piece of the row: %" PRIu64 " written (<= 1)", w);
	verify(&T, ino, &m, "a streamed 4 MiB row");
	wsess_free(ws);

	/* the same row goes on in a new session (its base ends inside the row) */
	ws = begin(&T, ino, NULL, 0);
	for (size_t k = 0; k < 40 && !rc; k++) {
		memset(chunk, 'q', sizeof(chunk));
		rc = wsess_write(ws, chunk, sizeof(chunk), m.len);
		m_write(&m, chunk, sizeof(chunk), m.len);
	}
	rc = rc ? rc : commit_counted(&T, ws, &w);
	wsess_free(ws);
	CHECK(rc == 0 && w <= 2, "320 KiB more of the row, streamed: the commit wrote %" PRIu64 " fragments (<= 2: "
	      "the base's last and the tail; the pre-cut pieces continue the row)", w);
	verify(&T, ino, &m, "a long row continued by a second session");
	check_refs(&T, 1, "streamed long row");
	store_close(T.st);
	m_free(&m);
}

/* fixed:N with N > fragment_size: a record spans fragments. */
static void test_fixed_big(void)
{
	uint64_t ino = mkobj(&S, "big.rec"), w;
	struct model m = { 0 };
	struct wsess *ws;
	uint32_t nf, conts, inside;
	int rc;

	rc = store_setxattr(S.st, ino, "user.payload.format", "fixed:10000", 11, 0);
	CHECK_EQ(rc, 0, "big.rec: fixed:10000 (records longer than a %d-byte fragment)", FRAG);
	for (int i = 0; i < 6; i++)
		m_fill(&m, (char)('A' + i), 10000, m.len);
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "6 records of 10,000 bytes");
	verify(&S, ino, &m, "fixed:10000: records start a fragment, FRAG_F_CONT inside them");
	frag_shape(&S, ino, &nf, &conts, &inside);
	CHECK(nf == 18 && conts == 12 && inside == 12, "18 fragments (4096 + 4096 + 1808 per record), 12 continue a "
	      "record and hold no record start (got %u, %u, %u)", nf, conts, inside);
	CHECK(view_reads_ok(&S, ino, &m, 0, 10000, "big.rec@rows=1:3") &&
	      view_reads_ok(&S, ino, &m, 0, 10000, "big.rec@part=1/4") &&
	      view_reads_ok(&S, ino, &m, 0, 10000, "big.rec@rows=-1:"), "views of records that span fragments");
	ws = begin(&S, ino, NULL, 0);
	rc = wsess_write(ws, "changed", 7, 3 * 10000 + 5000);
	m_write(&m, "changed", 7, 3 * 10000 + 5000);
	if (!rc)
		rc = commit_counted(&S, ws, &w);
	wsess_free(ws);
	CHECK(rc == 0 && w <= 2, "7 bytes changed inside record 3: %" PRIu64 " fragments written (<= 2)", w);
	verify(&S, ino, &m, "after a change inside a record");
	ws = begin(&S, ino, NULL, 0);
	m_fill(&m, 'Z', 10000, m.len);
	rc = wsess_write(ws, m.b + m.len - 10000, 10000, m.len - 10000);
	if (!rc)
		rc = wsess_truncate(ws, m.len - 10000 + 5000);
	if (!rc)
		rc = wsess_commit(ws);
	CHECK_EQ(rc, -EINVAL, "a record and a half appended: -EINVAL (not a multiple of 10000)");
	if (!rc || rc == -EINVAL)
		rc = wsess_truncate(ws, m.len);
	if (!rc)
		rc = wsess_write(ws, m.b + m.len - 5000, 5000, m.len - 5000);
	if (!rc)
		rc = commit_counted(&S, ws, &w);
	wsess_free(ws);
	CHECK(rc == 0 && w <= 4, "the record completed and committed: %" PRIu64 " fragments written (<= 4)", w);
	verify(&S, ino, &m, "after appending a record");
	rc = store_truncate(S.st, ino, NULL, 3 * 10000);
	m_truncate(&m, 3 * 10000);
	CHECK_EQ(rc, 0, "truncate to 3 records");
	verify(&S, ino, &m, "after truncating to 3 records");
	/* records of another object copied in half a record off: their
	 * fragments would start at another place in a record, so they are cut
	 * again (a copy at a record boundary reuses them) */
	{
		uint64_t src = mkobj(&S, "src.rec");
		struct model sm = { 0 };
		struct pver *spv;
		ssize_t n;
		store_setxattr(S.st, src, "user.payload.format", "fixed:10000", 11, 0);
		for (int i = 0; i < 3; i++)
			m_fill(&sm, (char)('a' + i), 10000, sm.len);
		rc = write_all(&S, src, &sm);
		store_pver_get(S.st, src, &spv);
		ws = begin(&S, ino, NULL, 0);
		n = wsess_copy(ws, spv, NULL, 0, 20000, 5000);
		m_write(&m, sm.b, 20000, 5000);
		rc = n == 20000 ? commit_counted(&S, ws, &w) : (int)n;
		CHECK(rc == 0 && w >= 5, "2 records copied in at byte 5000: cut again (%" PRIu64 " written)", w);
		verify(&S, ino, &m, "after a copy half a record off");
		n = wsess_copy(ws, spv, NULL, 10000, 20000, 10000);
		m_write(&m, sm.b + 10000, 20000, 10000);
		rc = n == 20000 ? commit_counted(&S, ws, &w) : (int)n;
		CHECK(rc == 0 && w == 0, "2 records copied in at a record boundary: reused (%" PRIu64 " written)", w);
		verify(&S, ino, &m, "after a copy at a record boundary");
		wsess_free(ws);
		pver_put(spv);
		m_free(&sm);
	}
	check_refs(&S, 1, "fixed:10000");
	m_free(&m);
}

/* A session begun before a format change (found by tests/stress): its
 * commit is cut with the object's current format — it does not revert
 * the change, and the new fixed:N size check applies to it. */
static void test_format_race(void)
{
	uint64_t ino = mkobj(&S, "race.bin");
	struct model m = { 0 };
	struct wsess *ws;
	struct pver *pv;
	char why[300] = "", val[32] = "";
	ssize_t n;
	int rc;

	for (int i = 0; i < 3000; i++)
		m_write(&m, "0123456789abcdef", 16, m.len);
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "race.bin: 48000 bytes");
	ws = begin(&S, ino, NULL, 0);            /* base: format lines */
	rc = wsess_write(ws, "xyz", 3, m.len);
	CHECK_EQ(rc, 0, "the session appends 3 bytes");
	rc = store_setxattr(S.st, ino, "user.payload.format", "fixed:16", 8, 0);
	CHECK_EQ(rc, 0, "format fixed:16 set meanwhile");
	rc = wsess_commit(ws);
	CHECK_EQ(rc, -EINVAL, "48003 bytes under fixed:16: the session's commit is -EINVAL");
	CHECK(verify_q(&S, ino, &m, why, sizeof(why)), "the object keeps its bytes (%s)", why);
	rc = wsess_truncate(ws, m.len + 16);
	m_write(&m, "xyz", 3, m.len);
	m_truncate(&m, m.len + 13);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "padded to a whole record: commit succeeds");
	n = store_getxattr(S.st, ino, "user.payload.format", val, sizeof(val) - 1);
	CHECK(n == 8 && memcmp(val, "fixed:16", 8) == 0, "the format stays fixed:16 (got %.*s)",
	      (int)(n > 0 ? n : 0), val);
	verify(&S, ino, &m, "after the commit");
	store_pver_get(S.st, ino, &pv);
	rc = 0;
	for (uint32_t i = 0; i < pver_nfrags(pv); i++)
		if (pver_frag(pv, i)->off % 16 || pver_frag(pv, i)->len % 16)
			rc = 1;
	CHECK(!rc, "every fragment holds whole 16-byte records");
	pver_put(pv);
	m_free(&m);
}

/* ---- (g) snapshot isolation ---- */

static void test_isolation(void)
{
	uint64_t ino = mkobj(&S, "iso.csv");
	struct model m = { 0 }, old = { 0 }, a = { 0 }, b = { 0 };
	struct pver *pv_old, *pv;
	struct wsess *wa, *wb;
	char why[300] = "";
	uint64_t *ids;
	uint32_t n;
	int rc, all;

	m_set(&m, "x,y\n", 4);
	gen_rows(&m, 0, 200000);
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "iso.csv: 200 KB");
	store_pver_get(S.st, ino, &pv_old);
	m_copy(&old, &m);
	n = pver_nfrags(pv_old);
	ids = malloc(n * sizeof(*ids));
	for (uint32_t i = 0; i < n; i++)
		ids[i] = pver_frag(pv_old, i)->id;

	/* a change and an append */
	wa = begin(&S, ino, NULL, 0);
	wsess_write(wa, "CHANGED", 7, 50000);
	m_write(&m, "CHANGED", 7, 50000);
	wsess_write(wa, "z,z\n", 4, m.len);
	m_write(&m, "z,z\n", 4, m.len);
	rc = wsess_commit(wa);
	wsess_free(wa);
	CHECK_EQ(rc, 0, "commit a change");
	CHECK(pv_equals_model(pv_old, &old, why, sizeof(why)), "a version pinned before the commit reads the old bytes (%s)", why);
	verify(&S, ino, &m, "the current version");
	/* a whole rewrite drops every old fragment from the index */
	m_set(&m, "new\n", 4);
	gen_rows(&m, 777, 150000);
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "rewrite the whole object");
	all = 1;
	for (uint32_t i = 0; i < n; i++)
		all &= frag_file_exists(&S, ids[i]);
	CHECK(all, "the old version's %u images stay on disk while it is pinned", n);
	CHECK(pv_equals_model(pv_old, &old, why, sizeof(why)), "the pinned version still reads the old bytes (%s)", why);
	check_refs(&S, 0, "with a pinned old version");
	/* delete the object */
	CHECK_EQ(store_unlink(S.st, ROOT, "iso.csv"), 0, "unlink iso.csv");
	CHECK_EQ(store_forget(S.st, ino), 0, "forget it");
	CHECK(pv_equals_model(pv_old, &old, why, sizeof(why)), "the pinned version reads the old bytes after the delete (%s)", why);
	pver_put(pv_old);
	all = 1;
	for (uint32_t i = 0; i < n; i++)
		all &= frag_file_exists(&S, ids[i]);
	CHECK(all, "after the last unpin the old images wait for the next index flush");
	CHECK_EQ(tst_sync(S.st), 0, "an index flush (store_sync)");
	all = 1;
	for (uint32_t i = 0; i < n; i++)
		all &= !frag_file_exists(&S, ids[i]);
	CHECK(all, "the flush after the last unpin deletes the old images");
	check_refs(&S, 1, "after the pinned version went");
	free(ids);

	/* two sessions on one version: the last commit wins, whole */
	ino = mkobj(&S, "two.csv");
	m_set(&m, "p,q\n", 4);
	gen_rows(&m, 0, 100000);
	rc = write_all(&S, ino, &m);
	wa = begin(&S, ino, NULL, 0);
	wb = begin(&S, ino, NULL, 0);
	m_copy(&a, &m);
	m_copy(&b, &m);
	wsess_truncate(wa, 30000);           /* A drops most fragments */
	m_truncate(&a, 30000);
	wsess_write(wb, "BBBB", 4, 60000);    /* B keeps them and changes one */
	m_write(&b, "BBBB", 4, 60000);
	rc = wsess_commit(wa);
	CHECK_EQ(rc, 0, "session A commits a truncate");
	verify(&S, ino, &a, "after A");
	store_pver_get(S.st, ino, &pv);
	rc = wsess_commit(wb);
	CHECK_EQ(rc, 0, "session B (based on the older version) commits");
	verify(&S, ino, &b, "after B: B's content, whole (fragments A dropped are reused)");
	CHECK(pv_equals_model(pv, &a, why, sizeof(why)), "a version pinned between the commits reads A's bytes (%s)", why);
	pver_put(pv);
	wsess_free(wa);
	wsess_free(wb);
	check_refs(&S, 1, "after two sessions");
	m_free(&m); m_free(&old); m_free(&a); m_free(&b);

	/* writing to an unlinked object still commits; a forgotten one is -ENOENT */
	ino = mkobj(&S, "gone.csv");
	m_set(&m, "g\n", 2);
	gen_rows(&m, 0, 20000);
	write_all(&S, ino, &m);
	wa = begin(&S, ino, NULL, 0);
	wsess_write(wa, "more\n", 5, m.len);
	m_write(&m, "more\n", 5, m.len);
	store_unlink(S.st, ROOT, "gone.csv");
	rc = wsess_commit(wa);
	CHECK_EQ(rc, 0, "commit to an unlinked (still open) object");
	verify(&S, ino, &m, "the unlinked object");
	wsess_write(wa, "again\n", 6, m.len);
	store_forget(S.st, ino);
	rc = wsess_commit(wa);
	CHECK_EQ(rc, -ENOENT, "commit to a forgotten object: -ENOENT");
	wsess_free(wa);
	check_refs(&S, 1, "after the forgotten object");
	m_free(&m);
}

/* ---- (h) staging spill ---- */

static void test_spill(void)
{
	struct tstore T;
	struct model m = { 0 };
	struct wsess *ws;
	uint64_t ino;
	char chunk[8192], buf[4096];
	long staged;
	int rc, ok = 1;

	if (open_tstore(&T, "spill", 64 * 1024, 1, 0))   /* no streaming: the log must spill */
		return;
	ino = mkobj(&T, "s.csv");
	ws = begin(&T, ino, NULL, 1);
	for (size_t off = 0; off < 2000000; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (i + off / 97) % 61 == 60 ? '\n' : (char)('A' + (i * 7 + off) % 26);
		rc = wsess_write(ws, chunk, sizeof(chunk), off);
		m_write(&m, chunk, sizeof(chunk), off);
		ok &= rc == 0;
	}
	for (int i = 0; i < 50; i++) {   /* overwrites anywhere */
		size_t off = (size_t)rnd_below(m.len), n = 1 + (size_t)rnd_below(3000);
		for (size_t k = 0; k < n; k++)
			chunk[k] = k % 40 == 39 ? '\n' : (char)('a' + rnd_below(26));
		ok &= wsess_write(ws, chunk, n, off) == 0;
		m_write(&m, chunk, n, off);
	}
	CHECK(ok, "2 MB written in 8 KiB pieces plus 50 overwrites, spill threshold 64 KiB");
	staged = tut_count_files(T.staging, NULL);
	CHECK(staged >= 1, "the session spilled to a file in staging/ (%ld)", staged);
	ok = 1;
	for (int i = 0; i < 20; i++) {
		size_t off = (size_t)rnd_below(m.len);
		ssize_t n = wsess_read(ws, buf, sizeof(buf), off);
		size_t want = m.len - off < sizeof(buf) ? m.len - off : sizeof(buf);
		ok &= n == (ssize_t)want && memcmp(buf, m.b + off, want) == 0;
	}
	CHECK(ok, "wsess_read of spilled content equals the model");
	rc = wsess_commit(ws);
	CHECK_EQ(rc, 0, "commit the spilled session");
	verify(&T, ino, &m, "spilled content");
	CHECK_EQ(tut_count_files(T.staging, NULL), 0, "the commit removed the staging file");
	wsess_free(ws);
	CHECK_EQ(tut_count_files(T.staging, NULL), 0, "no files in staging/ after wsess_free");

	/* a spilled session freed without a commit */
	ws = begin(&T, ino, NULL, 0);
	for (int i = 0; i < 20; i++)
		wsess_write(ws, chunk, sizeof(chunk), (uint64_t)i * sizeof(chunk));
	CHECK(tut_count_files(T.staging, NULL) >= 1, "a second session spilled");
	wsess_free(ws);
	CHECK_EQ(tut_count_files(T.staging, NULL), 0, "wsess_free without commit removes its staging file");
	verify(&T, ino, &m, "the object after an abandoned session");
	check_refs(&T, 1, "spill store");
	store_close(T.st);
	m_free(&m);
}

/* ---- (i) fault injection ---- */

#ifdef PFS_FAULT_INJECTION
/* Make a dirty session over INO that changes the middle and appends
 * ~40 KB (about ten 4 KiB fragments: most are pre-cut while writing). */
static struct wsess *dirty_session(struct tstore *T, uint64_t ino, const struct model *cur, struct model *next)
{
	struct wsess *ws = begin(T, ino, NULL, 0);

	m_copy(next, cur);
	wsess_write(ws, "FAULTY", 6, cur->len / 2);
	m_write(next, "FAULTY", 6, cur->len / 2);
	for (int i = 0; i < 3000; i++) {
		char row[32];
		int n = snprintf(row, sizeof(row), "appended,%d\n", i);
		wsess_write(ws, row, (size_t)n, next->len);
		m_write(next, row, (size_t)n, next->len);
	}
	return ws;
}

/* Arm POINT (its NTH call fails with ERR) before the writes (WHILE_WRITING:
 * the fault may hit a streaming encode or put) or before the commit; the
 * commit must fail with that errno, keep the old version and leave no
 * image but the session's pre-cut ones; a retry of the same session then
 * commits. */
static void fault_case(struct tstore *T, uint64_t ino, struct model *cur, const char *point, unsigned nth,
		       int err, int while_writing)
{
	struct model next = { 0 };
	long files0 = tut_count_files(T->frags, NULL);
	char why[300] = "";
	struct wsess *ws;
	struct pver *pv;
	uint64_t v0;
	int rc;

	store_pver_get(T->st, ino, &pv);
	v0 = pver_inode(pv)->version;
	pver_put(pv);
	if (while_writing)
		fault_arm(point, nth, err);
	ws = dirty_session(T, ino, cur, &next);
	if (!while_writing)
		fault_arm(point, nth, err);
	rc = wsess_commit(ws);
	fault_reset();
	CHECK_EQ(rc, -err, "%s fails (call %u, %s, armed %s): the commit returns that errno", point, nth,
		 strerror(err), while_writing ? "before the writes" : "before the commit");
	CHECK(verify_q(T, ino, cur, why, sizeof(why)), "%s: the old version is intact (%s)", point, why);
	store_pver_get(T->st, ino, &pv);
	CHECK_EQ(pver_inode(pv)->version, v0, "%s: version unchanged", point);
	pver_put(pv);
	CHECK_EQ(tut_count_files(T->frags, NULL), files0 + (long)wsess_precut_count(ws),
		 "%s: no image left in fragments/ but the session's %zu pre-cut ones", point,
		 wsess_precut_count(ws));
	check_refs(T, 0, point);
	CHECK(wsess_dirty(ws), "%s: the session keeps its staged content", point);
	rc = wsess_commit(ws);
	CHECK_EQ(rc, 0, "%s: the next commit of the same session succeeds", point);
	wsess_free(ws);
	check_refs(T, 1, point);
	m_copy(cur, &next);
	verify(T, ino, cur, point);
	m_free(&next);
}

/* A session that pre-cut fragments and is freed without a commit leaves
 * no image behind; one that commits leaves only the images it uses. */
static void test_precut_discard(uint64_t ino, const struct model *cur)
{
	struct model next = { 0 };
	long files0 = tut_count_files(S.frags, NULL);
	struct wsess *ws = dirty_session(&S, ino, cur, &next);
	size_t pre = wsess_precut_count(ws);

	CHECK(pre >= 5, "streaming: %zu fragments pre-cut while ~40 KB were appended", pre);
	CHECK_EQ(tut_count_files(S.frags, NULL), files0 + (long)pre, "their images exist before the commit");
	wsess_free(ws);
	CHECK_EQ(tut_count_files(S.frags, NULL), files0, "wsess_free without commit deletes every pre-cut image");
	check_refs(&S, 1, "after a discarded streaming session");
	m_free(&next);
}

static void test_faults(void)
{
	uint64_t ino = mkobj(&S, "f.csv");
	struct model m = { 0 };
	struct wsess *ws;
	char buf[64];
	int rc;

	m_set(&m, "a,b\n", 4);
	gen_rows(&m, 0, 60000);
	rc = write_all(&S, ino, &m);
	CHECK_EQ(rc, 0, "f.csv: 60 KB");
	test_precut_discard(ino, &m);
	for (int w = 0; w < 2; w++) {
		fault_case(&S, ino, &m, "frag_write", 1, ENOSPC, w);
		if (w)   /* the commit itself now cuts only 2 fragments here */
			fault_case(&S, ino, &m, "frag_write", 3, ENOSPC, w);
		fault_case(&S, ino, &m, "frag_write", 2, EDQUOT, w);
		fault_case(&S, ino, &m, "lz4", 2, ENOMEM, w);
		/* while writing, the 3rd allocation is the first job's encode
		 * buffer or the second job's record, both fatal; at commit an
		 * earlier read may or may not allocate, and an allocation of the
		 * pool's job record never fails a job (it runs inline) */
		if (w)
			fault_case(&S, ino, &m, "alloc", 3, ENOMEM, w);
		fault_case(&S, ino, &m, "lmdb_commit", 1, EIO, w);
		fault_case(&S, ino, &m, "lmdb_commit", 1, ENOSPC, w);
	}
	/* frag_fsync: a commit syncs its new images before its index
	 * transaction (commit.c invariant 3); more cases in test_faults */
	{
		struct tstore Y;
		struct model ym = { 0 };
		uint64_t yino;
		if (open_tstore(&Y, "syncstore", 0, 0, 1) == 0) {
			yino = mkobj(&Y, "y.csv");
			m_set(&ym, "a,b\n", 4);
			gen_rows(&ym, 0, 60000);
			CHECK_EQ(write_all(&Y, yino, &ym), 0, "y.csv: 60 KB on a -o sync store");
			for (int w = 0; w < 2; w++) {
				fault_case(&Y, yino, &ym, "frag_fsync", 2, EIO, w);
				fault_case(&Y, yino, &ym, "frag_fsync", 1, ENOSPC, w);
				fault_case(&Y, yino, &ym, "frag_write", 2, ENOSPC, w);
			}
			store_close(Y.st);
		}
		m_free(&ym);
	}

	/* a view commit that fails, then succeeds */
	{
		struct view_spec sp = spec_of("f.csv@rows=10:20");
		struct model next = { 0 };
		char why[300] = "";
		m_copy(&next, &m);
		ws = begin(&S, ino, &sp, 1);
		wsess_write(ws, "A,B\nv1\nv2\n", 10, 0);
		view_write_model(&next, 1, 0, &sp, "A,B\nv1\nv2\n", 10);
		fault_arm("frag_write", 1, ENOSPC);
		rc = wsess_commit(ws);
		fault_reset();
		CHECK_EQ(rc, -ENOSPC, "a view commit with a failing fragment write: -ENOSPC");
		CHECK(verify_q(&S, ino, &m, why, sizeof(why)), "old version intact (%s)", why);
		rc = wsess_commit(ws);
		CHECK_EQ(rc, 0, "the view session commits on retry");
		wsess_free(ws);
		m_copy(&m, &next);
		verify(&S, ino, &m, "after the retried view commit");
		m_free(&next);
	}

	/* staging_write: the write fails with that errno, content unchanged */
	ws = begin(&S, ino, NULL, 0);
	wsess_write(ws, "before", 6, 0);
	fault_arm("staging_write", 1, ENOSPC);
	rc = wsess_write(ws, "during", 6, 0);
	fault_reset();
	CHECK_EQ(rc, -ENOSPC, "staging_write fails: wsess_write returns -ENOSPC");
	{
		ssize_t n = wsess_read(ws, buf, 6, 0);
		CHECK(n == 6 && memcmp(buf, "before", 6) == 0, "the failed write changed nothing");
	}
	fault_arm("staging_write", 1, EIO);
	rc = wsess_write(ws, "during", 6, m.len + 100);
	fault_reset();
	CHECK(rc == -EIO && wsess_size(ws) == m.len, "a failed extending write: -EIO, size unchanged");
	rc = wsess_write(ws, "after!", 6, 0);
	m_write(&m, "after!", 6, 0);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "later writes and the commit succeed");
	verify(&S, ino, &m, "after staging faults");
	m_free(&m);
}
#endif

/* ---- (i2) the cost of an append commit does not grow with F ---- */

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* An object of F fragments (64-byte fragments: F * 64 bytes of 16-byte
 * rows), then 3 appends of one row each: every append writes the same
 * number of fragment images and index records whatever F is (CPU time per
 * append is printed, not asserted). */
static void append_cost(uint32_t nfr, uint64_t *frags, uint64_t *recs, double *ms)
{
	struct store_opts o = { .fragment_size = 512, .create = 1 };
	char dir[4200], row[32];
	struct store *st;
	struct wsess *ws;
	struct pver *pv;
	struct idx_inode in;
	struct store_stats s0, s1;
	size_t len = (size_t)nfr * 512, chunk = 1 << 16;
	char *buf = malloc(chunk + 1);    /* snprintf's NUL */
	uint64_t n = 0;
	int rc;

	snprintf(dir, sizeof(dir), "%s/cost%u", tmp, nfr);
	mkdir(dir, 0700);
	rc = store_open(dir, &o, &st);
	if (!rc)
		rc = store_mknod(st, ROOT, "big.csv", S_IFREG | 0644, 0, 0, 0, &in);
	if (!rc && !(rc = store_pver_get(st, in.ino, &pv))) {
		rc = store_wsess_begin(st, pv, NULL, 1, &ws);
		pver_put(pv);
	}
	for (size_t off = 0; !rc && off < len; off += chunk) {
		size_t k = len - off < chunk ? len - off : chunk;
		for (size_t i = 0; i < k; i += 16, n++)
			snprintf(buf + i, 17, "%014" PRIu64 ",\n", n);
		rc = wsess_write(ws, buf, k, off);
	}
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	if (!rc)
		CHECK_EQ(tut_count_files(dir, ".stage"), 0, "F=%u: %zu bytes streamed, nothing spilled to staging/",
			 nfr, len);
	if (!rc && !(rc = store_pver_get(st, in.ino, &pv))) {
		CHECK(pver_nfrags(pv) >= nfr - 1 && pver_nfrags(pv) <= nfr + 1,
		      "F=%u: the object has %u fragments", nfr, pver_nfrags(pv));
		pver_put(pv);
	}
	store_get_stats(st, &s0);
	*ms = 0;
	for (int k = 0; k < 3 && !rc; k++) {
		int m = snprintf(row, sizeof(row), "%014" PRIu64 ",\n", n++);
		double t0;
		rc = store_pver_get(st, in.ino, &pv);
		if (!rc) {
			rc = store_wsess_begin(st, pv, NULL, 0, &ws);
			pver_put(pv);
		}
		if (!rc)
			rc = wsess_write(ws, row, (size_t)m, pver_inode(wsess_base(ws))->size);
		t0 = thread_cpu_ms();
		if (!rc)
			rc = wsess_commit(ws);
		*ms += thread_cpu_ms() - t0;
		wsess_free(ws);
	}
	*ms /= 3;
	store_get_stats(st, &s1);
	CHECK_EQ(rc, 0, "F=%u: 3 appends of one row committed", nfr);
	*frags = s1.frags_written - s0.frags_written;
	*recs = s1.frag_records - s0.frag_records;
	store_close(st);
	free(buf);
}

/* Write LEN bytes of 16-byte rows starting with row N into a session
 * (TRUNC: from empty; else appended) and commit. */
static int put_rows(struct store *st, uint64_t ino, int trunc, uint64_t n, size_t len, char tag)
{
	struct wsess *ws;
	struct pver *pv;
	char *buf = malloc(len + 1);
	int rc = buf ? store_pver_get(st, ino, &pv) : -ENOMEM;

	if (!rc) {
		rc = store_wsess_begin(st, pv, NULL, trunc, &ws);
		pver_put(pv);
	}
	for (size_t i = 0; !rc && i < len; i += 16, n++)
		snprintf(buf + i, 17, "%c%013" PRIu64 ",\n", tag, n);
	if (!rc) {
		rc = wsess_write(ws, buf, len, trunc ? 0 : pver_inode(wsess_base(ws))->size);
		if (!rc)
			rc = wsess_commit(ws);
		wsess_free(ws);
	}
	free(buf);
	return rc;
}

/* PV reads SIZE bytes of whole 16-byte rows, over a contiguous list. */
static int pv_matches(struct pver *pv, uint64_t size)
{
	char *a = malloc(size);
	ssize_t n = pver_read(pv, a, size, 0);
	int ok = n == (ssize_t)size;
	uint64_t off = 0;

	for (uint32_t i = 0; ok && i < pver_nfrags(pv); i++) {
		ok = pver_frag(pv, i)->off == off;
		off += pver_frag(pv, i)->len;
	}
	ok = ok && off == size;

	for (uint64_t i = 0; ok && i < size; i += 16)
		ok = a[i + 15] == '\n';
	free(a);
	return ok;
}

/* Versions share the pins of an unchanged prefix in chunks of PIN_CHUNK:
 * images dropped by a later rewrite live exactly as long as some pinned
 * version (through a shared chunk or its own) still lists them. */
static void test_shared_pins(void)
{
	struct store_opts o = { .fragment_size = 512, .create = 1 };
	char dir[4200], fr[4300];
	struct store *st;
	struct idx_inode in;
	struct pver *v1 = NULL, *v2 = NULL, *v3 = NULL;
	const size_t len1 = 3000 * 512;      /* 3,000 fragments: 2 full chunks + 1 */
	long files;
	int rc;

	snprintf(dir, sizeof(dir), "%s/pins", tmp);
	snprintf(fr, sizeof(fr), "%s/fragments", dir);
	mkdir(dir, 0700);
	rc = store_open(dir, &o, &st);
	if (!rc)
		rc = store_mknod(st, ROOT, "p.csv", S_IFREG | 0644, 0, 0, 0, &in);
	if (!rc)
		rc = put_rows(st, in.ino, 1, 0, len1, 'a');
	if (!rc)
		rc = store_pver_get(st, in.ino, &v1);
	if (!rc)
		rc = put_rows(st, in.ino, 0, 1 << 20, 40 * 512, 'b');   /* append: shares v1's chunks */
	if (!rc)
		rc = store_pver_get(st, in.ino, &v2);
	CHECK(!rc && v1->npins == 3 && v2->npins == 3 && v2->pins[0] == v1->pins[0] &&
	      v2->pins[1] == v1->pins[1] && v2->pins[2] != v1->pins[2],
	      "an append shares the two full pin chunks of its base and pins its last chunk itself");
	if (!rc)
		rc = put_rows(st, in.ino, 1, 0, 100 * 512, 'c');        /* rewrite: every old image unreferenced */
	if (!rc)
		rc = store_pver_get(st, in.ino, &v3);
	CHECK_EQ(rc, 0, "v1 (3000 fragments), v2 (+40, appended), v3 (rewritten, 100)");
	if (rc)
		goto out;
	files = tut_count_files(fr, ".frag");
	CHECK_EQ(files, (long)(3040 + 100), "the images of v1 and v2 live while both are pinned (%ld)", files);
	CHECK(pv_matches(v1, len1) && pv_matches(v2, len1 + 40 * 512), "v1 and v2 still read whole");
	pver_put(v1);
	v1 = NULL;
	files = tut_count_files(fr, ".frag");
	CHECK_EQ(files, (long)(3040 + 100), "v1 unpinned: v2 still holds the shared chunks and its own (%ld)", files);
	CHECK(pv_matches(v2, len1 + 40 * 512), "v2 reads whole after v1 went");
	pver_put(v2);
	v2 = NULL;
	tst_sync(st);     /* deletions wait for an index flush */
	files = tut_count_files(fr, ".frag");
	CHECK_EQ(files, 100L, "v2 unpinned too: only v3's 100 images are left (%ld)", files);
	CHECK(pv_matches(v3, 100 * 512), "v3 reads whole");
out:
	pver_put(v1);
	pver_put(v2);
	pver_put(v3);
	store_close(st);
}

static void test_append_cost(void)
{
	uint32_t sizes[] = { 10, 1000, 100000 };
	uint64_t frags[3], recs[3];
	double ms[3];

	for (int i = 0; i < 3; i++) {
		append_cost(sizes[i], &frags[i], &recs[i], &ms[i]);
		printf("# append to F=%u fragments: %llu images, %llu fragment records, %.3f ms CPU per commit\n",
		       sizes[i], (unsigned long long)frags[i], (unsigned long long)recs[i], ms[i]);
	}
	CHECK(frags[0] > 0 && frags[0] == frags[1] && frags[1] == frags[2],
	      "appends write the same number of images for F = 10, 1000, 100000 (%llu, %llu, %llu)",
	      (unsigned long long)frags[0], (unsigned long long)frags[1], (unsigned long long)frags[2]);
	CHECK(recs[0] > 0 && recs[0] == recs[1] && recs[1] == recs[2],
	      "... and the same number of fragment records (%llu, %llu, %llu)",
	      (unsigned long long)recs[0], (unsigned long long)recs[1], (unsigned long long)recs[2]);
}

/* ---- (j) randomized sequences ---- */

/* When set, random text has a '\n' about every LONG_ROWS bytes instead
 * of its usual density: rows longer than a fragment (FRAG_F_CONT). */
static int long_rows;

static void rand_text(char *p, size_t n, int newline_every)
{
	if (newline_every && long_rows)
		newline_every = long_rows;
	for (size_t i = 0; i < n; i++)
		p[i] = newline_every && rnd_below((uint64_t)newline_every) == 0 ? '\n' : (char)('a' + rnd_below(26));
}

struct rstate {
	const char *name;
	uint64_t ino;
	uint32_t h, fixed;      /* header rows (lines); record size (fixed) */
	struct model m;         /* the session's content */
	struct model cm;        /* the last committed content */
	struct wsess *ws;
	char *buf;              /* 8 KiB scratch */
	int fails, commits, refused, views;
	size_t maxlen;
};

#define RFAIL(r, ...) do { printf("#   " __VA_ARGS__); printf("\n"); (r)->fails++; } while (0)

/* Commit the main session and check the object. A fixed:N size that is
 * not a multiple must be refused, with the old version intact, and is then
 * padded up. */
static void r_commit(struct rstate *r, int op)
{
	char why[300] = "";
	int rc = wsess_commit(r->ws);

	if (r->fixed && r->m.len % r->fixed) {
		if (rc != -EINVAL)
			RFAIL(r, "op %d: commit of %zu bytes (fixed:%u) gave %d, want -EINVAL", op, r->m.len, r->fixed, rc);
		else if (!verify_q(&S, r->ino, &r->cm, why, sizeof(why)))
			RFAIL(r, "op %d: after a refused commit: %s", op, why);
		r->refused++;
		rc = wsess_truncate(r->ws, (r->m.len / r->fixed + 1) * r->fixed);
		m_truncate(&r->m, (r->m.len / r->fixed + 1) * r->fixed);
		if (!rc)
			rc = wsess_commit(r->ws);
	}
	r->commits++;
	if (rc)
		RFAIL(r, "op %d: commit: %d", op, rc);
	else if (!verify_q(&S, r->ino, &r->m, why, sizeof(why)))
		RFAIL(r, "op %d (commit %d): %s", op, r->commits, why);
	m_copy(&r->cm, &r->m);
}

/* A view write: commit the main session, write through a random @rows
 * view (O_TRUNC with new header and rows, or read-modify-write), commit,
 * check, and start a fresh main session. */
static void r_view(struct rstate *r, int op)
{
	struct model cur = { 0 };
	char name[96], why[300] = "";
	struct view_spec sp;
	struct wsess *vs;
	uint64_t rows;
	size_t wl = 0;
	int trunc = (int)rnd_below(2), rc;

	r_commit(r, op);
	wsess_free(r->ws);
	rows = m_rows(&r->m, r->fixed);
	{
		int64_t a = (int64_t)rnd_below(rows + 5) - (int64_t)(rnd_below(3) ? 0 : rows / 2 + 2);
		int64_t b = a + (int64_t)rnd_below(30) - 3;
		if (rnd_below(12) == 0)
			snprintf(name, sizeof(name), "%s@rows=%" PRId64 ":", r->name, a);
		else if (rnd_below(6) == 0)
			snprintf(name, sizeof(name), "%s@rows=:%" PRId64, r->name, b);
		else
			snprintf(name, sizeof(name), "%s@rows=%" PRId64 ":%" PRId64, r->name, a, b);
	}
	sp = spec_of(name);
	vs = begin(&S, r->ino, &sp, trunc);
	view_model(&r->m, r->h, r->fixed, &sp, &cur);
	rc = 0;
	if (!trunc && cur.len < 8192) {              /* read-modify-write */
		ssize_t n = wsess_read(vs, r->buf, 8192, 0);
		wl = n > 0 ? (size_t)n : 0;
		if (n != (ssize_t)cur.len || memcmp(r->buf, cur.b, cur.len))
			RFAIL(r, "op %d: %s session starts with %zd bytes, the view has %zu", op, name, n, cur.len);
		for (size_t i = 0; i < wl; i++)
			if (r->buf[i] != '\n' && rnd_below(4) == 0)
				r->buf[i] = 'Q';
		if (wl)
			rc = wsess_write(vs, r->buf, wl, 0);
	} else if (!trunc) {                         /* too big: empty it instead */
		rc = wsess_truncate(vs, 0);
		trunc = 1;
	} else if (r->fixed) {                       /* whole records */
		wl = (size_t)rnd_below(6) * r->fixed;
		rand_text(r->buf, wl, 0);
		rc = wsess_write(vs, r->buf, wl, 0);
	} else {                                     /* header rows, then new rows */
		uint64_t hr = r->h < rows ? r->h : rows;
		for (uint64_t k = 0; k < hr; k++)
			wl += (size_t)snprintf(r->buf + wl, 64, "hdr%" PRIu64 ",%d\n", k, op);
		for (uint64_t k = rnd_below(6); k > 0; k--)
			wl += (size_t)snprintf(r->buf + wl, 64, "v%d,%" PRIu64 "\n", op, k);
		if (wl && rnd_below(4) == 0)
			wl--;                            /* no final '\n' */
		rc = wsess_write(vs, r->buf, wl, 0);
	}
	if (!rc)
		rc = wsess_commit(vs);
	if (!rc && (trunc || wl))
		view_write_model(&r->m, r->h, r->fixed, &sp, r->buf, wl);
	if (!rc && (trunc || wl)) {                  /* the rebased session shows what was written */
		ssize_t n = wsess_read(vs, r->buf + 4096, 4096, 0);
		if (wl <= 4096 && (n < (ssize_t)wl || memcmp(r->buf + 4096, r->buf, wl)))
			RFAIL(r, "op %d: after the commit %s reads %zd bytes, not the %zu written", op, name, n, wl);
	}
	wsess_free(vs);
	r->views++;
	if (rc)
		RFAIL(r, "op %d: view write %s: %d", op, name, rc);
	else if (!verify_q(&S, r->ino, &r->m, why, sizeof(why)))
		RFAIL(r, "op %d (view write %s, %zu bytes%s): %s", op, name, wl, trunc ? ", O_TRUNC" : "", why);
	m_copy(&r->cm, &r->m);
	m_free(&cur);
	r->ws = begin(&S, r->ino, NULL, 0);
}

/* Streaming under random patterns: a session that mostly appends (so its
 * tail is pre-cut while it writes) with overwrites over pre-cut ranges,
 * reads, truncates back, holes and commits in between, checked against a
 * model; no image is left unreferenced at the end. FIXED > 0: fixed:N. */
static void test_stream_random(const char *name, uint32_t fixed, int ops)
{
	uint64_t ino = mkobj(&S, name);
	struct model m = { 0 };
	char *buf = malloc(65536), *rd = malloc(65536), val[32], why[300] = "";
	size_t rec = fixed ? fixed : 1, reads = 0, badreads = 0, commits = 0, maxpre = 0;
	struct wsess *ws;
	int rc = 0;

	if (fixed) {
		snprintf(val, sizeof(val), "fixed:%u", fixed);
		store_setxattr(S.st, ino, "user.payload.format", val, strlen(val), 0);
	}
	ws = begin(&S, ino, NULL, 1);
	for (int op = 0; op < ops && !rc; op++) {
		uint64_t x = rnd_below(100);
		if (x < 55 || m.len == 0) {                      /* append 1-30 KB */
			size_t n = (1 + (size_t)rnd_below(30000)) / rec * rec + rec;
			rand_text(buf, n, fixed ? 0 : 40);
			rc = wsess_write(ws, buf, n, m.len);
			m_write(&m, buf, n, m.len);
		} else if (x < 70) {                             /* overwrite inside */
			size_t off = (size_t)rnd_below(m.len), n = 1 + (size_t)rnd_below(6000);
			if (off + n > m.len)
				n = m.len - off;
			rand_text(buf, n, fixed ? 0 : 25);
			rc = wsess_write(ws, buf, n, off);
			m_write(&m, buf, n, off);
		} else if (x < 80) {                             /* read back */
			size_t off = (size_t)rnd_below(m.len), n = 1 + (size_t)rnd_below(65536);
			ssize_t got = wsess_read(ws, rd, n, off);
			size_t want = m.len - off < n ? m.len - off : n;
			reads++;
			badreads += got != (ssize_t)want || memcmp(rd, m.b + off, want) != 0;
		} else if (x < 87) {                             /* truncate back */
			size_t size = (size_t)rnd_below(m.len + 1) / rec * rec;
			rc = wsess_truncate(ws, size);
			m_truncate(&m, size);
		} else if (x < 92) {                             /* a hole, then data */
			size_t gap = (1 + (size_t)rnd_below(9000)) / rec * rec + rec, n = 4 * rec;
			rand_text(buf, n, fixed ? 0 : 10);
			rc = wsess_write(ws, buf, n, m.len + gap);
			m_write(&m, buf, n, m.len + gap);
		} else {                                         /* commit mid-stream */
			size_t pre = wsess_precut_count(ws);
			maxpre = pre > maxpre ? pre : maxpre;
			rc = wsess_commit(ws);
			commits++;
			if (!rc && !verify_q(&S, ino, &m, why, sizeof(why))) {
				CHECK(0, "%s: op %d, commit %zu: %s", name, op, commits, why);
				break;
			}
		}
		if (rc)
			CHECK(0, "%s: op %d failed: %d", name, op, rc);
	}
	if (!rc) {
		size_t pre = wsess_precut_count(ws);
		maxpre = pre > maxpre ? pre : maxpre;
		rc = wsess_commit(ws);
	}
	wsess_free(ws);
	CHECK(rc == 0 && badreads == 0 && maxpre > 0,
	      "%s: %d streaming operations (%zu commits, %zu reads, %zu wrong; up to %zu pre-cut images), last commit %d",
	      name, ops, commits, reads, badreads, maxpre, rc);
	verify(&S, ino, &m, name);
	check_refs(&S, 1, name);
	m_free(&m);
	free(buf);
	free(rd);
}

/* OPS random operations on a new object NAME; FIXED > 0 makes it fixed:N,
 * MEMORY storage=memory. */
static void test_random(const char *name, uint32_t fixed, int memory, int ops)
{
	enum { SNAPS = 4 };
	struct rstate R = { .name = name, .h = 0, .fixed = fixed };
	struct rstate *r = &R;
	struct model sm[SNAPS] = { { 0 } };
	struct pver *snap[SNAPS] = { 0 };
	char val[32], why[300] = "";
	int rc;

	r->ino = mkobj(&S, name);
	r->buf = malloc(8192);
	if (fixed) {
		snprintf(val, sizeof(val), "fixed:%u", fixed);
		store_setxattr(S.st, r->ino, "user.payload.format", val, strlen(val), 0);
	} else {
		r->h = strstr(name, ".csv") ? 1 : 0;
		if (rnd_below(2)) {
			r->h = (uint32_t)rnd_below(3);
			snprintf(val, sizeof(val), "%u", r->h);
			store_setxattr(S.st, r->ino, "user.payload.header", val, strlen(val), 0);
		}
	}
	if (memory)
		store_setxattr(S.st, r->ino, "user.payload.storage", "memory", 6, 0);
	m_set(&r->m, fixed ? "" : "c1,c2,c3\n", fixed ? 0 : 9);
	gen_rows(&r->m, 0, 100000);
	if (fixed)
		m_truncate(&r->m, r->m.len / fixed * fixed);
	rc = write_all(&S, r->ino, &r->m);
	if (rc)
		RFAIL(r, "initial write: %d", rc);
	m_copy(&r->cm, &r->m);
	r->ws = begin(&S, r->ino, NULL, 0);
	for (int op = 0; op < ops && !r->fails; op++) {
		uint64_t x = rnd_below(100);
		rc = 0;
		if (x < 30) {                                /* write */
			size_t n = 1 + (size_t)rnd_below(rnd_below(4) ? 600 : 6000);
			size_t off = (size_t)rnd_below(r->m.len + 200);
			if (fixed && rnd_below(2)) {             /* mostly whole records */
				n = (n / fixed + 1) * fixed;
				off = off / fixed * fixed;
			}
			rand_text(r->buf, n, rnd_below(5) ? 30 : 0);
			rc = wsess_write(r->ws, r->buf, n, off);
			m_write(&r->m, r->buf, n, off);
		} else if (x < 38) {                         /* append a row */
			size_t n = fixed ? fixed * (1 + (size_t)rnd_below(3)) : 1 + (size_t)rnd_below(80);
			rand_text(r->buf, n, 0);
			r->buf[n - 1] = '\n';
			rc = wsess_write(r->ws, r->buf, n, r->m.len);
			m_write(&r->m, r->buf, n, r->m.len);
		} else if (x < 43) {                         /* append a block of rows */
			size_t n = 1000 + (size_t)rnd_below(7000);
			rand_text(r->buf, n, 40);
			rc = wsess_write(r->ws, r->buf, n, r->m.len);
			m_write(&r->m, r->buf, n, r->m.len);
		} else if (x < 47) {                         /* fallocate (store.h wsess_zero, _allocate) */
			size_t off = (size_t)rnd_below(r->m.len + 2000), n = 1 + (size_t)rnd_below(3000);
			int keep = (int)rnd_below(2);
			if (rnd_below(2)) {
				rc = wsess_zero(r->ws, off, n, keep);
				m_zero(&r->m, off, n, keep);
			} else {
				rc = wsess_allocate(r->ws, off, n, keep);
				if (!keep && off + n > r->m.len)
					m_truncate(&r->m, off + n);
			}
		} else if (x < 50) {                         /* truncate */
			size_t size = rnd_below(6) ? r->m.len - (size_t)rnd_below(r->m.len / 8 + 1)
				      : rnd_below(4) ? r->m.len + (size_t)rnd_below(3000) : (size_t)rnd_below(5000);
			rc = wsess_truncate(r->ws, size);
			m_truncate(&r->m, size);
		} else if (x < 72) {                         /* commit and check */
			r_commit(r, op);
			if (rnd_below(3) == 0) {             /* a fresh session, maybe O_TRUNC */
				wsess_free(r->ws);
				r->ws = begin(&S, r->ino, NULL, 0);
				if (rnd_below(20) == 0) {
					wsess_free(r->ws);
					r->ws = begin(&S, r->ino, NULL, 1);
					m_truncate(&r->m, 0);
				}
			}
		} else if (x < 85) {                         /* a view write */
			r_view(r, op);
		} else if (x < 93) {                         /* snapshot: pin now, check later */
			int k = (int)rnd_below(SNAPS);
			r_commit(r, op);
			if (snap[k] && !pv_equals_model(snap[k], &sm[k], why, sizeof(why)))
				RFAIL(r, "op %d: snapshot %d changed: %s", op, k, why);
			pver_put(snap[k]);
			snap[k] = NULL;
			store_pver_get(S.st, r->ino, &snap[k]);
			m_copy(&sm[k], &r->cm);
		} else {                                     /* read back through the session */
			size_t off = (size_t)rnd_below(r->m.len + 10), want;
			ssize_t n = wsess_read(r->ws, r->buf, 4096, off);
			want = off >= r->m.len ? 0 : (r->m.len - off < 4096 ? r->m.len - off : 4096);
			if (n != (ssize_t)want || memcmp(r->buf, r->m.b + off, want))
				RFAIL(r, "op %d: wsess_read at %zu gave %zd bytes, want %zu", op, off, n, want);
		}
		if (rc)
			RFAIL(r, "op %d: operation failed: %d", op, rc);
		if (r->m.len > r->maxlen)
			r->maxlen = r->m.len;
	}
	if (!r->fails)
		r_commit(r, ops);
	wsess_free(r->ws);
	for (int k = 0; k < SNAPS; k++) {
		if (snap[k] && !pv_equals_model(snap[k], &sm[k], why, sizeof(why)))
			RFAIL(r, "snapshot %d changed: %s", k, why);
		pver_put(snap[k]);
		m_free(&sm[k]);
	}
	CHECK(r->fails == 0, "%s (%s%s, header %u): %d random operations (%d commits, %d refused, %d view writes, "
	      "largest %zu bytes, final %zu) match the model", name, fixed ? "fixed" : "lines", memory ? ", memory" : "",
	      r->h, ops, r->commits, r->refused, r->views, r->maxlen, r->m.len);
	check_refs(&S, 1, name);
	free(r->buf);
	m_free(&r->m);
	m_free(&r->cm);
}

/* commit.c (9): a new version is marked `extends` (pver_extends) exactly
 * when its content keeps every byte of the version it replaced, that
 * version was the session's base, and the session did not truncate. */
static int ext_commit(struct wsess *ws)
{
	int rc = wsess_commit(ws);

	return rc ? -1000 + rc : pver_extends(wsess_base(ws));
}

static void test_extends(void)
{
	uint64_t ino = mkobj(&S, "ext.csv");
	struct wsess *ws, *a;
	struct pver *pv, *pv2, *a_pv = NULL;
	char big[200000];
	int rc;

	memset(big, 'b', sizeof(big));
	for (size_t i = 99; i < sizeof(big); i += 100)
		big[i] = '\n';
	ws = begin(&S, ino, NULL, 0);
	wsess_write(ws, "h\n", 2, 0);
	CHECK_EQ(ext_commit(ws), 1, "extends: the first content of an empty object keeps its 0 bytes");
	wsess_write(ws, "1\n", 2, wsess_size(ws));
	CHECK_EQ(ext_commit(ws), 1, "extends: an inline append");
	wsess_write(ws, big, sizeof(big), wsess_size(ws));
	CHECK_EQ(ext_commit(ws), 1, "extends: an append past the inline size (fragments)");
	wsess_write(ws, "2\n", 2, wsess_size(ws));
	CHECK_EQ(ext_commit(ws), 1, "extends: a small append to an object of fragments");
	wsess_write(ws, "3\n", 2, wsess_size(ws) + 10);
	CHECK_EQ(ext_commit(ws), 1, "extends: a write past the end (a hole, then bytes)");
	store_pver_get(S.st, ino, &pv);
	rc = (int)wsess_copy(ws, pv, NULL, 0, 1000, wsess_size(ws));
	pver_put(pv);
	CHECK_EQ(rc, 1000, "copy_file_range of the object's start to its end");
	CHECK_EQ(ext_commit(ws), 1, "extends: a copy appended at the end");
	wsess_write(ws, "H", 1, 0);
	wsess_write(ws, "4\n", 2, wsess_size(ws));
	CHECK_EQ(ext_commit(ws), 0, "extends not: byte 0 rewritten, then an append");
	wsess_write(ws, "H", 1, 0);
	CHECK_EQ(ext_commit(ws), 0, "extends not: the same byte written again (a write is no append)");
	wsess_truncate(ws, 1000);
	CHECK_EQ(ext_commit(ws), 0, "extends not: a shrinking truncate");
	wsess_truncate(ws, 5000);
	CHECK_EQ(ext_commit(ws), 0, "extends not: a growing truncate (zeros after every byte kept)");
	wsess_truncate(ws, 4000);
	wsess_write(ws, big, 2000, 4000);
	CHECK_EQ(ext_commit(ws), 0, "extends not: a truncate, then writes past the old end");
	wsess_write(ws, "5\n", 2, wsess_size(ws));
	CHECK_EQ(ext_commit(ws), 1, "extends: the session's next commit, an append again");
	wsess_free(ws);
	ws = begin(&S, ino, NULL, 1);
	wsess_write(ws, big, 6002, 0);
	CHECK_EQ(ext_commit(ws), 0, "extends not: O_TRUNC and a longer content");
	wsess_free(ws);
	/* a session whose base another commit overtook: the last commit wins */
	a = begin(&S, ino, NULL, 0);
	ws = begin(&S, ino, NULL, 0);
	wsess_write(ws, "6\n", 2, wsess_size(ws));
	CHECK_EQ(ext_commit(ws), 1, "extends: an append (B)");
	wsess_write(a, "7\n", 2, wsess_size(a));
	CHECK_EQ(ext_commit(a), 0, "extends not: an append (A) to a base B's commit replaced");
	wsess_free(a);
	wsess_free(ws);
	/* a truncate(2) without a handle */
	rc = store_truncate(S.st, ino, NULL, 9000);
	store_pver_get(S.st, ino, &pv);
	CHECK(rc == 0 && pver_inode(pv)->size == 9000 && !pver_extends(pv),
	      "extends not: store_truncate growing the object");
	pver_put(pv);
	/* store_pver_cached (fs/ops.c (6g) reads the flag of the current
	 * version through it): the very version a commit made, or NULL */
	ws = begin(&S, ino, NULL, 0);
	wsess_write(ws, "8\n", 2, wsess_size(ws));
	rc = wsess_commit_ref(ws, &a_pv);
	pv = store_pver_cached(S.st, ino);
	CHECK(rc == 0 && pv == a_pv && pver_extends(pv),
	      "store_pver_cached: the version the commit made, with its flag");
	pver_put(pv);
	pver_put(a_pv);
	wsess_free(ws);
	store_pvcur_drop(S.st, ino);
	CHECK(store_pver_cached(S.st, ino) == NULL, "store_pver_cached: NULL once the store holds no current version");
	CHECK(store_pver_get(S.st, ino, &pv) == 0 && !pver_extends(pv), "a version loaded from the index has no flag");
	pv2 = store_pver_cached(S.st, ino);
	CHECK(pv2 == pv, "store_pver_cached: the version a load put in memory");
	pver_put(pv2);
	pver_put(pv);
}

int main(void)
{
	seed_init();
	log_init("test_commit", LOG_TO_STDERR, LOG_ERR);
	if (tut_mkdtemp(tmp, sizeof(tmp), "test_commit")) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	if (open_tstore(&S, "store", 0, 0, 0))
		return 1;
	test_append();
	test_extends();
	test_small_changes();
	test_truncate();
	test_rewrite();
	test_views();
	test_fixed();
	test_giant_rows();
	test_rows_just_over();
	test_giant_stream();
	test_fixed_big();
	test_format_race();
	test_isolation();
	test_spill();
#ifdef PFS_FAULT_INJECTION
	test_faults();
#else
	printf("ok %d - # skip fault injection not compiled in (FAULT=0)\n", ++tap_n);
#endif
	test_append_cost();
	test_shared_pins();
	test_stream_random("stream.csv", 0, 300);
	test_stream_random("stream.bin", 12, 300);
	test_stream_random("stream.rec", 6000, 150);      /* records longer than a fragment */
	long_rows = 5000;                                 /* rows longer than a fragment */
	test_stream_random("stream.long", 0, 200);
	test_random("rand.csv", 0, 0, 400);
	test_random("rand.txt", 0, 0, 200);
	test_random("rand.bin", 16, 0, 200);
	test_random("mem.csv", 0, 1, 200);
	test_random("rand.long", 0, 0, 300);
	long_rows = 0;
	store_close(S.st);
	m_free(&big);
	tut_rmrf(tmp);
	return tap_done();
}
