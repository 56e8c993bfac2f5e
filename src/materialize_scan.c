/*
 * materialize_scan.c — the C write path of batch and incremental materialization (issue 5).
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
 *  4. Write the remaining winners, in key order, in ONE statement from a tuplestore registered
 *     as an ephemeral named relation: a plain INSERT when the online table holds no row (no
 *     conflict is possible under our lock), else the upsert with the never-backwards WHERE.
 *     Ordinary heap and index inserts: WAL-logged, crash-safe (an interrupted run leaves
 *     nothing), in the caller's transaction, and the online table's statement trigger marks the
 *     view for the cache's commit-time generation bump as before.
 *
 * Memory: the winners (one tuple per entity) are bounded by maintenance_work_mem; past it the
 * scan stops collecting and the caller runs the SQL statement instead (correct, slower).
 * Quarantine is not done here: the caller quarantines the window's failing rows as before.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/queryenvironment.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "checks.h"
#include "materialize_scan.h"
#include "online_table.h"
#include "pit_join_int.h"
#include "security.h"

/* One entity: its key, its winner's times and the winner itself (scan column layout). */
typedef struct MatEntry
{
	uint32		hash;
	bool		used;
	bool		c_null;
	bool		keep;			/* false: the row online is as new or newer */
	int64		e;
	int64		c;
	MinimalTuple tup;
	Datum		keys[FLEXIBLE_ARRAY_MEMBER];
} MatEntry;

typedef struct MatState
{
	DestReceiver pub;			/* first: the state is the scan's DestReceiver */
	FsView	   *v;
	MemoryContext cxt;			/* winners, keys and the table */
	TupleDesc	desc;			/* of the scan = the online table's columns */
	int			nkeys;
	int			col_ev;
	int			col_cr;
	int			col_f0;
	int			nfeat;
	bool		int_keys;		/* every key int2/int4/int8: hash and compare the values */
	Oid			key_type[FS_MAX_KEYS];
	Oid			key_coll[FS_MAX_KEYS];
	int16		key_len[FS_MAX_KEYS];
	bool		key_byval[FS_MAX_KEYS];
	FmgrInfo	key_hash[FS_MAX_KEYS];
	FmgrInfo	key_eq[FS_MAX_KEYS];
	FmgrInfo   *key_cmp[FS_MAX_KEYS];	/* NULL: no btree order (write order then arbitrary) */
	PitView		tie;			/* nfeat, feat_cmp, feat_coll: pit_features_cmp's view */
	TupleTableSlot *tieslot;
	char	   *etab;
	Size		stride;
	uint32		mask;
	uint64		nentries;
	uint64		rows;			/* rows read */
	Size		mem_limit;
	bool		overflow;
} MatState;

#define MAT_ENTRY(st, pos) ((MatEntry *) ((st)->etab + (Size) (pos) * (st)->stride))

/* Integer keys as int64 (their Datums differ in width). */
static inline int64
int_key(Oid type, Datum d)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

static inline uint32
hash_keys(MatState *st, const Datum *k)
{
	uint32		h = 0;

	for (int i = 0; i < st->nkeys; i++)
	{
		if (st->int_keys)
			h = hash_combine(h, pit_mix64((uint64) int_key(st->key_type[i], k[i])));
		else
			h = hash_combine(h, DatumGetUInt32(FunctionCall1Coll(&st->key_hash[i], st->key_coll[i], k[i])));
	}
	return h;
}

static inline bool
keys_equal(MatState *st, const Datum *a, const Datum *b)
{
	for (int i = 0; i < st->nkeys; i++)
	{
		if (st->int_keys)
		{
			if (int_key(st->key_type[i], a[i]) != int_key(st->key_type[i], b[i]))
				return false;
		}
		else if (!DatumGetBool(FunctionCall2Coll(&st->key_eq[i], st->key_coll[i], a[i], b[i])))
			return false;
	}
	return true;
}

