/* test_gcommit_local — group commit on a LOCAL store (index/gcommit.c: the
 * same rounds as a RADOS writer's, whose "append" is the index's one
 * flush):
 *  - K threads committing at once: while one round's LMDB commit is held
 *    in flight (a hook on the fault point lmdb_commit blocks it), the other
 *    K-1 committers queue; they then share ONE LMDB write txn and so one
 *    fdatasync: the index committed 2 write txns for K commits
 *    (store_stats.index_txns, the `.stats` figure "index_txns"), every
 *    commit returned 0 and every new version is in the index, and still
 *    there after the store is closed and opened again;
 *  - a member whose operation fails in its child txn (a create of a name
 *    that exists: EEXIST) fails alone: the others of its round commit, in
 *    the same 2 txns, and its object is as it was;
 *  - a leader whose own operation fails (fault point commit_member on the
 *    first member): it alone fails, the members queued behind it start over
 *    and commit;
 *  - with PAYLOADFS_GROUP_COMMIT=0 the same K commits cost K txns (the
 *    counter counts what it says);
 * and cold version loads on a local store (index/pver.c (7)):
 *  - a load of a version not in the version cache returns while another
 *    object's commit is held in its LMDB commit (it takes no commit_lock);
 *  - a commit that replaces the object's data and has its old image
 *    deleted between the load's read txn and its pins (a hook on the fault
 *    point pver_read runs it): the load starts over and returns the new
 *    version, whose bytes read back; the version cache then serves it. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/fault.h"
#include "index/idx.h"
#include "index/store.h"
#include "tests/unit/tap.h"
#include "tests/unit/tstore.h"
#include "tests/unit/tutil.h"

#define K 8
#define OBJ_LEN 1024

static char tmp[4096];

#include "tests/unit/tgcommit.h"

/* ---- stores ---- */

static struct store *open_local(const char *sub)
{
	struct store_opts o = { .create = 1 };
	struct store *st = NULL;
	char dir[4300];
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
	mkdir(dir, 0700);
	rc = store_open(dir, &o, &st);
	if (rc)
		printf("# store_open %s: %s\n", dir, store_strerror(rc));
	return rc ? NULL : st;
}

/* Run K jobs: J[0] first, held in its LMDB commit; the others queue
 * behind it; then let go. */
static void run_held(struct store *st, struct job *j, const char *what)
{
	CHECK_EQ(fault_hook("lmdb_commit", hold_hook, NULL), 0, "%s: a hook on lmdb_commit", what);
	set_hold(1);
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "%s: the first commit's LMDB commit is in flight (held)", what);
	for (int i = 1; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	CHECK(wait_waiting(st, K - 1), "%s: the other %d committers wait for the next round", what, K - 1);
	set_hold(0);
	for (int i = 0; i < K; i++)
		pthread_join(j[i].th, NULL);
	fault_reset();
}

