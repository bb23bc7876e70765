/* ctl_ls — `payloadctl ls STORE [PATH]`: one line per entry, like ls -l:
 * mode, nlink, size, data rows, version, fragments, name. A directory is
 * read in batches (bounded memory whatever its size). */
#include "tools/ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
	"usage: payloadctl ls [-d] STORE [PATH]\n"
	"\n"
	"List directory PATH of STORE (default: the root), or the entry PATH when it\n"
	"is not a directory or with -d. One line per entry, in name order:\n"
	"\n"
	"  MODE NLINK SIZE ROWS VERSION FRAGMENTS NAME\n"
	"\n"
	"ROWS counts data rows (header rows excluded); ROWS, VERSION and FRAGMENTS\n"
	"are '-' for anything but regular files. A symbolic link shows\n"
	"'NAME -> TARGET'. Views are not listed.\n";

#define LS_BATCH 1024

struct ls_ent {
	char *name;
	uint64_t ino;
};

struct ls_batch {
	struct ls_ent v[LS_BATCH];
	size_t n;
	int err;
};

static void print_entry(struct store *st, const struct idx_inode *in, const char *name)
{
	char mode[11];

	ctl_mode_str(in->mode, mode);
	printf("%s %3" PRIu32 " %10" PRIu64 " ", mode, in->nlink, in->size);
	if (S_ISREG(in->mode))
		printf("%8" PRIu64 " %4" PRIu64 " %4" PRIu32 " ", ctl_data_rows(in), in->version, in->nfrags);
	else
		printf("%8s %4s %4s ", "-", "-", "-");
	ctl_put_name(stdout, name);
	if (S_ISLNK(in->mode)) {
		char target[4096];
		ssize_t n = store_readlink(st, in->ino, target, sizeof(target));
		fputs(" -> ", stdout);
		if (n >= 0)
			ctl_put_name(stdout, target);
		else
			printf("? (%s)", strerror((int)-n));
	}
	putchar('\n');
}

static int collect(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct ls_batch *b = arg;

	(void)type;
	if (!(b->v[b->n].name = strdup(name))) {
		b->err = -ENOMEM;
		return 1;
	}
	b->v[b->n++].ino = child;
	return b->n == LS_BATCH;
}

/* List directory DIR; PATH names it in messages. @return an exit status. */
static int list_dir(struct store *st, uint64_t dir, const char *path)
{
	struct ls_batch *b = calloc(1, sizeof(*b));
	char *after = NULL;
	int rc = 0, status = CTL_OK;

	if (!b) {
		ctl_err(path, "%s", strerror(ENOMEM));
		return CTL_FAIL;
	}
	do {
		b->n = 0;
		rc = store_readdir(st, dir, after, collect, b);
		if (rc > 0)
			rc = b->err;
		free(after);
		after = NULL;
		for (size_t i = 0; i < b->n; i++) {
			struct idx_inode in;
			int e = store_getattr(st, b->v[i].ino, &in);
			if (e == 0) {
				print_entry(st, &in, b->v[i].name);
			} else {
				ctl_err(b->v[i].name, "inode %" PRIu64 ": %s", b->v[i].ino, strerror(-e));
				status = CTL_FAIL;
			}
			if (i + 1 < b->n)
				free(b->v[i].name);
			else
				after = b->v[i].name;
		}
	} while (!rc && b->n == LS_BATCH);
	free(after);
	free(b);
	if (rc) {
		ctl_err(path, "%s", strerror(-rc));
		return CTL_FAIL;
	}
	return status;
}

int ctl_ls(int argc, char **argv)
{
	struct idx_inode in;
	struct store *st;
	const char *path;
	int flags[1] = { 0 }, n, rc = ctl_getopt("ls", argc, argv, "d", flags, help, &n);

	if (rc >= 0)
		return rc;
	if (n < 2 || n > 3)
		return ctl_usage("ls", n < 2 ? "missing STORE" : "too many arguments");
	path = n == 3 ? argv[2] : "";
	if (ctl_open(argv[1], &st))
		return CTL_FAIL;
	rc = ctl_resolve(st, path, 0, &in);
	if (rc) {
		ctl_err(*path ? path : "/", "%s", ctl_strerror(rc));
		rc = CTL_FAIL;
	} else if (S_ISDIR(in.mode) && !flags[0]) {
		rc = list_dir(st, in.ino, *path ? path : "/");
	} else {
		print_entry(st, &in, *path ? path : ".");
		rc = CTL_OK;
	}
	store_close(st);
	if (fflush(stdout) != 0 && rc == CTL_OK) {
		ctl_err("stdout", "%s", strerror(errno));
		rc = CTL_FAIL;
	}
	return rc;
}
