/*
 * pit_scan.c — reading the history of a source for one batch and offering each row whose key is
 * in the batch to its slot: plain tables through the table AM (only keys and times deformed,
 * slots remember the winning row's TID and the winners' features are read at the end in
 * physical order), and small batches by probing a key index (views, foreign tables and
 * RLS-protected sources: pit_scan_spi.c). Separate because it is the memory-bound part of
 * the join, with its own tricks (page-at-a-time heap reads, rows buffered by cache partition of
 * the key hash, prefetching pipelines, page-at-a-time winner reads) that the rest need not know.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pit_join.h"
#include "pit_join_int.h"

/* ---- table AM path: slots remember the winning row's TID; features are read at the end ---- */

#define PIT_PROBE_FACTOR 20		/* probe an index when keys * this < rows of the leaf */

typedef struct PitHeapScan
{
	PitView    *v;
	int			nleaves;
	PitLeaf   **leaves;
	Relation   *rels;
	TupleTableSlot **fa;		/* two fetch slots per leaf */
	TupleTableSlot **fb;
	Datum	   *va;
	bool	   *na;
	Datum	   *vb;
	bool	   *nb;
} PitHeapScan;

/* Fetches a row of a leaf by TID under the join's snapshot and extracts its features. */
static void
fetch_features(PitView *v, PitHeapScan *hs, int leaf, ItemPointer tid, TupleTableSlot *slot,
			   Datum *vals, bool *nulls)
{
	PitLeaf    *l = hs->leaves[leaf];

	if (!table_tuple_fetch_row_version(hs->rels[leaf], tid, GetActiveSnapshot(), slot))
		elog(ERROR, "row (%u,%u) of relation %u vanished during a point-in-time join",
			 ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid), l->relid);
	slot_getsomeattrs(slot, l->all_max);
	for (int f = 0; f < v->nfeat; f++)
	{
		vals[f] = slot->tts_values[l->att[v->col_feat0 + f] - 1];
		nulls[f] = slot->tts_isnull[l->att[v->col_feat0 + f] - 1];
	}
}

/* PitFetchFn of pit_par_combine: the features of a row, into the scan's buffers. */
static void
fetch_cb(void *arg, int leaf, ItemPointer tid, bool second, Datum *vals, bool *nulls)
{
	PitHeapScan *hs = arg;
	PitView    *v = hs->v;

	fetch_features(v, hs, leaf, tid, second ? hs->fb[leaf] : hs->fa[leaf], vals, nulls);
}

/* Offers one history row (already found in the key table) to its slot. */
static inline void
offer_tid(PitPlan *p, PitView *v, PitHeapScan *hs, int leaf, PitEntry *ent, int64 e, int64 c,
		  bool c_null, ItemPointer tid)
{
	bool		tie;
	PitSlot    *s = pit_place_row(p, v, ent, e, c, c_null, &tie);

	if (s == NULL)
		return;
	if (tie)
	{
		/* equal (event, created): read both rows' features and compare */
		fetch_features(v, hs, leaf, tid, hs->fa[leaf], hs->va, hs->na);
		fetch_features(v, hs, s->best_leaf, &s->best_tid, hs->fb[s->best_leaf], hs->vb, hs->nb);
		if (pit_features_cmp(v, hs->va, hs->na, hs->vb, hs->nb) >= 0)
			return;
	}
	s->has_best = true;
	s->best_e = e;
	s->best_c = c;
	s->best_cnull = c_null;
	s->best_tid = *tid;
	s->best_leaf = leaf;
}

/* A winner to read: its physical position as one sortable integer, and its slot. */
typedef struct PitWon
{
	uint64		pos;			/* leaf << 48 | block << 16 | offset */
	PitSlot    *slot;
} PitWon;

/*
 * Reads the rows of every batch key through the leaf's key index (see find_key_index) and
 * offers them as a scan would: the rows with a key of the batch are exactly those the index
 * returns for that key, so the result does not depend on the strategy.
 */
