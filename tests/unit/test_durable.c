/* test_durable — when commits reach the disk (index/durable.c):
 *  - by default the index runs without flushing meta pages; store_sync()
 *    flushes, concurrent callers share flushes, and the syncer flushes by
 *    itself within sync_ms after a commit;
 *  - an image whose last reference went is deleted only after the next
 *    flush (a later commit that wrote something, or store_sync), by the
 *    reaper thread: invariants (1) and (3);
 *  - a flush that began before the releasing commit never counts for it,
 *    however late it returns, and an empty txn never counts (1);
 *  - a failed final flush at close deletes nothing queued; the next
 *    mount's sweep removes those images and only those (5);
 *  - after a clean close a mount does not list the images (store.c (S2)),
 *    after a crash it does; the sweep never deletes an image that a
 *    fragment record names, even when its refs record is missing (4);
 *  - a daemon that dies (a child that _exits without closing) loses no
 *    commit: the kernel kept every page, the reopened store has them all
 *    and its sweep removes the images queued for deletion;
 *  - fault point lmdb_sync fails store_sync with its errno and the next
 *    one works;
 *  - with opts.sync images go at once and store_sync is a no-op. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/log.h"
#include "index/store.h"
#include "index/store_int.h"
#include "tests/unit/tap.h"
#include "tests/unit/tstore.h"
#include "tests/unit/tutil.h"

#define ROOT IDX_ROOT_INO
#define FRAG 4096

static char tmp[4096], sdir[4500], fragdir[4600];

static struct store *open_store(int sync, unsigned sync_ms)
{
	struct store_opts o = { .fragment_size = FRAG, .create = 1, .sweep = 1, .sync = sync,
				.sync_ms = sync_ms };
	struct store *s = NULL;
	int rc = store_open(sdir, &o, &s);

	if (rc)
		printf("# store_open: %s\n", store_strerror(rc));
	return s;
}

static int64_t mk(struct store *st, const char *name)
{
	struct idx_inode in;
	int rc = store_mknod(st, ROOT, name, S_IFREG | 0644, 0, 1000, 1000, &in);

	return rc ? rc : (int64_t)in.ino;
}

static int holds(struct store *st, const char *name, const void *data, size_t len)
{
	struct idx_inode in;
	struct pver *pv;
	char *buf;
	ssize_t n;
	int ok;

	if (store_lookup(st, ROOT, name, &in) || store_pver_get(st, in.ino, &pv))
		return 0;
	buf = malloc(len + 16);
	n = pver_read(pv, buf, len + 16, 0);
	ok = n == (ssize_t)len && memcmp(buf, data, len) == 0;
	free(buf);
	pver_put(pv);
	return ok;
}

static char *rows(size_t n, int seed, size_t *len)
{
	char *b = malloc(n * 32 + 1);
	size_t at = 0;

	for (size_t i = 0; i < n; i++)
		at += (size_t)sprintf(b + at, "%zu,%d,row-%zu\n", i, seed, i * (size_t)seed);
	*len = at;
	return b;
}

static long nimages(void)
{
	return tut_count_files(fragdir, ".frag");
}

static uint64_t syncs(struct store *st)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s.syncs;
}

struct syncer { struct store *st; int rc; };

static void *sync_main(void *arg)
{
	struct syncer *s = arg;

	for (int i = 0; i < 5 && !s->rc; i++)
		s->rc = store_sync(s->st);
	return NULL;
}

static void test_flushes(void)
{
	struct store *st = open_store(0, 600000);
	struct syncer sy[4];
	pthread_t t[4];
	size_t len;
	char *a = rows(3000, 1, &len), *b;
	int64_t ino, other;
	long before, after_rewrite;
	uint64_t s0;
	int ok = 1;

	CHECK(st != NULL, "open a store (meta pages flushed lazily)");
	ino = mk(st, "a.csv");
	CHECK(ino > 0 && tst_put_data(st, (uint64_t)ino, a, len) == 0, "a.csv: %zu bytes committed", len);
	s0 = syncs(st);
	CHECK_EQ(store_sync(st), 0, "store_sync");
	CHECK_EQ(syncs(st), s0 + 1, "... one index flush");
	for (int i = 0; i < 4; i++) {
		sy[i] = (struct syncer){ st, 0 };
		pthread_create(&t[i], NULL, sync_main, &sy[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok &= sy[i].rc == 0;
	}
	CHECK(ok, "4 threads x 5 store_sync: all 0 (%llu flushes)", (unsigned long long)(syncs(st) - s0 - 1));

	/* invariant (1): a released image waits for the next flush */
	before = nimages();
	b = rows(3000, 2, &len);
	CHECK_EQ(tst_put_data(st, (uint64_t)ino, b, len), 0, "rewrite a.csv");
	after_rewrite = nimages();
	CHECK(after_rewrite > before, "the old images stay until a flush (%ld > %ld)", after_rewrite, before);
	other = mk(st, "other");      /* a later commit flushes the rewrite's meta page */
	CHECK(other > 0, "another commit (a create)");
	store_reap_wait(st);
	CHECK(nimages() < after_rewrite, "the next commit's flush let the old images go (%ld < %ld)",
	      nimages(), after_rewrite);
	CHECK(holds(st, "a.csv", b, len), "a.csv reads its new bytes");
	free(a);
	a = rows(2000, 3, &len);
	CHECK_EQ(tst_put_data(st, (uint64_t)ino, a, len), 0, "rewrite again");
	before = nimages();
	CHECK_EQ(store_sync(st), 0, "store_sync");
	store_reap_wait(st);
	CHECK(nimages() < before, "store_sync let the released images go (%ld < %ld)", nimages(), before);
	store_close(st);
	free(a);
	free(b);

	/* the syncer flushes by itself */
	st = open_store(0, 50);
	s0 = st ? syncs(st) : 0;
	ino = st ? mk(st, "timed") : -1;
	for (int i = 0; i < 200 && st && syncs(st) == s0; i++)
		usleep(10000);
	CHECK(ino > 0 && syncs(st) > s0, "the syncer flushed a commit within sync_ms (50 ms)");
	/* That flush may have covered only the mount's sweep txn, with the
	 * create committed while it ran (valgrind is slow enough): the next
	 * tick then flushes once more. Wait until no flush came for 3 ticks
	 * (bounded: a syncer flushing at every tick never settles). */
	uint64_t s1 = syncs(st);
	int settled = 0;
	for (int i = 0; i < 20 && !settled; i++) {
		uint64_t now;

		usleep(150000);
		now = syncs(st);
		settled = now == s1;
		s1 = now;
	}
	CHECK(settled, "... the syncer settles once every commit is flushed (%llu flushes)",
	      (unsigned long long)(s1 - s0));
	usleep(300000);
	CHECK_EQ(syncs(st), s1, "... and does not flush again while nothing changes");
	store_close(st);
}

