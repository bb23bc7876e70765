/* idx_lmdb — LMDB implementation of idx.h: environment, txns, records.
 *
 * Invariants:
 *  (1) Keys are big-endian so a cursor walks one inode's dirents, frags and
 *      xattrs contiguously and in order; values are little-endian with a
 *      fixed layout (docs/format.md).
 *  (2) The "format" meta key is written at creation (IDX_FORMAT_MIN) and
 *      raised to IDX_FORMAT_VERSION by the first snapshot (idx_format_raise,
 *      in that snapshot's txn); a store whose format is outside
 *      [IDX_FORMAT_MIN, IDX_FORMAT_VERSION] is refused at open.
 *  (3) A refs record exists iff its count is > 0.
 *  (4) The "snapshots" db is created by the first read-write open that
 *      lacks it (stores made before snapshots existed); a read-only open
 *      without it sees no snapshots.
 *  (5) The map grows: before a write txn begins, when the used pages
 *      exceed a third of the map, the map is raised to max(2 x map,
 *      4 x used) — so one txn can write as much as the whole index (a
 *      snapshot) without filling it; after a txn hit MDB_MAP_FULL (it
 *      failed with ENOSPC, nothing changed), to max(4 x map, 4 x used). LMDB
 *      remaps on mdb_env_set_mapsize, so that is done only while no txn of
 *      this process is open: x->active counts them, new ones wait while
 *      x->growing (but for a thread that already holds one: it would wait
 *      for itself), and the grower waits at most GROW_WAIT_MS for the
 *      count to reach 0, else postpones to the next write txn. Another
 *      process that grew the map makes our txn_begin fail with
 *      MDB_MAP_RESIZED: we adopt its size the same way and retry.
 *  (6) No pointer into the map outlives its txn (LMDB's rule; a remap
 *      moves the map).
 *  (7) With a commit hook (a RADOS store's writer), every put and del of a
 *      write txn but those of local meta keys (ilog_meta_local) is also
 *      captured as an index log entry; idx_commit hands a non-empty entry
 *      to the hook BEFORE the LMDB commit and commits only when the hook
 *      stored it (then "log_lsn" records its position in the same txn). A
 *      hook failure aborts the txn: the local index never holds a change
 *      the log lacks. If the LMDB commit then fails, the local index is
 *      behind the log (x->behind): every later write txn fails with EIO
 *      until the store is opened again and catches up from the log.
 *  (8) Applied entries (idx_apply) and bases are never captured.
 *  (9) Child txns (idx_child_begin; group commit, index/gcommit.c): an
 *      LMDB nested txn of a top-level write txn (the parent), one open at
 *      a time. Its puts and dels are captured into the parent's entry (the
 *      one x->wbuf) after what earlier children captured; committing it
 *      merges its changes (and its dirty bit) into the parent and keeps its
 *      ops; aborting it — or a commit that fails (LMDB then aborts the
 *      child), or a capture that failed in it — drops its changes and cuts
 *      the entry back to where the child began (length, op count, error),
 *      so the parent's entry holds exactly the ops of the merged children,
 *      in order, and the parent stays usable (LMDB restores the parent's
 *      state when a nested txn ends, MDB_MAP_FULL included). Only the
 *      parent reaches the hook and the LMDB commit (7). A child may be
 *      used by a thread other than the parent's (MDB_NOTLS; the caller
 *      serializes), but the parent must end on the thread that began it
 *      (LMDB's writer mutex belongs to that thread). A child counts as a
 *      txn of its thread (tls_txns: a remap never waits for it) but not in
 *      x->active: its parent is counted there.
 * (10) The "rowidx" db (format 4) maps a fragment id to that fragment's
 *      row index (index/rowidx.h). It is optional like "snapshots" (4): a
 *      read-write open creates it, a read-only open of an older store
 *      sees none. A record exists only for a fragment that has a refs
 *      record (the commit puts it in the txn that takes the first
 *      reference, idx_ref_add deletes it in the txn that drops the last);
 *      a fragment may lack one (made before format 4, or its index was
 *      not kept: rowidx.h) and readers then scan the fragment.
 */
#include "index/idx.h"
#include "index/idx_rec.h"
#include "index/ilog.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* The databases, numbered as the index log numbers them (ilog.h, docs/format.md). */
enum { DB_META = ILOG_DB_META, DB_INODES = ILOG_DB_INODES, DB_DIRENTS = ILOG_DB_DIRENTS,
       DB_FRAGS = ILOG_DB_FRAGS, DB_REFS = ILOG_DB_REFS, DB_INLINE = ILOG_DB_INLINE,
       DB_XATTRS = ILOG_DB_XATTRS, DB_ORPHANS = ILOG_DB_ORPHANS, DB_SNAPS = ILOG_DB_SNAPS,
       DB_ROWIDX = ILOG_DB_ROWIDX, DB_COUNT = ILOG_DB_COUNT };
static const char *const db_names[DB_COUNT] = {
	"meta", "inodes", "dirents", "frags", "refs", "inline", "xattrs", "orphans", "snapshots",
	"rowidx",
};
#define DB_FIRST_OPTIONAL DB_SNAPS   /* invariant (4) */

struct idx {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	int rdonly;
	pthread_mutex_t glock;  /* leaf: the fields below (invariant 5) */
	pthread_cond_t gcond;
	unsigned active;        /* protected by glock: txns open in this process */
	int growing;            /* protected by glock: a remap waits for active == 0 */
	int grow_want;          /* atomic: the last write hit MDB_MAP_FULL */
	uint64_t written;       /* atomic: LMDB id of the newest committed txn
				 * that wrote something (durable.c (1)) */
	uint64_t wcommits;      /* atomic: idx_write_commits */
	idx_commit_hook hook;   /* invariant (7); set before any write txn */
	void *hook_arg;
	struct ilog_buf wbuf;   /* the write txn's entry (LMDB has one writer) */
	int behind;             /* atomic: invariant (7) */
	int no_snaps;           /* read-only, and the store has no snapshots db */
	int no_rowidx;          /* read-only, and the store has no rowidx db (format < 4) */
};

struct idx_txn {
	struct idx *x;
	MDB_txn *txn;
	int dirty;              /* a put or del succeeded: the commit writes pages,
				 * flushes them and writes a meta page (an empty
				 * txn's commit does none of that) */
	struct ilog_buf *log;   /* capture (invariant 7), or NULL */
	int logged;             /* the hook stored this txn's entry */
	struct idx_txn *parent; /* a child txn (invariant 9), or NULL */
	size_t mark_len;        /* a child: the entry where it began (invariant 9) */
	uint32_t mark_nops;
	int mark_err;
};

static int put(struct idx_txn *t, int db, MDB_val *k, MDB_val *v);

#define GROW_WAIT_MS 2000
static __thread unsigned tls_txns;   /* txns this thread holds (invariant 5) */

/* Keys and values are encoded and decoded by idx_rec.c (pure functions,
 * fuzzed by tests/fuzz/fuzz_idx_rec.c). */

/* ---- errors ---- */

/* The negative errno an LMDB return code RC stands for. */
static int mdb_errno(int rc)
{
	switch (rc) {
	case 0: return 0;
	case MDB_NOTFOUND: return -ENOENT;
	case MDB_MAP_FULL: case MDB_TXN_FULL: return -ENOSPC;
	case MDB_READERS_FULL: return -EAGAIN;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_BAD_TXN:
	case MDB_INVALID: case MDB_VERSION_MISMATCH:
		return -EIO;
	default:
		return rc > 0 && rc < 4096 ? -rc : -EIO;
	}
}

/* mdb_errno(RC), logged (LMDB's text and the errno) unless it is a plain
 * "not found", which callers expect. WHAT names the operation. */
