/* ctl_path — joining paths of the local file system or of a store (see
 * ctl.h), shared by import and export. */
#include "tools/ctl.h"

#include <stdlib.h>
#include <string.h>

char *ctl_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);

	if (!p)
		return NULL;
	memcpy(p, a, la);
	if (la && a[la - 1] != '/')
		p[la++] = '/';
	memcpy(p + la, b, lb + 1);
	return p;
}
