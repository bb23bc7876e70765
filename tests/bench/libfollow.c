/* libfollow — the stream figure of `make bench` (tests/bench/libfollow.sh,
 * issue 14): a writer thread appends a row to MNT/PATH through the mount
 * and fsyncs it, every PERIOD_MS, N times (one descriptor: each fsync
 * commits); a follower thread reads the store STORE with
 * payload_follow_next (read-only handle, rows mode; inotify, or polling
 * with "poll"). Per row: CLOCK_MONOTONIC at the writer's fsync return and
 * at the follower's return of that row; the latency is their difference
 * (negative: the follower had the row before fsync returned, which can
 * happen as a commit is visible before its flush). Every row's bytes are
 * checked. Prints median, p90, p99 and max in ms, and the latency from
 * the fsync call (never negative: the commit starts there).
 *
 *   libfollow STORE MNT PATH N PERIOD_MS inotify|poll
 * Exit 0, 1 on any error or wrong row. */
#include "lib/payload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int n_rows, period_ms;
static double *t_call, *t_sync, *t_seen;
static char wpath[4096];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int row(char *b, size_t cap, int i)
{
	return snprintf(b, cap, "%d,%d,%.*s\n", i, i * 7919 % 100003, 20 + i % 40,
			"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
}

static void *writer(void *arg)
{
	int fd = open(wpath, O_WRONLY | O_APPEND);
	char b[256];

	(void)arg;
	if (fd < 0) {
		perror(wpath);
		exit(1);
	}
	for (int i = 0; i < n_rows; i++) {
		int len = row(b, sizeof(b), i);
		struct timespec d = { 0, (long)period_ms * 1000000L };
		if (write(fd, b, (size_t)len) != len) {
			perror("write");
			exit(1);
		}
		t_call[i] = now();
		if (fsync(fd)) {
			perror("write/fsync");
			exit(1);
		}
		t_sync[i] = now();
		nanosleep(&d, NULL);
	}
	close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	payload_store *st;
	payload_follow *f;
	pthread_t t;
	static char buf[1 << 16];
	char want[256];
	int got = 0, bad = 0, poll;
	double *lat, *lcall;

	if (argc != 7) {
		fprintf(stderr, "usage: libfollow STORE MNT PATH N PERIOD_MS inotify|poll\n");
		return 2;
	}
	n_rows = atoi(argv[4]);
	period_ms = atoi(argv[5]);
	poll = strcmp(argv[6], "poll") == 0;
	snprintf(wpath, sizeof(wpath), "%s/%s", argv[2], argv[3]);
	t_call = calloc((size_t)n_rows, sizeof(double));
	t_sync = calloc((size_t)n_rows, sizeof(double));
	t_seen = calloc((size_t)n_rows, sizeof(double));
	lat = calloc((size_t)n_rows, sizeof(double));
	lcall = calloc((size_t)n_rows, sizeof(double));
	if (payload_open(argv[1], PAYLOAD_RDONLY, &st) ||
	    payload_follow_open(st, argv[3], poll ? PAYLOAD_FOLLOW_POLL : PAYLOAD_FOLLOW_ROWS,
				PAYLOAD_END, &f)) {
		fprintf(stderr, "libfollow: %s\n", payload_errmsg());
		return 1;
	}
	pthread_create(&t, NULL, writer, NULL);
	while (got < n_rows) {
		ssize_t n = payload_follow_next(f, buf, sizeof(buf), 10000);
		double ts = now();
		char *p = buf, *end;
		if (n <= 0) {
			fprintf(stderr, "libfollow: after %d rows: %s\n", got,
				n ? payload_errmsg() : "no row for 10 s");
			return 1;
		}
		for (end = buf + n; p < end && got < n_rows; got++) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			int len = row(want, sizeof(want), got);
			if (!nl || nl + 1 - p != len || memcmp(p, want, (size_t)len))
				bad++;
			t_seen[got] = ts;
			p = nl ? nl + 1 : end;
		}
	}
	pthread_join(t, NULL);
	for (int i = 0; i < n_rows; i++) {
		lat[i] = (t_seen[i] - t_sync[i]) * 1e3;
		lcall[i] = (t_seen[i] - t_call[i]) * 1e3;
	}
	qsort(lat, (size_t)n_rows, sizeof(double), cmp);
	qsort(lcall, (size_t)n_rows, sizeof(double), cmp);
	printf("follow (%s): %d rows every %d ms, %d wrong; fsync return -> row returned: "
	       "median %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms (target: median <= 10 ms)\n",
	       argv[6], n_rows, period_ms, bad, lat[n_rows / 2], lat[n_rows * 9 / 10],
	       lat[(n_rows * 99) / 100 < n_rows ? (n_rows * 99) / 100 : n_rows - 1], lat[n_rows - 1]);
	printf("follow (%s): fsync call -> row returned: median %.3f ms, p99 %.3f ms\n",
	       argv[6], lcall[n_rows / 2],
	       lcall[(n_rows * 99) / 100 < n_rows ? (n_rows * 99) / 100 : n_rows - 1]);
	payload_follow_close(f);
	payload_close(st);
	return bad ? 1 : 0;
}
