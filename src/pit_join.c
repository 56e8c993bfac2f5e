/*
 * pit_join.c — the point-in-time ("as-of") join of design.md section 2, in C.
 *
 * How it works. Everything is read under the statement's snapshot. Spine rows are processed in
 * batches of consecutive rows sized so that a batch's state fits in the hash memory limit
 * (work_mem * hash_mem_multiplier); a spine table is read by two scans in step (one builds a
 * batch, the other emits it), other spines are first materialized in a tuplestore through SPI.
 * For each batch and each feature view:
 *
 *   1. build: an open-addressing hash table of the view's entity keys over the batch's spine
 *      rows, a bloom filter of them, and per spine row a slot (per key in time order);
 *   2. read the source: every leaf of its inheritance tree through the table AM (plain heap:
 *      in place, only keys and times, prefetching), or, for few keys and an index led by the key
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
 * (B = 1 when the state fits), memory O(S / B). See README "Point-in-time join".
 */
#include "postgres.h"

#include <sys/mman.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "utils/syscache.h"
#include "access/heapam_xlog.h"
#include "storage/bufmgr.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "optimizer/plancat.h"
#include "portability/instr_time.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "pit_join.h"
#include "pit_join_int.h"
#include "registry.h"

PitStats	pit_last_stats;

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
 * One spine row of the batch (slots are in spine order) with the best source row seen so far
 * whose start time falls between the previous spine time of the same key and this one. The
 * best row's times are kept inline so that most history rows are rejected without touching
 * the row itself.
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
	bool		valid;			/* keys and time are not NULL */
	uint32		epos;			/* table cell of its key (while building) */
} PitSlot;

/*
 * A key of the batch, stored in the open-addressing table itself (one cache line per probe).
 * A key with one spine row points at its slot; a key with several at a run of idx[], the
 * slot numbers ordered by time.
 */
typedef struct PitEntry
{
	uint32		hash;
	int32		count;			/* spine rows with this key; -1 = empty table cell */
	int32		start;			/* count == 1: slot number; else offset into idx */
	int32		fill;
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

typedef struct PitView
{
	FsView	   *fv;
	Oid			relid;
	bool		use_spi;
	List	   *leaves;			/* of PitLeaf *, when !use_spi */
	int			nkeys;
	int			spine_key[FS_MAX_KEYS]; /* 0-based spine column */
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

	/* per batch */
	int			nentries;
	uint32		mask;
	Size		estride;		/* bytes per PitEntry with its keys */
	char	   *etab;			/* (mask + 1) entries, linear probing */
	uint64	   *bloom;			/* one bit per key hash: rejects most absent keys in cache */
	uint32		bloom_shift;
	PitSlot    *slots;			/* per batch row */
	int32	   *idx;			/* slot numbers of keys with several spine rows */
	int			nslots;
	PitRow	  **winner;			/* per batch row */
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
	Oid			spine_relid;
	bool		spine_spi;
	TupleDesc	spine_desc;		/* non-dropped spine columns */
	AttrNumber *spine_att;		/* physical attnum of each spine_desc column */
	int			spine_ts;		/* 0-based column in spine_desc */
	Oid			spine_ts_type;
	bool		as_of_created;
	int			nviews;
	PitView   **views;
	int			nout;
	PitOutFeature *out;
	TupleDesc	desc;
	size_t		row_bytes;		/* estimated batch memory per spine row */
};

/*
 * Converts a time value to the domain the comparison with the spine time uses: timestamptz
 * unless both sides are timestamp (as SQL's cross-type comparison does, in the session time zone).
 */
static inline int64
to_dom(int64 v, Oid type, bool dom_tz)
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

/*
 * Allocates a large array in the current context on transparent huge pages where the kernel
 * offers them (madvise mode): the key table and slots are probed at random, and with 4 kB pages
 * both the first touch (page faults) and the TLB misses cost more than the probe itself. Never
 * pfree'd individually; freed with its context.
 */
static void *
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

/* Integer types whose equality is equality of the Datum bits (hashed and compared inline). */
static bool
is_bitwise_key_type(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == OIDOID || t == DATEOID;
}

/* ---------------------------------------------------------------------------------------
 * Planning: resolve, validate, name the output.
 * --------------------------------------------------------------------------------------- */

/* A registered column of the view's source, still there: its attnum, type, typmod, collation. */
static AttrNumber
source_column(PitView *v, const char *col, const char *what, Oid *type, int32 *typmod, Oid *coll)
{
	AttrNumber	att = get_attnum(v->relid, col);

	if (att == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("source \"%s.%s\" of feature view \"%s\" has no column \"%s\"",
						v->fv->source_schema, v->fv->source_name, v->fv->name, col),
				 errdetail("The view's %s column was dropped or renamed after registration.", what),
				 errhint("Register the view again over the current source.")));
	get_atttypetypmodcoll(v->relid, att, type, typmod, coll);
	return att;
}

/*
 * Finds a valid, non-partial btree index of a leaf whose leading columns are the entity key
 * (in any order) with the key types' default equality and collations, so that a small spine
 * can probe it instead of scanning the leaf. Also estimates the leaf's size.
 */
