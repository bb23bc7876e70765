/* ctl_import — `payloadctl import STORE SRC... DEST`: bulk-load files and
 * directories of the local file system into an unmounted store, through
 * the store API the daemon uses (no FUSE in between): each regular file is
 * one write session written sequentially, so its fragments are cut while it
 * is read, compressed in parallel on the store's worker pool and put as the
 * daemon's streaming ingest does, then committed in one index transaction.
 *
 * What is kept: the tree (directories, regular files, symbolic links,
 * fifos and device nodes), permission bits, mtimes and atimes (ns), hard
 * links (a file met again through another name is linked, not copied), and
 * the owner when run as root (else the caller owns everything, as cp).
 * Payload settings follow the daemon's rules (inherited from the parent;
 * *.csv / *.tsv get one header row) unless --format / --header say
 * otherwise for every imported file.
 *
 * Failures: a source that cannot be read (or an entry that cannot be made:
 * it exists, a name reserved for views) is reported, the entry is left out
 * and the import goes on (exit 1 at the end). A failure of the store
 * (ENOSPC, EIO, ENOMEM...) stops the import: the file being imported is
 * removed again (its commit kept nothing), everything imported before it
 * stays. */
#include "tools/ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help[] =
	"usage: payloadctl import [OPTIONS] STORE SRC... DEST\n"
	"\n"
	"Copy the files and directories SRC... of the local file system into the\n"
	"store at path DEST, without mounting it (the store must not be mounted; an\n"
	"empty directory becomes a new store).\n"
	"Like cp -a: when DEST is an existing directory each SRC goes into it under\n"
	"its own name (a SRC ending in /. or named . puts its contents there);\n"
	"otherwise DEST is the name of the one SRC's copy. Directories, regular\n"
	"files, symbolic links, fifos and devices are copied with their\n"
	"permissions, mtimes and hard links; owners only when run as root.\n"
	"\n"
	"options:\n"
	"  -f, --force            replace the data of an existing object (a new\n"
	"                         version of it) instead of failing with EEXIST\n"
	"  --format=lines|fixed:N set the payload format of every imported file\n"
	"  --header=N             set the header rows of every imported file (lines)\n"
	"  --fragment-size=BYTES  target fragment size (K/M suffixes; default 1M)\n"
	"  -q, --quiet            no progress line and no summary\n"
	"\n"
	"A progress line is drawn on stderr when it is a terminal; the summary is\n"
	"one line on stdout. Exit status: 0 all imported; 1 something could not\n"
	"be imported (each named on stderr); 2 usage error or the store is in use.\n";

/* (dev, ino) of a source file with several links -> its store inode. */
struct hl_slot {
	dev_t dev;
	ino_t ino;
	uint64_t sino;      /* 0: empty */
};

struct imp {
	struct store *st;
	struct ctl_progress prog;
	int force;
	const char *format, *header;
	uint64_t recsize;    /* --format=fixed:N: N */
	uid_t euid;
	struct hl_slot *hl;
	size_t hl_cap, hl_used;
	struct ctl_tally tally;   /* what was made; errors: entries left out (reported) */
	dev_t store_dev;     /* the store directory itself: never imported */
	ino_t store_ino;
	int fatal;           /* a store failure: stop */
	char *buf;           /* CTL_CHUNK bytes */
};

/* ---- hard links ---- */

static size_t hl_hash(const struct imp *im, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 32)) * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 17) & (im->hl_cap - 1);
}

static uint64_t hl_find(const struct imp *im, dev_t dev, ino_t ino)
{
	if (!im->hl_cap)
		return 0;
	for (size_t i = hl_hash(im, dev, ino);; i = (i + 1) & (im->hl_cap - 1)) {
		if (!im->hl[i].sino)
			return 0;
		if (im->hl[i].dev == dev && im->hl[i].ino == ino)
			return im->hl[i].sino;
	}
}

