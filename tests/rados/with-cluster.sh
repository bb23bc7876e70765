#!/bin/bash
# with-cluster.sh CMD [ARG...] — run CMD with a throwaway Ceph cluster:
# start one (cluster.sh start) under a new temporary directory, export its
# environment (cluster.sh env: CEPH_CONF, PFS_CEPH_CONF, PFS_RADOS_POOL,
# PFS_RADOS_CLUSTER, PFS_RADOS_CLUSTER_SH), run CMD, then on any exit stop
# the daemons by PID and remove the directory. Exit status: CMD's, or 1
# when the cluster did not start.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: with-cluster.sh CMD [ARG...]" >&2; exit 2; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/pfs-ceph.XXXXXX") || exit 1
cleanup() {
	"$HERE/cluster.sh" stop "$DIR"
	rm -rf --one-file-system "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$HERE/cluster.sh" start "$DIR" || exit 1
eval "$("$HERE/cluster.sh" env "$DIR")"
"$@"
