/* backend_cached — a bounded on-disk cache of the images another backend
 * (RADOS) serves, so that a restarted host does not fetch everything
 * again (docs/rados.md "Caching on each host"). It implements the backend
 * interface over the inner one:
 *
 *  (1) get_many() reads each requested image from DIR/XX/ID when it is
 *      there and whole (its header's stored length matches the file's
 *      size: a file torn by a crash is dropped and fetched again), and
 *      fetches all the others with ONE inner get_many(); each image
 *      fetched is then written to DIR (temporary name, rename: a reader
 *      never sees a partial file). Checksums are checked above, when an
 *      image enters the fragment cache (fcache.c): an image whose bytes
 *      do not verify is invalidated (invalidate()), which drops the copy
 *      here, so a damaged copy is never served twice; when the bytes came
 *      from the copy (not fetched by this very call) the fragment cache
 *      reads the image again, from the inner backend. A damaged image in
 *      the cluster itself is EIO, and is not kept. `payloadctl fsck` reads
 *      through the inner backend (tools open no image cache).
 *      A request with cap 0 (existence and size) goes to the inner
 *      backend and is never kept.
 *  (2) The files' total size stays within the budget: least recently
 *      used first out (an in-memory LRU of the files, rebuilt at open
 *      from the directory, oldest modification first).
 *  (3) put, sync, del and list are the inner backend's; del also drops the
 *      cached copy, so a deleted image is never served from the cache.
 *  (4) Images are immutable and ids never reused, so a cached copy is
 *      never stale.
 * Lock order: c->lock is a leaf, never held across I/O to the inner
 * backend (file I/O on the cache directory happens outside it too).
 */
#include "cache/backend.h"
#include "cache/codec.h"
#include "cache/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct centry {
	uint64_t id;
	uint64_t size;
	int fresh;                    /* kept by keep() and not served from the
				       * file since: invalidate() says 0 */
	struct centry *prev, *next;   /* LRU: head = most recent */
	struct centry *hnext;
};

struct cached {
	struct frag_backend base;
	struct frag_backend *inner;   /* owned */
	int dirfd;
	uint64_t budget, used;        /* protected by lock */
	pthread_mutex_t lock;
	struct centry **tab;          /* protected by lock */
	size_t nbuckets, count;
	struct centry *head, *tail;
	uint64_t seq;                 /* temporary names */
	uint64_t hits, misses;        /* protected by lock */
};

static struct cached *to_c(struct frag_backend *b) { return (struct cached *)b; }

static size_t slot(const struct cached *c, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (c->nbuckets - 1);
}

static struct centry *find(struct cached *c, uint64_t id)
{
	for (struct centry *e = c->tab[slot(c, id)]; e; e = e->hnext)
		if (e->id == id)
			return e;
	return NULL;
}

