/* test_store — the store's namespace and xattrs (store.h) on a temporary
 * store: create/lookup/readdir/link/unlink/rmdir/rename with every flag
 * and error, nlink and parent invariants (ns.c (1), (3)) checked over the
 * whole tree after every change, names reserved for views, name lengths,
 * header defaults and inheritance of user.payload.* settings, xattr
 * set/get/list/remove with read-only figures, bad values (nothing changes)
 * and XATTR_CREATE/REPLACE, re-cuts on format/storage changes, and
 * unlinked-but-pinned objects (data readable until the last pver goes;
 * store_forget and the open-time sweep free it). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "cache/log.h"
#include "index/store.h"
#include "tests/unit/tap.h"
#include "tests/unit/tstore.h"
#include "tests/unit/tutil.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define ROOT IDX_ROOT_INO
#define FRAG 4096
#define STRAY_ID 0xa00abull    /* low byte 0xab: lives in fragments/ab/ */

static char tmp[4096], sdir[4200], fragdir[4300];
static struct store *st;

static struct store *open_store(int create, int sweep)
{
	struct store_opts o = { .fragment_size = FRAG, .create = create, .sweep = sweep };
	struct store *s = NULL;
	int rc = store_open(sdir, &o, &s);

	if (rc) {
		printf("Bail out! store_open %s: %s\n", sdir, store_strerror(rc));
		exit(1);
	}
	return s;
}

/* ---- small wrappers: an inode number or -errno ---- */

static int64_t mk(uint64_t parent, const char *name)
{
	struct idx_inode in;
	int rc = store_mknod(st, parent, name, S_IFREG | 0644, 0, 1000, 1000, &in);

	return rc ? rc : (int64_t)in.ino;
}

static int64_t mkd(uint64_t parent, const char *name)
{
	struct idx_inode in;
	int rc = store_mkdir(st, parent, name, 0755, 1000, 1000, &in);

	return rc ? rc : (int64_t)in.ino;
}

static int64_t lk(uint64_t parent, const char *name)
{
	struct idx_inode in;
	int rc = store_lookup(st, parent, name, &in);

	return rc ? rc : (int64_t)in.ino;
}

static struct idx_inode attr(uint64_t ino)
{
	struct idx_inode in;

	memset(&in, 0, sizeof(in));
	if (store_getattr(st, ino, &in))
		in.ino = 0;
	return in;
}

static uint32_t nlink_of(uint64_t ino)
{
	return attr(ino).nlink;
}

/* 1 when PV's bytes equal DATA/LEN. */
static int pv_equals(struct pver *pv, const void *data, size_t len)
{
	char *buf = malloc(len + 16);
	ssize_t n = pver_read(pv, buf, len + 16, 0);
	int ok = n == (ssize_t)len && memcmp(buf, data, len) == 0;

	if (!ok)
		printf("#   pver_read gave %zd bytes, want %zu%s\n", n, len,
		       n == (ssize_t)len ? " (content differs)" : "");
	free(buf);
	return ok;
}

static int obj_equals(uint64_t ino, const void *data, size_t len)
{
	struct pver *pv;
	int ok;

	if (store_pver_get(st, ino, &pv))
		return 0;
	ok = pv_equals(pv, data, len);
	pver_put(pv);
	return ok;
}

/* Image files after an index flush: released images go after the next
 * one (index/durable.c invariant 1). */
static long nfragfiles(void)
{
	if (st && tst_sync(st) != 0)
		printf("# store_sync failed\n");
	return tut_count_files(fragdir, ".frag");
}

static int inode_same(const struct idx_inode *a, const struct idx_inode *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* ---- the tree checker: ns.c invariants (1) and (3) ---- */

struct ent { char name[IDX_NAME_MAX + 1]; uint64_t ino; uint32_t type; };
struct entlist { struct ent *v; int n, cap; };

static int ent_cb(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct entlist *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = realloc(l->v, (size_t)l->cap * sizeof(*l->v));
	}
	snprintf(l->v[l->n].name, sizeof(l->v[0].name), "%s", name);
	l->v[l->n].ino = child;
	l->v[l->n].type = type;
	l->n++;
	return 0;
}

static struct entlist list_dir(uint64_t dir)
{
	struct entlist l = { 0 };

	store_readdir(st, dir, NULL, ent_cb, &l);
	return l;
}

struct linkcount { uint64_t ino[512]; uint32_t n[512]; int used; };

static int walk(uint64_t dir, uint64_t parent, struct linkcount *lc, char *why, size_t cap, int depth)
{
	struct entlist l = list_dir(dir);
	struct idx_inode d = attr(dir);
	uint32_t subdirs = 0;
	int ok = 1;

	if (depth > 64) {
		snprintf(why, cap, "tree deeper than 64: a cycle?");
		free(l.v);
		return 0;
	}
	if (!d.ino || !S_ISDIR(d.mode) || d.parent != parent) {
		snprintf(why, cap, "dir %" PRIu64 ": parent field %" PRIu64 ", want %" PRIu64, dir, d.parent, parent);
		ok = 0;
	}
	for (int i = 0; ok && i < l.n; i++) {
		struct idx_inode c = attr(l.v[i].ino);
		if (!c.ino) {
			snprintf(why, cap, "entry '%s' of %" PRIu64 " names a missing inode", l.v[i].name, dir);
			ok = 0;
		} else if ((c.mode & S_IFMT) != l.v[i].type) {
			snprintf(why, cap, "entry '%s': type %o, inode mode %o", l.v[i].name, l.v[i].type, c.mode);
			ok = 0;
		} else if (S_ISDIR(c.mode)) {
			subdirs++;
			ok = walk(c.ino, dir, lc, why, cap, depth + 1);
		} else {
			int k;
			for (k = 0; k < lc->used && lc->ino[k] != c.ino; k++)
				;
			if (k == lc->used && lc->used < 512)
				lc->ino[lc->used++] = c.ino, lc->n[k] = 0;
			lc->n[k]++;
		}
	}
	if (ok && d.nlink != 2 + subdirs) {
		snprintf(why, cap, "dir %" PRIu64 ": nlink %u, want 2 + %u subdirs", dir, d.nlink, subdirs);
		ok = 0;
	}
	free(l.v);
	return ok;
}

static void check_tree(const char *after)
{
	struct linkcount lc = { .used = 0 };
	char why[300] = "";
	int ok = walk(ROOT, ROOT, &lc, why, sizeof(why), 0);

	for (int k = 0; ok && k < lc.used; k++) {
		uint32_t nl = nlink_of(lc.ino[k]);
		if (nl != lc.n[k]) {
			snprintf(why, sizeof(why), "inode %" PRIu64 ": nlink %u, %u dirents name it", lc.ino[k], nl, lc.n[k]);
			ok = 0;
		}
	}
	CHECK(ok, "tree invariants hold after %s%s%s", after, ok ? "" : ": ", ok ? "" : why);
}

/* ---- namespace ---- */

