/*
 * registry_view.c — fs_register_view: a feature view (latest values, or aggregations: agg.h)
 * validated against its source as the caller, then written as the extension owner; the same
 * definition keeps its version, a changed one becomes version N+1 (docs/semantics.md, "Feature
 * views"). The checks it shares with the other registry commands are in registry_ddl.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "agg.h"
#include "online_mode.h"
#include "registry.h"
#include "registry_ddl.h"
#include "security.h"
#include "spi_util.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(fs_register_view);

typedef struct ViewDef
{
	char	   *name;
	Oid			relid;
	char	   *schema;
	char	   *relname;
	FsEntity   *entity;
	char	   *event_time;
	char	   *created_time;
	int			nfeatures;
	char	  **features;
	Oid		   *types;
	bool		has_ttl;
	Interval   *ttl;
	const char *online_mode;
	bool		is_agg;			/* an aggregation view: features are agg.specs' outputs */
	FsAggDecl	agg;
} ViewDef;

static AttrNumber
source_column(ViewDef *d, const char *col, const char *role)
{
	AttrNumber	att = get_attnum(d->relid, col);

	if (att == InvalidAttrNumber || att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" (%s) does not exist in source \"%s.%s\"", col, role, d->schema, d->relname),
				 errdetail("The source has columns: %s.", fs_relation_column_names(d->relid))));
	return att;
}

static void
check_time_column(ViewDef *d, const char *col, const char *role)
{
	Oid			t = get_atttype(d->relid, source_column(d, col, role));

	if (t != TIMESTAMPTZOID && t != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s column \"%s\" has type %s, not timestamp with time zone", role, col, format_type_be(t)),
				 errhint("Event and created times must be timestamptz (or timestamp) columns.")));
}

static bool
is_reserved_column(ViewDef *d, const char *col)
{
	for (int i = 0; i < d->entity->nkeys; i++)
		if (strcmp(d->entity->keys[i], col) == 0)
			return true;
	return strcmp(col, d->event_time) == 0 ||
		(d->created_time && strcmp(col, d->created_time) == 0);
}

/*
 * The caller must be able to read what the view exposes: SELECT on the table, or on every
 * column the view uses (column privileges, as a query would need).
 */
static void
check_source_privilege(ViewDef *d)
{
	Oid			user = GetUserId();
	bool		ok = pg_class_aclcheck(d->relid, user, ACL_SELECT) == ACLCHECK_OK;

	if (!ok)
	{
		ok = pg_attribute_aclcheck(d->relid, get_attnum(d->relid, d->event_time), user, ACL_SELECT) == ACLCHECK_OK;
		for (int i = 0; ok && i < d->entity->nkeys; i++)
			ok = pg_attribute_aclcheck(d->relid, get_attnum(d->relid, d->entity->keys[i]), user, ACL_SELECT) == ACLCHECK_OK;
		if (ok && d->created_time)
			ok = pg_attribute_aclcheck(d->relid, get_attnum(d->relid, d->created_time), user, ACL_SELECT) == ACLCHECK_OK;
		for (int i = 0; ok && i < d->nfeatures; i++)
		{
			const char *col = d->is_agg ? d->agg.specs[i].arg : d->features[i];

			if (col != NULL)
				ok = pg_attribute_aclcheck(d->relid, get_attnum(d->relid, col), user, ACL_SELECT) == ACLCHECK_OK;
		}
		/* a filter may read any column */
		if (ok && d->is_agg && d->agg.filter != NULL)
			ok = pg_attribute_aclcheck_all(d->relid, user, ACL_SELECT, ACLMASK_ALL) == ACLCHECK_OK;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", d->relname),
				 errhint("Registering a feature view requires SELECT on its source.")));
}

