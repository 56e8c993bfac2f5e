/*
 * agg_spec.c — the declaration of an aggregation view's aggregates, checked at registration:
 * 'fn(arg) [over W] [as name]' parsed, the argument's type accepted or refused for fn, the
 * window a fixed positive duration, and the view's filter a boolean expression over the
 * source. Every refusal is an error before anything is registered.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "parser/scansup.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "agg.h"
#include "registry.h"

static const char *const fn_names[] = {"count", "sum", "avg", "min", "max", "first", "last"};

const char *
fs_agg_fn_name(FsAggFn fn)
{
	return fn_names[fn];
}

int
fs_agg_fn_from_name(const char *name)
{
	for (int i = 0; i < (int) lengthof(fn_names); i++)
		if (strcmp(fn_names[i], name) == 0)
			return i;
	return -1;
}

/* The parse cursor over one declaration. */
typedef struct Lex
{
	const char *text;			/* the whole declaration, for messages */
	const char *p;
} Lex;

static void
syntax_error(Lex *lx, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("invalid aggregation \"%s\": %s", lx->text, what),
			 errhint("Write 'fn(column) over ''7 days'' as name', e.g. 'avg(amount) over ''7 days'' as avg_7d' "
					 "or 'count(*) over ''1 hour'''; fn is count, sum, avg, min, max, first or last.")));
}

static void
skip_ws(Lex *lx)
{
	while (scanner_isspace(*lx->p))
		lx->p++;
}

/* An identifier: unquoted (folded to lower case, as SQL does) or double-quoted. */
static char *
read_ident(Lex *lx)
{
	StringInfoData s;

	skip_ws(lx);
	initStringInfo(&s);
	if (*lx->p == '"')
	{
		lx->p++;
		for (;;)
		{
			if (*lx->p == '\0')
				syntax_error(lx, "unterminated quoted identifier");
			if (*lx->p == '"')
			{
				if (lx->p[1] != '"')
					break;
				lx->p++;
			}
			appendStringInfoChar(&s, *lx->p++);
		}
		lx->p++;
		if (s.len == 0)
			syntax_error(lx, "zero-length quoted identifier");
		return s.data;
	}
	while (isalnum((unsigned char) *lx->p) || *lx->p == '_' || IS_HIGHBIT_SET(*lx->p))
		appendStringInfoChar(&s, *lx->p++);
	if (s.len == 0)
		return NULL;
	return downcase_truncate_identifier(s.data, s.len, false);
}

/* Whether the next word is kw (case-insensitive, whole word); consumes it if so. */
static bool
accept_word(Lex *lx, const char *kw)
{
	size_t		n = strlen(kw);

	skip_ws(lx);
	if (pg_strncasecmp(lx->p, kw, n) == 0 &&
		!(isalnum((unsigned char) lx->p[n]) || lx->p[n] == '_' || IS_HIGHBIT_SET(lx->p[n])))
	{
		lx->p += n;
		return true;
	}
	return false;
}

/* The window: a quoted interval literal ('7 days') or bare words up to "as" or the end. */
static char *
read_window(Lex *lx)
{
	StringInfoData s;

	skip_ws(lx);
	initStringInfo(&s);
	if (*lx->p == '\'')
	{
		lx->p++;
		for (;;)
		{
			if (*lx->p == '\0')
				syntax_error(lx, "unterminated window literal");
			if (*lx->p == '\'')
			{
				if (lx->p[1] != '\'')
					break;
				lx->p++;
			}
			appendStringInfoChar(&s, *lx->p++);
		}
		lx->p++;
		return s.data;
	}
	for (;;)
	{
		const char *save = lx->p;

		skip_ws(lx);
		if (*lx->p == '\0' || accept_word(lx, "as"))
		{
			lx->p = save;
			break;
		}
		if (s.len > 0)
			appendStringInfoChar(&s, ' ');
		while (*lx->p != '\0' && !scanner_isspace(*lx->p))
			appendStringInfoChar(&s, *lx->p++);
	}
	if (s.len == 0)
		syntax_error(lx, "\"over\" needs a window such as '7 days'");
	return s.data;
}

/* See agg.h. */
int64
fs_agg_interval_us(const Interval *iv, const char *what)
{
	int64		us;

	if (iv->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a fixed duration, not months or years", what),
				 errhint("Write days instead: '30 days' (a day is 86,400 seconds).")));
	if (pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &us) ||
		pg_add_s64_overflow(us, iv->time, &us))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is out of range", what)));
	if (us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive", what)));
	return us;
}

