/*
 * pit_join_int.h — figures of the last point-in-time join in this backend, kept so that
 * fs_point_in_time_join_stats() can show how a join ran (batches, memory) to tests and benchmarks.
 */
#ifndef FS_PIT_JOIN_INT_H
#define FS_PIT_JOIN_INT_H

#include "postgres.h"

typedef struct PitStats
{
	uint64		spine_rows;
	uint64		batch_rows;		/* spine rows per batch */
	int			batches;
	uint64		source_rows;	/* history rows read, over all batches and views */
	Size		peak_bytes;		/* peak memory of the join's context */
	double		phase_ms[5];
	double		winners_ms;		/* part of phase 2: reading the winning rows' features */
	int			scanned_leaves;	/* relations read sequentially (per batch) */
	int			probed_leaves;	/* relations probed through a key index (per batch) */	/* read spine, build, scan, merge, emit */
} PitStats;

extern PitStats pit_last_stats;

#endif
