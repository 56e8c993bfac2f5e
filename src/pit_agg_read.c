/*
 * pit_agg_read.c — reading an aggregation view's events for one batch of the point-in-time join
 * (see pit_agg_read.h): plain heap tables page by page (visibility decided once per page,
 * columns at fixed offsets when they can be), other table AMs through slots, and views, filters
 * and row-level security through SPI, where the executor applies them.
 *
 * A row is kept when its key may be in the batch (the batch's bloom filter) and its hash is in
 * the range being read; it is appended to the buffer of its cache partition without looking the
 * key up: a lookup here would be a cache miss per event in a key table of up to hundreds of MB,
 * while pit_agg.c looks keys up partition by partition, in cache.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "agg.h"
#include "huge_alloc.h"
#include "pit_agg_read.h"

/*
 * Sizes the partitions: each covers about pit_partition_bytes() of key table and slots (so
 * its lookups stay in cache), at most 65536 of them; chunks hold about the events a partition
 * is expected to get, so that small reads stay small.
 */
static void
parts_init(AggParts *pt, PitView *v, uint32 hlo, uint32 hhi, Size budget, double expected,
		   MemoryContext cxt)
{
	uint32		chi = AGG_HOME(v, hhi);
	Size		ncells = (Size) v->mask + 1;
	Size		per_cell = Max((ncells * v->estride + (Size) v->nslots * sizeof(PitSlot)) / ncells, 1);
	Size		target = pit_partition_bytes();
	double		per_part;

	memset(pt, 0, sizeof(AggParts));
	pt->v = v;
	pt->hlo = hlo;
	pt->hhi = hhi;
	pt->clo = AGG_HOME(v, hlo);
	pt->budget = budget;
	pt->cxt = cxt;
	while (((Size) 2 << pt->pshift) * per_cell <= target && pt->pshift < 31)
		pt->pshift++;
	while ((((uint64) chi - pt->clo) >> pt->pshift) >= 65536)
		pt->pshift++;
	pt->np = (int) (((uint64) chi - pt->clo) >> pt->pshift) + 1;
	pt->koff = v->col_created >= 0 ? 1 : 0;
	pt->aoff = pt->koff + v->nkeys;
	pt->stride = MAXALIGN(offsetof(AggRec, d) + sizeof(Datum) * (pt->aoff + v->agg->nargs) +
						  (v->agg->nargs > 16 ? sizeof(bool) * v->agg->nargs : 0));
	pt->expected = Max(expected, 1);
	per_part = expected / pt->np;
	pt->chunk_recs = (int) Max(4, Min(Min(per_part + 16, (double) (64 * 1024) / pt->stride),
									  (double) budget / 4 / pt->np / pt->stride));
	pt->chunk_bytes = MAXALIGN(offsetof(AggChunk, recs) + pt->stride * pt->chunk_recs);
	pt->head = MemoryContextAllocZero(cxt, sizeof(AggChunk *) * pt->np);
	pt->precs = MemoryContextAllocZero(cxt, sizeof(Size) * pt->np);
	pt->pbyref = MemoryContextAllocZero(cxt, sizeof(Size) * pt->np);
}

/*
 * A new chunk for partition q: one given up by a narrowed read, or cut from a slab on huge pages
 * (first touches are most of a large read's page faults).
 */
static AggChunk *
new_chunk(AggParts *pt, int q)
{
	Size		sz = pt->chunk_bytes;
	AggChunk   *ch;

	if (pt->free != NULL)
	{
		ch = pt->free;
		pt->free = ch->next;
	}
	else
	{
		if (pt->slab_left < sz)
		{
			/* up to 16 huge pages: aligning a slab to a huge page costs one more */
			Size		slab = Max(sz, Min(16 * FS_HUGE_PAGE, Max((Size) 64 * 1024, sz * pt->np)));

			pt->slab = fs_alloc_huge(pt->cxt, slab, FS_HUGE_PAGE, false, NULL);
			pt->slab_left = slab;
		}
		ch = (AggChunk *) pt->slab;
		pt->slab += sz;
		pt->slab_left -= sz;
	}
	ch->n = 0;
	ch->next = pt->head[q];
	pt->head[q] = ch;
	pt->bytes += sz;
	return ch;
}

/*
 * The read outgrew its budget: gives up the highest partitions until the records of those kept,
 * grown in proportion to the rows still to come, fit (keeping at least one); hhi becomes the
 * highest hash of the partitions kept. Their chunks are reused; their by-reference values stay
 * allocated and count against the budget. With one partition left, stops the read (over).
 */
