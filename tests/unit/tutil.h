/* tutil — small helpers shared by the unit tests: a seeded PRNG (seed
 * logged as "# seed N", env TEST_SEED overrides), temporary directories
 * and file counting. Header-only; include after tap.h.
 *
 * Temporary directories go under $PFS_TEST_DIR when set, else /dev/shm
 * when it is a writable directory (fragment puts fsync every image, which
 * costs ~15 ms each on a disk and nothing on tmpfs), else $TMPDIR, else
 * /tmp. Each test removes its directories at the end. */
#ifndef PFS_TUTIL_H
#define PFS_TUTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/tclock.h"

static uint64_t tut_rng_state;

static inline uint64_t rnd(void)
{
	uint64_t z = (tut_rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) (n > 0). */
static inline uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static inline uint64_t seed_init(void)
{
	const char *s = getenv("TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0)
			  : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);

	printf("# seed %llu (set TEST_SEED to repeat)\n", (unsigned long long)seed);
	tut_rng_state = seed;
	return seed;
}

/* Make a fresh temporary directory named after TAG into OUT (CAP bytes).
 * @return 0 or -errno. */
static inline int tut_mkdtemp(char *out, size_t cap, const char *tag)
{
	const char *base = getenv("PFS_TEST_DIR");
	struct stat sb;

	if (!base && stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    access("/dev/shm", W_OK | X_OK) == 0)
		base = "/dev/shm";
	if (!base)
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if ((size_t)snprintf(out, cap, "%s/payloadfs-%s.XXXXXX", base, tag) >= cap)
		return -ENAMETOOLONG;
	return mkdtemp(out) ? 0 : -errno;
}

static int tut_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

/* rm -rf PATH. */
static inline void tut_rmrf(const char *path)
{
	nftw(path, tut_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tut_count_sfx;
static long tut_count_n;

static int tut_count_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	size_t n = strlen(path), s = tut_count_sfx ? strlen(tut_count_sfx) : 0;

	(void)sb; (void)ftw;
	if (flag == FTW_F && (!s || (n >= s && strcmp(path + n - s, tut_count_sfx) == 0)))
		tut_count_n++;
	return 0;
}

/* Regular files under DIR (recursively) whose name ends in SFX (NULL: all).
 * @return the count, or -1 when DIR cannot be walked. */
static inline long tut_count_files(const char *dir, const char *sfx)
{
	tut_count_sfx = sfx;
	tut_count_n = 0;
	if (nftw(dir, tut_count_one, 16, FTW_PHYS) < 0)
		return -1;
	return tut_count_n;
}

#endif
