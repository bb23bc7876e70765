/* ops — FUSE low-level operations: translate requests into store calls.
 *
 * Open-file model (DESIGN §4, §5):
 *  (1) Every open handle pins the version it opened (struct fh.pv); reads
 *      of a read-only handle never see later commits.
 *  (2) A handle opened for writing owns a write session (fh.ws): its
 *      writes are staged, invisible to other handles, and committed by
 *      flush (close), fsync or release. O_WRONLY handles and views use
 *      direct I/O.
 *  (2a) An O_RDWR handle of an object (the only kind that can be mapped
 *      for writing) uses the page cache of its node, without keep_cache:
 *      a writer is alone on its node (fnode.h), and a reader that opens
 *      the node after it (a stale dentry) drops those pages first
 *      (FN_PC_FRESH: no keep_cache), so staged bytes are never served to
 *      anyone else. So MAP_SHARED works: the kernel writes dirty pages back as
 *      WRITE requests with fi->writepage set through this handle (at
 *      msync(MS_SYNC) and fsync before FSYNC, close(2) before FLUSH,
 *      munmap, and its own write-back), staged like writes; they commit
 *      at the next fsync/msync, close, or at release (the munmap that
 *      drops the last reference after the close). A write-back WRITE
 *      takes its offset as given (not O_APPEND's end) and clears no
 *      setuid bit.
 *  (3) Each version of a regular file is its own FUSE node (fnode.h): the
 *      kernel keeps one page cache and one i_size per node, so a node's
 *      cached bytes are always its version's bytes. A read-only handle
 *      opened on the node of the CURRENT version uses the page cache with
 *      keep_cache (re-reads at page-cache speed across opens, for as long
 *      as the version lasts). A handle opened on the node of an older
 *      version (a dentry the kernel had not revalidated yet) reads the
 *      current version with direct I/O: the node's pages belong to its own
 *      version. A writer is alone on its node, so readers opened while it
 *      is open use the page cache of theirs as well; on a node a writer
 *      had, the open drops the pages first (2a). -o direct_io makes every
 *      read handle, and every write handle, use direct I/O.
 *  (3a) A commit (close, fsync, truncate, a format change) queues, for
 *      every node and name the kernel may cache for the object, an
 *      attribute invalidation and an entry invalidation (notify.h: sent by
 *      a dedicated thread; the committing call waits for delivery at most
 *      NOTIFY_WAIT_MS). The next lookup then returns the new version's
 *      node. Correctness never depends on these notices: a stale node
 *      always opens the current version with direct I/O.
 *  (3c) The close (or fsync) that committed waits for its notices only
 *      when the kernel may hold unexpired attributes of one of the
 *      object's nodes: fnode.h fn_attrs_cached, which knows every reply
 *      that handed a node's attributes out with a timeout (entries made by
 *      lookup, readdirplus, create; getattr), or when one of its nodes has
 *      page-cache readers open: such a node answers getattr for its own
 *      version (3b), so a stat through an entry the kernel still holds for
 *      it would show the old size until the entry notice lands. Otherwise
 *      a stale entry is answered right anyway (3a, 3b). A file created and
 *      written through one fd, which nobody else looked up, is such a
 *      case: its create's reply does not cache its attributes (it is a
 *      writer's node), so its close returns without the wait (the notices
 *      are still sent). Waits are counted: .stats "notify_waits".
 *  (3b) getattr of a node answers for its version while page-cache
 *      readers of that version are open (their i_size must stay theirs),
 *      else for the object's current version (so fstat of a writer's fd
 *      shows the committed size). With a file handle (reads, lseek) it
 *      answers for that handle's content. Attributes are not cached by the
 *      kernel while writers are open (their direct writes extend i_size).
 *  (4) Views are resolved on lookup (never listed) and re-resolved against
 *      the current version at every open and getattr; they always use
 *      direct I/O.
 *  (5) Reads are answered from pinned cache buffers (fuse_reply_iov, no
 *      copy); sequential readers get read-ahead (pver_readahead).
 *  (6) Streams (DESIGN §5, §9; docs/design.md "Streams"): a reader follows
 *      its object while it only grows, so `tail -f` and `less +F` work.
 *      (a) Who moves. A commit whose new version N keeps every byte of the
 *          version F = N - 1 it replaced (pver_extends: decided by the
 *          commit from its segment list under commit_lock, commit.c (9))
 *          moves every file node that shows F, has read handles and no
 *          writer, to N (fn_follow), and every read handle of such a node
 *          that pins F to N (F is a range [pver_extends_from(N), N - 1]
 *          when recompression swaps made the versions before N: (h)).
 *          Nothing else moves: after a rewrite, a shrink
 *          or a commit whose base was overtaken, readers keep their
 *          version as in (1); readers of an older version than F are on
 *          older nodes and stay; views, @meta and writers never follow;
 *          a RADOS follower's applied commits move nobody (not built).
 *      (b) What a follower may see. At any moment a follower's handle pins
 *          one version, and every version it ever pinned is a prefix of
 *          the next (each move is to an append of the version it had): a
 *          read never returns bytes that differ from what an earlier read
 *          returned at the same offset, and never a byte no commit
 *          published. A commit that moves a handle is one the writer's
 *          close(2) or fsync(2) made: fsync publishes what was written so
 *          far (it commits, (2)), including a last row without '\n'.
 *      (c) Page cache. A node's pages stay valid across a move: they hold
 *          a prefix of the new version, except the page that held the old
 *          end (zeros past it). So a move queues notify_grow (the node's
 *          attributes, its pages from the old end's page on, then (f)); the
 *          committing close/fsync waits for delivery (NOTIFY_WAIT_MS at
 *          most) when anything moved. The kernel's next size check (fstat
 *          from tail's poll, or a page-cache read at the old end: the
 *          mount has AUTO_INVAL_DATA) then asks GETATTR, which answers the
 *          node's new size ((3b): it is the current version now), and the
 *          kernel's size moves up; if it learnt the size from a GETATTR
 *          instead, a size change drops the node's pages anyway. i_size of
 *          a node only ever grows by a move, never shrinks: (3b) holds.
 *      (d) Ordering. Handles move first, then the node, all under
 *          follow_lock held exclusively; GETATTR computes its answer under
 *          it shared, so it answers all-F or all-N, never the moved
 *          handle's N beside the node's F (the kernel would take F after
 *          N: i_size shrinking under a follower). And the kernel never
 *          learns N's size while a handle of the node can still return
 *          F's shorter bytes (a short read there would shrink i_size).
 *          Every read open holds it shared from its version pin to its
 *          count on the node, so a reader that pinned F but is not yet on
 *          the node's handle list is never left behind on a moved node.
 *          What remains: the kernel drops a GETATTR reply that crossed an
 *          invalidation (attr_version), so for a moment after a move
 *          fstat(2) and lseek(SEEK_END) of a follower may disagree, each
 *          showing F's or N's size (docs/design.md "Streams").
 *      (e) A lookup after the move returns the moved node unless it is
 *          sealed (it usually is: a writer's open refused on it sealed
 *          it); an open through a cached dentry of it may use its page
 *          cache (keep_cache): its pages are N's prefix and the notice
 *          dropped the rest.
 *      (f) The kernel must know N's size before anyone asks: the
 *          VFS clamps copy_file_range to the cached i_size and a mapping
 *          faults with SIGBUS past it, neither asking GETATTR. So
 *          notify_grow also stores N's last byte (FUSE_NOTIFY_STORE),
 *          which moves the node's i_size to N's at once.
 *      (g) Moves in commit order: two appends N and N + 1 may both commit
 *          before either moves anyone, and N + 1's move may run first,
 *          finding nobody on N. So a move goes on from the version it
 *          reached to the object's current one while that is the next
 *          version and marked extends (follow_append); checked under the
 *          exclusive hold, so an append that commits after the check
 *          moves them itself. Three or more moves out of order, or a
 *          current version loaded cold (no flag), stop them earlier.
 *      (h) Swaps (index/recompress.c (S7)). The background recompression
 *          gives an object a new version N with exactly the bytes and
 *          size of N - 1; it is marked extends like an append, with
 *          pver_extends_from(N) the first of the run of such versions,
 *          and announced through the store's change callback
 *          (STORE_CHANGE_SWAP, on the recompressor's thread, after its
 *          txn and commit_lock, as a commit's close announces its own),
 *          which moves followers exactly as (a), (d), (g) say, from any
 *          version of the run. The size does not change, so a moved node
 *          gets an attribute notice only (its pages are N's bytes). A
 *          commit overtaken by swaps only is an append of the whole run
 *          (commit.c (9)): a writer held open across a swap, or a swap's
 *          move that runs after a later append's, still moves everyone
 *          (the chase goes on to any current version whose run covers
 *          the version reached). RADOS stores never stage: no swaps.
 */
#include "fs/ops.h"
#include "fs/fnode.h"
#include "fs/killpriv.h"
#include "fs/notify.h"
#include "fs/snapshots.h"
#include "index/store.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define ENTRY_TIMEOUT 60.0   /* long: every change that moves a name or a version is invalidated (3a) */
#define ATTR_TIMEOUT  60.0
#define IO_BLKSIZE    (1024 * 1024)  /* st_blksize: what tools use as their read size */
#define IO_MAX        (1024 * 1024)  /* largest READ / WRITE request */

