/* payload — libpayload (lib/payload.h): the store API of index/store.h
 * behind opaque handles, for programs that read without the mount.
 *
 * Invariants:
 *  (1) One implementation of every operation: paths resolve with
 *      store_resolve (as payloadctl), views with view_parse/view_resolve
 *      (as the mount's @rows and @part), bytes with pver_read/view_read;
 *      nothing here reads LMDB or images itself.
 *  (2) A read-only handle takes no lock (a daemon may have the store
 *      mounted) and sees each commit at its next call: versions are pinned
 *      per request (store_pver_get checks a read-only opener's cached
 *      version against the index, index/pver.c). A read-write handle holds
 *      the daemon's exclusive lock (store_open: -EBUSY while mounted).
 *  (3) A batch resolves and pins every request first, then queues the
 *      fragments of all of them for loading on the store's pool, then
 *      copies: the misses of a batch load in parallel, not one by one.
 *  (4) A failed request changes only its own result fields; the others
 *      are served. Nothing is copied into a buffer that is too small.
 *  (5) The only shared mutable state is the store's (thread-safe); the
 *      error message is thread-local.
 *  (6) payload_put_many resolves every member's directory before anything
 *      is written, then hands the batch to store_put_many: one index
 *      transaction, all members or none (index/ns.c (7)).
 *  (7) A batch resolves its paths and ids through ONE read view of the
 *      index (store_rview, index/path.c R1-R4), begun when the call
 *      begins: so every commit made before the call, by any process, is
 *      seen (2). A whole object or byte range of an inline object (in the
 *      index, STORE_INLINE_MAX) is copied from that view straight into
 *      the caller's buffer while planning — one copy, no version loaded
 *      or pinned: the view's snapshot is the version read (obj_version is
 *      its inode's). Row ranges and views of inline objects, and pinned
 *      versions, take the pver path. Without a view (a store with
 *      pending names, or a failed begin) every request takes the pver
 *      path. The view ends before any version is loaded (a txn of its
 *      own): only .snapshots/ lookups and link reads nest a txn in it.
 */
#include "lib/payload.h"
#include "lib/payload_int.h"
#include "index/store.h"
#include "index/view.h"
#include "cache/fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PL_API __attribute__((visibility("default")))

struct payload_version {
	payload_store *ps;
	struct pver *pv;
};

static __thread char errmsg[512];

static int vfail(int rc, const char *fmt, va_list ap)
{
	size_t n;

	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	n = strlen(errmsg);
	snprintf(errmsg + n, sizeof(errmsg) - n, ": %s", payload_strerror(rc));
	return rc;
}

static int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = vfail(rc, fmt, ap);
	va_end(ap);
	return rc;
}

PL_API const char *payload_errmsg(void)
{
	return errmsg;
}

PL_API const char *payload_strerror(int err)
{
	const char *s;

	switch (err) {
	case 0: return "Success";
	case -EBUSY: return "the store is in use (mounted by payloadfs, or held by payloadctl): "
			     "a read-write open needs it to itself; open it read-only, or unmount it";
	case -EROFS: return "the store was opened read-only";
	case -ERANGE: return "the buffer is smaller than the result (the request's size says how large)";
	case -EREMOTE: return "storage=memory object: its data lives only in the mounted daemon's memory";
	case -EXDEV: return "symbolic link with an absolute target (a path of the mount, not of the store)";
	case -EPROTO: return "the store has an unknown format version (a newer payloadfs made it)";
	case -EIO: return "Input/output error (a damaged or missing fragment; see payloadctl fsck)";
	case -ESTALE: return "the followed object was rewritten, truncated or replaced: not an append "
			     "(payload_follow_tell gives the position to resume from)";
	case -ECANCELED: return "the follower was cancelled (payload_follow_cancel)";
	}
	s = err < 0 ? strerrordesc_np(-err) : NULL;
	return s ? s : "Unknown error";
}

/* PAYLOADFS_FAULT arms the core's fault points, as for the daemon
 * (cache/fault.h): read once, at the process's first payload_open. */
