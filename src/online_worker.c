/*
 * online_worker.c — the cache's background workers: a launcher, registered in _PG_init when
 * preloaded, and one cache worker per served database, started by the launcher.
 *
 * The launcher connects to no database (shared catalogs only, as the autovacuum launcher).
 * Every second (or when woken) it lists pg_database and decides which databases to serve:
 * those named by feature_store.databases (or the deprecated feature_store.database), or with
 * '*' (the default) every database that allows connections and is no template. For each it
 * keeps an entry in the cache's database table (online_cache_int.h) and a dynamic background
 * worker (RegisterDynamicBackgroundWorker, notifying the launcher). Whether a database has the
 * extension cannot be seen without connecting to it: its worker looks. A worker that finds no
 * feature_store says so and exits; the commit of a CREATE EXTENSION in that database (an
 * object-access hook, then a commit callback) asks the launcher to start it again. A database
 * dropped or no longer listed is no longer served (its view slots and entries are freed) and
 * its worker is stopped.
 *
 * A cache worker connects to its database, switches the cache on for it (fs_cache_db_serve),
 * loads every online view at start and reloads a view whenever a commit gave it a new
 * generation (writers set our latch at commit). Errors are logged and recorded for
 * fs_stat_online; the worker then backs off (doubling up to a minute) and resumes. If it dies,
 * the launcher starts it again (after 2 s). It leaves its database on its own when another
 * session waits to drop, rename or copy it (DROP DATABASE, ALTER DATABASE RENAME, CREATE
 * DATABASE ... TEMPLATE wait 5 s for other sessions to leave): the launcher starts it again
 * once the database is free.
 *
 * Loading reads the fill tag before the load's snapshot is taken and tags the rows with it,
 * exactly as readers do (protocol in online_cache.c), so a load racing a commit
 * leaves only entries that are never served.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "online_cache.h"
#include "online_meta.h"
#include "online_read.h"
#include "online_worker.h"
#include "online_wal.h"

static int	fs_worker_naptime_ms = 1000;

static object_access_hook_type prev_object_access_hook = NULL;
static bool extension_created = false;

/*
 * Any CREATE EXTENSION of this transaction: at commit the launcher is asked to (re)start this
 * database's worker, which looks for feature_store (the pg_extension row is not visible from
 * here yet, so every extension counts; a worker that finds none exits at once).
 */
static void
fs_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_POST_CREATE && classId == ExtensionRelationId)
		extension_created = true;
}

static void
fs_worker_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && extension_created)
		fs_cache_db_request_probe(MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		extension_created = false;
}

