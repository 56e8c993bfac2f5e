/*
 * online_table.c — durable online tables, their change triggers, and the commit-time
 * generation bump of the cache protocol (see online_cache.c).
 *
 * Table of view version N: feature_store."online_N" (entity key columns with the entity's key
 * types, "__event_ts" timestamptz NOT NULL, "__created_ts" timestamptz, then the features with
 * their types; PRIMARY KEY on the keys). It is WAL-logged: it is the truth the cache copies.
 * Only the extension owner can read or write it; serving checks SELECT on the view's source.
 * Triggers on it tell the writing backend what changed, and the transaction callback publishes
 * new cache generations once the commit is visible (protocol in online_cache.c). So every way
 * of changing the table (fs_materialize, incremental or streaming runs, a superuser's manual
 * fix) keeps the cache correct. Two trigger sets, by online mode:
 *  - batch: one statement trigger (fs_online_changed) marks the whole view: one new view
 *    generation at commit, the worker reloads the view;
 *  - stream: statement triggers with transition tables (fs_online_keys_ins/_upd/_del) record the
 *    cache hashes of the changed keys, and only those keys get a new key generation at commit
 *    (readers refill them lazily); a transaction changing more than FS_KEY_INVAL_MAX keys of a
 *    view, and TRUNCATE (fs_online_changed), fall back to the whole view.
 * fs_set_online_mode (online_mode.c) installs the set of the new mode (tables created by 0.1
 * keep the batch set, which is always correct, until their mode is set again). Both sets are
 * enabled on origin (the default); a third, fs_online_replica_rows (row trigger, per key) and
 * fs_online_replica_truncate, is enabled on replica only: the writes of a logical-replication
 * apply worker into a subscribed online table, and of sessions with session_replication_role
 * = replica, keep the cache correct too (tables created before 0.3 get it when their mode is
 * set again).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "online_cache.h"
#include "online_key.h"
#include "online_table.h"
#include "online_wal.h"
#include "security.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(fs_online_changed_trigger);
PG_FUNCTION_INFO_V1(fs_online_changed_keys_trigger);
PG_FUNCTION_INFO_V1(fs_online_changed_row_trigger);
PG_FUNCTION_INFO_V1(fs_registry_changed_trigger);

/* Above this many changed keys per view and transaction, invalidate the whole view. */
#define FS_KEY_INVAL_MAX 4096

/*
 * Views whose online table this transaction changed: either wholesale (whole) or only the keys
 * whose cache hashes are listed; free = the view left the online store.
 */
typedef struct DirtyView
{
	int32		view_id;
	bool		free_slot;
	bool		whole;
	int			nhashes;
	uint64	   *hashes;			/* FS_KEY_INVAL_MAX, in TopMemoryContext, while !whole */
} DirtyView;

static DirtyView *dirty = NULL;
static int	ndirty = 0;
static int	maxdirty = 0;

/* This transaction's entry of a view (in TopMemoryContext, until transaction end), created per-key. */
static DirtyView *
dirty_view(int32 view_id)
{
	for (int i = 0; i < ndirty; i++)
		if (dirty[i].view_id == view_id)
			return &dirty[i];
	if (ndirty == maxdirty)
	{
		maxdirty = Max(8, maxdirty * 2);
		dirty = dirty ? repalloc(dirty, maxdirty * sizeof(DirtyView))
			: MemoryContextAlloc(TopMemoryContext, maxdirty * sizeof(DirtyView));
	}
	memset(&dirty[ndirty], 0, sizeof(DirtyView));
	dirty[ndirty].view_id = view_id;
	return &dirty[ndirty++];
}

/* The whole view changed (its key list, if any, is no longer needed). */
static void
mark_dirty(int32 view_id, bool free_slot)
{
	DirtyView  *d = dirty_view(view_id);

	d->free_slot |= free_slot;
	d->whole = true;
	if (d->hashes)
		pfree(d->hashes);
	d->hashes = NULL;
	d->nhashes = 0;
}

