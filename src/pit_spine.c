/*
 * pit_spine.c — the spine side of a point-in-time join: reading spine rows (two readers in
 * step, one building batches and one emitting them; a spine that is not a plain table is first
 * materialized through SPI), and building a batch: per feature view, per valid spine row a slot,
 * radix-sorted by key hash (a key's slots contiguous and in time order), the open-addressing
 * table of the batch's keys in the same hash order, and their bloom filter. Separate because
 * the memory of a batch (and so the batch size) is decided here, while the source readers only
 * probe what it builds.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/typcache.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pit_join.h"
#include "pit_join_int.h"

/* Opens a reader: read pointer readptr of store, or (store NULL) its own scan of the spine table. */
void
pit_spine_reader_init(PitSpineReader *r, PitPlan *p, Tuplestorestate *store, int readptr)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	r->vals = palloc(sizeof(Datum) * Max(p->spine_desc->natts, 1));
	r->nulls = palloc(sizeof(bool) * Max(p->spine_desc->natts, 1));
	if (store != NULL)
	{
		r->store = store;
		r->readptr = readptr;
		r->slot = MakeSingleTupleTableSlot(p->spine_desc, &TTSOpsMinimalTuple);
		return;
	}
	r->rel = table_open(p->spine_relid, AccessShareLock);
	r->slot = table_slot_create(r->rel, NULL);
	/* no synchronized scan: both readers must see the rows in the same order */
	r->scan = table_beginscan_strat(r->rel, GetActiveSnapshot(), 0, NULL, true, false);
}

/* Next spine row into r->vals/nulls (spine_desc order); false at the end. */
bool
pit_spine_next(PitSpineReader *r)
{
	PitPlan    *p = r->p;

	r->ordinal++;

	if (r->store != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(p->cxt);	/* tuples read back from disk are
																 * owned by the slot: not in a
																 * batch context */
		bool		found;

		tuplestore_select_read_pointer(r->store, r->readptr);
		found = tuplestore_gettupleslot(r->store, true, false, r->slot);
		MemoryContextSwitchTo(old);
		if (!found)
			return false;
		slot_getallattrs(r->slot);
		memcpy(r->vals, r->slot->tts_values, sizeof(Datum) * p->spine_desc->natts);
		memcpy(r->nulls, r->slot->tts_isnull, sizeof(bool) * p->spine_desc->natts);
		return true;
	}
	{
		/* the scan outlives the batch context the build reader runs in (see pit_scan.c probe_leaf) */
		MemoryContext old = MemoryContextSwitchTo(p->cxt);
		bool		found = table_scan_getnextslot(r->scan, ForwardScanDirection, r->slot);

		MemoryContextSwitchTo(old);
		if (!found)
			return false;
	}
	if (r->rel->rd_tableam == GetHeapamTableAmRoutine())
	{
		HeapScanDesc hscan = (HeapScanDesc) r->scan;

		/* read ahead within the page, as for sources */
		if (hscan->rs_cindex + 4 < hscan->rs_ntuples)
		{
			Page		page = BufferGetPage(hscan->rs_cbuf);
			ItemId		lp = PageGetItemId(page, hscan->rs_vistuples[hscan->rs_cindex + 4]);

			__builtin_prefetch((char *) page + ItemIdGetOffset(lp));
		}
	}
	slot_getallattrs(r->slot);
	for (int i = 0; i < p->spine_desc->natts; i++)
	{
		r->vals[i] = r->slot->tts_values[p->spine_att[i] - 1];
		r->nulls[i] = r->slot->tts_isnull[p->spine_att[i] - 1];
	}
	return true;
}

/* Closes a reader (the tuplestore itself is ended by the caller). */
void
pit_spine_reader_end(PitSpineReader *r)
{
	if (r->scan != NULL)
	{
		table_endscan(r->scan);
		table_close(r->rel, NoLock);
	}
	ExecDropSingleTupleTableSlot(r->slot);
}

/* ---------------------------------------------------------------------------------------
 * Build: the batch's keys and slots.
 * --------------------------------------------------------------------------------------- */

/* An empty key table for `keys` keys (load factor at most 3/4); home cells by the hash's top bits. */
static void
alloc_table(PitView *v, int keys)
{
	uint32		cap = 16;
	int			lg = 4;

	while (cap < (uint32) keys + (uint32) keys / 3 + 1)
	{
		cap <<= 1;
		lg++;
	}
	v->mask = cap - 1;
	v->lgcap = lg;
	v->hshift = 32 - lg;
	v->estride = MAXALIGN(offsetof(PitEntry, keys) + sizeof(Datum) * v->nkeys);
	v->etab = pit_alloc_big(v->estride * cap);
	for (uint32 i = 0; i < cap; i++)
		PIT_ENTRY_AT(v, i)->count = -1;
	v->nentries = 0;
}

