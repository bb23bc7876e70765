/* test_fsck — `payloadctl fsck` and `fsck --repair` (tools/ctl_fsck*.c),
 * driven in-process on stores built through the store API and then
 * damaged on purpose: fragment images flipped, truncated, zero-filled,
 * deleted and swapped; index records edited through idx.h (reference
 * counts, dangling and missing entries, nlink, orphans, fragment lists with
 * gaps or longer than the size, wrong rows, a format that does not fit,
 * missing inline bytes); a store held by another opener.
 *
 * Each case checks: the check finds the damage (exit 1, the object and
 * fragment named); the repair exits 1 and a new check is clean (exit 0);
 * every healthy object is byte-identical (xxh64 taken before the damage),
 * at the same path, with the same version; a damaged object is where the
 * policy says (lost+found/ID-NAME holding exactly the fragments that
 * verify, xattrs user.fsck.path and user.fsck.lost) or repaired in place
 * with its bytes unchanged; freed images are gone; a second repair changes
 * nothing. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/codec.h"
#include "cache/log.h"
#include "index/store.h"
#include "tools/ctl.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"

#define ROOT IDX_ROOT_INO
#define FRAG 4096

static char tmp[4096];
static char dir[4200];
static int ncase;

/* ---- building stores ---- */

struct buf {
	char *p;
	size_t len;
};

static struct buf csv(unsigned rows, unsigned seed)
{
	struct buf b = { malloc(64 + (size_t)rows * 48), 0 };

	b.len = (size_t)sprintf(b.p, "id,name,value\n");
	for (unsigned i = 0; i < rows; i++)
		b.len += (size_t)sprintf(b.p + b.len, "%u,row-%u-%u,%u\n", i, i, seed, (i * 2654435761u) ^ seed);
	return b;
}

static struct store *open_rw(void)
{
	struct store_opts o = { .fragment_size = FRAG, .create = 1 };
	struct store *st = NULL;
	int rc = store_open(dir, &o, &st);

	if (rc) {
		printf("Bail out! store_open %s: %s\n", dir, store_strerror(rc));
		exit(1);
	}
	return st;
}

static struct store *open_ro(void)
{
	struct store_opts o = { .rdonly = 1 };
	struct store *st = NULL;

	if (store_open(dir, &o, &st)) {
		printf("Bail out! store_open ro %s\n", dir);
		exit(1);
	}
	return st;
}

static uint64_t put_obj(struct store *st, uint64_t parent, const char *name, const struct buf *b)
{
	struct idx_inode in;
	struct pver *pv;
	struct wsess *ws;
	int rc = store_mknod(st, parent, name, S_IFREG | 0644, 0, 0, 0, &in);

	if (!rc)
		rc = store_pver_get(st, in.ino, &pv);
	if (!rc) {
		rc = store_wsess_begin(st, pv, NULL, 1, &ws);
		pver_put(pv);
	}
	if (!rc && b->len)
		rc = wsess_write(ws, b->p, b->len, 0);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	if (rc) {
		printf("Bail out! put %s: %s\n", name, strerror(-rc));
		exit(1);
	}
	return in.ino;
}

/* The store of each case: a.csv, b.csv (many 4 KiB fragments), small.txt
 * (inline), sub/c.csv and its hard link sub/hard.csv, rec.bin (fixed:16,
 * binary), long.txt (rows of 10,000 and 9,000 bytes: each spans fragments,
 * FRAG_F_CONT), big.rec (fixed:5000, records longer than a fragment). */
struct fixture {
	uint64_t a, b, small, sub, c, rec, lng, brec;
	struct buf da, db, ds, dc, drec, dl, dbrec;
};

static struct buf long_rows(void)
{
	struct buf b = { malloc(20000), 0 };

	b.len = (size_t)sprintf(b.p, "a\nbb\n");
	memset(b.p + b.len, 'x', 10000);
	b.len += 10000;
	b.len += (size_t)sprintf(b.p + b.len, "\ntail1\ntail2\n");
	memset(b.p + b.len, 'y', 9000);
	b.len += 9000;
	b.p[b.len++] = '\n';
	return b;
}

