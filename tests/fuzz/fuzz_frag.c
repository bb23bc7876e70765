/* fuzz_frag — libFuzzer harness for the whole fragment image codec
 * (cache/codec.c): frag_decode on arbitrary images, and frag_encode ->
 * frag_decode round trips with a damaged copy.
 *
 * Input: byte 0 picks the mode and its options; the rest is the payload.
 *
 *  Decode mode (byte 0 bit 0 clear): the rest is an image. Options repair
 *  it so that the fuzzer reaches the deep checks: bit 1 sets magic and
 *  version, bit 2 sets the stored length to what follows the header, bit
 *  3 sets the raw checksum to the xxh64 of what an independent decode of
 *  the stored bytes yields, bit 4 recomputes the header check; bit 5
 *  passes the header's id as the expected id, bit 6 a wrong one; bit 7
 *  gives a raw buffer one byte short.
 *  Properties: the return is 0, -EIO or -ERANGE; on failure the info is
 *  zero; 0 is returned only when the raw bytes written are exactly the
 *  stored bytes (raw codec) or what LZ4_decompress_safe makes of them
 *  (lz4), fill exactly the raw length, and their xxh64 is the header's
 *  checksum; -ERANGE exactly when the buffer is short of a header that
 *  decodes; a wrong expected id is -EIO. The raw buffer is allocated to
 *  its exact capacity, so ASan catches any write past it.
 *
 *  Round-trip mode (bit 0 set): bytes 1..8 are the id, 9..12 the row
 *  count, 13..16 a position and mask for one damaged byte, the rest the
 *  raw bytes. Properties: frag_encode succeeds within frag_encode_bound,
 *  its image decodes to the same bytes and header fields (lz4 only when it
 *  shrank the bytes), a truncated or extended image and a wrong expected
 *  id are -EIO, and the image with one byte changed either fails or
 *  decodes to exactly the original bytes — never to other bytes.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#include "cache/codec.h"

#define FUZZ_NAME "fuzz_frag"
#include "tests/fuzz/fuzz.h"

#define RAW_CAP_MAX (1u << 20)   /* largest raw buffer the harness hands out */

static int is_zero(const struct frag_info *fi)
{
	struct frag_info z;

	memset(&z, 0, sizeof(z));
	return memcmp(fi, &z, sizeof(z)) == 0;
}

/* Field by field: struct copies carry indeterminate padding. */
static int info_eq(const struct frag_info *a, const struct frag_info *b)
{
	return a->id == b->id && a->raw_len == b->raw_len && a->stored_len == b->stored_len &&
	       a->rows == b->rows && a->codec == b->codec && a->checksum == b->checksum;
}

/* An independent decode of the stored bytes of IMG/LEN per its header
 * (no checks but lz4's own). @return a malloc'd buffer of *N bytes, or
 * NULL when it cannot be decoded. */
static unsigned char *ref_expand(const unsigned char *img, size_t len, size_t *n)
{
	uint64_t codec = le(img + 6, 2), raw = le(img + 16, 4);
	unsigned char *out;
	int got;

	if (len < FRAG_HDR_SIZE || raw > RAW_CAP_MAX)
		return NULL;
	out = malloc(raw ? raw : 1);
	if (!out)
		return NULL;
	if (codec == FRAG_CODEC_RAW && len - FRAG_HDR_SIZE == raw) {
		memcpy(out, img + FRAG_HDR_SIZE, raw);
		*n = raw;
		return out;
	}
	if (codec == FRAG_CODEC_LZ4 && len - FRAG_HDR_SIZE <= INT32_MAX) {
		got = LZ4_decompress_safe((const char *)img + FRAG_HDR_SIZE, (char *)out,
					  (int)(len - FRAG_HDR_SIZE), (int)raw);
		if (got >= 0 && (uint64_t)got == raw) {
			*n = raw;
			return out;
		}
	}
	free(out);
	return NULL;
}

