/* ctl_gc — `payloadctl gc [--dry-run] STORE`: remove what the daemon's
 * sweep at mount would remove, on an unmounted store, and say how much it
 * freed: staging files left by writers that died, unlinked inodes still
 * held (orphans) and the images only they referenced, the data records of
 * storage=memory objects whose daemon died, and fragment images that no
 * index record references (interrupted commits, pre-cut fragments of
 * sessions that never committed, images whose deletion a crash cut short).
 *
 * Invariants:
 *  (1) The store is held with the daemon's exclusive lock (a dry run: a
 *      shared one, so no writer runs either), so no commit can start to
 *      reference an image while gc looks.
 *  (2) An image is deleted by gc itself only when it is absent from the
 *      refs db in a read txn begun after gc's last write txn and after the
 *      store_sync that made that state durable: never a referenced image,
 *      and never one that the durable state (what a power loss leaves)
 *      references.
 *  (3) Orphans and memory objects are freed through the store API
 *      (store_forget, store_truncate), which releases their images as the
 *      daemon does; gc then flushes the index (store_sync) so the deferred
 *      deletions happen before it returns.
 *  (4) A RADOS store (docs/rados.md): the images are listed, sized and
 *      deleted through the backend (the cluster). gc of a writer store
 *      holds its lease (opened read-write: its commits go through the
 *      log), and deletes images no record names only while no follower
 *      record holds any image back (store_unref_delete_ok): a live
 *      follower may still read an image released after its horizon. What
 *      it must keep it says, and leaves for a later gc or sweep. A
 *      follower store has no garbage of its own: gc refuses it (EROFS).
 * Image sizes come from the backend (a request of cap 0), for the report
 * only. */
#include "tools/ctl.h"
#include "cache/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help[] =
	"usage: payloadctl gc [-n|--dry-run] [-v|--verbose] STORE\n"
	"\n"
	"Remove the garbage of STORE, which must not be mounted: fragment images\n"
	"no index record references, staging files, unlinked inodes nothing holds\n"
	"any more (and the images only they referenced), and the data records of\n"
	"storage=memory objects whose daemon stopped -- what payloadfs sweeps when\n"
	"it mounts the store. A referenced image is never deleted. The last line\n"
	"says what was freed:\n"
	"  gc: freed N bytes (..): N fragment images, N staging files, N unlinked\n"
	"  inodes, N storage=memory objects\n"
	"\n"
	"  -n, --dry-run   list what would be removed (one line each), change nothing\n"
	"  -v, --verbose   list what is removed\n"
	"\n"
	"exit status: 0 done (or nothing to do); 1 something could not be removed\n"
	"or the store could not be opened; 2 usage error, or the store is in use.\n";

enum { WHY_UNREF = 0, WHY_INODE = 1 };

struct gimg {
	uint64_t id;
	uint64_t bytes;      /* size of the image file (0 when it vanished) */
	uint64_t owner;      /* WHY_INODE: the inode it goes with */
	int why;
	int gone;            /* deleted (counted) */
};

struct idcount {
	uint64_t id;
	uint32_t count;
};

struct gc {
	struct store *st;
	const char *dir;
	int dry, verbose;
	struct idcount *refs;        /* sorted by id (the refs db's key order) */
	size_t nrefs, caprefs;
	uint64_t *orph, *mem;        /* orphan inodes; memory objects with data */
	size_t norph, capo, nmem, capm;
	struct gimg *imgs;
	size_t nimgs, capi;
	uint64_t staging, staging_bytes;
	uint64_t freed_bytes, freed_images;
	uint64_t kept_images;        /* unreferenced, kept for a follower */
	char kept_why[512];
	int errors;
};

/* Make room for one more element (see fsck's grow). */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 256;
	v = realloc(v, ncap * size);
	if (v)
		*cap = ncap;
	return v;
}

static int ref_cb(void *arg, uint64_t id, uint32_t count)
{
	struct gc *g = arg;
	struct idcount *v = grow(g->refs, &g->caprefs, g->nrefs, sizeof(*v));

	if (!v)
		return -ENOMEM;
	g->refs = v;
	v[g->nrefs++] = (struct idcount){ id, count };
	return 0;
}

static int cmp_idcount(const void *a, const void *b)
{
	uint64_t x = ((const struct idcount *)a)->id, y = ((const struct idcount *)b)->id;
	return x < y ? -1 : x > y;
}

static struct idcount *find_ref(struct gc *g, uint64_t id)
{
	struct idcount key = { id, 0 };

