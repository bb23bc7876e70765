/* test_idx_rec — the index record codecs (index/idx_rec.c) without LMDB:
 * each record's bytes at the offsets of docs/format.md (a golden inode and
 * fragment record written out by hand here), round trips of extreme values,
 * and every rejection (-EUCLEAN) the decoders promise: wrong lengths and
 * versions, non-zero reserved bytes, unknown file types, flags and codecs,
 * fixed:0 and fixed:N past 2^24, raw lengths 0 and past 2^31-1, stored
 * lengths that do not fit the codec, offset and row overflow, refs at 0,
 * id 0 keys, names with a NUL; snapshot records (layout, round trip,
 * every rejection). Pure functions: no store needed. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "index/idx_rec.h"
#include "tests/unit/tap.h"

static struct idx_inode sample_inode(void)
{
	struct idx_inode in = {
		.ino = 42, .mode = S_IFREG | 0640, .uid = 1000, .gid = 0xfffffffe, .nlink = 3,
		.rdev = 0x0102030405060708ull, .size = 0xfedcba9876543210ull, .rows = 123456789012ull,
		.atime_ns = -1, .mtime_ns = INT64_MAX, .ctime_ns = INT64_MIN,
		.version = UINT64_MAX - 7, .fmt_kind = PFMT_FIXED, .fmt_recsize = 1u << 24,
		.header = 7, .flags = 0x3f, .nfrags = 0xabcdef01u, .parent = 0x1122334455667788ull,
		.mset_ns = -987654321987654321LL,
	};
	return in;
}

static uint64_t le_at(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void test_inode(void)
{
	struct idx_inode in = sample_inode(), got;
	unsigned char rec[IDX_REC_INODE_LEN], bad[IDX_REC_INODE_LEN];
	int zero_ok = 1;

	idx_rec_inode_encode(rec, &in);
	CHECK(rec[0] == 1 && le_at(rec + 4, 4) == in.mode && le_at(rec + 8, 4) == in.uid &&
	      le_at(rec + 12, 4) == in.gid && le_at(rec + 16, 4) == in.nlink &&
	      le_at(rec + 20, 8) == in.rdev && le_at(rec + 28, 8) == in.size &&
	      le_at(rec + 36, 8) == in.rows && le_at(rec + 44, 8) == (uint64_t)in.atime_ns &&
	      le_at(rec + 52, 8) == (uint64_t)in.mtime_ns && le_at(rec + 60, 8) == (uint64_t)in.ctime_ns &&
	      le_at(rec + 68, 8) == in.version && le_at(rec + 76, 4) == in.fmt_kind &&
	      le_at(rec + 80, 4) == in.fmt_recsize && le_at(rec + 84, 4) == in.header &&
	      le_at(rec + 88, 4) == in.flags && le_at(rec + 92, 4) == in.nfrags &&
	      le_at(rec + 100, 8) == in.parent && le_at(rec + 112, 8) == (uint64_t)in.mset_ns,
	      "inode record: every field at its format.md offset, little-endian");
	for (int i = 1; i < 4; i++)
		zero_ok &= rec[i] == 0;
	for (int i = 96; i < 100; i++)
		zero_ok &= rec[i] == 0;
	for (int i = 108; i < 112; i++)
		zero_ok &= rec[i] == 0;
	CHECK(zero_ok, "inode record: bytes 1-3, 96-99, 108-111 are zero");
	memset(&got, 0x77, sizeof(got));
	CHECK_EQ(idx_rec_inode_decode(rec, sizeof(rec), 42, &got), 0, "inode record decodes");
	in.reserved = 0;
	CHECK(memcmp(&got, &in, sizeof(in)) == 0, "every field round-trips, reserved reads 0");

	CHECK_EQ(idx_rec_inode_decode(rec, 112, 42, &got), -EUCLEAN, "the 112-byte record of older docs: -EUCLEAN");
	CHECK_EQ(idx_rec_inode_decode(rec, 0, 42, &got), -EUCLEAN, "an empty record: -EUCLEAN");
#define BAD_INODE(off, val, what) do { \
	memcpy(bad, rec, sizeof(bad)); bad[off] = (unsigned char)(val); \
	CHECK_EQ(idx_rec_inode_decode(bad, sizeof(bad), 42, &got), -EUCLEAN, what); } while (0)
	BAD_INODE(0, 2, "record version 2: -EUCLEAN");
	BAD_INODE(2, 1, "a non-zero byte 2: -EUCLEAN");
	BAD_INODE(97, 1, "a non-zero byte 97: -EUCLEAN");
	BAD_INODE(111, 0x80, "a non-zero byte 111: -EUCLEAN");
	BAD_INODE(88, 0x7f, "unknown flag 0x40: -EUCLEAN");
	BAD_INODE(76, 2, "format kind 2: -EUCLEAN");
	BAD_INODE(5, 0x01, "file type 0 (mode 0640 alone): -EUCLEAN");
	BAD_INODE(6, 0x01, "mode bits outside S_IFMT|07777: -EUCLEAN");
#undef BAD_INODE
	in.fmt_recsize = 0;
	idx_rec_inode_encode(bad, &in);
	CHECK_EQ(idx_rec_inode_decode(bad, sizeof(bad), 42, &got), -EUCLEAN,
		 "fixed:0 (callers divide by N): -EUCLEAN");
	in.fmt_recsize = (1u << 24) + 1;
	idx_rec_inode_encode(bad, &in);
	CHECK_EQ(idx_rec_inode_decode(bad, sizeof(bad), 42, &got), -EUCLEAN, "fixed:2^24+1: -EUCLEAN");
	in.fmt_kind = PFMT_LINES;
	in.mode = S_IFDIR | 0755;
	idx_rec_inode_encode(bad, &in);
	CHECK_EQ(idx_rec_inode_decode(bad, sizeof(bad), 42, &got), 0,
		 "a lines directory (its record size is not used) decodes");
	{
		static const uint32_t types[] = { S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK };
		int ok = 1;
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			in.mode = types[i] | 07777;
			idx_rec_inode_encode(bad, &in);
			ok &= idx_rec_inode_decode(bad, sizeof(bad), 42, &got) == 0 && got.mode == in.mode;
		}
		CHECK(ok, "all seven file types with every permission bit decode");
	}
}

static struct frag_desc sample_frag(void)
{
	struct frag_desc d = { .off = 1ull << 40, .first_row = 77, .id = 0x1234, .len = 1000,
			       .rows = 12, .stored_len = 400, .codec = 1, .flags = 1,
			       .checksum = 0x0123456789abcdefull };
	return d;
}

static int frag_eq(const struct frag_desc *a, const struct frag_desc *b)
{
	return a->off == b->off && a->first_row == b->first_row && a->id == b->id && a->len == b->len &&
	       a->rows == b->rows && a->stored_len == b->stored_len && a->codec == b->codec &&
	       a->flags == b->flags && a->checksum == b->checksum;
}

/* Decode D after encoding it. */
static int frag_rt(const struct frag_desc *d, struct frag_desc *got)
{
	unsigned char rec[IDX_REC_FRAG_LEN];

	idx_rec_frag_encode(rec, d);
	return idx_rec_frag_decode(rec, sizeof(rec), d->off, got);
}