static int mdb_err(int rc, const char *what)
{
	int e = mdb_errno(rc);

	if (rc && rc != MDB_NOTFOUND && rc != ENOENT)
		log_err("index: %s: %s (%s)", what, mdb_strerror(rc), log_errname(e));
	return e;
}

/* ---- environment ---- */

static int open_dbs(struct idx *x, int create)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(x->env, NULL, x->rdonly ? MDB_RDONLY : 0, &txn);

	if (rc)
		return mdb_err(rc, "begin");
	for (int i = 0; i < DB_COUNT; i++) {
		int opt = i >= DB_FIRST_OPTIONAL;
		rc = mdb_dbi_open(txn, db_names[i], create || (opt && !x->rdonly) ? MDB_CREATE : 0, &x->dbi[i]);
		if (rc == MDB_NOTFOUND && opt && x->rdonly) {
			if (i == DB_ROWIDX)
				x->no_rowidx = 1;
			else
				x->no_snaps = 1;
			continue;
		}
		if (rc) {
			mdb_txn_abort(txn);
			return rc == MDB_NOTFOUND ? -EPROTO : mdb_err(rc, "open database");
		}
	}
	return mdb_err(mdb_txn_commit(txn), "commit");
}

static int check_format(struct idx *x, int create)
{
	struct idx_txn *t;
	MDB_val k = { 6, (void *)"format" }, v;
	unsigned char buf[4];
	uint32_t ver = 0;
	int rc = idx_begin(x, x->rdonly, &t);

	if (rc)
		return rc;
	rc = mdb_get(t->txn, x->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND && create && !x->rdonly) {
		idx_rec_format_encode(buf, IDX_FORMAT_MIN);
		v.mv_size = 4;
		v.mv_data = buf;
		rc = put(t, DB_META, &k, &v);
		if (!rc)
			rc = idx_meta_put_u64(t, "next_ino", IDX_FIRST_INO);
		if (!rc)
			rc = idx_meta_put_u64(t, "next_frag", 1);
		if (rc) {
			idx_abort(t);
			return rc;
		}
		return idx_commit(t);
	}
	if (rc == MDB_NOTFOUND) {
		idx_abort(t);
		log_err("index: open: no format record: not a payloadfs store (EPROTO)");
		return -EPROTO;
	}
	if (rc) {
		idx_abort(t);
		return mdb_err(rc, "get format");
	}
	if (idx_rec_format_decode(v.mv_data, v.mv_size, &ver) || ver < IDX_FORMAT_MIN || ver > IDX_FORMAT_VERSION) {
		log_err("index: open: store format version %u, this build reads versions %u to %u (EPROTO)",
			v.mv_size == 4 ? ver : 0, IDX_FORMAT_MIN, IDX_FORMAT_VERSION);
		idx_abort(t);
		return -EPROTO;
	}
	idx_abort(t);
	return 0;
}

#define IDX_MAP_SIZE ((size_t)64 << 30)   /* the LMDB map: the index's size limit */
#define IDX_MAP_MIN  ((size_t)1 << 30)    /* the smallest map idx_open falls back to */

/* Create X->env with a map of MAP bytes and open it on DIR. @return 0 or
 * an MDB_* / errno code (X->env is set either way, for mdb_env_close). */
static int env_open(struct idx *x, const char *dir, int rdonly, size_t map)
{
	int rc = mdb_env_create(&x->env);

	if (rc) {
		x->env = NULL;
		return rc;
	}
	rc = mdb_env_set_maxdbs(x->env, DB_COUNT + 2);
	if (!rc)
		rc = mdb_env_set_mapsize(x->env, map);
	if (!rc)
		rc = mdb_env_set_maxreaders(x->env, 1024);
	if (!rc)
		rc = mdb_env_open(x->env, dir, MDB_NOTLS | (rdonly ? MDB_RDONLY : 0), 0600);
	return rc;
}

static void idx_free(struct idx *x)
{
	ilog_buf_free(&x->wbuf);
	pthread_mutex_destroy(&x->glock);
	pthread_cond_destroy(&x->gcond);
	free(x);
}

/* The first map size: IDX_MAP_SIZE, or PAYLOADFS_INDEX_MAP bytes (tests
 * of growth, invariant 5; at least 64 KiB). LMDB takes the data file's
 * size when that is larger. */
static size_t first_map(void)
{
	const char *e = getenv("PAYLOADFS_INDEX_MAP");
	char *end;
	unsigned long long v;

	if (!e || !*e)
		return IDX_MAP_SIZE;
	v = strtoull(e, &end, 10);
	return *end || v < 65536 ? IDX_MAP_SIZE : (size_t)v;
}

int idx_open(const char *dir, int create, int rdonly, struct idx **out)
{
	struct idx *x = calloc(1, sizeof(*x));
	size_t map0 = first_map();
	struct stat st;
	int rc;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	x->rdonly = rdonly;
	pthread_mutex_init(&x->glock, NULL);
	pthread_cond_init(&x->gcond, NULL);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		idx_free(x);
		return -ENOENT;
	}
	if (!create) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/data.mdb", dir);
		if (stat(path, &st) < 0) {
			idx_free(x);
			return -ENOENT;
		}
	}
	rc = env_open(x, dir, rdonly, map0);
	/* An address space too small for the map (ulimit -v, valgrind's 64 GiB
	 * limit) fails the mmap with ENOMEM or EINVAL: try smaller maps. */
	for (size_t map = map0 / 2; (rc == ENOMEM || rc == EINVAL) && map >= IDX_MAP_MIN;
	     map /= 2) {
		mdb_env_close(x->env);
		x->env = NULL;
		rc = env_open(x, dir, rdonly, map);
		if (!rc)
			log_warn("index: the address space does not fit a %zu GiB map: using %zu GiB",
				 map0 >> 30, map >> 30);
	}
	if (rc) {
		rc = mdb_err(rc, "open environment");
		goto fail;
	}
	rc = open_dbs(x, create && !rdonly);
	if (!rc)
		rc = check_format(x, create);
	if (rc)
		goto fail;
	*out = x;
	return 0;
fail:
	if (x->env)
		mdb_env_close(x->env);
	idx_free(x);
	return rc;
}

void idx_close(struct idx *x)
{
	if (!x)
		return;
	mdb_env_close(x->env);
	idx_free(x);
}

/* ---- durability (index/durable.c) ---- */

int idx_set_metasync(struct idx *x, int on)
{
	return mdb_err(mdb_env_set_flags(x->env, MDB_NOMETASYNC, !on), "set flags");
}

int idx_sync(struct idx *x)
{
	int rc = FAULT("lmdb_sync");

	return rc ? rc : mdb_err(mdb_env_sync(x->env, 1), "sync");
}

uint64_t idx_write_commits(struct idx *x)
{
	return __atomic_load_n(&x->wcommits, __ATOMIC_RELAXED);
}

uint64_t idx_last_written(struct idx *x)
{
	return __atomic_load_n(&x->written, __ATOMIC_ACQUIRE);
}

/* Raise X->written to ID (a max: a committer that stalled before this
 * call never moves it back). */
static void note_written(struct idx *x, uint64_t id)
{
	uint64_t cur = __atomic_load_n(&x->written, __ATOMIC_RELAXED);

	while (cur < id && !__atomic_compare_exchange_n(&x->written, &cur, id, 0, __ATOMIC_RELEASE,
						       __ATOMIC_RELAXED))
		;
}

int idx_copy(struct idx *x, const char *dir)
{
	return mdb_err(mdb_env_copy2(x->env, dir, MDB_CP_COMPACT), "copy");
}

/* ---- txns ---- */

/* ---- map growth (invariant 5) ---- */

