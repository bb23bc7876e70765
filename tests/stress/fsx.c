/* fsx — random-operation exerciser: a payloadfs mount against ext4 twins.
 *
 * In the style of xfstests' fsx: a seeded stream of operations on a few
 * files, each checked at once against an oracle, a short history printed
 * on the first difference. The oracle here is a twin file on another file
 * system (ext4) plus, for payloadfs's commit-on-close semantics (DESIGN §4,
 * §5), the committed versions held in memory:
 *
 *  - A file has at most one WRITER: an O_RDWR descriptor on the mount
 *    (sometimes O_APPEND, sometimes opened with O_TRUNC) and its twin's
 *    descriptor. Every change goes to both, and the writer's own reads,
 *    lseek(SEEK_END) and errnos must equal the twin's: a writer sees its
 *    staged bytes.
 *  - The COMMITTED version is what a new descriptor opens. It changes only
 *    when the writer is closed, fsync'ed, or a duplicate of it is closed
 *    (every flush commits), or by truncate(2) on the path when no writer
 *    is open; then it becomes a copy of the twin's bytes.
 *  - READERS are O_RDONLY descriptors; each pins the committed version of
 *    its open and must read exactly that, through read(2), pread(2),
 *    lseek(SEEK_END) and mmap (MAP_SHARED and MAP_PRIVATE; a mapping is
 *    kept and checked again after later commits and truncations), whatever
 *    the writer does meanwhile — except streams (DESIGN §5, §9; fs/ops.c
 *    (6), index/commit.c (9)): a commit by the writer that only appended
 *    to the version it replaced moves that version's readers to the new
 *    one. The model knows exactly which commits those are: the writer's
 *    session (since its open or its last commit) did nothing in
 *    [0, base size) — no write, mapped write-back page, punched or zeroed
 *    range starting there — and did not truncate (ftruncate, O_TRUNC);
 *    truncate(2) never moves anyone (f->rewrote). A mapping of a reader
 *    that moved keeps its length: its bytes are the new version's, and
 *    past the old end, on the mapping's last page, zeros or the new
 *    version's bytes (the page may not have been faulted in again).
 *  - fstat(2) of the writer and lseek(SEEK_END) show its staged size (the
 *    writer is alone on its node, fs/fnode.h); stat(2) of the path shows
 *    the committed size, or the staged size while the name still leads to
 *    the writer's node; fstat and lseek(SEEK_END) of a reader show its
 *    version's size.
 *  - The writer also writes through MAP_SHARED mappings of its O_RDWR
 *    descriptor (extending the file with ftruncate first, like xfstests'
 *    fsx), sometimes followed by msync(MS_SYNC), which commits; mapped
 *    bytes not msync'ed are staged at munmap and commit with the next
 *    commit of the writer. It reads through such mappings too, and calls
 *    fallocate(2) (modes 0, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE with and
 *    without KEEP_SIZE), staged like writes; the twin gets the same calls.
 *  - Readers map MAP_SHARED or MAP_PRIVATE whether or not a writer is
 *    open (each is on a node of its own version).
 *
 * Usage: fsx [-s SEED] [-n OPS] [-f FILES] [-m MAXSIZE] [-o MAXOP] [-q]
 *            MOUNT_DIR TWIN_DIR
 * Prints the seed first and a summary (ops, ops/s, per-op counts) last.
 * Exit 0: no difference; 1: a difference (seed, op number and the last
 * operations printed); 2: usage or set-up error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NREADERS 3
#define HIST     512            /* notes kept */
#define HIST_ALL 24             /* printed: the last ones, and the failing file's */
#define MAXFILES 16

struct ver {                    /* one committed version, shared by readers */
	int refs;
	size_t size;
	unsigned char *data;
};

struct reader {
	int fd;                 /* -1: slot free */
	struct ver *v;          /* the version it pinned at open */
	int direct;             /* opened while a writer was open (noted) */
	unsigned char *map;     /* a kept mapping of [0, maplen), or NULL */
	size_t maplen;
	int mapflags;
};

struct file {
	char mpath[4096], tpath[4096];
	int wm, wt;             /* writer: mount and twin descriptors, -1 */
	int wappend;
	int rewrote;            /* the writer's session is no append (streams) */
	struct ver *committed;
	struct reader r[NREADERS];
	size_t maxsize;
};

enum op {
	OP_READ_W, OP_READ_R, OP_READ_SEQ, OP_MMAP, OP_WRITE, OP_PWRITE, OP_APPEND,
	OP_TRUNC_W, OP_TRUNC_PATH, OP_FSYNC, OP_DUPCLOSE, OP_CLOSE_W, OP_OPEN_R,
	OP_CLOSE_R, OP_SEEK_END, OP_FSTAT, OP_STAT, OP_FRESH, OP_ERRNO,
	OP_MAPWRITE, OP_MAPREAD_W, OP_FALLOC, OP_N
};
static const char *op_name[OP_N] = {
	"read_w", "read_r", "read_seq", "mmap", "write", "pwrite", "append",
	"ftruncate", "truncate", "fsync", "dup_close", "close_w", "open_r",
	"close_r", "seek_end", "fstat", "stat", "fresh_read", "errno",
	"mapwrite", "mapread_w", "fallocate",
};
static const int op_weight[OP_N] = {
	10, 10, 3, 6, 10, 10, 6,
	5, 2, 1, 2, 4, 4,
	3, 3, 3, 2, 2, 1,
	6, 4, 5,
};