static void
resolve_features(ViewDef *d, FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
	{
		/* Default: every other column of the source, in column order. */
		Relation	rel = relation_open(d->relid, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);

		d->features = palloc(sizeof(char *) * Max(desc->natts, 1));
		d->types = palloc(sizeof(Oid) * Max(desc->natts, 1));
		d->nfeatures = 0;
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped || is_reserved_column(d, NameStr(att->attname)))
				continue;
			d->features[d->nfeatures] = pstrdup(NameStr(att->attname));
			d->types[d->nfeatures++] = att->atttypid;
		}
		relation_close(rel, AccessShareLock);
		if (d->nfeatures == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source \"%s.%s\" has no columns besides the entity keys and times", d->schema, d->relname),
					 errhint("A feature view needs at least one feature column.")));
	}
	else
	{
		d->features = fs_ddl_text_array_to_cstrings(PG_GETARG_ARRAYTYPE_P(argno), "features", &d->nfeatures);
		if (d->nfeatures == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a feature view needs at least one feature"),
					 errhint("Omit features to use every column besides the keys and times.")));
		d->types = palloc(sizeof(Oid) * d->nfeatures);
		for (int i = 0; i < d->nfeatures; i++)
		{
			fs_check_name("feature", d->features[i]);
			if (is_reserved_column(d, d->features[i]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" is an entity key or time column and cannot be a feature", d->features[i])));
			for (int j = 0; j < i; j++)
				if (strcmp(d->features[i], d->features[j]) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_COLUMN),
							 errmsg("feature \"%s\" is given more than once", d->features[i])));
			d->types[i] = get_atttype(d->relid, source_column(d, d->features[i], "feature"));
		}
	}
	for (int i = 0; i < d->nfeatures; i++)
	{
		fs_check_name("feature", d->features[i]);
		if (get_typtype(d->types[i]) == TYPTYPE_PSEUDO)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("feature \"%s\" has unsupported type %s", d->features[i], format_type_be(d->types[i]))));
	}
}

/*
 * An argument of fs_register_view given and not NULL: aggregations, filter and hop (0.3) are
 * absent when an older version's SQL declaration calls this library.
 */
#define ARG_GIVEN(n) (PG_NARGS() > (n) && !PG_ARGISNULL(n))

/*
 * The parameters $17..$22 of the registration's statements: kind, filter, hop and, per feature,
 * the aggregation's function, argument and window (NULL elements for a latest-value view, so
 * that versions compare with =, which treats NULL elements as equal).
 */
static void
agg_params(ViewDef *d, Datum *v, bool *n)
{
	Datum	   *fn = palloc0(sizeof(Datum) * Max(d->nfeatures, 1));
	Datum	   *arg = palloc0(sizeof(Datum) * Max(d->nfeatures, 1));
	Datum	   *win = palloc0(sizeof(Datum) * Max(d->nfeatures, 1));
	bool	   *fnn = palloc(sizeof(bool) * Max(d->nfeatures, 1));
	bool	   *argn = palloc(sizeof(bool) * Max(d->nfeatures, 1));
	bool	   *winn = palloc(sizeof(bool) * Max(d->nfeatures, 1));
	int			dims[1] = {d->nfeatures};
	int			lbs[1] = {1};

	for (int i = 0; i < d->nfeatures; i++)
	{
		FsAggSpec  *sp = d->is_agg ? &d->agg.specs[i] : NULL;

		fnn[i] = sp == NULL;
		argn[i] = sp == NULL || sp->arg == NULL;
		winn[i] = sp == NULL || sp->lifetime;
		if (!fnn[i])
			fn[i] = CStringGetTextDatum(fs_agg_fn_name(sp->fn));
		if (!argn[i])
			arg[i] = DirectFunctionCall1(namein, CStringGetDatum(sp->arg));
		if (!winn[i])
			win[i] = IntervalPGetDatum(&sp->window);
	}
	v[0] = CStringGetTextDatum(d->is_agg ? "aggregate" : "latest");
	n[0] = false;
	n[1] = !d->is_agg || d->agg.filter == NULL;
	v[1] = n[1] ? (Datum) 0 : CStringGetTextDatum(d->agg.filter);
	n[2] = !d->is_agg || !d->agg.has_hop;
	v[2] = n[2] ? (Datum) 0 : IntervalPGetDatum(&d->agg.hop);
	v[3] = PointerGetDatum(construct_md_array(fn, fnn, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	v[4] = PointerGetDatum(construct_md_array(arg, argn, 1, dims, lbs, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
	v[5] = PointerGetDatum(construct_md_array(win, winn, 1, dims, lbs, INTERVALOID, sizeof(Interval), false, TYPALIGN_DOUBLE));
	n[3] = n[4] = n[5] = false;
}

/*
 * An aggregation view: its features are the aggregations' outputs (agg.h); a view has either
 * features (latest values) or aggregations, and windows instead of a TTL.
 */
static void
resolve_aggregations(ViewDef *d, FunctionCallInfo fcinfo)
{
	if (!PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a feature view has features or aggregations, not both"),
				 errhint("Register the latest values and the aggregations as two views of the same source.")));
	if (!PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an aggregation view has windows, not a ttl"),
				 errhint("Give each aggregation its window: 'count(*) over ''30 days'''.")));
	if (!PG_ARGISNULL(8))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("checks apply to latest-value views only"),
				 errdetail("An aggregation view's values are computed, not materialized, so there is nothing to quarantine.")));
	fs_agg_declare(d->relid, PG_GETARG_ARRAYTYPE_P(12),
				   ARG_GIVEN(13) ? text_to_cstring(PG_GETARG_TEXT_PP(13)) : NULL,
				   ARG_GIVEN(14) ? PG_GETARG_INTERVAL_P(14) : NULL, &d->agg);
	d->is_agg = true;
	fs_agg_index_notice(d->relid, d->entity->keys, d->entity->nkeys, d->event_time);
	d->nfeatures = d->agg.n;
	d->features = palloc(sizeof(char *) * d->nfeatures);
	d->types = palloc(sizeof(Oid) * d->nfeatures);
	for (int i = 0; i < d->nfeatures; i++)
	{
		d->features[i] = d->agg.specs[i].name;
		d->types[i] = d->agg.specs[i].result_type;
	}
}


