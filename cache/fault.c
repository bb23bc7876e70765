/* fault — see fault.h. */
#include "cache/fault.h"

#ifdef PFS_FAULT_INJECTION
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/log.h"

#define FAULT_MAX 16

struct fault_point {
	char name[32];
	unsigned left;  /* calls until it fires; 0 = disarmed */
	int err;        /* errno, or FAULT_KILL */
	unsigned fired; /* times it fired since fault_reset() */
};

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault_point faults[FAULT_MAX];  /* protected by fault_lock */
static int fault_any;                          /* protected by fault_lock */

#define HOOK_MAX 4
static struct {
	char name[32];
	void (*fn)(void *arg);
	void *arg;
} hooks[HOOK_MAX];                             /* protected by fault_lock */

/* The KILL action: one line on stderr with the time, then SIGKILL. */
static void kill_now(const char *name)
{
	struct timespec now;
	char msg[128];
	int n;

	clock_gettime(CLOCK_MONOTONIC, &now);
	n = snprintf(msg, sizeof(msg), "fault: %s: killing the process (monotonic %lld.%09ld)\n",
		     name, (long long)now.tv_sec, now.tv_nsec);
	if (n > 0 && write(2, msg, (size_t)n) < 0) {
		/* nothing to do: the process dies anyway */
	}
	kill(getpid(), SIGKILL);
	pause();   /* SIGKILL is never ignored: not reached */
}

int fault_hit(const char *name)
{
	int rc = 0;

	void (*fn)(void *) = NULL;
	void *arg = NULL;

	if (!__atomic_load_n(&fault_any, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&fault_lock);
	for (int i = 0; i < HOOK_MAX && !fn; i++)
		if (hooks[i].fn && strcmp(hooks[i].name, name) == 0) {
			fn = hooks[i].fn;
			arg = hooks[i].arg;
		}
	for (int i = 0; i < FAULT_MAX; i++) {
		struct fault_point *f = &faults[i];
		if (f->left && strcmp(f->name, name) == 0) {
			if (--f->left == 0) {
				rc = -f->err;
				f->fired++;
			}
			break;
		}
	}
	pthread_mutex_unlock(&fault_lock);
	if (fn)
		fn(arg);
	if (rc == -FAULT_KILL)
		kill_now(name);
	if (rc)   /* tests look for this line to know the point was reached */
		log_warn("fault point %s fired: %s (injected)", name, strerror(-rc));
	return rc;
}

unsigned fault_fired(const char *name)
{
	unsigned n = 0;

	pthread_mutex_lock(&fault_lock);
	for (int i = 0; i < FAULT_MAX; i++)
		if (strcmp(faults[i].name, name) == 0)
			n += faults[i].fired;
	pthread_mutex_unlock(&fault_lock);
	return n;
}

/* The slot for NAME: its own, else an unused one, else a disarmed one
 * (whose count is then lost). Caller holds fault_lock. @return NULL when
 * every slot is armed. */
static struct fault_point *slot_for(const char *name)
{
	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < FAULT_MAX; i++) {
			struct fault_point *f = &faults[i];
			if (pass == 0 ? strcmp(f->name, name) == 0 : pass == 1 ? !f->name[0] : !f->left)
				return f;
		}
	return NULL;
}

int fault_arm(const char *name, unsigned nth, int err)
{
	struct fault_point *f;

	if (!name || !*name || strlen(name) >= sizeof(faults[0].name) || nth == 0 || err <= 0 ||
	    err > FAULT_KILL)
		return -EINVAL;
	pthread_mutex_lock(&fault_lock);
	f = slot_for(name);
	if (f) {
		if (strcmp(f->name, name) != 0)
			f->fired = 0;
		strcpy(f->name, name);
		f->left = nth;
		f->err = err;
		__atomic_store_n(&fault_any, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&fault_lock);
	return f ? 0 : -ENOSPC;
}

int fault_hook(const char *name, void (*fn)(void *arg), void *arg)
{
	int rc = -ENOSPC;

	if (!name || !*name || strlen(name) >= sizeof(hooks[0].name) || !fn)
		return -EINVAL;
	pthread_mutex_lock(&fault_lock);
	for (int i = 0; i < HOOK_MAX && rc; i++)
		if (!hooks[i].fn) {
			strcpy(hooks[i].name, name);
			hooks[i].fn = fn;
			hooks[i].arg = arg;
			__atomic_store_n(&fault_any, 1, __ATOMIC_RELAXED);
			rc = 0;
		}
	pthread_mutex_unlock(&fault_lock);
	return rc;
}

void fault_reset(void)
{
	pthread_mutex_lock(&fault_lock);
	memset(hooks, 0, sizeof(hooks));
	memset(faults, 0, sizeof(faults));
	__atomic_store_n(&fault_any, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&fault_lock);
}

static int errno_by_name(const char *s)
{
	static const struct { const char *n; int e; } tab[] = {
		{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "ENOMEM", ENOMEM },
		{ "EDQUOT", EDQUOT }, { "EROFS", EROFS }, { "EINVAL", EINVAL },
		{ "EAGAIN", EAGAIN }, { "EFBIG", EFBIG }, { "ENOSYS", ENOSYS },
		{ "KILL", FAULT_KILL },
	};
	char *end;
	long v = strtol(s, &end, 10);

	if (*s && !*end)
		return v > 0 && v < 4096 ? (int)v : -1;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(tab[i].n, s) == 0)
			return tab[i].e;
	return -1;
}

int fault_arm_spec(const char *spec)
{
	char *copy, *save = NULL, *item;
	int rc = 0;

	if (!spec || !*spec)
		return 0;
	copy = strdup(spec);
	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *end;
		unsigned long nth;
		int err;

		if (!c1 || !c2) { rc = -EINVAL; break; }
		*c1 = *c2 = '\0';
		nth = strtoul(c1 + 1, &end, 10);
		err = errno_by_name(c2 + 1);
		if (*end || nth == 0 || err < 0 || (rc = fault_arm(item, (unsigned)nth, err)) < 0) {
			rc = rc ? rc : -EINVAL;
			break;
		}
	}
	free(copy);
	return rc;
}
#else
typedef int fault_unused_translation_unit;
#endif
