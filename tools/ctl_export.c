/* ctl_export — `payloadctl export STORE PATH... DEST`: copy objects,
 * views and directory trees of a store out to the local file system, the
 * reverse of import. The store is opened read-only (no lock: safe while it
 * is mounted, with the limits of any reader beside a writer); each object
 * is streamed CTL_CHUNK bytes at a time from one pinned version, with
 * read-ahead on the store's worker pool decoding the next fragments while
 * the previous ones are written.
 *
 * What is written: directories, regular files, symbolic links, fifos and
 * device nodes, with permission bits, mtimes and atimes (ns), hard links
 * (an object met again under another name is linked), and owners when run
 * as root. A view (PATH@rows=A:B, @part=K/N, @meta) is written as a
 * regular file holding the view's bytes.
 *
 * Failures: an entry that cannot be read (a damaged fragment: EIO; a
 * storage=memory object of a mounted store) or made (it exists) is
 * reported, its partial file removed, and the export goes on (exit 1); a
 * failure of the destination file system (ENOSPC, EIO, EROFS, EDQUOT)
 * stops it. */
#include "tools/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char help[] =
	"usage: payloadctl export [OPTIONS] STORE PATH[@VIEW]... DEST\n"
	"\n"
	"Copy the objects and directories PATH... of STORE (also while it is\n"
	"mounted) to DEST on the local file system. Like cp -a: when DEST is an\n"
	"existing directory each PATH goes into it under its own name (the store's\n"
	"root / puts its contents there); otherwise DEST is the name of the one\n"
	"PATH's copy. A view PATH@rows=A:B, PATH@part=K/N or PATH@meta is written\n"
	"as a file holding the view's bytes (named NAME@rows=A:B, NAME@part=K_N,\n"
	"NAME@meta inside a directory). Permissions, mtimes, symbolic links and\n"
	"hard links are kept; owners only when run as root.\n"
	"\n"
	"options:\n"
	"  -f, --force   replace existing files (never directories)\n"
	"  -q, --quiet   no progress line and no summary\n"
	"\n"
	"A progress line is drawn on stderr when it is a terminal; the summary is\n"
	"one line on stdout. Exit status: 0 all exported; 1 something could not\n"
	"be exported (each named on stderr); 2 usage error.\n";

struct hl_ent {
	uint64_t ino;       /* 0: empty */
	char *path;
};

struct exp {
	struct store *st;
	struct ctl_progress prog;
	int force;
	uid_t euid;
	struct hl_ent *hl;
	size_t hl_cap, hl_used;
	struct ctl_tally tally;   /* what was written; errors: entries left out */
	int fatal;
	char *buf;
};

/* ---- hard links: store inode -> the path it was first written to ---- */

static size_t hl_slot(const struct exp *ex, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 17) & (ex->hl_cap - 1);
}

static const char *hl_find(const struct exp *ex, uint64_t ino)
{
	if (!ex->hl_cap)
		return NULL;
	for (size_t i = hl_slot(ex, ino);; i = (i + 1) & (ex->hl_cap - 1)) {
		if (!ex->hl[i].ino)
			return NULL;
		if (ex->hl[i].ino == ino)
			return ex->hl[i].path;
	}
}

/* @return 0 or -ENOMEM (PATH is taken over either way). */
static int hl_add(struct exp *ex, uint64_t ino, char *path)
{
	size_t i;

	if ((ex->hl_used + 1) * 2 > ex->hl_cap) {
		size_t ocap = ex->hl_cap, ncap = ocap ? ocap * 2 : 256;
		struct hl_ent *old = ex->hl, *nv = calloc(ncap, sizeof(*nv));
		if (!nv) {
			free(path);
			return -ENOMEM;
		}
		ex->hl = nv;
		ex->hl_cap = ncap;
		for (size_t k = 0; k < ocap; k++) {
			if (!old[k].ino)
				continue;
			for (i = hl_slot(ex, old[k].ino); nv[i].ino; i = (i + 1) & (ncap - 1))
				;
			nv[i] = old[k];
		}
		free(old);
	}
	for (i = hl_slot(ex, ino); ex->hl[i].ino; i = (i + 1) & (ex->hl_cap - 1))
		;
	ex->hl[i] = (struct hl_ent){ ino, path };
	ex->hl_used++;
	return 0;
}