static void make_store(struct fixture *x, const char *tag)
{
	struct store *st;
	struct idx_inode in;

	snprintf(dir, sizeof(dir), "%s/%02d-%s", tmp, ++ncase, tag);
	mkdir(dir, 0700);
	st = open_rw();
	x->da = csv(1500, 1);
	x->db = csv(1200, 2);
	x->dc = csv(900, 3);
	x->ds = (struct buf){ strdup("small\nobject\n"), 13 };
	x->drec = (struct buf){ malloc(16 * 700), 16 * 700 };
	for (size_t i = 0; i < x->drec.len; i++)
		x->drec.p[i] = (char)(rnd() & 0xff);
	x->a = put_obj(st, ROOT, "a.csv", &x->da);
	x->b = put_obj(st, ROOT, "b.csv", &x->db);
	x->small = put_obj(st, ROOT, "small.txt", &x->ds);
	store_mkdir(st, ROOT, "sub", 0755, 0, 0, &in);
	x->sub = in.ino;
	x->c = put_obj(st, x->sub, "c.csv", &x->dc);
	store_link(st, x->c, x->sub, "hard.csv", &in);
	store_mknod(st, ROOT, "rec.bin", S_IFREG | 0644, 0, 0, 0, &in);
	x->rec = in.ino;
	store_setxattr(st, x->rec, "user.payload.format", "fixed:16", 8, 0);
	x->dl = long_rows();
	x->lng = put_obj(st, ROOT, "long.txt", &x->dl);
	x->dbrec = (struct buf){ malloc(5000 * 3), 5000 * 3 };
	for (size_t i = 0; i < x->dbrec.len; i++)
		x->dbrec.p[i] = (char)('A' + i / 5000);
	store_mknod(st, ROOT, "big.rec", S_IFREG | 0644, 0, 0, 0, &in);
	x->brec = in.ino;
	store_setxattr(st, x->brec, "user.payload.format", "fixed:5000", 10, 0);
	{
		struct pver *pv;
		struct wsess *ws;
		store_pver_get(st, x->brec, &pv);
		store_wsess_begin(st, pv, NULL, 1, &ws);
		pver_put(pv);
		wsess_write(ws, x->dbrec.p, x->dbrec.len, 0);
		if (wsess_commit(ws))
			printf("Bail out! big.rec\n");
		wsess_free(ws);
	}
	store_close(st);
	st = open_rw();
	{
		struct pver *pv;
		struct wsess *ws;
		store_pver_get(st, x->rec, &pv);
		store_wsess_begin(st, pv, NULL, 1, &ws);
		pver_put(pv);
		wsess_write(ws, x->drec.p, x->drec.len, 0);
		if (wsess_commit(ws))
			printf("Bail out! rec.bin\n");
		wsess_free(ws);
	}
	store_close(st);
}

static void free_fixture(struct fixture *x)
{
	free(x->da.p), free(x->db.p), free(x->dc.p), free(x->ds.p), free(x->drec.p), free(x->dl.p);
	free(x->dbrec.p);
}

/* ---- looking at stores ---- */

struct objsum {
	const char *path;
	uint64_t ino, version, size, hash;
};

/* Read object INO whole. @return malloc'd bytes (*LEN), NULL on error. */
static char *read_ino(struct store *st, uint64_t ino, size_t *len)
{
	struct pver *pv;
	char *b;
	ssize_t n;

	if (store_pver_get(st, ino, &pv))
		return NULL;
	*len = pver_inode(pv)->size;
	b = malloc(*len + 1);
	n = pver_read(pv, b, *len, 0);
	pver_put(pv);
	if (n != (ssize_t)*len) {
		free(b);
		return NULL;
	}
	return b;
}

/* Summarize PATH (resolved in a read-only open); ino 0 when missing. */
static struct objsum summarize(const char *path)
{
	struct objsum s = { .path = path };
	struct store *st = open_ro();
	struct idx_inode in;
	size_t len;
	char *b;

	if (ctl_resolve(st, path, 0, &in) == 0) {
		s.ino = in.ino;
		s.version = in.version;
		s.size = in.size;
		b = read_ino(st, in.ino, &len);
		s.hash = b ? frag_checksum(b, len) : 0;
		free(b);
	}
	store_close(st);
	return s;
}

static int same_sum(const struct objsum *a, const struct objsum *b)
{
	return a->ino && a->ino == b->ino && a->version == b->version && a->size == b->size &&
	       a->hash == b->hash;
}

static const char *healthy_paths[] = { "a.csv", "b.csv", "small.txt", "sub/c.csv", "sub/hard.csv", "rec.bin",
				       "long.txt", "big.rec" };
#define NHEALTHY (sizeof(healthy_paths) / sizeof(healthy_paths[0]))

static void take_sums(struct objsum *s)
{
	for (size_t i = 0; i < NHEALTHY; i++)
		s[i] = summarize(healthy_paths[i]);
}

/* Every object of BEFORE but those named in SKIP is unchanged. */
static void check_healthy(const struct objsum *before, const char *const *skip, const char *what)
{
	for (size_t i = 0; i < NHEALTHY; i++) {
		struct objsum now = summarize(healthy_paths[i]);
		int skipped = 0;
		for (const char *const *p = skip; p && *p; p++)
			skipped |= strcmp(*p, healthy_paths[i]) == 0;
		if (skipped)
			continue;
		CHECK(same_sum(&before[i], &now), "%s: %s is byte-identical, same path and version",
		      what, healthy_paths[i]);
	}
}

