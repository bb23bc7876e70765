/* test_backend_cached — the on-disk image cache in front of another
 * backend (cache/backend_cached.c, invariants (1)-(4)): the backend
 * contract over it (memory backend inside); a miss is fetched with one
 * inner batch and kept, the next read is served from the file; the
 * budget evicts least recently used first; a torn or damaged file is
 * dropped and fetched again; del drops the copy; a reopen rebuilds the
 * LRU from the directory and removes temporary files. */
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/backend.h"
#include "cache/codec.h"
#include "cache/log.h"
#include "tests/unit/tap.h"
#include "tests/unit/backend_contract.h"

static char root[4096];

static int rm1(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	(void)sb;
	(void)w;
	return f == FTW_DP ? rmdir(p) : unlink(p);
}

/* An encoded image of ID with RAW bytes of raw data. */
static unsigned char *image(uint64_t id, size_t raw, size_t *len)
{
	char *data = malloc(raw);
	unsigned char *out = malloc(frag_encode_bound(raw));

	for (size_t i = 0; i < raw; i++)
		data[i] = (char)('a' + (id * 7 + i * 13) % 26);
	frag_encode(id, data, raw, 1, out, frag_encode_bound(raw), len, NULL);
	free(data);
	return out;
}

static size_t lens[1024];     /* the image size of each id (the cap a reader passes) */

static int get1(struct frag_backend *b, uint64_t id, unsigned char *buf, size_t cap, size_t *len)
{
	struct frag_get r = { .id = id, .buf = buf, .cap = lens[id] ? lens[id] : cap };
	int rc = frag_get_many(b, &r, 1);

	*len = r.len;
	return rc ? rc : r.err;
}

static int cached_file(const char *dir, uint64_t id)
{
	char p[4300];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%02x/%016" PRIx64, dir, (unsigned)(id & 0xff), id);
	return stat(p, &sb) == 0 ? (int)sb.st_size : -1;
}

static void stats(struct frag_backend *c, uint64_t *hits, uint64_t *misses, uint64_t *files)
{
	uint64_t bytes;

	backend_cached_stats(c, hits, misses, &bytes, files);
}

