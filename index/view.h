/* view — view names (`NAME@rows=A:B`, `NAME@part=K/N`, `NAME@meta`):
 * parsing, and resolving a view of a pinned version to byte ranges.
 * Parsing is pure; any thread may call. */
#ifndef PFS_VIEW_H
#define PFS_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pver;

/* VIEW_PARTDIR is `NAME@part=K`: the path `NAME@part=K/N` crosses a '/', so
 * the kernel looks up `NAME@part=K` first (a hidden directory) and then
 * `N` inside it (VIEW_PART). */
enum view_kind { VIEW_NONE = 0, VIEW_ROWS, VIEW_PART, VIEW_META, VIEW_PARTDIR };

struct view_spec {
	enum view_kind kind;
	int has_start, has_stop;   /* rows: bounds given */
	int64_t start, stop;       /* rows: Python slice bounds (may be < 0) */
	uint64_t k, n;             /* part K of N */
};

/* Split NAME at its last '@'.
 * @param[out] base_len length of the object name before the suffix
 * @return 0 NAME has no view suffix (spec->kind = VIEW_NONE);
 *         1 well-formed view;
 *         -ENOENT the suffix is reserved (rows=, part=, meta) but malformed,
 *         or the base is empty.
 * `part=K` alone parses as VIEW_PARTDIR (k set, n = 0). */
int view_parse(const char *name, size_t *base_len, struct view_spec *spec);

/* Complete a VIEW_PARTDIR spec with the entry name N (decimal, K < N).
 * @return 0 or -ENOENT. */
int view_part_child(const struct view_spec *dir, const char *name, struct view_spec *out);

/* Parse the first LEN bytes of S as a `.by-id/ID` object id (decimal, at
 * most 19 digits). @return 0, or -ENOENT when it is not one. */
int view_parse_id(const char *s, size_t len, uint64_t *id);

/* 1 when NAME is reserved for views (creating it is EINVAL), else 0. */
int view_name_reserved(const char *name);

/* Resolve SPEC over DATA_ROWS data rows to the half-open data-row range
 * [*a, *b) (Python slice clipping; part K/N is [K*R/N, (K+1)*R/N)). */
void view_row_range(const struct view_spec *spec, uint64_t data_rows, uint64_t *a, uint64_t *b);

/* The bytes of a row view of a version: header bytes then the rows. */
struct view_map {
	uint64_t hdr_len;          /* bytes [0, hdr_len) of the object */
	uint64_t rows_off, rows_len; /* then bytes [rows_off, rows_off + rows_len) */
	uint64_t row_a, row_b;     /* data rows covered */
};

/* Resolve a rows/part SPEC of PV. @return 0, -EIO, -EINVAL (not a rows or
 * part view). */
int view_resolve(struct pver *pv, const struct view_spec *spec, struct view_map *out);
/* Start loading (in the background, read-ahead budget permitting; never
 * blocks, decodes nothing) the fragments a rows/part SPEC of PV covers,
 * at most MAX bytes of them from the first, including the two that
 * view_resolve scans for the exact row offsets: called just before
 * view_resolve, all of a view's fragments go out together instead of
 * the scanned ones first and the rest after the lookup. */
void view_prefetch(struct pver *pv, const struct view_spec *spec, uint64_t max);
static inline uint64_t view_size(const struct view_map *m) { return m->hdr_len + m->rows_len; }
/* Read LEN bytes at OFF of the view. @return bytes read or -errno. */
ssize_t view_read(struct pver *pv, const struct view_map *m, void *buf, size_t len, uint64_t off);
/* The same into pinned buffers appended to V (struct rvec, store.h).
 * @return bytes appended or -errno (V then as it was). */
struct rvec;
ssize_t view_read_vec(struct pver *pv, const struct view_map *m, uint64_t off, size_t len,
		      struct rvec *v);
/* Where in the object the view's byte OFF lies (for read-ahead). */
uint64_t view_object_offset(const struct view_map *m, uint64_t off);

/* Render the @meta JSON of PV into a malloc'd string. @return 0 or
 * -ENOMEM. */
int view_meta_json(struct pver *pv, char **out, size_t *len);

#endif
