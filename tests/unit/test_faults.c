/* test_faults — every named fault point (cache/fault.h) through the store
 * API, on a temporary store with 4 KiB fragments. For each point: the
 * operation that reaches it returns exactly the injected errno (ENOSPC
 * stays ENOSPC, EDQUOT stays EDQUOT), fault_fired() shows the point was
 * reached (so no check passes vacuously), the previous version reads back
 * byte for byte from disk (the cache is dropped first), no image or
 * temporary file is left behind, and the next operation succeeds.
 *
 * Write side: frag_write, frag_fsync, lz4, lmdb_commit,
 * staging_write, staging_read, alloc (memory backend); on whole-object,
 * inline, view, truncate, format-change commits, and on create, mkdir,
 * rename, unlink and setxattr. Read side: frag_read, alloc, lz4_decode,
 * uring_complete (the read fails with the errno), uring_submit and
 * uring_init (the reads fall back to pread and return the right bytes).
 * The io_uring points are skipped (TAP skip) when the kernel has no
 * io_uring. */
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "cache/fault.h"
#include "cache/fcache.h"
#include "index/store.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"
#include "tests/unit/tstore.h"

#ifndef PFS_FAULT_INJECTION
int main(void)
{
	printf("1..0 # skip fault injection not compiled in (FAULT=0)\n");
	return 77;
}
#else

#define ROOT IDX_ROOT_INO
#define FRAG 4096

static char tmp[4096], sdir[4200], fdir[4300], stdir[4300];
static struct store *S;
static int have_uring;

static int open_store_sync(int sync)
{
	struct store_opts o = { .fragment_size = FRAG, .create = 1, .spill_size = 16384, .sync = sync };
	int rc = store_open(sdir, &o, &S);

	if (rc)
		printf("Bail out! store_open %s: %s\n", sdir, store_strerror(rc));
	return rc;
}

static int open_store(void)
{
	return open_store_sync(0);
}

/* ---- content ---- */

struct buf {
	char *p;
	size_t len;
};

/* A CSV of ROWS rows, different per SEED (lz4 shrinks it). */
static struct buf csv(unsigned rows, unsigned seed)
{
	struct buf b = { malloc(64 + (size_t)rows * 48), 0 };

	if (!b.p)
		abort();
	b.len = (size_t)sprintf(b.p, "id,name,value\n");
	for (unsigned i = 0; i < rows; i++)
		b.len += (size_t)sprintf(b.p + b.len, "%u,row-%u-of-seed-%u,%u\n", i, i, seed,
					 (i * 2654435761u) ^ seed);
	return b;
}

static uint64_t mkobj(const char *name)
{
	struct idx_inode in;
	int rc = store_mknod(S, ROOT, name, S_IFREG | 0644, 0, 0, 0, &in);

	if (rc) {
		printf("Bail out! mknod %s: %s\n", name, strerror(-rc));
		exit(1);
	}
	return in.ino;
}

/* A session over INO's current version (TRUNC: starting empty) holding B. */
static struct wsess *session(uint64_t ino, int trunc, const struct buf *b)
{
	struct pver *pv;
	struct wsess *ws = NULL;
	int rc = store_pver_get(S, ino, &pv);

	if (!rc) {
		rc = store_wsess_begin(S, pv, NULL, trunc, &ws);
		pver_put(pv);
	}
	if (!rc && b->len)
		rc = wsess_write(ws, b->p, b->len, 0);
	if (rc) {
		printf("Bail out! session on %" PRIu64 ": %s\n", ino, strerror(-rc));
		exit(1);
	}
	return ws;
}

/* Replace INO's content with B. @return the commit's result. */
static int put(uint64_t ino, const struct buf *b)
{
	struct wsess *ws = session(ino, 1, b);
	int rc = wsess_commit(ws);

	wsess_free(ws);
	return rc;
}

/* A new object NAME holding B (bails out on failure). */
static uint64_t mkobj_holding(const char *name, const struct buf *b)
{
	uint64_t ino = mkobj(name);

	if (put(ino, b)) {
		printf("Bail out! first commit of %s\n", name);
		exit(1);
	}
	return ino;
}

/* Drop INO's fragments from the cache, so the next read comes from disk. */
static void uncache(uint64_t ino)
{
	struct pver *pv;

	if (store_pver_get(S, ino, &pv))
		return;
	for (uint32_t i = 0; i < pver_nfrags(pv); i++)
		fcache_drop(store_cache(S), pver_frag(pv, i)->id);
	pver_put(pv);
}

