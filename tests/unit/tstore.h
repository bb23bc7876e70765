/* tstore — helpers shared by the unit tests that drive a store through
 * index/store.h. Header-only; include after index/store.h. */
#ifndef PFS_TSTORE_H
#define PFS_TSTORE_H

#include <stddef.h>
#include <stdint.h>

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

/* store_sync, then wait until the reaper deleted every image the flush
 * let go (tests that count image files). @return store_sync's result. */
static inline int tst_sync(struct store *st)
{
	int rc = store_sync(st);

	store_reap_wait(st);
	return rc;
}

#endif
