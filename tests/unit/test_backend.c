/* test_backend — the fragment backends: the common contract (put,
 * get_many batches with a missing id, EEXIST, del, list) for the local
 * backend with io_uring, the local backend with the pread fallback, and
 * the memory backend; then the local backend's files, fault points,
 * temporary-file sweep, truncation and persistence. Random ids come from a
 * logged seed (env TEST_SEED). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/backend.h"
#include "cache/fault.h"
#include "tests/unit/tap.h"

static uint64_t rng_state;

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
	return mix(rng_state += 0x9e3779b97f4a7c15ull);
}

static void seed_init(void)
{
	const char *s = getenv("TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);

	printf("# seed %llu\n", (unsigned long long)seed);
	rng_state = seed;
}

/* The image of ID: its length and bytes follow from the id. */
static size_t image_len(uint64_t id)
{
	uint64_t h = mix(id);

	return h % 16 == 0 ? 3 * 1024 * 1024 + h % 1000 : 1 + h % 5000;
}

static void image_fill(uint64_t id, unsigned char *p, size_t n)
{
	uint64_t s = id;

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			s = mix(s + i);
		p[i] = (unsigned char)(s >> (8 * (i % 8)));
	}
}

static int put_image(struct frag_backend *b, uint64_t id)
{
	size_t n = image_len(id);
	unsigned char *p = malloc(n);
	int rc;

	image_fill(id, p, n);
	rc = frag_put(b, id, p, n);
	free(p);
	return rc;
}

/* @return 1 when R holds the whole image of its id. */
static int image_ok(const struct frag_get *r)
{
	unsigned char *want;
	int ok;

	if (r->err || r->len != image_len(r->id))
		return 0;
	want = malloc(r->len);
	image_fill(r->id, want, r->len);
	ok = memcmp(want, r->buf, r->len) == 0;
	free(want);
	return ok;
}

static void reqs_alloc(struct frag_get *reqs, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		reqs[i].id = ids[i];
		reqs[i].cap = image_len(ids[i]);
		reqs[i].buf = malloc(reqs[i].cap);
		reqs[i].err = 12345;
		reqs[i].len = 777;
	}
}

static void reqs_free(struct frag_get *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(reqs[i].buf);
}

/* ---- list helpers ---- */

struct seen { const uint64_t *ids; size_t n; size_t found, extra, calls; };

static int seen_cb(void *arg, uint64_t id)
{
	struct seen *s = arg;
	size_t i;

	s->calls++;
	for (i = 0; i < s->n && s->ids[i] != id; i++)
		;
	if (i < s->n)
		s->found++;
	else
		s->extra++;
	return 0;
}

static int stop_cb(void *arg, uint64_t id)
{
	(void)id;
	return ++*(int *)arg == 3 ? 99 : 0;
}

/* ---- the common contract ---- */

#define NIDS 300   /* more than one io_uring submission's worth (256) */

static void gen_ids(uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ids[i] = i < 8 ? (rnd() & ~0xffull) | 0x5a : rnd() | 1;  /* a crowded fan-out dir */
}

static void check_batch(struct frag_backend *b, const char *name, const uint64_t *ids,
			size_t n)
{
	struct frag_get *reqs = calloc(n + 1, sizeof(*reqs));
	uint64_t *all = malloc((n + 1) * sizeof(*all));
	size_t good = 0;

	memcpy(all, ids, n * sizeof(*ids));
	all[n] = 0x0123456789abcdefull;   /* never put */
	reqs_alloc(reqs, all, n + 1);
	CHECK_EQ(frag_get_many(b, reqs, n + 1), 0, "%s: get_many of %zu ids submitted", name, n + 1);
	for (size_t i = 0; i < n; i++)
		good += image_ok(&reqs[i]);
	CHECK_EQ(good, n, "%s: every image read back whole", name);
	CHECK_EQ(reqs[n].err, -ENOENT, "%s: missing id gives -ENOENT", name);
	reqs_free(reqs, n + 1);
	free(reqs);
	free(all);
}

