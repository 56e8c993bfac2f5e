/*
 * transform.c — on-demand features: fs_register_transform / fs_drop_transform, and the one
 * compiled form of a transform that training and serving both evaluate.
 *
 * A transform is one SQL expression over request parameters (declared names and types) and input
 * features (references to one feature each; the expression names them by feature name). It is
 * parsed with search_path pinned to pg_catalog, pg_temp (functions of other schemas are named
 * with their schema), its names bound to parameters by a column-reference hook, and refused when
 * it has subqueries, aggregates, window or set-returning functions, or is not immutable: the
 * same inputs must give the same value in a training set and at a lookup. Each backend compiles
 * a version once (per role: EXECUTE privileges are checked when compiling) and evaluates it with
 * the executor's expression machinery, so serving does not parse per call.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "online_meta.h"
#include "registry.h"
#include "registry_ddl.h"
#include "security.h"
#include "spi_util.h"
#include "sql_args.h"
#include "transform.h"

PG_FUNCTION_INFO_V1(fs_register_transform);
PG_FUNCTION_INFO_V1(fs_drop_transform);

/* compiled transforms of this backend, by (id, role); versions never change */
static List *compiled = NIL;

/* what a reference ("name", "name@N") resolved to, per role, until the registry changes */
typedef struct RefEntry
{
	char	   *ref;
	Oid			user;
	uint64		epoch;
	FsTransform *t;
} RefEntry;
static List *by_ref = NIL;

/* lappend in TopMemoryContext: the lists live as long as the backend */
static List *
lappend_in(List *l, void *p)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	l = lappend(l, p);
	MemoryContextSwitchTo(old);
	return l;
}

/* The names an expression may use, for the column-reference hook. */
typedef struct NameScope
{
	FsTransform *t;
} NameScope;

static Node *
name_hook(ParseState *pstate, ColumnRef *cref, Node *var)
{
	FsTransform *t = ((NameScope *) pstate->p_ref_hook_state)->t;
	const char *name;

	if (list_length(cref->fields) != 1 || !IsA(linitial(cref->fields), String))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("transform \"%s\" refers to %s, which is not a request parameter or an input feature",
						t->name, NameListToString(cref->fields)),
				 errhint("Use the names of request parameters and input features, unqualified.")));
	name = strVal(linitial(cref->fields));
	for (int i = 0; i < t->nreq + t->ninputs; i++)
	{
		const char *n = i < t->nreq ? t->req_names[i] : t->input_names[i - t->nreq];
		Oid			type = i < t->nreq ? t->req_types[i] : t->input_types[i - t->nreq];

		if (strcmp(n, name) == 0)
		{
			Param	   *p = makeNode(Param);

			p->paramkind = PARAM_EXTERN;
			p->paramid = i + 1;
			p->paramtype = type;
			p->paramtypmod = -1;
			p->paramcollid = get_typcollation(type);
			p->location = cref->location;
			return (Node *) p;
		}
	}
	{
		StringInfoData names;

		initStringInfo(&names);
		for (int i = 0; i < t->nreq + t->ninputs; i++)
			appendStringInfo(&names, "%s%s", i ? ", " : "", i < t->nreq ? t->req_names[i] : t->input_names[i - t->nreq]);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("transform \"%s\" refers to \"%s\", which is not a request parameter or an input feature",
						t->name, name),
				 errdetail("Its names: %s.", names.len ? names.data : "(none)"),
				 errhint("Declare it in request => '{\"%s\": \"numeric\"}' or add its feature to inputs.", name)));
	}
	return NULL;
}

/* Errors while parsing point into the expression, not into the calling statement. */
static void
expression_error_callback(void *arg)
{
	FsTransform *t = arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(t->expression);
	}
	errcontext("expression of transform \"%s\"", t->name);
}

/*
 * Parses and checks the expression of t (names, types filled in) under a pinned search_path;
 * returns the expression coerced to t->returns (or, when that is InvalidOid, its own type,
 * stored there).
 */
