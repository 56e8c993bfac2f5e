/*
 * transform_serve.c — transforms at a lookup: fs_online(entity, transform, request). The inputs
 * are served as fs_online serves their views (serving version, cache, TTL: an expired or missing
 * row is NULL, as in a training set), the request's values are converted to the declared types,
 * and the one compiled expression of transform.c is evaluated: the training set's code path for
 * the value itself. A missing, unknown or mistyped request parameter is an error, never NULL.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/float.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/tuplestore.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "entity_type.h"
#include "online_meta.h"
#include "online_serve.h"
#include "registry.h"
#include "sql_args.h"
#include "transform.h"

PG_FUNCTION_INFO_V1(fs_online_request);
PG_FUNCTION_INFO_V1(fs_online_batch_request);

typedef struct ConvCtx
{
	const char *what;			/* "request parameter" or "input feature" */
	const char *name;
	const char *transform;
} ConvCtx;

static void
conv_error_callback(void *arg)
{
	ConvCtx    *c = arg;

	errcontext("%s \"%s\" of transform \"%s\"", c->what, c->name, c->transform);
}

/* A jsonb scalar as a value of `type` (its input function on the scalar's text). */
static Datum
jsonb_to_datum(JsonbValue *v, Oid type, bool *isnull, ConvCtx *c)
{
	ErrorContextCallback cb;
	Oid			infn,
				ioparam;
	char	   *text;
	Datum		d;

	*isnull = v->type == jbvNull;
	if (*isnull)
		return (Datum) 0;
	if (v->type == jbvNumeric && type == NUMERICOID)
		return NumericGetDatum(DatumGetNumericCopy(NumericGetDatum(v->val.numeric)));
	if (v->type == jbvBool && type == BOOLOID)
		return BoolGetDatum(v->val.boolean);
	if (type == JSONBOID)
		return JsonbPGetDatum(JsonbValueToJsonb(v));
	switch (v->type)
	{
		case jbvString:
			text = pnstrdup(v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
			break;
		case jbvBool:
			text = pstrdup(v->val.boolean ? "true" : "false");
			break;
		default:
			text = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
			break;
	}
	cb.callback = conv_error_callback;
	cb.arg = c;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	getTypeInputInfo(type, &infn, &ioparam);
	d = OidInputFunctionCall(infn, text, ioparam, -1);
	error_context_stack = cb.previous;
	return d;
}

/* The result as a jsonb value, as to_jsonb would write it. */
static void
datum_to_jsonb_value(Datum d, bool isnull, Oid type, JsonbValue *out)
{
	Oid			outfn;
	bool		varlena;
	char	   *s;

	if (isnull)
	{
		out->type = jbvNull;
		return;
	}
	switch (type)
	{
		case BOOLOID:
			out->type = jbvBool;
			out->val.boolean = DatumGetBool(d);
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			getTypeOutputInfo(type, &outfn, &varlena);
			s = OidOutputFunctionCall(outfn, d);
			/* NaN and infinities are not JSON numbers: strings, as to_jsonb writes them */
			if (strcmp(s, "NaN") == 0 || strstr(s, "Infinity") != NULL)
				break;
			out->type = jbvNumeric;
			out->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
																   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
			return;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				char		buf[MAXDATELEN + 1];

				s = pstrdup(JsonEncodeDateTime(buf, d, type, NULL));
				out->type = jbvString;
				out->val.string.val = s;
				out->val.string.len = strlen(s);
				return;
			}
		default:
			break;
	}
	getTypeOutputInfo(type, &outfn, &varlena);
	s = OidOutputFunctionCall(outfn, d);
	out->type = jbvString;
	out->val.string.val = s;
	out->val.string.len = strlen(s);
}

/* Errors on a key of the request that none of the transforms declares. */
static void
check_request_keys(FsTransform **ts, int n, Jsonb *req, const char *what)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (req == NULL || !JB_ROOT_IS_OBJECT(req))
		return;
	it = JsonbIteratorInit(&req->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (int i = 0; i < n; i++)
			for (int p = 0; p < ts[i]->nreq; p++)
				known |= strlen(ts[i]->req_names[p]) == (size_t) v.val.string.len &&
					strncmp(ts[i]->req_names[p], v.val.string.val, v.val.string.len) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s has no request parameter \"%.*s\"", what, v.val.string.len, v.val.string.val),
					 errhint("See the request column of fs_transforms.")));
	}
}

