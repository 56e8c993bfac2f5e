/*
 * materialize_upsert.c — the C upsert of the one-pass materialization path: writing the
 * winners into an online table that already holds rows (an incremental run), without the
 * executor. The SQL upsert (INSERT ... ON CONFLICT DO UPDATE ... WHERE) spends most of its
 * time in machinery this case does not need: a speculative-insertion conflict check, a
 * heap_lock_tuple (with its own WAL record) before every update, and the executor per row.
 *
 * In two passes, so that each page of the online table is visited once, in physical order:
 *  1. read the key index in key order for the row versions of every winner's key (its pages
 *     are then visited in order too);
 *  2. visit those versions in physical order: the one visible to the run's snapshot (taken
 *     after the SHARE ROW EXCLUSIVE lock of fs_mat_write_c, so every other writer of the
 *     online table has committed or aborted and none can start) is the key's only live row.
 *     If it is as new or newer in (event, COALESCE(created, -infinity)) it stays (the
 *     never-backwards rule of fs_mat_append_upsert, the same comparison); otherwise the
 *     winner replaces it with simple_heap_update (WAL-logged, HOT when the page has room —
 *     online tables keep 15% free — and then no index entry is needed), or, not HOT, with an
 *     index entry for the new version (no uniqueness check: the same key, its old version
 *     replaced under our lock);
 *  3. keys without a live row get heap_insert and a checked index entry, in key order.
 * Used only when that is all an executor INSERT would do: the online table's only index is its
 * plain primary key, its columns are the online row's layout, its only trigger is the batch
 * mode's statement trigger (whose effect, a commit-time cache generation bump, is asked for
 * key by key through fs_online_mark_key_written: see mark_key), and the transaction is
 * READ COMMITTED (under a transaction snapshot, rows committed since it was taken need the
 * SQL statement's serialization errors). Otherwise the caller writes through the statement.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "materialize_upsert.h"
#include "materialize_winners.h"
#include "online_key.h"
#include "online_table.h"

/*
 * The only trigger that would fire is the batch mode's fs_online_changed statement trigger (no
 * row trigger, no transition table): bypassing it and marking the keys written is then exactly
 * its effect. Triggers enabled on replica only (the replica set of online_table.c) do not fire
 * in a session that is not a replica; in one that is, the statement takes over.
 */
static bool
batch_triggers_only(Relation rel)
{
	TriggerDesc *td = rel->trigdesc;

	if (td == NULL)
		return true;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgenabled == TRIGGER_FIRES_ON_REPLICA &&
			SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
			continue;
		if (strcmp(t->tgname, "fs_online_changed") != 0 || TRIGGER_FOR_ROW(t->tgtype) ||
			t->tgoldtable != NULL || t->tgnewtable != NULL)
			return false;
	}
	return true;
}

/* The online table's columns are the online row: keys, event, created, features, none dropped. */
static bool
row_layout_ok(MatState *st, Relation rel)
{
	TupleDesc	d = RelationGetDescr(rel);

	if (d->natts != st->col_f0 + st->nfeat)
		return false;
	if (st->desc == NULL)
		return true;			/* copy mode before the scan: checked again after it */
	for (int i = 0; i < d->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(d, i);

		if (a->attisdropped || a->atttypid != TupleDescAttr(st->desc, i)->atttypid)
			return false;
	}
	return true;
}

/*
 * The online table's only index is its primary key on the key columns, in order (as created
 * by fs_online_ensure_table): then index entries can be made from the keys alone.
 */
Relation
mat_plain_key_index(MatState *st, Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	Relation	idx;
	Form_pg_index f;
	bool		ok;

	if (list_length(indexes) != 1)
		return NULL;
	idx = index_open(linitial_oid(indexes), RowExclusiveLock);
	f = idx->rd_index;
	ok = f->indisprimary && f->indnatts == st->nkeys && f->indnkeyatts == st->nkeys &&
		RelationGetIndexExpressions(idx) == NIL && RelationGetIndexPredicate(idx) == NIL;
	for (int i = 0; ok && i < st->nkeys; i++)
		ok = f->indkey.values[i] == i + 1;
	if (!ok)
	{
		index_close(idx, RowExclusiveLock);
		return NULL;
	}
	return idx;
}

/* See the file header: the conditions under which the C upsert is what the statement would do. */
bool
mat_upsert_ok(MatState *st, Relation rel)
{
	Relation	idx;

	if (IsolationUsesXactSnapshot() || !batch_triggers_only(rel) || !row_layout_ok(st, rel))
		return false;
	idx = mat_plain_key_index(st, rel);
	if (idx == NULL)
		return false;
	index_close(idx, RowExclusiveLock);
	return true;
}

/* The winner as a heap tuple of the online table (TID mode reads its features from the source). */
static HeapTuple
winner_tuple(MatState *st, Relation rel, MatEntry *e, Datum *vals, bool *nulls)
{
	if (!st->use_tid)
		return heap_tuple_from_minimal_tuple(e->tup);
	mat_winner_values(st, e, vals, nulls);
	return heap_form_tuple(RelationGetDescr(rel), vals, nulls);
}

