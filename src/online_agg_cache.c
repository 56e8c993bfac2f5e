/*
 * online_agg_cache.c — the write side of caching aggregation answers (online mode 'stream'):
 * the source's triggers that tell the cache which keys changed, and the check, made by readers,
 * that those triggers see every write.
 *
 * An answer value(k, t) changes when k's events change or when time moves an event across a
 * window's edge. online_agg.c stores answers in the online cache together with the interval of
 * t over which they stay true; this file covers the events. In 'stream' mode the source carries
 *  - fs_agg_<view_id>_keys: AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW, which records the
 *    cache hash of the old and new key of each row (online_table.c publishes new key
 *    generations at commit, as for writes to online tables: the cache protocol of
 *    online_cache.c then holds unchanged, the source standing where the online table stood);
 *  - fs_agg_<view_id>_truncate: AFTER TRUNCATE, the whole view.
 * Both are ENABLE ALWAYS: a logical-replication apply worker, which fires row triggers but no
 * statement trigger, and sessions with session_replication_role = replica fire them too.
 * 'batch' installs nothing and computes every answer at the lookup, so that writes cost nothing.
 *
 * The source's owner can disable, drop or re-create these triggers, attach an inheritance
 * child (whose writes fire only the child's triggers) or enable row-level security (answers
 * then depend on the reader). A reader checks before caching (fs_agg_cache_check): the source
 * is a plain table without children or policies, both triggers exist, fire always and name
 * the key columns where they are now. Any of those changes is a relcache invalidation of the
 * source, after which each backend checks again (readers accept invalidation messages first).
 * Writes made while the triggers did not fire invalidated nothing, so entries cached before
 * may be stale: the check fingerprints the triggers' pg_trigger rows (OID and xmin; disabling
 * and enabling again, or dropping and re-creating, both change it) and the first reader to see
 * a new fingerprint gives the view a new generation before using the cache
 * (fs_cache_view_guard).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "online_agg_cache.h"
#include "online_cache.h"
#include "online_key.h"
#include "online_table.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(fs_agg_changed_row_trigger);

/* Relcache invalidations seen by this backend, per bucket of relation OIDs (and for all). */
#define EPOCH_BUCKETS 1024
static uint32 epoch_all = 0;
static uint32 epoch[EPOCH_BUCKETS];

static void
relcache_cb(Datum arg, Oid relid)
{
	if (OidIsValid(relid))
		epoch[relid % EPOCH_BUCKETS]++;
	else
		epoch_all++;
}

/* See online_agg_cache.h. */
void
fs_agg_cache_init(void)
{
	CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
}

/* See online_agg_cache.h. */
uint32
fs_agg_source_epoch(Oid relid)
{
	AcceptInvalidationMessages();
	return epoch_all + epoch[relid % EPOCH_BUCKETS];
}

static char *
trigger_name(FsView *v, const char *what)
{
	return psprintf("fs_agg_%d_%s", v->view_id, what);
}

/* The source's attribute numbers of the entity's key columns. */
static void
key_attnums(FsView *v, Oid relid, AttrNumber *att)
{
	for (int k = 0; k < v->entity.nkeys; k++)
		att[k] = get_attnum(relid, v->entity.keys[k]);
}

/* See online_agg_cache.h. */
void
fs_agg_cache_drop_triggers(FsView *v)
{
	Oid			relid = v->source_relid;

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return;
	for (int i = 0; i < 2; i++)
	{
		const char *name = trigger_name(v, i == 0 ? "keys" : "truncate");
		Oid			t[2] = {OIDOID, TEXTOID};
		Datum		a[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(name)};

		if (fs_spi_exec("SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = $2",
						2, t, a, NULL, false) > 0)
			fs_spi_exec(psprintf("DROP TRIGGER %s ON %s", quote_identifier(name),
								 quote_qualified_identifier(v->source_schema, v->source_name)),
						0, NULL, NULL, NULL, false);
	}
}

/* See online_agg_cache.h. */
bool
fs_agg_cache_create_triggers(FsView *v)
{
	Oid			relid = fs_view_source_relid(v);
	const char *src = quote_qualified_identifier(v->source_schema, v->source_name);
	AttrNumber	att[FS_MAX_KEYS];
	StringInfoData args;

	if (get_rel_relkind(relid) != RELKIND_RELATION ||
		fs_spi_exec("SELECT 1 WHERE pg_catalog.to_regprocedure('feature_store.agg_changed_row()') IS NOT NULL",
					0, NULL, NULL, NULL, true) == 0)
		return false;
	key_attnums(v, relid, att);
	initStringInfo(&args);
	appendStringInfo(&args, "'%d'", v->view_id);
	for (int k = 0; k < v->entity.nkeys; k++)
		appendStringInfo(&args, ", '%d'", att[k]);
	fs_spi_exec(psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s "
						 "FOR EACH ROW EXECUTE FUNCTION feature_store.agg_changed_row(%s)",
						 quote_identifier(trigger_name(v, "keys")), src, args.data),
				0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("CREATE TRIGGER %s AFTER TRUNCATE ON %s "
						 "FOR EACH STATEMENT EXECUTE FUNCTION feature_store.online_changed('%d')",
						 quote_identifier(trigger_name(v, "truncate")), src, v->view_id),
				0, NULL, NULL, NULL, false);
	fs_spi_exec(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s, ENABLE ALWAYS TRIGGER %s", src,
						 quote_identifier(trigger_name(v, "keys")), quote_identifier(trigger_name(v, "truncate"))),
				0, NULL, NULL, NULL, false);
	return true;
}

