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
 * A foreign partition cannot either: PostgreSQL refuses every INSERT routed to it ("cannot
 * collect transition tuples from child foreign tables"). So streaming is refused over a source
 * with foreign partitions, and an event trigger (fs_stream_ddl_check) refuses making a foreign
 * table a partition of a streaming source later (ATTACH PARTITION, CREATE FOREIGN TABLE ...
 * PARTITION OF), where the error would otherwise surface only at the next INSERT.
 *
 * Writes made under session_replication_role = replica fire neither statement trigger: those
 * of a logical-replication apply worker (which fires no statement triggers at all), and of
 * sessions that set it. A third trigger, fs_stream_<view_id>_replica, a row trigger enabled on
 * replica only, streams those rows one by one through the same upsert (each row one 'stream'
 * run): a source that is a subscription target streams what the subscription applies.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "checks.h"
#include "materialize_sql.h"
#include "online_table.h"
#include "runlog.h"
#include "security.h"
#include "spi_util.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(fs_stream_trigger);
PG_FUNCTION_INFO_V1(fs_stream_row_trigger);
PG_FUNCTION_INFO_V1(fs_stream_ddl_check);

static const char *const stream_events[2] = {"insert", "update"};

/* fs_stream_<view_id>_<event>, quoted. */
static const char *
trigger_name(FsView *v, const char *event)
{
	return quote_identifier(psprintf("fs_stream_%d_%s", v->view_id, event));
}

/*
 * Refuses a source with a foreign partition at any level. The caller holds a lock on the
 * source that ATTACH PARTITION waits for, so none can be attached between this check and the
 * commit; after it, the event trigger refuses them.
 */
static void
check_no_foreign_partition(FsView *v, Oid relid)
{
	List	   *parts = find_all_inheritors(relid, NoLock, NULL);
	ListCell   *lc;

	foreach(lc, parts)
	{
		Oid			part = lfirst_oid(lc);

		if (get_rel_relkind(part) == RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("feature view \"%s\" cannot stream: partition \"%s.%s\" of its source \"%s.%s\" is a foreign table",
							v->name, get_namespace_name(get_rel_namespace(part)), get_rel_name(part),
							v->source_schema, v->source_name),
					 errdetail("Streaming uses statement triggers with transition tables, and PostgreSQL refuses every INSERT routed to a foreign partition of a table that has them."),
					 errhint("Use online mode 'batch' with scheduled incremental materialization; set feature_store.watermark_lag to cover transactions on the foreign server.")));
	}
}

/* Does the SQL function exist (the extension's SQL may predate it: new library, old script)? */
static bool
have_function(const char *signature)
{
	Oid			t[1] = {TEXTOID};
	Datum		a[1] = {CStringGetTextDatum(signature)};

	return fs_spi_exec("SELECT 1 WHERE pg_catalog.to_regprocedure($1) IS NOT NULL", 1, t, a, NULL, true) > 0;
}

/*
 * The replica trigger (see the file header) when missing: also for views that streamed before
 * it existed, when their mode is set to 'stream' again.
 */
void
fs_stream_create_replica_trigger(FsView *v)
{
	const char *src = quote_qualified_identifier(v->source_schema, v->source_name);
	const char *name = trigger_name(v, "replica");
	Oid			t[2] = {OIDOID, TEXTOID};
	Datum		a[2] = {ObjectIdGetDatum(fs_view_source_relid(v)),
	CStringGetTextDatum(psprintf("fs_stream_%d_replica", v->view_id))};

	if (!have_function("feature_store.stream_row_trigger()") ||
		fs_spi_exec("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
					2, t, a, NULL, false) > 0)
		return;
	fs_spi_exec(psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE ON %s "
						 "FOR EACH ROW EXECUTE FUNCTION feature_store.stream_row_trigger('%d')",
						 name, src, v->view_id), 0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("ALTER TABLE %s ENABLE REPLICA TRIGGER %s", src, name),
				0, NULL, NULL, NULL, false);
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
	/* CREATE TRIGGER's own lock, taken first: no partition can be attached once we checked */
	LockRelationOid(relid, ShareRowExclusiveLock);
	if (relkind == RELKIND_PARTITIONED_TABLE)
		check_no_foreign_partition(v, relid);
	for (int i = 0; i < 2; i++)
		fs_spi_exec(psprintf("CREATE TRIGGER %s AFTER %s ON %s REFERENCING NEW TABLE AS fs_new "
							 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.stream_trigger('%d')",
							 trigger_name(v, stream_events[i]), stream_events[i], src, v->view_id),
					0, NULL, NULL, NULL, false);
	fs_stream_create_replica_trigger(v);
}

