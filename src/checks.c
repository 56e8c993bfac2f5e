/*
 * checks.c — feature checks as SQL expressions, the quarantine of failing rows, and
 * fs_validate, which reports failing rows without writing anything. Semantics: checks.h.
 *
 * The checks jsonb was validated at registration (feature_store.validate_checks), so the
 * numbers here are jsonb numerics and the features exist. Every value taken from the jsonb
 * goes into SQL text only through quote_literal_cstr and an explicit cast, every identifier
 * through quote_identifier; operators and functions are schema-qualified so that the
 * expression means the same under any search_path.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "checks.h"
#include "security.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(fs_validate);
PG_FUNCTION_INFO_V1(fs_checks_sql);

typedef enum FsCheckKind
{
	FS_CHECK_NOT_NULL,
	FS_CHECK_MIN,
	FS_CHECK_MAX,
	FS_CHECK_ALLOWED
} FsCheckKind;

typedef struct FsCheck
{
	int			feature;		/* index into FsView.features */
	FsCheckKind kind;
	char	   *number;			/* min/max: the jsonb number's text */
	int			nallowed;
	char	  **allowed;		/* allowed: each element's jsonb text */
	char	  **allowed_type;	/* its jsonb_typeof */
	char	  **allowed_scalar; /* its scalar text (string contents, number, true/false) */
} FsCheck;

/* Rows are moved from the source cursor to the quarantine in batches of this many. */
#define FS_QUARANTINE_BATCH 5000

/* A text[] column of the current SPI result as C strings (NULL elements stay NULL). */
static char **
text_array(uint64 row, int col, MemoryContext cxt, int *n)
{
	bool		isnull;
	Datum		arr = fs_spi_datum(row, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	char	  **out;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	out = MemoryContextAllocZero(cxt, sizeof(char *) * Max(nelems, 1));
	for (int k = 0; k < nelems; k++)
		if (!nulls[k])
			out[k] = MemoryContextStrdup(cxt, TextDatumGetCString(elems[k]));
	if (n)
		*n = nelems;
	return out;
}

/*
 * Reads the checks of one view version, in feature order and then rule order, so that the
 * labels of a failing row always come out in the same order.
 */
static List *
load_checks(FsView *v)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *checks = NIL;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(v->view_id)};
	uint64		n;

	SPI_connect();
	n = fs_spi_exec("SELECT f.key, r.key, "
					"  CASE WHEN r.key IN ('min', 'max') THEN r.value::text END, "
					"  CASE WHEN r.key = 'not_null' THEN r.value = 'true'::jsonb END, "
					"  CASE WHEN r.key = 'allowed' THEN "
					"    ARRAY(SELECT e::text FROM jsonb_array_elements(r.value) e) END, "
					"  CASE WHEN r.key = 'allowed' THEN "
					"    ARRAY(SELECT jsonb_typeof(e) FROM jsonb_array_elements(r.value) e) END, "
					"  CASE WHEN r.key = 'allowed' THEN "
					"    ARRAY(SELECT e #>> '{}' FROM jsonb_array_elements(r.value) e) END "
					"FROM feature_store.feature_view v "
					"CROSS JOIN LATERAL jsonb_each(v.checks) f "
					"JOIN feature_store.view_feature vf ON vf.view_id = v.view_id AND vf.name::text = f.key "
					"CROSS JOIN LATERAL jsonb_each(f.value) r "
					"WHERE v.view_id = $1 "
					"ORDER BY vf.position, array_position(ARRAY['not_null', 'min', 'max', 'allowed'], r.key)",
					1, types, vals, NULL, true);
	for (uint64 i = 0; i < n; i++)
	{
		char	   *feature = fs_spi_text(i, 1, cxt);
		char	   *rule = fs_spi_text(i, 2, cxt);
		FsCheck    *c = MemoryContextAllocZero(cxt, sizeof(FsCheck));

		c->feature = -1;
		for (int f = 0; f < v->nfeatures; f++)
			if (strcmp(v->features[f].name, feature) == 0)
				c->feature = f;
		if (c->feature < 0)
			elog(ERROR, "check of unknown feature \"%s\" in view %d", feature, v->view_id);

		if (strcmp(rule, "not_null") == 0)
		{
			/* "not_null": false declares nothing. */
			if (!fs_spi_bool(i, 4, false))
				continue;
			c->kind = FS_CHECK_NOT_NULL;
		}
		else if (strcmp(rule, "min") == 0 || strcmp(rule, "max") == 0)
		{
			c->kind = rule[1] == 'i' ? FS_CHECK_MIN : FS_CHECK_MAX;
			c->number = fs_spi_text(i, 3, cxt);
		}
		else if (strcmp(rule, "allowed") == 0)
		{
			c->kind = FS_CHECK_ALLOWED;
			c->allowed = text_array(i, 5, cxt, &c->nallowed);
			c->allowed_type = text_array(i, 6, cxt, NULL);
			c->allowed_scalar = text_array(i, 7, cxt, NULL);
		}
		else
			elog(ERROR, "unknown check \"%s\" in view %d", rule, v->view_id);
		checks = lappend(checks, c);
	}
	SPI_finish();
	return checks;
}

