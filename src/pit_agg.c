/*
 * pit_agg.c — the training path of aggregation views: for one batch of the point-in-time join,
 * every spine row's windowed aggregates (agg.h), computed in C.
 *
 * The batch's keys are already in the view's key table, with each key's spine rows as a run of
 * slots in time order (pit_spine.c). The source is read once (pit_agg_read.c) into records
 * grouped by cache partition of the key table; each partition's records are grouped by key with
 * a counting sort on the home cell and lookups that stay in cache, each key's run sorted into the
 * evaluation order and evaluated against the key's spine times with the sliding evaluator
 * (fs_agg_eval_many): two pointers per window, one pass per key. Keys of the batch without
 * events share one result row (count 0, the rest NULL).
 *
 * Memory: the events kept are bounded by what the batch leaves of the hash memory limit
 * (work_mem * hash_mem_multiplier), but at least a quarter of it. A read that would exceed it
 * gives up its highest partitions, whose hash range is read again later (the key table is
 * ordered by hash, so a hash range is a set of whole keys); when a single partition exceeds it,
 * its range is split in four and each quarter read on its own. Only a single key with more
 * events than the limit can exceed it.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "agg.h"
#include "pit_agg_read.h"

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

/* A record with the key table entry of its key (NULL: not in the batch, a bloom false positive). */
typedef struct RecEnt
{
	PitEntry   *ent;
	AggRec	   *r;
} RecEnt;

static int
recent_cmp(const void *a, const void *b)
{
	uintptr_t	x = (uintptr_t) ((const RecEnt *) a)->ent,
				y = (uintptr_t) ((const RecEnt *) b)->ent;

	return x < y ? -1 : x > y;
}

/* Evaluates one key's events (recs[0..n)) at each of its spine times; results in bcxt. */
static void
evaluate_key(PitView *v, AggParts *pt, PitEntry *ent, RecEnt *recs, int n, FsAggEvents *run,
			 int64 **ts, int64 **tcs, int *tcap, MemoryContext bcxt)
{
	FsAggEval  *ev = v->agg;
	int			na = ev->nargs;
	int			ns = ev->nspecs;
	Datum	   *out;
	bool	   *outnull;
	PitRow	   *rows;
	MemoryContext old;

	run->n = 0;
	fs_agg_events_reserve(run, n);
	for (int i = 0; i < n; i++)
	{
		AggRec	   *r = recs[i].r;

		run->e[i] = r->e;
		run->c[i] = AGG_REC_C(pt, r);
		run->c_null[i] = r->c_null;
		run->pass[i] = r->pass;
		memcpy(&run->vals[i * na], AGG_REC_VALS(pt, r), sizeof(Datum) * na);
		for (int a = 0; a < na; a++)
			run->nulls[i * na + a] = agg_rec_argnull(pt, r, a);
	}
	run->n = n;
	fs_agg_events_sort(ev, run);
	if (ent->count > *tcap)
	{
		*tcap = Max(ent->count, 64);
		*ts = *ts ? repalloc(*ts, sizeof(int64) * *tcap) : palloc(sizeof(int64) * *tcap);
		*tcs = *tcs ? repalloc(*tcs, sizeof(int64) * *tcap) : palloc(sizeof(int64) * *tcap);
	}
	for (int j = 0; j < ent->count; j++)
	{
		(*ts)[j] = v->slots[ent->start + j].te;
		(*tcs)[j] = v->slots[ent->start + j].tc;
	}
	/* results live as long as the batch */
	old = MemoryContextSwitchTo(bcxt);
	out = pit_bump_alloc(v, sizeof(Datum) * ns * ent->count, bcxt);
	outnull = pit_bump_alloc(v, sizeof(bool) * ns * ent->count, bcxt);
	rows = pit_bump_alloc(v, sizeof(PitRow) * ent->count, bcxt);
	memset(rows, 0, sizeof(PitRow) * ent->count);
	fs_agg_eval_many(ev, run, *ts, *tcs, ent->count, out, outnull);
	for (int j = 0; j < ent->count; j++)
	{
		rows[j].vals = &out[j * ns];
		rows[j].nulls = &outnull[j * ns];
		v->winner[v->slots[ent->start + j].row] = &rows[j];
	}
	MemoryContextSwitchTo(old);
}

/*
 * Evaluates every key of the read that has events, partition by partition: a partition's
 * records are grouped by home cell with a counting sort (its cells are a small range of the key
 * table, in cache), looked up, and grouped by key within a cell; keys without events keep the
 * shared empty row.
 */