static void txn_done(struct idx *x)
{
	tls_txns--;
	pthread_mutex_lock(&x->glock);
	if (--x->active == 0 && x->growing)
		pthread_cond_broadcast(&x->gcond);
	pthread_mutex_unlock(&x->glock);
}

/* Count a txn about to begin; wait while a remap is under way (unless
 * this thread already holds a txn). */
static void txn_enter(struct idx *x)
{
	pthread_mutex_lock(&x->glock);
	while (x->growing && tls_txns == 0)
		pthread_cond_wait(&x->gcond, &x->glock);
	x->active++;
	pthread_mutex_unlock(&x->glock);
	tls_txns++;
}

/* Remap to SIZE bytes (0: adopt the size another process set) once no
 * txn of this process is open; give up after GROW_WAIT_MS. The caller
 * holds no txn. @return 0, -EBUSY (postponed), or an MDB/errno code. */
static int remap(struct idx *x, size_t size)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += GROW_WAIT_MS / 1000;
	until.tv_nsec += (GROW_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&x->glock);
	while (x->growing && rc == 0)      /* one grower at a time */
		rc = pthread_cond_timedwait(&x->gcond, &x->glock, &until);
	if (rc) {
		pthread_mutex_unlock(&x->glock);
		return -EBUSY;
	}
	x->growing = 1;
	while (x->active && rc == 0)
		rc = pthread_cond_timedwait(&x->gcond, &x->glock, &until);
	if (!x->active)
		rc = mdb_env_set_mapsize(x->env, size);
	else
		rc = -EBUSY;
	x->growing = 0;
	pthread_cond_broadcast(&x->gcond);
	pthread_mutex_unlock(&x->glock);
	return rc;
}

uint64_t idx_last_txnid(struct idx *x)
{
	MDB_envinfo info;
	uint64_t id;

	txn_enter(x);           /* the meta pages are in the map: no remap now (5) */
	id = mdb_env_info(x->env, &info) == 0 ? (uint64_t)info.me_last_txnid : 0;
	txn_done(x);
	return id;
}

uint64_t idx_txn_id(const struct idx_txn *t)
{
	return (uint64_t)mdb_txn_id(t->txn);
}

size_t idx_map_size(struct idx *x)
{
	MDB_envinfo info;

	return mdb_env_info(x->env, &info) == 0 ? info.me_mapsize : 0;
}

/* Before a write txn: grow the map when it is a third full or a write hit
 * MDB_MAP_FULL (invariant 5). Failures are logged, never fatal: the txn
 * then runs in the map there is. */
static void maybe_grow(struct idx *x)
{
	MDB_envinfo info;
	MDB_stat ms;
	size_t used, want;
	int rc, full = __atomic_load_n(&x->grow_want, __ATOMIC_RELAXED);

	if (mdb_env_info(x->env, &info) || mdb_env_stat(x->env, &ms))
		return;
	used = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
	if (!full && used * 3 < info.me_mapsize)
		return;
	/* after MAP_FULL a txn needed more than the map had free: 4x */
	want = info.me_mapsize * (full ? 4 : 2);
	if (want < used * 4)
		want = used * 4;
	rc = remap(x, want);
	if (rc == -EBUSY) {
		log_warn("index: the map (%zu MiB, %zu MiB used) could not grow: transactions stayed "
			 "open for %d ms; trying again at the next write", info.me_mapsize >> 20, used >> 20,
			 GROW_WAIT_MS);
		return;
	}
	if (rc) {
		log_err("index: growing the map from %zu to %zu MiB failed: %s (%s)", info.me_mapsize >> 20,
			want >> 20, mdb_strerror(rc), log_errname(mdb_errno(rc)));
		return;
	}
	__atomic_store_n(&x->grow_want, 0, __ATOMIC_RELAXED);
	log_info("index: map grown from %zu to %zu MiB (%zu MiB used)", info.me_mapsize >> 20,
		 want >> 20, used >> 20);
}

int idx_begin(struct idx *x, int rdonly, struct idx_txn **out)
{
	struct idx_txn *t = malloc(sizeof(*t));
	int rc;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	if (!rdonly && x->rdonly) {
		free(t);
		return -EROFS;
	}
	t->x = x;
	t->dirty = 0;
	t->log = NULL;
	t->logged = 0;
	t->parent = NULL;
	if (!rdonly && __atomic_load_n(&x->behind, __ATOMIC_RELAXED)) {
		free(t);
		log_err("index: begin: behind the index log after a failed local commit: reopen the store (EIO)");
		return -EIO;
	}
	if (!rdonly && tls_txns == 0)
		maybe_grow(x);
	for (int tries = 0;; tries++) {
		txn_enter(x);
		rc = mdb_txn_begin(x->env, NULL, rdonly ? MDB_RDONLY : 0, &t->txn);
		if (!rc)
			break;
		txn_done(x);
		if (rc != MDB_MAP_RESIZED || tries == 3 || tls_txns)
			break;
		/* another process grew the map: adopt its size */
		rc = remap(x, 0);
		if (rc && rc != -EBUSY) {
			rc = mdb_err(rc, "adopt the map size");
			free(t);
			return rc;
		}
	}
	if (rc) {
		free(t);
		return mdb_err(rc, "begin");
	}
	if (!rdonly && x->hook) {        /* one write txn at a time: x->wbuf is ours */
		ilog_buf_reset(&x->wbuf);
		t->log = &x->wbuf;
	}
	*out = t;
	return 0;
}

/* LMDB reports a short page write as EIO (mdb_page_flush); a short write
 * to a regular file means the file system is full. So EIO with (almost) no
 * space left is ENOSPC — ENOSPC must reach close(2) as ENOSPC. */
