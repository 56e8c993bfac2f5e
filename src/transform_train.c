/*
 * transform_train.c — transforms in training sets. A feature list may name transforms beside
 * feature references; the join computes the features asked for plus each transform's inputs
 * (appended once, pinned to the versions the transform resolved, and left out of the result),
 * and every emitted row gets each transform's value from the spine's request columns (bound by
 * name) and the row's input values, in the order the list asked for them.
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "parser/parse_coerce.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pit_join_int.h"
#include "registry.h"
#include "spi_util.h"
#include "transform.h"
#include "transform_train.h"

/* A value converted from a spine column's type to a request parameter's declared type. */
typedef struct Conv
{
	int			col;			/* spine column (0-based) */
	int			kind;			/* 0 as is, 1 cast function, 2 through text */
	FmgrInfo	fn;
	int			fn_nargs;
	FmgrInfo	out;			/* kind 2 */
	Oid			in_fn;
	Oid			in_ioparam;
} Conv;

typedef struct TrainItem
{
	FsTransform *t;				/* NULL: a feature column */
	int			nfeat;			/* feature: how many plan columns (a view:* expands) */
	int			first;			/* feature: first plan feature index; transform: unused */
	int		   *input_col;		/* transform: plan feature index of each input */
	Conv	   *req;			/* transform: per request parameter, after bind */
	Datum	   *args;			/* transform: its arguments, per row */
	bool	   *argnulls;
} TrainItem;

struct FsTransformTrain
{
	int			nitems;
	TrainItem	   *items;
	int			nspine;
	int			nplan;			/* plan feature columns */
	TupleDesc	desc;
	PitEmitFn	inner;
	void	   *inner_arg;
	Datum	   *vals;
	bool	   *nulls;
};

/* Does this list element name a transform? (a reference without ':' that is not a view) */
static bool
names_transform(const char *ref)
{
	char	   *at;
	char	   *name;

	if (strchr(ref, ':') != NULL)
		return false;
	at = strchr(ref, '@');
	name = at ? pnstrdup(ref, at - ref) : pstrdup(ref);
	return fs_transform_exists(name);
}

/* Index of (view version, feature) among the resolved references, or -1. */
static int
find_ref(List *acc, FsView *v, int feature_index)
{
	ListCell   *lc;
	int			i = 0;

	foreach(lc, acc)
	{
		FsFeatureRef *r = lfirst(lc);

		if (r->view->view_id == v->view_id && r->feature_index == feature_index)
			return i;
		i++;
	}
	return -1;
}

/*
 * The members of a feature service that has transforms, in its order ("view[@N]:feature",
 * "transform[@N]"), or NIL when it has none (the join expands it itself).
 */
static List *
service_members(const char *ref)
{
	const char *at = strchr(ref, '@');
	char	   *name = at ? pnstrdup(ref, at - ref) : pstrdup(ref);
	Oid			t[2] = {TEXTOID, INT4OID};
	Datum		a[2] = {CStringGetTextDatum(name), Int32GetDatum(at ? (int32) strtol(at + 1, NULL, 10) : 0)};
	List	   *l = NIL;
	uint64		n;
	MemoryContext caller = CurrentMemoryContext;	/* SPI_finish frees SPI's context */

	if (strchr(ref, ':') != NULL || !fs_registry_has_aggs())
		return NIL;
	SPI_connect();
	n = fs_spi_exec("WITH s AS (SELECT service_id FROM feature_store.feature_service WHERE name = $1 "
					"  AND version = CASE WHEN $2 > 0 THEN $2 ELSE "
					"    (SELECT max(l.version) FROM feature_store.feature_service l WHERE l.name = $1) END) "
					"SELECT m.ref, m.is_t FROM ("
					"  SELECT f.position, f.view_name || coalesce('@' || f.view_version, '') || ':' || f.feature AS ref, false AS is_t "
					"  FROM feature_store.service_feature f, s WHERE f.service_id = s.service_id "
					"  UNION ALL SELECT x.position, x.transform_name || coalesce('@' || x.transform_version, ''), true "
					"  FROM feature_store.service_transform x, s WHERE x.service_id = s.service_id) m "
					"ORDER BY m.position", 2, t, a, NULL, true);
	{
		bool		has = false;

		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old;

			has |= fs_spi_bool(i, 2, false);
			old = MemoryContextSwitchTo(caller);
			l = lappend(l, fs_spi_text(i, 1, caller));
			MemoryContextSwitchTo(old);
		}
		if (!has)
			l = NIL;
	}
	SPI_finish();
	return l;
}

