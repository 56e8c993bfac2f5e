/*
 * stat_views.c — the counts behind fs_stat_views that need to read tables ordinary roles
 * cannot: the view's online table and the quarantine. They are returned only to roles that
 * may SELECT the view's source (the rule of serving and of fs_quarantine), so the status view
 * can be readable by everyone without leaking how much data other views hold. Beside them,
 * fs_online_stat, the function behind fs_stat_online: the cache's counts per view and its
 * worker's state.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "online_cache.h"
#include "online_meta.h"
#include "online_read.h"
#include "online_table.h"
#include "online_wal.h"
#include "registry.h"
#include "security.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(fs_view_counts);
PG_FUNCTION_INFO_V1(fs_can_read_view);
PG_FUNCTION_INFO_V1(fs_online_stat);

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

/* Names of worker states as fs_stat_online shows them. */
static const char *
worker_state_name(FsWorkerState s)
{
	switch (s)
	{
		case FS_WORKER_STARTING:
			return "starting";
		case FS_WORKER_LOADING:
			return "loading";
		case FS_WORKER_IDLE:
			return "idle";
		case FS_WORKER_BACKOFF:
			return "error backoff";
		case FS_WORKER_WAITING_EXTENSION:
			return "waiting for extension";
		case FS_WORKER_CONNECTING:
		case FS_WORKER_CONNECT_FAILED:
		case FS_WORKER_RECONNECTING:
			return "connecting";
		case FS_WORKER_WAITING_DATABASE:
			return "waiting for database";
		default:
			return "not running";
	}
}

/*
 * Statistics: one row per view slot of this database's views and a total row (view NULL) with
 * capacity and the worker's state. Slots are matched by database and view id (view ids repeat
 * across databases). Without the cache the total row says "disabled". In a database the cache
 * does not serve, every cache figure is zero (capacity included: none of it is this database's);
 * the worker's state stays visible, as it is where a user of another database sees that the
 * worker waits for feature_store.database to be created.
 */
Datum
fs_online_stat(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	FsCacheStats *s = palloc(sizeof(FsCacheStats));
	int64		tot_entries = 0,
				tot_bytes = 0;
	uint64		tot[FS_NCOUNTERS] = {0};
	bool		on = fs_cache_preloaded();
	bool		here = on && fs_read_cache_here();

	InitMaterializedSRF(fcinfo, 0);
	fs_cache_stats(s);
	if (!here)
	{
		s->nviews = 0;
		s->capacity_bytes = 0;
	}
	fs_meta_ensure();
	for (int i = 0; i < s->nviews; i++)
	{
		FsCacheViewStats *vs = &s->views[i];
		Datum		out[14];
		bool		onull[14] = {0};
		FsOnlineView *ov = NULL;

		if (vs->view_id == 0 || vs->dboid != MyDatabaseId)
			continue;
		for (int j = 0; j < fs_meta_nviews(); j++)
			if (fs_meta_view(j)->view->view_id == vs->view_id)
				ov = fs_meta_view(j);
		if (ov == NULL)
			continue;			/* dropped */
		tot_entries += vs->entries;
		tot_bytes += vs->bytes;
		for (int c = 0; c < FS_NCOUNTERS; c++)
			tot[c] += vs->counters[c];
		out[0] = CStringGetTextDatum(ov->view->name);
		out[1] = Int32GetDatum(ov->view->version);
		out[2] = Int64GetDatum(vs->entries);
		out[3] = Int64GetDatum(vs->bytes);
		onull[4] = true;
		out[5] = Int64GetDatum((int64) vs->counters[FS_CTR_HITS]);
		out[6] = Int64GetDatum((int64) vs->counters[FS_CTR_MISSES]);
		out[7] = Int64GetDatum((int64) vs->counters[FS_CTR_READ_THROUGHS]);
		out[8] = Int64GetDatum((int64) vs->counters[FS_CTR_EVICTIONS]);
		out[9] = Int64GetDatum((int64) vs->counters[FS_CTR_DECLINED]);
		onull[10] = onull[11] = onull[12] = onull[13] = true;
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, out, onull);
	}
	{
		Datum		out[14];
		bool		onull[14] = {0};

		onull[0] = onull[1] = true;
		out[2] = Int64GetDatum(tot_entries);
		out[3] = Int64GetDatum(tot_bytes);
		out[4] = Int64GetDatum(s->capacity_bytes);
		out[5] = Int64GetDatum((int64) tot[FS_CTR_HITS]);
		out[6] = Int64GetDatum((int64) tot[FS_CTR_MISSES]);
		out[7] = Int64GetDatum((int64) tot[FS_CTR_READ_THROUGHS]);
		out[8] = Int64GetDatum((int64) tot[FS_CTR_EVICTIONS]);
		out[9] = Int64GetDatum((int64) tot[FS_CTR_DECLINED]);
		/* a standby that does not trust its cache yet serves from the tables (online_wal.c) */
		out[10] = CStringGetTextDatum(!on ? "disabled" :
									  !fs_wal_cache_trusted() ? "catching up" : worker_state_name(s->worker_state));
		onull[11] = !on || s->worker_pid == 0;
		out[11] = Int32GetDatum(s->worker_pid);
		onull[12] = s->last_error[0] == '\0';
		out[12] = CStringGetTextDatum(s->last_error);
		onull[13] = s->last_error_at == 0;
		out[13] = TimestampTzGetDatum(s->last_error_at);
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, out, onull);
	}
	return (Datum) 0;
}
