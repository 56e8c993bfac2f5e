/*
 * materialize_scan.c — the C write path of batch and incremental materialization.
 *
 * The SQL statement (materialize.c, fs_mat_upsert_sql) sorts every row of the window by
 * (keys, event DESC, created DESC, features) to keep one per entity: at 10M rows the sort spills
 * and dominates. Here the window's rows are read once, in any order, and each entity keeps only
 * its current winner in a hash table:
 *
 *  1. Lock the online table in SHARE ROW EXCLUSIVE mode (self-exclusive; readers — fs_online
 *     read-throughs and the cache worker, ACCESS SHARE — are not blocked, writers of the same
 *     online table — another run, a streaming INSERT into the source — wait for our commit).
 *     So nobody changes the online table between our read of it and our write.
 *  2. Read the source rows of the window through SPI into a DestReceiver (no copy per row): the
 *     query carries the window, the TTL and the view's checks exactly as the SQL statement
 *     does (same text), so failing rows never compete. Each row is compared with its entity's
 *     winner as int64 times (greatest (event, created), a NULL created time older than any);
 *     exact ties go to the point-in-time join's tie-break (pit_features_cmp: smallest features
 *     in view order, NULLs last). Only a row that wins is copied (a MinimalTuple).
 *  3. Merge with the online table: either read it once (sequentially) and drop the winners that
 *     are not strictly newer than the row online (never backwards, and re-runs write nothing),
 *     or — when there are few winners for a big table — leave that to the ON CONFLICT ... WHERE
 *     of the write, which probes the key index per winner.
 *  4. Write the remaining winners: into an empty online table by heap_multi_insert and
 *     key-ordered index entries; into a non-empty one by the C upsert (materialize_upsert.c:
 *     key index probes, the never-backwards comparison, heap_update, HOT where the page has
 *     room); where those cannot stand in for the executor (stream mode's per-key triggers, a
 *     transaction snapshot, an index added by hand), in ONE statement from a tuplestore
 *     registered as an ephemeral named relation, the upsert with the never-backwards WHERE.
 *     Ordinary heap and index changes: WAL-logged, crash-safe (an interrupted run leaves
 *     nothing), in the caller's transaction; the cache's commit-time invalidation is asked
 *     for as a trigger would: the whole view for the statement and the bulk insert
 *     (fs_online_mark_written), the written keys only for the C upsert.
 *
 * Memory: the winners (one tuple per entity) are bounded by maintenance_work_mem; past it the
 * scan stops collecting and the caller runs the SQL statement instead (correct, slower).
 * Quarantine is not done here: the caller quarantines the window's failing rows as before.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/plannodes.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/queryenvironment.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "checks.h"
#include "materialize_scan.h"
#include "materialize_upsert.h"
#include "materialize_winners.h"
#include "materialize_write.h"
#include "online_table.h"
#include "pit_join_int.h"
#include "security.h"
#include "spi_util.h"

/*
 * Exact (event, created) tie: does the new row (tid in TID mode, else its values) beat the
 * winner by the point-in-time join's tie-break?
 */
static bool
tie_beats(MatState *st, MatEntry *ent, ItemPointer tid, const Datum *vals, const bool *nulls)
{
	if (st->use_tid)
	{
		Datum	   *nv = palloc(sizeof(Datum) * Max(st->nfeat, 1));
		bool	   *nn = palloc(sizeof(bool) * Max(st->nfeat, 1));
		bool		r;

		mat_fetch_features(st, &ent->tid, st->tieslot, st->tvals, st->tnulls);
		mat_fetch_features(st, tid, st->srcslot, nv, nn);
		r = pit_features_cmp(&st->tie, nv, nn, st->tvals, st->tnulls) < 0;
		ExecClearTuple(st->tieslot);
		ExecClearTuple(st->srcslot);
		pfree(nv);
		pfree(nn);
		return r;
	}
	ExecStoreMinimalTuple(ent->tup, st->tieslot, false);
	slot_getallattrs(st->tieslot);
	return pit_features_cmp(&st->tie, vals + st->col_f0, nulls + st->col_f0,
							st->tieslot->tts_values + st->col_f0,
							st->tieslot->tts_isnull + st->col_f0) < 0;
}

