/*
 * online_cache_shmem.c — the online cache's shared memory: its size from
 * feature_store.cache_size, its request and setup in the postmaster's hooks, and the GUCs that
 * steer the cache. The layout is in online_cache_int.h.
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "online_cache.h"
#include "online_cache_int.h"

#define FS_TRANCHE		"feature_store_cache"

int			fs_cache_size_kb = 65536;
char	   *fs_cache_database = NULL;
bool		fs_reload_after_commit = true;

FsCacheCtl *fs_cache_ctl = NULL;
FsEntry    *fs_cache_entries = NULL;
FsBucket   *fs_cache_buckets = NULL;
static bool preloaded = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Number of entries cache_size allows, a multiple of the bucket width, at least one bucket. Each
 * entry also costs an eighth of its bucket's header: cache_size covers both.
 */
static int64
cache_nentries(void)
{
	int64		n = ((int64) fs_cache_size_kb * 1024) /
		(sizeof(FsEntry) + sizeof(FsBucket) / FS_CACHE_WAYS);

	StaticAssertStmt(sizeof(FsEntry) == 256, "an entry is 4 cache lines");
	StaticAssertStmt(sizeof(FsBucket) == FS_LINE, "a bucket header is one cache line");
	n -= n % FS_CACHE_WAYS;
	return Max(n, FS_CACHE_WAYS);
}

/* Control block plus the entry array: the whole request, fixed at postmaster start. */
static Size
cache_shmem_size(void)
{
	Size		sz = add_size(CACHELINEALIGN(sizeof(FsCacheCtl)) + PG_CACHE_LINE_SIZE,
							  mul_size(cache_nentries(), sizeof(FsEntry)));

	return add_size(sz, mul_size(cache_nentries() / FS_CACHE_WAYS, sizeof(FsBucket)));
}

/* Requests the cache's shared memory and locks (PG15: only allowed in this hook). */
static void
fs_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(cache_shmem_size());
	RequestNamedLWLockTranche(FS_TRANCHE, FS_CACHE_NLOCKS + 1);
}

/* Attaches to (or, first time after (re)start, initializes) the cache. */
static void
fs_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	fs_cache_ctl = ShmemInitStruct("feature_store online cache", cache_shmem_size(), &found);
	/* entries on cache-line boundaries: a 256-byte entry spans 4 lines, not 5 */
	fs_cache_entries = (FsEntry *) CACHELINEALIGN((char *) fs_cache_ctl + sizeof(FsCacheCtl));
	fs_cache_buckets = (FsBucket *) (fs_cache_entries + cache_nentries());
	if (!found)
	{
		LWLockPadded *tranche = GetNamedLWLockTranche(FS_TRANCHE);

		memset(fs_cache_ctl, 0, sizeof(FsCacheCtl));
		fs_cache_ctl->viewlock = &tranche[0].lock;
		fs_cache_ctl->locks = &tranche[1].lock;
		pg_atomic_init_u64(&fs_cache_ctl->global_gen, 1);
		fs_cache_ctl->nentries = cache_nentries();
		fs_cache_ctl->nbuckets = fs_cache_ctl->nentries / FS_CACHE_WAYS;
		SpinLockInit(&fs_cache_ctl->mutex);
		for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
		{
			pg_atomic_init_u64(&fs_cache_ctl->views[i].gen, 0);
			for (int c = 0; c < FS_NCOUNTERS; c++)
				pg_atomic_init_u64(&fs_cache_ctl->views[i].ctr[c], 0);
		}
		memset(fs_cache_entries, 0, fs_cache_ctl->nentries * sizeof(FsEntry));
		memset(fs_cache_buckets, 0, fs_cache_ctl->nbuckets * sizeof(FsBucket));
		for (int64 b = 0; b < fs_cache_ctl->nbuckets; b++)
		{
			pg_atomic_init_u64(&fs_cache_buckets[b].keygen, 0);
			pg_atomic_init_u32(&fs_cache_buckets[b].seq, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Defines the GUCs and, when preloaded, hooks shared memory. The cache only exists when
 * preloaded: its size is fixed at postmaster start.
 */
void
fs_cache_init(void)
{
	/* PGC_POSTMASTER may only be defined while preloading (else FATAL); then they do nothing */
	GucContext	startup = process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP;

	DefineCustomIntVariable("feature_store.cache_size",
							"Shared memory for the online feature cache.",
							"Rows that do not fit are evicted or declined and read from the online tables.",
							&fs_cache_size_kb, 65536, 64, INT_MAX / 2,
							startup, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomStringVariable("feature_store.database",
							   "Database whose online features the cache worker serves.",
							   NULL, &fs_cache_database, "postgres",
							   startup, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("feature_store.reload_after_commit",
							 "Whether the cache worker reloads a view after each commit that changed it.",
							 "Off: after the first load, changed views are refilled lazily by lookups "
							 "(read-through), which suits large views with frequent small writes.",
							 &fs_reload_after_commit, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	preloaded = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = fs_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = fs_shmem_startup;
}

/* True once this process is attached to the cache (preloaded and shared memory set up). */
bool
fs_cache_preloaded(void)
{
	return preloaded && fs_cache_ctl != NULL;
}

/*
 * The setting is fixed at server start and a database in use cannot be renamed, so whether
 * MyDatabaseId is the database of that name cannot change while this backend lives: computed once.
 */
bool
fs_cache_serves_this_database(void)
{
	static int	serves = -1;

	if (!fs_cache_preloaded())
		return false;
	if (serves < 0)
		serves = OidIsValid(MyDatabaseId) &&
			get_database_oid(fs_cache_database, true) == MyDatabaseId;
	return serves == 1;
}