static void arm_faults(void)
{
	if (fault_arm_spec(getenv("PAYLOADFS_FAULT")) < 0)
		fprintf(stderr, "libpayload: PAYLOADFS_FAULT: bad spec ignored\n");
}

PL_API int payload_open(const char *dir, int mode, payload_store **out)
{
	static pthread_once_t faults_once = PTHREAD_ONCE_INIT;
	struct store_opts o = { .rdonly = mode == PAYLOAD_RDONLY };
	payload_store *ps;
	int rc;

	if (out)
		*out = NULL;
	if (!dir || !out || (mode != PAYLOAD_RDONLY && mode != PAYLOAD_RDWR))
		return fail(-EINVAL, "payload_open %s", dir ? dir : "(null)");
	pthread_once(&faults_once, arm_faults);
	ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->dir = strdup(dir))) {
		free(ps);
		return fail(-ENOMEM, "payload_open %s", dir);
	}
	rc = store_open(dir, &o, &ps->st);
	if (rc) {
		free(ps->dir);
		free(ps);
		if (rc == -EBUSY)
			return fail(rc, "payload_open %s read-write", dir);
		return fail(rc, "payload_open %s", dir);
	}
	ps->rdwr = mode == PAYLOAD_RDWR;
	*out = ps;
	return 0;
}

PL_API void payload_close(payload_store *ps)
{
	if (!ps)
		return;
	store_close(ps->st);
	free(ps->dir);
	free(ps);
}

/* Resolve PATH (with its view suffix, split into SPEC) to a regular file's
 * inode. @return 0, -errno. */
static int resolve(payload_store *ps, struct store_rview *v, const char *path, struct view_spec *spec,
		   struct idx_inode *in)
{
	size_t blen;
	char *base;
	int rc = view_parse(path, &blen, spec);

	if (rc < 0)
		return -EINVAL;
	base = strndup(path, blen);
	if (!base)
		return -ENOMEM;
	rc = store_rview_resolve(ps->st, v, base, 1, in);
	free(base);
	if (rc)
		return rc;
	if (S_ISDIR(in->mode) || spec->kind == VIEW_PARTDIR)
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	return 0;
}

static void fill_stat(const struct idx_inode *in, struct payload_stat *out)
{
	memset(out, 0, sizeof(*out));
	out->id = in->ino;
	out->version = in->version;
	out->size = in->size;
	out->rows = in->rows;
	out->header_rows = in->fmt_kind == PFMT_FIXED ? 0 : in->header < in->rows ? in->header : in->rows;
	out->mtime_ns = in->mtime_ns;
}

PL_API int payload_stat(payload_store *ps, const char *path, struct payload_stat *out)
{
	struct view_spec spec;
	struct idx_inode in;
	int rc;

	if (!ps || !path || !out)
		return fail(-EINVAL, "payload_stat %s", path ? path : "(null)");
	rc = resolve(ps, NULL, path, &spec, &in);
	if (!rc && spec.kind != VIEW_NONE)
		rc = -EINVAL;
	if (rc)
		return fail(rc, "payload_stat %s", path);
	fill_stat(&in, out);
	return 0;
}

PL_API int payload_version_get(payload_store *ps, const char *path, payload_version **out)
{
	struct view_spec spec;
	struct idx_inode in;
	payload_version *v;
	int rc;

	if (out)
		*out = NULL;
	if (!ps || !path || !out)
		return fail(-EINVAL, "payload_version_get %s", path ? path : "(null)");
	rc = resolve(ps, NULL, path, &spec, &in);
	if (!rc && spec.kind != VIEW_NONE)
		rc = -EINVAL;
	v = rc ? NULL : calloc(1, sizeof(*v));
	if (!rc && !v)
		rc = -ENOMEM;
	if (!rc)
		rc = store_pver_get(ps->st, in.ino, &v->pv);
	if (rc) {
		free(v);
		return fail(rc, "payload_version_get %s", path);
	}
	v->ps = ps;
	*out = v;
	return 0;
}

