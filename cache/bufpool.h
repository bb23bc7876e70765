/* bufpool — recycled big buffers (fragment bytes and images).
 *
 * Decoded fragments (~1 MiB) and their images are allocated and freed at
 * the rate the data streams through. Fresh memory costs a page fault and
 * a zeroed page per 4 KiB — a third of the CPU of a cold sequential read —
 * so fresh buffers are populated in one call (bufpool.c (3)) and freed buffers of at least BP_MIN bytes are kept (up to BP_KEEP bytes
 * in all) and handed out again. Buffers are rounded up to BP_CLASS bytes.
 * Thread-safe; no function fails visibly except bp_get (NULL).
 */
#ifndef PFS_BUFPOOL_H
#define PFS_BUFPOOL_H

#include <stddef.h>

#define BP_MIN   ((size_t)64 << 10)
#define BP_CLASS ((size_t)64 << 10)
#define BP_KEEP  ((size_t)48 << 20)

/* A buffer of at least N bytes; *CAP gets its real size (pass it to
 * bp_put). @return NULL on allocation failure (fault point "alloc"). */
void *bp_get(size_t n, size_t *cap);
/* Give P (of capacity CAP, from bp_get) back. NULL-safe. */
void bp_put(void *p, size_t cap);
/* Bytes kept for reuse right now. */
size_t bp_kept(void);
/* How many fresh buffers had their pages populated at bp_get (invariant
 * (3) of bufpool.c; 0 on a kernel without MADV_POPULATE_WRITE). */
size_t bp_populated(void);
/* Free every kept buffer (tests, shutdown). */
void bp_trim(void);

#endif