/* The spine rows of one view in a batch as they are read, before they are ordered into slots. */
typedef struct PitRawRows
{
	int			n;
	int			cap;
	int64	   *ts;				/* spine time, in spine order */
	int32	   *row;			/* spine row within the batch */
	uint32	   *hash;
	Datum	   *keys;			/* nkeys per row */
} PitRawRows;

static void
raw_alloc(PitView *v, PitRawRows *r, int cap)
{
	PitRawRows	o = *r;

	r->cap = cap;
	r->ts = pit_alloc_big(sizeof(int64) * cap);
	r->row = pit_alloc_big(sizeof(int32) * cap);
	r->hash = pit_alloc_big(sizeof(uint32) * cap);
	r->keys = pit_alloc_big(sizeof(Datum) * v->nkeys * cap);
	if (o.n > 0)
	{
		memcpy(r->ts, o.ts, sizeof(int64) * o.n);
		memcpy(r->row, o.row, sizeof(int32) * o.n);
		memcpy(r->hash, o.hash, sizeof(uint32) * o.n);
		memcpy(r->keys, o.keys, sizeof(Datum) * v->nkeys * o.n);
	}
}

/* Stable LSD radix sort of a[0..n) by bits [from, 64); tmp has room for n values. */
#define RS_NAME radix_sort_u64
#define RS_ELEMENT uint64
#define RS_KEY(x) (x)
#include "radix_sort.h"

/* A row of a run of equal hashes being ordered: its key group, time and spine position. */
typedef struct PitRunRow
{
	int			group;
	int64		te;
	uint32		i;
} PitRunRow;

static int
run_row_cmp(const void *a, const void *b)
{
	const PitRunRow *x = a;
	const PitRunRow *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->te != y->te)
		return x->te < y->te ? -1 : 1;
	return x->i < y->i ? -1 : (x->i > y->i ? 1 : 0);
}

/*
 * Orders the rows of a run of equal hashes (ord[0..n), row numbers in the low 32 bits, spine
 * order) by key, time and spine order: the rows of a key become contiguous and time-ordered.
 */
static void
order_run(PitPlan *p, PitView *v, PitRawRows *r, uint64 *ord, int n)
{
	PitRunRow	stackrows[16];
	PitRunRow  *rows = n <= 16 ? stackrows : palloc(sizeof(PitRunRow) * n);
	int			ngroups = 0;
	uint32		reps[16];
	uint32	   *rep = n <= 16 ? reps : palloc(sizeof(uint32) * n);

	for (int k = 0; k < n; k++)
	{
		uint32		i = (uint32) ord[k];
		int			g;

		for (g = 0; g < ngroups; g++)
			if (pit_keys_equal(v, &r->keys[(Size) rep[g] * v->nkeys], &r->keys[(Size) i * v->nkeys]))
				break;
		if (g == ngroups)
			rep[ngroups++] = i;
		rows[k].group = g;
		rows[k].te = pit_to_dom(r->ts[i], p->spine_ts_type, v->dom_tz_event);
		rows[k].i = i;
	}
	if (n <= 16)
	{
		for (int k = 1; k < n; k++)
		{
			PitRunRow	x = rows[k];
			int			j = k;

			while (j > 0 && run_row_cmp(&rows[j - 1], &x) > 0)
			{
				rows[j] = rows[j - 1];
				j--;
			}
			rows[j] = x;
		}
	}
	else
		qsort(rows, n, sizeof(PitRunRow), run_row_cmp);
	for (int k = 0; k < n; k++)
		ord[k] = (ord[k] & ~(uint64) PG_UINT32_MAX) | rows[k].i;
	if (rows != stackrows)
		pfree(rows);
	if (rep != reps)
		pfree(rep);
}

/*
 * Turns the rows read for a view into its slots, ordered by (hash, key, time, spine order), its
 * key table (filled in hash order, so almost sequentially) and the bloom filter of its keys.
 */
