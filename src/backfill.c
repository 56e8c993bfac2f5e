/*
 * backfill.c — fs_backfill's steps: recompute a view version's online rows over a time range in
 * chunks of one transaction each (the procedure in backfill.sql commits between the steps), and
 * switch a new version from 'backfilling' to 'ready' in the transaction of its last chunk, so
 * that fs_online(entity, 'view') moves to it atomically at that commit.
 *
 * Chunks split the entities, not the time: chunk i holds the entities whose key hash falls in
 * the i-th of n equal ranges (feature_store.key_chunk) and writes each of them once, by
 * fs_materialize's rule over the whole range [start, end]. Cutting the range into time slices
 * instead would rewrite every entity active in several slices once per slice.
 *
 * Idempotent: a chunk writes only rows strictly newer than the row online (never backwards), so
 * a rerun writes nothing and an interrupted run, resumed at its first unfinished chunk, ends
 * with the rows of one uninterrupted run. Concurrent writers (streaming triggers, other
 * materialization runs) follow the same rule under the online table's lock: whatever the order
 * of commits, each entity keeps its newest row.
 *
 * One backfill per view version at a time: a session-level advisory lock (released at the end,
 * or when the session ends: a killed backend leaves an 'interrupted' run, resumed by a rerun).
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "key_hash.h"
#include "materialize.h"
#include "materialize_scan.h"
#include "registry.h"
#include "security.h"
#include "spi_util.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(fs_key_chunk);
PG_FUNCTION_INFO_V1(fs_backfill_begin);
PG_FUNCTION_INFO_V1(fs_backfill_chunk);
PG_FUNCTION_INFO_V1(fs_backfill_failed);

/* advisory lock (key1, view_id) of a running backfill; fs_stat_backfill reads it in pg_locks */
#define BACKFILL_LOCK_KEY1 0x66736266	/* "fsbf" */

/* Default chunking: one chunk per this many source rows (the planner's count), at most MAX. */
#define BACKFILL_ROWS_PER_CHUNK 5000000.0
#define BACKFILL_MAX_CHUNKS 10000

static void
backfill_locktag(LOCKTAG *tag, int32 view_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) BACKFILL_LOCK_KEY1, (uint32) view_id, 2);
}

/*
 * feature_store.key_chunk(nchunks, VARIADIC keys) -> the chunk of an entity key, computed as
 * materialization's hash table hashes it (key_hash.h, the arguments' types and collation), so
 * that the SQL statement and the C scan of one chunk agree on its entities.
 */
Datum
fs_key_chunk(PG_FUNCTION_ARGS)
{
	int32		nchunks = PG_GETARG_INT32(0);
	int			nkeys = PG_NARGS() - 1;
	Datum		keys[FS_MAX_KEYS];
	Oid			coll[FS_MAX_KEYS];
	FmgrInfo   *hash = fcinfo->flinfo->fn_extra;
	bool		bitwise = true;

	if (nchunks < 1 || nkeys < 1 || nkeys > FS_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key_chunk needs a positive chunk count and 1 to %d keys", FS_MAX_KEYS)));
	for (int i = 0; i < nkeys; i++)
	{
		Oid			t = get_fn_expr_argtype(fcinfo->flinfo, i + 1);

		if (PG_ARGISNULL(i + 1))
			PG_RETURN_NULL();
		keys[i] = PG_GETARG_DATUM(i + 1);
		coll[i] = PG_GET_COLLATION();
		if (t != INT2OID && t != INT4OID && t != INT8OID)
			bitwise = false;
	}
	if (!bitwise && hash == NULL)
	{
		hash = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo) * nkeys);
		for (int i = 0; i < nkeys; i++)
		{
			TypeCacheEntry *tc = lookup_type_cache(get_fn_expr_argtype(fcinfo->flinfo, i + 1),
												   TYPECACHE_HASH_PROC_FINFO);

			if (!OidIsValid(tc->hash_proc))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_FUNCTION),
						 errmsg("key type %s has no hash function", format_type_be(tc->type_id))));
			fmgr_info_copy(&hash[i], &tc->hash_proc_finfo, fcinfo->flinfo->fn_mcxt);
		}
		fcinfo->flinfo->fn_extra = hash;
	}
	PG_RETURN_INT32(fs_key_chunk_of(fs_key_hash(nkeys, bitwise, hash, coll, keys), nchunks));
}

