/* payload_int — what the files of lib/ share and the library does not export. */
#ifndef PAYLOAD_INT_H
#define PAYLOAD_INT_H

#include "lib/payload.h"

struct store;

struct payload_store {
	struct store *st;
	int rdwr;
	char *dir;
};

/* The core store behind PS. */
struct store *payload_core(payload_store *ps);
/* Set the calling thread's payload_errmsg() to FMT...: strerror(RC);
 * @return RC. */
int payload_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
