/*
 * runlog.c — the materialization run log (see runlog.h for the contract).
 *
 * Failed runs: the work runs in an internal subtransaction (the PL/pgSQL exception-block
 * pattern). On error the subtransaction is rolled back, which leaves the caller's transaction
 * usable; the failure is then written by a dynamic background worker, which connects to the
 * same database and inserts the record as the extension owner in a transaction of its own
 * (an autonomous write, as pg_background does). The record travels in a DSM segment; the
 * worker sets `written` there after its commit, so the caller knows whether it worked. Then
 * the original error is re-raised. No worker slot, or a worker that failed: a WARNING with the
 * run's error text, never a second error that would hide the first.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "checks.h"
#include "runlog.h"
#include "security.h"
#include "spi_util.h"


/* What the worker needs to write a failed run's record; strings follow in data[]. */
typedef struct FsRunRecord
{
	Oid			dbid;
	Oid			ownerid;		/* role the worker writes as */
	int64		run_id;
	int32		view_id;
	int32		version;
	TimestampTz window_start;
	TimestampTz window_end;
	TimestampTz started_at;
	TimestampTz finished_at;
	char		kind[16];
	char		sqlstate[6];
	char		run_by[NAMEDATALEN];
	volatile bool written;		/* set by the worker after its commit */
	int			error_off;
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* view name, then error text */
} FsRunRecord;

#define INSERT_RUN \
	"INSERT INTO feature_store.materialization_run (run_id, view_id, view_name, view_version, kind, " \
	"  window_start, window_end, rows_written, rows_quarantined, started_at, duration, outcome, " \
	"  error, sqlstate, run_by) " \
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 - $10, $12, $13, $14, $15)"

static const Oid insert_run_types[15] = {INT8OID, INT4OID, TEXTOID, INT4OID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID,
TEXTOID, TEXTOID, NAMEOID};

/* The parameters of INSERT_RUN; open window sides become NULL. */
static void
insert_run(int64 run_id, int32 view_id, const char *view_name, int32 version, const char *kind,
		   TimestampTz wstart, TimestampTz wend, uint64 written, uint64 quarantined,
		   TimestampTz started, TimestampTz finished, const char *outcome,
		   const char *error, const char *sqlstate, const char *run_by)
{
	Datum		v[15];
	bool		n[15] = {0};

	v[0] = Int64GetDatum(run_id);
	v[1] = Int32GetDatum(view_id);
	v[2] = CStringGetTextDatum(view_name);
	v[3] = Int32GetDatum(version);
	v[4] = CStringGetTextDatum(kind);
	n[5] = TIMESTAMP_NOT_FINITE(wstart);
	v[5] = TimestampTzGetDatum(wstart);
	n[6] = TIMESTAMP_NOT_FINITE(wend);
	v[6] = TimestampTzGetDatum(wend);
	v[7] = Int64GetDatum((int64) written);
	v[8] = Int64GetDatum((int64) quarantined);
	v[9] = TimestampTzGetDatum(started);
	v[10] = TimestampTzGetDatum(finished);
	v[11] = CStringGetTextDatum(outcome);
	n[12] = error == NULL;
	v[12] = error ? CStringGetTextDatum(error) : (Datum) 0;
	n[13] = sqlstate == NULL;
	v[13] = sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0;
	v[14] = DirectFunctionCall1(namein, CStringGetDatum(run_by));
	fs_spi_exec(INSERT_RUN, 15, insert_run_types, v, n, false);
}

static void
check_kind(const char *kind)
{
	if (kind == NULL ||
		(strcmp(kind, "batch") != 0 && strcmp(kind, "incremental") != 0 &&
		 strcmp(kind, "scheduled") != 0 && strcmp(kind, "stream") != 0 &&
		 strcmp(kind, "backfill") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid materialization run kind \"%s\"", kind ? kind : "(null)"),
				 errhint("Run kinds are batch, incremental, scheduled and stream.")));
}