/*
 * Offers one row to its entity: it becomes the winner when its (event, created) is greater (a
 * NULL created time older than any), or equal and the tie-break prefers it. TID mode keeps
 * where it is; copy mode (slot given) copies it.
 */
static void
offer(MatState *st, const Datum *keys, uint32 h, int64 e, int64 c, bool c_null, ItemPointer tid,
	  TupleTableSlot *slot)
{
	MatEntry   *ent = mat_lookup(st, keys, h, true);

	if (ent->has_row)
	{
		if (e < ent->e)
			return;
		if (e == ent->e)
		{
			if (c_null != ent->c_null)
			{
				if (c_null)
					return;
			}
			else if (!c_null && c != ent->c)
			{
				if (c < ent->c)
					return;
			}
			else if (!tie_beats(st, ent, tid, slot ? slot->tts_values : NULL, slot ? slot->tts_isnull : NULL))
				return;
		}
	}
	if (st->use_tid)
		ent->tid = *tid;
	else
	{
		MinimalTuple old = ent->tup;

		ent->tup = heap_form_minimal_tuple(slot->tts_tupleDescriptor, slot->tts_values, slot->tts_isnull);
		if (old)
			pfree(old);
	}
	ent->e = e;
	ent->c = c;
	ent->c_null = c_null;
	ent->keep = true;
	ent->has_row = true;
}

/* Offers the pending rows, whose cells were prefetched when they arrived. */
static void
flush_pending(MatState *st)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(st->cxt);

	for (int i = 0; i < st->npend; i++)
	{
		MatPending *p = &st->pend[i];

		offer(st, p->keys, p->h, p->e, p->c, p->c_null, &p->tid, NULL);
	}
	st->npend = 0;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * One row of the window (keys and event time not NULL): offered at once (copy mode, or keys by
 * reference), or queued while its table cell is prefetched. Checks the memory bound.
 */
static inline void
take_row(MatState *st, const Datum *keys, int64 e, int64 c, bool c_null, ItemPointer tid,
		 TupleTableSlot *copy_slot)
{
	uint32		h = fs_key_hash(st->nkeys, st->int_keys, st->key_hash, st->key_coll, keys);

	if (st->nchunks > 0 && fs_key_chunk_of(h, st->nchunks) != st->chunk)
		return;
	st->rows++;
	if (st->pipe)
	{
		MatPending *p = &st->pend[st->npend++];

		memcpy(p->keys, keys, sizeof(Datum) * st->nkeys);
		p->e = e;
		p->c = c;
		p->c_null = c_null;
		p->h = h;
		p->tid = *tid;
		__builtin_prefetch(MAT_ENTRY(st, h & st->mask));
		if (st->npend == MAT_PIPE)
			flush_pending(st);
	}
	else
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(st->cxt);

		offer(st, keys, h, e, c, c_null, tid, copy_slot);
		MemoryContextSwitchTo(oldcxt);
	}
	if ((st->rows & 0x3FFF) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (MemoryContextMemAllocated(st->cxt, true) > st->mem_limit)
		{
			/* too many entities: stop collecting, the caller falls back to the SQL statement */
			st->overflow = true;
			st->npend = 0;
			MemoryContextReset(st->cxt);
			st->etab = NULL;
		}
	}
}

/* DestReceiver: one row of the scan query (keys and event time are never NULL there). */
static bool
mat_receive(TupleTableSlot *slot, DestReceiver *self)
{
	MatState   *st = (MatState *) self;
	Datum	   *vals;
	bool	   *nulls;
	bool		c_null;

	if (st->overflow)
		return true;
	slot_getallattrs(slot);
	vals = slot->tts_values;
	nulls = slot->tts_isnull;
	c_null = nulls[st->col_cr];
	take_row(st, vals, DatumGetInt64(vals[st->col_ev]), c_null ? 0 : DatumGetInt64(vals[st->col_cr]), c_null,
			 st->use_tid ? (ItemPointer) DatumGetPointer(vals[st->col_f0]) : NULL,
			 st->use_tid ? NULL : slot);
	return true;
}

/* The scan's row type is known: set up hashing, ordering and the tie-break for it. */
static bool setup_types(MatState *st, TupleDesc desc);

