/* backend — what every backend shares (backend.h). */
#include "cache/backend.h"

#include <inttypes.h>
#include <stdio.h>

void frag_where(struct frag_backend *b, uint64_t id, char *buf, size_t cap)
{
	if (!cap)
		return;
	if (b && b->ops->where)
		b->ops->where(b, id, buf, cap);
	else
		snprintf(buf, cap, "image %016" PRIx64, id);
}

int frag_get_many_cb(struct frag_backend *b, struct frag_get *r, size_t n,
		     void (*done)(void *arg, size_t i), void *arg)
{
	int rc;

	if (b->ops->get_many_cb)
		return b->ops->get_many_cb(b, r, n, done, arg);
	rc = b->ops->get_many(b, r, n);
	for (size_t i = 0; !rc && i < n; i++)
		done(arg, i);
	return rc;
}
