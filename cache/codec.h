/* codec — the fragment file format: header, lz4 (or raw when lz4 does not
 * shrink the bytes) and the xxh64 checksum of the raw bytes.
 *
 * Layout (little-endian, docs/format.md §Fragment files), 48-byte header:
 *   0  u32 magic 0x47524650 ("PFRG")     4  u16 format version (1)
 *   6  u16 codec (0 raw, 1 lz4)          8  u64 fragment id
 *  16  u32 raw length                   20  u32 stored length (after header)
 *  24  u32 row count                    28  u32 flags (0)
 *  32  u64 xxh64(raw bytes, seed 0)     40  u32 low 32 bits of
 *                                           xxh64(header bytes 0..39, seed 0)
 *  44  u32 reserved (0)
 *  48  stored bytes
 * Pure functions: any thread may call. */
#ifndef PFS_CODEC_H
#define PFS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define FRAG_MAGIC        0x47524650u
#define FRAG_FORMAT_VER   1
#define FRAG_HDR_SIZE     48
#define FRAG_MAX_RAW      0x7fffffffu   /* largest raw length one fragment holds */

enum frag_codec { FRAG_CODEC_RAW = 0, FRAG_CODEC_LZ4 = 1 };

struct frag_info {
	uint64_t id;
	uint32_t raw_len;
	uint32_t stored_len;   /* bytes after the header */
	uint32_t rows;
	uint16_t codec;        /* enum frag_codec */
	uint64_t checksum;     /* xxh64 of the raw bytes */
};

/* Bytes an encoded fragment of RAW_LEN raw bytes may need (header + lz4
 * bound). */
size_t frag_encode_bound(size_t raw_len);

/* Encode RAW into OUT (capacity OUT_CAP >= frag_encode_bound(raw_len)):
 * lz4 when it shrinks the bytes, raw otherwise.
 * @param[out] out_len total bytes written (header + stored bytes)
 * @param[out] info    what the header says (may be NULL)
 * @return 0; -EINVAL raw_len > FRAG_MAX_RAW; -ERANGE out_cap too small;
 *         an injected -errno from fault point "lz4". */
int frag_encode(uint64_t id, const void *raw, size_t raw_len, uint32_t rows,
		void *out, size_t out_cap, size_t *out_len, struct frag_info *info);
/* frag_encode, but with !COMPRESS the bytes are stored raw without trying
 * lz4 (a writer staging raw when the encoders fall behind: the image is
 * compressed later by index/recompress.c). */
int frag_encode_mode(uint64_t id, const void *raw, size_t raw_len, uint32_t rows,
		     void *out, size_t out_cap, size_t *out_len, struct frag_info *info, int compress);

/* Decode and check a header only (magic, version, header check, codec,
 * lengths consistent with LEN when LEN >= FRAG_HDR_SIZE).
 * @return 0; -EIO when the header is damaged or of another format. */
int frag_decode_header(const void *buf, size_t len, struct frag_info *info);

/* Decode a whole fragment file image BUF/LEN into RAW (capacity RAW_CAP >=
 * the raw length), verifying header, id (EXPECT_ID, unless 0) and the
 * checksum of the raw bytes.
 * @param[out] info header fields (may be NULL)
 * @return 0; -EIO damaged (bad header, wrong id, short, lz4 error, checksum
 *         mismatch); -ERANGE raw_cap too small; an injected -errno from
 *         fault point "lz4_decode" (lz4 fragments only). Never returns
 *         wrong bytes with 0. */
int frag_decode(const void *buf, size_t len, uint64_t expect_id,
		void *raw, size_t raw_cap, struct frag_info *info);

/* xxh64 of BUF/LEN with seed 0: the checksum used in headers. */
uint64_t frag_checksum(const void *buf, size_t len);

#endif
