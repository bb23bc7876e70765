/* test_backend — the fragment backends: the common contract
 * (backend_contract.h: put, get_many batches with a missing id, EEXIST,
 * del, list, threads) for the local backend with io_uring, the local
 * backend with the pread fallback, and the memory backend, from one
 * table; then the local backend's files, fault points, temporary-file
 * sweep, truncation, persistence and sync modes. Random ids come from a
 * logged seed (env TEST_SEED). test_backend_rados runs the same contract
 * on the RADOS backend. */
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

#include "tests/unit/backend_contract.h"

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
	contract_run(b, label);
	test_local_files(root, b);
	test_local_faults(root, b);
	test_local_truncate(root, b);
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

static void run_mem(const char *label, int unused)
{
	struct frag_backend *m = NULL;

	(void)unused;
	CHECK_EQ(backend_mem_open(&m), 0, "%s: open", label);
	if (!m)
		return;
	contract_run(m, label);
	frag_backend_destroy(m);
}

/* The backends of this binary, each through the common contract
 * (backend_contract.h) and its own checks; test_backend_rados runs the
 * same contract on the RADOS backend against a real cluster. */
static const struct {
	const char *label;
	void (*run)(const char *label, int arg);
	int arg;
} backends[] = {
	{ "local", run_local, 0 },
	{ "local-pread", run_local, 1 },   /* io_uring unavailable */
	{ "mem", run_mem, 0 },
};

int main(void)
{
	seed_init();
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		backends[i].run(backends[i].label, backends[i].arg);
	test_local_open_errors();
	test_local_sync(NULL);
	test_local_sync("fsync");
	test_local_sync("syncfs");
	return tap_done();
}