static void test_crash(void)
{
	size_t la, lb, la2;
	char *a = rows(2000, 4, &la), *b = rows(5000, 5, &lb), *a2 = rows(1000, 6, &la2);
	struct store *st;
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		st = open_store(0, 600000);
		int64_t ia = st ? mk(st, "pa.csv") : -1, ib;
		if (ia < 0 || tst_put_data(st, (uint64_t)ia, a, la))
			_exit(2);
		ib = mk(st, "pb.csv");
		if (ib < 0 || tst_put_data(st, (uint64_t)ib, b, lb) || tst_put_data(st, (uint64_t)ia, a2, la2))
			_exit(3);
		/* no store_close, no flush: a crash (SIGKILL, not _exit: under
		 * valgrind an exit would run its leak check on what the crash
		 * leaves) */
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "the child committed and died without a flush (exit %d)",
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	st = open_store(0, 600000);
	CHECK(st && holds(st, "pb.csv", b, lb) && holds(st, "pa.csv", a2, la2),
	      "every commit of the dead daemon is there (the kernel kept its pages)");
	CHECK(st && store_sync(st) == 0, "flush");
	store_close(st);
	free(a);
	free(b);
	free(a2);
}

static void test_faults(void)
{
#ifdef PFS_FAULT_INJECTION
	struct store *st = open_store(0, 600000);
	struct store_stats s0, s1;

	store_get_stats(st, &s0);
	log_init("test_durable", LOG_TO_STDERR, LOG_CRIT);
	fault_arm("lmdb_sync", 1, EIO);
	CHECK_EQ(store_sync(st), -EIO, "lmdb_sync EIO: store_sync fails with EIO");
	log_init("test_durable", LOG_TO_STDERR, LOG_INFO);
	store_get_stats(st, &s1);
	CHECK_EQ(s1.sync_failures - s0.sync_failures, 1, "the failure is counted");
	CHECK_EQ(store_sync(st), 0, "the next store_sync works");
	store_close(st);
	fault_reset();
#else
	printf("ok %d - # skip fault injection not compiled in\n", ++tap_n);
#endif
}