static void
find_key_index(PitView *v, PitLeaf *leaf)
{
	Relation	rel = table_open(leaf->relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	int32	   *widths = palloc0(sizeof(int32) * (RelationGetNumberOfAttributes(rel) + 1));
	BlockNumber pages;
	double		allvis;

	estimate_rel_size(rel, widths, &pages, &leaf->tuples, &allvis);
	leaf->index = InvalidOid;
	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ix = irel->rd_index;
		bool		ok = ix->indisvalid && ix->indisready && ix->indislive &&
			irel->rd_rel->relam == BTREE_AM_OID && ix->indnkeyatts >= v->nkeys &&
			heap_attisnull(irel->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(irel->rd_indextuple, Anum_pg_index_indexprs, NULL);
		bool		used[FS_MAX_KEYS] = {false};

		for (int i = 0; ok && i < v->nkeys; i++)
		{
			int			k;

			for (k = 0; k < v->nkeys; k++)
				if (!used[k] && leaf->att[k] == ix->indkey.values[i])
					break;
			if (k == v->nkeys ||
				irel->rd_indcollation[i] != v->key_coll[k] ||
				get_opfamily_member(irel->rd_opfamily[i], irel->rd_opcintype[i], irel->rd_opcintype[i],
									BTEqualStrategyNumber) != lookup_type_cache(v->key_type[k], TYPECACHE_EQ_OPR)->eq_opr)
				ok = false;
			else
			{
				used[k] = true;
				leaf->index_key[i] = k;
			}
		}
		index_close(irel, NoLock);
		if (ok)
		{
			leaf->index = lfirst_oid(lc);
			break;
		}
	}
	table_close(rel, NoLock);
}

/*
 * Decides how a source is read: through the table AM (every leaf of its inheritance tree) or,
 * for views, foreign tables and relations under row-level security, through SPI.
 */
static void
plan_source_access(PitView *v)
{
	char		kind = get_rel_relkind(v->relid);
	List	   *rels;
	ListCell   *lc;

	v->use_spi = !(kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE) ||
		check_enable_rls(v->relid, InvalidOid, false) == RLS_ENABLED;
	if (v->use_spi)
		return;
	rels = find_all_inheritors(v->relid, AccessShareLock, NULL);
	foreach(lc, rels)
	{
		Oid			relid = lfirst_oid(lc);
		char		k = get_rel_relkind(relid);
		PitLeaf    *leaf;

		if (k == RELKIND_PARTITIONED_TABLE)
			continue;
		if (k != RELKIND_RELATION)
		{
			v->use_spi = true;	/* e.g. a foreign partition */
			v->leaves = NIL;
			return;
		}
		leaf = palloc0(sizeof(PitLeaf));
		leaf->relid = relid;
		leaf->att = palloc(sizeof(AttrNumber) * v->ncols);
		for (int c = 0; c < v->ncols; c++)
		{
			leaf->att[c] = get_attnum(relid, v->col_names[c]);
			if (leaf->att[c] == InvalidAttrNumber)
				elog(ERROR, "column \"%s\" missing in relation %u", v->col_names[c], relid);
			if (c < v->col_feat0)
				leaf->prefix_max = Max(leaf->prefix_max, leaf->att[c]);
			leaf->all_max = Max(leaf->all_max, leaf->att[c]);
		}
		find_key_index(v, leaf);
		v->leaves = lappend(v->leaves, leaf);
	}
}

/*
 * Validates one view version against the spine and its source (privilege, key columns and
 * types, time columns, feature types) and prepares comparison and hashing functions.
 */
static PitView *
plan_view(PitPlan *p, FsView *fv)
{
	PitView    *v = palloc0(sizeof(PitView));
	FsEntity   *ent = &fv->entity;
	int32		typmod;
	Oid			coll;

	v->fv = fv;
	v->relid = fs_view_source_relid(fv);
	fs_check_view_select(fv);
	v->nkeys = ent->nkeys;
	v->col_event = ent->nkeys;
	v->col_created = fv->created_time ? ent->nkeys + 1 : -1;
	v->col_feat0 = ent->nkeys + 1 + (fv->created_time ? 1 : 0);
	v->nfeat = fv->nfeatures;
	v->ncols = v->col_feat0 + v->nfeat;
	v->col_names = palloc(sizeof(char *) * v->ncols);
	v->bitwise_keys = true;

	for (int k = 0; k < ent->nkeys; k++)
	{
		const char *key = ent->keys[k];
		int			sk = -1;
		Oid			stype;
		TypeCacheEntry *tc;

		v->col_names[k] = ent->keys[k];
		source_column(v, key, "key", &v->key_type[k], &typmod, &v->key_coll[k]);
		for (int i = 0; i < p->spine_desc->natts; i++)
			if (strcmp(NameStr(TupleDescAttr(p->spine_desc, i)->attname), key) == 0)
				sk = i;
		if (sk < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("spine \"%s\" has no column \"%s\"", get_rel_name(p->spine_relid), key),
					 errdetail("Feature view \"%s\" is keyed by entity \"%s\", whose key columns the spine must have.",
							   fv->name, ent->name),
					 errhint("Add the column to the spine, or select it under that name in a view.")));
		stype = TupleDescAttr(p->spine_desc, sk)->atttypid;
		if (stype != v->key_type[k])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("spine column \"%s\" has type %s, but feature view \"%s\" has key type %s",
							key, format_type_be(stype), fv->name, format_type_be(v->key_type[k])),
					 errhint("Cast the spine column in a view: %s::%s.", key, format_type_be(v->key_type[k]))));
		v->spine_key[k] = sk;
		get_typlenbyval(v->key_type[k], &v->key_len[k], &v->key_byval[k]);
		if (!is_bitwise_key_type(v->key_type[k]))
			v->bitwise_keys = false;
		tc = lookup_type_cache(v->key_type[k], TYPECACHE_HASH_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO);
		if (!OidIsValid(tc->hash_proc) || !OidIsValid(tc->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("key type %s of feature view \"%s\" has no hash equality",
							format_type_be(v->key_type[k]), fv->name)));
		fmgr_info_copy(&v->key_hash[k], &tc->hash_proc_finfo, CurrentMemoryContext);
		fmgr_info_copy(&v->key_eq[k], &tc->eq_opr_finfo, CurrentMemoryContext);
	}

	v->col_names[v->col_event] = fv->event_time;
	source_column(v, fv->event_time, "event time", &v->event_type, &typmod, &coll);
	if (v->event_type != TIMESTAMPTZOID && v->event_type != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("event time column \"%s\" of feature view \"%s\" has type %s",
						fv->event_time, fv->name, format_type_be(v->event_type)),
				 errhint("Event and created times must be timestamptz or timestamp.")));
	v->dom_tz_event = !(p->spine_ts_type == TIMESTAMPOID && v->event_type == TIMESTAMPOID);
	if (v->col_created >= 0)
	{
		v->col_names[v->col_created] = fv->created_time;
		source_column(v, fv->created_time, "created time", &v->created_type, &typmod, &coll);
		if (v->created_type != TIMESTAMPTZOID && v->created_type != TIMESTAMPOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("created time column \"%s\" of feature view \"%s\" has type %s",
							fv->created_time, fv->name, format_type_be(v->created_type)),
					 errhint("Event and created times must be timestamptz or timestamp.")));
		v->dom_tz_created = !(p->spine_ts_type == TIMESTAMPOID && v->created_type == TIMESTAMPOID);
	}

	v->feat_type = palloc(sizeof(Oid) * Max(v->nfeat, 1));
	v->feat_typmod = palloc(sizeof(int32) * Max(v->nfeat, 1));
	v->feat_coll = palloc(sizeof(Oid) * Max(v->nfeat, 1));
	v->feat_len = palloc(sizeof(int16) * Max(v->nfeat, 1));
	v->feat_byval = palloc(sizeof(bool) * Max(v->nfeat, 1));
	v->feat_cmp = palloc0(sizeof(FmgrInfo *) * Max(v->nfeat, 1));
	for (int f = 0; f < v->nfeat; f++)
	{
		TypeCacheEntry *tc;

		v->col_names[v->col_feat0 + f] = fv->features[f].name;
		source_column(v, fv->features[f].name, "feature", &v->feat_type[f], &v->feat_typmod[f], &v->feat_coll[f]);
		if (v->feat_type[f] != fv->features[f].type)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("feature \"%s\" of feature view \"%s\" has type %s in its source, but was registered as %s",
							fv->features[f].name, fv->name, format_type_be(v->feat_type[f]),
							format_type_be(fv->features[f].type)),
					 errhint("Register the view again to record the new type.")));
		get_typlenbyval(v->feat_type[f], &v->feat_len[f], &v->feat_byval[f]);
		tc = lookup_type_cache(v->feat_type[f], TYPECACHE_CMP_PROC_FINFO);
		if (OidIsValid(tc->cmp_proc))
		{
			v->feat_cmp[f] = palloc(sizeof(FmgrInfo));
			fmgr_info_copy(v->feat_cmp[f], &tc->cmp_proc_finfo, CurrentMemoryContext);
		}
	}
	plan_source_access(v);
	return v;
}

