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
#include "utils/varlena.h"

#include "online_cache.h"
#include "online_cache_int.h"

#define FS_TRANCHE		"feature_store_cache"

int			fs_cache_size_kb = 65536;
char	   *fs_cache_database = NULL;
char	   *fs_cache_databases = NULL;
bool		fs_reload_after_commit = true;

FsCacheCtl *fs_cache_ctl = NULL;
FsPage	   *fs_cache_pages = NULL;
static bool preloaded = false;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Number of 4 kB pages cache_size allows (at least one). */
static int64
cache_npages(void)
{
	int64		n = ((int64) fs_cache_size_kb * 1024) / FS_PAGE;

	StaticAssertStmt(sizeof(FsPage) == FS_PAGE, "a cache page is one 4 kB MMU page");
	StaticAssertStmt(offsetof(FsPage, tag) == FS_LINE, "the page header is one cache line");
	StaticAssertStmt(offsetof(FsPage, data) == FS_PAGE_INDEX, "the index ends at FS_PAGE_INDEX");
	StaticAssertStmt(sizeof(FsViewSlot) == 2 * FS_LINE, "a view slot is two cache lines");
	StaticAssertStmt(FS_CACHE_MAX_VIEWS <= 256, "an entry's view slot is one byte");
	StaticAssertStmt(FS_ENTRY_HDR == 12, "an entry's header is 12 bytes");
	StaticAssertStmt(FS_ENTRY_UNITS(FS_CACHE_KEY_MAX, FS_CACHE_DATA - FS_CACHE_KEY_MAX) <= FS_PAGE_DATA_UNITS,
					 "the largest entry fits in a page");
	return Max(n, 1);
}

/*
 * Control block plus the pages (aligned to 4 kB, so that each page is one MMU page): the whole
 * request, fixed at postmaster start.
 */
static Size
cache_shmem_size(void)
{
	Size		sz = add_size(CACHELINEALIGN(sizeof(FsCacheCtl)) + FS_PAGE, 0);

	return add_size(sz, mul_size(cache_npages(), FS_PAGE));
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
	fs_cache_pages = (FsPage *) TYPEALIGN(FS_PAGE, (char *) fs_cache_ctl + sizeof(FsCacheCtl));
	if (!found)
	{
		LWLockPadded *tranche = GetNamedLWLockTranche(FS_TRANCHE);

		memset(fs_cache_ctl, 0, sizeof(FsCacheCtl));
		fs_cache_ctl->viewlock = &tranche[0].lock;
		fs_cache_ctl->locks = &tranche[1].lock;
		pg_atomic_init_u64(&fs_cache_ctl->global_gen, 1);
		fs_cache_ctl->npages = cache_npages();
		SpinLockInit(&fs_cache_ctl->mutex);
		for (int i = 0; i < FS_CACHE_MAX_DBS; i++)
			pg_atomic_init_u32(&fs_cache_ctl->dbs[i].served, 0);
		for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
		{
			pg_atomic_init_u64(&fs_cache_ctl->views[i].gen, 0);
			pg_atomic_init_u64(&fs_cache_ctl->views[i].used, 0);
			for (int c = 0; c < FS_NCOUNTERS; c++)
				pg_atomic_init_u64(&fs_cache_ctl->views[i].ctr[c], 0);
		}
		for (int64 p = 0; p < fs_cache_ctl->npages; p++)
			fs_page_init(&fs_cache_pages[p]);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* feature_store.databases: '*', empty, or a list of names (quoted names may hold commas). */
static bool
check_databases(char **newval, void **extra, GucSource source)
{
	char	   *raw;
	List	   *names;
	bool		ok;

	if (*newval == NULL || (*newval)[0] == '\0' || strcmp(*newval, "*") == 0)
		return true;
	raw = pstrdup(*newval);
	ok = SplitGUCList(raw, ',', &names);
	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	else if (list_length(names) > FS_CACHE_MAX_DBS)
	{
		GUC_check_errdetail("At most %d databases can be listed.", FS_CACHE_MAX_DBS);
		ok = false;
	}
	list_free(names);
	pfree(raw);
	return ok;
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
	DefineCustomStringVariable("feature_store.databases",
							   "Databases whose online features the cache serves: '*' for every database that has the extension, or a comma-separated list.",
							   "Empty: feature_store.database if set, else '*'. One cache worker runs per served database; cache_size is shared.",
							   &fs_cache_databases, "",
							   PGC_SIGHUP, 0, check_databases, NULL, NULL);
	DefineCustomStringVariable("feature_store.database",
							   "Deprecated: the one database the cache serves when feature_store.databases is empty.",
							   "Use feature_store.databases.",
							   &fs_cache_database, "",
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
 * The effective list of databases the cache serves: feature_store.databases, else the
 * deprecated feature_store.database, else NIL meaning every database that has the extension.
 * Names keep their case (database names are case-sensitive); double quotes are allowed.
 */
List *
fs_cache_database_list(void)
{
	List	   *names = NIL;
	char	   *raw;

	if (fs_cache_databases != NULL && fs_cache_databases[0] != '\0')
	{
		if (strcmp(fs_cache_databases, "*") == 0)
			return NIL;
		raw = pstrdup(fs_cache_databases);
		if (!SplitGUCList(raw, ',', &names))
			return NIL;			/* the check hook refused such values */
		return names;
	}
	if (fs_cache_database != NULL && fs_cache_database[0] != '\0')
		return list_make1(pstrdup(fs_cache_database));
	return NIL;
}

/*
 * The protocol's per-database switch for this backend's database (see online_cache_int.h):
 * the entry found once is re-validated by its database id, as entries are reused.
 */
bool
fs_cache_db_served(void)
{
	static int	idx = -1;
	bool		served;

	if (fs_cache_ctl == NULL || !OidIsValid(MyDatabaseId))
		return false;
	if (idx < 0 || fs_cache_ctl->dbs[idx].dboid != MyDatabaseId)
	{
		idx = -1;
		for (int i = 0; i < FS_CACHE_MAX_DBS; i++)
			if (fs_cache_ctl->dbs[i].dboid == MyDatabaseId)
				idx = i;
		if (idx < 0)
			return false;
	}
	/* a committing writer has a full barrier before this (online_table.c) */
	served = pg_atomic_read_u32(&fs_cache_ctl->dbs[idx].served) != 0 &&
		fs_cache_ctl->dbs[idx].dboid == MyDatabaseId;
	/* a reader reads the switch before its W and C (loads after loads) */
	pg_read_barrier();
	return served;
}