FsRun *
fs_run_begin(FsView *v, const char *kind, TimestampTz start, TimestampTz end)
{
	FsRun	   *run = palloc0(sizeof(FsRun));
	FsOwnerContext octx;

	check_kind(kind);
	run->view = v;
	strlcpy(run->kind, kind, sizeof(run->kind));
	run->window_start = start;
	run->window_end = end;
	run->userid = GetUserId();
	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_spi_exec("SELECT nextval('feature_store.materialization_run_run_id_seq')", 0, NULL, NULL, NULL, false);
	{
		bool		isnull;

		run->run_id = DatumGetInt64(fs_spi_datum(0, 1, &isnull));
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	run->started_at = GetCurrentTimestamp();
	return run;
}

void
fs_run_finish_success(FsRun *run, uint64 rows_written, uint64 rows_quarantined)
{
	FsOwnerContext octx;

	SPI_connect();
	fs_owner_context_enter(&octx);
	insert_run(run->run_id, run->view->view_id, run->view->name, run->view->version, run->kind,
			   run->window_start, run->window_end, rows_written, rows_quarantined,
			   run->started_at, GetCurrentTimestamp(), "success", NULL, NULL,
			   GetUserNameFromId(run->userid, false));
	fs_owner_context_leave(&octx);
	SPI_finish();
}

/*
 * Starts the worker and waits for it to exit. Returns false (after a WARNING) if the record
 * could not be written.
 */
static bool
write_with_worker(FsRun *run, ErrorData *edata)
{
	const char *err = edata->message ? edata->message : "unknown error";
	Size		name_len = strlen(run->view->name) + 1;
	Size		len = offsetof(FsRunRecord, data) + name_len + strlen(err) + 1;
	dsm_segment *seg = dsm_create(len, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	FsRunRecord *rec;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	bool		ok;

	if (seg == NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not record failed materialization run %lld of feature view \"%s\": out of dynamic shared memory segments",
						(long long) run->run_id, run->view->name),
				 errdetail("The run failed with: %s", err)));
		return false;
	}
	rec = dsm_segment_address(seg);
	memset(rec, 0, offsetof(FsRunRecord, data));
	rec->dbid = MyDatabaseId;
	rec->ownerid = fs_extension_owner();
	rec->run_id = run->run_id;
	rec->view_id = run->view->view_id;
	rec->version = run->view->version;
	rec->window_start = run->window_start;
	rec->window_end = run->window_end;
	rec->started_at = run->started_at;
	rec->finished_at = GetCurrentTimestamp();
	strlcpy(rec->kind, run->kind, sizeof(rec->kind));
	strlcpy(rec->sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(rec->sqlstate));
	strlcpy(rec->run_by, GetUserNameFromId(run->userid, false), sizeof(rec->run_by));
	memcpy(rec->data, run->view->name, name_len);
	rec->error_off = (int) name_len;
	strcpy(rec->data + name_len, err);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "feature_store");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "fs_runlog_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "feature_store run log writer");
	snprintf(worker.bgw_type, BGW_MAXLEN, "feature_store run log writer");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not record failed materialization run %lld of feature view \"%s\": no background worker slot available",
						(long long) run->run_id, run->view->name),
				 errdetail("The run failed with: %s", err),
				 errhint("Raise max_worker_processes (now %d) so that failed runs can be recorded.",
						 max_worker_processes)));
		dsm_detach(seg);
		return false;
	}
	ok = WaitForBackgroundWorkerShutdown(handle) == BGWH_STOPPED;
	pg_memory_barrier();
	ok = ok && rec->written;
	dsm_detach(seg);
	if (!ok)
		ereport(WARNING,
				(errmsg("could not record failed materialization run %lld of feature view \"%s\"",
						(long long) run->run_id, run->view->name),
				 errdetail("The run failed with: %s", err),
				 errhint("The server log has the run log writer's error.")));
	return ok;
}

/* The subtransaction bodies of fs_run_finish_error and fs_run_logged. */
typedef struct RunCall
{
	FsRun	   *run;
	ErrorData  *edata;			/* the run's error (finish_error) */
	FsRunWork	work;
	void	   *arg;
	uint64		written;
	uint64		quarantined;
} RunCall;

static void
record_error_call(void *a)
{
	RunCall    *c = a;

	write_with_worker(c->run, c->edata);
}

static void
work_call(void *a)
{
	RunCall    *c = a;

	c->written = c->work(c->arg, c->run->run_id, &c->quarantined);
}

void
fs_run_finish_error(FsRun *run, ErrorData *edata)
{
	RunCall		c = {.run = run,.edata = edata};
	ErrorData  *e;

	/* Anything going wrong here becomes a WARNING: the run's own error must win. */
	e = fs_subxact_try(record_error_call, &c);
	if (e)
		ereport(WARNING,
				(errmsg("could not record failed materialization run %lld of feature view \"%s\": %s",
						(long long) run->run_id, run->view->name, e->message),
				 errdetail("The run failed with: %s", edata->message ? edata->message : "unknown error")));
}

uint64
fs_run_logged(FsView *v, const char *kind, TimestampTz start, TimestampTz end,
			  FsRunWork work, void *arg)
{
	RunCall		c = {.work = work,.arg = arg};
	ErrorData  *edata;

	c.run = fs_run_begin(v, kind, start, end);
	edata = fs_subxact_try(work_call, &c);
	if (edata)
	{
		fs_run_finish_error(c.run, edata);
		ReThrowError(edata);
	}
	fs_run_finish_success(c.run, c.written, c.quarantined);
	return c.written;
}

const char *
fs_run_incremental_kind(void)
{
	const char *app = GetConfigOption("application_name", true, false);

	if ((app && strcmp(app, "pg_cron") == 0) ||
		(MyBgworkerEntry && strcmp(MyBgworkerEntry->bgw_type, "pg_cron") == 0))
		return "scheduled";
	return "incremental";
}

/*
 * The run log writer: one record, one transaction, then exit. Runs as the extension owner,
 * which owns the run log table.
 */
void
fs_runlog_worker_main(Datum main_arg)
{
	dsm_segment *seg;
	FsRunRecord *rec;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	CurrentResourceOwner = ResourceOwnerCreate(NULL, "feature_store run log writer");
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not map dynamic shared memory segment of the run log writer")));
	dsm_pin_mapping(seg);
	rec = dsm_segment_address(seg);

	/*
	 * Connect as the bootstrap superuser (no role is given): that needs no LOGIN right, which
	 * the extension owner may lack; the row is then written as the extension owner, which owns
	 * the table, with a safe search_path.
	 */
	BackgroundWorkerInitializeConnectionByOid(rec->dbid, InvalidOid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SetUserIdAndSecContext(rec->ownerid, SECURITY_LOCAL_USERID_CHANGE);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "recording a failed materialization run");
	insert_run(rec->run_id, rec->view_id, rec->data, rec->version, rec->kind,
			   rec->window_start, rec->window_end, 0, 0, rec->started_at, rec->finished_at,
			   "error", rec->data + rec->error_off, rec->sqlstate, rec->run_by);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	pg_memory_barrier();
	rec->written = true;
	dsm_detach(seg);
	proc_exit(0);
}
