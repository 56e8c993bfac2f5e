/*
 * transform_train.h — transforms in the feature lists of training sets (transform_train.c):
 * the join computes features and the transforms' inputs; each emitted row gets the transforms'
 * values in the order asked.
 */
#ifndef FS_TRANSFORM_TRAIN_H
#define FS_TRANSFORM_TRAIN_H

#include "postgres.h"

#include "utils/array.h"

#include "pit_join.h"

typedef struct FsTransformTrain FsTransformTrain;

/*
 * The feature list the join computes: the references asked for, then the transforms' inputs not
 * among them. *tt is NULL (and features returned as they are) when no element is a transform.
 */
extern ArrayType *fs_transform_train_split(ArrayType *features, FsTransformTrain **tt);

/* The training set's columns (spine, then features and transforms as asked), once planned. */
extern TupleDesc fs_transform_train_bind(FsTransformTrain *tt, PitPlan *plan);

/* Rows of the join through the transforms to `inner`: pass fs_transform_train_emit and tt. */
extern void fs_transform_train_set_emit(FsTransformTrain *tt, PitEmitFn inner, void *arg);
extern void fs_transform_train_emit(void *arg, Datum *values, bool *nulls);

#endif
