/*
 * pit_plan.c — planning a point-in-time join: resolving the feature references, validating the
 * spine and every source (columns, types, privileges), choosing how each source is read (its
 * leaves through the table AM, a key index to probe, or SPI) and naming the output columns.
 * Separate from the execution because every error about bad input is raised here, before
 * anything is read (see pit_join.h), and because fs_create_training_set also needs the plan's
 * output description and lineage without running anything else first.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/typcache.h"

#include "agg.h"
#include "pit_join.h"
#include "pit_join_int.h"
#include "registry.h"

/* Integer types whose equality is equality of the Datum bits (hashed and compared inline). */
static bool
is_bitwise_key_type(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == OIDOID || t == DATEOID;
}

/*
 * Whether a spine key of type spine_type (a domain counts as its base type) can be matched with
 * a view key of type key_type, and how its values are converted (*conv), so that the join
 * matches exactly the rows SQL's `source.key = spine.key` matches. Only conversions without
 * loss are accepted: a narrower integer into a wider one; varchar, text or name into text or
 * varchar (which compare as text); char(n) into text only, losing its trailing blanks as its
 * cast to text does, which is what SQL's `text = char(n)` compares. SQL compares varchar with
 * char(n) as char(n), ignoring trailing blanks on both sides, which hashing the view's keys as
 * they are cannot follow: refused. A wider integer into a narrower one is refused too, although
 * SQL would compare them, because a spine value out of range would have to match nothing or
 * fail halfway through a join; the user decides by casting in a view.
 */
static bool
spine_key_conv(Oid spine_type, Oid key_type, PitKeyConv *conv)
{
	Oid			t = getBaseType(spine_type);

	*conv = PIT_KEY_AS_IS;
	if (t == key_type)
		return true;
	switch (key_type)
	{
		case INT8OID:
		case INT4OID:
			if (t == INT2OID)
				*conv = PIT_KEY_FROM_INT2;
			else if (t == INT4OID && key_type == INT8OID)
				*conv = PIT_KEY_FROM_INT4;
			else
				return false;
			return true;
		case TEXTOID:
		case VARCHAROID:
			if (t == TEXTOID || t == VARCHAROID)
				*conv = PIT_KEY_AS_IS;	/* varchar is text on disk, with text's equality */
			else if (t == BPCHAROID && key_type == TEXTOID)
				*conv = PIT_KEY_FROM_BPCHAR;
			else if (t == NAMEOID)
				*conv = PIT_KEY_FROM_NAME;
			else
				return false;
			return true;
		default:
			return false;
	}
}

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
				 errdetail("The view's %s column was dropped or renamed after registration. The source has columns: %s.",
						   what, fs_relation_column_names(v->relid)),
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
 * An aggregation view: its argument columns still there with types that give the registered
 * result types, and the evaluator (agg.h). Its source is always read through SPI (pit_agg.c).
 */
