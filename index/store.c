/* store — opening a store directory, sweeps at mount, fragment pins and
 * deferred deletion, write-txn helpers.
 *
 * Invariants:
 *  (1) A fragment image is deleted only when its index reference count is
 *      0 (committed) and no pver pins it. A count reaching 0 while pinned
 *      marks it a zombie; the last unpin re-checks the count in a fresh
 *      read txn before deleting (a commit may have reused it meanwhile).
 *  (2) No image can be deleted between a version being read from the
 *      index and its fragments being pinned: on a RADOS store loading a
 *      version (read txn + pin) and a commit's txn + release are
 *      serialized by commit_lock; on a local store the load does not wait
 *      for commits: it pins, then sees whether any image was released
 *      since before its read txn began (st->release_gen) and if so starts
 *      over (pver.c (7)).
 *  (3) Fragment ids are allocated from st->next_frag, which starts above
 *      every id in the index and on disk, and each commit (and the clean
 *      close) records the high-water mark in meta "next_frag": ids are
 *      never reused.
 *  (4) Sweep (daemon mount only): staging files, orphan inodes, data of
 *      storage=memory objects, and images no index record references.
 *      An image is deleted by the sweep only when neither a refs record nor
 *      any fragment record (of a live object or of a snapshot) names it: a
 *      fragment record without its refs record is a divergence between the
 *      two tables (a bug, a damaged page), logged and left for fsck.
 *  (S2) The full sweep of (4) runs only when the store was not closed
 *      cleanly. A read-write close whose final flush and deletions all
 *      succeeded (and that opened a clean or fully swept store) records the
 *      clean marker in its last txn (idx_clean_mark); the first txn of
 *      every read-write open that found it clears it, durably, before
 *      anything else is written. So a crash, a failed deletion
 *      (store_note_leftover) or a session of an older binary that wrote
 *      anything leaves the marker unset and the next mount sweeps fully;
 *      after a clean close a mount looks only at staging/ and the orphans:
 *      its cost follows what changed, not the size of the store.
 *  (5) At most one process opens a store for writing: it holds an
 *      exclusive flock() on the STORE directory for as long as it is open
 *      (storelock.h: an opener waits for a holder that is exiting).
 *      A read-only daemon holds a shared lock (it caches versions, so no
 *      writer may run beside it). Tools reading a store take no lock
 *      (LMDB readers are safe beside a writer) and never sweep.
 *  (6) storage=memory objects are emptied when the daemon closes the store
 *      (and by the sweep after a crash): their images lived in its RAM.
 */
#include "index/store_int.h"
#include "index/store_rados.h"
#include "cache/rados_conn.h"
#include "index/storelock.h"
#include "cache/fault.h"
#include "cache/log.h"
#include "cache/pool.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The last failed store_open of this thread may say more than its errno
 * (who holds a RADOS store's lease): store_set_open_detail. */
static __thread char open_detail[512];
static __thread int open_detail_rc;

void store_set_open_detail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(open_detail, sizeof(open_detail), fmt, ap);
	va_end(ap);
	open_detail_rc = rc;
}

const char *store_strerror(int err)
{
	if (err && err == open_detail_rc && open_detail[0])
		return open_detail;
	switch (err) {
	case -ENOENT: return "no such store (missing directory, or not a payloadfs store)";
	case -ENOTEMPTY: return "directory is not empty and is not a payloadfs store";
	case -EPROTO: return "store has an unknown format version (or a damaged index)";
	case -ENOTDIR: return "not a directory";
	case -EACCES: return "permission denied";
	case -EROFS: return "read-only file system";
	case -EAGAIN: return "store is busy";
	case -EBUSY: return "store is in use by another payloadfs daemon or payloadctl";
	case -EEXIST: return "a RADOS store of that name exists already (to write it from this host: init --takeover)";
	case -ETIMEDOUT: return "the Ceph cluster did not answer in time";
	case -ESTALE: return "another host took this RADOS store over";
	default: return strerror(-err);
	}
}

/* ---- pins ---- */

static size_t pm_slot(const struct pinmap *m, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 20) & (m->cap - 1);
}

static long pm_find(const struct pinmap *m, uint64_t key)
{
	if (!m->cap)
		return -1;
	for (size_t i = pm_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return (long)i;
		if (!m->keys[i])
			return -1;
	}
}

static int pm_grow(struct pinmap *m)
{
	struct pinmap n = { 0 };

	n.cap = m->cap ? m->cap * 2 : 1024;
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	n.zombie = calloc(n.cap, 1);
	if (!n.keys || !n.vals || !n.zombie) {
		free(n.keys); free(n.vals); free(n.zombie);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;
		if (!m->keys[i])
			continue;
		for (j = pm_slot(&n, m->keys[i]); n.keys[j]; j = (j + 1) & (n.cap - 1))
			;
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
		n.zombie[j] = m->zombie[i];
	}
	n.used = m->used;
	free(m->keys); free(m->vals); free(m->zombie);
	*m = n;
	return 0;
}