static void
evaluate(PitView *v, AggParts *pt, MemoryContext bcxt)
{
	int			ncell = 1 << pt->pshift;
	int32	   *start = palloc(sizeof(int32) * (ncell + 1));
	RecEnt	   *ord = NULL;
	int			ordcap = 0;
	FsAggEvents run = {0};
	int64	   *ts = NULL,
			   *tcs = NULL;
	int			tcap = 0;

	fs_agg_events_reset(&run, v->agg->nargs);
	for (int q = 0; q < pt->np; q++)
	{
		uint32		base = pt->clo + ((uint32) q << pt->pshift);
		int			n = 0;

		if (pt->head[q] == NULL)
			continue;
		for (AggChunk *ch = pt->head[q]; ch; ch = ch->next)
			n += ch->n;
		if (n > ordcap)
		{
			ordcap = Max(n, 1024);
			ord = ord ? repalloc_huge(ord, sizeof(RecEnt) * ordcap) : palloc_extended(sizeof(RecEnt) * ordcap, MCXT_ALLOC_HUGE);
		}
		/* counting sort by home cell */
		memset(start, 0, sizeof(int32) * (ncell + 1));
		for (AggChunk *ch = pt->head[q]; ch; ch = ch->next)
			for (int i = 0; i < ch->n; i++)
				start[AGG_HOME(v, AGG_REC_AT(pt, ch, i)->h) - base + 1]++;
		for (int c = 0; c < ncell; c++)
			start[c + 1] += start[c];
		for (AggChunk *ch = pt->head[q]; ch; ch = ch->next)
			for (int i = 0; i < ch->n; i++)
			{
				AggRec	   *r = AGG_REC_AT(pt, ch, i);

				ord[start[AGG_HOME(v, r->h) - base]++].r = r;
			}
		/* start[c] is now the end of cell c's records */
		for (int c = 0, lo = 0; c < ncell; lo = start[c++])
		{
			int			hi = start[c];
			bool		one = true;

			if (hi == lo)
				continue;
			for (int i = lo; i < hi; i++)
			{
				AggRec	   *r = ord[i].r;

				ord[i].ent = i > lo && r->h == ord[i - 1].r->h &&
					pit_keys_equal(v, AGG_REC_KEYS(pt, r), AGG_REC_KEYS(pt, ord[i - 1].r)) ? ord[i - 1].ent :
					pit_lookup_key(v, AGG_REC_KEYS(pt, r), r->h, false);
				one &= ord[i].ent == ord[lo].ent;
			}
			if (!one)
				qsort(&ord[lo], hi - lo, sizeof(RecEnt), recent_cmp);
			for (int i = lo; i < hi;)
			{
				int			j = i + 1;

				while (j < hi && ord[j].ent == ord[i].ent)
					j++;
				if (ord[i].ent != NULL)
					evaluate_key(v, pt, ord[i].ent, &ord[i], j - i, &run, &ts, &tcs, &tcap, bcxt);
				i = j;
			}
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
	/* what the batch leaves of the hash memory limit, but at least a quarter of it */
	Size		limit = get_hash_memory_limit();
	Size		held = MemoryContextMemAllocated(p->cxt, true);
	Size		budget = Max(Max(limit > held ? limit - held : 0, limit / 4), 1024 * 1024);
	MemoryContext rcxt = AllocSetContextCreate(CurrentMemoryContext, "aggregation events",
											   ALLOCSET_DEFAULT_SIZES);
	uint64		nread = 0;
	PitRow	   *empty;
	/* hash ranges still to read, as a stack; a range that overflows is split in four */
	uint32		stack_lo[256],
				stack_hi[256];
	int			sp = 0;
	double		expected = 0;
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
		AggParts	pt;
		MemoryContext old = MemoryContextSwitchTo(rcxt);

		nread += pit_agg_read(&pt, v, sql, hlo, hhi, budget, expected, rcxt);
		if (pt.hhi < hhi)
		{
			/* the read gave up its highest partitions: read them later */
			stack_lo[sp] = pt.hhi + 1;
			stack_hi[sp++] = hhi;
			pit_last_stats.agg_partial++;
		}
		if (!pt.over || sp > 250)	/* (a bound never reached: 16 levels of four) */
			evaluate(v, &pt, bcxt);
		else
		{
			uint64		width = ((uint64) pt.hhi - hlo + 1) / 4;

			pit_last_stats.agg_splits++;
			for (int q = 3; q >= 0; q--)
			{
				uint64		qlo = hlo + width * q;
				uint64		qhi = q == 3 ? pt.hhi : qlo + width - 1;

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