static void
plan_agg(PitPlan *p, PitView *v)
{
	FsView	   *fv = v->fv;
	FsAggSpec  *specs;
	Oid		   *colls;

	fs_agg_resolve_view(fv, v->relid, &specs, &colls);
	for (int f = 0; f < fv->nfeatures; f++)
	{
		FsAggSpec  *sp = &specs[f];

		v->feat_type[f] = fv->features[f].type;
		v->feat_typmod[f] = -1;
		/* min, max, first and last keep their column's collation; counts and sums have none */
		v->feat_coll[f] = sp->fn >= FS_AGG_MIN ? colls[f] : InvalidOid;
		get_typlenbyval(v->feat_type[f], &v->feat_len[f], &v->feat_byval[f]);
	}
	v->agg = palloc(sizeof(FsAggEval));
	fs_agg_eval_init(v->agg, specs, fv->nfeatures, colls, fv->has_hop, fv->hop_us);
	v->agg->as_of_created = p->as_of_created && v->col_created >= 0;
	/* the columns read: keys, times, then the arguments (pit_agg.c reads them in this order) */
	{
		char	  **names = palloc(sizeof(char *) * (v->col_feat0 + v->agg->nargs));

		memcpy(names, v->col_names, sizeof(char *) * v->col_feat0);
		memcpy(names + v->col_feat0, v->agg->arg_name, sizeof(char *) * v->agg->nargs);
		v->col_names = names;
		v->ncols = v->col_feat0 + v->agg->nargs;
	}
	/* a filter is evaluated by the executor: SPI; else plain tables go through the table AM */
	if (fv->filter != NULL)
		v->use_spi = true;
	else
		plan_source_access(v);
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
	fs_check_view_select_filtered(fv);	/* the scan applies row-level security itself */
	v->nkeys = ent->nkeys;
	v->col_event = ent->nkeys;
	v->col_created = fv->created_time ? ent->nkeys + 1 : -1;
	v->col_feat0 = ent->nkeys + 1 + (fv->created_time ? 1 : 0);
	v->nfeat = fv->nfeatures;
	v->ncols = v->col_feat0 + (fv->is_agg ? 0 : v->nfeat);
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
					 errmsg("%s has no column \"%s\"", p->spine_label, key),
					 errdetail("Feature view \"%s\" is keyed by entity \"%s\", whose key columns the spine must have. The spine has columns: %s.",
							   fv->name, ent->name, fs_column_names(p->spine_desc)),
					 p->spine_query ? errhint("Select the column under that name in spine_query (... AS %s).", key)
					 : errhint("Add the column to the spine, or select it under that name in a view.")));
		stype = TupleDescAttr(p->spine_desc, sk)->atttypid;
		if (!spine_key_conv(stype, v->key_type[k], &v->spine_conv[k]))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("spine column \"%s\" has type %s, but feature view \"%s\" has key type %s",
							key, format_type_be(stype), fv->name, format_type_be(v->key_type[k])),
					 getBaseType(stype) == BPCHAROID && v->key_type[k] == VARCHAROID ?
					 errdetail("SQL compares character varying with character(n) as character(n), ignoring trailing blanks on both sides; "
							   "the join compares keys as text.") :
					 errdetail("A spine key must have the view's key type or one that converts to it without loss: "
							   "smallint or integer for bigint; smallint for integer; "
							   "varchar, char(n) or name for text; text or name for varchar."),
					 p->spine_query ? errhint("Cast the column in spine_query: %s::%s.", key, format_type_be(v->key_type[k]))
					 : errhint("Cast the spine column in a view: %s::%s.", key, format_type_be(v->key_type[k]))));
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
	if (fv->is_agg)
	{
		plan_agg(p, v);
		return v;
	}
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

/*
 * The spine of a plan given as a relation: its non-dropped columns, how it is read, and the
 * caller's privilege on it.
 */
static void
plan_spine_relation(PitPlan *p, Oid spine_relid)
{
	Relation	spine;
	TupleDesc	rd;
	int			n;

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
				 errmsg("spine \"%s\" is not a table or view", RelationGetRelationName(spine)),
				 errhint("A spine computed by a query can be given as spine_query => 'SELECT ...'.")));
	p->spine_label = psprintf("spine \"%s\"", RelationGetRelationName(spine));
	p->spine_temp = spine->rd_rel->relpersistence == RELPERSISTENCE_TEMP;
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
	n = 0;
	for (int i = 0; i < rd->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(rd, i);

		if (a->attisdropped)
			continue;
		TupleDescInitEntry(p->spine_desc, n + 1, NameStr(a->attname), a->atttypid, a->atttypmod, 0);
		TupleDescInitEntryCollation(p->spine_desc, n + 1, a->attcollation);
		p->spine_att[n] = a->attnum;
		n++;
	}
	relation_close(spine, NoLock);
}

/*
 * The spine of a plan given as a query: its result columns (the query is checked and planned,
 * not run: pit_spine.c). It is read through SPI as the caller, like a view.
 */