static int commit_eio(struct idx *x)
{
	struct statvfs sv;
	mdb_filehandle_t fd;

	if (mdb_env_get_fd(x->env, &fd) == 0 && fstatvfs(fd, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < 65536)
		return ENOSPC;
	return EIO;
}

/* Invariant (7): hand T's entry to the hook, record its position. */
static int log_entry(struct idx_txn *t)
{
	uint64_t lsn = 0;
	unsigned char b[8];
	MDB_val k = { 7, (void *)"log_lsn" }, v = { 8, b };
	int rc;

	if (!t->log || (!t->log->nops && !t->log->err))
		return 0;
	if (t->log->err)
		return t->log->err;
	rc = t->x->hook(t->x->hook_arg, t->log, &lsn);
	if (rc)
		return rc;
	idx_rec_u64_encode(b, lsn);
	rc = mdb_put(t->txn, t->x->dbi[DB_META], &k, &v, 0);
	if (rc) {
		__atomic_store_n(&t->x->behind, 1, __ATOMIC_RELAXED);
		log_err("index: entry %llu is in the log but the local index could not record it: %s (%s)",
			(unsigned long long)lsn, mdb_strerror(rc), log_errname(mdb_errno(rc)));
		return mdb_err(rc, "put log_lsn");
	}
	t->dirty = 1;
	t->logged = 1;
	return 0;
}

int idx_child_begin(struct idx_txn *p, struct idx_txn **out)
{
	struct idx_txn *t = malloc(sizeof(*t));
	int rc;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	*t = (struct idx_txn){ .x = p->x, .log = p->log, .parent = p };
	if (t->log) {
		t->mark_len = t->log->len;
		t->mark_nops = t->log->nops;
		t->mark_err = t->log->err;
	}
	rc = mdb_txn_begin(p->x->env, p->txn, 0, &t->txn);
	if (rc) {
		free(t);
		return mdb_err(rc, "begin a child txn");
	}
	tls_txns++;
	*out = t;
	return 0;
}

/* Invariant (9): forget what child T captured. */
static void child_uncapture(struct idx_txn *t)
{
	if (!t->log)
		return;
	t->log->len = t->mark_len;
	t->log->nops = t->mark_nops;
	t->log->err = t->mark_err;
}

/* Invariant (9): merge child T into its parent (or drop it). */
static int child_commit(struct idx_txn *t)
{
	int rc = t->log && t->log->err != t->mark_err ? t->log->err : 0;

	if (rc) {
		mdb_txn_abort(t->txn);
	} else {
		rc = mdb_txn_commit(t->txn);
		if (rc == MDB_MAP_FULL)
			__atomic_store_n(&t->x->grow_want, 1, __ATOMIC_RELAXED);
		rc = mdb_err(rc, "commit a child txn");
	}
	if (rc)
		child_uncapture(t);
	else
		t->parent->dirty |= t->dirty;
	tls_txns--;
	free(t);
	return rc;
}

size_t idx_txn_log_bytes(const struct idx_txn *t)
{
	return t->log ? t->log->len : 0;
}

int idx_txn_logged(const struct idx_txn *t)
{
	return t->log != NULL;
}

int idx_commit(struct idx_txn *t)
{
	uint64_t id;
	int rc;

	if (t->parent)
		return child_commit(t);
	rc = FAULT("lmdb_commit");
	id = mdb_txn_id(t->txn);

	if (!rc)
		rc = log_entry(t);
	if (rc) {
		mdb_txn_abort(t->txn);
		txn_done(t->x);
		free(t);
		return rc;
	}
	rc = mdb_txn_commit(t->txn);
	if (rc == MDB_MAP_FULL)
		__atomic_store_n(&t->x->grow_want, 1, __ATOMIC_RELAXED);
	if (rc && t->logged) {
		__atomic_store_n(&t->x->behind, 1, __ATOMIC_RELAXED);
		log_err("index: the local commit of a logged txn failed (%s): the local index is behind "
			"the log until the store is opened again (%s)", mdb_strerror(rc),
			log_errname(mdb_errno(rc)));
	}
	rc = mdb_err(rc == EIO ? commit_eio(t->x) : rc, "commit");
	if (!rc && t->dirty) {
		note_written(t->x, id);
		__atomic_add_fetch(&t->x->wcommits, 1, __ATOMIC_RELAXED);
	}
	txn_done(t->x);
	free(t);
	if (!rc)
		FAULT_CRASH("lmdb_committed");
	return rc;
}

void idx_abort(struct idx_txn *t)
{
	if (!t)
		return;
	mdb_txn_abort(t->txn);
	if (t->parent) {
		child_uncapture(t);
		tls_txns--;
	} else {
		txn_done(t->x);
	}
	free(t);
}

static int get(struct idx_txn *t, int db, MDB_val *k, MDB_val *v)
{
	return mdb_err(mdb_get(t->txn, t->x->dbi[db], k, v), "get");
}

/* Invariant (7): capture an op of a logged write txn. */
static int capture(struct idx_txn *t, int db, int kind, MDB_val *k, MDB_val *v)
{
	if (!t->log || (db == DB_META && ilog_meta_local(k->mv_data, k->mv_size)))
		return 0;
	return ilog_buf_add(t->log, (uint8_t)db, (uint8_t)kind, k->mv_data, k->mv_size,
			    v ? v->mv_data : NULL, v ? v->mv_size : 0);
}

static int put(struct idx_txn *t, int db, MDB_val *k, MDB_val *v)
{
	int rc = capture(t, db, ILOG_PUT, k, v);

	if (rc)
		return rc;
	rc = mdb_put(t->txn, t->x->dbi[db], k, v, 0);

	t->dirty |= rc == 0;
	if (rc == MDB_MAP_FULL)
		__atomic_store_n(&t->x->grow_want, 1, __ATOMIC_RELAXED);
	return mdb_err(rc, "put");
}

static int del(struct idx_txn *t, int db, MDB_val *k)
{
	int rc = mdb_del(t->txn, t->x->dbi[db], k, NULL);

	/* only a del that removed something is logged: applying it must not
	 * meet a missing record */
	if (rc == 0 && (rc = capture(t, db, ILOG_DEL, k, NULL)) != 0)
		return rc;

	t->dirty |= rc == 0;
	return mdb_err(rc, "del");
}

/* ---- meta ---- */

int idx_meta_get_u64(struct idx_txn *t, const char *key, uint64_t *val)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc = get(t, DB_META, &k, &v);

	return rc ? rc : idx_rec_u64_decode(v.mv_data, v.mv_size, val);
}

int idx_meta_put_u64(struct idx_txn *t, const char *key, uint64_t val)
{
	unsigned char buf[8];
	MDB_val k = { strlen(key), (void *)key }, v = { 8, buf };

	idx_rec_u64_encode(buf, val);
	return put(t, DB_META, &k, &v);
}

int idx_meta_get_bytes(struct idx_txn *t, const char *key, void *buf, size_t cap, size_t *len)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc = get(t, DB_META, &k, &v);

	if (rc)
		return rc;
	*len = v.mv_size;
	if (v.mv_size > cap)
		return -EOVERFLOW;
	memcpy(buf, v.mv_data, v.mv_size);
	return 0;
}

int idx_meta_put_bytes(struct idx_txn *t, const char *key, const void *val, size_t len)
{
	MDB_val k = { strlen(key), (void *)key }, v = { len, (void *)val };

	return put(t, DB_META, &k, &v);
}

/* ---- inodes ---- */

/* Decode the inode record V of INO; a damaged one is logged. */
static int inode_decode(const MDB_val *v, uint64_t ino, struct idx_inode *in)
{
	int rc = idx_rec_inode_decode(v->mv_data, v->mv_size, ino, in);

	if (rc)
		log_err("index: inode %llu: damaged record (%s)", (unsigned long long)ino,
			log_errname(rc));
	return rc;
}

int idx_inode_get(struct idx_txn *t, uint64_t ino, struct idx_inode *out)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	idx_rec_put_be64(kb, ino);
	rc = get(t, DB_INODES, &k, &v);
	return rc ? rc : inode_decode(&v, ino, out);
}

int idx_inode_put(struct idx_txn *t, const struct idx_inode *in)
{
	unsigned char kb[8], vb[IDX_REC_INODE_LEN];
	MDB_val k = { 8, kb }, v = { IDX_REC_INODE_LEN, vb };

	idx_rec_put_be64(kb, in->ino);
	idx_rec_inode_encode(vb, in);
	return put(t, DB_INODES, &k, &v);
}

int idx_inode_del(struct idx_txn *t, uint64_t ino)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };

	idx_rec_put_be64(kb, ino);
	return del(t, DB_INODES, &k);
}

int idx_alloc_ino(struct idx_txn *t, uint64_t *ino)
{
	uint64_t next;
	int rc = idx_meta_get_u64(t, "next_ino", &next);

	if (rc)
		return rc;
	*ino = next;
	return idx_meta_put_u64(t, "next_ino", next + 1);
}

int idx_inodes_iter(struct idx_txn *t, int (*cb)(void *arg, const struct idx_inode *in), void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(t->txn, t->x->dbi[DB_INODES], &c), op = MDB_FIRST, cbrc = 0;

	if (rc)
		return mdb_err(rc, "cursor");
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		struct idx_inode in;
		uint64_t ino;
		op = MDB_NEXT;
		cbrc = idx_rec_id_key_decode(k.mv_data, k.mv_size, &ino);
		if (!cbrc)
			cbrc = inode_decode(&v, ino, &in);
		if (!cbrc)
			cbrc = cb(arg, &in);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	return cbrc ? cbrc : (rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "iterate inodes"));
}

/* ---- keys of (ino, name) ---- */

