/*
 * online_cache_int.h — the shared-memory layout of the online cache, shared by its files:
 * online_cache.c (the protocol: probes, fills, bumps), online_cache_shmem.c (sizing, setup,
 * GUCs) and online_cache_worker.c (the worker's bookkeeping and the statistics). Other
 * concerns use online_cache.h only.
 */
#ifndef FS_ONLINE_CACHE_INT_H
#define FS_ONLINE_CACHE_INT_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

#include "online_cache.h"

#define FS_CACHE_WAYS	8
/*
 * The CPU's cache line, the unit of prefetches and of the header layout: 64 bytes on x86-64
 * and most ARM. Not PG_CACHE_LINE_SIZE, which is 128 (a padding size against false sharing):
 * stepping prefetches by it fetched only every other line of an entry.
 */
#define FS_LINE			64
#define FS_CACHE_NLOCKS 128


/*
 * A view's slot is identified by its database and view id: view ids are per database, and a
 * slot (its generation and its counters) must never be shared with a view of another database
 * that happens to have the same id (fs_stat_online of that database would show its counters,
 * its writers would bump the cached database's generations).
 */
typedef struct FsViewSlot
{
	Oid			dboid;			/* database of the view */
	int32		view_id;		/* 0 = free */
	pg_atomic_uint64 gen;
	uint64		loaded_gen;		/* generation the worker last loaded completely */
	uint64		guard;			/* aggregation views: fingerprint of the source's triggers */
	pg_atomic_uint32 used;		/* entries written under this slot and not yet replaced (fairness) */
	pg_atomic_uint64 ctr[FS_NCOUNTERS];
} FsViewSlot;

/* An entry: a 22-byte header, then the key image and the payload (256 bytes in all). */
typedef struct FsEntry
{
	uint64		gen;			/* the tag T */
	int32		view_id;		/* 0 = empty */
	uint32		home;			/* the key's home bucket, whose K applies to it */
	uint16		slot;
	uint16		len;			/* payload bytes after the key image */
	uint8		keylen;
	uint8		ref;
	char		data[FS_CACHE_DATA];
} FsEntry;

/* A bucket's header, one cache line (see LAYOUT AND LOCKING). */
typedef struct FsBucket
{
	pg_atomic_uint64 keygen;	/* K of the keys whose home bucket this is */
	pg_atomic_uint32 seq;		/* odd while a writer changes the bucket */
	uint32		tag[FS_CACHE_WAYS]; /* high half of each entry's key hash */
	uint8		lines[FS_CACHE_WAYS];	/* cache lines spanned by each entry's used bytes */
	char		pad[FS_LINE - 12 - 5 * FS_CACHE_WAYS];
} FsBucket;

/*
 * A database the cache serves or is about to (see online_worker.c): listed by the launcher
 * from pg_database, served once its worker found the extension there. `served` is the
 * protocol's per-database switch: it changes only under viewlock (exclusive), together with
 * freeing every view slot of the database, and is read without a lock by readers (before
 * their W) and by committing writers (after their commit became visible). The other fields
 * are guarded by FsCacheCtl.mutex.
 */
typedef struct FsCacheDb
{
	Oid			dboid;			/* InvalidOid = free entry */
	pg_atomic_uint32 served;
	bool		need_probe;		/* a CREATE EXTENSION committed here: (re)start its worker */
	bool		ext_absent;		/* the worker found no feature_store here */
	bool		stop;			/* the launcher asks the worker to exit */
	int			worker_pid;
	FsWorkerState worker_state;
	Latch	   *worker_latch;
	char		last_error[256];
	TimestampTz last_error_at;
	int64		worker_errors;
} FsCacheDb;

typedef struct FsCacheCtl
{
	LWLock	   *viewlock;
	LWLock	   *locks;			/* FS_CACHE_NLOCKS bucket locks follow viewlock */
	pg_atomic_uint64 global_gen;
	int64		nentries;
	int64		nbuckets;
	int			nserved;		/* databases with served set (viewlock) */
	slock_t		mutex;			/* guards the launcher fields below and dbs[] but served */
	int			worker_pid;		/* the launcher's */
	FsWorkerState worker_state;
	Latch	   *worker_latch;
	bool		rescan;			/* a CREATE EXTENSION committed in a database not listed yet */
	char		last_error[256];
	TimestampTz last_error_at;
	int64		worker_errors;
	FsCacheDb	dbs[FS_CACHE_MAX_DBS];
	FsViewSlot	views[FS_CACHE_MAX_VIEWS];
} FsCacheCtl;

/* The cache in shared memory (online_cache_shmem.c attaches them); NULL when not preloaded. */
extern FsCacheCtl *fs_cache_ctl;
extern FsEntry *fs_cache_entries;
extern FsBucket *fs_cache_buckets;

/* Clears every entry of a freed view slot (online_cache.c). */
extern void fs_cache_sweep_view(int slot, int32 view_id);

/* Live = its view still owns the slot, and neither V nor its key's K moved past its tag. */
static inline bool
fs_cache_entry_is_live(FsEntry *e)
{
	FsViewSlot *s;

	if (e->view_id == 0)
		return false;
	s = &fs_cache_ctl->views[e->slot];
	return s->view_id == e->view_id && pg_atomic_read_u64(&s->gen) <= e->gen &&
		pg_atomic_read_u64(&fs_cache_buckets[e->home].keygen) <= e->gen;
}

#endif