static void test_sync_mode(void)
{
	struct store *st;
	size_t len;
	char *a = rows(3000, 7, &len);
	int64_t ino;
	long before;

	st = open_store(1, 0);
	CHECK(st != NULL, "open with opts.sync");
	ino = mk(st, "s.csv");
	CHECK(ino > 0 && tst_put_data(st, (uint64_t)ino, a, len) == 0, "commit");
	before = nimages();
	CHECK_EQ(tst_put_data(st, (uint64_t)ino, a, len / 2), 0, "rewrite to half");
	store_reap_wait(st);
	CHECK(nimages() < before, "the old version's images went at once (%ld < %ld)", nimages(), before);
	CHECK_EQ(store_sync(st), 0, "store_sync is a no-op ...");
	CHECK_EQ(syncs(st), 0, "... that flushes nothing");
	store_close(st);
	free(a);
}

/* A hook on lmdb_sync that holds the flushing thread until released. */
struct gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	int entered, open;
};

static void gate_hook(void *arg)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->m);
	g->entered++;
	pthread_cond_broadcast(&g->c);
	while (!g->open)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

struct bg_sync { struct store *st; int rc; };

static void *bg_sync_main(void *arg)
{
	struct bg_sync *b = arg;

	b->rc = store_sync(b->st);
	return NULL;
}

/* Invariant (1b): a flush that began before the release does not count. */
static void test_early_flush(void)
{
#ifdef PFS_FAULT_INJECTION
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct bg_sync b;
	struct store *st = open_store(0, 600000);
	size_t la, lb;
	char *a = rows(3000, 11, &la), *bb = rows(3000, 12, &lb);
	int64_t ino = st ? mk(st, "early.csv") : -1;
	long before, during;
	pthread_t t;

	CHECK(ino > 0 && tst_put_data(st, (uint64_t)ino, a, la) == 0 && tst_sync(st) == 0,
	      "early.csv committed and flushed");
	before = nimages();
	fault_hook("lmdb_sync", gate_hook, &g);
	b = (struct bg_sync){ st, -1 };
	pthread_create(&t, NULL, bg_sync_main, &b);
	pthread_mutex_lock(&g.m);
	while (!g.entered)
		pthread_cond_wait(&g.c, &g.m);
	pthread_mutex_unlock(&g.m);
	/* the flush has begun; now a commit releases the old images */
	CHECK_EQ(tst_put_data(st, (uint64_t)ino, bb, lb), 0, "a rewrite commits while a flush is under way");
	during = nimages();
	pthread_mutex_lock(&g.m);
	g.open = 1;
	pthread_cond_broadcast(&g.c);
	pthread_mutex_unlock(&g.m);
	pthread_join(t, NULL);
	fault_reset();
	CHECK_EQ(b.rc, 0, "the flush that began before the rewrite returns after it");
	store_reap_wait(st);
	CHECK(nimages() == during && during > before,
	      "... and does not let the rewrite's released images go (%ld images, %ld before the rewrite)",
	      nimages(), before);
	CHECK_EQ(tst_sync(st), 0, "a flush that begins after the rewrite");
	CHECK(nimages() < during, "... lets them go (%ld < %ld)", nimages(), during);
	CHECK(holds(st, "early.csv", bb, lb), "early.csv reads its new bytes");
	store_close(st);
	free(a);
	free(bb);
#else
	printf("ok %d - # skip fault injection not compiled in\n", ++tap_n);
#endif
}