/* The request object's value for each declared parameter. */
static void
bind_request(FsTransform *t, Jsonb *req, Datum *args, bool *nulls)
{
	if (req != NULL && !JB_ROOT_IS_OBJECT(req))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request must be a jsonb object of parameter values"),
				 errhint("Write request => '{\"%s\": ...}'.", t->nreq ? t->req_names[0] : "amount")));
	for (int p = 0; p < t->nreq; p++)
	{
		JsonbValue *v = req ? getKeyJsonValueFromContainer(&req->root, t->req_names[p], strlen(t->req_names[p]), NULL)
			: NULL;
		ConvCtx		c = {"request parameter", t->req_names[p], t->name};

		if (v == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("request parameter \"%s\" of transform \"%s\" is missing", t->req_names[p], t->name),
					 errhint("Pass request => '{\"%s\": ...}' (%s); null is a value, leaving it out is not.",
							 t->req_names[p], format_type_be(t->req_types[p]))));
		args[p] = jsonb_to_datum(v, t->req_types[p], &nulls[p], &c);
	}
}

/* The view an input is served from: its serving version, or the version it pins. */
static const char *
input_view_ref(FsTransform *t, int j, const char **feature)
{
	const char *ref = t->inputs[j];
	const char *colon = strchr(ref, ':');

	*feature = t->input_names[j];
	return pnstrdup(ref, colon - ref);
}

/* Each input's value for the entity, as serving has it (NULL when missing or expired). */
static void
serve_inputs(FsTransform *t, FsEntityVal *e, Datum *args, bool *nulls)
{
	const char *entity = fs_entity_val_name(e);
	FsOnlineView **ovs = palloc(sizeof(FsOnlineView *) * Max(t->ninputs, 1));
	Jsonb	  **answers = palloc(sizeof(Jsonb *) * Max(t->ninputs, 1));

	fs_meta_ensure();
	for (int j = 0; j < t->ninputs; j++)
	{
		const char *feature;
		const char *vref = input_view_ref(t, j, &feature);
		FsOnlineView *ov;
		Jsonb	   *ans;
		JsonbValue *vv;
		ConvCtx		c = {"input feature", t->inputs[j], t->name};
		int			same = -1;

		ov = ovs[j] = fs_meta_find_view(vref);
		if (ov == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("input \"%s\" of transform \"%s\" names a feature view that does not exist", t->inputs[j], t->name)));
		if (strcmp(ov->view->entity.name, entity) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("input \"%s\" of transform \"%s\" is keyed by entity \"%s\", not \"%s\"",
							t->inputs[j], t->name, ov->view->entity.name, entity)));
		/* inputs of one view share its answer: the view is served once per call */
		for (int i = 0; i < j && same < 0; i++)
			if (ovs[i] == ov)
				same = i;
		ans = answers[j] = same >= 0 ? answers[same]
			: fs_serve_one(e, psprintf("%s@%d", ov->view->name, ov->view->version));
		nulls[t->nreq + j] = true;
		args[t->nreq + j] = (Datum) 0;
		if (ans == NULL)
			continue;
		vv = getKeyJsonValueFromContainer(&ans->root, ov->view->name, strlen(ov->view->name), NULL);
		if (vv == NULL || vv->type != jbvBinary)
			continue;			/* expired */
		vv = getKeyJsonValueFromContainer(vv->val.binary.data, feature, strlen(feature), NULL);
		if (vv == NULL)
			continue;
		args[t->nreq + j] = jsonb_to_datum(vv, t->input_types[j], &nulls[t->nreq + j], &c);
	}
}

/* The transform's value for one entity and request, as a jsonb value. */
static void
serve_transform(FsTransform *t, FsEntityVal *e, Jsonb *req, JsonbValue *out)
{
	Datum	   *args = palloc0(sizeof(Datum) * Max(t->nreq + t->ninputs, 1));
	bool	   *nulls = palloc0(sizeof(bool) * Max(t->nreq + t->ninputs, 1));
	bool		isnull;
	Datum		d;

	bind_request(t, req, args, nulls);
	serve_inputs(t, e, args, nulls);
	d = fs_transform_eval(t, args, nulls, &isnull);
	datum_to_jsonb_value(d, isnull, t->returns, out);
}

