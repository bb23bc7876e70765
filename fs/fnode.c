/* fnode — see fnode.h. */
#include "fs/fnode.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FN_BUCKETS 4096

struct fnode {
	uint64_t ino;
	uint64_t nlookup;
	uint64_t cache_version;     /* real: version in the kernel page cache (+1; 0 = none) */
	struct fnode_view view;     /* views */
	struct { uint64_t version; uint32_t count; } opens[4];  /* real: open read handles */
	uint32_t opens_overflow;    /* handles on versions beyond the 4 slots */
	uint32_t writers;           /* real: open write handles */
	char *key;                  /* views: "BASE@suffix" */
	struct fnode *next;         /* chain by ino */
	struct fnode *knext;        /* views: chain by key */
};

static pthread_mutex_t fn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fnode **by_ino;   /* protected by fn_lock */
static struct fnode **by_key;   /* protected by fn_lock */
static uint64_t next_view = 1;  /* protected by fn_lock */

static size_t h_ino(uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 40) % FN_BUCKETS;
}

static size_t h_key(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % FN_BUCKETS);
}

int fn_init(void)
{
	by_ino = calloc(FN_BUCKETS, sizeof(*by_ino));
	by_key = calloc(FN_BUCKETS, sizeof(*by_key));
	if (!by_ino || !by_key) {
		fn_fini();
		return -ENOMEM;
	}
	return 0;
}

void fn_fini(void)
{
	for (size_t i = 0; by_ino && i < FN_BUCKETS; i++)
		while (by_ino[i]) {
			struct fnode *f = by_ino[i];
			by_ino[i] = f->next;
			free(f->key);
			free(f);
		}
	free(by_ino);
	free(by_key);
	by_ino = by_key = NULL;
}

static struct fnode *find(uint64_t ino)
{
	struct fnode *f = by_ino[h_ino(ino)];

	while (f && f->ino != ino)
		f = f->next;
	return f;
}

static struct fnode *add(uint64_t ino)
{
	struct fnode *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->ino = ino;
	f->next = by_ino[h_ino(ino)];
	by_ino[h_ino(ino)] = f;
	return f;
}

int fn_ref_real(uint64_t ino)
{
	struct fnode *f;
	int rc = 0;

	pthread_mutex_lock(&fn_lock);
	f = find(ino);
	if (!f && !(f = add(ino)))
		rc = -ENOMEM;
	else
		f->nlookup++;
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

int fn_ref_view(uint64_t base, const char *suffix, const struct view_spec *spec, uint64_t *ino)
{
	char key[300];
	struct fnode *f;
	size_t h;
	int rc = 0;

	snprintf(key, sizeof(key), "%llu@%s", (unsigned long long)base, suffix);
	h = h_key(key);
	pthread_mutex_lock(&fn_lock);
	for (f = by_key[h]; f && strcmp(f->key, key); f = f->knext)
		;
	if (!f) {
		f = add(FN_VIEW_BIT | next_view);
		if (f && !(f->key = strdup(key))) {
			by_ino[h_ino(f->ino)] = f->next;
			free(f);
			f = NULL;
		}
		if (f) {
			next_view++;
			f->view.base = base;
			f->view.spec = *spec;
			f->knext = by_key[h];
			by_key[h] = f;
		}
	}
	if (f) {
		f->nlookup++;
		*ino = f->ino;
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

int fn_view(uint64_t ino, struct fnode_view *out)
{
	struct fnode *f;
	int rc = -ENOENT;

	pthread_mutex_lock(&fn_lock);
	f = find(ino);
	if (f && f->key) {
		*out = f->view;
		rc = 0;
	}
	pthread_mutex_unlock(&fn_lock);
	return rc;
}

static void unlink_node(struct fnode *f)
{
	struct fnode **p = &by_ino[h_ino(f->ino)];

	while (*p != f)
		p = &(*p)->next;
	*p = f->next;
	if (f->key) {
		p = &by_key[h_key(f->key)];
		while (*p != f)
			p = &(*p)->knext;
		*p = f->knext;
	}
}

int fn_forget(uint64_t ino, uint64_t n)
{
	struct fnode *f;
	int real_gone = 0;

	pthread_mutex_lock(&fn_lock);
	f = find(ino);
	if (f) {
		if (f->nlookup < n) {
			fprintf(stderr, "payloadfs: inode %llu: lookup count underflow\n",
				(unsigned long long)ino);
			abort();
		}
		f->nlookup -= n;
		if (!f->nlookup) {
			unlink_node(f);
			real_gone = !f->key;
			free(f->key);
			free(f);
		}
	}
	pthread_mutex_unlock(&fn_lock);
	return real_gone;
}

int fn_cache_keep(uint64_t ino, uint64_t version)
{
	struct fnode *f;
	int keep = 0;

	pthread_mutex_lock(&fn_lock);
	f = find(ino);
	if (f) {
		keep = f->cache_version == version + 1;
		f->cache_version = version + 1;
	}
	pthread_mutex_unlock(&fn_lock);
	return keep;
}

int fn_open_read(uint64_t ino, uint64_t version)
{
	struct fnode *f;
	int other = 0, slot = -1;

	pthread_mutex_lock(&fn_lock);
	f = find(ino);
	if (f) {
		for (int i = 0; i < 4; i++) {
			if (f->opens[i].count && f->opens[i].version != version)
				other = 1;
			if (f->opens[i].count && f->opens[i].version == version)
				slot = i;
		}
		for (int i = 0; slot < 0 && i < 4; i++)
			if (!f->opens[i].count)
				slot = i;
		if (f->opens_overflow)
			other = 1;
		if (slot < 0) {
			f->opens_overflow++;
		} else {
			f->opens[slot].version = version;
			f->opens[slot].count++;
		}
	}
	pthread_mutex_unlock(&fn_lock);
	return other;
}

void fn_close_read(uint64_t ino, uint64_t version)
{
	struct fnode *f;

	pthread_mutex_lock(&fn_lock);
	f = find(ino);
	if (f) {
		int i;
		for (i = 0; i < 4; i++)
			if (f->opens[i].count && f->opens[i].version == version) {
				f->opens[i].count--;
				break;
			}
		if (i == 4 && f->opens_overflow)
			f->opens_overflow--;
	}
	pthread_mutex_unlock(&fn_lock);
}

void fn_writer_open(uint64_t ino)
{
	struct fnode *f;

	pthread_mutex_lock(&fn_lock);
	if ((f = find(ino)))
		f->writers++;
	pthread_mutex_unlock(&fn_lock);
}

void fn_writer_close(uint64_t ino)
{
	struct fnode *f;

	pthread_mutex_lock(&fn_lock);
	if ((f = find(ino)) && f->writers)
		f->writers--;
	pthread_mutex_unlock(&fn_lock);
}

int fn_writers(uint64_t ino)
{
	struct fnode *f;
	int n = 0;

	pthread_mutex_lock(&fn_lock);
	if ((f = find(ino)))
		n = (int)f->writers;
	pthread_mutex_unlock(&fn_lock);
	return n;
}
