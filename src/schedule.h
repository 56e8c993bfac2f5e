/*
 * schedule.h — scheduled incremental materialization through pg_cron: one cron job per
 * feature view, named "feature_store:<view>" ("feature_store@<database>:<view>" when the
 * extension's database is not pg_cron's), recorded in feature_store.schedule.
 */
#ifndef FS_SCHEDULE_H
#define FS_SCHEDULE_H

#include "postgres.h"

/*
 * Called by fs_drop_view and fs_drop_service after deleting versions of view_name: once no
 * version is left, removes the cron jobs (if pg_cron is still installed) and schedule rows of
 * that name (a skew check job only once neither a view nor a service has it). The caller has
 * already checked that the current user owns what was dropped.
 */
extern void fs_schedule_forget_view(const char *view_name);

/* Jobs of a database other than pg_cron's (schedule_remote.c). */
extern void fs_schedule_init(void);
extern const char *fs_cron_database(void);
extern bool fs_cron_is_remote(void);
extern char *fs_cron_remote_job_name(const char *base);
extern int64 fs_cron_remote_schedule(const char *job_name, const char *schedule, const char *command,
									 int64 prev_job_id);
extern void fs_cron_remote_unschedule(int64 job_id);
PGDLLEXPORT void fs_cron_remote_main(Datum main_arg);

#endif
