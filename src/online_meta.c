/*
 * online_meta.c — see online_meta.h. The registry is read with SPI only when it changed: a
 * statement trigger on the registry tables (and the online-table DDL) sends a relcache
 * invalidation for feature_store.feature_view at commit; our relcache callback marks the
 * cache stale and the next call rebuilds it. A stale mark never frees memory in the middle of
 * a call: rebuilding happens only in fs_meta_ensure, at the start of a call.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "online_meta.h"
#include "transform.h"
#include "online_table.h"
#include "spi_util.h"

static MemoryContext meta_cxt = NULL;
static bool meta_valid = false;
static uint64 inval_count = 0;
static bool callbacks_registered = false;
static void register_callbacks(void);
static Oid	registry_relid = InvalidOid;
static uint64 priv_epoch = 1;
static FsOnlineView **views = NULL;
static int	nviews = 0;
static List *services = NIL;	/* FsService * */
static char **entities = NULL;	/* registered entity names, for telling a misspelled one */
static int	nentities = 0;

/* Registry changed (or the invalidation queue overflowed): rebuild at the next call. */
static void
relcache_cb(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == registry_relid)
	{
		meta_valid = false;
		inval_count++;
	}
}

/* pg_class or role membership changed: privileges and source OIDs must be looked up again. */
static void
syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	priv_epoch++;
}

/*
 * A number that changes whenever the registry may have changed (any of its tables' change
 * triggers, or an invalidation queue overflow), for caches kept beside this one.
 */
uint64
fs_meta_epoch(void)
{
	register_callbacks();
	return inval_count;
}

/* The context the registry cache lives in (reset on rebuild). */
MemoryContext
fs_meta_context(void)
{
	return meta_cxt;
}

/* Frees the cached registry and its prepared plans. */
static void
meta_reset(void)
{
	for (int i = 0; i < nviews; i++)
	{
		if (views[i]->read_plan)
			SPI_freeplan(views[i]->read_plan);
		if (views[i]->batch_plan)
			SPI_freeplan(views[i]->batch_plan);
		if (views[i]->agg_free)
			views[i]->agg_free(views[i]);
	}
	if (meta_cxt)
		MemoryContextReset(meta_cxt);
	views = NULL;
	nviews = 0;
	services = NIL;
	entities = NULL;
	nentities = 0;
}

/* Reads every view version once (with its key input functions) into meta_cxt. */
static void
meta_load(void)
{
	MemoryContext old;
	int32	   *ids;
	uint64		n;
	Oid			nsp;
	uint64		count_at_start = inval_count;

	meta_reset();
	nsp = get_namespace_oid("feature_store", true);
	registry_relid = OidIsValid(nsp) ? get_relname_relid("feature_view", nsp) : InvalidOid;
	if (!OidIsValid(registry_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"feature_store\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION feature_store.")));
	SPI_connect();
	n = fs_spi_exec("SELECT view_id FROM feature_store.feature_view ORDER BY name, version", 0, NULL, NULL, NULL, true);
	ids = MemoryContextAlloc(meta_cxt, sizeof(int32) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		ids[i] = fs_spi_int32(i, 1, 0);
	{
		uint64		ne = fs_spi_exec("SELECT name FROM feature_store.entity", 0, NULL, NULL, NULL, true);

		entities = MemoryContextAlloc(meta_cxt, sizeof(char *) * Max(ne, 1));
		for (uint64 i = 0; i < ne; i++)
		{
			bool		isnull;
			Datum		d = fs_spi_datum(i, 1, &isnull);

			if (!isnull)
				entities[nentities++] = MemoryContextStrdup(meta_cxt, TextDatumGetCString(d));
		}
	}
	SPI_finish();

	old = MemoryContextSwitchTo(meta_cxt);
	views = palloc0(sizeof(FsOnlineView *) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		FsView	   *v = fs_lookup_view_by_id(ids[i], true);
		FsOnlineView *ov;

		if (v == NULL)
			continue;
		ov = palloc0(sizeof(FsOnlineView));
		ov->view = v;
		ov->online = strcmp(v->online_mode, "off") != 0;
		ov->online_relid = fs_online_table_relid(v->view_id);
		ov->cache_slot = -1;
		for (int k = 0; k < v->entity.nkeys; k++)
		{
			Oid			infn;

			if (!OidIsValid(v->entity.key_types[k]))
				continue;
			getTypeInputInfo(v->entity.key_types[k], &infn, &ov->key_ioparam[k]);
			fmgr_info_cxt(infn, &ov->key_in[k], meta_cxt);
			get_typlenbyvalalign(v->entity.key_types[k], &ov->key_len[k], &ov->key_byval[k], &ov->key_align[k]);
		}
		views[nviews++] = ov;
	}
	MemoryContextSwitchTo(old);
	/* valid unless an invalidation arrived while loading (or loading failed) */
	meta_valid = inval_count == count_at_start;
}