static Expr *
parse_expression(FsTransform *t)
{
	List	   *raw;
	SelectStmt *sel;
	ResTarget  *rt;
	ParseState *pstate;
	NameScope	scope = {t};
	Node	   *expr;
	Oid			type;
	int			nest = NewGUCNestLevel();

	ErrorContextCallback errcb;

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	errcb.callback = expression_error_callback;
	errcb.arg = t;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	raw = raw_parser(t->expression, RAW_PARSE_PLPGSQL_EXPR);
	sel = (SelectStmt *) linitial_node(RawStmt, raw)->stmt;
	if (list_length(raw) != 1 || !IsA(sel, SelectStmt) || list_length(sel->targetList) != 1 ||
		sel->fromClause || sel->whereClause || sel->groupClause || sel->havingClause ||
		sel->windowClause || sel->sortClause || sel->limitCount || sel->limitOffset ||
		sel->lockingClause || sel->distinctClause ||
		((ResTarget *) linitial(sel->targetList))->name != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("the expression of transform \"%s\" must be one scalar expression", t->name),
				 errhint("Write an expression such as amount / nullif(avg_purchase_7d, 0), without FROM, WHERE or AS.")));
	rt = linitial(sel->targetList);

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = t->expression;
	pstate->p_post_columnref_hook = name_hook;
	pstate->p_ref_hook_state = &scope;
	expr = transformExpr(pstate, rt->val, EXPR_KIND_SELECT_TARGET);
	if (pstate->p_hasSubLinks)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("transform \"%s\" cannot contain a subquery", t->name),
				 errdetail("A transform computes from its request parameters and input features only.")));
	if (pstate->p_hasAggs || pstate->p_hasWindowFuncs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("transform \"%s\" cannot contain aggregate or window functions", t->name),
				 errhint("Windowed aggregates are aggregation views' job: use their features as inputs.")));
	if (pstate->p_hasTargetSRFs || expression_returns_set(expr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("transform \"%s\" cannot contain set-returning functions", t->name)));
	type = exprType(expr);
	if (!OidIsValid(t->returns))
		t->returns = type;
	expr = coerce_to_target_type(pstate, expr, type, t->returns, -1, COERCION_ASSIGNMENT,
								 COERCE_IMPLICIT_CAST, -1);
	if (expr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("transform \"%s\" computes %s, which cannot be assigned to its result type %s",
						t->name, format_type_be(type), format_type_be(t->returns)),
				 errhint("Cast the expression, or declare returns => '%s'.", format_type_be(type))));
	assign_expr_collations(pstate, expr);
	if (contain_mutable_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("transform \"%s\" is not immutable", t->name),
				 errdetail("Training and serving evaluate it at different times: a function that is not IMMUTABLE (now(), random(), a cast that depends on settings) would make them differ."),
				 errhint("Pass time-dependent values as request parameters.")));
	free_parsestate(pstate);
	error_context_stack = errcb.previous;
	AtEOXact_GUC(true, nest);
	return (Expr *) expr;
}

/* The input features' names and types (their views as now registered). */
static void
resolve_inputs(FsTransform *t)
{
	t->input_names = palloc(sizeof(char *) * Max(t->ninputs, 1));
	t->input_types = palloc(sizeof(Oid) * Max(t->ninputs, 1));
	for (int i = 0; i < t->ninputs; i++)
	{
		List	   *refs;
		FsFeatureRef *r;

		if (strchr(t->inputs[i], ':') == NULL || strcmp(strchr(t->inputs[i], ':'), ":*") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("input \"%s\" of transform \"%s\" must name one feature: view:feature or view@N:feature",
							t->inputs[i], t->name)));
		refs = fs_resolve_feature_ref(t->inputs[i], NIL);
		if (list_length(refs) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("input \"%s\" of transform \"%s\" must name one feature, not %d",
							t->inputs[i], t->name, list_length(refs)),
					 errhint("List each input feature as view:feature.")));
		r = linitial(refs);
		t->input_names[i] = pstrdup(r->view->features[r->feature_index].name);
		t->input_types[i] = r->view->features[r->feature_index].type;
	}
}

