/* snapshots — see snapshots.h. */
#include "fs/snapshots.h"
#include "fs/fnode.h"
#include "fs/ops.h"
#include "index/store.h"

#include <errno.h>
#include <string.h>

struct count_arg {
	uint64_t n;
};

static int count_one(void *arg, const struct idx_snap *s)
{
	(void)s;
	((struct count_arg *)arg)->n++;
	return 0;
}

int snaps_stat(struct pfs *p, struct stat *s)
{
	struct idx_inode root;
	struct count_arg c = { 0 };
	int rc = store_getattr(p->st, IDX_ROOT_INO, &root);

	if (!rc)
		rc = store_snap_list(p->st, count_one, &c);
	if (rc)
		return rc;
	memset(s, 0, sizeof(*s));
	s->st_ino = FN_SNAPS_INO;
	s->st_mode = S_IFDIR | 0755;
	s->st_nlink = (nlink_t)(2 + c.n);
	s->st_uid = root.uid;
	s->st_gid = root.gid;
	s->st_size = 4096;
	s->st_blocks = 8;
	s->st_atim.tv_sec = s->st_mtim.tv_sec = s->st_ctim.tv_sec = root.ctime_ns / 1000000000;
	return 0;
}

int snaps_lookup(struct pfs *p, const char *name, struct idx_inode *out)
{
	struct idx_snap s;
	int rc = store_snap_lookup(p->st, name, &s);

	return rc ? rc : store_getattr(p->st, s.first, out);
}

int snaps_create(struct pfs *p, const char *name, struct idx_inode *out)
{
	struct idx_snap s;
	int rc;

	if (p->rdonly)
		return -EROFS;
	rc = store_snap_create(p->st, name, &s);
	return rc ? rc : store_getattr(p->st, s.first, out);
}

int snaps_drop(struct pfs *p, const char *name)
{
	return p->rdonly ? -EROFS : store_snap_drop(p->st, name);
}

struct list_arg {
	int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type);
	void *arg;
};

static int list_one(void *arg, const struct idx_snap *s)
{
	struct list_arg *l = arg;

	return l->cb(l->arg, s->name, s->first, S_IFDIR);
}

int snaps_list(struct pfs *p, int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type),
	       void *arg)
{
	struct list_arg l = { cb, arg };

	return store_snap_list(p->st, list_one, &l);
}
