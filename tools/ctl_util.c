/* ctl_util — opening a store read-only, resolving paths inside it, and the
 * formatting helpers payloadctl's subcommands share. */
#include "tools/ctl.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


int ctl_open(const char *dir, struct store **out)
{
	struct store_opts o = { .cache_size = CTL_CACHE, .rdonly = 1 };
	int rc = store_open(dir, &o, out);

	if (rc)
		ctl_err(dir, "%s", store_strerror(rc));
	return rc;
}

void ctl_lock_note(const char *dir, unsigned wait_ms)
{
	ctl_err(dir, "the store is held by a payloadfs daemon or payloadctl that is exiting: "
		"waiting for it (%u s at most)", (wait_ms + 999) / 1000);
}

int ctl_open_rw(const char *dir, const char *cmd, const struct store_opts *o, struct store **out)
{
	struct store_opts d = { .cache_size = CTL_CACHE };
	int rc;

	d = o ? *o : d;
	d.lock_note = ctl_lock_note;
	rc = store_open(dir, &d, out);

	if (rc == -EBUSY)
		ctl_err(dir, "the store is in use (mounted by payloadfs, or another payloadctl "
			"holds it): unmount it first; %s needs the store to itself", cmd);
	else if (rc)
		ctl_err(dir, "%s", store_strerror(rc));
	return rc;
}

int ctl_open_status(int rc)
{
	return rc == -EBUSY ? CTL_USAGE : CTL_FAIL;
}

int ctl_resolve(struct store *st, const char *path, int follow, struct idx_inode *out)
{
	return store_resolve(st, path, follow, out);
}

const char *ctl_strerror(int err)
{
	if (err == -EXDEV)
		return "symbolic link with an absolute target (a path of the mount, not of the store)";
	return strerror(-err);
}

uint64_t ctl_header_rows(const struct idx_inode *in)
{
	if (in->fmt_kind == PFMT_FIXED)
		return 0;
	return in->header < in->rows ? in->header : in->rows;
}

uint64_t ctl_data_rows(const struct idx_inode *in)
{
	return in->rows - ctl_header_rows(in);
}

void ctl_mode_str(uint32_t mode, char b[11])
{
	static const char rwx[] = "rwxrwxrwx";

	switch (mode & S_IFMT) {
	case S_IFDIR: b[0] = 'd'; break;
	case S_IFLNK: b[0] = 'l'; break;
	case S_IFCHR: b[0] = 'c'; break;
	case S_IFBLK: b[0] = 'b'; break;
	case S_IFIFO: b[0] = 'p'; break;
	case S_IFSOCK: b[0] = 's'; break;
	default: b[0] = '-'; break;
	}
	for (int i = 0; i < 9; i++)
		b[1 + i] = mode & (0400u >> i) ? rwx[i] : '-';
	if (mode & S_ISUID)
		b[3] = b[3] == 'x' ? 's' : 'S';
	if (mode & S_ISGID)
		b[6] = b[6] == 'x' ? 's' : 'S';
	if (mode & S_ISVTX)
		b[9] = b[9] == 'x' ? 't' : 'T';
	b[10] = '\0';
}

const char *ctl_type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symbolic link";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

void ctl_time_str(int64_t ns, char *buf, size_t cap)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	time_t t;
	struct tm tm;
	size_t n;

	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	t = (time_t)sec;
	if (!localtime_r(&t, &tm)) {
		snprintf(buf, cap, "%lld.%09lld", (long long)sec, (long long)frac);
		return;
	}
	n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, cap - n, ".%09lld ", (long long)frac);
	if (n < cap)
		strftime(buf + n, cap - n, "%z", &tm);
}

void ctl_put_name(FILE *f, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\%03o", *p);
		else
			fputc(*p, f);
	}
}

int ctl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* a non-blocking pipe (another process's flags:
				 * cache/rados_conn.c (3)): wait until it drains */
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
					continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;           /* go on: remove what can be removed */
}

void ctl_remove_new_store(const char *dir)
{
	static const char *const subs[] = { "index", "fragments", "staging", "cache" };
	char path[4096];

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
}
