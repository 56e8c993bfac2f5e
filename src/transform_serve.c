/*
 * transform_serve.c — transforms at a lookup: fs_online(entity, transform, request). The inputs
 * are served as fs_online serves their views (serving version, cache, TTL: an expired or missing
 * row is NULL, as in a training set), the request's values are converted to the declared types,
 * and the one compiled expression of transform.c is evaluated: the training set's code path for
 * the value itself. A missing, unknown or mistyped request parameter is an error, never NULL.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
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

	for (int j = 0; j < t->ninputs; j++)
	{
		const char *feature;
		const char *vref = input_view_ref(t, j, &feature);
		FsOnlineView *ov;
		Jsonb	   *ans;
		JsonbValue *vv;
		ConvCtx		c = {"input feature", t->inputs[j], t->name};

		fs_meta_ensure();
		ov = fs_meta_find_view(vref);
		if (ov == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("input \"%s\" of transform \"%s\" names a feature view that does not exist", t->inputs[j], t->name)));
		if (strcmp(ov->view->entity.name, entity) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("input \"%s\" of transform \"%s\" is keyed by entity \"%s\", not \"%s\"",
							t->inputs[j], t->name, ov->view->entity.name, entity)));
		ans = fs_serve_one(e, psprintf("%s@%d", ov->view->name, ov->view->version));
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

/*
 * fs_online(entity, name, request) -> jsonb: for a transform {"transform": value}; a view or
 * service takes no request (request NULL or {}) and answers as fs_online(entity, name).
 */
Datum
fs_online_request(PG_FUNCTION_ARGS)
{
	char	   *name = fs_text_arg(fcinfo, 1, "feature view, service or transform name");
	Jsonb	   *req = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	FsEntityVal *e;
	FsTransform *t;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	e = PG_GETARG_FS_ENTITY_P(0);
	fs_meta_ensure();
	t = fs_meta_find_view(name) ? NULL : fs_transform_lookup(name, true);
	if (t == NULL)
	{
		Jsonb	   *res;
		FsService  *s = fs_meta_find_view(name) ? NULL : fs_meta_find_service(name);

		if (s != NULL && s->ntransforms > 0)
		{
			res = fs_serve_one_request(e, name, req);
			if (res == NULL)
				PG_RETURN_NULL();
			PG_RETURN_JSONB_P(res);
		}
		if (req != NULL && !(JB_ROOT_IS_OBJECT(req) && JB_ROOT_COUNT(req) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" takes no request parameters: it is not a transform", name),
					 errhint("See SELECT name, request FROM fs_transforms.")));
		res = fs_serve_one(e, name);
		if (res == NULL)
			PG_RETURN_NULL();
		PG_RETURN_JSONB_P(res);
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
		PG_RETURN_JSONB_P(JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
	}
}
