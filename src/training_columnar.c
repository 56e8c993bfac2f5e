/*
 * training_columnar.c — fs_training_set_columns: a training set column by column, one row per
 * column holding all its values in one bytea, for clients that build data frames.
 *
 * Why: a client reading a million-row training set row by row pays a call into its driver per
 * row; reading one bytea per column, it hands each to an array library without a loop. Before
 * this function, the Python client built those bytea with one string_agg per column over
 * fs_point_in_time_join, which cost a tuplestore of the whole result and an aggregate per
 * column: about a third of the time the join itself takes. Here the join's emit callback appends
 * each value to its column's buffer directly.
 *
 * Encoding (docs/reference.md): a fixed-width type listed in fixed_width() holds each value in
 * its binary send format (big-endian, the width of the type), a NULL as zero bytes of that
 * width; any other type holds each value's text output followed by a zero byte, a NULL as the
 * zero byte alone. `nulls` has one byte per row (1 = NULL), or is NULL when no value is.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "pit_join.h"
#include "pit_join_int.h"
#include "training_set.h"

PG_FUNCTION_INFO_V1(fs_training_set_columns);

typedef struct ColBuf
{
	Oid			type;
	int			width;			/* bytes per value in send format; 0: text output */
	bool		raw_text;		/* text, varchar, bpchar: the output is the value's bytes */
	FmgrInfo	out;			/* the type's output function (width 0) */
	StringInfoData data;
	StringInfoData nulls;		/* one byte per row, written only once a NULL was seen */
	bool		any_null;
} ColBuf;

typedef struct Columns
{
	int			first;			/* first output column kept (spine columns left out) */
	int			ncols;
	ColBuf	   *cols;
	uint64		nrows;
	MemoryContext tmp;			/* per-row memory of output functions */
} Columns;

/* The types whose send format is a fixed-width big-endian image of the Datum. */
static int
fixed_width(Oid type)
{
	switch (type)
	{
		case BOOLOID:
			return 1;
		case INT2OID:
			return 2;
		case INT4OID:
		case OIDOID:
		case DATEOID:
		case FLOAT4OID:
			return 4;
		case INT8OID:
		case FLOAT8OID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return 8;
		default:
			return 0;
	}
}

/* Appends one value in its send format (see fixed_width); a NULL is zero bytes. */
static void
put_fixed(StringInfo s, Oid type, int width, Datum v, bool isnull)
{
	union
	{
		uint8		b;
		uint16		h;
		uint32		w;
		uint64		q;
	}			u = {0};

	if (!isnull)
		switch (type)
		{
			case BOOLOID:
				u.b = DatumGetBool(v) ? 1 : 0;
				break;
			case INT2OID:
				u.h = pg_hton16((uint16) DatumGetInt16(v));
				break;
			case INT4OID:
			case OIDOID:
			case DATEOID:
				u.w = pg_hton32((uint32) DatumGetInt32(v));
				break;
			case FLOAT4OID:
				{
					float4		f = DatumGetFloat4(v);
					uint32		w;

					memcpy(&w, &f, 4);
					u.w = pg_hton32(w);
					break;
				}
			case FLOAT8OID:
				{
					float8		f = DatumGetFloat8(v);
					uint64		q;

					memcpy(&q, &f, 8);
					u.q = pg_hton64(q);
					break;
				}
			default:			/* int8, timestamp, timestamptz */
				u.q = pg_hton64((uint64) DatumGetInt64(v));
				break;
		}
	appendBinaryStringInfoNT(s, (const char *) &u, width);
}

/* A buffer that becomes a bytea in place: VARHDRSZ bytes are reserved in front. */
static void
init_buf(StringInfo s, Size reserve)
{
	initStringInfo(s);
	enlargeStringInfo(s, (int) Min(reserve + VARHDRSZ, (Size) MaxAllocSize - 1));
	s->len = VARHDRSZ;
}

static bytea *
as_bytea(StringInfo s)
{
	bytea	   *b = (bytea *) s->data;

	SET_VARSIZE(b, s->len);
	return b;
}