static void
mat_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	MatState   *st = (MatState *) self;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->cxt);

	if (!setup_types(st, CreateTupleDescCopy(typeinfo)))
		st->overflow = true;
	MemoryContextSwitchTo(oldcxt);
}

/* End of the scan: the rows still waiting in the prefetch pipeline are offered. */
static void
mat_shutdown(DestReceiver *self)
{
	MatState   *st = (MatState *) self;

	if (!st->overflow)
		flush_pending(st);
}

/* The receiver is part of MatState, freed by fs_mat_write_c. */
static void
mat_destroy(DestReceiver *self)
{
}

/* The scan query: the online table's columns from the source rows of the window that pass. */
static char *
scan_sql(FsView *v, const char *where, bool use_tid)
{
	StringInfoData sql;
	const char *ev = quote_identifier(v->event_time);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&sql, "CAST(s.%s AS %s), ", quote_identifier(v->entity.keys[i]),
						 format_type_extended(v->entity.key_types[i], -1, FORMAT_TYPE_FORCE_QUALIFY));
	appendStringInfo(&sql, "CAST(s.%s AS pg_catalog.timestamptz), ", ev);
	if (v->created_time)
		appendStringInfo(&sql, "CAST(s.%s AS pg_catalog.timestamptz)", quote_identifier(v->created_time));
	else
		appendStringInfoString(&sql, "CAST(NULL AS pg_catalog.timestamptz)");
	if (use_tid)
		appendStringInfoString(&sql, ", s.ctid");
	else
		for (int i = 0; i < v->nfeatures; i++)
			appendStringInfo(&sql, ", CAST(s.%s AS %s)", quote_identifier(v->features[i].name),
							 format_type_extended(v->features[i].type, -1, FORMAT_TYPE_FORCE_QUALIFY));
	appendStringInfo(&sql, " FROM %s s WHERE (%s) AND s.%s IS NOT NULL AND %s",
					 quote_qualified_identifier(v->source_schema, v->source_name), where, ev,
					 fs_checks_pass_expr(v, "s"));
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&sql, " AND s.%s IS NOT NULL", quote_identifier(v->entity.keys[i]));
	return sql.data;
}

/* Key and tie-break functions, once the scan's row type is known. */
static bool
setup_types(MatState *st, TupleDesc desc)
{
	if (!st->use_tid)
		st->desc = desc;
	st->int_keys = true;
	for (int i = 0; i < st->nkeys; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		TypeCacheEntry *tc = lookup_type_cache(a->atttypid, TYPECACHE_HASH_PROC_FINFO |
											   TYPECACHE_EQ_OPR_FINFO | TYPECACHE_CMP_PROC_FINFO);

		st->key_type[i] = a->atttypid;
		st->key_coll[i] = a->attcollation;
		st->key_len[i] = a->attlen;
		st->key_byval[i] = a->attbyval;
		if (a->atttypid != INT2OID && a->atttypid != INT4OID && a->atttypid != INT8OID)
			st->int_keys = false;
		if (!OidIsValid(tc->hash_proc) || !OidIsValid(tc->eq_opr))
			return false;		/* no hashing: the SQL statement handles it */
		fmgr_info_copy(&st->key_hash[i], &tc->hash_proc_finfo, st->cxt);
		fmgr_info_copy(&st->key_eq[i], &tc->eq_opr_finfo, st->cxt);
		st->key_cmp[i] = NULL;
		if (OidIsValid(tc->cmp_proc))
		{
			st->key_cmp[i] = MemoryContextAlloc(st->cxt, sizeof(FmgrInfo));
			fmgr_info_copy(st->key_cmp[i], &tc->cmp_proc_finfo, st->cxt);
		}
	}
	memset(&st->tie, 0, sizeof(st->tie));
	st->tie.nfeat = st->nfeat;
	st->tie.feat_coll = MemoryContextAlloc(st->cxt, sizeof(Oid) * Max(st->nfeat, 1));
	st->tie.feat_cmp = MemoryContextAllocZero(st->cxt, sizeof(FmgrInfo *) * Max(st->nfeat, 1));
	for (int f = 0; f < st->nfeat; f++)
	{
		Form_pg_attribute a = TupleDescAttr(st->desc, st->col_f0 + f);
		TypeCacheEntry *tc = lookup_type_cache(a->atttypid, TYPECACHE_CMP_PROC_FINFO);

		st->tie.feat_coll[f] = a->attcollation;
		if (OidIsValid(tc->cmp_proc))
		{
			st->tie.feat_cmp[f] = MemoryContextAlloc(st->cxt, sizeof(FmgrInfo));
			fmgr_info_copy(st->tie.feat_cmp[f], &tc->cmp_proc_finfo, st->cxt);
		}
	}
	if (!st->use_tid)
		st->tieslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	st->stride = MAXALIGN(offsetof(MatEntry, keys) + sizeof(Datum) * st->nkeys);
	st->mask = 1023;
	while ((double) st->mask < st->est_entities * 2 && st->mask < (1U << 30))
		st->mask = st->mask * 2 + 1;
	st->etab = mat_alloc_table(st, (Size) (st->mask + 1) * st->stride, &st->etab_raw);
	st->pipe = st->use_tid;
	for (int i = 0; i < st->nkeys; i++)
		st->pipe &= st->key_byval[i];
	return true;
}