bool
fs_view_has_checks(FsView *v)
{
	return load_checks(v) != NIL;
}

static char *
check_label(FsView *v, FsCheck *c)
{
	const char *feature = v->features[c->feature].name;

	switch (c->kind)
	{
		case FS_CHECK_NOT_NULL:
			return psprintf("%s: not_null", feature);
		case FS_CHECK_MIN:
			return psprintf("%s: min %s", feature, c->number);
		case FS_CHECK_MAX:
			return psprintf("%s: max %s", feature, c->number);
		case FS_CHECK_ALLOWED:
			return psprintf("%s: allowed", feature);
	}
	return NULL;				/* keep compiler quiet */
}

/*
 * An integer bound for an integer column: the smallest integer >= number (min) or the largest
 * <= number (max), so that comparing integers is exact. Computed on the decimal text (jsonb
 * prints numerics without exponent). False if it does not fit int64.
 */
static bool
integer_bound(const char *number, bool is_min, int64 *out)
{
	const char *dot = strchr(number, '.');
	char	   *intpart = dot ? pnstrdup(number, dot - number) : pstrdup(number);
	bool		neg = number[0] == '-';
	bool		frac = false;
	char	   *end;
	long long	v;

	if (dot)
		for (const char *p = dot + 1; *p; p++)
			if (*p >= '1' && *p <= '9')
				frac = true;
	errno = 0;
	v = strtoll(intpart, &end, 10);
	if (errno != 0 || *end != '\0' || end == intpart)
		return false;
	if (frac)
	{
		if (is_min && !neg)
		{
			if (v == PG_INT64_MAX)
				return false;
			v++;
		}
		else if (!is_min && neg)
		{
			if (v == PG_INT64_MIN)
				return false;
			v--;
		}
	}
	*out = (int64) v;
	return true;
}

/* True if the number converts to a finite, non-underflowing value of the float type. */
static bool
float_fits(const char *number, bool single)
{
	char	   *end;
	double		d;

	errno = 0;
	d = single ? (double) strtof(number, &end) : strtod(number, &end);
	return errno == 0 && *end == '\0' && !isinf(d);
}

/*
 * A min/max bound as a literal of the feature's own type, so that the comparison runs in that
 * type (cheap, and as a CHECK constraint on the column would): integers exactly (rounded
 * inward), numeric exactly, real and double precision against the bound rounded to that
 * type (a real 0.1 equals the bound 0.1). NULL: compare as numeric instead.
 */