/* An object's fragment (id, off, len). */
struct fr {
	uint64_t id, off, len;
};

static struct fr frag_of(uint64_t ino, uint32_t k)
{
	struct store *st = open_ro();
	struct pver *pv;
	struct fr r = { 0 };

	if (store_pver_get(st, ino, &pv) == 0) {
		if (k < pver_nfrags(pv))
			r = (struct fr){ pver_frag(pv, k)->id, pver_frag(pv, k)->off, pver_frag(pv, k)->len };
		pver_put(pv);
	}
	store_close(st);
	return r;
}

/* The first fragment of INO with FRAG_F_CONT and ROWS rows (k: its
 * index), or id 0. */
static struct fr cont_frag(uint64_t ino, uint32_t rows, uint32_t *k)
{
	struct store *st = open_ro();
	struct pver *pv;
	struct fr r = { 0 };

	if (store_pver_get(st, ino, &pv) == 0) {
		for (uint32_t i = 0; i < pver_nfrags(pv) && !r.id; i++) {
			const struct frag_desc *d = pver_frag(pv, i);
			if ((d->flags & FRAG_F_CONT) && d->rows == rows) {
				r = (struct fr){ d->id, d->off, d->len };
				*k = i;
			}
		}
		pver_put(pv);
	}
	store_close(st);
	return r;
}

static void image_path(char *buf, size_t cap, uint64_t id)
{
	snprintf(buf, cap, "%s/fragments/%02x/%016" PRIx64 ".frag", dir, (unsigned)(id & 0xff), id);
}

static int image_exists(uint64_t id)
{
	char p[4500];
	struct stat sb;

	image_path(p, sizeof(p), id);
	return stat(p, &sb) == 0;
}

/* ---- running fsck ---- */

static char out[1 << 16];

/* Run `payloadctl fsck [--repair] DIR`; its stdout goes to OUT.
 * @return its exit status. */
