/*
 * materialize_write.c — the write half of the one-pass materialization path (design in
 * materialize_scan.c's header): meeting the online table with the winners. Reading it once to
 * drop winners that are not strictly newer (merge), the bulk insert into an empty online table
 * (heap_multi_insert, then key-ordered index entries), the C upsert into a non-empty one
 * (materialize_upsert.c), or else the upsert of the remaining winners from a tuplestore through
 * ON CONFLICT ... WHERE strictly newer; sorts by TID and by key.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/queryenvironment.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "materialize_sql.h"
#include "materialize_upsert.h"
#include "materialize_winners.h"
#include "materialize_write.h"
#include "online_table.h"

/*
 * Reads the online table once: winners not strictly newer than the row online are dropped
 * (the never-backwards rule of the upsert's WHERE: (event, COALESCE(created, -infinity))).
 * Returns the number of rows online.
 */
uint64
mat_merge_online(MatState *st, Relation rel)
{
	Snapshot	snap = RegisterSnapshot(GetTransactionSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	uint64		n = 0;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MatEntry   *ent;
		int64		oe,
					oc,
					wc;

		n++;
		slot_getsomeattrs(slot, st->col_cr + 1);
		ent = mat_lookup(st, slot->tts_values,
						 fs_key_hash(st->nkeys, st->int_keys, st->key_hash, st->key_coll, slot->tts_values),
						 false);
		if (ent == NULL || !ent->keep)
			continue;
		oe = DatumGetInt64(slot->tts_values[st->col_ev]);
		oc = slot->tts_isnull[st->col_cr] ? DT_NOBEGIN : DatumGetInt64(slot->tts_values[st->col_cr]);
		wc = ent->c_null ? DT_NOBEGIN : ent->c;
		if (!(oe < ent->e || (oe == ent->e && oc < wc)))
			ent->keep = false;
		if ((n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	return n;
}

/* The write statement over the winners' relation (alias w). */
static char *
write_sql(FsView *v, const char *enr, bool upsert, bool order)
{
	StringInfoData sql;
	StringInfoData cols;
	const char *oe = quote_identifier(FS_ONLINE_EVENT_COL);
	const char *oc = quote_identifier(FS_ONLINE_CREATED_COL);

	initStringInfo(&cols);
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&cols, "%s%s", i > 0 ? ", " : "", quote_identifier(v->entity.keys[i]));
	appendStringInfo(&cols, ", %s, %s", oe, oc);
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&cols, ", %s", quote_identifier(v->features[i].name));

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS o (%s) SELECT * FROM %s w",
					 fs_online_table_qualname(v->view_id), cols.data, enr);
	if (order)
		for (int i = 0; i < v->entity.nkeys; i++)
			appendStringInfo(&sql, "%s w.%s", i > 0 ? "," : " ORDER BY", quote_identifier(v->entity.keys[i]));
	if (!upsert)
		return sql.data;
	fs_mat_append_upsert(&sql, v);
	return sql.data;
}


#define MAT_BATCH 1000

/*
 * Empty online table: the winners go in with heap_multi_insert (one WAL record per page, as
 * COPY does; rows in source order in TID mode, so the source is read sequentially), then the
 * key index gets its entries in key order (each lands on the rightmost leaf). Same WAL and
 * crash safety as INSERT; no trigger fires, so the caller marks the view written.
 */