	return g->nrefs ? bsearch(&key, g->refs, g->nrefs, sizeof(key), cmp_idcount) : NULL;
}

static int add_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	uint64_t *nv = grow(*v, cap, *n, sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[(*n)++] = x;
	return 0;
}

static int orphan_cb(void *arg, uint64_t ino)
{
	struct gc *g = arg;

	return add_u64(&g->orph, &g->norph, &g->capo, ino);
}

static int is_orphan(const struct gc *g, uint64_t ino)
{
	for (size_t i = 0; i < g->norph; i++)
		if (g->orph[i] == ino)
			return 1;
	return 0;
}

static int memobj_cb(void *arg, const struct idx_inode *in)
{
	struct gc *g = arg;

	if ((in->flags & INODE_F_MEMORY) && in->size && !is_orphan(g, in->ino))
		return add_u64(&g->mem, &g->nmem, &g->capm, in->ino);
	return 0;
}

/* Ask the backend for the size of images V[0..N) (cap 0 requests, in
 * batches): v[i].bytes, and v[i].gone when an image does not exist.
 * @return 0 or -errno (the backend could not be asked). */
static int image_sizes(struct gc *g, struct gimg *v, size_t n)
{
	struct frag_get req[256];
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i += 256) {
		size_t m = n - i < 256 ? n - i : 256;
		memset(req, 0, sizeof(req));
		for (size_t k = 0; k < m; k++)
			req[k].id = v[i + k].id;
		rc = frag_get_many(store_backend(g->st, 0), req, m);
		for (size_t k = 0; k < m && !rc; k++) {
			if (req[k].err && req[k].err != -ENOENT)
				rc = req[k].err;
			v[i + k].gone = req[k].err == -ENOENT;
			v[i + k].bytes = req[k].err ? 0 : req[k].len;
		}
	}
	return rc;
}

static int add_image(struct gc *g, uint64_t id, int why, uint64_t owner)
{
	struct gimg *v = grow(g->imgs, &g->capi, g->nimgs, sizeof(*v));

	if (!v)
		return -ENOMEM;
	g->imgs = v;
	v += g->nimgs++;
	*v = (struct gimg){ .id = id, .why = why, .owner = owner };
	return 0;
}

/* The disk images that freeing inode INO releases: those whose every
 * reference is one of its records (counts in g->refs are used up). */
static int inode_images(struct gc *g, struct idx_txn *t, uint64_t ino)
{
	struct frag_desc *v;
	uint32_t n;
	int rc = idx_frags_load(t, ino, &v, &n);

	for (uint32_t i = 0; i < n && !rc; i++) {
		struct idcount *r = find_ref(g, v[i].id);
		if ((v[i].flags & FRAG_F_MEMORY) || !r || !r->count)
			continue;
		if (--r->count == 0)
			rc = add_image(g, v[i].id, WHY_INODE, ino);
	}
	free(v);
	return rc;
}

static int unref_cb(void *arg, uint64_t id)
{
	struct gc *g = arg;

	return find_ref(g, id) ? 0 : add_image(g, id, WHY_UNREF, 0);
}

/* The plan: one read txn for the index, then the image files. */
static int plan(struct gc *g)
{
	struct idx_txn *t;
	int rc = idx_begin(store_idx(g->st), 1, &t);

	if (rc)
		return rc;
	rc = idx_refs_iter(t, ref_cb, g);
	if (!rc && g->nrefs)
		qsort(g->refs, g->nrefs, sizeof(*g->refs), cmp_idcount);   /* already in key order */
	if (!rc)
		rc = idx_orphans_iter(t, orphan_cb, g);
	if (!rc)
		rc = idx_inodes_iter(t, memobj_cb, g);
	for (size_t i = 0; i < g->norph && !rc; i++)
		rc = inode_images(g, t, g->orph[i]);
	idx_abort(t);
	/* images no record names; an image released above has count 0 now
	 * but is in refs: it is not listed twice */
	if (!rc)
		rc = frag_list(store_backend(g->st, 0), unref_cb, g);
	if (!rc)
		rc = image_sizes(g, g->imgs, g->nimgs);
	for (size_t i = 0; i < g->nimgs; i++)
		g->imgs[i].gone = 0;         /* "gone" means deleted by us from here on */
	return rc;
}

/* ---- staging ---- */