/* Remember (DEV, INO) -> SINO. @return 0 or -ENOMEM. */
static int hl_add(struct imp *im, dev_t dev, ino_t ino, uint64_t sino)
{
	size_t i;

	if ((im->hl_used + 1) * 2 > im->hl_cap) {
		struct imp old = *im;
		im->hl_cap = old.hl_cap ? old.hl_cap * 2 : 256;
		if (!(im->hl = calloc(im->hl_cap, sizeof(*im->hl)))) {
			im->hl = old.hl;
			im->hl_cap = old.hl_cap;
			return -ENOMEM;
		}
		im->hl_used = 0;
		for (size_t k = 0; k < old.hl_cap; k++)
			if (old.hl[k].sino)
				hl_add(im, old.hl[k].dev, old.hl[k].ino, old.hl[k].sino);
		free(old.hl);
	}
	for (i = hl_hash(im, dev, ino); im->hl[i].sino; i = (i + 1) & (im->hl_cap - 1))
		;
	im->hl[i] = (struct hl_slot){ dev, ino, sino };
	im->hl_used++;
	return 0;
}

/* ---- reporting ---- */

/* Errors of the store that concern one entry only; any other stops. */
static int entry_error(int rc)
{
	return rc == -EEXIST || rc == -EINVAL || rc == -ENAMETOOLONG || rc == -ENOTDIR ||
	       rc == -EISDIR || rc == -EPERM || rc == -EMLINK;
}

/* Report a failure of the store for SRC; a fatal one stops the import. */
static void store_failed(struct imp *im, const char *src, const char *what, int rc)
{
	ctl_progress_clear(&im->prog);
	if (rc == -EINVAL && strcmp(what, "cannot create") == 0)
		ctl_err(src, "%s: invalid name (a name of the form NAME@rows=..., @part=... or "
			"@meta is reserved for views)", what);
	else
		ctl_err(src, "%s: %s", what, strerror(-rc));
	im->tally.errors++;
	if (!entry_error(rc))
		im->fatal = rc;
}

static void source_failed(struct imp *im, const char *src, const char *what, int err)
{
	ctl_progress_clear(&im->prog);
	ctl_err(src, "%s: %s", what, strerror(err));
	im->tally.errors++;
}

/* ---- entries ---- */

static uint32_t owner_uid(const struct imp *im, const struct stat *sb)
{
	return im->euid == 0 ? sb->st_uid : im->euid;
}

static uint32_t owner_gid(const struct imp *im, const struct stat *sb)
{
	return im->euid == 0 ? sb->st_gid : getegid();
}

/* Set INO's times (and with MODE its permissions and owner) from SB. */
static int set_attrs(struct imp *im, uint64_t ino, const struct stat *sb, int mode)
{
	struct idx_inode a = { 0 };
	unsigned mask = STORE_SET_ATIME | STORE_SET_MTIME;

	a.atime_ns = (int64_t)sb->st_atim.tv_sec * 1000000000 + sb->st_atim.tv_nsec;
	a.mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	if (mode) {
		a.mode = sb->st_mode & 07777;
		a.uid = owner_uid(im, sb);
		a.gid = owner_gid(im, sb);
		mask |= STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID;
	}
	return store_setattr(im->st, ino, &a, mask, NULL);
}

/* The --format / --header settings on the new object INO. */
static int apply_settings(struct imp *im, uint64_t ino)
{
	int rc = 0;

	if (im->format)
		rc = store_setxattr(im->st, ino, "user.payload.format", im->format,
				    strlen(im->format), 0);
	if (!rc && im->header)
		rc = store_setxattr(im->st, ino, "user.payload.header", im->header,
				    strlen(im->header), 0);
	return rc;
}

/* Stream FD into object INO as its whole new content and commit.
 * @return 0; a store -errno; or 1 after a read error of the source
 *   (reported as SRC). */
