/*
 * registry.c — reading the feature registry from C: entities, feature views (any version),
 * feature references and services, resolved into the structs of registry.h.
 *
 * Reads go through SPI on the registry tables under the caller's snapshot, so a lookup sees
 * exactly what the caller's transaction sees (including its own uncommitted registrations).
 * Results are allocated in the caller's memory context.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "agg.h"
#include "registry.h"
#include "spi_util.h"

bool
fs_is_valid_name(const char *name)
{
	size_t		len = strlen(name);
	bool		ok = len > 0 && len < NAMEDATALEN &&
		((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_');

	for (size_t i = 1; ok && i < len; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '_';
	return ok;
}

void
fs_check_name(const char *kind, const char *name)
{
	if (!fs_is_valid_name(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid %s name \"%s\"", kind, name),
				 errdetail("Names must start with a letter or underscore, contain only ASCII letters, digits and underscores, and be at most %d characters long.",
						   NAMEDATALEN - 1)));
}

/*
 * Splits "name@N" into name and version (0 when absent, meaning the latest).
 */
char *
fs_split_version(const char *kind, const char *ref, int32 *version)
{
	const char *at = strchr(ref, '@');
	char	   *name;

	*version = 0;
	if (at == NULL)
		return pstrdup(ref);
	name = pnstrdup(ref, at - ref);
	{
		char	   *end;
		long		v;

		errno = 0;
		v = strtol(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || errno != 0 || v < 1 || v > PG_INT32_MAX ||
			!(at[1] >= '0' && at[1] <= '9'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid version in %s reference \"%s\"", kind, ref),
					 errhint("Write name@N with N a positive integer, or just name for the latest version.")));
		*version = (int32) v;
	}
	return name;
}

FsEntity *
fs_lookup_entity(const char *name, bool missing_ok)
{
	MemoryContext cxt = CurrentMemoryContext;
	FsEntity   *e = NULL;
	Oid			types[1] = {TEXTOID};
	Datum		vals[1] = {CStringGetTextDatum(name)};

	SPI_connect();
	if (fs_spi_exec("SELECT join_keys, key_types::oid[] FROM feature_store.entity WHERE name = $1",
					1, types, vals, NULL, true) == 1)
	{
		bool		isnull;
		Datum	   *keys;
		int			nkeys;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		e = palloc0(sizeof(FsEntity));
		e->name = pstrdup(name);
		deconstruct_array(DatumGetArrayTypeP(fs_spi_datum(0, 1, &isnull)), TEXTOID, -1, false,
						  TYPALIGN_INT, &keys, NULL, &nkeys);
		e->nkeys = nkeys;
		for (int i = 0; i < nkeys && i < FS_MAX_KEYS; i++)
			e->keys[i] = TextDatumGetCString(keys[i]);
		{
			Datum		tarr = fs_spi_datum(0, 2, &isnull);

			if (!isnull)
			{
				Datum	   *tv;
				int			nt;

				deconstruct_array(DatumGetArrayTypeP(tarr), OIDOID, sizeof(Oid), true,
								  TYPALIGN_INT, &tv, NULL, &nt);
				for (int i = 0; i < nt && i < FS_MAX_KEYS; i++)
					e->key_types[i] = DatumGetObjectId(tv[i]);
			}
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	if (e == NULL && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("entity \"%s\" does not exist", name),
				 errhint("Register it first with fs_register_entity(name, join_keys).")));
	return e;
}

/*
 * Fills a view from the SPI result row 0 of VIEW_COLUMNS, then reads its features.
 */
#define VIEW_COLUMNS_FMT \
	"SELECT v.view_id, v.name, v.version, " \
	"       v.version = (SELECT max(l.version) FROM feature_store.feature_view l WHERE l.name = v.name), " \
	"       v.source_schema, v.source_name, v.entity, v.event_time, v.created_time, v.ttl, " \
	"       v.online_mode, v.registered_by, %s " \
	"FROM feature_store.feature_view v "
#define VIEW_COLUMNS (psprintf(VIEW_COLUMNS_FMT, fs_registry_has_aggs() ? \
							   "v.kind, v.filter, v.hop, v.state = 'ready', " \
							   "v.version = coalesce((SELECT max(l.version) FROM feature_store.feature_view l " \
							   "                      WHERE l.name = v.name AND l.state = 'ready'), " \
							   "                     (SELECT max(l.version) FROM feature_store.feature_view l WHERE l.name = v.name)) " : \
							   "'latest'::text, NULL::text, NULL::interval, true, " \
							   "v.version = (SELECT max(l.version) FROM feature_store.feature_view l WHERE l.name = v.name) "))

