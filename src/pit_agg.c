/*
 * pit_agg.c — the training path of aggregation views: for one batch of the point-in-time join,
 * every spine row's windowed aggregates (agg.h), computed in C.
 *
 * The batch's keys are already in the view's key table, with each key's spine rows as a run of
 * slots in time order (pit_spine.c). The source is read once: plain tables through the table AM,
 * the rest through SPI (the executor applies views, row-level security and the view's filter);
 * the events of the batch's keys are kept,
 * grouped by key with a counting sort on the key's table cell, each key's run sorted into the
 * evaluation order, and evaluated against the key's spine times with the sliding evaluator
 * (fs_agg_eval_many): two pointers per window, one pass per key. Keys of the batch without
 * events share one result row (count 0, the rest NULL).
 *
 * Memory: the events kept are bounded by half the hash memory limit. When a read would exceed
 * it, the key hash range being read is split in four and each quarter is read on its own (the
 * key table is ordered by hash, so a hash range is a set of whole keys); only a single key with
 * more events than the limit can exceed it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "agg.h"
#include "pit_join_int.h"

/* The events of one read, flat, with the table cell of each event's key. */
typedef struct AggRead
{
	FsAggEvents evs;
	int32	   *cell;
	int			cellcap;
	Size		bytes;			/* estimate of the memory they hold */
} AggRead;

/* The SELECT that reads a view's events: keys, event time, [created time], arguments, [filter]. */
static char *
events_query(PitView *v)
{
	FsView	   *fv = v->fv;
	FsAggEval  *ev = v->agg;
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int k = 0; k < v->nkeys; k++)
		appendStringInfo(&sql, "%s, ", quote_identifier(fv->entity.keys[k]));
	appendStringInfoString(&sql, quote_identifier(fv->event_time));
	if (v->col_created >= 0)
		appendStringInfo(&sql, ", %s", quote_identifier(fv->created_time));
	for (int a = 0; a < ev->nargs; a++)
		appendStringInfo(&sql, ", %s", quote_identifier(ev->arg_name[a]));
	if (fv->filter)
		appendStringInfo(&sql, ", (%s)", fv->filter);
	appendStringInfo(&sql, " FROM %s", quote_qualified_identifier(fv->source_schema, fv->source_name));
	return sql.data;
}

/* One read of a view's events: the hash range kept, the memory budget, where events go. */
typedef struct ReadCtx
{
	PitView    *v;
	uint32		hlo,
				hhi;
	Size		budget;
	AggRead    *rd;
	MemoryContext rcxt;
	Size		per_event;
	bool		over;			/* the budget was exceeded: stop, the range will be split */
} ReadCtx;

/*
 * One source row, its columns as events_query selects them (keys, event time, [created time],
 * arguments, [filter verdict]): kept when its key is in the batch and in the hash range.
 */
static inline void
offer_row(ReadCtx *rc, Datum *vals, bool *nulls)
{
	PitView    *v = rc->v;
	FsAggEval  *ev = v->agg;
	AggRead    *rd = rc->rd;
	int			nk = v->nkeys;
	int			cc = v->col_created >= 0 ? nk + 1 : -1;
	int			ca = v->col_feat0;
	int			cf = ca + ev->nargs;
	uint32		h;
	PitEntry   *ent;
	MemoryContext old;

	for (int k = 0; k <= nk; k++)
		if (nulls[k])
			return;				/* a NULL key or event time never matches */
	h = pit_hash_keys(v, vals);
	if (h < rc->hlo || h > rc->hhi)
		return;
	ent = pit_lookup_key(v, vals, h, false);
	if (ent == NULL)
		return;
	/* SPI's context is gone at SPI_finish: the events live in the read's own */
	old = MemoryContextSwitchTo(rc->rcxt);
	if (rd->evs.n == rd->cellcap)
	{
		rd->cellcap = Max(rd->cellcap * 2, 1024);
		rd->cell = rd->cell == NULL ? palloc(sizeof(int32) * rd->cellcap) :
			repalloc_huge(rd->cell, sizeof(int32) * rd->cellcap);
	}
	rd->cell[rd->evs.n] = (int32) (((char *) ent - v->etab) / v->estride);
	fs_agg_events_add(ev, &rd->evs,
					  pit_to_dom(DatumGetInt64(vals[nk]), v->event_type, v->dom_tz_event),
					  cc >= 0 && !nulls[cc] ? pit_to_dom(DatumGetInt64(vals[cc]), v->created_type, v->dom_tz_created) : 0,
					  cc < 0 || nulls[cc],
					  v->fv->filter == NULL || (!nulls[cf] && DatumGetBool(vals[cf])),
					  &vals[ca], &nulls[ca]);
	MemoryContextSwitchTo(old);
	rd->bytes += rc->per_event;
	for (int a = 0; a < ev->nargs; a++)
		if (!ev->arg_byval[a] && !nulls[ca + a])
			rd->bytes += MAXALIGN(VARSIZE_ANY(DatumGetPointer(vals[ca + a]))) + 16;
	if (rd->bytes > rc->budget && rc->hlo != rc->hhi)
		rc->over = true;
}