/* One changed key (by cache hash); too many for one transaction turn into the whole view. */
static void
mark_key(DirtyView *d, uint64 hash)
{
	if (d->whole)
		return;
	if (d->nhashes == FS_KEY_INVAL_MAX)
	{
		mark_dirty(d->view_id, false);
		return;
	}
	if (d->hashes == NULL)
		d->hashes = MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * FS_KEY_INVAL_MAX);
	d->hashes[d->nhashes++] = hash;
}

/* Forgets the transaction's changes (after commit or abort). */
static void
dirty_reset(void)
{
	for (int i = 0; i < ndirty; i++)
		if (dirty[i].hashes)
			pfree(dirty[i].hashes);
	ndirty = 0;
}

/*
 * For writers that bypass the executor (materialize_scan.c's bulk insert fires no trigger):
 * the view's cache generation is bumped at commit, as the statement trigger would arrange.
 */
void
fs_online_mark_written(int32 view_id)
{
	mark_dirty(view_id, false);
}

/*
 * The same for writers that changed only some keys of the view: one call per changed key (its
 * cache hash), with the stream trigger's rule (beyond FS_KEY_INVAL_MAX keys, the whole view).
 */
void
fs_online_mark_key_written(int32 view_id, uint64 hash)
{
	mark_key(dirty_view(view_id), hash);
}

/* The view left the online store (its table dropped): its cache slot is freed at commit. */
void
fs_online_mark_dropped(int32 view_id)
{
	mark_dirty(view_id, true);
}

/* Did this transaction write the view? Then its own reads must bypass the cache. */
bool
fs_online_written_in_xact(int32 view_id)
{
	for (int i = 0; i < ndirty; i++)
		if (dirty[i].view_id == view_id)
			return true;
	return false;
}

/* The transaction's changes as a WAL record, which hot standbys replay (online_wal.c). */
static void
log_changes(void)
{
	FsWalView  *v = palloc(sizeof(FsWalView) * ndirty);

	for (int i = 0; i < ndirty; i++)
	{
		v[i].view_id = dirty[i].view_id;
		v[i].whole = dirty[i].whole;
		v[i].free_slot = dirty[i].free_slot;
		v[i].nhashes = dirty[i].nhashes;
		v[i].hashes = dirty[i].hashes;
	}
	fs_wal_log_changes(v, ndirty);
	pfree(v);
}

/*
 * The writer's half of the cache protocol. XACT_EVENT_COMMIT runs after the commit is
 * visible to new snapshots and before the client hears COMMIT, which is exactly when a new
 * generation must be published. Aborts publish nothing: their rows are never visible.
 */
static void
online_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (ndirty > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that changed online features"),
						 errdetail("The online cache is updated when the writing transaction commits in its own session.")));
			break;
		case XACT_EVENT_PRE_COMMIT:
			/* for hot standbys, before the commit record (online_wal.c) */
			if (ndirty > 0)
				log_changes();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/*
			 * Whether the cache serves this database, read from shared memory after the commit
			 * became visible (the barrier orders that store before this load): a reader that
			 * found it on before its snapshot missed this commit only if we see it on too (see
			 * the protocol in online_cache.c). Elsewhere no copy of this database's views
			 * exists: bumping would only make served databases' keys sharing a bucket stale.
			 */
			if (ndirty > 0)
				pg_memory_barrier();
			if (ndirty > 0 && fs_cache_db_served())
			{
				bool		wake = false;

				for (int i = 0; i < ndirty; i++)
				{
					if (dirty[i].whole)
					{
						fs_cache_bump(dirty[i].view_id, dirty[i].free_slot);
						wake = true;
					}
					else
						fs_cache_bump_keys(dirty[i].hashes, dirty[i].nhashes);
				}
				/* only whole views need the worker: changed keys are refilled by lookups */
				if (wake)
					fs_cache_wake_worker();
			}
			dirty_reset();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			dirty_reset();
			break;
		default:
			break;
	}
}

/* From _PG_init: the commit callback of the protocol. */
void
fs_online_table_init(void)
{
	RegisterXactCallback(online_xact_callback, NULL);
}

/* feature_store."online_<view_id>", quoted for SQL text. */
char *
fs_online_table_qualname(int32 view_id)
{
	char		name[NAMEDATALEN];

	snprintf(name, sizeof(name), "online_%d", view_id);
	return quote_qualified_identifier("feature_store", name);
}

