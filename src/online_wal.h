/*
 * online_wal.h — the online cache on hot standbys (online_wal.c): invalidations shipped in WAL
 * through a custom resource manager, pending until their transaction ends on the standby.
 */
#ifndef FS_ONLINE_WAL_H
#define FS_ONLINE_WAL_H

#include "postgres.h"

#include "port/atomics.h"

/* One view's changes in a transaction: the whole view, or the cache hashes of its keys. */
typedef struct FsWalView
{
	int32		view_id;
	bool		whole;
	bool		free_slot;
	int			nhashes;
	const uint64 *hashes;
} FsWalView;

/* From _PG_init when preloaded: the resource manager and the shared memory. */
extern void fs_wal_init(void);

/* Writer, before its commit record: the views and keys it changed (nothing when not replicated). */
extern void fs_wal_log_changes(const FsWalView *views, int nviews);

/* Shared state read on every lookup (NULL when not preloaded). */
typedef struct FsWalCtl FsWalCtl;
extern FsWalCtl *fs_wal_ctl;

/* Whether anything is pending at all: the cheap first test of a lookup. */
extern bool fs_wal_any_pending(void);

/* Whether a lookup of this key must not trust the cache (an invalidation is pending for it). */
extern bool fs_wal_pending(Oid dboid, int32 view_id, uint64 hash);

/* Whether the cache may serve lookups here (false on a standby until it caught up). */
extern bool fs_wal_cache_trusted(void);

/*
 * The launcher's part: resolves pending invalidations whose transaction ended, and makes a
 * standby's cache trusted once it caught up. Returns the milliseconds to wait before polling
 * again while work remains (1 while transactions are pending, 10 while waiting for old ones to
 * end), else 0.
 */
extern int	fs_wal_launcher_work(void);

#endif