/* Registers the invalidation callbacks once; rebuilds when stale. */
void
fs_meta_ensure(void)
{
	register_callbacks();
	if (!meta_valid)
		meta_load();
}

static void
register_callbacks(void)
{
	if (!callbacks_registered)
	{
		meta_cxt = AllocSetContextCreate(CacheMemoryContext, "feature_store online registry",
										 ALLOCSET_DEFAULT_SIZES);
		CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(RELOID, syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, syscache_cb, (Datum) 0);
		callbacks_registered = true;
	}
}

/* Accessors over the cached views. */
int
fs_meta_nviews(void)
{
	return nviews;
}

FsOnlineView *
fs_meta_view(int i)
{
	return views[i];
}

/* "name" (the serving version: newest ready) or "name@N" among the cached views, without SPI. */
FsOnlineView *
fs_meta_find_view(const char *ref)
{
	const char *at = strchr(ref, '@');
	size_t		len = at ? (size_t) (at - ref) : strlen(ref);
	int32		version = 0;

	if (at)
	{
		char	   *end;
		long		l = strtol(at + 1, &end, 10);

		if (at[1] == '\0' || *end != '\0' || l < 1 || l > PG_INT32_MAX)
			return NULL;
		version = (int32) l;
	}
	for (int i = 0; i < nviews; i++)
	{
		FsView	   *v = views[i]->view;

		if (strlen(v->name) == len && strncmp(v->name, ref, len) == 0 &&
			(version > 0 ? v->version == version : v->is_serving))
			return views[i];
	}
	return NULL;
}

/* Is an entity of this name registered? */
bool
fs_meta_entity_exists(const char *name)
{
	for (int i = 0; i < nentities; i++)
		if (strcmp(entities[i], name) == 0)
			return true;
	return false;
}

/* The registered entity name closest to `name` by edit distance (at most 2), or NULL. */
const char *
fs_meta_entity_like(const char *name)
{
	const char *best = NULL;
	int			bestd = 3;

	for (int i = 0; i < nentities; i++)
	{
		int			d = varstr_levenshtein_less_equal(name, strlen(name), entities[i], strlen(entities[i]),
													  1, 1, 1, bestd, true);

		if (d < bestd)
		{
			bestd = d;
			best = entities[i];
		}
	}
	return best;
}

/* A cached view by id. */
static FsOnlineView *
find_by_id(int32 view_id)
{
	for (int i = 0; i < nviews; i++)
		if (views[i]->view->view_id == view_id)
			return views[i];
	return NULL;
}

/*
 * An unpinned service feature resolves to the latest version (the training side); serving uses
 * the view's serving version instead, where that version has the feature with the same type (a
 * feature new in a version still backfilling is served from that version).
 */
static void
serving_version_of(FsServiceFeature *f)
{
	FsView	   *latest = f->ov->view;
	FsFeature  *feat = &latest->features[f->feature_index];

	if (latest->is_serving)
		return;
	for (int i = 0; i < nviews; i++)
	{
		FsView	   *v = views[i]->view;

		if (!v->is_serving || strcmp(v->name, latest->name) != 0)
			continue;
		for (int k = 0; k < v->nfeatures; k++)
			if (strcmp(v->features[k].name, feat->name) == 0 && v->features[k].type == feat->type)
			{
				f->ov = views[i];
				f->feature_index = k;
			}
		return;
	}
}

