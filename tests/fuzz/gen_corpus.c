/* gen_corpus — write the seed corpus of every fuzz harness from real
 * encodings: `make fuzz-corpus` runs `gen_corpus tests/fuzz/corpus`.
 *
 * It builds a small store through the store API (a CSV object cut into
 * lz4 fragments, a fixed:16 object of random bytes in raw fragments, a
 * storage=memory log, a directory with inherited settings, a symlink, a
 * tiny inline object, an xattr, a row longer than a fragment (records
 * with FRAG_F_CONT, one of 0 rows), then a snapshot of it all), then reads
 * back every index record (encoded again with idx_rec.c, which writes
 * them byte for byte as LMDB holds them) and every fragment image from
 * the backend. View names and xattr values are the examples of
 * DESIGN.md and the man page, valid and malformed. Seeds whose name starts
 * with "regress-" are reproducers of fixed bugs and are not written here:
 * they are committed as found. Exit 0, or 1 with a message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/backend.h"
#include "cache/codec.h"
#include "index/idx.h"
#include "index/idx_rec.h"
#include "index/ilog.h"
#include "index/store.h"
#include "tests/unit/tutil.h"

static const char *outdir;
static int nseeds;

static void die(const char *what, int rc)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

/* Write seed HARNESS/NAME: the byte PREFIX (when >= 0), then BUF/LEN. */
static void seed(const char *harness, int prefix, const void *buf, size_t len, const char *fmt, ...)
{
	char dir[4096], path[4096 + 128], name[128];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	for (char *c = name; *c; c++)
		if (*c == '/' || *c == ' ')
			*c = '_';
	snprintf(dir, sizeof(dir), "%s/%s", outdir, harness);
	mkdir(outdir, 0755);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")))
		die(path, errno);
	if (prefix >= 0)
		fputc(prefix, f);
	if (len && fwrite(buf, 1, len, f) != len)
		die(path, EIO);
	if (fclose(f))
		die(path, errno);
	nseeds++;
}

/* ---- fuzz_view and fuzz_xattr: text ---- */

static void view_seeds(void)
{
	static const char *const names[] = {
		"events.csv", "events.csv@rows=100:200", "events.csv@rows=-10:", "events.csv@rows=:5",
		"events.csv@rows=:", "events.csv@rows=5:-5", "events.csv@part=3/8", "events.csv@part=0/1",
		"events.csv@part=3/8", "events.csv@meta", "42", "42@rows=0:10", "42@part=1/4",
		"0000000000000000042", "12345678901234567890", "a@rows=-9223372036854775808:9223372036854775807",
		"a@rows=9223372036854775808:", "events.csv@rows=abc", "events.csv@part=9/8",
		"events.csv@part=8/8", "events.csv@part=-1/8", "events.csv@rows=1:2:3", "@meta",
		"@rows=1:2", "mail@example.org", "a@b@meta", "x@metadata", "x@part=", "x@rows=",
	};
	static const char *const dirs[][2] = {
		{ "events.csv@part=3", "8" }, { "events.csv@part=0", "1" }, { "x@part=7", "7" },
		{ "x@part=2", "-3" }, { "x@part=1", "00012" }, { "x@part=1", "2@meta" },
	};
	unsigned char buf[512];
	uint64_t rows[] = { 1000, 0, 7, UINT64_MAX };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t r = rows[i % 4];
		size_t n = strlen(names[i]);
		for (int b = 0; b < 8; b++)
			buf[b] = (unsigned char)(r >> (8 * b));
		memcpy(buf + 8, names[i], n);
		seed("fuzz_view", -1, buf, 8 + n, "name-%02zu-%s", i, names[i]);
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		int n = snprintf((char *)buf + 8, sizeof(buf) - 8, "%s/%s", dirs[i][0], dirs[i][1]);
		memset(buf, 0, 8);
		buf[0] = 100;
		seed("fuzz_view", -1, buf, 8 + (size_t)n, "partdir-%02zu", i);
	}
}

