/*
 * online_serve.h — what the serving calls share (online_serve.c: the plan of a call and the
 * shaping of its answer; online_serve_batch.c: the batch calls): the views and features a call
 * serves, and the layout of a vector.
 */
#ifndef FS_ONLINE_SERVE_H
#define FS_ONLINE_SERVE_H

#include "postgres.h"

#include "utils/array.h"
#include "utils/jsonb.h"

#include "online_cache.h"
#include "online_meta.h"
#include "online_read.h"

/* What one call serves: views, and per view either all features or a subset (services). */
typedef struct Target
{
	FsOnlineView *ov;
	int			nfeat;			/* -1 = all features */
	int		   *feat;			/* feature indexes when nfeat >= 0 */
	TimestampTz cutoff;			/* TTL: event times before it are expired (if has_ttl) */
} Target;

typedef struct ServePlan
{
	int			ntargets;
	Target		targets[FS_CACHE_MAX_VIEWS];
	FsService  *service;		/* when a service was named (vector order) */
} ServePlan;

/* A vector's layout: the view and feature index of each element, in service (or view) order. */
typedef struct VecSpec
{
	int			n;
	FsOnlineView **fov;
	int		   *fidx;
} VecSpec;

/* fs_online(entity, name)'s answer, for callers in C (transform_serve.c); NULL: nothing found. */
extern Jsonb *fs_serve_one(FsEntityVal *e, const char *name);
/* The same with a request for the service's transforms. */
extern Jsonb *fs_serve_one_request(FsEntityVal *e, const char *name, Jsonb *req);

/* The plan of a call for an entity name and a view or service name (NULL: every view). */
extern void fs_serve_make_plan(ServePlan *p, const char *entity, const char *name);

/* The vector layout of a plan made from `name`; every feature must be numeric or boolean. */
extern void fs_serve_vec_spec(ServePlan *p, const char *name, VecSpec *vs);

/* The answers of a plan's rows (rows[t] of target t): a vector, or the jsonb object (NULL: none). */
extern ArrayType *fs_serve_build_vector(ServePlan *p, VecSpec *vs, FsOnlineRow *rows);
extern Jsonb *fs_serve_assemble(ServePlan *p, FsOnlineRow *rows);

#endif
