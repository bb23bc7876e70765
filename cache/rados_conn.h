/* rados_conn — one connection to a Ceph cluster (a librados rados_t),
 * opened once per process and shared by reference count between the
 * modules that talk to the cluster (the fragment backend, later the index
 * log), each of which takes its own I/O contexts from it.
 *
 * Every operation through the connection is bounded: the connect by
 * client_mount_timeout, each OSD operation by rados_osd_op_timeout, each
 * monitor command by rados_mon_op_timeout, all set to the configured
 * timeout. A dead OSD or monitor makes an operation fail with -ETIMEDOUT
 * after that long; nothing waits without end.
 *
 * Thread-safety: every function may be called from any thread; a
 * connection and the I/O contexts it hands out are thread-safe (librados).
 */
#ifndef PFS_RADOS_CONN_H
#define PFS_RADOS_CONN_H

#include <rados/librados.h>

/* How to reach the cluster. */
struct rados_conf {
	const char *conf_path;  /* ceph.conf to read; NULL: librados's search
				 * ($CEPH_CONF, /etc/ceph/ceph.conf, ...) */
	const char *client_id;  /* the user without "client.": NULL is "admin" */
	unsigned timeout;       /* seconds bounding every operation (connect,
				 * OSD op, monitor command); 0: RADOS_DEFAULT_TIMEOUT */
};

#define RADOS_DEFAULT_TIMEOUT 30   /* seconds */

struct rconn;

/* Connect to the cluster C describes ($CEPH_ARGS is honoured too).
 * @param[out] out the connection (one reference, the caller's), NULL on
 *             failure
 * @return 0, or -errno: -ENOENT (conf_path missing), -EINVAL (bad
 *         configuration), -ETIMEDOUT (no monitor answered within the
 *         timeout), -EACCES/-EPERM (authentication), -ENOMEM. A failure is
 *         logged with its reason. */
int rconn_open(const struct rados_conf *c, struct rconn **out);

/* Take another reference. @return RC. */
struct rconn *rconn_get(struct rconn *rc);

/* Drop a reference; the last one shuts the connection down (every I/O
 * context taken from it must have been destroyed). NULL-safe. */
void rconn_put(struct rconn *rc);

/* An I/O context on POOL whose objects live in namespace NSPACE (a
 * non-empty name; NULL or "" is refused: each store keeps its objects in a
 * namespace of its own). Destroy it with rados_ioctx_destroy() before the
 * last rconn_put().
 * @return 0, -ENOENT (no such pool), -EINVAL (empty namespace), or
 *         -errno from librados. */
int rconn_ioctx(struct rconn *rc, const char *pool, const char *nspace, rados_ioctx_t *out);

/* The timeout in seconds that bounds every operation. */
unsigned rconn_timeout(const struct rconn *rc);

/* The librados handle, for modules that need calls this header does not
 * wrap (watch/notify, locks). Valid while a reference is held. */
rados_t rconn_cluster(struct rconn *rc);

#endif
