/*
 * materialize.c — batch (fs_materialize) and incremental (fs_materialize_incremental)
 * materialization, and the watermark of incremental runs.
 *
 * A run writes, per entity of the window, its latest row passing the view's checks (ordered by
 * event DESC, created DESC NULLS LAST, then the features in order, smallest first, NULLs last:
 * the point-in-time join's tie-break), only where it is strictly greater in (event, created)
 * than the row online: an entity never moves backwards, and running a window twice changes
 * nothing. By default through materialize_scan.c (one pass keeping each entity's winner in a
 * hash table); with feature_store.materialize_method = sql, or when the winners do not fit in
 * maintenance_work_mem, as one statement: SELECT DISTINCT ON (keys) ... upserted with ON
 * CONFLICT ... DO UPDATE ... WHERE (fs_mat_upsert_sql, also the streaming path's statement).
 * Failing rows of the window are quarantined in the same run, and the run is recorded through
 * fs_run_logged (subtransaction; failures recorded autonomously).
 *
 * Watermark (feature_store.watermark, one row per view version): incremental runs read the
 * window (watermark, upper] of the view's created-time column (event time when it has none)
 * and set the watermark to upper in the same transaction as the write. upper is
 *     least(now, start of the oldest transaction open in this database) - 1 microsecond
 *     - feature_store.watermark_lag
 * so a row whose created time comes from the database clock of its writing transaction
 * (now(), transaction_timestamp(), clock_timestamp(): all >= the transaction's start) in a
 * client session is either visible to the run or has a created time above upper: never
 * lost, never counted twice (the window's lower bound is exclusive, its upper bound
 * inclusive). Background workers count once they have written (an xid). Times set by
 * clients need a lag covering the delay between the time they carry and their commit.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "checks.h"
#include "materialize.h"
#include "materialize_scan.h"
#include "materialize_sql.h"
#include "online_table.h"
#include "runlog.h"
#include "security.h"
#include "spi_util.h"
#include "sql_args.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(fs_materialize);
PG_FUNCTION_INFO_V1(fs_materialize_incremental);

static int	watermark_lag_ms = 0;
static int	mat_method = FS_MAT_AUTO;

static const struct config_enum_entry mat_method_options[] = {
	{"auto", FS_MAT_AUTO, false},
	{"sql", FS_MAT_SQL, false},
	{"merge", FS_MAT_MERGE, false},
	{"probe", FS_MAT_PROBE, false},
	{NULL, 0, false}
};

/* From _PG_init. */
void
fs_materialize_init(void)
{
	DefineCustomIntVariable("feature_store.watermark_lag",
							"Safety margin subtracted from the upper bound of incremental materialization windows.",
							"Needed only when created times are set by clients rather than by the database clock of the writing transaction.",
							&watermark_lag_ms, 0, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("feature_store.materialize_method",
							 "How batch and incremental materialization write the online table.",
							 "auto: one pass keeping each entity's winner in memory (SQL statement past maintenance_work_mem); "
							 "sql: one INSERT ... SELECT DISTINCT ON ... ON CONFLICT statement; merge, probe: the one-pass path, "
							 "always reading the online table, or always upserting through its key index (for tests).",
							 &mat_method, FS_MAT_AUTO, mat_method_options, PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

/* Runs an upsert as the extension owner (the caller's privileges were checked before). */
static uint64
run_upsert(const char *sql, int nargs, Oid *types, Datum *vals, bool *nulls)
{
	FsOwnerContext octx;
	uint64		n;

	SPI_connect();
	fs_owner_context_enter(&octx);
	n = fs_spi_exec(sql, nargs, types, vals, nulls, false);
	fs_owner_context_leave(&octx);
	SPI_finish();
	return n;
}

typedef struct WindowWork
{
	FsView	   *view;
	TimestampTz start;			/* DT_NOBEGIN: open */
	TimestampTz end;
	bool		start_exclusive;
	bool		on_created;
	bool		as_of_end;		/* also event <= end (batch) */
	bool		set_watermark;
	int			nchunks;		/* > 0: only the entities of key chunk `chunk` (a backfill) */
	int			chunk;
	bool		quarantine;
} WindowWork;

/*
 * The work of a batch or incremental run: upsert the latest passing row per entity of the
 * window, quarantine the window's failing rows, and (incremental) move the watermark.
 */
static uint64
window_work(void *arg, int64 run_id, uint64 *quarantined)
{
	WindowWork *w = arg;
	FsView	   *v = w->view;
	const char *ev = quote_identifier(v->event_time);
	const char *col = (w->on_created && v->created_time) ? quote_identifier(v->created_time) : ev;
	StringInfoData where;
	Oid			types[6] = {TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID, TIMESTAMPTZOID, INT4OID, INT4OID};
	Datum		vals[6];
	bool		nulls[6] = {false, false, !v->has_ttl, false, false, false};
	int			nargs = 4;
	FsWindow	qw;
	uint64		n;
	int64		written;
	FsMatWindow mw;

	fs_online_ensure_table(v);
	initStringInfo(&where);
	appendStringInfoString(&where, "$1 IS NOT NULL AND $2 IS NOT NULL");
	if (!TIMESTAMP_IS_NOBEGIN(w->start))
		appendStringInfo(&where, " AND CAST(s.%s AS pg_catalog.timestamptz) %s $1", col,
						 w->start_exclusive ? ">" : ">=");
	if (!TIMESTAMP_IS_NOEND(w->end))
		appendStringInfo(&where, " AND CAST(s.%s AS pg_catalog.timestamptz) <= $2", col);
	if (w->as_of_end && col != ev)
		appendStringInfo(&where, " AND CAST(s.%s AS pg_catalog.timestamptz) <= $2", ev);
	/* TTL as of the window's end ($4: the end, or now for an open end) */
	appendStringInfo(&where, " AND ($3 IS NULL OR CAST(s.%s AS pg_catalog.timestamptz) >= $4 - $3)", ev);
	vals[0] = TimestampTzGetDatum(w->start);
	vals[1] = TimestampTzGetDatum(w->end);
	vals[2] = v->has_ttl ? IntervalPGetDatum(&v->ttl) : (Datum) 0;
	vals[3] = TimestampTzGetDatum(TIMESTAMP_IS_NOEND(w->end) ? GetCurrentTransactionStartTimestamp() : w->end);
	if (w->nchunks > 0)
	{
		appendStringInfoString(&where, " AND feature_store.key_chunk($5");
		for (int i = 0; i < v->entity.nkeys; i++)
			appendStringInfo(&where, ", CAST(s.%s AS %s)", quote_identifier(v->entity.keys[i]),
							 format_type_extended(v->entity.key_types[i], -1, FORMAT_TYPE_FORCE_QUALIFY));
		appendStringInfoString(&where, ") = $6");
		vals[4] = Int32GetDatum(w->nchunks);
		vals[5] = Int32GetDatum(w->chunk);
		nargs = 6;
	}
	mw.nchunks = w->nchunks;
	mw.chunk = w->chunk;
	mw.on_created = col != ev;
	mw.start = w->start;
	mw.start_exclusive = w->start_exclusive;
	mw.end = w->end;
	mw.as_of_end = w->as_of_end;
	mw.has_ttl = v->has_ttl;
	mw.ttl_bound = v->has_ttl ? DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval, vals[3], vals[2])) : 0;
	n = 0;
	if (mat_method == FS_MAT_SQL ||
		(written = fs_mat_write_c(v, where.data, nargs, types, vals, nulls, &mw, (FsMatMethod) mat_method)) < 0)
		n = run_upsert(fs_mat_upsert_sql(v, quote_qualified_identifier(v->source_schema, v->source_name), where.data),
					   nargs, types, vals, nulls);
	else
		n = (uint64) written;

	qw.start = (w->start_exclusive && !TIMESTAMP_IS_NOBEGIN(w->start)) ? w->start + 1 : w->start;
	qw.end = w->end;
	qw.on_created = w->on_created;
	*quarantined = w->quarantine ? fs_quarantine_window(v, &qw, run_id, NULL) : 0;

	if (w->set_watermark)
	{
		FsOwnerContext octx;
		Oid			t[2] = {INT4OID, TIMESTAMPTZOID};
		Datum		a[2] = {Int32GetDatum(v->view_id), TimestampTzGetDatum(w->end)};

		SPI_connect();
		fs_owner_context_enter(&octx);
		fs_spi_exec("UPDATE feature_store.watermark SET watermark = $2, advanced_at = pg_catalog.now() "
					"WHERE view_id = $1", 2, t, a, NULL, false);
		fs_owner_context_leave(&octx);
		SPI_finish();
	}
	return n;
}

/* fs_materialize's work as one logged 'batch' run, so failures are recorded too. */
static uint64
fs_materialize_window(FsView *v, TimestampTz start, TimestampTz end)
{
	WindowWork	w = {v, start, end, false, false, true, false, 0, 0, true};

	return fs_run_logged(v, "batch", start, end, window_work, &w);
}

/* See materialize.h. */
uint64
fs_materialize_chunk(FsView *v, TimestampTz start, TimestampTz end, int chunk, int nchunks, bool quarantine)
{
	WindowWork	w = {v, start, end, false, false, true, false, nchunks, chunk, quarantine};

	return fs_run_logged(v, "backfill", start, end, window_work, &w);
}

/*
 * fs_materialize(view, start_ts, end_ts) -> rows written. Anyone who may SELECT the source
 * may materialize: the result is a function of data they can read.
 */
Datum
fs_materialize(PG_FUNCTION_ARGS)
{
	FsView	   *v = fs_lookup_view(fs_text_arg(fcinfo, 0, "feature view name"), false);
	TimestampTz start_ts,
				end_ts;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("start and end of the materialization window must not be null")));
	fs_check_not_agg(v, "materialize");
	start_ts = PG_GETARG_TIMESTAMPTZ(1);
	end_ts = PG_GETARG_TIMESTAMPTZ(2);
	if (start_ts > end_ts)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("materialization window starts after it ends"),
				 errhint("Pass start_ts <= end_ts.")));
	if (strcmp(v->online_mode, "off") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" is not online", v->name),
				 errhint("Enable it with SELECT fs_set_online_mode('%s', 'batch').", v->name)));
	fs_check_view_select(v);
	PG_RETURN_INT64((int64) fs_materialize_window(v, start_ts, end_ts));
}

