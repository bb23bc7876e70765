/* test_storelock — the store lock (index/storelock.c): an opener refuses
 * at once a store a live tool holds (its busy mark), waits for a holder
 * that is exiting (the lock without a mark: a daemon whose mount is gone)
 * and gets the store when it is released, gives up at the bound when it is
 * not, and a real store_open marks a read-write tool's store. The mount
 * half of invariant (2) is tested on real mounts (tests/e2e/mount.bats). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index/store.h"
#include "index/storelock.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"

static char dir[4096];
static int notes;

static void note(const char *d, unsigned ms)
{
	(void)d;
	(void)ms;
	notes++;
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fork a holder of DIR's lock: with MARK as a tool (storelock_take), else
 * a bare flock (a daemon whose mount is gone). It releases after HOLD_MS
 * (exits). Returns once it holds the lock. */
static pid_t holder(int mark, int hold_ms)
{
	int p[2];
	char c = 0;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = -1, m = -1;
		if (mark) {
			struct storelock_opts o = { .wait_ms = 10 };
			if (storelock_take(dir, &o, &fd, &m))
				_exit(1);
		} else {
			fd = open(dir, O_RDONLY | O_DIRECTORY);
			if (fd < 0 || flock(fd, LOCK_EX) < 0)
				_exit(1);
		}
		(void)!write(p[1], "x", 1);
		usleep((useconds_t)hold_ms * 1000);
		_exit(0);
	}
	close(p[1]);
	(void)!read(p[0], &c, 1);
	close(p[0]);
	return c == 'x' ? pid : -1;
}

static void reap(pid_t pid)
{
	int st;

	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
}

static void test_live_tool_refused_at_once(void)
{
	struct storelock_opts o = { .wait_ms = 3000, .note = note };
	int fd, m, rc;
	long long t0;
	pid_t h = holder(1, 10000);

	CHECK(h > 0, "a tool holds the store with its busy mark");
	notes = 0;
	t0 = ms_now();
	rc = storelock_take(dir, &o, &fd, &m);
	CHECK_EQ(rc, -EBUSY, "a live tool's store is refused");
	CHECK(ms_now() - t0 < 1000, "at once (%lld ms), not after the bound", ms_now() - t0);
	CHECK_EQ(notes, 0, "without waiting");
	CHECK(fd == -1 && m == -1, "nothing is held after a refusal");
	reap(h);
}

static void test_exiting_holder_waited_for(void)
{
	struct storelock_opts o = { .wait_ms = 5000, .note = note };
	int fd, m, rc;
	long long t0, dt;
	pid_t h = holder(0, 300);

	CHECK(h > 0, "an exiting holder (the lock, no mark, no mount)");
	notes = 0;
	t0 = ms_now();
	rc = storelock_take(dir, &o, &fd, &m);
	dt = ms_now() - t0;
	CHECK_EQ(rc, 0, "the opener gets the store once it is released");
	CHECK(dt >= 200 && dt < 4000, "after waiting for it (%lld ms)", dt);
	CHECK_EQ(notes, 1, "it said once that it waits");
	CHECK(fd >= 0 && m >= 0, "it holds the lock and its own mark");
	storelock_unmark(&m);
	CHECK_EQ(m, -1, "unmark drops the mark");
	close(fd);
	reap(h);
}

static void test_wait_is_bounded(void)
{
	struct storelock_opts o = { .wait_ms = 300, .note = note };
	int fd, m, rc;
	long long t0, dt;
	pid_t h = holder(0, 10000);

	CHECK(h > 0, "a holder that never lets go");
	notes = 0;
	t0 = ms_now();
	rc = storelock_take(dir, &o, &fd, &m);
	dt = ms_now() - t0;
	CHECK_EQ(rc, -EBUSY, "the opener gives up");
	CHECK(dt >= 290 && dt < 3000, "at the bound (%lld ms)", dt);
	CHECK_EQ(notes, 1, "having said it waits");
	reap(h);
}

/* A holder that turns live while an opener waits ends the wait at once. */
static void test_turns_live_while_waiting(void)
{
	struct storelock_opts o = { .wait_ms = 5000, .note = note };
	int fd, m, rc, p[2];
	long long t0, dt;
	char c = 0;
	pid_t pid;

	CHECK(pipe(p) == 0, "pipe");
	pid = fork();
	if (pid == 0) {
		struct flock l = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
		int lfd = open(dir, O_RDONLY | O_DIRECTORY), mfd = open(dir, O_RDONLY | O_DIRECTORY);
		if (lfd < 0 || mfd < 0 || flock(lfd, LOCK_EX) < 0)
			_exit(1);
		(void)!write(p[1], "x", 1);
		usleep(300 * 1000);
		(void)!fcntl(mfd, F_OFD_SETLK, &l);     /* now a live tool */
		usleep(10 * 1000 * 1000);
		_exit(0);
	}
	close(p[1]);
	(void)!read(p[0], &c, 1);
	close(p[0]);
	notes = 0;
	t0 = ms_now();
	rc = storelock_take(dir, &o, &fd, &m);
	dt = ms_now() - t0;
	CHECK_EQ(rc, -EBUSY, "a holder that marks itself live ends the wait");
	CHECK(dt >= 250 && dt < 3000, "soon after it did (%lld ms)", dt);
	reap(pid);
}

/* store_open of a read-write tool marks the store; store_close lets go. */
static void test_store_open_marks(void)
{
	struct store_opts so = { .no_threads = 1, .create = 1 };
	struct store *st = NULL;
	struct storelock_opts o = { .wait_ms = 3000, .note = note };
	int fd, m, rc;
	long long t0;

	CHECK_EQ(store_open(dir, &so, &st), 0, "a tool opens the store read-write");
	notes = 0;
	t0 = ms_now();
	rc = storelock_take(dir, &o, &fd, &m);
	CHECK_EQ(rc, -EBUSY, "another opener is refused");
	CHECK(ms_now() - t0 < 1000 && notes == 0, "at once: the open tool is live");
	store_close(st);
	CHECK_EQ(storelock_take(dir, &o, &fd, &m), 0, "after store_close the store is free");
	storelock_unmark(&m);
	close(fd);
	CHECK_EQ(storelock_mounted(dir), 0, "no payloadfs mount of it");
}

int main(void)
{
	CHECK_EQ(tut_mkdtemp(dir, sizeof(dir), "storelock"), 0, "temporary store directory");
	test_live_tool_refused_at_once();
	test_exiting_holder_waited_for();
	test_wait_is_bounded();
	test_turns_live_while_waiting();
	test_store_open_marks();
	tut_rmrf(dir);
	return tap_done();
}
