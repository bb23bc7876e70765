/* follow — the stream-follow figure of `make bench` (issue 14 §3: "a
 * follower of a stream sees an appended row within 10 ms median of the
 * writer's fsync(2)"), run by tests/bench/follow.sh.
 *
 *   follow LABEL DIR [ROWS [INTERVAL_MS]]
 *
 * Makes DIR/stream.csv (a header row, closed), then forks a follower and a
 * writer. The follower opens the file first and reads it to its end; then
 * the writer opens it O_APPEND and, ROWS times (default 200) on a fixed
 * schedule of INTERVAL_MS (default 5), appends one row and fsyncs. The
 * follower polls read(2) from its offset, sleeping 1 ms after an empty
 * read, and notes the time each row's last byte arrived. Both stamp
 * CLOCK_MONOTONIC into a shared mapping, so for each row:
 *   fsync  the writer's fsync(2) call (write returned .. fsync returned)
 *   lag    fsync returned .. the follower read the row (negative: the
 *          follower had it before fsync returned, as on ext4 where a
 *          write is visible at once)
 *   seen   write(2) called .. the follower read the row
 * Prints one line with the medians and 99th percentiles in ms, and fails
 * (exit 1) when the follower did not read every row, or read any byte
 * that differs from what the writer wrote, within 10 s of the last row
 * (60 s + 0.1 s a row in all).
 * Not part of `make check`. */
#include "benchclock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROW_MAX 128
#define HEADER "seq,t_ns,payload\n"

struct shared {
	volatile int ready;        /* the follower read the header: start */
	volatile int done;         /* the writer wrote every row */
	double t_write[];          /* then t_fsync[rows], t_read[rows] */
};

