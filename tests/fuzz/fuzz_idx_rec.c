/* fuzz_idx_rec — libFuzzer harness for every index record codec
 * (index/idx_rec.c): inode and fragment records, dirent values, refs
 * values, meta values (u64 counters, the format), snapshot records, and
 * the three key kinds (id, frag, id+name).
 *
 * Input: byte 0 picks the codec (low nibble) and the direction (bit 4);
 * the rest is the bytes.
 *
 *  Decode direction: the rest is a record (or key) as LMDB would hand it
 *  out. Properties: the return is 0 or -EUCLEAN; 0 is returned exactly
 *  when an independent check of docs/format.md accepts the bytes, and then
 *  encoding the decoded value gives back exactly the same bytes (nothing is
 *  dropped or invented on the way through the struct).
 *
 *  For fragment and snapshot records the first 8 bytes (LE) are what the
 *  key holds (the byte offset, the snapshot's first inode), the record
 *  follows.
 *
 *  Encode direction: the rest fills the fields of a struct (inode,
 *  fragment or snapshot; big-endian integers, zero past the end; a
 *  snapshot's name is a length byte, then up to 255 bytes, cut at a NUL
 *  as a C string is). Properties: the encoding has the record length and
 *  zero reserved bytes (an invalid snapshot name: -EINVAL, length 0);
 *  decoding it succeeds exactly when the reference finds the struct
 *  valid, and then gives back every field.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index/idx_rec.h"

#define FUZZ_NAME "fuzz_idx_rec"
#include "tests/fuzz/fuzz.h"

enum { C_INODE, C_FRAG, C_DIRENT, C_NAME_KEY, C_ID_KEY, C_FRAG_KEY, C_REF, C_U64, C_FORMAT, C_SNAP,
       C_COUNT };

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int type_ok(uint32_t t)
{
	return t == S_IFREG || t == S_IFDIR || t == S_IFLNK || t == S_IFIFO || t == S_IFSOCK ||
	       t == S_IFCHR || t == S_IFBLK;
}

/* ---- the reference validity of each record (docs/format.md) ---- */

static int ref_inode_fields(uint32_t mode, uint32_t kind, uint32_t recsize, uint32_t flags)
{
	return type_ok(mode & S_IFMT) && !(mode & ~(uint32_t)(S_IFMT | 07777)) && !(flags & ~0x3fu) &&
	       (kind == 0 || (kind == 1 && recsize >= 1 && recsize <= (1u << 24)));
}

static int ref_inode(const unsigned char *p, size_t n)
{
	return n == 120 && p[0] == 1 && zero(p + 1, 3) && zero(p + 96, 4) && zero(p + 108, 4) &&
	       ref_inode_fields((uint32_t)le(p + 4, 4), (uint32_t)le(p + 76, 4),
				(uint32_t)le(p + 80, 4), (uint32_t)le(p + 88, 4));
}

static int ref_frag_fields(uint64_t off, uint64_t id, uint64_t first_row, uint32_t len,
			   uint32_t rows, uint32_t stored, uint16_t codec, uint16_t flags)
{
	if (id == 0 || (flags & ~7u) || len == 0 || len > 0x7fffffffu)   /* 0x2 continues a row: format 3 */
		return 0;
	if ((flags & 4u) && (codec != 0 || (flags & 1u)))   /* 0x4 staged (format 5): raw, not memory */
		return 0;
	if (codec == 0 ? stored != len : codec != 1 || stored == 0 || stored >= len)
		return 0;
	return (unsigned __int128)off + len <= UINT64_MAX &&
	       (unsigned __int128)first_row + rows <= UINT64_MAX;
}

static int ref_frag(const unsigned char *p, size_t n, uint64_t off)
{
	return n == 48 && zero(p + 40, 8) &&
	       ref_frag_fields(off, le(p, 8), le(p + 8, 8), (uint32_t)le(p + 16, 4),
			       (uint32_t)le(p + 20, 4), (uint32_t)le(p + 24, 4), (uint16_t)le(p + 28, 2),
			       (uint16_t)le(p + 30, 2));
}

