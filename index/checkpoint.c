/* checkpoint — durability without a flush per commit.
 *
 * By default the index is committed without flushing (LMDB MDB_NOSYNC)
 * and fragment images are written without fsync: a commit is atomic and
 * visible at once and survives a crash of the daemon (the kernel keeps
 * every page written), but a power loss or kernel crash could leave a
 * flushed meta page pointing at pages that never reached the disk. A
 * CHECKPOINT, every checkpoint_ms and on demand (fsync(2), unmount),
 * makes a consistent state durable and remembers it, so that after such a
 * crash the store is rolled back to it: like ext4's journal commit, the
 * last second of work may be lost, the store is never damaged. With
 * store_opts.sync (-o sync) every commit flushes instead and there are no
 * checkpoints.
 *
 * A checkpoint:
 *  1. under commit_lock (no txn runs): epoch += 1, read the two LMDB meta
 *     pages (state K, the last committed txn) and begin a read txn on K —
 *     the checkpoint reader. While it lives LMDB never reuses a page freed
 *     after K, so every page reachable from K stays as it is on disk;
 *  2. sync the fragment backend (every image put so far is durable);
 *  3. flush the index (mdb_env_sync): K's pages are durable;
 *  4. write STORE/index/checkpoint (boot id, K's meta pages, checksum)
 *     through a temporary file, fsync, rename, fsync of the directory;
 *  5. end the previous checkpoint reader;
 *  6. delete the images whose last reference went in an epoch covered by
 *     this checkpoint (deferred deletion: an image that a durable state K
 *     references must still exist if the store is rolled back to K).
 *
 * Invariants:
 *  (1) The checkpoint file always describes a state whose index pages and
 *      referenced images are durable, and whose pages have not been
 *      reused since (its reader is alive, or the daemon stopped).
 *  (2) An image of the disk backend whose count reached 0 in epoch E is
 *      deleted only after a checkpoint of epoch >= E completed.
 *  (3) Checkpoints are serialized by ckpt_lock. Lock order: ckpt_lock,
 *      then commit_lock (step 1 only), then dq_lock; ckpt_wlock is a leaf.
 *
 * Growth: while the reader pins K, every txn writes its pages to fresh
 * space (about 9 pages of 4 KiB for a small create or commit), so a
 * stream of small txns grows the index file quickly. Every
 * CKPT_CHECK_TXNS txns ckpt_note_txn() checks the growth since the last
 * checkpoint and wakes the checkpoint thread past CKPT_GROWTH: the file
 * stays within about twice that of its live size.
 *
 * Space: deferred deletions and the pinned pages of the checkpoint reader
 * hold disk space until the next checkpoint. When the file system is
 * nearly full (below 4 reserves or 8 MiB) every write txn first runs a
 * checkpoint (ckpt_relieve): space that deletes freed comes back at once,
 * and the index reuses its pages as it would without checkpoints — a
 * nearly full store is as slow as one mounted with -o sync.
 *
 * Recovery at open (ckpt_recover, before LMDB opens the environment): the
 * same boot (/proc/sys/kernel/random/boot_id) means the kernel kept every
 * page — nothing to do, every acknowledged commit stays. Another boot
 * after an unclean stop, with meta pages that differ from the checkpoint's,
 * means the last txns may be torn: the saved meta pages are written back
 * (the store is at K again), and the sweep that follows deletes the images
 * written after K.
 */
#include "index/store_int.h"
#include "cache/codec.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define CKPT_MAGIC     0x4b434650u   /* "PFCK" */
#define CKPT_VERSION   1
#define CKPT_HDR       64
#define CKPT_F_CLEAN   0x1           /* written at close: nothing after it */
#define BOOT_ID_LEN    40
#define MAX_PSIZE      65536
#define CKPT_LOW_SPACE ((uint64_t)8 << 20)   /* below: checkpoint before txns */
#define CKPT_GROWTH    ((uint64_t)4 << 20)   /* index growth that asks for one */
#define CKPT_CHECK_TXNS 32                   /* txns between growth checks */