/* 1 when INO's current version, read cold, is exactly B; else 0 with WHY. */
static int same(uint64_t ino, const struct buf *b, char *why, size_t cap)
{
	struct pver *pv;
	char *got = malloc(b->len + 100);
	ssize_t n = -ENOMEM;
	int rc;

	uncache(ino);
	rc = store_pver_get(S, ino, &pv);
	if (!rc && got) {
		n = pver_read(pv, got, b->len + 100, 0);
		pver_put(pv);
	}
	rc = !rc && n == (ssize_t)b->len && memcmp(got, b->p, b->len) == 0;
	if (!rc)
		snprintf(why, cap, "read %zd bytes, want %zu", n, b->len);
	else
		snprintf(why, cap, "%zu bytes equal", b->len);
	free(got);
	return rc;
}

static uint64_t version_of(uint64_t ino)
{
	struct idx_inode in;

	return store_getattr(S, ino, &in) ? UINT64_MAX : in.version;
}

static long files_in(const char *dir)
{
	return tut_count_files(dir, NULL);
}

/* ---- write side ---- */

/* Commit NEW over INO (holding OLD) with POINT armed at call NTH: the
 * commit returns -ERR, the point fired once, OLD stays (content, version,
 * no file left), and the same session then commits. */
static void commit_fault(const char *what, uint64_t ino, const struct buf *old,
			 const struct buf *new, const char *point, unsigned nth, int err)
{
	struct wsess *ws = session(ino, 1, new);
	uint64_t v0 = version_of(ino);
	long f0;
	char why[128];
	int rc;

	/* images released by earlier commits go after the next flush: let
	 * that happen now, not (by the syncer) between the two counts */
	tst_sync(S);
	f0 = files_in(fdir);
	fault_arm(point, nth, err);
	rc = wsess_commit(ws);
	CHECK_EQ(fault_fired(point), 1, "%s: %s fired", what, point);
	fault_reset();
	CHECK_EQ(rc, -err, "%s: %s:%u:%s -> the commit returns %s", what, point, nth,
		 strerrorname_np(err), strerrorname_np(err));
	CHECK(same(ino, old, why, sizeof(why)), "%s: the old version is intact (%s)", what, why);
	CHECK_EQ(version_of(ino), v0, "%s: version unchanged", what);
	CHECK_EQ(files_in(fdir), f0, "%s: no image or temporary file left", what);
	CHECK(wsess_dirty(ws), "%s: the session keeps its staged bytes", what);
	rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "%s: the next commit succeeds", what);
	CHECK(same(ino, new, why, sizeof(why)), "%s: and holds the new content (%s)", what, why);
	CHECK_EQ(version_of(ino), v0 + 1, "%s: one new version", what);
}

static void test_commit_points(void)
{
	static const struct {
		const char *point;
		unsigned nth;
		int err;
	} cases[] = {
		{ "frag_write", 1, ENOSPC }, { "frag_write", 3, EDQUOT }, { "frag_write", 2, EIO },
		{ "lz4", 1, ENOMEM }, { "lz4", 4, EIO },
		{ "lmdb_commit", 1, ENOSPC }, { "lmdb_commit", 1, EIO },
		{ "staging_read", 1, EIO }, { "staging_read", 3, ENOSPC },
	};
	struct buf a = csv(2000, 1), b = csv(2300, 2), sa = csv(3, 3), sb = csv(5, 4);
	char name[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ino;
		snprintf(name, sizeof(name), "c%zu.csv", i);
		ino = mkobj_holding(name, &a);
		snprintf(name, sizeof(name), "fragments, %s", cases[i].point);
		commit_fault(name, ino, &a, &b, cases[i].point, cases[i].nth, cases[i].err);
	}
	/* frag_fsync: the sync of a commit's new images, before its index
	 * transaction (commit.c invariant 3) */
	{
		static const struct { unsigned nth; int err; } fs[] = { { 1, EIO }, { 2, ENOSPC }, { 3, EDQUOT } };
		store_close(S);
		if (open_store_sync(1))
			exit(1);
		for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
			uint64_t ino;
			snprintf(name, sizeof(name), "s%zu.csv", i);
			ino = mkobj_holding(name, &a);
			commit_fault("fragments (-o sync), frag_fsync", ino, &a, &b, "frag_fsync", fs[i].nth, fs[i].err);
		}
		store_close(S);
		if (open_store())
			exit(1);
	}
	/* a small (inline) object: only the index and the staging log are hit */
	{
		uint64_t ino = mkobj("small.csv");
		put(ino, &sa);
		commit_fault("inline", ino, &sa, &sb, "lmdb_commit", 1, ENOSPC);
		commit_fault("inline", ino, &sb, &sa, "staging_read", 1, EIO);
	}
	/* a storage=memory object: the memory backend's allocation */
	{
		uint64_t ino = mkobj("mem.csv");
		CHECK_EQ(store_setxattr(S, ino, "user.payload.storage", "memory", 6, 0), 0,
			 "mem.csv: storage=memory");
		put(ino, &a);
		commit_fault("memory object", ino, &a, &b, "alloc", 1, ENOMEM);
	}
	free(a.p), free(b.p), free(sa.p), free(sb.p);
}