/* A snapshot record of N bytes for a range starting at FIRST. */
static int ref_snap(const unsigned char *p, size_t n, uint64_t first)
{
	uint64_t len, count;

	if (n < 48 || p[0] != 1 || !zero(p + 1, 3) || !zero(p + 40, 8))
		return 0;
	len = le(p + 4, 4);
	count = le(p + 8, 8);
	if (len < 1 || len > 255 || n != 48 + len || memchr(p + 48, 0, len) || memchr(p + 48, '/', len))
		return 0;
	return count != 0 && (unsigned __int128)first + count <= UINT64_MAX;
}

/* ---- decode direction ---- */

static void decode_one(int codec, const unsigned char *p, size_t n)
{
	unsigned char out[IDX_REC_SNAP_MAX + 8];
	char name[IDX_NAME_MAX + 1];
	struct idx_snap sn;
	struct idx_inode in;
	struct frag_desc d;
	uint64_t a = 0, b = 0;
	uint32_t u = 0;
	size_t klen = 0;
	int rc, want;

	switch (codec) {
	case C_INODE:
		rc = idx_rec_inode_decode(p, n, 77, &in);
		want = ref_inode(p, n);
		if (!rc) {
			REQUIRE(in.ino == 77 && in.reserved == 0);
			REQUIRE(in.fmt_kind != PFMT_FIXED || (in.fmt_recsize >= 1 &&
							       in.fmt_recsize <= IDX_REC_RECSIZE_MAX));
			idx_rec_inode_encode(out, &in);
			REQUIRE(memcmp(out, p, IDX_REC_INODE_LEN) == 0);
		}
		break;
	case C_FRAG:
		/* the key's offset comes from the first 8 bytes, the record after */
		if (n < 8)
			return;
		a = le(p, 8);
		rc = idx_rec_frag_decode(p + 8, n - 8, a, &d);
		want = ref_frag(p + 8, n - 8, a);
		if (!rc) {
			REQUIRE(d.off == a && d.len >= 1 && d.off + d.len >= d.off);
			REQUIRE(d.codec == 0 ? d.stored_len == d.len : d.stored_len < d.len);
			idx_rec_frag_encode(out, &d);
			REQUIRE(memcmp(out, p + 8, IDX_REC_FRAG_LEN) == 0);
		}
		break;
	case C_DIRENT:
		rc = idx_rec_dirent_decode(p, n, &a, &u);
		want = n == IDX_REC_DIRENT_LEN;
		if (!rc) {
			REQUIRE(a == le(p, 8) && u == le(p + 8, 4));
			idx_rec_dirent_encode(out, a, u);
			REQUIRE(memcmp(out, p, n) == 0);
			REQUIRE(idx_rec_dirent_decode(p, n, &b, NULL) == 0 && b == a);
		}
		break;
	case C_NAME_KEY:
		memset(name, 0x5a, sizeof(name));
		rc = idx_rec_name_key_decode(p, n, &a, name);
		want = n >= 8 && n <= 8 + IDX_NAME_MAX && be(p, 8) != 0 && !memchr(p + 8, 0, n - 8);
		if (!rc) {
			REQUIRE(a == be(p, 8) && strlen(name) == n - 8);
			REQUIRE(idx_rec_name_key(out, a, name, &klen) == 0);
			REQUIRE(klen == n && memcmp(out, p, n) == 0);
		}
		break;
	case C_ID_KEY:
		rc = idx_rec_id_key_decode(p, n, &a);
		want = n == 8 && be(p, 8) != 0;
		if (!rc) {
			idx_rec_id_key(out, a);
			REQUIRE(memcmp(out, p, 8) == 0);
		}
		break;
	case C_FRAG_KEY:
		rc = idx_rec_frag_key_decode(p, n, &a, &b);
		want = n == 16 && be(p, 8) != 0;
		if (!rc) {
			idx_rec_frag_key(out, a, b);
			REQUIRE(memcmp(out, p, 16) == 0);
		}
		break;
	case C_REF:
		rc = idx_rec_ref_decode(p, n, &u);
		want = n == 4 && le(p, 4) != 0;
		if (!rc) {
			idx_rec_ref_encode(out, u);
			REQUIRE(u != 0 && memcmp(out, p, 4) == 0);
		}
		break;
	case C_U64:
		rc = idx_rec_u64_decode(p, n, &a);
		want = n == 8;
		if (!rc) {
			idx_rec_u64_encode(out, a);
			REQUIRE(memcmp(out, p, 8) == 0);
		}
		break;
	case C_SNAP:
		if (n < 8)
			return;
		a = le(p, 8);
		memset(&sn, 0x5a, sizeof(sn));
		rc = idx_rec_snap_decode(p + 8, n - 8, a, &sn);
		want = ref_snap(p + 8, n - 8, a);
		if (!rc) {
			REQUIRE(sn.first == a && sn.count >= 1 && sn.first + sn.count >= sn.first);
			REQUIRE(strlen(sn.name) == n - 8 - IDX_REC_SNAP_HDR && !strchr(sn.name, '/'));
			REQUIRE(idx_rec_snap_encode(out, &sn, &klen) == 0);
			REQUIRE(klen == n - 8 && memcmp(out, p + 8, klen) == 0);
		}
		break;
	default:
		rc = idx_rec_format_decode(p, n, &u);
		want = n == 4;
		if (!rc) {
			idx_rec_format_encode(out, u);
			REQUIRE(memcmp(out, p, 4) == 0);
		}
		break;
	}
	REQUIRE(rc == 0 || rc == -EUCLEAN);
	REQUIRE((rc == 0) == (want != 0));
}