/* The version fs_backfill works on, checked: online, the caller owns it and reads its source. */
static FsView *
backfill_view(const char *ref)
{
	FsView	   *v = fs_lookup_view(ref, false);

	if (strcmp(v->online_mode, "off") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" version %d is not online: there is nothing to backfill", v->name, v->version),
				 errhint("Enable it with SELECT fs_set_online_mode('%s@%d', 'batch').", v->name, v->version)));
	if (!fs_is_member_of(GetUserId(), v->registered_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of feature view \"%s\"", v->name),
				 errdetail("A backfill decides when a version is served; feature view \"%s\" was registered by role \"%s\".",
						   v->name, v->registered_by)));
	fs_check_view_select(v);
	fs_view_source_relid(v);
	return v;
}

static void
check_bound(bool isnull, TimestampTz t, const char *which)
{
	if (!isnull && TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("backfill %s must be finite", which),
				 errhint("Leave it out (NULL) for %s.",
						 strcmp(which, "start") == 0 ? "the oldest event time of the source" : "now()")));
}

/* Default start: the oldest event time of the source (NULL when it has no rows). */
static bool
oldest_event(FsView *v, TimestampTz *out)
{
	bool		isnull = true;
	Datum		d;

	fs_spi_exec(psprintf("SELECT min(CAST(%s AS pg_catalog.timestamptz)) FROM %s",
						 quote_identifier(v->event_time),
						 quote_qualified_identifier(v->source_schema, v->source_name)),
				0, NULL, NULL, NULL, true);
	d = fs_spi_datum(0, 1, &isnull);
	if (!isnull)
		*out = DatumGetTimestampTz(d);
	return !isnull && !TIMESTAMP_NOT_FINITE(*out);
}

/* Default chunk count: by the source's size as the planner knows it. */
static int
default_chunks(FsView *v)
{
	Oid			t[1] = {OIDOID};
	Datum		a[1] = {ObjectIdGetDatum(fs_view_source_relid(v))};
	double		rows = 0;

	if (fs_spi_exec("SELECT CAST(GREATEST(c.reltuples, 0) + coalesce((SELECT sum(GREATEST(p.reltuples, 0)) "
					"  FROM pg_catalog.pg_partition_tree(c.oid) t JOIN pg_catalog.pg_class p ON p.oid = t.relid "
					"  WHERE t.relid <> c.oid), 0) AS pg_catalog.float8) FROM pg_catalog.pg_class c WHERE c.oid = $1",
					1, t, a, NULL, true) == 1)
	{
		bool		isnull;
		Datum		d = fs_spi_datum(0, 1, &isnull);

		if (!isnull)
			rows = DatumGetFloat8(d);
	}
	return (int) Min(Max(ceil(rows / BACKFILL_ROWS_PER_CHUNK), 1), BACKFILL_MAX_CHUNKS);
}

/*
 * feature_store.backfill_begin(view, start_ts, end_ts, chunks) -> (backfill_id, chunks_total,
 * chunks_done): checks, takes the version's backfill lock, and resumes the newest unfinished
 * backfill of the version that matches the arguments given (NULL matches any), or starts one.
 */