/* Names must be unique across request parameters and inputs. */
static void
check_names(FsTransform *t)
{
	for (int i = 0; i < t->nreq + t->ninputs; i++)
		for (int j = 0; j < i; j++)
		{
			const char *a = i < t->nreq ? t->req_names[i] : t->input_names[i - t->nreq];
			const char *b = j < t->nreq ? t->req_names[j] : t->input_names[j - t->nreq];

			if (strcmp(a, b) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_ALIAS),
						 errmsg("transform \"%s\" has two parameters or inputs named \"%s\"", t->name, a),
						 errhint("Rename the request parameter, or serve one of the features through a view that renames it.")));
		}
}

/* Compiles t for the current role into TopMemoryContext-lived state. */
static void
compile(FsTransform *t)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);
	Expr	   *expr;

	resolve_inputs(t);
	check_names(t);
	expr = expression_planner(parse_expression(t));
	t->econtext = CreateStandaloneExprContext();
	t->params = makeParamList(t->nreq + t->ninputs);
	t->params->numParams = t->nreq + t->ninputs;
	for (int i = 0; i < t->nreq + t->ninputs; i++)
	{
		t->params->params[i].pflags = PARAM_FLAG_CONST;
		t->params->params[i].ptype = i < t->nreq ? t->req_types[i] : t->input_types[i - t->nreq];
	}
	t->econtext->ecxt_param_list_info = t->params;
	t->state = ExecInitExpr(expr, NULL);
	t->compiled_for = GetUserId();
	MemoryContextSwitchTo(old);
}

/* Reads a transform version's row into a TopMemoryContext-lived FsTransform (NULL if none). */
static FsTransform *
read_transform(const char *name, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	FsTransform *t = NULL;

	SPI_connect();
	if (fs_spi_exec("SELECT transform_id, name, version, expression, request_names, "
					"  request_types::pg_catalog.oid[], inputs, returns::pg_catalog.oid, registered_by "
					"FROM feature_store.transform WHERE name = $1 AND ($2 = 0 OR version = $2) "
					"ORDER BY version DESC LIMIT 1", 2, types, vals, NULL, true) == 1)
	{
		MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "feature_store transform", ALLOCSET_SMALL_SIZES);
		bool		isnull;
		Datum	   *elems;
		int			n;

		t = MemoryContextAllocZero(cxt, sizeof(FsTransform));
		t->cxt = cxt;
		t->id = fs_spi_int32(0, 1, 0);
		t->name = fs_spi_text(0, 2, cxt);
		t->version = fs_spi_int32(0, 3, 0);
		t->expression = fs_spi_text(0, 4, cxt);
		deconstruct_array(DatumGetArrayTypeP(fs_spi_datum(0, 5, &isnull)), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &n);
		t->nreq = n;
		t->req_names = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
		for (int i = 0; i < n; i++)
			t->req_names[i] = MemoryContextStrdup(cxt, TextDatumGetCString(elems[i]));
		deconstruct_array(DatumGetArrayTypeP(fs_spi_datum(0, 6, &isnull)), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, NULL, &n);
		t->req_types = MemoryContextAlloc(cxt, sizeof(Oid) * Max(n, 1));
		for (int i = 0; i < n; i++)
			t->req_types[i] = DatumGetObjectId(elems[i]);
		deconstruct_array(DatumGetArrayTypeP(fs_spi_datum(0, 7, &isnull)), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &n);
		t->ninputs = n;
		t->inputs = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
		for (int i = 0; i < n; i++)
			t->inputs[i] = MemoryContextStrdup(cxt, TextDatumGetCString(elems[i]));
		t->returns = DatumGetObjectId(fs_spi_datum(0, 8, &isnull));
		t->registered_by = fs_spi_text(0, 9, cxt);
	}
	SPI_finish();
	return t;
}

bool
fs_transform_exists(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1] = {CStringGetTextDatum(name)};
	uint64		n;

	if (!fs_registry_has_aggs())
		return false;			/* a registry before 0.3 has no transforms */
	SPI_connect();
	n = fs_spi_exec("SELECT 1 FROM feature_store.transform WHERE name = $1 LIMIT 1", 1, types, vals, NULL, true);
	SPI_finish();
	return n > 0;
}

