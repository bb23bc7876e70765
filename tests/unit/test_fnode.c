/* test_fnode — the daemon's node table (fs/fnode.c) without a mount: the
 * ESTALE retry protocol of fnode.h. An open refused with ESTALE is retried
 * by the kernel once, inside the same open(2), after looking the name up
 * again; that lookup may find ANOTHER object under the name (a rename
 * landed in between), and the retry must still get a node of its own
 * there (found by tests/stress: ESTALE reached open(2)). And the forget
 * path: the kernel's last node of an object goes (fn_forget says "gone"),
 * a lookup makes a new node and a writer opens it, the name is unlinked,
 * and only then does the store's forget transaction run: it must keep
 * the object (found by tests/stress: close(2) failed with ENOENT). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fnode.h"
#include "index/store.h"
#include "tests/unit/tap.h"
#include "tests/unit/tutil.h"

static struct idx_inode obj(uint64_t ino, uint64_t version)
{
	struct idx_inode in;

	memset(&in, 0, sizeof(in));
	in.ino = ino;
	in.version = version;
	in.size = 100 * ino;
	in.mode = 0100644;
	in.nlink = 1;
	return in;
}

/* A write open refused on object A (a reader is on A's node); before the
 * retry's lookup the name was renamed to object B, whose node has a reader
 * too: the lookup must give a node reserved for the retry, not B's node. */
static void test_retry_meets_other_object(void)
{
	struct idx_inode a = obj(100, 1), b = obj(200, 1);
	uint64_t na, nb, nr, n2;
	int pc, rc;

	CHECK_EQ(fn_ref_file(1, "a", &a, 10, &na), 0, "lookup of a");
	CHECK_EQ(fn_ref_file(1, "b", &b, 11, &nb), 0, "lookup of b");
	CHECK_EQ(fn_open_read(na, &a, 1, 10, &pc), 0, "a reader on a's node");
	CHECK_EQ(fn_open_read(nb, &b, 1, 11, &pc), 0, "a reader on b's node");
	CHECK_EQ(fn_open_write(na, a.ino, 12, NULL), -ESTALE, "a writer is refused on a's node");
	/* rename b over a; the kernel's retry looks "a" up again: object B */
	rc = fn_ref_file(1, "a", &b, 12, &nr);
	CHECK_EQ(rc, 1, "the retry's lookup of another object gets a reserved node");
	CHECK(nr != nb, "not the node that has a reader");
	CHECK_EQ(fn_open_write(nr, b.ino, 12, NULL), 0, "the retry's write open goes through");
	CHECK_EQ(fn_open_read(nr, &b, 1, 13, &pc), -ESTALE, "the writer is alone on its node");
	/* the note was consumed by the open: the thread's next lookup is plain */
	CHECK_EQ(fn_ref_file(1, "b", &b, 12, &n2), 0, "a later lookup by the thread is not a retry");
	fn_close_write(nr, b.ino);
	fn_close_read(na, 1);
	fn_close_read(nb, 1);
}

/* A refusal on one object does not make the same thread's open of a node
 * of another object lenient (the same-node retry of fnode.h, through
 * /proc/self/fd, is for the object the open was refused on). */
static void test_leniency_is_per_object(void)
{
	struct idx_inode c = obj(300, 1), d = obj(400, 1);
	uint64_t nc, nd;
	int pc;

	CHECK_EQ(fn_ref_file(1, "c", &c, 20, &nc), 0, "lookup of c");
	CHECK_EQ(fn_ref_file(1, "d", &d, 21, &nd), 0, "lookup of d");
	CHECK_EQ(fn_open_write(nc, c.ino, 20, NULL), 0, "a writer on c's node");
	CHECK_EQ(fn_open_write(nd, d.ino, 21, NULL), 0, "a writer on d's node");
	CHECK_EQ(fn_open_read(nc, &c, 1, 22, &pc), -ESTALE, "a reader is refused on c's writer node");
	CHECK_EQ(fn_open_read(nd, &d, 1, 22, &pc), -ESTALE,
		 "the same thread's open of d's writer node (no lookup) is refused too");
	CHECK_EQ(fn_open_read(nd, &d, 1, 22, &pc), 0,
		 "its retry on that same node goes through (direct I/O)");
	CHECK_EQ(pc, 0, "without the page cache");
	fn_close_read(nd, 0);
	fn_close_write(nc, c.ino);
	fn_close_write(nd, d.ino);
}

