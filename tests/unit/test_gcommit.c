/* test_gcommit — group commit on a RADOS writer store (index/gcommit.c)
 * against a real throwaway cluster (tests/rados/cluster.sh):
 *  - K threads committing at once: while one round's append is held in
 *    flight (a hook on the fault point rlog_append blocks it), the other
 *    K-1 committers queue; they then share ONE log append (the log grows
 *    by 2 entries for K commits), every commit returns 0, and every new
 *    version is in the writer's local index and in the log (a follower
 *    opened afterwards applies the round's one entry and holds all K);
 *  - a member whose operation fails in its child txn (a create of a name
 *    that exists: EEXIST) fails alone: the others of its round commit;
 *  - a round whose append fails (fault point rlog_append: EIO) fails every
 *    member with that error, and every member's old version stays, in the
 *    local index and in the log (a follower sees the old versions); the
 *    next commits work again;
 *  - a leader whose own operation fails (it works in the round's txn
 *    itself, not a child): the round ends with nothing in it and the
 *    members queued behind it start over and commit (a hook on the fault
 *    point commit_member holds the leader in its operation until they
 *    queued);
 *  - two commits of one object in one round: the version the store serves
 *    (its current version, pver.c (2)) is the later one, the index's
 *    (post-commit sections run in the order of the children, G6);
 *  - the OSD stopped while a round is queued: every member of the round
 *    fails within the timeout (never hangs), the old versions stay, and
 *    commits work again once the OSD is back.
 * Without the cluster's variables the test runs itself again under
 * tests/rados/with-cluster.sh. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/log.h"
#include "index/idx.h"
#include "index/store.h"
#include "tests/unit/tap.h"
#include "tests/unit/tstore.h"
#include "tests/unit/tutil.h"
#include "tests/unit/tcluster.h"

#define K 8
#define OBJ_LEN 1024

static char tmp[4096];
static const char *conf_path, *pool, *cluster_dir, *cluster_sh;
static char name_base[64];

#include "tests/unit/tgcommit.h"

static int cluster(const char *cmd)
{
	char line[1024];
	int rc;

	snprintf(line, sizeof(line), "'%s' %s '%s' >&2", cluster_sh, cmd, cluster_dir);
	rc = system(line);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* ---- stores ---- */

static struct store *open_rados(const char *sub, const char *name, int follower, int timeout)
{
	struct store_opts o = { .create = 1, .rados_timeout = (unsigned)timeout };
	struct store_conf conf = { .kind = STORE_RADOS, .role = follower ? STORE_FOLLOWER : STORE_WRITER };
	struct store *st = NULL;
	char dir[4300];
	int rc;

	snprintf(conf.pool, sizeof(conf.pool), "%s", pool);
	snprintf(conf.name, sizeof(conf.name), "%s-%s", name_base, name);
	snprintf(conf.ceph_conf, sizeof(conf.ceph_conf), "%s", conf_path);
	o.conf = &conf;
	snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
	mkdir(dir, 0700);
	rc = store_open(dir, &o, &st);
	if (rc)
		printf("# store_open %s: %s\n", dir, store_strerror(rc));
	return rc ? NULL : st;
}

/* ---- the tests ---- */

