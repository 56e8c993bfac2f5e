/*
 * online_table.h — the durable online tables (one per online view version: the latest row per
 * entity), their change triggers, and the commit-time signal that keeps the cache in step.
 */
#ifndef FS_ONLINE_TABLE_H
#define FS_ONLINE_TABLE_H

#include "postgres.h"
#include "registry.h"

#define FS_ONLINE_EVENT_COL		"__event_ts"
#define FS_ONLINE_CREATED_COL	"__created_ts"

/* feature_store."online_<view_id>" or InvalidOid when it does not exist. */
extern Oid	fs_online_table_relid(int32 view_id);
extern char *fs_online_table_qualname(int32 view_id);

/* Creates the view version's online table if missing (as the extension owner); returns it. */
extern Oid	fs_online_ensure_table(FsView *view);

/* A writer that fires no trigger on the online table tells the cache protocol here. */
extern void fs_online_mark_written(int32 view_id);
/* ... or, when it changed only some keys, each changed key's cache hash (fs_read_key_hash_slot). */
extern void fs_online_mark_key_written(int32 view_id, uint64 hash);

/* ... or, when the view left the online store, frees its cache slot at commit. */
extern void fs_online_mark_dropped(int32 view_id);

/* Replaces the change triggers of the view's online table by those of online mode `mode`. */
extern void fs_online_set_change_triggers(FsView *v, const char *mode);

/* True when this transaction changed the online table of the view (cache must be bypassed). */
extern bool fs_online_written_in_xact(int32 view_id);

/* Tells every backend's registry cache (and the worker) that the registry changed. */
extern void fs_registry_changed(void);

extern void fs_online_table_init(void);

#endif
