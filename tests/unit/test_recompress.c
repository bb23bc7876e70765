/* test_recompress — staged raw fragments and their background swap for
 * compressed images (index/recompress.c), on a temporary store with 4 KiB
 * fragments and PAYLOADFS_STAGE_RAW=always (every disk fragment staged).
 * The pass is run by hand (store_recompress_pass: no daemon thread here).
 *
 * Proves: a staged commit writes raw records flagged FRAG_F_STAGED; the
 * pass swaps each for an lz4 image under a new id with the same bytes, the
 * row index moved along; a version pinned before the swap still reads its
 * bytes from the old images, which stay on disk until it is put (S1, S2);
 * reference counts equal the records and no image is left over after each
 * step, also when the swap fails (lz4, frag_write, frag_fsync,
 * lmdb_commit) or races a commit of the same object (fault hook at
 * "recompress_txn") (S4, S5); a session whose base listed the raw images
 * commits correctly after the swap (the version bump, S4); a swap's
 * version is marked extends of the byte-identical run before it and
 * announced to the change callback, and a session that appends to a base
 * overtaken by swaps only is an append, one overtaken by a commit is not
 * (S7); a fragment
 * shared by a copy is left raw and counted; an incompressible one is
 * unflagged and keeps its image; a process killed at "recompress_txn" or
 * "recompress_release" leaves a store that opens (sweep), reads the same
 * bytes and holds no unreferenced image (S5). */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/log.h"
#include "index/store_int.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"
#include "tests/unit/trefs.h"

#define ROOT IDX_ROOT_INO
#define FRAG 4096

static char tmp[4096];
static char dir[4200], frags[4300];
static struct store *st;

static int open_store(int create)
{
	struct store_opts o = { .fragment_size = FRAG, .create = create, .sweep = 1 };
	int rc = store_open(dir, &o, &st);

	if (rc)
		printf("Bail out! store_open %s: %s\n", dir, store_strerror(rc));
	return rc;
}

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

static uint64_t lookup(const char *name)
{
	struct idx_inode in;

	return store_lookup(st, ROOT, name, &in) ? 0 : in.ino;
}

/* CSV-ish rows (compressible), LEN bytes. */
static char *gen_rows(size_t len)
{
	char *b = malloc(len), row[64];
	size_t have = 0;

	for (uint64_t i = 0; have < len; i++) {
		int n = snprintf(row, sizeof(row), "%07" PRIu64 ",name%" PRIu64 ",%" PRIu64 "\n", i, i * 7 % 1000,
				 (i * 2654435761u) % 100000);
		size_t k = (size_t)n < len - have ? (size_t)n : len - have;
		memcpy(b + have, row, k);
		have += k;
	}
	return b;
}

static int write_at(uint64_t ino, const char *b, size_t len, size_t off, int trunc)
{
	struct pver *pv;
	struct wsess *ws = NULL;
	int rc = store_pver_get(st, ino, &pv);

	if (!rc) {
		rc = store_wsess_begin(st, pv, NULL, trunc, &ws);
		pver_put(pv);
	}
	if (!rc)
		rc = wsess_write(ws, b, len, off);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}

static int reads_as(struct pver *pv, const char *b, size_t len)
{
	char *buf = malloc(len + 64);
	ssize_t n = pver_read(pv, buf, len + 64, 0);
	int ok = n == (ssize_t)len && memcmp(buf, b, len) == 0;

	free(buf);
	return ok;
}

static int obj_reads_as(uint64_t ino, const char *b, size_t len)
{
	struct pver *pv;
	int ok;

	if (store_pver_get(st, ino, &pv))
		return 0;
	ok = reads_as(pv, b, len);
	pver_put(pv);
	return ok;
}

/* Count INO's records: staged ones, lz4 ones, all. */
static void shape(uint64_t ino, uint32_t *staged, uint32_t *lz4, uint32_t *all)
{
	struct idx_txn *t;
	struct frag_desc *d = NULL;
	uint32_t n = 0;

	*staged = *lz4 = *all = 0;
	if (idx_begin(store_idx(st), 1, &t))
		return;
	if (!idx_frags_load(t, ino, &d, &n))
		for (uint32_t i = 0; i < n; i++) {
			*staged += !!(d[i].flags & FRAG_F_STAGED);
			*lz4 += d[i].codec == 1;
		}
	*all = n;
	idx_abort(t);
	free(d);
}

static int audit(char *why, size_t cap)
{
	return trefs_audit(st, frags, NULL, 1, why, cap, NULL);
}