/* A write open refused on a writer's node whose retry never opened (its
 * lookup found the name gone) leaves its note; the thread's next open(2),
 * of another name of the same object reaching that node through a cached
 * dentry, is not that retry: it must be refused, not share the writer's
 * node (a reader there saw the writer's staged size in fstat: found by
 * tests/stress with -o direct_io). */
static void test_stale_note_is_no_retry(void)
{
	struct idx_inode e = obj(500, 1);
	uint64_t ne;
	int pc;

	CHECK_EQ(fn_ref_file(1, "e", &e, 40, &ne), 0, "lookup of e");
	CHECK_EQ(fn_open_write(ne, e.ino, 41, NULL), 0, "a writer on e's node");
	CHECK_EQ(fn_open_write(ne, e.ino, 42, NULL), -ESTALE, "a second writer is refused");
	fn_lookup_begin(42);       /* its retry's lookup: ENOENT, open(2) fails */
	CHECK_EQ(fn_open_read(ne, &e, 1, 42, &pc), -ESTALE,
		 "the thread's next open of the writer's node is refused too");
	CHECK_EQ(fn_open_read(ne, &e, 1, 42, &pc), 0,
		 "its retry on the same node without a lookup goes through");
	fn_close_read(ne, pc);
	fn_close_write(ne, e.ino);
}

/* A node a writer had may hold its staged bytes in the page cache (an
 * O_RDWR writer uses it, ops.c (2a)): a reader that later opens it through
 * a cached dentry (a session that committed nothing leaves the dentry)
 * uses the page cache only after dropping it (FN_PC_FRESH, no keep_cache);
 * a node no writer had keeps it (FN_PC_KEEP). */
static void test_writer_pages_dropped(void)
{
	struct idx_inode g = obj(600, 1), h = obj(700, 1);
	uint64_t ng, nh;
	int pc;

	CHECK_EQ(fn_ref_file(1, "g", &g, 50, &ng), 0, "lookup of g");
	CHECK_EQ(fn_open_write(ng, g.ino, 50, NULL), 0, "a writer on g's node");
	fn_close_write(ng, g.ino);              /* closed without a commit */
	CHECK_EQ(fn_open_read(ng, &g, 1, 51, &pc), 0, "a reader opens the writer's old node");
	CHECK_EQ(pc, FN_PC_FRESH, "with the page cache, dropped first");
	fn_close_read(ng, pc);
	CHECK_EQ(fn_open_read(ng, &g, 1, 52, &pc), 0, "and so does every later reader");
	CHECK_EQ(pc, FN_PC_FRESH, "of that node");
	fn_close_read(ng, pc);
	CHECK_EQ(fn_ref_file(1, "h", &h, 53, &nh), 0, "lookup of h");
	CHECK_EQ(fn_open_read(nh, &h, 1, 53, &pc), 0, "a reader of a node no writer had");
	CHECK_EQ(pc, FN_PC_KEEP, "keeps the page cache across opens");
	fn_close_read(nh, pc);
}

/* ops.c (3c): a close waits for its notices when the kernel may hold
 * cached attributes of one of the object's nodes, or when a node has
 * page-cache readers open (it answers getattr for its own version, so a
 * stat through a dentry still pointing at it would show the old size).
 * Found by isolation.bats in CI: a close that skipped the wait. */