/* Whether every input of t is keyed by the entity (a service's transform for another entity is left out). */
static bool
transform_of_entity(FsTransform *t, const char *entity)
{
	for (int j = 0; j < t->ninputs; j++)
	{
		const char *feature;
		FsOnlineView *ov = fs_meta_find_view(input_view_ref(t, j, &feature));

		if (ov != NULL && strcmp(ov->view->entity.name, entity) != 0)
			return false;
	}
	return true;
}

/* See transform.h. */
Jsonb *
fs_transform_serve_service(FsService *s, FsEntityVal *e, Jsonb *req, Jsonb *features)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			added = 0;

	check_request_keys(s->transforms, s->ntransforms, req, psprintf("feature service \"%s\"", s->name));
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	if (features != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&features->root);

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			if (tok == WJB_KEY || tok == WJB_VALUE)
				pushJsonbValue(&st, tok, &v);
	}
	for (int i = 0; i < s->ntransforms; i++)
	{
		FsTransform *t = s->transforms[i];
		JsonbValue	k;

		if (!transform_of_entity(t, fs_entity_val_name(e)))
			continue;
		serve_transform(t, e, req, &v);
		k.type = jbvString;
		k.val.string.val = t->name;
		k.val.string.len = strlen(t->name);
		pushJsonbValue(&st, WJB_KEY, &k);
		pushJsonbValue(&st, WJB_VALUE, &v);
		added++;
	}
	if (features == NULL && added == 0)
		return NULL;
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* One entity's answer for a transform, a service (its transforms with the request) or a view. */
static Jsonb *
serve_named(FsEntityVal *e, const char *name, Jsonb *req)
{
	FsTransform *t;

	fs_meta_ensure();
	t = fs_meta_find_view(name) ? NULL : fs_transform_lookup(name, true);
	if (t == NULL)
	{
		FsService  *s = fs_meta_find_view(name) ? NULL : fs_meta_find_service(name);

		if (s != NULL && s->ntransforms > 0)
			return fs_serve_one_request(e, name, req);
		if (s == NULL && fs_meta_find_view(name) == NULL)
			fs_transform_misnamed(name);	/* a transform version that does not exist */
		if (req != NULL && !(JB_ROOT_IS_OBJECT(req) && JB_ROOT_COUNT(req) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" takes no request parameters: it is not a transform or a service with transforms", name),
					 errhint("See SELECT name, request FROM fs_transforms.")));
		return fs_serve_one(e, name);
	}
	{
		JsonbParseState *st = NULL;
		JsonbValue	k,
					v;

		check_request_keys(&t, 1, req, psprintf("transform \"%s\"", t->name));
		serve_transform(t, e, req, &v);
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = t->name;
		k.val.string.len = strlen(t->name);
		pushJsonbValue(&st, WJB_KEY, &k);
		pushJsonbValue(&st, WJB_VALUE, &v);
		return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
	}
}

/*
 * fs_online(entity, name, request) -> jsonb: for a transform {"transform": value}; for a service
 * its features and its transforms' values; a view takes no request (NULL or {}).
 */
Datum
fs_online_request(PG_FUNCTION_ARGS)
{
	char	   *name = fs_text_arg(fcinfo, 1, "feature view, service or transform name");
	Jsonb	   *res;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	res = serve_named(PG_GETARG_FS_ENTITY_P(0), name, PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2));
	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(res);
}

/*
 * fs_online_batch(entities, name, requests) -> (entity, features) per element, requests[i] for
 * entities[i] (arrays of one length).
 */