static int name_key(unsigned char *kb, uint64_t id, const char *name, MDB_val *k)
{
	int rc = idx_rec_name_key(kb, id, name, &k->mv_size);

	k->mv_data = kb;
	return rc;
}

/* ---- dirents ---- */

int idx_dirent_get(struct idx_txn *t, uint64_t parent, const char *name, uint64_t *child, uint32_t *type)
{
	unsigned char kb[IDX_REC_NAME_KEY_MAX];
	MDB_val k, v;
	int rc = name_key(kb, parent, name, &k);

	if (!rc)
		rc = get(t, DB_DIRENTS, &k, &v);
	return rc ? rc : idx_rec_dirent_decode(v.mv_data, v.mv_size, child, type);
}

int idx_dirent_put(struct idx_txn *t, uint64_t parent, const char *name, uint64_t child, uint32_t type)
{
	unsigned char kb[8 + IDX_NAME_MAX], vb[12];
	MDB_val k, v = { 12, vb };
	int rc = name_key(kb, parent, name, &k);

	if (rc)
		return rc;
	idx_rec_dirent_encode(vb, child, type);
	return put(t, DB_DIRENTS, &k, &v);
}

int idx_dirent_del(struct idx_txn *t, uint64_t parent, const char *name)
{
	unsigned char kb[IDX_REC_NAME_KEY_MAX];
	MDB_val k;
	int rc = name_key(kb, parent, name, &k);

	return rc ? rc : del(t, DB_DIRENTS, &k);
}

/* Walk the records of DB whose key starts with big-endian ID, from the
 * first key >= ID ‖ START (START_LEN bytes). CB gets the whole key and the
 * value. */
static int prefix_walk(struct idx_txn *t, int db, uint64_t id, const void *start, size_t start_len,
		       int skip_equal,
		       int (*cb)(void *arg, const MDB_val *k, const MDB_val *v), void *arg)
{
	unsigned char kb[8 + IDX_NAME_MAX + 8];
	MDB_cursor *c;
	MDB_val k, v;
	int rc, op = MDB_SET_RANGE, cbrc = 0;

	if (start_len > IDX_NAME_MAX + 8)
		return -ENAMETOOLONG;
	idx_rec_put_be64(kb, id);
	if (start_len)
		memcpy(kb + 8, start, start_len);
	k.mv_size = 8 + start_len;
	k.mv_data = kb;
	rc = mdb_cursor_open(t->txn, t->x->dbi[db], &c);
	if (rc)
		return mdb_err(rc, "cursor");
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		if (k.mv_size < 8 || idx_rec_get_be64(k.mv_data) != id) {
			rc = MDB_NOTFOUND;
			break;
		}
		if (skip_equal && k.mv_size == 8 + start_len &&
		    memcmp((unsigned char *)k.mv_data + 8, start, start_len) == 0)
			continue;
		cbrc = cb(arg, &k, &v);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	if (cbrc)
		return cbrc;
	return rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "walk");
}

struct dirent_walk {
	int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type);
	void *arg;
};

static int dirent_step(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct dirent_walk *w = arg;
	char name[IDX_NAME_MAX + 1];
	uint64_t parent, child;
	uint32_t type;
	int rc = idx_rec_name_key_decode(k->mv_data, k->mv_size, &parent, name);

	if (!rc)
		rc = idx_rec_dirent_decode(v->mv_data, v->mv_size, &child, &type);
	return rc ? rc : w->cb(w->arg, name, child, type);
}

int idx_dirent_iter(struct idx_txn *t, uint64_t parent, const char *after,
		    int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type), void *arg)
{
	struct dirent_walk w = { cb, arg };

	return prefix_walk(t, DB_DIRENTS, parent, after, after ? strlen(after) : 0, after != NULL,
			   dirent_step, &w);
}

static int stop_first(void *arg, const char *name, uint64_t child, uint32_t type)
{
	(void)arg; (void)name; (void)child; (void)type;
	return 1;
}

int idx_dirent_any(struct idx_txn *t, uint64_t parent)
{
	return idx_dirent_iter(t, parent, NULL, stop_first, NULL);
}

/* ---- fragments ---- */

struct frags_acc {
	struct frag_desc *v;
	uint32_t n, cap;
};

static int frags_step(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct frags_acc *a = arg;
	uint64_t ino, off;
	int rc = idx_rec_frag_key_decode(k->mv_data, k->mv_size, &ino, &off);

	if (rc)
		return rc;
	if (a->n == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 16;
		struct frag_desc *nv = realloc(a->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = cap;
	}
	rc = idx_rec_frag_decode(v->mv_data, v->mv_size, off, &a->v[a->n]);
	if (!rc)
		a->n++;
	return rc;
}

int idx_frags_load(struct idx_txn *t, uint64_t ino, struct frag_desc **out, uint32_t *n)
{
	struct frags_acc a = { 0 };
	int rc = prefix_walk(t, DB_FRAGS, ino, NULL, 0, 0, frags_step, &a);

	*out = NULL;
	*n = 0;
	if (rc) {
		free(a.v);
		return rc;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

int idx_frag_at(struct idx_txn *t, uint64_t ino, uint64_t off, struct frag_desc *out)
{
	unsigned char kb[16];
	MDB_cursor *c;
	MDB_val k = { 16, kb }, v;
	int rc;

	idx_rec_put_be64(kb, ino);
	idx_rec_put_be64(kb + 8, off);
	rc = mdb_cursor_open(t->txn, t->x->dbi[DB_FRAGS], &c);
	if (rc)
		return mdb_err(rc, "cursor");
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && !(k.mv_size == 16 && idx_rec_get_be64(k.mv_data) == ino &&
			 idx_rec_get_be64((unsigned char *)k.mv_data + 8) == off))
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && (k.mv_size != 16 || idx_rec_get_be64(k.mv_data) != ino))
		rc = MDB_NOTFOUND;
	/* MDB_* codes are negative: map them before decoding can add -errno */
	rc = mdb_err(rc, "frag at");
	if (rc == 0)
		rc = idx_rec_frag_decode(v.mv_data, v.mv_size, idx_rec_get_be64((unsigned char *)k.mv_data + 8),
					 out);
	mdb_cursor_close(c);
	return rc;
}

int idx_frag_put(struct idx_txn *t, uint64_t ino, const struct frag_desc *d)
{
	unsigned char kb[16], vb[IDX_REC_FRAG_LEN];
	MDB_val k = { 16, kb }, v = { IDX_REC_FRAG_LEN, vb };

	idx_rec_frag_key(kb, ino, d->off);
	idx_rec_frag_encode(vb, d);
	return put(t, DB_FRAGS, &k, &v);
}

int idx_frag_del(struct idx_txn *t, uint64_t ino, uint64_t off)
{
	unsigned char kb[16];
	MDB_val k = { 16, kb };

	idx_rec_put_be64(kb, ino);
	idx_rec_put_be64(kb + 8, off);
	return del(t, DB_FRAGS, &k);
}

int idx_frags_iter_all(struct idx_txn *t,
		       int (*cb)(void *arg, uint64_t ino, const struct frag_desc *d), void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(t->txn, t->x->dbi[DB_FRAGS], &c), op = MDB_FIRST, cbrc = 0;

	if (rc)
		return mdb_err(rc, "cursor");
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		struct frag_desc d;
		uint64_t ino, off;
		op = MDB_NEXT;
		cbrc = idx_rec_frag_key_decode(k.mv_data, k.mv_size, &ino, &off);
		if (!cbrc)
			cbrc = idx_rec_frag_decode(v.mv_data, v.mv_size, off, &d);
		if (!cbrc)
			cbrc = cb(arg, ino, &d);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	return cbrc ? cbrc : (rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "iterate frags"));
}

/* ---- refs ---- */

