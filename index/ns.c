/* ns — the namespace: lookups, creation, links, unlink, rename, setattr,
 * readdir. Every change is one LMDB write txn (store_wbegin/store_wend).
 *
 * Invariants:
 *  (1) nlink of a directory is 2 + its number of child directories; of a
 *      non-directory, its number of dirents.
 *  (2) A non-directory whose nlink reaches 0 is recorded in the orphans db
 *      in the same txn; its data is freed by store_forget() or the next
 *      sweep, never while the fs may still read it.
 *  (3) A directory's parent field names the directory holding its one
 *      dirent; rename keeps it so, and refuses to move a directory under
 *      itself (EINVAL).
 *  (4) No dirent name is empty, ".", "..", longer than IDX_NAME_MAX, holds
 *      '/', or is reserved for views; no entry of the root is named
 *      `.snapshots` (the fs shows its snapshots there).
 *  (5) An entry created in a setgid directory gets the directory's group,
 *      a directory also its setgid bit (the BSD group rule ext4 follows).
 *  (6) Nothing here changes an inode of a snapshot (INODE_F_SNAP) or an
 *      entry of one of its directories: EROFS (snap.c invariant 2).
 *
 * Pending names (store_create_pending: a file created through the mount).
 * A create does not write the index: the new name and its empty inode are
 * held in st->pend until a write txn puts them in ("merges" them). So a
 * create + write + close is one durable txn: the close's commit
 * (commit.c run_txn) merges the name with the content and the times.
 *  (P1) A pending name is visible in this process as an empty file:
 *       store_lookup and store_getattr answer from st->pend (checked
 *       before the index, so a name merged meanwhile — in the index before
 *       it leaves st->pend (P4) — is never missed). Readers in another
 *       process (the library, payloadctl) read only the index: they do not
 *       see it. store_readdir merges every pending name first (so `ls` and
 *       readdir see them, durably).
 *  (P1a) When nothing is pending (the common case for readers) a lookup
 *       takes no lock: st->pend's head is read with acquire and written
 *       with release under pend_lock. A reader that sees it NULL after a
 *       merge took the last name out also sees that merge's txn, which
 *       committed before the release store (P4); one that misses a name
 *       being added is ordered before the create, as with the lock.
 *  (P2) Every namespace write txn (create_entry, link, unlink, rmdir,
 *       rename, setattr, put_many, xattr writes, snapshots:
 *       store_nswbegin) holds st->pend_ns for writing across its txn and
 *       first merges every pending name. So it sees them exactly as if
 *       they had been created in the index: rmdir of their parent is
 *       ENOTEMPTY, mkdir/link/rename onto them is EEXIST (or replaces
 *       them, as rename does), unlink/chmod/utimes/setxattr act on them.
 *  (P3) A deferred create holds st->pend_ns for reading; it checks that
 *       the name is free in st->pend and in the index and adds it, with a
 *       retry when a merge left st->pend meanwhile (pend_gen). Holding
 *       pend_ns excludes every namespace txn (P2); the only other txns
 *       that add names are merges of pending ones, which leave st->pend
 *       only after they committed (P4): so two live entries never share a
 *       name (O_EXCL fails while one is pending: EEXIST).
 *  (P4) A merge runs inside a write txn under the gate; it skips an inode
 *       already in the txn's view (an earlier member of the round or txn
 *       put it). A merged name leaves st->pend only after its txn
 *       committed and before the gate is released (store_pend_done in the
 *       post-commit section, gcommit.c (G6)); if the txn fails it stays
 *       pending. So at any time a name is in st->pend or in the index.
 *  (P5) Inode numbers of pending files come from st->ino_mem, kept above
 *       every number handed out and above the index's next_ino (read in
 *       the create's txn); a merge raises next_ino past its inode. Every
 *       other allocation (create_entry, put_many, snapshots) runs after a
 *       full merge (P2), so next_ino is above every pending inode then.
 *       A crash loses pending numbers with their names; none is reused
 *       while the process lives.
 *  (P6) A crash (process or power) before the merge loses only the
 *       pending name: nothing of it is in the index, no image refers to
 *       it. store_close merges what is still pending (a file whose commit
 *       failed keeps its name pending, visible, until then).
 */
#include "index/store_int.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int check_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || strchr(name, '/'))
		return -EINVAL;
	if (n > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EEXIST;
	if (view_name_reserved(name))
		return -EINVAL;
	return 0;
}

#define SNAPS_NAME ".snapshots"

/* Invariant (4): the root's `.snapshots` is not a real entry. */
static int reserved_at(uint64_t parent, const char *name)
{
	return parent == IDX_ROOT_INO && strcmp(name, SNAPS_NAME) == 0;
}

static int get_dir(struct idx_txn *t, uint64_t ino, struct idx_inode *dir)
{
	int rc = idx_inode_get(t, ino, dir);

	if (rc)
		return rc;
	return S_ISDIR(dir->mode) ? 0 : -ENOTDIR;
}

static void touch_dir(struct idx_inode *dir, int64_t now)
{
	dir->mtime_ns = dir->ctime_ns = now;
}

/* ---- Pending names: invariants P1-P6 at the top ---- */

void store_pend_init(struct store *st, int on)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	/* namespace txns must not starve behind a stream of creates */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->pend_ns, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&st->pend_lock, NULL);
	st->pend_on = on;
}

void store_pend_fini(struct store *st)
{
	struct pend_ent *e;

	while ((e = st->pend)) {
		st->pend = e->next;
		free(e);
	}
	pthread_rwlock_destroy(&st->pend_ns);
	pthread_mutex_destroy(&st->pend_lock);
}