static char *
typed_bound(Oid type, const char *number, bool is_min)
{
	int64		iv;

	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			if (!integer_bound(number, is_min, &iv))
				return NULL;
			return psprintf("CAST('" INT64_FORMAT "' AS pg_catalog.int8)", iv);
		case FLOAT4OID:
			return float_fits(number, true) ? psprintf("CAST(%s AS pg_catalog.float4)", quote_literal_cstr(number)) : NULL;
		case FLOAT8OID:
			return float_fits(number, false) ? psprintf("CAST(%s AS pg_catalog.float8)", quote_literal_cstr(number)) : NULL;
		case NUMERICOID:
			return psprintf("CAST(%s AS pg_catalog.numeric)", quote_literal_cstr(number));
		default:
			return NULL;
	}
}

/*
 * The allowed values as a comma-separated list of literals of the feature's own type, keeping
 * only the elements jsonb equality could match (strings for text, integral numbers for
 * integers, numbers for floats and numeric, booleans for boolean); "" if none can match;
 * NULL for other types (compared as jsonb).
 */
static char *
typed_allowed_list(Oid type, FsCheck *c)
{
	StringInfoData buf;
	const char *want;

	switch (type)
	{
		case TEXTOID:
		case VARCHAROID:
			want = "string";
			break;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			want = "number";
			break;
		case BOOLOID:
			want = "boolean";
			break;
		default:
			return NULL;
	}
	initStringInfo(&buf);
	for (int k = 0; k < c->nallowed; k++)
	{
		const char *lit = NULL;
		int64		iv;

		if (c->allowed_type[k] == NULL || strcmp(c->allowed_type[k], want) != 0)
			continue;
		switch (type)
		{
			case TEXTOID:
			case VARCHAROID:
				lit = psprintf("CAST(%s AS pg_catalog.text)", quote_literal_cstr(c->allowed_scalar[k]));
				break;
			case INT2OID:
			case INT4OID:
			case INT8OID:
				/* integral only: the same bound rounded both ways */
				{
					int64		lo;

					if (!integer_bound(c->allowed_scalar[k], true, &iv) ||
						!integer_bound(c->allowed_scalar[k], false, &lo) || iv != lo)
						continue;
					lit = psprintf("CAST('" INT64_FORMAT "' AS pg_catalog.int8)", iv);
				}
				break;
			case FLOAT4OID:
			case FLOAT8OID:
				if (!float_fits(c->allowed_scalar[k], type == FLOAT4OID))
					return NULL;	/* out of the type's range: compare as jsonb */
				lit = psprintf("CAST(%s AS pg_catalog.%s)", quote_literal_cstr(c->allowed_scalar[k]),
							   type == FLOAT4OID ? "float4" : "float8");
				break;
			case NUMERICOID:
				lit = psprintf("CAST(%s AS pg_catalog.numeric)", quote_literal_cstr(c->allowed_scalar[k]));
				break;
			case BOOLOID:
				lit = psprintf("CAST(%s AS pg_catalog.bool)", quote_literal_cstr(c->allowed_scalar[k]));
				break;
		}
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", lit);
	}
	return buf.data;
}

/*
 * The condition under which one check FAILS, over alias.column: never NULL, so that it can
 * be combined with OR / NOT without three-valued surprises.
 */
