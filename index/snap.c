/* snap — snapshots of the whole tree (DESIGN §1 `.snapshots/NAME/`).
 *
 * A snapshot is a copy of the live tree's index records — inodes,
 * directory entries, fragment records, inline bytes, xattrs — under inode
 * numbers of its own, in one LMDB write txn. No fragment byte is copied:
 * the snapshot's fragment records name the live fragments, whose reference
 * counts go up by one per record, so an image lives for as long as a live
 * object or a snapshot lists it. The cost is O(index records of the live
 * tree) and nothing per byte.
 *
 * Invariants:
 *  (1) A snapshot owns the inode numbers [first, first + count), taken
 *      from meta "next_ino" in its txn: the live tree and other snapshots
 *      never use them. Inode FIRST is its root directory (a copy of the
 *      live root, its parent field itself). The `snapshots` record keyed by
 *      FIRST names the range.
 *  (2) Every inode of a snapshot has INODE_F_SNAP; every store call that
 *      would change one (namespace changes, setattr, xattrs, write
 *      sessions, commits) fails with EROFS, so a snapshot never changes
 *      (but for the emptying of its storage=memory objects at a mount,
 *      exactly like their live originals: their data lived in RAM).
 *  (3) What is copied is what the root reaches at the txn: the live tree
 *      as of one instant (commits and namespace changes are serialized by
 *      commit_lock, which the txn holds). Unlinked inodes still open
 *      (orphans) are not copied; hard links stay hard links (one inode,
 *      every name, the same nlink).
 *  (4) Dropping a snapshot deletes every record of its range and its
 *      `snapshots` record in one freeing txn (store_wbegin_freeing: it
 *      works on a full file system), decrementing the counts; images whose
 *      count reaches 0 are released as after any commit (deleted at the
 *      next flush of the index, durable.c (1), or at their last unpin).
 *  (5) The first snapshot of a store raises its format version to 2
 *      (idx.h), in the same txn.
 */
#include "index/store_int.h"
#include "cache/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- old inode -> new inode, open addressing ---- */

struct imap {
	uint64_t *k, *v;
	size_t cap, used;
};

static size_t im_slot(const struct imap *m, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (m->cap - 1);
}

static uint64_t im_get(const struct imap *m, uint64_t key)
{
	for (size_t i = im_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (m->k[i] == key)
			return m->v[i];
		if (!m->k[i])
			return 0;
	}
}

static int im_put(struct imap *m, uint64_t key, uint64_t val)
{
	if ((m->used + 1) * 2 > m->cap) {
		struct imap n = { .cap = m->cap ? m->cap * 2 : 1024 };
		if (!(n.k = calloc(n.cap, sizeof(*n.k))) || !(n.v = calloc(n.cap, sizeof(*n.v)))) {
			free(n.k);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->k[i])
				im_put(&n, m->k[i], m->v[i]);
		free(m->k);
		free(m->v);
		*m = n;
	}
	size_t i = im_slot(m, key);
	while (m->k[i])
		i = (i + 1) & (m->cap - 1);
	m->k[i] = key;
	m->v[i] = val;
	m->used++;
	return 0;
}

/* ---- copying records ---- */

struct dlist {
	struct dent { char *name; uint64_t child; uint32_t type; } *v;
	size_t n, cap;
};

static int dl_add(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct dlist *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct dent *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].name = strdup(name)))
		return -ENOMEM;
	l->v[l->n].child = child;
	l->v[l->n++].type = type;
	return 0;
}

