/* ctl — the pieces payloadctl's subcommands share: opening a store, paths
 * inside a store, error messages and formatting. Everything goes through
 * the core API of index/store.h (the one the daemon uses); nothing here
 * touches LMDB or fragment files directly.
 *
 * Error convention of the tool: every failure prints one line
 * `payloadctl: WHAT: WHY` on stderr. Subcommands return an exit status:
 * CTL_OK, CTL_FAIL (the operation failed, or fsck found damage) or
 * CTL_USAGE (bad command line; fsck: also an operational error).
 * Single-threaded.
 */
#ifndef PFS_CTL_H
#define PFS_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "index/store.h"

#define PCTL_VERSION "0.1.0"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

/* Bytes read from the store and written to stdout per call (cat). */
#define CTL_CHUNK (1u << 20)
/* Fragment cache budget of the tool's store handle. */
#define CTL_CACHE (8u << 20)

/* ---- messages and options (ctl_msg.c) ---- */

/* Print `payloadctl: WHAT: WHY` (printf-style WHY) on stderr. */
void ctl_err(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print `payloadctl: CMD: WHY` and a hint to --help on stderr.
 * @return CTL_USAGE */
int ctl_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flush stdout (a command's last step: its output is part of its result).
 * @return 0, or -errno (printed as `payloadctl: stdout: WHY`). */
int ctl_flush_stdout(void);

/* Parse a subcommand's options: SHORTOPTS may only hold flag letters ("v").
 * Sets FLAGS[i] for the i-th letter; moves operands to the front of ARGV
 * and stores their number in *NARGS. `--help`/`-h` prints HELP on stdout.
 * @return -1 to go on; otherwise the exit status to return now
 *   (CTL_OK after help, CTL_USAGE after an unknown option). */
int ctl_getopt(const char *cmd, int argc, char **argv, const char *shortopts, int *flags,
	       const char *help, int *nargs);

/* One option of ctl_parse: a flag (ARG NULL: *FLAG set to 1) or an option
 * with a value (*ARG points to it; the last one given wins). SHORTNAME 0:
 * no short form; LONGNAME NULL: no long form (without the leading --). */
struct ctl_opt {
	char shortname;
	const char *longname;
	int *flag;
	const char **arg;
};
/* Parse ARGV against OPTS (N entries): -x, -xy (flags bundled), -xVAL,
 * -x VAL, --name, --name=VAL, --name VAL; `--` ends the options; operands
 * move to the front of ARGV (argv[1..*NARGS)). `--help`/`-h` prints HELP.
 * @return -1 to go on; otherwise the exit status to return now (CTL_OK
 *   after help; CTL_USAGE after an unknown option, a missing value, or a
 *   value given to a flag, each reported). */
int ctl_parse(const char *cmd, int argc, char **argv, const struct ctl_opt *opts, size_t n,
	      const char *help, int *nargs);
/* Parse a byte count: digits with an optional K, M, G (powers of 1024)
 * suffix. @return 0, or -EINVAL (not a number, zero when !ZERO_OK, or
 * above MAX). */
int ctl_parse_size(const char *s, uint64_t max, int zero_ok, uint64_t *out);

/* ---- stores and paths (ctl_util.c) ---- */

/* Open the store in DIR read-only (no sweep, safe while mounted).
 * @return 0 with *OUT set; on failure the error is printed and *OUT is
 *   NULL. */
int ctl_open(const char *dir, struct store **out);
/* Open DIR read-write with the daemon's exclusive lock, for the commands
 * that change a store (CMD names the command in the message). O may be
 * NULL (defaults). @return 0 with *OUT set; -EBUSY (printed: the store is
 *   mounted or held by another payloadctl; exit with CTL_USAGE), another
 *   -errno (printed; exit with CTL_FAIL). */
int ctl_open_rw(const char *dir, const char *cmd, const struct store_opts *o, struct store **out);
/* store_opts.lock_note of payloadctl: says on stderr that it waits for the
 * exiting holder of DIR's lock (index/storelock.h). */
void ctl_lock_note(const char *dir, unsigned wait_ms);
/* The exit status for a failed ctl_open_rw: CTL_USAGE for -EBUSY, else
 * CTL_FAIL. */
int ctl_open_status(int rc);

/* Resolve PATH (relative to the store root; "", "/" or "." is the root;
 * `.by-id/ID` names an object by id). Components are looked up with
 * store_lookup; "." and ".." work. Symbolic links met on the way are
 * followed when their target is relative; the last component is followed
 * only with FOLLOW.
 * @return 0; -ENOENT, -ENOTDIR, -ENAMETOOLONG, -ELOOP (too many links),
 *   -EXDEV (absolute link target: it names a path of the mount, not of the
 *   store), -errno of the store. */
int ctl_resolve(struct store *st, const char *path, int follow, struct idx_inode *out);

/* Data rows of an object: rows minus header rows (header clipped to rows;
 * fixed:N has none). */
/* strerror for path errors (-ERRNO), with -EXDEV explained. */
const char *ctl_strerror(int err);

uint64_t ctl_data_rows(const struct idx_inode *in);
uint64_t ctl_header_rows(const struct idx_inode *in);

/* `ls -l` style mode string of MODE into BUF (11 bytes). */
void ctl_mode_str(uint32_t mode, char buf[11]);
/* "regular file", "directory", ... */
const char *ctl_type_name(uint32_t mode);
/* Local time of NS with nanoseconds, like stat(1): "2024-05-01
 * 12:00:00.123456789 +0200", into BUF (CAP >= 48). */
void ctl_time_str(int64_t ns, char *buf, size_t cap);
/* Write NAME to F, with control characters escaped (\n, \t, \ooo), so one
 * entry stays one line. */
void ctl_put_name(FILE *f, const char *name);
/* Write LEN bytes to FD, retrying short writes and EINTR. @return 0 or -errno. */
int ctl_write_all(int fd, const void *buf, size_t len);

/* ---- paths (ctl_path.c) ---- */

/* A + "/" + B (no second '/' when A ends in one; just B when A is ""), in
 * a malloc'd string. @return it, or NULL (out of memory). */
char *ctl_join(const char *a, const char *b);

/* ---- progress on a terminal and figures (ctl_progress.c) ---- */

struct ctl_progress {
	int on;                     /* draw (stderr is a terminal and not -q) */
	uint64_t total_bytes, total_files;   /* 0: unknown */
	uint64_t bytes, files;      /* done so far */
	double t0, last;            /* start, last drawn (seconds, monotonic) */
	size_t width;               /* characters of the last line drawn */
};
/* Monotonic seconds. */
double ctl_now(void);
/* Start: ON decides whether anything is drawn. */
void ctl_progress_start(struct ctl_progress *p, int on);
/* Count BYTES (and FILES) done; redraw at most 10 times a second. */
void ctl_progress_add(struct ctl_progress *p, uint64_t bytes, uint64_t files);
/* Erase the line (before an error message or the summary). */
void ctl_progress_clear(struct ctl_progress *p);
/* The line ctl_progress_add draws, for NOW seconds, into BUF (CAP bytes):
 * "1.2 GiB / 4.0 GiB  30%  1234/5000 files  312 MB/s  ETA 0:09" (the
 * totals and ETA only when known). */
void ctl_progress_line(const struct ctl_progress *p, double now, char *buf, size_t cap);
/* "512 B", "1.5 KiB", "3.2 MiB", "1.0 GiB", ... into BUF. */
void ctl_fmt_bytes(uint64_t n, char *buf, size_t cap);
/* A duration: "0:09", "12:30", "1:02:03" into BUF. */
void ctl_fmt_eta(double secs, char *buf, size_t cap);
/* MB/s (10^6 bytes) of BYTES in SECS (0 when SECS is 0). */
double ctl_rate(uint64_t bytes, double secs);

/* What import and export copied, for their summary line. */
struct ctl_tally {
	uint64_t files, dirs, symlinks, others, hardlinks;
	int errors;                 /* entries left out (each reported) */
};
/* Print CMD's summary on stdout: "CMD: 3 files (1.5 KiB), 1 directory,
 * 0 symlinks[, N hard links][, N other] in 0.01 s (0.1 MB/s)[; N errors]",
 * for T and BYTES copied in SECS. */
void ctl_tally_print(const char *cmd, const struct ctl_tally *t, uint64_t bytes, double secs);

/* ---- subcommands: ARGV[0] is the subcommand name ---- */
int ctl_init(int argc, char **argv);
int ctl_ls(int argc, char **argv);
int ctl_stat(int argc, char **argv);
int ctl_cat(int argc, char **argv);
int ctl_fsck(int argc, char **argv);
int ctl_import(int argc, char **argv);
int ctl_export(int argc, char **argv);
int ctl_gc(int argc, char **argv);
int ctl_compress(int argc, char **argv);
int ctl_snapshot(int argc, char **argv);
int ctl_bench(int argc, char **argv);
int ctl_stats(int argc, char **argv);

/* The protocol of `snapshot` (ctl_snapshot.c) on an open store ST
 * (directory SRC) into DEST, for tests: HOOK (may be NULL) is called with
 * stage 0 after the pre-link and stage 1 after each copy of the index;
 * *ROUNDS gets the number of index copies. @return 0; -ENOTEMPTY (DEST
 * not empty), -EAGAIN (the store kept changing), -errno (DEST removed). */
int ctl_snapshot_run(struct store *st, const char *src, const char *dest,
		     void (*hook)(void *arg, int stage), void *arg, unsigned *rounds);

/* Remove what a failed `init` made in DIR (index/, fragments/, staging/
 * and their contents), so that the directory is as it was. */
void ctl_remove_new_store(const char *dir);

#endif