/* Invariant (1): an empty txn is no flush. */
static void test_empty_txn(void)
{
	struct store *st = open_store(0, 600000);
	struct idx_txn *t;
	size_t la;
	char *a = rows(3000, 13, &la);
	int64_t ino = st ? mk(st, "empty.csv") : -1, other;
	long during;

	CHECK(ino > 0 && tst_put_data(st, (uint64_t)ino, a, la) == 0 && tst_sync(st) == 0,
	      "empty.csv committed and flushed");
	CHECK_EQ(tst_put_data(st, (uint64_t)ino, a, la / 2), 0, "rewrite: its old images are released");
	during = nimages();
	CHECK_EQ(store_wbegin(st, &t), 0, "a write txn ...");
	CHECK_EQ(store_wend(st, t, 0), 0, "... committed without a change (LMDB writes nothing)");
	store_reap_wait(st);
	CHECK_EQ(nimages(), during, "the empty txn did not let the released images go");
	other = mk(st, "other-empty");
	store_reap_wait(st);
	CHECK(other > 0 && nimages() < during, "a txn that wrote something did (%ld < %ld)", nimages(),
	      during);
	store_close(st);
	free(a);
}

static pthread_t deleter;
static int deleted_off_thread = 1, deletions;

static void note_deleter(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&deletions, 1, __ATOMIC_RELAXED);
	if (pthread_equal(pthread_self(), deleter))
		__atomic_store_n(&deleted_off_thread, 0, __ATOMIC_RELAXED);
}

/* Invariants (3) and (5): the reaper deletes; a failed final flush
 * deletes nothing and leaves the images to the next mount's sweep. */
static void test_reaper_and_close(void)
{
#ifdef PFS_FAULT_INJECTION
	struct store *st = open_store(0, 600000);
	size_t la;
	char *a = rows(3000, 14, &la);
	int64_t ino = st ? mk(st, "r.csv") : -1;
	long during, kept;

	CHECK(ino > 0 && tst_put_data(st, (uint64_t)ino, a, la) == 0 && tst_sync(st) == 0, "r.csv committed");
	deleter = pthread_self();
	fault_hook("frag_release", note_deleter, NULL);
	CHECK_EQ(tst_put_data(st, (uint64_t)ino, a, la / 3), 0, "rewrite");
	CHECK_EQ(tst_sync(st), 0, "flush");
	fault_reset();
	CHECK(deletions > 0 && deleted_off_thread,
	      "%d released images were deleted, none on the thread that committed or flushed", deletions);
	CHECK_EQ(tst_put_data(st, (uint64_t)ino, a, la), 0, "rewrite again: a third of the images released");
	during = nimages();
	log_init("test_durable", LOG_TO_STDERR, LOG_CRIT);
	fault_arm("lmdb_sync", 1, EIO);
	store_close(st);      /* the final flush fails */
	fault_reset();
	log_init("test_durable", LOG_TO_STDERR, LOG_INFO);
	kept = nimages();
	CHECK_EQ(kept, during, "a failed final flush deleted none of the queued images (%ld)", kept);
	st = open_store(0, 600000);
	CHECK(st && nimages() < kept, "the next mount's sweep removed them (%ld < %ld)", nimages(), kept);
	CHECK(st && holds(st, "r.csv", a, la), "r.csv is whole");
	store_close(st);
	free(a);
#else
	printf("ok %d - # skip fault injection not compiled in\n", ++tap_n);
#endif
}

#define STRAY 0xfeed00ull

/* Plant an image file no record names (what a crash can leave). */
static void plant_stray(uint64_t id)
{
	char path[4800];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%02x/%016llx.frag", fragdir, (unsigned)(id & 0xff),
		 (unsigned long long)id);
	fp = fopen(path, "w");
	if (fp) {
		fputs("junk", fp);
		fclose(fp);
	}
}

