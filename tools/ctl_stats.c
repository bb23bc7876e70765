/* ctl_stats — `payloadctl stats [--prometheus] MNT`: what a mounted
 * daemon is doing, read from its synthetic files: MNT/.stats (JSON) or
 * MNT/.metrics (the Prometheus text format, docs/metrics.md), copied to
 * stdout, e.g. for node_exporter's textfile collector:
 *   payloadctl stats --prometheus /mnt/payload > DIR/payloadfs.prom.$$ &&
 *   mv DIR/payloadfs.prom.$$ DIR/payloadfs.prom
 * Unlike the other commands it works on a mount, not on a store. */
#include "tools/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help[] =
	"usage: payloadctl stats [--prometheus] MNT\n"
	"\n"
	"Print what the payloadfs daemon serving the mount point MNT is doing: its\n"
	"cache, I/O, commit and memory figures, as JSON (MNT/.stats).\n"
	"  --prometheus   the Prometheus text exposition format instead\n"
	"                 (MNT/.metrics; metrics listed in payloadctl(1))\n";

int ctl_stats(int argc, char **argv)
{
	int prom = 0, n, rc, fd;
	struct ctl_opt opts[] = {
		{ 0, "prometheus", &prom, NULL },
	};
	char path[4096], buf[65536];
	ssize_t got;

	rc = ctl_parse("stats", argc, argv, opts, sizeof(opts) / sizeof(opts[0]), help, &n);
	if (rc >= 0)
		return rc;
	if (n != 2)
		return ctl_usage("stats", n < 2 ? "missing MNT" : "too many arguments");
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", argv[1], prom ? ".metrics" : ".stats") >=
	    sizeof(path)) {
		ctl_err(argv[1], "%s", strerror(ENAMETOOLONG));
		return CTL_FAIL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat sb;
		if (e == ENOENT && stat(argv[1], &sb) == 0)
			ctl_err(argv[1], "not a payloadfs mount point (no %s)", prom ? ".metrics" : ".stats");
		else
			ctl_err(argv[1], "%s", strerror(e));
		return CTL_FAIL;
	}
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		if ((rc = ctl_write_all(STDOUT_FILENO, buf, (size_t)got)) < 0) {
			ctl_err("stdout", "%s", strerror(-rc));
			close(fd);
			return CTL_FAIL;
		}
	}
	if (got < 0) {
		ctl_err(path, "%s", strerror(errno));
		close(fd);
		return CTL_FAIL;
	}
	close(fd);
	return CTL_OK;
}
