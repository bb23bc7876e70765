/* payload_int.h — what the files of libpayload share (not installed). */
#ifndef PAYLOAD_INT_H
#define PAYLOAD_INT_H

#include "lib/payload.h"

struct store;

struct payload_store {
	struct store *st;
	int rdwr;
	char *dir;
};

/* Set the calling thread's payload_errmsg() to FMT...: strerror(RC);
 * @return RC. */
int pl_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
