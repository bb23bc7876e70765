/* test_codec — the fragment codec: round trips on the raw and lz4 paths,
 * the exact header layout, and damage of every kind giving -EIO, never
 * wrong bytes. Random data comes from a logged seed (env TEST_SEED). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/codec.h"
#include "cache/fault.h"
#include "tests/unit/tap.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void seed_init(void)
{
	const char *s = getenv("TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);

	printf("# seed %llu\n", (unsigned long long)seed);
	rng_state = seed;
}

static void fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rnd();
}

/* CSV-like text: compresses well. */
static void fill_text(unsigned char *p, size_t n)
{
	static const char *words[] = { "alpha,", "beta,", "12345,", "gamma\n", "x," };

	for (size_t i = 0; i < n;) {
		const char *w = words[rnd() % 5];
		for (size_t k = 0; w[k] && i < n; k++)
			p[i++] = (unsigned char)w[k];
	}
}

/* Encode then decode RAW/N; @return 1 when the bytes and info round trip. */
static int round_trip(uint64_t id, const unsigned char *raw, size_t n, int *codec)
{
	size_t cap = frag_encode_bound(n), len = 0;
	unsigned char *img = malloc(cap), *back = malloc(n + 1);
	struct frag_info ei, di;
	int ok = 0;

	if (frag_encode(id, raw, n, 7, img, cap, &len, &ei) == 0 &&
	    frag_decode(img, len, id, back, n, &di) == 0)
		ok = di.raw_len == n && di.id == id && di.rows == 7 &&
		     di.checksum == frag_checksum(raw, n) && di.codec == ei.codec &&
		     di.stored_len == ei.stored_len && len == FRAG_HDR_SIZE + di.stored_len &&
		     (n == 0 || memcmp(raw, back, n) == 0);
	*codec = ei.codec;
	free(img);
	free(back);
	return ok;
}

static void test_round_trips(void)
{
	size_t n = 256 * 1024;
	unsigned char *buf = malloc(n);
	int codec = -1, bad = 0;

	fill_text(buf, n);
	CHECK(round_trip(1, buf, n, &codec), "lz4 round trip of %zu text bytes", n);
	CHECK_EQ(codec, FRAG_CODEC_LZ4, "text uses lz4");
	fill_random(buf, n);
	CHECK(round_trip(2, buf, n, &codec), "raw round trip of %zu random bytes", n);
	CHECK_EQ(codec, FRAG_CODEC_RAW, "incompressible input stored raw");
	CHECK(round_trip(3, NULL, 0, &codec), "empty fragment round trips");
	CHECK_EQ(codec, FRAG_CODEC_RAW, "empty fragment is raw");
	CHECK(round_trip(4, buf, 1, &codec), "one-byte fragment round trips");
	for (int i = 0; i < 200; i++) {
		size_t m = rnd() % 20000;
		if (rnd() & 1)
			fill_text(buf, m);
		else
			fill_random(buf, m);
		bad += !round_trip(rnd() | 1, buf, m, &codec);
	}
	CHECK_EQ(bad, 0, "200 random-size round trips");
	free(buf);
}

static void test_header_layout(void)
{
	unsigned char raw[100], img[FRAG_HDR_SIZE + 200];
	size_t len;
	struct frag_info fi;

	fill_random(raw, sizeof(raw));
	CHECK_EQ(frag_encode(0x0102030405060708ull, raw, sizeof(raw), 0x11223344,
			     img, sizeof(img), &len, &fi), 0, "encode random 100 bytes");
	CHECK(memcmp(img, "PFRG", 4) == 0, "magic bytes spell PFRG");
	CHECK(img[4] == 1 && img[5] == 0, "version 1, little-endian");
	CHECK(img[6] == 0 && img[7] == 0, "codec raw");
	CHECK(img[8] == 0x08 && img[15] == 0x01, "id little-endian");
	CHECK(img[16] == 100 && img[17] == 0 && img[20] == 100, "raw and stored length");
	CHECK(img[24] == 0x44 && img[27] == 0x11, "rows little-endian");
	CHECK(img[44] == 0 && img[47] == 0, "reserved zero");
	CHECK_EQ(len, FRAG_HDR_SIZE + 100, "raw image length");
	CHECK(memcmp(img + FRAG_HDR_SIZE, raw, 100) == 0, "raw payload follows the header");
	CHECK_EQ(frag_decode_header(img, FRAG_HDR_SIZE, &fi), 0, "header alone decodes");
	CHECK(fi.id == 0x0102030405060708ull && fi.rows == 0x11223344 && fi.raw_len == 100,
	      "header fields");
	CHECK_EQ(frag_decode_header(img, len, &fi), 0, "header with whole image");
	CHECK_EQ(frag_decode_header(img, len - 1, &fi), -EIO, "header vs short image");
	CHECK_EQ(frag_decode_header(img, FRAG_HDR_SIZE - 1, &fi), -EIO, "47 bytes are no header");
	CHECK(frag_checksum("", 0) == 0xef46db3751d8e999ull, "xxh64 of nothing, seed 0");
}

struct flips {
	int not_eio;        /* flips that did not give -EIO */
	int wrong_bytes;    /* flips that returned 0 with different bytes */
	size_t first_benign, last_benign;
};

/* Decode IMG after flipping MASK into byte I; update F. */
static void flip_one(unsigned char *img, size_t len, size_t i, unsigned char mask,
		     const unsigned char *raw, size_t raw_len, unsigned char *out,
		     struct flips *f)
{
	int rc;

	img[i] ^= mask;
	rc = frag_decode(img, len, 42, out, raw_len + 1, NULL);
	img[i] ^= mask;
	if (rc == -EIO)
		return;
	if (rc != 0 || memcmp(out, raw, raw_len) != 0) {
		f->wrong_bytes++;
		return;
	}
	if (!f->not_eio++)
		f->first_benign = i;
	f->last_benign = i;
}

