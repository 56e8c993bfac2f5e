/*
 * online_serve.c — the serving calls: fs_online(entity [, view_or_service]), fs_online_vector,
 * fs_online_batch and fs_online_detail.
 *
 * Result shape (documented in README): {"view": {"feature": value, ...}, ...}. A view that has
 * no row for the entity is absent; a view whose row is older than now() - ttl appears as
 * "view": null (expired, not served as fresh). No row in any view: NULL. TTL is checked
 * against the transaction start time (now()), both bounds inclusive as in the offline join.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/tuplestore.h"

#include "entity_type.h"
#include "online_cache.h"
#include "online_meta.h"
#include "online_read.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(fs_online_all);
PG_FUNCTION_INFO_V1(fs_online_named);
PG_FUNCTION_INFO_V1(fs_online_vector);
PG_FUNCTION_INFO_V1(fs_online_batch);
PG_FUNCTION_INFO_V1(fs_online_detail);
PG_FUNCTION_INFO_V1(fs_online_batch_keys);
PG_FUNCTION_INFO_V1(fs_online_batch_vector);

/* What one call serves: views, and per view either all features or a subset (services). */
typedef struct Target
{
	FsOnlineView *ov;
	int			nfeat;			/* -1 = all features */
	int		   *feat;			/* feature indexes when nfeat >= 0 */
	TimestampTz cutoff;			/* TTL: event times before it are expired (if has_ttl) */
} Target;

typedef struct ServePlan
{
	int			ntargets;
	Target		targets[FS_CACHE_MAX_VIEWS];
	FsService  *service;		/* when a service was named (vector order) */
} ServePlan;

/* A view named explicitly must be online and readable by the caller (else an error). */
static void
check_named_view(FsOnlineView *ov)
{
	if (!ov->online)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" is not online", ov->view->name),
				 errhint("Enable it with SELECT fs_set_online_mode('%s', 'batch') and materialize it.", ov->view->name)));
	if (!fs_meta_can_select(ov))
		fs_check_view_select(ov->view);
}

/* The plan's target for a view, added on first use (one read per view per entity). */
static Target *
target_for(ServePlan *p, FsOnlineView *ov)
{
	for (int i = 0; i < p->ntargets; i++)
		if (p->targets[i].ov == ov)
			return &p->targets[i];
	if (p->ntargets == FS_CACHE_MAX_VIEWS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many feature views in one online lookup")));
	p->targets[p->ntargets].ov = ov;
	p->targets[p->ntargets].nfeat = -1;
	p->targets[p->ntargets].feat = NULL;
	/* TTL against the transaction start: the same cutoff for every entity of the call */
	if (ov->view->has_ttl)
		p->targets[p->ntargets].cutoff =
			DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													IntervalPGetDatum(&ov->view->ttl)));
	return &p->targets[p->ntargets++];
}

/*
 * Resolves what to serve. name NULL: every online latest view of the entity the caller may
 * read (others are left out, as information_schema does). A view or service name: exactly
 * those features; lacking privilege is an error there.
 */