/* A row version the key index points to, and the winner of its key. */
typedef struct UpsertTarget
{
	ItemPointerData tid;
	MatEntry   *e;
} UpsertTarget;

/* Winners are scattered over the hash table: fetch this many ahead (as in materialize_scan.c). */
#define UPSERT_PREFETCH 8

/* Physical order of the row versions: each page of the online table is then visited once. */
static int
cmp_targets(const void *pa, const void *pb)
{
	return ItemPointerCompare(&((UpsertTarget *) pa)->tid, &((UpsertTarget *) pb)->tid);
}

/*
 * The cache protocol for a written key: only this key becomes stale at commit (per-key
 * invalidation, as the stream trigger records it; past FS_KEY_INVAL_MAX keys in a transaction
 * the whole view). An incremental run of a few keys then leaves every other cached row valid,
 * where the batch trigger would make the whole view stale and have the worker reload it.
 */
static void
mark_key(MatState *st, Relation rel, MatEntry *e)
{
	uint64		h;

	if (fs_read_key_hash_values(st->v->view_id, RelationGetDescr(rel), e->keys, st->nkeys, &h))
		fs_online_mark_key_written(st->v->view_id, h);
}

/* Writes one winner: replaces the row at otid (found) or inserts it with its index entry. */
static void
write_winner(MatState *st, Relation rel, Relation idx, IndexInfo *ii, MatEntry *e, ItemPointer otid,
			 Datum *vals, bool *nulls, MemoryContext tmpcxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(tmpcxt);
	bool		kisnull[INDEX_MAX_KEYS] = {false};
	HeapTuple	tup = winner_tuple(st, rel, e, vals, nulls);

	if (otid)
	{
		simple_heap_update(rel, otid, tup);
		if (!HeapTupleIsHeapOnly(tup))
			index_insert(idx, e->keys, kisnull, &tup->t_self, rel, UNIQUE_CHECK_NO, true, ii);
	}
	else
	{
		heap_insert(rel, tup, GetCurrentCommandId(true), 0, NULL);
		index_insert(idx, e->keys, kisnull, &tup->t_self, rel, UNIQUE_CHECK_YES, false, ii);
	}
	if (st->use_tid)
		ExecClearTuple(st->srcslot);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(tmpcxt);
	mark_key(st, rel, e);
}

/* Appends a row version of a winner's key to the targets (grown by doubling). */
static void
add_target(UpsertTarget **targets, uint64 *ntargets, uint64 *maxtargets, ItemPointer tid, MatEntry *e)
{
	if (*ntargets == *maxtargets)
	{
		*maxtargets *= 2;
		*targets = repalloc_huge(*targets, sizeof(UpsertTarget) * *maxtargets);
	}
	(*targets)[*ntargets].tid = *tid;
	(*targets)[(*ntargets)++].e = e;
}

/*
 * The merge of pass 1 needs the winners in the index's order, which mat_sort_entries gives for
 * integer keys (numeric order, key by key, as btree orders them), and pays off when the winners
 * are at least a sixteenth of the index's entries (a descent costs more than 16 entries read in
 * order). The entries are bounded from the index's size (at most 400 integer keys per 8 kB
 * page), not from statistics that may be missing.
 */
static bool
merge_ok(MatState *st, Relation idx, uint64 n)
{
	return st->int_keys &&
		(double) n * 16 >= (double) RelationGetNumberOfBlocks(idx) * (BLCKSZ / 20);
}