ArrayType *
fs_transform_train_split(ArrayType *features, FsTransformTrain **out)
{
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	bool		any = false;
	List	   *acc = NIL;
	List	   *plan_refs = NIL;
	FsTransformTrain *tt;
	ListCell   *lc;
	int			k;

	*out = NULL;
	if (ARR_NDIM(features) != 1)
		return features;		/* the join reports it */
	deconstruct_array(features, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n && !any; i++)
	{
		List	   *members;

		if (enulls[i])
			continue;
		if (names_transform(TextDatumGetCString(elems[i])))
			any = true;
		else if ((members = service_members(TextDatumGetCString(elems[i]))) != NIL)
			any = true;
	}
	if (!any)
		return features;
	/* services with transforms are replaced by their members */
	{
		List	   *flat = NIL;

		for (int i = 0; i < n; i++)
		{
			List	   *members = enulls[i] ? NIL : service_members(TextDatumGetCString(elems[i]));

			if (members == NIL)
				flat = lappend(flat, enulls[i] ? NULL : TextDatumGetCString(elems[i]));
			else
				flat = list_concat(flat, members);
		}
		n = list_length(flat);
		elems = palloc(sizeof(Datum) * n);
		enulls = palloc0(sizeof(bool) * n);
		k = 0;
		foreach(lc, flat)
		{
			enulls[k] = lfirst(lc) == NULL;
			elems[k] = enulls[k] ? (Datum) 0 : CStringGetTextDatum((char *) lfirst(lc));
			k++;
		}
	}

	tt = palloc0(sizeof(FsTransformTrain));
	tt->items = palloc0(sizeof(TrainItem) * n);
	tt->nitems = n;
	for (int i = 0; i < n; i++)
	{
		char	   *ref;
		TrainItem	   *it = &tt->items[i];

		if (enulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("feature reference must not be null")));
		ref = TextDatumGetCString(elems[i]);

		if (names_transform(ref))
		{
			it->t = fs_transform_lookup(ref, false);
			continue;
		}
		it->first = list_length(acc);
		acc = fs_resolve_feature_ref(ref, acc);
		it->nfeat = list_length(acc) - it->first;
		plan_refs = lappend(plan_refs, ref);
	}
	/* each transform's inputs: a column asked for, or one appended for it */
	for (int i = 0; i < n; i++)
	{
		TrainItem	   *it = &tt->items[i];

		if (it->t == NULL)
			continue;
		it->input_col = palloc(sizeof(int) * Max(it->t->ninputs, 1));
		for (int j = 0; j < it->t->ninputs; j++)
		{
			FsFeatureRef *r = linitial(fs_resolve_feature_ref(it->t->inputs[j], NIL));
			int			col = find_ref(acc, r->view, r->feature_index);

			fs_check_view_select_filtered(r->view);
			if (col < 0)
			{
				char	   *pinned = psprintf("%s@%d:%s", r->view->name, r->view->version,
											  r->view->features[r->feature_index].name);

				col = list_length(acc);
				acc = fs_resolve_feature_ref(pinned, acc);
				plan_refs = lappend(plan_refs, pinned);
			}
			it->input_col[j] = col;
		}
	}
	tt->nplan = list_length(acc);
	elems = palloc(sizeof(Datum) * Max(list_length(plan_refs), 1));
	k = 0;
	foreach(lc, plan_refs)
		elems[k++] = CStringGetTextDatum((char *) lfirst(lc));
	*out = tt;
	return construct_array(elems, k, TEXTOID, -1, false, TYPALIGN_INT);
}

/* How a spine column of type `from` becomes a request parameter of type `to`. */
static void
bind_conv(Conv *c, FsTransform *t, int p, Oid from)
{
	Oid			to = t->req_types[p];
	Oid			fn;
	CoercionPathType path;

	c->kind = 0;
	if (from == to)
		return;
	path = find_coercion_pathway(to, from, COERCION_ASSIGNMENT, &fn);
	if (path == COERCION_PATH_RELABELTYPE)
		return;
	if (path == COERCION_PATH_FUNC)
	{
		c->kind = 1;
		fmgr_info(fn, &c->fn);
		c->fn_nargs = get_func_nargs(fn);
		return;
	}
	if (path == COERCION_PATH_COERCEVIAIO)
	{
		bool		varlena;

		c->kind = 2;
		getTypeOutputInfo(from, &fn, &varlena);
		fmgr_info(fn, &c->out);
		getTypeInputInfo(to, &c->in_fn, &c->in_ioparam);
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("spine column \"%s\" has type %s, which cannot be assigned to request parameter \"%s\" (%s) of transform \"%s\"",
					t->req_names[p], format_type_be(from), t->req_names[p], format_type_be(to), t->name),
			 errhint("Cast the column in a spine query.")));
}