enum fh_kind { FH_OBJ, FH_VIEW, FH_META };

struct fh {
	enum fh_kind kind;
	struct pver *pv;          /* pinned version (read-only handles); a
				   * reader's moves on an append (6): read
				   * it under ra_lock (fh_pver) */
	struct wsess *ws;         /* write session, or NULL */
	struct view_map vm;       /* FH_VIEW */
	char *meta;               /* FH_META (and .stats): the JSON */
	size_t meta_len;
	int append;
	uint64_t ino;             /* the object (FH_OBJ) */
	uint64_t nodeid;          /* the node it was opened on */
	int pc;                   /* uses the page cache (fn_open_read) */
	int reader;               /* FH_OBJ read handle: counted in fn_open_read */
	int failed;               /* a commit failed: close(2) returned its error */
	int writer;               /* FH_OBJ write handle: counted in fn_open_write */
	uint64_t kp_seen;         /* kill_privs: the epoch the object had no setuid/setgid */
	pthread_mutex_t ra_lock;  /* the kernel may send reads of one handle at once */
	struct readahead ra;      /* protected by ra_lock */
	struct fh *prev, *next;   /* on live_fh; protected by live_lock */
};

struct dh {
	size_t n;
	struct dent { char *name; uint64_t ino; uint32_t type; } *v;
	struct dh *prev, *next;   /* on live_dh; protected by live_lock */
};

/* Every handle from its allocation to its free. The kernel drops queued
 * background requests when it unmounts, and RELEASE is one, so the handle
 * of a close(2) right before an unmount may never be released: pfs_destroy
 * frees what is left (LeakSanitizer saw such handles, found by the crash
 * tests). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
/* (6d) Shared: a read open, from its version pin to its count on the
 * node. Exclusive: a follower move. Taken before live_lock, fn_lock and
 * any store lock; never held while a commit runs. */
#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
/* writer-preferring: a stream of GETATTRs and opens never holds a
 * committing close off (nobody takes it twice in one thread) */
static pthread_rwlock_t follow_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
#else
static pthread_rwlock_t follow_lock = PTHREAD_RWLOCK_INITIALIZER;
#endif
static struct fh *live_fh;     /* protected by live_lock */
static struct dh *live_dh;     /* protected by live_lock */

#define LIVE_ADD(head, h) do { \
		pthread_mutex_lock(&live_lock); \
		(h)->prev = NULL; \
		(h)->next = (head); \
		if (head) \
			(head)->prev = (h); \
		(head) = (h); \
		pthread_mutex_unlock(&live_lock); \
	} while (0)
#define LIVE_DEL(head, h) do { \
		pthread_mutex_lock(&live_lock); \
		if ((h)->prev) \
			(h)->prev->next = (h)->next; \
		else \
			(head) = (h)->next; \
		if ((h)->next) \
			(h)->next->prev = (h)->prev; \
		pthread_mutex_unlock(&live_lock); \
	} while (0)

/* The synthetic directories (.by-id, .snapshots): no real entry is made
 * or removed in them but for snapshots (mkdir/rmdir in .snapshots). */
static int synthetic_dir(uint64_t ino)
{
	return ino == FN_BYID_INO || ino == FN_SNAPS_INO;
}

/* The synthetic files of the root: .stats (JSON) and .metrics (Prometheus
 * text); read-only, no xattrs, never removed or linked. */
static int stats_file(uint64_t ino)
{
	return ino == FN_STATS_INO || ino == FN_METRICS_INO;
}

/* The text of stats file INO, malloc'd. @return 0 or -ENOMEM. */
static int stats_text(struct pfs *p, uint64_t ino, char **out, size_t *len)
{
	return ino == FN_METRICS_INO ? pfs_metrics_text(p, out, len) : pfs_stats_json(p, out, len);
}

static struct pfs *pfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fh *)(uintptr_t)fi->fh;
}

/* ---- attributes ---- */

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static void fill_stat(const struct idx_inode *in, struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = in->ino;
	s->st_mode = in->mode;
	s->st_nlink = in->nlink;
	s->st_uid = in->uid;
	s->st_gid = in->gid;
	s->st_rdev = in->rdev;
	s->st_size = (off_t)in->size;
	s->st_blksize = IO_BLKSIZE;
	s->st_blocks = (blkcnt_t)((in->size + 511) / 512);
	if (S_ISDIR(in->mode))
		s->st_size = 4096, s->st_blocks = 8;
	ns_to_ts(in->atime_ns, &s->st_atim);
	ns_to_ts(in->mtime_ns, &s->st_mtim);
	ns_to_ts(in->ctime_ns, &s->st_ctim);
}

static void byid_stat(struct stat *s)
{
	memset(s, 0, sizeof(*s));
	s->st_ino = FN_BYID_INO;
	s->st_mode = S_IFDIR | 0555;
	s->st_nlink = 2;
	s->st_size = 4096;
}

/* The .stats or .metrics file: its size is the length of its text right
 * now. */
static int stats_stat(struct pfs *p, uint64_t ino, struct stat *s)
{
	char *j;
	size_t len;
	int rc = stats_text(p, ino, &j, &len);

	if (rc)
		return rc;
	free(j);
	memset(s, 0, sizeof(*s));
	s->st_ino = ino;
	s->st_mode = S_IFREG | 0444;
	s->st_nlink = 1;
	s->st_size = (off_t)len;
	s->st_blksize = IO_BLKSIZE;
	return 0;
}

/* Size of view node NODEID (V, from fn_view) of PV; *META gets the JSON
 * for @meta views. A row view is resolved once per version of its object
 * and kept on its node (fnode.h: fnode_view.map). */
static int view_attr(struct pver *pv, uint64_t nodeid, const struct fnode_view *v, uint64_t *size,
		     struct view_map *vm, char **meta, size_t *meta_len)
{
	const struct view_spec *sp = &v->spec;
	const struct idx_inode *in = pver_inode(pv);
	int rc;

	if (sp->kind == VIEW_META) {
		char *m;
		size_t len;
		rc = view_meta_json(pv, &m, &len);
		if (rc)
			return rc;
		*size = len;
		if (meta) {
			*meta = m;
			*meta_len = len;
		} else {
			free(m);
		}
		return 0;
	}
	if (v->map_ok && v->map_version == in->version && v->map_header == in->header) {
		*vm = v->map;
		*size = view_size(vm);
		(void)pver_head_load(pv, vm->hdr_len);   /* PV may be another copy of the version */
		return 0;
	}
	rc = view_resolve(pv, sp, vm);
	if (!rc) {
		*size = view_size(vm);
		fn_view_set_map(nodeid, in->version, in->header, vm);
	}
	return rc;
}

/* LOOKUP of a row view: start loading its fragments (at most this many
 * bytes of them, read-ahead budget permitting) before resolving it, so
 * that the two the resolve scans and the ones between go out together
 * and keep loading while the kernel goes on to open and read
 * (docs/benchmarks.md, views). */
#define VIEW_LOOKUP_PREFETCH ((uint64_t)8 << 20)

/* Attributes of view INO (object BASE); PREFETCH: a LOOKUP (see above). */

static int view_stat(struct pfs *p, uint64_t ino, const struct fnode_view *v, struct stat *s,
		     int prefetch)
{
	struct pver *pv;
	struct view_map vm;
	uint64_t size = 0;
	int rc = store_pver_get(p->st, v->base, &pv);

	if (rc)
		return rc;
	if (v->spec.kind == VIEW_PARTDIR) {
		fill_stat(pver_inode(pv), s);
		s->st_ino = ino;
		s->st_mode = S_IFDIR | 0555;
		s->st_nlink = 0;   /* see below */
		s->st_size = 4096;
		s->st_blocks = 8;
		pver_put(pv);
		return 0;
	}
	if (prefetch)   /* rows and part views only; present fragments are skipped */
		view_prefetch(pv, &v->spec, VIEW_LOOKUP_PREFETCH);
	rc = view_attr(pv, ino, v, &size, &vm, NULL, NULL);
	if (!rc) {
		fill_stat(pver_inode(pv), s);
		s->st_ino = ino;
		/* no directory holds a view: with nlink 0 the kernel evicts
		 * (and forgets) a view inode as soon as it is unused, so
		 * the view table holds only the views in use (fnode.h) */
		s->st_nlink = 0;
		s->st_size = (off_t)size;
		s->st_blocks = (blkcnt_t)((size + 511) / 512);
		if (v->spec.kind != VIEW_ROWS)
			s->st_mode &= ~(mode_t)0222;
	}
	pver_put(pv);
	return rc;
}

/* Attributes of node NODEID (fh.h (3b) without a handle). *TIMEOUT gets
 * how long the kernel may cache them. */
