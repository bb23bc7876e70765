/* rlag — follower lag of a RADOS store (tests/bench/run.sh, figure rados):
 * how long after close(2) on the writer returns a follower mount shows the
 * new version.
 *
 *   rlag WFILE FFILE N [POLL_US]
 *
 * WFILE is a path in the writer's mount, FFILE the same path in a
 * follower's mount. One untimed round first creates WFILE and waits for it
 * on the follower; then N timed rounds each rewrite WFILE whole
 * (open O_TRUNC, one write, close: one commit) with 1000 + round bytes — a
 * size no earlier round had, under the 4 KiB inline limit, so each commit
 * is index-only and its size alone tells which version the follower shows
 * — and from the moment close returns, stat(2) FFILE every POLL_US
 * microseconds (default 250) until its size is the new one. That wait is
 * the round's lag. Then, untimed, FFILE is read whole and must be the
 * round's bytes exactly (a version is stamped into them), else the run
 * fails with WRONG BYTES.
 *
 * Prints one line per timed round on stdout: "LAG_S CLOSE_S" (the lag, and
 * how long the writer's close(2) took: its commit). The lag's resolution is
 * the poll interval plus one stat.
 *
 * Exit status 0; 1 with "rlag: ..." on stderr on a failing call, wrong
 * bytes, or a version not visible on the follower within 10 s; 2 on a
 * usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 3000
#define BASE_SIZE 1000
#define GIVE_UP_S 10.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(char *buf, long size, long round)
{
	for (long i = 0; i < size; i++)
		buf[i] = (char)('a' + (i + round) % 26);
	snprintf(buf, 24, "version %08ld", round); /* 16 characters */
	buf[16] = '\n';           /* instead of snprintf's NUL */
	buf[size - 1] = '\n';
}

/* Rewrite PATH with SIZE bytes of BUF; @return 0 or errno (CLOSE_S: the
 * close's seconds). */
static int rewrite(const char *path, const char *buf, long size, double *close_s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;
	double t;

	if (fd < 0)
		return errno;
	n = write(fd, buf, (size_t)size);
	if (n != size) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		return e;
	}
	t = now();
	if (close(fd) < 0)
		return errno;
	*close_s = now() - t;
	return 0;
}

/* Wait until PATH has SIZE bytes; @return the seconds waited, or -1. */
static double wait_size(const char *path, long size, long poll_us)
{
	struct timespec ts = { 0, poll_us * 1000 };
	double t0 = now(), t;
	struct stat st;

	for (;;) {
		if (stat(path, &st) == 0 && st.st_size == size)
			return now() - t0;
		t = now() - t0;
		if (t > GIVE_UP_S)
			return -1;
		nanosleep(&ts, NULL);
	}
}

/* PATH holds exactly SIZE bytes equal to WANT. @return 0, 1 (differs), or
 * -errno. */
static int check(const char *path, const char *want, long size, char *got)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long have = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, got + have, (size_t)(size + 1 - have))) > 0) {
		have += n;
		if (have > size)
			break;
	}
	if (n < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	close(fd);
	return have != size || memcmp(got, want, (size_t)size) != 0;
}

int main(int argc, char **argv)
{
	const char *wfile, *ffile;
	long rounds, poll_us = 250, maxsize;
	char *buf, *got, *end;
	double close_s = 0, lag;
	int rc;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: rlag WFILE FFILE N [POLL_US]\n");
		return 2;
	}
	wfile = argv[1];
	ffile = argv[2];
	rounds = strtol(argv[3], &end, 10);
	if (*end || rounds < 1 || rounds > MAX_ROUNDS)
		return fprintf(stderr, "rlag: bad N %s (1-%d)\n", argv[3], MAX_ROUNDS), 2;
	if (argc == 5) {
		poll_us = strtol(argv[4], &end, 10);
		if (*end || poll_us < 1 || poll_us > 100000)
			return fprintf(stderr, "rlag: bad POLL_US %s (1-100000)\n", argv[4]), 2;
	}
	maxsize = BASE_SIZE + rounds;
	buf = malloc((size_t)maxsize + 1);
	got = malloc((size_t)maxsize + 2);
	if (!buf || !got)
		return fprintf(stderr, "rlag: out of memory\n"), 1;

	/* round 0: the file appears on the follower (untimed) */
	for (long r = 0; r <= rounds; r++) {
		long size = BASE_SIZE + r;

		fill(buf, size, r);
		if ((rc = rewrite(wfile, buf, size, &close_s)) != 0) {
			fprintf(stderr, "rlag: writing %s (round %ld): %s\n", wfile, r, strerror(rc));
			return 1;
		}
		lag = wait_size(ffile, size, poll_us);
		if (lag < 0) {
			fprintf(stderr, "rlag: %s did not show round %ld (%ld bytes) within %.0f s\n", ffile, r,
				size, GIVE_UP_S);
			return 1;
		}
		rc = check(ffile, buf, size, got);
		if (rc < 0) {
			fprintf(stderr, "rlag: reading %s (round %ld): %s\n", ffile, r, strerror(-rc));
			return 1;
		}
		if (rc) {
			fprintf(stderr, "rlag: WRONG BYTES: %s differs from round %ld's %ld bytes\n", ffile, r,
				size);
			return 1;
		}
		if (r > 0)
			printf("%.6f %.6f\n", lag, close_s);
	}
	free(buf);
	free(got);
	return 0;
}