PL_API int payload_version_stat(const payload_version *v, struct payload_stat *out)
{
	if (!v || !out)
		return fail(-EINVAL, "payload_version_stat");
	fill_stat(pver_inode(v->pv), out);
	return 0;
}

PL_API void payload_version_release(payload_version *v)
{
	if (!v)
		return;
	pver_put(v->pv);
	free(v);
}

/* One request's plan: its pinned version and the bytes it reads. */
struct plan {
	int done;               /* served while planned (an inline object, (7)) */
	uint64_t ino;           /* resolved (not done, no pinned version) */
	struct view_spec spec;  /* the path's view suffix */
	struct pver *pv;
	int view;               /* read through VM */
	struct view_map vm;
	char *meta;             /* @meta: the JSON */
	uint64_t off, len;      /* of the object, or of the view */
};

/* The bytes [P->off, P->off + P->len) R asks of an object (or view) of
 * TOTAL bytes; R->size set. @return 0, -EINVAL, -ERANGE. */
static int plan_bounds(struct payload_get *r, uint64_t total, struct plan *p)
{
	p->off = 0;
	p->len = total;
	if (r->range == PAYLOAD_BYTES) {
		if (r->start < 0 || r->stop < r->start)
			return -EINVAL;
		p->off = (uint64_t)r->start < total ? (uint64_t)r->start : total;
		p->len = (uint64_t)r->stop < total ? (uint64_t)r->stop - p->off : total - p->off;
		if ((uint64_t)r->stop < p->off)
			p->len = 0;
	}
	r->size = p->len;
	if (r->buf && r->cap < p->len)
		return -ERANGE;
	if (!r->buf && r->cap)
		return -EINVAL;
	return 0;
}

/* Invariant (7): serve inline object IN (resolved through V) now. */
static int plan_inline(struct store_rview *v, struct payload_get *r, const struct idx_inode *in,
		       struct plan *p)
{
	int rc;

	r->obj_version = in->version;
	p->done = 1;
	rc = plan_bounds(r, in->size, p);
	if (!rc && r->buf && p->len)
		rc = store_rview_read_inline(v, in, r->buf, p->off, (size_t)p->len);
	if (!rc && r->buf)
		r->len = p->len;
	return rc;
}

/* First step of a request, through view V: resolve it (P->ino, P->spec),
 * or serve it when it is an inline object (7). @return 0 or -errno. */
static int plan_resolve(payload_store *ps, struct store_rview *v, struct payload_get *r, struct plan *p)
{
	struct idx_inode node;
	int rc;

	p->spec.kind = VIEW_NONE;
	if (r->version)
		return r->version->ps != ps ? -EINVAL : 0;
	if (r->path)
		rc = resolve(ps, v, r->path, &p->spec, &node);
	else if (r->id < IDX_FIRST_INO)
		rc = -ENOENT;
	else if (!(rc = store_rview_getattr(ps->st, v, r->id, &node)) && !S_ISREG(node.mode))
		rc = S_ISDIR(node.mode) ? -EISDIR : -EINVAL;
	if (rc)
		return rc;
	if (v && (node.flags & INODE_F_INLINE) && p->spec.kind == VIEW_NONE &&
	    (r->range == PAYLOAD_WHOLE || r->range == PAYLOAD_BYTES))
		return plan_inline(v, r, &node, p);
	p->ino = node.ino;
	return 0;
}

/* Second step, after the view ended: pin the version, work out the
 * bytes. @return 0 or -errno. */
