/* codec — the fragment file format: see codec.h for the layout.
 *
 * Invariants:
 *  (1) Every header field is written and read byte by byte in little-endian
 *      order; no struct is ever copied to or from the image.
 *  (2) An image whose header decodes is self-consistent: magic, version,
 *      codec known, flags and reserved zero, header check matching, raw
 *      length <= FRAG_MAX_RAW, and stored length == raw length (raw codec)
 *      or 0 < stored length < raw length (lz4: only used when it shrinks).
 *  (3) frag_decode() returns 0 only after the xxh64 of the bytes it wrote
 *      matched the header's checksum; any other outcome is an error. */
#include "cache/codec.h"

#include <errno.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "cache/fault.h"

/* Byte offsets of the header fields. */
enum {
	OFF_MAGIC = 0, OFF_VERSION = 4, OFF_CODEC = 6, OFF_ID = 8,
	OFF_RAW_LEN = 16, OFF_STORED_LEN = 20, OFF_ROWS = 24, OFF_FLAGS = 28,
	OFF_CHECKSUM = 32, OFF_HDR_CHECK = 40, OFF_RESERVED = 44,
};

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t frag_checksum(const void *buf, size_t len)
{
	return XXH64(len ? buf : "", len, 0);
}

/* The 32-bit check over header bytes 0..39. */
static uint32_t header_check(const unsigned char *hdr)
{
	return (uint32_t)XXH64(hdr, OFF_HDR_CHECK, 0);
}

/* lz4's worst-case output for RAW_LEN bytes, or 0 when lz4 cannot take an
 * input that large (the fragment is then stored raw). */
static size_t lz4_bound(size_t raw_len)
{
	if (raw_len == 0 || raw_len > LZ4_MAX_INPUT_SIZE)
		return 0;
	return (size_t)LZ4_compressBound((int)raw_len);
}

size_t frag_encode_bound(size_t raw_len)
{
	size_t lz = lz4_bound(raw_len);

	return FRAG_HDR_SIZE + (lz > raw_len ? lz : raw_len);
}

/* Fill the 48 header bytes at HDR from INFO (checksum included). */
static void header_write(unsigned char *hdr, const struct frag_info *info)
{
	put_le32(hdr + OFF_MAGIC, FRAG_MAGIC);
	put_le16(hdr + OFF_VERSION, FRAG_FORMAT_VER);
	put_le16(hdr + OFF_CODEC, info->codec);
	put_le64(hdr + OFF_ID, info->id);
	put_le32(hdr + OFF_RAW_LEN, info->raw_len);
	put_le32(hdr + OFF_STORED_LEN, info->stored_len);
	put_le32(hdr + OFF_ROWS, info->rows);
	put_le32(hdr + OFF_FLAGS, 0);
	put_le64(hdr + OFF_CHECKSUM, info->checksum);
	put_le32(hdr + OFF_HDR_CHECK, header_check(hdr));
	put_le32(hdr + OFF_RESERVED, 0);
}

/* Compress RAW/RAW_LEN into DST when lz4 makes it strictly smaller and the
 * result fits in DST_CAP. @return the compressed length, or 0 (store raw). */
static size_t try_lz4(const void *raw, size_t raw_len, void *dst, size_t dst_cap)
{
	size_t cap = raw_len - 1;   /* only worth it when strictly smaller */
	int n;

	if (raw_len < 2 || raw_len > LZ4_MAX_INPUT_SIZE)
		return 0;
	if (cap > dst_cap)
		cap = dst_cap;
	n = LZ4_compress_default(raw, dst, (int)raw_len, (int)cap);
	return n > 0 ? (size_t)n : 0;
}

/* Needs OUT_CAP >= FRAG_HDR_SIZE + RAW_LEN (lz4 output never exceeds the
 * raw length, since it is only kept when smaller); -ERANGE otherwise. On
 * failure OUT is unspecified and *OUT_LEN is 0. */
int frag_encode(uint64_t id, const void *raw, size_t raw_len, uint32_t rows,
		void *out, size_t out_cap, size_t *out_len, struct frag_info *info)
{
	return frag_encode_mode(id, raw, raw_len, rows, out, out_cap, out_len, info, 1);
}