static uint64
probe_leaf(PitPlan *p, PitView *v, PitHeapScan *hs, int li, MemoryContext tmpcxt)
{
	PitLeaf    *leaf = hs->leaves[li];
	Relation	rel = hs->rels[li];
	Relation	irel = index_open(leaf->index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc isc = index_beginscan(rel, irel, GetActiveSnapshot(), v->nkeys, 0);
	ScanKeyData sk[FS_MAX_KEYS];
	int			ce = leaf->att[v->col_event] - 1;
	int			cc = v->col_created >= 0 ? leaf->att[v->col_created] - 1 : -1;
	uint64		n = 0;
	MemoryContext old;

	for (int i = 0; i < v->nkeys; i++)
	{
		Oid			opr = get_opfamily_member(irel->rd_opfamily[i], irel->rd_opcintype[i],
											  irel->rd_opcintype[i], BTEqualStrategyNumber);

		ScanKeyInit(&sk[i], i + 1, BTEqualStrategyNumber, get_opcode(opr), (Datum) 0);
		sk[i].sk_collation = irel->rd_indcollation[i];
	}
	/*
	 * The index AM allocates scan state lazily in the current context while the scan runs
	 * (btree's killedItems, at the first dead row it meets): so the scan is driven from the
	 * scan's own context, and only the offer, whose tie-breaks may read features, runs in
	 * tmpcxt. Resetting tmpcxt under a running index scan freed that state, which the scan then
	 * wrote and btendscan freed again ("could not find block containing chunk").
	 */
	for (uint32 pos = 0; pos <= v->mask; pos++)
	{
		PitEntry   *e = PIT_ENTRY_AT(v, pos);

		if (e->count <= 0 || !pit_par_hash_mine(p, e->hash))
			continue;			/* (in a parallel worker, other workers probe other keys) */
		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < v->nkeys; i++)
			sk[i].sk_argument = e->keys[leaf->index_key[i]];
		index_rescan(isc, sk, v->nkeys, NULL, 0);
		while (index_getnext_slot(isc, ForwardScanDirection, slot))
		{
			bool		c_null;

			n++;
			slot_getsomeattrs(slot, leaf->prefix_max);
			if (slot->tts_isnull[ce])
				continue;
			c_null = cc < 0 || slot->tts_isnull[cc];
			old = MemoryContextSwitchTo(tmpcxt);
			offer_tid(p, v, hs, li, e, DatumGetInt64(slot->tts_values[ce]),
					  c_null ? 0 : DatumGetInt64(slot->tts_values[cc]), c_null, &slot->tts_tid);
			MemoryContextSwitchTo(old);
		}
		MemoryContextReset(tmpcxt);
	}
	index_endscan(isc);
	index_close(irel, NoLock);
	ExecDropSingleTupleTableSlot(slot);
	return n;
}

#define RS_NAME radix_sort_won
#define RS_ELEMENT PitWon
#define RS_KEY(w) ((w).pos)
#include "radix_sort.h"

/*
 * Orders winners by physical position: a radix sort, usually three passes, much cheaper than
 * a comparison sort here.
 */
static void
sort_won(PitWon *won, int n, MemoryContext cxt)
{
	PitWon	   *tmp;

	if (n < 2)
		return;
	tmp = MemoryContextAllocHuge(cxt, sizeof(PitWon) * n);
	radix_sort_won(won, n, tmp, 0, cxt);
	pfree(tmp);
}

/*
 * History rows of the batch's keys waiting to be offered, hash-partitioned: partition p holds
 * the rows whose key hash has p as its top bits, whose key table cells and slots are then a
 * contiguous range small enough to stay in cache (feature_store.join_partition_size) while the
 * partition's rows are offered. Offering rows in the order of the scan instead costs two random
 * memory accesses per row into tables of up to hundreds of MB.
 */
typedef struct PitRec
{
	uint32		h;
	BlockNumber blk;
	OffsetNumber off;
	bool		c_null;
	int64		e;
	int64		c;
	Datum		keys[FLEXIBLE_ARRAY_MEMBER];
} PitRec;

typedef struct PitParts
{
	int			lgp;			/* 2^lgp partitions */
	int			cap;			/* rows per partition buffer */
	Size		stride;			/* bytes per PitRec */
	char	   *buf;
	int		   *fill;
} PitParts;

static int	pit_partition_kb = 256;

/*
 * The size of the history scan's cache partitions: a developer setting (the default suits
 * a 0.5-1 MB L2 cache); tests set it tiny so that small datasets run through many partitions
 * and many buffer flushes, as a large join does.
 */
