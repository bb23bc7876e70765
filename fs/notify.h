/* notify — kernel cache invalidation notices, sent by one dedicated
 * thread.
 *
 * Why a thread: fuse_lowlevel_notify_inval_inode() waits for the page
 * locks of the inode; a READ of that inode holds one while it waits for a
 * daemon worker. Sent from a request handler, the notice can take the last
 * worker and deadlock. Here the handler queues the notice and waits for
 * its delivery at most NOTIFY_WAIT_MS, then returns either way.
 */
#ifndef PFS_NOTIFY_H
#define PFS_NOTIFY_H

#include <stdint.h>

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#define NOTIFY_WAIT_MS 200

/* Start the thread for session SE. @return 0 or -errno. */
int notify_start(struct fuse_session *se);
/* Stop and join the thread (pending notices are sent first). NULL-safe
 * when never started. */
void notify_stop(void);
/* Invalidate attributes and cached pages of INO; returns once the kernel
 * took the notice or after NOTIFY_WAIT_MS. Thread-safe. */
void notify_inval(uint64_t ino);

#endif
