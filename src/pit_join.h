/*
 * pit_join.h — the point-in-time join engine (docs/semantics.md), shared by the set-returning
 * fs_point_in_time_join and by fs_create_training_set, which writes the same rows into a table.
 */
#ifndef FS_PIT_JOIN_H
#define FS_PIT_JOIN_H

#include "postgres.h"
#include "access/tupdesc.h"
#include "nodes/pg_list.h"
#include "utils/array.h"

typedef struct PitPlan PitPlan;

/* Receives one output row (spine columns, then features); values are valid during the call. */
typedef void (*PitEmitFn) (void *arg, Datum *values, bool *nulls);

/*
 * Resolves the feature references against the registry, validates the spine and every source
 * (columns, types, privileges) and returns a plan. All errors about bad input happen here,
 * before anything is read.
 */
extern PitPlan *pit_plan_create(Oid spine_relid, const char *spine_query, ArrayType *features,
								const char *spine_time, bool full_names, bool as_of_created);

/*
 * Asks pit_plan_execute to compute the spine's checksum (see pit_plan_spine_checksum); false
 * when a spine column's type has no extended hash function, so that no checksum can be given.
 */
extern bool pit_plan_want_checksum(PitPlan *plan);

/*
 * After pit_plan_execute: the spine's checksum as 16 hex digits, the sum modulo 2^64 of
 * hash_record_extended(row, 0) over its rows (order-independent); NULL when not computed.
 */
extern char *pit_plan_spine_checksum(PitPlan *plan);

/* Whether the spine is a temporary relation (its name is meaningless after the session). */
extern bool pit_plan_spine_is_temp(PitPlan *plan);

/* Output row type: spine columns (with their typmods and collations) then features. */
extern TupleDesc pit_plan_tupdesc(PitPlan *plan);

/* The resolved features, one "view@N:feature" string per output feature column. */
extern List *pit_plan_feature_refs(PitPlan *plan);

/* The distinct view versions used, as "view@N" strings, and their view_ids. */
extern List *pit_plan_view_versions(PitPlan *plan, List **view_ids);

/*
 * Optional, for a caller whose emit only stores the row: rows that arrive already formed (from
 * parallel workers) are handed over as a slot of the plan's row type, saving their deforming.
 */
struct TupleTableSlot;
typedef void (*PitEmitSlotFn) (void *arg, struct TupleTableSlot *slot);
extern void pit_plan_set_emit_slot(PitPlan *plan, PitEmitSlotFn fn);

/* Runs the join, calling emit once per spine row in spine order; returns the row count. */
extern uint64 pit_plan_execute(PitPlan *plan, PitEmitFn emit, void *arg);

/* Defines the join's GUCs (called from _PG_init). */
extern void pit_join_init(void);

/* Frees the plan's memory. */
extern void pit_plan_free(PitPlan *plan);

#endif
