/* initflags — see initflags.h (invariants there). */
#include "fs/initflags.h"

#include <linux/fuse.h>
#include <stdint.h>
#include <string.h>

/* what the INIT reply grants when the kernel offers it (initflags.h) */
#define INITFLAGS_GRANT (FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV)

/* The INIT request's unique, and whether it offered parallel dirops:
 * written by the thread that reads INIT, before libfuse answers it on the
 * same thread; atomics all the same (the reply may go out on another
 * thread with clone_fd). */
static uint64_t init_unique;       /* atomic; 0: no INIT seen yet */
static uint32_t init_offers;       /* atomic: INITFLAGS_GRANT bits offered */
static uint32_t granted;           /* atomic: the bits granted, invariant (3) */

void initflags_seen_request(const void *buf, size_t len)
{
	struct fuse_in_header in;
	struct fuse_init_in ii;

	if (len < sizeof(in) || __atomic_load_n(&init_unique, __ATOMIC_ACQUIRE))
		return;
	memcpy(&in, buf, sizeof(in));
	if (in.opcode != FUSE_INIT)
		return;
	memset(&ii, 0, sizeof(ii));
	/* the first four fields (major .. flags) are in every INIT request */
	if (len < sizeof(in) + 4 * sizeof(uint32_t))
		return;
	memcpy(&ii, (const char *)buf + sizeof(in), 4 * sizeof(uint32_t));
	__atomic_store_n(&init_offers, ii.flags & INITFLAGS_GRANT, __ATOMIC_RELAXED);
	__atomic_store_n(&init_unique, in.unique, __ATOMIC_RELEASE);
}

int initflags_patch_reply(struct iovec *iov, int count)
{
	struct fuse_out_header out;
	struct fuse_init_out io;
	uint64_t u = __atomic_load_n(&init_unique, __ATOMIC_ACQUIRE);

	if (!u || __atomic_load_n(&granted, __ATOMIC_RELAXED) || count < 2 ||
	    iov[0].iov_len != sizeof(out) || iov[1].iov_len < 4 * sizeof(uint32_t))
		return 0;
	memcpy(&out, iov[0].iov_base, sizeof(out));
	if (out.unique != u || out.error != 0)
		return 0;
	uint32_t offers = __atomic_load_n(&init_offers, __ATOMIC_RELAXED);
	if (!offers)
		return 0;
	memcpy(&io, iov[1].iov_base, 4 * sizeof(uint32_t));
	io.flags |= offers;
	memcpy((char *)iov[1].iov_base + offsetof(struct fuse_init_out, flags), &io.flags,
	       sizeof(io.flags));
	__atomic_store_n(&granted, offers, __ATOMIC_RELAXED);
	return 1;
}

int initflags_parallel_dirops(void)
{
	return (__atomic_load_n(&granted, __ATOMIC_RELAXED) & FUSE_PARALLEL_DIROPS) != 0;
}

int initflags_handle_killpriv(void)
{
	return (__atomic_load_n(&granted, __ATOMIC_RELAXED) & FUSE_HANDLE_KILLPRIV) != 0;
}

void initflags_reset(void)
{
	__atomic_store_n(&init_unique, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&init_offers, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&granted, 0, __ATOMIC_RELAXED);
}
