/*
 * pit_join.c — the point-in-time ("as-of") join of docs/semantics.md, in C.
 *
 * How it works. Everything is read under the statement's snapshot. Spine rows are processed in
 * batches of consecutive rows sized so that a batch's state fits in the hash memory limit
 * (work_mem * hash_mem_multiplier); a spine table is read by two scans in step (one builds a
 * batch, the other emits it), other spines are first materialized in a tuplestore through SPI.
 * For each batch and each feature view:
 *
 *   1. build: per valid spine row a slot, ordered by (key hash, key, time); an open-addressing
 *      hash table of the view's entity keys in the same hash order, pointing at each key's run
 *      of slots; a bloom filter of the keys;
 *   2. read the source: every leaf of its inheritance tree through the table AM (plain heap:
 *      page by page in place, only keys and times; rows buffered by cache partition of their key
 *      hash and offered one partition at a time, so the table cells and slots they touch stay in
 *      cache), or, for few keys and an index led by the key
 *      columns, one index probe per key; views, foreign tables and tables under row-level
 *      security through an SPI cursor, so that the executor applies their rules. A row whose key
 *      is in the batch is placed into the first slot of its key whose spine time is >= its event
 *      time (and >= its created time with as_of_created); the slot keeps only the best row by
 *      (event_ts, created_ts, features), remembering where it is (TID), and the winners'
 *      features are read at the end in physical order — memory is one row per spine row, never
 *      per history row, and the history is never sorted;
 *   3. as-of merge: per key, walking the slots in time order with a running maximum gives each
 *      spine row the best row whose start time is <= its time; the TTL bound is then checked on
 *      that row alone (any other qualifying row has an older event time);
 *   4. emit the batch's rows in spine order.
 *
 * Cost: O(S log s + B * H) time for S spine rows, s per key, H history rows and B batches
 * (B = 1 when the state fits), memory O(S / B). See docs/semantics.md, "Point-in-time join".
 *
 * This file is the driver (the batch loop above, the emit step and the figures of the last join);
 * each step lives in the file named after it: pit_plan.c (resolve and validate, before anything is
 * read), pit_spine.c (spine readers and step 1), pit_scan.c (step 2), pit_merge.c (row order, the
 * best row per slot and step 3); pit_join_int.h holds what they share.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "portability/instr_time.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "pit_join.h"
#include "pit_join_int.h"

PitStats	pit_last_stats;

/* The join's GUCs, each defined beside the code it steers. */
void
pit_join_init(void)
{
	pit_scan_init();
	pit_parallel_init();
}

/* Adds the time since *t to phase ms[i] and restarts *t. */
static void
phase_done(instr_time *t, int i)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, *t);
	pit_last_stats.phase_ms[i] += INSTR_TIME_GET_MILLISEC(now);
	INSTR_TIME_SET_CURRENT(*t);
}

/* ---------------------------------------------------------------------------------------
 * Execute
 * --------------------------------------------------------------------------------------- */

/* See pit_join.h. */
void
pit_plan_set_emit_slot(PitPlan *p, PitEmitSlotFn fn)
{
	p->emit_slot = fn;
}

/* See pit_join.h: on several cores when pit_parallel.c finds it worth it, else serially. */
uint64
pit_plan_execute(PitPlan *p, PitEmitFn emit, void *arg)
{
	int			nworkers = p->part_n == 0 ? pit_parallel_workers(p) : 0;

	if (nworkers > 0)
		return pit_parallel_execute(p, nworkers, emit, arg);
	return pit_execute_part(p, emit, arg);
}