/* Reads through SPI (views, foreign tables, row-level security, a filter): the executor's rows. */
static uint64
read_spi(ReadCtx *rc, const char *sql)
{
	PitView    *v = rc->v;
	int			ncols = v->col_feat0 + v->agg->nargs + (v->fv->filter ? 1 : 0);
	Datum	   *vals = palloc(sizeof(Datum) * ncols);
	bool	   *nulls = palloc(sizeof(bool) * ncols);
	Portal		portal;
	uint64		n = 0;
	int			save_nestlevel;

	SPI_connect();
	/* the filter was deparsed with every name qualified: run it where only pg_catalog is visible */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true, 0);
	while (!rc->over)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		n += SPI_processed;
		for (uint64 i = 0; i < SPI_processed && !rc->over; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vals, nulls);
			offer_row(rc, vals, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	AtEOXact_GUC(true, save_nestlevel);
	SPI_finish();
	pfree(vals);
	pfree(nulls);
	return n;
}

/*
 * Reads plain tables (every leaf of a partitioned source) through the table AM under the
 * statement's snapshot, deforming only the columns the view reads: what the executor would give
 * for a source without row-level security, a filter or anything else to apply (pit_plan.c).
 */
static uint64
read_heap(ReadCtx *rc)
{
	PitView    *v = rc->v;
	int			ncols = v->ncols;
	Datum	   *vals = palloc(sizeof(Datum) * ncols);
	bool	   *nulls = palloc(sizeof(bool) * ncols);
	ListCell   *lc;
	uint64		n = 0;

	foreach(lc, v->leaves)
	{
		PitLeaf    *leaf = lfirst(lc);
		Relation	rel = table_open(leaf->relid, AccessShareLock);
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);

		while (!rc->over && table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			slot_getsomeattrs(slot, leaf->all_max);
			for (int c = 0; c < ncols; c++)
			{
				vals[c] = slot->tts_values[leaf->att[c] - 1];
				nulls[c] = slot->tts_isnull[leaf->att[c] - 1];
			}
			offer_row(rc, vals, nulls);
			if ((++n & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		table_close(rel, AccessShareLock);
	}
	pfree(vals);
	pfree(nulls);
	return n;
}

/* Reads the events of keys whose hash is in [hlo, hhi]; false when they would exceed budget. */
static bool
read_events(PitPlan *p, PitView *v, const char *sql, uint32 hlo, uint32 hhi, Size budget,
			AggRead *rd, MemoryContext rcxt, uint64 *nread)
{
	ReadCtx		rc = {v, hlo, hhi, budget, rd, rcxt, 0, false};

	rc.per_event = sizeof(int64) * 2 + 2 + sizeof(int32) + (sizeof(Datum) + 1) * v->agg->nargs;
	*nread += v->use_spi ? read_spi(&rc, sql) : read_heap(&rc);
	return !rc.over;
}

/* Evaluates every key of [hlo, hhi] that has events; the others keep the shared empty row. */
static void
evaluate(PitPlan *p, PitView *v, AggRead *rd, MemoryContext bcxt)
{
	FsAggEval  *ev = v->agg;
	FsAggEvents *all = &rd->evs;
	int			n = all->n;
	int			na = all->nargs;
	int			ns = ev->nspecs;
	uint32		ncells = v->mask + 1;
	int32	   *start = fs_alloc_huge(CurrentMemoryContext, sizeof(int32) * (ncells + 1), 4 * FS_HUGE_PAGE, true, NULL);
	int		   *perm = fs_alloc_huge(CurrentMemoryContext, sizeof(int) * Max(n, 1), 4 * FS_HUGE_PAGE, false, NULL);
	FsAggEvents s = {0};
	int64	   *ts = NULL,
			   *tcs = NULL;
	Datum	   *out = NULL;
	bool	   *outnull = NULL;
	int			tcap = 0;

	if (n == 0)
		return;
	/* counting sort by key cell: each key's events contiguous */
	for (int i = 0; i < n; i++)
		start[rd->cell[i] + 1]++;
	for (uint32 c = 0; c < ncells; c++)
		start[c + 1] += start[c];
	{
		int32	   *pos = palloc(sizeof(int32) * ncells);

		memcpy(pos, start, sizeof(int32) * ncells);
		for (int i = 0; i < n; i++)
			perm[pos[rd->cell[i]]++] = i;
		pfree(pos);
	}
	s.nargs = na;
	fs_agg_events_reserve(&s, n);
	for (int i = 0; i < n; i++)
	{
		int			k = perm[i];

		s.e[i] = all->e[k];
		s.c[i] = all->c[k];
		s.c_null[i] = all->c_null[k];
		s.pass[i] = all->pass[k];
		memcpy(&s.vals[i * na], &all->vals[k * na], sizeof(Datum) * na);
		memcpy(&s.nulls[i * na], &all->nulls[k * na], sizeof(bool) * na);
	}

	for (uint32 c = 0; c < ncells; c++)
	{
		int			lo = start[c],
					cnt = start[c + 1] - start[c];
		PitEntry   *ent;
		FsAggEvents run;

		if (cnt == 0)
			continue;
		ent = PIT_ENTRY_AT(v, c);
		run.n = run.cap = cnt;
		run.nargs = na;
		run.e = &s.e[lo];
		run.c = &s.c[lo];
		run.c_null = &s.c_null[lo];
		run.pass = &s.pass[lo];
		run.vals = &s.vals[lo * na];
		run.nulls = &s.nulls[lo * na];
		fs_agg_events_sort(ev, &run);
		if (ent->count > tcap)
		{
			tcap = Max(ent->count, 64);
			ts = ts ? repalloc(ts, sizeof(int64) * tcap) : palloc(sizeof(int64) * tcap);
			tcs = tcs ? repalloc(tcs, sizeof(int64) * tcap) : palloc(sizeof(int64) * tcap);
		}
		for (int j = 0; j < ent->count; j++)
		{
			ts[j] = v->slots[ent->start + j].te;
			tcs[j] = v->slots[ent->start + j].tc;
		}
		{
			/* results live as long as the batch */
			MemoryContext old = MemoryContextSwitchTo(bcxt);

			out = palloc(sizeof(Datum) * ns * ent->count);
			outnull = palloc(sizeof(bool) * ns * ent->count);
			fs_agg_eval_many(ev, &run, ts, tcs, ent->count, out, outnull);
			for (int j = 0; j < ent->count; j++)
			{
				PitRow	   *w = palloc0(sizeof(PitRow));

				w->vals = &out[j * ns];
				w->nulls = &outnull[j * ns];
				v->winner[v->slots[ent->start + j].row] = w;
			}
			MemoryContextSwitchTo(old);
		}
	}
}

/*
 * See the file header: fills v->winner[row] for every valid spine row of the batch with its
 * aggregates; returns the source rows read.
 */
uint64
pit_agg_batch(PitPlan *p, PitView *v, MemoryContext bcxt)
{
	FsAggEval  *ev = v->agg;
	char	   *sql = events_query(v);
	Size		budget = Max(get_hash_memory_limit() / 2, 1024 * 1024);
	MemoryContext rcxt = AllocSetContextCreate(CurrentMemoryContext, "aggregation events",
											   ALLOCSET_DEFAULT_SIZES);
	uint64		nread = 0;
	PitRow	   *empty;
	/* hash ranges still to read, as a stack; a range that overflows is split in four */
	uint32		stack_lo[64],
				stack_hi[64];
	int			sp = 0;
	double		expected = 0;
	Size		per_event = sizeof(int64) * 2 + 2 + sizeof(int32) + (sizeof(Datum) + 1) * ev->nargs;
	ListCell   *lc;

	/* keys without events: count 0, everything else NULL (one shared row) */
	{
		MemoryContext old = MemoryContextSwitchTo(bcxt);
		FsAggEvents none = {0};

		empty = palloc0(sizeof(PitRow));
		empty->vals = palloc(sizeof(Datum) * ev->nspecs);
		empty->nulls = palloc(sizeof(bool) * ev->nspecs);
		none.nargs = ev->nargs;
		fs_agg_eval_at(ev, &none, 0, empty->vals, empty->nulls);
		for (int i = 0; i < v->nslots; i++)
			v->winner[v->slots[i].row] = empty;
		MemoryContextSwitchTo(old);
	}

	foreach(lc, v->leaves)
		expected += Max(((PitLeaf *) lfirst(lc))->tuples, 0);
	stack_lo[sp] = 0;
	stack_hi[sp++] = PG_UINT32_MAX;
	while (sp > 0)
	{
		uint32		hlo = stack_lo[--sp],
					hhi = stack_hi[sp];
		AggRead		rd = {0};
		MemoryContext old = MemoryContextSwitchTo(rcxt);

		fs_agg_events_reset(&rd.evs, ev->nargs);
		/* as many events as the source has, up to the budget: a read that never grows its arrays */
		fs_agg_events_reserve(&rd.evs, (int) Min(Min(expected, (double) budget / per_event), (double) INT_MAX / 16));
		if (read_events(p, v, sql, hlo, hhi, budget, &rd, rcxt, &nread) || sp > 60)
			evaluate(p, v, &rd, bcxt);
		else
		{
			uint64		width = ((uint64) hhi - hlo + 1) / 4;

			pit_last_stats.agg_splits++;
			for (int q = 3; q >= 0; q--)
			{
				uint64		qlo = hlo + width * q;
				uint64		qhi = q == 3 ? hhi : qlo + width - 1;

				stack_lo[sp] = (uint32) qlo;
				stack_hi[sp++] = (uint32) Max(qhi, qlo);
			}
		}
		MemoryContextSwitchTo(old);
		pit_last_stats.peak_bytes = Max(pit_last_stats.peak_bytes,
										MemoryContextMemAllocated(p->cxt, true) + MemoryContextMemAllocated(rcxt, true));
		MemoryContextReset(rcxt);
	}
	MemoryContextDelete(rcxt);
	return nread;
}
