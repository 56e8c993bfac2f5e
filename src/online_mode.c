/*
 * online_mode.c — a view's place in the online store, on top of its parts: fs_set_online_mode
 * (the online table and its change triggers, online_table.c; the refill, watermark and
 * streaming triggers, materialize.c's mode hook), fs_online_reload, and the drop hook of
 * fs_drop_view (streaming triggers and online tables of the dropped versions).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "materialize.h"
#include "online_mode.h"
#include "online_table.h"
#include "security.h"
#include "spi_util.h"
#include "sql_args.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(fs_set_online_mode);
PG_FUNCTION_INFO_V1(fs_online_reload);

/* Caller may change the view's serving settings: its registrant (or a member, or superuser). */
static void
check_view_owner(FsView *v)
{
	if (!fs_is_member_of(GetUserId(), v->registered_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of feature view \"%s\"", v->name),
				 errdetail("Feature view \"%s\" was registered by role \"%s\".", v->name, v->registered_by)));
}

/*
 * fs_set_online_mode(view, mode): 'batch' and 'stream' create the online table (the mode hook of
 * materialize.c refills it and installs or removes stream triggers), 'off' drops it and frees the
 * view's cache memory at commit.
 */
Datum
fs_set_online_mode(PG_FUNCTION_ARGS)
{
	FsView	   *v = fs_lookup_view(fs_text_arg(fcinfo, 0, "feature view name"), false);
	char	   *mode = fs_text_arg(fcinfo, 1, "online mode");
	char	   *old_mode = pstrdup(v->online_mode);
	FsOwnerContext octx;

	if (strcmp(mode, "off") != 0 && strcmp(mode, "batch") != 0 && strcmp(mode, "stream") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid online mode \"%s\"", mode),
				 errhint("Valid modes are 'off', 'batch' and 'stream'.")));
	check_view_owner(v);
	SPI_connect();
	fs_owner_context_enter(&octx);
	if (v->is_agg)
	{
		/* nothing is stored for it: the mode only says whether it is served (answers are equal) */
		Oid			t[2] = {INT4OID, TEXTOID};
		Datum		a[2] = {Int32GetDatum(v->view_id), CStringGetTextDatum(mode)};

		fs_spi_exec("UPDATE feature_store.feature_view SET online_mode = $2 WHERE view_id = $1",
					2, t, a, NULL, false);
		fs_owner_context_leave(&octx);
		SPI_finish();
		fs_registry_changed();
		PG_RETURN_VOID();
	}
	{
		Oid			t[2] = {INT4OID, TEXTOID};
		Datum		a[2] = {Int32GetDatum(v->view_id), CStringGetTextDatum(mode)};

		fs_spi_exec("UPDATE feature_store.feature_view SET online_mode = $2 WHERE view_id = $1",
					2, t, a, NULL, false);
		if (strcmp(mode, "off") == 0 && OidIsValid(fs_online_table_relid(v->view_id)))
		{
			fs_spi_exec(psprintf("DROP TABLE %s", fs_online_table_qualname(v->view_id)),
						0, NULL, NULL, NULL, false);
			fs_online_mark_dropped(v->view_id);
		}
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	fs_registry_changed();
	CommandCounterIncrement();
	if (strcmp(mode, "off") != 0)
	{
		fs_online_ensure_table(v);
		/* the trigger set of the new mode; the whole view is stale once at commit */
		fs_online_set_change_triggers(v, mode);
		fs_online_mark_written(v->view_id);
	}
	fs_mat_mode_changed(v, old_mode, mode);
	PG_RETURN_VOID();
}

/* fs_online_reload(view): drops the view's cached rows at commit; the worker reloads them. */
Datum
fs_online_reload(PG_FUNCTION_ARGS)
{
	FsView	   *v = fs_lookup_view(fs_text_arg(fcinfo, 0, "feature view name"), false);

	check_view_owner(v);
	fs_online_mark_written(v->view_id);
	PG_RETURN_VOID();
}

/* Drop hook of fs_drop_view (runs inside its SPI connection and owner context). */
void
fs_online_drop_views(const char *name, int32 version)
{
	Oid			t[2] = {TEXTOID, INT4OID};
	Datum		a[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	uint64		n;
	int32	   *ids;

	n = fs_spi_exec("SELECT view_id FROM feature_store.feature_view WHERE name = $1 AND ($2 = 0 OR version = $2)",
					2, t, a, NULL, false);
	ids = palloc(sizeof(int32) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		ids[i] = fs_spi_int32(i, 1, 0);
	for (uint64 i = 0; i < n; i++)
	{
		FsView	   *v = fs_lookup_view_by_id(ids[i], true);

		/* an aggregation view in stream mode has no triggers (online_agg.c reads its source) */
		if (v && !v->is_agg && strcmp(v->online_mode, "stream") == 0)
			fs_stream_drop_triggers(v);
		if (OidIsValid(fs_online_table_relid(ids[i])))
			fs_spi_exec(psprintf("DROP TABLE %s", fs_online_table_qualname(ids[i])), 0, NULL, NULL, NULL, false);
		fs_online_mark_dropped(ids[i]);
	}
}
