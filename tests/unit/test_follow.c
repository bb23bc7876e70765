/* test_follow — libpayload's followers (payload_follow_*, lib/follow.c)
 * through the shared library, read-only, beside a writer that holds the
 * store read-write through the core in the same process (as the daemon
 * would). Fragments of 4096 bytes, so appends cross fragments and absorb
 * the last one.
 *
 * Proves follow.c's invariants: (1) every byte appended is returned once,
 * in order, across appends that re-cut the last fragment; (2) a version
 * that keeps the bytes through new fragments is followed, (3) a rewrite in
 * an inner or the last fragment, a truncate, a replacement and an unlink
 * are final errors that keep the position, EIO (a damaged fragment) is not
 * final: the position stays and a later call goes on; (4) a short buffer gets whole
 * rows, ERANGE with the row's length for a longer row; (5) an incomplete
 * row is withheld in ROWS mode and returned in BYTES mode; (6) a waiting
 * call wakes at a commit (inotify and polling), times out, (7) and is
 * cancelled from another thread; fixed:N records are returned whole. */
#include "tests/unit/tap.h"
#include "tests/unit/tstore.h"
#include "lib/payload.h"
#include "index/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[256];
static struct store *W;

/* Write LEN bytes at OFF of NAME (created when missing), truncating to
 * TRUNC first when TRUNC >= 0; one commit. */
static void wr(const char *name, const void *data, size_t len, uint64_t off, int64_t trunc)
{
	uint64_t ino;
	int rc = tst_obj(W, name, &ino);

	if (!rc)
		rc = tst_write(W, ino, data, len, off, trunc);
	if (rc) {
		printf("Bail out! writing %s: %d\n", name, rc);
		exit(1);
	}
}

static uint64_t size_of(const char *name)
{
	struct idx_inode in;

	return store_lookup(W, IDX_ROOT_INO, name, &in) ? 0 : in.size;
}

static void append(const char *name, const char *s)
{
	wr(name, s, strlen(s), size_of(name), -1);
}