static int copy_data(struct imp *im, uint64_t ino, int fd, const char *src)
{
	struct pver *pv;
	struct wsess *ws;
	uint64_t off = 0;
	int rc = store_pver_get(im->st, ino, &pv);

	if (rc)
		return rc;
	rc = store_wsess_begin(im->st, pv, NULL, 1, &ws);
	pver_put(pv);
	if (rc)
		return rc;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n = read(fd, im->buf, CTL_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			source_failed(im, src, "cannot read", errno);
			rc = 1;
			break;
		}
		if (n == 0)
			break;
		rc = wsess_write(ws, im->buf, (size_t)n, off);
		if (rc)
			break;
		off += (uint64_t)n;
		ctl_progress_add(&im->prog, (uint64_t)n, 0);
	}
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}

static void import_file(struct imp *im, uint64_t parent, const char *name, const char *src,
			const struct stat *sb)
{
	struct idx_inode in;
	uint64_t first = sb->st_nlink > 1 ? hl_find(im, sb->st_dev, sb->st_ino) : 0;
	int fd, rc, created = 0;

	if (first) {
		rc = store_link(im->st, first, parent, name, NULL);
		if (rc)
			store_failed(im, src, "cannot link", rc);
		else
			im->tally.hardlinks++;
		ctl_progress_add(&im->prog, 0, 1);
		return;
	}
	if (im->recsize && sb->st_size % im->recsize) {
		/* refused before anything is made or emptied (the commit would be EINVAL) */
		ctl_progress_clear(&im->prog);
		ctl_err(src, "cannot import: %s (a fixed:N object's size must be a multiple of N)",
			strerror(EINVAL));
		im->tally.errors++;
		return;
	}
	fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		source_failed(im, src, "cannot open", errno);
		return;
	}
	rc = store_mknod(im->st, parent, name, S_IFREG | (sb->st_mode & 07777), 0,
			 owner_uid(im, sb), owner_gid(im, sb), &in);
	if (rc == -EEXIST && im->force) {
		rc = store_lookup(im->st, parent, name, &in);
		if (!rc && !S_ISREG(in.mode))
			rc = -EEXIST;
	} else if (!rc) {
		created = 1;
	}
	if (rc) {
		store_failed(im, src, "cannot create", rc);
		goto out;
	}
	/* an object being replaced is emptied first, so that new settings do
	 * not re-cut (or refuse) its old bytes; a store failure after this
	 * leaves it empty */
	if (!created && (im->format || im->header))
		rc = store_truncate(im->st, in.ino, NULL, 0);
	if (!rc)
		rc = apply_settings(im, in.ino);
	if (!rc)
		rc = copy_data(im, in.ino, fd, src);
	if (!rc)
		rc = set_attrs(im, in.ino, sb, !created);
	if (rc == -EINVAL) {
		ctl_progress_clear(&im->prog);
		ctl_err(src, "cannot import: %s (a fixed:N object's size must be a multiple of N)",
			strerror(EINVAL));
		im->tally.errors++;
	} else if (rc < 0) {
		store_failed(im, src, "cannot import", rc);
	}
	if (rc && created) {
		int urc = store_unlink(im->st, parent, name);
		if (urc && !im->fatal)
			store_failed(im, src, "cannot remove the partial object", urc);
	}
	if (!rc && sb->st_nlink > 1 && hl_add(im, sb->st_dev, sb->st_ino, in.ino))
		store_failed(im, src, "cannot remember its hard links", -ENOMEM);
	if (!rc)
		im->tally.files++;
	ctl_progress_add(&im->prog, 0, 1);
out:
	close(fd);
}

/* The end of making a symbolic link or a special file IN for SRC: RC is
 * the creation's result (IN is set only when 0); then its times are set
 * and COUNT counted (a failure of either is reported). */
static void created(struct imp *im, const char *src, int rc, const struct idx_inode *in,
		    const struct stat *sb, uint64_t *count)
{
	if (rc) {
		store_failed(im, src, "cannot create", rc);
		return;
	}
	rc = set_attrs(im, in->ino, sb, 0);
	if (rc)
		store_failed(im, src, "cannot set its times", rc);
	else
		(*count)++;
}