static void
append_failure_condition(StringInfo buf, FsView *v, FsCheck *c, const char *alias)
{
	FsFeature  *f = &v->features[c->feature];
	char	   *col = psprintf("%s.%s", quote_identifier(alias), quote_identifier(f->name));

	switch (c->kind)
	{
		case FS_CHECK_NOT_NULL:
			/* num_nulls: a composite whose fields are all NULL is not itself NULL. */
			if (get_typtype(f->type) == TYPTYPE_COMPOSITE)
				appendStringInfo(buf, "(pg_catalog.num_nulls(%s) OPERATOR(pg_catalog.=) 1)", col);
			else
				appendStringInfo(buf, "(%s IS NULL)", col);
			break;
		case FS_CHECK_MIN:
		case FS_CHECK_MAX:
			{
				const char *op = c->kind == FS_CHECK_MIN ? "<" : ">";
				char	   *bound = typed_bound(f->type, c->number, c->kind == FS_CHECK_MIN);

				if (bound)
					appendStringInfo(buf, "(%s IS NOT NULL AND %s OPERATOR(pg_catalog.%s) %s)",
									 col, col, op, bound);
				else
					appendStringInfo(buf, "(%s IS NOT NULL AND CAST(%s AS pg_catalog.numeric) OPERATOR(pg_catalog.%s) CAST(%s AS pg_catalog.numeric))",
									 col, col, op, quote_literal_cstr(c->number));
			}
			break;
		case FS_CHECK_ALLOWED:
			{
				char	   *list = typed_allowed_list(f->type, c);

				if (list && list[0] == '\0')
					/* no allowed value can equal a value of this type */
					appendStringInfo(buf, "(%s IS NOT NULL)", col);
				else if (list && f->type == TEXTOID)
					appendStringInfo(buf, "(%s IS NOT NULL AND NOT (%s COLLATE pg_catalog.\"C\" OPERATOR(pg_catalog.=) ANY (ARRAY[%s])))",
									 col, col, list);
				else if (list && f->type == VARCHAROID)
					appendStringInfo(buf, "(%s IS NOT NULL AND NOT (CAST(%s AS pg_catalog.text) COLLATE pg_catalog.\"C\" OPERATOR(pg_catalog.=) ANY (ARRAY[%s])))",
									 col, col, list);
				else if (list)
					appendStringInfo(buf, "(%s IS NOT NULL AND NOT (%s OPERATOR(pg_catalog.=) ANY (ARRAY[%s])))",
									 col, col, list);
				else
				{
					appendStringInfo(buf, "(%s IS NOT NULL AND NOT (pg_catalog.to_jsonb(%s) OPERATOR(pg_catalog.=) ANY (ARRAY[",
									 col, col);
					for (int k = 0; k < c->nallowed; k++)
						appendStringInfo(buf, "%sCAST(%s AS pg_catalog.jsonb)", k > 0 ? ", " : "",
										 quote_literal_cstr(c->allowed[k]));
					appendStringInfoString(buf, "])))");
				}
			}
			break;
	}
}

/* "(<check 1 fails> OR <check 2 fails> ...)": never NULL. */
static char *
any_failure(FsView *v, List *checks, const char *alias)
{
	ListCell   *lc;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	foreach(lc, checks)
	{
		if (lc != list_head(checks))
			appendStringInfoString(&buf, " OR ");
		append_failure_condition(&buf, v, lfirst(lc), alias);
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

char *
fs_checks_failure_expr(FsView *v, const char *alias)
{
	List	   *checks = load_checks(v);
	ListCell   *lc;
	StringInfoData buf;

	if (checks == NIL)
		return pstrdup("CAST(NULL AS pg_catalog.text[])");

	/*
	 * CASE WHEN <any check fails> THEN <labels of the failed ones> END: passing rows (the
	 * common case) cost one short-circuited OR and never build an array.
	 */
	initStringInfo(&buf);
	appendStringInfo(&buf, "CASE WHEN %s THEN pg_catalog.array_remove(ARRAY[", any_failure(v, checks, alias));
	foreach(lc, checks)
	{
		FsCheck    *c = lfirst(lc);

		if (lc != list_head(checks))
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, "CASE WHEN ");
		append_failure_condition(&buf, v, c, alias);
		appendStringInfo(&buf, " THEN %s END", quote_literal_cstr(check_label(v, c)));
	}
	appendStringInfoString(&buf, "]::pg_catalog.text[], NULL) END");
	return buf.data;
}

char *
fs_checks_pass_expr(FsView *v, const char *alias)
{
	List	   *checks = load_checks(v);

	if (checks == NIL)
		return pstrdup("true");
	return psprintf("NOT %s", any_failure(v, checks, alias));
}

char *
fs_window_predicate(FsView *v, const char *alias, const FsWindow *w, int param_start, int param_end)
{
	const char *col = (w->on_created && v->created_time) ? v->created_time : v->event_time;
	char	   *ref = psprintf("%s.%s", quote_identifier(alias), quote_identifier(col));
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "true");
	if (!TIMESTAMP_IS_NOBEGIN(w->start))
		appendStringInfo(&buf, " AND %s OPERATOR(pg_catalog.>=) $%d", ref, param_start);
	if (!TIMESTAMP_IS_NOEND(w->end))
		appendStringInfo(&buf, " AND %s OPERATOR(pg_catalog.<=) $%d", ref, param_end);
	return buf.data;
}