/* Views, services and transforms share one namespace of references. */
static void
check_name_free(const char *name, bool has_transforms)
{
	Oid			t[1] = {TEXTOID};
	Datum		a[1] = {CStringGetTextDatum(name)};
	char	   *kind = NULL;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	if (fs_spi_exec(has_transforms
					? "SELECT 'feature service' FROM feature_store.feature_service WHERE name = $1 "
					"UNION ALL SELECT 'transform' FROM feature_store.transform WHERE name = $1 LIMIT 1"
					: "SELECT 'feature service' FROM feature_store.feature_service WHERE name = $1 LIMIT 1",
					1, t, a, NULL, true) == 1)
		kind = fs_spi_text(0, 1, caller);
	SPI_finish();
	if (kind != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a %s named \"%s\" already exists", kind, name),
				 errhint("Feature views, feature services and transforms share one namespace of references; choose another name.")));
}
/*
 * fs_register_view(name, source, entity, event_time, created_time, features, ttl, online,
 *                  checks, description, owner, tags, aggregations, filter, hop) returns the
 * version now current.
 */
Datum
fs_register_view(PG_FUNCTION_ARGS)
{
	ViewDef		d = {0};
	int32		version;
	const char *mode_switch = NULL;
	FsOwnerContext octx;
	bool		has_aggs;

	d.name = fs_text_arg(fcinfo, 0, "feature view name");
	fs_check_name("feature view", d.name);
	has_aggs = fs_registry_has_aggs();
	check_name_free(d.name, has_aggs);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source must not be null")));
	d.relid = PG_GETARG_OID(1);
	{
		char		relkind = get_rel_relkind(d.relid);

		if (relkind == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", d.relid)));
		if (relkind != RELKIND_RELATION && relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
			relkind != RELKIND_PARTITIONED_TABLE && relkind != RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a table, view, materialized view or foreign table", get_rel_name(d.relid))));
		if (get_rel_persistence(d.relid) == RELPERSISTENCE_TEMP)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a feature view cannot be defined over temporary relation \"%s\"", get_rel_name(d.relid)),
					 errdetail("The registry outlives the session that owns a temporary relation.")));
	}
	d.schema = get_namespace_name(get_rel_namespace(d.relid));
	d.relname = get_rel_name(d.relid);
	d.entity = fs_lookup_entity(fs_text_arg(fcinfo, 2, "entity"), false);
	d.event_time = fs_text_arg(fcinfo, 3, "event_time");
	d.created_time = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));

	for (int i = 0; i < d.entity->nkeys; i++)
	{
		Oid			t = get_atttype(d.relid, source_column(&d, d.entity->keys[i], "entity key"));

		if (!fs_ddl_supported_key_type(t))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("entity key column \"%s\" has unsupported type %s", d.entity->keys[i], format_type_be(t)),
					 errhint("Entity keys may be smallint, integer, bigint, text, varchar or uuid.")));
		if (OidIsValid(d.entity->key_types[i]) && d.entity->key_types[i] != t)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("entity key column \"%s\" has type %s in \"%s.%s\", but entity \"%s\" uses %s",
							d.entity->keys[i], format_type_be(t), d.schema, d.relname,
							d.entity->name, format_type_be(d.entity->key_types[i])),
					 errhint("Cast the key in a view over the source so that every view of an entity uses the same key types.")));
		d.entity->key_types[i] = t;
	}
	check_time_column(&d, d.event_time, "event time");
	if (d.created_time)
	{
		if (strcmp(d.created_time, d.event_time) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("created_time and event_time must be different columns")));
		check_time_column(&d, d.created_time, "created time");
	}
	if (ARG_GIVEN(12))
	{
		if (!has_aggs)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("aggregation views need the extension's version 0.3 in this database"),
					 errhint("Run ALTER EXTENSION feature_store UPDATE.")));
		resolve_aggregations(&d, fcinfo);
	}
	else
	{
		if (ARG_GIVEN(13) || ARG_GIVEN(14))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s applies to aggregation views only", ARG_GIVEN(13) ? "filter" : "hop"),
					 errhint("Pass aggregations => ARRAY[...] to register an aggregation view.")));
		resolve_features(&d, fcinfo, 5);
	}

	d.has_ttl = !PG_ARGISNULL(6);
	if (d.has_ttl)
	{
		Interval	zero = {0};

		d.ttl = PG_GETARG_INTERVAL_P(6);
		if (!DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(d.ttl), IntervalPGetDatum(&zero))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ttl must be positive"),
					 errhint("Use NULL (the default) for features that never expire.")));
	}
	d.online_mode = (PG_ARGISNULL(7) || PG_GETARG_BOOL(7)) ? "batch" : "off";
	fs_ddl_check_tags(fcinfo, 11);
	check_source_privilege(&d);

	SPI_connect();
	/* Checks are validated as the caller: they read nothing but their own arguments. */
	{
		Datum		feats[MaxTupleAttributeNumber];
		Datum		types[MaxTupleAttributeNumber];
		Oid			at[3] = {JSONBOID, TEXTARRAYOID, REGTYPEARRAYOID};
		Datum		av[3];
		bool		an[3] = {PG_ARGISNULL(8), false, false};

		for (int i = 0; i < d.nfeatures; i++)
		{
			feats[i] = CStringGetTextDatum(d.features[i]);
			types[i] = ObjectIdGetDatum(d.types[i]);
		}
		av[0] = PG_ARGISNULL(8) ? (Datum) 0 : PG_GETARG_DATUM(8);
		av[1] = PointerGetDatum(construct_array(feats, d.nfeatures, TEXTOID, -1, false, TYPALIGN_INT));
		av[2] = PointerGetDatum(construct_array(types, d.nfeatures, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT));
		fs_spi_exec("SELECT feature_store.validate_checks($1, $2, $3)", 3, at, av, an, true);
	}

	fs_owner_context_enter(&octx);
	fs_ddl_lock_registry();
	{
		Datum		feats[MaxTupleAttributeNumber];
		Datum		ftypes[MaxTupleAttributeNumber];
		Oid			t[23] = {TEXTOID, NAMEOID, NAMEOID, TEXTOID, NAMEOID, NAMEOID, INTERVALOID, TEXTOID,
			JSONBOID, TEXTOID, TEXTOID, JSONBOID, NAMEOID, NAMEARRAYOID, REGTYPEARRAYOID, INT4OID,
		TEXTOID, TEXTOID, INTERVALOID, TEXTARRAYOID, NAMEARRAYOID, INTERVALARRAYOID, REGCLASSOID};
		Datum		v[23];
		bool		n[23] = {0};

		for (int i = 0; i < d.nfeatures; i++)
		{
			feats[i] = DirectFunctionCall1(namein, CStringGetDatum(d.features[i]));
			ftypes[i] = ObjectIdGetDatum(d.types[i]);
		}
		v[0] = CStringGetTextDatum(d.name);
		v[1] = DirectFunctionCall1(namein, CStringGetDatum(d.schema));
		v[2] = DirectFunctionCall1(namein, CStringGetDatum(d.relname));
		v[3] = CStringGetTextDatum(d.entity->name);
		v[4] = DirectFunctionCall1(namein, CStringGetDatum(d.event_time));
		n[5] = d.created_time == NULL;
		v[5] = n[5] ? (Datum) 0 : DirectFunctionCall1(namein, CStringGetDatum(d.created_time));
		n[6] = !d.has_ttl;
		v[6] = d.has_ttl ? IntervalPGetDatum(d.ttl) : (Datum) 0;
		v[7] = CStringGetTextDatum(d.online_mode);
		n[8] = PG_ARGISNULL(8);
		v[8] = n[8] ? (Datum) 0 : PG_GETARG_DATUM(8);
		n[9] = PG_ARGISNULL(9);
		v[9] = n[9] ? (Datum) 0 : PG_GETARG_DATUM(9);
		n[10] = PG_ARGISNULL(10);
		v[10] = n[10] ? (Datum) 0 : PG_GETARG_DATUM(10);
		n[11] = PG_ARGISNULL(11);
		v[11] = n[11] ? (Datum) 0 : PG_GETARG_DATUM(11);
		v[12] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(octx.save_userid, false)));
		v[13] = PointerGetDatum(construct_array(feats, d.nfeatures, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
		v[14] = PointerGetDatum(construct_array(ftypes, d.nfeatures, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT));
		v[15] = Int32GetDatum(0);	/* the version, set below */
		agg_params(&d, &v[16], &n[16]);
		v[22] = ObjectIdGetDatum(d.relid);

		/* Compare with the latest version: same definition = same version (metadata updated). */
		if (fs_spi_exec(psprintf("SELECT v.version, v.registered_by, "
								 "  v.source_schema = $2 AND v.source_name = $3 AND v.entity = $4 AND v.event_time = $5 "
								 "  AND v.created_time IS NOT DISTINCT FROM $6 AND v.ttl IS NOT DISTINCT FROM $7 "
								 "  AND v.checks = coalesce($9, '{}') %s "
								 "  AND (SELECT array_agg(f.name ORDER BY f.position) = $14 "
								 "          AND array_agg(f.type ORDER BY f.position) = $15 %s "
								 "       FROM feature_store.view_feature f WHERE f.view_id = v.view_id), "
								 "  v.view_id, v.online_mode "
								 "FROM feature_store.feature_view v WHERE v.name = $1 "
								 "ORDER BY v.version DESC LIMIT 1",
								 has_aggs ? "AND v.kind = $17 AND v.filter IS NOT DISTINCT FROM $18 "
								 "AND v.hop IS NOT DISTINCT FROM $19 "
								 "AND v.source_def IS NOT DISTINCT FROM feature_store.source_definition($23)" : "",
								 has_aggs ? "AND array_agg(f.agg_fn ORDER BY f.position) = $20 "
								 "AND array_agg(f.agg_arg ORDER BY f.position) = $21 "
								 "AND array_agg(f.agg_window ORDER BY f.position) = $22" : ""),
						23, t, v, n, false) == 1)
		{
			int32		latest = fs_spi_int32(0, 1, 0);
			char	   *owner = fs_spi_text(0, 2, CurrentMemoryContext);
			bool		same = fs_spi_bool(0, 3, false);
			int32		view_id = fs_spi_int32(0, 4, 0);
			char	   *cur_mode = fs_spi_text(0, 5, CurrentMemoryContext);

			fs_ddl_check_owner("feature view", d.name, owner, octx.save_userid);
			if (same)
			{
				Oid			ut[4] = {INT4OID, TEXTOID, TEXTOID, JSONBOID};
				Datum		uv[4] = {Int32GetDatum(view_id), v[9], v[10], v[11]};
				bool		un[4] = {false, n[9], n[10], n[11]};

				fs_spi_exec("UPDATE feature_store.feature_view SET "
							"  description = $2, owner = $3, tags = coalesce($4, '{}') WHERE view_id = $1",
							4, ut, uv, un, false);
				/*
				 * online => false switches an online view off, online => true an offline one on
				 * (batch); a view already online keeps its mode (batch or stream). The switch
				 * itself is fs_set_online_mode's, after the registry lock is released below: it
				 * drops or creates the online table and the stream triggers, as called directly.
				 */
				if ((strcmp(d.online_mode, "off") == 0) != (strcmp(cur_mode, "off") == 0))
					mode_switch = d.online_mode;
				version = latest;
				goto done;
			}
			version = latest + 1;
		}
		else
			version = 1;

		v[15] = Int32GetDatum(version);
		if (has_aggs)
			fs_spi_exec("WITH v AS (INSERT INTO feature_store.feature_view (name, version, source_schema, source_name, entity, "
						"  event_time, created_time, ttl, online_mode, checks, description, owner, tags, registered_by, "
						"  kind, filter, hop, source_def, state) "
						"  VALUES ($1, $16, $2, $3, $4, $5, $6, $7, $8, coalesce($9, '{}'), $10, $11, coalesce($12, '{}'), $13, "
						"          $17, $18, $19, feature_store.source_definition($23), "
						/* a new definition of a served view serves once fs_backfill has filled it */
						"          CASE WHEN $16 > 1 AND $17 = 'latest' AND $8 <> 'off' THEN 'backfilling' ELSE 'ready' END) "
						"  RETURNING view_id) "
						"INSERT INTO feature_store.view_feature (view_id, position, name, type, agg_fn, agg_arg, agg_window) "
						"SELECT v.view_id, f.ord, f.name, f.type, f.fn, f.arg, f.win "
						"FROM v, unnest($14, $15, $20, $21, $22) WITH ORDINALITY AS f(name, type, fn, arg, win, ord)",
						23, t, v, n, false);
		else
			fs_spi_exec("WITH v AS (INSERT INTO feature_store.feature_view (name, version, source_schema, source_name, entity, "
						"  event_time, created_time, ttl, online_mode, checks, description, owner, tags, registered_by) "
						"  VALUES ($1, $16, $2, $3, $4, $5, $6, $7, $8, coalesce($9, '{}'), $10, $11, coalesce($12, '{}'), $13) "
						"  RETURNING view_id) "
						"INSERT INTO feature_store.view_feature (view_id, position, name, type) "
						"SELECT v.view_id, f.ord, f.name, f.type FROM v, unnest($14, $15) WITH ORDINALITY AS f(name, type, ord)",
						16, t, v, n, false);
		/*
		 * Fix the entity's key types if this is its first view, and re-check them under the
		 * registry lock: a concurrent first registration may have fixed other types meanwhile.
		 */
		{
			Datum		kt[FS_MAX_KEYS];
			Oid			et[2] = {TEXTOID, REGTYPEARRAYOID};
			Datum		ev[2];

			for (int i = 0; i < d.entity->nkeys; i++)
				kt[i] = ObjectIdGetDatum(d.entity->key_types[i]);
			ev[0] = CStringGetTextDatum(d.entity->name);
			ev[1] = PointerGetDatum(construct_array(kt, d.entity->nkeys, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT));
			if (fs_spi_exec("UPDATE feature_store.entity SET key_types = coalesce(key_types, $2) WHERE name = $1 "
							"RETURNING key_types = $2", 2, et, ev, NULL, false) != 1 ||
				!fs_spi_bool(0, 1, false))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("key types of entity \"%s\" changed concurrently", d.entity->name),
						 errhint("Retry the registration.")));
		}
done:	;
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	if (mode_switch != NULL)
		DirectFunctionCall2(fs_set_online_mode,
							CStringGetTextDatum(psprintf("%s@%d", d.name, version)),
							CStringGetTextDatum(mode_switch));
	PG_RETURN_INT32(version);
}