static void check_short(struct frag_backend *b, const char *name, uint64_t id)
{
	struct frag_get r = { .id = id, .cap = image_len(id) + 10 };

	r.buf = malloc(r.cap);
	CHECK_EQ(frag_get_many(b, &r, 1), 0, "%s: get_many with a too-large cap", name);
	CHECK_EQ(r.err, -EIO, "%s: image shorter than cap gives -EIO", name);
	CHECK_EQ(r.len, image_len(id), "%s: len says what was there", name);
	free(r.buf);
	CHECK_EQ(frag_get_many(b, NULL, 0), 0, "%s: empty batch", name);
}

static void check_list(struct frag_backend *b, const char *name, const uint64_t *ids,
		       size_t n)
{
	struct seen s = { ids, n, 0, 0, 0 };
	int count = 0;

	CHECK_EQ(frag_list(b, seen_cb, &s), 0, "%s: list", name);
	CHECK(s.found == n && s.extra == 0, "%s: list gives exactly the %zu ids (%zu, %zu extra)",
	      name, n, s.found, s.extra);
	CHECK_EQ(frag_list(b, stop_cb, &count), 99, "%s: list stops at the callback's value", name);
	CHECK_EQ(count, 3, "%s: ... after the 3rd id", name);
}

static void test_contract(struct frag_backend *b, const char *name)
{
	uint64_t *ids = malloc(NIDS * sizeof(*ids));
	size_t bad = 0;

	gen_ids(ids, NIDS);
	for (size_t i = 0; i < NIDS; i++)
		bad += put_image(b, ids[i]) != 0;
	CHECK_EQ(bad, 0, "%s: put %d images", name, NIDS);
	CHECK_EQ(frag_sync(b, ids, NIDS), 0, "%s: sync of the %d ids", name, NIDS);
	CHECK_EQ(frag_sync(b, ids, 0), 0, "%s: sync of nothing", name);
	CHECK_EQ(put_image(b, ids[3]), -EEXIST, "%s: duplicate put gives -EEXIST", name);
	CHECK_EQ(frag_put(b, ids[4], "x", 1), -EEXIST, "%s: duplicate put with other bytes", name);
	check_batch(b, name, ids, NIDS);
	check_short(b, name, ids[5]);
	CHECK_EQ(frag_del(b, ids[NIDS - 1]), 0, "%s: del", name);
	CHECK_EQ(frag_del(b, ids[NIDS - 1]), -ENOENT, "%s: del again gives -ENOENT", name);
	check_batch(b, name, ids, NIDS - 1);   /* the deleted one is the missing one now */
	check_list(b, name, ids, NIDS - 1);
	CHECK_EQ(frag_sync(b, ids, 2), 0, "%s: sync of 2 ids (fsync one by one)", name);
	free(ids);
}

/* ---- local backend specifics ---- */