/*
 * The query listing the failing rows of from_item (the source, or a transition table) that
 * satisfy `predicate` (over alias s): entity (jsonb of the key columns), event_ts,
 * created_ts, failed_checks, row_data (jsonb of keys, times and features only: the columns
 * the view exposes, which is what the caller was allowed to register). With for_transport,
 * failed_checks comes as one text (labels joined by newlines, which labels never contain),
 * so that a batch travels as five one-dimensional arrays.
 */
static char *
failing_rows_query(FsView *v, const char *src, const char *predicate, bool for_transport, bool ordered)
{
	StringInfoData inner;
	StringInfoData q;

	initStringInfo(&inner);
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&inner, "%s%s", i > 0 ? ", " : "", quote_identifier(v->entity.keys[i]));
	appendStringInfo(&inner, ", %s", quote_identifier(v->event_time));
	if (v->created_time)
		appendStringInfo(&inner, ", %s", quote_identifier(v->created_time));
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&inner, ", %s", quote_identifier(v->features[i].name));

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	if (for_transport)
		appendStringInfoString(&q, "q.entity, q.event_ts, q.created_ts, "
							   "pg_catalog.array_to_string(q.failed, E'\\n'), q.row_data ");
	else
		appendStringInfoString(&q, "q.entity, q.event_ts, q.created_ts, q.failed, q.row_data ");
	appendStringInfoString(&q, "FROM (SELECT pg_catalog.jsonb_build_object(");
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&q, "%s%s, s.%s", i > 0 ? ", " : "", quote_literal_cstr(v->entity.keys[i]),
						 quote_identifier(v->entity.keys[i]));
	appendStringInfo(&q, ") AS entity, CAST(s.%s AS pg_catalog.timestamptz) AS event_ts, ",
					 quote_identifier(v->event_time));
	if (v->created_time)
		appendStringInfo(&q, "CAST(s.%s AS pg_catalog.timestamptz) AS created_ts, ",
						 quote_identifier(v->created_time));
	else
		appendStringInfoString(&q, "CAST(NULL AS pg_catalog.timestamptz) AS created_ts, ");
	appendStringInfo(&q, "%s AS failed, pg_catalog.to_jsonb(s) AS row_data "
					 "FROM (SELECT %s FROM %s s WHERE %s) s) q WHERE q.failed IS NOT NULL",
					 fs_checks_failure_expr(v, "s"), inner.data, src, predicate);
	if (ordered)
		appendStringInfoString(&q, " ORDER BY q.entity, q.event_ts, q.created_ts NULLS FIRST, q.row_data");
	return q.data;
}

static void
window_params(const FsWindow *w, Datum *vals, bool *nulls)
{
	vals[0] = TimestampTzGetDatum(w->start);
	vals[1] = TimestampTzGetDatum(w->end);
	nulls[0] = nulls[1] = false;
}

static const char *
source_item(FsView *v)
{
	return quote_qualified_identifier(v->source_schema, v->source_name);
}

/*
 * Moves the rows of `sql` (failing rows in transport form, see failing_rows_query) into the
 * quarantine: read through a cursor as the caller, inserted in batches as the extension owner,
 * skipping rows already quarantined. trigdata, when given, registers the transition tables
 * in this SPI connection so that `sql` can read them.
 */
