/* smallfiles — create COUNT files of SIZE bytes in DIR, without forking per
 * file, and time it (tests/bench/run.sh).
 *
 *   smallfiles DIR COUNT SIZE [THREADS]
 *
 * DIR must exist and be empty of the names f000000... it creates. Each file
 * is open(O_CREAT|O_EXCL|O_WRONLY), one write(2) of SIZE bytes (the bytes
 * differ per file) and close(2); every step is checked, close included
 * (payloadfs commits on close). With THREADS > 1 (default 1) that many
 * threads share the work: thread k makes the files k, k + THREADS, ...,
 * so up to THREADS closes are in flight at once (what group commit would
 * batch); the names and bytes are the same whatever THREADS is. Prints two
 * numbers on stdout: the seconds spent on create+write+close of all files
 * (from before the first thread starts until the last one is done), and
 * the seconds of a following syncfs(2) on DIR's file system.
 *
 * Exit status 0 on success; 1 with "smallfiles: NAME: errno text" on stderr
 * on the first failing call (the other threads stop at their next file);
 * 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256

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

static int dfd;
static long count, size, nthreads;
static int failed; /* atomic: a thread failed, the others stop */

struct worker {
	pthread_t t;
	long first;
	char *buf;
	int rc;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char name[32];

	for (long i = w->first; i < count; i += nthreads) {
		int fd;
		ssize_t n;

		if (__atomic_load_n(&failed, __ATOMIC_RELAXED))
			break;
		snprintf(name, sizeof(name), "f%06ld", i);
		if (size >= 8)
			memcpy(w->buf, name, 7);
		fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0) {
			w->rc = fail("create", name, errno);
			break;
		}
		n = write(fd, w->buf, (size_t)size);
		if (n != size) {
			w->rc = fail("write", name, n < 0 ? errno : EIO);
			close(fd);
			break;
		}
		if (close(fd) < 0) {
			w->rc = fail("close", name, errno);
			break;
		}
	}
	if (w->rc)
		__atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *ws = NULL;
	char *end;
	double t0, t1, t2;
	long started = 0;
	int rc = 1;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: smallfiles DIR COUNT SIZE [THREADS]\n");
		return 2;
	}
	count = strtol(argv[2], &end, 10);
	if (*end || count < 1 || count > 999999)
		return fprintf(stderr, "smallfiles: bad COUNT %s\n", argv[2]), 2;
	size = strtol(argv[3], &end, 10);
	if (*end || size < 0 || size > (1 << 24))
		return fprintf(stderr, "smallfiles: bad SIZE %s\n", argv[3]), 2;
	nthreads = 1;
	if (argc == 5) {
		nthreads = strtol(argv[4], &end, 10);
		if (*end || nthreads < 1 || nthreads > MAX_THREADS)
			return fprintf(stderr, "smallfiles: bad THREADS %s (1-%d)\n", argv[4], MAX_THREADS), 2;
	}
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return fail("open", argv[1], errno);
	ws = calloc((size_t)nthreads, sizeof(*ws));
	if (!ws) {
		rc = fail("malloc", "", ENOMEM);
		goto out;
	}
	for (long k = 0; k < nthreads; k++) {
		ws[k].first = k;
		ws[k].buf = malloc((size_t)size + 1);
		if (!ws[k].buf) {
			rc = fail("malloc", "", ENOMEM);
			goto out;
		}
		for (long i = 0; i < size; i++)
			ws[k].buf[i] = (char)('a' + i % 26);
		if (size)
			ws[k].buf[size - 1] = '\n';
	}

	t0 = now();
	if (nthreads == 1) {
		work(&ws[0]);
		started = 1;
	} else {
		for (; started < nthreads; started++) {
			int e = pthread_create(&ws[started].t, NULL, work, &ws[started]);
			if (e) {
				fail("pthread_create", "", e);
				__atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
				break;
			}
		}
		for (long k = 0; k < started; k++)
			pthread_join(ws[k].t, NULL);
	}
	t1 = now();
	if (__atomic_load_n(&failed, __ATOMIC_RELAXED))
		goto out; /* the failing thread said why */
	if (syncfs(dfd) < 0) {
		rc = fail("syncfs", argv[1], errno);
		goto out;
	}
	t2 = now();
	printf("%.6f %.6f\n", t1 - t0, t2 - t1);
	rc = 0;
out:
	if (ws)
		for (long k = 0; k < nthreads; k++)
			free(ws[k].buf);
	free(ws);
	close(dfd);
	return rc;
}