/* See transform.h. */
void
fs_transform_misnamed(const char *ref)
{
	int32		version;
	char	   *name = fs_split_version("transform", ref, &version);

	if (!fs_transform_exists(name))
		return;
	if (fs_transform_lookup(ref, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("transform \"%s\" does not exist", ref),
				 errhint("See SELECT name, version FROM fs_transforms WHERE name = '%s'.", name)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" is a transform: it needs a request", ref),
			 errhint("Pass its parameters: fs_online(entity, '%s', request => '{...}'); see SELECT request FROM fs_transforms.", ref)));
}

/* Compiles t and keeps it, or frees it if it does not compile. */
static void
compile_or_free(FsTransform *t)
{
	PG_TRY();
	{
		compile(t);
	}
	PG_CATCH();
	{
		MemoryContextDelete(t->cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	compiled = lappend_in(compiled, t);
}

FsTransform *
fs_transform_lookup(const char *ref, bool missing_ok)
{
	int32		version;
	char	   *name = fs_split_version("transform", ref, &version);
	FsTransform *t;
	ListCell   *lc;
	uint64		epoch;

	if (!fs_registry_has_aggs())
		t = NULL;
	else
	{
		/* the name's resolution is kept until the registry changes (fs_meta_epoch) */
		epoch = fs_meta_epoch();
		foreach(lc, by_ref)
		{
			RefEntry   *e = lfirst(lc);

			if (e->epoch == epoch && e->user == GetUserId() && strcmp(e->ref, ref) == 0)
				return e->t;
		}
		t = read_transform(name, version);
	}
	if (t == NULL)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("transform \"%s\" does not exist", ref),
				 errhint("See SELECT name, version FROM fs_transforms.")));
	}
	foreach(lc, compiled)
	{
		FsTransform *c = lfirst(lc);

		if (c->id == t->id && c->compiled_for == GetUserId())
		{
			MemoryContextDelete(t->cxt);
			t = c;
			break;
		}
	}
	if (t->state == NULL)
		compile_or_free(t);
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		RefEntry   *e = NULL;

		foreach(lc, by_ref)
		{
			RefEntry   *x = lfirst(lc);

			if (x->user == GetUserId() && strcmp(x->ref, ref) == 0)
				e = x;
		}
		if (e == NULL)
		{
			e = palloc(sizeof(RefEntry));
			e->ref = pstrdup(ref);
			e->user = GetUserId();
			by_ref = lappend(by_ref, e);	/* in TopMemoryContext */
		}
		e->epoch = epoch;
		e->t = t;
		MemoryContextSwitchTo(old);
	}
	return t;
}

Datum
fs_transform_eval(FsTransform *t, const Datum *args, const bool *nulls, bool *isnull)
{
	Datum		d;
	int16		len;
	bool		byval;

	for (int i = 0; i < t->nreq + t->ninputs; i++)
	{
		t->params->params[i].value = args[i];
		t->params->params[i].isnull = nulls[i];
	}
	d = ExecEvalExprSwitchContext(t->state, t->econtext, isnull);
	get_typlenbyval(t->returns, &len, &byval);
	if (!*isnull)
		d = datumCopy(d, byval, len);
	ResetExprContext(t->econtext);
	return d;
}

/* request jsonb {"name": "type"} into names and types; errors name what is wrong. */
static void
parse_request(FsTransform *t, Jsonb *req)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			cap;

	if (!JB_ROOT_IS_OBJECT(req))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request must be a jsonb object of parameter names and types"),
				 errhint("Write request => '{\"amount\": \"numeric\", \"lat\": \"float8\"}'.")));
	cap = Max(JsonContainerSize(&req->root), 1);
	t->req_names = palloc(sizeof(char *) * cap);
	t->req_types = palloc(sizeof(Oid) * cap);
	it = JsonbIteratorInit(&req->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		int32		typmod;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the type of request parameter \"%s\" must be a string naming a type", name)));
		fs_check_name("request parameter", name);
		parseTypeString(pnstrdup(v.val.string.val, v.val.string.len), &t->req_types[t->nreq], &typmod, false);
		t->req_names[t->nreq++] = name;
	}
}

/*
 * fs_register_transform(name, expression, request, inputs, returns, description, owner, tags)
 * returns the version now current: the same definition keeps its version (metadata updated),
 * a changed one (expression, request, inputs, result type) is version N+1.
 */