void
pit_scan_init(void)
{
	DefineCustomIntVariable("feature_store.join_partition_size",
							"Target size of a cache partition of the point-in-time join's key table and slots.",
							"History rows are buffered by key hash and offered one partition at a time, so that "
							"the key table cells and slots they touch stay in the CPU cache.",
							&pit_partition_kb, 256, 1, INT_MAX / 1024,
							PGC_USERSET, GUC_UNIT_KB | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
}

/* See pit_join_int.h. */
Size
pit_partition_bytes(void)
{
	return (Size) pit_partition_kb * 1024;
}

#define PIT_FLUSH_AHEAD 8		/* rows between the pipeline stages of parts_flush */

/* Sizes the partitions of a batch: each partition's cells and slots about pit_partition_kb. */
static void
parts_init(PitView *v, PitParts *pt)
{
	Size		work = (Size) (v->mask + 1) * v->estride + (Size) v->nslots * sizeof(PitSlot);
	Size		target = pit_partition_bytes();
	Size		chunk = Min(Max(get_hash_memory_limit() / 8, 64 * 1024), 64 * 1024 * 1024);
	int			np;

	pt->lgp = 0;
	while ((work >> pt->lgp) > target && pt->lgp < v->lgcap && pt->lgp < 16)
		pt->lgp++;
	np = 1 << pt->lgp;
	pt->stride = MAXALIGN(offsetof(PitRec, keys) + sizeof(Datum) * v->nkeys);
	pt->cap = (int) Max(8, Min(target, chunk / np) / pt->stride);
	pt->buf = pit_alloc_big(pt->stride * pt->cap * np);
	pt->fill = palloc0(sizeof(int) * np);
	pit_last_stats.partitions = Max(pit_last_stats.partitions, np);
}

/* Offers the buffered rows, one partition after the other, and empties the buffers. */
static void
parts_flush(PitPlan *p, PitView *v, PitHeapScan *hs, int li, PitParts *pt)
{
	pit_last_stats.flushes++;
	for (int q = 0; q < (1 << pt->lgp); q++)
	{
		char	   *base = pt->buf + (Size) q * pt->cap * pt->stride;
		int			n = pt->fill[q];
		PitEntry   *ring[2 * PIT_FLUSH_AHEAD];

		/*
		 * A software pipeline: the key cell of row i + 2D is prefetched, the key of row i + D
		 * looked up and its first slot prefetched, and row i offered.
		 */
		for (int i = -2 * PIT_FLUSH_AHEAD; i < n; i++)
		{
			int			a = i + 2 * PIT_FLUSH_AHEAD;
			int			b = i + PIT_FLUSH_AHEAD;

			if (a < n)
			{
				PitRec	   *r = (PitRec *) (base + (Size) a * pt->stride);

				__builtin_prefetch(PIT_ENTRY_AT(v, (uint32) ((uint64) r->h >> v->hshift)));
			}
			if (b >= 0 && b < n)
			{
				PitRec	   *r = (PitRec *) (base + (Size) b * pt->stride);
				PitEntry   *ent = pit_lookup_key(v, r->keys, r->h, false);

				ring[b % (2 * PIT_FLUSH_AHEAD)] = ent;
				if (ent != NULL)
					__builtin_prefetch(&v->slots[ent->start]);
			}
			if (i >= 0)
			{
				PitRec	   *r = (PitRec *) (base + (Size) i * pt->stride);
				PitEntry   *ent = ring[i % (2 * PIT_FLUSH_AHEAD)];
				ItemPointerData tid;

				if (ent == NULL)
					continue;
				ItemPointerSet(&tid, r->blk, r->off);
				offer_tid(p, v, hs, li, ent, r->e, r->c, r->c_null, &tid);
			}
		}
		pt->fill[q] = 0;
	}
}

#define PIT_STAGE 16

/*
 * Moves staged rows whose key passes the bloom filter into their partition's buffer (flushing
 * the buffers when one is full); the filter words were prefetched when the rows were staged.
 */
static void
stage_drain(PitPlan *p, PitView *v, PitHeapScan *hs, int li, PitParts *pt, char *stage, int ns)
{
	int			shift = 32 - pt->lgp;

	for (int i = 0; i < ns; i++)
	{
		PitRec	   *r = (PitRec *) (stage + (Size) i * pt->stride);
		uint32		bb = (r->h * 0x9E3779B1U) >> v->bloom_shift;
		int			q;

		if ((v->bloom[bb >> 6] & (UINT64CONST(1) << (bb & 63))) == 0)
			continue;			/* key not in this batch */
		q = (int) ((uint64) r->h >> shift);
		memcpy(pt->buf + ((Size) q * pt->cap + pt->fill[q]) * pt->stride, r, pt->stride);
		if (++pt->fill[q] == pt->cap)
			parts_flush(p, v, hs, li, pt);
	}
}

/* See pit_join_int.h. */
int
pit_fixed_offset(TupleDesc desc, AttrNumber attnum)
{
	int			off = 0;

	for (int i = 0; i < attnum; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attlen <= 0)
			return -1;
		off = att_align_nominal(off, a->attalign);
		if (i == attnum - 1)
			return off;
		off += a->attlen;
	}
	return -1;
}