static void lru_unlink(struct cached *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(struct cached *c, struct centry *e)
{
	e->next = c->head;
	e->prev = NULL;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void tab_remove(struct cached *c, struct centry *e)
{
	struct centry **p = &c->tab[slot(c, e->id)];

	while (*p && *p != e)
		p = &(*p)->hnext;
	if (*p)
		*p = e->hnext;
	lru_unlink(c, e);
	c->used -= e->size;
	c->count--;
}

static void grow_tab(struct cached *c)
{
	size_t nb = c->nbuckets * 2;
	struct centry **t = calloc(nb, sizeof(*t));

	if (!t)
		return;
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct centry *e = c->tab[i], *n; e; e = n) {
			n = e->hnext;
			size_t s = (size_t)((e->id * 0x9e3779b97f4a7c15ull) >> 20) & (nb - 1);
			e->hnext = t[s];
			t[s] = e;
		}
	free(c->tab);
	c->tab = t;
	c->nbuckets = nb;
}

static void name_of(char *out, size_t cap, uint64_t id)
{
	snprintf(out, cap, "%02x/%016" PRIx64, (unsigned)(id & 0xff), id);
}

/* Caller holds the lock. Evict least recently used files until NEED more
 * bytes fit; their names go to *GONE (unlinked by the caller, unlocked). */
static void evict(struct cached *c, uint64_t need, uint64_t **gone, size_t *ngone)
{
	while (c->tail && c->used + need > c->budget) {
		struct centry *e = c->tail;
		uint64_t *v = realloc(*gone, (*ngone + 1) * sizeof(*v));
		if (!v)
			break;
		*gone = v;
		v[(*ngone)++] = e->id;
		tab_remove(c, e);
		free(e);
	}
}

static void unlink_ids(struct cached *c, const uint64_t *ids, size_t n)
{
	char name[40];

	for (size_t i = 0; i < n; i++) {
		name_of(name, sizeof(name), ids[i]);
		unlinkat(c->dirfd, name, 0);
	}
}

/* Note a file of SIZE bytes for ID (most recent). Caller holds the lock. */
static int note(struct cached *c, uint64_t id, uint64_t size)
{
	struct centry *e = find(c, id);

	if (e) {
		lru_unlink(c, e);
		lru_front(c, e);
		return 0;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->id = id;
	e->size = size;
	e->hnext = c->tab[slot(c, id)];
	c->tab[slot(c, id)] = e;
	lru_front(c, e);
	c->used += size;
	if (++c->count > c->nbuckets)
		grow_tab(c);
	return 0;
}

/* Read the cached copy of R's image, if there and whole. @return 1 read,
 * 0 not cached (or dropped). */
static int read_cached(struct cached *c, struct frag_get *r)
{
	char name[40];
	struct frag_info fi;
	struct stat sb;
	ssize_t n;
	int fd, ok = 0;

	pthread_mutex_lock(&c->lock);
	ok = find(c, r->id) != NULL;
	pthread_mutex_unlock(&c->lock);
	if (!ok)
		return 0;
	name_of(name, sizeof(name), r->id);
	fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
	ok = 0;
	if (fd >= 0 && fstat(fd, &sb) == 0 && (size_t)sb.st_size == r->cap) {
		n = pread(fd, r->buf, (size_t)sb.st_size, 0);
		ok = n == sb.st_size && n >= FRAG_HDR_SIZE &&
		     frag_decode_header(r->buf, (size_t)n, &fi) == 0 && fi.id == r->id &&
		     (size_t)n == FRAG_HDR_SIZE + fi.stored_len;
		if (ok)
			r->len = (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&c->lock);
	if (ok) {
		struct centry *e = find(c, r->id);
		if (e) {
			lru_unlink(c, e);
			lru_front(c, e);
			e->fresh = 0;
		}
		c->hits++;
	} else {
		struct centry *e = find(c, r->id);
		if (e) {                      /* gone, torn or too big: forget it */
			tab_remove(c, e);
			free(e);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!ok && fd >= 0) {
		log_warn("image cache: %s was damaged or torn: fetched again", name);
		unlinkat(c->dirfd, name, 0);
	}
	return ok;
}

/* Keep a copy of an image just fetched (invariant 2). Failures only cost
 * a later fetch. */
static void keep(struct cached *c, uint64_t id, const void *data, size_t len)
{
	char name[40], tmp[64];
	uint64_t *gone = NULL;
	size_t ngone = 0;
	int fd, ok;

	if (len > c->budget)
		return;
	pthread_mutex_lock(&c->lock);
	if (find(c, id)) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	evict(c, len, &gone, &ngone);
	snprintf(tmp, sizeof(tmp), "%02x/.tmp.%" PRIu64, (unsigned)(id & 0xff), ++c->seq);
	pthread_mutex_unlock(&c->lock);
	unlink_ids(c, gone, ngone);
	free(gone);
	name_of(name, sizeof(name), id);
	fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ok = write(fd, data, len) == (ssize_t)len;
	ok = (close(fd) == 0) && ok;
	if (ok && renameat(c->dirfd, tmp, c->dirfd, name) == 0) {
		pthread_mutex_lock(&c->lock);
		if (note(c, id, len))
			ok = 0;
		else
			find(c, id)->fresh = 1;
		pthread_mutex_unlock(&c->lock);
		if (!ok)
			unlinkat(c->dirfd, name, 0);
		return;
	}
	unlinkat(c->dirfd, tmp, 0);
}

static int c_get_many(struct frag_backend *b, struct frag_get *reqs, size_t n)
{
	struct cached *c = to_c(b);
	struct frag_get *miss = NULL;
	size_t *at = NULL, nmiss = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		reqs[i].err = 0;
		reqs[i].len = 0;
		if (reqs[i].cap && read_cached(c, &reqs[i]))
			continue;
		if (!miss && (!(miss = malloc(n * sizeof(*miss))) || !(at = malloc(n * sizeof(*at))))) {
			free(miss);
			return c->inner->ops->get_many(c->inner, reqs, n);   /* no memory: all inner */
		}
		miss[nmiss] = reqs[i];
		at[nmiss++] = i;
	}
	if (nmiss) {
		pthread_mutex_lock(&c->lock);
		c->misses += nmiss;
		pthread_mutex_unlock(&c->lock);
		rc = frag_get_many(c->inner, miss, nmiss);
		for (size_t k = 0; k < nmiss && !rc; k++) {
			reqs[at[k]] = miss[k];
			if (!miss[k].err && miss[k].cap)
				keep(c, miss[k].id, miss[k].buf, miss[k].len);
		}
	}
	free(miss);
	free(at);
	return rc;
}

static int c_put(struct frag_backend *b, uint64_t id, const void *data, size_t len)
{
	return frag_put(to_c(b)->inner, id, data, len);
}

static int c_sync(struct frag_backend *b, const uint64_t *ids, size_t n)
{
	return frag_sync(to_c(b)->inner, ids, n);
}

static int c_del(struct frag_backend *b, uint64_t id)
{
	struct cached *c = to_c(b);
	struct centry *e;

	pthread_mutex_lock(&c->lock);
	if ((e = find(c, id))) {
		tab_remove(c, e);
		free(e);
	}
	pthread_mutex_unlock(&c->lock);
	unlink_ids(c, &id, 1);          /* also a file the table did not know */
	return frag_del(c->inner, id);
}

static int c_list(struct frag_backend *b, int (*cb)(void *, uint64_t), void *arg)
{
	return frag_list(to_c(b)->inner, cb, arg);
}

static void c_destroy(struct frag_backend *b)
{
	struct cached *c = to_c(b);

	for (size_t i = 0; c->tab && i < c->nbuckets; i++)
		for (struct centry *e = c->tab[i], *n; e; e = n) {
			n = e->hnext;
			free(e);
		}
	free(c->tab);
	if (c->dirfd >= 0)
		close(c->dirfd);
	frag_backend_destroy(c->inner);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void c_where(struct frag_backend *b, uint64_t id, char *buf, size_t cap)
{
	frag_where(to_c(b)->inner, id, buf, cap);
}

/* Invariant (1): drop the copy of ID; 1 when the bytes the caller checked
 * were read from it (not just fetched from the inner backend). */
static int c_invalidate(struct frag_backend *b, uint64_t id)
{
	struct cached *c = to_c(b);
	struct centry *e;
	int from_copy = 0;

	pthread_mutex_lock(&c->lock);
	if ((e = find(c, id))) {
		from_copy = !e->fresh;
		tab_remove(c, e);
		free(e);
	}
	pthread_mutex_unlock(&c->lock);
	unlink_ids(c, &id, 1);
	return from_copy;
}

static const struct frag_backend_ops cached_ops = {
	.where = c_where,
	.invalidate = c_invalidate,
	.name = "cached",
	.put = c_put,
	.sync = c_sync,
	.get_many = c_get_many,
	.del = c_del,
	.list = c_list,
	.destroy = c_destroy,
};

struct found { uint64_t id, size; int64_t mtime; };

static int by_mtime(const void *a, const void *b)
{
	const struct found *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Rebuild the LRU from the directory: oldest first into the table, so the
 * newest end up most recent; temporary files of a crash are removed;
 * what is over the budget is evicted. */
static int rebuild(struct cached *c)
{
	struct found *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t *gone = NULL;
	size_t ngone = 0;
	char sub[4];

	for (unsigned d = 0; d < 256; d++) {
		int fd;
		DIR *dir;
		struct dirent *de;
		snprintf(sub, sizeof(sub), "%02x", d);
		if (mkdirat(c->dirfd, sub, 0700) < 0 && errno != EEXIST)
			return -errno;
		if ((fd = openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			return -errno;
		if (!(dir = fdopendir(fd))) {
			close(fd);
			return -errno;
		}
		while ((de = readdir(dir))) {
			struct stat sb;
			char *end;
			uint64_t id;
			if (de->d_name[0] == '.') {
				if (!strncmp(de->d_name, ".tmp.", 5))
					unlinkat(dirfd(dir), de->d_name, 0);
				continue;
			}
			id = strtoull(de->d_name, &end, 16);
			if (*end || strlen(de->d_name) != 16 || (id & 0xff) != d ||
			    fstatat(dirfd(dir), de->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode))
				continue;
			if (n == cap) {
				struct found *w = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*w));
				if (!w) {
					closedir(dir);
					free(v);
					return -ENOMEM;
				}
				v = w;
			}
			v[n++] = (struct found){ id, (uint64_t)sb.st_size, (int64_t)sb.st_mtime };
		}
		closedir(dir);
	}
	if (n)
		qsort(v, n, sizeof(*v), by_mtime);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++)
		note(c, v[i].id, v[i].size);
	evict(c, 0, &gone, &ngone);
	pthread_mutex_unlock(&c->lock);
	unlink_ids(c, gone, ngone);
	free(gone);
	free(v);
	return 0;
}

int backend_cached_open(struct frag_backend *inner, const char *dir, uint64_t budget,
			struct frag_backend **out)
{
	struct cached *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->base.ops = &cached_ops;
	c->inner = inner;
	c->budget = budget;
	c->dirfd = -1;
	pthread_mutex_init(&c->lock, NULL);
	c->nbuckets = 1024;
	if (!(c->tab = calloc(c->nbuckets, sizeof(*c->tab)))) {
		rc = -ENOMEM;
		goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	if ((c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = rebuild(c)))
		goto fail;
	*out = &c->base;
	return 0;
fail:
	log_err("%s: cannot open the image cache: %s (%s)", dir, strerror(-rc), log_errname(rc));
	c->inner = NULL;             /* the caller keeps it on failure */
	c_destroy(&c->base);
	return rc;
}

void backend_cached_stats(struct frag_backend *b, uint64_t *hits, uint64_t *misses, uint64_t *bytes,
			  uint64_t *files)
{
	struct cached *c = to_c(b);

	pthread_mutex_lock(&c->lock);
	*hits = c->hits;
	*misses = c->misses;
	*bytes = c->used;
	*files = c->count;
	pthread_mutex_unlock(&c->lock);
}
