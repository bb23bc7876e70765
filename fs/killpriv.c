/* killpriv — see killpriv.h. */
#include "fs/killpriv.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAP_FSETID_BIT 4     /* linux/capability.h CAP_FSETID */

static int in_group(uint32_t gid, const struct kp_caller *c)
{
	if (c->fsgid == gid)
		return 1;
	for (size_t i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return 1;
	return 0;
}

uint32_t kp_kill_mask(uint32_t mode, uint32_t gid, const struct kp_caller *c)
{
	uint32_t kill = 0;

	if (!S_ISREG(mode) || c->capable)
		return 0;                                   /* (1) */
	if (mode & S_ISUID)
		kill |= S_ISUID;                            /* (2) */
	if ((mode & S_ISGID) && ((mode & S_IXGRP) || !in_group(gid, c)))
		kill |= S_ISGID;                            /* (3) */
	return kill;
}

uint32_t kp_chown_mask(uint32_t mode, uint32_t gid, const struct kp_caller *c)
{
	uint32_t kill = 0;

	if (S_ISDIR(mode))
		return 0;
	if (mode & S_ISUID)
		kill |= S_ISUID;                            /* (4) */
	if ((mode & S_ISGID) && ((mode & S_IXGRP) || (!c->capable && !in_group(gid, c))))
		kill |= S_ISGID;                            /* (4) */
	return kill;
}

int kp_need_groups(uint32_t mode, uint32_t gid, uint32_t fsgid)
{
	return S_ISREG(mode) && (mode & S_ISGID) && !(mode & S_IXGRP) && gid != fsgid;
}

/* 1 when /proc/PID/ns/user is the daemon's own user namespace. */
static int same_userns(uint32_t pid)
{
	char path[64], mine[64], theirs[64];
	ssize_t a, b;

	snprintf(path, sizeof(path), "/proc/%u/ns/user", pid);
	a = readlink("/proc/self/ns/user", mine, sizeof(mine) - 1);
	b = readlink(path, theirs, sizeof(theirs) - 1);
	if (a <= 0 || b <= 0)
		return 0;
	return a == b && memcmp(mine, theirs, (size_t)a) == 0;
}

int kp_capable(uint32_t pid)
{
	char path[64], line[256];
	unsigned long long eff = 0;
	int found = 0;
	FILE *f;

	if (!pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			found = 1;
			break;
		}
	fclose(f);
	if (!found || !(eff & (1ull << CAP_FSETID_BIT)))
		return 0;
	return same_userns(pid);
}