#define CHECK_AUDIT(what) do { \
	char why_[300] = ""; \
	int ok_ = audit(why_, sizeof(why_)); \
	CHECK(ok_, "%s: refs equal records, one image file per referenced id%s%s", what, ok_ ? "" : ": ", why_); \
} while (0)

static int frag_file_exists(uint64_t id)
{
	char path[4400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%02x/%016" PRIx64 ".frag", frags, (unsigned)(id & 0xff), id);
	return stat(path, &sb) == 0;
}

static struct store_stats stats(void)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s;
}

#define LEN (40 * 1024 + 123)

/* Staging, the swap, a pinned reader, the row index. */
static void test_swap(void)
{
	char *b = gen_rows(LEN);
	uint64_t ino = mkobj("a.csv");
	uint32_t staged, lz4, all;
	struct pver *old;
	uint64_t left = 99, id0;
	int rc, had_ri, has_ri;
	struct idx_txn *t;
	const void *v;
	size_t vl;

	CHECK_EQ(write_at(ino, b, LEN, 0, 1), 0, "a 40 KiB object commits with staging on");
	shape(ino, &staged, &lz4, &all);
	CHECK(all >= 10 && staged == all && lz4 == 0, "every record staged raw (%u of %u, %u lz4)", staged, all, lz4);
	CHECK_EQ(stats().frags_staged_raw, all, "frags_staged_raw counts them");
	CHECK_EQ(store_pver_get(st, ino, &old), 0, "a reader pins the staged version");
	id0 = old->frags[0].id;
	idx_begin(store_idx(st), 1, &t);
	had_ri = idx_rowidx_get(t, id0, &v, &vl) == 0;
	idx_abort(t);
	CHECK(had_ri, "the first staged fragment has a row index");

	rc = store_recompress_pass(st, 1000, &left);
	CHECK_EQ(rc, all, "the pass swapped every staged fragment");
	CHECK_EQ(left, 0, "nothing left");
	CHECK_EQ(stats().frags_recompressed, all, "frags_recompressed counts them");
	CHECK_EQ(stats().staged_pending, 0, "staged_pending is 0");
	shape(ino, &staged, &lz4, &all);
	CHECK(staged == 0 && lz4 == all, "every record now lz4, none staged (%u lz4, %u staged, of %u)", lz4,
	      staged, all);
	CHECK(reads_as(old, b, LEN), "the pinned old version reads the same bytes");
	CHECK(frag_file_exists(id0), "its old raw image is still on disk while pinned");
	CHECK(obj_reads_as(ino, b, LEN), "a new open reads the same bytes from the compressed images");
	{
		struct pver *nv;
		store_pver_get(st, ino, &nv);
		CHECK(nv->frags[0].id != id0 && nv->frags[0].codec == 1, "the new version lists new ids");
		idx_begin(store_idx(st), 1, &t);
		has_ri = idx_rowidx_get(t, nv->frags[0].id, &v, &vl) == 0;
		CHECK(idx_rowidx_get(t, id0, &v, &vl) == -ENOENT, "the old id's row index is gone");
		idx_abort(t);
		CHECK(has_ri, "the row index moved to the new id");
		pver_put(nv);
	}
	pver_put(old);
	CHECK_AUDIT("after the swap and the reader's put");
	CHECK(!frag_file_exists(id0), "the old image is deleted once unpinned");
	CHECK_EQ(store_recompress_pass(st, 1000, &left), 0, "a second pass finds nothing");
	free(b);
}

/* A failure at each step leaves the record staged and no image behind. */
static void test_faults(void)
{
	static const char *points[] = { "lz4", "frag_write", "frag_fsync", "lmdb_commit" };
	char *b = gen_rows(3 * FRAG);
	uint64_t ino = mkobj("f.csv"), left;
	uint32_t staged, lz4, all;

	CHECK_EQ(write_at(ino, b, 3 * FRAG, 0, 1), 0, "a 3-fragment object commits");
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		fault_reset();
		fault_arm(points[i], 1, EIO);
		int rc = store_recompress_one(st, ino, &(struct frag_desc){ 0 });   /* not staged: no-op */
		CHECK_EQ(rc, 0, "%s: a record that is not staged is left alone", points[i]);
		{
			struct idx_txn *t;
			struct frag_desc d;
			idx_begin(store_idx(st), 1, &t);
			idx_frag_at(t, ino, 0, &d);
			idx_abort(t);
			rc = store_recompress_one(st, ino, &d);
		}
		CHECK(rc < 0, "%s armed: the swap fails (%d)", points[i], rc);
		CHECK(fault_fired(points[i]) >= 1, "%s fired", points[i]);
		shape(ino, &staged, &lz4, &all);
		CHECK_EQ(staged, all, "%s: every record still staged", points[i]);
		CHECK(obj_reads_as(ino, b, 3 * FRAG), "%s: the object reads the same", points[i]);
		CHECK_AUDIT(points[i]);
	}
	fault_reset();
	shape(ino, &staged, &lz4, &all);
	CHECK_EQ(store_recompress_pass(st, 1000, &left), all, "unarmed, the pass swaps all %u", all);
	CHECK(obj_reads_as(ino, b, 3 * FRAG), "and the object reads the same");
	CHECK_AUDIT("after the pass");
	free(b);
}