static void
plan_spine_query(PitPlan *p, const char *query)
{
	TupleDesc	qd = pit_spine_query_desc(query);

	p->spine_query = pstrdup(query);
	p->spine_label = "spine_query";
	p->spine_spi = true;
	p->spine_desc = CreateTemplateTupleDesc(qd->natts);
	p->spine_att = palloc(sizeof(AttrNumber) * Max(qd->natts, 1));
	for (int i = 0; i < qd->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(qd, i);

		/* a training set is a table: its columns need distinct names */
		for (int j = 0; j < i; j++)
			if (strcmp(NameStr(TupleDescAttr(qd, j)->attname), NameStr(a->attname)) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("spine_query returns more than one column named \"%s\"", NameStr(a->attname)),
						 errdetail("Its columns are: %s.", fs_column_names(qd)),
						 errhint("Give its columns distinct names with AS.")));
		TupleDescInitEntry(p->spine_desc, i + 1, NameStr(a->attname), a->atttypid, a->atttypmod, 0);
		TupleDescInitEntryCollation(p->spine_desc, i + 1, a->attcollation);
		p->spine_att[i] = i + 1;
	}
}

/* See pit_join.h: everything that can be wrong with the arguments is found here. */
PitPlan *
pit_plan_create(Oid spine_relid, const char *spine_query, ArrayType *features, const char *spine_time,
				bool full_names, bool as_of_created)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "point-in-time join",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PitPlan    *p = palloc0(sizeof(PitPlan));
	List	   *refs;
	ListCell   *lc;
	int			n;

	p->cxt = cxt;
	p->spine_relid = spine_relid;
	p->as_of_created = as_of_created;
	p->full_names = full_names;

	/* The spine: any relation with columns, read through SPI unless a plain table; or a query. */
	if (spine_query != NULL)
		plan_spine_query(p, spine_query);
	else
		plan_spine_relation(p, spine_relid);
	p->spine_ts = -1;
	for (int i = 0; i < p->spine_desc->natts; i++)
		if (strcmp(NameStr(TupleDescAttr(p->spine_desc, i)->attname), spine_time) == 0)
			p->spine_ts = i;
	if (p->spine_ts < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s has no column \"%s\"", p->spine_label, spine_time),
				 errdetail("The spine has columns: %s.", fs_column_names(p->spine_desc)),
				 errhint("Name the spine's timestamp column with spine_time => 'column'.")));
	p->spine_ts_type = TupleDescAttr(p->spine_desc, p->spine_ts)->atttypid;
	if (p->spine_ts_type != TIMESTAMPTZOID && p->spine_ts_type != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("spine time column \"%s\" has type %s", spine_time, format_type_be(p->spine_ts_type)),
				 p->spine_query ? errhint("The spine time must be timestamptz or timestamp; cast it in spine_query.")
				 : errhint("The spine time must be timestamptz or timestamp; cast it in a view.")));

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

		/* slots as read and as ordered, sort keys, hash, keys, table cells, winner */
		p->row_bytes += sizeof(PitSlot) + 16 + 2 * sizeof(uint64) + sizeof(uint32) + sizeof(void *) +
			2 * (offsetof(PitEntry, keys) + sizeof(Datum) * v->nkeys) + 24 * v->nkeys +
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

/* See pit_join.h. */
bool
pit_plan_want_checksum(PitPlan *plan)
{
	plan->checksum_ok = true;
	for (int i = 0; i < plan->spine_desc->natts; i++)
	{
		TypeCacheEntry *tc = lookup_type_cache(TupleDescAttr(plan->spine_desc, i)->atttypid,
											   TYPECACHE_HASH_EXTENDED_PROC_FINFO);

		if (!OidIsValid(tc->hash_extended_proc_finfo.fn_oid))
			plan->checksum_ok = false;
	}
	plan->checksum_on = plan->checksum_ok;
	plan->checksum = 0;
	return plan->checksum_ok;
}

/* See pit_join.h. */
char *
pit_plan_spine_checksum(PitPlan *plan)
{
	if (!plan->checksum_on)
		return NULL;
	return psprintf("%016" INT64_MODIFIER "x", plan->checksum);
}

/* See pit_join.h. */
bool
pit_plan_spine_is_temp(PitPlan *plan)
{
	return plan->spine_temp;
}

/* All of a plan's memory is in its own context. */
void
pit_plan_free(PitPlan *plan)
{
	MemoryContextDelete(plan->cxt);
}