/* The file header's batches of build, read sources, merge, emit; in a parallel worker, its share of each. */
uint64
pit_execute_part(PitPlan *p, PitEmitFn emit, void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	MemoryContext bcxt = AllocSetContextCreate(p->cxt, "pit join batch", ALLOCSET_DEFAULT_SIZES);
	MemoryContext tmpcxt = AllocSetContextCreate(p->cxt, "pit join row", ALLOCSET_DEFAULT_SIZES);
	Tuplestorestate *store = NULL;
	PitSpineReader build_rd,
				emit_rd;
	int			ncols = p->desc->natts;
	Datum	   *vals = palloc(sizeof(Datum) * ncols);
	bool	   *nulls = palloc(sizeof(bool) * ncols);
	uint64		total = 0;
	uint64		batch_rows;
	size_t		limit = get_hash_memory_limit();
	int			nsp = p->spine_desc->natts;
	instr_time	t;
	double		est;

	if (p->part_n == 0)
		memset(&pit_last_stats, 0, sizeof(pit_last_stats));
	INSTR_TIME_SET_CURRENT(t);
	if (p->spine_spi)
	{
		store = tuplestore_begin_heap(false, false, work_mem);
		pit_read_spine_spi(p, store);
		tuplestore_alloc_read_pointer(store, 0);
	}
	pit_spine_reader_init(&build_rd, p, store, 0);
	pit_spine_reader_init(&emit_rd, p, store, 1);
	if (store != NULL)
		est = (double) tuplestore_tuple_count(store);
	else
	{
		int32	   *widths = palloc0(sizeof(int32) * (RelationGetNumberOfAttributes(build_rd.rel) + 1));
		BlockNumber pages;
		double		allvis;

		estimate_rel_size(build_rd.rel, widths, &pages, &est, &allvis);
	}
	est = Max(est * 1.05 + 16, 1024);
	phase_done(&t, 0);
	/* the history scan's partition buffers (pit_scan.c parts_init) take up to 1/8 of the limit */
	batch_rows = Max((limit - Min(Max(limit / 8, 64 * 1024), 64 * 1024 * 1024)) / Max(p->row_bytes, 1), 1024);
	batch_rows = Min(batch_rows, (uint64) (MaxAllocSize / sizeof(PitSlot) / 2));
	pit_last_stats.batch_rows = batch_rows;

	for (;;)
	{
		int			nrows;
		Size		mem;

		p->batch_start = total;
		nrows = pit_build_batch(p, &build_rd, (int) batch_rows, (int) Min(est, (double) batch_rows), bcxt);

		phase_done(&t, 1);
		if (nrows == 0)
			break;
		for (int vi = 0; vi < p->nviews; vi++)
		{
			PitView    *v = p->views[vi];

			if (v->nentries == 0)
				continue;
			if (v->agg != NULL)
			{
				pit_last_stats.source_rows += pit_agg_batch(p, v, bcxt);
				phase_done(&t, 2);
				continue;
			}
			if (v->use_spi)
				pit_last_stats.source_rows += pit_scan_spi(p, v, bcxt);
			else
				pit_last_stats.source_rows += pit_scan_heap(p, v, bcxt, tmpcxt);
			phase_done(&t, 2);
			if (p->part_n > 1)
			{
				/* merged before the winners were read (pit_par_combine): each slot has its row's */
				for (int j = 0; j < v->nslots; j++)
					if (v->slots[j].best != NULL)
						v->winner[v->slots[j].row] = v->slots[j].best;
			}
			else
				pit_merge_batch(p, v);
			phase_done(&t, 3);
		}
		mem = MemoryContextMemAllocated(p->cxt, true);
		pit_last_stats.peak_bytes = Max(pit_last_stats.peak_bytes, mem);
		pit_last_stats.batches++;

		/* Emit the batch in spine order (the emit reader trails the build reader by one batch). */
		for (int i = 0; i < nrows; i++)
		{
			if (!pit_spine_next(&emit_rd))
				elog(ERROR, "spine ended early");
			if (!pit_par_row_mine(p, emit_rd.ordinal - 1))
				continue;		/* another worker's row */
			memcpy(vals, emit_rd.vals, sizeof(Datum) * nsp);
			memcpy(nulls, emit_rd.nulls, sizeof(bool) * nsp);
			if (p->checksum_on)
			{
				/* the hash functions may detoast: in the row context, reset at once */
				MemoryContext o = MemoryContextSwitchTo(tmpcxt);

				p->checksum += pit_spine_row_hash(p, emit_rd.vals, emit_rd.nulls);
				MemoryContextSwitchTo(o);
				MemoryContextReset(tmpcxt);
			}
			if (i + 8 < nrows)
				for (int vi = 0; vi < p->nviews; vi++)
					if (p->views[vi]->winner[i + 8] != NULL)
						__builtin_prefetch(p->views[vi]->winner[i + 8]);
			for (int k = 0; k < p->nout; k++)
			{
				PitRow	   *w = p->views[p->out[k].view]->winner[i];
				int			f = p->out[k].feat;

				nulls[nsp + k] = w == NULL || w->nulls[f];
				vals[nsp + k] = nulls[nsp + k] ? (Datum) 0 : w->vals[f];
			}
			p->emit_ordinal = emit_rd.ordinal - 1;
			emit(arg, vals, nulls);
		}
		total += nrows;
		MemoryContextReset(bcxt);
		phase_done(&t, 4);
		if (nrows < (int) batch_rows)
			break;
	}
	pit_last_stats.spine_rows = total;
	pit_spine_reader_end(&build_rd);
	pit_spine_reader_end(&emit_rd);
	if (store != NULL)
		tuplestore_end(store);
	MemoryContextSwitchTo(old);
	return total;
}
