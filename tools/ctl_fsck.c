/* ctl_fsck — `payloadctl fsck STORE`: the driver. One read txn copies the
 * index records fsck needs (inodes, dirents, fragment records, reference
 * counts, orphan marks, inline lengths); the checks then run on that
 * snapshot, and the fragment images are read after the txn ended so a
 * mount is never held up. Output: one line per problem (stdout), then
 * `fsck: N objects, N fragments checked: clean` or `...: N problems`.
 * Exit 0 clean, 1 damage found, 2 the check could not run. */
#include "tools/ctl_fsck.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
	"usage: payloadctl fsck [--repair] STORE\n"
	"\n"
	"Check STORE (also safe while it is mounted): every fragment image is read\n"
	"and its checksum verified; every reference count is recounted from the\n"
	"fragment records (of the live tree and of every snapshot); every directory entry must name an existing inode and\n"
	"every nlink must match the entries; fragment lists must be contiguous and\n"
	"cover the object's size and rows. One line per problem, naming the object\n"
	"(its path, else its id), the fragment and the byte range; images no record\n"
	"references are warnings (the daemon removes them when it mounts).\n"
	"\n"
	"--repair (the store must not be mounted: it takes the daemon's lock) then\n"
	"makes the store consistent, printing one 'repair:' line per change: an\n"
	"object with unreadable fragments or a list that does not cover its size\n"
	"keeps the fragments that verify, moved up to close the gaps, and moves to\n"
	"/lost+found/ID-NAME (xattrs user.fsck.path, user.fsck.lost say from where\n"
	"and what was lost); entries naming nothing go; lost inodes go to\n"
	"lost+found; nlink, reference counts and counters are recomputed;\n"
	"unlinked inodes and unreferenced images are freed. Healthy objects are not\n"
	"touched. A new check must then be clean. See payloadctl(1), REPAIR.\n"
	"\n"
	"exit status: 0 clean, 1 problems found (--repair: found and repaired),\n"
	"2 the check (or the repair) could not run or complete.\n";

/* ---- messages ---- */

static int cmp_ino(const void *a, const void *b)
{
	uint64_t x = ((const struct fk_ino *)a)->in.ino, y = ((const struct fk_ino *)b)->in.ino;
	return x < y ? -1 : x > y;
}

struct fk_ino *fk_find(struct fsck *f, uint64_t ino)
{
	struct fk_ino key;

	if (!f->ninos)
		return NULL;
	key.in.ino = ino;
	return bsearch(&key, f->inos, f->ninos, sizeof(*f->inos), cmp_ino);
}