static void test_basics(void)
{
	struct idx_inode r = attr(ROOT), in;
	int64_t d, f, g, h;
	char name[IDX_NAME_MAX + 2];
	struct statvfs sv;
	char buf[64];
	int rc;

	CHECK(r.ino == ROOT && S_ISDIR(r.mode) && r.nlink == 2 && r.parent == ROOT,
	      "a fresh store has a root directory (ino 1, nlink 2, its own parent)");
	d = mkd(ROOT, "d");
	CHECK(d >= IDX_FIRST_INO, "mkdir d (ino %" PRId64 ")", d);
	in = attr((uint64_t)d);
	CHECK(S_ISDIR(in.mode) && (in.mode & 07777) == 0755 && in.nlink == 2 && in.parent == ROOT &&
	      in.uid == 1000 && in.gid == 1000, "d: dir 0755, nlink 2, parent root, owner");
	CHECK_EQ(nlink_of(ROOT), 3, "root nlink 3 after mkdir");
	f = mk(ROOT, "f.csv");
	CHECK(f >= IDX_FIRST_INO, "mknod f.csv");
	in = attr((uint64_t)f);
	CHECK(S_ISREG(in.mode) && in.nlink == 1 && in.size == 0 && in.header == 1 && in.fmt_kind == PFMT_LINES,
	      "f.csv: regular, nlink 1, empty, lines, header 1 (csv default)");
	CHECK_EQ(attr((uint64_t)mk(ROOT, "g.tsv")).header, 1, "*.tsv: header 1");
	CHECK_EQ(attr((uint64_t)mk(ROOT, "UP.CSV")).header, 1, "*.CSV (upper case): header 1");
	CHECK_EQ(attr((uint64_t)mk(ROOT, "h.txt")).header, 0, "*.txt: header 0");
	CHECK_EQ(attr((uint64_t)mk(ROOT, "csv")).header, 0, "'csv' (no dot): header 0");
	CHECK_EQ(attr((uint64_t)mk(ROOT, "x.csv.gz")).header, 0, "*.csv.gz: header 0");
	CHECK_EQ(attr((uint64_t)mkd(ROOT, "dir.csv")).header, 0, "a directory named *.csv has no header setting");
	CHECK_EQ(nlink_of(ROOT), 4, "root nlink 4 (two subdirectories)");
	rc = store_mknod(st, ROOT, "fifo", S_IFIFO | 0600, 0, 0, 0, &in);
	CHECK(rc == 0 && S_ISFIFO(in.mode), "mknod of a fifo");
	rc = store_mknod(st, ROOT, "dev", S_IFCHR | 0600, 0x0103, 0, 0, &in);
	CHECK(rc == 0 && S_ISCHR(in.mode) && attr(in.ino).rdev == 0x0103, "mknod of a char device keeps rdev");
	rc = store_mknod(st, ROOT, "nomode", 0644, 0, 0, 0, &in);
	CHECK(rc == 0 && S_ISREG(in.mode), "mknod without a file type makes a regular file");
	CHECK_EQ(store_mknod(st, ROOT, "dd", S_IFDIR | 0755, 0, 0, 0, &in), -EINVAL, "mknod of S_IFDIR: -EINVAL");

	CHECK_EQ(lk(ROOT, "f.csv"), f, "lookup f.csv");
	CHECK_EQ(lk(ROOT, "nope"), -ENOENT, "lookup of a missing name: -ENOENT");
	CHECK_EQ(lk((uint64_t)f, "x"), -ENOTDIR, "lookup under a file: -ENOTDIR");
	CHECK_EQ(lk(999999, "x"), -ENOENT, "lookup under a missing directory: -ENOENT");
	CHECK_EQ(mk(ROOT, "f.csv"), -EEXIST, "mknod of an existing name: -EEXIST");
	CHECK_EQ(mkd(ROOT, "f.csv"), -EEXIST, "mkdir of an existing name: -EEXIST");
	CHECK_EQ(mkd(ROOT, "d"), -EEXIST, "mkdir of an existing dir: -EEXIST");
	CHECK_EQ(mk((uint64_t)f, "x"), -ENOTDIR, "mknod under a file: -ENOTDIR");
	CHECK_EQ(mk(999999, "x"), -ENOENT, "mknod under a missing directory: -ENOENT");

	/* names */
	CHECK_EQ(mk(ROOT, ""), -EINVAL, "empty name: -EINVAL");
	CHECK_EQ(mk(ROOT, "a/b"), -EINVAL, "name with '/': -EINVAL");
	CHECK_EQ(mk(ROOT, "."), -EEXIST, "'.': -EEXIST");
	CHECK_EQ(mkd(ROOT, ".."), -EEXIST, "'..': -EEXIST");
	memset(name, 'n', sizeof(name));
	name[IDX_NAME_MAX] = '\0';
	g = mk(ROOT, name);
	CHECK(g > 0, "a %d-byte name is fine", IDX_NAME_MAX);
	CHECK_EQ(lk(ROOT, name), g, "and found again");
	name[IDX_NAME_MAX] = 'n';
	name[IDX_NAME_MAX + 1] = '\0';
	CHECK_EQ(mk(ROOT, name), -ENAMETOOLONG, "a %d-byte name: mknod -ENAMETOOLONG", IDX_NAME_MAX + 1);
	CHECK_EQ(mkd(ROOT, name), -ENAMETOOLONG, "mkdir -ENAMETOOLONG");
	CHECK_EQ(lk(ROOT, name), -ENAMETOOLONG, "lookup -ENAMETOOLONG");
	CHECK_EQ(store_unlink(st, ROOT, name), -ENAMETOOLONG, "unlink -ENAMETOOLONG");
	CHECK_EQ(store_rmdir(st, ROOT, name), -ENAMETOOLONG, "rmdir -ENAMETOOLONG");
	CHECK_EQ(store_link(st, (uint64_t)f, ROOT, name, NULL), -ENAMETOOLONG, "link -ENAMETOOLONG");
	CHECK_EQ(store_rename(st, ROOT, "f.csv", ROOT, name, 0), -ENAMETOOLONG, "rename to a long name -ENAMETOOLONG");
	CHECK_EQ(store_rename(st, ROOT, name, ROOT, "z", 0), -ENAMETOOLONG, "rename from a long name -ENAMETOOLONG");
	CHECK_EQ(store_symlink(st, ROOT, name, "t", 0, 0, NULL), -ENAMETOOLONG, "symlink -ENAMETOOLONG");

	/* reserved view names: EINVAL on every way of making an entry */
	const char *reserved[] = { "a.csv@rows=1:2", "a.csv@rows=:", "a@rows=abc", "a@part=1/2",
				   "a@part=9/8", "a@part=3", "a@meta", "b@x@meta", "@rows=1:2" };
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		const char *n = reserved[i];
		int r1 = (int)mk(ROOT, n), r2 = (int)mkd(ROOT, n);
		int r3 = store_link(st, (uint64_t)f, ROOT, n, NULL);
		int r4 = store_rename(st, ROOT, "h.txt", ROOT, n, 0);
		int r5 = store_symlink(st, ROOT, n, "target", 0, 0, NULL);
		CHECK(r1 == -EINVAL && r2 == -EINVAL && r3 == -EINVAL && r4 == -EINVAL && r5 == -EINVAL,
		      "'%s' is reserved: mknod/mkdir/link/rename/symlink all -EINVAL (%d %d %d %d %d)", n, r1, r2,
		      r3, r4, r5);
	}
	g = mk(ROOT, "a.csv@metax");
	CHECK(g > 0, "'a.csv@metax' is an ordinary name");
	g = mk(ROOT, "a.csv@rows");
	CHECK(g > 0, "'a.csv@rows' is an ordinary name");
	g = mk(ROOT, "a@rows=1:2@x");
	CHECK(g > 0, "'a@rows=1:2@x' is an ordinary name (last '@' counts)");
	CHECK(lk(ROOT, "h.txt") > 0, "h.txt still there after the refused renames");

	/* symlinks */
	h = 0;
	rc = store_symlink(st, ROOT, "ln", "some/where", 7, 8, &in);
	if (!rc)
		h = (int64_t)in.ino;
	CHECK(rc == 0 && S_ISLNK(in.mode) && in.size == 10, "symlink");
	CHECK_EQ(store_readlink(st, (uint64_t)h, buf, sizeof(buf)), 10, "readlink length");
	CHECK(strcmp(buf, "some/where") == 0, "readlink target");
	CHECK_EQ(store_readlink(st, (uint64_t)h, buf, 10), -ENAMETOOLONG, "readlink into a too small buffer: -ENAMETOOLONG");
	CHECK_EQ(store_readlink(st, (uint64_t)f, buf, sizeof(buf)), -EINVAL, "readlink of a file: -EINVAL");
	CHECK_EQ(store_symlink(st, ROOT, "ln2", "", 0, 0, NULL), -ENOENT, "symlink to an empty target: -ENOENT");
	CHECK_EQ(store_symlink(st, ROOT, "ln", "x", 0, 0, NULL), -EEXIST, "symlink over an existing name: -EEXIST");

	/* setattr */
	{
		struct idx_inode a = { .mode = 04711, .uid = 5, .gid = 6, .atime_ns = 11, .mtime_ns = 22, .ctime_ns = 33 };
		struct idx_inode before = attr((uint64_t)f), out;
		rc = store_setattr(st, (uint64_t)f, &a, STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID |
				   STORE_SET_ATIME | STORE_SET_MTIME | STORE_SET_CTIME, &out);
		in = attr((uint64_t)f);
		CHECK(rc == 0 && in.mode == (S_IFREG | 04711) && in.uid == 5 && in.gid == 6 && in.atime_ns == 11 &&
		      in.mtime_ns == 22 && in.ctime_ns == 33 && inode_same(&in, &out),
		      "setattr of mode (type kept), uid, gid, atime, mtime, ctime");
		CHECK(in.size == before.size && in.version == before.version && in.nlink == before.nlink,
		      "setattr leaves size, version and nlink alone");
		rc = store_setattr(st, (uint64_t)f, &a, STORE_SET_UID, NULL);
		in = attr((uint64_t)f);
		CHECK(rc == 0 && in.ctime_ns > 33 && in.mtime_ns == 22, "setattr without SET_CTIME sets ctime to now");
		CHECK_EQ(store_setattr(st, 999999, &a, STORE_SET_UID, NULL), -ENOENT, "setattr of a missing inode: -ENOENT");
	}
	rc = store_statfs(st, &sv);
	CHECK(rc == 0 && sv.f_namemax == IDX_NAME_MAX, "statfs: f_namemax %d", IDX_NAME_MAX);
	check_tree("creation");
}