/* Row I's bytes into BUF (ending '\n'); @return its length. */
static size_t row(char *buf, int i)
{
	return (size_t)snprintf(buf, ROW_MAX, "%06d,%d,%.*s\n", i, i * 7919 % 1000003, 20 + i % 37,
				"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
}

static void sleep_until(double t)
{
	struct timespec ts = { (time_t)t, (long)((t - (double)(time_t)t) * 1e9) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The P-th percentile (nearest rank) of V[0..N), which it sorts. */
static double pct(double *v, int n, double p)
{
	int k = (int)(p / 100.0 * n + 0.999999) - 1;

	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static void writer(const char *path, struct shared *sh, double *t_fsync, int rows, double interval)
{
	char buf[ROW_MAX];
	int fd;
	double t0;

	while (!sh->ready)
		usleep(1000);
	if ((fd = open(path, O_WRONLY | O_APPEND)) < 0) {
		perror("follow: writer: open");
		_exit(1);
	}
	t0 = now_s();
	for (int i = 0; i < rows; i++) {
		size_t n = row(buf, i);

		sleep_until(t0 + i * interval);
		sh->t_write[i] = now_s();
		if (write(fd, buf, n) != (ssize_t)n) {
			perror("follow: writer: write");
			_exit(1);
		}
		if (fsync(fd)) {
			perror("follow: writer: fsync");
			_exit(1);
		}
		t_fsync[i] = now_s();
	}
	if (close(fd)) {
		perror("follow: writer: close");
		_exit(1);
	}
	sh->done = 1;
	_exit(0);
}

/* Read what the writer appends; note when each row's '\n' arrived.
 * @return 0 when every row came, byte for byte. */
static int follower(const char *path, struct shared *sh, double *t_read, int rows)
{
	size_t want_len = strlen(HEADER), got = 0, cap;
	char *want, *have, buf[ROW_MAX];
	int fd, next = 0;
	double idle_since = 0, deadline = now_s() + 60.0 + rows * 0.1;

	for (int i = 0; i < rows; i++)
		want_len += row(buf, i);
	cap = want_len + 65536;
	want = malloc(want_len + 1);
	have = malloc(cap);
	if (!want || !have)
		return -1;
	strcpy(want, HEADER);
	for (int i = 0, at = (int)strlen(HEADER); i < rows; i++)
		at += (int)row(want + at, i);
	if ((fd = open(path, O_RDONLY)) < 0) {
		perror("follow: follower: open");
		return -1;
	}
	for (;;) {   /* the header */
		ssize_t n = read(fd, have + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	sh->ready = 1;
	while (next < rows && got < cap) {
		ssize_t n = read(fd, have + got, cap - got);
		double t = now_s();

		if (n < 0) {
			perror("follow: follower: read");
			return -1;
		}
		if (n == 0) {
			if (t > deadline)
				break;                 /* the writer never ended */
			if (sh->done) {
				if (!idle_since)
					idle_since = t;
				else if (t - idle_since > 10.0)
					break;         /* rows that never came */
			}
			usleep(1000);
			continue;
		}
		for (size_t k = got; k < got + (size_t)n; k++)
			if (have[k] == '\n' && k >= strlen(HEADER) && next < rows)
				t_read[next++] = t;
		got += (size_t)n;
	}
	close(fd);
	if (next < rows || got != want_len || memcmp(have, want, want_len)) {
		size_t k = 0;
		while (k < got && k < want_len && have[k] == want[k])
			k++;
		fprintf(stderr, "follow: the follower read %d of %d rows, %zu of %zu bytes; first difference at byte %zu\n",
			next, rows, got, want_len, k);
		return 1;
	}
	free(want);
	free(have);
	return 0;
}

int main(int argc, char **argv)
{
	const char *label, *dir;
	char path[4096];
	int rows = 200, fd, status, rc;
	double interval = 0.005;
	struct shared *sh;
	size_t len;
	pid_t w;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: follow LABEL DIR [ROWS [INTERVAL_MS]]\n");
		return 2;
	}
	label = argv[1];
	dir = argv[2];
	if (argc > 3)
		rows = atoi(argv[3]);
	if (argc > 4)
		interval = atof(argv[4]) / 1000.0;
	if (rows < 1 || rows > 1000000 || interval < 0) {
		fprintf(stderr, "follow: bad ROWS or INTERVAL_MS\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/stream.csv", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
	    write(fd, HEADER, strlen(HEADER)) != (ssize_t)strlen(HEADER) || close(fd)) {
		perror(path);
		return 1;
	}
	len = sizeof(*sh) + 3 * (size_t)rows * sizeof(double);
	sh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	double *t_fsync = sh->t_write + rows, *t_read = t_fsync + rows;
	if ((w = fork()) < 0) {
		perror("fork");
		return 1;
	}
	if (w == 0)
		writer(path, sh, t_fsync, rows, interval);
	rc = follower(path, sh, t_read, rows);
	if (rc < 0)
		sh->ready = 1;   /* let the writer go on and end */
	if (waitpid(w, &status, 0) != w || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "follow: the writer failed\n");
		return 1;
	}
	if (rc)
		return 1;

	double *lag = malloc(rows * sizeof(double)), *seen = malloc(rows * sizeof(double));
	double *fs = malloc(rows * sizeof(double));
	int early = 0;
	if (!lag || !seen || !fs)
		return 1;
	for (int i = 0; i < rows; i++) {
		lag[i] = (t_read[i] - t_fsync[i]) * 1e3;
		seen[i] = (t_read[i] - sh->t_write[i]) * 1e3;
		fs[i] = (t_fsync[i] - sh->t_write[i]) * 1e3;
		early += lag[i] < 0;
	}
	/* the '\n' of row I arrives within one read, so percentiles of each
	 * series are over the same rows */
	printf("%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\n", label, rows,
	       pct(lag, rows, 50), pct(lag, rows, 99), pct(seen, rows, 50), pct(seen, rows, 99),
	       pct(fs, rows, 50), pct(fs, rows, 99), early);
	return 0;
}
