/* test_ilog — the index log (index/ilog.c, idx_lmdb.c invariants 7, 8):
 *  - the entry codec: ops round-trip, every damaged byte is refused, bad
 *    ops are refused when built and when decoded, effects decode keys;
 *  - capture: every write txn of an index with a commit hook hands its
 *    ops to the hook before committing; empty txns and local meta keys
 *    are not logged; a hook failure aborts the txn (nothing changes);
 *  - replay: a second index that applies the entries in order becomes a
 *    byte-for-byte copy (compared through full dumps); an entry applied
 *    twice is skipped, a gap is -ERANGE, a damaged entry -EUCLEAN, a del
 *    of a missing record (a diverged copy) -EUCLEAN with nothing applied;
 *  - a base (idx_base_dump) loaded into a third index equals it too, and
 *    entries after the base apply on top of it;
 *  - child txns (idx_lmdb.c invariant 9, group commit): the parent's one
 *    entry holds the ops of the merged children in order and nothing of
 *    an aborted child, of a child whose capture failed, or of a child that
 *    hit MDB_MAP_FULL; the parent goes on after each and commits the
 *    merged ones; a hook failure drops every child's change. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/log.h"
#include "index/idx.h"
#include "index/idx_rec.h"
#include "index/ilog.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"

static char root[4096];

/* ---- a log in memory ---- */
struct mlog {
	unsigned char **e;
	size_t *len;
	size_t n, cap;
	uint64_t epoch;
	int fail;           /* next hook call fails with this */
};

static int mlog_hook(void *arg, struct ilog_buf *buf, uint64_t *lsn)
{
	struct mlog *m = arg;
	int rc;

	if (m->fail) {
		rc = m->fail;
		m->fail = 0;
		return rc;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		m->len = realloc(m->len, m->cap * sizeof(*m->len));
	}
	rc = ilog_buf_finish(buf, m->n + 1, m->epoch);
	if (rc)
		return rc;
	m->e[m->n] = malloc(buf->len);
	memcpy(m->e[m->n], buf->data, buf->len);
	m->len[m->n] = buf->len;
	*lsn = ++m->n;
	return 0;
}

static void mlog_free(struct mlog *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i]);
	free(m->e);
	free(m->len);
}

static int base_emit(void *arg, const void *data, size_t len)
{
	struct mlog *m = arg;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		m->len = realloc(m->len, m->cap * sizeof(*m->len));
	}
	m->e[m->n] = malloc(len);
	memcpy(m->e[m->n], data, len);
	m->len[m->n++] = len;
	return 0;
}

static void count_ops(void *arg, const struct ilog_op *op)
{
	(void)op;
	(*(int *)arg)++;
}

/* ---- whole-index comparison through dumps ---- */
struct blob { unsigned char *p; size_t len; };

static int blob_emit(void *arg, const void *data, size_t len)
{
	struct blob *b = arg;

	/* skip the header (lsn, chunk number) and trailer: compare the ops */
	if (len < ILOG_HDR + ILOG_TRAILER)
		return -EINVAL;
	b->p = realloc(b->p, b->len + len);
	memcpy(b->p + b->len, (const char *)data + ILOG_HDR, len - ILOG_HDR - ILOG_TRAILER);
	b->len += len - ILOG_HDR - ILOG_TRAILER;
	return 0;
}

static int same_index(struct idx *a, struct idx *b)
{
	struct blob x = { 0 }, y = { 0 };
	uint64_t la, lb;
	int same = idx_base_dump(a, 1 << 16, blob_emit, &x, &la) == 0 &&
		   idx_base_dump(b, 1 << 16, blob_emit, &y, &lb) == 0 && x.len == y.len &&
		   memcmp(x.p, y.p, x.len) == 0 && la == lb;

	if (!same)
		printf("# dumps differ: %zu vs %zu bytes\n", x.len, y.len);
	free(x.p);
	free(y.p);
	return same;
}