static int do_stat(struct pfs *p, uint64_t nodeid, struct stat *s, double *timeout)
{
	struct fnode_file f;
	struct idx_inode in;
	struct fnode_view v;
	uint64_t wsize;
	int rc;

	*timeout = ATTR_TIMEOUT;
	if (nodeid == FN_BYID_INO) {
		byid_stat(s);
		return 0;
	}
	if (stats_file(nodeid)) {
		*timeout = 0;
		return stats_stat(p, nodeid, s);
	}
	if (nodeid == FN_SNAPS_INO) {
		*timeout = 0;
		return snaps_stat(p, s);
	}
	if (fn_is_view(nodeid)) {
		*timeout = 0;
		rc = fn_view(nodeid, &v);
		return rc ? rc : view_stat(p, nodeid, &v, s, 0);
	}
	if (!fn_is_file(nodeid)) {
		rc = store_getattr(p->st, nodeid, &in);
		if (!rc)
			fill_stat(&in, s);
		return rc;
	}
	if ((rc = fn_file(nodeid, &f)) || (rc = store_getattr(p->st, f.ino, &in)))
		return rc;
	if (fn_writer_size(nodeid, &wsize)) {
		/* the writer's own node (fnode.h): its staged size */
		in.size = wsize;
		fill_stat(&in, s);
		*timeout = 0;
		return 0;
	}
	if (in.version != f.version && f.readers) {
		/* readers of this node's version: keep their size (a smaller
		 * one would truncate their mappings) */
		in.size = f.size;
		in.mtime_ns = f.mtime_ns;
	}
	fill_stat(&in, s);
	/* a node of an older version answers differently for its readers
	 * (their handle's size, asked with the handle) and for stat (the
	 * committed size): never cache one for the other (lseek SEEK_END of
	 * a reader uses the cached size) */
	if (fn_writers(f.ino) || in.version != f.version)
		*timeout = 0;
	return 0;
}

/* ---- lookup ---- */

/* Fill E for inode IN reached as PARENT/NAME by thread TID (0: none),
 * counting one lookup of its node (fnode.h: a regular file's current
 * version, or a node reserved for TID's retry; else the inode).
 * @return 0 or -ENOMEM. */
static int make_entry_w(uint64_t parent, const char *name, const struct idx_inode *in, uint64_t tid,
			int writer, struct fuse_entry_param *e)
{
	uint64_t nodeid = in->ino;
	int rc = S_ISREG(in->mode) ? fn_ref_file(parent, name, in, tid, &nodeid) : fn_ref_real(in->ino);
	int reserved = rc == 1;

	memset(e, 0, sizeof(*e));
	if (rc < 0)
		return rc;
	e->ino = nodeid;
	e->generation = 1;
	e->entry_timeout = ENTRY_TIMEOUT;
	e->attr_timeout = S_ISREG(in->mode) && (writer || reserved || fn_writers(in->ino)) ? 0 : ATTR_TIMEOUT;
	fill_stat(in, &e->attr);
	fn_attr_cached(nodeid, e->attr_timeout);   /* (3c) */
	return 0;
}

static int make_entry(uint64_t parent, const char *name, const struct idx_inode *in, uint64_t tid,
		      struct fuse_entry_param *e)
{
	return make_entry_w(parent, name, in, tid, 0, e);
}

/* Drop the lookup make_entry counted (the reply did not reach the kernel). */
static void unmake_entry(struct pfs *p, const struct fuse_entry_param *e)
{
	uint64_t gone = fn_forget(e->ino, 1);

	if (gone)
		store_forget_unused(p->st, gone, fn_in_use);
}

static void reply_entry(fuse_req_t req, uint64_t parent, const char *name, const struct idx_inode *in)
{
	struct fuse_entry_param e;

	if (make_entry(parent, name, in, (uint64_t)fuse_req_ctx(req)->pid, &e)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (fuse_reply_entry(req, &e) == -ENOENT)
		unmake_entry(pfs_of(req), &e);   /* the request was interrupted */
}

/* Object BASE (regular file) + view suffix NAME@SFX, looked up as NAME in
 * PARENT. The kernel is then asked to drop the dentry (notify_entry): a view
 * inode lives only while it is in use, so the view table stays small. */
static void lookup_view(fuse_req_t req, uint64_t parent, const char *name, uint64_t base,
			const char *sfx, const struct view_spec *sp)
{
	struct pfs *p = pfs_of(req);
	struct fuse_entry_param e;
	struct fnode_view v = { .base = base, .spec = *sp };
	uint64_t ino;
	int rc;

	memset(&e, 0, sizeof(e));
	if ((rc = fn_ref_view(base, sfx, sp, &ino))) {
		fuse_reply_err(req, -rc);
		return;
	}
	(void)fn_view(ino, &v);     /* with the map resolved earlier, if any */
	rc = view_stat(p, ino, &v, &e.attr, 1);
	if (rc) {
		fn_forget(ino, 1);
		fuse_reply_err(req, rc == -EISDIR ? ENOENT : -rc);
		if (fn_is_view(parent))   /* see lookup_part */
			(void)notify_entry(parent, name);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		fn_forget(ino, 1);
	else
		(void)notify_entry(parent, name);   /* not waited for */
}

/* The synthetic entries of the root: .by-id, .stats and .snapshots.
 * @return 1 when NAME is one (and the reply was sent). */
static int lookup_synthetic(fuse_req_t req, const char *name)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (strcmp(name, ".by-id") == 0) {
		e.ino = FN_BYID_INO;
		e.entry_timeout = e.attr_timeout = ENTRY_TIMEOUT;
		byid_stat(&e.attr);
	} else if (strcmp(name, ".stats") == 0 || strcmp(name, ".snapshots") == 0 ||
		   strcmp(name, ".metrics") == 0) {
		int snaps = name[1] == 's' && name[2] == 'n';
		uint64_t ino = snaps ? FN_SNAPS_INO : name[1] == 'm' ? FN_METRICS_INO : FN_STATS_INO;
		int rc = snaps ? snaps_stat(pfs_of(req), &e.attr) : stats_stat(pfs_of(req), ino, &e.attr);
		if (rc) {
			fuse_reply_err(req, -rc);
			return 1;
		}
		e.ino = ino;
	} else {
		return 0;
	}
	fuse_reply_entry(req, &e);
	return 1;
}

/* NAME inside a `NAME@part=K` directory: the view part K of N. */
static void lookup_part(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fnode_view v;
	struct view_spec sp;
	char sfx[64];
	int rc = fn_view(parent, &v);

	if (!rc && v.spec.kind != VIEW_PARTDIR)
		rc = -ENOTDIR;
	if (!rc)
		rc = view_part_child(&v.spec, name, &sp);
	if (rc) {
		fuse_reply_err(req, -rc);
		/* the negative dentry would pin the part directory's node */
		(void)notify_entry(parent, name);
		return;
	}
	snprintf(sfx, sizeof(sfx), "part=%llu/%llu", (unsigned long long)sp.k, (unsigned long long)sp.n);
	lookup_view(req, parent, name, v.base, sfx, &sp);
}

static void pfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pfs *p = pfs_of(req);
	struct view_spec sp;
	struct idx_inode in;
	size_t blen;
	int rc, isview;

	fn_lookup_begin((uint64_t)fuse_req_ctx(req)->pid);
	if (strlen(name) > IDX_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (parent == FUSE_ROOT_ID && lookup_synthetic(req, name))
		return;
	if (fn_is_view(parent)) {
		lookup_part(req, parent, name);
		return;
	}
	if (parent == FN_SNAPS_INO) {
		rc = snaps_lookup(p, name, &in);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			reply_entry(req, parent, name, &in);
		return;
	}
	isview = view_parse(name, &blen, &sp);
	if (isview < 0) {
		fuse_reply_err(req, -isview);
		return;
	}
	if (parent == FN_BYID_INO) {
		uint64_t id;
		rc = view_parse_id(name, blen, &id);
		if (!rc)
			rc = id < IDX_FIRST_INO ? -ENOENT : store_getattr(p->st, id, &in);
		if (!rc && !S_ISREG(in.mode))
			rc = -ENOENT;
	} else if (isview) {
		char base[IDX_NAME_MAX + 1];
		memcpy(base, name, blen);
		base[blen] = '\0';
		rc = store_lookup(p->st, parent, base, &in);
		if (!rc && !S_ISREG(in.mode))
			rc = -ENOENT;
	} else {
		rc = store_lookup(p->st, parent, name, &in);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (isview)
		lookup_view(req, parent, name, in.ino, name + blen + 1, &sp);
	else
		reply_entry(req, parent, name, &in);
}

static void forget_one(struct pfs *p, uint64_t nodeid, uint64_t n)
{
	uint64_t gone;

	if (nodeid == FN_BYID_INO || stats_file(nodeid) || nodeid == FN_SNAPS_INO || nodeid == FUSE_ROOT_ID)
		return;
	if ((gone = fn_forget(nodeid, n)))
		store_forget_unused(p->st, gone, fn_in_use);
}

static void pfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(pfs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void pfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fv)
{
	for (size_t i = 0; i < count; i++)
		forget_one(pfs_of(req), fv[i].ino, fv[i].nlookup);
	fuse_reply_none(req);
}

static uint64_t fh_size(struct fh *h);

static void pfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat s;
	double timeout;
	int rc;
	struct fh *h = fi ? fh_of(fi) : NULL;

	pfs_tune_read_ahead(pfs_of(req));
	if (h && h->kind == FH_VIEW && !h->ws) {
		/* a read handle of a row view answers from its own version
		 * and map: never resolved again (views: timeout 0, so the
		 * kernel asks at every size check) */
		fill_stat(pver_inode(h->pv), &s);
		s.st_ino = ino;
		s.st_nlink = 0;     /* view_stat */
		s.st_size = (off_t)view_size(&h->vm);
		s.st_blocks = (blkcnt_t)((s.st_size + 511) / 512);
		struct fnode_view v;
		if (fn_view(ino, &v) || v.spec.kind != VIEW_ROWS)
			s.st_mode &= ~(mode_t)0222;
		fuse_reply_attr(req, &s, 0);
		return;
	}
	/* (6d): never answered halfway through a follower move */
	pthread_rwlock_rdlock(&follow_lock);
	rc = do_stat(pfs_of(req), ino, &s, &timeout);
	if (rc) {
		pthread_rwlock_unlock(&follow_lock);
		fuse_reply_err(req, -rc);
		return;
	}
	if (h) {
		/* the kernel passes the handle on reads and lseek (size
		 * checks): answer with the handle's own content (staged, or
		 * its version); cache it only when it is the node's size */
		off_t own = (off_t)(h->ws ? wsess_size(h->ws) :
				    h->kind == FH_VIEW ? view_size(&h->vm) :
				    h->kind == FH_META ? h->meta_len : fh_size(h));
		if (own != s.st_size)
			timeout = 0;
		s.st_size = own;
		s.st_blocks = (blkcnt_t)((s.st_size + 511) / 512);
		if (h->ws)
			timeout = 0;
	}
	pthread_rwlock_unlock(&follow_lock);
	fn_attr_cached(ino, timeout);   /* (3c) */
	fuse_reply_attr(req, &s, timeout);
}

/* ---- after a commit ---- */

/* Object INO has a new version: queue attribute notices for its nodes and
 * entry notices for its names (ops.c (3a)); with WAIT, return once they
 * were delivered (at most NOTIFY_WAIT_MS). EXCEPT (0 = none) is a node
 * whose attributes the caller's own reply refreshes. */
static void after_commit(uint64_t ino, uint64_t except, int wait)
{
	struct fn_names n;
	uint64_t ticket = 0;

	if (fn_object_refs(ino, &n))
		return;
	for (size_t i = 0; i < n.nnodes; i++)
		if (n.nodes[i] != except)
			ticket = notify_attr(n.nodes[i]);
	for (size_t i = 0; i < n.nnames; i++)
		ticket = notify_entry(n.parents[i], n.names[i]);
	fn_names_free(&n);
	if (wait)
		notify_wait(ticket);
}

/* ---- setuid and setgid on data changes (killpriv.h) ---- */

/* Bumped before every chmod reaches the store and again after it: a
 * handle that saw its object without setuid/setgid bits at epoch E need
 * not look again while the epoch is E (nothing but chmod sets a bit on an
 * existing object; a look that raced a chmod saw an epoch that the second
 * bump moves on). */
static atomic_uint_fast64_t mode_epoch = 1;

/* The caller of REQ changes the data of object INO (write, O_TRUNC,
 * truncate, fallocate, copy_file_range): clear the bits a local file
 * system clears (killpriv.h). *SEEN (may be NULL) caches, per handle, the
 * epoch at which the object had neither bit.
 * @return 0, or -errno from the store (the change must then fail, as a
 *   failed file_remove_privs fails it on ext4). */
/* The caller of REQ for the rule, about a file of MODE and group GID
 * (GROUPS: room for 256 supplementary groups, read only when needed). */
static struct kp_caller kp_caller_of(fuse_req_t req, uint32_t mode, uint32_t gid, uint32_t *groups)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct kp_caller c = { .fsgid = (uint32_t)ctx->gid };
	gid_t gl[256];

	c.capable = kp_capable((uint32_t)ctx->pid);
	if (!c.capable && kp_need_groups(mode, gid, c.fsgid)) {
		int n = fuse_req_getgroups(req, 256, gl);
		for (int i = 0; i < n && i < 256; i++)
			groups[i] = (uint32_t)gl[i];
		c.groups = groups;
		c.ngroups = n > 0 ? (size_t)(n < 256 ? n : 256) : 0;
	}
	return c;
}

