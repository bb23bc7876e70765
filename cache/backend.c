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
