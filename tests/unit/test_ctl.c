/* test_ctl — payloadctl's data commands driven in-process, without a mount
 * (tools/ctl_import.c, ctl_export.c, ctl_gc.c, ctl_snapshot.c, and the
 * option parser and progress figures they share):
 *  - ctl_parse / ctl_parse_size: flags, values in every spelling, `--`,
 *    unknown options, missing values; sizes with suffixes and limits;
 *  - the progress line and its figures;
 *  - import -> export of a tree of random files (several fragments, a
 *    header-less and a csv file, a hard link, symlinks, a fifo, odd modes,
 *    ns mtimes): the store holds what the daemon would (sizes, rows, csv
 *    header 1), and the exported tree equals the source (bytes, types,
 *    modes, mtimes, link targets, hard-link groups); --format/--header;
 *    -f; the error paths (missing source, unreadable source, fixed:N that
 *    does not divide, existing entry, bad options, a store in use: exit 2);
 *  - gc on a store with every kind of garbage (unreferenced images, staging
 *    files, an orphan inode, a storage=memory object): --dry-run changes
 *    nothing; gc deletes exactly the garbage, every referenced image and
 *    every object's bytes stay, fsck is clean after;
 *  - snapshot: the protocol's retry (an image of the copied state deleted
 *    before it was linked: a second round, consistent result), the give-up
 *    after too many rounds (DEST removed), a non-empty DEST; the snapshot
 *    is independent of its source and fsck's clean. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/backend.h"
#include "cache/codec.h"
#include "cache/log.h"
#include "index/store.h"
#include "tools/ctl.h"
#include "tests/unit/tap.h"
#include "tests/unit/tstore.h"
#include "tests/unit/tutil.h"

static char tmp[4096];

/* ---- running a command ---- */

static char out[1 << 16], err[1 << 16];