static void test_readdir(void)
{
	int64_t d = mkd(ROOT, "rd");
	const char *names[] = { "m", "b", "a", "zz", "c.csv", "B" };
	struct entlist l;
	int ok = 1;

	for (size_t i = 0; i < 6; i++)
		ok &= mk((uint64_t)d, names[i]) > 0;
	ok &= mkd((uint64_t)d, "sub") > 0;
	CHECK(ok, "made 7 entries in rd");
	l = list_dir((uint64_t)d);
	CHECK(l.n == 7 && !strcmp(l.v[0].name, "B") && !strcmp(l.v[1].name, "a") && !strcmp(l.v[2].name, "b") &&
	      !strcmp(l.v[3].name, "c.csv") && !strcmp(l.v[4].name, "m") && !strcmp(l.v[5].name, "sub") &&
	      !strcmp(l.v[6].name, "zz"), "readdir lists all 7 in name order");
	CHECK(l.n == 7 && l.v[5].type == S_IFDIR && l.v[0].type == S_IFREG, "readdir passes the file type");
	free(l.v);
	memset(&l, 0, sizeof(l));
	store_readdir(st, (uint64_t)d, "c.csv", ent_cb, &l);
	CHECK(l.n == 3 && !strcmp(l.v[0].name, "m"), "readdir after 'c.csv' resumes at 'm'");
	free(l.v);
	memset(&l, 0, sizeof(l));
	store_readdir(st, (uint64_t)d, "c", ent_cb, &l);
	CHECK(l.n == 4 && !strcmp(l.v[0].name, "c.csv"), "readdir after a removed name 'c' resumes at 'c.csv'");
	free(l.v);
	memset(&l, 0, sizeof(l));
	CHECK_EQ(store_readdir(st, (uint64_t)lk((uint64_t)d, "m"), NULL, ent_cb, &l), -ENOTDIR, "readdir of a file: -ENOTDIR");
	CHECK_EQ(store_readdir(st, 999999, NULL, ent_cb, &l), -ENOENT, "readdir of a missing inode: -ENOENT");
	free(l.v);
}

static void test_links(void)
{
	int64_t d = mkd(ROOT, "lnk"), f = mk((uint64_t)d, "f"), sub = mkd((uint64_t)d, "sub");
	struct idx_inode in;
	int rc;

	rc = store_link(st, (uint64_t)f, (uint64_t)sub, "f2", &in);
	CHECK(rc == 0 && in.nlink == 2 && nlink_of((uint64_t)f) == 2, "link: nlink 2");
	CHECK_EQ(lk((uint64_t)sub, "f2"), f, "the new name finds the same inode");
	rc = store_link(st, (uint64_t)f, (uint64_t)d, "f3", NULL);
	CHECK(rc == 0 && nlink_of((uint64_t)f) == 3, "link again: nlink 3");
	check_tree("links");
	CHECK_EQ(store_link(st, (uint64_t)sub, ROOT, "subl", NULL), -EPERM, "link of a directory: -EPERM");
	CHECK_EQ(store_link(st, (uint64_t)f, (uint64_t)d, "f", NULL), -EEXIST, "link over an existing name: -EEXIST");
	CHECK_EQ(store_link(st, (uint64_t)f, (uint64_t)f, "x", NULL), -ENOTDIR, "link into a file: -ENOTDIR");
	CHECK_EQ(store_link(st, 999999, (uint64_t)d, "x", NULL), -ENOENT, "link of a missing inode: -ENOENT");
	CHECK_EQ(store_unlink(st, (uint64_t)d, "f"), 0, "unlink one name");
	CHECK_EQ(nlink_of((uint64_t)f), 2, "nlink 2");
	CHECK_EQ(store_unlink(st, (uint64_t)d, "f"), -ENOENT, "unlink it again: -ENOENT");
	CHECK_EQ(store_unlink(st, (uint64_t)d, "sub"), -EISDIR, "unlink of a directory: -EISDIR");
	CHECK_EQ(store_unlink(st, (uint64_t)f, "x"), -ENOTDIR, "unlink under a file: -ENOTDIR");
	CHECK_EQ(store_rmdir(st, (uint64_t)d, "f3"), -ENOTDIR, "rmdir of a file: -ENOTDIR");
	CHECK_EQ(store_rmdir(st, (uint64_t)d, "sub"), -ENOTEMPTY, "rmdir of a non-empty directory: -ENOTEMPTY");
	CHECK_EQ(store_rmdir(st, (uint64_t)d, "."), -EINVAL, "rmdir '.': -EINVAL");
	CHECK_EQ(store_rmdir(st, (uint64_t)d, ".."), -ENOTEMPTY, "rmdir '..': -ENOTEMPTY");
	CHECK_EQ(store_rmdir(st, (uint64_t)d, "nope"), -ENOENT, "rmdir of a missing name: -ENOENT");
	CHECK_EQ(store_unlink(st, (uint64_t)sub, "f2"), 0, "unlink f2");
	CHECK_EQ(nlink_of((uint64_t)d), 3, "lnk nlink 3 (one subdir)");
	CHECK_EQ(store_rmdir(st, (uint64_t)d, "sub"), 0, "rmdir of the now empty sub");
	CHECK_EQ(nlink_of((uint64_t)d), 2, "lnk nlink 2 after rmdir");
	CHECK_EQ(attr((uint64_t)sub).ino, 0, "the removed directory's inode is gone");
	CHECK_EQ(lk((uint64_t)d, "sub"), -ENOENT, "and its name");
	CHECK_EQ(nlink_of((uint64_t)f), 1, "f3 holds the last link");
	CHECK_EQ(store_unlink(st, (uint64_t)d, "f3"), 0, "unlink the last name");
	in = attr((uint64_t)f);
	CHECK(in.ino == (uint64_t)f && in.nlink == 0, "an unlinked inode stays (nlink 0) until forgotten");
	CHECK_EQ(store_link(st, (uint64_t)f, (uint64_t)d, "back", NULL), -ENOENT, "link of an unlinked inode: -ENOENT");
	CHECK_EQ(store_forget(st, (uint64_t)f), 0, "store_forget");
	CHECK_EQ(attr((uint64_t)f).ino, 0, "forgotten: the inode is gone");
	CHECK_EQ(store_rmdir(st, ROOT, "lnk"), 0, "rmdir lnk");
	check_tree("unlink/rmdir");
}

/* A setgid directory gives its group to what is created in it, and its
 * setgid bit to new directories (ns.c (5)). */
static void test_setgid(void)
{
	struct idx_inode dir, in;
	int rc = store_mkdir(st, ROOT, "sg", 02777, 0, 500, &dir);

	CHECK(rc == 0 && (dir.mode & 07777) == 02777 && dir.gid == 500, "a setgid directory of group 500");
	rc = store_mknod(st, dir.ino, "f", S_IFREG | 0644, 0, 1000, 1000, &in);
	CHECK(rc == 0 && in.gid == 500 && in.uid == 1000 && (in.mode & 07777) == 0644,
	      "a file made in it by 1000:1000 gets group 500, no setgid bit");
	rc = store_mkdir(st, dir.ino, "d", 0755, 1000, 1000, &in);
	CHECK(rc == 0 && in.gid == 500 && (in.mode & 07777) == 02755,
	      "a directory gets group 500 and the setgid bit (mode %o)", in.mode & 07777);
	rc = store_symlink(st, dir.ino, "l", "f", 1000, 1000, &in);
	CHECK(rc == 0 && in.gid == 500, "a symlink gets group 500");
	rc = store_mknod(st, ROOT, "plain", S_IFREG | 0644, 0, 1000, 1000, &in);
	CHECK(rc == 0 && in.gid == 1000, "outside it, the creator's group");
	check_tree("setgid");
}

/* A file's 65,001st link is EMLINK, as on ext4. */
static void test_emlink(void)
{
	int64_t d = mkd(ROOT, "ml"), f = mk((uint64_t)d, "f");
	char name[32];
	int rc = 0, i;

	for (i = 1; i < 65000 && !rc; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		rc = store_link(st, (uint64_t)f, (uint64_t)d, name, NULL);
	}
	CHECK(rc == 0 && nlink_of((uint64_t)f) == 65000, "65000 links (rc %d at %d)", rc, i);
	CHECK_EQ(store_link(st, (uint64_t)f, (uint64_t)d, "one-more", NULL), -EMLINK, "one more: -EMLINK");
	CHECK_EQ(lk((uint64_t)d, "one-more"), -ENOENT, "and no entry was made");
	CHECK_EQ(store_unlink(st, (uint64_t)d, "l1"), 0, "unlink one");
	CHECK_EQ(store_link(st, (uint64_t)f, (uint64_t)d, "one-more", NULL), 0, "then the link works");
}

