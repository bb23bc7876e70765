/* ctl_util — opening a store read-only, resolving paths inside it, and the
 * formatting helpers payloadctl's subcommands share. */
#include "tools/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CTL_MAXLINKS 40   /* symbolic links followed per path, as Linux */

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

/* Split off the next component of *P (skipping slashes) into NAME.
 * @return its length (0 at the end), -ENAMETOOLONG. *LAST is set when no
 * component follows, *SLASH when a '/' follows it. */
static int next_comp(const char **p, char name[IDX_NAME_MAX + 1], int *last, int *slash)
{
	const char *s = *p, *e;
	size_t len;

	while (*s == '/')
		s++;
	e = strchr(s, '/');
	len = e ? (size_t)(e - s) : strlen(s);
	if (len > IDX_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, s, len);
	name[len] = '\0';
	*p = s + len;
	*slash = **p == '/';
	s = *p;
	while (*s == '/')
		s++;
	*last = *s == '\0';
	return (int)len;
}

static int resolve_from(struct store *st, uint64_t start, const char *path, int follow,
			int *links, struct idx_inode *out)
{
	char name[IDX_NAME_MAX + 1];
	struct idx_inode cur, next;
	const char *p = path;
	int rc = store_getattr(st, start, &cur);

	while (!rc) {
		int last, slash, len = next_comp(&p, name, &last, &slash);
		if (len <= 0) {
			rc = len;
			break;
		}
		if (!S_ISDIR(cur.mode))
			return -ENOTDIR;
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			rc = store_getattr(st, cur.parent ? cur.parent : IDX_ROOT_INO, &cur);
			continue;
		}
		if (cur.ino == IDX_ROOT_INO && strcmp(name, ".by-id") == 0) {
			uint64_t id = 0;
			if (last || (len = next_comp(&p, name, &last, &slash)) <= 0)
				return len < 0 ? len : -ENOENT;
			rc = view_parse_id(name, (size_t)len, &id);
			if (!rc)
				rc = id < IDX_FIRST_INO ? -ENOENT : store_getattr(st, id, &next);
			if (!rc && !S_ISREG(next.mode))
				rc = -ENOENT;
		} else if (cur.ino == IDX_ROOT_INO && strcmp(name, ".snapshots") == 0) {
			struct idx_snap s;
			if (last || (len = next_comp(&p, name, &last, &slash)) <= 0)
				return len < 0 ? len : -ENOENT;
			rc = store_snap_lookup(st, name, &s);
			if (!rc)
				rc = store_getattr(st, s.first, &next);
		} else {
			rc = store_lookup(st, cur.ino, name, &next);
		}
		if (rc)
			break;
		if (S_ISLNK(next.mode) && (!last || follow || slash)) {
			char target[4096];
			ssize_t n = store_readlink(st, next.ino, target, sizeof(target));
			if (n < 0)
				return (int)n;
			if (++*links > CTL_MAXLINKS)
				return -ELOOP;
			if (target[0] == '/')
				return -EXDEV;
			rc = resolve_from(st, cur.ino, target, 1, links, &next);
			if (rc)
				return rc;
		}
		if (last && slash && !S_ISDIR(next.mode))
			return -ENOTDIR;
		cur = next;
	}
	if (!rc)
		*out = cur;
	return rc;
}

int ctl_resolve(struct store *st, const char *path, int follow, struct idx_inode *out)
{
	int links = 0;

	return resolve_from(st, IDX_ROOT_INO, path, follow, &links, out);
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
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