static void slurp(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

static void show(const char *tag, const char *s)
{
	for (const char *l = s, *e; *l; l = e + 1) {
		if (!(e = strchr(l, '\n')))
			break;
		printf("#   %s %.*s\n", tag, (int)(e - l), l);
	}
}

/* Run FN with the NULL-terminated arguments (argv[0] is NAME); its stdout
 * goes to OUT, its stderr to ERR. @return its exit status. */
static int run(int (*fn)(int, char **), const char *name, ...)
{
	char *argv[32], po[4300], pe[4300];
	int argc = 0, fo, fe, so, se, status;
	va_list ap;

	argv[argc++] = (char *)name;
	va_start(ap, name);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(po, sizeof(po), "%s/cmd.out", tmp);
	snprintf(pe, sizeof(pe), "%s/cmd.err", tmp);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	fo = open(po, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fe = open(pe, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(fo, 1);
	dup2(fe, 2);
	status = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(fo, out, sizeof(out));
	slurp(fe, err, sizeof(err));
	unlink(po);
	unlink(pe);
	show("|", out);
	show("2|", err);
	return status;
}

/* ---- files ---- */

static void path_of(char *buf, size_t cap, const char *a, const char *b)
{
	if ((size_t)snprintf(buf, cap, "%s/%s", a, b) >= cap) {
		printf("Bail out! path too long: %s/%s\n", a, b);
		exit(1);
	}
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		printf("Bail out! write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* SIZE random bytes, or random csv-ish lines when TEXT. */
static char *random_data(size_t size, int text)
{
	char *b = malloc(size + 1);

	for (size_t i = 0; i < size; i++) {
		if (text)
			b[i] = (i % 37 == 36) ? '\n' : (char)('a' + rnd_below(26));
		else
			b[i] = (char)rnd();
	}
	return b;
}

static void set_mtime(const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = { { sec - 100, nsec / 2 }, { sec, nsec } };

	utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

/* The source tree: returns nothing; bails out on failure. */
static void make_tree(const char *src)
{
	char p[4300], q[4300];
	char *d;

	mkdir(src, 0755);
	path_of(p, sizeof(p), src, "sub");
	mkdir(p, 0750);
	path_of(p, sizeof(p), src, "sub/deeper");
	mkdir(p, 0700);
	path_of(p, sizeof(p), src, "empty-dir");
	mkdir(p, 0755);
	d = random_data(200000, 1);
	memcpy(d, "h1,h2\n", 6);
	path_of(p, sizeof(p), src, "data.csv");
	write_file(p, d, 200000);
	set_mtime(p, 1600000000, 123456789);
	free(d);
	d = random_data(70000, 0);
	path_of(p, sizeof(p), src, "sub/blob.bin");
	write_file(p, d, 70000);
	chmod(p, 0604);
	set_mtime(p, 1500000000, 999999999);
	free(d);
	d = random_data(3000, 1);
	path_of(p, sizeof(p), src, "sub/deeper/small.txt");
	write_file(p, d, 3000);
	free(d);
	path_of(p, sizeof(p), src, "empty");
	write_file(p, "", 0);
	chmod(p, 04755);
	path_of(p, sizeof(p), src, "sub/hard.csv");
	path_of(q, sizeof(q), src, "data.csv");
	link(q, p);
	path_of(p, sizeof(p), src, "rel-link");
	symlink("sub/blob.bin", p);
	set_mtime(p, 1400000000, 5);
	path_of(p, sizeof(p), src, "sub/dangling");
	symlink("/nowhere/at/all", p);
	path_of(p, sizeof(p), src, "fifo");
	mkfifo(p, 0620);
	/* directory times last: their entries changed them */
	path_of(p, sizeof(p), src, "sub/deeper");
	set_mtime(p, 1300000000, 42);
	path_of(p, sizeof(p), src, "sub");
	set_mtime(p, 1300000001, 43);
}

/* A line per entry of the tree under ROOT, sorted: path, type and mode,
 * size, mtime ns (not for symlinks), xxh64 of the content, link target,
 * and the first path of its hard-link group. */
static char tree_buf[1 << 16];
static size_t tree_len;
static const char *tree_root;
static char tree_lines[512][600];
static int tree_n;

static int tree_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	char extra[300] = "", *line;
	const char *rel = path + strlen(tree_root);

	(void)flag;
	(void)ftw;
	if (!*rel || tree_n == 512)
		return 0;
	line = tree_lines[tree_n++];
	if (S_ISREG(sb->st_mode)) {
		int fd = open(path, O_RDONLY);
		char *b = malloc((size_t)sb->st_size + 1);
		ssize_t n = fd >= 0 ? read(fd, b, (size_t)sb->st_size) : -1;
		snprintf(extra, sizeof(extra), "x=%016" PRIx64 " nlink=%lu",
			 n == sb->st_size ? frag_checksum(b, (size_t)n) : 0, (unsigned long)sb->st_nlink);
		if (fd >= 0)
			close(fd);
		free(b);
	} else if (S_ISLNK(sb->st_mode)) {
		char t[256];
		ssize_t n = readlink(path, t, sizeof(t) - 1);
		t[n > 0 ? n : 0] = '\0';
		snprintf(extra, sizeof(extra), "-> %s", t);
	}
	snprintf(line, 600, "%s %o %lld %s %s", rel, sb->st_mode, S_ISDIR(sb->st_mode) ? 0LL :
		 (long long)sb->st_size, extra, "");
	if (!S_ISLNK(sb->st_mode)) {
		size_t l = strlen(line);
		snprintf(line + l, 600 - l, "mtime=%lld.%09ld", (long long)sb->st_mtim.tv_sec,
			 sb->st_mtim.tv_nsec);
	}
	return 0;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The manifest of ROOT into tree_buf. */
static const char *manifest(const char *root)
{
	tree_root = root;
	tree_n = 0;
	tree_len = 0;
	nftw(root, tree_one, 16, FTW_PHYS);
	qsort(tree_lines, (size_t)tree_n, sizeof(tree_lines[0]), cmp_line);
	tree_buf[0] = '\0';
	for (int i = 0; i < tree_n && tree_len + 700 < sizeof(tree_buf); i++)
		tree_len += (size_t)snprintf(tree_buf + tree_len, sizeof(tree_buf) - tree_len, "%s\n",
					     tree_lines[i]);
	return tree_buf;
}

static int same_trees(const char *a, const char *b)
{
	char *ma = strdup(manifest(a)), *mb = strdup(manifest(b));
	int same = strcmp(ma, mb) == 0;

	if (!same) {
		show("a:", ma);
		show("b:", mb);
	}
	free(ma);
	free(mb);
	return same;
}

/* ---- stores ---- */

static struct store *open_store(const char *dir, int rdonly)
{
	struct store_opts o = { .rdonly = rdonly, .create = !rdonly };
	struct store *st = NULL;
	int rc;

	if (!rdonly)
		mkdir(dir, 0700);
	rc = store_open(dir, &o, &st);
	if (rc) {
		printf("Bail out! store_open %s: %s\n", dir, store_strerror(rc));
		exit(1);
	}
	return st;
}

static int getattr_path(struct store *st, const char *path, struct idx_inode *in)
{
	return ctl_resolve(st, path, 0, in);
}

/* xxh64 of the whole object at PATH (0 on failure). */
static uint64_t object_hash(struct store *st, const char *path, uint64_t *size)
{
	struct idx_inode in;
	struct pver *pv;
	uint64_t h = 0;
	char *b;

	if (getattr_path(st, path, &in) || store_pver_get(st, in.ino, &pv))
		return 0;
	*size = pver_inode(pv)->size;
	b = malloc(*size + 1);
	if (pver_read(pv, b, *size, 0) == (ssize_t)*size)
		h = frag_checksum(b, *size);
	free(b);
	pver_put(pv);
	return h;
}

static int new_object(struct store *st, const char *name, const void *data, size_t len, uint64_t *ino)
{
	struct idx_inode in;
	int rc = store_mknod(st, IDX_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &in);

	if (!rc)
		rc = tst_put_data(st, in.ino, data, len);
	if (ino)
		*ino = in.ino;
	return rc;
}

static long count_images(const char *dir)
{
	char p[4300];

	path_of(p, sizeof(p), dir, "fragments");
	return tut_count_files(p, ".frag");
}

/* ---- option parsing and figures ---- */

static void test_parse(void)
{
	int f = 0, q = 0, n, rc;
	const char *a = NULL, *b = NULL;
	struct ctl_opt opts[] = {
		{ 'f', "force", &f, NULL }, { 'q', "quiet", &q, NULL },
		{ 'a', "alpha", NULL, &a }, { 0, "beta", NULL, &b },
	};
	char *v1[] = { "x", "-fq", "one", "--alpha=1", "two", "--beta", "2", "--", "-q", NULL };
	char *v2[] = { "x", "-a3", "--force", NULL };
	char *v3[] = { "x", "-a", NULL };
	char *v4[] = { "x", "--gamma", NULL };
	char *v5[] = { "x", "--force=1", NULL };
	uint64_t s;

	rc = ctl_parse("x", 9, v1, opts, 4, "help\n", &n);
	CHECK(rc == -1 && f && q && a && strcmp(a, "1") == 0 && b && strcmp(b, "2") == 0,
	      "ctl_parse: bundled flags, --name=VAL, --name VAL");
	CHECK(n == 4 && strcmp(v1[1], "one") == 0 && strcmp(v1[2], "two") == 0 && strcmp(v1[3], "-q") == 0,
	      "ctl_parse: operands in order, '--' ends the options");
	f = 0;
	rc = ctl_parse("x", 3, v2, opts, 4, "help\n", &n);
	CHECK(rc == -1 && f && strcmp(a, "3") == 0 && n == 1, "ctl_parse: -xVAL and a long flag");
	fflush(stderr);
	CHECK_EQ(ctl_parse("x", 2, v3, opts, 4, "help\n", &n), CTL_USAGE, "ctl_parse: a missing value is a usage error");
	CHECK_EQ(ctl_parse("x", 2, v4, opts, 4, "help\n", &n), CTL_USAGE, "ctl_parse: an unknown option is a usage error");
	CHECK_EQ(ctl_parse("x", 2, v5, opts, 4, "help\n", &n), CTL_USAGE, "ctl_parse: a value for a flag is a usage error");

	CHECK(ctl_parse_size("64M", 1ull << 40, 0, &s) == 0 && s == 64ull << 20, "ctl_parse_size 64M");
	CHECK(ctl_parse_size("3k", 1ull << 40, 0, &s) == 0 && s == 3072, "ctl_parse_size 3k");
	CHECK(ctl_parse_size("0", 10, 1, &s) == 0 && s == 0, "ctl_parse_size 0 when allowed");
	CHECK_EQ(ctl_parse_size("0", 10, 0, &s), -EINVAL, "ctl_parse_size 0 refused when not");
	CHECK_EQ(ctl_parse_size("11", 10, 0, &s), -EINVAL, "ctl_parse_size above the maximum");
	CHECK_EQ(ctl_parse_size("2G", 1u << 30, 0, &s), -EINVAL, "ctl_parse_size 2G above 1G");
	CHECK_EQ(ctl_parse_size("12x", 100, 0, &s), -EINVAL, "ctl_parse_size trailing junk");
	CHECK_EQ(ctl_parse_size("", 100, 1, &s), -EINVAL, "ctl_parse_size empty");
	CHECK_EQ(ctl_parse_size("99999999999999999999", UINT64_MAX, 0, &s), -EINVAL, "ctl_parse_size overflow");
}

static void test_figures(void)
{
	struct ctl_progress p;
	char b[160];

	ctl_fmt_bytes(512, b, sizeof(b));
	CHECK(strcmp(b, "512 B") == 0, "fmt_bytes 512 -> '%s'", b);
	ctl_fmt_bytes(1536, b, sizeof(b));
	CHECK(strcmp(b, "1.5 KiB") == 0, "fmt_bytes 1536 -> '%s'", b);
	ctl_fmt_bytes(300ull << 20, b, sizeof(b));
	CHECK(strcmp(b, "300 MiB") == 0, "fmt_bytes 300 MiB -> '%s'", b);
	ctl_fmt_eta(9.4, b, sizeof(b));
	CHECK(strcmp(b, "0:09") == 0, "fmt_eta 9.4 -> '%s'", b);
	ctl_fmt_eta(3723, b, sizeof(b));
	CHECK(strcmp(b, "1:02:03") == 0, "fmt_eta 3723 -> '%s'", b);
	ctl_progress_start(&p, 0);
	p.t0 = 100;
	p.total_bytes = 400000000;
	p.total_files = 10;
	ctl_progress_add(&p, 100000000, 3);
	ctl_progress_line(&p, 101, b, sizeof(b));
	CHECK(strstr(b, " 25%") && strstr(b, "3/10 files") && strstr(b, "100 MB/s") && strstr(b, "ETA 0:03"),
	      "progress line: '%s'", b);
	p.total_bytes = p.total_files = 0;
	ctl_progress_line(&p, 101, b, sizeof(b));
	CHECK(!strstr(b, "ETA") && strstr(b, "3 files"), "progress line without totals: '%s'", b);
}

/* ---- import / export ---- */

static void test_roundtrip(void)
{
	char src[4300], st_dir[4300], dst[4300], p[4300];
	struct store *st;
	struct idx_inode in, h;
	uint64_t size = 0;
	int rc;

	path_of(src, sizeof(src), tmp, "src");
	path_of(st_dir, sizeof(st_dir), tmp, "rt-store");
	path_of(dst, sizeof(dst), tmp, "exported");
	make_tree(src);

	rc = run(ctl_import, "import", "--fragment-size=16K", st_dir, src, "/", NULL);
	CHECK_EQ(rc, CTL_FAIL, "import into a missing store fails (exit 1)");
	CHECK(strstr(err, "no such store") != NULL, "... saying 'no such store'");
	st = open_store(st_dir, 0);
	store_close(st);
	rc = run(ctl_import, "import", "--fragment-size=16K", st_dir, src, "/", NULL);
	CHECK_EQ(rc, CTL_OK, "import of the tree (exit 0)");
	CHECK(strstr(out, "import: 4 files") && strstr(out, "4 directories") &&
	      strstr(out, "2 symlinks") && strstr(out, "1 hard link") && strstr(out, "1 other"),
	      "the summary counts files, directories, symlinks, hard links, others");

	st = open_store(st_dir, 1);
	rc = getattr_path(st, "src/data.csv", &in);
	CHECK(rc == 0 && in.size == 200000 && in.header == 1 && in.nlink == 2 && in.nfrags >= 10,
	      "data.csv: size, header 1 (the daemon's csv rule), 2 links, >= 10 fragments of 16K (%u)",
	      in.nfrags);
	CHECK(in.mtime_ns == 1600000000123456789LL, "data.csv: mtime kept to the ns");
	rc = getattr_path(st, "src/sub/hard.csv", &h);
	CHECK(rc == 0 && h.ino == in.ino, "sub/hard.csv is the same object (a hard link)");
	rc = getattr_path(st, "src/sub/blob.bin", &in);
	CHECK(rc == 0 && (in.mode & 07777) == 0604 && in.header == 0, "blob.bin: mode 0604, no header");
	rc = getattr_path(st, "src/empty", &in);
	CHECK(rc == 0 && (in.mode & 07777) == 04755, "empty: setuid mode kept");
	rc = getattr_path(st, "src/fifo", &in);
	CHECK(rc == 0 && S_ISFIFO(in.mode), "fifo imported as a fifo");
	path_of(p, sizeof(p), src, "data.csv");
	{
		int fd = open(p, O_RDONLY);
		char *b = malloc(200000);
		CHECK(read(fd, b, 200000) == 200000 && object_hash(st, "src/data.csv", &size) ==
		      frag_checksum(b, 200000), "data.csv's bytes in the store are the source's");
		close(fd);
		free(b);
	}
	store_close(st);
	rc = run(ctl_fsck, "fsck", st_dir, NULL);
	CHECK(rc == 0 && strstr(out, "clean") && !strstr(out, "warning"), "fsck after the import: clean");

	rc = run(ctl_export, "export", st_dir, "src", dst, NULL);
	CHECK_EQ(rc, CTL_OK, "export of the tree (exit 0)");
	CHECK(same_trees(src, dst), "the exported tree equals the source (bytes, modes, ns mtimes, links)");

	/* import again: every entry exists */
	rc = run(ctl_import, "import", st_dir, src, "/", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "File exists"), "a second import: exit 1, 'File exists'");
	/* -f: a new version of the existing object, same id */
	path_of(p, sizeof(p), src, "sub/deeper/small.txt");
	st = open_store(st_dir, 1);
	getattr_path(st, "src/sub/deeper/small.txt", &h);
	store_close(st);
	write_file(p, "replaced\n", 9);
	rc = run(ctl_import, "import", "-f", "-q", st_dir, p, "src/sub/deeper/small.txt", NULL);
	CHECK(rc == CTL_OK && !out[0], "import -f -q over an existing object: exit 0, nothing printed");
	st = open_store(st_dir, 1);
	rc = getattr_path(st, "src/sub/deeper/small.txt", &in);
	CHECK(rc == 0 && in.ino == h.ino && in.version == h.version + 1 && in.size == 9,
	      "-f: same id, version + 1, the new size");
	store_close(st);
}

static void test_import_options(void)
{
	char st_dir[4300], p[4300], q[4300], r[4300];
	struct store *st;
	struct idx_inode in;
	char *d = random_data(4096 * 3, 0);
	int rc;

	path_of(st_dir, sizeof(st_dir), tmp, "opt-store");
	st = open_store(st_dir, 0);
	store_close(st);
	path_of(p, sizeof(p), tmp, "rec.bin");
	write_file(p, d, 4096 * 3);
	path_of(q, sizeof(q), tmp, "odd.bin");
	write_file(q, d, 4096 * 3 - 5);
	path_of(r, sizeof(r), tmp, "two.txt");
	write_file(r, "a\nb\nc\nd\n", 8);

	rc = run(ctl_import, "import", "--format", "fixed:16", st_dir, p, "rec.bin", NULL);
	CHECK_EQ(rc, CTL_OK, "import --format fixed:16 (exit 0)");
	rc = run(ctl_import, "import", "--format=fixed:16", st_dir, q, "odd.bin", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "multiple of N"), "fixed:16 with a size not a multiple: exit 1, said");
	rc = run(ctl_import, "import", "--header=2", st_dir, r, "two.txt", NULL);
	CHECK_EQ(rc, CTL_OK, "import --header=2 (exit 0)");
	st = open_store(st_dir, 1);
	rc = getattr_path(st, "rec.bin", &in);
	CHECK(rc == 0 && in.fmt_kind == PFMT_FIXED && in.fmt_recsize == 16 && in.rows == 768,
	      "rec.bin: fixed:16, 768 records");
	CHECK_EQ(getattr_path(st, "odd.bin", &in), -ENOENT, "odd.bin was not left behind");
	rc = getattr_path(st, "two.txt", &in);
	CHECK(rc == 0 && in.header == 2 && in.rows == 4, "two.txt: header 2, 4 rows");
	store_close(st);

	CHECK_EQ(run(ctl_import, "import", "--format=fixed:0", st_dir, r, "x", NULL), CTL_USAGE,
		 "--format=fixed:0 is a usage error");
	CHECK_EQ(run(ctl_import, "import", "--format=csv", st_dir, r, "x", NULL), CTL_USAGE,
		 "--format=csv is a usage error");
	CHECK_EQ(run(ctl_import, "import", "--header=x", st_dir, r, "x", NULL), CTL_USAGE,
		 "--header=x is a usage error");
	CHECK_EQ(run(ctl_import, "import", "--header=1", "--format=fixed:8", st_dir, r, "x", NULL),
		 CTL_USAGE, "--header with fixed:N is a usage error");
	CHECK_EQ(run(ctl_import, "import", st_dir, r, NULL), CTL_USAGE, "a missing DEST is a usage error");

	/* a missing and an unreadable source: reported, the others imported */
	rc = run(ctl_import, "import", st_dir, "/nonexistent/file", "/proc/self/mem", r, "/", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "/nonexistent/file: cannot stat: No such file") &&
	      strstr(err, "/proc/self/mem: cannot read: Input/output error"),
	      "missing and unreadable sources: exit 1, each named with its error");
	st = open_store(st_dir, 1);
	CHECK(getattr_path(st, "two.txt", &in) == 0 && getattr_path(st, "mem", &in) == -ENOENT,
	      "the readable source was imported, the unreadable one left out");
	store_close(st);
	/* names: DEST's parent must exist; a view name is refused */
	rc = run(ctl_import, "import", st_dir, r, "no/such/dir/x", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "No such file"), "DEST in a missing directory: exit 1");
	rc = run(ctl_import, "import", st_dir, r, "v.txt@rows=1:2", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "reserved for views"), "a view name as DEST: exit 1, said");
	rc = run(ctl_import, "import", st_dir, r, p, "two.txt", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "not a directory"), "several sources into a file: exit 1");

	/* a source tree holding the store itself: the store is skipped */
	{
		char q2[4300], inner[4300];
		path_of(q2, sizeof(q2), tmp, "holder");
		mkdir(q2, 0755);
		path_of(inner, sizeof(inner), q2, "st");
		st = open_store(inner, 0);
		store_close(st);
		path_of(p, sizeof(p), q2, "note.txt");
		write_file(p, "n\n", 2);
		rc = run(ctl_import, "import", inner, q2, "/", NULL);
		CHECK(rc == CTL_FAIL && strstr(err, "skipped: it is the store being imported into"),
		      "importing a tree that holds the store: the store is skipped, said, exit 1");
		st = open_store(inner, 1);
		CHECK(getattr_path(st, "holder/note.txt", &in) == 0 && getattr_path(st, "holder/st", &in) == -ENOENT,
		      "the rest of the tree is imported, the store is not");
		store_close(st);
	}
	/* -f with --format over an object with data: emptied first, then cut anew */
	rc = run(ctl_import, "import", "-f", "--format=fixed:8", st_dir, q, "rec.bin", NULL);
	st = open_store(st_dir, 1);
	CHECK(rc == CTL_FAIL && getattr_path(st, "rec.bin", &in) == 0 && in.size == 4096 * 3 &&
	      in.fmt_recsize == 16, "-f --format=fixed:8 with a size no multiple of 8: exit 1, the object unchanged");
	store_close(st);
	path_of(p, sizeof(p), tmp, "rec.bin");
	rc = run(ctl_import, "import", "-f", "-q", "--format=fixed:8", st_dir, p, "rec.bin", NULL);
	st = open_store(st_dir, 1);
	CHECK(rc == CTL_OK && getattr_path(st, "rec.bin", &in) == 0 && in.fmt_recsize == 8 && in.rows == 1536,
	      "-f --format=fixed:8 over a fixed:16 object: fixed:8, 1536 records");
	store_close(st);

	/* a store held by a writer */
	st = open_store(st_dir, 0);
	rc = run(ctl_import, "import", st_dir, r, "/", NULL);
	CHECK(rc == CTL_USAGE && strstr(err, "in use"), "import into a store in use: exit 2, 'in use'");
	rc = run(ctl_gc, "gc", st_dir, NULL);
	CHECK(rc == CTL_USAGE && strstr(err, "in use"), "gc of a store in use: exit 2");
	rc = run(ctl_gc, "gc", "-n", st_dir, NULL);
	CHECK(rc == CTL_USAGE && strstr(err, "in use"), "gc --dry-run of a store in use: exit 2");
	store_close(st);
	free(d);
}