/*
 * TID mode (a plain table whose feature columns have the view's types): the scan returns only
 * keys, times and ctid, and only each entity's final winner is read in full (in physical
 * order). Otherwise (views, partitioned and foreign tables) every new winner is copied.
 */
static void
setup_tid_mode(MatState *st)
{
	FsView	   *v = st->v;
	Oid			relid = fs_view_source_relid(v);
	TupleDesc	d;

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return;
	st->feat_att = MemoryContextAlloc(st->cxt, sizeof(AttrNumber) * Max(st->nfeat, 1));
	st->feat_max = 1;
	for (int f = 0; f < st->nfeat; f++)
	{
		AttrNumber	att = get_attnum(relid, v->features[f].name);

		if (att <= 0 || get_atttype(relid, att) != v->features[f].type)
			return;
		st->feat_att[f] = att;
		st->feat_max = Max(st->feat_max, att);
	}
	st->use_tid = true;
	st->src = table_open(relid, AccessShareLock);
	st->srcslot = table_slot_create(st->src, NULL);
	st->tieslot = table_slot_create(st->src, NULL);
	st->tvals = MemoryContextAlloc(st->cxt, sizeof(Datum) * Max(st->nfeat, 1));
	st->tnulls = MemoryContextAlloc(st->cxt, sizeof(bool) * Max(st->nfeat, 1));

	/* the online table's row: keys (entity types), event, created, features (source collations) */
	d = CreateTemplateTupleDesc(st->col_f0 + st->nfeat);
	for (int i = 0; i < st->nkeys; i++)
		TupleDescInitEntry(d, i + 1, v->entity.keys[i], v->entity.key_types[i], -1, 0);
	TupleDescInitEntry(d, st->col_ev + 1, FS_ONLINE_EVENT_COL, TIMESTAMPTZOID, -1, 0);
	TupleDescInitEntry(d, st->col_cr + 1, FS_ONLINE_CREATED_COL, TIMESTAMPTZOID, -1, 0);
	for (int f = 0; f < st->nfeat; f++)
	{
		TupleDescInitEntry(d, st->col_f0 + f + 1, v->features[f].name, v->features[f].type, -1, 0);
		TupleDescInitEntryCollation(d, st->col_f0 + f + 1, TupleDescAttr(RelationGetDescr(st->src), st->feat_att[f] - 1)->attcollation);
	}
	st->desc = d;
}

/*
 * Entities in the source, from the statistics of its first key column (0 when unknown), so
 * that the table is sized once instead of doubling through a million entities.
 */
static double
estimate_entities(FsView *v)
{
	Oid			t[2] = {OIDOID, TEXTOID};
	Datum		a[2] = {ObjectIdGetDatum(fs_view_source_relid(v)), CStringGetTextDatum(v->entity.keys[0])};
	bool		isnull = true;
	double		n = 0;

	if (fs_spi_exec("SELECT CAST(CASE WHEN s.n_distinct >= 0 THEN s.n_distinct "
					"ELSE -s.n_distinct * GREATEST(c.reltuples, 0) END AS pg_catalog.float8) "
					"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					"JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname "
					"WHERE c.oid = $1 AND s.attname = $2 ORDER BY s.inherited DESC LIMIT 1",
					2, t, a, NULL, true) == 1)
	{
		Datum		d = fs_spi_datum(0, 1, &isnull);

		if (!isnull)
			n = DatumGetFloat8(d);
	}
	return Min(n, 1e8);
}