static void test_batch(void)
{
	struct store *w = open_local("batch");
	struct job j[K];
	uint64_t inos[K], v0[K];
	struct store_stats s0, s1;
	int ok = 1, all0 = 1;

	if (!w) {
		CHECK(0, "batch: a local store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "batch: %d objects of %d bytes committed", K, OBJ_LEN);
	for (int i = 0; i < K; i++)
		v0[i] = idx_version(w, inos[i]);
	store_get_stats(w, &s0);
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 2 };
	run_held(w, j, "batch");
	for (int i = 0; i < K; i++)
		all0 &= j[i].rc == 0;
	CHECK(all0, "batch: all %d commits returned 0", K);
	store_get_stats(w, &s1);
	CHECK(s1.index_txns - s0.index_txns == 2,
	      "batch: %d commits cost 2 LMDB write txns (so 2 flushes), not %d (index_txns %" PRIu64 ")", K, K,
	      s1.index_txns - s0.index_txns);
	CHECK(s1.log_rounds - s0.log_rounds == 2 && s1.log_round_members - s0.log_round_members == K,
	      "batch: 2 rounds carried %d commits (stats: %" PRIu64 " rounds, %" PRIu64 " commits)", K,
	      s1.log_rounds - s0.log_rounds, s1.log_round_members - s0.log_round_members);
	for (int i = 0; i < K; i++)
		ok &= idx_version(w, inos[i]) == v0[i] + 1 && holds(w, inos[i], i, 2);
	CHECK(ok, "batch: every new version is in the index and served");

	/* a member that fails in its child fails alone */
	store_get_stats(w, &s0);
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 3, .mknod_existing = i == K / 2 };
	run_held(w, j, "failing member");
	all0 = 1;
	for (int i = 0; i < K; i++)
		if (i != K / 2)
			all0 &= j[i].rc == 0;
	CHECK_EQ(j[K / 2].rc, -EEXIST, "failing member: the create fails with EEXIST");
	CHECK(all0, "failing member: the %d others of its round commit", K - 2);
	store_get_stats(w, &s1);
	CHECK(s1.index_txns - s0.index_txns == 2, "failing member: still 2 LMDB write txns (%" PRIu64 ")",
	      s1.index_txns - s0.index_txns);
	ok = 1;
	for (int i = 0; i < K; i++)
		if (i != K / 2)
			ok &= idx_version(w, inos[i]) == v0[i] + 2 && holds(w, inos[i], i, 3);
	ok &= idx_version(w, inos[K / 2]) == v0[K / 2] + 1 && holds(w, inos[K / 2], K / 2, 2);
	CHECK(ok, "failing member: the others' new versions are in; its object is as it was");

	/* a leader that fails: the first member of a round fails as it
	 * begins (commit_member, its first hit); the queued ones go on */
	store_get_stats(w, &s0);
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 4 };
	CHECK_EQ(fault_arm("commit_member", 1, EIO), 0, "failing leader: commit_member fails once");
	for (int i = 0; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	int failed = 0;
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		failed += j[i].rc != 0;
		ok = j[i].rc == 0 ? holds(w, inos[i], i, 4) : j[i].rc == -EIO && holds(w, inos[i], i, i == K / 2 ? 2 : 3);
		CHECK(ok, "failing leader: commit %d returned %d and its object holds what that says", i, j[i].rc);
	}
	CHECK_EQ(fault_fired("commit_member"), 1, "failing leader: the fault fired once");
	fault_reset();
	CHECK_EQ(failed, 1, "failing leader: exactly one commit failed");
	store_get_stats(w, &s1);
	CHECK(s1.index_txns - s0.index_txns <= (uint64_t)(K - 1),
	      "failing leader: %d commits in at most %d txns (%" PRIu64 ")", K - 1, K - 1,
	      s1.index_txns - s0.index_txns);

	/* durable: the store opened again holds the same */
	int gen[K];
	for (int i = 0; i < K; i++)
		gen[i] = j[i].rc == 0 ? 4 : i == K / 2 ? 2 : 3;
	store_close(w);
	w = open_local("batch");
	ok = w != NULL;
	for (int i = 0; w && i < K; i++)
		ok &= holds(w, inos[i], i, gen[i]);
	CHECK(ok, "reopen: every committed version is there after close and open");
	store_close(w);
}

static void test_off(void)
{
	struct store *w;
	struct job j[K];
	uint64_t inos[K];
	struct store_stats s0, s1;
	int all0 = 1;

	setenv("PAYLOADFS_GROUP_COMMIT", "0", 1);
	w = open_local("off");
	unsetenv("PAYLOADFS_GROUP_COMMIT");
	if (!w) {
		CHECK(0, "off: a local store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "off: %d objects", K);
	store_get_stats(w, &s0);
	for (int i = 0; i < K; i++) {
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 2 };
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	}
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		all0 &= j[i].rc == 0;
	}
	CHECK(all0, "off: all %d commits returned 0", K);
	store_get_stats(w, &s1);
	CHECK(s1.index_txns - s0.index_txns == K && s1.log_rounds == s0.log_rounds,
	      "off: PAYLOADFS_GROUP_COMMIT=0: %d commits are %d txns, no rounds (%" PRIu64 " txns)", K, K,
	      s1.index_txns - s0.index_txns);
	store_close(w);
}

/* ---- cold loads (pver.c (7)) ---- */

struct loadjob {
	struct store *st;
	uint64_t ino;
	int done, rc, obj, gen, holds;
};