static struct file files[MAXFILES];
static int nfiles = 4;
static uint64_t seed, opno, nops = 20000;
static size_t maxop = 65536, maxsize_arg = 0;
static int quiet;
static uint64_t counts[OP_N];
static uint64_t follows;        /* readers moved to an append (streams) */
static char hist[HIST][200];
static const char *cur_file;    /* the file of the current op ("f2") */
static uint64_t nhist;          /* notes written so far */
static uint64_t rng_state;
static unsigned char *buf_m, *buf_t, *buf_w;

/* ---- randomness: xorshift64*, seeded ---- */

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

/* ---- history and failure ---- */

static void note(const char *fmt, ...)
{
	va_list ap;
	char *h = hist[nhist++ % HIST];
	int n = snprintf(h, sizeof(hist[0]), "%8" PRIu64 " ", opno);

	va_start(ap, fmt);
	vsnprintf(h + n, sizeof(hist[0]) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void dump_history(void)
{
	uint64_t first = nhist > HIST ? nhist - HIST : 0;
	char tag[8];

	snprintf(tag, sizeof(tag), " %s ", cur_file ? cur_file : "--");
	fprintf(stderr, "fsx: the last %d operations, and before them those on%s"
		"(op number, file, what):\n", HIST_ALL, tag);
	for (uint64_t i = first; i < nhist; i++)
		if (i + HIST_ALL >= nhist || strstr(hist[i % HIST], tag))
			fprintf(stderr, "  %s\n", hist[i % HIST]);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fsx: MISMATCH at op %" PRIu64 " (seed %" PRIu64 "): ", opno, seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump_history();
	fprintf(stderr, "fsx: reproduce with: fsx -s %" PRIu64 " -n %" PRIu64 " -f %d -m %zu -o %zu "
		"MOUNT TWIN\n", seed, opno + 1, nfiles, maxsize_arg, maxop);
	exit(1);
}

static void die(const char *what)
{
	fprintf(stderr, "fsx: %s: %s (op %" PRIu64 ", seed %" PRIu64 ")\n", what, strerror(errno),
		opno, seed);
	exit(2);
}

/* Compare two byte ranges; on a difference, say where. */
static void same_bytes(const unsigned char *got, const unsigned char *want, size_t n,
		       uint64_t base, const char *what)
{
	if (!memcmp(got, want, n))
		return;
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i]) {
			size_t j = i;
			while (j < n && got[j] != want[j])
				j++;
			fail("%s: bytes differ at offset %" PRIu64 " (first %zu differing bytes; "
			     "got 0x%02x, want 0x%02x)", what, base + i, j - i, got[i], want[i]);
		}
}

/* Results of one call on both sides: return value and errno. */
struct res { long long r; int e; };

static struct res R(long long r) { struct res x = { r, r < 0 ? errno : 0 }; return x; }

static void same_res(struct res m, struct res t, const char *what)
{
	if (m.r != t.r || m.e != t.e)
		fail("%s: payloadfs returned %lld (%s), ext4 %lld (%s)", what, m.r,
		     m.e ? strerror(m.e) : "ok", t.r, t.e ? strerror(t.e) : "ok");
}

/* ---- versions ---- */

static struct ver *ver_get(struct ver *v) { v->refs++; return v; }

static void ver_put(struct ver *v)
{
	if (v && --v->refs == 0) {
		free(v->data);
		free(v);
	}
}

/* A new committed version: the twin's bytes now. */
static struct ver *ver_from_twin(struct file *f)
{
	struct ver *v = calloc(1, sizeof(*v));
	struct stat s;
	int fd = open(f->tpath, O_RDONLY);

	if (!v || fd < 0 || fstat(fd, &s))
		die("twin snapshot");
	v->refs = 1;
	v->size = (size_t)s.st_size;
	v->data = malloc(v->size + 1);
	if (!v->data || pread(fd, v->data, v->size, 0) != (ssize_t)v->size)
		die("twin snapshot read");
	close(fd);
	return v;
}

/* A commit; FOLLOW: by the writer, so its readers of the replaced version
 * follow it when the session only appended (f->rewrote: see the top). */
static void commit_as(struct file *f, int follow)
{
	struct ver *old = f->committed;

	f->committed = ver_from_twin(f);
	if (follow && !f->rewrote)
		for (int i = 0; i < NREADERS; i++)
			if (f->r[i].fd >= 0 && f->r[i].v == old) {
				f->r[i].v = ver_get(f->committed);
				ver_put(old);
				follows++;
			}
	f->rewrote = 0;         /* the session is rebased on the new version */
	ver_put(old);
}

