/*
 * pit_join_int.h — what the files of the point-in-time join share: the plan, view, slot and key
 * table structures, the per-row inline functions, and the functions one file calls in another
 * (pit_join.c drives; pit_plan.c plans; pit_spine.c reads the spine and builds batches;
 * pit_scan.c reads the sources; pit_merge.c orders rows and merges). Other concerns use
 * pit_join.h only. Also the figures of the last point-in-time join in this backend, kept so that
 * fs_point_in_time_join_stats() can show how a join ran (batches, memory) to tests and benchmarks.
 *
 * The key table lookup and the placing of a history row into its slot are static inline here
 * (as they were when the join was one file): every source reader runs them once per history row.
 */
#ifndef FS_PIT_JOIN_INT_H
#define FS_PIT_JOIN_INT_H

#include "postgres.h"

#include "access/htup_details.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "storage/itemptr.h"
#include "utils/datum.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "huge_alloc.h"
#include "key_hash.h"
#include "pit_join.h"
#include "registry.h"

typedef struct PitStats
{
	uint64		spine_rows;
	uint64		batch_rows;		/* spine rows per batch */
	int			batches;
	uint64		source_rows;	/* history rows read, over all batches and views */
	Size		peak_bytes;		/* peak memory of the join's context */
	double		phase_ms[5];
	double		winners_ms;		/* part of phase 2: reading the winning rows' features */
	int			scanned_leaves;	/* relations read sequentially (per batch) */
	int			probed_leaves;	/* relations probed through a key index (per batch) */
	int			partitions;		/* most cache partitions of a batch's history scan */
	int			flushes;		/* partition buffer flushes, over all batches and views */
	int			agg_splits;		/* aggregation reads split in four for memory (pit_agg.c) */
	int			agg_partial;	/* aggregation reads that gave up partitions for memory */
	int			workers;		/* parallel workers that joined parts of the spine (pit_parallel.c) */
} PitStats;

extern PitStats pit_last_stats;

/* A source row kept as the best of one slot: its times and all of the view's features. */
#define FS_PIT_MAX_FEAT_STACK 64

typedef struct PitRow
{
	int64		e;				/* event time, in its own type */
	int64		e_dom;			/* event time in the comparison domain (for TTL) */
	int64		c;				/* created time, in its own type */
	bool		c_null;
	Datum	   *vals;
	bool	   *nulls;
} PitRow;

/*
 * One valid spine row of the batch (keys and time not NULL), with the best source row seen so
 * far whose start time falls between the previous spine time of the same key and this one.
 * Slots are ordered by (key hash, key, time, spine order): the slots of a key are contiguous and
 * in time order, and the slots of a hash range (a cache partition) are contiguous too. The best
 * row's times are kept inline so that most history rows are rejected without touching the row.
 */
typedef struct PitSlot
{
	int64		te;				/* spine time in the event-time domain */
	int64		tc;				/* spine time in the created-time domain */
	int64		ts;				/* spine time as given (for the TTL bound) */
	int64		best_e;			/* best row's times, when has_best */
	int64		best_c;
	PitRow	   *best;			/* NULL while only best_tid is known */
	ItemPointerData best_tid;	/* table AM path: where the best row is */
	int16		best_leaf;
	bool		has_best;
	bool		best_cnull;
	int32		row;			/* spine row within the batch */
} PitSlot;

/*
 * A key of the batch, stored in the open-addressing table itself. Its home cell is given by the
 * top bits of its hash, so the table, like the slots, is ordered by hash: a hash range is a
 * contiguous range of cells. start/count: its run of slots.
 */
typedef struct PitEntry
{
	uint32		hash;
	int32		count;			/* spine rows with this key; -1 = empty table cell */
	int32		start;			/* first slot of the key */
	int32		pad;
	Datum		keys[FLEXIBLE_ARRAY_MEMBER];
} PitEntry;

