/* ctl_snapshot — `payloadctl snapshot STORE DEST`: a consistent copy of a
 * whole store, also while a daemon writes it: a compacting LMDB copy of
 * the index plus hard links of the fragment images it references (images
 * are immutable: DESIGN §3), or copies of them when DEST is on another
 * file system. DEST is a store of its own: it mounts and fsck's clean, and
 * writing either store never changes the other (an image is never written
 * in place; a new version is new images).
 *
 * The problem: the tool cannot stop the daemon from deleting images. The
 * daemon deletes an image once no committed state references it any more
 * (once that release is durable, durable.c (1), or at once with -o sync),
 * so an image the copied state S references may vanish between
 * the copy and its link. The protocol:
 *
 *   0. Pre-link: link every image present in STORE/fragments (listing
 *      each fan-out folder, then linking what it held).
 *   1. Copy the index (mdb_env_copy2, compacting): one read txn, so the
 *      copy is exactly one committed state S_k.
 *   2. Read the ids S_k references (its fragment records; storage=memory
 *      ones live in the daemon and are skipped) from the copy.
 *   3. Link each one not linked yet. If one has vanished, S_k is older
 *      than a state that no longer references it: go back to 1 (a newer
 *      state; what is linked stays linked). At most SNAP_ROUNDS rounds.
 *   4. Unlink from DEST every image S_k does not reference (pre-linked
 *      garbage, in-flight images), fsync the copy and DEST.
 *
 * Invariants:
 *  (1) An image exists from its put until after the last committed state
 *      that references it is superseded (commit protocol; ids are never
 *      reused, and a deleted image is never referenced again).
 *  (2) A hard link keeps an image's bytes whatever the daemon deletes
 *      later; an image is never modified after its put completed, and an
 *      image a state references was complete before that state committed.
 *  (3) So an image S_k references that existed when its folder was listed
 *      in step 0 was linked there (it still existed at S_k, hence at the
 *      listing, which came earlier); only images put after step 0 can be
 *      missed in step 3, and a miss is detected (ENOENT) and retried.
 *  (4) When step 3 finds every image, DEST holds the index of S_k and
 *      every image S_k references: a consistent store. Nothing in STORE
 *      is written.
 * In copy mode (another file system) an image is opened before it is
 * read, so a deletion after the open does not matter (same retry on
 * ENOENT at open).
 *
 * A RADOS store (docs/rados.md): DEST becomes a *local* store holding the
 * store's state at the log's end and a copy of every image that state
 * references, fetched from the cluster. The writer (of another host, or
 * of this one) may delete images meanwhile; a follower's applied position
 * is what holds them back, so the tool registers as one (store_hold) for
 * as long as it copies:
 *
 *   R1. T = the log's tail; the hold's horizon is T (a new hold the first
 *       time). From the writer's next pass on, no image released after T
 *       is deleted.
 *   R2. Copy the local index (as step 1) and bring the copy up to the
 *       log's end (store_log_catch_up: entries after its position, or the
 *       newest base): state S at position >= T; it becomes a local
 *       store's index (store_index_make_local).
 *   R3. Fetch each image S references that DEST lacks, in batches, and
 *       put it into DEST/fragments (the local backend). One that has
 *       vanished (the writer deleted it before it saw the hold, or the
 *       hold expired) means S is older than a state that released it: go
 *       back to R1 (a newer T; fetched images stay).
 *   R4. As step 4; the hold goes.
 *  (5) S references no image released at or before T (ids are never
 *      reused, a released image is never referenced again); every image
 *      released after T is kept once the writer saw the hold, which it
 *      sees within its pass interval; so the rounds end, normally at the
 *      second. Images are immutable: a fetched image never changes. */
#include "tools/ctl.h"
#include "cache/backend.h"
#include "cache/codec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_ROUNDS 16

static const char help[] =
	"usage: payloadctl snapshot [-q] STORE DEST\n"
	"\n"
	"Make DEST (a new or empty directory) a consistent copy of the whole store\n"
	"STORE, also while STORE is mounted and written: a compacted copy of the\n"
	"index and hard links of the fragment images it references (copies when\n"
	"DEST is on another file system). Images are immutable, so the copy costs\n"
	"little space; the two stores are independent afterwards. DEST is durable\n"
	"when the command returns. It holds the state of the last commit before the\n"
	"copy of the index; storage=memory objects are empty there.\n"
	"\n"
	"  -q, --quiet   no summary line\n"
	"\n"
	"exit status: 0 done; 1 failed (DEST is removed again); 2 usage error.\n";

/* ---- sets of ids (sorted vectors) ---- */