static void commit(struct file *f)
{
	commit_as(f, 1);
}

/* The writer touches [OFF, ...) of its content: below the base's size,
 * its next commit is no append. */
static void touch_at(struct file *f, uint64_t off)
{
	if (off < f->committed->size)
		f->rewrote = 1;
}

/* ---- data: printable rows whose bytes tell the op that wrote them ---- */

static void fill(unsigned char *b, size_t n, uint64_t off)
{
	int style = (int)below(8);
	size_t line = 8 + below(200);

	for (size_t i = 0; i < n; i++) {
		uint64_t at = off + i;
		if (style == 0)                       /* random bytes */
			b[i] = (unsigned char)rnd();
		else if (style == 1)                  /* one long row, no newline */
			b[i] = (unsigned char)('a' + (opno + at) % 26);
		else
			b[i] = (at % line == line - 1) ? '\n' :
			       (unsigned char)(' ' + (opno * 7 + at) % 95);
	}
}

/* ---- SIGBUS from a mapping: a difference, not a crash ---- */

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_bus(int sig)
{
	(void)sig;
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	_exit(3);
}

/* ---- descriptors ---- */

static size_t pick_size(struct file *f)
{
	return (size_t)below(f->maxsize + 1);
}

static void open_writer(struct file *f)
{
	int fl = O_RDWR | O_CREAT;
	uint64_t c = below(10);

	f->wappend = c < 2;
	if (f->wappend)
		fl |= O_APPEND;
	if (c == 9)
		fl |= O_TRUNC;
	f->rewrote = c == 9;
	f->wm = open(f->mpath, fl, 0644);
	f->wt = open(f->tpath, fl, 0644);
	if (f->wm < 0 || f->wt < 0)
		fail("open writer (%s%s): payloadfs %d (%s), ext4 %d", f->wappend ? "O_APPEND" : "",
		     fl & O_TRUNC ? " O_TRUNC" : "", f->wm, strerror(errno), f->wt);
	note("%s open writer%s%s", f->mpath + strlen(f->mpath) - 2, f->wappend ? " O_APPEND" : "",
	     fl & O_TRUNC ? " O_TRUNC" : "");
}

static void close_writer(struct file *f, const char *why)
{
	struct res m = R(close(f->wm)), t = R(close(f->wt));

	f->wm = f->wt = -1;
	same_res(m, t, why);
	commit(f);
}

static void unmap_reader(struct reader *r)
{
	if (r->map)
		munmap(r->map, r->maplen);
	r->map = NULL;
}

static void close_reader(struct reader *r)
{
	unmap_reader(r);
	if (r->fd >= 0 && close(r->fd))
		fail("close of a reader: %s", strerror(errno));
	r->fd = -1;
	ver_put(r->v);
	r->v = NULL;
}

static struct reader *open_reader(struct file *f)
{
	struct reader *r = NULL;

	for (int i = 0; i < NREADERS && !r; i++)
		if (f->r[i].fd < 0)
			r = &f->r[i];
	if (!r) {
		r = &f->r[below(NREADERS)];
		close_reader(r);
	}
	r->fd = open(f->mpath, O_RDONLY);
	if (r->fd < 0)
		fail("open reader: %s", strerror(errno));
	r->v = ver_get(f->committed);
	r->direct = f->wm >= 0;
	return r;
}

static struct reader *any_reader(struct file *f)
{
	int n = 0, idx[NREADERS];

	for (int i = 0; i < NREADERS; i++)
		if (f->r[i].fd >= 0)
			idx[n++] = i;
	return n ? &f->r[idx[below((uint64_t)n)]] : NULL;
}

/* ---- checks of readers ---- */

/* The mapping of R must still show its version (SIGBUS is a difference). */
static void check_map(struct file *f, struct reader *r, const char *when)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = r->v->size < r->maplen ? r->v->size : r->maplen;
	size_t tail_end = (r->maplen + page - 1) / page * page;

	if (!r->map)
		return;
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		fail("%s: SIGBUS reading a %s mapping of %s (version of %zu bytes)", when,
		     r->mapflags == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE", f->mpath, n);
	}
	same_bytes(r->map, r->v->data, n, 0, when);
	/* past the mapping's length, on its last page: zeros, or the bytes
	 * of a version the reader followed to (streams) */
	for (size_t i = n; i < tail_end; i++)
		if (r->map[i] && (i >= r->v->size || r->map[i] != r->v->data[i]))
			fail("%s: byte %zu past the end of the mapping's last page is 0x%02x, not 0",
			     when, i, r->map[i]);
	bus_armed = 0;
}

