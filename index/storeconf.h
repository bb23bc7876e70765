/* storeconf — what kind of store a STORE directory is (local meta record
 * "store", format version 3, docs/format.md): a local store, or one host's
 * copy of a RADOS store (writer or follower) and how to reach the cluster.
 * Pure text encode/decode; any thread. */
#ifndef PFS_STORECONF_H
#define PFS_STORECONF_H

#include <stddef.h>

enum store_kind { STORE_LOCAL = 0, STORE_RADOS = 1 };
enum store_role { STORE_WRITER = 0, STORE_FOLLOWER = 1 };

#define STORECONF_FIELD_MAX 255
#define STORECONF_MAX 1200      /* longest encoded record */

struct store_conf {
	enum store_kind kind;
	enum store_role role;                       /* RADOS only */
	char pool[STORECONF_FIELD_MAX + 1];         /* RADOS: pool */
	char name[STORECONF_FIELD_MAX + 1];         /* RADOS: the store's namespace */
	char ceph_conf[STORECONF_FIELD_MAX + 1];    /* "" = librados's default search */
	char ceph_id[STORECONF_FIELD_MAX + 1];      /* "" = admin */
};

/* Encode C as "key=value" lines ("kind", "role", "pool", "name",
 * "ceph_conf", "ceph_id"; a value is printable ASCII without '\n').
 * @return the length written to OUT (cap STORECONF_MAX), or -EINVAL (a
 * field that cannot be encoded: empty pool or name for RADOS, a newline,
 * a control byte). */
int storeconf_encode(const struct store_conf *c, char *out, size_t cap);
/* Decode BUF/LEN. Unknown keys are refused (a newer build's record).
 * @return 0, or -EUCLEAN (malformed), -EPROTO (an unknown key or kind). */
int storeconf_decode(const char *buf, size_t len, struct store_conf *c);
/* Parse "POOL/NAME" into C's pool and name. @return 0 or -EINVAL. */
int storeconf_parse_target(const char *spec, struct store_conf *c);

#endif
