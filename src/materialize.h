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
 * SQL of the set-based upsert: for every entity among the rows of from_item (alias s) that
 * satisfy `where` (which may use $n parameters), its latest row passing the view's checks,
 * written only where it is strictly newer (event, created) than the row already online.
 */
extern char *fs_mat_upsert_sql(FsView *v, const char *from_item, const char *where);

/* fs_materialize's work: a 'batch' run of [start, end] (rules as of end), logged. */
extern uint64 fs_materialize_window(FsView *v, TimestampTz start, TimestampTz end);

/*
 * Called by fs_set_online_mode after the registry row changed (same transaction, no SPI
 * connection open): installs or drops the streaming triggers, resets the watermark when the
 * view goes off, and refills the online table when it comes back on.
 */
extern void fs_mat_mode_changed(FsView *v, const char *old_mode, const char *new_mode);

/* Drops the streaming triggers of a view version (inside the caller's SPI + owner context). */
extern void fs_stream_drop_triggers(FsView *v);
extern void fs_stream_create_triggers(FsView *v);
/* The replica row trigger of a streaming view, when missing (same context). */
extern void fs_stream_create_replica_trigger(FsView *v);

/* TRIGGER privilege on the source (insufficient_privilege otherwise). */
extern void fs_stream_check_privilege(FsView *v);

/* GUC feature_store.watermark_lag; from _PG_init. */
extern void fs_materialize_init(void);

/* Appends the ON CONFLICT ... WHERE strictly-newer clause of a write into v's online table (alias o). */
extern void fs_mat_append_upsert(StringInfo sql, FsView *v);

#endif