/* ---- encode direction ---- */

/* Take N bytes from the input cursor (zero past its end). */
static uint64_t take(const unsigned char **p, size_t *left, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++) {
		v = v << 8 | (*left ? **p : 0);
		if (*left) {
			(*p)++;
			(*left)--;
		}
	}
	return v;
}

static void encode_inode(const unsigned char *p, size_t n)
{
	struct idx_inode in, got;
	unsigned char rec[IDX_REC_INODE_LEN];
	int rc;

	memset(&in, 0, sizeof(in));
	in.ino = take(&p, &n, 8);
	in.mode = (uint32_t)take(&p, &n, 4);
	in.uid = (uint32_t)take(&p, &n, 4);
	in.gid = (uint32_t)take(&p, &n, 4);
	in.nlink = (uint32_t)take(&p, &n, 4);
	in.rdev = take(&p, &n, 8);
	in.size = take(&p, &n, 8);
	in.rows = take(&p, &n, 8);
	in.atime_ns = (int64_t)take(&p, &n, 8);
	in.mtime_ns = (int64_t)take(&p, &n, 8);
	in.ctime_ns = (int64_t)take(&p, &n, 8);
	in.version = take(&p, &n, 8);
	in.fmt_kind = (uint32_t)take(&p, &n, 4);
	in.fmt_recsize = (uint32_t)take(&p, &n, 4);
	in.header = (uint32_t)take(&p, &n, 4);
	in.flags = (uint32_t)take(&p, &n, 4);
	in.nfrags = (uint32_t)take(&p, &n, 4);
	in.reserved = (uint32_t)take(&p, &n, 4);   /* not stored */
	in.parent = take(&p, &n, 8);
	in.mset_ns = (int64_t)take(&p, &n, 8);
	idx_rec_inode_encode(rec, &in);
	REQUIRE(rec[0] == IDX_REC_INODE_VER && zero(rec + 1, 3) && zero(rec + 96, 4) &&
		zero(rec + 108, 4));
	rc = idx_rec_inode_decode(rec, sizeof(rec), in.ino, &got);
	REQUIRE((rc == 0) == ref_inode_fields(in.mode, in.fmt_kind, in.fmt_recsize, in.flags));
	if (rc)
		return;
	in.reserved = 0;
	REQUIRE(memcmp(&in, &got, sizeof(in)) == 0);   /* no padding in idx_inode */
}

