/*
 * materialize_winners.h — the state of one run of the one-pass materialization path and its
 * winners' table, the bottom of that path: the scan (materialize_scan.c) fills it, the writers
 * (materialize_write.c, materialize_upsert.c) read it. Offers the MatState and MatEntry
 * structures, the per-row key hash, equality and lookup, a winner's online row, and the
 * winners' order for writing. Other modules use materialize_scan.h.
 */
#ifndef FS_MATERIALIZE_WINNERS_H
#define FS_MATERIALIZE_WINNERS_H

#include "postgres.h"

#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "storage/itemptr.h"
#include "tcop/dest.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#include "huge_alloc.h"
#include "key_hash.h"
#include "pit_join_int.h"
#include "registry.h"

/* One entity: its key, its winner's times and the winner itself (scan column layout). */
typedef struct MatEntry
{
	uint32		hash;
	bool		used;
	bool		c_null;
	bool		keep;			/* false: the row online is as new or newer */
	int64		e;
	int64		c;
	ItemPointerData tid;		/* TID mode: where the winner is in the source */
	bool		has_row;
	MinimalTuple tup;			/* copy mode: the winner */
	Datum		keys[FLEXIBLE_ARRAY_MEMBER];
} MatEntry;

/* Rows whose table cell is being prefetched (TID mode with by-value keys), as in pit_scan.c. */
#define MAT_PIPE 32

typedef struct MatPending
{
	Datum		keys[FS_MAX_KEYS];
	int64		e;
	int64		c;
	bool		c_null;
	uint32		h;
	ItemPointerData tid;
} MatPending;

typedef struct MatState
{
	DestReceiver pub;			/* first: the state is the scan's DestReceiver */
	FsView	   *v;
	MemoryContext cxt;			/* winners, keys and the table */
	TupleDesc	desc;			/* the online table's columns (= the scan's, in copy mode) */
	bool		use_tid;		/* TID mode: the scan returns keys, times and ctid only */
	bool		direct;			/* TID mode read through the table AM, not the executor */
	int			nchunks;		/* > 0: keep only keys of chunk `chunk` (a backfill) */
	int			chunk;
	Relation	src;			/* TID mode: the source table, and how to read its features */
	Snapshot	snap;
	TupleTableSlot *srcslot;
	AttrNumber *feat_att;
	AttrNumber	feat_max;
	Datum	   *tvals;			/* TID mode tie-break: the winner's features */
	bool	   *tnulls;
	int			nkeys;
	int			col_ev;
	int			col_cr;
	int			col_f0;
	int			nfeat;
	bool		int_keys;		/* every key int2/int4/int8: hash and compare the Datum bits */
	Oid			key_type[FS_MAX_KEYS];
	Oid			key_coll[FS_MAX_KEYS];
	int16		key_len[FS_MAX_KEYS];
	bool		key_byval[FS_MAX_KEYS];
	FmgrInfo	key_hash[FS_MAX_KEYS];
	FmgrInfo	key_eq[FS_MAX_KEYS];
	FmgrInfo   *key_cmp[FS_MAX_KEYS];	/* NULL: no btree order (write order then arbitrary) */
	PitView		tie;			/* nfeat, feat_cmp, feat_coll: pit_features_cmp's view */
	TupleTableSlot *tieslot;
	char	   *etab;
	char	   *etab_raw;		/* allocation holding etab (aligned for huge pages) */
	double		est_entities;
	bool		pipe;
	int			npend;
	MatPending	pend[MAT_PIPE];
	Size		stride;
	uint32		mask;
	uint64		nentries;
	uint64		rows;			/* rows read */
	Size		mem_limit;
	bool		overflow;
	double		fill_ms;		/* part of the write: reading winners into the tuplestore */
} MatState;

#define MAT_ENTRY(st, pos) ((MatEntry *) ((st)->etab + (Size) (pos) * (st)->stride))

/* Integer keys as int64 (their Datums differ in width). */
static inline int64
int_key(Oid type, Datum d)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

/*
 * A zeroed table of cells, in the winners' context (pfree *raw). Big ones are on huge pages:
 * one random probe per source row is the scan's main cost, and TLB misses (and page faults
 * while it fills) would double it.
 */
static inline char *
mat_alloc_table(MatState *st, Size bytes, char **raw)
{
	return fs_alloc_huge(st->cxt, bytes, 2 * FS_HUGE_PAGE, true, raw);
}

extern MatEntry *mat_lookup(MatState *st, const Datum *k, uint32 h, bool insert);
extern void mat_fetch_features(MatState *st, ItemPointer tid, TupleTableSlot *slot, Datum *vals, bool *nulls);
extern void mat_winner_values(MatState *st, MatEntry *e, Datum *vals, bool *nulls);
extern void mat_sort_entries(MatState *st, MatEntry **ents, uint64 n, bool by_tid);

#endif