/* After anything that commits or truncates: every kept mapping of F. */
static void check_maps(struct file *f, const char *when)
{
	for (int i = 0; i < NREADERS; i++)
		if (f->r[i].fd >= 0)
			check_map(f, &f->r[i], when);
}

/* ---- the operations ---- */

static const char *fname(struct file *f) { return f->mpath + strlen(f->mpath) - 2; }

static void do_read_w(struct file *f)
{
	uint64_t off = below(f->maxsize + f->maxsize / 8 + 1);
	size_t len = (size_t)below(maxop) + 1;
	struct res m, t;

	note("%s read_w off=%" PRIu64 " len=%zu", fname(f), off, len);
	m = R(pread(f->wm, buf_m, len, (off_t)off));
	t = R(pread(f->wt, buf_t, len, (off_t)off));
	same_res(m, t, "pread through the writer");
	if (m.r > 0)
		same_bytes(buf_m, buf_t, (size_t)m.r, off, "pread through the writer");
}

/* A read of R at OFF/LEN: the result must be its version's bytes. */
static void check_read(struct reader *r, long long got, uint64_t off, size_t len, const char *what)
{
	size_t want = off >= r->v->size ? 0 : (r->v->size - off < len ? r->v->size - off : len);

	if (got < 0)
		fail("%s off=%" PRIu64 " len=%zu: %s", what, off, len, strerror(errno));
	if ((size_t)got != want)
		fail("%s off=%" PRIu64 " len=%zu: %lld bytes, want %zu (version of %zu bytes)",
		     what, off, len, got, want, r->v->size);
	same_bytes(buf_m, r->v->data + off, want, off, what);
}

static void do_read_r(struct file *f, int seq)
{
	struct reader *r = any_reader(f);
	uint64_t off;
	size_t len = (size_t)below(maxop) + 1;
	long long got;

	if (!r)
		r = open_reader(f);
	off = below(r->v->size + r->v->size / 8 + 2);
	note("%s %s off=%" PRIu64 " len=%zu (reader of %zu bytes%s)", fname(f),
	     seq ? "lseek+read" : "pread", off, len, r->v->size, r->direct ? ", writer open" : "");
	if (seq) {
		if (lseek(r->fd, (off_t)off, SEEK_SET) != (off_t)off)
			fail("lseek SEEK_SET of a reader: %s", strerror(errno));
		got = read(r->fd, buf_m, len);
	} else {
		got = pread(r->fd, buf_m, len, (off_t)off);
	}
	check_read(r, got, off, len, seq ? "read of a reader" : "pread of a reader");
	if (seq && lseek(r->fd, 0, SEEK_CUR) != (off_t)(off + (uint64_t)got))
		fail("reader position after read: %lld, want %" PRIu64,
		     (long long)lseek(r->fd, 0, SEEK_CUR), off + (uint64_t)got);
}

static void do_mmap(struct file *f)
{
	struct reader *r = any_reader(f);
	int flags;
	void *p;

	if (!r)
		r = open_reader(f);
	if (r->map && below(2)) {      /* look at the kept mapping again */
		note("%s mmap re-check (%zu bytes, %s)", fname(f), r->v->size,
		     r->mapflags == MAP_SHARED ? "shared" : "private");
		check_map(f, r, "kept mapping");
		return;
	}
	unmap_reader(r);
	flags = below(2) ? MAP_SHARED : MAP_PRIVATE;
	note("%s mmap %s of a reader of %zu bytes%s", fname(f),
	     flags == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE", r->v->size,
	     r->direct ? " (writer open)" : "");
	if (r->v->size == 0)
		return;
	/* a program maps the size fstat(2) tells it (which must be its
	 * version's: a reader that followed an append too, streams) */
	{
		struct stat s;
		if (fstat(r->fd, &s) || (size_t)s.st_size != r->v->size)
			fail("fstat of a reader before mmap: size %lld, want its version's %zu",
			     (long long)s.st_size, r->v->size);
	}
	p = mmap(NULL, r->v->size, PROT_READ, flags, r->fd, 0);
	if (p == MAP_FAILED)
		fail("mmap %s of a reader of %zu bytes: %s",
		     flags == MAP_SHARED ? "MAP_SHARED" : "MAP_PRIVATE", r->v->size, strerror(errno));
	r->map = p;
	r->maplen = r->v->size;
	r->mapflags = flags;
	check_map(f, r, "mmap of a reader");
	if (below(3) == 0)
		unmap_reader(r);
}

static void ensure_writer(struct file *f)
{
	if (f->wm < 0)
		open_writer(f);
}

