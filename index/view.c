/* view — see view.h.
 *
 * Grammar of a view suffix (after the LAST '@' of a name):
 *   rows=[INT]:[INT]    INT = [-]DIGITS, fits in int64
 *   part=UINT/UINT      0 <= K < N, N >= 1
 *   meta
 * Any suffix starting with "rows=" or "part=", or equal to "meta", is
 * reserved: such a name is a view or nothing (ENOENT), never a real entry.
 */
#include "index/view.h"
#include "index/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *s, const char *end, int64_t *out)
{
	int neg = 0;
	uint64_t v = 0;

	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > (uint64_t)INT64_MAX + (uint64_t)neg)   /* -2^63 fits */
			return -1;
	}
	*out = !neg ? (int64_t)v : v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
	return 0;
}

static int parse_rows(const char *s, struct view_spec *sp)
{
	const char *colon = strchr(s, ':'), *end = s + strlen(s);

	if (!colon || strchr(colon + 1, ':'))
		return -ENOENT;
	sp->kind = VIEW_ROWS;
	sp->has_start = colon > s;
	sp->has_stop = end > colon + 1;
	if (sp->has_start && parse_int(s, colon, &sp->start) < 0)
		return -ENOENT;
	if (sp->has_stop && parse_int(colon + 1, end, &sp->stop) < 0)
		return -ENOENT;
	return 1;
}

static int parse_part(const char *s, struct view_spec *sp)
{
	const char *slash = strchr(s, '/'), *end = s + strlen(s);
	int64_t k, n;

	if (!slash) {
		if (*s == '-' || parse_int(s, end, &k) < 0)
			return -ENOENT;
		sp->kind = VIEW_PARTDIR;
		sp->k = (uint64_t)k;
		return 1;
	}
	if (*s == '-' || slash[1] == '-')
		return -ENOENT;
	if (parse_int(s, slash, &k) < 0 || parse_int(slash + 1, end, &n) < 0)
		return -ENOENT;
	if (n < 1 || k < 0 || k >= n)
		return -ENOENT;
	sp->kind = VIEW_PART;
	sp->k = (uint64_t)k;
	sp->n = (uint64_t)n;
	return 1;
}

int view_part_child(const struct view_spec *dir, const char *name, struct view_spec *out)
{
	int64_t n;

	if (dir->kind != VIEW_PARTDIR || *name == '-' || parse_int(name, name + strlen(name), &n) < 0 ||
	    n < 1 || (uint64_t)n <= dir->k)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->kind = VIEW_PART;
	out->k = dir->k;
	out->n = (uint64_t)n;
	return 0;
}

int view_parse_id(const char *s, size_t len, uint64_t *id)
{
	uint64_t v = 0;

	if (!len || len > 19)
		return -ENOENT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -ENOENT;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*id = v;
	return 0;
}

static const char *suffix_of(const char *name)
{
	const char *at = strrchr(name, '@');

	if (!at)
		return NULL;
	at++;
	if (strncmp(at, "rows=", 5) == 0 || strncmp(at, "part=", 5) == 0 || strcmp(at, "meta") == 0)
		return at;
	return NULL;
}

int view_name_reserved(const char *name)
{
	return suffix_of(name) != NULL;
}

int view_parse(const char *name, size_t *base_len, struct view_spec *spec)
{
	const char *sfx = suffix_of(name);

	memset(spec, 0, sizeof(*spec));
	*base_len = strlen(name);
	if (!sfx)
		return 0;
	*base_len = (size_t)(sfx - 1 - name);
	if (*base_len == 0)
		return -ENOENT;
	if (strncmp(sfx, "rows=", 5) == 0)
		return parse_rows(sfx + 5, spec);
	if (strncmp(sfx, "part=", 5) == 0)
		return parse_part(sfx + 5, spec);
	spec->kind = VIEW_META;
	return 1;
}

static uint64_t clip(int64_t v, uint64_t r)
{
	if (v < 0) {
		uint64_t m = (uint64_t)(-(v + 1)) + 1;
		return m >= r ? 0 : r - m;
	}
	return (uint64_t)v > r ? r : (uint64_t)v;
}

void view_row_range(const struct view_spec *sp, uint64_t r, uint64_t *a, uint64_t *b)
{
	if (sp->kind == VIEW_PART) {
		*a = (uint64_t)((unsigned __int128)sp->k * r / sp->n);
		*b = (uint64_t)((unsigned __int128)(sp->k + 1) * r / sp->n);
		return;
	}
	*a = sp->has_start ? clip(sp->start, r) : 0;
	*b = sp->has_stop ? clip(sp->stop, r) : r;
	if (*b < *a)
		*b = *a;
}

void view_prefetch(struct pver *pv, const struct view_spec *sp, uint64_t max)
{
	const struct idx_inode *in = pver_inode(pv);
	uint64_t hdr = inode_is_fixed(in) ? 0 : in->header, a, b;

	if (sp->kind != VIEW_ROWS && sp->kind != VIEW_PART)
		return;
	if (hdr > in->rows)
		hdr = in->rows;
	view_row_range(sp, in->rows - hdr, &a, &b);
	if (a < b)
		pver_prefetch_rows(pv, hdr + a, hdr + b, max);
}