int frag_encode_mode(uint64_t id, const void *raw, size_t raw_len, uint32_t rows,
		     void *out, size_t out_cap, size_t *out_len, struct frag_info *info, int compress)
{
	unsigned char *o = out;
	struct frag_info fi = { .id = id, .raw_len = (uint32_t)raw_len, .rows = rows };
	size_t n;
	int rc;

	*out_len = 0;
	rc = FAULT("lz4");
	if (rc)
		return rc;
	if (raw_len > FRAG_MAX_RAW)
		return -EINVAL;
	if (out_cap < FRAG_HDR_SIZE || out_cap - FRAG_HDR_SIZE < raw_len)
		return -ERANGE;
	fi.checksum = frag_checksum(raw, raw_len);
	n = compress ? try_lz4(raw, raw_len, o + FRAG_HDR_SIZE, out_cap - FRAG_HDR_SIZE) : 0;
	if (n) {
		fi.codec = FRAG_CODEC_LZ4;
		fi.stored_len = (uint32_t)n;
	} else {
		fi.codec = FRAG_CODEC_RAW;
		fi.stored_len = (uint32_t)raw_len;
		if (raw_len)
			memcpy(o + FRAG_HDR_SIZE, raw, raw_len);
	}
	header_write(o, &fi);
	*out_len = FRAG_HDR_SIZE + fi.stored_len;
	if (info)
		*info = fi;
	return 0;
}

/* Invariant (2) on decoded fields. @return true when consistent. */
static int lengths_ok(const struct frag_info *fi)
{
	if (fi->raw_len > FRAG_MAX_RAW)
		return 0;
	if (fi->codec == FRAG_CODEC_RAW)
		return fi->stored_len == fi->raw_len;
	if (fi->codec == FRAG_CODEC_LZ4)
		return fi->stored_len > 0 && fi->stored_len < fi->raw_len;
	return 0;
}

/* LEN == FRAG_HDR_SIZE checks the header alone (a caller that read only
 * the header); any longer LEN must equal FRAG_HDR_SIZE + stored length.
 * On failure *INFO is zeroed. */
int frag_decode_header(const void *buf, size_t len, struct frag_info *info)
{
	const unsigned char *h = buf;
	struct frag_info fi;

	if (info)
		memset(info, 0, sizeof(*info));
	if (!buf || len < FRAG_HDR_SIZE)
		return -EIO;
	if (get_le32(h + OFF_MAGIC) != FRAG_MAGIC ||
	    get_le16(h + OFF_VERSION) != FRAG_FORMAT_VER ||
	    get_le32(h + OFF_FLAGS) != 0 || get_le32(h + OFF_RESERVED) != 0 ||
	    get_le32(h + OFF_HDR_CHECK) != header_check(h))
		return -EIO;
	fi.codec = get_le16(h + OFF_CODEC);
	fi.id = get_le64(h + OFF_ID);
	fi.raw_len = get_le32(h + OFF_RAW_LEN);
	fi.stored_len = get_le32(h + OFF_STORED_LEN);
	fi.rows = get_le32(h + OFF_ROWS);
	fi.checksum = get_le64(h + OFF_CHECKSUM);
	if (!lengths_ok(&fi))
		return -EIO;
	if (len > FRAG_HDR_SIZE && len - FRAG_HDR_SIZE != fi.stored_len)
		return -EIO;
	if (info)
		*info = fi;
	return 0;
}

/* Expand the stored bytes of FI at SRC into RAW (at least raw_len bytes).
 * Fault point "lz4_decode" fails the lz4 path. @return 0, -EIO, or the
 * injected -errno. */
static int expand(const struct frag_info *fi, const unsigned char *src, void *raw)
{
	int n;

	if (fi->codec == FRAG_CODEC_RAW) {
		if (fi->raw_len)
			memcpy(raw, src, fi->raw_len);
		return 0;
	}
	if ((n = FAULT("lz4_decode")) != 0)
		return n;
	n = LZ4_decompress_safe((const char *)src, raw, (int)fi->stored_len,
				(int)fi->raw_len);
	return n >= 0 && (uint32_t)n == fi->raw_len ? 0 : -EIO;
}

/* On failure RAW may hold garbage and *INFO is zeroed. */
int frag_decode(const void *buf, size_t len, uint64_t expect_id,
		void *raw, size_t raw_cap, struct frag_info *info)
{
	struct frag_info fi;
	int rc;

	if (info)
		memset(info, 0, sizeof(*info));
	rc = frag_decode_header(buf, len, &fi);
	if (rc)
		return rc;
	if (len != FRAG_HDR_SIZE + (size_t)fi.stored_len)
		return -EIO;
	if (expect_id && fi.id != expect_id)
		return -EIO;
	if (raw_cap < fi.raw_len)
		return -ERANGE;
	rc = expand(&fi, (const unsigned char *)buf + FRAG_HDR_SIZE, raw);
	if (rc)
		return rc;
	if (frag_checksum(raw, fi.raw_len) != fi.checksum)
		return -EIO;
	if (info)
		*info = fi;
	return 0;
}