static void test_attrs_cached(void)
{
	struct idx_inode k = obj(800, 1);
	uint64_t nk;
	int pc;

	CHECK_EQ(fn_ref_file(1, "k", &k, 60, &nk), 0, "lookup of k");
	CHECK_EQ(fn_attrs_cached(k.ino), 0, "no reply cached k's attributes: no wait");
	CHECK_EQ(fn_open_read(nk, &k, 1, 61, &pc), 0, "a reader opens k's node");
	CHECK_EQ(pc, FN_PC_KEEP, "through the page cache");
	CHECK_EQ(fn_attrs_cached(k.ino), 1, "a page-cache reader is open: the close waits");
	fn_close_read(nk, pc);
	CHECK_EQ(fn_attrs_cached(k.ino), 0, "the reader closed: no wait again");
	fn_attr_cached(nk, 1.0);
	CHECK_EQ(fn_attrs_cached(k.ino), 1, "a reply cached k's attributes: the close waits");
}

/* The interleaving of ops.c's forget path (fn_forget, then
 * store_forget_unused) with a lookup, an open for writing and an unlink. */
static void test_forget_races_lookup(void)
{
	struct store_opts o = { .fragment_size = 4096, .create = 1, .no_threads = 1 };
	char dir[4096];
	struct store *st = NULL;
	struct idx_inode in, got;
	struct pver *pv = NULL;
	struct wsess *ws = NULL;
	uint64_t n1, n2, gone;

	if (tut_mkdtemp(dir, sizeof(dir), "fnode")) {
		CHECK(0, "a temporary directory");
		return;
	}
	CHECK_EQ(store_open(dir, &o, &st), 0, "store_open");
	if (!st)
		goto out;
	CHECK_EQ(store_mknod(st, IDX_ROOT_INO, "f", S_IFREG | 0644, 0, 0, 0, &in), 0, "create f");
	CHECK_EQ(fn_ref_file(IDX_ROOT_INO, "f", &in, 30, &n1), 0, "a lookup of f");
	gone = fn_forget(n1, 1);
	CHECK_EQ(gone, in.ino, "its last node goes: the object may be forgotten");
	/* before the store's forget runs: a lookup, a writer, an unlink */
	CHECK_EQ(fn_ref_file(IDX_ROOT_INO, "f", &in, 31, &n2), 0, "a new lookup of f");
	CHECK_EQ(fn_in_use(in.ino), 1, "the object is in use again");
	CHECK_EQ(store_pver_get(st, in.ino, &pv), 0, "the writer's base");
	CHECK_EQ(store_wsess_begin(st, pv, NULL, 0, &ws), 0, "a write session");
	CHECK_EQ(fn_open_write(n2, in.ino, 31, ws), 0, "the writer opens the new node");
	CHECK_EQ(wsess_write(ws, "hello\n", 6, 0), 0, "it writes");
	CHECK_EQ(store_unlink(st, IDX_ROOT_INO, "f"), 0, "f is unlinked");
	CHECK_EQ(store_forget_unused(st, gone, fn_in_use), 0, "the delayed forget");
	CHECK_EQ(store_getattr(st, in.ino, &got), 0, "keeps the object an open file uses");
	CHECK_EQ(wsess_commit(ws), 0, "the close commits into the unlinked object");
	fn_close_write(n2, in.ino);
	wsess_free(ws);
	pver_put(pv);
	gone = fn_forget(n2, 1);
	CHECK_EQ(gone, in.ino, "the writer's node goes");
	CHECK_EQ(fn_in_use(in.ino), 0, "nothing uses the object");
	CHECK_EQ(store_forget_unused(st, gone, fn_in_use), 0, "forget");
	CHECK_EQ(store_getattr(st, in.ino, &got), -ENOENT, "now the unlinked object is freed");
	store_close(st);
out:
	tut_rmrf(dir);
}

/* Streams (fnode.c (7), ops.c (6)): which nodes follow an append, and
 * what a move changes. */