Datum
fs_backfill_begin(PG_FUNCTION_ARGS)
{
	char	   *ref = fs_text_arg(fcinfo, 0, "feature view name");
	bool		start_null = PG_ARGISNULL(1),
				end_null = PG_ARGISNULL(2),
				chunks_null = PG_ARGISNULL(3);
	TimestampTz start_ts = start_null ? 0 : PG_GETARG_TIMESTAMPTZ(1);
	TimestampTz end_ts = end_null ? 0 : PG_GETARG_TIMESTAMPTZ(2);
	int32		chunks = chunks_null ? 0 : PG_GETARG_INT32(3);
	FsView	   *v;
	TupleDesc	desc;
	Datum		out[3];
	bool		outnull[3] = {false, false, false};
	FsOwnerContext octx;
	LOCKTAG		tag;
	int64		id;
	int32		total,
				done;

	if (IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("fs_backfill cannot run inside a transaction block"),
				 errdetail("It commits once per chunk."),
				 errhint("CALL it on its own.")));
	check_bound(start_null, start_ts, "start");
	check_bound(end_null, end_ts, "end");
	if (!start_null && !end_null && start_ts > end_ts)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("backfill range starts after it ends"),
				 errhint("Pass start_ts <= end_ts.")));
	if (!chunks_null && (chunks < 1 || chunks > BACKFILL_MAX_CHUNKS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("backfill chunks must be between 1 and %d", BACKFILL_MAX_CHUNKS)));
	v = backfill_view(ref);

	backfill_locktag(&tag, v->view_id);
	/* still held by this session when a canceled backfill skipped the procedure's handler */
	if (!LockHeldByMe(&tag, ExclusiveLock) &&
		LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("a backfill of feature view \"%s\" version %d is running", v->name, v->version),
				 errhint("See SELECT * FROM fs_stat_backfill WHERE status = 'running'.")));

	SPI_connect();
	fs_owner_context_enter(&octx);
	{
		Oid			t[5] = {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, BOOLOID};
		Datum		a[5] = {Int32GetDatum(v->view_id), TimestampTzGetDatum(start_ts), TimestampTzGetDatum(end_ts),
		Int32GetDatum(chunks), BoolGetDatum(v->is_agg)};
		bool		n[5] = {false, start_null, end_null, chunks_null, false};

		if (fs_spi_exec("SELECT backfill_id, chunks_total, chunks_done FROM feature_store.backfill "
						"WHERE view_id = $1 AND finished IS NULL AND ($2 IS NULL OR range_start = $2) "
						"  AND ($3 IS NULL OR range_end = $3) AND ($4 IS NULL OR chunks_total = $4) "
						"ORDER BY backfill_id DESC LIMIT 1", 4, t, a, n, false) == 1)
		{
			bool		isnull;

			id = DatumGetInt64(fs_spi_datum(0, 1, &isnull));
			total = fs_spi_int32(0, 2, 0);
			done = fs_spi_int32(0, 3, 0);
			a[0] = Int64GetDatum(id);
			t[0] = INT8OID;
			fs_spi_exec("UPDATE feature_store.backfill SET error = NULL, sqlstate = NULL, pid = pg_catalog.pg_backend_pid(), "
						"  resumed = resumed + 1 WHERE backfill_id = $1", 1, t, a, NULL, false);
			ereport(NOTICE,
					(errmsg("resuming backfill %lld of feature view \"%s\" version %d at chunk %d of %d",
							(long long) id, v->name, v->version, done + 1, total)));
		}
		else
		{
			bool		isnull;

			if (end_null)
				end_ts = GetCurrentStatementStartTimestamp();
			if (start_null && !oldest_event(v, &start_ts))
				start_ts = end_ts;	/* no rows: nothing to read, the version still becomes ready */
			if (start_ts > end_ts)
				start_ts = end_ts;
			a[1] = TimestampTzGetDatum(start_ts);
			a[2] = TimestampTzGetDatum(end_ts);
			a[3] = Int32GetDatum(v->is_agg ? 0 : chunks_null ? default_chunks(v) : chunks);
			n[1] = n[2] = n[3] = false;
			fs_spi_exec("INSERT INTO feature_store.backfill (view_id, view_name, view_version, range_start, range_end, "
						"  chunks_total, pid, started_by, finished) "
						"VALUES ($1, (SELECT name FROM feature_store.feature_view WHERE view_id = $1), "
						"        (SELECT version FROM feature_store.feature_view WHERE view_id = $1), $2, $3, $4, "
						"        pg_catalog.pg_backend_pid(), pg_catalog.session_user(), "
						"        CASE WHEN $5 THEN pg_catalog.clock_timestamp() END) "
						"RETURNING backfill_id", 5, t, a, n, false);
			id = DatumGetInt64(fs_spi_datum(0, 1, &isnull));
			total = DatumGetInt32(a[3]);
			done = 0;
			if (v->is_agg)
				ereport(NOTICE,
						(errmsg("feature view \"%s\" is an aggregation view: nothing to backfill", v->name),
						 errdetail("Its values are computed from the source at each lookup; every version is ready when registered.")));
		}
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	if (total == 0)
		LockRelease(&tag, ExclusiveLock, true);

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "backfill_begin must return a row");
	out[0] = Int64GetDatum(id);
	out[1] = Int32GetDatum(total);
	out[2] = Int32GetDatum(done);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), out, outnull)));
}

