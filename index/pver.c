/* pver — pinned, immutable versions of an object's data, and reads.
 *
 * Invariants:
 *  (1) A pver never changes after it is published; its fragments are
 *      pinned (store_pin_list) from creation until the last pver_put, so
 *      their images outlive any commit or delete that drops them.
 *  (2) st->pvcur holds at most one pver per inode: the current version.
 *      A commit or delete drops the slot (store_pvcur_drop) after its txn
 *      committed; pvers handed out earlier stay valid. A read-only opener
 *      that applies no log sees no commit: store_pver_get checks its slot
 *      against the index's version (pvcur_stale), at most once per commit
 *      (8).
 *  (3) Fragments are sorted by offset with no gaps: frags[i].off +
 *      frags[i].len == frags[i+1].off, the last ends at in.size; first_row
 *      likewise accumulates rows. Lookups are binary searches: O(log F).
 *  (4) A row may span fragments (format 3): a fragment whose first byte
 *      continues the row of the one before has FRAG_F_CONT, and its rows
 *      count only the rows that start in it (0 for a fragment wholly
 *      inside a row). The first fragment never has it; in fixed:N it is
 *      set exactly when the offset is not a multiple of N. So the
 *      fragment where row R starts is the last one with first_row <= R
 *      (a fragment of 0 rows is followed by one of the same first_row),
 *      still one binary search, and R starts at the fragment's offset
 *      unless the fragment has FRAG_F_CONT (then after its
 *      (R - first_row + 1)-th newline).
 *  (5) Finding where a row starts (pver_row_offsets) decodes nothing when
 *      the row starts a fragment or its fragment's row index (format 4,
 *      index/rowidx.h) names it, and otherwise decodes that one fragment
 *      and scans fewer than ROWIDX_STRIDE rows from the nearest indexed
 *      one. The index is looked up by fragment id in a read txn of its
 *      own: it may be missing (rowidx.c (2)), also when a commit released
 *      the fragment after this version was pinned; then the fragment is
 *      scanned from its start, as format 3 always did. Offsets are the
 *      same either way (rowidx.c (1)).
 *  (6) pv->head, once set, holds the object's first head->len bytes, taken
 *      from the row index of fragment 0 (its prefix: whole rows, at most
 *      ROWIDX_PREFIX_MAX bytes) — the same bytes fragment 0 holds, since
 *      the index is a function of the fragment's bytes. It is set at most
 *      once (compare-and-swap) and freed with the pver, so a pointer into
 *      it stays valid while the pver is held. Views serve their header
 *      from it (view.c) instead of decoding fragment 0.
 *  (7) A cold load (a version not in st->pvcur) on a local store takes no
 *      commit_lock, so an open never waits behind another file's commit
 *      and its flush. It reads the two generations G_pv = st->pv_gen
 *      (bumped, under st->lock, by every pvcur change a commit or delete
 *      makes: store_pvcur_set/_drop/_drop_range, all after their txn
 *      committed) and G_rel = st->release_gen (bumped under st->lock by
 *      store_release_frag, after the releasing txn committed, in the same
 *      critical section that looks for pins) BEFORE its read txn begins,
 *      then reads and pins, then under st->lock:
 *       - if G_rel moved, an image of what it read may have been released
 *         (and deleted) before its pin: it unpins and starts over; once it
 *         started over twice it loads under commit_lock as before (so a
 *         load always ends). If G_rel did not move, any release of its
 *         images comes after its pin and sees it (a zombie: store.c (1)).
 *         A commit that committed before the read txn began released
 *         nothing the read txn can see.
 *       - it installs the version in pvcur only if G_pv did not move: a
 *         commit of the object that committed after its read txn began
 *         sets or drops the slot after that, and a stale version must not
 *         replace it. The version it returns is still a consistent one: the
 *         open ran concurrently with that commit.
 *      A RADOS store (an applier and base loads change the index under
 *      commit_lock) loads under commit_lock as before.
 *  (8) A read-only opener's slot records `checked`: the id of the commit
 *      whose snapshot showed its version to be the object's current one
 *      (the read txn that loaded it, or that re-checked it). A cached
 *      current version is valid while the index's last committed txn id
 *      (idx_last_txnid: LMDB's newest meta page, written by a commit of
 *      this process or any other before any new read txn can see that
 *      commit) equals `checked`: then no commit exists that a read txn
 *      begun now would see and that snapshot did not. Otherwise it is
 *      checked against the index as before — one read txn — and either
 *      dropped (another version, or gone) or re-stamped with that txn's
 *      id. So a commit by the daemon is seen at the library's next call,
 *      and while nothing commits a hit costs no txn. `checked` 0 means
 *      unknown (a slot set by a commit: a writer's, never checked).
 */