/* The online table's OID by name (InvalidOid when not created yet or dropped). */
Oid
fs_online_table_relid(int32 view_id)
{
	char		name[NAMEDATALEN];
	Oid			nsp = get_namespace_oid("feature_store", true);

	snprintf(name, sizeof(name), "online_%d", view_id);
	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * Transactional invalidation (relcache of feature_store.feature_view): at commit every backend's
 * registry cache and the worker learn that views or online tables changed.
 */
void
fs_registry_changed(void)
{
	Oid			nsp = get_namespace_oid("feature_store", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("feature_view", nsp) : InvalidOid;

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
}

/* Comma-separated quoted key columns with an optional table prefix. */
static void
append_key_list(StringInfo sql, FsView *v, const char *prefix)
{
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(sql, "%s%s%s", i > 0 ? ", " : "", prefix, quote_identifier(v->entity.keys[i]));
}

/*
 * The change triggers of the online table for an online mode (caller: SPI connected, extension
 * owner context): whole-view for batch, per-key with transition tables for stream.
 */
static void
create_change_triggers(FsView *v, const char *mode)
{
	const char *qname = fs_online_table_qualname(v->view_id);

	/*
	 * A database still at extension version 0.1 (new library, ALTER EXTENSION UPDATE not run
	 * yet) has no per-key trigger function: it keeps whole-view invalidation, which is correct,
	 * only coarser. Setting the mode again after the update installs the per-key triggers.
	 */
	if (strcmp(mode, "stream") == 0 &&
		fs_spi_exec("SELECT 1 WHERE pg_catalog.to_regprocedure('feature_store.online_changed_keys()') IS NOT NULL",
					0, NULL, NULL, NULL, true) == 0)
		mode = "batch";
	if (strcmp(mode, "stream") != 0)
	{
		fs_spi_exec(psprintf("CREATE TRIGGER fs_online_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s "
							 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.online_changed('%d')",
							 qname, v->view_id), 0, NULL, NULL, NULL, false);
		return;
	}
	fs_spi_exec(psprintf("CREATE TRIGGER fs_online_changed AFTER TRUNCATE ON %s "
						 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.online_changed('%d')",
						 qname, v->view_id), 0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("CREATE TRIGGER fs_online_keys_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS fs_new "
						 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.online_changed_keys('%d', '%d')",
						 qname, v->view_id, v->entity.nkeys), 0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("CREATE TRIGGER fs_online_keys_upd AFTER UPDATE ON %s REFERENCING OLD TABLE AS fs_old NEW TABLE AS fs_new "
						 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.online_changed_keys('%d', '%d')",
						 qname, v->view_id, v->entity.nkeys), 0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("CREATE TRIGGER fs_online_keys_del AFTER DELETE ON %s REFERENCING OLD TABLE AS fs_old "
						 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.online_changed_keys('%d', '%d')",
						 qname, v->view_id, v->entity.nkeys), 0, NULL, NULL, NULL, false);
}

/*
 * The replica set, the same in every mode: what the mode's triggers do, for writes made under
 * session_replication_role = replica, where those (enabled on origin) do not fire. That is
 * every write of a logical-replication apply worker into a subscribed online table, which
 * besides fires no statement trigger at all except TRUNCATE's: hence a row trigger recording
 * each changed key. Enabled on replica only, so ordinary writes never pay for a row trigger.
 * Skipped (as the per-key set) while the extension's SQL predates it.
 */
static void
create_replica_triggers(FsView *v)
{
	const char *qname = fs_online_table_qualname(v->view_id);

	if (fs_spi_exec("SELECT 1 WHERE pg_catalog.to_regprocedure('feature_store.online_changed_row()') IS NOT NULL",
					0, NULL, NULL, NULL, true) == 0)
		return;
	fs_spi_exec(psprintf("CREATE TRIGGER fs_online_replica_rows AFTER INSERT OR UPDATE OR DELETE ON %s "
						 "FOR EACH ROW EXECUTE FUNCTION feature_store.online_changed_row('%d', '%d')",
						 qname, v->view_id, v->entity.nkeys), 0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("CREATE TRIGGER fs_online_replica_truncate AFTER TRUNCATE ON %s "
						 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.online_changed('%d')",
						 qname, v->view_id), 0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("ALTER TABLE %s ENABLE REPLICA TRIGGER fs_online_replica_rows, "
						 "ENABLE REPLICA TRIGGER fs_online_replica_truncate", qname),
				0, NULL, NULL, NULL, false);
}

/* Replaces the change triggers of an existing online table by those of `mode`. */
void
fs_online_set_change_triggers(FsView *v, const char *mode)
{
	FsOwnerContext octx;
	const char *qname = fs_online_table_qualname(v->view_id);
	static const char *const names[] = {"fs_online_changed", "fs_online_keys_ins", "fs_online_keys_upd", "fs_online_keys_del",
	"fs_online_replica_rows", "fs_online_replica_truncate"};

	Oid			relid = fs_online_table_relid(v->view_id);

	SPI_connect();
	fs_owner_context_enter(&octx);
	for (int i = 0; i < (int) lengthof(names); i++)
	{
		Oid			t[2] = {OIDOID, TEXTOID};
		Datum		a[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(names[i])};

		/* only those that exist: DROP TRIGGER IF EXISTS would say NOTICE for the others */
		/* not read-only: the table may have been created by this very call */
		if (fs_spi_exec("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
						2, t, a, NULL, false) > 0)
			fs_spi_exec(psprintf("DROP TRIGGER %s ON %s", names[i], qname), 0, NULL, NULL, NULL, false);
	}
	create_change_triggers(v, mode);
	create_replica_triggers(v);
	fs_owner_context_leave(&octx);
	SPI_finish();
	CommandCounterIncrement();
}

/*
 * Creates the online table (as the extension owner: ordinary roles cannot create in schema
 * feature_store), private to the owner, with the statement trigger of the cache protocol.
 */
Oid
fs_online_ensure_table(FsView *v)
{
	Oid			relid = fs_online_table_relid(v->view_id);
	StringInfoData sql;
	FsOwnerContext octx;
	char	   *qname;

	if (OidIsValid(relid))
		return relid;
	for (int i = 0; i < v->nfeatures; i++)
		if (strcmp(v->features[i].name, FS_ONLINE_EVENT_COL) == 0 ||
			strcmp(v->features[i].name, FS_ONLINE_CREATED_COL) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("feature \"%s\" of view \"%s\" collides with a column of the online table",
							v->features[i].name, v->name),
					 errhint("Rename the feature in a view over the source.")));
	qname = fs_online_table_qualname(v->view_id);
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (", qname);
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&sql, "%s %s NOT NULL, ", quote_identifier(v->entity.keys[i]),
						 format_type_extended(v->entity.key_types[i], -1, FORMAT_TYPE_FORCE_QUALIFY));
	appendStringInfo(&sql, "%s pg_catalog.timestamptz NOT NULL, %s pg_catalog.timestamptz",
					 quote_identifier(FS_ONLINE_EVENT_COL), quote_identifier(FS_ONLINE_CREATED_COL));
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&sql, ", %s %s", quote_identifier(v->features[i].name),
						 format_type_extended(v->features[i].type, -1, FORMAT_TYPE_FORCE_QUALIFY));
	appendStringInfoString(&sql, ", PRIMARY KEY (");
	append_key_list(&sql, v, "");
	/* room on every page for new versions: runs and streams update in place (HOT: no index entry) */
	appendStringInfoString(&sql, ")) WITH (fillfactor = 85)");

	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_spi_exec(sql.data, 0, NULL, NULL, NULL, false);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "REVOKE ALL ON %s FROM PUBLIC", qname);
	fs_spi_exec(sql.data, 0, NULL, NULL, NULL, false);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s", qname,
					 quote_literal_cstr(psprintf("online rows of feature view %s version %d (written by feature_store only)",
												 v->name, v->version)));
	fs_spi_exec(sql.data, 0, NULL, NULL, NULL, false);
	resetStringInfo(&sql);
	create_change_triggers(v, v->online_mode);
	create_replica_triggers(v);
	fs_owner_context_leave(&octx);
	SPI_finish();
	CommandCounterIncrement();
	fs_registry_changed();
	return fs_online_table_relid(v->view_id);
}

