/* fuzz_frag_header — libFuzzer harness for frag_decode_header
 * (cache/codec.c), the 48-byte fragment image header.
 *
 * Input: byte 0 holds mode bits, the rest is the buffer handed to the
 * decoder (any length). Mode bit 0 writes the right magic and version,
 * bit 1 recomputes the header check (bytes 40..43) over bytes 0..39, so
 * the fuzzer gets past the 32-bit check and exercises the field checks;
 * bit 2 decodes only the first 48 bytes (a caller that read the header
 * alone).
 *
 * Properties checked (abort on violation):
 *  - the return is 0 or -EIO, and on -EIO the info is all zero;
 *  - 0 is returned exactly when an independent reading of the layout in
 *    docs/format.md accepts: length >= 48, magic, version 1, flags and
 *    reserved zero, the header check matching, codec raw with stored ==
 *    raw length or lz4 with 0 < stored < raw length, raw length <= 2^31-1,
 *    and a length of 48 or 48 + stored length;
 *  - the decoded fields are the bytes at their offsets, little-endian.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "cache/codec.h"

#define FUZZ_NAME "fuzz_frag_header"
#include "tests/fuzz/fuzz.h"

/* The reference check of a header image H of LEN bytes. */
static int ref_ok(const unsigned char *h, size_t len)
{
	uint64_t codec, raw, stored;

	if (len < FRAG_HDR_SIZE)
		return 0;
	if (le(h, 4) != FRAG_MAGIC || le(h + 4, 2) != FRAG_FORMAT_VER || le(h + 28, 4) != 0 ||
	    le(h + 44, 4) != 0 || le(h + 40, 4) != (uint32_t)XXH64(h, 40, 0))
		return 0;
	codec = le(h + 6, 2);
	raw = le(h + 16, 4);
	stored = le(h + 20, 4);
	if (raw > FRAG_MAX_RAW)
		return 0;
	if (codec == FRAG_CODEC_RAW ? stored != raw
	    : codec != FRAG_CODEC_LZ4 || stored == 0 || stored >= raw)
		return 0;
	return len == FRAG_HDR_SIZE || len - FRAG_HDR_SIZE == stored;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frag_info fi, zero;
	unsigned char *buf;
	size_t len;
	int rc, mode;

	if (size < 1)
		return 0;
	mode = data[0];
	len = size - 1;
	buf = malloc(len ? len : 1);   /* exact size: ASan sees any overread */
	if (!buf)
		return 0;
	memcpy(buf, data + 1, len);
	if ((mode & 1) && len >= 8) {
		put_le(buf, FRAG_MAGIC, 4);
		put_le(buf + 4, FRAG_FORMAT_VER, 2);
	}
	if ((mode & 2) && len >= FRAG_HDR_SIZE)
		put_le(buf + 40, (uint32_t)XXH64(buf, 40, 0), 4);
	if ((mode & 4) && len > FRAG_HDR_SIZE)
		len = FRAG_HDR_SIZE;

	memset(&fi, 0x5a, sizeof(fi));
	memset(&zero, 0, sizeof(zero));
	rc = frag_decode_header(buf, len, &fi);
	REQUIRE(rc == 0 || rc == -EIO);
	REQUIRE((rc == 0) == ref_ok(buf, len));
	if (rc) {
		REQUIRE(memcmp(&fi, &zero, sizeof(fi)) == 0);
	} else {
		REQUIRE(fi.codec == le(buf + 6, 2) && fi.id == le(buf + 8, 8));
		REQUIRE(fi.raw_len == le(buf + 16, 4) && fi.stored_len == le(buf + 20, 4));
		REQUIRE(fi.rows == le(buf + 24, 4) && fi.checksum == le(buf + 32, 8));
		/* a NULL info is allowed and changes nothing */
		REQUIRE(frag_decode_header(buf, len, NULL) == 0);
	}
	free(buf);
	return 0;
}