const struct idx_snap *fk_snap(const struct fsck *f, uint64_t ino)
{
	size_t lo = 0, hi = f->nsnaps;

	while (lo < hi) {      /* the last snapshot whose first <= ino */
		size_t mid = lo + (hi - lo) / 2;
		if (f->snaps[mid].first <= ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct idx_snap *s = &f->snaps[lo - 1];
	return ino - s->first < s->count ? s : NULL;
}

int fk_is_root(const struct fsck *f, uint64_t ino)
{
	const struct idx_snap *s;

	return ino == IDX_ROOT_INO || ((s = fk_snap(f, ino)) && s->first == ino);
}

/* Append NAME to BUF at *N (CAP bytes) with control characters escaped as
 * ctl_put_name does; truncated at CAP. */
static void put_escaped(char *buf, size_t cap, size_t *n, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		char tmp[8];
		if (*p == '\n')
			strcpy(tmp, "\\n");
		else if (*p == '\t')
			strcpy(tmp, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			snprintf(tmp, sizeof(tmp), "\\%03o", *p);
		else
			tmp[0] = (char)*p, tmp[1] = '\0';
		for (const char *q = tmp; *q && *n + 1 < cap; q++)
			buf[(*n)++] = *q;
	}
	buf[*n] = '\0';
}

int fk_path(struct fsck *f, uint64_t ino, char *buf, size_t cap)
{
	const char *names[256];
	size_t n = 0, len = 0;
	struct fk_ino *r;

	const struct idx_snap *s = fk_snap(f, ino);

	for (uint64_t cur = ino; !fk_is_root(f, cur); cur = r->dparent) {
		r = fk_find(f, cur);
		if (!r || !r->dparent || !r->dname || n == sizeof(names) / sizeof(names[0]))
			return -1;
		names[n++] = r->dname;
	}
	buf[0] = '\0';
	if (s) {
		put_escaped(buf, cap, &len, "/.snapshots/");
		put_escaped(buf, cap, &len, s->name);
	} else if (!n) {
		put_escaped(buf, cap, &len, "/");
	}
	while (n--) {
		put_escaped(buf, cap, &len, "/");
		put_escaped(buf, cap, &len, names[n]);
	}
	return 0;
}

static void print_obj(struct fsck *f, uint64_t ino)
{
	char path[4096];

	if (!ino)
		return;
	if (fk_path(f, ino, path, sizeof(path)) == 0)
		printf("%s (id %" PRIu64 "): ", path, ino);
	else
		printf("id %" PRIu64 ": ", ino);
}

void fk_problem(struct fsck *f, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	f->problems++;
	if (f->quiet)
		return;
	print_obj(f, ino);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void fk_warn(struct fsck *f, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	f->warnings++;
	if (f->quiet)
		return;
	fputs("warning: ", stdout);
	print_obj(f, ino);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void fk_action(struct fsck *f, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	f->actions++;
	fputs("repair: ", stdout);
	print_obj(f, ino);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

uint64_t fk_frag_rows(const struct idx_inode *in, uint64_t off, uint32_t len, uint32_t nls, int nl_end,
		      int cont)
{
	if (in->fmt_kind == PFMT_FIXED) {
		uint64_t n = in->fmt_recsize, first;
		if (!n)
			return 0;
		first = off % n ? n - off % n : 0;
		return first < len ? 1 + (len - 1 - first) / n : 0;
	}
	if (!len)
		return 0;
	return (uint64_t)nls + !nl_end - (cont ? 1 : 0);
}

uint64_t fk_count_rows(const struct idx_inode *in, const char *buf, size_t len)
{
	uint64_t n = 0;

	if (in->fmt_kind == PFMT_FIXED)
		return in->fmt_recsize ? len / in->fmt_recsize : 0;
	for (const char *p = buf, *end = buf + len; p < end && (p = memchr(p, '\n', (size_t)(end - p))); p++)
		n++;
	if (len && buf[len - 1] != '\n')
		n++;
	return n;
}

/* ---- collecting the snapshot ---- */

void *fk_grow(void *v, size_t *cap, size_t n, size_t size)
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

static int inode_cb(void *arg, const struct idx_inode *in)
{
	struct fsck *f = arg;
	struct fk_ino *v = fk_grow(f->inos, &f->cap_inos, f->ninos, sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->inos = v;
	memset(&f->inos[f->ninos], 0, sizeof(f->inos[0]));
	f->inos[f->ninos++].in = *in;
	return 0;
}

struct dirent_ctx {
	struct fsck *f;
	uint64_t parent;
};

static int dirent_cb(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct dirent_ctx *c = arg;
	struct fsck *f = c->f;
	struct fk_dirent *e = fk_grow(f->dirents, &f->cap_dirents, f->ndirents, sizeof(*e));

	if (!e)
		return -ENOMEM;
	f->dirents = e;
	e += f->ndirents;
	memset(e, 0, sizeof(*e));
	if (!(e->name = strdup(name)))
		return -ENOMEM;
	e->parent = c->parent;
	e->child = child;
	e->type = type;
	f->ndirents++;
	return 0;
}

static int frag_cb(void *arg, uint64_t ino, const struct frag_desc *d)
{
	struct fsck *f = arg;
	struct fk_frag *v = fk_grow(f->frags, &f->cap_frags, f->nfrags, sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->frags = v;
	memset(&f->frags[f->nfrags], 0, sizeof(f->frags[0]));
	f->frags[f->nfrags].ino = ino;
	f->frags[f->nfrags].nflags = d->flags;
	f->frags[f->nfrags++].d = *d;
	return 0;
}

static int ref_cb(void *arg, uint64_t id, uint32_t count)
{
	struct fsck *f = arg;
	struct fk_ref *v = fk_grow(f->refs, &f->cap_refs, f->nrefs, sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->refs = v;
	f->refs[f->nrefs].id = id;
	f->refs[f->nrefs++].count = count;
	return 0;
}

static int snap_cb(void *arg, const struct idx_snap *s)
{
	struct fsck *f = arg;
	struct idx_snap *v = fk_grow(f->snaps, &f->cap_snaps, f->nsnaps, sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->snaps = v;
	f->snaps[f->nsnaps++] = *s;
	return 0;
}

static int orphan_cb(void *arg, uint64_t ino)
{
	struct fsck *f = arg;
	struct fk_ino *r = fk_find(f, ino);

	if (r)
		r->orphan = 1;
	else
		fk_warn(f, 0, "orphan record of inode %" PRIu64 ", which does not exist", ino);
	return 0;
}

/* Per inode: its dirents (for every inode, so entries under a
 * non-directory are seen too) and its inline record. */
static int per_inode(struct fsck *f, struct idx_txn *t)
{
	for (size_t i = 0; i < f->ninos; i++) {
		struct fk_ino *r = &f->inos[i];
		struct dirent_ctx c = { f, r->in.ino };
		const void *data;
		size_t len;
		int rc = idx_dirent_iter(t, r->in.ino, NULL, dirent_cb, &c);

		if (rc)
			return rc;
		rc = idx_inline_get(t, r->in.ino, &data, &len);
		if (rc == -ENOENT)
			continue;
		if (rc)
			return rc;
		r->inl_present = 1;
		r->inl_len = len;
		r->inl_rows = fk_count_rows(&r->in, data, len);
	}
	return 0;
}

int fk_collect(struct fsck *f)
{
	struct idx_txn *t;
	int rc = idx_begin(store_idx(f->st), 1, &t);

	if (rc)
		return rc;
	rc = idx_inodes_iter(t, inode_cb, f);
	if (!rc && f->ninos)
		qsort(f->inos, f->ninos, sizeof(*f->inos), cmp_ino);   /* already in key order */
	if (!rc)
		rc = idx_orphans_iter(t, orphan_cb, f);
	if (!rc)
		rc = per_inode(f, t);
	if (!rc)
		rc = idx_frags_iter_all(t, frag_cb, f);
	if (!rc)
		rc = idx_refs_iter(t, ref_cb, f);
	if (!rc)
		rc = idx_meta_get_u64(t, "next_ino", &f->next_ino);
	if (!rc)
		rc = idx_meta_get_u64(t, "next_frag", &f->next_frag);
	if (!rc)
		rc = idx_snaps_iter(t, snap_cb, f);
	idx_abort(t);
	return rc;
}

void fk_free(struct fsck *f)
{
	for (size_t i = 0; i < f->ndirents; i++)
		free(f->dirents[i].name);
	for (size_t i = 0; i < f->nfrags; i++)
		free(f->frags[i].why);
	for (size_t i = 0; i < f->ninos; i++) {
		free(f->inos[i].dropped);
		free(f->inos[i].origin);
	}
	free(f->dirents);
	free(f->inos);
	free(f->frags);
	free(f->byid);
	free(f->refs);
	free(f->snaps);
	free(f->bad_rowidx);
	f->bad_rowidx = NULL;
	f->nbad_rowidx = f->cap_bad_rowidx = 0;
	f->snaps = NULL;
	f->nsnaps = f->cap_snaps = 0;
	f->dirents = NULL, f->inos = NULL, f->frags = NULL, f->byid = NULL, f->refs = NULL;
	f->ndirents = f->ninos = f->nfrags = f->nrefs = 0;
	f->cap_dirents = f->cap_inos = f->cap_frags = f->cap_refs = 0;
}

int fk_check_all(struct fsck *f)
{
	int rc;

	fk_check_namespace(f);
	fk_check_lists(f);
	rc = fk_check_refs(f);
	if (!rc)
		rc = fk_check_images(f);
	if (!rc)
		fk_check_rows_span(f);
	if (!rc)
		rc = fk_check_unreferenced(f);
	if (!rc)
		rc = fk_check_rowidx_orphans(f);
	return rc;
}

static void summary(const struct fsck *f)
{
	if (f->skipped_memory)
		printf("note: %" PRIu64 " fragment(s) of storage=memory objects not read "
		       "(their data lives in the mounted daemon)\n", f->skipped_memory);
	printf("fsck: %" PRIu64 " object%s, %" PRIu64 " fragment%s checked: ", f->objects,
	       f->objects == 1 ? "" : "s", f->checked, f->checked == 1 ? "" : "s");
	if (f->problems)
		printf("%lu problem%s\n", f->problems, f->problems == 1 ? "" : "s");
	else
		printf("clean\n");
}

/* Open DIR read-write with the daemon's exclusive lock, for --repair.
 * @return 0, or -errno (printed). */
static int open_for_repair(const char *dir, struct store **st)
{
	struct store_opts o = { .cache_size = CTL_CACHE, .lock_note = ctl_lock_note };
	int rc = store_open(dir, &o, st);

	if (rc == -EBUSY)
		ctl_err(dir, "the store is in use (mounted by payloadfs, or another payloadctl "
			"holds it): unmount it first; --repair needs the store to itself");
	else if (rc)
		ctl_err(dir, "%s", store_strerror(rc));
	return rc;
}

/* --repair after the check F: plan, fix, check again. @return the exit
 * status. */
static int repair(struct fsck *f, const char *dir)
{
	struct fsck g = { .st = f->st, .dir = f->dir, .quiet = 1 };
	const struct store_conf *conf = store_get_conf(f->st);
	int rc;

	if (conf->kind == STORE_RADOS && conf->role == STORE_FOLLOWER) {
		ctl_err(dir, "--repair: %s: a follower's index is a copy of the writer's: repair the "
			"writer's store (its repair reaches the followers through the log)", strerror(EROFS));
		return CTL_USAGE;
	}
	rc = fk_plan(f);

	if (!rc)
		rc = fk_fix(f);
	if (rc) {
		ctl_err(dir, "repair failed: %s", rc == -EUCLEAN ? "damage it cannot repair (above)" :
			strerror(-rc));
		return CTL_USAGE;
	}
	rc = fk_collect(&g);
	if (!rc)
		rc = fk_check_all(&g);
	if (rc) {
		ctl_err(dir, "cannot check the repaired store: %s", strerror(-rc));
		fk_free(&g);
		return CTL_USAGE;
	}
	if (g.problems) {
		printf("fsck: after the repair %lu problem%s remain%s:\n", g.problems,
		       g.problems == 1 ? "" : "s", g.problems == 1 ? "s" : "");
		fk_free(&g);
		g = (struct fsck){ .st = f->st, .dir = f->dir };
		if (!fk_collect(&g))
			fk_check_all(&g);
		fk_free(&g);
		return CTL_USAGE;
	}
	fk_free(&g);
	if (f->problems)
		printf("fsck: repaired (%lu change%s); a new check is clean\n", f->actions,
		       f->actions == 1 ? "" : "s");
	else if (f->actions)
		printf("fsck: no damage; %lu leftover%s tidied\n", f->actions, f->actions == 1 ? "" : "s");
	return f->problems ? CTL_FAIL : CTL_OK;
}

int ctl_fsck(int argc, char **argv)
{
	struct fsck f = { 0 };
	const char *dir;
	int flags[1] = { 0 }, n, do_repair = 0, status = CTL_USAGE, rc;

	/* --repair is the one long option: take it out before ctl_getopt */
	for (int i = 1, j = 1; i <= argc; i++) {
		if (i == argc || strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[j++] = argv[i++];
			argv[argc = j] = NULL;
			break;
		}
		if (strcmp(argv[i], "--repair") == 0)
			do_repair = 1;
		else
			argv[j++] = argv[i];
	}
	rc = ctl_getopt("fsck", argc, argv, "", flags, help, &n);
	if (rc >= 0)
		return rc;
	if (n != 2)
		return ctl_usage("fsck", n < 2 ? "missing STORE" : "too many arguments");
	dir = f.dir = argv[1];
	if (do_repair ? open_for_repair(dir, &f.st) : ctl_open(dir, &f.st))
		return CTL_USAGE;
	rc = fk_collect(&f);
	if (rc) {
		ctl_err(dir, "cannot read the index: %s", strerror(-rc));
		goto out;
	}
	rc = fk_check_all(&f);
	if (rc) {
		ctl_err(dir, "cannot check the fragments: %s", strerror(-rc));
		goto out;
	}
	summary(&f);
	status = do_repair ? repair(&f, dir) : f.problems ? CTL_FAIL : CTL_OK;
out:
	fk_free(&f);
	store_close(f.st);
	if (fflush(stdout) != 0) {
		ctl_err("stdout", "%s", strerror(errno));
		status = CTL_USAGE;
	}
	return status;
}