static void test_follow(void)
{
	struct idx_inode v3 = obj(800, 3), v4 = obj(800, 4), v5 = obj(800, 5);
	struct fnode_file f;
	uint64_t nr, nw, nidle, *nodes, old = 0, again;
	size_t n;
	int pc, pcw;

	v4.size = v3.size + 50;
	v5.size = v4.size + 7;
	CHECK_EQ(fn_ref_file(1, "s", &v3, 60, &nr), 0, "lookup of s (version 3)");
	CHECK_EQ(fn_open_read(nr, &v3, 1, 60, &pc), 0, "a page-cache reader of version 3");
	CHECK_EQ(fn_ref_file(0, NULL, &v3, 0, &nidle), 0, "a node nobody opened (by .by-id)");
	/* a writer that came through a node of its own (an open by .by-id
	 * of a node made before the reader's: here a reserved retry node) */
	CHECK_EQ(fn_open_write(nr, v3.ino, 61, NULL), -ESTALE, "a writer is refused on the reader's node");
	CHECK_EQ(fn_ref_file(1, "s", &v3, 61, &nw), 1, "the writer's retry gets a node of its own");
	CHECK_EQ(fn_open_write(nw, v3.ino, 61, NULL), 0, "the writer opens it");
	CHECK_EQ(fn_followers(v3.ino, 3, 3, &nodes, &n), 0, "fn_followers of version 3");
	CHECK(n == 1 && nodes[0] == nr, "only the node with readers and no writer follows (%zu nodes)", n);
	free(nodes);
	CHECK_EQ(fn_followers(v3.ino, 2, 2, &nodes, &n), 0, "fn_followers of version 2");
	CHECK(n == 0 && !nodes, "no node shows version 2");
	CHECK_EQ(fn_follow(nw, 3, 3, &v4, &old), 0, "a writer's node never moves");
	CHECK_EQ(fn_follow(nr, 3, 3, &v4, &old), 1, "the reader's node moves to version 4");
	CHECK(old == v3.size, "it showed version 3's size (%llu)", (unsigned long long)old);
	CHECK(fn_file(nr, &f) == 0 && f.version == 4 && f.size == v4.size && f.readers == 1,
	      "it shows version 4 and its size, with its reader");
	CHECK_EQ(fn_follow(nr, 3, 3, &v5, &old), 0, "a move from a version it no longer shows does nothing");
	/* the refused writer sealed the reader's node: it moved, but no lookup
	 * hands it out (fnode.h); a reader that reaches it (a cached dentry)
	 * may open it, with its page cache: its pages are version 4's prefix */
	CHECK_EQ(fn_ref_file(1, "s", &v4, 62, &again), 0, "a lookup of version 4");
	CHECK(again != nr && again != nw, "gets a node of its own: the moved node is sealed");
	CHECK_EQ(fn_open_read(nr, &v4, 1, 62, &pcw), 0, "a new reader of version 4 opens the moved node");
	CHECK_EQ(pcw, FN_PC_KEEP, "with the page cache");
	fn_close_read(nr, pcw);
	CHECK_EQ(fn_open_read(nr, &v3, 1, 63, &pcw), -ESTALE, "a reader of version 3 is refused there now");
	/* an unsealed node that moves becomes the one lookups return */
	{
		struct idx_inode u1 = obj(900, 1), u2 = obj(900, 2);
		uint64_t nu, nu2;
		int pu;
		u2.size = u1.size + 1;
		CHECK_EQ(fn_ref_file(1, "u", &u1, 64, &nu), 0, "lookup of u (version 1)");
		CHECK_EQ(fn_open_read(nu, &u1, 1, 64, &pu), 0, "a reader of u");
		CHECK_EQ(fn_follow(nu, 1, 1, &u2, &old), 1, "u's node follows version 2");
		CHECK_EQ(fn_ref_file(1, "u", &u2, 65, &nu2), 0, "a lookup of version 2");
		CHECK(nu2 == nu, "returns the moved node");
		fn_close_read(nu, pu);
	}
	fn_close_read(nr, pc);
	fn_close_write(nw, v3.ino);
	CHECK_EQ(fn_followers(v3.ino, 4, 4, &nodes, &n), 0, "fn_followers after the readers closed");
	CHECK(n == 0, "a node without readers does not follow (%zu)", n);
	free(nodes);
}

int main(void)
{
	CHECK_EQ(fn_init(0), 0, "fn_init");
	test_retry_meets_other_object();
	test_leniency_is_per_object();
	test_stale_note_is_no_retry();
	test_writer_pages_dropped();
	test_forget_races_lookup();
	test_attrs_cached();
	test_follow();
	fn_fini();
	return tap_done();
}