static void
make_plan(ServePlan *p, const char *entity, const char *name)
{
	p->ntargets = 0;
	p->service = NULL;
	fs_meta_ensure();
	if (name == NULL)
	{
		for (int i = 0; i < fs_meta_nviews(); i++)
		{
			FsOnlineView *ov = fs_meta_view(i);

			if (ov->view->is_latest && ov->online && strcmp(ov->view->entity.name, entity) == 0 &&
				fs_meta_can_select(ov))
				target_for(p, ov);
		}
		return;
	}
	{
		FsOnlineView *ov = fs_meta_find_view(name);
		FsService  *s;

		if (ov)
		{
			check_named_view(ov);
			/* a key of another entity can never have a row: a caller's mistake, not "no value" */
			if (strcmp(ov->view->entity.name, entity) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature view \"%s\" is keyed by entity \"%s\", not \"%s\"",
								name, ov->view->entity.name, entity),
						 errhint("Pass a key of entity \"%s\", such as fs_entity('%s', ...).",
								 ov->view->entity.name, ov->view->entity.name)));
			target_for(p, ov);
			return;
		}
		s = fs_meta_find_service(name);
		if (s == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature view or service \"%s\" does not exist", name),
					 errhint("See SELECT name FROM fs_views WHERE online_mode <> 'off' and SELECT name FROM fs_services.")));
		p->service = s;
		for (int i = 0; i < s->nfeatures; i++)
			check_named_view(s->features[i].ov);
		for (int i = 0; i < s->nfeatures; i++)
		{
			Target	   *t;

			if (strcmp(s->features[i].ov->view->entity.name, entity) != 0)
				continue;
			t = target_for(p, s->features[i].ov);
			if (t->feat == NULL)
			{
				t->feat = palloc(sizeof(int) * s->nfeatures);
				t->nfeat = 0;
			}
			t->feat[t->nfeat++] = s->features[i].feature_index;
		}
		if (p->ntargets == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature service \"%s\" has no feature keyed by entity \"%s\"", name, entity),
					 errhint("See SELECT name, entity FROM fs_views for the entity of each view of the service.")));
	}
}

/* TTL at read time: older than now() - ttl is expired (the bound itself is fresh). */
static inline bool
row_expired(Target *t, FsOnlineRow *row)
{
	return t->ov->view->has_ttl && row->event_ts < t->cutoff;
}

/* Pushes a C string as a jsonb string token. */
static void
push_string(JsonbParseState **st, JsonbIteratorToken tok, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(st, tok, &v);
}

/* The value of feature `name` in a row's feature object (jbvNull when absent). */
static void
feature_value(JsonbContainer *inner, const char *name, JsonbValue *out)
{
	JsonbValue *v = getKeyJsonValueFromContainer(inner, name, strlen(name), out);

	if (v == NULL)
		out->type = jbvNull;
}

/*
 * One entity's answer from its rows, rows[t] being target t's (see the file header for the
 * shape); NULL when no view has a row for it.
 */
static Jsonb *
assemble(ServePlan *p, FsOnlineRow *rows)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	int			nfound = 0;

	/* the common case, one view with all features: the cached object is the answer */
	if (p->ntargets == 1 && p->targets[0].nfeat < 0)
	{
		if (!rows[0].found)
			return NULL;
		if (!row_expired(&p->targets[0], &rows[0]))
			return rows[0].features;
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		push_string(&st, WJB_KEY, p->targets[0].ov->view->name);
		{
			JsonbValue	v;

			v.type = jbvNull;
			pushJsonbValue(&st, WJB_VALUE, &v);
		}
		return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
	}

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < p->ntargets; i++)
	{
		Target	   *t = &p->targets[i];
		FsOnlineRow *row = &rows[i];
		JsonbValue	v;
		JsonbContainer *inner;

		if (!row->found)
			continue;
		inner = fs_row_inner(t->ov, row);
		nfound++;
		push_string(&st, WJB_KEY, t->ov->view->name);
		if (row_expired(t, row))
		{
			v.type = jbvNull;
			pushJsonbValue(&st, WJB_VALUE, &v);
		}
		else if (t->nfeat < 0)
		{
			v.type = jbvBinary;
			v.val.binary.data = inner;
			v.val.binary.len = VARSIZE(row->features) - VARHDRSZ;	/* upper bound, unused */
			pushJsonbValue(&st, WJB_VALUE, &v);
		}
		else
		{
			pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
			for (int f = 0; f < t->nfeat; f++)
			{
				const char *fname = t->ov->view->features[t->feat[f]].name;

				push_string(&st, WJB_KEY, fname);
				feature_value(inner, fname, &v);
				pushJsonbValue(&st, WJB_VALUE, &v);
			}
			pushJsonbValue(&st, WJB_END_OBJECT, NULL);
		}
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return nfound > 0 ? JsonbValueToJsonb(res) : NULL;
}