static void test_batch(void)
{
	struct store *w = open_rados("batch-w", "batch", 0, 30), *f;
	struct job j[K];
	uint64_t inos[K], tail0 = 0, tail1 = 0, v0[K];
	struct store_stats s0, s1;
	int ok = 1, all0 = 1;

	if (!w) {
		CHECK(0, "batch: a writer store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "batch: %d objects of %d bytes committed", K, OBJ_LEN);
	for (int i = 0; i < K; i++)
		v0[i] = idx_version(w, inos[i]);
	CHECK_EQ(store_log_tail(w, &tail0), 0, "batch: the log's tail");
	store_get_stats(w, &s0);
	CHECK_EQ(fault_hook("rlog_append", hold_hook, NULL), 0, "batch: a hook on rlog_append");
	memset(j, 0, sizeof(j));
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 2 };
	set_hold(1);
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "batch: the first commit's append is in flight (held)");
	for (int i = 1; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	CHECK(wait_waiting(w, K - 1), "batch: the other %d committers wait for the next round", K - 1);
	set_hold(0);
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		all0 &= j[i].rc == 0;
	}
	fault_reset();
	CHECK(all0, "batch: all %d commits returned 0", K);
	CHECK(store_log_tail(w, &tail1) == 0 && tail1 == tail0 + 2,
	      "batch: %d commits made 2 log entries (the log went from %" PRIu64 " to %" PRIu64 ")", K,
	      tail0, tail1);
	store_get_stats(w, &s1);
	CHECK(s1.log_rounds - s0.log_rounds == 2 && s1.log_round_members - s0.log_round_members == K,
	      "batch: 2 rounds carried %d commits (stats: %" PRIu64 " rounds, %" PRIu64 " commits)", K,
	      s1.log_rounds - s0.log_rounds, s1.log_round_members - s0.log_round_members);
	for (int i = 0; i < K; i++)
		ok &= idx_version(w, inos[i]) == v0[i] + 1 && holds(w, inos[i], i, 2);
	CHECK(ok, "batch: every new version is in the writer's local index");
	f = open_rados("batch-f", "batch", 1, 30);
	CHECK(f != NULL, "batch: a follower opens (and applies the log)");
	if (f) {
		uint64_t lsn = 0;
		ok = idx_log_lsn(store_idx(f), &lsn) == 0 && lsn == tail1;
		CHECK(ok, "batch: the follower is at the log's end (%" PRIu64 ")", lsn);
		ok = 1;
		for (int i = 0; i < K; i++)
			ok &= idx_version(f, inos[i]) == v0[i] + 1 && holds(f, inos[i], i, 2);
		CHECK(ok, "batch: the follower holds all %d new versions (the round's one entry has them all)", K);
		store_close(f);
	}

	/* a member that fails in its child fails alone */
	memset(j, 0, sizeof(j));
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 3, .mknod_existing = i == K / 2 };
	CHECK_EQ(fault_hook("rlog_append", hold_hook, NULL), 0, "failing member: the hook again");
	CHECK_EQ(store_log_tail(w, &tail0), 0, "failing member: the log's tail");
	set_hold(1);
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "failing member: the first commit's append is in flight");
	for (int i = 1; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	CHECK(wait_waiting(w, K - 1), "failing member: %d committers wait, one of them a create of a name "
	      "that exists", K - 1);
	set_hold(0);
	all0 = 1;
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		if (i != K / 2)
			all0 &= j[i].rc == 0;
	}
	fault_reset();
	CHECK_EQ(j[K / 2].rc, -EEXIST, "failing member: the create fails with EEXIST");
	CHECK(all0, "failing member: the %d others of its round commit", K - 2);
	CHECK(store_log_tail(w, &tail1) == 0 && tail1 == tail0 + 2, "failing member: still 2 log entries");
	ok = 1;
	for (int i = 0; i < K; i++)
		if (i != K / 2)
			ok &= idx_version(w, inos[i]) == v0[i] + 2 && holds(w, inos[i], i, 3);
	ok &= idx_version(w, inos[K / 2]) == v0[K / 2] + 1 && holds(w, inos[K / 2], K / 2, 2);
	CHECK(ok, "failing member: the others' new versions are in the local index; its object is as it was");
	f = open_rados("batch-f2", "batch", 1, 30);
	ok = f != NULL;
	for (int i = 0; f && i < K; i++)
		ok &= holds(f, inos[i], i, i == K / 2 ? 2 : 3);
	CHECK(ok, "failing member: a follower holds the same");
	store_close(f);
	store_close(w);
}

/* 1 when the version ST serves for INO has the bytes of its index record. */
static int serves_index(struct store *st, uint64_t ino)
{
	struct idx_txn *t;
	const void *d;
	size_t len = 0;
	char idxb[OBJ_LEN], got[OBJ_LEN + 1];
	struct pver *pv;
	ssize_t n;
	int rc;

	if (idx_begin(store_idx(st), 1, &t))
		return 0;
	rc = idx_inline_get(t, ino, &d, &len);
	if (!rc && len == OBJ_LEN)
		memcpy(idxb, d, OBJ_LEN);
	idx_abort(t);
	if (rc || len != OBJ_LEN || store_pver_get(st, ino, &pv))
		return 0;
	n = pver_read(pv, got, sizeof(got), 0);
	pver_put(pv);
	return n == OBJ_LEN && memcmp(idxb, got, OBJ_LEN) == 0;
}

