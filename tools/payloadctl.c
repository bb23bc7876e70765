/* payloadctl — offline tools over a store (placeholder main; commands are
 * added in tools/). */
#include "index/store.h"
#include <stdio.h>
int main(void)
{
	fputs("payloadctl: not built yet\n", stderr);
	return 1;
}
