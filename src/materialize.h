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

/*
 * One chunk of a backfill (backfill.c): fs_materialize's window [start, end] (rules as of end)
 * restricted to the entities whose key falls in chunk `chunk` of `nchunks` (feature_store.key_chunk),
 * logged as a 'backfill' run; quarantines the whole window's failing rows when asked. Returns
 * the rows written. Caller: privileges checked, online table may not exist yet.
 */
extern uint64 fs_materialize_chunk(FsView *v, TimestampTz start, TimestampTz end, int chunk, int nchunks,
								   bool quarantine);

/* GUC feature_store.watermark_lag; from _PG_init. */
extern void fs_materialize_init(void);

#endif