static int staging(struct gc *g)
{
	char path[4200];
	struct dirent *e;
	struct stat sb;
	DIR *d;

	snprintf(path, sizeof(path), "%s/staging", g->dir);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')        /* as the sweep: dot files stay */
			continue;
		if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(sb.st_mode))
			continue;
		if (g->dry || g->verbose)
			printf("%s: staging/%s (%" PRIu64 " bytes)\n", g->dry ? "would delete" : "delete",
			       e->d_name, (uint64_t)sb.st_size);
		if (!g->dry && unlinkat(dirfd(d), e->d_name, 0) < 0) {
			ctl_err(path, "cannot delete %s: %s", e->d_name, strerror(errno));
			g->errors++;
			continue;
		}
		g->staging++;
		g->staging_bytes += (uint64_t)sb.st_size;
	}
	closedir(d);
	return 0;
}

/* ---- doing it ---- */

static void list_plan(struct gc *g)
{
	const char *verb = g->dry ? "would " : "";

	for (size_t i = 0; i < g->norph; i++)
		printf("%sfree: unlinked inode %" PRIu64 "\n", verb, g->orph[i]);
	for (size_t i = 0; i < g->nmem; i++)
		printf("%sempty: storage=memory object %" PRIu64 " (its data died with its daemon)\n",
		       verb, g->mem[i]);
	for (size_t i = 0; i < g->nimgs; i++) {
		const struct gimg *m = &g->imgs[i];
		char where[200];
		frag_where(store_backend(g->st, 0), m->id, where, sizeof(where));
		printf("%sdelete: image %s (%" PRIu64 " bytes, ", verb, where, m->bytes);
		if (m->why == WHY_UNREF)
			printf("no index record references it)\n");
		else
			printf("only unlinked inode %" PRIu64 " references it)\n", m->owner);
	}
}

/* Free the inodes, flush, then delete what no record references. */
static int collect(struct gc *g)
{
	struct frag_backend *be = store_backend(g->st, 0);
	struct gc now = { .st = g->st, .dir = g->dir };
	struct idx_txn *t;
	int rc = 0, ok;

	for (size_t i = 0; i < g->norph; i++)
		if ((rc = store_forget(g->st, g->orph[i]))) {
			ctl_err(g->dir, "cannot free unlinked inode %" PRIu64 ": %s", g->orph[i], strerror(-rc));
			g->errors++;
		}
	for (size_t i = 0; i < g->nmem; i++)
		if ((rc = store_truncate(g->st, g->mem[i], NULL, 0))) {
			ctl_err(g->dir, "cannot empty storage=memory object %" PRIu64 ": %s", g->mem[i],
				strerror(-rc));
			g->errors++;
		}
	/* (3): the deferred deletions of what was just released */
	if ((rc = store_sync(g->st))) {
		ctl_err(g->dir, "cannot flush the index: %s", strerror(-rc));
		return rc;
	}
	/* (2): a fresh read of the refs, after every write and the flush */
	if ((rc = idx_begin(store_idx(g->st), 1, &t)))
		return rc;
	rc = idx_refs_iter(t, ref_cb, &now);
	idx_abort(t);
	if (!rc)
		rc = frag_list(be, unref_cb, &now);
	/* (4): not while a follower may still read one of them */
	ok = rc || !now.nimgs ? 1 : store_unref_delete_ok(g->st, g->kept_why, sizeof(g->kept_why));
	if (ok < 0) {
		ctl_err(g->dir, "cannot read the followers' records: %s", strerror(-ok));
		rc = ok;
	}
	for (size_t i = 0; i < now.nimgs && !rc && ok == 1; i++) {
		int drc = frag_del(be, now.imgs[i].id);
		if (drc && drc != -ENOENT) {
			ctl_err(g->dir, "cannot delete image %016" PRIx64 ": %s", now.imgs[i].id,
				strerror(-drc));
			g->errors++;
		}
	}
	/* what is gone now, of the plan */
	if (!rc && g->nimgs) {
		struct gimg *v = malloc(g->nimgs * sizeof(*v));
		if (!v)
			rc = -ENOMEM;
		if (v)
			memcpy(v, g->imgs, g->nimgs * sizeof(*v));
		if (!rc && (rc = image_sizes(g, v, g->nimgs)) != 0)
			ctl_err(g->dir, "cannot look at the images: %s", strerror(-rc));
		for (size_t i = 0; i < g->nimgs && !rc; i++) {
			if (!v[i].gone && ok == 0) {
				g->kept_images++;     /* (4): left for a later gc */
				continue;
			}
			if (!v[i].gone) {
				ctl_err(g->dir, "image %016" PRIx64 " is still there", g->imgs[i].id);
				g->errors++;
				continue;
			}
			g->imgs[i].gone = 1;
			g->freed_images++;
			g->freed_bytes += g->imgs[i].bytes;
		}
		free(v);
	}
	free(now.refs);
	free(now.imgs);
	return rc;
}

