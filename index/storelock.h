/* storelock — the inter-process lock of a store directory, and how an
 * opener tells a holder that is exiting from one that is live.
 *
 * `fusermount3 -u MNT && payloadfs STORE MNT` must work: the unmount
 * returns while the old daemon still closes the store (handles, the final
 * index flush, emptying storage=memory objects), so the new one would find
 * the lock taken for a few dozen milliseconds. It waits for such a holder,
 * a bounded time, and still refuses at once a store that is in use.
 *
 * Invariants:
 *  (1) A read-write opener holds an exclusive flock() on the STORE
 *      directory, a read-only daemon a shared one, for as long as it has
 *      the store open (store.c (5)); tools that only read take none.
 *  (2) A holder is LIVE while it serves: a daemon while a mount of the
 *      store (fsname `payloadfs:STORE`, STORE's real path) is in the
 *      opener's mount table; a tool (any holder that is not a daemon)
 *      while it holds its BUSY MARK, an OFD read lock on byte 0 of the
 *      STORE directory that store_close() drops before anything else. A
 *      daemon takes no mark: its mount is its mark, and the unmount ends
 *      it before the daemon even notices.
 *  (3) An opener that finds the lock taken fails at once with -EBUSY when
 *      a live holder exists (a mount of the store, or a busy mark).
 *      Otherwise the holder is exiting (or a daemon still starting, not
 *      mounted yet): the opener says so once (the note callback) and
 *      polls for the lock every 10 ms, up to the wait bound; a live holder
 *      seen meanwhile ends the wait with -EBUSY, and so does the bound.
 *  (4) The mark is an OFD lock (F_OFD_SETLK): it belongs to the open file
 *      description, so it goes with the mark's descriptor, is kept across
 *      the daemon's fork, and a probe (F_OFD_GETLK) takes nothing, so two
 *      openers probing at once never see each other as live.
 * A mount of the store in another mount namespace is not seen: an opener
 * there waits out the bound and then fails with -EBUSY (slower, not wrong).
 */
#ifndef PFS_STORELOCK_H
#define PFS_STORELOCK_H

#define STORELOCK_WAIT_MS 5000   /* default bound of the wait for an exiting holder */

struct storelock_opts {
	int shared;          /* a shared lock (read-only daemon), else exclusive */
	int daemon;          /* a daemon: no busy mark (its mount says it is live) */
	unsigned wait_ms;    /* the bound; 0 = PAYLOADFS_LOCK_WAIT_MS from the
			      * environment, else STORELOCK_WAIT_MS */
	/* Called once when the opener starts waiting (may be NULL: a log line). */
	void (*note)(const char *dir, unsigned wait_ms);
};

/* Take the lock of store directory DIR as O says (invariant 3).
 * @param[out] lockfd the descriptor holding the flock (close to release)
 * @param[out] markfd the descriptor holding the busy mark, or -1 (daemon)
 * @return 0; -EBUSY a live holder, or the lock still taken after the
 *   bound; -errno (DIR cannot be opened). Both outputs are -1 on failure. */
int storelock_take(const char *dir, const struct storelock_opts *o, int *lockfd, int *markfd);

/* Drop the busy mark (*MARKFD, set to -1; nothing when it is -1): the
 * holder is exiting from here on and openers wait for it. */
void storelock_unmark(int *markfd);

/* 1 when DIR (a real path) is the source of a payloadfs mount in this
 * process's mount table, else 0. */
int storelock_mounted(const char *dir);

#endif