/* Doubles the table (load factor stays under 1/2). */
static void
grow_table(MatState *st)
{
	char	   *old = st->etab;
	uint32		oldsize = st->mask + 1;
	uint32		newsize = oldsize * 2;

	if (newsize == 0 || (Size) newsize * st->stride >= MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many entities in one materialization run")));
	st->etab = MemoryContextAllocExtended(st->cxt, (Size) newsize * st->stride, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st->mask = newsize - 1;
	for (uint32 i = 0; i < oldsize; i++)
	{
		MatEntry   *e = (MatEntry *) (old + (Size) i * st->stride);
		uint32		pos;

		if (!e->used)
			continue;
		pos = e->hash & st->mask;
		while (MAT_ENTRY(st, pos)->used)
			pos = (pos + 1) & st->mask;
		memcpy(MAT_ENTRY(st, pos), e, st->stride);
	}
	pfree(old);
}

/* The entry of a key; with insert, a new empty one (key copied) when missing. */
static MatEntry *
lookup(MatState *st, const Datum *k, uint32 h, bool insert)
{
	uint32		pos = h & st->mask;
	MatEntry   *e;

	for (;;)
	{
		e = MAT_ENTRY(st, pos);
		if (!e->used)
			break;
		if (e->hash == h && keys_equal(st, e->keys, k))
			return e;
		pos = (pos + 1) & st->mask;
	}
	if (!insert)
		return NULL;
	if ((st->nentries + 1) * 2 > (uint64) st->mask + 1)
	{
		grow_table(st);
		return lookup(st, k, h, true);
	}
	st->nentries++;
	e->used = true;
	e->hash = h;
	e->tup = NULL;
	for (int i = 0; i < st->nkeys; i++)
		e->keys[i] = st->key_byval[i] ? k[i] : datumCopy(k[i], false, st->key_len[i]);
	return e;
}

/* Exact (event, created) tie: does the new row beat the winner by the join's tie-break? */
static bool
tie_beats(MatState *st, MatEntry *ent, const Datum *vals, const bool *nulls)
{
	ExecStoreMinimalTuple(ent->tup, st->tieslot, false);
	slot_getallattrs(st->tieslot);
	return pit_features_cmp(&st->tie, vals + st->col_f0, nulls + st->col_f0,
							st->tieslot->tts_values + st->col_f0,
							st->tieslot->tts_isnull + st->col_f0) < 0;
}

/* DestReceiver: one source row of the window (keys and event time are never NULL here). */
static bool
mat_receive(TupleTableSlot *slot, DestReceiver *self)
{
	MatState   *st = (MatState *) self;
	Datum	   *vals;
	bool	   *nulls;
	MatEntry   *ent;
	int64		e,
				c;
	bool		c_null;
	MinimalTuple old;
	MemoryContext oldcxt;

	st->rows++;
	if (st->overflow)
		return true;
	slot_getallattrs(slot);
	vals = slot->tts_values;
	nulls = slot->tts_isnull;
	e = DatumGetInt64(vals[st->col_ev]);
	c_null = nulls[st->col_cr];
	c = c_null ? 0 : DatumGetInt64(vals[st->col_cr]);
	oldcxt = MemoryContextSwitchTo(st->cxt);
	ent = lookup(st, vals, hash_keys(st, vals), true);
	if (ent->tup)
	{
		if (e < ent->e)
			goto done;
		if (e == ent->e)
		{
			if (c_null != ent->c_null)
			{
				if (c_null)
					goto done;
			}
			else if (!c_null && c != ent->c)
			{
				if (c < ent->c)
					goto done;
			}
			else if (!tie_beats(st, ent, vals, nulls))
				goto done;
		}
	}
	old = ent->tup;
	ent->tup = heap_form_minimal_tuple(slot->tts_tupleDescriptor, vals, nulls);
	ent->e = e;
	ent->c = c;
	ent->c_null = c_null;
	ent->keep = true;
	if (old)
		pfree(old);
done:
	MemoryContextSwitchTo(oldcxt);
	if ((st->rows & 0x3FFF) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (MemoryContextMemAllocated(st->cxt, true) > st->mem_limit)
		{
			/* too many entities: stop collecting, the caller falls back to the SQL statement */
			st->overflow = true;
			MemoryContextReset(st->cxt);
			st->etab = NULL;
		}
	}
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

static void
mat_shutdown(DestReceiver *self)
{
}

static void
mat_destroy(DestReceiver *self)
{
}

/* The scan query: the online table's columns from the source rows of the window that pass. */
static char *
scan_sql(FsView *v, const char *where)
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
		Form_pg_attribute a = TupleDescAttr(desc, st->col_f0 + f);
		TypeCacheEntry *tc = lookup_type_cache(a->atttypid, TYPECACHE_CMP_PROC_FINFO);

		st->tie.feat_coll[f] = a->attcollation;
		if (OidIsValid(tc->cmp_proc))
		{
			st->tie.feat_cmp[f] = MemoryContextAlloc(st->cxt, sizeof(FmgrInfo));
			fmgr_info_copy(st->tie.feat_cmp[f], &tc->cmp_proc_finfo, st->cxt);
		}
	}
	st->tieslot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	st->stride = MAXALIGN(offsetof(MatEntry, keys) + sizeof(Datum) * st->nkeys);
	st->mask = 1023;
	st->etab = MemoryContextAllocExtended(st->cxt, (Size) (st->mask + 1) * st->stride, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	return true;
}

static MatState *sort_state;

/* Key order for writing (index inserts then append to the btree's rightmost pages). */
static int
cmp_entries(const void *pa, const void *pb)
{
	const MatEntry *a = *(MatEntry *const *) pa;
	const MatEntry *b = *(MatEntry *const *) pb;
	MatState   *st = sort_state;

	for (int i = 0; i < st->nkeys; i++)
	{
		int32		r;

		if (st->int_keys)
		{
			int64		x = int_key(st->key_type[i], a->keys[i]);
			int64		y = int_key(st->key_type[i], b->keys[i]);

			r = x < y ? -1 : (x > y ? 1 : 0);
		}
		else if (st->key_cmp[i] == NULL)
			continue;
		else
			r = DatumGetInt32(FunctionCall2Coll(st->key_cmp[i], st->key_coll[i], a->keys[i], b->keys[i]));
		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * Reads the online table once: winners not strictly newer than the row online are dropped
 * (the never-backwards rule of the upsert's WHERE: (event, COALESCE(created, -infinity))).
 * Returns the number of rows online.
 */
static uint64
merge_online(MatState *st, Relation rel)
{
	Snapshot	snap = RegisterSnapshot(GetTransactionSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	uint64		n = 0;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MatEntry   *ent;
		int64		oe,
					oc,
					wc;

		n++;
		slot_getsomeattrs(slot, st->col_cr + 1);
		ent = lookup(st, slot->tts_values, hash_keys(st, slot->tts_values), false);
		if (ent == NULL || !ent->keep)
			continue;
		oe = DatumGetInt64(slot->tts_values[st->col_ev]);
		oc = slot->tts_isnull[st->col_cr] ? DT_NOBEGIN : DatumGetInt64(slot->tts_values[st->col_cr]);
		wc = ent->c_null ? DT_NOBEGIN : ent->c;
		if (!(oe < ent->e || (oe == ent->e && oc < wc)))
			ent->keep = false;
		if ((n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	return n;
}

/* The write statement over the winners' relation (alias w). */
static char *
write_sql(FsView *v, const char *enr, bool upsert)
{
	StringInfoData sql;
	StringInfoData cols;
	const char *oe = quote_identifier(FS_ONLINE_EVENT_COL);
	const char *oc = quote_identifier(FS_ONLINE_CREATED_COL);

	initStringInfo(&cols);
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&cols, "%s%s", i > 0 ? ", " : "", quote_identifier(v->entity.keys[i]));
	appendStringInfo(&cols, ", %s, %s", oe, oc);
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&cols, ", %s", quote_identifier(v->features[i].name));

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS o (%s) SELECT * FROM %s w",
					 fs_online_table_qualname(v->view_id), cols.data, enr);
	if (!upsert)
		return sql.data;
	appendStringInfoString(&sql, " ON CONFLICT (");
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "", quote_identifier(v->entity.keys[i]));
	appendStringInfo(&sql, ") DO UPDATE SET %s = EXCLUDED.%s, %s = EXCLUDED.%s", oe, oe, oc, oc);
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&sql, ", %s = EXCLUDED.%s", quote_identifier(v->features[i].name),
						 quote_identifier(v->features[i].name));
	appendStringInfo(&sql, " WHERE (o.%s, COALESCE(o.%s, '-infinity')) OPERATOR(pg_catalog.<) "
					 "(EXCLUDED.%s, COALESCE(EXCLUDED.%s, '-infinity'))", oe, oc, oe, oc);
	return sql.data;
}

/* Puts the kept winners, in key order, into a tuplestore and writes them in one statement. */
static uint64
write_winners(MatState *st, bool upsert)
{
	MatEntry  **ents;
	uint64		n = 0;
	Tuplestorestate *ts;
	EphemeralNamedRelation enr;
	TupleTableSlot *slot;
	uint64		written;

	ents = MemoryContextAllocHuge(st->cxt, sizeof(MatEntry *) * Max(st->nentries, 1));
	for (uint32 i = 0; i <= st->mask; i++)
	{
		MatEntry   *e = MAT_ENTRY(st, i);

		if (e->used && e->tup && e->keep)
			ents[n++] = e;
	}
	if (n == 0)
		return 0;
	sort_state = st;
	qsort(ents, n, sizeof(MatEntry *), cmp_entries);

	ts = tuplestore_begin_heap(false, false, Max(work_mem, 1024));
	slot = MakeSingleTupleTableSlot(st->desc, &TTSOpsMinimalTuple);
	for (uint64 i = 0; i < n; i++)
	{
		ExecStoreMinimalTuple(ents[i]->tup, slot, false);
		tuplestore_puttupleslot(ts, slot);
		ExecClearTuple(slot);
		pfree(ents[i]->tup);
		ents[i]->tup = NULL;
	}
	ExecDropSingleTupleTableSlot(slot);

	enr = palloc0(sizeof(EphemeralNamedRelationData));
	enr->md.name = "fs_mat_winners";
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = st->desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = (double) n;
	enr->reldata = ts;
	if (SPI_register_relation(enr) != SPI_OK_REL_REGISTER)
		elog(ERROR, "SPI_register_relation failed");
	if (SPI_execute(write_sql(st->v, "fs_mat_winners", upsert), false, 0) != SPI_OK_INSERT)
		elog(ERROR, "materialization write failed");
	written = SPI_processed;
	SPI_unregister_relation("fs_mat_winners");
	tuplestore_end(ts);
	return written;
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
			   FsMatMethod method)
{
	MatState   *st;
	FsOwnerContext octx;
	SPIExecuteOptions opts;
	Oid			relid = fs_online_table_relid(v->view_id);
	int64		written = -1;

	st = palloc0(sizeof(MatState));
	st->v = v;
	st->nkeys = v->entity.nkeys;
	st->col_ev = st->nkeys;
	st->col_cr = st->nkeys + 1;
	st->col_f0 = st->nkeys + 2;
	st->nfeat = v->nfeatures;
	st->mem_limit = (Size) maintenance_work_mem * 1024;
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

	/* 2. one pass over the window: each entity's winner */
	memset(&opts, 0, sizeof(opts));
	opts.params = make_params(nargs, types, vals, nulls);
	opts.read_only = false;
	opts.dest = (DestReceiver *) st;
	if (SPI_execute_extended(scan_sql(v, where), &opts) < 0)
		elog(ERROR, "materialization scan failed");

	if (!st->overflow && st->desc != NULL)
	{
		Relation	rel = table_open(relid, NoLock);
		BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
		bool		empty = nblocks == 0;

		/*
		 * 3. merge: read the online table when that is cheaper than probing its index per
		 * winner (a sequential read of a row costs a small fraction of an index probe plus
		 * an upsert attempt).
		 */
		if (!empty && (method == FS_MAT_MERGE ||
					   (method == FS_MAT_AUTO &&
						(double) st->nentries * 20 > (double) nblocks * (BLCKSZ / 128))))
			empty = merge_online(st, rel) == 0;
		table_close(rel, NoLock);

		/* 4. one statement writes the winners that are new */
		written = (int64) write_winners(st, !empty);
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	MemoryContextDelete(st->cxt);
	return written;
}