/*
 * A full run (window open at the start) over a plain table without checks, whose key and time
 * columns have the online table's types and which has no row security: read it through the
 * table AM, evaluating the window in C, instead of through the executor (half the cost per row).
 * The attnums of keys, event and created columns are returned in att.
 */
static bool
direct_scan_ok(MatState *st, const FsMatWindow *w, AttrNumber *att)
{
	FsView	   *v = st->v;
	Oid			relid;
	TupleDesc	d;

	if (w == NULL || !st->use_tid || fs_view_has_checks(v))
		return false;
	relid = RelationGetRelid(st->src);
	d = RelationGetDescr(st->src);
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	for (int i = 0; i < st->nkeys + 2; i++)
	{
		const char *name = i < st->nkeys ? v->entity.keys[i] : (i == st->col_ev ? v->event_time : v->created_time);
		Oid			want = i < st->nkeys ? v->entity.key_types[i] : TIMESTAMPTZOID;

		att[i] = name ? get_attnum(relid, name) : InvalidAttrNumber;
		if (name && (att[i] <= 0 || TupleDescAttr(d, att[i] - 1)->atttypid != want))
			return false;
	}
	return true;
}

/* The direct read of direct_scan_ok: the scan query's conditions, in C, under st->snap. */
static void
direct_scan(MatState *st, const FsMatWindow *w, const AttrNumber *att)
{
	TupleDesc	kd = CreateTemplateTupleDesc(st->nkeys);
	TupleDesc	sd = RelationGetDescr(st->src);
	TableScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	maxatt = 0;
	AttrNumber	watt;
	Datum		keys[FS_MAX_KEYS];

	/* hashing and equality of the keys with the source columns' types and collations */
	for (int i = 0; i < st->nkeys; i++)
	{
		Form_pg_attribute a = TupleDescAttr(sd, att[i] - 1);

		TupleDescInitEntry(kd, i + 1, NameStr(a->attname), a->atttypid, -1, 0);
		TupleDescInitEntryCollation(kd, i + 1, a->attcollation);
	}
	if (!setup_types(st, kd))
	{
		st->overflow = true;
		return;
	}
	for (int i = 0; i < st->nkeys + 2; i++)
		maxatt = Max(maxatt, att[i]);
	watt = w->on_created ? att[st->col_cr] : att[st->col_ev];

	scan = table_beginscan(st->src, st->snap, 0, NULL);
	slot = table_slot_create(st->src, NULL);
	while (!st->overflow && table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Datum	   *vals;
		bool	   *nulls;
		int64		e,
					c = 0,
					wv;
		bool		c_null = true;
		bool		skip = false;

		slot_getsomeattrs(slot, maxatt);
		vals = slot->tts_values;
		nulls = slot->tts_isnull;
		for (int i = 0; i < st->nkeys; i++)
		{
			skip |= nulls[att[i] - 1];
			keys[i] = vals[att[i] - 1];
		}
		if (skip || nulls[att[st->col_ev] - 1])
			continue;
		e = DatumGetInt64(vals[att[st->col_ev] - 1]);
		if (att[st->col_cr] > 0 && !nulls[att[st->col_cr] - 1])
		{
			c_null = false;
			c = DatumGetInt64(vals[att[st->col_cr] - 1]);
		}
		/* a NULL window column fails only a bounded side */
		if (!TIMESTAMP_IS_NOEND(w->end) || !TIMESTAMP_IS_NOBEGIN(w->start))
		{
			if (nulls[watt - 1])
				continue;
			wv = DatumGetInt64(vals[watt - 1]);
			if (!TIMESTAMP_IS_NOEND(w->end) && wv > w->end)
				continue;
			if (!TIMESTAMP_IS_NOBEGIN(w->start) && (wv < w->start || (w->start_exclusive && wv == w->start)))
				continue;
		}
		if (w->as_of_end && w->on_created && !TIMESTAMP_IS_NOEND(w->end) && e > w->end)
			continue;
		if (w->has_ttl && e < w->ttl_bound)
			continue;
		take_row(st, keys, e, c, c_null, &slot->tts_tid, NULL);
	}
	if (!st->overflow)
		flush_pending(st);
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
}