/* From _PG_init: the workers' GUC and, when preloaded, the launcher's registration. */
void
fs_worker_register(void)
{
	BackgroundWorker w;

	DefineCustomIntVariable("feature_store.worker_naptime",
							"Longest sleep of the cache workers between checks.",
							NULL, &fs_worker_naptime_ms, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_object_access_hook = object_access_hook;
	object_access_hook = fs_object_access;
	RegisterXactCallback(fs_worker_xact_callback, NULL);
	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	w.bgw_restart_time = 2;
	strlcpy(w.bgw_library_name, "feature_store", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "fs_launcher_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "feature_store cache launcher", BGW_MAXLEN);
	strlcpy(w.bgw_type, "feature_store cache launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

/*
 * Whether another session holds a lock on the database that keeps new sessions out: DROP
 * DATABASE, ALTER DATABASE RENAME / SET TABLESPACE (AccessExclusiveLock) and CREATE DATABASE
 * copying it (ShareLock), which then wait for the sessions inside to leave. Tested with the
 * lock a connecting backend takes (RowExclusiveLock), without waiting. In a transaction.
 */
static bool
database_busy(Oid dboid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, dboid, 0);
	if (LockAcquire(&tag, RowExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, false);
	return false;
}

static void
worker_exit(int code, Datum arg)
{
	fs_cache_set_worker_latch(NULL);
	if (fs_cache_worker_state() == FS_WORKER_BACKOFF)
		fs_cache_set_worker(0, FS_WORKER_BACKOFF, NULL);
	else
		fs_cache_set_worker(0, FS_WORKER_NOT_RUNNING, NULL);
}

typedef enum PassResult
{
	PASS_SERVED,				/* the extension is here: served, views loaded */
	PASS_NO_EXTENSION,			/* no feature_store here (any longer) */
	PASS_LEAVE					/* another session waits for us to leave the database */
} PassResult;

/*
 * One pass: (re)load every online latest view whose generation changed since its last
 * complete load. The cache is switched on for the database before the first load (and off,
 * its entries freed, once the extension is gone).
 */
static PassResult
worker_pass(void)
{
	bool		installed;
	bool		busy;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	busy = database_busy(MyDatabaseId);
	installed = !busy && OidIsValid(get_namespace_oid("feature_store", true)) &&
		OidIsValid(get_relname_relid("feature_view", get_namespace_oid("feature_store", true)));
	if (installed)
	{
		fs_cache_db_set_flags(fs_cache_my_db, -1, 0, -1);
		fs_cache_db_serve(fs_cache_my_db, true);
		PushActiveSnapshot(GetTransactionSnapshot());
		fs_meta_ensure();
		PopActiveSnapshot();
		for (int i = 0; i < fs_meta_nviews(); i++)
		{
			FsOnlineView *ov = fs_meta_view(i);
			int			slot;
			uint64		gen;
			uint64		tag;

			if (!ov->view->is_serving || !ov->online || !OidIsValid(ov->online_relid))
				continue;
			slot = fs_cache_view_slot(ov->view->view_id, true);
			if (slot < 0 || !fs_cache_view_needs_load(slot, &gen))
				continue;
			fs_cache_set_worker(MyProcPid, FS_WORKER_LOADING, NULL);
			/* the fill tag is read after gen and before the snapshot: see the protocol */
			tag = fs_cache_fill_tag();
			PushActiveSnapshot(GetTransactionSnapshot());
			SPI_connect();
			{
				uint64		n = fs_read_load_view(ov, slot, tag);

				elog(DEBUG1, "feature_store cache worker loaded %llu rows of view \"%s\"",
					 (unsigned long long) n, ov->view->name);
			}
			SPI_finish();
			PopActiveSnapshot();
			fs_cache_view_loaded(slot, gen);
		}
	}
	CommitTransactionCommand();
	pgstat_report_stat(false);
	if (busy)
		return PASS_LEAVE;
	return installed ? PASS_SERVED : PASS_NO_EXTENSION;
}

/*
 * Sleeps up to ms, waking on the latch unless `through_latch` (a backoff must not turn into a
 * spin because commits set the latch); every second it checks whether another session waits
 * for this worker to leave the database, or the launcher asked it to stop. Returns true then.
 */
static bool
worker_sleep(long ms, bool through_latch)
{
	long		waited = 0;

	while (!ShutdownRequestPending)
	{
		long		step = Min(ms - waited, through_latch ? 100 : 1000);
		int			rc;
		bool		leave;

		if (step <= 0)
			break;
		rc = WaitLatch(MyLatch, (through_latch ? 0 : WL_LATCH_SET) | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   step, PG_WAIT_EXTENSION);
		if (!through_latch)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited += step;
		if (fs_cache_db_stop_requested(fs_cache_my_db))
			return true;
		if ((rc & WL_LATCH_SET) != 0)
			break;
		if (waited % 1000 == 0 || waited >= ms)
		{
			StartTransactionCommand();
			leave = database_busy(MyDatabaseId);
			CommitTransactionCommand();
			if (leave)
				return true;
		}
	}
	if (through_latch)
		ResetLatch(MyLatch);
	return false;
}

/*
 * A database's cache worker, started by the launcher: bgw_main_arg is the database's oid,
 * bgw_extra its entry in the cache's database table.
 */
void
fs_worker_main(Datum arg)
{
	MemoryContext loopcxt;
	volatile long backoff_ms = 0;
	Oid			dboid = DatumGetObjectId(arg);
	int			idx;

	memcpy(&idx, MyBgworkerEntry->bgw_extra, sizeof(int));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	if (idx < 0 || idx >= FS_CACHE_MAX_DBS || !fs_cache_db_claim(idx, dboid))
		proc_exit(0);			/* the entry went away, or another worker holds it */
	fs_cache_my_db = idx;
	before_shmem_exit(worker_exit, (Datum) 0);
	fs_cache_set_worker(MyProcPid, FS_WORKER_CONNECTING, NULL);
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	fs_cache_set_worker(MyProcPid, FS_WORKER_STARTING, NULL);
	fs_cache_set_worker_latch(&MyProc->procLatch);
	/* never wait long behind a lock: fail, log, back off, retry */
	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * One pass holds AccessShareLock on every online table it loads until it commits, so DDL
	 * dropping several of them (DROP EXTENSION, fs_drop_view) can deadlock with it. Check for
	 * deadlocks sooner than backends do, so that the worker is the victim: it backs off and retries.
	 */
	SetConfigOption("deadlock_timeout", "100ms", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "feature_store cache worker", PGC_USERSET, PGC_S_OVERRIDE);
	loopcxt = AllocSetContextCreate(TopMemoryContext, "feature_store worker loop", ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending && !fs_cache_db_stop_requested(idx))
	{
		volatile long sleep_ms = fs_worker_naptime_ms;
		volatile PassResult res = PASS_SERVED;
		MemoryContext old = MemoryContextSwitchTo(loopcxt);

		PG_TRY();
		{
			res = worker_pass();
			if (res == PASS_SERVED)
				fs_cache_set_worker(MyProcPid, FS_WORKER_IDLE, NULL);
			backoff_ms = 0;
		}
		PG_CATCH();
		{
			ErrorData  *ed;

			MemoryContextSwitchTo(loopcxt);
			ed = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			backoff_ms = backoff_ms == 0 ? 1000 : Min(backoff_ms * 2, 60000);
			ereport(LOG,
					(errmsg("feature_store cache worker failed, retrying in %ld ms: %s", backoff_ms, ed->message)));
			fs_cache_set_worker(MyProcPid, FS_WORKER_BACKOFF, ed->message);
			sleep_ms = backoff_ms;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);

		if (res == PASS_NO_EXTENSION)
		{
			/* nothing to serve here: free what is cached, and wait for a CREATE EXTENSION */
			fs_cache_db_serve(idx, false);
			fs_cache_db_set_flags(idx, -1, 1, -1);
			fs_cache_set_worker(MyProcPid, FS_WORKER_WAITING_EXTENSION, NULL);
			break;
		}
		if (res == PASS_LEAVE || worker_sleep(sleep_ms, backoff_ms > 0))
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(0);
}

/* ---------------------------------------------------------------- the launcher */

/* A database as the launcher lists it from pg_database. */
typedef struct LDb
{
	Oid			oid;
	char		name[NAMEDATALEN];
	bool		wanted;
} LDb;

static BackgroundWorkerHandle *handles[FS_CACHE_MAX_DBS];
static TimestampTz next_start[FS_CACHE_MAX_DBS];
static List *logged_missing = NIL;	/* listed names said to be missing (once each) */
static bool logged_full = false;
static bool logged_no_slot = false;

static void
launcher_exit(int code, Datum arg)
{
	fs_cache_set_worker_latch(NULL);
	fs_cache_set_worker(0, FS_WORKER_NOT_RUNNING, NULL);
}

static bool
name_listed(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * The databases of the cluster, read from pg_database without its index (a process connected
 * to no database cannot use the catalog caches of non-shared catalogs, as the autovacuum
 * launcher's get_database_list). Which of them to serve: the listed ones, or with no list every
 * one that allows connections and is no template. Fills *missing with listed names not found.
 */
static LDb *
list_databases(int *n, List *names, List **missing)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	int			cap = 16;
	LDb		   *dbs = palloc(sizeof(LDb) * cap);
	ListCell   *lc;

	*n = 0;
	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database f = (Form_pg_database) GETSTRUCT(tup);

		if (*n == cap)
			dbs = repalloc(dbs, sizeof(LDb) * (cap *= 2));
		dbs[*n].oid = f->oid;
		strlcpy(dbs[*n].name, NameStr(f->datname), NAMEDATALEN);
		dbs[*n].wanted = f->datallowconn && !database_is_invalid_form(f) &&
			(names != NIL ? name_listed(names, NameStr(f->datname)) : !f->datistemplate);
		(*n)++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	*missing = NIL;
	foreach(lc, names)
	{
		bool		found = false;

		for (int i = 0; i < *n && !found; i++)
			found = strcmp(dbs[i].name, (char *) lfirst(lc)) == 0;
		if (!found)
			*missing = lappend(*missing, lfirst(lc));
	}
	return dbs;
}

/* Is the worker of entry idx running (or starting)? */
static bool
worker_running(int idx, int shm_pid)
{
	pid_t		pid;

	if (handles[idx] == NULL)
		return shm_pid != 0;	/* started by an earlier launcher */
	switch (GetBackgroundWorkerPid(handles[idx], &pid))
	{
		case BGWH_STARTED:
		case BGWH_NOT_YET_STARTED:
			return true;
		case BGWH_POSTMASTER_DIED:
			proc_exit(1);
			break;
		default:
			break;
	}
	pfree(handles[idx]);
	handles[idx] = NULL;
	/* a worker that just ended is not started again at once (as bgw_restart_time) */
	next_start[idx] = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 2000);
	return shm_pid != 0;
}

/* Starts the cache worker of entry idx; false when no background worker slot is free. */
static bool
start_worker(int idx, Oid dboid, const char *dbname)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "feature_store", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "fs_worker_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "feature_store cache worker for database %s", dbname);
	strlcpy(w.bgw_type, "feature_store cache worker", BGW_MAXLEN);
	w.bgw_main_arg = ObjectIdGetDatum(dboid);
	memcpy(w.bgw_extra, &idx, sizeof(int));
	w.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&w, &handles[idx]))
	{
		handles[idx] = NULL;
		if (!logged_no_slot)
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("feature_store cache launcher could not start a cache worker for database \"%s\"", dbname),
					 errdetail("No background worker slot is free; the launcher retries every second."),
					 errhint("Raise max_worker_processes (one cache worker runs per served database), or list fewer databases in feature_store.databases.")));
		logged_no_slot = true;
		return false;
	}
	logged_no_slot = false;
	return true;
}

