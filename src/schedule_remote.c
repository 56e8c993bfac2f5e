/*
 * schedule_remote.c — pg_cron jobs of a database other than cron.database_name. pg_cron keeps
 * its job table in one database only; a job may run in another one (pg_cron >= 1.4:
 * cron.schedule_in_database). A feature store outside pg_cron's database reaches it through a
 * short-lived background worker connected there:
 *  - creating a job: the worker runs cron.schedule_in_database(name, schedule, command, this
 *    database) AS THE CALLER (the job runs as the role that schedules it, as in pg_cron's own
 *    database) and hands back the job id or the error (SQLSTATE, message, detail, hint); the
 *    caller waits for it. The job is committed in pg_cron's database at once: if the caller's
 *    transaction rolls back, a worker started at abort removes it again.
 *  - removing jobs (unschedule, drop of a view, DROP EXTENSION, a replaced job): remembered by
 *    the transaction and removed at its commit by a worker that nobody waits for, so that a
 *    rollback keeps them, as in pg_cron's own database. Only jobs named "feature_store@..."
 *    (the names of such jobs) are removed, as the bootstrap superuser: the caller's right was
 *    checked in its database (it owns the view, or drops the extension).
 * Job names carry the database ("feature_store@<database>:<view>"): pg_cron's job names are
 * unique per role across all databases, and scheduling a name again replaces that job.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "schedule.h"

#define REMOTE_TEXT 2048

/* The creation request and its answer, in a DSM segment. */
typedef struct RemoteSchedule
{
	Oid			caller;
	char		cron_db[NAMEDATALEN];
	char		database[NAMEDATALEN];
	char		job_name[REMOTE_TEXT];
	char		schedule[REMOTE_TEXT];
	char		command[REMOTE_TEXT];
	/* answer */
	bool		done;
	int64		job_id;
	int			sqlerrcode;
	char		message[REMOTE_TEXT];
	char		detail[REMOTE_TEXT];
	char		hint[REMOTE_TEXT];
} RemoteSchedule;

/* A removal, in bgw_extra (no DSM: it is started at commit or abort and nobody waits). */
#define REMOTE_MAX_IDS ((BGW_EXTRALEN - 2 * sizeof(int32)) / sizeof(int64))
typedef struct RemoteRemoval
{
	int32		op;				/* 'u' */
	int32		n;
	int64		ids[REMOTE_MAX_IDS];
} RemoteRemoval;

/* Jobs to remove when this transaction commits, and those to remove if it aborts. */
static List *remove_at_commit = NIL;	/* of int64 *, in TopMemoryContext */
static List *remove_at_abort = NIL;

/* pg_cron's database (cron.database_name), NULL when pg_cron is not preloaded. */
const char *
fs_cron_database(void)
{
	return GetConfigOption("cron.database_name", true, false);
}

/* Is pg_cron's database another one than this (so that its jobs are reached remotely)? */
bool
fs_cron_is_remote(void)
{
	const char *db = fs_cron_database();
	char	   *here = get_database_name(MyDatabaseId);

	return db != NULL && here != NULL && strcmp(db, here) != 0;
}

/* The job name of a remote job: pg_cron's names are per role across databases. */
char *
fs_cron_remote_job_name(const char *base)
{
	/* base is "feature_store:<rest>" */
	return psprintf("feature_store@%s:%s", get_database_name(MyDatabaseId),
					base + strlen("feature_store:"));
}

static void
start_removal(List *ids)
{
	ListCell   *lc;
	RemoteRemoval r;

	memset(&r, 0, sizeof(r));
	r.op = 'u';
	foreach(lc, ids)
	{
		r.ids[r.n++] = *(int64 *) lfirst(lc);
		if (r.n == (int) REMOTE_MAX_IDS || lnext(ids, lc) == NULL)
		{
			BackgroundWorker w;

			memset(&w, 0, sizeof(w));
			w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
			w.bgw_start_time = BgWorkerStart_ConsistentState;
			w.bgw_restart_time = BGW_NEVER_RESTART;
			strlcpy(w.bgw_library_name, "feature_store", BGW_MAXLEN);
			strlcpy(w.bgw_function_name, "fs_cron_remote_main", BGW_MAXLEN);
			strlcpy(w.bgw_name, "feature_store cron client", BGW_MAXLEN);
			strlcpy(w.bgw_type, "feature_store cron client", BGW_MAXLEN);
			memcpy(w.bgw_extra, &r, sizeof(r));
			/* at commit: no error may be raised any more; the server log says it */
			if (!RegisterDynamicBackgroundWorker(&w, NULL))
				ereport(WARNING,
						(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
						 errmsg("could not remove %d pg_cron jobs of feature_store: no background worker slot available", r.n),
						 errhint("Remove them with cron.unschedule in database \"%s\"; raise max_worker_processes.",
								 fs_cron_database() ? fs_cron_database() : "")));
			r.n = 0;
		}
	}
}

