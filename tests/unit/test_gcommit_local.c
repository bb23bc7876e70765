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
 *    counter counts what it says). */
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

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- a hook that holds lmdb_commit (a round's commit in flight) ---- */

static pthread_mutex_t hm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hc = PTHREAD_COND_INITIALIZER;
static int hold, held;

static void hold_hook(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hm);
	if (hold) {
		held++;
		pthread_cond_broadcast(&hc);
		while (hold)
			pthread_cond_wait(&hc, &hm);
	}
	pthread_mutex_unlock(&hm);
}

static void set_hold(int on)
{
	pthread_mutex_lock(&hm);
	hold = on;
	if (on)
		held = 0;
	pthread_cond_broadcast(&hc);
	pthread_mutex_unlock(&hm);
}

static int wait_held(void)
{
	double t0 = mono_s();
	int ok;

	pthread_mutex_lock(&hm);
	while (!held && mono_s() - t0 < 20) {
		pthread_mutex_unlock(&hm);
		sleep_ms(5);
		pthread_mutex_lock(&hm);
	}
	ok = held > 0;
	pthread_mutex_unlock(&hm);
	return ok;
}

static int wait_waiting(struct store *st, unsigned n)
{
	double t0 = mono_s();

	while (store_commit_waiting(st) < n && mono_s() - t0 < 20)
		sleep_ms(5);
	return store_commit_waiting(st) >= n;
}

/* ---- stores and objects ---- */

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

static void content(char *buf, int obj, int gen)
{
	memset(buf, 'a' + (obj + gen) % 26, OBJ_LEN);
	snprintf(buf, OBJ_LEN, "object %d generation %d\n", obj, gen);
	buf[strlen(buf)] = '.';
}

static uint64_t idx_version(struct store *st, uint64_t ino)
{
	struct idx_txn *t;
	struct idx_inode in;
	uint64_t v = 0;

	if (idx_begin(store_idx(st), 1, &t))
		return 0;
	if (idx_inode_get(t, ino, &in) == 0)
		v = in.version;
	idx_abort(t);
	return v;
}

static int holds(struct store *st, uint64_t ino, int obj, int gen)
{
	char want[OBJ_LEN], got[OBJ_LEN + 1];
	struct pver *pv;
	ssize_t n;

	if (store_pver_get(st, ino, &pv))
		return 0;
	content(want, obj, gen);
	n = pver_read(pv, got, sizeof(got), 0);
	pver_put(pv);
	return n == OBJ_LEN && memcmp(want, got, OBJ_LEN) == 0;
}

struct job {
	struct store *st;
	pthread_t th;
	uint64_t ino;
	int obj, gen;
	int mknod_existing;
	int rc;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	char buf[OBJ_LEN];

	if (j->mknod_existing) {
		char name[32];
		struct idx_inode in;
		snprintf(name, sizeof(name), "o%d", j->obj);
		j->rc = store_mknod(j->st, IDX_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &in);
		return NULL;
	}
	content(buf, j->obj, j->gen);
	j->rc = tst_put_data(j->st, j->ino, buf, OBJ_LEN);
	return NULL;
}

static int make_objects(struct store *w, uint64_t *inos)
{
	for (int i = 0; i < K; i++) {
		struct idx_inode in;
		char name[32], buf[OBJ_LEN];
		int rc;
		snprintf(name, sizeof(name), "o%d", i);
		rc = store_mknod(w, IDX_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &in);
		content(buf, i, 1);
		if (!rc)
			rc = tst_put_data(w, in.ino, buf, OBJ_LEN);
		if (rc)
			return rc;
		inos[i] = in.ino;
	}
	return 0;
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

int main(void)
{
	if (tut_mkdtemp(tmp, sizeof(tmp), "gcommit-local")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_batch();
	test_off();
	tut_rmrf(tmp);
	return tap_done();
}