struct ids {
	uint64_t *v;
	size_t n, cap;
};

static int ids_add(struct ids *s, uint64_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates. */
static void ids_sort(struct ids *s)
{
	size_t k = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	for (size_t i = 0; i < s->n; i++)
		if (!k || s->v[k - 1] != s->v[i])
			s->v[k++] = s->v[i];
	s->n = k;
}

static int ids_has(const struct ids *s, uint64_t id)
{
	return s->n && bsearch(&id, s->v, s->n, sizeof(id), cmp_u64) != NULL;
}

/* ---- the snapshot ---- */

struct snap {
	const char *src, *dest;
	struct store *st;            /* the source, read-only */
	int copy_mode;               /* images are copied, not linked */
	int created;                 /* DEST was made by us */
	struct ids linked;           /* images in DEST (unsorted until the end) */
	struct ids sorted;           /* LINKED sorted, for lookups */
	unsigned rounds;
	size_t nimages;              /* images DEST holds at the end */
	uint64_t bytes_copied;
	int rados;                   /* the source is a RADOS store: fetch */
	struct store_hold *hold;     /* R1 */
	struct frag_backend *dbe;    /* DEST's images (local backend) */
	uint64_t pos;                /* the state copied: its log position */
	/* tests: called after step 0 (stage 0) and after each copy (stage 1) */
	void (*hook)(void *arg, int stage);
	void *hook_arg;
};

static void img_path(const char *store, uint64_t id, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/fragments/%02x/%016" PRIx64 ".frag", store, (unsigned)(id & 0xff), id);
}

/* Copy the file FROM to TO (new, 0600). @return 0, -ENOENT when FROM has
 * vanished, -errno. */
static int copy_file(struct snap *s, const char *from, const char *to)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC), out, rc = 0;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		if ((rc = ctl_write_all(out, buf, (size_t)n)))
			break;
		s->bytes_copied += (uint64_t)n;
	}
	if (close(out) < 0 && !rc)
		rc = -errno;
	close(in);
	if (rc)
		unlink(to);
	return rc;
}

/* Put image ID into DEST (link, or copy across file systems). @return 0,
 * -ENOENT (it vanished from STORE), -errno. */
static int put_image(struct snap *s, uint64_t id)
{
	char from[4200], to[4200];

	img_path(s->src, id, from, sizeof(from));
	img_path(s->dest, id, to, sizeof(to));
	if (!s->copy_mode) {
		if (link(from, to) == 0)
			return ids_add(&s->linked, id);
		if (errno == EEXIST)
			return 0;
		if (errno != EXDEV && errno != EPERM && errno != EMLINK)
			return -errno;
		s->copy_mode = 1;     /* another file system (or no hard links): copy */
	}
	int rc = copy_file(s, from, to);
	if (rc == -EEXIST)
		return 0;
	return rc ? rc : ids_add(&s->linked, id);
}

static int prelink_cb(void *arg, uint64_t id)
{
	return ids_add(arg, id);
}

/* Step 0 (link mode only: a copy of every image would cost too much). */
static int prelink(struct snap *s)
{
	struct ids all = { 0 };
	int rc = frag_list(store_backend(s->st, 0), prelink_cb, &all);

	for (size_t i = 0; i < all.n && !rc && !s->copy_mode; i++) {
		rc = put_image(s, all.v[i]);
		if (rc == -ENOENT)
			rc = 0;    /* deleted meanwhile: no later state references it */
	}
	free(all.v);
	return rc;
}

static int ref_cb(void *arg, uint64_t ino, const struct frag_desc *d)
{
	(void)ino;
	return d->flags & FRAG_F_MEMORY ? 0 : ids_add(arg, d->id);
}

/* The ids of the copy's fragment records and each one's image size (id,
 * size pairs in V, sorted by id, unique). */
struct sized { uint64_t id, size; };
struct sizes { struct sized *v; size_t n, cap; };

static int sized_cb(void *arg, uint64_t ino, const struct frag_desc *d)
{
	struct sizes *s = arg;

	(void)ino;
	if (d->flags & FRAG_F_MEMORY)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct sized *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct sized){ d->id, FRAG_HDR_SIZE + (uint64_t)d->stored_len };
	return 0;
}

static int cmp_sized(const void *a, const void *b)
{
	uint64_t x = ((const struct sized *)a)->id, y = ((const struct sized *)b)->id;
	return x < y ? -1 : x > y;
}

