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

/*
 * The CPU's cache line, the unit of prefetches and of the page header layout: 64 bytes on x86-64
 * and most ARM. Not PG_CACHE_LINE_SIZE, which is 128 (a padding size against false sharing).
 */
#define FS_LINE			64
#define FS_CACHE_NLOCKS 128

/*
 * A page: one 4 kB (the smallest MMU page) partition of the cache holding the index of its keys
 * and their entries, so that a probe takes at most one TLB miss (see LAYOUT AND LOCKING in
 * online_cache.c). Entries are allocated in 8-byte units from the end of the page downwards.
 */
#define FS_PAGE			4096
#define FS_UNIT			8
#define FS_PAGE_UNITS	(FS_PAGE / FS_UNIT)
#define FS_PAGE_SLOTS	48		/* entries a page can index */
#define FS_PAGE_KGENS	6		/* key generations K per page */
#define FS_PAGE_INDEX	(5 * FS_LINE)	/* header line + tag, offset and reference arrays */
#define FS_PAGE_DATA_UNITS ((FS_PAGE - FS_PAGE_INDEX) / FS_UNIT)

/*
 * A view's slot is identified by its database and view id: view ids are per database, and a
 * slot (its generation and its counters) must never be shared with a view of another database
 * that happens to have the same id (fs_stat_online of that database would show its counters,
 * its writers would bump the cached database's generations).
 */
typedef struct FsViewSlot
{
	/* line 0: read by every lookup, written only when the view changes */
	Oid			dboid;			/* database of the view */
	int32		view_id;		/* 0 = free */
	pg_atomic_uint64 gen;
	uint64		loaded_gen;		/* generation the worker last loaded completely */
	uint64		guard;			/* aggregation views: fingerprint of the source's triggers */
	char		pad0[FS_LINE - 32];

	/*
	 * line 1: written by lookups (statistics) and fills (fairness), apart from line 0: sharing
	 * it, every lookup's count took the line all lookups read away from the other CPUs
	 */
	pg_atomic_uint64 used;		/* units of entries written under this slot, not yet replaced (fairness) */
	pg_atomic_uint64 ctr[FS_NCOUNTERS];
	char		pad1[FS_LINE - 8 * (1 + FS_NCOUNTERS)];
} FsViewSlot;

/*
 * An entry, at a unit boundary of its page: a 12-byte header (no view id: the slot's generation
 * tells a former view's entries apart, see the protocol; no home or size field: its page is its
 * home, its size follows from keylen + len), then the key image and the payload.
 */
typedef struct FsEntry
{
	uint64		gen;			/* the tag T */
	uint8		slot;			/* view slot (FS_CACHE_MAX_VIEWS is 256) */
	uint8		keylen;
	uint16		len;			/* payload bytes after the key image */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* key image, then payload */
} FsEntry;

#define FS_ENTRY_HDR	offsetof(FsEntry, data)
#define FS_ENTRY_UNITS(keylen, len) ((FS_ENTRY_HDR + (keylen) + (len) + FS_UNIT - 1) / FS_UNIT)

/*
 * A page's header and index: line 0 holds what every probe reads first (the change counter and
 * the key generations), lines 1-4 the slots' 16-bit hash tags, entry offsets (in units from the
 * page start; 0 = free slot) and CLOCK reference bytes (set by readers without a lock: a separate
 * array, so that a reader's racing store can only ever misplace a reference bit).
 */
typedef struct FsPage
{
	pg_atomic_uint32 seq;		/* odd while a writer changes the page */
	uint16		top;			/* lowest unit used by entry data (FS_PAGE_UNITS: none) */
	uint16		used;			/* units of the entries that slots reference */
	uint8		hand;			/* CLOCK hand */
	uint8		pad0[7];
	pg_atomic_uint64 keygen[FS_PAGE_KGENS]; /* K of the keys of this page, by tag */
	uint16		tag[FS_PAGE_SLOTS];
	uint16		off[FS_PAGE_SLOTS];
	uint8		ref[FS_PAGE_SLOTS];
	uint8		pad1[FS_PAGE_INDEX - FS_LINE - 5 * FS_PAGE_SLOTS];
	char		data[FS_PAGE - FS_PAGE_INDEX];
} FsPage;

static inline FsEntry *
fs_page_entry(FsPage *pg, int i)
{
	return (FsEntry *) ((char *) pg + pg->off[i] * FS_UNIT);
}

static inline int
fs_entry_units(const FsEntry *e)
{
	return FS_ENTRY_UNITS(e->keylen, e->len);
}

/* Which of its page's key generations a key's tag uses. */
static inline int
fs_tag_kgen(uint16 tag)
{
	return tag % FS_PAGE_KGENS;
}

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
	FsViewSlot	views[FS_CACHE_MAX_VIEWS];	/* first: line-aligned, as shared memory is */
	LWLock	   *viewlock;
	LWLock	   *locks;			/* FS_CACHE_NLOCKS bucket locks follow viewlock */
	pg_atomic_uint64 global_gen;
	int64		npages;
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
} FsCacheCtl;

/* The cache in shared memory (online_cache_shmem.c attaches them); NULL when not preloaded. */
extern FsCacheCtl *fs_cache_ctl;
extern FsPage *fs_cache_pages;

/* Clears every entry of a freed view slot (online_cache.c). */
extern void fs_cache_sweep_view(int slot, int32 view_id);

/* Bucket locks: page p is guarded by lock p mod FS_CACHE_NLOCKS. */
static inline LWLock *
fs_page_lock(int64 page)
{
	return &((LWLockPadded *) fs_cache_ctl->locks)[page % FS_CACHE_NLOCKS].lock;
}

/* Live = its view still owns the slot, and neither V nor its key's K moved past its tag. */
static inline bool
fs_cache_entry_is_live(FsPage *pg, int i)
{
	FsEntry    *e;
	FsViewSlot *s;

	if (pg->off[i] == 0)
		return false;
	e = fs_page_entry(pg, i);
	s = &fs_cache_ctl->views[e->slot];
	return s->view_id != 0 && pg_atomic_read_u64(&s->gen) <= e->gen &&
		pg_atomic_read_u64(&pg->keygen[fs_tag_kgen(pg->tag[i])]) <= e->gen;
}

/* The page allocator (online_cache_page.c); the caller holds the page's lock exclusive. */
extern int	fs_page_find(FsPage *pg, int slot, uint16 tag, const char *key, int keylen,
						 bool any_gen, uint64 want);
extern bool fs_page_store(FsPage *pg, int slot, uint16 tag, const char *key, int keylen,
						  uint64 gen, const char *payload, int len);
extern void fs_page_remove(FsPage *pg, int i);
extern void fs_page_init(FsPage *pg);
/* Units of entries a database holds (approximate; online_cache.c). */
extern int64 fs_cache_db_used(Oid dboid);

#endif