static FsView *
view_from_spi(MemoryContext cxt)
{
	FsView	   *v = MemoryContextAllocZero(cxt, sizeof(FsView));
	bool		isnull;
	Datum		ttl;
	char	   *entity;

	v->view_id = fs_spi_int32(0, 1, 0);
	v->name = fs_spi_text(0, 2, cxt);
	v->version = fs_spi_int32(0, 3, 0);
	v->is_latest = fs_spi_bool(0, 4, false);
	v->source_schema = fs_spi_text(0, 5, cxt);
	v->source_name = fs_spi_text(0, 6, cxt);
	entity = fs_spi_text(0, 7, cxt);
	v->event_time = fs_spi_text(0, 8, cxt);
	v->created_time = fs_spi_text(0, 9, cxt);
	ttl = fs_spi_datum(0, 10, &isnull);
	v->has_ttl = !isnull;
	if (!isnull)
		v->ttl = *DatumGetIntervalP(ttl);
	v->online_mode = fs_spi_text(0, 11, cxt);
	v->registered_by = fs_spi_text(0, 12, cxt);
	v->is_agg = strcmp(fs_spi_text(0, 13, CurrentMemoryContext), "aggregate") == 0;
	v->filter = fs_spi_text(0, 14, cxt);
	{
		Datum		hop = fs_spi_datum(0, 15, &isnull);

		v->has_hop = !isnull;
		if (!isnull)
			v->hop_us = fs_agg_interval_us(DatumGetIntervalP(hop), "hop");
	}
	v->is_ready = fs_spi_bool(0, 16, true);
	v->is_serving = fs_spi_bool(0, 17, false);

	{
		Oid			types[1] = {INT4OID};
		Datum		vals[1] = {Int32GetDatum(v->view_id)};
		uint64		n = fs_spi_exec(fs_registry_has_aggs() ?
									"SELECT name, type::oid, position, agg_fn, agg_arg, agg_window "
									"FROM feature_store.view_feature "
									"WHERE view_id = $1 ORDER BY position" :
									"SELECT name, type::oid, position, NULL::text, NULL::name, NULL::interval "
									"FROM feature_store.view_feature "
									"WHERE view_id = $1 ORDER BY position",
									1, types, vals, NULL, true);

		v->nfeatures = (int) n;
		v->features = MemoryContextAllocZero(cxt, sizeof(FsFeature) * Max(n, 1));
		for (uint64 i = 0; i < n; i++)
		{
			v->features[i].name = fs_spi_text(i, 1, cxt);
			v->features[i].type = DatumGetObjectId(fs_spi_datum(i, 2, &isnull));
			v->features[i].position = fs_spi_int32(i, 3, 0);
		}
		if (v->is_agg)
		{
			v->aggs = MemoryContextAllocZero(cxt, sizeof(FsAggSpec) * Max(n, 1));
			for (uint64 i = 0; i < n; i++)
			{
				FsAggSpec  *sp = &v->aggs[i];
				Datum		w;

				sp->fn = (FsAggFn) fs_agg_fn_from_name(fs_spi_text(i, 4, CurrentMemoryContext));
				sp->arg = fs_spi_text(i, 5, cxt);
				sp->name = v->features[i].name;
				sp->result_type = v->features[i].type;
				w = fs_spi_datum(i, 6, &isnull);
				sp->lifetime = isnull;
				if (!isnull)
				{
					sp->window = *DatumGetIntervalP(w);
					sp->window_us = fs_agg_interval_us(&sp->window, "window");
				}
			}
		}
	}

	/* The entity lookup opens its own SPI connection; run it in the caller's context. */
	v->entity.name = entity;
	return v;
}