#include "index/store_int.h"
#include "index/store_rados.h"
#include "index/rowidx.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

uint64_t rows_in(const struct idx_inode *in, const char *buf, size_t len)
{
	uint64_t n = 0;
	const char *p = buf, *end = buf + len;

	if (inode_is_fixed(in))
		return in->fmt_recsize ? len / in->fmt_recsize : 0;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
		n++;
		p++;
	}
	if (len && buf[len - 1] != '\n')
		n++;
	return n;
}

uint64_t frag_rows(const struct idx_inode *in, const char *raw, size_t len, uint32_t phase)
{
	if (inode_is_fixed(in)) {
		uint64_t n = in->fmt_recsize, first = phase % n ? n - phase % n : 0;
		return first < len ? 1 + (len - 1 - first) / n : 0;
	}
	return rows_in(in, raw, len) - (phase && len ? 1 : 0);
}

/* Invariants (3) and (4) (what the list alone shows); also run on every
 * load: a damaged list is EIO. */
static int pver_check(const struct pver *pv)
{
	uint64_t off = 0, row = 0;

	for (uint32_t i = 0; i < pv->nfrags; i++) {
		int cont = !!(pv->frags[i].flags & FRAG_F_CONT);
		if (pv->frags[i].off != off || pv->frags[i].first_row != row || !pv->frags[i].len)
			return 0;
		if (inode_is_fixed(&pv->in) ? cont != (off % pv->in.fmt_recsize != 0) : (cont && i == 0))
			return 0;
		off += pv->frags[i].len;
		row += pv->frags[i].rows;
	}
	return pv->inl || (off == pv->in.size && row == pv->in.rows);
}

/* The slot table is a small direct-mapped cache: a collision replaces. */
#define PVCUR_SLOTS 1024

/* With st->lock: put PV in its slot. @return the version it replaced
 * (to pver_put once st->lock is released). */
static struct pver *pvcur_install(struct store *st, struct pver *pv, uint64_t checked)
{
	struct pvslot *s;
	struct pver *old = NULL;

	if (!st->pvcur) {
		st->pvcur = calloc(PVCUR_SLOTS, sizeof(*st->pvcur));
		st->pvcur_cap = st->pvcur ? PVCUR_SLOTS : 0;
	}
	if (st->pvcur_cap) {
		s = &st->pvcur[pv->in.ino % st->pvcur_cap];
		old = s->pv;
		s->ino = pv->in.ino;
		s->pv = pver_ref(pv);
		s->checked = checked;
	}
	return old;
}

void store_pvcur_set(struct store *st, struct pver *pv)
{
	struct pver *old;

	pthread_mutex_lock(&st->lock);
	st->pv_gen++;                   /* (5) */
	old = pvcur_install(st, pv, 0);
	pthread_mutex_unlock(&st->lock);
	pver_put(old);
}

/* A version of IN as an empty object (one reference), or NULL. */
static struct pver *pver_empty(struct store *st, const struct idx_inode *in)
{
	struct pver *pv = calloc(1, sizeof(*pv));

	if (!pv)
		return NULL;
	pv->st = st;
	pv->refs = 1;
	pv->in = *in;
	pv->inl = calloc(1, 1);       /* empty object, as pver_load makes it */
	if (!pv->inl || store_pin_list(st, pv, NULL, 0)) {
		free(pv->inl);
		free(pv);
		return NULL;
	}
	return pv;
}

void store_pvcur_set_empty(struct store *st, const struct idx_inode *in)
{
	struct pver *pv = pver_empty(st, in);

	if (!pv)
		return;
	store_pvcur_set(st, pv);
	pver_put(pv);
}