/* One relation scanned through the table AM, with the attnums of the view's columns. */
typedef struct PitLeaf
{
	Oid			relid;
	AttrNumber *att;			/* per column of the view (keys, event, created, features) */
	AttrNumber	prefix_max;		/* highest attnum among keys/event/created */
	AttrNumber	all_max;
	Oid			index;			/* btree index led by the key columns, or InvalidOid */
	int			index_key[FS_MAX_KEYS]; /* index column i holds key index_key[i] */
	double		tuples;			/* estimated rows */
} PitLeaf;

/*
 * How a spine key value becomes a value of the view's key type, so that it hashes and compares
 * like the source's keys: unchanged (the same type, a domain over it, or text/varchar, which
 * share text's equality), an integer widened, char(n) with its trailing blanks stripped, or name
 * turned into text — each what the cast SQL applies in `spine.key = source.key`.
 */
typedef enum PitKeyConv
{
	PIT_KEY_AS_IS,
	PIT_KEY_FROM_INT2,
	PIT_KEY_FROM_INT4,
	PIT_KEY_FROM_BPCHAR,
	PIT_KEY_FROM_NAME
} PitKeyConv;

typedef struct PitView
{
	FsView	   *fv;
	Oid			relid;
	bool		use_spi;
	List	   *leaves;			/* of PitLeaf *, when !use_spi */
	int			nkeys;
	int			spine_key[FS_MAX_KEYS]; /* 0-based spine column */
	PitKeyConv	spine_conv[FS_MAX_KEYS];	/* spine key value -> key_type value */
	Oid			key_type[FS_MAX_KEYS];
	Oid			key_coll[FS_MAX_KEYS];
	int16		key_len[FS_MAX_KEYS];
	bool		key_byval[FS_MAX_KEYS];
	FmgrInfo	key_hash[FS_MAX_KEYS];
	FmgrInfo	key_eq[FS_MAX_KEYS];
	bool		bitwise_keys;	/* all keys are integers: compare and hash the Datum bits */
	Oid			event_type;
	Oid			created_type;	/* InvalidOid: no created column */
	bool		dom_tz_event;	/* compare event time with spine time as timestamptz */
	bool		dom_tz_created;
	int			ncols;			/* keys, event, [created], features */
	int			col_event;
	int			col_created;	/* -1 when none */
	int			col_feat0;
	char	  **col_names;
	int			nfeat;
	Oid		   *feat_type;
	int32	   *feat_typmod;
	Oid		   *feat_coll;
	int16	   *feat_len;
	bool	   *feat_byval;
	FmgrInfo  **feat_cmp;		/* NULL for types without a default btree order */
	struct FsAggEval *agg;		/* aggregation views: the evaluator (pit_agg.c), else NULL */

	/* per batch */
	int			nentries;
	uint32		mask;
	int			hshift;			/* home cell = hash >> hshift */
	int			lgcap;			/* log2 of the table's cells */
	Size		estride;		/* bytes per PitEntry with its keys */
	char	   *etab;			/* (mask + 1) entries, linear probing */
	uint64	   *bloom;			/* one bit per key hash: rejects most absent keys in cache */
	uint32		bloom_shift;
	PitSlot    *slots;			/* per valid batch row, ordered as described at PitSlot */
	int			nslots;
	PitRow	  **winner;			/* per batch row (aggregation views: its aggregates) */
	char	   *bump_ptr;		/* chunk of final winner rows being filled */
	char	   *bump_end;
} PitView;

typedef struct PitOutFeature
{
	int			view;			/* index into plan->views */
	int			feat;			/* index into the view's features */
	char	   *ref;			/* "view@N:feature" */
} PitOutFeature;

