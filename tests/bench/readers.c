/* readers — many readers at once (issue 13 §5; tests/bench/run.sh, figure
 * readers).
 *
 *   readers parts SRC ROWS N pfs|ext4 FILE
 *   readers views SRC ROWS pfs|ext4 FILE WORKERS RATE SECS SEED LO HI SLOT
 *
 * SRC is the CSV on ext4 (one header row, then ROWS rows). Before anything
 * is timed, SRC is scanned once (a sparse row-offset index) and the hash of
 * every output a reader must produce is computed from SRC's bytes; then the
 * page cache is dropped (sync; drop_caches, so the run is cold: the hashing
 * warmed SRC), except in views mode with SLOT 0 (warm).
 *
 * parts: N processes at once. pfs: process K reads FILE@part=K/N (header +
 * rows [K*ROWS/N, (K+1)*ROWS/N)) with 1 MiB read(2)s. ext4: process K runs
 * `sh -c 'tail -n +A FILE | head -n B'` for the same rows (no header) and
 * reads its pipe. Prints the wall time (s) from the first fork to the last
 * exit. Every reader's bytes are hashed as they arrive and compared with
 * the expected hash (a wrong byte, a missing or an extra one fails).
 *
 * views: WORKERS processes; each issues RATE requests per second for SECS
 * seconds on a fixed schedule (a request starts at its slot or, when the
 * worker is behind, at once; none starts after SECS). A request is a
 * 100-row view: pfs opens FILE@rows=A:A+100, reads it whole and closes it;
 * ext4 runs `tail -n +(A+2) FILE | head -n 100`. A is drawn (seed SEED)
 * from [LO, HI-100). With SLOT > 0 (cold) the range is cut into slots of
 * SLOT rows (run.sh: the rows of one fragment), shuffled, and no two
 * requests share a slot: every view is over rows no earlier request read
 * (the run ends early when the slots run out). Prints one latency (s) per
 * completed request on stdout, then "# n=N planned=P" on stderr.
 *
 * Exit 0; 1 on a failed call or WRONG BYTES (message on stderr); 2 usage.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchclock.h"

#define BLK (1u << 20)
#define IDX_EVERY 256
#define VIEW_ROWS 100
#define MAX_PROCS 64

static const char *src_path;
static const uint8_t *src;
static size_t src_len, hdr_len;
static long rows;
static uint64_t *idx; /* idx[i] = offset of row i*IDX_EVERY (row 0: after the header) */

static void die(const char *fmt, const char *a)
{
	fprintf(stderr, "readers: ");
	fprintf(stderr, fmt, a);
	fprintf(stderr, "\n");
	exit(1);
}

/* A streaming hash whose value depends only on the bytes, not on how they
 * were cut: bytes are gathered into BLK-byte blocks, each block is hashed
 * word by word (FNV-style multiply over 8-byte words, then its tail), and
 * the blocks are chained. */
struct hs {
	uint8_t *buf;
	size_t n;
	uint64_t h, total;
};

static void hs_init(struct hs *s)
{
	s->buf = malloc(BLK);
	if (!s->buf)
		die("%s", "out of memory");
	s->n = 0;
	s->h = 0xcbf29ce484222325ull;
	s->total = 0;
}

