/* fnode — see fnode.h.
 *
 * Tables (all protected by fn_lock):
 *  - nodes by id (every node the kernel holds a lookup on);
 *  - views by key "BASE@suffix" (a view node per distinct name);
 *  - objects by ino (regular files that have at least one file node):
 *    their file nodes, the newest of them, open writers, and the names
 *    the kernel was given for them;
 *  - names by (parent, name), each belonging to one object.
 *
 * Invariants:
 *  (1) A node is in the id table iff its lookup count is > 0.
 *  (2) A file node is on the node list of its object, and an object is in
 *      the object table iff that list is not empty or view nodes of it
 *      exist; obj->nnodes is the list's length, obj->nviews the number of
 *      its view nodes. A view node keeps its object alive like an open
 *      file: the object is forgotten (store_forget) only when both are 0,
 *      so a view opened for writing commits into its object even after the
 *      object's name was removed or replaced (as a write to an unlinked
 *      file does on a local disk).
 *  (3) A name record is in the name table iff it is on the name list of
 *      the object it names; (parent, name) is unique in the table. An
 *      object keeps at most MAX_NAMES names (the oldest is dropped: a
 *      missed invalidation only costs speed, never correctness, because a
 *      node of an older version always opens the current version with
 *      direct I/O — see ops.c).
 *  (4) obj->cur_node is 0 or one of the object's unsealed file nodes, the
 *      one with the highest version seen.
 *  (5) A node with pc_readers > 0 is not no_pc. A node with a writer has
 *      no other handle, and every read handle of a node pins the node's
 *      version (fnode.h), unless a thread's retry met the same node again
 *      (a retry note: then the open goes through, with direct I/O) — never
 *      when the node has page-cache readers. On a node that ever had a
 *      writer (wpages), whose pages may hold what it staged, a page-cache
 *      reader's open drops the pages first (FN_PC_FRESH).
 *  (6) A node with an owner (reserved for that thread's retry) is opened
 *      by its owner first, or by nobody within RETRY_NS.
 *  (7) A node's version changes only while nobody has it open (a reserved
 *      node, fn_open_read), or by fn_follow to a version that keeps every
 *      byte of the one it showed (an append), never while it has a writer:
 *      so the pages the kernel cached for a node are always a prefix of
 *      its current version's bytes (ops.c (6)).
 */
#include "fs/fnode.h"
#include "index/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODE_BUCKETS 65536
#define KEY_BUCKETS  4096
#define OBJ_BUCKETS  65536
#define NAME_BUCKETS 65536
#define MAX_NAMES    8

enum fkind { K_REAL, K_FILE, K_VIEW };

struct fobj;

struct fnode {
	uint64_t id;
	uint64_t nlookup;
	enum fkind kind;
	struct fnode_file f;        /* K_FILE */
	uint64_t owner;             /* K_FILE: made for this thread's retry; no
				     * other thread opens it before it did */
	int64_t owner_ns;           /* when (the reservation lapses after RETRY_NS) */
	const struct wsess *ws;     /* K_FILE: its writer's session (fn_writer_size) */
	int64_t attr_until;         /* K_FILE: the kernel may cache its attributes
				     * until then (monotonic ns; fn_attr_cached) */
	struct fnode_view view;     /* K_VIEW */
	char *key;                  /* K_VIEW: "BASE@suffix" */
	struct fobj *obj;           /* K_FILE */
	struct fnode *next;         /* chain by id */
	struct fnode *knext;        /* K_VIEW: chain by key */
	struct fnode *onext;        /* K_FILE: the object's node list */
};

struct fname {
	uint64_t parent;
	char *name;
	struct fobj *obj;
	struct fname *hnext;        /* chain by (parent, name) */
	struct fname *onext;        /* the object's name list, newest first */
};

#define RETRIES  64
#define RETRY_NS 2000000000ll   /* a refused open is retried at once */

struct fobj {
	uint64_t ino;
	uint32_t nnodes, nnames, writers;
	uint32_t nviews;            /* view nodes of the object: invariant (2) */
	uint64_t cur_node;          /* invariant (4) */
	struct fnode *nodes;
	struct fname *names;
	struct fobj *next;          /* chain by ino */
};

