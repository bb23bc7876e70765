/* ctl_cat — `payloadctl cat STORE PATH[@VIEW]`: an object's bytes, or a
 * view's, on stdout, exactly what the mount serves for the same name. The
 * data is streamed CTL_CHUNK bytes at a time from one pinned version:
 * memory use does not grow with the object. */
#include "tools/ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help[] =
	"usage: payloadctl cat STORE PATH[@VIEW]\n"
	"\n"
	"Write the object PATH of STORE to stdout, or one of its views:\n"
	"  PATH@rows=A:B   header rows, then data rows A..B-1 (Python slice: either\n"
	"                  bound may be left out, negative counts from the end)\n"
	"  PATH@part=K/N   header rows, then the K-th of N row-balanced partitions\n"
	"  PATH@meta       the object's figures as JSON\n";

/* Read the bytes [0, SIZE) of the object (VM NULL) or of the view VM to
 * stdout. @return 0, -errno of the store, or 1 after a write error
 * (reported). */
static int stream(struct pver *pv, const struct view_map *vm, uint64_t size)
{
	char *buf = malloc(CTL_CHUNK);
	uint64_t off = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		size_t want = size - off < CTL_CHUNK ? (size_t)(size - off) : CTL_CHUNK;
		ssize_t n = vm ? view_read(pv, vm, buf, want, off) : pver_read(pv, buf, want, off);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;   /* 0: shorter than its size */
			break;
		}
		rc = ctl_write_all(STDOUT_FILENO, buf, (size_t)n);
		if (rc) {
			ctl_err("stdout", "%s", strerror(-rc));
			rc = 1;
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	return rc;
}

static int cat_meta(struct pver *pv)
{
	char *json;
	size_t len;
	int rc = view_meta_json(pv, &json, &len);

	if (rc)
		return rc;
	rc = ctl_write_all(STDOUT_FILENO, json, len);
	free(json);
	if (rc) {
		ctl_err("stdout", "%s", strerror(-rc));
		return 1;
	}
	return 0;
}

/* Write object INO (or its view SPEC) to stdout. @return as stream(). */
static int cat_object(struct store *st, uint64_t ino, const struct view_spec *spec)
{
	struct view_map vm;
	struct pver *pv;
	const struct idx_inode *in;
	int rc = store_pver_get(st, ino, &pv);

	if (rc)
		return rc;
	in = pver_inode(pv);
	if ((in->flags & INODE_F_MEMORY) && in->size && !(in->flags & INODE_F_INLINE)) {
		pver_put(pv);
		return -EREMOTE;
	}
	switch (spec->kind) {
	case VIEW_META:
		rc = cat_meta(pv);
		break;
	case VIEW_ROWS:
	case VIEW_PART:
		rc = view_resolve(pv, spec, &vm);
		if (!rc)
			rc = stream(pv, &vm, view_size(&vm));
		break;
	default:
		rc = stream(pv, NULL, in->size);
		break;
	}
	pver_put(pv);
	return rc;
}

static const char *cat_strerror(int rc)
{
	switch (rc) {
	case -EIO: return "Input/output error (a damaged or missing fragment; see payloadctl fsck)";
	case -EREMOTE: return "storage=memory object: its data lives only in the mounted daemon's memory";
	default: return ctl_strerror(rc);
	}
}

int ctl_cat(int argc, char **argv)
{
	struct view_spec spec;
	struct idx_inode in;
	struct store *st;
	const char *path;
	char *base;
	size_t blen;
	int flags[1], n, isview, rc = ctl_getopt("cat", argc, argv, "", flags, help, &n);

	if (rc >= 0)
		return rc;
	if (n != 3)
		return ctl_usage("cat", n < 2 ? "missing STORE" : n < 3 ? "missing PATH" :
				 "too many arguments");
	path = argv[2];
	/* The whole path, not its last component: `@part=K/N` holds a '/'. */
	isview = view_parse(path, &blen, &spec);
	if (isview < 0) {
		ctl_err(path, "bad view (NAME@rows=A:B, NAME@part=K/N or NAME@meta)");
		return CTL_FAIL;
	}
	if (ctl_open(argv[1], &st))
		return CTL_FAIL;
	base = strndup(path, blen);
	rc = base ? ctl_resolve(st, base, 1, &in) : -ENOMEM;
	if (!rc && isview && !S_ISREG(in.mode))
		rc = -ENOENT;   /* as on the mount: only objects have views */
	else if (!rc && S_ISDIR(in.mode))
		rc = -EISDIR;
	else if (!rc && !S_ISREG(in.mode))
		rc = -EINVAL;
	if (!rc && spec.kind == VIEW_PARTDIR)
		rc = -EISDIR;   /* NAME@part=K is the directory of the partitions */
	if (!rc)
		rc = cat_object(st, in.ino, &spec);
	if (rc < 0)
		ctl_err(path, "%s", rc == -EINVAL ? "not a regular file" : cat_strerror(rc));
	free(base);
	store_close(st);
	return rc ? CTL_FAIL : CTL_OK;
}
