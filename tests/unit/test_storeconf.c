/* test_storeconf — the store's configuration record (index/storeconf.c):
 * round trips of local and RADOS writer/follower records; every malformed
 * record, unknown key or kind is refused; fields that cannot be encoded
 * are refused; POOL/NAME parsing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "index/storeconf.h"
#include "tests/unit/tap.h"

static int roundtrip(const struct store_conf *c)
{
	char buf[STORECONF_MAX];
	struct store_conf d;
	int n = storeconf_encode(c, buf, sizeof(buf));

	return n > 0 && storeconf_decode(buf, (size_t)n, &d) == 0 && memcmp(&d, c, sizeof(d)) == 0;
}

static int dec(const char *s)
{
	struct store_conf c;

	return storeconf_decode(s, strlen(s), &c);
}

int main(void)
{
	struct store_conf c = { 0 }, d;
	char buf[STORECONF_MAX];

	CHECK(roundtrip(&c), "a local store round-trips");
	CHECK_EQ(storeconf_encode(&c, buf, sizeof(buf)), 11, "... as \"kind=local\\n\"");
	c.kind = STORE_RADOS;
	strcpy(c.pool, "pfs");
	strcpy(c.name, "events");
	CHECK(roundtrip(&c), "a RADOS writer round-trips");
	c.role = STORE_FOLLOWER;
	strcpy(c.ceph_conf, "/etc/ceph/a b.conf");
	strcpy(c.ceph_id, "pipeline");
	CHECK(roundtrip(&c), "a RADOS follower with a configuration file and a user round-trips");
	d = c;
	d.pool[0] = '\0';
	CHECK_EQ(storeconf_encode(&d, buf, sizeof(buf)), -EINVAL, "RADOS without a pool cannot be encoded");
	d = c;
	strcpy(d.name, "a\nb");
	CHECK_EQ(storeconf_encode(&d, buf, sizeof(buf)), -EINVAL, "a newline in a field cannot be encoded");
	d = c;
	strcpy(d.pool, "a/b");
	CHECK_EQ(storeconf_encode(&d, buf, sizeof(buf)), -EINVAL, "a pool with '/' cannot be encoded");
	CHECK_EQ(dec("kind=local\n"), 0, "kind=local decodes");
	CHECK_EQ(dec("kind=local"), -EUCLEAN, "a line without its newline is refused");
	CHECK_EQ(dec(""), -EUCLEAN, "an empty record is refused");
	CHECK_EQ(dec("kind=local\nkind=local\n"), -EUCLEAN, "a repeated kind is refused");
	CHECK_EQ(dec("kind=cloud\n"), -EPROTO, "an unknown kind is -EPROTO (a newer build's)");
	CHECK_EQ(dec("kind=local\ncolour=red\n"), -EPROTO, "an unknown key is -EPROTO");
	CHECK_EQ(dec("kind=local\npool=x\n"), -EUCLEAN, "a local store with a pool is refused");
	CHECK_EQ(dec("kind=rados\npool=p\nname=n\n"), -EUCLEAN, "RADOS without a role is refused");
	CHECK_EQ(dec("kind=rados\nrole=boss\npool=p\nname=n\n"), -EUCLEAN, "an unknown role is refused");
	CHECK_EQ(dec("kind=rados\nrole=writer\nname=n\n"), -EUCLEAN, "RADOS without a pool is refused");
	CHECK_EQ(dec("kind=rados\nrole=writer\npool=p\nname=n\n"), 0, "a minimal RADOS writer decodes");
	CHECK_EQ(dec("kind=rados\nrole=writer\npool=p\nname=\x01\n"), -EUCLEAN, "a control byte is refused");
	CHECK_EQ(dec("kindlocal\n"), -EUCLEAN, "a line without '=' is refused");
	memset(&d, 0, sizeof(d));
	CHECK(storeconf_parse_target("pool/name", &d) == 0 && !strcmp(d.pool, "pool") && !strcmp(d.name, "name"),
	      "POOL/NAME parses");
	CHECK_EQ(storeconf_parse_target("pool", &d), -EINVAL, "no slash: -EINVAL");
	CHECK_EQ(storeconf_parse_target("/name", &d), -EINVAL, "no pool: -EINVAL");
	CHECK_EQ(storeconf_parse_target("pool/", &d), -EINVAL, "no name: -EINVAL");
	CHECK_EQ(storeconf_parse_target("a/b/c", &d), -EINVAL, "two slashes: -EINVAL");
	return tap_done();
}
