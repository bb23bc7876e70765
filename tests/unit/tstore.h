/* tstore — helpers shared by the unit tests that drive a store through
 * index/store.h. Header-only; include after index/store.h. */
#ifndef PFS_TSTORE_H
#define PFS_TSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/stat.h>

#include "index/store.h"

/* Replace the content of object INO of ST with DATA/LEN in one commit.
 * @return 0, or the -errno of the first step that failed. */
static inline int tst_put_data(struct store *st, uint64_t ino, const void *data, size_t len)
{
	struct pver *pv;
	struct wsess *ws;
	int rc = store_pver_get(st, ino, &pv);

	if (rc)
		return rc;
	rc = store_wsess_begin(st, pv, NULL, 1, &ws);
	pver_put(pv);
	if (!rc)
		rc = wsess_write(ws, data, len, 0);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}

/* Truncate object INO of ST to TRUNC when TRUNC >= 0, then write
 * DATA/LEN at OFF; one commit. @return 0 or the first step's -errno. */
static inline int tst_write(struct store *st, uint64_t ino, const void *data, size_t len, uint64_t off,
			    int64_t trunc)
{
	struct pver *pv;
	struct wsess *ws;
	int rc = store_pver_get(st, ino, &pv);

	if (rc)
		return rc;
	rc = store_wsess_begin(st, pv, NULL, 0, &ws);
	pver_put(pv);
	if (rc)
		return rc;
	if (trunc >= 0)
		rc = wsess_truncate(ws, (uint64_t)trunc);
	if (!rc && len)
		rc = wsess_write(ws, data, len, off);
	if (!rc)
		rc = wsess_commit(ws);
	wsess_free(ws);
	return rc;
}

/* The inode of the regular file NAME in the root of ST, made (0644) when
 * missing, in *INO. @return 0 or -errno. */
static inline int tst_obj(struct store *st, const char *name, uint64_t *ino)
{
	struct idx_inode in;
	int rc = store_lookup(st, IDX_ROOT_INO, name, &in);

	if (rc == -ENOENT)
		rc = store_mknod(st, IDX_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &in);
	*ino = rc ? 0 : in.ino;
	return rc;
}

/* store_sync, then wait until the reaper deleted every image the flush
 * let go (tests that count image files). @return store_sync's result. */
static inline int tst_sync(struct store *st)
{
	int rc = store_sync(st);

	store_reap_wait(st);
	return rc;
}

#endif