static void do_write(struct file *f, int positional)
{
	uint64_t off = below(f->maxsize);
	size_t len = (size_t)below(maxop) + 1;
	struct res m, t;

	ensure_writer(f);
	if (off + len > f->maxsize + maxop)
		len = 1;
	fill(buf_w, len, off);
	note("%s %s off=%" PRIu64 " len=%zu%s", fname(f), positional ? "pwrite" : "lseek+write",
	     off, len, f->wappend ? " (O_APPEND: at the end)" : "");
	if (!f->wappend)
		touch_at(f, off);
	if (positional) {
		m = R(pwrite(f->wm, buf_w, len, (off_t)off));
		t = R(pwrite(f->wt, buf_w, len, (off_t)off));
	} else {
		same_res(R(lseek(f->wm, (off_t)off, SEEK_SET)), R(lseek(f->wt, (off_t)off, SEEK_SET)),
			 "lseek SEEK_SET of the writer");
		m = R(write(f->wm, buf_w, len));
		t = R(write(f->wt, buf_w, len));
	}
	same_res(m, t, positional ? "pwrite" : "write");
	if (!positional && !f->wappend)
		same_res(R(lseek(f->wm, 0, SEEK_CUR)), R(lseek(f->wt, 0, SEEK_CUR)),
			 "writer position after write");
}

static void do_append(struct file *f)
{
	size_t len = (size_t)below(maxop / 4) + 1;
	struct res m, t;

	ensure_writer(f);
	fill(buf_w, len, 0);
	note("%s append len=%zu (%s)", fname(f), len, f->wappend ? "O_APPEND" : "lseek SEEK_END");
	if (!f->wappend)
		same_res(R(lseek(f->wm, 0, SEEK_END)), R(lseek(f->wt, 0, SEEK_END)),
			 "lseek SEEK_END of the writer");
	m = R(write(f->wm, buf_w, len));
	t = R(write(f->wt, buf_w, len));
	same_res(m, t, "append");
	if (!f->wappend)
		same_res(R(lseek(f->wm, 0, SEEK_CUR)), R(lseek(f->wt, 0, SEEK_CUR)),
			 "writer position after append");
}

static void do_trunc_w(struct file *f)
{
	size_t size = pick_size(f);

	ensure_writer(f);
	note("%s ftruncate %zu", fname(f), size);
	f->rewrote = 1;         /* a truncate is no append */
	same_res(R(ftruncate(f->wm, (off_t)size)), R(ftruncate(f->wt, (off_t)size)), "ftruncate");
	check_maps(f, "mappings after a writer's ftruncate");
}

static void do_trunc_path(struct file *f)
{
	size_t size = pick_size(f);

	if (f->wm >= 0) {               /* it would commit under the writer */
		do_trunc_w(f);
		return;
	}
	note("%s truncate(2) %zu", fname(f), size);
	same_res(R(truncate(f->mpath, (off_t)size)), R(truncate(f->tpath, (off_t)size)),
		 "truncate(2)");
	commit_as(f, 0);        /* nobody follows a truncate */
	check_maps(f, "mappings after truncate(2)");
}

static void do_fsync(struct file *f)
{
	ensure_writer(f);
	note("%s fsync", fname(f));
	same_res(R(fsync(f->wm)), R(0), "fsync of the writer");
	commit(f);
	check_maps(f, "mappings after fsync");
}

static void do_dupclose(struct file *f)
{
	int d;

	ensure_writer(f);
	note("%s close of a dup of the writer (commits)", fname(f));
	d = dup(f->wm);
	if (d < 0)
		die("dup");
	same_res(R(close(d)), R(0), "close of a duplicate of the writer");
	commit(f);
	check_maps(f, "mappings after a dup's close");
}

static void do_close_w(struct file *f)
{
	if (f->wm < 0) {
		open_writer(f);
		return;
	}
	note("%s close writer", fname(f));
	close_writer(f, "close of the writer");
	check_maps(f, "mappings after close");
}

static void do_open_r(struct file *f)
{
	struct reader *r = open_reader(f);

	note("%s open reader (version of %zu bytes%s)", fname(f), r->v->size,
	     r->direct ? ", writer open" : "");
}

static void do_close_r(struct file *f)
{
	struct reader *r = any_reader(f);

	note("%s close reader", fname(f));
	if (r) {
		check_map(f, r, "mapping before close");
		close_reader(r);
	}
}

static void do_seek_end(struct file *f)
{
	struct reader *r = any_reader(f);

	if (f->wm >= 0 && (!r || below(2))) {
		note("%s lseek SEEK_END of the writer", fname(f));
		same_res(R(lseek(f->wm, 0, SEEK_END)), R(lseek(f->wt, 0, SEEK_END)),
			 "lseek SEEK_END of the writer");
		return;
	}
	if (!r)
		r = open_reader(f);
	note("%s lseek SEEK_END of a reader of %zu bytes", fname(f), r->v->size);
	if (lseek(r->fd, 0, SEEK_END) != (off_t)r->v->size)
		fail("lseek SEEK_END of a reader: %lld, want its version's size %zu",
		     (long long)lseek(r->fd, 0, SEEK_END), r->v->size);
}

