/* test_libasync — libpayload's asynchronous get (lib/async.c) through the
 * shared library: completions in submission order (A3), the bounds on
 * batches and bytes in flight never passed, measured inside the queue and
 * by the test (A2), -EAGAIN and -E2BIG, errors per request, several
 * threads on one queue, and close with batches in flight (A5). Objects
 * are written with payload_put_many, some over 4096 bytes (fragments, so
 * batches load fragments on the pool). */
#include "tests/unit/tap.h"
#include "lib/payload.h"
#include "index/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOBJ 64
#define OSIZE(i) ((size_t)((i) % 3 == 0 ? 20000 + (i) * 37 : 100 + (i) * 11))
#define MAXSZ 24000
#define PER 4                   /* requests per batch */
static char dir[256];
static char *obj[NOBJ];
static char names[NOBJ][16];

static void setup(payload_store **ps)
{
	struct store_opts o = { .fragment_size = 4096, .create = 1 };
	char tmpl[] = "/tmp/test_libasync.XXXXXX";
	struct payload_put p[NOBJ];
	struct store *st;

	if (!mkdtemp(tmpl) || snprintf(dir, sizeof(dir), "%s/store", tmpl) < 0 || mkdir(dir, 0700) ||
	    store_open(dir, &o, &st)) {
		printf("Bail out! store\n");
		exit(1);
	}
	store_close(st);
	if (payload_open(dir, PAYLOAD_RDWR, ps)) {
		printf("Bail out! payload_open: %s\n", payload_errmsg());
		exit(1);
	}
	for (int i = 0; i < NOBJ; i++) {
		obj[i] = malloc(OSIZE(i));
		for (size_t k = 0; k < OSIZE(i); k++)
			obj[i][k] = (char)(k * 131 + i * 7 + (k >> 9));
		snprintf(names[i], sizeof(names[i]), "o%02d", i);
		p[i] = (struct payload_put){ .path = names[i], .data = obj[i], .len = OSIZE(i) };
	}
	if (payload_put_many(*ps, p, NOBJ)) {
		printf("Bail out! put_many: %s\n", payload_errmsg());
		exit(1);
	}
}

/* Batch number K: PER requests of objects (K * PER + j) % NOBJ. */
struct slot {
	struct payload_get r[PER];
	char buf[PER][MAXSZ];
};

static void fill(struct slot *s, unsigned k)
{
	for (int j = 0; j < PER; j++) {
		int o = (int)((k * PER + (unsigned)j) % NOBJ);
		s->r[j] = (struct payload_get){ .path = names[o], .buf = s->buf[j], .cap = MAXSZ };
	}
}

static int good(const struct payload_completion *c, unsigned k)
{
	for (int j = 0; j < PER; j++) {
		int o = (int)((k * PER + (unsigned)j) % NOBJ);
		if (c->reqs[j].result || c->reqs[j].len != OSIZE(o) || memcmp(c->reqs[j].buf, obj[o], OSIZE(o)))
			return 0;
	}
	return c->failed == 0 && c->n == PER;
}

/* ---- a producer thread submitting NB batches (blocking), a reaper here ---- */
#define NB 40
#define RING 12
static struct slot ring[RING];
struct prod {
	payload_queue *q;
	int rc;
};

static void *producer(void *arg)
{
	struct prod *p = arg;

	for (unsigned k = 0; k < NB && !p->rc; k++) {
		fill(&ring[k % RING], k);
		p->rc = payload_queue_submit(p->q, ring[k % RING].r, PER, (void *)(uintptr_t)(k + 1), 0);
	}
	return NULL;
}