static void
fill_entity(FsView *v)
{
	FsEntity   *e = fs_lookup_entity(v->entity.name, false);

	v->entity = *e;
	v->source_relid = InvalidOid;
	{
		Oid			nsp = get_namespace_oid(v->source_schema, true);

		if (OidIsValid(nsp))
			v->source_relid = get_relname_relid(v->source_name, nsp);
	}
}

FsView *
fs_lookup_view_version(const char *name, int32 version, bool missing_ok)
{
	MemoryContext cxt = CurrentMemoryContext;
	FsView	   *v = NULL;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};

	SPI_connect();
	if (fs_spi_exec(psprintf("%s%s", VIEW_COLUMNS,
							 "WHERE v.name = $1 AND v.version = CASE WHEN $2 > 0 THEN $2 ELSE "
							 "  (SELECT max(l.version) FROM feature_store.feature_view l WHERE l.name = $1) END"),
					2, types, vals, NULL, true) == 1)
		v = view_from_spi(cxt);
	SPI_finish();

	if (v == NULL)
	{
		if (missing_ok)
			return NULL;
		if (version > 0 && fs_lookup_view_version(name, 0, true) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature view \"%s\" has no version %d", name, version),
					 errhint("See SELECT name, version FROM fs_views WHERE name = '%s'.", name)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("feature view \"%s\" does not exist", name),
				 errhint("See SELECT name, version FROM fs_views for the registered views.")));
	}
	fill_entity(v);
	return v;
}

FsView *
fs_lookup_view(const char *ref, bool missing_ok)
{
	int32		version;
	char	   *name = fs_split_version("feature view", ref, &version);

	return fs_lookup_view_version(name, version, missing_ok);
}

FsView *
fs_lookup_view_by_id(int32 view_id, bool missing_ok)
{
	MemoryContext cxt = CurrentMemoryContext;
	FsView	   *v = NULL;
	Oid			types[1] = {INT4OID};
	Datum		vals[1] = {Int32GetDatum(view_id)};

	SPI_connect();
	if (fs_spi_exec(psprintf("%s%s", VIEW_COLUMNS, "WHERE v.view_id = $1"), 1, types, vals, NULL, true) == 1)
		v = view_from_spi(cxt);
	SPI_finish();
	if (v == NULL)
	{
		if (!missing_ok)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature view with id %d does not exist", view_id)));
		return NULL;
	}
	fill_entity(v);
	return v;
}

Oid
fs_view_source_relid(FsView *view)
{
	if (!OidIsValid(view->source_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation \"%s.%s\" of feature view \"%s\" does not exist",
						view->source_schema, view->source_name, view->name),
				 errhint("Recreate the relation, or register the view again over its new source.")));
	return view->source_relid;
}

/* SELECT on the source, or on every column the view reads; row-level security not considered. */
static bool
can_select_columns(FsView *view)
{
	Oid			relid = fs_view_source_relid(view);
	Oid			user = GetUserId();
	bool		ok;

	if (pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK)
		return true;

	/* As a query would: SELECT on every column the view reads is enough (column privileges). */
#define COLUMN_OK(col) \
	(get_attnum(relid, (col)) > 0 && \
	 pg_attribute_aclcheck(relid, get_attnum(relid, (col)), user, ACL_SELECT) == ACLCHECK_OK)
	ok = COLUMN_OK(view->event_time) && (view->created_time == NULL || COLUMN_OK(view->created_time));
	for (int i = 0; ok && i < view->entity.nkeys; i++)
		ok = COLUMN_OK(view->entity.keys[i]);
	for (int i = 0; ok && i < view->nfeatures; i++)
		ok = view->is_agg ? (view->aggs[i].arg == NULL || COLUMN_OK(view->aggs[i].arg))
			: COLUMN_OK(view->features[i].name);
#undef COLUMN_OK
	/* a filter may read any column: then every column must be readable */
	if (ok && view->filter != NULL)
		ok = pg_attribute_aclcheck_all(relid, user, ACL_SELECT, ACLMASK_ALL) == ACLCHECK_OK;
	return ok;
}

