/*
 * schedule.h — scheduled incremental materialization through pg_cron: one cron job per
 * feature view, named "feature_store:<view>", recorded in feature_store.schedule.
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

#endif