/* Rows "row NNNNN ...\n" of varying length, numbered from FIRST. */
static size_t gen_rows(char *out, int first, int n)
{
	size_t len = 0;

	for (int i = first; i < first + n; i++)
		len += (size_t)sprintf(out + len, "row %05d %.*s\n", i, i % 97, 
				       "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
				       "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
	return len;
}

/* Everything F returns now (timeout 0) appended to OUT at *LEN. */
static ssize_t drain(payload_follow *f, char *out, size_t *len, size_t cap)
{
	ssize_t n, total = 0;

	while ((n = payload_follow_next(f, out + *len, cap, 0)) > 0) {
		*len += (size_t)n;
		total += n;
	}
	return n < 0 ? n : total;
}

static void test_appends(payload_store *ps)
{
	static char want[1 << 20], got[1 << 20];
	size_t wlen = 0, glen = 0, start;
	payload_follow *f, *fb;
	struct payload_follow_pos pos;
	int rc, bad = 0, rows = 0;
	ssize_t n;

	wlen = gen_rows(want, 0, 100);
	wr("s.log", want, wlen, 0, -1);
	rc = payload_follow_open(ps, "s.log", PAYLOAD_FOLLOW_ROWS, 0, &f);
	CHECK(rc == 0, "follow_open from 0 (%s)", payload_errmsg());
	if (rc)
		return;
	n = drain(f, got, &glen, 1 << 16);
	CHECK(n == (ssize_t)wlen && memcmp(got, want, wlen) == 0,
	      "the existing rows, from 0 (%zd of %zu bytes)", n, wlen);
	CHECK(payload_follow_next(f, got, 100, 0) == 0, "then nothing, at once (timeout 0)");
	/* 120 appends of 1..3 rows: each re-cuts the small last fragment */
	for (int i = 0; i < 120; i++) {
		size_t a = gen_rows(want + wlen, 100 + rows, 1 + i % 3);
		rows += 1 + i % 3;
		wr("s.log", want + wlen, a, wlen, -1);
		wlen += a;
		start = glen;
		n = drain(f, got, &glen, 1 << 16);
		if (n != (ssize_t)a || memcmp(got + start, want + wlen - a, a))
			bad++;
	}
	CHECK(bad == 0 && glen == wlen && memcmp(got, want, wlen) == 0,
	      "120 appends: each returned exactly its rows (%d wrong; %zu of %zu bytes)",
	      bad, glen, wlen);
	payload_follow_tell(f, &pos);
	CHECK(pos.offset == wlen && pos.size == wlen, "tell: offset %llu = size",
	      (unsigned long long)pos.offset);

	/* an incomplete row: withheld in ROWS mode, returned in BYTES mode */
	rc = payload_follow_open(ps, "s.log", PAYLOAD_FOLLOW_BYTES, PAYLOAD_END, &fb);
	CHECK(rc == 0, "BYTES follower from the end (%s)", payload_errmsg());
	append("s.log", "partial,ro");
	n = payload_follow_next(f, got, sizeof(got), 0);
	CHECK(n == 0, "ROWS: a row without its newline is withheld (%zd)", n);
	n = fb ? payload_follow_next(fb, got, sizeof(got), 0) : -1;
	CHECK(n == 10 && memcmp(got, "partial,ro", 10) == 0, "BYTES: returned as committed (%zd)", n);
	append("s.log", "w\nnext");
	n = payload_follow_next(f, got, sizeof(got), 0);
	CHECK(n == 12 && memcmp(got, "partial,row\n", 12) == 0,
	      "ROWS: the row once its newline is committed (%zd)", n);
	n = fb ? payload_follow_next(fb, got, sizeof(got), 0) : -1;
	CHECK(n == 6 && memcmp(got, "w\nnext", 6) == 0, "BYTES: the rest (%zd)", n);
	payload_follow_close(fb);

	/* back-pressure: a short buffer gets whole rows; a longer row ERANGE */
	append("s.log", "\n");     /* completes "next" */
	{
		char big[300];
		memset(big, 'x', sizeof(big));
		big[299] = '\n';
		wr("s.log", big, sizeof(big), size_of("s.log"), -1);
		append("s.log", "a\nb\n");
	}
	n = payload_follow_next(f, got, 8, 0);
	CHECK(n == 5 && memcmp(got, "next\n", 5) == 0, "cap 8: one whole row of 5 (%zd)", n);
	n = payload_follow_next(f, got, 100, 0);
	payload_follow_tell(f, &pos);
	CHECK(n == -ERANGE && pos.row_len == 300, "a row of 300 with cap 100: ERANGE, row_len %llu (%s)",
	      (unsigned long long)pos.row_len, payload_errmsg());
	n = payload_follow_next(f, got, 300, 0);
	CHECK(n == 300 && got[0] == 'x' && got[299] == '\n', "then with cap 300: that row (%zd)", n);
	n = payload_follow_next(f, got, 3, 0);
	CHECK(n == 2 && memcmp(got, "a\n", 2) == 0, "cap 3: one row of 2 (%zd)", n);
	n = payload_follow_next(f, got, 3, 0);
	CHECK(n == 2 && memcmp(got, "b\n", 2) == 0, "and the next (%zd)", n);
	payload_follow_close(f);

	/* PAYLOAD_END in ROWS mode: after the last complete row */
	append("s.log", "half");
	rc = payload_follow_open(ps, "s.log", PAYLOAD_FOLLOW_ROWS, PAYLOAD_END, &f);
	CHECK(rc == 0, "ROWS follower from the end (%s)", payload_errmsg());
	append("s.log", "-row\n");
	n = f ? payload_follow_next(f, got, sizeof(got), 0) : -1;
	CHECK(n == 9 && memcmp(got, "half-row\n", 9) == 0,
	      "from the end: the incomplete last row, once complete (%zd)", n);
	payload_follow_close(f);
}

/* A rewrite of the same bytes (new fragments, same content) is followed;
 * changes in an inner or in the last fragment, a truncate, a replacement
 * and an unlink are final errors that keep the position. */
static void test_not_appends(payload_store *ps)
{
	static char buf[1 << 16], got[1 << 16];
	size_t len = gen_rows(buf, 0, 400), glen = 0;   /* ~25 KiB: 7 fragments */
	payload_follow *f;
	struct payload_follow_pos pos;
	ssize_t n;
	int rc;

	struct {
		const char *what;
		int64_t off;         /* byte changed (from the end when < 0) */
		int trunc, replace, unlink;
		int err;
	} cases[] = {
		{ "a byte of an inner fragment changed", 5000, 0, 0, 0, -ESTALE },
		{ "a byte of the last fragment changed", -3, 0, 0, 0, -ESTALE },
		{ "truncated by one row", 0, 1, 0, 0, -ESTALE },
		{ "replaced by another object (rename over it)", 0, 0, 1, 0, -ESTALE },
		{ "unlinked", 0, 0, 0, 1, -ENOENT },
	};

	wr("r.csv", buf, len, 0, -1);
	rc = payload_follow_open(ps, "r.csv", PAYLOAD_FOLLOW_ROWS, 0, &f);
	CHECK(rc == 0, "follow r.csv (%s)", payload_errmsg());
	if (rc)
		return;
	drain(f, got, &glen, sizeof(got) - glen);
	wr("r.csv", buf, len, 0, 0);                 /* all bytes again */
	append("r.csv", "more\n");
	n = payload_follow_next(f, got, sizeof(got), 0);
	CHECK(n == 5 && memcmp(got, "more\n", 5) == 0,
	      "the same bytes re-cut into new fragments, then an append: followed (%zd, %s)", n,
	      n < 0 ? payload_errmsg() : "");
	payload_follow_close(f);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint64_t before;
		wr("r.csv", buf, len, 0, 0);
		rc = payload_follow_open(ps, "r.csv", PAYLOAD_FOLLOW_ROWS, 0, &f);
		if (rc) {
			CHECK(0, "%s: follow_open (%s)", cases[c].what, payload_errmsg());
			continue;
		}
		glen = 0;
		drain(f, got, &glen, sizeof(got));
		payload_follow_tell(f, &pos);
		before = pos.offset;
		if (cases[c].unlink) {
			rc = store_unlink(W, IDX_ROOT_INO, "r.csv");
		} else if (cases[c].replace) {
			wr("other.csv", buf, len, 0, -1);
			rc = store_rename(W, IDX_ROOT_INO, "other.csv", IDX_ROOT_INO, "r.csv", 0);
		} else if (cases[c].trunc) {
			wr("r.csv", NULL, 0, 0, (int64_t)len - 10);
		} else {
			uint64_t o = cases[c].off < 0 ? len + (uint64_t)cases[c].off : (uint64_t)cases[c].off;
			char x = buf[o] == 'Z' ? 'Y' : 'Z';
			wr("r.csv", &x, 1, o, -1);
			append("r.csv", "more\n");    /* longer, as an append would be */
		}
		if (rc)
			printf("# %s: the writer's change failed: %d\n", cases[c].what, rc);
		n = payload_follow_next(f, got, sizeof(got), 0);
		payload_follow_tell(f, &pos);
		CHECK(n == cases[c].err && pos.offset == before && before == len,
		      "%s: %s, position kept (%zd, %s)", cases[c].what, strerror(-cases[c].err), n,
		      payload_errmsg());
		n = payload_follow_next(f, got, sizeof(got), 0);
		CHECK(n == cases[c].err, "%s: and again at the next call", cases[c].what);
		payload_follow_close(f);
	}
}

