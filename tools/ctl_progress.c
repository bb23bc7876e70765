/* ctl_progress — the progress line of import and export on a terminal
 * (stderr), the figures their summaries print, and the summary line.
 * Drawn with '\r' and erased before anything else is printed; nothing at
 * all when off. */
#include "tools/ctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define REDRAW_S 0.1

double ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ctl_fmt_bytes(uint64_t n, char *buf, size_t cap)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, cap, "%llu B", (unsigned long long)n);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, v < 10 ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

void ctl_fmt_eta(double secs, char *buf, size_t cap)
{
	unsigned long s = secs > 0 ? (unsigned long)(secs + 0.5) : 0;

	if (secs > 359999)
		snprintf(buf, cap, ">99h");
	else if (s >= 3600)
		snprintf(buf, cap, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, cap, "%lu:%02lu", s / 60, s % 60);
}

double ctl_rate(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes / 1e6 / secs : 0;
}

void ctl_tally_print(const char *cmd, const struct ctl_tally *t, uint64_t bytes, double secs)
{
	char b[32];

	ctl_fmt_bytes(bytes, b, sizeof(b));
	printf("%s: %" PRIu64 " file%s (%s), %" PRIu64 " director%s, %" PRIu64 " symlink%s", cmd,
	       t->files, t->files == 1 ? "" : "s", b, t->dirs, t->dirs == 1 ? "y" : "ies",
	       t->symlinks, t->symlinks == 1 ? "" : "s");
	if (t->hardlinks)
		printf(", %" PRIu64 " hard link%s", t->hardlinks, t->hardlinks == 1 ? "" : "s");
	if (t->others)
		printf(", %" PRIu64 " other", t->others);
	printf(" in %.2f s (%.1f MB/s)", secs, ctl_rate(bytes, secs));
	if (t->errors)
		printf("; %d error%s", t->errors, t->errors == 1 ? "" : "s");
	putchar('\n');
}

void ctl_progress_line(const struct ctl_progress *p, double now, char *buf, size_t cap)
{
	char done[32], total[32], eta[16];
	double el = now - p->t0, rate = ctl_rate(p->bytes, el);
	size_t n = 0;

	ctl_fmt_bytes(p->bytes, done, sizeof(done));
	if (p->total_bytes) {
		unsigned pct = p->bytes >= p->total_bytes ? 100 :
			(unsigned)((double)p->bytes * 100 / (double)p->total_bytes);
		ctl_fmt_bytes(p->total_bytes, total, sizeof(total));
		n = (size_t)snprintf(buf, cap, "%s / %s  %3u%%", done, total, pct);
	} else {
		n = (size_t)snprintf(buf, cap, "%s", done);
	}
	if (n < cap) {
		if (p->total_files)
			n += (size_t)snprintf(buf + n, cap - n, "  %llu/%llu files",
					      (unsigned long long)p->files, (unsigned long long)p->total_files);
		else
			n += (size_t)snprintf(buf + n, cap - n, "  %llu files", (unsigned long long)p->files);
	}
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "  %.0f MB/s", rate);
	if (n < cap && p->total_bytes && rate > 0 && p->bytes <= p->total_bytes) {
		ctl_fmt_eta((double)(p->total_bytes - p->bytes) / (rate * 1e6), eta, sizeof(eta));
		snprintf(buf + n, cap - n, "  ETA %s", eta);
	}
}

void ctl_progress_start(struct ctl_progress *p, int on)
{
	memset(p, 0, sizeof(*p));
	p->on = on;
	p->t0 = p->last = ctl_now();
}

void ctl_progress_add(struct ctl_progress *p, uint64_t bytes, uint64_t files)
{
	char line[160];
	double now;
	size_t len;

	p->bytes += bytes;
	p->files += files;
	if (!p->on)
		return;
	now = ctl_now();
	if (p->width && now - p->last < REDRAW_S)
		return;              /* the first line at once, then 10 a second */
	p->last = now;
	ctl_progress_line(p, now, line, sizeof(line));
	len = strlen(line);
	/* pad over the rest of a longer previous line */
	fprintf(stderr, "\r%s%*s", line, p->width > len ? (int)(p->width - len) : 0, "");
	fflush(stderr);
	p->width = len;
}

void ctl_progress_clear(struct ctl_progress *p)
{
	if (!p->on || !p->width)
		return;
	fprintf(stderr, "\r%*s\r", (int)p->width, "");
	fflush(stderr);
	p->width = 0;
}