static int run_fsck(int repair)
{
	char path[4300], *argv[4];
	int argc = 0, fd, saved, status;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/fsck.out", tmp);
	argv[argc++] = "fsck";
	if (repair)
		argv[argc++] = "--repair";
	argv[argc++] = dir;
	argv[argc] = NULL;
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	status = ctl_fsck(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	for (char *l = out, *e; *l; l = e + 1) {   /* show it as TAP comments */
		e = strchr(l, '\n');
		if (!e)
			break;
		printf("#   | %.*s\n", (int)(e - l), l);
	}
	return status;
}

/* check, repair, check: the usual triple. DAMAGE is text the first check
 * must print; REPAIRED text the repair must print. */
static void check_repair_check(const char *what, const char *damage, const char *repaired)
{
	int rc = run_fsck(0);

	CHECK_EQ(rc, 1, "%s: fsck finds the damage (exit 1)", what);
	CHECK(strstr(out, damage) != NULL, "%s: fsck says '%s'", what, damage);
	rc = run_fsck(1);
	CHECK_EQ(rc, 1, "%s: fsck --repair repairs it (exit 1)", what);
	CHECK(strstr(out, repaired) != NULL, "%s: the repair says '%s'", what, repaired);
	CHECK(strstr(out, "a new check is clean") != NULL, "%s: and a new check is clean", what);
	rc = run_fsck(0);
	CHECK(rc == 0 && strstr(out, ": clean\n"), "%s: a second fsck is clean (exit 0)", what);
	rc = run_fsck(1);
	CHECK(rc == 0 && !strstr(out, "repair:"), "%s: a second repair changes nothing", what);
}

static char *xattr_of(const char *path, const char *name)
{
	struct store *st = open_ro();
	struct idx_inode in;
	char *v = NULL;
	ssize_t n;

	if (ctl_resolve(st, path, 0, &in) == 0 && (n = store_getxattr(st, in.ino, name, NULL, 0)) >= 0) {
		v = calloc(1, (size_t)n + 1);
		store_getxattr(st, in.ino, name, v, (size_t)n);
	}
	store_close(st);
	return v;
}

/* The lost object at LPATH holds exactly ORIG without the ranges DROP
 * (sorted, NDROP), and says where it came from. */
static void check_lost(const char *what, const char *lpath, const char *origin, const struct buf *orig,
		       const struct fr *drop, size_t ndrop, uint64_t old_version)
{
	struct store *st = open_ro();
	struct idx_inode in;
	char *got = NULL, *want = malloc(orig->len + 1), *v;
	size_t len = 0, wlen = 0, at = 0;

	for (size_t i = 0; i < ndrop; i++) {
		memcpy(want + wlen, orig->p + at, drop[i].off - at);
		wlen += drop[i].off - at;
		at = drop[i].off + drop[i].len;
	}
	memcpy(want + wlen, orig->p + at, orig->len - at);
	wlen += orig->len - at;
	if (ctl_resolve(st, lpath, 0, &in) == 0)
		got = read_ino(st, in.ino, &len);
	else
		memset(&in, 0, sizeof(in));
	CHECK(got && len == wlen && memcmp(got, want, wlen) == 0,
	      "%s: %s holds the %zu bytes that verified (%zu dropped), whole rows", what, lpath, wlen,
	      orig->len - wlen);
	CHECK_EQ(in.version, old_version + 1, "%s: its version went up by one", what);
	{
		uint64_t rows = 0;
		for (size_t i = 0; i < wlen; i++)
			rows += want[i] == '\n';
		CHECK_EQ(in.rows, rows, "%s: its rows are what it holds", what);
	}
	store_close(st);
	v = xattr_of(lpath, "user.fsck.path");
	CHECK(v && strcmp(v, origin) == 0, "%s: user.fsck.path is %s (%s)", what, origin, v ? v : "none");
	free(v);
	v = xattr_of(lpath, "user.fsck.lost");
	for (size_t i = 0; i < ndrop; i++) {
		char id[64];
		if (drop[i].id)
			snprintf(id, sizeof(id), "(fragment %016" PRIx64 ")", drop[i].id);
		else
			snprintf(id, sizeof(id), "bytes %" PRIu64 "..%" PRIu64 ": no fragment",
				 drop[i].off, drop[i].off + drop[i].len);
		CHECK(v && strstr(v, id), "%s: user.fsck.lost says '%s'", what, id);
	}
	free(v);
	free(got);
	free(want);
}

/* ---- damage ---- */

static void flip(const char *p)
{
	int fd = open(p, O_RDWR);
	struct stat sb;
	unsigned char c;

	fstat(fd, &sb);
	pread(fd, &c, 1, sb.st_size / 2);
	c ^= 0x20;
	pwrite(fd, &c, 1, sb.st_size / 2);
	close(fd);
}

static void zero_fill(const char *p)
{
	int fd = open(p, O_RDWR);
	struct stat sb;
	char *z;

	fstat(fd, &sb);
	z = calloc(1, (size_t)sb.st_size);
	pwrite(fd, z, (size_t)sb.st_size, 0);
	free(z);
	close(fd);
}

static void swap_files(const char *a, const char *b)
{
	char t[4600];

	snprintf(t, sizeof(t), "%s.swap", a);
	rename(a, t);
	rename(b, a);
	rename(t, b);
}

enum damage { D_FLIP, D_TRUNCATE, D_ZERO, D_DELETE, D_SWAP };
static const char *damage_name[] = { "flipped byte", "truncated image", "zero-filled image",
				     "deleted image", "swapped images" };
static const char *damage_said[] = { "damaged: checksum mismatch", "damaged: truncated image",
				     "damaged: bad image header", "missing: no image",
				     "damaged: the image header names fragment" };

static void test_image_damage(enum damage kind)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	struct fr fa, fb;
	char pa[4500], pb[4500], said[128], lost[64];
	const char *skip[] = { "a.csv", kind == D_SWAP ? "b.csv" : NULL, NULL };

	make_store(&x, "image");
	take_sums(before);
	fa = frag_of(x.a, 1);
	fb = frag_of(x.b, 0);
	image_path(pa, sizeof(pa), fa.id);
	image_path(pb, sizeof(pb), fb.id);
	switch (kind) {
	case D_FLIP: flip(pa); break;
	case D_TRUNCATE: truncate(pa, 100); break;
	case D_ZERO: zero_fill(pa); break;
	case D_DELETE: unlink(pa); break;
	case D_SWAP: swap_files(pa, pb); break;
	}
	snprintf(said, sizeof(said), "/a.csv (id %" PRIu64 "): fragment %016" PRIx64 " (bytes %" PRIu64
		 "..%" PRIu64 "): %s", x.a, fa.id, fa.off, fa.off + fa.len, damage_said[kind]);
	snprintf(lost, sizeof(lost), "moved to /lost+found/%" PRIu64 "-a.csv", x.a);
	check_repair_check(damage_name[kind], said, lost);
	check_healthy(before, skip, damage_name[kind]);
	snprintf(lost, sizeof(lost), "lost+found/%" PRIu64 "-a.csv", x.a);
	check_lost(damage_name[kind], lost, "/a.csv", &x.da, &fa, 1, before[0].version);
	CHECK_EQ(summarize("a.csv").ino, 0, "%s: a.csv is gone from its directory", damage_name[kind]);
	CHECK(!image_exists(fa.id), "%s: the damaged image was deleted", damage_name[kind]);
	if (kind == D_SWAP) {
		snprintf(lost, sizeof(lost), "lost+found/%" PRIu64 "-b.csv", x.b);
		check_lost("swapped images (b)", lost, "/b.csv", &x.db, &fb, 1, before[1].version);
	}
	free_fixture(&x);
}

