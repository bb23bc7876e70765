/* smallfiles — create COUNT files of SIZE bytes in DIR, without forking per
 * file, and time it (tests/bench/run.sh).
 *
 *   smallfiles DIR COUNT SIZE
 *
 * DIR must exist and be empty of the names f000000... it creates. Each file
 * is open(O_CREAT|O_EXCL|O_WRONLY), one write(2) of SIZE bytes (the bytes
 * differ per file) and close(2); every step is checked, close included
 * (payloadfs commits on close). Prints two numbers on stdout: the seconds
 * spent on create+write+close of all files, and the seconds of a following
 * syncfs(2) on DIR's file system.
 *
 * Exit status 0 on success; 1 with "smallfiles: NAME: errno text" on stderr
 * on the first failing call; 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *name, int err)
{
	fprintf(stderr, "smallfiles: %s %s: %s\n", what, name, strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	char name[32], *buf, *end;
	long count, size;
	double t0, t1, t2;
	int dfd, rc = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: smallfiles DIR COUNT SIZE\n");
		return 2;
	}
	count = strtol(argv[2], &end, 10);
	if (*end || count < 1 || count > 999999)
		return fprintf(stderr, "smallfiles: bad COUNT %s\n", argv[2]), 2;
	size = strtol(argv[3], &end, 10);
	if (*end || size < 0 || size > (1 << 24))
		return fprintf(stderr, "smallfiles: bad SIZE %s\n", argv[3]), 2;
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return fail("open", argv[1], errno);
	buf = malloc((size_t)size + 1);
	if (!buf) {
		close(dfd);
		return fail("malloc", "", ENOMEM);
	}
	for (long i = 0; i < size; i++)
		buf[i] = (char)('a' + i % 26);
	if (size)
		buf[size - 1] = '\n';

	t0 = now();
	for (long i = 0; i < count; i++) {
		int fd;
		ssize_t n;

		snprintf(name, sizeof(name), "f%06ld", i);
		if (size >= 8)
			memcpy(buf, name, 7);
		fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = fail("create", name, errno);
			goto out;
		}
		n = write(fd, buf, (size_t)size);
		if (n != size) {
			rc = fail("write", name, n < 0 ? errno : EIO);
			close(fd);
			goto out;
		}
		if (close(fd) < 0) {
			rc = fail("close", name, errno);
			goto out;
		}
	}
	t1 = now();
	if (syncfs(dfd) < 0) {
		rc = fail("syncfs", argv[1], errno);
		goto out;
	}
	t2 = now();
	printf("%.6f %.6f\n", t1 - t0, t2 - t1);
	rc = 0;
out:
	free(buf);
	close(dfd);
	return rc;
}
