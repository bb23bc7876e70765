/* test_pool — the worker pool: every group job runs exactly once, a
 * waiter finishes its group even when all workers are blocked (it runs
 * its own unstarted jobs), a pool without threads runs everything in the
 * caller, background jobs run or are cancelled exactly once at
 * pool_free(), group jobs take priority over background ones, and a
 * 4-thread submit/wait stress. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/pool.h"
#include "tests/unit/tap.h"

struct cnt { int runs; pthread_t who; };

static void bump(void *arg)
{
	struct cnt *c = arg;
	__atomic_add_fetch(&c->runs, 1, __ATOMIC_RELAXED);
	c->who = pthread_self();
}

static void test_group_runs_once(void)
{
	struct pool *p = pool_new(2);
	struct cnt c[200] = { { 0 } };
	struct pool_group g;
	int bad = 0;

	CHECK(p != NULL, "pool of 2 threads");
	CHECK_EQ(pool_threads(p), 2, "two workers");
	pool_group_init(&g);
	for (int i = 0; i < 200; i++)
		pool_group_submit(p, &g, bump, &c[i]);
	pool_group_wait(p, &g);
	for (int i = 0; i < 200; i++)
		bad += c[i].runs != 1;
	CHECK_EQ(bad, 0, "each of 200 group jobs ran exactly once before the wait returned");
	pool_free(p);
}

/* Workers blocked on a gate: the waiter must run its group itself. */
struct gate { pthread_mutex_t m; pthread_cond_t c; int open; int entered; };