/* Edit the index of the (closed) store in one txn. */
typedef int (*edit_fn)(struct idx_txn *t, const struct fixture *x);

static void edit_index(const struct fixture *x, edit_fn fn)
{
	struct store_opts o = { .fragment_size = FRAG };
	struct store *st;
	struct idx_txn *t;
	int rc = store_open(dir, &o, &st);

	if (!rc)
		rc = idx_begin(store_idx(st), 0, &t);
	if (!rc) {
		rc = fn(t, x);
		rc = rc ? (idx_abort(t), rc) : idx_commit(t);
	}
	if (rc)
		printf("Bail out! index edit: %s\n", strerror(-rc));
	store_close(st);
}

static int get_in(struct idx_txn *t, uint64_t ino, struct idx_inode *in)
{
	return idx_inode_get(t, ino, in);
}

static int edit_refs(struct idx_txn *t, const struct fixture *x)
{
	struct frag_desc *v;
	uint32_t n, now;
	int rc = idx_frags_load(t, x->a, &v, &n);

	if (!rc)
		rc = idx_ref_add(t, v[0].id, 2, &now);              /* 1 record, count 3 */
	if (!rc)
		rc = idx_ref_add(t, 0x7fff0000, 1, &now);           /* a count, no record */
	free(v);
	return rc;
}

static void test_refcounts(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];

	make_store(&x, "refs");
	take_sums(before);
	edit_index(&x, edit_refs);
	check_repair_check("reference counts", "reference count 3, but 1 fragment record(s) name it",
			   "reference count set to 1 (was 3)");
	check_healthy(before, NULL, "reference counts");
	CHECK_EQ(summarize("lost+found").ino, 0, "reference counts: nothing went to lost+found");
	free_fixture(&x);
}

/* ghost -> missing inode; a.csv nlink 5; sub/c.csv's entries removed (c is
 * lost); x.csv unlinked (nlink 0, orphan); an orphan mark of a missing
 * inode; next_ino below the highest inode. */
static uint64_t x_ino, x_frag;

static int edit_namespace(struct idx_txn *t, const struct fixture *x)
{
	struct idx_inode in;
	int rc = idx_dirent_put(t, ROOT, "ghost", 999999, S_IFREG);

	if (!rc)
		rc = get_in(t, x->a, &in);
	if (!rc) {
		in.nlink = 5;
		rc = idx_inode_put(t, &in);
	}
	if (!rc)
		rc = idx_dirent_del(t, x->sub, "c.csv");
	if (!rc)
		rc = idx_dirent_del(t, x->sub, "hard.csv");
	if (!rc)
		rc = idx_dirent_del(t, ROOT, "x.csv");
	if (!rc)
		rc = get_in(t, x_ino, &in);
	if (!rc) {
		in.nlink = 0;
		rc = idx_inode_put(t, &in);
	}
	if (!rc)
		rc = idx_orphan_put(t, x_ino);
	if (!rc)
		rc = idx_orphan_put(t, 888888);
	if (!rc)   /* a damaged counter: lost+found must still get a fresh number */
		rc = idx_meta_put_u64(t, "next_ino", x->a);
	return rc;
}

static void test_namespace(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	const char *skip[] = { "sub/c.csv", "sub/hard.csv", NULL };
	struct buf dx = csv(800, 9);
	char lpath[64], *v;
	struct store *st;

	make_store(&x, "namespace");
	st = open_rw();
	x_ino = put_obj(st, ROOT, "x.csv", &dx);
	store_close(st);
	x_frag = frag_of(x_ino, 0).id;
	take_sums(before);
	edit_index(&x, edit_namespace);
	CHECK(image_exists(x_frag), "namespace: x.csv's images exist before the repair");
	check_repair_check("namespace", "entry 'ghost' names inode 999999, which does not exist",
			   "entry 'ghost' -> 999999 removed");
	check_healthy(before, skip, "namespace");
	snprintf(lpath, sizeof(lpath), "lost+found/%" PRIu64, x.c);
	{
		struct objsum c = summarize(lpath);
		CHECK(c.ino == x.c && c.hash == before[3].hash && c.version == before[3].version,
		      "namespace: the lost c.csv is %s, bytes and version unchanged", lpath);
	}
	v = xattr_of(lpath, "user.fsck.path");
	CHECK(v && strcmp(v, "(in no directory)") == 0, "namespace: its user.fsck.path says it was in no directory");
	free(v);
	{
		struct store *ro = open_ro();
		struct idx_inode in;
		CHECK(store_getattr(ro, x.a, &in) == 0 && in.nlink == 1, "namespace: a.csv's nlink is 1 again");
		CHECK_EQ(store_getattr(ro, x_ino, &in), -ENOENT, "namespace: the unlinked x.csv was freed");
		CHECK(store_lookup(ro, ROOT, "ghost", &in) == -ENOENT, "namespace: the dangling entry is gone");
		CHECK(store_getattr(ro, x.c, &in) == 0 && in.nlink == 1, "namespace: c.csv has nlink 1 in lost+found");
		store_close(ro);
	}
	CHECK(!image_exists(x_frag), "namespace: x.csv's images were deleted");
	{
		struct objsum lf = summarize("lost+found");
		CHECK(lf.ino > x_ino, "namespace: lost+found got a fresh inode number (%" PRIu64 ")", lf.ino);
	}
	free_fixture(&x);
	free(dx.p);
}