static void
remote_xact_callback(XactEvent event, void *arg)
{
	List	   *todo = NIL;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
			todo = remove_at_commit;
			break;
		case XACT_EVENT_ABORT:
			todo = remove_at_abort;
			break;
		default:
			return;
	}
	if (todo != NIL)
		start_removal(todo);
	list_free_deep(remove_at_commit);
	list_free_deep(remove_at_abort);
	remove_at_commit = remove_at_abort = NIL;
}

static void
remember(List **l, int64 job_id)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	int64	   *p = palloc(sizeof(int64));

	*p = job_id;
	*l = lappend(*l, p);
	MemoryContextSwitchTo(old);
}

/* A remote job is removed when this transaction commits. */
void
fs_cron_remote_unschedule(int64 job_id)
{
	remember(&remove_at_commit, job_id);
}

/* From _PG_init. */
void
fs_schedule_init(void)
{
	RegisterXactCallback(remote_xact_callback, NULL);
}

/*
 * Creates (or replaces, pg_cron matches job name and role) the job in pg_cron's database to run
 * command in this one, as the caller; returns its id or raises the worker's error.
 */
int64
fs_cron_remote_schedule(const char *job_name, const char *schedule, const char *command,
						int64 prev_job_id)
{
	dsm_segment *seg;
	RemoteSchedule *rs;
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus st;
	const char *cron_db = fs_cron_database();
	char	   *here = get_database_name(MyDatabaseId);
	int64		job_id;

	if (strlen(job_name) >= REMOTE_TEXT || strlen(schedule) >= REMOTE_TEXT || strlen(command) >= REMOTE_TEXT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("pg_cron job is too long to schedule in database \"%s\"", cron_db)));
	seg = dsm_create(sizeof(RemoteSchedule), 0);
	rs = dsm_segment_address(seg);
	memset(rs, 0, sizeof(RemoteSchedule));
	rs->caller = GetUserId();
	strlcpy(rs->cron_db, cron_db, NAMEDATALEN);
	strlcpy(rs->database, here, NAMEDATALEN);
	strlcpy(rs->job_name, job_name, REMOTE_TEXT);
	strlcpy(rs->schedule, schedule, REMOTE_TEXT);
	strlcpy(rs->command, command, REMOTE_TEXT);

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "feature_store", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "fs_cron_remote_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "feature_store cron client", BGW_MAXLEN);
	strlcpy(w.bgw_type, "feature_store cron client", BGW_MAXLEN);
	w.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	w.bgw_extra[0] = 's';
	w.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not schedule the job in pg_cron's database \"%s\": no background worker slot available", cron_db),
				 errhint("Raise max_worker_processes (now %d): scheduling from database \"%s\" uses a short-lived worker.",
						 max_worker_processes, here)));
	st = WaitForBackgroundWorkerShutdown(handle);
	pg_memory_barrier();
	if (st != BGWH_STOPPED || !rs->done)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not schedule the job in pg_cron's database \"%s\"", cron_db),
				 errdetail("The worker connecting to database \"%s\" (cron.database_name) ended without an answer.", cron_db),
				 errhint("Check that the database exists and see the server log.")));
	if (rs->sqlerrcode != 0)
	{
		int			code = rs->sqlerrcode;
		char	   *msg = pstrdup(rs->message);
		char	   *detail = rs->detail[0] ? pstrdup(rs->detail) : NULL;
		char	   *hint = rs->hint[0] ? pstrdup(rs->hint) : NULL;

		dsm_detach(seg);
		if (code == ERRCODE_UNDEFINED_FUNCTION || code == ERRCODE_INVALID_SCHEMA_NAME)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("scheduling in database \"%s\" requires pg_cron 1.4 or later in database \"%s\"", here, cron_db),
					 errdetail("pg_cron's database said: %s", msg),
					 errhint("Run CREATE EXTENSION pg_cron (or ALTER EXTENSION pg_cron UPDATE) in database \"%s\".", cron_db)));
		if (code == ERRCODE_INSUFFICIENT_PRIVILEGE)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s (in pg_cron's database \"%s\")", msg, cron_db),
					 errdetail("The job runs as the role that schedules it, which must be allowed to schedule jobs in other databases."),
					 errhint("An administrator can run, in database \"%s\": GRANT USAGE ON SCHEMA cron TO %s; GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) TO %s.",
							 cron_db, quote_identifier(GetUserNameFromId(GetUserId(), false)),
							 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
		if (strncmp(msg, "invalid schedule", 16) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid schedule \"%s\"", schedule),
					 errhint("Use cron format (minute hour day-of-month month day-of-week), e.g. '*/5 * * * *'; pg_cron 1.5 and later also accept '[1-59] seconds'.")));
		ereport(ERROR,
				/* pg_cron raises most of its errors without a code (XX000): not a bug here */
				(errcode(code == MAKE_SQLSTATE('X', 'X', '0', '0', '0') ? ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE : code),
				 errmsg("%s (in pg_cron's database \"%s\")", msg, cron_db),
				 detail ? errdetail("%s", detail) : 0,
				 hint ? errhint("%s", hint) : 0));
	}
	job_id = rs->job_id;
	dsm_detach(seg);
	/* a new job goes again on rollback; a job replaced in place (same id) is kept */
	if (job_id != prev_job_id)
		remember(&remove_at_abort, job_id);
	return job_id;
}

