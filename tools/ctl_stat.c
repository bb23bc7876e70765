/* ctl_stat — `payloadctl stat [-v] STORE PATH`: every attribute of one
 * entry, one `key: value` line each; with -v an object's fragment list.
 * An object's figures and fragments come from one pinned version, so they
 * agree with each other even while a mount commits. */
#include "tools/ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static const char help[] =
	"usage: payloadctl stat [-v] STORE PATH\n"
	"\n"
	"Print every attribute of the entry PATH of STORE: id (inode number), type,\n"
	"mode, uid, gid, nlink, size; for objects also rows (data rows), header\n"
	"rows, format, storage, version, fragments and whether the data is inline;\n"
	"times. With -v, an object's fragments: index, byte offset, length, first\n"
	"row, rows, id, stored length and codec.\n";

#define KEY "%-13s"

static const char *codec_name(uint16_t codec)
{
	switch (codec) {
	case 0: return "raw";
	case 1: return "lz4";
	default: return "unknown";
	}
}

static void print_frags(struct pver *pv)
{
	uint32_t n = pver_nfrags(pv);

	printf("fragment list:\n");
	printf("  %6s %14s %10s %12s %8s  %-16s %10s  %s\n", "#", "offset", "length", "first row",
	       "rows", "id", "stored", "codec");
	for (uint32_t i = 0; i < n; i++) {
		const struct frag_desc *d = pver_frag(pv, i);
		printf("  %6" PRIu32 " %14" PRIu64 " %10" PRIu32 " %12" PRIu64 " %8" PRIu32
		       "  %016llx %10" PRIu32 "  %s%s%s%s\n",
		       i, d->off, d->len, d->first_row, d->rows, (unsigned long long)d->id,
		       d->stored_len, codec_name(d->codec),
		       d->flags & FRAG_F_MEMORY ? " (memory)" : "",
		       d->flags & FRAG_F_CONT ? " (continues a row)" : "",
		       d->flags & FRAG_F_STAGED ? " (staged: to be compressed)" : "");
	}
}

static const char *set_mark(const struct idx_inode *in, uint32_t flag)
{
	return in->flags & flag ? " (set explicitly)" : "";
}

/* The payload settings: an object's own, a directory's when set (they are
 * inherited by what is created in it). */
static void print_settings(const struct idx_inode *in)
{
	int reg = S_ISREG(in->mode);

	if (reg || (in->flags & INODE_F_FMT_SET)) {
		if (in->fmt_kind == PFMT_FIXED)
			printf(KEY "fixed:%" PRIu32 "%s\n", "format:", in->fmt_recsize,
			       set_mark(in, INODE_F_FMT_SET));
		else
			printf(KEY "lines%s\n", "format:", set_mark(in, INODE_F_FMT_SET));
	}
	/* header rows as set; an object shorter than its header has fewer */
	if (reg || (in->flags & INODE_F_HDR_SET))
		printf(KEY "%" PRIu32 "%s\n", "header rows:",
		       in->fmt_kind == PFMT_FIXED ? 0 : in->header, set_mark(in, INODE_F_HDR_SET));
	if (reg || (in->flags & INODE_F_STORAGE_SET))
		printf(KEY "%s%s\n", "storage:", in->flags & INODE_F_MEMORY ? "memory" : "disk",
		       set_mark(in, INODE_F_STORAGE_SET));
}

static void print_attrs(struct store *st, const struct idx_inode *in, const char *path)
{
	char mode[11], tbuf[64];

	ctl_mode_str(in->mode, mode);
	printf(KEY, "path:");
	ctl_put_name(stdout, path);
	putchar('\n');
	printf(KEY "%" PRIu64 "\n", "id:", in->ino);
	printf(KEY "%s\n", "type:", ctl_type_name(in->mode));
	printf(KEY "%04o (%s)\n", "mode:", in->mode & 07777, mode);
	printf(KEY "%" PRIu32 "\n", "uid:", in->uid);
	printf(KEY "%" PRIu32 "\n", "gid:", in->gid);
	printf(KEY "%" PRIu32 "\n", "nlink:", in->nlink);
	printf(KEY "%" PRIu64 "\n", "size:", in->size);
	if (S_ISREG(in->mode))
		printf(KEY "%" PRIu64 "\n", "rows:", ctl_data_rows(in));
	print_settings(in);
	if (S_ISREG(in->mode)) {
		printf(KEY "%" PRIu64 "\n", "version:", in->version);
		printf(KEY "%" PRIu32 "\n", "fragments:", in->nfrags);
		printf(KEY "%s\n", "inline:", in->flags & INODE_F_INLINE ? "yes" : "no");
	}
	if (S_ISDIR(in->mode))
		printf(KEY "%" PRIu64 "\n", "parent:", in->parent);
	if (S_ISCHR(in->mode) || S_ISBLK(in->mode))
		printf(KEY "%u:%u\n", "device:", major(in->rdev), minor(in->rdev));
	if (S_ISLNK(in->mode)) {
		char target[4096];
		ssize_t n = store_readlink(st, in->ino, target, sizeof(target));
		printf(KEY, "target:");
		if (n >= 0)
			ctl_put_name(stdout, target);
		else
			printf("? (%s)", strerror((int)-n));
		putchar('\n');
	}
	ctl_time_str(in->atime_ns, tbuf, sizeof(tbuf));
	printf(KEY "%s\n", "atime:", tbuf);
	ctl_time_str(in->mtime_ns, tbuf, sizeof(tbuf));
	printf(KEY "%s\n", "mtime:", tbuf);
	ctl_time_str(in->ctime_ns, tbuf, sizeof(tbuf));
	printf(KEY "%s\n", "ctime:", tbuf);
}

int ctl_stat(int argc, char **argv)
{
	struct idx_inode in;
	struct store *st;
	struct pver *pv = NULL;
	int flags[1] = { 0 }, n, rc = ctl_getopt("stat", argc, argv, "v", flags, help, &n);

	if (rc >= 0)
		return rc;
	if (n != 3)
		return ctl_usage("stat", n < 2 ? "missing STORE" : n < 3 ? "missing PATH" :
				 "too many arguments");
	if (ctl_open(argv[1], &st))
		return CTL_FAIL;
	rc = ctl_resolve(st, argv[2], 0, &in);
	if (rc) {
		ctl_err(argv[2], "%s", ctl_strerror(rc));
		store_close(st);
		return CTL_FAIL;
	}
	if (S_ISREG(in.mode)) {
		/* figures and fragments of one pinned version */
		rc = store_pver_get(st, in.ino, &pv);
		if (!rc)
			in = *pver_inode(pv);
	}
	print_attrs(st, &in, argv[2]);
	if (rc)
		ctl_err(argv[2], "fragment list: %s", strerror(-rc));
	else if (pv && flags[0])
		print_frags(pv);
	pver_put(pv);
	store_close(st);
	if (fflush(stdout) != 0 && !rc) {
		ctl_err("stdout", "%s", strerror(errno));
		rc = -EIO;
	}
	return rc ? CTL_FAIL : CTL_OK;
}