/* a.csv loses a middle record (a gap; its count dropped too, the image
 * stays as an orphan); b.csv's size is 10 short of its list; sub/c.csv's
 * rows are 7 too many. */
static struct fr gap;

static int edit_lists(struct idx_txn *t, const struct fixture *x)
{
	struct idx_inode in;
	uint32_t now;
	int rc = idx_frag_del(t, x->a, gap.off);

	if (!rc)
		rc = idx_ref_add(t, gap.id, -1, &now);
	if (!rc)
		rc = get_in(t, x->a, &in);
	if (!rc) {
		in.nfrags--;
		rc = idx_inode_put(t, &in);
	}
	if (!rc)
		rc = get_in(t, x->b, &in);
	if (!rc) {
		in.size -= 10;
		rc = idx_inode_put(t, &in);
	}
	if (!rc)
		rc = get_in(t, x->c, &in);
	if (!rc) {
		in.rows += 7;
		rc = idx_inode_put(t, &in);
	}
	return rc;
}

static void test_lists(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	const char *skip[] = { "a.csv", "b.csv", "sub/c.csv", "sub/hard.csv", NULL };
	char lpath[64];

	make_store(&x, "lists");
	take_sums(before);
	gap = frag_of(x.a, 2);
	edit_index(&x, edit_lists);
	check_repair_check("fragment lists", "(a gap)", "no fragment");
	check_healthy(before, skip, "fragment lists");
	snprintf(lpath, sizeof(lpath), "lost+found/%" PRIu64 "-a.csv", x.a);
	{
		struct fr hole = { 0, gap.off, gap.len };   /* no record: named by its range */
		check_lost("a gap", lpath, "/a.csv", &x.da, &hole, 1, before[0].version);
	}
	CHECK(!image_exists(gap.id), "a gap: the image no record names any more was deleted");
	snprintf(lpath, sizeof(lpath), "lost+found/%" PRIu64 "-b.csv", x.b);
	check_lost("a list longer than the size", lpath, "/b.csv", &x.db, NULL, 0, before[1].version);
	{
		struct objsum c = summarize("sub/c.csv");
		struct store *ro = open_ro();
		struct idx_inode in;
		CHECK(same_sum(&c, &before[3]), "wrong rows: sub/c.csv repaired in place, bytes and version unchanged");
		CHECK(store_getattr(ro, x.c, &in) == 0 && in.rows == 901, "wrong rows: 901 rows again");
		store_close(ro);
	}
	free_fixture(&x);
}

/* a.csv says fixed:7 (its size is no multiple of 7); rec.bin (binary
 * fixed:16 records, fragments that do not end in '\n') says lines. */
static int edit_formats(struct idx_txn *t, const struct fixture *x)
{
	struct idx_inode in;
	int rc = get_in(t, x->a, &in);

	if (!rc) {
		in.fmt_kind = PFMT_FIXED;
		in.fmt_recsize = 7;
		rc = idx_inode_put(t, &in);
	}
	if (!rc)
		rc = get_in(t, x->rec, &in);
	if (!rc) {
		in.fmt_kind = PFMT_LINES;
		in.fmt_recsize = 0;
		rc = idx_inode_put(t, &in);
	}
	return rc;
}

static void test_recut(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	const char *skip[] = { "a.csv", "rec.bin", NULL };

	make_store(&x, "recut");
	take_sums(before);
	CHECK(x.da.len % 7 != 0, "formats: a.csv's %zu bytes are no multiple of 7", x.da.len);
	edit_index(&x, edit_formats);
	check_repair_check("formats", "is not a multiple of the record size 7", "set to lines");
	check_healthy(before, skip, "formats");
	{
		struct objsum a = summarize("a.csv"), r = summarize("rec.bin");
		CHECK(a.ino == x.a && a.hash == before[0].hash && a.size == before[0].size,
		      "fixed:7: a.csv stays in place with the same bytes (now lines, re-cut)");
		CHECK(r.ino == x.rec && r.hash == before[5].hash && r.size == before[5].size,
		      "fixed records read as lines: rec.bin stays in place with the same bytes (rows and marks set)");
	}
	free_fixture(&x);
}

