/* payloadctl — offline tools over a payload store: dispatch and usage.
 * The subcommands live in ctl_*.c, messages and option parsing in
 * ctl_msg.c. */
#include "tools/ctl.h"
#include "cache/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: payloadctl [--debug] COMMAND [ARGS]\n"
	"\n"
	"Offline tools over a payloadfs store (reading is safe while it is mounted).\n"
	"\n"
	"commands:\n"
	"  init STORE                 make an empty directory a store\n"
	"  ls [-d] STORE [PATH]       list a directory (-d: or the entry itself)\n"
	"  stat [-v] STORE PATH       all attributes of one entry (-v: its fragments)\n"
	"  cat STORE PATH[@VIEW]      write an object or a view to stdout;\n"
	"                             VIEW is rows=A:B, part=K/N or meta\n"
	"  fsck [--repair] STORE      check fragments, reference counts and dirents\n"
	"                             (--repair: unmounted, make it consistent)\n"
	"  import STORE SRC... DEST   copy local files and directories into the\n"
	"                             (unmounted) store at DEST\n"
	"  export STORE PATH... DEST  copy objects, views and directories out to DEST\n"
	"  gc [-n] STORE              remove unreferenced images, staging files,\n"
	"                             unlinked inodes (unmounted; -n: only list)\n"
	"  compress STORE             compress fragments staged raw at ingest\n"
	"                             (unmounted; the daemon does it in the background)\n"
	"  snapshot STORE DEST        a consistent copy of the whole store in DEST\n"
	"                             (hard links of the images; also while mounted)\n"
	"  bench DIR                  measure the store library in a scratch store\n"
	"  stats [--prometheus] MNT   what the daemon mounted on MNT is doing: JSON,\n"
	"                             or the Prometheus text format\n"
	"\n"
	"PATH is relative to the store root (\"/\" or \"\" is the root); .by-id/ID\n"
	"names an object by its id.\n"
	"\n"
	"options:\n"
	"  --debug      also print the store library's log messages\n"
	"  -h, --help   this help (COMMAND --help: the command's)\n"
	"  -V, --version\n"
	"\n"
	"exit status: 0 success; 1 failure (fsck: damage found); 2 usage error\n"
	"(fsck: the check could not run; import, gc, fsck --repair: the store is\n"
	"in use).\n";

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "init", ctl_init },
	{ "ls", ctl_ls },
	{ "stat", ctl_stat },
	{ "cat", ctl_cat },
	{ "fsck", ctl_fsck },
	{ "import", ctl_import },
	{ "export", ctl_export },
	{ "gc", ctl_gc },
	{ "compress", ctl_compress },
	{ "snapshot", ctl_snapshot },
	{ "bench", ctl_bench },
	{ "stats", ctl_stats },
};

int main(int argc, char **argv)
{
	int i = 1, debug = 0;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			return CTL_OK;
		}
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("payloadctl %s (store format %d)\n", PCTL_VERSION, IDX_FORMAT_VERSION);
			return CTL_OK;
		}
		if (strcmp(argv[i], "--debug") == 0) {
			debug = 1;
			continue;
		}
		fprintf(stderr, "payloadctl: unknown option '%s'\nTry 'payloadctl --help'.\n", argv[i]);
		return CTL_USAGE;
	}
	/* The library logs what it sees (a damaged fragment, a refused
	 * store); the tool reports every failure itself, one line each, so
	 * those messages are shown only with --debug. */
	log_init("payloadctl", LOG_TO_STDERR, debug ? LOG_DEBUG : -1);
	if (i == argc) {
		fputs("payloadctl: missing command\n", stderr);
		fputs(usage_text, stderr);
		return CTL_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		fputs(usage_text, stdout);
		return CTL_OK;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].run(argc - i, argv + i);
	fprintf(stderr, "payloadctl: %s: unknown command\nTry 'payloadctl --help'.\n", argv[i]);
	return CTL_USAGE;
}
