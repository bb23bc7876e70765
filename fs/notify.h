/* notify — kernel cache invalidation notices, sent by one dedicated
 * thread.
 *
 * Why a thread: a notice waits for kernel locks (the page locks of an
 * inode for a data invalidation, the parent directory's lock for an entry
 * invalidation), and those may be held by a request that waits for a
 * daemon worker. Sent from a request handler, a notice can take the last
 * worker and deadlock. Here handlers queue notices; notify_wait() waits
 * for their delivery at most NOTIFY_WAIT_MS.
 */
#ifndef PFS_NOTIFY_H
#define PFS_NOTIFY_H

#include <stdint.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#define NOTIFY_WAIT_MS 200

/* Start the thread for session SE. @return 0 or -errno. */
int notify_start(struct fuse_session *se);
/* Stop and join the thread (pending notices are sent first). A no-op
 * when never started. */
void notify_stop(void);

/* Queue: drop the kernel's cached attributes of node NODEID (its pages
 * stay: a node's bytes never change; a node that follows an append keeps
 * every byte it had, notify_grow). @return a ticket for notify_wait,
 * or 0 when nothing was queued (not running, queue full: the kernel then
 * drops the attributes within their timeout). */
uint64_t notify_attr(uint64_t nodeid);
/* Queue: node NODEID grew from OLD_SIZE to version PV (streams, ops.c
 * (6): it moved to an append of the version it showed): drop its cached
 * attributes and its cached pages from the one holding offset OLD_SIZE on
 * (the bytes before stay valid: PV keeps them), then store PV's last byte
 * in its page cache (FUSE_NOTIFY_STORE), which moves the kernel's size of
 * the node to PV's at once. Takes its own reference to PV (the notifier
 * reads that byte: a fragment load at most). @return a ticket or 0 as
 * above. */
struct pver;
uint64_t notify_grow(uint64_t nodeid, uint64_t old_size, struct pver *pv);
/* Queue: drop the kernel's directory entry PARENT/NAME (NAME is copied).
 * @return a ticket or 0 as above. */
uint64_t notify_entry(uint64_t parent, const char *name);
/* Wait until every notice up to TICKET was delivered, or NOTIFY_WAIT_MS
 * passed. A ticket of 0 returns at once. */
void notify_wait(uint64_t ticket);
/* Calls of notify_wait that waited for something (.stats "notify_waits"). */
uint64_t notify_waits(void);

#endif