/*
 * Whether row-level security filters the current user's reads of the source (not its owner
 * unless FORCE, not a BYPASSRLS role). With row_security = off this is still true: the user
 * may not see every row.
 */
static bool
rls_applies(FsView *view)
{
	return check_enable_rls(fs_view_source_relid(view), InvalidOid, true) == RLS_ENABLED;
}

bool
fs_can_select_view(FsView *view)
{
	return can_select_columns(view) && !rls_applies(view);
}

void
fs_check_view_select_filtered(FsView *view)
{
	if (!can_select_columns(view))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for feature view \"%s\"", view->name),
				 errdetail("Reading a feature view's data requires SELECT on its source \"%s.%s\".",
						   view->source_schema, view->source_name)));
}

void
fs_check_view_select(FsView *view)
{
	fs_check_view_select_filtered(view);
	if (rls_applies(view))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for feature view \"%s\"", view->name),
				 errdetail("Row-level security on its source \"%s.%s\" applies to role \"%s\", and the online store, materialization, validation and quarantine hold every entity's rows, unfiltered.",
						   view->source_schema, view->source_name, GetUserNameFromId(GetUserId(), false)),
				 errhint("Training sets apply the policies (fs_point_in_time_join). Online features of this view are for roles that bypass its row-level security (the source's owner, or BYPASSRLS).")));
}

/*
 * Appends one reference to acc (a List of FsFeatureRef *), erroring on duplicates.
 * Views already resolved in acc are reused so that one call sees one FsView per version.
 */
static List *
append_ref(List *acc, FsView *view, int idx, bool pinned)
{
	ListCell   *lc;

	foreach(lc, acc)
	{
		FsFeatureRef *r = lfirst(lc);

		if (r->view->view_id == view->view_id && r->feature_index == idx)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("feature \"%s:%s\" is referenced more than once",
							view->name, view->features[idx].name)));
	}
	{
		FsFeatureRef *r = palloc(sizeof(FsFeatureRef));

		r->view = view;
		r->feature_index = idx;
		r->pinned = pinned;
		return lappend(acc, r);
	}
}

static FsView *
find_or_lookup_view(List *acc, const char *name, int32 version)
{
	ListCell   *lc;
	FsView	   *v;

	foreach(lc, acc)
	{
		FsFeatureRef *r = lfirst(lc);

		if (strcmp(r->view->name, name) == 0 &&
			(version > 0 ? r->view->version == version : r->view->is_latest))
			return r->view;
	}
	v = fs_lookup_view_version(name, version, false);
	return v;
}

static int
find_feature(FsView *v, const char *feature, bool missing_ok)
{
	for (int i = 0; i < v->nfeatures; i++)
		if (strcmp(v->features[i].name, feature) == 0)
			return i;
	if (!missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("feature \"%s\" does not exist in feature view \"%s\" version %d",
						feature, v->name, v->version),
				 errhint("See SELECT feature FROM fs_features WHERE view = '%s' AND version = %d.",
						 v->name, v->version)));
	return -1;
}