/* A commit of the object between the image write and the swap txn. */
static uint64_t race_ino;
static char *race_b;
static int race_rc = -1;
static void race_hook(void *arg)
{
	(void)arg;
	if (race_rc == -1)
		race_rc = write_at(race_ino, race_b, 2 * FRAG, 0, 1);
}

static void test_race(void)
{
	char *b = gen_rows(2 * FRAG);
	uint64_t left;
	uint32_t staged, lz4, all;
	int rc;

	race_ino = mkobj("r.csv");
	race_b = malloc(2 * FRAG);
	memset(race_b, 'x', 2 * FRAG);
	for (size_t i = 99; i < 2 * FRAG; i += 100)
		race_b[i] = '\n';
	CHECK_EQ(write_at(race_ino, b, 2 * FRAG, 0, 1), 0, "a 2-fragment object commits");
	fault_reset();
	fault_hook("recompress_txn", race_hook, NULL);
	rc = store_recompress_pass(st, 1000, &left);
	fault_reset();
	CHECK_EQ(race_rc, 0, "a rewrite of the object committed inside the swap");
	CHECK(rc >= 0, "the pass ends without error (%d)", rc);
	CHECK(obj_reads_as(race_ino, race_b, 2 * FRAG), "the object reads the rewrite's bytes");
	CHECK_AUDIT("after the raced swap");
	store_recompress_pass(st, 1000, &left);
	shape(race_ino, &staged, &lz4, &all);
	CHECK(staged == 0 && lz4 == all, "a later pass compresses the rewrite (%u lz4 of %u)", lz4, all);
	CHECK(obj_reads_as(race_ino, race_b, 2 * FRAG), "which reads the same");
	CHECK_AUDIT("after the later pass");
	free(b);
}

/* A session whose base listed the raw images commits after the swap. */
static void test_stale_base(void)
{
	char *b = gen_rows(6 * FRAG);
	uint64_t ino = mkobj("s.csv"), left;
	struct pver *pv;
	struct wsess *ws = NULL;
	int rc;

	CHECK_EQ(write_at(ino, b, 6 * FRAG, 0, 1), 0, "a 6-fragment object commits");
	store_pver_get(st, ino, &pv);
	rc = store_wsess_begin(st, pv, NULL, 0, &ws);
	pver_put(pv);
	CHECK_EQ(rc, 0, "a session begins on the staged version");
	CHECK(store_recompress_pass(st, 1000, &left) >= 6, "the pass swaps all of them under it");
	memcpy(b + 5 * FRAG + 10, "PATCH", 5);
	rc = wsess_write(ws, "PATCH", 5, 5 * FRAG + 10);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "its small patch commits");
	CHECK(obj_reads_as(ino, b, 6 * FRAG), "the object reads the patched bytes");
	CHECK_AUDIT("after the stale-base commit");
	free(b);
}

/* (S7) A swap's version counts as an append of the run of byte-identical
 * versions before it, and is announced (STORE_CHANGE_SWAP); a session that
 * appends to a base swaps overtook is still an append. */
struct swaps {
	int n, kind_ok, ext_ok, bytes_ok;
	uint64_t ino, ver[4], from[4];
	const char *b;
	size_t len;
};

static void on_change(void *arg, const struct store_change *c)
{
	struct swaps *w = arg;

	if (c->kind != STORE_CHANGE_SWAP || c->ino != w->ino || !c->pv || w->n >= 4) {
		w->kind_ok = 0;
		return;
	}
	w->ver[w->n] = pver_inode(c->pv)->version;
	w->from[w->n] = pver_extends_from(c->pv);
	w->ext_ok &= pver_extends(c->pv) == 1;
	w->bytes_ok &= reads_as(c->pv, w->b, w->len);
	w->n++;
}

