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
	"usage: payloadctl fsck STORE\n"
	"\n"
	"Check STORE (also safe while it is mounted): every fragment image is read\n"
	"and its checksum verified; every reference count is recounted from the\n"
	"fragment records; every directory entry must name an existing inode and\n"
	"every nlink must match the entries; fragment lists must be contiguous and\n"
	"cover the object's size and rows. One line per problem, naming the object\n"
	"(its path, else its id), the fragment and the byte range; images no record\n"
	"references are warnings (the daemon removes them when it mounts).\n"
	"\n"
	"exit status: 0 clean, 1 problems found, 2 the check could not run.\n";

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

/* Print the path of INO (from its first dirent up to the root), escaped.
 * @return 0, or -1 when INO is in no directory reachable that way. */
static int print_path(struct fsck *f, uint64_t ino)
{
	const char *names[256];
	size_t n = 0;
	struct fk_ino *r;

	for (uint64_t cur = ino; cur != IDX_ROOT_INO; cur = r->dparent) {
		r = fk_find(f, cur);
		if (!r || !r->dparent || !r->dname || n == sizeof(names) / sizeof(names[0]))
			return -1;
		names[n++] = r->dname;
	}
	if (!n)
		fputc('/', stdout);
	while (n--) {
		fputc('/', stdout);
		ctl_put_name(stdout, names[n]);
	}
	return 0;
}

static void print_obj(struct fsck *f, uint64_t ino)
{
	if (!ino)
		return;
	if (print_path(f, ino) == 0)
		printf(" (id %" PRIu64 "): ", ino);
	else
		printf("id %" PRIu64 ": ", ino);
}

void fk_problem(struct fsck *f, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	print_obj(f, ino);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	f->problems++;
}

void fk_warn(struct fsck *f, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	fputs("warning: ", stdout);
	print_obj(f, ino);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	f->warnings++;
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

/* Make room for one more element in V (N used, *CAP allocated).
 * @return V or its reallocation; NULL when out of memory (V unchanged). */
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

static int inode_cb(void *arg, const struct idx_inode *in)
{
	struct fsck *f = arg;
	struct fk_ino *v = grow(f->inos, &f->cap_inos, f->ninos, sizeof(*v));

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
	struct fk_dirent *e = grow(f->dirents, &f->cap_dirents, f->ndirents, sizeof(*e));

	if (!e)
		return -ENOMEM;
	f->dirents = e;
	e += f->ndirents;
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
	struct fk_frag *v = grow(f->frags, &f->cap_frags, f->nfrags, sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->frags = v;
	f->frags[f->nfrags].ino = ino;
	f->frags[f->nfrags++].d = *d;
	return 0;
}

static int ref_cb(void *arg, uint64_t id, uint32_t count)
{
	struct fsck *f = arg;
	struct fk_ref *v = grow(f->refs, &f->cap_refs, f->nrefs, sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->refs = v;
	f->refs[f->nrefs].id = id;
	f->refs[f->nrefs++].count = count;
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

static int collect(struct fsck *f)
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
	idx_abort(t);
	return rc;
}

static void fsck_free(struct fsck *f)
{
	for (size_t i = 0; i < f->ndirents; i++)
		free(f->dirents[i].name);
	free(f->dirents);
	free(f->inos);
	free(f->frags);
	free(f->byid);
	free(f->refs);
}

int ctl_fsck(int argc, char **argv)
{
	struct fsck f = { 0 };
	const char *dir;
	int flags[1], n, status = CTL_USAGE, rc = ctl_getopt("fsck", argc, argv, "", flags, help, &n);

	if (rc >= 0)
		return rc;
	if (n != 2)
		return ctl_usage("fsck", n < 2 ? "missing STORE" : "too many arguments");
	dir = argv[1];
	if (ctl_open(dir, &f.st))
		return CTL_USAGE;
	rc = collect(&f);
	if (rc) {
		ctl_err(dir, "cannot read the index: %s", strerror(-rc));
		goto out;
	}
	fk_check_namespace(&f);
	fk_check_lists(&f);
	rc = fk_check_refs(&f);
	if (!rc)
		rc = fk_check_images(&f);
	if (!rc)
		rc = fk_check_unreferenced(&f);
	if (rc) {
		ctl_err(dir, "cannot check the fragments: %s", strerror(-rc));
		goto out;
	}
	if (f.skipped_memory)
		printf("note: %" PRIu64 " fragment(s) of storage=memory objects not read "
		       "(their data lives in the mounted daemon)\n", f.skipped_memory);
	printf("fsck: %" PRIu64 " object%s, %" PRIu64 " fragment%s checked: ", f.objects,
	       f.objects == 1 ? "" : "s", f.checked, f.checked == 1 ? "" : "s");
	if (f.problems)
		printf("%lu problem%s\n", f.problems, f.problems == 1 ? "" : "s");
	else
		printf("clean\n");
	status = f.problems ? CTL_FAIL : CTL_OK;
out:
	fsck_free(&f);
	store_close(f.st);
	if (fflush(stdout) != 0) {
		ctl_err("stdout", "%s", strerror(errno));
		status = CTL_USAGE;
	}
	return status;
}
