/* ctl_init — `payloadctl init [RADOS options] STORE`: make an empty (or
 * missing) directory a store: a local one, or this host's copy of a RADOS
 * store (docs/rados.md): its writer (--rados), a follower (--follow), or a
 * new writer taking over from a dead one (--rados ... --takeover). An
 * existing store is only checked (opened read-only), never modified, so
 * running init on a mounted store is harmless. */
#include "tools/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
	"usage: payloadctl init [OPTIONS] STORE\n"
	"\n"
	"Initialise STORE, an empty directory (created when missing), as a payload\n"
	"store: STORE/index, STORE/fragments and STORE/staging. A directory that is\n"
	"not empty and not a store is refused. On an existing store, init only\n"
	"checks that it opens.\n"
	"\n"
	"A store on Ceph RADOS (fragments and the index log in the cluster; STORE\n"
	"is this host's copy of the index and its cache):\n"
	"  --rados POOL/NAME    a new store NAME in pool POOL, written by this host\n"
	"  --follow POOL/NAME   a follower of store NAME: mounts read-only and\n"
	"                       keeps up with its writer\n"
	"  --takeover           with --rados: this host becomes the writer of the\n"
	"                       existing store NAME; waits for the old writer's\n"
	"                       lease to expire (at most --wait SECONDS, default\n"
	"                       60), or breaks it at once with --force (only when\n"
	"                       the old writer is known to be dead)\n"
	"  --ceph-conf FILE     the cluster's ceph.conf (default: librados's search)\n"
	"  --ceph-id USER       the Ceph user, without \"client.\" (default: admin)\n"
	"  --timeout SECONDS    bound of every cluster operation (default 30)\n";

static int is_store(const char *dir)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/index/data.mdb", dir);
	return stat(path, &sb) == 0;
}

/* The value of option ARGV[*I] (the next word). */
static const char *value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int set_field(char *dst, const char *v)
{
	if (strlen(v) > STORECONF_FIELD_MAX)
		return -1;
	strcpy(dst, v);
	return 0;
}

int ctl_init(int argc, char **argv)
{
	struct store_opts o = { .create = 1 };
	struct store_conf conf = { 0 };
	struct store *st;
	const char *dir = NULL, *v, *target = NULL;
	int rados = 0, follow = 0, rc;
	unsigned long wait_s = 60, timeout = 0;
	char *end;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(help, stdout);
			return CTL_OK;
		} else if (!strcmp(a, "--rados") || !strcmp(a, "--follow")) {
			if (!(v = value(argc, argv, &i)))
				return ctl_usage("init", "%s needs POOL/NAME", a);
			if (rados || follow)
				return ctl_usage("init", "--rados and --follow are exclusive, and given once");
			if (storeconf_parse_target(v, &conf))
				return ctl_usage("init", "'%s' is not POOL/NAME", v);
			rados = !strcmp(a, "--rados");
			follow = !rados;
			target = v;
		} else if (!strcmp(a, "--ceph-conf") || !strcmp(a, "--ceph-id")) {
			if (!(v = value(argc, argv, &i)) || !*v)
				return ctl_usage("init", "%s needs a value", a);
			if (set_field(a[7] == 'c' ? conf.ceph_conf : conf.ceph_id, v))
				return ctl_usage("init", "%s: too long", a);
		} else if (!strcmp(a, "--takeover")) {
			o.takeover = 1;
		} else if (!strcmp(a, "--force")) {
			o.takeover_force = 1;
		} else if (!strcmp(a, "--wait") || !strcmp(a, "--timeout")) {
			if (!(v = value(argc, argv, &i)))
				return ctl_usage("init", "%s needs SECONDS", a);
			unsigned long n = strtoul(v, &end, 10);
			if (!*v || *end || n > 86400 || (a[2] == 't' && n == 0))
				return ctl_usage("init", "%s: '%s' is not a number of seconds", a, v);
			*(a[2] == 'w' ? &wait_s : &timeout) = n;
		} else if (a[0] == '-' && a[1]) {
			return ctl_usage("init", "unknown option '%s'", a);
		} else if (dir) {
			return ctl_usage("init", "too many arguments");
		} else {
			dir = a;
		}
	}
	if (!dir)
		return ctl_usage("init", "missing STORE");
	if ((o.takeover || o.takeover_force) && !rados)
		return ctl_usage("init", "--takeover and --force go with --rados");
	if (o.takeover_force && !o.takeover)
		return ctl_usage("init", "--force goes with --takeover");
	if (!rados && !follow && (conf.ceph_conf[0] || conf.ceph_id[0] || timeout))
		return ctl_usage("init", "--ceph-conf, --ceph-id and --timeout go with --rados or --follow");
	if (rados || follow) {
		conf.kind = STORE_RADOS;
		conf.role = rados ? STORE_WRITER : STORE_FOLLOWER;
		o.conf = &conf;
		o.takeover_wait = (unsigned)wait_s;
		o.rados_timeout = (unsigned)timeout;
	}
	if (is_store(dir)) {
		if (rados || follow) {
			ctl_err(dir, "already a payloadfs store: init makes a new one");
			return CTL_FAIL;
		}
		if (ctl_open(dir, &st))
			return CTL_FAIL;
		store_close(st);
		printf("%s: already a payloadfs store\n", dir);
		return CTL_OK;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ctl_err(dir, "cannot create directory: %s", strerror(errno));
		return CTL_FAIL;
	}
	rc = store_open(dir, &o, &st);
	if (rc) {
		ctl_err(dir, "%s", store_strerror(rc));
		if (rc != -ENOTEMPTY)
			ctl_remove_new_store(dir);    /* nothing half-made is left */
		return CTL_FAIL;
	}
	store_close(st);
	if (rados && o.takeover)
		printf("%s: this host is now the writer of RADOS store %s\n", dir, target);
	else if (rados)
		printf("initialised a payloadfs store in RADOS %s, written from %s\n", target, dir);
	else if (follow)
		printf("%s follows RADOS store %s (mount it: it is read-only)\n", dir, target);
	else
		printf("initialised an empty payloadfs store in %s\n", dir);
	return CTL_OK;
}
