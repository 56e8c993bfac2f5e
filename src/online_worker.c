/*
 * online_worker.c — the cache worker: registered in _PG_init when preloaded, connects to
 * feature_store.database, loads every online view into the cache at start and reloads a view
 * whenever a commit gave it a new generation (writers set our latch at commit). Errors are
 * logged and recorded for fs_stat_online; the worker then backs off (doubling up to a minute)
 * and resumes. If it dies, the postmaster restarts it (bgw_restart_time); on SIGTERM it exits
 * with status 1 so that, outside shutdown, it is restarted as well.
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
#include "catalog/pg_database.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
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

static int	fs_worker_naptime_ms = 1000;

/* From _PG_init: the worker's GUC and, when preloaded, its registration. */
void
fs_worker_register(void)
{
	BackgroundWorker w;

	DefineCustomIntVariable("feature_store.worker_naptime",
							"Longest sleep of the cache worker between checks.",
							NULL, &fs_worker_naptime_ms, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 2;
	strlcpy(w.bgw_library_name, "feature_store", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "fs_worker_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "feature_store cache worker", BGW_MAXLEN);
	strlcpy(w.bgw_type, "feature_store cache worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

static void
worker_exit(int code, Datum arg)
{
	fs_cache_set_worker_latch(NULL);
	/*
	 * Dying while connecting (FATAL: the database does not exist): the next start retries once,
	 * as the database is often created right after the server starts; after a second failure
	 * the worker waits for the database instead of failing every bgw_restart_time.
	 */
	if (fs_cache_worker_state() == FS_WORKER_CONNECTING)
		fs_cache_set_worker(0, FS_WORKER_CONNECT_FAILED, NULL);
	else if (fs_cache_worker_state() == FS_WORKER_RECONNECTING)
		fs_cache_set_worker(0, FS_WORKER_WAITING_DATABASE, NULL);
	else
		fs_cache_set_worker(0, FS_WORKER_NOT_RUNNING, NULL);
}

/*
 * One pass: (re)load every online latest view whose generation changed since its last
 * complete load. Returns true when the extension is installed.
 */
static bool
worker_pass(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_namespace_oid("feature_store", true)) &&
		OidIsValid(get_relname_relid("feature_view", get_namespace_oid("feature_store", true)));
	if (installed)
	{
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
	return installed;
}

/*
 * Whether a database of that name exists, read from pg_database without its index: a process
 * connected to no database cannot use get_database_oid, whose index scan opens non-shared
 * catalogs (the way the autovacuum launcher lists databases).
 */
static bool
database_exists(const char *name)
{
	Relation	rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple	tup;
	bool		found = false;

	while (!found && (tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		found = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tup))->datname), name) == 0;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The previous start could not connect to feature_store.database (InitPostgres raised FATAL,
 * which cannot be caught). Rather than failing every bgw_restart_time with a FATAL in the log,
 * connect to no database (shared catalogs only), say once what is missing, and poll pg_database
 * until the database exists; then exit so that the postmaster restarts the worker, which connects
 * to it (a process connects to one database only once).
 */
static void
wait_for_database(void)
{
	bool		logged = false;

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	fs_cache_set_worker(MyProcPid, FS_WORKER_WAITING_DATABASE, NULL);
	while (!ShutdownRequestPending)
	{
		bool		exists;

		StartTransactionCommand();
		exists = database_exists(fs_cache_database);
		CommitTransactionCommand();
		if (exists)
			break;
		if (!logged)
			ereport(LOG,
					(errmsg("feature_store cache worker is waiting for database \"%s\" to exist", fs_cache_database),
					 errhint("Create the database, or set feature_store.database to the database that holds the feature store and restart the server.")));
		logged = true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	/* leave the state as "waiting for database" only while it is true */
	fs_cache_set_worker(0, FS_WORKER_NOT_RUNNING, NULL);
	proc_exit(1);
}

void
fs_worker_main(Datum arg)
{
	MemoryContext loopcxt;
	volatile long backoff_ms = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	before_shmem_exit(worker_exit, (Datum) 0);
	if (fs_cache_worker_state() == FS_WORKER_WAITING_DATABASE)
		wait_for_database();	/* exits once it exists; the restart connects */
	fs_cache_set_worker(MyProcPid, fs_cache_worker_state() == FS_WORKER_CONNECT_FAILED ?
						FS_WORKER_RECONNECTING : FS_WORKER_CONNECTING, NULL);
	BackgroundWorkerInitializeConnection(fs_cache_database, NULL, 0);
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

	while (!ShutdownRequestPending)
	{
		volatile long sleep_ms = fs_worker_naptime_ms;
		MemoryContext old = MemoryContextSwitchTo(loopcxt);

		PG_TRY();
		{
			bool		installed = worker_pass();

			fs_cache_set_worker(MyProcPid, installed ? FS_WORKER_IDLE : FS_WORKER_WAITING_EXTENSION, NULL);
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

		if (backoff_ms > 0)
		{
			/* back off for real: commits setting our latch must not turn this into a spin */
			for (long waited = 0; waited < sleep_ms && !ShutdownRequestPending; waited += 100)
			{
				(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
				CHECK_FOR_INTERRUPTS();
			}
			ResetLatch(MyLatch);
		}
		else
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	proc_exit(1);
}