static int pm_inc(struct pinmap *m, uint64_t key)
{
	long i = pm_find(m, key);
	size_t j;

	if (i >= 0) {
		m->vals[i]++;
		return 0;
	}
	if ((m->used + 1) * 2 > m->cap && pm_grow(m) < 0)
		return -ENOMEM;
	for (j = pm_slot(m, key); m->keys[j]; j = (j + 1) & (m->cap - 1))
		;
	m->keys[j] = key;
	m->vals[j] = 1;
	m->zombie[j] = 0;
	m->used++;
	return 0;
}

/* Remove slot I with backward-shift deletion (keeps probe chains whole). */
static void pm_remove(struct pinmap *m, size_t i)
{
	size_t j = i;

	m->keys[i] = 0;
	m->used--;
	for (;;) {
		size_t k;
		j = (j + 1) & (m->cap - 1);
		if (!m->keys[j])
			return;
		k = pm_slot(m, m->keys[j]);
		/* move j back to i when k is not cyclically in (i, j] */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		m->zombie[i] = m->zombie[j];
		m->keys[j] = 0;
		i = j;
	}
}

/* Unpin KEY; @return 1 when that was the last pin of a zombie. */
static int pm_dec(struct pinmap *m, uint64_t key)
{
	long i = pm_find(m, key);
	int z;

	if (i < 0 || m->vals[i] == 0) {
		log_err("fragment %016llx: pin count underflow", (unsigned long long)key);
		abort();
	}
	if (--m->vals[i])
		return 0;
	z = m->zombie[i];
	pm_remove(m, (size_t)i);
	return z;
}