/* Appends a name to the output, erroring when it collides with one already there. */
static void
check_name_free(TupleDesc desc, int upto, const char *name, const char *ref, bool full)
{
	for (int i = 0; i < upto; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_AMBIGUOUS_COLUMN),
					 errmsg("output column name \"%s\" of feature \"%s\" is ambiguous", name, ref),
					 errdetail("Column %d of the training set already has this name.", i + 1),
					 full ? errhint("Select only one version of the view, or rename the spine column in a view.")
					 : errhint("Pass full_names => true to name feature columns view__feature.")));
}

/* See pit_join.h: everything that can be wrong with the arguments is found here. */
PitPlan *
pit_plan_create(Oid spine_relid, ArrayType *features, const char *spine_time,
				bool full_names, bool as_of_created)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "point-in-time join",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PitPlan    *p = palloc0(sizeof(PitPlan));
	Relation	spine;
	TupleDesc	rd;
	List	   *refs;
	ListCell   *lc;
	int			n;

	p->cxt = cxt;
	p->spine_relid = spine_relid;
	p->as_of_created = as_of_created;

	/* The spine: any relation with columns; read through SPI unless a plain table. */
	/* a stale or made-up OID (0::regclass, a dropped table's) is the caller's error, not XX000 */
	spine = try_relation_open(spine_relid, AccessShareLock);
	if (spine == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("spine relation with OID %u does not exist", spine_relid)));
	if (spine->rd_rel->relkind != RELKIND_RELATION && spine->rd_rel->relkind != RELKIND_VIEW &&
		spine->rd_rel->relkind != RELKIND_MATVIEW && spine->rd_rel->relkind != RELKIND_PARTITIONED_TABLE &&
		spine->rd_rel->relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("spine \"%s\" is not a table or view", RelationGetRelationName(spine))));
	p->spine_spi = spine->rd_rel->relkind != RELKIND_RELATION ||
		check_enable_rls(spine_relid, InvalidOid, false) == RLS_ENABLED ||
		spine->rd_rel->relhassubclass;
	if (!p->spine_spi &&
		pg_class_aclcheck(spine_relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(spine_relid, GetUserId(), ACL_SELECT, ACLMASK_ALL) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(spine));
	rd = RelationGetDescr(spine);
	n = 0;
	for (int i = 0; i < rd->natts; i++)
		if (!TupleDescAttr(rd, i)->attisdropped)
			n++;
	p->spine_desc = CreateTemplateTupleDesc(n);
	p->spine_att = palloc(sizeof(AttrNumber) * Max(n, 1));
	p->spine_ts = -1;
	n = 0;
	for (int i = 0; i < rd->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(rd, i);

		if (a->attisdropped)
			continue;
		TupleDescInitEntry(p->spine_desc, n + 1, NameStr(a->attname), a->atttypid, a->atttypmod, 0);
		TupleDescInitEntryCollation(p->spine_desc, n + 1, a->attcollation);
		p->spine_att[n] = a->attnum;
		if (strcmp(NameStr(a->attname), spine_time) == 0)
			p->spine_ts = n;
		n++;
	}
	relation_close(spine, NoLock);
	if (p->spine_ts < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("spine \"%s\" has no column \"%s\"", get_rel_name(spine_relid), spine_time),
				 errhint("Name the spine's timestamp column with spine_time => 'column'.")));
	p->spine_ts_type = TupleDescAttr(p->spine_desc, p->spine_ts)->atttypid;
	if (p->spine_ts_type != TIMESTAMPTZOID && p->spine_ts_type != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("spine time column \"%s\" has type %s", spine_time, format_type_be(p->spine_ts_type)),
				 errhint("The spine time must be timestamptz or timestamp; cast it in a view.")));

	/* Features: one PitView per distinct view version, in order of first reference. */
	refs = fs_resolve_feature_refs(features);
	p->nout = list_length(refs);
	p->out = palloc0(sizeof(PitOutFeature) * p->nout);
	p->views = palloc0(sizeof(PitView *) * p->nout);
	n = 0;
	foreach(lc, refs)
	{
		FsFeatureRef *r = lfirst(lc);
		int			vi;

		for (vi = 0; vi < p->nviews; vi++)
			if (p->views[vi]->fv->view_id == r->view->view_id)
				break;
		if (vi == p->nviews)
			p->views[p->nviews++] = plan_view(p, r->view);
		p->out[n].view = vi;
		p->out[n].feat = r->feature_index;
		p->out[n].ref = psprintf("%s@%d:%s", r->view->name, r->view->version,
								 r->view->features[r->feature_index].name);
		n++;
	}

	/* Output descriptor: spine columns, then one column per feature. */
	p->desc = CreateTemplateTupleDesc(p->spine_desc->natts + p->nout);
	for (int i = 0; i < p->spine_desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(p->spine_desc, i);

		TupleDescInitEntry(p->desc, i + 1, NameStr(a->attname), a->atttypid, a->atttypmod, 0);
		TupleDescInitEntryCollation(p->desc, i + 1, a->attcollation);
	}
	for (int k = 0; k < p->nout; k++)
	{
		PitView    *v = p->views[p->out[k].view];
		int			f = p->out[k].feat;
		const char *fname = v->fv->features[f].name;
		char	   *name = full_names ? psprintf("%s__%s", v->fv->name, fname) : pstrdup(fname);
		int			col = p->spine_desc->natts + k;

		if (strlen(name) >= NAMEDATALEN)
			name[pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1)] = '\0';
		check_name_free(p->desc, col, name, p->out[k].ref, full_names);
		TupleDescInitEntry(p->desc, col + 1, name, v->feat_type[f], v->feat_typmod[f], 0);
		TupleDescInitEntryCollation(p->desc, col + 1, v->feat_coll[f]);
	}

	/* Estimated batch memory per spine row, for sizing batches. */
	p->row_bytes = sizeof(Datum) * 2;
	for (int vi = 0; vi < p->nviews; vi++)
	{
		PitView    *v = p->views[vi];

		p->row_bytes += sizeof(PitSlot) + sizeof(int32) + sizeof(void *) +
			2 * (offsetof(PitEntry, keys) + sizeof(Datum) * v->nkeys) + 16 * v->nkeys +
			sizeof(PitRow) + 16 + (sizeof(Datum) + sizeof(bool)) * v->nfeat;
		for (int f = 0; f < v->nfeat; f++)
			if (!v->feat_byval[f])
				p->row_bytes += get_typavgwidth(v->feat_type[f], v->feat_typmod[f]) + 16;
	}
	MemoryContextSwitchTo(old);
	return p;
}

