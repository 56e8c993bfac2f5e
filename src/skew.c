/*
 * skew.c — fs_skew_check: for a sample of entities, what serving returns (fs_online_detail:
 * cache, online table, or the aggregation served) against what training computes
 * (fs_point_in_time_join with the spine at now()), per feature, in one statement; the figures
 * are kept in feature_store.skew_check (fs_stat_skew).
 *
 * Everything that reads features runs as the caller, so a check reads only what the caller may
 * read. Two steps run as the extension owner: sampling the keys (the online tables are the
 * owner's: a key served but absent from the source is an "extra") and recording the result. The
 * sample is taken after the caller's privileges on every view were checked.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "online_table.h"
#include "registry.h"
#include "security.h"
#include "spi_util.h"

#define FS_SKEW_MAX_SAMPLE 10000000
#define FS_SKEW_EXAMPLES 5

/* The version fs_online serves for a view's name (the newest ready one; see FsView.is_serving). */
static FsView *
serving_version(FsView *latest)
{
	for (int32 k = latest->version; k >= 1; k--)
	{
		FsView	   *w = k == latest->version ? latest : fs_lookup_view_version(latest->name, k, true);

		if (w != NULL && w->is_serving)
			return w;
	}
	return latest;
}

/*
 * The views a check covers: those of the features of target (a view, view@N or a service), in
 * the versions serving reads (an unpinned reference: the serving version where it has the
 * feature). refs_out: the features as a list of SQL literals, versions pinned, for the join.
 */
static List *
skew_views(const char *target, char **refs_out)
{
	int32		version;
	char	   *name = fs_split_version("feature view", target, &version);
	/* a view's name (any version), as fs_online reads it: views before services */
	FsView	   *named = fs_lookup_view_version(name, 0, true);
	char	   *ref = named ? psprintf("%s@%d:*", name, version ? version : serving_version(named)->version)
		: pstrdup(target);
	List	   *refs = fs_resolve_feature_ref(ref, NIL);
	List	   *views = NIL;
	ListCell   *lc;
	StringInfoData lits;

	initStringInfo(&lits);
	foreach(lc, refs)
	{
		FsFeatureRef *r = lfirst(lc);
		FsView	   *w = r->view;
		FsFeature  *f = &r->view->features[r->feature_index];

		if (!r->pinned)
		{
			FsView	   *sv = serving_version(r->view);

			for (int k = 0; k < sv->nfeatures; k++)
				if (strcmp(sv->features[k].name, f->name) == 0 && sv->features[k].type == f->type)
					w = sv;
		}
		views = list_append_unique_ptr(views, w);
		appendStringInfo(&lits, "%s%s", lits.len ? ", " : "",
						 quote_literal_cstr(psprintf("%s@%d:%s", w->name, w->version, f->name)));
	}
	foreach(lc, views)
	{
		FsView	   *w = lfirst(lc);
		FsView	   *first = linitial(views);

		if (strcmp(w->online_mode, "off") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("feature view \"%s\" version %d is not served (online mode off): there is nothing to compare",
							w->name, w->version),
					 errhint("Set a mode with fs_set_online_mode('%s', 'batch').", w->name)));
		if (strcmp(w->entity.name, first->entity.name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature service \"%s\" mixes entities \"%s\" and \"%s\"", target,
							first->entity.name, w->entity.name),
					 errhint("Check each feature view on its own.")));
		fs_check_view_select(w);
	}
	*refs_out = lits.data;
	return views;
}

/* "k1, k2" with a prefix per column ("s.k1, s.k2"). */
static char *
key_list(FsEntity *e, const char *prefix)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < e->nkeys; i++)
		appendStringInfo(&s, "%s%s%s", i ? ", " : "", prefix, quote_identifier(e->keys[i]));
	return s.data;
}

/*
 * Samples up to n keys among the sources' and the online tables' (as the owner) and stores them,
 * with ts = now(), in pg_temp.fs_skew_spine (created as the caller, who reads it in the join).
 */
