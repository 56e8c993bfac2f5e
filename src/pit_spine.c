/*
 * pit_spine.c — the spine side of a point-in-time join: reading spine rows (two readers in
 * step, one building batches and one emitting them; a spine that is not a plain table is first
 * materialized through SPI), and building a batch: per feature view, the open-addressing table of
 * the batch's keys, its bloom filter, and per spine row a slot, with the slots of each key
 * ordered by time. Separate because the memory of a batch (and so the batch size) is decided
 * here, while the source readers only probe what it builds.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pit_join.h"
#include "pit_join_int.h"

/*
 * Allocates a large array in the current context on transparent huge pages where the kernel
 * offers them (madvise mode): the key table and slots are probed at random, and with 4 kB pages
 * both the first touch (page faults) and the TLB misses cost more than the probe itself. Never
 * pfree'd individually; freed with its context.
 */
void *
pit_alloc_big(Size size)
{
#if defined(MADV_HUGEPAGE)
	const Size	huge = 2 * 1024 * 1024;

	if (size >= 4 * huge)
	{
		char	   *raw = palloc_extended(size + huge, MCXT_ALLOC_HUGE);
		char	   *aligned = (char *) TYPEALIGN(huge, raw);

		(void) madvise(aligned, TYPEALIGN_DOWN(huge, size), MADV_HUGEPAGE);
		return aligned;
	}
#endif
	return palloc_extended(Max(size, 1), MCXT_ALLOC_HUGE);
}

/* ---------------------------------------------------------------------------------------
 * Build: the batch's keys and slots.
 * --------------------------------------------------------------------------------------- */
/* Orders idx entries by spine time, then spine order. */
static PitSlot *cmp_slots;

static int
idx_cmp(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	if (cmp_slots[x].te != cmp_slots[y].te)
		return cmp_slots[x].te < cmp_slots[y].te ? -1 : 1;
	return x < y ? -1 : (x > y ? 1 : 0);
}

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
	if (!table_scan_getnextslot(r->scan, ForwardScanDirection, r->slot))
		return false;
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

/* An empty key table for about `rows` keys (load factor at most 3/4). */
static void
alloc_table(PitView *v, int rows)
{
	uint32		cap = 16;

	while (cap < (uint32) rows + (uint32) rows / 3 + 1)
		cap <<= 1;
	v->mask = cap - 1;
	v->estride = MAXALIGN(offsetof(PitEntry, keys) + sizeof(Datum) * v->nkeys);
	v->etab = pit_alloc_big(v->estride * cap);
	for (uint32 i = 0; i < cap; i++)
		PIT_ENTRY_AT(v, i)->count = -1;
	v->nentries = 0;
}

/* Doubles the capacity of a batch being built (the spine was larger than estimated). */
static void
grow_batch(PitView *v, int nrows, int newcap)
{
	PitSlot    *slots = pit_alloc_big(sizeof(PitSlot) * newcap);
	char	   *oldtab = v->etab;
	uint32		oldcap = v->mask + 1;
	Size		stride = v->estride;
	uint32	   *map = pit_alloc_big(sizeof(uint32) * oldcap);

	memcpy(slots, v->slots, sizeof(PitSlot) * nrows);
	v->slots = slots;
	alloc_table(v, newcap);
	for (uint32 i = 0; i < oldcap; i++)
	{
		PitEntry   *o = (PitEntry *) (oldtab + (Size) i * stride);
		uint32		pos;

		if (o->count < 0)
			continue;
		pos = o->hash & v->mask;
		while (PIT_ENTRY_AT(v, pos)->count >= 0)
			pos = (pos + 1) & v->mask;
		memcpy(PIT_ENTRY_AT(v, pos), o, stride);
		map[i] = pos;
		v->nentries++;
	}
	for (int i = 0; i < nrows; i++)
		if (v->slots[i].valid)
			v->slots[i].epos = map[v->slots[i].epos];
}

/*
 * Reads up to maxrows spine rows into every view's key table and slots (sized for caprows,
 * grown on demand); returns the count.
 */