static void test_rename(void)
{
	int64_t p1 = mkd(ROOT, "p1"), p2 = mkd(ROOT, "p2");
	int64_t a = mk((uint64_t)p1, "a"), b = mk((uint64_t)p1, "b"), c = mk((uint64_t)p2, "c");
	int64_t d = mkd((uint64_t)p1, "d"), e = mkd((uint64_t)p2, "e"), full = mkd((uint64_t)p2, "full");
	int64_t deep = mkd((uint64_t)d, "deep"), inner = mk((uint64_t)deep, "inner"), x;
	struct idx_inode before;

	(void)mk((uint64_t)full, "occupant");
	check_tree("rename setup");

	/* plain moves */
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p1, "a2", 0), 0, "rename a -> a2 in one dir");
	CHECK(lk((uint64_t)p1, "a") == -ENOENT && lk((uint64_t)p1, "a2") == a, "a2 is a's inode, a is gone");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a2", (uint64_t)p2, "a", 0), 0, "rename p1/a2 -> p2/a");
	CHECK(lk((uint64_t)p2, "a") == a && nlink_of((uint64_t)a) == 1, "moved across directories, nlink 1");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "d", (uint64_t)p2, "d", 0), 0, "rename dir p1/d -> p2/d");
	CHECK(attr((uint64_t)d).parent == (uint64_t)p2 && nlink_of((uint64_t)p1) == 2 &&
	      nlink_of((uint64_t)p2) == 5, "moved dir: parent field p2, p1 nlink 2, p2 nlink 5");
	CHECK_EQ(lk((uint64_t)deep, "inner"), inner, "the subtree moved with it");
	check_tree("moves");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "a", (uint64_t)p2, "a", 0), 0, "rename onto itself: 0");
	CHECK_EQ(lk((uint64_t)p2, "a"), a, "still there");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "nope", (uint64_t)p1, "x", 0), -ENOENT, "rename of a missing name: -ENOENT");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "a", (uint64_t)a, "x", 0), -ENOTDIR, "rename into a file: -ENOTDIR");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "a", (uint64_t)p1, "", 0), -EINVAL, "rename to an empty name: -EINVAL");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "a", (uint64_t)p1, "x", RENAME_NOREPLACE | RENAME_EXCHANGE),
		 -EINVAL, "NOREPLACE|EXCHANGE: -EINVAL");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "a", (uint64_t)p1, "x", 0x80), -EINVAL, "unknown flag: -EINVAL");

	/* NOREPLACE */
	CHECK_EQ(store_rename(st, (uint64_t)p2, "a", (uint64_t)p1, "b", RENAME_NOREPLACE), -EEXIST,
		 "RENAME_NOREPLACE over an existing name: -EEXIST");
	CHECK(lk((uint64_t)p2, "a") == a && lk((uint64_t)p1, "b") == b, "both unchanged");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "a", (uint64_t)p1, "a", RENAME_NOREPLACE), 0,
		 "RENAME_NOREPLACE to a free name");
	CHECK_EQ(lk((uint64_t)p1, "a"), a, "moved");

	/* EXCHANGE */
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p1, "b", RENAME_EXCHANGE), 0, "RENAME_EXCHANGE of two files");
	CHECK(lk((uint64_t)p1, "a") == b && lk((uint64_t)p1, "b") == a, "names swapped");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p2, "e", RENAME_EXCHANGE), 0,
		 "RENAME_EXCHANGE of a file and a directory across parents");
	CHECK(lk((uint64_t)p1, "a") == e && lk((uint64_t)p2, "e") == b, "swapped across parents");
	CHECK(attr((uint64_t)e).parent == (uint64_t)p1 && nlink_of((uint64_t)p1) == 3 && nlink_of((uint64_t)p2) == 4,
	      "exchanged dir: parent p1; p1 nlink 3, p2 nlink 4");
	check_tree("exchange");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p2, "nope", RENAME_EXCHANGE), -ENOENT,
		 "RENAME_EXCHANGE with a missing target: -ENOENT");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "d", (uint64_t)deep, "inner", RENAME_EXCHANGE), -EINVAL,
		 "RENAME_EXCHANGE of a dir with an entry inside it: -EINVAL");
	CHECK_EQ(store_rename(st, (uint64_t)deep, "inner", (uint64_t)p2, "d", RENAME_EXCHANGE), -EINVAL,
		 "RENAME_EXCHANGE of an entry with a dir holding it: -EINVAL");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p1, "a", RENAME_EXCHANGE), 0,
		 "RENAME_EXCHANGE of a name with itself: 0");
	check_tree("refused exchanges");

	/* into its own subtree */
	CHECK_EQ(store_rename(st, (uint64_t)p2, "d", (uint64_t)deep, "x", 0), -EINVAL, "dir into its own subdir: -EINVAL");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "d", (uint64_t)d, "x", 0), -EINVAL, "dir into itself: -EINVAL");
	CHECK_EQ(store_rename(st, ROOT, "p2", (uint64_t)deep, "p2", 0), -EINVAL, "dir into a deeper descendant: -EINVAL");
	CHECK(lk((uint64_t)p2, "d") == d && attr((uint64_t)d).parent == (uint64_t)p2, "d unchanged");

	/* replace a file: atomic, the old inode becomes an orphan */
	CHECK_EQ(tst_put_data(st, (uint64_t)c, "old c\n", 6), 0, "c holds data");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "b", (uint64_t)p2, "c", 0), 0, "rename p1/b over p2/c");
	CHECK_EQ(lk((uint64_t)p2, "c"), a, "p2/c is now b's former inode");
	before = attr((uint64_t)c);
	CHECK(before.ino == (uint64_t)c && before.nlink == 0, "the replaced inode survives with nlink 0 (orphan)");
	CHECK(obj_equals((uint64_t)c, "old c\n", 6), "and its data is still readable until forgotten");
	CHECK_EQ(store_forget(st, (uint64_t)c), 0, "forget the replaced inode");
	CHECK_EQ(attr((uint64_t)c).ino, 0, "gone");
	check_tree("replace a file");

	/* replace by a file a hard link of itself: nothing happens */
	CHECK_EQ(store_link(st, (uint64_t)a, (uint64_t)p2, "alias", NULL), 0, "hard link alias");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "c", (uint64_t)p2, "alias", 0), 0, "rename over a hard link of the same inode: 0");
	CHECK(lk((uint64_t)p2, "c") == a && lk((uint64_t)p2, "alias") == a && nlink_of((uint64_t)a) == 2,
	      "both names remain (POSIX: same inode, no-op)");
	CHECK_EQ(store_unlink(st, (uint64_t)p2, "alias"), 0, "unlink alias");

	/* dirs and files crossing */
	CHECK_EQ(store_rename(st, (uint64_t)p2, "c", (uint64_t)p1, "a", 0), -EISDIR, "file over a directory: -EISDIR");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p2, "c", 0), -ENOTDIR, "directory over a file: -ENOTDIR");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p2, "full", 0), -ENOTEMPTY,
		 "directory over a non-empty directory: -ENOTEMPTY");
	CHECK(lk((uint64_t)p1, "a") == e && lk((uint64_t)p2, "full") == full, "unchanged after the refusals");
	check_tree("refused replacements");

	/* replace an empty dir, across parents and within one */
	x = mkd((uint64_t)p2, "empty");
	CHECK_EQ(store_rename(st, (uint64_t)p1, "a", (uint64_t)p2, "empty", 0), 0, "dir over an empty dir across parents");
	CHECK(lk((uint64_t)p2, "empty") == e && attr((uint64_t)x).ino == 0 && attr((uint64_t)e).parent == (uint64_t)p2,
	      "the empty dir is gone, the moved dir's parent is p2");
	CHECK(nlink_of((uint64_t)p1) == 2 && nlink_of((uint64_t)p2) == 5, "p1 nlink 2, p2 nlink 5");
	check_tree("replace an empty dir across parents");
	x = mkd((uint64_t)p2, "empty2");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "empty", (uint64_t)p2, "empty2", 0), 0, "dir over an empty dir in one parent");
	CHECK(lk((uint64_t)p2, "empty2") == e && attr((uint64_t)x).ino == 0 && nlink_of((uint64_t)p2) == 5,
	      "replaced; p2 nlink 5");
	check_tree("replace an empty dir in one parent");
	CHECK_EQ(store_rename(st, (uint64_t)p2, "empty2", ROOT, "p1", 0), 0, "dir over an empty dir one level up");
	CHECK(lk(ROOT, "p1") == e && attr((uint64_t)p1).ino == 0 && attr((uint64_t)e).parent == ROOT,
	      "p1 replaced by e, e's parent is root");
	check_tree("replace an empty dir one level up");
	CHECK_EQ(store_rename(st, (uint64_t)deep, "inner", ROOT, "p2", 0), -EISDIR, "file over a dir holding it: -EISDIR");
	CHECK_EQ(store_rename(st, ROOT, "p2", (uint64_t)p2, "p2", 0), -EINVAL, "dir into itself with its own name: -EINVAL");
	check_tree("rename");
}

/* ---- xattrs ---- */

static ssize_t getx(uint64_t ino, const char *name, char *buf, size_t cap)
{
	ssize_t n = store_getxattr(st, ino, name, buf, cap);

	if (n >= 0 && (size_t)n < cap)
		buf[n] = '\0';
	return n;
}