/* The setuid/setgid bits a chown of INO by REQ's caller clears (rule (4)
 * of killpriv.h), or 0. */
static uint32_t chown_kill(fuse_req_t req, uint64_t ino)
{
	struct idx_inode in;
	uint32_t groups[256];
	struct kp_caller c;

	if (store_getattr(pfs_of(req)->st, ino, &in) || !(in.mode & (S_ISUID | S_ISGID)))
		return 0;
	c = kp_caller_of(req, in.mode, in.gid, groups);
	return kp_chown_mask(in.mode, in.gid, &c);
}

static int kill_privs(fuse_req_t req, uint64_t ino, uint64_t *seen)
{
	struct pfs *p = pfs_of(req);
	uint64_t epoch = atomic_load(&mode_epoch);
	struct kp_caller c;
	struct idx_inode in, a;
	uint32_t groups[256], kill;
	int rc;

	if (seen && *seen == epoch)
		return 0;
	rc = store_getattr(p->st, ino, &in);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	if (!S_ISREG(in.mode) || !(in.mode & (S_ISUID | S_ISGID))) {
		if (seen)
			*seen = epoch;
		return 0;
	}
	c = kp_caller_of(req, in.mode, in.gid, groups);
	if (!(kill = kp_kill_mask(in.mode, in.gid, &c)))
		return 0;
	memset(&a, 0, sizeof(a));
	a.mode = kill;
	rc = store_setattr(p->st, ino, &a, STORE_CLEAR_MODE, NULL);
	if (!rc)
		after_commit(ino, 0, 0);   /* every node's mode (not waited for) */
	return rc;
}

/* ---- a follower of a RADOS store (docs/rados.md), and swaps ---- */

static size_t follow_append(struct store *st, uint64_t ino, struct pver *nv);

void pfs_applied(void *arg, const struct store_change *c)
{
	char name[IDX_NAME_MAX + 1];

	switch (c->kind) {
	case STORE_CHANGE_INODE:
		after_commit(c->ino, 0, 0);      /* a file object's nodes and names */
		(void)notify_attr(c->ino);       /* a directory's node id is its inode number */
		break;
	case STORE_CHANGE_DIRENT:
		if (c->name_len > IDX_NAME_MAX)
			break;
		memcpy(name, c->name, c->name_len);
		name[c->name_len] = '\0';
		fn_name_gone(c->parent, name);   /* the next lookup asks the index */
		(void)notify_entry(c->parent, name);
		break;
	case STORE_CHANGE_ALL:
		log_info("the index was replaced (a base was loaded, or a snapshot changed): names and "
			 "attributes the kernel caches are refreshed at their next lookup");
		break;
	case STORE_CHANGE_SWAP:          /* (6h): followers move as after an append */
		(void)follow_append(((struct pfs *)arg)->st, c->ino, c->pv);
		after_commit(c->ino, 0, 0);      /* next lookups: the new version's node */
		break;
	}
}

/* ---- setattr ---- */

/* truncate(2) of NODEID (through handle H when it has a session). A
 * commit without a handle is announced like any other (after_commit). */
static int set_size(struct pfs *p, fuse_ino_t nodeid, struct fh *h, uint64_t size)
{
	struct fnode_view v = { 0 };
	int rc;

	if (h && h->ws)
		return wsess_truncate(h->ws, size);
	if (fn_is_view(nodeid))
		rc = fn_view(nodeid, &v);
	else if (!(v.base = fn_ino(nodeid)))
		rc = -ENOENT;
	else
		rc = 0;
	if (!rc)
		rc = store_truncate(p->st, v.base, fn_is_view(nodeid) ? &v.spec : NULL, size);
	if (!rc)
		after_commit(v.base, nodeid, 1);
	return rc;
}

