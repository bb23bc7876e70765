/* main — the payloadfs daemon: parse options, open (or initialise) the
 * store, mount, daemonize, serve until unmounted.
 *
 * Start-up contract: when `payloadfs STORE MNT` returns 0 (daemon mode),
 * the store is open and MNT is mounted; on any failure it prints one line
 * `payloadfs: what: why` on stderr and returns non-zero, leaving nothing
 * mounted. The forked child reports success or the error text through a
 * pipe.
 */
#include "fs/ops.h"
#include "fs/fnode.h"
#include "fs/initflags.h"
#include "fs/notify.h"
#include "index/store.h"
#include "cache/fault.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PFS_VERSION "0.1.0"

struct opts {
	char *store;
	char *log_level;
	char *fragment_size, *cache_size, *spill_size, *logfile, *pidfile, *read_ahead, *max_views;
	char *threads;
	char *sync_ms;
	char *rados_timeout, *rados_lease, *follower_lease, *base_every, *disk_cache;
	int ro, direct_io, page_cache, sync, help, version;
};

enum { KEY_HELP, KEY_VERSION };

static const struct fuse_opt opt_spec[] = {
	{ "fragment_size=%s", offsetof(struct opts, fragment_size), 0 },
	{ "cache_size=%s", offsetof(struct opts, cache_size), 0 },
	{ "spill_size=%s", offsetof(struct opts, spill_size), 0 },
	{ "logfile=%s", offsetof(struct opts, logfile), 0 },
	{ "log_level=%s", offsetof(struct opts, log_level), 0 },
	{ "pidfile=%s", offsetof(struct opts, pidfile), 0 },
	{ "max_views=%s", offsetof(struct opts, max_views), 0 },
	{ "ro", offsetof(struct opts, ro), 1 },
	{ "threads=%s", offsetof(struct opts, threads), 0 },
	{ "read_ahead=%s", offsetof(struct opts, read_ahead), 0 },
	{ "sync_ms=%s", offsetof(struct opts, sync_ms), 0 },
	{ "rados_timeout=%s", offsetof(struct opts, rados_timeout), 0 },
	{ "rados_lease=%s", offsetof(struct opts, rados_lease), 0 },
	{ "follower_lease=%s", offsetof(struct opts, follower_lease), 0 },
	{ "base_every=%s", offsetof(struct opts, base_every), 0 },
	{ "disk_cache=%s", offsetof(struct opts, disk_cache), 0 },
	{ "sync", offsetof(struct opts, sync), 1 },   /* ours, not the kernel's MS_SYNCHRONOUS */
	{ "direct_io", offsetof(struct opts, direct_io), 1 },
	{ "isolate", offsetof(struct opts, direct_io), 1 },     /* older name of direct_io */
	{ "page_cache", offsetof(struct opts, page_cache), 1 },
	FUSE_OPT_KEY("ro", FUSE_OPT_KEY_KEEP),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

/* Options that mount(8) and fstab put in the list for themselves (and
 * systemd for its fstab generator): dropped here, so that
 * `payloadfs STORE MNT -o defaults,_netdev,x-systemd.automount` (what
 * mount.fuse3 runs for an fstab line) mounts. mount.fuse3 strips some of
 * them too; not all versions strip all. */
static int mount_only_option(const char *arg)
{
	static const char *const names[] = {
		"defaults", "_netdev", "auto", "noauto", "nofail", "user", "nouser",
		"users", "owner", "group", "comment", "loop",
		/* atime policies. payloadfs never updates atime on read (only
		 * utimensat(2) sets it: docs/design.md, "Not implemented"), and
		 * the kernel never updates a FUSE inode's atime itself, so every
		 * policy gives the same result: accepted, ignored. libfuse 3.14
		 * refuses these in its own parser; it accepts noatime and atime
		 * (the MS_NOATIME flag, shown in /proc/mounts), which are left
		 * to it. */
		"relatime", "norelatime", "strictatime", "nostrictatime",
		"lazytime", "nolazytime", "nodiratime", "diratime",
	};

	if (strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(arg, names[i]) == 0)
			return 1;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct opts *o = data;

	(void)out;
	switch (key) {
	case KEY_HELP: o->help = 1; return 0;
	case KEY_VERSION: o->version = 1; return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (!o->store) {
			o->store = strdup(arg);
			return 0;
		}
		return 1;
	case FUSE_OPT_KEY_OPT:
		return mount_only_option(arg) ? 0 : 1;
	default:
		return 1;
	}
}

static void usage(const char *prog)
{
	printf("usage: %s STORE MOUNTPOINT [options]\n\n"
	       "Mount the payload store STORE (created when the directory is empty) on\n"
	       "MOUNTPOINT. Unmount with: fusermount3 -u MOUNTPOINT\n\n"
	       "payloadfs options:\n"
	       "    -o fragment_size=BYTES  target fragment size (K/M/G suffixes; default 1M)\n"
	       "    -o cache_size=BYTES     fragment cache budget (default 256M)\n"
	       "    -o spill_size=BYTES     staged bytes an open file keeps in memory before\n"
	       "                            spilling to STORE/staging (default 8M)\n"
	       "    -o logfile=PATH         log to PATH instead of syslog when daemonized\n"
	       "    -o log_level=LEVEL      error, warn, info (default) or debug: the most\n"
	       "                            verbose messages logged (-d: debug)\n"
	       "    -o pidfile=PATH         write the daemon's pid to PATH\n"
	       "    -o max_views=N          views in use at once (default 262144; ENFILE beyond)\n"
	       "    -o ro                   mount read-only\n"
	       "    -o sync                 every close(2) and namespace change is durable when\n"
	       "                            it returns; by default the newest one becomes\n"
	       "                            durable with the next one, at fsync(2), or within\n"
	       "                            sync_ms\n"
	       "    -o sync_ms=N            flush interval of the newest change (default 1000)\n"
	       "    -o read_ahead=BYTES     kernel read-ahead window of the mount (default 4M;\n"
	       "                            needs root, else the kernel's default stays)\n"
	       "    -o threads=N            worker threads for decompression, compression and\n"
	       "                            read-ahead (default: one per CPU; 0: none, so\n"
	       "                            no read-ahead and serial decoding)\n"
	       "    -o rados_timeout=SECONDS  RADOS stores: bound of every cluster operation\n"
	       "                            (default 30): a commit fails with ETIMEDOUT or EIO\n"
	       "    -o rados_lease=SECONDS  RADOS writer: its lease on the store (default 30)\n"
	       "    -o follower_lease=SECONDS  RADOS writer: a follower that did not renew its\n"
	       "                            record for this long is dropped (default 30)\n"
	       "    -o base_every=N         RADOS writer: a base every N log entries (10000)\n"
	       "    -o disk_cache=BYTES     RADOS: images fetched from the cluster kept in\n"
	       "                            STORE/cache (default 1G)\n"
	       "    -o direct_io            reads bypass the kernel page cache (every read goes\n"
	       "                            to the daemon; no MAP_SHARED mmap); by default an\n"
	       "                            object's current version is page-cached\n"
	       "    -o page_cache           the default (kept for compatibility)\n"
	       "    -o allow_other          let other users in (permissions are enforced)\n"
	       "    -o defaults,_netdev,auto,noauto,nofail,user,users,x-*  mount(8)/fstab\n"
	       "                            options: accepted and ignored\n"
	       "    -o relatime,noatime,...  atime policies: accepted; atime changes only by\n"
	       "                            utimensat(2), never on read, whichever is given\n"
	       "    -f                      stay in the foreground, log to stderr\n"
	       "    -d                      debug: foreground, log every request\n"
	       "    -h, --help              this help\n"
	       "    -V, --version           print the version\n\n", prog);
	printf("FUSE options:\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* Parse BYTES with an optional K/M/G suffix. @return 0 or -EINVAL. */
static int parse_size(const char *s, size_t min, size_t max, size_t *out)
{
	char *end;
	unsigned long long v;

	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || v < min || v > max)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

/* The device number ("MAJOR:MINOR") of the mount on MNT, from
 * /proc/self/mountinfo (stat(2) of the mount point would ask this very
 * daemon, which is not serving yet). @return 0, or -ENOENT. */
static int mount_dev(const char *mnt, char *dev, size_t cap)
{
	char line[8192], point[4096], majmin[64];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...; spaces in paths are \040 */
		if (sscanf(line, "%*s %*s %63s %*s %4095s", majmin, point) != 2)
			continue;
		if (strcmp(point, mnt) == 0 && strlen(majmin) < cap) {
			strcpy(dev, majmin);
			rc = 0;       /* the last match is the newest mount */
		}
	}
	fclose(f);
	return rc;
}

/* Find the sysfs file of the kernel read-ahead window of the mount at
 * MNT (its backing device info) into P, to be written once the kernel
 * processed our INIT reply (which caps the window: pfs_tune_read_ahead).
 * Without it, every sequential page-cache read is cut into 128 KiB
 * requests. */
static void find_read_ahead(struct pfs *p, const char *mnt, size_t bytes)
{
	char dev[64];

	if (mount_dev(mnt, dev, sizeof(dev)) < 0) {
		log_info("read-ahead window left at the kernel's default (%s not in mountinfo)", mnt);
		return;
	}
	snprintf(p->ra_path, sizeof(p->ra_path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	p->ra_bytes = bytes;
}

/* Parse a decimal number from MIN to MAX into *OUT (unchanged when S is
 * NULL). @return 0 or -EINVAL. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* Report a start-up failure: through the pipe in daemon mode. */
static int report_fd = -1;

static int fail(const char *what, const char *why)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "payloadfs: %s: %s\n", what, why);

	if (report_fd >= 0) {
		if (write(report_fd, line, (size_t)n) < 0)
			return 1;
	} else {
		fputs(line, stderr);
	}
	return 1;
}

/* store_opts.lock_note: the old daemon of the store is still exiting (an
 * unmount just returned) and store_open waits for it. Said in the log and,
 * while the daemon's start-up still has the terminal, there too. */
static int note_to_stderr;

static void lock_note(const char *dir, unsigned wait_ms)
{
	log_warn("%s: the store is held by a payloadfs daemon or payloadctl that is exiting: "
		 "waiting for it (%u ms at most)", dir, wait_ms);
	if (note_to_stderr)
		fprintf(stderr, "payloadfs: %s: the store is held by a payloadfs daemon or payloadctl "
			"that is exiting: waiting for it (%u s at most)\n", dir, (wait_ms + 999) / 1000);
}

/* Daemon mode: the parent waits for the child's word and exits with it. */
static int become_daemon(void)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		char buf[1024];
		ssize_t n, total = 0;
		close(pfd[1]);
		while ((n = read(pfd[0], buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
			total += n;
		buf[total] = '\0';
		if (total == 1 && buf[0] == '\0')
			_exit(0);
		if (total > 0)
			fputs(buf, stderr);
		else
			fputs("payloadfs: daemon exited during start-up\n", stderr);
		_exit(1);
	}
	close(pfd[0]);
	setsid();
	report_fd = pfd[1];
	return 0;
}

static void daemon_ready(int keep_stderr)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (!keep_stderr)
			dup2(fd, 2);   /* with -o logfile, stderr is the log */
		if (fd > 2)
			close(fd);
	}
	if (chdir("/") < 0)
		log_warn("chdir /: %s", strerror(errno));
	if (report_fd >= 0) {
		char ok = '\0';
		if (write(report_fd, &ok, 1) < 0)
			log_warn("start-up report lost");
		close(report_fd);
		report_fd = -1;
	}
}

/* Write the pid to PATH, created at most 0644 whatever the umask (a
 * pidfile that others may write could make a script signal the wrong
 * process). @return 0 or -errno. */
static int write_pidfile(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

	if (!f) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f) ? -errno : 0;
}

