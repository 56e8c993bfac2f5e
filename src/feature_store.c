/*
 * feature_store.c — module entry point: magic block and _PG_init, which defines the GUCs and,
 * when loaded through shared_preload_libraries, requests shared memory and registers the
 * background worker. Each concern's setup lives in its own file; this one only calls them.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "materialize.h"
#include "online_agg_cache.h"
#include "online_cache.h"
#include "online_wal.h"
#include "online_table.h"
#include "online_worker.h"
#include "pit_join.h"
#include "schedule.h"
#include "training_set.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	fs_cache_init();
	fs_wal_init();
	fs_online_table_init();
	fs_agg_cache_init();
	fs_worker_register();
	fs_schedule_init();
	fs_materialize_init();
	pit_join_init();
	fs_training_set_init();
	MarkGUCPrefixReserved("feature_store");
}