/*
 * Below this many rows in the window (planner's estimate) auto leaves the run to the SQL
 * statement when the winners would be written through the tuplestore and the statement's
 * upsert anyway: its sort then fits in memory and costs less than the hash table, the reading
 * of the winners by TID and the tuplestore (an incremental run of 100k rows into a 1M-row
 * online table: 1.2 s of CPU by the statement, 1.7-2.5 s by the one-pass path). Where the C
 * upsert (materialize_upsert.c) can write, the one-pass path is cheaper at every size.
 */
#define MAT_MIN_ROWS 250000

/* Could the C upsert write into the online table (the winners' layout aside)? */
static bool
c_upsert_possible(MatState *st, Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	bool		ok = mat_upsert_ok(st, rel);

	table_close(rel, NoLock);
	return ok;
}

/* The planner's estimate of the scan query's rows, with the run's parameter values. */
static double
window_rows(const char *sql, int nargs, Oid *types, Datum *vals, bool *nulls)
{
	char	   *cn = palloc(nargs + 1);
	Portal		portal;
	double		rows = 0;

	for (int i = 0; i < nargs; i++)
		cn[i] = nulls && nulls[i] ? 'n' : ' ';
	cn[nargs] = '\0';
	portal = SPI_cursor_open_with_args(NULL, sql, nargs, types, vals, cn, true, CURSOR_OPT_NO_SCROLL);
	if (list_length(portal->stmts) == 1)
		rows = linitial_node(PlannedStmt, portal->stmts)->planTree->plan_rows;
	SPI_cursor_close(portal);
	return rows;
}

/* Parameters of the scan query as a ParamListInfo. */
static ParamListInfo
make_params(int nargs, Oid *types, Datum *vals, bool *nulls)
{
	ParamListInfo p = makeParamList(nargs);

	for (int i = 0; i < nargs; i++)
	{
		p->params[i].value = vals[i];
		p->params[i].isnull = nulls ? nulls[i] : false;
		p->params[i].pflags = PARAM_FLAG_CONST;
		p->params[i].ptype = types[i];
	}
	return p;
}

/*
 * See materialize_scan.h and the file header. The scan runs as the extension owner, like the
 * SQL statement (the caller checked the caller's SELECT privilege on the source).
 */
