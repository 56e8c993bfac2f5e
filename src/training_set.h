/*
 * training_set.h — the SQL functions of training sets (training_set.c): fs_point_in_time_join,
 * fs_training_columns, fs_create_training_set and its lineage; the columnar form
 * (training_columnar.c) shares their argument handling.
 */
#ifndef FS_TRAINING_SET_H
#define FS_TRAINING_SET_H

#include "fmgr.h"
#include "pit_join.h"
#include "transform_train.h"

/* Installs the hint for a point-in-time join called without a column definition list (_PG_init). */
extern void fs_training_set_init(void);

/*
 * The arguments every form shares (spine, features, spine_time, full_names, as_of_created, the
 * first nshared of them from argument `first` on, then spine_query), checked and planned.
 */
extern PitPlan *fs_training_plan_from_args(FunctionCallInfo fcinfo, int first, int nshared,
										   FsTransformTrain **tt);

/* The training set's columns: the join's, or with transforms, the transforms' binding. */
extern TupleDesc fs_training_plan_desc(PitPlan *plan, FsTransformTrain *tt);

/* Runs the join, its rows through the transforms when there are any; returns the row count. */
extern uint64 fs_training_plan_run(PitPlan *plan, FsTransformTrain *tt, PitEmitFn emit, void *arg);

#endif