/* The training set's row type (see pit_join.h). */
TupleDesc
pit_plan_tupdesc(PitPlan *plan)
{
	return plan->desc;
}

/* The resolved references, for the lineage. */
List *
pit_plan_feature_refs(PitPlan *plan)
{
	List	   *l = NIL;

	for (int k = 0; k < plan->nout; k++)
		l = lappend(l, plan->out[k].ref);
	return l;
}

/* The view versions used, for the lineage. */
List *
pit_plan_view_versions(PitPlan *plan, List **view_ids)
{
	List	   *l = NIL;

	*view_ids = NIL;
	for (int vi = 0; vi < plan->nviews; vi++)
	{
		l = lappend(l, psprintf("%s@%d", plan->views[vi]->fv->name, plan->views[vi]->fv->version));
		*view_ids = lappend_int(*view_ids, plan->views[vi]->fv->view_id);
	}
	return l;
}

/* All of a plan's memory is in its own context. */
void
pit_plan_free(PitPlan *plan)
{
	MemoryContextDelete(plan->cxt);
}

/* ---------------------------------------------------------------------------------------
 * Build: the batch's keys and slots.
 * --------------------------------------------------------------------------------------- */

static inline uint32
mix64(uint64 x)
{
	x ^= x >> 33;
	x *= UINT64CONST(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64CONST(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return (uint32) x;
}

/* Hash of a key: Datum bits for integer keys, else the types' hash functions, combined. */
static inline uint32
hash_keys(PitView *v, const Datum *k)
{
	uint32		h = 0;

	if (v->bitwise_keys)
	{
		for (int i = 0; i < v->nkeys; i++)
			h = hash_combine(h, mix64((uint64) k[i]));
		return h;
	}
	for (int i = 0; i < v->nkeys; i++)
		h = hash_combine(h, DatumGetUInt32(FunctionCall1Coll(&v->key_hash[i], v->key_coll[i], k[i])));
	return h;
}

/* Key equality with the types' default equality (bits for integer keys); keys are never NULL here. */
static inline bool
keys_equal(PitView *v, const Datum *a, const Datum *b)
{
	for (int i = 0; i < v->nkeys; i++)
	{
		if (v->bitwise_keys)
		{
			if (a[i] != b[i])
				return false;
		}
		else if (!DatumGetBool(FunctionCall2Coll(&v->key_eq[i], v->key_coll[i], a[i], b[i])))
			return false;
	}
	return true;
}

#define ENTRY_AT(v, pos) ((PitEntry *) ((v)->etab + (Size) (pos) * (v)->estride))

/* Returns the entry of the key, or NULL; with insert, adds it (copying the key). */
static inline PitEntry *
lookup_key(PitView *v, const Datum *k, uint32 h, bool insert)
{
	uint32		pos = h & v->mask;
	PitEntry   *e;

	for (;;)
	{
		e = ENTRY_AT(v, pos);
		if (e->count < 0)
			break;
		if (e->hash == h && keys_equal(v, e->keys, k))
			return e;
		pos = (pos + 1) & v->mask;
	}
	if (!insert)
		return NULL;
	v->nentries++;
	e->hash = h;
	e->count = 0;
	e->fill = 0;
	for (int i = 0; i < v->nkeys; i++)
		e->keys[i] = datumCopy(k[i], v->key_byval[i], v->key_len[i]);
	return e;
}

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

/*
 * Where spine rows come from: a scan of the spine table (two of them run in step, one for
 * building batches, one for emitting rows) or, for views and the like, a tuplestore filled
 * once through SPI and read with two read pointers.
 */
typedef struct SpineReader
{
	PitPlan    *p;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Tuplestorestate *store;
	int			readptr;
	Datum	   *vals;
	bool	   *nulls;
} SpineReader;

/* Opens a reader: read pointer readptr of store, or (store NULL) its own scan of the spine table. */
static void
spine_reader_init(SpineReader *r, PitPlan *p, Tuplestorestate *store, int readptr)
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
static bool
spine_next(SpineReader *r)
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
	slot_getallattrs(r->slot);
	for (int i = 0; i < p->spine_desc->natts; i++)
	{
		r->vals[i] = r->slot->tts_values[p->spine_att[i] - 1];
		r->nulls[i] = r->slot->tts_isnull[p->spine_att[i] - 1];
	}
	return true;
}

/* Closes a reader (the tuplestore itself is ended by the caller). */
static void
spine_reader_end(SpineReader *r)
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
		ENTRY_AT(v, i)->count = -1;
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
		while (ENTRY_AT(v, pos)->count >= 0)
			pos = (pos + 1) & v->mask;
		memcpy(ENTRY_AT(v, pos), o, stride);
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
static int
build_batch(PitPlan *p, SpineReader *rd, int maxrows, int caprows, MemoryContext bcxt)
{
	MemoryContext old = MemoryContextSwitchTo(bcxt);
	int			nrows = 0;
	int			cap = Min(maxrows, caprows);

	for (int vi = 0; vi < p->nviews; vi++)
	{
		alloc_table(p->views[vi], cap);
		p->views[vi]->slots = pit_alloc_big(sizeof(PitSlot) * cap);
	}

	while (nrows < maxrows && spine_next(rd))
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
				h = hash_keys(v, k);
				e = lookup_key(v, k, h, true);
				s->epos = (uint32) (((char *) e - v->etab) / v->estride);
			}
			if (e->count++ == 0)
				e->start = nrows;
			s->ts = DatumGetInt64(ts);
			s->te = to_dom(s->ts, p->spine_ts_type, v->dom_tz_event);
			s->tc = v->col_created >= 0 ? to_dom(s->ts, p->spine_ts_type, v->dom_tz_created) : 0;
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
				PitEntry   *e = ENTRY_AT(v, i);

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
			PitEntry   *e = ENTRY_AT(v, i);

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
			e = ENTRY_AT(v, v->slots[i].epos);
			if (e->count > 1)
				v->idx[e->start + e->fill++] = i;
		}
		cmp_slots = v->slots;
		for (uint32 i = 0; i <= v->mask; i++)
		{
			PitEntry   *e = ENTRY_AT(v, i);

			if (e->count > 1)
				qsort(&v->idx[e->start], e->count, sizeof(int32), idx_cmp);
		}
	}
	MemoryContextSwitchTo(old);
	return nrows;
}