/* Step 2: the ids the copy in DEST references. */
static int copied_refs(struct snap *s, struct ids *out)
{
	struct store_opts o = { .rdonly = 1, .no_threads = 1, .cache_size = 1u << 20 };
	struct store *d;
	struct idx_txn *t;
	int rc = store_open(s->dest, &o, &d);

	if (rc)
		return rc;
	rc = idx_begin(store_idx(d), 1, &t);
	if (!rc) {
		rc = idx_frags_iter_all(t, ref_cb, out);
		idx_abort(t);
	}
	store_close(d);
	if (!rc)
		ids_sort(out);
	return rc;
}

static int fsync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Step 1: copy the index into DEST/index (replacing an earlier copy). */
static int copy_index(struct snap *s)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/index/data.mdb", s->dest);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	snprintf(path, sizeof(path), "%s/index/lock.mdb", s->dest);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	snprintf(path, sizeof(path), "%s/index", s->dest);
	return idx_copy(store_idx(s->st), path);
}

/* Step 4: drop what S does not reference; make DEST durable. */
static int finish(struct snap *s, const struct ids *refs)
{
	char path[4200];
	int rc = 0, fd;

	for (size_t i = 0; i < s->linked.n; i++) {
		if (ids_has(refs, s->linked.v[i]))
			continue;
		img_path(s->dest, s->linked.v[i], path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	snprintf(path, sizeof(path), "%s/index/data.mdb", s->dest);
	if (chmod(path, 0600) < 0)
		return -errno;
	/* one syncfs: the links, the folders and the linked images' bytes */
	fd = open(s->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syncfs(fd) < 0)
		rc = -errno;
	close(fd);
	if (!rc)
		rc = fsync_path(path, 0);
	return rc;
}

static int make_layout(struct snap *s)
{
	char path[4200];
	struct stat sb;
	DIR *d;
	struct dirent *e;

	if (mkdir(s->dest, 0700) == 0) {
		s->created = 1;
	} else if (errno != EEXIST) {
		return -errno;
	} else {
		if (stat(s->dest, &sb) < 0)
			return -errno;
		if (!S_ISDIR(sb.st_mode))
			return -ENOTDIR;
		if (!(d = opendir(s->dest)))
			return -errno;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				closedir(d);
				return -ENOTEMPTY;
			}
		closedir(d);
	}
	const char *subs[] = { "index", "fragments", "staging" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->dest, subs[i]);
		if (mkdir(path, 0700) < 0)
			return -errno;
	}
	for (unsigned x = 0; x < 256; x++) {
		snprintf(path, sizeof(path), "%s/fragments/%02x", s->dest, x);
		if (mkdir(path, 0700) < 0)
			return -errno;
	}
	return 0;
}

/* Remove what make_layout and the rounds made (after a failure). */
static void unmake(struct snap *s)
{
	static const char *const files[] = { "index/data.mdb", "index/lock.mdb" };
	char path[4200];

	for (size_t i = 0; i < s->linked.n; i++) {
		img_path(s->dest, s->linked.v[i], path, sizeof(path));
		unlink(path);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", s->dest, files[i]);
		unlink(path);
	}
	for (unsigned x = 0; x < 256; x++) {
		snprintf(path, sizeof(path), "%s/fragments/%02x", s->dest, x);
		rmdir(path);
	}
	const char *subs[] = { "fragments", "index", "staging" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->dest, subs[i]);
		rmdir(path);
	}
	if (s->created)
		rmdir(s->dest);
}

/* The rounds of steps 1-3. @return 0 with *REFS (the final state's ids),
 * -EAGAIN after SNAP_ROUNDS rounds that each missed an image, -errno. */
static int rounds(struct snap *s, struct ids *refs)
{
	int rc = 0;

	for (unsigned k = 1; k <= SNAP_ROUNDS; k++) {
		size_t missing = 0;

		s->rounds = k;
		free(refs->v);
		*refs = (struct ids){ 0 };
		if ((rc = copy_index(s)))
			return rc;
		if (s->hook)
			s->hook(s->hook_arg, 1);
		if ((rc = copied_refs(s, refs)))
			return rc;
		free(s->sorted.v);
		s->sorted = (struct ids){ 0 };
		for (size_t i = 0; i < s->linked.n; i++)
			if ((rc = ids_add(&s->sorted, s->linked.v[i])))
				return rc;
		ids_sort(&s->sorted);
		for (size_t i = 0; i < refs->n; i++) {
			if (ids_has(&s->sorted, refs->v[i]))
				continue;
			rc = put_image(s, refs->v[i]);
			if (rc == -ENOENT)
				missing++;
			else if (rc)
				return rc;
		}
		if (!missing)
			return 0;
	}
	return -EAGAIN;
}

/* ---- a RADOS source (R1-R4) ---- */

