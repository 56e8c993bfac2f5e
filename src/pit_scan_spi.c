/*
 * pit_scan_spi.c — reading a source through an SPI cursor: the one path for relations the table
 * AM path (pit_scan.c) cannot read — views, foreign tables, sources with row-level security, and
 * spines that are not tables — so that the executor's rules (policies, view definitions, FDWs)
 * apply to them. Rows are offered to their slots with their features copied right away.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pit_join.h"
#include "pit_join_int.h"

/* Offers a fully read row (SPI path): features are compared and copied right away. */
static void
offer_copy(PitPlan *p, PitView *v, const Datum *vals, const bool *nulls, MemoryContext bcxt)
{
	PitEntry   *ent;
	PitSlot    *s;
	bool		tie;
	int64		e,
				c;
	bool		c_null;

	for (int i = 0; i < v->nkeys; i++)
		if (nulls[i])
			return;
	if (nulls[v->col_event])
		return;
	ent = pit_lookup_key(v, vals, pit_hash_keys(v, vals), false);
	if (ent == NULL)
		return;
	e = DatumGetInt64(vals[v->col_event]);
	c_null = v->col_created < 0 || nulls[v->col_created];
	c = c_null ? 0 : DatumGetInt64(vals[v->col_created]);
	s = pit_place_row(p, v, ent, e, c, c_null, &tie);
	if (s == NULL)
		return;
	if (tie && pit_features_cmp(v, vals + v->col_feat0, nulls + v->col_feat0, s->best->vals, s->best->nulls) >= 0)
		return;
	pit_store_row(v, s, e, c, c_null, vals + v->col_feat0, nulls + v->col_feat0, bcxt, false);
}

/*
 * Reads columns cols[0..ncols) of relation relid through an SPI cursor, under the active snapshot,
 * calling fn for every row: the one path for relations the table AM path cannot read (views,
 * foreign tables, RLS-protected tables, non-table spines), so executor rules apply to them.
 */
uint64
pit_spi_read(Oid relid, char *const *cols, int ncols, PitSpiRowFn fn, void *arg)
{
	StringInfoData sql;
	Portal		portal;
	uint64		n = 0;
	Datum	   *vals = palloc(sizeof(Datum) * Max(ncols, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(ncols, 1));

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int c = 0; c < ncols; c++)
		appendStringInfo(&sql, "%s%s", c ? ", " : "", quote_identifier(cols[c]));
	appendStringInfo(&sql, " FROM %s",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid)));
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vals, nulls);
			fn(arg, vals, nulls);
		}
		n += SPI_processed;
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();
	pfree(sql.data);
	pfree(vals);
	pfree(nulls);
	return n;
}

typedef struct OfferArg
{
	PitPlan    *p;
	PitView    *v;
	MemoryContext bcxt;
} OfferArg;

static void
offer_spi_row(void *arg, Datum *vals, bool *nulls)
{
	OfferArg   *o = arg;

	offer_copy(o->p, o->v, vals, nulls, o->bcxt);
}

/* Reads a view, foreign table or RLS-protected source through SPI (executor rules apply). */
uint64
pit_scan_spi(PitPlan *p, PitView *v, MemoryContext bcxt)
{
	OfferArg	o = {p, v, bcxt};

	return pit_spi_read(v->relid, v->col_names, v->ncols, offer_spi_row, &o);
}