/* Statement trigger on online tables: marks the view (trigger argument) dirty. */
Datum
fs_online_changed_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || td->tg_trigger->tgnargs != 1)
		elog(ERROR, "online_changed must be called as a trigger with the view id");
	mark_dirty(pg_strtoint32(td->tg_trigger->tgargs[0]), false);
	return PointerGetDatum(NULL);
}

/*
 * Statement trigger with transition tables on online tables of streaming views: records the
 * cache hashes of the keys in the old and new rows (arguments: view id, number of keys, the
 * first columns); beyond FS_KEY_INVAL_MAX the whole view.
 */
Datum
fs_online_changed_keys_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Tuplestorestate *ts[2];
	DirtyView  *d;
	int			nkeys;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_trigger->tgnargs != 2)
		elog(ERROR, "online_changed_keys must be called as a statement trigger with the view id and key count");
	d = dirty_view(pg_strtoint32(td->tg_trigger->tgargs[0]));
	nkeys = pg_strtoint32(td->tg_trigger->tgargs[1]);
	ts[0] = td->tg_oldtable;
	ts[1] = td->tg_newtable;
	for (int i = 0; i < 2 && !d->whole; i++)
	{
		TupleTableSlot *slot;
		int			ptr;

		if (ts[i] == NULL)
			continue;
		if (tuplestore_tuple_count(ts[i]) > FS_KEY_INVAL_MAX)
		{
			mark_dirty(d->view_id, false);
			break;
		}
		/* a read pointer of our own: the transition table is the executor's */
		slot = MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation), &TTSOpsMinimalTuple);
		ptr = tuplestore_alloc_read_pointer(ts[i], EXEC_FLAG_REWIND);
		tuplestore_select_read_pointer(ts[i], ptr);
		tuplestore_rescan(ts[i]);
		while (!d->whole && tuplestore_gettupleslot(ts[i], true, false, slot))
		{
			uint64		h;

			if (fs_read_key_hash_slot(d->view_id, slot, nkeys, &h))
				mark_key(d, h);
		}
		tuplestore_select_read_pointer(ts[i], 0);
		ExecDropSingleTupleTableSlot(slot);
	}
	return PointerGetDatum(NULL);
}