static void test_export_errors(void)
{
	char st_dir[4300], dst[4300], p[4300];
	int rc;

	path_of(st_dir, sizeof(st_dir), tmp, "opt-store");
	path_of(dst, sizeof(dst), tmp, "exp2");
	mkdir(dst, 0755);
	rc = run(ctl_export, "export", st_dir, "nope", dst, NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "nope: No such file"), "export of a missing path: exit 1");
	rc = run(ctl_export, "export", st_dir, "two.txt@rows=abc", dst, NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "bad view"), "export of a bad view: exit 1");
	rc = run(ctl_export, "export", st_dir, "two.txt@rows=1:3", "rec.bin@meta", dst, NULL);
	CHECK_EQ(rc, CTL_OK, "export of two views into a directory (exit 0)");
	path_of(p, sizeof(p), dst, "two.txt@rows=1:3");
	{
		char b[64] = "";
		int fd = open(p, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, b, sizeof(b) - 1) : -1;
		CHECK(n == 6 && memcmp(b, "a\nb\nd\n", 6) == 0, "the rows view file holds header + rows 1..2");
		if (fd >= 0)
			close(fd);
	}
	path_of(p, sizeof(p), dst, "rec.bin@meta");
	CHECK(access(p, F_OK) == 0, "the @meta view is a file");
	rc = run(ctl_export, "export", st_dir, "two.txt@rows=1:3", dst, NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "File exists"), "exporting over an existing file: exit 1");
	rc = run(ctl_export, "export", "-f", st_dir, "two.txt", p, NULL);
	CHECK_EQ(rc, CTL_OK, "-f replaces an existing file");
	rc = run(ctl_export, "export", st_dir, "two.txt", "rec.bin", "/nonexistent/dir", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "no such directory"), "several paths to a missing directory: exit 1");
	rc = run(ctl_export, "export", st_dir, "two.txt", "/nonexistent/dir/x", NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "cannot create: No such file"), "into a missing directory: exit 1");
	CHECK_EQ(run(ctl_export, "export", st_dir, dst, NULL), CTL_USAGE, "a missing DEST is a usage error");
	CHECK_EQ(run(ctl_export, "export", "--bogus", st_dir, "x", dst, NULL), CTL_USAGE, "an unknown option is a usage error");
}

