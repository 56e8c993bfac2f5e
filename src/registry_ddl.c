/*
 * registry_ddl.c — the SQL-callable registry commands: fs_register_entity, fs_register_service
 * and the fs_drop_* functions, and the checks every registration shares (registry_ddl.h);
 * fs_register_view, the largest, is in registry_view.c.
 *
 * Validation against the system catalogs (columns, types, privileges, ownership) is done here in
 * C, as the caller; the rows are then written through SPI as the extension owner (security.c).
 * Check rules (jsonb) are validated by the SQL helper feature_store.validate_checks, where
 * walking jsonb is simpler. Registrations serialize on a lock of the registry table so that two
 * sessions cannot create the same version.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
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
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "online_mode.h"
#include "registry.h"
#include "registry_ddl.h"
#include "schedule.h"
#include "security.h"
#include "spi_util.h"
#include "sql_args.h"
#include "transform.h"

PG_FUNCTION_INFO_V1(fs_register_entity);
PG_FUNCTION_INFO_V1(fs_register_service);
PG_FUNCTION_INFO_V1(fs_drop_view);
PG_FUNCTION_INFO_V1(fs_drop_service);
PG_FUNCTION_INFO_V1(fs_drop_entity);

void
fs_ddl_check_tags(FunctionCallInfo fcinfo, int argno)
{
	if (!PG_ARGISNULL(argno) && !JB_ROOT_IS_OBJECT(PG_GETARG_JSONB_P(argno)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tags must be a jsonb object"),
				 errhint("Write tags => '{\"team\": \"risk\"}'.")));
}

/* Text array to C strings; errors on NULL elements or more than one dimension. */
char **
fs_ddl_text_array_to_cstrings(ArrayType *arr, const char *what, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what)));
		out[i] = TextDatumGetCString(elems[i]);
	}
	return out;
}

/* Key columns must be hashable and sortable with a stable text form: the common key types. */
bool
fs_ddl_supported_key_type(Oid type)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case TEXTOID:
		case VARCHAROID:
		case UUIDOID:
			return true;
		default:
			return false;
	}
}

void
fs_ddl_lock_registry(void)
{
	fs_spi_exec("LOCK TABLE feature_store.entity, feature_store.feature_view, feature_store.feature_service "
				"IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL, NULL, false);
}

/* `caller` is passed explicitly because some callers are already in the owner context. */
void
fs_ddl_check_owner(const char *kind, const char *name, const char *registered_by, Oid caller)
{
	if (!fs_is_member_of(caller, registered_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of %s \"%s\"", kind, name),
				 errdetail("It was registered by role \"%s\".", registered_by)));
}

/*
 * fs_register_entity('driver', '{driver_id}') resolves to the one-key form (an untyped literal
 * prefers text to text[]), which takes '{driver_id}' as one key name. Says how to pass an array
 * instead of only calling the name invalid.
 */
static void
check_array_literal_key(const char *key)
{
	size_t		len = strlen(key);
	StringInfoData arr;
	char	   *inner;
	char	   *tok;
	char	   *save;
	int			n = 0;

	if (len < 2 || key[0] != '{' || key[len - 1] != '}')
		return;
	inner = pnstrdup(key + 1, len - 2);
	initStringInfo(&arr);
	appendStringInfoString(&arr, "ARRAY[");
	for (tok = strtok_r(inner, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
	{
		char	   *end = tok + strlen(tok);

		while (*tok == ' ' || *tok == '"')
			tok++;
		while (end > tok && (end[-1] == ' ' || end[-1] == '"'))
			*--end = '\0';
		appendStringInfo(&arr, "%s%s", n++ ? ", " : "", quote_literal_cstr(tok));
	}
	appendStringInfoChar(&arr, ']');
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_NAME),
			 errmsg("invalid join key name \"%s\"", key),
			 errdetail("An untyped literal such as '%s' reaches the one-key form fs_register_entity(name, join_key text), which takes it as a single key name.", key),
			 errhint("Pass the keys as an array: fs_register_entity(name, %s).", arr.data)));
}