struct waiter {
	payload_follow *f;
	int timeout;
	ssize_t n;
	char buf[256];
};

static void *waiter(void *arg)
{
	struct waiter *w = arg;

	w->n = payload_follow_next(w->f, w->buf, sizeof(w->buf), w->timeout);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_wait(payload_store *ps)
{
	for (int mode = 0; mode < 2; mode++) {
		const char *m = mode ? "polling" : "inotify";
		struct waiter w = { .timeout = -1 };
		pthread_t t;
		double t0;
		int rc;

		wr("w.log", "a\n", 2, 0, 0);
		rc = payload_follow_open(ps, "w.log", mode ? PAYLOAD_FOLLOW_POLL : 0, PAYLOAD_END, &w.f);
		CHECK(rc == 0, "%s: follow w.log (%s)", m, payload_errmsg());
		if (rc)
			continue;
		t0 = now_s();
		CHECK(payload_follow_next(w.f, w.buf, sizeof(w.buf), 30) == 0 && now_s() - t0 >= 0.029,
		      "%s: nothing committed: 0 after the 30 ms timeout", m);
		pthread_create(&t, NULL, waiter, &w);
		usleep(50000);
		append("w.log", "b\n");
		pthread_join(t, NULL);
		CHECK(w.n == 2 && memcmp(w.buf, "b\n", 2) == 0, "%s: a waiting call wakes with the row (%zd)",
		      m, w.n);
		w.timeout = 5000;   /* bounded: a cancel that is ignored fails, not hangs */
		pthread_create(&t, NULL, waiter, &w);
		usleep(30000);
		payload_follow_cancel(w.f);
		pthread_join(t, NULL);
		CHECK(w.n == -ECANCELED, "%s: cancel from another thread: ECANCELED (%zd)", m, w.n);
		payload_follow_close(w.f);
	}
}

/* fixed:8 records (commits are whole records): ROWS mode returns whole
 * records only, ERANGE below one record; a BYTES follower fills its cap. */
static void test_fixed(payload_store *ps)
{
	struct idx_inode in;
	payload_follow *f, *fb;
	struct payload_follow_pos pos;
	char got[64];
	ssize_t n;
	int rc;

	wr("r.bin", "AAAAAAAA", 8, 0, -1);
	rc = store_lookup(W, IDX_ROOT_INO, "r.bin", &in);
	if (!rc)
		rc = store_setxattr(W, in.ino, "user.payload.format", "fixed:8", 7, 0);
	CHECK(rc == 0, "r.bin as fixed:8 (%d)", rc);
	append("r.bin", "BBBBBBBB");
	rc = payload_follow_open(ps, "r.bin", PAYLOAD_FOLLOW_ROWS, 0, &f);
	CHECK(rc == 0, "follow r.bin (%s)", payload_errmsg());
	if (rc)
		return;
	rc = payload_follow_open(ps, "r.bin", PAYLOAD_FOLLOW_BYTES, 0, &fb);
	n = payload_follow_next(f, got, 4, 0);
	payload_follow_tell(f, &pos);
	CHECK(n == -ERANGE && pos.row_len == 8, "cap 4 < a record of 8: ERANGE (%zd)", n);
	n = payload_follow_next(f, got, 15, 0);
	CHECK(n == 8 && memcmp(got, "AAAAAAAA", 8) == 0, "cap 15: one whole record (%zd)", n);
	n = rc ? -1 : payload_follow_next(fb, got, 15, 0);
	CHECK(n == 15 && memcmp(got, "AAAAAAAABBBBBBB", 15) == 0, "BYTES, cap 15: 15 bytes (%zd)", n);
	append("r.bin", "CCCCCCCCDDDDDDDD");
	n = payload_follow_next(f, got, sizeof(got), 0);
	CHECK(n == 24 && memcmp(got, "BBBBBBBBCCCCCCCCDDDDDDDD", 24) == 0,
	      "then the rest, three whole records (%zd)", n);
	payload_follow_close(fb);
	payload_follow_close(f);
}

/* Read the file PATH whole into *OUT (malloc'd). @return its length, -1. */
static long slurp(const char *path, char **out)
{
	FILE *fp = fopen(path, "rb");
	long n = -1;

	*out = NULL;
	if (fp && fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) > 0 && fseek(fp, 0, SEEK_SET) == 0 &&
	    (*out = malloc((size_t)n)) && fread(*out, 1, (size_t)n, fp) != (size_t)n)
		n = -1;
	if (fp)
		fclose(fp);
	return n;
}

