/* mkbigstore — make a large, valid store fast, for mount-time figures
 * (docs/benchmarks.md "Mount time"): N objects of one fragment each (so N
 * inodes and N fragment images) in directories of 1000.
 *
 *   mkbigstore STORE N
 *
 * One object is written through the store API (a real commit); the other
 * N-1 are its clones, put straight into the index (inode, dirent, fragment
 * record, reference count) in txns of 10,000, each with an image of its own
 * (the template's bytes encoded again under the new id). The result is what
 * N commits would have made: `payloadctl fsck` finds it clean. A bench
 * tool, not a test: it links the core and knows its record layout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/backend.h"
#include "cache/codec.h"
#include "index/idx.h"
#include "index/store.h"

#define PER_DIR 1000
#define PER_TXN 10000
#define OBJ_BYTES 6000

static int die(const char *what, int rc)
{
	fprintf(stderr, "mkbigstore: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	return 1;
}

/* The template: /t.csv, one fragment. */
static int make_template(const char *dir, struct idx_inode *in, struct frag_desc *fd, char *raw)
{
	struct store_opts o = { .create = 1, .sweep = 1, .sync = 1 };
	struct store *st;
	struct pver *pv;
	struct wsess *ws;
	int rc = store_open(dir, &o, &st);

	if (rc)
		return rc;
	for (int i = 0, at = 0; at < OBJ_BYTES; i++)
		at += snprintf(raw + at, (size_t)(OBJ_BYTES - at + 1), "%06d,payload,row\n", i);
	rc = store_mknod(st, IDX_ROOT_INO, "t.csv", S_IFREG | 0644, 0, 0, 0, in);
	if (!rc)
		rc = store_pver_get(st, in->ino, &pv);
	if (!rc) {
		rc = store_wsess_begin(st, pv, NULL, 1, &ws);
		pver_put(pv);
	}
	if (!rc) {
		rc = wsess_write(ws, raw, OBJ_BYTES, 0);
		if (!rc)
			rc = wsess_commit(ws);
		wsess_free(ws);
	}
	if (!rc)
		rc = store_pver_get(st, in->ino, &pv);
	if (!rc) {
		if (pver_nfrags(pv) != 1)
			rc = -EINVAL;
		else
			*fd = *pver_frag(pv, 0);
		pver_put(pv);
	}
	if (!rc)
		rc = store_getattr(st, in->ino, in);
	store_close(st);
	return rc;
}

int main(int argc, char **argv)
{
	char path[4096], *raw = malloc(OBJ_BYTES + 64), *img;
	struct idx_inode tin, din;
	struct frag_desc tfd;
	struct frag_backend *be;
	struct idx *x;
	struct idx_txn *t = NULL;
	uint64_t n, ino, frag, dir_ino = 0;
	size_t cap, len;
	int rc;

	if (argc != 3 || (n = strtoull(argv[2], NULL, 10)) < 1) {
		fprintf(stderr, "usage: mkbigstore STORE N\n");
		return 2;
	}
	if (mkdir(argv[1], 0700) < 0 && errno != EEXIST)
		return die(argv[1], errno);
	if ((rc = make_template(argv[1], &tin, &tfd, raw)))
		return die("template object", rc);
	cap = frag_encode_bound(OBJ_BYTES);
	img = malloc(cap);
	snprintf(path, sizeof(path), "%s/index", argv[1]);
	if ((rc = idx_open(path, 0, 0, &x)))
		return die("index", rc);
	snprintf(path, sizeof(path), "%s/fragments", argv[1]);
	if ((rc = backend_local_open(path, &be)))
		return die("fragments", rc);
	if ((rc = idx_begin(x, 0, &t)) || (rc = idx_meta_get_u64(t, "next_ino", &ino)) ||
	    (rc = idx_meta_get_u64(t, "next_frag", &frag)))
		return die("meta", rc);
	for (uint64_t i = 1; i < n && !rc; i++) {
		struct idx_inode in = tin;
		struct frag_desc d = tfd;
		struct frag_info fi;
		uint32_t now;
		char name[32];

		if ((i - 1) % PER_DIR == 0) {       /* a new directory d/NNNN */
			memset(&din, 0, sizeof(din));
			din.ino = dir_ino = ino++;
			din.mode = S_IFDIR | 0755;
			din.nlink = 2;
			din.parent = IDX_ROOT_INO;
			din.atime_ns = din.mtime_ns = din.ctime_ns = tin.ctime_ns;
			snprintf(name, sizeof(name), "d%06llu", (unsigned long long)((i - 1) / PER_DIR));
			rc = idx_inode_put(t, &din);
			if (!rc)
				rc = idx_dirent_put(t, IDX_ROOT_INO, name, din.ino, S_IFDIR);
			if (rc)
				break;
		}
		in.ino = ino++;
		d.id = frag++;
		rc = frag_encode(d.id, raw, OBJ_BYTES, tfd.rows, img, cap, &len, &fi);
		if (!rc)
			rc = frag_put(be, d.id, img, len);
		snprintf(name, sizeof(name), "o%08llu.csv", (unsigned long long)i);
		if (!rc)
			rc = idx_inode_put(t, &in);
		if (!rc)
			rc = idx_dirent_put(t, dir_ino, name, in.ino, S_IFREG);
		if (!rc)
			rc = idx_frag_put(t, in.ino, &d);
		if (!rc)
			rc = idx_ref_add(t, d.id, 1, &now);
		if (!rc && i % PER_TXN == 0) {
			rc = idx_meta_put_u64(t, "next_ino", ino);
			if (!rc)
				rc = idx_meta_put_u64(t, "next_frag", frag);
			if (!rc)
				rc = frag_sync(be, NULL, 0);
			if (!rc)
				rc = idx_commit(t);
			t = NULL;
			if (!rc)
				rc = idx_begin(x, 0, &t);
			fprintf(stderr, "\rmkbigstore: %llu objects", (unsigned long long)i);
		}
	}
	if (!rc)
		rc = idx_meta_put_u64(t, "next_ino", ino);
	if (!rc)
		rc = idx_meta_put_u64(t, "next_frag", frag);
	if (!rc)
		rc = idx_inode_get(t, IDX_ROOT_INO, &din);
	if (!rc) {               /* the root's nlink counts the new directories */
		din.nlink += (uint32_t)((n - 1 + PER_DIR - 1) / PER_DIR);
		rc = idx_inode_put(t, &din);
	}
	if (!rc)
		rc = frag_sync(be, NULL, 0);
	if (!rc)
		rc = idx_commit(t);
	else
		idx_abort(t);
	if (!rc)
		rc = idx_sync(x);
	idx_close(x);
	frag_backend_destroy(be);
	free(raw);
	free(img);
	if (rc)
		return die("writing", rc);
	fprintf(stderr, "\rmkbigstore: %llu objects, %llu images in %s\n", (unsigned long long)n,
		(unsigned long long)n, argv[1]);
	return 0;
}