static void hs_block(struct hs *s)
{
	uint64_t h = s->h, w;
	size_t i;

	for (i = 0; i + 8 <= s->n; i += 8) {
		memcpy(&w, s->buf + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < s->n; i++)
		h = (h ^ s->buf[i]) * 0x100000001b3ull;
	s->h = h ^ s->n;
	s->total += s->n;
	s->n = 0;
}

static void hs_feed(struct hs *s, const uint8_t *p, size_t len)
{
	while (len) {
		size_t k = BLK - s->n;

		if (k > len)
			k = len;
		memcpy(s->buf + s->n, p, k);
		s->n += k;
		p += k;
		len -= k;
		if (s->n == BLK)
			hs_block(s);
	}
}

static uint64_t hs_end(struct hs *s)
{
	if (s->n)
		hs_block(s);
	free(s->buf);
	return s->h ^ (s->total * 0x9e3779b97f4a7c15ull);
}

/* Hash everything readable from fd, read straight into the block buffer. */
static int hs_fd(int fd, uint64_t *out)
{
	struct hs s;

	hs_init(&s);
	for (;;) {
		ssize_t r = read(fd, s.buf + s.n, BLK - s.n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		s.n += (size_t)r;
		if (s.n == BLK)
			hs_block(&s);
	}
	*out = hs_end(&s);
	return 0;
}

/* Map SRC, check it has ROWS rows after one header row, index it. */
static void load_src(void)
{
	struct stat st;
	int fd = open(src_path, O_RDONLY);
	const uint8_t *p, *e, *nl;
	long r = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		die("cannot open %s", src_path);
	src_len = (size_t)st.st_size;
	src = mmap(NULL, src_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (src == MAP_FAILED)
		die("cannot map %s", src_path);
	madvise((void *)src, src_len, MADV_SEQUENTIAL);
	idx = malloc(sizeof(*idx) * (size_t)(rows / IDX_EVERY + 2));
	if (!idx)
		die("%s", "out of memory");
	nl = memchr(src, '\n', src_len);
	if (!nl)
		die("%s has no header row", src_path);
	hdr_len = (size_t)(nl + 1 - src);
	p = nl + 1;
	e = src + src_len;
	while (p < e) {
		if (r % IDX_EVERY == 0)
			idx[r / IDX_EVERY] = (uint64_t)(p - src);
		nl = memchr(p, '\n', (size_t)(e - p));
		p = nl ? nl + 1 : e;
		r++;
	}
	if (r != rows)
		die("%s: the row count differs from ROWS", src_path);
	idx[rows / IDX_EVERY + (rows % IDX_EVERY ? 1 : 0)] = src_len;
}

/* The byte offset of row i (0 <= i <= rows). */
static size_t row_off(long i)
{
	const uint8_t *p;
	long k;

	if (i >= rows)
		return src_len;
	p = src + idx[i / IDX_EVERY];
	for (k = i % IDX_EVERY; k > 0; k--)
		p = (const uint8_t *)memchr(p, '\n', src_len - (size_t)(p - src)) + 1;
	return (size_t)(p - src);
}

/* The hash of (header if hdr) + rows [a, b). */
static uint64_t want_hash(int hdr, long a, long b)
{
	struct hs s;
	size_t o = row_off(a);

	hs_init(&s);
	if (hdr)
		hs_feed(&s, src, hdr_len);
	hs_feed(&s, src + o, row_off(b) - o);
	return hs_end(&s);
}

static void drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "3", 1) != 1)
		die("%s", "cannot drop caches (root?)");
	close(fd);
	/* load the peer's tools again: a cold figure pays for cold data, not
	 * for exec'ing a cold sh, tail or head */
	if (system("tail -n 1 /dev/null; head -n 1 /dev/null") != 0)
		die("%s", "sh, tail or head failed");
}

/* Start `tail -n +(a+2) SRC | head -n (b-a)`; returns the read end of its
 * output and the shell's pid. */