/* Serves one entity as jsonb: one read per target, then assemble. */
static Jsonb *
serve_entity(FsReadState *rs, ServePlan *p, FsEntityVal *e)
{
	FsOnlineRow *rows = palloc(sizeof(FsOnlineRow) * Max(p->ntargets, 1));

	for (int t = 0; t < p->ntargets; t++)
		fs_read_row(rs, p->targets[t].ov, e, &rows[t]);
	return assemble(p, rows);
}

/* fs_online's two forms share plan + one serve. */
static Jsonb *
online_common(FunctionCallInfo fcinfo, FsEntityVal *e, const char *name)
{
	ServePlan	   *p = palloc(sizeof(ServePlan));
	FsReadState rs;
	Jsonb	   *res;

	make_plan(p, fs_entity_val_name(e), name);
	fs_read_begin(&rs);
	res = serve_entity(&rs, p, e);
	fs_read_end(&rs);
	return res;
}

/* fs_online(entity) -> jsonb of every online view of the entity the caller may read */
Datum
fs_online_all(PG_FUNCTION_ARGS)
{
	Jsonb	   *res = online_common(fcinfo, PG_GETARG_FS_ENTITY_P(0), NULL);

	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(res);
}

/* fs_online(entity, view_or_service) -> jsonb restricted to that view or service */
Datum
fs_online_named(PG_FUNCTION_ARGS)
{
	Jsonb	   *res;

	/* not STRICT (a NULL name is an error): a NULL entity has no features, as in fs_online(e) */
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	res = online_common(fcinfo, PG_GETARG_FS_ENTITY_P(0), fs_text_arg(fcinfo, 1, "feature view or service name"));

	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(res);
}

/* Types whose values have a meaning as float8 for a model. */
static bool
vector_type_ok(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == FLOAT4OID || t == FLOAT8OID ||
		t == NUMERICOID || t == BOOLOID;
}

/* A vector's layout: the view and feature index of each element, in service (or view) order. */
typedef struct VecSpec
{
	int			n;
	FsOnlineView **fov;
	int		   *fidx;
} VecSpec;

/* The layout for a plan made from `name`; every feature must be numeric or boolean. */
static void
vec_spec(ServePlan *p, const char *name, VecSpec *vs)
{
	if (p->service)
	{
		vs->n = p->service->nfeatures;
		vs->fov = palloc(sizeof(FsOnlineView *) * Max(vs->n, 1));
		vs->fidx = palloc(sizeof(int) * Max(vs->n, 1));
		for (int i = 0; i < vs->n; i++)
		{
			vs->fov[i] = p->service->features[i].ov;
			vs->fidx[i] = p->service->features[i].feature_index;
		}
	}
	else
	{
		FsOnlineView *ov = fs_meta_find_view(name);

		vs->n = ov->view->nfeatures;
		vs->fov = palloc(sizeof(FsOnlineView *) * Max(vs->n, 1));
		vs->fidx = palloc(sizeof(int) * Max(vs->n, 1));
		for (int i = 0; i < vs->n; i++)
		{
			vs->fov[i] = ov;
			vs->fidx[i] = i;
		}
	}
	for (int i = 0; i < vs->n; i++)
	{
		FsFeature  *f = &vs->fov[i]->view->features[vs->fidx[i]];

		if (!vector_type_ok(f->type))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("feature \"%s:%s\" of type %s cannot be served as float8",
							vs->fov[i]->view->name, f->name, format_type_be(f->type)),
					 errhint("fs_online_vector serves numeric and boolean features; use fs_online for the others.")));
	}
}