Datum
fs_register_transform(PG_FUNCTION_ARGS)
{
	FsTransform t;
	Datum	   *inputs;
	int			ninputs = 0;
	FsOwnerContext octx;
	int32		version;
	bool		insert = true;
	Datum	   *rn;
	Datum	   *rt;

	memset(&t, 0, sizeof(t));
	t.name = fs_text_arg(fcinfo, 0, "transform name");
	fs_check_name("transform", t.name);
	t.expression = fs_text_arg(fcinfo, 1, "transform expression");
	fs_ddl_check_tags(fcinfo, 7);
	if (!fs_registry_has_aggs())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("transforms need the extension's version 0.3 in this database"),
				 errhint("Run ALTER EXTENSION feature_store UPDATE.")));
	if (fs_lookup_view_version(t.name, 0, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a feature view named \"%s\" already exists", t.name),
				 errhint("Transforms, feature services and feature views share one namespace of references; choose another name.")));
	{
		Oid			ty[1] = {TEXTOID};
		Datum		va[1] = {CStringGetTextDatum(t.name)};
		uint64		n;

		SPI_connect();
		n = fs_spi_exec("SELECT 1 FROM feature_store.feature_service WHERE name = $1", 1, ty, va, NULL, true);
		SPI_finish();
		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("a feature service named \"%s\" already exists", t.name),
					 errhint("Transforms, feature services and feature views share one namespace of references; choose another name.")));
	}
	parse_request(&t, PG_ARGISNULL(2) ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
				  : PG_GETARG_JSONB_P(2));
	if (!PG_ARGISNULL(3))
	{
		char	  **refs = fs_ddl_text_array_to_cstrings(PG_GETARG_ARRAYTYPE_P(3), "inputs", &ninputs);

		t.ninputs = ninputs;
		t.inputs = refs;
	}
	t.returns = PG_ARGISNULL(4) ? InvalidOid : PG_GETARG_OID(4);

	/* validated as the caller: the inputs must be features the caller may read */
	resolve_inputs(&t);
	for (int i = 0; i < t.ninputs; i++)
		fs_check_view_select_filtered(((FsFeatureRef *) linitial(fs_resolve_feature_ref(t.inputs[i], NIL)))->view);
	check_names(&t);
	(void) parse_expression(&t);

	inputs = palloc(sizeof(Datum) * Max(t.ninputs, 1));
	for (int i = 0; i < t.ninputs; i++)
		inputs[i] = CStringGetTextDatum(t.inputs[i]);
	rn = palloc(sizeof(Datum) * Max(t.nreq, 1));
	rt = palloc(sizeof(Datum) * Max(t.nreq, 1));
	for (int i = 0; i < t.nreq; i++)
	{
		rn[i] = CStringGetTextDatum(t.req_names[i]);
		rt[i] = ObjectIdGetDatum(t.req_types[i]);
	}

	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_ddl_lock_registry();
	{
		Oid			ty[10] = {TEXTOID, TEXTOID, TEXTARRAYOID, REGTYPEARRAYOID, TEXTARRAYOID, REGTYPEOID,
		TEXTOID, TEXTOID, JSONBOID, NAMEOID};
		Datum		va[10];
		bool		nu[10] = {false, false, false, false, false, false,
		PG_ARGISNULL(5), PG_ARGISNULL(6), PG_ARGISNULL(7), false};

		va[0] = CStringGetTextDatum(t.name);
		va[1] = CStringGetTextDatum(t.expression);
		va[2] = PointerGetDatum(construct_array(rn, t.nreq, TEXTOID, -1, false, TYPALIGN_INT));
		va[3] = PointerGetDatum(construct_array(rt, t.nreq, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT));
		va[4] = PointerGetDatum(construct_array(inputs, t.ninputs, TEXTOID, -1, false, TYPALIGN_INT));
		va[5] = ObjectIdGetDatum(t.returns);
		va[6] = nu[6] ? (Datum) 0 : PG_GETARG_DATUM(5);
		va[7] = nu[7] ? (Datum) 0 : PG_GETARG_DATUM(6);
		va[8] = nu[8] ? (Datum) 0 : PG_GETARG_DATUM(7);
		va[9] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(octx.save_userid, false)));
		if (fs_spi_exec("SELECT version, registered_by, expression = $2 AND request_names = $3 AND request_types = $4 "
						"  AND inputs = $5 AND returns = $6, transform_id "
						"FROM feature_store.transform WHERE name = $1 ORDER BY version DESC LIMIT 1",
						10, ty, va, nu, false) == 1)
		{
			int32		latest = fs_spi_int32(0, 1, 0);
			char	   *owner = fs_spi_text(0, 2, CurrentMemoryContext);
			bool		same = fs_spi_bool(0, 3, false);

			fs_ddl_check_owner("transform", t.name, owner, octx.save_userid);
			version = same ? latest : latest + 1;
			insert = !same;
			if (same)
			{
				Oid			ut[4] = {INT4OID, TEXTOID, TEXTOID, JSONBOID};
				Datum		uv[4] = {Int32GetDatum(fs_spi_int32(0, 4, 0)), va[6], va[7], va[8]};
				bool		un[4] = {false, nu[6], nu[7], nu[8]};

				fs_spi_exec("UPDATE feature_store.transform SET description = $2, owner = $3, "
							"  tags = coalesce($4, '{}') WHERE transform_id = $1", 4, ut, uv, un, false);
			}
		}
		else
			version = 1;
		if (insert)
		{
			Oid			it[11];
			Datum		iv[11];
			bool		in[11];

			memcpy(it, ty, sizeof(ty));
			memcpy(iv, va, sizeof(va));
			memcpy(in, nu, sizeof(nu));
			it[10] = INT4OID;
			iv[10] = Int32GetDatum(version);
			in[10] = false;
			fs_spi_exec("INSERT INTO feature_store.transform (name, version, expression, request_names, request_types, "
						"  inputs, returns, description, owner, tags, registered_by) "
						"VALUES ($1, $11, $2, $3, $4, $5, $6, $7, $8, coalesce($9, '{}'), $10)",
						11, it, iv, in, false);
		}
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	PG_RETURN_INT32(version);
}