static int edit_inline(struct idx_txn *t, const struct fixture *x)
{
	return idx_inline_del(t, x->small);
}

static void test_inline_missing(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	const char *skip[] = { "small.txt", NULL };
	char lpath[64], *v;

	make_store(&x, "inline");
	take_sums(before);
	edit_index(&x, edit_inline);
	check_repair_check("inline bytes missing", "inline data is missing (size 13)",
			   "inline data missing: emptied (13 bytes lost)");
	check_healthy(before, skip, "inline bytes missing");
	snprintf(lpath, sizeof(lpath), "lost+found/%" PRIu64 "-small.txt", x.small);
	CHECK_EQ(summarize(lpath).size, 0, "inline bytes missing: %s is empty", lpath);
	v = xattr_of(lpath, "user.fsck.lost");
	CHECK(v && strstr(v, "bytes 0..13: inline data missing"), "inline bytes missing: user.fsck.lost says so");
	free(v);
	free_fixture(&x);
}

/* Rows that span fragments (FRAG_F_CONT). */
static struct fr span_frag;

/* long.txt: a fragment inside the 10,000-byte row loses its mark (its
 * rows stay 0); big.rec: the fragment that starts inside record 0 loses
 * its mark. */
static int edit_spans(struct idx_txn *t, const struct fixture *x)
{
	struct frag_desc *v;
	uint32_t n;
	int rc = idx_frags_load(t, x->lng, &v, &n);

	for (uint32_t i = 0; !rc && i < n; i++)
		if (v[i].off == span_frag.off) {
			v[i].flags &= (uint16_t)~FRAG_F_CONT;
			rc = idx_frag_put(t, x->lng, &v[i]);
		}
	free(v);
	if (!rc)
		rc = idx_frags_load(t, x->brec, &v, &n);
	if (!rc && n > 1 && (v[1].flags & FRAG_F_CONT)) {
		v[1].flags &= (uint16_t)~FRAG_F_CONT;
		rc = idx_frag_put(t, x->brec, &v[1]);
	} else if (!rc) {
		printf("Bail out! big.rec: its second fragment does not continue a record\n");
		rc = -EINVAL;
	}
	free(v);
	return rc;
}

static void test_spans(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	struct store *st;
	struct pver *pv;
	uint32_t k = 0, conts = 0, nf = 0;
	int rc;

	make_store(&x, "spans");
	take_sums(before);
	st = open_ro();
	if (store_pver_get(st, x.lng, &pv) == 0) {
		nf = pver_nfrags(pv);
		for (uint32_t i = 0; i < nf; i++)
			conts += !!(pver_frag(pv, i)->flags & FRAG_F_CONT);
		pver_put(pv);
	}
	store_close(st);
	CHECK(conts >= 4 && nf >= 5, "long.txt: %u fragments, %u continue a row (rows of 10,000 and 9,000 bytes)",
	      nf, conts);
	rc = run_fsck(0);
	CHECK(rc == 0 && strstr(out, ": clean\n"), "rows spanning fragments: fsck is clean (exit %d)", rc);
	span_frag = cont_frag(x.lng, 0, &k);
	CHECK(span_frag.id != 0, "long.txt has a fragment wholly inside a row (#%u, bytes %" PRIu64 "..%" PRIu64 ")",
	      k, span_frag.off, span_frag.off + span_frag.len);
	edit_index(&x, edit_spans);
	rc = run_fsck(0);
	CHECK(rc == 1 && strstr(out, "not marked as continuing a record"),
	      "big.rec: fsck finds a fragment inside a record without its mark");
	check_repair_check("a mark lost", "is not marked as continuing that row", "fragment records rewritten");
	check_healthy(before, NULL, "a mark lost");
	free_fixture(&x);

	/* the image of a fragment inside a row is lost: the rest of the row
	 * joins what follows, and the rows are counted again */
	make_store(&x, "span-lost");
	take_sums(before);
	span_frag = cont_frag(x.lng, 0, &k);
	{
		char p[4500], lost[64];
		const char *skip[] = { "long.txt", NULL };
		image_path(p, sizeof(p), span_frag.id);
		unlink(p);
		snprintf(lost, sizeof(lost), "moved to /lost+found/%" PRIu64 "-long.txt", x.lng);
		check_repair_check("a lost piece of a row", "missing: no image", lost);
		check_healthy(before, skip, "a lost piece of a row");
		snprintf(lost, sizeof(lost), "lost+found/%" PRIu64 "-long.txt", x.lng);
		check_lost("a lost piece of a row", lost, "/long.txt", &x.dl, &span_frag, 1, before[6].version);
	}
	free_fixture(&x);
}