/* ---- gc ---- */

struct refset {
	uint64_t *v;
	size_t n;
};

static int refs_cb(void *arg, uint64_t id, uint32_t count)
{
	struct refset *r = arg;

	(void)count;
	r->v = realloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->v[r->n++] = id;
	return 0;
}

static struct refset referenced(struct store *st)
{
	struct refset r = { 0 };
	struct idx_txn *t;

	if (idx_begin(store_idx(st), 1, &t) == 0) {
		idx_refs_iter(t, refs_cb, &r);
		idx_abort(t);
	}
	return r;
}

static int image_exists(const char *dir, uint64_t id)
{
	char p[4500];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/fragments/%02x/%016" PRIx64 ".frag", dir, (unsigned)(id & 0xff), id);
	return stat(p, &sb) == 0;
}

static void test_gc(void)
{
	char dir[4300], p[4300];
	struct store *st;
	struct idx_inode in;
	struct pver *held;
	uint64_t keep_ino, orphan_ino, mem_ino, h_keep, size, garbage[3];
	char *d = random_data(50000, 1), img[70000];
	struct refset r;
	long before;
	int rc, all_there = 1;
	size_t ilen;

	path_of(dir, sizeof(dir), tmp, "gc-store");
	{
		struct store_opts o = { .create = 1, .fragment_size = 8192 };
		mkdir(dir, 0700);
		store_open(dir, &o, &st);
	}
	new_object(st, "keep.txt", d, 50000, &keep_ino);
	new_object(st, "gone.txt", d + 100, 30000, &orphan_ino);
	new_object(st, "mem.txt", "", 0, &mem_ino);
	store_setxattr(st, mem_ino, "user.payload.storage", "memory", 6, 0);
	rc = tst_put_data(st, mem_ino, d, 20000);
	CHECK_EQ(rc, 0, "gc fixture: a storage=memory object with data");
	/* an orphan: unlinked while a version is held, never forgotten */
	store_pver_get(st, orphan_ino, &held);
	store_unlink(st, IDX_ROOT_INO, "gone.txt");
	/* images no record references */
	for (int i = 0; i < 3; i++) {
		garbage[i] = 0xfff000 + (uint64_t)i;
		frag_encode(garbage[i], d, 40000, 0, img, sizeof(img), &ilen, NULL);
		frag_put(store_backend(st, 0), garbage[i], img, ilen);
	}
	pver_put(held);
	h_keep = object_hash(st, "keep.txt", &size);
	store_close(st);      /* a tool's close: no sweep, the garbage stays */
	path_of(p, sizeof(p), dir, "staging/leftover.1");
	write_file(p, "staged bytes", 12);
	path_of(p, sizeof(p), dir, "staging/.keep");
	write_file(p, "", 0);

	before = count_images(dir);
	rc = run(ctl_gc, "gc", "--dry-run", dir, NULL);
	CHECK_EQ(rc, CTL_OK, "gc --dry-run (exit 0)");
	CHECK(strstr(out, "would delete: staging/leftover.1 (12 bytes)") &&
	      strstr(out, "would free: unlinked inode") && strstr(out, "would empty: storage=memory object") &&
	      strstr(out, "0000000000fff001.frag") && strstr(out, "only unlinked inode") &&
	      strstr(out, "3 fragment images") == NULL && strstr(out, "dry run: nothing changed"),
	      "--dry-run lists every kind of garbage");
	CHECK(count_images(dir) == before && access(p, F_OK) == 0, "--dry-run deleted nothing");

	rc = run(ctl_gc, "gc", dir, NULL);
	CHECK_EQ(rc, CTL_OK, "gc (exit 0)");
	CHECK(strstr(out, "gc: freed ") && strstr(out, "1 staging file") && strstr(out, "1 unlinked inode") &&
	      strstr(out, "1 storage=memory object"), "gc's summary: '%.*s'", (int)strcspn(out, "\n"), out);
	for (int i = 0; i < 3; i++)
		CHECK(!image_exists(dir, garbage[i]), "unreferenced image %d deleted", i);
	path_of(p, sizeof(p), dir, "staging/leftover.1");
	CHECK(access(p, F_OK) < 0, "the staging file is gone");
	path_of(p, sizeof(p), dir, "staging/.keep");
	CHECK(access(p, F_OK) == 0, "a dot file in staging stays (as the sweep)");
	st = open_store(dir, 1);
	r = referenced(st);
	for (size_t i = 0; i < r.n; i++)
		all_there &= image_exists(dir, r.v[i]);
	CHECK(r.n >= 6 && all_there, "every referenced image (%zu) is still there", r.n);
	CHECK_EQ(count_images(dir), (long)r.n, "and nothing else is");
	CHECK_EQ(store_getattr(st, orphan_ino, &in), -ENOENT, "the orphan inode is freed");
	CHECK(store_getattr(st, mem_ino, &in) == 0 && in.size == 0 && in.nfrags == 0,
	      "the storage=memory object is empty");
	CHECK(object_hash(st, "keep.txt", &size) == h_keep && size == 50000, "keep.txt is byte-identical");
	store_close(st);
	free(r.v);
	rc = run(ctl_fsck, "fsck", dir, NULL);
	CHECK(rc == 0 && !strstr(out, "warning"), "fsck after gc: clean, no warnings");
	rc = run(ctl_gc, "gc", dir, NULL);
	CHECK(rc == 0 && strstr(out, "nothing to collect"), "a second gc: nothing to collect");
	CHECK_EQ(run(ctl_gc, "gc", "/nonexistent/store", NULL), CTL_FAIL, "gc of a missing store: exit 1");
	CHECK_EQ(run(ctl_gc, "gc", NULL), CTL_USAGE, "gc without STORE: exit 2");
	free(d);
}