static void test_frag(void)
{
	struct frag_desc d = sample_frag(), got, e;
	unsigned char rec[IDX_REC_FRAG_LEN], bad[IDX_REC_FRAG_LEN], key[16];
	uint64_t ino = 0, off = 0;

	idx_rec_frag_encode(rec, &d);
	CHECK(le_at(rec, 8) == d.id && le_at(rec + 8, 8) == d.first_row && le_at(rec + 16, 4) == d.len &&
	      le_at(rec + 20, 4) == d.rows && le_at(rec + 24, 4) == d.stored_len &&
	      le_at(rec + 28, 2) == d.codec && le_at(rec + 30, 2) == d.flags &&
	      le_at(rec + 32, 8) == d.checksum && le_at(rec + 40, 8) == 0,
	      "fragment record: every field at its format.md offset, bytes 40-47 zero");
	CHECK(idx_rec_frag_decode(rec, sizeof(rec), d.off, &got) == 0 && frag_eq(&got, &d),
	      "fragment record round-trips (offset from the key)");
	CHECK_EQ(idx_rec_frag_decode(rec, 47, d.off, &got), -EUCLEAN, "47 bytes: -EUCLEAN");
	memcpy(bad, rec, sizeof(bad));
	bad[44] = 1;
	CHECK_EQ(idx_rec_frag_decode(bad, sizeof(bad), d.off, &got), -EUCLEAN, "a non-zero byte 44: -EUCLEAN");

#define BAD_FRAG(field, val, what) do { \
	e = sample_frag(); e.field = (val); \
	CHECK_EQ(frag_rt(&e, &got), -EUCLEAN, what); } while (0)
	BAD_FRAG(id, 0, "fragment id 0: -EUCLEAN");
	BAD_FRAG(len, 0, "raw length 0: -EUCLEAN");
	BAD_FRAG(codec, 2, "codec 2: -EUCLEAN");
	BAD_FRAG(flags, FRAG_F_STAGED, "staged (0x4, format 5) with codec lz4: -EUCLEAN");
	BAD_FRAG(flags, 0x8, "unknown flag 0x8: -EUCLEAN");
	BAD_FRAG(flags, 0x8000, "unknown flag 0x8000: -EUCLEAN");
	BAD_FRAG(stored_len, 1000, "lz4 not smaller than raw: -EUCLEAN");
	BAD_FRAG(stored_len, 0, "lz4 stored length 0: -EUCLEAN");
	BAD_FRAG(off, UINT64_MAX - 999 + 1, "offset + length past 2^64: -EUCLEAN");
	BAD_FRAG(first_row, UINT64_MAX - 11 + 1, "first row + rows past 2^64: -EUCLEAN");