/* ---------------------------------------------------------------------------------------
 * Probe: place history rows into slots, keeping the best per slot.
 * --------------------------------------------------------------------------------------- */

/*
 * The tie-break of section 2 rule 4 once (event_ts, created_ts) are equal: the row whose
 * feature values are smaller (in view feature order, each by its type's default btree order
 * and collation, NULLs last) wins; types without a btree order are skipped. Returns < 0 when
 * the first row wins, > 0 when the second does, 0 when they are equal on every orderable feature.
 */
static int
features_cmp(PitView *v, const Datum *va, const bool *na, const Datum *vb, const bool *nb)
{
	for (int f = 0; f < v->nfeat; f++)
	{
		int32		r;

		if (v->feat_cmp[f] == NULL || (na[f] && nb[f]))
			continue;
		if (na[f])
			return 1;
		if (nb[f])
			return -1;
		r = DatumGetInt32(FunctionCall2Coll(v->feat_cmp[f], v->feat_coll[f], va[f], vb[f]));
		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * The total order of section 2 rule 4: greater (event_ts, created_ts) wins, a NULL created
 * time being older than any; then features_cmp. True when (e, c, vals) beats cur.
 */
static bool
row_beats(PitView *v, int64 e, int64 c, bool c_null, const Datum *vals, const bool *nulls,
		  const PitRow *cur)
{
	if (e != cur->e)
		return e > cur->e;
	if (c_null != cur->c_null)
		return !c_null;
	if (!c_null && c != cur->c)
		return c > cur->c;
	return features_cmp(v, vals, nulls, cur->vals, cur->nulls) < 0;
}

/* First position in ix[0..n) whose slot's time (te or tc) is >= t. */
static inline int
lower_bound(const PitSlot *slots, const int32 *ix, int n, int64 t, bool created)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;
		const PitSlot *s = &slots[ix[mid]];
		int64		st = created ? s->tc : s->te;

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
place_row(PitPlan *p, PitView *v, PitEntry *ent, int64 e, int64 c, bool c_null, bool *tie)
{
	PitSlot    *s;
	bool		as_of = p->as_of_created && v->col_created >= 0;

	*tie = false;
	if (as_of && c_null)
		return NULL;
	if (ent->count == 1)
	{
		s = &v->slots[ent->start];
		if (s->te < to_dom(e, v->event_type, v->dom_tz_event))
			return NULL;
		if (as_of && s->tc < to_dom(c, v->created_type, v->dom_tz_created))
			return NULL;
	}
	else
	{
		const int32 *ix = &v->idx[ent->start];
		int			j = lower_bound(v->slots, ix, ent->count, to_dom(e, v->event_type, v->dom_tz_event), false);

		if (as_of)
			j = Max(j, lower_bound(v->slots, ix, ent->count, to_dom(c, v->created_type, v->dom_tz_created), true));
		if (j >= ent->count)
			return NULL;
		s = &v->slots[ix[j]];
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

/* Makes (e, c, features) the slot's best row, copying the features into batch memory. */
static void
store_row(PitView *v, PitSlot *s, int64 e, int64 c, bool c_null, const Datum *fvals, const bool *fnulls,
		  MemoryContext bcxt)
{
	Size		size = MAXALIGN(sizeof(PitRow) + (sizeof(Datum) + sizeof(bool)) * v->nfeat);
	Datum		vals[FS_PIT_MAX_FEAT_STACK];
	Datum	   *dv = v->nfeat <= FS_PIT_MAX_FEAT_STACK ? vals : palloc(sizeof(Datum) * v->nfeat);
	PitRow	   *r;
	char	   *data;

	/* one allocation per row, by-reference values inline: the emit pass touches one place */
	for (int f = 0; f < v->nfeat; f++)
	{
		dv[f] = fvals[f];
		if (fnulls[f] || v->feat_byval[f])
			continue;
		if (v->feat_len[f] == -1 && VARATT_IS_EXTENDED(DatumGetPointer(fvals[f])))
			dv[f] = PointerGetDatum(PG_DETOAST_DATUM(fvals[f]));
		size += MAXALIGN(datumGetSize(dv[f], false, v->feat_len[f]));
	}
	if (s->best != NULL)
		pfree(s->best);
	r = MemoryContextAlloc(bcxt, size);
	r->vals = (Datum *) (r + 1);
	r->nulls = (bool *) (r->vals + v->nfeat);
	data = (char *) r + MAXALIGN(sizeof(PitRow) + (sizeof(Datum) + sizeof(bool)) * v->nfeat);
	s->best = r;
	r->e = e;
	r->e_dom = to_dom(e, v->event_type, v->dom_tz_event);
	r->c = c;
	r->c_null = c_null;
	s->has_best = true;
	s->best_e = e;
	s->best_c = c;
	s->best_cnull = c_null;
	for (int f = 0; f < v->nfeat; f++)
	{
		r->nulls[f] = fnulls[f];
		if (fnulls[f])
			r->vals[f] = (Datum) 0;
		else if (v->feat_byval[f])
			r->vals[f] = fvals[f];
		else
		{
			Size		len = datumGetSize(dv[f], false, v->feat_len[f]);

			memcpy(data, DatumGetPointer(dv[f]), len);
			r->vals[f] = PointerGetDatum(data);
			data += MAXALIGN(len);
		}
	}
	if (dv != vals)
		pfree(dv);
}

/* ---- table AM path: slots remember the winning row's TID; features are read at the end ---- */

#define PIT_PIPE 64
#define PIT_PROBE_FACTOR 20		/* probe an index when keys * this < rows of the leaf */

typedef struct PitBuf
{
	Datum		keys[FS_MAX_KEYS];
	int64		e;
	int64		c;
	bool		c_null;
	uint32		h;
	ItemPointerData tid;
	PitEntry   *ent;
} PitBuf;

typedef struct PitHeapScan
{
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

/* Offers one history row (already found in the key table) to its slot. */
static inline void
offer_tid(PitPlan *p, PitView *v, PitHeapScan *hs, int leaf, PitEntry *ent, int64 e, int64 c,
		  bool c_null, ItemPointer tid)
{
	bool		tie;
	PitSlot    *s = place_row(p, v, ent, e, c, c_null, &tie);

	if (s == NULL)
		return;
	if (tie)
	{
		/* equal (event, created): read both rows' features and compare */
		fetch_features(v, hs, leaf, tid, hs->fa[leaf], hs->va, hs->na);
		fetch_features(v, hs, s->best_leaf, &s->best_tid, hs->fb[s->best_leaf], hs->vb, hs->nb);
		if (features_cmp(v, hs->va, hs->na, hs->vb, hs->nb) >= 0)
			return;
	}
	s->has_best = true;
	s->best_e = e;
	s->best_c = c;
	s->best_cnull = c_null;
	s->best_tid = *tid;
	s->best_leaf = leaf;
}

/* Processes a buffer of rows: the key table cells were prefetched when the rows were read. */
static void
process_buf(PitPlan *p, PitView *v, PitHeapScan *hs, int leaf, PitBuf *buf, int nb)
{
	for (int i = 0; i < nb; i++)
	{
		PitEntry   *e = lookup_key(v, buf[i].keys, buf[i].h, false);

		buf[i].ent = e;
		if (e != NULL)
			__builtin_prefetch(e->count == 1 ? (void *) &v->slots[e->start] : (void *) &v->idx[e->start]);
	}
	for (int i = 0; i < nb; i++)
		if (buf[i].ent != NULL)
			offer_tid(p, v, hs, leaf, buf[i].ent, buf[i].e, buf[i].c, buf[i].c_null, &buf[i].tid);
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
	old = MemoryContextSwitchTo(tmpcxt);
	for (uint32 pos = 0; pos <= v->mask; pos++)
	{
		PitEntry   *e = ENTRY_AT(v, pos);

		if (e->count <= 0)
			continue;
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
			offer_tid(p, v, hs, li, e, DatumGetInt64(slot->tts_values[ce]),
					  c_null ? 0 : DatumGetInt64(slot->tts_values[cc]), c_null, &slot->tts_tid);
		}
		MemoryContextReset(tmpcxt);
	}
	MemoryContextSwitchTo(old);
	index_endscan(isc);
	index_close(irel, NoLock);
	ExecDropSingleTupleTableSlot(slot);
	return n;
}

/*
 * Orders winners by physical position: an LSD radix sort on 16-bit digits, skipping digits that
 * are the same everywhere (so usually three passes), much cheaper than a comparison sort here.
 */
static void
sort_won(PitWon *won, int n, MemoryContext cxt)
{
	PitWon	   *tmp;
	uint64		lo = PG_UINT64_MAX,
				hi = 0;
	uint32	   *count;

	if (n < 2)
		return;
	for (int i = 0; i < n; i++)
	{
		lo = Min(lo, won[i].pos);
		hi = Max(hi, won[i].pos);
	}
	tmp = MemoryContextAllocHuge(cxt, sizeof(PitWon) * n);
	count = MemoryContextAlloc(cxt, sizeof(uint32) * 65536);
	for (int shift = 0; shift < 64; shift += 16)
	{
		uint32		sum = 0;

		if (((lo ^ hi) >> shift) == 0)
			break;				/* this and higher digits are equal everywhere */
		memset(count, 0, sizeof(uint32) * 65536);
		for (int i = 0; i < n; i++)
			count[(won[i].pos >> shift) & 0xFFFF]++;
		for (int d = 0; d < 65536; d++)
		{
			uint32		c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (int i = 0; i < n; i++)
			tmp[count[(won[i].pos >> shift) & 0xFFFF]++] = won[i];
		memcpy(won, tmp, sizeof(PitWon) * n);
	}
	pfree(tmp);
	pfree(count);
}

/*
 * Scans every leaf of the view's source through the table AM: only keys, event and created
 * times are deformed; the winning rows' features are fetched by TID, in physical order, at
 * the end (so a row that is replaced later costs nothing). With integer keys the key table
 * cells of PIT_PIPE rows are prefetched before they are probed, hiding memory latency.
 */
static uint64
scan_heap(PitPlan *p, PitView *v, MemoryContext bcxt, MemoryContext tmpcxt)
{
	PitHeapScan hs;
	uint64		n = 0;
	PitBuf	   *buf = palloc(sizeof(PitBuf) * PIT_PIPE);
	ListCell   *lc;
	PitWon	   *won;
	instr_time	t0,
				t1;
	int			nwon = 0;
	MemoryContext old;

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

	for (int li = 0; li < hs.nleaves; li++)
	{
		PitLeaf    *leaf = hs.leaves[li];
		TupleTableSlot *slot;
		TableScanDesc scan;
		int			nb = 0;
		int			ce = leaf->att[v->col_event] - 1;
		int			cc = v->col_created >= 0 ? leaf->att[v->col_created] - 1 : -1;
		bool		more = true;
		bool		is_heap = hs.rels[li]->rd_tableam == GetHeapamTableAmRoutine();
		TupleDesc	tdesc = RelationGetDescr(hs.rels[li]);

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
		slot = table_slot_create(hs.rels[li], NULL);
		scan = table_beginscan(hs.rels[li], GetActiveSnapshot(), 0, NULL);

		old = MemoryContextSwitchTo(tmpcxt);
		while (more)
		{
			HeapTuple	htup = NULL;

			if (is_heap)
			{
				HeapScanDesc hscan = (HeapScanDesc) scan;

				htup = heap_getnext(scan, ForwardScanDirection);
				more = htup != NULL;
				/* the tuples of a page are read in line pointer order: fetch ahead */
				if (more && hscan->rs_cindex + 4 < hscan->rs_ntuples)
				{
					Page		page = BufferGetPage(hscan->rs_cbuf);
					ItemId		lp = PageGetItemId(page, hscan->rs_vistuples[hscan->rs_cindex + 4]);

					__builtin_prefetch((char *) page + ItemIdGetOffset(lp));
				}
			}
			else
				more = table_scan_getnextslot(scan, ForwardScanDirection, slot);
			if (more)
			{
				PitBuf	   *b = &buf[nb];
				bool		anynull = false;
				bool		isnull;

				if ((++n & 4095) == 0)
				{
					CHECK_FOR_INTERRUPTS();
					MemoryContextReset(tmpcxt);
				}
				if (is_heap)
				{
					/* plain heap: read the few needed attributes in place (cached offsets) */
					Datum		d;

					for (int k = 0; k < v->nkeys; k++)
					{
						b->keys[k] = heap_getattr(htup, leaf->att[k], tdesc, &isnull);
						anynull |= isnull;
					}
					d = heap_getattr(htup, ce + 1, tdesc, &isnull);
					if (anynull || isnull)
						continue;
					b->e = DatumGetInt64(d);
					b->c_null = true;
					if (cc >= 0)
						d = heap_getattr(htup, cc + 1, tdesc, &b->c_null);
					b->c = b->c_null ? 0 : DatumGetInt64(d);
					b->tid = htup->t_self;
				}
				else
				{
					slot_getsomeattrs(slot, leaf->prefix_max);
					for (int k = 0; k < v->nkeys; k++)
					{
						b->keys[k] = slot->tts_values[leaf->att[k] - 1];
						anynull |= slot->tts_isnull[leaf->att[k] - 1];
					}
					if (anynull || slot->tts_isnull[ce])
						continue;
					b->e = DatumGetInt64(slot->tts_values[ce]);
					b->c_null = cc < 0 || slot->tts_isnull[cc];
					b->c = b->c_null ? 0 : DatumGetInt64(slot->tts_values[cc]);
					b->tid = slot->tts_tid;
				}
				b->h = hash_keys(v, b->keys);
				{
					uint32		bb = (b->h * 0x9E3779B1U) >> v->bloom_shift;

					if ((v->bloom[bb >> 6] & (UINT64CONST(1) << (bb & 63))) == 0)
						continue;	/* key not in this batch */
				}
				if (!v->bitwise_keys)
				{
					/* by-reference keys point into the current page: probe now */
					PitEntry   *ent = lookup_key(v, b->keys, b->h, false);

					if (ent != NULL)
						offer_tid(p, v, &hs, li, ent, b->e, b->c, b->c_null, &b->tid);
					continue;
				}
				__builtin_prefetch(ENTRY_AT(v, b->h & v->mask));
				nb++;
			}
			if (nb == PIT_PIPE || (!more && nb > 0))
			{
				process_buf(p, v, &hs, li, buf, nb);
				nb = 0;
			}
		}
		MemoryContextSwitchTo(old);
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
	}

	/* Read the winners' features in physical order. */
	INSTR_TIME_SET_CURRENT(t0);
	old = MemoryContextSwitchTo(bcxt);
	won = pit_alloc_big(sizeof(PitWon) * v->nslots);
	MemoryContextSwitchTo(old);
	for (int i = 0; i < v->nslots; i++)
		if (v->slots[i].valid && v->slots[i].has_best)
		{
			PitSlot    *s = &v->slots[i];

			won[nwon].pos = ((uint64) s->best_leaf << 48) |
				((uint64) ItemPointerGetBlockNumber(&s->best_tid) << 16) |
				ItemPointerGetOffsetNumber(&s->best_tid);
			won[nwon++].slot = s;
		}
	sort_won(won, nwon, bcxt);
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
		for (; i < nwon && (won[i].pos >> 16) == (won[first].pos >> 16); i++)
		{
			HeapTupleData tup;
			PitSlot    *w = won[i].slot;
			ItemId		lp = PageGetItemId(page, (OffsetNumber) (won[i].pos & 0xFFFF));

			if (i + 4 < nwon)
				__builtin_prefetch(won[i + 4].slot);

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
					store_row(v, w, w->best_e, w->best_c, w->best_cnull, hs.va, hs.na, bcxt);
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
			store_row(v, w, w->best_e, w->best_c, w->best_cnull, hs.va, hs.na, bcxt);
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
		store_row(v, s, s->best_e, s->best_c, s->best_cnull, hs.va, hs.na, bcxt);
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
	pfree(buf);
	return n;
}

/* Offers a fully read row (SPI path): features are compared and copied right away. */
static void
offer_copy(PitPlan *p, PitView *v, const Datum *vals, const bool *nulls, MemoryContext bcxt)
{
	PitEntry   *ent;
	PitSlot    *s;
	bool		tie;
	int64		e,
				c;
	bool		c_null;

	for (int i = 0; i < v->nkeys; i++)
		if (nulls[i])
			return;
	if (nulls[v->col_event])
		return;
	ent = lookup_key(v, vals, hash_keys(v, vals), false);
	if (ent == NULL)
		return;
	e = DatumGetInt64(vals[v->col_event]);
	c_null = v->col_created < 0 || nulls[v->col_created];
	c = c_null ? 0 : DatumGetInt64(vals[v->col_created]);
	s = place_row(p, v, ent, e, c, c_null, &tie);
	if (s == NULL)
		return;
	if (tie && features_cmp(v, vals + v->col_feat0, nulls + v->col_feat0, s->best->vals, s->best->nulls) >= 0)
		return;
	store_row(v, s, e, c, c_null, vals + v->col_feat0, nulls + v->col_feat0, bcxt);
}

/* Reads a view, foreign table or RLS-protected source through an SPI cursor (executor rules apply). */
static uint64
scan_spi(PitPlan *p, PitView *v, MemoryContext bcxt)
{
	StringInfoData sql;
	Portal		portal;
	uint64		n = 0;
	Datum	   *vals = palloc(sizeof(Datum) * v->ncols);
	bool	   *nulls = palloc(sizeof(bool) * v->ncols);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int c = 0; c < v->ncols; c++)
		appendStringInfo(&sql, "%s%s", c ? ", " : "", quote_identifier(v->col_names[c]));
	appendStringInfo(&sql, " FROM %s",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(v->relid)),
												get_rel_name(v->relid)));
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vals, nulls);
			offer_copy(p, v, vals, nulls, bcxt);
		}
		n += SPI_processed;
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	pfree(sql.data);
	return n;
}

/*
 * Rule 3: is event time e_dom (event-time domain) >= spine time - TTL? The bound is computed
 * exactly as SQL's "ts - ttl" (calendar and time zone aware) but only when e_dom is within two
 * days per TTL month plus two days of the naive bound; elsewhere the answer is certain.
 */
static bool
within_ttl(PitPlan *p, PitView *v, const PitSlot *s, int64 e_dom)
{
	const Interval *ttl = &v->fv->ttl;
	int64		naive,
				band = ((int64) Abs(ttl->month) * 2 + 2) * USECS_PER_DAY;
	Datum		lb;

	if (!pg_mul_s64_overflow((int64) ttl->month * DAYS_PER_MONTH + ttl->day, USECS_PER_DAY, &naive) &&
		!pg_add_s64_overflow(naive, ttl->time, &naive) &&
		!pg_sub_s64_overflow(s->te, naive, &naive) &&
		s->te != PG_INT64_MAX && s->te != PG_INT64_MIN &&
		naive > PG_INT64_MIN + band && naive < PG_INT64_MAX - band)
	{
		if (e_dom >= naive + band)
			return true;
		if (e_dom < naive - band)
			return false;
	}
	lb = DirectFunctionCall2(p->spine_ts_type == TIMESTAMPTZOID ? timestamptz_mi_interval : timestamp_mi_interval,
							 Int64GetDatum(s->ts), IntervalPGetDatum(ttl));
	return e_dom >= to_dom(DatumGetInt64(lb), p->spine_ts_type, v->dom_tz_event);
}

/*
 * As-of merge: per key, a running maximum over its slots in time order gives each spine row
 * the best row starting at or before its time; the TTL bound is checked on that row.
 */
static void
merge_batch(PitPlan *p, PitView *v)
{
	for (uint32 i = 0; i <= v->mask; i++)
	{
		PitEntry   *e = ENTRY_AT(v, i);
		PitRow	   *run = NULL;

		if (e->count <= 0)
			continue;
		if (e->count == 1)
		{
			PitSlot    *s = &v->slots[e->start];

			if (s->best != NULL && (!v->fv->has_ttl || within_ttl(p, v, s, s->best->e_dom)))
				v->winner[e->start] = s->best;
			continue;
		}
		for (int j = 0; j < e->count; j++)
		{
			int32		k = v->idx[e->start + j];
			PitRow	   *b = v->slots[k].best;

			if (b != NULL &&
				(run == NULL || row_beats(v, b->e, b->c, b->c_null, b->vals, b->nulls, run)))
				run = b;
			v->winner[k] = (run != NULL && (!v->fv->has_ttl || within_ttl(p, v, &v->slots[k], run->e_dom))) ? run : NULL;
		}
	}
}

/* ---------------------------------------------------------------------------------------
 * Execute
 * --------------------------------------------------------------------------------------- */

/* Reads a spine that is not a plain table through SPI into store (under the active snapshot). */
static void
read_spine_spi(PitPlan *p, Tuplestorestate *store)
{
	StringInfoData sql;
	Portal		portal;
	Datum	   *vals = palloc(sizeof(Datum) * Max(p->spine_desc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(p->spine_desc->natts, 1));

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < p->spine_desc->natts; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "",
						 quote_identifier(NameStr(TupleDescAttr(p->spine_desc, i)->attname)));
	appendStringInfo(&sql, " FROM %s",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(p->spine_relid)),
												get_rel_name(p->spine_relid)));
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vals, nulls);
			tuplestore_putvalues(store, p->spine_desc, vals, nulls);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/* See pit_join.h and the file header: batches of build, read sources, merge, emit. */