int idx_ref_get(struct idx_txn *t, uint64_t frag_id, uint32_t *count)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	idx_rec_put_be64(kb, frag_id);
	rc = get(t, DB_REFS, &k, &v);
	if (rc == -ENOENT) {
		*count = 0;
		return 0;
	}
	return rc ? rc : idx_rec_ref_decode(v.mv_data, v.mv_size, count);
}

int idx_ref_add(struct idx_txn *t, uint64_t frag_id, int delta, uint32_t *now)
{
	unsigned char kb[8], vb[4];
	MDB_val k = { 8, kb }, v = { 4, vb };
	uint32_t count;
	int64_t n;
	int rc = idx_ref_get(t, frag_id, &count);

	if (rc)
		return rc;
	n = (int64_t)count + delta;
	if (n < 0) {
		log_err("index: fragment %016llx: reference count underflow (%u%+d) (EUCLEAN)",
			(unsigned long long)frag_id, count, delta);
		return -EUCLEAN;
	}
	if (now)
		*now = (uint32_t)n;
	idx_rec_put_be64(kb, frag_id);
	if (n == 0 && count) {
		/* the fragment is gone: so is its row index (invariant 10) */
		rc = idx_rowidx_del(t, frag_id);
		return rc ? rc : del(t, DB_REFS, &k);
	}
	if (n == 0)
		return 0;
	idx_rec_ref_encode(vb, (uint32_t)n);
	return put(t, DB_REFS, &k, &v);
}

int idx_refs_iter(struct idx_txn *t, int (*cb)(void *arg, uint64_t id, uint32_t count), void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(t->txn, t->x->dbi[DB_REFS], &c), op = MDB_FIRST, cbrc = 0;

	if (rc)
		return mdb_err(rc, "cursor");
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		uint64_t id;
		uint32_t count;
		op = MDB_NEXT;
		cbrc = idx_rec_id_key_decode(k.mv_data, k.mv_size, &id);
		if (!cbrc)
			cbrc = idx_rec_ref_decode(v.mv_data, v.mv_size, &count);
		if (!cbrc)
			cbrc = cb(arg, id, count);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	return cbrc ? cbrc : (rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "iterate refs"));
}

/* ---- records keyed by one id (inline bytes by inode, row indexes by
 * fragment id): the value is an opaque blob ---- */

static int blob_get(struct idx_txn *t, int db, uint64_t id, const void **data, size_t *len)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	idx_rec_put_be64(kb, id);
	rc = get(t, db, &k, &v);
	if (rc)
		return rc;
	*data = v.mv_data;
	*len = v.mv_size;
	return 0;
}

static int blob_put(struct idx_txn *t, int db, uint64_t id, const void *data, size_t len)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v = { len, (void *)data };

	idx_rec_put_be64(kb, id);
	return put(t, db, &k, &v);
}

/* A missing record is no error (del logs and captures only a removal). */
static int blob_del(struct idx_txn *t, int db, uint64_t id)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };
	int rc;

	idx_rec_put_be64(kb, id);
	rc = del(t, db, &k);
	return rc == -ENOENT ? 0 : rc;
}

/* ---- inline ---- */

int idx_inline_get(struct idx_txn *t, uint64_t ino, const void **data, size_t *len)
{
	return blob_get(t, DB_INLINE, ino, data, len);
}

int idx_inline_put(struct idx_txn *t, uint64_t ino, const void *data, size_t len)
{
	return blob_put(t, DB_INLINE, ino, data, len);
}

int idx_inline_del(struct idx_txn *t, uint64_t ino)
{
	return blob_del(t, DB_INLINE, ino);
}

/* ---- xattrs ---- */

int idx_xattr_get(struct idx_txn *t, uint64_t ino, const char *name, const void **val, size_t *len)
{
	unsigned char kb[IDX_REC_NAME_KEY_MAX];
	MDB_val k, v;
	int rc = name_key(kb, ino, name, &k);

	if (!rc)
		rc = get(t, DB_XATTRS, &k, &v);
	if (rc)
		return rc == -ENOENT || rc == -ENAMETOOLONG ? -ENODATA : rc;
	*val = v.mv_data;
	*len = v.mv_size;
	return 0;
}

int idx_xattr_put(struct idx_txn *t, uint64_t ino, const char *name, const void *val, size_t len)
{
	unsigned char kb[IDX_REC_NAME_KEY_MAX];
	MDB_val k, v = { len, (void *)val };
	int rc = name_key(kb, ino, name, &k);

	return rc ? (rc == -ENAMETOOLONG ? -ERANGE : rc) : put(t, DB_XATTRS, &k, &v);
}

int idx_xattr_del(struct idx_txn *t, uint64_t ino, const char *name)
{
	unsigned char kb[IDX_REC_NAME_KEY_MAX];
	MDB_val k;
	int rc = name_key(kb, ino, name, &k);

	if (!rc)
		rc = del(t, DB_XATTRS, &k);
	return rc == -ENOENT || rc == -ENAMETOOLONG ? -ENODATA : rc;
}

struct xattr_walk {
	int (*cb)(void *arg, const char *name);
	void *arg;
};

static int xattr_step(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct xattr_walk *w = arg;
	char name[IDX_NAME_MAX + 1];
	uint64_t ino;
	int rc = idx_rec_name_key_decode(k->mv_data, k->mv_size, &ino, name);

	(void)v;
	return rc ? rc : w->cb(w->arg, name);
}

int idx_xattr_iter(struct idx_txn *t, uint64_t ino, int (*cb)(void *arg, const char *name), void *arg)
{
	struct xattr_walk w = { cb, arg };

	return prefix_walk(t, DB_XATTRS, ino, NULL, 0, 0, xattr_step, &w);
}

struct xattr_names {
	char **v;
	size_t n;
};

static int xattr_collect(void *arg, const char *name)
{
	struct xattr_names *a = arg;
	char **nv = realloc(a->v, (a->n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	a->v = nv;
	if (!(a->v[a->n] = strdup(name)))
		return -ENOMEM;
	a->n++;
	return 0;
}

int idx_xattr_del_all(struct idx_txn *t, uint64_t ino)
{
	struct xattr_names a = { 0 };
	int rc = idx_xattr_iter(t, ino, xattr_collect, &a);

	for (size_t i = 0; i < a.n; i++) {
		if (!rc)
			rc = idx_xattr_del(t, ino, a.v[i]);
		free(a.v[i]);
	}
	free(a.v);
	return rc;
}

/* ---- orphans ---- */

int idx_orphan_put(struct idx_txn *t, uint64_t ino)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, v = { 0, kb };

	idx_rec_put_be64(kb, ino);
	return put(t, DB_ORPHANS, &k, &v);
}

int idx_orphan_del(struct idx_txn *t, uint64_t ino)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };
	int rc;

	idx_rec_put_be64(kb, ino);
	rc = del(t, DB_ORPHANS, &k);
	return rc == -ENOENT ? 0 : rc;
}

int idx_orphans_iter(struct idx_txn *t, int (*cb)(void *arg, uint64_t ino), void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(t->txn, t->x->dbi[DB_ORPHANS], &c), op = MDB_FIRST, cbrc = 0;

	if (rc)
		return mdb_err(rc, "cursor");
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		uint64_t ino;
		op = MDB_NEXT;
		cbrc = idx_rec_id_key_decode(k.mv_data, k.mv_size, &ino);
		if (!cbrc)
			cbrc = cb(arg, ino);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	return cbrc ? cbrc : (rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "iterate orphans"));
}

/* ---- the format version ---- */

/* ---- the clean-close marker (store.c invariant on sweeps) ---- */

int idx_clean_mark(struct idx_txn *t, int clean)
{
	return idx_meta_put_u64(t, "clean", clean ? (uint64_t)mdb_txn_id(t->txn) : 0);
}