static int getx_is(uint64_t ino, const char *name, const char *want)
{
	char buf[256];
	ssize_t n = getx(ino, name, buf, sizeof(buf));

	if (n < 0 || strcmp(buf, want) != 0) {
		printf("#   %s = %s (rc %zd), want '%s'\n", name, n < 0 ? "error" : buf, n, want);
		return 0;
	}
	return 1;
}

static int setx(uint64_t ino, const char *name, const char *val, int flags)
{
	return store_setxattr(st, ino, name, val, strlen(val), flags);
}

static int count_cb(void *arg, const char *name)
{
	(void)name;
	(*(int *)arg)++;
	return 0;
}

static void test_xattrs(void)
{
	int64_t f = mk(ROOT, "x.csv"), d = mkd(ROOT, "xd"), l;
	struct idx_inode before, after;
	char buf[1024], idbuf[32];
	ssize_t n;
	int rc;

	rc = store_symlink(st, ROOT, "xl", "x.csv", 0, 0, &before);
	l = rc ? rc : (int64_t)before.ino;
	CHECK(getx_is((uint64_t)f, "user.payload.format", "lines"), "format: lines");
	CHECK(getx_is((uint64_t)f, "user.payload.header", "1"), "header: 1 (csv)");
	CHECK(getx_is((uint64_t)f, "user.payload.storage", "disk"), "storage: disk");
	CHECK(getx_is((uint64_t)f, "user.payload.rows", "0"), "rows: 0");
	CHECK(getx_is((uint64_t)f, "user.payload.version", "0"), "version: 0");
	CHECK(getx_is((uint64_t)f, "user.payload.fragments", "0"), "fragments: 0");
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, f);
	CHECK(getx_is((uint64_t)f, "user.payload.id", idbuf), "id: the inode number");

	/* figures are read-only */
	const char *figs[] = { "user.payload.rows", "user.payload.version", "user.payload.fragments", "user.payload.id" };
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(setx((uint64_t)f, figs[i], "5", 0), -EPERM, "set %s: -EPERM", figs[i]);
		CHECK_EQ(store_removexattr(st, (uint64_t)f, figs[i]), -EPERM, "remove %s: -EPERM", figs[i]);
	}

	/* data, then figures */
	CHECK_EQ(tst_put_data(st, (uint64_t)f, "id,v\n1,a\n2,b\n3,c", 17), 0, "write 4 rows (header + 3, last without \\n)");
	CHECK(getx_is((uint64_t)f, "user.payload.rows", "3"), "rows: 3 data rows");
	CHECK(getx_is((uint64_t)f, "user.payload.version", "1"), "version: 1");
	CHECK(getx_is((uint64_t)f, "user.payload.fragments", "0"), "fragments: 0 (inline)");
	CHECK_EQ(setx((uint64_t)f, "user.payload.header", "0", 0), 0, "set header 0");
	CHECK(getx_is((uint64_t)f, "user.payload.rows", "4"), "rows: 4 with no header");
	CHECK_EQ(setx((uint64_t)f, "user.payload.header", "9", 0), 0, "set header 9 (more than the rows)");
	CHECK(getx_is((uint64_t)f, "user.payload.rows", "0"), "rows: 0, not negative");
	CHECK_EQ(setx((uint64_t)f, "user.payload.header", "1\n", 0), 0, "header '1\\n' (echo style) accepted");
	CHECK(getx_is((uint64_t)f, "user.payload.header", "1"), "header: 1");

	/* bad values: -EINVAL and nothing changes */
	struct { const char *name, *val; } bad[] = {
		{ "user.payload.format", "" }, { "user.payload.format", "fixed:" },
		{ "user.payload.format", "fixed:0" }, { "user.payload.format", "fixed:-1" },
		{ "user.payload.format", "fixed:abc" }, { "user.payload.format", "fixed:4x" },
		{ "user.payload.format", "fixed: 4" }, { "user.payload.format", "fixed:16777217" },
		{ "user.payload.format", "FIXED:4" }, { "user.payload.format", "line" },
		{ "user.payload.format", "lines " }, { "user.payload.format", "fixed:99999999999999999999" },
		{ "user.payload.header", "" }, { "user.payload.header", "abc" }, { "user.payload.header", "-1" },
		{ "user.payload.header", "1x" }, { "user.payload.header", " 1" }, { "user.payload.header", "+1" },
		{ "user.payload.header", "1000001" }, { "user.payload.header", "99999999999999999999999" },
		{ "user.payload.storage", "" }, { "user.payload.storage", "tape" },
		{ "user.payload.storage", "Disk" }, { "user.payload.storage", "memory " },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		before = attr((uint64_t)f);
		rc = store_setxattr(st, (uint64_t)f, bad[i].name, bad[i].val, strlen(bad[i].val), 0);
		after = attr((uint64_t)f);
		CHECK(rc == -EINVAL && inode_same(&before, &after), "%s='%s': -EINVAL (got %d), inode unchanged",
		      bad[i].name, bad[i].val, rc);
	}
	CHECK(obj_equals((uint64_t)f, "id,v\n1,a\n2,b\n3,c", 17), "data unchanged by the refused settings");

	/* XATTR_CREATE / REPLACE on settings */
	CHECK_EQ(setx((uint64_t)f, "user.payload.header", "2", XATTR_CREATE), -EEXIST,
		 "XATTR_CREATE of an object's setting (always present): -EEXIST");
	CHECK_EQ(setx((uint64_t)f, "user.payload.header", "2", XATTR_REPLACE), 0, "XATTR_REPLACE of it: 0");
	CHECK_EQ(setx((uint64_t)d, "user.payload.header", "2", XATTR_REPLACE), -ENODATA,
		 "XATTR_REPLACE of a directory's unset setting: -ENODATA");
	CHECK_EQ(getx((uint64_t)d, "user.payload.header", buf, sizeof(buf)), -ENODATA, "a dir without the setting: -ENODATA");
	CHECK_EQ(setx((uint64_t)d, "user.payload.header", "2", XATTR_CREATE), 0, "XATTR_CREATE on the dir: 0");
	CHECK_EQ(setx((uint64_t)d, "user.payload.header", "3", XATTR_CREATE), -EEXIST, "XATTR_CREATE again: -EEXIST");
	CHECK(getx_is((uint64_t)d, "user.payload.header", "2"), "dir header: 2");
	CHECK_EQ(getx((uint64_t)d, "user.payload.rows", buf, sizeof(buf)), -ENODATA, "a dir has no figures: -ENODATA");
	CHECK_EQ(store_removexattr(st, (uint64_t)f, "user.payload.header"), -EPERM, "remove an object's setting: -EPERM");
	CHECK_EQ(store_removexattr(st, (uint64_t)d, "user.payload.header"), 0, "remove a dir's setting");
	CHECK_EQ(getx((uint64_t)d, "user.payload.header", buf, sizeof(buf)), -ENODATA, "gone");
	CHECK_EQ(store_removexattr(st, (uint64_t)d, "user.payload.header"), -ENODATA, "remove it again: -ENODATA");
	CHECK_EQ(setx((uint64_t)l, "user.payload.format", "lines", 0), -EPERM, "a setting on a symlink: -EPERM");
	CHECK_EQ(getx((uint64_t)l, "user.payload.format", buf, sizeof(buf)), -ENODATA, "a symlink has no settings");

	/* other user.* */
	CHECK_EQ(getx((uint64_t)f, "user.color", buf, sizeof(buf)), -ENODATA, "get a missing user.color: -ENODATA");
	CHECK_EQ(setx((uint64_t)f, "user.color", "red", XATTR_REPLACE), -ENODATA, "XATTR_REPLACE of a missing one: -ENODATA");
	CHECK_EQ(setx((uint64_t)f, "user.color", "red", XATTR_CREATE), 0, "XATTR_CREATE user.color");
	CHECK_EQ(setx((uint64_t)f, "user.color", "blue", XATTR_CREATE), -EEXIST, "XATTR_CREATE again: -EEXIST");
	CHECK(getx_is((uint64_t)f, "user.color", "red"), "user.color: red");
	CHECK_EQ(setx((uint64_t)f, "user.color", "blue", XATTR_REPLACE), 0, "XATTR_REPLACE");
	CHECK(getx_is((uint64_t)f, "user.color", "blue"), "user.color: blue");
	CHECK_EQ(store_getxattr(st, (uint64_t)f, "user.color", NULL, 0), 4, "size query (cap 0): 4");
	CHECK_EQ(store_getxattr(st, (uint64_t)f, "user.color", buf, 2), -ERANGE, "a too small buffer: -ERANGE");
	CHECK_EQ(store_setxattr(st, (uint64_t)f, "user.bin", "a\0b", 3, 0), 0, "a value with a NUL byte");
	n = store_getxattr(st, (uint64_t)f, "user.bin", buf, sizeof(buf));
	CHECK(n == 3 && memcmp(buf, "a\0b", 3) == 0, "reads back whole");
	CHECK_EQ(store_setxattr(st, (uint64_t)f, "user.empty", "", 0, 0), 0, "an empty value");
	CHECK_EQ(store_getxattr(st, (uint64_t)f, "user.empty", buf, sizeof(buf)), 0, "reads back empty");
	{
		char *big = calloc(1, STORE_XATTR_MAX + 1);
		CHECK_EQ(store_setxattr(st, (uint64_t)f, "user.big", big, STORE_XATTR_MAX, 0), 0, "a value of STORE_XATTR_MAX bytes");
		CHECK_EQ(store_setxattr(st, (uint64_t)f, "user.big", big, STORE_XATTR_MAX + 1, 0), -E2BIG, "one byte more: -E2BIG");
		free(big);
	}
	{
		char lname[300];
		memset(lname, 'q', sizeof(lname));
		memcpy(lname, "user.", 5);
		lname[IDX_NAME_MAX + 1] = '\0';
		CHECK_EQ(setx((uint64_t)f, lname, "v", 0), -ERANGE, "a name longer than %d: -ERANGE", IDX_NAME_MAX);
	}
	CHECK_EQ(setx((uint64_t)f, "trusted.x", "v", 0), -ENOTSUP, "trusted.*: -ENOTSUP");
	CHECK_EQ(setx((uint64_t)f, "security.x", "v", 0), -ENOTSUP, "security.*: -ENOTSUP");
	CHECK_EQ(getx((uint64_t)f, "trusted.x", buf, sizeof(buf)), -ENODATA, "get trusted.*: -ENODATA");
	CHECK_EQ(store_removexattr(st, (uint64_t)f, "trusted.x"), -ENODATA, "remove trusted.*: -ENODATA");
	CHECK_EQ(setx(999999, "user.a", "v", 0), -ENOENT, "xattr on a missing inode: -ENOENT");

	/* list */
	{
		const char want[] = "user.payload.format\0user.payload.header\0user.payload.storage\0user.payload.rows\0"
				    "user.payload.version\0user.payload.fragments\0user.payload.id\0user.big\0user.bin\0"
				    "user.color\0user.empty\0";
		n = store_listxattr(st, (uint64_t)f, NULL, 0);
		CHECK_EQ(n, (ssize_t)sizeof(want) - 1, "listxattr size query");
		n = store_listxattr(st, (uint64_t)f, buf, sizeof(buf));
		CHECK(n == (ssize_t)sizeof(want) - 1 && memcmp(buf, want, sizeof(want) - 1) == 0,
		      "listxattr: the 7 payload names, then user.* in order");
		CHECK_EQ(store_listxattr(st, (uint64_t)f, buf, 10), -ERANGE, "listxattr into a small buffer: -ERANGE");
		n = store_listxattr(st, (uint64_t)d, buf, sizeof(buf));
		CHECK_EQ(n, 0, "a dir without settings lists nothing");
		setx((uint64_t)d, "user.payload.storage", "memory", 0);
		n = store_listxattr(st, (uint64_t)d, buf, sizeof(buf));
		CHECK(n == 21 && memcmp(buf, "user.payload.storage", 21) == 0, "a dir lists only its explicit settings");
		store_removexattr(st, (uint64_t)d, "user.payload.storage");
	}
	CHECK_EQ(store_removexattr(st, (uint64_t)f, "user.color"), 0, "remove user.color");
	CHECK_EQ(store_removexattr(st, (uint64_t)f, "user.color"), -ENODATA, "remove it again: -ENODATA");
	CHECK_EQ(getx((uint64_t)f, "user.color", buf, sizeof(buf)), -ENODATA, "gone");

	/* xattrs go with the inode */
	CHECK_EQ(store_unlink(st, ROOT, "x.csv"), 0, "unlink x.csv");
	CHECK_EQ(store_forget(st, (uint64_t)f), 0, "forget it");
	{
		struct idx_txn *t;
		int cnt = 0;
		rc = idx_begin(store_idx(st), 1, &t);
		if (!rc) {
			rc = idx_xattr_iter(t, (uint64_t)f, count_cb, &cnt);
			idx_abort(t);
		}
		CHECK(rc == 0 && cnt == 0, "the forgotten inode's xattr records are gone (%d left)", cnt);
	}
}