static void
finish_view(PitPlan *p, PitView *v, PitRawRows *r, int nrows, MemoryContext bcxt)
{
	int			n = r->n;
	uint64	   *ord = pit_alloc_big(sizeof(uint64) * Max(n, 1));
	uint64	   *tmp = pit_alloc_big(sizeof(uint64) * Max(n, 1));
	int			nkeys = 0;

	for (int i = 0; i < n; i++)
		ord[i] = ((uint64) r->hash[i] << 32) | (uint32) i;
	radix_sort_u64(ord, n, tmp, 32, bcxt);
	for (int k = 0; k < n;)
	{
		int			j = k + 1;

		while (j < n && (ord[j] >> 32) == (ord[k] >> 32))
			j++;
		if (j - k > 1)
			order_run(p, v, r, &ord[k], j - k);
		k = j;
	}
	/* key boundaries: a new hash or, within a hash, a new key */
	for (int k = 0; k < n; k++)
		if (k == 0 || (ord[k] >> 32) != (ord[k - 1] >> 32) ||
			!pit_keys_equal(v, &r->keys[(Size) (uint32) ord[k] * v->nkeys],
							&r->keys[(Size) (uint32) ord[k - 1] * v->nkeys]))
		{
			tmp[nkeys++] = (uint64) k;
		}
	alloc_table(v, nkeys);
	v->slots = pit_alloc_big(sizeof(PitSlot) * Max(n, 1));
	v->nslots = n;
	for (int k = 0; k < n; k++)
	{
		PitSlot    *s = &v->slots[k];
		uint32		i = (uint32) ord[k];

		memset(s, 0, sizeof(PitSlot));
		s->row = r->row[i];
		s->ts = r->ts[i];
		s->te = pit_to_dom(s->ts, p->spine_ts_type, v->dom_tz_event);
		s->tc = v->col_created >= 0 ? pit_to_dom(s->ts, p->spine_ts_type, v->dom_tz_created) : 0;
	}
	for (int g = 0; g < nkeys; g++)
	{
		int			k = (int) tmp[g];
		int			end = g + 1 < nkeys ? (int) tmp[g + 1] : n;
		uint32		i = (uint32) ord[k];
		PitEntry   *e = pit_lookup_key(v, &r->keys[(Size) i * v->nkeys], r->hash[i], true);

		e->start = k;
		e->count = end - k;
	}

	{
		uint32		bits = 1 << 16;
		uint32		lg = 16;

		while (bits < (uint32) v->nentries * 4 && lg < 31)
		{
			bits <<= 1;
			lg++;
		}
		v->bloom_shift = 32 - lg;
		v->bloom = fs_alloc_random(CurrentMemoryContext, bits / 8);
		memset(v->bloom, 0, bits / 8);
		for (uint32 i = 0; i <= v->mask; i++)
		{
			PitEntry   *e = PIT_ENTRY_AT(v, i);

			if (e->count > 0)
			{
				uint32		b = (e->hash * 0x9E3779B1U) >> v->bloom_shift;

				v->bloom[b >> 6] |= UINT64CONST(1) << (b & 63);
			}
		}
	}
	v->bump_ptr = v->bump_end = NULL;
	v->winner = pit_alloc_big(sizeof(PitRow *) * Max(nrows, 1));
	memset(v->winner, 0, sizeof(PitRow *) * Max(nrows, 1));
}

/*
 * A spine key value as a value of the view's key type (see PitKeyConv), allocated in the current
 * context: integers are hashed and compared by their Datum bits, so a narrower spine integer must
 * become exactly the Datum the source's column yields.
 */
static Datum
spine_key_value(PitView *v, int j, Datum d)
{
	int64		x;

	switch (v->spine_conv[j])
	{
		case PIT_KEY_AS_IS:
			return datumCopy(d, v->key_byval[j], v->key_len[j]);
		case PIT_KEY_FROM_INT2:
			x = DatumGetInt16(d);
			break;
		case PIT_KEY_FROM_INT4:
			x = DatumGetInt32(d);
			break;
		case PIT_KEY_FROM_BPCHAR:
			return DirectFunctionCall1(rtrim1, d);
		case PIT_KEY_FROM_NAME:
			return DirectFunctionCall1(name_text, d);
		default:
			elog(ERROR, "unexpected spine key conversion %d", (int) v->spine_conv[j]);
	}
	switch (v->key_type[j])
	{
		case INT8OID:
			return Int64GetDatum(x);
		case INT4OID:
			return Int32GetDatum((int32) x);
		default:
			elog(ERROR, "unexpected key type %u for a widened spine key", v->key_type[j]);
	}
	return (Datum) 0;			/* keep compiler quiet */
}

/*
 * Reads up to maxrows spine rows into every view's key table and slots (arrays sized for
 * caprows, grown on demand); returns the count.
 */