int idx_clean_get(struct idx *x, int *clean)
{
	struct idx_txn *t;
	MDB_envinfo info;
	uint64_t mark = 0;
	int rc;

	*clean = 0;
	rc = mdb_err(mdb_env_info(x->env, &info), "env info");
	if (!rc)
		rc = idx_begin(x, 1, &t);
	if (rc)
		return rc;
	rc = idx_meta_get_u64(t, "clean", &mark);
	idx_abort(t);
	if (rc == -ENOENT)
		return 0;
	*clean = !rc && mark && mark == (uint64_t)info.me_last_txnid;
	return rc;
}

int idx_format_get(struct idx_txn *t, uint32_t *version)
{
	MDB_val k = { 6, (void *)"format" }, v;
	int rc = get(t, DB_META, &k, &v);

	return rc ? rc : idx_rec_format_decode(v.mv_data, v.mv_size, version);
}

int idx_format_raise(struct idx_txn *t)
{
	unsigned char buf[4];
	MDB_val k = { 6, (void *)"format" }, v = { 4, buf };
	uint32_t cur;
	int rc = idx_format_get(t, &cur);

	if (rc || cur >= IDX_FORMAT_VERSION)
		return rc;
	idx_rec_format_encode(buf, IDX_FORMAT_VERSION);
	return put(t, DB_META, &k, &v);
}

/* ---- row indexes (invariant 10; index/rowidx.h) ---- */

int idx_rowidx_get(struct idx_txn *t, uint64_t frag_id, const void **val, size_t *len)
{
	return t->x->no_rowidx ? -ENOENT : blob_get(t, DB_ROWIDX, frag_id, val, len);
}

int idx_rowidx_put(struct idx_txn *t, uint64_t frag_id, const void *val, size_t len)
{
	return blob_put(t, DB_ROWIDX, frag_id, val, len);
}

/* Most fragments of format-3 stores have no record: a missing one is fine. */
int idx_rowidx_del(struct idx_txn *t, uint64_t frag_id)
{
	return t->x->no_rowidx ? 0 : blob_del(t, DB_ROWIDX, frag_id);
}

int idx_rowidx_iter(struct idx_txn *t, int (*cb)(void *arg, uint64_t frag_id), void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, op = MDB_FIRST, cbrc = 0;

	if (t->x->no_rowidx)
		return 0;
	rc = mdb_cursor_open(t->txn, t->x->dbi[DB_ROWIDX], &c);
	if (rc)
		return mdb_err(rc, "cursor");
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		uint64_t id;
		op = MDB_NEXT;
		cbrc = idx_rec_id_key_decode(k.mv_data, k.mv_size, &id);
		if (!cbrc)
			cbrc = cb(arg, id);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	return cbrc ? cbrc : (rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "iterate rowidx"));
}

/* ---- snapshots ---- */

/* Decode the snapshots record K/V (idx_rec.c); a damaged one is logged. */
static int snap_decode(const MDB_val *k, const MDB_val *v, struct idx_snap *s)
{
	uint64_t first;
	int rc = idx_rec_id_key_decode(k->mv_data, k->mv_size, &first);

	if (!rc)
		rc = idx_rec_snap_decode(v->mv_data, v->mv_size, first, s);
	if (rc)
		log_err("index: a damaged snapshot record (%s)", log_errname(rc));
	return rc;
}

int idx_snap_put(struct idx_txn *t, const struct idx_snap *s)
{
	unsigned char kb[IDX_REC_ID_KEY_LEN], vb[IDX_REC_SNAP_MAX];
	MDB_val k = { sizeof(kb), kb }, v = { 0, vb };
	int rc = idx_rec_snap_encode(vb, s, &v.mv_size);

	if (rc)
		return rc;
	if (t->x->no_snaps)
		return -EROFS;
	idx_rec_id_key(kb, s->first);
	return put(t, DB_SNAPS, &k, &v);
}

int idx_snap_del(struct idx_txn *t, uint64_t first)
{
	unsigned char kb[IDX_REC_ID_KEY_LEN];
	MDB_val k = { sizeof(kb), kb };

	if (t->x->no_snaps)
		return -ENOENT;
	idx_rec_id_key(kb, first);
	return del(t, DB_SNAPS, &k);
}

int idx_snaps_iter(struct idx_txn *t, int (*cb)(void *arg, const struct idx_snap *s), void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc, op = MDB_FIRST, cbrc = 0;

	if (t->x->no_snaps)
		return 0;
	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_SNAPS], &c)))
		return mdb_err(rc, "cursor");
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		struct idx_snap s;
		op = MDB_NEXT;
		cbrc = snap_decode(&k, &v, &s);
		if (!cbrc)
			cbrc = cb(arg, &s);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	return cbrc ? cbrc : (rc == MDB_NOTFOUND ? 0 : mdb_err(rc, "iterate snapshots"));
}

int idx_snap_at(struct idx_txn *t, uint64_t ino, struct idx_snap *out)
{
	unsigned char kb[IDX_REC_ID_KEY_LEN];
	MDB_cursor *c;
	MDB_val k = { sizeof(kb), kb }, v;
	int rc;

	if (t->x->no_snaps)
		return -ENOENT;
	idx_rec_id_key(kb, ino);
	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_SNAPS], &c)))
		return mdb_err(rc, "cursor");
	/* the last record keyed <= INO: the only range that may hold it */
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && !(k.mv_size == IDX_REC_ID_KEY_LEN && idx_rec_get_be64(k.mv_data) == ino))
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	rc = mdb_err(rc, "snapshot at");
	if (!rc)
		rc = snap_decode(&k, &v, out);
	if (!rc && !(ino >= out->first && ino - out->first < out->count))
		rc = -ENOENT;
	mdb_cursor_close(c);
	return rc;
}

/* ---- ranges ---- */

int idx_inodes_iter_range(struct idx_txn *t, uint64_t from, uint64_t to,
			  int (*cb)(void *arg, const struct idx_inode *in), void *arg)
{
	unsigned char kb[IDX_REC_ID_KEY_LEN];
	MDB_cursor *c;
	MDB_val k = { sizeof(kb), kb }, v;
	int rc = mdb_cursor_open(t->txn, t->x->dbi[DB_INODES], &c), op = MDB_SET_RANGE, cbrc = 0;

	if (rc)
		return mdb_err(rc, "cursor");
	idx_rec_id_key(kb, from);
	while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
		struct idx_inode in;
		uint64_t ino;
		op = MDB_NEXT;
		if ((cbrc = idx_rec_id_key_decode(k.mv_data, k.mv_size, &ino)))
			break;
		if (ino >= to)
			break;
		cbrc = inode_decode(&v, ino, &in);
		if (!cbrc)
			cbrc = cb(arg, &in);
		if (cbrc)
			break;
	}
	mdb_cursor_close(c);
	return cbrc ? cbrc : (rc == MDB_NOTFOUND || rc == 0 ? 0 : mdb_err(rc, "iterate inodes"));
}

struct name_list {
	char **v;
	size_t n;
};

static int name_collect(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct name_list *a = arg;
	char **nv = realloc(a->v, (a->n + 1) * sizeof(*nv));

	(void)child;
	(void)type;
	if (!nv)
		return -ENOMEM;
	a->v = nv;
	if (!(a->v[a->n] = strdup(name)))
		return -ENOMEM;
	a->n++;
	return 0;
}

int idx_dirent_del_all(struct idx_txn *t, uint64_t parent)
{
	struct name_list a = { 0 };
	int rc = idx_dirent_iter(t, parent, NULL, name_collect, &a);

	for (size_t i = 0; i < a.n; i++) {
		if (!rc)
			rc = idx_dirent_del(t, parent, a.v[i]);
		free(a.v[i]);
	}
	free(a.v);
	return rc;
}