static pthread_mutex_t fn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fnode **by_id;    /* protected by fn_lock */
static struct fnode **by_key;   /* protected by fn_lock */
static struct fobj **objs;      /* protected by fn_lock */
static struct fname **names;    /* protected by fn_lock */
static uint64_t next_view = 1, next_file = 1;   /* protected by fn_lock */
/* Opens refused with ESTALE, whose retry goes through: one per thread
 * (the kernel retries within the same open(2), so a thread has at most
 * one refused open pending), with the object it was refused on and
 * whether the thread looked a name up since (fn_lookup_begin); kept
 * apart from the objects (whose nodes may all be forgotten before the
 * retry's lookup); the oldest goes when full. Protected by fn_lock. */
static struct { uint64_t ino, tid; int64_t ns; int looked; } retry[RETRIES];
static uint32_t nretry;
static struct fn_stats counts;  /* protected by fn_lock */
static size_t max_views = FN_VIEW_MAX_DEFAULT;   /* set once by fn_init */

static size_t h_u64(uint64_t v, size_t nb)
{
	return (size_t)((v * 0x9e3779b97f4a7c15ull) >> 32) % nb;
}

static size_t h_str(uint64_t seed, const char *s, size_t nb)
{
	uint64_t h = 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull);
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % nb);
}

int fn_init(size_t max)
{
	max_views = max ? max : FN_VIEW_MAX_DEFAULT;
	by_id = calloc(NODE_BUCKETS, sizeof(*by_id));
	by_key = calloc(KEY_BUCKETS, sizeof(*by_key));
	objs = calloc(OBJ_BUCKETS, sizeof(*objs));
	names = calloc(NAME_BUCKETS, sizeof(*names));
	if (!by_id || !by_key || !objs || !names) {
		fn_fini();
		return -ENOMEM;
	}
	return 0;
}