/*
 * fs_register_entity(name text, join_keys text[], description text, key_types regtype[])
 * Same keys again: updates the description. Different keys: allowed only while no view uses it.
 */
Datum
fs_register_entity(PG_FUNCTION_ARGS)
{
	char	   *name = fs_text_arg(fcinfo, 0, "entity name");
	ArrayType  *keys;
	char	  **keynames;
	int			nkeys;
	FsOwnerContext octx;

	fs_check_name("entity", name);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("join_keys must not be null")));
	keys = PG_GETARG_ARRAYTYPE_P(1);
	keynames = fs_ddl_text_array_to_cstrings(keys, "join_keys", &nkeys);
	if (nkeys < 1 || nkeys > FS_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an entity needs between 1 and %d join keys, got %d", FS_MAX_KEYS, nkeys)));
	if (nkeys == 1 && !fs_is_valid_name(keynames[0]))
		check_array_literal_key(keynames[0]);
	for (int i = 0; i < nkeys; i++)
	{
		fs_check_name("join key", keynames[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(keynames[i], keynames[j]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("join key \"%s\" is given more than once", keynames[i])));
	}
	if (!PG_ARGISNULL(3))
	{
		ArrayType  *ta = PG_GETARG_ARRAYTYPE_P(3);
		Datum	   *tv;
		bool	   *tn;
		int			nt;

		deconstruct_array(ta, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT, &tv, &tn, &nt);
		if (nt != nkeys)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key_types has %d elements but join_keys has %d", nt, nkeys)));
		for (int i = 0; i < nt; i++)
			if (tn[i] || !fs_ddl_supported_key_type(DatumGetObjectId(tv[i])))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("unsupported entity key type %s",
								tn[i] ? "null" : format_type_be(DatumGetObjectId(tv[i]))),
						 errhint("Entity keys may be smallint, integer, bigint, text, varchar or uuid.")));
	}

	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_ddl_lock_registry();
	{
		Oid			types[4] = {TEXTOID, TEXTARRAYOID, TEXTOID, REGTYPEARRAYOID};
		Datum		vals[4] = {CStringGetTextDatum(name), PointerGetDatum(keys),
		PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2), PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3)};
		bool		nulls[4] = {false, false, PG_ARGISNULL(2), PG_ARGISNULL(3)};

		if (fs_spi_exec("SELECT registered_by, join_keys = $2, "
						"  EXISTS (SELECT 1 FROM feature_store.feature_view v WHERE v.entity = e.name), "
						"  $4 IS NULL OR key_types IS NULL OR key_types = $4 "
						"FROM feature_store.entity e WHERE name = $1", 4, types, vals, nulls, false) == 1)
		{
			char	   *owner = fs_spi_text(0, 1, CurrentMemoryContext);
			bool		same_keys = fs_spi_bool(0, 2, false);
			bool		used = fs_spi_bool(0, 3, false);
			bool		same_types = fs_spi_bool(0, 4, false);

			fs_ddl_check_owner("entity", name, owner, octx.save_userid);
			if ((!same_keys || !same_types) && used)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_IN_USE),
						 errmsg("entity \"%s\" already exists with different join keys and is used by feature views", name),
						 errhint("Register a new entity under another name, or drop the views that use it first.")));
			fs_spi_exec("UPDATE feature_store.entity SET join_keys = $2, description = $3, "
						"  key_types = CASE WHEN join_keys = $2 THEN coalesce($4, key_types) ELSE $4 END "
						"WHERE name = $1", 4, types, vals, nulls, false);
		}
		else
		{
			Datum		v5[5] = {vals[0], vals[1], vals[2], vals[3],
			CStringGetDatum(GetUserNameFromId(octx.save_userid, false))};
			Oid			t5[5] = {TEXTOID, TEXTARRAYOID, TEXTOID, REGTYPEARRAYOID, NAMEOID};
			bool		n5[5] = {false, false, nulls[2], nulls[3], false};

			v5[4] = DirectFunctionCall1(namein, v5[4]);
			fs_spi_exec("INSERT INTO feature_store.entity (name, join_keys, description, key_types, registered_by) "
						"VALUES ($1, $2, $3, $4, $5)", 5, t5, v5, n5, false);
		}
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * fs_register_service(name, features, description, owner, tags) returns the version now current.
 */