/* ---- the index log (invariants 7 and 8) ---- */

void idx_set_commit_hook(struct idx *x, idx_commit_hook hook, void *arg)
{
	x->hook = hook;
	x->hook_arg = arg;
	if (!hook)
		ilog_buf_free(&x->wbuf);
}

static int log_lsn_in(struct idx_txn *t, uint64_t *lsn)
{
	int rc = idx_meta_get_u64(t, "log_lsn", lsn);

	if (rc == -ENOENT) {
		*lsn = 0;
		rc = 0;
	}
	return rc;
}

int idx_log_lsn(struct idx *x, uint64_t *lsn)
{
	struct idx_txn *t;
	int rc = idx_begin(x, 1, &t);

	*lsn = 0;
	if (rc)
		return rc;
	rc = log_lsn_in(t, lsn);
	idx_abort(t);
	return rc;
}

/* Apply the ops of a checked entry inside T (never captured: T->log is
 * NULL for apply and base txns). */
static int apply_ops(struct idx_txn *t, const void *data, size_t len)
{
	struct ilog_op op;
	size_t pos = 0;
	int rc = 0;

	while (!rc && ilog_next(data, len, &pos, &op)) {
		MDB_val k = { op.klen, (void *)op.key }, v = { op.vlen, (void *)op.val };
		if (op.db == DB_META && ilog_meta_local(op.key, op.klen))
			continue;           /* never logged; ignore if ever seen */
		if ((op.db == DB_SNAPS && t->x->no_snaps) || (op.db == DB_ROWIDX && t->x->no_rowidx))
			return -EROFS;
		if (op.kind == ILOG_PUT) {
			rc = put(t, op.db, &k, &v);
		} else {
			rc = del(t, op.db, &k);
			if (rc == -ENOENT) {
				log_err("index log: a deleted record was not there (db %s): the copy diverged (EUCLEAN)",
					db_names[op.db]);
				rc = -EUCLEAN;
			}
		}
	}
	return rc;
}

static int put_log_lsn(struct idx_txn *t, uint64_t lsn)
{
	unsigned char b[8];
	MDB_val k = { 7, (void *)"log_lsn" }, v = { 8, b };

	idx_rec_u64_encode(b, lsn);
	return put(t, DB_META, &k, &v);
}

/* A write txn that captures nothing. */
static int begin_uncaptured(struct idx *x, struct idx_txn **t)
{
	int rc = idx_begin(x, 0, t);

	if (!rc)
		(*t)->log = NULL;
	return rc;
}

int idx_apply(struct idx *x, const void *data, size_t len,
	      void (*cb)(void *arg, const struct ilog_op *op), void *arg)
{
	struct idx_txn *t;
	uint64_t lsn, have;
	int rc = ilog_check(data, len, &lsn, NULL, NULL);

	if (rc) {
		log_err("index log: a damaged entry (%zu bytes): not applied (%s)", len, log_errname(rc));
		return rc;
	}
	rc = begin_uncaptured(x, &t);
	if (rc)
		return rc;
	rc = log_lsn_in(t, &have);
	if (!rc && lsn <= have) {
		idx_abort(t);
		return 1;
	}
	if (!rc && lsn != have + 1) {
		idx_abort(t);
		return -ERANGE;
	}
	if (!rc)
		rc = apply_ops(t, data, len);
	if (!rc)
		rc = put_log_lsn(t, lsn);
	rc = rc ? (idx_abort(t), rc) : idx_commit(t);
	if (!rc && cb) {
		struct ilog_op op;
		size_t pos = 0;
		while (ilog_next(data, len, &pos, &op))
			cb(arg, &op);
	}
	return rc;
}

struct dump {
	struct ilog_buf buf;
	size_t chunk;
	uint64_t lsn, n;
	int (*emit)(void *arg, const void *data, size_t len);
	void *arg;
};

static int dump_flush(struct dump *d)
{
	int rc;

	if (!d->buf.nops)
		return 0;
	rc = ilog_buf_finish(&d->buf, d->lsn, d->n++);
	if (!rc)
		rc = d->emit(d->arg, d->buf.data, d->buf.len);
	ilog_buf_reset(&d->buf);
	return rc;
}

int idx_base_dump(struct idx *x, size_t chunk, int (*emit)(void *arg, const void *data, size_t len),
		  void *arg, uint64_t *lsn)
{
	struct dump d = { .chunk = chunk ? chunk : ((size_t)4 << 20), .emit = emit, .arg = arg };
	struct idx_txn *t;
	int rc = idx_begin(x, 1, &t);

	*lsn = 0;
	ilog_buf_init(&d.buf);
	if (rc)
		return rc;
	rc = log_lsn_in(t, &d.lsn);
	for (int db = 0; db < DB_COUNT && !rc; db++) {
		MDB_cursor *c;
		MDB_val k, v;
		int op = MDB_FIRST, g;
		if ((db == DB_SNAPS && x->no_snaps) || (db == DB_ROWIDX && x->no_rowidx))
			continue;
		rc = mdb_err(mdb_cursor_open(t->txn, x->dbi[db], &c), "cursor");
		while (!rc && (g = mdb_cursor_get(c, &k, &v, op)) == 0) {
			op = MDB_NEXT;
			if (db == DB_META && ilog_meta_local(k.mv_data, k.mv_size))
				continue;
			rc = ilog_buf_add(&d.buf, (uint8_t)db, ILOG_PUT, k.mv_data, k.mv_size, v.mv_data,
					  v.mv_size);
			if (!rc && d.buf.len >= d.chunk)
				rc = dump_flush(&d);
		}
		if (!rc && g != MDB_NOTFOUND)
			rc = mdb_err(g, "cursor get");
		if (c)
			mdb_cursor_close(c);
	}
	if (!rc)
		rc = dump_flush(&d);
	idx_abort(t);
	ilog_buf_free(&d.buf);
	if (!rc)
		*lsn = d.lsn;
	return rc;
}

int idx_base_begin(struct idx *x, struct idx_txn **out)
{
	struct idx_txn *t;
	int rc = begin_uncaptured(x, &t);

	*out = NULL;
	if (rc)
		return rc;
	for (int db = 0; db < DB_COUNT && !rc; db++) {
		if ((db == DB_SNAPS && x->no_snaps) || (db == DB_ROWIDX && x->no_rowidx))
			continue;
		if (db != DB_META) {
			rc = mdb_err(mdb_drop(t->txn, x->dbi[db], 0), "empty");
			t->dirty = 1;
			continue;
		}
		/* meta: every key but the local ones */
		MDB_cursor *c;
		MDB_val k, v;
		rc = mdb_err(mdb_cursor_open(t->txn, x->dbi[db], &c), "cursor");
		while (!rc && mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
			if (!ilog_meta_local(k.mv_data, k.mv_size)) {
				rc = mdb_err(mdb_cursor_del(c, 0), "del");
				t->dirty = 1;
			}
		if (c)
			mdb_cursor_close(c);
	}
	if (rc) {
		idx_abort(t);
		return rc;
	}
	*out = t;
	return 0;
}

int idx_base_add(struct idx_txn *t, const void *data, size_t len)
{
	int rc = ilog_check(data, len, NULL, NULL, NULL);

	if (rc) {
		log_err("index base: a damaged chunk (%zu bytes) (%s)", len, log_errname(rc));
		return rc;
	}
	return apply_ops(t, data, len);
}

int idx_base_end(struct idx_txn *t, uint64_t lsn, int rc)
{
	if (!rc)
		rc = put_log_lsn(t, lsn);
	return rc ? (idx_abort(t), rc) : idx_commit(t);
}
