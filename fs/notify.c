/* notify — see notify.h.
 *
 * Invariants:
 *  (1) Notices are sent in queue order by the one notifier thread; a
 *      notice's ticket is "done" once done_seq >= its ticket.
 *  (2) notify_stop() drains the queue before the thread exits.
 *  (3) A queued entry notice owns its name copy; the notifier frees it.
 */
#include "fs/notify.h"
#include "index/store.h"
#include "cache/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 4096

struct notice {
	uint64_t id;        /* node id (attributes) or parent (entry) */
	char *name;         /* entry notices; NULL for attributes */
	int64_t off;        /* node notices: pages from this offset on go
			     * too (notify_grow); -1: attributes only */
	struct pver *pv;    /* notify_grow: the version the node moved to
			     * (a reference, dropped once delivered) */
};

static pthread_mutex_t nq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nq_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t nq_done = PTHREAD_COND_INITIALIZER;
static struct notice nq[QUEUE_MAX];    /* protected by nq_lock: ring */
static uint64_t nq_head, nq_tail;      /* protected by nq_lock: seq numbers */
static uint64_t done_seq;              /* protected by nq_lock */
static int nq_stop, nq_running;        /* protected by nq_lock */
static struct fuse_session *nq_se;
static pthread_t nq_thread;

/* Tell the kernel node N->id is N->pv's size now: store its last byte
 * (FUSE_NOTIFY_STORE extends the inode's size to the end of what it
 * stores). Without it the kernel would learn the size only at its next
 * GETATTR, and until then clamp copy_file_range and fault mappings past
 * the old end (SIGBUS). */
static int store_end(const struct notice *n)
{
	uint64_t size = pver_inode(n->pv)->size;
	char last;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(1);

	if (!size || pver_read(n->pv, &last, 1, size - 1) != 1)
		return 0;       /* a failed read: the next GETATTR tells the size */
	bv.buf[0].mem = &last;
	return fuse_lowlevel_notify_store(nq_se, n->id, (off_t)(size - 1), &bv, 0);
}

static void deliver(const struct notice *n)
{
	int rc;

	if (n->name)
		rc = fuse_lowlevel_notify_inval_entry(nq_se, n->id, n->name, strlen(n->name));
	else
		rc = fuse_lowlevel_notify_inval_inode(nq_se, n->id, n->off, 0);
	if (!rc && n->pv)
		rc = store_end(n);
	if (rc && rc != -ENOENT)
		log_debug("%s %llu%s%s: invalidation notice: %s", n->name ? "entry" : "node",
			  (unsigned long long)n->id, n->name ? "/" : "", n->name ? n->name : "",
			  strerror(-rc));
}

static void *notifier(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&nq_lock);
	for (;;) {
		while (nq_head == nq_tail && !nq_stop)
			pthread_cond_wait(&nq_work, &nq_lock);
		if (nq_head == nq_tail)
			break;
		struct notice n = nq[nq_head % QUEUE_MAX];
		pthread_mutex_unlock(&nq_lock);
		deliver(&n);
		free(n.name);
		pver_put(n.pv);
		pthread_mutex_lock(&nq_lock);
		done_seq = ++nq_head;
		pthread_cond_broadcast(&nq_done);
	}
	pthread_mutex_unlock(&nq_lock);
	return NULL;
}

int notify_start(struct fuse_session *se)
{
	int rc;

	nq_se = se;
	rc = pthread_create(&nq_thread, NULL, notifier, NULL);
	if (rc)
		return -rc;
	nq_running = 1;
	return 0;
}

void notify_stop(void)
{
	if (!nq_running)
		return;
	pthread_mutex_lock(&nq_lock);
	nq_stop = 1;
	pthread_cond_signal(&nq_work);
	pthread_mutex_unlock(&nq_lock);
	pthread_join(nq_thread, NULL);
	nq_running = 0;
}

/* Queue N (taking its name). @return the ticket, or 0 (N's name freed). */
static uint64_t enqueue(struct notice n)
{
	uint64_t ticket = 0;

	pthread_mutex_lock(&nq_lock);
	if (nq_running && !nq_stop && nq_tail - nq_head < QUEUE_MAX) {
		nq[nq_tail % QUEUE_MAX] = n;
		ticket = ++nq_tail;
		pthread_cond_signal(&nq_work);
	}
	pthread_mutex_unlock(&nq_lock);
	if (!ticket) {
		log_debug("invalidation notice for %llu dropped (queue full or stopped)",
			  (unsigned long long)n.id);
		free(n.name);
		pver_put(n.pv);
	}
	return ticket;
}

uint64_t notify_attr(uint64_t nodeid)
{
	return enqueue((struct notice){ nodeid, NULL, -1, NULL });
}

uint64_t notify_grow(uint64_t nodeid, uint64_t old_size, struct pver *pv)
{
	/* from the page that holds the old end (the kernel rounds the
	 * offset down to its page): its bytes past the old end were zeros
	 * in the cache, and are data now */
	return enqueue((struct notice){ nodeid, NULL, (int64_t)old_size, pver_ref(pv) });
}

uint64_t notify_entry(uint64_t parent, const char *name)
{
	char *copy = strdup(name);

	return copy ? enqueue((struct notice){ parent, copy, -1, NULL }) : 0;
}

static uint64_t waits;                 /* atomic: notify_waits */

uint64_t notify_waits(void)
{
	return __atomic_load_n(&waits, __ATOMIC_RELAXED);
}

void notify_wait(uint64_t ticket)
{
	struct timespec until;

	if (!ticket)
		return;
	__atomic_add_fetch(&waits, 1, __ATOMIC_RELAXED);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)NOTIFY_WAIT_MS * 1000000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	pthread_mutex_lock(&nq_lock);
	while (done_seq < ticket)
		if (pthread_cond_timedwait(&nq_done, &nq_lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&nq_lock);
}