Datum
fs_register_service(PG_FUNCTION_ARGS)
{
	char	   *name = fs_text_arg(fcinfo, 0, "feature service name");
	List	   *refs;
	ListCell   *lc;
	int			n;
	Datum	   *views,
			   *versions,
			   *feats;
	bool	   *vnulls;
	int32		version;
	FsOwnerContext octx;
	Datum	   *fpos;			/* positions of the features, and of the transforms */
	Datum	   *tnames;
	Datum	   *tversions;
	bool	   *tvnulls;
	Datum	   *tpos;
	int			nt = 0;

	fs_check_name("feature service", name);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features must not be null")));
	fs_ddl_check_tags(fcinfo, 4);
	if (fs_lookup_view_version(name, 0, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a feature view named \"%s\" already exists", name),
				 errhint("Feature services and feature views share one namespace of references; choose another name.")));
	if (fs_transform_exists(name))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a transform named \"%s\" already exists", name),
				 errhint("Transforms, feature services and feature views share one namespace of references; choose another name.")));

	/*
	 * The list in order: feature references (a view:* or a service expands to several) and
	 * transforms, numbered together; each kind is stored with its positions.
	 */
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *enulls;
		int			ne;
		int			pos = 0;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("feature references must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &ne);
		if (ne == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no features given"),
					 errhint("Pass at least one feature reference, such as 'view:feature' or 'view:*'.")));
		refs = NIL;
		fpos = palloc(sizeof(Datum) * (ne + 1));
		tnames = palloc(sizeof(Datum) * ne);
		tversions = palloc(sizeof(Datum) * ne);
		tvnulls = palloc(sizeof(bool) * ne);
		tpos = palloc(sizeof(Datum) * ne);
		for (int i = 0; i < ne; i++)
		{
			char	   *ref;

			if (enulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("feature reference must not be null")));
			ref = TextDatumGetCString(elems[i]);
			if (strchr(ref, ':') == NULL && fs_lookup_view_version(ref, 0, true) == NULL)
			{
				int32		tv;
				char	   *tn = fs_split_version("transform", ref, &tv);

				if (fs_transform_exists(tn))
				{
					FsTransform *t = fs_transform_lookup(ref, false);

					for (int j = 0; j < t->ninputs; j++)
						fs_check_view_select_filtered(((FsFeatureRef *) linitial(fs_resolve_feature_ref(t->inputs[j], NIL)))->view);
					for (int j = 0; j < nt; j++)
						if (strcmp(TextDatumGetCString(tnames[j]), tn) == 0)
							ereport(ERROR,
									(errcode(ERRCODE_DUPLICATE_OBJECT),
									 errmsg("transform \"%s\" is referenced more than once", tn)));
					tnames[nt] = CStringGetTextDatum(tn);
					tversions[nt] = Int32GetDatum(tv);
					tvnulls[nt] = tv == 0;
					tpos[nt++] = Int32GetDatum(++pos);
					continue;
				}
			}
			{
				int			before = list_length(refs);

				refs = fs_resolve_feature_ref(ref, refs);
				for (int k = before; k < list_length(refs); k++)
					fpos[k] = Int32GetDatum(++pos);
			}
		}
	}
	n = list_length(refs);
	views = palloc(sizeof(Datum) * n);
	versions = palloc(sizeof(Datum) * n);
	vnulls = palloc(sizeof(bool) * n);
	feats = palloc(sizeof(Datum) * n);

	{
		int			i = 0;

		foreach(lc, refs)
		{
			FsFeatureRef *r = lfirst(lc);

			views[i] = CStringGetTextDatum(r->view->name);
			versions[i] = Int32GetDatum(r->view->version);
			vnulls[i] = !r->pinned;
			feats[i] = DirectFunctionCall1(namein, CStringGetDatum(r->view->features[r->feature_index].name));
			i++;
		}
	}

	SPI_connect();
	fs_owner_context_enter(&octx);
	fs_ddl_lock_registry();
	{
		int			dims[1] = {n};
		int			lbs[1] = {1};
		Oid			t[12] = {TEXTOID, TEXTARRAYOID, INT4ARRAYOID, NAMEARRAYOID, TEXTOID, TEXTOID, JSONBOID, INT4OID,
		INT4ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID};
		Datum		v[12];
		bool		nl[12] = {0};
		int			tdims[1] = {nt};

		v[0] = CStringGetTextDatum(name);
		v[1] = PointerGetDatum(construct_array(views, n, TEXTOID, -1, false, TYPALIGN_INT));
		v[2] = PointerGetDatum(construct_md_array(versions, vnulls, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
		v[3] = PointerGetDatum(construct_array(feats, n, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
		v[8] = PointerGetDatum(construct_array(fpos, n, INT4OID, 4, true, TYPALIGN_INT));
		v[9] = PointerGetDatum(construct_array(tnames, nt, TEXTOID, -1, false, TYPALIGN_INT));
		v[10] = PointerGetDatum(construct_md_array(tversions, tvnulls, 1, tdims, lbs, INT4OID, 4, true, TYPALIGN_INT));
		v[11] = PointerGetDatum(construct_array(tpos, nt, INT4OID, 4, true, TYPALIGN_INT));
		v[7] = Int32GetDatum(0);
		for (int i = 2; i < 5; i++)
		{
			nl[i + 2] = PG_ARGISNULL(i);
			v[i + 2] = nl[i + 2] ? (Datum) 0 : PG_GETARG_DATUM(i);
		}

		if (fs_spi_exec(psprintf("SELECT s.version, s.registered_by, s.service_id, "
								 "  (SELECT coalesce(array_agg(f.view_name ORDER BY f.position), '{}') = $2 "
								 "      AND coalesce(array_agg(f.view_version ORDER BY f.position), '{}') IS NOT DISTINCT FROM $3 "
								 "      AND coalesce(array_agg(f.feature ORDER BY f.position), '{}') = $4 "
								 "      AND coalesce(array_agg(f.position ORDER BY f.position), '{}') = $9 "
								 "   FROM feature_store.service_feature f WHERE f.service_id = s.service_id) %s "
								 "FROM feature_store.feature_service s WHERE s.name = $1 ORDER BY s.version DESC LIMIT 1",
								 fs_registry_has_aggs() ?
								 "AND (SELECT coalesce(array_agg(x.transform_name ORDER BY x.position), '{}') = $10 "
								 "      AND coalesce(array_agg(x.transform_version ORDER BY x.position), '{}') IS NOT DISTINCT FROM $11 "
								 "      AND coalesce(array_agg(x.position ORDER BY x.position), '{}') = $12 "
								 "   FROM feature_store.service_transform x WHERE x.service_id = s.service_id)" : ""),
						12, t, v, nl, false) == 1)
		{
			int32		latest = fs_spi_int32(0, 1, 0);
			char	   *owner = fs_spi_text(0, 2, CurrentMemoryContext);
			int32		sid = fs_spi_int32(0, 3, 0);

			fs_ddl_check_owner("feature service", name, owner, octx.save_userid);
			if (fs_spi_bool(0, 4, false))
			{
				Oid			ut[4] = {INT4OID, TEXTOID, TEXTOID, JSONBOID};
				Datum		uv[4] = {Int32GetDatum(sid), v[4], v[5], v[6]};
				bool		un[4] = {false, nl[4], nl[5], nl[6]};

				fs_spi_exec("UPDATE feature_store.feature_service SET description = $2, owner = $3, "
							"tags = coalesce($4, '{}') WHERE service_id = $1", 4, ut, uv, un, false);
				version = latest;
				goto done;
			}
			version = latest + 1;
		}
		else
			version = 1;
		v[7] = Int32GetDatum(version);
		{
			Oid			rt[13] = {TEXTOID, TEXTARRAYOID, INT4ARRAYOID, NAMEARRAYOID, TEXTOID, TEXTOID, JSONBOID, INT4OID, NAMEOID,
			INT4ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID};
			Datum		rv[13] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
				DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(octx.save_userid, false))),
			v[8], v[9], v[10], v[11]};
			bool		rn[13] = {false, false, false, false, nl[4], nl[5], nl[6], false, false, false, false, false, false};

			fs_spi_exec("WITH s AS (INSERT INTO feature_store.feature_service (name, version, description, owner, tags, registered_by) "
						"  VALUES ($1, $8, $5, $6, coalesce($7, '{}'), $9) RETURNING service_id), "
						"f AS (INSERT INTO feature_store.service_feature (service_id, position, view_name, view_version, feature) "
						"  SELECT s.service_id, f.pos, f.v, f.ver, f.feat FROM s, unnest($2, $3, $4, $10) AS f(v, ver, feat, pos)) "
						"SELECT count(*) FROM s",
						13, rt, rv, rn, false);
			if (nt > 0)
				fs_spi_exec("INSERT INTO feature_store.service_transform (service_id, position, transform_name, transform_version) "
							"SELECT (SELECT service_id FROM feature_store.feature_service WHERE name = $1 AND version = $8), "
							"       x.pos, x.n, x.ver FROM unnest($11, $12, $13) AS x(n, ver, pos)",
							13, rt, rv, rn, false);
		}
done:	;
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	PG_RETURN_INT32(version);
}

/*
 * fs_drop_view(name text, cascade boolean) drops every version of "name", or one version of
 * "name@N". Services that would lose features block the drop unless cascade, which drops them
 * (with a NOTICE each, as DROP ... CASCADE does). Returns the number of versions dropped.
 */
Datum
fs_drop_view(PG_FUNCTION_ARGS)
{
	char	   *ref = fs_text_arg(fcinfo, 0, "feature view name");
	bool		cascade = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	FsView	   *v = fs_lookup_view(ref, false);
	bool		one_version = strchr(ref, '@') != NULL;
	uint64		ndropped;
	FsOwnerContext octx;

	SPI_connect();
	if (one_version)
		fs_ddl_check_owner("feature view", v->name, v->registered_by, GetUserId());
	else
	{
		/* every version is dropped: the caller must own each (members may have added some) */
		Oid			t[1] = {TEXTOID};
		Datum		a[1] = {CStringGetTextDatum(v->name)};
		uint64		n = fs_spi_exec("SELECT DISTINCT registered_by FROM feature_store.feature_view WHERE name = $1 ORDER BY 1",
									1, t, a, NULL, true);

		for (uint64 i = 0; i < n; i++)
			fs_ddl_check_owner("feature view", v->name, fs_spi_text(i, 1, CurrentMemoryContext), GetUserId());
	}
	fs_owner_context_enter(&octx);
	fs_ddl_lock_registry();
	{
		Oid			t[4] = {TEXTOID, INT4OID, BOOLOID, BOOLOID};
		Datum		a[4] = {CStringGetTextDatum(v->name), Int32GetDatum(v->version),
		BoolGetDatum(one_version), BoolGetDatum(v->is_latest)};
		uint64		ndep;

		/* Services using what is dropped: all refs (whole view), or pinned to N / following latest N. */
		ndep = fs_spi_exec("SELECT DISTINCT s.name || '@' || s.version, s.service_id FROM feature_store.service_feature f "
						   "JOIN feature_store.feature_service s USING (service_id) "
						   "WHERE f.view_name = $1 AND (NOT $3 OR f.view_version = $2 OR (f.view_version IS NULL AND $4)) "
						   "ORDER BY 1", 4, t, a, NULL, false);
		if (ndep > 0 && !cascade)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop feature view \"%s\" because feature service \"%s\" uses it",
							ref, fs_spi_text(0, 1, CurrentMemoryContext)),
					 errhint("Drop the feature service first, or use fs_drop_view('%s', cascade => true) to drop the services that use it too.", ref)));
		for (uint64 i = 0; i < ndep; i++)
			ereport(NOTICE, (errmsg("drop cascades to feature service \"%s\"",
									fs_spi_text(i, 1, CurrentMemoryContext))));
		if (ndep > 0)
			fs_spi_exec("DELETE FROM feature_store.feature_service s WHERE s.service_id IN ("
						"  SELECT f.service_id FROM feature_store.service_feature f "
						"  WHERE f.view_name = $1 AND (NOT $3 OR f.view_version = $2 OR (f.view_version IS NULL AND $4)))",
						4, t, a, NULL, false);
		fs_online_drop_views(v->name, one_version ? v->version : 0);
		ndropped = fs_spi_exec("DELETE FROM feature_store.feature_view WHERE name = $1 AND (NOT $3 OR version = $2)",
							   4, t, a, NULL, false);
		fs_schedule_forget_view(v->name);
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	PG_RETURN_INT32((int32) ndropped);
}