static struct idx *open_idx(const char *sub)
{
	char dir[4200];
	struct idx *x = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", root, sub);
	mkdir(dir, 0700);
	if (idx_open(dir, 1, 0, &x)) {
		printf("Bail out! idx_open %s\n", dir);
		exit(1);
	}
	return x;
}

/* ---- the codec ---- */
static void test_codec(void)
{
	struct ilog_buf b;
	struct ilog_op op;
	struct ilog_effect e;
	unsigned char key[16], val[120];
	uint64_t lsn, epoch;
	uint32_t nops;
	size_t pos = 0;
	int n = 0, all_refused = 1;

	ilog_buf_init(&b);
	idx_rec_put_be64(key, 42);
	memset(val, 7, sizeof(val));
	CHECK_EQ(ilog_buf_add(&b, ILOG_DB_INODES, ILOG_PUT, key, 8, val, sizeof(val)), 0, "add a put");
	idx_rec_put_be64(key, 1);
	memcpy(key + 8, "name", 4);
	CHECK_EQ(ilog_buf_add(&b, ILOG_DB_DIRENTS, ILOG_DEL, key, 12, NULL, 0), 0, "add a del");
	CHECK_EQ(ilog_buf_finish(&b, 9, 3), 0, "finish");
	CHECK_EQ(ilog_check(b.data, b.len, &lsn, &epoch, &nops), 0, "the entry checks");
	CHECK(lsn == 9 && epoch == 3 && nops == 2, "lsn, epoch, op count round-trip");
	while (ilog_next(b.data, b.len, &pos, &op)) {
		ilog_effect(&op, &e);
		if (n == 0)
			CHECK(op.db == ILOG_DB_INODES && op.kind == ILOG_PUT && op.klen == 8 && op.vlen == 120 &&
			      memcmp(op.val, val, 120) == 0 && e.what == ILOG_W_INODE && e.ino == 42,
			      "op 1: the inode put, its effect: inode 42");
		else
			CHECK(op.db == ILOG_DB_DIRENTS && op.kind == ILOG_DEL && !op.val && e.what == ILOG_W_DIRENT &&
			      e.parent == 1 && e.name_len == 4 && memcmp(e.name, "name", 4) == 0,
			      "op 2: the dirent del, its effect: (1, name)");
		n++;
	}
	CHECK_EQ(n, 2, "two ops iterated");
	for (size_t i = 0; i < b.len; i++) {
		b.data[i] ^= 0x20;
		if (ilog_check(b.data, b.len, NULL, NULL, NULL) != -EUCLEAN)
			all_refused = 0;
		b.data[i] ^= 0x20;
	}
	CHECK(all_refused, "a flipped bit anywhere in the %zu bytes is refused", b.len);
	CHECK_EQ(ilog_check(b.data, b.len - 1, NULL, NULL, NULL), -EUCLEAN, "a short entry is refused");
	CHECK_EQ(ilog_check(NULL, 0, NULL, NULL, NULL), -EUCLEAN, "nothing is refused");
	ilog_buf_reset(&b);
	CHECK_EQ(ilog_buf_add(&b, ILOG_DB_COUNT, ILOG_PUT, key, 8, val, 1), -EINVAL, "an unknown db is refused");
	ilog_buf_reset(&b);
	CHECK_EQ(ilog_buf_add(&b, 1, 3, key, 8, val, 1), -EINVAL, "an unknown kind is refused");
	ilog_buf_reset(&b);
	CHECK_EQ(ilog_buf_add(&b, 1, ILOG_DEL, key, 8, val, 1), -E2BIG, "a del with a value is refused");
	CHECK_EQ(ilog_buf_finish(&b, 1, 1), -E2BIG, "... and the entry cannot be finished");
	ilog_buf_reset(&b);
	CHECK_EQ(ilog_buf_add(&b, 1, ILOG_PUT, key, 0, val, 1), -E2BIG, "an empty key is refused");
	ilog_buf_reset(&b);
	CHECK_EQ(ilog_buf_finish(&b, 5, 1), 0, "an entry without ops finishes");
	CHECK(ilog_check(b.data, b.len, &lsn, NULL, &nops) == 0 && nops == 0 && lsn == 5, "... and checks");
	CHECK(ilog_meta_local("clean", 5) && ilog_meta_local("log_lsn", 7) && !ilog_meta_local("next_ino", 8) &&
	      !ilog_meta_local("clea", 4), "local meta keys: clean, log_lsn, store");
	ilog_buf_free(&b);
}