/*
 * The upper bound of an incremental window: now (minus the lag), but never at or after the
 * start of a transaction still open in this database, which may yet commit rows whose
 * created time is its start time (or later).
 */
static TimestampTz
incremental_upper(void)
{
	TimestampTz upper = GetCurrentTimestamp();
	int			nb;

	pgstat_clear_backend_activity_snapshot();
	nb = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= nb; i++)
	{
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *b = l ? &l->backendStatus : NULL;

		if (b == NULL || b->st_procpid == MyProcPid || b->st_databaseid != MyDatabaseId ||
			b->st_xact_start_timestamp == 0)
			continue;

		/*
		 * Background processes that have not written yet are left out: some (pg_cron's
		 * launcher) open short read-only transactions whose start time is stale, and would
		 * hold the window back for nothing. Client sessions count from their first statement.
		 */
		if (b->st_backendType != B_BACKEND && !TransactionIdIsValid(l->backend_xid))
			continue;
		if (b->st_xact_start_timestamp <= upper)
			upper = b->st_xact_start_timestamp - 1;
	}
	pgstat_clear_backend_activity_snapshot();
	return upper - (TimestampTz) watermark_lag_ms * 1000;
}

/* Locks the view's watermark row (creating it) and returns the watermark (NOBEGIN: none). */
static TimestampTz
lock_watermark(FsView *v)
{
	FsOwnerContext octx;
	Oid			t[1] = {INT4OID};
	Datum		a[1] = {Int32GetDatum(v->view_id)};
	bool		isnull = true;
	Datum		d = (Datum) 0;

	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_spi_exec("INSERT INTO feature_store.watermark (view_id) VALUES ($1) ON CONFLICT DO NOTHING",
				1, t, a, NULL, false);
	if (fs_spi_exec("SELECT watermark FROM feature_store.watermark WHERE view_id = $1 FOR UPDATE",
					1, t, a, NULL, false) == 1)
		d = fs_spi_datum(0, 1, &isnull);
	fs_owner_context_leave(&octx);
	SPI_finish();
	return isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
}