static void stream(payload_store *ps, unsigned depth, uint64_t maxb, const char *what)
{
	payload_queue *q;
	struct prod p = { 0 };
	pthread_t th;
	unsigned next = 0, order = 1, right = 1, bounded = 1;
	struct payload_queue_stat s;

	CHECK(payload_queue_open(ps, depth, maxb, &q) == 0, "%s: open", what);
	p.q = q;
	pthread_create(&th, NULL, producer, &p);
	while (next < NB) {
		struct payload_completion c[3];
		int n = payload_queue_wait(q, c, 3, 1000);
		if (n == -ETIMEDOUT)
			continue;     /* a loaded machine */
		if (n <= 0) {
			/* nothing in flight yet: the producer is behind */
			if (n < 0)
				break;
			usleep(100);
			continue;
		}
		payload_queue_stat(q, &s);
		bounded &= s.batches <= depth && s.bytes <= maxb;
		for (int i = 0; i < n; i++, next++) {
			order &= (uintptr_t)c[i].tag == next + 1;
			right &= good(&c[i], next);
		}
		if (next % 7 == 0)
			usleep(2000);      /* a slow reader: submits must wait */
	}
	pthread_join(th, NULL);
	CHECK(p.rc == 0 && next == NB, "%s: %u of %d batches reaped (submit %d)", what, next, NB, p.rc);
	CHECK(order, "%s: completions in submission order", what);
	CHECK(right, "%s: every request's bytes and result right", what);
	payload_queue_stat(q, &s);
	CHECK(bounded && s.peak_bytes <= maxb, "%s: bytes in flight never over %llu (peak %llu)", what,
	      (unsigned long long)maxb, (unsigned long long)s.peak_bytes);
	CHECK(s.submitted == NB && s.completed == NB && s.batches == 0 && s.bytes == 0,
	      "%s: counters back to 0", what);
	payload_queue_close(q);
}

static void test_nowait(payload_store *ps)
{
	static struct slot a, b, c;
	uint64_t one = (uint64_t)PER * MAXSZ;
	payload_queue *q;
	struct payload_completion done[4];
	int n;

	CHECK(payload_queue_open(ps, 8, 2 * one, &q) == 0, "a queue of 2 batches' bytes");
	fill(&a, 0);
	fill(&b, 1);
	fill(&c, 2);
	CHECK_EQ(payload_queue_submit(q, a.r, PER, &a, PAYLOAD_NOWAIT), 0, "first batch");
	CHECK_EQ(payload_queue_submit(q, b.r, PER, &b, PAYLOAD_NOWAIT), 0, "second batch");
	CHECK_EQ(payload_queue_submit(q, c.r, PER, &c, PAYLOAD_NOWAIT), -EAGAIN,
		 "a third would pass the byte limit: EAGAIN (%s)", payload_errmsg());
	CHECK(strstr(payload_errmsg(), "bytes in flight") != NULL, "message: %s", payload_errmsg());
	n = payload_queue_wait(q, done, 1, -1);
	CHECK(n == 1 && done[0].tag == &a && good(&done[0], 0), "wait returns the oldest");
	CHECK_EQ(payload_queue_submit(q, c.r, PER, &c, PAYLOAD_NOWAIT), 0, "room again after a reap");
	n = payload_queue_wait(q, done, 4, -1);
	if (n == 1)
		n += payload_queue_wait(q, done + 1, 3, -1);
	CHECK(n == 2 && done[0].tag == &b && done[1].tag == &c && good(&done[0], 1) && good(&done[1], 2),
	      "then the other two, in order");
	CHECK_EQ(payload_queue_wait(q, done, 4, 10), 0, "nothing in flight: wait returns 0");
	CHECK_EQ(payload_queue_poll(q, done, 4), 0, "poll: 0");
	{
		static struct payload_get big[3];
		for (int i = 0; i < 3; i++)
			big[i] = (struct payload_get){ .path = "o00", .cap = one };
		CHECK_EQ(payload_queue_submit(q, big, 3, NULL, 0), -E2BIG, "a batch over the limit alone: E2BIG");
	}
	CHECK_EQ(payload_queue_submit(q, a.r, PER, NULL, 4), -EINVAL, "unknown flags: EINVAL");
	{
		payload_queue *q0;
		CHECK_EQ(payload_queue_open(ps, 0, 0, &q0), -EINVAL, "depth 0: EINVAL");
	}
	payload_queue_close(q);
	/* depth: the second batch waits for the first's reap */
	CHECK(payload_queue_open(ps, 1, 0, &q) == 0, "a queue of depth 1");
	CHECK_EQ(payload_queue_submit(q, a.r, PER, &a, PAYLOAD_NOWAIT), 0, "one batch");
	CHECK_EQ(payload_queue_submit(q, b.r, PER, &b, PAYLOAD_NOWAIT), -EAGAIN, "a second: EAGAIN");
	for (n = 0; n == 0;)
		n = payload_queue_poll(q, done, 4);   /* poll until the pool finished it */
	CHECK(n == 1 && done[0].tag == &a && good(&done[0], 0), "poll returns it once done");
	payload_queue_close(q);
}