/* A workload of every kind of record. */
static int workload(struct idx *x, int round)
{
	struct idx_txn *t;
	struct idx_inode in = { .ino = 100 + (uint64_t)round, .mode = S_IFREG | 0644, .nlink = 1,
				.size = 10, .version = 1 };
	struct frag_desc d = { .off = 0, .id = 500 + (uint64_t)round, .len = 10, .rows = 1, .stored_len = 10 };
	uint32_t now;
	char name[32];
	int rc = idx_begin(x, 0, &t);

	snprintf(name, sizeof(name), "f%d", round);
	if (!rc)
		rc = idx_inode_put(t, &in);
	if (!rc)
		rc = idx_dirent_put(t, IDX_ROOT_INO, name, in.ino, S_IFREG);
	if (!rc)
		rc = idx_frag_put(t, in.ino, &d);
	if (!rc)
		rc = idx_ref_add(t, d.id, 1, &now);
	if (!rc)
		rc = idx_xattr_put(t, in.ino, "user.k", "v", 1);
	if (!rc)
		rc = idx_meta_put_u64(t, "next_ino", 200 + (uint64_t)round);
	if (!rc)
		rc = idx_clean_mark(t, 0);        /* local: never logged */
	if (!rc && round % 3 == 2) {      /* drop an earlier one */
		uint64_t old = 100 + (uint64_t)round - 2;
		char oname[32];
		snprintf(oname, sizeof(oname), "f%d", round - 2);
		rc = idx_dirent_del(t, IDX_ROOT_INO, oname);
		if (!rc)
			rc = idx_frag_del(t, old, 0);
		if (!rc)
			rc = idx_ref_add(t, 500 + (uint64_t)round - 2, -1, &now);
		if (!rc)
			rc = idx_xattr_del_all(t, old);
		if (!rc)
			rc = idx_inode_del(t, old);
		if (!rc)
			rc = idx_orphan_put(t, 999);
		if (!rc)
			rc = idx_inline_put(t, 999, "inline", 6);
	}
	return rc ? (idx_abort(t), rc) : idx_commit(t);
}

static int ops_in(const struct mlog *m, size_t i, int db)
{
	struct ilog_op op;
	size_t pos = 0;
	int n = 0;

	while (ilog_next(m->e[i], m->len[i], &pos, &op))
		n += op.db == db;
	return n;
}