static void
sample_keys(List *views, int n)
{
	FsEntity   *e = &((FsView *) linitial(views))->entity;
	StringInfoData sql;
	FsOwnerContext octx;
	Datum	   *arrays = palloc(sizeof(Datum) * e->nkeys);
	bool	   *anull = palloc(sizeof(bool) * e->nkeys);
	Oid		   *atypes = palloc(sizeof(Oid) * e->nkeys);
	ListCell   *lc;
	bool		first = true;
	Oid			t = INT4OID;
	Datum		v = Int32GetDatum(n);

	initStringInfo(&sql);
	/* left over by a check that failed in a subtransaction */
	if (OidIsValid(RelnameGetRelid("fs_skew_spine")) &&
		get_rel_persistence(RelnameGetRelid("fs_skew_spine")) == RELPERSISTENCE_TEMP)
		fs_spi_exec("DROP TABLE pg_temp.fs_skew_spine", 0, NULL, NULL, NULL, false);
	appendStringInfoString(&sql, "CREATE TEMP TABLE fs_skew_spine (");
	for (int i = 0; i < e->nkeys; i++)
		appendStringInfo(&sql, "%s %s NOT NULL, ", quote_identifier(e->keys[i]),
						 format_type_extended(e->key_types[i], -1, FORMAT_TYPE_FORCE_QUALIFY));
	appendStringInfoString(&sql, "ts pg_catalog.timestamptz NOT NULL)");
	fs_spi_exec(sql.data, 0, NULL, NULL, NULL, false);

	resetStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < e->nkeys; i++)
		appendStringInfo(&sql, "%spg_catalog.array_agg(%s)", i ? ", " : "", quote_identifier(e->keys[i]));
	appendStringInfo(&sql, " FROM (SELECT %s FROM (", key_list(e, ""));
	foreach(lc, views)
	{
		FsView	   *w = lfirst(lc);
		Oid			online = fs_online_table_relid(w->view_id);

		appendStringInfo(&sql, "%sSELECT DISTINCT %s FROM %s", first ? "" : " UNION ", key_list(e, ""),
						 quote_qualified_identifier(w->source_schema, w->source_name));
		if (OidIsValid(online))
			appendStringInfo(&sql, " UNION SELECT %s FROM %s", key_list(e, ""),
							 fs_online_table_qualname(w->view_id));
		first = false;
	}
	appendStringInfoString(&sql, ") u WHERE ");
	for (int i = 0; i < e->nkeys; i++)
		appendStringInfo(&sql, "%s%s IS NOT NULL", i ? " AND " : "", quote_identifier(e->keys[i]));
	appendStringInfoString(&sql, " ORDER BY pg_catalog.random() LIMIT $1) s");
	fs_owner_context_enter(&octx);
	fs_spi_exec(sql.data, 1, &t, &v, NULL, true);
	for (int i = 0; i < e->nkeys; i++)
	{
		Datum		d = fs_spi_datum(0, i + 1, &anull[i]);

		atypes[i] = get_array_type(e->key_types[i]);
		/* copied out of SPI's memory: the next statements reuse it */
		arrays[i] = anull[i] ? (Datum) 0 : PointerGetDatum(DatumGetArrayTypePCopy(d));
	}
	fs_owner_context_leave(&octx);

	resetStringInfo(&sql);
	appendStringInfoString(&sql, "INSERT INTO pg_temp.fs_skew_spine SELECT u.*, pg_catalog.now() FROM pg_catalog.unnest(");
	for (int i = 0; i < e->nkeys; i++)
		appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
	appendStringInfoString(&sql, ") u");
	if (!anull[0])
		fs_spi_exec(sql.data, e->nkeys, atypes, arrays, anull, false);
}

/*
 * The comparison, as the caller, in one statement (one snapshot in READ COMMITTED, the
 * transaction's in REPEATABLE READ): per served feature, offline and served values by entity.
 */
static char *
compare_query(List *views, const char *ref, const char *target, const char *coldefs, const char *schema)
{
	FsEntity   *e = &((FsView *) linitial(views))->entity;
	StringInfoData sql;
	char	   *keys = key_list(e, "");
	char	   *skeys = key_list(e, "s.");
	char	   *okeys = key_list(e, "o.");
	StringInfoData keynames;
	StringInfoData joinkeys;

	initStringInfo(&keynames);
	initStringInfo(&joinkeys);
	for (int i = 0; i < e->nkeys; i++)
	{
		appendStringInfo(&keynames, "%s", quote_literal_cstr(e->keys[i]));
		appendStringInfoString(&keynames, ", ");
		appendStringInfo(&joinkeys, " AND f.%s = v.%s", quote_identifier(e->keys[i]), quote_identifier(e->keys[i]));
	}
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH o AS (SELECT * FROM %s.fs_point_in_time_join('pg_temp.fs_skew_spine', ARRAY[%s], 'ts', full_names => true) AS t(%s)), "
					 "f AS (SELECT %s, j.key AS col, j.value AS ov FROM o, "
					 "      pg_catalog.jsonb_each(pg_catalog.to_jsonb(o) - ARRAY[%s'ts']) j), "
					 "v AS (SELECT %s, s.ent, d.view, d.version, d.feature, d.value AS sv, d.status, d.pos "
					 "      FROM (SELECT s.*, %s.fs_entity(%s, %s) AS ent FROM pg_temp.fs_skew_spine s) s, "
					 "           %s.fs_online_detail(s.ent, %s) WITH ORDINALITY AS d(view, version, feature, value, event_ts, status, pos)), "
					 "c AS (SELECT v.view, v.version, v.feature, v.pos, v.ent::text AS ent, f.ov, v.sv, "
					 "             (f.ov IS NOT NULL AND f.ov <> 'null'::jsonb) AS off_has, "
					 "             (v.status = 'present' AND v.sv <> 'null'::jsonb) AS srv_has "
					 "      FROM v LEFT JOIN f ON f.col = v.view || '__' || v.feature%s) "
					 "SELECT view, version, feature, count(*), "
					 "  count(*) FILTER (WHERE off_has AND srv_has AND sv <> ov), "
					 "  count(*) FILTER (WHERE off_has AND NOT srv_has), "
					 "  count(*) FILTER (WHERE srv_has AND NOT off_has), "
					 "  max(CASE WHEN off_has AND srv_has AND pg_catalog.jsonb_typeof(sv) = 'number' "
					 "            AND pg_catalog.jsonb_typeof(ov) = 'number' "
					 "           THEN pg_catalog.abs(sv::numeric - ov::numeric)::float8 END), "
					 "  (pg_catalog.array_agg(ent ORDER BY ent) FILTER (WHERE off_has IS DISTINCT FROM srv_has "
					 "       OR (off_has AND sv <> ov)))[1:%d] "
					 "FROM c GROUP BY view, version, feature ORDER BY min(pos)",
					 schema, ref, coldefs,
					 okeys, keynames.data,
					 skeys, schema, quote_literal_cstr(e->name), keys,
					 schema, quote_literal_cstr(target),
					 joinkeys.data, FS_SKEW_EXAMPLES);
	return sql.data;
}