static void test_same_object(void)
{
	struct store *w = open_rados("same-w", "same", 0, 30);
	struct job j[3];
	uint64_t inos[K];
	int ok = 1, all0 = 1, tries = 12;

	if (!w) {
		CHECK(0, "same object: a writer store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "same object: %d objects", K);
	for (int r = 0; r < tries; r++) {
		j[0] = (struct job){ .st = w, .ino = inos[0], .obj = 0, .gen = 2 + r };
		j[1] = (struct job){ .st = w, .ino = inos[1], .obj = 1, .gen = 2 + 2 * r };
		j[2] = (struct job){ .st = w, .ino = inos[1], .obj = 1, .gen = 3 + 2 * r };
		fault_hook("rlog_append", hold_hook, NULL);
		set_hold(1);
		pthread_create(&j[0].th, NULL, job_run, &j[0]);
		ok &= wait_held();
		pthread_create(&j[1].th, NULL, job_run, &j[1]);
		pthread_create(&j[2].th, NULL, job_run, &j[2]);
		ok &= wait_waiting(w, 2);
		set_hold(0);
		for (int i = 0; i < 3; i++) {
			pthread_join(j[i].th, NULL);
			all0 &= j[i].rc == 0;
		}
		fault_reset();
		ok &= serves_index(w, inos[1]);
	}
	CHECK(all0, "same object: %d times, two commits of one object queued for one round: all returned 0",
	      tries);
	CHECK(ok, "same object: ... and each time the version served is the index's (the later commit's)");
	store_close(w);
}

/* Hold the first member that reaches commit_member (the next round's
 * leader) until let go. */
static int mhold, mheld;

static void member_hook(void *arg)
{
	int me_first;

	(void)arg;
	pthread_mutex_lock(&hm);
	me_first = mhold && !mheld;
	if (me_first) {
		mheld = 1;
		pthread_cond_broadcast(&hc);
		while (mhold)
			pthread_cond_wait(&hc, &hm);
	}
	pthread_mutex_unlock(&hm);
}

static void test_failing_leader(void)
{
	struct store *w = open_rados("lead-w", "lead", 0, 30), *f;
	struct job j[K];
	uint64_t inos[K], tail0 = 0, tail1 = 0, v0[K];
	int ok = 1, all0 = 1;
	double t0;

	if (!w) {
		CHECK(0, "failing leader: a writer store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "failing leader: %d objects", K);
	for (int i = 0; i < K; i++)
		v0[i] = idx_version(w, inos[i]);
	CHECK_EQ(store_log_tail(w, &tail0), 0, "failing leader: the log's tail");
	memset(j, 0, sizeof(j));
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 2, .mknod_existing = i == 1 };
	CHECK_EQ(fault_hook("rlog_append", hold_hook, NULL), 0, "failing leader: a hook on rlog_append");
	set_hold(1);
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "failing leader: the first commit's append is in flight");
	pthread_create(&j[1].th, NULL, job_run, &j[1]);
	CHECK(wait_waiting(w, 1), "failing leader: the create of a name that exists waits alone for the "
	      "next round (it will lead it)");
	pthread_mutex_lock(&hm);
	mhold = 1;
	mheld = 0;
	pthread_mutex_unlock(&hm);
	CHECK_EQ(fault_hook("commit_member", member_hook, NULL), 0, "failing leader: a hook on commit_member");
	set_hold(0);
	t0 = now_s();
	pthread_mutex_lock(&hm);
	while (!mheld && now_s() - t0 < 20) {
		pthread_mutex_unlock(&hm);
		sleep_ms(5);
		pthread_mutex_lock(&hm);
	}
	ok = mheld;
	pthread_mutex_unlock(&hm);
	CHECK(ok, "failing leader: it leads the next round and is held in its operation");
	for (int i = 2; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	CHECK(wait_waiting(w, K - 2), "failing leader: %d committers queue behind it", K - 2);
	pthread_mutex_lock(&hm);
	mhold = 0;
	pthread_cond_broadcast(&hc);
	pthread_mutex_unlock(&hm);
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		if (i != 1)
			all0 &= j[i].rc == 0;
	}
	fault_reset();
	CHECK_EQ(j[1].rc, -EEXIST, "failing leader: its create fails with EEXIST");
	CHECK(all0, "failing leader: the %d commits queued behind it start over and commit", K - 2);
	CHECK(store_log_tail(w, &tail1) == 0 && tail1 == tail0 + 2,
	      "failing leader: 2 log entries (%" PRIu64 " -> %" PRIu64 "): its round appended nothing", tail0, tail1);
	ok = 1;
	for (int i = 0; i < K; i++)
		if (i != 1)
			ok &= idx_version(w, inos[i]) == v0[i] + 1 && holds(w, inos[i], i, 2);
	ok &= idx_version(w, inos[1]) == v0[1] && holds(w, inos[1], 1, 1);
	CHECK(ok, "failing leader: every new version is in the local index, object 1 as it was");
	f = open_rados("lead-f", "lead", 1, 30);
	ok = f != NULL;
	for (int i = 0; f && i < K; i++)
		ok &= holds(f, inos[i], i, i == 1 ? 1 : 2);
	CHECK(ok, "failing leader: a follower holds the same");
	store_close(f);

	/* a member that fails as it begins (fault point commit_member) */
	memset(j, 0, sizeof(j));
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 3 };
	CHECK_EQ(fault_hook("rlog_append", hold_hook, NULL), 0, "failing member at its start: the hook again");
	set_hold(1);
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "failing member at its start: the first commit's append is in flight");
	for (int i = 1; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	CHECK(wait_waiting(w, K - 1), "failing member at its start: %d committers wait", K - 1);
	CHECK_EQ(fault_arm("commit_member", 3, EIO), 0, "failing member at its start: the third member "
		 "of the next round fails as it begins (EIO)");
	set_hold(0);
	all0 = 0;
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		all0 += j[i].rc == 0;
	}
	CHECK_EQ(fault_fired("commit_member"), 1, "failing member at its start: the fault fired");
	fault_reset();
	CHECK_EQ(all0, K - 1, "failing member at its start: the %d others commit", K - 1);
	ok = 1;
	for (int i = 0; i < K; i++) {        /* object 1 was at generation 1, the others at 2 */
		uint64_t before = v0[i] + (i != 1);
		ok &= j[i].rc == 0 ? idx_version(w, inos[i]) == before + 1 && holds(w, inos[i], i, 3)
				   : j[i].rc == -EIO && idx_version(w, inos[i]) == before &&
					     holds(w, inos[i], i, i == 1 ? 1 : 2);
	}
	CHECK(ok, "failing member at its start: the others' new versions are in; the failed one's object as it was");
	store_close(w);
}

