/* idx_rec — see idx_rec.h; the layouts are docs/format.md §The index.
 *
 * Invariants:
 *  (1) Every field is written and read byte by byte in a fixed order (keys
 *      big-endian, values little-endian); no struct is copied to or from a
 *      record.
 *  (2) decode(encode(x)) == x for every x the store writes, and an encoded
 *      record's reserved bytes are zero.
 *  (3) A decoder returning 0 has checked the length and every constrained
 *      field: what it returns cannot make a caller divide by zero, read
 *      past a buffer or overflow an offset (a damaged index is -EUCLEAN).
 */
#include "index/idx_rec.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* ---- byte order ---- */

void idx_rec_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t idx_rec_get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void idx_rec_put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t idx_rec_get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void idx_rec_put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

uint32_t idx_rec_get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* 1 when the LEN bytes at P are all zero. */
static int all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/* 1 when TYPE is one of the seven S_IFMT file types. */
static int file_type_ok(uint32_t type)
{
	switch (type) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO:
	case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		return 1;
	default:
		return 0;
	}
}

/* ---- keys ---- */

void idx_rec_id_key(unsigned char kb[IDX_REC_ID_KEY_LEN], uint64_t id)
{
	idx_rec_put_be64(kb, id);
}

int idx_rec_id_key_decode(const void *k, size_t len, uint64_t *id)
{
	if (len != IDX_REC_ID_KEY_LEN)
		return -EUCLEAN;
	*id = idx_rec_get_be64(k);
	return *id ? 0 : -EUCLEAN;
}

void idx_rec_frag_key(unsigned char kb[IDX_REC_FRAG_KEY_LEN], uint64_t ino, uint64_t off)
{
	idx_rec_put_be64(kb, ino);
	idx_rec_put_be64(kb + 8, off);
}

int idx_rec_frag_key_decode(const void *k, size_t len, uint64_t *ino, uint64_t *off)
{
	const unsigned char *p = k;

	if (len != IDX_REC_FRAG_KEY_LEN)
		return -EUCLEAN;
	*ino = idx_rec_get_be64(p);
	*off = idx_rec_get_be64(p + 8);
	return *ino ? 0 : -EUCLEAN;
}