static void pfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct pfs *p = pfs_of(req);
	struct fh *h = fi ? fh_of(fi) : NULL;
	struct idx_inode a;
	unsigned mask = 0;
	int rc = 0;

	if (p->rdonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (ino == FN_BYID_INO || stats_file(ino) || ino == FN_SNAPS_INO ||
	    (fn_is_view(ino) && (to_set & ~(FUSE_SET_ATTR_SIZE)))) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		struct fnode_view v;
		uint64_t obj = !fn_is_view(ino) ? fn_ino(ino) : fn_view(ino, &v) == 0 ? v.base : 0;
		rc = obj ? kill_privs(req, obj, NULL) : 0;   /* truncate(2), ftruncate(2) */
		if (!rc)
			rc = set_size(p, ino, h, (uint64_t)attr->st_size);
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		atomic_fetch_add(&mode_epoch, 1);
	memset(&a, 0, sizeof(a));
	if (to_set & FUSE_SET_ATTR_MODE)
		mask |= STORE_SET_MODE, a.mode = attr->st_mode;
	if (to_set & FUSE_SET_ATTR_UID)
		mask |= STORE_SET_UID, a.uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		mask |= STORE_SET_GID, a.gid = attr->st_gid;
	/* chown: setuid/setgid as the kernel clears them (killpriv.h (4);
	 * with FUSE_HANDLE_KILLPRIV it leaves that to us), in the same txn */
	if ((mask & (STORE_SET_UID | STORE_SET_GID)) && !(mask & STORE_SET_MODE) && !fn_is_view(ino) &&
	    fn_ino(ino) && (a.mode = chown_kill(req, fn_ino(ino))) != 0)
		mask |= STORE_CLEAR_MODE;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		mask |= STORE_SET_ATIME, a.atime_ns = store_now_ns();
	else if (to_set & FUSE_SET_ATTR_ATIME)
		mask |= STORE_SET_ATIME,
		a.atime_ns = (int64_t)attr->st_atim.tv_sec * 1000000000 + attr->st_atim.tv_nsec;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		mask |= STORE_SET_MTIME, a.mtime_ns = store_now_ns();
	else if (to_set & FUSE_SET_ATTR_MTIME)
		mask |= STORE_SET_MTIME,
		a.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
	if (!rc && (mask || (to_set & FUSE_SET_ATTR_CTIME)) && !fn_is_view(ino)) {
		uint64_t target = fn_ino(ino);
		rc = target ? store_setattr(p->st, target, &a, mask, NULL) : -ENOENT;
		if (mask & (STORE_SET_MODE | STORE_CLEAR_MODE))
			atomic_fetch_add(&mode_epoch, 1);   /* and after: see kill_privs */
		if (!rc && fn_is_file(ino))
			after_commit(target, ino, 0);   /* other nodes of the object: mode, times */
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	pfs_getattr(req, ino, fi);
}

/* ---- namespace changes ---- */

static void pfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct idx_inode in;
	int rc = synthetic_dir(parent) || fn_is_view(parent) ? -EPERM :
		 store_mknod(p->st, parent, name, mode, rdev, c->uid, c->gid, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, parent, name, &in);
}

static void pfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct idx_inode in;
	int rc = parent == FN_SNAPS_INO ? snaps_create(p, name, &in) :
		 parent == FN_BYID_INO || fn_is_view(parent) ? -EPERM :
		 store_mkdir(p->st, parent, name, mode, c->uid, c->gid, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, parent, name, &in);
}

static void pfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct idx_inode in;
	int rc = synthetic_dir(parent) || fn_is_view(parent) ? -EPERM :
		 store_symlink(p->st, parent, name, link, c->uid, c->gid, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, parent, name, &in);
}

static void pfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	ssize_t n = fn_is_view(ino) || fn_is_file(ino) || synthetic_dir(ino) || stats_file(ino) ? -EINVAL :
		    store_readlink(pfs_of(req)->st, ino, buf, sizeof(buf));

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_readlink(req, buf);
}

static void pfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct idx_inode in;
	uint64_t target = fn_is_view(ino) ? 0 : fn_ino(ino);
	int rc = !target || synthetic_dir(ino) || stats_file(ino) || synthetic_dir(newparent) ||
		 fn_is_view(newparent) ? -EPERM : store_link(pfs_of(req)->st, target, newparent, newname, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, newparent, newname, &in);
}

/* 1 when PARENT/NAME is a synthetic entry of the root (.by-id, .stats,
 * .snapshots), which nothing may remove, move or replace: it would hide a
 * real entry. */
static int is_synthetic(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && (strcmp(name, ".by-id") == 0 || strcmp(name, ".stats") == 0 ||
					  strcmp(name, ".snapshots") == 0 || strcmp(name, ".metrics") == 0);
}

static void pfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc = synthetic_dir(parent) || is_synthetic(parent, name) ? -EPERM :
		 view_name_reserved(name) ? -EPERM : store_unlink(pfs_of(req)->st, parent, name);

	if (!rc)
		fn_name_gone(parent, name);
	fuse_reply_err(req, -rc);
}

static void pfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc = parent == FN_SNAPS_INO ? snaps_drop(pfs_of(req), name) :
		 parent == FN_BYID_INO ? -EPERM :
		 (parent == FUSE_ROOT_ID && (strcmp(name, ".by-id") == 0 || strcmp(name, ".snapshots") == 0)) ? -EBUSY :
		 store_rmdir(pfs_of(req)->st, parent, name);

	fuse_reply_err(req, -rc);
}

static void pfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	int rc;

	if (synthetic_dir(parent) || synthetic_dir(newparent))
		rc = -EPERM;
	else if (is_synthetic(parent, name) || is_synthetic(newparent, newname))
		rc = -EBUSY;
	else if (view_name_reserved(name))
		rc = -EINVAL;
	else
		rc = store_rename(pfs_of(req)->st, parent, name, newparent, newname, flags);
	if (!rc)
		fn_name_rename(parent, name, newparent, newname, !!(flags & RENAME_EXCHANGE));
	fuse_reply_err(req, -rc);
}

/* ---- files ---- */

static void fh_free(struct fh *h)
{
	if (!h)
		return;
	LIVE_DEL(live_fh, h);
	if (h->reader)
		fn_close_read(h->nodeid, h->pc);
	if (h->writer)
		fn_close_write(h->nodeid, h->ino);
	wsess_free(h->ws);
	pver_put(h->pv);
	free(h->meta);
	pthread_mutex_destroy(&h->ra_lock);
	free(h);
}

static struct fh *fh_new(uint64_t nodeid, int flags)
{
	struct fh *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	LIVE_ADD(live_fh, h);
	h->nodeid = nodeid;
	h->append = !!(flags & O_APPEND);
	pthread_mutex_init(&h->ra_lock, NULL);
	return h;
}

