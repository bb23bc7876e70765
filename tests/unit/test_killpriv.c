/* test_killpriv — which setuid/setgid bits a data change or a chown clears
 * (fs/killpriv.c): the rule of killpriv.h, checked case by case, and the
 * capability probe on this process and on a thread that is gone. */
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>

#include "fs/killpriv.h"
#include "tests/unit/tap.h"

static void test_rule(void)
{
	uint32_t grp[] = { 700, 800 };
	struct kp_caller user = { .capable = 0, .fsgid = 100, .groups = grp, .ngroups = 2 };
	struct kp_caller root = { .capable = 1, .fsgid = 0 };

	CHECK_EQ(kp_kill_mask(S_IFREG | 04777, 100, &user), S_ISUID, "(2) setuid always goes");
	CHECK_EQ(kp_kill_mask(S_IFREG | 02777, 100, &user), S_ISGID, "(3) setgid with group execute goes");
	CHECK_EQ(kp_kill_mask(S_IFREG | 06755, 100, &user), S_ISUID | S_ISGID, "(2)+(3) both go");
	CHECK_EQ(kp_kill_mask(S_IFREG | 02767, 100, &user), 0, "(3) a locking mark stays for the fsgid");
	CHECK_EQ(kp_kill_mask(S_IFREG | 02767, 800, &user), 0, "(3) and for a supplementary group");
	CHECK_EQ(kp_kill_mask(S_IFREG | 02767, 900, &user), S_ISGID, "(3) it goes for a caller outside the group");
	CHECK_EQ(kp_kill_mask(S_IFREG | 06777, 100, &root), 0, "(1) CAP_FSETID keeps both");
	CHECK_EQ(kp_kill_mask(S_IFDIR | 02777, 100, &user), 0, "(1) only regular files");
	CHECK_EQ(kp_kill_mask(S_IFREG | 0777, 100, &user), 0, "no bit, nothing to clear");
	CHECK_EQ(kp_need_groups(S_IFREG | 02767, 900, 100), 1, "groups decide a locking mark of another group");
	CHECK_EQ(kp_need_groups(S_IFREG | 02767, 100, 100), 0, "not for the caller's own fsgid");
	CHECK_EQ(kp_need_groups(S_IFREG | 02777, 900, 100), 0, "nor with group execute");
	CHECK_EQ(kp_need_groups(S_IFREG | 04777, 900, 100), 0, "nor without setgid");
}

/* Rule (4): chown. */
static void test_chown(void)
{
	uint32_t grp[] = { 700, 800 };
	struct kp_caller user = { .capable = 0, .fsgid = 100, .groups = grp, .ngroups = 2 };
	struct kp_caller root = { .capable = 1, .fsgid = 0 };

	CHECK_EQ(kp_chown_mask(S_IFREG | 04755, 100, &root), S_ISUID, "(4) a chown by root clears setuid too");
	CHECK_EQ(kp_chown_mask(S_IFREG | 04755, 100, &user), S_ISUID, "(4) and by a user");
	CHECK_EQ(kp_chown_mask(S_IFREG | 02755, 100, &root), S_ISGID, "(4) setgid with group execute: for root too");
	CHECK_EQ(kp_chown_mask(S_IFREG | 02745, 100, &root), 0, "(4) a locking mark stays for CAP_FSETID");
	CHECK_EQ(kp_chown_mask(S_IFREG | 02745, 800, &user), 0, "(4) and for a member of the group");
	CHECK_EQ(kp_chown_mask(S_IFREG | 02745, 900, &user), S_ISGID, "(4) not for a caller outside it");
	CHECK_EQ(kp_chown_mask(S_IFDIR | 06755, 100, &user), 0, "(4) never a directory");
	CHECK_EQ(kp_chown_mask(S_IFREG | 0755, 100, &user), 0, "no bit, nothing to clear");
}

/* A child that drops CAP_FSETID from its effective set: not capable. */
static void test_capable(void)
{
	int p[2], st;
	char got = '?';
	pid_t pid;

	CHECK_EQ(kp_capable(0), 0, "pid 0 (the kernel's own request) is not capable");
	CHECK_EQ(kp_capable(0x7ffffff0u), 0, "a thread that is gone is not capable");
	if (geteuid() != 0) {
		printf("# not root: the CAP_FSETID checks need root, not run\n");
		return;
	}
	CHECK_EQ(kp_capable((uint32_t)getpid()), 1, "root in the daemon's user namespace is capable");
	CHECK(pipe(p) == 0, "pipe");
	pid = fork();
	if (pid == 0) {
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2];
		char c;
		syscall(SYS_capget, &h, d);
		d[0].effective &= ~(1u << CAP_FSETID);
		syscall(SYS_capset, &h, d);
		c = kp_capable((uint32_t)getpid()) ? '1' : '0';
		(void)!write(p[1], &c, 1);
		_exit(0);
	}
	close(p[1]);
	(void)!read(p[0], &got, 1);
	close(p[0]);
	waitpid(pid, &st, 0);
	CHECK_EQ(got, '0', "root without CAP_FSETID in its effective set is not capable");
}

int main(void)
{
	test_rule();
	test_chown();
	test_capable();
	return tap_done();
}
