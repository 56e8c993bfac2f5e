/*
 * runlog.h — every materialization run (batch, incremental, scheduled, streaming
 * micro-batch) is recorded in feature_store.materialization_run.
 *
 * A successful run's record is written in the run's own transaction, so it commits (or
 * aborts) with the data it describes. A failed run's record is written by a short-lived
 * background worker in its own transaction, so it survives the rollback of the failed work;
 * the original error is then re-raised, so callers (and pg_cron) see the failure.
 *
 * Usage by a materialization path:
 *
 *     static uint64 my_work(void *arg, int64 run_id, uint64 *quarantined) { ... }
 *     n = fs_run_logged(v, "batch", start, end, my_work, &state);
 *
 * my_work runs in a subtransaction; it returns the rows written and sets *quarantined
 * (typically from fs_quarantine_window(v, &w, run_id, NULL)). Pass DT_NOBEGIN / DT_NOEND for
 * an open side of the window (recorded as NULL).
 */
#ifndef FS_RUNLOG_H
#define FS_RUNLOG_H

#include "postgres.h"
#include "datatype/timestamp.h"

#include "registry.h"

typedef uint64 (*FsRunWork) (void *arg, int64 run_id, uint64 *quarantined);

typedef struct FsRun
{
	int64		run_id;
	FsView	   *view;
	char		kind[16];
	TimestampTz window_start;
	TimestampTz window_end;
	TimestampTz started_at;
	Oid			userid;
} FsRun;

/* Allocates a run id and notes the start time; writes nothing yet. kind: see FS_RUN_KINDS. */
extern FsRun *fs_run_begin(FsView *v, const char *kind, TimestampTz start, TimestampTz end);

/* Records success in the current transaction. */
extern void fs_run_finish_success(FsRun *run, uint64 rows_written, uint64 rows_quarantined);

/*
 * Records failure durably (autonomous transaction in a background worker). Never raises:
 * if no worker can be started, or it fails, emits a WARNING with the run and its error.
 */
extern void fs_run_finish_error(FsRun *run, ErrorData *edata);

/* begin + work in a subtransaction + finish; re-raises the work's error after logging it. */
extern uint64 fs_run_logged(FsView *v, const char *kind, TimestampTz start, TimestampTz end,
							FsRunWork work, void *arg);

/*
 * The kind an incremental materialization should log: "scheduled" when running as a pg_cron
 * job (application_name pg_cron, or a pg_cron background worker), else "incremental".
 */
extern const char *fs_run_incremental_kind(void);

/* Entry point of the background worker that writes a failed run's record. */
extern PGDLLEXPORT void fs_runlog_worker_main(Datum main_arg);

#endif