/* ---- snapshot ---- */

struct race {
	struct store *st;
	uint64_t ino;
	int stage1_calls;
	int always;              /* make every round miss */
	uint64_t old_id;         /* the image deleted in round 1 */
	char *next;              /* content written in round 1 */
};

static uint64_t first_frag_id(struct store *st, uint64_t ino)
{
	struct pver *pv;
	uint64_t id = 0;

	if (store_pver_get(st, ino, &pv) == 0) {
		if (pver_nfrags(pv))
			id = pver_frag(pv, 0)->id;
		pver_put(pv);
	}
	return id;
}

static void race_hook(void *arg, int stage)
{
	struct race *r = arg;
	char buf[20000];

	if (stage == 0) {
		/* an object made after the pre-link: its images are not linked yet */
		static int runs;
		char name[32];
		memset(buf, 'y', sizeof(buf));
		for (size_t i = 99; i < sizeof(buf); i += 100)
			buf[i] = '\n';
		snprintf(name, sizeof(name), runs ? "late%d.txt" : "late.txt", runs);
		runs++;
		new_object(r->st, name, buf, sizeof(buf), &r->ino);
		return;
	}
	if (r->stage1_calls++ && !r->always)
		return;
	/* the copied state references late.txt's images: overwrite it and
	 * flush, so the daemon-side deletion happens before the link */
	r->old_id = first_frag_id(r->st, r->ino);
	memcpy(buf, r->next, sizeof(buf));
	buf[0] = (char)('a' + r->stage1_calls % 26);
	tst_put_data(r->st, r->ino, buf, sizeof(buf));
	tst_sync(r->st);
}