/* Winner e's key against an index tuple's, in key order (integer keys: see merge_ok). */
static int
cmp_index_key(MatState *st, MatEntry *e, IndexTuple itup, TupleDesc itupdesc)
{
	for (int k = 0; k < st->nkeys; k++)
	{
		bool		isnull;
		Datum		d = index_getattr(itup, k + 1, itupdesc, &isnull);
		int64		x = int_key(st->key_type[k], e->keys[k]);
		int64		y = isnull ? PG_INT64_MAX : int_key(st->key_type[k], d);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

/*
 * Writes the n winners (mat_upsert_ok held) as described in the file header; returns the rows
 * inserted or updated. Two passes, so that the online table's pages are each visited once: the
 * key index is read in key order for the row versions of every winner's key, then those are
 * visited in physical order (visibility under the run's snapshot, the never-backwards
 * comparison, the update, which then finds the page in cache and mostly stays on it: HOT);
 * keys with no live row are inserted last, in key order. Caller: the snapshot st->snap
 * active, SPI connected as the owner.
 */
uint64
mat_upsert_winners(MatState *st, Relation rel, MatEntry **ents, uint64 n)
{
	Relation	idx = mat_plain_key_index(st, rel);
	IndexInfo  *ii = BuildIndexInfo(idx);
	ScanKeyData skey[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	IndexFetchTableData *fetch;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	int			natts = RelationGetDescr(rel)->natts;
	Datum	   *vals = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc0(sizeof(bool) * natts);
	RegProcedure eqproc[INDEX_MAX_KEYS];
	uint64		written = 0;
	uint64		ntargets = 0;
	uint64		maxtargets = Max(n, 16);
	UpsertTarget *targets = MemoryContextAllocHuge(st->cxt, sizeof(UpsertTarget) * maxtargets);
	MemoryContext tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "fs materialize upsert row",
												 ALLOCSET_DEFAULT_SIZES);

	for (int k = 0; k < st->nkeys; k++)
	{
		Oid			opc = idx->rd_opcintype[k];
		Oid			op = get_opfamily_member(idx->rd_opfamily[k], opc, opc, BTEqualStrategyNumber);

		if (!OidIsValid(op))
			elog(ERROR, "missing equality operator for the key index of the online table");
		eqproc[k] = get_opcode(op);
	}

	/* 1. key order: every row version the index has for each winner's key */
	mat_sort_entries(st, ents, n, false);
	for (uint64 i = 0; i < n; i++)
		ents[i]->keep = true;	/* until its row online is found */
	if (merge_ok(st, idx, n))
	{
		/*
		 * Many winners for the table (an incremental run over a good share of the entities):
		 * one scan of the whole key index in key order, merged with the sorted winners, reads
		 * each index page once instead of descending the tree once per winner.
		 */
		uint64		i = 0;
		uint64		seen = 0;
		ItemPointer tid;

		scan = index_beginscan(rel, idx, st->snap, 0, 0);
		scan->xs_want_itup = true;
		index_rescan(scan, NULL, 0, NULL, 0);
		while (i < n && (tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
		{
			int			c = 0;

			while (i < n && (c = cmp_index_key(st, ents[i], scan->xs_itup, scan->xs_itupdesc)) < 0)
				i++;
			if (i < n && c == 0)
				add_target(&targets, &ntargets, &maxtargets, tid, ents[i]);
			if ((++seen & 0x3FFF) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		index_endscan(scan);
	}
	else
	{
		scan = index_beginscan(rel, idx, st->snap, st->nkeys, 0);
		for (uint64 i = 0; i < n; i++)
		{
			ItemPointer tid;

			if (i + UPSERT_PREFETCH < n)
				__builtin_prefetch(ents[i + UPSERT_PREFETCH]);
			for (int k = 0; k < st->nkeys; k++)
			{
				ScanKeyInit(&skey[k], k + 1, BTEqualStrategyNumber, eqproc[k], ents[i]->keys[k]);
				skey[k].sk_collation = idx->rd_indcollation[k];
			}
			index_rescan(scan, skey, st->nkeys, NULL, 0);
			while ((tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
				add_target(&targets, &ntargets, &maxtargets, tid, ents[i]);
			if ((i & 0x3FF) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		index_endscan(scan);
	}

	/* 2. physical order: the live version of each key, compared, replaced when older */
	qsort(targets, ntargets, sizeof(UpsertTarget), cmp_targets);
	fetch = table_index_fetch_begin(rel);
	for (uint64 t = 0; t < ntargets; t++)
	{
		MatEntry   *e = targets[t].e;
		bool		call_again = false;
		bool		all_dead = false;
		int64		oe,
					oc,
					wc;

		if (t + UPSERT_PREFETCH < ntargets)
			__builtin_prefetch(targets[t + UPSERT_PREFETCH].e);
		if (!e->keep ||
			!table_index_fetch_tuple(fetch, &targets[t].tid, st->snap, slot, &call_again, &all_dead))
			continue;
		e->keep = false;		/* its live row is found: written or kept, not inserted */

		/* the never-backwards rule: only a strictly newer (event, created) replaces it */
		slot_getsomeattrs(slot, st->col_cr + 1);
		oe = DatumGetInt64(slot->tts_values[st->col_ev]);
		oc = slot->tts_isnull[st->col_cr] ? DT_NOBEGIN : DatumGetInt64(slot->tts_values[st->col_cr]);
		wc = e->c_null ? DT_NOBEGIN : e->c;
		if (oe < e->e || (oe == e->e && oc < wc))
		{
			ItemPointerData otid = slot->tts_tid;

			ExecClearTuple(slot);
			write_winner(st, rel, idx, ii, e, &otid, vals, nulls, tmpcxt);
			written++;
		}
		else
			ExecClearTuple(slot);
		if ((t & 0x3FF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	table_index_fetch_end(fetch);

	/* 3. keys not online, in key order */
	for (uint64 i = 0; i < n; i++)
	{
		if (!ents[i]->keep)
			continue;
		write_winner(st, rel, idx, ii, ents[i], NULL, vals, nulls, tmpcxt);
		written++;
		if ((i & 0x3FF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, RowExclusiveLock);
	MemoryContextDelete(tmpcxt);
	pfree(targets);
	return written;
}