/* A whole-object truncate and a format change (which re-cuts everything)
 * fail with the errno and change nothing. */
static void test_truncate_and_format(void)
{
	struct buf a = csv(2000, 5);
	uint64_t ino = mkobj("t.csv");
	char why[128], val[32];
	ssize_t n;
	int rc;

	put(ino, &a);
	fault_arm("frag_write", 1, ENOSPC);
	rc = store_truncate(S, ino, NULL, a.len / 2 + 3);
	CHECK_EQ(fault_fired("frag_write"), 1, "truncate: frag_write fired");
	fault_reset();
	CHECK_EQ(rc, -ENOSPC, "truncate with frag_write ENOSPC: -ENOSPC");
	CHECK(same(ino, &a, why, sizeof(why)), "truncate: the old version is intact (%s)", why);
	fault_arm("lmdb_commit", 1, EDQUOT);
	rc = store_setxattr(S, ino, "user.payload.format", "fixed:1", 7, 0);
	CHECK_EQ(fault_fired("lmdb_commit"), 1, "format change: lmdb_commit fired");
	fault_reset();
	CHECK_EQ(rc, -EDQUOT, "format change with lmdb_commit EDQUOT: -EDQUOT");
	n = store_getxattr(S, ino, "user.payload.format", val, sizeof(val));
	CHECK(n == 5 && memcmp(val, "lines", 5) == 0, "format change: the format is still lines");
	CHECK(same(ino, &a, why, sizeof(why)), "format change: the content is intact (%s)", why);
	rc = store_truncate(S, ino, NULL, 100);
	CHECK_EQ(rc, 0, "the next truncate succeeds");
	a.len = 100;
	CHECK(same(ino, &a, why, sizeof(why)), "and the object is its first 100 bytes (%s)", why);
	free(a.p);
}

