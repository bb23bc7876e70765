/* test_checkpoint — durability without a flush per commit
 * (index/checkpoint.c):
 *  - a store opens with a checkpoint; store_sync() makes one, and
 *    concurrent callers share them;
 *  - an image whose last reference went is deleted only at the next
 *    checkpoint (invariant 2);
 *  - a daemon that dies (a child process that _exits without closing) loses
 *    nothing acknowledged: the same boot reopens the latest state;
 *  - a simulated power loss (the data file as of the last checkpoint, with
 *    the newer meta pages on it, and another boot id) is rolled back to the
 *    checkpoint: the objects of the checkpoint read right, later ones are
 *    gone, the images written after it are swept; a read-only open of such
 *    a store is refused (-ESTALE) until a read-write one recovered it;
 *  - the fault points lmdb_sync and checkpoint_write fail store_sync()
 *    with their errno, keep the previous checkpoint, and the next one works;
 *  - with opts.sync there is no checkpoint and images go at once. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/fault.h"
#include "cache/log.h"
#include "index/store.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"

#define ROOT IDX_ROOT_INO
#define FRAG 4096

static char tmp[4096], sdir[4500], fragdir[4600], mdb[4600], ckfile[4600];

static struct store *open_store(int rdonly, int sync, int *err)
{
	/* no timed checkpoints: the tests decide when one happens (the
	 * power-loss image assumes no checkpoint after the one it copies) */
	struct store_opts o = { .fragment_size = FRAG, .create = !rdonly, .sweep = !rdonly,
				.rdonly = rdonly, .sync = sync, .checkpoint_ms = 600000 };
	struct store *s = NULL;
	int rc = store_open(sdir, &o, &s);

	if (err)
		*err = rc;
	return rc ? NULL : s;
}

static int64_t mk(struct store *st, const char *name)
{
	struct idx_inode in;
	int rc = store_mknod(st, ROOT, name, S_IFREG | 0644, 0, 1000, 1000, &in);

	return rc ? rc : (int64_t)in.ino;
}

static int put_data(struct store *st, uint64_t ino, const void *data, size_t len)
{
	struct pver *pv;
	struct wsess *ws;
	int rc = store_pver_get(st, ino, &pv);

	if (rc)
		return rc;
	rc = store_wsess_begin(st, pv, NULL, 1, &ws);
	pver_put(pv);
	if (!rc)
		rc = wsess_write(ws, data, len, 0);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}

/* 1 when NAME holds exactly DATA/LEN in ST. */
static int holds(struct store *st, const char *name, const void *data, size_t len)
{
	struct idx_inode in;
	struct pver *pv;
	char *buf;
	ssize_t n;
	int ok;

	if (store_lookup(st, ROOT, name, &in) || store_pver_get(st, in.ino, &pv))
		return 0;
	buf = malloc(len + 16);
	n = pver_read(pv, buf, len + 16, 0);
	ok = n == (ssize_t)len && memcmp(buf, data, len) == 0;
	free(buf);
	pver_put(pv);
	return ok;
}

static char *rows(size_t n, int seed, size_t *len)
{
	char *b = malloc(n * 32 + 1);
	size_t at = 0;

	for (size_t i = 0; i < n; i++)
		at += (size_t)sprintf(b + at, "%zu,%d,row-%zu\n", i, seed, i * (size_t)seed);
	*len = at;
	return b;
}

static long nimages(void)
{
	return tut_count_files(fragdir, ".frag");
}

static uint64_t checkpoints(struct store *st)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s.checkpoints;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600), rc = 0;
	ssize_t n;

	if (in < 0 || out < 0)
		rc = -1;
	while (!rc && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			rc = -1;
	if (in >= 0)
		close(in);
	if (out >= 0 && (fsync(out) || close(out)))
		rc = -1;
	return rc;
}

struct syncer { struct store *st; int rc; };

static void *sync_main(void *arg)
{
	struct syncer *s = arg;

	for (int i = 0; i < 5 && !s->rc; i++)
		s->rc = store_sync(s->st);
	return NULL;
}