/* Removes them; a source that no longer exists has none left to drop. */
void
fs_stream_drop_triggers(FsView *v)
{
	if (!OidIsValid(v->source_relid))
		return;
	for (int i = 0; i < 3; i++)
	{
		/* the replica trigger is missing on sources that streamed before it existed */
		if (i == 2)
		{
			Oid			t[2] = {OIDOID, TEXTOID};
			Datum		a[2] = {ObjectIdGetDatum(v->source_relid),
			CStringGetTextDatum(psprintf("fs_stream_%d_replica", v->view_id))};

			if (fs_spi_exec("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
							2, t, a, NULL, false) == 0)
				break;
		}
		fs_spi_exec(psprintf("DROP TRIGGER IF EXISTS %s ON %s",
							 trigger_name(v, i < 2 ? stream_events[i] : "replica"),
							 quote_qualified_identifier(v->source_schema, v->source_name)),
					0, NULL, NULL, NULL, false);
	}
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
 * feature_store.stream_row_trigger(view_id): the replica trigger. The row becomes a one-row
 * transition table, so it is written (and checked, and quarantined) exactly as a statement's.
 */
Datum
fs_stream_row_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TriggerData one;
	Trigger		trig;
	StreamWork	s;
	Tuplestorestate *ts;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) || td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("stream_row_trigger must be called as an AFTER row trigger with the view id")));
	s.view = fs_lookup_view_by_id(pg_strtoint32(td->tg_trigger->tgargs[0]), true);
	if (s.view == NULL || !OidIsValid(fs_online_table_relid(s.view->view_id)))
		return PointerGetDatum(NULL);
	ts = tuplestore_begin_heap(false, false, work_mem);
	tuplestore_puttupleslot(ts, TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newslot : td->tg_trigslot);
	trig = *td->tg_trigger;
	trig.tgoldtable = NULL;
	trig.tgnewtable = "fs_new";
	one = *td;
	one.tg_trigger = &trig;
	one.tg_oldtable = NULL;
	one.tg_newtable = ts;
	s.trigdata = &one;
	fs_run_logged(s.view, "stream", DT_NOBEGIN, DT_NOEND, stream_work, &s);
	tuplestore_end(ts);
	return PointerGetDatum(NULL);
}

/*
 * feature_store.stream_ddl_check(): event trigger at the end of ALTER TABLE and CREATE FOREIGN
 * TABLE. A command that touched a streaming view's source or one of its partitions (at any
 * level) must leave no foreign table in the source's partition tree. Commands on other tables
 * are not looked at, so a source that had a foreign partition before this check existed
 * blocks nothing but the commands that keep it there.
 */
Datum
fs_stream_ddl_check(PG_FUNCTION_ARGS)
{
	FsOwnerContext octx;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("stream_ddl_check must be called as an event trigger")));
	SPI_connect();
	/*
	 * The registry as its owner: the command's author may not read every view's row. Not
	 * read-only: the command's own catalog changes must be visible (ddl_command_end comes
	 * before the next command counter increment).
	 */
	fs_owner_context_enter(&octx);
	if (fs_spi_exec("SELECT v.name || '@' || v.version, format('%I.%I', pn.nspname, p.relname), format('%I.%I', v.source_schema, v.source_name) "
					"FROM (SELECT DISTINCT a.relid FROM pg_catalog.pg_event_trigger_ddl_commands() c, "
					"      LATERAL pg_catalog.pg_partition_ancestors(c.objid) a "
					"      WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass) t "
					"JOIN feature_store.feature_view v ON v.online_mode = 'stream' "
					"  AND pg_catalog.to_regclass(format('%I.%I', v.source_schema, v.source_name)) = t.relid "
					"CROSS JOIN LATERAL pg_catalog.pg_partition_tree(t.relid) pt "
					"JOIN pg_catalog.pg_class p ON p.oid = pt.relid AND p.relkind = 'f' "
					"JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
					"ORDER BY 1, 2 LIMIT 1", 0, NULL, NULL, NULL, false) > 0)
	{
		char	   *view = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *part = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		char	   *src = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("foreign table \"%s\" cannot be a partition of \"%s\", the source of streaming feature view \"%s\"",
						part, src, view),
				 errdetail("Streaming uses statement triggers with transition tables, and PostgreSQL refuses every INSERT routed to a foreign partition of a table that has them."),
				 errhint("Switch the view to batch first: SELECT fs_set_online_mode('%s', 'batch').", view)));
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	PG_RETURN_VOID();
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