/* One entity's vector from its rows (rows[t] = target t's); NULL when no view has a row. */
static ArrayType *
build_vector(ServePlan *p, VecSpec *vs, FsOnlineRow *rows)
{
	Datum	   *vals = palloc0(sizeof(Datum) * Max(vs->n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(vs->n, 1));
	int			nfound = 0;
	int			dims[1];
	int			lbs[1] = {1};

	for (int i = 0; i < vs->n; i++)
		nulls[i] = true;
	for (int t = 0; t < p->ntargets; t++)
	{
		FsOnlineRow *row = &rows[t];
		JsonbContainer *inner;

		if (!row->found)
			continue;
		nfound++;
		if (row_expired(&p->targets[t], row))
			continue;
		inner = fs_row_inner(p->targets[t].ov, row);
		for (int i = 0; i < vs->n; i++)
		{
			JsonbValue	v;

			if (vs->fov[i] != p->targets[t].ov)
				continue;
			feature_value(inner, vs->fov[i]->view->features[vs->fidx[i]].name, &v);
			if (v.type == jbvNumeric)
			{
				vals[i] = DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric));
				nulls[i] = false;
			}
			else if (v.type == jbvBool)
			{
				vals[i] = Float8GetDatum(v.val.boolean ? 1.0 : 0.0);
				nulls[i] = false;
			}
		}
	}
	if (nfound == 0)
		return NULL;
	dims[0] = vs->n;
	return construct_md_array(vals, nulls, 1, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/*
 * fs_online_vector(entity, service) -> float8[] in the service's feature order (a view name
 * gives the view's feature order). Missing, null or expired values are NULL elements; NULL
 * when no view has a row for the entity.
 */
Datum
fs_online_vector(PG_FUNCTION_ARGS)
{
	FsEntityVal *e;
	char	   *name;
	ServePlan  *p;
	FsReadState rs;
	VecSpec		vs;
	FsOnlineRow *rows;
	ArrayType  *res;

	/* a NULL entity has no features (the function is not STRICT: a NULL name is an error) */
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	e = PG_GETARG_FS_ENTITY_P(0);
	name = fs_text_arg(fcinfo, 1, "feature view or service name");
	p = palloc(sizeof(ServePlan));

	make_plan(p, fs_entity_val_name(e), name);
	vec_spec(p, name, &vs);
	rows = palloc(sizeof(FsOnlineRow) * Max(p->ntargets, 1));
	fs_read_begin(&rs);
	for (int t = 0; t < p->ntargets; t++)
		fs_read_row(&rs, p->targets[t].ov, e, &rows[t]);
	fs_read_end(&rs);
	res = build_vector(p, &vs, rows);
	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(res);
}

/*
 * Elements of a keys array per chunk: one cache pass and at most one query per chunk. Small
 * enough that a chunk's scratch (about 90 kB) stays in the CPU cache when many backends share
 * a core; large enough that each bucket lock is taken for several keys.
 */
#define KEYS_CHUNK 256

/* Batch read scratch kept by the backend, one per target view; busy while a call uses it. */
static FsReadScratch **scratch_pool = NULL;
static int	scratch_n = 0;
static bool scratch_busy = false;

/*
 * Scratch for ntargets views: the backend's pool (grown as needed), or, for a nested call (a
 * key type's input function calling back into a batch form), scratch of the call's own.
 */
static FsReadScratch **
scratch_get(int ntargets, bool own)
{
	FsReadScratch **sc;

	if (own)
		sc = palloc0(sizeof(FsReadScratch *) * Max(ntargets, 1));
	else
	{
		if (ntargets > scratch_n)
		{
			FsReadScratch **grown = MemoryContextAllocZero(TopMemoryContext, sizeof(FsReadScratch *) * ntargets);

			if (scratch_n > 0)
				memcpy(grown, scratch_pool, sizeof(FsReadScratch *) * scratch_n);
			scratch_pool = grown;
			scratch_n = ntargets;
		}
		sc = scratch_pool;
	}
	for (int t = 0; t < ntargets; t++)
		if (sc[t] == NULL)
			sc[t] = fs_read_scratch(own ? CurrentMemoryContext : TopMemoryContext, KEYS_CHUNK);
	return sc;
}

/* How the elements of a keys array become the entity's typed keys. */
typedef struct KeyConv
{
	FsOnlineView *ov;			/* any target: all share the entity, hence key types */
	int			nkeys;
	Oid			elemtype;
	bool		composite;		/* elements are rows, one field per key */
	Oid			from[FS_MAX_KEYS];	/* last source type converted per key, and its output */
	FmgrInfo	out[FS_MAX_KEYS];
	MemoryContext cxt;			/* the call's: where the output functions live */
} KeyConv;

/* A value of type `from` as key k: as is when the types match, else through text I/O. */
static Datum
conv_key(KeyConv *kc, int k, Datum d, Oid from)
{
	FsOnlineView *ov = kc->ov;

	if (from == ov->view->entity.key_types[k])
		return d;
	if (kc->from[k] != from)
	{
		Oid			outfn;
		bool		isvarlena;

		getTypeOutputInfo(from, &outfn, &isvarlena);
		fmgr_info_cxt(outfn, &kc->out[k], kc->cxt);
		kc->from[k] = from;
	}
	return InputFunctionCall(&ov->key_in[k], OutputFunctionCall(&kc->out[k], d), ov->key_ioparam[k], -1);
}

/* Element -> keys; false when the element gives no key (a NULL field never matches). */
static bool
elem_keys(KeyConv *kc, Datum elem, Datum *keys)
{
	if (!kc->composite)
	{
		keys[0] = conv_key(kc, 0, elem, kc->elemtype);
		return true;
	}
	{
		HeapTupleHeader td = DatumGetHeapTupleHeader(elem);
		TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(td), HeapTupleHeaderGetTypMod(td));
		HeapTupleData tup;
		bool		ok = true;
		int			natts = 0;

		for (int a = 0; a < desc->natts; a++)
			natts += !TupleDescAttr(desc, a)->attisdropped;
		if (natts != kc->nkeys)
		{
			ReleaseTupleDesc(desc);
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("entity \"%s\" has %d key columns, but a key row has %d fields",
							kc->ov->view->entity.name, kc->nkeys, natts),
					 errhint("Pass one row per entity with its keys in the entity's key order, such as ARRAY[ROW(42, 7)].")));
		}
		tup.t_len = HeapTupleHeaderGetDatumLength(td);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = td;
		for (int a = 0, k = 0; a < desc->natts && ok; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);
			bool		isnull;
			Datum		d;

			if (att->attisdropped)
				continue;
			d = heap_getattr(&tup, a + 1, desc, &isnull);
			if (isnull)
				ok = false;
			else
				keys[k] = conv_key(kc, k, d, att->atttypid);
			k++;
		}
		ReleaseTupleDesc(desc);
		return ok;
	}
}