/*
 * One pass of the launcher: the databases to serve, from pg_database and the setting; entries
 * for new ones; databases gone or no longer listed released (their cache freed) once their
 * worker stopped; a worker started for each served database that has none, unless its
 * extension is known to be absent (until a CREATE EXTENSION there) or another session waits
 * for the database to be free.
 */
static void
launcher_pass(void)
{
	List	   *names = fs_cache_database_list();
	List	   *missing;
	int			n;
	LDb		   *dbs = list_databases(&n, names, &missing);
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();

	/* listed databases that do not exist: said once each, shown as the launcher's state */
	foreach(lc, missing)
	{
		if (!name_listed(logged_missing, (char *) lfirst(lc)))
		{
			ereport(LOG,
					(errmsg("feature_store cache worker is waiting for database \"%s\" to exist", (char *) lfirst(lc)),
					 errhint("Create the database, or set feature_store.databases (or the deprecated feature_store.database) to databases that exist.")));
			logged_missing = lappend(logged_missing, MemoryContextStrdup(TopMemoryContext, (char *) lfirst(lc)));
		}
	}
	foreach(lc, logged_missing)
		if (!name_listed(missing, (char *) lfirst(lc)))
			logged_missing = foreach_delete_current(logged_missing, lc);
	fs_cache_set_worker(MyProcPid, missing != NIL ? FS_WORKER_WAITING_DATABASE : FS_WORKER_IDLE, NULL);

	/* entries of databases gone or no longer wanted: switch their cache off, stop the worker */
	for (int idx = 0; idx < FS_CACHE_MAX_DBS; idx++)
	{
		Oid			dboid;
		bool		need_probe,
					absent;
		int			pid;
		bool		wanted = false;

		fs_cache_db_flags(idx, &dboid, &need_probe, &absent, &pid);
		if (!OidIsValid(dboid))
			continue;
		for (int i = 0; i < n && !wanted; i++)
			wanted = dbs[i].oid == dboid && dbs[i].wanted;
		if (wanted)
			continue;
		fs_cache_db_serve(idx, false);
		if (worker_running(idx, pid))
		{
			fs_cache_db_set_flags(idx, -1, -1, 1);
			if (handles[idx])
				TerminateBackgroundWorker(handles[idx]);
			continue;
		}
		fs_cache_db_release(idx);
	}

	/* wanted databases: an entry each, and a worker where one is due */
	for (int i = 0; i < n; i++)
	{
		int			idx;
		Oid			dboid;
		bool		need_probe,
					absent,
					busy;
		int			pid;

		if (!dbs[i].wanted)
			continue;
		idx = fs_cache_db_lookup(dbs[i].oid);
		if (idx < 0)
		{
			idx = fs_cache_db_add(dbs[i].oid);
			if (idx < 0)
			{
				if (!logged_full)
					ereport(WARNING,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("feature_store online cache serves at most %d databases; database \"%s\" is read from its tables",
									FS_CACHE_MAX_DBS, dbs[i].name),
							 errhint("List the databases to cache in feature_store.databases.")));
				logged_full = true;
				continue;
			}
			handles[idx] = NULL;
			next_start[idx] = 0;
		}
		fs_cache_db_flags(idx, &dboid, &need_probe, &absent, &pid);
		if (worker_running(idx, pid) || (absent && !need_probe) || now < next_start[idx])
			continue;
		StartTransactionCommand();
		busy = database_busy(dboid);
		CommitTransactionCommand();
		if (busy)
			continue;
		fs_cache_db_set_flags(idx, 0, -1, 0);
		if (!start_worker(idx, dboid, dbs[i].name) && need_probe)
			fs_cache_db_set_flags(idx, 1, -1, -1);
	}
}