static void do_fstat(struct file *f)
{
	struct reader *r = any_reader(f);
	struct stat s;

	if (f->wm >= 0 && (!r || below(2))) {
		note("%s fstat of the writer", fname(f));
		if (fstat(f->wm, &s))
			fail("fstat of the writer: %s", strerror(errno));
		struct stat ts;
		if (fstat(f->wt, &ts))
			die("fstat of the twin");
		if (s.st_size != ts.st_size)
			fail("fstat of the writer: size %lld, want its staged %lld (ext4)",
			     (long long)s.st_size, (long long)ts.st_size);
		return;
	}
	if (!r)
		r = open_reader(f);
	note("%s fstat of a reader of %zu bytes%s", fname(f), r->v->size, r->direct ? " (writer open)" : "");
	if (fstat(r->fd, &s))
		fail("fstat of a reader: %s", strerror(errno));
	if ((size_t)s.st_size != r->v->size)
		fail("fstat of a reader: size %lld, want its version's %zu",
		     (long long)s.st_size, r->v->size);
}

static void do_stat(struct file *f)
{
	struct stat s;

	struct stat ts;

	note("%s stat(2) (committed %zu bytes)", fname(f), f->committed->size);
	if (stat(f->mpath, &s))
		fail("stat: %s", strerror(errno));
	if (f->wm >= 0 && fstat(f->wt, &ts) == 0 && s.st_size == ts.st_size)
		return;         /* the name's node is the writer's: its staged size */
	if ((size_t)s.st_size != f->committed->size)
		fail("stat(2): size %lld, want the committed %zu%s", (long long)s.st_size,
		     f->committed->size, f->wm >= 0 ? " or the writer's staged size" : "");
}

static void do_fresh(struct file *f)
{
	struct reader r = { .fd = open(f->mpath, O_RDONLY) };
	size_t at = 0;

	note("%s fresh open + read all (committed %zu bytes)", fname(f), f->committed->size);
	if (r.fd < 0)
		fail("fresh open: %s", strerror(errno));
	r.v = f->committed;
	for (;;) {
		ssize_t n = read(r.fd, buf_m, maxop);
		if (n < 0)
			fail("fresh read at %zu: %s", at, strerror(errno));
		if (n == 0)
			break;
		if (at + (size_t)n > r.v->size)
			fail("fresh read: more than the committed %zu bytes", r.v->size);
		same_bytes(buf_m, r.v->data + at, (size_t)n, at, "fresh read");
		at += (size_t)n;
	}
	if (at != r.v->size)
		fail("fresh read: %zu bytes, want the committed %zu", at, r.v->size);
	close(r.fd);
}

/* Calls that must fail the same way on both file systems. */
static void do_errno(struct file *f)
{
	struct reader *r = any_reader(f);
	int rt = open(f->tpath, O_RDONLY);
	int k = (int)below(4);

	if (!r)
		r = open_reader(f);
	ensure_writer(f);
	if (rt < 0)
		die("twin reader");
	note("%s errno case %d", fname(f), k);
	switch (k) {
	case 0:
		same_res(R(write(r->fd, "x", 1)), R(write(rt, "x", 1)), "write to a read-only fd");
		break;
	case 1:
		same_res(R(ftruncate(r->fd, 0)), R(ftruncate(rt, 0)), "ftruncate of a read-only fd");
		break;
	case 2:
		same_res(R(ftruncate(f->wm, -1)), R(ftruncate(f->wt, -1)), "ftruncate to -1");
		break;
	default:
		same_res(R(pwrite(f->wm, "x", 1, -1)), R(pwrite(f->wt, "x", 1, -1)),
			 "pwrite at offset -1");
		break;
	}
	close(rt);
}

/* ---- the writer's mappings and fallocate ---- */

/* memcpy with a mapping on one side: SIGBUS there is a difference. */
static void guarded_copy(void *dst, const void *src, size_t n, const char *what)
{
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		fail("SIGBUS %s", what);
	}
	memcpy(dst, src, n);
	bus_armed = 0;
}

/* Map [OFF, OFF+LEN) of descriptor FD (MAP_SHARED, PROT), page-aligned:
 * *BASE gets the mapping, the return value points at OFF in it. */
static unsigned char *map_range(int fd, uint64_t off, size_t len, int prot, void **base, size_t *mlen)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t pg = off / page * page;
	void *p;

	*mlen = (size_t)(off - pg) + len;
	p = mmap(NULL, *mlen, prot, MAP_SHARED, fd, (off_t)pg);
	if (p == MAP_FAILED)
		return NULL;
	*base = p;
	return (unsigned char *)p + (off - pg);
}

/* Both sides: write LEN bytes at OFF through a shared mapping of the
 * writer, after growing the file to cover them (mmap cannot extend);
 * then msync(MS_SYNC) (a commit on payloadfs) or not, and munmap. */
