/* tgcommit — the pieces test_gcommit (RADOS writers) and test_gcommit_local
 * (local stores) share: a fault hook that holds the calls of one fault
 * point (a commit round's append or LMDB commit in flight) while the test
 * queues more committers, bounded waits for it, K objects of OBJ_LEN bytes
 * whose content names object and generation, and committer threads.
 * Include once, after tap.h, tutil.h, tstore.h and after defining K and
 * OBJ_LEN. */
#ifndef PFS_TGCOMMIT_H
#define PFS_TGCOMMIT_H

#include <pthread.h>
#include <sys/stat.h>

#include "index/idx.h"
#include "index/store.h"

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- a hook that holds a fault point (a round's commit or append in flight) ---- */

static pthread_mutex_t hm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hc = PTHREAD_COND_INITIALIZER;
static int hold, held;     /* hold: block the next calls; held: calls blocked so far */

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

/* Wait until a call is held. @return 1, or 0 after 20 s. */
static int wait_held(void)
{
	double t0 = now_s();
	int ok;

	pthread_mutex_lock(&hm);
	while (!held && now_s() - t0 < 20) {
		pthread_mutex_unlock(&hm);
		sleep_ms(5);
		pthread_mutex_lock(&hm);
	}
	ok = held > 0;
	pthread_mutex_unlock(&hm);
	return ok;
}

/* Wait until N committers wait for the next round. @return 1, or 0 after 20 s. */
static int wait_waiting(struct store *st, unsigned n)
{
	double t0 = now_s();

	while (store_commit_waiting(st) < n && now_s() - t0 < 20)
		sleep_ms(5);
	return store_commit_waiting(st) >= n;
}

/* ---- stores and objects ---- */

static void content(char *buf, int obj, int gen)
{
	memset(buf, 'a' + (obj + gen) % 26, OBJ_LEN);
	snprintf(buf, OBJ_LEN, "object %d generation %d\n", obj, gen);
	buf[strlen(buf)] = '.';
}

/* The object's version in ST's local index (0: none). */
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

/* 1 when object INO of ST holds generation GEN of object OBJ. */
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

/* ---- committers ---- */

struct job {
	struct store *st;
	pthread_t th;
	uint64_t ino;
	int obj, gen;
	int mknod_existing;       /* the op fails in its child: EEXIST */
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

/* The writer W with K objects at generation 1. */
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

#endif
