/*
 * materialize_sql.c — the set-based write into an online table, as SQL text: for every entity
 * among the rows of a FROM item, its latest row passing the view's checks (SELECT DISTINCT ON,
 * ordered by event DESC, created DESC NULLS LAST, then the features: the point-in-time join's
 * tie-break), upserted with ON CONFLICT ... DO UPDATE ... WHERE strictly newer (the
 * never-backwards rule). Batch and incremental runs (materialize.c) and streaming (stream.c)
 * run this statement; the C write path (materialize_write.c) shares its upsert clause.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/typcache.h"

#include "checks.h"
#include "materialize_sql.h"
#include "online_table.h"

/* Comma-separated quoted key columns with an optional table prefix. */
static void
keys(StringInfo sql, FsView *v, const char *prefix)
{
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(sql, "%s%s%s", i > 0 ? ", " : "", prefix, quote_identifier(v->entity.keys[i]));
}

/*
 * The upsert clause of every write into an online table (alias o), in one place because it is
 * the never-backwards rule: only a strictly newer (event, created) replaces what is online.
 */
void
fs_mat_append_upsert(StringInfo sql, FsView *v)
{
	const char *oe = quote_identifier(FS_ONLINE_EVENT_COL);
	const char *oc = quote_identifier(FS_ONLINE_CREATED_COL);

	appendStringInfoString(sql, " ON CONFLICT (");
	keys(sql, v, "");
	appendStringInfo(sql, ") DO UPDATE SET %s = EXCLUDED.%s, %s = EXCLUDED.%s", oe, oe, oc, oc);
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(sql, ", %s = EXCLUDED.%s", quote_identifier(v->features[i].name),
						 quote_identifier(v->features[i].name));
	appendStringInfo(sql, " WHERE (o.%s, COALESCE(o.%s, '-infinity')) OPERATOR(pg_catalog.<) "
					 "(EXCLUDED.%s, COALESCE(EXCLUDED.%s, '-infinity'))", oe, oc, oe, oc);
}

/*
 * One statement for the whole batch (see the file header): DISTINCT ON picks each entity's
 * latest passing row, ON CONFLICT ... WHERE keeps entities from moving backwards.
 */
char *
fs_mat_upsert_sql(FsView *v, const char *from_item, const char *where)
{
	StringInfoData sql;
	const char *ev = quote_identifier(v->event_time);
	const char *oe = quote_identifier(FS_ONLINE_EVENT_COL);
	const char *oc = quote_identifier(FS_ONLINE_CREATED_COL);

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS o (", fs_online_table_qualname(v->view_id));
	keys(&sql, v, "");
	appendStringInfo(&sql, ", %s, %s", oe, oc);
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&sql, ", %s", quote_identifier(v->features[i].name));
	appendStringInfoString(&sql, ") SELECT DISTINCT ON (");
	keys(&sql, v, "x.");
	appendStringInfoString(&sql, ") ");
	keys(&sql, v, "x.");
	appendStringInfoString(&sql, ", x.fs__ev, x.fs__cr");
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&sql, ", x.%s", quote_identifier(v->features[i].name));
	appendStringInfoString(&sql, " FROM (SELECT ");
	keys(&sql, v, "s.");
	appendStringInfo(&sql, ", CAST(s.%s AS pg_catalog.timestamptz) AS fs__ev, ", ev);
	if (v->created_time)
		appendStringInfo(&sql, "CAST(s.%s AS pg_catalog.timestamptz) AS fs__cr", quote_identifier(v->created_time));
	else
		appendStringInfoString(&sql, "CAST(NULL AS pg_catalog.timestamptz) AS fs__cr");
	for (int i = 0; i < v->nfeatures; i++)
		appendStringInfo(&sql, ", s.%s", quote_identifier(v->features[i].name));
	appendStringInfo(&sql, " FROM %s s WHERE (%s) AND s.%s IS NOT NULL AND %s",
					 from_item, where, ev, fs_checks_pass_expr(v, "s"));
	for (int i = 0; i < v->entity.nkeys; i++)
		appendStringInfo(&sql, " AND s.%s IS NOT NULL", quote_identifier(v->entity.keys[i]));
	appendStringInfoString(&sql, ") x ORDER BY ");
	keys(&sql, v, "x.");
	appendStringInfoString(&sql, ", x.fs__ev DESC, x.fs__cr DESC NULLS LAST");
	/* the point-in-time join's tie-break: smallest features in order, NULLs last */
	for (int i = 0; i < v->nfeatures; i++)
		if (OidIsValid(lookup_type_cache(v->features[i].type, TYPECACHE_LT_OPR)->lt_opr))
			appendStringInfo(&sql, ", x.%s NULLS LAST", quote_identifier(v->features[i].name));
	fs_mat_append_upsert(&sql, v);
	return sql.data;
}