#undef BAD_FRAG
	e = sample_frag();
	e.codec = 0;
	CHECK_EQ(frag_rt(&e, &got), -EUCLEAN, "raw codec with stored != raw length: -EUCLEAN");
	e.stored_len = e.len;
	CHECK(frag_rt(&e, &got) == 0 && frag_eq(&got, &e), "raw codec with stored == raw length decodes");
	e.len = e.stored_len = 0x7fffffffu;
	CHECK(frag_rt(&e, &got) == 0 && frag_eq(&got, &e), "raw length 2^31-1 decodes");
	e.len = e.stored_len = 0x80000000u;
	CHECK_EQ(frag_rt(&e, &got), -EUCLEAN, "raw length 2^31: -EUCLEAN");
	e = sample_frag();
	e.flags = FRAG_F_CONT;
	e.rows = 0;
	CHECK(frag_rt(&e, &got) == 0 && frag_eq(&got, &e), "FRAG_F_CONT (0x2, format 3) with 0 rows decodes");
	e.flags = FRAG_F_CONT | FRAG_F_MEMORY;
	CHECK(frag_rt(&e, &got) == 0 && got.flags == 3, "flags 0x3 (continues a row, memory backend) decode");
	e = sample_frag();
	e.codec = 0;
	e.stored_len = e.len;
	e.flags = FRAG_F_STAGED | FRAG_F_CONT;
	CHECK(frag_rt(&e, &got) == 0 && frag_eq(&got, &e), "staged (0x4, format 5) raw fragment decodes");
	e.flags = FRAG_F_STAGED | FRAG_F_MEMORY;
	CHECK_EQ(frag_rt(&e, &got), -EUCLEAN, "staged with the memory flag: -EUCLEAN");
	e = sample_frag();
	e.off = UINT64_MAX - e.len;
	e.first_row = UINT64_MAX - e.rows;
	CHECK(frag_rt(&e, &got) == 0 && frag_eq(&got, &e), "a fragment ending exactly at 2^64-1 decodes");

	idx_rec_frag_key(key, 0x0102030405060708ull, 0x1122334455667788ull);
	CHECK(key[0] == 1 && key[7] == 8 && key[8] == 0x11 && key[15] == 0x88, "frag key: ino then offset, big-endian");
	CHECK(idx_rec_frag_key_decode(key, 16, &ino, &off) == 0 && ino == 0x0102030405060708ull &&
	      off == 0x1122334455667788ull, "frag key round-trips");
	CHECK_EQ(idx_rec_frag_key_decode(key, 15, &ino, &off), -EUCLEAN, "a 15-byte frag key: -EUCLEAN");
	idx_rec_frag_key(key, 0, 5);
	CHECK_EQ(idx_rec_frag_key_decode(key, 16, &ino, &off), -EUCLEAN, "a frag key of inode 0: -EUCLEAN");
}