/*
 * The launcher: connects to no database, serves the databases the setting names (see the
 * file's header), sleeps a second at most between passes (a CREATE EXTENSION, a worker's start
 * or end and a configuration reload wake it).
 */
void
fs_launcher_main(Datum arg)
{
	MemoryContext loopcxt;
	TimestampTz last_pass = 0;
	bool		woken = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	fs_cache_my_db = -1;
	before_shmem_exit(launcher_exit, (Datum) 0);
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	fs_cache_set_worker(MyProcPid, FS_WORKER_STARTING, NULL);
	fs_cache_set_worker_latch(&MyProc->procLatch);
	loopcxt = AllocSetContextCreate(TopMemoryContext, "feature_store launcher loop", ALLOCSET_DEFAULT_SIZES);
	while (!ShutdownRequestPending)
	{
		MemoryContext old = MemoryContextSwitchTo(loopcxt);
		long		since = (long) ((GetCurrentTimestamp() - last_pass) / 1000);
		long		wait;
		int			poll;
		int			rc;

		/*
		 * A pass over the databases when woken (at most every 50 ms: a hot standby's WAL records
		 * wake us too) or every naptime; a standby's pending invalidations (online_wal.c) are
		 * polled as fs_wal_launcher_work asks.
		 */
		if (last_pass == 0 || since < 0 || since >= Min(fs_worker_naptime_ms, 1000) || (woken && since >= 50))
		{
			launcher_pass();
			last_pass = GetCurrentTimestamp();
			since = 0;
			woken = false;
		}
		poll = fs_wal_launcher_work();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);
		wait = woken ? 50 - since : Min(fs_worker_naptime_ms, 1000) - since;
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   poll > 0 ? poll : Max(wait, 1), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			woken = true;
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(1);
}