int64
fs_mat_write_c(FsView *v, const char *where, int nargs, Oid *types, Datum *vals, bool *nulls,
			   const FsMatWindow *win, FsMatMethod method)
{
	MatState   *st;
	FsOwnerContext octx;
	SPIExecuteOptions opts;
	Oid			relid = fs_online_table_relid(v->view_id);
	int64		written = -1;
	instr_time	t0,
				t1,
				t2;
	uint64		online_rows = 0;
	const char *how = "sql";
	AttrNumber	att[FS_MAX_KEYS + 2];
	double		wrows = -1;

	INSTR_TIME_SET_CURRENT(t0);
	st = palloc0(sizeof(MatState));
	st->v = v;
	st->nkeys = v->entity.nkeys;
	st->col_ev = st->nkeys;
	st->col_cr = st->nkeys + 1;
	st->col_f0 = st->nkeys + 2;
	st->nfeat = v->nfeatures;
	st->mem_limit = (Size) maintenance_work_mem * 1024;
	st->nchunks = win ? win->nchunks : 0;
	st->chunk = win ? win->chunk : 0;
	st->cxt = AllocSetContextCreate(CurrentMemoryContext, "fs materialize winners", ALLOCSET_DEFAULT_SIZES);
	st->pub.receiveSlot = mat_receive;
	st->pub.rStartup = mat_startup;
	st->pub.rShutdown = mat_shutdown;
	st->pub.rDestroy = mat_destroy;
	st->pub.mydest = DestNone;

	/* 1. no other writer of the online table until we commit (readers go on) */
	LockRelationOid(relid, ShareRowExclusiveLock);

	SPI_connect();
	fs_owner_context_enter(&octx);
	st->snap = RegisterSnapshot(GetTransactionSnapshot());
	PushActiveSnapshot(st->snap);
	setup_tid_mode(st);
	st->est_entities = estimate_entities(v);

	/* 2. one pass over the window: each entity's winner */
	if (direct_scan_ok(st, win, att))
	{
		st->direct = true;
		direct_scan(st, win, att);
	}
	else if (method == FS_MAT_AUTO &&
			 (wrows = window_rows(scan_sql(v, where, st->use_tid), nargs, types, vals, nulls)) < MAT_MIN_ROWS &&
			 !c_upsert_possible(st, relid))
		st->overflow = true;	/* a small window the C upsert cannot write: the statement does */
	else
	{
		/* a window smaller than the entities (an incremental run): a table its size */
		if (wrows >= 0 && wrows < st->est_entities)
			st->est_entities = Max(wrows, 1024);
		memset(&opts, 0, sizeof(opts));
		opts.params = make_params(nargs, types, vals, nulls);
		opts.read_only = true;	/* under st->snap, which TID mode reads the winners with */
		opts.dest = (DestReceiver *) st;
		if (SPI_execute_extended(scan_sql(v, where, st->use_tid), &opts) < 0)
			elog(ERROR, "materialization scan failed");
	}
	INSTR_TIME_SET_CURRENT(t1);
	t2 = t1;

	if (!st->overflow && st->desc != NULL)
	{
		Relation	rel = table_open(relid, NoLock);
		BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
		bool		empty = nblocks == 0;

		/*
		 * 3. merge: read the online table when the run covers most of it (a full re-run, where
		 * most winners are already online and nothing needs writing); otherwise (an
		 * incremental run) the upsert's conflict check probes the key index per winner, which
		 * is cheaper than reading every row online.
		 */
		if (!empty && (method == FS_MAT_MERGE ||
					   (method == FS_MAT_AUTO &&
						(double) st->nentries * 2 > (double) nblocks * (BLCKSZ / 128))))
		{
			online_rows = mat_merge_online(st, rel);

			/*
			 * Under REPEATABLE READ or SERIALIZABLE no visible row does not mean no row: a run
			 * that committed after our snapshot wrote rows we cannot see. The upsert meets
			 * them as INSERT ... ON CONFLICT does, with serialization_failure (retry), where
			 * the plain insert would fail with a unique violation.
			 */
			empty = online_rows == 0 && !IsolationUsesXactSnapshot();
		}
		INSTR_TIME_SET_CURRENT(t2);
		how = empty ? "insert" : "upsert";

		/* 4. one statement writes the winners that are new */
		written = (int64) mat_write_winners(st, rel, !empty);
		table_close(rel, NoLock);
	}
	PopActiveSnapshot();
	{
		instr_time	t3;

		INSTR_TIME_SET_CURRENT(t3);
		INSTR_TIME_SUBTRACT(t3, t2);
		INSTR_TIME_SUBTRACT(t2, t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		elog(DEBUG1, "feature_store: materialized view %d: %s%s mode, %llu rows read, %llu entities, "
			 "%llu rows online read, %s of %lld rows; scan %.0f ms, merge %.0f ms, write %.0f ms (filling %.0f ms)",
			 v->view_id, st->direct ? "direct " : "", st->use_tid ? "tid" : "copy", (unsigned long long) st->rows,
			 (unsigned long long) st->nentries, (unsigned long long) online_rows, how, (long long) written,
			 INSTR_TIME_GET_MILLISEC(t1), INSTR_TIME_GET_MILLISEC(t2), INSTR_TIME_GET_MILLISEC(t3), st->fill_ms);
	}
	if (st->use_tid)
	{
		ExecDropSingleTupleTableSlot(st->srcslot);
		ExecDropSingleTupleTableSlot(st->tieslot);
		table_close(st->src, NoLock);
	}
	UnregisterSnapshot(st->snap);
	fs_owner_context_leave(&octx);
	SPI_finish();
	MemoryContextDelete(st->cxt);
	return written;
}