static int spill(const char *path, const char *data, long n)
{
	FILE *fp;
	int ok;

	chmod(path, 0644);
	fp = fopen(path, "wb");
	ok = fp && fwrite(data, 1, (size_t)n, fp) == (size_t)n;
	if (fp)
		ok &= fclose(fp) == 0;
	return ok ? 0 : -1;
}

/* EIO is not final (payload(3)): a damaged fragment of the followed
 * version fails the call, nothing is consumed, the next call reads again;
 * once the image is whole again the calls return every byte from where
 * they stopped, and what was appended meanwhile. */
static void test_eio(payload_store *ps)
{
	static char want[64 << 10], got[64 << 10];
	size_t wlen = gen_rows(want, 0, 300), glen = 0, a;
	struct payload_follow_pos pos = { .offset = 99 };
	char path[400], *orig = NULL, *bad = NULL;
	payload_follow *f = NULL;
	struct pver *pv = NULL;
	uint64_t ino, id = 0;
	long len;
	ssize_t n;

	wr("eio.log", want, wlen, 0, -1);
	if (!tst_obj(W, "eio.log", &ino) && !store_pver_get(W, ino, &pv) && pver_nfrags(pv) > 2)
		id = pver_frag(pv, 0)->id;
	pver_put(pv);
	snprintf(path, sizeof(path), "%s/fragments/%02x/%016llx.frag", dir, (unsigned)(id & 0xff),
		 (unsigned long long)id);
	len = id ? slurp(path, &orig) : -1;
	CHECK(len > 64, "eio.log in fragments, the first one's image read (%ld bytes)", len);
	if (len <= 64 || payload_follow_open(ps, "eio.log", PAYLOAD_FOLLOW_ROWS, 0, &f)) {
		free(orig);
		return;
	}
	bad = malloc((size_t)len);
	memcpy(bad, orig, (size_t)len);
	for (long i = len / 2; i < len / 2 + 16; i++)
		bad[i] ^= 0x5a;
	CHECK_EQ(spill(path, bad, len), 0, "the image is damaged on disk");
	n = payload_follow_next(f, got, sizeof(got), 0);
	CHECK_EQ(n, -EIO, "next over the damaged fragment: EIO");
	CHECK(strstr(payload_errmsg(), "eio.log at byte 0") != NULL, "... naming the path and byte: %s",
	      payload_errmsg());
	CHECK(payload_follow_tell(f, &pos) == 0 && pos.offset == 0, "... nothing consumed (offset %llu)",
	      (unsigned long long)pos.offset);
	CHECK_EQ(payload_follow_next(f, got, sizeof(got), 0), -EIO, "the next call reads again: EIO while damaged");
	CHECK_EQ(spill(path, orig, len), 0, "the image is whole again");
	a = gen_rows(want + wlen, 300, 7);
	wr("eio.log", want + wlen, a, wlen, -1);
	wlen += a;
	drain(f, got, &glen, sizeof(got));
	CHECK(glen == wlen && memcmp(got, want, wlen) == 0,
	      "then the calls return every byte from 0, and the rows appended meanwhile (%zu of %zu)", glen, wlen);
	payload_follow_close(f);
	free(orig);
	free(bad);
}

