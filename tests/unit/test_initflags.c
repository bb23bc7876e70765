/* test_initflags — the INIT reply grants FUSE_PARALLEL_DIROPS exactly
 * when the kernel offered it (fs/initflags.c, invariants (1) and (3)),
 * on the byte layout the kernel and libfuse exchange (linux/fuse.h). */
#include <linux/fuse.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "fs/initflags.h"
#include "tests/unit/tap.h"

struct init_req {
	struct fuse_in_header h;
	struct fuse_init_in in;
};

/* Feed an INIT request (unique U, kernel flags F) to initflags. */
static void seen_init(uint64_t u, uint32_t f)
{
	struct init_req r;

	memset(&r, 0, sizeof(r));
	r.h.len = sizeof(r);
	r.h.opcode = FUSE_INIT;
	r.h.unique = u;
	r.in.major = 7;
	r.in.minor = 45;
	r.in.flags = f;
	initflags_seen_request(&r, sizeof(r));
}

static void test_grant(void)
{
	struct fuse_out_header h = { .len = 0, .error = 0, .unique = 2 };
	struct fuse_init_out o;
	struct iovec iov[2] = { { &h, sizeof(h) }, { &o, sizeof(o) } };
	uint32_t lib = 0x4040f029;   /* what libfuse 3.14 replies here */

	initflags_reset();
	seen_init(2, 0x73fffffb);
	memset(&o, 0, sizeof(o));
	o.flags = lib;
	h.unique = 3;                /* another request's reply */
	CHECK_EQ(initflags_patch_reply(iov, 2), 0, "a reply to another request is not touched");
	CHECK_EQ(o.flags, lib, "its bytes stay");
	h.unique = 2;
	h.error = -71;
	CHECK_EQ(initflags_patch_reply(iov, 2), 0, "an INIT error reply is not touched");
	h.error = 0;
	CHECK_EQ(initflags_patch_reply(iov, 1), 0, "a reply without an init_out is not touched");
	CHECK_EQ(initflags_parallel_dirops(), 0, "nothing granted yet");
	CHECK_EQ(initflags_patch_reply(iov, 2), 1, "the INIT reply is patched");
	CHECK_EQ(o.flags, lib | FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV,
		 "it grants FUSE_PARALLEL_DIROPS and FUSE_HANDLE_KILLPRIV and keeps the rest");
	CHECK_EQ(initflags_parallel_dirops(), 1, "granted");
	CHECK_EQ(initflags_handle_killpriv(), 1, "killpriv granted");
	o.flags = lib;
	CHECK_EQ(initflags_patch_reply(iov, 2), 0, "(3) once per session");
	CHECK_EQ(o.flags, lib, "a second reply of that unique is not touched");
}

static void test_not_offered(void)
{
	struct fuse_out_header h = { .len = 0, .error = 0, .unique = 2 };
	struct fuse_init_out o;
	struct iovec iov[2] = { { &h, sizeof(h) }, { &o, sizeof(o) } };

	initflags_reset();
	seen_init(2, 0x73fffffb & ~(uint32_t)(FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV));
	memset(&o, 0, sizeof(o));
	o.flags = 0x29;
	CHECK_EQ(initflags_patch_reply(iov, 2), 0, "a kernel that offers neither is granted neither");
	CHECK_EQ(o.flags, 0x29, "the reply stays");
	CHECK_EQ(initflags_parallel_dirops(), 0, "not granted");

	/* each bit only when offered */
	initflags_reset();
	seen_init(2, 0x73fffffb & ~(uint32_t)FUSE_PARALLEL_DIROPS);
	o.flags = 0x29;
	CHECK_EQ(initflags_patch_reply(iov, 2), 1, "a kernel that offers only killpriv gets it");
	CHECK_EQ(o.flags, 0x29 | FUSE_HANDLE_KILLPRIV, "killpriv granted, parallel dirops not");
	CHECK_EQ(initflags_parallel_dirops(), 0, "parallel dirops not granted");
	CHECK_EQ(initflags_handle_killpriv(), 1, "killpriv granted");

	initflags_reset();
	o.flags = 0x29;
	CHECK_EQ(initflags_patch_reply(iov, 2), 0, "no INIT seen: nothing patched");
	CHECK_EQ(o.flags, 0x29, "the reply stays");
}

static void test_requests(void)
{
	struct fuse_in_header h;
	struct fuse_out_header oh = { .len = 0, .error = 0, .unique = 9 };
	struct fuse_init_out o;
	struct iovec iov[2] = { { &oh, sizeof(oh) }, { &o, sizeof(o) } };
	char shortbuf[8] = { 0 };

	initflags_reset();
	memset(&h, 0, sizeof(h));
	h.opcode = FUSE_LOOKUP;
	h.unique = 9;
	initflags_seen_request(&h, sizeof(h));
	initflags_seen_request(shortbuf, sizeof(shortbuf));
	memset(&o, 0, sizeof(o));
	CHECK_EQ(initflags_patch_reply(iov, 2), 0, "other requests, short reads: no INIT, nothing patched");
	CHECK_EQ(o.flags, 0, "the reply stays");
	/* a later INIT-looking request does not replace the session's INIT */
	seen_init(4, 0x73fffffb);
	seen_init(5, 0x73fffffb);
	oh.unique = 5;
	CHECK_EQ(initflags_patch_reply(iov, 2), 0, "only the first INIT of the session counts");
	oh.unique = 4;
	CHECK_EQ(initflags_patch_reply(iov, 2), 1, "the first one is answered with the grant");
}

int main(void)
{
	test_grant();
	test_not_offered();
	test_requests();
	return tap_done();
}