static void xattr_seeds(void)
{
	/* kind bytes as fuzz_xattr.c maps them: 0 format, 1 header, 2 storage */
	static const struct { int kind; int inode; const char *v; } vals[] = {
		{ 0, 0, "lines" }, { 0, 0, "fixed:16" }, { 0, 2, "fixed:16\n" }, { 0, 0, "fixed:16777216" },
		{ 0, 0, "fixed:16777217" }, { 0, 0, "fixed:0" }, { 0, 0, "fixed:08" }, { 0, 0, "Lines" },
		{ 1, 0, "1" }, { 1, 0, "0\n" }, { 1, 0, "1000000" }, { 1, 0, "1000001" }, { 1, 2, "1" },
		{ 1, 2, "0" }, { 1, 0, "-1" }, { 1, 0, " 1" }, { 2, 0, "disk" }, { 2, 0, "memory\n" },
		{ 2, 0, "ram" }, { 3, 0, "anything" },
	};
	static const char *const xnames[] = {
		"user.payload.format", "user.payload.header", "user.payload.storage", "user.payload.rows",
		"user.payload.version", "user.payload.fragments", "user.payload.id", "user.tag",
		"trusted.x", "user.payload.", "user.",
	};
	unsigned char buf[128];

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		size_t n = strlen(vals[i].v);
		buf[0] = (unsigned char)vals[i].kind;
		buf[1] = (unsigned char)vals[i].inode;
		memcpy(buf + 2, vals[i].v, n);
		seed("fuzz_xattr", -1, buf, 2 + n, "value-%02zu", i);
	}
	for (size_t i = 0; i < sizeof(xnames) / sizeof(xnames[0]); i++)
		seed("fuzz_xattr", 0x80, xnames[i], strlen(xnames[i]), "name-%s", xnames[i]);
}

/* ---- a real store ---- */

static struct store *st;
static char root[4096];

static uint64_t mkfile(uint64_t parent, const char *name)
{
	struct idx_inode in;
	int rc = store_mknod(st, parent, name, S_IFREG | 0644, 0, 1000, 1000, &in);

	if (rc)
		die(name, rc);
	return in.ino;
}

static void put_data(uint64_t ino, const char *data, size_t len)
{
	struct pver *pv;
	struct wsess *ws;
	int rc = store_pver_get(st, ino, &pv);

	if (!rc)
		rc = store_wsess_begin(st, pv, NULL, 1, &ws);
	if (rc)
		die("wsess_begin", rc);
	pver_put(pv);
	rc = wsess_write(ws, data, len, 0);
	if (!rc)
		rc = wsess_commit(ws);
	if (rc)
		die("commit", rc);
	wsess_free(ws);
}

static void setx(uint64_t ino, const char *name, const char *val)
{
	int rc = store_setxattr(st, ino, name, val, strlen(val), 0);

	if (rc)
		die(name, rc);
}