int view_resolve(struct pver *pv, const struct view_spec *sp, struct view_map *m)
{
	const struct idx_inode *in = pver_inode(pv);
	uint64_t hdr = inode_is_fixed(in) ? 0 : in->header;
	uint64_t data_rows, a_off, b_off;
	int rc;

	if (sp->kind != VIEW_ROWS && sp->kind != VIEW_PART)
		return -EINVAL;
	if (hdr > in->rows)
		hdr = in->rows;
	data_rows = in->rows - hdr;
	memset(m, 0, sizeof(*m));
	__atomic_add_fetch(&pv->st->stats.view_resolves, 1, __ATOMIC_RELAXED);
	view_row_range(sp, data_rows, &m->row_a, &m->row_b);
	{
		uint64_t rows[3] = { hdr, hdr + m->row_a, hdr + m->row_b }, offs[3];
		rc = pver_row_offsets(pv, rows, 3, offs);   /* one batch for the 3 */
		if (rc)
			return rc;
		m->hdr_len = offs[0];
		a_off = offs[1];
		b_off = offs[2];
	}
	(void)pver_head_load(pv, m->hdr_len);   /* the header without decoding (pver.c (6)) */
	m->rows_off = a_off;
	m->rows_len = b_off - a_off;
	return 0;
}

ssize_t view_read(struct pver *pv, const struct view_map *m, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	uint64_t size = view_size(m);

	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	while (done < len) {
		uint64_t o = off + done, src;
		size_t want;
		ssize_t n;

		if (o < m->hdr_len) {
			src = o;
			want = (size_t)(m->hdr_len - o);
		} else {
			src = m->rows_off + (o - m->hdr_len);
			want = (size_t)(size - o);
		}
		if (want > len - done)
			want = len - done;
		n = pver_read(pv, (char *)buf + done, want, src);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

uint64_t view_object_offset(const struct view_map *m, uint64_t off)
{
	return off < m->hdr_len ? off : m->rows_off + (off - m->hdr_len);
}

ssize_t view_read_vec(struct pver *pv, const struct view_map *m, uint64_t off, size_t len,
		      struct rvec *v)
{
	size_t done = 0, n0 = v->n;
	uint64_t size = view_size(m), len0 = v->len;

	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	while (done < len) {
		uint64_t o = off + done;
		size_t want = (size_t)((o < m->hdr_len ? m->hdr_len : size) - o);
		ssize_t n = 0;

		if (want > len - done)
			want = len - done;
		if (o < m->hdr_len)   /* the header kept with the version: no fragment */
			n = pver_head_vec(pv, m->hdr_len, o, want, v);
		if (n == 0)
			n = pver_read_vec(pv, view_object_offset(m, o), want, v);
		if (n < 0) {     /* give back what this call added */
			for (size_t i = n0; i < v->n; i++)
				fbuf_put(v->bufs[i]);
			v->n = n0;
			v->len = len0;
			return n;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void json_str(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_time(FILE *f, const char *key, int64_t ns)
{
	fprintf(f, "  \"%s\": %" PRId64 ".%09" PRId64 ",\n", key, ns / 1000000000, ns % 1000000000);
}

#define META_HDR_MAX 65536

int view_meta_json(struct pver *pv, char **out, size_t *len)
{
	const struct idx_inode *in = pver_inode(pv);
	uint64_t hdr = inode_is_fixed(in) ? 0 : (in->header < in->rows ? in->header : in->rows);
	uint64_t hdr_len = 0;
	char *hbuf = NULL;
	ssize_t n = 0;
	FILE *f;
	int rc;

	*out = NULL;
	*len = 0;
	rc = pver_row_offset(pv, hdr, &hdr_len);
	if (rc)
		return rc;
	if (hdr_len > META_HDR_MAX)
		hdr_len = META_HDR_MAX;
	if (hdr_len) {
		if (!(hbuf = malloc(hdr_len)))
			return -ENOMEM;
		n = pver_read(pv, hbuf, hdr_len, 0);
		if (n < 0) {
			free(hbuf);
			return (int)n;
		}
	}
	f = open_memstream(out, len);
	if (!f) {
		free(hbuf);
		return -ENOMEM;
	}
	fprintf(f, "{\n  \"id\": %" PRIu64 ",\n  \"version\": %" PRIu64 ",\n  \"size\": %" PRIu64
		",\n  \"rows\": %" PRIu64 ",\n",
		in->ino, in->version, in->size, in->rows - hdr);
	fprintf(f, "  \"header\": %" PRIu64 ",\n  \"header_text\": ", hdr);
	if (n > 0 && hbuf[n - 1] == '\n')
		n--;
	json_str(f, hbuf ? hbuf : "", (size_t)n);
	if (inode_is_fixed(in))
		fprintf(f, ",\n  \"format\": \"fixed:%u\",\n", in->fmt_recsize);
	else
		fputs(",\n  \"format\": \"lines\",\n", f);
	fprintf(f, "  \"storage\": \"%s\",\n  \"fragments\": %u,\n  \"inline\": %s,\n",
		in->flags & INODE_F_MEMORY ? "memory" : "disk", pver_nfrags(pv),
		in->flags & INODE_F_INLINE ? "true" : "false");
	json_time(f, "atime", in->atime_ns);
	json_time(f, "ctime", in->ctime_ns);
	fprintf(f, "  \"mtime\": %" PRId64 ".%09" PRId64 "\n}\n",
		in->mtime_ns / 1000000000, in->mtime_ns % 1000000000);
	free(hbuf);
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}