/* The backfill row's view version and range (as the owner). */
static FsView *
backfill_row(int64 id, TimestampTz *start, TimestampTz *end, int32 *total)
{
	Oid			t[1] = {INT8OID};
	Datum		a[1] = {Int64GetDatum(id)};
	int32		view_id;
	bool		isnull;
	FsOwnerContext octx;

	SPI_connect();
	fs_owner_context_enter(&octx);
	if (fs_spi_exec("SELECT view_id, range_start, range_end, chunks_total FROM feature_store.backfill "
					"WHERE backfill_id = $1", 1, t, a, NULL, true) != 1)
		elog(ERROR, "backfill %lld does not exist", (long long) id);
	view_id = fs_spi_int32(0, 1, 0);
	*start = DatumGetTimestampTz(fs_spi_datum(0, 2, &isnull));
	*end = DatumGetTimestampTz(fs_spi_datum(0, 3, &isnull));
	*total = fs_spi_int32(0, 4, 0);
	fs_owner_context_leave(&octx);
	SPI_finish();
	return fs_lookup_view_by_id(view_id, false);
}

/*
 * feature_store.backfill_chunk(backfill_id, chunk) -> rows written: one chunk, its progress, and
 * on the last one the version's switch to 'ready' (committed together by the procedure).
 */
Datum
fs_backfill_chunk(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	int32		chunk = PG_GETARG_INT32(1);
	TimestampTz start,
				end;
	int32		total;
	FsView	   *v = backfill_row(id, &start, &end, &total);
	uint64		n;
	bool		last = chunk + 1 == total;
	FsOwnerContext octx;

	v = backfill_view(psprintf("%s@%d", v->name, v->version));
	if (chunk < 0 || chunk >= total)
		elog(ERROR, "backfill %lld has no chunk %d", (long long) id, chunk);
	n = fs_materialize_chunk(v, start, end, chunk, total, chunk == 0);

	SPI_connect();
	fs_owner_context_enter(&octx);
	{
		Oid			t[4] = {INT8OID, INT4OID, INT8OID, BOOLOID};
		Datum		a[4] = {Int64GetDatum(id), Int32GetDatum(chunk + 1), Int64GetDatum((int64) n), BoolGetDatum(last)};

		fs_spi_exec("UPDATE feature_store.backfill SET chunks_done = $2, rows_written = rows_written + $3, "
					"  finished = CASE WHEN $4 THEN pg_catalog.clock_timestamp() END WHERE backfill_id = $1",
					4, t, a, NULL, false);
		if (last)
		{
			t[0] = INT4OID;
			a[0] = Int32GetDatum(v->view_id);
			fs_spi_exec("UPDATE feature_store.feature_view SET state = 'ready' WHERE view_id = $1 AND state <> 'ready'",
						1, t, a, NULL, false);
		}
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	ereport(NOTICE,
			(errmsg("backfill of feature view \"%s\" version %d: chunk %d of %d, %llu rows written%s",
					v->name, v->version, chunk + 1, total, (unsigned long long) n,
					last ? "; the version is ready" : "")));
	if (last)
	{
		LOCKTAG		tag;

		backfill_locktag(&tag, v->view_id);
		LockRelease(&tag, ExclusiveLock, true);
	}
	PG_RETURN_INT64((int64) n);
}

/* feature_store.backfill_failed(backfill_id, error, sqlstate): records the error, frees the lock. */
Datum
fs_backfill_failed(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	TimestampTz start,
				end;
	int32		total;
	FsView	   *v = backfill_row(id, &start, &end, &total);
	FsOwnerContext octx;
	Oid			t[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		a[3] = {Int64GetDatum(id), PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
	PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2)};
	bool		n[3] = {false, PG_ARGISNULL(1), PG_ARGISNULL(2)};
	LOCKTAG		tag;

	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_spi_exec("UPDATE feature_store.backfill SET error = $2, sqlstate = $3 WHERE backfill_id = $1",
				3, t, a, n, false);
	fs_owner_context_leave(&octx);
	SPI_finish();
	backfill_locktag(&tag, v->view_id);
	LockRelease(&tag, ExclusiveLock, true);
	PG_RETURN_VOID();
}
