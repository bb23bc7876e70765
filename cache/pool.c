/* pool — see pool.h for the contract and the invariants. */
#include "cache/pool.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/log.h"

struct job {
	void (*fn)(void *);
	void (*cancel)(void *);
	void *arg;
	struct pool_group *group;   /* NULL for background jobs */
	struct job *next;
};

struct jqueue {
	struct job *head, *tail;    /* protected by pool->lock */
	size_t n;                   /* protected by pool->lock */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work;        /* a job was queued, or stopping */
	struct jqueue fg, bg;       /* group jobs first, background after */
	int stopping;               /* protected by lock */
	unsigned nthreads;          /* immutable after pool_new */
	pthread_t *threads;
};

static void q_push(struct jqueue *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static struct job *q_pop(struct jqueue *q)
{
	struct job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
	}
	return j;
}

/* Remove and return the first queued job of G, or NULL. */
static struct job *q_take_group(struct jqueue *q, const struct pool_group *g)
{
	struct job *prev = NULL;

	for (struct job *j = q->head; j; prev = j, j = j->next) {
		if (j->group != g)
			continue;
		if (prev)
			prev->next = j->next;
		else
			q->head = j->next;
		if (q->tail == j)
			q->tail = prev;
		q->n--;
		return j;
	}
	return NULL;
}

/* Run job J (its record is freed first: invariant 3) and account for it
 * in its group. Called without p->lock. */
static void run_job(struct pool *p, struct job *j)
{
	struct pool_group *g = j->group;
	void (*fn)(void *) = j->fn;
	void *arg = j->arg;

	free(j);
	fn(arg);
	if (!g)
		return;
	pthread_mutex_lock(&p->lock);
	if (--g->pending == 0)
		pthread_cond_broadcast(&g->done);
	pthread_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct job *j = q_pop(&p->fg);

		if (!j && !p->stopping)
			j = q_pop(&p->bg);
		if (j) {
			pthread_mutex_unlock(&p->lock);
			run_job(p, j);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (p->stopping)
			break;
		pthread_cond_wait(&p->work, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

unsigned pool_ncpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

struct pool *pool_new(unsigned nthreads)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	if (nthreads && !(p->threads = calloc(nthreads, sizeof(*p->threads)))) {
		pool_free(p);
		return NULL;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		int rc = pthread_create(&p->threads[i], NULL, worker, p);
		if (rc) {
			log_err("pool: cannot start worker thread %u: %s (%s)", i, strerror(rc), log_errname(rc));
			pool_free(p);
			return NULL;
		}
		p->nthreads++;
	}
	return p;
}

void pool_free(struct pool *p)
{
	struct job *j;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* no worker is left: run what groups still wait for, cancel the rest */
	while ((j = q_pop(&p->fg)))
		run_job(p, j);
	while ((j = q_pop(&p->bg))) {
		if (j->cancel)
			j->cancel(j->arg);
		free(j);
	}
	free(p->threads);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

unsigned pool_threads(const struct pool *p)
{
	return p ? p->nthreads : 0;
}

void pool_group_init(struct pool_group *g)
{
	g->pending = 0;
	pthread_cond_init(&g->done, NULL);
}

static struct job *job_new(void (*fn)(void *), void (*cancel)(void *), void *arg,
			   struct pool_group *g)
{
	struct job *j = FAULT("alloc") ? NULL : malloc(sizeof(*j));

	if (j)
		*j = (struct job){ .fn = fn, .cancel = cancel, .arg = arg, .group = g };
	return j;
}

void pool_group_submit(struct pool *p, struct pool_group *g, void (*fn)(void *), void *arg)
{
	struct job *j = p && p->nthreads ? job_new(fn, NULL, arg, g) : NULL;

	if (!j) {
		fn(arg);     /* no worker or no memory: do it here */
		return;
	}
	pthread_mutex_lock(&p->lock);
	g->pending++;
	q_push(&p->fg, j);
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

void pool_group_wait(struct pool *p, struct pool_group *g)
{
	if (p) {
		pthread_mutex_lock(&p->lock);
		while (g->pending) {
			struct job *j = q_take_group(&p->fg, g);
			if (j) {
				pthread_mutex_unlock(&p->lock);
				run_job(p, j);
				pthread_mutex_lock(&p->lock);
				continue;
			}
			pthread_cond_wait(&g->done, &p->lock);
		}
		pthread_mutex_unlock(&p->lock);
	}
	pthread_cond_destroy(&g->done);
}

int pool_submit_bg(struct pool *p, void (*fn)(void *), void (*cancel)(void *), void *arg)
{
	struct job *j;

	if (!p || !p->nthreads)
		return -ENOSYS;
	if (!(j = job_new(fn, cancel, arg, NULL)))
		return -ENOMEM;
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return -ESHUTDOWN;
	}
	q_push(&p->bg, j);
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

size_t pool_bg_queued(struct pool *p)
{
	size_t n;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	n = p->bg.n;
	pthread_mutex_unlock(&p->lock);
	return n;
}