PG_FUNCTION_INFO_V1(fs_skew_check);

/* See the file header; SQL: fs_skew_check(view_or_service text, sample integer DEFAULT 1000). */
Datum
fs_skew_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *target;
	int32		sample;
	List	   *views;
	char	   *ref;
	const char *schema;
	char	   *coldefs;
	uint64		n;
	FsOwnerContext octx;
	Oid			ins_types[12] = {TEXTOID, INT4OID, TEXTOID, INT4OID, TEXTOID, INT8OID, INT8OID, INT8OID,
	INT8OID, FLOAT8OID, TEXTARRAYOID, NAMEOID};
	Datum	  **rows;
	bool	  **rnull;
	MemoryContext fcxt = CurrentMemoryContext;
	Datum		caller;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("view_or_service must not be NULL")));
	sample = PG_ARGISNULL(1) ? 1000 : PG_GETARG_INT32(1);
	if (sample < 1 || sample > FS_SKEW_MAX_SAMPLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample must be between 1 and %d", FS_SKEW_MAX_SAMPLE)));
	target = text_to_cstring(PG_GETARG_TEXT_PP(0));
	InitMaterializedSRF(fcinfo, 0);
	views = skew_views(target, &ref);
	/* the extension's functions live where this one does */
	schema = quote_identifier(get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid)));

	caller = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	SPI_connect();
	sample_keys(views, sample);
	fs_spi_exec(psprintf("SELECT %s.fs_training_columns('pg_temp.fs_skew_spine', ARRAY[%s], 'ts', full_names => true)",
						 schema, ref), 0, NULL, NULL, NULL, false);
	coldefs = fs_spi_text(0, 1, CurrentMemoryContext);
	n = fs_spi_exec(compare_query(views, ref, target, coldefs, schema), 0, NULL, NULL, NULL, false);
	/* the rows outlive SPI: in the function's context */
	MemoryContextSwitchTo(fcxt);
	rows = palloc(sizeof(Datum *) * Max(n, 1));
	rnull = palloc(sizeof(bool *) * Max(n, 1));
	for (uint64 r = 0; r < n; r++)
	{
		/* target, sample, the row's nine columns, the caller */
		rows[r] = palloc(sizeof(Datum) * 12);
		rnull[r] = palloc0(sizeof(bool) * 12);
		rows[r][11] = caller;
		rows[r][0] = CStringGetTextDatum(target);
		rows[r][1] = Int32GetDatum(sample);
		for (int c = 0; c < 9; c++)
		{
			Datum		d = fs_spi_datum(r, c + 1, &rnull[r][c + 2]);
			Form_pg_attribute a = TupleDescAttr(SPI_tuptable->tupdesc, c);

			rows[r][c + 2] = rnull[r][c + 2] ? (Datum) 0 : datumCopy(d, a->attbyval, a->attlen);
		}
	}
	fs_spi_exec("DROP TABLE pg_temp.fs_skew_spine", 0, NULL, NULL, NULL, false);

	/* kept as the owner: the table is the registry's */
	fs_owner_context_enter(&octx);
	for (uint64 r = 0; r < n; r++)
		fs_spi_exec("INSERT INTO feature_store.skew_check (target, sample, view, version, feature, checked, "
					"  mismatches, missing, extra, max_abs_diff, example_entities, checked_by) "
					"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
					12, ins_types, rows[r], rnull[r], false);
	fs_owner_context_leave(&octx);
	SPI_finish();

	for (uint64 r = 0; r < n; r++)
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, &rows[r][2], &rnull[r][2]);
	PG_RETURN_NULL();
}