static void *load_run(void *arg)
{
	struct loadjob *l = arg;

	l->holds = holds(l->st, l->ino, l->obj, l->gen);
	__atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_cold_open(void)
{
	struct store *w = open_local("cold");
	struct job j[1];
	struct loadjob l;
	uint64_t inos[K];
	pthread_t th;
	double t0;

	if (!w) {
		CHECK(0, "cold: a local store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "cold: %d objects", K);
	store_close(w);
	w = open_local("cold");          /* an empty version cache */
	if (!w) {
		CHECK(0, "cold: opened again");
		return;
	}
	CHECK_EQ(fault_hook("lmdb_commit", hold_hook, NULL), 0, "cold: a hook on lmdb_commit");
	set_hold(1);
	j[0] = (struct job){ .st = w, .ino = inos[0], .obj = 0, .gen = 2 };
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "cold: a commit of object 0 is held in its LMDB commit");
	l = (struct loadjob){ .st = w, .ino = inos[1], .obj = 1, .gen = 1 };
	pthread_create(&th, NULL, load_run, &l);
	t0 = now_s();
	while (!__atomic_load_n(&l.done, __ATOMIC_ACQUIRE) && now_s() - t0 < 5)
		sleep_ms(5);
	CHECK(__atomic_load_n(&l.done, __ATOMIC_ACQUIRE),
	      "cold: a cold load of object 1 returned while that commit was in flight");
	set_hold(0);
	pthread_join(j[0].th, NULL);
	pthread_join(th, NULL);
	fault_reset();
	CHECK(l.holds, "cold: it read object 1's bytes");
	CHECK_EQ(j[0].rc, 0, "cold: the held commit then committed");
	CHECK(holds(w, inos[0], 0, 2), "cold: object 0 serves its new version");
	store_close(w);
}

static struct store *race_st;
static uint64_t race_ino;
static int race_fired, race_rc;

/* On the loader's thread, between its read txn and its pins: replace the
 * object's data and flush, so its old image is deleted. */
static void race_hook(void *arg)
{
	char buf[OBJ_LEN];

	(void)arg;
	if (race_fired++)
		return;
	content(buf, 3, 9);
	race_rc = tst_put_data(race_st, race_ino, buf, OBJ_LEN);
	if (!race_rc)
		race_rc = tst_sync(race_st);
}

static void test_load_retry(void)
{
	struct store *w = open_local("retry");
	uint64_t inos[K];
	struct store_stats s0, s1;
	struct pver *pv = NULL;
	char want[OBJ_LEN], got[OBJ_LEN + 1];
	ssize_t n = -1;
	int rc;

	if (!w) {
		CHECK(0, "retry: a local store");
		return;
	}
	/* an object whose data is an image, not inline */
	char *big = malloc(1 << 20);
	struct idx_inode in;
	memset(big, 'x', 1 << 20);
	CHECK_EQ(make_objects(w, inos), 0, "retry: objects");
	CHECK_EQ(store_mknod(w, IDX_ROOT_INO, "big", S_IFREG | 0644, 0, 0, 0, &in), 0, "retry: a file");
	CHECK_EQ(tst_put_data(w, in.ino, big, 1 << 20), 0, "retry: 1 MiB in it (an image)");
	store_close(w);
	w = open_local("retry");
	if (!w) {
		free(big);
		CHECK(0, "retry: opened again");
		return;
	}
	race_st = w;
	race_ino = in.ino;
	race_fired = 0;
	store_get_stats(w, &s0);
	CHECK_EQ(fault_hook("pver_read", race_hook, NULL), 0, "retry: a hook on pver_read");
	rc = store_pver_get(w, in.ino, &pv);
	fault_reset();
	CHECK_EQ(rc, 0, "retry: the load returned 0");
	CHECK_EQ(race_rc, 0, "retry: the racing commit and flush (in the hook) returned 0");
	content(want, 3, 9);
	if (pv)
		n = pver_read(pv, got, sizeof(got), 0);
	CHECK(pv && n == OBJ_LEN && memcmp(got, want, OBJ_LEN) == 0,
	      "retry: the load returned the new version, whose bytes read back (read %zd)", n);
	pver_put(pv);
	store_get_stats(w, &s1);
	CHECK(s1.load_retries - s0.load_retries >= 1, "retry: the load started over (%" PRIu64 ")",
	      s1.load_retries - s0.load_retries);
	CHECK(holds(w, in.ino, 3, 9), "retry: the version cache serves the new version");
	store_close(w);
	w = open_local("retry");
	CHECK(w && holds(w, in.ino, 3, 9), "retry: and so does the store opened again");
	store_close(w);
	free(big);
}

int main(void)
{
	if (tut_mkdtemp(tmp, sizeof(tmp), "gcommit-local")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_batch();
	test_off();
	test_cold_open();
	test_load_retry();
	tut_rmrf(tmp);
	return tap_done();
}