static void test_follow(void)
{
	char *b = gen_rows(6 * FRAG + 200);
	uint64_t ino = mkobj("follow.csv"), left, v1;
	struct swaps w = { .kind_ok = 1, .ext_ok = 1, .bytes_ok = 1, .ino = ino, .b = b, .len = 6 * FRAG };
	struct pver *pv, *nv = NULL;
	struct wsess *ws = NULL, *ws2 = NULL;
	int rc;

	(void)store_recompress_pass(st, 1000, &left);     /* earlier tests' leftovers */
	CHECK_EQ(write_at(ino, b, 6 * FRAG, 0, 1), 0, "a 6-fragment object commits staged");
	store_pver_get(st, ino, &pv);
	v1 = pver_inode(pv)->version;
	rc = store_wsess_begin(st, pv, NULL, 0, &ws);
	pver_put(pv);
	CHECK_EQ(rc, 0, "a writer's session begins on it");
	store_set_change_cb(st, on_change, &w);
	CHECK_EQ(store_recompress_pass(st, 1, &left), 1, "a pass of one swaps one fragment");
	CHECK_EQ(store_recompress_pass(st, 1, &left), 1, "and another one");
	store_set_change_cb(st, NULL, NULL);
	CHECK_EQ(w.n, 2, "each swap is announced once");
	CHECK(w.kind_ok, "as STORE_CHANGE_SWAP of the object, with its version");
	CHECK(w.ver[0] == v1 + 1 && w.ver[1] == v1 + 2, "versions %" PRIu64 ", %" PRIu64 " follow %" PRIu64,
	      w.ver[0], w.ver[1], v1);
	CHECK(w.ext_ok, "a swap's version is marked extends");
	CHECK(w.from[0] == v1 && w.from[1] == v1,
	      "it keeps the bytes of every version since %" PRIu64 " (from %" PRIu64 ", %" PRIu64 ")", v1,
	      w.from[0], w.from[1]);
	CHECK(w.bytes_ok, "and reads the same bytes");
	pv = store_pver_cached(st, ino);
	CHECK(pv && pver_inode(pv)->version == v1 + 2 && pver_extends_from(pv) == v1,
	      "the version cache holds the last swap's version, marked");
	pver_put(pv);

	/* the writer's base (v1) was overtaken by swaps only: an append */
	rc = wsess_write(ws, b + 6 * FRAG, 200, 6 * FRAG);
	if (!rc)
		rc = wsess_commit_ref(ws, &nv);
	CHECK_EQ(rc, 0, "the writer appends 200 bytes");
	CHECK(nv && pver_extends(nv) && pver_extends_from(nv) == v1,
	      "its commit is an append of versions %" PRIu64 "..%" PRIu64 " (extends %d from %" PRIu64 ")", v1,
	      v1 + 2, nv ? pver_extends(nv) : -1, nv ? pver_extends_from(nv) : 0);
	CHECK(obj_reads_as(ino, b, 6 * FRAG + 200), "the object reads the appended bytes");
	pver_put(nv);
	nv = NULL;

	/* overtaken by a real commit (an append of its own): not an append */
	store_pver_get(st, ino, &pv);
	rc = store_wsess_begin(st, pv, NULL, 0, &ws2);
	pver_put(pv);
	CHECK_EQ(write_at(ino, "x\n", 2, 6 * FRAG + 200, 0), 0, "another writer appends a row");
	rc = rc ? rc : wsess_write(ws2, "y\n", 2, 6 * FRAG + 200);
	if (!rc)
		rc = wsess_commit_ref(ws2, &nv);
	CHECK_EQ(rc, 0, "a session based before it commits");
	CHECK(nv && !pver_extends(nv) && pver_extends_from(nv) == 0,
	      "and is no append: its base was overtaken by a commit, not a swap");
	pver_put(nv);
	wsess_free(ws2);
	wsess_free(ws);
	(void)store_recompress_pass(st, 1000, &left);
	CHECK_AUDIT("after the followed swaps");
	free(b);
}