/* ---- the file ---- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* This boot's id (PAYLOADFS_BOOT_ID overrides it, for tests). */
static void boot_id(char out[BOOT_ID_LEN])
{
	const char *env = getenv("PAYLOADFS_BOOT_ID");
	FILE *f;

	memset(out, 0, BOOT_ID_LEN);
	if (env) {
		snprintf(out, BOOT_ID_LEN, "%s", env);
		return;
	}
	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (!f)
		return;
	if (!fgets(out, BOOT_ID_LEN, f))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/* A decoded checkpoint file. */
struct ckpt_file {
	uint32_t flags, psize;
	uint64_t seq;
	char boot[BOOT_ID_LEN];
	unsigned char *metas;      /* 2 x psize bytes, malloc'd */
};

static void ckpt_path(const struct store *st, char *buf, size_t cap, const char *suffix)
{
	snprintf(buf, cap, "%s/index/checkpoint%s", st->dir, suffix);
}

/* Encode F into a malloc'd buffer of *LEN bytes. */
static unsigned char *ckpt_encode(const struct ckpt_file *f, size_t *len)
{
	size_t n = CKPT_HDR + 2 * (size_t)f->psize + 8;
	unsigned char *b = calloc(1, n);

	if (!b)
		return NULL;
	put32(b, CKPT_MAGIC);
	b[4] = CKPT_VERSION;
	put32(b + 8, f->flags);
	put32(b + 12, f->psize);
	put64(b + 16, f->seq);
	memcpy(b + 24, f->boot, BOOT_ID_LEN);
	memcpy(b + CKPT_HDR, f->metas, 2 * (size_t)f->psize);
	put64(b + n - 8, frag_checksum(b, n - 8));
	*len = n;
	return b;
}

/* Read and check DIR's checkpoint file. @return 0 (F filled, F->metas
 * malloc'd), -ENOENT (none), -EPROTO (damaged or of another version),
 * -errno. */
static int ckpt_read(const char *dir, struct ckpt_file *f)
{
	char path[4096];
	unsigned char *b = NULL;
	struct stat sb;
	size_t n;
	int fd, rc = 0;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/index/checkpoint", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || sb.st_size < CKPT_HDR + 8 || sb.st_size > CKPT_HDR + 2 * MAX_PSIZE + 8)
		rc = -EPROTO;
	n = rc ? 0 : (size_t)sb.st_size;
	if (!rc && !(b = malloc(n)))
		rc = -ENOMEM;
	if (!rc && pread(fd, b, n, 0) != (ssize_t)n)
		rc = -EPROTO;
	close(fd);
	if (!rc && (get32(b) != CKPT_MAGIC || b[4] != CKPT_VERSION ||
		    get64(b + n - 8) != frag_checksum(b, n - 8)))
		rc = -EPROTO;
	if (!rc) {
		f->flags = get32(b + 8);
		f->psize = get32(b + 12);
		f->seq = get64(b + 16);
		memcpy(f->boot, b + 24, BOOT_ID_LEN);
		f->boot[BOOT_ID_LEN - 1] = '\0';
		if (n != CKPT_HDR + 2 * (size_t)f->psize + 8 || !f->psize)
			rc = -EPROTO;
	}
	if (!rc && !(f->metas = malloc(2 * (size_t)f->psize)))
		rc = -ENOMEM;
	if (!rc)
		memcpy(f->metas, b + CKPT_HDR, 2 * (size_t)f->psize);
	free(b);
	return rc;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Write B/LEN to PATH and fsync it; TRUNC makes a new file, else PATH
 * must exist with exactly LEN bytes (an overwrite in place needs no free
 * block). @return 0 or -errno. */
static int write_file(const char *path, const unsigned char *b, size_t len, int trunc)
{
	struct stat sb;
	int fd = open(path, O_WRONLY | O_CLOEXEC | (trunc ? O_CREAT | O_TRUNC : 0), 0600), rc = 0;

	if (fd < 0)
		return -errno;
	if (!trunc && (fstat(fd, &sb) < 0 || (size_t)sb.st_size != len))
		rc = -ENOSPC;
	if (!rc && pwrite(fd, b, len, 0) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Write F as the store's checkpoint file, durably: a temporary file and a
 * rename; on a full file system, over the old file in place (a torn
 * write there fails the checksum: no roll-back, never a wrong one).
 * @return 0 or -errno. */
static int ckpt_write(struct store *st, const struct ckpt_file *f)
{
	char tmp[4096], final[4096], dir[4096];
	unsigned char *b;
	size_t len;
	int rc = FAULT("checkpoint_write");

	if (rc)
		return rc;
	if (!(b = ckpt_encode(f, &len)))
		return -ENOMEM;
	ckpt_path(st, tmp, sizeof(tmp), ".tmp");
	ckpt_path(st, final, sizeof(final), "");
	snprintf(dir, sizeof(dir), "%s/index", st->dir);
	rc = write_file(tmp, b, len, 1);
	if (!rc && rename(tmp, final) < 0)
		rc = -errno;
	if (!rc)
		rc = fsync_dir(dir);
	if (rc)
		unlink(tmp);
	if (rc == -ENOSPC || rc == -EDQUOT)
		rc = write_file(final, b, len, 0);
	free(b);
	return rc;
}

/* ---- recovery ---- */

int ckpt_recover(const char *dir, int rdonly)
{
	struct ckpt_file f;
	char now[BOOT_ID_LEN], idxdir[4096];
	unsigned char *cur = NULL;
	int rc = ckpt_read(dir, &f);

	if (rc == -ENOENT)
		return 0;            /* a new store, or one that always synced */
	if (rc == -EPROTO) {
		log_warn("%s/index/checkpoint is damaged: not used", dir);
		return 0;
	}
	if (rc)
		return rc;
	boot_id(now);
	if (strcmp(now, f.boot) == 0 || (f.flags & CKPT_F_CLEAN))
		goto out;            /* the kernel kept every page, or nothing after it */
	snprintf(idxdir, sizeof(idxdir), "%s/index", dir);
	if (!(cur = malloc(2 * (size_t)f.psize))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = idx_meta_file(idxdir, cur, 2 * (size_t)f.psize, 0);
	if (rc || memcmp(cur, f.metas, 2 * (size_t)f.psize) == 0)
		goto out;            /* unreadable: LMDB will say; equal: nothing to undo */
	if (rdonly) {
		rc = -ESTALE;       /* store_strerror says what to do */
		goto out;
	}
	rc = idx_meta_file(idxdir, f.metas, 2 * (size_t)f.psize, 1);
	if (rc)
		log_err("%s: rolling back to the last checkpoint failed: %s", dir, strerror(-rc));
	else
		log_warn("%s: the machine restarted after an unclean stop: the store was rolled "
			 "back to its last checkpoint (changes after it are lost)", dir);
out:
	free(cur);
	free(f.metas);
	return rc;
}

/* ---- deferred deletion ---- */

struct dq_ent {
	struct frag_desc d;
	uint64_t epoch;
};

int ckpt_defer_delete(struct store *st, const struct frag_desc *d)
{
	struct dq_ent *v;

	if (!st->ckpt_on || (d->flags & FRAG_F_MEMORY))
		return 0;           /* delete now */
	pthread_mutex_lock(&st->dq_lock);
	if (st->dqn == st->dqcap) {
		size_t cap = st->dqcap ? st->dqcap * 2 : 64;
		v = realloc(st->dq, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&st->dq_lock);
			return 1;   /* no memory: keep the image, the sweep deletes it */
		}
		st->dq = v;
		st->dqcap = cap;
	}
	st->dq[st->dqn++] = (struct dq_ent){ *d, __atomic_load_n(&st->epoch, __ATOMIC_ACQUIRE) };
	pthread_mutex_unlock(&st->dq_lock);
	return 1;
}

/* Take the entries of epochs <= EPOCH off the queue. @return them
 * (malloc'd, *N), or NULL. */
static struct dq_ent *dq_take(struct store *st, uint64_t epoch, size_t *n)
{
	struct dq_ent *out = NULL;
	size_t k = 0, keep = 0;

	*n = 0;
	pthread_mutex_lock(&st->dq_lock);
	if (st->dqn && (out = malloc(st->dqn * sizeof(*out)))) {
		for (size_t i = 0; i < st->dqn; i++) {
			if (st->dq[i].epoch <= epoch)
				out[k++] = st->dq[i];
			else
				st->dq[keep++] = st->dq[i];
		}
		st->dqn = keep;
	}
	pthread_mutex_unlock(&st->dq_lock);
	*n = k;
	return out;
}

/* ---- the checkpoint ---- */

/* One checkpoint (caller holds ckpt_lock). CLEAN: the daemon is closing
 * and no txn follows. @return 0 or -errno (the previous checkpoint stays
 * valid: its reader is kept). */
static int checkpoint_locked(struct store *st, int clean)
{
	struct ckpt_file f = { .flags = clean ? CKPT_F_CLEAN : 0 };
	struct idx_txn *reader = NULL;
	struct dq_ent *del;
	size_t psize, ndel;
	uint64_t epoch;
	int64_t t0 = store_now_ns();
	int rc = idx_page_size(st->idx, &psize);

	if (!rc && (psize > MAX_PSIZE || !(f.metas = malloc(2 * psize))))
		rc = -ENOMEM;
	if (rc)
		return rc;
	f.psize = (uint32_t)psize;
	/* 1. the state K: no txn runs while we look */
	pthread_mutex_lock(&st->commit_lock);
	epoch = __atomic_fetch_add(&st->epoch, 1, __ATOMIC_ACQ_REL);
	rc = idx_meta_pages(st->idx, f.metas, 2 * psize);
	if (!rc)
		rc = idx_begin(st->idx, 1, &reader);
	__atomic_store_n(&st->ckpt_used_at, idx_used_bytes(st->idx), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st->commit_lock);
	/* 2-3. its images and pages durable */
	if (!rc)
		rc = frag_sync(st->disk, NULL, 0);   /* every image put so far */
	if (!rc)
		rc = idx_sync(st->idx);
	/* 4. remember it */
	if (!rc) {
		f.seq = ++st->ckpt_seq;
		boot_id(f.boot);
		rc = ckpt_write(st, &f);
	}
	free(f.metas);
	if (rc) {
		idx_abort(reader);
		log_err("checkpoint failed: %s (the previous one stays; retried)", strerror(-rc));
		__atomic_add_fetch(&st->stats.checkpoint_failures, 1, __ATOMIC_RELAXED);
		return rc;
	}
	/* 5. K is the new rollback point (after the final one, no txn follows:
	 * no page needs protecting) */
	idx_abort(st->ckpt_reader);
	st->ckpt_reader = reader;
	if (clean) {
		idx_abort(reader);
		st->ckpt_reader = NULL;
	}
	__atomic_add_fetch(&st->stats.checkpoints, 1, __ATOMIC_RELAXED);
	log_debug("checkpoint %llu: %.1f ms, index %llu MB", (unsigned long long)f.seq,
		 (double)(store_now_ns() - t0) / 1e6, (unsigned long long)(idx_used_bytes(st->idx) >> 20));
	/* 6. images no durable state references any more */
	del = dq_take(st, epoch, &ndel);
	for (size_t i = 0; i < ndel; i++)
		store_delete_image(st, &del[i].d);
	free(del);
	return 0;
}

int store_checkpoint(struct store *st, int clean)
{
	int rc;

	if (!st->ckpt_on)
		return 0;
	pthread_mutex_lock(&st->ckpt_lock);
	rc = checkpoint_locked(st, clean);
	pthread_mutex_unlock(&st->ckpt_lock);
	return rc;
}

/* Bytes free on the store's file system (UINT64_MAX when unknown). */
static uint64_t store_free(struct store *st)
{
	struct statvfs sv;

	if (statvfs(st->dir, &sv) < 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

void ckpt_note_txn(struct store *st)
{
	uint64_t n = __atomic_add_fetch(&st->ckpt_txns, 1, __ATOMIC_RELAXED);

	if (!st->ckpt_running || n % CKPT_CHECK_TXNS)
		return;
	if (idx_used_bytes(st->idx) < __atomic_load_n(&st->ckpt_used_at, __ATOMIC_RELAXED) + CKPT_GROWTH)
		return;
	pthread_mutex_lock(&st->ckpt_wlock);
	st->ckpt_urgent = 1;
	pthread_cond_broadcast(&st->ckpt_cond);
	pthread_mutex_unlock(&st->ckpt_wlock);
}

void ckpt_relieve(struct store *st)
{
	uint64_t low = st->reserve_size * 4 > CKPT_LOW_SPACE ? st->reserve_size * 4 : CKPT_LOW_SPACE;

	if (!st->ckpt_on || store_free(st) >= low)
		return;
	/* every txn: each checkpoint lets LMDB reuse the pages freed before
	 * it, so on a nearly full disk the index grows by at most one txn */
	__atomic_store_n(&st->ckpt_relieved_ns, store_now_ns(), __ATOMIC_RELAXED);
	store_sync(st);
}

int store_sync(struct store *st)
{
	uint64_t want, gen = 0;
	int rc = 0, covered;

	if (!st->ckpt_on)
		return 0;        /* -o sync: every commit already was durable */
	/* group commit: any checkpoint numbered >= WANT started after this
	 * call, so it covers every commit that returned before it */
	pthread_mutex_lock(&st->ckpt_wlock);
	want = st->ckpt_gen + 1;
	pthread_mutex_unlock(&st->ckpt_wlock);
	pthread_mutex_lock(&st->ckpt_lock);
	pthread_mutex_lock(&st->ckpt_wlock);
	covered = st->ckpt_done_gen >= want;
	if (!covered)
		gen = ++st->ckpt_gen;
	pthread_mutex_unlock(&st->ckpt_wlock);
	if (!covered) {
		rc = checkpoint_locked(st, 0);
		pthread_mutex_lock(&st->ckpt_wlock);
		if (!rc)
			st->ckpt_done_gen = gen;
		pthread_mutex_unlock(&st->ckpt_wlock);
	}
	pthread_mutex_unlock(&st->ckpt_lock);
	return rc;
}

static void *ckpt_main(void *arg)
{
	struct store *st = arg;
	struct timespec until;

	pthread_mutex_lock(&st->ckpt_wlock);
	while (!st->ckpt_stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(st->ckpt_ms % 1000) * 1000000;
		until.tv_sec += st->ckpt_ms / 1000 + until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		while (!st->ckpt_urgent && !st->ckpt_stopping &&
		       pthread_cond_timedwait(&st->ckpt_cond, &st->ckpt_wlock, &until) != ETIMEDOUT)
			;
		if (st->ckpt_stopping)
			break;
		st->ckpt_urgent = 0;
		pthread_mutex_unlock(&st->ckpt_wlock);
		store_sync(st);
		pthread_mutex_lock(&st->ckpt_wlock);
	}
	pthread_mutex_unlock(&st->ckpt_wlock);
	return NULL;
}

int ckpt_start(struct store *st)
{
	int rc;

	if (!st->ckpt_on)
		return 0;
	rc = idx_set_nosync(st->idx, 1);
	if (!rc)
		rc = store_sync(st);   /* the state found at open is the first rollback point */
	if (!rc && (rc = -pthread_create(&st->ckpt_thread, NULL, ckpt_main, st)) == 0)
		st->ckpt_running = 1;
	if (rc)
		st->ckpt_on = 0;       /* nothing to stop; store_open fails */
	return rc;
}

void ckpt_stop(struct store *st)
{
	if (st->ckpt_running) {
		pthread_mutex_lock(&st->ckpt_wlock);
		st->ckpt_stopping = 1;
		pthread_cond_broadcast(&st->ckpt_cond);
		pthread_mutex_unlock(&st->ckpt_wlock);
		pthread_join(st->ckpt_thread, NULL);
		st->ckpt_running = 0;
	}
	if (st->ckpt_on && store_checkpoint(st, 1))
		log_warn("the final checkpoint failed: a restart after a power loss may roll back "
			 "to the one before (images still queued for deletion are left to the "
			 "next mount's sweep)");
	idx_abort(st->ckpt_reader);
	st->ckpt_reader = NULL;
	free(st->dq);
	st->dq = NULL;
	st->dqn = st->dqcap = 0;
}