static void test_snapshot(void)
{
	char src[4300], dst[4300], dst2[4300], p[4300];
	struct store *st, *s2;
	struct race r = { 0 };
	uint64_t h, hs, size, ino;
	struct idx_inode in;
	unsigned rounds = 0;
	char *d = random_data(40000, 1), *next = random_data(20000, 1);
	int rc;

	path_of(src, sizeof(src), tmp, "snap-src");
	path_of(dst, sizeof(dst), tmp, "snap-dst");
	path_of(dst2, sizeof(dst2), tmp, "snap-dst2");
	{
		struct store_opts o = { .create = 1, .fragment_size = 4096 };
		mkdir(src, 0700);
		store_open(src, &o, &st);
	}
	new_object(st, "a.txt", d, 40000, &ino);
	r.st = st;
	r.next = next;
	rc = ctl_snapshot_run(st, src, dst, race_hook, &r, &rounds);
	CHECK_EQ(rc, 0, "snapshot while the source commits (exit 0)");
	CHECK(r.old_id && !image_exists(src, r.old_id), "an image of the first copied state was deleted before its link");
	CHECK_EQ(rounds, 2, "so the protocol copied the index a second time (2 rounds)");
	h = object_hash(st, "late.txt", &size);
	store_close(st);

	s2 = open_store(dst, 1);
	hs = object_hash(s2, "late.txt", &size);
	CHECK(hs && hs == h, "the snapshot holds late.txt as of the second copy");
	CHECK(object_hash(s2, "a.txt", &size) != 0 && size == 40000, "and a.txt");
	store_close(s2);
	rc = run(ctl_fsck, "fsck", dst, NULL);
	CHECK(rc == 0 && !strstr(out, "warning"), "fsck of the snapshot: clean, no warnings");
	{
		char frag[4400];
		struct stat sb;
		st = open_store(src, 1);
		uint64_t id = first_frag_id(st, ino);
		store_close(st);
		snprintf(frag, sizeof(frag), "%s/fragments/%02x/%016" PRIx64 ".frag", dst,
			 (unsigned)(id & 0xff), id);
		CHECK(stat(frag, &sb) == 0 && sb.st_nlink == 2, "the snapshot's images are hard links");
	}
	/* independence: writing the snapshot does not change the source */
	s2 = open_store(dst, 0);
	ctl_resolve(s2, "a.txt", 0, &in);
	tst_put_data(s2, in.ino, "changed\n", 8);
	store_close(s2);
	st = open_store(src, 1);
	CHECK(object_hash(st, "a.txt", &size) != 0 && size == 40000, "a commit in the snapshot leaves the source as it was");
	store_close(st);

	/* every round misses: give up, DEST removed */
	{
		struct store_opts o = { .fragment_size = 4096 };
		store_open(src, &o, &st);
	}
	r = (struct race){ .st = st, .always = 1, .next = next };
	rc = ctl_snapshot_run(st, src, dst2, race_hook, &r, &rounds);
	CHECK(rc == -EAGAIN && rounds > 1, "a store that changes at every round: -EAGAIN after %u rounds", rounds);
	CHECK(access(dst2, F_OK) < 0, "and the half-made DEST is removed");
	store_close(st);

	rc = run(ctl_snapshot, "snapshot", src, dst, NULL);
	CHECK(rc == CTL_FAIL && strstr(err, "not empty"), "snapshot into a non-empty directory: exit 1");
	path_of(p, sizeof(p), tmp, "snap-cli");
	rc = run(ctl_snapshot, "snapshot", src, p, NULL);
	CHECK(rc == CTL_OK && strstr(out, "round"), "payloadctl snapshot (exit 0)");
	CHECK_EQ(run(ctl_snapshot, "snapshot", "/nonexistent/store", dst2, NULL), CTL_FAIL,
		 "snapshot of a missing store: exit 1");
	CHECK(access(dst2, F_OK) < 0, "which made nothing");
	CHECK_EQ(run(ctl_snapshot, "snapshot", src, NULL), CTL_USAGE, "snapshot without DEST: exit 2");
	free(d);
	free(next);
}

