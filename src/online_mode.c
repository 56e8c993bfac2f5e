/*
 * online_mode.c — a view's place in the online store, on top of its parts: fs_set_online_mode
 * (the online table and its change triggers, online_table.c; the refill, watermark and
 * streaming triggers, materialize.c's mode hook), fs_online_reload, and the drop hook of
 * fs_drop_view (streaming triggers and online tables of the dropped versions).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "materialize.h"
#include "online_agg_cache.h"
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
 * 'stream' puts triggers on the source (created as the extension owner): the caller must be
 * allowed to create them, as CREATE TRIGGER asks, not only to read the table.
 */
static void
check_trigger_privilege(FsView *v)
{
	Oid			relid = fs_view_source_relid(v);
	char		relkind = get_rel_relkind(relid);

	if ((relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE) &&
		pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to stream feature view \"%s\"", v->name),
				 errdetail("Online mode 'stream' creates triggers on the view's source \"%s.%s\", which requires the TRIGGER privilege on it.",
						   v->source_schema, v->source_name),
				 errhint("Ask the owner of \"%s.%s\" to GRANT TRIGGER on it to you.", v->source_schema, v->source_name)));
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
	if (strcmp(mode, "stream") == 0)
		check_trigger_privilege(v);
	SPI_connect();
	fs_owner_context_enter(&octx);
	if (v->is_agg)
	{
		/*
		 * Answers are equal in every mode; 'stream' adds the source's key triggers, with which
		 * answers are cached (online_agg_cache.c). Cached answers die at commit.
		 */
		Oid			t[2] = {INT4OID, TEXTOID};
		Datum		a[2] = {Int32GetDatum(v->view_id), CStringGetTextDatum(mode)};

		fs_spi_exec("UPDATE feature_store.feature_view SET online_mode = $2 WHERE view_id = $1",
					2, t, a, NULL, false);
		fs_agg_cache_drop_triggers(v);
		if (strcmp(mode, "stream") == 0 && !fs_agg_cache_create_triggers(v))
			ereport(NOTICE,
					(errmsg("answers of feature view \"%s\" are computed at each lookup: its source \"%s.%s\" is not a plain table",
							v->name, v->source_schema, v->source_name),
					 errdetail("Online mode 'stream' caches answers of sources that are plain tables, whose triggers tell which keys changed.")));
		fs_owner_context_leave(&octx);
		SPI_finish();
		fs_registry_changed();
		fs_online_mark_dropped(v->view_id);
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

		if (v && v->is_agg)
			fs_agg_cache_drop_triggers(v);
		else if (v && strcmp(v->online_mode, "stream") == 0)
			fs_stream_drop_triggers(v);
		if (OidIsValid(fs_online_table_relid(ids[i])))
			fs_spi_exec(psprintf("DROP TABLE %s", fs_online_table_qualname(ids[i])), 0, NULL, NULL, NULL, false);
		fs_online_mark_dropped(ids[i]);
	}
}