/*
 * fs_materialize_incremental(view) -> rows written. Needs SELECT on the source and ownership
 * of the view: it moves the view's watermark, which is the view's state, not the caller's.
 */
Datum
fs_materialize_incremental(PG_FUNCTION_ARGS)
{
	FsView	   *v;
	WindowWork	w;

	v = fs_lookup_view(fs_text_arg(fcinfo, 0, "feature view name"), false);
	fs_check_not_agg(v, "materialize");
	if (strcmp(v->online_mode, "off") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" is not online", v->name),
				 errhint("Enable it with SELECT fs_set_online_mode('%s', 'batch').", v->name)));
	if (!fs_is_member_of(GetUserId(), v->registered_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of feature view \"%s\"", v->name),
				 errdetail("Incremental materialization moves the view's watermark; feature view \"%s\" was registered by role \"%s\".",
						   v->name, v->registered_by)));
	fs_check_view_select(v);
	fs_view_source_relid(v);

	w.view = v;
	w.start = lock_watermark(v);
	w.end = incremental_upper();
	w.start_exclusive = true;
	w.on_created = v->created_time != NULL;
	w.as_of_end = false;
	w.set_watermark = true;
	w.nchunks = 0;
	w.chunk = 0;
	w.quarantine = true;
	if (!TIMESTAMP_IS_NOBEGIN(w.start) && w.end <= w.start)
		w.end = w.start;		/* nothing new is safe to read yet: an empty window */
	PG_RETURN_INT64((int64) fs_run_logged(v, fs_run_incremental_kind(), w.start, w.end, window_work, &w));
}

