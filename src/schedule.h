/*
 * schedule.h — scheduled incremental materialization through pg_cron: one cron job per
 * feature view, named "feature_store:<view>", recorded in feature_store.schedule.
 */
#ifndef FS_SCHEDULE_H
#define FS_SCHEDULE_H

#include "postgres.h"

/*
 * Called by fs_drop_view after deleting versions of view_name: once no version is left,
 * removes the view's cron job (if pg_cron is still installed) and its schedule row. The caller
 * has already checked that the current user owns the view.
 */
extern void fs_schedule_forget_view(const char *view_name);

#endif