static List *
expand_service(const char *ref, List *acc)
{
	MemoryContext cxt = CurrentMemoryContext;
	int32		version;
	char	   *name = fs_split_version("feature service", ref, &version);
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	uint64		n;
	int			found;
	char	  **views;
	int32	   *versions;
	char	  **feats;

	SPI_connect();
	found = (int) fs_spi_exec("SELECT 1 FROM feature_store.feature_service WHERE name = $1 "
							  "AND ($2 = 0 OR version = $2)", 2, types, vals, NULL, true);
	n = fs_spi_exec("SELECT f.view_name, f.view_version, f.feature "
					"FROM feature_store.feature_service s JOIN feature_store.service_feature f USING (service_id) "
					"WHERE s.name = $1 AND s.version = CASE WHEN $2 > 0 THEN $2 ELSE "
					"  (SELECT max(l.version) FROM feature_store.feature_service l WHERE l.name = $1) END "
					"ORDER BY f.position", 2, types, vals, NULL, true);
	views = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
	versions = MemoryContextAlloc(cxt, sizeof(int32) * Max(n, 1));
	feats = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		views[i] = fs_spi_text(i, 1, cxt);
		versions[i] = fs_spi_int32(i, 2, 0);
		feats[i] = fs_spi_text(i, 3, cxt);
	}
	SPI_finish();

	if (found == 0)
	{
		bool		is_view = strchr(ref, '@') == NULL && fs_lookup_view_version(name, 0, true) != NULL;

		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("feature service \"%s\" does not exist", ref),
				 is_view ? errhint("\"%s\" is a feature view; write \"%s:*\" for all its features.", name, name)
				 : errhint("Feature references look like view:feature, view:*, view@N:feature, or a feature service name.")));
	}
	for (uint64 i = 0; i < n; i++)
	{
		FsView	   *v = find_or_lookup_view(acc, views[i], versions[i]);
		int			idx = find_feature(v, feats[i], true);

		if (idx < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature service \"%s\" references feature \"%s:%s\", which version %d of the view does not have",
							ref, views[i], feats[i], v->version),
					 errhint("Pin the view version in the service (view@N:feature) or register the service again.")));
		acc = append_ref(acc, v, idx, versions[i] > 0);
	}
	return acc;
}

List *
fs_resolve_feature_ref(const char *ref, List *acc)
{
	const char *colon = strchr(ref, ':');
	char	   *viewref;
	const char *feature;
	int32		version;
	char	   *name;
	FsView	   *v;

	if (colon == NULL)
		return expand_service(ref, acc);

	viewref = pnstrdup(ref, colon - ref);
	feature = colon + 1;
	if (viewref[0] == '\0' || feature[0] == '\0' || strchr(feature, ':') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid feature reference \"%s\"", ref),
				 errhint("Feature references look like view:feature, view:*, view@N:feature, or a feature service name.")));
	name = fs_split_version("feature view", viewref, &version);
	v = find_or_lookup_view(acc, name, version);

	if (strcmp(feature, "*") == 0)
	{
		for (int i = 0; i < v->nfeatures; i++)
			acc = append_ref(acc, v, i, version > 0);
		return acc;
	}
	return append_ref(acc, v, find_feature(v, feature, false), version > 0);
}

List *
fs_resolve_feature_refs(ArrayType *refs)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *acc = NIL;

	if (ARR_NDIM(refs) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("feature references must be a one-dimensional array")));
	deconstruct_array(refs, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no features given"),
				 errhint("Pass at least one feature reference, such as 'view:feature' or 'view:*'.")));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("feature reference must not be null")));
		acc = fs_resolve_feature_ref(TextDatumGetCString(elems[i]), acc);
	}
	return acc;
}

/* See registry.h. At most 50 names: a detail line is read, not searched. */
char *
fs_column_names(TupleDesc desc)
{
	StringInfoData s;
	int			shown = 0;
	int			more = 0;

	initStringInfo(&s);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped)
			continue;
		if (shown == 50)
		{
			more++;
			continue;
		}
		appendStringInfo(&s, "%s%s", shown ? ", " : "", quote_identifier(NameStr(a->attname)));
		shown++;
	}
	if (more > 0)
		appendStringInfo(&s, " and %d more", more);
	if (shown == 0)
		appendStringInfoString(&s, "(none)");
	return s.data;
}

char *
fs_relation_column_names(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	char	   *s = fs_column_names(RelationGetDescr(rel));

	relation_close(rel, AccessShareLock);
	return s;
}

/* See registry.h. */
void
fs_check_not_agg(FsView *v, const char *what)
{
	if (v->is_agg)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot %s aggregation view \"%s\"", what, v->name),
				 errdetail("An aggregation view's values are computed from its source at each lookup and in each training set; nothing is materialized."),
				 errhint("Serve it with fs_online and train with fs_point_in_time_join as they are.")));
}

/* See registry.h. */
bool
fs_registry_has_aggs(void)
{
	Oid			nsp = get_namespace_oid("feature_store", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("feature_view", nsp) : InvalidOid;

	return OidIsValid(rel) && get_attnum(rel, "kind") != InvalidAttrNumber;
}
