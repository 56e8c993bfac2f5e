/*
 * registry.h — the feature registry as seen from C: resolved feature views, entities,
 * feature references and services. Other modules (pit_join, online, materialize) use these
 * lookups instead of reading the registry tables themselves.
 */
#ifndef FS_REGISTRY_H
#define FS_REGISTRY_H

#include "postgres.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#define FS_MAX_KEYS 8

typedef struct FsEntity
{
	char	   *name;
	int			nkeys;
	char	   *keys[FS_MAX_KEYS];		/* join key column names */
	Oid			key_types[FS_MAX_KEYS]; /* InvalidOid while not yet fixed */
} FsEntity;

typedef struct FsFeature
{
	char	   *name;
	Oid			type;
	int			position;		/* 1-based position within the view version */
} FsFeature;

typedef struct FsView
{
	int32		view_id;		/* id of this version's row */
	char	   *name;
	int32		version;
	bool		is_latest;
	bool		is_ready;		/* not 'backfilling' (fs_backfill not yet complete) */
	bool		is_serving;		/* the version "name" serves: the newest ready one (else the latest) */
	char	   *source_schema;
	char	   *source_name;
	Oid			source_relid;	/* resolved at lookup; InvalidOid if it no longer exists */
	FsEntity	entity;
	char	   *event_time;
	char	   *created_time;	/* NULL when the view has none */
	bool		has_ttl;
	Interval	ttl;
	char	   *online_mode;	/* "off", "batch" or "stream" */
	int			nfeatures;
	FsFeature  *features;
	char	   *registered_by;
	/* aggregation views (kind 'aggregate', agg.h): features are computed, not read */
	bool		is_agg;
	struct FsAggSpec *aggs;		/* per feature, when is_agg (arg_type resolved at use) */
	char	   *filter;			/* deparsed, qualified; NULL when none */
	bool		has_hop;
	int64		hop_us;
} FsView;

/* One concrete feature of one view version, the unit a training set or service is made of. */
typedef struct FsFeatureRef
{
	FsView	   *view;
	int			feature_index;	/* index into view->features */
	bool		pinned;			/* the reference named a version (view@N:...) */
} FsFeatureRef;

/* Validates a registry name (entity, view, service): an identifier without ':' or '@'. */
extern bool fs_is_valid_name(const char *name);
extern void fs_check_name(const char *kind, const char *name);

/* Resolves "view" (latest) or "view@N"; errors with undefined_object unless missing_ok. */
extern FsView *fs_lookup_view(const char *ref, bool missing_ok);
extern FsView *fs_lookup_view_version(const char *name, int32 version, bool missing_ok);
extern FsView *fs_lookup_view_by_id(int32 view_id, bool missing_ok);
extern FsEntity *fs_lookup_entity(const char *name, bool missing_ok);

/*
 * Errors with wrong_object_type when v is an aggregation view, whose values are computed at
 * each lookup and training set: `what` (materialize, validate ...) has nothing to work on.
 */
extern void fs_check_not_agg(FsView *v, const char *what);

/*
 * Whether the registry has the columns of aggregation views (0.3): the library also serves a
 * database still at an older version's schema until ALTER EXTENSION ... UPDATE.
 */
extern bool fs_registry_has_aggs(void);

/* Source relation of a view, checked to exist; errors with undefined_table otherwise. */
extern Oid	fs_view_source_relid(FsView *view);

/*
 * Expands feature references ("view:feature", "view:*", "view@N:feature", or a feature
 * service name, "service" / "service@N") into a List of FsFeatureRef, in order, without
 * duplicates. Views referenced twice resolve to the same FsView pointer.
 */
extern List *fs_resolve_feature_refs(ArrayType *refs);
extern List *fs_resolve_feature_ref(const char *ref, List *acc);

/*
 * Errors with insufficient_privilege unless the current user may SELECT the view's data, all of
 * it: row-level security that applies to the user on the source also denies, because the online
 * store, materialization, validation and quarantine hold every entity's rows, unfiltered.
 */
extern void fs_check_view_select(FsView *view);
extern bool fs_can_select_view(FsView *view);
/*
 * Splits "name@N" into name and version (0 when absent: the latest); a bad N is
 * invalid_parameter_value naming kind ("feature view", "feature service").
 */
extern char *fs_split_version(const char *kind, const char *ref, int32 *version);
/* The same privileges, for reads that apply row-level security themselves (training sets). */
extern void fs_check_view_select_filtered(FsView *view);

/*
 * "a, b, c": the (non-dropped) column names of a row type or relation, for the errdetail of a
 * missing column, so that a typo is seen at once; long lists end with "and N more".
 */
extern char *fs_column_names(TupleDesc desc);
extern char *fs_relation_column_names(Oid relid);

#endif