/* fs_drop_transform(name) drops every version (or one, name@N); returns the number dropped. */
Datum
fs_drop_transform(PG_FUNCTION_ARGS)
{
	char	   *ref = fs_text_arg(fcinfo, 0, "transform name");
	int32		version;
	char	   *name = fs_split_version("transform", ref, &version);
	FsOwnerContext octx;
	Oid			ty[2] = {TEXTOID, INT4OID};
	Datum		va[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	uint64		n;

	SPI_connect();
	n = fs_spi_exec("SELECT registered_by FROM feature_store.transform WHERE name = $1 AND ($2 = 0 OR version = $2)",
					2, ty, va, NULL, true);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("transform \"%s\" does not exist", ref),
				 errhint("See SELECT name, version FROM fs_transforms.")));
	for (uint64 i = 0; i < n; i++)
		fs_ddl_check_owner("transform", name, fs_spi_text(i, 1, CurrentMemoryContext), GetUserId());
	/* a service that uses it (that version, or following the latest) keeps it */
	if (fs_spi_exec("SELECT string_agg(DISTINCT s.name || '@' || s.version, ', ') FROM feature_store.service_transform x "
					"JOIN feature_store.feature_service s USING (service_id) "
					"WHERE x.transform_name = $1 AND ($2 = 0 OR x.transform_version = $2 OR (x.transform_version IS NULL AND "
					"  $2 = (SELECT max(version) FROM feature_store.transform WHERE name = $1))) HAVING count(*) > 0",
					2, ty, va, NULL, true) == 1)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("transform \"%s\" is used by feature services: %s", ref, fs_spi_text(0, 1, CurrentMemoryContext)),
				 errhint("Drop those services (fs_drop_service) or register them without it first.")));
	fs_owner_context_enter(&octx);
	fs_ddl_lock_registry();
	n = fs_spi_exec("DELETE FROM feature_store.transform WHERE name = $1 AND ($2 = 0 OR version = $2)",
					2, ty, va, NULL, false);
	fs_owner_context_leave(&octx);
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}