static char *dir_make(void)
{
	char *d = strdup("/tmp/test_backend.XXXXXX");

	if (!mkdtemp(d)) {
		perror("mkdtemp");
		exit(1);
	}
	return d;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

static void dir_remove(char *d)
{
	nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static void frag_file(char *buf, size_t cap, const char *root, uint64_t id)
{
	snprintf(buf, cap, "%s/%02x/%016llx.frag", root, (unsigned)(id & 0xff),
		 (unsigned long long)id);
}

/* @return how many names in ROOT's fan-out folders start with PREFIX. */
static int count_prefix(const char *root, const char *prefix)
{
	char path[512];
	int n = 0;

	for (int d = 0; d < 256; d++) {
		snprintf(path, sizeof(path), "%s/%02x", root, d);
		DIR *dir = opendir(path);
		struct dirent *de;
		if (!dir)
			continue;
		while ((de = readdir(dir)))
			n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
		closedir(dir);
	}
	return n;
}

static void test_local_files(const char *root, struct frag_backend *b)
{
	char path[512];
	struct stat st;
	int dirs = 0, modes = 1;
	uint64_t id = 0xfeedface00000042ull;

	CHECK_EQ(put_image(b, id), 0, "local: put one more");
	frag_file(path, sizeof(path), root, id);
	CHECK(stat(path, &st) == 0, "local: image at XX/ID.frag (%s)", path);
	CHECK_EQ(st.st_mode & 07777, 0600, "local: image mode 0600");
	CHECK_EQ((size_t)st.st_size, image_len(id), "local: image size");
	for (int d = 0; d < 256; d++) {
		snprintf(path, sizeof(path), "%s/%02x", root, d);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			dirs++;
			modes &= (st.st_mode & 07777) == 0700;
		}
	}
	CHECK_EQ(dirs, 256, "local: 256 fan-out folders");
	CHECK(modes, "local: fan-out folders mode 0700");
	CHECK_EQ(count_prefix(root, ".tmp."), 0, "local: no temporary file left");
}

#ifdef PFS_FAULT_INJECTION
/* Arm POINT, put, and check nothing is left behind. */
static void check_put_fault(const char *root, struct frag_backend *b, const char *point)
{
	uint64_t id = rnd() | 1;
	char path[512];
	struct stat st;

	CHECK_EQ(fault_arm(point, 1, ENOSPC), 0, "arm %s", point);
	CHECK_EQ(put_image(b, id), -ENOSPC, "local: fault at %s gives -ENOSPC", point);
	frag_file(path, sizeof(path), root, id);
	CHECK(stat(path, &st) < 0 && errno == ENOENT, "local: %s: no final file", point);
	CHECK_EQ(count_prefix(root, ".tmp."), 0, "local: %s: no temporary file", point);
	CHECK_EQ(put_image(b, id), 0, "local: %s: the put works afterwards", point);
	fault_reset();
}

static void test_local_faults(const char *root, struct frag_backend *b)
{
	uint64_t ids[3] = { 0x1001, 0x1002, 0x1003 };
	struct frag_get reqs[3];

	check_put_fault(root, b, "frag_write");
	for (int i = 0; i < 3; i++)
		put_image(b, ids[i]);
	reqs_alloc(reqs, ids, 3);
	fault_arm("frag_read", 2, EIO);
	CHECK_EQ(frag_get_many(b, reqs, 3), 0, "local: get_many with a read fault");
	CHECK(image_ok(&reqs[0]) && image_ok(&reqs[2]), "local: other requests unaffected");
	CHECK_EQ(reqs[1].err, -EIO, "local: fault at frag_read fails its request");
	fault_reset();
	reqs_free(reqs, 3);
}
#else
static void test_local_faults(const char *root, struct frag_backend *b)
{
	(void)root, (void)b;
	printf("# fault points compiled out (FAULT=0): skipped\n");
}
#endif

static void test_local_truncate(const char *root, struct frag_backend *b)
{
	uint64_t id = 0x7777000000000123ull;
	char path[512];
	struct frag_get r = { .id = id };

	put_image(b, id);
	frag_file(path, sizeof(path), root, id);
	CHECK_EQ(truncate(path, (off_t)image_len(id) / 2), 0, "local: truncate an image");
	r.cap = image_len(id);
	r.buf = malloc(r.cap);
	frag_get_many(b, &r, 1);
	CHECK_EQ(r.err, -EIO, "local: truncated image gives -EIO");
	CHECK_EQ(r.len, image_len(id) / 2, "local: len is what was there");
	free(r.buf);
	frag_del(b, id);
}

/* Leftovers: temporary files stay at open (it lists nothing), go at
 * sweep_partial; strangers stay but are not listed. */
static void test_local_reopen(const char *root, struct frag_backend **bp, uint64_t *keep)
{
	char path[512];
	int fd, count = 0;
	struct stat st;

	snprintf(path, sizeof(path), "%s/ab/.tmp.0000000000000001.1.1", root);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	snprintf(path, sizeof(path), "%s/02/0000000000000001.frag", root);  /* wrong folder */
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof(path), "%s/01/00000000000000AB.frag", root);   /* upper case */
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof(path), "%s/00/README", root);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	frag_backend_destroy(*bp);
	CHECK_EQ(backend_local_open(root, bp), 0, "local: reopen");
	CHECK_EQ(count_prefix(root, ".tmp."), 1, "local: open does not list the folders: the temporary file stays");
	CHECK_EQ(frag_sweep_partial(*bp), 0, "local: sweep_partial");
	CHECK_EQ(count_prefix(root, ".tmp."), 0, "local: leftover temporary file removed by sweep_partial");
	CHECK(stat(path, &st) == 0, "local: other files left alone");
	struct seen s = { keep, 1, 0, 0, 0 };
	frag_list(*bp, seen_cb, &s);
	(void)count;
	CHECK_EQ(s.found, 1, "local: images persist across reopen");
	CHECK_EQ(s.calls, s.found + s.extra, "local: list consistent");
	CHECK(s.calls > 1 && s.calls < 1000, "local: list skips the stray names (%zu)", s.calls);
	check_batch(*bp, "local reopened", keep, 1);
}