/*
 * Reads a plain heap leaf page by page (heapgetpage: visibility decided once per page), taking
 * keys, event and created times in place — at fixed offsets when the tuple has no NULLs and
 * integer keys — and offers each row whose key may be in the batch: buffered by partition
 * (integer keys) or at once (other keys, whose values point into the page).
 */
static uint64
scan_heap_leaf(PitPlan *p, PitView *v, PitHeapScan *hs, int li, PitParts *pt, MemoryContext tmpcxt)
{
	Relation	rel = hs->rels[li];
	PitLeaf    *leaf = hs->leaves[li];
	TupleDesc	tdesc = RelationGetDescr(rel);
	TableScanDesc scan = table_beginscan_strat(rel, GetActiveSnapshot(), 0, NULL, true, false);
	HeapScanDesc hscan = (HeapScanDesc) scan;
	int			nk = v->nkeys;
	int			off[FS_MAX_KEYS + 2];
	AttrNumber	att[FS_MAX_KEYS + 2];
	int16		len[FS_MAX_KEYS + 2];
	int			ncol = nk + (v->col_created >= 0 ? 2 : 1);
	bool		fast = v->bitwise_keys;
	int			need = leaf->prefix_max;
	uint64		n = 0;
	MemoryContext old = MemoryContextSwitchTo(tmpcxt);
	char	   *stage = palloc(pt->stride * PIT_STAGE);
	int			ns = 0;
	BlockNumber lo = 0,
				hi = hscan->rs_nblocks;
	bool		more = true;

	for (int k = 0; k < ncol; k++)
	{
		att[k] = leaf->att[k];	/* keys, event, created: the view's first columns */
		off[k] = pit_fixed_offset(tdesc, att[k]);
		len[k] = TupleDescAttr(tdesc, att[k] - 1)->attlen;
		if (off[k] < 0 || !TupleDescAttr(tdesc, att[k] - 1)->attbyval)
			fast = false;
	}

	/* in a parallel worker: the ranges of blocks it claims, else every block */
	if (p->part_n > 1)
		more = pit_par_next_blocks(p, v, li, hscan->rs_nblocks, &lo, &hi);
	for (BlockNumber blk = lo; more; blk++)
	{
		Page		page;
		int			nt;

		if (blk >= hi)
		{
			more = p->part_n > 1 && pit_par_next_blocks(p, v, li, hscan->rs_nblocks, &lo, &hi);
			blk = lo - 1;
			continue;
		}

		if ((blk & 63) == 63)
			MemoryContextReset(tmpcxt); /* tie-breaks may have read features */
		/* the table AM's own allocations belong to the scan, not to tmpcxt (see probe_leaf) */
		MemoryContextSwitchTo(old);
		heapgetpage(scan, blk);	/* checks for interrupts */
		MemoryContextSwitchTo(tmpcxt);
		page = BufferGetPage(hscan->rs_cbuf);
		nt = hscan->rs_ntuples;
		for (int t = 0; t < nt; t++)
		{
			OffsetNumber offnum = hscan->rs_vistuples[t];
			ItemId		lp = PageGetItemId(page, offnum);
			HeapTupleHeader th = (HeapTupleHeader) PageGetItem(page, lp);
			Datum		d[FS_MAX_KEYS + 2];
			bool		nulls[FS_MAX_KEYS + 2];
			bool		anynull = false;
			uint32		h;
			PitRec	   *r;

			if (t + 8 < nt)
			{
				char	   *ahead = (char *) page + ItemIdGetOffset(PageGetItemId(page, hscan->rs_vistuples[t + 8]));

				__builtin_prefetch(ahead);
				__builtin_prefetch(ahead + 48);
			}
			n++;
			pit_tuple_columns(th, lp, blk, offnum, leaf->relid, tdesc, fast, need, ncol, att, off, len, d, nulls);
			for (int k = 0; k <= nk; k++)
				anynull |= nulls[k];
			if (anynull)
				continue;		/* a NULL key or event time never matches */
			h = pit_hash_keys(v, d);
			if (!v->bitwise_keys)
			{
				/* by-reference keys point into the page: offer now */
				uint32		bb = (h * 0x9E3779B1U) >> v->bloom_shift;
				PitEntry   *ent;
				ItemPointerData tid;
				bool		c_null = v->col_created < 0 || nulls[nk + 1];

				if ((v->bloom[bb >> 6] & (UINT64CONST(1) << (bb & 63))) == 0)
					continue;	/* key not in this batch */
				ent = pit_lookup_key(v, d, h, false);
				if (ent == NULL)
					continue;
				ItemPointerSet(&tid, blk, offnum);
				offer_tid(p, v, hs, li, ent, DatumGetInt64(d[nk]),
						  c_null ? 0 : DatumGetInt64(d[nk + 1]), c_null, &tid);
				continue;
			}
			/* staged while its bloom filter word is loaded */
			r = (PitRec *) (stage + (Size) ns * pt->stride);
			r->h = h;
			r->blk = blk;
			r->off = offnum;
			r->e = DatumGetInt64(d[nk]);
			r->c_null = v->col_created < 0 || nulls[nk + 1];
			r->c = r->c_null ? 0 : DatumGetInt64(d[nk + 1]);
			for (int k = 0; k < nk; k++)
				r->keys[k] = d[k];
			__builtin_prefetch(&v->bloom[((h * 0x9E3779B1U) >> v->bloom_shift) >> 6]);
			if (++ns == PIT_STAGE)
			{
				stage_drain(p, v, hs, li, pt, stage, ns);
				ns = 0;
			}
		}
	}
	stage_drain(p, v, hs, li, pt, stage, ns);
	parts_flush(p, v, hs, li, pt);
	MemoryContextSwitchTo(old);
	MemoryContextReset(tmpcxt);
	table_endscan(scan);
	return n;
}