static void dl_free(struct dlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

struct xnames {
	char **v;
	size_t n;
};

static int xn_add(void *arg, const char *name)
{
	struct xnames *x = arg;
	char **v = realloc(x->v, (x->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	x->v = v;
	if (!(x->v[x->n] = strdup(name)))
		return -ENOMEM;
	x->n++;
	return 0;
}

/* Copy the record at KEY OLD of a db whose value the getter returns
 * (valid until the next write: copied first) to NEW. */
static int copy_inline(struct idx_txn *t, uint64_t old, uint64_t nw)
{
	const void *d;
	size_t len;
	void *copy;
	int rc = idx_inline_get(t, old, &d, &len);

	if (rc)
		return rc == -ENOENT ? 0 : rc;
	if (!(copy = malloc(len ? len : 1)))
		return -ENOMEM;
	memcpy(copy, d, len);
	rc = idx_inline_put(t, nw, copy, len);
	free(copy);
	return rc;
}

static int copy_xattrs(struct idx_txn *t, uint64_t old, uint64_t nw)
{
	struct xnames x = { 0 };
	int rc = idx_xattr_iter(t, old, xn_add, &x);

	for (size_t i = 0; i < x.n; i++) {
		const void *val;
		size_t len;
		void *copy = NULL;
		if (!rc)
			rc = idx_xattr_get(t, old, x.v[i], &val, &len);
		if (!rc && !(copy = malloc(len ? len : 1)))
			rc = -ENOMEM;
		if (!rc) {
			memcpy(copy, val, len);
			rc = idx_xattr_put(t, nw, x.v[i], copy, len);
		}
		free(copy);
		free(x.v[i]);
	}
	free(x.v);
	return rc;
}

/* The fragment records of OLD, listed again for NEW: one more reference
 * each, no byte copied. */
static int copy_frags(struct idx_txn *t, uint64_t old, uint64_t nw, struct idx_snap *s)
{
	struct frag_desc *v;
	uint32_t n;
	int rc = idx_frags_load(t, old, &v, &n);

	for (uint32_t i = 0; i < n && !rc; i++) {
		rc = idx_frag_put(t, nw, &v[i]);
		if (!rc)
			rc = idx_ref_add(t, v[i].id, 1, NULL);
	}
	s->frags += n;
	free(v);
	return rc;
}

/* Copy inode IN (its record, data and xattrs) as NEW, whose directory
 * (for a directory: its parent field) is NEWPARENT. */
static int copy_inode(struct idx_txn *t, const struct idx_inode *in, uint64_t nw, uint64_t newparent,
		      struct idx_snap *s)
{
	struct idx_inode c = *in;
	int rc;

	c.ino = nw;
	c.flags |= INODE_F_SNAP;
	if (S_ISDIR(c.mode))
		c.parent = newparent;
	rc = idx_inode_put(t, &c);
	if (!rc && (S_ISLNK(c.mode) || (S_ISREG(c.mode) && (c.flags & INODE_F_INLINE))))
		rc = copy_inline(t, in->ino, nw);
	else if (!rc && S_ISREG(c.mode))
		rc = copy_frags(t, in->ino, nw, s);
	if (!rc)
		rc = copy_xattrs(t, in->ino, nw);
	if (S_ISREG(c.mode))
		s->bytes += c.size;
	return rc;
}

/* Copy the tree under the live root into S's range (invariant 3): a
 * breadth-first walk, directories in a queue of (old, new) pairs. */
static int copy_tree(struct idx_txn *t, struct idx_snap *s)
{
	struct imap map = { 0 };
	uint64_t *q = NULL, next = s->first + 1;
	size_t qh = 0, qn = 0, qcap = 0;
	struct idx_inode root;
	int rc = idx_inode_get(t, IDX_ROOT_INO, &root);

	if (!rc)
		rc = copy_inode(t, &root, s->first, s->first, s);
	if (!rc)
		rc = im_put(&map, IDX_ROOT_INO, s->first);
	if (!rc && !(q = malloc(64 * sizeof(*q))))
		rc = -ENOMEM;
	qcap = 64;
	if (!rc)
		q[qn++] = IDX_ROOT_INO;
	while (!rc && qh < qn) {
		uint64_t dir = q[qh++], ndir = im_get(&map, dir);
		struct dlist l = { 0 };
		rc = idx_dirent_iter(t, dir, NULL, dl_add, &l);
		for (size_t i = 0; i < l.n && !rc; i++) {
			uint64_t nc = im_get(&map, l.v[i].child);
			if (!nc) {
				struct idx_inode in;
				nc = next++;
				rc = idx_inode_get(t, l.v[i].child, &in);
				if (!rc)
					rc = im_put(&map, l.v[i].child, nc);
				if (!rc)
					rc = copy_inode(t, &in, nc, ndir, s);
				if (!rc && S_ISDIR(in.mode)) {
					if (qn == qcap) {
						uint64_t *nq = realloc(q, 2 * qcap * sizeof(*nq));
						if (!nq)
							rc = -ENOMEM;
						else
							q = nq, qcap *= 2;
					}
					if (!rc)
						q[qn++] = l.v[i].child;
				}
			}
			if (!rc)
				rc = idx_dirent_put(t, ndir, l.v[i].name, nc, l.v[i].type);
		}
		dl_free(&l);
	}
	s->count = next - s->first;
	free(q);
	free(map.k);
	free(map.v);
	return rc;
}

/* ---- the API ---- */

static int check_snap_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || strchr(name, '/'))
		return -EINVAL;
	if (n > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EEXIST;
	return view_name_reserved(name) ? -EINVAL : 0;
}

struct find_name {
	const char *name;
	struct idx_snap *out;
};

static int find_step(void *arg, const struct idx_snap *s)
{
	struct find_name *f = arg;

	if (strcmp(s->name, f->name))
		return 0;
	if (f->out)
		*f->out = *s;
	return 1;
}

/* @return 0 found, -ENOENT, -errno. */
static int find_snap(struct idx_txn *t, const char *name, struct idx_snap *out)
{
	struct find_name f = { name, out };
	int rc = idx_snaps_iter(t, find_step, &f);

	return rc == 1 ? 0 : (rc ? rc : -ENOENT);
}

int store_snap_create(struct store *st, const char *name, struct idx_snap *out)
{
	struct nsw w;
	struct idx_snap s;
	struct idx_txn *t;
	int rc = check_snap_name(name);

	if (rc)
		return rc;
	memset(&s, 0, sizeof(s));
	strcpy(s.name, name);
	s.created_ns = store_now_ns();
	/* pending names first (ns.c P2, P5): next_ino is above them */
	rc = store_nswbegin(st, &t, 0, &w);
	if (rc)
		return rc;
	rc = find_snap(t, name, NULL);
	rc = rc == 0 ? -EEXIST : (rc == -ENOENT ? 0 : rc);
	if (!rc)
		rc = idx_meta_get_u64(t, "next_ino", &s.first);
	if (!rc)
		rc = copy_tree(t, &s);
	if (!rc)
		rc = idx_meta_put_u64(t, "next_ino", s.first + s.count);
	if (!rc)
		rc = idx_snap_put(t, &s);
	if (!rc)
		rc = idx_format_raise(t);
	rc = store_nswend(st, t, rc, &w);
	if (rc) {
		if (rc != -EEXIST)
			log_warn("snapshot %s: not taken: %s", name, strerror(-rc));
		return rc;
	}
	log_info("snapshot %s taken: inodes %llu..%llu, %llu fragment records, %llu bytes", name,
		 (unsigned long long)s.first, (unsigned long long)(s.first + s.count - 1),
		 (unsigned long long)s.frags, (unsigned long long)s.bytes);
	if (out)
		*out = s;
	return 0;
}

struct range_acc {
	uint64_t *ino;
	uint32_t *mode;
	size_t n, cap;
};

static int range_add(void *arg, const struct idx_inode *in)
{
	struct range_acc *a = arg;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		uint64_t *iv = realloc(a->ino, cap * sizeof(*iv));
		uint32_t *mv = iv ? realloc(a->mode, cap * sizeof(*mv)) : NULL;
		if (iv)
			a->ino = iv;
		if (!mv)
			return -ENOMEM;
		a->mode = mv;
		a->cap = cap;
	}
	a->ino[a->n] = in->ino;
	a->mode[a->n++] = in->mode;
	return 0;
}

int store_snap_drop(struct store *st, const char *name)
{
	struct range_acc a = { 0 };
	struct frag_desc *freed = NULL;
	uint32_t nfreed = 0;
	struct idx_snap s;
	struct idx_txn *t;
	int rc;

	if (strlen(name) > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	rc = store_wbegin_freeing(st, &t);
	if (rc)
		return rc;
	rc = find_snap(t, name, &s);
	if (!rc)
		rc = idx_inodes_iter_range(t, s.first, s.first + s.count, range_add, &a);
	for (size_t i = 0; i < a.n && !rc; i++) {
		if (S_ISDIR(a.mode[i]))
			rc = idx_dirent_del_all(t, a.ino[i]);
		if (!rc)
			rc = store_destroy_inode(t, a.ino[i], &freed, &nfreed);
	}
	if (!rc)
		rc = idx_snap_del(t, s.first);
	rc = store_wend(st, t, rc);
	free(a.ino);
	free(a.mode);
	if (rc) {
		free(freed);
		if (rc != -ENOENT)
			log_warn("snapshot %s: not dropped: %s", name, strerror(-rc));
		return rc;
	}
	store_pvcur_drop_range(st, s.first, s.first + s.count);
	log_info("snapshot %s dropped: %llu inodes, %u images no longer referenced", name,
		 (unsigned long long)s.count, nfreed);
	store_release_list(st, freed, nfreed);
	return 0;
}

int store_snap_lookup(struct store *st, const char *name, struct idx_snap *out)
{
	struct idx_txn *t;
	int rc;

	if (strlen(name) > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if ((rc = idx_begin(st->idx, 1, &t)))
		return rc;
	rc = find_snap(t, name, out);
	idx_abort(t);
	return rc;
}

int store_snap_list(struct store *st, int (*cb)(void *arg, const struct idx_snap *s), void *arg)
{
	struct idx_txn *t;
	int rc = idx_begin(st->idx, 1, &t);

	if (rc)
		return rc;
	rc = idx_snaps_iter(t, cb, arg);
	idx_abort(t);
	return rc;
}

int store_snap_of(struct store *st, uint64_t ino, struct idx_snap *out)
{
	struct idx_txn *t;
	int rc = idx_begin(st->idx, 1, &t);

	if (rc)
		return rc;
	rc = idx_snap_at(t, ino, out);
	idx_abort(t);
	return rc;
}
