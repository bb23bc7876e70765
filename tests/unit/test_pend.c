/* test_pend — pending names (index/ns.c P1-P6): a file created through
 * store_create_pending is in memory only until its first commit puts the
 * name, the content and the times in one txn; every namespace change sees
 * it as if it were in the index; a crash before the commit loses only it;
 * a failed name-only commit keeps the name for the next namespace change
 * or the close; a create that read the index before a merge of its name
 * reads again (pend_gen). */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/fault.h"
#include "index/store.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"
#include "tests/unit/tstore.h"

#define ROOT IDX_ROOT_INO

static char tmp[4096];

static struct store *open_at(const char *name)
{
	struct store_opts o = { .create = 1 };
	char dir[4200];
	struct store *st = NULL;
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
	mkdir(dir, 0700);
	rc = store_open(dir, &o, &st);
	if (rc) {
		printf("Bail out! store_open %s: %d\n", dir, rc);
		exit(1);
	}
	return st;
}

static uint64_t txns(struct store *st)
{
	struct store_stats s;

	store_get_stats(st, &s);
	return s.index_txns;
}

static uint64_t pcreate(struct store *st, uint64_t dir, const char *name)
{
	struct idx_inode in;
	int rc = store_create_pending(st, dir, name, S_IFREG | 0644, 0, 0, &in);

	if (rc) {
		printf("# create_pending %s: %d\n", name, rc);
		return 0;
	}
	return in.ino;
}

struct names { char buf[4096]; };

static int names_cb(void *arg, const char *name, uint64_t child, uint32_t type)
{
	struct names *n = arg;
	(void)child;
	(void)type;
	strncat(n->buf, name, sizeof(n->buf) - strlen(n->buf) - 2);
	strcat(n->buf, " ");
	return 0;
}

static void test_visible_and_one_txn(void)
{
	struct store *st = open_at("a");
	struct idx_inode in, d;
	uint64_t t0 = txns(st), ino = pcreate(st, ROOT, "f.txt");

	CHECK(ino != 0, "create_pending of a new name");
	CHECK_EQ(txns(st) - t0, 0, "the create writes no index txn");
	CHECK(store_pending(st, ino), "the name is pending");
	CHECK_EQ(store_lookup(st, ROOT, "f.txt", &in), 0, "lookup finds the pending name");
	CHECK(in.ino == ino && S_ISREG(in.mode) && in.size == 0, "... as an empty regular file");
	CHECK_EQ(store_getattr(st, ino, &in), 0, "getattr of the pending inode");
	CHECK_EQ(store_create_pending(st, ROOT, "f.txt", S_IFREG | 0644, 0, 0, &in), -EEXIST,
		 "a second create of a pending name: EEXIST (O_EXCL)");
	{
		uint64_t i2 = pcreate(st, ROOT, "f2"), i3 = pcreate(st, ROOT, "f3");
		CHECK(i2 && i3 && i2 != ino && i3 != ino && i2 != i3,
		      "three pending files, three inode numbers (P5): %" PRIu64 " %" PRIu64 " %" PRIu64, ino, i2, i3);
	}
	CHECK_EQ(store_mkdir(st, ROOT, "d", 0755, 0, 0, &d), 0, "mkdir of another name");
	CHECK(d.ino != ino, "the directory gets a number of its own (P5)");
	CHECK(!store_pending(st, ino), "a namespace change merged the pending name (P2)");

	/* the deferred path proper: create + write + commit = one txn */
	ino = pcreate(st, d.ino, "g.csv");
	t0 = txns(st);
	CHECK_EQ(tst_put_data(st, ino, "a,b\n1,2\n", 8), 0, "first commit of a pending file");
	CHECK_EQ(txns(st) - t0, 1, "name + content + times: one index txn");
	CHECK(!store_pending(st, ino), "no longer pending");
	CHECK_EQ(store_lookup(st, d.ino, "g.csv", &in), 0, "the name is in the index");
	CHECK_EQ(in.size, 8, "with its content");
	CHECK_EQ(in.header, 1, "and the settings a create gives (header for .csv)");

	/* created and closed without a write: the name alone, one txn */
	ino = pcreate(st, ROOT, "empty");
	t0 = txns(st);
	CHECK_EQ(store_pend_commit(st, ino), 0, "store_pend_commit of an empty new file");
	CHECK_EQ(txns(st) - t0, 1, "one txn");
	CHECK(!store_pending(st, ino), "no longer pending");
	t0 = txns(st);
	CHECK_EQ(store_pend_commit(st, ino), 0, "again: nothing to do");
	CHECK_EQ(txns(st) - t0, 0, "no txn");
	store_close(st);
}

