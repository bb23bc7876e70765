/* commit_times.so — an LD_PRELOAD shim for the payloadfs daemon that times,
 * inside real commits, the two synchronous steps a commit on a RADOS
 * writer waits for (tests/bench/run.sh, figure rados; not used by tests):
 *
 *   append   rados_write_op_operate2() on the store's head object pfs.head:
 *            the index log append (cache/rlog_append.c), one RADOS round
 *            trip, made while the commit lock and the LMDB write txn are
 *            held (index/store_rados.c append_hook). A writer's other head
 *            writes (trims, expiry marks, bases) are rare and counted too.
 *   lmdb     mdb_txn_commit(): the local commit (with its fdatasync). A
 *            child txn's commit (a group commit round's member merging
 *            into the round's txn, index/gcommit.c: in memory, no I/O) is
 *            not counted: mdb_txn_begin() is wrapped too, to know them.
 *
 * Each call is timed with CLOCK_MONOTONIC (two clock reads, nothing else
 * added on the call's path: the durations go to a fixed array). When the
 * process exits normally the durations are written to
 * $PFS_COMMIT_TIMES.PID, one line "append|lmdb START SECONDS" per call
 * (START: when it began, CLOCK_REALTIME, so that a caller can keep the
 * calls of a time window, e.g. bash's $EPOCHREALTIME around a run; a
 * process with no call writes nothing: the daemon's parent, which
 * _exit()s at start, writes nothing either). Calls past the array's size
 * are counted in a last line "dropped N".
 *
 * Built by make as build/bench/commit_times.so.
 */

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <rados/librados.h>

#define MAX_CALLS (1u << 20)

enum { K_APPEND, K_LMDB };

static struct call { unsigned char kind; float secs; double start; } calls[MAX_CALLS];
static unsigned ncalls, dropped; /* atomic */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note(int kind, double start, double secs)
{
	unsigned i = __atomic_fetch_add(&ncalls, 1, __ATOMIC_RELAXED);

	if (i >= MAX_CALLS) {
		__atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	calls[i].kind = (unsigned char)kind;
	calls[i].secs = (float)secs;
	calls[i].start = start;
}

int rados_write_op_operate2(rados_write_op_t op, rados_ioctx_t io, const char *oid, struct timespec *mtime,
			    int flags)
{
	static int (*real)(rados_write_op_t, rados_ioctx_t, const char *, struct timespec *, int);
	double t, w;
	int rc;

	if (!real)
		real = (int (*)(rados_write_op_t, rados_ioctx_t, const char *, struct timespec *, int))dlsym(
			RTLD_NEXT, "rados_write_op_operate2");
	if (!real)
		abort();
	if (!oid || strcmp(oid, "pfs.head") != 0)
		return real(op, io, oid, mtime, flags);
	w = wall();
	t = now();
	rc = real(op, io, oid, mtime, flags);
	note(K_APPEND, w, now() - t);
	return rc;
}

/* The child txn open now (the daemon opens one at a time), or NULL. */
static MDB_txn *child; /* atomic */

int mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn)
{
	static int (*real)(MDB_env *, MDB_txn *, unsigned int, MDB_txn **);
	int rc;

	if (!real)
		real = (int (*)(MDB_env *, MDB_txn *, unsigned int, MDB_txn **))dlsym(RTLD_NEXT, "mdb_txn_begin");
	if (!real)
		abort();
	rc = real(env, parent, flags, txn);
	if (rc == 0 && parent)
		__atomic_store_n(&child, *txn, __ATOMIC_RELAXED);
	return rc;
}

void mdb_txn_abort(MDB_txn *txn)
{
	static void (*real)(MDB_txn *);
	MDB_txn *c = txn;

	if (!real)
		real = (void (*)(MDB_txn *))dlsym(RTLD_NEXT, "mdb_txn_abort");
	if (!real)
		abort();
	__atomic_compare_exchange_n(&child, &c, NULL, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	real(txn);
}

int mdb_txn_commit(MDB_txn *txn)
{
	static int (*real)(MDB_txn *);
	double t, w;
	int rc;

	if (!real)
		real = (int (*)(MDB_txn *))dlsym(RTLD_NEXT, "mdb_txn_commit");
	if (!real)
		abort();
	if (txn && txn == __atomic_load_n(&child, __ATOMIC_RELAXED)) {
		__atomic_store_n(&child, NULL, __ATOMIC_RELAXED);
		return real(txn);
	}
	w = wall();
	t = now();
	rc = real(txn);
	note(K_LMDB, w, now() - t);
	return rc;
}

__attribute__((destructor)) static void dump(void)
{
	const char *prefix = getenv("PFS_COMMIT_TIMES");
	unsigned n = __atomic_load_n(&ncalls, __ATOMIC_ACQUIRE);
	char path[4096];
	FILE *f;

	if (!prefix || !n)
		return;
	if (n > MAX_CALLS)
		n = MAX_CALLS;
	snprintf(path, sizeof(path), "%s.%d", prefix, (int)getpid());
	f = fopen(path, "w");
	if (!f)
		return;
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s %.6f %.9f\n", calls[i].kind == K_APPEND ? "append" : "lmdb", calls[i].start,
			(double)calls[i].secs);
	if (dropped)
		fprintf(f, "dropped %u\n", dropped);
	fclose(f);
}