static void encode_frag(const unsigned char *p, size_t n)
{
	struct frag_desc d, got;
	unsigned char rec[IDX_REC_FRAG_LEN];
	int rc;

	memset(&d, 0, sizeof(d));
	d.off = take(&p, &n, 8);
	d.first_row = take(&p, &n, 8);
	d.id = take(&p, &n, 8);
	d.len = (uint32_t)take(&p, &n, 4);
	d.rows = (uint32_t)take(&p, &n, 4);
	d.stored_len = (uint32_t)take(&p, &n, 4);
	d.codec = (uint16_t)take(&p, &n, 2);
	d.flags = (uint16_t)take(&p, &n, 2);
	d.checksum = take(&p, &n, 8);
	idx_rec_frag_encode(rec, &d);
	REQUIRE(zero(rec + 40, 8));
	rc = idx_rec_frag_decode(rec, sizeof(rec), d.off, &got);
	REQUIRE((rc == 0) == ref_frag_fields(d.off, d.id, d.first_row, d.len, d.rows, d.stored_len,
					     d.codec, d.flags));
	if (rc)
		return;
	REQUIRE(got.off == d.off && got.first_row == d.first_row && got.id == d.id &&
		got.len == d.len && got.rows == d.rows && got.stored_len == d.stored_len &&
		got.codec == d.codec && got.flags == d.flags && got.checksum == d.checksum);
}

static void encode_snap(const unsigned char *p, size_t n)
{
	struct idx_snap s, got;
	unsigned char rec[IDX_REC_SNAP_MAX];
	size_t len = 1, k;
	int rc;

	memset(&s, 0, sizeof(s));
	s.first = take(&p, &n, 8);
	s.count = take(&p, &n, 8);
	s.created_ns = (int64_t)take(&p, &n, 8);
	s.frags = take(&p, &n, 8);
	s.bytes = take(&p, &n, 8);
	k = (size_t)take(&p, &n, 1);
	k = k < n ? k : n;
	memcpy(s.name, p, k);
	s.name[k] = '\0';
	k = strlen(s.name);          /* a NUL ends the name */
	rc = idx_rec_snap_encode(rec, &s, &len);
	REQUIRE(rc == 0 || rc == -EINVAL);
	REQUIRE((rc == 0) == (k >= 1 && !strchr(s.name, '/')));
	if (rc) {
		REQUIRE(len == 0);
		return;
	}
	REQUIRE(len == IDX_REC_SNAP_HDR + k && rec[0] == IDX_REC_SNAP_VER && zero(rec + 1, 3) &&
		zero(rec + 40, 8) && le(rec + 4, 4) == k);
	rc = idx_rec_snap_decode(rec, len, s.first, &got);
	REQUIRE((rc == 0) == ref_snap(rec, len, s.first));
	REQUIRE((rc == 0) == (s.count != 0 && s.count <= UINT64_MAX - s.first));
	if (rc)
		return;
	REQUIRE(got.first == s.first && got.count == s.count && got.created_ns == s.created_ns &&
		got.frags == s.frags && got.bytes == s.bytes && strcmp(got.name, s.name) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p;
	int codec;

	if (size < 1)
		return 0;
	codec = (data[0] & 0x0f) % C_COUNT;
	/* an exact-size copy: ASan sees any read past the record */
	p = malloc(size - 1 ? size - 1 : 1);
	if (!p)
		return 0;
	memcpy(p, data + 1, size - 1);
	if (!(data[0] & 0x10))
		decode_one(codec, p, size - 1);
	else if (codec == C_FRAG)
		encode_frag(p, size - 1);
	else if (codec == C_SNAP)
		encode_snap(p, size - 1);
	else
		encode_inode(p, size - 1);
	free(p);
	return 0;
}