/* The worker's creation of a job, in pg_cron's database, as the caller. */
static void
remote_schedule(RemoteSchedule *rs)
{
	Oid			t[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		a[4];
	bool		isnull;

	SetUserIdAndSecContext(rs->caller, SECURITY_LOCAL_USERID_CHANGE);
	a[0] = CStringGetTextDatum(rs->job_name);
	a[1] = CStringGetTextDatum(rs->schedule);
	a[2] = CStringGetTextDatum(rs->command);
	a[3] = CStringGetTextDatum(rs->database);
	SPI_connect();
	if (SPI_execute_with_args("SELECT cron.schedule_in_database($1, $2, $3, $4)", 4, t, a, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "cron.schedule_in_database failed");
	rs->job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
}

/* The worker's removal of jobs, as the bootstrap superuser: only feature_store's remote jobs. */
static void
remote_unschedule(RemoteRemoval *r)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(r->n, 1));
	Oid			t[1] = {INT8ARRAYOID};
	Datum		a[1];

	for (int i = 0; i < r->n; i++)
		ids[i] = Int64GetDatum(r->ids[i]);
	a[0] = PointerGetDatum(construct_array(ids, r->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	SPI_connect();
	SPI_execute_with_args("SELECT cron.unschedule(jobid) FROM cron.job "
						  "WHERE jobid = ANY($1) AND jobname LIKE 'feature_store@%'", 1, t, a, NULL, false, 0);
	SPI_finish();
}

/* The creation in its transaction; an error is handed back to the caller, not raised here. */
static void
run_schedule(RemoteSchedule *rs)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		remote_schedule(rs);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		rs->sqlerrcode = ed->sqlerrcode;
		strlcpy(rs->message, ed->message ? ed->message : "unknown error", REMOTE_TEXT);
		strlcpy(rs->detail, ed->detail ? ed->detail : "", REMOTE_TEXT);
		strlcpy(rs->hint, ed->hint ? ed->hint : "", REMOTE_TEXT);
	}
	PG_END_TRY();
}

/* The cron client: one request in pg_cron's database, one transaction, then exit. */
void
fs_cron_remote_main(Datum main_arg)
{
	dsm_segment *seg = NULL;
	RemoteSchedule *rs = NULL;
	RemoteRemoval r;
	const char *cron_db;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&r, MyBgworkerEntry->bgw_extra, sizeof(r));
	if (MyBgworkerEntry->bgw_extra[0] == 's')
	{
		CurrentResourceOwner = ResourceOwnerCreate(NULL, "feature_store cron client");
		seg = dsm_attach(DatumGetUInt32(main_arg));
		if (seg == NULL)
			proc_exit(0);
		dsm_pin_mapping(seg);
		rs = dsm_segment_address(seg);
		cron_db = rs->cron_db;
	}
	else
		cron_db = fs_cron_database();
	if (cron_db == NULL)
		proc_exit(0);
	/* the bootstrap superuser: needs no LOGIN right; a job is created as the caller */
	BackgroundWorkerInitializeConnection(cron_db, NULL, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("application_name", "feature_store cron client", PGC_USERSET, PGC_S_SESSION);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (rs != NULL)
	{
		run_schedule(rs);
		pg_memory_barrier();
		rs->done = true;
		dsm_detach(seg);
	}
	else
	{
		remote_unschedule(&r);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	proc_exit(0);
}
