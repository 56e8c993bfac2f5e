/*
 * online_agg_cache.h — the write side of cached aggregation answers (online_agg_cache.c): the
 * source's key triggers of online mode 'stream', and the readers' check that they fire.
 */
#ifndef FS_ONLINE_AGG_CACHE_H
#define FS_ONLINE_AGG_CACHE_H

#include "postgres.h"

#include "registry.h"

/* From _PG_init: counts relcache invalidations of sources (fs_agg_source_epoch). */
extern void fs_agg_cache_init(void);

/*
 * Accepts pending invalidation messages, then returns a number that changes whenever the
 * relation (or some relation sharing its bucket) was invalidated since.
 */
extern uint32 fs_agg_source_epoch(Oid relid);

/*
 * Installs the key triggers on the view's source (caller: SPI connected, extension owner
 * context); false when the source is not a plain table (answers are then computed at each
 * lookup) or the extension's SQL predates them.
 */
extern bool fs_agg_cache_create_triggers(FsView *v);
/* Removes them (when present). */
extern void fs_agg_cache_drop_triggers(FsView *v);

/*
 * May answers of the view be cached (slot: its cache slot)? True when the source is a plain
 * table without inheritance children or row-level security and both triggers fire always on
 * the current key columns; a change of the triggers since the slot last saw them first gives
 * the view a new generation.
 */
extern bool fs_agg_cache_check(FsView *v, Oid relid, int slot);

#endif