/* ---- threads ---- */

struct thr { struct frag_backend *b; uint64_t base; int bad; };

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	uint64_t ids[40];
	struct frag_get reqs[40];

	for (int i = 0; i < 40; i++) {
		ids[i] = t->base + (uint64_t)i * 7;
		t->bad += put_image(t->b, ids[i]) != 0;
	}
	for (int round = 0; round < 5; round++) {
		reqs_alloc(reqs, ids, 40);
		t->bad += frag_get_many(t->b, reqs, 40) != 0;
		for (int i = 0; i < 40; i++)
			t->bad += !image_ok(&reqs[i]);
		reqs_free(reqs, 40);
	}
	return NULL;
}

static void test_threads(struct frag_backend *b, const char *name)
{
	pthread_t th[4];
	struct thr t[4];
	int bad = 0;

	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ b, ((uint64_t)(i + 1) << 40) | (rnd() & 0xffffff00ull), 0 };
		pthread_create(&th[i], NULL, thr_main, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	CHECK_EQ(bad, 0, "%s: 4 threads putting and reading concurrently", name);
}

/* ---- sync(ids): batched fsyncs, syncfs, errors, concurrency ---- */

struct sthr { struct frag_backend *b; uint64_t base; int rc; };

static void *sync_thr(void *arg)
{
	struct sthr *t = arg;
	uint64_t ids[50];

	for (int i = 0; i < 50; i++) {
		ids[i] = t->base + (uint64_t)i;
		if (put_image(t->b, ids[i]))
			t->rc = -1;
	}
	if (!t->rc)
		t->rc = frag_sync(t->b, ids, 50);
	return NULL;
}

/* MODE is PAYLOADFS_SYNC's value (NULL: automatic). */
static void test_local_sync(const char *mode)
{
	char *root = dir_make(), path[512];
	const char *m = mode ? mode : "auto";
	struct frag_backend *b = NULL;
	uint64_t ids[200];
	pthread_t th[4];
	struct sthr t[4];
	int bad = 0;

	if (mode)
		setenv("PAYLOADFS_SYNC", mode, 1);
	else
		unsetenv("PAYLOADFS_SYNC");
	CHECK_EQ(backend_local_open(root, &b), 0, "sync %s: open", m);
	unsetenv("PAYLOADFS_SYNC");
	if (!b) {
		dir_remove(root);
		return;
	}
	for (int i = 0; i < 200; i++) {
		ids[i] = 0x3000 + (uint64_t)i * 3;
		bad += put_image(b, ids[i]) != 0;
	}
	CHECK_EQ(bad, 0, "sync %s: 200 puts", m);
	CHECK_EQ(frag_sync(b, ids, 3), 0, "sync %s: 3 ids (one io_uring batch)", m);
	CHECK_EQ(frag_sync(b, ids, 200), 0, "sync %s: 200 ids", m);
	CHECK_EQ(frag_sync(b, NULL, 0), 0, "sync %s: every image put so far (200: one syncfs)", m);
	{       /* a few since: one fsync batch, an image deleted meanwhile needs nothing */
		int few = 0;
		for (uint64_t k = 0; k < 5; k++)
			few += put_image(b, 0x9000 + k * 5) == 0;
		frag_del(b, 0x9000 + 5);
		CHECK(few == 5 && frag_sync(b, NULL, 0) == 0,
		      "sync %s: every image put since (5, one deleted: an fsync batch)", m);
		CHECK_EQ(frag_sync(b, NULL, 0), 0, "sync %s: nothing put since: nothing to do", m);
	}
	if (!mode || strcmp(mode, "syncfs")) {
		uint64_t ghost[2] = { ids[0], 0x999999 };
		CHECK_EQ(frag_sync(b, ghost, 2), -ENOENT, "sync %s: an id never put is not reported durable", m);
	}
	/* a put over a stray (e.g. partial, after a crash) file of the same name */
	frag_file(path, sizeof(path), root, 0x4242);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	CHECK_EQ(put_image(b, 0x4242), -EEXIST, "sync %s: put never replaces an existing file", m);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct sthr){ b, 0x10000 * (uint64_t)(i + 1), 0 };
		pthread_create(&th[i], NULL, sync_thr, &t[i]);
	}
	bad = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].rc != 0;
	}
	CHECK_EQ(bad, 0, "sync %s: 4 threads put and sync their own 50 ids at once", m);