/* "7d", "1h", "30m", "45s" or "1500000us": the default name's window part. */
static char *
window_label(int64 us)
{
	if (us % USECS_PER_DAY == 0)
		return psprintf("%" INT64_MODIFIER "dd", us / USECS_PER_DAY);
	if (us % USECS_PER_HOUR == 0)
		return psprintf("%" INT64_MODIFIER "dh", us / USECS_PER_HOUR);
	if (us % USECS_PER_MINUTE == 0)
		return psprintf("%" INT64_MODIFIER "dm", us / USECS_PER_MINUTE);
	if (us % USECS_PER_SEC == 0)
		return psprintf("%" INT64_MODIFIER "ds", us / USECS_PER_SEC);
	return psprintf("%" INT64_MODIFIER "dus", us);
}

/* See agg.h. */
void
fs_agg_parse(const char *text, FsAggSpec *spec)
{
	Lex			lx = {text, text};
	char	   *fn;
	int			fi;

	memset(spec, 0, sizeof(*spec));
	fn = read_ident(&lx);
	if (fn == NULL)
		syntax_error(&lx, "expected a function name");
	fi = fs_agg_fn_from_name(fn);
	if (fi < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("unknown aggregate function \"%s\" in aggregation \"%s\"", fn, text),
				 errhint("Aggregation views support count, sum, avg, min, max, first and last.")));
	spec->fn = (FsAggFn) fi;
	skip_ws(&lx);
	if (*lx.p != '(')
		syntax_error(&lx, "expected \"(\" after the function name");
	lx.p++;
	skip_ws(&lx);
	if (*lx.p == '*')
	{
		if (spec->fn != FS_AGG_COUNT)
			syntax_error(&lx, "only count takes *");
		lx.p++;
		spec->arg = NULL;
	}
	else
	{
		spec->arg = read_ident(&lx);
		if (spec->arg == NULL)
			syntax_error(&lx, "expected a column name or * as the argument");
	}
	skip_ws(&lx);
	if (*lx.p != ')')
		syntax_error(&lx, "expected \")\" after the argument (the argument is one column)");
	lx.p++;
	spec->lifetime = true;
	if (accept_word(&lx, "over"))
	{
		char	   *w = read_window(&lx);
		Interval   *iv;

		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(w),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		spec->lifetime = false;
		spec->window = *iv;
		spec->window_us = fs_agg_interval_us(iv, psprintf("window '%s' of aggregation \"%s\"", w, text));
	}
	if (accept_word(&lx, "as"))
	{
		spec->name = read_ident(&lx);
		if (spec->name == NULL)
			syntax_error(&lx, "expected a name after \"as\"");
	}
	skip_ws(&lx);
	if (*lx.p != '\0')
		syntax_error(&lx, psprintf("unexpected \"%s\"", lx.p));
	if (spec->name == NULL)
	{
		const char *w = spec->lifetime ? "lifetime" : window_label(spec->window_us);

		spec->name = spec->arg ? psprintf("%s_%s_%s", fn, spec->arg, w) : psprintf("%s_%s", fn, w);
		if (strlen(spec->name) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("default name \"%s\" of aggregation \"%s\" is too long", spec->name, text),
					 errhint("Name it with \"as name\".")));
	}
}

static bool
is_summable(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == FLOAT4OID || t == FLOAT8OID || t == NUMERICOID;
}

/* See agg.h. Result types are PostgreSQL's own for sum and avg. */
Oid
fs_agg_result_type(FsAggFn fn, const char *arg, Oid t, const char *spec_name)
{
	switch (fn)
	{
		case FS_AGG_COUNT:
			return INT8OID;
		case FS_AGG_SUM:
		case FS_AGG_AVG:
			if (!is_summable(t))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("aggregation \"%s\": %s cannot take column \"%s\" of type %s",
								spec_name, fs_agg_fn_name(fn), arg, format_type_be(t)),
						 errhint("sum and avg take smallint, integer, bigint, real, double precision or numeric.")));
			if (fn == FS_AGG_SUM)
				return t == INT2OID || t == INT4OID ? INT8OID : t == INT8OID ? NUMERICOID : t;
			return t == FLOAT4OID || t == FLOAT8OID ? FLOAT8OID : NUMERICOID;
		default:
			{
				TypeCacheEntry *tc = lookup_type_cache(t, TYPECACHE_CMP_PROC);

				if (!OidIsValid(tc->cmp_proc))
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("aggregation \"%s\": %s cannot take column \"%s\" of type %s, which has no ordering",
									spec_name, fs_agg_fn_name(fn), arg, format_type_be(t)),
							 errhint("min, max, first and last need a type with a default btree order (first and last break ties by it).")));
				return t;
			}
	}
}

/*
 * An error in a filter points into the filter's text, not into the statement that registers
 * the view (the parser's positions count from "SELECT (" of the text it was given).
 */