void store_pvcur_drop(struct store *st, uint64_t ino)
{
	struct pver *old = NULL;

	pthread_mutex_lock(&st->lock);
	st->pv_gen++;                   /* (5) */
	if (st->pvcur_cap) {
		struct pvslot *s = &st->pvcur[ino % st->pvcur_cap];
		if (s->ino == ino) {
			old = s->pv;
			s->pv = NULL;
			s->ino = 0;
		}
	}
	pthread_mutex_unlock(&st->lock);
	pver_put(old);
}

void store_pvcur_drop_range(struct store *st, uint64_t from, uint64_t to)
{
	for (size_t i = 0; i < PVCUR_SLOTS; i++) {
		struct pver *old = NULL;
		pthread_mutex_lock(&st->lock);
		st->pv_gen++;           /* (5) */
		if (i < st->pvcur_cap && st->pvcur[i].ino >= from && st->pvcur[i].ino < to) {
			old = st->pvcur[i].pv;
			st->pvcur[i].pv = NULL;
			st->pvcur[i].ino = 0;
		}
		pthread_mutex_unlock(&st->lock);
		pver_put(old);
	}
}

/* INO's slot's version (a reference) and its `checked` (8), or NULL. */
static struct pver *pvcur_get(struct store *st, uint64_t ino, uint64_t *checked)
{
	struct pver *pv = NULL;

	*checked = 0;
	pthread_mutex_lock(&st->lock);
	if (st->pvcur_cap) {
		struct pvslot *s = &st->pvcur[ino % st->pvcur_cap];
		if (s->ino == ino && s->pv) {
			pv = pver_ref(s->pv);
			*checked = s->checked;
		}
	}
	pthread_mutex_unlock(&st->lock);
	return pv;
}

/* Read INO's current version from the index (in PV, which has st and
 * refs set) and pin it; *SEEN: the commit id its read txn saw. @return 0
 * or -errno (PV's lists freed). */
static int pver_read_pin(struct store *st, uint64_t ino, struct pver *pv, uint64_t *seen)
{
	struct idx_txn *t;
	int rc = idx_begin(st->idx, 1, &t);

	if (rc)
		return rc;
	*seen = idx_txn_id(t);
	rc = idx_inode_get(t, ino, &pv->in);
	if (!rc && S_ISDIR(pv->in.mode))
		rc = -EISDIR;
	if (!rc && (pv->in.flags & INODE_F_INLINE)) {
		const void *d;
		size_t len;
		rc = idx_inline_get(t, ino, &d, &len);
		if (rc == -ENOENT && pv->in.size == 0)
			rc = 0, len = 0, d = "";
		if (!rc && len != pv->in.size)
			rc = -EUCLEAN;
		if (!rc && !(pv->inl = malloc(len ? len : 1)))
			rc = -ENOMEM;
		if (!rc)
			memcpy(pv->inl, d, len);
	} else if (!rc) {
		rc = idx_frags_load(t, ino, &pv->frags, &pv->nfrags);
	}
	idx_abort(t);
	FAULT_CRASH("pver_read");      /* tests: a commit between read and pin */
	if (!rc && !pv->inl && pv->nfrags == 0 && pv->in.size == 0 && !(pv->inl = calloc(1, 1)))
		rc = -ENOMEM;           /* empty object */
	if (!rc && !pv->inl && !(pver_check(pv))) {
		log_err("object %llu: open: fragment list does not cover its size (EUCLEAN)",
			(unsigned long long)ino);
		rc = -EUCLEAN;
	}
	if (!rc)
		rc = store_pin_list(st, pv, NULL, 0);
	if (rc) {
		free(pv->frags);
		free(pv->inl);
		pv->frags = NULL;
		pv->inl = NULL;
		pv->nfrags = 0;
	}
	return rc;
}

/* Load INO's current version from the index: without commit_lock on a
 * local store, under it on a RADOS one (invariant (7)). */