static uint64
quarantine_query(FsView *v, const char *sql, int nargs, Oid *types, Datum *vals,
				 TriggerData *trigdata, int64 run_id, uint64 *nfailing)
{
	Portal		portal;
	uint64		inserted = 0;
	uint64		failing = 0;

	SPI_connect();
	if (trigdata && SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	/* Read as the caller: their privileges (and row security) apply to the source. */
	portal = SPI_cursor_open_with_args(NULL, sql, nargs, types, vals, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		static const Oid coltypes[5] = {JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, JSONBOID};
		uint64		n;
		FsOwnerContext octx;
		Oid			it[9] = {INT4OID, TEXTOID, INT4OID, INT8OID, JSONBARRAYOID, TIMESTAMPTZARRAYOID,
		TIMESTAMPTZARRAYOID, TEXTARRAYOID, JSONBARRAYOID};
		Datum		iv[9];
		bool		in[9] = {false, false, false, run_id <= 0, false, false, false, false, false};
		SPITupleTable *batch;
		Datum	   *cols[5];
		bool	   *nulls[5];

		SPI_cursor_fetch(portal, true, FS_QUARANTINE_BATCH);
		n = SPI_processed;
		if (n == 0)
			break;
		batch = SPI_tuptable;
		failing += n;
		for (int c = 0; c < 5; c++)
		{
			int			dims[1] = {(int) n};
			int			lbs[1] = {1};
			int16		typlen;
			bool		typbyval;
			char		typalign;

			cols[c] = palloc(sizeof(Datum) * n);
			nulls[c] = palloc(sizeof(bool) * n);
			for (uint64 i = 0; i < n; i++)
				cols[c][i] = fs_spi_datum(i, c + 1, &nulls[c][i]);
			get_typlenbyvalalign(coltypes[c], &typlen, &typbyval, &typalign);
			iv[4 + c] = PointerGetDatum(construct_md_array(cols[c], nulls[c], 1, dims, lbs, coltypes[c],
														   typlen, typbyval, typalign));
		}
		iv[0] = Int32GetDatum(v->view_id);
		iv[1] = CStringGetTextDatum(v->name);
		iv[2] = Int32GetDatum(v->version);
		iv[3] = Int64GetDatum(run_id);
		fs_owner_context_enter(&octx);
		inserted += fs_spi_exec("INSERT INTO feature_store.quarantine (view_id, view_name, view_version, "
								"  entity, event_ts, created_ts, failed_checks, row_data, run_id) "
								"SELECT $1, $2, $3, u.e, u.t, u.c, string_to_array(u.f, E'\\n'), u.r, $4 "
								"FROM unnest($5, $6, $7, $8, $9) AS u(e, t, c, f, r) "
								"ON CONFLICT DO NOTHING",
								9, it, iv, in, false);
		fs_owner_context_leave(&octx);
		SPI_freetuptable(batch);
		for (int c = 0; c < 5; c++)
		{
			pfree(cols[c]);
			pfree(nulls[c]);
			pfree(DatumGetPointer(iv[4 + c]));
		}
	}
	SPI_cursor_close(portal);
	SPI_finish();
	if (nfailing)
		*nfailing = failing;
	return inserted;
}

/*
 * The checks are compiled for the feature types recorded at registration: a source column
 * that was dropped or changed type since then gets a clear error here, not a confusing one
 * from inside the generated query.
 */
static void
check_source_columns(FsView *v)
{
	Oid			relid = fs_view_source_relid(v);

	for (int i = 0; i < v->nfeatures; i++)
	{
		AttrNumber	att = get_attnum(relid, v->features[i].name);
		Oid			type = att == InvalidAttrNumber ? InvalidOid : get_atttype(relid, att);

		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("feature \"%s\" of feature view \"%s\" is no longer a column of \"%s.%s\"",
							v->features[i].name, v->name, v->source_schema, v->source_name),
					 errhint("Register the view again over the changed source.")));
		if (type != v->features[i].type)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of \"%s.%s\" has type %s, but feature view \"%s\" version %d was registered with %s",
							v->features[i].name, v->source_schema, v->source_name, format_type_be(type),
							v->name, v->version, format_type_be(v->features[i].type)),
					 errhint("Register the view again to record the new type.")));
	}
}