static void test_failed_append(void)
{
	struct store *w = open_rados("fail-w", "fail", 0, 30), *f;
	struct job j[K];
	uint64_t inos[K], tail0 = 0, tail1 = 0, v0[K];
	int ok = 1, nfail = 0, all0 = 1;

	if (!w) {
		CHECK(0, "failed append: a writer store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "failed append: %d objects", K);
	for (int i = 0; i < K; i++)
		v0[i] = idx_version(w, inos[i]);
	CHECK_EQ(store_log_tail(w, &tail0), 0, "failed append: the log's tail");
	memset(j, 0, sizeof(j));
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 2 };
	CHECK_EQ(fault_hook("rlog_append", hold_hook, NULL), 0, "failed append: a hook on rlog_append");
	set_hold(1);
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "failed append: the first commit's append is in flight");
	/* the held call was counted already: the next append (the round's) fails */
	CHECK_EQ(fault_arm("rlog_append", 1, EIO), 0, "failed append: the next append fails (EIO)");
	for (int i = 1; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	CHECK(wait_waiting(w, K - 1), "failed append: %d committers wait for the next round", K - 1);
	set_hold(0);
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		if (i)
			nfail += j[i].rc == -EIO;
	}
	CHECK_EQ(fault_fired("rlog_append"), 1, "failed append: the fault fired once");
	fault_reset();
	CHECK_EQ(j[0].rc, 0, "failed append: the first commit (its own round) returned 0");
	CHECK_EQ(nfail, K - 1, "failed append: each of the %d members of the failed round got EIO", K - 1);
	CHECK(store_log_tail(w, &tail1) == 0 && tail1 == tail0 + 1, "failed append: the log has 1 entry more "
	      "(%" PRIu64 " -> %" PRIu64 ")", tail0, tail1);
	ok = idx_version(w, inos[0]) == v0[0] + 1 && holds(w, inos[0], 0, 2);
	for (int i = 1; i < K; i++)
		ok &= idx_version(w, inos[i]) == v0[i] && holds(w, inos[i], i, 1);
	CHECK(ok, "failed append: every member's old version stays in the local index");
	f = open_rados("fail-f", "fail", 1, 30);
	ok = f != NULL && holds(f, inos[0], 0, 2);
	for (int i = 1; f && i < K; i++)
		ok &= idx_version(f, inos[i]) == v0[i] && holds(f, inos[i], i, 1);
	CHECK(ok, "failed append: ... and in the log (a follower holds the old versions)");
	store_close(f);
	/* the writer goes on */
	for (int i = 1; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	for (int i = 1; i < K; i++) {
		pthread_join(j[i].th, NULL);
		all0 &= j[i].rc == 0;
	}
	ok = 1;
	for (int i = 1; i < K; i++)
		ok &= idx_version(w, inos[i]) == v0[i] + 1 && holds(w, inos[i], i, 2);
	CHECK(all0 && ok, "failed append: the same commits work afterwards");
	store_close(w);
}

static void test_osd_down(void)
{
	struct store *w = open_rados("osd-w", "osd", 0, 3), *f;
	struct job j[K];
	uint64_t inos[K], v0[K];
	double t0, took;
	int ok = 1, nfail = 0, all0 = 1;

	if (!w) {
		CHECK(0, "osd down: a writer store");
		return;
	}
	CHECK_EQ(make_objects(w, inos), 0, "osd down: %d objects", K);
	for (int i = 0; i < K; i++)
		v0[i] = idx_version(w, inos[i]);
	memset(j, 0, sizeof(j));
	for (int i = 0; i < K; i++)
		j[i] = (struct job){ .st = w, .ino = inos[i], .obj = i, .gen = 2 };
	CHECK_EQ(fault_hook("rlog_append", hold_hook, NULL), 0, "osd down: a hook on rlog_append");
	set_hold(1);
	pthread_create(&j[0].th, NULL, job_run, &j[0]);
	CHECK(wait_held(), "osd down: the first commit's append is in flight");
	for (int i = 1; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	CHECK(wait_waiting(w, K - 1), "osd down: %d committers wait for the next round", K - 1);
	CHECK_EQ(cluster("stop-osd"), 0, "osd down: stop the OSD");
	t0 = now_s();
	set_hold(0);
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		nfail += j[i].rc != 0;
		if (j[i].rc && j[i].rc != -EIO && j[i].rc != -ETIMEDOUT && j[i].rc != -EROFS)
			printf("# member %d: %s\n", i, strerror(-j[i].rc));
	}
	took = now_s() - t0;
	fault_reset();
	CHECK_EQ(nfail, K, "osd down: every commit failed (the first round's append in doubt, the "
		 "second round's)");
	CHECK(took < 3 * 3 + 15, "osd down: within the timeouts (%.1f s)", took);
	for (int i = 0; i < K; i++)
		ok &= idx_version(w, inos[i]) == v0[i] && holds(w, inos[i], i, 1);
	CHECK(ok, "osd down: every old version stays in the local index");
	CHECK_EQ(cluster("start-osd"), 0, "osd down: start the OSD again");
	for (int i = 0; i < K; i++)
		pthread_create(&j[i].th, NULL, job_run, &j[i]);
	for (int i = 0; i < K; i++) {
		pthread_join(j[i].th, NULL);
		all0 &= j[i].rc == 0;
	}
	CHECK(all0, "osd back: the same %d commits work", K);
	f = open_rados("osd-f", "osd", 1, 30);
	ok = f != NULL;
	for (int i = 0; f && i < K; i++)
		ok &= idx_version(f, inos[i]) == v0[i] + 1 && holds(f, inos[i], i, 2);
	CHECK(ok, "osd back: a follower holds the new versions");
	store_close(f);
	store_close(w);
}


int main(void)
{
	need_cluster();
	conf_path = getenv("PFS_CEPH_CONF");
	pool = getenv("PFS_RADOS_POOL");
	cluster_dir = getenv("PFS_RADOS_CLUSTER");
	cluster_sh = getenv("PFS_RADOS_CLUSTER_SH");
	if (!pool || !cluster_dir || !cluster_sh) {
		printf("Bail out! PFS_RADOS_POOL, PFS_RADOS_CLUSTER, PFS_RADOS_CLUSTER_SH unset\n");
		return 1;
	}
#ifndef PFS_FAULT_INJECTION
	printf("1..0 # skip fault points compiled out (FAULT=0): group commit is tested with them\n");
	return 0;
#else
	log_init("test_gcommit", LOG_TO_STDERR, LOG_CRIT);
	seed_init();
	snprintf(name_base, sizeof(name_base), "gc%d-%08llx", (int)getpid(),
		 (unsigned long long)(rnd() & 0xffffffffu));
	if (tut_mkdtemp(tmp, sizeof(tmp), "gcommit")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	printf("# cluster %s, pool %s, stores %s-*\n", conf_path, pool, name_base);
	test_batch();
	test_failing_leader();
	test_same_object();
	test_failed_append();
	test_osd_down();
	tut_rmrf(tmp);
	return tap_done();
#endif
}
