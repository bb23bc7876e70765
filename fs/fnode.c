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
 *      the object table iff that list is not empty; obj->nnodes is the
 *      list's length.
 *  (3) A name record is in the name table iff it is on the name list of
 *      the object it names; (parent, name) is unique in the table. An
 *      object keeps at most MAX_NAMES names (the oldest is dropped: a
 *      missed invalidation only costs speed, never correctness, because a
 *      node of an older version always opens the current version with
 *      direct I/O — see ops.c).
 *  (4) obj->cur_node is 0 or one of the object's unsealed file nodes, the
 *      one with the highest version seen.
 *  (5) A node with pc_readers > 0 has no open writer handle of its own
 *      (fnode.h: such a write open is refused with ESTALE and seals it),
 *      and is not no_pc.
 */
#include "fs/fnode.h"

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
#define SEAL_WINDOW_NS (2 * 1000000000LL)   /* how long a sent-back writer has to retry */

enum fkind { K_REAL, K_FILE, K_VIEW };

struct fobj;

struct fnode {
	uint64_t id;
	uint64_t nlookup;
	enum fkind kind;
	struct fnode_file f;        /* K_FILE */
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

struct fobj {
	uint64_t ino;
	uint32_t nnodes, nnames, writers;
	int64_t seal_until;         /* a writer was sent back (ESTALE): until then
				     * new nodes are no_pc, nodes with page-cache
				     * readers are not handed out (monotonic ns) */
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

/* Seal windows outlive the object's entry: every node of the object may
 * be forgotten between a writer's ESTALE and its retried lookup, and the
 * entry made again must still be in the window. Direct-mapped by ino; a
 * collision only loses a window (a rare second ESTALE). */
#define SEAL_SLOTS 1024
static struct { uint64_t ino; int64_t until; } recent_seals[SEAL_SLOTS];   /* protected by fn_lock */

static struct fobj *obj_get(uint64_t ino)
{
	struct fobj *o = obj_find(ino);

	if (o || !(o = calloc(1, sizeof(*o))))
		return o;
	o->ino = ino;
	if (recent_seals[ino % SEAL_SLOTS].ino == ino)
		o->seal_until = recent_seals[ino % SEAL_SLOTS].until;
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

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* May node F be handed out by a lookup now? Not when sealed, nor, while
 * a writer of its object is being sent back (fnode.h), unless it is
 * no_pc: the writer's retried open must land on a node that no reader
 * can take into the page cache in between, whatever was committed or
 * opened meanwhile. */
static int node_usable(const struct fnode *f, int window)
{
	return !f->f.sealed && (!window || f->f.no_pc);
}

/* The object's usable node for VERSION, if it has one; *UNUSABLE tells
 * whether a node of VERSION exists that may not be handed out. */
static struct fnode *obj_node_of(struct fobj *o, uint64_t version, int window, int *unusable)
{
	struct fnode *cur = o->cur_node ? node_find(o->cur_node) : NULL;

	*unusable = 0;
	if (cur && cur->f.version == version && node_usable(cur, window))
		return cur;
	for (struct fnode *f = o->nodes; f; f = f->onext) {
		if (f->f.version != version)
			continue;
		if (node_usable(f, window))
			return f;
		*unusable = 1;
	}
	return NULL;
}

int fn_ref_file(uint64_t parent, const char *name, const struct idx_inode *in, uint64_t *nodeid)
{
	struct fobj *o;
	struct fnode *f = NULL;
	int rc = 0, sealed = 0, window = 0;

	pthread_mutex_lock(&fn_lock);
	o = obj_get(in->ino);
	if (o)
		window = o->seal_until && mono_ns() < o->seal_until;
	if (o)
		f = obj_node_of(o, in->version, window, &sealed);
	if (o && !f && (f = node_add(FN_FILE_BIT | next_file, K_FILE))) {
		struct fnode *cur = o->cur_node ? node_find(o->cur_node) : NULL;
		next_file++;
		f->f = (struct fnode_file){ .ino = in->ino, .version = in->version,
					    .size = in->size, .mtime_ns = in->mtime_ns,
					    .no_pc = sealed || window };
		f->obj = o;
		f->onext = o->nodes;
		o->nodes = f;
		o->nnodes++;
		counts.file_nodes++;
		if (!cur || cur->f.sealed || cur->f.version < in->version)
			o->cur_node = f->id;
	}
	if (f) {
		f->nlookup++;
		*nodeid = f->id;
		if (name)
			name_note(o, parent, name);
	} else {
		if (o && !o->nnodes)
			obj_free(o);
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
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
		f = node_add(FN_VIEW_BIT | next_view, K_VIEW);
		if (f && !(f->key = strdup(key))) {
			node_unhash(f);
			free(f);
			f = NULL;
		}
		if (f) {
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
		counts.view_nodes--;
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
		if (!o->nnodes) {
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

int fn_open_read(uint64_t nodeid, uint64_t version, int want)
{
	struct fnode *f;
	int pc = 0;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (want && f && f->kind == K_FILE && f->f.version == version && !f->f.no_pc &&
	    !f->obj->writers) {
		f->f.pc_readers++;
		pc = 1;
	}
	pthread_mutex_unlock(&fn_lock);
	return pc;
}

void fn_close_read(uint64_t nodeid)
{
	struct fnode *f;

	pthread_mutex_lock(&fn_lock);
	if ((f = node_find(nodeid)) && f->kind == K_FILE && f->f.pc_readers)
		f->f.pc_readers--;
	pthread_mutex_unlock(&fn_lock);
}

/* Seal F (invariant 4: it stops being the object's current node). */
static void node_seal(struct fnode *f)
{
	struct fobj *o = f->obj;

	f->f.sealed = 1;
	counts.sealed++;
	if (o->cur_node == f->id)
		o->cur_node = 0;
}

int fn_open_write(uint64_t nodeid, uint64_t ino)
{
	struct fnode *f;
	struct fobj *o;
	int rc = 0;

	pthread_mutex_lock(&fn_lock);
	f = node_find(nodeid);
	if (f && f->kind == K_FILE && f->f.pc_readers) {
		node_seal(f);
		f->obj->seal_until = mono_ns() + SEAL_WINDOW_NS;
		recent_seals[f->obj->ino % SEAL_SLOTS].ino = f->obj->ino;
		recent_seals[f->obj->ino % SEAL_SLOTS].until = f->obj->seal_until;
		rc = -ESTALE;
	} else if ((o = obj_find(ino))) {
		o->writers++;   /* seal_until stays: other writers may be retrying */
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

void fn_close_write(uint64_t ino)
{
	struct fobj *o;

	pthread_mutex_lock(&fn_lock);
	if ((o = obj_find(ino)) && o->writers)
		o->writers--;
	pthread_mutex_unlock(&fn_lock);
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