/* Namespace and xattr changes are one index txn each: lmdb_commit. */
static void test_namespace_points(void)
{
	struct idx_inode in;
	uint64_t ino = mkobj("ns.csv");
	char val[16];
	ssize_t n;
	int rc;

	fault_arm("lmdb_commit", 1, ENOSPC);
	rc = store_mknod(S, ROOT, "new.csv", S_IFREG | 0644, 0, 0, 0, &in);
	CHECK_EQ(fault_fired("lmdb_commit"), 1, "create: lmdb_commit fired");
	fault_reset();
	CHECK_EQ(rc, -ENOSPC, "create with lmdb_commit ENOSPC: -ENOSPC");
	CHECK_EQ(store_lookup(S, ROOT, "new.csv", &in), -ENOENT, "create: the name does not exist");
	CHECK_EQ(store_mknod(S, ROOT, "new.csv", S_IFREG | 0644, 0, 0, 0, &in), 0,
		 "create: the next create succeeds");

	fault_arm("lmdb_commit", 1, EIO);
	rc = store_mkdir(S, ROOT, "d", 0755, 0, 0, &in);
	CHECK_EQ(fault_fired("lmdb_commit"), 1, "mkdir: lmdb_commit fired");
	fault_reset();
	CHECK_EQ(rc, -EIO, "mkdir with lmdb_commit EIO: -EIO");
	CHECK_EQ(store_lookup(S, ROOT, "d", &in), -ENOENT, "mkdir: no directory made");

	fault_arm("lmdb_commit", 1, ENOSPC);
	rc = store_rename(S, ROOT, "ns.csv", ROOT, "new.csv", 0);
	CHECK_EQ(fault_fired("lmdb_commit"), 1, "rename: lmdb_commit fired");
	fault_reset();
	CHECK_EQ(rc, -ENOSPC, "rename over an object with lmdb_commit ENOSPC: -ENOSPC");
	CHECK(store_lookup(S, ROOT, "ns.csv", &in) == 0 && in.ino == ino, "rename: the old name stays");
	CHECK(store_lookup(S, ROOT, "new.csv", &in) == 0 && in.ino != ino, "rename: the target stays");

	fault_arm("lmdb_commit", 1, ENOSPC);
	rc = store_unlink(S, ROOT, "ns.csv");
	CHECK_EQ(fault_fired("lmdb_commit"), 1, "unlink: lmdb_commit fired");
	fault_reset();
	CHECK_EQ(rc, -ENOSPC, "unlink with lmdb_commit ENOSPC: -ENOSPC");
	CHECK_EQ(store_lookup(S, ROOT, "ns.csv", &in), 0, "unlink: the name stays");

	CHECK_EQ(store_setxattr(S, ino, "user.k", "old", 3, 0), 0, "setxattr user.k=old");
	fault_arm("lmdb_commit", 1, EDQUOT);
	rc = store_setxattr(S, ino, "user.k", "new", 3, 0);
	CHECK_EQ(fault_fired("lmdb_commit"), 1, "setxattr: lmdb_commit fired");
	fault_reset();
	CHECK_EQ(rc, -EDQUOT, "setxattr with lmdb_commit EDQUOT: -EDQUOT");
	n = store_getxattr(S, ino, "user.k", val, sizeof(val));
	CHECK(n == 3 && memcmp(val, "old", 3) == 0, "setxattr: the old value stays");
	CHECK_EQ(store_setxattr(S, ino, "user.k", "new", 3, 0), 0, "setxattr: the next one succeeds");
}

/* staging_write fails the write itself; staging_read a writer's read. */
static void test_staging_points(void)
{
	struct buf a = csv(400, 6), big = csv(3000, 7);
	uint64_t ino = mkobj("s.csv");
	struct wsess *ws;
	char got[64], why[128];
	ssize_t n;
	int rc;

	put(ino, &a);
	ws = session(ino, 0, &(struct buf){ "HEAD", 4 });
	fault_arm("staging_write", 1, ENOSPC);
	rc = wsess_write(ws, "XXXX", 4, 0);
	CHECK_EQ(fault_fired("staging_write"), 1, "write: staging_write fired");
	fault_reset();
	CHECK_EQ(rc, -ENOSPC, "a write with staging_write ENOSPC: -ENOSPC");
	n = wsess_read(ws, got, 4, 0);
	CHECK(n == 4 && memcmp(got, "HEAD", 4) == 0, "the failed write changed nothing");
	/* past spill_size the log is a file in staging/ */
	rc = wsess_write(ws, big.p, big.len, 0);
	CHECK(rc == 0 && files_in(stdir) == 1, "a large write spills to staging/");
	fault_arm("staging_write", 1, EDQUOT);
	rc = wsess_write(ws, "YYYY", 4, big.len);
	CHECK_EQ(fault_fired("staging_write"), 1, "spilled write: staging_write fired");
	fault_reset();
	CHECK(rc == -EDQUOT && wsess_size(ws) == big.len, "a spilled extending write: -EDQUOT, size unchanged");
	fault_arm("staging_read", 1, EIO);
	n = wsess_read(ws, got, 16, 0);
	CHECK_EQ(fault_fired("staging_read"), 1, "writer's read: staging_read fired");
	fault_reset();
	CHECK_EQ(n, -EIO, "a writer's read with staging_read EIO: -EIO");
	n = wsess_read(ws, got, 16, 0);
	CHECK(n == 16 && memcmp(got, big.p, 16) == 0, "the next read returns the staged bytes");
	CHECK(same(ino, &a, why, sizeof(why)), "the committed version is untouched (%s)", why);
	rc = wsess_commit(ws);
	wsess_free(ws);
	CHECK_EQ(rc, 0, "the session commits");
	CHECK(same(ino, &big, why, sizeof(why)), "the object holds what was written (%s)", why);
	CHECK_EQ(files_in(stdir), 0, "no staging file is left");
	free(a.p), free(big.p);
}