/* Remove PATH if it still names this process (a daemon that mounted the
 * store after us may have written its own pid there). */
static void remove_pidfile(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "re");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	if (f && atoi(buf) == (int)getpid())
		unlink(path);
}

/* -o log_level=NAME as a syslog level. @return 0 or -EINVAL. */
static int parse_log_level(const char *s, int *level)
{
	static const struct { const char *name; int level; } names[] = {
		{ "error", LOG_ERR }, { "err", LOG_ERR }, { "warn", LOG_WARNING },
		{ "warning", LOG_WARNING }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};

	if (!s)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			*level = names[i].level;
			return 0;
		}
	return -EINVAL;
}

static void setup_log(const struct opts *o, int foreground, int level)
{
	if (o->logfile) {
		int fd = open(o->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		log_init("payloadfs", LOG_TO_STDERR, level);
	} else {
		log_init("payloadfs", foreground ? LOG_TO_STDERR : LOG_TO_SYSLOG, level);
	}
}

static int serve(struct fuse_session *se, struct fuse_cmdline_opts *co)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (co->singlethread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, co->clone_fd);
	if (co->max_idle_threads <= 1024)
		fuse_loop_cfg_set_idle_threads(cfg, co->max_idle_threads);
	fuse_loop_cfg_set_max_threads(cfg, co->max_threads && co->max_threads <= 1024 ? co->max_threads : 16);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/* The device I/O of the session: plain read(2) and writev(2) that let
 * initflags see the INIT request and grant parallel directory operations
 * in the INIT reply, which libfuse 3.14 leaves out (fs/initflags.h). */
static ssize_t dev_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	if (n > 0)
		initflags_seen_request(buf, (size_t)n);
	return n;
}