int store_pin_frags(struct store *st, const struct frag_desc *d, uint32_t n)
{
	int rc = 0;
	uint32_t i;

	pthread_mutex_lock(&st->lock);
	for (i = 0; i < n && !rc; i++)
		rc = pm_inc(&st->pins, d[i].id);
	if (rc)
		for (uint32_t k = 0; k + 1 < i; k++)
			pm_dec(&st->pins, d[k].id);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void store_note_leftover(struct store *st)
{
	__atomic_store_n(&st->dur_leftover, 1, __ATOMIC_RELAXED);
}

void store_delete_image(struct store *st, const struct frag_desc *d)
{
	int rc;

	FAULT_CRASH("frag_release");
	rc = frag_del(store_backend_of(st, d), d->id);
	fcache_drop(st->cache, d->id);
	if (rc && rc != -ENOENT) {
		log_warn("fragment %016llx: delete failed: %s (swept at next mount)",
			 (unsigned long long)d->id, strerror(-rc));
		store_note_leftover(st);
	} else {
		__atomic_add_fetch(&st->stats.frags_deleted, 1, __ATOMIC_RELAXED);
	}
}

void store_discard_image(struct store *st, struct frag_backend *be, uint64_t id)
{
	int rc = frag_del(be, id);

	if (rc && rc != -ENOENT) {
		log_warn("fragment %016llx: delete of an unused image failed: %s (swept at next mount)",
			 (unsigned long long)id, strerror(-rc));
		store_note_leftover(st);
	}
}

/* Unpin D; the last pin of a zombie re-checks the count and deletes. */
static void unpin_one(struct store *st, const struct frag_desc *d)
{
	int last_zombie;

	pthread_mutex_lock(&st->lock);
	last_zombie = pm_dec(&st->pins, d->id);
	pthread_mutex_unlock(&st->lock);
	if (last_zombie) {
		struct idx_txn *t;
		uint32_t count = 1;
		if (idx_begin(st->idx, 1, &t) == 0) {
			idx_ref_get(t, d->id, &count);
			idx_abort(t);
		}
		if (count == 0 && srados_follower(st))
			srados_unheld(st, d);       /* store_rados.c (4) */
		else if (count == 0 && !dur_defer_delete(st, d))
			store_delete_image(st, d);
	}
}

void store_unpin_frags(struct store *st, const struct frag_desc *d, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		unpin_one(st, &d[i]);
}

/* ---- pin chunks: versions share the pins of an unchanged prefix ---- */

struct pinchunk {
	int refs;                 /* atomic: pvers holding it */
	uint32_t n;
	struct { uint64_t id; uint16_t flags; } f[];
};

int store_pin_list(struct store *st, struct pver *pv, const struct pver *share, uint32_t nshared)
{
	uint32_t n = pv->nfrags, nch = (n + PIN_CHUNK - 1) / PIN_CHUNK, k, made = 0;
	int rc = 0;

	pv->pins = NULL;
	pv->npins = 0;
	if (!nch)
		return 0;
	if (!(pv->pins = calloc(nch, sizeof(*pv->pins))))
		return -ENOMEM;
	for (k = 0; k < nch && !rc; k++) {
		uint32_t a = k * PIN_CHUNK, m = n - a < PIN_CHUNK ? n - a : PIN_CHUNK;
		struct pinchunk *c;
		if (share && a + PIN_CHUNK <= nshared && k < share->npins && share->pins[k]->n == PIN_CHUNK) {
			c = share->pins[k];
			__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
			pv->pins[made++] = c;
			continue;
		}
		if (!(c = malloc(sizeof(*c) + m * sizeof(c->f[0])))) {
			rc = -ENOMEM;
			break;
		}
		c->refs = 1;
		c->n = m;
		for (uint32_t i = 0; i < m; i++) {
			c->f[i].id = pv->frags[a + i].id;
			c->f[i].flags = pv->frags[a + i].flags;
		}
		rc = store_pin_frags(st, pv->frags + a, m);
		if (rc)
			free(c);
		else
			pv->pins[made++] = c;
	}
	pv->npins = made;
	if (rc) {
		store_unpin_list(st, pv);
		return rc;
	}
	return 0;
}

void store_unpin_list(struct store *st, struct pver *pv)
{
	for (uint32_t k = 0; k < pv->npins; k++) {
		struct pinchunk *c = pv->pins[k];
		int left = __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
		if (left < 0)
			abort();
		if (left)
			continue;
		for (uint32_t i = 0; i < c->n; i++) {
			struct frag_desc d = { .id = c->f[i].id, .flags = c->f[i].flags };
			unpin_one(st, &d);
		}
		free(c);
	}
	free(pv->pins);
	pv->pins = NULL;
	pv->npins = 0;
}

void store_release_frag(struct store *st, const struct frag_desc *d)
{
	long i;

	pthread_mutex_lock(&st->lock);
	st->release_gen++;              /* pver.c (7) */
	i = pm_find(&st->pins, d->id);
	if (i >= 0)
		st->pins.zombie[i] = 1;
	pthread_mutex_unlock(&st->lock);
	if (srados_follower(st)) {      /* the writer deletes (store_rados.c (4)) */
		if (i >= 0)
			srados_held(st, d);
		fcache_drop(st->cache, d->id);
		return;
	}
	if (i < 0 && !dur_defer_delete(st, d))
		store_delete_image(st, d);
}

void store_set_change_cb(struct store *st, void (*cb)(void *arg, const struct store_change *c), void *arg)
{
	pthread_mutex_lock(&st->change_lock);       /* none runs once it returns */
	__atomic_store_n(&st->change_arg, arg, __ATOMIC_RELAXED);
	__atomic_store_n(&st->change_cb, cb, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->change_lock);
}

static void change_call(struct store *st, const struct store_change *c)
{
	if (!__atomic_load_n(&st->change_cb, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&st->change_lock);
	if (st->change_cb)
		st->change_cb(st->change_arg, c);
	pthread_mutex_unlock(&st->change_lock);
}

void store_changed(struct store *st, enum store_change_kind kind, uint64_t ino, uint64_t parent,
		   const char *name, size_t name_len)
{
	struct store_change c = { kind, ino, parent, name, name_len, NULL };

	change_call(st, &c);
}

void store_changed_swap(struct store *st, uint64_t ino, struct pver *pv)
{
	struct store_change c = { STORE_CHANGE_SWAP, ino, 0, NULL, 0, pv };

	change_call(st, &c);
}

void store_unzombie(struct store *st, uint64_t id)
{
	long i;

	pthread_mutex_lock(&st->lock);
	i = pm_find(&st->pins, id);
	if (i >= 0)
		st->pins.zombie[i] = 0;
	pthread_mutex_unlock(&st->lock);
}

void store_release_list(struct store *st, struct frag_desc *freed, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		store_release_frag(st, &freed[i]);
	free(freed);
}

uint64_t store_alloc_frag_id(struct store *st)
{
	return __atomic_fetch_add(&st->next_frag, 1, __ATOMIC_RELAXED);
}

struct frag_backend *store_backend_of(struct store *st, const struct frag_desc *d)
{
	return d->flags & FRAG_F_MEMORY ? st->mem : st->disk;
}

/* ---- txn helpers ---- */

static int collect_freed(struct frag_desc **freed, uint32_t *n, const struct frag_desc *d)
{
	struct frag_desc *v = realloc(*freed, (*n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	v[(*n)++] = *d;
	*freed = v;
	return 0;
}

int store_drop_data(struct idx_txn *t, uint64_t ino, struct frag_desc **freed, uint32_t *nfreed)
{
	struct frag_desc *v;
	uint32_t n, now;
	int rc = idx_frags_load(t, ino, &v, &n);

	for (uint32_t i = 0; i < n && !rc; i++) {
		rc = idx_frag_del(t, ino, v[i].off);
		if (!rc)
			rc = idx_ref_add(t, v[i].id, -1, &now);
		if (!rc && now == 0)
			rc = collect_freed(freed, nfreed, &v[i]);
	}
	free(v);
	return rc ? rc : idx_inline_del(t, ino);
}

int store_destroy_inode(struct idx_txn *t, uint64_t ino, struct frag_desc **freed, uint32_t *nfreed)
{
	int rc = store_drop_data(t, ino, freed, nfreed);

	if (!rc)
		rc = idx_xattr_del_all(t, ino);
	if (!rc)
		rc = idx_inode_del(t, ino);
	if (rc == -ENOENT)
		rc = 0;
	if (!rc)
		rc = idx_orphan_del(t, ino);
	return rc;
}

/* ---- opening ---- */

static int mkdir_p(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

static int init_root(struct store *st)
{
	struct idx_txn *t;
	struct idx_inode root;
	int rc = store_wbegin(st, &t);

	if (rc)
		return rc;
	if (idx_inode_get(t, IDX_ROOT_INO, &root) == 0)
		return store_wend(st, t, -EEXIST) == -EEXIST ? 0 : -EIO;
	memset(&root, 0, sizeof(root));
	root.ino = IDX_ROOT_INO;
	root.mode = S_IFDIR | 0755;
	root.uid = getuid();
	root.gid = getgid();
	root.nlink = 2;
	root.parent = IDX_ROOT_INO;
	root.atime_ns = root.mtime_ns = root.ctime_ns = store_now_ns();
	return store_wend(st, t, idx_inode_put(t, &root));
}

static void sweep_staging(struct store *st)
{
	char path[4096];
	DIR *d;
	struct dirent *e;
	int fd;

	snprintf(path, sizeof(path), "%s/staging", st->dir);
	if (!(d = opendir(path)))
		return;
	fd = dirfd(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		FAULT_CRASH("sweep_staging");
		if (unlinkat(fd, e->d_name, 0) == 0)
			log_info("sweep: removed staging file %s", e->d_name);
	}
	closedir(d);
}

struct id_set {
	uint64_t *v;
	size_t n, cap;
	uint64_t max;
};

static int id_add(void *arg, uint64_t id, uint32_t count)
{
	struct id_set *s = arg;

	(void)count;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	if (id > s->max)
		s->max = id;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct sweep_ctx {
	struct store *st;
	struct id_set refs;          /* ids with a refs record, sorted */
	struct id_set named;         /* ids a fragment record names, sorted */
	uint64_t max_seen, removed, diverged;
	int keep;                    /* list only: a follower may still read them */
};

static int in_set(const struct id_set *s, uint64_t id)
{
	return s->n && bsearch(&id, s->v, s->n, sizeof(uint64_t), cmp_u64);
}

static int sweep_one(void *arg, uint64_t id)
{
	struct sweep_ctx *c = arg;

	if (id > c->max_seen)
		c->max_seen = id;
	if (c->keep)
		return 0;
	if (in_set(&c->refs, id))
		return 0;
	if (in_set(&c->named, id)) {     /* invariant (4): never deleted */
		if (c->diverged++ < 10)
			log_err("sweep: fragment %016llx is named by a fragment record but has no "
				"reference count: kept (run payloadctl fsck)", (unsigned long long)id);
		return 0;
	}
	FAULT_CRASH("sweep_frag");
	if (frag_del(c->st->disk, id) == 0)
		c->removed++;
	return 0;
}

static int named_add(void *arg, uint64_t ino, const struct frag_desc *d)
{
	(void)ino;
	return d->flags & FRAG_F_MEMORY ? 0 : id_add(arg, d->id, 0);
}

/* Sort S and drop repeats. */
static void id_sort(struct id_set *s)
{
	size_t k = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(uint64_t), cmp_u64);
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i] != s->v[k])
			s->v[++k] = s->v[i];
	s->n = k + 1;
}

static int orphan_collect(void *arg, uint64_t ino)
{
	return id_add(arg, ino, 0);
}

static int memobj_collect(void *arg, const struct idx_inode *in)
{
	if ((in->flags & INODE_F_MEMORY) && in->size)
		return id_add(arg, in->ino, 0);
	return 0;
}

/* Destroy orphan inodes and, with MEMORY, empty storage=memory objects
 * (their data died with the previous daemon); with UNMARK also clear the
 * clean marker (S2) in the same txn. */
static int sweep_inodes(struct store *st, int memory, int unmark)
{
	struct id_set orph = { 0 }, mem = { 0 };
	size_t emptied = 0;
	struct frag_desc *freed = NULL;
	uint32_t nfreed = 0;
	struct idx_txn *t;
	int rc = store_wbegin_freeing(st, &t);

	if (rc)
		return rc;
	rc = unmark ? idx_clean_mark(t, 0) : 0;
	if (!rc)
		rc = idx_orphans_iter(t, orphan_collect, &orph);
	if (!rc && memory)
		rc = idx_inodes_iter(t, memobj_collect, &mem);
	for (size_t i = 0; i < orph.n && !rc; i++)
		rc = store_destroy_inode(t, orph.v[i], &freed, &nfreed);
	for (size_t i = 0; i < mem.n && !rc; i++) {
		struct idx_inode in;
		rc = idx_inode_get(t, mem.v[i], &in);
		if (rc == -ENOENT) {    /* an orphan too, destroyed above */
			rc = 0;
			continue;
		}
		if (!rc)
			rc = store_drop_data(t, mem.v[i], &freed, &nfreed);
		if (!rc) {
			in.size = in.rows = 0;
			in.nfrags = 0;
			in.flags &= ~INODE_F_INLINE;
			in.version++;
			in.mtime_ns = in.ctime_ns = store_now_ns();
			rc = idx_inode_put(t, &in);
			emptied += !rc;
		}
	}
	rc = store_wend(st, t, rc);
	if (!rc && (orph.n || emptied))
		log_info("sweep: %zu unlinked inode(s) freed, %zu memory object(s) emptied", orph.n, emptied);
	if (!rc)         /* memory images go at once, disk ones once durable */
		store_release_list(st, freed, nfreed);
	else
		free(freed);
	free(orph.v);
	free(mem.v);
	return rc;
}

/* The sweep at a read-write mount: everything (4) when the store was not
 * closed cleanly, else only staging/ and the orphans, clearing the marker
 * durably (S2). */
static int sweep(struct store *st, int clean)
{
	struct sweep_ctx c = { .st = st };
	struct idx_txn *t;
	int rc;

	sweep_staging(st);
	rc = sweep_inodes(st, !clean, clean);
	if (rc || clean)
		return rc;
	rc = idx_begin(st->idx, 1, &t);
	if (rc)
		return rc;
	frag_sweep_partial(st->disk);
	rc = idx_refs_iter(t, id_add, &c.refs);
	if (!rc)
		rc = idx_frags_iter_all(t, named_add, &c.named);
	idx_abort(t);
	if (rc)
		goto out;
	id_sort(&c.refs);
	id_sort(&c.named);
	if (st->rados && !srados_sweep_ok(st)) {
		log_info("sweep: a follower may still read released images: unreferenced images in the "
			 "cluster are left to a later sweep");
		/* still listed: an image a crash left without its txn has an id
		 * the index never allocated, and the ids of new images must pass
		 * it (a put is an exclusive create: EEXIST otherwise) */
		c.keep = 1;
	}
	rc = frag_list(st->disk, sweep_one, &c);
	if (c.removed)
		log_info("sweep: removed %llu unreferenced fragment(s)", (unsigned long long)c.removed);
	if (c.diverged)
		log_err("sweep: %llu image(s) named by fragment records lack a reference count: "
			"kept; the index is inconsistent (payloadctl fsck --repair)",
			(unsigned long long)c.diverged);
	if (c.max_seen >= st->next_frag)
		st->next_frag = c.max_seen + 1;
	if (c.refs.max >= st->next_frag)
		st->next_frag = c.refs.max + 1;
	if (c.named.max >= st->next_frag)
		st->next_frag = c.named.max + 1;
out:
	free(c.refs.v);
	free(c.named.v);
	return rc;
}

/* Set (CLEAN) or clear the clean marker (S2) in a txn of its own, made
 * durable before this returns. */
static int mark_clean(struct store *st, int clean)
{
	struct idx_txn *t;
	int rc;

	if (clean) {     /* after dur_stop: no syncer; flush this commit's meta page */
		rc = idx_set_metasync(st->idx, 1);
		if (!rc)
			rc = idx_begin(st->idx, 0, &t);
		if (rc)
			return rc;
		rc = idx_meta_put_u64(t, "next_frag", __atomic_load_n(&st->next_frag, __ATOMIC_RELAXED));
		if (!rc)
			rc = idx_clean_mark(t, 1);
		return rc ? (idx_abort(t), rc) : idx_commit(t);
	}
	rc = store_wbegin(st, &t);      /* before dur_start: its meta page is flushed */
	return rc ? rc : store_wend(st, t, idx_clean_mark(t, 0));
}

static int open_layout(const char *dir, const struct store_opts *o)
{
	char path[4096];
	struct stat sb;
	int rc;

	if (stat(dir, &sb) < 0)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	snprintf(path, sizeof(path), "%s/index/data.mdb", dir);
	if (stat(path, &sb) == 0)
		return 0;
	if (!o->create || o->rdonly)
		return -ENOENT;
	rc = dir_is_empty(dir);
	if (rc < 0)
		return rc;
	if (!rc)
		return -ENOTEMPTY;
	const char *subs[] = { "index", "fragments", "staging" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if ((rc = mkdir_p(path)) < 0)
			return rc;
	}
	return 1;   /* created */
}

static int stop_at_first(void *arg, uint64_t id)
{
	(void)arg;
	(void)id;
	return 1;
}

/* Does the memory backend hold an image? Only then can a storage=memory
 * object have data to empty at close (the open's sweep emptied the older
 * ones): a store that never used it closes without scanning its inodes. */
static int mem_in_use(struct store *st)
{
	return !st->mem || frag_list(st->mem, stop_at_first, NULL) != 0;
}

/* The store's kind (format 3, docs/format.md): a new store records CONF
 * (or local); one of format 1 or 2 opened read-write is upgraded to the
 * current format as a local store, in one txn; read-only, it is taken as
 * local. A local store of format 3 opened read-write is raised to 4 (row
 * indexes); a RADOS store keeps its format (see below). */
static int open_conf(struct store *st, const struct store_conf *conf, int created)
{
	char buf[STORECONF_MAX];
	struct idx_txn *t;
	uint32_t ver = 0;
	size_t len = 0;
	int rc = idx_begin(st->idx, 1, &t), have;

	if (rc)
		return rc;
	rc = idx_format_get(t, &ver);
	if (!rc) {
		rc = idx_meta_get_bytes(t, "store", buf, sizeof(buf), &len);
		have = rc == 0;
		if (rc == -ENOENT)
			rc = 0;
	}
	idx_abort(t);
	if (rc)
		return rc == -EOVERFLOW ? -EPROTO : rc;
	st->format = ver;
	if (have && !created) {
		rc = storeconf_decode(buf, len, &st->conf);
		if (rc) {
			log_err("%s: open: the store's configuration record is %s (EPROTO)", st->dir,
				rc == -EPROTO ? "of a newer build" : "damaged");
			return -EPROTO;
		}
		/* format 3 -> 4 (row indexes, docs/format.md "Format 4"):
		 * nothing to convert, old fragments keep no index. A RADOS
		 * store keeps the version it was made with (its record is in
		 * the log every host applies, and a host of an older build
		 * would refuse the log's rowidx records): no indexes there */
		if (st->rdonly || st->conf.kind != STORE_LOCAL || ver >= IDX_FORMAT_VERSION)
			return 0;
		rc = store_wbegin(st, &t);
		if (rc)
			return rc;
		rc = store_wend(st, t, idx_format_raise(t));
		if (!rc) {
			st->format = IDX_FORMAT_VERSION;
			log_info("%s: store format %u upgraded to %u", st->dir, ver, IDX_FORMAT_VERSION);
		}
		return rc;
	}
	memset(&st->conf, 0, sizeof(st->conf));
	if (created && conf)
		st->conf = *conf;
	if (st->rdonly)
		return 0;
	rc = storeconf_encode(&st->conf, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	len = (size_t)rc;
	rc = store_wbegin(st, &t);
	if (rc)
		return rc;
	rc = idx_format_raise(t);
	if (!rc)
		rc = idx_meta_put_bytes(t, "store", buf, len);
	rc = store_wend(st, t, rc);
	if (!rc)
		st->format = IDX_FORMAT_VERSION;
	if (!rc && !created)
		log_info("%s: store format %u upgraded to %u", st->dir, ver, IDX_FORMAT_VERSION);
	return rc;
}

const struct store_conf *store_get_conf(const struct store *st)
{
	return &st->conf;
}

/* A read-write open: the sweep (S2) when SWEEP, then the marker cleared. */
static int open_sweep(struct store *st, int sweep_on)
{
	int clean = 0, rc = idx_clean_get(st->idx, &clean);

	if (rc)
		return rc;
	if (sweep_on && clean)
		log_info("%s: closed cleanly: the sweep looks at staging/ and the orphans only", st->dir);
	if (sweep_on && (rc = sweep(st, clean)) != 0) {
		log_err("%s: the sweep at open failed: %s (%s)", st->dir, strerror(-rc), log_errname(rc));
		return rc;
	}
	st->clean_base = clean || sweep_on;
	if (clean && !sweep_on && (rc = mark_clean(st, 0)) != 0)
		log_err("%s: clearing the clean-close marker failed: %s (%s)", st->dir, strerror(-rc),
			log_errname(rc));
	return rc;
}

int store_open(const char *dir, const struct store_opts *o, struct store **out)
{
	struct store *st;
	char path[4096];
	struct idx_txn *t;
	int rc, created;

	*out = NULL;
	open_detail[0] = '\0';
	open_detail_rc = 0;
	created = open_layout(dir, o);
	if (created < 0)
		return created;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->change_lock, NULL);
	gate_init(&st->commit_lock);
	store_pend_init(st, 0);
	pthread_mutex_init(&st->sync_lock, NULL);
	pthread_mutex_init(&st->sync_wlock, NULL);
	pthread_cond_init(&st->sync_cond, NULL);
	pthread_mutex_init(&st->dq_lock, NULL);
	pthread_cond_init(&st->dq_cond, NULL);
	pthread_cond_init(&st->dq_done, NULL);
	st->sync_ms = o->sync_ms ? o->sync_ms : 1000;
	st->dir = strdup(dir);
	st->rdonly = o->rdonly;
	st->no_stream = o->no_stream || (getenv("PAYLOADFS_NO_STREAM") && *getenv("PAYLOADFS_NO_STREAM") == '1');
	st->lockfd = -1;
	st->markfd = -1;
	st->reserve_fd = -1;
	st->sweep = o->sweep && !o->rdonly;
	if (!o->rdonly || o->lock_shared) {
		struct storelock_opts lo = { .shared = o->rdonly, .daemon = o->daemon,
					     .note = o->lock_note };
		if ((rc = storelock_take(dir, &lo, &st->lockfd, &st->markfd)) != 0) {
			store_close(st);
			return rc;
		}
	}
	st->frag_size = o->fragment_size ? o->fragment_size : (1u << 20);
	st->spill_size = o->spill_size ? o->spill_size : (8u << 20);
	snprintf(path, sizeof(path), "%s/index", dir);
	rc = st->dir ? idx_open(path, created > 0, o->rdonly, &st->idx) : -ENOMEM;
	if (!rc)
		rc = backend_mem_open(&st->mem);
	if (!rc && !(st->cache = fcache_new(o->cache_size)))
		rc = -ENOMEM;
	if (!rc && !(st->pool = pool_new(o->no_threads ? 0 : o->threads ? o->threads : pool_ncpus())))
		rc = -ENOMEM;
	if (!rc)
		fcache_configure(st->cache, st->pool, 0);
	if (!rc)
		rc = open_conf(st, o->conf, created > 0);
	if (!rc && !o->rdonly && st->format >= 4)
		st->ris = rowidx_stash_new();   /* NULL: no indexes (rowidx.c (2)) */
	if (!rc && st->conf.kind == STORE_RADOS && st->frag_size > STORE_RADOS_FRAG_MAX) {
		/* an image is one RADOS object: OSDs refuse writes past 90 MiB */
		log_warn("%s: fragment_size %zu MiB is over what one RADOS object takes: %u MiB",
			 dir, st->frag_size >> 20, (unsigned)(STORE_RADOS_FRAG_MAX >> 20));
		st->frag_size = STORE_RADOS_FRAG_MAX;
	}
	if (!rc && st->conf.kind == STORE_RADOS) {
		rc = srados_open(st, o, created > 0);
		if (!rc && srados_follower(st))
			st->rdonly = 1;          /* the API refuses changes; the applier writes */
	} else if (!rc) {
		snprintf(path, sizeof(path), "%s/fragments", dir);
		rc = o->rdonly ? backend_local_open_ro(path, &st->disk) : backend_local_open(path, &st->disk);
	}
	if (!rc && created > 0 && !st->rdonly && !o->takeover)
		rc = init_root(st);
	if (!rc && created > 0 && !st->rdonly && !o->takeover)
		rc = srados_created(st);
	if (!rc && !st->rdonly)
		store_reserve_open(st);
	if (!rc && (rc = idx_begin(st->idx, 1, &t)) == 0) {
		rc = idx_meta_get_u64(t, "next_frag", &st->next_frag);
		idx_abort(t);
	}
	if (rc == -ENOENT && created == 0)
		rc = -EPROTO;     /* an index without its databases or records */
	/* before dur_start: every txn of the sweep flushes its meta page, so
	 * the marker is cleared durably and freed images can go at once */
	if (!rc && !st->rdonly)
		rc = open_sweep(st, o->sweep);
	if (!rc && (!st->rdonly || srados_follower(st)))
		rc = dur_start(st, !o->sync);
	if (!rc && !st->rados && !st->rdonly)
		st->grouped = gcommit_wanted();   /* local group commit (gcommit.c) */
	if (!rc && !st->rados && !st->rdonly)  /* deferred creates (ns.c P1-P6) */
		st->pend_on = !getenv("PAYLOADFS_DEFER_CREATE") || strcmp(getenv("PAYLOADFS_DEFER_CREATE"), "0");
	if (!rc)
		store_stage_raw_init(st, o->daemon);
	if (!rc && o->daemon)
		rc = recomp_start(st);        /* recompress.c: before srados_start, after dur_start */
	if (!rc)
		rc = srados_start(st);
	if (rc) {
		store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	srados_stop(st);         /* no applier or follower pass from here on */
	if (st->pend_on && store_pend_flush(st))   /* ns.c P6 */
		log_err("%s: pending names could not be committed at close: they are lost", st->dir);
	storelock_unmark(&st->markfd);   /* exiting: openers now wait (storelock.h) */
	if (st->sweep && st->idx && mem_in_use(st) && sweep_inodes(st, 1, 0)) {
		log_warn("storage=memory objects could not be emptied at close; the next mount does it");
		store_note_leftover(st);
	}
	recomp_stop(st);         /* its swaps pin, commit and release: before the rest */
	pool_free(st->pool);     /* first: read-ahead jobs hold versions */
	if (st->pvcur) {
		for (size_t i = 0; i < st->pvcur_cap; i++)
			pver_put(st->pvcur[i].pv);
		free(st->pvcur);
	}
	if (st->reap_running) {
		dur_stop(st);    /* the final flush, after the last change */
		/* (S2): the reaper's unlinks are durable before the marker says
		 * that no garbage is left (found by the power-loss explorer) */
		if (st->clean_base && !st->dur_leftover && frag_sync_dels(st->disk))
			store_note_leftover(st);
		if (st->clean_base && !st->dur_leftover && mark_clean(st, 1))
			log_warn("%s: the clean-close marker could not be written: the next mount sweeps",
				 st->dir);
	}
	srados_close(st);        /* its threads apply and release: before the rest */
	rowidx_stash_free(st->ris);
	fcache_free(st->cache);
	frag_backend_destroy(st->disk);
	frag_backend_destroy(st->mem);
	rconn_put(st->rados_conn);
	idx_close(st->idx);
	free(st->pins.keys);
	free(st->pins.vals);
	free(st->pins.zombie);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->change_lock);
	gate_destroy(&st->commit_lock);
	store_pend_fini(st);
	pthread_mutex_destroy(&st->sync_lock);
	pthread_mutex_destroy(&st->sync_wlock);
	pthread_cond_destroy(&st->sync_cond);
	pthread_mutex_destroy(&st->dq_lock);
	pthread_cond_destroy(&st->dq_cond);
	pthread_cond_destroy(&st->dq_done);
	store_reserve_close(st);
	if (st->lockfd >= 0)
		close(st->lockfd);
	free(st->dir);
	free(st);
}

int store_statfs(struct store *st, struct statvfs *out)
{
	if (statvfs(st->dir, out) < 0)
		return -errno;
	if (st->rados) {        /* the images live in the cluster: its space */
		uint64_t total, avail;
		int rc = srados_space(st, &total, &avail);
		if (rc == -ENODATA)     /* no figures (no manager): the local ones */
			return 0;
		if (rc) {
			log_warn("%s: statfs: the cluster's space is unknown: %s", st->dir, strerror(-rc));
			return rc;
		}
		out->f_bsize = out->f_frsize = 4096;
		out->f_blocks = total / 4096;
		out->f_bfree = out->f_bavail = avail / 4096;
	}
	out->f_namemax = IDX_NAME_MAX;
	if (st->rdonly)
		out->f_flag |= ST_RDONLY;
	return 0;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	struct fcache_stats cs;

	out->frags_written = __atomic_load_n(&st->stats.frags_written, __ATOMIC_RELAXED);
	out->frags_deleted = __atomic_load_n(&st->stats.frags_deleted, __ATOMIC_RELAXED);
	out->commits = __atomic_load_n(&st->stats.commits, __ATOMIC_RELAXED);
	out->syncs = __atomic_load_n(&st->stats.syncs, __ATOMIC_RELAXED);
	out->sync_failures = __atomic_load_n(&st->stats.sync_failures, __ATOMIC_RELAXED);
	out->deletes_pending = dur_pending(st);
	out->frag_records = __atomic_load_n(&st->stats.frag_records, __ATOMIC_RELAXED);
	out->log_rounds = __atomic_load_n(&st->stats.log_rounds, __ATOMIC_RELAXED);
	out->log_round_members = __atomic_load_n(&st->stats.log_round_members, __ATOMIC_RELAXED);
	out->row_scans = __atomic_load_n(&st->stats.row_scans, __ATOMIC_RELAXED);
	out->rowidx_hits = __atomic_load_n(&st->stats.rowidx_hits, __ATOMIC_RELAXED);
	out->view_resolves = __atomic_load_n(&st->stats.view_resolves, __ATOMIC_RELAXED);
	out->load_retries = __atomic_load_n(&st->stats.load_retries, __ATOMIC_RELAXED);
	out->index_txns = st->idx ? idx_write_commits(st->idx) : 0;
	out->frags_staged_raw = __atomic_load_n(&st->stats.frags_staged_raw, __ATOMIC_RELAXED);
	out->frags_recompressed = __atomic_load_n(&st->stats.frags_recompressed, __ATOMIC_RELAXED);
	out->recompress_skipped = __atomic_load_n(&st->stats.recompress_skipped, __ATOMIC_RELAXED);
	out->staged_pending = __atomic_load_n(&st->stats.staged_pending, __ATOMIC_RELAXED);
	fcache_get_stats(st->cache, &cs);
	out->cache_hits = cs.hits;
	out->cache_misses = cs.misses;
	out->cache_bytes = cs.bytes;
}

int store_unref_delete_ok(struct store *st, char *why, size_t cap)
{
	if (cap)
		why[0] = '\0';
	return st->conf.kind == STORE_RADOS ? srados_unref_ok(st, why, cap) : 1;
}

int store_index_make_local(struct idx *idx)
{
	struct store_conf local;
	char buf[STORECONF_MAX];
	struct idx_txn *t;
	int len, rc;

	memset(&local, 0, sizeof(local));
	if ((len = storeconf_encode(&local, buf, sizeof(buf))) < 0)
		return len;
	if ((rc = idx_begin(idx, 0, &t)) != 0)
		return rc;
	rc = idx_meta_put_bytes(t, "store", buf, (size_t)len);
	if (!rc)
		rc = idx_meta_put_u64(t, "log_lsn", 0);
	return rc ? (idx_abort(t), rc) : idx_commit(t);
}

struct idx *store_idx(struct store *st) { return st->idx; }
struct frag_backend *store_backend(struct store *st, int memory) { return memory ? st->mem : st->disk; }
struct fcache *store_cache(struct store *st) { return st->cache; }
struct pool *store_pool(struct store *st) { return st->pool; }

void store_get_cache_stats(struct store *st, struct fcache_stats *out)
{
	fcache_get_stats(st->cache, out);
}