uint64
fs_quarantine_window(FsView *v, const FsWindow *w, int64 run_id, uint64 *nfailing)
{
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		vals[2];
	bool		nulls[2];

	if (nfailing)
		*nfailing = 0;
	fs_view_source_relid(v);
	if (!fs_view_has_checks(v))
		return 0;
	fs_check_view_select(v);
	check_source_columns(v);
	window_params(w, vals, nulls);
	return quarantine_query(v, failing_rows_query(v, source_item(v), fs_window_predicate(v, "s", w, 1, 2), true, false),
							2, types, vals, NULL, run_id, nfailing);
}

uint64
fs_quarantine_relation(FsView *v, const char *from_item, TriggerData *trigdata, int64 run_id,
					   uint64 *nfailing)
{
	if (nfailing)
		*nfailing = 0;
	if (!fs_view_has_checks(v))
		return 0;
	return quarantine_query(v, failing_rows_query(v, from_item, "true", true, false),
							0, NULL, NULL, trigdata, run_id, nfailing);
}

/* NULL argument -> open side of the window. */
static TimestampTz
ts_arg(FunctionCallInfo fcinfo, int argno, TimestampTz if_null)
{
	return PG_ARGISNULL(argno) ? if_null : PG_GETARG_TIMESTAMPTZ(argno);
}

/*
 * fs_validate(view text, start_ts timestamptz, end_ts timestamptz, on_created boolean)
 * returns the rows of the window that fail a check, one row per source row, in entity and
 * time order, without writing anything. Caller needs SELECT on the source.
 */
Datum
fs_validate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FsView	   *v;
	FsWindow	w;
	Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		vals[2];
	bool		nulls[2];
	char		cnulls[2] = {' ', ' '};
	Portal		portal;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("feature view name must not be null")));
	w.start = ts_arg(fcinfo, 1, DT_NOBEGIN);
	w.end = ts_arg(fcinfo, 2, DT_NOEND);
	w.on_created = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	if (!TIMESTAMP_NOT_FINITE(w.start) && !TIMESTAMP_NOT_FINITE(w.end) && w.start > w.end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("start_ts must not be later than end_ts"),
				 errhint("Pass NULL for an open side of the window.")));
	v = fs_lookup_view(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	fs_check_not_agg(v, "validate");
	fs_view_source_relid(v);
	fs_check_view_select(v);
	if (w.on_created && v->created_time == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature view \"%s\" has no created-time column", v->name),
				 errhint("Omit on_created to select the window by event time.")));

	InitMaterializedSRF(fcinfo, 0);
	if (!fs_view_has_checks(v))
		PG_RETURN_NULL();
	check_source_columns(v);
	window_params(&w, vals, nulls);

	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, failing_rows_query(v, source_item(v), fs_window_predicate(v, "s", &w, 1, 2), false, true),
									   2, types, vals, cnulls, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, FS_QUARANTINE_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Datum		out[5];
			bool		outnull[5];

			for (int c = 0; c < 5; c++)
				out[c] = fs_spi_datum(i, c + 1, &outnull[c]);
			/* tuplestore_putvalues copies the values into the tuplestore's own memory. */
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	PG_RETURN_NULL();
}

/*
 * feature_store.checks_sql(view text, alias text, OUT failure_expr text, OUT pass_expr text):
 * the expressions materialization uses, for inspection and for tests that run them against
 * an oracle. Checks are registry metadata, readable by everyone.
 */
Datum
fs_checks_sql(PG_FUNCTION_ARGS)
{
	FsView	   *v;
	char	   *alias;
	TupleDesc	desc;
	Datum		vals[2];
	bool		nulls[2] = {false, false};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("view and alias must not be null")));
	v = fs_lookup_view(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	fs_check_not_agg(v, "write checks of");
	alias = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	vals[0] = CStringGetTextDatum(fs_checks_failure_expr(v, alias));
	vals[1] = CStringGetTextDatum(fs_checks_pass_expr(v, alias));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), vals, nulls)));
}