static int plan_one(struct payload_get *r, struct plan *p, struct store *st)
{
	struct view_spec spec = p->spec;
	const struct idx_inode *in;
	uint64_t total;
	int rc = 0;

	if (r->version)
		p->pv = pver_ref(r->version->pv);
	else if ((rc = store_pver_get(st, p->ino, &p->pv)) != 0)
		return rc;
	in = pver_inode(p->pv);
	r->obj_version = in->version;
	if ((in->flags & INODE_F_MEMORY) && in->size && !(in->flags & INODE_F_INLINE))
		return -EREMOTE;
	if (r->range == PAYLOAD_ROWS) {
		if (spec.kind != VIEW_NONE)
			return -EINVAL;   /* a view of a view */
		spec.kind = VIEW_ROWS;
		spec.has_start = r->start != 0;
		spec.start = r->start;
		spec.has_stop = r->stop != PAYLOAD_END;
		spec.stop = r->stop;
	} else if (r->range != PAYLOAD_WHOLE && r->range != PAYLOAD_BYTES) {
		return -EINVAL;
	}
	switch (spec.kind) {
	case VIEW_META: {
		size_t len;
		rc = view_meta_json(p->pv, &p->meta, &len);
		total = len;
		break;
	}
	case VIEW_ROWS:
	case VIEW_PART:
		rc = view_resolve(p->pv, &spec, &p->vm);
		p->view = 1;
		total = view_size(&p->vm);
		break;
	default:
		total = in->size;
		break;
	}
	if (rc)
		return rc;
	return plan_bounds(r, total, p);
}

/* Queue the fragments P reads for loading (never blocks). */
static void prefetch(const struct plan *p)
{
	if (p->done || !p->len || p->meta)
		return;
	if (!p->view) {
		pver_prefetch(p->pv, p->off, p->off + p->len);
		return;
	}
	/* a view: the header's bytes it reads, then its rows' */
	uint64_t a = view_object_offset(&p->vm, p->off);
	uint64_t b = view_object_offset(&p->vm, p->off + p->len - 1) + 1;
	if (p->off < p->vm.hdr_len) {
		pver_prefetch(p->pv, p->off, p->vm.hdr_len);
		a = p->vm.rows_off;
	}
	if (b > a)
		pver_prefetch(p->pv, a, b);
}

static int copy_one(struct payload_get *r, const struct plan *p)
{
	char *buf = r->buf;
	uint64_t done = 0;

	if (p->done || !buf || !p->len)
		return 0;
	if (p->meta) {
		memcpy(buf, p->meta + p->off, p->len);
		r->len = p->len;
		return 0;
	}
	while (done < p->len) {
		size_t want = p->len - done > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)(p->len - done);
		ssize_t n = p->view ? view_read(p->pv, &p->vm, buf + done, want, p->off + done)
				    : pver_read(p->pv, buf + done, want, p->off + done);
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		done += (uint64_t)n;
	}
	r->len = p->len;
	return 0;
}

static const char *req_name(const struct payload_get *r, char *b, size_t cap)
{
	if (r->version)
		snprintf(b, cap, "object %llu (pinned version %llu)",
			 (unsigned long long)pver_inode(r->version->pv)->ino,
			 (unsigned long long)pver_inode(r->version->pv)->version);
	else if (r->path)
		snprintf(b, cap, "%s", r->path);
	else
		snprintf(b, cap, ".by-id/%llu", (unsigned long long)r->id);
	return b;
}

PL_API int payload_get_many(payload_store *ps, struct payload_get *reqs, size_t n)
{
	struct store_rview *v = NULL;
	struct plan *plans;
	int failed = 0, first = -1;

	if (!ps || (!reqs && n))
		return fail(-EINVAL, "payload_get_many");
	if (!n)
		return 0;
	plans = calloc(n, sizeof(*plans));
	if (!plans)
		return fail(-ENOMEM, "payload_get_many of %zu requests", n);
	if (store_rview_begin(ps->st, &v))
		v = NULL;       /* no view: each lookup reads on its own */
	for (size_t i = 0; i < n; i++) {
		reqs[i].size = 0;
		reqs[i].len = 0;
		reqs[i].obj_version = 0;
		reqs[i].result = plan_resolve(ps, v, &reqs[i], &plans[i]);
	}
	store_rview_end(v);     /* before any version loads: no txn nests in it */
	for (size_t i = 0; i < n; i++)
		if (!reqs[i].result && !plans[i].done)
			reqs[i].result = plan_one(&reqs[i], &plans[i], ps->st);
	for (size_t i = 0; i < n; i++)
		if (!reqs[i].result)
			prefetch(&plans[i]);
	for (size_t i = 0; i < n; i++) {
		if (!reqs[i].result)
			reqs[i].result = copy_one(&reqs[i], &plans[i]);
		if (reqs[i].result) {
			failed++;
			if (first < 0)
				first = (int)i;
		}
		pver_put(plans[i].pv);
		free(plans[i].meta);
	}
	free(plans);
	if (failed) {
		char b[300];
		fail(reqs[first].result, "payload_get_many: request %d (%s)%s", first,
		     req_name(&reqs[first], b, sizeof(b)),
		     failed > 1 ? " and others" : "");
	}
	return failed;
}