static ssize_t dev_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (initflags_patch_reply(iov, count))
		log_debug("INIT: granted%s%s", initflags_parallel_dirops() ?
			  " FUSE_PARALLEL_DIROPS (lookups in one directory run in parallel)" : "",
			  initflags_handle_killpriv() ? " FUSE_HANDLE_KILLPRIV (setuid/setgid are the daemon's)" : "");
	return writev(fd, iov, count);
}

static const struct fuse_custom_io dev_io = { .writev = dev_writev, .read = dev_read };

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co = { 0 };
	struct store_opts so = { .create = 1, .sweep = 1 };
	struct opts o = { 0 };
	struct pfs pfs = { 0 };
	struct fuse_session *se = NULL;
	char store_abs[PATH_MAX], fsname[PATH_MAX + 96];
	int rc = 1, mounted = 0, handlers = 0;
	size_t read_ahead = (size_t)4 << 20, max_views = 0, disk_cache = 0;
	int log_level = LOG_INFO;

	/* Fragments are ~1 MiB buffers freed in any order by many threads: a
	 * fixed mmap threshold returns them to the system at once, so the
	 * daemon's RSS follows the cache budget instead of the heap's peak. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) < 0) {
		rc = fail("options", "cannot parse the command line");
		goto out;
	}
	if (o.help || o.version) {
		if (o.help)
			usage(argv[0]);
		else
			printf("payloadfs %s (FUSE library %s)\n", PFS_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (fuse_parse_cmdline(&args, &co) != 0)
		goto out;
	if (!o.store || !co.mountpoint)
		rc = fail("usage", "payloadfs STORE MOUNTPOINT [-f] [-d] [-o OPTIONS] (see --help)");
	else if (parse_size(o.fragment_size, 4096, (size_t)256 << 20, &so.fragment_size))
		rc = fail("fragment_size", "must be a size between 4K and 256M");
	else if (parse_size(o.cache_size, 1 << 20, (size_t)1 << 40, &so.cache_size))
		rc = fail("cache_size", "must be a size of at least 1M");
	else if (parse_size(o.read_ahead, 0, (size_t)1 << 30, &read_ahead))
		rc = fail("read_ahead", "must be a size of at most 1G");
	else if (parse_size(o.max_views, 1, (size_t)1 << 24, &max_views))
		rc = fail("max_views", "must be a number between 1 and 16M");
	else if (parse_uint(o.threads, 0, 64, &so.threads))
		rc = fail("threads", "must be a number from 0 to 64");
	else if (parse_uint(o.sync_ms, 10, 600000, &so.sync_ms))
		rc = fail("sync_ms", "must be a number of milliseconds from 10 to 600000");
	else if (parse_size(o.spill_size, 4096, (size_t)1 << 40, &so.spill_size))
		rc = fail("spill_size", "must be a size of at least 4K");
	else if (parse_uint(o.rados_timeout, 1, 3600, &so.rados_timeout))
		rc = fail("rados_timeout", "must be a number of seconds from 1 to 3600");
	else if (parse_uint(o.rados_lease, 3, 3600, &so.rados_lease))
		rc = fail("rados_lease", "must be a number of seconds from 3 to 3600");
	else if (parse_uint(o.follower_lease, 3, 86400, &so.follower_lease))
		rc = fail("follower_lease", "must be a number of seconds from 3 to 86400");
	else if (parse_uint(o.base_every, 1, 100000000, &so.base_every))
		rc = fail("base_every", "must be a number of log entries from 1 to 100000000");
	else if (parse_size(o.disk_cache, 1 << 20, (size_t)1 << 50, &disk_cache))
		rc = fail("disk_cache", "must be a size of at least 1M");
	else if (parse_log_level(o.log_level, &log_level))
		rc = fail("log_level", "must be error, warn, info or debug");
	else if (!realpath(o.store, store_abs))
		rc = fail(o.store, errno == ENOENT ? "no such directory" : strerror(errno));
	else if (fault_arm_spec(getenv("PAYLOADFS_FAULT")) < 0)
		rc = fail("PAYLOADFS_FAULT", "bad fault specification");
	else
		rc = 0;
	if (rc)
		goto out;
	rc = 1;
	so.no_threads = o.threads && so.threads == 0;   /* threads=0: no workers */
	so.disk_cache = disk_cache;
	so.sync = o.sync;
	so.rdonly = o.ro;
	so.sweep = !o.ro;
	so.lock_shared = o.ro;
	so.daemon = 1;
	so.lock_note = lock_note;
	note_to_stderr = !co.foreground && !o.logfile;   /* else the log is stderr */
	/* The FUSE session first, in the foreground: an unknown option is
	 * refused (libfuse names it on stderr) before anything else happens. */
	snprintf(fsname, sizeof(fsname), "-ofsname=payloadfs:%s,subtype=payloadfs,default_permissions",
		 store_abs);
	if (fuse_opt_add_arg(&args, fsname) || fn_init(max_views)) {
		fail("start-up", "out of memory");
		goto out;
	}
	se = fuse_session_new(&args, &pfs_ops, sizeof(pfs_ops), &pfs);
	if (!se) {
		fail("options", "unknown or invalid option (named above; see --help)");
		goto out;
	}
	if (!co.foreground && become_daemon() < 0) {
		fail("daemon", strerror(errno));
		goto out;
	}
	setup_log(&o, co.foreground, co.debug ? LOG_DEBUG : log_level);

	rc = store_open(store_abs, &so, &pfs.st);
	if (rc) {
		fail(o.store, store_strerror(rc));
		rc = 1;
		goto out;
	}
	pfs.rdonly = o.ro;
	if (store_get_conf(pfs.st)->kind == STORE_RADOS && store_get_conf(pfs.st)->role == STORE_FOLLOWER) {
		pfs.rdonly = 1;               /* a follower: every change is EROFS */
		store_set_change_cb(pfs.st, pfs_applied, &pfs);
	} else if (store_get_conf(pfs.st)->kind == STORE_LOCAL) {
		store_set_change_cb(pfs.st, pfs_applied, &pfs);   /* swaps: ops.c (6h) */
	}
	pfs.page_cache = !o.direct_io;
	pfs.cache_size = so.cache_size;
	pfs.started_ns = store_now_ns();
	handlers = fuse_set_signal_handlers(se) == 0;
	if (!handlers || fuse_session_mount(se, co.mountpoint) != 0) {
		fail(co.mountpoint, "cannot mount (is it an existing, empty directory you may mount on?)");
		rc = 1;
		goto out;
	}
	mounted = 1;
	if (fuse_session_custom_io(se, &dev_io, fuse_session_fd(se)) != 0) {
		fail("start-up", "cannot set the session's device I/O");
		rc = 1;
		goto out;
	}
	find_read_ahead(&pfs, co.mountpoint, read_ahead);
	if (o.pidfile && (rc = write_pidfile(o.pidfile)) < 0) {
		fail(o.pidfile, strerror(-rc));
		rc = 1;
		goto out;
	}
	log_info("serving %s on %s", store_abs, co.mountpoint);
	if (notify_start(se) < 0) {
		fail("start-up", "cannot start the notifier thread");
		rc = 1;
		goto out;
	}
	if (!co.foreground)
		daemon_ready(o.logfile != NULL);
	rc = serve(se, &co) ? 1 : 0;
	log_info("unmounted %s", co.mountpoint);
out:
	if (pfs.st)      /* no callback once the notifier and the nodes go */
		store_set_change_cb(pfs.st, NULL, NULL);
	notify_stop();
	if (se) {
		if (mounted)
			fuse_session_unmount(se);
		if (handlers)   /* the session is made before the store opens */
			fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fn_fini();
	/* before the store's lock goes: a daemon remounting the store at once
	 * (storelock.h) may then write the same pidfile */
	if (o.pidfile && mounted)
		remove_pidfile(o.pidfile);
	store_close(pfs.st);
	free(co.mountpoint);
	fuse_opt_free_args(&args);
	free(o.store);
	free(o.fragment_size);
	free(o.cache_size);
	free(o.threads);
	free(o.read_ahead);
	free(o.sync_ms);
	free(o.rados_timeout);
	free(o.rados_lease);
	free(o.follower_lease);
	free(o.base_every);
	free(o.disk_cache);
	free(o.max_views);
	free(o.spill_size);
	free(o.logfile);
	free(o.log_level);
	free(o.pidfile);
	return rc;
}