/*
 * Row trigger on online tables, enabled on replica only (create_replica_triggers): records the
 * cache hash of the changed row's key (old and new key of an UPDATE; arguments as for
 * online_changed_keys), with the per-key rule of FS_KEY_INVAL_MAX. The publication at commit
 * is the same as for every other writer: the apply worker's commit runs the transaction
 * callback like any backend's.
 */
Datum
fs_online_changed_row_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	DirtyView  *d;
	int			nkeys;
	uint64		h[2];
	bool		have[2] = {false, false};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) || td->tg_trigger->tgnargs != 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("online_changed_row must be called as an AFTER row trigger with the view id and key count")));
	d = dirty_view(pg_strtoint32(td->tg_trigger->tgargs[0]));
	nkeys = pg_strtoint32(td->tg_trigger->tgargs[1]);
	if (td->tg_trigslot)
		have[0] = fs_read_key_hash_slot(d->view_id, td->tg_trigslot, nkeys, &h[0]);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && td->tg_newslot)
		have[1] = fs_read_key_hash_slot(d->view_id, td->tg_newslot, nkeys, &h[1]);
	if (have[0])
		mark_key(d, h[0]);
	/* an UPDATE that kept its key (the usual one) counts once against FS_KEY_INVAL_MAX */
	if (have[1] && !(have[0] && h[0] == h[1]))
		mark_key(d, h[1]);
	return PointerGetDatum(NULL);
}

/* Statement trigger on registry tables: every backend reloads its registry cache. */
Datum
fs_registry_changed_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "registry_changed must be called as a trigger");
	fs_registry_changed();
	return PointerGetDatum(NULL);
}
