/* ctl_init — `payloadctl init STORE`: make an empty (or missing) directory
 * a store. An existing store is only checked (opened read-only), never
 * modified, so running init on a mounted store is harmless. */
#include "tools/ctl.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
	"usage: payloadctl init STORE\n"
	"\n"
	"Initialise STORE, an empty directory (created when missing), as a payload\n"
	"store: STORE/index, STORE/fragments and STORE/staging. A directory that is\n"
	"not empty and not a store is refused. On an existing store, init only\n"
	"checks that it opens.\n";

static int is_store(const char *dir)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/index/data.mdb", dir);
	return stat(path, &sb) == 0;
}

int ctl_init(int argc, char **argv)
{
	struct store_opts o = { .create = 1 };
	struct store *st;
	const char *dir;
	int flags[1], n, rc = ctl_getopt("init", argc, argv, "", flags, help, &n);

	if (rc >= 0)
		return rc;
	if (n != 2)
		return ctl_usage("init", n < 2 ? "missing STORE" : "too many arguments");
	dir = argv[1];
	if (is_store(dir)) {
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
		return CTL_FAIL;
	}
	store_close(st);
	printf("initialised an empty payloadfs store in %s\n", dir);
	return CTL_OK;
}
