/* ctl_msg — payloadctl's error messages and option parsing (see ctl.h),
 * apart from main() so that tests can link the subcommands. */
#include "tools/ctl.h"

#include <errno.h>
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

int ctl_flush_stdout(void)
{
	int err;

	if (fflush(stdout) == 0)
		return 0;
	err = errno;
	ctl_err("stdout", "%s", strerror(err));
	return -err;
}

/* What both parsers do alike with ARGV[I]: an operand (or anything after
 * `--`) moves to ARGV[*N]; `--` ends the options; --help/-h prints HELP
 * on stdout. @return ARG_PLAIN (done with it), ARG_HELP (help printed) or
 * ARG_OPTION (an option, for the caller to parse). */
enum { ARG_PLAIN, ARG_HELP, ARG_OPTION };
static int plain_arg(char **argv, int i, int *n, int *opts_done, const char *help)
{
	const char *a = argv[i];

	if (*opts_done || a[0] != '-' || a[1] == '\0') {
		argv[(*n)++] = argv[i];
		return ARG_PLAIN;
	}
	if (strcmp(a, "--") == 0) {
		*opts_done = 1;
		return ARG_PLAIN;
	}
	if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
		fputs(help, stdout);
		return ARG_HELP;
	}
	return ARG_OPTION;
}

int ctl_getopt(const char *cmd, int argc, char **argv, const char *shortopts, int *flags,
	       const char *help, int *nargs)
{
	int n = 1, opts_done = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		switch (plain_arg(argv, i, &n, &opts_done, help)) {
		case ARG_PLAIN:
			continue;
		case ARG_HELP:
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

static const struct ctl_opt *find_long(const struct ctl_opt *o, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].longname && strlen(o[i].longname) == len && strncmp(o[i].longname, name, len) == 0)
			return &o[i];
	return NULL;
}

static const struct ctl_opt *find_short(const struct ctl_opt *o, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].shortname && o[i].shortname == c)
			return &o[i];
	return NULL;
}

int ctl_parse(const char *cmd, int argc, char **argv, const struct ctl_opt *opts, size_t nopts,
	      const char *help, int *nargs)
{
	int n = 1, opts_done = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct ctl_opt *o;

		switch (plain_arg(argv, i, &n, &opts_done, help)) {
		case ARG_PLAIN:
			continue;
		case ARG_HELP:
			return CTL_OK;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			if (!(o = find_long(opts, nopts, a + 2, len)))
				return ctl_usage(cmd, "unknown option '%.*s'", (int)len + 2, a);
			if (!o->arg) {
				if (eq)
					return ctl_usage(cmd, "option '--%s' takes no value", o->longname);
				*o->flag = 1;
			} else if (eq) {
				*o->arg = eq + 1;
			} else if (i + 1 < argc) {
				*o->arg = argv[++i];
			} else {
				return ctl_usage(cmd, "option '--%s' needs a value", o->longname);
			}
			continue;
		}
		for (const char *c = a + 1; *c; c++) {
			if (!(o = find_short(opts, nopts, *c)))
				return ctl_usage(cmd, "unknown option '-%c'", *c);
			if (!o->arg) {
				*o->flag = 1;
				continue;
			}
			if (c[1])
				*o->arg = c + 1;
			else if (i + 1 < argc)
				*o->arg = argv[++i];
			else
				return ctl_usage(cmd, "option '-%c' needs a value", *c);
			break;
		}
	}
	*nargs = n;
	return -1;
}

int ctl_parse_size(const char *s, uint64_t max, int zero_ok, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case 'k': case 'K': mul = 1ull << 10; p++; break;
	case 'm': case 'M': mul = 1ull << 20; p++; break;
	case 'g': case 'G': mul = 1ull << 30; p++; break;
	default: break;
	}
	if (*p || (v && v > max / mul) || v * mul > max || (!v && !zero_ok))
		return -EINVAL;
	*out = v * mul;
	return 0;
}