/* The .stats or .metrics file NODEID: a snapshot of its text at open. */
static int fh_open_stats(struct pfs *p, uint64_t nodeid, int flags, struct fh **out)
{
	struct fh *h;
	int rc;

	*out = NULL;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	if (!(h = fh_new(nodeid, flags)))
		return -ENOMEM;
	h->kind = FH_META;
	rc = stats_text(p, nodeid, &h->meta, &h->meta_len);
	if (rc) {
		fh_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* Open object or view NODEID with FLAGS for thread TID into a new handle;
 * *DIRECT and *KEEP say how the kernel should treat its reads.
 * @return 0, -ESTALE (fnode.h: the kernel retries on a fresh node), -errno. */
static int fh_open(struct pfs *p, fuse_ino_t nodeid, int flags, uint64_t tid, struct fh **out,
		   int *keep, int *direct)
{
	int wr = (flags & O_ACCMODE) != O_RDONLY, trunc = wr && (flags & O_TRUNC);
	struct fnode_view v = { .base = fn_is_view(nodeid) ? 0 : fn_ino(nodeid) };
	struct fh *h;
	uint64_t size;
	int rc = 0;

	*out = NULL;
	*keep = 0;
	*direct = 1;
	if (stats_file(nodeid))
		return fh_open_stats(p, nodeid, flags, out);
	if (!(h = fh_new(nodeid, flags)))
		return -ENOMEM;
	if (!wr)   /* (6d): from the version pin to the count on the node */
		pthread_rwlock_rdlock(&follow_lock);
	if (fn_is_view(nodeid) && (rc = fn_view(nodeid, &v)) == 0)
		h->kind = v.spec.kind == VIEW_META ? FH_META : FH_VIEW;
	if (!rc && !v.base)
		rc = -ENOENT;
	if (!rc && v.spec.kind == VIEW_PARTDIR)
		rc = -EISDIR;
	if (!rc && wr && (p->rdonly || h->kind == FH_META || (h->kind == FH_VIEW && v.spec.kind != VIEW_ROWS)))
		rc = -EROFS;
	if (!rc)
		rc = store_pver_get(p->st, v.base, &h->pv);
	if (!rc && wr)
		rc = store_wsess_begin(p->st, h->pv, h->kind == FH_VIEW ? &v.spec : NULL, trunc, &h->ws);
	if (!rc && wr && h->kind == FH_OBJ) {
		h->ino = v.base;
		rc = fn_open_write(nodeid, v.base, tid, h->ws);   /* -ESTALE: the node has handles */
		h->writer = !rc;
		/* (2a) an O_RDWR writer may be mapped MAP_SHARED: the page
		 * cache of its node (it is alone there) holds its content */
		if (!rc && (flags & O_ACCMODE) == O_RDWR && p->page_cache)
			*direct = 0;
	}
	if (!rc && !wr && h->kind != FH_OBJ) {
		rc = view_attr(h->pv, nodeid, &v, &size, &h->vm, &h->meta, &h->meta_len);
		/* a view is read whole more often than not: start loading its
		 * rows now, one batch (as far as the read-ahead budget goes) */
		if (!rc && h->kind == FH_VIEW)
			pver_prefetch(h->pv, h->vm.rows_off, h->vm.rows_off + h->vm.rows_len);
	} else if (!rc && !wr) {
		h->ino = v.base;
		rc = fn_open_read(nodeid, pver_inode(h->pv), p->page_cache, tid, &h->pc);
		h->reader = !rc;
		if (h->pc) {
			/* the node's pages are this version's: keep them,
			 * unless a writer left its own there (FN_PC_FRESH) */
			*direct = 0;
			*keep = h->pc == FN_PC_KEEP;
		}
	}
	if (!wr)
		pthread_rwlock_unlock(&follow_lock);
	if (rc == -EISDIR && fn_is_view(nodeid))
		rc = -ENOENT;
	if (rc) {
		fh_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* The object whose data handle H changes (its session's). */
static uint64_t fh_object(const struct fh *h)
{
	return h->ws ? pver_inode(wsess_base(h->ws))->ino : h->ino;
}

static void pfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h;
	int keep, direct, rc;

	pfs_tune_read_ahead(pfs_of(req));
	if (synthetic_dir(ino)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	rc = fh_open(pfs_of(req), ino, fi->flags, (uint64_t)fuse_req_ctx(req)->pid, &h, &keep, &direct);
	if (!rc && h->ws && (fi->flags & O_TRUNC) && (rc = kill_privs(req, fh_object(h), NULL)))
		fh_free(h);              /* open(O_TRUNC) clears setuid/setgid like truncate(2) */
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = direct;
	fi->keep_cache = keep;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_free(h);
}

static void pfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct pfs *p = pfs_of(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct idx_inode in;
	struct fh *h = NULL;
	int keep, direct, rc;

	if (synthetic_dir(parent) || fn_is_view(parent)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* the name is pending until the first close or fsync commits it
	 * with the content: one txn per small file (index/ns.c P1-P6) */
	rc = store_create_pending(p->st, parent, name, S_IFREG | (mode & 07777), c->uid, c->gid, &in);
	/* a new file opened for writing: its node is a writer's, whose
	 * attributes are not cached (3b, 3c), already in the create's reply */
	if (!rc && (rc = make_entry_w(parent, name, &in, 0, (fi->flags & O_ACCMODE) != O_RDONLY, &e)) == 0) {
		rc = fh_open(p, e.ino, fi->flags, (uint64_t)c->pid, &h, &keep, &direct);
		if (rc)
			unmake_entry(p, &e);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = direct;
	fi->keep_cache = keep;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		fh_free(h);
		unmake_entry(p, &e);
	}
}

/* A reference to the version handle H reads now (a follower's moves, (6)). */
static struct pver *fh_pver(struct fh *h)
{
	struct pver *pv;

	pthread_mutex_lock(&h->ra_lock);
	pv = h->pv ? pver_ref(h->pv) : NULL;
	pthread_mutex_unlock(&h->ra_lock);
	return pv;
}

/* The size of the version handle H reads now. */
static uint64_t fh_size(struct fh *h)
{
	uint64_t size;

	pthread_mutex_lock(&h->ra_lock);
	size = pver_inode(h->pv)->size;
	pthread_mutex_unlock(&h->ra_lock);
	return size;
}

/* Read-ahead for handle H after a read of [OFF, OFF+N) of its content. */
static void read_ahead(struct fh *h, uint64_t off, size_t n)
{
	uint64_t a = off, limit = UINT64_MAX;

	if (h->kind == FH_VIEW) {
		/* the rows part of [OFF, OFF+N), in object bytes: a read that
		 * starts in the header (the first READ) reads rows from
		 * rows_off on, not the object's own first bytes */
		if (off + n <= h->vm.hdr_len)
			return;     /* header bytes: nothing sequential yet */
		if (off < h->vm.hdr_len) {
			n -= (size_t)(h->vm.hdr_len - off);
			off = h->vm.hdr_len;
		}
		a = view_object_offset(&h->vm, off);
		limit = h->vm.rows_off + h->vm.rows_len;
	}
	pthread_mutex_lock(&h->ra_lock);
	pver_readahead(h->pv, &h->ra, a, n, limit);
	pthread_mutex_unlock(&h->ra_lock);
}

static void pfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	struct pver *pv;
	struct rvec v;
	ssize_t n;
	uint64_t t0;

	/* The kernel may complete this READ, let the file be closed and send
	 * RELEASE (which frees H) while the reply's writev still runs, so no
	 * reply points into memory that only H keeps alive: the JSON is
	 * copied, and the version is referenced until the reply returned. */
	(void)ino;
	if (h->kind == FH_META) {   /* @meta and .stats: a snapshot in memory */
		size_t at = (uint64_t)off >= h->meta_len ? h->meta_len : (size_t)off;
		size_t len = size < h->meta_len - at ? size : h->meta_len - at;
		char *copy = malloc(len ? len : 1);
		if (!copy) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memcpy(copy, h->meta + at, len);
		fuse_reply_buf(req, copy, len);
		free(copy);
		return;
	}
	if (h->ws) {                /* staged content: copied out of the session */
		char *buf = malloc(size ? size : 1);
		n = buf ? wsess_read(h->ws, buf, size, (uint64_t)off) : -ENOMEM;
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
		return;
	}
	t0 = hist_now_ns();
	pv = fh_pver(h);            /* inline bytes live in the version; a
				     * follower's handle may move meanwhile (6) */
	/* read-ahead first: the next fragments load while this READ's do */
	if (size > 0)
		read_ahead(h, (uint64_t)off, size);
	rvec_init(&v);
	n = h->kind == FH_VIEW ? view_read_vec(pv, &h->vm, (uint64_t)off, size, &v)
			       : pver_read_vec(pv, (uint64_t)off, size, &v);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		rvec_release(&v);       /* a failed read may have grown it (or pinned some) */
		pver_put(pv);
		return;
	}
	hist_observe(&pfs_of(req)->read_lat, hist_now_ns() - t0);
	fuse_reply_iov(req, v.iov, (int)v.n);
	rvec_release(&v);
	pver_put(pv);
}

static void pfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int rc;

	(void)ino;
	if (!h->ws) {
		fuse_reply_err(req, EBADF);
		return;
	}
	/* page write-back of a shared mapping (writepage) is no write(2):
	 * its offsets are the pages', and it clears no setuid bit */
	if (!fi->writepage && (rc = kill_privs(req, fh_object(h), &h->kp_seen))) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (h->append && !fi->writepage)
		off = (off_t)wsess_size(h->ws);
	rc = wsess_write(h->ws, buf, size, (uint64_t)off);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/* copy_file_range(2): the destination handle's session references the
 * source's bytes (wsess_copy: fragments shared by id at commit, no bytes
 * moved); a source with a session of its own (O_RDWR) or a @meta/.stats
 * snapshot is copied as bytes. Errors as ext4 would give them: EBADF (no
 * write handle, O_APPEND), EINVAL (flags, overlapping ranges of one
 * object), EFBIG; a range past the source's end copies less (0 at it). */
#define COPY_MAX 0x7ffff000ull   /* the most one call copies (Linux's MAX_RW_COUNT) */

static ssize_t copy_range_fh(struct fh *in, uint64_t off_in, struct fh *out, uint64_t off_out, uint64_t len)
{
	uint64_t in_ino, out_ino = pver_inode(wsess_base(out->ws))->ino;

	if (in->kind == FH_META) {
		uint64_t at = off_in < in->meta_len ? off_in : in->meta_len;
		size_t n = len < in->meta_len - at ? (size_t)len : (size_t)(in->meta_len - at);
		int rc = n ? wsess_write(out->ws, in->meta + at, n, off_out) : 0;
		return rc ? rc : (ssize_t)n;
	}
	struct pver *src;
	ssize_t n;

	if (in->ws) {
		in_ino = pver_inode(wsess_base(in->ws))->ino;
		if (in->kind == FH_OBJ && out->kind == FH_OBJ && in_ino == out_ino &&
		    off_out < off_in + len && off_in < off_out + len)
			return -EINVAL;      /* as the kernel says for one inode */
		return wsess_copy_sess(out->ws, in->ws, off_in, len, off_out);
	}
	src = fh_pver(in);           /* a follower's moves (6): never in->pv itself */
	in_ino = pver_inode(src)->ino;
	if (in->kind == FH_OBJ && out->kind == FH_OBJ && in_ino == out_ino &&
	    off_out < off_in + len && off_in < off_out + len)
		n = -EINVAL;                 /* as the kernel says for one inode */
	else
		n = wsess_copy(out->ws, src, in->kind == FH_VIEW ? &in->vm : NULL, off_in, len, off_out);
	pver_put(src);
	return n;
}

static void pfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
				fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len,
				int flags)
{
	struct fh *in = fh_of(fi_in), *out = fh_of(fi_out);
	ssize_t n;

	(void)ino_in;
	(void)ino_out;
	if (flags)
		n = -EINVAL;
	else if (!out->ws || out->append || (in->kind == FH_OBJ && !in->pv && !in->ws))
		n = -EBADF;
	else if (off_in < 0 || off_out < 0)
		n = -EINVAL;
	else if (len && (n = kill_privs(req, fh_object(out), &out->kp_seen)) < 0)
		;                        /* the destination's setuid/setgid: as write(2) */
	else
		n = copy_range_fh(in, (uint64_t)off_in, out, (uint64_t)off_out, len < COPY_MAX ? len : COPY_MAX);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* fallocate(2) on a write handle, staged in its session like a write
 * (store.h wsess_allocate, wsess_zero): modes 0 and KEEP_SIZE check the
 * space and extend the content where asked, PUNCH_HOLE and ZERO_RANGE
 * write zeros (the store keeps no holes). COLLAPSE_RANGE and INSERT_RANGE
 * (which the kernel does not pass to FUSE anyway), UNSHARE_RANGE and
 * anything else are EOPNOTSUPP. The answer is never ENOSYS: the kernel
 * would take it as "no fallocate" for the whole mount. */
static void pfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			  struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int keep = !!(mode & FALLOC_FL_KEEP_SIZE), rc;

	(void)ino;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		rc = -EOPNOTSUPP;
	else if ((mode & FALLOC_FL_PUNCH_HOLE) && (!keep || (mode & FALLOC_FL_ZERO_RANGE)))
		rc = -EOPNOTSUPP;        /* as vfs_fallocate says (it answers first) */
	else if (off < 0 || len <= 0)
		rc = -EINVAL;
	else if (!h->ws)
		rc = -EBADF;
	else if ((rc = kill_privs(req, fh_object(h), &h->kp_seen)) == 0)
		rc = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)
		     ? wsess_zero(h->ws, (uint64_t)off, (uint64_t)len, keep)
		     : wsess_allocate(h->ws, (uint64_t)off, (uint64_t)len, keep);
	fuse_reply_err(req, -rc);
}

/* Whether handle H is a reader on one of NODES[0..N). */
static int on_nodes(const struct fh *h, const uint64_t *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (h->nodeid == nodes[i])
			return 1;
	return 0;
}

/* (6a) Move the read handles on NODES[0..N) of object INO that pin a
 * version in [LO, NV's - 1] to NV. @return 0, or -ENOMEM (nothing moved). */
static int follow_handles(uint64_t ino, uint64_t lo, struct pver *nv, const uint64_t *nodes, size_t n)
{
	struct pver **old = NULL;
	size_t cnt = 0, k = 0;
	struct fh *h;

	pthread_mutex_lock(&live_lock);
	for (h = live_fh; h; h = h->next)
		cnt += h->reader && h->ino == ino && on_nodes(h, nodes, n);
	if (cnt && !(old = malloc(cnt * sizeof(*old)))) {
		pthread_mutex_unlock(&live_lock);
		return -ENOMEM;
	}
	for (h = live_fh; h && k < cnt; h = h->next) {
		if (!h->reader || h->ino != ino || !on_nodes(h, nodes, n))
			continue;
		pthread_mutex_lock(&h->ra_lock);
		if (pver_inode(h->pv)->version >= lo && pver_inode(h->pv)->version < pver_inode(nv)->version) {
			old[k++] = h->pv;
			h->pv = pver_ref(nv);
		}
		pthread_mutex_unlock(&h->ra_lock);
	}
	pthread_mutex_unlock(&live_lock);
	for (size_t i = 0; i < k; i++)
		pver_put(old[i]);    /* outside the locks: may unpin */
	free(old);
	return 0;
}

/* (6a) Move the followers of versions [pver_extends_from(TO), TO - 1]
 * of object INO (its nodes that show one, and their handles that pin
 * one) to TO. Under follow_lock held exclusively. @return the number of
 * nodes that moved (their notices are queued). */
static size_t follow_step(uint64_t ino, struct pver *to)
{
	uint64_t hi = pver_inode(to)->version - 1, lo = pver_extends_from(to), old_size, *nodes = NULL;
	size_t n = 0, moved = 0;

	if (fn_followers(ino, lo, hi, &nodes, &n) == 0 && n &&
	    follow_handles(ino, lo, to, nodes, n) == 0) {
		/* (6d): the handles first, then their nodes */
		for (size_t i = 0; i < n; i++)
			if (fn_follow(nodes[i], lo, hi, pver_inode(to), &old_size)) {
				/* (6h): a swap's same size: attributes only */
				if (old_size == pver_inode(to)->size)
					(void)notify_attr(nodes[i]);
				else
					(void)notify_grow(nodes[i], old_size, to);
				moved++;
			}
	}
	free(nodes);
	return moved;
}

/* (6) Object INO's new version NV was committed: when it keeps every
 * byte of the version it replaced, that version's readers follow it.
 * (6g) Two appends N and N + 1 may commit before either moves anyone, and
 * N + 1's move may run first (it finds nobody on N yet): so once readers
 * reached a version, they go on to the object's current version while
 * that is an append of the one they reached (the flag of the version the
 * store holds in memory as current, store_pver_cached; a version that is
 * not the next one, or none in memory, stops them there). Checked under the same
 * exclusive hold: an append that commits after the check moves them
 * itself, since its move comes after this one.
 * @return the number of node moves (their notices are queued). */
static size_t follow_append(struct store *st, uint64_t ino, struct pver *nv)
{
	struct pver *at, *cur;
	size_t moved = 0, step;

	if (!pver_extends(nv))
		return 0;
	if (FAULT("follow_delay"))
		sleep(1);    /* tests: this move comes after a later append's (6g) */
	pthread_rwlock_wrlock(&follow_lock);
	at = pver_ref(nv);
	while ((step = follow_step(ino, at)) > 0) {
		moved += step;
		if (!(cur = store_pver_cached(st, ino)))
			break;       /* a cold one has no flag: no index read here */
		if (pver_inode(cur)->version <= pver_inode(at)->version || !pver_extends(cur) ||
		    pver_extends_from(cur) > pver_inode(at)->version) {
			pver_put(cur);
			break;
		}
		pver_put(at);
		at = cur;
	}
	pthread_rwlock_unlock(&follow_lock);
	if (moved)
		log_debug("object %llu: version %llu appends to %llu: readers of it follow to %llu (%zu node move(s))",
			  (unsigned long long)ino, (unsigned long long)pver_inode(nv)->version,
			  (unsigned long long)pver_inode(nv)->version - 1,
			  (unsigned long long)pver_inode(at)->version, moved);
	pver_put(at);
	return moved;
}

/* Commit a dirty handle, then tell the kernel the object changed (its
 * nodes' attributes and its names: ops.c (3a)); readers of the replaced
 * version follow an append (6). */
static int commit_handle(struct pfs *p, struct fh *h)
{
	struct pver *nv = NULL;
	uint64_t t0, dt;
	int rc;

	if (!h->ws || !wsess_dirty(h->ws))   /* a pending name still gets committed */
		return h->ino && !p->rdonly ? store_pend_commit(p->st, h->ino) : 0;
	t0 = hist_now_ns();
	rc = wsess_commit_ref(h->ws, &nv);
	dt = hist_now_ns() - t0;
	h->failed = rc != 0;
	if (!rc && nv) {
		/* NV, not the session's base: a concurrent flush of the same
		 * handle (two duplicates closed at once) may move that on */
		uint64_t ino = pver_inode(nv)->ino;

		hist_observe(&p->commit_lat, dt);
		log_debug("object %llu: committed in %.3f ms", (unsigned long long)h->ino, (double)dt / 1e6);
		/* (6c): a follower's next read or fstat must see the rows, so
		 * wait when nodes moved (their notices come before these) */
		size_t moved = follow_append(p->st, ino, nv);
		after_commit(ino, 0, moved || fn_attrs_cached(ino));   /* (3c) */
	}
	pver_put(nv);
	return rc;
}

static void pfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -commit_handle(pfs_of(req), fh_of(fi)));
}