int idx_rec_name_key(unsigned char kb[IDX_REC_NAME_KEY_MAX], uint64_t id, const char *name,
		     size_t *klen)
{
	size_t n = strlen(name);

	*klen = 0;
	if (n > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	idx_rec_put_be64(kb, id);
	memcpy(kb + 8, name, n);
	*klen = 8 + n;
	return 0;
}

int idx_rec_name_key_decode(const void *k, size_t len, uint64_t *id,
			    char name[IDX_NAME_MAX + 1])
{
	const unsigned char *p = k;

	if (len < 8 || len > IDX_REC_NAME_KEY_MAX || memchr(p + 8, '\0', len - 8))
		return -EUCLEAN;
	*id = idx_rec_get_be64(p);
	if (!*id)
		return -EUCLEAN;
	memcpy(name, p + 8, len - 8);
	name[len - 8] = '\0';
	return 0;
}

/* ---- inode records ---- */

/* Field offsets of the inode record (format.md). */
enum {
	IN_VER = 0, IN_MODE = 4, IN_UID = 8, IN_GID = 12, IN_NLINK = 16, IN_RDEV = 20,
	IN_SIZE = 28, IN_ROWS = 36, IN_ATIME = 44, IN_MTIME = 52, IN_CTIME = 60,
	IN_VERSION = 68, IN_FMT_KIND = 76, IN_RECSIZE = 80, IN_HEADER = 84, IN_FLAGS = 88,
	IN_NFRAGS = 92, IN_ZERO96 = 96, IN_PARENT = 100, IN_ZERO108 = 108, IN_MSET = 112,
};

void idx_rec_inode_encode(unsigned char p[IDX_REC_INODE_LEN], const struct idx_inode *in)
{
	memset(p, 0, IDX_REC_INODE_LEN);
	p[IN_VER] = IDX_REC_INODE_VER;
	idx_rec_put_le32(p + IN_MODE, in->mode);
	idx_rec_put_le32(p + IN_UID, in->uid);
	idx_rec_put_le32(p + IN_GID, in->gid);
	idx_rec_put_le32(p + IN_NLINK, in->nlink);
	idx_rec_put_le64(p + IN_RDEV, in->rdev);
	idx_rec_put_le64(p + IN_SIZE, in->size);
	idx_rec_put_le64(p + IN_ROWS, in->rows);
	idx_rec_put_le64(p + IN_ATIME, (uint64_t)in->atime_ns);
	idx_rec_put_le64(p + IN_MTIME, (uint64_t)in->mtime_ns);
	idx_rec_put_le64(p + IN_CTIME, (uint64_t)in->ctime_ns);
	idx_rec_put_le64(p + IN_VERSION, in->version);
	idx_rec_put_le32(p + IN_FMT_KIND, in->fmt_kind);
	idx_rec_put_le32(p + IN_RECSIZE, in->fmt_recsize);
	idx_rec_put_le32(p + IN_HEADER, in->header);
	idx_rec_put_le32(p + IN_FLAGS, in->flags);
	idx_rec_put_le32(p + IN_NFRAGS, in->nfrags);
	idx_rec_put_le64(p + IN_PARENT, in->parent);
	idx_rec_put_le64(p + IN_MSET, (uint64_t)in->mset_ns);
}

/* The format fields of IN as format.md allows them. The record size of a
 * lines object is ignored (the store writes 0), so any value passes. */
static int inode_format_ok(const struct idx_inode *in)
{
	if (in->fmt_kind == PFMT_LINES)
		return 1;
	if (in->fmt_kind == PFMT_FIXED)
		return in->fmt_recsize >= 1 && in->fmt_recsize <= IDX_REC_RECSIZE_MAX;
	return 0;
}

int idx_rec_inode_decode(const void *rec, size_t len, uint64_t ino, struct idx_inode *in)
{
	const unsigned char *p = rec;

	if (len != IDX_REC_INODE_LEN || p[IN_VER] != IDX_REC_INODE_VER || !all_zero(p + 1, 3) ||
	    !all_zero(p + IN_ZERO96, 4) || !all_zero(p + IN_ZERO108, 4))
		return -EUCLEAN;
	in->ino = ino;
	in->mode = idx_rec_get_le32(p + IN_MODE);
	in->uid = idx_rec_get_le32(p + IN_UID);
	in->gid = idx_rec_get_le32(p + IN_GID);
	in->nlink = idx_rec_get_le32(p + IN_NLINK);
	in->rdev = idx_rec_get_le64(p + IN_RDEV);
	in->size = idx_rec_get_le64(p + IN_SIZE);
	in->rows = idx_rec_get_le64(p + IN_ROWS);
	in->atime_ns = (int64_t)idx_rec_get_le64(p + IN_ATIME);
	in->mtime_ns = (int64_t)idx_rec_get_le64(p + IN_MTIME);
	in->ctime_ns = (int64_t)idx_rec_get_le64(p + IN_CTIME);
	in->version = idx_rec_get_le64(p + IN_VERSION);
	in->fmt_kind = idx_rec_get_le32(p + IN_FMT_KIND);
	in->fmt_recsize = idx_rec_get_le32(p + IN_RECSIZE);
	in->header = idx_rec_get_le32(p + IN_HEADER);
	in->flags = idx_rec_get_le32(p + IN_FLAGS);
	in->nfrags = idx_rec_get_le32(p + IN_NFRAGS);
	in->reserved = 0;
	in->parent = idx_rec_get_le64(p + IN_PARENT);
	in->mset_ns = (int64_t)idx_rec_get_le64(p + IN_MSET);
	if (!file_type_ok(in->mode & S_IFMT) || (in->mode & ~(uint32_t)(S_IFMT | 07777)) ||
	    (in->flags & ~IDX_REC_INODE_FLAGS) || !inode_format_ok(in))
		return -EUCLEAN;
	return 0;
}

/* ---- fragment records ---- */

enum {
	FR_ID = 0, FR_FIRST_ROW = 8, FR_LEN = 16, FR_ROWS = 20, FR_STORED = 24, FR_CODEC = 28,
	FR_FLAGS = 30, FR_CHECKSUM = 32, FR_ZERO40 = 40,
};

void idx_rec_frag_encode(unsigned char p[IDX_REC_FRAG_LEN], const struct frag_desc *d)
{
	idx_rec_put_le64(p + FR_ID, d->id);
	idx_rec_put_le64(p + FR_FIRST_ROW, d->first_row);
	idx_rec_put_le32(p + FR_LEN, d->len);
	idx_rec_put_le32(p + FR_ROWS, d->rows);
	idx_rec_put_le32(p + FR_STORED, d->stored_len);
	put_le16(p + FR_CODEC, d->codec);
	put_le16(p + FR_FLAGS, d->flags);
	idx_rec_put_le64(p + FR_CHECKSUM, d->checksum);
	memset(p + FR_ZERO40, 0, 8);
}

/* Codec and lengths as an image header allows them (codec.c invariant 2;
 * codec 0 raw, 1 lz4 as in cache/codec.h). */
static int frag_lengths_ok(const struct frag_desc *d)
{
	if (d->len == 0 || d->len > IDX_REC_RAW_MAX)
		return 0;
	if (d->codec == 0)
		return d->stored_len == d->len;
	if (d->codec == 1)
		return d->stored_len > 0 && d->stored_len < d->len;
	return 0;
}

int idx_rec_frag_decode(const void *rec, size_t len, uint64_t off, struct frag_desc *d)
{
	const unsigned char *p = rec;

	if (len != IDX_REC_FRAG_LEN || !all_zero(p + FR_ZERO40, 8))
		return -EUCLEAN;
	d->off = off;
	d->id = idx_rec_get_le64(p + FR_ID);
	d->first_row = idx_rec_get_le64(p + FR_FIRST_ROW);
	d->len = idx_rec_get_le32(p + FR_LEN);
	d->rows = idx_rec_get_le32(p + FR_ROWS);
	d->stored_len = idx_rec_get_le32(p + FR_STORED);
	d->codec = get_le16(p + FR_CODEC);
	d->flags = get_le16(p + FR_FLAGS);
	d->checksum = idx_rec_get_le64(p + FR_CHECKSUM);
	if (d->id == 0 || (d->flags & ~IDX_REC_FRAG_FLAGS) || !frag_lengths_ok(d) ||
	    ((d->flags & FRAG_F_STAGED) && (d->codec != 0 || (d->flags & FRAG_F_MEMORY))) ||
	    d->len > UINT64_MAX - off || d->rows > UINT64_MAX - d->first_row)
		return -EUCLEAN;
	return 0;
}

/* ---- small values ---- */

void idx_rec_dirent_encode(unsigned char p[IDX_REC_DIRENT_LEN], uint64_t child, uint32_t type)
{
	idx_rec_put_le64(p, child);
	idx_rec_put_le32(p + 8, type);
}

int idx_rec_dirent_decode(const void *rec, size_t len, uint64_t *child, uint32_t *type)
{
	const unsigned char *p = rec;

	if (len != IDX_REC_DIRENT_LEN)
		return -EUCLEAN;
	*child = idx_rec_get_le64(p);
	if (type)
		*type = idx_rec_get_le32(p + 8);
	return 0;
}

void idx_rec_ref_encode(unsigned char p[IDX_REC_REF_LEN], uint32_t count)
{
	idx_rec_put_le32(p, count);
}

int idx_rec_ref_decode(const void *p, size_t len, uint32_t *count)
{
	if (len != IDX_REC_REF_LEN)
		return -EUCLEAN;
	*count = idx_rec_get_le32(p);
	return *count ? 0 : -EUCLEAN;
}

void idx_rec_u64_encode(unsigned char p[8], uint64_t v)
{
	idx_rec_put_le64(p, v);
}

int idx_rec_u64_decode(const void *p, size_t len, uint64_t *v)
{
	if (len != 8)
		return -EUCLEAN;
	*v = idx_rec_get_le64(p);
	return 0;
}

void idx_rec_format_encode(unsigned char p[4], uint32_t version)
{
	idx_rec_put_le32(p, version);
}

int idx_rec_format_decode(const void *p, size_t len, uint32_t *version)
{
	if (len != 4)
		return -EUCLEAN;
	*version = idx_rec_get_le32(p);
	return 0;
}

/* ---- snapshot records ---- */

enum { SN_VER = 0, SN_NAMELEN = 4, SN_COUNT = 8, SN_CREATED = 16, SN_FRAGS = 24, SN_BYTES = 32,
       SN_ZERO40 = 40 };

int idx_rec_snap_encode(unsigned char p[IDX_REC_SNAP_MAX], const struct idx_snap *s, size_t *len)
{
	size_t n = strnlen(s->name, sizeof(s->name));

	*len = 0;
	if (n == 0 || n > IDX_NAME_MAX || memchr(s->name, '/', n))
		return -EINVAL;
	memset(p, 0, IDX_REC_SNAP_HDR);
	p[SN_VER] = IDX_REC_SNAP_VER;
	idx_rec_put_le32(p + SN_NAMELEN, (uint32_t)n);
	idx_rec_put_le64(p + SN_COUNT, s->count);
	idx_rec_put_le64(p + SN_CREATED, (uint64_t)s->created_ns);
	idx_rec_put_le64(p + SN_FRAGS, s->frags);
	idx_rec_put_le64(p + SN_BYTES, s->bytes);
	memcpy(p + IDX_REC_SNAP_HDR, s->name, n);
	*len = IDX_REC_SNAP_HDR + n;
	return 0;
}

int idx_rec_snap_decode(const void *rec, size_t len, uint64_t first, struct idx_snap *s)
{
	const unsigned char *p = rec;
	uint32_t n;

	if (len < IDX_REC_SNAP_HDR || len > IDX_REC_SNAP_MAX || p[SN_VER] != IDX_REC_SNAP_VER ||
	    !all_zero(p + 1, 3) || !all_zero(p + SN_ZERO40, 8))
		return -EUCLEAN;
	n = idx_rec_get_le32(p + SN_NAMELEN);
	if (n == 0 || n > IDX_NAME_MAX || len != IDX_REC_SNAP_HDR + (size_t)n ||
	    memchr(p + IDX_REC_SNAP_HDR, '\0', n) || memchr(p + IDX_REC_SNAP_HDR, '/', n))
		return -EUCLEAN;
	s->first = first;
	s->count = idx_rec_get_le64(p + SN_COUNT);
	s->created_ns = (int64_t)idx_rec_get_le64(p + SN_CREATED);
	s->frags = idx_rec_get_le64(p + SN_FRAGS);
	s->bytes = idx_rec_get_le64(p + SN_BYTES);
	memcpy(s->name, p + IDX_REC_SNAP_HDR, n);
	s->name[n] = '\0';
	if (s->count == 0 || s->count > UINT64_MAX - first)
		return -EUCLEAN;
	return 0;
}