/* Shared (a copy) and incompressible fragments. */
static void test_shared_incompressible(void)
{
	char *b = gen_rows(2 * FRAG), *r = malloc(2 * FRAG);
	uint64_t src = mkobj("src.csv"), dst = mkobj("dst.csv"), rnd_ino = mkobj("rnd.bin"), left;
	uint64_t skipped0 = stats().recompress_skipped, id;
	uint32_t staged, lz4, all;
	struct pver *pv, *dp;
	struct wsess *ws = NULL;
	int rc;

	CHECK_EQ(write_at(src, b, 2 * FRAG, 0, 1), 0, "a 2-fragment object commits");
	store_pver_get(st, src, &pv);
	store_pver_get(st, dst, &dp);
	rc = store_wsess_begin(st, dp, NULL, 1, &ws);
	pver_put(dp);
	if (!rc)
		rc = wsess_copy(ws, pv, NULL, 0, 2 * FRAG, 0) == 2 * FRAG ? 0 : -EIO;
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	pver_put(pv);
	CHECK_EQ(rc, 0, "a copy of it commits");
	store_recompress_pass(st, 1000, &left);
	shape(src, &staged, &lz4, &all);
	CHECK(staged == all && left >= 2 * all, "the shared records stay staged (%u of %u, %" PRIu64 " left)",
	      staged, all, left);
	CHECK(stats().recompress_skipped >= skipped0 + 2 * all, "recompress_skipped counts them");
	CHECK(obj_reads_as(dst, b, 2 * FRAG), "the copy reads the same");
	CHECK_AUDIT("after the pass over shared fragments");

	for (size_t i = 0; i < 2 * FRAG; i++)
		r[i] = (char)(rnd() & 0xff);
	CHECK_EQ(write_at(rnd_ino, r, 2 * FRAG, 0, 1), 0, "a random 8 KiB object commits");
	store_pver_get(st, rnd_ino, &pv);
	id = pv->frags[0].id;
	pver_put(pv);
	store_recompress_pass(st, 1000, &left);
	shape(rnd_ino, &staged, &lz4, &all);
	CHECK(staged == 0 && lz4 == 0 && all >= 2, "incompressible fragments are unflagged and stay raw (%u staged, %u lz4 of %u)", staged, lz4, all);
	store_pver_get(st, rnd_ino, &pv);
	CHECK(pv->frags[0].id == id, "under its own id (no new image)");
	pver_put(pv);
	CHECK(obj_reads_as(rnd_ino, r, 2 * FRAG), "and reads the same");
	CHECK_AUDIT("after the incompressible one");
	free(b);
	free(r);
}

/* A process killed at POINT during a pass; the parent reopens. */
static void test_crash(const char *point)
{
	char name[64], *b = gen_rows(5 * FRAG);
	uint64_t ino, left;
	uint32_t staged, lz4, all;
	int status = 0;
	pid_t pid;

	snprintf(name, sizeof(name), "crash-%s.csv", point);
	ino = mkobj(name);
	CHECK_EQ(write_at(ino, b, 5 * FRAG, 0, 1), 0, "%s: a 5-fragment object commits", point);
	store_close(st);
	st = NULL;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (open_store(0))
			_exit(3);
		fault_reset();
		fault_arm(point, 2, FAULT_KILL);     /* the second swap dies */
		store_recompress_pass(st, 1000, NULL);
		_exit(4);                            /* not killed: the point was not reached */
	}
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: the pass was killed there (status %#x)",
	      point, status);
	if (open_store(0)) {
		CHECK(0, "%s: the store reopens", point);
		exit(1);
	}
	ino = lookup(name);
	shape(ino, &staged, &lz4, &all);
	CHECK(all >= 5 && lz4 >= 1 && staged >= 1 && staged + lz4 == all,
	      "%s: one swap committed before, the rest staged (%u lz4, %u staged)", point, lz4, staged);
	CHECK(obj_reads_as(ino, b, 5 * FRAG), "%s: the object reads the same", point);
	CHECK_AUDIT(point);
	store_recompress_pass(st, 1000, &left);
	shape(ino, &staged, &lz4, &all);
	CHECK(staged == 0 && lz4 == all, "%s: a pass after the reopen compresses the rest", point);
	CHECK(obj_reads_as(ino, b, 5 * FRAG), "%s: and it reads the same", point);
	CHECK_AUDIT("after the pass");
	free(b);
}

int main(void)
{
	seed_init();
	log_init("test_recompress", LOG_TO_STDERR, LOG_ERR);
	setenv("PAYLOADFS_STAGE_RAW", "always", 1);
	if (tut_mkdtemp(tmp, sizeof(tmp), "test_recompress")) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/store", tmp);
	snprintf(frags, sizeof(frags), "%s/fragments", dir);
	mkdir(dir, 0700);
	if (open_store(1))
		return 1;
	CHECK_EQ(st->stage_raw, 2, "PAYLOADFS_STAGE_RAW=always: every disk fragment is staged");
	test_swap();
	test_faults();
	test_race();
	test_stale_base();
	test_follow();
	test_shared_incompressible();
	test_crash("recompress_txn");
	test_crash("recompress_release");
	store_close(st);
	tut_rmrf(tmp);
	return tap_done();
}
