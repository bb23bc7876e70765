/* fuzz_ilog — libFuzzer harness for the index log entry decoder
 * (index/ilog.c): ilog_check, ilog_next, ilog_effect on any bytes.
 *
 * Input: byte 0 holds mode bits, the rest is the entry. Mode bit 0
 * writes the magic and version and recomputes the length field and the
 * xxh64 trailer, so the fuzzer gets past them and exercises the op
 * checks.
 *
 * Properties checked (abort on violation):
 *  - ilog_check returns 0 or -EUCLEAN;
 *  - when it accepts, ilog_next yields exactly nops ops, each inside the
 *    entry, and building a new entry from them (ilog_buf_add, then
 *    ilog_buf_finish with the same lsn and epoch) gives the same bytes:
 *    the decoder accepts only what the encoder writes;
 *  - ilog_effect never reads outside an op's key (ASan) and names a
 *    dirent's name inside the key.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "index/ilog.h"

#define FUZZ_NAME "fuzz_ilog"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *e;
	size_t len, pos = 0;
	uint64_t lsn, epoch;
	uint32_t nops, n = 0;
	struct ilog_op op;
	struct ilog_buf b;
	int rc;

	if (size < 1)
		return 0;
	len = size - 1;
	e = malloc(len ? len : 1);
	memcpy(e, data + 1, len);
	if ((data[0] & 1) && len >= ILOG_HDR + ILOG_TRAILER) {
		memcpy(e, "PFL1", 4);
		e[4] = 1;
		e[5] = e[6] = e[7] = 0;
		put_le(e + 28, len - ILOG_HDR - ILOG_TRAILER, 4);
		put_le(e + len - ILOG_TRAILER, XXH64(e, len - ILOG_TRAILER, 0), 8);
	}
	rc = ilog_check(e, len, &lsn, &epoch, &nops);
	REQUIRE(rc == 0 || rc == -EUCLEAN);
	if (rc == 0) {
		ilog_buf_init(&b);
		while (ilog_next(e, len, &pos, &op)) {
			struct ilog_effect ef;
			REQUIRE(op.key >= e && op.key + op.klen <= e + len);
			REQUIRE(!op.val || (op.val >= e && op.val + op.vlen <= e + len));
			ilog_effect(&op, &ef);
			if (ef.what == ILOG_W_DIRENT)
				REQUIRE((const unsigned char *)ef.name >= op.key &&
					(const unsigned char *)ef.name + ef.name_len <= op.key + op.klen);
			REQUIRE(ilog_buf_add(&b, op.db, op.kind, op.key, op.klen, op.val, op.vlen) == 0);
			n++;
		}
		REQUIRE(n == nops);
		REQUIRE(ilog_buf_finish(&b, lsn, epoch) == 0);
		REQUIRE(b.len == len && memcmp(b.data, e, len) == 0);
		ilog_buf_free(&b);
	}
	free(e);
	return 0;
}
