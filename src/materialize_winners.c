/*
 * materialize_winners.c — the winners' table of the one-pass materialization path (design in
 * materialize_scan.c's header): each entity's key and current winner in an open-addressing
 * table (linear probing, doubled at half full), a winner's online row (its features read from
 * the source by TID), and the winners in TID or key order for writing. The scan fills it,
 * the writers (materialize_write.c, materialize_upsert.c) read it.
 */
#include "postgres.h"

#include "access/tableam.h"
#include "executor/tuptable.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "materialize_winners.h"

/* Doubles the table (load factor stays under 1/2). */
static void
grow_table(MatState *st)
{
	char	   *old = st->etab;
	char	   *oldraw = st->etab_raw;
	uint32		oldsize = st->mask + 1;
	uint32		newsize = oldsize * 2;

	if (newsize == 0 || (Size) newsize * st->stride >= MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many entities in one materialization run")));
	st->etab = mat_alloc_table(st, (Size) newsize * st->stride, &st->etab_raw);
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
	pfree(oldraw);
}

/* The entry of a key; with insert, a new empty one (key copied) when missing. */
MatEntry *
mat_lookup(MatState *st, const Datum *k, uint32 h, bool insert)
{
	uint32		pos = h & st->mask;
	MatEntry   *e;

	for (;;)
	{
		e = MAT_ENTRY(st, pos);
		if (!e->used)
			break;
		if (e->hash == h && fs_key_equal(st->nkeys, st->int_keys, st->key_eq, st->key_coll, e->keys, k))
			return e;
		pos = (pos + 1) & st->mask;
	}
	if (!insert)
		return NULL;
	if ((st->nentries + 1) * 2 > (uint64) st->mask + 1)
	{
		grow_table(st);
		return mat_lookup(st, k, h, true);
	}
	st->nentries++;
	e->used = true;
	e->hash = h;
	e->tup = NULL;
	e->has_row = false;
	for (int i = 0; i < st->nkeys; i++)
		e->keys[i] = st->key_byval[i] ? k[i] : datumCopy(k[i], false, st->key_len[i]);
	return e;
}

/* TID mode: the features of a source row, read under the scan's snapshot into slot. */
void
mat_fetch_features(MatState *st, ItemPointer tid, TupleTableSlot *slot, Datum *vals, bool *nulls)
{
	if (!table_tuple_fetch_row_version(st->src, tid, st->snap, slot))
		elog(ERROR, "row (%u,%u) of the source vanished during materialization",
			 ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid));
	slot_getsomeattrs(slot, st->feat_max);
	for (int f = 0; f < st->nfeat; f++)
	{
		vals[f] = slot->tts_values[st->feat_att[f] - 1];
		nulls[f] = slot->tts_isnull[st->feat_att[f] - 1];
	}
}

/* TID mode: a winner's online row (keys, times, and its features read from the source by TID). */
void
mat_winner_values(MatState *st, MatEntry *e, Datum *vals, bool *nulls)
{
	for (int k = 0; k < st->nkeys; k++)
	{
		vals[k] = e->keys[k];
		nulls[k] = false;
	}
	vals[st->col_ev] = Int64GetDatum(e->e);
	nulls[st->col_ev] = false;
	vals[st->col_cr] = Int64GetDatum(e->c);
	nulls[st->col_cr] = e->c_null;
	mat_fetch_features(st, &e->tid, st->srcslot, vals + st->col_f0, nulls + st->col_f0);
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

/* Sort items carrying their sort key, so that sorting does not chase entry pointers. */
typedef struct MatSortItem
{
	uint64		k;
	MatEntry   *e;
} MatSortItem;

#define RS_NAME radix_sort_items
#define RS_ELEMENT MatSortItem
#define RS_KEY(x) ((x).k)
#include "radix_sort.h"

/* Sorts the items on k (radix_sort.h). */
static void
radix_sort(MatState *st, MatSortItem *a, uint64 n)
{
	char	   *raw;
	MatSortItem *tmp = (MatSortItem *) mat_alloc_table(st, sizeof(MatSortItem) * Max(n, 1), &raw);

	radix_sort_items(a, n, tmp, 0, st->cxt);
	pfree(raw);
}

/*
 * Orders ents by TID (by_tid) or by key. TIDs and single integer keys are sorted as uint64
 * images of themselves (the key with its sign bit flipped keeps signed order).
 */
void
mat_sort_entries(MatState *st, MatEntry **ents, uint64 n, bool by_tid)
{
	MatSortItem *items;
	char	   *raw;

	if (!by_tid && !(st->int_keys && st->nkeys == 1))
	{
		sort_state = st;
		qsort(ents, n, sizeof(MatEntry *), cmp_entries);
		return;
	}
	items = (MatSortItem *) mat_alloc_table(st, sizeof(MatSortItem) * Max(n, 1), &raw);
	for (uint64 i = 0; i < n; i++)
	{
		MatEntry   *e = ents[i];

		if (by_tid)
			items[i].k = ((uint64) ItemPointerGetBlockNumberNoCheck(&e->tid) << 16) |
				ItemPointerGetOffsetNumberNoCheck(&e->tid);
		else
			items[i].k = (uint64) int_key(st->key_type[0], e->keys[0]) ^ (UINT64CONST(1) << 63);
		items[i].e = e;
	}
	radix_sort(st, items, n);
	for (uint64 i = 0; i < n; i++)
		ents[i] = items[i].e;
	pfree(raw);
}
