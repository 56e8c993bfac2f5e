/*
 * transform.h — on-demand features (transform.c): one SQL expression over request parameters
 * and input features, registered and versioned like views, compiled once per backend and
 * evaluated by the same code in training (transform_train.c) and serving (transform_serve.c).
 */
#ifndef FS_TRANSFORM_H
#define FS_TRANSFORM_H

#include "postgres.h"

#include "nodes/execnodes.h"
#include "nodes/params.h"
#include "utils/array.h"
#include "utils/jsonb.h"

typedef struct FsTransform
{
	int32		id;				/* feature_store.transform.transform_id */
	char	   *name;
	int32		version;
	char	   *expression;		/* as registered */
	int			nreq;			/* request parameters: names and declared types */
	char	  **req_names;
	Oid		   *req_types;
	int			ninputs;		/* input features: references as registered, their names and types */
	char	  **inputs;
	char	  **input_names;
	Oid		   *input_types;
	Oid			returns;
	char	   *registered_by;
	MemoryContext cxt;			/* holds this struct and its compiled state */
	/* compiled for the current role: parameters 1..nreq are the request, then the inputs */
	Oid			compiled_for;
	ExprState  *state;
	ExprContext *econtext;
	ParamListInfo params;
} FsTransform;

/*
 * "name" (latest) or "name@N"; NULL when there is no transform of that name (missing_ok), else
 * undefined_object. Compiled (for the current role) and cached in the backend by id: a version
 * never changes once registered.
 */
extern FsTransform *fs_transform_lookup(const char *ref, bool missing_ok);

/* Whether a reference (no ':') names a transform, without erroring. */
extern bool fs_transform_exists(const char *name);

/*
 * Where a view or service was expected: raises 42704 for a transform version that does not exist
 * and 22023 for a transform named without its request; returns when ref names no transform.
 */
extern void fs_transform_misnamed(const char *ref);

/*
 * Evaluates the expression: args[0..nreq) are the request parameters (declared types), then
 * the inputs (their features' types). The result (type t->returns) is copied into the caller's
 * memory context. Errors of the expression (division by zero, overflow) are raised as they are.
 */
extern Datum fs_transform_eval(FsTransform *t, const Datum *args, const bool *nulls, bool *isnull);

struct FsService;
struct FsEntityVal;

/*
 * A service's answer (features: the jsonb of its features, NULL when none was found) with its
 * transforms' values added for the request (NULL: none given); NULL when there is nothing.
 */
extern Jsonb *fs_transform_serve_service(struct FsService *s, struct FsEntityVal *e, Jsonb *req, Jsonb *features);

/*
 * A service's vector (features: the vector of its features, nfeatures long, NULL when none was
 * found) with its transforms' values inserted at their positions.
 */
extern ArrayType *fs_transform_vector(struct FsService *s, struct FsEntityVal *e, Jsonb *req,
									  ArrayType *features, int nfeatures);

/* fs_online_batch(entities, name, requests); the two-argument form calls it for services with transforms. */
extern Datum fs_online_batch_request(PG_FUNCTION_ARGS);

#endif