static void test_capture_replay(void)
{
	struct idx *a = open_idx("a"), *b = open_idx("b"), *c = open_idx("c");
	struct mlog m = { .epoch = 7 };
	struct idx_txn *t;
	struct idx_inode got;
	uint64_t lsn;
	int rc = 0, local_logged = 0;

	idx_set_commit_hook(a, mlog_hook, &m);
	for (int r = 0; r < 12 && !rc; r++)
		rc = workload(a, r);
	CHECK_EQ(rc, 0, "12 write txns of every kind of record on a logged index");
	CHECK_EQ(m.n, 12, "... each handed one entry to the hook");
	for (size_t i = 0; i < m.n; i++) {
		struct ilog_op op;
		size_t pos = 0;
		while (ilog_next(m.e[i], m.len[i], &pos, &op))
			local_logged += op.db == ILOG_DB_META && ilog_meta_local(op.key, op.klen);
	}
	CHECK_EQ(local_logged, 0, "no local meta key (clean) was logged");
	CHECK(ops_in(&m, 2, ILOG_DB_REFS) == 2 && ops_in(&m, 2, ILOG_DB_ORPHANS) == 1,
	      "the third entry has the ref put, the ref drop and the orphan");
	CHECK(idx_log_lsn(a, &lsn) == 0 && lsn == 12, "the logged index records its position (12)");
	/* an empty txn logs nothing */
	CHECK(idx_begin(a, 0, &t) == 0 && idx_commit(t) == 0 && m.n == 12, "an empty txn logs nothing");
	/* a txn of local keys only logs nothing */
	CHECK(idx_begin(a, 0, &t) == 0 && idx_clean_mark(t, 0) == 0 && idx_commit(t) == 0 && m.n == 12,
	      "a txn of local meta keys only logs nothing");
	/* a hook failure aborts */
	m.fail = -ETIMEDOUT;
	CHECK_EQ(workload(a, 40), -ETIMEDOUT, "a failing hook fails the commit with its errno");
	CHECK(idx_begin(a, 1, &t) == 0 && idx_inode_get(t, 140, &got) == -ENOENT, "... and nothing changed");
	idx_abort(t);
	CHECK(idx_log_lsn(a, &lsn) == 0 && lsn == 12 && m.n == 12, "... the position neither");
	CHECK_EQ(workload(a, 13), 0, "the next txn commits");

	/* replay into b */
	rc = 0;
	for (size_t i = 0; i < m.n && !rc; i++)
		rc = idx_apply(b, m.e[i], m.len[i], NULL, NULL);
	CHECK_EQ(rc, 0, "b applies the %zu entries in order", m.n);
	CHECK(same_index(a, b), "b equals a record for record");
	CHECK_EQ(idx_apply(b, m.e[3], m.len[3], NULL, NULL), 1, "an entry already applied is skipped");
	CHECK(same_index(a, b), "... and changes nothing");

	/* a base of a into c, then later entries on top */
	{
		struct mlog base = { 0 };
		struct idx_txn *bt;
		uint64_t blsn = 0;
		size_t before = m.n;

		rc = idx_base_dump(a, 512, base_emit, &base, &blsn);
		CHECK(rc == 0 && base.n > 3 && blsn == m.n, "a's base: %zu chunks of about 512 bytes, at %llu",
		      base.n, (unsigned long long)blsn);
		rc = idx_base_begin(c, &bt);
		for (size_t i = 0; i < base.n && !rc; i++)
			rc = idx_base_add(bt, base.e[i], base.len[i]);
		rc = idx_base_end(bt, blsn, rc);
		CHECK_EQ(rc, 0, "c loads the base in one txn");
		CHECK(same_index(a, c), "c equals a");
		for (int r = 15; r < 20 && !rc; r++)   /* 15, 16, 18, 19: 17 would drop 15 */
			if (r != 17)
				rc = workload(a, r);
		CHECK(rc == 0 && m.n == before + 4, "4 more entries on a");
		CHECK_EQ(idx_apply(c, m.e[before + 1], m.len[before + 1], NULL, NULL), -ERANGE,
			 "an entry after a gap is -ERANGE");
		m.e[before][m.len[before] / 2] ^= 1;
		CHECK_EQ(idx_apply(c, m.e[before], m.len[before], NULL, NULL), -EUCLEAN,
			 "a damaged entry is -EUCLEAN");
		m.e[before][m.len[before] / 2] ^= 1;
		rc = 0;
		for (size_t i = before; i < m.n && !rc; i++)
			rc = idx_apply(c, m.e[i], m.len[i], count_ops, &base.fail);
		CHECK_EQ(rc, 0, "c applies them on top of the base");
		CHECK(base.fail > 20, "the callback saw every op after each commit (%d)", base.fail);
		CHECK(same_index(a, c), "c equals a again");
		/* a base loaded over a store that had other records replaces them */
		rc = idx_base_begin(b, &bt);
		for (size_t i = 0; i < base.n && !rc; i++)
			rc = idx_base_add(bt, base.e[i], base.len[i]);
		rc = idx_base_end(bt, blsn, rc);
		CHECK(rc == 0 && idx_log_lsn(b, &lsn) == 0 && lsn == blsn, "b reloads the older base over its records");
		for (size_t i = before; i < m.n && !rc; i++)
			rc = idx_apply(b, m.e[i], m.len[i], NULL, NULL);
		CHECK(rc == 0 && same_index(a, b), "... then the entries since: b equals a");
		mlog_free(&base);
	}
	/* a diverged copy: a del of a record it lacks */
	{
		struct ilog_buf e;
		unsigned char key[8];
		uint64_t l0;

		idx_rec_put_be64(key, 777);
		ilog_buf_init(&e);
		idx_log_lsn(c, &l0);
		ilog_buf_add(&e, ILOG_DB_INODES, ILOG_DEL, key, 8, NULL, 0);
		ilog_buf_finish(&e, l0 + 1, 7);
		log_init("test_ilog", LOG_TO_STDERR, LOG_CRIT);
		CHECK_EQ(idx_apply(c, e.data, e.len, NULL, NULL), -EUCLEAN,
			 "a del of a record the copy lacks is -EUCLEAN (it diverged)");
		log_init("test_ilog", LOG_TO_STDERR, LOG_WARNING);
		CHECK(idx_log_lsn(c, &lsn) == 0 && lsn == l0 && same_index(a, c), "... and nothing was applied");
		ilog_buf_free(&e);
	}
	mlog_free(&m);
	idx_close(a);
	idx_close(b);
	idx_close(c);
}