static void do_mapwrite(struct file *f)
{
	uint64_t off = below(f->maxsize);
	size_t len = (size_t)below(maxop) + 1, mlm, mlt;
	int sync = below(3) == 0;
	struct stat sm, st;
	unsigned char *pm, *pt;
	void *bm, *bt;

	ensure_writer(f);
	if (off + len > f->maxsize + maxop)
		len = 1;
	if (fstat(f->wm, &sm) || fstat(f->wt, &st))
		fail("fstat of the writer before a mapped write: %s", strerror(errno));
	if (sm.st_size != st.st_size)
		fail("fstat of the writer: size %lld, ext4 %lld", (long long)sm.st_size,
		     (long long)st.st_size);
	fill(buf_w, len, off);
	note("%s mapwrite off=%" PRIu64 " len=%zu%s%s", fname(f), off, len,
	     off + len > (uint64_t)st.st_size ? " (ftruncate to cover it first)" : "",
	     sync ? ", msync(MS_SYNC)" : "");
	if (off + len > (uint64_t)st.st_size) {
		f->rewrote = 1;
		same_res(R(ftruncate(f->wm, (off_t)(off + len))), R(ftruncate(f->wt, (off_t)(off + len))),
			 "ftruncate before a mapped write");
	}
	/* dirty pages are written back whole (from their page's start) */
	touch_at(f, off / (uint64_t)sysconf(_SC_PAGESIZE) * (uint64_t)sysconf(_SC_PAGESIZE));
	pm = map_range(f->wm, off, len, PROT_READ | PROT_WRITE, &bm, &mlm);
	if (!pm)
		fail("mmap MAP_SHARED PROT_WRITE of the writer: %s", strerror(errno));
	pt = map_range(f->wt, off, len, PROT_READ | PROT_WRITE, &bt, &mlt);
	if (!pt)
		die("mmap of the twin's writer");
	guarded_copy(pm, buf_w, len, "writing through a shared mapping of the writer");
	memcpy(pt, buf_w, len);
	if (sync) {
		same_res(R(msync(bm, mlm, MS_SYNC)), R(msync(bt, mlt, MS_SYNC)), "msync(MS_SYNC)");
		commit(f);
	}
	if (munmap(bm, mlm) || munmap(bt, mlt))
		die("munmap");
	if (sync)
		check_maps(f, "mappings after msync");
}

/* A shared read-only mapping of the writer shows its staged bytes. */
static void do_mapread_w(struct file *f)
{
	struct stat st;
	uint64_t off;
	size_t len = (size_t)below(maxop) + 1, mlm;
	unsigned char *pm;
	void *bm;

	ensure_writer(f);
	if (fstat(f->wt, &st))
		die("fstat of the twin");
	if (st.st_size == 0) {
		note("%s mapread_w of an empty writer: nothing", fname(f));
		return;
	}
	off = below((uint64_t)st.st_size);
	if (off + len > (uint64_t)st.st_size)
		len = (size_t)((uint64_t)st.st_size - off);
	note("%s mapread_w off=%" PRIu64 " len=%zu", fname(f), off, len);
	if (pread(f->wt, buf_t, len, (off_t)off) != (ssize_t)len)
		die("pread of the twin");
	pm = map_range(f->wm, off, len, PROT_READ, &bm, &mlm);
	if (!pm)
		fail("mmap MAP_SHARED PROT_READ of the writer: %s", strerror(errno));
	guarded_copy(buf_m, pm, len, "reading a shared mapping of the writer");
	munmap(bm, mlm);
	same_bytes(buf_m, buf_t, len, off, "a shared mapping of the writer");
}

static void do_falloc(struct file *f)
{
	static const int modes[] = { 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE };
	static const char *names[] = { "0", "KEEP_SIZE", "PUNCH_HOLE|KEEP_SIZE", "ZERO_RANGE",
				       "ZERO_RANGE|KEEP_SIZE" };
	int k = (int)below(5);
	uint64_t off = below(f->maxsize);
	size_t len = (size_t)below(maxop) + 1;

	ensure_writer(f);
	if (off + len > f->maxsize + maxop)
		len = 1;
	note("%s fallocate %s off=%" PRIu64 " len=%zu", fname(f), names[k], off, len);
	if (k >= 2)             /* zeros written over [off, ...): 0 and KEEP_SIZE only extend */
		touch_at(f, off);
	same_res(R(fallocate(f->wm, modes[k], (off_t)off, (off_t)len)),
		 R(fallocate(f->wt, modes[k], (off_t)off, (off_t)len)), "fallocate");
}

static enum op pick_op(void)
{
	static int total;
	int x;

	if (!total)
		for (int i = 0; i < OP_N; i++)
			total += op_weight[i];
	x = (int)below((uint64_t)total);
	for (int i = 0; i < OP_N; i++) {
		if (x < op_weight[i])
			return (enum op)i;
		x -= op_weight[i];
	}
	return OP_READ_W;
}

static const char *fname(struct file *f);

