/*
 * online_agg.h — serving aggregation views (online_agg.c): the row of one key, computed from the
 * source at the transaction's now() by the evaluator training uses.
 */
#ifndef FS_ONLINE_AGG_H
#define FS_ONLINE_AGG_H

#include "postgres.h"

#include "online_meta.h"
#include "online_read.h"

/*
 * Fills row (always found) with {"view": {"feature": value, ...}} for the typed keys; slot is
 * the view's cache slot for this lookup (-1: bypass the cache).
 */
extern void fs_agg_read_row(FsOnlineView *ov, Datum *keys, FsOnlineRow *row, int slot);

/*
 * Frees what fs_agg_read_row prepared for ov; online_meta.c calls it through ov->agg_free when
 * it rebuilds the registry cache.
 */
extern void fs_agg_forget(FsOnlineView *ov);

#endif