static void
narrow(AggParts *pt)
{
	PitView    *v = pt->v;
	double		f = Min(Max(pt->offered / pt->expected, 0.01), 1.0);
	double		target = pt->budget > pt->waste ? (pt->budget - pt->waste) * 0.9 : 0;
	double		projected = 0;
	int			keep = 0;

	if (pt->np <= 1)
	{
		pt->over = pt->hlo != pt->hhi;
		return;
	}
	/* the most partitions, from the first, whose projected size fits; at least one, fewer than now */
	while (keep < pt->np - 1)
	{
		projected += Max(pt->precs[keep] / f, (double) pt->chunk_bytes);
		if (keep > 0 && projected > target)
			break;
		keep++;
	}
	while (pt->np > keep)
	{
		int			q = --pt->np;

		while (pt->head[q] != NULL)
		{
			AggChunk   *ch = pt->head[q];

			pt->head[q] = ch->next;
			ch->next = pt->free;
			pt->free = ch;
			pt->bytes -= pt->chunk_bytes;
		}
		pt->bytes -= pt->pbyref[q];
		pt->waste += pt->pbyref[q];
	}
	/* the last hash whose home cell is in a partition kept */
	pt->hhi = (uint32) ((((uint64) pt->clo + ((uint64) pt->np << pt->pshift)) << v->hshift) - 1);
	pt->narrowed++;
}

/* Copies a by-reference value into the read's memory (detoasted: it is compared and added many times). */
static inline Datum
keep_value(AggParts *pt, int q, Datum d, bool byval, int16 len)
{
	MemoryContext old;
	Datum		r;
	Size		sz;

	if (byval)
		return d;
	old = MemoryContextSwitchTo(pt->cxt);
	r = len == -1 ? PointerGetDatum(PG_DETOAST_DATUM_COPY(d)) : datumCopy(d, false, len);
	MemoryContextSwitchTo(old);
	sz = MAXALIGN(len == -1 ? VARSIZE_ANY(DatumGetPointer(r)) : datumGetSize(r, false, len)) + 16;
	pt->bytes += sz;
	pt->precs[q] += sz;
	pt->pbyref[q] += sz;
	return r;
}

/*
 * One source row, its columns as the view orders them (keys, event time, [created time],
 * arguments, [filter verdict]): appended to its partition when its key may be in the batch.
 */
static inline void
offer(AggParts *pt, const Datum *vals, const bool *nulls)
{
	PitView    *v = pt->v;
	FsAggEval  *ev = v->agg;
	int			nk = v->nkeys;
	int			na = ev->nargs;
	int			cc = v->col_created >= 0 ? nk + 1 : -1;
	int			ca = v->col_feat0;
	uint32		h,
				bb;
	int			q;
	AggChunk   *ch;
	AggRec	   *r;

	pt->offered++;
	for (int k = 0; k <= nk; k++)
		if (nulls[k])
			return;				/* a NULL key or event time never matches */
	h = pit_hash_keys(v, vals);
	if (h < pt->hlo || h > pt->hhi)
		return;
	bb = (h * 0x9E3779B1U) >> v->bloom_shift;
	if ((v->bloom[bb >> 6] & (UINT64CONST(1) << (bb & 63))) == 0)
		return;					/* key not in this batch */
	q = (int) ((AGG_HOME(v, h) - pt->clo) >> pt->pshift);
	ch = pt->head[q];
	if (ch == NULL || ch->n == pt->chunk_recs)
		ch = new_chunk(pt, q);
	r = AGG_REC_AT(pt, ch, ch->n++);
	pt->precs[q] += pt->stride;
	r->h = h;
	r->e = pit_to_dom(DatumGetInt64(vals[nk]), v->event_type, v->dom_tz_event);
	r->c_null = cc < 0 || nulls[cc];
	if (cc >= 0)
		r->d[0] = Int64GetDatum(r->c_null ? 0 : pit_to_dom(DatumGetInt64(vals[cc]), v->created_type, v->dom_tz_created));
	r->pass = v->fv->filter == NULL || (!nulls[ca + na] && DatumGetBool(vals[ca + na]));
	for (int k = 0; k < nk; k++)
		r->d[pt->koff + k] = keep_value(pt, q, vals[k], v->key_byval[k], v->key_len[k]);
	r->nullbits = 0;
	for (int a = 0; a < na; a++)
	{
		bool		isnull = nulls[ca + a];

		if (na <= 16)
			r->nullbits |= (uint16) isnull << a;
		else
			((bool *) &r->d[pt->aoff + na])[a] = isnull;
		r->d[pt->aoff + a] = isnull ? (Datum) 0 : keep_value(pt, q, vals[ca + a], ev->arg_byval[a], ev->arg_len[a]);
	}
	if (pt->bytes + pt->waste > pt->budget)
		narrow(pt);
}

