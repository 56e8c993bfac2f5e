/*
 * training_set.c — the SQL face of the point-in-time join: the set-returning
 * fs_point_in_time_join, fs_training_columns (the column list its AS clause needs),
 * fs_create_training_set (a typed table plus lineage in feature_store.training_set) and
 * fs_point_in_time_join_stats. The join itself is in pit_join.c.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/elog.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "pit_join.h"
#include "pit_join_int.h"
#include "security.h"
#include "spi_util.h"
#include "training_set.h"
#include "transform_train.h"

PG_FUNCTION_INFO_V1(fs_point_in_time_join);
PG_FUNCTION_INFO_V1(fs_training_columns);
PG_FUNCTION_INFO_V1(fs_create_training_set);
PG_FUNCTION_INFO_V1(fs_point_in_time_join_stats);

/*
 * Arguments shared by every form: spine, features, spine_time, full_names and (not in
 * fs_training_columns) as_of_created, the first nshared of them from argument `first` on, then
 * spine_query. A database not yet updated to 0.3 calls with fewer arguments (no spine_query).
 */
PitPlan *
fs_training_plan_from_args(FunctionCallInfo fcinfo, int first, int nshared, FsTransformTrain **tt)
{
	const char *names[5] = {"spine", "features", "spine_time", "full_names", "as_of_created"};
	int			nargs = Min(PG_NARGS() - first, nshared);
	int			qarg = first + nshared;
	bool		has_spine = !PG_ARGISNULL(first);
	bool		has_query = PG_NARGS() > qarg && !PG_ARGISNULL(qarg);

	if (has_spine && has_query)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("spine and spine_query cannot both be given"),
				 errhint("Pass the spine either as a relation (spine => 'table') or as a query (spine_query => 'SELECT ...').")));
	if (!has_spine && !has_query)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"spine\" must not be null"),
				 errhint("Pass the spine as a relation (spine => 'table') or as a query (spine_query => 'SELECT ...').")));
	for (int i = 1; i < nargs; i++)
		if (PG_ARGISNULL(first + i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" must not be null", names[i])));
	return pit_plan_create(has_spine ? PG_GETARG_OID(first) : InvalidOid,
						   has_query ? text_to_cstring(PG_GETARG_TEXT_PP(qarg)) : NULL,
						   fs_transform_train_split(PG_GETARG_ARRAYTYPE_P(first + 1), tt),
						   text_to_cstring(PG_GETARG_TEXT_PP(first + 2)),
						   nargs > 3 ? PG_GETARG_BOOL(first + 3) : false,
						   nargs > 4 ? PG_GETARG_BOOL(first + 4) : false);
}

/* The training set's columns: the join's, or with transforms, the transforms' binding. */
TupleDesc
fs_training_plan_desc(PitPlan *plan, FsTransformTrain *tt)
{
	return tt ? fs_transform_train_bind(tt, plan) : pit_plan_tupdesc(plan);
}

/* Runs the join, its rows through the transforms when there are any. */
uint64
fs_training_plan_run(PitPlan *plan, FsTransformTrain *tt, PitEmitFn emit, void *arg)
{
	if (tt == NULL)
		return pit_plan_execute(plan, emit, arg);
	fs_transform_train_set_emit(tt, emit, arg);
	return pit_plan_execute(plan, fs_transform_train_emit, tt);
}

/*
 * The parser, not this extension, refuses fs_point_in_time_join in FROM without a column
 * definition list ("a column definition list is required for functions returning record"),
 * before the function runs and with no word on how to get the list. No hook runs during parse
 * analysis, so the hint is added to that error as it is reported, when the error's position is
 * at a call of fs_point_in_time_join. A caller that catches the error (PL/pgSQL EXCEPTION) sees
 * the parser's error unchanged: the hook runs only for errors that reach the client or log.
 */
static emit_log_hook_type prev_emit_log_hook = NULL;

/* Whether the text at 1-based character position pos of query is a call of the join. */
static bool
calls_pit_join_at(const char *query, int pos)
{
	const char *p = query;
	const char *name = "fs_point_in_time_join";
	size_t		len = strlen(name);

	if (query == NULL || pos <= 0)
		return false;
	for (int i = 1; i < pos && *p; i++)
		p += pg_mblen(p);
	/* the name, possibly schema-qualified or quoted, before the opening parenthesis */
	for (; *p && *p != '('; p++)
		if (pg_strncasecmp(p, name, len) == 0)
			return true;
	return false;
}

