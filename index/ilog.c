/* ilog — see ilog.h. */
#include "index/ilog.h"
#include "index/idx_rec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define ILOG_MAGIC   "PFL1"
#define ILOG_VERSION 1
#define ILOG_MAX_LEN ((size_t)1 << 30)

static const char *const local_keys[] = { "clean", "log_lsn", "store", "writer_tag" };

int ilog_meta_local(const void *key, size_t klen)
{
	for (size_t i = 0; i < sizeof(local_keys) / sizeof(local_keys[0]); i++)
		if (klen == strlen(local_keys[i]) && memcmp(key, local_keys[i], klen) == 0)
			return 1;
	return 0;
}

void ilog_buf_init(struct ilog_buf *buf)
{
	memset(buf, 0, sizeof(*buf));
}

void ilog_buf_reset(struct ilog_buf *buf)
{
	buf->len = 0;
	buf->nops = 0;
	buf->err = 0;
}

void ilog_buf_free(struct ilog_buf *buf)
{
	free(buf->data);
	ilog_buf_init(buf);
}

static int grow(struct ilog_buf *buf, size_t need)
{
	size_t cap = buf->cap ? buf->cap : 4096;
	unsigned char *p;

	if (need <= buf->cap)
		return 0;
	if (need > ILOG_MAX_LEN)
		return -E2BIG;
	while (cap < need)
		cap *= 2;
	p = realloc(buf->data, cap);
	if (!p)
		return -ENOMEM;
	buf->data = p;
	buf->cap = cap;
	return 0;
}

int ilog_buf_add(struct ilog_buf *buf, uint8_t db, uint8_t kind, const void *key, size_t klen,
		 const void *val, size_t vlen)
{
	unsigned char *p;
	size_t at;
	int rc;

	if (buf->err)
		return buf->err;
	if (db >= ILOG_DB_COUNT || (kind != ILOG_PUT && kind != ILOG_DEL))
		rc = -EINVAL;
	else if (klen == 0 || klen > ILOG_KEY_MAX || vlen > ILOG_VAL_MAX || (kind == ILOG_DEL && vlen))
		rc = -E2BIG;
	else
		rc = grow(buf, (buf->len ? buf->len : ILOG_HDR) + ILOG_OP_HDR + klen + vlen + ILOG_TRAILER);
	if (rc)
		return buf->err = rc;
	if (!buf->len)
		buf->len = ILOG_HDR;
	at = buf->len;
	p = buf->data + at;
	p[0] = db;
	p[1] = kind;
	p[2] = (unsigned char)(klen & 0xff);
	p[3] = (unsigned char)(klen >> 8);
	idx_rec_put_le32(p + 4, (uint32_t)vlen);
	memcpy(p + ILOG_OP_HDR, key, klen);
	if (vlen)
		memcpy(p + ILOG_OP_HDR + klen, val, vlen);
	buf->len = at + ILOG_OP_HDR + klen + vlen;
	buf->nops++;
	return 0;
}