int main(void)
{
	char dir[4200], dir2[4200], p[4400];
	struct frag_backend *mem, *c;
	unsigned char *img[6], buf[1 << 16];
	size_t len[6], got;
	uint64_t hits, misses, files;
	int ok, rc;

	seed_init();
	log_init("test_backend_cached", LOG_TO_STDERR, LOG_ERR);
	snprintf(root, sizeof(root), "%s/payloadfs-cached.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/contract", root);
	backend_mem_open(&mem);
	CHECK_EQ(backend_cached_open(mem, dir, (uint64_t)64 << 20, &c), 0, "open a cache over the memory backend");
	contract_run(c, "cached");
	frag_backend_destroy(c);

	/* caching with real images: 6 of about 4 KiB each (they compress) */
	snprintf(dir, sizeof(dir), "%s/c", root);
	backend_mem_open(&mem);
	for (int i = 0; i < 6; i++) {
		img[i] = image(100 + (uint64_t)i, 8000, &len[i]);
		lens[100 + i] = len[i];
		frag_put(mem, 100 + (uint64_t)i, img[i], len[i]);
	}
	/* a budget for 3 of them */
	CHECK_EQ(backend_cached_open(mem, dir, len[0] + len[1] + len[2] + 10, &c), 0, "open with room for 3 images");
	CHECK(get1(c, 100, buf, sizeof(buf), &got) == 0 && got == len[0] && !memcmp(buf, img[0], got),
	      "a miss reads the right bytes");
	CHECK_EQ(cached_file(dir, 100), (int)len[0], "... and keeps a whole copy in the cache directory");
	CHECK(get1(c, 100, buf, sizeof(buf), &got) == 0 && got == len[0] && !memcmp(buf, img[0], got),
	      "the next read of it");
	stats(c, &hits, &misses, &files);
	CHECK(hits == 1 && misses == 1, "... was served from the file (hits %" PRIu64 ", misses %" PRIu64 ")",
	      hits, misses);
	frag_del(mem, 100);     /* behind the cache's back: a copy still serves */
	CHECK(get1(c, 100, buf, sizeof(buf), &got) == 0 && got == len[0], "a cached image reads without the inner one");
	frag_put(mem, 100, img[0], len[0]);
	get1(c, 101, buf, sizeof(buf), &got);
	get1(c, 102, buf, sizeof(buf), &got);
	get1(c, 100, buf, sizeof(buf), &got);       /* 100 most recent: 101 is the oldest */
	get1(c, 103, buf, sizeof(buf), &got);       /* over the budget: 101 goes */
	CHECK(cached_file(dir, 101) < 0 && cached_file(dir, 100) > 0 && cached_file(dir, 102) > 0 &&
	      cached_file(dir, 103) > 0, "the budget evicted the least recently used image (101)");
	stats(c, &hits, &misses, &files);
	CHECK_EQ(files, 3, "3 files held");
	/* a torn file */
	snprintf(p, sizeof(p), "%s/%02x/%016" PRIx64, dir, 102 & 0xff, (uint64_t)102);
	CHECK_EQ(truncate(p, (off_t)len[2] / 2), 0, "tear the copy of 102 (what a crash can leave)");
	log_init("test_backend_cached", LOG_TO_STDERR, LOG_CRIT);
	ok = get1(c, 102, buf, sizeof(buf), &got) == 0 && got == len[2] && !memcmp(buf, img[2], got);
	log_init("test_backend_cached", LOG_TO_STDERR, LOG_ERR);
	CHECK(ok, "a torn copy is dropped: the read fetches the whole image again");
	CHECK_EQ(cached_file(dir, 102), (int)len[2], "... and keeps it whole");
	/* del drops the copy */
	CHECK_EQ(frag_del(c, 103), 0, "del through the cache");
	CHECK(cached_file(dir, 103) < 0, "... drops its copy");
	CHECK_EQ(get1(c, 103, buf, sizeof(buf), &got), -ENOENT, "... and a read is -ENOENT, never the old copy");
	/* a batch: 2 cached, 2 fetched in one inner call */
	{
		struct frag_get r[4] = { { .id = 100, .buf = buf, .cap = len[0] },
					 { .id = 104, .buf = buf + 16384, .cap = len[4] },
					 { .id = 102, .buf = buf + 32768, .cap = len[2] },
					 { .id = 999, .buf = buf + 49152, .cap = 100 } };
		uint64_t h0, m0;
		stats(c, &h0, &m0, &files);
		rc = frag_get_many(c, r, 4);
		stats(c, &hits, &misses, &files);
		CHECK(rc == 0 && !r[0].err && !r[1].err && !r[2].err && r[3].err == -ENOENT &&
		      !memcmp(r[1].buf, img[4], len[4]), "a batch of 4: 3 images and a missing id, each its result");
		CHECK(hits - h0 == 2 && misses - m0 == 2, "... 2 served from files, 2 fetched");
	}
	frag_backend_destroy(c);       /* destroys mem too */
	/* reopen: the LRU comes back from the directory; temporaries go */
	snprintf(p, sizeof(p), "%s/05/.tmp.7", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	backend_mem_open(&mem);
	CHECK_EQ(backend_cached_open(mem, dir, (uint64_t)1 << 20, &c), 0, "reopen the cache directory");
	stats(c, &hits, &misses, &files);
	CHECK_EQ(files, 3, "the 3 files are known again");
	CHECK(access(p, F_OK) < 0, "a temporary file of a crash was removed");
	CHECK(get1(c, 104, buf, sizeof(buf), &got) == 0 && got == len[4] && !memcmp(buf, img[4], got),
	      "a file of the previous run serves (the inner backend is empty now)");
	frag_backend_destroy(c);
	snprintf(dir2, sizeof(dir2), "%s/nodir/x/y", root);
	backend_mem_open(&mem);
	log_init("test_backend_cached", LOG_TO_STDERR, LOG_CRIT);
	rc = backend_cached_open(mem, dir2, 1 << 20, &c);
	CHECK(rc == -ENOENT && c == NULL, "a cache directory that cannot be made: -ENOENT, no backend");
	frag_backend_destroy(mem);      /* still the caller's */
	for (int i = 0; i < 6; i++)
		free(img[i]);
	nftw(root, rm1, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
