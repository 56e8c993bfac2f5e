/*
 * online_serve.c — the serving calls: fs_online(entity [, view_or_service]), fs_online_vector,
 * fs_online_batch and fs_online_detail.
 *
 * Result shape (documented in docs/reference.md): {"view": {"feature": value, ...}, ...}. A view that has
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
#include "numeric_float.h"
#include "online_serve.h"
#include "transform.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(fs_online_all);
PG_FUNCTION_INFO_V1(fs_online_named);
PG_FUNCTION_INFO_V1(fs_online_vector);
PG_FUNCTION_INFO_V1(fs_online_detail);

/* A view named explicitly must be online and readable by the caller (else an error). */
static void
check_named_view(FsOnlineView *ov)
{
	if (!ov->online)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view \"%s\" is not online", ov->view->name),
				 ov->view->is_agg ? errhint("Enable it with SELECT fs_set_online_mode('%s', 'batch').", ov->view->name)
				 : errhint("Enable it with SELECT fs_set_online_mode('%s', 'batch') and materialize it.", ov->view->name)));
	if (!fs_meta_can_select(ov))
		fs_check_view_select(ov->view);
}

/*
 * An entity name that is not registered is a caller's mistake (often a typo), not "no data":
 * 42704, where an unknown key of a known entity is "not found". Called only when the plan
 * cannot serve the entity (no target, or the named view or service is of another entity), so
 * the common path pays nothing. An empty name stands for "no entity given" (the keys forms).
 */
static void
check_entity_known(const char *entity)
{
	const char *like;

	if (entity[0] == '\0' || fs_meta_entity_exists(entity))
		return;
	like = fs_meta_entity_like(entity);
	if (like)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("entity \"%s\" does not exist", entity),
				 errhint("Perhaps you meant \"%s\". See the registered entities with SELECT entity FROM fs_entities.", like)));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("entity \"%s\" does not exist", entity),
			 errhint("See the registered entities with SELECT entity FROM fs_entities.")));
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
void
fs_serve_make_plan(ServePlan *p, const char *entity, const char *name)
{
	p->ntargets = 0;
	p->service = NULL;
	fs_meta_ensure();
	if (name == NULL)
	{
		for (int i = 0; i < fs_meta_nviews(); i++)
		{
			FsOnlineView *ov = fs_meta_view(i);

			if (ov->view->is_serving && ov->online && strcmp(ov->view->entity.name, entity) == 0 &&
				fs_meta_can_select(ov))
				target_for(p, ov);
		}
		if (p->ntargets == 0)
			check_entity_known(entity);
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
			{
				check_entity_known(entity);
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature view \"%s\" is keyed by entity \"%s\", not \"%s\"",
								name, ov->view->entity.name, entity),
						 errhint("Pass a key of entity \"%s\", such as fs_entity('%s', ...).",
								 ov->view->entity.name, ov->view->entity.name)));
			}
			target_for(p, ov);
			return;
		}
		s = fs_meta_find_service(name);
		if (s == NULL)
			fs_transform_misnamed(name);
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
		if (p->ntargets == 0 && s->ntransforms == 0)
		{
			check_entity_known(entity);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature service \"%s\" has no feature keyed by entity \"%s\"", name, entity),
					 errhint("See SELECT name, entity FROM fs_views for the entity of each view of the service.")));
		}
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
Jsonb *
fs_serve_assemble(ServePlan *p, FsOnlineRow *rows)
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
	return fs_serve_assemble(p, rows);
}

/* fs_online's forms share plan + one serve; a service's transforms are added for the request. */
static Jsonb *
online_common(FunctionCallInfo fcinfo, FsEntityVal *e, const char *name, Jsonb *req)
{
	ServePlan	   *p = palloc(sizeof(ServePlan));
	FsReadState rs;
	Jsonb	   *res;

	fs_serve_make_plan(p, fs_entity_val_name(e), name);
	fs_read_begin(&rs);
	res = serve_entity(&rs, p, e);
	fs_read_end(&rs);
	if (p->service != NULL && p->service->ntransforms > 0)
		res = fs_transform_serve_service(p->service, e, req, res);
	return res;
}

/* See online_serve.h. */
Jsonb *
fs_serve_one(FsEntityVal *e, const char *name)
{
	return online_common(NULL, e, name, NULL);
}

/* See online_serve.h. */
Jsonb *
fs_serve_one_request(FsEntityVal *e, const char *name, Jsonb *req)
{
	return online_common(NULL, e, name, req);
}

/* fs_online(entity) -> jsonb of every online view of the entity the caller may read */
Datum
fs_online_all(PG_FUNCTION_ARGS)
{
	Jsonb	   *res = online_common(fcinfo, PG_GETARG_FS_ENTITY_P(0), NULL, NULL);

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
	res = online_common(fcinfo, PG_GETARG_FS_ENTITY_P(0), fs_text_arg(fcinfo, 1, "feature view or service name"), NULL);

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

/* The layout for a plan made from `name`; every feature must be numeric or boolean. */
void
fs_serve_vec_spec(ServePlan *p, const char *name, VecSpec *vs)
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
ArrayType *
fs_serve_build_vector(ServePlan *p, VecSpec *vs, FsOnlineRow *rows)
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
				vals[i] = Float8GetDatum(fs_numeric_float8(v.val.numeric));
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

	fs_serve_make_plan(p, fs_entity_val_name(e), name);
	fs_serve_vec_spec(p, name, &vs);
	rows = palloc(sizeof(FsOnlineRow) * Max(p->ntargets, 1));
	fs_read_begin(&rs);
	for (int t = 0; t < p->ntargets; t++)
		fs_read_row(&rs, p->targets[t].ov, e, &rows[t]);
	fs_read_end(&rs);
	res = fs_serve_build_vector(p, &vs, rows);
	/* a service's transforms take their places in its order (the 3-argument form's request) */
	if (p->service != NULL && p->service->ntransforms > 0)
		res = fs_transform_vector(p->service, e, PG_NARGS() > 2 && !PG_ARGISNULL(2) ? PG_GETARG_JSONB_P(2) : NULL,
								  res, vs.n);
	else if (PG_NARGS() > 2 && !PG_ARGISNULL(2) && JB_ROOT_COUNT(PG_GETARG_JSONB_P(2)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" takes no request parameters: it has no transforms", name)));
	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(res);
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
	fs_serve_make_plan(p, fs_entity_val_name(e), name);
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