static void test_errors(payload_store *ps)
{
	payload_follow *f = (payload_follow *)1;
	char b[8];

	CHECK(payload_follow_open(ps, "nope", 0, 0, &f) == -ENOENT && !f, "missing: ENOENT");
	CHECK(payload_follow_open(ps, "d", 0, 0, &f) == -EISDIR, "a directory: EISDIR");
	CHECK(payload_follow_open(ps, "s.log@rows=1:2", 0, 0, &f) == -EINVAL, "a view: EINVAL (%s)",
	      payload_errmsg());
	CHECK(payload_follow_open(ps, "s.log", 0, 1 << 30, &f) == -EINVAL, "start past the end: EINVAL");
	CHECK(payload_follow_open(ps, "s.log", 64, 0, &f) == -EINVAL, "bad flags: EINVAL");
	CHECK(payload_follow_open(ps, "s.log", 0, 0, &f) == 0, "s.log");
	CHECK(payload_follow_next(f, NULL, 8, 0) == -EINVAL && payload_follow_next(f, b, 0, 0) == -EINVAL,
	      "next without a buffer: EINVAL");
	payload_follow_close(f);
	payload_follow_close(NULL);
}

int main(void)
{
	struct store_opts o = { .fragment_size = 4096, .create = 1 };
	char tmpl[] = "/tmp/test_follow.XXXXXX";
	payload_store *ps = NULL;
	int rc;

	if (!mkdtemp(tmpl)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/store", tmpl);
	mkdir(dir, 0700);
	rc = store_open(dir, &o, &W);
	if (!rc)
		rc = store_mkdir(W, IDX_ROOT_INO, "d", 0755, 0, 0, NULL);
	if (rc) {
		printf("Bail out! store %s: %d\n", dir, rc);
		return 1;
	}
	rc = payload_open(dir, PAYLOAD_RDONLY, &ps);
	CHECK(rc == 0 && ps, "read-only open beside the writer (%s)", payload_errmsg());
	if (!ps)
		return tap_done();
	test_appends(ps);
	test_not_appends(ps);
	test_wait(ps);
	test_fixed(ps);
	test_eio(ps);
	test_errors(ps);
	payload_close(ps);
	store_close(W);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmpl);
	}
	return tap_done();
}