int ilog_buf_finish(struct ilog_buf *buf, uint64_t lsn, uint64_t epoch)
{
	unsigned char *p;
	int rc;

	if (buf->err)
		return buf->err;
	if (!buf->len)
		buf->len = ILOG_HDR;
	rc = grow(buf, buf->len + ILOG_TRAILER);
	if (rc)
		return buf->err = rc;
	p = buf->data;
	memcpy(p, ILOG_MAGIC, 4);
	p[4] = ILOG_VERSION;
	p[5] = p[6] = p[7] = 0;
	idx_rec_put_le64(p + 8, lsn);
	idx_rec_put_le64(p + 16, epoch);
	idx_rec_put_le32(p + 24, buf->nops);
	idx_rec_put_le32(p + 28, (uint32_t)(buf->len - ILOG_HDR));
	idx_rec_put_le64(p + buf->len, XXH64(p, buf->len, 0));
	buf->len += ILOG_TRAILER;
	return 0;
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decode the op at P (AVAIL bytes). @return its length, or 0 if bad. */
static size_t op_at(const unsigned char *p, size_t avail, struct ilog_op *op)
{
	size_t klen, vlen;

	if (avail < ILOG_OP_HDR)
		return 0;
	klen = (size_t)p[2] | (size_t)p[3] << 8;
	vlen = get_le32(p + 4);
	if (p[0] >= ILOG_DB_COUNT || (p[1] != ILOG_PUT && p[1] != ILOG_DEL) || klen == 0 ||
	    klen > ILOG_KEY_MAX || vlen > ILOG_VAL_MAX || (p[1] == ILOG_DEL && vlen) ||
	    avail - ILOG_OP_HDR < klen + vlen)
		return 0;
	op->db = p[0];
	op->kind = p[1];
	op->key = p + ILOG_OP_HDR;
	op->klen = klen;
	op->val = p[1] == ILOG_PUT ? p + ILOG_OP_HDR + klen : NULL;
	op->vlen = vlen;
	return ILOG_OP_HDR + klen + vlen;
}

int ilog_check(const void *data, size_t len, uint64_t *lsn, uint64_t *epoch, uint32_t *nops)
{
	const unsigned char *p = data;
	uint32_t n, opbytes;
	size_t pos;

	if (!p || len < ILOG_HDR + ILOG_TRAILER || memcmp(p, ILOG_MAGIC, 4) != 0 ||
	    p[4] != ILOG_VERSION || p[5] || p[6] || p[7])
		return -EUCLEAN;
	n = get_le32(p + 24);
	opbytes = get_le32(p + 28);
	if ((size_t)opbytes != len - ILOG_HDR - ILOG_TRAILER)
		return -EUCLEAN;
	if (idx_rec_get_le64(p + len - ILOG_TRAILER) != XXH64(p, len - ILOG_TRAILER, 0))
		return -EUCLEAN;
	pos = ILOG_HDR;
	for (uint32_t i = 0; i < n; i++) {
		struct ilog_op op;
		size_t l = op_at(p + pos, len - ILOG_TRAILER - pos, &op);
		if (!l)
			return -EUCLEAN;
		pos += l;
	}
	if (pos != len - ILOG_TRAILER)
		return -EUCLEAN;
	if (lsn)
		*lsn = idx_rec_get_le64(p + 8);
	if (epoch)
		*epoch = idx_rec_get_le64(p + 16);
	if (nops)
		*nops = n;
	return 0;
}

int ilog_next(const void *data, size_t len, size_t *pos, struct ilog_op *op)
{
	const unsigned char *p = data;
	size_t l;

	if (*pos == 0)
		*pos = ILOG_HDR;
	if (*pos >= len - ILOG_TRAILER)
		return 0;
	l = op_at(p + *pos, len - ILOG_TRAILER - *pos, op);
	if (!l)
		return 0;
	*pos += l;
	return 1;
}

void ilog_effect(const struct ilog_op *op, struct ilog_effect *e)
{
	memset(e, 0, sizeof(*e));
	if (op->klen < 8)
		return;
	switch (op->db) {
	case ILOG_DB_INODES: case ILOG_DB_INLINE:
		if (op->klen == 8) {
			e->what = ILOG_W_INODE;
			e->ino = idx_rec_get_be64(op->key);
		}
		break;
	case ILOG_DB_FRAGS:
		if (op->klen == 16) {
			e->what = ILOG_W_INODE;
			e->ino = idx_rec_get_be64(op->key);
		}
		break;
	case ILOG_DB_XATTRS:
		e->what = ILOG_W_INODE;
		e->ino = idx_rec_get_be64(op->key);
		break;
	case ILOG_DB_DIRENTS:
		if (op->klen > 8) {
			e->what = ILOG_W_DIRENT;
			e->parent = idx_rec_get_be64(op->key);
			e->name = (const char *)op->key + 8;
			e->name_len = op->klen - 8;
		}
		break;
	case ILOG_DB_REFS:
		if (op->klen == 8) {
			e->what = op->kind == ILOG_DEL ? ILOG_W_REF_GONE : ILOG_W_REF_SET;
			e->frag = idx_rec_get_be64(op->key);
		}
		break;
	case ILOG_DB_ORPHANS:
		if (op->klen == 8) {
			e->what = ILOG_W_ORPHAN;
			e->ino = idx_rec_get_be64(op->key);
		}
		break;
	case ILOG_DB_SNAPS:
		e->what = ILOG_W_SNAP;
		break;
	default:
		break;
	}
}