static void
pit_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel == ERROR && edata->sqlerrcode == ERRCODE_SYNTAX_ERROR && edata->hint == NULL &&
		edata->message_id != NULL &&
		strcmp(edata->message_id, "a column definition list is required for functions returning \"record\"") == 0 &&
		(edata->internalpos > 0 ? calls_pit_join_at(edata->internalquery, edata->internalpos)
		 : calls_pit_join_at(debug_query_string, edata->cursorpos)))
		edata->hint = pstrdup("Name the result columns: FROM fs_point_in_time_join(...) AS t(...), with the list "
							  "that fs_training_columns(spine, features) returns for the same arguments; "
							  "or create a table of the training set with fs_create_training_set(target, spine, features).");
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* See training_set.h. */
void
fs_training_set_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = pit_emit_log_hook;
}

/* The column list "name type, ..." of a training set, for AS clauses and CREATE TABLE. */
static char *
column_list(TupleDesc desc)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		appendStringInfo(&s, "%s%s %s", i ? ", " : "", quote_identifier(NameStr(a->attname)),
						 format_type_with_typemod(a->atttypid, a->atttypmod));
		if (OidIsValid(a->attcollation) && a->attcollation != get_typcollation(a->atttypid))
			appendStringInfo(&s, " COLLATE %s", generate_collation_name(a->attcollation));
	}
	return s.data;
}

typedef struct TstoreEmit
{
	Tuplestorestate *store;
	TupleDesc	desc;
} TstoreEmit;

/* Emit callback of the set-returning form: rows go to the function's tuplestore. */
static void
emit_tstore(void *arg, Datum *values, bool *nulls)
{
	TstoreEmit *t = arg;

	tuplestore_putvalues(t->store, t->desc, values, nulls);
}

/* The same for rows that arrive formed: the column types were checked equal, so is their form. */
static void
emit_tstore_slot(void *arg, TupleTableSlot *slot)
{
	TstoreEmit *t = arg;

	tuplestore_puttupleslot(t->store, slot);
}

/*
 * fs_point_in_time_join(spine, features, spine_time, full_names, as_of_created, spine_query)
 * RETURNS SETOF record.
 * The caller's column definition list must have the training set's column types.
 */
Datum
fs_point_in_time_join(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PitPlan    *plan;
	TupleDesc	desc;
	TupleDesc	expected;
	MemoryContext old;
	TstoreEmit	t;
	FsTransformTrain *tt;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("fs_point_in_time_join must be called in the FROM clause")));
	plan = fs_training_plan_from_args(fcinfo, 0, 5, &tt);
	desc = fs_training_plan_desc(plan, tt);
	expected = rsinfo->expectedDesc;
	if (expected == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("fs_point_in_time_join needs a column definition list"),
				 errhint("Write FROM fs_point_in_time_join(...) AS t(%s) (fs_training_columns prints this list), or create a table with fs_create_training_set.",
						 column_list(desc))));
	if (expected->natts != desc->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column definition list has %d columns, but the training set has %d",
						expected->natts, desc->natts),
				 errhint("Write AS t(%s), or create a table with fs_create_training_set.", column_list(desc))));
	for (int i = 0; i < desc->natts; i++)
	{
		Oid			et = TupleDescAttr(expected, i)->atttypid;
		Oid			dt = TupleDescAttr(desc, i)->atttypid;

		if (et != dt)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d (\"%s\") of the column definition list has type %s, but the training set's column \"%s\" has type %s",
							i + 1, NameStr(TupleDescAttr(expected, i)->attname), format_type_be(et),
							NameStr(TupleDescAttr(desc, i)->attname), format_type_be(dt)),
					 errhint("Write AS t(%s).", column_list(desc))));
	}

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	t.desc = CreateTupleDescCopy(expected);
	t.store = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0, false, work_mem);
	MemoryContextSwitchTo(old);

	if (tt == NULL)
		pit_plan_set_emit_slot(plan, emit_tstore_slot);
	fs_training_plan_run(plan, tt, emit_tstore, &t);
	pit_plan_free(plan);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = t.store;
	rsinfo->setDesc = t.desc;
	return (Datum) 0;
}