static void test_errors(payload_store *ps)
{
	static char b[4][MAXSZ];
	struct payload_get r[4] = {
		{ .path = "o03", .buf = b[0], .cap = MAXSZ },
		{ .path = "missing", .buf = b[1], .cap = MAXSZ },
		{ .path = "o03", .buf = b[2], .cap = 10 },
		{ .path = "o01", .buf = b[3], .cap = MAXSZ },
	};
	struct payload_completion c;
	payload_queue *q;

	CHECK(payload_queue_open(ps, 2, 0, &q) == 0, "open");
	CHECK_EQ(payload_queue_submit(q, r, 4, NULL, 0), 0, "a batch with two bad requests");
	CHECK_EQ(payload_queue_wait(q, &c, 1, -1), 1, "reaped");
	CHECK(c.failed == 2 && r[1].result == -ENOENT && r[2].result == -ERANGE && r[2].size == OSIZE(3),
	      "per request: ENOENT, ERANGE with the size; failed = 2");
	CHECK(r[0].result == 0 && r[0].len == OSIZE(3) && memcmp(b[0], obj[3], OSIZE(3)) == 0 &&
	      r[3].result == 0 && memcmp(b[3], obj[1], OSIZE(1)) == 0, "the good requests are served");
	payload_queue_close(q);
}

/* close with batches in flight: it waits for them; their buffers are filled */
static void test_close(payload_store *ps)
{
	static struct slot s[16];
	payload_queue *q;
	int ok = 1;

	CHECK(payload_queue_open(ps, 16, 0, &q) == 0, "open");
	for (unsigned k = 0; k < 16; k++) {
		fill(&s[k], k);
		for (int j = 0; j < PER; j++)
			s[k].r[j].result = 12345;     /* not yet served */
		CHECK_EQ(payload_queue_submit(q, s[k].r, PER, NULL, 0), 0, "submit %u", k);
	}
	payload_queue_close(q);
	for (unsigned k = 0; k < 16; k++) {
		struct payload_completion c = { .reqs = s[k].r, .n = PER };
		ok &= good(&c, k);
	}
	CHECK(ok, "close with 16 batches in flight waited for all of them");
}

/* two submitting threads and two reaping threads on one queue */
struct mt {
	payload_queue *q;
	unsigned base, got, bad;
};
static unsigned mt_total;     /* atomic: batches reaped by both reapers */
static struct slot mslot[2][20];

static void *msub(void *arg)
{
	struct mt *m = arg;

	for (unsigned k = 0; k < 20; k++) {
		fill(&mslot[m->base][k], m->base * 20 + k);
		if (payload_queue_submit(m->q, mslot[m->base][k].r, PER, (void *)(uintptr_t)(m->base * 20 + k + 1), 0))
			m->bad++;
	}
	return NULL;
}

static void *mreap(void *arg)
{
	struct mt *m = arg;
	struct payload_completion c;

	while (__atomic_load_n(&mt_total, __ATOMIC_RELAXED) < 40) {
		int n = payload_queue_wait(m->q, &c, 1, 200);
		if (n == -ETIMEDOUT)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			usleep(100);
			continue;
		}
		m->got++;
		__atomic_add_fetch(&mt_total, 1, __ATOMIC_RELAXED);
		m->bad += !good(&c, (unsigned)((uintptr_t)c.tag - 1));
	}
	return NULL;
}

static void test_threads(payload_store *ps)
{
	struct mt s[2], r[2];
	pthread_t th[4];
	payload_queue *q;

	CHECK(payload_queue_open(ps, 3, 5 * (uint64_t)PER * MAXSZ, &q) == 0, "open");
	for (int i = 0; i < 2; i++) {
		s[i] = (struct mt){ .q = q, .base = (unsigned)i };
		r[i] = (struct mt){ .q = q };
		pthread_create(&th[i], NULL, msub, &s[i]);
		pthread_create(&th[2 + i], NULL, mreap, &r[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK(s[0].bad + s[1].bad + r[0].bad + r[1].bad == 0 && r[0].got + r[1].got == 40,
	      "2 submitters, 2 reapers: 40 batches, all right (%u, %u)", r[0].got, r[1].got);
	payload_queue_close(q);
}

int main(void)
{
	payload_store *ps;

	setup(&ps);
	stream(ps, 4, UINT64_MAX, "depth 4");
	stream(ps, 100, 3 * (uint64_t)PER * MAXSZ, "3 batches of bytes");
	test_nowait(ps);
	test_errors(ps);
	test_close(ps);
	test_threads(ps);
	payload_close(ps);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	for (int i = 0; i < NOBJ; i++)
		free(obj[i]);
	return tap_done();
}
