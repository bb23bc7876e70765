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

/* Parse a subcommand's options: SHORTOPTS may only hold flag letters ("v").
 * Sets FLAGS[i] for the i-th letter; moves operands to the front of ARGV
 * and stores their number in *NARGS. `--help`/`-h` prints HELP on stdout.
 * @return -1 to go on; otherwise the exit status to return now
 *   (CTL_OK after help, CTL_USAGE after an unknown option). */
int ctl_getopt(const char *cmd, int argc, char **argv, const char *shortopts, int *flags,
	       const char *help, int *nargs);

/* ---- stores and paths (ctl_util.c) ---- */

/* Open the store in DIR read-only (no sweep, safe while mounted).
 * @return 0 with *OUT set; on failure the error is printed and *OUT is
 *   NULL. */
int ctl_open(const char *dir, struct store **out);

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

/* ---- subcommands: ARGV[0] is the subcommand name ---- */
int ctl_init(int argc, char **argv);
int ctl_ls(int argc, char **argv);
int ctl_stat(int argc, char **argv);
int ctl_cat(int argc, char **argv);
int ctl_fsck(int argc, char **argv);

#endif