static int has_inode(struct idx *x, uint64_t ino)
{
	struct idx_txn *t;
	struct idx_inode in;
	int rc = idx_begin(x, 1, &t);

	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	idx_abort(t);
	return rc == 0 ? 1 : (rc == -ENOENT ? 0 : rc);
}

/* The inode numbers an entry puts, in order, into OUT (at most CAP). */
static size_t entry_inodes(const unsigned char *e, size_t len, uint64_t *out, size_t cap)
{
	struct ilog_op op;
	size_t pos = 0, n = 0;

	while (ilog_next(e, len, &pos, &op))
		if (op.db == ILOG_DB_INODES && op.kind == ILOG_PUT && n < cap)
			out[n++] = idx_rec_get_be64(op.key);
	return n;
}

/* One child of P that puts inode INO (and a dirent for it). */
static int child_put(struct idx_txn *p, uint64_t ino, struct idx_txn **out)
{
	struct idx_inode in = { .ino = ino, .mode = S_IFREG | 0644, .nlink = 1, .version = 1 };
	char name[32];
	int rc = idx_child_begin(p, out);

	snprintf(name, sizeof(name), "c%llu", (unsigned long long)ino);
	if (!rc)
		rc = idx_inode_put(*out, &in);
	if (!rc)
		rc = idx_dirent_put(*out, IDX_ROOT_INO, name, ino, S_IFREG);
	return rc;
}

