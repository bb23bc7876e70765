/* pltool — a small client of libpayload for the end-to-end tests
 * (tests/e2e/libpayload.bats); only the public header.
 *
 *   pltool get STORE SPEC...     one batch: each SPEC's bytes to stdout in
 *                                order; SPEC is PATH (whole, or its view),
 *                                PATH:bytes=A:B, PATH:rows=A:B or id=N
 *   pltool open STORE r|w        open and close
 *   pltool follow STORE PATH... FILE   read the PATHs (one batch), wait
 *                                (10 s at most) until FILE exists, read
 *                                them again: both to stdout, one open of
 *                                the store
 *   pltool put STORE PATH=SRC... one payload_put_many of the SRC files
 *   pltool tail STORE PATH START N [bytes|poll]   follow PATH from byte
 *                                START ("end": its end) with payload_follow_*,
 *                                each piece to stdout as it comes, until N
 *                                rows came (N < 0: until an error); exit 3
 *                                when 10 s pass without a row
 * Exit 0, or 1 with payload_errmsg() on stderr. */
#include "lib/payload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int die(void)
{
	fprintf(stderr, "pltool: %s\n", payload_errmsg());
	return 1;
}

static int parse_spec(char *s, struct payload_get *r)
{
	char *c = strstr(s, ":bytes=");
	long long a, b;

	memset(r, 0, sizeof(*r));
	if (strncmp(s, "id=", 3) == 0) {
		r->id = strtoull(s + 3, NULL, 10);
		return 0;
	}
	r->path = s;
	if (!c)
		c = strstr(s, ":rows=");
	if (c) {
		char *eq = strchr(c, '=');
		char *colon = strchr(eq, ':');
		r->range = c[1] == 'b' ? PAYLOAD_BYTES : PAYLOAD_ROWS;
		*c = '\0';
		if (!colon)
			return -1;
		a = strtoll(eq + 1, NULL, 10);
		b = colon[1] ? strtoll(colon + 1, NULL, 10) : INT64_MAX;
		r->start = a;
		r->stop = b;
	}
	return 0;
}

static int batch(payload_store *st, struct payload_get *r, int n);

static int get(payload_store *st, char **specs, int n)
{
	struct payload_get *r = calloc((size_t)n, sizeof(*r));
	char **copy = calloc((size_t)n, sizeof(*copy));
	int rc = 0;

	for (int i = 0; i < n && !rc; i++) {
		copy[i] = strdup(specs[i]);   /* parse_spec cuts its copy */
		if (parse_spec(copy[i], &r[i])) {
			fprintf(stderr, "pltool: bad spec %s\n", specs[i]);
			rc = 2;
		}
	}
	if (!rc)
		rc = batch(st, r, n);
	for (int i = 0; i < n; i++) {
		free(r[i].buf);
		free(copy[i]);
	}
	free(copy);
	free(r);
	return rc;
}

static int batch(payload_store *st, struct payload_get *r, int n)
{
	int rc;

	/* size query, then the reads */
	rc = payload_get_many(st, r, (size_t)n);
	if (rc)
		return die();
	for (int i = 0; i < n; i++) {
		r[i].cap = r[i].size;
		r[i].buf = malloc(r[i].size + 1);
	}
	rc = payload_get_many(st, r, (size_t)n);
	if (rc)
		return die();
	for (int i = 0; i < n; i++)
		fwrite(r[i].buf, 1, r[i].len, stdout);
	return 0;
}

static int tail(payload_store *st, char **a, int n)
{
	static char buf[1 << 16];
	payload_follow *f;
	int64_t start;
	long want, rows = 0;
	int flags;
	ssize_t k;

	if (n < 3)
		return fprintf(stderr, "pltool: tail STORE PATH START N [bytes|poll]\n"), 2;
	flags = n > 3 && strcmp(a[3], "bytes") == 0 ? PAYLOAD_FOLLOW_BYTES
	      : n > 3 && strcmp(a[3], "poll") == 0 ? PAYLOAD_FOLLOW_POLL : PAYLOAD_FOLLOW_ROWS;
	start = strcmp(a[1], "end") == 0 ? PAYLOAD_END : strtoll(a[1], NULL, 10);
	want = strtol(a[2], NULL, 10);
	if (payload_follow_open(st, a[0], flags, start, &f))
		return die();
	while (want < 0 || rows < want) {
		k = payload_follow_next(f, buf, sizeof(buf), 10000);
		if (k < 0) {
			fflush(stdout);
			die();
			payload_follow_close(f);
			return 1;
		}
		if (k == 0) {
			fprintf(stderr, "pltool: no row for 10 s\n");
			payload_follow_close(f);
			return 3;
		}
		for (ssize_t i = 0; i < k; i++)
			rows += buf[i] == '\n';
		fwrite(buf, 1, (size_t)k, stdout);
		fflush(stdout);
	}
	payload_follow_close(f);
	return 0;
}

static int put(payload_store *st, char **args, int n)
{
	struct payload_put *p = calloc((size_t)n, sizeof(*p));
	char **bufs = calloc((size_t)n, sizeof(*bufs));
	int rc = 0;

	for (int i = 0; i < n && !rc; i++) {
		char *eq = strchr(args[i], '=');
		FILE *f = eq ? fopen(eq + 1, "rb") : NULL;
		if (!f) {
			fprintf(stderr, "pltool: bad PATH=SRC %s\n", args[i]);
			rc = 2;
			break;
		}
		*eq = '\0';
		p[i].path = args[i];
		for (size_t cap = 0, got = 1; got;) {      /* the whole file */
			if (p[i].len == cap) {
				char *nb = realloc(bufs[i], cap = cap ? 2 * cap : 1 << 16);
				if (!nb)
					break;
				bufs[i] = nb;
			}
			got = fread(bufs[i] + p[i].len, 1, cap - p[i].len, f);
			p[i].len += got;
		}
		p[i].data = bufs[i];
		fclose(f);
	}
	if (!rc && payload_put_many(st, p, (size_t)n))
		rc = die();
	for (int i = 0; i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(p);
	return rc;
}

int main(int argc, char **argv)
{
	payload_store *st;
	int rc = 0;

	if (argc < 3)
		return fprintf(stderr, "usage: pltool get|open|follow|put|tail STORE ...\n"), 2;
	if (strcmp(argv[1], "open") == 0) {
		if (payload_open(argv[2], argc > 3 && argv[3][0] == 'w' ? PAYLOAD_RDWR : PAYLOAD_RDONLY, &st))
			return die();
		payload_close(st);
		return 0;
	}
	if (payload_open(argv[2], strcmp(argv[1], "put") == 0 ? PAYLOAD_RDWR : PAYLOAD_RDONLY, &st))
		return die();
	if (strcmp(argv[1], "get") == 0) {
		rc = get(st, argv + 3, argc - 3);
	} else if (strcmp(argv[1], "follow") == 0 && argc >= 5) {
		rc = get(st, argv + 3, argc - 4);
		fflush(stdout);
		for (int i = 0; i < 1000 && access(argv[argc - 1], F_OK); i++)
			usleep(10000);
		if (!rc)
			rc = get(st, argv + 3, argc - 4);
	} else if (strcmp(argv[1], "put") == 0) {
		rc = put(st, argv + 3, argc - 3);
	} else if (strcmp(argv[1], "tail") == 0) {
		rc = tail(st, argv + 3, argc - 3);
	} else {
		fprintf(stderr, "pltool: unknown command %s\n", argv[1]);
		rc = 2;
	}
	payload_close(st);
	return rc;
}