static void test_small(void)
{
	unsigned char b[IDX_REC_NAME_KEY_MAX + 1];
	char name[IDX_NAME_MAX + 1], longname[IDX_NAME_MAX + 2];
	uint64_t v = 0, id = 0;
	uint32_t u = 0, ty = 0;
	size_t klen = 0;

	idx_rec_dirent_encode(b, 0x1122334455667788ull, S_IFDIR);
	CHECK(le_at(b, 8) == 0x1122334455667788ull && le_at(b + 8, 4) == S_IFDIR, "dirent value: child u64 LE, type u32 LE");
	CHECK(idx_rec_dirent_decode(b, 12, &v, &ty) == 0 && v == 0x1122334455667788ull && ty == S_IFDIR,
	      "dirent value round-trips");
	CHECK(idx_rec_dirent_decode(b, 12, &v, NULL) == 0, "dirent value with a NULL type");
	CHECK_EQ(idx_rec_dirent_decode(b, 11, &v, &ty), -EUCLEAN, "an 11-byte dirent value: -EUCLEAN");
	CHECK_EQ(idx_rec_dirent_decode(b, 13, &v, &ty), -EUCLEAN, "a 13-byte dirent value: -EUCLEAN");

	idx_rec_ref_encode(b, 0xdeadbeef);
	CHECK(idx_rec_ref_decode(b, 4, &u) == 0 && u == 0xdeadbeef && b[0] == 0xef, "refs value round-trips, LE");
	idx_rec_ref_encode(b, 0);
	CHECK_EQ(idx_rec_ref_decode(b, 4, &u), -EUCLEAN, "a refs record at 0 (deleted by the writer): -EUCLEAN");
	CHECK_EQ(idx_rec_ref_decode(b, 8, &u), -EUCLEAN, "an 8-byte refs value: -EUCLEAN");

	idx_rec_u64_encode(b, 16);
	CHECK(idx_rec_u64_decode(b, 8, &v) == 0 && v == 16, "meta u64 round-trips");
	CHECK_EQ(idx_rec_u64_decode(b, 4, &v), -EUCLEAN, "a 4-byte meta u64: -EUCLEAN");
	idx_rec_format_encode(b, 1);
	CHECK(idx_rec_format_decode(b, 4, &u) == 0 && u == 1 && b[0] == 1, "meta format round-trips");
	CHECK_EQ(idx_rec_format_decode(b, 8, &u), -EUCLEAN, "an 8-byte format record: -EUCLEAN");

	idx_rec_id_key(b, 0x0102030405060708ull);
	CHECK(b[0] == 1 && b[7] == 8 && idx_rec_id_key_decode(b, 8, &v) == 0 && v == 0x0102030405060708ull,
	      "id key: big-endian, round-trips");
	CHECK_EQ(idx_rec_id_key_decode(b, 9, &v), -EUCLEAN, "a 9-byte id key: -EUCLEAN");
	idx_rec_id_key(b, 0);
	CHECK_EQ(idx_rec_id_key_decode(b, 8, &v), -EUCLEAN, "id key 0: -EUCLEAN");

	CHECK(idx_rec_name_key(b, 5, "events.csv", &klen) == 0 && klen == 18 && b[7] == 5 &&
	      memcmp(b + 8, "events.csv", 10) == 0, "name key: id BE then the name bytes, no NUL");
	CHECK(idx_rec_name_key_decode(b, klen, &id, name) == 0 && id == 5 && strcmp(name, "events.csv") == 0,
	      "name key round-trips");
	CHECK(idx_rec_name_key_decode(b, 8, &id, name) == 0 && name[0] == '\0',
	      "an empty name decodes (the index does not judge names)");
	CHECK_EQ(idx_rec_name_key_decode(b, 7, &id, name), -EUCLEAN, "a 7-byte name key: -EUCLEAN");
	b[10] = '\0';
	CHECK_EQ(idx_rec_name_key_decode(b, klen, &id, name), -EUCLEAN, "a name holding a NUL: -EUCLEAN");
	memset(longname, 'n', sizeof(longname));
	longname[IDX_NAME_MAX] = '\0';
	CHECK(idx_rec_name_key(b, 5, longname, &klen) == 0 && klen == 8 + IDX_NAME_MAX, "a 255-byte name encodes");
	CHECK(idx_rec_name_key_decode(b, klen, &id, name) == 0 && strlen(name) == IDX_NAME_MAX, "... and decodes");
	CHECK_EQ(idx_rec_name_key_decode(b, klen + 1, &id, name), -EUCLEAN, "a 256-byte name: -EUCLEAN");
	longname[IDX_NAME_MAX] = 'n';
	longname[IDX_NAME_MAX + 1] = '\0';
	CHECK(idx_rec_name_key(b, 5, longname, &klen) == -ENAMETOOLONG && klen == 0,
	      "a 256-byte name does not encode: -ENAMETOOLONG");
	idx_rec_name_key(b, 0, "x", &klen);
	CHECK_EQ(idx_rec_name_key_decode(b, klen, &id, name), -EUCLEAN, "a name key of id 0: -EUCLEAN");
}