static void build_store(void)
{
	struct store_opts o = { .fragment_size = 1024, .create = 1 };
	struct idx_inode in;
	char csv[6000], bin[16 * 300], log[2000];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t n = 0;
	uint64_t ino, dir;
	int rc;

	if ((rc = tut_mkdtemp(root, sizeof(root), "gen_corpus")))
		die("mkdtemp", rc);
	if ((rc = store_open(root, &o, &st)))
		die("store_open", rc);
	n += (size_t)snprintf(csv + n, sizeof(csv) - n, "id,name,value\n");
	for (int i = 0; n < sizeof(csv) - 64; i++)
		n += (size_t)snprintf(csv + n, sizeof(csv) - n, "%d,item-%d,%d.%02d\n", i, i, i * 7, i % 100);
	ino = mkfile(IDX_ROOT_INO, "events.csv");
	put_data(ino, csv, n);

	ino = mkfile(IDX_ROOT_INO, "records.bin");
	setx(ino, "user.payload.format", "fixed:16");
	for (size_t i = 0; i < sizeof(bin); i++) {   /* incompressible: stored raw */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		bin[i] = (char)x;
	}
	put_data(ino, bin, sizeof(bin));

	ino = mkfile(IDX_ROOT_INO, "mem.log");
	setx(ino, "user.payload.storage", "memory");
	for (size_t i = 0; i < sizeof(log); i++)
		log[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
	put_data(ino, log, sizeof(log));

	if ((rc = store_mkdir(st, IDX_ROOT_INO, "data", 0755, 1000, 1000, &in)))
		die("mkdir", rc);
	dir = in.ino;
	setx(dir, "user.payload.format", "fixed:8");
	setx(dir, "user.payload.header", "0");
	ino = mkfile(dir, "tiny.csv");
	put_data(ino, "a,b\n1,2\n", 8);
	setx(ino, "user.tag", "seed");
	if ((rc = store_symlink(st, IDX_ROOT_INO, "link", "events.csv", 1000, 1000, &in)))
		die("symlink", rc);
	mkfile(IDX_ROOT_INO, "empty.txt");

	ino = mkfile(IDX_ROOT_INO, "long.txt");   /* a 5,000-byte row in 1 KiB fragments */
	memset(csv, 'z', 5000);
	memcpy(csv + 5000, "\nend\n", 5);
	put_data(ino, csv, 5005);
}

/* ---- index records ---- */

/* Selector bytes of fuzz_idx_rec.c. */
enum { C_INODE, C_FRAG, C_DIRENT, C_NAME_KEY, C_ID_KEY, C_FRAG_KEY, C_REF, C_U64, C_FORMAT, C_SNAP,
       C_ENCODE = 0x10 };

/* Big-endian fields in the order fuzz_idx_rec.c's encode direction takes them. */
static size_t be_put(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
	return (size_t)n;
}

static int inode_seed(void *arg, const struct idx_inode *in)
{
	unsigned char rec[IDX_REC_INODE_LEN], f[160], key[8];
	size_t n = 0;

	(void)arg;
	idx_rec_inode_encode(rec, in);
	seed("fuzz_idx_rec", C_INODE, rec, sizeof(rec), "inode-%llu", (unsigned long long)in->ino);
	idx_rec_id_key(key, in->ino);
	seed("fuzz_idx_rec", C_ID_KEY, key, sizeof(key), "key-inode-%llu", (unsigned long long)in->ino);
	n += be_put(f + n, in->ino, 8);
	n += be_put(f + n, in->mode, 4);
	n += be_put(f + n, in->uid, 4);
	n += be_put(f + n, in->gid, 4);
	n += be_put(f + n, in->nlink, 4);
	n += be_put(f + n, in->rdev, 8);
	n += be_put(f + n, in->size, 8);
	n += be_put(f + n, in->rows, 8);
	n += be_put(f + n, (uint64_t)in->atime_ns, 8);
	n += be_put(f + n, (uint64_t)in->mtime_ns, 8);
	n += be_put(f + n, (uint64_t)in->ctime_ns, 8);
	n += be_put(f + n, in->version, 8);
	n += be_put(f + n, in->fmt_kind, 4);
	n += be_put(f + n, in->fmt_recsize, 4);
	n += be_put(f + n, in->header, 4);
	n += be_put(f + n, in->flags, 4);
	n += be_put(f + n, in->nfrags, 4);
	n += be_put(f + n, in->reserved, 4);
	n += be_put(f + n, in->parent, 8);
	n += be_put(f + n, (uint64_t)in->mset_ns, 8);
	seed("fuzz_idx_rec", C_INODE | C_ENCODE, f, n, "enc-inode-%llu", (unsigned long long)in->ino);
	return 0;
}

static struct frag_backend *frag_be[2];

static void image_seeds(const struct frag_desc *d)
{
	size_t cap = FRAG_HDR_SIZE + d->stored_len;
	unsigned char *img = malloc(cap);
	struct frag_get g = { .id = d->id, .buf = img, .cap = cap };
	struct frag_backend *b = frag_be[d->flags & FRAG_F_MEMORY ? 1 : 0];
	int rc;

	if (!img)
		die("malloc", ENOMEM);
	rc = frag_get_many(b, &g, 1);
	if (rc || g.err || g.len != cap)
		die("get fragment image", rc ? rc : g.err ? g.err : EIO);
	/* fuzz_frag decode mode: as is, and checking the right id */
	seed("fuzz_frag", 0x00, img, cap, "image-%016llx", (unsigned long long)d->id);
	seed("fuzz_frag", 0x20, img, cap, "image-id-%016llx", (unsigned long long)d->id);
	/* fuzz_frag_header: the whole image, and the header alone */
	seed("fuzz_frag_header", 0x00, img, cap, "image-%016llx", (unsigned long long)d->id);
	seed("fuzz_frag_header", 0x04, img, FRAG_HDR_SIZE, "header-%016llx", (unsigned long long)d->id);
	free(img);
}

static int frag_seed(void *arg, uint64_t ino, const struct frag_desc *d)
{
	unsigned char rec[8 + IDX_REC_FRAG_LEN], key[IDX_REC_FRAG_KEY_LEN], f[64];
	size_t n = 0;

	(void)arg;
	for (int i = 0; i < 8; i++)
		rec[i] = (unsigned char)(d->off >> (8 * i));
	idx_rec_frag_encode(rec + 8, d);
	seed("fuzz_idx_rec", C_FRAG, rec, sizeof(rec), "frag-%llu-%llu", (unsigned long long)ino,
	     (unsigned long long)d->off);
	idx_rec_frag_key(key, ino, d->off);
	seed("fuzz_idx_rec", C_FRAG_KEY, key, sizeof(key), "key-frag-%llu-%llu",
	     (unsigned long long)ino, (unsigned long long)d->off);
	n += be_put(f + n, d->off, 8);
	n += be_put(f + n, d->first_row, 8);
	n += be_put(f + n, d->id, 8);
	n += be_put(f + n, d->len, 4);
	n += be_put(f + n, d->rows, 4);
	n += be_put(f + n, d->stored_len, 4);
	n += be_put(f + n, d->codec, 2);
	n += be_put(f + n, d->flags, 2);
	n += be_put(f + n, d->checksum, 8);
	seed("fuzz_idx_rec", C_FRAG | C_ENCODE, f, n, "enc-frag-%llu-%llu", (unsigned long long)ino,
	     (unsigned long long)d->off);
	image_seeds(d);
	return 0;
}

struct dwalk { struct idx_txn *t; uint64_t parent; };

static int dirent_seed(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct dwalk *w = arg;
	unsigned char v[IDX_REC_DIRENT_LEN], key[IDX_REC_NAME_KEY_MAX];
	size_t klen;

	idx_rec_dirent_encode(v, child, type);
	seed("fuzz_idx_rec", C_DIRENT, v, sizeof(v), "dirent-%s", name);
	if (idx_rec_name_key(key, w->parent, name, &klen) == 0)
		seed("fuzz_idx_rec", C_NAME_KEY, key, klen, "key-dirent-%s", name);
	if ((type & S_IFMT) == S_IFDIR) {
		struct dwalk sub = { w->t, child };
		return idx_dirent_iter(w->t, child, NULL, dirent_seed, &sub);
	}
	return 0;
}

static int ref_seed(void *arg, uint64_t id, uint32_t count)
{
	unsigned char v[IDX_REC_REF_LEN];

	(void)arg;
	idx_rec_ref_encode(v, count);
	seed("fuzz_idx_rec", C_REF, v, sizeof(v), "ref-%016llx", (unsigned long long)id);
	return 0;
}

static int xattr_name_seed(void *arg, const char *name)
{
	unsigned char key[IDX_REC_NAME_KEY_MAX];
	size_t klen;

	if (idx_rec_name_key(key, *(uint64_t *)arg, name, &klen) == 0)
		seed("fuzz_idx_rec", C_NAME_KEY, key, klen, "key-xattr-%s", name);
	return 0;
}

static int xattr_inode_seed(void *arg, const struct idx_inode *in)
{
	uint64_t ino = in->ino;

	return idx_xattr_iter(arg, ino, xattr_name_seed, &ino);
}

static void index_seeds(void)
{
	struct idx_txn *t;
	struct dwalk w;
	unsigned char v[8];
	uint64_t u;
	int rc;

	frag_be[0] = store_backend(st, 0);
	frag_be[1] = store_backend(st, 1);
	if ((rc = idx_begin(store_idx(st), 1, &t)))
		die("idx_begin", rc);
	w.t = t;
	w.parent = IDX_ROOT_INO;
	if ((rc = idx_inodes_iter(t, inode_seed, NULL)) ||
	    (rc = idx_frags_iter_all(t, frag_seed, NULL)) ||
	    (rc = idx_dirent_iter(t, IDX_ROOT_INO, NULL, dirent_seed, &w)) ||
	    (rc = idx_refs_iter(t, ref_seed, NULL)) ||
	    (rc = idx_inodes_iter(t, xattr_inode_seed, t)))
		die("walk the index", rc);
	if ((rc = idx_meta_get_u64(t, "next_ino", &u)))
		die("next_ino", rc);
	idx_rec_u64_encode(v, u);
	seed("fuzz_idx_rec", C_U64, v, 8, "meta-next_ino");
	if ((rc = idx_meta_get_u64(t, "next_frag", &u)))
		die("next_frag", rc);
	idx_rec_u64_encode(v, u);
	seed("fuzz_idx_rec", C_U64, v, 8, "meta-next_frag");
	idx_rec_format_encode(v, IDX_FORMAT_MIN);
	seed("fuzz_idx_rec", C_FORMAT, v, 4, "meta-format");
	idx_rec_format_encode(v, IDX_FORMAT_VERSION);
	seed("fuzz_idx_rec", C_FORMAT, v, 4, "meta-format-%u", IDX_FORMAT_VERSION);
	idx_abort(t);
}

/* ---- a snapshot (index/snap.c): its record, and two of its inodes
 * (flag 0x20): the root and the copy of events.csv; the rest of its
 * records are like the live ones above, so they are not seeded ---- */

static int snap_seed(void *arg, const struct idx_snap *s)
{
	unsigned char rec[8 + IDX_REC_SNAP_MAX], key[IDX_REC_ID_KEY_LEN], f[48 + 1 + IDX_NAME_MAX];
	size_t len, n = 0, k = strlen(s->name);

	(void)arg;
	for (int i = 0; i < 8; i++)
		rec[i] = (unsigned char)(s->first >> (8 * i));
	if (idx_rec_snap_encode(rec + 8, s, &len))
		die("encode a snapshot record", EINVAL);
	seed("fuzz_idx_rec", C_SNAP, rec, 8 + len, "snap-%s", s->name);
	idx_rec_id_key(key, s->first);
	seed("fuzz_idx_rec", C_ID_KEY, key, sizeof(key), "key-snap-%s", s->name);
	n += be_put(f + n, s->first, 8);
	n += be_put(f + n, s->count, 8);
	n += be_put(f + n, (uint64_t)s->created_ns, 8);
	n += be_put(f + n, s->frags, 8);
	n += be_put(f + n, s->bytes, 8);
	n += be_put(f + n, k, 1);
	memcpy(f + n, s->name, k);
	seed("fuzz_idx_rec", C_SNAP | C_ENCODE, f, n + k, "enc-snap-%s", s->name);
	return 0;
}

static void snap_seeds(void)
{
	struct idx_snap s;
	struct idx_inode in;
	struct idx_txn *t;
	int rc;

	if ((rc = store_snap_create(st, "monday", &s)))
		die("take a snapshot", rc);
	if ((rc = idx_begin(store_idx(st), 1, &t)))
		die("idx_begin", rc);
	if ((rc = idx_snaps_iter(t, snap_seed, NULL)))
		die("walk the snapshots", rc);
	if ((rc = idx_inode_get(t, s.first, &in)) == 0)
		rc = inode_seed(NULL, &in);
	if (rc || (rc = store_lookup(st, s.first, "events.csv", &in)) || (rc = inode_seed(NULL, &in)))
		die("a snapshot's inodes", rc);
	idx_abort(t);
}

static void roundtrip_seeds(void)
{
	static const char *const raws[] = {
		"", "x", "id,name\n1,a\n2,b\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	};
	unsigned char buf[256];

	for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		size_t n = strlen(raws[i]), k = 0;
		k += be_put(buf + k, 0x1000 + i, 8);
		k += be_put(buf + k, 2, 4);
		k += be_put(buf + k, i ? 0x80000000u | (uint32_t)(i * 7) : 0, 4);
		memcpy(buf + k, raws[i], n);
		seed("fuzz_frag", 0x01, buf, k + n, "roundtrip-%zu", i);
	}
}

/* ---- fuzz_ilog: entries built by the encoder ---- */

static void ilog_seeds(void)
{
	struct ilog_buf b;
	unsigned char key[24], val[120];

	memset(val, 0x5a, sizeof(val));
	for (int n = 0; n < 4; n++) {
		ilog_buf_init(&b);
		for (int i = 0; i < n * 3; i++) {
			idx_rec_put_be64(key, 16 + (uint64_t)i);
			memcpy(key + 8, "name.csv", 8);
			switch (i % 4) {
			case 0: ilog_buf_add(&b, ILOG_DB_INODES, ILOG_PUT, key, 8, val, 120); break;
			case 1: ilog_buf_add(&b, ILOG_DB_DIRENTS, ILOG_PUT, key, 16, val, 12); break;
			case 2: ilog_buf_add(&b, ILOG_DB_REFS, ILOG_DEL, key, 8, NULL, 0); break;
			default: ilog_buf_add(&b, ILOG_DB_META, ILOG_PUT, "next_ino", 8, val, 8); break;
			}
		}
		ilog_buf_finish(&b, 1 + (uint64_t)n, 3);
		seed("fuzz_ilog", 0, b.data, b.len, "entry-%d-ops", n * 3);
		seed("fuzz_ilog", 1, b.data, b.len, "entry-%d-ops-fixup", n * 3);
		ilog_buf_free(&b);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	view_seeds();
	xattr_seeds();
	ilog_seeds();
	build_store();
	index_seeds();
	snap_seeds();
	roundtrip_seeds();
	store_close(st);
	tut_rmrf(root);
	printf("gen_corpus: %d seeds in %s\n", nseeds, outdir);
	return 0;
}