/*
 * The plan of a keys-array call: the view or service names the entity (a service whose
 * features span several entities cannot take one key array). Privileges are checked here,
 * once per call.
 */
static void
make_keys_plan(ServePlan *p, const char *name, Oid elemtype, KeyConv *kc)
{
	FsOnlineView *ov;
	const char *entity = NULL;

	fs_meta_ensure();
	ov = fs_meta_find_view(name);
	if (ov)
		entity = ov->view->entity.name;
	else
	{
		FsService  *s = fs_meta_find_service(name);

		if (s != NULL)
			for (int i = 0; i < s->nfeatures; i++)
			{
				const char *en = s->features[i].ov->view->entity.name;

				if (entity == NULL)
					entity = en;
				else if (strcmp(entity, en) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("feature service \"%s\" has features of entities \"%s\" and \"%s\"", name, entity, en),
							 errhint("Serve it with fs_online_batch(fs_entity[], '%s'), or call the keys form once per view.", name)));
			}
	}
	/* unknown names, offline views and privileges are reported here */
	make_plan(p, entity ? entity : "", name);
	memset(kc, 0, sizeof(*kc));
	kc->ov = p->targets[0].ov;
	kc->nkeys = kc->ov->view->entity.nkeys;
	kc->elemtype = elemtype;
	kc->composite = type_is_rowtype(elemtype);
	kc->cxt = CurrentMemoryContext;
	if (!kc->composite && kc->nkeys != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("entity \"%s\" has %d key columns, but the keys are of the scalar type %s",
						entity, kc->nkeys, format_type_be(elemtype)),
				 errhint("Pass an array of rows with the keys in order, such as ARRAY[ROW(42, 7), ROW(43, 9)].")));
}