/* Row indexes (format 4, rule 7): a.csv's fragment 1 gets fragment 2's
 * index; an index is put for an id no fragment has. */
static struct fr ri1, ri2;
#define RI_ORPHAN 0x7fff1234ull

static int edit_rowidx(struct idx_txn *t, const struct fixture *x)
{
	const void *v;
	size_t len;
	unsigned char *copy;
	int rc = idx_rowidx_get(t, ri2.id, &v, &len);

	(void)x;
	if (rc)
		return printf("Bail out! a.csv fragment 2 has no row index\n"), rc;
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, v, len);
	rc = idx_rowidx_put(t, ri1.id, copy, len);
	if (!rc)
		rc = idx_rowidx_put(t, RI_ORPHAN, copy, len);
	free(copy);
	return rc;
}

static int rowidx_present(uint64_t id)
{
	struct store *st = open_ro();
	struct idx_txn *t;
	const void *v;
	size_t len;
	int have = 0;

	if (idx_begin(store_idx(st), 1, &t) == 0) {
		have = idx_rowidx_get(t, id, &v, &len) == 0;
		idx_abort(t);
	}
	store_close(st);
	return have;
}

static void test_rowidx(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	int rc;

	make_store(&x, "rowidx");
	take_sums(before);
	ri1 = frag_of(x.a, 1);
	ri2 = frag_of(x.a, 2);
	CHECK(ri1.id && ri2.id && rowidx_present(ri1.id) && rowidx_present(ri2.id),
	      "a.csv: fragments 1 and 2 have row indexes");
	edit_index(&x, edit_rowidx);
	rc = run_fsck(0);
	CHECK_EQ(rc, 1, "a wrong row index: fsck finds it (exit 1)");
	CHECK(strstr(out, "its row index") && strstr(out, "is not that of its bytes"),
	      "a wrong row index: fsck says the index is not that of the bytes");
	CHECK(strstr(out, "warning: fragment 000000007fff1234: a row index without a fragment") != NULL,
	      "a row index of no fragment: fsck warns");
	check_repair_check("a wrong row index", "is not that of its bytes",
			   "2 row index(es) dropped (wrong, or without a fragment)");
	CHECK(!rowidx_present(ri1.id), "a wrong row index: the repair dropped it");
	CHECK(!rowidx_present(RI_ORPHAN), "a row index of no fragment: the repair dropped it");
	CHECK(rowidx_present(ri2.id), "the right row index of fragment 2 stays");
	check_healthy(before, NULL, "a wrong row index");
	free_fixture(&x);
}

static void test_clean_and_locked(void)
{
	struct fixture x;
	struct objsum before[NHEALTHY];
	struct store *held;
	char extra[4500];
	int rc, fd;

	make_store(&x, "clean");
	take_sums(before);
	rc = run_fsck(0);
	CHECK(rc == 0 && strstr(out, ": clean\n"), "a healthy store: fsck is clean (exit 0)");
	rc = run_fsck(1);
	CHECK(rc == 0 && !strstr(out, "repair:"), "a healthy store: --repair exits 0 and changes nothing");
	check_healthy(before, NULL, "a healthy store after --repair");
	/* an image nobody references is tidied, the store was clean */
	image_path(extra, sizeof(extra), 0x7ffff0);
	fd = open(extra, O_WRONLY | O_CREAT, 0600);
	write(fd, "junk", 4);
	close(fd);
	rc = run_fsck(1);
	CHECK(rc == 0 && strstr(out, "1 fragment image(s) no object references deleted"),
	      "an unreferenced image: --repair deletes it and exits 0 (%d)", rc);
	CHECK(access(extra, F_OK) != 0, "an unreferenced image: gone");
	/* a store held by another opener (a mount holds the same lock) */
	held = open_rw();
	rc = run_fsck(1);
	CHECK_EQ(rc, 2, "a store in use: --repair refuses (exit 2)");
	rc = run_fsck(0);
	CHECK_EQ(rc, 0, "a store in use: the read-only check still runs");
	store_close(held);
	check_healthy(before, NULL, "a store in use after the refusal");
	free_fixture(&x);
}

int main(void)
{
	seed_init();
	log_init("test_fsck", LOG_TO_STDERR, -1);
	if (tut_mkdtemp(tmp, sizeof(tmp), "fsck")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	for (int k = D_FLIP; k <= D_SWAP; k++)
		test_image_damage((enum damage)k);
	test_refcounts();
	test_namespace();
	test_lists();
	test_recut();
	test_spans();
	test_inline_missing();
	test_rowidx();
	test_clean_and_locked();
	tut_rmrf(tmp);
	return tap_done();
}