/* fs_drop_service(name text): every version of "name", or one version of "name@N". */
Datum
fs_drop_service(PG_FUNCTION_ARGS)
{
	char	   *ref = fs_text_arg(fcinfo, 0, "feature service name");
	int32		version;
	char	   *name = fs_split_version("feature service", ref, &version);
	uint64		n;
	FsOwnerContext octx;

	SPI_connect();
	{
		Oid			t[2] = {TEXTOID, INT4OID};
		Datum		a[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};

		n = fs_spi_exec("SELECT DISTINCT registered_by FROM feature_store.feature_service "
						"WHERE name = $1 AND ($2 = 0 OR version = $2)", 2, t, a, NULL, true);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature service \"%s\" does not exist", ref)));
		for (uint64 i = 0; i < n; i++)
			fs_ddl_check_owner("feature service", name, fs_spi_text(i, 1, CurrentMemoryContext), GetUserId());
		fs_owner_context_enter(&octx);
		fs_ddl_lock_registry();
		n = fs_spi_exec("DELETE FROM feature_store.feature_service WHERE name = $1 AND ($2 = 0 OR version = $2)",
						2, t, a, NULL, false);
		fs_owner_context_leave(&octx);
	}
	SPI_finish();
	/* its skew check job goes with its last version (unless a view of that name remains) */
	fs_schedule_forget_view(name);
	PG_RETURN_INT32((int32) n);
}