/*
 * The output rows of a chunk, one per element in array order: (element, answer), the answer
 * NULL for elements without keys (knull) or without any feature; a vector with vs.
 */
static void
emit_chunk(ReturnSetInfo *rsi, ServePlan *p, VecSpec *vs, Datum *elems, bool *enulls,
		   bool *knull, FsOnlineRow **rows, int m)
{
	FsOnlineRow *erow = palloc(sizeof(FsOnlineRow) * Max(p->ntargets, 1));

	for (int i = 0; i < m; i++)
	{
		Datum		out[2];
		bool		onull[2] = {enulls[i], true};

		out[0] = elems[i];
		if (!knull[i])
		{
			for (int t = 0; t < p->ntargets; t++)
				erow[t] = rows[t][i];
			if (vs)
			{
				ArrayType  *v = build_vector(p, vs, erow);

				if (v)
					out[1] = PointerGetDatum(v), onull[1] = false;
			}
			else
			{
				Jsonb	   *j = assemble(p, erow);

				if (j)
					out[1] = JsonbPGetDatum(j), onull[1] = false;
			}
		}
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, out, onull);
	}
}

/*
 * The keys forms' chunk loop: per chunk of elements, one batched read per target view (sc[t]
 * its scratch), then one output row per element (key, answer) in array order.
 */
static void
serve_chunks(ReturnSetInfo *rsi, ServePlan *p, KeyConv *kc, VecSpec *vs, Datum *elems,
			 bool *enulls, int n, FsReadScratch **sc)
{
	FsReadState rs;
	MemoryContext chunkcxt,
				old;

	fs_read_begin(&rs);
	/* per-chunk garbage (rows, keys, answers) goes away once the chunk's rows are stored */
	chunkcxt = AllocSetContextCreate(CurrentMemoryContext, "fs_online_batch_keys chunk", ALLOCSET_DEFAULT_SIZES);
	for (int c0 = 0; c0 < n; c0 += KEYS_CHUNK)
	{
		int			m = Min(KEYS_CHUNK, n - c0);
		Datum	   *keys;
		bool	   *knull;
		FsOnlineRow **rows;

		old = MemoryContextSwitchTo(chunkcxt);
		keys = palloc(sizeof(Datum) * m * kc->nkeys);
		knull = palloc(sizeof(bool) * m);
		for (int i = 0; i < m; i++)
			knull[i] = enulls[c0 + i] || !elem_keys(kc, elems[c0 + i], &keys[i * kc->nkeys]);
		rows = palloc(sizeof(FsOnlineRow *) * p->ntargets);
		for (int t = 0; t < p->ntargets; t++)
		{
			rows[t] = palloc(sizeof(FsOnlineRow) * m);
			fs_read_rows(&rs, p->targets[t].ov, m, keys, knull, rows[t], sc[t]);
		}
		emit_chunk(rsi, p, vs, &elems[c0], &enulls[c0], knull, rows, m);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunkcxt);
	}
	fs_read_end(&rs);
	MemoryContextDelete(chunkcxt);
}

/*
 * The keys forms: plan (privileges once), elements, then the chunk loop with the backend's
 * scratch memory (kept from call to call: allocating it per call costs page faults that rival
 * the cache probes; a nested call, e.g. from a key type's input function, gets its own).
 */