void fn_fini(void)
{
	for (size_t i = 0; names && i < NAME_BUCKETS; i++)
		while (names[i]) {
			struct fname *n = names[i];
			names[i] = n->hnext;
			free(n->name);
			free(n);
		}
	for (size_t i = 0; objs && i < OBJ_BUCKETS; i++)
		while (objs[i]) {
			struct fobj *o = objs[i];
			objs[i] = o->next;
			free(o);
		}
	for (size_t i = 0; by_id && i < NODE_BUCKETS; i++)
		while (by_id[i]) {
			struct fnode *f = by_id[i];
			by_id[i] = f->next;
			free(f->key);
			free(f);
		}
	free(by_id);
	free(by_key);
	free(objs);
	free(names);
	by_id = by_key = NULL;
	objs = NULL;
	names = NULL;
	memset(&counts, 0, sizeof(counts));
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- nodes ---- */

static struct fnode *node_find(uint64_t id)
{
	struct fnode *f = by_id[h_u64(id, NODE_BUCKETS)];

	while (f && f->id != id)
		f = f->next;
	return f;
}

static struct fnode *node_add(uint64_t id, enum fkind kind)
{
	struct fnode *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->id = id;
	f->kind = kind;
	f->next = by_id[h_u64(id, NODE_BUCKETS)];
	by_id[h_u64(id, NODE_BUCKETS)] = f;
	return f;
}

static void node_unhash(struct fnode *f)
{
	struct fnode **p = &by_id[h_u64(f->id, NODE_BUCKETS)];

	while (*p != f)
		p = &(*p)->next;
	*p = f->next;
	if (f->key) {
		p = &by_key[h_str(0, f->key, KEY_BUCKETS)];
		while (*p != f)
			p = &(*p)->knext;
		*p = f->knext;
	}
}

/* ---- objects and names ---- */

static struct fobj *obj_find(uint64_t ino)
{
	struct fobj *o = objs[h_u64(ino, OBJ_BUCKETS)];

	while (o && o->ino != ino)
		o = o->next;
	return o;
}

static struct fobj *obj_get(uint64_t ino)
{
	struct fobj *o = obj_find(ino);

	if (o || !(o = calloc(1, sizeof(*o))))
		return o;
	o->ino = ino;
	o->next = objs[h_u64(ino, OBJ_BUCKETS)];
	objs[h_u64(ino, OBJ_BUCKETS)] = o;
	counts.objects++;
	return o;
}

static struct fname **name_slot(uint64_t parent, const char *name)
{
	struct fname **p = &names[h_str(parent, name, NAME_BUCKETS)];

	while (*p && ((*p)->parent != parent || strcmp((*p)->name, name)))
		p = &(*p)->hnext;
	return p;
}

/* Take name N off its object's list (not off the name table). */
static void name_detach(struct fname *n)
{
	struct fname **p = &n->obj->names;

	while (*p != n)
		p = &(*p)->onext;
	*p = n->onext;
	n->obj->nnames--;
	n->obj = NULL;
}

static void name_attach(struct fname *n, struct fobj *o)
{
	n->obj = o;
	n->onext = o->names;
	o->names = n;
	o->nnames++;
}

/* Remove N from the table and free it. */
static void name_free(struct fname *n)
{
	struct fname **p = name_slot(n->parent, n->name);

	*p = n->hnext;
	if (n->obj)
		name_detach(n);
	free(n->name);
	free(n);
	counts.names--;
}

/* Drop the oldest names beyond MAX_NAMES (invariant 3). */
static void names_trim(struct fobj *o)
{
	while (o->nnames > MAX_NAMES) {
		struct fname *n = o->names;
		while (n->onext)
			n = n->onext;
		name_free(n);
	}
}

/* Record PARENT/NAME as a name of O. Allocation failure only loses a
 * future invalidation (invariant 3), so it is not an error. */
static void name_note(struct fobj *o, uint64_t parent, const char *name)
{
	struct fname **p = name_slot(parent, name), *n = *p;

	if (n) {
		if (n->obj == o)
			return;
		name_detach(n);
		name_attach(n, o);
		names_trim(o);
		return;
	}
	if (!(n = calloc(1, sizeof(*n))) || !(n->name = strdup(name))) {
		free(n);
		return;
	}
	n->parent = parent;
	*p = n;
	counts.names++;
	name_attach(n, o);
	names_trim(o);
}

static void obj_free(struct fobj *o)
{
	struct fobj **p = &objs[h_u64(o->ino, OBJ_BUCKETS)];

	while (o->names)
		name_free(o->names);
	while (*p != o)
		p = &(*p)->next;
	*p = o->next;
	free(o);
	counts.objects--;
}

/* ---- references ---- */

int fn_ref_real(uint64_t ino)
{
	struct fnode *f;
	int rc = 0;

	pthread_mutex_lock(&fn_lock);
	f = node_find(ino);
	if (!f && (f = node_add(ino, K_REAL)))
		counts.real_nodes++;
	if (f)
		f->nlookup++;
	else
		rc = -ENOMEM;
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

/* Whether this open of F by TID is the retry of an open of the same
 * object refused with ESTALE that met the same node again without a
 * lookup (through /proc/self/fd: fnode.h) — the open that may share a
 * node. A refusal is noted for at most RETRY_NS; the next open by TID
 * consumes the note, conflicting or not, whatever object it opens (the
 * retry's path walk may have found another object under the name). A
 * retry that looked a name up was given a reserved node and needs no
 * sharing; and when the retry never opens (its lookup failed: the name
 * went), a lookup came first too, so the thread's next open(2) is not
 * taken for the retry. */
static int is_retry(struct fnode *f, uint64_t tid)
{
	int64_t now = now_ns();

	if (f->owner == tid)
		f->owner = 0;           /* its open: the reservation is used */
	for (uint32_t i = 0; i < nretry; i++)
		if (retry[i].tid == tid) {
			int fresh = now - retry[i].ns < RETRY_NS && retry[i].ino == f->f.ino &&
				    !retry[i].looked;
			retry[i] = retry[--nretry];
			return fresh;
		}
	return 0;
}

/* Refuse an open of F by TID with ESTALE: note it, so that its retry (on
 * a fresh node, or on the same one again) goes through. */
static void note_refusal(struct fnode *f, uint64_t tid)
{
	for (uint32_t i = 0; i < nretry; i++)
		if (retry[i].tid == tid) {
			retry[i].ino = f->f.ino;
			retry[i].ns = now_ns();
			retry[i].looked = 0;
			return;
		}
	if (nretry == RETRIES)
		memmove(retry, retry + 1, --nretry * sizeof(retry[0]));
	retry[nretry].ino = f->f.ino;
	retry[nretry].tid = tid;
	retry[nretry].looked = 0;
	retry[nretry++].ns = now_ns();
}

/* Whether TID has a fresh refusal note (not consumed): its lookups are
 * then the retry's, of whatever object the name now names (a rename may
 * have moved another object there since the refusal, one whose nodes
 * have handles: the retry needs a node of its own there too). */
static int has_note(uint64_t tid)
{
	int64_t now = now_ns();

	for (uint32_t i = 0; i < nretry; i++)
		if (retry[i].tid == tid)
			return now - retry[i].ns < RETRY_NS;
	return 0;
}

/* F is reserved for another thread's retry (which has not opened it yet). */
static int reserved_for_other(const struct fnode *f, uint64_t tid)
{
	return f->owner && f->owner != tid && now_ns() - f->owner_ns < RETRY_NS;
}

/* The object's unsealed node for VERSION, if it has one (none reserved
 * for a retry); *SEALED tells whether a sealed node of VERSION exists. */
static struct fnode *obj_node_of(struct fobj *o, uint64_t version, int *sealed)
{
	struct fnode *cur = o->cur_node ? node_find(o->cur_node) : NULL;

	*sealed = 0;
	if (cur && cur->f.version == version && !cur->f.sealed)
		return cur;
	for (struct fnode *f = o->nodes; f; f = f->onext) {
		if (f->f.version != version)
			continue;
		if (!f->f.sealed && !reserved_for_other(f, 0))
			return f;
		*sealed = 1;
	}
	return NULL;
}

int fn_ref_file(uint64_t parent, const char *name, const struct idx_inode *in, uint64_t tid,
		uint64_t *nodeid)
{
	struct fobj *o;
	struct fnode *f = NULL;
	int rc = 0, sealed = 0, reserve = 0;

	pthread_mutex_lock(&fn_lock);
	o = obj_get(in->ino);
	/* the lookup of a refused open's retry: a node of its own (fnode.h) */
	if (o && tid && has_note(tid))
		reserve = sealed = 1;   /* and rc = 1 */
	else if (o)
		f = obj_node_of(o, in->version, &sealed);
	if (o && !f && (f = node_add(FN_FILE_BIT | next_file, K_FILE))) {
		struct fnode *cur = o->cur_node ? node_find(o->cur_node) : NULL;
		next_file++;
		f->f = (struct fnode_file){ .ino = in->ino, .version = in->version,
					    .size = in->size, .mtime_ns = in->mtime_ns,
					    .no_pc = 0 };   /* retries have reserved nodes now */
		f->obj = o;
		f->onext = o->nodes;
		o->nodes = f;
		o->nnodes++;
		counts.file_nodes++;
		if (reserve) {
			f->owner = tid;
			f->owner_ns = now_ns();
			rc = 1;
		} else if (!cur || cur->f.sealed || cur->f.version < in->version) {
			o->cur_node = f->id;
		}
	}
	if (f) {
		f->nlookup++;
		*nodeid = f->id;
		if (name)
			name_note(o, parent, name);
	} else {
		if (o && !o->nnodes && !o->nviews)
			obj_free(o);
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

void fn_lookup_begin(uint64_t tid)
{
	pthread_mutex_lock(&fn_lock);
	for (uint32_t i = 0; i < nretry; i++)
		if (retry[i].tid == tid)
			retry[i].looked = 1;
	pthread_mutex_unlock(&fn_lock);
}

int fn_ref_view(uint64_t base, const char *suffix, const struct view_spec *spec, uint64_t *nodeid)
{
	char key[300];
	struct fnode *f;
	size_t h;
	int rc = 0;

	snprintf(key, sizeof(key), "%llu@%s", (unsigned long long)base, suffix);
	h = h_str(0, key, KEY_BUCKETS);
	pthread_mutex_lock(&fn_lock);
	for (f = by_key[h]; f && strcmp(f->key, key); f = f->knext)
		;
	if (!f && counts.view_nodes >= max_views) {
		pthread_mutex_unlock(&fn_lock);
		return -ENFILE;
	}
	if (!f) {
		struct fobj *o = obj_get(base);
		f = o ? node_add(FN_VIEW_BIT | next_view, K_VIEW) : NULL;
		if (f && !(f->key = strdup(key))) {
			node_unhash(f);
			free(f);
			f = NULL;
		}
		if (!f && o && !o->nnodes && !o->nviews)
			obj_free(o);
		if (f) {
			o->nviews++;
			next_view++;
			counts.view_nodes++;
			f->view.base = base;
			f->view.spec = *spec;
			f->knext = by_key[h];
			by_key[h] = f;
		}
	}
	if (f) {
		f->nlookup++;
		*nodeid = f->id;
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

/* Node F's last lookup went. @return the inode the store may forget. */
static uint64_t node_drop(struct fnode *f)
{
	uint64_t gone = 0;

	node_unhash(f);
	if (f->kind == K_REAL) {
		gone = f->id;
		counts.real_nodes--;
	} else if (f->kind == K_VIEW) {
		struct fobj *o = obj_find(f->view.base);
		counts.view_nodes--;
		if (o && o->nviews && --o->nviews == 0 && !o->nnodes) {
			gone = o->ino;
			obj_free(o);
		}
	} else {
		struct fobj *o = f->obj;
		struct fnode **p = &o->nodes;
		while (*p != f)
			p = &(*p)->onext;
		*p = f->onext;
		o->nnodes--;
		counts.file_nodes--;
		if (o->cur_node == f->id) {
			struct fnode *best = NULL;
			for (struct fnode *g = o->nodes; g; g = g->onext)
				if (!g->f.sealed && (!best || g->f.version > best->f.version))
					best = g;
			o->cur_node = best ? best->id : 0;
		}
		if (!o->nnodes && !o->nviews) {
			gone = o->ino;
			obj_free(o);
		}
	}
	free(f->key);
	free(f);
	return gone;
}

uint64_t fn_forget(uint64_t nodeid, uint64_t n)
{
	struct fnode *f;
	uint64_t gone = 0;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f) {
		if (f->nlookup < n) {
			fprintf(stderr, "payloadfs: node %llu: lookup count underflow\n",
				(unsigned long long)nodeid);
			abort();
		}
		f->nlookup -= n;
		if (!f->nlookup)
			gone = node_drop(f);
	}
	pthread_mutex_unlock(&fn_lock);
	return gone;
}

int fn_in_use(uint64_t ino)
{
	int used;

	pthread_mutex_lock(&fn_lock);
	used = obj_find(ino) != NULL || node_find(ino) != NULL;   /* invariant (2) */
	pthread_mutex_unlock(&fn_lock);
	return used;
}

int fn_view(uint64_t nodeid, struct fnode_view *out)
{
	struct fnode *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_VIEW) {
		*out = f->view;
		rc = 0;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

void fn_view_set_map(uint64_t nodeid, uint64_t version, uint32_t header, const struct view_map *map)
{
	struct fnode *f;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_VIEW) {
		f->view.map = *map;
		f->view.map_version = version;
		f->view.map_header = header;
		f->view.map_ok = 1;
	}
	pthread_mutex_unlock(&fn_lock);
}

int fn_file(uint64_t nodeid, struct fnode_file *out)
{
	struct fnode *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_FILE) {
		*out = f->f;
		rc = 0;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

uint64_t fn_ino(uint64_t nodeid)
{
	struct fnode_file f;

	if (!fn_is_file(nodeid))
		return nodeid;
	return fn_file(nodeid, &f) ? 0 : f.ino;
}

static void node_seal(struct fnode *f);

int fn_open_read(uint64_t nodeid, const struct idx_inode *in, int want, uint64_t tid, int *pc)
{
	uint64_t version = in->version;
	struct fnode *f;
	int rc = 0;

	*pc = 0;
	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_FILE) {
		int other = reserved_for_other(f, tid), mine = f->owner == tid;
		int retry = is_retry(f, tid);
		if (mine && f->f.version != version && !f->f.readers && !f->f.writers) {
			/* a commit came between the retry's lookup and its open:
			 * nobody opened the node, so it becomes that version
			 * (its lookup reply was not cached: attr_timeout 0) */
			f->f.version = version;
			f->f.size = in->size;
			f->f.mtime_ns = in->mtime_ns;
		}
		if (other) {
			note_refusal(f, tid);   /* another thread's retry node */
			rc = -ESTALE;
		} else if (f->f.writers && !retry) {
			node_seal(f);           /* the writer keeps it to itself */
			note_refusal(f, tid);
			rc = -ESTALE;
		} else if (f->f.version != version && (!retry || f->f.pc_readers)) {
			note_refusal(f, tid);   /* an older version's node */
			rc = -ESTALE;
		} else {
			if (want && f->f.version == version && !f->f.no_pc && !f->f.writers) {
				f->f.pc_readers++;
				*pc = f->f.wpages ? FN_PC_FRESH : FN_PC_KEEP;
			}
			f->f.readers++;
		}
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

void fn_close_read(uint64_t nodeid, int pc)
{
	struct fnode *f;

	pthread_mutex_lock(&fn_lock);
	if ((f = node_find(nodeid)) && f->kind == K_FILE) {
		if (pc && f->f.pc_readers)
			f->f.pc_readers--;
		if (f->f.readers)
			f->f.readers--;
	}
	pthread_mutex_unlock(&fn_lock);
}

int fn_followers(uint64_t ino, uint64_t lo, uint64_t hi, uint64_t **nodes, size_t *n)
{
	struct fobj *o;
	size_t k = 0, cnt = 0;
	int rc = 0;

	*nodes = NULL;
	*n = 0;
	pthread_mutex_lock(&fn_lock);
	o = obj_find(ino);
	for (struct fnode *f = o ? o->nodes : NULL; f; f = f->onext)
		cnt += f->f.version >= lo && f->f.version <= hi && f->f.readers && !f->f.writers;
	if (cnt && !(*nodes = malloc(cnt * sizeof(**nodes))))
		rc = -ENOMEM;
	for (struct fnode *f = o && !rc ? o->nodes : NULL; f; f = f->onext)
		if (f->f.version >= lo && f->f.version <= hi && f->f.readers && !f->f.writers)
			(*nodes)[k++] = f->id;
	*n = k;
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

int fn_follow(uint64_t nodeid, uint64_t lo, uint64_t hi, const struct idx_inode *in, uint64_t *old_size)
{
	struct fnode *f;
	int moved = 0;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_FILE && f->f.version >= lo && f->f.version <= hi && !f->f.writers &&
	    in->version > hi) {
		struct fnode *cur = f->obj->cur_node ? node_find(f->obj->cur_node) : NULL;
		*old_size = f->f.size;
		f->f.version = in->version;      /* invariant (7) */
		f->f.size = in->size;
		f->f.mtime_ns = in->mtime_ns;
		if (!f->f.sealed && (!cur || cur->f.sealed || cur->f.version < in->version))
			f->obj->cur_node = f->id;    /* invariant (4) */
		moved = 1;
	}
	pthread_mutex_unlock(&fn_lock);
	return moved;
}

/* Seal F (invariant 4: it stops being the object's current node). */
static void node_seal(struct fnode *f)
{
	struct fobj *o = f->obj;

	if (!f->f.sealed)
		counts.sealed++;
	f->f.sealed = 1;
	if (o->cur_node == f->id)
		o->cur_node = 0;
}

int fn_open_write(uint64_t nodeid, uint64_t ino, uint64_t tid, const struct wsess *ws)
{
	struct fnode *f;
	struct fobj *o;
	int rc = 0;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind != K_FILE)
		f = NULL;
	if (f && reserved_for_other(f, tid)) {
		note_refusal(f, tid);           /* another thread's retry node */
		rc = -ESTALE;
	} else if (f && (f->f.readers || f->f.writers) && (!is_retry(f, tid) || f->f.pc_readers)) {
		node_seal(f);
		note_refusal(f, tid);
		rc = -ESTALE;
	} else if ((o = obj_find(ino))) {
		if (f)
			is_retry(f, tid);       /* an open consumes its note */
		o->writers++;
		if (f) {
			f->f.writers++;
			f->ws = ws;
			/* its page cache may hold the writer's staged bytes
			 * (ops.c (2a)): a reader's open drops them first */
			f->f.wpages = 1;
			/* the writer's own: no lookup reply (the committed
			 * size) may move its i_size again */
			node_seal(f);
		}
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

void fn_close_write(uint64_t nodeid, uint64_t ino)
{
	struct fnode *f;
	struct fobj *o;

	pthread_mutex_lock(&fn_lock);
	if ((o = obj_find(ino)) && o->writers)
		o->writers--;
	if ((f = node_find(nodeid)) && f->kind == K_FILE && f->f.writers) {
		f->f.writers--;
		f->ws = NULL;
	}
	pthread_mutex_unlock(&fn_lock);
}

int fn_writer_size(uint64_t nodeid, uint64_t *size)
{
	struct fnode *f;
	int rc = 0;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_FILE && f->ws) {
		*size = wsess_size(f->ws);
		rc = 1;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

void fn_attr_cached(uint64_t nodeid, double timeout)
{
	struct fnode *f;
	int64_t until;

	if (timeout <= 0)
		return;
	/* a second of slack: the kernel starts the timeout when it gets the reply */
	until = now_ns() + (int64_t)(timeout * 1e9) + 1000000000;
	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_FILE && f->attr_until < until)
		f->attr_until = until;
	pthread_mutex_unlock(&fn_lock);
}

int fn_attrs_cached(uint64_t ino)
{
	struct fobj *o;
	int64_t now = now_ns();
	int cached = 0;

	pthread_mutex_lock(&fn_lock);
	o = obj_find(ino);
	/* a node with page-cache readers answers getattr for its own version
	 * (ops.c (3b)), so a stat through a dentry the kernel still holds for
	 * it shows that version's size until the entry notice lands */
	for (struct fnode *f = o ? o->nodes : NULL; f && !cached; f = f->onext)
		cached = f->attr_until > now || f->f.pc_readers > 0;
	pthread_mutex_unlock(&fn_lock);
	return cached;
}

int fn_writers(uint64_t ino)
{
	struct fobj *o;
	int n = 0;

	pthread_mutex_lock(&fn_lock);
	if ((o = obj_find(ino)))
		n = (int)o->writers;
	pthread_mutex_unlock(&fn_lock);
	return n;
}

void fn_name_gone(uint64_t parent, const char *name)
{
	struct fname *n;

	pthread_mutex_lock(&fn_lock);
	if ((n = *name_slot(parent, name)))
		name_free(n);
	pthread_mutex_unlock(&fn_lock);
}

/* Move name record N to (PARENT, NAME) in the table. */
static void name_rekey(struct fname *n, uint64_t parent, const char *name)
{
	struct fname **p = name_slot(n->parent, n->name);
	char *copy = strdup(name);

	*p = n->hnext;
	if (!copy) {             /* forget the name rather than keep a wrong one */
		if (n->obj)
			name_detach(n);
		free(n->name);
		free(n);
		counts.names--;
		return;
	}
	free(n->name);
	n->name = copy;
	n->parent = parent;
	p = name_slot(parent, name);
	n->hnext = *p;
	*p = n;
}

void fn_name_rename(uint64_t parent, const char *name, uint64_t newparent,
		    const char *newname, int exchange)
{
	struct fname *a, *b;

	pthread_mutex_lock(&fn_lock);
	a = *name_slot(parent, name);
	b = *name_slot(newparent, newname);
	if (exchange && a && b) {
		struct fobj *oa = a->obj, *ob = b->obj;
		name_detach(a);
		name_detach(b);
		name_attach(a, ob);
		name_attach(b, oa);
	} else if (exchange) {
		if (a)
			name_rekey(a, newparent, newname);
		else if (b)
			name_rekey(b, parent, name);
	} else {
		if (b)
			name_free(b);     /* the entry it named was replaced */
		if (a)
			name_rekey(a, newparent, newname);
	}
	pthread_mutex_unlock(&fn_lock);
}

int fn_object_refs(uint64_t ino, struct fn_names *out)
{
	struct fobj *o;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&fn_lock);
	o = obj_find(ino);
	for (struct fnode *f = o ? o->nodes : NULL; f && out->nnodes < 8; f = f->onext)
		out->nodes[out->nnodes++] = f->id;
	for (struct fname *n = o ? o->names : NULL; n && out->nnames < 8; n = n->onext) {
		char *s = strdup(n->name);
		if (!s) {
			rc = -ENOMEM;
			break;
		}
		out->parents[out->nnames] = n->parent;
		out->names[out->nnames++] = s;
	}
	pthread_mutex_unlock(&fn_lock);
	if (rc)
		fn_names_free(out);
	return rc;
}

void fn_names_free(struct fn_names *n)
{
	for (size_t i = 0; i < n->nnames; i++)
		free(n->names[i]);
	n->nnames = 0;
}

void fn_get_stats(struct fn_stats *out)
{
	pthread_mutex_lock(&fn_lock);
	*out = counts;
	pthread_mutex_unlock(&fn_lock);
}