/* Views, foreign tables, row-level security, a filter: the executor's rows, through SPI. */
static uint64
read_spi(AggParts *pt, const char *sql)
{
	PitView    *v = pt->v;
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
	while (!pt->over)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		n += SPI_processed;
		for (uint64 i = 0; i < SPI_processed && !pt->over; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vals, nulls);
			offer(pt, vals, nulls);
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

/* A leaf of another table AM (or under a non-MVCC snapshot): through slots. */
static uint64
read_slots(AggParts *pt, PitLeaf *leaf, Relation rel, MemoryContext tmpcxt)
{
	PitView    *v = pt->v;
	Datum	   *vals = palloc(sizeof(Datum) * v->ncols);
	bool	   *nulls = palloc(sizeof(bool) * v->ncols);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	uint64		n = 0;

	while (!pt->over && table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old;

		slot_getsomeattrs(slot, leaf->all_max);
		for (int c = 0; c < v->ncols; c++)
		{
			vals[c] = slot->tts_values[leaf->att[c] - 1];
			nulls[c] = slot->tts_isnull[leaf->att[c] - 1];
		}
		old = MemoryContextSwitchTo(tmpcxt);	/* hashing may detoast a key */
		offer(pt, vals, nulls);
		MemoryContextSwitchTo(old);
		if ((++n & 4095) == 0)
		{
			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(tmpcxt);
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	pfree(vals);
	pfree(nulls);
	return n;
}

/*
 * A plain heap leaf, page by page: the view's columns are taken at fixed offsets when every one
 * has a fixed offset and length and the tuple has no NULLs (the common case of integer keys,
 * times and numeric arguments), else with heap_getattr.
 */
static uint64
read_heap_pages(AggParts *pt, PitLeaf *leaf, Relation rel, MemoryContext tmpcxt)
{
	PitView    *v = pt->v;
	int			ncols = v->ncols;
	TupleDesc	tdesc = RelationGetDescr(rel);
	TableScanDesc scan = table_beginscan_strat(rel, GetActiveSnapshot(), 0, NULL, true, false);
	HeapScanDesc hscan = (HeapScanDesc) scan;
	int		   *off = palloc(sizeof(int) * ncols);
	int16	   *len = palloc(sizeof(int16) * ncols);
	Datum	   *vals = palloc(sizeof(Datum) * ncols);
	bool	   *nulls = palloc(sizeof(bool) * ncols);
	bool		fast = true;
	uint64		n = 0;

	for (int c = 0; c < ncols; c++)
	{
		Form_pg_attribute a = TupleDescAttr(tdesc, leaf->att[c] - 1);

		off[c] = pit_fixed_offset(tdesc, leaf->att[c]);
		len[c] = a->attlen;
		if (off[c] < 0 || !a->attbyval)
			fast = false;
	}
	for (BlockNumber blk = 0; blk < hscan->rs_nblocks && !pt->over; blk++)
	{
		Page		page;
		int			nt;
		MemoryContext old;

		if ((blk & 63) == 63)
			MemoryContextReset(tmpcxt);
		heapgetpage(scan, blk); /* checks for interrupts; its allocations belong to the scan */
		page = BufferGetPage(hscan->rs_cbuf);
		nt = hscan->rs_ntuples;
		old = MemoryContextSwitchTo(tmpcxt);	/* hashing may detoast a key */
		for (int t = 0; t < nt && !pt->over; t++)
		{
			OffsetNumber offnum = hscan->rs_vistuples[t];
			ItemId		lp = PageGetItemId(page, offnum);
			HeapTupleHeader th = (HeapTupleHeader) PageGetItem(page, lp);

			if (t + 16 < nt)
			{
				char	   *ahead = (char *) page + ItemIdGetOffset(PageGetItemId(page, hscan->rs_vistuples[t + 16]));

				__builtin_prefetch(ahead);
				__builtin_prefetch(ahead + 48);
			}
			n++;
			pit_tuple_columns(th, lp, blk, offnum, leaf->relid, tdesc, fast, leaf->all_max, ncols, leaf->att,
							  off, len, vals, nulls);
			offer(pt, vals, nulls);
		}
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	MemoryContextReset(tmpcxt);
	return n;
}

/* See pit_agg_read.h. */
uint64
pit_agg_read(AggParts *pt, PitView *v, const char *sql, uint32 hlo, uint32 hhi, Size budget,
			 double expected, MemoryContext cxt)
{
	MemoryContext tmpcxt;
	uint64		n = 0;
	ListCell   *lc;

	parts_init(pt, v, hlo, hhi, budget, expected, cxt);
	if (v->use_spi)
		return read_spi(pt, sql);
	tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "aggregation read", ALLOCSET_DEFAULT_SIZES);
	foreach(lc, v->leaves)
	{
		PitLeaf    *leaf = lfirst(lc);
		Relation	rel = table_open(leaf->relid, AccessShareLock);

		if (pt->over)
			break;
		/* (page mode, which heapgetpage fills, needs an MVCC snapshot) */
		if (rel->rd_tableam == GetHeapamTableAmRoutine() && IsMVCCSnapshot(GetActiveSnapshot()))
			n += read_heap_pages(pt, leaf, rel, tmpcxt);
		else
			n += read_slots(pt, leaf, rel, tmpcxt);
		table_close(rel, AccessShareLock);
	}
	MemoryContextDelete(tmpcxt);
	return n;
}