static int start_tailhead(long a, long b, pid_t *pid)
{
	char cmd[4096];
	int pfd[2];

	snprintf(cmd, sizeof(cmd), "tail -n +%ld '%s' | head -n %ld", a + 2, src_path, b - a);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	*pid = fork();
	if (*pid < 0)
		return -1;
	if (*pid == 0) {
		dup2(pfd[1], 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	return pfd[0];
}

/* One reader: rows [a, b) of FILE as pfs (name given) or ext4; 0 if the
 * bytes hash to want. */
static int read_one(int pfs, const char *name, long a, long b, uint64_t want, const char **why)
{
	uint64_t got;
	pid_t pid = 0;
	int fd, st, rc = 0;

	if (pfs)
		fd = open(name, O_RDONLY);
	else
		fd = start_tailhead(a, b, &pid);
	if (fd < 0) {
		*why = "open";
		return -1;
	}
	if (hs_fd(fd, &got) < 0) {
		*why = "read";
		rc = -1;
	}
	close(fd);
	if (!pfs && (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))) {
		*why = "tail | head failed";
		rc = -1;
	}
	if (!rc && got != want) {
		*why = "WRONG BYTES";
		rc = -1;
	}
	return rc;
}

static int mode_parts(int argc, char **argv)
{
	long n = atol(argv[4]), k;
	int pfs = !strcmp(argv[5], "pfs");
	const char *file = argv[6];
	uint64_t want[MAX_PROCS];
	pid_t pid[MAX_PROCS];
	double t0, t1;
	int bad = 0;

	(void)argc;
	if (n < 1 || n > MAX_PROCS)
		die("N must be 1..%s", "64");
	load_src();
	for (k = 0; k < n; k++)
		want[k] = want_hash(pfs, k * rows / n, (k + 1) * rows / n);
	drop_caches();
	t0 = now_s();
	for (k = 0; k < n; k++) {
		pid[k] = fork();
		if (pid[k] < 0)
			die("%s", "fork failed");
		if (pid[k] == 0) {
			char name[4096];
			const char *why = "";

			snprintf(name, sizeof(name), "%s@part=%ld/%ld", file, k, n);
			if (read_one(pfs, name, k * rows / n, (k + 1) * rows / n, want[k], &why)) {
				fprintf(stderr, "readers: part %ld/%ld of %s: %s\n", k, n, file, why);
				_exit(1);
			}
			_exit(0);
		}
	}
	for (k = 0; k < n; k++) {
		int st;

		if (waitpid(pid[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
	}
	t1 = now_s();
	if (bad)
		return 1;
	printf("%.6f\n", t1 - t0);
	return 0;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int mode_views(int argc, char **argv)
{
	int pfs = !strcmp(argv[4], "pfs");
	const char *file = argv[5];
	long workers = atol(argv[6]), rate = atol(argv[7]), secs = atol(argv[8]);
	long lo = atol(argv[10]), hi = atol(argv[11]), slot = atol(argv[12]);
	long per, total, i, w, nslots = 0, *slots = NULL;
	long *at;
	uint64_t *want;
	double *lat, t0;
	pid_t pid[MAX_PROCS];
	int bad = 0;

	(void)argc;
	rng_state = (uint64_t)atoll(argv[9]) * 0x9e3779b97f4a7c15ull + 1;
	if (workers < 1 || workers > MAX_PROCS || rate < 1 || secs < 1 || lo < 0 || hi > rows ||
	    hi - lo < VIEW_ROWS || slot < 0 || (slot && slot < 2 * VIEW_ROWS))
		die("%s", "bad views arguments");
	per = rate * secs;
	total = per * workers;
	if (slot) {
		nslots = (hi - lo) / slot;
		slots = malloc(sizeof(*slots) * (size_t)(nslots ? nslots : 1));
		for (i = 0; i < nslots; i++)
			slots[i] = i;
		for (i = nslots - 1; i > 0; i--) {
			long j = (long)(rnd() % (uint64_t)(i + 1)), t = slots[i];

			slots[i] = slots[j];
			slots[j] = t;
		}
	}
	at = malloc(sizeof(*at) * (size_t)total);
	want = malloc(sizeof(*want) * (size_t)total);
	/* results shared with the workers: latency, or -1 if not done */
	lat = mmap(NULL, sizeof(double) * (size_t)total, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!at || !want || lat == MAP_FAILED)
		die("%s", "out of memory");
	load_src();
	/* request i of worker w is at[w * per + i]; in cold mode the slots are
	 * handed out in the order the requests are scheduled */
	for (i = 0; i < per; i++)
		for (w = 0; w < workers; w++) {
			long q = w * per + i, g = i * workers + w, a;

			if (slot) {
				if (g >= nslots) {
					at[q] = -1;
					continue;
				}
				/* inside its slot, away from the slot's edges */
				a = lo + slots[g] * slot + slot / 4 +
				    (long)(rnd() % (uint64_t)(slot / 2 - VIEW_ROWS));
			} else {
				a = lo + (long)(rnd() % (uint64_t)(hi - lo - VIEW_ROWS));
			}
			at[q] = a;
			want[q] = want_hash(pfs, a, a + VIEW_ROWS);
		}
	for (i = 0; i < total; i++)
		lat[i] = -1;
	if (slot)
		drop_caches();
	t0 = now_s() + 0.05;
	for (w = 0; w < workers; w++) {
		pid[w] = fork();
		if (pid[w] < 0)
			die("%s", "fork failed");
		if (pid[w] == 0) {
			for (i = 0; i < per; i++) {
				long q = w * per + i;
				double due = t0 + (double)i / (double)rate, t;
				char name[4096];
				const char *why = "";

				if (at[q] < 0)
					break;
				t = now_s();
				if (t >= t0 + (double)secs)
					break;
				if (t < due) {
					struct timespec ts;
					double d = due - t;

					ts.tv_sec = (time_t)d;
					ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
					nanosleep(&ts, NULL);
				}
				snprintf(name, sizeof(name), "%s@rows=%ld:%ld", file, at[q], at[q] + VIEW_ROWS);
				t = now_s();
				if (read_one(pfs, name, at[q], at[q] + VIEW_ROWS, want[q], &why)) {
					fprintf(stderr, "readers: view rows %ld:%ld of %s: %s\n", at[q],
						at[q] + VIEW_ROWS, file, why);
					_exit(1);
				}
				lat[q] = now_s() - t;
			}
			_exit(0);
		}
	}
	for (w = 0; w < workers; w++) {
		int st;

		if (waitpid(pid[w], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
	}
	if (bad)
		return 1;
	{
		long n = 0, planned = 0;

		for (i = 0; i < total; i++) {
			if (at[i] >= 0)
				planned++;
			if (lat[i] >= 0) {
				printf("%.6f\n", lat[i]);
				n++;
			}
		}
		fprintf(stderr, "# n=%ld planned=%ld\n", n, planned);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "parts")) {
		src_path = argv[2];
		rows = atol(argv[3]);
		return mode_parts(argc, argv);
	}
	if (argc == 13 && !strcmp(argv[1], "views")) {
		src_path = argv[2];
		rows = atol(argv[3]);
		return mode_views(argc, argv);
	}
	fprintf(stderr, "usage: readers parts SRC ROWS N pfs|ext4 FILE\n"
			"       readers views SRC ROWS pfs|ext4 FILE WORKERS RATE SECS SEED LO HI SLOT\n");
	return 2;
}