Datum
fs_online_batch_request(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = fs_text_arg(fcinfo, 1, "feature view, service or transform name");
	Datum	   *ents = NULL,
			   *reqs = NULL;
	bool	   *enulls = NULL,
			   *rnulls = NULL;
	int			ne = 0,
				nr = 0;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	MemoryContext percall;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	get_typlenbyvalalign(ARR_ELEMTYPE(PG_GETARG_ARRAYTYPE_P(0)), &typlen, &typbyval, &typalign);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), ARR_ELEMTYPE(PG_GETARG_ARRAYTYPE_P(0)), typlen, typbyval, typalign,
					  &ents, &enulls, &ne);
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), JSONBOID, -1, false, TYPALIGN_INT, &reqs, &rnulls, &nr);
	else
	{
		nr = ne;				/* no requests: each NULL */
		rnulls = palloc(sizeof(bool) * Max(ne, 1));
		memset(rnulls, true, sizeof(bool) * Max(ne, 1));
	}
	if (nr != ne)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("requests has %d elements, entities %d: one request per entity", nr, ne)));
	percall = AllocSetContextCreate(CurrentMemoryContext, "fs_online_batch request", ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < ne; i++)
	{
		Datum		out[2];
		bool		onull[2] = {enulls[i], true};
		MemoryContext old = MemoryContextSwitchTo(percall);
		Jsonb	   *res = NULL;

		if (!enulls[i])
			res = serve_named(DatumGetFsEntityP(ents[i]), name, rnulls[i] ? NULL : DatumGetJsonbP(reqs[i]));
		MemoryContextSwitchTo(old);
		out[0] = ents[i];
		if (res != NULL)
		{
			out[1] = JsonbPGetDatum(res);
			onull[1] = false;
		}
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, out, onull);
		MemoryContextReset(percall);
	}
	MemoryContextDelete(percall);
	return (Datum) 0;
}

/* A transform's value as a vector element (numeric and boolean results only). */
static bool
as_float8(Datum d, Oid type, float8 *out, const char *name)
{
	switch (type)
	{
		case INT2OID:
			*out = DatumGetInt16(d);
			return true;
		case INT4OID:
			*out = DatumGetInt32(d);
			return true;
		case INT8OID:
			*out = (float8) DatumGetInt64(d);
			return true;
		case FLOAT4OID:
			*out = DatumGetFloat4(d);
			return true;
		case FLOAT8OID:
			*out = DatumGetFloat8(d);
			return true;
		case NUMERICOID:
			*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
			return true;
		case BOOLOID:
			*out = DatumGetBool(d) ? 1.0 : 0.0;
			return true;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("transform \"%s\" of type %s cannot be served as float8", name, format_type_be(type)),
			 errhint("fs_online_vector serves numeric and boolean values; use fs_online for the others.")));
	return false;
}

/* See transform.h. */
ArrayType *
fs_transform_vector(FsService *s, FsEntityVal *e, Jsonb *req, ArrayType *features, int nfeatures)
{
	int			n = nfeatures + s->ntransforms;
	Datum	   *vals = palloc0(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	Datum	   *fv = NULL;
	bool	   *fn = NULL;
	int			nf = 0;
	int			fi = 0,
				ti = 0;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	check_request_keys(s->transforms, s->ntransforms, req, psprintf("feature service \"%s\"", s->name));
	if (features != NULL)
		deconstruct_array(features, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &fv, &fn, &nf);
	/* features and transforms merged by their positions in the service */
	for (int i = 0; i < n; i++)
	{
		bool		take_feature = ti >= s->ntransforms ||
			(fi < nfeatures && s->fpos[fi] < s->tpos[ti]);

		if (take_feature)
		{
			nulls[i] = fv == NULL || fi >= nf || fn[fi];
			vals[i] = nulls[i] ? (Datum) 0 : fv[fi];
			fi++;
		}
		else
		{
			FsTransform *t = s->transforms[ti++];
			Datum	   *args = palloc0(sizeof(Datum) * Max(t->nreq + t->ninputs, 1));
			bool	   *anulls = palloc0(sizeof(bool) * Max(t->nreq + t->ninputs, 1));
			bool		isnull;
			Datum		d;
			float8		f;

			bind_request(t, req, args, anulls);
			serve_inputs(t, e, args, anulls);
			d = fs_transform_eval(t, args, anulls, &isnull);
			nulls[i] = isnull;
			if (!isnull)
			{
				as_float8(d, t->returns, &f, t->name);
				vals[i] = Float8GetDatum(f);
			}
		}
	}
	return construct_md_array(vals, nulls, 1, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}