/* fs_training_columns(spine, features, spine_time, full_names, spine_query) RETURNS text */
Datum
fs_training_columns(PG_FUNCTION_ARGS)
{
	FsTransformTrain *tt;
	PitPlan    *plan = fs_training_plan_from_args(fcinfo, 0, 4, &tt);
	char	   *s = column_list(fs_training_plan_desc(plan, tt));

	pit_plan_free(plan);
	PG_RETURN_TEXT_P(cstring_to_text(s));
}

typedef struct TableEmit
{
	Relation	rel;
	TupleTableSlot *slot;
	BulkInsertState bis;
	CommandId	cid;
} TableEmit;

/* Emit callback of fs_create_training_set: rows go straight into the new table. */
static void
emit_table(void *arg, Datum *values, bool *nulls)
{
	TableEmit  *t = arg;

	ExecClearTuple(t->slot);
	memcpy(t->slot->tts_values, values, sizeof(Datum) * t->slot->tts_tupleDescriptor->natts);
	memcpy(t->slot->tts_isnull, nulls, sizeof(bool) * t->slot->tts_tupleDescriptor->natts);
	ExecStoreVirtualTuple(t->slot);
	table_tuple_insert(t->rel, t->slot, t->cid, 0, t->bis);
}

/* A text[] of C strings, for the lineage row. */
static Datum
text_array(List *strings)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(list_length(strings), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, strings)
		d[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * fs_create_training_set(target, spine, features, spine_time, full_names, as_of_created,
 * spine_query) RETURNS bigint: creates table target (owned by the caller) holding the training
 * set and records its lineage; returns the row count. A spine that will be gone (a temporary
 * table, a query) is recorded with its checksum, so that a spine rebuilt later can be recognized.
 */
Datum
fs_create_training_set(PG_FUNCTION_ARGS)
{
	char	   *target;
	List	   *names;
	RangeVar   *rv;
	PitPlan    *plan;
	TupleDesc	desc;
	StringInfoData sql;
	Oid			relid;
	TableEmit	t;
	uint64		nrows;
	List	   *view_ids;
	List	   *versions;
	FsOwnerContext octx;
	bool		has_query;
	FsTransformTrain *tt;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"target\" must not be null")));
	target = text_to_cstring(PG_GETARG_TEXT_PP(0));
	names = textToQualifiedNameList(PG_GETARG_TEXT_PP(0));
	rv = makeRangeVarFromNameList(names);
	plan = fs_training_plan_from_args(fcinfo, 1, 5, &tt);
	desc = fs_training_plan_desc(plan, tt);

	/* The table, created as the caller with the caller's privileges. */
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (%s)",
					 quote_qualified_identifier(rv->schemaname, rv->relname), column_list(desc));
	SPI_connect();
	if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create training set table \"%s\"", target);
	SPI_finish();
	CommandCounterIncrement();
	relid = RangeVarGetRelid(rv, AccessExclusiveLock, false);

	has_query = PG_NARGS() > 6 && !PG_ARGISNULL(6);
	if (has_query || pit_plan_spine_is_temp(plan))
		(void) pit_plan_want_checksum(plan);

	t.rel = table_open(relid, NoLock);
	t.slot = table_slot_create(t.rel, NULL);
	t.bis = GetBulkInsertState();
	t.cid = GetCurrentCommandId(true);
	nrows = fs_training_plan_run(plan, tt, emit_table, &t);
	FreeBulkInsertState(t.bis);
	table_finish_bulk_insert(t.rel, 0);
	ExecDropSingleTupleTableSlot(t.slot);
	table_close(t.rel, NoLock);
	CommandCounterIncrement();

	/* Lineage, written as the extension owner. */
	versions = pit_plan_view_versions(plan, &view_ids);
	{
		Oid			types[15] = {NAMEOID, NAMEOID, OIDOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID,
			TEXTARRAYOID, INT4ARRAYOID, BOOLOID, BOOLOID, INT8OID, NAMEOID, TEXTOID, TEXTOID};
		Datum		vals[15];
		bool		nulls[15] = {false};
		Datum	   *ids = palloc(sizeof(Datum) * Max(list_length(view_ids), 1));
		char	   *checksum = pit_plan_spine_checksum(plan);
		int			n = 0;
		ListCell   *lc;

		foreach(lc, view_ids)
			ids[n++] = Int32GetDatum(lfirst_int(lc));
		vals[0] = DirectFunctionCall1(namein, CStringGetDatum(get_namespace_name(get_rel_namespace(relid))));
		vals[1] = DirectFunctionCall1(namein, CStringGetDatum(get_rel_name(relid)));
		vals[2] = ObjectIdGetDatum(relid);
		if (has_query)
		{
			nulls[3] = true;
			vals[13] = PG_GETARG_DATUM(6);
		}
		else
		{
			Oid			spine = PG_GETARG_OID(1);

			vals[3] = CStringGetTextDatum(quote_qualified_identifier(get_namespace_name(get_rel_namespace(spine)),
																	 get_rel_name(spine)));
			nulls[13] = true;
		}
		vals[4] = PG_GETARG_DATUM(3);
		vals[5] = PG_GETARG_DATUM(2);
		vals[6] = text_array(pit_plan_feature_refs(plan));
		vals[7] = text_array(versions);
		vals[8] = PointerGetDatum(construct_array(ids, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
		vals[9] = BoolGetDatum(PG_GETARG_BOOL(5));
		vals[10] = BoolGetDatum(PG_GETARG_BOOL(4));
		vals[11] = Int64GetDatum((int64) nrows);
		vals[12] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
		nulls[14] = checksum == NULL;
		vals[14] = checksum ? CStringGetTextDatum(checksum) : (Datum) 0;

		fs_owner_context_enter(&octx);
		SPI_connect();
		/* the library is updated before ALTER EXTENSION UPDATE adds the spine's columns */
		if (get_attnum(get_relname_relid("training_set", get_namespace_oid("feature_store", false)),
					   "spine_checksum") != InvalidAttrNumber)
			fs_spi_exec("INSERT INTO feature_store.training_set (target_schema, target_name, target_relid, spine, "
						"  spine_time, feature_refs, features, view_versions, view_ids, as_of_created, full_names, "
						"  row_count, created_by, spine_query, spine_checksum) "
						"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
						15, types, vals, nulls, false);
		else
			fs_spi_exec("INSERT INTO feature_store.training_set (target_schema, target_name, target_relid, spine, "
						"  spine_time, feature_refs, features, view_versions, view_ids, as_of_created, full_names, "
						"  row_count, created_by) "
						"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
						13, types, vals, nulls, false);
		SPI_finish();
		fs_owner_context_leave(&octx);
	}
	pit_plan_free(plan);
	PG_RETURN_INT64((int64) nrows);
}

/* fs_point_in_time_join_stats(): how the last join in this session ran. */
Datum
fs_point_in_time_join_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		v[6];
	bool		n[6] = {false, false, false, false, false, false};
	char		buf[300];

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	v[0] = Int64GetDatum((int64) pit_last_stats.spine_rows);
	v[1] = Int32GetDatum(pit_last_stats.batches);
	v[2] = Int64GetDatum((int64) pit_last_stats.batch_rows);
	v[3] = Int64GetDatum((int64) pit_last_stats.source_rows);
	v[4] = Int64GetDatum((int64) pit_last_stats.peak_bytes);
	snprintf(buf, sizeof(buf), "%d scanned, %d probed; read spine %.0f ms, build %.0f ms, read sources %.0f ms (winners %.0f ms), merge %.0f ms, emit %.0f ms; %d cache partitions, %d flushes; %d aggregation splits, %d partial aggregation reads; %d parallel workers",
			 pit_last_stats.scanned_leaves, pit_last_stats.probed_leaves,
			 pit_last_stats.phase_ms[0], pit_last_stats.phase_ms[1], pit_last_stats.phase_ms[2],
			 pit_last_stats.winners_ms,
			 pit_last_stats.phase_ms[3], pit_last_stats.phase_ms[4],
			 pit_last_stats.partitions, pit_last_stats.flushes, pit_last_stats.agg_splits,
			 pit_last_stats.agg_partial, pit_last_stats.workers);
	v[5] = CStringGetTextDatum(buf);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, n)));
}
