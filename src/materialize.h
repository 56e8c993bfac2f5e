/*
 * materialize.h — batch and incremental materialization of a view's history into its online
 * table (checks applied, failing rows quarantined, every run logged), the durable watermark of
 * incremental runs, and the hook fs_set_online_mode calls when a view changes mode.
 */
#ifndef FS_MATERIALIZE_H
#define FS_MATERIALIZE_H

#include "postgres.h"
#include "datatype/timestamp.h"

#include "lib/stringinfo.h"
#include "registry.h"

struct TriggerData;

/*
 * Called by fs_set_online_mode after the registry row changed (same transaction, no SPI
 * connection open): installs or drops the streaming triggers, resets the watermark when the
 * view goes off, and refills the online table when it comes back on.
 */
extern void fs_mat_mode_changed(FsView *v, const char *old_mode, const char *new_mode);

/* GUC feature_store.watermark_lag; from _PG_init. */
extern void fs_materialize_init(void);

#endif