static void test_basics(void)
{
	struct store *st = open_store(0, 0, NULL);
	struct syncer sy[4];
	pthread_t t[4];
	size_t len;
	char *a = rows(3000, 1, &len);
	int64_t ino;
	long before;
	uint64_t c0;
	int ok = 1;

	CHECK(st != NULL, "open a store with checkpoints");
	CHECK(checkpoints(st) >= 1, "the open made the first checkpoint");
	CHECK(access(ckfile, F_OK) == 0, "index/checkpoint exists");
	ino = mk(st, "a.csv");
	CHECK(ino > 0 && put_data(st, (uint64_t)ino, a, len) == 0, "a.csv: %zu bytes committed", len);
	c0 = checkpoints(st);
	CHECK_EQ(store_sync(st), 0, "store_sync");
	CHECK_EQ(checkpoints(st), c0 + 1, "... made one checkpoint");
	for (int i = 0; i < 4; i++) {
		sy[i] = (struct syncer){ st, 0 };
		pthread_create(&t[i], NULL, sync_main, &sy[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok &= sy[i].rc == 0;
	}
	CHECK(ok, "4 threads x 5 store_sync: all 0");
	CHECK(checkpoints(st) - c0 - 1 <= 20, "... %llu checkpoints for 20 calls",
	      (unsigned long long)(checkpoints(st) - c0 - 1));
	/* deferred deletion */
	before = nimages();
	free(a);
	a = rows(3000, 2, &len);
	CHECK_EQ(put_data(st, (uint64_t)ino, a, len), 0, "rewrite a.csv");
	CHECK(nimages() > before, "the old images stay until a checkpoint (%ld > %ld)", nimages(), before);
	CHECK_EQ(store_sync(st), 0, "a checkpoint");
	CHECK_EQ(nimages(), before, "the checkpoint deleted the old images");
	CHECK(holds(st, "a.csv", a, len), "a.csv reads its new bytes");
	store_close(st);
	free(a);
}

/* The power-loss test: a child makes checkpoint K, copies the data file
 * as of K, commits more, saves the meta pages it left and _exits. */
static void test_power_loss(void)
{
	char snap[4400], metas[4400];
	size_t la, lb, la2;
	char *a = rows(2000, 3, &la), *b = rows(5000, 4, &lb), *a2 = rows(1000, 5, &la2);
	pid_t pid;
	int status, err;
	struct store *st;
	long images_k = 0, images_crash = 0;

	snprintf(snap, sizeof(snap), "%s/data.mdb.at-k", tmp);
	snprintf(metas, sizeof(metas), "%s/metas.after", tmp);
	pid = fork();
	if (pid == 0) {
		st = open_store(0, 0, NULL);
		int64_t ia = st ? mk(st, "pa.csv") : -1;
		if (ia < 0 || put_data(st, (uint64_t)ia, a, la) || store_sync(st))
			_exit(2);
		if (copy_file(mdb, snap))    /* what the disk holds at K */
			_exit(3);
		int64_t ib = mk(st, "pb.csv");
		if (ib < 0 || put_data(st, (uint64_t)ib, b, lb) || put_data(st, (uint64_t)ia, a2, la2))
			_exit(4);
		/* the meta pages as the dying daemon left them */
		char page[2 * 65536];
		int fd = open(mdb, O_RDONLY), out = open(metas, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ssize_t n = fd >= 0 ? pread(fd, page, 2 * 4096, 0) : -1;
		if (n != 2 * 4096 || out < 0 || write(out, page, (size_t)n) != n)
			_exit(5);
		_exit(0);            /* no store_close: a crash */
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child committed, checkpointed, committed more and died (%d)",
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);

	/* keep the dead daemon's whole store for the power-loss case */
	char crash[4400], cmd[9200], orig[4500];
	snprintf(crash, sizeof(crash), "%s/crashed", tmp);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", sdir, crash);
	CHECK_EQ(system(cmd), 0, "copy the store as the dead daemon left it");

	/* same boot: the kernel kept every page — nothing acknowledged is lost */
	st = open_store(0, 0, &err);
	CHECK(st != NULL, "same boot: the store reopens (%s)", st ? "ok" : store_strerror(err));
	CHECK(st && holds(st, "pb.csv", b, lb) && holds(st, "pa.csv", a2, la2),
	      "same boot: every commit of the dead daemon is there");
	store_close(st);

	/* a power loss, on the copy: its data file as of K with the newer meta
	 * pages on it (flushed metas, pages that never reached the disk) */
	snprintf(orig, sizeof(orig), "%s", sdir);
	snprintf(sdir, sizeof(sdir), "%s", crash);
	snprintf(fragdir, sizeof(fragdir), "%s/fragments", sdir);
	snprintf(mdb, sizeof(mdb), "%s/index/data.mdb", sdir);
	CHECK_EQ(copy_file(snap, mdb), 0, "the copy's data file as of the checkpoint");
	{
		char page[2 * 4096];
		int in = open(metas, O_RDONLY), fd = open(mdb, O_WRONLY);
		int ok = in >= 0 && fd >= 0 && read(in, page, sizeof(page)) == (ssize_t)sizeof(page) &&
			 pwrite(fd, page, sizeof(page), 0) == (ssize_t)sizeof(page);
		if (in >= 0)
			close(in);
		if (fd >= 0)
			close(fd);
		CHECK(ok, "... with the dying daemon's meta pages on it (torn)");
	}
	images_crash = nimages();
	setenv("PAYLOADFS_BOOT_ID", "another-boot", 1);   /* the machine restarted */
	st = open_store(1, 0, &err);
	CHECK(st == NULL && err == -ESTALE, "read-only open after the restart: -ESTALE (%s)", store_strerror(err));
	log_init("test_checkpoint", LOG_TO_STDERR, LOG_ERR);
	st = open_store(0, 0, &err);
	log_init("test_checkpoint", LOG_TO_STDERR, LOG_INFO);
	CHECK(st != NULL, "read-write open after the restart rolls back (%s)", st ? "ok" : store_strerror(err));
	CHECK(st && holds(st, "pa.csv", a, la), "pa.csv holds its bytes of the checkpoint");
	struct idx_inode in;
	CHECK(st && store_lookup(st, ROOT, "pb.csv", &in) == -ENOENT, "pb.csv (after the checkpoint) is gone");
	if (st) {
		CHECK_EQ(store_sync(st), 0, "a checkpoint after the recovery");
		images_k = nimages();
	}
	store_close(st);
	unsetenv("PAYLOADFS_BOOT_ID");
	st = open_store(0, 0, NULL);
	CHECK(st && holds(st, "pa.csv", a, la), "reopened: pa.csv still right");
	CHECK(images_k > 0 && nimages() == images_k && images_k < images_crash,
	      "images after the sweep: %ld of the %ld the crash left (pb.csv's and pa.csv v2's went)",
	      nimages(), images_crash);
	store_close(st);
	snprintf(sdir, sizeof(sdir), "%s", orig);
	snprintf(fragdir, sizeof(fragdir), "%s/fragments", sdir);
	snprintf(mdb, sizeof(mdb), "%s/index/data.mdb", sdir);
	free(a);
	free(b);
	free(a2);
}

static void test_faults(void)
{
#ifdef PFS_FAULT_INJECTION
	struct store *st = open_store(0, 0, NULL);
	struct store_stats s0, s1;
	char before[8192], after[8192];
	int fd;
	ssize_t n0, n1;

	fd = open(ckfile, O_RDONLY);
	n0 = fd >= 0 ? read(fd, before, sizeof(before)) : -1;
	if (fd >= 0)
		close(fd);
	store_get_stats(st, &s0);
	log_init("test_checkpoint", LOG_TO_STDERR, LOG_CRIT);
	fault_arm("lmdb_sync", 1, EIO);
	CHECK_EQ(store_sync(st), -EIO, "lmdb_sync EIO: store_sync fails with EIO");
	fault_arm("checkpoint_write", 1, ENOSPC);
	CHECK_EQ(store_sync(st), -ENOSPC, "checkpoint_write ENOSPC: store_sync fails with ENOSPC");
	log_init("test_checkpoint", LOG_TO_STDERR, LOG_INFO);
	store_get_stats(st, &s1);
	CHECK_EQ(s1.checkpoint_failures - s0.checkpoint_failures, 2, "two failures counted");
	fd = open(ckfile, O_RDONLY);
	n1 = fd >= 0 ? read(fd, after, sizeof(after)) : -1;
	if (fd >= 0)
		close(fd);
	CHECK(n0 > 0 && n0 == n1 && memcmp(before, after, (size_t)n0) == 0,
	      "the previous checkpoint file is untouched");
	CHECK_EQ(store_sync(st), 0, "the next store_sync works");
	store_close(st);
	fault_reset();
#else
	printf("ok %d - # skip fault injection not compiled in\n", ++tap_n);
#endif
}

static void test_sync_mode(void)
{
	struct store *st;
	size_t len;
	char *a = rows(3000, 6, &len);
	int64_t ino;
	long before;

	tut_rmrf(sdir);
	mkdir(sdir, 0700);
	st = open_store(0, 1, NULL);
	CHECK(st != NULL, "open with opts.sync");
	CHECK(st && checkpoints(st) == 0 && access(ckfile, F_OK) != 0, "no checkpoints, no checkpoint file");
	ino = mk(st, "s.csv");
	CHECK(ino > 0 && put_data(st, (uint64_t)ino, a, len) == 0, "commit");
	before = nimages();
	CHECK_EQ(put_data(st, (uint64_t)ino, a, len / 2), 0, "rewrite");
	CHECK(nimages() < before + (long)(len / FRAG) && store_sync(st) == 0 && checkpoints(st) == 0,
	      "images of the old version went at once; store_sync is a no-op");
	store_close(st);
	free(a);
}

int main(void)
{
	if (tut_mkdtemp(tmp, sizeof(tmp), "ckpt")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(sdir, sizeof(sdir), "%s/store", tmp);
	snprintf(fragdir, sizeof(fragdir), "%s/fragments", sdir);
	snprintf(mdb, sizeof(mdb), "%s/index/data.mdb", sdir);
	snprintf(ckfile, sizeof(ckfile), "%s/index/checkpoint", sdir);
	mkdir(sdir, 0700);
	test_basics();
	test_power_loss();
	test_faults();
	test_sync_mode();
	tut_rmrf(tmp);
	return tap_done();
}