static int pver_load(struct store *st, uint64_t ino, struct pver **out)
{
	struct pver *pv = calloc(1, sizeof(*pv)), *old = NULL;
	int locked = st->rados != NULL, rc;

	*out = NULL;
	if (!pv)
		return -ENOMEM;
	pv->st = st;
	pv->refs = 1;
	for (int tries = 0;; tries++) {
		uint64_t g_pv, g_rel, seen = 0;
		int stale;

		if (tries == 2)
			locked = 1;     /* commits keep releasing: as before */
		if (locked)
			store_xlock(st);   /* store.c invariant (2) */
		pthread_mutex_lock(&st->lock);
		g_pv = st->pv_gen;
		g_rel = st->release_gen;
		pthread_mutex_unlock(&st->lock);
		rc = pver_read_pin(st, ino, pv, &seen);
		if (rc) {
			if (locked)
				store_xunlock(st);
			free(pv);
			return rc == -EUCLEAN ? -EIO : rc;
		}
		pthread_mutex_lock(&st->lock);
		stale = !locked && st->release_gen != g_rel;
		if (!stale && (locked || st->pv_gen == g_pv))
			old = pvcur_install(st, pv, seen);
		pthread_mutex_unlock(&st->lock);
		if (locked)
			store_xunlock(st);
		if (!stale)
			break;
		__atomic_add_fetch(&st->stats.load_retries, 1, __ATOMIC_RELAXED);
		store_unpin_list(st, pv);   /* (7): start over */
		free(pv->frags);
		free(pv->inl);
		memset(pv, 0, sizeof(*pv));
		pv->st = st;
		pv->refs = 1;
	}
	pver_put(old);
	*out = pv;
	return 0;
}

/* A read-only opener that applies no log (a tool or libpayload beside a
 * mounted daemon) is told of no commit: its cached current version is
 * checked against the index's before it is handed out (invariant (2) there
 * holds by this check, not by a drop). */