/* Bounds: the name "user." alone, long names on get/remove, and the room
 * per inode (names fit one listxattr answer; at most STORE_XATTR_TOTAL
 * bytes); a refused call stores nothing. */
static void test_xattr_bounds(void)
{
	int64_t f = mk(ROOT, "xb.txt"), d = mkd(ROOT, "xbd");
	char name[300], lname[300], *big = calloc(1, STORE_XATTR_MAX);
	ssize_t list0, list1;
	int i, rc = 0;

	CHECK_EQ(setx((uint64_t)f, "user.", "v", 0), -EINVAL, "set \"user.\": -EINVAL");
	CHECK_EQ(getx((uint64_t)f, "user.", name, sizeof(name)), -EINVAL, "get \"user.\": -EINVAL");
	CHECK_EQ(store_removexattr(st, (uint64_t)f, "user."), -EINVAL, "remove \"user.\": -EINVAL");
	memset(lname, 'q', sizeof(lname));
	memcpy(lname, "user.", 5);
	lname[IDX_NAME_MAX + 1] = '\0';
	CHECK_EQ(getx((uint64_t)f, lname, name, sizeof(name)), -ERANGE, "get of a too long name: -ERANGE");
	CHECK_EQ(store_removexattr(st, (uint64_t)f, lname), -ERANGE, "remove of a too long name: -ERANGE");
	lname[IDX_NAME_MAX] = '\0';
	CHECK_EQ(setx((uint64_t)f, lname, "v", 0), 0, "a name of %d bytes", IDX_NAME_MAX);

	/* names: 249 bytes each with the NUL, on top of the payload names */
	list0 = store_listxattr(st, (uint64_t)f, NULL, 0);
	for (i = 0; i < 1000 && !rc; i++) {
		snprintf(name, sizeof(name), "user.%03d%0240d", i, 0);
		rc = setx((uint64_t)f, name, "v", 0);
	}
	list1 = store_listxattr(st, (uint64_t)f, NULL, 0);
	CHECK_EQ(rc, -ENOSPC, "adding names stops with -ENOSPC (after %d)", i - 1);
	CHECK(list1 <= STORE_XATTR_LIST_MAX && list1 + 249 > STORE_XATTR_LIST_MAX,
	      "the list (%zd bytes, from %zd) fills but fits one listxattr answer", list1, list0);
	CHECK_EQ(getx((uint64_t)f, name, lname, sizeof(lname)), -ENODATA, "the refused name is not stored");
	snprintf(name, sizeof(name), "user.%03d%0240d", 0, 0);
	CHECK_EQ(setx((uint64_t)f, name, "new value", 0), 0, "an existing name can still change its value");
	CHECK_EQ(store_removexattr(st, (uint64_t)f, name), 0, "remove one");
	CHECK_EQ(setx((uint64_t)f, name, "v", 0), 0, "then there is room for one");

	/* bytes: values of 64 KiB stop at STORE_XATTR_TOTAL */
	rc = 0;
	for (i = 0; i < 100 && !rc && big; i++) {
		snprintf(name, sizeof(name), "user.v%d", i);
		rc = store_setxattr(st, (uint64_t)d, name, big, STORE_XATTR_MAX, 0);
	}
	CHECK_EQ(rc, -ENOSPC, "64 KiB values stop with -ENOSPC");
	CHECK_EQ(i - 1, (int)(STORE_XATTR_TOTAL / (STORE_XATTR_MAX + 9)), "after %d values (1 MiB)", i - 1);
	CHECK_EQ(getx((uint64_t)d, name, lname, sizeof(lname)), -ENODATA, "the refused value is not stored");
	snprintf(name, sizeof(name), "user.v%d", 0);
	CHECK_EQ(store_setxattr(st, (uint64_t)d, name, big, 10, 0), 0, "shrinking a value is allowed");
	snprintf(name, sizeof(name), "user.v%d", i - 1);
	CHECK_EQ(store_setxattr(st, (uint64_t)d, name, big, STORE_XATTR_MAX, 0), 0, "and frees room");
	free(big);
}