static void
emit_columns(void *arg, Datum *values, bool *nulls)
{
	Columns    *c = arg;

	for (int i = 0; i < c->ncols; i++)
	{
		ColBuf	   *b = &c->cols[i];
		Datum		v = values[c->first + i];
		bool		isnull = nulls[c->first + i];

		if (isnull && !b->any_null)
		{
			/* the first NULL of the column: the rows before it were not NULL */
			init_buf(&b->nulls, c->nrows + 1024);
			memset(b->nulls.data + VARHDRSZ, 0, c->nrows);
			b->nulls.len += (int) c->nrows;
			b->any_null = true;
		}
		if (b->any_null)
			appendStringInfoCharMacro(&b->nulls, isnull ? 1 : 0);
		if (b->width > 0)
			put_fixed(&b->data, b->type, b->width, v, isnull);
		else
		{
			if (!isnull && b->raw_text)
			{
				text	   *t = DatumGetTextPP(v);	/* detoasted only if stored so */

				appendBinaryStringInfoNT(&b->data, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				if ((Pointer) t != DatumGetPointer(v))
					pfree(t);
			}
			else if (!isnull)
			{
				MemoryContext old = MemoryContextSwitchTo(c->tmp);
				char	   *s = OutputFunctionCall(&b->out, v);

				MemoryContextSwitchTo(old);
				appendBinaryStringInfoNT(&b->data, s, strlen(s));
				MemoryContextReset(c->tmp);
			}
			appendStringInfoCharMacro(&b->data, '\0');
		}
	}
	c->nrows++;
}

/*
 * fs_training_set_columns(spine, features, spine_time, full_names, as_of_created, spine_query,
 * spine_columns) RETURNS TABLE (column_name name, column_type regtype, row_count bigint,
 * "values" bytea, nulls bytea): one row per column of the training set (spine columns only
 * when spine_columns), in the training set's column order, values in spine row order.
 */
Datum
fs_training_set_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FsTransformTrain *tt;
	PitPlan    *plan;
	TupleDesc	desc;
	Columns		c;
	bool		spine_columns;
	MemoryContext old;

	if (PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"spine_columns\" must not be null")));
	spine_columns = PG_GETARG_BOOL(6);
	InitMaterializedSRF(fcinfo, 0);
	plan = fs_training_plan_from_args(fcinfo, 0, 5, &tt);
	desc = fs_training_plan_desc(plan, tt);

	c.first = spine_columns ? 0 : plan->spine_desc->natts;
	c.ncols = desc->natts - c.first;
	c.cols = palloc0(sizeof(ColBuf) * Max(c.ncols, 1));
	c.nrows = 0;
	c.tmp = AllocSetContextCreate(CurrentMemoryContext, "fs_training_set_columns output",
								  ALLOCSET_SMALL_SIZES);
	for (int i = 0; i < c.ncols; i++)
	{
		ColBuf	   *b = &c.cols[i];

		b->type = TupleDescAttr(desc, c.first + i)->atttypid;
		b->width = fixed_width(b->type);
		b->raw_text = b->type == TEXTOID || b->type == VARCHAROID || b->type == BPCHAROID;
		if (b->width == 0)
		{
			Oid			fn;
			bool		varlena;

			getTypeOutputInfo(b->type, &fn, &varlena);
			fmgr_info(fn, &b->out);
		}
		init_buf(&b->data, 1024);
	}

	fs_training_plan_run(plan, tt, emit_columns, &c);

	for (int i = 0; i < c.ncols; i++)
	{
		ColBuf	   *b = &c.cols[i];
		Datum		vals[5];
		bool		nulls[5] = {false, false, false, false, false};

		vals[0] = PointerGetDatum(palloc0(NAMEDATALEN));
		namestrcpy((Name) DatumGetPointer(vals[0]), NameStr(TupleDescAttr(desc, c.first + i)->attname));
		vals[1] = ObjectIdGetDatum(b->type);
		vals[2] = Int64GetDatum((int64) c.nrows);
		vals[3] = PointerGetDatum(as_bytea(&b->data));
		if (b->any_null)
			vals[4] = PointerGetDatum(as_bytea(&b->nulls));
		else
			nulls[4] = true;
		old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, vals, nulls);
		MemoryContextSwitchTo(old);
		pfree(b->data.data);
		if (b->any_null)
			pfree(b->nulls.data);
	}
	MemoryContextDelete(c.tmp);
	pit_plan_free(plan);
	return (Datum) 0;
}