/*
 * Scans every leaf of the view's source through the table AM: only keys, event and created
 * times are read; the winning rows' features are fetched by TID, in physical order, at the end
 * (so a row that is replaced later costs nothing). Plain heap leaves are read page by page and
 * their rows offered partition by partition (see PitParts); other table AMs through slots.
 */
uint64
pit_scan_heap(PitPlan *p, PitView *v, MemoryContext bcxt, MemoryContext tmpcxt)
{
	PitHeapScan hs;
	uint64		n = 0;
	ListCell   *lc;
	PitWon	   *won;
	instr_time	t0,
				t1;
	int			nwon = 0;
	MemoryContext old;
	PitParts	pt;

	hs.v = v;
	hs.nleaves = list_length(v->leaves);
	hs.leaves = palloc(sizeof(PitLeaf *) * hs.nleaves);
	hs.rels = palloc(sizeof(Relation) * hs.nleaves);
	hs.fa = palloc(sizeof(TupleTableSlot *) * hs.nleaves);
	hs.fb = palloc(sizeof(TupleTableSlot *) * hs.nleaves);
	hs.va = palloc(sizeof(Datum) * Max(v->nfeat, 1));
	hs.na = palloc(sizeof(bool) * Max(v->nfeat, 1));
	hs.vb = palloc(sizeof(Datum) * Max(v->nfeat, 1));
	hs.nb = palloc(sizeof(bool) * Max(v->nfeat, 1));
	foreach(lc, v->leaves)
	{
		int			i = foreach_current_index(lc);

		hs.leaves[i] = lfirst(lc);
		hs.rels[i] = table_open(hs.leaves[i]->relid, AccessShareLock);
		hs.fa[i] = table_slot_create(hs.rels[i], NULL);
		hs.fb[i] = table_slot_create(hs.rels[i], NULL);
	}
	pt.buf = NULL;

	for (int li = 0; li < hs.nleaves; li++)
	{
		PitLeaf    *leaf = hs.leaves[li];
		TupleTableSlot *slot;
		TableScanDesc scan;
		int			ce = leaf->att[v->col_event] - 1;
		int			cc = v->col_created >= 0 ? leaf->att[v->col_created] - 1 : -1;

		/*
		 * The planner's choice, simplified: few keys against a large leaf probe its key index
		 * (one descent per key, reading only that key's rows); otherwise one sequential scan.
		 */
		if (OidIsValid(leaf->index) && (double) v->nentries * PIT_PROBE_FACTOR < leaf->tuples)
		{
			n += probe_leaf(p, v, &hs, li, tmpcxt);
			pit_last_stats.probed_leaves++;
			continue;
		}
		pit_last_stats.scanned_leaves++;
		if (hs.rels[li]->rd_tableam == GetHeapamTableAmRoutine() && IsMVCCSnapshot(GetActiveSnapshot()))
		{
			/* (page mode, which heapgetpage fills, needs an MVCC snapshot) */
			if (pt.buf == NULL)
			{
				old = MemoryContextSwitchTo(bcxt);
				parts_init(v, &pt);
				MemoryContextSwitchTo(old);
			}
			n += scan_heap_leaf(p, v, &hs, li, &pt, tmpcxt);
			continue;
		}
		if (p->part_n > 1 && p->part_i != 0)
			continue;			/* other table AMs: the first worker reads them whole */
		slot = table_slot_create(hs.rels[li], NULL);
		scan = table_beginscan(hs.rels[li], GetActiveSnapshot(), 0, NULL);
		/* only the row's own work runs in tmpcxt, never the table AM's (see probe_leaf) */
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			Datum		keys[FS_MAX_KEYS];
			bool		anynull = false;
			bool		c_null;
			PitEntry   *ent;

			if ((++n & 4095) == 0)
			{
				CHECK_FOR_INTERRUPTS();
				MemoryContextReset(tmpcxt);
			}
			slot_getsomeattrs(slot, leaf->prefix_max);
			for (int k = 0; k < v->nkeys; k++)
			{
				keys[k] = slot->tts_values[leaf->att[k] - 1];
				anynull |= slot->tts_isnull[leaf->att[k] - 1];
			}
			if (anynull || slot->tts_isnull[ce])
				continue;
			old = MemoryContextSwitchTo(tmpcxt);	/* hashing may detoast a key */
			ent = pit_lookup_key(v, keys, pit_hash_keys(v, keys), false);
			c_null = cc < 0 || slot->tts_isnull[cc];
			if (ent != NULL)
				offer_tid(p, v, &hs, li, ent, DatumGetInt64(slot->tts_values[ce]),
						  c_null ? 0 : DatumGetInt64(slot->tts_values[cc]), c_null, &slot->tts_tid);
			MemoryContextSwitchTo(old);
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
	}

	/*
	 * In a parallel worker: the best rows of every worker's share of the history, merged;
	 * the slots of this worker's rows are left with their winner, the others with none.
	 */
	if (p->part_n > 1)
		pit_par_combine(p, v, fetch_cb, &hs);

	/* Read the winners' features in physical order. */
	INSTR_TIME_SET_CURRENT(t0);
	old = MemoryContextSwitchTo(bcxt);
	won = pit_alloc_big(sizeof(PitWon) * v->nslots);
	MemoryContextSwitchTo(old);
	for (int i = 0; i < v->nslots; i++)
		if (v->slots[i].has_best)
		{
			PitSlot    *s = &v->slots[i];

			won[nwon].pos = ((uint64) s->best_leaf << 48) |
				((uint64) ItemPointerGetBlockNumber(&s->best_tid) << 16) |
				ItemPointerGetOffsetNumber(&s->best_tid);
			won[nwon++].slot = s;
		}
	sort_won(won, nwon, bcxt);
	if (p->part_n > 1 && nwon > 0)
	{
		/*
		 * Parallel workers read their winners from different places of the table at any moment:
		 * walking the same pages together, they would pin and lock the same buffers, fighting
		 * over those cache lines.
		 */
		int			start = (int) ((int64) nwon * p->part_i / p->part_n);
		PitWon	   *rot = MemoryContextAllocHuge(bcxt, sizeof(PitWon) * nwon);

		memcpy(rot, won + start, sizeof(PitWon) * (nwon - start));
		memcpy(rot + (nwon - start), won, sizeof(PitWon) * start);
		won = rot;
	}
	for (int i = 0; i < nwon;)
	{
		PitSlot    *s = won[i].slot;
		int			li = s->best_leaf;
		BlockNumber blk = ItemPointerGetBlockNumber(&s->best_tid);
		Relation	rel = hs.rels[li];
		PitLeaf    *leaf = hs.leaves[li];
		Snapshot	snap = GetActiveSnapshot();
		Buffer		buffer;
		Page		page;
		bool		allvis;
		int			first = i;
		HeapTuple	copies[MaxHeapTuplesPerPage];

		if (rel->rd_tableam != GetHeapamTableAmRoutine())
			break;
		/* plain heap: every winner of a page under one pin and lock */
		CHECK_FOR_INTERRUPTS();
		buffer = ReadBufferExtended(rel, MAIN_FORKNUM, blk, RBM_NORMAL, NULL);
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buffer);
		allvis = PageIsAllVisible(page) && !snap->takenDuringRecovery;
		/* start loading every winner of the page (and its slot) before reading any */
		for (int j = i; j < nwon && (won[j].pos >> 16) == (won[first].pos >> 16); j++)
		{
			OffsetNumber o = (OffsetNumber) (won[j].pos & 0xFFFF);

			if (o <= PageGetMaxOffsetNumber(page))
				__builtin_prefetch((char *) page + ItemIdGetOffset(PageGetItemId(page, o)));
			__builtin_prefetch(won[j].slot);
		}
		for (; i < nwon && (won[i].pos >> 16) == (won[first].pos >> 16); i++)
		{
			HeapTupleData tup;
			PitSlot    *w = won[i].slot;
			ItemId		lp = PageGetItemId(page, (OffsetNumber) (won[i].pos & 0xFFFF));

			if (!ItemIdIsNormal(lp))
				elog(ERROR, "row (%u,%u) of relation %u vanished during a point-in-time join",
					 blk, ItemPointerGetOffsetNumber(&w->best_tid), leaf->relid);
			tup.t_data = (HeapTupleHeader) PageGetItem(page, lp);
			tup.t_len = ItemIdGetLength(lp);
			tup.t_tableOid = leaf->relid;
			tup.t_self = w->best_tid;
			if (!allvis && !HeapTupleSatisfiesVisibility(&tup, snap, buffer))
				elog(ERROR, "row (%u,%u) of relation %u is no longer visible during a point-in-time join",
					 blk, ItemPointerGetOffsetNumber(&w->best_tid), leaf->relid);
			{
				bool		external = false;

				for (int f = 0; f < v->nfeat; f++)
				{
					hs.va[f] = heap_getattr(&tup, leaf->att[v->col_feat0 + f], RelationGetDescr(rel), &hs.na[f]);
					if (!hs.na[f] && v->feat_len[f] == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(hs.va[f])))
						external = true;
				}
				copies[i - first] = NULL;
				if (!external)
					pit_store_row(v, w, w->best_e, w->best_c, w->best_cnull, hs.va, hs.na, bcxt, true);
				else
				{
					/* TOAST is read after the page lock is released */
					old = MemoryContextSwitchTo(tmpcxt);
					copies[i - first] = heap_copytuple(&tup);
					MemoryContextSwitchTo(old);
				}
			}
		}
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		ReleaseBuffer(buffer);
		for (int j = first; j < i; j++)
		{
			PitSlot    *w = won[j].slot;

			if (copies[j - first] == NULL)
				continue;
			old = MemoryContextSwitchTo(tmpcxt);
			for (int f = 0; f < v->nfeat; f++)
				hs.va[f] = heap_getattr(copies[j - first], leaf->att[v->col_feat0 + f], RelationGetDescr(rel), &hs.na[f]);
			MemoryContextSwitchTo(old);
			pit_store_row(v, w, w->best_e, w->best_c, w->best_cnull, hs.va, hs.na, bcxt, true);
		}
		MemoryContextReset(tmpcxt);
	}
	for (int i = 0; i < nwon; i++)
	{
		PitSlot    *s = won[i].slot;

		if (s->best != NULL)
			continue;			/* read by the heap loop above */
		if ((i & 1023) == 0)
		{
			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(tmpcxt);
		}
		old = MemoryContextSwitchTo(tmpcxt);
		fetch_features(v, &hs, s->best_leaf, &s->best_tid, hs.fa[s->best_leaf], hs.va, hs.na);
		MemoryContextSwitchTo(old);
		pit_store_row(v, s, s->best_e, s->best_c, s->best_cnull, hs.va, hs.na, bcxt, true);
	}

	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	pit_last_stats.winners_ms += INSTR_TIME_GET_MILLISEC(t1);
	for (int i = 0; i < hs.nleaves; i++)
	{
		ExecDropSingleTupleTableSlot(hs.fa[i]);
		ExecDropSingleTupleTableSlot(hs.fb[i]);
		table_close(hs.rels[i], NoLock);
	}
	return n;
}