static void decode_mode(int mode, const uint8_t *data, size_t size)
{
	unsigned char *img = malloc(size ? size : 1), *raw, *ref;
	struct frag_info fi, hi;
	uint64_t expect = 0;
	size_t cap = 0, refn = 0;
	int rc, hrc;

	if (!img)
		return;
	memcpy(img, data, size);
	if (size >= FRAG_HDR_SIZE) {
		if (mode & 2) {
			put_le(img, FRAG_MAGIC, 4);
			put_le(img + 4, FRAG_FORMAT_VER, 2);
		}
		if (mode & 4)
			put_le(img + 20, size - FRAG_HDR_SIZE, 4);
		if ((mode & 8) && (ref = ref_expand(img, size, &refn))) {
			put_le(img + 32, XXH64(refn ? ref : (unsigned char *)"", refn, 0), 8);
			free(ref);
		}
		if (mode & 16)
			put_le(img + 40, (uint32_t)XXH64(img, 40, 0), 4);
		if (mode & 32)
			expect = le(img + 8, 8);
		if (mode & 64)
			expect = le(img + 8, 8) + 1;
		if (!expect && (mode & 96))
			expect = 1;   /* 0 would mean "any id" */
		cap = le(img + 16, 4);
		if (cap > RAW_CAP_MAX)
			cap = RAW_CAP_MAX;
		if ((mode & 128) && cap)
			cap--;
	}
	raw = malloc(cap ? cap : 1);
	if (!raw) {
		free(img);
		return;
	}
	hrc = frag_decode_header(img, size, &hi);
	memset(&fi, 0x5a, sizeof(fi));
	rc = frag_decode(img, size, expect, raw, cap, &fi);
	REQUIRE(rc == 0 || rc == -EIO || rc == -ERANGE);
	if (rc)
		REQUIRE(is_zero(&fi));
	if (rc == -ERANGE)
		REQUIRE(hrc == 0 && cap < hi.raw_len);
	if (hrc) {
		REQUIRE(rc == -EIO);   /* a bad header never decodes */
	} else if (size != FRAG_HDR_SIZE + (size_t)hi.stored_len || (expect && hi.id != expect)) {
		REQUIRE(rc == -EIO);
	} else if (cap < hi.raw_len) {
		REQUIRE(rc == -ERANGE);
	}
	if (rc == 0) {
		REQUIRE(hrc == 0 && info_eq(&fi, &hi));
		REQUIRE(!expect || fi.id == expect);
		REQUIRE(fi.raw_len <= cap);
		ref = ref_expand(img, size, &refn);
		REQUIRE(ref && refn == fi.raw_len && memcmp(ref, raw, refn) == 0);
		REQUIRE(XXH64(refn ? raw : (unsigned char *)"", refn, 0) == fi.checksum);
		free(ref);
	}
	free(raw);
	free(img);
}

static void roundtrip_mode(const uint8_t *data, size_t size)
{
	uint64_t id;
	uint32_t rows, damage;
	const uint8_t *rawin;
	size_t rawlen, bound, outlen = 0;
	unsigned char *img, *back, *bad;
	struct frag_info info, got;
	int rc;

	if (size < 16)
		return;
	id = le(data, 8);
	rows = (uint32_t)le(data + 8, 4);
	damage = (uint32_t)le(data + 12, 4);
	rawin = data + 16;
	rawlen = size - 16;
	bound = frag_encode_bound(rawlen);
	REQUIRE(bound >= FRAG_HDR_SIZE + rawlen);
	img = malloc(bound);
	back = malloc(rawlen ? rawlen : 1);
	bad = malloc(bound + 1);
	if (!img || !back || !bad)
		goto out;
	rc = frag_encode(id, rawin, rawlen, rows, img, bound, &outlen, &info);
	REQUIRE(rc == 0 && outlen <= bound && outlen == FRAG_HDR_SIZE + (size_t)info.stored_len);
	REQUIRE(info.id == id && info.raw_len == rawlen && info.rows == rows);
	REQUIRE(info.codec == FRAG_CODEC_RAW ? info.stored_len == rawlen
		: info.codec == FRAG_CODEC_LZ4 && info.stored_len < rawlen);
	REQUIRE(info.checksum == frag_checksum(rawin, rawlen));

	/* a buffer of exactly FRAG_HDR_SIZE + raw length is enough too */
	{
		size_t tight = FRAG_HDR_SIZE + rawlen, n2 = 0;
		unsigned char *t = malloc(tight);
		if (t) {
			REQUIRE(frag_encode(id, rawin, rawlen, rows, t, tight, &n2, NULL) == 0);
			REQUIRE(n2 == outlen && memcmp(t, img, n2) == 0);
			if (tight > FRAG_HDR_SIZE)
				REQUIRE(frag_encode(id, rawin, rawlen, rows, t, FRAG_HDR_SIZE - 1, &n2,
						    NULL) == -ERANGE && n2 == 0);
			free(t);
		}
	}

	memset(&got, 0, sizeof(got));
	REQUIRE(frag_decode(img, outlen, id, back, rawlen, &got) == 0);
	REQUIRE(info_eq(&got, &info));
	REQUIRE(rawlen == 0 || memcmp(back, rawin, rawlen) == 0);
	REQUIRE(frag_decode(img, outlen, 0, back, rawlen, NULL) == 0);
	REQUIRE(frag_decode(img, outlen, id + 1 ? id + 1 : 1, back, rawlen, NULL) == -EIO);
	REQUIRE(frag_decode(img, outlen - 1, id, back, rawlen, NULL) == -EIO);
	memcpy(bad, img, outlen);
	bad[outlen] = 0;
	REQUIRE(frag_decode(bad, outlen + 1, id, back, rawlen, NULL) == -EIO);
	if (rawlen)
		REQUIRE(frag_decode(img, outlen, id, back, rawlen - 1, NULL) == -ERANGE);

	/* one damaged byte: an error, or exactly the original bytes */
	if ((damage >> 24) & 0xff) {
		size_t pos = (damage & 0xffffff) % outlen;
		bad[pos] ^= (unsigned char)(damage >> 24);
		rc = frag_decode(bad, outlen, id, back, rawlen, NULL);
		REQUIRE(rc == 0 || rc == -EIO);
		if (rc == 0)
			REQUIRE(rawlen == 0 || memcmp(back, rawin, rawlen) == 0);
	}
out:
	free(img);
	free(back);
	free(bad);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		roundtrip_mode(data + 1, size - 1);
	else
		decode_mode(data[0], data + 1, size - 1);
	return 0;
}