/* fsync(2): commit, then make it durable (an index flush, shared with
 * concurrent callers: store_sync). */
static void pfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int rc = commit_handle(pfs_of(req), fh_of(fi));

	(void)ino;
	(void)datasync;
	if (!rc && !pfs_of(req)->rdonly)
		rc = store_sync(pfs_of(req)->st);
	fuse_reply_err(req, -rc);
}

/* Every close(2) flushes (and commits) before release; what is still dirty
 * here after a failed commit was refused to the application and is
 * discarded — never committed behind its back. */
static void pfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(fi);
	int rc = 0;

	if (h->ws && wsess_dirty(h->ws) && h->failed) {
		log_warn("object %llu: discarding writes whose commit failed at close",
			 (unsigned long long)h->ino);
		/* a new file's name stays: committed empty, or kept pending
		 * (visible here, retried by the next namespace change and at
		 * unmount) when that fails too (index/ns.c P6) */
		if (h->ino && (rc = store_pend_commit(pfs_of(req)->st, h->ino)) != 0)
			log_err("object %llu: its new name could not be committed either: %s",
				(unsigned long long)h->ino, strerror(-rc));
		rc = 0;
	} else {
		rc = commit_handle(pfs_of(req), h);
	}
	if (rc)
		log_err("object %llu: commit at release failed: %s (%s)", (unsigned long long)h->ino,
			strerror(-rc), log_errname(rc));
	(void)ino;
	fh_free(h);
	fuse_reply_err(req, 0);
}

/* ---- directories ---- */