static void import_symlink(struct imp *im, uint64_t parent, const char *name, const char *src,
			   const struct stat *sb)
{
	char target[4096];
	struct idx_inode in;
	ssize_t n = readlink(src, target, sizeof(target) - 1);
	int rc;

	if (n < 0) {
		source_failed(im, src, "cannot read the link", errno);
		return;
	}
	target[n] = '\0';
	rc = store_symlink(im->st, parent, name, target, owner_uid(im, sb), owner_gid(im, sb), &in);
	created(im, src, rc, &in, sb, &im->tally.symlinks);
}

static void import_special(struct imp *im, uint64_t parent, const char *name, const char *src,
			   const struct stat *sb)
{
	struct idx_inode in;
	int rc = store_mknod(im->st, parent, name, sb->st_mode, sb->st_rdev, owner_uid(im, sb),
			     owner_gid(im, sb), &in);

	created(im, src, rc, &in, sb, &im->tally.others);
}

static void import_entry(struct imp *im, uint64_t parent, const char *name, const char *src);

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory SRC, sorted (so ids follow name order).
 * @return 0 with *NAMES (malloc'd, each malloc'd) and *N, or -errno. */
static int list_dir(const char *src, char ***names, size_t *n)
{
	DIR *d = opendir(src);
	struct dirent *e;
	char **v = NULL;
	size_t cap = 0;
	int rc = 0;

	*names = NULL;
	*n = 0;
	if (!d)
		return -errno;
	errno = 0;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (*n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		if (!(v[*n] = strdup(e->d_name))) {
			rc = -ENOMEM;
			break;
		}
		(*n)++;
		errno = 0;
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_str);
	*names = v;
	return rc;
}

/* Import the entries of source directory SRC into store directory DINO. */
static void import_children(struct imp *im, uint64_t dino, const char *src)
{
	char **names;
	size_t n;
	int rc = list_dir(src, &names, &n);

	if (rc)
		source_failed(im, src, "cannot read the directory", -rc);
	for (size_t i = 0; i < n; i++) {
		char *p = ctl_join(src, names[i]);
		if (!p) {
			store_failed(im, src, "cannot import", -ENOMEM);
		} else if (!im->fatal) {
			import_entry(im, dino, names[i], p);
		}
		free(p);
		free(names[i]);
	}
	free(names);
}

static void import_dir(struct imp *im, uint64_t parent, const char *name, const char *src,
		       const struct stat *sb)
{
	struct idx_inode in;
	int rc;

	if (sb->st_dev == im->store_dev && sb->st_ino == im->store_ino) {
		ctl_progress_clear(&im->prog);
		ctl_err(src, "skipped: it is the store being imported into");
		im->tally.errors++;
		return;
	}
	rc = store_mkdir(im->st, parent, name, sb->st_mode & 07777, owner_uid(im, sb),
			 owner_gid(im, sb), &in);

	if (rc == -EEXIST) {
		/* merge into an existing directory, as cp -r does */
		rc = store_lookup(im->st, parent, name, &in);
		if (!rc && !S_ISDIR(in.mode))
			rc = -EEXIST;
	} else if (!rc) {
		im->tally.dirs++;
	}
	if (rc) {
		store_failed(im, src, "cannot create", rc);
		return;
	}
	import_children(im, in.ino, src);
	if (im->fatal)
		return;
	rc = set_attrs(im, in.ino, sb, 1);   /* after its entries changed its mtime */
	if (rc)
		store_failed(im, src, "cannot set its attributes", rc);
}

static void import_entry(struct imp *im, uint64_t parent, const char *name, const char *src)
{
	struct stat sb;

	if (lstat(src, &sb) < 0) {
		source_failed(im, src, "cannot stat", errno);
		return;
	}
	if (S_ISDIR(sb.st_mode))
		import_dir(im, parent, name, src, &sb);
	else if (S_ISREG(sb.st_mode))
		import_file(im, parent, name, src, &sb);
	else if (S_ISLNK(sb.st_mode))
		import_symlink(im, parent, name, src, &sb);
	else
		import_special(im, parent, name, src, &sb);
}