/* Format and storage changes of an object with data re-cut it in one commit. */
static void test_recut(void)
{
	int64_t f = mk(ROOT, "rec.bin");
	struct idx_inode before, after;
	size_t big = 40000;
	char *data = malloc(big);
	long files0, files1;
	int rc;

	CHECK_EQ(tst_put_data(st, (uint64_t)f, "abcdefgh", 8), 0, "8 bytes");
	before = attr((uint64_t)f);
	rc = setx((uint64_t)f, "user.payload.format", "fixed:3", 0);
	after = attr((uint64_t)f);
	CHECK(rc == -EINVAL && inode_same(&before, &after), "fixed:3 over 8 bytes: -EINVAL (got %d), nothing changes", rc);
	CHECK_EQ(setx((uint64_t)f, "user.payload.format", "fixed:4\n", 0), 0, "fixed:4 (with '\\n')");
	after = attr((uint64_t)f);
	CHECK(after.fmt_kind == PFMT_FIXED && after.fmt_recsize == 4 && after.rows == 2 && after.version == before.version + 1,
	      "now fixed:4 with 2 rows, one new version");
	CHECK(getx_is((uint64_t)f, "user.payload.format", "fixed:4"), "format reads fixed:4");
	CHECK(getx_is((uint64_t)f, "user.payload.header", "0"), "a fixed object has header 0");
	CHECK_EQ(setx((uint64_t)f, "user.payload.header", "1", 0), -EINVAL, "header 1 on a fixed object: -EINVAL");
	CHECK_EQ(setx((uint64_t)f, "user.payload.header", "0", 0), 0, "header 0 on a fixed object: 0");
	CHECK(obj_equals((uint64_t)f, "abcdefgh", 8), "bytes unchanged by the re-cut");
	CHECK_EQ(setx((uint64_t)f, "user.payload.format", "lines", 0), 0, "back to lines");
	CHECK(attr((uint64_t)f).rows == 1 && getx_is((uint64_t)f, "user.payload.rows", "1"), "1 row (no '\\n')");

	/* a multi-fragment object to memory and back */
	for (size_t i = 0; i < big; i++)
		data[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
	files0 = nfragfiles();
	CHECK_EQ(tst_put_data(st, (uint64_t)f, data, big), 0, "%zu bytes in fragments of %d", big, FRAG);
	files1 = nfragfiles();
	after = attr((uint64_t)f);
	CHECK(after.nfrags >= big / FRAG && files1 - files0 == (long)after.nfrags,
	      "%u fragments, as many new files (%ld)", after.nfrags, files1 - files0);
	CHECK_EQ(setx((uint64_t)f, "user.payload.storage", "memory", 0), 0, "storage=memory");
	CHECK_EQ(nfragfiles(), files0, "the disk images are gone");
	CHECK(obj_equals((uint64_t)f, data, big), "the data reads the same from memory");
	CHECK(getx_is((uint64_t)f, "user.payload.storage", "memory"), "storage reads memory");
	CHECK_EQ(setx((uint64_t)f, "user.payload.storage", "disk", 0), 0, "storage=disk");
	CHECK_EQ(nfragfiles(), files1, "images back on disk");
	CHECK(obj_equals((uint64_t)f, data, big), "the data reads the same from disk");
	before = attr((uint64_t)f);
	rc = setx((uint64_t)f, "user.payload.format", "fixed:7", 0);
	after = attr((uint64_t)f);
	CHECK(rc == -EINVAL && inode_same(&before, &after) && nfragfiles() == files1,
	      "fixed:7 over %zu bytes: -EINVAL, inode and images unchanged", big);
	CHECK_EQ(setx((uint64_t)f, "user.payload.format", "fixed:8", 0), 0, "fixed:8 divides it");
	after = attr((uint64_t)f);
	CHECK(after.rows == big / 8 && obj_equals((uint64_t)f, data, big), "%zu records, same bytes", big / 8);
	CHECK_EQ(store_unlink(st, ROOT, "rec.bin"), 0, "unlink");
	CHECK_EQ(store_forget(st, (uint64_t)f), 0, "forget");
	CHECK_EQ(nfragfiles(), files0, "no images left");
	free(data);
}

static void test_inherit(void)
{
	int64_t hd = mkd(ROOT, "hd"), fx = mkd(ROOT, "fx"), sub, o;
	struct idx_inode in;

	CHECK_EQ(setx((uint64_t)hd, "user.payload.header", "3", 0), 0, "hd: header 3");
	CHECK_EQ(setx((uint64_t)hd, "user.payload.storage", "memory", 0), 0, "hd: storage memory");
	CHECK_EQ(setx((uint64_t)fx, "user.payload.format", "fixed:16", 0), 0, "fx: fixed:16");
	o = mk((uint64_t)hd, "x.txt");
	in = attr((uint64_t)o);
	CHECK(in.header == 3 && (in.flags & INODE_F_MEMORY) && in.fmt_kind == PFMT_LINES,
	      "hd/x.txt inherits header 3 and storage memory");
	CHECK(getx_is((uint64_t)o, "user.payload.storage", "memory"), "... visible as xattrs");
	CHECK_EQ(attr((uint64_t)mk((uint64_t)hd, "y.csv")).header, 3, "hd/y.csv: header 3 (explicit beats the csv default)");
	sub = mkd((uint64_t)hd, "sub");
	CHECK(getx_is((uint64_t)sub, "user.payload.header", "3"), "a subdirectory inherits the explicit setting");
	in = attr((uint64_t)mk((uint64_t)sub, "z.csv"));
	CHECK(in.header == 3 && (in.flags & INODE_F_MEMORY), "hd/sub/z.csv: header 3, memory (two levels)");
	o = mk((uint64_t)fx, "a.csv");
	in = attr((uint64_t)o);
	CHECK(in.fmt_kind == PFMT_FIXED && in.fmt_recsize == 16, "fx/a.csv inherits fixed:16");
	CHECK(getx_is((uint64_t)o, "user.payload.header", "0"), "fx/a.csv: header reads 0 (fixed)");
	CHECK(getx_is((uint64_t)o, "user.payload.format", "fixed:16"), "fx/a.csv: format fixed:16");
	CHECK_EQ(tst_put_data(st, (uint64_t)o, "0123456789abcdef0123456789abcdef", 32), 0, "32 bytes into fx/a.csv");
	CHECK(getx_is((uint64_t)o, "user.payload.rows", "2"), "2 records");
	CHECK_EQ(tst_put_data(st, (uint64_t)o, "0123456789", 10), -EINVAL, "10 bytes into fixed:16: -EINVAL");
	CHECK(obj_equals((uint64_t)o, "0123456789abcdef0123456789abcdef", 32), "old content kept");
	CHECK_EQ(store_removexattr(st, (uint64_t)hd, "user.payload.header"), 0, "hd forgets header");
	CHECK_EQ(attr((uint64_t)mk((uint64_t)hd, "w.csv")).header, 1, "a new hd/w.csv gets the csv default again");
	o = mk((uint64_t)hd, "w.txt");
	CHECK(attr((uint64_t)o).flags & INODE_F_MEMORY, "storage still inherited");
	CHECK_EQ(attr((uint64_t)mk(ROOT, "plain.csv")).flags & INODE_F_MEMORY, 0, "the root passes nothing on");
	CHECK_EQ(attr((uint64_t)sub).header, 3, "existing children keep what they inherited");
}

/* Unlinked but pinned: data stays readable until the last pver goes. */
static void test_pinned(void)
{
	size_t len = 30000;
	char *data = malloc(len);
	int64_t f = mk(ROOT, "pin.txt");
	struct pver *pv = NULL, *pv2 = NULL;
	struct store_stats s0, s1;
	long files0 = nfragfiles(), files1;
	int rc;

	for (size_t i = 0; i < len; i++)
		data[i] = i % 64 == 63 ? '\n' : (char)('0' + i % 10);
	CHECK_EQ(tst_put_data(st, (uint64_t)f, data, len), 0, "write %zu bytes", len);
	files1 = nfragfiles();
	CHECK(files1 > files0, "images written (%ld)", files1 - files0);
	rc = store_pver_get(st, (uint64_t)f, &pv);
	CHECK_EQ(rc, 0, "pin the version");
	if (rc)
		return;
	CHECK_EQ(store_unlink(st, ROOT, "pin.txt"), 0, "unlink");
	CHECK_EQ(lk(ROOT, "pin.txt"), -ENOENT, "the name is gone");
	CHECK_EQ(nlink_of((uint64_t)f), 0, "nlink 0");
	CHECK(pv_equals(pv, data, len), "the pinned version still reads");
	rc = store_pver_get(st, (uint64_t)f, &pv2);
	CHECK(rc == 0 && pv_equals(pv2, data, len), "store_pver_get works until forget (open file after unlink)");
	pver_put(pv2);
	CHECK_EQ(nfragfiles(), files1, "images kept while the inode is only unlinked");
	store_get_stats(st, &s0);
	CHECK_EQ(store_forget(st, (uint64_t)f), 0, "store_forget");
	CHECK_EQ(attr((uint64_t)f).ino, 0, "the inode is gone");
	CHECK_EQ(store_pver_get(st, (uint64_t)f, &pv2), -ENOENT, "store_pver_get after forget: -ENOENT");
	CHECK_EQ(nfragfiles(), files1, "images kept while pinned");
	CHECK(pv_equals(pv, data, len), "the pinned version still reads after forget");
	pver_put(pv);
	CHECK_EQ(nfragfiles(), files0, "the last unpin (and the next index flush) deletes the images");
	store_get_stats(st, &s1);
	CHECK_EQ(s1.frags_deleted - s0.frags_deleted, (uint64_t)(files1 - files0), "frags_deleted counts them");
	CHECK_EQ(store_forget(st, (uint64_t)f), 0, "forget of a gone inode: 0");

	/* a linked inode and a directory are left alone */
	f = mk(ROOT, "linked.txt");
	tst_put_data(st, (uint64_t)f, data, len);
	files1 = nfragfiles();
	CHECK_EQ(store_forget(st, (uint64_t)f), 0, "forget of a linked inode: 0");
	CHECK(attr((uint64_t)f).nlink == 1 && obj_equals((uint64_t)f, data, len) && nfragfiles() == files1,
	      "... which changes nothing");
	CHECK_EQ(store_forget(st, ROOT), 0, "forget of the root: 0");
	CHECK_EQ(attr(ROOT).ino, ROOT, "root still there");

	/* unlinked and never forgotten: the sweep at the next open frees it */
	CHECK_EQ(store_unlink(st, ROOT, "linked.txt"), 0, "unlink linked.txt, no forget");
	store_close(st);
	st = NULL;
	st = open_store(0, 0);
	CHECK_EQ(attr((uint64_t)f).nlink, 0, "reopened without sweep: the orphan is still there");
	store_close(st);
	st = NULL;
	/* what a crash leaves: an image no record names, a staging file */
	{
		char path[4500];
		FILE *fp;
		snprintf(path, sizeof(path), "%s/ab/%016" PRIx64 ".frag", fragdir, (uint64_t)STRAY_ID);
		fp = fopen(path, "w");
		if (fp) {
			fputs("junk", fp);
			fclose(fp);
		}
		snprintf(path, sizeof(path), "%s/staging/123.1.stage", sdir);
		fp = fopen(path, "w");
		if (fp) {
			fputs("junk", fp);
			fclose(fp);
		}
	}
	CHECK_EQ(nfragfiles(), files0 + 1 + (files1 - files0), "a stray image planted");
	st = open_store(0, 1);
	CHECK_EQ(attr((uint64_t)f).ino, 0, "reopened with sweep: the orphan is gone");
	CHECK_EQ(nfragfiles(), files0, "and its images, and the stray image");
	{
		char path[4500];
		snprintf(path, sizeof(path), "%s/staging", sdir);
		CHECK_EQ(tut_count_files(path, NULL), 0, "the sweep emptied staging/");
	}
	/* fragment ids are never reused: new ones start above the stray id */
	f = mk(ROOT, "after-sweep.txt");
	CHECK_EQ(tst_put_data(st, (uint64_t)f, data, len), 0, "write after the sweep");
	{
		struct pver *p3 = NULL;
		int above = store_pver_get(st, (uint64_t)f, &p3) == 0 && pver_nfrags(p3) > 0;
		for (uint32_t i = 0; above && i < pver_nfrags(p3); i++)
			above = pver_frag(p3, i)->id > STRAY_ID;
		pver_put(p3);
		CHECK(above, "new fragment ids are above every id seen on disk (store.c invariant 3)");
	}
	free(data);
}

/* An unlinked storage=memory object with data is both an orphan and a
 * memory object to empty: the sweep destroys it once and must not then
 * fail on it (it did: ENOENT aborted the sweep's txn, and every later
 * mount failed, reported as an unknown format version). Found by the crash
 * harness (tests/crash). */
static void test_memory_orphan(void)
{
	const char *data = "id,v\n1,2\n3,4\n";
	struct store_opts o = { .fragment_size = FRAG, .sweep = 1 };
	int64_t d = mkd(ROOT, "memdir"), gone, kept;
	int rc;

	CHECK_EQ(setx((uint64_t)d, "user.payload.storage", "memory", 0), 0, "memdir: storage=memory");
	gone = mk((uint64_t)d, "gone.csv");
	kept = mk((uint64_t)d, "kept.csv");
	CHECK(tst_put_data(st, (uint64_t)gone, data, strlen(data)) == 0 &&
	      tst_put_data(st, (uint64_t)kept, data, strlen(data)) == 0, "two memory objects with data");
	CHECK_EQ(store_unlink(st, (uint64_t)d, "gone.csv"), 0, "unlink one, never forgotten (as in a crash)");
	store_close(st);
	st = NULL;
	rc = store_open(sdir, &o, &st);
	CHECK_EQ(rc, 0, "the sweeping open succeeds (%s)", rc ? store_strerror(rc) : "ok");
	if (rc) {
		st = open_store(0, 0);
		return;
	}
	CHECK_EQ(attr((uint64_t)gone).ino, 0, "the unlinked memory object is freed");
	CHECK(attr((uint64_t)kept).ino == (uint64_t)kept && attr((uint64_t)kept).size == 0,
	      "the linked one is emptied (its data lived in the previous process)");
	store_close(st);
	st = open_store(0, 1);
	CHECK_EQ(lk((uint64_t)d, "kept.csv"), kept, "and the next sweeping open works too");
}

static void test_open(void)
{
	char dir[4300], path[4400];
	struct store_opts o = { .create = 1 };
	struct store *s = (void *)1;
	int64_t f;
	FILE *fp;

	/* persistence */
	f = mk(ROOT, "persist.csv");
	tst_put_data(st, (uint64_t)f, "a,b\n1,2\n", 8);
	setx((uint64_t)f, "user.note", "kept", 0);
	store_close(st);
	st = NULL;
	st = open_store(0, 1);
	CHECK_EQ(lk(ROOT, "persist.csv"), f, "entries persist across close/open");
	CHECK(obj_equals((uint64_t)f, "a,b\n1,2\n", 8), "data persists");
	CHECK(getx_is((uint64_t)f, "user.note", "kept"), "xattrs persist");
	check_tree("reopen");

	snprintf(dir, sizeof(dir), "%s/missing", tmp);
	CHECK_EQ(store_open(dir, &o, &s), -ENOENT, "store_open of a missing dir: -ENOENT");
	CHECK(s == NULL, "... and the out-pointer is NULL");
	snprintf(dir, sizeof(dir), "%s/busy", tmp);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/other-file", dir);
	fp = fopen(path, "w");
	if (fp)
		fclose(fp);
	CHECK_EQ(store_open(dir, &o, &s), -ENOTEMPTY, "store_open(create) of a non-empty non-store dir: -ENOTEMPTY");
	o.create = 0;
	CHECK_EQ(store_open(dir, &o, &s), -ENOENT, "store_open without create of a non-store dir: -ENOENT");
	CHECK_EQ(store_open(path, &o, &s), -ENOTDIR, "store_open of a file: -ENOTDIR");
	snprintf(dir, sizeof(dir), "%s/fresh", tmp);
	mkdir(dir, 0700);
	o.create = 1;
	CHECK_EQ(store_open(dir, &o, &s), 0, "store_open(create) of an empty dir");
	store_close(s);
	o.create = 0;
	o.rdonly = 1;
	CHECK_EQ(store_open(dir, &o, &s), 0, "reopen read-only");
	if (s) {
		struct idx_inode in;
		CHECK_EQ(store_mknod(s, ROOT, "x", S_IFREG | 0644, 0, 0, 0, &in), -EROFS, "mknod on a read-only store: -EROFS");
		store_close(s);
	}
	store_close(NULL);

	/* a store of another format version */
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		unsigned char v[4] = { 9, 0, 0, 0 };
		MDB_val k = { 6, (void *)"format" }, val = { 4, v };
		int rc;
		snprintf(path, sizeof(path), "%s/index", dir);
		rc = mdb_env_create(&env);
		mdb_env_set_maxdbs(env, 16);
		mdb_env_set_mapsize(env, (size_t)1 << 30);   /* small: valgrind maps < 64 GiB */
		if (!rc)
			rc = mdb_env_open(env, path, MDB_NOTLS, 0600);
		if (!rc)
			rc = mdb_txn_begin(env, NULL, 0, &txn);
		if (!rc) {
			rc = mdb_dbi_open(txn, "meta", 0, &dbi);
			if (!rc)
				rc = mdb_put(txn, dbi, &k, &val, 0);
			rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
		}
		mdb_env_close(env);
		CHECK_EQ(rc, 0, "format record set to 9 with raw mdb calls");
		o.rdonly = 0;
		rc = store_open(dir, &o, &s);
		CHECK_EQ(rc, -EPROTO, "store_open of a store of format 9: -EPROTO (%s)", store_strerror(rc));
	}
}

int main(void)
{
	seed_init();
	log_init("test_store", LOG_TO_STDERR, LOG_WARNING);
	if (tut_mkdtemp(tmp, sizeof(tmp), "test_store")) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	snprintf(sdir, sizeof(sdir), "%s/store", tmp);
	snprintf(fragdir, sizeof(fragdir), "%s/fragments", sdir);
	mkdir(sdir, 0700);
	st = open_store(1, 0);
	test_basics();
	test_readdir();
	test_links();
	test_rename();
	test_xattrs();
	test_xattr_bounds();
	test_setgid();
	test_emlink();
	test_recut();
	test_inherit();
	test_pinned();
	test_memory_orphan();
	test_open();
	store_close(st);
	st = NULL;
	tut_rmrf(tmp);
	return tap_done();
}