/* R2: the local index's copy, brought to the log's end, made local. */
static int rados_state(struct snap *s)
{
	char path[4200];
	struct idx *x;
	int rc = copy_index(s);

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/index", s->dest);
	if ((rc = idx_open(path, 0, 0, &x)) != 0)
		return rc;
	rc = store_log_catch_up(s->st, x, &s->pos);
	if (!rc)
		rc = store_index_make_local(x);
	idx_close(x);
	return rc;
}

/* The ids and image sizes the copy references (sorted, unique). */
static int rados_refs(struct snap *s, struct sizes *out)
{
	struct store_opts o = { .rdonly = 1, .no_threads = 1, .cache_size = 1u << 20 };
	struct store *d;
	struct idx_txn *t;
	size_t k = 0;
	int rc = store_open(s->dest, &o, &d);

	if (rc)
		return rc;
	rc = idx_begin(store_idx(d), 1, &t);
	if (!rc) {
		rc = idx_frags_iter_all(t, sized_cb, out);
		idx_abort(t);
	}
	store_close(d);
	if (rc || !out->n)
		return rc;
	qsort(out->v, out->n, sizeof(*out->v), cmp_sized);
	for (size_t i = 0; i < out->n; i++)
		if (!k || out->v[k - 1].id != out->v[i].id)
			out->v[k++] = out->v[i];
	out->n = k;
	return 0;
}

#define FETCH_BATCH 64                      /* images per get_many */
#define FETCH_BYTES ((uint64_t)64 << 20)    /* and at most this many bytes */

/* R3 for NEED[0..N): fetch and put the images DEST lacks. *MISSING counts
 * those that vanished. @return 0 or -errno. */
static int rados_fetch(struct snap *s, const struct sized *need, size_t n, size_t *missing)
{
	struct frag_get req[FETCH_BATCH];
	size_t i = 0;
	int rc = 0;

	while (i < n && !rc) {
		size_t m = 0;
		uint64_t bytes = 0;
		for (; i < n && m < FETCH_BATCH && (m == 0 || bytes + need[i].size <= FETCH_BYTES); i++) {
			if (ids_has(&s->sorted, need[i].id))
				continue;
			req[m] = (struct frag_get){ .id = need[i].id, .cap = (size_t)need[i].size };
			if (!(req[m].buf = malloc(req[m].cap ? req[m].cap : 1))) {
				rc = -ENOMEM;
				break;
			}
			bytes += need[i].size;
			m++;
		}
		if (!rc && m)
			rc = frag_get_many(store_backend(s->st, 0), req, m);
		for (size_t k = 0; k < m; k++) {
			if (!rc && req[k].err == -ENOENT) {
				(*missing)++;
			} else if (!rc && req[k].err) {
				rc = req[k].err;
			} else if (!rc) {
				int p = frag_put(s->dbe, req[k].id, req[k].buf, req[k].len);
				if (p == -EEXIST)
					p = 0;
				if (!p)
					p = ids_add(&s->linked, req[k].id);
				if (!p)
					s->bytes_copied += req[k].len;
				rc = p;
			}
			free(req[k].buf);
		}
	}
	return rc;
}

/* R1-R3 rounds. @return 0 with *REFS (the final state's ids), -EAGAIN, -errno. */
static int rados_rounds(struct snap *s, struct ids *refs)
{
	char path[4200];
	int rc;

	snprintf(path, sizeof(path), "%s/fragments", s->dest);
	if ((rc = backend_local_open(path, &s->dbe)) != 0)
		return rc;
	for (unsigned k = 1; k <= SNAP_ROUNDS; k++) {
		struct sizes need = { 0 };
		size_t missing = 0;
		uint64_t tail;

		s->rounds = k;
		free(refs->v);
		*refs = (struct ids){ 0 };
		rc = store_log_tail(s->st, &tail);
		if (!rc && s->hold && (rc = store_hold_set(s->hold, tail)) == -ESTALE) {
			store_hold_end(s->hold);        /* expired: a new one */
			s->hold = NULL;
			rc = 0;
		}
		if (!rc && !s->hold)
			rc = store_hold_start(s->st, tail, &s->hold);
		if (!rc)
			rc = rados_state(s);
		if (!rc && s->hook)
			s->hook(s->hook_arg, 1);
		if (!rc)
			rc = rados_refs(s, &need);
		free(s->sorted.v);
		s->sorted = (struct ids){ 0 };
		for (size_t i = 0; i < s->linked.n && !rc; i++)
			rc = ids_add(&s->sorted, s->linked.v[i]);
		ids_sort(&s->sorted);
		if (!rc)
			rc = rados_fetch(s, need.v, need.n, &missing);
		for (size_t i = 0; i < need.n && !rc; i++)
			rc = ids_add(refs, need.v[i].id);
		free(need.v);
		if (rc)
			return rc;
		ids_sort(refs);
		if (!missing)
			return 0;
	}
	return -EAGAIN;
}

