/* rowidx — a fragment's sparse row index (format 4, docs/format.md
 * "Format 4: row indexes"): where some of the rows that start in a
 * fragment start, so that finding the byte offset of a row decodes
 * nothing when the row is indexed and scans at most ROWIDX_STRIDE - 1
 * rows of the fragment otherwise. Pure functions (any thread), and the
 * store's stash of indexes made by the encoders until their commit puts
 * them (index/rowidx.c invariants).
 *
 * Record (the rowidx db's value, little-endian):
 *   0  stride   u16   ROWIDX_STRIDE (256)
 *   2  nhead    u16   <= ROWIDX_HEAD
 *   4  n        u32   entries for local rows 0, stride, 2 stride, ...
 *   8  head     u32 x nhead: where local rows 1..nhead start
 *   .. ent      u32 x n: where local row k * stride starts
 *   then, optionally (fragments without FRAG_F_CONT):
 *      plen     u32   <= ROWIDX_PREFIX_MAX, head[j - 1] for some j
 *      prefix   plen bytes: the fragment's first plen bytes (its first j
 *               rows: an object's header is served from here, so a view
 *               of rows far from it never decodes the first fragment)
 * A local row is a row that starts in the fragment, numbered from 0 (row
 * first_row of the fragment's record); offsets are in the fragment's raw
 * bytes. Lines format only: fixed:N rows are found by arithmetic.
 */
#ifndef PFS_ROWIDX_H
#define PFS_ROWIDX_H

#include <stddef.h>
#include <stdint.h>

#define ROWIDX_STRIDE 256
#define ROWIDX_HEAD   8
#define ROWIDX_HDR    8
#define ROWIDX_PREFIX_MAX 1024

/* Build the index of fragment RAW/LEN (lines format); CONT: its first
 * byte continues a row of the fragment before (FRAG_F_CONT), so its
 * local row 0 starts after its first newline. *OUT gets a malloc'd
 * record of *OUT_LEN bytes, or NULL and 0 when no row starts in it;
 * *ROWS (may be NULL) the rows that start in it (what frag_rows says: the
 * same pass, so the encoder walks the bytes once), also on -ENOMEM.
 * @return 0 or -ENOMEM. */
int rowidx_build(const char *raw, size_t len, int cont, unsigned char **out, size_t *out_len,
		 uint64_t *rows);

/* Where local row ROW of a fragment of FRAG_LEN bytes starts: at *OFF,
 * after skipping *SKIP more newlines from there (0: *OFF is exact).
 * @return 0; -ERANGE when the index does not reach ROW (ROW is past the
 * fragment's rows); -EUCLEAN when REC/LEN is not a well-formed record
 * for that fragment (caller then scans the whole fragment). */
int rowidx_find(const void *rec, size_t len, uint32_t frag_len, uint64_t row,
		uint32_t *off, uint32_t *skip);

/* The prefix bytes of REC/LEN (a record rowidx_find accepts): *P and
 * *PLEN (0 when it has none). @return 0 or -EUCLEAN. */
int rowidx_prefix(const void *rec, size_t len, const unsigned char **p, uint32_t *plen);

/* The stash (rowidx.c (3)): a bounded table, fragment id -> record. */
struct rowidx_stash;
struct rowidx_stash *rowidx_stash_new(void);
void rowidx_stash_free(struct rowidx_stash *s);
/* Keep REC (malloc'd, taken over) for fragment ID; NULL-safe on S. */
void rowidx_stash_put(struct rowidx_stash *s, uint64_t id, unsigned char *rec, size_t len);
/* Take ID's record out (caller frees it). @return 1 found, 0 not. */
int rowidx_stash_take(struct rowidx_stash *s, uint64_t id, unsigned char **rec, size_t *len);

#endif