/* ---- read side ---- */

/* Read INO (holding A) cold with POINT armed: the read returns -ERR (or,
 * with ERR 0, the right bytes), POINT fired once, the next read is A. */
static void read_fault(uint64_t ino, const struct buf *a, const char *point, int err, int want)
{
	struct pver *pv;
	char *got = malloc(a->len), why[128];
	ssize_t n = -1;

	uncache(ino);
	if (store_pver_get(S, ino, &pv) == 0) {
		fault_arm(point, 1, err);
		n = pver_read(pv, got, a->len, 0);
		CHECK_EQ(fault_fired(point), 1, "read: %s fired", point);
		fault_reset();
		pver_put(pv);
	}
	if (want)
		CHECK_EQ(n, -want, "read with %s %s: %s", point, strerrorname_np(err), strerrorname_np(want));
	else
		CHECK(n == (ssize_t)a->len && memcmp(got, a->p, a->len) == 0,
		      "read with %s %s: recovered, the right %zu bytes", point, strerrorname_np(err), a->len);
	CHECK(same(ino, a, why, sizeof(why)), "after %s: the next read is right (%s)", point, why);
	free(got);
}

static void test_read_points(void)
{
	struct buf a = csv(2000, 8);
	uint64_t ino = mkobj("r.csv");
	struct pver *pv;
	int lz4 = 0;

	put(ino, &a);
	store_pver_get(S, ino, &pv);
	for (uint32_t i = 0; i < pver_nfrags(pv); i++)
		lz4 += pver_frag(pv, i)->codec == 1;
	CHECK(pver_nfrags(pv) > 4 && lz4 == (int)pver_nfrags(pv),
	      "r.csv: %u fragments, all lz4", pver_nfrags(pv));
	pver_put(pv);
	read_fault(ino, &a, "frag_read", EIO, EIO);
	read_fault(ino, &a, "frag_read", ENOMEM, ENOMEM);
	read_fault(ino, &a, "alloc", ENOMEM, ENOMEM);
	read_fault(ino, &a, "lz4_decode", EIO, EIO);
	if (have_uring) {
		read_fault(ino, &a, "uring_complete", EIO, EIO);
		/* the last: a failed submission gives up the ring for good */
		read_fault(ino, &a, "uring_submit", EAGAIN, 0);
	} else {
		printf("ok %d - # skip uring_complete, uring_submit: no io_uring (kernel, or PAYLOADFS_NO_URING)\n",
		       ++tap_n);
	}
	free(a.p);
}

/* uring_init at open: the store reads with pread. */
static void test_uring_init(void)
{
	struct buf a = csv(2000, 9);
	uint64_t ino = mkobj("u.csv");
	char why[128];

	put(ino, &a);
	store_close(S);
	fault_arm("uring_init", 1, ENOSYS);
	if (open_store())
		exit(1);
	CHECK_EQ(fault_fired("uring_init"), 1, "open: uring_init fired");
	fault_reset();
	CHECK(same(ino, &a, why, sizeof(why)), "without a ring every read still works (%s)", why);
	free(a.p);
}

static int probe_uring(void)
{
	struct io_uring r;

	if (io_uring_queue_init(4, &r, 0) != 0)
		return 0;
	io_uring_queue_exit(&r);
	return 1;
}

int main(void)
{
	if (tut_mkdtemp(tmp, sizeof(tmp), "faults")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(sdir, sizeof(sdir), "%s/store", tmp);
	snprintf(fdir, sizeof(fdir), "%s/fragments", sdir);
	snprintf(stdir, sizeof(stdir), "%s/staging", sdir);
	mkdir(sdir, 0700);
	/* PAYLOADFS_NO_URING (valgrind): the store reads with pread */
	{
		const char *nu = getenv("PAYLOADFS_NO_URING");
		have_uring = probe_uring() && !(nu && *nu && strcmp(nu, "0") != 0);
	}
	if (open_store())
		return 1;
	test_commit_points();
	test_truncate_and_format();
	test_namespace_points();
	test_staging_points();
	test_read_points();
	test_uring_init();
	store_close(S);
	tut_rmrf(tmp);
	return tap_done();
}
#endif