int
pit_build_batch(PitPlan *p, PitSpineReader *rd, int maxrows, int caprows, MemoryContext bcxt)
{
	MemoryContext old = MemoryContextSwitchTo(bcxt);
	int			nrows = 0;
	int			cap = Max(Min(maxrows, caprows), 1);
	PitRawRows *raw = palloc0(sizeof(PitRawRows) * Max(p->nviews, 1));

	for (int vi = 0; vi < p->nviews; vi++)
		raw_alloc(p->views[vi], &raw[vi], cap);

	while (nrows < maxrows && pit_spine_next(rd))
	{
		Datum		ts = rd->vals[p->spine_ts];
		bool		tsnull = rd->nulls[p->spine_ts];

		if (nrows == cap)
		{
			cap = (int) Min((int64) maxrows, (int64) cap * 2);
			for (int vi = 0; vi < p->nviews; vi++)
				raw_alloc(p->views[vi], &raw[vi], cap);
		}

		for (int vi = 0; vi < p->nviews; vi++)
		{
			PitView    *v = p->views[vi];
			PitRawRows *r = &raw[vi];
			Datum	   *k = &r->keys[(Size) r->n * v->nkeys];
			bool		anynull = tsnull;

			for (int j = 0; j < v->nkeys; j++)
				anynull |= rd->nulls[v->spine_key[j]];
			if (anynull)
				continue;		/* no slot: NULL features */
			for (int j = 0; j < v->nkeys; j++)
				k[j] = spine_key_value(v, j, rd->vals[v->spine_key[j]]);
			r->hash[r->n] = pit_hash_keys(v, k);
			r->ts[r->n] = DatumGetInt64(ts);
			r->row[r->n] = nrows;
			r->n++;
		}
		nrows++;
	}

	for (int vi = 0; vi < p->nviews; vi++)
		finish_view(p, p->views[vi], &raw[vi], nrows, bcxt);
	MemoryContextSwitchTo(old);
	return nrows;
}

/*
 * Error context of a spine query: a syntax error points into spine_query, not into the calling
 * statement (as SPI does for the queries it runs), and every other error says where it came from.
 */
static void
spine_query_context(void *arg)
{
	const char *query = arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(query);
	}
	errcontext("spine_query");
}

/*
 * Runs fn(query, arg) with the transaction read-only, so that nothing a spine query calls (a
 * volatile function, say) can write: reading the spine must change nothing. On an error the
 * transaction's abort restores the setting.
 */
static void
with_spine_query(const char *query, void (*fn) (const char *query, void *arg), void *arg)
{
	ErrorContextCallback cb;
	int			save_nestlevel = NewGUCNestLevel();

	cb.callback = spine_query_context;
	cb.arg = unconstify(char *, query);
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	(void) set_config_option("transaction_read_only", "on", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	fn(query, arg);
	AtEOXact_GUC(true, save_nestlevel);
	error_context_stack = cb.previous;
}

/* The refusal of a spine query that is not one read-only SELECT; detail says what it is. */
static void
refuse_spine_query(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("spine_query must be a single read-only SELECT"),
			 errdetail("%s", detail),
			 errhint("Give one SELECT (or VALUES, TABLE, WITH ... SELECT) without FOR UPDATE/SHARE or a data-modifying WITH.")));
}

/*
 * Checks the query's raw form first (before any name is looked up or any lock taken): exactly
 * one statement, a SELECT that creates nothing. What only planning shows (row locks in
 * subqueries, data-modifying WITH) is checked on the plan, before it runs.
 */
static SPIPlanPtr
prepare_spine_query(const char *query)
{
	List	   *raw = pg_parse_query(query);
	Node	   *stmt;
	SPIPlanPtr	plan;
	CachedPlan *cplan;
	ListCell   *lc;

	if (list_length(raw) != 1)
		refuse_spine_query(list_length(raw) == 0 ? "It holds no statement." :
						   psprintf("It holds %d statements.", list_length(raw)));
	stmt = linitial_node(RawStmt, raw)->stmt;
	if (!IsA(stmt, SelectStmt))
		refuse_spine_query(psprintf("The statement is %s.", GetCommandTagName(CreateCommandTag(stmt))));
	if (((SelectStmt *) stmt)->intoClause != NULL)
		refuse_spine_query("SELECT INTO creates a table.");

	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for spine_query: %s", SPI_result_code_string(SPI_result));
	cplan = SPI_plan_get_cached_plan(plan);
	if (cplan == NULL)
		elog(ERROR, "spine_query has no single plan");
	foreach(lc, cplan->stmt_list)
	{
		PlannedStmt *ps = lfirst_node(PlannedStmt, lc);

		if (ps->commandType != CMD_SELECT || ps->utilityStmt != NULL)
			refuse_spine_query("It is not a SELECT once rewritten.");
		if (ps->hasModifyingCTE)
			refuse_spine_query("It modifies data in a WITH clause.");
		if (ps->rowMarks != NIL)
			refuse_spine_query("It locks rows (FOR UPDATE or FOR SHARE).");
	}
	ReleaseCachedPlan(cplan, NULL);
	return plan;
}

