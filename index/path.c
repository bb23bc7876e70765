/* path — resolving a path inside a store to an inode, as the mount would
 * (the one implementation payloadctl and libpayload share): components
 * looked up from the root, "." and "..", symbolic links with relative
 * targets followed (at most STORE_MAXLINKS per path, as Linux; an absolute
 * target names a path of the mount, not of the store: -EXDEV), and the
 * root's synthetic directories .by-id/ID (an object by its id) and
 * .snapshots/NAME (a snapshot's root). View suffixes are not parsed here. */
#include "index/store_int.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_MAXLINKS 40

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
			if (++*links > STORE_MAXLINKS)
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

int store_resolve(struct store *st, const char *path, int follow, struct idx_inode *out)
{
	int links = 0;

	return resolve_from(st, IDX_ROOT_INO, path, follow, &links, out);
}