/* ---- totals for the progress line ---- */

static void scan(struct ctl_progress *p, const char *src, int depth)
{
	struct stat sb;
	char **names;
	size_t n;

	if (lstat(src, &sb) < 0)
		return;
	if (S_ISREG(sb.st_mode)) {
		p->total_bytes += (uint64_t)sb.st_size;
		p->total_files++;
		return;
	}
	if (!S_ISDIR(sb.st_mode) || depth > 256 || list_dir(src, &names, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		char *c = ctl_join(src, names[i]);
		if (c)
			scan(p, c, depth + 1);
		free(c);
		free(names[i]);
	}
	free(names);
}

/* ---- the command ---- */

/* The name SRC gets in a directory: its last component; "" when its
 * contents go into the directory itself ("/", ".", "..", "x/."). */
static const char *src_name(char *src)
{
	size_t len = strlen(src);
	char *s;

	while (len > 1 && src[len - 1] == '/')
		src[--len] = '\0';
	s = strrchr(src, '/');
	s = s ? s + 1 : src;
	if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return "";
	return s;
}

static int check_settings(const char *format, const char *header)
{
	uint64_t v;

	if (format && strcmp(format, "lines") != 0 &&
	    (strncmp(format, "fixed:", 6) != 0 || ctl_parse_size(format + 6, 1u << 24, 0, &v) ||
	     format[strlen(format) - 1] < '0' || format[strlen(format) - 1] > '9'))
		return ctl_usage("import", "bad --format '%s' (lines or fixed:N, N from 1 to %u)",
				 format, 1u << 24);
	if (header && (ctl_parse_size(header, 1000000, 1, &v) ||
		       header[strlen(header) - 1] < '0' || header[strlen(header) - 1] > '9'))
		return ctl_usage("import", "bad --header '%s' (0 to 1000000)", header);
	if (header && format && strcmp(format, "lines") != 0)
		return ctl_usage("import", "--header applies to the lines format only");
	return -1;
}

/* Where the sources go: *DIR the store directory, *NAME the name of the one
 * source's copy ("" when each keeps its own name). @return 0, or the exit
 * status after a reported error. */
static int find_dest(struct imp *im, const char *dest, int nsrc, uint64_t *dir, char *name)
{
	struct idx_inode in;
	char *copy, *slash;
	int rc = ctl_resolve(im->st, dest, 1, &in);

	name[0] = '\0';
	if (!rc && S_ISDIR(in.mode)) {
		*dir = in.ino;
		return 0;
	}
	if (!rc && !im->force) {
		ctl_err(dest, "%s", nsrc > 1 ? "not a directory" : strerror(EEXIST));
		return CTL_FAIL;
	}
	if (rc && rc != -ENOENT) {
		ctl_err(dest, "%s", ctl_strerror(rc));
		return CTL_FAIL;
	}
	if (nsrc > 1) {
		ctl_err(dest, "no such directory (several sources need an existing directory)");
		return CTL_FAIL;
	}
	/* DEST names the copy: its parent must be a directory */
	if (!(copy = strdup(dest)))
		return CTL_FAIL;
	for (size_t len = strlen(copy); len > 1 && copy[len - 1] == '/';)
		copy[--len] = '\0';
	slash = strrchr(copy, '/');
	snprintf(name, IDX_NAME_MAX + 1, "%s", slash ? slash + 1 : copy);
	if (slash)
		*slash = '\0';
	rc = ctl_resolve(im->st, slash ? (slash == copy ? "/" : copy) : "", 1, &in);
	if (!rc && !S_ISDIR(in.mode))
		rc = -ENOTDIR;
	if (!rc && (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
		rc = -EINVAL;
	free(copy);
	if (rc) {
		ctl_err(dest, "%s", rc == -EINVAL ? "not a name for a new entry" : ctl_strerror(rc));
		return CTL_FAIL;
	}
	*dir = in.ino;
	return 0;
}

int ctl_import(int argc, char **argv)
{
	struct imp im = { .euid = geteuid() };
	const char *fsize = NULL;
	int quiet = 0, n, rc, status;
	struct ctl_opt opts[] = {
		{ 'f', "force", &im.force, NULL },
		{ 'q', "quiet", &quiet, NULL },
		{ 0, "format", NULL, &im.format },
		{ 0, "header", NULL, &im.header },
		{ 0, "fragment-size", NULL, &fsize },
	};
	/* an empty directory becomes a store, as when the daemon mounts it */
	struct store_opts o = { .cache_size = CTL_CACHE, .create = 1 };
	uint64_t dir, v;
	char name[IDX_NAME_MAX + 1];
	double t0;

	rc = ctl_parse("import", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), help, &n);
	if (rc >= 0)
		return rc;
	if (n < 4)
		return ctl_usage("import", n < 2 ? "missing STORE" : n < 3 ? "missing SRC" :
				 "missing DEST");
	if ((rc = check_settings(im.format, im.header)) >= 0)
		return rc;
	if (im.format && strncmp(im.format, "fixed:", 6) == 0)
		im.recsize = strtoull(im.format + 6, NULL, 10);
	if (fsize) {
		if (ctl_parse_size(fsize, 1u << 30, 0, &v))
			return ctl_usage("import", "bad --fragment-size '%s' (1 to 1G)", fsize);
		o.fragment_size = (size_t)v;
	}
	if ((rc = ctl_open_rw(argv[1], "import", &o, &im.st)))
		return ctl_open_status(rc);
	{
		struct stat sb;
		if (stat(argv[1], &sb) == 0) {
			im.store_dev = sb.st_dev;
			im.store_ino = sb.st_ino;
		}
	}
	status = find_dest(&im, argv[n - 1], n - 3, &dir, name);
	if (status)
		goto out;
	if (!(im.buf = malloc(CTL_CHUNK))) {
		ctl_err("import", "%s", strerror(ENOMEM));
		status = CTL_FAIL;
		goto out;
	}
	ctl_progress_start(&im.prog, !quiet && isatty(STDERR_FILENO));
	if (im.prog.on)
		for (int i = 2; i < n - 1; i++)
			scan(&im.prog, argv[i], 0);
	t0 = ctl_now();
	for (int i = 2; i < n - 1 && !im.fatal; i++) {
		const char *nm = name[0] ? name : src_name(argv[i]);
		struct stat sb;
		if (!*nm) {
			/* "dir/." : the contents go into DEST itself */
			if (lstat(argv[i], &sb) < 0)
				source_failed(&im, argv[i], "cannot stat", errno);
			else if (!S_ISDIR(sb.st_mode))
				source_failed(&im, argv[i], "cannot import", ENOTDIR);
			else if (sb.st_dev == im.store_dev && sb.st_ino == im.store_ino)
				source_failed(&im, argv[i], "cannot import", EINVAL);   /* the store itself */
			else
				import_children(&im, dir, argv[i]);
		} else {
			import_entry(&im, dir, nm, argv[i]);
		}
	}
	ctl_progress_clear(&im.prog);
	/* durable when the command returns (an index flush), and its failure seen */
	if ((rc = store_sync(im.st)) != 0) {
		ctl_err(argv[1], "cannot make the import durable: %s", strerror(-rc));
		im.tally.errors++;
	}
	if (!quiet)
		ctl_tally_print("import", &im.tally, im.prog.bytes, ctl_now() - t0);
	status = im.tally.errors ? CTL_FAIL : CTL_OK;
out:
	free(im.buf);
	free(im.hl);
	store_close(im.st);
	if (ctl_flush_stdout())
		status = CTL_FAIL;
	return status;
}