struct PitPlan
{
	MemoryContext cxt;
	Oid			spine_relid;	/* InvalidOid for a spine_query */
	char	   *spine_query;	/* the query text of a spine given as a query, else NULL */
	char	   *spine_label;	/* 'spine "name"' or 'spine_query', for messages */
	bool		spine_temp;		/* a temporary relation: gone after the session */
	bool		spine_spi;
	bool		checksum_on;	/* compute the spine checksum while emitting */
	bool		checksum_ok;	/* every spine column has an extended hash function */
	uint64		checksum;		/* sum of the spine rows' hash_record_extended(row, 0) */
	TupleDesc	spine_desc;		/* non-dropped spine columns */
	AttrNumber *spine_att;		/* physical attnum of each spine_desc column */
	int			spine_ts;		/* 0-based column in spine_desc */
	Oid			spine_ts_type;
	bool		as_of_created;
	bool		full_names;
	int			nviews;
	PitView   **views;
	int			nout;
	PitOutFeature *out;
	TupleDesc	desc;
	size_t		row_bytes;		/* estimated batch memory per spine row */
	/*
	 * In a parallel worker (pit_parallel.c): participant part_i of part_n, sharing the history
	 * scans through par; part_n 0 = a serial join.
	 */
	int			part_n;
	int			part_i;
	struct PitParShared *par;
	uint64		batch_start;	/* spine ordinal of the batch's first row */
	uint64		emit_ordinal;	/* the spine ordinal of the row being emitted */
	PitEmitSlotFn emit_slot;	/* see pit_plan_set_emit_slot, or NULL */
};

/*
 * Where spine rows come from: a scan of the spine table (two of them run in step, one for
 * building batches, one for emitting rows) or, for views and the like, a tuplestore filled
 * once through SPI and read with two read pointers.
 */
typedef struct PitSpineReader
{
	PitPlan    *p;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Tuplestorestate *store;
	int			readptr;
	Datum	   *vals;
	bool	   *nulls;
	uint64		ordinal;		/* rows read so far */
} PitSpineReader;

/*
 * Converts a time value to the domain the comparison with the spine time uses: timestamptz
 * unless both sides are timestamp (as SQL's cross-type comparison does, in the session time zone).
 */
static inline int64
pit_to_dom(int64 v, Oid type, bool dom_tz)
{
	if (dom_tz && type == TIMESTAMPOID)
	{
		int			overflow = 0;
		TimestampTz r = timestamp2timestamptz_opt_overflow(v, &overflow);

		if (overflow > 0)
			return PG_INT64_MAX;
		if (overflow < 0)
			return PG_INT64_MIN;
		return r;
	}
	return v;
}

/* ---------------------------------------------------------------------------------------
 * The batch's key table (built by pit_spine.c, probed by every source reader).
 * --------------------------------------------------------------------------------------- */

/* The key hash and equality of key_hash.h, with the view's key functions. */
static inline uint32
pit_hash_keys(PitView *v, const Datum *k)
{
	return fs_key_hash(v->nkeys, v->bitwise_keys, v->key_hash, v->key_coll, k);
}

static inline bool
pit_keys_equal(PitView *v, const Datum *a, const Datum *b)
{
	return fs_key_equal(v->nkeys, v->bitwise_keys, v->key_eq, v->key_coll, a, b);
}

#define PIT_ENTRY_AT(v, pos) ((PitEntry *) ((v)->etab + (Size) (pos) * (v)->estride))

/* Returns the entry of the key, or NULL; with insert, adds it (copying the key). */
static inline PitEntry *
pit_lookup_key(PitView *v, const Datum *k, uint32 h, bool insert)
{
	uint32		pos = (uint32) ((uint64) h >> v->hshift);
	PitEntry   *e;

	for (;;)
	{
		e = PIT_ENTRY_AT(v, pos);
		if (e->count < 0)
			break;
		if (e->hash == h && pit_keys_equal(v, e->keys, k))
			return e;
		pos = (pos + 1) & v->mask;
	}
	if (!insert)
		return NULL;
	v->nentries++;
	e->hash = h;
	e->count = 0;
	for (int i = 0; i < v->nkeys; i++)
		e->keys[i] = datumCopy(k[i], v->key_byval[i], v->key_len[i]);
	return e;
}

/* ---------------------------------------------------------------------------------------
 * Placing a history row into its slot (pit_merge.c keeps the best row per slot).
 * --------------------------------------------------------------------------------------- */