static void
serve_keys(FunctionCallInfo fcinfo, bool vector)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	ArrayType  *arr;
	Oid			elemtype;
	int16		typlen;
	bool		byval;
	char		align;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	ServePlan  *p = palloc(sizeof(ServePlan));
	KeyConv		kc;
	VecSpec		vs;
	FsReadScratch **sc;
	bool		own_scratch;

	InitMaterializedSRF(fcinfo, 0);
	name = fs_text_arg(fcinfo, 0, "feature view or service name");
	if (PG_ARGISNULL(1))
		return;
	arr = PG_GETARG_ARRAYTYPE_P(1);
	elemtype = ARR_ELEMTYPE(arr);
	make_keys_plan(p, name, elemtype, &kc);
	if (vector)
		vec_spec(p, name, &vs);
	get_typlenbyvalalign(elemtype, &typlen, &byval, &align);
	deconstruct_array(arr, elemtype, typlen, byval, align, &elems, &enulls, &n);
	own_scratch = scratch_busy;
	sc = scratch_get(p->ntargets, own_scratch);
	if (own_scratch)
	{
		serve_chunks(rsi, p, &kc, vector ? &vs : NULL, elems, enulls, n, sc);
		return;
	}
	scratch_busy = true;
	PG_TRY();
	{
		serve_chunks(rsi, p, &kc, vector ? &vs : NULL, elems, enulls, n, sc);
	}
	PG_FINALLY();
	{
		scratch_busy = false;
	}
	PG_END_TRY();
}

/*
 * fs_online_batch's loop: a run of consecutive elements of one entity (at most a chunk; NULL
 * elements ride along) is read like a chunk of the keys forms, one batched read per target
 * view, then one output row per element in array order.
 */
static void
serve_entities(ReturnSetInfo *rsi, const char *name, Datum *elems, bool *enulls, int n, bool own)
{
	ServePlan  *p = palloc0(sizeof(ServePlan));	/* no targets until an element names the entity */
	char	   *plan_entity = NULL;
	FsReadState rs;
	MemoryContext chunkcxt,
				old;

	fs_read_begin(&rs);
	/* per-chunk garbage (keys, rows, answers) goes away once the chunk's rows are stored */
	chunkcxt = AllocSetContextCreate(CurrentMemoryContext, "fs_online_batch chunk", ALLOCSET_DEFAULT_SIZES);
	for (int c0 = 0; c0 < n;)
	{
		int			m = 0;
		const char *ename = NULL;
		FsOnlineRow **rows = NULL;

		while (c0 + m < n && m < KEYS_CHUNK)
		{
			if (!enulls[c0 + m])
			{
				const char *en = fs_entity_val_name(DatumGetFsEntityP(elems[c0 + m]));

				if (ename == NULL)
					ename = en;
				else if (strcmp(ename, en) != 0)
					break;
			}
			m++;
		}
		if (ename && (plan_entity == NULL || strcmp(plan_entity, ename) != 0))
		{
			plan_entity = pstrdup(ename);
			make_plan(p, plan_entity, name);
		}
		old = MemoryContextSwitchTo(chunkcxt);
		if (ename)
		{
			FsReadScratch **sc = scratch_get(p->ntargets, own);

			rows = palloc(sizeof(FsOnlineRow *) * Max(p->ntargets, 1));
			for (int t = 0; t < p->ntargets; t++)
			{
				FsOnlineView *ov = p->targets[t].ov;
				int			nk = ov->view->entity.nkeys;
				Datum	   *keys = palloc(sizeof(Datum) * m * nk);
				bool	   *knull = palloc(sizeof(bool) * m);
				bool		readable = true;

				/* every element's keys are converted (a malformed one is an error) */
				for (int i = 0; i < m; i++)
				{
					knull[i] = enulls[c0 + i];
					if (!knull[i] &&
						!fs_read_entity_keys(ov, DatumGetFsEntityP(elems[c0 + i]), &keys[i * nk]))
						readable = false;
				}
				rows[t] = palloc0(sizeof(FsOnlineRow) * m);
				if (readable)
					fs_read_rows(&rs, ov, m, keys, knull, rows[t], sc[t]);
			}
		}
		emit_chunk(rsi, p, NULL, &elems[c0], &enulls[c0], &enulls[c0], rows, m);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunkcxt);
		c0 += m;
	}
	fs_read_end(&rs);
	MemoryContextDelete(chunkcxt);
}