/* fs_drop_entity(name text): only while no feature view uses it. */
Datum
fs_drop_entity(PG_FUNCTION_ARGS)
{
	char	   *name = fs_text_arg(fcinfo, 0, "entity name");
	FsOwnerContext octx;

	SPI_connect();
	{
		Oid			t[1] = {TEXTOID};
		Datum		a[1] = {CStringGetTextDatum(name)};

		if (fs_spi_exec("SELECT registered_by FROM feature_store.entity WHERE name = $1", 1, t, a, NULL, true) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("entity \"%s\" does not exist", name)));
		fs_ddl_check_owner("entity", name, fs_spi_text(0, 1, CurrentMemoryContext), GetUserId());
		fs_owner_context_enter(&octx);
		fs_ddl_lock_registry();
		if (fs_spi_exec("SELECT DISTINCT name FROM feature_store.feature_view WHERE entity = $1 ORDER BY 1",
						1, t, a, NULL, false) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop entity \"%s\" because feature view \"%s\" uses it",
							name, fs_spi_text(0, 1, CurrentMemoryContext)),
					 errhint("Drop the feature views of this entity first.")));
		fs_spi_exec("DELETE FROM feature_store.entity WHERE name = $1", 1, t, a, NULL, false);
		fs_owner_context_leave(&octx);
	}
	SPI_finish();
	PG_RETURN_VOID();
}
