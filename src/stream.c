/*
 * stream.c — online mode 'stream': committed inserts and updates of a view's source reach the
 * online store without a batch run.
 *
 * fs_set_online_mode(view, 'stream') installs two statement-level triggers on the source
 * (AFTER INSERT and AFTER UPDATE, REFERENCING NEW TABLE), named fs_stream_<view_id>_insert and
 * fs_stream_<view_id>_update, created and dropped as the extension owner. Each statement runs
 * one set-based upsert from its transition table (the latest row per entity passing the view's
 * checks, never moving an entity backwards, TTL as of the statement's transaction start),
 * quarantines the failing rows, and is logged as one 'stream' run. The write belongs to the
 * inserting transaction: an aborted insert never reaches the online table, and the online
 * table's own statement trigger publishes the new cache generation at commit. An error in the
 * streaming write fails the statement, so the source and the online store never diverge.
 * Statement triggers with transition tables on a partitioned table see the rows routed to
 * every partition, so a partitioned source works; views and foreign tables cannot carry them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "checks.h"
#include "materialize_sql.h"
#include "online_table.h"
#include "runlog.h"
#include "security.h"
#include "spi_util.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(fs_stream_trigger);

static const char *const stream_events[2] = {"insert", "update"};

/* fs_stream_<view_id>_<event>, quoted. */
static const char *
trigger_name(FsView *v, const char *event)
{
	return quote_identifier(psprintf("fs_stream_%d_%s", v->view_id, event));
}

/* Installs the statement triggers (caller: SPI connected, extension owner context). */
void
fs_stream_create_triggers(FsView *v)
{
	Oid			relid = fs_view_source_relid(v);
	char		relkind = get_rel_relkind(relid);
	const char *src = quote_qualified_identifier(v->source_schema, v->source_name);

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("feature view \"%s\" cannot stream: its source \"%s.%s\" is not a table",
						v->name, v->source_schema, v->source_name),
				 errdetail("Streaming uses statement triggers with transition tables, which only tables and partitioned tables have."),
				 errhint("Use online mode 'batch' with scheduled incremental materialization, or register the view over the underlying table.")));
	for (int i = 0; i < 2; i++)
		fs_spi_exec(psprintf("CREATE TRIGGER %s AFTER %s ON %s REFERENCING NEW TABLE AS fs_new "
							 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.stream_trigger('%d')",
							 trigger_name(v, stream_events[i]), stream_events[i], src, v->view_id),
					0, NULL, NULL, NULL, false);
}

/* Removes them; a source that no longer exists has none left to drop. */
void
fs_stream_drop_triggers(FsView *v)
{
	if (!OidIsValid(v->source_relid))
		return;
	for (int i = 0; i < 2; i++)
		fs_spi_exec(psprintf("DROP TRIGGER IF EXISTS %s ON %s", trigger_name(v, stream_events[i]),
							 quote_qualified_identifier(v->source_schema, v->source_name)),
					0, NULL, NULL, NULL, false);
}

typedef struct StreamWork
{
	FsView	   *view;
	TriggerData *trigdata;
} StreamWork;

/* One statement's micro-batch: upsert from the transition table, quarantine its failures. */
static uint64
stream_work(void *arg, int64 run_id, uint64 *quarantined)
{
	StreamWork *s = arg;
	FsView	   *v = s->view;
	const char *table = quote_identifier(s->trigdata->tg_trigger->tgnewtable);
	Oid			types[2] = {INTERVALOID, TIMESTAMPTZOID};
	Datum		vals[2];
	bool		nulls[2] = {!v->has_ttl, false};
	FsOwnerContext octx;
	uint64		n;
	char	   *where = psprintf("$1 IS NULL OR CAST(s.%s AS pg_catalog.timestamptz) >= $2 - $1",
								 quote_identifier(v->event_time));

	vals[0] = v->has_ttl ? IntervalPGetDatum(&v->ttl) : (Datum) 0;
	vals[1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	SPI_connect();
	if (SPI_register_trigger_data(s->trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	fs_owner_context_enter(&octx);
	n = fs_spi_exec(fs_mat_upsert_sql(v, table, where), 2, types, vals, nulls, false);
	fs_owner_context_leave(&octx);
	SPI_finish();
	*quarantined = fs_quarantine_relation(v, table, s->trigdata, run_id, NULL);
	return n;
}

/*
 * feature_store.stream_trigger(view_id): the statement trigger. A view version that was
 * dropped or switched off meanwhile (its online table gone) makes it do nothing.
 */
Datum
fs_stream_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	StreamWork	s;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_trigger->tgnewtable == NULL || td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("stream_trigger must be called as a statement trigger with a NEW TABLE and the view id")));
	s.view = fs_lookup_view_by_id(pg_strtoint32(td->tg_trigger->tgargs[0]), true);
	if (s.view == NULL || !OidIsValid(fs_online_table_relid(s.view->view_id)))
		return PointerGetDatum(NULL);
	s.trigdata = td;
	fs_run_logged(s.view, "stream", DT_NOBEGIN, DT_NOEND, stream_work, &s);
	return PointerGetDatum(NULL);
}

/*
 * May the caller make the view stream? It adds work to every write of the source, so besides
 * owning the view the caller needs TRIGGER privilege on the source (its owner has it).
 */
void
fs_stream_check_privilege(FsView *v)
{
	Oid			relid = fs_view_source_relid(v);

	if (pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to stream feature view \"%s\"", v->name),
				 errdetail("Streaming installs triggers on \"%s.%s\", which needs the TRIGGER privilege on it.",
						   v->source_schema, v->source_name)));
}