static void test_namespace_rules(void)
{
	struct store *st = open_at("b");
	struct idx_inode d, in, a = { .mode = 0600 };
	struct names n = { "" };
	uint64_t ino;

	CHECK_EQ(store_mkdir(st, ROOT, "dir", 0755, 0, 0, &d), 0, "mkdir");
	ino = pcreate(st, d.ino, "child");
	CHECK_EQ(store_rmdir(st, ROOT, "dir"), -ENOTEMPTY, "rmdir of a pending name's parent: ENOTEMPTY");
	ino = pcreate(st, ROOT, "x");
	CHECK_EQ(store_mkdir(st, ROOT, "x", 0755, 0, 0, &in), -EEXIST, "mkdir over a pending name: EEXIST");
	ino = pcreate(st, ROOT, "r1");
	CHECK_EQ(store_rename(st, ROOT, "r1", ROOT, "r2", 0), 0, "rename of a pending name");
	CHECK_EQ(store_lookup(st, ROOT, "r1", &in), -ENOENT, "the old name is gone");
	CHECK_EQ(tst_put_data(st, ino, "moved\n", 6), 0, "its first commit after the rename");
	CHECK_EQ(store_lookup(st, ROOT, "r2", &in), 0, "the new name ...");
	CHECK_EQ(in.size, 6, "... has the content");
	ino = pcreate(st, ROOT, "m");
	CHECK_EQ(store_setattr(st, ino, &a, STORE_SET_MODE, NULL), 0, "chmod of a pending name");
	CHECK_EQ(tst_put_data(st, ino, "m\n", 2), 0, "its first commit");
	CHECK_EQ(store_getattr(st, ino, &in), 0, "getattr");
	CHECK_EQ(in.mode & 07777, 0600, "the chmod stays");
	ino = pcreate(st, ROOT, "u");
	CHECK_EQ(store_unlink(st, ROOT, "u"), 0, "unlink of a pending name");
	CHECK_EQ(store_lookup(st, ROOT, "u", &in), -ENOENT, "gone");
	CHECK_EQ(tst_put_data(st, ino, "gone\n", 5), 0, "its open handle still commits");
	CHECK_EQ(store_lookup(st, ROOT, "u", &in), -ENOENT, "the name does not come back (P4)");
	ino = pcreate(st, ROOT, "l1");
	CHECK_EQ(store_link(st, ino, ROOT, "l2", &in), 0, "link of a pending name");
	CHECK_EQ(in.nlink, 2, "two links");
	ino = pcreate(st, ROOT, "ls-me");
	CHECK_EQ(store_readdir(st, ROOT, NULL, names_cb, &n), 0, "readdir");
	CHECK(strstr(n.buf, "ls-me ") != NULL, "lists the pending name: %s", n.buf);
	CHECK(!store_pending(st, ino), "readdir merged it (P1)");
	store_close(st);
}

static void test_failed_commit_keeps_name(void)
{
	struct store *st = open_at("c");
	struct idx_inode in;
	uint64_t ino = pcreate(st, ROOT, "f");

	fault_arm("lmdb_commit", 1, ENOSPC);
	CHECK_EQ(tst_put_data(st, ino, "x\n", 2), -ENOSPC, "a first commit that fails: its error");
	fault_reset();
	CHECK(store_pending(st, ino), "the name stays pending (P4): not lost");
	CHECK_EQ(store_lookup(st, ROOT, "f", &in), 0, "still visible");
	CHECK_EQ(in.size, 0, "as an empty file");
	CHECK_EQ(store_pend_commit(st, ino), 0, "the name alone commits after");
	CHECK(!store_pending(st, ino), "and is in the index");
	store_close(st);
}

static void test_crash_loses_only_the_name(void)
{
	struct store *st;
	struct idx_inode in;
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		st = open_at("d");
		if (tst_put_data(st, pcreate(st, ROOT, "kept"), "k\n", 2) ||
		    !pcreate(st, ROOT, "pending"))
			_exit(2);
		/* a crash: no store_close (SIGKILL, not _exit: under valgrind an
		 * exit would run its leak check on what the crash leaves) */
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "a process commits one file, leaves one pending, dies (exit %d)",
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	st = open_at("d");
	CHECK_EQ(store_lookup(st, ROOT, "kept", &in), 0, "the committed file is there");
	CHECK_EQ(in.size, 2, "with its content");
	CHECK_EQ(store_lookup(st, ROOT, "pending", &in), -ENOENT, "the pending name is lost (P6)");
	CHECK(pcreate(st, ROOT, "pending") != 0, "and free again");
	store_close(st);
	st = open_at("d");
	CHECK_EQ(store_lookup(st, ROOT, "pending", &in), 0, "store_close merges what is pending (P6)");
	store_close(st);
}