/* ---- snapshot of a RADOS store (ctl_snapshot.c R1-R4) ---- */

struct rrace {
	struct store *w;          /* the writer, in this process */
	uint64_t ino, old_id;
	int calls, del;           /* del: delete the old image at once (a
				   * writer that had not seen the hold yet) */
	char *next;
	int kept;                 /* the old image outlived two writer passes */
};

static int rimage_exists(struct store *st, uint64_t id)
{
	struct frag_get r = { .id = id };

	return frag_get_many(store_backend(st, 0), &r, 1) == 0 && r.err == 0;
}

static void rrace_hook(void *arg, int stage)
{
	struct rrace *r = arg;

	if (stage != 1 || r->calls++)
		return;
	/* the state just copied references a.txt's images: release them */
	tst_put_data(r->w, r->ino, r->next, 20000);
	tst_sync(r->w);
	if (r->del) {
		frag_del(store_backend(r->w, 0), r->old_id);
		return;
	}
	sleep(3);                 /* the writer's passes (every second) */
	store_reap_wait(r->w);
	r->kept = rimage_exists(r->w, r->old_id);
}

static void test_snapshot_rados(void)
{
	const char *conf_path = getenv("PFS_CEPH_CONF"), *pool = getenv("PFS_RADOS_POOL");
	char src[4300], dst[4300], dst2[4300];
	struct store_opts o = { .create = 1, .fragment_size = 4096 };
	struct store_conf conf = { .kind = STORE_RADOS, .role = STORE_WRITER };
	struct store *w = NULL, *t = NULL, *d;
	struct rrace r = { 0 };
	char *a = random_data(40000, 3), *next = random_data(20000, 4);
	uint64_t ino, size, h_old, h_new;
	unsigned rounds = 0;
	int rc;

	if (!conf_path || !pool) {
		printf("ok %d - snapshot of a RADOS store # skip no cluster (PFS_CEPH_CONF)\n", ++tap_n);
		free(a);
		free(next);
		return;
	}
	snprintf(conf.pool, sizeof(conf.pool), "%s", pool);
	snprintf(conf.name, sizeof(conf.name), "ctl-%d-%ld", (int)getpid(), (long)time(NULL));
	snprintf(conf.ceph_conf, sizeof(conf.ceph_conf), "%s", conf_path);
	o.conf = &conf;
	path_of(src, sizeof(src), tmp, "rsnap-src");
	path_of(dst, sizeof(dst), tmp, "rsnap-dst");
	path_of(dst2, sizeof(dst2), tmp, "rsnap-dst2");
	mkdir(src, 0700);
	rc = store_open(src, &o, &w);
	CHECK_EQ(rc, 0, "rados snapshot: a writer store in this process");
	if (rc)
		goto out;
	new_object(w, "a.txt", a, 40000, &ino);
	h_old = object_hash(w, "a.txt", &size);
	t = open_store(src, 1);         /* what payloadctl opens: read-only */
	r = (struct rrace){ .w = w, .ino = ino, .old_id = first_frag_id(w, ino), .next = next };
	rc = ctl_snapshot_run(t, src, dst, rrace_hook, &r, &rounds);
	CHECK_EQ(rc, 0, "rados snapshot while the writer releases the copied state's images");
	CHECK(r.kept, "the hold kept the released image through two writer passes");
	CHECK_EQ(rounds, 1, "so one round was enough");
	d = open_store(dst, 1);
	CHECK(d && store_get_conf(d)->kind == STORE_LOCAL, "DEST is a local store");
	CHECK(d && object_hash(d, "a.txt", &size) == h_old && size == 40000,
	      "holding a.txt as the copied state had it");
	store_close(d);
	rc = run(ctl_fsck, "fsck", dst, NULL);
	CHECK(rc == 0 && !strstr(out, "warning"), "fsck of the snapshot: clean, no warnings");
	sleep(3);                       /* the hold is gone: the writer deletes */
	store_reap_wait(w);
	CHECK(!rimage_exists(w, r.old_id), "once the hold is gone, the writer deletes the released image");

	/* the writer deleted an image before it saw the hold: a second round */
	h_new = object_hash(w, "a.txt", &size);
	memset(next, 'q', 100);
	r = (struct rrace){ .w = w, .ino = ino, .old_id = first_frag_id(w, ino), .next = next, .del = 1 };
	rc = ctl_snapshot_run(t, src, dst2, rrace_hook, &r, &rounds);
	CHECK_EQ(rc, 0, "rados snapshot when an image of the copied state vanished");
	CHECK_EQ(rounds, 2, "a newer state was copied (2 rounds)");
	d = open_store(dst2, 1);
	CHECK(d && object_hash(d, "a.txt", &size) != h_new && size == 20000 &&
	      object_hash(d, "a.txt", &size) == object_hash(w, "a.txt", &size),
	      "holding a.txt as the newer state has it");
	store_close(d);
	rc = run(ctl_fsck, "fsck", dst2, NULL);
	CHECK(rc == 0 && !strstr(out, "warning"), "fsck of the second snapshot: clean");
out:
	store_close(t);
	store_close(w);
	free(a);
	free(next);
}