/* ---- reporting ---- */

/* Errors of the destination that stop the export. */
static int dest_fatal(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS || err == ENOMEM;
}

static void dest_failed(struct exp *ex, const char *path, const char *what, int err)
{
	ctl_progress_clear(&ex->prog);
	ctl_err(path, "%s: %s", what, strerror(err));
	ex->tally.errors++;
	if (dest_fatal(err))
		ex->fatal = err;
}

static const char *store_why(int rc)
{
	switch (rc) {
	case -EIO: return "Input/output error (a damaged or missing fragment; see payloadctl fsck)";
	case -EREMOTE: return "storage=memory object: its data lives only in the mounted daemon's memory";
	default: return ctl_strerror(rc);
	}
}

static void store_failed(struct exp *ex, const char *what, int rc)
{
	ctl_progress_clear(&ex->prog);
	ctl_err(what, "%s", store_why(rc));
	ex->tally.errors++;
	if (rc == -ENOMEM)
		ex->fatal = ENOMEM;
}

/* ---- attributes ---- */

static void to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000;
		ts->tv_sec--;
	}
}

/* Owner (root only), permissions and times of IN on PATH (FD when >= 0).
 * @return 0 or errno. */
static int put_attrs(struct exp *ex, const char *path, int fd, const struct idx_inode *in)
{
	struct timespec ts[2];
	int lnk = S_ISLNK(in->mode);

	to_ts(in->atime_ns, &ts[0]);
	to_ts(in->mtime_ns, &ts[1]);
	if (ex->euid == 0 && (fd >= 0 ? fchown(fd, in->uid, in->gid) :
			      lchown(path, in->uid, in->gid)) < 0)
		return errno;
	if (!lnk && (fd >= 0 ? fchmod(fd, in->mode & 07777) : chmod(path, in->mode & 07777)) < 0)
		return errno;
	if ((fd >= 0 ? futimens(fd, ts) : utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		return errno;
	return 0;
}

/* ---- objects ---- */

/* Make PATH free for a new non-directory: with --force an existing one is
 * removed. @return 0 or errno (EEXIST without --force, EISDIR). */
static int make_room(struct exp *ex, const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : errno;
	if (S_ISDIR(sb.st_mode))
		return EISDIR;
	if (!ex->force)
		return EEXIST;
	return unlink(path) < 0 ? errno : 0;
}

/* Write [0, SIZE) of the object PV (VM NULL) or of its view VM to FD.
 * @return 0; a store -errno (-EIO...); or a positive errno of the write. */
static int stream(struct exp *ex, struct pver *pv, const struct view_map *vm, uint64_t size, int fd)
{
	struct readahead ra = { 0 };
	uint64_t off = 0;

	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (off < size) {
		size_t want = size - off < CTL_CHUNK ? (size_t)(size - off) : CTL_CHUNK;
		ssize_t n;
		int rc;

		if (!vm)
			pver_readahead(pv, &ra, off, want, size);
		n = vm ? view_read(pv, vm, ex->buf, want, off) : pver_read(pv, ex->buf, want, off);
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;   /* 0: shorter than its size */
		rc = ctl_write_all(fd, ex->buf, (size_t)n);
		if (rc)
			return -rc;
		off += (uint64_t)n;
		ctl_progress_add(&ex->prog, (uint64_t)n, 0);
	}
	return 0;
}

/* Write the bytes of object INO (or of its view SPEC, VIEW_NONE: the
 * object) to a new file PATH with the object's attributes. WHAT names the
 * source in messages. Reported; @return 0 or -1. */
static int export_object(struct exp *ex, uint64_t ino, const struct view_spec *spec,
			 const char *what, const char *path)
{
	struct view_map vm;
	struct pver *pv;
	const struct idx_inode *in;
	char *json = NULL;
	size_t jlen = 0;
	uint64_t size;
	int fd, rc, err;

	if ((err = make_room(ex, path))) {
		dest_failed(ex, path, "cannot create", err);
		return -1;
	}
	if ((rc = store_pver_get(ex->st, ino, &pv))) {
		store_failed(ex, what, rc);
		return -1;
	}
	in = pver_inode(pv);
	size = in->size;
	if ((in->flags & INODE_F_MEMORY) && in->size && !(in->flags & INODE_F_INLINE))
		rc = -EREMOTE;
	else if (spec->kind == VIEW_META)
		rc = view_meta_json(pv, &json, &jlen);
	else if (spec->kind == VIEW_ROWS || spec->kind == VIEW_PART)
		rc = view_resolve(pv, spec, &vm);
	if (rc) {
		store_failed(ex, what, rc);
		pver_put(pv);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		dest_failed(ex, path, "cannot create", errno);
		free(json);
		pver_put(pv);
		return -1;
	}
	if (json)
		rc = -ctl_write_all(fd, json, jlen);
	else
		rc = stream(ex, pv, spec->kind == VIEW_NONE ? NULL : &vm,
			    spec->kind == VIEW_NONE ? size : view_size(&vm), fd);
	if (rc < 0)
		store_failed(ex, what, rc);
	else if (rc > 0)
		dest_failed(ex, path, "cannot write", rc);
	else if ((err = put_attrs(ex, path, fd, in)))
		dest_failed(ex, path, "cannot set its attributes", (rc = err));
	if (close(fd) < 0 && !rc)
		dest_failed(ex, path, "cannot write", (rc = errno));
	if (rc)
		unlink(path);
	free(json);
	pver_put(pv);
	return rc ? -1 : 0;
}

static void export_file(struct exp *ex, const struct idx_inode *in, const char *what,
			const char *path)
{
	static const struct view_spec whole = { .kind = VIEW_NONE };
	const char *first = in->nlink > 1 ? hl_find(ex, in->ino) : NULL;
	char *copy;
	int err;

	if (first) {
		if ((err = make_room(ex, path)) || (link(first, path) < 0 && (err = errno)))
			dest_failed(ex, path, "cannot link", err);
		else
			ex->tally.hardlinks++;
		ctl_progress_add(&ex->prog, 0, 1);
		return;
	}
	if (export_object(ex, in->ino, &whole, what, path) == 0) {
		ex->tally.files++;
		if (in->nlink > 1 && (!(copy = strdup(path)) || hl_add(ex, in->ino, copy)))
			store_failed(ex, what, -ENOMEM);
	}
	ctl_progress_add(&ex->prog, 0, 1);
}

/* PATH (a symbolic link or a special file) was made for IN: set its
 * attributes and count it in COUNT (a failure is reported). */
static void created(struct exp *ex, const char *path, const struct idx_inode *in, uint64_t *count)
{
	int err = put_attrs(ex, path, -1, in);

	if (err)
		dest_failed(ex, path, "cannot set its attributes", err);
	else
		(*count)++;
}

static void export_symlink(struct exp *ex, const struct idx_inode *in, const char *what,
			   const char *path)
{
	char target[4096];
	ssize_t n = store_readlink(ex->st, in->ino, target, sizeof(target));
	int err;

	if (n < 0) {
		store_failed(ex, what, (int)n);
		return;
	}
	if ((err = make_room(ex, path)) || (symlink(target, path) < 0 && (err = errno)))
		dest_failed(ex, path, "cannot create", err);
	else
		created(ex, path, in, &ex->tally.symlinks);
}

static void export_special(struct exp *ex, const struct idx_inode *in, const char *path)
{
	int err;

	if ((err = make_room(ex, path)) ||
	    (mknod(path, (in->mode & S_IFMT) | 0600, (dev_t)in->rdev) < 0 && (err = errno)))
		dest_failed(ex, path, "cannot create", err);
	else
		created(ex, path, in, &ex->tally.others);
}

/* ---- directories ---- */

struct child {
	char *name;
	uint64_t ino;
};

struct children {
	struct child *v;
	size_t n, cap;
};

static int collect(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct children *c = arg;

	(void)type;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct child *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	if (!(c->v[c->n].name = strdup(name)))
		return -ENOMEM;
	c->v[c->n++].ino = child;
	return 0;
}

static void export_entry(struct exp *ex, const struct idx_inode *in, const char *what,
			 const char *path);

/* Export the entries of store directory INO (WHAT) into directory PATH. */
static void export_children(struct exp *ex, uint64_t ino, const char *what, const char *path)
{
	struct children c = { 0 };
	int rc = store_readdir(ex->st, ino, NULL, collect, &c);

	if (rc)
		store_failed(ex, what, rc);
	for (size_t i = 0; i < c.n; i++) {
		struct idx_inode in;
		char *w = ctl_join(what, c.v[i].name), *p = ctl_join(path, c.v[i].name);
		if (!w || !p)
			store_failed(ex, what, -ENOMEM);
		else if (!ex->fatal && (rc = store_getattr(ex->st, c.v[i].ino, &in)))
			store_failed(ex, w, rc);
		else if (!ex->fatal)
			export_entry(ex, &in, w, p);
		free(w);
		free(p);
		free(c.v[i].name);
	}
	free(c.v);
}

static void export_dir(struct exp *ex, const struct idx_inode *in, const char *what,
		       const char *path)
{
	struct stat sb;
	int err;

	if (mkdir(path, 0700) < 0) {
		err = errno;
		/* merge into an existing directory, as cp -r does */
		if (err != EEXIST || lstat(path, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
			dest_failed(ex, path, "cannot create", err);
			return;
		}
	} else {
		ex->tally.dirs++;
	}
	export_children(ex, in->ino, what, path);
	if (ex->fatal)
		return;
	if ((err = put_attrs(ex, path, -1, in)))   /* after its entries changed its mtime */
		dest_failed(ex, path, "cannot set its attributes", err);
}

static void export_entry(struct exp *ex, const struct idx_inode *in, const char *what,
			 const char *path)
{
	if (S_ISDIR(in->mode))
		export_dir(ex, in, what, path);
	else if (S_ISREG(in->mode))
		export_file(ex, in, what, path);
	else if (S_ISLNK(in->mode))
		export_symlink(ex, in, what, path);
	else
		export_special(ex, in, path);
}

/* ---- the command ---- */

static uint64_t tree_bytes(struct store *st, uint64_t ino, uint64_t *files, int depth)
{
	struct children c = { 0 };
	struct idx_inode in;
	uint64_t sum = 0;

	if (store_getattr(st, ino, &in))
		return 0;
	if (S_ISREG(in.mode)) {
		(*files)++;
		return in.size;
	}
	if (!S_ISDIR(in.mode) || depth > 256)
		return 0;
	store_readdir(st, ino, NULL, collect, &c);
	for (size_t i = 0; i < c.n; i++) {
		sum += tree_bytes(st, c.v[i].ino, files, depth + 1);
		free(c.v[i].name);
	}
	free(c.v);
	return sum;
}

/* The name PATH (base length BLEN of its object path) gets inside a
 * directory, into NAME: the last component, with the view suffix ('/'
 * written '_'); "" for the root (its contents go into the directory). */
static void dest_name(const char *path, size_t blen, char *name, size_t cap)
{
	size_t e = blen, s, n = 0;

	while (e > 0 && path[e - 1] == '/')
		e--;
	for (s = e; s > 0 && path[s - 1] != '/'; s--)
		;
	if (e == s || (e - s == 1 && path[s] == '.') || (e - s == 2 && path[s] == '.' && path[s + 1] == '.')) {
		name[0] = '\0';
		return;
	}
	for (size_t i = s; i < e && n + 1 < cap; i++)
		name[n++] = path[i];
	for (const char *p = path + blen; *p && n + 1 < cap; p++)
		name[n++] = *p == '/' ? '_' : *p;
	name[n] = '\0';
}

/* Export one PATH operand into DEST (DEST_IS_DIR: into it under its own
 * name; else as DEST). */
static void export_one(struct exp *ex, const char *path, const char *dest, int dest_is_dir)
{
	struct view_spec spec;
	struct idx_inode in;
	char name[2 * IDX_NAME_MAX + 2], *base, *target = NULL;
	size_t blen;
	int isview = view_parse(path, &blen, &spec), rc;

	if (isview < 0) {
		ctl_err(path, "bad view (NAME@rows=A:B, NAME@part=K/N or NAME@meta)");
		ex->tally.errors++;
		return;
	}
	if (!(base = strndup(path, blen))) {
		store_failed(ex, path, -ENOMEM);
		return;
	}
	rc = ctl_resolve(ex->st, base, isview, &in);
	if (!rc && isview && !S_ISREG(in.mode))
		rc = -ENOENT;   /* as on the mount: only objects have views */
	if (!rc && spec.kind == VIEW_PARTDIR)
		rc = -EISDIR;
	if (rc) {
		store_failed(ex, path, rc);
		goto out;
	}
	dest_name(path, blen, name, sizeof(name));
	if (!dest_is_dir)
		target = strdup(dest);
	else if (name[0])
		target = ctl_join(dest, name);
	if (dest_is_dir && !name[0]) {
		if (!S_ISDIR(in.mode))
			store_failed(ex, path, -ENOTDIR);
		else
			export_children(ex, in.ino, base[0] ? base : "/", dest);   /* "/", "." */
	} else if (!target) {
		store_failed(ex, path, -ENOMEM);
	} else if (isview) {
		if (export_object(ex, in.ino, &spec, path, target) == 0)
			ex->tally.files++;
		ctl_progress_add(&ex->prog, 0, 1);
	} else {
		export_entry(ex, &in, path, target);
	}
out:
	free(target);
	free(base);
}

int ctl_export(int argc, char **argv)
{
	struct exp ex = { .euid = geteuid() };
	int quiet = 0, n, rc, status = CTL_OK, dest_is_dir;
	struct ctl_opt opts[] = {
		{ 'f', "force", &ex.force, NULL },
		{ 'q', "quiet", &quiet, NULL },
	};
	const char *dest;
	struct stat sb;
	double t0;

	rc = ctl_parse("export", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), help, &n);
	if (rc >= 0)
		return rc;
	if (n < 4)
		return ctl_usage("export", n < 2 ? "missing STORE" : n < 3 ? "missing PATH" :
				 "missing DEST");
	dest = argv[n - 1];
	dest_is_dir = stat(dest, &sb) == 0 && S_ISDIR(sb.st_mode);
	if (!dest_is_dir && n > 4) {
		ctl_err(dest, "no such directory (several paths need an existing directory)");
		return CTL_FAIL;
	}
	if (ctl_open(argv[1], &ex.st))
		return CTL_FAIL;
	if (!(ex.buf = malloc(CTL_CHUNK))) {
		ctl_err("export", "%s", strerror(ENOMEM));
		status = CTL_FAIL;
		goto out;
	}
	ctl_progress_start(&ex.prog, !quiet && isatty(STDERR_FILENO));
	if (ex.prog.on) {
		for (int i = 2; i < n - 1; i++) {
			struct idx_inode in;
			if (!strchr(argv[i], '@') && ctl_resolve(ex.st, argv[i], 0, &in) == 0)
				ex.prog.total_bytes += tree_bytes(ex.st, in.ino, &ex.prog.total_files, 0);
		}
	}
	t0 = ctl_now();
	for (int i = 2; i < n - 1 && !ex.fatal; i++)
		export_one(&ex, argv[i], dest, dest_is_dir);
	ctl_progress_clear(&ex.prog);
	if (!quiet)
		ctl_tally_print("export", &ex.tally, ex.prog.bytes, ctl_now() - t0);
	status = ex.tally.errors ? CTL_FAIL : CTL_OK;
out:
	for (size_t i = 0; i < ex.hl_cap; i++)
		free(ex.hl[i].path);
	free(ex.hl);
	free(ex.buf);
	store_close(ex.st);
	if (ctl_flush_stdout())
		status = CTL_FAIL;
	return status;
}