/* Is the trigger's function feature_store.<fn>? */
static bool
is_our_function(Oid fn, const char *name)
{
	char	   *n = get_func_name(fn);

	return n != NULL && strcmp(n, name) == 0 &&
		get_func_namespace(fn) == get_namespace_oid("feature_store", true);
}

/* The xmin of a trigger's pg_trigger row: a new one after every ALTER of the trigger. */
static TransactionId
trigger_xmin(Oid tgoid)
{
	Relation	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData sk;
	SysScanDesc scan;
	HeapTuple	tup;
	TransactionId x = InvalidTransactionId;

	ScanKeyInit(&sk, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(tgoid));
	scan = systable_beginscan(rel, TriggerOidIndexId, true, NULL, 1, &sk);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		x = HeapTupleHeaderGetXmin(tup->t_data);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return x;
}

/* See online_agg_cache.h. */
bool
fs_agg_cache_check(FsView *v, Oid relid, int slot)
{
	Relation	rel;
	AttrNumber	att[FS_MAX_KEYS];
	Oid			found[2] = {InvalidOid, InvalidOid};
	uint64		fp = 0;
	int			nk = v->entity.nkeys;

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return false;
	key_attnums(v, relid, att);
	rel = table_open(relid, AccessShareLock);
	if (!rel->rd_rel->relhassubclass && !rel->rd_rel->relrowsecurity && rel->trigdesc != NULL)
	{
		char	   *keys_name = trigger_name(v, "keys");
		char	   *trunc_name = trigger_name(v, "truncate");
		char	   *id = psprintf("%d", v->view_id);

		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *tg = &rel->trigdesc->triggers[i];
			bool		ok = tg->tgenabled == TRIGGER_FIRES_ALWAYS && tg->tgnargs >= 1 &&
				strcmp(tg->tgargs[0], id) == 0;

			if (ok && strcmp(tg->tgname, keys_name) == 0)
			{
				ok = TRIGGER_FOR_ROW(tg->tgtype) && TRIGGER_FOR_AFTER(tg->tgtype) &&
					TRIGGER_FOR_INSERT(tg->tgtype) && TRIGGER_FOR_UPDATE(tg->tgtype) &&
					TRIGGER_FOR_DELETE(tg->tgtype) && tg->tgqual == NULL && tg->tgnattr == 0 &&
					tg->tgnargs == 1 + nk && is_our_function(tg->tgfoid, "agg_changed_row");
				for (int k = 0; ok && k < nk; k++)
					ok = att[k] > 0 && pg_strtoint32(tg->tgargs[1 + k]) == att[k];
				if (ok)
					found[0] = tg->tgoid;
			}
			else if (ok && strcmp(tg->tgname, trunc_name) == 0)
			{
				if (!TRIGGER_FOR_ROW(tg->tgtype) && TRIGGER_FOR_TRUNCATE(tg->tgtype) && tg->tgnargs == 1 &&
					is_our_function(tg->tgfoid, "online_changed"))
					found[1] = tg->tgoid;
			}
		}
	}
	table_close(rel, AccessShareLock);
	if (!OidIsValid(found[0]) || !OidIsValid(found[1]))
		return false;
	for (int i = 0; i < 2; i++)
	{
		fp = hash_combine64(fp, found[i]);
		fp = hash_combine64(fp, trigger_xmin(found[i]));
	}
	fs_cache_view_guard(slot, v->view_id, fp | 1);	/* never 0, a new slot's guard */
	return true;
}

/*
 * fs_agg_<view_id>_keys: records the cache hash of the row's key (old and new key of an
 * UPDATE). Arguments: the view id, then the key columns' attribute numbers.
 */
Datum
fs_agg_changed_row_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	AttrNumber	att[FS_MAX_KEYS];
	int32		view_id;
	int			nk;
	uint64		h[2];
	bool		have[2] = {false, false};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) || td->tg_trigger->tgnargs < 2 ||
		td->tg_trigger->tgnargs > 1 + FS_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("agg_changed_row must be called as an AFTER row trigger with the view id and key columns")));
	view_id = pg_strtoint32(td->tg_trigger->tgargs[0]);
	nk = td->tg_trigger->tgnargs - 1;
	for (int k = 0; k < nk; k++)
	{
		att[k] = pg_strtoint32(td->tg_trigger->tgargs[1 + k]);
		if (att[k] < 1 || att[k] > td->tg_relation->rd_att->natts)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("agg_changed_row: column %d does not exist", att[k])));
	}
	if (td->tg_trigslot)
		have[0] = fs_read_key_hash_attrs(view_id, td->tg_trigslot, att, nk, &h[0]);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && td->tg_newslot)
		have[1] = fs_read_key_hash_attrs(view_id, td->tg_newslot, att, nk, &h[1]);
	if (have[0])
		fs_online_mark_key_written(view_id, h[0]);
	if (have[1] && !(have[0] && h[0] == h[1]))
		fs_online_mark_key_written(view_id, h[1]);
	return PointerGetDatum(NULL);
}