PL_API int payload_put_many(payload_store *ps, struct payload_put *reqs, size_t n)
{
	struct store_put *sp;
	char **dirs;
	size_t failed = n;
	const char *why = "";
	int rc = 0;

	if (!ps || (!reqs && n))
		return fail(-EINVAL, "payload_put_many");
	for (size_t i = 0; i < n; i++)
		reqs[i].result = 0;
	if (!ps->rdwr)
		return fail(-EROFS, "payload_put_many on %s", ps->dir);
	if (!n)
		return 0;
	sp = calloc(n, sizeof(*sp));
	dirs = calloc(n, sizeof(*dirs));
	if (!sp || !dirs) {
		free(sp);
		free(dirs);
		return fail(-ENOMEM, "payload_put_many of %zu objects", n);
	}
	/* resolve every directory first: nothing is written before all are;
	 * a member in the same directory as the one before it reuses that
	 * resolution (a batch's members mostly share one) */
	uid_t uid = getuid();
	gid_t gid = getgid();
	const char *pdir = NULL;
	size_t pdlen = 0;
	uint64_t pino = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		struct idx_inode dir;
		const char *path = reqs[i].path, *slash;
		size_t dlen;

		failed = i;
		if (!path || (!reqs[i].data && reqs[i].len)) {
			rc = -EINVAL;
			break;
		}
		slash = strrchr(path, '/');
		dlen = slash ? (size_t)(slash - path) : 0;
		if (pdir && dlen == pdlen && !memcmp(path, pdir, dlen)) {
			dir.ino = pino;
		} else {
			dirs[i] = strndup(path, dlen);
			if (!dirs[i]) {
				rc = -ENOMEM;
				break;
			}
			rc = store_resolve(ps->st, dirs[i], 1, &dir);
			if (!rc && !S_ISDIR(dir.mode))
				rc = -ENOTDIR;
			if (!rc && (dir.flags & INODE_F_MEMORY)) {
				/* its objects would live in a daemon's memory only */
				rc = -EINVAL;
				why = ": its directory has storage=memory";
			}
			pdir = path;
			pdlen = dlen;
			pino = dir.ino;
		}
		sp[i] = (struct store_put){ .parent = dir.ino, .name = slash ? slash + 1 : path,
					    .data = reqs[i].data, .len = reqs[i].len, .mode = 0644,
					    .uid = uid, .gid = gid };
	}
	if (!rc) {
		failed = n;
		rc = store_put_many(ps->st, sp, n, &failed);
	}
	if (rc && failed < n) {
		reqs[failed].result = rc;
		fail(rc, "payload_put_many: member %zu (%s)%s", failed,
		     reqs[failed].path ? reqs[failed].path : "(null)", why);
	} else if (rc) {
		fail(rc, "payload_put_many of %zu objects", n);
	}
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	free(sp);
	return rc;
}

/* ---- for the library's other files (lib/payload_int.h) ---- */

struct store *payload_core(payload_store *ps)
{
	return ps->st;
}

int payload_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = vfail(rc, fmt, ap);
	va_end(ap);
	return rc;
}