#ifdef PFS_FAULT_INJECTION
	fault_arm("frag_fsync", 2, ENOSPC);
	CHECK_EQ(frag_sync(b, ids, 3), mode && !strcmp(mode, "syncfs") ? 0 : -ENOSPC,
		 "sync %s: an fsync failing with ENOSPC fails the sync with ENOSPC", m);
	fault_reset();
	fault_arm("frag_fsync", 1, EIO);
	CHECK_EQ(frag_sync(b, ids, 200), -EIO, "sync %s: a failing sync of 200 ids returns EIO", m);
	fault_reset();
	if (!mode) {
		/* an injected syncfs failure lost nothing: not sticky */
		CHECK_EQ(frag_sync(b, ids, 200), 0, "sync auto: after an injected syncfs failure, 200 ids sync again");
		CHECK_EQ(frag_sync(b, NULL, 0), 0, "sync auto: and so does every image");
	}
	fault_arm("frag_fsync", 1, ENOSPC);
	CHECK_EQ(frag_sync(b, NULL, 0), 0, "sync %s: frag_fsync is not a point of a sync of all images", m);
	CHECK_EQ(frag_sync(b, ids, 3), -ENOSPC,
		 "sync %s: ... the next sync of ids reaches it", m);
	fault_reset();
#endif
	frag_backend_destroy(b);
	dir_remove(root);
}

static void run_local(const char *label, int no_uring)
{
	char *root = dir_make();
	struct frag_backend *b = NULL;
	uint64_t keep = 0x5a5a5a5a5a5a5a01ull;

#ifdef PFS_FAULT_INJECTION
	if (no_uring)
		fault_arm("uring_init", 1, ENOSYS);
#else
	if (no_uring) {
		printf("# fault points compiled out (FAULT=0): pread fallback not tested\n");
		dir_remove(root);
		return;
	}
#endif
	CHECK_EQ(backend_local_open(root, &b), 0, "%s: open %s", label, root);
#ifdef PFS_FAULT_INJECTION
	fault_reset();
#endif
	if (!b)
		return;
	test_contract(b, label);
	test_local_files(root, b);
	test_local_faults(root, b);
	test_local_truncate(root, b);
	test_threads(b, label);
	put_image(b, keep);
	test_local_reopen(root, &b, &keep);
	frag_backend_destroy(b);
	dir_remove(root);
}

static void test_local_open_errors(void)
{
	struct frag_backend *b = (void *)1;

	CHECK_EQ(backend_local_open("/nonexistent-dir/x/y", &b), -ENOENT,
		 "local: open under a missing parent gives -ENOENT");
	CHECK(b == NULL, "local: out is NULL on failure");
	frag_backend_destroy(NULL);
}

int main(void)
{
	struct frag_backend *m = NULL;

	seed_init();
	run_local("local", 0);
	run_local("local-pread", 1);
	test_local_open_errors();
	test_local_sync(NULL);
	test_local_sync("fsync");
	test_local_sync("syncfs");
	CHECK_EQ(backend_mem_open(&m), 0, "mem: open");
	test_contract(m, "mem");
	test_threads(m, "mem");
	frag_backend_destroy(m);
	return tap_done();
}
