/* gencsv — deterministic CSV for the benchmark (tests/bench/run.sh).
 *
 *   gencsv PATH ROWS [SEED]
 *
 * Writes a header line "id,ts,user,event,amount,country,status" and ROWS
 * data rows of about 55 bytes (mixed numbers and text, e.g.
 * "10000007,2024-03-01T00:02:41,u0042173,click,1234.56,DE,ok"), then prints
 * the file's size in bytes on stdout. The same ROWS and SEED always give the
 * same bytes (splitmix64, no libc randomness). lz4 compresses the result by
 * about 2-3x: the id and time stamp grow slowly, the user comes from 100,000
 * names, the amount is random, and the event, country and status come from
 * small skewed sets.
 *
 * Exit status 0 on success; 1 with a message on stderr when PATH cannot be
 * written (errno text), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE (4u << 20)

static uint64_t rng_state;

static uint64_t next_u64(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Write n as exactly w decimal digits (zero padded) at p; returns p + w. */
static char *put_fixed(char *p, uint64_t n, int w)
{
	for (int i = w - 1; i >= 0; i--) {
		p[i] = (char)('0' + n % 10);
		n /= 10;
	}
	return p + w;
}

/* Write n in decimal without padding at p; returns the end. */
static char *put_dec(char *p, uint64_t n)
{
	char tmp[24];
	int k = 0;

	do {
		tmp[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (k)
		*p++ = tmp[--k];
	return p;
}

static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static const char *const events[] = {
	"view", "view", "view", "view", "click", "click", "scroll", "search",
	"add_to_cart", "purchase", "login", "logout", "share", "view", "click", "view",
};
static const char *const countries[] = {
	"US", "US", "US", "DE", "DE", "FR", "GB", "GB", "JP", "BR", "IN", "US",
	"CA", "NL", "ES", "IT",
};
static const char *const statuses[] = { "ok", "ok", "ok", "ok", "ok", "ok", "retry", "error" };

/* Days per month of 2024 (a leap year); the time stamp wraps after a year. */
static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

/* Format the time stamp for second s of 2024 at p; returns the end. */
static char *put_ts(char *p, uint64_t s)
{
	uint64_t day = (s / 86400) % 366, sec = s % 86400;
	int mon = 0;

	while (day >= (uint64_t)mdays[mon])
		day -= (uint64_t)mdays[mon++];
	p = put_str(p, "2024-");
	p = put_fixed(p, (uint64_t)mon + 1, 2);
	*p++ = '-';
	p = put_fixed(p, day + 1, 2);
	*p++ = 'T';
	p = put_fixed(p, sec / 3600, 2);
	*p++ = ':';
	p = put_fixed(p, sec / 60 % 60, 2);
	*p++ = ':';
	p = put_fixed(p, sec % 60, 2);
	return p;
}

/* Write all of buf to fd; returns 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t rows, seed = 1, ts = 0, size = 0;
	char *buf = NULL, *p, *end;
	int fd = -1, rc = 1, err;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: gencsv PATH ROWS [SEED]\n");
		return 2;
	}
	rows = strtoull(argv[2], &end, 10);
	if (*argv[2] == '\0' || *end != '\0') {
		fprintf(stderr, "gencsv: ROWS must be a number: %s\n", argv[2]);
		return 2;
	}
	if (argc == 4)
		seed = strtoull(argv[3], NULL, 10);
	rng_state = seed * 0x2545F4914F6CDD1Dull;

	buf = malloc(BUF_SIZE);
	if (!buf) {
		fprintf(stderr, "gencsv: out of memory\n");
		goto out;
	}
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "gencsv: %s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	p = put_str(buf, "id,ts,user,event,amount,country,status\n");
	for (uint64_t i = 0; i < rows; i++) {
		uint64_t r = next_u64(), r2 = next_u64();

		if (p - buf > BUF_SIZE - 256) {
			err = write_all(fd, buf, (size_t)(p - buf));
			if (err) {
				fprintf(stderr, "gencsv: %s: %s\n", argv[1], strerror(-err));
				goto out;
			}
			size += (uint64_t)(p - buf);
			p = buf;
		}
		ts += r % 4;		/* a few events per second */
		p = put_dec(p, 10000000 + i);
		*p++ = ',';
		p = put_ts(p, ts);
		p = put_str(p, ",u");
		p = put_fixed(p, (r >> 8) % 100000, 7);
		*p++ = ',';
		p = put_str(p, events[(r >> 32) & 15]);
		*p++ = ',';
		p = put_dec(p, (r2 % 500000) / 100);
		*p++ = '.';
		p = put_fixed(p, r2 % 100, 2);
		*p++ = ',';
		p = put_str(p, countries[(r >> 40) & 15]);
		*p++ = ',';
		p = put_str(p, statuses[(r >> 48) & 7]);
		*p++ = '\n';
	}
	err = write_all(fd, buf, (size_t)(p - buf));
	if (!err && close(fd) < 0)
		err = -errno;
	fd = -1;
	if (err) {
		fprintf(stderr, "gencsv: %s: %s\n", argv[1], strerror(-err));
		goto out;
	}
	size += (uint64_t)(p - buf);
	printf("%llu\n", (unsigned long long)size);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}
