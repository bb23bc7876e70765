/* ctl_compress — `payloadctl compress STORE`: on an unmounted store, run the
 * daemon's background pass (index/recompress.c) to the end: every
 * fragment staged raw at ingest (format 5, flag 0x4) that one record names
 * is swapped for a compressed image, one small txn each, with the
 * invariants (S1)-(S6) of recompress.c. It holds the daemon's exclusive
 * lock (ctl_open_rw), so no writer runs meanwhile. Passes repeat until one
 * swaps nothing; what is left is shared by a copy or a snapshot (left raw
 * by design), or failed (the exit status says so). */
#include "tools/ctl.h"

#include <inttypes.h>
#include <stdio.h>

static const char help[] =
	"usage: payloadctl compress STORE\n"
	"\n"
	"Compress the fragments of STORE that a writer stored raw because the\n"
	"encoders were behind (the daemon does it in the background; this does it\n"
	"now, on an unmounted store). Bytes never change; each fragment gets a new,\n"
	"compressed image in a transaction of its own. The last line says:\n"
	"  compress: N fragments compressed, N left raw (shared by a copy or a snapshot)\n"
	"\n"
	"exit status: 0 done; 1 a fragment could not be compressed or the store\n"
	"could not be opened; 2 usage error, or the store is in use.\n";

int ctl_compress(int argc, char **argv)
{
	struct store *st;
	uint64_t left = 0, total = 0;
	int flags[1] = { 0 }, n, rc = ctl_getopt("compress", argc, argv, "", flags, help, &n);

	if (rc >= 0)
		return rc;
	if (n != 2)
		return ctl_usage("compress", n < 2 ? "missing STORE" : "too many arguments");
	rc = ctl_open_rw(argv[1], "compress", NULL, &st);
	if (rc)
		return ctl_open_status(rc);
	do {
		rc = store_recompress_pass(st, 256, &left);
		if (rc > 0)
			total += (uint64_t)rc;
	} while (rc > 0 && left > 0);
	if (rc < 0)
		ctl_err(argv[1], "compress: %s", ctl_strerror(rc));
	printf("compress: %" PRIu64 " fragments compressed, %" PRIu64
	       " left raw (shared by a copy or a snapshot)\n", total, left);
	store_close(st);
	return rc < 0 ? CTL_FAIL : CTL_OK;
}