/* First position in slots[0..n) whose time (te or tc) is >= t. */
static inline int
pit_lower_bound(const PitSlot *slots, int n, int64 t, bool created)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;
		int64		st = created ? slots[mid].tc : slots[mid].te;

		if (st < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Places a history row of key entry ent: its slot is the first (in time) whose spine time is
 * >= its event time (and >= its created time under as_of_created). Returns NULL when no slot
 * takes it or the slot already holds a greater (event_ts, created_ts); sets *tie when both
 * are equal and only the features can decide.
 */
static inline PitSlot *
pit_place_row(PitPlan *p, PitView *v, PitEntry *ent, int64 e, int64 c, bool c_null, bool *tie)
{
	PitSlot    *s;
	bool		as_of = p->as_of_created && v->col_created >= 0;

	*tie = false;
	if (as_of && c_null)
		return NULL;
	if (ent->count == 1)
	{
		s = &v->slots[ent->start];
		if (s->te < pit_to_dom(e, v->event_type, v->dom_tz_event))
			return NULL;
		if (as_of && s->tc < pit_to_dom(c, v->created_type, v->dom_tz_created))
			return NULL;
	}
	else
	{
		const PitSlot *run = &v->slots[ent->start];
		int			j = pit_lower_bound(run, ent->count, pit_to_dom(e, v->event_type, v->dom_tz_event), false);

		if (as_of)
			j = Max(j, pit_lower_bound(run, ent->count, pit_to_dom(c, v->created_type, v->dom_tz_created), true));
		if (j >= ent->count)
			return NULL;
		s = &v->slots[ent->start + j];
	}
	if (!s->has_best || e > s->best_e)
		return s;
	if (e < s->best_e)
		return NULL;
	if (c_null != s->best_cnull)
		return c_null ? NULL : s;
	if (!c_null && c != s->best_c)
		return c > s->best_c ? s : NULL;
	*tie = true;
	return s;
}

/* ---------------------------------------------------------------------------------------
 * Functions called across the files (each is described where it is defined).
 * --------------------------------------------------------------------------------------- */

/*
 * A large array in the current context (freed with it), on huge pages from 8 MB on: the key
 * table and slots are probed at random.
 */
static inline void *
pit_alloc_big(Size size)
{
	return fs_alloc_huge(CurrentMemoryContext, size, 4 * FS_HUGE_PAGE, false, NULL);
}

/* pit_spine.c: the spine reader, batches. */
extern void pit_spine_reader_init(PitSpineReader *r, PitPlan *p, Tuplestorestate *store, int readptr);
extern bool pit_spine_next(PitSpineReader *r);
extern void pit_spine_reader_end(PitSpineReader *r);
extern void pit_read_spine_spi(PitPlan *p, Tuplestorestate *store);
extern TupleDesc pit_spine_query_desc(const char *query);
extern uint64 pit_spine_row_hash(PitPlan *p, const Datum *vals, const bool *nulls);
extern int	pit_build_batch(PitPlan *p, PitSpineReader *rd, int maxrows, int caprows, MemoryContext bcxt);

/* pit_scan.c: the GUC feature_store.join_partition_size (from pit_join_init). */
extern void pit_scan_init(void);

/* pit_scan.c: the bytes of key table and slots one cache partition should cover. */
extern Size pit_partition_bytes(void);

/*
 * pit_scan.c: byte offset of attribute attnum within the data of a tuple without NULLs when
 * every column before it has a fixed length (so the same in every such tuple); -1 otherwise.
 */
extern int	pit_fixed_offset(TupleDesc desc, AttrNumber attnum);

/*
 * The columns att[0..ncol) of a heap tuple on a page being scanned: at their fixed offsets off[]
 * (lengths len[]) when fast (every column fixed-offset and by value) and the tuple has no NULLs
 * and at least need attributes, else with heap_getattr. By-reference values point into the page.
 */
static inline void
pit_tuple_columns(HeapTupleHeader th, ItemId lp, BlockNumber blk, OffsetNumber offnum, Oid relid,
				  TupleDesc tdesc, bool fast, int need, int ncol, const AttrNumber *att,
				  const int *off, const int16 *len, Datum *vals, bool *nulls)
{
	if (fast && (th->t_infomask & HEAP_HASNULL) == 0 && HeapTupleHeaderGetNatts(th) >= need)
	{
		char	   *tp = (char *) th + th->t_hoff;

		for (int k = 0; k < ncol; k++)
		{
			vals[k] = fetch_att(tp + off[k], true, len[k]);
			nulls[k] = false;
		}
	}
	else
	{
		HeapTupleData tup;

		tup.t_data = th;
		tup.t_len = ItemIdGetLength(lp);
		tup.t_tableOid = relid;
		ItemPointerSet(&tup.t_self, blk, offnum);
		for (int k = 0; k < ncol; k++)
			vals[k] = heap_getattr(&tup, att[k], tdesc, &nulls[k]);
	}
}

/* pit_scan.c: reading a source for one batch; returns the rows read. */
extern uint64 pit_scan_heap(PitPlan *p, PitView *v, MemoryContext bcxt, MemoryContext tmpcxt);
extern uint64 pit_scan_spi(PitPlan *p, PitView *v, MemoryContext bcxt);

/* Row callback of pit_spi_read: the row's deformed columns, in the order asked for. */
typedef void (*PitSpiRowFn) (void *arg, Datum *vals, bool *nulls);
extern uint64 pit_spi_read(Oid relid, char *const *cols, int ncols, PitSpiRowFn fn, void *arg);

/* pit_agg.c: an aggregation view's results for one batch; returns the source rows read. */
extern uint64 pit_agg_batch(PitPlan *p, PitView *v, MemoryContext bcxt);

/*
 * pit_merge.c: memory for batch results that are never freed one by one (the winners read once
 * by the table AM path, aggregation results): carved from large chunks on huge pages, much
 * cheaper than a palloc per row.
 */
extern void *pit_bump_alloc(PitView *v, Size size, MemoryContext bcxt);

/* pit_merge.c: row order, keeping a slot's best row, the as-of merge with TTL. */
extern int	pit_features_cmp(PitView *v, const Datum *va, const bool *na, const Datum *vb, const bool *nb);
extern void pit_store_row(PitView *v, PitSlot *s, int64 e, int64 c, bool c_null, const Datum *fvals,
						  const bool *fnulls, MemoryContext bcxt, bool final);
extern void pit_merge_batch(PitPlan *p, PitView *v);

/* pit_join.c: the join in this process (in a parallel worker: its share of it, see pit_parallel.c). */
extern uint64 pit_execute_part(PitPlan *p, PitEmitFn emit, void *arg);

/* pit_parallel.c: how many workers to join with (0: serially), the parallel join, its GUCs. */
extern int	pit_parallel_workers(PitPlan *p);
extern uint64 pit_parallel_execute(PitPlan *p, int nworkers, PitEmitFn emit, void *arg);
extern void pit_parallel_init(void);

/*
 * pit_parallel.c, in a worker: which spine rows it emits (and reads the winners of), the next
 * range of blocks of leaf li of a view it scans, the key hashes it probes, and the step that
 * turns its own scan's best rows into the batch's winners (see the file header).
 */
#define PIT_PAR_CHUNK_ROWS 1024
static inline bool
pit_par_row_mine(const PitPlan *p, uint64 ordinal)
{
	return p->part_n <= 1 || (int) ((ordinal / PIT_PAR_CHUNK_ROWS) % (uint64) p->part_n) == p->part_i;
}
static inline bool
pit_par_hash_mine(const PitPlan *p, uint32 h)
{
	return p->part_n <= 1 || (int) (((uint64) h * (uint64) p->part_n) >> 32) == p->part_i;
}
extern bool pit_par_next_blocks(PitPlan *p, PitView *v, int li, BlockNumber nblocks, BlockNumber *lo, BlockNumber *hi);

/* Reads the features of leaf's row tid (second: into the other buffers, for a comparison). */
typedef void (*PitFetchFn) (void *arg, int leaf, ItemPointer tid, bool second, Datum *vals, bool *nulls);
extern void pit_par_combine(PitPlan *p, PitView *v, PitFetchFn fetch, void *farg);

/* pit_merge.c: rule 3's TTL bound on slot s for a row of event time e_dom (event-time domain). */
extern bool pit_within_ttl(PitPlan *p, PitView *v, const PitSlot *s, int64 e_dom);

#endif