typedef struct SpineDescArg
{
	MemoryContext cxt;			/* where the copy goes: the plan outlives SPI */
	TupleDesc	desc;
} SpineDescArg;

static void
describe_spine_query(const char *query, void *arg)
{
	SpineDescArg *a = arg;
	SPIPlanPtr	plan = prepare_spine_query(query);
	CachedPlanSource *ps = linitial(SPI_plan_get_plan_sources(plan));
	MemoryContext old = MemoryContextSwitchTo(a->cxt);

	a->desc = CreateTupleDescCopy(ps->resultDesc);
	MemoryContextSwitchTo(old);
}

/* See pit_join_int.h: the result columns of a spine query, checked to be a read-only SELECT. */
TupleDesc
pit_spine_query_desc(const char *query)
{
	SpineDescArg a = {CurrentMemoryContext, NULL};

	SPI_connect();
	with_spine_query(query, describe_spine_query, &a);
	SPI_finish();
	return a.desc;
}

typedef struct SpineStoreArg
{
	Tuplestorestate *store;
	TupleDesc	desc;
} SpineStoreArg;

static void
store_spine_row(void *arg, Datum *vals, bool *nulls)
{
	SpineStoreArg *a = arg;

	tuplestore_putvalues(a->store, a->desc, vals, nulls);
}

/* Runs the spine query once, as the caller, under the active snapshot, into the store. */
static void
read_spine_query(const char *query, void *arg)
{
	SpineStoreArg *a = arg;
	SPIPlanPtr	plan = prepare_spine_query(query);
	Portal		portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	Datum	   *vals = palloc(sizeof(Datum) * Max(a->desc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(a->desc->natts, 1));

	for (;;)
	{
		bool		same;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		/* planned again since: the rows must still have the columns the join was planned for */
		same = SPI_tuptable->tupdesc->natts == a->desc->natts;
		for (int c = 0; same && c < a->desc->natts; c++)
			same = TupleDescAttr(SPI_tuptable->tupdesc, c)->atttypid == TupleDescAttr(a->desc, c)->atttypid;
		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("spine_query returned other columns than when the join was planned")));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vals, nulls);
			tuplestore_putvalues(a->store, a->desc, vals, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

/* Reads a spine that is not a plain table through SPI into store (under the active snapshot). */
void
pit_read_spine_spi(PitPlan *p, Tuplestorestate *store)
{
	int			natts = p->spine_desc->natts;
	char	  **cols;
	SpineStoreArg a = {store, p->spine_desc};

	if (p->spine_query != NULL)
	{
		SPI_connect();
		with_spine_query(p->spine_query, read_spine_query, &a);
		SPI_finish();
		return;
	}
	cols = palloc(sizeof(char *) * Max(natts, 1));
	for (int i = 0; i < natts; i++)
		cols[i] = NameStr(TupleDescAttr(p->spine_desc, i)->attname);
	(void) pit_spi_read(p->spine_relid, cols, natts, store_spine_row, &a);
	pfree(cols);
}

/*
 * One spine row's term of the checksum: exactly hash_record_extended(row, 0) of
 * utils/adt/rowtypes.c, so that SQL can recompute it: per column the type's extended hash with
 * seed 0 under the column's collation (0 for NULL), combined as result * 31 + hash.
 */
uint64
pit_spine_row_hash(PitPlan *p, const Datum *vals, const bool *nulls)
{
	uint64		result = 0;

	for (int i = 0; i < p->spine_desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(p->spine_desc, i);
		uint64		h = 0;

		if (!nulls[i])
		{
			TypeCacheEntry *tc = lookup_type_cache(att->atttypid, TYPECACHE_HASH_EXTENDED_PROC_FINFO);
			LOCAL_FCINFO(fc, 2);

			InitFunctionCallInfoData(*fc, &tc->hash_extended_proc_finfo, 2, att->attcollation, NULL, NULL);
			fc->args[0].value = vals[i];
			fc->args[0].isnull = false;
			fc->args[1].value = Int64GetDatum(0);
			fc->args[1].isnull = false;
			h = DatumGetUInt64(FunctionCallInvoke(fc));
		}
		result = (result << 5) - result + h;
	}
	return result;
}