static void
filter_error_callback(void *arg)
{
	const char *filter = arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(Max(pos - (int) strlen("SELECT ("), 1));
		internalerrquery(filter);
	}
	errcontext("filter \"%s\"", filter);
}

/* See agg.h. */
char *
fs_agg_check_filter(Oid relid, const char *filter)
{
	List	   *raw;
	RawStmt    *rs;
	SelectStmt *sel;
	ResTarget  *rt;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Relation	rel;
	Node	   *expr;
	char	   *out;
	int			save_nestlevel;
	ErrorContextCallback errcb;

	errcb.callback = filter_error_callback;
	errcb.arg = (void *) filter;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	raw = raw_parser(psprintf("SELECT (%s)", filter), RAW_PARSE_DEFAULT);
	rs = list_length(raw) == 1 ? linitial_node(RawStmt, raw) : NULL;
	sel = rs && IsA(rs->stmt, SelectStmt) ? (SelectStmt *) rs->stmt : NULL;
	if (sel == NULL || list_length(sel->targetList) != 1 || sel->fromClause || sel->whereClause ||
		sel->groupClause || sel->havingClause || sel->sortClause || sel->limitCount ||
		sel->limitOffset || sel->op != SETOP_NONE || sel->withClause || sel->distinctClause ||
		sel->windowClause || sel->lockingClause || sel->valuesLists)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("filter \"%s\" is not one boolean expression", filter),
				 errhint("Write a condition over the source's columns, e.g. filter => 'amount > 0 AND status = ''ok'''.")));
	rt = linitial_node(ResTarget, sel->targetList);

	rel = relation_open(relid, AccessShareLock);
	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = filter;
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, true);
	addNSItemToQuery(pstate, nsitem, true, true, true);
	/* the rules of a CHECK constraint: no subqueries, aggregates, window or set-returning functions */
	expr = transformExpr(pstate, rt->val, EXPR_KIND_CHECK_CONSTRAINT);
	if (exprType(expr) != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("filter \"%s\" has type %s, not boolean", filter, format_type_be(exprType(expr))),
				 errhint("A filter is a condition: it must be of type boolean.")));
	/* stable functions too: now(), current_setting(), a cast that reads TimeZone differ between sessions */
	if (contain_mutable_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter \"%s\" calls a function that is not immutable", filter),
				 errdetail("A filter must give the same verdict in training and serving, in every session."),
				 errhint("Compare with constants of the column's type; a cast between timestamp with and without time zone depends on the session's TimeZone.")));
	assign_expr_collations(pstate, expr);

	/* Deparse with only pg_catalog visible, so that every other name comes out qualified. */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	out = deparse_expression(expr, deparse_context_for(RelationGetRelationName(rel), relid), false, false);
	AtEOXact_GUC(true, save_nestlevel);
	relation_close(rel, AccessShareLock);
	error_context_stack = errcb.previous;
	return out;
}

/* See agg.h. */
void
fs_agg_declare(Oid relid, ArrayType *aggs, const char *filter, Interval *hop, FsAggDecl *out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	memset(out, 0, sizeof(*out));
	if (ARR_NDIM(aggs) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("aggregations must be a one-dimensional array")));
	deconstruct_array(aggs, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an aggregation view needs at least one aggregation"),
				 errhint("Pass aggregations => ARRAY['count(*) over ''1 day''', ...], or leave it NULL for a latest-value view.")));
	if (n > MaxTupleAttributeNumber / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many aggregations (%d)", n)));
	out->n = n;
	out->specs = palloc0(sizeof(FsAggSpec) * n);
	for (int i = 0; i < n; i++)
	{
		FsAggSpec  *sp = &out->specs[i];
		char	   *decl;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("aggregations must not contain NULL")));
		decl = TextDatumGetCString(elems[i]);
		fs_agg_parse(decl, sp);
		fs_check_name("feature", sp->name);
		for (int j = 0; j < i; j++)
			if (strcmp(out->specs[j].name, sp->name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("aggregation name \"%s\" is given more than once", sp->name),
						 errhint("Name each aggregation with \"as name\".")));
		if (sp->arg != NULL)
		{
			AttrNumber	att = get_attnum(relid, sp->arg);

			if (att == InvalidAttrNumber || att < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of aggregation \"%s\" does not exist in source \"%s\"",
								sp->arg, decl, get_rel_name(relid)),
						 errdetail("The source has columns: %s.", fs_relation_column_names(relid))));
			sp->arg_type = getBaseType(get_atttype(relid, att));
		}
		sp->result_type = fs_agg_result_type(sp->fn, sp->arg, sp->arg_type, decl);
	}
	if (filter != NULL)
		out->filter = fs_agg_check_filter(relid, filter);
	if (hop != NULL)
	{
		out->has_hop = true;
		out->hop = *hop;
		out->hop_us = fs_agg_interval_us(hop, "hop");
	}
}