/* Snapshot the open store ST (directory SRC) into DEST: the whole
 * protocol. Exposed to the unit tests through ctl_snapshot_run. @return
 * 0, or -errno (DEST removed again). */
static int snapshot(struct snap *s)
{
	struct ids refs = { 0 };
	int rc = make_layout(s);

	if (rc == -ENOTEMPTY || rc == -ENOTDIR)
		return rc;          /* nothing was made */
	if (rc) {
		unmake(s);
		return rc;
	}
	if (store_get_conf(s->st)->kind == STORE_RADOS) {
		s->rados = s->copy_mode = 1;
		rc = rados_rounds(s, &refs);
		store_hold_end(s->hold);        /* R4 */
		s->hold = NULL;
		if (!rc)
			rc = finish(s, &refs);
		frag_backend_destroy(s->dbe);
		s->dbe = NULL;
		if (rc)
			unmake(s);
		s->nimages = rc ? 0 : refs.n;
		free(refs.v);
		return rc;
	}
	/* link mode unless DEST is on another file system */
	{
		char a[4200], b[4200];
		struct stat sa, sb;
		snprintf(a, sizeof(a), "%s/fragments", s->src);
		snprintf(b, sizeof(b), "%s/fragments", s->dest);
		if (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev != sb.st_dev)
			s->copy_mode = 1;
	}
	if (!s->copy_mode)
		rc = prelink(s);
	if (!rc && s->hook)
		s->hook(s->hook_arg, 0);
	if (!rc)
		rc = rounds(s, &refs);
	if (!rc)
		rc = finish(s, &refs);
	if (rc)
		unmake(s);
	s->nimages = rc ? 0 : refs.n;
	free(refs.v);
	return rc;
}

int ctl_snapshot_run(struct store *st, const char *src, const char *dest,
		     void (*hook)(void *arg, int stage), void *arg, unsigned *rounds_out)
{
	struct snap s = { .src = src, .dest = dest, .st = st, .hook = hook, .hook_arg = arg };
	int rc = snapshot(&s);

	if (rounds_out)
		*rounds_out = s.rounds;
	free(s.linked.v);
	free(s.sorted.v);
	return rc;
}

int ctl_snapshot(int argc, char **argv)
{
	struct snap s = { 0 };
	int quiet = 0, n, rc;
	struct ctl_opt opts[] = { { 'q', "quiet", &quiet, NULL } };
	double t0 = ctl_now();

	rc = ctl_parse("snapshot", argc, argv, opts, 1, help, &n);
	if (rc >= 0)
		return rc;
	if (n != 3)
		return ctl_usage("snapshot", n < 2 ? "missing STORE" : n < 3 ? "missing DEST" :
				 "too many arguments");
	s.src = argv[1];
	s.dest = argv[2];
	if (ctl_open(s.src, &s.st))
		return CTL_FAIL;
	rc = snapshot(&s);
	store_close(s.st);
	if (rc == -ENOTEMPTY)
		ctl_err(s.dest, "directory is not empty (DEST must be new or empty)");
	else if (rc == -EAGAIN)
		ctl_err(s.dest, "the store changed faster than it could be copied (%d tries); "
			"try again", SNAP_ROUNDS);
	else if (rc)
		ctl_err(s.dest, "snapshot failed: %s", strerror(-rc));
	else if (!quiet && s.rados)
		printf("snapshot: %s -> %s: a local store of log position %" PRIu64 ", %zu fragment "
		       "image%s fetched from the cluster (%" PRIu64 " bytes; %u round%s) in %.2f s\n",
		       s.src, s.dest, s.pos, s.nimages, s.nimages == 1 ? "" : "s", s.bytes_copied, s.rounds,
		       s.rounds == 1 ? "" : "s", ctl_now() - t0);
	else if (!quiet)
		printf("snapshot: %s -> %s: index copied, %zu fragment image%s %s (%u round%s) "
		       "in %.2f s\n", s.src, s.dest, s.nimages, s.nimages == 1 ? "" : "s",
		       s.copy_mode ? "copied" : "linked", s.rounds, s.rounds == 1 ? "" : "s",
		       ctl_now() - t0);
	free(s.linked.v);
	free(s.sorted.v);
	if (ctl_flush_stdout())
		rc = -EIO;
	return rc ? CTL_FAIL : CTL_OK;
}
