/* ctl_msg — payloadctl's error messages and option parsing (see ctl.h),
 * apart from main() so that tests can link the subcommands. */
#include "tools/ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ctl_err(const char *what, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "payloadctl: %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "payloadctl: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'payloadctl %s --help'.\n", cmd);
	return CTL_USAGE;
}

int ctl_getopt(const char *cmd, int argc, char **argv, const char *shortopts, int *flags,
	       const char *help, int *nargs)
{
	int n = 1, opts_done = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (opts_done || a[0] != '-' || a[1] == '\0') {
			argv[n++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			opts_done = 1;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(help, stdout);
			return CTL_OK;
		}
		if (a[1] == '-')
			return ctl_usage(cmd, "unknown option '%s'", a);
		for (const char *c = a + 1; *c; c++) {
			const char *p = strchr(shortopts, *c);
			if (!p)
				return ctl_usage(cmd, "unknown option '-%c'", *c);
			flags[p - shortopts] = 1;
		}
	}
	*nargs = n;
	return -1;
}