static int stray_there(uint64_t id)
{
	char path[4800];

	snprintf(path, sizeof(path), "%s/%02x/%016llx.frag", fragdir, (unsigned)(id & 0xff),
		 (unsigned long long)id);
	return access(path, F_OK) == 0;
}

/* A child opens the store, commits a create, and dies without closing. */
static int crash_child(const char *name)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		struct store *st = open_store(0, 600000);
		if (!st || mk(st, name) < 0)
			_exit(2);
		kill(getpid(), SIGKILL);
		_exit(3);
	}
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* store.c (S2): a clean close spares the next mount the image listing. */
static void test_clean_marker(void)
{
	struct store *st = open_store(0, 600000);

	CHECK(st != NULL, "open (a full sweep: the store was not closed cleanly before)");
	store_close(st);
	plant_stray(STRAY);
	st = open_store(0, 600000);
	CHECK(st && stray_there(STRAY),
	      "after a clean close the mount's sweep does not list the images (the stray stays)");
	store_close(st);
	CHECK(crash_child("crashed"), "a daemon opens the store and dies without closing");
	st = open_store(0, 600000);
	CHECK(st && !stray_there(STRAY), "after that crash the mount's sweep lists the images (the stray went)");
	store_close(st);
	plant_stray(STRAY + 1);
	/* a failed deletion leaves the store unclean: the sweep must run */
	st = open_store(0, 600000);
	store_note_leftover(st);
	store_close(st);
	st = open_store(0, 600000);
	CHECK(st && !stray_there(STRAY + 1), "a close that left something behind is not clean: full sweep");
	store_close(st);
}

/* store.c (4): a fragment record without its refs record is kept. */
static void test_sweep_divergence(void)
{
	struct store *st = open_store(0, 600000);
	struct idx_txn *t;
	struct pver *pv = NULL;
	struct idx_inode in;
	size_t la;
	char *a = rows(3000, 15, &la);
	int64_t ino = st ? mk(st, "div.csv") : -1;
	uint64_t id = 0;
	uint32_t now = 1;
	int rc;

	CHECK(ino > 0 && tst_put_data(st, (uint64_t)ino, a, la) == 0, "div.csv committed");
	rc = store_pver_get(st, (uint64_t)ino, &pv);
	if (!rc && pver_nfrags(pv) > 1)
		id = pver_frag(pv, 1)->id;
	pver_put(pv);
	CHECK(id != 0, "its second fragment: %016llx", (unsigned long long)id);
	rc = store_wbegin(st, &t);
	if (!rc)
		rc = idx_ref_add(t, id, -1, &now);
	rc = rc ? rc : store_wend(st, t, 0);
	CHECK(rc == 0 && now == 0, "its refs record deleted behind the store's back");
	store_close(st);
	CHECK(crash_child("crashed2"), "a crash: the next mount sweeps fully");
	log_init("test_durable", LOG_TO_STDERR, LOG_CRIT);
	st = open_store(0, 600000);
	log_init("test_durable", LOG_TO_STDERR, LOG_INFO);
	CHECK(st && stray_there(id), "the sweep kept the image a fragment record names");
	CHECK(st && holds(st, "div.csv", a, la), "div.csv reads whole");
	CHECK(st && store_lookup(st, IDX_ROOT_INO, "div.csv", &in) == 0, "and is still there");
	store_close(st);
	free(a);
}

int main(void)
{
	if (tut_mkdtemp(tmp, sizeof(tmp), "durable")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(sdir, sizeof(sdir), "%s/store", tmp);
	snprintf(fragdir, sizeof(fragdir), "%s/fragments", sdir);
	mkdir(sdir, 0700);
	test_flushes();
	test_crash();
	test_faults();
	test_sync_mode();
	test_early_flush();
	test_empty_txn();
	test_reaper_and_close();
	test_clean_marker();
	test_sweep_divergence();
	tut_rmrf(tmp);
	return tap_done();
}
