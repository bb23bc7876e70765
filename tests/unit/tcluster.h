/* tcluster — for unit tests that need the throwaway Ceph cluster. */
#ifndef PFS_TCLUSTER_H
#define PFS_TCLUSTER_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/tclock.h"

/* No cluster in the environment (PFS_CEPH_CONF): run this binary again
 * under tests/rados/with-cluster.sh (from the source root), which starts
 * one and stops it by PID; elsewhere bail out with how to get one. */
static inline void need_cluster(void)
{
	static const char *wrap = "tests/rados/with-cluster.sh";
	char self[4096];
	ssize_t n;

	if (getenv("PFS_CEPH_CONF"))
		return;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0 && access(wrap, X_OK) == 0) {
		self[n] = '\0';
		printf("# no PFS_CEPH_CONF: starting a cluster (%s)\n", wrap);
		fflush(stdout);
		execl(wrap, wrap, self, (char *)NULL);
	}
	printf("Bail out! no cluster: run from the source root, or export the variables of "
	       "`tests/rados/cluster.sh env DIR`\n");
	exit(1);
}

#endif