static void run_op(struct file *f, enum op o)
{
	counts[o]++;
	cur_file = fname(f);
	switch (o) {
	case OP_READ_W:
		ensure_writer(f);
		do_read_w(f);
		break;
	case OP_READ_R: do_read_r(f, 0); break;
	case OP_READ_SEQ: do_read_r(f, 1); break;
	case OP_MMAP: do_mmap(f); break;
	case OP_WRITE: do_write(f, 0); break;
	case OP_PWRITE: do_write(f, 1); break;
	case OP_APPEND: do_append(f); break;
	case OP_TRUNC_W: do_trunc_w(f); break;
	case OP_TRUNC_PATH: do_trunc_path(f); break;
	case OP_FSYNC: do_fsync(f); break;
	case OP_DUPCLOSE: do_dupclose(f); break;
	case OP_CLOSE_W: do_close_w(f); break;
	case OP_OPEN_R: do_open_r(f); break;
	case OP_CLOSE_R: do_close_r(f); break;
	case OP_SEEK_END: do_seek_end(f); break;
	case OP_FSTAT: do_fstat(f); break;
	case OP_STAT: do_stat(f); break;
	case OP_FRESH: do_fresh(f); break;
	case OP_ERRNO: do_errno(f); break;
	case OP_MAPWRITE: do_mapwrite(f); break;
	case OP_MAPREAD_W: do_mapread_w(f); break;
	case OP_FALLOC: do_falloc(f); break;
	default: break;
	}
}

/* At the end: close everything, then every file must equal its twin. */
static void final_check(void)
{
	note("final: close all, compare every file with its twin");
	for (int i = 0; i < nfiles; i++) {
		struct file *f = &files[i];
		if (f->wm >= 0)
			close_writer(f, "final close of the writer");
		check_maps(f, "final mappings");
		for (int k = 0; k < NREADERS; k++)
			if (f->r[k].fd >= 0)
				close_reader(&f->r[k]);
		do_fresh(f);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: fsx [-s SEED] [-n OPS] [-f FILES] [-m MAXSIZE] [-o MAXOP] [-q] "
			"MOUNT_DIR TWIN_DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct sigaction sa;
	double secs;
	int c;

	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	while ((c = getopt(argc, argv, "s:n:f:m:o:q")) != -1) {
		switch (c) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'n': nops = strtoull(optarg, NULL, 0); break;
		case 'f': nfiles = atoi(optarg); break;
		case 'm': maxsize_arg = strtoull(optarg, NULL, 0); break;
		case 'o': maxop = strtoull(optarg, NULL, 0); break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (argc - optind != 2 || nfiles < 1 || nfiles > MAXFILES || maxop < 16)
		usage();
	rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
	printf("fsx: seed %" PRIu64 ", %" PRIu64 " ops, %d files\n", seed, nops, nfiles);
	fflush(stdout);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_bus;
	sigaction(SIGBUS, &sa, NULL);
	buf_m = malloc(maxop + 1);
	buf_t = malloc(maxop + 1);
	buf_w = malloc(maxop + 1);
	if (!buf_m || !buf_t || !buf_w)
		die("malloc");
	for (int i = 0; i < nfiles; i++) {
		struct file *f = &files[i];
		/* sizes across the inline limit (4 KiB) and many fragments */
		static const size_t sizes[] = { 6000, 300000, 40000, 1200000 };
		f->maxsize = maxsize_arg ? maxsize_arg : sizes[i % 4];
		snprintf(f->mpath, sizeof(f->mpath), "%s/f%d", argv[optind], i);
		snprintf(f->tpath, sizeof(f->tpath), "%s/f%d", argv[optind + 1], i);
		if (f->mpath[strlen(f->mpath) - 3] != '/' || i > 9) {
			fprintf(stderr, "fsx: at most 10 files\n");
			exit(2);
		}
		f->wm = f->wt = -1;
		for (int k = 0; k < NREADERS; k++)
			f->r[k].fd = -1;
		if (close(open(f->mpath, O_WRONLY | O_CREAT | O_TRUNC, 0644)) ||
		    close(open(f->tpath, O_WRONLY | O_CREAT | O_TRUNC, 0644)))
			die("create");
		f->committed = ver_from_twin(f);
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (opno = 0; opno < nops; opno++) {
		struct file *f = &files[below((uint64_t)nfiles)];
		run_op(f, pick_op());
		if (!quiet && opno && opno % 10000 == 0) {
			printf("fsx: %" PRIu64 " ops\n", opno);
			fflush(stdout);
		}
	}
	final_check();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("fsx: %" PRIu64 " ops in %.1f s (%.0f ops/s), seed %" PRIu64 ", no difference\n",
	       nops, secs, (double)nops / secs, seed);
	printf("fsx: per op:");
	for (int i = 0; i < OP_N; i++)
		printf(" %s=%" PRIu64, op_name[i], counts[i]);
	printf("\nfsx: %" PRIu64 " times a reader followed an append\n", follows);
	for (int i = 0; i < nfiles; i++)
		ver_put(files[i].committed);
	free(buf_m);
	free(buf_t);
	free(buf_w);
	return 0;
}