static int pvcur_stale(struct store *st, const struct pver *pv, uint64_t checked)
{
	struct idx_inode in;
	struct idx_txn *t;
	uint64_t id;
	int rc;

	if (!st->rdonly || srados_follower(st))
		return 0;
	if (checked && checked == idx_last_txnid(st->idx))
		return 0;               /* (8): nothing committed since */
	rc = idx_begin(st->idx, 1, &t);
	if (rc)
		return 1;
	id = idx_txn_id(t);
	rc = idx_inode_get(t, pv->in.ino, &in);
	idx_abort(t);
	if (rc || in.version != pv->in.version)
		return 1;
	pthread_mutex_lock(&st->lock);          /* (8): current as of ID */
	if (st->pvcur_cap) {
		struct pvslot *s = &st->pvcur[pv->in.ino % st->pvcur_cap];
		if (s->pv == pv && s->checked < id)
			s->checked = id;
	}
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int store_pver_get(struct store *st, uint64_t ino, struct pver **out)
{
	struct idx_inode in;
	uint64_t checked;
	int rc;

	*out = pvcur_get(st, ino, &checked);
	if (*out && pvcur_stale(st, *out, checked)) {
		pver_put(*out);
		store_pvcur_drop(st, ino);
		*out = NULL;
	}
	if (*out)
		return 0;
	rc = pver_load(st, ino, out);
	if (rc == -ENOENT && store_getattr(st, ino, &in) == 0 && store_pending(st, ino)) {
		/* a pending name (ns.c P1) whose empty version left pvcur */
		*out = pver_empty(st, &in);
		rc = *out ? 0 : -ENOMEM;
	} else if (rc == -ENOENT && store_getattr(st, ino, &in) == 0) {
		rc = pver_load(st, ino, out);   /* merged meanwhile (ns.c P4) */
	}
	return rc;
}

struct pver *store_pver_cached(struct store *st, uint64_t ino)
{
	uint64_t checked;
	struct pver *pv = pvcur_get(st, ino, &checked);

	if (pv && pvcur_stale(st, pv, checked)) {
		pver_put(pv);
		return NULL;
	}
	return pv;
}

int pver_extends(const struct pver *pv)
{
	return pv->extends;
}

uint64_t pver_extends_from(const struct pver *pv)
{
	return pv->extends ? pv->ext_from : 0;
}

uint64_t store_same_since(struct store *st, const struct pver *hint, uint64_t ino, uint64_t version)
{
	struct pver *c;
	uint64_t since = version, checked;

	if (hint && hint->in.ino == ino && hint->in.version == version && hint->same_since)
		return hint->same_since;
	if ((c = pvcur_get(st, ino, &checked)) != NULL) {   /* a hint: no freshness check */
		if (c->in.version == version && c->same_since)
			since = c->same_since;
		pver_put(c);
	}
	return since;
}

struct pver *pver_ref(struct pver *pv)
{
	__atomic_add_fetch(&pv->refs, 1, __ATOMIC_RELAXED);
	return pv;
}

void pver_put(struct pver *pv)
{
	int n;

	if (!pv)
		return;
	n = __atomic_sub_fetch(&pv->refs, 1, __ATOMIC_ACQ_REL);
	if (n < 0)
		abort();
	if (n)
		return;
	store_unpin_list(pv->st, pv);
	free(pv->frags);
	free(pv->inl);
	free(pv->head);
	free(pv);
}

const char *pver_head(const struct pver *pv, uint64_t len)
{
	struct pvhead *h = __atomic_load_n(&pv->head, __ATOMIC_ACQUIRE);

	return h && len && len <= h->len ? h->bytes : NULL;
}

const char *pver_head_load(struct pver *pv, uint64_t len)
{
	const char *have = pver_head(pv, len);
	const unsigned char *pre;
	struct pvhead *h, *none = NULL;
	struct idx_txn *t;
	const void *rec;
	size_t rlen;
	uint32_t plen = 0;

	if (have || !len || len > ROWIDX_PREFIX_MAX || pv->inl || !pv->nfrags || pv->head)
		return have;
	if (idx_begin(pv->st->idx, 1, &t))
		return NULL;
	h = NULL;
	if (idx_rowidx_get(t, pv->frags[0].id, &rec, &rlen) == 0 &&
	    rowidx_prefix(rec, rlen, &pre, &plen) == 0 && plen >= len && plen <= pv->frags[0].len &&
	    (h = malloc(sizeof(*h) + plen))) {
		h->len = plen;
		memcpy(h->bytes, pre, plen);
	}
	idx_abort(t);
	if (h && !__atomic_compare_exchange_n(&pv->head, &none, h, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		free(h);             /* another thread kept the same bytes first */
	return pver_head(pv, len);
}

const struct idx_inode *pver_inode(const struct pver *pv)
{
	return &pv->in;
}

uint32_t pver_nfrags(const struct pver *pv)
{
	return pv->nfrags;
}

const struct frag_desc *pver_frag(const struct pver *pv, uint32_t i)
{
	return &pv->frags[i];
}

/* Index of the fragment holding byte OFF (OFF < size). */
static uint32_t frag_by_off(const struct pver *pv, uint64_t off)
{
	uint32_t lo = 0, hi = pv->nfrags;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (pv->frags[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the fragment where row ROW starts (ROW < rows): the last one
 * with first_row <= ROW (invariant 4: fragments of 0 rows lie inside a
 * row and are never last with first_row <= ROW < rows). */
static uint32_t frag_by_row(const struct pver *pv, uint64_t row)
{
	uint32_t lo = 0, hi = pv->nfrags;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (pv->frags[mid].first_row <= row)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Row ROW starts at fragment D's first byte (no scan needed)? */
static int row_at_frag_start(const struct frag_desc *d, uint64_t row)
{
	return row == d->first_row && !(d->flags & FRAG_F_CONT);
}

/* Newlines of fragment D to skip to reach the start of row ROW in it. */
static uint64_t newlines_before(const struct frag_desc *d, uint64_t row)
{
	return row - d->first_row + (d->flags & FRAG_F_CONT ? 1 : 0);
}

static void to_ref(struct store *st, const struct frag_desc *d, struct frag_ref *r)
{
	r->id = d->id;
	r->raw_len = d->len;
	r->stored_len = d->stored_len;
	r->checksum = d->checksum;
	r->backend = store_backend_of(st, d);
}

/* Fetch fragments [i, j) pinned into OUT; log which object on damage. */
static int fetch_range(struct pver *pv, uint32_t i, uint32_t j, struct fbuf **out)
{
	struct frag_ref stack[16] = { { 0 } }, *refs = stack;
	uint32_t n = j - i;
	int rc;

	if (n > 16 && !(refs = malloc(n * sizeof(*refs))))
		return -ENOMEM;
	for (uint32_t k = 0; k < n; k++)
		to_ref(pv->st, &pv->frags[i + k], &refs[k]);
	rc = fcache_fetch(pv->st->cache, refs, n, out);
	if (rc == -EIO || rc == -ENOENT) {
		for (uint32_t k = 0; k < n; k++) {
			struct fbuf *ok = fcache_lookup(pv->st->cache, refs[k].id);
			if (ok) {   /* this one verified (and stays cached) */
				fbuf_put(ok);
				continue;
			}
			log_err("object %llu: version %llu: fragment %016llx (bytes %llu..%llu) could not be read: %s (%s)",
				(unsigned long long)pv->in.ino, (unsigned long long)pv->in.version,
				(unsigned long long)refs[k].id,
				(unsigned long long)pv->frags[i + k].off,
				(unsigned long long)(pv->frags[i + k].off + pv->frags[i + k].len),
				rc == -EIO ? "damaged" : "missing", log_errname(rc));
		}
		rc = -EIO;
	}
	if (refs != stack)
		free(refs);
	return rc;
}

/* One implementation of the byte-to-fragment walk: pver_read_vec (below),
 * then a copy out of the pinned buffers. */
ssize_t pver_read(struct pver *pv, void *buf, size_t len, uint64_t off)
{
	struct rvec v;
	ssize_t n;
	size_t done = 0;

	rvec_init(&v);
	n = pver_read_vec(pv, off, len, &v);
	for (size_t i = 0; n > 0 && i < v.n; i++) {
		memcpy((char *)buf + done, v.iov[i].iov_base, v.iov[i].iov_len);
		done += v.iov[i].iov_len;
	}
	rvec_release(&v);
	return n;
}

/* Offset of the start of the Nth row in BUF (N < rows in BUF). */
static size_t nth_row(const char *buf, size_t len, uint64_t n)
{
	const char *p = buf, *end = buf + len;

	while (n--) {
		p = memchr(p, '\n', (size_t)(end - p));
		if (!p)
			return len;
		p++;
	}
	return (size_t)(p - buf);
}

/* Where row ROW (not at its fragment's start) starts in fragment I: at
 * byte *START of the fragment after *SKIP newlines. With the fragment's
 * row index (T: a read txn, begun on first use) *SKIP < ROWIDX_STRIDE,
 * or 0 when the row is indexed; without one, the fragment is scanned from
 * its first byte (invariant 5). */
static void row_start(struct pver *pv, struct idx_txn **t, int *tried, uint32_t i, uint64_t row,
		      uint32_t *start, uint64_t *skip)
{
	const struct frag_desc *d = &pv->frags[i];
	const void *rec;
	size_t len;
	uint32_t off, sk;

	*start = 0;
	*skip = newlines_before(d, row);
	if (!*tried) {
		*tried = 1;
		if (idx_begin(pv->st->idx, 1, t))
			*t = NULL;
	}
	if (!*t || idx_rowidx_get(*t, d->id, &rec, &len))
		return;
	if (rowidx_find(rec, len, d->len, row - d->first_row, &off, &sk) == 0) {
		*start = off;
		*skip = sk;
		__atomic_add_fetch(&pv->st->stats.rowidx_hits, 1, __ATOMIC_RELAXED);
	}
}

int pver_row_offsets(struct pver *pv, const uint64_t *rows, size_t n, uint64_t *offs)
{
	struct frag_ref refs[8];
	struct fbuf *bufs[8];
	uint32_t idx[8], start[8];
	uint64_t skip[8];
	struct idx_txn *t = NULL;
	int tried = 0;
	size_t m = 0;
	int rc;

	if (n > 8)
		return -EINVAL;
	/* where each row starts: exact from the row indexes, or the
	 * fragments to scan, each once, fetched in one batch */
	for (size_t k = 0; k < n; k++) {
		uint64_t row = rows[k];
		skip[k] = 0;
		if (row >= pv->in.rows)
			offs[k] = pv->in.size;
		else if (inode_is_fixed(&pv->in))
			offs[k] = row * pv->in.fmt_recsize;
		else if (pv->inl)
			offs[k] = nth_row(pv->inl, pv->in.size, row);
		else {
			uint32_t i = frag_by_row(pv, row), j;
			offs[k] = pv->frags[i].off;
			if (row_at_frag_start(&pv->frags[i], row))
				continue;
			row_start(pv, &t, &tried, i, row, &start[k], &skip[k]);
			offs[k] += start[k];
			if (!skip[k])
				continue;
			for (j = 0; j < m && idx[j] != i; j++)
				;
			if (j == m) {
				idx[m] = i;
				to_ref(pv->st, &pv->frags[i], &refs[m]);
				m++;
			}
		}
	}
	idx_abort(t);
	__atomic_add_fetch(&pv->st->stats.row_scans, m, __ATOMIC_RELAXED);
	if (m) {
		rc = fcache_fetch(pv->st->cache, refs, m, bufs);
		if (rc == -EIO || rc == -ENOENT) {
			log_err("object %llu: version %llu: fragments holding rows could not be read: %s (%s)",
				(unsigned long long)pv->in.ino, (unsigned long long)pv->in.version,
				rc == -EIO ? "damaged" : "missing", log_errname(rc));
			rc = -EIO;
		}
		if (rc)
			return rc;
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t i, j;
		if (!skip[k])
			continue;
		i = frag_by_row(pv, rows[k]);
		for (j = 0; idx[j] != i; j++)
			;
		offs[k] += nth_row(bufs[j]->data + start[k], bufs[j]->len - start[k], skip[k]);
	}
	for (size_t j = 0; j < m; j++)
		fbuf_put(bufs[j]);
	return 0;
}

int pver_row_offset(struct pver *pv, uint64_t row, uint64_t *off)
{
	return pver_row_offsets(pv, &row, 1, off);
}

/* ---- reads into pinned buffers ---- */

void rvec_init(struct rvec *v)
{
	memset(v, 0, sizeof(*v));
	v->iov = v->iov_s;
	v->bufs = v->bufs_s;
	v->cap = RVEC_INLINE;
}

void rvec_release(struct rvec *v)
{
	for (size_t i = 0; i < v->n; i++)
		fbuf_put(v->bufs[i]);
	if (v->iov != v->iov_s)
		free(v->iov);
	if (v->bufs != v->bufs_s)
		free(v->bufs);
	rvec_init(v);
}

/* Room for N more entries in V. @return 0 or -ENOMEM. */
static int rvec_reserve(struct rvec *v, size_t n)
{
	size_t cap = v->cap;
	struct iovec *iov;
	struct fbuf **bufs;

	if (v->n + n <= v->cap)
		return 0;
	while (cap < v->n + n)
		cap *= 2;
	iov = malloc(cap * sizeof(*iov));
	bufs = malloc(cap * sizeof(*bufs));
	if (!iov || !bufs) {
		free(iov);
		free(bufs);
		return -ENOMEM;
	}
	memcpy(iov, v->iov, v->n * sizeof(*iov));
	memcpy(bufs, v->bufs, v->n * sizeof(*bufs));
	if (v->iov != v->iov_s)
		free(v->iov);
	if (v->bufs != v->bufs_s)
		free(v->bufs);
	v->iov = iov;
	v->bufs = bufs;
	v->cap = cap;
	return 0;
}

static void rvec_push(struct rvec *v, const void *p, size_t len, struct fbuf *pin)
{
	v->iov[v->n].iov_base = (void *)p;
	v->iov[v->n].iov_len = len;
	v->bufs[v->n] = pin;
	v->n++;
	v->len += len;
}

ssize_t pver_read_vec(struct pver *pv, uint64_t off, size_t len, struct rvec *v)
{
	struct fbuf *stack[16], **bufs = stack;
	uint32_t i, j;
	size_t done = 0;
	int rc;

	if (off >= pv->in.size || !len)
		return 0;
	if (len > pv->in.size - off)
		len = (size_t)(pv->in.size - off);
	if (pv->inl) {
		if (rvec_reserve(v, 1))
			return -ENOMEM;
		rvec_push(v, pv->inl + off, len, NULL);
		return (ssize_t)len;
	}
	i = frag_by_off(pv, off);
	j = frag_by_off(pv, off + len - 1) + 1;
	if (rvec_reserve(v, j - i))
		return -ENOMEM;
	if (j - i > 16 && !(bufs = malloc((j - i) * sizeof(*bufs))))
		return -ENOMEM;
	rc = fetch_range(pv, i, j, bufs);
	if (rc) {
		if (bufs != stack)
			free(bufs);
		return rc;
	}
	for (uint32_t k = i; k < j; k++) {
		const struct frag_desc *d = &pv->frags[k];
		uint64_t s = off + done - d->off;
		size_t n = (size_t)(d->len - s);
		if (n > len - done)
			n = len - done;
		rvec_push(v, bufs[k - i]->data + s, n, bufs[k - i]);
		done += n;
	}
	if (bufs != stack)
		free(bufs);
	return (ssize_t)done;
}

ssize_t pver_head_vec(struct pver *pv, uint64_t hlen, uint64_t off, size_t len, struct rvec *v)
{
	const char *h = pver_head(pv, hlen);

	if (!h || off + len > hlen)
		return 0;
	if (rvec_reserve(v, 1))
		return -ENOMEM;
	rvec_push(v, h + off, len, NULL);
	return (ssize_t)len;
}

/* ---- read-ahead ---- */

static void pver_put_cb(void *arg)
{
	pver_put(arg);
}

/* Queue fragments covering [A, B) of PV for background loading. */
void pver_prefetch(struct pver *pv, uint64_t a, uint64_t b)
{
	struct frag_ref stack[32], *refs = stack;
	uint32_t i, j, n;

	if (pv->inl || a >= b || a >= pv->in.size)
		return;
	if (b > pv->in.size)
		b = pv->in.size;
	i = frag_by_off(pv, a);
	j = frag_by_off(pv, b - 1) + 1;
	n = j - i;
	if (n > 32 && !(refs = malloc(n * sizeof(*refs))))
		return;
	for (uint32_t k = 0; k < n; k++)
		to_ref(pv->st, &pv->frags[i + k], &refs[k]);
	/* the job holds a reference: the images outlive it (invariant 1) */
	fcache_prefetch(pv->st->cache, refs, n, pver_put_cb, pver_ref(pv));
	if (refs != stack)
		free(refs);
}

void pver_prefetch_rows(struct pver *pv, uint64_t row_a, uint64_t row_b, uint64_t max)
{
	uint64_t a, b;
	uint32_t j;

	if (pv->inl || !pv->nfrags || row_a >= pv->in.rows || row_b < row_a || !max)
		return;
	a = pv->frags[frag_by_row(pv, row_a)].off;
	if (row_b >= pv->in.rows) {
		b = pv->in.size;
	} else {
		j = frag_by_row(pv, row_b);   /* where ROW_B starts: scanned too */
		b = pv->frags[j].off + pv->frags[j].len;
	}
	if (b - a > max)
		b = a + max;
	pver_prefetch(pv, a, b);
}

void pver_readahead(struct pver *pv, struct readahead *ra, uint64_t off, size_t len, uint64_t limit)
{
	uint64_t end = off + len, slack = 2 * (uint64_t)pv->st->frag_size + ((uint64_t)1 << 20);
	uint64_t target;

	if (limit > pv->in.size)
		limit = pv->in.size;
	/* Sequential: starts near where the last read ended. Concurrent
	 * kernel read-ahead requests arrive a little out of order. The
	 * handle's first read (next still 0) starts the window too: a cold
	 * reader then has the next fragments on their way while its first
	 * one loads, instead of one fragment later. */
	if (!ra->next || (off + slack >= ra->next && off <= ra->next + slack)) {
		uint64_t w = ra->window ? ra->window * 2 : (uint64_t)pv->st->frag_size * 2;
		ra->window = w > STORE_RA_MAX ? STORE_RA_MAX : w;
	} else {
		ra->window = 0;
		ra->until = end;
	}
	if (end > ra->next)
		ra->next = end;
	if (!ra->window)
		return;
	target = end + ra->window;
	if (target > limit)
		target = limit;
	if (target <= ra->until)
		return;
	pver_prefetch(pv, ra->until > end ? ra->until : end, target);
	ra->until = target;
}