/*
 * fs_online_batch(entities fs_entity[], view_or_service text) -> (entity, features) per
 * element, in array order; one plan per run of one entity, and the keys forms' batched reads.
 */
Datum
fs_online_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	char	   *name = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int16		typlen;
	bool		byval;
	char		align;
	bool		own_scratch = scratch_busy;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	arr = PG_GETARG_ARRAYTYPE_P(0);
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &byval, &align);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, byval, align, &elems, &enulls, &n);
	if (own_scratch)
	{
		serve_entities(rsi, name, elems, enulls, n, true);
		return (Datum) 0;
	}
	scratch_busy = true;
	PG_TRY();
	{
		serve_entities(rsi, name, elems, enulls, n, false);
	}
	PG_FINALLY();
	{
		scratch_busy = false;
	}
	PG_END_TRY();
	return (Datum) 0;
}

/*
 * fs_online_batch_keys(view_or_service text, keys anyarray) -> (key, features jsonb) per element,
 * in array order: the fast batch form. Keys are the entity's key values themselves (an array
 * of the key type, or of rows for composite keys), no fs_entity to build or parse; privileges
 * are checked once, each cache lock is taken once per chunk, misses are read in one query.
 */
Datum
fs_online_batch_keys(PG_FUNCTION_ARGS)
{
	serve_keys(fcinfo, false);
	return (Datum) 0;
}

/* fs_online_batch_vector(service, keys anyarray) -> (key, features float8[]) per element. */
Datum
fs_online_batch_vector(PG_FUNCTION_ARGS)
{
	serve_keys(fcinfo, true);
	return (Datum) 0;
}

/*
 * fs_online_detail(entity, view_or_service) -> one row per feature: view, version, feature,
 * value, event_ts, status ('present', 'null', 'not_found', 'expired'), like Feast's
 * field statuses. Expired rows show the stale value so that it can be inspected.
 */
Datum
fs_online_detail(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	FsEntityVal *e;
	char	   *name = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	ServePlan	   *p = palloc(sizeof(ServePlan));
	FsReadState rs;

	InitMaterializedSRF(fcinfo, 0);
	/* a NULL entity has no features: no rows (it used to be dereferenced: a crash) */
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	e = PG_GETARG_FS_ENTITY_P(0);
	make_plan(p, fs_entity_val_name(e), name);
	fs_read_begin(&rs);
	for (int t = 0; t < p->ntargets; t++)
	{
		Target	   *tg = &p->targets[t];
		FsView	   *v = tg->ov->view;
		FsOnlineRow row;
		bool		found = fs_read_row(&rs, tg->ov, e, &row);
		bool		expired = found && row_expired(tg, &row);
		int			nf = tg->nfeat < 0 ? v->nfeatures : tg->nfeat;

		for (int f = 0; f < nf; f++)
		{
			const char *fname = v->features[tg->nfeat < 0 ? f : tg->feat[f]].name;
			Datum		out[6];
			bool		onull[6] = {false, false, false, true, true, false};
			const char *status = "not_found";

			out[0] = CStringGetTextDatum(v->name);
			out[1] = Int32GetDatum(v->version);
			out[2] = CStringGetTextDatum(fname);
			if (found)
			{
				JsonbValue	jv;

				feature_value(fs_row_inner(tg->ov, &row), fname, &jv);
				status = expired ? "expired" : jv.type == jbvNull ? "null" : "present";
				if (jv.type != jbvNull)
				{
					out[3] = JsonbPGetDatum(JsonbValueToJsonb(&jv));
					onull[3] = false;
				}
				out[4] = TimestampTzGetDatum(row.event_ts);
				onull[4] = false;
			}
			out[5] = CStringGetTextDatum(status);
			tuplestore_putvalues(rsi->setResult, rsi->setDesc, out, onull);
		}
	}
	fs_read_end(&rs);
	return (Datum) 0;
}