/* The positions of a service's features, and its transforms (a registry of 0.3 has them). */
static void
service_positions(FsService *s, const char *ref)
{
	const char *at = strchr(ref, '@');
	char	   *name = at ? pnstrdup(ref, at - ref) : pstrdup(ref);
	int32		version = at ? (int32) strtol(at + 1, NULL, 10) : 0;
	Oid			t[2] = {TEXTOID, INT4OID};
	Datum		a[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	const char *sid = "(SELECT service_id FROM feature_store.feature_service WHERE name = $1 "
		"AND version = CASE WHEN $2 > 0 THEN $2 ELSE (SELECT max(l.version) FROM feature_store.feature_service l WHERE l.name = $1) END)";
	uint64		n;
	char	  **tnames = NULL;
	MemoryContext caller = CurrentMemoryContext;	/* SPI_finish frees SPI's context */

	s->fpos = MemoryContextAllocZero(meta_cxt, sizeof(int) * Max(s->nfeatures, 1));
	SPI_connect();
	n = fs_spi_exec(psprintf("SELECT position FROM feature_store.service_feature WHERE service_id = %s ORDER BY position", sid),
					2, t, a, NULL, true);
	for (uint64 i = 0; i < n && i < (uint64) s->nfeatures; i++)
		s->fpos[i] = fs_spi_int32(i, 1, 0);
	if (fs_registry_has_aggs())
	{
		n = fs_spi_exec(psprintf("SELECT transform_name || coalesce('@' || transform_version, ''), position "
								 "FROM feature_store.service_transform WHERE service_id = %s ORDER BY position", sid),
						2, t, a, NULL, true);
		s->ntransforms = (int) n;
		s->tpos = MemoryContextAllocZero(meta_cxt, sizeof(int) * Max(n, 1));
		tnames = MemoryContextAlloc(caller, sizeof(char *) * Max(n, 1));
		for (uint64 i = 0; i < n; i++)
		{
			tnames[i] = fs_spi_text(i, 1, caller);
			s->tpos[i] = fs_spi_int32(i, 2, 0);
		}
	}
	SPI_finish();
	s->transforms = MemoryContextAllocZero(meta_cxt, sizeof(struct FsTransform *) * Max(s->ntransforms, 1));
	for (int i = 0; i < s->ntransforms; i++)
		s->transforms[i] = fs_transform_lookup(tnames[i], false);
}

/* Services are resolved once (through the registry's resolver) and kept until the registry changes. */
FsService *
fs_meta_find_service(const char *ref)
{
	ListCell   *lc;
	List	   *refs;
	FsService  *s;
	MemoryContext old;
	int			i = 0;

	foreach(lc, services)
	{
		s = lfirst(lc);
		if (strcmp(s->name, ref) == 0)
			return s;
	}
	/* not a service: let the caller report the unknown name */
	{
		const char *at = strchr(ref, '@');
		char	   *name = at ? pnstrdup(ref, at - ref) : pstrdup(ref);
		Oid			t[1] = {TEXTOID};
		Datum		a[1] = {CStringGetTextDatum(name)};
		uint64		n;

		SPI_connect();
		n = fs_spi_exec("SELECT 1 FROM feature_store.feature_service WHERE name = $1", 1, t, a, NULL, true);
		SPI_finish();
		if (n == 0)
			return NULL;
	}
	refs = fs_resolve_feature_ref(ref, NIL);
	old = MemoryContextSwitchTo(meta_cxt);
	s = palloc0(sizeof(FsService));
	s->name = pstrdup(ref);
	s->nfeatures = list_length(refs);
	s->features = palloc0(sizeof(FsServiceFeature) * Max(s->nfeatures, 1));
	foreach(lc, refs)
	{
		FsFeatureRef *r = lfirst(lc);

		s->features[i].ov = find_by_id(r->view->view_id);
		s->features[i].feature_index = r->feature_index;
		if (!r->pinned && s->features[i].ov != NULL)
			serving_version_of(&s->features[i]);
		if (s->features[i].ov == NULL)
			elog(ERROR, "feature view %d of service \"%s\" is not in the registry cache",
				 r->view->view_id, ref);
		i++;
	}
	MemoryContextSwitchTo(old);
	service_positions(s, ref);
	old = MemoryContextSwitchTo(meta_cxt);
	services = lappend(services, s);
	MemoryContextSwitchTo(old);
	return s;
}

/* SELECT on the view's source for the current user, re-checked after pg_class or role changes. */
bool
fs_meta_can_select(FsOnlineView *ov)
{
	Oid			user = GetUserId();

	if (ov->priv_epoch != priv_epoch || ov->priv_user != user)
	{
		FsView	   *v = ov->view;
		Oid			nsp = get_namespace_oid(v->source_schema, true);

		v->source_relid = OidIsValid(nsp) ? get_relname_relid(v->source_name, nsp) : InvalidOid;
		ov->priv_ok = OidIsValid(v->source_relid) && fs_can_select_view(v);
		ov->priv_user = user;
		ov->priv_epoch = priv_epoch;
	}
	return ov->priv_ok;
}