int
pit_build_batch(PitPlan *p, PitSpineReader *rd, int maxrows, int caprows, MemoryContext bcxt)
{
	MemoryContext old = MemoryContextSwitchTo(bcxt);
	int			nrows = 0;
	int			cap = Min(maxrows, caprows);

	for (int vi = 0; vi < p->nviews; vi++)
	{
		alloc_table(p->views[vi], cap);
		p->views[vi]->slots = pit_alloc_big(sizeof(PitSlot) * cap);
	}

	while (nrows < maxrows && pit_spine_next(rd))
	{
		Datum		ts = rd->vals[p->spine_ts];
		bool		tsnull = rd->nulls[p->spine_ts];

		if (nrows == cap)
		{
			cap = (int) Min((int64) maxrows, (int64) cap * 2);
			for (int vi = 0; vi < p->nviews; vi++)
				grow_batch(p->views[vi], nrows, cap);
		}

		for (int vi = 0; vi < p->nviews; vi++)
		{
			PitView    *v = p->views[vi];
			PitSlot    *s = &v->slots[nrows];
			PitEntry   *e;
			bool		anynull = tsnull;

			for (int j = 0; j < v->nkeys; j++)
				anynull |= rd->nulls[v->spine_key[j]];
			s->valid = !anynull;
			s->has_best = false;
			s->best = NULL;
			if (anynull)
				continue;
			{
				Datum		k[FS_MAX_KEYS];
				uint32		h;

				for (int j = 0; j < v->nkeys; j++)
					k[j] = rd->vals[v->spine_key[j]];
				h = pit_hash_keys(v, k);
				e = pit_lookup_key(v, k, h, true);
				s->epos = (uint32) (((char *) e - v->etab) / v->estride);
			}
			if (e->count++ == 0)
				e->start = nrows;
			s->ts = DatumGetInt64(ts);
			s->te = pit_to_dom(s->ts, p->spine_ts_type, v->dom_tz_event);
			s->tc = v->col_created >= 0 ? pit_to_dom(s->ts, p->spine_ts_type, v->dom_tz_created) : 0;
		}
		nrows++;
	}

	/* Keys with several spine rows: their slot numbers, ordered by time, in idx. */
	for (int vi = 0; vi < p->nviews; vi++)
	{
		PitView    *v = p->views[vi];
		int32		pos = 0;

		v->nslots = nrows;
		{
			uint32		bits = 1 << 16;
			uint32		lg = 16;

			while (bits < (uint32) v->nentries * 4 && lg < 31)
			{
				bits <<= 1;
				lg++;
			}
			v->bloom_shift = 32 - lg;
			v->bloom = pit_alloc_big(bits / 8);
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
		v->winner = pit_alloc_big(sizeof(PitRow *) * nrows);
		memset(v->winner, 0, sizeof(PitRow *) * nrows);
		for (uint32 i = 0; i <= v->mask; i++)
		{
			PitEntry   *e = PIT_ENTRY_AT(v, i);

			if (e->count > 1)
			{
				e->start = pos;
				e->fill = 0;
				pos += e->count;
			}
		}
		v->idx = pit_alloc_big(sizeof(int32) * pos);
		if (pos == 0)
			continue;
		for (int i = 0; i < nrows; i++)
		{
			PitEntry   *e;

			if (!v->slots[i].valid)
				continue;
			e = PIT_ENTRY_AT(v, v->slots[i].epos);
			if (e->count > 1)
				v->idx[e->start + e->fill++] = i;
		}
		cmp_slots = v->slots;
		for (uint32 i = 0; i <= v->mask; i++)
		{
			PitEntry   *e = PIT_ENTRY_AT(v, i);

			if (e->count > 1)
				qsort(&v->idx[e->start], e->count, sizeof(int32), idx_cmp);
		}
	}
	MemoryContextSwitchTo(old);
	return nrows;
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

/* Reads a spine that is not a plain table through SPI into store (under the active snapshot). */
void
pit_read_spine_spi(PitPlan *p, Tuplestorestate *store)
{
	int			natts = p->spine_desc->natts;
	char	  **cols = palloc(sizeof(char *) * Max(natts, 1));
	SpineStoreArg a = {store, p->spine_desc};

	for (int i = 0; i < natts; i++)
		cols[i] = NameStr(TupleDescAttr(p->spine_desc, i)->attname);
	(void) pit_spi_read(p->spine_relid, cols, natts, store_spine_row, &a);
	pfree(cols);
}