static struct idx_snap sample_snap(void)
{
	struct idx_snap s = { .first = 0x0102030405060708ull, .count = 10112, .created_ns = -5,
			      .frags = 0xfedcba9876543210ull, .bytes = UINT64_MAX };
	strcpy(s.name, "before-cleanup");
	return s;
}

static int snap_eq(const struct idx_snap *a, const struct idx_snap *b)
{
	return a->first == b->first && a->count == b->count && a->created_ns == b->created_ns &&
	       a->frags == b->frags && a->bytes == b->bytes && strcmp(a->name, b->name) == 0;
}

static void test_snap(void)
{
	struct idx_snap s = sample_snap(), got, e;
	unsigned char rec[IDX_REC_SNAP_MAX], bad[IDX_REC_SNAP_MAX + 1];
	size_t len = 99, n = strlen(s.name);
	int zero_ok = 1;

	CHECK(idx_rec_snap_encode(rec, &s, &len) == 0 && len == IDX_REC_SNAP_HDR + n,
	      "snapshot record: 48 bytes + the name");
	CHECK(rec[0] == 1 && le_at(rec + 4, 4) == n && le_at(rec + 8, 8) == s.count &&
	      le_at(rec + 16, 8) == (uint64_t)s.created_ns && le_at(rec + 24, 8) == s.frags &&
	      le_at(rec + 32, 8) == s.bytes && memcmp(rec + 48, s.name, n) == 0,
	      "snapshot record: every field at its format.md offset, little-endian, the name unterminated");
	for (int i = 1; i < 4; i++)
		zero_ok &= rec[i] == 0;
	for (int i = 40; i < 48; i++)
		zero_ok &= rec[i] == 0;
	CHECK(zero_ok, "snapshot record: bytes 1-3 and 40-47 are zero");
	memset(&got, 0x55, sizeof(got));
	CHECK(idx_rec_snap_decode(rec, len, s.first, &got) == 0 && snap_eq(&got, &s),
	      "snapshot record round-trips (first inode from the key)");
	e = s;
	memset(e.name, 'n', IDX_NAME_MAX);
	e.name[IDX_NAME_MAX] = '\0';
	CHECK(idx_rec_snap_encode(rec, &e, &len) == 0 && len == IDX_REC_SNAP_MAX &&
	      idx_rec_snap_decode(rec, len, e.first, &got) == 0 && snap_eq(&got, &e),
	      "a 255-byte name encodes and decodes");
	e.count = UINT64_MAX - e.first;
	CHECK(idx_rec_snap_encode(rec, &e, &len) == 0 && idx_rec_snap_decode(rec, len, e.first, &got) == 0 &&
	      got.count == e.count, "a range ending at 2^64-1 decodes");
	CHECK_EQ(idx_rec_snap_decode(rec, len, e.first + 1, &got), -EUCLEAN,
		 "a range past 2^64 (first + count overflows): -EUCLEAN");

	e = s;
	e.name[0] = '\0';
	len = 7;
	CHECK(idx_rec_snap_encode(rec, &e, &len) == -EINVAL && len == 0, "an empty name does not encode: -EINVAL");
	strcpy(e.name, "a/b");
	CHECK(idx_rec_snap_encode(rec, &e, &len) == -EINVAL && len == 0, "a name with '/' does not encode: -EINVAL");
	memset(e.name, 'n', sizeof(e.name));   /* 256 bytes, no NUL */
	len = 7;
	CHECK(idx_rec_snap_encode(rec, &e, &len) == -EINVAL && len == 0,
	      "a name past IDX_NAME_MAX (unterminated) does not encode: -EINVAL");

	idx_rec_snap_encode(rec, &s, &len);
	CHECK_EQ(idx_rec_snap_decode(rec, IDX_REC_SNAP_HDR, s.first, &got), -EUCLEAN,
		 "a record without its name: -EUCLEAN");
	CHECK_EQ(idx_rec_snap_decode(rec, len - 1, s.first, &got), -EUCLEAN, "a record one byte short: -EUCLEAN");
	memcpy(bad, rec, len);
	bad[len] = 'x';
	CHECK_EQ(idx_rec_snap_decode(bad, len + 1, s.first, &got), -EUCLEAN, "a record one byte long: -EUCLEAN");
	CHECK_EQ(idx_rec_snap_decode(rec, 20, s.first, &got), -EUCLEAN, "a 20-byte record: -EUCLEAN");
#define BAD_SNAP(off, val, what) do { \
	memcpy(bad, rec, len); bad[off] = (unsigned char)(val); \
	CHECK_EQ(idx_rec_snap_decode(bad, len, s.first, &got), -EUCLEAN, what); } while (0)
	BAD_SNAP(0, 2, "record version 2: -EUCLEAN");
	BAD_SNAP(3, 1, "a non-zero byte 3: -EUCLEAN");
	BAD_SNAP(47, 0x80, "a non-zero byte 47: -EUCLEAN");
	BAD_SNAP(4, 0, "name length 0: -EUCLEAN");
	BAD_SNAP(4, n + 1, "a name length past the record: -EUCLEAN");
	BAD_SNAP(48 + 3, '\0', "a name holding a NUL: -EUCLEAN");
	BAD_SNAP(48 + 3, '/', "a name holding a '/': -EUCLEAN");
#undef BAD_SNAP
	e = s;
	e.count = 0;
	idx_rec_snap_encode(rec, &e, &len);
	CHECK_EQ(idx_rec_snap_decode(rec, len, e.first, &got), -EUCLEAN, "an empty range (no root): -EUCLEAN");
	/* a length field of 2^32 - 1 must not wrap the length check */
	idx_rec_snap_encode(rec, &s, &len);
	memcpy(bad, rec, len);
	bad[4] = bad[5] = bad[6] = bad[7] = 0xff;
	CHECK_EQ(idx_rec_snap_decode(bad, len, s.first, &got), -EUCLEAN, "name length 2^32-1: -EUCLEAN");
}

int main(void)
{
	test_inode();
	test_frag();
	test_small();
	test_snap();
	return tap_done();
}
