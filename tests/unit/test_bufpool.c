/* test_bufpool — recycled big buffers: a freed buffer of a class is handed
 * out again for the same class (and the next one up), small buffers and
 * oversized ones are not kept, the bytes kept never exceed BP_KEEP,
 * bp_trim empties the pool, a fresh big buffer comes populated, and the "alloc" fault point fails bp_get. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <unistd.h>

#include "cache/bufpool.h"
#include "cache/fault.h"
#include "tests/unit/tap.h"

int main(void)
{
	size_t cap, cap2;
	void *a = bp_get(1000000, &cap), *b;
	int ok;

	CHECK(a != NULL && cap >= 1000000 && cap % BP_CLASS == 0 && cap - 1000000 < BP_CLASS,
	      "1,000,000 bytes rounded up to a 64 KiB class (%zu)", cap);
	memset(a, 0x5a, cap);
	bp_put(a, cap);
	CHECK_EQ(bp_kept(), cap, "the freed buffer is kept");
	b = bp_get(1000000 - 10, &cap2);
	CHECK(b == a && cap2 == cap, "the same class gets the kept buffer back");
	CHECK_EQ(bp_kept(), 0, "nothing kept while it is out");
	bp_put(b, cap2);
	b = bp_get(cap - BP_CLASS, &cap2);
	CHECK(b == a && cap2 == cap, "the class below takes a kept buffer one class up");
	bp_put(b, cap2);
	b = bp_get(cap - 3 * BP_CLASS, &cap2);
	CHECK(b != a && cap2 == cap - 3 * BP_CLASS, "three classes below: a new buffer (no waste)");
	bp_put(b, cap2);
	bp_trim();
	CHECK_EQ(bp_kept(), 0, "bp_trim empties the pool");

	b = bp_get(100, &cap2);
	CHECK(b != NULL && cap2 == 100, "a small buffer is not rounded");
	bp_put(b, cap2);
	CHECK_EQ(bp_kept(), 0, "... and not kept");
	b = bp_get((size_t)64 << 20, &cap2);
	CHECK(b != NULL, "a 64 MiB buffer");
	bp_put(b, cap2);
	CHECK_EQ(bp_kept(), 0, "buffers beyond the largest class are not kept");

	void *many[100];
	size_t caps[100];
	ok = 1;
	for (int i = 0; i < 100; i++)
		ok &= (many[i] = bp_get((size_t)1 << 20, &caps[i])) != NULL;
	for (int i = 0; i < 100; i++)
		bp_put(many[i], caps[i]);
	CHECK(ok && bp_kept() <= BP_KEEP && bp_kept() >= BP_KEEP - ((size_t)1 << 20),
	      "100 MiB freed: %zu kept, at most BP_KEEP", bp_kept());
	bp_trim();
	bp_put(NULL, 0);
	CHECK_EQ(bp_kept(), 0, "bp_put(NULL) keeps nothing");

	/* bufpool.c (3): a fresh big buffer comes with its pages populated
	 * (mincore: every whole page of it resident before anyone wrote it). */
	{
		long pg = sysconf(_SC_PAGESIZE);
		size_t before = bp_populated(), cap3, npages, resident = 0;
		char *f = bp_get((size_t)2 << 20, &cap3);
		uintptr_t a = ((uintptr_t)f + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
		uintptr_t e = ((uintptr_t)f + cap3) & ~((uintptr_t)pg - 1);
		unsigned char vec[1024];

		npages = (e - a) / (uintptr_t)pg;
		CHECK(f != NULL && npages > 500 && npages <= sizeof(vec), "a fresh 2 MiB buffer");
		CHECK_EQ(mincore((void *)a, e - a, vec), 0, "mincore of it");
		for (size_t i = 0; i < npages && i < sizeof(vec); i++)
			resident += vec[i] & 1;
		CHECK_EQ(resident, npages, "every whole page of it is populated before use");
		CHECK_EQ(bp_populated(), before + 1, "counted as populated once");
		bp_put(f, cap3);
		bp_trim();
	}
#ifdef PFS_FAULT_INJECTION
	fault_arm("alloc", 1, ENOMEM);
	CHECK(bp_get(1 << 20, &cap2) == NULL, "fault point alloc: bp_get fails");
	fault_reset();
#endif
	return tap_done();
}