static void test_children(void)
{
	struct idx *x;
	struct mlog m = { .epoch = 3 };
	struct idx_txn *p = NULL, *c = NULL;
	uint64_t inos[16], lsn = 0;
	static char big[4000];
	size_t n;
	int rc, full = 0;

	setenv("PAYLOADFS_INDEX_MAP", "65536", 1);    /* a small map: a child fills it */
	x = open_idx("children");
	unsetenv("PAYLOADFS_INDEX_MAP");
	idx_set_commit_hook(x, mlog_hook, &m);
	CHECK_EQ(idx_begin(x, 0, &p), 0, "children: a parent write txn");
	CHECK(child_put(p, 300, &c) == 0 && idx_commit(c) == 0, "child 1 (inode 300) merges");
	CHECK(child_put(p, 301, &c) == 0, "child 2 (inode 301) puts ...");
	idx_abort(c);
	CHECK(child_put(p, 302, &c) == 0, "child 3 (inode 302) puts ...");
	memset(big, 'x', sizeof(big));
	CHECK_EQ(idx_xattr_put(c, 302, "user.k", NULL, (size_t)ILOG_VAL_MAX + 1), -E2BIG,
		 "... then an op it cannot capture (-E2BIG)");
	CHECK_EQ(idx_commit(c), -E2BIG, "... so its commit fails with that error (the child is dropped)");
	rc = child_put(p, 303, &c);
	for (int i = 0; i < 2000 && !rc; i++)
		rc = idx_inline_put(c, 10000 + (uint64_t)i, big, sizeof(big));
	full = rc == -ENOSPC;
	CHECK(full, "child 4 (inode 303) fills the map: -ENOSPC (%d)", rc);
	idx_abort(c);
	CHECK(child_put(p, 304, &c) == 0 && idx_commit(c) == 0, "child 5 (inode 304) merges after all that");
	CHECK_EQ(idx_commit(p), 0, "the parent commits");
	CHECK_EQ(m.n, 1, "... handing one entry to the hook");
	n = m.n ? entry_inodes(m.e[0], m.len[0], inos, 16) : 0;
	CHECK(n == 2 && inos[0] == 300 && inos[1] == 304,
	      "the entry puts exactly the merged children's inodes, in order (%zu: %llu, %llu)", n,
	      (unsigned long long)(n ? inos[0] : 0), (unsigned long long)(n > 1 ? inos[1] : 0));
	if (m.n) {
		struct ilog_op op;
		size_t pos = 0, inl = 0, ops = 0;
		while (ilog_next(m.e[0], m.len[0], &pos, &op)) {
			inl += op.db == ILOG_DB_INLINE;
			ops++;
		}
		CHECK(inl == 0 && ops == 4, "... and nothing of the dropped children (%zu ops, %zu inline)", ops,
		      inl);
	}
	CHECK(has_inode(x, 300) == 1 && has_inode(x, 304) == 1, "the local index has 300 and 304");
	CHECK(has_inode(x, 301) == 0 && has_inode(x, 302) == 0 && has_inode(x, 303) == 0,
	      "... and none of 301, 302, 303");
	CHECK(idx_log_lsn(x, &lsn) == 0 && lsn == 1, "... at log position 1");

	/* a hook failure drops every merged child */
	CHECK_EQ(idx_begin(x, 0, &p), 0, "a second parent");
	CHECK(child_put(p, 310, &c) == 0 && idx_commit(c) == 0, "child (inode 310) merges");
	CHECK(child_put(p, 311, &c) == 0 && idx_commit(c) == 0, "child (inode 311) merges");
	m.fail = -EIO;
	CHECK_EQ(idx_commit(p), -EIO, "the hook fails: the parent's commit fails with its errno");
	CHECK(has_inode(x, 310) == 0 && has_inode(x, 311) == 0 && m.n == 1,
	      "... and neither child's change is anywhere");
	CHECK(idx_log_lsn(x, &lsn) == 0 && lsn == 1, "... the position neither");
	/* and the index goes on */
	CHECK(idx_begin(x, 0, &p) == 0 && child_put(p, 312, &c) == 0 && idx_commit(c) == 0 &&
	      idx_commit(p) == 0 && m.n == 2 && has_inode(x, 312) == 1, "a third parent commits (entry 2)");
	mlog_free(&m);
	idx_close(x);
}

int main(void)
{
	log_init("test_ilog", LOG_TO_STDERR, LOG_WARNING);
	if (tut_mkdtemp(root, sizeof(root), "test_ilog")) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	test_codec();
	test_capture_replay();
	test_children();
	tut_rmrf(root);
	return tap_done();
}