static void block_on_gate(void *arg)
{
	struct gate *g = arg;
	pthread_mutex_lock(&g->m);
	g->entered++;
	pthread_cond_broadcast(&g->c);
	while (!g->open)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

/* Wait until N jobs are blocked on G. */
static void gate_wait(struct gate *g, int n)
{
	pthread_mutex_lock(&g->m);
	while (g->entered < n)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

/* Let the jobs blocked on G (and any later ones) go. */
static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = 1;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

static void test_waiter_helps(void)
{
	struct pool *p = pool_new(2);
	struct gate gt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct pool_group blockers, mine;
	struct cnt c[8] = { { 0 } };
	int here = 0;

	pool_group_init(&blockers);
	pool_group_submit(p, &blockers, block_on_gate, &gt);
	pool_group_submit(p, &blockers, block_on_gate, &gt);
	gate_wait(&gt, 2);
	/* both workers are now stuck: only the waiter can run these */
	pool_group_init(&mine);
	for (int i = 0; i < 8; i++)
		pool_group_submit(p, &mine, bump, &c[i]);
	pool_group_wait(p, &mine);
	for (int i = 0; i < 8; i++)
		here += c[i].runs == 1 && pthread_equal(c[i].who, pthread_self());
	CHECK_EQ(here, 8, "with every worker blocked, the waiter ran all 8 of its jobs itself");
	gate_open(&gt);
	pool_group_wait(p, &blockers);
	pool_free(p);
}

static void test_no_threads(void)
{
	struct pool *p = pool_new(0);
	struct pool_group g;
	struct cnt c = { 0 };
	int dummy = 0;

	CHECK(p != NULL, "pool of 0 threads");
	pool_group_init(&g);
	pool_group_submit(p, &g, bump, &c);
	CHECK(c.runs == 1 && pthread_equal(c.who, pthread_self()),
	      "without workers a group job runs at once in the caller");
	pool_group_wait(p, &g);
	CHECK_EQ(pool_submit_bg(p, bump, NULL, &dummy), -ENOSYS,
		 "background jobs are refused (-ENOSYS) without workers");
	pool_free(p);
	pool_free(NULL);
	CHECK(1, "pool_free(NULL) is a no-op");
}

struct bgrec { int ran, cancelled; };
static void bg_run(void *a) { __atomic_add_fetch(&((struct bgrec *)a)->ran, 1, __ATOMIC_RELAXED); }
static void bg_cancel(void *a) { __atomic_add_fetch(&((struct bgrec *)a)->cancelled, 1, __ATOMIC_RELAXED); }

static void test_bg_cancel(void)
{
	struct pool *p = pool_new(1);
	struct gate gt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct pool_group blk;
	struct bgrec r[50] = { { 0 } };
	int bad = 0, cancelled = 0, queued = 0;

	pool_group_init(&blk);
	pool_group_submit(p, &blk, block_on_gate, &gt);
	gate_wait(&gt, 1);
	for (int i = 0; i < 50; i++)
		queued += pool_submit_bg(p, bg_run, bg_cancel, &r[i]) == 0;
	CHECK_EQ(queued, 50, "50 background jobs accepted");
	CHECK_EQ(pool_bg_queued(p), 50, "50 background jobs wait behind the blocked worker");
	gate_open(&gt);
	pool_group_wait(p, &blk);
	pool_free(p);
	for (int i = 0; i < 50; i++) {
		bad += r[i].ran + r[i].cancelled != 1;
		cancelled += r[i].cancelled;
	}
	CHECK_EQ(bad, 0, "every background job either ran or was cancelled, exactly once (%d cancelled)",
		 cancelled);
}

/* A group job queued after background jobs runs before them. */
struct order { int seq; int bg_seen_before_fg; int fg_done; };
static void ord_bg(void *a)
{
	struct order *o = a;
	if (!__atomic_load_n(&o->fg_done, __ATOMIC_ACQUIRE))
		__atomic_add_fetch(&o->bg_seen_before_fg, 1, __ATOMIC_RELAXED);
}
static void ord_fg(void *a) { __atomic_store_n(&((struct order *)a)->fg_done, 1, __ATOMIC_RELEASE); }

static void test_priority(void)
{
	struct pool *p = pool_new(1);
	struct gate gt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	struct pool_group blk, fg;
	struct order o = { 0 };

	pool_group_init(&blk);
	pool_group_submit(p, &blk, block_on_gate, &gt);
	gate_wait(&gt, 1);
	for (int i = 0; i < 10; i++)
		pool_submit_bg(p, ord_bg, NULL, &o);
	pool_group_init(&fg);
	pool_group_submit(p, &fg, ord_fg, &o);
	gate_open(&gt);
	pool_group_wait(p, &blk);
	pool_group_wait(p, &fg);
	pool_free(p);     /* runs or cancels the rest */
	CHECK_EQ(o.bg_seen_before_fg, 0, "the group job ran before every queued background job");
}

static void test_alloc_fault(void)
{
#ifdef PFS_FAULT_INJECTION
	struct pool *p = pool_new(2);
	struct pool_group g;
	struct cnt c = { 0 };
	struct bgrec r = { 0 };

	pool_group_init(&g);
	fault_arm("alloc", 1, ENOMEM);
	pool_group_submit(p, &g, bump, &c);
	CHECK(c.runs == 1 && pthread_equal(c.who, pthread_self()),
	      "a job whose record cannot be allocated runs in the caller");
	pool_group_wait(p, &g);
	fault_arm("alloc", 1, ENOMEM);
	CHECK_EQ(pool_submit_bg(p, bg_run, bg_cancel, &r), -ENOMEM, "background submit: -ENOMEM");
	pool_free(p);
	CHECK(r.ran == 0 && r.cancelled == 0, "a refused background job is never run nor cancelled");
	fault_reset();
#else
	printf("ok %d - # skip fault injection not compiled in\n", ++tap_n);
#endif
}

struct stress_arg { struct pool *p; int bad; };

static void *stress_thread(void *arg)
{
	struct stress_arg *a = arg;

	for (int round = 0; round < 300; round++) {
		struct cnt c[7] = { { 0 } };
		struct pool_group g;
		pool_group_init(&g);
		for (int i = 0; i < 7; i++)
			pool_group_submit(a->p, &g, bump, &c[i]);
		pool_group_wait(a->p, &g);
		for (int i = 0; i < 7; i++)
			a->bad += c[i].runs != 1;
	}
	return NULL;
}

static void test_stress(void)
{
	struct pool *p = pool_new(3);
	struct stress_arg a[4];
	pthread_t t[4];
	int bad = 0;

	for (int i = 0; i < 4; i++) {
		a[i] = (struct stress_arg){ p, 0 };
		pthread_create(&t[i], NULL, stress_thread, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += a[i].bad;
	}
	CHECK_EQ(bad, 0, "4 threads x 300 groups x 7 jobs: every job ran once before its wait returned");
	pool_free(p);
}

int main(void)
{
	CHECK(pool_ncpus() >= 1, "pool_ncpus() = %u", pool_ncpus());
	test_group_runs_once();
	test_waiter_helps();
	test_no_threads();
	test_bg_cancel();
	test_priority();
	test_alloc_fault();
	test_stress();
	return tap_done();
}
