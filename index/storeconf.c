/* storeconf — see storeconf.h. */
#include "index/storeconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int field_ok(const char *s, int may_be_empty)
{
	size_t n = strlen(s);

	if (!n)
		return may_be_empty;
	if (n > STORECONF_FIELD_MAX)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 0;
	return 1;
}

int storeconf_encode(const struct store_conf *c, char *out, size_t cap)
{
	int n;

	if (c->kind == STORE_LOCAL) {
		n = snprintf(out, cap, "kind=local\n");
		return n < 0 || (size_t)n >= cap ? -EINVAL : n;
	}
	if (c->kind != STORE_RADOS || (c->role != STORE_WRITER && c->role != STORE_FOLLOWER) ||
	    !field_ok(c->pool, 0) || !field_ok(c->name, 0) || !field_ok(c->ceph_conf, 1) ||
	    !field_ok(c->ceph_id, 1) || strchr(c->pool, '/'))
		return -EINVAL;
	n = snprintf(out, cap, "kind=rados\nrole=%s\npool=%s\nname=%s\nceph_conf=%s\nceph_id=%s\n",
		     c->role == STORE_WRITER ? "writer" : "follower", c->pool, c->name, c->ceph_conf,
		     c->ceph_id);
	return n < 0 || (size_t)n >= cap ? -EINVAL : n;
}

/* Copy the value V/VLEN into DST (cap STORECONF_FIELD_MAX + 1). */
static int take(char *dst, const char *v, size_t vlen)
{
	if (vlen > STORECONF_FIELD_MAX)
		return -EUCLEAN;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	return field_ok(dst, 1) ? 0 : -EUCLEAN;
}

int storeconf_decode(const char *buf, size_t len, struct store_conf *c)
{
	int have_kind = 0, have_role = 0, rc = 0;
	size_t at = 0;

	memset(c, 0, sizeof(*c));
	while (at < len && !rc) {
		const char *line = buf + at, *nl = memchr(line, '\n', len - at), *eq;
		size_t l, klen;
		if (!nl)
			return -EUCLEAN;           /* every line ends in '\n' */
		l = (size_t)(nl - line);
		at += l + 1;
		eq = memchr(line, '=', l);
		if (!eq)
			return -EUCLEAN;
		klen = (size_t)(eq - line);
		const char *v = eq + 1;
		size_t vlen = l - klen - 1;
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(line, s, klen) == 0)
		if (KEY("kind")) {
			if (vlen == 5 && !memcmp(v, "local", 5))
				c->kind = STORE_LOCAL;
			else if (vlen == 5 && !memcmp(v, "rados", 5))
				c->kind = STORE_RADOS;
			else
				return -EPROTO;
			have_kind++;
		} else if (KEY("role")) {
			if (vlen == 6 && !memcmp(v, "writer", 6))
				c->role = STORE_WRITER;
			else if (vlen == 8 && !memcmp(v, "follower", 8))
				c->role = STORE_FOLLOWER;
			else
				return -EUCLEAN;
			have_role++;
		} else if (KEY("pool")) {
			rc = take(c->pool, v, vlen);
		} else if (KEY("name")) {
			rc = take(c->name, v, vlen);
		} else if (KEY("ceph_conf")) {
			rc = take(c->ceph_conf, v, vlen);
		} else if (KEY("ceph_id")) {
			rc = take(c->ceph_id, v, vlen);
		} else {
			return -EPROTO;
		}
#undef KEY
	}
	if (rc)
		return rc;
	if (have_kind != 1)
		return -EUCLEAN;
	if (c->kind == STORE_RADOS && (have_role != 1 || !c->pool[0] || !c->name[0]))
		return -EUCLEAN;
	if (c->kind == STORE_LOCAL && (have_role || c->pool[0] || c->name[0]))
		return -EUCLEAN;
	return 0;
}

int storeconf_parse_target(const char *spec, struct store_conf *c)
{
	const char *slash = strchr(spec, '/');
	size_t pl;

	if (!slash || slash == spec || !slash[1] || strchr(slash + 1, '/'))
		return -EINVAL;
	pl = (size_t)(slash - spec);
	if (pl > STORECONF_FIELD_MAX || strlen(slash + 1) > STORECONF_FIELD_MAX)
		return -EINVAL;
	memcpy(c->pool, spec, pl);
	c->pool[pl] = '\0';
	strcpy(c->name, slash + 1);
	return field_ok(c->pool, 0) && field_ok(c->name, 0) ? 0 : -EINVAL;
}