TupleDesc
fs_transform_train_bind(FsTransformTrain *tt, PitPlan *plan)
{
	TupleDesc	pd = plan->desc;
	int			natts = plan->spine_desc->natts;
	int			col;

	tt->nspine = plan->spine_desc->natts;
	if (pd->natts != tt->nspine + tt->nplan)
		elog(ERROR, "transform columns out of step with the join's (%d + %d, %d)", tt->nspine, tt->nplan, pd->natts);
	for (int i = 0; i < tt->nitems; i++)
		natts += tt->items[i].t ? 1 : tt->items[i].nfeat;
	tt->desc = CreateTemplateTupleDesc(natts);
	for (col = 0; col < tt->nspine; col++)
		TupleDescCopyEntry(tt->desc, col + 1, pd, col + 1);
	for (int i = 0; i < tt->nitems; i++)
	{
		TrainItem	   *it = &tt->items[i];

		if (it->t == NULL)
		{
			for (int f = 0; f < it->nfeat; f++, col++)
				TupleDescCopyEntry(tt->desc, col + 1, pd, tt->nspine + it->first + f + 1);
			continue;
		}
		TupleDescInitEntry(tt->desc, col + 1, it->t->name, it->t->returns, -1, 0);
		col++;
		it->req = palloc0(sizeof(Conv) * Max(it->t->nreq, 1));
		it->args = palloc0(sizeof(Datum) * Max(it->t->nreq + it->t->ninputs, 1));
		it->argnulls = palloc0(sizeof(bool) * Max(it->t->nreq + it->t->ninputs, 1));
		for (int p = 0; p < it->t->nreq; p++)
		{
			int			sc = -1;

			for (int s = 0; s < tt->nspine; s++)
				if (strcmp(NameStr(TupleDescAttr(plan->spine_desc, s)->attname), it->t->req_names[p]) == 0)
					sc = s;
			if (sc < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("transform \"%s\" needs request parameter \"%s\", but the spine has no column \"%s\"",
								it->t->name, it->t->req_names[p], it->t->req_names[p]),
						 errhint("Training binds request parameters to spine columns of the same names.")));
			it->req[p].col = sc;
			bind_conv(&it->req[p], it->t, p, TupleDescAttr(plan->spine_desc, sc)->atttypid);
		}
	}
	for (int a = 0; a < natts; a++)
		for (int b = 0; b < a; b++)
			if (strcmp(NameStr(TupleDescAttr(tt->desc, a)->attname), NameStr(TupleDescAttr(tt->desc, b)->attname)) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("the training set would have two columns named \"%s\"",
								NameStr(TupleDescAttr(tt->desc, a)->attname)),
						 errhint("Rename the spine column; full_names => true names view features view__feature; a transform's column is its name, so take one version of a transform per training set.")));
	tt->vals = palloc(sizeof(Datum) * natts);
	tt->nulls = palloc(sizeof(bool) * natts);
	return tt->desc;
}

void
fs_transform_train_set_emit(FsTransformTrain *tt, PitEmitFn inner, void *arg)
{
	tt->inner = inner;
	tt->inner_arg = arg;
}

static Datum
convert(Conv *c, Datum v)
{
	if (c->kind == 1)
		return c->fn_nargs == 1 ? FunctionCall1(&c->fn, v)
			: FunctionCall3(&c->fn, v, Int32GetDatum(-1), BoolGetDatum(false));
	if (c->kind == 2)
		return OidInputFunctionCall(c->in_fn, OutputFunctionCall(&c->out, v), c->in_ioparam, -1);
	return v;
}

void
fs_transform_train_emit(void *arg, Datum *values, bool *nulls)
{
	FsTransformTrain *tt = arg;
	int			col;

	for (col = 0; col < tt->nspine; col++)
	{
		tt->vals[col] = values[col];
		tt->nulls[col] = nulls[col];
	}
	for (int i = 0; i < tt->nitems; i++)
	{
		TrainItem	   *it = &tt->items[i];
		FsTransform *t = it->t;

		if (t == NULL)
		{
			for (int f = 0; f < it->nfeat; f++, col++)
			{
				tt->vals[col] = values[tt->nspine + it->first + f];
				tt->nulls[col] = nulls[tt->nspine + it->first + f];
			}
			continue;
		}
		for (int p = 0; p < t->nreq; p++)
		{
			it->argnulls[p] = nulls[it->req[p].col];
			it->args[p] = it->argnulls[p] ? (Datum) 0 : convert(&it->req[p], values[it->req[p].col]);
		}
		for (int j = 0; j < t->ninputs; j++)
		{
			it->args[t->nreq + j] = values[tt->nspine + it->input_col[j]];
			it->argnulls[t->nreq + j] = nulls[tt->nspine + it->input_col[j]];
		}
		tt->vals[col] = fs_transform_eval(t, it->args, it->argnulls, &tt->nulls[col]);
		col++;
	}
	tt->inner(tt->inner_arg, tt->vals, tt->nulls);
}
