/* storelock — see storelock.h. */
#include "index/storelock.h"
#include "cache/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 10

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Undo the octal escapes of a /proc/self/mounts field (\040 for a space,
 * \011, \012, \134) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

int storelock_mounted(const char *dir)
{
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f = fopen("/proc/self/mounts", "re");

	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		char *save = NULL, *src = strtok_r(line, " ", &save);
		char *mnt = src ? strtok_r(NULL, " ", &save) : NULL;
		char *type = mnt ? strtok_r(NULL, " ", &save) : NULL;
		if (!type || strcmp(type, "fuse.payloadfs") != 0 || strncmp(src, "payloadfs:", 10) != 0)
			continue;
		unescape(src);
		found = strcmp(src + 10, dir) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

/* 1 when a tool holds its busy mark on DIRFD's directory. */
static int marked(int dirfd)
{
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

	return fcntl(dirfd, F_OFD_GETLK, &l) == 0 && l.l_type != F_UNLCK;
}

/* Invariant (2): a live holder exists. */
static int live(const char *real, int dirfd)
{
	return marked(dirfd) || storelock_mounted(real);
}

static unsigned wait_bound(const struct storelock_opts *o)
{
	const char *e = getenv("PAYLOADFS_LOCK_WAIT_MS");
	char *end;
	unsigned long v;

	if (o->wait_ms)
		return o->wait_ms;
	if (e && *e) {
		v = strtoul(e, &end, 10);
		if (!*end && v <= 600000)
			return (unsigned)v;
	}
	return STORELOCK_WAIT_MS;
}

int storelock_take(const char *dir, const struct storelock_opts *o, int *lockfd, int *markfd)
{
	int op = (o->shared ? LOCK_SH : LOCK_EX) | LOCK_NB;
	char real[PATH_MAX];
	int fd, rc = 0, noted = 0;
	int64_t deadline = 0;

	*lockfd = *markfd = -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!realpath(dir, real))
		snprintf(real, sizeof(real), "%s", dir);
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			rc = -errno;
			break;
		}
		if (live(real, fd)) {
			rc = -EBUSY;     /* (3): refused at once */
			break;
		}
		if (!noted) {
			unsigned bound = wait_bound(o);
			noted = 1;
			deadline = now_ms() + bound;
			if (o->note)
				o->note(dir, bound);
			else
				log_warn("%s: waiting up to %u ms for the payloadfs daemon or payloadctl "
					 "that is closing the store", dir, bound);
		}
		if (now_ms() >= deadline) {
			rc = -EBUSY;
			break;
		}
		usleep(POLL_MS * 1000);
	}
	if (!rc && !o->daemon) {
		/* (2): the mark on a descriptor of its own, so dropping it
		 * keeps the flock */
		struct flock l = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
		int m = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (m < 0 || fcntl(m, F_OFD_SETLK, &l) < 0) {
			rc = -errno;
			if (m >= 0)
				close(m);
		} else {
			*markfd = m;
		}
	}
	if (rc) {
		close(fd);
		return rc;
	}
	if (noted)
		log_info("%s: the store was released, going on", dir);
	*lockfd = fd;
	return 0;
}

void storelock_unmark(int *markfd)
{
	if (*markfd >= 0)
		close(*markfd);
	*markfd = -1;
}