/* A name-only commit (a release without writes, fs/ops.c) that fails:
 * the name stays pending and visible (P4), and the next namespace change
 * (P2) or store_close (P6) commits it, empty. */
static void test_failed_name_commit(void)
{
	struct store *st = open_at("e");
	struct idx_inode in, d;
	uint64_t a = pcreate(st, ROOT, "a"), b = pcreate(st, ROOT, "b"), c;

	fault_arm("lmdb_commit", 1, EIO);
	CHECK_EQ(store_pend_commit(st, a), -EIO, "a name-only commit that fails: its error");
	fault_reset();
	CHECK(store_pending(st, a), "the name stays pending (P4)");
	CHECK_EQ(store_lookup(st, ROOT, "a", &in), 0, "still visible");
	CHECK_EQ(in.size, 0, "as an empty file");
	fault_arm("lmdb_commit", 1, ENOSPC);
	CHECK_EQ(store_pend_commit(st, b), -ENOSPC, "another one fails: ENOSPC, not flattened");
	fault_reset();
	CHECK(store_pending(st, b), "that name stays pending too");
	CHECK_EQ(store_mkdir(st, ROOT, "d", 0755, 0, 0, &d), 0, "the next namespace change");
	CHECK(!store_pending(st, a) && !store_pending(st, b), "... merged both names (P2)");
	c = pcreate(st, ROOT, "c");
	fault_arm("lmdb_commit", 1, EIO);
	CHECK_EQ(store_pend_commit(st, c), -EIO, "a third fails");
	fault_reset();
	CHECK(store_pending(st, c), "... and stays pending until the close");
	store_close(st);
	st = open_at("e");
	CHECK_EQ(store_lookup(st, ROOT, "a", &in), 0, "after a reopen: the first name is in the index");
	CHECK(in.ino == a && in.size == 0, "... the same inode, empty");
	CHECK_EQ(store_lookup(st, ROOT, "b", &in), 0, "the second too");
	CHECK_EQ(store_lookup(st, ROOT, "c", &in), 0, "the third: store_close merged it (P6)");
	CHECK(in.ino == c && in.size == 0, "... the same inode, empty");
	store_close(st);
}

/* P3's retry: a create read the index just before another create of the
 * same name was merged (committed, then gone from st->pend): the name is
 * in neither what it read nor st->pend, only pend_gen moved. It must read
 * again (EEXIST), never add a second entry of the name. The point
 * pend_read sits between the read and the re-check. */
static struct { struct store *st; int calls, rc; uint64_t ino; } race;

static void race_hook(void *arg)
{
	(void)arg;
	if (race.calls++ != 0)
		return;          /* the nested create and the retry pass here too */
	race.ino = pcreate(race.st, ROOT, "same");
	race.rc = race.ino ? store_pend_commit(race.st, race.ino) : -1;
}

static void test_create_retries_after_merge(void)
{
	struct store *st = open_at("f");
	struct idx_inode in;
	int rc;

	race.st = st;
	fault_hook("pend_read", race_hook, NULL);
	rc = store_create_pending(st, ROOT, "same", S_IFREG | 0644, 0, 0, &in);
	fault_reset();
	CHECK(race.ino && race.rc == 0, "between a create's read and its re-check, a create of the name merged");
	CHECK_EQ(rc, -EEXIST, "the create reads the index again (pend_gen moved): EEXIST");
	CHECK_EQ(race.calls, 3, "... after a second read (the nested create read once)");
	CHECK_EQ(store_lookup(st, ROOT, "same", &in), 0, "the name ...");
	CHECK(in.ino == race.ino && !store_pending(st, in.ino), "... is the merged create's, in the index");
	store_close(st);
}

int main(void)
{
	if (tut_mkdtemp(tmp, sizeof(tmp), "pend"))
		return 1;
	test_visible_and_one_txn();
	test_namespace_rules();
	test_failed_commit_keeps_name();
	test_crash_loses_only_the_name();
	test_failed_name_commit();
	test_create_retries_after_merge();
	tut_rmrf(tmp);
	return tap_done();
}