static uint64
bulk_insert(MatState *st, Relation rel, Relation idx, MatEntry **ents, uint64 n)
{
	TupleTableSlot *slots[MAT_BATCH];
	BulkInsertState bis = GetBulkInsertState();
	CommandId	cid = GetCurrentCommandId(true);
	IndexInfo  *ii = BuildIndexInfo(idx);
	int			nb = 0;
	uint64		first = 0;
	bool		kisnull[INDEX_MAX_KEYS] = {false};

	Datum	   *vals = palloc(sizeof(Datum) * RelationGetDescr(rel)->natts);
	bool	   *nulls = palloc0(sizeof(bool) * RelationGetDescr(rel)->natts);

	for (int i = 0; i < MAT_BATCH; i++)
		slots[i] = MakeSingleTupleTableSlot(RelationGetDescr(rel),
											st->use_tid ? &TTSOpsHeapTuple : &TTSOpsMinimalTuple);
	if (st->use_tid)
		mat_sort_entries(st, ents, n, true);
	for (uint64 i = 0; i < n; i++)
	{
		MatEntry   *e = ents[i];
		TupleTableSlot *slot = slots[nb++];

		ExecClearTuple(slot);
		if (st->use_tid)
		{
			mat_winner_values(st, e, vals, nulls);
			/* formed once, owned by the slot: the source slot is reused for the next row */
			ExecStoreHeapTuple(heap_form_tuple(RelationGetDescr(rel), vals, nulls), slot, true);
			ExecClearTuple(st->srcslot);
		}
		else
		{
			ExecStoreMinimalTuple(e->tup, slot, false);
		}
		if (nb == MAT_BATCH || i == n - 1)
		{
			table_multi_insert(rel, slots, nb, cid, 0, bis);
			for (int j = 0; j < nb; j++)
				ents[first + j]->tid = slots[j]->tts_tid;
			first += nb;
			nb = 0;
			CHECK_FOR_INTERRUPTS();
		}
	}
	FreeBulkInsertState(bis);
	for (int i = 0; i < MAT_BATCH; i++)
		ExecDropSingleTupleTableSlot(slots[i]);

	mat_sort_entries(st, ents, n, false);
	for (uint64 i = 0; i < n; i++)
	{
		index_insert(idx, ents[i]->keys, kisnull, &ents[i]->tid, rel, UNIQUE_CHECK_YES, false, ii);
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return n;
}

/*
 * Puts the kept winners into a tuplestore and writes them in one statement, in key order (index
 * inserts then mostly append to the rightmost btree page). TID mode reads the winners' features
 * from the source first, in physical order.
 */
uint64
mat_write_winners(MatState *st, Relation rel, bool upsert)
{
	MatEntry  **ents;
	uint64		n = 0;
	Tuplestorestate *ts;
	EphemeralNamedRelation enr;
	uint64		written;
	bool		order = false;
	instr_time	t0,
				t1;

	INSTR_TIME_SET_CURRENT(t0);
	ents = MemoryContextAllocHuge(st->cxt, sizeof(MatEntry *) * Max(st->nentries, 1));
	for (uint32 i = 0; i <= st->mask; i++)
	{
		MatEntry   *e = MAT_ENTRY(st, i);

		if (e->used && e->has_row && e->keep)
			ents[n++] = e;
	}
	if (n == 0)
		return 0;

	if (!upsert)
	{
		Relation	idx = mat_plain_key_index(st, rel);

		if (idx)
		{
			written = bulk_insert(st, rel, idx, ents, n);
			index_close(idx, RowExclusiveLock);
			fs_online_mark_written(st->v->view_id);
			return written;
		}
	}
	else if (mat_upsert_ok(st, rel))
	{
		/* the executor's upsert would do no more: write without it (materialize_upsert.c) */
		written = mat_upsert_winners(st, rel, ents, n);	/* marks the keys it writes */
		return written;
	}

	ts = tuplestore_begin_heap(false, false, Max(work_mem, 1024));
	if (st->use_tid)
	{
		int			natts = st->desc->natts;
		Datum	   *vals = palloc(sizeof(Datum) * natts);
		bool	   *nulls = palloc0(sizeof(bool) * natts);

		mat_sort_entries(st, ents, n, true);
		for (uint64 i = 0; i < n; i++)
		{
			MatEntry   *e = ents[i];

			mat_winner_values(st, e, vals, nulls);
			tuplestore_putvalues(ts, st->desc, vals, nulls);
			ExecClearTuple(st->srcslot);
			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		order = true;			/* index inserts in key order */
	}
	else
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(st->desc, &TTSOpsMinimalTuple);

		mat_sort_entries(st, ents, n, false);
		for (uint64 i = 0; i < n; i++)
		{
			ExecStoreMinimalTuple(ents[i]->tup, slot, false);
			tuplestore_puttupleslot(ts, slot);
			ExecClearTuple(slot);
			pfree(ents[i]->tup);
			ents[i]->tup = NULL;
		}
		ExecDropSingleTupleTableSlot(slot);
	}

	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	st->fill_ms = INSTR_TIME_GET_MILLISEC(t1);
	enr = palloc0(sizeof(EphemeralNamedRelationData));
	enr->md.name = "fs_mat_winners";
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = st->desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = (double) n;
	enr->reldata = ts;
	if (SPI_register_relation(enr) != SPI_OK_REL_REGISTER)
		elog(ERROR, "SPI_register_relation failed");
	if (SPI_execute(write_sql(st->v, "fs_mat_winners", upsert, order), false, 0) != SPI_OK_INSERT)
		elog(ERROR, "materialization write failed");
	written = SPI_processed;
	SPI_unregister_relation("fs_mat_winners");
	tuplestore_end(ts);
	return written;
}