/*
 * See agg.h. Serving reads a key's events in a time range at every lookup: without a btree index
 * led by the key columns and then the event time that is a scan of the whole source each time.
 */
void
fs_agg_index_notice(Oid relid, char *const *keys, int nkeys, const char *event_time)
{
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	bool		found = false;
	StringInfoData cols;

	if (get_rel_relkind(relid) != RELKIND_RELATION && get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return;
	rel = relation_open(relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index ix;
		bool		ok = true;

		if (!HeapTupleIsValid(tup))
			continue;
		ix = (Form_pg_index) GETSTRUCT(tup);
		if (ix->indnkeyatts < nkeys + 1 || !heap_attisnull(tup, Anum_pg_index_indpred, NULL))
			ok = false;
		else
		{
			HeapTuple	ct = SearchSysCache1(RELOID, ObjectIdGetDatum(ix->indexrelid));

			ok = HeapTupleIsValid(ct) && ((Form_pg_class) GETSTRUCT(ct))->relam == BTREE_AM_OID;
			if (HeapTupleIsValid(ct))
				ReleaseSysCache(ct);
		}
		for (int i = 0; ok && i < nkeys; i++)
		{
			bool		key = false;

			for (int k = 0; k < nkeys; k++)
				key |= ix->indkey.values[i] == get_attnum(relid, keys[k]);
			ok = key;
		}
		if (ok)
			ok = ix->indkey.values[nkeys] == get_attnum(relid, event_time);
		ReleaseSysCache(tup);
		if (ok)
		{
			found = true;
			break;
		}
	}
	relation_close(rel, AccessShareLock);
	if (found)
		return;
	initStringInfo(&cols);
	for (int k = 0; k < nkeys; k++)
		appendStringInfo(&cols, "%s, ", quote_identifier(keys[k]));
	appendStringInfoString(&cols, quote_identifier(event_time));
	ereport(NOTICE,
			(errmsg("source \"%s\" has no index on (%s): every online lookup of the aggregation view will scan it",
					get_rel_name(relid), cols.data),
			 errhint("CREATE INDEX ON %s (%s);",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
					 cols.data)));
}

static void
view_filter_error_callback(void *arg)
{
	errcontext("the filter of feature view \"%s\", checked against its source as it is now (register the view again after changing the source)",
			   (const char *) arg);
}

/* See agg.h. */
void
fs_agg_recheck_filter(Oid relid, const char *view, const char *filter)
{
	ErrorContextCallback errcb;

	errcb.callback = view_filter_error_callback;
	errcb.arg = (void *) view;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	(void) fs_agg_check_filter(relid, filter);
	error_context_stack = errcb.previous;
}

/*
 * See agg.h. Training (pit_plan.c) and serving (online_agg.c) check a view the same way: its
 * arguments still exist with types that give the registered result types, and its filter still
 * analyzes over the source.
 */
void
fs_agg_resolve_view(FsView *v, Oid relid, FsAggSpec **specs, Oid **colls)
{
	*specs = palloc(sizeof(FsAggSpec) * Max(v->nfeatures, 1));
	*colls = palloc0(sizeof(Oid) * Max(v->nfeatures, 1));
	for (int f = 0; f < v->nfeatures; f++)
	{
		FsAggSpec  *sp = &(*specs)[f];
		AttrNumber	att;
		Oid			t;
		int32		typmod;

		*sp = v->aggs[f];
		if (sp->arg == NULL)
			continue;
		att = get_attnum(relid, sp->arg);
		if (att == InvalidAttrNumber || att < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("source \"%s.%s\" of feature view \"%s\" has no column \"%s\"",
							v->source_schema, v->source_name, v->name, sp->arg),
					 errdetail("The view's aggregation argument column was dropped or renamed after registration. The source has columns: %s.",
							   fs_relation_column_names(relid)),
					 errhint("Register the view again over the current source.")));
		get_atttypetypmodcoll(relid, att, &t, &typmod, &(*colls)[f]);
		sp->arg_type = getBaseType(t);
		if (fs_agg_result_type(sp->fn, sp->arg, sp->arg_type, sp->name) != v->features[f].type)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of feature view \"%s\" has type %s, which changes the type of aggregation \"%s\"",
							sp->arg, v->name, format_type_be(t), sp->name),
					 errhint("Register the view again to record the new type.")));
	}
	if (v->filter != NULL)
		fs_agg_recheck_filter(relid, v->name, v->filter);
}
