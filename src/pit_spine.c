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
				k[j] = datumCopy(rd->vals[v->spine_key[j]], v->key_byval[j], v->key_len[j]);
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