/* Deletes the view version's watermark (the next incremental run starts from the beginning). */
static void
reset_watermark(FsView *v)
{
	FsOwnerContext octx;
	Oid			t[1] = {INT4OID};
	Datum		a[1] = {Int32GetDatum(v->view_id)};

	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_spi_exec("DELETE FROM feature_store.watermark WHERE view_id = $1", 1, t, a, NULL, false);
	fs_owner_context_leave(&octx);
	SPI_finish();
}

/*
 * The materialization side of a mode switch (triggers, watermark, refill), kept here so that
 * fs_set_online_mode only has to call it.
 */
void
fs_mat_mode_changed(FsView *v, const char *old_mode, const char *new_mode)
{
	bool		was_stream = strcmp(old_mode, "stream") == 0;
	bool		is_stream = strcmp(new_mode, "stream") == 0;

	if (strcmp(new_mode, "off") != 0)
		fs_check_view_select(v);
	if (is_stream && !was_stream)
		fs_stream_check_privilege(v);
	if (was_stream && !is_stream)
	{
		FsOwnerContext octx;

		SPI_connect();
		fs_owner_context_enter(&octx);
		fs_stream_drop_triggers(v);
		fs_owner_context_leave(&octx);
		SPI_finish();
	}
	if (strcmp(new_mode, "off") == 0)
	{
		reset_watermark(v);
		return;
	}
	if (is_stream)
	{
		FsOwnerContext octx;

		SPI_connect();
		fs_owner_context_enter(&octx);
		/* streaming again: only what a view that streamed before 0.3 lacks */
		if (was_stream)
			fs_stream_create_replica_trigger(v);
		else
			fs_stream_create_triggers(v);
		fs_owner_context_leave(&octx);
		SPI_finish();
		CommandCounterIncrement();
	}

	/*
	 * Coming back on (or starting to stream): catch up with everything committed so far, so
	 * the online table (and then the cache) is refilled and no row committed before the
	 * triggers exist is missed. CREATE TRIGGER's lock waited for writers in progress, and new
	 * ones wait for this transaction, so every source row is either read here or streamed.
	 * A version still backfilling is not served by name: its history is fs_backfill's, in
	 * chunks, rather than one transaction here (every chunk's snapshot follows the triggers).
	 */
	if (v->is_ready && (strcmp(old_mode, "off") == 0 || (is_stream && !was_stream)))
	{
		WindowWork	w = {v, DT_NOBEGIN, DT_NOEND, false, false, false, false, 0, 0, true};

		fs_run_logged(v, strcmp(old_mode, "off") == 0 ? "batch" : "stream", DT_NOBEGIN, DT_NOEND,
					  window_work, &w);
	}
}