/* ctl_write_all into a pipe whose write end is O_NONBLOCK (as librados
 * left stderr, and so a `2>&1` stdout: cache/rados_conn.c (3)) with a
 * reader slower than the pipe: every byte arrives, nothing fails. The
 * writer is a thread (a forked child under valgrind runs a leak check of
 * the whole test at its exit). */
enum { NB_LEN = 300000 };

struct nb_writer {
	int fd, rc;
	const char *buf;
};

static void *nb_write(void *arg)
{
	struct nb_writer *w = arg;

	w->rc = ctl_write_all(w->fd, w->buf, NB_LEN);
	close(w->fd);
	return NULL;
}

static void test_write_nonblocking(void)
{
	char *buf = malloc(NB_LEN), *got = malloc(NB_LEN);
	struct nb_writer w = { .rc = 1 };
	int fds[2];
	size_t have = 0;
	pthread_t th;

	if (!buf || !got || pipe(fds)) {
		CHECK(0, "pipe: %s", strerror(errno));
		free(buf);
		free(got);
		return;
	}
	for (size_t i = 0; i < NB_LEN; i++)
		buf[i] = (char)('a' + i % 23);
	fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
	w.fd = fds[1];
	w.buf = buf;
	if (pthread_create(&th, NULL, nb_write, &w)) {
		CHECK(0, "pthread_create");
		close(fds[0]);
		close(fds[1]);
		free(buf);
		free(got);
		return;
	}
	usleep(200 * 1000);          /* the writer fills the pipe and waits */
	for (ssize_t n; have < NB_LEN && (n = read(fds[0], got + have, NB_LEN - have)) > 0;) {
		have += (size_t)n;
		usleep(1000);
	}
	pthread_join(th, NULL);
	close(fds[0]);
	CHECK(w.rc == 0, "ctl_write_all into a full non-blocking pipe returns 0 (%d)", w.rc);
	CHECK(have == NB_LEN && !memcmp(got, buf, NB_LEN), "... and the reader got all %d bytes (%zu)",
	      NB_LEN, have);
	free(buf);
	free(got);
}

int main(void)
{
	log_init("test_ctl", LOG_TO_STDERR, -1);
	seed_init();
	if (tut_mkdtemp(tmp, sizeof(tmp), "ctl")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_parse();
	test_write_nonblocking();
	test_figures();
	test_roundtrip();
	test_import_options();
	test_export_errors();
	test_gc();
	test_snapshot();
	test_snapshot_rados();
	tut_rmrf(tmp);
	return tap_done();
}