uint64
pit_plan_execute(PitPlan *p, PitEmitFn emit, void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	MemoryContext bcxt = AllocSetContextCreate(p->cxt, "pit join batch", ALLOCSET_DEFAULT_SIZES);
	MemoryContext tmpcxt = AllocSetContextCreate(p->cxt, "pit join row", ALLOCSET_DEFAULT_SIZES);
	Tuplestorestate *store = NULL;
	SpineReader build_rd,
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

	memset(&pit_last_stats, 0, sizeof(pit_last_stats));
	INSTR_TIME_SET_CURRENT(t);
	if (p->spine_spi)
	{
		store = tuplestore_begin_heap(false, false, work_mem);
		read_spine_spi(p, store);
		tuplestore_alloc_read_pointer(store, 0);
	}
	spine_reader_init(&build_rd, p, store, 0);
	spine_reader_init(&emit_rd, p, store, 1);
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
	batch_rows = Max(limit / Max(p->row_bytes, 1), 1024);
	batch_rows = Min(batch_rows, (uint64) (MaxAllocSize / sizeof(PitSlot) / 2));
	pit_last_stats.batch_rows = batch_rows;

	for (;;)
	{
		int			nrows = build_batch(p, &build_rd, (int) batch_rows, (int) Min(est, (double) batch_rows), bcxt);
		Size		mem;

		phase_done(&t, 1);
		if (nrows == 0)
			break;
		for (int vi = 0; vi < p->nviews; vi++)
		{
			PitView    *v = p->views[vi];

			if (v->nentries == 0)
				continue;
			if (v->use_spi)
				pit_last_stats.source_rows += scan_spi(p, v, bcxt);
			else
				pit_last_stats.source_rows += scan_heap(p, v, bcxt, tmpcxt);
			phase_done(&t, 2);
			merge_batch(p, v);
			phase_done(&t, 3);
		}
		mem = MemoryContextMemAllocated(p->cxt, true);
		pit_last_stats.peak_bytes = Max(pit_last_stats.peak_bytes, mem);
		pit_last_stats.batches++;

		/* Emit the batch in spine order (the emit reader trails the build reader by one batch). */
		for (int i = 0; i < nrows; i++)
		{
			if (!spine_next(&emit_rd))
				elog(ERROR, "spine ended early");
			memcpy(vals, emit_rd.vals, sizeof(Datum) * nsp);
			memcpy(nulls, emit_rd.nulls, sizeof(bool) * nsp);
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
			emit(arg, vals, nulls);
		}
		total += nrows;
		MemoryContextReset(bcxt);
		phase_done(&t, 4);
		if (nrows < (int) batch_rows)
			break;
	}
	pit_last_stats.spine_rows = total;
	spine_reader_end(&build_rd);
	spine_reader_end(&emit_rd);
	if (store != NULL)
		tuplestore_end(store);
	MemoryContextSwitchTo(old);
	return total;
}
