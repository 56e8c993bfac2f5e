/*
 * stat_views.c — the counts behind fs_stat_views that need to read tables ordinary roles
 * cannot: the view's online table and the quarantine. They are returned only to roles that
 * may SELECT the view's source (the rule of serving and of fs_quarantine), so the status view
 * can be readable by everyone without leaking how much data other views hold.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "online_table.h"
#include "registry.h"
#include "security.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(fs_view_counts);
PG_FUNCTION_INFO_V1(fs_can_read_view);

/* feature_store.can_read_view(view_id): the serving rule, for fs_quarantine; false if unknown. */
Datum
fs_can_read_view(PG_FUNCTION_ARGS)
{
	FsView	   *v = fs_lookup_view_by_id(PG_GETARG_INT32(0), true);

	PG_RETURN_BOOL(v != NULL && OidIsValid(v->source_relid) && fs_can_select_view(v));
}

/* feature_store.view_counts(view_id) -> (rows_online, newest_event, quarantined). */
Datum
fs_view_counts(PG_FUNCTION_ARGS)
{
	FsView	   *v = fs_lookup_view_by_id(PG_GETARG_INT32(0), true);
	TupleDesc	tupdesc;
	Datum		vals[3] = {0};
	bool		nulls[3] = {true, true, true};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "view_counts must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (v != NULL && OidIsValid(v->source_relid) && fs_can_select_view(v))
	{
		FsOwnerContext octx;
		Oid			t[1] = {INT4OID};
		Datum		a[1] = {Int32GetDatum(v->view_id)};

		SPI_connect();
		fs_owner_context_enter(&octx);
		if (OidIsValid(fs_online_table_relid(v->view_id)))
		{
			fs_spi_exec(psprintf("SELECT count(*), max(%s) FROM %s", quote_identifier(FS_ONLINE_EVENT_COL),
								 fs_online_table_qualname(v->view_id)), 0, NULL, NULL, NULL, true);
			vals[0] = fs_spi_datum(0, 1, &nulls[0]);
			vals[1] = fs_spi_datum(0, 2, &nulls[1]);
		}
		else if (strcmp(v->online_mode, "off") != 0)
		{
			/* online, but nothing materialized yet: the table is created by the first run */
			vals[0] = Int64GetDatum(0);
			nulls[0] = false;
		}
		fs_spi_exec("SELECT count(*) FROM feature_store.quarantine WHERE view_id = $1", 1, t, a, NULL, true);
		vals[2] = fs_spi_datum(0, 1, &nulls[2]);
		fs_owner_context_leave(&octx);
		SPI_finish();
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, vals, nulls)));
}