/* Caller holds pend_lock. */
static struct pend_ent *pend_by_ino(struct store *st, uint64_t ino)
{
	for (struct pend_ent *e = st->pend; e; e = e->next)
		if (e->in.ino == ino)
			return e;
	return NULL;
}

static struct pend_ent *pend_by_name(struct store *st, uint64_t parent, const char *name)
{
	for (struct pend_ent *e = st->pend; e; e = e->next)
		if (e->parent == parent && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* Nothing pending (P1a): no lock. */
static int pend_none(struct store *st)
{
	return !st->pend_on || !__atomic_load_n(&st->pend, __ATOMIC_ACQUIRE);
}

static int pend_get_ino(struct store *st, uint64_t ino, struct idx_inode *out)
{
	struct pend_ent *e;

	if (pend_none(st))
		return 0;
	pthread_mutex_lock(&st->pend_lock);
	if ((e = pend_by_ino(st, ino)) && out)
		*out = e->in;
	pthread_mutex_unlock(&st->pend_lock);
	return e != NULL;
}

static int pend_get_name(struct store *st, uint64_t parent, const char *name, struct idx_inode *out)
{
	struct pend_ent *e;

	if (pend_none(st))
		return 0;
	pthread_mutex_lock(&st->pend_lock);
	if ((e = pend_by_name(st, parent, name)))
		*out = e->in;
	pthread_mutex_unlock(&st->pend_lock);
	return e != NULL;
}

int store_pending(struct store *st, uint64_t ino)
{
	return pend_get_ino(st, ino, NULL);
}

/* Put E into T unless T already has its inode (P4). */
static int pend_insert(struct idx_txn *t, const struct pend_ent *e)
{
	struct idx_inode cur, dir;
	uint64_t existing, next;
	int rc = idx_inode_get(t, e->in.ino, &cur);

	if (rc != -ENOENT)
		return rc;             /* 0: merged already */
	rc = get_dir(t, e->parent, &dir);
	if (!rc) {
		rc = idx_dirent_get(t, e->parent, e->name, &existing, NULL);
		rc = rc == 0 ? -EEXIST : (rc == -ENOENT ? 0 : rc);
	}
	if (!rc)
		rc = idx_inode_put(t, &e->in);
	if (!rc)
		rc = idx_dirent_put(t, e->parent, e->name, e->in.ino, e->in.mode & S_IFMT);
	if (!rc) {
		touch_dir(&dir, store_now_ns());
		rc = idx_inode_put(t, &dir);
	}
	if (!rc)
		rc = idx_meta_get_u64(t, "next_ino", &next);
	if (!rc && next <= e->in.ino)
		rc = idx_meta_put_u64(t, "next_ino", e->in.ino + 1);
	if (rc == -EEXIST || rc == -ENOENT || rc == -ENOTDIR) {
		/* P2/P3 make this impossible: say so loudly, keep it pending */
		log_err("pending name %llu/%s (inode %llu) cannot be merged: %s",
			(unsigned long long)e->parent, e->name, (unsigned long long)e->in.ino, strerror(-rc));
		rc = -EIO;
	}
	return rc;
}

/* Merge INO's pending name (0: every one) into T; W collects them. */
static int pend_merge(struct store *st, struct idx_txn *t, uint64_t ino, struct nsw *w)
{
	size_t cap = 0;
	int rc = 0;

	w->inos = NULL;
	w->n = 0;
	if (pend_none(st))
		return 0;
	pthread_mutex_lock(&st->pend_lock);
	for (struct pend_ent *e = st->pend; e && !rc; e = e->next) {
		if (ino && e->in.ino != ino)
			continue;
		if (w->n == cap) {
			uint64_t *n = realloc(w->inos, (cap = cap ? 2 * cap : 8) * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			w->inos = n;
		}
		rc = pend_insert(t, e);
		if (!rc)
			w->inos[w->n++] = e->in.ino;
	}
	pthread_mutex_unlock(&st->pend_lock);
	if (rc) {
		free(w->inos);
		w->inos = NULL;
		w->n = 0;
	}
	return rc;
}

int store_pend_merge_one(struct store *st, struct idx_txn *t, uint64_t ino, struct nsw *w)
{
	return pend_merge(st, t, ino, w);
}

void store_pend_done(struct store *st, struct nsw *w, int committed)
{
	if (committed && w->n) {
		pthread_mutex_lock(&st->pend_lock);
		for (size_t i = 0; i < w->n; i++)
			for (struct pend_ent **pp = &st->pend; *pp; pp = &(*pp)->next)
				if ((*pp)->in.ino == w->inos[i]) {
					struct pend_ent *e = *pp;
					__atomic_store_n(pp, e->next, __ATOMIC_RELEASE);   /* P1a */
					free(e);
					st->pend_gen++;
					break;
				}
		pthread_mutex_unlock(&st->pend_lock);
	}
	free(w->inos);
	w->inos = NULL;
	w->n = 0;
}

int store_nswbegin(struct store *st, struct idx_txn **t, int freeing, struct nsw *w)
{
	int rc;

	w->inos = NULL;
	w->n = 0;
	if (st->pend_on)
		pthread_rwlock_wrlock(&st->pend_ns);
	rc = freeing ? store_wbegin_freeing(st, t) : store_wbegin(st, t);
	if (!rc && (rc = pend_merge(st, *t, 0, w)) != 0) {
		store_wabort(st, *t);
		store_wunlock(st);
	}
	if (rc && st->pend_on)
		pthread_rwlock_unlock(&st->pend_ns);
	return rc;
}

void store_nswunlock(struct store *st, struct nsw *w, int committed)
{
	store_pend_done(st, w, committed);     /* before the gate opens: P4 */
	store_wunlock(st);
	if (st->pend_on)
		pthread_rwlock_unlock(&st->pend_ns);
}

int store_nswend(struct store *st, struct idx_txn *t, int rc, struct nsw *w)
{
	if (rc == 0)
		rc = store_wcommit(st, t);
	else
		store_wabort(st, t);
	store_nswunlock(st, w, rc == 0);
	if (rc == 0)
		dur_after_commit(st);
	return rc;
}

int store_pend_flush(struct store *st)
{
	struct idx_txn *t;
	struct nsw w;
	int rc;

	if (pend_none(st))
		return 0;
	rc = store_nswbegin(st, &t, 0, &w);
	return rc ? rc : store_nswend(st, t, 0, &w);
}

int store_pend_commit(struct store *st, uint64_t ino)
{
	struct idx_txn *t;
	struct nsw w;
	int rc;

	if (!store_pending(st, ino))
		return 0;
	rc = store_wbegin(st, &t);     /* no pend_ns: a merge, as a commit's (P3) */
	if (rc)
		return rc;
	rc = pend_merge(st, t, ino, &w);
	if (!rc)
		rc = store_wcommit(st, t);
	else
		store_wabort(st, t);
	store_pend_done(st, &w, rc == 0);
	store_wunlock(st);
	if (!rc)
		dur_after_commit(st);
	return rc;
}

/* A pending child of DIR? */
static int pend_has_child(struct store *st, uint64_t dir)
{
	int found = 0;

	if (pend_none(st))
		return 0;
	pthread_mutex_lock(&st->pend_lock);
	for (struct pend_ent *e = st->pend; e && !found; e = e->next)
		found = e->parent == dir;
	pthread_mutex_unlock(&st->pend_lock);
	return found;
}

int store_getattr(struct store *st, uint64_t ino, struct idx_inode *out)
{
	struct idx_txn *t;
	int rc;

	if (pend_get_ino(st, ino, out))    /* P1: before the index */
		return 0;
	rc = idx_begin(st->idx, 1, &t);
	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, out);
	idx_abort(t);
	return rc;
}

int store_lookup(struct store *st, uint64_t parent, const char *name, struct idx_inode *out)
{
	struct idx_txn *t;
	struct idx_inode dir;
	uint64_t child;
	int rc;

	if (strlen(name) > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if (pend_get_name(st, parent, name, out))    /* P1: before the index */
		return 0;
	rc = idx_begin(st->idx, 1, &t);
	if (rc)
		return rc;
	rc = get_dir(t, parent, &dir);
	if (!rc)
		rc = idx_dirent_get(t, parent, name, &child, NULL);
	if (!rc)
		rc = idx_inode_get(t, child, out);
	idx_abort(t);
	return rc;
}

static int has_suffix(const char *name, const char *sfx)
{
	size_t n = strlen(name), s = strlen(sfx);
	return n > s && strcasecmp(name + n - s, sfx) == 0;
}

/* The header of a regular file whose header was never set explicitly
 * follows its name: DIR's explicit setting, else 1 for *.csv / *.tsv. */
static uint32_t default_header(const struct idx_inode *dir, const char *name)
{
	if (dir->flags & INODE_F_HDR_SET)
		return dir->header;
	return has_suffix(name, ".csv") || has_suffix(name, ".tsv") ? 1 : 0;
}

/* Fill a new inode: payload settings inherited from DIR. */
static void new_inode(struct idx_inode *in, const struct idx_inode *dir, const char *name,
		      uint32_t mode, uint32_t uid, uint32_t gid, int64_t now)
{
	memset(in, 0, sizeof(*in));
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	in->nlink = 1;
	in->atime_ns = in->mtime_ns = in->ctime_ns = now;
	in->fmt_kind = PFMT_LINES;
	if (dir->flags & INODE_F_FMT_SET) {
		in->fmt_kind = dir->fmt_kind;
		in->fmt_recsize = dir->fmt_recsize;
	}
	if (S_ISREG(mode) || (dir->flags & INODE_F_HDR_SET))
		in->header = default_header(dir, name);
	if (dir->flags & INODE_F_STORAGE_SET)
		in->flags |= dir->flags & INODE_F_MEMORY;
	/* directories pass their explicit settings on */
	if (S_ISDIR(mode))
		in->flags |= dir->flags & (INODE_F_FMT_SET | INODE_F_HDR_SET | INODE_F_STORAGE_SET);
}

/* In T, PARENT is a writable directory (*DIR) without an entry NAME.
 * @return 0, -EEXIST, -ENOTDIR, -EROFS, -errno. */
static int name_free(struct idx_txn *t, uint64_t parent, const char *name, struct idx_inode *dir)
{
	uint64_t existing;
	int rc = get_dir(t, parent, dir);

	if (!rc)
		rc = inode_ro(dir);
	if (!rc) {
		rc = idx_dirent_get(t, parent, name, &existing, NULL);
		rc = rc == 0 ? -EEXIST : (rc == -ENOENT ? 0 : rc);
	}
	return rc;
}

/* Create NAME in PARENT; FILL completes the inode inside the txn. */
static int create_entry(struct store *st, uint64_t parent, const char *name, uint32_t mode,
			uint32_t uid, uint32_t gid, uint64_t rdev, const char *target,
			struct idx_inode *out)
{
	struct idx_txn *t;
	struct idx_inode dir, in;
	int64_t now = store_now_ns();
	struct nsw w;
	int rc = check_name(name);

	if (rc)
		return rc;
	if (reserved_at(parent, name))
		return -EEXIST;
	rc = store_nswbegin(st, &t, 0, &w);
	if (rc)
		return rc;
	rc = name_free(t, parent, name, &dir);
	if (!rc && (dir.mode & S_ISGID)) {
		/* a setgid directory gives its group, and to a new directory
		 * also its setgid bit (as ext4's inode_init_owner); the kernel
		 * already dropped S_ISGID from MODE for a caller outside the
		 * group */
		gid = dir.gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	if (!rc) {
		new_inode(&in, &dir, name, mode, uid, gid, now);
		in.rdev = rdev;
		rc = idx_alloc_ino(t, &in.ino);
	}
	if (!rc && S_ISDIR(mode)) {
		in.nlink = 2;
		in.parent = parent;
		dir.nlink++;
	}
	if (!rc && target) {
		in.size = strlen(target);
		rc = idx_inline_put(t, in.ino, target, in.size);
	}
	if (!rc)
		rc = idx_inode_put(t, &in);
	if (!rc)
		rc = idx_dirent_put(t, parent, name, in.ino, mode & S_IFMT);
	if (!rc) {
		touch_dir(&dir, now);
		rc = idx_inode_put(t, &dir);
	}
	if (rc) {
		store_wabort(st, t);
		store_nswunlock(st, &w, 0);
		return rc;
	}
	rc = store_wcommit(st, t);
	/* the open after a create finds its version (under commit_lock:
	 * pver.c (2), gcommit.c (G6)) */
	if (!rc && S_ISREG(mode) && in.size == 0)
		store_pvcur_set_empty(st, &in);
	store_nswunlock(st, &w, rc == 0);
	if (rc)
		return rc;
	dur_after_commit(st);
	if (out)
		*out = in;
	return 0;
}

int store_create_pending(struct store *st, uint64_t parent, const char *name, uint32_t mode,
			 uint32_t uid, uint32_t gid, struct idx_inode *out)
{
	struct pend_ent *e;
	struct idx_txn *t;
	struct idx_inode dir;
	uint64_t next = 0, gen;
	int64_t now = store_now_ns();
	int rc = check_name(name);

	if (!st->pend_on || !S_ISREG(mode))
		return store_mknod(st, parent, name, mode, 0, uid, gid, out);
	if (rc)
		return rc;
	if (reserved_at(parent, name))
		return -EEXIST;
	if (!(e = calloc(1, sizeof(*e) + strlen(name) + 1)))
		return -ENOMEM;
	strcpy(e->name, name);
	e->parent = parent;
	pthread_rwlock_rdlock(&st->pend_ns);      /* P3 */
again:
	pthread_mutex_lock(&st->pend_lock);
	rc = pend_by_name(st, parent, name) ? -EEXIST : 0;
	gen = st->pend_gen;
	pthread_mutex_unlock(&st->pend_lock);
	if (!rc)
		rc = idx_begin(st->idx, 1, &t);
	if (!rc) {
		rc = name_free(t, parent, name, &dir);
		if (!rc)
			rc = idx_meta_get_u64(t, "next_ino", &next);
		idx_abort(t);
		FAULT_CRASH("pend_read");   /* read done, not re-checked (test_pend hooks it) */
	}
	if (!rc) {
		uint32_t gid2 = gid;
		if (dir.mode & S_ISGID)
			gid2 = dir.gid;          /* invariant (5) */
		new_inode(&e->in, &dir, name, mode, uid, gid2, now);
		pthread_mutex_lock(&st->pend_lock);
		if (pend_by_name(st, parent, name)) {
			rc = -EEXIST;
		} else if (st->pend_gen != gen) {
			/* a merge left st->pend since the read began: its name
			 * may be in the index now but not in what we read (each
			 * retry follows another name's merge: no livelock) */
			pthread_mutex_unlock(&st->pend_lock);
			goto again;
		} else {
			e->in.ino = next > st->ino_mem ? next : st->ino_mem;   /* P5 */
			st->ino_mem = e->in.ino + 1;
			e->next = st->pend;
			__atomic_store_n(&st->pend, e, __ATOMIC_RELEASE);   /* P1a */
		}
		pthread_mutex_unlock(&st->pend_lock);
	}
	pthread_rwlock_unlock(&st->pend_ns);
	if (rc) {
		free(e);
		return rc;
	}
	*out = e->in;
	store_pvcur_set_empty(st, out);    /* the creator's open finds its version */
	return 0;
}

int store_mknod(struct store *st, uint64_t parent, const char *name, uint32_t mode,
		uint64_t rdev, uint32_t uid, uint32_t gid, struct idx_inode *out)
{
	if (S_ISDIR(mode) || S_ISLNK(mode))
		return -EINVAL;
	if (!(mode & S_IFMT))
		mode |= S_IFREG;
	return create_entry(st, parent, name, mode, uid, gid, rdev, NULL, out);
}

int store_mkdir(struct store *st, uint64_t parent, const char *name, uint32_t mode,
		uint32_t uid, uint32_t gid, struct idx_inode *out)
{
	return create_entry(st, parent, name, S_IFDIR | (mode & 07777), uid, gid, 0, NULL, out);
}

int store_symlink(struct store *st, uint64_t parent, const char *name, const char *target,
		  uint32_t uid, uint32_t gid, struct idx_inode *out)
{
	size_t n = strlen(target);

	if (n == 0)
		return -ENOENT;
	if (n >= 4096)
		return -ENAMETOOLONG;
	return create_entry(st, parent, name, S_IFLNK | 0777, uid, gid, 0, target, out);
}

ssize_t store_readlink(struct store *st, uint64_t ino, char *buf, size_t cap)
{
	struct idx_txn *t;
	struct idx_inode in;
	const void *d;
	size_t len = 0;
	int rc = idx_begin(st->idx, 1, &t);

	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (!rc && !S_ISLNK(in.mode))
		rc = -EINVAL;
	if (!rc)
		rc = idx_inline_get(t, ino, &d, &len);
	if (!rc && len >= cap)
		rc = -ENAMETOOLONG;
	if (!rc) {
		memcpy(buf, d, len);
		buf[len] = '\0';
	}
	idx_abort(t);
	return rc ? rc : (ssize_t)len;
}

int store_link(struct store *st, uint64_t ino, uint64_t newparent, const char *newname,
	       struct idx_inode *out)
{
	struct nsw w;
	struct idx_txn *t;
	struct idx_inode dir, in;
	uint64_t existing;
	int64_t now = store_now_ns();
	int rc = check_name(newname);

	if (rc)
		return rc;
	if (reserved_at(newparent, newname))
		return -EEXIST;
	rc = store_nswbegin(st, &t, 0, &w);
	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (!rc)
		rc = inode_ro(&in);
	if (!rc && S_ISDIR(in.mode))
		rc = -EPERM;
	if (!rc && in.nlink >= 65000)
		rc = -EMLINK;
	if (!rc && in.nlink == 0)
		rc = -ENOENT;
	if (!rc)
		rc = get_dir(t, newparent, &dir);
	if (!rc)
		rc = inode_ro(&dir);
	if (!rc) {
		rc = idx_dirent_get(t, newparent, newname, &existing, NULL);
		rc = rc == 0 ? -EEXIST : (rc == -ENOENT ? 0 : rc);
	}
	if (!rc) {
		in.nlink++;
		in.ctime_ns = now;
		rc = idx_inode_put(t, &in);
	}
	if (!rc)
		rc = idx_dirent_put(t, newparent, newname, ino, in.mode & S_IFMT);
	if (!rc) {
		touch_dir(&dir, now);
		rc = idx_inode_put(t, &dir);
	}
	rc = store_nswend(st, t, rc, &w);
	if (!rc && out)
		*out = in;
	return rc;
}

/* Drop one link of non-directory IN (already read) inside T. */
static int drop_link(struct idx_txn *t, struct idx_inode *in, int64_t now)
{
	int rc;

	in->nlink--;
	in->ctime_ns = now;
	rc = idx_inode_put(t, in);
	if (!rc && in->nlink == 0)
		rc = idx_orphan_put(t, in->ino);
	return rc;
}

/* Remove empty directory IN from DIR inside T (the dirent is gone already). */
static int drop_dir(struct idx_txn *t, struct idx_inode *dir, struct idx_inode *in)
{
	struct frag_desc *freed = NULL;
	uint32_t nfreed = 0;
	int rc = idx_dirent_any(t, in->ino);

	if (rc > 0)
		return -ENOTEMPTY;
	if (rc < 0)
		return rc;
	dir->nlink--;
	rc = store_destroy_inode(t, in->ino, &freed, &nfreed);
	free(freed);    /* directories hold no fragments */
	return rc;
}

static int remove_entry(struct store *st, uint64_t parent, const char *name, int want_dir)
{
	struct nsw w;
	struct idx_txn *t;
	struct idx_inode dir, in;
	uint64_t child;
	int64_t now = store_now_ns();
	int rc;

	if (strlen(name) > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	rc = store_nswbegin(st, &t, 1, &w);   /* works on a full file system */
	if (rc)
		return rc;
	rc = get_dir(t, parent, &dir);
	if (!rc)
		rc = inode_ro(&dir);
	if (!rc)
		rc = idx_dirent_get(t, parent, name, &child, NULL);
	if (!rc)
		rc = idx_inode_get(t, child, &in);
	if (!rc && want_dir && !S_ISDIR(in.mode))
		rc = -ENOTDIR;
	if (!rc && !want_dir && S_ISDIR(in.mode))
		rc = -EISDIR;
	if (!rc)
		rc = want_dir ? drop_dir(t, &dir, &in) : drop_link(t, &in, now);
	if (!rc)
		rc = idx_dirent_del(t, parent, name);
	if (!rc) {
		touch_dir(&dir, now);
		rc = idx_inode_put(t, &dir);
	}
	rc = store_nswend(st, t, rc, &w);
	if (!rc && !want_dir && in.nlink == 0)
		store_pvcur_drop(st, in.ino);
	return rc;
}

int store_unlink(struct store *st, uint64_t parent, const char *name)
{
	return remove_entry(st, parent, name, 0);
}

int store_rmdir(struct store *st, uint64_t parent, const char *name)
{
	if (strcmp(name, ".") == 0)
		return -EINVAL;
	if (strcmp(name, "..") == 0)
		return -ENOTEMPTY;
	return remove_entry(st, parent, name, 1);
}

/* 1 when directory ANC is DIR or one of its ancestors. */
static int is_ancestor(struct idx_txn *t, uint64_t anc, uint64_t dir)
{
	for (int depth = 0; depth < 4096; depth++) {
		struct idx_inode in;
		int rc;
		if (dir == anc)
			return 1;
		if (dir == IDX_ROOT_INO)
			return 0;
		rc = idx_inode_get(t, dir, &in);
		if (rc)
			return rc;
		dir = in.parent;
	}
	return -ELOOP;
}

struct rn {
	uint64_t parent, newparent;
	const char *name, *newname;
	struct idx_inode pd, npd, src, dst;
	int have_dst;
	unsigned flags;
	int64_t now;
};

static int rename_check(struct idx_txn *t, struct rn *r)
{
	uint64_t ino;
	int rc;

	if ((rc = get_dir(t, r->parent, &r->pd)) || (rc = get_dir(t, r->newparent, &r->npd)))
		return rc;
	if ((rc = inode_ro(&r->pd)) || (rc = inode_ro(&r->npd)))
		return rc;
	if ((rc = idx_dirent_get(t, r->parent, r->name, &ino, NULL)) ||
	    (rc = idx_inode_get(t, ino, &r->src)))
		return rc;
	rc = idx_dirent_get(t, r->newparent, r->newname, &ino, NULL);
	if (rc && rc != -ENOENT)
		return rc;
	r->have_dst = rc == 0;
	if (r->have_dst && (rc = idx_inode_get(t, ino, &r->dst)))
		return rc;
	if ((r->flags & RENAME_EXCHANGE) && !r->have_dst)
		return -ENOENT;
	if ((r->flags & RENAME_NOREPLACE) && r->have_dst)
		return -EEXIST;
	if (S_ISDIR(r->src.mode) && r->parent != r->newparent) {
		rc = is_ancestor(t, r->src.ino, r->newparent);
		if (rc)
			return rc > 0 ? -EINVAL : rc;
	}
	if ((r->flags & RENAME_EXCHANGE) && S_ISDIR(r->dst.mode) && r->parent != r->newparent) {
		rc = is_ancestor(t, r->dst.ino, r->parent);
		if (rc)
			return rc > 0 ? -EINVAL : rc;
	}
	if (!r->have_dst || (r->flags & RENAME_EXCHANGE))
		return 0;
	if (S_ISDIR(r->src.mode) && !S_ISDIR(r->dst.mode))
		return -ENOTDIR;
	if (!S_ISDIR(r->src.mode) && S_ISDIR(r->dst.mode))
		return -EISDIR;
	return 0;
}

/* Move directory D from one parent to another: fix nlinks and parent. */
static void move_dir(struct idx_inode *d, struct idx_inode *from, struct idx_inode *to)
{
	if (!S_ISDIR(d->mode) || from->ino == to->ino)
		return;
	from->nlink--;
	to->nlink++;
	d->parent = to->ino;
}

/* Write PD and NPD (the same inode when equal: NPD wins). */
static int put_parents(struct idx_txn *t, struct rn *r)
{
	int rc = 0;

	touch_dir(&r->pd, r->now);
	touch_dir(&r->npd, r->now);
	if (r->parent != r->newparent)
		rc = idx_inode_put(t, &r->pd);
	return rc ? rc : idx_inode_put(t, &r->npd);
}

static int rename_exchange(struct idx_txn *t, struct rn *r)
{
	int rc;

	if (r->parent != r->newparent) {
		move_dir(&r->src, &r->pd, &r->npd);
		move_dir(&r->dst, &r->npd, &r->pd);
	}
	r->src.ctime_ns = r->dst.ctime_ns = r->now;
	rc = idx_dirent_put(t, r->parent, r->name, r->dst.ino, r->dst.mode & S_IFMT);
	if (!rc)
		rc = idx_dirent_put(t, r->newparent, r->newname, r->src.ino, r->src.mode & S_IFMT);
	if (!rc)
		rc = idx_inode_put(t, &r->src);
	if (!rc)
		rc = idx_inode_put(t, &r->dst);
	return rc ? rc : put_parents(t, r);
}

static int rename_move(struct idx_txn *t, struct rn *r)
{
	int rc = 0;

	if (r->have_dst) {
		if (S_ISDIR(r->dst.mode)) {
			/* the replaced directory leaves NPD; drop_dir decrements
			 * the nlink of the dir passed */
			rc = drop_dir(t, &r->npd, &r->dst);
		} else {
			rc = drop_link(t, &r->dst, r->now);
		}
		if (rc)
			return rc;
		if (r->parent == r->newparent)
			r->pd.nlink = r->npd.nlink;
	}
	rc = idx_dirent_del(t, r->parent, r->name);
	if (!rc)
		rc = idx_dirent_put(t, r->newparent, r->newname, r->src.ino, r->src.mode & S_IFMT);
	if (rc)
		return rc;
	if (r->parent != r->newparent)
		move_dir(&r->src, &r->pd, &r->npd);
	/* `write x.csv.tmp; mv x.csv.tmp x.csv` gets the header x.csv would */
	if (S_ISREG(r->src.mode) && !(r->src.flags & INODE_F_HDR_SET) && r->src.fmt_kind == PFMT_LINES)
		r->src.header = default_header(&r->npd, r->newname);
	r->src.ctime_ns = r->now;
	rc = idx_inode_put(t, &r->src);
	return rc ? rc : put_parents(t, r);
}

int store_rename(struct store *st, uint64_t parent, const char *name,
		 uint64_t newparent, const char *newname, unsigned flags)
{
	struct rn r = { .parent = parent, .newparent = newparent, .name = name,
			.newname = newname, .flags = flags, .now = store_now_ns() };
	struct idx_txn *t;
	struct nsw w;
	int rc;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (strlen(name) > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	if ((rc = check_name(newname)))
		return rc == -EEXIST ? -EBUSY : rc;
	if (reserved_at(newparent, newname))
		return -EBUSY;
	rc = store_nswbegin(st, &t, 0, &w);
	if (rc)
		return rc;
	rc = rename_check(t, &r);
	if (!rc && r.have_dst && r.dst.ino == r.src.ino) {
		/* same inode (hard links or same name): nothing to do but
		 * commit the merged names, if any */
		rc = store_nswend(st, t, w.n ? 0 : -EALREADY, &w);
		return rc == -EALREADY ? 0 : rc;
	}
	if (!rc)
		rc = (flags & RENAME_EXCHANGE) ? rename_exchange(t, &r) : rename_move(t, &r);
	rc = store_nswend(st, t, rc, &w);
	if (!rc && r.have_dst && !(flags & RENAME_EXCHANGE) && !S_ISDIR(r.dst.mode) && r.dst.nlink == 0)
		store_pvcur_drop(st, r.dst.ino);
	if (!rc && S_ISREG(r.src.mode))
		store_pvcur_drop(st, r.src.ino);   /* its header may follow the new name */
	return rc;
}

int store_forget(struct store *st, uint64_t ino)
{
	return store_forget_unused(st, ino, NULL);
}

int store_forget_unused(struct store *st, uint64_t ino, int (*in_use)(uint64_t ino))
{
	struct frag_desc *freed = NULL;
	uint32_t nfreed = 0;
	struct idx_inode in;
	struct idx_txn *t;
	int rc;

	if (st->rdonly)
		return 0;
	rc = store_wbegin_freeing(st, &t);
	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (rc == -ENOENT || (!rc && in.nlink > 0) || (!rc && S_ISDIR(in.mode)) ||
	    (!rc && in_use && in_use(ino)))
		return store_wend(st, t, -EALREADY) == -EALREADY ? 0 : -EIO;
	if (!rc)
		rc = store_destroy_inode(t, ino, &freed, &nfreed);
	rc = store_wend(st, t, rc);
	if (!rc) {
		store_pvcur_drop(st, ino);
		store_release_list(st, freed, nfreed);
	} else {
		free(freed);
	}
	return rc;
}

int store_setattr(struct store *st, uint64_t ino, const struct idx_inode *a, unsigned mask,
		  struct idx_inode *out)
{
	struct idx_txn *t;
	struct idx_inode in;
	struct nsw w;
	int rc = store_nswbegin(st, &t, 0, &w);

	if (rc)
		return rc;
	rc = idx_inode_get(t, ino, &in);
	if (!rc)
		rc = inode_ro(&in);
	if (!rc && mask == STORE_CLEAR_MODE && !(in.mode & a->mode & 07777)) {
		/* already clear: commit only the merged names, if any */
		rc = store_nswend(st, t, w.n ? 0 : -EALREADY, &w);
		return rc == -EALREADY ? 0 : rc;
	}
	if (!rc) {
		if (mask & STORE_SET_MODE)
			in.mode = (in.mode & S_IFMT) | (a->mode & 07777);
		if (mask & STORE_CLEAR_MODE)
			in.mode &= ~(a->mode & 07777);
		if (mask & STORE_SET_UID)
			in.uid = a->uid;
		if (mask & STORE_SET_GID)
			in.gid = a->gid;
		if (mask & STORE_SET_ATIME)
			in.atime_ns = a->atime_ns;
		if (mask & STORE_SET_MTIME) {
			in.mtime_ns = a->mtime_ns;
			in.mset_ns = store_now_ns();
		}
		in.ctime_ns = (mask & STORE_SET_CTIME) ? a->ctime_ns : store_now_ns();
		rc = idx_inode_put(t, &in);
	}
	rc = store_nswend(st, t, rc, &w);
	if (!rc) {
		store_pvcur_drop(st, ino);
		if (out)
			*out = in;
	}
	return rc;
}

int store_readdir(struct store *st, uint64_t ino, const char *after,
		  int (*cb)(void *arg, const char *name, uint64_t child, uint32_t type), void *arg)
{
	struct idx_txn *t;
	struct idx_inode dir;
	int rc = 0;

	if (!after && pend_has_child(st, ino))
		rc = store_pend_flush(st);     /* P1: a listing shows them, durably */
	if (rc)
		return rc;
	rc = idx_begin(st->idx, 1, &t);
	if (rc)
		return rc;
	rc = get_dir(t, ino, &dir);
	if (!rc)
		rc = idx_dirent_iter(t, ino, after, cb, arg);
	idx_abort(t);
	return rc;
}

/* ---- store_put_many: many objects in one txn ----
 * Invariants: (7) the members of a batch change the index in ONE write txn
 * (one store_wbegin .. store_wcommit): all are visible at once, or, when
 * any member fails, nothing changed (the txn is aborted before anything
 * of it is seen). (8) A replaced object's old data goes in that txn as a
 * commit's does (store_drop_data: references dropped, images whose count
 * reached 0 released only after the txn committed); its version is
 * bumped; its cached version is dropped under commit_lock (pver.c (2)).
 * (9) A member of at most STORE_INLINE_MAX bytes is inline; a larger one
 * is cut into fragments before the txn (putcut.c: row-aligned, encoded,
 * ONE sync of every image of the batch), with the settings its object has
 * (an existing one's, or those a new one gets from its directory); the
 * txn refuses the member (-EBUSY) when those settings changed meanwhile.
 * Any failure deletes every image of the batch (putcut.c (P3)). */
static int put_member(struct idx_txn *t, struct store_put *p, int64_t now,
		      struct putcut *pc, struct putcut_member *m,
		      struct frag_desc **freed, uint32_t *nfreed)
{
	struct idx_inode dir, in;
	uint64_t ino;
	int created = 0;
	int rc = check_name(p->name);

	if (rc == -EEXIST)
		rc = -EINVAL;          /* "." and ".." */
	if (!rc && reserved_at(p->parent, p->name))
		rc = -EINVAL;
	if (!rc)
		rc = get_dir(t, p->parent, &dir);
	if (!rc)
		rc = inode_ro(&dir);
	if (rc)
		return rc;
	rc = idx_dirent_get(t, p->parent, p->name, &ino, NULL);
	if (rc == 0) {
		rc = idx_inode_get(t, ino, &in);
		if (!rc && !S_ISREG(in.mode))
			rc = S_ISDIR(in.mode) ? -EISDIR : -EINVAL;
		if (!rc)
			rc = inode_ro(&in);
		if (!rc)
			rc = store_drop_data(t, ino, freed, nfreed);
	} else if (rc == -ENOENT) {
		new_inode(&in, &dir, p->name, S_IFREG | (p->mode & 07777), p->uid,
			  (dir.mode & S_ISGID) ? dir.gid : p->gid, now);
		rc = idx_alloc_ino(t, &in.ino);
		if (!rc)
			rc = idx_dirent_put(t, p->parent, p->name, in.ino, S_IFREG);
		if (!rc) {
			touch_dir(&dir, now);
			rc = idx_inode_put(t, &dir);
		}
		created = 1;
	}
	if (!rc && (in.flags & INODE_F_MEMORY))
		rc = -EINVAL;          /* storage=memory: not in the index */
	if (!rc && inode_is_fixed(&in) && p->len % in.fmt_recsize)
		rc = -EINVAL;          /* as a commit's check (commit.c) */
	if (!rc && m && (in.fmt_kind != m->fmt.fmt_kind || in.fmt_recsize != m->fmt.fmt_recsize))
		rc = -EBUSY;           /* (9): cut with settings that moved */
	if (!rc && m)
		rc = putcut_fill(pc, t, in.ino, m);
	else if (!rc && p->len)
		rc = idx_inline_put(t, in.ino, p->data, p->len);
	if (rc)
		return rc;
	if (in.fmt_kind == PFMT_FIXED)
		in.header = 0;
	in.size = p->len;
	in.rows = m ? m->rows : rows_in(&in, p->data, p->len);
	in.nfrags = m ? m->n : 0;
	in.flags = p->len && !m ? in.flags | INODE_F_INLINE : in.flags & ~INODE_F_INLINE;
	in.version = created ? 1 : in.version + 1;
	in.ctime_ns = now;
	if (in.mset_ns <= now)
		in.mtime_ns = now;
	p->ino = in.ino;
	return idx_inode_put(t, &in);
}

/* The settings the object P names has now, or a new one would get
 * (9); -EINVAL for what put_member refuses anyway (a check there too). */
static int put_fmt(struct store *st, const struct store_put *p, struct idx_inode *fmt)
{
	struct idx_inode dir;
	struct idx_txn *t;
	uint64_t ino;
	int rc = check_name(p->name);

	if (rc)
		return rc == -EEXIST ? -EINVAL : rc;
	if (reserved_at(p->parent, p->name))
		return -EINVAL;
	if ((rc = idx_begin(st->idx, 1, &t)) != 0)
		return rc;
	rc = get_dir(t, p->parent, &dir);
	if (!rc)
		rc = inode_ro(&dir);
	if (!rc) {
		rc = idx_dirent_get(t, p->parent, p->name, &ino, NULL);
		if (rc == 0) {
			rc = idx_inode_get(t, ino, fmt);
			if (!rc && !S_ISREG(fmt->mode))
				rc = S_ISDIR(fmt->mode) ? -EISDIR : -EINVAL;
		} else if (rc == -ENOENT) {
			new_inode(fmt, &dir, p->name, S_IFREG | 0644, 0, 0, 0);
			rc = 0;
		}
	}
	idx_abort(t);
	if (!rc && (fmt->flags & INODE_F_MEMORY))
		rc = -EINVAL;          /* storage=memory: not in the index */
	if (!rc && inode_is_fixed(fmt) && p->len % fmt->fmt_recsize)
		rc = -EINVAL;
	return rc;
}

int store_put_many(struct store *st, struct store_put *puts, size_t n, size_t *failed)
{
	struct frag_desc *freed = NULL;
	struct putcut_member *ms = NULL;
	struct putcut pc;
	uint32_t nfreed = 0;
	struct idx_txn *t;
	int64_t now = store_now_ns();
	struct nsw w;
	int rc = 0, big = 0;

	*failed = n;
	for (size_t i = 0; i < n; i++) {
		puts[i].ino = 0;
		big |= puts[i].len > STORE_INLINE_MAX;
	}
	if (!n)
		return 0;
	if (st->rdonly)
		return -EROFS;
	putcut_init(&pc, st);
	if (big && !(ms = calloc(n, sizeof(*ms))))
		return -ENOMEM;
	/* (9): every large member's images, then one sync, before the txn */
	for (size_t i = 0; i < n && big && !rc; i++) {
		struct idx_inode fmt;
		if (puts[i].len <= STORE_INLINE_MAX)
			continue;
		rc = put_fmt(st, &puts[i], &fmt);
		if (!rc)
			rc = putcut_member(&pc, &fmt, puts[i].data, puts[i].len, &ms[i]);
		if (rc)
			*failed = i;
	}
	if (!rc && big) {
		rc = putcut_finish(&pc);
		if (!rc)
			FAULT_CRASH("put_txn");   /* images durable, the txn not begun */
	}
	if (!rc)
		rc = store_nswbegin(st, &t, 0, &w);
	if (rc) {
		putcut_discard(&pc);
		free(ms);
		return rc;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		struct putcut_member *m = ms && puts[i].len > STORE_INLINE_MAX ? &ms[i] : NULL;
		rc = put_member(t, &puts[i], now, &pc, m, &freed, &nfreed);
		if (rc)
			*failed = i;
	}
	if (!rc && big)
		rc = idx_meta_put_u64(t, "next_frag", __atomic_load_n(&st->next_frag, __ATOMIC_RELAXED));
	if (rc) {
		store_wabort(st, t);
		store_nswunlock(st, &w, 0);
		putcut_discard(&pc);
		free(ms);
		free(freed);
		return rc;
	}
	rc = store_wcommit(st, t);
	if (!rc)
		for (size_t i = 0; i < n; i++)
			store_pvcur_drop(st, puts[i].ino);   /* (8): under commit_lock */
	store_nswunlock(st, &w, rc == 0);
	if (rc) {
		putcut_discard(&pc);
		free(ms);
		free(freed);
		return rc;
	}
	putcut_free(&pc);
	free(ms);
	dur_after_commit(st);
	store_release_list(st, freed, nfreed);
	__atomic_add_fetch(&st->stats.commits, n, __ATOMIC_RELAXED);
	return 0;
}
