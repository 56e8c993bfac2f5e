/*
 * online_meta.h — per-backend cache of what serving needs from the registry: every view
 * version with its key input functions, online table, prepared read plan and the caller's
 * privilege on its source; resolved feature services. Rebuilt after registry changes
 * (transactional invalidation), privileges re-checked after pg_class / role changes.
 */
#ifndef FS_ONLINE_META_H
#define FS_ONLINE_META_H

#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"

#include "registry.h"

typedef struct FsOnlineView
{
	FsView	   *view;			/* registry description (name, entity, features, ttl ...) */
	bool		online;			/* online_mode <> 'off' */
	Oid			online_relid;	/* InvalidOid until the online table exists */
	FmgrInfo	key_in[FS_MAX_KEYS];
	Oid			key_ioparam[FS_MAX_KEYS];
	int16		key_len[FS_MAX_KEYS];
	bool		key_byval[FS_MAX_KEYS];
	SPIPlanPtr	read_plan;		/* keyed read of one online row, built on first use */
	SPIPlanPtr	batch_plan;		/* read of many rows (key arrays), built on first use */
	char		key_align[FS_MAX_KEYS];
	int			cache_slot;		/* hint, -1 unknown */
	void	   *payload_tmpl;	/* online_payload.c's jsonb skeleton, built on first use */
	uint64		priv_epoch;		/* privilege cache: valid while epoch and user match */
	Oid			priv_user;
	bool		priv_ok;
	void	   *agg_state;		/* aggregation views: online_agg.c's prepared read, built on first use */
	void		(*agg_free) (struct FsOnlineView *ov);	/* frees agg_state (set with it) */
} FsOnlineView;

/* One resolved feature of a service: its view and the index of the feature in it. */
typedef struct FsServiceFeature
{
	FsOnlineView *ov;
	int			feature_index;
} FsServiceFeature;

struct FsTransform;

typedef struct FsService
{
	char	   *name;
	int			nfeatures;
	FsServiceFeature *features;
	int		   *fpos;			/* position of each feature in the service's list */
	int			ntransforms;	/* transforms of the service (transform.h), with their positions */
	struct FsTransform **transforms;
	int		   *tpos;
} FsService;

/* Makes sure the cache reflects the registry; call once at the start of each call. */
extern void fs_meta_ensure(void);
extern int	fs_meta_nviews(void);
extern FsOnlineView *fs_meta_view(int i);
/* "name" (latest) or "name@N"; NULL when no such view. */
extern FsOnlineView *fs_meta_find_view(const char *ref);
/* Resolved service (errors like fs_resolve_feature_ref); NULL when no such service. */
extern FsService *fs_meta_find_service(const char *ref);
/* Registered entities (cached with the views): exists, and the closest name to a misspelled one. */
extern bool fs_meta_entity_exists(const char *name);
extern const char *fs_meta_entity_like(const char *name);
/* Privilege on the source, cached. */
extern bool fs_meta_can_select(FsOnlineView *ov);
extern MemoryContext fs_meta_context(void);
/* Changes whenever the registry may have changed (transform.c keeps its cache by it). */
extern uint64 fs_meta_epoch(void);

#endif