/* Flip every bit of every byte of an image (and a random mask per byte). */
static struct flips flip_all(unsigned char *img, size_t len, const unsigned char *raw,
			     size_t raw_len)
{
	unsigned char *out = malloc(raw_len + 1);
	struct flips f = { 0, 0, 0, 0 };

	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++)
			flip_one(img, len, i, (unsigned char)(1u << bit), raw, raw_len, out, &f);
		flip_one(img, len, i, (unsigned char)(rnd() | 1), raw, raw_len, out, &f);
	}
	free(out);
	return f;
}

/* Single-byte damage. Every flip in the header and in a raw payload is
 * -EIO. In an lz4 payload a few flips are benign: the low nibble of the
 * final token (the match length of the last sequence, which has no match)
 * is ignored by the decoder, and a flipped match offset may point at an
 * identical earlier copy of the same bytes. Those decode to the identical,
 * checksum-verified bytes. The format has no checksum over stored bytes,
 * so that is the best possible: -EIO or the right bytes, never wrong ones. */
static void test_flips(const unsigned char *raw, size_t raw_len, unsigned char *img,
		       size_t len, int codec)
{
	struct flips all = flip_all(img, len, raw, raw_len);
	const char *name = codec == FRAG_CODEC_LZ4 ? "lz4" : "raw";

	CHECK_EQ(all.wrong_bytes, 0, "%s: no flip in %zu bytes returns wrong bytes", name, len);
	CHECK(all.not_eio == 0 || all.first_benign >= FRAG_HDR_SIZE,
	      "%s: every header byte flip gives -EIO", name);
	if (codec == FRAG_CODEC_RAW)
		CHECK_EQ(all.not_eio, 0, "raw: every payload byte flip gives -EIO");
	else
		printf("# lz4: %d of %zu payload flips decode to the identical bytes\n",
		       all.not_eio, (len - FRAG_HDR_SIZE) * 9);
}

static void test_damage(void)
{
	unsigned char raw[300], img[FRAG_HDR_SIZE + 400], out[400];
	size_t len, bad = 0;
	struct frag_info fi;

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			fill_text(raw, sizeof(raw));
		else
			fill_random(raw, sizeof(raw));
		frag_encode(42, raw, sizeof(raw), 3, img, sizeof(img), &len, &fi);
		CHECK_EQ(fi.codec, pass == 0 ? FRAG_CODEC_LZ4 : FRAG_CODEC_RAW, "small fragment codec");
		test_flips(raw, sizeof(raw), img, len, fi.codec);
		bad = 0;
		for (size_t l = 0; l < len; l++)
			bad += frag_decode(img, l, 42, out, sizeof(out), NULL) != -EIO;
		CHECK_EQ(bad, 0, "every truncation gives -EIO");
		img[len] = 0;
		CHECK_EQ(frag_decode(img, len + 1, 42, out, sizeof(out), NULL), -EIO,
			 "a trailing byte gives -EIO");
		CHECK_EQ(frag_decode(img, len, 43, out, sizeof(out), NULL), -EIO, "wrong id gives -EIO");
		CHECK_EQ(frag_decode(img, len, 0, out, sizeof(out), &fi), 0, "expect_id 0 accepts any id");
		CHECK_EQ(frag_decode(img, len, 42, out, sizeof(raw) - 1, &fi), -ERANGE,
			 "raw_cap too small gives -ERANGE");
		CHECK_EQ(fi.raw_len, 0, "info zeroed on failure");
		CHECK_EQ(frag_decode(img, len, 42, out, sizeof(raw), &fi), 0, "exact raw_cap works");
		CHECK(memcmp(out, raw, sizeof(raw)) == 0, "bytes intact");
	}
	CHECK_EQ(frag_decode(NULL, 0, 0, out, sizeof(out), NULL), -EIO, "empty buffer gives -EIO");
}

static void test_encode_errors(void)
{
	unsigned char raw[64] = { 0 }, img[FRAG_HDR_SIZE + 64];
	size_t len = 99;

	CHECK_EQ(frag_encode(1, raw, sizeof(raw), 0, img, FRAG_HDR_SIZE + 10, &len, NULL), -ERANGE,
		 "out_cap too small gives -ERANGE");
	CHECK_EQ(len, 0, "out_len 0 on failure");
	CHECK_EQ(frag_encode(1, raw, (size_t)FRAG_MAX_RAW + 1, 0, img, sizeof(img), &len, NULL),
		 -EINVAL, "raw_len > FRAG_MAX_RAW gives -EINVAL");
	CHECK(frag_encode_bound(1000) >= FRAG_HDR_SIZE + 1000, "bound covers raw storage");
	CHECK(frag_encode_bound(0) == FRAG_HDR_SIZE, "bound of empty is the header");
#ifdef PFS_FAULT_INJECTION
	CHECK_EQ(fault_arm("lz4", 2, ENOSPC), 0, "arm lz4 fault on 2nd call");
	CHECK_EQ(frag_encode(1, raw, sizeof(raw), 0, img, sizeof(img), &len, NULL), 0,
		 "1st encode passes");
	CHECK_EQ(frag_encode(1, raw, sizeof(raw), 0, img, sizeof(img), &len, NULL), -ENOSPC,
		 "injected lz4 fault returns its errno");
	CHECK_EQ(frag_encode(1, raw, sizeof(raw), 0, img, sizeof(img), &len, NULL), 0,
		 "fault fires once");
	fault_reset();
#endif
}

int main(void)
{
	seed_init();
	test_round_trips();
	test_header_layout();
	test_damage();
	test_encode_errors();
	return tap_done();
}