static int dh_add(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct dh *d = arg;
	struct dent *v;

	if (!(d->n & (d->n + 1)) || d->n == 0) {
		v = realloc(d->v, (d->n * 2 + 2) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
	}
	if (!(d->v[d->n].name = strdup(name)))
		return -ENOMEM;
	d->v[d->n].ino = child;
	d->v[d->n].type = type;
	d->n++;
	return 0;
}

static void dh_free(struct dh *d)
{
	if (!d)
		return;
	LIVE_DEL(live_dh, d);
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d);
}

static void pfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dh *d = calloc(1, sizeof(*d));
	int rc = d ? 0 : -ENOMEM;

	if (d)
		LIVE_ADD(live_dh, d);
	if (!rc && fn_is_view(ino)) {
		struct fnode_view v;
		rc = fn_view(ino, &v);
		if (!rc && v.spec.kind != VIEW_PARTDIR)
			rc = -ENOTDIR;
	}
	if (!rc)
		rc = dh_add(d, ".", ino, S_IFDIR);
	if (!rc)
		rc = dh_add(d, "..", ino, S_IFDIR);   /* the kernel fixes up ".." */
	if (!rc && ino == FN_SNAPS_INO)
		rc = snaps_list(pfs_of(req), dh_add, d);
	else if (!rc && ino != FN_BYID_INO && !fn_is_view(ino))
		rc = store_readdir(pfs_of(req)->st, ino, NULL, dh_add, d);
	/* a real /.snapshots of an older store is hidden by the synthetic one */
	for (size_t i = 2; !rc && ino == FUSE_ROOT_ID && i < d->n; i++)
		if (strcmp(d->v[i].name, ".snapshots") == 0) {
			free(d->v[i].name);
			memmove(&d->v[i], &d->v[i + 1], (d->n - i - 1) * sizeof(d->v[0]));
			d->n--;
			break;
		}
	if (rc) {
		dh_free(d);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dh_free(d);
}

static void pfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dh *d = (struct dh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat s = { .st_ino = d->v[i].ino, .st_mode = d->v[i].type };
		size_t n = fuse_add_direntry(req, buf + used, size - used, d->v[i].name, &s, (off_t)i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* Undo the lookups counted for the entries of a readdirplus reply that
 * did not reach the kernel. */
static void unmake_entries(struct pfs *p, const uint64_t *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t gone = fn_forget(nodes[i], 1);
		if (gone)
			store_forget_unused(p->st, gone, fn_in_use);
	}
}

static void pfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	struct pfs *p = pfs_of(req);
	struct dh *d = (struct dh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	uint64_t *counted = calloc(size / 24 + 1, sizeof(*counted));   /* an entry takes > 24 bytes */
	size_t used = 0, nc = 0;

	if (!buf || !counted) {
		free(buf);
		free(counted);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		const char *name = d->v[i].name;
		size_t need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		struct fuse_entry_param e;
		struct idx_inode in;
		int dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;

		if (need > size - used)
			break;
		/* "." and ".." (and entries that went meanwhile) get no lookup */
		if (!dots && !fn_is_view(ino) && ino != FN_BYID_INO &&
		    store_getattr(p->st, d->v[i].ino, &in) == 0 && make_entry(ino, name, &in, 0, &e) == 0) {
			counted[nc++] = e.ino;
		} else {
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = d->v[i].ino;
			e.attr.st_mode = d->v[i].type;
		}
		fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)i + 1);
		used += need;
	}
	if (fuse_reply_buf(req, buf, used) == -ENOENT)
		unmake_entries(p, counted, nc);
	free(buf);
	free(counted);
}

static void pfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dh_free((struct dh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void pfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino; (void)datasync; (void)fi;
	/* namespace changes are committed at once; this makes them durable */
	fuse_reply_err(req, pfs_of(req)->rdonly ? 0 : -store_sync(pfs_of(req)->st));
}

static void pfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs s;
	int rc = store_statfs(pfs_of(req)->st, &s);

	(void)ino;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &s);
}

/* ---- xattrs ---- */

/* The index inode behind NODEID for xattr calls, or 0 (synthetic entries
 * and views have no xattrs). */
static uint64_t xattr_target(fuse_ino_t nodeid)
{
	if (synthetic_dir(nodeid) || stats_file(nodeid) || fn_is_view(nodeid))
		return 0;
	return fn_ino(nodeid);
}

#define STATS_XATTR "user.payload.stats"

static void pfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	struct pfs *p = pfs_of(req);
	uint64_t target = xattr_target(ino);
	uint64_t before = 0;
	struct idx_inode in;
	int rc;

	if (p->rdonly)
		rc = -EROFS;
	else if (!target)
		rc = -EPERM;
	else if (target == FUSE_ROOT_ID && strcmp(name, STATS_XATTR) == 0)
		rc = -EPERM;
	else {
		if (fn_is_file(ino) && store_getattr(p->st, target, &in) == 0)
			before = in.version;
		rc = store_setxattr(p->st, target, name, value, size, flags);
		/* a format or storage change re-cuts the data: a new version */
		if (!rc && fn_is_file(ino) && store_getattr(p->st, target, &in) == 0 && in.version != before)
			after_commit(target, 0, 1);
	}
	fuse_reply_err(req, -rc);
}

/* Reply to a getxattr of SIZE bytes with VAL/LEN (ERANGE when too small). */
static void reply_xattr_value(fuse_req_t req, const char *val, size_t len, size_t size)
{
	if (!size)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void pfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = NULL;
	uint64_t target = xattr_target(ino);
	ssize_t n;

	if (!target) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (target == FUSE_ROOT_ID && strcmp(name, STATS_XATTR) == 0) {
		char *j;
		size_t len;
		int rc = pfs_stats_json(pfs_of(req), &j, &len);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			reply_xattr_value(req, j, len, size);
		free(j);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = store_getxattr(pfs_of(req)->st, target, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	uint64_t target = xattr_target(ino);
	ssize_t n;

	if (!target) {
		if (size)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_xattr(req, 0);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = store_listxattr(pfs_of(req)->st, target, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	uint64_t target = xattr_target(ino);
	int rc = pfs_of(req)->rdonly ? -EROFS :
		 target ? store_removexattr(pfs_of(req)->st, target, name) : -EPERM;

	fuse_reply_err(req, -rc);
}

/* ---- session ---- */

static void pfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* a page-cache reader whose node's attributes were invalidated (a
	 * writer's direct write moved i_size) asks again before reading */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* the daemon clears setuid/setgid on data changes itself, with the
	 * caller's credentials (killpriv.h): the kernel must not do it again
	 * from a stale mode */
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want |= FUSE_CAP_HANDLE_KILLPRIV;
	/* no splice: replies are writev of the pinned cache buffers, 20%
	 * faster on cold reads than splicing them (docs/benchmarks.md) */
	conn->want &= ~(unsigned)(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* 1 MiB requests: libfuse then asks the kernel for max_pages */
	conn->max_write = IO_MAX;
	if (conn->max_background < 64)
		conn->max_background = 64;
	if (conn->congestion_threshold < 48)
		conn->congestion_threshold = 48;
}

/* The session ends: free the handles whose RELEASE never came. A write
 * handle left dirty was never flushed by a close(2): discarded, as release
 * would not commit it either after the kernel gave up on it. */
static void pfs_destroy(void *userdata)
{
	unsigned n = 0;

	(void)userdata;
	for (;;) {
		struct fh *h;
		pthread_mutex_lock(&live_lock);
		h = live_fh;
		pthread_mutex_unlock(&live_lock);
		if (!h)
			break;
		if (h->ws && wsess_dirty(h->ws))
			log_warn("unmount: discarding unflushed writes of a handle never released");
		fh_free(h);      /* unlinks it */
		n++;
	}
	for (;;) {
		struct dh *d;
		pthread_mutex_lock(&live_lock);
		d = live_dh;
		pthread_mutex_unlock(&live_lock);
		if (!d)
			break;
		dh_free(d);
		n++;
	}
	if (n)
		log_info("unmount: freed %u handle(s) the kernel never released", n);
}

const struct fuse_lowlevel_ops pfs_ops = {
	.init = pfs_init,
	.destroy = pfs_destroy,
	.lookup = pfs_lookup,
	.forget = pfs_forget,
	.forget_multi = pfs_forget_multi,
	.getattr = pfs_getattr,
	.setattr = pfs_setattr,
	.readlink = pfs_readlink,
	.mknod = pfs_mknod,
	.mkdir = pfs_mkdir,
	.unlink = pfs_unlink,
	.rmdir = pfs_rmdir,
	.symlink = pfs_symlink,
	.rename = pfs_rename,
	.link = pfs_link,
	.open = pfs_open,
	.create = pfs_create,
	.read = pfs_read,
	.write = pfs_write,
	.copy_file_range = pfs_copy_file_range,
	.fallocate = pfs_fallocate,
	.flush = pfs_flush,
	.release = pfs_release,
	.fsync = pfs_fsync,
	.opendir = pfs_opendir,
	.readdir = pfs_readdir,
	.readdirplus = pfs_readdirplus,
	.releasedir = pfs_releasedir,
	.fsyncdir = pfs_fsyncdir,
	.statfs = pfs_statfs,
	.setxattr = pfs_setxattr,
	.getxattr = pfs_getxattr,
	.listxattr = pfs_listxattr,
	.removexattr = pfs_removexattr,
};