static void summary(const struct gc *g)
{
	uint64_t bytes = g->staging_bytes + (g->dry ? 0 : g->freed_bytes), images = g->freed_images;
	char b[32];

	if (g->dry && !g->kept_images) {
		for (size_t i = 0; i < g->nimgs; i++)
			bytes += g->imgs[i].bytes;
		images = g->nimgs;
	}
	if (!images && !g->staging && !g->norph && !g->nmem && !g->kept_images) {
		printf("gc: nothing to collect\n");
		return;
	}
	ctl_fmt_bytes(bytes, b, sizeof(b));
	if (g->kept_images)
		printf("gc: %s %" PRIu64 " unreferenced fragment image%s: %s; run gc again later\n",
		       g->dry ? "would keep" : "kept", g->kept_images, g->kept_images == 1 ? "" : "s",
		       g->kept_why);
	printf("gc: %s %" PRIu64 " bytes (%s): %" PRIu64 " fragment image%s, %" PRIu64
	       " staging file%s, %zu unlinked inode%s, %zu storage=memory object%s%s\n",
	       g->dry ? "would free" : "freed", bytes, b, images, images == 1 ? "" : "s",
	       g->staging, g->staging == 1 ? "" : "s", g->norph, g->norph == 1 ? "" : "s",
	       g->nmem, g->nmem == 1 ? "" : "s", g->dry ? " (dry run: nothing changed)" : "");
}

/* Is DIR a RADOS follower store? (A quick read-only open, no lock.) */
static int is_follower(const char *dir)
{
	struct store_opts o = { .cache_size = 1u << 20, .rdonly = 1, .no_threads = 1 };
	struct store *st;
	int f;

	if (store_open(dir, &o, &st))
		return 0;            /* the real open says why */
	f = store_get_conf(st)->kind == STORE_RADOS && store_get_conf(st)->role == STORE_FOLLOWER;
	store_close(st);
	return f;
}

int ctl_gc(int argc, char **argv)
{
	struct gc g = { 0 };
	int n, rc, status = CTL_FAIL;
	struct ctl_opt opts[] = {
		{ 'n', "dry-run", &g.dry, NULL },
		{ 'v', "verbose", &g.verbose, NULL },
	};
	struct store_opts ro = { .cache_size = CTL_CACHE, .rdonly = 1, .lock_shared = 1 };

	rc = ctl_parse("gc", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), help, &n);
	if (rc >= 0)
		return rc;
	if (n != 2)
		return ctl_usage("gc", n < 2 ? "missing STORE" : "too many arguments");
	g.dir = argv[1];
	if (is_follower(g.dir)) {      /* (4), whether mounted or not */
		ctl_err(g.dir, "gc: %s: a follower store has no garbage of its own: its images are the "
			"writer's, which deletes them (run gc on the writer's store)", strerror(EROFS));
		return CTL_FAIL;
	}
	/* a dry run takes a shared lock: a writer cannot be running either */
	if ((rc = ctl_open_rw(g.dir, "gc", g.dry ? &ro : NULL, &g.st)))
		return ctl_open_status(rc);
	rc = plan(&g);
	if (rc) {
		ctl_err(g.dir, "cannot read the index: %s", strerror(-rc));
		goto out;
	}
	if (g.dry && g.nimgs) {       /* (4): would the images go now? */
		rc = store_unref_delete_ok(g.st, g.kept_why, sizeof(g.kept_why));
		if (rc < 0) {
			ctl_err(g.dir, "cannot read the followers' records: %s", strerror(-rc));
			goto out;
		}
		if (rc == 0)
			g.kept_images = g.nimgs;
	}
	if (g.dry || g.verbose)
		list_plan(&g);
	if ((rc = staging(&g))) {
		ctl_err(g.dir, "cannot read staging/: %s", strerror(-rc));
		g.errors++;
	}
	if (!g.dry && collect(&g))
		g.errors++;
	summary(&g);
	status = g.errors ? CTL_FAIL : CTL_OK;
out:
	free(g.refs);
	free(g.orph);
	free(g.mem);
	free(g.imgs);
	store_close(g.st);
	if (ctl_flush_stdout())
		status = CTL_FAIL;
	return status;
}
