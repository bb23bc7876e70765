/* rados_conn — the shared librados connection (rados_conn.h).
 *
 * Invariants:
 *  (1) refs counts the holders; the connection is shut down exactly when
 *      it reaches zero, and never used after (an underflow aborts).
 *  (2) Every timeout option is set before rados_connect(): from then on
 *      each OSD operation, monitor command and reconnection is bounded.
 */
#include "cache/rados_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/log.h"

struct rconn {
	rados_t cluster;      /* immutable after open */
	unsigned timeout;     /* immutable after open: seconds */
	unsigned refs;        /* atomic */
};

/* Set option KEY to the decimal VAL. @return 0 or -errno (logged). */
static int conf_set_uint(rados_t cl, const char *key, unsigned val)
{
	char buf[16];
	int rc;

	snprintf(buf, sizeof(buf), "%u", val);
	rc = rados_conf_set(cl, key, buf);
	if (rc)
		log_err("rados: cannot set %s=%s: %s (%s)", key, buf, strerror(-rc), log_errname(rc));
	return rc;
}

int rconn_open(const struct rados_conf *c, struct rconn **out)
{
	const char *id = c->client_id && *c->client_id ? c->client_id : "admin";
	struct rconn *rc;
	int err;

	*out = NULL;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	rc->timeout = c->timeout ? c->timeout : RADOS_DEFAULT_TIMEOUT;
	rc->refs = 1;
	err = rados_create(&rc->cluster, id);
	if (err) {
		log_err("rados: cannot create a handle for client.%s: %s (%s)", id, strerror(-err),
			log_errname(err));
		free(rc);
		return err;
	}
	err = rados_conf_read_file(rc->cluster, c->conf_path);
	if (err) {
		log_err("rados: cannot read the Ceph configuration %s: %s (%s)",
			c->conf_path ? c->conf_path : "(default search)", strerror(-err), log_errname(err));
		goto fail;
	}
	err = rados_conf_parse_env(rc->cluster, NULL);
	if (err) {
		log_err("rados: bad CEPH_ARGS: %s (%s)", strerror(-err), log_errname(err));
		goto fail;
	}
	/* invariant 2 */
	if ((err = conf_set_uint(rc->cluster, "client_mount_timeout", rc->timeout)) ||
	    (err = conf_set_uint(rc->cluster, "rados_osd_op_timeout", rc->timeout)) ||
	    (err = conf_set_uint(rc->cluster, "rados_mon_op_timeout", rc->timeout)))
		goto fail;
	err = rados_connect(rc->cluster);
	if (err) {
		log_err("rados: cannot connect to the cluster (%s) as client.%s: %s (%s)",
			c->conf_path ? c->conf_path : "default configuration", id, strerror(-err),
			log_errname(err));
		goto fail;
	}
	*out = rc;
	return 0;
fail:
	rados_shutdown(rc->cluster);
	free(rc);
	return err;
}

struct rconn *rconn_get(struct rconn *rc)
{
	__atomic_add_fetch(&rc->refs, 1, __ATOMIC_RELAXED);
	return rc;
}

void rconn_put(struct rconn *rc)
{
	unsigned old;

	if (!rc)
		return;
	old = __atomic_fetch_sub(&rc->refs, 1, __ATOMIC_ACQ_REL);
	if (old == 0)
		abort();        /* invariant 1: more puts than references */
	if (old > 1)
		return;
	rados_shutdown(rc->cluster);
	free(rc);
}

int rconn_ioctx(struct rconn *rc, const char *pool, const char *nspace, rados_ioctx_t *out)
{
	int err;

	*out = NULL;
	if (!nspace || !*nspace || !pool || !*pool)
		return -EINVAL;
	err = rados_ioctx_create(rc->cluster, pool, out);
	if (err) {
		log_err("rados: pool %s: opening an I/O context: %s (%s)", pool, strerror(-err),
			log_errname(err));
		*out = NULL;
		return err;
	}
	rados_ioctx_set_namespace(*out, nspace);
	return 0;
}

unsigned rconn_timeout(const struct rconn *rc)
{
	return rc->timeout;
}

rados_t rconn_cluster(struct rconn *rc)
{
	return rc->cluster;
}
