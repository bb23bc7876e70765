/* rados_conn — the shared librados connection (rados_conn.h).
 *
 * Invariants:
 *  (1) refs counts the holders; the connection is shut down exactly when
 *      it reaches zero, and never used after (an underflow aborts).
 *  (2) Every timeout option is set before rados_connect(): from then on
 *      each OSD operation, monitor command and reconnection is bounded.
 *  (3) The caller's stderr keeps its file status flags. Ceph's logging
 *      sets O_NONBLOCK on fd 2 when it is a pipe (seen in librados 16 on
 *      Debian 12: fcntl(2, F_SETFL, O_WRONLY|O_NONBLOCK) in rados_create's
 *      context set-up). The flags belong to the open file description, so
 *      with `2>&1` into a pipe stdout became non-blocking too, and a
 *      program writing more than the pipe holds got EAGAIN: `payloadctl
 *      cat STORE f 2>&1 | slow-reader` of a RADOS store stopped after
 *      64 KiB with status 1 and its message lost. rconn_open saves fd 2's
 *      flags first and puts them back once librados is set up (also on
 *      failure). Writers on that pipe during the set-up itself (a few ms)
 *      can still see EAGAIN: tools/ctl_util.c's ctl_write_all waits for
 *      POLLOUT then.
 */
#include "cache/rados_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Invariant 3: put back fd 2's file status flags saved as FL (-1: none). */
static void stderr_restore(int fl)
{
	if (fl >= 0 && fcntl(STDERR_FILENO, F_GETFL) != fl)
		(void)fcntl(STDERR_FILENO, F_SETFL, fl);
}

static int rconn_connect(const struct rados_conf *c, struct rconn *rc);

int rconn_open(const struct rados_conf *c, struct rconn **out)
{
	struct rconn *rc;
	int err, fl;

	*out = NULL;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	fl = fcntl(STDERR_FILENO, F_GETFL);       /* invariant 3 */
	err = rconn_connect(c, rc);
	stderr_restore(fl);
	if (err) {
		free(rc);
		return err;
	}
	*out = rc;
	return 0;
}

/* rados_create .. rados_connect into RC. @return 0 or -errno (logged;
 * nothing left to shut down). */
static int rconn_connect(const struct rados_conf *c, struct rconn *rc)
{
	const char *id = c->client_id && *c->client_id ? c->client_id : "admin";
	int err;

	rc->timeout = c->timeout ? c->timeout : RADOS_DEFAULT_TIMEOUT;
	rc->refs = 1;
	err = rados_create(&rc->cluster, id);
	if (err) {
		log_err("rados: cannot create a handle for client.%s: %s (%s)", id, strerror(-err),
			log_errname(err));
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
	return 0;
fail:
	rados_shutdown(rc->cluster);
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
